#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# l2fwd.sh BUILD_DIR - vhu-l2fwd against the in-tree front-end, no guest.
#
# Each case creates two network namespaces joined by a veth pair: vhu-l2fwd
# runs in the first on its end (AF_XDP), l2fwd-fe (test/l2fwd) in the second
# plays both the guest (vhost-user socket, rings) and the wire (AF_PACKET
# on the other end).  Offloads are off on both ends, IPv6 too, so the veth
# behaves like a wire.  Everything is removed afterwards.
#
# Cases: errors (missing interface, no privileges, XDP that will not load,
# a NIC queue that does not exist, usage), flow, packed, native (--xdp-mode native: veth's driver XDP, copy
# mode), mq (2 pairs over 2 NIC queues), oversize, norxbuf,
# reconnect, client-reconnect, rarp, bpffs (bpffs mounted), hugepages
# (vm.nr_hugepages raised and restored), idle (an idle port sleeps),
# takeover (SIGKILL, then the next instance takes the NIC back; one
# instance per NIC);
# bench (not by default: frames per second each way, informational).
# VHU_L2FWD_CASES="flow mq" picks some.  Needs root: exits 77 (skip)
# without it.  Last line: "N passed, N failed".
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/interop/common.sh
. "$here/../interop/common.sh"

[[ $# == 1 ]] || {
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
}
build=$(cd "$1" && pwd)
l2fwd=$build/examples/vhu-l2fwd
fe=$build/test/l2fwd/l2fwd-fe
cases=${VHU_L2FWD_CASES:-errors flow packed native mq oversize norxbuf reconnect client-reconnect rarp bpffs hugepages idle takeover}

if [[ $(id -u) != 0 ]]; then
	echo "l2fwd: needs root (namespaces, XDP); skipped"
	exit 77
fi
for b in "$l2fwd" "$fe"; do
	[[ -x $b ]] || {
		echo "l2fwd: $b not built (libxdp-dev libbpf-dev libev-dev libhugetlbfs-dev); skipped"
		exit 77
	}
done

tag=vl2$$
nsa=$tag-a
nsb=$tag-b
work=$(mktemp -d "${TMPDIR:-/tmp}/vhu-l2fwd.XXXXXX")
hp_saved=

cleanup() {
	kill_children
	ip netns del "$nsa" 2>/dev/null
	ip netns del "$nsb" 2>/dev/null
	if [[ -n $hp_saved ]]; then
		echo "$hp_saved" >/proc/sys/vm/nr_hugepages
		umount "$work/huge" 2>/dev/null
	fi
	if [[ ${VHU_KEEP:-0} == 1 ]]; then
		echo "l2fwd: kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# net_up [QUEUES]: the namespaces and the veth pair (va in A, vb in B).
net_up() {
	local q=${1:-1} ns
	ip netns add "$nsa" && ip netns add "$nsb" || return 1
	ip link add "$tag"a numrxqueues "$q" numtxqueues "$q" type veth \
		peer name "$tag"b numrxqueues "$q" numtxqueues "$q" || return 1
	ip link set "$tag"a netns "$nsa" && ip link set "$tag"b netns "$nsb" || return 1
	ip -n "$nsa" link set "$tag"a name va && ip -n "$nsb" link set "$tag"b name vb || return 1
	for ns in "$nsa" "$nsb"; do
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
	done
	ip netns exec "$nsa" ethtool -K va rx off tx off tso off gso off gro off >/dev/null 2>&1
	ip netns exec "$nsb" ethtool -K vb rx off tx off tso off gso off gro off >/dev/null 2>&1
	ip -n "$nsa" link set va up && ip -n "$nsb" link set vb up
}

net_down() {
	ip netns del "$nsa" 2>/dev/null
	ip netns del "$nsb" 2>/dev/null
	true
}

# start_l2fwd DIR [ARGS...]: vhu-l2fwd in namespace A on va (pid in $l2_pid).
start_l2fwd() {
	local dir=$1
	shift
	spawn "$dir/l2fwd.out" "$dir/l2fwd.err" ip netns exec "$nsa" \
		"$l2fwd" --socket "$dir/sock" --iface va "$@"
	l2_pid=$VHU_LAST_PID
}

# stop_l2fwd DIR: SIGTERM; exit status 0, XDP program gone.
stop_l2fwd() {
	local dir=$1 rc=0
	stop_pid "$l2_pid" TERM 5 || rc=$?
	((rc == 0)) || case_error "vhu-l2fwd exited with status $rc"
	grep -q '^final: ' "$dir/l2fwd.out" || case_error "no final stats line"
	if ip -n "$nsa" link show va 2>/dev/null | grep -q xdp; then
		case_error "XDP program still attached after SIGTERM"
	fi
}

# run_fe DIR CASE [ARGS...]: l2fwd-fe in namespace B; its failures count.
run_fe() {
	local dir=$1 name=$2 rc=0
	shift 2
	timeout -k 5 120 ip netns exec "$nsb" "$fe" --socket "$dir/sock" --iface vb \
		--case "$name" "$@" >"$dir/fe-$name.out" 2>&1 || rc=$?
	sed 's/^/  /' "$dir/fe-$name.out"
	((rc == 0)) || case_error "l2fwd-fe --case $name failed (status $rc)"
}

# stat_of DIR KEY: the value of KEY= on vhu-l2fwd's final line.
stat_of() {
	grep '^final: ' "$1/l2fwd.out" | tail -n 1 | sed 's/[ {}]/\n/g' |
		awk -F= -v k="$2" '$1 == k { print $2; exit }'
}

# fe_case NAME FE_CASE L2FWD_ARGS... -- FE_ARGS...
fe_case() {
	local name=$1 fcase=$2 dir=$work/$1 a
	local -a la=() fa=()
	shift 2
	while (($#)); do
		a=$1
		shift
		[[ $a == -- ]] && break
		la+=("$a")
	done
	fa=("$@")
	mkdir -p "$dir"
	net_up "${NETQ:-1}" || case_error "cannot create namespaces/veth"
	start_l2fwd "$dir" "${la[@]}"
	wait_for "$dir/l2fwd.out" '^vhu-l2fwd: (listening|connecting)' 10 "$l2_pid" ||
		case_error "vhu-l2fwd did not start"
	run_fe "$dir" "$fcase" "${fa[@]}"
	stop_l2fwd "$dir"
	echo "  $(grep '^final: ' "$dir/l2fwd.out" | cut -c1-160)..."
	net_down
}

# expect WHAT RC WANT_RC PATTERN OUT: status and message of a failed start.
expect() {
	if (($2 != $3)) || ! grep -q -- "$4" "$5"; then
		case_error "$1: status $2 (want $3), $(tail -n 2 "$5" | tr '\n' ' ')"
	fi
}

case_errors() {
	local dir=$work/errors rc
	mkdir -p "$dir"
	net_up 1 || case_error "cannot create namespaces/veth"
	rc=0
	ip netns exec "$nsa" "$l2fwd" --socket "$dir/s" --iface nosuch0 >"$dir/o" 2>&1 || rc=$?
	expect "missing interface" $rc 1 "no interface 'nosuch0'" "$dir/o"
	rc=0
	ip netns exec "$nsa" setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$l2fwd" --socket "$dir/s" --iface va >"$dir/o" 2>&1 || rc=$?
	expect "no privileges" $rc 1 'run as root' "$dir/o"
	rc=0
	ip netns exec "$nsa" "$l2fwd" --socket "$dir/s" --iface lo --xdp-mode native >"$dir/o" 2>&1 || rc=$?
	expect "XDP not loadable" $rc 1 'cannot attach the XDP program' "$dir/o"
	rc=0
	ip netns exec "$nsa" "$l2fwd" --socket "$dir/s" --iface va --queue-id 3 >"$dir/o" 2>&1 || rc=$?
	expect "queue the NIC lacks" $rc 1 'that many queues' "$dir/o"
	rc=0
	"$l2fwd" --help >"$dir/o" 2>&1 || rc=$?
	expect "--help" $rc 0 '^usage: vhu-l2fwd' "$dir/o"
	rc=0
	"$l2fwd" --iface va >"$dir/o" 2>&1 || rc=$?
	expect "missing --socket" $rc 2 '^usage: vhu-l2fwd' "$dir/o"
	[[ ! -S $dir/s ]] || case_error "a socket was left behind"
	if ip -n "$nsa" link show va | grep -q xdp; then
		case_error "an XDP program was left on va"
	fi
	net_down
}

case_idle() {
	local dir=$work/idle t0 t1 used
	mkdir -p "$dir"
	net_up 1 || case_error "cannot create namespaces/veth"
	start_l2fwd "$dir"
	wait_for "$dir/l2fwd.out" '^vhu-l2fwd: listening' 10 "$l2_pid" || case_error "did not start"
	run_fe "$dir" flow
	# the data plane sleeps once the traffic stopped: under 10% of a core
	# (ip netns exec execs vhu-l2fwd: same pid)
	t0=$(awk '{ print $14 + $15 }' "/proc/$l2_pid/stat")
	sleep 3
	t1=$(awk '{ print $14 + $15 }' "/proc/$l2_pid/stat")
	used=$((t1 - t0)) # clock ticks (100/s) over 3 s
	echo "  idle CPU: $used ticks in 3 s"
	((used < 30)) || case_error "idle vhu-l2fwd used $used ticks in 3 s"
	stop_l2fwd "$dir"
	net_down
}

# takeover: vhu-l2fwd killed with SIGKILL leaves its XDP program on the
# NIC; the next one takes the NIC back by itself and forwards; a second
# one while it lives is refused; SIGTERM then detaches everything.
case_takeover() {
	local dir=$work/takeover rc
	mkdir -p "$dir"
	net_up 1 || case_error "cannot create namespaces/veth"
	start_l2fwd "$dir"
	wait_for "$dir/l2fwd.out" '^vhu-l2fwd: listening' 10 "$l2_pid" || case_error "did not start"
	kill -KILL "$l2_pid"
	wait "$l2_pid" 2>/dev/null
	ip -n "$nsa" link show va | grep -q xdp ||
		case_error "no XDP program left by the killed instance (nothing to test)"
	start_l2fwd "$dir"
	wait_for "$dir/l2fwd.out" '^vhu-l2fwd: listening' 10 "$l2_pid" ||
		case_error "the next instance did not start: $(tail -n 2 "$dir/l2fwd.err")"
	# The kernel may still be releasing the dead instance's program when
	# the next one starts (then nothing is left to detach); either way
	# the program attached now is the new instance's own, so SIGTERM
	# must leave nothing (stop_l2fwd), which a reused leftover did not.
	if grep -q 'detached the XDP program a previous vhu-l2fwd left on va' "$dir/l2fwd.out"; then
		echo "  the next instance detached the program the killed one left"
	else
		echo "  the killed instance's program was gone by the time the next one started"
	fi
	rc=0
	ip netns exec "$nsa" timeout 10 "$l2fwd" --socket "$dir/sock2" --iface va \
		>"$dir/second.out" 2>&1 || rc=$?
	expect "a second instance" $rc 1 "another vhu-l2fwd (pid $l2_pid) serves va" "$dir/second.out"
	run_fe "$dir" flow
	stop_l2fwd "$dir"
	ls /run/vhu-l2fwd.*.va.lock 2>/dev/null | while read -r f; do
		[[ $(cat "$f" 2>/dev/null) == "$l2_pid" ]] && case_error "lock file $f left after SIGTERM"
	done
	net_down
}

case_hugepages() {
	local dir=$work/hugepages
	mkdir -p "$dir/../huge"
	hp_saved=$(cat /proc/sys/vm/nr_hugepages)
	echo $((hp_saved + 8)) >/proc/sys/vm/nr_hugepages
	mount -t hugetlbfs none "$work/huge" || case_error "cannot mount hugetlbfs"
	fe_case hugepages flow --hugepages on
	grep -q 'on 2048 KiB hugepages' "$work/hugepages/l2fwd.out" ||
		case_error "UMEM not on hugepages: $(grep UMEM "$work/hugepages/l2fwd.out")"
	umount "$work/huge"
	echo "$hp_saved" >/proc/sys/vm/nr_hugepages
	hp_saved=
}

for c in $cases; do
	case_begin "l2fwd $c"
	case $c in
	errors) case_errors ;;
	flow) fe_case flow flow --stats 1 ;;
	packed) fe_case packed flow -- --packed ;;
	native) fe_case native flow --xdp-mode native ;;
	mq) NETQ=2 fe_case mq flow --queue-id 0,1 -- --pairs 2 ;;
	oversize)
		fe_case oversize oversize
		[[ $(stat_of "$work/oversize" mtu) -ge 1 ]] || case_error "no mtu drop counted"
		[[ $(stat_of "$work/oversize" too_big) -ge 1 ]] || case_error "no too_big drop counted"
		[[ $(stat_of "$work/oversize" runt) -ge 1 ]] || case_error "no runt drop counted"
		(($(stat_of "$work/oversize" csum) + $(stat_of "$work/oversize" bad_header) >= 1)) ||
			case_error "no drop counted for the bad checksum offset"
		;;
	norxbuf)
		fe_case norxbuf norxbuf
		[[ $(stat_of "$work/norxbuf" no_buffers) -ge 100 ]] ||
			case_error "no_buffers=$(stat_of "$work/norxbuf" no_buffers), want >= 100"
		;;
	reconnect) fe_case reconnect reconnect ;;
	client-reconnect) fe_case client-reconnect reconnect --client -- --listen ;;
	rarp) fe_case rarp rarp ;;
	bpffs)
		l2fwd_real=$l2fwd
		# ip netns exec gives a private mount namespace: bpffs stays there
		cat >"$work/bpffs-l2fwd" <<-EOF
			#!/bin/sh
			mount -t bpf bpf /sys/fs/bpf || exit 1
			exec "$l2fwd_real" "\$@"
		EOF
		chmod +x "$work/bpffs-l2fwd"
		l2fwd=$work/bpffs-l2fwd
		fe_case bpffs flow
		l2fwd=$l2fwd_real
		grep -q 'No bpffs' "$work/bpffs/l2fwd.err" && case_error "bpffs was not mounted"
		;;
	hugepages) case_hugepages ;;
	takeover) case_takeover ;;
	bench) fe_case bench bench ;;
	idle) case_idle ;;
	*) case_error "unknown case" ;;
	esac
	case_end "$work/$c/l2fwd.out" "$work/$c/l2fwd.err"
done

summary
