#!/usr/bin/env bash
# Every libFuzzer harness of tests/fuzz still builds (its .srcs lists what it
# links, and sources move) and runs each checked-in seed of its corpus once
# without a crash: `make fuzz` with FUZZ_SECONDS=0. The long runs are
# `make fuzz` (README). Needs no database or broker.
source "$(dirname "$0")/lib.sh"

out=$(FUZZ_SECONDS=0 FUZZ_OUT=$BUILD/fuzz-seeds METER_BUILD_DIR=$BUILD bash "$ROOT/tests/fuzz/run.sh" 2>&1) ||
	die "tests/fuzz/run.sh failed:
$(tail -n 40 <<<"$out")"
n=$(grep -c '^fuzz: replaying' <<<"$out")
harnesses=$(find "$ROOT/tests/fuzz" -maxdepth 1 -name 'fuzz_*.c' | wc -l)
[[ $n -eq $harnesses ]] || die "$n of $harnesses harnesses replayed their seeds"
say "$n harnesses built and replayed their seeds"
