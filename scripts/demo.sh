#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# demo.sh - the main job: a Linux guest on the network through vhu-l2fwd.
#
#  1. installs what is missing (scripts/deps.sh: apt-get, missing packages only),
#  2. configures and builds the project into build/ (or $VHU_BUILD_DIR),
#  3. builds (or reuses) the test guest (scripts/guest-image.sh),
#  4. creates two network namespaces joined by a veth pair: vhu-l2fwd serves
#     one end over AF_XDP, the other end is a "host" at 10.77.0.2,
#  5. boots the guest under QEMU (TCG) with a virtio-net device on
#     vhu-l2fwd's vhost-user socket; the guest takes 10.77.0.1, pings the
#     host, fetches a 8 MiB file from it over TCP and prints its SHA-256,
#  6. shows the host pinging the guest, both checksums, and vhu-l2fwd's
#     counters.
#
# Needs root.  Bounded (about 3 minutes at most); removes its processes,
# namespaces and temporary files on every exit path.  Exit status 0 when
# the pings worked and the checksums match.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${VHU_BUILD_DIR:-$repo/build}
# shellcheck source=test/interop/common.sh
. "$repo/test/interop/common.sh"
# shellcheck source=scripts/deps.sh
. "$repo/scripts/deps.sh"

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

[[ $EUID == 0 ]] || die "needs root (network namespaces, XDP): sudo $0"

tag=vd$$
nsa=$tag-a
nsb=$tag-b
work=$(mktemp -d "${TMPDIR:-/tmp}/vhu-demo.XXXXXX")
# shellcheck disable=SC2317 # run by the EXIT trap
on_exit() {
	kill_children
	ip netns pids "$nsb" 2>/dev/null | xargs -r kill 2>/dev/null || true
	ip netns del "$nsa" 2>/dev/null || true
	ip netns del "$nsb" 2>/dev/null || true
	rm -rf "$work"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bold "1. dependencies"
vhu_install_deps

bold "2. build ($build)"
cmake -S "$repo" -B "$build" >"$work/cmake.log" 2>&1 ||
	{ cat "$work/cmake.log"; die "cmake failed"; }
cmake --build "$build" -j"$(nproc)" --target vhu-l2fwd >"$work/build.log" 2>&1 ||
	{ tail -n 30 "$work/build.log"; die "build failed"; }
l2fwd=$build/examples/vhu-l2fwd
[[ -x $l2fwd ]] || die "vhu-l2fwd was not built (see $work/cmake.log)"
echo "built $l2fwd"

bold "3. guest image"
"$repo/scripts/guest-image.sh" >"$work/guest.out" 2>"$work/guest.err" ||
	{ cat "$work/guest.err"; die "guest image failed"; }
kernel=$(sed -n 1p "$work/guest.out")
initrd=$(sed -n 2p "$work/guest.out")
echo "$kernel"

bold "4. namespaces and veth"
ip netns add "$nsa"
ip netns add "$nsb"
ip link add "$tag"a type veth peer name "$tag"b
ip link set "$tag"a netns "$nsa"
ip link set "$tag"b netns "$nsb"
ip -n "$nsa" link set "$tag"a name va
ip -n "$nsb" link set "$tag"b name vb
# a veth behaves like a wire once checksum/segmentation offloads are off
ip netns exec "$nsa" ethtool -K va rx off tx off tso off gso off gro off >/dev/null 2>&1 || true
ip netns exec "$nsb" ethtool -K vb rx off tx off tso off gso off gro off >/dev/null 2>&1 || true
ip -n "$nsb" addr add 10.77.0.2/24 dev vb
ip -n "$nsa" link set va up
ip -n "$nsb" link set vb up
echo "namespace $nsa: va (vhu-l2fwd, AF_XDP)  <-veth->  namespace $nsb: vb 10.77.0.2/24"

head -c $((8 << 20)) /dev/urandom >"$work/file.bin"
want=$(sha256sum <"$work/file.bin" | cut -d' ' -f1)
spawn /dev/null "$work/nc.err" ip netns exec "$nsb" sh -c \
	"busybox nc -l -p 8080 <'$work/file.bin'"

bold "5. vhu-l2fwd and the guest"
spawn "$work/l2fwd.out" "$work/l2fwd.err" ip netns exec "$nsa" \
	"$l2fwd" --socket "$work/sock" --iface va --stats 5
l2_pid=$VHU_LAST_PID
wait_for "$work/l2fwd.out" '^vhu-l2fwd: listening' 10 "$l2_pid" ||
	{ cat "$work/l2fwd.err"; die "vhu-l2fwd did not start"; }
sed 's/^/  /' "$work/l2fwd.out"

# One kernel parameter in double quotes: no double quotes inside.
cmd="ip addr add 10.77.0.1/24 dev eth0; echo VHU-T: addr;"
cmd+=" ping -c 3 10.77.0.2;"
cmd+=" nc 10.77.0.2 8080 >/tmp/file; echo VHU-T: fetched \$(wc -c </tmp/file) bytes sha256 \$(sha256sum </tmp/file);"
cmd+=" sleep 600"
spawn "$work/qemu.out" "$work/qemu.err" timeout -k 5 240 qemu-system-x86_64 \
	-accel tcg -m 512 -smp 1 \
	-object memory-backend-memfd,id=mem,size=512M,share=on \
	-machine pc,memory-backend=mem -display none -nodefaults -no-reboot -monitor none \
	-kernel "$kernel" -initrd "$initrd" \
	-chardev "socket,id=c0,path=$work/sock" -netdev vhost-user,id=n0,chardev=c0 \
	-device virtio-net-pci,netdev=n0,vectors=0,romfile= \
	-serial "file:$work/console.log" \
	-append "console=ttyS0 quiet ipv6.disable=1 panic=-1 vhu.cmd=\"$cmd\""
qemu_pid=$VHU_LAST_PID
echo "  QEMU booting (TCG) ..."
ok=1
wait_for "$work/console.log" '^VHU-T: fetched' 150 "$qemu_pid" || ok=0
echo "  --- guest console:"
tr -d '\r' <"$work/console.log" | grep -vE '^VHU-GUEST: running' | sed 's/^/  | /'
((ok)) || die "the guest did not finish (see above)"

bold "6. results"
echo "host -> guest ping:"
ip netns exec "$nsb" busybox ping -c 3 10.77.0.1 | sed 's/^/  /' || ok=0
got=$(tr -d '\r' <"$work/console.log" | sed -n 's/^VHU-T: fetched .* sha256 \([0-9a-f]\{64\}\).*/\1/p')
echo "file on the host:  sha256 $want"
echo "file in the guest: sha256 ${got:-none}"
if [[ $got == "$want" ]]; then
	echo "checksums match"
else
	echo "CHECKSUMS DIFFER"
	ok=0
fi
grep -q 'VHU-T: addr' "$work/console.log" && ! grep -q '100% packet loss' "$work/console.log" || ok=0
stop_pid "$qemu_pid" TERM 5 || true
stop_pid "$l2_pid" TERM 5 || true
echo "vhu-l2fwd:"
grep -vE '^vhu-l2fwd: queue ' "$work/l2fwd.out" | tail -n 8 | sed 's/^/  /'
((ok)) || die "something failed (see above)"
echo
echo "demo: OK"
