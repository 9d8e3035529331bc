#!/usr/bin/env bash
# End-to-end ingestion throughput, counted from the database: a generator
# produces N events (with duplicates) concurrently with meterd consuming
# them (live), then, on a second topic, meterd drains a backlog produced
# before it starts (catch-up). Figures are events counted per second of
# wall time between the first and the last event stored. Not part of
# `make test`: on a shared machine timings are for reading, not asserting.
#   tests/perf/throughput.sh [EVENTS] [TENANTS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${METER_BUILD_DIR:-build}
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD
EVENTS=${1:-200000}
TENANTS=${2:-1000}
PARTS=${PARTS:-32} # the mock broker keeps ~5 MB per partition: spread the backlog
OWN=
if [[ -z ${METER_ENV_DIR:-} ]]; then
	OWN=$(mktemp -d /tmp/meter-tput.XXXXXX)
	eval "$("$ROOT/dev/env.sh" start "$OWN" --durable 2>/dev/null)"
else
	source "$METER_ENV_DIR/env"
fi
MPID=
cleanup() {
	[[ -n $MPID ]] && kill -TERM "$MPID" 2>/dev/null && wait "$MPID" 2>/dev/null
	[[ -n $OWN ]] && "$ROOT/dev/env.sh" stop "$OWN" >/dev/null 2>&1 && rm -rf "$OWN"
	return 0
}
trap cleanup EXIT

# run MODE: one measurement on fresh topic and database; prints events/s.
run() {
	local mode=$1 id=tput_${1}_$$ db t0 n rate
	"$ROOT/dev/env.sh" kafka-ctl "$METER_ENV_DIR" create-topic "$id" "$PARTS" >/dev/null
	psql -XAtq "$METER_DATABASE_URL" -c "CREATE DATABASE $id"
	db="postgresql://$PGUSER@$PGHOST:$PGPORT/$id"
	local gen=("$BUILD/tools/gen_events" --brokers "$METER_KAFKA_BROKERS" --topic "$id"
		--events "$EVENTS" --tenants "$TENANTS" --users 20 --keys 4 --dup-rate 2
		--time-spread 2 --seed 7 --id-prefix "$id")
	METER_DATABASE_URL=$db "$BUILD/meterctl" migrate >/dev/null
	if [[ $mode == catchup ]]; then
		"${gen[@]}" >/dev/null 2>&1
	fi
	METER_DATABASE_URL=$db METER_TOPIC_EVENTS=$id METER_GROUP_ID=$id \
		"$BUILD/meterd" >"$METER_ENV_DIR/$id.log" 2>&1 &
	MPID=$!
	if [[ $mode == live ]]; then
		until grep -q "assigned" "$METER_ENV_DIR/$id.log"; do sleep 0.2; done
		"${gen[@]}" >/dev/null 2>&1 &
	fi
	local want=$EVENTS
	until [[ $(psql -XAtq "$db" -c "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets") -ge $want ]]; do
		sleep 0.5
	done
	read -r n rate < <(psql -XAtq -F ' ' "$db" -c \
		"SELECT count(*), round(count(*) / greatest(extract(epoch FROM max(received_at) - min(received_at)), 0.001)) FROM events")
	kill -TERM "$MPID"
	wait "$MPID" || true
	MPID=
	echo "$mode: $n events counted (of $EVENTS sent, 2 % duplicates) at $rate events/s"
}

run live
run catchup
