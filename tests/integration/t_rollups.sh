#!/usr/bin/env bash
# t_rollups: usage.rollups, the billing topic. After a stream of events (two
# tenants, one in Asia/Kathmandu, users, keys, duplicates), the last record
# of every key equals its database rollup exactly (totals, cost, limits, the
# subject and the period's bounds in the tenant's zone), no key is missing
# or extra, and the records of each key never go down. When the periods end
# (the clock moved 3 days on, lateness bound 1 h), every day rollup gets
# exactly one "closed" record with its final totals, and the month rollups
# (still open) none.
source "$(dirname "$0")/lib.sh"
test_init --partitions 4

export METER_MAX_LATENESS=1h
meterd_start a
wait_schema
add_tenant acme Asia/Kathmandu
ctl tenant set acme --plan pro >/dev/null || die "tenant set --plan failed"
# Every acme user: 15 requests a day (each of the 3 users makes 20).
ctl limit set acme requests day 15 --users >/dev/null || die "limit set --users failed"

NOW=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
{
	for i in $(seq 1 60); do
		printf 'acme\t%s\n' "$(event a$i acme "$NOW" "\"user_id\":\"u-$((i % 3))\",\"api_key_id\":\"k-$((i % 2))\",\"operation\":\"chat\",\"provider\":\"openai\",\"model\":\"gpt-4o-mini\",\"input_tokens\":$((i * 10)),\"output_tokens\":$i")"
	done
	for i in $(seq 1 20); do
		printf 'beta\t%s\n' "$(event b$i beta "$NOW" "\"user_id\":\"v-1\",\"operation\":\"image_generation\",\"provider\":\"openai\",\"model\":\"dall-e-3\",\"units\":{\"images\":2}")"
	done
	# duplicates: same ids again
	for i in 1 2 3; do
		printf 'acme\t%s\n' "$(event a$i acme "$NOW" "\"user_id\":\"u-$((i % 3))\",\"api_key_id\":\"k-$((i % 2))\",\"operation\":\"chat\",\"provider\":\"openai\",\"model\":\"gpt-4o-mini\",\"input_tokens\":$((i * 10)),\"output_tokens\":$i")"
	done
} >"$T_DIR/events.kv"
produce_lines "$T_DIR/events.kv" -X compression.codec=lz4
wait_caught_up 60
wait_for "the rollup outbox is drained" 30 "SELECT count(*) = 0 FROM rollup_outbox" ||
	die "the rollup outbox was not drained"

# compare [closed]: the topic against the database.
compare() {
	kcat -b "$METER_KAFKA_BROKERS" -C -t "$METER_TOPIC_ROLLUPS" -o beginning -e -q -f '%k\t%s\n' \
		>"$T_DIR/rollups.tsv" 2>/dev/null
	sql "SELECT json_agg(json_build_object(
	        'key', meter_rollup_key(tenant_id, subject_type, subject_id, period, period_start),
	        'period', period, 'events', events, 'requests', requests,
	        'input_tokens', input_tokens, 'output_tokens', output_tokens,
	        'cost_pusd', cost_pusd::text, 'cost_usd', meter_pusd_to_usd(cost_pusd),
	        'subject', meter_subject(subject_type, tenant_id, subject_id),
	        'starts_at', to_char(period_start::timestamp AT TIME ZONE t.tz AT TIME ZONE 'UTC',
	                             'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
	        'ends_at', to_char(meter_period_end(t.tz, period, period_start) AT TIME ZONE 'UTC',
	                           'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
	        'closed', closed_at IS NOT NULL))
	       FROM rollups r JOIN tenants t ON t.id = r.tenant_id" >"$T_DIR/db.json"
	"$PY" - "$T_DIR/rollups.tsv" "$T_DIR/db.json" "${1:-}" <<'PY'
import json, sys
recs = {}
bad = 0
for line in open(sys.argv[1]):
    k, _, v = line.rstrip("\n").partition("\t")
    r = json.loads(v)
    prev = recs.get(k, [])
    if prev and (r["events"] < prev[-1]["events"] or int(r["cost_pusd"]) < int(prev[-1]["cost_pusd"])):
        print(f"{k}: totals went down: {prev[-1]['events']} then {r['events']}"); bad += 1
    recs.setdefault(k, []).append(r)
db = {r["key"]: r for r in json.load(open(sys.argv[2]))}
closing = sys.argv[3] == "closed"
for k, d in db.items():
    if k not in recs:
        print(f"{k}: no record on the topic"); bad += 1; continue
    last = recs[k][-1]
    for f in ("events", "requests", "input_tokens", "output_tokens", "cost_pusd", "cost_usd",
              "subject", "starts_at", "ends_at"):
        if str(last[f]) != str(d[f]):
            print(f"{k}: {f} topic {last[f]} database {d[f]}"); bad += 1
    closed = [r for r in recs[k] if r["type"] == "closed"]
    want = 1 if (closing and d["period"] == "day") else 0
    if len(closed) != want:
        print(f"{k}: {len(closed)} closed records, want {want}"); bad += 1
    if d["closed"] != (want == 1):
        print(f"{k}: closed_at {d['closed']}, want {want == 1}"); bad += 1
for k in recs:
    if k not in db:
        print(f"{k}: on the topic but not in the database"); bad += 1
print(f"{len(db)} rollups, {sum(len(v) for v in recs.values())} records, {bad} mismatches")
sys.exit(1 if bad else 0)
PY
}
compare || die "usage.rollups does not match the database"
check_eq "rollup rows (acme: tenant + 3 users + 2 keys; beta: tenant + 1 user; day and month)" 16 \
	"$(sql "SELECT count(*) FROM rollups")"
last_record() { # KEY: the last record of that key on the topic
	kcat -b "$METER_KAFKA_BROKERS" -C -t "$METER_TOPIC_ROLLUPS" -o beginning -e -q -f '%k\t%s\n' 2>/dev/null |
		awk -F'\t' -v k="$1" '$1 == k {v = $2} END {print v}'
}
# limits: a subject's limits in the record's period; {} where none apply.
lim_of() { # KEY: limit used remaining of "requests", or {} when there are no limits
	last_record "$1" |
		"$PY" -c 'import json,sys; l=json.load(sys.stdin)["limits"]; print(" ".join([l["requests"][f] for f in ("limit", "used", "remaining")]) if l else "{}")'
}
day=$(TZ=Asia/Kathmandu date -d "$NOW" +%Y-%m-%d) # the events' local day
rec=$(last_record "tenant/acme/month/${day%-*}")
check_eq "acme's month record: the pro plan's monthly requests limit, used, remaining" \
	"100000 60 99940" "$(lim_of "tenant/acme/month/${day%-*}")"
check_eq "user u-0's day record: the users' override" "15 20 0" "$(lim_of "user/acme/u-0/day/$day")"
check_eq "user u-0's month record: no monthly user limit" "{}" \
	"$(lim_of "user/acme/u-0/month/${day%-*}")"
check_eq "key k-0's day record: keys have no limits" "{}" "$(lim_of "key/acme/k-0/day/$day")"
check_eq "beta's user: no override" "{}" "$(lim_of "user/beta/v-1/day/$(date -u -d "$NOW" +%Y-%m-%d)")"
check_eq "acme's month record: price version, zone" "true Asia/Kathmandu" \
	"$("$PY" -c 'import json,sys; r=json.loads(sys.argv[1]); print(str(r["price_version"] > 0).lower(), r["tz"])' "$rec")"

# The periods end: three days later (lateness 1 h), the day rollups close.
meterd_stop a
METER_TEST_CLOCK_OFFSET=259200 meterd_start b
wait_for "the day rollups are closed" 40 \
	"SELECT count(*) = 0 FROM rollups WHERE period = 'day' AND closed_at IS NULL" ||
	die "the day rollups were not closed"
wait_for "the rollup outbox is drained" 30 "SELECT count(*) = 0 FROM rollup_outbox" ||
	die "the rollup outbox was not drained"
compare closed || die "closed records do not match"
test_done
