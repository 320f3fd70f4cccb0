/* SPDX-License-Identifier: BSD-3-Clause */
/* Split virtqueues (VIRTIO 1.2 §2.7), device side. */
#include "rings/vq.h"

#include <errno.h>

/* Walk the chain at @head into @c.  0, -ENOBUFS, or -EIO (queue failed). */
static int walk_chain(struct vhu_vq *vq, uint16_t head, struct vhu_chain *c)
{
	const struct vring_desc *table = vq->desc;
	uint32_t table_size = vq->size;
	uint32_t count = 0;
	uint16_t i = head;
	bool in_indirect = false;

	for (;;) {
		const struct vring_desc *d = &table[i];
		/* Each field read once: the guest may rewrite them under us. */
		uint64_t addr = ld64(&d->addr);
		uint32_t len = ld32(&d->len);
		uint16_t flags = ld16(&d->flags);
		uint16_t next = ld16(&d->next);
		int rc;

		if (unlikely(++count > table_size))
			return vhu_vq_fail(vq, "descriptor chain at head %u is longer "
					   "than its table (%u): a loop", head,
					   table_size);
		if (flags & VRING_DESC_F_INDIRECT) {
			if (unlikely(in_indirect))
				return vhu_vq_fail(vq, "indirect descriptor inside "
						   "an indirect table (head %u)", head);
			if (unlikely(!vq->indirect))
				return vhu_vq_fail(vq, "indirect descriptor without "
						   "VIRTIO_F_INDIRECT_DESC (head %u)",
						   head);
			if (unlikely(flags & VRING_DESC_F_NEXT))
				return vhu_vq_fail(vq, "descriptor with both INDIRECT "
						   "and NEXT (head %u)", head);
			table = vhu_vq_indirect_table(vq, c, addr, len);
			if (unlikely(!table))
				return vhu_vq_fail(vq, "head %u: %s", head, c->why);
			table_size = len / sizeof(struct vring_desc);
			in_indirect = true;
			count = 0;
			i = 0;
			continue;
		}
		rc = chain_add(c, addr, len, flags & VRING_DESC_F_WRITE);
		if (unlikely(rc)) {
			if (rc == -ENOBUFS)
				return rc;
			return vhu_vq_fail(vq, "head %u: %s (addr 0x%llx len %u)",
					   head, c->why, (unsigned long long)addr, len);
		}
		if (!(flags & VRING_DESC_F_NEXT))
			return 0;
		if (unlikely(next >= table_size))
			return vhu_vq_fail(vq, "head %u: next %u beyond the table "
					   "(%u entries)", head, next, table_size);
		i = next;
	}
}

/* The common request: one direct descriptor in one region (req_single()).
 * The full walk, when this declines, reads the descriptor again. */
static inline bool pop_single(const struct vring_desc *table,
			      const struct vhu_memtable *mt,
			      const struct vhu_region **hint, uint16_t head,
			      struct vhu_req *req, struct vhu_seg *seg)
{
	const struct vring_desc *d = &table[head];
	uint16_t flags = ld16(&d->flags);

	if (flags & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT))
		return false;
	return req_single(mt, hint, head, ld64(&d->addr), ld32(&d->len),
			  flags & VRING_DESC_F_WRITE, req, seg);
}

int vhu_vq_pop_split(struct vhu_vq *vq, struct vhu_req *reqs, unsigned max,
		     struct vhu_seg *segs, unsigned nsegs)
{
	const struct vring_desc *desc = vq->desc;
	const struct vhu_memtable *mt = vq->mt;
	const uint16_t *avail_ring = VRING_AVAIL_RING(vq->avail, 0);
	uint16_t last = vq->last_avail_idx;
	uint32_t size = vq->size;
	uint16_t mask = (uint16_t)(size - 1);
	unsigned n = 0, used_segs = 0, take;

	/* Fewer than @max known: look again (also after a rewind, which
	 * leaves the shadow index ahead of last_avail_idx). */
	if ((uint16_t)(vq->shadow_avail_idx - last) < max) {
		/* Acquire, barrier [avail-idx]: ring entries are read after the
		 * index; pairs with the driver's write barrier before it
		 * publishes avail->idx. */
		uint16_t idx = ld16_acquire(VRING_AVAIL_IDX(vq->avail));
		uint16_t navail = (uint16_t)(idx - last);

		if (unlikely(navail > size))
			return vhu_vq_fail(vq, "avail index %u is %u entries ahead "
					   "of %u; the ring has %u", idx, navail,
					   last, size);
		vq->shadow_avail_idx = idx;
	}
	/* This call takes what is known to be available, up to @max. */
	take = (uint16_t)(vq->shadow_avail_idx - last);
	if (take > max)
		take = max;
	while (n < take) {
		uint16_t head = ld16(&avail_ring[last & mask]);
		struct vhu_chain c;
		int rc;

		if (unlikely(head >= size))
			return vhu_vq_fail(vq, "avail ring entry %u is head %u; the "
					   "ring has %u", last & mask, head, size);
		if (likely(used_segs < nsegs) &&
		    pop_single(desc, mt, &vq->rhint, head, &reqs[n], &segs[used_segs])) {
			used_segs++;
			last++;
			n++;
			continue;
		}
		chain_init(&c, vq, segs + used_segs, nsegs - used_segs);
		rc = walk_chain(vq, head, &c);
		if (unlikely(rc)) {
			if (rc == -ENOBUFS && n > 0)
				break;
			return rc;
		}
		chain_to_req(&c, &reqs[n]);
		reqs[n].id = head;
		reqs[n].ndesc = 1;
		used_segs += c.n;
		last++;
		n++;
	}
	vq->last_avail_idx = last;
	return (int)n;
}

int vhu_vq_take_head(struct vhu_vq *vq, uint16_t head, struct vhu_req *req,
		     struct vhu_seg *segs, unsigned nsegs)
{
	struct vhu_chain c;
	int rc;

	if (unlikely(head >= vq->size))
		return vhu_vq_fail(vq, "inflight head %u; the ring has %u", head,
				   vq->size);
	chain_init(&c, vq, segs, nsegs);
	rc = walk_chain(vq, head, &c);
	if (rc)
		return rc;
	chain_to_req(&c, req);
	req->id = head;
	req->ndesc = 1;
	return (int)c.n;
}

int vhu_vq_push_split(struct vhu_vq *vq, const struct vhu_req *reqs,
		      const uint32_t *written, unsigned n)
{
	uint16_t idx = vq->used_idx;
	uint16_t mask = (uint16_t)(vq->size - 1);

	if (n > vq->size)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		struct vring_used_elem *e = VRING_USED_RING(vq->used, (idx + i) & mask);
		uint32_t len = written ? written[i] : 0;

		if (unlikely(reqs[i].id >= vq->size))
			return -EINVAL;
		/* Never tell the guest more was written than it offered. */
		if (len > reqs[i].in_len)
			len = reqs[i].in_len;
		/* Only what changed: an entry a lap ago usually held this id
		 * and length, and the driver then keeps its copy of the line. */
		if (ld32(&e->id) != reqs[i].id || ld32(&e->len) != len) {
			st32(&e->id, reqs[i].id);
			st32(&e->len, len);
		}
	}
	/* Release, barrier [used-idx]: the entries before the index; pairs
	 * with the driver's read barrier after it reads used->idx. */
	st16_release(VRING_USED_IDX(vq->used), (uint16_t)(idx + n));
	vq->used_idx = (uint16_t)(idx + n);
	return 0;
}

bool vhu_vq_need_call_split(struct vhu_vq *vq)
{
	uint16_t old = vq->signalled_used, new_idx = vq->used_idx;
	bool valid = vq->signalled_used_valid;

	vq->signalled_used = new_idx;
	vq->signalled_used_valid = true;
	if (!vq->event_idx)
		return !(ld16(VRING_AVAIL_FLAGS(vq->avail)) & VRING_AVAIL_F_NO_INTERRUPT);
	if (!valid)
		return true;
	return vring_need_event(ld16(VRING_USED_EVENT(vq->avail, vq->size)),
				new_idx, old);
}

int vhu_vq_set_kicks_split(struct vhu_vq *vq, bool on)
{
	if (!vq->event_idx)
		st16(VRING_USED_FLAGS(vq->used), on ? 0 : VRING_USED_F_NO_NOTIFY);
	else if (on)
		st16(VRING_AVAIL_EVENT(vq->used, vq->size), vq->last_avail_idx);
	if (!on)
		return 0;
	/* Barrier [kick-enable]: the flag/event store before re-reading the
	 * avail index; pairs with the driver's full barrier between publishing
	 * avail->idx and reading our flags/avail_event.  Without it a buffer
	 * added meanwhile would get no kick and no poll. */
	vhu_smp_mb();
	return ld16(VRING_AVAIL_IDX(vq->avail)) != vq->last_avail_idx;
}
