#!/usr/bin/env bash
# t_timezones: days and months are the tenant's local ones. In
# America/Argentina/Buenos_Aires (UTC-3) an event at local 23:59:59.999 and
# one at local 00:00:00 the next day land in different day rollups with the
# right local dates, although both are on the same UTC day; Feb 29 and Mar 1
# 2024 land in different months (and an instant that is Mar 1 in UTC is
# still Feb 29 in Buenos Aires). Late events count in the period in which
# they occurred, within the lateness bound; beyond it they are rejected.
# The event log keeps every field as sent (an event with all of them, with
# backslashes, quotes and non-ASCII text, and one with none of the optional
# ones), and gets a batch's rows sorted by tenant and time.
source "$(dirname "$0")/lib.sh"
test_init --partitions 2

export METER_MAX_LATENESS=4000d
meterd_start a
wait_schema
add_tenant ba America/Argentina/Buenos_Aires
check_eq "tenant ba's zone" America/Argentina/Buenos_Aires "$(sql "SELECT tz FROM tenants WHERE id = 'ba'")"

D='"user_id":"u-1","api_key_id":"k-1","operation":"chat","cost":"0.000001"'
TOO_OLD=$(date -u -d '-4001 days' +%Y-%m-%dT%H:%M:%SZ)
{
	# Buenos Aires: the same UTC day 2024-06-15, two local days.
	printf 'ba\t%s\n' "$(event z1 ba 2024-06-15T02:59:59.999Z "$D,\"input_tokens\":1")"
	printf 'ba\t%s\n' "$(event z2 ba 2024-06-15T00:00:00-03:00 "$D,\"input_tokens\":10")"
	# Buenos Aires: 2024-03-01T01:00Z is Feb 29, 22:00 local; 03:00Z is Mar 1, 00:00.
	printf 'ba\t%s\n' "$(event z3 ba 2024-03-01T01:00:00Z "$D,\"input_tokens\":100")"
	printf 'ba\t%s\n' "$(event z4 ba 2024-03-01T03:00:00Z "$D,\"input_tokens\":1000")"
	# UTC (a tenant never added: default zone).
	printf 'utc\t%s\n' "$(event u1 utc 2024-02-29T23:59:59.999Z "$D,\"input_tokens\":1")"
	printf 'utc\t%s\n' "$(event u2 utc 2024-03-01T00:00:00Z "$D,\"input_tokens\":10")"
	printf 'utc\t%s\n' "$(event u3 utc 2024-03-01T01:00:00Z "$D,\"input_tokens\":100")"
	# The event log's fields.
	printf 'lg\t%s\n' "$(event f1 lg 2024-06-15T12:34:56.789Z '"user_id":"u-1","api_key_id":"k-1","provider":"openai","model":"gpt-4o","operation":"chat","input_tokens":120,"cache_read_input_tokens":20,"output_tokens":30,"reasoning_output_tokens":7,"requests":2,"units":{"images":3},"cost":"0.0042","endpoint":"/v1/chat?q=a\\b \"c\" ñ","method":"POST","status_code":201,"latency_ms":1234,"workflow_id":"wf-1","execution_id":"ex-1","metadata":{"k":"tab\there \\ \"q\"","ñ":[1,true,null]}')"
	printf 'lg\t%s\n' "$(event f2 lg 2024-06-15T12:00:00Z '"operation":"embed"')"
	# Beyond METER_MAX_LATENESS=4000d.
	printf 'utc\t%s\n' "$(event u4 utc "$TOO_OLD" "$D,\"input_tokens\":7")"
} >"$T_DIR/events.kv"
produce_lines "$T_DIR/events.kv"
wait_caught_up 60

rows() {
	sql "SELECT string_agg(period || ' ' || period_start || ' ' || events || ' ' || input_tokens, '; '
	                       ORDER BY period, period_start)
	       FROM rollups WHERE tenant_id = '$1' AND subject_type = '$2'"
}
BA='day 2024-02-29 1 100; day 2024-03-01 1 1000; day 2024-06-14 1 1; day 2024-06-15 1 10; month 2024-02-01 1 100; month 2024-03-01 1 1000; month 2024-06-01 2 11'
UTC='day 2024-02-29 1 1; day 2024-03-01 2 110; month 2024-02-01 1 1; month 2024-03-01 2 110'
check_eq "ba tenant rollups (period start events input)" "$BA" "$(rows ba tenant)"
check_eq "ba user u-1 rollups" "$BA" "$(rows ba user)"
check_eq "ba key k-1 rollups" "$BA" "$(rows ba key)"
check_eq "utc tenant rollups (period start events input)" "$UTC" "$(rows utc tenant)"
check_eq "utc user u-1 rollups" "$UTC" "$(rows utc user)"
check_eq "events keep the UTC instant (z1, z2)" "2024-06-15 02:59:59.999; 2024-06-15 03:00:00.000" \
	"$(sql "SELECT string_agg(to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS'), '; '
	          ORDER BY event_id) FROM events WHERE event_id IN ('z1', 'z2')")"
check_eq "event beyond the lateness bound" "too_late" \
	"$(sql "SELECT string_agg(reason, ' ') FROM rejected_events")"
check_eq "ba breakdown by operation, month 2024-02 (events)" "chat 1" \
	"$(sql "SELECT name || ' ' || events FROM meter_breakdown('ba', 'tenant', '', 'month', '2024-02-01')
	          WHERE dim = 'operation'")"
check_eq "ba breakdown by operation, month 2024-06 (input tokens)" "chat 11" \
	"$(sql "SELECT name || ' ' || input_tokens FROM meter_breakdown('ba', 'user', 'u-1', 'month', '2024-06-01')
	          WHERE dim = 'operation'")"
check_eq "ba chat requests (op: limits): June 2024, June 14, June 16" "2 1 none" \
	"$(sql "SELECT meter_op_requests('ba', 'key', 'k-1', 'month', '2024-06-01', 'chat') || ' '
	          || meter_op_requests('ba', 'key', 'k-1', 'day', '2024-06-14', 'chat') || ' '
	          || coalesce(meter_op_requests('ba', 'key', 'k-1', 'day', '2024-06-16', 'chat')::text, 'none')")"
check_eq "ba breakdown rows are by local day only" \
	"day 2024-02-29 100; day 2024-03-01 1000; day 2024-06-14 1; day 2024-06-15 10" \
	"$(sql "SELECT string_agg(period || ' ' || period_start || ' ' || input_tokens, '; ' ORDER BY period_start)
	          FROM rollup_breakdown WHERE tenant_id = 'ba' AND subject_type = 'tenant' AND dim = 'operation'")"
check_eq "the event log, every field (f1) and none of the optional ones (f2)" \
	"$(printf '%s\n' \
		'f1|2024-06-15 12:34:56.789|u-1|k-1|openai|gpt-4o|chat|it|com.meterd.usage|120|20|30|7|2|{"images": 3}|4200000000|event|-|/v1/chat?q=a\b "c" ñ|POST|201|1234|wf-1|ex-1|{"k": "tab\there \\ \"q\"", "ñ": [1, true, null]}|1' \
		'f2|2024-06-15 12:00:00.000|-|-|||embed|it|com.meterd.usage|0|0|0|0|1|-|0|unpriced|-|-|-|-|-|-|-|-|1')" \
	"$(sql "SELECT string_agg(concat_ws('|', event_id,
	          to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS'),
	          coalesce(user_id, '-'), coalesce(api_key_id, '-'), provider, model, operation, source,
	          type, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, requests,
	          coalesce(units::text, '-'), cost_pusd, cost_source, coalesce(price_id::text, '-'),
	          coalesce(endpoint, '-'), coalesce(method, '-'), coalesce(status_code::text, '-'),
	          coalesce(latency_ms::text, '-'), coalesce(workflow_id, '-'), coalesce(execution_id, '-'),
	          coalesce(metadata::text, '-'), (kafka_topic = '$T_TOPIC' AND kafka_offset >= 0)::int),
	          E'\\n' ORDER BY event_id) FROM events WHERE tenant_id = 'lg'")"
# A batch's events reach the log sorted by tenant and time (its index on
# (tenant_id, occurred_at) then takes a tenant's new entries together): f2,
# sent after f1 but 34 minutes earlier, comes first. Rows of one batch share
# their transaction (xmin); a row's place in its partition is its ctid.
check_eq "each batch's rows in the log in (tenant, time) order" "0 f2 f1" \
	"$(sql "SELECT count(*) FILTER (WHERE prev_t > tenant_id COLLATE \"C\"
	                               OR (prev_t = tenant_id AND prev_at > occurred_at))
	       || ' ' || (SELECT string_agg(event_id, ' ' ORDER BY ctid) FROM events WHERE tenant_id = 'lg')
	       FROM (SELECT tenant_id, occurred_at,
	                    lag(tenant_id COLLATE \"C\") OVER w AS prev_t, lag(occurred_at) OVER w AS prev_at
	               FROM events WINDOW w AS (PARTITION BY tableoid, xmin::text ORDER BY ctid)) x")"
meterd_stop a
check_eq "meterd exit code on SIGTERM" 0 "$MD_RC"
test_done
