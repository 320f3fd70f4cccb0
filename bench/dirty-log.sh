#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# dirty-log.sh - what dirty-page logging (live migration: VHOST_F_LOG_ALL
# with a LOG_SHMFD log) costs a back-end, vhu against librte_vhost.
#
# DPDK's virtio_user never turns logging on, so the front-end here is
# fe-traffic (test/bench/fe-traffic.c), the in-tree test front-end playing
# the guest driver: it does QEMU's handshake, sends SET_LOG_BASE at start
# and, on SIGUSR2, starts or stops logging as QEMU does at migration start
# and cancel (SET_FEATURES +/- LOG_ALL, SET_VRING_ADDR +/- the log flag,
# acked); SIGUSR1 makes it report its counters and the log bits set since
# the last report (read and cleared as QEMU's log sync does).
#   A: vhu-bench --mode MODE                       (all threads on --be-cpu)
#   B: dpdk-testpmd --vdev net_vhost0 --forward-mode=MODE (librte_vhost)
#   front-end: fe-traffic on --fe-cpu, the same binary and options for both
# Rows as compare-dpdk.sh (--list); by default guest-rx/64 and /1518 and
# guest-tx/64, split and packed, mergeable buffers on.
#
# Rates (default), per row: both pairs (fe-traffic + vhu-bench, fe-traffic
# + testpmd) alive at once, the one not measured held with SIGSTOP, as in
# paired.sh.  A cycle is four windows, vhu log off, vhu log on, DPDK log on,
# DPDK log off, reversed on even cycles (ABBA: a steady drift favours no
# set-up).  A window: SIGCONT, logging turned on or off if needed, --warmup
# seconds of traffic, then the front-end's rate over --seconds (its own
# counters and clock, both reports taken while it runs), SIGSTOP.  Per
# cycle four paired ratios: vhu/DPDK with logging off and on, and each
# back-end's on/off; the row's results are their medians (quartiles, the
# cycles vhu won) and the median rate of each set-up.
#
# --ipp: instructions per packet instead (ipp.sh's method): the back-end
# under callgrind counting only inside vhu_net_enqueue/dequeue or
# rte_vhost_enqueue/dequeue_burst; per sample one back-end, logging off
# then on (on then off on even repetitions), each a window of traffic
# (Ir / frames the front-end counted) and an idle window with the
# front-end stopped (Ir per call that moves nothing, for the net figure).
#
# A window fails loudly (FAIL in the TSV, exit status 1): no traffic, frames
# of the wrong size, a bad virtio-net header, different features on the
# two back-ends, the held pair using CPU, and, with logging on, a back-end
# that set no bit in the log (the run would not measure logging at all).
# Log pages the back-end wrote but did not mark (log_missing) and bits set
# with logging off are recorded and warned about, not failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

BENCH_REPS=10
BENCH_SECONDS=2
BENCH_WARMUP=1
BENCH_ROWS='^guest-rx/(64|1518)/(split|packed)/mrg-on$|^guest-tx/64/(split|packed)/mrg-on$'
IPP=0
IDLE_SECONDS=2

usage() {
	cat <<EOF
usage: $0 [options]     (defaults: --reps $BENCH_REPS cycles per row, --seconds $BENCH_SECONDS,
                        --warmup $BENCH_WARMUP, --rows '$BENCH_ROWS')
  --ipp           instructions per packet under callgrind (defaults then:
                  --reps 2 --seconds 4 --warmup 3) instead of rates
  --idle N        --ipp: seconds of the idle window (default $IDLE_SECONDS)
$BENCH_COMMON_USAGE
EOF
}

args=()
while (($#)); do
	case $1 in
	--ipp) IPP=1; shift ;;
	--idle) IDLE_SECONDS=${2:?}; shift 2 ;;
	*) args+=("$1"); shift ;;
	esac
done
if ((IPP)); then
	BENCH_REPS=2 BENCH_SECONDS=4 BENCH_WARMUP=3
fi
bench_args usage ${args[@]+"${args[@]}"}
[[ $IDLE_SECONDS =~ ^[0-9]+$ ]] || bench_die "--idle wants a number"
mapfile -t all_rows < <(dp_rows)
rows_filter "${all_rows[@]}"
if ((IPP)); then
	bench_setup dirty-log-ipp
	command -v vgdb >/dev/null || apt_install valgrind || bench_die "valgrind not found"
else
	bench_setup dirty-log
fi
bench_need_build vhu-bench

# fe-traffic is built with the tests (it links the test front-end).
FE_TRAFFIC=$BENCH_BUILD/test/bench/fe-traffic
src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BENCH_BUILD/CMakeCache.txt")
if [[ ! -x $FE_TRAFFIC || $src -ef $BENCH_ROOT ]] &&
	! cmake --build "$BENCH_BUILD" -j"$(nproc)" --target fe-traffic >>"$BENCH_WORK/build.log" 2>&1; then
	BENCH_KEEP=1
	bench_die "cannot build fe-traffic in $BENCH_BUILD (tests off? see $BENCH_WORK/build.log)"
fi
bench_info
echo "front-end: $FE_TRAFFIC"

# --- the front-end ---------------------------------------------------------------

declare -A FE_PID=() FE_SEQ=() FE_TOGGLES=() FE_LOG=() FE_FEATURES=() PAIR_BE=() PAIR_FEAT=()

# fe_spawn KIND SOCK: fe-traffic for the current row on SOCK, the dirty log
# set up and logging off, until it reports ready.  Returns 1 if it does not.
fe_spawn() {
	local kind=$1 sock=$2 out=$BENCH_DIR/fe-$1.out argv
	argv=("$FE_TRAFFIC" --socket "$sock" --dir "$R_DIR" --size "$R_SIZE" --mrg "$R_MRG"
		--log-base --seconds 0)
	[[ $R_RING == packed ]] && argv+=(--packed)
	bench_spawn "fe-$kind" "$FE_CPU" "${argv[@]}"
	FE_PID[$kind]=$BENCH_PID FE_SEQ[$kind]=0 FE_TOGGLES[$kind]=0 FE_LOG[$kind]=off
	wait_for "$out" '^fe-traffic: ready features' 60 "$BENCH_PID" || return 1
	FE_FEATURES[$kind]=$(sed -n 's/^fe-traffic: ready features \(0x[0-9a-f]*\).*/\1/p' "$out" | head -n 1)
}

# fe_wait_line KIND REGEX: until fe-KIND.out has a line matching REGEX
# (10 s, 10 ms steps); prints it.
fe_wait_line() {
	local out=$BENCH_DIR/fe-$1.out n=0 line
	while ((n++ < 1000)); do
		if line=$(grep -E -m 1 -- "$2" "$out"); then
			echo "$line"
			return 0
		fi
		alive "${FE_PID[$1]}" || break
		sleep 0.01
	done
	echo "fe-$1: no line '$2'" >&2
	return 1
}

# fe_report KIND: the front-end's counters now: sets REP_NS REP_FRAMES
# REP_BYTES REP_ERRORS REP_KICKS REP_CALLS REP_BITS REP_MISSING (the last
# two: since its previous report).
fe_report() {
	local kind=$1 n line
	n=$((FE_SEQ[$kind] + 1))
	FE_SEQ[$kind]=$n
	kill -USR1 "${FE_PID[$kind]}" 2>/dev/null || return 1
	line=$(fe_wait_line "$kind" "^fe-traffic: report $n ") || return 1
	read -r REP_NS REP_FRAMES REP_BYTES REP_ERRORS REP_KICKS REP_CALLS REP_BITS REP_MISSING < <(
		awk '{ for (i = 3; i < NF; i++) v[$i] = $(i + 1)
			print v["ns"], v["frames"], v["bytes"], v["errors"], v["kicks"], v["calls"],
				v["log_bits"], v["log_missing"] }' <<<"$line")
}

# fe_log KIND on|off: logging on or off (a SIGUSR2 toggle when it is not),
# done when the front-end says so (every request acked).
fe_log() {
	local kind=$1 want=$2 n
	[[ ${FE_LOG[$kind]} != "$want" ]] || return 0
	n=$((FE_TOGGLES[$kind] + 1))
	FE_TOGGLES[$kind]=$n
	kill -USR2 "${FE_PID[$kind]}" 2>/dev/null || return 1
	fe_wait_line "$kind" "^fe-traffic: log $want $n\$" >/dev/null || return 1
	FE_LOG[$kind]=$want
}

# signal_pids SIG PID...: SIG to each; for STOP, until every thread of
# each is stopped (2 s at most).
signal_pids() {
	local sig=$1 p t st n=0
	shift
	for p; do
		if [[ -n $p ]]; then kill "-$sig" "$p" 2>/dev/null || true; fi
	done
	[[ $sig == STOP ]] || return 0
	for p; do
		for t in /proc/"$p"/task/*/stat; do
			while read -r st <"$t" 2>/dev/null && st=${st##*) } && [[ ${st:0:1} != [Tt] ]] && ((n++ < 200)); do
				sleep 0.01
			done
		done
	done
}

# pair_start KIND: back-end KIND (under BE_TOOL) on BENCH_DIR/KIND.sock and
# fe-traffic on it, ready, log set up (off).  Returns 1 (DP_ERR) if not.
pair_start() {
	local kind=$1 mode=rxonly
	[[ $R_DIR == guest-tx ]] || mode=txonly
	DP_BE=be-$kind DP_ERR='' BE_FEATURES=''
	if ! be_start "$kind" "$mode" "$BENCH_DIR/$kind.sock"; then
		DP_ERR="the $kind back-end did not create its socket"
		return 1
	fi
	PAIR_BE[$kind]=$BE_PID
	if ! fe_spawn "$kind" "$BENCH_DIR/$kind.sock"; then
		DP_ERR="fe-traffic did not get ready with the $kind back-end"
		return 1
	fi
	if ! be_ready "$kind"; then
		DP_ERR="the $kind back-end never saw the device ready"
		return 1
	fi
	PAIR_FEAT[$kind]="${FE_FEATURES[$kind]}/$BE_FEATURES"
}

# pair_stop KIND: front-end and back-end ended (continued first).
pair_stop() {
	local kind=$1
	DP_BE=be-$kind BE_PID=${PAIR_BE[$kind]:-}
	signal_pids CONT "$BE_PID" "${FE_PID[$kind]:-}"
	[[ -z ${FE_PID[$kind]:-} ]] || stop_pid "${FE_PID[$kind]}" TERM 5 || true
	[[ -z $BE_PID ]] || be_stop "$kind"
	unset "FE_PID[$kind]" "PAIR_BE[$kind]"
}

# --- rates -------------------------------------------------------------------------

# window CYCLE ROW KIND LOG OTHER: one measured window of pair KIND with
# logging LOG (on|off) while pair OTHER (if any) stays stopped; a TSV line.
window() {
	local cycle=$1 row=$2 kind=$3 log=$4 other=${5:-} err='' pps=0 frames=0 bytes=0 errors=0
	local ns0 f0 b0 e0 k0 c0 usage='' parked=0 bpp=0
	REP_BITS=0 REP_MISSING=0 REP_KICKS=0 REP_CALLS=0
	signal_pids CONT "${PAIR_BE[$kind]}" "${FE_PID[$kind]}"
	if ! fe_log "$kind" "$log"; then
		err="fe-traffic could not turn logging $log"
	else
		sleep "$BENCH_WARMUP"
		cpu_snap "$BENCH_DIR/cpu.0" "${FE_PID[$kind]}" "${PAIR_BE[$kind]}" \
			${other:+"${FE_PID[$other]}" "${PAIR_BE[$other]}"}
		if ! fe_report "$kind"; then
			err="no report from fe-traffic"
		else
			ns0=$REP_NS f0=$REP_FRAMES b0=$REP_BYTES e0=$REP_ERRORS k0=$REP_KICKS c0=$REP_CALLS
			sleep "$BENCH_SECONDS"
			fe_report "$kind" || err="no report from fe-traffic"
		fi
		cpu_snap "$BENCH_DIR/cpu.1" "${FE_PID[$kind]}" "${PAIR_BE[$kind]}" \
			${other:+"${FE_PID[$other]}" "${PAIR_BE[$other]}"}
	fi
	signal_pids STOP "${FE_PID[$kind]}" "${PAIR_BE[$kind]}"
	if [[ -z $err ]]; then
		frames=$((REP_FRAMES - f0)) bytes=$((REP_BYTES - b0)) errors=$((REP_ERRORS - e0))
		pps=$(awk -v f="$frames" -v t="$((REP_NS - ns0))" 'BEGIN { printf "%.0f", (t > 0 ? f * 1e9 / t : 0) }')
		usage=$(cpu_usage "$BENCH_DIR/cpu.0" "$BENCH_DIR/cpu.1" "fe=${FE_PID[$kind]}" "be=${PAIR_BE[$kind]}" \
			${other:+"parked=${FE_PID[$other]}" "parkedbe=${PAIR_BE[$other]}"})
		[[ -z $other ]] || parked=$(($(kv "$usage" parked_top | sed 's/.*://;s/?/0/') +
			$(kv "$usage" parkedbe_top | sed 's/.*://;s/?/0/')))
		((frames > 0)) && bpp=$(((bytes + frames / 2) / frames))
		if ((frames <= 0 || pps <= 0)); then
			err="no traffic: the front-end counted $frames frames"
		elif ((bytes != frames * R_SIZE)); then
			err="frames of $bpp bytes on average at the front-end, want $R_SIZE"
		elif ((errors > 0)); then
			err="$errors frames with a bad virtio-net header"
		elif [[ $log == on ]] && ((REP_BITS == 0)); then
			err="logging on and the back-end set no bit in the log: the window measures nothing"
		elif ((parked > 5)); then
			err="the stopped $other pair used $parked% of a CPU during the window"
		fi
	fi
	local status=ok
	if [[ -n $err ]]; then
		status=FAIL
		sample_fail "cycle $cycle $row $kind log $log: $err" "$BENCH_DIR/be-$kind.out" "$BENCH_DIR/fe-$kind.out"
	else
		[[ $log == on ]] || ((REP_BITS == 0)) ||
			bench_warn "$row $kind: $REP_BITS log bits set with logging off"
		((REP_MISSING == 0)) ||
			bench_warn "$row $kind: $REP_MISSING page(s) written with logging on and not marked in the log"
	fi
	if [[ -n $usage ]]; then
		cpu_check "$usage" fe "$FE_CPU"
		cpu_check "$usage" be "$BE_CPU"
	fi
	tsv_add "$cycle" "$row" "$kind" "$log" "$status" "$pps" "$frames" "$bpp" "${REP_BITS:-0}" \
		"${REP_MISSING:-0}" "$((${REP_KICKS:-0} - ${k0:-0}))" "$((${REP_CALLS:-0} - ${c0:-0}))" \
		"$(kv "$usage" "cpu${FE_CPU}_other")" "$(kv "$usage" "cpu${BE_CPU}_other")" "$parked" \
		"${PAIR_FEAT[$kind]:--}"
	printf '%s cycle %2d %-26s %-4s log %-3s %8.3f Mpps%s\n' "$(date +%T)" "$cycle" "$row" "$kind" "$log" \
		"$(awk -v p="$pps" 'BEGIN { print p / 1e6 }')" "$([[ $log == on ]] && echo ", $REP_BITS log bits")"
}

# run_row ROW: both pairs, --reps cycles of four windows, both pairs ended.
run_row() {
	local row=$1 c k kinds=() order
	row_parse "$row"
	sample_dir "${row//\//-}"
	[[ $BENCH_ONLY == dpdk ]] || kinds+=(vhu)
	[[ $BENCH_ONLY == vhu ]] || kinds+=(dpdk)
	for k in "${kinds[@]}"; do
		if ! pair_start "$k"; then
			sample_fail "$row: $DP_ERR" "$BENCH_DIR"/*.out
			local s
			for s in "${kinds[@]}"; do pair_stop "$s"; done
			return 0
		fi
		signal_pids STOP "${FE_PID[$k]}" "${PAIR_BE[$k]}"
	done
	if ((${#kinds[@]} == 2)) && [[ ${PAIR_FEAT[vhu]} != "${PAIR_FEAT[dpdk]}" ]]; then
		sample_fail "$row: features (front-end/back-end): vhu ${PAIR_FEAT[vhu]}, dpdk ${PAIR_FEAT[dpdk]}"
	else
		for ((c = 1; c <= BENCH_REPS; c++)); do
			if ((${#kinds[@]} == 1)); then
				order=("${kinds[0]}:off" "${kinds[0]}:on")
				((c % 2)) || order=("${kinds[0]}:on" "${kinds[0]}:off")
			elif ((c % 2)); then
				order=(vhu:off vhu:on dpdk:on dpdk:off)
			else
				order=(dpdk:off dpdk:on vhu:on vhu:off)
			fi
			for k in "${order[@]}"; do
				local other=''
				((${#kinds[@]} == 1)) || { [[ ${k%:*} == vhu ]] && other=dpdk || other=vhu; }
				window "$c" "$row" "${k%:*}" "${k#*:}" "$other"
			done
		done
	fi
	for k in "${kinds[@]}"; do pair_stop "$k"; done
}

# dl_summary TSV: per row (first-seen order), from the windows that are ok
# (and whose cpu_fe_other and cpu_be_other are at most --max-other): the
# median rate of each set-up and, per cycle, the ratios
# vhu/DPDK with logging off and on, and on/off of each back-end: their
# medians, quartiles and (vhu/DPDK) the cycles vhu won.  Tab-separated:
# ROW CYCLES VHU_OFF VHU_ON DPDK_OFF DPDK_ON then for each of the ratios
# off, on, vhu on/off, dpdk on/off: MEDIAN Q1 Q3 WON (WON: of the cycles
# with both windows).
dl_summary() {
	awk -F'\t' -v OFS='\t' -v maxo="$BENCH_MAX_OTHER" "$BENCH_AWK_Q"'
		function ratio(name, a, b,   k, n, w) {
			delete rs; n = 0; w = 0
			for (k = 1; k <= nc; k++) {
				c = cyc[k]
				if (!((r, c, a) in v) || !((r, c, b) in v)) continue
				rs[++n] = v[r, c, a] / v[r, c, b]; w += rs[n] > 1
			}
			return n ? sprintf("%.3f\t%.3f\t%.3f\t%d/%d", q(rs, n, .5), q(rs, n, .25), q(rs, n, .75), w, n) : "-\t-\t-\t-"
		}
		function med(s,   k, n) {
			delete rs; n = 0
			for (k = 1; k <= nc; k++) if ((r, cyc[k], s) in v) rs[++n] = v[r, cyc[k], s]
			return n ? q(rs, n, .5) : "-"
		}
		NR == 1 { next }
		!($2 in seen) { seen[$2] = 1; order[++nrows] = $2 }
		$5 == "ok" && $13 + 0 <= maxo && $14 + 0 <= maxo { v[$2, $1, $3 "/" $4] = $6; cycles[$2, $1] = 1 }
		END {
			for (i = 1; i <= nrows; i++) {
				r = order[i]; nc = 0
				delete cyc
				for (key in cycles) { split(key, kk, SUBSEP); if (kk[1] == r) cyc[++nc] = kk[2] }
				print r, nc, med("vhu/off"), med("vhu/on"), med("dpdk/off"), med("dpdk/on"),
					ratio("off", "vhu/off", "dpdk/off"), ratio("on", "vhu/on", "dpdk/on"),
					ratio("vhu", "vhu/on", "vhu/off"), ratio("dpdk", "dpdk/on", "dpdk/off")
			}
		}' "$1"
}

run_rates() {
	local row
	tsv_init cycle row backend log status pps frames bytes_per_pkt log_bits log_missing kicks calls \
		cpu_fe_other cpu_be_other parked_pct features
	bench_log "${#BENCH_ROW_LIST[@]} rows x $BENCH_REPS cycles of 4 windows (vhu off,on / DPDK on,off," \
		"reversed on even cycles), ${BENCH_WARMUP}s traffic + ${BENCH_SECONDS}s measured;" \
		"front-end CPU $FE_CPU, back-ends CPU $BE_CPU; $BENCH_OUT"
	for row in "${BENCH_ROW_LIST[@]}"; do
		run_row "$row"
	done
	echo
	echo "Median rates (Mpps) and the medians of the per-cycle ratios (quartiles; cycles"
	echo "won: the numerator larger), logging off and on:"
	printf '%-26s %3s %8s %8s %8s %8s  %-26s %-26s %-15s %-15s\n' row cyc "vhu off" "vhu on" "DPDK off" \
		"DPDK on" "vhu/DPDK off" "vhu/DPDK on" "vhu on/off" "DPDK on/off"
	dl_summary "$BENCH_OUT" | awk -F'\t' '
		function m(x) { return x == "-" ? "-" : sprintf("%.3f", x / 1e6) }
		function r(a, b, c, w) { return a == "-" ? "-" : sprintf("%.3f (%.2f-%.2f) %s", a, b, c, w) }
		function s(a, b, c) { return a == "-" ? "-" : sprintf("%.3f (%.2f-%.2f)", a, b, c) }
		{ printf "%-26s %3d %8s %8s %8s %8s  %-26s %-26s %-15s %-15s\n", $1, $2, m($3), m($4), m($5), m($6),
			r($7, $8, $9, $10), r($11, $12, $13, $14), s($15, $16, $17), s($19, $20, $21) }'
}

# --- instructions per packet (--ipp) ------------------------------------------------

# ipp_windows KIND FN LOG: with traffic flowing and logging LOG, a traffic
# window and an idle one (the front-end stopped); one TSV line.
ipp_windows() {
	local kind=$1 fn=$2 log=$3 err='' f0 pkts=0 ir=0 calls=0 iir=0 icalls=0 traffic idle
	local cg=$BENCH_DIR/callgrind.out n=${CG_DUMPS:-0}
	if ! fe_log "$kind" "$log"; then
		err="fe-traffic could not turn logging $log"
	else
		sleep "$BENCH_WARMUP"
		# the same order at both ends: callgrind first, then the counters
		if cg_cmd "$BE_PID" zero && fe_report "$kind" && f0=$REP_FRAMES && sleep "$BENCH_SECONDS" &&
			cg_cmd "$BE_PID" dump && fe_report "$kind"; then
			pkts=$((REP_FRAMES - f0))
			signal_pids STOP "${FE_PID[$kind]}"
			sleep 0.5
			cg_cmd "$BE_PID" zero && sleep "$IDLE_SECONDS" && cg_cmd "$BE_PID" dump ||
				err="vgdb failed (see vgdb.log)"
			signal_pids CONT "${FE_PID[$kind]}"
		else
			err="vgdb or fe-traffic's report failed (see vgdb.log)"
		fi
	fi
	CG_DUMPS=$((n + 2))
	if [[ -z $err ]]; then
		if ! traffic=$(cg_read "$cg.$((n + 1))" "$fn") || ! idle=$(cg_read "$cg.$((n + 2))" "$fn"); then
			err="no callgrind dumps ($cg.$((n + 1)), $cg.$((n + 2)))"
		else
			read -r ir calls <<<"$traffic"
			read -r iir icalls <<<"$idle"
			if ((pkts <= 0 || ir <= 0 || calls <= 0)); then
				err="nothing measured: $pkts packets, $ir Ir, $calls calls of $fn"
			elif [[ $log == on ]] && ((REP_BITS == 0)); then
				err="logging on and the back-end set no bit in the log: the window measures nothing"
			fi
		fi
	fi
	local status=ok raw=- net=- per_call=- empty=-
	if [[ -n $err ]]; then
		status=FAIL
		sample_fail "rep $IPP_REP $IPP_ROW $kind log $log: $err" "$BENCH_DIR/be-$kind.out" \
			"$BENCH_DIR/fe-$kind.out" "$BENCH_DIR/vgdb.log"
	else
		read -r raw net per_call empty < <(cg_per_pkt "$ir" "$calls" "$pkts" "$iir" "$icalls")
		awk -v b="$per_call" 'BEGIN { exit !(b < 28) }' &&
			bench_warn "$IPP_ROW $kind log $log: $per_call packets per call: the back-end often found nothing (see net)"
	fi
	tsv_add "$IPP_REP" "$IPP_ROW" "$kind" "$log" "$status" "$fn" "$pkts" "$calls" "$ir" "$raw" "$net" \
		"$per_call" "$icalls" "$iir" "$empty" "${REP_BITS:-0}" "${REP_MISSING:-0}"
	printf '%s rep %d %-26s %-4s log %-3s %-24s %7s Ir/pkt raw %7s net, %s pkts/call, %s Ir/empty call\n' \
		"$(date +%T)" "$IPP_REP" "$IPP_ROW" "$kind" "$log" "$fn" "$raw" "$net" "$per_call" "$empty"
}

# ipp_sample REP ROW KIND: one back-end under callgrind, logging off and on.
ipp_sample() {
	local rep=$1 row=$2 kind=$3 fn logs=(off on) l
	row_parse "$row"
	sample_dir "r$rep-${row//\//-}-$kind"
	fn=$(datapath_fn "$kind" "$R_DIR")
	((rep % 2)) || logs=(on off)
	BE_TOOL=(valgrind --tool=callgrind --callgrind-out-file="$BENCH_DIR/callgrind.out" --collect-atstart=no
		--compress-strings=no --toggle-collect="$fn" --vgdb=yes)
	IPP_REP=$rep IPP_ROW=$row CG_DUMPS=0
	if ! pair_start "$kind"; then
		BE_TOOL=()
		for l in "${logs[@]}"; do
			tsv_add "$rep" "$row" "$kind" "$l" FAIL "$fn" 0 0 0 - - - 0 0 - 0 0
		done
		sample_fail "rep $rep $row $kind: $DP_ERR (under valgrind)" "$BENCH_DIR"/*.out
		pair_stop "$kind"
		return 0
	fi
	BE_TOOL=()
	BE_PID=${PAIR_BE[$kind]}
	for l in "${logs[@]}"; do
		ipp_windows "$kind" "$fn" "$l"
	done
	pair_stop "$kind"
}

# ipp_report: per row, back-end and log state, the median Ir per packet.
ipp_report() {
	awk -F'\t' -v OFS='\t' '
		function med(key, n,   i, j, t, a) {
			for (i = 1; i <= n; i++) a[i] = v[key, i]
			for (i = 2; i <= n; i++)
				for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		function m(key) { return n[key] ? med(key, n[key]) : "-" }
		function d(a, b) { return a == "-" || b == "-" || b == 0 ? "-" : sprintf("%.2f", a / b) }
		NR == 1 { next }
		!($2 in seen) { seen[$2] = 1; order[++nr] = $2 }
		$5 == "ok" { k = $2 SUBSEP $3 SUBSEP $4; v[k, ++n[k]] = $11; e[k, n[k]] = $15 }
		END {
			printf "%-26s %8s %8s %8s %8s %10s %10s %10s %10s\n", "row", "vhu off", "vhu on",
				"DPDK off", "DPDK on", "vhu/DPDK", "vhu/DPDK", "vhu", "DPDK"
			printf "%-26s %8s %8s %8s %8s %10s %10s %10s %10s\n", "", "", "", "", "", "off", "on",
				"on/off", "on/off"
			for (i = 1; i <= nr; i++) {
				r = order[i]
				vo = m(r SUBSEP "vhu" SUBSEP "off"); vn = m(r SUBSEP "vhu" SUBSEP "on")
				do_ = m(r SUBSEP "dpdk" SUBSEP "off"); dn = m(r SUBSEP "dpdk" SUBSEP "on")
				printf "%-26s %8s %8s %8s %8s %10s %10s %10s %10s\n", r, vo, vn, do_, dn,
					d(vo, do_), d(vn, dn), d(vn, vo), d(dn, do_)
			}
		}' "$1"
}

run_ipp() {
	tsv_init rep row backend log status function pkts calls ir ir_per_pkt ir_per_pkt_net \
		pkts_per_call idle_calls idle_ir ir_per_empty_call log_bits log_missing
	bench_log "${#BENCH_ROW_LIST[@]} rows x $BENCH_REPS A/B pairs under callgrind, logging off and on;" \
		"$BENCH_OUT"
	bench_run_ab ipp_sample
	echo
	echo "Instructions per packet in the data-path call, net of empty polls (medians;"
	echo "lower is better), logging off and on:"
	ipp_report "$BENCH_OUT"
}

if ((IPP)); then
	run_ipp
else
	run_rates
fi
bench_finish
