#!/usr/bin/python3
"""Static checks of docker-compose.yml, the Dockerfile and .dockerignore
(there is no Docker engine on the development machines to run them).

    check_deploy.py ROOT

Prints one line per check, tab-separated: "ok<TAB>what", "FAIL<TAB>what<TAB>
detail" or "skip<TAB>what<TAB>why"; exit status 0 unless the files cannot be
read at all. Needs python3-yaml (Debian's /usr/bin/python3), apt-cache (the
Debian package names) and a built tree (build/meterd --config-reference for
the option table; readelf for the binaries' libraries).
"""
import os
import re
import shlex
import subprocess
import sys

import yaml

ROOT = sys.argv[1]
results = []


def check(what, ok, detail=""):
    results.append(("ok" if ok else "FAIL", what, "" if ok else str(detail)))
    return ok


def skip(what, why):
    results.append(("skip", what, why))


def run(*cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, **kw)


# ---- the option table, from the binary ---------------------------------------------
ref = run(os.path.join(ROOT, "build/meterd"), "--config-reference").stdout
options = {}  # env -> (default, set of programs)
for line in ref.splitlines():
    cells = [c.strip() for c in line.replace("\\|", "/").split("|")]  # "text\|json"
    if len(cells) > 6 and cells[1].startswith("`METER_"):
        env = cells[1].strip("`")
        default = cells[4].strip("`")
        options[env] = (default, set(cells[5].split()))
check("the option table has the documented variables (build/meterd --config-reference)",
      {"METER_KAFKA_BROKERS", "METER_DATABASE_URL", "METER_HTTP_ADDR"} <= set(options),
      f"{len(options)} options read")
programs = set().union(*(p for _, p in options.values())) if options else set()


def duration_s(text):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", text)
    if not m:
        return None
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


makefile = open(os.path.join(ROOT, "Makefile")).read()
version = re.search(r"^VERSION := (\S+)", makefile, re.M).group(1)

# ---- docker-compose.yml ------------------------------------------------------------
try:
    compose = yaml.safe_load(open(os.path.join(ROOT, "docker-compose.yml")))
except Exception as e:  # noqa: BLE001 - any parse error is the finding
    check("docker-compose.yml parses as YAML", False, e)
    compose = None
if compose is not None:
    check("docker-compose.yml parses as YAML", isinstance(compose, dict) and "services" in compose)
    services = compose.get("services") or {}
    want = {"kafka", "kafka-init", "postgres", "mailpit", "meterd", "meter-notifier", "meter-api"}
    check("services: kafka, kafka-init, postgres, mailpit, meterd, meter-notifier, meter-api",
          want <= set(services), f"missing {sorted(want - set(services))}")
    volumes_declared = set((compose.get("volumes") or {}).keys())
    ours = {}  # service -> program it runs
    for name, svc in services.items():
        image = svc.get("image", "")
        # Images: a tag, never latest.
        if image:
            repo, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
            check(f"{name}: image {image} is pinned to a tag", bool(tag) and tag != "latest",
                  "no tag or latest")
            if repo == "meterd":
                check(f"{name}: the local image's tag is the Makefile VERSION ({version})",
                      tag == version, tag)
        else:
            check(f"{name}: has an image", False, "no image")
        # Build contexts and Dockerfiles exist.
        build = svc.get("build")
        if build is not None:
            ctx = build if isinstance(build, str) else build.get("context", ".")
            check(f"{name}: build context {ctx} exists", os.path.isdir(os.path.join(ROOT, ctx)))
            if isinstance(build, dict) and "dockerfile" in build:
                df = os.path.join(ROOT, ctx, build["dockerfile"])
                check(f"{name}: {build['dockerfile']} exists", os.path.isfile(df))
        # Volumes: bind mounts exist, named volumes are declared.
        for v in svc.get("volumes", []):
            src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
            if src.startswith((".", "/")):
                check(f"{name}: bind mount {src} exists", os.path.exists(os.path.join(ROOT, src)))
            else:
                check(f"{name}: volume {src} is declared", src in volumes_declared)
        # Health checks on everything that keeps running.
        one_shot = str(svc.get("restart", "")) == "no"
        if not one_shot:
            hc = svc.get("healthcheck") or {}
            check(f"{name}: has a health check", bool(hc.get("test")), "no healthcheck.test")
        # depends_on: existing services and conditions that can be met.
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        for dep, spec in deps.items():
            cond = (spec or {}).get("condition", "service_started")
            ok = dep in services and cond in (
                "service_started", "service_healthy", "service_completed_successfully")
            if ok and cond == "service_healthy":
                ok = bool((services[dep].get("healthcheck") or {}).get("test"))
            if ok and cond == "service_completed_successfully":
                ok = str(services[dep].get("restart", "")) == "no"
            check(f"{name}: depends on {dep} ({cond})", ok, "no such service or condition unmet")
        if image.startswith("meterd:"):
            cmd = svc.get("command") or ["meterd"]
            ours[name] = cmd[0] if isinstance(cmd, list) else shlex.split(cmd)[0]

    # Our services' environment: only options of the table, of the program
    # (or of meterctl, which runs in the same containers with docker exec).
    for name, prog in ours.items():
        env = services[name].get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env)
        per_program = prog in programs
        if not per_program:
            skip(f"{name}: variables checked against {prog}'s options",
                 f"no option lists {prog} as a reader yet (its branch is not merged): "
                 "checked against the whole table")
        for k in env:
            known = k in options
            mine = known and (not per_program or prog in options[k][1] or "meterctl" in options[k][1])
            check(f"{name}: {k} is an option{' of ' + prog if per_program else ''}",
                  mine, "not in the table" if not known else f"read by {sorted(options[k][1])}")
        addr = str(env.get("METER_HTTP_ADDR", ""))
        port = addr.rpartition(":")[2]
        hc = " ".join(services[name].get("healthcheck", {}).get("test", []))
        check(f"{name}: the health check asks /readyz on METER_HTTP_ADDR's port ({port})",
              bool(port) and f":{port}/readyz" in hc, hc)
        published = [str(p).split(":")[-1] for p in services[name].get("ports", [])]
        check(f"{name}: METER_HTTP_ADDR's port is published", port in published, published)
        grace = duration_s(str(env.get("METER_SHUTDOWN_GRACE", options.get(
            "METER_SHUTDOWN_GRACE", ("30s",))[0])))
        stop = duration_s(str(services[name].get("stop_grace_period", "10s")))
        check(f"{name}: stop_grace_period ({stop} s) exceeds METER_SHUTDOWN_GRACE ({grace} s)",
              grace is not None and stop is not None and stop > grace)
        brokers = str(env.get("METER_KAFKA_BROKERS", ""))
        if brokers:
            adv = str(services.get("kafka", {}).get("environment", {}).get(
                "KAFKA_ADVERTISED_LISTENERS", ""))
            check(f"{name}: METER_KAFKA_BROKERS ({brokers}) is an advertised listener",
                  all(b in adv for b in brokers.split(",")), adv)
        url = str(env.get("METER_DATABASE_URL", ""))
        pg = services.get("postgres", {}).get("environment", {})
        m = re.fullmatch(r"postgresql://([^:]+):([^@]+)@postgres:5432/(\w+)", url)
        check(f"{name}: METER_DATABASE_URL matches the postgres service",
              bool(m) and m.groups() == (pg.get("POSTGRES_USER"), pg.get("POSTGRES_PASSWORD"),
                                         pg.get("POSTGRES_DB")), url)
        smtp = str(env.get("METER_SMTP_URL", ""))
        if smtp:
            check(f"{name}: METER_SMTP_URL is Mailpit's SMTP port", smtp == "smtp://mailpit:1025",
                  smtp)

    # Kafka: single-node KRaft, and the topics meterd uses.
    kenv = services.get("kafka", {}).get("environment", {})
    check("kafka: single-node KRaft (broker,controller; no ZooKeeper)",
          set(str(kenv.get("KAFKA_PROCESS_ROLES", "")).split(",")) == {"broker", "controller"}
          and not any("ZOOKEEPER" in k for k in kenv), kenv.get("KAFKA_PROCESS_ROLES"))
    check("kafka: health check with kafka-broker-api-versions",
          "kafka-broker-api-versions" in " ".join(services.get("kafka", {}).get(
              "healthcheck", {}).get("test", [])))
    init = " ".join(services.get("kafka-init", {}).get("command", []) or [])
    for var, policy in (("METER_TOPIC_EVENTS", ""), ("METER_TOPIC_DLQ", ""),
                        ("METER_TOPIC_LIMITS", "compact"), ("METER_TOPIC_ROLLUPS", "compact")):
        topic = options.get(var, ("?",))[0]
        check(f"kafka-init creates {topic} ({var}'s default){' compacted' if policy else ''}",
              re.search(r"(?<![\w.])" + re.escape(topic) + r":\d+:" + policy + r"(?![\w.])", init)
              is not None, init)
    check("kafka-init creates topics idempotently (--if-not-exists)", "--if-not-exists" in init)

# ---- Dockerfile -----------------------------------------------------------------------
dockerfile = open(os.path.join(ROOT, "Dockerfile")).read()
logical = re.sub(r"\\\n", " ", dockerfile)  # join continuation lines
stages, cur = [], None
for line in logical.splitlines():
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    word, _, rest = line.partition(" ")
    if word.upper() == "FROM":
        parts = rest.split()
        cur = {"image": parts[0], "name": parts[2] if len(parts) > 2 else "", "packages": [],
               "copies": []}
        stages.append(cur)
    elif cur is not None and word.upper() == "RUN":
        for m in re.finditer(r"apt-get install ([^&;]*)", rest):
            cur["packages"] += [w for w in m.group(1).split() if not w.startswith("-")]
    elif cur is not None and word.upper() == "COPY":
        cur["copies"].append(rest.split())
check("Dockerfile: two stages, build and runtime",
      [s["name"] for s in stages] == ["build", "runtime"], [s["name"] for s in stages])
# One apt-cache call for every package: "pkg:" blocks with a Candidate and
# the archives that have it ("bookworm" is Debian 12).
all_packages = sorted({p for s in stages for p in s["packages"]})
policy, name = {}, None
for line in run("apt-cache", "policy", *all_packages).stdout.splitlines():
    if line and not line.startswith(" ") and line.endswith(":"):
        name = line[:-1]
        policy[name] = {"candidate": "(none)", "bookworm": False}
    elif name and line.strip().startswith("Candidate:"):
        policy[name]["candidate"] = line.split(":", 1)[1].strip()
    elif name and " bookworm" in line:
        policy[name]["bookworm"] = True
for s in stages:
    check(f"Dockerfile {s['name']}: FROM debian:12-slim (pinned)", s["image"] == "debian:12-slim",
          s["image"])
    for p in s["packages"]:
        info = policy.get(p, {})
        check(f"Dockerfile {s['name']}: package {p} exists in Debian 12 (bookworm)",
              info.get("candidate", "(none)") != "(none)" and info.get("bookworm"),
              info or "apt-cache knows no such package")
if len(stages) == 2:
    build, runtime = stages
    dev = [p for p in runtime["packages"] if p.endswith("-dev") or p == "build-essential"]
    check("Dockerfile runtime: no -dev packages or compilers", not dev, dev)
    deps = open(os.path.join(ROOT, "dev/deps.sh")).read()
    # Test-only libraries (cmocka, libFuzzer's runtime) are not built into the image.
    test_only = {"libcmocka-dev", "libclang-rt-14-dev"}
    needed = [p for p in re.findall(r"\b(lib[\w.+-]+-dev)\b", deps) if p not in test_only]
    check("Dockerfile build: the -dev packages of dev/deps.sh (but the test-only ones)",
          set(needed) <= set(build["packages"]), sorted(set(needed) - set(build["packages"])))
    # The binaries copied from the build stage: Makefile targets, and
    # what the compose file runs.
    copied = []
    for c in runtime["copies"]:
        if c and c[0].startswith("--from=build"):
            copied += [os.path.basename(x) for x in c[1:-1]]
    check("Dockerfile runtime: meterd, meter-notifier, meter-api, meterctl copied",
          {"meterd", "meter-notifier", "meter-api", "meterctl"} <= set(copied), copied)
    for b in copied:
        r = run("make", "-n", f"build/{b}")
        if r.returncode != 0 and b == "meter-api" and not os.path.isdir(os.path.join(ROOT, "api")):
            skip("Makefile builds build/meter-api",
                 "meter-api comes with the api branch (api/), not merged here")
            continue
        check(f"Makefile builds build/{b}", r.returncode == 0, r.stderr.strip()[:200])
    if compose is not None:
        for name, prog in ours.items():
            check(f"{name}: runs {prog}, a binary of the image", prog in copied, copied)
    # Every library the binaries link directly comes from a runtime package.
    libs = set()
    for b in copied:
        path = os.path.join(ROOT, "build", b)
        if os.path.exists(path):
            r = run("readelf", "-d", path)
            libs |= set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", r.stdout))
    owner = {lib: "?" for lib in libs}
    for line in run("dpkg", "-S", *[f"*/{lib}" for lib in sorted(libs)]).stdout.splitlines():
        pkg, _, path = line.partition(": ")
        lib = os.path.basename(path)
        if lib in owner and owner[lib] == "?":
            owner[lib] = pkg.split(":")[0]
    for lib, pkg in sorted(owner.items()):
        check(f"Dockerfile runtime: {lib} ({pkg}) is installed",
              pkg in runtime["packages"] or pkg in ("libc6",), f"{pkg} not in {runtime['packages']}")

# ---- .dockerignore ----------------------------------------------------------------------
ignore = [l.strip() for l in open(os.path.join(ROOT, ".dockerignore")) if l.strip()
          and not l.startswith("#")]
check(".dockerignore leaves out .git and build", {".git", "build"} <= set(ignore), ignore)
for d in ("Makefile", "common", "schema", "aggregator", "consumer", "ctl", "libmeter", "notifier",
          "sql"):
    check(f".dockerignore keeps {d} (the build needs it)",
          os.path.exists(os.path.join(ROOT, d)) and d not in ignore)

for status, what, detail in results:
    print("\t".join((status, what, detail.replace("\t", " ").replace("\n", " "))))
