#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# dpdk-handshake.sh BUILD_DIR - the vhost-user handshake against DPDK's
# virtio-user front-end (dpdk-testpmd, DPDK 22.11).
#
# For each case, vhu-probe (BUILD_DIR/test/interop/vhu-probe) serves a net
# device and dpdk-testpmd runs a net_virtio_user port on the same socket,
# without hugepages or PCI.  Once the probe saw the device READY and
# testpmd configured its port, the probe is stopped (SIGTERM: it prints its
# final state), then testpmd (SIGINT), and the probe's trace and state are
# checked (see check_probe in common.sh).
#
# Cases: split, packed (packed_vq=1), packed-off (packed_vq=1, but the
# probe withholds RING_PACKED: split rings), no-protocol (every protocol
# feature withheld), mq (queues=2, 4 virtqueues), server
# (server=1: testpmd serves the socket, vhu-probe --client), packed-server;
# reconnect, server-reconnect, mq-reconnect (packed): testpmd is stopped
# first, the probe must see an orderly stop (GET_VRING_BASE, queues
# STOPPED, STOPPED, DISCONNECTED), then a second testpmd connects to the
# same probe (in client mode the probe reconnects by itself) and must get
# the device ready again; backend-restart, mq-backend-restart (packed):
# testpmd serves (server=1) and keeps running while the probe is replaced
# by a second one, which must get the device ready again.
# VHU_DPDK_CASES="split mq" picks some.  VHU_KEEP=1 keeps the work directory.
# Every EAL instance uses --file-prefix vhu-<pid>-<n>; its files under
# /var/run/dpdk (and /dev/hugepages, if any) are removed afterwards.
#
# Last line: "N passed, N failed"; exit status 0 only when all passed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/interop/common.sh
. "$here/common.sh"

[[ $# == 1 ]] || {
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
}
build=$(cd "$1" && pwd)
probe=$build/test/interop/vhu-probe
# VHU_PROBE_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full"
# runs the probe under a tool; a non-zero exit fails the case.
read -ra probe_cmd <<<"${VHU_PROBE_WRAPPER:-}"
probe_cmd+=("$probe")
testpmd=${TESTPMD:-dpdk-testpmd}
cases=${VHU_DPDK_CASES:-split packed packed-off no-protocol mq server packed-server reconnect server-reconnect mq-reconnect backend-restart mq-backend-restart}
ready_timeout=${VHU_DPDK_TIMEOUT:-30}

[[ -x $probe ]] || {
	echo "dpdk-handshake: $probe not built" >&2
	echo "0 passed, 1 failed"
	exit 1
}
if ! command -v "$testpmd" >/dev/null; then
	# Debian ships dpdk-testpmd in dpdk-dev, not in dpdk.
	[[ -n ${TESTPMD:-} ]] || apt_install dpdk-dev || true
	command -v "$testpmd" >/dev/null || {
		echo "dpdk-handshake: $testpmd not found (apt-get install dpdk-dev)" >&2
		echo "0 passed, 1 failed"
		exit 1
	}
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/vhu-dpdk.XXXXXX")
prefixes=()
eal_cleanup() {
	local p
	for p in "${prefixes[@]}"; do
		rm -rf "/var/run/dpdk/$p" "${XDG_RUNTIME_DIR:-/nonexistent}/dpdk/$p"
		rm -f /dev/hugepages/"$p"map_* 2>/dev/null || true
	done
	rmdir /var/run/dpdk 2>/dev/null || true
}
on_exit() {
	kill_children
	eal_cleanup
	if [[ ${VHU_KEEP:-0} == 1 ]]; then
		echo "dpdk-handshake: kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ncase=0
neal=0

# start_testpmd DIR TAG DEVARGS NQUEUES: run testpmd in the background with
# its own EAL file prefix; pid in $tp_pid, output in DIR/testpmd-TAG.*.
start_testpmd() {
	local dir=$1 tag=$2 devargs=$3 nq=$4 prefix
	neal=$((neal + 1))
	prefix=vhu-$$-$neal
	prefixes+=("$prefix")
	echo "  testpmd --file-prefix $prefix --vdev $devargs"
	spawn "$dir/testpmd-$tag.out" "$dir/testpmd-$tag.err" \
		timeout -k 5 $((ready_timeout + 60)) "$testpmd" \
		-l 0-1 --no-pci --no-huge -m 512 --file-prefix "$prefix" \
		--log-level=lib.eal:notice --log-level=pmd.net.virtio.init:debug \
		--vdev "$devargs" \
		-- --total-num-mbufs=16384 --nb-cores=1 --stats-period 60 \
		--rxq=$((nq / 2)) --txq=$((nq / 2))
	tp_pid=$VHU_LAST_PID
}

# connect_pair DIR TAG DEVARGS NQUEUES SERVER: start testpmd (and, the
# first time, the probe) in the order the mode needs, then wait until the
# probe saw READY (the NTH time) and testpmd configured its port.
connect_pair() {
	local dir=$1 tag=$2 devargs=$3 nq=$4 server=$5 nth=$6 rc
	if ((server)); then
		# testpmd listens, and blocks in its init until a back-end comes.
		start_testpmd "$dir" "$tag" "$devargs" "$nq"
		rc=0
		wait_for_socket "$dir/vhost.sock" 20 "$tp_pid" || rc=$?
		((rc == 0)) || case_error "$tag: testpmd did not create its socket (rc $rc)"
		if [[ -z $probe_pid ]]; then
			spawn "$dir/probe.out" "$dir/probe.err" "${probe_cmd[@]}" "${probe_args[@]}" --client
			probe_pid=$VHU_LAST_PID
		fi
	else
		if [[ -z $probe_pid ]]; then
			spawn "$dir/probe.out" "$dir/probe.err" "${probe_cmd[@]}" "${probe_args[@]}"
			probe_pid=$VHU_LAST_PID
			rc=0
			wait_for "$dir/probe.out" '^LISTENING ' 10 "$probe_pid" || rc=$?
			((rc == 0)) || case_error "probe not listening (rc $rc)"
		fi
		start_testpmd "$dir" "$tag" "$devargs" "$nq"
	fi
	rc=0
	wait_for_count "$dir/probe.out" READY "$nth" "$ready_timeout" "$probe_pid" "$tp_pid" || rc=$?
	((rc == 0)) || case_error "$tag: probe saw no READY #$nth (wait rc $rc: 1 timeout, 2 a process exited)"
	rc=0
	wait_for "$dir/testpmd-$tag.out" '^Port 0: ' "$ready_timeout" "$tp_pid" || rc=$?
	((rc == 0)) || case_error "$tag: testpmd did not configure port 0 (wait rc $rc)"
	# Let testpmd start forwarding (it enables the queues then).
	sleep 1
}

# check_dpdk_features TESTPMD_OUT PROBE_OUT: (TESTPMD_OUT names the .out
# file; the .err beside it is read too) the features the virtio PMD
# says it negotiated agree with what the back-end was told (SET_FEATURES),
# on the bits the back-end decides: MRG_RXBUF (15), INDIRECT_DESC (28),
# EVENT_IDX (29) and the transport bits 32-63.  (virtio-user emulates
# others itself, e.g. STATUS (16), and hides PROTOCOL_FEATURES (30).)
check_dpdk_features() {
	local tp_out=$1 probe_out=$2 pmd be mask=$VHU_BACKEND_BITS
	pmd=$(sed -n 's/.*features after negotiate = \([0-9a-fA-F]*\).*/\1/p' \
		"$tp_out" "${tp_out%.out}.err" | tail -n 1)
	be=$(probe_field "$probe_out" STATE features)
	if [[ -z $pmd ]]; then
		case_error "testpmd did not log its negotiated features"
	elif [[ -z $be ]]; then
		case_error "no negotiated features in the probe's state"
	elif (((0x$pmd & mask) != (be & mask))); then
		case_error "virtio PMD negotiated 0x$pmd, back-end was told $be (mask $(printf 0x%x "$mask"))"
	else
		echo "  testpmd negotiated 0x$pmd (back-end: $be)"
	fi
}

# run_case NAME NQUEUES PACKED(0|1) SERVER(0|1) RECONNECT(0|1|2) [VHU_PROBE_ARGS...]
#
# $devargs_extra is appended to the vdev arguments.
# RECONNECT 1: testpmd is stopped first (the probe must see an orderly stop
# and the disconnect), then a second testpmd connects to the same probe.
# RECONNECT 2 (with SERVER): the back-end restarts: the first probe is
# stopped, testpmd keeps running, and a second probe connects to it and
# must get the device ready again.
run_case() {
	local name=$1 nq=$2 packed=$3 server=$4 reconnect=$5
	shift 5
	local dir=$work/$name devargs rc n
	local -a logs
	probe_pid=

	case_begin "dpdk $name"
	ncase=$((ncase + 1))
	mkdir -p "$dir"
	probe_args=(--socket "$dir/vhost.sock" --queues "$nq" --timeout $((2 * ready_timeout + 30)) "$@")
	devargs="net_virtio_user0,path=$dir/vhost.sock,queue_size=256"
	((nq > 2)) && devargs+=",queues=$((nq / 2))"
	((packed)) && devargs+=",packed_vq=1"
	((server)) && devargs+=",server=1"
	devargs+=${devargs_extra:-}

	connect_pair "$dir" 1 "$devargs" "$nq" "$server" 1
	logs=("$dir/probe.out" "$dir/probe.err" "$dir/testpmd-1.err" "$dir/testpmd-1.out")
	if ((reconnect == 2)); then
		sleep 1
		rc=0
		stop_pid "$probe_pid" TERM 5 || rc=$?
		((rc == 0)) || case_error "first vhu-probe exited with status $rc"
		mv "$dir/probe.out" "$dir/probe-1.out"
		mv "$dir/probe.err" "$dir/probe-1.err"
		logs+=("$dir/probe-1.out" "$dir/probe-1.err")
		check_probe_tagged "first probe" "$dir/probe-1.out" "$nq" "$packed" 256
		echo "  first probe: $(grep -E '^STATE ' "$dir/probe-1.out" || echo 'no state')"
		spawn "$dir/probe.out" "$dir/probe.err" "${probe_cmd[@]}" "${probe_args[@]}" --client
		probe_pid=$VHU_LAST_PID
		rc=0
		wait_for "$dir/probe.out" '^READY$' "$ready_timeout" "$probe_pid" "$tp_pid" || rc=$?
		((rc == 0)) || case_error "second probe saw no READY (wait rc $rc)"
		sleep 1
		# DPDK 22.11 first stops its old device on the new connection
		# (SET_VRING_ENABLE 0 before any negotiation, GET_VRING_BASE):
		# refusing those is fine; it sends no SET_OWNER at all.
		VHU_REFUSED_OK_BEFORE='^REQ GET_FEATURES '
	elif ((reconnect)); then
		stop_pid "$tp_pid" INT 10 || true
		rc=0
		wait_for "$dir/probe.out" '^DISCONNECTED$' 10 "$probe_pid" || rc=$?
		((rc == 0)) || case_error "probe saw no DISCONNECTED after testpmd exited (rc $rc)"
		upto_first "$dir/probe.out" '^DISCONNECTED$' "$dir/first.out"
		check_stop "$dir/first.out" "$nq"
		eal_cleanup
		connect_pair "$dir" 2 "$devargs" "$nq" "$server" 2
		logs+=("$dir/testpmd-2.err" "$dir/testpmd-2.out")
		n=$(count_lines "$dir/probe.out" CONNECTED)
		((n == 2)) || case_error "probe saw $n connections, want 2"
	fi

	rc=0
	stop_pid "$probe_pid" TERM 5 || rc=$?
	((rc == 0)) || case_error "vhu-probe exited with status $rc"
	stop_pid "$tp_pid" INT 10 || true

	check_probe "$dir/probe.out" "$nq" "$packed" 256
	VHU_REFUSED_OK_BEFORE=
	check_dpdk_features "$dir/testpmd-$((reconnect == 1 ? 2 : 1)).out" "$dir/probe.out"
	echo "  probe: $(grep -E '^STATE ' "$dir/probe.out" || echo 'no state')"
	case_end "${logs[@]}"
	eal_cleanup
}



for c in $cases; do
	case $c in
	split) run_case split 2 0 0 0 ;;
	packed) run_case packed 2 1 0 0 ;;
	mq) run_case mq 4 0 0 0 ;;
	server) run_case server 2 0 1 0 ;;
	packed-server) run_case packed-server 2 1 1 0 ;;
	reconnect) run_case reconnect 2 0 0 1 ;;
	server-reconnect) run_case server-reconnect 2 0 1 1 ;;
	mq-reconnect) run_case mq-reconnect 4 1 0 1 ;;
	packed-off)
		# The PMD asks for packed rings; the back-end withholds them.
		devargs_extra=",packed_vq=1" run_case packed-off 2 0 0 0 --features-off 0x400000000
		;;
	no-protocol) run_case no-protocol 2 0 0 0 --protocol-off 0xffffffffffffffff ;;
	backend-restart) run_case backend-restart 2 0 1 2 ;;
	mq-backend-restart) run_case mq-backend-restart 4 1 1 2 ;;
	*)
		case_begin "dpdk $c"
		case_error "unknown case"
		case_end
		;;
	esac
done

summary
