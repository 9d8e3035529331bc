#!/usr/bin/env bash
# t_bad_input: every kind of bad message is rejected with the right reason,
# stored in rejected_events, sent to the dead-letter topic with a
# meter-reason header, never counted - and the valid events after it on the
# same partition are still counted. Includes a 10 MB message and a NULL one.
source "$(dirname "$0")/lib.sh"
test_init --partitions 2

meterd_start a
wait_schema

NOW=$(utc_now)
FUTURE=$(date -u -d '+10 years' +%Y-%m-%dT%H:%M:%SZ)
PAST=$(date -u -d '-10 years' +%Y-%m-%dT%H:%M:%SZ)
D='"user_id":"u-1","api_key_id":"k-1","provider":"openai","model":"gpt-4o-mini","operation":"chat"'

# Phase 1, all on partition 0 in this order: offset = line number - 1.
# Each line: expected reason (or "valid"), then the key, then the payload.
CASES=$T_DIR/cases
{
	printf 'valid\tacme\t%s\n' "$(event v1 acme "$NOW" "$D,\"input_tokens\":1000,\"output_tokens\":100,\"cost\":\"0.001\"")"
	printf 'malformed_json\tacme\t%s\n' '{"specversion":"1.0","id":"b-trunc","data":{"tenant'
	printf 'malformed_json\tacme\t%s\n' 'this is not json at all'
	printf 'malformed_json\tacme\t\n' # NULL value (kcat -Z)
	printf 'wrong_type\tacme\t%s\n' "$(event b-str acme "$NOW" "$D,\"input_tokens\":\"1200\"")"
	printf 'wrong_type\tacme\t%s\n' "$(event b-frac acme "$NOW" "$D,\"output_tokens\":1.5")"
	printf 'not_an_object\tacme\t%s\n' '{"specversion":"1.0","id":"b-data","source":"s","type":"t","time":"'"$NOW"'","subject":"acme","data":"chat"}'
	printf 'not_an_object\tacme\t%s\n' '[{"id":"b-array"}]'
	printf 'negative_value\tacme\t%s\n' "$(event b-neg acme "$NOW" "$D,\"output_tokens\":-1")"
	printf 'integer_overflow\tacme\t%s\n' "$(event b-ovf acme "$NOW" "$D,\"input_tokens\":99999999999999999999")"
	printf 'out_of_range\tacme\t%s\n' "$(event b-cap acme "$NOW" "$D,\"input_tokens\":9223372036854775807")"
	printf 'missing_field\tacme\t%s\n' '{"specversion":"1.0","source":"s","type":"t","time":"'"$NOW"'","subject":"acme","data":{"operation":"chat"}}'
	printf 'missing_field\tacme\t%s\n' '{"specversion":"1.0","id":"b-notenant","source":"s","type":"t","time":"'"$NOW"'","data":{"operation":"chat","input_tokens":5}}'
	printf 'invalid_utf8\tacme\t%s\n' "$(event b-utf8 acme "$NOW" "$D,\"endpoint\":\"/v1/caf"$'\xc3\x28'"\"")"
	printf 'invalid_utf8\tacme\t\xff\xfe\xfd\x01garbage\n'
	printf 'time_in_future\tacme\t%s\n' "$(event b-future acme "$FUTURE" "$D,\"input_tokens\":7")"
	printf 'too_late\tacme\t%s\n' "$(event b-past acme "$PAST" "$D,\"input_tokens\":7")"
	printf 'invalid_time\tacme\t%s\n' "$(event b-time acme "2026-13-45T99:00:00Z" "$D")"
	printf 'tenant_mismatch\tacme\t%s\n' '{"specversion":"1.0","id":"b-mis","source":"s","type":"t","time":"'"$NOW"'","subject":"acme","data":{"tenant_id":"evil","operation":"chat"}}'
	printf 'invalid_cost\tacme\t%s\n' "$(event b-cost acme "$NOW" "$D,\"cost\":0.25")"
	printf 'unsupported_specversion\tacme\t%s\n' '{"specversion":"0.3","id":"b-spec","source":"s","type":"t","time":"'"$NOW"'","subject":"acme","data":{"operation":"chat"}}'
	printf 'too_long\tacme\t%s\n' "$(event "b-$(printf 'x%.0s' $(seq 1 200))" acme "$NOW" "$D")"
	printf 'invalid_value\tacme\t%s\n' "$(event b-chars "ac me" "$NOW" "$D")"
	printf 'too_large\tacme\t%s\n' "$(event b-big acme "$NOW" "$D,\"metadata\":{\"pad\":\"$(head -c 70000 /dev/zero | tr '\0' x)\"}")"
	printf 'valid\tacme\t%s\n' "$(event v2 acme "$NOW" "$D,\"input_tokens\":2000,\"output_tokens\":200,\"cost\":\"0.002\"")"
	printf 'valid\tacme\t%s\n' "$(event v3 acme "$NOW" "\"user_id\":\"u-2\",\"operation\":\"rag\",\"input_tokens\":30,\"output_tokens\":3,\"requests\":2,\"cost\":\"0.000000000007\"")"
} >"$CASES"
cut -f2- "$CASES" >"$T_DIR/phase1.kv"
produce_lines "$T_DIR/phase1.kv" -p 0 -Z
N1=$(wc -l <"$CASES")
check_eq "messages on partition 0 after phase 1" "0 0 $N1" "$(topic_offsets "$T_TOPIC" | awk 'NR == 1')"
wait_caught_up 60

EXPECTED=$(awk -F'\t' '$1 != "valid" {print NR - 1, $1}' "$CASES")
check_eq "rejected_events (offset reason) on partition 0" "$EXPECTED" \
	"$(sql "SELECT kafka_offset || ' ' || reason FROM rejected_events WHERE kafka_partition = 0 ORDER BY kafka_offset")"
check_eq "rejected_events keep the key and the payload size" "$(grep -vc '^valid' "$CASES") 0" \
	"$(sql "SELECT count(*) || ' ' || count(*) FILTER (WHERE kafka_key IS DISTINCT FROM 'acme'::bytea
	          OR payload_size <> length(payload) AND reason <> 'too_large') FROM rejected_events")"
# A reject keeps the tenant and id it names, when they are valid identifiers
# (a tenant's rejects can be found by them); none for what is not an object
# or names none, and never the invalid one ("ac me", a 201-byte id).
check_eq "rejected_events: tenant and id of the events that name valid ones" \
	"$(printf '%s\n' "1 - -" "2 - -" "3 - -" "4 acme b-str" "5 acme b-frac" "6 acme b-data" "7 - -" \
		"8 acme b-neg" "11 acme -" "12 - b-notenant" "14 - -" "15 acme b-future" "16 acme b-past" \
		"18 acme b-mis" "21 acme -" "22 - b-chars" "23 - -")" \
	"$(sql "SELECT kafka_offset || ' ' || coalesce(tenant_id, '-') || ' ' || coalesce(event_id, '-')
	          FROM rejected_events WHERE kafka_partition = 0
	           AND kafka_offset IN (1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15, 16, 18, 21, 22, 23)
	         ORDER BY kafka_offset")"
check_eq "payload of the NULL message stored as empty" "0 0" \
	"$(sql "SELECT payload_size || ' ' || length(payload) FROM rejected_events WHERE kafka_offset = 3")"
check_eq "counted events (only v1, v2, v3)" "v1 v2 v3" \
	"$(sql "SELECT string_agg(event_id, ' ' ORDER BY event_id) FROM events")"
check_eq "no dedupe record for any rejected id" 0 \
	"$(sql "SELECT count(*) FROM event_ids WHERE event_id LIKE 'b-%'")"
check_eq "tenant acme month rollup (events requests input output cost)" "3 4 3030 303 3000000007" \
	"$(sql "SELECT events || ' ' || requests || ' ' || input_tokens || ' ' || output_tokens || ' ' || cost_pusd
	          FROM rollups WHERE tenant_id = 'acme' AND subject_type = 'tenant' AND period = 'month'")"
check_eq "no tenant created from a rejected event" "acme" \
	"$(sql "SELECT string_agg(id, ' ') FROM tenants")"

# Phase 2: a 10 MB message, then a valid one after it on the same partition.
# Compressed on the wire (lz4): meterd sees the whole 10 MB, but the mock
# broker only stores the compressed bytes. Uncompressed, a message over the
# mock's ~5 MB per-partition log evicts everything, itself included (its log
# start jumps past it), which would test the mock rather than meterd.
BIG=$T_DIR/big.json
event b-10mb acme "$NOW" "$D,\"metadata\":{\"pad\":\"$(head -c $((10 * 1024 * 1024)) /dev/zero | tr '\0' y)\"}" >"$BIG"
kcat -b "$METER_KAFKA_BROKERS" -P -t "$T_TOPIC" -p 0 -k acme -X message.max.bytes=20000000 \
	-X compression.codec=lz4 "$BIG" || die "the mock broker or kcat refused a 10 MB message"
wait_caught_up 60
check_eq "10 MB message rejected (reason, original size, stored bytes)" "too_large $(stat -c %s "$BIG") 65536" \
	"$(sql "SELECT reason || ' ' || payload_size || ' ' || length(payload) FROM rejected_events WHERE kafka_offset = $N1")"
event v4 acme "$NOW" "$D,\"input_tokens\":4,\"output_tokens\":4,\"cost\":\"0.000004\"" | sed 's/^/acme\t/' >"$T_DIR/phase2.kv"
produce_lines "$T_DIR/phase2.kv" -p 0
wait_caught_up 60
check_eq "valid event after the 10 MB one counted" "v1 v2 v3 v4" \
	"$(sql "SELECT string_agg(event_id, ' ' ORDER BY event_id) FROM events")"

# The same 10 MB uncompressed, alone on the empty partition 1: meterd must
# fetch it whole. (Nothing follows it there: in the mock, the next message
# appended to a partition holding more than ~5 MB is lost with it.)
kcat -b "$METER_KAFKA_BROKERS" -P -t "$T_TOPIC" -p 1 -k acme -X message.max.bytes=20000000 "$BIG" ||
	die "the mock broker or kcat refused an uncompressed 10 MB message"
wait_caught_up 60
check_eq "uncompressed 10 MB message rejected on partition 1" "1 0 too_large $(stat -c %s "$BIG")" \
	"$(sql "SELECT kafka_partition || ' ' || kafka_offset || ' ' || reason || ' ' || payload_size
	          FROM rejected_events WHERE kafka_partition = 1")"

# Dead letters: one per rejected message, with the same reason.
check_eq "dead letters (source partition, offset, meter-reason header)" \
	"$(sql "SELECT kafka_partition || ' ' || kafka_offset || ' ' || reason FROM rejected_events ORDER BY kafka_partition, kafka_offset")" \
	"$(dlq_dump)"

check "meterd still running after every bad message" meterd_alive a
meterd_stop a
check_eq "meterd exit code on SIGTERM" 0 "$MD_RC"
test_done
