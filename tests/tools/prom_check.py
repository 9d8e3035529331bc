#!/usr/bin/env python3
"""prom_check.py - a strict checker of the Prometheus text exposition format
0.0.4 (standard library only), for the tests of /metrics.

    prom_check.py FILE|- [--value 'name{label="v",...}'] ... [--forbid TEXT] ...
    prom_check.py --self-test    (valid and broken samples: is the checker strict?)

Checks, failing with one line per problem (exit 1):
  - every line ends with a newline; no blank lines; no stray characters;
  - "# HELP name text" and "# TYPE name type" once per family, both before
    its first sample; HELP text uses only the escapes \\\\ and \\n;
  - metric and label names are valid; label values are quoted with only the
    escapes \\\\, \\" and \\n; no label name twice in a series; no "__" names;
  - values are numbers (Go ParseFloat syntax, +Inf, -Inf, NaN); no timestamps;
  - the samples of a family are contiguous, and their names belong to it
    (histogram: name_bucket, name_sum, name_count); no series twice;
  - counters are finite and >= 0 (and their names end in _total);
  - histograms, per label set: le parses and strictly increases, bucket
    counts are integers and never decrease, the last bucket is le="+Inf" and
    equals _count, and _sum and _count are present;
  - none of the --forbid texts (e.g. tenant ids) appears anywhere.
Then prints, for each --value, the sample's value (labels in any order), or
"absent".
"""
import math
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|Inf|NaN)\Z")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class Bad(Exception):
    pass


def parse_value(s, where):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if not FLOAT.match(s):
        raise Bad(f"{where}: value {s!r} is not a number")
    return float(s)


def unescape_help(s, where):
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            if i + 1 >= len(s) or s[i + 1] not in "\\n":
                raise Bad(f"{where}: bad escape in HELP text")
            out.append("\\" if s[i + 1] == "\\" else "\n")
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_labels(s, i, where):
    """s[i] == '{'; returns (dict, index after '}')."""
    labels = {}
    i += 1
    while True:
        if i >= len(s):
            raise Bad(f"{where}: unterminated label set")
        if s[i] == "}":
            return labels, i + 1
        m = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*").match(s, i)
        if not m:
            raise Bad(f"{where}: bad label name at column {i + 1}")
        name = m.group(0)
        if name.startswith("__"):
            raise Bad(f"{where}: reserved label name {name}")
        if name in labels:
            raise Bad(f"{where}: label {name} given twice")
        i = m.end()
        if s[i:i + 2] != '="':
            raise Bad(f"{where}: expected =\" after label {name}")
        i += 2
        val = []
        while True:
            if i >= len(s):
                raise Bad(f"{where}: unterminated label value")
            c = s[i]
            if c == "\\":
                if i + 1 >= len(s) or s[i + 1] not in '\\"n':
                    raise Bad(f"{where}: bad escape in label value")
                val.append({"\\": "\\", '"': '"', "n": "\n"}[s[i + 1]])
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise Bad(f"{where}: newline in label value")
            else:
                val.append(c)
                i += 1
        labels[name] = "".join(val)
        if i < len(s) and s[i] == ",":
            i += 1
        elif i < len(s) and s[i] != "}":
            raise Bad(f"{where}: expected , or }} after label {name}")


def family_of(sample, types):
    if sample in types and types[sample] != "histogram":
        return sample
    for suffix in ("_bucket", "_sum", "_count"):
        if sample.endswith(suffix) and types.get(sample[: -len(suffix)]) == "histogram":
            return sample[: -len(suffix)]
    return None


def check(text, forbid):
    errors = []
    if text and not text.endswith("\n"):
        errors.append("the last line does not end with a newline")
    helps, types = {}, {}
    samples = {}  # (name, frozenset(labels)) -> value
    order = []  # families in order of their samples
    done = set()  # families whose samples are over
    hist = {}  # (family, labels without le) -> dict
    for n, line in enumerate(text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"), 1):
        where = f"line {n}"
        try:
            if line == "":
                raise Bad(f"{where}: blank line")
            if any(ord(c) < 0x20 for c in line):
                raise Bad(f"{where}: control character")
            if line.startswith("#"):
                parts = line.split(" ", 3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    name = parts[2]
                    if not NAME.match(name):
                        raise Bad(f"{where}: bad metric name {name!r}")
                    if name in done or (order and order[-1] == name):
                        raise Bad(f"{where}: {parts[1]} of {name} after its samples")
                    if parts[1] == "HELP":
                        if name in helps:
                            raise Bad(f"{where}: second HELP for {name}")
                        helps[name] = unescape_help(parts[3] if len(parts) > 3 else "", where)
                    else:
                        if name in types:
                            raise Bad(f"{where}: second TYPE for {name}")
                        t = parts[3] if len(parts) > 3 else ""
                        if t not in TYPES:
                            raise Bad(f"{where}: unknown type {t!r}")
                        types[name] = t
                continue
            m = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*").match(line)
            if not m:
                raise Bad(f"{where}: bad sample line")
            name, i = m.group(0), m.end()
            labels = {}
            if i < len(line) and line[i] == "{":
                labels, i = parse_labels(line, i, where)
            rest = line[i:]
            if not rest.startswith(" "):
                raise Bad(f"{where}: expected a space before the value")
            fields = rest.split()
            if len(fields) != 1:
                raise Bad(f"{where}: expected exactly one value (no timestamps here)")
            value = parse_value(fields[0], where)
            fam = family_of(name, types)
            if fam is None:
                raise Bad(f"{where}: sample {name} has no TYPE (or a name outside its family)")
            if fam not in helps:
                raise Bad(f"{where}: family {fam} has no HELP before its samples")
            if order and order[-1] != fam:
                done.add(order[-1])
            if fam in done:
                raise Bad(f"{where}: samples of {fam} are not contiguous")
            if not order or order[-1] != fam:
                order.append(fam)
            key = (name, frozenset(labels.items()))
            if key in samples:
                raise Bad(f"{where}: series {name}{labels} given twice")
            samples[key] = value
            t = types[fam]
            if t == "counter":
                if not fam.endswith("_total"):
                    raise Bad(f"{where}: counter {fam} does not end in _total")
                if math.isnan(value) or value < 0 or math.isinf(value):
                    raise Bad(f"{where}: counter {name} = {fields[0]}")
            if t == "histogram":
                base = frozenset((k, v) for k, v in labels.items() if k != "le")
                h = hist.setdefault((fam, base), {"buckets": [], "sum": None, "count": None,
                                                  "line": n})
                if name == fam + "_bucket":
                    if "le" not in labels:
                        raise Bad(f"{where}: bucket without le")
                    le = parse_value(labels["le"], where)
                    if h["sum"] is not None or h["count"] is not None:
                        raise Bad(f"{where}: bucket after _sum/_count")
                    if value != int(value) or value < 0:
                        raise Bad(f"{where}: bucket count {fields[0]} is not a count")
                    if h["buckets"]:
                        ple, pv = h["buckets"][-1]
                        if not le > ple:
                            raise Bad(f"{where}: le {labels['le']} does not increase")
                        if value < pv:
                            raise Bad(f"{where}: bucket counts decrease")
                    h["buckets"].append((le, value))
                else:
                    if "le" in labels:
                        raise Bad(f"{where}: le on {name}")
                    h["sum" if name.endswith("_sum") else "count"] = value
        except Bad as e:
            errors.append(str(e))
    for name in types:
        if name not in helps:
            errors.append(f"family {name} has TYPE but no HELP")
    for (fam, base), h in hist.items():
        what = f"histogram {fam}{dict(base)} (line {h['line']})"
        if not h["buckets"] or h["buckets"][-1][0] != math.inf:
            errors.append(f"{what}: no le=\"+Inf\" bucket at the end")
        if h["count"] is None or h["sum"] is None:
            errors.append(f"{what}: _sum or _count missing")
        elif h["buckets"] and h["buckets"][-1][1] != h["count"]:
            errors.append(f"{what}: +Inf bucket {h['buckets'][-1][1]} != _count {h['count']}")
    for f in forbid:
        if f and f in text:
            errors.append(f"forbidden text {f!r} appears in the metrics")
    return errors, samples


def lookup(samples, spec):
    m = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*").match(spec)
    if not m:
        raise SystemExit(f"prom_check: bad --value {spec!r}")
    labels = {}
    if m.end() < len(spec):
        labels, end = parse_labels(spec, m.end(), "--value")
        if end != len(spec):
            raise SystemExit(f"prom_check: bad --value {spec!r}")
    v = samples.get((m.group(0), frozenset(labels.items())))
    if v is None:
        return "absent"
    return str(int(v)) if v == int(v) and not math.isinf(v) else repr(v)


GOOD = """# HELP a_total A.
# TYPE a_total counter
a_total{x="1"} 2
a_total{x="q\\"\\\\\\n"} 0
# HELP h Hist.
# TYPE h histogram
h_bucket{le="0.5"} 1
h_bucket{le="+Inf"} 3
h_sum 7.5
h_count 3
# HELP g G.
# TYPE g gauge
g -1.5e-3
"""

# Each turns GOOD into something the checker must refuse.
BAD = [
    ("no newline at the end", lambda t: t[:-1]),
    ("blank line", lambda t: t.replace("# HELP h", "\n# HELP h")),
    ("HELP missing", lambda t: t.replace("# HELP g G.\n", "")),
    ("TYPE missing", lambda t: t.replace("# TYPE g gauge\n", "")),
    ("TYPE after samples", lambda t: t + "# TYPE a_total counter\n"),
    ("second TYPE", lambda t: t.replace("# TYPE g gauge\n", "# TYPE g gauge\n# TYPE g gauge\n")),
    ("unknown type", lambda t: t.replace("gauge", "gouge")),
    ("bad name", lambda t: t.replace("g -1.5e-3", "g-x -1.5e-3")),
    ("bad value", lambda t: t.replace("-1.5e-3", "1,5")),
    ("timestamp", lambda t: t.replace("-1.5e-3", "1 1700000000")),
    ("negative counter", lambda t: t.replace('a_total{x="1"} 2', 'a_total{x="1"} -2')),
    ("NaN counter", lambda t: t.replace('a_total{x="1"} 2', 'a_total{x="1"} NaN')),
    ("duplicate series", lambda t: t.replace('a_total{x="1"} 2', 'a_total{x="1"} 2\na_total{x="1"} 3')),
    ("duplicate label", lambda t: t.replace('{x="1"}', '{x="1",x="2"}')),
    ("reserved label", lambda t: t.replace('{x="1"}', '{__x="1"}')),
    ("bad escape", lambda t: t.replace('{x="1"}', '{x="\\t"}')),
    ("unquoted label", lambda t: t.replace('{x="1"}', '{x=1}')),
    ("unterminated labels", lambda t: t.replace('{x="1"} 2', '{x="1" 2')),
    ("not contiguous", lambda t: t + 'a_total{x="9"} 1\n'),
    ("foreign sample", lambda t: t.replace("g -1.5e-3", "g -1.5e-3\nh_bucket{le=\"1\"} 3")),
    ("no +Inf", lambda t: t.replace('h_bucket{le="+Inf"} 3\n', "")),
    ("+Inf != count", lambda t: t.replace("h_count 3", "h_count 4")),
    ("decreasing buckets", lambda t: t.replace('h_bucket{le="0.5"} 1', 'h_bucket{le="0.5"} 5')),
    ("le not increasing", lambda t: t.replace('h_bucket{le="0.5"} 1', 'h_bucket{le="0.5"} 1\nh_bucket{le="0.5"} 1')),
    ("fractional bucket", lambda t: t.replace('h_bucket{le="0.5"} 1', 'h_bucket{le="0.5"} 0.5')),
    ("no _sum", lambda t: t.replace("h_sum 7.5\n", "")),
    ("counter without _total", lambda t: t.replace("a_total", "a_count")),
    ("forbidden text", lambda t: t.replace('x="1"', 'x="acme"')),
]


def self_test():
    errors, samples = check(GOOD, ["acme"])
    if errors:
        print("prom_check self-test: a valid text was refused:", errors)
        return 1
    assert lookup(samples, 'a_total{x="1"}') == "2"
    assert lookup(samples, 'a_total{x="q\\"\\\\\\n"}') == "0"
    assert lookup(samples, "g") == "-0.0015"
    assert lookup(samples, "h_count") == "3"
    assert lookup(samples, 'a_total{x="2"}') == "absent"
    failed = 0
    for what, mutate in BAD:
        errors, _ = check(mutate(GOOD), ["acme"])
        if not errors:
            print(f"prom_check self-test: not refused: {what}")
            failed += 1
    if failed:
        return 1
    print(f"prom_check self-test: 1 valid text accepted, {len(BAD)} broken ones refused")
    return 0


def main():
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 2
    if args[0] == "--self-test":
        return self_test()
    src, values, forbid = args[0], [], []
    i = 1
    while i < len(args):
        if args[i] in ("--value", "--forbid") and i + 1 < len(args):
            (values if args[i] == "--value" else forbid).append(args[i + 1])
            i += 2
        else:
            raise SystemExit(f"prom_check: unexpected argument {args[i]!r}")
    raw = sys.stdin.buffer.read() if src == "-" else open(src, "rb").read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        print(f"prom_check: not UTF-8: {e}")
        return 1
    errors, samples = check(text, forbid)
    if errors:
        for e in errors[:30]:
            print(f"prom_check: {e}")
        return 1
    for v in values:
        print(lookup(samples, v))
    return 0


if __name__ == "__main__":
    sys.exit(main())
