/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared by the fuzz targets: reading the input, making real fds, a device
 * with live rings over real guest memory. */
#ifndef VHU_FUZZ_COMMON_H
#define VHU_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* A cursor over the fuzzer's input; reads past the end give zeros. */
struct fz_in {
	const uint8_t *p;
	size_t left;
};

uint8_t fz_u8(struct fz_in *in);
uint16_t fz_u16(struct fz_in *in);
uint32_t fz_u32(struct fz_in *in);
uint64_t fz_u64(struct fz_in *in);
/* Copy up to @n bytes; returns how many were left to copy. */
size_t fz_bytes(struct fz_in *in, void *dst, size_t n);

/* A real fd of a kind chosen by @kind: memfd (sealed or not, of a size the
 * input chooses), eventfd, pipe end, socket, /dev/null, or -1. */
int fz_make_fd(struct fz_in *in, uint8_t kind);

/* A device for message fuzzing, connected through a socketpair; *peer is
 * the front-end's end. */
struct vhu_dev *fz_dev_connected(int *peer, uint16_t num_queues);
/* Let the device handle what was sent, and drain its replies. */
void fz_pump(struct vhu_dev *dev, int peer);

/* Guest memory for ring fuzzing: three regions of FZ_REGION bytes at gpa
 * 0, FZ_REGION (adjacent) and 0x100000; user address = gpa + FZ_UVA. */
#define FZ_REGION 0x10000u
#define FZ_UVA 0x7f0000000000ull
#define FZ_NREGIONS 3

struct fz_rings {
	struct vhu_dev *dev;
	uint8_t *mem[FZ_NREGIONS]; /* the harness's own view of guest memory */
	uint64_t gpa[FZ_NREGIONS];
};

/* A device with negotiated @features, guest memory, and queues 0 (and 1)
 * of @size started with rings at fixed places in region 0: desc 0x0,
 * avail/driver area 0x2000 (+0x800 for queue 1), used/device 0x3000. */
int fz_rings_up(struct fz_rings *r, uint64_t features, uint32_t size, int nq);
/* The same with inflight tracking: the front-end's region, its first
 * @ifl_len bytes from @ifl (the rest zero), installed before the start. */
int fz_rings_up_inflight(struct fz_rings *r, uint64_t features, uint32_t size,
			 int nq, const uint8_t *ifl, size_t ifl_len);
void fz_rings_down(struct fz_rings *r);
/* When @features has VHOST_F_LOG_ALL: a dirty log of a size the input
 * chooses (too small for guest memory at times: the rings are then held),
 * as SET_LOG_BASE installs it. */
void fz_log_up(struct fz_rings *r, struct fz_in *in);
/* Apply "guest writes" from the input: offset/length/bytes into memory. */
void fz_guest_writes(struct fz_rings *r, struct fz_in *in, unsigned max);

/* Eight bursts on queue @q with limits and guest writes from the input. */
void fz_ring_bursts(struct fz_rings *r, struct fz_in *in, int q);

/* The split / packed ring target: features, ring size, images of the
 * driver area and the descriptors, then bursts (fuzz_split.c). */
int fz_ring_target(const uint8_t *data, size_t size, bool packed);

/* Abort if fds leaked since the baseline (first call sets it). */
void fz_check_fds(void);

#endif
