#!/usr/bin/env bash
# Notifier failures and retries (issue 5), on outbox rows queued with SQL as
# meterd queues them, against real receivers: 500 twice then 200 (third
# attempt, same webhook-id); 429 with Retry-After (honoured); a timeout
# (retried); a receiver down for a while (delivered once it is up); 410
# (disabled, with the tenant's webhook and its other pending rows); always
# 500 (dead after the last attempt, then meterctl notifications retry
# delivers it); SMTP answering 451 twice (third attempt); and the SSRF guard:
# without METER_WEBHOOK_ALLOW_PRIVATE, URLs that reach loopback (by address,
# by name, IPv4-mapped, decimal) or 169.254.169.254 are refused at connect.
source "$(dirname "$0")/lib.sh"
test_init --partitions 1

export METER_TOPIC_LIMITS=$T_DB.limits
ctl migrate >/dev/null || die "meterctl migrate failed"

[[ -x $NOTIFIER ]] || die "$NOTIFIER is missing; run 'make all' first"

# note NAME TENANT TARGET [CHANNEL [DUE_IN_SECONDS]]: queue a notification for
# subject user/NAME the way meterd does (payload = the webhook body); prints
# its id.
note() {
	local name=$1 tenant=$2 target=$3 channel=${4:-webhook} due=${5:-0}
	sql "INSERT INTO notifications (msg_id, tenant_id, subject_type, subject_id, metric,
	       period, period_start, threshold, channel, target, limit_value, used, resets_at,
	       payload, next_attempt_at)
	     SELECT m, '$tenant', 'user', '$name', 'requests', 'day', current_date, 80, '$channel',
	            '$target', 10, 8, date_trunc('day', now()) + interval '1 day',
	            jsonb_build_object('type', 'usage.threshold_reached', 'id', m, 'tenant', '$tenant',
	              'subject', 'user/$tenant/$name', 'subject_type', 'user', 'subject_id', '$name',
	              'metric', 'requests', 'period', 'day', 'period_start', current_date,
	              'threshold', 80, 'limit', 10, 'used', 8, 'remaining', 2, 'percent', 80.00,
	              'timezone', 'UTC'),
	            now() + $due * interval '1 second'
	       FROM (SELECT 'msg_' || md5('$T_DB/$name/$channel') AS m) x
	     RETURNING id"
	sql "SELECT pg_notify('meter_notifications', '')" >/dev/null
}
nfield() { sql "SELECT $2 FROM notifications WHERE id = $1"; }
# attempts_of ID: the HTTP/SMTP status of each attempt, in order (- for none).
attempts_of() {
	sql "SELECT string_agg(coalesce(http_status::text, '-'), ',' ORDER BY id)
	       FROM notification_attempts WHERE notification_id = $1"
}
msg_of() { nfield "$1" msg_id; }
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

SECRET=whsec_$(head -c 32 /dev/urandom | base64)
printf '%s\n' "$SECRET" >"$T_DIR/secret"
start_receiver hooks --secret-file "$T_DIR/secret"
H=http://127.0.0.1:$RPORT
start_sink mail --fail-first 2
ctl tenant add acme --webhook "$H/hook" --webhook-secret "$SECRET" --email ops@acme.example \
	>/dev/null || die "tenant add acme failed"
ctl tenant add gone --webhook "$H/gone?status=410" --webhook-secret "$SECRET" >/dev/null ||
	die "tenant add gone failed"

notifier_start a --webhook-allow-private=1 --notify-retry-schedule 1s,1s,2s,2s,3s,3s \
	--webhook-timeout 2s --smtp-url "smtp://127.0.0.1:$SPORT" --smtp-from alerts@meter.example
log_wait a "listening on meter_notifications" 30 || die "the notifier did not start"

DPORT=$(free_port)
FAIL2=$(note fail2 acme "$H/hook?fail=2")
RA=$(note ra acme "$H/hook?fail=1&fail_status=429&retry_after=3")
SLOW=$(note slow acme "$H/hook?delay=4&slow=1")
DOWN=$(note down acme "http://127.0.0.1:$DPORT/hook")
GONE2=$(note gone2 gone "$H/gone?status=410" webhook 3600) # queued before the 410
GONE=$(note gone gone "$H/gone?status=410")
DEAD=$(note dead acme "$H/hook?fail=7")
MAIL=$(note mail acme ops@acme.example email)

# --- the receiver is down for a while, then up ------------------------------
wait_for "two failed attempts to the receiver that is down" 30 \
	"SELECT count(*) >= 2 FROM notification_attempts WHERE notification_id = $DOWN" ||
	die "no attempts to the down receiver"
check_eq "attempts to a closed port fail with a connection error" t \
	"$(sql "SELECT bool_and(error LIKE 'Couldn''t connect%' AND http_status IS NULL)
	          FROM notification_attempts WHERE notification_id = $DOWN")"
start_peer webhook_receiver.py down --port "$DPORT" --secret-file "$T_DIR/secret"
wait_for "delivery once the receiver is up" 30 \
	"SELECT status = 'delivered' FROM notifications WHERE id = $DOWN" || die "never delivered"
check_eq "delivered later, with a verified signature" "True" \
	"$(jl "$T_DIR/down.jsonl" "[r['status'] for r in answered] == [200] and all(r['verified'] and r['id'] == '$(msg_of "$DOWN")' for r in rs)")"

# --- 500, 500, 200 ------------------------------------------------------------
wait_for "fail2 delivered" 30 "SELECT status = 'delivered' FROM notifications WHERE id = $FAIL2" ||
	die "fail2 not delivered"
check_eq "500 twice then 200: attempts recorded" "500,500,200" "$(attempts_of "$FAIL2")"
check_eq "the same webhook-id on all three requests, signatures verified" \
	"[('$(msg_of "$FAIL2")', 500, True), ('$(msg_of "$FAIL2")', 500, True), ('$(msg_of "$FAIL2")', 200, True)]" \
	"$(jl "$T_DIR/hooks.jsonl" "[(r['id'], r['status'], r['verified']) for r in answered if r['query'] == 'fail=2']")"
check_eq "the same body on every attempt, different timestamps" "1 3" \
	"$(jl "$T_DIR/hooks.jsonl" "'%d %d' % (len(set(r['body'] for r in answered if r['query'] == 'fail=2')), len(set(r['timestamp'] for r in answered if r['query'] == 'fail=2')))")"
check_eq "the response snippet of a failed attempt is kept" '{"ok": false, "n": 1}' \
	"$(sql "SELECT response_snippet FROM notification_attempts WHERE notification_id = $FAIL2 ORDER BY id LIMIT 1")"
check_eq "fail2 row: delivered, 3 attempts" "delivered 3" "$(nfield "$FAIL2" "status || ' ' || attempts")"

# --- 429 with Retry-After: 3 (the schedule says 1 s) -------------------------
wait_for "ra delivered" 30 "SELECT status = 'delivered' FROM notifications WHERE id = $RA" ||
	die "ra not delivered"
check_eq "429 then 200" "429,200" "$(attempts_of "$RA")"
check_eq "Retry-After honoured: at least 3 s between the attempts" t \
	"$(sql "SELECT max(attempted_at) - min(attempted_at) >= interval '2.9 seconds'
	          FROM notification_attempts WHERE notification_id = $RA")"

# --- a timeout (2 s) is retried ----------------------------------------------
wait_for "slow delivered" 30 "SELECT status = 'delivered' FROM notifications WHERE id = $SLOW" ||
	die "slow not delivered"
check_eq "timeout, then 200" "-,200" "$(attempts_of "$SLOW")"
check_eq "the first attempt says it timed out" t \
	"$(sql "SELECT error LIKE 'timed out after 2000 ms%' FROM notification_attempts
	          WHERE notification_id = $SLOW ORDER BY id LIMIT 1")"

# --- 410 Gone ----------------------------------------------------------------
wait_for "gone disabled" 30 "SELECT status = 'disabled' FROM notifications WHERE id = $GONE" ||
	die "gone not disabled"
check_eq "410 disables the notification after one attempt" "disabled 1 410" \
	"$(nfield "$GONE" "status || ' ' || attempts") $(attempts_of "$GONE")"
check_eq "the tenant's webhook is disabled" t \
	"$(sql "SELECT webhook_disabled_at IS NOT NULL FROM tenants WHERE id = 'gone'")"
check_eq "its other pending webhook is disabled too, never sent" "disabled 0" \
	"$(nfield "$GONE2" "status || ' ' || attempts")"
check_eq "acme's webhook is not disabled" t \
	"$(sql "SELECT webhook_disabled_at IS NULL FROM tenants WHERE id = 'acme'")"
rc=0
ctl notifications retry "$GONE" >"$T_DIR/retry.out" 2>&1 || rc=$?
check_eq "retry of a disabled tenant's webhook is refused (exit 1, says why)" "1 1" \
	"$rc $(grep -c "answered 410 Gone" "$T_DIR/retry.out")"

# --- SMTP 451, 451, then accepted --------------------------------------------
wait_for "the email delivered" 30 "SELECT status = 'delivered' FROM notifications WHERE id = $MAIL" ||
	die "email not delivered"
check_eq "email attempts: 451, 451, 250" "451,451,250" "$(attempts_of "$MAIL")"
check_eq "one email accepted, Message-ID from the msg_id" "['<$(msg_of "$MAIL")@meterd>']" \
	"$(jl "$T_DIR/mail.jsonl" "[r['message_id'] for r in rs]")"

# --- always 500: dead after the 7th attempt; retry by id delivers it ---------
wait_for "dead marked dead" 60 "SELECT status = 'dead' FROM notifications WHERE id = $DEAD" ||
	die "never dead"
check_eq "dead after 7 attempts with the last error" "dead 7 HTTP 500" \
	"$(nfield "$DEAD" "status || ' ' || attempts || ' ' || last_error")"
check_eq "seven attempts recorded" "500,500,500,500,500,500,500" "$(attempts_of "$DEAD")"
check_eq "list --status dead shows it" "$DEAD" \
	"$(ctl notifications list acme --status dead --json | "$PY" -c 'import json,sys; print(" ".join(str(r["id"]) for r in json.load(sys.stdin) if r["last_attempt"]["status"] == 500))')"
ctl notifications retry "$DEAD" >/dev/null || die "notifications retry failed"
wait_for "the retried notification delivered" 30 \
	"SELECT status = 'delivered' FROM notifications WHERE id = $DEAD" || die "retry not delivered"
check_eq "one more attempt after the retry (attempts kept)" "delivered 8" \
	"$(nfield "$DEAD" "status || ' ' || attempts")"

meterd_stop a 30
check_eq "notifier a exits 0" 0 "$MD_RC"

# --- the SSRF guard (no METER_WEBHOOK_ALLOW_PRIVATE) --------------------------
before=$(jl "$T_DIR/hooks.jsonl" "len(rs)")
notifier_start b --notify-retry-schedule 500ms
log_wait b "listening on meter_notifications" 30 || die "notifier b did not start"
LOOP=$(note ssrf_loop acme "$H/hook")
META=$(note ssrf_meta acme "http://169.254.169.254/latest/meta-data/")
NAME=$(note ssrf_name acme "http://localhost:$RPORT/hook")
MAPPED=$(note ssrf_mapped acme "http://[::ffff:127.0.0.1]:$RPORT/hook")
DEC=$(note ssrf_dec acme "http://2130706433:$RPORT/hook")
wait_for "the five private URLs dead" 30 \
	"SELECT count(*) = 5 FROM notifications WHERE id IN ($LOOP, $META, $NAME, $MAPPED, $DEC) AND status = 'dead'" ||
	die "private URLs not refused"
check_eq "127.0.0.1 refused as loopback" t \
	"$(nfield "$LOOP" "last_error LIKE 'refused to connect to 127.0.0.1 (loopback address%'")"
check_eq "169.254.169.254 refused as cloud metadata" t \
	"$(nfield "$META" "last_error LIKE 'refused to connect to 169.254.169.254 (cloud metadata address%'")"
check_eq "localhost refused by its resolved address" t \
	"$(nfield "$NAME" "last_error ~ '^refused to connect to (127\.0\.0\.1|::1) \(loopback'")"
check_eq "::ffff:127.0.0.1 refused" t \
	"$(nfield "$MAPPED" "last_error LIKE 'refused to connect to ::ffff:127.0.0.1 (loopback address%'")"
check_eq "2130706433 (decimal 127.0.0.1) refused" t \
	"$(nfield "$DEC" "last_error LIKE 'refused to connect to 127.0.0.1 (loopback%'")"
check_eq "each tried twice (the schedule), no HTTP status" "-,- -,- -,- -,- -,-" \
	"$(for i in $LOOP $META $NAME $MAPPED $DEC; do attempts_of "$i"; done | tr '\n' ' ' | sed 's/ $//')"
check_eq "the receiver got nothing from the guarded notifier" "$before" "$(jl "$T_DIR/hooks.jsonl" "len(rs)")"
check_eq "the refusals are logged" t "$( (($(log_count b 'refused to connect to') >= 5)) && echo t || echo f)"
out=$(ctl notifications retry --dead acme)
check_eq "retry --dead acme re-queues the five" "5 dead notification(s) of acme queued again (due now)" "$out"
meterd_stop b 30
check_eq "notifier b exits 0" 0 "$MD_RC"
check_eq "secret not logged" 0 "$(cat "$T_DIR"/meterd-*.log | grep -cF -e "${SECRET#whsec_}" || true)"
test_done
