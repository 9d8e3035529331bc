#!/usr/bin/env bash
# t_pg_outage: PostgreSQL stops for ~10 s while events stream in. meterd
# keeps running, logs the trouble, retries with backoff, resumes by itself
# when the database is back, and loses and doubles nothing.
source "$(dirname "$0")/lib.sh"
test_init --partitions 8

export METER_BATCH_MAX=1000
meterd_start a
wait_schema
PID=${MD_PID[a]}

gen --seed "${SEED:-$RANDOM}" --events 40000 --tenants 20 --tenant-prefix pg --dup-rate 5 \
	--bad-rate 1 --rate 2500 --oracle "$T_DIR/oracle" >"$T_DIR/gen.out" 2>&1 &
GEN_PID=$!
wait_for "meterd to store 5000 offsets" 60 \
	"SELECT coalesce(sum(next_offset), 0) >= 5000 FROM consumer_offsets WHERE group_id = '$T_GROUP'"

# Whatever happens next, the following tests need PostgreSQL back.
at_exit '"$ROOT/dev/env.sh" pg-start "$METER_ENV_DIR" >/dev/null 2>&1'
say "stopping PostgreSQL"
"$ROOT/dev/env.sh" pg-stop "$METER_ENV_DIR"
DOWN_AT=$SECONDS
sleep 10 # the outage itself (a fault's duration, not an assertion)
check "meterd still running with the database down" meterd_alive a
WARNS=$(log_count a 'retrying in')
"$ROOT/dev/env.sh" pg-start "$METER_ENV_DIR"
say "PostgreSQL back after $((SECONDS - DOWN_AT)) s"
check "meterd logged the database trouble and its retries while it was down ($WARNS lines)" \
	test "$WARNS" -gt 0

wait "$GEN_PID" || die "gen_events failed: $(cat "$T_DIR/gen.out")"
cat "$T_DIR/gen.out"
wait_caught_up 120
check "meterd logged that it resumed" test "$(log_count a 'resumed|available again')" -gt 0
check_eq "meterd is the same process (no exit, no restart)" "$PID" "${MD_PID[a]}"
check "meterd still running" meterd_alive a
check_no_eviction
check_rollups "$T_DIR/oracle" pg
check_rejects "$T_DIR/oracle"
meterd_stop a
check_eq "meterd exit code on SIGTERM" 0 "$MD_RC"
test_done
