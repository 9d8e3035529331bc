#!/usr/bin/env bash
# t_duplicates: an event sent twice (same id, different offsets, in one batch
# and in separate batches, on another partition, with a different payload) is
# counted once; a crash (kill -9) mid-stream, crashes right before and right
# after a COMMIT (test failpoints), and a redelivery of batches that were
# already committed count nothing twice.
source "$(dirname "$0")/lib.sh"
test_init --partitions 8

export METER_BATCH_MAX=500
meterd_start a
wait_schema

# ---- part A: hand-made duplicates ----
NOW=$(utc_now)
E1=$(event d1 acme "$NOW" '"user_id":"u-1","operation":"chat","input_tokens":100,"output_tokens":10,"cost":"0.01"')
E1X=$(event d1 acme "$NOW" '"user_id":"u-9","operation":"chat","input_tokens":999,"output_tokens":999,"cost":"9"')
E2=$(event d2 acme "$NOW" '"user_id":"u-1","operation":"chat","input_tokens":200,"output_tokens":20,"cost":"0.02"')
E3=$(event d1 beta "$NOW" '"operation":"chat","input_tokens":5,"output_tokens":5,"cost":"0.005"')
printf 'acme\t%s\nacme\t%s\nacme\t%s\n' "$E1" "$E1" "$E2" >"$T_DIR/a1.kv"
printf 'acme\t%s\n' "$E1" >"$T_DIR/a2.kv"
produce_lines "$T_DIR/a1.kv" -p 0 # d1 twice in one batch
produce_lines "$T_DIR/a2.kv" -p 1 # d1 again on another partition
wait_caught_up 60
printf 'acme\t%s\n' "$E2" >"$T_DIR/a3.kv"
printf 'acme\t%s\nbeta\t%s\n' "$E1X" "$E3" >"$T_DIR/a4.kv"
produce_lines "$T_DIR/a3.kv" -p 0 # d2 again, in a later batch
produce_lines "$T_DIR/a4.kv" -p 2 # d1 with another payload; d1 of another tenant
wait_caught_up 60
check_eq "acme and beta events in the log" "acme d1; acme d2; beta d1" \
	"$(sql "SELECT string_agg(tenant_id || ' ' || event_id, '; ' ORDER BY 1) FROM events")"
check_eq "acme month (events requests input output cost): first d1 and d2 only" \
	"2 2 300 30 30000000000" \
	"$(sql "SELECT events || ' ' || requests || ' ' || input_tokens || ' ' || output_tokens || ' ' || cost_pusd
	          FROM rollups WHERE tenant_id = 'acme' AND subject_type = 'tenant' AND period = 'month'")"
check_eq "acme users (the duplicate's user u-9 never appears)" "u-1 2" \
	"$(sql "SELECT string_agg(subject_id || ' ' || events, '; ') FROM rollups
	          WHERE tenant_id = 'acme' AND subject_type = 'user' AND period = 'day'")"
check_eq "beta: same id as acme's d1, still counted" "1 5" \
	"$(sql "SELECT events || ' ' || input_tokens FROM rollups
	          WHERE tenant_id = 'beta' AND subject_type = 'tenant' AND period = 'day'")"

# ---- part B: kill -9 mid-stream, restart ----
stored() { sql "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE group_id = '$T_GROUP'"; }
BASE=$(stored)
gen --seed "${SEED:-$RANDOM}" --events 20000 --tenants 16 --tenant-prefix dup --dup-rate 10 \
	--rate 4000 --oracle "$T_DIR/oracle" >"$T_DIR/gen.out" &
GEN_PID=$!
wait_for "meterd to store 4000 offsets" 60 \
	"SELECT sum(next_offset) >= $BASE + 4000 FROM consumer_offsets WHERE group_id = '$T_GROUP'"
meterd_kill a
AT_KILL=$(sql "SELECT sum(next_offset) - $BASE FROM consumer_offsets WHERE group_id = '$T_GROUP'")
say "killed meterd (kill -9) with $AT_KILL of 20000 generated messages stored"
meterd_start a
wait "$GEN_PID" || die "gen_events failed: $(cat "$T_DIR/gen.out")"
cat "$T_DIR/gen.out"
check "the kill came mid-stream ($AT_KILL < 20000 stored)" test "$AT_KILL" -lt 20000
wait_caught_up 120
check_rollups "$T_DIR/oracle" dup
check "restart resumed from stored offsets (log: starts at stored offset N > 0)" \
	test "$(log_count a 'starts at stored offset [1-9]')" -gt 0

# ---- part B2: crashes at exact points (test failpoints: SIGKILL there) ----
# Right after a COMMIT (before the Kafka commit and anything else), then with
# a batch applied but its COMMIT not sent: each restart gets the messages
# after the last committed batch again. Only the failpoint runs consume
# between the crashes: a plain meterd started in between could drain the
# stream before the second failpoint is reached (seen once in 4 runs).
BASE=$(stored)
meterd_stop a
gen --seed "${SEED:-$RANDOM}" --events 6000 --tenants 8 --tenant-prefix dq --dup-rate 10 \
	--oracle "$T_DIR/oracle-b2" >"$T_DIR/gen-b2.out" 2>&1 || die "gen_events failed: $(cat "$T_DIR/gen-b2.out")"
for fp in after_commit:2 before_commit:2; do
	METER_TEST_FAILPOINTS=$fp meterd_start a
	deadline=$((SECONDS + 60))
	while meterd_alive a && ((SECONDS < deadline)); do sleep 0.2; done
	check "meterd died at failpoint $fp" bash -c "! kill -0 ${MD_PID[a]} 2>/dev/null"
	wait "${MD_PID[a]}" 2>/dev/null || true
	say "after $fp: $(($(stored) - BASE)) of 6000 messages stored"
done
meterd_start a
wait_caught_up 120
check_rollups "$T_DIR/oracle-b2" dq

# ---- part C: committed batches delivered again ----
# Rewind half the partitions to 0: everything there arrives a second time, as
# after a consumer that lost its offsets or an operator's replay.
meterd_stop a
check_eq "meterd exit code on SIGTERM" 0 "$MD_RC"
sql "UPDATE consumer_offsets SET next_offset = 0 WHERE group_id = '$T_GROUP' AND partition % 2 = 0" >/dev/null
REPLAY=$(topic_offsets "$T_TOPIC" | awk '$1 % 2 == 0 {n += $3} END {print n + 0}')
meterd_start a
wait_caught_up 120
meterd_stop a
check_rollups "$T_DIR/oracle" dup
check_rollups "$T_DIR/oracle-b2" dq
check_eq "replay: every message a duplicate (meterd's counted, duplicates, rejected)" \
	"0 $REPLAY 0" "$(grep -o 'stopped: .*' "$T_DIR/meterd-a.log" | tail -n 1 |
		sed -E 's/.* ([0-9]+) counted, ([0-9]+) duplicates, ([0-9]+) rejected.*/\1 \2 \3/')"
test_done
