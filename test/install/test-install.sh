#!/usr/bin/env bash
# Install vhu from BUILD_DIR into a temporary prefix, build a consumer with
# pkg-config against that copy (shared and static), and run both.
set -euo pipefail
build=${1:?usage: test-install.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
prefix=$(mktemp -d /tmp/vhu-install.XXXXXX)
trap 'rm -rf "$prefix"' EXIT

cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(find "$prefix" -name vhu.pc -printf '%h\n' | head -1)
export PKG_CONFIG_PATH=$libdir
test -f "$prefix/include/vhu/vhu.h"
test -f "$prefix/include/vhu/dev.h"
test ! -e "$prefix/include/vhu/proto.h"   # wire structs stay private

# shellcheck disable=SC2046 # pkg-config's flags are separate words
cc -Wall -Werror -o "$prefix/consumer" "$here/consumer.c" $(pkg-config --cflags --libs vhu)
LD_LIBRARY_PATH=$(pkg-config --variable=libdir vhu) "$prefix/consumer" "$prefix/c1.sock"
# The binary really uses the installed shared library with the soname.
# (ldd's output is taken whole first: grep -q would stop reading early and
# pipefail would then see ldd die of SIGPIPE.)
deps=$(LD_LIBRARY_PATH=$(pkg-config --variable=libdir vhu) ldd "$prefix/consumer")
grep -q "libvhu.so.0 => $prefix" <<<"$deps"

# shellcheck disable=SC2046 # pkg-config's flags are separate words
cc -Wall -Werror -o "$prefix/consumer-static" "$here/consumer.c" \
   $(pkg-config --cflags vhu) "$(pkg-config --variable=libdir vhu)/libvhu.a" -lpthread
"$prefix/consumer-static" "$prefix/c2.sock"
deps=$(ldd "$prefix/consumer-static" || true)
if grep -q libvhu <<<"$deps"; then
	echo "the static consumer loads libvhu dynamically" >&2
	exit 1
fi
echo "install: 1 passed, 0 failed"
