/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhu-blk's request parser (examples/blk/req.c) on arbitrary requests:
 * the limits (capacity, read-only, discard offered), up to 32 segments of
 * any lengths split between device-readable and device-writable, each in
 * its own exact-size allocation (so ASan sees a byte read or written past
 * a segment), their bytes, and the caller's iovec capacity.  After the
 * parse, every promise of req.h is checked: the status byte is the last
 * writable byte, a refusal carries no data, accepted data lies inside
 * the segments of the right direction and inside the capacity.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "req.h"

#define MAX_SEGS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                          \
	do {                                                              \
		if (!(c)) {                                               \
			fprintf(stderr, "fuzz_blk: %s:%d: %s\n", __FILE__, \
				__LINE__, #c);                            \
			abort();                                          \
		}                                                         \
	} while (0)

/* Does [p, p + len) lie inside one segment of segs[from, to)? */
static bool inside(const struct vhu_seg *segs, unsigned from, unsigned to,
		   const void *p, size_t len)
{
	const uint8_t *b = p;

	for (unsigned i = from; i < to; i++) {
		const uint8_t *s = segs[i].addr;

		if (b >= s && b + len <= s + segs[i].len)
			return true;
	}
	return false;
}

static void check_accepted(const struct vhu_req *vr, const struct blk_limits *lim,
			   const struct blk_req *r)
{
	bool in = r->type == VIRTIO_BLK_T_IN || r->type == VIRTIO_BLK_T_GET_ID;
	unsigned from = in ? vr->nr_out : 0, to = in ? vr->nr_out + vr->nr_in : vr->nr_out;
	uint64_t total = 0;
	static const char serial[20] = "fuzz-serial";

	CHECK(r->why == NULL);
	for (unsigned i = 0; i < r->niov; i++) {
		CHECK(inside(vr->segs, from, to, r->iov[i].iov_base, r->iov[i].iov_len));
		/* the data never covers the status byte */
		CHECK(!((uint8_t *)r->iov[i].iov_base <= r->status_ptr &&
			r->status_ptr < (uint8_t *)r->iov[i].iov_base + r->iov[i].iov_len));
		total += r->iov[i].iov_len;
		if (in)
			memset(r->iov[i].iov_base, 0x5a, r->iov[i].iov_len);
		else if (r->iov[i].iov_len)
			(void)((volatile uint8_t *)r->iov[i].iov_base)[r->iov[i].iov_len - 1];
	}
	CHECK(total == r->len);
	switch (r->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		CHECK(r->len % 512 == 0);
		CHECK(r->sector <= lim->capacity &&
		      r->len / 512 <= lim->capacity - r->sector);
		CHECK(r->type == VIRTIO_BLK_T_IN || !lim->read_only);
		break;
	case VIRTIO_BLK_T_GET_ID:
		CHECK(r->len == 20);
		CHECK(blk_iov_copy_to(r->iov, r->niov, serial, r->len) == 20);
		break;
	case VIRTIO_BLK_T_FLUSH:
		CHECK(r->niov == 0);
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		CHECK(!lim->read_only);
		CHECK(r->nranges >= 1 && r->nranges <= lim->max_ranges);
		for (unsigned i = 0; i < r->nranges; i++) {
			const struct blk_range *g = &r->ranges[i];

			CHECK(g->nsectors && g->sector <= lim->capacity &&
			      g->nsectors <= lim->capacity - g->sector);
			CHECK(g->flags == 0 || (r->type == VIRTIO_BLK_T_WRITE_ZEROES &&
						g->flags == VIRTIO_BLK_WZ_F_UNMAP));
		}
		break;
	default:
		fprintf(stderr, "fuzz_blk: type %u accepted\n", r->type);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	uint8_t flags = fz_u8(&in);
	struct blk_limits lim = {
		/* small capacities mostly, so ranges reach the end */
		.capacity = (flags & 4) ? fz_u64(&in) : fz_u16(&in),
		.max_discard_sectors = (flags & 2) ? 0 : 1u + fz_u16(&in),
		.max_wz_sectors = (flags & 2) ? 0 : 1u + fz_u16(&in),
		.max_ranges = 1 + fz_u8(&in) % BLK_MAX_RANGES,
		.read_only = flags & 1,
	};
	unsigned nsegs = fz_u8(&in) % (MAX_SEGS + 1);
	unsigned nr_out = nsegs ? fz_u8(&in) % (nsegs + 1) : 0;
	unsigned iov_cap = fz_u8(&in) % (MAX_SEGS + 1);
	struct vhu_seg segs[MAX_SEGS];
	struct iovec iov[MAX_SEGS];
	struct vhu_req vr = { .nr_out = (uint16_t)nr_out,
			      .nr_in = (uint16_t)(nsegs - nr_out), .segs = segs };
	struct blk_req r;
	uint64_t in_len = 0;

	for (unsigned i = 0; i < nsegs; i++) {
		/* short segments often: headers and ranges cut anywhere */
		uint16_t l = fz_u16(&in);

		segs[i].len = (l & 0x8000) ? l % 24 : l % 4200;
		segs[i].addr = malloc(segs[i].len ? segs[i].len : 1);
		if (!segs[i].addr)
			abort();
		memset(segs[i].addr, 0, segs[i].len);
		fz_bytes(&in, segs[i].addr, segs[i].len);
		if (i >= nr_out)
			in_len += segs[i].len;
	}
	blk_req_parse(&vr, &lim, iov, iov_cap, &r);
	CHECK(r.status <= VIRTIO_BLK_S_UNSUPP);
	CHECK((r.status_ptr == NULL) == (in_len == 0));
	if (r.status_ptr) {
		unsigned last = nsegs;

		while (last > nr_out && segs[last - 1].len == 0)
			last--;
		CHECK(r.status_ptr == (uint8_t *)segs[last - 1].addr + segs[last - 1].len - 1);
		CHECK(r.status_off == (in_len - 1 < UINT32_MAX ? in_len - 1 : UINT32_MAX));
		*r.status_ptr = r.status;
	}
	if (r.status == VIRTIO_BLK_S_OK) {
		check_accepted(&vr, &lim, &r);
	} else {
		CHECK(r.why && r.niov == 0 && r.len == 0 && r.nranges == 0);
	}
	CHECK(blk_req_written(&r, 0) == (r.status_ptr ? 1u : 0u));
	for (unsigned i = 0; i < nsegs; i++)
		free(segs[i].addr);
	return 0;
}
