/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared by the split and packed ring code: building a request's segments
 * from descriptors, and failing a queue from the data plane. */
#ifndef VHU_VQ_INTERNAL_H
#define VHU_VQ_INTERNAL_H

#include <errno.h>

#include "internal.h"

/* Add to a counter only the queue's data plane writes (single writer):
 * untorn for readers on other threads, without a locked instruction. */
static inline void vhu_stat_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* Largest indirect table accepted (entries), the largest ring size. */
#define VHU_MAX_INDIRECT VHU_MAX_QUEUE_SIZE

/* A request being assembled. */
struct vhu_chain {
	const struct vhu_memtable *mt;
	const struct vhu_region **hint; /* the queue's last region */
	struct vhu_seg *segs;
	unsigned cap;
	unsigned n;
	uint16_t nr_out;
	uint16_t nr_in;
	uint64_t out_len;
	uint64_t in_len;
	bool seen_write;
	const char *why; /* reason of -EIO */
};

static inline void chain_init(struct vhu_chain *c, struct vhu_vq *vq,
			      struct vhu_seg *segs, unsigned cap)
{
	c->mt = vq->mt;
	c->hint = &vq->rhint;
	c->segs = segs;
	c->cap = cap;
	c->n = 0;
	c->nr_out = c->nr_in = 0;
	c->out_len = c->in_len = 0;
	c->seen_write = false;
	c->why = NULL;
}

/*
 * Add one descriptor's buffer: translated, split at region boundaries.
 * -EIO (c->why says why) for a buffer the guest got wrong, -ENOBUFS when
 * the caller's segment array is full.
 */
static inline int chain_add(struct vhu_chain *c, uint64_t addr, uint32_t len,
			    bool write)
{
	uint64_t end;

	if (write) {
		c->seen_write = true;
	} else if (unlikely(c->seen_write)) {
		c->why = "device-readable descriptor after a device-writable one";
		return -EIO;
	}
	if (len == 0)
		return 0; /* nothing to access: the address is never used */
	if (unlikely(__builtin_add_overflow(addr, (uint64_t)len, &end))) {
		c->why = "buffer address + length wraps around";
		return -EIO;
	}
	if (write)
		c->in_len += len;
	else
		c->out_len += len;
	if (unlikely(c->in_len > UINT32_MAX || c->out_len > UINT32_MAX)) {
		c->why = "request longer than 4 GiB";
		return -EIO;
	}
	while (len) {
		uint64_t chunk = len;
		void *p = vhu_gpa_to_va_hint(c->mt, addr, &chunk, c->hint);

		if (unlikely(!p)) {
			c->why = "buffer outside guest memory";
			return -EIO;
		}
		if (unlikely(c->n == c->cap))
			return -ENOBUFS;
		c->segs[c->n].addr = p;
		c->segs[c->n].len = (uint32_t)chunk;
		c->n++;
		if (write)
			c->nr_in++;
		else
			c->nr_out++;
		addr += chunk;
		len -= (uint32_t)chunk;
	}
	return 0;
}

/*
 * The one-buffer request: @id's single direct descriptor (@addr, @len,
 * device-writable if @write), when it lies whole in one region.  Fills @req
 * and @seg and returns true; false (nothing used) sends the caller to the
 * full chain walk.
 */
static inline bool req_single(const struct vhu_memtable *mt,
			      const struct vhu_region **hint, uint16_t id,
			      uint64_t addr, uint32_t len, bool write,
			      struct vhu_req *req, struct vhu_seg *seg)
{
	uint64_t got = len;
	void *p;

	if (len == 0)
		return false;
	p = vhu_gpa_to_va_hint(mt, addr, &got, hint);
	if (unlikely(!p || got != len))
		return false;
	*seg = (struct vhu_seg){ .addr = p, .len = len };
	*req = (struct vhu_req){
		.id = id, .ndesc = 1, .segs = seg,
		.nr_out = !write, .nr_in = write,
		.out_len = write ? 0 : len, .in_len = write ? len : 0,
	};
	return true;
}

static inline void chain_to_req(const struct vhu_chain *c, struct vhu_req *req)
{
	req->segs = c->segs;
	req->nr_out = c->nr_out;
	req->nr_in = c->nr_in;
	req->out_len = (uint32_t)c->out_len;
	req->in_len = (uint32_t)c->in_len;
}

/* The local copy of an indirect table of @len bytes at @gpa: in place when
 * it is contiguous, else copied piece by piece into the queue's bounce
 * buffer.  NULL (c->why set) when the guest got it wrong. */
const void *vhu_vq_indirect_table(struct vhu_vq *vq, struct vhu_chain *c,
				  uint64_t gpa, uint32_t len);

/* The data plane found the ring broken: stop it, count, log (rate
 * limited), signal the error eventfd.  Returns -EIO. */
__attribute__((format(printf, 2, 3)))
int vhu_vq_fail(struct vhu_vq *vq, const char *fmt, ...);

/* Where the next pop starts; restored to give back requests taken but not
 * used (virtio-net reserving mergeable buffers). */
struct vhu_vq_mark {
	uint16_t last_avail_idx;
	bool avail_wrap;
};

static inline struct vhu_vq_mark vhu_vq_mark(const struct vhu_vq *vq)
{
	return (struct vhu_vq_mark){ vq->last_avail_idx, vq->avail_wrap };
}

/* The position after a request of @ndesc descriptors that starts at @m. */
static inline struct vhu_vq_mark vhu_vq_mark_next(const struct vhu_vq *vq,
						  struct vhu_vq_mark m,
						  uint16_t ndesc)
{
	if (!vq->packed)
		return (struct vhu_vq_mark){ (uint16_t)(m.last_avail_idx + 1),
					     m.avail_wrap };
	uint32_t idx = (uint32_t)m.last_avail_idx + ndesc;

	if (idx >= vq->size)
		return (struct vhu_vq_mark){ (uint16_t)(idx - vq->size), !m.avail_wrap };
	return (struct vhu_vq_mark){ (uint16_t)idx, m.avail_wrap };
}

static inline void vhu_vq_rewind(struct vhu_vq *vq, struct vhu_vq_mark m,
				 unsigned popped)
{
	vq->last_avail_idx = m.last_avail_idx;
	vq->avail_wrap = m.avail_wrap;
	vhu_stat_add(&vq->st_popped, -(uint64_t)popped);
}

/*
 * Has the driver made a request available at the queue's position?  A
 * plain look, no ordering (a pop that follows reads with acquire): the
 * cheap test of a poll that finds nothing.
 */
static inline bool vq_has_avail(const struct vhu_vq *vq)
{
	if (vq->packed) {
		const struct vring_packed_desc *ring = vq->desc;
		uint16_t f = ld16(&ring[vq->last_avail_idx].flags);
		bool avail = f & VRING_PACKED_DESC_F_AVAIL;
		bool used = f & VRING_PACKED_DESC_F_USED;

		return avail == vq->avail_wrap && used != vq->avail_wrap;
	}
	return vq->shadow_avail_idx != vq->last_avail_idx ||
	       ld16(VRING_AVAIL_IDX(vq->avail)) != vq->last_avail_idx;
}

/*
 * vhu's marks in the address field of packed ring descriptors it has
 * consumed, a field nobody reads any more: in a used descriptor (where
 * the driver does not use it), the number of ring descriptors it stands
 * for; in each descriptor a used one skips (the rest of a chain or of an
 * in-order batch), a skip mark.  They let vhu find the ring's position
 * after a crash (vq_recover.c).  A used descriptor's tag goes after its id
 * and length, and its skip marks before its flags.
 */
#define VHU_USED_TAG 0x7668750000000000ull /* "vhu" */
#define VHU_SKIP_TAG 0x7668730000000000ull /* "vhs" */
#define VHU_USED_TAG_MASK 0xffffffffffff0000ull

static inline void put_used_tag(struct vring_packed_desc *d, uint32_t ndesc)
{
	/* Release, barrier [used-tag]: the id and length before the tag, so a
	 * tagged descriptor found after a crash has both (vq_recover.c step 3). */
	st64_release(&d->addr, VHU_USED_TAG | ndesc);
}

static inline void put_skip_mark(struct vring_packed_desc *d)
{
	__atomic_store_n(&d->addr, vhu_le64(VHU_SKIP_TAG), __ATOMIC_RELAXED);
}

/* Skip marks on the @n - 1 descriptors after slot @slot of @ring. */
static inline void put_skip_marks(struct vring_packed_desc *ring, uint32_t size,
				  uint32_t slot, uint32_t n)
{
	for (uint32_t k = 1; k < n; k++)
		put_skip_mark(&ring[slot + k < size ? slot + k : slot + k - size]);
}

/* Split and packed implementations (vq_split.c, vq_packed.c). */
int vhu_vq_pop_split(struct vhu_vq *vq, struct vhu_req *reqs, unsigned max,
		     struct vhu_seg *segs, unsigned nsegs);
int vhu_vq_push_split(struct vhu_vq *vq, const struct vhu_req *reqs,
		      const uint32_t *written, unsigned n);
bool vhu_vq_need_call_split(struct vhu_vq *vq);
int vhu_vq_set_kicks_split(struct vhu_vq *vq, bool on);

/* One request handed out again after a restart (inflight.h): split, the
 * chain at @head of the descriptor table; packed, the @n descriptors kept
 * in @d.  The segments used, or -errno as vhu_vq_pop(). */
int vhu_vq_take_head(struct vhu_vq *vq, uint16_t head, struct vhu_req *req,
		     struct vhu_seg *segs, unsigned nsegs);
int vhu_vq_take_stored(struct vhu_vq *vq, const struct vhu_ifl_stored *d,
		       uint32_t n, struct vhu_req *req, struct vhu_seg *segs,
		       unsigned nsegs);

int vhu_vq_pop_packed(struct vhu_vq *vq, struct vhu_req *reqs, unsigned max,
		      struct vhu_seg *segs, unsigned nsegs);
int vhu_vq_push_packed(struct vhu_vq *vq, const struct vhu_req *reqs,
		       const uint32_t *written, unsigned n);
bool vhu_vq_need_call_packed(struct vhu_vq *vq);
int vhu_vq_set_kicks_packed(struct vhu_vq *vq, bool on);

#endif
