#!/usr/bin/env bash
# tests/bench/floor.sh - what PostgreSQL's own primitives cost per event on
# this machine (`make bench-floor`; call after `make all`).
#
# Every counted event is at least one row of the event log, one insert into
# event_ids (the dedupe) and one change to a rollup row (the bench's
# catch-ups upsert ~1 rollup row per event, each event adding into 6). This
# times each of the three alone, as meterd issues them, in batches of BATCH
# events on tables already holding PREFILL (a catch-up half done), on a
# durable throwaway cluster (dev/env.sh --durable: fsync and
# synchronous_commit on), with nothing else running:
#   log     COPY ... FROM STDIN (FORMAT binary) into the event log, the rows
#           sorted by (tenant, time) as meterd sends them;
#   dedupe  meter_dedupe() (sql/R_batch.sql) on staged (tenant, id) pairs;
#   upsert  INSERT ... ON CONFLICT DO UPDATE adding into existing rollup
#           rows (the statement meter_apply_batch() runs, without the rest).
# It prints microseconds per row (median of REPS batches) and the rate two
# cores could reach if an event cost only those three, before meterd's own
# work, breakdowns, billing records and limits. The last line is JSON.
#
# Environment: BATCH (100000), PREFILL (500000), REPS (5), TENANTS (10000),
# FLOOR_DEBUG (unset; 1 prints each batch's psql timings).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BATCH=${BATCH:-100000}
PREFILL=${PREFILL:-500000}
REPS=${REPS:-5}
TENANTS=${TENANTS:-10000}
B=${B:-build}
[[ $B = /* ]] || B=$ROOT/$B
say() { echo "floor: $*" >&2; }

WORK=$(mktemp -d /tmp/meter-floor.XXXXXX)
chmod 755 "$WORK"
DIR=$WORK/env
cleanup() {
	"$ROOT/dev/env.sh" stop "$DIR" >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT
say "starting a durable PostgreSQL in $DIR"
eval "$("$ROOT/dev/env.sh" start "$DIR" --durable 2>"$WORK/env.err")" ||
	{ cat "$WORK/env.err" >&2; exit 1; }
"$B/meterctl" migrate >/dev/null
q() { psql -XAtq -v ON_ERROR_STOP=1 "$@"; }
q -c "SELECT meter_ensure_event_partition(now())" >/dev/null

# events FROM TO: the log's rows for ids FROM..TO in COPY binary, sorted as
# meterd sends a batch (tenant, then time).
events() {
	q -c "COPY (SELECT now() - (i % 3600) * interval '1 s',
	        't' || lpad((i * 7919 % $TENANTS)::text, 5, '0'), 'f-' || i,
	        'u-' || i % 40, 'k-' || i % 5, 'openai', 'gpt-4o-mini', 'chat', '//bench/gw',
	        'com.example.llm.usage', (50 + i % 4000)::bigint, (i % 50)::bigint,
	        (20 + i % 1500)::bigint, 0::bigint, 1::bigint, NULL::jsonb,
	        (i % 100000 * 1000)::numeric, 'price', 1::bigint, '/v1/chat', 'POST', 200,
	        (100 + i % 5000)::bigint, NULL::text, NULL::text, NULL::jsonb, 'usage.events',
	        (i % 64)::int, i / 64, now()
	      FROM generate_series($1::bigint, $2) i ORDER BY 2, 1) TO STDOUT (FORMAT binary)"
}

# Rollup keys as the bench makes them: a tenant, its users and its keys, by
# day; KEYS of them (the rows the batch changes).
KEYS=$BATCH
rollup_keys="SELECT 't' || lpad((i % $TENANTS)::text, 5, '0') AS tenant_id,
        (ARRAY['tenant', 'user', 'key'])[1 + i / $TENANTS % 3] AS subject_type,
        CASE i / $TENANTS % 3 WHEN 0 THEN '' ELSE 'x-' || i / (3 * $TENANTS) END AS subject_id,
        'day' AS period, current_date AS period_start
      FROM generate_series(0, $KEYS - 1) i"

say "prefilling $PREFILL events and $KEYS rollup rows"
events 1 "$PREFILL" | q -c "COPY events FROM STDIN (FORMAT binary)"
q -c "INSERT INTO event_ids SELECT tenant_id, event_id, occurred_at FROM events" \
  -c "INSERT INTO rollups (tenant_id, subject_type, subject_id, period, period_start)
      SELECT DISTINCT ON (1, 2, 3) * FROM ($rollup_keys) k" \
  -c "VACUUM ANALYZE events, event_ids, rollups" -c "CHECKPOINT"

# ms OUTPUT N: the Nth "Time: X ms" of psql's \timing output.
ms() { grep -o 'Time: [0-9.]*' <<<"$1" | sed -n "${2}p" | cut -d' ' -f2; }

logs=() dedupes=() upserts=()
for rep in $(seq 1 "$REPS"); do
	lo=$((PREFILL + (rep - 1) * BATCH + 1)) hi=$((PREFILL + rep * BATCH))
	events "$lo" "$hi" >"$WORK/batch.copy"
	out=$(q <<EOF
\timing on
\copy events FROM '$WORK/batch.copy' (FORMAT binary)
SELECT meter_stage_prepare();
BEGIN;
INSERT INTO stage_ids SELECT i::int, 't' || lpad((i * 7919 % $TENANTS)::text, 5, '0'),
       'f-' || i, now() FROM generate_series($lo::bigint, $hi) i;
SELECT count(*) FROM meter_dedupe();
COMMIT;
CREATE TEMP TABLE stage_up AS SELECT DISTINCT ON (1, 2, 3) * FROM ($rollup_keys) k;
BEGIN;
INSERT INTO rollups AS r (tenant_id, subject_type, subject_id, period, period_start, events,
                          requests, input_tokens, cached_input_tokens, output_tokens,
                          reasoning_tokens, cost_pusd)
SELECT tenant_id, subject_type, subject_id, period, period_start, 1, 1, 100, 10, 50, 0, 1000
  FROM stage_up ORDER BY 1, 2, 3, 4, 5
ON CONFLICT (tenant_id, subject_type, subject_id, period, period_start) DO UPDATE SET
    events = r.events + EXCLUDED.events, requests = r.requests + EXCLUDED.requests,
    input_tokens = r.input_tokens + EXCLUDED.input_tokens,
    cached_input_tokens = r.cached_input_tokens + EXCLUDED.cached_input_tokens,
    output_tokens = r.output_tokens + EXCLUDED.output_tokens,
    reasoning_tokens = r.reasoning_tokens + EXCLUDED.reasoning_tokens,
    cost_pusd = r.cost_pusd + EXCLUDED.cost_pusd, updated_at = now();
COMMIT;
SELECT count(*) FROM stage_up;
EOF
)
	# Times in order: copy, prepare, begin, stage, dedupe, commit, create,
	# begin, upsert, commit, count. The commits (one WAL flush each) count
	# with their statement.
	[[ -n ${FLOOR_DEBUG:-} ]] && printf "%s\n" "$out" >&2
	rows=$(tail -1 <<<"$(grep -v Time <<<"$out")")
	per() { awk -v a="$1" -v b="${2:-0}" -v n="$3" 'BEGIN {printf "%.2f", (a + b) * 1000 / n}'; }
	logs+=("$(per "$(ms "$out" 1)" 0 "$BATCH")")
	dedupes+=("$(per "$(ms "$out" 5)" "$(ms "$out" 6)" "$BATCH")")
	upserts+=("$(per "$(ms "$out" 9)" "$(ms "$out" 10)" "$rows")")
	say "batch $rep: log ${logs[-1]} µs, dedupe ${dedupes[-1]} µs, upsert ${upserts[-1]} µs per row ($rows rollup rows)"
done
# The batches did what they are timed for: every event stored and recorded
# once, and every rollup row counted once per batch (updated, not added).
want=$((PREFILL + REPS * BATCH))
got=$(q -c "SELECT (SELECT count(*) FROM events) || ' ' || (SELECT count(*) FROM event_ids)
             || ' ' || (SELECT count(*) FROM rollups WHERE events <> $REPS)")
[[ $got == "$want $want 0" ]] ||
	{ say "expected $want events, $want ids and every rollup row at $REPS events; got: $got"; exit 1; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
log=$(printf '%s\n' "${logs[@]}" | median)
dedupe=$(printf '%s\n' "${dedupes[@]}" | median)
upsert=$(printf '%s\n' "${upserts[@]}" | median)
read -r sum ceiling < <(awk -v a="$log" -v b="$dedupe" -v c="$upsert" \
	'BEGIN {s = a + b + c; printf "%.2f %d\n", s, 2 * 1000000 / s}')
echo "PostgreSQL's primitives, µs per row (median of $REPS batches of $BATCH on $PREFILL):"
echo "  event log row (COPY binary)      $log"
echo "  dedupe insert (meter_dedupe)     $dedupe"
echo "  rollup row upsert (existing row) $upsert"
echo "  one of each                      $sum: two cores at most $ceiling events/s, before anything else"
printf '{"log_us":%s,"dedupe_us":%s,"upsert_us":%s,"sum_us":%s,"two_core_ceiling_events_per_s":%s,"batch":%s,"prefill":%s}\n' \
	"$log" "$dedupe" "$upsert" "$sum" "$ceiling" "$BATCH" "$PREFILL"
