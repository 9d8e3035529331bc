# tests/integration/lib.sh - helpers for the integration tests (bash, sourced).
#
# Each t_*.sh sources this file, calls test_init, and ends with test_done.
# The environment (PostgreSQL + mock Kafka, see dev/env.sh) is the one run.sh
# started (METER_ENV_DIR set), or, when a test runs alone, one started here
# and stopped on exit. Every test gets its own database (created on the same
# server), its own events and dead-letter topics and its own consumer group,
# so tests cannot see each other's rollups, offsets or group members.
#
#   test_init [--partitions N]     T_DB, T_DBURL, T_TOPIC, T_DLQ, T_GROUP, T_DIR
#   sql "SELECT ..."               one query on the test database (psql -XAtq)
#   meterd_start NAME [ARGS...]    meterd in the background, log T_DIR/meterd-NAME.log
#   meterd_kill NAME [SIGNAL]      default SIGKILL
#   meterd_stop NAME [SECS [SIG]]  SIGTERM (or SIG), wait for the exit, MD_RC = exit code
#   log_wait NAME REGEX SECS       wait for a line in NAME's log since its last start
#   log_mark NAME                  ... or since now
#   wait_for "what" SECS "SQL"     poll until the query prints t
#   wait_caught_up SECS            every partition's stored offset = its end offset
#   produce_lines FILE [-p N]      key<TAB>value lines with kcat
#   gen ARGS...                    tools/gen_events on the test topic
#   check_eq "what" EXPECTED ACTUAL, check "what" CMD..., check_rollups ORACLE
#   at_exit 'COMMAND'              run on exit, pass or fail
#   test_done                      summary line; exit 1 if any check failed
#
# A private environment (no METER_ENV_DIR) is removed after a pass unless
# KEEP_ENV=1.
#
# Timing: waits poll with generous timeouts; a fixed sleep only ever shapes a
# fault (how long PostgreSQL stays down, where a kill lands), never stands in
# for an assertion. Every signal a test sends to meterd is marked in its log
# ("==== test sends SIG..."): a stop without a mark came from outside.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# The binaries of METER_BUILD_DIR (make passes its B; default build).
BUILD=${METER_BUILD_DIR:-build}
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD
METERD=$BUILD/meterd
METERCTL=$BUILD/meterctl
GEN=$BUILD/tools/gen_events
PY=/usr/bin/python3
T_NAME=$(basename "$0" .sh)
FAILS=0
CHECKS=0
LAST_OK=1
OWN_ENV=
LAST_MD=
EXIT_HOOKS=()
declare -A MD_PID=() MD_LINE=()

say() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() {
	say "FATAL: $*"
	exit 1
}

# ---- environment -----------------------------------------------------------

env_setup() {
	if [[ -n ${METER_ENV_DIR:-} && -f $METER_ENV_DIR/env ]]; then
		# shellcheck disable=SC1091
		source "$METER_ENV_DIR/env"
		return
	fi
	OWN_ENV=$(mktemp -d /tmp/meter-it.XXXXXX)
	say "starting a private environment in $OWN_ENV"
	eval "$("$ROOT/dev/env.sh" start "$OWN_ENV" 2>"$OWN_ENV.start.log")" ||
		{ cat "$OWN_ENV.start.log"; die "dev/env.sh start failed"; }
}

# crash_stack LOG: the stack a daemon wrote when it died of a fault
# (common/crash.c), each frame resolved to function and line by addr2line.
crash_stack() {
	grep -q ': fatal signal ' "$1" 2>/dev/null || return 0
	echo "---- crash in $1, stack resolved:"
	sed -n '/: fatal signal /,$p' "$1" | sed -nE 's/^([^ (]+)\(([^)]*)\)\[0x[0-9a-f]+\]$/\1 \2/p' |
		while read -r mod off; do
			case $off in
			+0x*) addr2line -f -i -p -e "$mod" "${off#+}" 2>/dev/null | sed "s|^|  $(basename "$mod"): |" ;;
			*) echo "  $(basename "$mod"): $off" ;;
			esac
		done
}


# On exit: stop our meterd processes and background jobs (by pid), show the
# meterd logs on failure, run the at_exit hooks, stop a private environment.
on_exit() {
	local rc=$? name pid
	trap - EXIT
	for name in "${!MD_PID[@]}"; do
		pid=${MD_PID[$name]}
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
			for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	# Anything else still running in the background (a generator): ours, by pid.
	for pid in $(jobs -p); do
		kill -TERM "$pid" 2>/dev/null || true
	done
	if [[ $rc -ne 0 && -n ${T_DIR:-} ]]; then
		for f in "$T_DIR"/meterd-*.log; do
			[[ -f $f ]] || continue
			echo "---- last lines of $f"
			grep -v CONFWARN "$f" | tail -n 25 || true
			crash_stack "$f"
		done
	fi
	local hook
	for hook in "${EXIT_HOOKS[@]}"; do
		eval "$hook" || true
	done
	if [[ -n $OWN_ENV ]]; then
		"$ROOT/dev/env.sh" stop "$OWN_ENV" 2>/dev/null || true
		if [[ $rc -eq 0 && ${KEEP_ENV:-0} != 1 ]]; then
			rm -rf "$OWN_ENV" "$OWN_ENV.start.log"
		else
			echo "environment kept in $OWN_ENV"
		fi
	fi
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM
# A command that fails outside a condition ends the test (set -e): say which.
set -E
trap 'say "error: \"$BASH_COMMAND\" failed (exit $?) at ${BASH_SOURCE[0]##*/} line $LINENO"' ERR

# at_exit 'COMMAND': run at exit, whatever the outcome (e.g. restart a
# service the test stopped, so that the next test finds it running).
at_exit() { EXIT_HOOKS+=("$1"); }

# test_init [--partitions N]: a fresh database, topics and group for this test.
test_init() {
	local partitions=8
	while [[ $# -gt 0 ]]; do
		case $1 in
		--partitions) partitions=$2; shift ;;
		*) die "test_init: unknown option $1" ;;
		esac
		shift
	done
	for f in "$METERD" "$GEN"; do
		[[ -x $f ]] || die "$f is missing; run 'make all' first"
	done
	env_setup
	local id
	id="${T_NAME//[^a-z0-9]/_}_$(date +%s)_$$"
	T_DB=$id
	T_TOPIC=$id.events
	T_DLQ=$id.dlq
	T_GROUP=$id
	T_DIR=$METER_ENV_DIR/tests/$id
	mkdir -p "$T_DIR"
	psql -XAtq -v ON_ERROR_STOP=1 -d "$METER_DATABASE_URL" -c "CREATE DATABASE $T_DB" >/dev/null ||
		die "cannot create database $T_DB"
	T_DBURL="postgresql://$PGUSER@$PGHOST:$PGPORT/$T_DB"
	"$ROOT/dev/env.sh" kafka-ctl "$METER_ENV_DIR" create-topic "$T_TOPIC" "$partitions" ||
		die "cannot create topic $T_TOPIC"
	"$ROOT/dev/env.sh" kafka-ctl "$METER_ENV_DIR" create-topic "$T_DLQ" 2 ||
		die "cannot create topic $T_DLQ"
	# Rollups for billing: each test its own topic.
	export METER_TOPIC_ROLLUPS=$id.rollups
	"$ROOT/dev/env.sh" kafka-ctl "$METER_ENV_DIR" create-topic "$METER_TOPIC_ROLLUPS" 4 ||
		die "cannot create topic $METER_TOPIC_ROLLUPS"
	T_PARTITIONS=$partitions
	say "$T_NAME: database $T_DB, topic $T_TOPIC ($partitions partitions), work dir $T_DIR"
}

# ---- database ----------------------------------------------------------------

sql() { psql -XAtq -v ON_ERROR_STOP=1 -d "$T_DBURL" -c "$1"; }
# Tab-separated columns.
sqlt() { psql -XAtq -v ON_ERROR_STOP=1 -F $'\t' -d "$T_DBURL" -c "$1"; }

# hold_begin "SQL": a session of its own runs BEGIN and the statement and
# stays open in that transaction (holding its locks) until hold_end
# COMMIT|ROLLBACK ends it and waits for the session to exit. One at a time.
hold_begin() {
	coproc HOLD { psql -XAtq -d "$T_DBURL" >/dev/null 2>&1; }
	HOLD_SESSION_PID=$HOLD_PID HOLD_FD=${HOLD[1]}
	echo "BEGIN; $1" >&"$HOLD_FD"
}
hold_end() {
	echo "$1;" >&"$HOLD_FD"
	exec {HOLD_FD}>&- # EOF: psql ends its session
	wait "$HOLD_SESSION_PID" 2>/dev/null || true
}

# wait_for "what" SECS "SQL": poll the query (errors count as not yet) until
# it prints t. Returns 1 on timeout, after saying what it waited for.
wait_for() {
	local what=$1 secs=$2 q=$3 out deadline=$((SECONDS + $2))
	while :; do
		out=$(sql "$q" 2>/dev/null || true)
		[[ $out == t ]] && return 0
		if all_meterd_gone; then
			say "every meterd of this test has exited while waiting for: $what (see the logs)"
			return 1
		fi
		if ((SECONDS >= deadline)); then
			say "timed out after ${secs}s waiting for: $what"
			return 1
		fi
		sleep 0.2
	done
}

# wait_schema [SECS]: the last meterd started has migrated the database (it
# says "consuming" once the schema is up to date and the default plan known).
wait_schema() {
	log_wait "$LAST_MD" '(^| )consuming ' "${1:-60}" &&
		wait_for "the tables of $T_DB" 10 "SELECT to_regclass('public.tenants') IS NOT NULL"
}

# ---- Kafka -------------------------------------------------------------------

# "partition low high" lines for a topic (watermarks), from the broker.
topic_offsets() {
	"$PY" - "$METER_KAFKA_BROKERS" "$1" <<'EOF'
import sys
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "meter-tests-watermarks",
              "enable.auto.commit": False})
md = c.list_topics(sys.argv[2], timeout=10)
for p in sorted(md.topics[sys.argv[2]].partitions):
    lo, hi = c.get_watermark_offsets(TopicPartition(sys.argv[2], p), timeout=10)
    print(p, lo, hi)
c.close()
EOF
}

# wait_caught_up SECS: the stored offset of every partition of T_TOPIC equals
# the partition's end offset (all messages produced so far are consumed).
wait_caught_up() {
	local secs=$1 deadline=$((SECONDS + $1)) ends want have
	ends=$(topic_offsets "$T_TOPIC") || die "cannot read the watermarks of $T_TOPIC"
	want=$(awk '$3 > 0 {print $1 " " $3}' <<<"$ends" | sort -n)
	while :; do
		have=$(sql "SELECT partition || ' ' || next_offset FROM consumer_offsets
		            WHERE group_id = '$T_GROUP' AND topic = '$T_TOPIC' AND next_offset > 0
		            ORDER BY partition" 2>/dev/null || true)
		[[ $have == "$want" ]] && return 0
		if all_meterd_gone; then
			say "every meterd of this test has exited before catching up on $T_TOPIC (see the logs)"
			return 1
		fi
		if ((SECONDS >= deadline)); then
			say "timed out after ${secs}s waiting for meterd to catch up on $T_TOPIC"
			say "end offsets:    $(tr '\n' ' ' <<<"$want")"
			say "stored offsets: $(tr '\n' ' ' <<<"$have")"
			return 1
		fi
		sleep 0.3
	done
}

# The mock broker keeps only ~5 MB per partition: a test whose oracle
# mismatches because the broker dropped unread messages is broken, not meterd.
check_no_eviction() {
	local bad
	bad=$(topic_offsets "$T_TOPIC" | awk '$2 != 0')
	check_eq "messages dropped by the mock broker's retention (partition low high)" "" "$bad"
}

# dlq_dump: "partition offset reason" (of the source message, from the
# meter-source-* and meter-reason headers) for every message on T_DLQ whose
# meter-source-topic is T_TOPIC, sorted by partition and offset.
dlq_dump() {
	"$PY" - "$METER_KAFKA_BROKERS" "$T_DLQ" "$T_TOPIC" <<'EOF'
import sys
from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
brokers, dlq, src = sys.argv[1:4]
c = Consumer({"bootstrap.servers": brokers, "group.id": "meter-tests-dlq",
              "enable.auto.commit": False, "enable.partition.eof": True})
parts = c.list_topics(dlq, timeout=10).topics[dlq].partitions
c.assign([TopicPartition(dlq, p, OFFSET_BEGINNING) for p in parts])
left, rows, idle = set(parts), [], 0
while left and idle < 100:
    m = c.poll(0.2)
    if m is None:
        idle += 1
        continue
    if m.error():
        if m.error().code() == -191:  # _PARTITION_EOF
            left.discard(m.partition())
        continue
    h = {k: (v or b"").decode("utf-8", "replace") for k, v in (m.headers() or [])}
    if h.get("meter-source-topic") == src:
        rows.append((int(h.get("meter-source-partition", -1)),
                     int(h.get("meter-source-offset", -1)), h.get("meter-reason", "(none)")))
c.close()
for r in sorted(rows):
    print(*r)
EOF
}

# produce_lines FILE [kcat options]: one message per line, key<TAB>value.
produce_lines() {
	local f=$1
	shift
	kcat -b "$METER_KAFKA_BROKERS" -P -t "$T_TOPIC" -K $'\t' -l "$@" "$f" ||
		die "kcat could not produce $f"
}

# gen ARGS...: the event generator on the test topic (idempotent producer).
# lz4 like most real producers; it also keeps streams of tens of thousands of
# events far inside the mock broker's ~5 MB per partition.
gen() { "$GEN" --brokers "$METER_KAFKA_BROKERS" --topic "$T_TOPIC" -X compression.codec=lz4 "$@"; }

# A valid event: event ID TENANT TIME 'DATA FIELDS' (tenant_id is added).
event() {
	printf '{"specversion":"1.0","id":"%s","source":"it","type":"com.meterd.usage","time":"%s","subject":"%s","data":{"tenant_id":"%s",%s}}' \
		"$1" "$3" "$2" "$2" "$4"
}

utc_now() { date -u +%Y-%m-%dT%H:%M:%S.%3NZ; }

# ---- meterd ------------------------------------------------------------------

# meterd_start NAME [ARGS...]: run meterd on the test's database, topics and
# group. Extra settings come from ARGS or the caller's METER_* variables.
# A short session timeout lets a restart after kill -9 rejoin within seconds
# (the default 45 s would make every crash test slow, not different).
meterd_start() {
	local name=$1 log
	shift
	log=$T_DIR/meterd-$name.log
	touch "$log"
	MD_LINE[$name]=$(wc -l <"$log")
	echo "==== meterd start $(date -u +%H:%M:%S.%3N) $*" >>"$log"
	METER_DATABASE_URL=$T_DBURL METER_TOPIC_EVENTS=$T_TOPIC METER_TOPIC_DLQ=$T_DLQ \
		METER_GROUP_ID=$T_GROUP METER_KAFKA_PROP_session_timeout_ms=${SESSION_TIMEOUT_MS:-6000} \
		METER_KAFKA_PROP_heartbeat_interval_ms=500 \
		"$METERD" "$@" >>"$log" 2>&1 &
	MD_PID[$name]=$!
	LAST_MD=$name
}

meterd_alive() { kill -0 "${MD_PID[$1]}" 2>/dev/null; }

# True if no meterd of this test runs although some were started: a wait
# for progress can stop early and say why.
all_meterd_gone() {
	local name
	((${#MD_PID[@]} > 0)) || return 1
	for name in "${!MD_PID[@]}"; do
		meterd_alive "$name" && return 1
	done
	return 0
}

# log_mark NAME: from now on log_wait and log_count look only at newer lines.
log_mark() { MD_LINE[$1]=$(wc -l <"$T_DIR/meterd-$1.log"); }

# log_wait NAME ERE SECS: a line matching ERE in NAME's log since its last
# start (or log_mark).
log_wait() {
	local name=$1 re=$2 deadline=$((SECONDS + $3)) log=$T_DIR/meterd-$1.log
	while :; do
		tail -n +"$((MD_LINE[$name] + 1))" "$log" | grep -Eq -- "$re" && return 0
		if ! meterd_alive "$name"; then
			say "meterd $name exited while waiting for /$re/"
			return 1
		fi
		if ((SECONDS >= deadline)); then
			say "timed out after $3s waiting for /$re/ in $log"
			return 1
		fi
		sleep 0.1
	done
}

# held_re N: an ERE for a meterd log line saying that the process now holds
# N partitions (N may be a class such as [1-7]): "assigned N partition(s)"
# with one worker, "(N in this process)" with several (METER_WORKERS).
held_re() { echo "assigned $1 partition\\(s\\)\$|\\($1 in this process\\)"; }

# Lines of NAME's log since its last start (or log_mark) matching ERE (count).
log_count() {
	tail -n +"$((MD_LINE[$1] + 1))" "$T_DIR/meterd-$1.log" | grep -Ec -- "$2" || true
}

# meterd_kill NAME [SIGNAL]: default SIGKILL (then reaped). Every signal the
# test sends is marked in the log, so a stop without a mark came from outside.
meterd_kill() {
	local name=$1 sig=${2:-KILL}
	echo "==== test sends SIG$sig $(date -u +%H:%M:%S.%3N)" >>"$T_DIR/meterd-$name.log"
	kill -"$sig" "${MD_PID[$name]}" 2>/dev/null || true
	if [[ $sig == KILL ]]; then
		wait "${MD_PID[$name]}" 2>/dev/null || true
	fi
}

# meterd_stop NAME [SECS [SIGNAL]]: send SIGNAL (TERM), wait for the exit;
# sets MD_RC (124 if it did not exit in time, and then it is killed).
meterd_stop() {
	local name=$1 secs=${2:-60} sig=${3:-TERM} pid=${MD_PID[$1]} deadline
	deadline=$((SECONDS + secs))
	echo "==== test sends SIG$sig $(date -u +%H:%M:%S.%3N)" >>"$T_DIR/meterd-$name.log"
	kill -"$sig" "$pid" 2>/dev/null || true
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			say "meterd $name did not exit within ${secs}s of SIG$sig; killing it"
			kill -KILL "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
			MD_RC=124
			return 0
		fi
		sleep 0.1
	done
	MD_RC=0
	wait "$pid" || MD_RC=$?
}

# ctl ARGS...: meterctl on the test database.
ctl() { METER_DATABASE_URL=$T_DBURL "$METERCTL" "$@"; }

# add_tenant ID ZONE: with meterctl, or plain SQL if meterctl cannot.
add_tenant() {
	if ctl tenant add "$1" --tz "$2" >"$T_DIR/ctl.out" 2>&1; then
		say "meterctl tenant add $1 --tz $2"
	else
		say "meterctl tenant add failed ($(head -c 300 "$T_DIR/ctl.out")); adding $1 with SQL"
		sql "INSERT INTO tenants (id, plan_id, tz) VALUES ('$1', 'free', '$2')" >/dev/null
	fi
}

# ---- limits and flags --------------------------------------------------------

# limits_init: a limits topic of the test's own (METER_TOPIC_LIMITS, exported
# for meterd and meterctl) and the schema, for tests of flags.
limits_init() {
	export METER_TOPIC_LIMITS=$T_DB.limits
	"$ROOT/dev/env.sh" kafka-ctl "$METER_ENV_DIR" create-topic "$METER_TOPIC_LIMITS" "${1:-4}" ||
		die "cannot create $METER_TOPIC_LIMITS"
	ctl migrate >/dev/null || die "meterctl migrate failed"
}

# flag SUBJECT FIELD: FIELD of the last flag published for SUBJECT ("" if none).
flag() {
	kcat -b "$METER_KAFKA_BROKERS" -C -t "$METER_TOPIC_LIMITS" -o beginning -e -q \
		-f '%k\t%s\n' 2>/dev/null |
		awk -F'\t' -v k="$1" '$1 == k {v = $2} END {print v}' |
		"$PY" -c 'import json,sys
line = sys.stdin.read().strip()
v = json.loads(line).get(sys.argv[1]) if line else ""
print("null" if v is None else v)' "$2"
}

# blocked SUBJECT: "blocked" or "not blocked" (no flag, or state ok).
blocked() { [[ $(flag "$1" state) == blocked ]] && echo blocked || echo "not blocked"; }

# wait_flag SUBJECT FIELD VALUE SECS
wait_flag() {
	local deadline=$((SECONDS + $4)) got
	while :; do
		got=$(flag "$1" "$2")
		[[ $got == "$3" ]] && return 0
		if ((SECONDS >= deadline)); then
			say "timed out waiting for $1 $2=$3 (last: ${got:-none})"
			return 1
		fi
		sleep 0.2
	done
}

# ---- meter-notifier and its peers -------------------------------------------
NOTIFIER=$BUILD/meter-notifier
# notifier_start NAME [ARGS...]: like meterd_start (same log, kill and stop
# helpers), for meter-notifier.
notifier_start() { METERD=$NOTIFIER meterd_start "$@"; }
# start_receiver NAME [ARGS...]: webhook receiver logging to T_DIR/NAME.jsonl;
# sets RPORT. start_sink NAME [ARGS...]: SMTP sink, sets SPORT.
start_peer() {
	local tool=$1 name=$2 pf
	shift 2
	pf=$T_DIR/$name.port
	rm -f "$pf"
	: >>"$T_DIR/$name.jsonl"
	"$PY" "$ROOT/tests/tools/$tool" --log "$T_DIR/$name.jsonl" --port-file "$pf" "$@" \
		>>"$T_DIR/$name.out" 2>&1 &
	PEER_PID=$!
	for _ in $(seq 1 100); do [[ -s $pf ]] && break; sleep 0.1; done
	[[ -s $pf ]] || die "$tool did not start (see $T_DIR/$name.out)"
	PEER_PORT=$(cat "$pf")
}
start_receiver() { start_peer webhook_receiver.py "$@"; RPORT=$PEER_PORT; }
start_sink() { start_peer smtp_sink.py "$@"; SPORT=$PEER_PORT; }
# jl FILE EXPR: a Python expression over rs, the records of a JSON-lines log.
jl() {
	"$PY" - "$1" "$2" <<'EOF'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
answered = [r for r in rs if r.get("event") == "answered"]
print(eval(sys.argv[2]))
EOF
}
# wait_jl "what" SECS FILE EXPR: until EXPR prints True.
wait_jl() {
	local deadline=$((SECONDS + $2))
	until [[ $(jl "$3" "$4") == True ]]; do
		if ((SECONDS >= deadline)); then
			say "timed out after $2s waiting for: $1"
			return 1
		fi
		sleep 0.2
	done
}

# ---- checks ------------------------------------------------------------------

# check_eq "what" EXPECTED ACTUAL. Like check, it never fails the script by
# itself (every check runs and is reported); LAST_OK says how it went.
check_eq() {
	local what=$1 want=$2 got=$3
	CHECKS=$((CHECKS + 1))
	LAST_OK=1
	if [[ $want == "$got" ]]; then
		got=${got//$'\n'/; }
		say "ok   $what = ${got:-(empty)}"
	else
		FAILS=$((FAILS + 1))
		LAST_OK=0
		say "FAIL $what"
		printf '       expected: %s\n       actual:   %s\n' "${want:-(empty)}" "${got:-(empty)}"
	fi
}

# check "what" CMD...: passes when CMD succeeds.
check() {
	local what=$1
	shift
	CHECKS=$((CHECKS + 1))
	LAST_OK=1
	if "$@"; then
		say "ok   $what"
	else
		FAILS=$((FAILS + 1))
		LAST_OK=0
		say "FAIL $what (command: $*)"
	fi
}

# Value of "# NAME VALUE" in a gen_events oracle.
oracle_val() { awk -v k="$2" '$1 == "#" && $2 == k {print $3}' "$1"; }

# check_rollups ORACLE [TENANT_PREFIX]: the rollups table (of tenants whose id
# starts with TENANT_PREFIX) equals the oracle's rows exactly (tenant/user/key
# x day/month: events, requests, tokens, cost), and the event log and the
# dedupe table hold exactly the valid unique events.
check_rollups() {
	local oracle=$1 like="${2:-}%" exp=$T_DIR/rollups.expected act=$T_DIR/rollups.actual uniq
	grep -v '^#' "$oracle" | LC_ALL=C sort >"$exp"
	sqlt "SELECT tenant_id, subject_type, subject_id, period, period_start, events, requests,
	             input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, cost_pusd
	        FROM rollups WHERE tenant_id LIKE '$like'" | LC_ALL=C sort >"$act"
	CHECKS=$((CHECKS + 1))
	if cmp -s "$exp" "$act"; then
		say "ok   rollups equal the oracle exactly ($(wc -l <"$exp") rows: tenant/user/key x day/month)"
	else
		FAILS=$((FAILS + 1))
		say "FAIL rollups differ from the oracle ($(wc -l <"$exp") rows expected, $(wc -l <"$act") actual); diff expected actual:"
		diff "$exp" "$act" | head -n 20 || true
	fi
	uniq=$(oracle_val "$oracle" valid_unique)
	check_eq "rows in events (valid unique events sent)" "$uniq" \
		"$(sql "SELECT count(*) FROM events WHERE tenant_id LIKE '$like'")"
	check_eq "rows in event_ids" "$uniq" "$(sql "SELECT count(*) FROM event_ids WHERE tenant_id LIKE '$like'")"
	check_eq "events logged twice (same tenant and id)" 0 \
		"$(sql "SELECT count(*) FROM (SELECT 1 FROM events WHERE tenant_id LIKE '$like'
		          GROUP BY tenant_id, event_id HAVING count(*) > 1) d")"
}

# check_rejects ORACLE: rejected_events by reason equals the oracle's bad kinds.
check_rejects() {
	local want got
	want=$(awk '$1 == "#" && $2 == "bad_reason" {print $3 " " $4}' "$1" | LC_ALL=C sort)
	got=$(sql "SELECT reason || ' ' || count(*) FROM rejected_events GROUP BY reason" | LC_ALL=C sort)
	check_eq "rejected events by reason" "$(tr '\n' ' ' <<<"$want")" "$(tr '\n' ' ' <<<"$got")"
}

test_done() {
	if ((FAILS > 0)); then
		say "FAIL $T_NAME: $FAILS of $CHECKS checks failed"
		exit 1
	fi
	say "PASS $T_NAME: $CHECKS checks"
	exit 0
}

# ---- HTTP: metrics, health, meter-api ------------------------------------------
API=$ROOT/build/meter-api
PROM_CHECK=$ROOT/tests/tools/prom_check.py
# api_start NAME [ARGS...]: meter-api on the test database (same log, kill and
# stop helpers as meterd).
api_start() { METERD=$API meterd_start "$@"; }
# http_addr NAME [SECS]: the host:port NAME's log says it serves HTTP on
# (started with METER_HTTP_ADDR=127.0.0.1:0, it picks a free port).
http_addr() {
	log_wait "$1" 'serving http://' "${2:-30}" || return 1
	tail -n +"$((MD_LINE[$1] + 1))" "$T_DIR/meterd-$1.log" | grep -oE 'serving http://[^ ]+' |
		tail -n 1 | sed 's,^serving http://,,'
}
# hget URL [CURL ARGS...]: prints the status code; the body is in $T_DIR/http.body,
# the headers in $T_DIR/http.headers.
hget() {
	local url=$1
	shift
	curl -s -m 10 -o "$T_DIR/http.body" -D "$T_DIR/http.headers" -w '%{http_code}' "$@" "$url" ||
		true
}
# body_json EXPR: a Python expression over d, the JSON body of the last hget.
body_json() {
	"$PY" -c 'import json,sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
		"$T_DIR/http.body" "$1"
}
