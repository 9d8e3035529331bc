#!/usr/bin/env bash
# dev/env.sh - the embedded default environment: a throwaway PostgreSQL 15
# cluster and a mock Kafka cluster (build/mock_kafka), both under one DIR.
# METER_BUILD_DIR names another build directory (default build; `make
# SANITIZE=...` sets it).
#
#   eval "$(dev/env.sh start DIR [--durable] [--partitions N])"
#   dev/env.sh stop DIR                      # safe twice, or half-started
#   dev/env.sh pg-stop DIR | pg-start DIR | pg-restart DIR [immediate]
#   dev/env.sh kafka-ctl DIR COMMAND...      # e.g. broker-down 2
#   dev/env.sh free-port                     # a TCP port nobody listens on
#
# start prints `export` lines (METER_DATABASE_URL, METER_KAFKA_BROKERS,
# METER_ENV_DIR, MOCK_KAFKA_CTL, PGHOST, PGPORT, PGUSER, PGDATABASE, and a
# 6-s session timeout for meterd's consumers: the mock makes a group wait
# session.timeout.ms - 1 s, 44 s by default, when a worker joins it late;
# see dev/mock_kafka.c) on stdout, and also writes them to DIR/env;
# progress goes to stderr.
# Each start creates a fresh database cluster and Kafka cluster (new ports).
# PostgreSQL runs with fsync=off and full_page_writes=off unless --durable
# (fast, but an OS crash would lose data; a process crash does not).
# As root, PostgreSQL runs as the postgres user, so DIR must be reachable by
# it: use a directory under /tmp.
#
# Layout of DIR: pg/ (data), pg.log, pg.port, kafka.pid, kafka.log (mock
# stderr, command outcomes), kafka.ctl (FIFO) and kafka.ctl.log (acks),
# kafka.ready (bootstrap string), env, .meter-env (marks DIR as ours).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${METER_BUILD_DIR:-build}
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD
MOCK="$BUILD/mock_kafka"
PGBIN=/usr/lib/postgresql/15/bin

die() { echo "env.sh: $*" >&2; exit 1; }
say() { echo "env.sh: $*" >&2; }
usage() {
	cat >&2 <<'EOF'
usage: dev/env.sh start DIR [--durable] [--partitions N]
       dev/env.sh stop DIR
       dev/env.sh pg-stop DIR | pg-start DIR | pg-restart DIR [immediate]
       dev/env.sh kafka-ctl DIR COMMAND...
       dev/env.sh free-port
EOF
	exit 2
}

# PostgreSQL refuses to run as root: run its tools as postgres then, from a
# directory that user can enter.
if [[ $EUID -eq 0 ]]; then
	PGUSER_NAME=postgres
	as_pg() { (cd "$DIR" && runuser -u postgres -- "$@"); }
else
	PGUSER_NAME=${USER:-$(id -un)}
	as_pg() { (cd "$DIR" && "$@"); }
fi

pg_running() {
	[[ -f $DIR/pg/postmaster.pid ]] && as_pg "$PGBIN/pg_ctl" -D "$DIR/pg" status >/dev/null 2>&1
}

pg_start() {
	[[ -f $DIR/pg/PG_VERSION ]] || die "no database cluster in $DIR/pg; run: dev/env.sh start $DIR"
	if pg_running; then
		say "PostgreSQL already running on port $(cat "$DIR/pg.port")"
		return 0
	fi
	if ! as_pg "$PGBIN/pg_ctl" -D "$DIR/pg" -l "$DIR/pg.log" -w -t 60 start >/dev/null; then
		tail -n 5 "$DIR/pg.log" >&2 || true
		return 1
	fi
}

# stop_mode: fast (clean) or immediate (like a crash: recovery on start).
pg_stop() {
	local mode=${1:-fast}
	if pg_running; then
		as_pg "$PGBIN/pg_ctl" -D "$DIR/pg" -m "$mode" -w -t 60 stop >/dev/null ||
			die "pg_ctl stop failed; see $DIR/pg.log"
	fi
}

# A port nobody listens on at 127.0.0.1 (checked by connecting to it). A
# race with another process remains; start retries with another port.
free_port() {
	local port
	for _ in $(seq 1 50); do
		port=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	die "no free TCP port found"
}

# The mock_kafka pid from DIR/kafka.pid, if that process is still ours.
kafka_pid() {
	local pid
	[[ -f $DIR/kafka.pid ]] || return 1
	pid=$(cat "$DIR/kafka.pid")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	# Guard against a recycled pid.
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "mock_kafka" || return 1
	echo "$pid"
}

kafka_stop() {
	local pid
	if pid=$(kafka_pid); then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			say "mock_kafka ($pid) ignored SIGTERM for 10 s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$DIR/kafka.pid" "$DIR/kafka.ready" "$DIR/kafka.ctl"
}

cmd_start() {
	local durable=0 partitions=8 port attempt pid bootstrap
	while [[ $# -gt 0 ]]; do
		case $1 in
		--durable) durable=1 ;;
		--partitions)
			[[ $# -ge 2 && $2 =~ ^[1-9][0-9]{0,3}$ ]] ||
				{ echo "env.sh: --partitions wants a number 1..9999" >&2; exit 2; }
			partitions=$2
			shift ;;
		*) echo "env.sh: unknown option '$1'" >&2; usage ;;
		esac
		shift
	done
	[[ -x $MOCK ]] || die "$MOCK is missing; run 'make' first"
	[[ -x $PGBIN/initdb ]] || die "PostgreSQL 15 server not found in $PGBIN; run 'sh dev/deps.sh'"

	# Never take over a directory that holds something else: it gets
	# chowned to postgres and its pg/ is wiped.
	if [[ -e $DIR && ! -f $DIR/.meter-env ]]; then
		[[ -d $DIR && -z $(ls -A "$DIR") ]] ||
			die "$DIR exists and is not an env.sh directory; give a new or empty one"
	fi
	if pg_running || kafka_pid >/dev/null; then
		die "an environment is already running in $DIR; run: dev/env.sh stop $DIR"
	fi
	# The unix socket path DIR/.s.PGSQL.NNNNN must fit in 107 bytes.
	[[ ${#DIR} -le 80 ]] || die "DIR path too long for a unix socket (max 80 chars): $DIR"

	# On any failure below, stop what was started.
	trap 'if [[ $? -ne 0 ]]; then say "start failed; stopping what was started"; kafka_stop; pg_stop immediate || true; fi' EXIT

	mkdir -p "$DIR"
	touch "$DIR/.meter-env"
	rm -rf "$DIR/pg" "$DIR/pg.log" "$DIR/pg.port" "$DIR/env" "$DIR"/kafka.*
	if [[ $EUID -eq 0 ]]; then
		chown postgres: "$DIR"
		runuser -u postgres -- test -w "$DIR" -a -x "$DIR" ||
			die "the postgres user cannot reach $DIR (a parent directory is not traversable); use a directory under /tmp"
	fi

	# (a) PostgreSQL
	say "initdb in $DIR/pg"
	as_pg "$PGBIN/initdb" -D "$DIR/pg" -U "$PGUSER_NAME" --auth=trust --encoding=UTF8 \
		--locale=C --no-sync --no-instructions >"$DIR/initdb.log" 2>&1 ||
		{ tail -n 20 "$DIR/initdb.log" >&2; die "initdb failed (full log: $DIR/initdb.log)"; }
	# Trust only for local sockets and loopback TCP.
	as_pg tee "$DIR/pg/pg_hba.conf" >/dev/null <<EOF
local all all trust
host all all 127.0.0.1/32 trust
host all all ::1/128 trust
local replication all trust
host replication all 127.0.0.1/32 trust
EOF
	local fs=off
	[[ $durable -eq 1 ]] && fs=on
	for attempt in 1 2 3 4 5; do
		port=$(free_port)
		# Later settings win, so appending is enough; re-appended per try.
		as_pg tee -a "$DIR/pg/postgresql.conf" >/dev/null <<EOF

# env.sh (attempt $attempt)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$DIR'
max_connections = 100
fsync = $fs
full_page_writes = $fs
synchronous_commit = on
# Commit times of rows: the benchmark's produce-to-commit latency.
track_commit_timestamp = on
# A modest production-like setting: rollups and indexes stay in memory, and
# checkpoints do not fire in the middle of a benchmark run.
shared_buffers = 512MB
max_wal_size = 4GB
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
EOF
		say "starting PostgreSQL on 127.0.0.1:$port"
		if as_pg "$PGBIN/pg_ctl" -D "$DIR/pg" -l "$DIR/pg.log" -w -t 60 start >/dev/null; then
			break
		fi
		grep -q "could not bind\|could not create any TCP/IP sockets" "$DIR/pg.log" ||
			{ tail -n 10 "$DIR/pg.log" >&2; die "PostgreSQL did not start (log: $DIR/pg.log)"; }
		say "port $port was taken; trying another"
		[[ $attempt -lt 5 ]] || die "PostgreSQL did not start after 5 ports (log: $DIR/pg.log)"
	done
	echo "$port" >"$DIR/pg.port"
	as_pg "$PGBIN/createdb" -h "$DIR" -p "$port" -U "$PGUSER_NAME" meter ||
		die "createdb meter failed (log: $DIR/pg.log)"

	# (b) mock Kafka. setsid: a Ctrl-C in the caller's terminal must not
	# kill it behind the test harness's back (stop does that). No stdout:
	# `eval "$(env.sh start)"` waits until every holder of stdout closes it.
	say "starting mock Kafka (3 brokers, usage.events:$partitions)"
	setsid "$MOCK" --brokers 3 --topic "usage.events:$partitions" \
		--topic usage.events.dlq:4 --topic usage.limits:4 --topic usage.rollups:4 \
		--ctl "$DIR/kafka.ctl" --ready-file "$DIR/kafka.ready" \
		</dev/null >/dev/null 2>"$DIR/kafka.log" &
	pid=$!
	echo "$pid" >"$DIR/kafka.pid"
	for _ in $(seq 1 100); do
		[[ -s $DIR/kafka.ready ]] && break
		kill -0 "$pid" 2>/dev/null ||
			{ cat "$DIR/kafka.log" >&2; die "mock_kafka exited early (log: $DIR/kafka.log)"; }
		sleep 0.1
	done
	[[ -s $DIR/kafka.ready ]] || die "mock_kafka not ready after 10 s (log: $DIR/kafka.log)"
	bootstrap=$(cat "$DIR/kafka.ready")

	{
		printf 'export METER_DATABASE_URL=%q\n' "postgresql://$PGUSER_NAME@127.0.0.1:$port/meter"
		printf 'export METER_KAFKA_BROKERS=%q\n' "$bootstrap"
		printf 'export METER_ENV_DIR=%q\n' "$DIR"
		printf 'export MOCK_KAFKA_CTL=%q\n' "$DIR/kafka.ctl"
		printf 'export PGHOST=%q PGPORT=%q PGUSER=%q PGDATABASE=meter\n' \
			127.0.0.1 "$port" "$PGUSER_NAME"
		printf 'export METER_KAFKA_PROP_session_timeout_ms=6000 METER_KAFKA_PROP_heartbeat_interval_ms=2000\n'
	} >"$DIR/env"
	trap - EXIT
	cat "$DIR/env"
	say "ready: PostgreSQL 127.0.0.1:$port, Kafka $bootstrap (stop: dev/env.sh stop $DIR)"
}

cmd_stop() {
	if [[ ! -d $DIR ]]; then
		say "$DIR does not exist; nothing to stop"
		return 0
	fi
	kafka_stop
	if [[ -f $DIR/pg/PG_VERSION ]]; then
		pg_stop fast
	fi
	say "stopped $DIR"
}

cmd_kafka_ctl() {
	[[ $# -ge 1 ]] || usage
	local fifo=$DIR/kafka.ctl cmd="$*" before line
	[[ $cmd != *$'\n'* ]] || die "kafka-ctl: one command, no newlines"
	kafka_pid >/dev/null || die "mock_kafka is not running in $DIR; run: dev/env.sh start $DIR"
	[[ -p $fifo ]] || die "$fifo is not a FIFO"
	before=$(wc -l <"$fifo.log")
	# Opening a FIFO blocks while nobody reads it: bound that too.
	# shellcheck disable=SC2016 # $1 and $2 belong to the inner bash
	timeout 5 bash -c 'printf "%s\n" "$1" >"$2"' _ "$cmd" "$fifo" ||
		die "kafka-ctl: could not write to $fifo"
	# mock_kafka echoes the words joined by single spaces.
	local -a words
	read -ra words <<<"$cmd"
	cmd="${words[*]}"
	for _ in $(seq 1 100); do
		# Look only at lines added since we wrote; another writer's lines
		# may be among them.
		while IFS= read -r line; do
			case $line in
			"ok $cmd") return 0 ;;
			"err $cmd: "*) echo "env.sh: kafka-ctl: ${line#err }" >&2; return 1 ;;
			esac
		done < <(tail -n +"$((before + 1))" "$fifo.log")
		sleep 0.05
	done
	die "kafka-ctl: no acknowledgement for '$cmd' within 5 s (see $DIR/kafka.log)"
}

if [[ ${1:-} == free-port ]]; then
	[[ $# -eq 1 ]] || usage
	free_port
	exit 0
fi
[[ $# -ge 2 ]] || usage
action=$1
DIR=$2
shift 2
# Absolute, so that paths handed to postgres and mock_kafka survive cd.
[[ $DIR = /* ]] || DIR="$PWD/$DIR"
DIR=${DIR%/}

case $action in
start) cmd_start "$@" ;;
stop) [[ $# -eq 0 ]] || usage; cmd_stop ;;
pg-stop) [[ $# -eq 0 ]] || usage; pg_stop fast ;;
pg-start) [[ $# -eq 0 ]] || usage; pg_start ;;
pg-restart)
	case ${1:-fast} in
	fast | immediate) pg_stop "${1:-fast}"; pg_start ;;
	*) usage ;;
	esac ;;
kafka-ctl) cmd_kafka_ctl "$@" ;;
*) usage ;;
esac
