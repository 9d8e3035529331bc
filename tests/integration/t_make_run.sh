#!/usr/bin/env bash
# t_make_run: the README's `make run` (dev/run.sh), pointed at this test's
# database and topic: it counts the demo stream, prints the per-tenant
# table, and meter-api answers acme's month breakdown to acme's own token
# with the totals the database holds.
source "$(dirname "$0")/lib.sh"
test_init --partitions 2

OUT=$T_DIR/run.out
rc=0
METER_DATABASE_URL=$T_DBURL METER_TOPIC_EVENTS=$T_TOPIC METER_GROUP_ID=$T_GROUP EVENTS=300 \
	METER_BUILD_DIR=$BUILD timeout 300 bash "$ROOT/dev/run.sh" >"$OUT" 2>&1 || rc=$?
check_eq "dev/run.sh exit code" 0 "$rc"
check "the per-tenant table lists acme, globex and initech" \
	test "$(grep -cE '^(acme|globex|initech) ' "$OUT")" = 3
check "meter-api answered with acme's month" grep -q '^tenant/acme, [0-9]\{4\}-[0-9][0-9] (America/Argentina/Buenos_Aires): models by cost' "$OUT"
api_events=$(awk '/models by cost/ {on = 1; next} on && / events / {n += $2} END {print n + 0}' "$OUT")
check_eq "the API's model lines add up to acme's month in the database" \
	"$(sql "SELECT events FROM rollups WHERE tenant_id = 'acme' AND subject_type = 'tenant' AND period = 'month'
	        ORDER BY period_start DESC LIMIT 1")" "$api_events"
check_eq "make run's token reads acme only" "tenant acme" \
	"$(sql "SELECT CASE WHEN tenant_id IS NULL THEN 'operator' ELSE 'tenant ' || tenant_id END FROM api_tokens WHERE name = 'make-run'")"
test_done
