#!/usr/bin/env bash
# Crossing -> webhook latency with a live producer (issue 5's figure): starts
# the embedded environment (unless METER_ENV_DIR names a running one), adds
# N free-plan tenants with a webhook to a receiver inside
# tests/perf/notify_latency.py, runs meterd and meter-notifier on fresh
# topics, and measures. Not part of `make test`: timings on a shared machine
# are for reading, not for asserting.
#   tests/perf/notify_latency.sh [--tenants N] [--rate EVENTS_PER_S]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${METER_BUILD_DIR:-build}
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD
OWN=
if [[ -z ${METER_ENV_DIR:-} ]]; then
	OWN=$(mktemp -d /tmp/meter-nlat.XXXXXX)
	eval "$("$ROOT/dev/env.sh" start "$OWN" 2>/dev/null)"
else
	source "$METER_ENV_DIR/env"
fi
ID=nlat$$
MPID=
NPID=
cleanup() {
	[[ -n $NPID ]] && kill -TERM "$NPID" 2>/dev/null && wait "$NPID" 2>/dev/null
	[[ -n $MPID ]] && kill -TERM "$MPID" 2>/dev/null && wait "$MPID" 2>/dev/null
	[[ -n $OWN ]] && "$ROOT/dev/env.sh" stop "$OWN" >/dev/null 2>&1 && rm -rf "$OWN"
	return 0
}
trap cleanup EXIT
TENANTS=200
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
	[[ ${args[$i]} == --tenants ]] && TENANTS=${args[$((i + 1))]}
done
"$ROOT/dev/env.sh" kafka-ctl "$METER_ENV_DIR" create-topic "$ID.events" 8 >/dev/null
"$ROOT/dev/env.sh" kafka-ctl "$METER_ENV_DIR" create-topic "$ID.limits" 4 >/dev/null
psql -XAtq "$METER_DATABASE_URL" -c "CREATE DATABASE $ID"
DB="postgresql://$PGUSER@$PGHOST:$PGPORT/$ID"
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
METER_DATABASE_URL=$DB "$BUILD/meterctl" migrate >/dev/null
SECRET=whsec_$(head -c 32 /dev/urandom | base64)
psql -XAtq "$DB" -c "INSERT INTO tenants (id, plan_id, webhook_url, webhook_secret)
	SELECT '$ID-' || i, 'free', 'http://127.0.0.1:$PORT/hook', '$SECRET'
	  FROM generate_series(0, $TENANTS - 1) i"
METER_DATABASE_URL=$DB METER_TOPIC_EVENTS=$ID.events METER_TOPIC_LIMITS=$ID.limits \
	METER_GROUP_ID=$ID METER_BATCH_WAIT=${BATCH_WAIT:-50ms} \
	"$BUILD/meterd" >"${METER_ENV_DIR}/$ID.log" 2>&1 &
MPID=$!
METER_DATABASE_URL=$DB METER_WEBHOOK_ALLOW_PRIVATE=1 \
	"$BUILD/meter-notifier" >"${METER_ENV_DIR}/$ID.notifier.log" 2>&1 &
NPID=$!
for _ in $(seq 1 300); do
	grep -q "assigned" "${METER_ENV_DIR}/$ID.log" &&
		grep -q "listening on meter_notifications" "${METER_ENV_DIR}/$ID.notifier.log" && break
	sleep 0.1
done
/usr/bin/python3 "$ROOT/tests/perf/notify_latency.py" --brokers "$METER_KAFKA_BROKERS" \
	--events-topic "$ID.events" --port "$PORT" --prefix "$ID" "$@"
