#!/usr/bin/env bash
# t_bench_floor: `make bench-floor` works on tiny numbers (its own durable
# PostgreSQL): it checks its own batches (every event stored and recorded
# once, every rollup row counted once per batch) and ends with one line of
# JSON whose figures add up. Timings are not asserted.
source "$(dirname "$0")/lib.sh"
out=$(B=$BUILD BATCH=3000 PREFILL=6000 REPS=2 TENANTS=700 bash "$ROOT/tests/bench/floor.sh" 2>&1) ||
	{ echo "$out"; die "tests/bench/floor.sh failed"; }
echo "$out"
check_eq "the summary's figures are positive and add up" ok "$("$PY" -c '
import json, sys
s = json.loads(sys.argv[1])
parts = [s.get(k) for k in ("log_us", "dedupe_us", "upsert_us")]
bad = [] if all(isinstance(v, (int, float)) and v > 0 for v in parts) else ["parts"]
bad += [] if not bad and abs(sum(parts) - s.get("sum_us", 0)) < 0.02 else ["sum_us"]
bad += [] if not bad and abs(s.get("two_core_ceiling_events_per_s", 0) - 2e6 / s["sum_us"]) <= 1 \
    else ["two_core_ceiling_events_per_s"]
bad += [f"{k}={s.get(k)}" for k, v in [("batch", 3000), ("prefill", 6000)] if s.get(k) != v]
print("ok" if not bad else "bad: " + " ".join(bad))' "$(tail -n 1 <<<"$out")")"
check_eq "each batch's figures are printed" 2 "$(grep -Ec '^floor: batch [12]: log [0-9.]+ µs' <<<"$out")"
test_done
