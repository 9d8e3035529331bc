#!/usr/bin/env bash
# /metrics, /livez and /readyz of meterd and meter-notifier (issue 6). Each
# daemon serves them on METER_HTTP_ADDR=127.0.0.1:0 (a free port, found in
# its log). Every scrape must pass tests/tools/prom_check.py, a strict
# checker of the text format (HELP/TYPE, names, labels, escaping, histogram
# buckets), and carry no tenant id. meterd's counters must equal what the
# test sent: N good events, D duplicates, rejects by reason, one limit
# crossing and its flag, and the consumer lag per partition must fall to 0
# (and show the events consumed but not committed while the database is down);
# the notifier's must count one webhook sent and one failed twice (dead).
# /readyz turns 503 with a JSON reason while PostgreSQL is stopped (/livez
# and /metrics still answer), and 200 again when it is back; the events
# sent meanwhile are counted once, and the database errors show.
source "$(dirname "$0")/lib.sh"
test_init --partitions 4
limits_init 2
[[ -x $NOTIFIER && -x $API ]] || die "meter-notifier or meter-api is missing; run 'make all' first"

check "prom_check refuses broken exposition text (self-test)" "$PY" "$PROM_CHECK" --self-test

# scrape NAME ADDR: fetch /metrics into T_DIR/NAME.prom and check its format.
scrape() {
	local code
	code=$(curl -s -m 10 -o "$T_DIR/$1.prom" -w '%{http_code}' "http://$2/metrics" || true)
	[[ $code == 200 ]] || { say "GET /metrics of $1: $code"; return 1; }
	"$PY" "$PROM_CHECK" "$T_DIR/$1.prom" --forbid mt-a --forbid mt-b --forbid mt-hook \
		>"$T_DIR/$1.check"
}
# val NAME 'series': its value in the last scrape of NAME.
val() { "$PY" "$PROM_CHECK" "$T_DIR/$1.prom" --value "$2"; }

# --- meterd ----------------------------------------------------------------------
ctl tenant add mt-b >/dev/null || die "tenant add failed"
ctl limit set mt-b requests day 3 >/dev/null || die "limit set failed"
METER_HTTP_ADDR=127.0.0.1:0 meterd_start md
MD=$(http_addr md) || die "meterd did not say where it serves HTTP"
say "meterd serves http://$MD"
check_eq "meterd /livez while starting or running" 200 "$(hget "http://$MD/livez")"
wait_schema || die "meterd did not start"
wait_for_code() { # wait_for_code "what" SECS URL CODE
	local deadline=$((SECONDS + $2)) got
	while :; do
		got=$(hget "$3")
		[[ $got == "$4" ]] && return 0
		((SECONDS >= deadline)) && { say "timed out waiting for $1 (last: $got)"; return 1; }
		sleep 0.2
	done
}
check "meterd /readyz answers 200 once it consumes" wait_for_code "meterd ready" 30 "http://$MD/readyz" 200
check_eq "meterd /readyz body" "ready" "$(body_json 'd["status"]')"

NOW=$(utc_now)
F=$T_DIR/events
: >"$F"
GOOD=0
for i in $(seq 1 30); do # tenant mt-a: 30 events; mt-b: 5 (crosses its 3 a day)
	t=mt-a
	((i > 25)) && t=mt-b
	printf '%s\t%s\n' "$t" "$(event "m-$i" "$t" "$NOW" '"operation":"chat","input_tokens":10')" >>"$F"
	GOOD=$((GOOD + 1))
done
DUPS=0
for i in 3 7 11 26; do # the same ids again: counted once
	t=mt-a
	((i > 25)) && t=mt-b
	printf '%s\t%s\n' "$t" "$(event "m-$i" "$t" "$NOW" '"operation":"chat","input_tokens":10')" >>"$F"
	DUPS=$((DUPS + 1))
done
{
	printf 'mt-a\t{"specversion":"1.0","id":"x1"\n'
	printf 'mt-a\tnot json at all\n'
	printf 'mt-a\t%s\n' "$(event "x3" mt-a "$NOW" '"input_tokens":5')"
	printf 'mt-a\t%s\n' "$(event "x4" mt-a "$NOW" '"operation":"chat","input_tokens":"5"')"
	printf 'mt-a\t%s\n' "$(event "x5" mt-a "2001-01-01T00:00:00Z" '"operation":"chat"')"
	printf 'mt-a\t[1,2,3]\n'
} >>"$F"
REJECTS="malformed_json=2 missing_field=1 wrong_type=1 too_late=1 not_an_object=1"
NREJ=6
produce_lines "$F"
wait_caught_up 60 || die "meterd did not consume the events"
wait_flag tenant/mt-b state blocked 30 || die "no flag for mt-b"

# The flag counter moves after the broker's acknowledgement; lag needs a
# statistics round (every 5 s): poll the scrape until both settle.
deadline=$((SECONDS + 30))
while :; do
	scrape md "$MD" || die "the first scrape failed: $(cat "$T_DIR/md.check")"
	lags=$(grep -c '^meter_consumer_lag{partition="[0-3]"} 0$' "$T_DIR/md.prom" || true)
	[[ $lags == 4 && $(val md 'meter_flags_published_total{state="blocked"}') != 0 ]] && break
	((SECONDS >= deadline)) && break
	sleep 1
done
check "meterd's /metrics passes the strict format check, without tenant ids" \
	scrape md "$MD"
check_eq "meter_events_consumed_total (good + duplicates + rejects)" \
	"$((GOOD + DUPS + NREJ))" "$(val md meter_events_consumed_total)"
check_eq "meter_events_counted_total" "$GOOD" "$(val md meter_events_counted_total)"
check_eq "meter_events_duplicate_total" "$DUPS" "$(val md meter_events_duplicate_total)"
for rj in $REJECTS; do
	check_eq "meter_events_rejected_total{reason=\"${rj%=*}\"}" "${rj#*=}" \
		"$(val md "meter_events_rejected_total{reason=\"${rj%=*}\"}")"
done
check_eq "meter_events_rejected_total{reason=\"too_large\"} (sent none)" 0 \
	"$(val md 'meter_events_rejected_total{reason="too_large"}')"
check_eq "rejected events by reason in the database agree" \
	"malformed_json 2, missing_field 1, not_an_object 1, too_late 1, wrong_type 1" \
	"$(sql "SELECT string_agg(reason || ' ' || n, ', ' ORDER BY reason) FROM
	          (SELECT reason, count(*) n FROM rejected_events GROUP BY 1) r")"
BATCHES=$(val md meter_batches_total)
check "meter_batches_total ($BATCHES) is at least 1" test "$BATCHES" -ge 1
check_eq "meter_batch_events_count = meter_batches_total" "$BATCHES" \
	"$(val md meter_batch_events_count)"
check_eq "meter_batch_events_sum = every message consumed" "$((GOOD + DUPS + NREJ))" \
	"$(val md meter_batch_events_sum)"
check_eq "meter_batch_commit_seconds_count = meter_batches_total" "$BATCHES" \
	"$(val md meter_batch_commit_seconds_count)"
check_eq "meter_limit_crossings_total (mt-b: 3 requests a day)" 1 \
	"$(val md meter_limit_crossings_total)"
check_eq "meter_flags_published_total{state=\"blocked\"}" 1 \
	"$(val md 'meter_flags_published_total{state="blocked"}')"
check_eq "meter_consumer_lag of the 4 partitions, after catching up" "0 0 0 0" \
	"$(for p in 0 1 2 3; do val md "meter_consumer_lag{partition=\"$p\"}"; done | tr '\n' ' ' | sed 's/ $//')"
check_eq "meter_db_errors_total before any outage" 0 "$(val md meter_db_errors_total)"
check_eq "meter_build_info names meterd" 1 \
	"$(val md 'meter_build_info{program="meterd",version="0.1.0"}')"
# The process's own figures: RSS within 20 % of what /proc says (the two are
# read moments apart), some CPU, and a C heap that holds something.
RSS_PROC=$(awk '/VmRSS/ {print $2 * 1024}' "/proc/${MD_PID[md]}/status")
check "process_resident_memory_bytes ($(val md process_resident_memory_bytes)) is /proc's VmRSS ($RSS_PROC) within 20 %" \
	"$PY" -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(not (b > 0 and abs(a - b) <= 0.2 * b))" \
	"$(val md process_resident_memory_bytes)" "$RSS_PROC"
check "process_cpu_seconds_total is above 0" \
	"$PY" -c "import sys; sys.exit(not float(sys.argv[1]) > 0)" "$(val md process_cpu_seconds_total)"
check "meter_heap_in_use_bytes is above 100 kB, meter_heap_free_bytes at least 0" \
	"$PY" -c "import sys; sys.exit(not (float(sys.argv[1]) > 1e5 and float(sys.argv[2]) >= 0))" \
	"$(val md meter_heap_in_use_bytes)" "$(val md meter_heap_free_bytes)"
check "meter_http_requests_total counts the /readyz answers" \
	test "$(val md 'meter_http_requests_total{route="/readyz",code="200"}')" -ge 1
check "HEAD /metrics answers 200 with no body" \
	test "$(curl -s -m 5 -I -o /dev/null -w '%{http_code}' "http://$MD/metrics")" = 200
check_eq "POST /metrics is refused" 405 "$(hget "http://$MD/metrics" -X POST)"
check_eq "other paths are 404 on meterd" 404 "$(hget "http://$MD/v1/plans")"

# --- meter-notifier ---------------------------------------------------------------
# note NAME TARGET: a webhook notification queued the way meterd queues them.
note() {
	sql "INSERT INTO notifications (msg_id, tenant_id, subject_type, subject_id, metric,
	       period, period_start, threshold, channel, target, limit_value, used, resets_at, payload)
	     SELECT m, 'mt-hook', 'user', '$1', 'requests', 'day', current_date, 80, 'webhook',
	            '$2', 10, 8, date_trunc('day', now()) + interval '1 day',
	            jsonb_build_object('type', 'usage.threshold_reached', 'id', m, 'tenant', 'mt-hook')
	       FROM (SELECT 'msg_' || md5('$T_DB/$1') AS m) x RETURNING id" >/dev/null
	sql "SELECT pg_notify('meter_notifications', '')" >/dev/null
}
printf 'whsec_%s\n' "$(head -c 32 /dev/urandom | base64)" >"$T_DIR/secret"
start_receiver hooks --secret-file "$T_DIR/secret"
ctl tenant add mt-hook --webhook "http://127.0.0.1:$RPORT/hook" \
	--webhook-secret "$(cat "$T_DIR/secret")" >/dev/null || die "tenant add mt-hook failed"
METER_HTTP_ADDR=127.0.0.1:0 notifier_start nt --webhook-allow-private=1 \
	--notify-retry-schedule 300ms
NT=$(http_addr nt) || die "the notifier did not say where it serves HTTP"
log_wait nt "listening on meter_notifications" 30 || die "the notifier did not connect"
check_eq "notifier /livez" 200 "$(hget "http://$NT/livez")"
check "notifier /readyz answers 200" wait_for_code "notifier ready" 20 "http://$NT/readyz" 200
note ok "http://127.0.0.1:$RPORT/hook"
note bad "http://127.0.0.1:$RPORT/hook?fail=9"
wait_for "one notification delivered and one dead" 30 \
	"SELECT string_agg(status, ',' ORDER BY status) = 'dead,delivered' FROM notifications" ||
	die "notifications did not settle"
check "the notifier's /metrics passes the strict format check" scrape nt "$NT"
check_eq "meter_notifications_sent_total{channel=\"webhook\"}" 1 \
	"$(val nt 'meter_notifications_sent_total{channel="webhook"}')"
check_eq "meter_notifications_failed_total{channel=\"webhook\"} (two attempts)" 2 \
	"$(val nt 'meter_notifications_failed_total{channel="webhook"}')"
check_eq "meter_notifications_dead_total{channel=\"webhook\"}" 1 \
	"$(val nt 'meter_notifications_dead_total{channel="webhook"}')"
check_eq "meter_notifications_sent_total{channel=\"email\"}" 0 \
	"$(val nt 'meter_notifications_sent_total{channel="email"}')"
check_eq "meter_build_info names meter-notifier" 1 \
	"$(val nt 'meter_build_info{program="meter-notifier",version="0.1.0"}')"

# --- PostgreSQL stops: not ready, still alive; ready again after ---------------------
at_exit '"$ROOT/dev/env.sh" pg-start "$METER_ENV_DIR" >/dev/null 2>&1'
say "stopping PostgreSQL"
"$ROOT/dev/env.sh" pg-stop "$METER_ENV_DIR"
check_eq "meterd /readyz with PostgreSQL stopped" 503 "$(hget "http://$MD/readyz")"
check "its reason names the database" grep -q '"reason":"database' "$T_DIR/http.body"
check_eq "its content type" "application/json" \
	"$(grep -i '^content-type:' "$T_DIR/http.headers" | tr -d '\r' | sed 's/^[^:]*: //')"
check_eq "notifier /readyz with PostgreSQL stopped" 503 "$(hget "http://$NT/readyz")"
check_eq "meterd /livez with PostgreSQL stopped" 200 "$(hget "http://$MD/livez")"
check_eq "notifier /livez with PostgreSQL stopped" 200 "$(hget "http://$NT/livez")"
check "meterd /metrics with PostgreSQL stopped" scrape md "$MD"
# Events during the outage: the batch fails, is dropped, and is consumed again.
: >"$F.2"
for i in $(seq 1 5); do
	printf 'mt-a\t%s\n' "$(event "late-$i" mt-a "$NOW" '"operation":"chat"')" >>"$F.2"
done
produce_lines "$F.2"
deadline=$((SECONDS + 20))
while :; do # until meterd has tried and failed at least once
	scrape md "$MD" || true
	[[ $(val md meter_db_errors_total) != 0 ]] && break
	((SECONDS >= deadline)) && break
	sleep 0.5
done
check "meter_db_errors_total counts the failures while the database is down" \
	test "$(val md meter_db_errors_total)" -ge 1
# Consumed but not committed: the lag shows them (next statistics round).
lag_sum() { awk '/^meter_consumer_lag\{/ {s += $2} END {print s + 0}' "$T_DIR/md.prom"; }
deadline=$((SECONDS + 15))
while scrape md "$MD" && [[ $(lag_sum) != 5 ]] && ((SECONDS < deadline)); do sleep 1; done
check_eq "meter_consumer_lag, summed over partitions, shows the 5 uncommitted events" 5 "$(lag_sum)"
"$ROOT/dev/env.sh" pg-start "$METER_ENV_DIR"
say "PostgreSQL is back"
check "meterd /readyz is 200 again" wait_for_code "meterd ready again" 30 "http://$MD/readyz" 200
check "notifier /readyz is 200 again" wait_for_code "notifier ready again" 30 "http://$NT/readyz" 200
wait_caught_up 60 || die "meterd did not catch up after the outage"
scrape md "$MD" || die "scrape after the outage failed: $(cat "$T_DIR/md.check")"
check_eq "meter_events_counted_total after the outage (each counted once)" "$((GOOD + 5))" \
	"$(val md meter_events_counted_total)"
check_eq "rows counted in the database" "$((GOOD + 5))" \
	"$(sql "SELECT sum(events) FROM rollups WHERE subject_type = 'tenant' AND period = 'month'")"

# --- an address that cannot be served stops the daemon at once, with a reason -------
OUT=$(METER_DATABASE_URL=$T_DBURL "$METERD" --http-addr "$MD" 2>&1 || true)
check "a second meterd on the same port exits with a one-line reason" \
	grep -q "cannot serve HTTP on $MD: the address is already in use" <<<"$OUT"
for prog in "$METERD" "$NOTIFIER" "$API"; do
	rc=0
	OUT=$(METER_DATABASE_URL=$T_DBURL "$prog" --http-addr "nonsense" 2>&1) || rc=$?
	check_eq "$(basename "$prog") with a bad METER_HTTP_ADDR: a configuration error (exit 2), one line, before starting" \
		"2 1 1" "$rc $(wc -l <<<"$OUT") $(grep -c "not host:port" <<<"$OUT")"
done
# librdkafka's own lines go through meterd's logger, from every client (its
# producers printed raw "%3|...|FAIL|..." lines, breaking JSON logs).
METER_DATABASE_URL=$T_DBURL METER_LOG_FORMAT=json METER_GROUP_ID=nobroker \
	timeout -s TERM 6 "$METERD" --kafka-brokers 127.0.0.1:1 >"$T_DIR/nobroker.log" 2>&1 || true
check "with no broker, librdkafka's complaints are logged" grep -q 'librdkafka' "$T_DIR/nobroker.log"
check_eq "... every line of the log is JSON (none of librdkafka's raw lines)" ok "$("$PY" -c '
import json, sys
bad = []
for line in open(sys.argv[1], errors="replace"):
    try:
        json.loads(line)
    except ValueError:
        bad.append(line.strip()[:80])
print("ok" if not bad else "%d not JSON, e.g. %s" % (len(bad), bad[0]))' "$T_DIR/nobroker.log")"
rc=0
OUT=$(METER_DATABASE_URL=$T_DBURL "$METERD" -X no.such.property=1 2>&1) || rc=$?
check_eq "meterd with an unknown Kafka property: exit 2, one line naming it, before starting" \
	"2 1 1" "$rc $(wc -l <<<"$OUT") $(grep -c "Kafka property no.such.property" <<<"$OUT")"

meterd_stop nt
check_eq "notifier exit code on SIGTERM" 0 "$MD_RC"
meterd_stop md
check_eq "meterd exit code on SIGTERM" 0 "$MD_RC"
check_eq "no bearer token or password in the logs" "" \
	"$(grep -hE 'mtk_|password=' "$T_DIR"/meterd-*.log || true)"
test_done
