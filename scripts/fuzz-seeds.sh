#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# fuzz-seeds.sh BUILD_DIR FUZZ_BUILD_DIR - record the sessions the test
# front-end runs in the handshake, virtqueue and net suites (VHU_FE_RECORD,
# see test/frontend/fe_record.c) and fold those that add coverage into
# fuzz/corpus/session (libFuzzer -merge=1 keeps the smallest set).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:?usage: fuzz-seeds.sh BUILD_DIR FUZZ_BUILD_DIR}
fbuild=${2:?usage: fuzz-seeds.sh BUILD_DIR FUZZ_BUILD_DIR}
rec=$(mktemp -d /tmp/vhu-seeds.XXXXXX)
trap 'rm -rf "$rec"' EXIT
for t in test_handshake test_vq test_net; do
	VHU_FE_RECORD=$rec "$build/test/$t" >/dev/null
done
echo "recorded $(find "$rec" -type f | wc -l) sessions"
"$fbuild/fuzz/fuzz_session" -merge=1 "$repo/fuzz/corpus/session" "$rec" 2>&1 | tail -n 1
