#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# rate-series.sh - the front-end's rate second by second over long runs,
# vhu-bench and librte_vhost alternately (the set-up of compare-dpdk.sh).
#
# compare-dpdk.sh gives one figure per sample; this shows how a rate moves
# within a run.  On a shared VM the rate of a front-end-bound row can jump
# between levels 2-3x apart every few seconds, with either back-end (the
# host moving the two vCPUs between cores, so that every cache line the
# front-end and back-end pass each other costs more or less): then a few
# short samples per row decide little, and the per-second readings of long
# runs, pooled, are the better comparison.  Per row and back-end it prints
# the median and the 10th and 90th percentiles of every one-second reading,
# and the ratio of the medians; every reading is a line of the TSV.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

BENCH_SECONDS=30
BENCH_ROWS='^guest-tx/64/split/mrg-off$'

usage() {
	cat <<EOF
usage: $0 [options]
(--seconds is the length of each run, read every second: default $BENCH_SECONDS;
--rows defaults to '$BENCH_ROWS')
$BENCH_COMMON_USAGE
EOF
}

bench_args usage "$@"
dp_begin rate-series

# run_series REP ROW BACKEND: one run, a TSV line per second.
run_series() {
	local rep=$1 row=$2 be=$3 s stats pps line='' e
	row_parse "$row"
	sample_dir "r$rep-${row//\//-}-$be"
	if ! dp_start "$be" "$BENCH_DIR/vhost.sock"; then
		sample_fail "rep $rep $row $be: $DP_ERR" "$BENCH_DIR/be.out" "$BENCH_DIR/fe.out"
	else
		sleep "$BENCH_WARMUP"
		# each "show port stats" restarts testpmd's rate interval
		tp_port_stats fe >/dev/null || true
		for ((s = 1; s <= BENCH_SECONDS; s++)); do
			sleep 1
			stats=$(tp_port_stats fe) || break
			read -r -a e <<<"$stats"
			if [[ $R_DIR == guest-tx ]]; then pps=${e[5]}; else pps=${e[4]}; fi
			tsv_add "$rep" "$row" "$be" "$s" "$pps"
			line+=" $(awk -v p="$pps" 'BEGIN { printf "%.1f", p / 1e6 }')"
		done
	fi
	tp_quit fe
	be_stop "$be"
	printf '%s rep %d %-26s %-4s Mpps each second:%s\n' "$(date +%T)" "$rep" "$row" "$be" "$line"
}

tsv_init rep row backend second pps
bench_log "${#BENCH_ROW_LIST[@]} rows x $BENCH_REPS A/B pairs of ${BENCH_SECONDS}s runs" \
	"read every second, after ${BENCH_WARMUP}s warm-up; $BENCH_OUT"
bench_run_ab run_series

echo
echo "Per-second readings of the front-end's rate, all runs pooled (Mpps):"
awk -F'\t' '
	NR == 1 { next }
	{ k = $2 SUBSEP $3; v[k, ++n[k]] = $5 / 1e6; rows[$2] = 1 }
	function pct(k, p,   i, j, t, a, m) {
		m = n[k]
		for (i = 1; i <= m; i++) a[i] = v[k, i]
		for (i = 2; i <= m; i++)
			for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		i = 1 + p * (m - 1)
		j = int(i)
		return a[j] + (i - j) * (a[j + 1 < m ? j + 1 : m] - a[j])
	}
	END {
		printf "%-28s %5s %22s %22s %8s\n", "row", "n", "vhu p10/median/p90", "DPDK p10/median/p90", "vhu/DPDK"
		for (r in rows) {
			a = r SUBSEP "vhu"; b = r SUBSEP "dpdk"
			sa = n[a] ? sprintf("%.2f/%.2f/%.2f", pct(a, .1), pct(a, .5), pct(a, .9)) : "-"
			sb = n[b] ? sprintf("%.2f/%.2f/%.2f", pct(b, .1), pct(b, .5), pct(b, .9)) : "-"
			ratio = n[a] && n[b] && pct(b, .5) > 0 ? sprintf("%.3f", pct(a, .5) / pct(b, .5)) : "-"
			printf "%-28s %2d/%-2d %22s %22s %8s\n", r, n[a], n[b], sa, sb, ratio
		}
	}' "$BENCH_OUT"
bench_finish
