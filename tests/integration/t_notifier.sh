#!/usr/bin/env bash
# Threshold notifications end to end (issue 5): a tenant with a limit of 10
# requests a day crosses 80, 90 and 100 % in three steps and gets exactly
# three webhooks (Standard Webhooks signature verified by the receiver's own
# code, right percent, limit, used and reset time) and three emails (through
# a real SMTP server with AUTH, Message-ID from the notification id); more
# events in the same period send nothing more; the next day (test clock)
# re-arms the thresholds; a tenant with its own thresholds and only an email
# is notified at those, by email; no secret reaches a log; meterctl notifications
# list shows it all.
source "$(dirname "$0")/lib.sh"
test_init --partitions 2

limits_init 2

[[ -x $NOTIFIER ]] || die "$NOTIFIER is missing; run 'make all' first"

ZONE=America/Argentina/Buenos_Aires
MIDNIGHT_UTC=$(date -u -d "$(TZ=$ZONE date -d tomorrow +%F) 00:00 -0300" +%Y-%m-%dT%H:%M:%SZ)
MIDNIGHT2_UTC=$(date -u -d "$(TZ=$ZONE date -d '2 days' +%F) 00:00 -0300" +%Y-%m-%dT%H:%M:%SZ)
TOMORROW=$(TZ=$ZONE date -d tomorrow +%F)
SMTP_PW="smtp-pw-$RANDOM$RANDOM-never-logged"
export METER_SMTP_PASSWORD=$SMTP_PW

start_receiver hooks --secret-file "$T_DIR/secret"
start_sink mail --auth "meter:$SMTP_PW"
ctl tenant add acme --tz "$ZONE" --webhook "http://127.0.0.1:$RPORT/hook" \
	--email ops@acme.example >/dev/null || die "tenant add failed"
SECRET=$(ctl tenant show acme --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["webhook_secret"])')
[[ $SECRET == whsec_* ]] || die "no webhook secret generated"
printf '%s\n' "$SECRET" >"$T_DIR/secret"
ctl limit set acme requests day 10 >/dev/null || die "limit set failed"

meterd_start md
log_wait md "assigned" 60 || die "meterd did not get its partitions"
notifier_start nt --webhook-allow-private=1 --smtp-url "smtp://127.0.0.1:$SPORT" \
	--smtp-from "meterd alerts <alerts@meter.example>" --smtp-user meter
log_wait nt "listening on meter_notifications" 30 || die "the notifier did not start"

SEQ=0
# send N [TIME]: N valid events of acme at TIME (default now).
send() {
	local n=$1 when=${2:-$(utc_now)} f=$T_DIR/send.$SEQ i
	: >"$f"
	for ((i = 0; i < n; i++)); do
		SEQ=$((SEQ + 1))
		printf 'acme\t%s\n' "$(event "ev-$SEQ" acme "$when" '"operation":"chat","input_tokens":10')" >>"$f"
	done
	produce_lines "$f"
}
counted() {
	wait_for "$1 requests counted for $2" 60 \
		"SELECT $1 = (SELECT coalesce(sum(requests), 0) FROM rollups WHERE tenant_id = 'acme'
		   AND subject_type = 'tenant' AND period = 'day' AND period_start = '$2')"
}
TODAY=$(TZ=$ZONE date +%F)

# --- 7 of 10: nothing; then 8, 9, 10: one webhook and one email each ----------
send 7
counted 7 "$TODAY" || die "events not counted"
check_eq "notifications queued at 70 %" 0 "$(sql "SELECT count(*) FROM notifications")"
for t in 80 90 100; do
	send 1
	n=$((t / 10 - 7))
	wait_jl "webhook of the $t % threshold" 30 "$T_DIR/hooks.jsonl" "len(answered) == $n" ||
		die "no webhook for $t %"
	wait_jl "email of the $t % threshold" 30 "$T_DIR/mail.jsonl" "len(rs) == $n" ||
		die "no email for $t %"
done
check_eq "webhooks (threshold, percent, limit, used, resets_at)" \
	"[(80, 80.0, 10, 8, '$MIDNIGHT_UTC'), (90, 90.0, 10, 9, '$MIDNIGHT_UTC'), (100, 100.0, 10, 10, '$MIDNIGHT_UTC')]" \
	"$(jl "$T_DIR/hooks.jsonl" "sorted((r['json']['threshold'], r['json']['percent'], r['json']['limit'], r['json']['used'], r['json']['resets_at']) for r in answered)")"
check_eq "every webhook signature verifies (receiver's own HMAC code) with a fresh timestamp" \
	"True" "$(jl "$T_DIR/hooks.jsonl" "all(r['verified'] and r['ts_ok'] for r in rs) and len(rs) == 6")"
check_eq "webhook bodies: tenant, subject, metric, period, remaining, JSON content type" \
	"[('acme', 'tenant/acme', 'requests', 'day', 2, 'application/json'), ('acme', 'tenant/acme', 'requests', 'day', 1, 'application/json'), ('acme', 'tenant/acme', 'requests', 'day', 0, 'application/json')]" \
	"$(jl "$T_DIR/hooks.jsonl" "[(r['json']['tenant'], r['json']['subject'], r['json']['metric'], r['json']['period'], r['json']['remaining'], r['content_type']) for r in sorted(answered, key=lambda r: r['json']['threshold'])]")"
check_eq "webhook-id = the body's id = the outbox msg_id, one per threshold" \
	"$(sql "SELECT string_agg(msg_id, ' ' ORDER BY msg_id COLLATE \"C\") FROM notifications WHERE channel = 'webhook'")" \
	"$(jl "$T_DIR/hooks.jsonl" "' '.join(sorted(r['id'] for r in answered if r['id'] == r['json']['id']))")"
check_eq "emails: Message-ID from the msg_id, sent as meter to ops@acme.example" \
	"$(sql "SELECT string_agg('<' || msg_id || '@meterd> meter ops@acme.example', ' | ' ORDER BY msg_id COLLATE \"C\") FROM notifications WHERE channel = 'email'")" \
	"$(jl "$T_DIR/mail.jsonl" "' | '.join(sorted(r['message_id'] + ' ' + str(r['auth_login']) + ' ' + ','.join(r['rcpt_tos']) for r in rs))")"
check_eq "email subjects" \
	"['[meterd] acme reached 80% of its daily requests limit', '[meterd] acme reached 90% of its daily requests limit', '[meterd] acme reached its daily requests limit']" \
	"$(jl "$T_DIR/mail.jsonl" "sorted(r['subject'] for r in rs)")"
RESET_LOCAL="$(TZ=$ZONE date -d tomorrow +%F) 00:00 $ZONE"
RESET_UTC="$(date -u -d "$MIDNIGHT_UTC" '+%F %H:%M') UTC"
check_eq "80 % email text: used, remaining, reset in UTC and the tenant's zone" "True" \
	"$(jl "$T_DIR/mail.jsonl" "any('Used:       8 requests of 10 requests (80.00%)' in r['text'] and 'Remaining:  2 requests' in r['text'] and 'Resets at:  $RESET_UTC ($RESET_LOCAL)' in r['text'] and '<table>' in r['html'] and r['from'] == 'meterd alerts <alerts@meter.example>' for r in rs)")"
check_eq "100 % email says the limit is reached" "True" \
	"$(jl "$T_DIR/mail.jsonl" "any('acme has reached its daily requests limit (100.00%)' in r['text'] and 'Remaining:  0 requests' in r['text'] for r in rs)")"

# --- more events in the same period: nothing more ----------------------------
send 5
counted 15 "$TODAY" || die "events not counted"
sleep 2 # let a wrongly queued notification show up before asserting there is none
check_eq "outbox rows after 15 of 10 requests (3 thresholds x 2 channels)" 6 \
	"$(sql "SELECT count(*) FROM notifications")"
check_eq "webhook requests after 15 of 10" 3 "$(jl "$T_DIR/hooks.jsonl" "len(answered)")"
check_eq "emails after 15 of 10" 3 "$(jl "$T_DIR/mail.jsonl" "len(rs)")"
check_eq "all six delivered on their first attempt" "delivered 1 6" \
	"$(sql "SELECT status || ' ' || max(attempts) || ' ' || count(*) FROM notifications GROUP BY status")"

# --- the next day (test clock): the thresholds are armed again ---------------
meterd_stop md 60
check_eq "meterd exits 0 on SIGTERM" 0 "$MD_RC"
METER_TEST_CLOCK_OFFSET=86400 meterd_start md2
log_wait md2 "assigned" 60 || die "meterd (next day) did not get its partitions"
send 8 "$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%S.000Z)"
counted 8 "$TOMORROW" || die "next-day events not counted"
wait_jl "the next day's 80 % webhook" 30 "$T_DIR/hooks.jsonl" "len(answered) == 4" ||
	die "no webhook the next day"
wait_jl "the next day's 80 % email" 30 "$T_DIR/mail.jsonl" "len(rs) == 4" || die "no email the next day"
check_eq "the next day's webhook (threshold, used, period_start, resets_at)" \
	"(80, 8, '$TOMORROW', '$MIDNIGHT2_UTC')" \
	"$(jl "$T_DIR/hooks.jsonl" "max(((r['json']['threshold'], r['json']['used'], r['json']['period_start'], r['json']['resets_at']) for r in answered), key=lambda x: x[2])")"
check_eq "distinct webhook-ids (no repeats)" 4 "$(jl "$T_DIR/hooks.jsonl" "len(set(r['id'] for r in answered))")"

# --- meterctl notifications list ---------------------------------------------
ctl notifications list acme --json >"$T_DIR/list.json" || die "notifications list failed"
check_eq "list --json: 8 rows, all delivered, last attempt HTTP 200 or SMTP 250" \
	"8 True" \
	"$("$PY" -c 'import json,sys; a=json.load(open(sys.argv[1])); print(len(a), all(r["status"]=="delivered" and r["last_attempt"]["status"] in (200,250) and r["last_attempt"]["error"] is None for r in a))' "$T_DIR/list.json")"
check_eq "list --status delivered --channel email --limit 2" 2 \
	"$(ctl notifications list --status delivered --channel email --limit 2 --json | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')"
check_eq "list (table): a header and 8 rows" 9 "$(ctl notifications list acme | wc -l)"
check_eq "list --status dead: none" "[]" "$(ctl notifications list --status dead --json)"
rc=0
ctl notifications list --status nope >/dev/null 2>&1 || rc=$?
check_eq "list --status nope exits 2" 2 "$rc"
rc=0
ctl notifications retry "$(sql "SELECT min(id) FROM notifications")" >/dev/null 2>&1 || rc=$?
check_eq "retry of a delivered notification is refused (exit 1)" 1 "$rc"

# --- a tenant's own thresholds, email only -------------------------------------
ctl tenant add beta --thresholds 50 --email ops@beta.example >/dev/null ||
	die "tenant add beta failed"
ctl limit set beta requests day 10 >/dev/null || die "limit set beta failed"
: >"$T_DIR/beta"
for i in 1 2 3 4 5 6; do
	printf 'beta\t%s\n' "$(event "beta-$i" beta "$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%S.000Z)" \
		'"operation":"chat","input_tokens":10')" >>"$T_DIR/beta"
done
produce_lines "$T_DIR/beta"
wait_for "beta's 6 requests counted" 60 \
	"SELECT 6 = (SELECT coalesce(sum(requests), 0) FROM rollups WHERE tenant_id = 'beta'
	   AND subject_type = 'tenant' AND period = 'day')" || die "beta's events not counted"
wait_jl "beta's email at its own 50 % threshold" 30 "$T_DIR/mail.jsonl" "len(rs) == 5" ||
	die "no email for beta"
check_eq "beta's notifications: one, at 50 %, by email (no webhook set)" "50 email" \
	"$(sql "SELECT string_agg(threshold || ' ' || channel, ', ') FROM notifications WHERE tenant_id = 'beta'")"

# --- secrets never logged ------------------------------------------------------
meterd_stop nt 30
check_eq "the notifier exits 0 on SIGTERM" 0 "$MD_RC"
meterd_stop md2 60
logs=$(cat "$T_DIR"/meterd-*.log)
check_eq "webhook secret in the logs of meterd and meter-notifier" 0 \
	"$(grep -cF -e "$SECRET" -e "${SECRET#whsec_}" <<<"$logs" || true)"
check_eq "SMTP password in the logs" 0 "$(grep -cF -e "$SMTP_PW" <<<"$logs" || true)"
check_eq "webhook-signature values in the logs" 0 \
	"$(jl "$T_DIR/hooks.jsonl" "sum(1 for r in rs if r['signature'] and r['signature'][3:] in open('$T_DIR/meterd-nt.log').read())")"
test_done
