#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# qemu-reconnect.sh BUILD_DIR - a switch restart never takes a guest down.
#
# The wire (as in qemu-l2fwd.sh): namespace A holds one end of a veth pair,
# served by vhu-l2fwd over AF_XDP; namespace B holds the other end with
# 10.79.0.2/24 (offloads off, IPv6 off).  QEMU 7.2 (TCG, 512 MiB of shared
# memfd memory) boots the test guest (scripts/guest-image.sh) with a
# virtio-net-pci device on a vhost-user netdev whose socket is vhu-l2fwd's.
# The guest takes 10.79.0.1/24, receives a long TCP stream from B (busybox nc
# piped through sha256sum and wc -c), prints its checksum and length, then
# pings B and prints the result.  The sender (socat in B, with a chosen
# source port) writes 1 MiB chunks of random data, one per 0.25 s (3-4
# MiB/s), and stops only once both restarts are through: VHU_TAIL_MIB (8)
# after the last one, and no sooner than VHU_STREAM_MIB (64) MiB.  The host
# compares the checksum and the length with what it sent.
#
# During the stream vhu-l2fwd is restarted twice, with no new option:
#   1. SIGKILL, and a new instance at once: it takes the NIC back by itself
#      ("detached the XDP program a previous vhu-l2fwd left on va");
#   2. SIGTERM (it detaches XDP itself), and a new instance.
# After each start the new instance must get the device ("guest ready",
# every queue enabled) and carry the stream (1 MiB to the guest, frames
# from it); the time from the stop to each is printed.
#
# Cases (VHU_RECONNECT_CASES="split-server mq" picks some; default all):
#   split-server   vhu-l2fwd listens, QEMU's chardev has reconnect=1
#   split-client   QEMU listens (server=on,wait=off), vhu-l2fwd --client
#   packed-server  packed=on (the guest must accept RING_PACKED, bit 34)
#   packed-client  packed=on, QEMU listens
#   mq             2 queue pairs (-smp 2, netdev queues=2, device mq=on),
#                  vhu-l2fwd listens; two streams (2 MiB/s each) whose source
#                  ports are chosen so that vhu-l2fwd's flow hash puts one on
#                  each pair: both pairs must carry frames to the guest in
#                  each instance that exits (its per-pair counters)
#   outage         packed, vhu-l2fwd listens; the SIGKILL is followed by 30 s
#                  with no back-end (VHU_OUTAGE_S) before the new instance:
#                  TCP backs off, the stream must still complete
# Every case checks: the stream arrives whole (SHA-256 and length), the
# guest pings afterwards, QEMU is still running, the guest's console shows
# no virtio/net error ("output.0:id", "is not a head", "virtio_net.*error",
# "Call Trace", "BUG"), no vhu-l2fwd logged a broken queue, the SIGTERM'd
# instances exit 0 with no XDP program left on va.  Printed: the stream's
# size, time and rate, each restart's times, and each instance's "packed
# ring resumes at slot" lines (the library's packed-ring recovery).
# VHU_KEEP=1 keeps the work directory.  Needs root.  Last line:
# "N passed, N failed".
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
cases=${VHU_RECONNECT_CASES:-split-server split-client packed-server packed-client mq outage}
boot_timeout=${VHU_BOOT_TIMEOUT:-150}   # QEMU start -> the guest listens
ready_timeout=${VHU_READY_TIMEOUT:-60}  # a new vhu-l2fwd -> "guest ready"
flow_timeout=${VHU_FLOW_TIMEOUT:-90}    # a new vhu-l2fwd -> the stream flows
xfer_timeout=${VHU_XFER_TIMEOUT:-180}   # the sender told to stop -> the guest's checksum
case_timeout=${VHU_CASE_TIMEOUT:-360}   # no case waits longer than this in all
stream_mib=${VHU_STREAM_MIB:-64}        # sent in all (split among the streams), at least
tail_mib=${VHU_TAIL_MIB:-8}             # ... and this much per stream after the last restart
pace=${VHU_STREAM_PACE:-0.25}           # seconds per MiB of each single stream
outage_s=${VHU_OUTAGE_S:-30}            # outage: seconds with no back-end
flow_mib=1                              # a restart is through once this went to the guest
mid_mib=4                               # ... and this before the next restart

fail_early() {
	echo "qemu-reconnect: $*" >&2
	echo "0 passed, 1 failed"
	exit 1
}
[[ $(id -u) == 0 ]] || fail_early "needs root (namespaces, XDP)"
[[ -x $l2fwd ]] || fail_early "$l2fwd not built"
command -v "$VHU_QEMU" >/dev/null || fail_early "$VHU_QEMU not found (apt-get install qemu-system-x86)"
command -v busybox >/dev/null || fail_early "busybox not found (apt-get install busybox-static)"
command -v socat >/dev/null || apt_install socat || fail_early "socat not found (apt-get install socat)"

tag=vr$$
nsa=$tag-a
nsb=$tag-b
work=$(mktemp -d "${TMPDIR:-/tmp}/vhu-qemu-reconnect.XXXXXX")
lockfile= # vhu-l2fwd's lock file for va in namespace A (a SIGKILL leaves it)
on_exit() {
	kill_children
	net_down
	if [[ ${VHU_KEEP:-0} == 1 ]]; then
		echo "qemu-reconnect: kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "qemu-reconnect: guest image"
guest_image "$work" || fail_early "no guest image"
# the streams send 1 MiB chunks of this, round and round
head -c 64M /dev/urandom >"$work/stream.bin" || fail_early "no random data"

# --- the wire --------------------------------------------------------------------

net_up() {
	local ns ino
	for ns in "$nsa" "$nsb"; do
		ip netns add "$ns" || return 1
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	done
	veth_pair "$tag" "$nsa" va "$nsb" vb &&
		ip -n "$nsb" addr add 10.79.0.2/24 dev vb && ip -n "$nsb" link set lo up || return 1
	# /run/vhu-l2fwd.NETNS.IF.lock (examples/l2fwd/claim.c): a clean exit
	# removes it, a SIGKILL'd instance's stays until the next clean exit
	ino=$(ip netns exec "$nsa" stat -L -c %i /proc/self/ns/net 2>/dev/null) &&
		lockfile=/run/vhu-l2fwd.$ino.va.lock
	return 0
}

net_down() {
	netns_del "$nsb" "$nsa"
	[[ -n $lockfile ]] && rm -f "$lockfile"
	lockfile=
}

# --- helpers ---------------------------------------------------------------------

# now: seconds since the epoch, with fractions.
now() {
	date +%s.%N
}

# since T0: seconds from T0 to now, one decimal.
since() {
	awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'
}

# tmo SECONDS: SECONDS, or what is left of the case's time if that is less.
tmo() {
	local left=$((deadline - SECONDS))
	((left < 1)) && left=1
	echo $(($1 < left ? $1 : left))
}

# console_has REGEX: the guest's console has a line matching.
console_has() {
	tr -d '\r' <"$dir/console-1.log" 2>/dev/null | grep -qE -- "$1"
}

# --- the guest -------------------------------------------------------------------

# What the guest runs (on the kernel command line: no double quotes).  For
# each stream r (in parallel): "VHU-T: listen r", busybox nc on port 5000+r
# through tee into sha256sum and wc -c, "VHU-T: got r <sha256> <bytes>";
# once all are in, "VHU-T: ping ok <round-trip>" (or "ping failed").
guest_cmd() {
	local t="echo VHU-T:" r par=
	for ((r = 1; r <= nstreams; r++)); do
		par+="rx $r & "
	done
	echo "ip addr add 10.79.0.1/24 dev eth0; $t addr;" \
		"rx() { mkfifo /tmp/f\$1; sha256sum </tmp/f\$1 >/tmp/s\$1 & $t listen \$1;" \
		"n=\$(nc -l -p \$((5000 + \$1)) | tee /tmp/f\$1 | wc -c); wait;" \
		"$t got \$1 \$(cut -c1-64 /tmp/s\$1) \$n; };" \
		"${par}wait; $(guest_ping_cmd 10.79.0.2 ping) sleep 600"
}

# --- vhu-l2fwd -------------------------------------------------------------------

# l2fwd_start K: instance K of vhu-l2fwd on va (output l2fwd-K.out/.err),
# counters every second; pid in $l2pid.
l2fwd_start() {
	local k=$1
	spawn "$dir/l2fwd-$k.out" "$dir/l2fwd-$k.err" ip netns exec "$nsa" \
		"$l2fwd" --socket "$dir/sock" --iface va --stats 1 "${l2args[@]}"
	l2pid=$VHU_LAST_PID
	wait_for "$dir/l2fwd-$k.out" '^vhu-l2fwd: (listening on|connecting to) ' 15 "$l2pid" || {
		case_error "vhu-l2fwd $k did not start: $(tail -n 2 "$dir/l2fwd-$k.err" | paste -sd' ' -)"
		return 1
	}
}

# l2_stat K SIDE KEY: KEY's value on instance K's last counters line, SIDE 1
# for guest->nic, 2 for nic->guest (0 before the first line).
l2_stat() {
	l2fwd_stat "$dir/l2fwd-$1.out" "$2" "$3"
}

# wait_flow K MIB SECONDS: until instance K has carried MIB MiB to the guest
# and 10 frames from it (the stream and its ACKs).
wait_flow() {
	local k=$1 want=$(($2 << 20)) end=$((SECONDS + $3))
	while ((SECONDS < end)); do
		(($(l2_stat "$k" 2 bytes) >= want && $(l2_stat "$k" 1 pkts) >= 10)) && return 0
		alive "$l2pid" || return 2
		sleep 0.2
	done
	return 1
}

# wait_ready K SECONDS: instance K got the device: "guest ready" and every
# queue enabled.
wait_ready() {
	local k=$1 end=$((SECONDS + $2)) q
	wait_for "$dir/l2fwd-$k.out" '^vhu-l2fwd: guest ready' "$2" "$l2pid" || return 1
	for ((q = 0; q < 2 * pairs; q++)); do
		while ! grep -qx "vhu-l2fwd: queue $q enabled" "$dir/l2fwd-$k.out"; do
			((SECONDS < end)) && alive "$l2pid" || return 1
			sleep 0.2
		done
	done
}

# xdp_attached: an XDP program is attached to va.
xdp_attached() {
	ip -n "$nsa" link show va 2>/dev/null | grep -q xdp
}

# l2fwd_term K: SIGTERM instance K ($l2pid): it must exit 0 and leave no XDP
# program on va.
l2fwd_term() {
	local k=$1 rc=0
	stop_pid "$l2pid" TERM 15 || rc=$?
	((rc == 0)) || case_error "vhu-l2fwd $k exited with status $rc on SIGTERM"
	xdp_attached && case_error "vhu-l2fwd $k left an XDP program on va: $(ip -n "$nsa" link show va | grep xdp)"
	grep -q 'XDP program detached, bye' "$dir/l2fwd-$k.out" ||
		case_error "vhu-l2fwd $k did not say 'XDP program detached, bye'"
	if ((pairs > 1)); then
		check_pairs "$k"
	fi
}

# check_pairs K: instance K's exit lines show frames to the guest on every
# pair.
check_pairs() {
	local k=$1 p n
	for ((p = 0; p < pairs; p++)); do
		n=$(sed -n "s/^pair $p: guest rx pkts=\([0-9]*\).*/\1/p" "$dir/l2fwd-$k.out" | tail -n 1)
		((${n:-0} >= 100)) ||
			case_error "vhu-l2fwd $k: pair $p carried ${n:-no} frames to the guest, want >= 100 (the source ports come from flow_pair, a copy of vhu-l2fwd's flow hash: did it change?)"
	done
	grep -E '^pair [0-9]+: ' "$dir/l2fwd-$k.out" | sed "s/^/  instance $k /"
}

# restart N SIG GAP: restart N: stop the current instance ($inst) with SIG
# (KILL or TERM), wait GAP seconds, start the next one; it must get the
# device and carry the stream.  A next instance that fails to start fails
# the case; one more is then started a second later, so that the rest of
# the case still tells whether the guest's rings resume.
restart() {
	local n=$1 sig=$2 gap=$3 t0 t1 left=0 d_ready d_flow rc=0 first k
	t0=$(now)
	if [[ $sig == KILL ]]; then
		kill -KILL "$l2pid" 2>/dev/null
		wait "$l2pid" 2>/dev/null
		xdp_attached && left=1
	else
		l2fwd_term "$inst"
	fi
	((gap > 0)) && sleep "$gap"
	t1=$(now)
	inst=$((inst + 1))
	first=$inst
	if ! l2fwd_start "$inst"; then
		echo "  restart $n (SIG$sig): vhu-l2fwd $inst did not start ($(tail -n 1 "$dir/l2fwd-$inst.err")); vhu-l2fwd $((inst + 1)) 1 s later"
		sleep 1
		inst=$((inst + 1))
		t1=$(now)
		l2fwd_start "$inst" || return 1
	fi
	if ! wait_ready "$inst" "$(tmo "$ready_timeout")"; then
		case_error "restart $n (SIG$sig): vhu-l2fwd $inst did not get the device (guest ready, $((2 * pairs)) queues enabled) in $ready_timeout s"
		return 1
	fi
	d_ready=$(since "$t1")
	if [[ $sig == KILL ]]; then
		if ((left)); then
			for ((k = first; k <= inst; k++)); do
				grep -q 'detached the XDP program a previous vhu-l2fwd left on va' "$dir/l2fwd-$k.out" && break
			done
			((k <= inst)) ||
				case_error "restart $n: no vhu-l2fwd said it detached the XDP program the SIGKILL'd one left"
		else
			echo "  note: no XDP program was left on va after the SIGKILL"
		fi
	fi
	rc=0
	wait_flow "$inst" "$flow_mib" "$(tmo "$flow_timeout")" || rc=$?
	if ((rc != 0)); then
		case_error "restart $n (SIG$sig): the stream does not flow through vhu-l2fwd $inst (wait rc $rc; $(l2_stat "$inst" 2 bytes) bytes to the guest, $(l2_stat "$inst" 1 pkts) frames from it)"
		return 1
	fi
	d_flow=$(since "$t1")
	printf '  restart %d (SIG%s%s): the guest was back on vhu-l2fwd %d after %s s, the stream flowed again after %s s (%s s after the stop)\n' \
		"$n" "$sig" "$( ((gap > 0)) && echo ", $gap s without a back-end")" "$inst" \
		"$d_ready" "$d_flow" "$(since "$t0")"
}

# --- the streams -----------------------------------------------------------------

# flow_pair SPORT DPORT NP: the pair (0..NP-1) vhu-l2fwd puts a frame from
# 10.79.0.2:SPORT to 10.79.0.1:DPORT on when NP pairs are enabled: its flow
# hash (examples/l2fwd/frame.c, FNV-1a over the IPv4 addresses and the
# ports) modulo NP (examples/l2fwd/fwd.c).
flow_pair() {
	local h=2166136261 b
	for b in 10 79 0 2 10 79 0 1 $(($1 >> 8)) $(($1 & 255)) $(($2 >> 8)) $(($2 & 255)); do
		h=$((((h ^ b) * 16777619) & 0xffffffff))
	done
	echo $((h % $3))
}

# sport_for R: a source port for stream R (port 5000+R) that hashes to pair
# R-1 (modulo the number of pairs).
sport_for() {
	local r=$1 p=$((41000 + 100 * $1))
	while (($(flow_pair "$p" $((5000 + r)) "$pairs") != (r - 1) % pairs)); do
		p=$((p + 1))
	done
	echo "$p"
}

# send_stream R SPORT: the sender of stream R, in namespace B: 1 MiB chunks of
# stream.bin (from chunk 32 * (R - 1) on, round and round), one per $space s, until DIR/stop-R's count is reached (and at
# least $smib); the count so far in DIR/count-R.  Retries the connection
# while the guest is not yet listening.
send_stream() {
	local r=$1 sport=$2 try i stop
	echo 0 >"$dir/count-$r"
	for ((try = 0; try < 15; try++)); do
		i=0
		{
			while ((i < 2000)); do
				dd if="$work/stream.bin" bs=1M skip=$(((i + 32 * r - 32) % 64)) count=1 2>/dev/null || break
				i=$((i + 1))
				echo "$i" >"$dir/count-$r"
				stop=$(cat "$dir/stop-$r" 2>/dev/null)
				[[ -n $stop ]] && ((i >= stop && i >= smib)) && break
				sleep "$space"
			done
		} | ip netns exec "$nsb" socat -u - "TCP:10.79.0.1:$((5000 + r)),sourceport=$sport,reuseaddr"
		(($(cat "$dir/count-$r") > 0)) && return 0
		sleep 1
	done
	return 1
}

# streams_start: wait for the guest to listen, start every stream's sender.
declare -A spid=()
streams_start() {
	local r rc=0 sport
	for ((r = 1; r <= nstreams; r++)); do
		wait_for "$dir/console-1.log" "^VHU-T: listen $r|^VHU-GUEST: FAIL" "$(tmo "$boot_timeout")" "$qemu_pid" || rc=$?
		if ((rc != 0)) || console_has '^VHU-GUEST: FAIL'; then
			case_error "the guest is not listening for stream $r (wait rc $rc)$(tr -d '\r' <"$dir/console-1.log" | grep -m1 FAIL)"
			return 1
		fi
	done
	t_stream=$(now)
	for ((r = 1; r <= nstreams; r++)); do
		sport=$(sport_for "$r")
		rm -f "$dir/stop-$r"
		spawn "$dir/sender-$r.out" "$dir/sender-$r.err" send_stream "$r" "$sport"
		spid[$r]=$VHU_LAST_PID
		echo "  stream $r: 10.79.0.2:$sport -> 10.79.0.1:$((5000 + r))$( ((pairs > 1)) && echo " (flow hash: pair $(flow_pair "$sport" $((5000 + r)) "$pairs"))")"
	done
}

# streams_finish: each sender stops $tail_mib MiB from now (or at $smib).
streams_finish() {
	local r
	for ((r = 1; r <= nstreams; r++)); do
		echo $(($(cat "$dir/count-$r" 2>/dev/null || echo 0) + tail_mib)) >"$dir/stop-$r"
	done
}

# stream_check R: stream R completes in the guest with the checksum and the
# length sent.
stream_check() {
	local r=$1 rc=0 sent want line got pids=("$qemu_pid")
	# (not waiting once the last vhu-l2fwd is gone: nothing would come)
	[[ -n ${l2pid:-} ]] && pids+=("$l2pid")
	wait_for "$dir/console-1.log" "^VHU-T: got $r " "$(tmo "$xfer_timeout")" "${pids[@]}" || rc=$?
	stop_pid "${spid[$r]}" TERM 10 || true
	sent=$(cat "$dir/count-$r" 2>/dev/null || echo 0)
	if ((rc != 0)); then
		case_error "stream $r did not complete (wait rc $rc, $sent MiB sent, $(l2_stat "$inst" 2 bytes) bytes through vhu-l2fwd $inst; sender: $(tail -c 200 "$dir/sender-$r.err"))"
		return 1
	fi
	want=$(for ((i = 0; i < sent; i++)); do
		dd if="$work/stream.bin" bs=1M skip=$(((i + 32 * r - 32) % 64)) count=1 2>/dev/null
	done | sha256sum | cut -d' ' -f1)
	line=$(guest_line "$dir" 1 "got $r")
	got=$(cut -d' ' -f1 <<<"$line")
	if [[ $got != "$want" || $(cut -d' ' -f2 <<<"$line") != $((sent << 20)) ]]; then
		case_error "stream $r: the guest got '$line', sent $((sent << 20)) bytes, sha256 $want"
	else
		awk -v r="$r" -v mib="$sent" -v s="$(since "$t_stream")" -v h="${want:0:16}" 'BEGIN {
			printf "  stream %d: %d MiB in %.1f s (%.2f MiB/s), sha256 %s... matches\n", r, mib, s, mib / s, h }'
	fi
}

# --- a case ----------------------------------------------------------------------

# run_case NAME PACKED CLIENT PAIRS OUTAGE_S
run_case() {
	local name=$1 client=$3 outage=$5 chardev netdev device line rc f bad k n logs=()
	packed=$2
	pairs=$4
	dir=$work/$name
	case_begin "qemu-reconnect $name"
	deadline=$((SECONDS + case_timeout + outage))
	mkdir -p "$dir"
	spid=()
	l2args=()
	inst=1
	qemu_pid=
	l2pid=
	nstreams=$pairs
	smib=$(((stream_mib + nstreams - 1) / nstreams))
	space=$(awk -v p="$pace" -v n="$nstreams" 'BEGIN { print p * n }')
	net_up || case_error "cannot create the namespaces and the veth pair"
	chardev="socket,id=c0,path=$dir/sock"
	netdev=vhost-user,id=n0,chardev=c0
	device="virtio-net-pci,netdev=n0,vectors=0,romfile="
	smp=1
	((packed)) && device+=",packed=on"
	if ((pairs > 1)); then
		netdev+=",queues=$pairs"
		device+=",mq=on"
		smp=2 # the driver enables min(CPUs, pairs) pairs
	fi
	if ((client)); then
		chardev+=",server=on,wait=off"
		l2args=(--client)
	else
		chardev+=",reconnect=1"
	fi
	echo "  qemu ... -smp $smp -chardev $chardev -netdev $netdev -device $device"
	echo "  vhu-l2fwd --socket sock --iface va --stats 1${l2args[*]:+ ${l2args[*]}}"
	if ((client)); then
		qemu_start "$dir" 1 $((case_timeout + outage + 60)) "$smp" "$chardev" "$netdev" "$device" "$(guest_cmd)"
		wait_for_socket "$dir/sock" 20 "$qemu_pid" || case_error "QEMU did not create the socket"
		l2fwd_start 1
	else
		l2fwd_start 1 &&
			qemu_start "$dir" 1 $((case_timeout + outage + 60)) "$smp" "$chardev" "$netdev" "$device" "$(guest_cmd)"
	fi
	if [[ ${#VHU_CASE_ERRORS[@]} == 0 ]] && streams_start; then
		rc=0
		wait_ready 1 "$(tmo "$boot_timeout")" || case_error "vhu-l2fwd 1 never got the device"
		wait_flow 1 "$mid_mib" "$(tmo 90)" || rc=$?
		if ((rc != 0)); then
			case_error "the stream does not flow through vhu-l2fwd 1 (wait rc $rc, $(l2_stat 1 2 bytes) bytes to the guest)"
		else
			echo "  stream flowing through vhu-l2fwd 1: $(($(l2_stat 1 2 bytes) >> 20)) MiB to the guest"
			if restart 1 KILL "$outage" && wait_flow "$inst" "$mid_mib" "$(tmo 90)"; then
				restart 2 TERM 0
			fi
		fi
		# a stream that ended before the last restart tested nothing
		for ((k = 1; k <= nstreams; k++)); do
			console_has "^VHU-T: got $k " &&
				case_error "stream $k ended before the last restart was through: lengthen it (VHU_STREAM_MIB)"
		done
		streams_finish
		for ((k = 1; k <= nstreams; k++)); do
			stream_check "$k"
		done
		rc=0
		wait_for "$dir/console-1.log" '^VHU-T: ping ' "$(tmo 60)" "$qemu_pid" || rc=$?
		line=$(guest_line "$dir" 1 ping)
		if [[ $line == ok* ]]; then
			echo "  guest -> 10.79.0.2 ping after the restarts: ${line#ok }"
		else
			case_error "guest -> 10.79.0.2 ping after the restarts: ${line:-none} (wait rc $rc)"
		fi
	fi
	# the guest: still running, RING_PACKED as asked, no driver error
	[[ -n $qemu_pid ]] && ! alive "$qemu_pid" && case_error "QEMU exited: $(tail -n 3 "$dir/qemu-1.err" | paste -sd' ' -)"
	f=$(guest_features "$dir/console-1.log")
	if [[ -z $f ]]; then
		case_error "the guest did not print its features"
	elif [[ $(feature_bit "$f" 34) != "$packed" ]]; then
		case_error "the guest's RING_PACKED (bit 34) is $(feature_bit "$f" 34), want $packed ($(printf 0x%x "$f"))"
	else
		echo "  guest driver features $(printf 0x%x "$f"), RING_PACKED $packed"
	fi
	bad=$(tr -d '\r' <"$dir/console-1.log" 2>/dev/null |
		grep -E 'output\.0:id|is not a head|virtio_net.*error|Call Trace|BUG' | head -n 5)
	[[ -z $bad ]] || case_error "the guest's console: $(paste -sd'|' - <<<"$bad")"
	# the last instance: SIGTERM with the guest attached
	if [[ -n ${l2pid:-} ]] && alive "$l2pid"; then
		l2fwd_term "$inst"
	fi
	[[ -n $qemu_pid ]] && { stop_pid "$qemu_pid" TERM 10 || true; }
	for ((k = 1; k <= inst; k++)); do
		f=$dir/l2fwd-$k.err
		[[ -f $f ]] || continue
		bad=$(grep -i 'broke' "$f" | head -n 3)
		[[ -z $bad ]] || case_error "vhu-l2fwd $k: $(paste -sd'|' - <<<"$bad")"
		n=$(grep -c 'resumes at slot' "$f")
		if ((n > 0)); then
			echo "  vhu-l2fwd $k: packed ring resumed ($n queues):"
			grep 'resumes at slot' "$f" | sed 's/^vhu-l2fwd: vhu [^:]*: warning: /  | /'
		else
			echo "  vhu-l2fwd $k: no packed-ring resume logged"
		fi
		bad=$(grep -E 'vhu [^:]*: (error|warning):' "$f" | grep -v 'resumes at slot' |
			sed -E 's/[0-9]+/N/g' | sort | uniq -c | sort -rn | head -n 5)
		[[ -z $bad ]] || {
			echo "  vhu-l2fwd $k: library errors and warnings:"
			# shellcheck disable=SC2001
			sed 's/^/  | /' <<<"$bad"
		}
	done
	if [[ -s $dir/qemu-1.err ]]; then
		echo "  QEMU's stderr (lines by kind):"
		sed -E 's/[0-9]+/N/g' "$dir/qemu-1.err" | sort | uniq -c | sort -rn | head -n 6 | sed 's/^/  | /'
	fi
	for k in "${!spid[@]}"; do
		stop_pid "${spid[$k]}" TERM 2 || true
	done
	net_down
	# vhu-l2fwd's outputs without the counters lines, for case_end
	for f in "$dir"/l2fwd-*.out; do
		grep -v '^stats: ' "$f" >"${f%.out}.events"
	done
	for f in "$dir"/l2fwd-*.events "$dir"/l2fwd-*.err "$dir/qemu-1.err" "$dir/console-1.log" "$dir"/sender-*.err; do
		[[ -s $f ]] && logs+=("$f")
	done
	case_end "${logs[@]}"
	l2pid=
}

net_down # leftovers of an earlier run with this pid: none expected
for c in $cases; do
	case $c in
	split-server) run_case split-server 0 0 1 0 ;;
	split-client) run_case split-client 0 1 1 0 ;;
	packed-server) run_case packed-server 1 0 1 0 ;;
	packed-client) run_case packed-client 1 1 1 0 ;;
	mq) run_case mq 0 0 2 0 ;;
	outage) run_case outage 1 0 1 "$outage_s" ;;
	*)
		case_begin "qemu-reconnect $c"
		case_error "unknown case"
		case_end
		;;
	esac
done

summary
