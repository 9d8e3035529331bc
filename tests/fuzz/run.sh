#!/usr/bin/env bash
# run.sh - build and run every libFuzzer harness in tests/fuzz/.
#
# For each tests/fuzz/fuzz_X.c:
#   - tests/fuzz/fuzz_X.srcs lists what else to link, one entry a line, paths
#     relative to the repository root ($B/ at the start stands for the build
#     directory, METER_BUILD_DIR or build); a line with '*' is a glob
#     (libmeter/*.c: the harness keeps linking when a directory gains a
#     file), a line "!pattern" drops the files named so far that match it
#     (!consumer/main.c); lines starting with '-' are passed to the compiler
#     as is (e.g. -ljansson); blank lines and '#' comments are skipped;
#   - it is built with clang -fsanitize=fuzzer,address,undefined into
#     build/fuzz/fuzz_X;
#   - tests/fuzz/fuzz_X.options, if present, holds extra libFuzzer flags
#     (one a line, e.g. -close_fd_mask=3 for a harness whose code under
#     test prints);
#   - it runs for FUZZ_SECONDS (default 60) on a working corpus in
#     build/fuzz/corpus/X (new inputs land there) seeded from the checked-in
#     tests/fuzz/corpus/X, which is only read.
# Crashes are saved as build/fuzz/artifacts/X-crash-*; the script exits 1 if
# any harness fails to build or finds one.
#
# FUZZ_SECONDS=0 only builds every harness and runs each checked-in seed
# once (make test does that, so a harness that stops linking or a seed that
# crashes fails the suite).
#
# Environment: FUZZ_SECONDS, FUZZ_MAX_LEN (default 8192), FUZZ_OUT (where the
# binaries, working corpora and crashes go; default $B/fuzz), FUZZ_ONLY=X to run
# one harness, CLANG (default clang).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

seconds=${FUZZ_SECONDS:-60}
max_len=${FUZZ_MAX_LEN:-8192}
clang=${CLANG:-clang}
out=${FUZZ_OUT:-${METER_BUILD_DIR:-build}/fuzz}

if ! command -v "$clang" >/dev/null 2>&1; then
	echo "fuzz: $clang not found (apt-get install -y clang libclang-rt-14-dev)" >&2
	exit 1
fi

cflags=(-std=c11 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
	-fno-sanitize-recover=undefined -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
	-Wall -Wextra -Werror -DMETER_VERSION=\"fuzz\" -I. -Icommon -Ischema -Inotifier -Ilibmeter
	-Ictl -I/usr/include/postgresql)

mkdir -p "$out/artifacts"
status=0
shopt -s nullglob
harnesses=(tests/fuzz/fuzz_*.c)
if [ ${#harnesses[@]} -eq 0 ]; then
	echo "fuzz: no harnesses in tests/fuzz" >&2
	exit 1
fi

for src in "${harnesses[@]}"; do
	base=$(basename "$src" .c) # fuzz_X
	name=${base#fuzz_}         # X
	if [ -n "${FUZZ_ONLY:-}" ] && [ "$FUZZ_ONLY" != "$name" ]; then
		continue
	fi
	extra=()
	srcs=tests/fuzz/$base.srcs
	if [ -f "$srcs" ]; then
		while IFS= read -r line || [ -n "$line" ]; do
			line=${line%%#*}
			line=$(printf '%s' "$line" | tr -d '[:space:]')
			case $line in
			'$B/'*) line=${METER_BUILD_DIR:-build}/${line#\$B/} ;;
			esac
			case $line in
			'') ;;
			'!'*) # drop what an earlier glob brought in
				keep=()
				for e in ${extra[@]+"${extra[@]}"}; do
					# shellcheck disable=SC2053 # the pattern is meant
					[[ $e == ${line#!} ]] || keep+=("$e")
				done
				extra=(${keep[@]+"${keep[@]}"}) ;;
			-*) extra+=("$line") ;;
			*'*'*) # a glob: every file it names, sorted
				mapfile -t found < <(compgen -G "$line" | sort)
				if [ ${#found[@]} -eq 0 ]; then
					echo "fuzz: $srcs: $line names no file" >&2
					status=1
				fi
				extra+=(${found[@]+"${found[@]}"}) ;;
			*) extra+=("$line") ;;
			esac
		done <"$srcs"
	fi
	bin=$out/$base
	echo "fuzz: building $bin"
	# Sources first, then link flags, so -l options resolve.
	files=() flags=()
	for e in "${extra[@]}"; do
		case $e in
		-*) flags+=("$e") ;;
		*) files+=("$e") ;;
		esac
	done
	if ! "$clang" "${cflags[@]}" -o "$bin" "$src" "${files[@]}" "${flags[@]}"; then
		echo "fuzz: $base does not build" >&2
		status=1
		continue
	fi
	opts=()
	if [ -f "tests/fuzz/$base.options" ]; then
		while IFS= read -r line || [ -n "$line" ]; do
			line=${line%%#*}
			line=$(printf '%s' "$line" | tr -d '[:space:]')
			[ -n "$line" ] && opts+=("$line")
		done <"tests/fuzz/$base.options"
	fi
	seeds=tests/fuzz/corpus/$name
	work=$out/corpus/$name
	mkdir -p "$seeds" "$work"
	if [ "$seconds" = 0 ]; then
		# Replay: each checked-in seed once (what make test does).
		mapfile -t files < <(find "$seeds" -type f | sort)
		echo "fuzz: replaying ${#files[@]} seed(s) through $base"
		[ ${#files[@]} -eq 0 ] && continue
		if ! "$bin" -timeout=10 -artifact_prefix="$out/artifacts/$name-" \
			${opts[@]+"${opts[@]}"} "${files[@]}" >"$out/$name.replay.log" 2>&1; then
			tail -n 30 "$out/$name.replay.log" >&2
			echo "fuzz: $base FAILED on a seed; see $out/$name.replay.log" >&2
			status=1
		fi
		continue
	fi
	echo "fuzz: running $base for ${seconds}s (seeds $seeds)"
	if ! "$bin" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
		-print_final_stats=1 -artifact_prefix="$out/artifacts/$name-" ${opts[@]+"${opts[@]}"} \
		"$work" "$seeds"; then
		echo "fuzz: $base FAILED; see $out/artifacts/$name-*" >&2
		status=1
	fi
done
exit $status
