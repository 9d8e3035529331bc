#!/usr/bin/env bash
# More limit kinds (issue 4): a cost limit set in USD, a rolling 30-day
# window fed by late events, and a plan that expired (the free plan applies).
source "$(dirname "$0")/lib.sh"
test_init --partitions 2
limits_init 2

SEQ=0
# send TENANT N TIME 'DATA FIELDS'
send() {
	local f=$T_DIR/send.$SEQ i
	: >"$f"
	for ((i = 0; i < $2; i++)); do
		SEQ=$((SEQ + 1))
		printf '%s\t%s\n' "$1" "$(event "m-$SEQ" "$1" "$3" "$4")" >>"$f"
	done
	produce_lines "$f"
}

add_tenant cost1 UTC
add_tenant roll1 UTC
add_tenant exp1 UTC
ctl limit set cost1 cost day 0.01 >/dev/null
ctl limit set roll1 requests rolling30 100 >/dev/null
ctl limit set roll1 requests day unlimited >/dev/null
ctl limit set roll1 requests month unlimited >/dev/null
ctl tenant set exp1 --plan pro --plan-expires 2020-01-01T00:00:00Z >/dev/null
check_eq "an expired plan shows the free plan in force" free \
	"$(ctl tenant show exp1 --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["effective_plan"])')"
check_eq "limit show says where a limit comes from" "requests rolling30 100 tenant" \
	"$(ctl limit show roll1 --json | "$PY" -c 'import json,sys
for l in json.load(sys.stdin):
    if l["period"] == "rolling30": print(l["metric"], l["period"], l["limit"], l["source"])')"

meterd_start a
log_wait a "assigned" 60 || die "meterd did not get its partitions"
NOW=$(utc_now)

# Cost: $0.004 each (as given by the caller): the third reaches $0.012 >= $0.01.
send cost1 2 "$NOW" '"operation":"chat","cost":"0.004"'
wait_for "two priced events counted" 60 "SELECT coalesce(sum(events), 0) = 2 FROM rollups WHERE tenant_id = 'cost1' AND subject_type = 'tenant' AND period = 'day'"
check_eq "cost1 not blocked at \$0.008 of \$0.01" "" "$(flag tenant/cost1 state | sed 's/^ok$//')"
send cost1 1 "$NOW" '"operation":"chat","cost":"0.004"'
wait_flag tenant/cost1 state blocked 30
check_eq "cost limit flag metric" cost "$(flag tenant/cost1 metric)"
check_eq "cost limit in pico-USD" 10000000000 "$(flag tenant/cost1 limit)"
check_eq "cost used in pico-USD" 12000000000 "$(flag tenant/cost1 used)"

# Rolling 30 days: 60 requests two days ago (late but within the 72 h bound)
# and 40 today reach 100; the window falls below 100 when the day of the 60
# leaves it, 28 days after tomorrow's midnight.
TWO_DAYS_AGO=$(date -u -d '2 days ago' +%Y-%m-%dT12:00:00Z)
send roll1 60 "$TWO_DAYS_AGO" '"operation":"chat"'
send roll1 39 "$NOW" '"operation":"chat"'
wait_for "99 rolling events counted" 60 "SELECT coalesce(sum(events), 0) = 99 FROM rollups WHERE tenant_id = 'roll1' AND subject_type = 'tenant' AND period = 'day'"
check_eq "roll1 not blocked at 99 of 100" "" "$(flag tenant/roll1 state | sed 's/^ok$//')"
send roll1 1 "$NOW" '"operation":"chat"'
wait_flag tenant/roll1 state blocked 30
check_eq "rolling flag period" rolling30 "$(flag tenant/roll1 period)"
check_eq "rolling flag used" 100 "$(flag tenant/roll1 used)"
check_eq "rolling until: the midnight the old day leaves the window" \
	"$(date -u -d "$(date -u -d '2 days ago' +%F) + 30 days" +%Y-%m-%dT00:00:00Z)" \
	"$(flag tenant/roll1 until)"
# The usage document gives each limit its resets_at: a day limit the day's
# end, a rolling window at its limit the flag's until (null below it).
limit_resets() { # TENANT METRIC PERIOD
	ctl usage "$1" --day "${NOW%%T*}" --json | "$PY" -c 'import json, sys
d = json.load(sys.stdin)
print(*[l.get("resets_at", "missing") for l in d["limits"]
        if l["metric"] == sys.argv[1] and l["period"] == sys.argv[2]])' "$2" "$3"
}
check_eq "usage: the rolling limit resets when its flag ends" "$(flag tenant/roll1 until)" \
	"$(limit_resets roll1 requests rolling30)"
check_eq "usage: a day limit resets at the day's end" \
	"$(date -u -d "${NOW%%T*} + 1 day" +%Y-%m-%dT00:00:00Z)" "$(limit_resets cost1 cost day)"
ctl limit set cost1 requests rolling30 1000 >/dev/null
check_eq "usage: a rolling limit below its limit has no resets_at" None \
	"$(limit_resets cost1 requests rolling30)"

# Expired plan: the free plan's 50 requests a day apply, not pro's 5,000.
send exp1 50 "$NOW" '"operation":"chat"'
wait_flag tenant/exp1 state blocked 30
check_eq "expired plan blocks at the free limit" 50 "$(flag tenant/exp1 limit)"
ctl tenant set exp1 --plan-expires none >/dev/null
wait_flag tenant/exp1 state ok 30
check_eq "renewing the plan clears the flag" ok "$(flag tenant/exp1 state)"

meterd_stop a
check_eq "meterd exits 0" 0 "$MD_RC"
test_done
