#!/usr/bin/env bash
# t_bench_smoke: `make bench` works end to end on tiny numbers (its own
# durable PostgreSQL and mock cluster): every phase runs, and the last line
# is the JSON summary with positive figures and no event missing; the
# latency phase leaves its warm-up out (1 s of 6 here, the probes start
# after it) and the flags still arrive; the worker's RSS (with its maximum and
# trend) and C heap curves and the CPU shares under load are printed, and the
# generator's own part of the latency (produce -> acknowledged). Timings are
# not asserted.
source "$(dirname "$0")/lib.sh"
out=$(REPS=1 CATCHUP_EVENTS=20000 LIVE_EVENTS=10000 LATENCY_SECONDS=6 WARMUP_SECONDS=1 \
	NAIVE_EVENTS=2000 PROBES=10 TENANTS=500 PARTS=8 bash "$ROOT/tests/bench/run.sh" 2>"$ROOT/.bench-smoke.err") ||
	{ cat "$ROOT/.bench-smoke.err"; rm -f "$ROOT/.bench-smoke.err"; die "tests/bench/run.sh failed"; }
progress=$(cat "$ROOT/.bench-smoke.err")
rm -f "$ROOT/.bench-smoke.err"
echo "$out"
last=$(tail -n 1 <<<"$out")
check_eq "the summary's figures are positive numbers" ok "$("$PY" -c '
import json, sys
s = json.loads(sys.argv[1])
keys = ["meterd_events_per_s", "live_events_per_s", "naive_events_per_s", "ratio",
        "commit_p99_ms", "flag_p99_ms", "rss_peak_mb"]
bad = [k for k in keys if not isinstance(s.get(k), (int, float)) or s[k] <= 0]
bad += [k for k in ["catchup_events_missing", "latency_events_missing"] if s.get(k) != 0]
bad += [f"{k}={s.get(k)}" for k, v in [("warmup_s", 1), ("fetch_wait_ms", 10)] if s.get(k) != v]
bad += [] if isinstance(s.get("latency_rate"), int) and s["latency_rate"] > 0 else ["latency_rate"]
bad += [] if isinstance(s.get("heap_load_end_mb"), int) and s["heap_load_end_mb"] >= 0 else ["heap_load_end_mb"]
bad += [] if s.get("gen_linger_ms") == 20 else ["gen_linger_ms"]
bad += [] if isinstance(s.get("rss_load_max_mb"), int) \
    and s["rss_load_max_mb"] >= max(s.get("rss_load_start_mb", 0), s.get("rss_load_end_mb", 0)) \
    else ["rss_load_max_mb"]
bad += [] if isinstance(s.get("rss_load_trend_mb"), int) else ["rss_load_trend_mb"]
bad += [k for k in ["gen_ack_p50_ms", "gen_ack_p99_ms"]
        if not isinstance(s.get(k), int) or not 0 <= s[k] <= s.get("commit_p99_ms", 0) + 60000]
bad += [] if s.get("gen_ack_p50_ms", 1) <= s.get("gen_ack_p99_ms", 0) else ["gen_ack_p50_ms > p99"]
cpu = s.get("load_cpu_pct")
bad += [] if isinstance(cpu, dict) and sorted(cpu) == ["broker", "generator", "pg", "worker"] \
    and all(isinstance(v, int) and v >= 0 for v in cpu.values()) else ["load_cpu_pct"]
print("ok" if not bad else "bad: " + " ".join(bad))' "$last")"
check "the worker's RSS curve under load is printed (time:MB points)" \
	grep -Eq 'worker RSS \(MB\) under load, by time: 0s:[0-9]+ .*end:[0-9]+$' <<<"$progress"
check "and its C heap's (time:allocated/free points, from /metrics)" \
	grep -Eq 'worker C heap \(MB allocated/free\) by time: 0s:[0-9]+/[0-9]+ .*end:[0-9]+/[0-9]+$' <<<"$progress"
check "the CPU shares under load are printed" \
	grep -Eq 'CPU, % of one core, over the phase: worker [0-9]+% pg [0-9]+% generator [0-9]+% broker [0-9]+%$' <<<"$progress"
test_done
