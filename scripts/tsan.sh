#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# tsan.sh - build vhu with ThreadSanitizer (-DVHU_TSAN=ON) into build-tsan
# and run the suites where threads share the library's state: the
# virtqueue stress suite (data-plane threads against the control thread)
# and the memory module's (readers under table replacement), in quick mode.
# Exits non-zero when a suite fails or ThreadSanitizer reports anything;
# each suite's output is kept in build-tsan/<suite>.tsan.log.
#
#   scripts/tsan.sh                 both suites, clang
#   CC=gcc scripts/tsan.sh          the same with gcc
#   scripts/tsan.sh test_mem        only the suites named
#
# Extra TSAN_OPTIONS from the environment are appended to ours.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 1
dir=${VHU_TSAN_DIR:-build-tsan}
cc=${CC:-clang}
suites=("$@")
[[ ${#suites[@]} -gt 0 ]] || suites=(test_vq_stress test_mem)

if ! cmake -S . -B "$dir" -DCMAKE_C_COMPILER="$cc" -DVHU_TSAN=ON \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo -DVHU_BUILD_EXAMPLES=OFF \
	>"$dir.configure.log" 2>&1; then
	tail -n 30 "$dir.configure.log"
	echo "tsan.sh: configure failed"
	exit 1
fi
if ! cmake --build "$dir" -j"$(nproc)" --target "${suites[@]}" \
	>"$dir.build.log" 2>&1; then
	tail -n 40 "$dir.build.log"
	echo "tsan.sh: build failed"
	exit 1
fi

# ThreadSanitizer's fixed shadow layout does not fit the 32 bits of mmap
# randomisation newer kernels use ("FATAL: ThreadSanitizer: unexpected
# memory mapping"); run without ASLR there.
run=()
if [[ $(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0) -gt 28 ]] &&
	command -v setarch >/dev/null; then
	run=(setarch "$(uname -m)" -R)
fi

# halt_on_error + exitcode: the first report ends the suite with 66.
# CK_FORK=no: the tests run in the suite's process, so that exit code and
# the report reach us directly.
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
export VHU_STRESS_QUICK=1 CK_FORK=no

failed=0
for t in "${suites[@]}"; do
	log="$dir/$t.tsan.log"
	start=$SECONDS
	"${run[@]}" "$dir/test/$t" >"$log" 2>&1
	rc=$?
	if grep -q "ThreadSanitizer" "$log"; then
		echo "FAIL $t: ThreadSanitizer report (exit $rc), $log:"
		sed -n '/WARNING: ThreadSanitizer\|ERROR: ThreadSanitizer\|FATAL: ThreadSanitizer/,/^SUMMARY/p' \
			"$log" | head -n 80
		failed=$((failed + 1))
	elif [[ $rc != 0 ]]; then
		echo "FAIL $t: exit $rc, $log:"
		tail -n 30 "$log"
		failed=$((failed + 1))
	else
		echo "PASS $t ($((SECONDS - start)) s): $(grep -E '^[0-9]+%: Checks' "$log")"
	fi
done
echo "tsan.sh: ${#suites[@]} suites, $failed failed"
[[ $failed == 0 ]]
