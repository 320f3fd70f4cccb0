#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# inflight-cost.sh - what inflight tracking (INFLIGHT_SHMFD, docs/blk.md)
# adds to a request: instructions inside vhu_vq_pop() and vhu_vq_push(),
# callees included, per request, tracking off and on, split and packed.
#
# The driver is test/bench/ifl-cost.c: the test front-end and a vhu device
# in one process, virtio-blk-shaped requests (header, 4 KiB, status) in
# bursts of 32, pushed back out of order.  It runs under callgrind with
# collection only inside the two calls, so the figures are instruction
# counts: the same on a busy machine as on a quiet one (no time is
# measured, and no peer is needed for a count of vhu against itself).
#
#   bench/inflight-cost.sh [--build DIR] [--rounds N] [--out FILE.tsv]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build-bench
rounds=2000
out=$root/bench/results/inflight-cost.tsv
while (($#)); do
	case $1 in
	--build) build=${2:?}; shift ;;
	--rounds) rounds=${2:?}; shift ;;
	--out) out=${2:?}; shift ;;
	-h | --help) sed -n '3,15p' "$0"; exit 0 ;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
command -v valgrind >/dev/null || { echo "inflight-cost: valgrind is needed" >&2; exit 1; }
work=$(mktemp -d /tmp/vhu-ifl-cost.XXXXXX)
trap 'rm -rf "$work"' EXIT

if [[ ! -f $build/CMakeCache.txt ]]; then
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >"$work/cmake.log" 2>&1 ||
		{ cat "$work/cmake.log"; exit 1; }
fi
cmake --build "$build" -j"$(nproc)" --target ifl-cost >"$work/build.log" 2>&1 ||
	{ tail -30 "$work/build.log"; exit 1; }
type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build/CMakeCache.txt")
[[ $type == Release ]] || echo "inflight-cost: warning: $build is a '$type' build, not Release"

# ir_per_request RING on|off: Ir inside pop and push per request.
ir_per_request() {
	local cg=$work/cg.$1.$2 log=$work/run.$1.$2 ir reqs
	valgrind --tool=callgrind --collect-atstart=no --toggle-collect=vhu_vq_pop \
		--toggle-collect=vhu_vq_push --callgrind-out-file="$cg" \
		"$build/test/bench/ifl-cost" "$1" "$2" "$rounds" >"$log" 2>&1 ||
		{ echo "inflight-cost: ifl-cost $1 $2 failed:" >&2; tail -20 "$log" >&2; return 1; }
	reqs=$(sed -n 's/^ifl-cost: .* requests \([0-9]*\)$/\1/p' "$log")
	ir=$(awk '/^summary:/ { print $2 }' "$cg")
	[[ -n $reqs && -n $ir && $reqs -gt 0 ]] || { echo "inflight-cost: no count for $1 $2" >&2; return 1; }
	awk -v i="$ir" -v r="$reqs" 'BEGIN { printf "%.1f\n", i / r }'
}

mkdir -p "$(dirname "$out")"
printf 'ring\tir_per_req_off\tir_per_req_on\tadded\ton_over_off\n' >"$out"
printf '%-7s %12s %12s %8s %8s\n' ring "Ir/req off" "Ir/req on" added on/off
for ring in split packed; do
	off=$(ir_per_request "$ring" off)
	on=$(ir_per_request "$ring" on)
	read -r added ratio < <(awk -v a="$off" -v b="$on" 'BEGIN { printf "%.1f %.3f\n", b - a, b / a }')
	printf '%s\t%s\t%s\t%s\t%s\n' "$ring" "$off" "$on" "$added" "$ratio" >>"$out"
	printf '%-7s %12s %12s %8s %8s\n' "$ring" "$off" "$on" "$added" "$ratio"
done
echo "inflight-cost: $rounds rounds of 32 requests per set-up; TSV in $out"
