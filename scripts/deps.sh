# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash
# Sourced by the README's commands: install the Debian packages vhu needs,
# only those missing, so a machine that has them does no network work.

VHU_PACKAGES=(
	cmake make gcc clang pkg-config          # build
	check valgrind                           # unit tests
	libev-dev libhugetlbfs-dev               # examples, libev glue
	libxdp-dev libbpf-dev                    # vhu-l2fwd (AF_XDP)
	liburing-dev                             # vhu-blk (io_uring)
	dpdk dpdk-dev qemu-system-x86 busybox-static # real peers (dpdk-testpmd is in dpdk-dev)
	cpio kmod xz-utils zstd iproute2 ethtool # guest image, namespaces
	socat                                    # QMP client (test/interop/qemu-migrate.sh)
	gnuplot-nox                              # bench/plot.sh (the bench-scripts stage)
)

vhu_install_deps() {
	local missing=() p
	for p in "${VHU_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
			missing+=("$p")
	done
	((${#missing[@]} == 0)) && return 0
	echo "installing: ${missing[*]}"
	local sudo=()
	((EUID == 0)) || sudo=(sudo)
	"${sudo[@]}" apt-get update -q
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q \
		--no-install-recommends "${missing[@]}"
}
