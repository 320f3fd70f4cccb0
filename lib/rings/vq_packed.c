/* SPDX-License-Identifier: BSD-3-Clause */
/* Packed virtqueues (VIRTIO 1.2 §2.8), device side. */
#include "rings/vq.h"

#include <errno.h>

/* Is a descriptor with @flags available in the lap of wrap counter @wrap? */
static inline bool desc_avail(uint16_t flags, bool wrap)
{
	bool avail = flags & VRING_PACKED_DESC_F_AVAIL;
	bool used = flags & VRING_PACKED_DESC_F_USED;

	return avail == wrap && used != wrap;
}

/* Every entry of a packed indirect table is one buffer; only WRITE counts. */
static int walk_indirect(struct vhu_vq *vq, struct vhu_chain *c, uint64_t addr,
			 uint32_t len, uint16_t slot)
{
	const struct vring_packed_desc *t = vhu_vq_indirect_table(vq, c, addr, len);
	uint32_t n = len / sizeof(*t);

	if (unlikely(!t))
		return vhu_vq_fail(vq, "slot %u: %s", slot, c->why);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t a = ld64(&t[i].addr);
		uint32_t l = ld32(&t[i].len);
		uint16_t f = ld16(&t[i].flags);
		int rc = chain_add(c, a, l, f & VRING_DESC_F_WRITE);

		if (unlikely(rc)) {
			if (rc == -ENOBUFS)
				return rc;
			return vhu_vq_fail(vq, "slot %u indirect entry %u: %s", slot,
					   i, c->why);
		}
	}
	return 0;
}

/*
 * Walk the chain starting at vq->last_avail_idx, whose first flags are
 * @flags.  On success the request's buffer id and descriptor count are
 * set and *pos / *wrap point past the chain.
 */
static int walk_chain(struct vhu_vq *vq, uint16_t flags, struct vhu_chain *c,
		      struct vhu_req *req, uint16_t *pos, bool *wrap)
{
	const struct vring_packed_desc *ring = vq->desc;
	uint16_t slot = vq->last_avail_idx, first = slot;
	bool w = vq->avail_wrap;
	uint32_t count = 0;

	for (;;) {
		const struct vring_packed_desc *d = &ring[slot];
		uint64_t addr = ld64(&d->addr);
		uint32_t len = ld32(&d->len);
		uint16_t id = ld16(&d->id);
		int rc;

		if (count > 0) {
			flags = ld16(&d->flags);
			if (unlikely(!desc_avail(flags, w)))
				return vhu_vq_fail(vq, "chain at slot %u: descriptor "
						   "%u is not available in this lap "
						   "(flags 0x%x)", first, slot, flags);
		}
		if (flags & VRING_DESC_F_INDIRECT) {
			if (unlikely(!vq->indirect))
				return vhu_vq_fail(vq, "indirect descriptor without "
						   "VIRTIO_F_INDIRECT_DESC (slot %u)",
						   slot);
			if (unlikely(count > 0 || (flags & VRING_DESC_F_NEXT)))
				return vhu_vq_fail(vq, "indirect descriptor chained "
						   "with others (slot %u)", slot);
			rc = walk_indirect(vq, c, addr, len, slot);
		} else {
			rc = chain_add(c, addr, len, flags & VRING_DESC_F_WRITE);
			if (unlikely(rc == -EIO))
				return vhu_vq_fail(vq, "slot %u: %s (addr 0x%llx len "
						   "%u)", slot, c->why,
						   (unsigned long long)addr, len);
		}
		if (unlikely(rc))
			return rc;
		count++;
		if (++slot == vq->size) {
			slot = 0;
			w = !w;
		}
		if (!(flags & VRING_DESC_F_NEXT)) {
			if (unlikely(id >= vq->size))
				return vhu_vq_fail(vq, "buffer id %u at slot %u; the "
						   "ring has %u", id, first, vq->size);
			req->id = id;
			req->ndesc = (uint16_t)count;
			*pos = slot;
			*wrap = w;
			return 0;
		}
		if (unlikely(count >= vq->size))
			return vhu_vq_fail(vq, "chain at slot %u longer than the "
					   "ring (%u)", first, vq->size);
	}
}

int vhu_vq_take_stored(struct vhu_vq *vq, const struct vhu_ifl_stored *d,
		       uint32_t n, struct vhu_req *req, struct vhu_seg *segs,
		       unsigned nsegs)
{
	struct vhu_chain c;
	int rc;

	/* Checked when the region was read (inflight_start.c): 1 .. size
	 * descriptors, NEXT on all but the last, INDIRECT alone, id < size. */
	chain_init(&c, vq, segs, nsegs);
	for (uint32_t k = 0; k < n; k++) {
		if (d[k].flags & VRING_DESC_F_INDIRECT) {
			if (unlikely(!vq->indirect))
				return vhu_vq_fail(vq, "inflight indirect descriptor "
						   "without VIRTIO_F_INDIRECT_DESC");
			rc = walk_indirect(vq, &c, d[k].addr, d[k].len, 0);
		} else {
			rc = chain_add(&c, d[k].addr, d[k].len,
				       d[k].flags & VRING_DESC_F_WRITE);
			if (unlikely(rc == -EIO))
				return vhu_vq_fail(vq, "inflight buffer %u: %s (addr "
						   "0x%llx len %u)", d[n - 1].id,
						   c.why, (unsigned long long)d[k].addr,
						   d[k].len);
		}
		if (unlikely(rc))
			return rc;
	}
	chain_to_req(&c, req);
	req->id = d[n - 1].id;
	req->ndesc = (uint16_t)n;
	return (int)c.n;
}

/* The common request: one direct descriptor @d (first flags @flags) in
 * one region (req_single()); false leaves it to walk_chain(). */
static inline bool pop_single(const struct vring_packed_desc *d, uint16_t flags,
			      uint32_t size, const struct vhu_memtable *mt,
			      const struct vhu_region **hint, struct vhu_req *req,
			      struct vhu_seg *seg)
{
	uint16_t id = ld16(&d->id);

	if (flags & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT) || id >= size)
		return false;
	return req_single(mt, hint, id, ld64(&d->addr), ld32(&d->len),
			  flags & VRING_DESC_F_WRITE, req, seg);
}

/*
 * Any request at vq->last_avail_idx (first flags @flags), into @segs (room
 * for @cap): the segments it used, and the queue's position moved past it;
 * or -errno.  Out of line: the burst loop stays small.
 */
static __attribute__((noinline)) int pop_chain(struct vhu_vq *vq, uint16_t flags,
					       struct vhu_req *req,
					       struct vhu_seg *segs, unsigned cap)
{
	struct vhu_chain c;
	uint16_t pos = 0; /* set by walk_chain() when it returns 0 */
	bool wrap = false;
	int rc;

	chain_init(&c, vq, segs, cap);
	rc = walk_chain(vq, flags, &c, req, &pos, &wrap);
	if (rc)
		return rc;
	chain_to_req(&c, req);
	vq->last_avail_idx = pos;
	vq->avail_wrap = wrap;
	return (int)c.n;
}

/*
 * Four requests at slots @idx..@idx+3 (same lap), each one direct
 * descriptor in one region: the usual burst, available at one look at the
 * four flags.  False when any of them is not so (what was filled is then
 * filled again by the one-by-one path).
 */
static inline bool pop_four(const struct vring_packed_desc *ring, uint16_t idx,
			    bool wrap, uint32_t size, const struct vhu_memtable *mt,
			    const struct vhu_region **hint, struct vhu_req *reqs,
			    struct vhu_seg *segs)
{
	const uint16_t mask = VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED |
			      VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT;
	const uint16_t want = wrap ? VRING_PACKED_DESC_F_AVAIL : VRING_PACKED_DESC_F_USED;
	const struct vring_packed_desc *d = &ring[idx];
	uint16_t f[4];
	unsigned i;

	for (i = 0; i < 4; i++)
		f[i] = ld16(&d[i].flags);
	if (((f[0] & mask) ^ want) | ((f[1] & mask) ^ want) |
	    ((f[2] & mask) ^ want) | ((f[3] & mask) ^ want))
		return false;
	/* Barrier [desc-flags]: as in vhu_vq_pop_packed(), for all four. */
	atomic_thread_fence(memory_order_acquire);
	for (i = 0; i < 4; i++)
		if (!pop_single(&d[i], f[i], size, mt, hint, &reqs[i], &segs[i]))
			return false;
	return true;
}

int vhu_vq_pop_packed(struct vhu_vq *vq, struct vhu_req *reqs, unsigned max,
		      struct vhu_seg *segs, unsigned nsegs)
{
	const struct vring_packed_desc *ring = vq->desc;
	const struct vhu_memtable *mt = vq->mt;
	const struct vhu_region *hint = vq->rhint;
	uint32_t size = vq->size;
	uint16_t idx = vq->last_avail_idx;
	bool wrap = vq->avail_wrap;
	unsigned n = 0, used_segs = 0;

	while (n < max) {
		if (n + 4 <= max && used_segs + 4 <= nsegs && idx + 4u <= size &&
		    pop_four(ring, idx, wrap, size, mt, &hint, &reqs[n], &segs[used_segs])) {
			n += 4;
			used_segs += 4;
			idx = (uint16_t)(idx + 4);
			if (idx == size) {
				idx = 0;
				wrap = !wrap;
			}
			continue;
		}
		/* Acquire, barrier [desc-flags]: the descriptors are read after
		 * the head's flags; pairs with the driver's write barrier before
		 * it makes the head available. */
		uint16_t flags = ld16_acquire(&ring[idx].flags);
		int rc;

		if (!desc_avail(flags, wrap))
			break;
		if (likely(used_segs < nsegs) &&
		    pop_single(&ring[idx], flags, size, mt, &hint, &reqs[n],
			       &segs[used_segs])) {
			used_segs++;
			n++;
			if (++idx == size) {
				idx = 0;
				wrap = !wrap;
			}
			continue;
		}
		/* The full walk works on the queue's own fields. */
		vq->last_avail_idx = idx;
		vq->avail_wrap = wrap;
		vq->rhint = hint;
		rc = pop_chain(vq, flags, &reqs[n], segs + used_segs, nsegs - used_segs);
		hint = vq->rhint;
		if (unlikely(rc < 0)) {
			if (rc == -ENOBUFS && n > 0)
				break;
			return rc;
		}
		used_segs += (unsigned)rc;
		idx = vq->last_avail_idx;
		wrap = vq->avail_wrap;
		n++;
	}
	vq->last_avail_idx = idx;
	vq->avail_wrap = wrap;
	vq->rhint = hint;
	return (int)n;
}

/*
 * With VIRTIO_F_IN_ORDER, a batch of requests the device only read
 * (nothing written, no writable buffer) goes back as one used descriptor:
 * the last one's id at the batch's first slot, the ring moving past all of
 * them (VIRTIO 1.2 §2.8.20).  False when the batch is not such.
 */
static bool push_in_order(struct vhu_vq *vq, const struct vhu_req *reqs,
			  unsigned n)
{
	struct vring_packed_desc *ring = vq->desc;
	uint32_t size = vq->size, used = 0, slot;
	uint16_t flags = vq->used_wrap ? VRING_PACKED_DESC_F_AVAIL |
					 VRING_PACKED_DESC_F_USED : 0;

	for (unsigned i = 0; i < n; i++) {
		if (reqs[i].in_len || reqs[i].id >= size || reqs[i].ndesc == 0 ||
		    reqs[i].ndesc > size)
			return false; /* the general path checks and says */
		used += reqs[i].ndesc;
	}
	if (used > size)
		return false;
	st16(&ring[vq->used_idx].id, reqs[n - 1].id);
	st32(&ring[vq->used_idx].len, 0);
	put_used_tag(&ring[vq->used_idx], used);
	put_skip_marks(ring, size, vq->used_idx, used);
	/* Release, barrier [used-flags]: as in vhu_vq_push_packed(). */
	st16_release(&ring[vq->used_idx].flags, flags);
	vq->used_since_signal += used;
	slot = vq->used_idx + used;
	if (slot >= size) {
		slot -= size;
		vq->used_wrap = !vq->used_wrap;
	}
	vq->used_idx = (uint16_t)slot;
	return true;
}

int vhu_vq_push_packed(struct vhu_vq *vq, const struct vhu_req *reqs,
		       const uint32_t *written, unsigned n)
{
	struct vring_packed_desc *ring = vq->desc;
	uint16_t slot = vq->used_idx, head_slot = slot, head_flags = 0;
	uint32_t size = vq->size, used = 0;
	bool wrap = vq->used_wrap;
	/* A used descriptor has both bits equal to the device's wrap counter. */
	uint16_t used_bits = wrap ? VRING_PACKED_DESC_F_AVAIL |
				    VRING_PACKED_DESC_F_USED : 0;

	if (vq->in_order && !written && n > 1 && push_in_order(vq, reqs, n))
		return 0;
	for (unsigned i = 0; i < n; i++) {
		uint32_t len = written ? written[i] : 0;
		uint16_t flags = used_bits;

		if (unlikely(reqs[i].id >= size || reqs[i].ndesc == 0 ||
			     reqs[i].ndesc > size))
			return -EINVAL;
		if (len > reqs[i].in_len)
			len = reqs[i].in_len;
		if (len)
			flags |= VRING_DESC_F_WRITE;
		st16(&ring[slot].id, reqs[i].id);
		st32(&ring[slot].len, len);
		put_used_tag(&ring[slot], reqs[i].ndesc);
		if (unlikely(reqs[i].ndesc > 1))
			put_skip_marks(ring, size, slot, reqs[i].ndesc);
		if (i == 0)
			head_flags = flags;
		else
			st16_release(&ring[slot].flags, flags);
		used += reqs[i].ndesc;
		slot = (uint16_t)(slot + reqs[i].ndesc);
		if (slot >= size) {
			slot = (uint16_t)(slot - size);
			wrap = !wrap;
			used_bits ^= VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED;
		}
	}
	vq->used_since_signal += used;
	/* Release, barrier [used-flags]: the whole batch before its first
	 * flags, which the driver polls; pairs with the driver's read barrier
	 * after it sees a used descriptor. */
	st16_release(&ring[head_slot].flags, head_flags);
	vq->used_idx = slot;
	vq->used_wrap = wrap;
	return 0;
}

bool vhu_vq_need_call_packed(struct vhu_vq *vq)
{
	uint16_t old = vq->signalled_used, new_idx = vq->used_idx;
	bool valid = vq->signalled_used_valid;
	bool wrap = vq->used_wrap, old_wrap = vq->signalled_used_wrap;
	uint16_t off_wrap = ld16(VRING_EVENT_OFF_WRAP(vq->avail));
	uint16_t flags = ld16(VRING_EVENT_FLAGS(vq->avail));
	uint32_t moved = vq->used_since_signal;
	uint16_t off;

	vq->signalled_used = new_idx;
	vq->signalled_used_wrap = wrap;
	vq->signalled_used_valid = true;
	vq->used_since_signal = 0;
	if (flags == VRING_EVENT_F_DISABLE)
		return false;
	/* More than a lap since the last signal: the wrap counters cannot
	 * tell how many, so the event offset cannot be placed; signal. */
	if (flags != VRING_EVENT_F_DESC || !vq->event_idx || !valid ||
	    moved > vq->size)
		return true;
	/* Count in the lap of the new index: the old one and the driver's
	 * event offset move back a lap when they are from the previous one. */
	if (old_wrap != wrap)
		old = (uint16_t)(old - vq->size);
	off = off_wrap & VHU_PACKED_IDX_MASK;
	if (wrap != (bool)(off_wrap >> VHU_PACKED_WRAP_BIT))
		off = (uint16_t)(off - vq->size);
	return vring_need_event(off, new_idx, old);
}

int vhu_vq_set_kicks_packed(struct vhu_vq *vq, bool on)
{
	void *ev = vq->used; /* device event suppression */

	if (!on) {
		st16(VRING_EVENT_FLAGS(ev), VRING_EVENT_F_DISABLE);
		return 0;
	}
	if (vq->event_idx) {
		st16(VRING_EVENT_OFF_WRAP(ev),
		     (uint16_t)(vq->last_avail_idx |
				((uint16_t)vq->avail_wrap << VHU_PACKED_WRAP_BIT)));
		st16(VRING_EVENT_FLAGS(ev), VRING_EVENT_F_DESC);
	} else {
		st16(VRING_EVENT_FLAGS(ev), VRING_EVENT_F_ENABLE);
	}
	/* Barrier [kick-enable]: as for split rings. */
	vhu_smp_mb();
	return vq_has_avail(vq);
}
