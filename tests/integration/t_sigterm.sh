#!/usr/bin/env bash
# t_sigterm: SIGTERM (and SIGINT) make meterd commit the batch in hand and
# exit 0 promptly; a restart continues where it stopped; totals are exact.
source "$(dirname "$0")/lib.sh"
test_init --partitions 8

stored() { sql "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE group_id = '$T_GROUP'"; }

# ---- part A: the batch in hand is committed, not dropped ----
# Batches of 5000 or 60 s: 8000 messages make one full batch (committed at
# once) and a partial one that nothing but the shutdown would commit. One
# worker: each worker fills its own batches from its own partitions.
meterd_start a --batch-max 5000 --batch-wait 60s --workers 1
wait_schema
gen --seed "${SEED:-$RANDOM}" --events 8000 --tenants 10 --tenant-prefix sa --dup-rate 5 \
	--oracle "$T_DIR/oracle-a" >"$T_DIR/gen-a.out" 2>&1 || die "gen_events failed: $(cat "$T_DIR/gen-a.out")"
wait_for "the first full batch" 60 "SELECT sum(next_offset) >= 5000 FROM consumer_offsets
                                    WHERE group_id = '$T_GROUP'" || die "meterd stalled"
check_eq "stored before SIGTERM (one full batch)" 5000 "$(stored)"
# Give meterd a moment to poll the remaining 3000 local messages into its
# batch (a precondition, not an assertion: it takes milliseconds).
sleep 1
meterd_stop a 40
check_eq "exit code after SIGTERM" 0 "$MD_RC"
check_eq "the partial batch was committed at shutdown (stored offsets)" 8000 "$(stored)"
check_rollups "$T_DIR/oracle-a" sa

# ---- part B: signals during a load run ----
export METER_BATCH_MAX=2000
meterd_start a
gen --seed "${SEED:-$RANDOM}" --events 60000 --tenants 30 --tenant-prefix st --dup-rate 5 \
	--bad-rate 1 --rate 4000 --oracle "$T_DIR/oracle" >"$T_DIR/gen.out" 2>&1 &
GEN_PID=$!
for sig in TERM INT; do
	at=$(($(stored) + 10000))
	wait_for "$at messages stored" 90 "SELECT sum(next_offset) >= $at FROM consumer_offsets
	                                   WHERE group_id = '$T_GROUP'" || die "meterd stalled"
	AT_SIG=$(stored)
	say "sending SIG$sig at $AT_SIG messages stored"
	t0=$SECONDS
	meterd_stop a 40 "$sig"
	check_eq "exit code after SIG$sig" 0 "$MD_RC"
	check "exited within 30 s of SIG$sig ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -le 30
	check "meterd said it finished its batch and stopped" test "$(log_count a '^.*stopped: ')" -eq 1
	meterd_start a
done

wait "$GEN_PID" || die "gen_events failed: $(cat "$T_DIR/gen.out")"
cat "$T_DIR/gen.out"
SENT=$(oracle_val "$T_DIR/oracle" sent)
check "the last signal came mid-stream ($AT_SIG < $((SENT + 8000)) stored)" test "$AT_SIG" -lt $((SENT + 8000))
wait_caught_up 120
check_no_eviction
check_rollups "$T_DIR/oracle" st
check_rejects "$T_DIR/oracle"
meterd_stop a
check_eq "final exit code" 0 "$MD_RC"
test_done
