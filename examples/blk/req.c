/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-blk request parsing (see req.h for the rules).  Lengths are
 * recomputed from the segments in 64 bits rather than taken from the
 * vhu_req, so the parser holds on inputs vhu would never make (the fuzzer's).
 */
#include "req.h"

#include <string.h>

/* The bytes [@skip, @skip + @len) of the concatenation of @n segments. */
struct span {
	const struct vhu_seg *segs;
	unsigned n;
	uint64_t skip;
	uint64_t len;
};

/* The span's next piece, from *@i on: *@p and *@l; false at the span's end
 * or the segments'.  Consumes it from @s. */
static bool span_next(struct span *s, unsigned *i, uint8_t **p, uint64_t *l)
{
	for (; *i < s->n && s->len; (*i)++) {
		uint64_t seg = s->segs[*i].len;

		if (s->skip >= seg) {
			s->skip -= seg;
			continue;
		}
		*p = (uint8_t *)s->segs[*i].addr + s->skip;
		*l = seg - s->skip < s->len ? seg - s->skip : s->len;
		s->skip = 0;
		s->len -= *l;
		(*i)++;
		return true;
	}
	return false;
}

/* Copy a span into @dst; returns the bytes copied (less when the segments
 * end first). */
static uint64_t span_gather(struct span s, void *dst)
{
	uint8_t *d = dst, *p;
	uint64_t done = 0, l;
	unsigned i = 0;

	while (span_next(&s, &i, &p, &l)) {
		memcpy(d + done, p, l);
		done += l;
	}
	return done;
}

/* Describe a span with iovecs; false when more than @cap are needed. */
static bool span_iov(struct span s, struct iovec *iov, unsigned cap,
		     unsigned *niov)
{
	uint8_t *p;
	uint64_t l;
	unsigned i = 0, k = 0;

	while (span_next(&s, &i, &p, &l)) {
		if (k == cap)
			return false;
		iov[k].iov_base = p;
		iov[k++].iov_len = (size_t)l;
	}
	*niov = k;
	return true;
}

static uint64_t segs_len(const struct vhu_seg *segs, unsigned n)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < n; i++)
		sum += segs[i].len;
	return sum;
}

/* [sector, sector + nsectors) inside the disk, without wrapping. */
static bool in_capacity(uint64_t sector, uint64_t nsectors, uint64_t capacity)
{
	return sector <= capacity && nsectors <= capacity - sector;
}

/* A refusal: the status to answer with, and why (for the debug log). */
static uint8_t refuse(struct blk_req *r, uint8_t status, const char *why)
{
	r->why = why;
	return status;
}

static uint8_t parse_rw(struct blk_req *r, const struct vhu_req *vr,
		     const struct blk_limits *lim, uint64_t out_len,
		     uint64_t in_len, unsigned iov_cap)
{
	bool write = r->type == VIRTIO_BLK_T_OUT;
	struct span data;

	if (write) {
		if (lim->read_only)
			return refuse(r, VIRTIO_BLK_S_IOERR, "write to a read-only disk");
		if (in_len != 1)
			return refuse(r, VIRTIO_BLK_S_IOERR,
				      "device-writable data in an OUT request");
		data = (struct span){ vr->segs, vr->nr_out, sizeof(struct virtio_blk_outhdr),
				      out_len - sizeof(struct virtio_blk_outhdr) };
	} else {
		if (out_len != sizeof(struct virtio_blk_outhdr))
			return refuse(r, VIRTIO_BLK_S_IOERR,
				      "device-readable data after an IN header");
		data = (struct span){ vr->segs + vr->nr_out, vr->nr_in, 0, in_len - 1 };
	}
	if (data.len > UINT32_MAX - 1)
		return refuse(r, VIRTIO_BLK_S_IOERR, "request longer than 4 GiB");
	if (data.len % VIRTIO_BLK_SECTOR_SIZE)
		return refuse(r, VIRTIO_BLK_S_IOERR, "data not a multiple of 512 bytes");
	if (!in_capacity(r->sector, data.len >> VIRTIO_BLK_SECTOR_SHIFT, lim->capacity))
		return refuse(r, VIRTIO_BLK_S_IOERR, "sectors beyond the capacity");
	if (iov_cap > BLK_MAX_IOV)
		iov_cap = BLK_MAX_IOV;
	if (!span_iov(data, r->iov, iov_cap, &r->niov))
		return refuse(r, VIRTIO_BLK_S_IOERR, "too many data segments");
	r->len = data.len;
	return VIRTIO_BLK_S_OK;
}

static uint8_t parse_get_id(struct blk_req *r, const struct vhu_req *vr,
			 uint64_t out_len, uint64_t in_len, unsigned iov_cap)
{
	struct span id = { vr->segs + vr->nr_out, vr->nr_in, 0, VIRTIO_BLK_ID_BYTES };

	if (out_len != sizeof(struct virtio_blk_outhdr))
		return refuse(r, VIRTIO_BLK_S_IOERR,
			      "device-readable data after a GET_ID header");
	if (in_len - 1 < VIRTIO_BLK_ID_BYTES)
		return refuse(r, VIRTIO_BLK_S_IOERR, "GET_ID buffer shorter than 20 bytes");
	if (!span_iov(id, r->iov, iov_cap, &r->niov))
		return refuse(r, VIRTIO_BLK_S_IOERR, "too many data segments");
	r->len = VIRTIO_BLK_ID_BYTES;
	return VIRTIO_BLK_S_OK;
}

static uint8_t parse_ranges(struct blk_req *r, const struct vhu_req *vr,
			 const struct blk_limits *lim, uint64_t out_len,
			 uint64_t in_len)
{
	bool discard = r->type == VIRTIO_BLK_T_DISCARD;
	uint32_t max_sectors = discard ? lim->max_discard_sectors : lim->max_wz_sectors;
	uint32_t allowed_flags = discard ? 0 : VIRTIO_BLK_WZ_F_UNMAP;
	uint64_t payload = out_len - sizeof(struct virtio_blk_outhdr);
	struct virtio_blk_range raw[BLK_MAX_RANGES];
	uint64_t n = payload / sizeof(raw[0]);

	if (!max_sectors)
		return refuse(r, VIRTIO_BLK_S_UNSUPP, "request type not offered");
	if (lim->read_only)
		return refuse(r, VIRTIO_BLK_S_IOERR, "write to a read-only disk");
	if (in_len != 1)
		return refuse(r, VIRTIO_BLK_S_IOERR,
			      "device-writable data in a DISCARD/WRITE_ZEROES request");
	if (payload % sizeof(raw[0]) || n == 0)
		return refuse(r, VIRTIO_BLK_S_IOERR, "ranges not a multiple of 16 bytes");
	if (n > lim->max_ranges || n > BLK_MAX_RANGES)
		return refuse(r, VIRTIO_BLK_S_IOERR, "too many ranges");
	span_gather((struct span){ vr->segs, vr->nr_out,
				   sizeof(struct virtio_blk_outhdr), payload }, raw);
	for (unsigned i = 0; i < n; i++) {
		struct blk_range *g = &r->ranges[i];

		g->sector = blk_le64(raw[i].sector);
		g->nsectors = blk_le32(raw[i].num_sectors);
		g->flags = blk_le32(raw[i].flags);
		if (g->flags & ~allowed_flags)
			return refuse(r, VIRTIO_BLK_S_UNSUPP, "unknown range flags");
		if (g->nsectors == 0)
			return refuse(r, VIRTIO_BLK_S_IOERR, "empty range");
		if (g->nsectors > max_sectors)
			return refuse(r, VIRTIO_BLK_S_IOERR, "range longer than the maximum");
		if (!in_capacity(g->sector, g->nsectors, lim->capacity))
			return refuse(r, VIRTIO_BLK_S_IOERR, "sectors beyond the capacity");
	}
	r->nranges = (unsigned)n;
	return VIRTIO_BLK_S_OK;
}

void blk_req_parse(const struct vhu_req *vr, const struct blk_limits *lim,
		   struct iovec *iov, unsigned iov_cap, struct blk_req *r)
{
	const struct vhu_seg *in = vr->segs + vr->nr_out;
	uint64_t out_len = segs_len(vr->segs, vr->nr_out);
	uint64_t in_len = segs_len(in, vr->nr_in);
	struct virtio_blk_outhdr h;

	memset(r, 0, sizeof(*r));
	r->iov = iov;
	/* the status: the last byte of the last non-empty writable segment */
	for (unsigned i = vr->nr_in; i-- > 0;) {
		if (in[i].len) {
			r->status_ptr = (uint8_t *)in[i].addr + in[i].len - 1;
			r->status_off = in_len - 1 < UINT32_MAX ? (uint32_t)(in_len - 1)
								: UINT32_MAX;
			break;
		}
	}
	if (!r->status_ptr) {
		r->status = refuse(r, VIRTIO_BLK_S_IOERR, "no device-writable status byte");
		return;
	}
	if (out_len < sizeof(h)) {
		r->status = refuse(r, VIRTIO_BLK_S_IOERR, "header shorter than 16 bytes");
		return;
	}
	span_gather((struct span){ vr->segs, vr->nr_out, 0, sizeof(h) }, &h);
	r->type = blk_le32(h.type);
	r->sector = blk_le64(h.sector);
	switch (r->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		r->status = parse_rw(r, vr, lim, out_len, in_len, iov_cap);
		break;
	case VIRTIO_BLK_T_FLUSH:
		r->status = VIRTIO_BLK_S_OK;
		break;
	case VIRTIO_BLK_T_GET_ID:
		r->status = parse_get_id(r, vr, out_len, in_len, iov_cap);
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		r->status = parse_ranges(r, vr, lim, out_len, in_len);
		break;
	default:
		r->status = refuse(r, VIRTIO_BLK_S_UNSUPP, "unknown request type");
		break;
	}
	if (r->status != VIRTIO_BLK_S_OK) {
		/* a refused request touches nothing */
		r->niov = 0;
		r->len = 0;
		r->nranges = 0;
	}
}

uint64_t blk_iov_copy_to(const struct iovec *iov, unsigned niov,
			 const void *src, uint64_t len)
{
	uint64_t done = 0;

	for (unsigned i = 0; i < niov && done < len; i++) {
		uint64_t l = iov[i].iov_len < len - done ? iov[i].iov_len : len - done;

		memcpy(iov[i].iov_base, (const uint8_t *)src + done, l);
		done += l;
	}
	return done;
}

const char *blk_type_name(uint32_t type)
{
	switch (type) {
	case VIRTIO_BLK_T_IN: return "IN";
	case VIRTIO_BLK_T_OUT: return "OUT";
	case VIRTIO_BLK_T_FLUSH: return "FLUSH";
	case VIRTIO_BLK_T_GET_ID: return "GET_ID";
	case VIRTIO_BLK_T_DISCARD: return "DISCARD";
	case VIRTIO_BLK_T_WRITE_ZEROES: return "WRITE_ZEROES";
	default: return "unknown";
	}
}
