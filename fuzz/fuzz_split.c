/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Split ring processing over fuzz-controlled guest memory: descriptor
 * table, avail ring and indirect tables in three regions (two adjacent).
 * input = features (1) | ring size (1) | driver area image (64 bytes) |
 * descriptor image (1 KiB) | per burst: burst and segment limits, kicks
 * on/off, and "guest writes" (region, offset, bytes) between bursts.
 * Every segment handed out is read end to end (ASan checks that it lies in
 * mapped memory), written as a device would, and returned.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_ring_target(data, size, false);
}
