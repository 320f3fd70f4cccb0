# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash
#
# Helpers shared by the interop scripts (sourced, not run): child process
# bookkeeping, bounded waits, and the assertions on vhu-probe's output.
#
# vhu-probe prints (see vhu-probe.c): REQ <NAME> <rc>, CONNECTED,
# FEATURES 0x.., QUEUE <i> <EVENT>, READY, ..., and at exit STATE and QSTATE
# lines and EXIT <reason>.

# --- results -----------------------------------------------------------------

VHU_PASSED=0
VHU_FAILED=0
VHU_CASE_ERRORS=()

# case_error MSG: record one failed assertion of the current case.
case_error() {
	VHU_CASE_ERRORS+=("$*")
}

# case_begin NAME
case_begin() {
	VHU_CASE=$1
	VHU_CASE_ERRORS=()
	VHU_CASE_START=$SECONDS
	echo "=== $VHU_CASE"
}

# case_end [LOG...]: count the case; on failure show the given logs' tails.
case_end() {
	local f e took=$((SECONDS - VHU_CASE_START))
	if [[ ${#VHU_CASE_ERRORS[@]} == 0 ]]; then
		VHU_PASSED=$((VHU_PASSED + 1))
		echo "ok - $VHU_CASE (${took}s)"
		return 0
	fi
	VHU_FAILED=$((VHU_FAILED + 1))
	for e in "${VHU_CASE_ERRORS[@]}"; do
		echo "  - $e"
	done
	for f in "$@"; do
		[[ -f $f ]] || continue
		echo "  --- last lines of $(basename "$f"):"
		tail -n 25 "$f" | sed 's/^/  | /'
	done
	echo "not ok - $VHU_CASE (${took}s)"
	return 0
}

summary() {
	echo "$VHU_PASSED passed, $VHU_FAILED failed"
	[[ $VHU_FAILED == 0 ]]
}

# apt_install PKG...: install missing packages (as root), refreshing the
# package lists once if the first try fails.  Returns apt-get's status.
apt_install() {
	[[ $(id -u) == 0 ]] || return 1
	echo "installing $*" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2 && return 0
	apt-get update -qq >&2 || return 1
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# --- children ----------------------------------------------------------------

VHU_PIDS=()

# spawn OUT ERR CMD...: run CMD in the background (stdin /dev/null); the pid
# is in $VHU_LAST_PID and killed by kill_children.
spawn() {
	local out=$1 err=$2
	shift 2
	"$@" </dev/null >"$out" 2>"$err" &
	VHU_LAST_PID=$!
	VHU_PIDS+=("$VHU_LAST_PID")
}

alive() {
	kill -0 "$1" 2>/dev/null
}

# stop_pid PID [SIGNAL] [GRACE_SECONDS]: signal PID, wait up to GRACE for it,
# then SIGKILL.  Returns its exit status (or 137 when it had to be killed).
stop_pid() {
	local pid=$1 sig=${2:-TERM} grace=${3:-5} n=0 rc=0
	if alive "$pid"; then
		kill "-$sig" "$pid" 2>/dev/null || true
		while alive "$pid" && ((n < grace * 10)); do
			sleep 0.1
			n=$((n + 1))
		done
		if alive "$pid"; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || rc=$?
	return "$rc"
}

kill_children() {
	local pid
	for pid in "${VHU_PIDS[@]}"; do
		stop_pid "$pid" TERM 3 || true
	done
	VHU_PIDS=()
}

# wait_for FILE REGEX SECONDS [PID...]: until a line of FILE matches REGEX
# (grep -E).  0: found; 1: timed out; 2: one of the PIDs exited first.
wait_for() {
	local file=$1 re=$2 secs=$3 pid end
	shift 3
	end=$((SECONDS + secs))
	while ((SECONDS < end)); do
		if [[ -f $file ]] && grep -qE -- "$re" "$file"; then
			return 0
		fi
		for pid in "$@"; do
			if ! alive "$pid"; then
				grep -qE -- "$re" "$file" 2>/dev/null && return 0
				return 2
			fi
		done
		sleep 0.2
	done
	return 1
}

# wait_for_count FILE LINE N SECONDS PID...: until FILE has N lines that
# are exactly LINE.  Same return values as wait_for.
wait_for_count() {
	local file=$1 line=$2 n=$3 end=$((SECONDS + $4)) pid
	shift 4
	while ((SECONDS < end)); do
		(($(count_lines "$file" "$line") >= n)) && return 0
		for pid in "$@"; do
			if ! alive "$pid"; then
				(($(count_lines "$file" "$line") >= n)) && return 0
				return 2
			fi
		done
		sleep 0.2
	done
	return 1
}

# wait_for_socket PATH SECONDS PID: until PATH is a socket.
wait_for_socket() {
	local path=$1 end=$((SECONDS + $2)) pid=$3
	while ((SECONDS < end)); do
		[[ -S $path ]] && return 0
		alive "$pid" || return 2
		sleep 0.2
	done
	return 1
}

# --- vhu-probe output ----------------------------------------------------------

# probe_field OUT PREFIX KEY: value of KEY=... on the last line starting with
# PREFIX (e.g. "STATE" features, or "QSTATE 1" size).
probe_field() {
	awk -v pre="$2" -v key="$3" '
		index($0, pre " ") == 1 || $0 == pre {
			v = ""
			for (i = 1; i <= NF; i++)
				if (index($i, key "=") == 1)
					v = substr($i, length(key) + 2)
			last = v
		}
		END { print last }' "$1"
}

# first_line OUT REGEX: number of the first line matching, or empty.
first_line() {
	grep -nE -m1 -- "$2" "$1" | cut -d: -f1 || true
}

# feature_bit HEX BIT: 0 or 1.
feature_bit() {
	echo $((($1 >> $2) & 1))
}

# check_probe OUT NQUEUES PACKED(0|1) QSIZE: the assertions every handshake
# case makes on the probe's output.
check_probe() {
	local out=$1 nq=$2 packed=$3 qsize=$4
	local req n i l_get l_set l_mem l_addr bad feats state_feats offered
	local v key want proto memreq

	grep -qx CONNECTED "$out" || case_error "probe never saw CONNECTED"
	grep -qx READY "$out" || case_error "device never became READY"
	grep -qE '^EXIT ' "$out" || case_error "probe did not print its final state (EXIT line missing)"

	# Refusals before the first line matching $VHU_REFUSED_OK_BEFORE (when
	# set) are only noted: a case sets it where the front-end is known to
	# send requests that are invalid at that point.
	local from=1 early
	if [[ -n ${VHU_REFUSED_OK_BEFORE:-} ]]; then
		from=$(first_line "$out" "$VHU_REFUSED_OK_BEFORE")
		from=${from:-1}
		early=$(head -n "$((from - 1))" "$out" | grep -E '^REQ [A-Z_0-9]+ -?[1-9][0-9]*$' |
			sort | uniq -c | tr -s ' ' | paste -sd, - || true)
		[[ -z $early ]] || echo "  note: refused before '$VHU_REFUSED_OK_BEFORE':$early"
	fi
	bad=$(tail -n "+$from" "$out" | grep -E '^REQ [A-Z_0-9]+ -?[1-9][0-9]*$' | sort | uniq -c | tr -s ' ' | paste -sd, - || true)
	[[ -z $bad ]] || case_error "requests refused:$bad"
	bad=$(grep -E '^QUEUE [0-9]+ BROKEN$' "$out" | paste -sd, - || true)
	[[ -z $bad ]] || case_error "queues broken: $bad"

	# With CONFIGURE_MEM_SLOTS (protocol bit 15) negotiated the front-end
	# sends its regions one by one (ADD_MEM_REG), else SET_MEM_TABLE.
	proto=$(probe_field "$out" STATE protocol)
	memreq=SET_MEM_TABLE
	if [[ -n $proto ]] && [[ $(feature_bit "$proto" 15) == 1 ]]; then
		memreq=ADD_MEM_REG
	fi
	l_get=$(first_line "$out" '^REQ GET_FEATURES 0$')
	l_set=$(first_line "$out" '^REQ SET_FEATURES 0$')
	l_mem=$(first_line "$out" "^REQ $memreq 0\$")
	l_addr=$(first_line "$out" '^REQ SET_VRING_ADDR 0$')
	[[ -n $l_get ]] || case_error "no successful GET_FEATURES"
	[[ -n $l_set ]] || case_error "no successful SET_FEATURES"
	[[ -n $l_mem ]] || case_error "no successful $memreq (protocol features ${proto:-?})"
	if [[ -n $l_get && -n $l_set ]] && ((l_get > l_set)); then
		case_error "SET_FEATURES (line $l_set) before GET_FEATURES (line $l_get)"
	fi
	if [[ -n $l_set && -n $l_mem ]] && ((l_set > l_mem)); then
		case_error "$memreq (line $l_mem) before SET_FEATURES (line $l_set)"
	fi
	if [[ -n $l_mem && -n $l_addr ]] && ((l_mem > l_addr)); then
		case_error "SET_VRING_ADDR (line $l_addr) before $memreq (line $l_mem)"
	fi
	for req in SET_VRING_NUM SET_VRING_ADDR SET_VRING_BASE SET_VRING_KICK SET_VRING_CALL; do
		n=$(grep -cx "REQ $req 0" "$out" || true)
		((n >= nq)) || case_error "$req succeeded $n times, want >= $nq"
	done

	feats=$(awk '$1 == "FEATURES" { v = $2 } END { print v }' "$out")
	state_feats=$(probe_field "$out" STATE features)
	offered=$(probe_field "$out" OFFERED features)
	if [[ -z $feats || -z $state_feats ]]; then
		case_error "no FEATURES event or STATE features"
	else
		[[ $((feats)) == $((state_feats)) ]] ||
			case_error "STATE features $state_feats != FEATURES event $feats"
		[[ $(feature_bit "$state_feats" 32) == 1 ]] ||
			case_error "VERSION_1 (bit 32) not negotiated: $state_feats"
		[[ $(feature_bit "$state_feats" 34) == "$packed" ]] ||
			case_error "RING_PACKED (bit 34) is $(feature_bit "$state_feats" 34), want $packed: $state_feats"
		if [[ -n $offered ]] && (((state_feats & ~offered) != 0)); then
			case_error "negotiated $state_feats has bits not offered ($offered)"
		fi
	fi
	[[ $(probe_field "$out" STATE connected) == 1 ]] ||
		case_error "STATE connected=$(probe_field "$out" STATE connected), want 1"
	v=$(probe_field "$out" STATE regions)
	[[ -n $v && $v -ge 1 ]] || case_error "STATE regions=$v, want >= 1"

	for ((i = 0; i < nq; i++)); do
		if ! grep -qE "^QSTATE $i " "$out"; then
			case_error "no QSTATE for queue $i"
			continue
		fi
		for key in size started enabled packed kick call; do
			case $key in
			size) want=$qsize ;;
			packed) want=$packed ;;
			*) want=1 ;;
			esac
			v=$(probe_field "$out" "QSTATE $i" "$key")
			[[ $v == "$want" ]] || case_error "queue $i: $key=$v, want $want"
		done
	done
}

# check_probe_tagged TAG OUT NQUEUES PACKED QSIZE: check_probe, with TAG
# before each error it finds (for a case that checks two probes).
check_probe_tagged() {
	local tag=$1 n=${#VHU_CASE_ERRORS[@]} i
	shift
	check_probe "$@"
	for ((i = n; i < ${#VHU_CASE_ERRORS[@]}; i++)); do
		VHU_CASE_ERRORS[i]="$tag: ${VHU_CASE_ERRORS[i]}"
	done
}

# probe_trace OUT: the probe's event lines, compacted for a human.
probe_trace() {
	awk '
		/^REQ / { r = $2 ($3 == "0" ? "" : "(" $3 ")")
		          if (r == last) { n++; next }
		          flush(); last = r; n = 1; next }
		{ flush(); print "  " $0 }
		function flush() {
			if (last != "") print "  REQ " last (n > 1 ? " x" n : "")
			last = ""; n = 0
		}
		END { flush() }' "$1"
}

# upto_first OUT REGEX SEG: copy OUT's lines up to and including the first
# line matching REGEX into SEG.
upto_first() {
	awk -v re="$2" '{ print } $0 ~ re { exit }' "$1" >"$3"
}

# check_stop SEG NQUEUES: SEG (the probe's output up to its first
# DISCONNECTED) shows an orderly stop by the front-end: each queue's ring
# base fetched and the queue STOPPED, the device STOPPED after READY, then
# DISCONNECTED.
check_stop() {
	local seg=$1 nq=$2 n i l_ready l_stopped l_disc l_q bad

	l_ready=$(first_line "$seg" '^READY$')
	l_stopped=$(first_line "$seg" '^STOPPED$')
	l_disc=$(first_line "$seg" '^DISCONNECTED$')
	[[ -n $l_ready ]] || case_error "stop: no READY before the disconnect"
	[[ -n $l_disc ]] || case_error "stop: no DISCONNECTED"
	if [[ -z $l_stopped ]]; then
		case_error "stop: no STOPPED (device_stopped) before DISCONNECTED"
	elif [[ -n $l_ready ]] && ((l_stopped < l_ready)); then
		case_error "stop: STOPPED (line $l_stopped) before READY (line $l_ready)"
	fi
	n=$(grep -cx 'REQ GET_VRING_BASE 0' "$seg" || true)
	((n >= nq)) || case_error "stop: GET_VRING_BASE succeeded $n times, want >= $nq"
	for ((i = 0; i < nq; i++)); do
		l_q=$(first_line "$seg" "^QUEUE $i STOPPED\$")
		[[ -n $l_q ]] || case_error "stop: queue $i never STOPPED"
	done
	bad=$(grep -E '^REQ [A-Z_0-9]+ -?[1-9][0-9]*$' "$seg" | sort | uniq -c | tr -s ' ' | paste -sd, - || true)
	[[ -z $bad ]] || case_error "stop: requests refused:$bad"
}

# count_lines OUT LINE: how many lines are exactly LINE.
count_lines() {
	grep -cx -- "$2" "$1" || true
}

# Feature bits the back-end decides (the rest a front-end may emulate or
# hide): MRG_RXBUF (15), INDIRECT_DESC (28), EVENT_IDX (29), bits 32-63.
VHU_BACKEND_BITS=$(((1 << 15) | (1 << 28) | (1 << 29) | (0xffffffff << 32)))

# check_guest_features CONSOLE PROBE_OUT: the features the guest's driver
# accepted (its "VHU-GUEST: eth0 features <bits>" line) agree with what the
# back-end was told, on VHU_BACKEND_BITS.
check_guest_features() {
	local console=$1 probe_out=$2 be guest
	guest=$(guest_features "$console")
	be=$(probe_field "$probe_out" STATE features)
	if [[ -z $guest ]]; then
		case_error "the guest did not print its features"
		return 0
	fi
	[[ -n $be ]] || return 0 # reported by check_probe
	if (((guest & VHU_BACKEND_BITS) != (be & VHU_BACKEND_BITS))); then
		case_error "guest driver accepted $(printf 0x%x "$guest"), back-end was told $be"
	else
		echo "  guest driver features $(printf 0x%x "$guest") (back-end: $be)"
	fi
}

# --- QEMU guests and network namespaces (qemu-l2fwd.sh, qemu-migrate.sh) ------

VHU_QEMU=${QEMU:-qemu-system-x86_64}

# guest_image WORK: build or reuse the test guest (scripts/guest-image.sh);
# sets VHU_KERNEL and VHU_INITRD.  On failure prints the builder's errors.
guest_image() {
	local work=$1 repo
	repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	"$repo/scripts/guest-image.sh" >"$work/guest-image.out" 2>"$work/guest-image.err" || {
		cat "$work/guest-image.err" >&2
		return 1
	}
	VHU_KERNEL=$(sed -n 1p "$work/guest-image.out")
	VHU_INITRD=$(sed -n 2p "$work/guest-image.out")
}

# guest_initrd_add WORK TREE: the test guest's initramfs with TREE's files
# added (a second, uncompressed cpio archive after the image's: the kernel
# unpacks both, in order), as WORK/initrd-extra.img; VHU_INITRD (from
# guest_image) points at it afterwards.  File modes are kept, owners are 0.
guest_initrd_add() {
	local work=$1 tree=$2 base=${VHU_INITRD_BASE:-$VHU_INITRD} pad
	VHU_INITRD_BASE=$base
	# the kernel looks for the next archive at a multiple of 4 bytes,
	# skipping NULs
	pad=$(((4 - $(stat -c %s "$base") % 4) % 4))
	{
		cat "$base" && head -c "$pad" /dev/zero &&
			(cd "$tree" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
				cpio --null -o -H newc --quiet --owner=0:0)
	} >"$work/initrd-extra.img" || return 1
	VHU_INITRD=$work/initrd-extra.img
}

# qemu_boot DIR N LIFETIME SMP GUEST_CMD QEMU_ARG...: boot the test guest
# (guest_image) under TCG with SMP CPUs and 512 MiB of shared memfd memory,
# its devices given by the QEMU_ARGs, as guest N: console in
# DIR/console-N.log, QEMU's output in DIR/qemu-N.out/.err, killed after
# LIFETIME seconds.  The guest runs GUEST_CMD (no double quotes).  Pid in
# $qemu_pid.
qemu_boot() {
	local dir=$1 n=$2 life=$3 smp=$4 cmd=$5
	shift 5
	spawn "$dir/qemu-$n.out" "$dir/qemu-$n.err" \
		timeout -k 5 "$life" "$VHU_QEMU" \
		-accel tcg -m 512 -smp "$smp" \
		-object memory-backend-memfd,id=mem,size=512M,share=on \
		-machine pc,memory-backend=mem \
		-display none -nodefaults -no-reboot -monitor none \
		-kernel "$VHU_KERNEL" -initrd "$VHU_INITRD" \
		"$@" -serial "file:$dir/console-$n.log" \
		-append "console=ttyS0 quiet ipv6.disable=1 panic=-1 vhu.cmd=\"$cmd\""
	# shellcheck disable=SC2034 # read by the caller
	qemu_pid=$VHU_LAST_PID
}

# qemu_start DIR N LIFETIME SMP CHARDEV NETDEV DEVICE GUEST_CMD [QEMU_ARG...]:
# qemu_boot with one vhost-user NIC.  The guest runs GUEST_CMD (see
# guest_cmd in qemu-l2fwd.sh: no double quotes).  QEMU_ARGs go last (-qmp,
# -incoming, -S).  Pid in $qemu_pid.
qemu_start() {
	local dir=$1 n=$2 life=$3 smp=$4 chardev=$5 netdev=$6 device=$7 cmd=$8
	shift 8
	qemu_boot "$dir" "$n" "$life" "$smp" "$cmd" \
		-chardev "$chardev" -netdev "$netdev" -device "$device" "$@"
}

# guest_line DIR N WHAT: guest N's last "VHU-T: WHAT ..." console line, sans
# prefix.
guest_line() {
	tr -d '\r' <"$1/console-$2.log" 2>/dev/null | sed -n "s/^VHU-T: $3 //p" | tail -n 1
}

# guest_ping_cmd ADDR WHAT: a guest command piece that pings ADDR and prints
# "VHU-T: WHAT ok <busybox's round-trip line>" or "VHU-T: WHAT failed".
guest_ping_cmd() {
	echo "if ping -c 3 -W 5 $1 >/tmp/ping.out; then echo VHU-T: $2 ok \$(tail -n 1 /tmp/ping.out);" \
		"else echo VHU-T: $2 failed; fi;"
}

# guest_features CONSOLE: the virtio features the guest's driver accepted
# (its "VHU-GUEST: eth0 features <bits>" line, bit 0 first) as a number;
# empty when it did not print them.
guest_features() {
	local bits v=0 i
	bits=$(tr -d '\r' <"$1" 2>/dev/null | sed -n 's/^VHU-GUEST: eth0 features \([01]*\)$/\1/p' | tail -n 1)
	[[ -n $bits ]] || return 0
	for ((i = 0; i < ${#bits} && i < 64; i++)); do
		[[ ${bits:i:1} == 1 ]] && v=$((v | (1 << i)))
	done
	echo "$v"
}

# veth_pair TAG NS1 IF1 NS2 IF2 [NQ]: a veth pair with NQ queues each way
# (default 1) between two existing namespaces, its ends named IF1 and IF2,
# offloads off on both (like a wire: AF_XDP frames carry no offload state),
# both up.  TAG (unique to the run, at most 14 characters) names the ends
# while they are in the host's namespace.
veth_pair() {
	local t=$1 ns1=$2 if1=$3 ns2=$4 if2=$5 nq=${6:-1}
	ip link add "$t"a numtxqueues "$nq" numrxqueues "$nq" type veth \
		peer name "$t"b numtxqueues "$nq" numrxqueues "$nq" &&
		ip link set "$t"a netns "$ns1" && ip link set "$t"b netns "$ns2" &&
		ip -n "$ns1" link set "$t"a name "$if1" && ip -n "$ns2" link set "$t"b name "$if2" || return 1
	ip netns exec "$ns1" ethtool -K "$if1" rx off tx off tso off gso off gro off >/dev/null 2>&1
	ip netns exec "$ns2" ethtool -K "$if2" rx off tx off tso off gso off gro off >/dev/null 2>&1
	ip -n "$ns1" link set "$if1" up && ip -n "$ns2" link set "$if2" up
}

# netns_del NS...: kill what still runs in each namespace, then delete it
# (quietly; a namespace that does not exist is fine).
netns_del() {
	local ns
	for ns in "$@"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	true
}

# l2fwd_stat OUT SIDE KEY: KEY's value on the last counters line ("stats:"
# or "final:") of vhu-l2fwd's output OUT, SIDE 1 for guest->nic, 2 for
# nic->guest (0 before the first line).
l2fwd_stat() {
	local v
	v=$(grep -E '^(stats|final): ' "$1" 2>/dev/null | tail -n 1 |
		awk -F'|' -v s="$2" -v k="$3" '{
			n = split($s, f, /[ {}]+/)
			for (i = 1; i <= n; i++)
				if (index(f[i], k "=") == 1) { print substr(f[i], length(k) + 2); exit }
		}')
	echo "${v:-0}"
}
