#!/usr/bin/env bash
# Plan limits and the suspension publisher (issue 4): crossings at the tenant,
# user, key and operation levels become flags on the limits topic with the
# right limit, used and until; flags clear on plan upgrade, reactivation,
# reset, and at the tenant's local midnight without any further event (test
# clock); a crash between commit and publish still publishes; with two meterd
# processes a period-end clear is published once.
source "$(dirname "$0")/lib.sh"
test_init --partitions 4

limits_init 4

ZONE=America/Argentina/Buenos_Aires
TODAY=$(TZ=$ZONE date +%F)
# The next local midnight, as the UTC instant a flag's until must name.
MIDNIGHT_UTC=$(date -u -d "$(TZ=$ZONE date -d tomorrow +%F) 00:00 -0300" +%Y-%m-%dT%H:%M:%SZ)
SEQ=0

# send TENANT N 'DATA FIELDS': N valid events now.
send() {
	local tenant=$1 n=$2 fields=$3 f=$T_DIR/send.$SEQ i now
	now=$(utc_now)
	: >"$f"
	for ((i = 0; i < n; i++)); do
		SEQ=$((SEQ + 1))
		printf '%s\t%s\n' "$tenant" "$(event "ev-$SEQ" "$tenant" "$now" "$fields")" >>"$f"
	done
	produce_lines "$f"
}



counted() { sql "SELECT coalesce(sum(events), 0) FROM rollups WHERE subject_type = 'tenant' AND period = 'day'"; }

add_tenant free1 "$ZONE"
meterd_start a
log_wait a "assigned" 60 || die "meterd did not get its partitions"

# --- the tenant level: 49 requests do not block, the 50th does ---------------
send free1 49 '"user_id":"u-1","api_key_id":"k-1","operation":"chat","input_tokens":10'
wait_for "49 events counted" 60 "SELECT 49 = (SELECT coalesce(sum(events), 0) FROM rollups WHERE tenant_id = 'free1' AND subject_type = 'tenant' AND period = 'day')"
sleep 1 # let a wrongly raised flag show up before asserting there is none
check_eq "no flag after 49 of 50 requests" "" "$(flag tenant/free1 state)"
send free1 1 '"user_id":"u-1","api_key_id":"k-1","operation":"chat","input_tokens":10'
wait_flag tenant/free1 state blocked 30
check_eq "tenant/free1 blocked at the 50th request" blocked "$(flag tenant/free1 state)"
check_eq "flag metric" requests "$(flag tenant/free1 metric)"
check_eq "flag period" day "$(flag tenant/free1 period)"
check_eq "flag limit" 50 "$(flag tenant/free1 limit)"
check_eq "flag used" 50 "$(flag tenant/free1 used)"
check_eq "flag until = next local midnight" "$MIDNIGHT_UTC" "$(flag tenant/free1 until)"
check_eq "flag period_start = local today" "$TODAY" "$(flag tenant/free1 period_start)"
check_eq "users of a blocked tenant are not flagged themselves" "not blocked" "$(blocked user/free1/u-1)"
check_eq "one crossing recorded" 1 "$(sql "SELECT count(*) FROM blocks WHERE tenant_id = 'free1'")"
set +e
CHECK_OUT=$(ctl check free1 --user u-1 2>&1)
CHECK_RC=$?
set -e
check_eq "meterctl check exits 3 for a blocked tenant" 3 "$CHECK_RC"
check "meterctl check says why" grep -q "requests per day limit of 50" <<<"$CHECK_OUT"
check_eq "meterctl check allows another tenant" allowed "$(ctl check nobody 2>&1)"

# --- plan upgrade above usage clears it ----------------------------------------
ctl tenant set free1 --plan pro >"$T_DIR/ctl.out" 2>&1 || { cat "$T_DIR/ctl.out"; die "tenant set"; }
wait_flag tenant/free1 state ok 30
check_eq "upgrade to pro clears tenant/free1" ok "$(flag tenant/free1 state)"
check_eq "crossing cleared as limit_raised" limit_raised \
	"$(sql "SELECT clear_reason FROM blocks WHERE tenant_id = 'free1'")"

# --- user, key and operation levels block only their subject ---------------------
add_tenant t2 UTC
ctl limit set t2 requests day 5 --users >/dev/null
ctl limit set t2 tokens day 1000 --key k-9 >/dev/null
ctl limit set t2 op:video_generation month 2 >/dev/null
send t2 5 '"user_id":"u-1","operation":"chat","input_tokens":1'
send t2 3 '"user_id":"u-2","operation":"chat","input_tokens":1'
wait_flag user/t2/u-1 state blocked 30
check_eq "user/t2/u-1 blocked at 5 requests" blocked "$(flag user/t2/u-1 state)"
check_eq "user limit in the flag" 5 "$(flag user/t2/u-1 limit)"
check_eq "user u-2 (3 requests) not blocked" "not blocked" "$(blocked user/t2/u-2)"
check_eq "tenant t2 not blocked by a user limit" "not blocked" "$(blocked tenant/t2)"
send t2 1 '"user_id":"u-3","api_key_id":"k-9","operation":"chat","input_tokens":600,"output_tokens":400'
wait_flag key/t2/k-9 state blocked 30
check_eq "key/t2/k-9 blocked at 1000 tokens" blocked "$(flag key/t2/k-9 state)"
check_eq "key flag metric" tokens "$(flag key/t2/k-9 metric)"
check_eq "user u-3 of that key not blocked" "not blocked" "$(blocked user/t2/u-3)"
send t2 4 '"user_id":"u-4","operation":"image_generation","units":{"images":1}'
sleep 1
check_eq "4 images do not cross a video limit" "not blocked" "$(blocked tenant/t2)"
send t2 2 '"user_id":"u-4","operation":"video_generation","units":{"video_seconds":8}'
wait_flag tenant/t2 state blocked 30
check_eq "tenant t2 blocked by op:video_generation" op:video_generation "$(flag tenant/t2 metric)"
check_eq "per-operation limit is monthly" month "$(flag tenant/t2 period)"

# --- manual suspension round trip ----------------------------------------------
add_tenant t3 UTC
ctl suspend t3 --reason "unpaid invoice" >/dev/null
wait_flag tenant/t3 state blocked 30
check_eq "suspended flag is manual" True "$(flag tenant/t3 manual)"
check_eq "suspended flag has no until" null "$(flag tenant/t3 until)"
check "suspension reason in the flag" grep -q "unpaid invoice" <<<"$(flag tenant/t3 reason)"
ctl reactivate t3 >/dev/null
wait_flag tenant/t3 state ok 30
check_eq "reactivate clears the flag" ok "$(flag tenant/t3 state)"
check_eq "both actions audited" 2 "$(sql "SELECT count(*) FROM suspension_log WHERE tenant_id = 't3'")"

# --- reset of the current day clears a daily crossing ----------------------------
add_tenant t4 UTC
# These 50 go through meterctl emit (libmeter), as a shell script would.
NOW=$(utc_now)
for i in $(seq 1 50); do event "t4-$i" t4 "$NOW" '"operation":"chat","input_tokens":1'; echo; done >"$T_DIR/t4.jsonl"
# With consumer-only properties (as dev/env.sh exports) and a producer-only
# one: each goes only to the clients librdkafka applies it to, so no
# CONFWARN line ("... is a consumer property and will be ignored by this
# producer instance") from libmeter's producer, its flag reader or the
# flag publisher.
export METER_KAFKA_PROP_session_timeout_ms=6000 METER_KAFKA_PROP_heartbeat_interval_ms=2000
rc=0
METER_KAFKA_PROP_linger_ms=5 ctl emit --file "$T_DIR/t4.jsonl" --topic "$T_TOPIC" \
	>"$T_DIR/emit.out" 2>&1 || rc=$?
check_eq "meterctl emit publishes a file of events" 0 "$rc"
check_eq "meterctl emit: no CONFWARN" "" "$(grep CONFWARN "$T_DIR/emit.out" || true)"
wait_flag tenant/t4 state blocked 30
rc=0
METER_KAFKA_PROP_linger_ms=5 ctl reset t4 --period day --reason "support ticket 812" \
	>"$T_DIR/reset.out" 2>&1 || rc=$?
check_eq "meterctl reset" 0 "$rc"
check_eq "meterctl reset (publishes flags): no CONFWARN" "" "$(grep CONFWARN "$T_DIR/reset.out" || true)"
wait_flag tenant/t4 state ok 30
check_eq "reset clears tenant/t4" ok "$(flag tenant/t4 state)"
check_eq "meterctl check agrees after the reset (no CONFWARN from its reader)" allowed \
	"$(METER_KAFKA_PROP_linger_ms=5 ctl check t4 2>&1)"
check_eq "reset audited with its reason" "support ticket 812" \
	"$(sql "SELECT reason FROM usage_resets WHERE tenant_id = 't4'")"
check_eq "rollups keep every event after a reset" 50 \
	"$(sql "SELECT requests FROM rollups WHERE tenant_id = 't4' AND subject_type = 'tenant' AND period = 'day'")"

# --- crash after commit, before publish: the flag still reaches the topic --------
meterd_stop a
add_tenant t5 UTC
log_mark a
METER_TEST_FAILPOINTS=after_crossing_commit meterd_start a
send t5 50 '"operation":"chat","input_tokens":1'
for _ in $(seq 1 300); do meterd_alive a || break; sleep 0.1; done
check "meterd died at the failpoint" bash -c "! kill -0 ${MD_PID[a]} 2>/dev/null"
check_eq "crossing committed before the crash" 1 "$(sql "SELECT count(*) FROM blocks WHERE tenant_id = 't5'")"
check_eq "its flag not yet published" "" "$(flag tenant/t5 state)"
meterd_start a
wait_flag tenant/t5 state blocked 60
check_eq "flag published after restart" blocked "$(flag tenant/t5 state)"

# --- period end at local midnight, no further event, two meterd processes --------
# Shift both processes' clocks to 2 s past the next UTC midnight: t5's daily
# crossing must clear with no event, published by exactly one of them.
meterd_stop a
SHIFT=$(($(date -d "$(date -u -d tomorrow +%F)T00:00:00Z" +%s) - $(date +%s) + 2))
METER_TEST_CLOCK_OFFSET=$SHIFT meterd_start a
METER_TEST_CLOCK_OFFSET=$SHIFT meterd_start b
wait_flag tenant/t5 state ok 60
check_eq "t5 cleared at its local midnight without events" ok "$(flag tenant/t5 state)"
check_eq "cleared as period_end" period_end "$(sql "SELECT clear_reason FROM blocks WHERE tenant_id = 't5'")"
sleep 3 # a second publication would have to happen within the janitor's 1 s tick
OKS=$(kcat -b "$METER_KAFKA_BROKERS" -C -t "$METER_TOPIC_LIMITS" -o beginning -e -q -f '%k\t%s\n' |
	awk -F'\t' '$1 == "tenant/t5" && $2 ~ /"state": "ok"/' | wc -l)
check_eq "the period-end clear of tenant/t5 published once with two processes" 1 "$OKS"
check_eq "user/t2/u-1 (daily) cleared too" ok "$(flag user/t2/u-1 state)"
if [[ $(date -u +%m) == $(date -u -d tomorrow +%m) ]]; then
	check_eq "tenant/t2 (monthly video limit) still blocked" blocked "$(flag tenant/t2 state)"
else
	check_eq "tenant/t2 (monthly video limit) cleared at the 1st" ok "$(flag tenant/t2 state)"
fi
meterd_stop b
check_eq "meterd b exits 0" 0 "$MD_RC"
meterd_stop a
check_eq "meterd a exits 0" 0 "$MD_RC"

test_done
