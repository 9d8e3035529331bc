#!/usr/bin/env bash
# t_dlq_resend: a dead letter the broker does not acknowledge before the
# batch commits is not lost. While the dead-letter topic fails every
# produce (a topic error in the mock cluster), meterd still counts the good
# events and stores the rejects, marked dlq_pending; once the topic works
# again, the rollup publisher's thread sends them again, and every reject
# ends up on the topic with its reason, none left pending.
source "$(dirname "$0")/lib.sh"
test_init --partitions 2

kctl() { "$ROOT/dev/env.sh" kafka-ctl "$METER_ENV_DIR" "$@"; }
kctl topic-error "$T_DLQ" TOPIC_AUTHORIZATION_FAILED || die "cannot set the topic error"

METER_HTTP_ADDR=127.0.0.1:0 meterd_start a
wait_schema
MD=$(http_addr a) || die "meterd does not serve HTTP"
# dead_letters OUTCOME: meterd's meter_dead_letters_total for it.
dead_letters() {
	hget "http://$MD/metrics" >/dev/null
	awk -v m="meter_dead_letters_total{outcome=\"$1\"}" '$1 == m {print $2}' "$T_DIR/http.body"
}

NOW=$(utc_now)
D='"user_id":"u-1","api_key_id":"k-1","provider":"openai","model":"gpt-4o-mini","operation":"chat"'
{
	printf 'acme\t%s\n' "$(event g1 acme "$NOW" "$D,\"input_tokens\":10")"
	printf 'acme\t%s\n' 'not json'
	printf 'acme\t%s\n' "$(event b-neg acme "$NOW" "$D,\"output_tokens\":-1")"
	printf 'acme\t%s\n' "$(event g2 acme "$NOW" "$D,\"input_tokens\":20")"
} >"$T_DIR/p0.kv"
{
	printf 'acme\t%s\n' '{"specversion":"1.0","id":"b-spec"}'
	printf 'acme\t%s\n' "$(event g3 acme "$NOW" "$D,\"input_tokens\":30")"
} >"$T_DIR/p1.kv"
produce_lines "$T_DIR/p0.kv" -p 0
produce_lines "$T_DIR/p1.kv" -p 1
wait_caught_up 60

check_eq "good events counted while the dead-letter topic fails" "3 60" \
	"$(sql "SELECT events || ' ' || input_tokens FROM rollups
	         WHERE tenant_id = 'acme' AND subject_type = 'tenant' AND period = 'day'")"
check_eq "rejects stored, all pending for the dead-letter topic" "3 3" \
	"$(sql "SELECT count(*) || ' ' || count(*) FILTER (WHERE dlq_pending) FROM rejected_events")"
check "meterd said the dead letters were not acknowledged" \
	grep -q 'dead letters not all acknowledged' "$T_DIR/meterd-a.log"
check_eq "metrics: dead letters acknowledged, pending" "0 3" \
	"$(dead_letters acknowledged) $(dead_letters pending)"

kctl topic-error "$T_DLQ" NO_ERROR || die "cannot clear the topic error"
wait_for "no reject left pending" 60 "SELECT count(*) = 0 FROM rejected_events WHERE dlq_pending" ||
	die "rejects still pending a minute after the topic works again"
check_eq "every reject on the dead-letter topic (source partition, offset, meter-reason)" \
	"$(sql "SELECT kafka_partition || ' ' || kafka_offset || ' ' || reason FROM rejected_events
	         ORDER BY kafka_partition, kafka_offset")" \
	"$(dlq_dump | uniq)"
check "meterd logged the dead letters sent again" grep -q 'sent again to' "$T_DIR/meterd-a.log"
check_eq "metrics: dead letters resent" 3 "$(dead_letters resent)"

# A reject after the recovery goes straight through: acknowledged before
# its batch commits, never pending.
log_mark a
printf 'acme\t%s\n' 'still not json' >"$T_DIR/p2.kv"
produce_lines "$T_DIR/p2.kv" -p 0
wait_caught_up 60
check_eq "a reject after the recovery: stored, none pending" "4 0" \
	"$(sql "SELECT count(*) || ' ' || count(*) FILTER (WHERE dlq_pending) FROM rejected_events")"
check_eq "a reject after the recovery: acknowledged at once (warnings, dead letters sent again)" "0 0" \
	"$(log_count a 'not all acknowledged') $(log_count a 'sent again to')"
check_eq "metrics: dead letters acknowledged, pending, resent" "1 3 3" \
	"$(dead_letters acknowledged) $(dead_letters pending) $(dead_letters resent)"

meterd_stop a
check_eq "meterd exit code on SIGTERM" 0 "$MD_RC"
test_done
