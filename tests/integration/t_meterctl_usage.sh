#!/usr/bin/env bash
# t_meterctl_usage: after a small known stream, `meterctl usage` prints the
# exact totals: --month and --day, for the tenant, a user (--user) and a key
# (--key), as stable JSON (--json) and as text; limits show used and
# remaining (cost in USD in the text, pico-USD digits in --json); usage
# errors exit 2, an unknown tenant exits 1. The text gives each limit row its
# period, and says when the subject is blocked.
source "$(dirname "$0")/lib.sh"
test_init --partitions 2
[[ -x $METERCTL ]] || die "$METERCTL is missing; run 'make all' first"

meterd_start a
wait_schema

TODAY=$(date -u +%Y-%m-%d)
MONTH=${TODAY:0:7}
YESTERDAY=$(date -u -d "$TODAY -1 day" +%Y-%m-%d)
# Early today and noon yesterday: inside the 72 h lateness bound, never in
# the future (the allowed skew is 5 min).
T0=${TODAY}T00:00:01Z
T1=${TODAY}T00:00:02.5Z
TY=${YESTERDAY}T12:00:00Z

{
	printf 'acme\t%s\n' "$(event m1 acme "$T0" '"user_id":"u-1","api_key_id":"k-1","provider":"openai","model":"gpt-4o-mini","operation":"chat","input_tokens":1200,"cache_read_input_tokens":200,"output_tokens":300,"cost":"0.0042"')"
	printf 'acme\t%s\n' "$(event m2 acme "$T1" '"user_id":"u-1","api_key_id":"k-2","provider":"anthropic","model":"claude-sonnet-4-5","operation":"chat","input_tokens":100,"output_tokens":50,"reasoning_output_tokens":10,"requests":2,"cost":"0.000000000123"')"
	printf 'acme\t%s\n' "$(event m3 acme "$T1" '"user_id":"u-2","api_key_id":"k-1","provider":"gemini","model":"gemini-2.5-flash","operation":"rag","input_tokens":7,"output_tokens":3,"cost":"1.5"')"
	# No cost: priced from the price table (openai gpt-4o-mini).
	printf 'acme\t%s\n' "$(event m4 acme "$T1" '"user_id":"u-3","provider":"openai","model":"gpt-4o-mini","operation":"chat","input_tokens":1000,"cache_read_input_tokens":100,"output_tokens":10')"
	printf 'acme\t%s\n' "$(event m5 acme "$TY" '"user_id":"u-1","api_key_id":"k-1","provider":"openai","model":"gpt-4o-mini","operation":"chat","input_tokens":5,"output_tokens":5,"cost":"0.5"')"
	# Not counted: a duplicate of m1 and a bad event.
	printf 'acme\t%s\n' "$(event m1 acme "$T0" '"user_id":"u-1","api_key_id":"k-1","provider":"openai","model":"gpt-4o-mini","operation":"chat","input_tokens":1200,"cache_read_input_tokens":200,"output_tokens":300,"cost":"0.0042"')"
	printf 'acme\t%s\n' "$(event m6 acme "$T1" '"operation":"chat","input_tokens":-5')"
} >"$T_DIR/events.kv"
produce_lines "$T_DIR/events.kv"
wait_caught_up 60

# The cost of m4 from the price row in force, computed here.
read -r IN CACHED OUT <<<"$(sql "SELECT input_pusd, cached_input_pusd, output_pusd FROM prices
	WHERE provider = 'openai' AND model = 'gpt-4o-mini' AND valid_from <= '$T1'
	ORDER BY valid_from DESC LIMIT 1" | tr '|' ' ')"
[[ -n $IN ]] || die "no price for openai gpt-4o-mini"
M4=$((900 * IN + 100 * CACHED + 10 * OUT))
say "m4 priced at $M4 pUSD (900 x $IN + 100 x $CACHED + 10 x $OUT)"

# "events requests input cached output reasoning total cost_pusd cost_usd"
usd() { printf '%d.%012d' $(($1 / 1000000000000)) $(($1 % 1000000000000)); }
totals() { # events requests input cached output reasoning cost_pusd
	echo "$1 $2 $3 $4 $5 $6 $(($3 + $5)) $7 $(usd "$7")"
}
P1=4200000000 P2=123 P3=1500000000000 P5=500000000000
DAY_TODAY=$(totals 4 5 2307 300 363 10 $((P1 + P2 + P3 + M4)))
DAY_YESTERDAY=$(totals 1 1 5 0 5 0 $P5)
if [[ ${YESTERDAY:0:7} == "$MONTH" ]]; then
	MONTH_ALL=$(totals 5 6 2312 300 368 10 $((P1 + P2 + P3 + M4 + P5)))
else
	MONTH_ALL=$DAY_TODAY # today is the 1st: yesterday is last month
fi

# usage_json ARGS...: "period period_start subject | totals" from --json.
usage_json() {
	local out
	out=$(ctl usage "$@" --json) || { echo "exit $?"; return; }
	"$PY" -c '
import json, sys
d = json.loads(sys.stdin.read())
u = d["usage"]
print(d["period"], d["period_start"], d["subject"], "|", *(u[k] for k in
      ("events", "requests", "input_tokens", "cached_input_tokens", "output_tokens",
       "reasoning_tokens", "total_tokens", "cost_pusd", "cost_usd")))' <<<"$out"
}
check_eq "usage acme --month $MONTH --json" "month $MONTH-01 tenant/acme | $MONTH_ALL" \
	"$(usage_json acme --month "$MONTH")"
check_eq "usage acme --json (current month by default)" "month $MONTH-01 tenant/acme | $MONTH_ALL" \
	"$(usage_json acme)"
check_eq "usage acme --day $TODAY --json" "day $TODAY tenant/acme | $DAY_TODAY" \
	"$(usage_json acme --day "$TODAY")"
check_eq "usage acme --day $YESTERDAY --json" "day $YESTERDAY tenant/acme | $DAY_YESTERDAY" \
	"$(usage_json acme --day "$YESTERDAY")"
check_eq "usage acme --day $TODAY --user u-1 --json (m1, m2)" \
	"day $TODAY user/acme/u-1 | $(totals 2 3 1300 200 350 10 $((P1 + P2)))" \
	"$(usage_json acme --day "$TODAY" --user u-1)"
check_eq "usage acme --day $TODAY --key k-1 --json (m1, m3)" \
	"day $TODAY key/acme/k-1 | $(totals 2 2 1207 200 303 0 $((P1 + P3)))" \
	"$(usage_json acme --day "$TODAY" --key k-1)"
check_eq "usage acme --day $TODAY --user u-3 --json (m4, priced)" \
	"day $TODAY user/acme/u-3 | $(totals 1 1 1000 100 10 0 $M4)" \
	"$(usage_json acme --day "$TODAY" --user u-3)"
check_eq "usage acme --day $TODAY --user nobody --json (zeros)" \
	"day $TODAY user/acme/nobody | $(totals 0 0 0 0 0 0 0)" \
	"$(usage_json acme --day "$TODAY" --user nobody)"

# Limits: the day's requests limit shows the day's requests as used, and
# remaining = limit - used.
check_eq "day requests limit: used, remaining = limit - used" "5 ok" \
	"$(ctl usage acme --day "$TODAY" --json | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
l = [x for x in d["limits"] if x["metric"] == "requests" and x["period"] == "day"]
if not l:
    print("no requests/day limit in", [(x["metric"], x["period"]) for x in d["limits"]])
else:
    l = l[0]
    ok = l["limit"] is None and l["remaining"] is None or l["remaining"] == max(l["limit"] - l["used"], 0)
    print(l["used"], "ok" if ok else "remaining %r for limit %r" % (l["remaining"], l["limit"]))')"

TEXT=$(ctl usage acme --month "$MONTH" 2>&1) || true
check "text output names the subject and the month's cost" \
	grep -qF "$(echo "$MONTH_ALL" | awk '{print $NF}')" <<<"$(grep -F tenant/acme <<<"$TEXT" >/dev/null && echo "$TEXT")"

# A cost limit, given in USD: the text shows used, limit and remaining in
# USD as well (the JSON keeps strings of pico-USD digits).
ctl limit set acme cost month 5.25 >/dev/null || die "limit set acme cost month 5.25 failed"
COST_JSON=$(ctl usage acme --month "$MONTH" --json | "$PY" -c '
import json, sys
from decimal import Decimal
def usd(p):
    s = format(Decimal(p) / 10**12, "f")
    return s.rstrip("0").rstrip(".") if "." in s else s
l = [x for x in json.load(sys.stdin)["limits"] if x["metric"] == "cost" and x["period"] == "month"][0]
print(l["limit"], "|", usd(l["used"]), usd(l["limit"]), usd(l["remaining"]))')
check_eq "usage --json: the cost limit stays pico-USD digits" 5250000000000 "${COST_JSON%% |*}"
check_eq "usage text: the cost row in USD (used, limit, remaining)" "${COST_JSON#*| }" \
	"$(ctl usage acme --month "$MONTH" | awk '$1 == "cost" && $2 == "(USD)" && $3 == "month" {print $4, $5, $6}')"

# Two limits on one metric (tokens per day and per 30 days): each text row
# says its period. Today's 2670 tokens are over 100 a day: blocked, and the
# text says so (the JSON's flag did).
ctl limit set acme tokens rolling30 1000000 >/dev/null || die "limit set acme tokens rolling30 failed"
ctl limit set acme tokens day 100 >/dev/null || die "limit set acme tokens day 100 failed"
TEXT=$(ctl usage acme --day "$TODAY")
DAY_TODAY_TOK=$(awk '{print $7}' <<<"$DAY_TODAY")
check_eq "usage --day text: the tokens rows with their periods (period used limit)" \
	"day ${DAY_TODAY_TOK} 100; rolling30 $((DAY_TODAY_TOK + $(awk '{print $7}' <<<"$DAY_YESTERDAY"))) 1000000" \
	"$(awk '$1 == "tokens" {printf "%s%s %s %s", sep, $2, $3, $4; sep = "; "}' <<<"$TEXT")"
check_eq "usage --json: blocked" blocked \
	"$(ctl usage acme --day "$TODAY" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["flag"]["state"])')"
check "usage text: says it is blocked, by which limit" \
	grep -qE "^  BLOCKED now: tokens day limit of 100 reached \(used [0-9]+\) until " <<<"$TEXT"
ctl limit set acme tokens day unlimited >/dev/null || die "limit set acme tokens day unlimited failed"
check "usage text: no longer blocked once the limit is lifted" \
	bash -c '! grep -q BLOCKED <<<"$1"' _ "$(ctl usage acme --day "$TODAY")"

# Errors: usage errors exit 2 with one line on stderr and nothing on stdout.
exit_of() {
	local rc=0
	ctl "$@" >"$T_DIR/out" 2>"$T_DIR/err" || rc=$?
	echo "$rc $(wc -l <"$T_DIR/out") $(wc -l <"$T_DIR/err")"
}
check_eq "usage without a tenant: exit 2 (rc, stdout lines, stderr lines)" "2 0" "$(exit_of usage | cut -d' ' -f1,2)"
check_eq "usage --day 2026-13-40: exit 2, one error line" "2 0 1" "$(exit_of usage acme --day 2026-13-40)"
check_eq "usage --month 2026-1: exit 2" "2 0 1" "$(exit_of usage acme --month 2026-1)"
check_eq "usage --day and --month together: exit 2" "2 0 1" "$(exit_of usage acme --day "$TODAY" --month "$MONTH")"
check_eq "usage --user and --key together: exit 2" "2 0 1" "$(exit_of usage acme --user u-1 --key k-1)"
check_eq "usage with an unknown option: exit 2" "2 0" "$(exit_of usage acme --bogus | cut -d' ' -f1,2)"
check_eq "usage of an unknown tenant: exit 1" "1 0 1" "$(exit_of usage nosuch --json)"
# The notifier takes an address with exactly one '@' (fuzz_webhook found
# "a@b@" accepted): meterctl refuses what the notifier would never deliver.
check_eq "tenant add --email a@b@c: exit 2" "2 0 1" "$(exit_of tenant add mailx --email a@b@c)"
check_eq "tenant add --email @a@b: exit 2" "2 0 1" "$(exit_of tenant add mailx --email @a@b)"
meterd_stop a
check_eq "meterd exit code on SIGTERM" 0 "$MD_RC"
test_done
