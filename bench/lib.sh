# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash
#
# bench/lib.sh - what the benchmark scripts share (sourced, not run):
#   * options every script takes, the work directory, cleanup on exit;
#   * dpdk-testpmd sessions driven over a FIFO (interactive mode), and the
#     parsing of their port and forward statistics;
#   * the measurement window: the front-end's counters and per-thread /
#     per-CPU accounting (is the polling thread alone on its CPU?);
#   * rows, the TSV of samples, medians and the vhu/DPDK ratio.
#
# Conventions: functions return 0/1 and never exit (but bench_die, and
# rows_filter for --list);
# variables they set are named in their comment.  Every child process goes
# through common.sh's VHU_PIDS (killed at exit), every DPDK file prefix
# through BENCH_PREFIXES (its runtime directory removed at exit).
# shellcheck disable=SC2034 # many variables are for the scripts that source this

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=test/interop/common.sh
. "$BENCH_ROOT/test/interop/common.sh"

TESTPMD=${TESTPMD:-dpdk-testpmd}

# --- options -----------------------------------------------------------------

BENCH_BUILD=$BENCH_ROOT/build-bench
BENCH_ROWS=
BENCH_REPS=3
BENCH_SECONDS=5
BENCH_WARMUP=2
BENCH_OUT=
BENCH_KEEP=0
BENCH_ONLY=
FE_CPU=0
BE_CPU=1
BENCH_LIST=0
BENCH_MAX_OTHER=100
BENCH_HUGE=0

# The common options, for a script's usage text.
BENCH_COMMON_USAGE="  --rows REGEX    only the rows whose name matches (grep -E); --list shows them
  --reps N        A/B pairs per row (default $BENCH_REPS)
  --seconds N     measurement window in seconds (default $BENCH_SECONDS)
  --warmup N      seconds of traffic before the window (default $BENCH_WARMUP)
  --out FILE      the TSV of every sample (default bench/results/NAME-DATE.tsv)
  --build DIR     vhu build directory (default build-bench): configured
                  (Release) if new, built incrementally if it builds this tree
  --fe-cpu N      CPU of the front-end, all its threads (default $FE_CPU)
  --be-cpu N      CPU of the back-end, all its threads (default $BE_CPU)
  --keep          keep the work directory (every process's output)
  --only KIND     run only one back-end, vhu or dpdk (no ratios: for
                  trying a change quickly)
  --max-other PCT leave out of the medians the samples during which other
                  tasks took more than PCT% of the front-end's or the
                  back-end's CPU (default 100: none left out)
  --huge          testpmd's memory (the guest memory the back-end maps, and
                  the DPDK back-end's own) on 2 MB hugepages, reserved if
                  needed, on a hugetlbfs mount of its own; both undone at
                  exit (default: --no-huge, 4 KB pages)
  --list          print the rows and exit"

# bench_args USAGE ARGS...: the command line of a script that has only the
# common options; USAGE is the function printing its usage.
bench_args() {
	local usage=$1
	shift
	while (($#)); do
		case $1 in
		-h | --help) "$usage"; exit 0 ;;
		*) bench_opt "$@" || { "$usage" >&2; exit 2; }; shift "$BENCH_SHIFT" ;;
		esac
	done
}

# bench_opt ARGS...: take one common option from the front of ARGS; sets
# BENCH_SHIFT to the words it used.  Returns 1 if ARGS[0] is not one.
bench_opt() {
	BENCH_SHIFT=2
	case $1 in
	--rows) BENCH_ROWS=${2:?} ;;
	--reps) BENCH_REPS=${2:?} ;;
	--seconds) BENCH_SECONDS=${2:?} ;;
	--warmup) BENCH_WARMUP=${2:?} ;;
	--out) BENCH_OUT=${2:?} ;;
	--build) BENCH_BUILD=${2:?} ;;
	--fe-cpu) FE_CPU=${2:?} ;;
	--be-cpu) BE_CPU=${2:?} ;;
	--max-other) BENCH_MAX_OTHER=${2:?} ;;
	--keep) BENCH_KEEP=1 BENCH_SHIFT=1 ;;
	--only) BENCH_ONLY=${2:?}; [[ $BENCH_ONLY == vhu || $BENCH_ONLY == dpdk ]] || return 1 ;;
	--list) BENCH_LIST=1 BENCH_SHIFT=1 ;;
	--huge) BENCH_HUGE=1 BENCH_SHIFT=1 ;;
	*) return 1 ;;
	esac
	if [[ $1 =~ ^--(reps|seconds|warmup|fe-cpu|be-cpu|max-other)$ && ! $2 =~ ^[0-9]+$ ]]; then
		bench_die "$1 wants a number, not '$2'"
	fi
	return 0
}

bench_die() {
	echo "${BENCH_NAME:-bench}: $*" >&2
	exit 1
}

bench_log() {
	echo "[$(date +%T)] $*"
}

bench_warn() {
	echo "[$(date +%T)] WARNING: $*" >&2
}

# --- setup and cleanup ---------------------------------------------------------

BENCH_PREFIXES=()
BENCH_CLEANUP=() # functions the EXIT trap calls once the children are gone, last added first
BENCH_FAILED=0

# bench_setup NAME: checks (root, testpmd, CPUs), the work directory
# BENCH_WORK, the TSV path BENCH_OUT, and the exit trap.
bench_setup() {
	BENCH_NAME=$1
	[[ $(id -u) == 0 ]] || bench_die "needs root (DPDK without hugepages still wants it, and namespaces, AF_XDP)"
	command -v "$TESTPMD" >/dev/null || bench_die "$TESTPMD not found (apt-get install dpdk dpdk-dev)"
	command -v stdbuf >/dev/null || bench_die "stdbuf not found (coreutils)"
	((FE_CPU != BE_CPU)) || bench_warn "front-end and back-end share CPU $FE_CPU: numbers are meaningless"
	local n
	n=$(nproc --all)
	((FE_CPU < n && BE_CPU < n)) || bench_die "CPUs $FE_CPU and $BE_CPU: this machine has $n"
	if [[ -z $BENCH_OUT ]]; then
		mkdir -p "$BENCH_ROOT/bench/results"
		BENCH_OUT=$BENCH_ROOT/bench/results/$BENCH_NAME-$(date +%Y%m%d-%H%M%S).tsv
	fi
	BENCH_WORK=$(mktemp -d "${TMPDIR:-/tmp}/vhu-$BENCH_NAME.XXXXXX")
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	TP_MEM=(--no-huge -m 512)
	((BENCH_HUGE == 0)) || huge_setup
}

# huge_setup: 2 MB hugepages for the testpmds (two at a time, 512 MB
# each), on a hugetlbfs mount of the work directory's; the page count is
# put back and the mount removed at exit.
huge_setup() {
	local want=640 nr=/proc/sys/vm/nr_hugepages
	HUGE_OLD_NR=$(cat "$nr")
	BENCH_CLEANUP+=(huge_cleanup)
	if (($(awk '/HugePages_Free/ {print $2}' /proc/meminfo) < want)); then
		echo $((HUGE_OLD_NR + want)) >"$nr"
	fi
	(($(awk '/HugePages_Free/ {print $2}' /proc/meminfo) >= want)) ||
		bench_die "--huge: could not reserve $want 2 MB hugepages"
	HUGE_DIR=$BENCH_WORK/hugepages
	mkdir -p "$HUGE_DIR"
	mount -t hugetlbfs -o pagesize=2M nodev "$HUGE_DIR" || bench_die "--huge: cannot mount hugetlbfs"
	# one file per memseg list: the guest memory is a few regions, not
	# one per page (vhost-user allows 8)
	TP_MEM=(-m 512 --huge-dir "$HUGE_DIR" --single-file-segments)
}

# shellcheck disable=SC2317 # run by bench_cleanup
huge_cleanup() {
	[[ -n ${HUGE_DIR:-} ]] && umount "$HUGE_DIR" 2>/dev/null
	[[ -n ${HUGE_OLD_NR:-} ]] && echo "$HUGE_OLD_NR" >/proc/sys/vm/nr_hugepages
}

# shellcheck disable=SC2317 # run by the EXIT trap
bench_cleanup() {
	local rc=$? i p
	trap - EXIT INT TERM
	set +e # clean up all that can be, whatever fails
	kill_children
	for ((i = ${#BENCH_CLEANUP[@]} - 1; i >= 0; i--)); do
		"${BENCH_CLEANUP[i]}"
	done
	for p in "${BENCH_PREFIXES[@]}"; do
		rm -rf "/var/run/dpdk/$p" /dev/hugepages/"$p"* 2>/dev/null
	done
	rmdir /var/run/dpdk 2>/dev/null
	if ((BENCH_KEEP || BENCH_FAILED)) && [[ -d ${BENCH_WORK:-} ]]; then
		echo "${BENCH_NAME:-bench}: logs kept in $BENCH_WORK" >&2
	elif [[ -n ${BENCH_WORK:-} ]]; then
		rm -rf "$BENCH_WORK"
	fi
	exit "$rc"
}

# bench_need_build TARGET...: the vhu programs in BENCH_BUILD: configured
# (Release) when it has no CMakeCache, built when one is missing, brought up
# to date (incremental build) when BENCH_BUILD builds this source tree; a
# build of another tree is taken as it is.  Warns when the build is not
# Release.  Sets BENCH_BINARY (the first TARGET).
bench_need_build() {
	local t missing=0 type src
	for t; do
		[[ -x $BENCH_BUILD/examples/$t ]] || missing=1
	done
	BENCH_BINARY=$BENCH_BUILD/examples/$1
	if [[ ! -f $BENCH_BUILD/CMakeCache.txt ]] &&
		! cmake -S "$BENCH_ROOT" -B "$BENCH_BUILD" -DCMAKE_BUILD_TYPE=Release \
			>"$BENCH_WORK/cmake.log" 2>&1; then
		BENCH_KEEP=1
		bench_die "cmake failed: see $BENCH_WORK/cmake.log"
	fi
	src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BENCH_BUILD/CMakeCache.txt")
	if ((missing)) || [[ $src -ef $BENCH_ROOT ]]; then
		bench_log "building $* in $BENCH_BUILD"
		if ! cmake --build "$BENCH_BUILD" -j"$(nproc)" --target "$@" >"$BENCH_WORK/build.log" 2>&1; then
			BENCH_KEEP=1
			bench_die "build failed: see $BENCH_WORK/build.log"
		fi
	fi
	type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BENCH_BUILD/CMakeCache.txt" 2>/dev/null)
	[[ $type == Release ]] ||
		bench_warn "$BENCH_BUILD is a '${type:-?}' build, not Release (-O3): numbers will not be representative"
}

# bench_info: what was measured, beside the TSV (BENCH_OUT with .info for
# .tsv) and on stdout: versions, build, machine, options.
bench_info() {
	local info=${BENCH_OUT%.tsv}.info cache=$BENCH_BUILD/CMakeCache.txt src rev
	src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$cache" 2>/dev/null)
	rev=$(git -C "${src:-/nonexistent}" describe --always --dirty 2>/dev/null || echo "not a git checkout")
	{
		echo "date: $(date -Is)"
		echo "script: $BENCH_NAME; rows: ${BENCH_ROWS:-all} (${#BENCH_ROW_LIST[@]})"
		echo "vhu: $src at $rev; build $BENCH_BUILD ($(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' \
			"$cache" 2>/dev/null), $(basename "$BENCH_BINARY") built $(date -r "$BENCH_BINARY" -Is 2>/dev/null))"
		echo "dpdk: $(pkg-config --modversion libdpdk 2>/dev/null || dpkg-query -W -f='${Version}' dpdk 2>/dev/null)"
		echo "kernel: $(uname -r); cpus: $(nproc --all); $(grep -m1 'model name' /proc/cpuinfo)"
		echo "cpus: front-end $FE_CPU, back-end $BE_CPU; warm-up ${BENCH_WARMUP}s, window ${BENCH_SECONDS}s, reps $BENCH_REPS"
		echo "testpmd memory: ${TP_MEM[*]}"
		local c t=/sys/devices/system/cpu
		for c in "$FE_CPU" "$BE_CPU"; do
			echo "cpu $c: L3 shared with $(cat "$t/cpu$c/cache/index3/shared_cpu_list" 2>/dev/null || echo ?)," \
				"SMT siblings $(cat "$t/cpu$c/topology/thread_siblings_list" 2>/dev/null || echo ?)," \
				"governor $(cat "$t/cpu$c/cpufreq/scaling_governor" 2>/dev/null || echo -)"
		done
	} | tee "$info"
}

# --- dpdk-testpmd sessions -----------------------------------------------------
#
# A session is an interactive testpmd whose stdin is a FIFO the script holds
# open and whose stdout is line-buffered (stdbuf) into NAME.out, so that a
# command's reply can be waited for and parsed.  Its lcores (main and one
# forwarding lcore) and every other thread (EAL's interrupt and
# multi-process threads, vhost-events...) are pinned to one CPU: the main
# lcore sleeps in the command line, the forwarding lcore polls.

declare -A TP_FD=() TP_PID=() TP_OUT=()
TP_NS=()   # command before taskset, e.g. (ip netns exec NS)
TP_TOOL=() # command between stdbuf and testpmd, e.g. (valgrind ...)
TP_SEQ=0

# tp_start NAME CPU EAL_ARG... -- APP_ARG...: start the session in
# BENCH_DIR (the sample's directory).  TP_PID[NAME] is testpmd's pid.
tp_start() {
	local name=$1 cpu=$2 eal=() fifo prefix fd argv
	shift 2
	while (($#)) && [[ $1 != -- ]]; do
		eal+=("$1")
		shift
	done
	shift
	TP_SEQ=$((TP_SEQ + 1))
	prefix=vhu-$BENCH_NAME-$$-$TP_SEQ
	BENCH_PREFIXES+=("$prefix")
	fifo=$BENCH_DIR/$name.in
	rm -f "$fifo"
	mkfifo "$fifo"
	exec {fd}<>"$fifo"
	TP_FD[$name]=$fd
	TP_OUT[$name]=$BENCH_DIR/$name.out
	argv=("${TP_NS[@]}" taskset -c "$cpu" stdbuf -oL "${TP_TOOL[@]}" "$TESTPMD"
		--lcores "0@$cpu,1@$cpu" --no-pci "${TP_MEM[@]}" --file-prefix "$prefix"
		--log-level=lib.eal:notice "${eal[@]}"
		-- -i --total-num-mbufs=16384 --nb-cores=1 --burst=32 "$@")
	printf '%q ' "${argv[@]}" >"$BENCH_DIR/$name.cmd"
	"${argv[@]}" <"$fifo" >"${TP_OUT[$name]}" 2>&1 &
	TP_PID[$name]=$!
	VHU_PIDS+=("$!")
}

# tp_send NAME LINE: one command, no waiting.
tp_send() {
	echo "$2" >&"${TP_FD[$1]}"
}

# tp_query NAME COMMAND END_REGEX [SECONDS]: send COMMAND and print its
# reply: the lines after those already there, up to the first that matches
# END_REGEX (grep -E).  Returns 1 on timeout (default 20 s) or if testpmd died.
tp_query() {
	local name=$1 cmd=$2 re=$3 secs=${4:-20} out=${TP_OUT[$1]} before end
	before=$(wc -l <"$out")
	tp_send "$name" "$cmd"
	end=$((SECONDS + secs))
	until tail -n "+$((before + 1))" "$out" | grep -qE -- "$re"; do
		if ((SECONDS >= end)) || ! alive "${TP_PID[$name]}"; then
			echo "tp_query $name '$cmd': no reply" >&2
			return 1
		fi
		sleep 0.05
	done
	tail -n "+$((before + 1))" "$out" | awk -v re="$re" '{ print } $0 ~ re { exit }'
}

# tp_port_stats NAME [SECONDS]: "RX_PKTS RX_BYTES TX_PKTS TX_BYTES RX_PPS
# TX_PPS" of port 0; the rates are testpmd's, over the time since the
# previous call.  SECONDS: tp_query's timeout.
tp_port_stats() {
	tp_query "$1" "show port stats 0" '^ *Tx-pps:' "${2:-20}" | awk '
		$1 == "RX-packets:" { rp = $2; rb = $6 }
		$1 == "TX-packets:" { tp = $2; tb = $6 }
		$1 == "Rx-pps:" { rr = $2 }
		$1 == "Tx-pps:" { tr = $2 }
		END { if (tr == "") exit 1; print rp, rb, tp, tb, rr, tr }'
}

# tp_fwd_stats NAME [SECONDS]: "RX_PKTS RX_DROPPED TX_PKTS TX_DROPPED" of
# the forwarding engine since the last "clear fwd stats all".
tp_fwd_stats() {
	tp_query "$1" "show fwd stats all" '^ *\+{20,} *$' "${2:-20}" | awk '
		$1 == "RX-packets:" && rp == "" { rp = $2; rd = $4 }
		$1 == "TX-packets:" && tp == "" { tp = $2; td = $4 }
		END { if (td == "") exit 1; print rp, rd, tp, td }'
}

# tp_wait NAME REGEX SECONDS: until NAME's output has a matching line.
tp_wait() {
	wait_for "${TP_OUT[$1]}" "$2" "$3" "${TP_PID[$1]}"
}

# tp_quit NAME: quit (ports stopped and closed in order), SIGTERM after
# 15 s, SIGKILL after 5 more; the FIFO closed.
tp_quit() {
	local name=$1 pid=${TP_PID[$1]:-} n=0 fd
	[[ -n $pid ]] || return 0
	if alive "$pid"; then
		tp_send "$name" quit 2>/dev/null || true
		while alive "$pid" && ((n < 150)); do
			sleep 0.1
			n=$((n + 1))
		done
	fi
	stop_pid "$pid" TERM 5 || true
	fd=${TP_FD[$name]}
	exec {fd}>&-
	unset "TP_PID[$name]" "TP_FD[$name]"
}

# --- processes that are not testpmd ---------------------------------------------

# bench_spawn NAME CPU CMD...: CMD pinned to CPU in BENCH_DIR/NAME.out;
# sets BENCH_PID.  With TP_NS set, in that namespace.
bench_spawn() {
	local name=$1 cpu=$2
	shift 2
	printf '%q ' "${TP_NS[@]}" taskset -c "$cpu" "$@" >"$BENCH_DIR/$name.cmd"
	spawn "$BENCH_DIR/$name.out" "$BENCH_DIR/$name.out" "${TP_NS[@]}" taskset -c "$cpu" "$@"
	BENCH_PID=$VHU_LAST_PID
}

# --- CPU accounting --------------------------------------------------------------

# cpu_snap FILE PID...: per-CPU ticks from /proc/stat ("cpu N TASKS IRQ
# STEAL TOTAL": TASKS user+nice+system, IRQ irq+softirq) and per-thread ticks
# of each PID ("thr PID TID TICKS CPU COMM").
cpu_snap() {
	local file=$1 pid t s f comm
	shift
	{
		awk '/^cpu[0-9]/ { print "cpu", substr($1, 4), $2 + $3 + $4, $7 + $8, $9,
			$2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat
		for pid; do
			for t in /proc/"$pid"/task/*; do
				{ read -r s <"$t/stat" && read -r comm <"$t/comm"; } 2>/dev/null || continue
				read -r -a f <<<"${s##*) }"
				echo "thr $pid ${t##*/} $((f[11] + f[12])) ${f[36]} $comm"
			done
		done
	} >"$file"
}

# cpu_usage BEFORE AFTER ROLE=PID...: what the window cost, as words
# KEY=VALUE (percent of one CPU over the window):
#   ROLE_top=COMM@CPU:PCT  the busiest thread of that process
#   ROLE_rest=PCT          all its other threads together
#   cpuN_other=PCT         CPU N's time in tasks other than our threads
#   cpuN_irq=PCT           CPU N's time in interrupts and softirqs (network
#                          work the kernel does for whoever runs there, when
#                          the kernel accounts it apart from the tasks)
#   steal=PCT              the largest steal of any of our CPUs
cpu_usage() {
	local before=$1 after=$2
	shift 2
	awk -v roles="$*" '
		FNR == NR && $1 == "cpu" { b0[$2] = $3; i0[$2] = $4; s0[$2] = $5; t0[$2] = $6; next }
		FNR == NR && $1 == "thr" { th0[$2 " " $3] = $4; next }
		$1 == "cpu" { b1[$2] = $3; i1[$2] = $4; s1[$2] = $5; t1[$2] = $6; next }
		$1 == "thr" {
			d = $4 - th0[$2 " " $3]
			ours[$5] += d; all[$2] += d; used[$5] = 1
			if (!($2 in top) || d > top[$2]) { top[$2] = d; topn[$2] = $6 "@" $5 }
		}
		END {
			for (c in t1) { el = t1[c] - t0[c]; if (el > 0) break }
			if (el <= 0) el = 1
			n = split(roles, r, " ")
			for (i = 1; i <= n; i++) {
				split(r[i], kv, "=")
				p = kv[2]
				printf "%s_top=%s:%.0f %s_rest=%.0f ", kv[1], topn[p], 100 * top[p] / el,
					kv[1], 100 * (all[p] - top[p]) / el
			}
			st = 0
			for (c in used) {
				e = t1[c] - t0[c]; if (e <= 0) continue
				o = 100 * ((b1[c] - b0[c]) - ours[c]) / e
				printf "cpu%s_other=%.0f cpu%s_irq=%.0f ", c, o < 0 ? 0 : o, c,
					100 * (i1[c] - i0[c]) / e
				s = 100 * (s1[c] - s0[c]) / e; if (s > st) st = s
			}
			printf "steal=%.0f\n", st
		}' "$before" "$after"
}

# kv WORDS KEY: the value of KEY=VALUE among WORDS.
kv() {
	local w
	for w in $1; do
		[[ $w == "$2="* ]] && echo "${w#*=}" && return 0
	done
	echo "?"
}

# cpu_check USAGE ROLE CPU: a warning unless ROLE's busiest thread ran on
# CPU and used most of it while its other threads stayed quiet; another
# when other work took a large share of CPU.  USAGE as from cpu_usage.
cpu_check() {
	local usage=$1 role=$2 cpu=$3 top rest other
	top=$(kv "$usage" "${role}_top")
	rest=$(kv "$usage" "${role}_rest")
	other=$(kv "$usage" "cpu${cpu}_other")
	[[ $top == *"@$cpu:"* ]] || bench_warn "$role: busiest thread $top is not on CPU $cpu"
	[[ $rest == "?" ]] || ((rest <= 5)) || bench_warn "$role: threads other than $top used $rest% of a CPU"
	[[ $other == "?" ]] || ((other <= 10)) ||
		bench_warn "CPU $cpu: $other% taken by other tasks (noisy sample)"
}

# --- the measurement window --------------------------------------------------------
#
# measure_begin FE [ROLE=]PID...: after the warm-up (BENCH_WARMUP seconds of
# traffic), a snapshot of the front-end session FE's port statistics (which
# also starts testpmd's rate interval), its forward statistics cleared, CPU
# accounting of the PIDs started.  measure_end FE ROLE=PID...: after
# BENCH_SECONDS, the same again.  Sets, for the window:
#   M_RX_PKTS M_RX_BYTES M_TX_PKTS M_TX_BYTES  front-end port counter deltas
#   M_RX_PPS M_TX_PPS                          testpmd's rates over the window
#   M_TX_DROPPED M_TX_TOTAL                    front-end forward engine: frames
#                                              the PMD would not take (ring full)
#   M_CPU                                      cpu_usage words
measure_begin() {
	local fe=$1
	shift
	sleep "$BENCH_WARMUP"
	M_PIDS=("${@#*=}")
	M_BEGIN=$(tp_port_stats "$fe") || return 1
	tp_send "$fe" "clear fwd stats all"
	cpu_snap "$BENCH_DIR/cpu.0" "${M_PIDS[@]}"
}

measure_end() {
	local fe=$1 end fwd b e
	shift
	cpu_snap "$BENCH_DIR/cpu.1" "${M_PIDS[@]}"
	end=$(tp_port_stats "$fe") || return 1
	fwd=$(tp_fwd_stats "$fe") || return 1
	read -r -a b <<<"$M_BEGIN"
	read -r -a e <<<"$end"
	M_RX_PKTS=$((e[0] - b[0]))
	M_RX_BYTES=$((e[1] - b[1]))
	M_TX_PKTS=$((e[2] - b[2]))
	M_TX_BYTES=$((e[3] - b[3]))
	M_RX_PPS=${e[4]}
	M_TX_PPS=${e[5]}
	read -r -a b <<<"$fwd"
	M_TX_DROPPED=${b[3]}
	M_TX_TOTAL=$((b[2] + b[3]))
	M_CPU=$(cpu_usage "$BENCH_DIR/cpu.0" "$BENCH_DIR/cpu.1" "$@")
}

# measure_window FE ROLE=PID...: measure_begin, BENCH_SECONDS, measure_end.
measure_window() {
	measure_begin "$@" && sleep "$BENCH_SECONDS" && measure_end "$@"
}

# measure_reset: forget the last window (before the next sample).
measure_reset() {
	M_RX_PKTS='' M_RX_BYTES='' M_TX_PKTS='' M_TX_BYTES='' M_RX_PPS='' M_TX_PPS=''
	M_TX_DROPPED='' M_TX_TOTAL='' M_CPU=''
}

# pct PART WHOLE: PART as a whole percentage of WHOLE ("-" when WHOLE is 0).
pct() {
	if (($2 > 0)); then
		echo $((100 * $1 / $2))
	else
		echo -
	fi
}

# --- the guest side: testpmd's virtio_user ------------------------------------------

# dp_rows: the rows of compare-dpdk.sh and ipp.sh, DIR/SIZE/RING/mrg-on|off:
#   guest-tx  the front-end sends (txonly), the back-end drops (rxonly)
#   guest-rx  the back-end sends (txonly), the front-end drops (rxonly)
dp_rows() {
	local dir size ring mrg
	for dir in guest-tx guest-rx; do
		for size in 64 1518; do
			for ring in split packed; do
				for mrg in on off; do
					echo "$dir/$size/$ring/mrg-$mrg"
				done
			done
		done
	done
}

# dp_begin NAME: the selected rows of dp_rows, the set-up, vhu-bench built,
# the .info file: the start of a script that runs vhu-bench against testpmd.
dp_begin() {
	local all_rows
	mapfile -t all_rows < <(dp_rows)
	rows_filter "${all_rows[@]}"
	bench_setup "$1"
	bench_need_build vhu-bench
	bench_info
}

# row_parse ROW: R_DIR R_SIZE R_RING R_MRG (on|off) from DIR/SIZE/RING/mrg-X
# (a row with fewer parts leaves the rest at split, mrg on).
row_parse() {
	local rest
	IFS=/ read -r R_DIR R_SIZE R_RING rest <<<"$1"
	R_RING=${R_RING:-split}
	R_MRG=${rest#mrg-}
	R_MRG=${R_MRG:-on}
}

# fe_start SOCK MODE: the front-end session DP_FE on FE_CPU: one
# net_virtio_user port on SOCK (R_RING, R_MRG; 256-entry rings, one queue
# pair), forwarding mode MODE, R_SIZE-byte frames when it sends.
fe_start() {
	local devargs=net_virtio_user0,path=$1,queues=1,mrg_rxbuf=1
	[[ $R_MRG == on ]] || devargs=${devargs%1}0
	[[ $R_RING == packed ]] && devargs+=,packed_vq=1
	tp_start "$DP_FE" "$FE_CPU" --vdev "$devargs" -- --forward-mode="$2" --txpkts="$R_SIZE"
}

# --- vhost-user back-ends: vhu-bench, and testpmd with librte_vhost ---------------------
#
# Both get the same job: MODE rxonly (take every frame the guest sends,
# copy it out, drop it) or txonly (send R_SIZE-byte frames to the guest as
# fast as it posts buffers), bursts of 32, one busy-polling thread on
# BE_CPU.  BE_TOOL (e.g. valgrind ...) runs the back-end under a tool.

BE_TOOL=()

# The testpmd sessions (and vhu-bench's log, DP_BE.out in BENCH_DIR) of the
# front-end and the back-end that dp_start and friends drive: two pairs
# alive at once (paired.sh) need names of their own.
DP_FE=fe
DP_BE=be
# paired.sh --base: the build whose vhu-bench is the back-end "base".
BENCH_BASE_BUILD=

# dp_start KIND SOCK: the back-end KIND (under BE_TOOL) serving SOCK and
# the front-end on it, in the modes of R_DIR, until the device is ready and
# the front-end forwards.  Returns 1 with DP_ERR set when it is not.
dp_start() {
	local kind=$1 sock=$2 fe_mode=txonly be_mode=rxonly
	[[ $R_DIR == guest-tx ]] || fe_mode=rxonly be_mode=txonly
	DP_ERR=''
	if ! be_start "$kind" "$be_mode" "$sock"; then
		DP_ERR="the $kind back-end did not create $sock"
		return 1
	fi
	fe_start "$sock" "$fe_mode"
	if ! be_ready "$kind"; then
		DP_ERR="the front-end never made the $kind device ready"
		return 1
	fi
	tp_send "$DP_FE" start
}

# be_start KIND MODE SOCK: KIND vhu or dpdk, serving SOCK; sets BE_PID.
be_start() {
	local kind=$1 mode=$2 sock=$3 build=$BENCH_BUILD
	case $kind in
	vhu | base)
		[[ $kind == vhu ]] || build=$BENCH_BASE_BUILD
		bench_spawn "$DP_BE" "$BE_CPU" "${BE_TOOL[@]}" "$build/examples/vhu-bench" \
			--socket "$sock" --mode "$mode" --pkt-len "$R_SIZE" --burst 32
		BE_PID=$BENCH_PID
		;;
	dpdk)
		TP_TOOL=("${BE_TOOL[@]}")
		tp_start "$DP_BE" "$BE_CPU" --vdev "net_vhost0,iface=$sock,queues=1" \
			-- --forward-mode="$mode" --txpkts="$R_SIZE"
		TP_TOOL=()
		BE_PID=${TP_PID[$DP_BE]}
		tp_send "$DP_BE" start
		;;
	*) bench_die "unknown back-end $kind" ;;
	esac
	wait_for_socket "$sock" 120 "$BE_PID"
}

# be_ready KIND: until the front-end has made the device ready; sets
# BE_FEATURES (the virtio features it negotiated).
be_ready() {
	local re file
	case $1 in
	vhu | base) re='front-end ready \(features (0x[0-9a-f]+)\)' file=$BENCH_DIR/$DP_BE.out ;;
	dpdk) re='negotiated Virtio features: (0x[0-9a-f]+)' file=${TP_OUT[$DP_BE]} ;;
	esac
	if [[ $1 == dpdk ]]; then
		tp_wait "$DP_BE" 'virtio is now ready for processing' 120 || return 1
	else
		wait_for "$file" "$re" 120 "$BE_PID" || return 1
	fi
	BE_FEATURES=$(grep -oE "$re" "$file" | tail -n 1 | grep -oE '0x[0-9a-f]+' || true)
}

# be_stop KIND: stop the back-end (after the front-end); sets BE_SENT and
# BE_DROPS, the frames it sent to the guest over the whole run and those it
# had no guest buffer for (txonly), from its own counters.
be_stop() {
	local s
	BE_SENT=0 BE_DROPS=0
	case $1 in
	vhu | base)
		stop_pid "$BE_PID" TERM 20 || true
		s=$(grep -oE 'to-guest [0-9]+ packets [0-9]+ bytes, drops [0-9]+' "$BENCH_DIR/$DP_BE.out" | tail -n 1 || true)
		read -r _ BE_SENT _ _ _ _ BE_DROPS <<<"${s:-x 0 x x x x 0}"
		;;
	dpdk)
		if s=$(tp_fwd_stats "$DP_BE" 60); then
			read -r _ _ BE_SENT BE_DROPS <<<"$s"
		fi
		tp_quit "$DP_BE"
		;;
	esac
}

# --- callgrind: instructions inside the back-end's data-path call ---------------
#
# The back-end runs under valgrind --tool=callgrind --collect-atstart=no
# --toggle-collect=FN --vgdb=yes: only FN's instructions, callees included,
# are counted; vgdb zeroes and dumps the counters while it runs.

# datapath_fn KIND DIR: the function whose instructions are counted.
datapath_fn() {
	case $1/$2 in
	vhu/guest-tx) echo vhu_net_dequeue ;;
	vhu/guest-rx) echo vhu_net_enqueue ;;
	dpdk/guest-tx) echo rte_vhost_dequeue_burst ;;
	dpdk/guest-rx) echo rte_vhost_enqueue_burst ;;
	esac
}

# cg_read FILE FN: "IR CALLS" of a callgrind dump: the instructions it
# collected (only inside FN) and the calls to FN.
cg_read() {
	[[ -s $1 ]] || return 1
	awk -v fn="$2" '
		/^c?fn=/ {
			# "(id) name", "(id)" when named before, or a plain name
			# (--compress-strings=no, which callgrind_annotate reads)
			s = $0; sub(/^c?fn=/, "", s)
			id = s; name = s
			if (s ~ /^\(/) { sub(/\).*/, ")", id); sub(/^\([0-9]+\) ?/, "", name) }
			if (name != "") nm[id] = name
			if ($0 ~ /^cfn=/) callee = id
		}
		/^calls=/ && nm[callee] == fn { calls += substr($1, 7) }
		/^summary:/ { ir = $2 }
		END { print ir + 0, calls + 0 }' "$1"
}

# cg_cmd PID zero|dump: zero callgrind's counters, or dump them (the next
# callgrind.out.N), now.
cg_cmd() {
	vgdb --pid="$1" "$2" >>"$BENCH_DIR/vgdb.log" 2>&1
}

# cg_per_pkt IR CALLS PKTS IDLE_IR IDLE_CALLS: "RAW NET PKTS_PER_CALL
# IR_PER_EMPTY_CALL": Ir per packet, raw and net of the calls that moved
# nothing (every call beyond PKTS/32, at the idle window's cost per call).
cg_per_pkt() {
	awk -v ir="$1" -v c="$2" -v p="$3" -v iir="$4" -v ic="$5" 'BEGIN {
		e = ic > 0 ? iir / ic : 0
		extra = c - int((p + 31) / 32); if (extra < 0) extra = 0
		printf "%.1f %.1f %.2f %.1f\n", ir / p, (ir - extra * e) / p, p / c, e }'
}

# --- rows, samples, results --------------------------------------------------------

# row_selected ROW: ROW matches --rows (or there is no --rows).
row_selected() {
	[[ -z $BENCH_ROWS ]] || grep -qE -- "$BENCH_ROWS" <<<"$1"
}

# rows_filter ROW...: BENCH_ROW_LIST, the selected ones; --list prints them
# and exits; no row selected is an error.
rows_filter() {
	local r
	BENCH_ROW_LIST=()
	for r; do
		row_selected "$r" && BENCH_ROW_LIST+=("$r")
	done
	if ((BENCH_LIST)); then
		printf '%s\n' "${BENCH_ROW_LIST[@]}"
		exit 0
	fi
	((${#BENCH_ROW_LIST[@]})) || bench_die "no row matches '$BENCH_ROWS' (--list shows them)"
}

# tsv_init COLUMN...: the TSV's header (the file is replaced).
tsv_init() {
	mkdir -p "$(dirname "$BENCH_OUT")"
	(
		IFS=$'\t'
		echo "$*"
	) >"$BENCH_OUT"
}

# tsv_add FIELD...: one sample.
tsv_add() {
	(
		IFS=$'\t'
		echo "$*"
	) >>"$BENCH_OUT"
}

# sample_dir TAG: a fresh BENCH_DIR for one sample's logs.
sample_dir() {
	BENCH_DIR=$BENCH_WORK/$1
	mkdir -p "$BENCH_DIR"
}

# sample_fail MSG LOG...: a loud failure of the current sample: the
# message, the logs' last lines, the work directory kept.
sample_fail() {
	local msg=$1 f
	shift
	BENCH_FAILED=$((BENCH_FAILED + 1))
	echo "FAIL: $msg" >&2
	for f in "$@"; do
		[[ -s $f ]] || continue
		echo "  --- last lines of $f:" >&2
		tail -n 15 "$f" | sed 's/^/  | /' >&2
	done
}

# An awk function for the summaries (put before their programs): q(arr, m,
# p) is the p-quantile of arr[1..m], linear between ranks; "-" for none.
BENCH_AWK_Q='
		function q(arr, m, p,   i, j, t, a) {
			if (!m) return "-"
			for (i = 1; i <= m; i++) a[i] = arr[i]
			for (i = 2; i <= m; i++)
				for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
			i = 1 + p * (m - 1); j = int(i)
			return a[j] + (i - j) * (a[j + 1 < m ? j + 1 : m] - a[j])
		}
'

# bench_medians TSV [VALUE_COLUMN]: one line per row (first-seen order) of
# the samples whose status is ok (and, where the TSV has the columns, whose
# cpu_fe_other and cpu_be_other are at most BENCH_MAX_OTHER): ROW
# MEDIAN_VHU MEDIAN_DPDK RATIO N_VHU N_DPDK, tab-separated; "-" where a
# side has no sample.  VALUE_COLUMN defaults to pps.
bench_medians() {
	awk -F'\t' -v OFS='\t' -v vcol="${2:-pps}" -v maxo="$BENCH_MAX_OTHER" '
		function median(key, n,   i, j, t, a) {
			for (i = 1; i <= n; i++) a[i] = v[key, i]
			for (i = 2; i <= n; i++)
				for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
		!($c["row"] in seen) { seen[$c["row"]] = 1; order[++nr] = $c["row"] }
		$c["status"] != "ok" { next }
		("cpu_fe_other" in c) && $c["cpu_fe_other"] + 0 > maxo { next }
		("cpu_be_other" in c) && $c["cpu_be_other"] + 0 > maxo { next }
		{
			r = $c["row"]; b = $c["backend"]
			v[r SUBSEP b, ++n[r SUBSEP b]] = $c[vcol] + 0
		}
		END {
			for (i = 1; i <= nr; i++) {
				r = order[i]; nv = n[r SUBSEP "vhu"] + 0; nd = n[r SUBSEP "dpdk"] + 0
				mv = nv ? median(r SUBSEP "vhu", nv) : "-"
				md = nd ? median(r SUBSEP "dpdk", nd) : "-"
				ratio = (nv && nd && md > 0) ? sprintf("%.3f", mv / md) : "-"
				print r, mv, md, ratio, nv, nd
			}
		}' "$1"
}

# bench_paired TSV: per row of a paired.sh TSV (first-seen order), from the
# cycles whose two windows are both ok: ROW RATIO Q1 Q3 WON PAIRS VHU B,
# B the other back-end (dpdk, or base: another vhu build),
# tab-separated: the median of the cycles' vhu/DPDK ratios and its
# quartiles, the cycles vhu was faster in, how many cycles, and the median
# rate of either side.
bench_paired() {
	awk -F'\t' -v OFS='\t' "$BENCH_AWK_Q"'
		NR == 1 { next }
		!($2 in seen) { seen[$2] = 1; order[++nrows] = $2 }
		$4 == "ok" { v[$2, $1, $3] = $5; cyc[$2, $1] = 1 }
		$3 != "vhu" { other = $3 }
		END {
			for (k = 1; k <= nrows; k++) {
				r = order[k]; n = 0; won = 0
				delete rs; delete va; delete vb
				for (key in cyc) {
					split(key, kk, SUBSEP)
					if (kk[1] != r || !((r, kk[2], "vhu") in v) || !((r, kk[2], other) in v)) continue
					a = v[r, kk[2], "vhu"]; b = v[r, kk[2], other]
					rs[++n] = a / b; va[n] = a; vb[n] = b; won += a > b
				}
				if (!n) { print r, "-", "-", "-", 0, 0, "-", "-"; continue }
				print r, q(rs, n, .5), q(rs, n, .25), q(rs, n, .75), won, n, q(va, n, .5), q(vb, n, .5)
			}
		}' "$1"
}

# bench_run_ab SAMPLE_FN: for each repetition, for each selected row,
# SAMPLE_FN REP ROW vhu then SAMPLE_FN REP ROW dpdk.
bench_run_ab() {
	local rep row
	for ((rep = 1; rep <= BENCH_REPS; rep++)); do
		for row in "${BENCH_ROW_LIST[@]}"; do
			[[ $BENCH_ONLY == dpdk ]] || "$1" "$rep" "$row" vhu
			[[ $BENCH_ONLY == vhu ]] || "$1" "$rep" "$row" dpdk
		done
	done
}

# bench_finish: where the samples are; exit status 1 if one failed.
bench_finish() {
	echo "samples: $BENCH_OUT"
	if ((BENCH_FAILED)); then
		echo "$BENCH_FAILED sample(s) FAILED (status FAIL in the TSV, not in the medians)" >&2
		exit 1
	fi
}

# bench_report TSV UNIT_DIVISOR UNIT [VALUE_COLUMN]: the summary table of
# bench_medians (values divided by UNIT_DIVISOR, e.g. 1e6 and Mpps).
bench_report() {
	local tsv=$1 div=$2 unit=$3
	printf '%-32s %12s %12s %8s\n' row "vhu $unit" "DPDK $unit" vhu/DPDK
	bench_medians "$tsv" "${4:-pps}" | awk -F'\t' -v div="$div" '
		function f(x) { return x == "-" ? "-" : sprintf("%.3f", x / div) }
		{ printf "%-32s %12s %12s %8s   (n=%d/%d)\n", $1, f($2), f($3), $4, $5, $6 }'
}
