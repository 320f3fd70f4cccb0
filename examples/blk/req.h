/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Parsing and validating one virtio-blk request: pure functions over the
 * segments vhu_vq_pop() handed out, no I/O, no allocation, so they can be
 * unit tested (test/test_blk_req.c) and fuzzed (fuzz/fuzz_blk.c).
 *
 * Layout rules (every byte comes from the guest and is hostile):
 *  - the header is the first 16 device-readable bytes, in as many segments
 *    as the driver liked;
 *  - the status is the last device-writable byte; without one the request
 *    is pushed back with nothing written;
 *  - IN: nothing readable after the header, the data is every writable
 *    byte before the status; OUT: the data is every readable byte after
 *    the header, the status is the only writable byte; both a multiple of
 *    512 bytes, inside the capacity;
 *  - GET_ID: at least 20 writable bytes before the status;
 *  - DISCARD / WRITE_ZEROES: 1..max ranges of 16 bytes after the header;
 *  - FLUSH: any extra bytes are ignored.
 */
#ifndef VHU_BLK_REQ_H
#define VHU_BLK_REQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <vhu/vhu.h>

#include "virtio_blk.h"

/* Ranges of one DISCARD / WRITE_ZEROES request (the max_*_seg offered). */
#define BLK_MAX_RANGES 16u
/* Data segments of one read or write: what preadv() and io_uring take. */
#define BLK_MAX_IOV 1024u

/* What the device accepts, from the image and the command line. */
struct blk_limits {
	uint64_t capacity;            /* 512-byte sectors */
	uint32_t max_discard_sectors; /* per range */
	uint32_t max_wz_sectors;      /* per range */
	uint32_t max_ranges;          /* per request, <= BLK_MAX_RANGES */
	bool read_only;
};

/* A request's ranges, host endian. */
struct blk_range {
	uint64_t sector;
	uint32_t nsectors;
	uint32_t flags;
};

struct blk_req {
	uint32_t type;
	uint64_t sector;
	/* VIRTIO_BLK_S_OK: valid, to be carried out; else the answer. */
	uint8_t status;
	/* Where the status goes (NULL: nowhere, push with 0 written) and its
	 * offset in the writable part (dirty logging needs to know whether
	 * the written count covers it). */
	uint8_t *status_ptr;
	uint32_t status_off;
	/* IN / OUT / GET_ID data, in the caller's array. */
	struct iovec *iov;
	unsigned niov;
	uint64_t len;
	struct blk_range ranges[BLK_MAX_RANGES];
	unsigned nranges;
	/* Why a request was refused, for debug log lines; static string. */
	const char *why;
};

/**
 * blk_req_parse() - check @vr against @lim and fill @out.  @iov (capacity
 * @iov_cap) receives the data segments and must outlive @out.  Always
 * fills status/status_ptr: out->status != VIRTIO_BLK_S_OK means answer
 * with that status, nothing else to do.
 */
void blk_req_parse(const struct vhu_req *vr, const struct blk_limits *lim,
		   struct iovec *iov, unsigned iov_cap, struct blk_req *out);

/** blk_req_written() - the used length to report: @data_done bytes of data
 *  written into the guest's buffers, plus the status byte when there is one. */
static inline uint32_t blk_req_written(const struct blk_req *r,
				       uint32_t data_done)
{
	return r->status_ptr ? data_done + 1 : 0;
}

/** blk_iov_copy_to() - copy @len bytes of @src into @iov[0..@niov); returns
 *  the bytes copied (less when the iovecs are shorter). */
uint64_t blk_iov_copy_to(const struct iovec *iov, unsigned niov,
			 const void *src, uint64_t len);

/** blk_type_name() - "IN", "OUT", ... or "unknown". */
const char *blk_type_name(uint32_t type);

#endif
