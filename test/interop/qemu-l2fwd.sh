#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# qemu-l2fwd.sh BUILD_DIR - a Linux guest under QEMU talks over vhu-l2fwd.
#
# Wire: namespace A holds one end of a veth pair, served by vhu-l2fwd over
# AF_XDP; namespace B holds the other end with 10.77.0.2/24 (offloads off,
# like a wire).  QEMU 7.2 (TCG) boots the test guest (scripts/guest-image.sh)
# with a virtio-net-pci device on a vhost-user netdev whose socket is
# vhu-l2fwd's; the guest takes 10.77.0.1/24 and
#   - pings B, and B pings the guest;
#   - sends 8 MiB of random data to B over TCP (busybox nc), and fetches
#     another 8 MiB from B; both compared by SHA-256 (sha256sum in the
#     guest, on the host), with the guest's timing (busybox time -p);
#   - then stays connected and quiet: vhu-l2fwd must use under 10% of a
#     core over 3 s (its data plane sleeps on the kick eventfds).
# Cases: split, packed (packed=on), nomrg (mrg_rxbuf=off), client
# (vhu-l2fwd --client, QEMU serves the socket; the first QEMU is stopped,
# a second one started on the same socket, and traffic must flow again),
# mq (2 queue pairs, -smp 2: both enabled, spread over one NIC queue),
# mq2 (the same over a veth with two queues, both served).
# VHU_L2FWD_QEMU_CASES="split packed" picks some; VHU_KEEP=1 keeps the
# work directory.  Needs root.  Last line: "N passed, N failed".
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
cases=${VHU_L2FWD_QEMU_CASES:-split packed nomrg client mq mq2}
boot_timeout=${VHU_BOOT_TIMEOUT:-120}
xfer_timeout=${VHU_XFER_TIMEOUT:-180}
MIB=8

fail_early() {
	echo "qemu-l2fwd: $*" >&2
	echo "0 passed, 1 failed"
	exit 1
}
[[ $(id -u) == 0 ]] || fail_early "needs root (namespaces, XDP)"
[[ -x $l2fwd ]] || fail_early "$l2fwd not built"
command -v "$VHU_QEMU" >/dev/null || fail_early "$VHU_QEMU not found (apt-get install qemu-system-x86)"
command -v busybox >/dev/null || fail_early "busybox not found (apt-get install busybox-static)"

tag=vq$$
nsa=$tag-a
nsb=$tag-b
work=$(mktemp -d "${TMPDIR:-/tmp}/vhu-qemu-l2fwd.XXXXXX")
on_exit() {
	kill_children
	netns_del "$nsb" "$nsa"
	if [[ ${VHU_KEEP:-0} == 1 ]]; then
		echo "qemu-l2fwd: kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "qemu-l2fwd: guest image"
guest_image "$work" || fail_early "no guest image"

# net_up [NICQ]: the veth pair, with NICQ queues each way (default 1).
net_up() {
	local nq=${1:-1}
	ip netns add "$nsa" && ip netns add "$nsb" &&
		veth_pair "$tag" "$nsa" va "$nsb" vb "$nq" &&
		ip -n "$nsb" addr add 10.77.0.2/24 dev vb && ip -n "$nsb" link set lo up
}

net_down() {
	netns_del "$nsb" "$nsa"
}

# What the guest runs.  It travels on the kernel command line inside double
# quotes (one parameter, or each word would become an argument of init and
# the kernel allows 32): no double quotes in it.
guest_cmd() {
	local t="echo VHU-T:"
	echo "ip addr add 10.77.0.1/24 dev eth0; $t addr;" \
		"$(guest_ping_cmd 10.77.0.2 ping)" \
		"dd if=/dev/urandom of=/tmp/up bs=65536 count=$((MIB * 16)) 2>/dev/null;" \
		"$t up \$(sha256sum /tmp/up);" \
		"time -p nc 10.77.0.2 5001 </tmp/up; $t up sent \$?;" \
		"time -p nc 10.77.0.2 5002 >/tmp/down; $t down \$(sha256sum /tmp/down) \$(wc -c </tmp/down);" \
		"sleep 600"
}

# start_qemu DIR N CHARDEV DEVICE: boot guest N (console-N.log) on $netdev
# with $smp CPUs (qemu_start in common.sh).
start_qemu() {
	qemu_start "$1" "$2" $((boot_timeout + 2 * xfer_timeout)) "$smp" "$3" "$netdev" "$4" "$(guest_cmd)"
}

# rate DIR N K: ", N s, R MiB/s" from the guest's K-th "time -p" line.
rate() {
	tr -d '\r' <"$1/console-$2.log" | awk -v k="$3" -v mib="$MIB" '
		$1 == "real" && ++n == k && $2 > 0 {
			printf ", %.2f s in the guest (%.1f MiB/s)", $2, mib / $2 }'
}

# traffic DIR N: the checks on guest N, which boots with guest_cmd.
traffic() {
	local dir=$1 n=$2 rc want got size
	head -c $((MIB << 20)) /dev/urandom >"$dir/down.bin"
	want=$(sha256sum <"$dir/down.bin" | cut -d' ' -f1)
	rm -f "$dir/up.bin"
	# receivers keep stdin open: busybox nc quits at stdin EOF
	spawn /dev/null "$dir/nc-up.err" ip netns exec "$nsb" sh -c \
		"sleep $((boot_timeout + xfer_timeout)) | busybox nc -l -p 5001 >'$dir/up.bin'"
	spawn /dev/null "$dir/nc-down.err" ip netns exec "$nsb" sh -c \
		"busybox nc -l -p 5002 <'$dir/down.bin'"
	rc=0
	wait_for "$dir/console-$n.log" '^VHU-T: addr|^VHU-GUEST: FAIL' "$boot_timeout" "$qemu_pid" || rc=$?
	((rc == 0)) || {
		case_error "guest $n did not come up (wait rc $rc)"
		return
	}
	grep -q '^VHU-GUEST: FAIL' "$dir/console-$n.log" && case_error "guest: $(grep -m1 FAIL "$dir/console-$n.log")"
	wait_for "$dir/console-$n.log" '^VHU-T: ping' 60 "$qemu_pid"
	[[ $(guest_line "$dir" "$n" ping) == ok* ]] || case_error "guest -> host ping: $(guest_line "$dir" "$n" ping)"
	if ip netns exec "$nsb" busybox ping -c 3 -W 5 10.77.0.1 >"$dir/ping.out" 2>&1; then
		echo "  ping host -> guest: $(grep -E "min/avg" "$dir/ping.out")"
	else
		case_error "host -> guest ping failed"
	fi
	rc=0
	wait_for "$dir/console-$n.log" '^VHU-T: up sent' "$xfer_timeout" "$qemu_pid" || rc=$?
	got=$(tr -d '\r' <"$dir/console-$n.log" | grep -oE '^VHU-T: up [0-9a-f]{64}' |
		tail -n 1 | cut -d' ' -f3)
	size=$(stat -c %s "$dir/up.bin" 2>/dev/null || echo 0)
	if ((rc != 0)); then
		case_error "guest -> host transfer did not finish (rc $rc, $size bytes)"
	elif [[ -z $got || $got != $(sha256sum <"$dir/up.bin" | cut -d' ' -f1) ]]; then
		case_error "guest -> host: $size bytes, sha256 differs (guest $got)"
	else
		echo "  guest -> host: $size bytes, sha256 $got matches$(rate "$dir" "$n" 1)"
	fi
	rc=0
	wait_for "$dir/console-$n.log" '^VHU-T: down' "$xfer_timeout" "$qemu_pid" || rc=$?
	got=$(guest_line "$dir" "$n" down)
	if ((rc != 0)); then
		case_error "host -> guest transfer did not finish (rc $rc)"
	elif [[ ${got%% *} != "$want" ]]; then
		case_error "host -> guest: sha256 differs: guest '$got', sent $want"
	else
		echo "  host -> guest: $(echo "$got" | awk '{ print $NF }') bytes, sha256 $want matches$(rate "$dir" "$n" 2)"
	fi
}

# idle_cpu PID: with the guest connected and quiet, vhu-l2fwd sleeps (kicks
# on, poll()): under 10% of a core over 3 s.  (ip netns exec execs it.)
idle_cpu() {
	local t0 t1
	sleep 1
	t0=$(awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null) || return 0
	sleep 3
	t1=$(awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null) || return 0
	echo "  vhu-l2fwd CPU with an idle guest: $((t1 - t0)) ticks in 3 s"
	((t1 - t0 < 30)) || case_error "vhu-l2fwd used $((t1 - t0)) ticks in 3 s with an idle guest"
}

# run_case NAME CLIENT(0|1) DEVICE_EXTRA [PAIRS [NICQ]]
run_case() {
	local name=$1 client=$2 extra=$3 pairs=${4:-1} nicq=${5:-1} dir=$work/$1 chardev device rc netdev q
	local -a largs=()
	case_begin "qemu-l2fwd $name"
	mkdir -p "$dir"
	net_up "$nicq" || case_error "cannot create namespaces/veth"
	((nicq > 1)) && largs+=(--queue-id "$(seq -s, 0 $((nicq - 1)))")
	chardev="socket,id=c0,path=$dir/sock"
	device="virtio-net-pci,netdev=n0,vectors=0,romfile=$extra"
	netdev=vhost-user,id=n0,chardev=c0
	smp=1
	if ((pairs > 1)); then
		netdev+=",queues=$pairs"
		device+=",mq=on"
		smp=2 # the driver enables min(CPUs, pairs) pairs
	fi
	((client)) && chardev+=",server=on,wait=off" && largs+=(--client)
	echo "  qemu ... -chardev $chardev -netdev $netdev -device $device"
	if ((client)); then
		# QEMU serves the socket: a first guest that is stopped, then a
		# second one; vhu-l2fwd reconnects to each
		start_qemu "$dir" 0 "$chardev" "$device"
		wait_for_socket "$dir/sock" 20 "$qemu_pid" || case_error "QEMU did not create the socket"
	fi
	spawn "$dir/l2fwd.out" "$dir/l2fwd.err" ip netns exec "$nsa" \
		"$l2fwd" --socket "$dir/sock" --iface va --stats 5 "${largs[@]}"
	l2_pid=$VHU_LAST_PID
	if ((client)); then
		wait_for "$dir/l2fwd.out" 'guest ready' "$boot_timeout" "$l2_pid" ||
			case_error "first guest never got ready"
		wait_for "$dir/console-0.log" '^VHU-T: addr' "$boot_timeout" "$qemu_pid"
		stop_pid "$qemu_pid" TERM 10 || true
		wait_for "$dir/l2fwd.out" 'front-end disconnected' 10 "$l2_pid" ||
			case_error "vhu-l2fwd did not see the first QEMU go"
		start_qemu "$dir" 1 "$chardev" "$device"
	else
		wait_for "$dir/l2fwd.out" '^vhu-l2fwd: listening' 10 "$l2_pid" ||
			case_error "vhu-l2fwd did not start"
		start_qemu "$dir" 1 "$chardev" "$device"
	fi
	traffic "$dir" 1
	idle_cpu "$l2_pid"
	stop_pid "$qemu_pid" TERM 10 || true
	rc=0
	stop_pid "$l2_pid" TERM 10 || rc=$?
	((rc == 0)) || case_error "vhu-l2fwd exited with status $rc"
	ip -n "$nsa" link show va | grep -q xdp && case_error "XDP program left attached"
	echo "  $(grep -E '^vhu-l2fwd: guest ready' "$dir/l2fwd.out" | tail -n 1)"
	if ((pairs > 1)); then
		for ((q = 0; q < 2 * pairs; q++)); do
			grep -qx "vhu-l2fwd: queue $q enabled" "$dir/l2fwd.out" ||
				case_error "queue $q was never enabled"
		done
	fi
	grep -E '^(final:|pair [0-9]+:) ' "$dir/l2fwd.out" | sed 's/^/  /'
	net_down
	case_end "$dir/l2fwd.out" "$dir/l2fwd.err" "$dir/qemu-1.err" "$dir/console-1.log"
}

for c in $cases; do
	case $c in
	split) run_case split 0 "" ;;
	packed) run_case packed 0 ",packed=on" ;;
	nomrg) run_case nomrg 0 ",mrg_rxbuf=off" ;;
	client) run_case client 1 "" ;;
	mq) run_case mq 0 "" 2 ;;
	mq2) run_case mq2 0 "" 2 2 ;;
	*)
		case_begin "qemu-l2fwd $c"
		case_error "unknown case"
		case_end
		;;
	esac
done

summary
