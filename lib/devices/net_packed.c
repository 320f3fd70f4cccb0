/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-net over packed rings, the fast path: frames that each fit one
 * direct descriptor, copied straight between the ring and the application
 * with no request in between.  A packed ring returns a buffer in a slot of
 * its own; when nothing else is in flight (the used position is the avail
 * position) that slot is the one the buffer came in, so the buffer id is
 * already there and returning it is a length and a flags store.
 *
 * Anything unusual (a chain, an indirect table, a buffer crossing regions,
 * a bad id, a short buffer, a frame the general path must drop or count)
 * stops the fast path before it touches that slot; vhu_net_enqueue() and
 * vhu_net_dequeue() go on from there with the general path, which checks,
 * counts and fails the queue as it always does.
 */
#include "devices/net_int.h"

#define F_AVAIL VRING_PACKED_DESC_F_AVAIL
#define F_USED VRING_PACKED_DESC_F_USED
/* The flag bits a lone direct descriptor is judged by. */
#define F_MASK (F_AVAIL | F_USED | VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT | \
		VRING_DESC_F_WRITE)

/* A ring position and the bits of its lap. */
struct pos {
	uint16_t idx;
	bool wrap;
	uint16_t avail_bits; /* flags of a descriptor available in this lap */
	uint16_t used_bits;  /* flags of one used in this lap */
};

static inline struct pos pos_at(uint16_t idx, bool wrap)
{
	return (struct pos){
		.idx = idx, .wrap = wrap,
		.avail_bits = wrap ? F_AVAIL : F_USED,
		.used_bits = wrap ? F_AVAIL | F_USED : 0,
	};
}

static inline void pos_next(struct pos *p, uint32_t size)
{
	if (++p->idx == size) {
		p->idx = 0;
		p->wrap = !p->wrap;
		p->avail_bits ^= F_AVAIL | F_USED;
		p->used_bits ^= F_AVAIL | F_USED;
	}
}

/* Is a descriptor with @flags available at all (of any kind)? */
static inline bool desc_is_avail(uint16_t flags, uint16_t avail_bits)
{
	return (flags & (F_AVAIL | F_USED)) == avail_bits;
}

/* The queue moved past @k buffers, to @p: both positions, counters. */
static void finish(struct vhu_vq *vq, const struct pos *p, unsigned k,
		   const struct vhu_region *hint)
{
	vq->last_avail_idx = vq->used_idx = p->idx;
	vq->avail_wrap = vq->used_wrap = p->wrap;
	vq->rhint = hint;
	vq->used_since_signal += k;
	vq->pending_used = (uint16_t)(vq->pending_used + k);
	vhu_stat_add(&vq->st_popped, k);
	vhu_stat_add(&vq->st_pushed, k);
}

/*
 * Start fetching the buffer of the slot after @p, if the driver has made
 * it available: the guest wrote it on another core, and the copy of this
 * frame hides the wait.  Not before: the slot then still names a buffer
 * of the last lap, which the driver may be filling right now, and taking
 * its lines away from the driver's core slows the driver (guest-tx/64/
 * packed, +2.5%).  No acquire: a stale address is only a wasted hint.
 */
static inline void prefetch_next(const struct vring_packed_desc *ring,
				 const struct pos *p, uint32_t size,
				 const struct vhu_region *hint, int write)
{
	uint16_t next = p->idx + 1u;
	uint64_t off;

	if (!hint || next == size ||
	    !desc_is_avail(ld16(&ring[next].flags), p->avail_bits))
		return;
	off = ld64(&ring[next].addr) - hint->gpa;
	if (off < hint->size) {
		if (write)
			__builtin_prefetch(hint->host + off, 1);
		else
			__builtin_prefetch(hint->host + off, 0);
	}
}

/* The buffer of descriptor @d (length @len) whole in one region, or NULL. */
static inline uint8_t *buf_va(const struct vhu_vq *vq,
			      const struct vring_packed_desc *d, uint32_t len,
			      const struct vhu_region **hint)
{
	uint64_t got = len;
	uint8_t *va = vhu_gpa_to_va_hint(vq->mt, ld64(&d->addr), &got, hint);

	return va && got == len ? va : NULL;
}

unsigned vhu_net_rx_packed(struct vhu_vq *vq, const struct vhu_net_pkt *pkts,
			   unsigned n, uint32_t hs, uint64_t *bytes, bool *empty)
{
	struct vring_packed_desc *ring = vq->desc;
	const struct vhu_region *hint = vq->rhint;
	uint32_t size = vq->size;
	struct pos p = pos_at(vq->last_avail_idx, vq->avail_wrap);
	uint16_t first = p.idx, head_flags = 0;
	uint64_t sum = 0;
	unsigned i;

	/* Another request in flight (the application's own vhu_vq_pop()):
	 * used descriptors do not go where the buffers came from. */
	*empty = false;
	if (vq->used_idx != p.idx || vq->used_wrap != p.wrap || n == 0)
		return 0;
	for (i = 0; i < n && i < size; i++) {
		const struct vhu_net_pkt *f = &pkts[i];
		struct vring_packed_desc *d = &ring[p.idx];
		/* Acquire, barrier [desc-flags]: as in vhu_vq_pop_packed(). */
		uint16_t flags = ld16_acquire(&d->flags);
		uint64_t need = (uint64_t)hs + f->len;
		struct virtio_net_hdr_v1 h;
		uint32_t len;
		uint8_t *va;

		if ((flags & F_MASK) != (p.avail_bits | VRING_DESC_F_WRITE)) {
			*empty = !desc_is_avail(flags, p.avail_bits);
			break;
		}
		len = ld32(&d->len);
		if (len < need || ld16(&d->id) >= size || !rx_meta_ok(vq, f))
			break;
		va = buf_va(vq, d, len, &hint);
		if (unlikely(!va))
			break;
		prefetch_next(ring, &p, size, hint, 1);
		if (likely(hs == 12 && (f->flags | f->gso_type) == 0)) {
			put_hdr(va, hdr_plain_12, 12);
		} else {
			h = rx_hdr(f, 1);
			put_hdr(va, &h, hs);
		}
		copy_small(va + hs, f->data, f->len);
		/* A migration in progress: the frame's pages, after it. */
		if (unlikely(vq->burst_log))
			vhu_dirty_log_host(vq, va, need);
		sum += f->len;
		/* Used in place: the id is the driver's own, still there. */
		st32(&d->len, (uint32_t)need);
		put_used_tag(d, 1);
		if (i == 0)
			head_flags = p.used_bits | VRING_DESC_F_WRITE;
		else /* Release: this slot's length before its flags. */
			st16_release(&d->flags, p.used_bits | VRING_DESC_F_WRITE);
		pos_next(&p, size);
	}
	if (i == 0)
		return 0;
	/* Release, barrier [used-flags]: as in vhu_vq_push_packed(); the
	 * driver takes used buffers in ring order, from this one. */
	st16_release(&ring[first].flags, head_flags);
	if (unlikely(vq->burst_log))
		vhu_dirty_log_descs(vq, first, i);
	finish(vq, &p, i, hint);
	*bytes += sum;
	return i;
}

unsigned vhu_net_tx_packed(struct vhu_vq *vq, struct vhu_net_pkt *pkts,
			   void *const *bufs, uint32_t buf_len, unsigned n,
			   uint32_t hs, uint64_t *bytes, bool *empty)
{
	struct vring_packed_desc *ring = vq->desc;
	const struct vhu_region *hint = vq->rhint;
	uint32_t size = vq->size;
	struct pos p = pos_at(vq->last_avail_idx, vq->avail_wrap);
	uint16_t first = p.idx, head_flags = p.used_bits, last_id = 0;
	bool in_order = vq->in_order;
	uint64_t sum = 0;
	unsigned i;

	*empty = false;
	if (vq->used_idx != p.idx || vq->used_wrap != p.wrap || n == 0)
		return 0;
	for (i = 0; i < n && i < size; i++) {
		struct vring_packed_desc *d = &ring[p.idx];
		/* Acquire, barrier [desc-flags]: as in vhu_vq_pop_packed(). */
		uint16_t flags = ld16_acquire(&d->flags);
		struct virtio_net_hdr_v1 h = { 0 };
		uint32_t len, flen;
		uint16_t id;
		uint8_t *va;

		if ((flags & F_MASK) != p.avail_bits) {
			*empty = !desc_is_avail(flags, p.avail_bits);
			break;
		}
		len = ld32(&d->len);
		id = ld16(&d->id);
		if (len < hs || len - hs > buf_len || id >= size)
			break;
		va = buf_va(vq, d, len, &hint);
		if (unlikely(!va))
			break;
		flen = len - hs;
		prefetch_next(ring, &p, size, hint, 0);
		copy_hdr(&h, va, hs);
		if (unlikely(!tx_meta_ok(vq, &h, flen)))
			break;
		copy_small(bufs[i], va + hs, flen);
		pkts[i] = tx_pkt(bufs[i], flen, &h);
		sum += flen;
		last_id = id;
		/* With IN_ORDER one used descriptor stands for the batch
		 * (below) and the others get skip marks; else each slot is
		 * used in place. */
		if (!in_order) {
			st32(&d->len, 0);
			put_used_tag(d, 1);
			if (i > 0) /* Release: this slot's length before its flags. */
				st16_release(&d->flags, p.used_bits);
		} else if (i > 0) {
			put_skip_mark(d);
		}
		pos_next(&p, size);
	}
	if (i == 0)
		return 0;
	if (in_order) {
		/* VIRTIO 1.2 §2.8.20: the last buffer's id at the batch's
		 * first slot; the driver counts the buffers before it. */
		st16(&ring[first].id, last_id);
		st32(&ring[first].len, 0);
		put_used_tag(&ring[first], i);
	}
	/* Release, barrier [used-flags]: as in vhu_vq_push_packed(). */
	st16_release(&ring[first].flags, head_flags);
	if (unlikely(vq->burst_log)) /* every slot got a length or a mark */
		vhu_dirty_log_descs(vq, first, i);
	finish(vq, &p, i, hint);
	*bytes += sum;
	return i;
}
