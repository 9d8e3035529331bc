#!/usr/bin/env bash
# Crossing -> flag latency with a live producer (issue 4's figure): starts the
# embedded environment (unless METER_ENV_DIR names a running one), meterd on
# fresh topics, and tests/perf/flag_latency.py. Not part of `make test`:
# timings on a shared machine are for reading, not for asserting.
#   tests/perf/flag_latency.sh [--tenants N] [--rate EVENTS_PER_S]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${METER_BUILD_DIR:-build}
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD
OWN=
if [[ -z ${METER_ENV_DIR:-} ]]; then
	OWN=$(mktemp -d /tmp/meter-lat.XXXXXX)
	eval "$("$ROOT/dev/env.sh" start "$OWN" 2>/dev/null)"
else
	source "$METER_ENV_DIR/env"
fi
ID=lat$$
MPID=
cleanup() {
	[[ -n $MPID ]] && kill -TERM "$MPID" 2>/dev/null && wait "$MPID" 2>/dev/null
	[[ -n $OWN ]] && "$ROOT/dev/env.sh" stop "$OWN" >/dev/null 2>&1 && rm -rf "$OWN"
	return 0
}
trap cleanup EXIT
"$ROOT/dev/env.sh" kafka-ctl "$METER_ENV_DIR" create-topic "$ID.events" 8 >/dev/null
"$ROOT/dev/env.sh" kafka-ctl "$METER_ENV_DIR" create-topic "$ID.limits" 4 >/dev/null
psql -XAtq "$METER_DATABASE_URL" -c "CREATE DATABASE $ID"
DB="postgresql://$PGUSER@$PGHOST:$PGPORT/$ID"
METER_DATABASE_URL=$DB METER_TOPIC_EVENTS=$ID.events METER_TOPIC_LIMITS=$ID.limits \
	METER_GROUP_ID=$ID METER_BATCH_WAIT=${BATCH_WAIT:-50ms} \
	"$BUILD/meterd" >"${METER_ENV_DIR}/$ID.log" 2>&1 &
MPID=$!
for _ in $(seq 1 300); do
	grep -q "assigned" "${METER_ENV_DIR}/$ID.log" && grep -q "flag publisher" "${METER_ENV_DIR}/$ID.log" && break
	sleep 0.1
done
/usr/bin/python3 "$ROOT/tests/perf/flag_latency.py" --brokers "$METER_KAFKA_BROKERS" \
	--events-topic "$ID.events" --limits-topic "$ID.limits" --prefix "$ID" "$@"
