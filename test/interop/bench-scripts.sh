#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# bench-scripts.sh BUILD_DIR - the benchmark scripts still do what
# docs/performance.md says, in short runs against the real DPDK 22.11
# (numbers are not judged here: that is what the benchmarks are for).
#
# Cases:
#   compare-dpdk   one row, one A/B pair: both samples ok, traffic counted
#                  by the front-end, same features on both back-ends
#   paired         one row, two cycles against librte_vhost: four ok
#                  windows in ABBA order, the held pair idle, a summary line
#   paired-base    --base BUILD_DIR: vhu against a vhu build, labelled base
#   plot           plot.sh draws the paired TSV (a PNG) and --markdown
#                  tabulates it
#   dirty-log      dirty-log.sh, one row, one cycle: four ok windows (vhu
#                  off, on, DPDK on, off) with traffic, log bits set by
#                  both back-ends with logging on and none with it off,
#                  the same features, a summary line
#   dirty-log-ipp  dirty-log.sh --ipp, one row: Ir per packet of both
#                  back-ends under callgrind, logging off and on
#   fails-loudly   a back-end that never serves: FAIL in the TSV, the
#                  failure printed, exit status 1
#   blk            blk.sh, one row, one cycle, 1 s windows: vhu-blk and
#                  qemu-storage-daemon on two disks of one TCG guest, an ok
#                  window on each (I/Os, CPU time per I/O), vhu first, the
#                  .info and summary written, a summary line, nothing left
#                  running or on disk
# Prints "N passed, N failed".
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: bench-scripts.sh BUILD_DIR}" && pwd)
# shellcheck source=test/interop/common.sh
. "$here/common.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/vhu-bench-scripts.XXXXXX")
trap 'rm -rf "$work"' EXIT
common=(--build "$build" --seconds 1 --warmup 1)

# column TSV NAME: the values of column NAME, one per line.
column() {
	awk -F'\t' -v n="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == n) c = i; next } { print $c }' "$1"
}

# ok_lines TSV: how many samples have status ok and a rate above 0.
ok_lines() {
	awk -F'\t' 'NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "status") s = i; if ($i == "pps") p = i }; next }
		$s == "ok" && $p > 0 { n++ } END { print n + 0 }' "$1"
}

case_begin compare-dpdk
out=$work/compare.tsv
if ! timeout 300 "$repo/bench/compare-dpdk.sh" "${common[@]}" --reps 1 \
	--rows '^guest-tx/64/split/mrg-off$' --out "$out" >"$work/compare.log" 2>&1; then
	case_error "compare-dpdk.sh exited non-zero"
fi
[[ -f $out && $(ok_lines "$out") == 2 ]] || case_error "want 2 ok samples with traffic"
[[ -f $out && $(column "$out" features | sort -u | wc -l) == 1 ]] ||
	case_error "the two back-ends' features differ or are missing"
grep -q 'guest-tx/64/split/mrg-off' "$work/compare.log" || case_error "no summary line"
case_end "$work/compare.log"

case_begin paired
out=$work/paired.tsv
if ! timeout 300 "$repo/bench/paired.sh" "${common[@]}" --reps 2 \
	--rows '^guest-rx/64/packed/mrg-on$' --out "$out" >"$work/paired.log" 2>&1; then
	case_error "paired.sh exited non-zero"
fi
[[ -f $out && $(ok_lines "$out") == 4 ]] || case_error "want 4 ok windows with traffic"
order=$([[ -f $out ]] && column "$out" backend | tr '\n' ' ')
[[ $order == "vhu dpdk dpdk vhu " ]] || case_error "window order '$order', want ABBA"
[[ -f $out ]] && column "$out" parked_pct | awk '$1 > 5 { bad = 1 } END { exit bad }' ||
	case_error "the held pair used CPU during a window"
grep -qE '^guest-rx/64/packed/mrg-on +2 +[0-9.]+ ' "$work/paired.log" ||
	case_error "no summary line over 2 pairs"
case_end "$work/paired.log"

case_begin paired-base
out2=$work/base.tsv
if ! timeout 300 "$repo/bench/paired.sh" "${common[@]}" --reps 2 --base "$build" \
	--rows '^guest-tx/64/packed/mrg-off$' --out "$out2" >"$work/base.log" 2>&1; then
	case_error "paired.sh --base exited non-zero"
fi
[[ -f $out2 && $(ok_lines "$out2") == 4 ]] || case_error "want 4 ok windows with traffic"
order=$([[ -f $out2 ]] && column "$out2" backend | tr '\n' ' ')
[[ $order == "vhu base base vhu " ]] || case_error "window order '$order', want vhu/base ABBA"
grep -q 'vhu/base' "$work/base.log" || case_error "the summary does not name the base"
case_end "$work/base.log"

case_begin plot
if [[ -f $out ]]; then
	if ! "$repo/bench/plot.sh" -o "$work/p.png" "$out" >"$work/plot.log" 2>&1; then
		case_error "plot.sh exited non-zero"
	elif [[ $(head -c 4 "$work/p.png" | od -An -tx1 | tr -d ' ') != 89504e47 ]]; then
		case_error "$work/p.png is not a PNG"
	fi
	"$repo/bench/plot.sh" --markdown "$out" >"$work/md" 2>>"$work/plot.log" ||
		case_error "plot.sh --markdown exited non-zero"
	grep -qE '^\| guest-rx/64/packed/mrg-on \| [0-9.]+ \| [0-9.]+-[0-9.]+ \| [0-2] of 2 \|' "$work/md" ||
		case_error "no markdown row for the paired TSV"
else
	case_error "no paired TSV to draw"
fi
case_end "$work/plot.log" "$work/md"

case_begin dirty-log
out=$work/dirty.tsv
if ! timeout 300 "$repo/bench/dirty-log.sh" "${common[@]}" --reps 1 \
	--rows '^guest-rx/64/split/mrg-on$' --out "$out" >"$work/dirty.log" 2>&1; then
	case_error "dirty-log.sh exited non-zero"
fi
[[ -f $out && $(ok_lines "$out") == 4 ]] || case_error "want 4 ok windows with traffic"
order=$([[ -f $out ]] && awk -F'\t' 'NR > 1 { printf "%s/%s ", $3, $4 }' "$out")
[[ $order == "vhu/off vhu/on dpdk/on dpdk/off " ]] || case_error "window order '$order'"
[[ -f $out ]] && awk -F'\t' 'NR > 1 && (($4 == "on") != ($9 > 0)) { bad = 1 } END { exit bad }' "$out" ||
	case_error "log bits: want some with logging on and none with it off"
[[ -f $out && $(column "$out" features | sort -u | wc -l) == 1 ]] ||
	case_error "the two set-ups' features differ or are missing"
grep -qE '^guest-rx/64/split/mrg-on +1 +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ ' "$work/dirty.log" ||
	case_error "no summary line"
case_end "$work/dirty.log"

case_begin dirty-log-ipp
out=$work/dirty-ipp.tsv
if ! timeout 300 "$repo/bench/dirty-log.sh" "${common[@]}" --ipp --reps 1 --idle 1 \
	--rows '^guest-tx/64/packed/mrg-on$' --out "$out" >"$work/dirty-ipp.log" 2>&1; then
	case_error "dirty-log.sh --ipp exited non-zero"
fi
# every back-end and logging state has an ok sample with Ir (a cycle
# runs the four in both orders)
lines=$([[ -f $out ]] && awk -F'\t' 'NR > 1 && $5 == "ok" && $11 > 0 { print $3 "/" $4 }' "$out" |
	sort -u | tr '\n' ' ')
[[ $lines == "dpdk/off dpdk/on vhu/off vhu/on " ]] || case_error "ok samples with Ir: '$lines'"
[[ -f $out ]] && awk -F'\t' 'NR > 1 && $4 == "on" && $16 == 0 { bad = 1 } END { exit bad }' "$out" ||
	case_error "a back-end set no log bit with logging on"
grep -qE '^guest-tx/64/packed/mrg-on +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ ' "$work/dirty-ipp.log" ||
	case_error "no summary line"
case_end "$work/dirty-ipp.log"

case_begin fails-loudly
# A build whose vhu-bench exits at once: no socket, so every sample fails.
fake=$work/fake-build
mkdir -p "$fake/examples"
printf 'CMAKE_HOME_DIRECTORY:INTERNAL=/nonexistent\nCMAKE_BUILD_TYPE:STRING=Release\n' >"$fake/CMakeCache.txt"
printf '#!/bin/sh\necho "fake vhu-bench: not serving"\nexit 3\n' >"$fake/examples/vhu-bench"
chmod +x "$fake/examples/vhu-bench"
out=$work/fail.tsv
timeout 300 "$repo/bench/paired.sh" --build "$fake" --seconds 1 --warmup 1 --reps 1 \
	--rows '^guest-tx/64/split/mrg-off$' --out "$out" >"$work/fail.log" 2>&1
rc=$?
[[ $rc == 1 ]] || case_error "exit status $rc, want 1"
grep -q '^FAIL: ' "$work/fail.log" || case_error "no FAIL line printed"
grep -q 'sample(s) FAILED' "$work/fail.log" || case_error "no failure count printed"
case_end "$work/fail.log"

case_begin blk
out=$work/blk.tsv
mkdir -p "$work/blk-tmp"
if ! TMPDIR=$work/blk-tmp timeout 300 "$repo/bench/blk.sh" --build "$build" --seconds 1 --warmup 1 \
	--reps 1 --rows '^rand-read/4k$' --out "$out" >"$work/blk.log" 2>&1; then
	case_error "blk.sh exited non-zero"
fi
n=$([[ -f $out ]] && awk -F'\t' 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
	$c["status"] == "ok" && $c["iops"] > 0 && $c["cpu_us_per_io"] > 0 { n++ } END { print n + 0 }' "$out")
[[ $n == 2 ]] || case_error "want 2 ok windows with I/O and CPU time, got ${n:-no TSV}"
order=$([[ -f $out ]] && column "$out" backend | tr '\n' ' ')
[[ $order == "vhu qsd " ]] || case_error "window order '$order', want 'vhu qsd '"
[[ -f $out && $(column "$out" disk | sort -u | wc -l) == 2 ]] || case_error "both windows on one disk"
[[ -s ${out%.tsv}.info && -s ${out%.tsv}-summary.tsv ]] || case_error "no .info or -summary.tsv"
grep -qE '^rand-read/4k +1 +[0-9]+ +[0-9]+ +[0-9.]+ ' "$work/blk.log" || case_error "no summary line"
left=$(pgrep -af -- "$work/blk-tmp/" || true)
[[ -z $left ]] || case_error "still running: $left"
[[ -z $(ls -A "$work/blk-tmp") ]] || case_error "left in TMPDIR: $(ls "$work/blk-tmp")"
case_end "$work/blk.log"

ls /var/run/dpdk 2>/dev/null | grep -q '^vhu-' && echo "note: DPDK runtime directories left in /var/run/dpdk"
summary
