#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# qemu-migrate.sh BUILD_DIR - a running Linux guest live-migrates between two
# vhu-l2fwd ports with its traffic intact.
#
# The LAN: namespace L holds a bridge with 10.78.0.2/24 and two veth pairs
# whose far ends are bridge ports; the near ends are in namespaces A and B,
# each served by one vhu-l2fwd (AF_XDP, as in qemu-l2fwd.sh).  QEMU 7.2 (TCG,
# 512 MiB of shared memfd memory) boots the test guest (scripts/guest-image.sh)
# on port A; a second QEMU with the same command line waits on port B
# (-incoming).  Both have a QMP socket, driven by a small client over socat.
# The guest takes 10.78.0.1/24 and, round after round, receives a TCP stream
# from L (busybox nc; 1 MiB chunks of random data, paced), prints the
# stream's SHA-256 and length on its console, then pings L and prints the
# result.  A stream starts before the migration and ends after it: the
# sender stops only once the migration is over (and no sooner than
# VHU_STREAM_MIB MiB); the host compares the checksum with what it sent.
#
# Cases (VHU_MIGRATE_CASES="split mq" picks some):
#   split     A -> B; the stream completes on B, the guest pings from B; the
#             source ends in postmigrate, port A saw the device stop and the
#             front-end go, port B got the device and the traffic, the
#             bridge learnt the guest's new port (GUEST_ANNOUNCE or RARP)
#   packed    the same with packed rings (packed=on; RING_PACKED checked)
#   mq        2 queue pairs (-smp 2, queues=2, mq=on)
#   back      A -> B -> A (a third QEMU on port A's socket once the first
#             has quit); one stream across both moves
#   cancel    a slow migration cancelled midway: the guest stays on A and
#             its stream completes there; then a second stream and a
#             migration to B that completes
#   memcheck  destination started with -S: once migrated, both sides paused,
#             all 512 MiB of guest memory dumped on each (pmemsave) and
#             compared page by page (any differing 4 KiB page fails the
#             case); then `cont` and the stream completes on B
#   rxhold    the guest's eth0 is down (its receive buffers posted, unread)
#             while UDP datagrams arrive through A during the migration:
#             pages only the back-end writes and only its dirty log brings
#             over (the pages of buffers this guest has read reach the
#             destination anyway, so the cases above pass even when the
#             back-end logs nothing: see README.md); memory
#             compared as in memcheck, then the guest on B must read every
#             datagram intact
#   rxhold-packed  the same with packed rings
# Each case prints the migration's figures from query-migrate (total time,
# downtime, dirty-sync-count, RAM sent) and the stream's bytes and checksum.
# VHU_MIGRATE_MIBPS (32) is the migration bandwidth, VHU_KEEP=1 keeps the
# work directory.  Needs root.  Last line: "N passed, N failed".
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/interop/common.sh
. "$here/common.sh"
# shellcheck source=test/interop/qmp.sh
. "$here/qmp.sh"

[[ $# == 1 ]] || {
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
}
build=$(cd "$1" && pwd)
l2fwd=$build/examples/vhu-l2fwd
cases=${VHU_MIGRATE_CASES:-split packed mq back cancel memcheck rxhold rxhold-packed}
boot_timeout=${VHU_BOOT_TIMEOUT:-120}
mig_timeout=${VHU_MIGRATE_TIMEOUT:-120}
xfer_timeout=${VHU_XFER_TIMEOUT:-180}
mig_mibps=${VHU_MIGRATE_MIBPS:-32}
cancel_mibps=4          # the migration that is cancelled
downtime_ms=300         # migrate-set-parameters downtime-limit
stream_mib=${VHU_STREAM_MIB:-48} # each stream sends at least this much
tail_mib=4              # ... and this much after the migration is over
pace=${VHU_STREAM_PACE:-0.3} # seconds per MiB sent: about 3 MiB/s at most
qemu_life=420           # no QEMU outlives this (seconds)
hold_s=15               # rxhold: guest seconds with eth0 down
hold_frames=200         # rxhold: at most this many UDP datagrams sent to it, one per 40 ms
mem_mib=512             # guest memory (qemu_start)
guest_mac=52:54:00:12:34:56

fail_early() {
	echo "qemu-migrate: $*" >&2
	echo "0 passed, 1 failed"
	exit 1
}
[[ $(id -u) == 0 ]] || fail_early "needs root (namespaces, XDP)"
[[ -x $l2fwd ]] || fail_early "$l2fwd not built"
command -v "$VHU_QEMU" >/dev/null || fail_early "$VHU_QEMU not found (apt-get install qemu-system-x86)"
command -v busybox >/dev/null || fail_early "busybox not found (apt-get install busybox-static)"
command -v socat >/dev/null || apt_install socat || fail_early "socat not found (apt-get install socat)"

tag=vm$$
nsl=$tag-lan
nsa=$tag-a
nsb=$tag-b
work=$(mktemp -d "${TMPDIR:-/tmp}/vhu-qemu-migrate.XXXXXX")
on_exit() {
	kill_children
	netns_del "$nsl" "$nsa" "$nsb"
	if [[ ${VHU_KEEP:-0} == 1 ]]; then
		echo "qemu-migrate: kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "qemu-migrate: guest image"
guest_image "$work" || fail_early "no guest image"
# the streams send 1 MiB chunks of this, round and round
head -c 64M /dev/urandom >"$work/stream.bin" || fail_early "no random data"

# --- the LAN -------------------------------------------------------------------

net_up() {
	local ns
	for ns in "$nsl" "$nsa" "$nsb"; do
		ip netns add "$ns" || return 1
		# no IPv6 chatter flooding the guest
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	done
	ip -n "$nsl" link add br0 type bridge &&
		veth_pair "${tag}a" "$nsa" va "$nsl" pa &&
		veth_pair "${tag}b" "$nsb" vb "$nsl" pb &&
		ip -n "$nsl" link set pa master br0 && ip -n "$nsl" link set pb master br0 || return 1
	ip netns exec "$nsl" ethtool -K br0 tx off tso off gso off gro off >/dev/null 2>&1
	ip -n "$nsl" addr add 10.78.0.2/24 dev br0 &&
		ip -n "$nsl" link set br0 up && ip -n "$nsl" link set lo up
}

net_down() {
	netns_del "$nsl" "$nsa" "$nsb"
}

# --- the guest -------------------------------------------------------------------

# What the guest runs (on the kernel command line: no double quotes).  Round
# r = 1, 2, ...: listen on port 5000+r, print "VHU-T: listen r"; hash and
# count what arrives; "VHU-T: got r <sha256> <bytes>"; ping the LAN,
# "VHU-T: ping r ok <round-trip line>" or "... failed".
# With guest_mode=rxhold instead: eth0 down for $hold_s seconds (the driver
# stops reading its receive queue, its buffers stay posted: what the
# back-end writes there the guest does not touch), "VHU-T: down" ... "VHU-T:
# up"; then its UDP counters ("VHU-T: udp Udp: InDatagrams NoPorts ...") and
# ping 1.
guest_cmd() {
	local t="echo VHU-T:"
	if [[ ${guest_mode:-stream} == rxhold ]]; then
		echo "ip addr add 10.78.0.1/24 dev eth0; $t addr; ip link set eth0 down; $t down;" \
			"sleep $hold_s; ip link set eth0 up; $t up; sleep 2;" \
			"$t udp \$(grep Udp: /proc/net/snmp | tail -n 1);" \
			"$(guest_ping_cmd 10.78.0.2 "ping 1")" \
			"sleep 600"
		return
	fi
	echo "ip addr add 10.78.0.1/24 dev eth0; $t addr; r=1;" \
		"while [ \$r -le 9 ]; do mkfifo /tmp/f\$r; sha256sum </tmp/f\$r >/tmp/s\$r &" \
		"$t listen \$r; n=\$(nc -l -p \$((5000 + r)) | tee /tmp/f\$r | wc -c); wait;" \
		"$t got \$r \$(cut -c1-64 /tmp/s\$r) \$n;" \
		"$(guest_ping_cmd 10.78.0.2 "ping \$r")" \
		"r=\$((r + 1)); done; sleep 600"
}

# qemu_guest N PORT [QEMU_ARG...]: QEMU N on port PORT's (a|b) socket, QMP
# on DIR/qmp-N.sock; pid in qpid[N].
declare -A qpid=()
qemu_guest() {
	local n=$1 port=$2
	shift 2
	echo "  QEMU $n on port ${port^^}${*:+: $*}"
	qemu_start "$dir" "$n" "$qemu_life" "$smp" "socket,id=c0,path=$dir/sock-$port" \
		"$netdev" "$device" "$(guest_cmd)" \
		-qmp "unix:$dir/qmp-$n.sock,server=on,wait=off" "$@"
	qpid[$n]=$qemu_pid
	wait_for_socket "$dir/qmp-$n.sock" 20 "$qemu_pid" || case_error "QEMU $n: no QMP socket"
}

# console_has N REGEX: guest N's console has a line matching.
console_has() {
	tr -d '\r' <"$dir/console-$1.log" 2>/dev/null | grep -qE -- "$2"
}

# --- migration -------------------------------------------------------------------

# qmp, run_state, qmp_ok, quit_qemu, migrate, migrate_wait,
# migrate_completed, mig_figures: qmp.sh

# migrate_done FROM TO [ROUND]: wait for the migration FROM -> TO to
# complete; print its figures; check stream ROUND was still running then.
migrate_done() {
	local from=$1 to=$2 round=${3:-}
	migrate_completed "$from" "$to" "migration $from -> $to" "$mig_timeout" || return 1
	echo "  migration $from -> $to completed: $(mig_figures)"
	[[ -z $round ]] && return 0
	if grep -qE "^VHU-T: got $round " <(cat "$dir"/console-*.log | tr -d '\r'); then
		case_error "stream $round ended before the migration completed: lengthen it (VHU_STREAM_MIB)"
	fi
}

# --- vhu-l2fwd ---------------------------------------------------------------

# l2fwd_start PORT: vhu-l2fwd in port PORT's namespace on its veth end,
# serving DIR/sock-PORT; counters every second.  Pid in l2pid[PORT].
declare -A l2pid=()
l2fwd_start() {
	local port=$1 ns
	ns=$tag-$port
	spawn "$dir/l2fwd-$port.out" "$dir/l2fwd-$port.err" ip netns exec "$ns" \
		"$l2fwd" --socket "$dir/sock-$port" --iface "v$port" --stats 1
	l2pid[$port]=$VHU_LAST_PID
	wait_for "$dir/l2fwd-$port.out" '^vhu-l2fwd: listening' 10 "$VHU_LAST_PID" ||
		case_error "vhu-l2fwd on port ${port^^} did not start"
}

# l2_stat PORT SIDE KEY: KEY's value on port PORT's last counter line, SIDE
# 1 for guest->nic, 2 for nic->guest (0 before the first line).
l2_stat() {
	l2fwd_stat "$dir/l2fwd-$1.out" "$2" "$3"
}

# wait_l2_bytes PORT MIB SECONDS: until port PORT has carried MIB MiB more to
# the guest than $l2_base (its nic->guest bytes when the wait was set up).
wait_l2_bytes() {
	local port=$1 want=$(($2 << 20)) end=$((SECONDS + $3))
	while ((SECONDS < end)); do
		(($(l2_stat "$port" 2 bytes) - l2_base >= want)) && return 0
		sleep 0.5
	done
	return 1
}

# l2_fresh PORT: wait for port PORT's next counter line (up to 3 s).
l2_fresh() {
	local n end=$((SECONDS + 3))
	n=$(l2_count "$1" '^stats: ')
	while (($(l2_count "$1" '^stats: ') <= n)) && ((SECONDS < end)); do
		sleep 0.1
	done
}

# l2_count PORT REGEX: lines of port PORT's output matching.
l2_count() {
	grep -cE -- "$2" "$dir/l2fwd-$1.out" 2>/dev/null || true
}

# wait_l2_count PORT REGEX N SECONDS: until N lines of port PORT's output
# match REGEX.
wait_l2_count() {
	local port=$1 re=$2 n=$3 end=$((SECONDS + $4))
	while (($(l2_count "$port" "$re") < n)); do
		((SECONDS < end)) || return 1
		sleep 0.2
	done
}

# l2_features PORT first|last: the features of its first/last "guest ready".
l2_features() {
	grep -E '^vhu-l2fwd: guest ready' "$dir/l2fwd-$1.out" 2>/dev/null |
		if [[ $2 == first ]]; then head -n 1; else tail -n 1; fi | sed -n 's/.*features //p'
}

# l2fwd_stop PORT: stop it; it must exit 0, detach XDP and have broken no queue.
l2fwd_stop() {
	local port=$1 rc=0
	stop_pid "${l2pid[$port]}" TERM 10 || rc=$?
	((rc == 0)) || case_error "vhu-l2fwd on port ${port^^} exited with status $rc"
	ip -n "$tag-$port" link show "v$port" 2>/dev/null | grep -q xdp &&
		case_error "port ${port^^}: XDP program left attached"
	grep -q 'broke' "$dir/l2fwd-$port.err" &&
		case_error "port ${port^^}: $(grep -m1 broke "$dir/l2fwd-$port.err")"
	echo "  port ${port^^} $(grep -E '^final: ' "$dir/l2fwd-$port.out" | tail -n 1 |
		awk -F'|' '{ print $1 "|" $2 }' | sed -E 's/ drop\{[^}]*\}//g; s/^final: //')"
	if grep -qE 'vhu [^:]*: (error|warning):' "$dir/l2fwd-$port.err"; then
		echo "  port ${port^^} library log (errors, warnings):"
		grep -E 'vhu [^:]*: (error|warning):' "$dir/l2fwd-$port.err" | sort | uniq -c | sort -rn | head -n 5 | sed 's/^/  | /'
	fi
}

# --- the stream --------------------------------------------------------------

# send_stream R: the sender of round R, in the LAN namespace: 1 MiB chunks
# of stream.bin, one every $pace s, until DIR/stop-R's count is reached (and
# at least stream_mib); the count so far in DIR/count-R.  Retries the
# connection while the guest is not yet listening.
send_stream() {
	local r=$1 try i stop
	echo 0 >"$dir/count-$r"
	for ((try = 0; try < 10; try++)); do
		i=0
		{
			while ((i < 1000)); do
				dd if="$work/stream.bin" bs=1M skip=$((i % 64)) count=1 2>/dev/null || break
				i=$((i + 1))
				echo "$i" >"$dir/count-$r"
				stop=$(cat "$dir/stop-$r" 2>/dev/null)
				[[ -n $stop ]] && ((i >= stop && i >= stream_mib)) && break
				sleep "$pace"
			done
		} | ip netns exec "$nsl" busybox nc 10.78.0.1 $((5000 + r))
		(($(cat "$dir/count-$r") > 0)) && return 0
		sleep 1
	done
	return 1
}

# stream_start R N: wait for guest N to listen for round R, start the sender.
stream_start() {
	local r=$1 n=$2 rc=0
	rm -f "$dir/stop-$r" "$dir/count-$r"
	wait_for "$dir/console-$n.log" "^VHU-T: listen $r|^VHU-GUEST: FAIL" "$boot_timeout" "${qpid[$n]}" || rc=$?
	if ((rc != 0)) || console_has "$n" '^VHU-GUEST: FAIL'; then
		case_error "guest $n not listening for stream $r (wait rc $rc)$(tr -d '\r' <"$dir/console-$n.log" | grep -m1 FAIL)"
		return 1
	fi
	spawn "$dir/sender-$r.out" "$dir/sender-$r.err" send_stream "$r"
	spid[$r]=$VHU_LAST_PID
}
declare -A spid=()

# stream_flowing R PORT: stream R runs through PORT: 4 MiB sent and 2 MiB
# carried to the guest by that port since $l2_base.
stream_flowing() {
	local r=$1 port=$2 end=$((SECONDS + 60))
	while ((SECONDS < end)) && (($(cat "$dir/count-$r" 2>/dev/null || echo 0) < 4)); do
		sleep 0.5
	done
	wait_l2_bytes "$port" 2 $((end - SECONDS > 0 ? end - SECONDS : 1)) || {
		case_error "stream $r does not reach the guest through port ${port^^} ($(cat "$dir/count-$r" 2>/dev/null) MiB sent)"
		return 1
	}
	fdb_wait "$port" || case_error "the bridge has not learnt $guest_mac on p$port"
	echo "  stream $r flowing through port ${port^^}: $(cat "$dir/count-$r") MiB sent"
}

# stream_finish R: the sender stops $tail_mib MiB from now (or at stream_mib).
stream_finish() {
	echo $(($(cat "$dir/count-$1" 2>/dev/null || echo 0) + tail_mib)) >"$dir/stop-$1"
}

# stream_check R N PORT: stream R completes on guest N (and on no other
# console) with the sent checksum; then its ping from PORT works.
stream_check() {
	local r=$1 n=$2 port=$3 rc=0 got want sent line c
	wait_for "$dir/console-$n.log" "^VHU-T: got $r " "$xfer_timeout" "${qpid[$n]}" || rc=$?
	stop_pid "${spid[$r]}" TERM 10 || true
	sent=$(cat "$dir/count-$r" 2>/dev/null || echo 0)
	if ((rc != 0)); then
		case_error "stream $r did not complete on guest $n (wait rc $rc, $sent MiB sent; sender: $(tail -c 200 "$dir/sender-$r.err"))"
		return 1
	fi
	for c in "$dir"/console-*.log; do
		[[ $c == "$dir/console-$n.log" ]] && continue
		tr -d '\r' <"$c" | grep -qE "^VHU-T: got $r " &&
			case_error "stream $r also completed in $(basename "$c")"
	done
	want=$(for ((i = 0; i < sent; i++)); do
		dd if="$work/stream.bin" bs=1M skip=$((i % 64)) count=1 2>/dev/null
	done | sha256sum | cut -d' ' -f1)
	line=$(guest_line "$dir" "$n" "got $r")
	got=$(cut -d' ' -f1 <<<"$line")
	if [[ $got != "$want" || $(cut -d' ' -f2 <<<"$line") != $((sent << 20)) ]]; then
		case_error "stream $r: guest got '$line', sent $((sent << 20)) bytes, sha256 $want"
	else
		echo "  stream $r: $((sent << 20)) bytes ($sent MiB), sha256 ${want:0:16}... matches (guest $n)"
	fi
	rc=0
	wait_for "$dir/console-$n.log" "^VHU-T: ping $r " 40 "${qpid[$n]}" || rc=$?
	line=$(guest_line "$dir" "$n" "ping $r")
	if [[ $line == ok* ]]; then
		echo "  guest $n -> LAN ping over port ${port^^}: ${line#ok }"
	else
		case_error "guest $n -> LAN ping over port ${port^^}: ${line:-none} (wait rc $rc)"
	fi
}

# --- checks after a migration ----------------------------------------------------

# check_source N PORT: the source QEMU N is in postmigrate; its port saw the
# device stop; once it quit, the port saw the front-end go and lives on.
check_source() {
	local n=$1 port=$2 st stops=$3
	st=$(run_state "$n")
	[[ $st == postmigrate ]] || case_error "source QEMU $n is in state '$st', want postmigrate"
	wait_l2_count "$port" '^vhu-l2fwd: guest stopped$' "$stops" 10 ||
		case_error "port ${port^^} did not see the device stop (guest stopped) after the migration"
	quit_qemu "$n"
	wait_l2_count "$port" '^vhu-l2fwd: front-end disconnected$' "$stops" 10 ||
		case_error "port ${port^^} did not see QEMU $n go"
	alive "${l2pid[$port]}" || case_error "vhu-l2fwd on port ${port^^} died"
}

# fdb_wait PORT: until the bridge has learnt the guest's MAC on PORT's
# bridge port (10 s).
fdb_wait() {
	local end=$((SECONDS + 10))
	while ((SECONDS < end)); do
		bridge -n "$nsl" fdb show br br0 2>/dev/null | grep -qi "^$guest_mac dev p$1 " && return 0
		sleep 0.2
	done
	return 1
}

# check_destination N PORT NTH [NOFDB]: QEMU N runs the guest; the port got
# the device (its NTH "guest ready"), every queue (each enabled NTH times),
# the features the source's port had; the guest announced itself
# (GUEST_ANNOUNCE negotiated: its own gratuitous ARPs; else QEMU's SEND_RARP,
# which vhu-l2fwd broadcasts) and, unless NOFDB, the LAN's bridge knows it
# is behind PORT.
check_destination() {
	local n=$1 port=$2 nth=$3 nofdb=${4:-0} st fa fb q f
	st=$(run_state "$n")
	[[ $st == running ]] || case_error "destination QEMU $n is in state '$st', want running"
	wait_l2_count "$port" '^vhu-l2fwd: guest ready' "$nth" 20 ||
		case_error "port ${port^^}: the migrated device never got ready"
	f=$(guest_features "$dir/console-1.log")
	if [[ -n $f && $(feature_bit "$f" 21) == 1 ]]; then
		echo "  GUEST_ANNOUNCE negotiated: the guest announces itself; port ${port^^} RARPs from SEND_RARP: $(l2_count "$port" "^vhu-l2fwd: RARP for ")"
	elif wait_for "$dir/l2fwd-$port.out" "^vhu-l2fwd: RARP for $guest_mac" 10 "${l2pid[$port]}"; then
		echo "  no GUEST_ANNOUNCE: port ${port^^} broadcast the RARP QEMU asked for (SEND_RARP)"
	else
		case_error "port ${port^^}: no RARP for $guest_mac (SEND_RARP) after the migration, and no GUEST_ANNOUNCE"
	fi
	((nofdb)) || fdb_wait "$port" ||
		case_error "the bridge has not learnt $guest_mac on p$port: $(bridge -n "$nsl" fdb show br br0 | grep -i "$guest_mac")"
	for ((q = 0; q < 2 * pairs; q++)); do
		(($(l2_count "$port" "^vhu-l2fwd: queue $q enabled\$") >= nth)) ||
			case_error "port ${port^^}: queue $q not enabled after the migration"
	done
	fa=$(l2_features a first)
	fb=$(l2_features "$port" last)
	[[ -n $fa && $fa == "$fb" ]] ||
		case_error "features: port A's first device had ${fa:-?}, port ${port^^}'s last ${fb:-?}"
}

# check_guest_packed N: guest N's driver accepted RING_PACKED exactly when
# the case is packed.
check_guest_packed() {
	local f
	f=$(guest_features "$dir/console-$1.log")
	if [[ -z $f ]]; then
		case_error "guest $1 did not print its features"
	elif [[ $(feature_bit "$f" 34) != "$packed" ]]; then
		case_error "guest $1: RING_PACKED (bit 34) is $(feature_bit "$f" 34), want $packed ($(printf 0x%x "$f"))"
	else
		echo "  guest driver features $(printf 0x%x "$f") (port A: $(l2_features a first))"
	fi
}

# --- memcheck ----------------------------------------------------------------

# memcompare A B: compare two memory dumps page by page (4 KiB); print the
# count and the first 20 differing pages; 0 when they are equal.
memcompare() {
	local a=$1 b=$2 sa sb out
	sa=$(stat -c %s "$a" 2>/dev/null || echo 0)
	sb=$(stat -c %s "$b" 2>/dev/null || echo 0)
	if ((sa != mem_mib << 20 || sb != mem_mib << 20)); then
		case_error "memory dumps are $sa and $sb bytes, want $((mem_mib << 20))"
		return 1
	fi
	out=$(cmp -l "$a" "$b" | awk '
		BEGIN { last = -1 }
		NR > 20000000 { over = 1; exit }
		{ p = int(($1 - 1) / 4096)
		  if (p != last) { n++; last = p; if (n <= 20) list = list sprintf(" 0x%x", p * 4096) } }
		END { printf "%d%s%s\n", n, over ? "+" : "", list }')
	if [[ ${out%% *} == 0 ]]; then
		echo "  memory: all $((mem_mib << 8)) pages of 4 KiB equal on both sides"
		return 0
	fi
	case_error "memory: ${out%% *} pages of 4 KiB differ between source and destination; first ones at:${out#* }"
	return 1
}

# --- cases -----------------------------------------------------------------------

# case_up NAME DEVICE_EXTRA PAIRS: work directory, LAN, both ports, the
# guest booting as QEMU 1 on port A.
case_up() {
	local name=$1 extra=$2
	pairs=$3
	dir=$work/$name
	case_begin "qemu-migrate $name"
	mkdir -p "$dir"
	qpid=()
	spid=()
	net_up || case_error "cannot create the namespaces, bridge and veths"
	l2fwd_start a
	l2fwd_start b
	netdev=vhost-user,id=n0,chardev=c0
	device="virtio-net-pci,netdev=n0,vectors=0,mac=$guest_mac,romfile=$extra"
	smp=1
	packed=0
	guest_mode=stream
	[[ $name == rxhold* ]] && guest_mode=rxhold
	[[ $extra == *packed=on* ]] && packed=1
	if ((pairs > 1)); then
		netdev+=",queues=$pairs"
		device+=",mq=on"
		smp=2
	fi
	echo "  qemu ... -smp $smp -netdev $netdev -device $device"
	qemu_guest 1 a
	l2_base=0
}

# case_down: stop everything the case started, count it.
case_down() {
	local n p
	for n in "${!spid[@]}"; do
		stop_pid "${spid[$n]}" TERM 2 || true
	done
	for n in "${!qpid[@]}"; do
		quit_qemu "$n"
	done
	for p in a b; do
		[[ -n ${l2pid[$p]:-} ]] && l2fwd_stop "$p"
	done
	l2pid=()
	net_down
	local logs=() f
	for f in "$dir"/l2fwd-*.out "$dir"/l2fwd-*.err "$dir"/qemu-*.err "$dir"/console-*.log "$dir/qmp-log"; do
		[[ -s $f ]] && logs+=("$f")
	done
	case_end "${logs[@]}"
}

# run_one NAME DEVICE_EXTRA PAIRS [MEMCHECK]: A -> B with a stream across.
run_one() {
	local name=$1 extra=$2 memcheck=${4:-0} st
	local -a dst_args
	case_up "$name" "$extra" "$3"
	dst_args=(-incoming "unix:$dir/mig-2.sock")
	((memcheck)) && dst_args+=(-S)
	qemu_guest 2 b "${dst_args[@]}"
	stream_start 1 1 && stream_flowing 1 a &&
		migrate 1 2 "$mig_mibps" && migrate_done 1 2 1 && {
		if ((memcheck)); then
			st=$(run_state 2)
			[[ $st == paused ]] || case_error "destination QEMU 2 (-S) is in state '$st', want paused"
			st=$(run_state 1)
			[[ $st == postmigrate ]] || case_error "source QEMU 1 is in state '$st', want postmigrate"
			qmp_ok 1 "{\"execute\": \"pmemsave\", \"arguments\": {\"val\": 0, \"size\": $((mem_mib << 20)), \"filename\": \"$dir/mem-1.bin\"}}"
			qmp_ok 2 "{\"execute\": \"pmemsave\", \"arguments\": {\"val\": 0, \"size\": $((mem_mib << 20)), \"filename\": \"$dir/mem-2.bin\"}}"
			memcompare "$dir/mem-1.bin" "$dir/mem-2.bin"
			rm -f "$dir/mem-1.bin" "$dir/mem-2.bin"
			qmp_ok 2 '{"execute": "cont"}'
		fi
		stream_finish 1
		check_source 1 a 1
		check_destination 2 b 1
		stream_check 1 2 b
	}
	check_guest_packed 1
	case_down
}

# run_back: A -> B -> A, one stream across both moves.
run_back() {
	case_up back "" 1
	qemu_guest 2 b -incoming "unix:$dir/mig-2.sock"
	stream_start 1 1 && stream_flowing 1 a &&
		migrate 1 2 "$mig_mibps" && migrate_done 1 2 1 && {
		check_source 1 a 1
		check_destination 2 b 1
		l2_base=$(l2_stat b 2 bytes)
		stream_flowing 1 b
		qemu_guest 3 a -incoming "unix:$dir/mig-3.sock"
		migrate 2 3 "$mig_mibps" && migrate_done 2 3 1 && {
			stream_finish 1
			check_source 2 b 1
			check_destination 3 a 2
			stream_check 1 3 a
		}
	}
	check_guest_packed 1
	case_down
}

# run_cancel: a slow migration cancelled midway; the stream completes on A;
# a second stream across a migration to B that completes.
run_cancel() {
	local before st
	case_up cancel "" 1
	qemu_guest 2 b -incoming "unix:$dir/mig-2.sock"
	stream_start 1 1 && stream_flowing 1 a &&
		migrate 1 2 "$cancel_mibps" && {
		if migrate_wait 1 60 16 && [[ $mig_status == active ]]; then
			echo "  cancelling at $(mig_figures)"
		else
			case_error "migration 1 -> 2 at $cancel_mibps MiB/s: '$mig_status' before 16 MiB were sent"
		fi
		qmp_ok 1 '{"execute": "migrate_cancel"}'
		migrate_wait 1 30
		[[ $mig_status == cancelled ]] || case_error "after migrate_cancel: status '$mig_status'"
		st=$(run_state 1)
		[[ $st == running ]] || case_error "source QEMU 1 is in state '$st' after the cancel, want running"
		wait_exit "${qpid[2]}" 20
		echo "  destination QEMU 2 exited with status $? after the cancel: $(tail -n 1 "$dir/qemu-2.err")"
		unset 'qpid[2]'
		wait_for "$dir/l2fwd-b.out" 'front-end disconnected' 10 "${l2pid[b]}" ||
			case_error "port B did not see QEMU 2 go"
		before=$(l2_stat a 2 bytes)
		l2_base=$before
		wait_l2_bytes a 2 30 || case_error "stream 1 does not continue on port A after the cancel"
		(($(l2_count a '^vhu-l2fwd: guest stopped') == 0)) ||
			case_error "port A saw the device stop during the cancelled migration"
		stream_finish 1
		stream_check 1 1 a
		qemu_guest 3 b -incoming "unix:$dir/mig-3.sock"
		l2_base=$(l2_stat a 2 bytes)
		stream_start 2 1 && stream_flowing 2 a &&
			migrate 1 3 "$mig_mibps" && migrate_done 1 3 2 && {
			stream_finish 2
			check_source 1 a 1
			check_destination 3 b 1
			stream_check 2 3 b
		}
	}
	check_guest_packed 1
	case_down
}

# send_held FILE: UDP datagrams (1000 bytes, port 9) to the guest from the
# LAN, one per 40 ms, until FILE.stop exists (at most hold_frames: the
# guest's receive queue holds 256); the count so far in FILE.
send_held() {
	local i
	exec 3>/dev/udp/10.78.0.1/9 || return 1
	for ((i = 1; i <= hold_frames; i++)); do
		[[ -e $1.stop ]] && break
		printf '%01000d' "$i" >&3
		echo "$i" >"$1"
		sleep 0.04
	done
	exec 3>&-
}

# run_rxhold NAME DEVICE_EXTRA: the guest holds its receive queue (eth0 down) while datagrams
# arrive through port A during the migration: pages only the back-end
# wrote, that only its dirty log can bring to the destination.  Memory of
# both sides compared as in memcheck; then the guest, on B, reads them.
run_rxhold() {
	local rc=0 sent0 sent1 p0 p1 p2 line noports st
	case_up "$1" "$2" 1
	qemu_guest 2 b -incoming "unix:$dir/mig-2.sock" -S
	wait_for "$dir/console-1.log" '^VHU-T: down' "$boot_timeout" "${qpid[1]}" || rc=$?
	if ((rc != 0)); then
		case_error "guest 1 did not take eth0 down (wait rc $rc)"
		case_down
		return
	fi
	# the guest answers no ARP now
	ip -n "$nsl" neigh replace 10.78.0.1 lladdr "$guest_mac" dev br0 nud permanent
	p0=$(l2_stat a 2 pkts)
	echo 0 >"$dir/held-sent"
	(ip netns exec "$nsl" bash -c "$(declare -f send_held); hold_frames=$hold_frames; send_held '$dir/held-sent'" \
		>"$dir/held.out" 2>&1) &
	spid[0]=$!
	sleep 1
	l2_fresh a
	sent0=$(cat "$dir/held-sent")
	p1=$(l2_stat a 2 pkts)
	migrate 1 2 "$mig_mibps" && migrate_done 1 2 && {
		touch "$dir/held-sent.stop"
		sent1=$(cat "$dir/held-sent")
		l2_fresh a # a counter line after the stop
		p2=$(l2_stat a 2 pkts)
		echo "  datagrams sent: $sent0 before the migration, $sent1 when it completed; port A wrote $((p1 - p0)) frames into the held queue before it, $((p2 - p1)) during it"
		((sent1 - sent0 >= 20 && p2 - p1 >= 20)) ||
			case_error "too few datagrams reached the held queue during the migration ($((p2 - p1)))"
		((p2 - p0 < 250)) || case_error "the held queue may have filled up ($((p2 - p0)) frames): send fewer"
		console_has 1 '^VHU-T: up' && case_error "the guest's eth0 came up before the migration completed: raise hold_s"
		st=$(run_state 2)
		[[ $st == paused ]] || case_error "destination QEMU 2 (-S) is in state '$st', want paused"
		qmp_ok 1 "{\"execute\": \"pmemsave\", \"arguments\": {\"val\": 0, \"size\": $((mem_mib << 20)), \"filename\": \"$dir/mem-1.bin\"}}"
		qmp_ok 2 "{\"execute\": \"pmemsave\", \"arguments\": {\"val\": 0, \"size\": $((mem_mib << 20)), \"filename\": \"$dir/mem-2.bin\"}}"
		memcompare "$dir/mem-1.bin" "$dir/mem-2.bin"
		rm -f "$dir/mem-1.bin" "$dir/mem-2.bin"
		qmp_ok 2 '{"execute": "cont"}'
		check_source 1 a 1
		check_destination 2 b 1 1 # eth0 is still down: nothing to learn from
		rc=0
		wait_for "$dir/console-2.log" '^VHU-T: ping 1 ' $((hold_s + 40)) "${qpid[2]}" || rc=$?
		line=$(guest_line "$dir" 2 udp)
		noports=$(awk '{ print $3 }' <<<"$line")
		# every datagram the back-end put in the held queue is read intact
		# on B (a stale page would be a bad frame, dropped)
		if [[ $noports == $((p2 - p0)) ]]; then
			echo "  the guest on B read all $noports held datagrams intact (UDP NoPorts)"
		else
			case_error "the guest on B counted ${noports:-?} UDP datagrams (NoPorts), port A had written $((p2 - p0)): $line"
		fi
		line=$(guest_line "$dir" 2 "ping 1")
		if [[ $line == ok* ]]; then
			echo "  guest 2 -> LAN ping over port B: ${line#ok }"
		else
			case_error "guest 2 -> LAN ping over port B: ${line:-none} (wait rc $rc)"
		fi
		fdb_wait b || case_error "the bridge has not learnt $guest_mac on pb"
	}
	check_guest_packed 1
	case_down
}

net_down # leftovers of an earlier run with this pid: none expected
for c in $cases; do
	case $c in
	split) run_one split "" 1 ;;
	packed) run_one packed ",packed=on" 1 ;;
	mq) run_one mq "" 2 ;;
	memcheck) run_one memcheck "" 1 1 ;;
	rxhold) run_rxhold rxhold "" ;;
	rxhold-packed) run_rxhold rxhold-packed ",packed=on" ;;
	back) run_back ;;
	cancel) run_cancel ;;
	*)
		case_begin "qemu-migrate $c"
		case_error "unknown case"
		case_end
		;;
	esac
done

summary
