#!/usr/bin/env bash
# t_frozen_worker: a meterd freezes (SIGSTOP: a VM pause, a host swapping)
# in the middle of its batch transaction, past its Kafka session timeout.
#  1. The group gives its partitions to the other worker, which must keep
#     counting although the frozen one's open transaction still holds row
#     locks (the database must end that transaction, as it ends any idle one).
#  2. When the frozen worker wakes up, finds its connection gone and its
#     partitions revoked, and then gets partitions again, it must consume
#     them (nothing left paused from before).
#  3. Its stale batch is never counted: totals are exact.
source "$(dirname "$0")/lib.sh"
test_init --partitions 8

export METER_BATCH_MAX=1000
stored() { sql "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE group_id = '$T_GROUP'"; }
more_stored() { # more_stored N SECS WHAT
	local at=$(($(stored) + $1))
	wait_for "$3" "$2" "SELECT sum(next_offset) >= $at FROM consumer_offsets WHERE group_id = '$T_GROUP'"
}

meterd_start a
wait_schema
log_wait a "$(held_re 8)" 30 || die "meterd a did not get all 8 partitions"
gen --seed "${SEED:-$RANDOM}" --events 50000 --tenants 40 --tenant-prefix fz --dup-rate 5 \
	--rate 2500 --oracle "$T_DIR/oracle" >"$T_DIR/gen.out" 2>&1 &
GEN_PID=$!
more_stored 2000 60 "2000 messages stored" || die "meterd a stalled"

log_mark a
meterd_start b
log_wait b 'events\[[0-9]+\] starts at' 60 || die "meterd b did not get a share of the partitions"
log_wait a "$(held_re '[1-7]')" 30 || die "meterd a did not give up partitions to b"
P=$(grep -m1 -oE 'events\[[0-9]+\] starts at' "$T_DIR/meterd-b.log" | tr -dc 0-9)
[[ -n $P ]] || die "no partition of meterd b found in its log"
wait_for "a stored offset for partition $P" 60 "SELECT count(*) = 1 FROM consumer_offsets
	WHERE group_id = '$T_GROUP' AND partition = $P" || die "meterd b did not commit partition $P"

# Freeze b inside its transaction: hold the offset row of one of its
# partitions, wait until b's batch waits for it, freeze b, let go. b's
# server session then finishes the batch and sits idle in transaction,
# holding the locks of every row it wrote, for as long as b is frozen.
hold_begin "SELECT 1 FROM consumer_offsets WHERE group_id = '$T_GROUP' AND partition = $P FOR UPDATE;"
# meterd names its batch session meterd-<pid>: look at b's only.
B_APP="meterd-${MD_PID[b]}"
wait_for "meterd b's batch to wait for the held row" 30 \
	"SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = '$T_DB' AND application_name = '$B_APP' AND wait_event_type = 'Lock'" ||
	die "meterd b never waited for partition $P"
echo "==== test sends SIGSTOP $(date -u +%H:%M:%S.%3N)" >>"$T_DIR/meterd-b.log"
kill -STOP "${MD_PID[b]}"
at_exit 'kill -CONT '"${MD_PID[b]}"' 2>/dev/null'
hold_end ROLLBACK # so what stays idle in transaction is b's
wait_for "meterd b's session idle in transaction" 25 \
	"SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = '$T_DB' AND application_name = '$B_APP' AND state LIKE 'idle in transaction%'" ||
	die "meterd b's transaction did not finish"
say "froze meterd b (SIGSTOP) inside its batch transaction"

log_mark a
check "meterd a took all 8 partitions from the frozen one" log_wait a "$(held_re 8)" 60
check "meterd a keeps committing while b is frozen (3000 more messages within 75 s)" \
	more_stored 3000 75 "meterd a to store 3000 more messages alone"
# Whatever meterd did about it, the database now drops the frozen session
# (as idle_in_transaction_session_timeout would), so that the test goes on.
sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
      WHERE datname = '$T_DB' AND state = 'idle in transaction'" >/dev/null
wait "$GEN_PID" || die "gen_events failed: $(cat "$T_DIR/gen.out")"
cat "$T_DIR/gen.out"
check "meterd a catches up alone" wait_caught_up 120
meterd_stop a
check_eq "meterd a exit code on SIGTERM" 0 "$MD_RC"

# Wake b, alone in the group now: it gets all 8 partitions, including the
# ones it had paused when its connection turned out to be gone.
echo "==== test sends SIGCONT $(date -u +%H:%M:%S.%3N)" >>"$T_DIR/meterd-b.log"
kill -CONT "${MD_PID[b]}"
log_mark b
log_wait b "$(held_re 8)" 60 || die "meterd b did not get the 8 partitions after waking"
gen --seed "${SEED:-$RANDOM}" --events 5000 --tenants 40 --tenant-prefix fy \
	--oracle "$T_DIR/oracle2" >"$T_DIR/gen2.out" 2>&1 || die "gen_events failed: $(cat "$T_DIR/gen2.out")"
check "meterd b consumes every partition after waking (5000 new messages)" wait_caught_up 60
if ((!LAST_OK)); then
	say "finishing the count with a fresh meterd c"
	# Finish the count with a fresh worker, so the totals can still be checked.
	meterd_stop b
	meterd_start c
	wait_caught_up 120 || die "a fresh meterd did not catch up either"
	meterd_stop c
fi
check_no_eviction
check_rollups "$T_DIR/oracle" fz
check_rollups "$T_DIR/oracle2" fy
meterd_alive b && meterd_stop b
test_done
