#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# ipp.sh - instructions per packet of the back-end's data path, vhu against
# librte_vhost, on the rows of compare-dpdk.sh (default: the 64-byte rows
# with mergeable buffers, --list shows them).
#
# perf's hardware counters are not available in VMs like the one this was
# written on, so the back-end runs under valgrind's callgrind, counting
# only inside its data-path call (--toggle-collect, callees included):
#   vhu   vhu_net_dequeue (guest-tx) / vhu_net_enqueue (guest-rx)
#   DPDK  rte_vhost_dequeue_burst     / rte_vhost_enqueue_burst
# The front-end (testpmd virtio_user, native speed) keeps the slowed
# back-end's ring full, so nearly every call carries a full burst.  For
# each sample:
#   1. warm-up, then callgrind's counters zeroed (vgdb) and the front-end's
#      port counters read; --seconds later a dump and the counters again:
#      instructions (Ir) / frames the front-end sent (guest-tx) or received
#      (guest-rx) = Ir/packet;
#   2. the front-end stops forwarding, and a second window measures what one
#      call that moves nothing costs (empty ring, or no guest buffers).
# On a busy machine the front-end is sometimes descheduled and the back-end
# polls an empty ring: "net" subtracts those calls (all calls beyond
# packets/32, at the idle cost), "raw" does not; with full bursts
# (pkts/call = 32) the two agree.  Ir counts instructions, not cycles:
# DPDK's dequeue includes allocating its mbufs, neither side includes the
# application's work around the call.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

BENCH_REPS=1
BENCH_SECONDS=10
BENCH_WARMUP=3
BENCH_ROWS='/64/.*/mrg-on$'
IDLE_SECONDS=3

usage() {
	cat <<EOF
usage: $0 [options]     (defaults here: --reps $BENCH_REPS --seconds $BENCH_SECONDS --warmup $BENCH_WARMUP --rows '$BENCH_ROWS')
$BENCH_COMMON_USAGE
  --idle N        seconds of the idle window (default $IDLE_SECONDS)
EOF
}

while (($#)); do
	case $1 in
	-h | --help) usage; exit 0 ;;
	--idle) IDLE_SECONDS=${2:?}; shift 2 ;;
	*) bench_opt "$@" || { usage >&2; exit 2; }; shift "$BENCH_SHIFT" ;;
	esac
done
mapfile -t all_rows < <(dp_rows)
rows_filter "${all_rows[@]}"
bench_setup ipp
command -v vgdb >/dev/null || apt_install valgrind || bench_die "valgrind not found"
bench_need_build vhu-bench
bench_info

# cg_windows: with traffic flowing, the two windows (dumps callgrind.out.1
# and .2); sets PKTS, the frames the front-end moved in the first.
cg_windows() {
	local b e
	sleep "$BENCH_WARMUP"
	# the same order at both ends: callgrind first, then the counters
	cg_cmd "$BE_PID" zero && b=$(tp_port_stats fe) && sleep "$BENCH_SECONDS" &&
		cg_cmd "$BE_PID" dump && e=$(tp_port_stats fe) || return 1
	local -a B E
	read -r -a B <<<"$b"
	read -r -a E <<<"$e"
	if [[ $R_DIR == guest-tx ]]; then
		PKTS=$((E[2] - B[2]))
	else
		PKTS=$((E[0] - B[0]))
	fi
	tp_send fe stop
	sleep 1
	cg_cmd "$BE_PID" zero && sleep "$IDLE_SECONDS" && cg_cmd "$BE_PID" dump
}

# run_sample REP ROW KIND: one back-end under callgrind, one TSV line.
run_sample() {
	local rep=$1 row=$2 be=$3 fn err='' traffic idle
	row_parse "$row"
	sample_dir "r$rep-${row//\//-}-$be"
	fn=$(datapath_fn "$be" "$R_DIR")
	local cg=$BENCH_DIR/callgrind.out
	BE_TOOL=(valgrind --tool=callgrind --callgrind-out-file="$cg" --collect-atstart=no --compress-strings=no
		--toggle-collect="$fn" --vgdb=yes)
	PKTS=0
	if ! dp_start "$be" "$BENCH_DIR/vhost.sock"; then
		err="$DP_ERR (under valgrind)"
	elif ! cg_windows; then
		err="vgdb or the front-end's statistics failed (see vgdb.log)"
	fi
	local pkts=$PKTS
	tp_quit fe
	be_stop "$be"
	BE_TOOL=()

	local ir=0 calls=0 iir=0 icalls=0
	if [[ -z $err ]]; then
		if ! traffic=$(cg_read "$cg.1" "$fn") || ! idle=$(cg_read "$cg.2" "$fn"); then
			err="no callgrind dumps ($cg.1, $cg.2)"
		else
			read -r ir calls <<<"$traffic"
			read -r iir icalls <<<"$idle"
			((pkts > 0 && ir > 0 && calls > 0)) ||
				err="nothing measured: $pkts packets, $ir Ir, $calls calls of $fn"
		fi
	fi
	local status=ok raw=- net=- per_call=- empty=-
	if [[ -n $err ]]; then
		status=FAIL
		sample_fail "rep $rep $row $be: $err" "$BENCH_DIR/be.out" "$BENCH_DIR/fe.out" "$BENCH_DIR/vgdb.log"
	else
		read -r raw net per_call empty < <(cg_per_pkt "$ir" "$calls" "$pkts" "$iir" "$icalls")
		awk -v b="$per_call" 'BEGIN { exit !(b < 28) }' &&
			bench_warn "$row $be: $per_call packets per call: the back-end often found nothing (see net)"
	fi
	tsv_add "$rep" "$row" "$be" "$status" "$fn" "$pkts" "$calls" "$ir" "$raw" "$net" \
		"$per_call" "$icalls" "$iir" "$empty"
	printf '%s rep %d %-26s %-4s %-24s %7s Ir/pkt raw %7s net, %s pkts/call, %s Ir/empty call\n' \
		"$(date +%T)" "$rep" "$row" "$be" "$fn" "$raw" "$net" "$per_call" "$empty"
}

tsv_init rep row backend status function pkts calls ir ir_per_pkt ir_per_pkt_net \
	pkts_per_call idle_calls idle_ir ir_per_empty_call
bench_log "${#BENCH_ROW_LIST[@]} rows x $BENCH_REPS A/B pairs under callgrind; $BENCH_OUT"
bench_run_ab run_sample

echo
echo "Instructions per packet in the data-path call (medians; lower is better):"
echo "net (empty polls of a descheduled front-end taken out):"
bench_report "$BENCH_OUT" 1 Ir/pkt ir_per_pkt_net
echo "raw:"
bench_report "$BENCH_OUT" 1 Ir/pkt ir_per_pkt
echo "one call that moves nothing (empty ring / no guest buffers):"
bench_report "$BENCH_OUT" 1 Ir/call ir_per_empty_call
bench_finish
