#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# dpdk-l2fwd.sh BUILD_DIR - DPDK 22.11's virtio-user port through vhu-l2fwd.
#
# vhu-l2fwd serves one end of a veth pair (namespace A) over AF_XDP;
# dpdk-testpmd (no hugepages, no PCI) runs a net_virtio_user port on its
# socket.  Cases:
#   txonly, txonly-packed   testpmd sends 64-byte frames for 4 s; the veth's
#                           far end (namespace B) must receive what
#                           vhu-l2fwd says it sent (at least 1000 frames)
#   rxonly                  20000 frames sent (paced) on the far end
#                           (AF_PACKET, python3) must reach testpmd (at
#                           least 90%), and vhu-l2fwd's counters account
#                           for every frame (delivered or dropped by reason)
#   txonly-server           testpmd serves the socket (server=1) and
#                           vhu-l2fwd --client connects to it
#   reconnect-packed        the same with packed_vq=1,in_order=1, and
#                           vhu-l2fwd killed (SIGKILL) under traffic and
#                           started again, then stopped (SIGTERM) and
#                           started again: frames flow after each restart
# Informational: the rates it prints come from a 2-core machine where
# testpmd's two polling lcores and vhu-l2fwd share the CPUs.
# Needs root.  Last line: "N passed, N failed".
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/interop/common.sh
. "$here/common.sh"

[[ $# == 1 ]] || {
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
}
build=$(cd "$1" && pwd)
l2fwd=$build/examples/vhu-l2fwd
testpmd=${TESTPMD:-dpdk-testpmd}
cases=${VHU_DPDK_L2FWD_CASES:-txonly txonly-packed rxonly txonly-server reconnect-packed}

fail_early() {
	echo "dpdk-l2fwd: $*" >&2
	echo "0 passed, 1 failed"
	exit 1
}
[[ $(id -u) == 0 ]] || fail_early "needs root"
[[ -x $l2fwd ]] || fail_early "$l2fwd not built"
command -v "$testpmd" >/dev/null || fail_early "$testpmd not found (apt-get install dpdk-dev)"
command -v python3 >/dev/null || fail_early "python3 not found"

tag=vdp$$
nsa=$tag-a
nsb=$tag-b
work=$(mktemp -d "${TMPDIR:-/tmp}/vhu-dpdk-l2fwd.XXXXXX")
on_exit() {
	kill_children
	ip netns del "$nsa" 2>/dev/null
	ip netns del "$nsb" 2>/dev/null
	rm -rf "/var/run/dpdk/$tag"-*
	rmdir /var/run/dpdk 2>/dev/null
	if [[ ${VHU_KEEP:-0} == 1 ]]; then
		echo "dpdk-l2fwd: kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

net_up() {
	ip netns add "$nsa" && ip netns add "$nsb" &&
		ip link add "$tag"a type veth peer name "$tag"b &&
		ip link set "$tag"a netns "$nsa" && ip link set "$tag"b netns "$nsb" &&
		ip -n "$nsa" link set "$tag"a name va && ip -n "$nsb" link set "$tag"b name vb || return 1
	ip netns exec "$nsa" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
	ip netns exec "$nsb" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
	ip netns exec "$nsa" ethtool -K va rx off tx off tso off gso off gro off >/dev/null 2>&1
	ip netns exec "$nsb" ethtool -K vb rx off tx off tso off gso off gro off >/dev/null 2>&1
	ip -n "$nsa" link set va up && ip -n "$nsb" link set vb up
}

net_down() {
	ip netns del "$nsa" 2>/dev/null
	ip netns del "$nsb" 2>/dev/null
	true
}

vb_rx_packets() {
	ip -n "$nsb" -s -j link show vb | python3 -c \
		'import json, sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])'
}

# l2_stat DIR KEY: KEY= of vhu-l2fwd's final line (first occurrence).
l2_stat() {
	grep '^final: ' "$1/l2fwd.out" | sed 's/[ {}]/\n/g' |
		awk -F= -v k="$2" '$1 == k { print $2; exit }'
}

# run_case NAME MODE(txonly|rxonly) DEVARGS_EXTRA SERVER(0|1)
run_case() {
	local name=$1 mode=$2 extra=$3 server=$4 dir=$work/$1 rc before after sent got
	local -a largs=()
	case_begin "dpdk-l2fwd $name"
	mkdir -p "$dir"
	net_up || case_error "cannot create namespaces/veth"
	local devargs="net_virtio_user0,path=$dir/sock,queues=1$extra"
	((server)) && devargs+=",server=1" && largs+=(--client)
	if ((!server)); then
		spawn "$dir/l2fwd.out" "$dir/l2fwd.err" ip netns exec "$nsa" \
			"$l2fwd" --socket "$dir/sock" --iface va "${largs[@]}"
		l2_pid=$VHU_LAST_PID
		wait_for "$dir/l2fwd.out" '^vhu-l2fwd: listening' 10 "$l2_pid" ||
			case_error "vhu-l2fwd did not start"
	fi
	echo "  testpmd --vdev $devargs --forward-mode=$mode"
	before=$(vb_rx_packets)
	spawn "$dir/testpmd.out" "$dir/testpmd.err" timeout -k 5 60 "$testpmd" \
		-l 0-1 --no-pci --no-huge -m 512 --file-prefix "$tag-$name" \
		--log-level=lib.eal:notice --vdev "$devargs" \
		-- --total-num-mbufs=16384 --nb-cores=1 --forward-mode="$mode" \
		--txpkts=64 --auto-start --stats-period 60
	tp_pid=$VHU_LAST_PID
	if ((server)); then
		wait_for_socket "$dir/sock" 20 "$tp_pid" || case_error "testpmd did not create its socket"
		spawn "$dir/l2fwd.out" "$dir/l2fwd.err" ip netns exec "$nsa" \
			"$l2fwd" --socket "$dir/sock" --iface va "${largs[@]}"
		l2_pid=$VHU_LAST_PID
	fi
	rc=0
	wait_for "$dir/l2fwd.out" 'guest ready' 30 "$l2_pid" "$tp_pid" || rc=$?
	((rc == 0)) || case_error "the port never got ready (rc $rc)"
	wait_for "$dir/testpmd.out" '^Port 0: ' 30 "$tp_pid" || case_error "testpmd did not configure port 0"
	if [[ $mode == rxonly ]]; then
		sleep 1
		ip netns exec "$nsb" python3 -c '
import socket, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("vb", 0))
f = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x88\xb5" + bytes(46)
for i in range(20000):
    s.send(f)
    if i % 32 == 31:
        time.sleep(0.001)  # paced: a delivery test, not an overload
' || case_error "the sender failed"
		sleep 1
	else
		sleep 4
	fi
	stop_pid "$tp_pid" INT 10 || true
	sleep 0.5
	rc=0
	stop_pid "$l2_pid" TERM 10 || rc=$?
	((rc == 0)) || case_error "vhu-l2fwd exited with status $rc"
	after=$(vb_rx_packets)
	if [[ $mode == rxonly ]]; then
		got=$(grep -E 'RX-packets:' "$dir/testpmd.out" | tail -n 1 | awk '{ print $2 }')
		echo "  testpmd received ${got:-?} of 20000 frames"
		((${got:-0} >= 18000)) || case_error "testpmd received ${got:-0} of 20000"
		# every frame is accounted for: delivered or dropped by reason
		local k total=0 xsk
		xsk=$(l2_stat "$dir" xsk_rx)
		for k in no_buffers too_big not_ready ring no_guest; do
			total=$((total + $(grep '^final: ' "$dir/l2fwd.out" | sed 's/.*nic->guest//; s/[ {}]/\n/g' |
				awk -F= -v k="$k" '$1 == k { print $2; exit }')))
		done
		total=$((total + ${got:-0}))
		((total == ${xsk:-0})) ||
			case_error "nic->guest: $xsk taken from the NIC, $total delivered or dropped by reason"
		((${xsk:-0} + $(l2_stat "$dir" xsk_rx_dropped) >= 19900)) ||
			case_error "only ${xsk:-0} + $(l2_stat "$dir" xsk_rx_dropped) of 20000 seen by AF_XDP"
	else
		sent=$(l2_stat "$dir" pkts)
		got=$((after - before))
		echo "  vhu-l2fwd sent ${sent:-?} frames in ~4 s ($((${sent:-0} / 4)) pps), the far end got $got"
		((${sent:-0} >= 1000)) || case_error "vhu-l2fwd sent ${sent:-0} frames"
		((got >= ${sent:-0} * 95 / 100)) || case_error "the far end got $got of ${sent:-0}"
	fi
	grep -E '^final: ' "$dir/l2fwd.out" | cut -c1-200 | sed 's/^/  /'
	net_down
	case_end "$dir/l2fwd.out" "$dir/l2fwd.err" "$dir/testpmd.out" "$dir/testpmd.err"
}

# reconnect_case NAME DEVARGS_EXTRA: testpmd (server=1) sends, vhu-l2fwd
# --client is killed and restarted twice; each run of it must forward.
reconnect_case() {
	local name=$1 extra=$2 dir=$work/$1 before after sig run
	case_begin "dpdk-l2fwd $name"
	mkdir -p "$dir"
	net_up || case_error "cannot create namespaces/veth"
	local devargs="net_virtio_user0,path=$dir/sock,queues=1,server=1$extra"
	echo "  testpmd --vdev $devargs --forward-mode=txonly; vhu-l2fwd --client"
	spawn "$dir/testpmd.out" "$dir/testpmd.err" timeout -k 5 90 "$testpmd" \
		-l 0-1 --no-pci --no-huge -m 512 --file-prefix "$tag-$name" \
		--log-level=lib.eal:notice --vdev "$devargs" \
		-- --total-num-mbufs=16384 --nb-cores=1 --forward-mode=txonly \
		--txpkts=64 --auto-start --stats-period 60
	tp_pid=$VHU_LAST_PID
	wait_for_socket "$dir/sock" 20 "$tp_pid" || case_error "testpmd did not create its socket"
	run=0
	for sig in KILL TERM none; do
		run=$((run + 1))
		spawn "$dir/l2fwd-$run.out" "$dir/l2fwd-$run.err" ip netns exec "$nsa" \
			"$l2fwd" --socket "$dir/sock" --iface va --client
		l2_pid=$VHU_LAST_PID
		wait_for "$dir/l2fwd-$run.out" 'guest ready' 30 "$l2_pid" "$tp_pid" ||
			case_error "run $run: the port never got ready"
		before=$(vb_rx_packets)
		sleep 2
		after=$(vb_rx_packets)
		echo "  run $run: the far end got $((after - before)) frames in 2 s"
		((after - before >= 1000)) || case_error "run $run: only $((after - before)) frames in 2 s"
		[[ $sig == none ]] && break
		if [[ $sig == KILL ]]; then
			kill -KILL "$l2_pid"
			wait "$l2_pid" 2>/dev/null
		else
			stop_pid "$l2_pid" TERM 10 || case_error "run $run: vhu-l2fwd did not stop on SIGTERM"
		fi
	done
	grep -h 'resumes at slot\|detached the XDP program' "$dir"/l2fwd-*.out "$dir"/l2fwd-*.err |
		sed 's/^/  /' | head -n 6
	stop_pid "$l2_pid" TERM 10 || case_error "vhu-l2fwd exited with an error"
	stop_pid "$tp_pid" INT 10 || true
	grep -qi 'broken' "$dir"/l2fwd-*.err && case_error "a queue broke: $(grep -hi broken "$dir"/l2fwd-*.err | head -n 1)"
	net_down
	case_end "$dir/l2fwd-1.err" "$dir/l2fwd-2.err" "$dir/l2fwd-3.out" "$dir/testpmd.out"
}

for c in $cases; do
	case $c in
	reconnect-packed) reconnect_case reconnect-packed ",packed_vq=1,in_order=1" ;;
	txonly) run_case txonly txonly "" 0 ;;
	txonly-packed) run_case txonly-packed txonly ",packed_vq=1" 0 ;;
	rxonly) run_case rxonly rxonly "" 0 ;;
	txonly-server) run_case txonly-server txonly "" 1 ;;
	*)
		case_begin "dpdk-l2fwd $c"
		case_error "unknown case"
		case_end
		;;
	esac
done

summary
