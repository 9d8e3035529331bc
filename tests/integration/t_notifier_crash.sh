#!/usr/bin/env bash
# The notifier's delivery guarantee under crashes and stops (issue 5):
# killed with SIGKILL while deliveries are in flight (a slow receiver) and
# restarted, nothing is lost and a repeat carries the same webhook-id and
# body; two notifiers side by side deliver every row exactly once; attempts
# made while PostgreSQL is down are recorded once it is back, and LISTEN
# resumes; SIGTERM lets the deliveries in flight finish; past
# METER_SHUTDOWN_GRACE they are interrupted, given back, and delivered by the
# next notifier.
source "$(dirname "$0")/lib.sh"
test_init --partitions 1

export METER_TOPIC_LIMITS=$T_DB.limits
ctl migrate >/dev/null || die "meterctl migrate failed"

[[ -x $NOTIFIER ]] || die "$NOTIFIER is missing; run 'make all' first"

# notes PREFIX N TARGET: queue N webhook notifications for subjects
# user/PREFIX-1..N the way meterd does, in one transaction.
notes() {
	sql "INSERT INTO notifications (msg_id, tenant_id, subject_type, subject_id, metric,
	       period, period_start, threshold, channel, target, limit_value, used, resets_at,
	       payload)
	     SELECT m, 'acme', 'user', s, 'requests', 'day', current_date, 80, 'webhook', '$3',
	            10, 8, date_trunc('day', now()) + interval '1 day',
	            jsonb_build_object('type', 'usage.threshold_reached', 'id', m, 'tenant', 'acme',
	              'subject', 'user/acme/' || s, 'subject_type', 'user', 'subject_id', s,
	              'metric', 'requests', 'period', 'day', 'threshold', 80, 'limit', 10,
	              'used', 8, 'remaining', 2, 'percent', 80.00, 'timezone', 'UTC')
	       FROM (SELECT '$1-' || i AS s, 'msg_' || md5('$T_DB/$1-' || i) AS m
	               FROM generate_series(1, $2) i) x;
	     SELECT pg_notify('meter_notifications', '')" >/dev/null
}
ids_of() { sql "SELECT string_agg(msg_id, ' ' ORDER BY msg_id) FROM notifications WHERE subject_id LIKE '$1-%'"; }
# For the receiver's log: the requests whose id is one of PREFIX's rows.
sel() { echo "[r for r in $1 if r['json']['subject_id'].startswith('$2-')]"; }

SECRET=whsec_$(head -c 32 /dev/urandom | base64)
printf '%s\n' "$SECRET" >"$T_DIR/secret"
start_receiver hooks --secret-file "$T_DIR/secret"
H=http://127.0.0.1:$RPORT
ctl tenant add acme --webhook "$H/hook" --webhook-secret "$SECRET" >/dev/null ||
	die "tenant add failed"
NARGS=(--webhook-allow-private=1 --webhook-timeout 4s)

# --- SIGKILL mid-delivery, restart: nothing lost, repeats with the same id ---
notifier_start k1 "${NARGS[@]}"
log_wait k1 "listening on meter_notifications" 30 || die "notifier k1 did not start"
notes crash 20 "$H/hook?delay=2"
wait_jl "deliveries in flight at the slow receiver" 30 "$T_DIR/hooks.jsonl" \
	"len($(sel rs crash)) >= 5" || die "nothing reached the receiver"
meterd_kill k1 KILL
inflight=$(jl "$T_DIR/hooks.jsonl" "len(set(r['id'] for r in $(sel rs crash)))")
say "killed k1 with $inflight of 20 deliveries received by the slow receiver"
check_eq "after the kill, nothing is recorded as delivered" 0 \
	"$(sql "SELECT count(*) FROM notifications WHERE subject_id LIKE 'crash-%' AND status <> 'pending'")"
notifier_start k2 "${NARGS[@]}"
wait_for "all 20 delivered after the restart (when the leases end)" 60 \
	"SELECT count(*) = 20 FROM notifications WHERE subject_id LIKE 'crash-%' AND status = 'delivered'" ||
	die "not all delivered after the restart"
IDS=$(ids_of crash)
check_eq "webhook-ids answered 200 (of the 20 rows), rows missing" "20 0" \
	"$(jl "$T_DIR/hooks.jsonl" "'%d %d' % (len(set(r['id'] for r in $(sel answered crash) if r['status'] == 200)), len(set('$IDS'.split()) - set(r['id'] for r in $(sel answered crash) if r['status'] == 200)))")"
check_eq "requests with an id that is not one of the rows" 0 \
	"$(jl "$T_DIR/hooks.jsonl" "len(set(r['id'] for r in $(sel rs crash)) - set('$IDS'.split()))")"
check_eq "repeats of an id carry the same body, all signatures verified" "True" \
	"$(jl "$T_DIR/hooks.jsonl" "all(len(set(r['body'] for r in $(sel rs crash) if r['id'] == i)) == 1 for i in set(r['id'] for r in rs)) and all(r['verified'] for r in rs)")"
check_eq "the ids in flight at the kill were delivered again (repeats)" "True" \
	"$(jl "$T_DIR/hooks.jsonl" "len([r for r in $(sel rs crash) if r['event'] == 'received']) > 20")"
check_eq "the repeated rows count both claims" t \
	"$(sql "SELECT count(*) FILTER (WHERE attempts = 2) >= $inflight FROM notifications WHERE subject_id LIKE 'crash-%'")"
meterd_stop k2 30
check_eq "k2 exits 0" 0 "$MD_RC"

# --- two notifiers side by side: each row delivered exactly once ------------
notifier_start p1 "${NARGS[@]}" --notify-concurrency 8
notifier_start p2 "${NARGS[@]}" --notify-concurrency 8
log_wait p1 "listening on meter_notifications" 30 || die "notifier p1 did not start"
log_wait p2 "listening on meter_notifications" 30 || die "notifier p2 did not start"
notes pair 200 "$H/hook?delay=0.2"
wait_for "200 rows delivered by two notifiers" 90 \
	"SELECT count(*) = 200 FROM notifications WHERE subject_id LIKE 'pair-%' AND status = 'delivered'" ||
	die "not all delivered by the pair"
check_eq "200 requests, 200 distinct webhook-ids (no row sent twice)" "200 200" \
	"$(jl "$T_DIR/hooks.jsonl" "'%d %d' % (len($(sel answered pair)), len(set(r['id'] for r in $(sel answered pair))))")"
d1=$(log_count p1 "delivered to"); d2=$(log_count p2 "delivered to")
say "deliveries: p1 $d1, p2 $d2"
check_eq "both notifiers delivered some, 200 in all" "1 200" "$((d1 > 0 && d2 > 0)) $((d1 + d2))"
meterd_stop p1 30
meterd_stop p2 30

# --- PostgreSQL goes away mid-delivery and comes back -------------------------
notifier_start o1 "${NARGS[@]}"
log_wait o1 "listening on meter_notifications" 30 || die "notifier o1 did not start"
notes outage 5 "$H/hook?delay=3"
wait_jl "5 deliveries in flight" 30 "$T_DIR/hooks.jsonl" "len($(sel rs outage)) == 5" ||
	die "outage deliveries did not arrive"
at_exit '"$ROOT/dev/env.sh" pg-start "$METER_ENV_DIR" >/dev/null 2>&1'
"$ROOT/dev/env.sh" pg-stop "$METER_ENV_DIR"
log_wait o1 "recording a delivery attempt failed|lost the database connection" 30 ||
	die "the notifier did not notice the outage"
sleep 2 # stay down a little longer: the notifier backs off and retries
"$ROOT/dev/env.sh" pg-start "$METER_ENV_DIR"
log_wait o1 "connected to the database" 60 || die "the notifier did not reconnect"
wait_for "the attempts made during the outage recorded" 30 \
	"SELECT count(*) = 5 FROM notifications WHERE subject_id LIKE 'outage-%' AND status = 'delivered' AND attempts = 1" ||
	die "outage results not recorded"
notes after 3 "$H/hook"
wait_for "rows queued after the outage delivered (LISTEN again)" 30 \
	"SELECT count(*) = 3 FROM notifications WHERE subject_id LIKE 'after-%' AND status = 'delivered'" ||
	die "rows after the outage not delivered"
check_eq "each outage row sent once" 5 \
	"$(jl "$T_DIR/hooks.jsonl" "len($(sel answered outage))")"
meterd_stop o1 30
check_eq "o1 exits 0" 0 "$MD_RC"

# --- SIGTERM waits for deliveries in flight ----------------------------------
notifier_start g1 "${NARGS[@]}"
log_wait g1 "listening on meter_notifications" 30 || die "notifier g1 did not start"
notes term 5 "$H/hook?delay=2"
wait_jl "5 deliveries in flight" 30 "$T_DIR/hooks.jsonl" "len($(sel rs term)) == 5" ||
	die "term deliveries did not arrive"
meterd_stop g1 30
check_eq "SIGTERM with deliveries in flight: exit 0" 0 "$MD_RC"
check_eq "they finished before the exit" "delivered 1 5" \
	"$(sql "SELECT status || ' ' || max(attempts) || ' ' || count(*) FROM notifications WHERE subject_id LIKE 'term-%' GROUP BY status")"

# --- past the grace: interrupted, given back, delivered by the next one -----
notifier_start g2 "${NARGS[@]}" --shutdown-grace 1s --webhook-timeout 10s
log_wait g2 "listening on meter_notifications" 30 || die "notifier g2 did not start"
notes grace 3 "$H/hook?delay=6&slow=1"
wait_jl "3 slow deliveries in flight" 30 "$T_DIR/hooks.jsonl" "len($(sel rs grace)) == 3" ||
	die "grace deliveries did not arrive"
meterd_stop g2 30
check_eq "SIGTERM past the grace: exit 0" 0 "$MD_RC"
check_eq "interrupted rows are pending again, attempt given back" "pending 0 3" \
	"$(sql "SELECT status || ' ' || max(attempts) || ' ' || count(*) FROM notifications WHERE subject_id LIKE 'grace-%' GROUP BY status")"
check_eq "the interruption is recorded" 3 \
	"$(sql "SELECT count(*) FROM notification_attempts a JOIN notifications n ON n.id = a.notification_id
	          WHERE n.subject_id LIKE 'grace-%' AND a.error LIKE 'interrupted%'")"
notifier_start g3 "${NARGS[@]}"
wait_for "the interrupted rows delivered by the next notifier" 30 \
	"SELECT count(*) = 3 FROM notifications WHERE subject_id LIKE 'grace-%' AND status = 'delivered' AND attempts = 1" ||
	die "interrupted rows not delivered"
meterd_stop g3 30
check_eq "g3 exits 0" 0 "$MD_RC"
test_done
