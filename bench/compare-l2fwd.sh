#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# compare-l2fwd.sh - a vhost-user port bridged to a veth through AF_XDP
# (copy mode, native XDP on the veth), two ways, behind the same guest:
#   A: vhu-l2fwd --xdp-mode native --hugepages off
#   B: dpdk-testpmd --vdev net_vhost0 --vdev net_af_xdp0 --forward-mode=io
#      (librte_vhost and DPDK's AF_XDP PMD; preferred busy polling off)
# both in namespace A on the veth end "va", all threads on --be-cpu, one
# polling thread.  The guest is testpmd's net_virtio_user on --fe-cpu.
# The veth's other end "vb" is in namespace B:
#   guest-to-wire  the front-end sends (txonly); vb only counts (the kernel
#                  drops the frames after counting them).  Result: vb's RX
#                  rate; the front-end's TX rate is recorded beside it.
#   wire-to-guest  a source, testpmd with net_af_xdp on vb (txonly, on
#                  --src-cpu) sends; result: the front-end's RX rate; the
#                  source's TX rate (offered load) is recorded beside it.
# Rows (--list): both directions, 64 and 1518-byte frames, split and packed
# rings (mergeable buffers on).  A/B alternation, medians and the TSV as in
# compare-dpdk.sh; the "limit" column says which side could not keep up:
# guest-to-wire "bridge" when the front-end's PMD found its ring full (5%
# of its attempts or more), else "front-end"; wire-to-guest "source" when
# the guest got 98% of what the source sent, else "front-end" when the
# bridge had no guest buffer for 5% of its frames (its own counters), else
# "bridge".
#
# Two CPUs are not enough for wire-to-guest: the source (and the kernel's
# RX work on va, done in its softirq) then shares the front-end's CPU and
# usually limits both back-ends alike.  Use --src-cpu on a larger machine.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

SRC_CPU=

usage() {
	cat <<EOF
usage: $0 [options]
$BENCH_COMMON_USAGE
  --src-cpu N     CPU of the wire-to-guest traffic source (default: 2 when
                  the machine has 3 CPUs or more, else the front-end's)
EOF
}

while (($#)); do
	case $1 in
	-h | --help) usage; exit 0 ;;
	--src-cpu) SRC_CPU=${2:?}; shift 2 ;;
	*) bench_opt "$@" || { usage >&2; exit 2; }; shift "$BENCH_SHIFT" ;;
	esac
done
if [[ -z $SRC_CPU ]]; then
	SRC_CPU=$FE_CPU
	(($(nproc --all) < 3)) || SRC_CPU=2
fi

l2_rows() {
	local dir size ring
	for dir in guest-to-wire wire-to-guest; do
		for size in 64 1518; do
			for ring in split packed; do
				echo "$dir/$size/$ring"
			done
		done
	done
}
mapfile -t all_rows < <(l2_rows)
rows_filter "${all_rows[@]}"
bench_setup compare-l2fwd
bench_need_build vhu-l2fwd
bench_info
command -v ethtool >/dev/null || apt_install ethtool || bench_die "ethtool not found"
if [[ $SRC_CPU == "$FE_CPU" || $SRC_CPU == "$BE_CPU" ]] && [[ ${BENCH_ROW_LIST[*]} == *wire-to-guest* ]]; then
	bench_warn "the wire-to-guest source shares CPU $SRC_CPU: those rows measure the CPU, not the back-ends"
fi

# --- the veth pair ---------------------------------------------------------------

ns_a=vhu-bench-$$-a
ns_b=vhu-bench-$$-b

# shellcheck disable=SC2317 # run by bench_cleanup
net_down() {
	ip netns del "$ns_a" 2>/dev/null
	ip netns del "$ns_b" 2>/dev/null
	return 0
}
BENCH_CLEANUP+=(net_down)

# net_up: namespaces A and B, veth va (A) - vb (B), MTU 1500, no IPv6 (no
# stray frames), no offloads, up.  A fresh pair for every sample: no XDP
# program or socket state carries over.
net_up() {
	net_down
	ip netns add "$ns_a" && ip netns add "$ns_b" &&
		ip link add "vb$$a" type veth peer name "vb$$b" &&
		ip link set "vb$$a" netns "$ns_a" && ip link set "vb$$b" netns "$ns_b" &&
		ip -n "$ns_a" link set "vb$$a" name va && ip -n "$ns_b" link set "vb$$b" name vb || return 1
	local ns dev
	for ns in "$ns_a" "$ns_b"; do
		dev=va
		[[ $ns == "$ns_b" ]] && dev=vb
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
		ip netns exec "$ns" ethtool -K "$dev" rx off tx off tso off gso off gro off >/dev/null 2>&1 || true
		ip -n "$ns" link set "$dev" up || return 1
	done
}

# vb_counters: "RX_PACKETS RX_BYTES NANOSECONDS" of vb, now.
vb_counters() {
	local c
	c=$(ip netns exec "$ns_b" sh -c 'cat /sys/class/net/vb/statistics/rx_packets \
		/sys/class/net/vb/statistics/rx_bytes; date +%s%N' | paste -sd' ') || return 1
	[[ $c =~ ^[0-9]+\ [0-9]+\ [0-9]+$ ]] && echo "$c"
}

# xdp_mode: how va's XDP program is attached (xdp = native, xdpgeneric = skb).
xdp_mode() {
	local m
	m=$(ip -n "$ns_a" -d link show va | grep -oE 'prog/xdp[a-z]*' || true)
	m=${m%%$'\n'*}
	echo "${m#prog/}"
}

# --- the two bridges -----------------------------------------------------------------

# br_start KIND SOCK: the bridge serving SOCK in namespace A; sets BE_PID.
br_start() {
	TP_NS=(ip netns exec "$ns_a")
	case $1 in
	vhu)
		bench_spawn be "$BE_CPU" "$BENCH_BUILD/examples/vhu-l2fwd" --socket "$2" \
			--iface va --xdp-mode native --hugepages off
		BE_PID=$BENCH_PID
		;;
	dpdk)
		tp_start be "$BE_CPU" --vdev "net_vhost0,iface=$2,queues=1" \
			--vdev "net_af_xdp0,iface=va,start_queue=0,queue_count=1,busy_budget=0" \
			-- --forward-mode=io --rxd=1024 --txd=1024
		BE_PID=${TP_PID[be]}
		tp_send be start
		;;
	esac
	TP_NS=()
	wait_for_socket "$2" 60 "$BE_PID"
}

# br_ready KIND: the guest is up; sets BE_FEATURES.
br_ready() {
	local re file=$BENCH_DIR/be.out
	if [[ $1 == vhu ]]; then
		re='guest ready: .* features (0x[0-9a-f]+)'
		wait_for "$file" "$re" 60 "$BE_PID" || return 1
	else
		re='negotiated Virtio features: (0x[0-9a-f]+)'
		tp_wait be 'virtio is now ready for processing' 60 || return 1
	fi
	BE_FEATURES=$(grep -oE "$re" "$file" | tail -n 1 | grep -oE '0x[0-9a-f]+$' || true)
}

# br_stop KIND: stop the bridge; sets GUEST_DROP_PCT from its own counters
# (whole run): of the frames it had for the guest, those the guest had no
# buffer for ("-" when it had none).
br_stop() {
	local s sent=0 dropped=0
	if [[ $1 == vhu ]]; then
		stop_pid "$BE_PID" TERM 20 || true
		s=$(grep '^final: ' "$BENCH_DIR/be.out" | tail -n 1 || true)
		[[ $s =~ nic-\>guest\ xsk_rx=[0-9]+\ pkts=([0-9]+).*no_buffers=([0-9]+) ]] &&
			sent=${BASH_REMATCH[1]} dropped=${BASH_REMATCH[2]}
	else
		# port 0 is the vhost port: its TX is toward the guest
		s=$(tp_fwd_stats be 30) && read -r _ _ sent dropped <<<"$s"
		tp_quit be
	fi
	GUEST_DROP_PCT=$(pct "$dropped" $((sent + dropped)))
}

# --- one sample ----------------------------------------------------------------------

# l2_guest KIND SOCK: the front-end on SOCK (and, wire-to-guest, the
# source on vb) until the bridge KIND says the guest is up.
l2_guest() {
	if [[ $R_DIR == guest-to-wire ]]; then
		fe_start "$2" txonly
	else
		fe_start "$2" rxonly
		TP_NS=(ip netns exec "$ns_b")
		tp_start src "$SRC_CPU" --vdev "net_af_xdp0,iface=vb,start_queue=0,queue_count=1,busy_budget=0" \
			-- --forward-mode=txonly --txpkts="$R_SIZE" --rxd=1024 --txd=1024
		TP_NS=()
		tp_wait src '^Port 0: ' 60 || return 1
	fi
	br_ready "$1"
}

# l2_window: traffic on, warm-up, the window.  Sets XDP, VB0 and VB1 (vb's
# counters), SRC1 (the source's port statistics, wire-to-guest) and M_*.
l2_window() {
	local ksoftirqd roles
	XDP=$(xdp_mode)
	# the bridge CPU's softirq thread: kernel work for the bridge (veth
	# delivery) lands there when softirqs pile up
	ksoftirqd=$(pgrep -x "ksoftirqd/$BE_CPU" || true)
	roles=("fe=${TP_PID[fe]}" "be=$BE_PID" ${ksoftirqd:+"ksoftirqd=$ksoftirqd"})
	tp_send fe start
	if [[ $R_DIR == wire-to-guest ]]; then
		tp_send src start
		roles+=("src=${TP_PID[src]}")
	fi
	measure_begin fe "${roles[@]}" && VB0=$(vb_counters) || return 1
	# (the source's rate interval starts here)
	[[ $R_DIR == guest-to-wire ]] || tp_port_stats src >/dev/null || return 1
	sleep "$BENCH_SECONDS"
	VB1=$(vb_counters) || return 1
	[[ $R_DIR == guest-to-wire ]] || SRC1=$(tp_port_stats src) || return 1
	measure_end fe "${roles[@]}"
}

# l2_result: from the window, PPS PKTS BYTES (the row's result), SIDE_PPS
# (the other end's rate), FE_DROP and LIMIT.
l2_result() {
	local a b
	if [[ $R_DIR == guest-to-wire ]]; then
		read -r -a a <<<"$VB0"
		read -r -a b <<<"$VB1"
		PKTS=$((b[0] - a[0])) BYTES=$((b[1] - a[1]))
		PPS=$((PKTS * 1000000000 / (b[2] - a[2])))
		SIDE_PPS=$M_TX_PPS # what the front-end handed over
		FE_DROP=$(pct "$M_TX_DROPPED" "$M_TX_TOTAL")
		# the front-end could send more than the bridge took: the bridge
		# (or the wire) is the limit; else the front-end is
		LIMIT=front-end
		((M_TX_DROPPED * 20 < M_TX_TOTAL)) || LIMIT=bridge
	else
		read -r -a a <<<"$SRC1"
		PKTS=$M_RX_PKTS BYTES=$M_RX_BYTES PPS=$M_RX_PPS
		SIDE_PPS=${a[5]} # what the source sent
		# delivered what was offered: the source is the limit; else the
		# guest (no buffers: the front-end is) or the bridge
		LIMIT=source
		if ((PPS * 100 < SIDE_PPS * 98)); then
			LIMIT=bridge
			[[ $GUEST_DROP_PCT == - ]] || ((GUEST_DROP_PCT < 5)) || LIMIT=front-end
		fi
	fi
}

# run_sample REP ROW KIND: one measurement, one TSV line.
run_sample() {
	local rep=$1 row=$2 be=$3 err=''
	row_parse "$row"
	sample_dir "r$rep-${row//\//-}-$be"
	local sock=$BENCH_DIR/vhost.sock
	measure_reset
	BE_FEATURES='' GUEST_DROP_PCT=- XDP=- PPS=0 PKTS=0 BYTES=0 SIDE_PPS=0 FE_DROP=- LIMIT=-
	if ! net_up; then
		err="cannot create the namespaces and the veth pair"
	elif ! br_start "$be" "$sock"; then
		err="the $be bridge did not create $sock"
	elif ! l2_guest "$be" "$sock"; then
		err="the front-end (or the source) never got the $be port ready"
	elif ! l2_window; then
		err="no statistics from the front-end, the source or vb"
	fi
	tp_quit src
	tp_quit fe
	br_stop "$be"

	if [[ -z $err ]]; then
		l2_result
		if ((PKTS <= 0 || PPS <= 0)); then
			err="no traffic ($PKTS frames, $PPS pps)"
		elif ((100 * (BYTES - PKTS * R_SIZE) / (PKTS * R_SIZE) != 0)); then
			err="frames of $((BYTES / PKTS)) bytes on average, want $R_SIZE"
		elif [[ $XDP != xdp ]]; then
			err="XDP attached as '$XDP', want native (xdp)"
		fi
	fi
	local status=ok
	if [[ -n $err ]]; then
		status=FAIL
		sample_fail "rep $rep $row $be: $err" "$BENCH_DIR/be.out" "$BENCH_DIR/fe.out" "$BENCH_DIR/src.out"
	fi
	[[ -z $M_CPU ]] || {
		cpu_check "$M_CPU" fe "$FE_CPU"
		cpu_check "$M_CPU" be "$BE_CPU"
	}
	tsv_add "$rep" "$row" "$be" "$status" "$PPS" "$PKTS" "$((PKTS ? (BYTES + PKTS / 2) / PKTS : 0))" \
		"$SIDE_PPS" "$LIMIT" "$FE_DROP" "$GUEST_DROP_PCT" "$(kv "$M_CPU" fe_top)" "$(kv "$M_CPU" be_top)" \
		"$(kv "$M_CPU" be_rest)" "$(kv "$M_CPU" src_top)" \
		"$(kv "$M_CPU" "cpu${FE_CPU}_other")" "$(kv "$M_CPU" "cpu${BE_CPU}_other")" \
		"$(kv "$M_CPU" ksoftirqd_top)" "$(kv "$M_CPU" "cpu${BE_CPU}_irq")" \
		"$(kv "$M_CPU" steal)" "$XDP" "${BE_FEATURES:--}"
	printf '%s rep %d %-22s %-4s %8.3f Mpps (other side %.3f) limit %s  [%s]\n' \
		"$(date +%T)" "$rep" "$row" "$be" "$(awk -v p="$PPS" 'BEGIN { print p / 1e6 }')" \
		"$(awk -v p="${SIDE_PPS:-0}" 'BEGIN { print p / 1e6 }')" "$LIMIT" "${M_CPU:-no cpu data}"
}

tsv_init rep row backend status pps pkts bytes_per_pkt other_side_pps limit fe_drop_pct guest_drop_pct \
	fe_top be_top be_rest src_top cpu_fe_other cpu_be_other ksoftirqd_be cpu_be_irq steal xdp features
bench_log "${#BENCH_ROW_LIST[@]} rows x $BENCH_REPS A/B pairs, ${BENCH_WARMUP}s warm-up +" \
	"${BENCH_SECONDS}s window; CPUs: front-end $FE_CPU, bridge $BE_CPU, source $SRC_CPU; $BENCH_OUT"
bench_run_ab run_sample

echo
echo "Medians (guest-to-wire: frames arriving at vb; wire-to-guest: frames the"
echo "front-end received):"
bench_report "$BENCH_OUT" 1e6 Mpps
bench_finish
