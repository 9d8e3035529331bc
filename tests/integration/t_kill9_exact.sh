#!/usr/bin/env bash
# t_kill9_exact: while a producer sends 200,000 events (5 % duplicates, 1 %
# bad), meterd is killed with SIGKILL at several random points and restarted
# each time. At the end the rollups equal the totals computed by the
# generator from what it sent - exactly, for every tenant, user and key, day
# and month: events, requests, tokens and cost - and every bad message is
# stored once with its reason.
# SEED=N reproduces a run (event stream and kill times); KILLS=N, EVENTS=N,
# PARTITIONS=N, TENANTS=N override the defaults.
source "$(dirname "$0")/lib.sh"
# The mock broker keeps only ~5 MB per partition, and every restart lets a
# backlog build up: the producer compresses (lz4, see gen in lib.sh) and
# the topic has 32 partitions, so the whole stream (~80 MB of JSON) fits
# many times over; check_no_eviction proves it did.
test_init --partitions "${PARTITIONS:-32}"
# A short session timeout: after a SIGKILL the group waits this long for the
# dead member before the restarted one gets partitions.
export SESSION_TIMEOUT_MS=${SESSION_TIMEOUT_MS:-3000}

SEED=${SEED:-$((RANDOM * 32768 + RANDOM))}
KILLS=${KILLS:-4}
EVENTS=${EVENTS:-200000}
RANDOM=$SEED # the kill times follow from the seed too
say "seed $SEED: $EVENTS events, $KILLS kills"

export METER_BATCH_MAX=2000
meterd_start a
wait_schema

gen --seed "$SEED" --events "$EVENTS" --tenants "${TENANTS:-100}" --tenant-prefix k9 --dup-rate 5 --bad-rate 1 \
	--time-spread 30 --rate 4000 --oracle "$T_DIR/oracle" >"$T_DIR/gen.out" 2>&1 &
GEN_PID=$!

stored() { sql "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE group_id = '$T_GROUP'"; }
# Kill points spread over the stream: after 5..85 % of the messages are
# stored, plus 0..1.5 s, so a kill lands anywhere in a batch's life
# (polling, validating, inside the transaction, between batches). Not
# later: a meterd catching up after a restart stores the last 10 % of the
# stream within that 1.5 s (seen once at 95 %: the last kill then found
# everything stored).
POINTS=$(for _ in $(seq 1 "$KILLS"); do echo $((EVENTS * (5 + RANDOM % 81) / 100)); done | sort -n)
LAST_AT=0
k=0
for point in $POINTS; do
	k=$((k + 1))
	wait_for "$point messages stored" 240 "SELECT sum(next_offset) >= $point FROM consumer_offsets
	                                      WHERE group_id = '$T_GROUP'" || die "meterd stalled"
	ms=$((RANDOM % 1500))
	sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
	LAST_AT=$(stored)
	meterd_kill a
	say "kill $k: SIGKILL at $LAST_AT messages stored (point $point + ${ms} ms)"
	meterd_start a
done

wait "$GEN_PID" || die "gen_events failed: $(cat "$T_DIR/gen.out")"
cat "$T_DIR/gen.out"
SENT=$(oracle_val "$T_DIR/oracle" sent)
check "the last kill came mid-stream ($LAST_AT of $SENT stored)" test "$LAST_AT" -lt "$SENT"
wait_caught_up 180
check_eq "messages consumed (sum of stored offsets)" "$SENT" "$(stored)"
check_no_eviction
check_rollups "$T_DIR/oracle" k9
check_rejects "$T_DIR/oracle"
check_eq "rejected messages stored once each" "$(oracle_val "$T_DIR/oracle" bad)" \
	"$(sql "SELECT count(DISTINCT (kafka_partition, kafka_offset)) FROM rejected_events")"
meterd_stop a
check_eq "meterd exit code on SIGTERM" 0 "$MD_RC"
test_done
