#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# guest-image.sh [OUTDIR] - build a small bootable Linux guest for QEMU.
#
# Everything comes from Debian packages:
#  - the kernel and its virtio modules from the package linux-image-amd64
#    depends on (fetched with `apt-get download`, unpacked with dpkg-deb);
#  - busybox-static for the whole user space of a gzip'd cpio initramfs.
#
# The guest's /init mounts proc/sys/dev, loads the virtio network and block
# modules in dependency order (from a modules.dep that depmod writes for the
# unpacked tree).  With a virtio-net device it brings eth0 up and prints
#
#     VHU-GUEST: eth0 up
#
# to the console (after `VHU-GUEST: eth0 features <bits>`: the virtio
# features the driver accepted, from sysfs, bit 0 first); with a virtio-blk
# device it waits for vda and prints `VHU-GUEST: vda features <bits>` and
# `VHU-GUEST: vda up <sectors>` (a guest with no virtio-net device prints
# `VHU-GUEST: no virtio-net device` instead of the eth0 lines).  Then it
# runs the command given on the kernel command line as `vhu.cmd=...` (it
# must be the last parameter: the rest of the line is the command), or a
# shell on the console.  When that returns, the guest
# powers off (`poweroff -f`; use QEMU's -no-reboot).  Other markers:
# `VHU-GUEST: init`, `VHU-GUEST: FAIL <what>`, `VHU-GUEST: poweroff`.
#
# A test that needs more files in the guest (a workload script, data)
# appends a second, uncompressed cpio archive to initramfs.cpio.gz (the
# kernel unpacks concatenated archives in order): guest_initrd_add in
# test/interop/common.sh.
#
# Outputs, in OUTDIR (default .cache/guest under the repository):
#   vmlinuz  initramfs.cpio.gz  kernel-version  stamp
# A complete earlier build (same stamp) is reused; VHU_GUEST_REBUILD=1
# forces a new one.  Installs what it needs with apt-get when missing.
# Prints the two image paths on success.
set -euo pipefail
# depmod lives in /sbin; a user's PATH may lack it.
export PATH=$PATH:/usr/sbin:/sbin

# Bump when the image's content or layout changes: forces a rebuild.
IMAGE_FORMAT=3
# Modules the guest needs; dependencies are added from modules.dep.
GUEST_MODULES="virtio_pci virtio_net virtio_blk"

die() {
	echo "guest-image: $*" >&2
	exit 1
}
log() {
	echo "guest-image: $*" >&2
}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
outdir=${1:-$repo/.cache/guest}
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

if [[ -z ${VHU_GUEST_REBUILD:-} && -s $outdir/vmlinuz && -s $outdir/initramfs.cpio.gz && -f $outdir/stamp ]] &&
	grep -qx "format=$IMAGE_FORMAT" "$outdir/stamp"; then
	log "up to date in $outdir ($(cat "$outdir/kernel-version" 2>/dev/null || echo '?'))"
	echo "$outdir/vmlinuz"
	echo "$outdir/initramfs.cpio.gz"
	exit 0
fi

# --- tools -----------------------------------------------------------------

apt_updated=0
apt_update_once() {
	if [[ $apt_updated == 0 ]]; then
		log "apt-get update"
		apt-get update -qq >&2 || die "apt-get update failed"
		apt_updated=1
	fi
}

# need CMD PACKAGE: install PACKAGE when CMD is missing.
need() {
	local cmd=$1 pkg=$2
	if ! command -v "$cmd" >/dev/null 2>&1 && [[ ! -x /usr/sbin/$cmd && ! -x /sbin/$cmd ]]; then
		[[ $(id -u) == 0 ]] || die "$cmd missing (package $pkg) and not root"
		apt_update_once
		log "installing $pkg"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >&2 ||
			die "apt-get install $pkg failed"
	fi
}

need apt-get apt
need dpkg-deb dpkg
need cpio cpio
need gzip gzip
need depmod kmod
need xz xz-utils
need zstd zstd
# The guest needs a static busybox: the dynamic one (package busybox) may
# own /bin/busybox instead, and the two packages conflict.
if ! dpkg-query -W -f '${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
	[[ $(id -u) == 0 ]] || die "busybox-static missing and not root"
	apt_update_once
	log "installing busybox-static"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >&2 ||
		die "apt-get install busybox-static failed"
fi
busybox=/bin/busybox
[[ -x $busybox ]] || die "no $busybox"

# --- kernel package ------------------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/vhu-guest.XXXXXX")
cleanup() {
	rm -rf "$work"
}
trap cleanup EXIT

kernel_pkg() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}
pkg=$(kernel_pkg || true)
if [[ -z $pkg ]]; then
	apt_update_once
	pkg=$(kernel_pkg || true)
fi
[[ -n $pkg ]] || die "cannot tell which kernel package linux-image-amd64 depends on"
log "downloading $pkg"
(cd "$work" && apt-get download "$pkg" >/dev/null 2>"$work/download.log") || {
	cat "$work/download.log" >&2
	die "apt-get download $pkg failed"
}
deb=$(find "$work" -maxdepth 1 -name "${pkg}_*.deb" | head -n 1)
[[ -n $deb ]] || die "no .deb for $pkg after download"
log "unpacking $(basename "$deb")"
dpkg-deb -x "$deb" "$work/pkg"

kver=$(find "$work/pkg/lib/modules" -mindepth 1 -maxdepth 1 -printf '%f\n' | head -n 1)
[[ -n $kver ]] || die "no modules directory in $pkg"
[[ -f $work/pkg/boot/vmlinuz-$kver ]] || die "no vmlinuz-$kver in $pkg"
config=$work/pkg/boot/config-$kver
moddir=$work/pkg/lib/modules/$kver

# The package ships no modules.dep (Debian runs depmod at install time).
depmod -b "$work/pkg" "$kver" 2>"$work/depmod.log" || {
	cat "$work/depmod.log" >&2
	die "depmod failed"
}

# --- module closure ------------------------------------------------------

# CONFIG_FOO value (y, m or empty) for a module name.
config_of() {
	local sym
	sym=CONFIG_$(tr '[:lower:]-' '[:upper:]_' <<<"$1")
	sed -n "s/^$sym=//p" "$config"
}

# modules.dep path of a module name (dashes and underscores are the same).
dep_path_of() {
	local name=$1 alt
	alt=${name//_/-}
	awk -F: -v a="/$name.ko" -v b="/$alt.ko" '
		{ p = $1; sub(/\.(xz|zst|gz)$/, "", p)
		  if (substr(p, length(p) - length(a) + 1) == a ||
		      substr(p, length(p) - length(b) + 1) == b) { print $1; exit } }' \
		"$moddir/modules.dep"
}

declare -A seen=()
order=()
# Post-order walk: dependencies before the modules that need them.
add_module_path() {
	local path=$1 dep deps
	[[ -n ${seen[$path]:-} ]] && return 0
	seen[$path]=1
	deps=$(awk -F': *' -v p="$path" '$1 == p { print $2; exit }' "$moddir/modules.dep")
	for dep in $deps; do
		add_module_path "$dep"
	done
	order+=("$path")
}

for m in $GUEST_MODULES; do
	c=$(config_of "$m")
	if [[ $c == y ]]; then
		log "$m is built in"
		continue
	fi
	p=$(dep_path_of "$m")
	[[ -n $p ]] || die "module $m not found (CONFIG=${c:-unset})"
	add_module_path "$p"
done

# --- initramfs tree ------------------------------------------------------

root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,etc,lib/modules,root}
cp "$busybox" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
# The kernel opens /dev/console for init before devtmpfs is mounted.
if [[ $(id -u) == 0 ]]; then
	mknod -m 0600 "$root/dev/console" c 5 1
	mknod -m 0666 "$root/dev/null" c 1 3
fi

: >"$root/etc/modules.order"
for path in "${order[@]}"; do
	src=$moddir/$path
	base=$(basename "$path")
	name=${base%%.ko*}
	dst=$root/lib/modules/$name.ko
	# busybox insmod hands the file to the kernel as is: decompress here.
	case $base in
	*.ko) cp "$src" "$dst" ;;
	*.ko.xz) xz -dc "$src" >"$dst" ;;
	*.ko.zst) zstd -qdc "$src" >"$dst" ;;
	*.ko.gz) gzip -dc "$src" >"$dst" ;;
	*) die "unknown module format: $base" ;;
	esac
	echo "$name" >>"$root/etc/modules.order"
done
log "modules: $(tr '\n' ' ' <"$root/etc/modules.order")"
echo "$kver" >"$root/etc/kernel-version"

cat >"$root/init" <<'EOF'
#!/bin/busybox sh
# vhu test guest init (generated by scripts/guest-image.sh).
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
exec </dev/console >/dev/console 2>&1
echo "VHU-GUEST: init ($(cat /etc/kernel-version))"

fail() {
	echo "VHU-GUEST: FAIL $*"
}

while read -r m; do
	[ -n "$m" ] || continue
	insmod "/lib/modules/$m.ko" || fail "insmod $m"
done </etc/modules.order

# has_virtio ID: a virtio device of that device id is present (1 net, 2
# block); virtio_pci has probed the PCI functions by now.
has_virtio() {
	grep -qx "$1" /sys/bus/virtio/devices/*/device 2>/dev/null
}
# wait_path PATH: up to 10 s for PATH to show up.
wait_path() {
	n=0
	while [ ! -e "$1" ] && [ "$n" -lt 100 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	[ -e "$1" ]
}

ip link set lo up
has_virtio 0x0001 || has_virtio 0x0002 || fail "no virtio device"
if ! has_virtio 0x0001 && has_virtio 0x0002; then
	echo "VHU-GUEST: no virtio-net device"
elif wait_path /sys/class/net/eth0 && ip link set eth0 up; then
	# The features the driver accepted, one digit per bit, bit 0 first.
	echo "VHU-GUEST: eth0 features $(cat /sys/class/net/eth0/device/features)"
	echo "VHU-GUEST: eth0 up"
else
	fail "eth0"
fi
if has_virtio 0x0002; then
	if wait_path /sys/block/vda/device/features && wait_path /dev/vda; then
		echo "VHU-GUEST: vda features $(cat /sys/block/vda/device/features)"
		echo "VHU-GUEST: vda up $(cat /sys/block/vda/size)"
	else
		fail "vda"
	fi
fi

# vhu.cmd= takes the rest of the command line.
cmdline=$(cat /proc/cmdline)
cmd=
case "$cmdline" in
*vhu.cmd=*)
	cmd=${cmdline#*vhu.cmd=}
	case "$cmd" in
	\"*\") cmd=${cmd#\"}; cmd=${cmd%\"} ;;
	esac
	;;
esac
if [ -n "$cmd" ]; then
	echo "VHU-GUEST: running: $cmd"
	sh -c "$cmd"
	echo "VHU-GUEST: command exited rc=$?"
else
	setsid cttyhack sh -l
fi
echo "VHU-GUEST: poweroff"
sync
poweroff -f
EOF
chmod 0755 "$root/init"

log "packing initramfs"
# Same inputs, same bytes: no build times in the archive.
find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . -print0 | LC_ALL=C sort -z |
	cpio --null -o -H newc --quiet --owner=0:0 --reproducible) | gzip -9n >"$work/initramfs.cpio.gz"

# Install atomically-ish: images first, stamp last.
rm -f "$outdir/stamp"
cp "$work/pkg/boot/vmlinuz-$kver" "$outdir/vmlinuz.tmp"
mv "$outdir/vmlinuz.tmp" "$outdir/vmlinuz"
mv "$work/initramfs.cpio.gz" "$outdir/initramfs.cpio.gz"
echo "$kver" >"$outdir/kernel-version"
printf 'format=%s\npackage=%s\n' "$IMAGE_FORMAT" "$(basename "$deb")" >"$outdir/stamp"
log "built in $outdir (kernel $kver)"
echo "$outdir/vmlinuz"
echo "$outdir/initramfs.cpio.gz"
