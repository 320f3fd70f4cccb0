#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# plot.sh [-o PNG] [--title TEXT] [--max-other PCT] [--markdown] TSV... -
# the ratio vhu/DPDK per row as horizontal bars, with a line at 1.0: from
# the TSVs of compare-dpdk.sh and compare-l2fwd.sh the ratio of the median
# packets per second of each; from those of paired.sh the median of the
# paired windows' ratios, with its quartiles as error bars.  Default
# output: docs/performance.png.  --max-other: as in the scripts, leave out
# samples during which other tasks took more than PCT% of a CPU.
# --markdown: print the table (Mpps) for docs/performance.md instead.
# Needs gnuplot (installed with apt-get when missing and root).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

out=$BENCH_ROOT/docs/performance.png
title="vhu / DPDK librte_vhost, median packets per second (> 1: vhu faster)"
tsvs=()
markdown=0
while (($#)); do
	case $1 in
	-o) out=${2:?}; shift 2 ;;
	--title) title=${2:?}; shift 2 ;;
	--max-other) BENCH_MAX_OTHER=${2:?}; shift 2 ;;
	--markdown) markdown=1; shift ;;
	-h | --help) sed -n '4,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) tsvs+=("$1"); shift ;;
	esac
done
BENCH_NAME=plot
((${#tsvs[@]})) || bench_die "usage: plot.sh [-o PNG] [--title TEXT] [--max-other PCT] [--markdown] TSV..."
# is_paired TSV: a paired.sh TSV (its first column is the cycle).
is_paired() {
	[[ $(head -n 1 "$1" | cut -f 1) == cycle ]]
}

# ratios TSV: "ROW RATIO Q1 Q3" per row with samples of both back-ends
# (Q1 = Q3 = RATIO where the TSV has no paired samples).
ratios() {
	if is_paired "$1"; then
		bench_paired "$1" | awk -F'\t' -v OFS='\t' '$6 > 0 { print $1, $2, $3, $4 }'
	else
		bench_medians "$1" | awk -F'\t' -v OFS='\t' '$4 != "-" { print $1, $4, $4, $4 }'
	fi
}

if ((markdown)) && is_paired "${tsvs[0]}"; then
	echo "| row | vhu/DPDK (median of pairs) | quartiles | vhu faster | vhu Mpps | DPDK Mpps |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: |"
	for tsv in "${tsvs[@]}"; do
		is_paired "$tsv" || bench_die "$tsv: not a paired.sh TSV (do not mix them in --markdown)"
		bench_paired "$tsv"
	done | awk -F'\t' '$6 > 0 {
		printf "| %s | %.2f | %.2f-%.2f | %d of %d | %.2f | %.2f |\n", $1, $2, $3, $4, $5, $6, $7 / 1e6, $8 / 1e6 }'
	exit 0
fi
if ((markdown)); then
	echo "| row | vhu Mpps | DPDK Mpps | vhu/DPDK | samples (vhu/DPDK) |"
	echo "| --- | ---: | ---: | ---: | ---: |"
	for tsv in "${tsvs[@]}"; do
		bench_medians "$tsv"
	done | awk -F'\t' '
		function f(x) { return x == "-" ? "-" : sprintf("%.2f", x / 1e6) }
		{ printf "| %s | %s | %s | %s | %d/%d |\n", $1, f($2), f($3), $4, $5, $6 }'
	exit 0
fi
command -v gnuplot >/dev/null || apt_install gnuplot-nox || bench_die "gnuplot not found (apt-get install gnuplot-nox)"

data=$(mktemp)
trap 'rm -f "$data"' EXIT
for tsv in "${tsvs[@]}"; do
	head -n 1 "$tsv" | tr '\t' '\n' | grep -qx pps || bench_die "$tsv: no pps column (a compare-*.sh or paired.sh TSV?)"
	ratios "$tsv"
done | awk -F'\t' -v OFS='\t' '{ print ++n, $1, $2, $3, $4 }' >"$data"
rows=$(wc -l <"$data")
((rows > 0)) || bench_die "no row has samples of both back-ends"
xmax=$(awk -F'\t' 'BEGIN { m = 1.2 } $5 * 1.15 > m { m = $5 * 1.15 } END { print m }' "$data")

gnuplot <<EOF
set terminal pngcairo size 960,$((120 + 26 * rows)) font "sans,10"
set output "$out"
set title "$title" noenhanced
set datafile separator "\t"
set yrange [$rows + 0.5:0.5]
set ytics noenhanced
set xrange [0:$xmax]
set xlabel "vhu / DPDK"
set grid xtics
set style fill solid 0.75 border -1
set arrow from 1, graph 0 to 1, graph 1 nohead front dashtype 2 linewidth 2 linecolor rgb "black"
unset key
plot "$data" using (\$3 / 2):1:(\$3 / 2):(0.35):(\$3 >= 1 ? 0x2e8b57 : 0xc0392b):ytic(2) \
	with boxxyerror linecolor rgb variable, \
	"" using 3:1:4:5 with xerrorbars pointtype -1 linecolor rgb "black", \
	"" using 5:1:(sprintf(" %.2f", \$3)) with labels left
EOF
echo "plot.sh: $out ($rows rows)"
