#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# demo-handshake.sh - show vhu doing a vhost-user handshake with QEMU.
#
#  1. installs what is missing (apt-get; only packages that are missing),
#  2. configures and builds the project into build/ (or $VHU_BUILD_DIR),
#  3. builds (or reuses) the test guest (scripts/guest-image.sh),
#  4. runs vhu-probe, a back-end built on libvhu, and QEMU booting the guest
#     with a virtio-net device on a vhost-user netdev attached to it,
#  5. shows what the back-end saw (requests, queue events, final state) and
#     the guest's console marker.
#
# Bounded: the QEMU part gives up after 90 s.  Cleans up its processes and
# temporary files on every exit path.  Exit status 0 when the device came up.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${VHU_BUILD_DIR:-$repo/build}
# shellcheck source=test/interop/common.sh
. "$repo/test/interop/common.sh"

bold() {
	if [[ -t 1 ]]; then
		printf '\n\033[1m== %s\033[0m\n' "$*"
	else
		printf '\n== %s\n' "$*"
	fi
}
die() {
	echo "demo: $*" >&2
	exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/vhu-demo.XXXXXX")
# shellcheck disable=SC2317 # run by the EXIT trap
on_exit() {
	kill_children
	rm -rf "$work"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 1. packages -------------------------------------------------------------

missing=()
have_pkg() {
	dpkg-query -W -f '${Status}' "$1" 2>/dev/null | grep -q 'ok installed'
}
for p in cmake gcc make pkg-config check libev-dev qemu-system-x86 busybox-static cpio kmod; do
	have_pkg "$p" || missing+=("$p")
done
bold "packages"
if ((${#missing[@]})); then
	[[ $(id -u) == 0 ]] || die "missing packages (${missing[*]}); run as root or install them"
	echo "installing: ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
	echo "all present"
fi

# --- 2. build -----------------------------------------------------------------

bold "build ($build)"
t0=$SECONDS
if ! cmake -S "$repo" -B "$build" >"$work/build.log" 2>&1; then
	cat "$work/build.log" >&2
	die "cmake configure failed"
fi
if ! cmake --build "$build" -j "$(nproc)" >>"$work/build.log" 2>&1; then
	tail -n 40 "$work/build.log" >&2
	die "build failed"
fi
probe=$build/test/interop/vhu-probe
[[ -x $probe ]] || die "no $probe after the build"
echo "built in $((SECONDS - t0)) s: $probe"

# --- 3. guest -----------------------------------------------------------------

bold "guest image"
t0=$SECONDS
images=$("$repo/scripts/guest-image.sh") || die "guest image failed"
kernel=$(sed -n 1p <<<"$images")
initrd=$(sed -n 2p <<<"$images")
echo "kernel $kernel"
echo "initrd $initrd ($((SECONDS - t0)) s)"

# --- 4. run -----------------------------------------------------------------

sock=$work/vhost.sock
bold "vhu-probe --socket $sock   +   QEMU (TCG) booting the guest"
spawn "$work/probe.out" "$work/probe.err" "$probe" --socket "$sock" --queues 2 --timeout 100
probe_pid=$VHU_LAST_PID
wait_for "$work/probe.out" '^LISTENING ' 10 "$probe_pid" || {
	cat "$work/probe.err" >&2
	die "vhu-probe did not start"
}
t0=$SECONDS
spawn "$work/qemu.out" "$work/qemu.err" timeout -k 5 110 qemu-system-x86_64 \
	-accel tcg -m 512 -smp 1 \
	-object "memory-backend-memfd,id=mem,size=512M,share=on" \
	-machine "pc,memory-backend=mem" \
	-display none -nodefaults -no-reboot -monitor none \
	-serial "file:$work/console.log" \
	-kernel "$kernel" -initrd "$initrd" \
	-append "console=ttyS0 quiet ipv6.disable=1 panic=-1 vhu.cmd=sleep 600" \
	-chardev "socket,id=c0,path=$sock" \
	-netdev "vhost-user,id=n0,chardev=c0" \
	-device "virtio-net-pci,netdev=n0,vectors=0,romfile="
qemu_pid=$VHU_LAST_PID
echo "waiting for the guest (up to 90 s) ..."
VHU_CASE_ERRORS=()
wait_for "$work/console.log" '^VHU-GUEST: eth0 up' 90 "$qemu_pid" ||
	case_error "the guest did not bring eth0 up (see the console below)"
wait_for "$work/probe.out" '^READY$' 10 "$probe_pid" ||
	case_error "the device never became ready"
sleep 1
boot=$((SECONDS - t0))
stop_pid "$probe_pid" TERM 5 || case_error "vhu-probe failed"
stop_pid "$qemu_pid" TERM 5 || true

# --- 5. show -----------------------------------------------------------------

# names BITS_HEX NAME_TABLE: the set bits of BITS_HEX by name.
names() {
	local v=$(($1)) table=$2 bit name list=()
	for ((bit = 0; bit < 64; bit++)); do
		(((v >> bit) & 1)) || continue
		name=$(awk -v b="$bit" '$1 == b { print $2 }' <<<"$table")
		list+=("${name:-bit$bit}")
	done
	echo "${list[*]}"
}
feature_names="0 CSUM
1 GUEST_CSUM
2 CTRL_GUEST_OFFLOADS
3 MTU
5 MAC
7 GUEST_TSO4
8 GUEST_TSO6
9 GUEST_ECN
10 GUEST_UFO
11 HOST_TSO4
12 HOST_TSO6
13 HOST_ECN
14 HOST_UFO
15 MRG_RXBUF
16 STATUS
17 CTRL_VQ
18 CTRL_RX
19 CTRL_VLAN
20 CTRL_RX_EXTRA
21 GUEST_ANNOUNCE
22 MQ
23 CTRL_MAC_ADDR
24 NOTIFY_ON_EMPTY
27 ANY_LAYOUT
28 INDIRECT_DESC
29 EVENT_IDX
30 PROTOCOL_FEATURES
32 VERSION_1
33 ACCESS_PLATFORM
34 RING_PACKED
35 IN_ORDER
36 ORDER_PLATFORM
38 NOTIFICATION_DATA
40 RING_RESET"
protocol_names="0 MQ
1 LOG_SHMFD
2 RARP
3 REPLY_ACK
4 NET_MTU
5 BACKEND_REQ
6 CROSS_ENDIAN
7 CRYPTO_SESSION
8 PAGEFAULT
9 CONFIG
10 BACKEND_SEND_FD
11 HOST_NOTIFIER
12 INFLIGHT_SHMFD
13 RESET_DEVICE
14 INBAND_NOTIFICATIONS
15 CONFIGURE_MEM_SLOTS
16 STATUS"

out=$work/probe.out
bold "handshake: what the back-end saw, in order (requests with their result; events)"
awk '/^STATE /{ exit } /^(LISTENING|OFFERED) /{ next } { print }' "$out" >"$work/trace"
probe_trace "$work/trace" | sed -E \
	-e 's/^  REQ ([A-Z_0-9]+)( x([0-9]+))?$/  request  \1\2   -> ok/' \
	-e 's/^  REQ ([A-Z_0-9]+)\((-?[0-9]+)\)( x[0-9]+)?$/  request  \1\3   -> REFUSED \2/' \
	-e 's/^  ([A-Z])/  event    \1/'
bold "final state (vhu_dev_* getters, before teardown)"
feats=$(probe_field "$out" STATE features)
proto=$(probe_field "$out" STATE protocol)
offered=$(probe_field "$out" OFFERED features)
echo "  features offered    $offered: $(names "${offered:-0}" "$feature_names")"
echo "  features negotiated $feats: $(names "${feats:-0}" "$feature_names")"
echo "  protocol negotiated $proto: $(names "${proto:-0}" "$protocol_names")"
echo "  memory regions $(probe_field "$out" STATE regions), status $(probe_field "$out" STATE status) (virtio device status byte)"
grep -E '^QSTATE ' "$out" | sed 's/^QSTATE /  queue /' || echo "  (no queue configured)"
bold "teardown (vhu_dev_free while connected)"
awk 'f { print "  " $0 } /^QSTATE /{ f = 1; next } /^STATE /{ f = 1 }' "$out" | grep -v '^  QSTATE' || true
bold "guest console (markers)"
grep -a 'VHU-GUEST' "$work/console.log" | tr -d '\r' | sed 's/^/  /' || echo "  (none)"
gbits=$(tr -d '\r' <"$work/console.log" | sed -n 's/^VHU-GUEST: eth0 features \([01]*\)$/\1/p' | tail -n 1)
if [[ -n $gbits ]]; then
	gfeat=0
	for ((i = 0; i < ${#gbits} && i < 64; i++)); do
		[[ ${gbits:i:1} == 1 ]] && gfeat=$((gfeat | (1 << i)))
	done
	echo "  the guest's virtio-net driver accepted $(printf 0x%x "$gfeat"): $(names "$gfeat" "$feature_names")"
	echo "  (bits vhu was not told of, e.g. MAC, STATUS and the CTRL_* ones, QEMU implements itself)"
fi

check_probe "$out" 2 0 256
check_guest_features "$work/console.log" "$out" >/dev/null
status=$(probe_field "$out" STATE status)
(((${status:-0} & 4) != 0)) || VHU_CASE_ERRORS+=("the driver never set DRIVER_OK (status ${status:-?})")
if ((${#VHU_CASE_ERRORS[@]} == 0)); then
	bold "result"
	echo "OK: QEMU and vhu negotiated VERSION_1, the guest's driver set DRIVER_OK," \
		"and both queues of the net device are started and enabled (guest up in ${boot} s)."
	echo "(demo took ${SECONDS} s)"
	exit 0
fi
bold "result"
for e in "${VHU_CASE_ERRORS[@]}"; do
	echo "  - $e"
done
echo "  --- vhu-probe stderr:"
tail -n 20 "$work/probe.err" | sed 's/^/  | /' || true
echo "  --- QEMU stderr:"
tail -n 20 "$work/qemu.err" | sed 's/^/  | /' || true
echo "  --- guest console:"
tail -n 30 "$work/console.log" 2>/dev/null | tr -d '\r' | sed 's/^/  | /' || true
echo "FAILED"
exit 1
