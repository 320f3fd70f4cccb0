#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# paired.sh - vhu against librte_vhost in back-to-back windows, both set-ups
# alive at once and taking turns, so that each vhu window has a DPDK window
# next to it in time.
#
# On a shared VM the rate of a front-end-bound row jumps between levels 2-3x
# apart every few seconds to minutes, with either back-end: the host moves
# the two vCPUs, and every cache line the front-end and the back-end pass
# each other costs more or less (docs/performance.md).  compare-dpdk.sh
# starts fresh processes for each sample, so its vhu and DPDK samples are
# tens of seconds apart and land on levels independently.  Here, per row:
#
#   * both pairs start (front-end testpmd on --fe-cpu, back-end on
#     --be-cpu; vhu-bench on one socket, testpmd net_vhost0 on another);
#     the pair not being measured is stopped with SIGSTOP, so each CPU
#     runs one busy thread, as in compare-dpdk.sh;
#   * each cycle (--reps of them) runs a window of each, in the order
#     vhu,DPDK then DPDK,vhu (ABBA: a slow drift favours neither); a
#     window is SIGCONT, --warmup seconds of traffic, the front-end's own
#     rate over --seconds (testpmd's Tx-pps or Rx-pps, its counters and its
#     clock, both readings taken while it runs), SIGSTOP;
#   * the ratio of the two windows of a cycle is one paired sample; the
#     row's result is the median of those ratios, with the quartiles and
#     how many cycles vhu won.  The pooled medians of either side are
#     printed too.
#
# With --base DIR the other back-end is not librte_vhost but vhu-bench of
# another build (of the code before a change, say): the same pairing then
# says what the change bought, by the same measure.
#
# A window fails loudly (FAIL in the TSV, exit status 1) as in
# compare-dpdk.sh: counters that did not move, frames of the wrong size,
# the two back-ends negotiating different features, or the stopped pair
# using CPU during the window.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

BENCH_REPS=15
BENCH_SECONDS=2
BENCH_WARMUP=1

usage() {
	cat <<EOF
usage: $0 [options]
(--reps is the number of cycles per row, each a window of either back-end:
default $BENCH_REPS; --seconds the window, default $BENCH_SECONDS; --warmup the
traffic before each window, default $BENCH_WARMUP; --only is not taken;
--base DIR: the other back-end is vhu-bench of the build DIR, not librte_vhost,
for measuring a change of vhu against the code before it)
$BENCH_COMMON_USAGE
EOF
}

B=dpdk
args=()
while (($#)); do
	case $1 in
	--base) BENCH_BASE_BUILD=$(cd "${2:?}" && pwd) B=base; shift 2 ;;
	*) args+=("$1"); shift ;;
	esac
done
bench_args usage ${args[@]+"${args[@]}"}
[[ -z $BENCH_ONLY ]] || bench_die "--only: paired.sh needs both back-ends"
dp_begin paired

declare -A P_FE_PID P_BE_PID P_FEATURES

# pair_start KIND: the front-end fe-KIND and back-end be-KIND on
# BENCH_DIR/KIND.sock, forwarding; then stopped.  Returns 1 (DP_ERR) if not.
pair_start() {
	local kind=$1
	DP_FE=fe-$kind DP_BE=be-$kind
	BE_FEATURES=''
	dp_start "$kind" "$BENCH_DIR/$kind.sock" || return 1
	P_FE_PID[$kind]=${TP_PID[$DP_FE]}
	P_BE_PID[$kind]=$BE_PID
	P_FEATURES[$kind]=$BE_FEATURES
	pair_signal "$kind" STOP
}

# pair_signal KIND SIG: SIG (STOP or CONT) to both processes of a pair,
# the back-end first on CONT, the front-end first on STOP.
pair_signal() {
	local kind=$1 sig=$2 pids
	pids=("${P_FE_PID[$kind]:-}" "${P_BE_PID[$kind]:-}")
	[[ $sig == CONT ]] && pids=("${pids[1]}" "${pids[0]}")
	for p in "${pids[@]}"; do
		[[ -n $p ]] && kill "-$sig" "$p" 2>/dev/null || true
	done
	[[ $sig == STOP ]] || return 0
	# until every thread of both is stopped (state T), 2 s at most
	local n=0 t st
	for p in "${pids[@]}"; do
		for t in /proc/"$p"/task/*/stat; do
			while read -r st <"$t" 2>/dev/null && st=${st##*) } && [[ ${st:0:1} != [Tt] ]] && ((n++ < 200)); do
				sleep 0.01
			done
		done
	done
}

# pair_stop KIND: both processes ended (continued first: a stopped
# process acts on nothing else); sets BE_SENT and BE_DROPS.
pair_stop() {
	local kind=$1
	DP_FE=fe-$kind DP_BE=be-$kind BE_PID=${P_BE_PID[$kind]:-}
	pair_signal "$kind" CONT
	tp_quit "$DP_FE"
	if [[ -n $BE_PID ]]; then be_stop "$kind"; else BE_SENT=0 BE_DROPS=0; fi
	unset "P_FE_PID[$kind]" "P_BE_PID[$kind]"
}

# window CYCLE ROW KIND OTHER: one measured window of pair KIND while pair
# OTHER stays stopped; a TSV line; W_PPS the rate (0 when it failed).
window() {
	local cycle=$1 row=$2 kind=$3 other=$4 pps pkts bytes err='' parked
	W_PPS=0
	measure_reset
	pair_signal "$kind" CONT
	if ! measure_window "fe-$kind" "fe=${P_FE_PID[$kind]}" "be=${P_BE_PID[$kind]}" \
		"parked=${P_FE_PID[$other]}" "parkedbe=${P_BE_PID[$other]}"; then
		err="no statistics from the front-end"
	fi
	pair_signal "$kind" STOP
	if [[ $R_DIR == guest-tx ]]; then
		pps=${M_TX_PPS:-0} pkts=${M_TX_PKTS:-0} bytes=${M_TX_BYTES:-0}
	else
		pps=${M_RX_PPS:-0} pkts=${M_RX_PKTS:-0} bytes=${M_RX_BYTES:-0}
	fi
	# the stopped pair's busiest thread, in % of a CPU (expected 0)
	parked=$(($(kv "$M_CPU" parked_top | sed 's/.*://;s/?/0/') + $(kv "$M_CPU" parkedbe_top | sed 's/.*://;s/?/0/')))
	if [[ -z $err ]]; then
		if ((pkts <= 0 || pps <= 0)); then
			err="no traffic: the front-end's ${R_DIR#guest-} counter moved by $pkts ($pps pps)"
		elif ((100 * (bytes - pkts * R_SIZE) / (pkts * R_SIZE) != 0)); then
			err="frames of $((bytes / pkts)) bytes on average at the front-end, want $R_SIZE"
		elif ((parked > 5)); then
			err="the stopped $other pair used $parked% of a CPU during the window"
		fi
	fi
	local status=ok fe_drop
	if [[ -n $err ]]; then
		status=FAIL
		sample_fail "cycle $cycle $row $kind: $err" "$BENCH_DIR/be-$kind.out" "$BENCH_DIR/fe-$kind.out"
	else
		W_PPS=$pps
	fi
	fe_drop=$(pct "${M_TX_DROPPED:-0}" "${M_TX_TOTAL:-0}")
	[[ -z $M_CPU ]] || {
		cpu_check "$M_CPU" fe "$FE_CPU"
		cpu_check "$M_CPU" be "$BE_CPU"
	}
	tsv_add "$cycle" "$row" "$kind" "$status" "$pps" "$pkts" \
		"$((pkts ? (bytes + pkts / 2) / pkts : 0))" "$fe_drop" \
		"$(kv "$M_CPU" "cpu${FE_CPU}_other")" "$(kv "$M_CPU" "cpu${BE_CPU}_other")" \
		"$parked" "${P_FEATURES[$kind]:--}"
}

# run_row ROW: both pairs, --reps cycles, both pairs ended.
run_row() {
	local row=$1 c first second a b line
	row_parse "$row"
	sample_dir "${row//\//-}"
	if ! pair_start vhu || ! pair_start "$B"; then
		sample_fail "$row: $DP_ERR" "$BENCH_DIR"/*.out
	elif [[ ${P_FEATURES[vhu]} != "${P_FEATURES[$B]}" ]]; then
		sample_fail "$row: features: vhu ${P_FEATURES[vhu]}, $B ${P_FEATURES[$B]}"
	else
		for ((c = 1; c <= BENCH_REPS; c++)); do
			if ((c % 2)); then first=vhu second=$B; else first=$B second=vhu; fi
			window "$c" "$row" "$first" "$second"
			a=$W_PPS
			window "$c" "$row" "$second" "$first"
			b=$W_PPS
			[[ $first == vhu ]] || { line=$a a=$b b=$line; }
			printf '%s cycle %2d %-26s vhu %7.3f  %s %7.3f Mpps  %s\n' "$(date +%T)" "$c" "$row" \
				"$(awk -v p="$a" 'BEGIN { print p / 1e6 }')" "$B" "$(awk -v p="$b" 'BEGIN { print p / 1e6 }')" \
				"$(awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0 && b > 0) printf "%.3f", a / b; else print "-" }')"
		done
	fi
	pair_stop vhu
	pair_stop "$B"
}

tsv_init cycle row backend status pps pkts bytes_per_pkt fe_drop_pct \
	cpu_fe_other cpu_be_other parked_pct features
bench_log "${#BENCH_ROW_LIST[@]} rows x $BENCH_REPS cycles (vhu,$B / $B,vhu), windows of" \
	"${BENCH_WARMUP}s traffic + ${BENCH_SECONDS}s measured; front-end CPU $FE_CPU, back-ends CPU $BE_CPU; $BENCH_OUT"
for row in "${BENCH_ROW_LIST[@]}"; do
	run_row "$row"
done

echo
echo "Paired windows: vhu/$B of the two windows of each cycle, median and"
echo "quartiles; the cycles vhu won; each side's median rate:"
printf '%-28s %6s %8s %17s %6s %10s %10s\n' row pairs "vhu/$B" quartiles won "vhu Mpps" "$B Mpps"
bench_paired "$BENCH_OUT" | awk -F'\t' '{
	if ($6 == 0) { printf "%-28s %6d %8s\n", $1, 0, "-"; next }
	printf "%-28s %6d %8.3f %8.3f-%-8.3f %3d/%-2d %10.2f %10.2f\n", $1, $6, $2, $3, $4, $5, $6, $7 / 1e6, $8 / 1e6
}'
bench_finish
