#!/usr/bin/env bash
# dev/run.sh - `make run`: start the embedded default (a throwaway PostgreSQL
# and a mock Kafka cluster), run meterd on it, send a demo stream of usage
# events (with duplicates and a few bad ones), wait until everything is
# counted, print what was counted per tenant, and ask meter-api (the usage
# HTTP API) for one tenant's month with that tenant's own token.
#
# With METER_KAFKA_BROKERS and METER_DATABASE_URL both set, it uses those
# instead of starting anything (the topic must exist on your cluster).
# KEEP=1 leaves the environment and meterd running afterwards.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=${METER_BUILD_DIR:-build}
[[ $B = /* ]] || B=$ROOT/$B
EVENTS=${EVENTS:-3000}

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ENVDIR=""
MPID=""
APID=""
cleanup() {
	if [[ -n $APID ]] && [[ ${KEEP:-0} != 1 ]]; then
		kill -TERM "$APID" 2>/dev/null || true
		wait "$APID" 2>/dev/null || true
	fi
	if [[ -n $MPID ]] && kill -0 "$MPID" 2>/dev/null && [[ ${KEEP:-0} != 1 ]]; then
		kill -TERM "$MPID" 2>/dev/null || true
		wait "$MPID" 2>/dev/null || true
	fi
	if [[ -n $ENVDIR && ${KEEP:-0} != 1 ]]; then
		"$ROOT/dev/env.sh" stop "$ENVDIR" >/dev/null 2>&1 || true
		rm -rf "$ENVDIR" 2>/dev/null || true
	fi
}
trap cleanup EXIT INT TERM

if [[ -n ${METER_KAFKA_BROKERS:-} && -n ${METER_DATABASE_URL:-} ]]; then
	say "using your Kafka ($METER_KAFKA_BROKERS) and PostgreSQL (METER_DATABASE_URL)"
else
	ENVDIR=$(mktemp -d /tmp/meterd-run.XXXXXX)
	say "starting a throwaway PostgreSQL and a mock Kafka cluster in $ENVDIR"
	eval "$("$ROOT/dev/env.sh" start "$ENVDIR")"
fi
TOPIC=${METER_TOPIC_EVENTS:-usage.events}
export METER_GROUP_ID=${METER_GROUP_ID:-meterd-demo-$$}

say "migrating the database"
"$B/meterctl" migrate
"$B/meterctl" tenant add acme --plan pro --tz America/Argentina/Buenos_Aires \
	--webhook https://hooks.example.com/meter --email ops@acme.example >/dev/null 2>&1 ||
	"$B/meterctl" tenant set acme --plan pro >/dev/null
"$B/meterctl" tenant add globex --plan starter --tz Europe/Madrid >/dev/null 2>&1 || true
"$B/meterctl" tenant add initech --plan free >/dev/null 2>&1 || true

LOG=${ENVDIR:-/tmp}/meterd-demo.log
say "starting meterd (log: $LOG)"
"$B/meterd" --batch-wait 100ms >"$LOG" 2>&1 &
MPID=$!

say "sending $EVENTS demo events (about 3% re-sent duplicates, a few invalid ones)"
DEMO=$(mktemp /tmp/meterd-demo-events.XXXXXX)
awk -v n="$EVENTS" -v now="$(date -u +%s)" '
function pick(s,   a, k) { k = split(s, a, " "); return a[int(rand() * k) + 1] }
function ts(t) { return strftime("%Y-%m-%dT%H:%M:%SZ", t, 1) }
BEGIN {
	srand(42)
	sent = 0
	for (i = 1; i <= n; i++) {
		r = rand()
		tenant = r < 0.55 ? "acme" : (r < 0.85 ? "globex" : (r < 0.97 ? "initech" : "hooli"))
		prov = pick("openai openai anthropic gemini")
		if (prov == "openai") model = pick("gpt-4o gpt-4o-mini gpt-4.1-mini")
		else if (prov == "anthropic") model = pick("claude-sonnet-4-5 claude-haiku-4-5")
		else model = pick("gemini-2.5-flash gemini-2.5-pro")
		op = pick("chat chat chat rag embedding script_generation")
		inp = int(rand() * 4000) + 50; out = int(rand() * 1500); cached = int(inp * rand() * 0.3)
		extra = ""
		if (rand() < 0.02) { op = "image_generation"; prov = "openai"; model = "dall-e-3"; inp = 0; out = 0; cached = 0; extra = ",\"units\":{\"images\":" int(rand() * 3 + 1) "}" }
		if (rand() < 0.01) { op = "video_generation"; prov = "gemini"; model = "veo-3-fast"; inp = 0; out = 0; cached = 0; extra = ",\"units\":{\"video_seconds\":8}" }
		ev = sprintf("{\"specversion\":\"1.0\",\"id\":\"demo-%d\",\"source\":\"demo\",\"type\":\"com.meterd.usage\",\"time\":\"%s\",\"subject\":\"%s\",\"data\":{\"tenant_id\":\"%s\",\"user_id\":\"u-%d\",\"api_key_id\":\"k-%d\",\"provider\":\"%s\",\"model\":\"%s\",\"operation\":\"%s\",\"input_tokens\":%d,\"cache_read_input_tokens\":%d,\"output_tokens\":%d%s}}",
			i, ts(now - int(rand() * 3600)), tenant, tenant, int(rand() * 5), int(rand() * 2), prov, model, op, inp, cached, out, extra)
		print tenant "\t" ev; sent++
		if (rand() < 0.03) { print tenant "\t" ev; sent++ }
	}
	print "acme\t{\"specversion\":\"1.0\",\"id\":\"bad-1\",\"source\":\"demo\"";  sent++
	print "globex\t{\"specversion\":\"1.0\",\"id\":\"bad-2\",\"source\":\"demo\",\"type\":\"x\",\"time\":\"" ts(now) "\",\"subject\":\"globex\",\"data\":{\"operation\":\"chat\",\"input_tokens\":-3}}"; sent++
	print sent > "/dev/stderr"
}' >"$DEMO" 2>"$DEMO.count"
SENT=$(cat "$DEMO.count")
kcat -P -b "$METER_KAFKA_BROKERS" -t "$TOPIC" -K $'\t' <"$DEMO"
rm -f "$DEMO" "$DEMO.count"

say "waiting for meterd to count all $SENT messages"
for _ in $(seq 1 600); do
	done_n=$(psql -XAtq "$METER_DATABASE_URL" -c \
		"SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE group_id = '$METER_GROUP_ID'" 2>/dev/null || echo 0)
	[[ $done_n -ge $SENT ]] && break
	if ! kill -0 "$MPID" 2>/dev/null; then
		echo "meterd exited; its log:" >&2
		tail -20 "$LOG" >&2
		exit 1
	fi
	sleep 0.2
done

sleep 1 # the flags of tenants over their limits are published right after their batch
say "counted this month, per tenant (FLAG: published on usage.limits; * = first seen in an event)"
"$B/meterctl" tenant list
echo
psql -XAtq "$METER_DATABASE_URL" -c "SELECT count(*) || ' events rejected: ' || string_agg(reason, ', ') FROM rejected_events"
echo
say "meterctl usage acme --day today"
"$B/meterctl" usage acme --day "$(TZ=America/Argentina/Buenos_Aires date +%F)"

# meter-api on a port it picks itself (port 0: a port found free beforehand
# can be taken by another process before meter-api binds it), with a token
# that reads acme only; its log says where it serves.
TOKEN=$("$B/meterctl" token create --tenant acme --name make-run)
APILOG=${ENVDIR:-/tmp}/meter-api-demo.log
METER_HTTP_ADDR=127.0.0.1:0 "$B/meter-api" >"$APILOG" 2>&1 &
APID=$!
API_ADDR=
for _ in $(seq 1 100); do
	API_ADDR=$(grep -m1 -oE 'serving http://[^ ]+' "$APILOG" | sed 's,^serving http://,,') || true
	[[ -n $API_ADDR ]] && break
	kill -0 "$APID" 2>/dev/null || break
	sleep 0.1
done
[[ -n $API_ADDR ]] || { echo "meter-api did not start; its log:" >&2; tail -20 "$APILOG" >&2; exit 1; }
URL="http://$API_ADDR/v1/tenants/acme/usage/breakdown"
say "meter-api on $API_ADDR: GET /v1/tenants/acme/usage/breakdown with acme's token"
/usr/bin/python3 - "$URL" "$TOKEN" <<'PY' || { echo "meter-api did not answer; its log:" >&2; tail -20 "$APILOG" >&2; exit 1; }
import json, sys, time, urllib.error, urllib.request
url, token = sys.argv[1], sys.argv[2]
for attempt in range(100):  # until it listens (it starts in well under a second)
    try:
        req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
        doc = json.load(urllib.request.urlopen(req, timeout=5))
        break
    except urllib.error.URLError as e:
        if isinstance(e, urllib.error.HTTPError) or attempt == 99:
            raise
        time.sleep(0.1)
print("%s, %s (%s): models by cost" % (doc["subject"], doc["month"], doc["timezone"]))
for m in doc["models"]:
    print("  %-30s %6d events %10d tokens %18s USD" % (m["provider"] + "/" + m["model"],
          m["events"], m["total_tokens"], m["cost_usd"]))
PY
if [[ ${KEEP:-0} == 1 ]]; then
	say "KEEP=1: meterd (pid $MPID), meter-api (pid $APID, http://$API_ADDR, token $TOKEN) and the environment stay up; source ${ENVDIR:-}/env to use them"
fi
