#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# dpdk-traffic.sh BUILD_DIR - traffic both ways between DPDK 22.11's
# virtio_user (dpdk-testpmd in flowgen mode: it sends and counts what comes
# back) and vhu-bench in loopback mode (it returns every frame).
#
# For each case testpmd forwards for a few seconds, then stops (SIGINT: it
# prints its forward statistics), then vhu-bench (SIGTERM: its totals).
# Asserted: frames flowed both ways, and each side received what the other
# sent but for frames still in a ring when the front-end stopped
# (0 <= testpmd TX - vhu-bench from-guest <= ring size * queues, and
# 0 <= vhu-bench to-guest - testpmd RX <= ring size * queues), and
# vhu-bench's frames per call that moved any are within one burst.
#
# Cases: split, packed (packed_vq=1), mrg (mrg_rxbuf=1), inorder
# (in_order=1, with mrg_rxbuf=0), mq (queues=2), server (server=1: testpmd
# serves the socket, vhu-bench --client).  Prints "N passed, N failed".
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:?usage: dpdk-traffic.sh BUILD_DIR}
# shellcheck source=test/interop/common.sh
. "$here/common.sh"

bench=$build/examples/vhu-bench
testpmd=${TESTPMD:-dpdk-testpmd}
cases=${VHU_DPDK_TRAFFIC_CASES:-split packed mrg inorder mq server}
run_secs=${VHU_DPDK_TRAFFIC_SECONDS:-5}
ring=256

[[ -x $bench ]] || { echo "dpdk-traffic: $bench not built"; echo "0 passed, 1 failed"; exit 1; }
command -v "$testpmd" >/dev/null || {
	echo "dpdk-traffic: $testpmd not found (apt-get install dpdk-dev)"
	echo "0 passed, 1 failed"
	exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/vhu-dpdk-traffic.XXXXXX")
prefixes=()
cleanup() {
	local p
	kill_children
	for p in "${prefixes[@]}"; do
		rm -rf "/var/run/dpdk/$p" /dev/hugepages/"$p"map_* 2>/dev/null
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# last_field FILE LABEL: the number after the last "LABEL:" in FILE.
last_field() {
	grep -oE "$2: +[0-9]+" "$1" | tail -n 1 | grep -oE '[0-9]+$'
}

run_case() {
	local name=$1 devargs="" nq=1 server=0 dir="$work/$1" prefix tp bp
	case $name in
	split) ;;
	packed) devargs=",packed_vq=1" ;;
	mrg) devargs=",mrg_rxbuf=1" ;;
	inorder) devargs=",in_order=1,mrg_rxbuf=0" ;;
	mq) devargs=",queues=2"; nq=2 ;;
	server) devargs=",server=1"; server=1 ;;
	esac
	mkdir -p "$dir"
	prefix=vhu-traffic-$$-$name
	prefixes+=("$prefix")
	case_begin "dpdk-traffic $name"
	local sock=$dir/vhost.sock
	local bench_args=(--socket "$sock" --mode loopback --queues "$nq")
	((server)) && bench_args+=(--client)
	local tp_cmd=(timeout -s INT $((run_secs + 20)) "$testpmd" -l 0-1 --no-pci --no-huge
		-m 512 --file-prefix "$prefix" --vdev "net_virtio_user0,path=$sock$devargs"
		-- --total-num-mbufs=16384 --nb-cores=1 --forward-mode=flowgen
		--rxq="$nq" --txq="$nq" --auto-start --stats-period 1)
	if ((server)); then
		spawn "$dir/testpmd.out" "$dir/testpmd.err" "${tp_cmd[@]}"
		tp=$VHU_LAST_PID
		wait_for_socket "$sock" 20 "$tp" || case_error "testpmd did not create $sock"
		spawn "$dir/bench.out" "$dir/bench.err" "$bench" "${bench_args[@]}"
		bp=$VHU_LAST_PID
	else
		spawn "$dir/bench.out" "$dir/bench.err" "$bench" "${bench_args[@]}"
		bp=$VHU_LAST_PID
		wait_for_socket "$sock" 10 "$bp" || case_error "vhu-bench did not listen"
		spawn "$dir/testpmd.out" "$dir/testpmd.err" "${tp_cmd[@]}"
		tp=$VHU_LAST_PID
	fi
	if wait_for "$dir/bench.out" "front-end ready" 30 "$tp" "$bp"; then
		# let traffic flow, then stop the front-end first
		wait_for "$dir/testpmd.out" "Throughput" 20 "$tp" || true
		sleep "$run_secs"
	else
		case_error "the device never became ready"
	fi
	stop_pid "$tp" INT 10 || true
	stop_pid "$bp" TERM 5 || true

	local tx rx from to
	tx=$(last_field "$dir/testpmd.out" "TX-packets")
	rx=$(last_field "$dir/testpmd.out" "RX-packets")
	from=$(grep -oE 'total from-guest [0-9]+' "$dir/bench.out" | grep -oE '[0-9]+$')
	to=$(grep -oE 'to-guest [0-9]+ packets' "$dir/bench.out" | grep -oE '[0-9]+')
	echo "  testpmd TX ${tx:-?} RX ${rx:-?}; vhu-bench from-guest ${from:-?} to-guest ${to:-?}"
	if [[ -z $tx || -z $rx || -z $from || -z $to ]]; then
		case_error "missing counters"
	else
		((rx > 1000)) || case_error "only $rx frames came back"
		((tx >= from && tx - from <= ring * nq)) ||
			case_error "testpmd sent $tx, vhu-bench got $from"
		((to >= rx && to - rx <= ring * nq)) ||
			case_error "vhu-bench delivered $to, testpmd received $rx"
	fi
	# Frames per call that moved any, each way: one to a burst (32).
	local line per
	line=$(grep -E 'from-guest [1-9][0-9]* pps .* to-guest [1-9][0-9]* pps' "$dir/bench.out" | tail -n 1)
	per=$(grep -oE '[0-9.]+/call' <<<"$line" | sed 's|/call||' | tr '\n' ' ')
	echo "  frames per busy call (from-guest, to-guest): ${per:-?}"
	awk -v p="$per" 'BEGIN { n = split(p, v, " "); if (n != 2) exit 1
		for (i = 1; i <= n; i++) if (v[i] < 1 || v[i] > 32) exit 1 }' ||
		case_error "frames per call not within 1..32: '${per}' in '${line}'"
	case_end "$dir/bench.out" "$dir/bench.err" "$dir/testpmd.out" "$dir/testpmd.err"
	kill_children
}

for c in $cases; do
	run_case "$c"
done
summary
