#!/usr/bin/env bash
# tests/run.sh - the runner behind `make test` (call it after `make all`).
#
#   bash tests/run.sh                  unit tests, then every integration test
#   bash tests/run.sh --unit-only      unit tests only (no services started)
#   bash tests/run.sh kill9 bad_input  unit tests, then the integration tests
#                                      whose names contain one of the words
#
# Unit tests are the build/tests/test_* binaries (cmocka, no services); with
# METER_SAN_UNIT_DIR set (make test does), also DIR/tests/test_* built with
# sanitizers, named test_X[san]. METER_BUILD_DIR names the build directory
# (default build; make passes its B).
# Integration tests are tests/integration/t_*.sh; they share one environment
# started here (dev/env.sh: a throwaway PostgreSQL and a mock Kafka cluster
# under a mktemp directory in /tmp), each on its own database and topics, and
# run one at a time (t_pg_outage stops the shared PostgreSQL).
# Each test runs under a timeout (UNIT_TIMEOUT, TEST_TIMEOUT seconds) with its
# output in a log file under the environment directory, printed if it fails.
# The environment is stopped on exit, Ctrl-C included; its directory is
# removed when everything passed and kept (with the logs) otherwise.
# The last line of output is exactly "N passed, N failed"; the exit status
# is non-zero when a test failed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
abs_dir() { [[ $1 = /* ]] && echo "$1" || echo "$ROOT/$1"; }
export METER_BUILD_DIR=${METER_BUILD_DIR:-build}
BUILD=$(abs_dir "$METER_BUILD_DIR")
SAN_UNIT=
[[ -n ${METER_SAN_UNIT_DIR:-} ]] && SAN_UNIT=$(abs_dir "$METER_SAN_UNIT_DIR")
UNIT_TIMEOUT=${UNIT_TIMEOUT:-120}
TEST_TIMEOUT=${TEST_TIMEOUT:-400}
unit_only=0
filters=()
for a in "$@"; do
	case $a in
	--unit-only) unit_only=1 ;;
	-h | --help)
		sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
		exit 0 ;;
	-*) echo "run.sh: unknown option '$a' (see --help)" >&2; exit 2 ;;
	*) filters+=("$a") ;;
	esac
done

passed=0
failed=0
failures=()
ENV_DIR=
LOG_DIR=

stop_env() {
	[[ -n $ENV_DIR ]] || return 0
	"$ROOT/dev/env.sh" stop "$ENV_DIR" >/dev/null 2>&1 || true
}

summary() {
	echo
	if ((failed > 0)); then
		echo "failed:"
		local f log
		for f in "${failures[@]}"; do
			echo "  $f"
			# The failed checks again, so that a short tail of the output
			# (a CI summary) still says what failed.
			log=${f##*log: }
			log=${log%)}
			[[ $f == *"log: "* && -f $log ]] && grep -E '^[0-9:]+ FAIL ' "$log" | head -n 10 | sed 's/^/      /'
		done
		echo "logs kept in $LOG_DIR"
	fi
	echo "$passed passed, $failed failed"
}

on_exit() {
	local rc=$?
	trap - EXIT INT TERM
	stop_env
	if ((failed == 0 && rc == 0)); then
		[[ -n $ENV_DIR ]] && rm -rf "$ENV_DIR"
		[[ $LOG_DIR == /tmp/meter-test-logs.* ]] && rm -rf "$LOG_DIR"
	fi
	exit "$rc"
}
on_signal() {
	trap - INT TERM
	echo
	echo "run.sh: interrupted; stopping the running test and the environment"
	if [[ -n $CUR_PID ]]; then
		kill -TERM "$CUR_PID" 2>/dev/null || true
		wait "$CUR_PID" 2>/dev/null || true
	fi
	failed=$((failed + 1))
	failures+=("interrupted")
	summary
	exit 130
}
CUR_PID=
trap on_exit EXIT
trap on_signal INT TERM

# run_one NAME SECS CMD...: run with a timeout, log to LOG_DIR/NAME.log.
run_one() {
	local name=$1 secs=$2 log=$LOG_DIR/$1.log t0=$SECONDS rc=0
	shift 2
	printf '%-28s ' "$name"
	# In the background and waited for, so that a Ctrl-C is handled at once
	# (bash runs traps only between foreground commands); timeout runs the
	# test in its own process group and passes our SIGTERM on to all of it.
	timeout -k 20 "$secs" "$@" >"$log" 2>&1 </dev/null &
	CUR_PID=$!
	wait "$CUR_PID" || rc=$?
	CUR_PID=
	local took=$((SECONDS - t0))
	if ((rc == 0)); then
		passed=$((passed + 1))
		echo "PASS  (${took}s)"
	else
		failed=$((failed + 1))
		local why="exit $rc"
		((rc == 124 || rc == 137)) && why="timed out after ${secs}s"
		failures+=("$name ($why, log: $log)")
		echo "FAIL  (${took}s, $why)"
		echo "------ output of $name"
		tail -n 200 "$log"
		echo "------ end of $name"
	fi
}

for f in meterd meterctl meter-notifier mock_kafka tools/gen_events tools/chaos_gen; do
	[[ -x $BUILD/$f ]] || { echo "run.sh: $BUILD/$f is missing; run 'make all' first" >&2; exit 2; }
done

# Integration tests to run, by name filter.
tests=()
if ((unit_only == 0)); then
	for t in "$ROOT"/tests/integration/t_*.sh; do
		name=$(basename "$t" .sh)
		if ((${#filters[@]} > 0)); then
			match=0
			for w in "${filters[@]}"; do [[ $name == *"$w"* ]] && match=1; done
			((match)) || continue
		fi
		tests+=("$t")
	done
	if ((${#filters[@]} > 0 && ${#tests[@]} == 0)); then
		echo "run.sh: no integration test matches: ${filters[*]}" >&2
		failed=$((failed + 1))
		failures+=("no integration test matches '${filters[*]}'")
	fi
fi

# The environment first, so that every log lives under its directory.
env_ok=1
if ((${#tests[@]} > 0)); then
	ENV_DIR=$(mktemp -d /tmp/meter-env.XXXXXX)
	echo "== environment in $ENV_DIR"
	if env_out=$("$ROOT/dev/env.sh" start "$ENV_DIR" 2>"$ENV_DIR.start.log"); then
		eval "$env_out"
		rm -f "$ENV_DIR.start.log"
		LOG_DIR=$ENV_DIR/logs
	else
		env_ok=0
		cat "$ENV_DIR.start.log"
		failed=$((failed + 1))
		failures+=("environment: dev/env.sh start failed (log: $ENV_DIR.start.log)")
	fi
fi
[[ -n $LOG_DIR ]] || LOG_DIR=$(mktemp -d /tmp/meter-test-logs.XXXXXX)
mkdir -p "$LOG_DIR"

echo "== unit tests"
shopt -s nullglob
for b in "$BUILD"/tests/test_*; do
	[[ -f $b && -x $b ]] || continue
	run_one "$(basename "$b")" "$UNIT_TIMEOUT" "$b"
done
if [[ -n $SAN_UNIT ]]; then
	san=0
	for b in "$SAN_UNIT"/tests/test_*; do
		[[ -f $b && -x $b ]] || continue
		san=1
		# Sanitizers slow the tests down: twice the time.
		run_one "$(basename "$b")[san]" "$((UNIT_TIMEOUT * 2))" "$b"
	done
	if ((san == 0)); then
		failed=$((failed + 1))
		failures+=("no sanitized unit tests in $SAN_UNIT/tests (make B=$METER_SAN_UNIT_DIR SANITIZE=address,undefined unit-bins)")
	fi
fi

if ((${#tests[@]} > 0 && env_ok)); then
	echo "== integration tests"
	for t in "${tests[@]}"; do
		run_one "$(basename "$t" .sh)" "$TEST_TIMEOUT" bash "$t"
	done
fi

summary
((failed == 0))
