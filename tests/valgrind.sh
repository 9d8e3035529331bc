#!/usr/bin/env bash
# tests/valgrind.sh - `make valgrind`: every unit test binary under valgrind
# memcheck. A test fails on any invalid read or write, use of uninitialised
# memory, bad free, or leak (definite, indirect or possible: a leak that only
# looks possible is still reported; still-reachable memory at exit, such as
# OpenSSL's and libcurl's global tables, is not a leak).
#
#   bash tests/valgrind.sh            all of METER_BUILD_DIR/tests/test_*
#   bash tests/valgrind.sh event      only those whose names contain a word
#
# Suppressions: tests/valgrind.supp, if present, for third-party leaks only,
# each entry with a comment saying which library and why it is not ours.
# (None is needed today.) Logs: one per binary under a mktemp directory,
# printed when the binary fails. Last line "N passed, N failed".
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${METER_BUILD_DIR:-build}
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD
TIMEOUT=${VALGRIND_TIMEOUT:-900}

command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind not found (sh dev/deps.sh)" >&2; exit 2; }
opts=(--error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect,possible
	--errors-for-leak-kinds=definite,indirect,possible --track-origins=yes
	--num-callers=30 --child-silent-after-fork=yes)
[[ -f $ROOT/tests/valgrind.supp ]] && opts+=(--suppressions="$ROOT/tests/valgrind.supp")

logs=$(mktemp -d /tmp/meter-valgrind.XXXXXX)
passed=0
failed=0
shopt -s nullglob
bins=("$BUILD"/tests/test_*)
((${#bins[@]} > 0)) || { echo "valgrind.sh: no unit tests in $BUILD/tests; run 'make' first" >&2; exit 2; }
for b in "${bins[@]}"; do
	name=$(basename "$b")
	if (($# > 0)); then
		match=0
		for w in "$@"; do [[ $name == *"$w"* ]] && match=1; done
		((match)) || continue
	fi
	printf '%-28s ' "$name"
	t0=$SECONDS
	rc=0
	timeout "$TIMEOUT" valgrind "${opts[@]}" --log-file="$logs/$name.vg" "$b" >"$logs/$name.out" 2>&1 || rc=$?
	# valgrind's own report: anything but the preamble is a finding.
	findings=$(grep -Ev '^==[0-9]+== ?$|Memcheck|Copyright|Using Valgrind|Command:|Parent PID|HEAP SUMMARY|in use at exit|total heap usage|All heap blocks were freed|LEAK SUMMARY|definitely lost: 0|indirectly lost: 0|possibly lost: 0|still reachable|suppressed:|Reachable blocks|To see them|For lists of|Rerun with|ERROR SUMMARY: 0 |For counts of detected' "$logs/$name.vg" || true)
	if ((rc == 0)) && [[ -z $findings ]]; then
		passed=$((passed + 1))
		echo "PASS  ($((SECONDS - t0))s)"
	else
		failed=$((failed + 1))
		echo "FAIL  ($((SECONDS - t0))s, exit $rc)"
		echo "------ valgrind report of $name"
		cat "$logs/$name.vg"
		echo "------ output of $name (last lines)"
		tail -n 30 "$logs/$name.out"
	fi
done
((failed == 0)) && rm -rf "$logs" || echo "logs kept in $logs"
echo "$passed passed, $failed failed"
((failed == 0))
