#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# qemu-handshake.sh BUILD_DIR - the vhost-user handshake against QEMU.
#
# For each case, vhu-probe (BUILD_DIR/test/interop/vhu-probe) serves a net
# device and QEMU boots the test guest (scripts/guest-image.sh) with a
# virtio-net-pci device on a vhost-user netdev attached to it.  Once the
# guest printed its marker and the probe saw the device READY, the probe is
# stopped (SIGTERM: it prints its final state) and QEMU with it, and the
# probe's trace and state are checked (see check_probe in common.sh).
#
# Cases: split, packed (packed=on), client (vhu-probe --client, QEMU serves
# the socket), memtable (CONFIGURE_MEM_SLOTS withheld, so QEMU sends
# SET_MEM_TABLE instead of ADD_MEM_REG), packed-off (packed=on, but the
# probe withholds RING_PACKED: split rings), no-protocol (every protocol
# feature withheld), mq (2 queue pairs, -smp 2:
# QEMU 7.2 sends the memory regions once per queue pair), mq-memtable;
# reconnect, client-reconnect (packed): the first guest powers off, the
# probe must see an orderly stop, and a second QEMU gets the device ready
# again on the same probe; backend-restart, packed-backend-restart: the
# probe is restarted under a running guest and QEMU (reconnect=1) sets the
# device up again on the new one.
# VHU_QEMU_CASES="split packed" picks some.  VHU_KEEP=1 keeps the work
# directory.  Installs qemu-system-x86 when it is missing (as root).
#
# Last line: "N passed, N failed"; exit status 0 only when all passed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
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
qemu=${QEMU:-qemu-system-x86_64}
cases=${VHU_QEMU_CASES:-split packed client memtable packed-off no-protocol mq mq-memtable reconnect client-reconnect backend-restart packed-backend-restart}
# Seconds for one guest to boot and the device to become ready (TCG).
boot_timeout=${VHU_BOOT_TIMEOUT:-90}

[[ -x $probe ]] || {
	echo "qemu-handshake: $probe not built" >&2
	echo "0 passed, 1 failed"
	exit 1
}
if ! command -v "$qemu" >/dev/null && [[ -z ${QEMU:-} ]]; then
	apt_install qemu-system-x86 || true
fi
command -v "$qemu" >/dev/null || {
	echo "qemu-handshake: $qemu not found (apt-get install qemu-system-x86)" >&2
	echo "0 passed, 1 failed"
	exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/vhu-qemu.XXXXXX")
on_exit() {
	kill_children
	if [[ ${VHU_KEEP:-0} == 1 ]]; then
		echo "qemu-handshake: kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "qemu-handshake: guest image"
if ! "$repo/scripts/guest-image.sh" >"$work/guest-image.out" 2>"$work/guest-image.err"; then
	cat "$work/guest-image.err" >&2
	echo "0 passed, 1 failed"
	exit 1
fi
kernel=$(sed -n 1p "$work/guest-image.out")
initrd=$(sed -n 2p "$work/guest-image.out")

# start_qemu DIR TAG GUEST_CMD: boot the guest in the background with the
# QEMU arguments in qemu_args; pid in $qemu_pid, console in
# DIR/console-TAG.log.
start_qemu() {
	local dir=$1 tag=$2 cmd=$3
	spawn "$dir/qemu-$tag.out" "$dir/qemu-$tag.err" \
		timeout -k 5 $((boot_timeout + 60)) "$qemu" "${qemu_args[@]}" \
		-serial "file:$dir/console-$tag.log" \
		-append "console=ttyS0 quiet ipv6.disable=1 panic=-1 vhu.cmd=$cmd"
	qemu_pid=$VHU_LAST_PID
}

# boot_pair DIR TAG GUEST_CMD CLIENT NTH: start QEMU (and, the first time,
# the probe) in the order the mode needs; wait for the guest's marker and
# for the probe's NTH READY.
boot_pair() {
	local dir=$1 tag=$2 cmd=$3 client=$4 nth=$5 rc
	if ((client)); then
		# QEMU serves the socket; the probe connects (and reconnects).
		start_qemu "$dir" "$tag" "$cmd"
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
			((rc == 0)) || case_error "probe not listening (wait rc $rc)"
		fi
		start_qemu "$dir" "$tag" "$cmd"
	fi
	rc=0
	wait_for "$dir/console-$tag.log" '^VHU-GUEST: (eth0 up|FAIL)' "$boot_timeout" "$qemu_pid" || rc=$?
	if ((rc != 0)); then
		case_error "$tag: guest marker not seen (wait rc $rc: 1 timeout, 2 QEMU exited)"
	elif grep -q '^VHU-GUEST: FAIL' "$dir/console-$tag.log"; then
		case_error "$tag: guest: $(grep -m1 '^VHU-GUEST: FAIL' "$dir/console-$tag.log" | tr -d '\r')"
	fi
	rc=0
	wait_for_count "$dir/probe.out" READY "$nth" 15 "$probe_pid" || rc=$?
	((rc == 0)) || case_error "$tag: probe saw no READY #$nth (wait rc $rc)"
	echo "  guest $tag: $(grep -a -m1 '^VHU-GUEST: eth0 up' "$dir/console-$tag.log" | tr -d '\r' || echo 'no marker')"
}

# run_case NAME NQUEUES PACKED(0|1) CLIENT(0|1) RECONNECT(0|1|2) [VHU_PROBE_ARGS...]
#
# RECONNECT 1: the first guest powers itself off; the probe must see an
# orderly stop (GET_VRING_BASE, queues STOPPED, STOPPED, DISCONNECTED); then
# a second QEMU boots on the same probe and must get the device ready.
# RECONNECT 2: the back-end restarts under a running guest: the first probe
# is stopped once the device is ready, QEMU (chardev reconnect=1) connects
# to a second probe on the same socket, which must get the device ready.
run_case() {
	local name=$1 nq=$2 packed=$3 client=$4 reconnect=$5
	shift 5
	local dir=$work/$name sock smp=1 netdev device chardev rc n console
	local -a logs
	probe_pid=

	case_begin "qemu $name"
	mkdir -p "$dir"
	sock=$dir/vhost.sock

	probe_args=(--socket "$sock" --queues "$nq" --timeout $((2 * boot_timeout + 30)) "$@")
	chardev="socket,id=c0,path=$sock"
	netdev="vhost-user,id=n0,chardev=c0"
	# vectors=0: QEMU 7.2 under TCG crashes starting vhost with MSI-X;
	# romfile=: no iPXE, a faster boot.
	device="virtio-net-pci,netdev=n0,vectors=0,romfile="
	if ((nq > 2)); then
		smp=2
		netdev+=",queues=$((nq / 2))"
		device+=",mq=on"
	fi
	((packed)) && device+=",packed=on"
	device+=${device_extra:-}
	((client)) && chardev+=",server=on,wait=off"
	((reconnect == 2)) && chardev+=",reconnect=1"
	qemu_args=(-accel tcg -m 512 -smp "$smp"
		-object "memory-backend-memfd,id=mem,size=512M,share=on"
		-machine "pc,memory-backend=mem"
		-display none -nodefaults -no-reboot -monitor none
		-kernel "$kernel" -initrd "$initrd"
		-chardev "$chardev" -netdev "$netdev" -device "$device")
	echo "  qemu ... -chardev $chardev -netdev $netdev -device $device"
	logs=("$dir/probe.out" "$dir/probe.err" "$dir/qemu-1.err" "$dir/console-1.log")
	console=$dir/console-1.log

	if ((reconnect == 2)); then
		boot_pair "$dir" 1 "sleep 600" "$client" 1
		sleep 1
		rc=0
		stop_pid "$probe_pid" TERM 5 || rc=$?
		((rc == 0)) || case_error "first vhu-probe exited with status $rc"
		mv "$dir/probe.out" "$dir/probe-1.out"
		mv "$dir/probe.err" "$dir/probe-1.err"
		logs+=("$dir/probe-1.out" "$dir/probe-1.err")
		check_probe_tagged "first probe" "$dir/probe-1.out" "$nq" "$packed" 256
		echo "  first probe: $(grep -E '^STATE ' "$dir/probe-1.out" || echo 'no state')"
		# QEMU retries every second; the guest keeps running.
		spawn "$dir/probe.out" "$dir/probe.err" "${probe_cmd[@]}" "${probe_args[@]}"
		probe_pid=$VHU_LAST_PID
		rc=0
		wait_for "$dir/probe.out" '^READY$' 30 "$probe_pid" "$qemu_pid" || rc=$?
		((rc == 0)) || case_error "second probe saw no READY (wait rc $rc)"
	elif ((reconnect)); then
		boot_pair "$dir" 1 "sleep 2" "$client" 1
		# The guest powers off; QEMU stops the rings and exits.
		rc=0
		wait_for "$dir/probe.out" '^DISCONNECTED$' 30 "$probe_pid" || rc=$?
		((rc == 0)) || case_error "probe saw no DISCONNECTED after the guest powered off (rc $rc)"
		stop_pid "$qemu_pid" TERM 10 || true
		upto_first "$dir/probe.out" '^DISCONNECTED$' "$dir/first.out"
		check_stop "$dir/first.out" "$nq"
		boot_pair "$dir" 2 "sleep 600" "$client" 2
		logs+=("$dir/qemu-2.err" "$dir/console-2.log")
		console=$dir/console-2.log
		n=$(count_lines "$dir/probe.out" CONNECTED)
		((n == 2)) || case_error "probe saw $n connections, want 2"
	else
		boot_pair "$dir" 1 "sleep 600" "$client" 1
	fi
	# Let the rest of the start-up (enables, status) arrive.
	sleep 1

	rc=0
	stop_pid "$probe_pid" TERM 5 || rc=$?
	((rc == 0)) || case_error "vhu-probe exited with status $rc"
	stop_pid "$qemu_pid" TERM 5 || true

	check_probe "$dir/probe.out" "$nq" "$packed" 256
	check_guest_features "$console" "$dir/probe.out"
	echo "  probe: $(grep -E '^STATE ' "$dir/probe.out" || echo 'no state')"
	case_end "${logs[@]}"
}

for c in $cases; do
	case $c in
	split) run_case split 2 0 0 0 ;;
	packed) run_case packed 2 1 0 0 ;;
	client) run_case client 2 0 1 0 ;;
	memtable) run_case memtable 2 0 0 0 --protocol-off 0x8000 ;;
	mq) run_case mq 4 0 0 0 ;;
	mq-memtable) run_case mq-memtable 4 0 0 0 --protocol-off 0x8000 ;;
	reconnect) run_case reconnect 2 0 0 1 ;;
	client-reconnect) run_case client-reconnect 2 1 1 1 ;;
	packed-off)
		# The driver asks for packed rings; the back-end withholds them.
		device_extra=",packed=on" run_case packed-off 2 0 0 0 --features-off 0x400000000
		;;
	no-protocol) run_case no-protocol 2 0 0 0 --protocol-off 0xffffffffffffffff ;;
	backend-restart) run_case backend-restart 2 0 0 2 ;;
	packed-backend-restart) run_case packed-backend-restart 2 1 0 2 ;;
	*)
		case_begin "qemu $c"
		case_error "unknown case"
		case_end
		;;
	esac
done

summary
