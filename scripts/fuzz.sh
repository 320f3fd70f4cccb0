#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# fuzz.sh [SECONDS] - build the libFuzzer targets (clang, ASan + UBSan) and
# run each for SECONDS (default 60) starting from its checked-in corpus in
# fuzz/corpus/<target>.  Fails on any crash, leak, timeout or out-of-memory;
# the input that did it is left in build-fuzz/artifacts/.  New corpus
# entries go to a scratch copy (see fuzz/README.md to keep them).
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
secs=${1:-60}
cd "$repo" || exit 1
build="build-fuzz"
if ! cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DVHU_BUILD_FUZZ=ON \
	-DVHU_BUILD_TESTS=OFF -DVHU_BUILD_EXAMPLES=OFF \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build.configure.log" 2>&1 ||
	! cmake --build "$build" -j"$(nproc)" >"$build.build.log" 2>&1; then
	tail -n 30 "$build.build.log"
	echo "fuzz: 0 passed, 1 failed"
	exit 1
fi
mkdir -p "$build/artifacts"
scratch=$(mktemp -d /tmp/vhu-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
passed=0
failed=0
for t in msg session split packed net blk; do
	mkdir -p "$scratch/$t"
	cp -r "fuzz/corpus/$t/." "$scratch/$t/" 2>/dev/null
	if "./$build/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$build/artifacts/$t-" -print_final_stats=1 \
		"$scratch/$t" >"$build/fuzz_$t.log" 2>&1; then
		passed=$((passed + 1))
		echo "PASS fuzz_$t: $(grep -E '^#[0-9]+.*DONE' "$build/fuzz_$t.log" | tail -1)"
	else
		failed=$((failed + 1))
		echo "FAIL fuzz_$t"
		grep -E 'ERROR|SUMMARY|Test unit written' "$build/fuzz_$t.log" | head -5
	fi
done
echo "fuzz: $passed passed, $failed failed"
[[ $failed == 0 ]]
