#!/usr/bin/env bash
# tests/bench/run.sh - the benchmark behind `make bench` (call after `make all`).
#
# On one machine, against a durable throwaway PostgreSQL (fsync and
# synchronous_commit on) and the mock Kafka cluster (dev/env.sh):
#   1. meterd catch-up: drain a pre-filled backlog of CATCHUP_EVENTS events
#      (REPS runs, median reported), with CPU per 1,000 events of the
#      worker and of the whole PostgreSQL server (postmaster, backends,
#      background and exited processes), and peak RSS;
#   2. meterd live: the generator produces LIVE_EVENTS as fast as it can while
#      meterd consumes (same machine);
#   3. latency at half of the catch-up rate (or LATENCY_RATE events/s) for
#      LATENCY_SECONDS: produce ->
#      rollup committed (from commit timestamps) and crossing -> flag on
#      usage.limits (PROBES tenants crossing their daily limit);
#   4. the naive design (tests/bench/naive.c: one round trip per event) on a
#      backlog of NAIVE_EVENTS from the same generator.
# Rates are counted from the database: events stored / (last commit - the
# moment meterd had its partitions, from its log), so the time to fill the
# first batches counts. The last line is one line of JSON for scripts.
#
# Environment: REPS (3), CATCHUP_EVENTS (1000000), LIVE_EVENTS (300000),
# LATENCY_SECONDS (30; 600 for the 10-minute RSS check), LATENCY_RATE (half
# the catch-up rate), NAIVE_EVENTS (100000), TENANTS (10000), PARTS (128),
# LATENCY_PARTS (8), PROBES (100), BATCH_MAX (meterd's default when unset),
# FETCH_WAIT_MS (10), WARMUP_SECONDS (5), GEN_LINGER_MS (20), BENCH_KEEP
# (unset; 1 keeps the work directory with meterd's log of each phase).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REPS=${REPS:-3}
CATCHUP_EVENTS=${CATCHUP_EVENTS:-1000000}
LIVE_EVENTS=${LIVE_EVENTS:-300000}
LATENCY_SECONDS=${LATENCY_SECONDS:-30}
NAIVE_EVENTS=${NAIVE_EVENTS:-100000}
TENANTS=${TENANTS:-10000}
PARTS=${PARTS:-128} # the mock broker keeps ~5 MB per partition
# The latency phase's topic: usage.events' partitions as deployed (kafka-init
# in docker-compose.yml). Its load is consumed as it comes, so the mock's
# ~5 MB per partition is not a limit there, while each partition costs the
# generator and the broker CPU on this machine: at 6,400 events/s, alone,
# they used a whole core on 128 partitions, a quarter of one on 8.
LATENCY_PARTS=${LATENCY_PARTS:-8}
PROBES=${PROBES:-100}
# meterd's fetch.wait.max.ms here. The mock broker holds a fetch that finds no
# new data for the whole wait (meterd's default 50 ms), even when data arrives
# meanwhile; a Kafka broker answers as soon as it does. Under a steady load
# many fetches find nothing new, so with 50 ms the latency phase measured the
# mock's wait more than meterd (README: Performance).
FETCH_WAIT_MS=${FETCH_WAIT_MS:-10}
# The latency phase's first seconds are left out of its figures (the
# commits of the events produced then, and the probes' crossings): the
# generator's producer is still connecting to the brokers and getting its
# producer id, and holds its first events for up to a second. At most a
# sixth of the phase (none in the 5-s smoke run).
WARMUP_SECONDS=${WARMUP_SECONDS:-5}
# The latency phase generator's linger.ms: the mock broker walks a
# partition's message sets from the oldest to find each fetch's offset, so
# one message per set (5 ms) made its CPU grow for minutes on a steady load
# (tests/bench/loadgen.c). The generator's own part of produce -> committed
# (produce -> acknowledged by the broker) is reported next to it.
GEN_LINGER_MS=${GEN_LINGER_MS:-20}
B=${B:-build}
LOADGEN=$ROOT/$B/bench/loadgen
say() { echo "bench: $*" >&2; }

WORK=$(mktemp -d /tmp/meter-bench.XXXXXX)
chmod 755 "$WORK"
DIR=$WORK/env # dev/env.sh's directory; logs go to $WORK
MPID=
cleanup() {
	[[ -n $MPID ]] && kill -TERM "$MPID" 2>/dev/null && wait "$MPID" 2>/dev/null
	"$ROOT/dev/env.sh" stop "$DIR" >/dev/null 2>&1 || true
	if [[ -n ${BENCH_KEEP:-} ]]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
say "starting a durable PostgreSQL and the mock Kafka cluster in $DIR"
eval "$("$ROOT/dev/env.sh" start "$DIR" --durable 2>"$WORK/env.err")" ||
	{ cat "$WORK/env.err" >&2; exit 1; }
N=0

# fresh_db NAME: a database with the schema and the bench tenants: TENANTS
# tenants (plans starter/pro/enterprise, five zones) and PROBES probe
# tenants on the free plan (50 requests a day).
fresh_db() {
	local db=$1
	psql -XAtq -c "CREATE DATABASE $db"
	local url="postgresql://$PGUSER@$PGHOST:$PGPORT/$db"
	METER_DATABASE_URL=$url "$ROOT/$B/meterctl" migrate >/dev/null
	psql -XAtq "$url" -c "
	  INSERT INTO tenants (id, plan_id, tz)
	  SELECT 't' || lpad(i::text, 5, '0'),
	         (ARRAY['starter','pro','pro','enterprise'])[1 + i % 4],
	         (ARRAY['UTC','America/New_York','Europe/Madrid','Asia/Kathmandu',
	                'America/Argentina/Buenos_Aires'])[1 + i % 5]
	    FROM generate_series(0, $TENANTS - 1) i;
	  INSERT INTO tenants (id, plan_id) SELECT 'probe-' || i, 'free' FROM generate_series(0, $PROBES - 1) i;"
	echo "$url"
}

topic() { # NAME [PARTITIONS]
	"$ROOT/dev/env.sh" kafka-ctl "$DIR" create-topic "$1" "${2:-$PARTS}" >/dev/null
}

# (The environment's session timeout, 6 s, is dev/env.sh's: see there.)
start_meterd() { # URL TOPIC
	env METER_DATABASE_URL="$1" METER_TOPIC_EVENTS="$2" METER_GROUP_ID="$2" \
		METER_KAFKA_PROP_fetch_wait_max_ms="$FETCH_WAIT_MS" METER_HTTP_ADDR=127.0.0.1:0 \
		${BATCH_MAX:+METER_BATCH_MAX=$BATCH_MAX} \
		"$ROOT/$B/meterd" >"$WORK/$2.log" 2>&1 &
	MPID=$!
}

stop_meterd() {
	kill -TERM "$MPID" 2>/dev/null || true
	wait "$MPID" 2>/dev/null || true
	MPID=
}

wait_offsets() { # URL WANT
	until [[ $(psql -XAtq "$1" -c "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets") -ge $2 ]]; do
		kill -0 "$MPID" 2>/dev/null || { say "meterd died"; tail -5 "$WORK"/*.log >&2; exit 1; }
		sleep 0.2
	done
}

# rate_of URL LOG: counted events/s, events / (last commit - when meterd
# logged its first assignment). The group join before it (~3 s on the mock
# broker) is left out; the first batches' filling is not.
rate_of() {
	local t0
	t0=$(grep -m1 -E 'assigned [0-9]+ partition' "$2" | cut -d' ' -f1)
	psql -XAtq "$1" -c "SELECT round(count(*) / greatest(extract(epoch FROM
	    max(pg_xact_commit_timestamp(xmin)) - '$t0'::timestamptz), 0.001)) FROM events"
}

json_field() { # JSON NAME
	sed -n "s/.*\"$2\":\([-0-9.]*\).*/\1/p" <<<"$1"
}

# missing PHASE COUNTED GENERATOR_JSON: how many of the unique valid events
# the generator sent are not among the COUNTED ones (said when any): the
# mock broker keeps ~5 MB per partition and drops what meterd has not read.
missing() {
	local valid
	valid=$(json_field "$3" valid)
	((valid == $2)) || say "$1: $2 counted but $valid unique valid events were sent:" \
		"$((valid - $2)) missing (did meterd fall ~5 MB per partition behind the broker?)"
	echo $((valid - $2))
}

# per_1000 TICKS EVENTS: CPU milliseconds per 1,000 events.
per_1000() {
	awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v n="$2" 'BEGIN {printf "%.1f", t * 1000 / hz / n * 1000}'
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# ticks PID: CPU ticks (user + system) of a live process so far, 0 if gone.
ticks() {
	local f
	{ read -r -a f <"/proc/$1/stat"; } 2>/dev/null || { echo 0; return; }
	echo $((f[13] + f[14]))
}

# metric NAME: a value from meterd's /metrics, in MB (empty if unavailable).
metric_mb() {
	local text
	text=$(curl -s -m 2 "http://$MADDR/metrics" 2>/dev/null) || return 0
	awk -v m="$1" '$1 == m {printf "%d", $2 / 1048576}' <<<"$text"
}

# CPU ticks of the whole PostgreSQL server so far: the postmaster, its live
# processes, and (cutime, cstime) the processes that have exited.
pg_ticks() {
	local pm t=0 f
	pm=$(head -1 "$DIR/pg/postmaster.pid")
	read -r -a f <"/proc/$pm/stat"
	t=$((f[13] + f[14] + f[15] + f[16]))
	for c in $(pgrep -P "$pm"); do
		read -r -a f <"/proc/$c/stat" 2>/dev/null || continue
		t=$((t + f[13] + f[14]))
	done
	echo "$t"
}

# 1. catch-up
rates=() cpus=() pgcpus=() rsss=()
lost=0
for rep in $(seq 1 "$REPS"); do
	N=$((N + 1)); name=bench_c$N
	url=$(fresh_db "$name"); topic "$name"
	say "catch-up $rep/$REPS: producing $CATCHUP_EVENTS events"
	out=$("$LOADGEN" --brokers "$METER_KAFKA_BROKERS" --topic "$name" --events "$CATCHUP_EVENTS" \
		--tenants "$TENANTS" --seed "$rep" --id-prefix "$name")
	total=$(json_field "$out" sent)
	pg0=$(pg_ticks)
	start_meterd "$url" "$name"
	wait_offsets "$url" "$total"
	read -r _ _ _ _ _ _ _ _ _ _ _ _ _ ut st _ <"/proc/$MPID/stat"
	pg1=$(pg_ticks)
	hwm=$(awk '/VmHWM/ {print $2}' "/proc/$MPID/status")
	stop_meterd
	r=$(rate_of "$url" "$WORK/$name.log")
	counted=$(psql -XAtq "$url" -c "SELECT count(*) FROM events")
	lost=$((lost + $(missing "catch-up $rep" "$counted" "$out")))
	cpu=$(per_1000 $((ut + st)) "$counted")
	pgcpu=$(per_1000 $((pg1 - pg0)) "$counted")
	say "catch-up $rep: $counted counted at $r events/s; CPU per 1,000 events: meterd ${cpu} ms, PostgreSQL ${pgcpu} ms; peak RSS $((hwm / 1024)) MB"
	rates+=("$r") cpus+=("$cpu") pgcpus+=("$pgcpu") rsss+=("$((hwm / 1024))")
	psql -XAtq -c "DROP DATABASE $name"
done
catchup=$(printf '%s\n' "${rates[@]}" | median)
cpu=$(printf '%s\n' "${cpus[@]}" | median)
pgcpu=$(printf '%s\n' "${pgcpus[@]}" | median)
rss=$(printf '%s\n' "${rsss[@]}" | sort -n | tail -1)

# 2. live, as fast as the generator goes
N=$((N + 1)); name=bench_l$N
url=$(fresh_db "$name"); topic "$name"
start_meterd "$url" "$name"
until grep -q "assigned" "$WORK/$name.log"; do sleep 0.2; done
say "live: producing $LIVE_EVENTS events while meterd consumes"
out=$("$LOADGEN" --brokers "$METER_KAFKA_BROKERS" --topic "$name" --events "$LIVE_EVENTS" \
	--tenants "$TENANTS" --seed 11 --id-prefix "$name")
wait_offsets "$url" "$(json_field "$out" sent)"
stop_meterd
live=$(rate_of "$url" "$WORK/$name.log")
say "live: $live events/s"
psql -XAtq -c "DROP DATABASE $name"

# 3. latency at half the catch-up rate
half=${LATENCY_RATE:-$((catchup / 2))}
warm=$((WARMUP_SECONDS < LATENCY_SECONDS / 6 ? WARMUP_SECONDS : LATENCY_SECONDS / 6))
N=$((N + 1)); name=bench_h$N
url=$(fresh_db "$name"); topic "$name" "$LATENCY_PARTS"
"$ROOT/dev/env.sh" kafka-ctl "$DIR" create-topic usage.limits 8 >/dev/null 2>&1 || true
start_meterd "$url" "$name"
until grep -q "assigned" "$WORK/$name.log"; do sleep 0.2; done
say "latency: $half events/s for $LATENCY_SECONDS s, $PROBES tenants crossing their limit"
"$LOADGEN" --brokers "$METER_KAFKA_BROKERS" --topic "$name" \
	--events $((half * LATENCY_SECONDS)) --rate "$half" --tenants "$TENANTS" --seed 12 \
	--id-prefix "$name" --probes "$PROBES" --probe-limit 50 --flag-topic usage.limits \
	--linger-ms "$GEN_LINGER_MS" \
	--probe-after $((half * warm)) \
	>"$WORK/latency.json" &
GPID=$!
# Every 2 s while the load runs: the worker's RSS and its C heap (allocated,
# and free but kept: meter_heap_* on /metrics), and the CPU ticks so far of
# the worker, PostgreSQL, the generator and the mock broker (who takes the
# two cores over a long run).
MADDR=$(grep -oE 'serving http://[^ ]+' "$WORK/$name.log" | head -1 | sed 's,^serving http://,,')
KPID=$(cat "$DIR/kafka.pid")
rss_samples=() heap_samples=() free_samples=() cpu_samples=()
while kill -0 "$GPID" 2>/dev/null; do
	rss_samples+=("$(awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$MPID/status")")
	heap_samples+=("$(metric_mb meter_heap_in_use_bytes)")
	free_samples+=("$(metric_mb meter_heap_free_bytes)")
	cpu_samples+=("$(ticks "$MPID") $(pg_ticks) $(ticks "$GPID") $(ticks "$KPID") $EPOCHREALTIME")
	sleep 2
done
wait "$GPID"
out=$(cat "$WORK/latency.json")
wait_offsets "$url" "$(json_field "$out" sent)"
stop_meterd
lost_latency=$(missing latency "$(psql -XAtq "$url" -c "SELECT count(*) FROM events")" "$out")
n_rss=${#rss_samples[@]}
rss_first=${rss_samples[$((n_rss > 5 ? 5 : 0))]} # after ~10 s of warm-up
rss_last=${rss_samples[$((n_rss - 1))]}
rss_max=$(printf '%s\n' "${rss_samples[@]}" | sort -n | tail -1)
say "worker RSS under load: ${rss_first} MB after 10 s, ${rss_last} MB at the end, ${rss_max} MB at most"
# Flat or not, robust to single samples: the median of the last third of the
# samples (those after the first 10 s) less the median of the first third.
rss_trend=0
if ((n_rss >= 8)); then
	third=$(((n_rss - 5) / 3))
	rss_trend=$(($(printf '%s\n' "${rss_samples[@]: -$third}" | median) -
		$(printf '%s\n' "${rss_samples[@]:5:$third}" | median)))
fi
say "worker RSS trend under load: ${rss_trend} MB (median of the last third of the samples less the first third's)"
# The curve, in about a dozen points (a sample every 2 s): flat or not.
step=$((LATENCY_SECONDS / 12 / 2)); ((step >= 5)) || step=5
# at I: seconds from the first sample to sample I (a round of samples takes
# a little over 2 s).
at() { awk -v a="${cpu_samples[0]##* }" -v b="${cpu_samples[$1]##* }" 'BEGIN {printf "%d", b - a}'; }
series= heaps=
for ((i = 0; i < n_rss; i += step)); do
	series+="$(at "$i")s:${rss_samples[$i]} "
	heaps+="$(at "$i")s:${heap_samples[$i]:-?}/${free_samples[$i]:-?} "
done
say "worker RSS (MB) under load, by time: ${series}end:${rss_last}"
say "worker C heap (MB allocated/free) by time: ${heaps}end:${heap_samples[$((n_rss - 1))]:-?}/${free_samples[$((n_rss - 1))]:-?}"
heap_first=${heap_samples[$((n_rss > 5 ? 5 : 0))]:-null} heap_last=${heap_samples[$((n_rss - 1))]:-null}
# Share of one core each took, per interval of the same curve, and over the
# whole phase: worker, PostgreSQL, generator, broker.
hz=$(getconf CLK_TCK)
cpu_share() { # FROM TO: "worker W% pg P% generator G% broker B%"
	local a b
	read -r -a a <<<"${cpu_samples[$1]}"
	read -r -a b <<<"${cpu_samples[$2]}"
	awk -v t0="${a[4]}" -v t1="${b[4]}" -v hz="$hz" -v w=$((b[0] - a[0])) \
		-v p=$((b[1] - a[1])) -v g=$((b[2] - a[2])) -v k=$((b[3] - a[3])) 'BEGIN {
		f = 100 / hz / (t1 - t0)
		printf "worker %d%% pg %d%% generator %d%% broker %d%%", w * f, p * f, g * f, k * f }'
}
if ((n_rss > 2)); then
	for ((i = 0; i + step < n_rss; i += step)); do
		say "CPU, % of one core, $(at "$i")-$(at $((i + step))) s: $(cpu_share "$i" $((i + step)))"
	done
	# The generator's last sample may be 0 (it exited): the phase's share
	# ends at the one before.
	load_cpu=$(cpu_share 0 $((n_rss - 2)))
	say "CPU, % of one core, over the phase: $load_cpu"
else
	load_cpu="worker 0% pg 0% generator 0% broker 0%"
fi
read -r _ cw _ cp _ cg _ cb <<<"${load_cpu//%/}"
read -r c50 c99 < <(psql -XAtq -F ' ' "$url" -c "
  SELECT round(percentile_disc(0.5) WITHIN GROUP (ORDER BY l)), round(percentile_disc(0.99) WITHIN GROUP (ORDER BY l))
    FROM (SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin) - occurred_at) * 1000 AS l FROM events
           WHERE occurred_at >= (SELECT min(occurred_at) FROM events) + $warm * interval '1 second') x")
f50=$(json_field "$out" flag_p50_ms) f99=$(json_field "$out" flag_p99_ms)
a50=$(json_field "$out" ack_p50_ms) a99=$(json_field "$out" ack_p99_ms)
say "latency: produce -> committed p50 $c50 ms, p99 $c99 ms; crossing -> flag p50 $f50 ms, p99 $f99 ms ($(json_field "$out" flags) flags, $(json_field "$out" flags_missing) missing); the generator's produce -> acknowledged p50 $a50 ms, p99 $a99 ms (linger.ms $GEN_LINGER_MS)"
# The p99 by time, on the same curve's intervals (by when each event was
# produced): a latency that grows over a long run shows here next to the
# CPU shares above (the mock broker's grows while its log fills).
span=$((step * 2))
lat_series=$(psql -XAtq "$url" -c "
  SELECT string_agg(b * $span || 's:' || p99, ' ' ORDER BY b) FROM (
    SELECT b, round(percentile_disc(0.99) WITHIN GROUP (ORDER BY l)) AS p99 FROM (
      SELECT floor(extract(epoch FROM occurred_at - t0) / $span)::int AS b,
             extract(epoch FROM pg_xact_commit_timestamp(xmin) - occurred_at) * 1000 AS l
        FROM events, (SELECT min(occurred_at) AS t0 FROM events) m) x
     GROUP BY b) y")
say "produce -> committed p99 (ms) by time produced (the first interval holds the warm-up left out above): $lat_series"
psql -XAtq -c "DROP DATABASE $name"

# 4. the naive design
N=$((N + 1)); name=bench_n$N
psql -XAtq -c "CREATE DATABASE $name"
url="postgresql://$PGUSER@$PGHOST:$PGPORT/$name"
psql -XAtq "$url" -f "$ROOT/tests/bench/naive.sql" >/dev/null
psql -XAtq "$url" -c "INSERT INTO naive_tenants (id, plan_id)
  SELECT 't' || lpad(i::text, 5, '0'), (ARRAY['starter','pro','pro','enterprise'])[1 + i % 4]
    FROM generate_series(0, $TENANTS - 1) i"
topic "$name"
out=$("$LOADGEN" --brokers "$METER_KAFKA_BROKERS" --topic "$name" --events "$NAIVE_EVENTS" \
	--tenants "$TENANTS" --seed 1 --id-prefix "$name")
want=$(( $(json_field "$out" valid) + $(json_field "$out" duplicates) ))
say "naive: draining $NAIVE_EVENTS events, one round trip each"
"$ROOT/$B/bench/naive" --brokers "$METER_KAFKA_BROKERS" --topic "$name" --group "$name" \
	--database "$url" --expect "$(json_field "$out" sent)" >/dev/null &
NPID=$!
t0=
while :; do
	n=$(psql -XAtq "$url" -c "SELECT coalesce(sum(requests), 0) FROM naive_usage")
	now=$(date +%s.%N)
	[[ -z $t0 && $n -gt 0 ]] && t0=$now n0=$n
	[[ $n -ge $want ]] && break
	kill -0 $NPID 2>/dev/null || break
	sleep 0.2
done
wait $NPID || true
naive=$(awk -v n="$((n - n0))" -v a="$t0" -v b="$now" 'BEGIN {printf "%d", n / (b - a)}')
say "naive: $naive events/s"

ratio=$(awk -v a="$catchup" -v b="$naive" 'BEGIN {printf "%.1f", a / b}')
cat <<EOF

meterd catch-up   $catchup events/s (median of $REPS: ${rates[*]}; backlog $CATCHUP_EVENTS events, $PARTS partitions)
meterd live       $live events/s (generator, broker and meterd on one machine)
naive design      $naive events/s (one round trip per event)
ratio             $ratio x
produce->commit   p50 $c50 ms, p99 $c99 ms at $half events/s ($LATENCY_PARTS partitions, fetch.wait.max.ms $FETCH_WAIT_MS, first $warm s left out)
crossing->flag    p50 $f50 ms, p99 $f99 ms
generator's part  produce->acknowledged p50 $a50 ms, p99 $a99 ms (its linger.ms $GEN_LINGER_MS; included in both above)
worker CPU        $cpu ms per 1,000 events (catch-up); PostgreSQL $pgcpu ms
peak RSS          $rss MB (catch-up); under load ${rss_first} MB after 10 s -> ${rss_last} MB after ${LATENCY_SECONDS} s (C heap allocated ${heap_first} -> ${heap_last} MB)
CPU under load    % of one core: $load_cpu
machine           $(nproc) cores, $(awk '/MemTotal/ {printf "%d GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
EOF
echo "{\"meterd_events_per_s\":$catchup,\"live_events_per_s\":$live,\"naive_events_per_s\":$naive,\"ratio\":$ratio,\"commit_p50_ms\":$c50,\"commit_p99_ms\":$c99,\"flag_p50_ms\":$f50,\"flag_p99_ms\":$f99,\"cpu_ms_per_1000\":$cpu,\"pg_cpu_ms_per_1000\":$pgcpu,\"rss_peak_mb\":$rss,\"rss_load_start_mb\":$rss_first,\"rss_load_end_mb\":$rss_last,\"rss_load_max_mb\":$rss_max,\"rss_load_trend_mb\":$rss_trend,\"catchup_events_missing\":$lost,\"latency_events_missing\":$lost_latency,\"latency_rate\":$half,\"fetch_wait_ms\":$FETCH_WAIT_MS,\"warmup_s\":$warm,\"gen_linger_ms\":$GEN_LINGER_MS,\"gen_ack_p50_ms\":$a50,\"gen_ack_p99_ms\":$a99,\"heap_load_start_mb\":$heap_first,\"heap_load_end_mb\":$heap_last,\"load_cpu_pct\":{\"worker\":$cw,\"pg\":$cp,\"generator\":$cg,\"broker\":$cb}}"
