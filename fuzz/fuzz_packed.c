/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Packed ring processing over fuzz-controlled guest memory: descriptor
 * ring, driver event area and indirect tables in three regions (two
 * adjacent); wrap counters, chains across the ring's end, buffer ids.
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
	return fz_ring_target(data, size, true);
}
