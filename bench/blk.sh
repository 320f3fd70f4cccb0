#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# blk.sh - vhu-blk against qemu-storage-daemon (QEMU 7.2's libvhost-user
# based vhost-user-blk export, the reference peer): guest IOPS and the
# back-end's host CPU time per I/O, both back-ends in the same guest and
# taking turns in the same run.
#
# One QEMU 7.2 TCG guest (the test guest of scripts/guest-image.sh, -smp 2,
# 512 MiB) has two vhost-user-blk-pci disks, one queue each:
#   A: vhu-blk --file vhu.img --queues 1 --serial vhu-bench
#      (O_DIRECT itself; io_uring when built with liburing)
#   B: qemu-storage-daemon --blockdev driver=file,filename=qsd.img,
#      cache.direct=on,aio=io_uring (native, then threads, when refused)
#      --export type=vhost-user-blk,...,writable=on,num-queues=1
# The two images are raw files of the same size (--size-mib, written out
# in full, so no read hits a hole and no write allocates), side by side in
# the work directory (one file system).  The guest tells which /dev/vdX is
# which by its serial (/sys/block/vdX/serial): vhu-blk's is vhu-bench.
#
# The workload is test/bench/blk-load.c, built here (gcc -O2 -static
# -pthread) and put in the guest's initramfs: O_DIRECT pread/pwrite on the
# raw disk, --threads threads (default 4) with one synchronous request
# each (queue depth 4); sequential modes share one offset, random ones pick
# aligned offsets over the whole disk.  The host drives it over a second
# serial port (ttyS1, a QEMU pipe chardev): "run DISK MODE BS ...".  The
# guest starts the threads, waits --warmup seconds, says "B", runs
# --seconds, says "E" and keeps the load going until the host, which reads
# the back-ends' CPU times at B and at E, answers; then it reports the
# I/Os, bytes and nanoseconds between B and E.
#
# Rows: {seq,rand}-{read,write}/{4k,64k}.  Per row, --reps cycles (default
# 6) of a window on each disk, vhu then qsd on odd cycles and qsd then vhu
# on even ones (ABBA: a steady drift favours neither).  Per window:
#   iops, mbps        the guest's, over its window
#   cpu_us_per_io     the measured back-end's CPU time (user + system, all
#                     its threads) between B and E over the I/Os: from the
#                     per-thread run times (/proc/PID/task/*/schedstat, ns)
#                     when no thread ended in the window, else from
#                     /proc/PID/stat's utime+stime (10 ms ticks)
# Per row: the medians of the per-cycle ratios vhu/qsd of IOPS (> 1: vhu
# faster) and of CPU per I/O (< 1: vhu cheaper), their quartiles, the
# cycles vhu won, the median of each side.  The goal: IOPS ratio >= 1.0
# with less CPU per I/O.
#
# CAVEAT: the guest runs under TCG.  Its CPUs, not the back-ends, limit the
# IOPS (guest_busy_pct, qemu_cpu_pct in the TSV), and on a 2-CPU host QEMU
# and the back-end compete for the same CPUs.  The IOPS ratio then mostly
# says that a back-end does not slow the guest down (its latency); the CPU
# time per I/O on the host is the back-end's own cost, meaningful whatever
# the guest's speed.
#
# Samples in --out (default bench/results/blk.tsv), what was measured in
# the .info beside it, the per-row summary in -summary.tsv.  A window that
# gets no I/O, an I/O error or no reply from the guest is FAIL in the TSV
# (exit status 1; a guest that stops answering ends the run).  Needs root.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

BENCH_NAME=blk
QSD=${QSD:-qemu-storage-daemon}
BENCH_REPS=6
BENCH_SECONDS=3
BENCH_WARMUP=1
THREADS=4
SMP=2
IMG_MIB=256
VHU_SERIAL=vhu-bench

usage() {
	cat <<EOF
usage: $0 [options]
  --rows REGEX    only the rows whose name matches (grep -E); --list shows them
  --reps N        cycles per row, each a window on either disk (default $BENCH_REPS)
  --seconds N     measurement window in seconds (default $BENCH_SECONDS)
  --warmup N      seconds of I/O before the window (default $BENCH_WARMUP)
  --threads N     guest threads, one synchronous request each (default $THREADS)
  --smp N         guest CPUs (default $SMP)
  --size-mib N    size of each image (default $IMG_MIB)
  --out FILE      the TSV of every window (default bench/results/blk.tsv)
  --build DIR     vhu build directory (default build-bench): configured
                  (Release) if new, built incrementally if it builds this tree
  --keep          keep the work directory (logs, console)
  --list          print the rows and exit
EOF
}

while (($#)); do
	case $1 in
	-h | --help) usage; exit 0 ;;
	--threads) THREADS=${2:?}; shift 2 ;;
	--smp) SMP=${2:?}; shift 2 ;;
	--size-mib) IMG_MIB=${2:?}; shift 2 ;;
	--rows | --reps | --seconds | --warmup | --out | --build | --keep | --list)
		bench_opt "$@" || { usage >&2; exit 2; }
		shift "$BENCH_SHIFT"
		;;
	*) usage >&2; exit 2 ;;
	esac
done
for v in threads:THREADS smp:SMP size-mib:IMG_MIB; do
	n=${v#*:}
	[[ ${!n} =~ ^[1-9][0-9]*$ ]] || bench_die "--${v%%:*} wants a positive number, not '${!n}'"
done
((BENCH_SECONDS > 0 && BENCH_REPS > 0)) || bench_die "--seconds and --reps want at least 1"

all_rows=()
for m in seq-read seq-write rand-read rand-write; do
	for b in 4k 64k; do
		all_rows+=("$m/$b")
	done
done
rows_filter "${all_rows[@]}"

# --- set-up (bench_setup's, without testpmd) ---------------------------------

[[ $(id -u) == 0 ]] || bench_die "needs root (the guest image, QEMU)"
for c in "$VHU_QEMU" "$QSD" gcc cpio; do
	command -v "$c" >/dev/null || bench_die "$c not found (apt-get install qemu-system-x86 qemu-utils gcc cpio)"
done
[[ -n $BENCH_OUT ]] || BENCH_OUT=$BENCH_ROOT/bench/results/blk.tsv
mkdir -p "$(dirname "$BENCH_OUT")"
BENCH_WORK=$(mktemp -d "${TMPDIR:-/tmp}/vhu-blk-bench.XXXXXX")
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
W=$BENCH_WORK
BENCH_DIR=$W

# shellcheck disable=SC2317 # run by bench_cleanup
blk_cleanup() {
	# QEMU itself, should timeout(1) around it have gone first
	[[ -z ${QEMU_EMU:-} ]] || stop_pid "$QEMU_EMU" TERM 5 2>/dev/null
	rm -f "$W/vhu.img" "$W/qsd.img" # even when the logs are kept
}
BENCH_CLEANUP+=(blk_cleanup)

# A build of this tree configured before vhu-blk existed has no target for
# it until cmake runs again.
if [[ -f $BENCH_BUILD/CMakeCache.txt && ! -x $BENCH_BUILD/examples/vhu-blk ]] &&
	[[ $(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BENCH_BUILD/CMakeCache.txt") -ef $BENCH_ROOT ]]; then
	cmake -S "$BENCH_ROOT" -B "$BENCH_BUILD" >"$W/cmake.log" 2>&1 ||
		{ BENCH_KEEP=1; bench_die "cmake failed: see $W/cmake.log"; }
fi
bench_need_build vhu-blk
VHU_BLK=$BENCH_BINARY

mkdir -p "$W/tree/blk"
gcc -O2 -static -pthread -Wall -o "$W/tree/blk/blk-load" "$BENCH_ROOT/test/bench/blk-load.c" \
	>"$W/gcc.log" 2>&1 || { BENCH_KEEP=1; bench_die "cannot build blk-load: see $W/gcc.log"; }
bench_log "guest image"
guest_image "$W" || bench_die "no guest image"
guest_initrd_add "$W" "$W/tree" || bench_die "cannot add blk-load to the initramfs"

bench_log "two images of $IMG_MIB MiB in $W ($(stat -f -c %T "$W"))"
for k in vhu qsd; do
	dd if=/dev/zero of="$W/$k.img" bs=1M count="$IMG_MIB" oflag=direct conv=fsync status=none ||
		bench_die "cannot write $W/$k.img"
done

# --- the back-ends and the guest ------------------------------------------------

declare -A BE_PID=()
spawn "$W/vhu.out" "$W/vhu.err" "$VHU_BLK" --socket "$W/vhu.sock" --file "$W/vhu.img" \
	--queues 1 --serial "$VHU_SERIAL"
BE_PID[vhu]=$VHU_LAST_PID
wait_for_socket "$W/vhu.sock" 30 "${BE_PID[vhu]}" ||
	{ BENCH_KEEP=1; bench_die "vhu-blk did not listen: $(tail -n 3 "$W/vhu.err")"; }

QSD_AIO=
for aio in io_uring native threads; do
	QSD_ARGS=(--blockdev "driver=file,node-name=file0,filename=$W/qsd.img,cache.direct=on,aio=$aio"
		--export "type=vhost-user-blk,id=exp0,node-name=file0,addr.type=unix,addr.path=$W/qsd.sock,writable=on,num-queues=1")
	spawn "$W/qsd.out" "$W/qsd-$aio.err" "$QSD" "${QSD_ARGS[@]}"
	BE_PID[qsd]=$VHU_LAST_PID
	if wait_for_socket "$W/qsd.sock" 30 "${BE_PID[qsd]}"; then
		QSD_AIO=$aio
		break
	fi
	stop_pid "${BE_PID[qsd]}" TERM 3 || true
	bench_warn "qemu-storage-daemon refused aio=$aio: $(tail -n 1 "$W/qsd-$aio.err")"
done
[[ -n $QSD_AIO ]] || { BENCH_KEEP=1; bench_die "qemu-storage-daemon did not start"; }

mkfifo "$W/ctl.in" "$W/ctl.out"
exec {CTL_W}<>"$W/ctl.in" {CTL_R}<>"$W/ctl.out"
n_windows=$((${#BENCH_ROW_LIST[@]} * BENCH_REPS * 2))
life=$((300 + n_windows * (BENCH_WARMUP + BENCH_SECONDS + 30)))
# shellcheck disable=SC2034 # qemu_pid is set by qemu_boot
qemu_pid=
qemu_boot "$W" 1 "$life" "$SMP" "/blk/blk-load serve /dev/ttyS1 2" \
	-chardev "socket,id=c0,path=$W/vhu.sock" -device vhost-user-blk-pci,chardev=c0,num-queues=1 \
	-chardev "socket,id=c1,path=$W/qsd.sock" -device vhost-user-blk-pci,chardev=c1,num-queues=1 \
	-chardev "pipe,id=ctl,path=$W/ctl" -device isa-serial,chardev=ctl,index=1
QEMU_PID=$qemu_pid

# ctl_line SECONDS: the guest's next line on the control port in CTL_LINE
# (also logged in ctl.log).  Returns 1 after SECONDS or if QEMU is gone.
ctl_line() {
	local end=$((SECONDS + $1)) part='' l
	while :; do
		l=
		if IFS= read -r -t 1 -u "$CTL_R" l; then
			CTL_LINE=${part}${l//$'\r'/}
			echo "< $CTL_LINE" >>"$W/ctl.log"
			return 0
		fi
		part+=${l//$'\r'/}
		((SECONDS < end)) && alive "$QEMU_PID" || return 1
	done
}

# ctl_expect WORD SECONDS: until the guest's line starting with WORD (in
# CTL_LINE); returns 2 on an "X ..." line (CTL_LINE then says why), 1 on
# timeout.
ctl_expect() {
	local end=$((SECONDS + $2))
	while ctl_line $((end - SECONDS > 0 ? end - SECONDS : 1)); do
		[[ $CTL_LINE == "$1" || $CTL_LINE == "$1 "* ]] && return 0
		[[ $CTL_LINE != "X "* ]] || return 2
	done
	CTL_LINE="no '$1' from the guest in $2 s"
	return 1
}

ctl_send() {
	echo "> $1" >>"$W/ctl.log"
	echo "$1" >&"$CTL_W"
}

bench_log "booting the guest (TCG, -smp $SMP)"
declare -A DISK=() HELLO=()
while ctl_expect H 120; do
	read -r _ d serial _ <<<"$CTL_LINE"
	if [[ $serial == "$VHU_SERIAL" ]]; then k=vhu; else k=qsd; fi
	[[ -z ${DISK[$k]:-} ]] || { BENCH_KEEP=1; bench_die "two disks look like $k: ${DISK[$k]} and $d"; }
	DISK[$k]=$d HELLO[$k]=${CTL_LINE#H }
	[[ -n ${DISK[vhu]:-} && -n ${DISK[qsd]:-} ]] && break
done
if [[ -z ${DISK[vhu]:-} || -z ${DISK[qsd]:-} ]]; then
	BENCH_KEEP=1
	bench_die "the guest did not show both disks ($CTL_LINE); console: $(tail -n 5 "$W/console-1.log" | tr -d '\r' | paste -sd'|' -)"
fi
ctl_expect READY 30 || { BENCH_KEEP=1; bench_die "the guest is not ready: $CTL_LINE"; }
bench_log "vhu-blk is /dev/${DISK[vhu]}, qemu-storage-daemon /dev/${DISK[qsd]}"
# QEMU runs under timeout(1): the emulator is its child
QEMU_EMU=$(pgrep -P "$QEMU_PID" | head -n 1 || true)
QEMU_EMU=${QEMU_EMU:-$QEMU_PID}

# hello_field KIND N: field N of the guest's H line for KIND (1 disk,
# 2 serial, 3 sectors, 4 max_sectors_kb, 5 max_segments, 6 features).
hello_field() {
	awk -v n="$2" '{ print $n }' <<<"${HELLO[$1]}"
}
FEAT_VHU=$(hello_field vhu 6) FEAT_QSD=$(hello_field qsd 6)
# feature_diff A B: the bit numbers where two bit strings (bit 0 first) differ.
feature_diff() {
	awk -v a="$1" -v b="$2" 'BEGIN { for (i = 1; i <= length(a); i++)
		if (substr(a, i, 1) != substr(b, i, 1)) printf "%s%d(%s)", n++ ? " " : "", i - 1, substr(a, i, 1) == "1" ? "vhu" : "qsd" }'
}
FEAT_DIFF=$(feature_diff "$FEAT_VHU" "$FEAT_QSD")
# e.g. SIZE_MAX (1) and CONFIG_WCE (11), which qemu-storage-daemon offers:
# no effect on these requests
[[ -z $FEAT_DIFF ]] || bench_log "the guest's driver features differ in bits (offered by): $FEAT_DIFF"

# --- .info ------------------------------------------------------------------------

info() {
	local cache=$BENCH_BUILD/CMakeCache.txt src rev k io
	src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$cache" 2>/dev/null)
	rev=$(git -C "${src:-/nonexistent}" describe --always --dirty 2>/dev/null || echo "not a git checkout")
	echo "date: $(date -Is)"
	echo "script: blk; rows: ${BENCH_ROWS:-all} (${#BENCH_ROW_LIST[@]}); cycles $BENCH_REPS;" \
		"warm-up ${BENCH_WARMUP}s, window ${BENCH_SECONDS}s; guest threads $THREADS (queue depth)"
	echo "vhu: $src at $rev; build $BENCH_BUILD ($(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$cache" 2>/dev/null)," \
		"vhu-blk built $(date -r "$VHU_BLK" -Is))"
	io=io_uring
	ldd "$VHU_BLK" 2>/dev/null | grep -q liburing || io='synchronous I/O (built without liburing)'
	grep -q 'io_uring unavailable' "$W/vhu.err" && io='synchronous I/O (io_uring unavailable)'
	echo "vhu-blk: --queues 1 --serial $VHU_SERIAL (queue size 1024); $io"
	echo "qsd: $("$QSD" --version | head -n 1); ${QSD_ARGS[*]}"
	echo "qemu: $("$VHU_QEMU" --version | head -n 1); TCG, -smp $SMP, -m 512 (memfd, shared);" \
		"vhost-user-blk-pci num-queues=1 (queue size QEMU's default)"
	echo "guest: $(tr -d '\r' <"$W/console-1.log" | sed -n 's/^VHU-GUEST: init (\(.*\))$/\1/p' | head -n 1)"
	for k in vhu qsd; do
		echo "disk $k: /dev/$(hello_field "$k" 1) serial $(hello_field "$k" 2), $(hello_field "$k" 3) sectors," \
			"max_sectors_kb $(hello_field "$k" 4), max_segments $(hello_field "$k" 5)," \
			"features (bit 0 first) $(hello_field "$k" 6)"
	done
	echo "features differ in bits: ${FEAT_DIFF:-none}"
	echo "images: $IMG_MIB MiB each, written out, in $W ($(stat -f -c %T "$W") on $(df --output=source "$W" | tail -n 1))"
	echo "kernel: $(uname -r); cpus: $(nproc --all); $(grep -m1 'model name' /proc/cpuinfo)"
	echo "load before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
}
info | tee "${BENCH_OUT%.tsv}.info"

# --- windows ------------------------------------------------------------------------

# cpu_snap_blk FILE: per-thread run times (schedstat, ns) and process
# ticks (utime+stime) of both back-ends and QEMU, and the time.
cpu_snap_blk() {
	local k p t s f ns
	{
		echo "time $EPOCHREALTIME"
		for k in vhu qsd qemu; do
			[[ $k == qemu ]] && p=$QEMU_EMU || p=${BE_PID[$k]}
			if read -r s 2>/dev/null <"/proc/$p/stat"; then
				read -r -a f <<<"${s##*) }"
				echo "ticks $k $((f[11] + f[12]))"
			fi
			for t in /proc/"$p"/task/*; do
				read -r ns _ 2>/dev/null <"$t/schedstat" && echo "thr $k ${t##*/} $ns"
			done
		done
	} >"$1"
}

# cpu_delta BEFORE AFTER: "K=SCHED_NS,TICKS,EXITED ... WALL_US" for vhu,
# qsd and qemu: run time added by the threads alive at the end, the
# process's ticks, how many threads of the start were gone at the end.
cpu_delta() {
	awk '
		FNR == NR && $1 == "time" { t0 = $2; next }
		FNR == NR && $1 == "ticks" { k0[$2] = $3; next }
		FNR == NR && $1 == "thr" { n0[$2 " " $3] = $4; next }
		$1 == "time" { t1 = $2 }
		$1 == "ticks" { k1[$2] = $3 }
		$1 == "thr" { d[$2] += $4 - n0[$2 " " $3]; seen[$2 " " $3] = 1 }
		END {
			for (key in n0) { split(key, a, " "); if (!(key in seen)) ex[a[1]]++ }
			split("vhu qsd qemu", ks, " ")
			for (i = 1; i <= 3; i++) { k = ks[i]; printf "%s=%d,%d,%d ", k, d[k], k1[k] - k0[k], ex[k] }
			printf "%d\n", (t1 - t0) * 1e6
		}' "$1" "$2"
}

TICK_NS=$((1000000000 / $(getconf CLK_TCK)))

# window CYCLE ROW KIND: one window on KIND's disk; a TSV line.
window() {
	local cycle=$1 row=$2 kind=$3 other mode bs err='' rc=0 status=ok
	local ios=0 bytes=0 ns=0 errs=0 busy=0 irqs=0 delta sched ticks exited wall osched qsched
	local cpu_ns=0 src=sched iops=0 mbps=0 cpu_us=- be_pct=0 qemu_pct=0
	[[ $kind == vhu ]] && other=qsd || other=vhu
	mode=${row%/*} bs=${row#*/}
	bs=$((${bs%k} * 1024))
	ctl_send "run ${DISK[$kind]} $mode $bs $THREADS $((BENCH_WARMUP * 1000)) $((BENCH_SECONDS * 1000))"
	if ! ctl_expect B $((BENCH_WARMUP + 30)); then
		err=$CTL_LINE
	else
		cpu_snap_blk "$W/cpu.0"
		ctl_expect E $((BENCH_SECONDS + 30)) || err=$CTL_LINE
		cpu_snap_blk "$W/cpu.1"
		ctl_send go
		if [[ -z $err ]]; then
			if ctl_expect R 60; then
				read -r _ ios bytes ns errs busy irqs <<<"$CTL_LINE"
			else
				err=$CTL_LINE
			fi
		fi
	fi
	if [[ -n $err ]]; then
		CTL_BROKEN=1
		[[ $err == "X "* ]] && CTL_BROKEN=0 # the guest answered: still in step
	else
		delta=$(cpu_delta "$W/cpu.0" "$W/cpu.1")
		wall=${delta##* }
		IFS=, read -r sched ticks exited <<<"$(kv "$delta" "$kind")"
		cpu_ns=$sched
		if ((exited > 0)); then
			cpu_ns=$((ticks * TICK_NS)) src=ticks
		fi
		osched=$(kv "$delta" "$other") osched=${osched%%,*}
		qsched=$(kv "$delta" qemu) qsched=${qsched%%,*}
		read -r iops mbps cpu_us be_pct qemu_pct < <(awk -v i="$ios" -v b="$bytes" -v n="$ns" -v c="$cpu_ns" \
			-v w="$wall" -v q="$qsched" 'BEGIN {
				printf "%.0f %.2f %s %.1f %.0f\n", (n > 0 ? i * 1e9 / n : 0), (n > 0 ? b * 1e3 / n : 0),
					(i > 0 ? sprintf("%.2f", c / 1e3 / i) : "-"), (w > 0 ? c / 10 / w : 0),
					(w > 0 ? q / 10 / w : 0) }')
		if ((ios <= 0)); then
			err="no I/O in the window"
		elif ((errs > 0)); then
			err="$errs I/O errors in the guest"
		elif ((bytes != ios * bs)); then
			err="$bytes bytes for $ios I/Os of $bs"
		elif ((cpu_ns <= 0)); then
			err="the back-end used no CPU time: not the one serving the disk?"
		fi
	fi
	if [[ -n $err ]]; then
		status=FAIL
		sample_fail "cycle $cycle $row $kind: $err" "$W/$kind.err" "$W/ctl.log"
	fi
	tsv_add "$cycle" "$row" "$kind" "$status" "$iops" "$mbps" "$cpu_us" "$ios" "$bytes" "$ns" \
		"$cpu_ns" "$src" "${ticks:-0}" "${exited:-0}" "$be_pct" "${osched:-0}" "$qemu_pct" "$busy" \
		"$(awk -v q="$irqs" -v i="$ios" 'BEGIN { printf "%.3f", (i > 0 ? q / i : 0) }')" "${wall:-0}" "${DISK[$kind]}"
	printf '%s cycle %d %-14s %-3s %6s IOPS %7s MB/s %6s us CPU/IO (back-end %4s%%, QEMU %3s%%, guest busy %3s%%, %s irq/IO)%s\n' \
		"$(date +%T)" "$cycle" "$row" "$kind" "$iops" "$mbps" "$cpu_us" "$be_pct" "$qemu_pct" "$busy" \
		"$(awk -v q="$irqs" -v i="$ios" 'BEGIN { printf "%.2f", (i > 0 ? q / i : 0) }')" \
		"$([[ $status == ok ]] || echo " FAIL")"
}

# blk_summary TSV: per row (first-seen order), from the cycles whose two
# windows are ok: ROW CYCLES, the median IOPS of vhu and qsd, the median
# CPU us per I/O of each, then for the IOPS ratio vhu/qsd and the CPU/IO
# ratio vhu/qsd: MEDIAN Q1 Q3 WON (IOPS: vhu higher; CPU: vhu lower).
blk_summary() {
	awk -F'\t' -v OFS='\t' "$BENCH_AWK_Q"'
		function qs(arr, m) {
			return m ? sprintf("%.3f\t%.3f\t%.3f", q(arr, m, .5), q(arr, m, .25), q(arr, m, .75)) : "-\t-\t-"
		}
		NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
		!($c["row"] in seen) { seen[$c["row"]] = 1; order[++nr] = $c["row"] }
		$c["status"] == "ok" {
			k = $c["row"] SUBSEP $c["cycle"]
			io[k, $c["backend"]] = $c["iops"]; cpu[k, $c["backend"]] = $c["cpu_us_per_io"]
			cyc[k] = 1
		}
		END {
			for (r = 1; r <= nr; r++) {
				row = order[r]; n = 0; wi = 0; wc = 0
				delete ri; delete rc; delete iv; delete iq; delete cv; delete cq
				for (k in cyc) {
					split(k, kk, SUBSEP)
					if (kk[1] != row || !((k, "vhu") in io) || !((k, "qsd") in io)) continue
					n++
					iv[n] = io[k, "vhu"]; iq[n] = io[k, "qsd"]; cv[n] = cpu[k, "vhu"]; cq[n] = cpu[k, "qsd"]
					ri[n] = iq[n] > 0 ? iv[n] / iq[n] : 0; rc[n] = cq[n] > 0 ? cv[n] / cq[n] : 0
					wi += iv[n] > iq[n]; wc += cv[n] < cq[n]
				}
				print row, n, (n ? q(iv, n, .5) : "-"), (n ? q(iq, n, .5) : "-"), (n ? q(cv, n, .5) : "-"),
					(n ? q(cq, n, .5) : "-"), qs(ri, n), wi "/" n, qs(rc, n), wc "/" n
			}
		}' "$1"
}

# --- the run ------------------------------------------------------------------------------

tsv_init cycle row backend status iops mbps cpu_us_per_io ios bytes guest_ns cpu_ns cpu_src \
	cpu_ticks threads_exited be_cpu_pct other_be_cpu_ns qemu_cpu_pct guest_busy_pct guest_irqs_per_io \
	host_wall_us disk
bench_log "${#BENCH_ROW_LIST[@]} rows x $BENCH_REPS cycles (vhu,qsd / qsd,vhu), ${BENCH_WARMUP}s +" \
	"${BENCH_SECONDS}s windows, $THREADS threads; $BENCH_OUT"
CTL_BROKEN=0
for row in "${BENCH_ROW_LIST[@]}"; do
	for ((c = 1; c <= BENCH_REPS; c++)); do
		if ((c % 2)); then order=(vhu qsd); else order=(qsd vhu); fi
		for k in "${order[@]}"; do
			((CTL_BROKEN)) || window "$c" "$row" "$k"
		done
	done
done
((CTL_BROKEN)) && bench_warn "the guest stopped answering: the remaining windows were not run"

# the guest powers off; then the back-ends get SIGTERM, and must exit 0
ctl_send quit
wait_for "$W/console-1.log" '^VHU-GUEST: poweroff' 30 "$QEMU_PID" >/dev/null || true
stop_pid "$QEMU_PID" TERM 20 || true
for k in vhu qsd; do
	rc=0
	stop_pid "${BE_PID[$k]}" TERM 10 || rc=$?
	((rc == 0)) || bench_warn "$k back-end exited with status $rc"
done
line=$(grep -E '^vhu-blk: [a-z ]+: in [0-9]+ out' "$W/vhu.out" | tail -n 1 || true)
[[ -z $line ]] || echo "vhu-blk's counters: ${line#vhu-blk: }"

summary=${BENCH_OUT%.tsv}-summary.tsv
{
	printf 'row\tcycles\tvhu_iops\tqsd_iops\tvhu_cpu_us_per_io\tqsd_cpu_us_per_io\t'
	printf 'iops_ratio\tiops_q1\tiops_q3\tiops_won\tcpu_ratio\tcpu_q1\tcpu_q3\tcpu_won\n'
	blk_summary "$BENCH_OUT"
} >"$summary"
echo
echo "Medians over the cycles (vhu and qsd windows back to back); ratios vhu/qsd with"
echo "quartiles and the cycles vhu won (IOPS: higher; CPU per I/O on the host: lower):"
printf '%-15s %3s %8s %8s %8s  %-24s %7s %7s %8s  %-24s\n' row cyc "vhu IOPS" "qsd IOPS" "IOPS" \
	"(q1-q3) won" "vhu us" "qsd us" "CPU/IO" "(q1-q3) won"
tail -n +2 "$summary" | awk -F'\t' '
	function f(x, p) { return x == "-" ? "-" : sprintf(p, x) }
	{ printf "%-15s %3d %8s %8s %8s  %-24s %7s %7s %8s  %-24s\n", $1, $2, f($3, "%.0f"), f($4, "%.0f"),
		f($7, "%.3f"), ($8 == "-" ? "-" : sprintf("(%.2f-%.2f) %s", $8, $9, $10)), f($5, "%.1f"),
		f($6, "%.1f"), f($11, "%.3f"), ($12 == "-" ? "-" : sprintf("(%.2f-%.2f) %s", $12, $13, $14)) }'
echo "summary: $summary"
bench_finish
