#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# compare-dpdk.sh - vhu against DPDK's librte_vhost, one vhost-user back-end
# each, behind the same real front-end: dpdk-testpmd with a net_virtio_user
# port (the "guest"), all its threads on --fe-cpu.
#   A: vhu-bench                                  (all threads on --be-cpu)
#   B: dpdk-testpmd --vdev net_vhost0 (librte_vhost) (all threads on --be-cpu)
# Rows (--list): guest-tx (front-end txonly, back-end rxonly) and guest-rx
# (back-end txonly, front-end rxonly); 64 and 1518-byte frames; split and
# packed rings; mergeable RX buffers on and off.
#
# Each sample starts a back-end and a front-end, lets traffic run
# --warmup seconds, then reads the FRONT-END's port statistics over
# --seconds (testpmd's own rate over that interval: Tx-pps for guest-tx,
# Rx-pps for guest-rx), stops both.  The back-ends' own counters are never
# the result.  Per repetition every row runs A then B; medians per row and
# backend, and the ratio vhu/DPDK, are printed at the end; every sample is a
# line of the TSV (--out).
#
# A sample fails loudly (and the script exits 1) when the front-end's
# counters did not move, the frames had the wrong size, or the two
# back-ends negotiated different virtio features for a row.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

usage() {
	cat <<EOF
usage: $0 [options]
$BENCH_COMMON_USAGE
EOF
}

bench_args usage "$@"
dp_begin compare-dpdk

declare -A features=() # ROW/REP -> features of the first back-end

# run_sample REP ROW BACKEND: one measurement, one TSV line.
run_sample() {
	local rep=$1 row=$2 be=$3 pps pkts bytes err=''
	row_parse "$row"
	sample_dir "r$rep-${row//\//-}-$be"
	measure_reset
	BE_FEATURES='' BE_SENT=0 BE_DROPS=0
	if ! dp_start "$be" "$BENCH_DIR/vhost.sock"; then
		err=$DP_ERR
	elif ! measure_window fe "fe=${TP_PID[fe]}" "be=$BE_PID"; then
		err="no statistics from the front-end"
	fi
	tp_quit fe
	be_stop "$be"

	if [[ $R_DIR == guest-tx ]]; then
		pps=${M_TX_PPS:-0} pkts=${M_TX_PKTS:-0} bytes=${M_TX_BYTES:-0}
	else
		pps=${M_RX_PPS:-0} pkts=${M_RX_PKTS:-0} bytes=${M_RX_BYTES:-0}
	fi
	if [[ -z $err ]]; then
		if ((pkts <= 0 || pps <= 0)); then
			err="no traffic: the front-end's ${R_DIR#guest-} counter moved by $pkts ($pps pps)"
		elif ((100 * (bytes - pkts * R_SIZE) / (pkts * R_SIZE) != 0)); then
			# (bytes and packets are read unlocked from a running PMD: 1% slack)
			err="frames of $((bytes / pkts)) bytes on average at the front-end, want $R_SIZE"
		elif [[ -n ${features[$row/$rep]:-} && ${features[$row/$rep]} != "$BE_FEATURES" ]]; then
			err="features $BE_FEATURES, the other back-end negotiated ${features[$row/$rep]}"
		fi
	fi
	features[$row/$rep]=${features[$row/$rep]:-$BE_FEATURES}
	local status=ok
	if [[ -n $err ]]; then
		status=FAIL
		sample_fail "rep $rep $row $be: $err" "$BENCH_DIR/be.out" "$BENCH_DIR/fe.out"
	fi
	local fe_drop be_drop
	fe_drop=$(pct "${M_TX_DROPPED:-0}" "${M_TX_TOTAL:-0}")
	be_drop=$(pct "$BE_DROPS" $((BE_SENT + BE_DROPS)))
	[[ -z $M_CPU ]] || {
		cpu_check "$M_CPU" fe "$FE_CPU"
		cpu_check "$M_CPU" be "$BE_CPU"
	}
	tsv_add "$rep" "$row" "$be" "$status" "$pps" "$pkts" "$((pkts ? (bytes + pkts / 2) / pkts : 0))" \
		"$fe_drop" "$be_drop" "$(kv "$M_CPU" fe_top)" "$(kv "$M_CPU" fe_rest)" \
		"$(kv "$M_CPU" be_top)" "$(kv "$M_CPU" be_rest)" \
		"$(kv "$M_CPU" "cpu${FE_CPU}_other")" "$(kv "$M_CPU" "cpu${BE_CPU}_other")" \
		"$(kv "$M_CPU" steal)" "${BE_FEATURES:--}"
	printf '%s rep %d %-26s %-4s %8.3f Mpps  fe-drop %s%% be-drop %s%%  [%s]\n' \
		"$(date +%T)" "$rep" "$row" "$be" "$(awk -v p="$pps" 'BEGIN { print p / 1e6 }')" \
		"$fe_drop" "$be_drop" "${M_CPU:-no cpu data}"
}

tsv_init rep row backend status pps pkts bytes_per_pkt fe_drop_pct be_drop_pct \
	fe_top fe_rest be_top be_rest cpu_fe_other cpu_be_other steal features
bench_log "${#BENCH_ROW_LIST[@]} rows x $BENCH_REPS A/B pairs, ${BENCH_WARMUP}s warm-up +" \
	"${BENCH_SECONDS}s window; front-end CPU $FE_CPU, back-ends CPU $BE_CPU; $BENCH_OUT"
bench_run_ab run_sample

echo
echo "Medians of the front-end's rate (fe-drop: frames the front-end's PMD"
echo "refused, ring full; be-drop: frames the back-end had no guest buffer for):"
bench_report "$BENCH_OUT" 1e6 Mpps
bench_finish
