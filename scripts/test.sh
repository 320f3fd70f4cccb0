#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# test.sh - every test of vhu, on a fresh Debian 12 machine:
#   1. installs what is missing (apt-get),
#   2. builds with gcc and with clang (-Werror) and runs every Check suite
#      and the install/pkg-config consumer test (ctest),
#   3. runs the Check suites again under ASan+UBSan and valgrind memcheck,
#      and the threaded ones under ThreadSanitizer,
#   4. runs the interop tests against real peers: QEMU booting a Linux guest
#      (handshake; vhu-l2fwd carrying ping and TCP; live migration between
#      two vhu-l2fwd ports; vhu-l2fwd killed and restarted under a guest's
#      TCP stream; vhu-blk killed and restarted under a guest's O_DIRECT
#      writes), and DPDK's virtio_user
#      (dpdk-testpmd: handshake, traffic with vhu-bench and vhu-l2fwd), and
#      the bench/ scripts in short runs (test/interop/bench-scripts.sh),
#   5. runs every fuzz target for a minute (scripts/fuzz.sh).
# Prints "N passed, N failed" (one line per stage and a total) and exits
# non-zero when anything failed.  Set VHU_SKIP_INTEROP=1 to skip stage 4.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 1
# shellcheck source=scripts/deps.sh
. scripts/deps.sh
vhu_install_deps || { echo "dependency installation failed"; exit 1; }

jobs=$(nproc)
passed=0
failed=0
stage() { printf '\n##### %s\n' "$*"; }
result() { # NAME RC
	if [[ $2 == 0 ]]; then passed=$((passed + 1)); echo "PASS $1"
	else failed=$((failed + 1)); echo "FAIL $1"; fi
}

build() { # DIR CC
	cmake -S . -B "$1" -DCMAKE_C_COMPILER="$2" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		>"$1.configure.log" 2>&1 &&
		cmake --build "$1" -j"$jobs" >"$1.build.log" 2>&1
}

for cc in gcc clang; do
	dir=build-test-$cc
	stage "build and unit tests ($cc)"
	mkdir -p "$dir"
	if build "$dir" "$cc"; then
		result "build-$cc" 0
		(cd "$dir" && ctest --output-on-failure -j"$jobs")
		result "ctest-$cc" $?
	else
		tail -n 40 "$dir.build.log"
		result "build-$cc" 1
	fi
done

stage "AddressSanitizer + UndefinedBehaviorSanitizer (clang)"
dir=build-test-asan
if cmake -S . -B "$dir" -DCMAKE_C_COMPILER=clang -DVHU_SANITIZE=ON \
	-DCMAKE_BUILD_TYPE=Debug >"$dir.configure.log" 2>&1 &&
	cmake --build "$dir" -j"$jobs" >"$dir.build.log" 2>&1; then
	(cd "$dir" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j"$jobs" -E install_consumer)
	result "asan-ubsan" $?
else
	tail -n 40 "$dir.build.log"
	result "asan-ubsan" 1
fi

stage "ThreadSanitizer: data-plane threads against the control thread"
bash scripts/tsan.sh test_vq_stress test_mem test_vq test_net test_fe_loop test_handshake test_codec test_dirty_log test_recover test_inflight test_inflight_hostile
result "tsan" $?

stage "valgrind memcheck"
for t in build-test-gcc/test/test_*; do
	[[ -x $t && ! -d $t ]] || continue
	name=$(basename "$t")
	# test_guard returns from SIGBUS handlers into the faulting access, so
	# valgrind must keep registers exact at every memory access there.
	# Only there: the option slows every suite down, and the others do not
	# resume from signal handlers.
	exact=()
	[[ $name == test_guard ]] && exact=(--vex-iropt-register-updates=allregs-at-mem-access)
	if CK_FORK=no valgrind -q "${exact[@]}" \
		--leak-check=full --errors-for-leak-kinds=definite \
		--error-exitcode=1 "$t" >"build-test-gcc/$name.valgrind.log" 2>&1; then
		tail -n 1 "build-test-gcc/$name.valgrind.log"
		result "valgrind-$name" 0
	else
		# the suite's own lines first (failed checks), then valgrind's
		grep -v '^==' "build-test-gcc/$name.valgrind.log" | tail -n 20
		grep '^==' "build-test-gcc/$name.valgrind.log" | head -n 40
		result "valgrind-$name" 1
	fi
done

if [[ ${VHU_SKIP_INTEROP:-0} != 1 ]]; then
	for s in qemu-handshake dpdk-handshake dpdk-traffic qemu-l2fwd qemu-migrate qemu-reconnect qemu-blk dpdk-l2fwd bench-scripts; do
		stage "interop: $s"
		timeout 900 "test/interop/$s.sh" "$repo/build-test-gcc"
		result "$s" $?
	done
fi

stage "fuzzing: every target for ${VHU_FUZZ_SECONDS:-60} s"
bash scripts/fuzz.sh "${VHU_FUZZ_SECONDS:-60}"
result "fuzz" $?

printf '\n'
echo "test.sh: $passed passed, $failed failed"
[[ $failed == 0 ]]
