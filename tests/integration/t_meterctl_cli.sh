#!/usr/bin/env bash
# t_meterctl_cli: meterctl's command line contract on mistakes an operator
# makes: a typo in a plan name creates nothing and exits 2 with the list of
# plans (plan set|unset|thresholds, tenant add|set --plan); --plan-expires
# takes RFC 3339 with a zone, a date (midnight UTC) or none, and nothing
# else PostgreSQL would read ('yesterday', 'infinity', a time without zone).
# --version and --config-reference work as for the daemons (the second even
# with a bad config file, whose error points to it); --bogus is an unknown
# option (exit 2). --help lists every option and command that the
# subcommands' own usage texts have. Small messages say what was wrong: a
# negative limit, which of metric or period is unknown, why a file cannot be
# opened, an unknown tenant in notifications; reactivate says when there was
# no suspension to lift.
# No meterd: meterctl migrates and publishes the flags itself.
source "$(dirname "$0")/lib.sh"
test_init --partitions 1
[[ -x $METERCTL ]] || die "$METERCTL is missing; run 'make all' first"
ctl migrate >/dev/null || die "meterctl migrate failed"

PLANS="free, starter, pro, enterprise"
# run ARGS...: "rc stdout-lines stderr-lines"; the output in $T_DIR/out, err.
run() {
	local rc=0
	ctl "$@" >"$T_DIR/out" 2>"$T_DIR/err" || rc=$?
	echo "$rc $(wc -l <"$T_DIR/out") $(wc -l <"$T_DIR/err")"
}
err() { cat "$T_DIR/err"; }

# ---- unknown plans -------------------------------------------------------------
check_eq "plan set on an unknown plan: exit 2, one line on stderr" "2 0 1" \
	"$(run plan set nosuch tokens month 5)"
check_eq "... names the plans" "meterctl: unknown plan 'nosuch' (plans: $PLANS)" "$(err)"
check_eq "... and creates no plan" 0 "$(sql "SELECT count(*) FROM plans WHERE id = 'nosuch'")"
check_eq "plan unset on an unknown plan: exit 2" "2 0 1" "$(run plan unset nosuch tokens month)"
check_eq "tenant add --plan nosuch after it: still exit 2" 2 \
	"$(run tenant add t1 --plan nosuch | cut -d' ' -f1)"
check_eq "tenant add --plan bogus: exit 2, the plans by name" \
	"2 0 1 meterctl: unknown plan 'bogus' (plans: $PLANS)" "$(run tenant add t1 --plan bogus) $(err)"
ctl tenant add t1 >/dev/null || die "tenant add t1 failed"
check_eq "tenant set --plan bogus: exit 2, the plans by name" \
	"2 0 1 meterctl: unknown plan 'bogus' (plans: $PLANS)" "$(run tenant set t1 --plan bogus) $(err)"
check_eq "plan thresholds on an unknown plan: exit 2 (usage), the plans by name" \
	"2 0 1 meterctl: unknown plan 'zzz' (plans: $PLANS)" "$(run plan thresholds zzz 80,100) $(err)"
check_eq "plan set on a known plan still works" 0 "$(run plan set pro tokens month 5 | cut -d' ' -f1)"
check_eq "... and sets the limit" 5 \
	"$(sql "SELECT limit_value FROM plan_limits WHERE plan_id = 'pro' AND subject_type = 'tenant'
		AND metric = 'tokens' AND period = 'month'")"

# ---- plan add: the one way to make a plan ---------------------------------------
check_eq "plan add business --from pro: exit 0" "0 1 0" "$(run plan add business --from pro --name Business)"
check_eq "... with pro's limits, thresholds and price, and its own name" \
	"$(sql "SELECT (SELECT string_agg(subject_type || metric || period || coalesce(limit_value::text, 'u'), ','
	                                  ORDER BY 1) FROM plan_limits WHERE plan_id = 'pro')
	               || ' ' || thresholds::text || ' ' || price_cents FROM plans WHERE id = 'pro'") Business" \
	"$(sql "SELECT (SELECT string_agg(subject_type || metric || period || coalesce(limit_value::text, 'u'), ','
	                                  ORDER BY 1) FROM plan_limits WHERE plan_id = 'business')
	               || ' ' || thresholds::text || ' ' || price_cents || ' ' || name FROM plans WHERE id = 'business'")"
check_eq "plan add business again: exit 1, says it exists" "1 0 1" "$(run plan add business)"
check "... and points to plan set" grep -q 'exists already: change its limits with meterctl plan set' "$T_DIR/err"
check_eq "plan add with a bad name: exit 2" "2 0 1" "$(run plan add 'Big!')"
check_eq "plan add --from an unknown plan: exit 2, nothing made" "2 0 1 0" \
	"$(run plan add copy --from nosuch) $(sql "SELECT count(*) FROM plans WHERE id = 'copy'")"
check_eq "plan add bare: a plan with no limits" "0 0" \
	"$(run plan add bare | cut -d' ' -f1) $(sql "SELECT count(*) FROM plan_limits WHERE plan_id = 'bare'")"
check_eq "... that plan set and tenant add --plan then take" "0 0" \
	"$(run plan set bare tokens month 5 | cut -d' ' -f1) $(run tenant add t-bare --plan bare | cut -d' ' -f1)"

# ---- a tenant's new webhook or address takes its undelivered notifications -------
ctl tenant add hook1 --webhook https://old.example/hook --email old@example.com >/dev/null ||
	die "tenant add hook1 failed"
note() { # ID CHANNEL TARGET STATUS
	sql "INSERT INTO notifications (msg_id, tenant_id, subject_type, subject_id, metric, period,
	        period_start, threshold, channel, target, limit_value, used, payload, status,
	        next_attempt_at)
	     VALUES ('msg_t$1', 'hook1', 'tenant', '', 'requests', 'day', current_date, $1, '$2', '$3',
	             50, 50, '{}', '$4', now() + interval '30 minutes')" >/dev/null
}
note 80 webhook https://old.example/hook pending
note 90 webhook https://old.example/hook dead
note 100 webhook https://old.example/hook delivered
note 81 email old@example.com pending
targets() {
	sql "SELECT string_agg(threshold || ':' || target || ':' || status
	                       || CASE WHEN next_attempt_at <= now() THEN ':due' ELSE '' END, ' '
	                       ORDER BY threshold) FROM notifications WHERE tenant_id = 'hook1'"
}
check_eq "tenant set --webhook: pending (due now) and dead follow, delivered stay, email untouched" \
	"0 tenant hook1 updated (2 undelivered notifications follow the change)" \
	"$(run tenant set hook1 --webhook https://new.example/hook | cut -d' ' -f1) $(head -1 "$T_DIR/out")"
check_eq "... the rows" \
	"80:https://new.example/hook:pending:due 81:old@example.com:pending 90:https://new.example/hook:dead 100:https://old.example/hook:delivered" \
	"$(targets)"
check_eq "tenant set --email: the pending email follows" \
	"81:new@example.com:pending:due" "$(ctl tenant set hook1 --email new@example.com >/dev/null; targets | tr ' ' '\n' | grep '^81:')"
check_eq "tenant set --webhook none: the pending webhook is disabled, the dead one kept" \
	"80:https://new.example/hook:disabled:due 90:https://new.example/hook:dead" \
	"$(ctl tenant set hook1 --webhook none >/dev/null; targets | tr ' ' '\n' | grep -E '^(80|90):' | paste -sd' ')"
check_eq "... saying why" "the tenant's webhook was removed" \
	"$(sql "SELECT last_error FROM notifications WHERE msg_id = 'msg_t80'")"

# ---- Kafka properties: a typo or a bad value is a usage error ---------------------
check_eq "-X no.such.property=1: exit 2, one line" "2 0 1" "$(run -X no.such.property=1 tenant list)"
check "... naming the property" grep -q 'Kafka property no.such.property' "$T_DIR/err"
check_eq "-X linger.ms=abc: exit 2" "2 0 1" "$(run -X linger.ms=abc tenant list)"
check_eq "-X producer.linger.ms=5 (libmeter's prefix): accepted" 0 "$(run -X producer.linger.ms=5 tenant list | cut -d' ' -f1)"

# ---- --version, --config-reference, unknown options ----------------------------
check_eq "--version: exit 0, the version meterd prints" "0 1 0 $("$METERD" --version | awk '{print $2}')" \
	"$(run --version) $(awk '$1 == "meterctl" {print $2}' "$T_DIR/out")"
check_eq "--config-reference: exit 0, no error" "0 0" "$(run --config-reference | cut -d' ' -f1,3)"
check "... the same reference as meterd --config-reference" \
	cmp -s "$T_DIR/out" <("$METERD" --config-reference)
printf 'METER_NO_SUCH_SETTING=1\n' >"$T_DIR/bad.env"
check_eq "a config file with an unknown setting: exit 2, pointing to --config-reference" \
	"2 1 1" "$(run --config "$T_DIR/bad.env" tenant list | cut -d' ' -f1,3) $(grep -c -- '--config-reference' "$T_DIR/err")"
check_eq "... and --config-reference works with that file" "0 0" \
	"$(run --config "$T_DIR/bad.env" --config-reference | cut -d' ' -f1,3)"
check_eq "--bogus: exit 2, unknown option" "2 0 1 meterctl: unknown option '--bogus' (see meterctl --help)" \
	"$(run --bogus) $(err)"
check_eq "--bogus before a command: the same" "2 0 1 meterctl: unknown option '--bogus' (see meterctl --help)" \
	"$(run --bogus tenant list) $(err)"
check_eq "an unknown command: exit 2, unknown command" "2 0 1 meterctl: unknown command 'frobnicate' (see meterctl --help)" \
	"$(run frobnicate) $(err)"
check "--help lists --version and --config-reference" \
	bash -c '"$1" --help | grep -q -- "--version" && "$1" --help | grep -q -- "--config-reference"' _ "$METERCTL"

# Every --option of a subcommand's usage text (printed on a usage error) is
# in meterctl --help, and so is every subcommand.
"$METERCTL" --help >"$T_DIR/help" || die "meterctl --help failed"
missing=
for cmd in tenant usage plan "limit show" suspend reactivate reset check emit notifications token; do
	# shellcheck disable=SC2086 # cmd may be two words
	text=$(ctl $cmd 2>&1 >/dev/null || true)
	for opt in $(grep -o -- '--[a-z][a-z*-]*[a-z*]' <<<"$text" | sort -u); do
		[[ $opt == *\* ]] && continue # --estimate-*: a family, named one by one
		grep -qE -- "$opt([^a-z-]|$)" "$T_DIR/help" || missing+=" $cmd:$opt"
	done
done
check_eq "--help has every option of the subcommands' usage texts" "" "$missing"
check "--help has plan thresholds" grep -q "plan thresholds PLAN" "$T_DIR/help"

# ---- cost limits in text: USD, as given ---------------------------------------
ctl limit set t1 cost month 5.25 >/dev/null || die "limit set t1 cost month 5.25 failed"
ctl plan set starter cost day 0.000001 >/dev/null || die "plan set starter cost day failed"
check_eq "limit show: the cost limit in USD" "cost (USD) month 5.25 tenant" \
	"$(ctl limit show t1 | awk '$1 == "cost" {print $1, $2, $3, $4, $5}')"
check_eq "limit show --json: still pico-USD digits" 5250000000000 \
	"$(ctl limit show t1 --json | "$PY" -c 'import json,sys; print([l["limit"] for l in json.load(sys.stdin) if l["metric"] == "cost"][0])')"
check_eq "plan list: the cost limit in USD" "starter tenant cost (USD) day 0.000001" \
	"$(ctl plan list | awk '$3 == "cost" {print $1, $2, $3, $4, $5, $6}')"
check_eq "plan list --json: still pico-USD digits" 1000000 \
	"$(ctl plan list --json | "$PY" -c 'import json,sys
print([l["limit"] for p in json.load(sys.stdin) for l in p["limits"] if l["metric"] == "cost"][0])')"

# ---- --plan-expires ------------------------------------------------------------
expires() { ctl tenant show t1 --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["plan_expires_at"])'; }
ctl tenant set t1 --plan pro --plan-expires 2099-06-30T12:00:00Z >/dev/null || die "tenant set t1 failed"
for v in yesterday now epoch infinity -infinity 2099-01-01T00:00:00 "2099-01-01 00:00:00+00" \
	2099-02-30 20990101; do
	check_eq "--plan-expires '$v': exit 2, one line" "2 0 1" "$(run tenant set t1 --plan-expires "$v")"
done
check "... which says what to give" grep -q "RFC 3339 with Z or an offset" "$T_DIR/err"
check_eq "... and the expiry is unchanged" 2099-06-30T12:00:00Z "$(expires)"
check_eq "tenant add --plan-expires infinity: exit 2, no tenant" "2 0 1 0" \
	"$(run tenant add t2 --plan pro --plan-expires infinity) $(sql "SELECT count(*) FROM tenants WHERE id = 't2'")"
# A bare date is midnight UTC, whatever the session's zone (PGTZ).
PGTZ=America/New_York ctl tenant set t1 --plan-expires 2099-01-01 >/dev/null
check_eq "--plan-expires 2099-01-01 (PGTZ=America/New_York): midnight UTC" 2099-01-01T00:00:00Z "$(expires)"
ctl tenant set t1 --plan-expires 2099-01-01T10:30:00-03:00 >/dev/null
check_eq "--plan-expires with an offset" 2099-01-01T13:30:00Z "$(expires)"
# A time that has passed ends the plan now: accepted, with a warning.
check_eq "--plan-expires in the past: exit 0, a warning on stderr (rc, stderr lines)" "0 1" \
	"$(run tenant set t1 --plan-expires 2020-01-01T00:00:00Z | cut -d' ' -f1,3)"
check "... that says the plan has ended" grep -q "warning: --plan-expires .* is in the past" "$T_DIR/err"
check_eq "... and the free plan applies" free \
	"$(ctl tenant show t1 --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["effective_plan"])')"
ctl tenant set t1 --plan-expires none >/dev/null
check_eq "--plan-expires none clears it" None "$(expires)"

# ---- small messages ----------------------------------------------------------------
check_eq "plan set VALUE -5: exit 2, one line" "2 0 1" "$(run plan set pro tokens month -5)"
check_eq "... that says it must be >= 0" \
	"meterctl: limit '-5' is negative: give a value >= 0 or 'unlimited'" "$(err)"
check_eq "limit set VALUE -5: the same" "2 0 1 meterctl: limit '-5' is negative: give a value >= 0 or 'unlimited'" \
	"$(run limit set t1 tokens month -5) $(err)"
check_eq "limit set cost VALUE -0.5: the same" "2 0 1 meterctl: limit '-0.5' is negative: give a value >= 0 or 'unlimited'" \
	"$(run limit set t1 cost month -0.5) $(err)"
METRICS="metrics: requests, tokens, cost, op:NAME with NAME 1-64 of a-z 0-9 _ . -"
check_eq "plan set tokenz: exit 2, names the metric and the allowed ones" \
	"2 0 1 meterctl: unknown metric 'tokenz' ($METRICS)" "$(run plan set pro tokenz month 5) $(err)"
check_eq "limit set tokenz: the same" \
	"2 0 1 meterctl: unknown metric 'tokenz' ($METRICS)" "$(run limit set t1 tokenz month 5) $(err)"
check_eq "plan unset ... weekly: exit 2, names the period and the allowed ones" \
	"2 0 1 meterctl: unknown period 'weekly' (periods: day, month, rolling30)" \
	"$(run plan unset pro tokens weekly) $(err)"
check_eq "limit set ... weekly: the same" \
	"2 0 1 meterctl: unknown period 'weekly' (periods: day, month, rolling30)" \
	"$(run limit set t1 tokens weekly 5) $(err)"
check_eq "emit --file of a missing file: exit 1, with the reason" \
	"1 0 1 meterctl: cannot open $T_DIR/nonexistent.jsonl: No such file or directory" \
	"$(run emit --file "$T_DIR/nonexistent.jsonl") $(err)"
check_eq "notifications list of an unknown tenant: exit 1, no tenant" \
	"1 0 1 meterctl: no tenant 'nosuch' (see meterctl tenant list)" "$(run notifications list nosuch) $(err)"
check_eq "notifications retry --dead of an unknown tenant: the same" \
	"1 0 1 meterctl: no tenant 'nosuch' (see meterctl tenant list)" \
	"$(run notifications retry --dead nosuch) $(err)"
check_eq "notifications list of a known tenant without any: exit 0" 0 \
	"$(run notifications list t1 | cut -d' ' -f1)"
check_eq "reactivate a tenant that is not suspended: exit 0, says so" \
	"0 tenant t1 was not suspended: nothing to reactivate" "$(run reactivate t1 | cut -d' ' -f1) $(head -n1 "$T_DIR/out")"
check_eq "... and audits nothing" 0 "$(sql "SELECT count(*) FROM suspension_log WHERE tenant_id = 't1'")"
ctl suspend t1 --reason "unpaid invoice" >/dev/null || die "suspend t1 failed"
check_eq "reactivate a suspended tenant: exit 0, reactivated" "0 tenant t1 reactivated" \
	"$(run reactivate t1 | cut -d' ' -f1) $(head -n1 "$T_DIR/out")"
check_eq "... both audited" 2 "$(sql "SELECT count(*) FROM suspension_log WHERE tenant_id = 't1'")"

test_done
