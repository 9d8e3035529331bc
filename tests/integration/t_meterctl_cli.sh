#!/usr/bin/env bash
# t_meterctl_cli: meterctl's command line contract on mistakes an operator
# makes: a typo in a plan name creates nothing and exits 2 with the list of
# plans (plan set|unset|thresholds, tenant add|set --plan). No meterd: meterctl migrates and publishes the flags itself.
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

test_done
