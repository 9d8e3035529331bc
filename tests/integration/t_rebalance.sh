#!/usr/bin/env bash
# t_rebalance: a second meterd joins the consumer group mid-stream, takes
# over part of the partitions, counts some of the events, and leaves again
# (SIGTERM); the first takes everything back. Totals stay exact; both exit
# cleanly. (A member that freezes instead of leaving: t_frozen_worker.)
source "$(dirname "$0")/lib.sh"
test_init --partitions 8

export METER_BATCH_MAX=1000
meterd_start a
wait_schema
log_wait a "$(held_re 8)" 30 || die "meterd a did not get all 8 partitions"

gen --seed "${SEED:-$RANDOM}" --events 60000 --tenants 40 --tenant-prefix rb --dup-rate 5 \
	--rate 3000 --oracle "$T_DIR/oracle" >"$T_DIR/gen.out" 2>&1 &
GEN_PID=$!
stored() { sql "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE group_id = '$T_GROUP'"; }
wait_for "5000 messages stored" 60 "SELECT coalesce(sum(next_offset), 0) >= 5000
                                   FROM consumer_offsets WHERE group_id = '$T_GROUP'"

say "starting a second meterd in the same group"
log_mark a
meterd_start b
log_wait b "$(held_re '[1-7]')" 60 || die "meterd b did not get a share of the partitions"
check "meterd a gave up part of its partitions" log_wait a "$(held_re '[1-7]')" 30
at=$(($(stored) + 15000))
wait_for "15000 more messages stored by the pair" 90 \
	"SELECT sum(next_offset) >= $at FROM consumer_offsets WHERE group_id = '$T_GROUP'"
say "stopping the second meterd (SIGTERM)"
log_mark a
meterd_stop b
check_eq "meterd b exit code on SIGTERM" 0 "$MD_RC"
B_COUNTED=$(grep -o 'stopped: .*' "$T_DIR/meterd-b.log" | tail -n 1 | sed -E 's/.* ([0-9]+) counted.*/\1/')
check "meterd b counted events while it was in the group (${B_COUNTED:-none})" test "${B_COUNTED:-0}" -gt 0
check "meterd a took all 8 partitions back" log_wait a "$(held_re 8)" 60

wait "$GEN_PID" || die "gen_events failed: $(cat "$T_DIR/gen.out")"
cat "$T_DIR/gen.out"
wait_caught_up 120
check_no_eviction
check_rollups "$T_DIR/oracle" rb
meterd_stop a
check_eq "meterd a exit code on SIGTERM" 0 "$MD_RC"
test_done
