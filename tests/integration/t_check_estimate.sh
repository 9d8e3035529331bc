#!/usr/bin/env bash
# meterctl check --estimate-requests/--estimate-tokens/--remaining: libmeter
# follows usage.rollups and answers with the remaining amounts of the
# current day and month; an estimate that exceeds them blocks (exit 3), one
# that fits does not (exit 0); the flag still decides first; bad estimates
# are usage errors (exit 2). First with records written by hand in the
# contract's format (tighter user limits, closed records), then with the
# records meterd's rollup publisher writes after counting real events.
source "$(dirname "$0")/lib.sh"
test_init --partitions 1

limits_init 2
[[ -n ${METER_TOPIC_ROLLUPS:-} ]] || die "test_init did not make a rollups topic"

# The current day and month on the wall clock, UTC. The period bounds are a
# day around now (the key's date is what orders periods, the bounds what
# makes a record current), so a run across midnight cannot flake.
DAY=$(date -u +%F)
MONTH=$(date -u +%Y-%m)
STARTS=$(date -u -d '-1 day' +%Y-%m-%dT%H:%M:%SZ)
ENDS=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
ENDS_EPOCH=$(date -u -d "$ENDS" +%s)

# rollup_line SUBJECT PERIOD START TYPE REQ_LIMIT REQ_USED TOK_LIMIT TOK_USED
rollup_line() {
	"$PY" - "$@" "$STARTS" "$ENDS" <<'EOF'
import json, sys
subject, period, start, typ, rl, ru, tl, tu, starts, ends = sys.argv[1:11]
def entry(lim, used):
    if lim == "null":
        return {"limit": None, "used": used, "remaining": None}
    return {"limit": lim, "used": used, "remaining": str(max(0, int(lim) - int(used)))}
parts = subject.split("/")
v = {"type": typ, "subject": subject, "tenant_id": parts[1], "subject_type": parts[0],
     "subject_id": parts[2] if len(parts) > 2 else "", "period": period, "period_start": start,
     "tz": "UTC", "starts_at": starts, "ends_at": ends, "events": int(ru), "requests": int(ru),
     "tokens": int(tu), "cost_pusd": "0", "cost_usd": "0",
     "limits": {"requests": entry(rl, ru), "tokens": entry(tl, tu)}, "blocked": False,
     "price_version": 1, "updated_at": starts}
print(f"{subject}/{period}/{start}\t{json.dumps(v)}")
EOF
}

{
	rollup_line tenant/acme day "$DAY" rollup 50 47 100000 98500
	rollup_line tenant/acme month "$MONTH" rollup 500 100 1000000 2000
	rollup_line user/acme/u-1 day "$DAY" rollup null 3 5000 4800
	rollup_line tenant/gone day "$DAY" closed 50 50 100 100
} >"$T_DIR/rollups.tsv"
kcat -b "$METER_KAFKA_BROKERS" -P -t "$METER_TOPIC_ROLLUPS" -K $'\t' -l "$T_DIR/rollups.tsv" ||
	die "kcat could not produce the rollups"

rc=0
ctl check acme --estimate-tokens 1000 >"$T_DIR/ok.out" 2>&1 || rc=$?
check_eq "an estimate within the remaining tokens: exit" 0 "$rc"
check "it says allowed" grep -q '^allowed$' "$T_DIR/ok.out"
check "it prints the remaining requests of the day" \
	grep -Eq "requests +3 remaining of 50 \(tenant/acme, day, resets $(date -u -d "@$ENDS_EPOCH" +%Y-%m-%dT%H:%M:%SZ)\)" "$T_DIR/ok.out"
check "and the remaining tokens" grep -Eq 'tokens +1500 remaining of 100000' "$T_DIR/ok.out"

rc=0
ctl check acme --estimate-tokens 2000 >"$T_DIR/over.out" 2>&1 || rc=$?
check_eq "an estimate above the remaining tokens: exit" 3 "$rc"
check "it says which limit" grep -q 'blocked: an estimate of 2000 tokens exceeds the 1500 remaining of the tokens per day limit of 100000' "$T_DIR/over.out"

rc=0
ctl check acme --user u-1 --estimate-tokens 201 --json >"$T_DIR/user.json" 2>&1 || rc=$?
check_eq "the user's tighter day (200 tokens left) blocks 201: exit" 3 "$rc"
check_eq "JSON: remaining tokens, subject, headers" "200 user/acme/u-1 200 3 True" \
	"$("$PY" -c 'import json,sys
d = json.load(open(sys.argv[1]))
r = d["remaining"]
print(r["tokens"]["remaining"], r["tokens"]["subject"], d["headers"]["X-RateLimit-Remaining-Tokens"],
      d["headers"]["X-RateLimit-Remaining-Requests"], d["estimate"]["exceeds"])' "$T_DIR/user.json")"

rc=0
ctl check gone --estimate-requests 1 --json >"$T_DIR/gone.json" 2>&1 || rc=$?
check_eq "a closed period is ignored: exit" 0 "$rc"
check_eq "nothing known for it" "None 0" "$("$PY" -c 'import json,sys
d = json.load(open(sys.argv[1])); print(d["remaining"]["requests"], d["remaining"]["records"])' "$T_DIR/gone.json")"

# A flag decides first, whatever the estimate.
printf 'tenant/acme\t{"subject":"tenant/acme","state":"blocked","metric":"requests","period":"day","limit":50,"used":50,"until":"%s","reason":"requests per day limit of 50 reached","manual":false}\n' "$ENDS" |
	kcat -b "$METER_KAFKA_BROKERS" -P -t "$METER_TOPIC_LIMITS" -K $'\t' || die "kcat failed"
rc=0
ctl check acme --remaining >"$T_DIR/flag.out" 2>&1 || rc=$?
check_eq "a blocking flag with --remaining: exit" 3 "$rc"
check "the flag's reason" grep -q 'blocked: requests per day limit of 50 reached' "$T_DIR/flag.out"
check "nothing remains while it blocks" grep -Eq 'requests +0 remaining of 50' "$T_DIR/flag.out"

# A rolling30 limit's flag: its period (the schema's longest name) whole in
# the remaining amounts, not "rolling" (libmeter held 8 bytes for it).
printf 'tenant/r30\t{"subject":"tenant/r30","state":"blocked","metric":"tokens","period":"rolling30","limit":1000,"used":1000,"until":"%s","reason":"tokens per rolling30 limit of 1000 reached","manual":false}\n' "$ENDS" |
	kcat -b "$METER_KAFKA_BROKERS" -P -t "$METER_TOPIC_LIMITS" -K $'\t' || die "kcat failed"
rc=0
ctl check r30 --remaining --json >"$T_DIR/r30.json" 2>&1 || rc=$?
check_eq "a rolling30 flag with --remaining: exit" 3 "$rc"
check_eq "its period, whole, in the flag and the remaining tokens" "rolling30 rolling30" \
	"$("$PY" -c 'import json,sys
d = json.load(open(sys.argv[1])); print(d["period"], d["remaining"]["tokens"]["period"])' "$T_DIR/r30.json")"

# ---- with meterd's own records ------------------------------------------------
# The free plan: 50 requests and 100,000 tokens a day, 500 and 1,000,000 a
# month. 10 calls of 1,000 + 200 tokens leave 40 requests and 88,000 tokens
# (the day is tighter than the month).
meterd_start a
wait_schema
add_tenant e2e UTC
NOW=$(utc_now)
for i in $(seq 1 10); do
	printf 'e2e\t%s\n' "$(event "e2e-$i" e2e "$NOW" '"user_id":"u-1","operation":"chat","input_tokens":1000,"output_tokens":200')"
done >"$T_DIR/e2e.kv"
produce_lines "$T_DIR/e2e.kv"
wait_caught_up 60 || die "meterd did not count the events"
wait_for "the rollup outbox is drained" 60 "SELECT count(*) = 0 FROM rollup_outbox" ||
	die "the rollups were not published"
rc=0
ctl check e2e --user u-1 --remaining --json >"$T_DIR/e2e.json" 2>&1 || rc=$?
check_eq "meterd's records: allowed" 0 "$rc"
check_eq "remaining requests and tokens, from the tenant's day" "40 50 88000 100000 tenant/e2e day" \
	"$("$PY" -c 'import json,sys
r = json.load(open(sys.argv[1]))["remaining"]
print(r["requests"]["remaining"], r["requests"]["limit"], r["tokens"]["remaining"],
      r["tokens"]["limit"], r["tokens"]["subject"], r["tokens"]["period"])' "$T_DIR/e2e.json")"
rc=0
ctl check e2e --user u-1 --estimate-requests 40 --estimate-tokens 88000 >"$T_DIR/e2e-fit.out" 2>&1 || rc=$?
check_eq "an estimate of exactly what remains: allowed" 0 "$rc"
rc=0
ctl check e2e --estimate-tokens 88001 >"$T_DIR/e2e-over.out" 2>&1 || rc=$?
check_eq "one token more: blocked" 3 "$rc"
meterd_stop a
check_eq "meterd exit code" 0 "$MD_RC"

for bad in "--estimate-tokens -5" "--estimate-requests x" "--estimate-tokens"; do
	rc=0
	# shellcheck disable=SC2086 # split the option and its value
	ctl check acme $bad >"$T_DIR/bad.out" 2>&1 || rc=$?
	check_eq "meterctl check acme $bad: usage error" 2 "$rc"
done
test_done
