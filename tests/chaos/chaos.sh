#!/usr/bin/env bash
# tests/chaos/chaos.sh - the chaos suite (`make chaos`; a short run is
# tests/integration/t_chaos.sh in `make test`).
#
#   bash tests/chaos/chaos.sh [--seed N] [--events N] [--duration SECONDS]
#                             [--tenants N] [--partitions N]
#
# A seeded stream of usage events (tests/chaos/chaos_gen: duplicates, some
# to another partition; late and out-of-order events; events on day, month
# and year boundaries and DST changes in six time zones; every kind of bad
# event; tenants crossing their limits) is produced while a nemesis driven
# by the same seed kills meterd (kill -9, and failpoints just before and
# after the commit, after a crossing's commit and after a flag's produce),
# freezes it (SIGSTOP) past its session timeout,
# restarts and stops PostgreSQL and cuts its connections, takes Kafka
# brokers down and injects request errors, has a second and third meterd
# join and leave the group, kills meter-notifier, makes the webhook receiver
# fail, slow or down, and stops the SMTP server. Then everything heals and
# the judge (tests/chaos/check.py) compares, through stable contracts only
# (the rollups and rejected_events tables, the limits and dead-letter
# topics, what the receivers got), with the oracle computed from the stream
# alone. The first line is the seed: the same seed gives the same stream,
# the same tenants and the same fault schedule (timings of the machine
# aside). The last line is a JSON summary; any mismatch exits 1.
#
# Always a private environment (dev/env.sh under /tmp), never the one
# tests/run.sh shares: the nemesis restarts its PostgreSQL and takes its
# brokers down. Work files and logs: the directory printed at the start
# (kept when the run fails).
set -euo pipefail

SEED=
EVENTS=6000
DURATION=60
TENANTS=12
PARTITIONS=8
while [[ $# -gt 0 ]]; do
	case $1 in
	--seed) SEED=$2; shift ;;
	--events) EVENTS=$2; shift ;;
	--duration) DURATION=$2; shift ;;
	--tenants) TENANTS=$2; shift ;;
	--partitions) PARTITIONS=$2; shift ;;
	-h | --help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "chaos.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done
[[ -n $SEED ]] || SEED=$(((RANDOM << 30) | (RANDOM << 15) | RANDOM))
[[ $SEED =~ ^[0-9]+$ ]] || { echo "chaos.sh: --seed wants a number" >&2; exit 2; }
echo "seed $SEED"

# lib.sh starts a private environment when METER_ENV_DIR is unset.
unset METER_ENV_DIR
# shellcheck source=../integration/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../integration/lib.sh"
CHAOS_GEN=$BUILD/tools/chaos_gen
CHECK=$ROOT/tests/chaos/check.py
[[ -x $CHAOS_GEN ]] || die "$CHAOS_GEN is missing; run 'make' first"
T0=$SECONDS
SUMMARY=$(mktemp /tmp/meter-chaos-summary.XXXXXX)
HOOK_PID= SINK_PID= GEN_PID=

# On exit: lib.sh's cleanup (our processes, the logs on failure, the
# environment), then the JSON summary as the very last line, or one that
# says the run was aborted.
chaos_exit() {
	local rc=$? pid
	trap - EXIT
	for pid in $HOOK_PID $SINK_PID $GEN_PID; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	( (exit "$rc"); on_exit ) || true
	if [[ -s $SUMMARY ]]; then
		cat "$SUMMARY"
	else
		printf '{"seed": %s, "error": "the run was aborted (see above)", "mismatches": -1}\n' "$SEED"
		((rc != 0)) || rc=1
	fi
	rm -f "$SUMMARY"
	exit "$rc"
}
trap chaos_exit EXIT

test_init --partitions "$PARTITIONS"
say "chaos: seed $SEED, $EVENTS events, ${DURATION}s, $TENANTS tenants, $PARTITIONS partitions; work dir $T_DIR"
limits_init # test_init made $METER_TOPIC_ROLLUPS too
# The group coordinator stays on broker 1, which the nemesis never takes
# down (see tests/chaos/nemesis.c: the mock cluster cannot survive it).
"$ROOT/dev/env.sh" kafka-ctl "$METER_ENV_DIR" coordinator group "$T_GROUP" 1 ||
	die "cannot pin the group coordinator"
# The mock cluster is a test peer: if it crashes, say so (a harness
# failure, not a finding about meterd) rather than wait for timeouts.
mock_alive() {
	local pid
	pid=$(cat "$METER_ENV_DIR/kafka.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null
}
mock_check() {
	mock_alive && return 0
	say "the mock Kafka cluster (build/mock_kafka, librdkafka's rdkafka_mock) died: $(tail -n 1 "$METER_ENV_DIR/kafka.log")"
	say "FATAL: test environment failure (not a finding about meterd); rerun with the same seed"
	exit 75 # EX_TEMPFAIL: t_chaos runs once more
}
ORACLE=$T_DIR/oracle
ACTUAL=$T_DIR/actual
mkdir -p "$ORACLE" "$ACTUAL"

# ---- peers: webhook receiver (mode file for the nemesis) and SMTP sink ------
SECRET=whsec_Y2hhb3MtY2hhb3MtY2hhb3MtY2hhb3MtMzI=
printf '%s\n' "$SECRET" >"$T_DIR/secret"
MODE=$T_DIR/webhook.mode
: >"$MODE"
start_receiver hooks --secret-file "$T_DIR/secret" --mode-file "$MODE"
HOOK_PID=$PEER_PID
start_sink mail
SINK_PID=$PEER_PID

# ---- the plan: oracle and fault schedule ------------------------------------
LATENESS=$((100 * 86400))
GEN_OPTS=(--seed "$SEED" --events "$EVENTS" --tenants "$TENANTS" --partitions "$PARTITIONS"
	--duration "$DURATION" --lateness "$LATENESS" --max-event-bytes 16384 --prefix "$T_DB"
	--webhook-url "http://127.0.0.1:$RPORT/hook" --email 1)
"$CHAOS_GEN" plan "${GEN_OPTS[@]}" --out "$ORACLE" >/dev/null || die "chaos_gen plan failed"
# The oracle's view of every message (valid with these fields, or bad for
# this reason) must be the worker's parser's, or the judge would be wrong.
"$CHAOS_GEN" selfcheck "${GEN_OPTS[@]}" >"$T_DIR/selfcheck.log" 2>&1 ||
	{ cat "$T_DIR/selfcheck.log"; die "chaos_gen selfcheck: the event parser (schema/event.c, event_fast.c) disagrees with the oracle"; }
fig() { awk -F'\t' -v k="$1" '$1 == k {print $2}' "$ORACLE/figures.tsv"; }
ANCHOR_S=$(fig anchor_s)
say "oracle: anchor $(fig anchor), $(fig valid) valid, $(fig duplicates) duplicates ($(fig cross_partition_duplicates) to another partition), $(fig bad) bad; expects $(fig flags_expected) crossings and $(fig notifications_expected) notifications"

# ---- tenants and limits (meterctl), the simulated clock ---------------------
# Every process runs at the anchor: 2 January, just after the year, month
# and day boundaries of every zone (see tests/chaos/world.c).
export METER_TEST_CLOCK_OFFSET=$((ANCHOR_S - $(date +%s)))
export METER_MAX_LATENESS=${LATENESS}s METER_MAX_EVENT_BYTES=16384
while IFS=$'\t' read -r what id a b c d e; do
	case $what in
	tenant)
		args=(tenant add "$id" --plan "$a" --tz "$b")
		[[ $c != - ]] && args+=(--webhook "$c" --webhook-secret "$SECRET")
		[[ $d != - ]] && args+=(--email "$d")
		[[ $e != - ]] && args+=(--thresholds "$e")
		ctl "${args[@]}" >>"$T_DIR/setup.log" 2>&1 || die "meterctl ${args[*]} failed (see $T_DIR/setup.log)" ;;
	limit)
		args=(limit set "$id" "$a" "$b" "$c")
		[[ $d != - ]] && args+=("$d")
		ctl "${args[@]}" >>"$T_DIR/setup.log" 2>&1 || die "meterctl ${args[*]} failed (see $T_DIR/setup.log)" ;;
	esac
done <"$ORACLE/setup.tsv"
say "set up $(grep -c '^tenant' "$ORACLE/setup.tsv") tenants and $(grep -c '^limit' "$ORACLE/setup.tsv") limit overrides with meterctl"

# ---- processes and their supervisor -------------------------------------------
# A killed member leaves the group when its session times out: shorter
# than lib.sh's 6 s, so that the run spends its time working.
export SESSION_TIMEOUT_MS=4000
export METER_NOTIFY_RETRY_SCHEDULE=1s,2s,3s,5s,5s,8s,10s,10s,15s,15s,15s,15s,15s,15s,15s,15s,20s,20s,20s,20s
export METER_WEBHOOK_TIMEOUT=3s METER_SMTP_TIMEOUT=3s METER_NOTIFY_POLL=1s
NOTIFIER_ARGS=(--webhook-allow-private=1 --smtp-url "smtp://127.0.0.1:$SPORT"
	--smtp-from "meterd chaos <meter@chaos.example>")
declare -A WANT=() RESTART_AT=() ARMED=() EXPECT_EXIT=() FROZEN=()
KILLS=0 FP_KILLS=0 PG_RESTARTS=0 CONN_CUTS=0 REBALANCES=0 JOINS=0 BROKER_OUTAGES=0
INJECTED=0 NOTIFIER_KILLS=0 WEBHOOK_FAULTS=0 SMTP_OUTAGES=0 PG_DOWN=0 UNEXPECTED=0 FREEZES=0
now_ms() { echo $(($(date +%s%N) / 1000000)); }

start_instance() {
	local inst=$1
	EXPECT_EXIT[$inst]=0
	if [[ $inst == n ]]; then
		notifier_start n "${NOTIFIER_ARGS[@]}"
	elif [[ -n ${ARMED[$inst]:-} ]]; then
		METER_TEST_FAILPOINTS=${ARMED[$inst]} meterd_start "$inst"
	else
		meterd_start "$inst"
	fi
}

# Restart what should run and does not (after its restart delay); notice
# armed meterds that killed themselves at their failpoint, and processes
# that exited when nothing asked them to: a crash is a finding.
supervise() {
	local inst t rc
	mock_check
	t=$(now_ms)
	for inst in "${!FROZEN[@]}"; do
		if ((t >= FROZEN[$inst])); then
			kill -CONT "${MD_PID[$inst]}" 2>/dev/null || true
			echo "==== test sends SIGCONT $(date -u +%H:%M:%S.%3N)" >>"$T_DIR/meterd-$inst.log"
			unset "FROZEN[$inst]"
		fi
	done
	for inst in "${!WANT[@]}"; do
		[[ ${WANT[$inst]} == 1 ]] || continue
		if [[ -n ${MD_PID[$inst]:-} ]] && kill -0 "${MD_PID[$inst]}" 2>/dev/null; then
			continue
		fi
		if [[ -n ${MD_PID[$inst]:-} && -z ${ARMED[$inst]:-} && ${EXPECT_EXIT[$inst]:-0} != 1 ]]; then
			rc=0
			wait "${MD_PID[$inst]}" 2>/dev/null || rc=$?
			UNEXPECTED=$((UNEXPECTED + 1))
			say "UNEXPECTED: $([[ $inst == n ]] && echo meter-notifier || echo "meterd $inst") exited by itself (status $rc); its last lines:"
			tail -n 15 "$T_DIR/meterd-$inst.log" | sed 's/^/       /'
			EXPECT_EXIT[$inst]=1
			RESTART_AT[$inst]=$((t + 1000))
			continue
		fi
		if [[ -n ${MD_PID[$inst]:-} && -n ${ARMED[$inst]:-} ]]; then
			wait "${MD_PID[$inst]}" 2>/dev/null || true
			if [[ $(log_count "$inst" 'failpoint .* reached') -gt 0 ]]; then
				say "nemesis: meterd $inst killed itself at its failpoint (${ARMED[$inst]})"
				FP_KILLS=$((FP_KILLS + 1))
				KILLS=$((KILLS + 1))
				REBALANCES=$((REBALANCES + 1))
			else
				UNEXPECTED=$((UNEXPECTED + 1))
				say "UNEXPECTED: meterd $inst exited before its failpoint (${ARMED[$inst]}); its last lines:"
				tail -n 15 "$T_DIR/meterd-$inst.log" | sed 's/^/       /'
			fi
			ARMED[$inst]=
			EXPECT_EXIT[$inst]=1
			RESTART_AT[$inst]=$((t + 300))
		fi
		((t >= ${RESTART_AT[$inst]:-0})) || continue
		start_instance "$inst"
	done
}

# kill -9 and the time to bring it back.
kill_instance() {
	local inst=$1 delay=$2
	EXPECT_EXIT[$inst]=1
	unset "FROZEN[$inst]"
	if [[ -n ${MD_PID[$inst]:-} ]] && kill -0 "${MD_PID[$inst]}" 2>/dev/null; then
		meterd_kill "$inst" KILL
	fi
	RESTART_AT[$inst]=$(($(now_ms) + delay))
}

pg_is_up() { [[ $PG_DOWN == 0 ]]; }

act() {
	local what=$1
	shift
	case $what in
	kill9)
		say "nemesis: kill -9 meterd $1 (back in $2 ms)"
		ARMED[$1]=
		kill_instance "$1" "$2"
		KILLS=$((KILLS + 1))
		REBALANCES=$((REBALANCES + 1)) ;;
	failpoint)
		say "nemesis: meterd $1 restarted to die at failpoint $2 (pass $3)"
		kill_instance "$1" 0
		KILLS=$((KILLS + 1))
		REBALANCES=$((REBALANCES + 1))
		ARMED[$1]="$2:$3"
		start_instance "$1" ;;
	freeze)
		if [[ -n ${MD_PID[$1]:-} ]] && kill -0 "${MD_PID[$1]}" 2>/dev/null; then
			say "nemesis: meterd $1 frozen (SIGSTOP) for $2 ms"
			echo "==== test sends SIGSTOP $(date -u +%H:%M:%S.%3N)" >>"$T_DIR/meterd-$1.log"
			kill -STOP "${MD_PID[$1]}"
			FROZEN[$1]=$(($(now_ms) + $2))
			FREEZES=$((FREEZES + 1))
			REBALANCES=$((REBALANCES + 1))
		fi ;;
	join)
		say "nemesis: meterd $1 joins the group"
		WANT[$1]=1
		RESTART_AT[$1]=0
		JOINS=$((JOINS + 1))
		REBALANCES=$((REBALANCES + 1)) ;;
	leave)
		WANT[$1]=0
		REBALANCES=$((REBALANCES + 1))
		if [[ -n ${MD_PID[$1]:-} ]] && kill -0 "${MD_PID[$1]}" 2>/dev/null; then
			# A member closing before its first assignment can make the
			# mock broker's client abort: leave cleanly only once assigned.
			EXPECT_EXIT[$1]=1
			if [[ $(log_count "$1" 'assigned') -gt 0 ]]; then
				say "nemesis: meterd $1 leaves the group (SIGTERM)"
				meterd_kill "$1" TERM
			else
				say "nemesis: meterd $1 leaves the group (kill -9: not assigned yet)"
				meterd_kill "$1" KILL
			fi
		fi ;;
	pg-restart)
		say "nemesis: PostgreSQL restart ($1)"
		"$ROOT/dev/env.sh" pg-restart "$METER_ENV_DIR" "$1" >>"$T_DIR/nemesis.log" 2>&1 ||
			say "nemesis: pg-restart failed (see $T_DIR/nemesis.log)"
		PG_RESTARTS=$((PG_RESTARTS + 1)) ;;
	pg-stop)
		say "nemesis: PostgreSQL down"
		"$ROOT/dev/env.sh" pg-stop "$METER_ENV_DIR" >>"$T_DIR/nemesis.log" 2>&1 || true
		PG_DOWN=1 ;;
	pg-start)
		say "nemesis: PostgreSQL up"
		"$ROOT/dev/env.sh" pg-start "$METER_ENV_DIR" >>"$T_DIR/nemesis.log" 2>&1 ||
			say "nemesis: pg-start failed (see $T_DIR/nemesis.log)"
		PG_DOWN=0
		PG_RESTARTS=$((PG_RESTARTS + 1)) ;;
	pg-cut)
		pg_is_up || return 0
		local n
		n=$(sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		         WHERE datname = current_database() AND pid <> pg_backend_pid()" 2>/dev/null || echo 0)
		say "nemesis: cut $n PostgreSQL connection(s)"
		CONN_CUTS=$((CONN_CUTS + n)) ;;
	broker-down | broker-up | push-errors | clear-errors)
		if [[ $what == broker-down ]]; then
			BROKER_OUTAGES=$((BROKER_OUTAGES + 1))
		elif [[ $what == push-errors ]]; then
			INJECTED=$((INJECTED + $# - 1))
		fi
		say "nemesis: kafka $what $*"
		"$ROOT/dev/env.sh" kafka-ctl "$METER_ENV_DIR" "$what" "$@" >>"$T_DIR/nemesis.log" 2>&1 ||
			say "nemesis: kafka-ctl $what failed (see $T_DIR/nemesis.log)" ;;
	notifier-kill)
		say "nemesis: kill -9 meter-notifier (back in $1 ms)"
		kill_instance n "$1"
		NOTIFIER_KILLS=$((NOTIFIER_KILLS + 1)) ;;
	webhook)
		say "nemesis: webhook receiver $*"
		if [[ $1 == down ]]; then
			kill -TERM "$HOOK_PID" 2>/dev/null || true
			wait "$HOOK_PID" 2>/dev/null || true
			HOOK_PID=
		elif [[ -z $HOOK_PID ]]; then
			start_receiver hooks --secret-file "$T_DIR/secret" --mode-file "$MODE" --port "$RPORT"
			HOOK_PID=$PEER_PID
		fi
		if [[ $1 == ok || $1 == down ]]; then
			: >"$MODE"
		else
			echo "$*" >"$MODE"
		fi
		if [[ $1 != ok ]]; then
			WEBHOOK_FAULTS=$((WEBHOOK_FAULTS + 1))
		fi ;;
	smtp-down)
		say "nemesis: SMTP sink down"
		kill -TERM "$SINK_PID" 2>/dev/null || true
		wait "$SINK_PID" 2>/dev/null || true
		SINK_PID=
		SMTP_OUTAGES=$((SMTP_OUTAGES + 1)) ;;
	smtp-up)
		say "nemesis: SMTP sink up"
		if [[ -z $SINK_PID ]]; then
			start_sink mail --port "$SPORT"
			SINK_PID=$PEER_PID
		fi ;;
	*) say "nemesis: unknown step '$what $*'" ;;
	esac
}

# ---- the run ------------------------------------------------------------------
WANT[a]=1
WANT[n]=1
start_instance a
wait_schema 90 || die "meterd did not start"
start_instance n
"$CHAOS_GEN" produce "${GEN_OPTS[@]}" --brokers "$METER_KAFKA_BROKERS" --topic "$T_TOPIC" \
	--sent "$ACTUAL/sent.tsv" >"$T_DIR/produce.log" 2>&1 &
GEN_PID=$!
START=$(now_ms)
say "producing $EVENTS messages over $((DURATION * 3 / 4))s; the nemesis has $(wc -l <"$ORACLE/nemesis.tsv") steps over ${DURATION}s"
while read -r at what args; do
	while (($(now_ms) < START + at)); do
		supervise
		sleep 0.1
	done
	# shellcheck disable=SC2086 # the step's words
	act "$what" $args
	supervise
done <"$ORACLE/nemesis.tsv"

# ---- heal ----------------------------------------------------------------------
say "nemesis done after $(( ($(now_ms) - START) / 1000 ))s; healing"
for inst in "${!FROZEN[@]}"; do FROZEN[$inst]=0; done
supervise
if ((PG_DOWN)); then act pg-start; fi
for b in 1 2 3; do "$ROOT/dev/env.sh" kafka-ctl "$METER_ENV_DIR" broker-up "$b" >>"$T_DIR/nemesis.log" 2>&1 || true; done
for api in Produce Fetch OffsetCommit JoinGroup Heartbeat SyncGroup FindCoordinator InitProducerId; do
	"$ROOT/dev/env.sh" kafka-ctl "$METER_ENV_DIR" clear-errors "$api" >>"$T_DIR/nemesis.log" 2>&1 || true
done
if [[ -z $HOOK_PID ]]; then act webhook ok; fi
: >"$MODE"
if [[ -z $SINK_PID ]]; then act smtp-up; fi
for inst in b c; do
	if [[ ${WANT[$inst]:-0} == 1 ]]; then act leave "$inst"; fi
done
if [[ -n ${ARMED[a]:-} ]]; then # an armed failpoint must not fire while we judge
	say "disarming meterd a (${ARMED[a]})"
	ARMED[a]=
	kill_instance a 0
fi
supervise
GEN_RC=0
while kill -0 "$GEN_PID" 2>/dev/null; do
	supervise
	sleep 0.5
done
wait "$GEN_PID" || GEN_RC=$?
grep -v '^seed \|^%' "$T_DIR/produce.log" || true
((GEN_RC == 0)) || die "chaos_gen produce failed (exit $GEN_RC): the stream was not sent whole"

# ---- wait for the end state ----------------------------------------------------
deadline=$((SECONDS + 300))
until wait_caught_up 5 >/dev/null; do
	supervise
	((SECONDS < deadline)) || { wait_caught_up 1; die "meterd did not catch up within 300 s"; }
done
say "meterd caught up on $T_TOPIC"

dump_actual() {
	sqlt "SELECT tenant_id, subject_type, subject_id, period, period_start, events, requests,
	             input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, cost_pusd
	        FROM rollups" >"$ACTUAL/rollups.tsv"
	sqlt "SELECT kafka_partition, kafka_offset, reason FROM rejected_events
	       WHERE kafka_topic = '$T_TOPIC'" >"$ACTUAL/rejected.tsv"
	kcat -b "$METER_KAFKA_BROKERS" -C -t "$METER_TOPIC_LIMITS" -o beginning -e -q \
		-f '%k\t%s\n' >"$ACTUAL/flags.tsv" 2>/dev/null || true
	cp "$T_DIR/hooks.jsonl" "$ACTUAL/hooks.jsonl"
	cp "$T_DIR/mail.jsonl" "$ACTUAL/mail.jsonl"
	dlq_dump | tr ' ' '\t' >"$ACTUAL/dlq.tsv"
}
# Flags, notifications and dead letters follow the commits (publisher,
# notifier retries, dead letters sent again every 10 s): wait until they
# match, or time out and judge what there is.
deadline=$((SECONDS + 180))
while :; do
	supervise
	dump_actual
	"$PY" "$CHECK" --oracle "$ORACLE" --actual "$ACTUAL" --only flags,notifications,rejects --quiet && break
	if ((SECONDS >= deadline)); then
		say "flags, notifications or dead letters still differ after 180 s; judging now"
		break
	fi
	sleep 2
done
check_no_eviction
dead=$(sql "SELECT count(*) FROM notifications WHERE status = 'dead'" 2>/dev/null || echo "?")
ASSIGNMENTS=$(cat "$T_DIR"/meterd-[abc].log 2>/dev/null | grep -c 'assigned [0-9]* partition' || true)

# ---- judge ----------------------------------------------------------------------
say "judging (duration so far $((SECONDS - T0))s)"
RC=0
"$PY" "$CHECK" --oracle "$ORACLE" --actual "$ACTUAL" \
	--stat "kills=$KILLS" --stat "failpoint_kills=$FP_KILLS" --stat "pg_restarts=$PG_RESTARTS" \
	--stat "conn_cuts=$CONN_CUTS" --stat "rebalances=$REBALANCES" --stat "joins=$JOINS" \
	--stat "assignments=$ASSIGNMENTS" --stat "broker_outages=$BROKER_OUTAGES" \
	--stat "injected_errors=$INJECTED" --stat "notifier_kills=$NOTIFIER_KILLS" \
	--stat "webhook_faults=$WEBHOOK_FAULTS" --stat "smtp_outages=$SMTP_OUTAGES" \
	--stat "dead_notifications=$dead" --stat "env_checks_failed=$FAILS" \
	--stat "unexpected_exits=$UNEXPECTED" --stat "freezes=$FREEZES" \
	--stat "duration_s=$((SECONDS - T0))" >"$T_DIR/judge.out" || RC=$?
head -n -1 "$T_DIR/judge.out"
tail -n 1 "$T_DIR/judge.out" >"$SUMMARY"
if ((FAILS > 0)); then
	say "FAIL: $FAILS of the environment checks above failed"
	RC=1
fi
if ((RC == 0)); then
	say "PASS chaos seed $SEED ($((SECONDS - T0))s)"
else
	say "FAIL chaos seed $SEED (work dir $T_DIR; rerun: make chaos SEED=$SEED EVENTS=$EVENTS DURATION=$DURATION TENANTS=$TENANTS PARTITIONS=$PARTITIONS)"
fi
exit "$RC"
