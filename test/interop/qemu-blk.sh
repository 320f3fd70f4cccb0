#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# qemu-blk.sh [--backend vhu|qsd] BUILD_DIR [CASE...] - a block back-end
# killed under a guest's O_DIRECT writes loses no data.
#
# A raw image file on the host is served over vhost-user-blk by the back-end
# (--backend vhu: BUILD_DIR's vhu-blk, the default; --backend qsd:
# qemu-storage-daemon, the reference peer, with cache.direct=on).  QEMU 7.2
# (TCG, 512 MiB of shared memfd memory) boots the test guest
# (scripts/guest-image.sh) with a vhost-user-blk-pci disk on the back-end's
# socket (chardev reconnect=1).  The guest's initramfs gets a second archive
# (guest_initrd_add): the workload below and D = W + 1 files of random data
# (VHU_BLK_CHUNK_MIB, 32 MiB each) with their SHA-256.
#
# The workload: W streams (2 per queue), stream i pinned to CPU i % CPUs,
# each with its own slot of the disk (CHUNK MiB at i * CHUNK MiB).  Round r
# of stream i writes data file (i + r) % D into its slot with O_DIRECT
# (busybox dd oflag=direct conv=fsync: the fsync is a FLUSH), at a block
# size of 1 MiB, 64 KiB or 4 KiB (by r % 3), reads the slot back with
# O_DIRECT at the same block size, compares the SHA-256 with the file's and
# prints "VHU-T: round <i> <r> <bs> d<k> ok|BAD <sha256>".  Beside them the
# guest prints /sys/block/vda/stat every 0.25 s ("VHU-T: stat ..."), and
# polls a control sector after the slots (O_DIRECT) for the host's stop
# mark; the streams stop after the round in which it shows up (or after
# VHU_BLK_IO_MAX_S seconds: a failure).  Then the guest prints each stream's
# round count, each hardware queue's run count (debugfs hctxN/run), its
# dmesg lines about I/O errors, and powers off.
#
# The host, once the guest's I/O runs, restarts the back-end on the same
# socket per VHU_BLK_RESTARTS (default "KILL KILL KILL TERM": three
# SIGKILLs and a SIGTERM), each 2-4 s (VHU_BLK_GAP_MS="2000 4000") after
# I/O resumed on the instance before, at a moment when the guest's last
# sample shows requests in flight (waiting up to 2 s for one); a new
# instance starts at once and the guest's I/O must resume on it (2 MiB more
# done, within VHU_RESUME_TIMEOUT).  QEMU resubmits nothing itself: requests
# in flight at a SIGKILL are the new back-end's to replay from the inflight
# region (GET/SET_INFLIGHT_FD).  vhu-blk runs with --hold 200:400
# (VHU_BLK_HOLD; "off": none): each 200th completion is answered 400 ms
# late, so a stop finds requests used after one still in flight, which
# the ring alone cannot bring back (a vhu-blk without tracking fails
# here).  2 s after the last restart resumed, the host writes the stop
# mark.
#
# Cases (arguments, or VHU_BLK_CASES="split mq"; default all):
#   split   1 queue, split ring
#   packed  packed=on on the device: the guest's driver must have
#           negotiated VIRTIO_F_RING_PACKED (bit 34 of
#           /sys/block/vda/device/features).  qemu-storage-daemon has no
#           packed rings (QEMU then offers the guest split ones): this case
#           fails with --backend qsd, which shows the check works.
#   mq      2 queues (num-queues=2 on both sides, -smp 2): 4 streams, 2 per
#           CPU; every hardware queue must have been run
#   client  the other socket direction, packed: QEMU listens (server=on),
#           vhu-blk --client connects and, restarted, connects again (vhu
#           only: qemu-storage-daemon cannot connect)
#   migrate live migration instead of restarts (vhu only), split ring:
#           vhu-blk 1 on sock-a serves QEMU 1; QEMU 2, the same command
#           line on sock-b with -incoming, is served by vhu-blk 2 on the
#           same image file; every QEMU has a QMP socket (qmp.sh).  Once
#           the guest's I/O runs, at a moment its last sample shows
#           requests in flight, QEMU 1 -> 2 (VHU_BLK_MIGRATE_MIBPS, 128;
#           downtime-limit 300 ms), then 2 -> 3, a third QEMU on sock-a
#           (vhu-blk 1 still running): VHU_BLK_MIGRATIONS (2), 2-4 s after
#           the guest's I/O resumed, and more (4 at most) while no drain
#           had anything to wait for.  QEMU 7.2 migrates no inflight
#           region: on GET_VRING_BASE the source vhu-blk answers the
#           requests it holds first (--drain-ms, vhu_dev_opts.stop_drain_ms).
#           Each migration must complete; its source ends in postmigrate
#           and quits with status 0, saw the device stop and logged no
#           "requests still held"; the destination runs, its vhu-blk got
#           the device and the guest's I/O resumes on it (as after a
#           restart).  At least one source vhu-blk must have logged "came
#           back before the ring stopped" (--hold makes that the rule).
#           Printed: each migration's figures (query-migrate), the drains
#           and their times.  VHU_BLK_DRAIN_MS passes --drain-ms to every
#           vhu-blk (unset: its default); with 0 the requests held at the
#           stop are lost and the case fails.  VHU_BLK_MEMCHECK=1 starts
#           each destination with -S and compares all guest memory of both
#           sides after the migration (pmemsave), then continues.
#   migrate-packed  the same with packed=on (RING_PACKED checked): the
#           destination's packed ring starts from the base after the drain
#           and a fresh inflight region
# Every case checks: every round's read-back matches, and so does the image
# file afterwards (each slot holds its stream's last data file; the control
# region holds the stop mark, the guard region after it is untouched);
# each stream did at least 2 rounds; no restart left the guest's I/O
# stalled; the guest's dmesg has no I/O error ("blk_update_request",
# "I/O error", "Buffer I/O error", "critical", "Call Trace", "BUG",
# "blocked for more than"); the guest powered off by itself and QEMU exited
# 0; every back-end instance stopped with SIGTERM (the one in the schedule,
# and the last, after the guest is gone) exits 0.  Printed: each restart's
# times (until the new instance listened, until the guest's I/O resumed),
# the requests in flight at the last sample before each stop, the rounds,
# each back-end's stderr by kind.
# VHU_KEEP=1 keeps the work directory.  Needs root.  Last line:
# "N passed, N failed".
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/interop/common.sh
. "$here/common.sh"
# shellcheck source=test/interop/qmp.sh
. "$here/qmp.sh"

usage() {
	echo "usage: $0 [--backend vhu|qsd] BUILD_DIR [CASE...]   (cases: split packed mq client migrate migrate-packed)" >&2
	exit 2
}
backend=vhu
args=()
while (($#)); do
	case $1 in
	--backend) [[ $# -ge 2 ]] || usage; backend=$2; shift 2 ;;
	--backend=*) backend=${1#--backend=}; shift ;;
	-h | --help) usage ;;
	*) args+=("$1"); shift ;;
	esac
done
[[ ${#args[@]} -ge 1 ]] || usage
[[ $backend == vhu || $backend == qsd ]] || usage
build=$(cd "${args[0]}" && pwd) || usage
cases=${args[*]:1}
if [[ $backend == vhu ]]; then
	cases=${cases:-${VHU_BLK_CASES:-split packed mq client migrate migrate-packed}}
else
	cases=${cases:-${VHU_BLK_CASES:-split packed mq}}
fi
client=0
mig=0

qsd=${QSD:-qemu-storage-daemon}
chunk_max=${VHU_BLK_CHUNK_MIB:-32}         # one slot, one data file: at most this,
data_max=${VHU_BLK_DATA_MIB:-128}          # ... and all data files at most this
restarts=${VHU_BLK_RESTARTS:-KILL KILL KILL TERM}
# vhu-blk holds every Nth completion MS ms (--hold N:MS): requests complete
# out of order, so a stop finds later ones used while an earlier one is in
# flight, which only inflight tracking brings back ("off": none)
hold=${VHU_BLK_HOLD:-200:400}
[[ $hold == off ]] && hold=
read -r gap_min gap_max <<<"${VHU_BLK_GAP_MS:-2000 4000}"
boot_timeout=${VHU_BOOT_TIMEOUT:-60}       # QEMU start -> the guest's I/O runs (5-10 s here)
resume_timeout=${VHU_RESUME_TIMEOUT:-60}   # a new instance -> the guest's I/O resumed
io_max_s=${VHU_BLK_IO_MAX_S:-150}          # the guest stops by itself after this
end_timeout=${VHU_END_TIMEOUT:-60}         # stop mark -> the guest's "io end"
case_timeout=${VHU_CASE_TIMEOUT:-300}      # QEMU's lifetime
resume_sectors=4096                        # 2 MiB more done: I/O resumed
# vhu-blk --drain-ms (unset: vhu-blk's default; 0: rings stop at once)
drain_ms=${VHU_BLK_DRAIN_MS:-}
# migrate: the migrations (1: A -> B; 2: and back to A), at most mig_max
# while no drain had anything to wait for; bandwidth, downtime-limit
migrations=${VHU_BLK_MIGRATIONS:-2}
mig_max=4
mig_mibps=${VHU_BLK_MIGRATE_MIBPS:-128}
mig_timeout=${VHU_MIGRATE_TIMEOUT:-120}
downtime_ms=300
memcheck=${VHU_BLK_MEMCHECK:-0}            # 1: compare guest memory after each migration

fail_early() {
	echo "qemu-blk: $*" >&2
	echo "0 passed, 1 failed"
	exit 1
}
[[ $(id -u) == 0 ]] || fail_early "needs root (QEMU, O_DIRECT image in /tmp)"
command -v "$VHU_QEMU" >/dev/null || fail_early "$VHU_QEMU not found (apt-get install qemu-system-x86)"
command -v busybox >/dev/null || fail_early "busybox not found (apt-get install busybox-static)"
if [[ $backend == vhu ]]; then
	vhublk=${VHU_BLK:-}
	if [[ -z $vhublk ]]; then
		for f in "$build/examples/blk/vhu-blk" "$build/examples/vhu-blk"; do
			[[ -x $f ]] && vhublk=$f && break
		done
	fi
	[[ -n $vhublk && -x $vhublk ]] || fail_early "vhu-blk not built in $build (examples/blk/vhu-blk)"
else
	command -v "$qsd" >/dev/null || fail_early "$qsd not found (apt-get install qemu-system-x86)"
fi
if [[ " $cases " == *" migrate "* ]]; then
	command -v socat >/dev/null || apt_install socat || fail_early "socat not found (apt-get install socat)"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/vhu-qemu-blk.XXXXXX")
on_exit() {
	kill_children
	if [[ ${VHU_KEEP:-0} == 1 ]]; then
		echo "qemu-blk: kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "qemu-blk: guest image"
guest_image "$work" || fail_early "no guest image"

# --- helpers ---------------------------------------------------------------------

now() {
	date +%s.%N
}

# since T0: seconds from T0 to now, one decimal.
since() {
	awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'
}

# console: the guest's console, from every QEMU it ran on (console-N.log:
# a migration's destination continues the source's output).
console() {
	cat "$dir"/console-[0-9].log 2>/dev/null | tr -d '\r'
}

console_has() {
	console | grep -qE -- "$1"
}

# last_stat FIELD: field FIELD (1-based, /sys/block/vda/stat's order) of the
# guest's last stat sample ("VHU-T: stat <uptime> <fields>"); "sum" is
# sectors read + written, 0 the guest's uptime.
last_stat() {
	console | awk -v f="$1" '$1 == "VHU-T:" && $2 == "stat" && NF >= 12 { l = $0 }
		END { if (l == "") { print 0; exit }
		      n = split(l, a, " ")
		      if (f == "sum") print a[6] + a[10]; else print a[f + 3] }'
}

# guest_errors: the first lines of the guest's console that tell its I/O
# failed (empty if none).
guest_errors() {
	console | grep -E '^VHU-T: (ioerr|round .* BAD|stream [0-9]+ failed)|is not a head|I/O error|blk_update_request|Call Trace|BUG' | head -n 3
}

# samples: how many stat samples the guest printed.
samples() {
	console | grep -c '^VHU-T: stat '
}

# listening PID SOCK: PID holds a listening socket bound to SOCK (from
# /proc/net/unix: a killed instance's socket file stays until the next
# instance replaces it, and the new file may get the old one's inode).
listening() {
	local ino
	while read -r ino; do
		find "/proc/$1/fd" -lname "socket:\[$ino\]" 2>/dev/null | grep -q . && return 0
	done < <(awk -v p="$2" '$NF == p && $4 == "00010000" { print $7 }' /proc/net/unix)
	return 1
}

# --- the back-end ------------------------------------------------------------------

# be_start K [SOCK]: back-end instance K on SOCK (default $dir/sock;
# output be-K.out/.err); pid in $bepid and bepids[K].  Ready once it
# listens on the socket.
be_start() {
	local k=$1 sock=${2:-$dir/sock} end
	if [[ $backend == qsd ]]; then
		spawn "$dir/be-$k.out" "$dir/be-$k.err" "$qsd" \
			--blockdev "driver=file,node-name=file0,filename=$dir/disk.img,cache.direct=on" \
			--export "type=vhost-user-blk,id=exp0,node-name=file0,addr.type=unix,addr.path=$sock,writable=on,num-queues=$nq"
	else
		local extra=()
		[[ -n $hold ]] && extra+=(--hold "$hold")
		[[ -n $drain_ms ]] && extra+=(--drain-ms "$drain_ms")
		((client)) && extra+=(--client)
		spawn "$dir/be-$k.out" "$dir/be-$k.err" "$vhublk" \
			--socket "$sock" --file "$dir/disk.img" --queues "$nq" --verbose \
			"${extra[@]}"
	fi
	bepid=$VHU_LAST_PID
	bepids[k]=$bepid
	end=$((SECONDS + 15))
	while ((SECONDS < end)); do
		# a client connects (and reconnects) by itself: it only has to
		# be up; the guest's I/O resuming is the real check
		if { ((client)) && sleep 0.2 && alive "$bepid"; } || listening "$bepid" "$sock"; then
			return 0
		fi
		if ! alive "$bepid"; then
			case_error "back-end $k exited at start: $(tail -n 3 "$dir/be-$k.err" | paste -sd' ' -)"
			return 1
		fi
		sleep 0.05
	done
	case_error "back-end $k did not listen on the socket in 15 s"
	return 1
}

# be_term K: SIGTERM instance K (bepids[K]); it must exit 0.
be_term() {
	local k=$1 rc=0
	stop_pid "${bepids[k]}" TERM 15 || rc=$?
	((rc == 0)) || case_error "back-end $k exited with status $rc on SIGTERM"
	[[ ${bepids[k]} == "$bepid" ]] && bepid=
	unset "bepids[k]"
}
declare -a bepids=()
declare -A qpid=()

# wait_resume SINCE_DONE SECONDS: until the guest's samples show
# $resume_sectors more done than SINCE_DONE.
wait_resume() {
	local base=$1 end=$((SECONDS + $2))
	while ((SECONDS < end)); do
		[[ -z $(guest_errors) ]] || return 4
		(($(last_stat sum) >= base + resume_sectors)) && return 0
		alive "$qemu_pid" || return 2
		alive "$bepid" || return 3
		sleep 0.1
	done
	return 1
}

# restart N SIG: stop the current instance ($inst) with SIG (KILL or TERM)
# while requests are in flight (waiting up to 2 s for a sample that shows
# some), start the next one at once; the guest's I/O must resume on it.
restart() {
	local n=$1 sig=$2 t0 t1 d_listen base infl gtime end n0 rc=0
	end=$((SECONDS + 2))
	while (($(last_stat 9) == 0 && SECONDS < end)); do
		sleep 0.05
	done
	# with --hold, a SIGKILL right after vhu-blk holds a completion (and
	# answers others meanwhile): a request in flight behind used ones
	if [[ $sig == KILL && $backend == vhu && -n $hold ]]; then
		n0=$(grep -c 'holding a completion' "$dir/be-$inst.err")
		end=$((SECONDS + 3))
		while (($(grep -c 'holding a completion' "$dir/be-$inst.err") <= n0 && SECONDS < end)); do
			sleep 0.02
		done
		sleep 0.1
		kills_held=$((kills_held + 1))
	fi
	infl=$(last_stat 9)
	gtime=$(last_stat 0)
	((infl > 0)) && kills_inflight=$((kills_inflight + 1))
	t0=$(now)
	if [[ $sig == KILL ]]; then
		kill -KILL "$bepid" 2>/dev/null
		wait "$bepid" 2>/dev/null
		unset "bepids[inst]"
	else
		be_term "$inst"
	fi
	inst=$((inst + 1))
	# the base: a sample taken after the stop
	n0=$(samples)
	end=$((SECONDS + 2))
	while (($(samples) <= n0 && SECONDS < end)); do
		sleep 0.05
	done
	base=$(last_stat sum)
	t1=$(now)
	be_start "$inst" || return 1
	d_listen=$(since "$t1")
	wait_resume "$base" "$resume_timeout" || rc=$?
	if ((rc != 0)); then
		case_error "restart $n (SIG$sig at guest time $gtime s, $infl in flight at the last sample): the guest's I/O did not resume on back-end $inst (wait rc $rc: 1 timeout, 2 QEMU exited, 3 back-end exited, 4 guest I/O error; in flight $(last_stat 9)): $(guest_errors | paste -sd'|' -)"
		return 1
	fi
	printf '  restart %d (SIG%s at guest time %s s, %s in flight at the last sample): back-end %d up after %s s, the guest'"'"'s I/O resumed after %s s (%s s after the stop)\n' \
		"$n" "$sig" "$gtime" "$infl" "$inst" "$d_listen" "$(since "$t1")" "$(since "$t0")"
}

# --- the migrate case ------------------------------------------------------------

# gap_sleep: VHU_BLK_GAP_MS apart, at random.
gap_sleep() {
	sleep "$(awk -v a="$gap_min" -v b="$gap_max" -v r="$RANDOM" 'BEGIN { printf "%.3f", (a + (b - a) * r / 32767) / 1000 }')"
}

# be_count K REGEX: lines of back-end K's stderr matching REGEX.
be_count() {
	grep -cE -- "$2" "$dir/be-$1.err" 2>/dev/null || true
}

drained_re='came back before the ring stopped'
undrained_re='requests still held after [0-9]+ ms'

# qemu_guest N SOCK [QEMU_ARG...]: QEMU N boots the guest (or, with
# -incoming, waits for it) with its disk on the back-end at SOCK and a QMP
# socket (qmp-N.sock).  Pid in qpid[N].
qemu_guest() {
	local n=$1 sock=$2
	shift 2
	echo "  QEMU $n on $(basename "$sock")${*:+: $*}"
	qemu_boot "$dir" "$n" "$case_timeout" "$smp" "$guest_cmd" \
		-chardev "socket,id=c0,path=$sock,reconnect=1" -device "$device" \
		-qmp "unix:$dir/qmp-$n.sock,server=on,wait=off" "$@"
	qpid[$n]=$qemu_pid
	wait_for_socket "$dir/qmp-$n.sock" 20 "$qemu_pid" || {
		case_error "QEMU $n: no QMP socket"
		return 1
	}
}

# mem_compare FROM TO: (VHU_BLK_MEMCHECK=1) the destination was started with
# -S: all guest memory dumped on both sides (pmemsave) and compared page by
# page, then `cont`.  Tells a back-end's unlogged write from a guest broken
# otherwise.
mem_compare() {
	local from=$1 to=$2 n size=$((512 << 20))
	qmp_ok "$from" "{\"execute\": \"pmemsave\", \"arguments\": {\"val\": 0, \"size\": $size, \"filename\": \"$dir/mem-$from.bin\"}}" &&
		qmp_ok "$to" "{\"execute\": \"pmemsave\", \"arguments\": {\"val\": 0, \"size\": $size, \"filename\": \"$dir/mem-$to.bin\"}}" && {
		cmp -l "$dir/mem-$from.bin" "$dir/mem-$to.bin" |
			awk '{ p = int(($1 - 1) / 4096); if (p != last) { n++; last = p; if (n <= 20) printf " 0x%x", p * 4096 } }
				END { printf "\n%d\n", n }' >"$dir/memdiff-$to.txt"
		n=$(tail -n 1 "$dir/memdiff-$to.txt")
		if ((n == 0)); then
			echo "  memory: all $((size >> 12)) pages of 4 KiB equal on both sides"
		else
			case_error "memory: $n pages of 4 KiB differ between QEMU $from and QEMU $to; first ones at:$(head -n 1 "$dir/memdiff-$to.txt")"
		fi
	}
	rm -f "$dir/mem-$from.bin" "$dir/mem-$to.bin"
	qmp_ok "$to" '{"execute": "cont"}'
}

# migrate_blk M FROM TO SRC DST: migration M, the guest from QEMU FROM (on
# back-end SRC) to QEMU TO (-incoming, on back-end DST), started when the
# guest's last sample shows requests in flight (waiting up to 2 s).  The
# source back-end's drain lines are counted (drains[M]); the source must
# end in postmigrate and quit with status 0, the destination run, its
# back-end get the device, and the guest's I/O resume on it.
migrate_blk() {
	local m=$1 from=$2 to=$3 src=$4 dst=$5 c0 u0 c1 u1 end infl gtime times st rc=0 base t0 ready0 gone
	c0=$(be_count "$src" "$drained_re")
	u0=$(be_count "$src" "$undrained_re")
	ready0=$(grep -c '^vhu-blk: guest ready' "$dir/be-$dst.out" 2>/dev/null)
	end=$((SECONDS + 2))
	while (($(last_stat 9) == 0 && SECONDS < end)); do
		sleep 0.05
	done
	infl=$(last_stat 9)
	gtime=$(last_stat 0)
	echo "  migration $m at guest time $gtime s, $infl in flight at the last sample"
	migrate "$from" "$to" "$mig_mibps" || return 1
	migrate_completed "$from" "$to" "migration $m ($from -> $to)" "$mig_timeout" || return 1
	t0=$(now)
	echo "  migration $m ($from -> $to) completed: $(mig_figures)"
	# the source back-end's drain at GET_VRING_BASE
	c1=$(be_count "$src" "$drained_re")
	u1=$(be_count "$src" "$undrained_re")
	times=$(grep -E -- "$drained_re" "$dir/be-$src.err" | tail -n +$((c0 + 1)) |
		sed -n 's/.*(\([0-9]*\) ms)$/\1 ms/p' | paste -sd, -)
	drains[m]=$((c1 - c0))
	echo "  migration $m: back-end $src (the source) drained ${drains[m]} ring(s) before they stopped (${times:-nothing to wait for}); gave up on $((u1 - u0))${drain_ms:+ (--drain-ms $drain_ms)}"
	((u1 == u0)) ||
		case_error "migration $m: back-end $src stopped a ring with requests held: $(grep -E -- "$undrained_re" "$dir/be-$src.err" | tail -n 1)"
	st=$(run_state "$from")
	[[ $st == postmigrate ]] || case_error "migration $m: source QEMU $from is in state '$st', want postmigrate"
	((memcheck)) && mem_compare "$from" "$to"
	st=$(run_state "$to")
	[[ $st == running ]] || case_error "migration $m: destination QEMU $to is in state '$st', want running"
	grep -q '^vhu-blk: guest stopped$' "$dir/be-$src.out" ||
		case_error "migration $m: back-end $src never saw the device stop"
	# the source quits; its back-end sees it go (and may serve a next QEMU)
	gone=$(count_lines "$dir/be-$src.out" 'vhu-blk: front-end disconnected')
	quit_qemu "$from" || rc=$?
	((rc == 0)) || case_error "migration $m: source QEMU $from exited with status $rc on quit: $(tail -n 2 "$dir/qemu-$from.err" | paste -sd' ' -)"
	unset "qpid[$from]"
	rc=0
	wait_for_count "$dir/be-$src.out" 'vhu-blk: front-end disconnected' $((gone + 1)) 10 "${bepids[src]}" ||
		case_error "migration $m: back-end $src did not see QEMU $from go"
	# the guest's I/O resumes on TO (its first sample there is the base)
	qn=$to
	qemu_pid=${qpid[$to]}
	bepid=${bepids[dst]}
	wait_for "$dir/console-$to.log" '^VHU-T: stat ' 10 "$qemu_pid" ||
		case_error "migration $m: no stat sample from the guest on QEMU $to"
	base=$(last_stat sum)
	wait_resume "$base" "$resume_timeout" || rc=$?
	(($(grep -c '^vhu-blk: guest ready' "$dir/be-$dst.out" 2>/dev/null) > ready0)) ||
		case_error "migration $m: back-end $dst never got the device ready"
	if ((rc != 0)); then
		case_error "migration $m: the guest's I/O did not resume on QEMU $to, back-end $dst (wait rc $rc: 1 timeout, 2 QEMU exited, 3 back-end exited, 4 guest I/O error; in flight $(last_stat 9)): $(guest_errors | paste -sd'|' -)"
		return 1
	fi
	echo "  migration $m: the guest's I/O resumed on QEMU $to (back-end $dst) $(since "$t0") s after the migration completed"
}

# run_migrations: the migrate case once the guest's I/O runs on QEMU 1 (on
# back-end 1, sock-a): QEMU 1 -> 2 (back-end 2, sock-b), 2 -> 3 (back-end 1
# again), ...: VHU_BLK_MIGRATIONS of them, and more (up to mig_max) while
# no source back-end had a request to wait for.
run_migrations() {
	local m=0 from=1 to src=1 dst sock drained=0
	local -a incoming
	while :; do
		m=$((m + 1))
		to=$((m + 1))
		dst=$((3 - src))
		sock=$dir/sock-a
		((dst == 2)) && sock=$dir/sock-b
		gap_sleep
		if [[ -n $(guest_errors) ]]; then
			case_error "the guest's I/O failed before migration $m: $(guest_errors | paste -sd'|' -)"
			break
		fi
		incoming=(-incoming "unix:$dir/mig-$to.sock")
		((memcheck)) && incoming+=(-S)
		qemu_guest "$to" "$sock" "${incoming[@]}" || break
		migrate_blk "$m" "$from" "$to" "$src" "$dst" || break
		drained=$((drained + drains[m]))
		from=$to
		src=$dst
		((m < migrations)) && continue
		if ((drained == 0 && m < mig_max)) && [[ $drain_ms != 0 ]]; then
			echo "  no source back-end had a request to wait for yet: one more migration"
			continue
		fi
		break
	done
	echo "  drains per migration: ${drains[*]:-none} (rings whose held requests came back before they stopped)"
	((drained > 0)) ||
		case_error "in $m migrations no source back-end's drain had anything to wait for (no '$drained_re' line)${drain_ms:+; --drain-ms $drain_ms}"
}

# --- the guest ---------------------------------------------------------------------

# The workload, /blk/io.sh in the guest: "io.sh W CHUNK_MIB CTL_MIB MAX_S D"
# runs the streams; "io.sh stream I CHUNK_MIB D verify|write" is one of
# them.
cat >"$work/io.sh" <<'EOF'
#!/bin/sh
# qemu-blk.sh's guest workload (see there).
t="echo VHU-T:"
if [ "$1" = stream ]; then
	i=$2 mib=$3 d=$4 kind=$5 r=0 failed=1
	while :; do
		case $((r % 3)) in
		0) bs=1048576 ;;
		1) bs=65536 ;;
		*) bs=4096 ;;
		esac
		k=$(((i + r) % d))
		n=$((mib * 1048576 / bs))
		if ! dd if=/blk/d$k of=/dev/vda bs=$bs seek=$((i * n)) oflag=direct conv=fsync,notrunc 2>/tmp/e$i; then
			$t ioerr $i $r write $(grep -v records /tmp/e$i | tail -n 1)
			break
		fi
		if [ "$kind" = verify ]; then
			got=$(dd if=/dev/vda bs=$bs skip=$((i * n)) count=$n iflag=direct 2>/tmp/e$i | sha256sum | cut -c1-64)
			if grep -q 'dd:' /tmp/e$i; then
				$t ioerr $i $r read $(grep 'dd:' /tmp/e$i | tail -n 1)
				break
			fi
			if [ "$got" = "$(sed -n "$((k + 1))p" /blk/sums)" ]; then res=ok; else res=BAD; fi
			$t round $i $r $bs d$k $res $got
			[ $res = ok ] || break
		else
			$t round $i $r $bs d$k written
		fi
		r=$((r + 1))
		[ -e /tmp/stop ] && failed=0 && break
	done
	[ $failed = 0 ] || $t stream $i failed
	$t stream $i rounds $r
	exit 0
fi
w=$1 mib=$2 ctl=$3 max=$4 d=$5 ncpu=$(nproc)
mount -t debugfs none /sys/kernel/debug 2>/dev/null
(while [ ! -e /tmp/end ]; do $t stat $(cut -d' ' -f1 /proc/uptime) $(cat /sys/block/vda/stat); sleep 0.25; done) &
(
	s=$(cut -d. -f1 /proc/uptime)
	while :; do
		if ! dd if=/dev/vda of=/tmp/ctl bs=4096 skip=$((ctl * 256)) count=1 iflag=direct 2>/dev/null; then
			$t stop ioerr
			break
		fi
		if grep -q VHU-STOP /tmp/ctl; then
			$t stop seen
			break
		fi
		if [ $(($(cut -d. -f1 /proc/uptime) - s)) -ge "$max" ]; then
			$t stop timeout
			break
		fi
		sleep 0.5
	done
	touch /tmp/stop
) &
$t io start $w streams $ncpu cpus
i=0 pids=
while [ $i -lt "$w" ]; do
	kind=verify
	[ $((i % 3)) = 2 ] && kind=write
	taskset $(printf %x $((1 << (i % ncpu)))) sh /blk/io.sh stream $i "$mib" "$d" $kind &
	pids="$pids $!"
	i=$((i + 1))
done
wait $pids
touch /tmp/end
sleep 0.3
$t stat $(cut -d' ' -f1 /proc/uptime) $(cat /sys/block/vda/stat)
for h in /sys/kernel/debug/block/vda/hctx*; do
	[ -e $h/run ] && $t hctx ${h##*hctx} run $(cat $h/run)
done
dmesg | grep -E 'blk_update_request|I/O error|Buffer I/O error|critical|Call Trace|BUG|blocked for more than' >/tmp/dm
$t dmesg-errors $(wc -l </tmp/dm)
head -n 10 /tmp/dm | sed 's/^/VHU-T: dmesg | /'
$t io end
EOF

# make_tree D MIB: the extra initramfs tree with D data files of MIB MiB in
# $work/tree-D-MIB; the data in $work/data-MIB (shared by hard links).
make_tree() {
	local d=$1 mib=$2 k t=$work/tree-$1-$2 data=$work/data-$2
	[[ -d $t ]] && return 0
	mkdir -p "$t/blk" "$data" || return 1
	for ((k = 0; k < d; k++)); do
		if [[ ! -f $data/d$k ]]; then
			head -c "$((mib << 20))" /dev/urandom >"$data/d$k" || return 1
			sha256sum "$data/d$k" | cut -c1-64 >"$data/d$k.sha"
		fi
		ln "$data/d$k" "$t/blk/d$k" || return 1
		cat "$data/d$k.sha" >>"$t/blk/sums"
	done
	install -m 0755 "$work/io.sh" "$t/blk/io.sh"
}

# --- a case ----------------------------------------------------------------------

# run_case NAME PACKED QUEUES
run_case() {
	local name=$1 packed=$2 chardev device smp line rc n k f i sig bad t_io
	local logs=() ran=0 sock
	nq=$3
	dir=$work/$name
	case_begin "qemu-blk $name ($backend)"
	mkdir -p "$dir"
	inst=1
	bepid=
	bepids=()
	qemu_pid=
	qpid=()
	qn=1
	drains=()
	kills_inflight=0
	kills_held=0
	w=$((3 * nq))
	d=$((w + 1))
	chunk_mib=$chunk_max
	while ((chunk_mib > 1 && d * chunk_mib > data_max)); do
		chunk_mib=$((chunk_mib / 2))
	done
	ctl_mib=$((w * chunk_mib))
	img_mib=$((ctl_mib + 2))
	smp=$nq

	# the image: W slots (zeros), the control MiB (zeros), a guard MiB of
	# random data
	if ! { truncate -s "${img_mib}M" "$dir/disk.img" &&
		head -c 1M /dev/urandom >"$dir/guard.bin" &&
		dd if="$dir/guard.bin" of="$dir/disk.img" bs=1M seek=$((ctl_mib + 1)) conv=notrunc status=none; }; then
		case_error "cannot create the image"
	fi
	if ! { make_tree "$d" "$chunk_mib" && guest_initrd_add "$work" "$work/tree-$d-$chunk_mib"; }; then
		case_error "cannot build the guest's initramfs"
	fi

	# migrate: QEMU 1 and vhu-blk 1 on sock-a, the destination on sock-b
	sock=$dir/sock
	((mig)) && sock=$dir/sock-a
	chardev="socket,id=c0,path=$sock,reconnect=1"
	# client: QEMU listens, vhu-blk connects (and reconnects with backoff)
	((client)) && chardev="socket,id=c0,path=$sock,server=on,wait=on"
	device="vhost-user-blk-pci,chardev=c0,vectors=0,num-queues=$nq"
	((packed)) && device+=",packed=on"
	guest_cmd="sh /blk/io.sh $w $chunk_mib $ctl_mib $io_max_s $d"
	echo "  qemu ... -smp $smp -chardev $chardev -device $device"
	if [[ $backend == qsd ]]; then
		echo "  qemu-storage-daemon ... cache.direct=on ... num-queues=$nq; image ${img_mib} MiB, $w streams of ${chunk_mib} MiB, $d data files"
	else
		echo "  vhu-blk --socket $(basename "$sock") --file disk.img --queues $nq${drain_ms:+ --drain-ms $drain_ms}; image ${img_mib} MiB, $w streams of ${chunk_mib} MiB, $d data files"
	fi
	((mig)) && [[ $backend != vhu ]] && case_error "the migrate case is for vhu-blk only"
	if ((mig)); then
		# vhu-blk 2 serves the destination, on the same image
		[[ ${#VHU_CASE_ERRORS[@]} == 0 ]] && be_start 1 "$sock" && be_start 2 "$dir/sock-b" && inst=2 &&
			qemu_guest 1 "$sock"
	elif [[ ${#VHU_CASE_ERRORS[@]} == 0 ]] && be_start 1; then
		qemu_boot "$dir" 1 "$case_timeout" "$smp" "$guest_cmd" -chardev "$chardev" -device "$device"
	fi
	if [[ ${#VHU_CASE_ERRORS[@]} == 0 ]]; then
		rc=0
		wait_for "$dir/console-1.log" '^VHU-T: io start|^VHU-GUEST: FAIL' "$boot_timeout" "$qemu_pid" || rc=$?
		if ((rc != 0)) || console_has '^VHU-GUEST: FAIL'; then
			case_error "the guest's I/O did not start (wait rc $rc)$(console | grep -m1 FAIL)"
		elif ! ran=1 || ! wait_resume 0 30; then
			case_error "the guest's I/O does not run on back-end 1"
		else
			t_io=$(now)
			n=0
			if ((mig)); then
				run_migrations
			else
				for sig in $restarts; do
					n=$((n + 1))
					gap_sleep
					if [[ -n $(guest_errors) ]]; then
						case_error "the guest's I/O failed before restart $n: $(guest_errors | paste -sd'|' -)"
						break
					fi
					if console_has '^VHU-T: stop '; then
						case_error "the guest stopped before restart $n"
						break
					fi
					restart "$n" "$sig" || break
				done
				echo "  $kills_inflight of $n stops with requests in flight at the last sample"
			fi
			sleep 2
			printf 'VHU-STOP\n' | dd of="$dir/disk.img" bs=4096 seek=$((ctl_mib * 256)) conv=notrunc,sync oflag=direct status=none ||
				case_error "cannot write the stop mark"
			rc=0
			# a guest whose I/O failed may have requests that never end
			n=$end_timeout
			[[ -z $(guest_errors) ]] || n=10
			wait_for "$dir/console-$qn.log" '^VHU-T: io end' "$n" "$qemu_pid" || rc=$?
			((rc == 0)) || case_error "the guest's workload did not end in $n s (wait rc $rc)"
			echo "  the guest's I/O ran $(since "$t_io") s from the first sample to the end; $(console | grep -m1 '^VHU-T: stop ')"
			console_has '^VHU-T: stop timeout' && case_error "the guest never saw the stop mark (stopped after $io_max_s s)"
		fi
		rc=0
		if ((ran)) && console_has '^VHU-T: io end'; then
			wait_for "$dir/console-$qn.log" '^VHU-GUEST: poweroff' 30 "$qemu_pid" || rc=$?
			((rc == 0)) || case_error "the guest did not power off (wait rc $rc)"
			stop_pid "$qemu_pid" TERM 20 || rc=$?
			((rc == 0)) || case_error "QEMU $qn exited with status $rc: $(tail -n 3 "$dir/qemu-$qn.err" | paste -sd' ' -)"
		else
			stop_pid "$qemu_pid" TERM 20 || true
		fi
	fi
	# QEMUs left behind by a failed migration
	for n in "${!qpid[@]}"; do
		stop_pid "${qpid[$n]}" TERM 20 || true
	done
	# the instances still running: SIGTERM, the guest gone
	for k in "${!bepids[@]}"; do
		be_term "$k"
	done

	((ran)) && check_run
	f=$(console | sed -n 's/^VHU-GUEST: vda features \([01]*\)$/\1/p' | tail -n 1)
	if [[ -z $f ]]; then
		case_error "the guest did not print vda's features"
	elif [[ ${f:34:1} != "$packed" ]]; then
		case_error "the guest's virtio-blk driver negotiated RING_PACKED (bit 34) = ${f:34:1}, want $packed (features, bit 0 first: $f)"
	else
		echo "  guest driver RING_PACKED (bit 34) = $packed"
	fi
	bad=$(console | grep -vE '^VHU-|^\[ *[0-9.]+\] (random|clocksource|tsc):' | grep -E 'virtio|vda|blk|error|Call Trace|BUG' | head -n 3)
	[[ -z $bad ]] || case_error "the guest's console: $(paste -sd'|' - <<<"$bad")"
	# the back-ends' and QEMU's logs
	for ((k = 1; k <= inst; k++)); do
		f=$dir/be-$k.out
		if [[ -s $f ]]; then
			# vhu-blk: the features it was told, its counters at exit
			line=$(sed -n 's/^vhu-blk: guest ready, features //p' "$f" | sort -u | paste -sd, -)
			echo "  back-end $k: guest ready ${line:+(features $line) }$(grep -c '^vhu-blk: guest ready' "$f") times; $(grep -E '^vhu-blk: [a-z ]+: in [0-9]+ out' "$f" | tail -n 1 | sed 's/^vhu-blk: //')"
			n=$(grep -E '^vhu-blk: [a-z ]+: in [0-9]+ out' "$f" | tail -n 1 | sed -n 's/.* ioerr \([0-9]*\) .*/\1/p')
			((${n:-0} == 0)) || case_error "back-end $k counted $n I/O errors"
		fi
		f=$dir/be-$k.err
		[[ -s $f ]] || continue
		bad=$(grep -i 'broke' "$f" | head -n 3)
		[[ -z $bad ]] || case_error "back-end $k: $(paste -sd'|' - <<<"$bad")"
		echo "  back-end $k's stderr (lines by kind):"
		sed -E 's/[0-9]+/N/g' "$f" | sort | uniq -c | sort -rn | head -n 6 | sed 's/^/  | /'
	done
	# what inflight tracking handed out again (vhu's info line, --verbose)
	if [[ $backend == vhu ]]; then
		replayed=$(cat "$dir"/be-*.err 2>/dev/null |
			sed -n 's/.*queue [0-9]*: \([0-9]*\) requests were in flight; handed out again first.*/\1/p' |
			awk '{ n += $1; k++ } END { printf "%d requests in %d queue starts", n, k }')
		echo "  replayed from the inflight region: $replayed"
		# each SIGKILL came while a completion was held: something must
		# have been handed out again
		((kills_held == 0)) || [[ ! $replayed =~ ^0\  ]] ||
			case_error "$kills_held SIGKILLs while vhu-blk held a completion, yet nothing was replayed"
	fi
	for f in "$dir"/qemu-[0-9].err; do
		[[ -s $f ]] || continue
		echo "  QEMU's stderr$( ((mig)) && echo " ($(basename "$f"))") (lines by kind):"
		sed -E 's/[0-9]+/N/g' "$f" | sort | uniq -c | sort -rn | head -n 6 | sed 's/^/  | /'
	done
	# for case_end: the console without the samples, the last of each log
	console | grep -v '^VHU-T: stat ' >"$dir/console.events"
	for f in "$dir"/be-*.err "$dir"/be-*.out "$dir"/qemu-[0-9].err "$dir/qmp-log" "$dir/console.events"; do
		[[ -s $f ]] && logs+=("$f")
	done
	case_end "${logs[@]}"
	rm -f "$dir/disk.img"
}

# check_run: the checks of a case whose guest I/O ran (run_case's
# variables): the rounds, the image, the hardware queues, dmesg.
check_run() {
	local ok_rounds bad_rounds bad i rounds k want got line n f
	ok_rounds=$(console | grep -cE '^VHU-T: round [0-9]+ [0-9]+ [0-9]+ d[0-9]+ ok ')
	bad_rounds=$(console | grep -E '^VHU-T: round [0-9]+ [0-9]+ [0-9]+ d[0-9]+ BAD ' | head -n 5)
	[[ -z $bad_rounds ]] || case_error "read-back mismatch: $(paste -sd'|' - <<<"$bad_rounds")"
	bad=$(console | grep -E '^VHU-T: ioerr ' | head -n 5)
	[[ -z $bad ]] || case_error "dd failed in the guest: $(paste -sd'|' - <<<"$bad")"
	echo "  $ok_rounds rounds read back intact; per stream:$(console | sed -n 's/^VHU-T: stream \([0-9]*\) rounds \([0-9]*\)$/ \1:\2/p' | tr -d '\n')"
	# the image: each slot holds its stream's last data file
	for ((i = 0; i < w; i++)); do
		rounds=$(console | sed -n "s/^VHU-T: stream $i rounds \([0-9]*\)\$/\1/p" | tail -n 1)
		if [[ -z $rounds ]]; then
			case_error "stream $i did not finish"
			continue
		fi
		if console_has "^VHU-T: stream $i failed"; then
			echo "  stream $i failed in round $rounds: its slot is not checked"
			continue
		fi
		((rounds >= 2)) || case_error "stream $i did only $rounds rounds"
		k=$(((i + rounds - 1) % d))
		want=$(cat "$work/data-$chunk_mib/d$k.sha")
		got=$(dd if="$dir/disk.img" bs=1M skip=$((i * chunk_mib)) count="$chunk_mib" status=none | sha256sum | cut -c1-64)
		[[ $got == "$want" ]] ||
			case_error "the image's slot $i is not data file d$k (stream $i's round $((rounds - 1))): sha256 $got, want $want"
	done
	got=$(dd if="$dir/disk.img" bs=4096 skip=$((ctl_mib * 256)) count=1 status=none | tr -d '\0' | head -c 9)
	[[ $got == VHU-STOP ]] || case_error "the control sector lost the stop mark: '$got'"
	cmp -s <(dd if="$dir/disk.img" bs=1M skip=$((ctl_mib + 1)) count=1 status=none) "$dir/guard.bin" ||
		case_error "the guard MiB after the slots changed"
	[[ $(stat -c %s "$dir/disk.img") == $((img_mib << 20)) ]] ||
		case_error "the image's size changed: $(stat -c %s "$dir/disk.img")"
	console_has '^VHU-T: io end' || return 0
	line=$(console | sed -n 's/^VHU-T: hctx \([0-9]*\) run \([0-9]*\)$/\1:\2/p' | paste -sd' ' -)
	n=$(wc -w <<<"$line")
	((n == nq)) || case_error "the guest has $n hardware queues ($line), want $nq"
	for f in $line; do
		((${f#*:} > 0)) || case_error "hardware queue ${f%%:*} was never run"
	done
	echo "  hardware queue runs: ${line:-none}"
	n=$(console | sed -n 's/^VHU-T: dmesg-errors \([0-9]*\)$/\1/p' | tail -n 1)
	if [[ -z $n ]]; then
		case_error "the guest did not report its dmesg"
	elif ((n > 0)); then
		case_error "the guest's dmesg has $n I/O error lines: $(console | sed -n 's/^VHU-T: dmesg | //p' | head -n 3 | paste -sd'|' -)"
	fi
}

for c in $cases; do
	case $c in
	split) client=0 mig=0 run_case split 0 1 ;;
	packed) client=0 mig=0 run_case packed 1 1 ;;
	mq) client=0 mig=0 run_case mq 0 2 ;;
	client) client=1 mig=0 run_case client 1 1 ;;
	migrate) client=0 mig=1 run_case migrate 0 1 ;;
	migrate-packed) client=0 mig=1 run_case migrate-packed 1 1 ;;
	*)
		case_begin "qemu-blk $c ($backend)"
		case_error "unknown case"
		case_end
		;;
	esac
done

summary
