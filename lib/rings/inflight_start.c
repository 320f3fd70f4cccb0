/* SPDX-License-Identifier: BSD-3-Clause */
/* Inflight tracking when a queue starts (control thread): the region's
 * part is repaired and checked, and the requests still in flight are
 * listed, oldest first, for vhu_vq_pop() to hand out again. */
#include "rings/inflight_ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct by_counter {
	uint64_t counter;
	uint16_t entry;
};

static int cmp_counter(const void *a, const void *b)
{
	const struct by_counter *x = a, *y = b;

	return x->counter < y->counter ? -1 : x->counter > y->counter;
}

/* Sort @n entries oldest first; false when two share a counter (no
 * back-end gives two requests one number: the region was rewritten). */
static bool sort_by_counter(struct by_counter *v, uint32_t n)
{
	qsort(v, n, sizeof(*v), cmp_counter);
	for (uint32_t i = 1; i < n; i++)
		if (v[i].counter == v[i - 1].counter)
			return false;
	return true;
}

#define BAD(vq, ...) (vhu_err(&(vq)->dev->lg, __VA_ARGS__), -EPROTO)

/* A queue's part written before (version not 0): one this code knows. */
static int check_header(struct vhu_vq *vq, uint16_t version, uint16_t desc_num)
{
	if (version != VHU_INFLIGHT_VERSION)
		return BAD(vq, "queue %u: inflight region version %u (1 known)",
			   vq->index, version);
	if (desc_num != vq->size)
		return BAD(vq, "queue %u: inflight region has %u entries, the ring "
			   "%u", vq->index, desc_num, vq->size);
	return 0;
}

/* ---- Split ---- */

static void init_split(struct vhu_vq *vq, struct vhu_ifl_split *r)
{
	memset(r->desc, 0, (size_t)vq->size * sizeof(r->desc[0]));
	st64(&r->features, 0);
	st16(&r->desc_num, (uint16_t)vq->size);
	st16(&r->last_batch_head, 0);
	st16(&r->used_idx, ld16(VRING_USED_IDX(vq->used)));
	ifl_order(vq);
	st16(&r->version, VHU_INFLIGHT_VERSION);
}

static int start_split(struct vhu_vq *vq, struct vhu_ifl_queue *q)
{
	struct vhu_ifl_split *r = q->region;
	uint32_t size = vq->size, count = 0;
	uint16_t version = ld16(&r->version), used, mark, outstanding;
	struct by_counter *v;
	int rc;

	if (version == 0) {
		init_split(vq, r);
		return 0;
	}
	rc = check_header(vq, version, ld16(&r->desc_num));
	if (rc)
		return rc;
	used = ld16(VRING_USED_IDX(vq->used));
	mark = ld16(&r->used_idx);
	if (mark != used) {
		/* The last batch was published: its entries are not in flight. */
		uint16_t batch = (uint16_t)(used - mark), h = ld16(&r->last_batch_head);

		if (batch > size)
			return BAD(vq, "queue %u: inflight used index %u is %u behind "
				   "the ring's %u", vq->index, mark, batch, used);
		for (uint16_t k = 0; k < batch; k++) {
			if (h >= size)
				return BAD(vq, "queue %u: inflight batch list reaches "
					   "entry %u", vq->index, h);
			st8(&r->desc[h].inflight, 0);
			h = ld16(&r->desc[h].next);
		}
		ifl_order(vq);
		st16(&r->used_idx, used);
	}
	v = malloc(size * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (uint32_t i = 0; i < size; i++) {
		uint8_t f = ld8(&r->desc[i].inflight);

		if (f > 1) {
			free(v);
			return BAD(vq, "queue %u: inflight flag %u at entry %u",
				   vq->index, f, i);
		}
		if (f)
			v[count++] = (struct by_counter){ ld64(&r->desc[i].counter),
							  (uint16_t)i };
	}
	outstanding = (uint16_t)(ld16(VRING_AVAIL_IDX(vq->avail)) - used);
	if (outstanding > size || count > outstanding) {
		free(v);
		return BAD(vq, "queue %u: inflight region has %u requests in flight; "
			   "the driver has %u outstanding", vq->index, count,
			   outstanding);
	}
	if (!sort_by_counter(v, count)) {
		free(v);
		return BAD(vq, "queue %u: two inflight requests share a counter",
			   vq->index);
	}
	q->resubmit = malloc((count ? count : 1) * sizeof(uint16_t));
	if (!q->resubmit) {
		free(v);
		return -ENOMEM;
	}
	for (uint32_t k = 0; k < count; k++)
		q->resubmit[k] = v[k].entry;
	q->nresubmit = (uint16_t)count;
	q->counter = count ? v[count - 1].counter + 1 : 0;
	free(v);
	/* Taken from the avail ring: those used and those in flight. */
	vq->last_avail_idx = (uint16_t)(used + count);
	return 1;
}

/* ---- Packed ---- */

static void init_packed(struct vhu_vq *vq, struct vhu_ifl_packed *r)
{
	for (uint32_t i = 0; i < vq->size; i++) {
		memset(&r->desc[i], 0, sizeof(r->desc[i]));
		st16(&r->desc[i].next, (uint16_t)(i + 1));
	}
	st64(&r->features, 0);
	st16(&r->desc_num, (uint16_t)vq->size);
	st16(&r->free_head, 0);
	st16(&r->old_free_head, 0);
	st16(&r->used_idx, vq->used_idx);
	st16(&r->old_used_idx, vq->used_idx);
	st8(&r->used_wrap_counter, vq->used_wrap);
	st8(&r->old_used_wrap_counter, vq->used_wrap);
	ifl_order(vq);
	st16(&r->version, VHU_INFLIGHT_VERSION);
}

/* Roll a cut-short return back, or commit it when the guest was told. */
static int repair_packed(struct vhu_vq *vq, struct vhu_ifl_packed *r)
{
	uint16_t ui = ld16(&r->used_idx), oui = ld16(&r->old_used_idx);
	uint8_t uw = ld8(&r->used_wrap_counter), ouw = ld8(&r->old_used_wrap_counter);
	uint16_t fh = ld16(&r->free_head), ofh = ld16(&r->old_free_head);

	if (ui >= vq->size || oui >= vq->size || uw > 1 || ouw > 1 ||
	    fh > vq->size || ofh > vq->size)
		return BAD(vq, "queue %u: inflight indexes out of range (used %u/%u, "
			   "wrap %u/%u, free %u/%u)", vq->index, ui, oui, uw, ouw,
			   fh, ofh);
	if (ui != oui || uw != ouw) {
		const struct vring_packed_desc *ring = vq->desc;
		uint16_t f = ld16(&ring[oui].flags);
		bool told;

		/* The return cut short began at oui, in the lap of the new
		 * position, or the one before when it crossed the end of the
		 * ring (a whole lap: ui == oui): a cut inside the commit may
		 * have stored the new wrap into old_used_wrap_counter already
		 * (test_inflight found it). */
		ouw = ui > oui ? uw : !uw;
		told = (bool)(f & VRING_PACKED_DESC_F_AVAIL) == (bool)ouw &&
		       (bool)(f & VRING_PACKED_DESC_F_USED) == (bool)ouw;

		if (told) {
			st16(&r->old_free_head, fh);
			st8(&r->old_used_wrap_counter, uw);
			st16(&r->old_used_idx, ui);
			ofh = fh;
			oui = ui;
			ouw = uw;
		}
	}
	st16(&r->free_head, ofh);
	st16(&r->used_idx, oui);
	st8(&r->used_wrap_counter, ouw);
	vq->used_idx = oui;
	vq->used_wrap = ouw;
	return 0;
}

/* Walk the free list (clearing inflight on it) and collect the heads in
 * flight with their chains; every entry must be one or the other. */
static int collect_packed(struct vhu_vq *vq, struct vhu_ifl_queue *q,
			  struct vhu_ifl_packed *r, uint8_t *owner,
			  struct by_counter *v, uint32_t *nheads, uint32_t *ndescs)
{
	uint32_t size = vq->size, seen = 0, n = 0, descs = 0;
	uint16_t e = ld16(&r->free_head);

	enum { FREE = 1, CHAIN = 2 };
	while (e != size) {
		if (e > size || owner[e] || ++seen > size)
			return BAD(vq, "queue %u: inflight free list broken at "
				   "entry %u (out of range or a cycle)", vq->index, e);
		owner[e] = FREE;
		st8(&r->desc[e].inflight, 0);
		e = ld16(&r->desc[e].next);
	}
	for (uint32_t h = 0; h < size; h++) {
		uint8_t f = ld8(&r->desc[h].inflight);
		uint16_t num, last, id;

		if (owner[h] == FREE || !f)
			continue;
		if (f > 1 || owner[h])
			return BAD(vq, "queue %u: inflight entry %u: flag %u, or inside "
				   "another chain", vq->index, h, f);
		num = ld16(&r->desc[h].num);
		last = ld16(&r->desc[h].last);
		if (num == 0 || num > size)
			return BAD(vq, "queue %u: inflight head %u has %u descriptors",
				   vq->index, h, num);
		e = (uint16_t)h;
		for (uint16_t k = 0;; k++) {
			uint16_t fl = ld16(&r->desc[e].flags);
			bool is_last = k + 1 == num;

			if (owner[e])
				return BAD(vq, "queue %u: inflight chain of head %u "
					   "meets entry %u twice or a free one",
					   vq->index, h, e);
			owner[e] = CHAIN;
			if ((bool)(fl & VRING_DESC_F_NEXT) == is_last ||
			    ((fl & VRING_DESC_F_INDIRECT) && num != 1))
				return BAD(vq, "queue %u: inflight chain of head %u: "
					   "flags 0x%x at descriptor %u of %u",
					   vq->index, h, fl, k, num);
			if (is_last)
				break;
			e = ld16(&r->desc[e].next);
			if (e >= size)
				return BAD(vq, "queue %u: inflight chain of head %u "
					   "leaves the table", vq->index, h);
		}
		id = ld16(&r->desc[e].id);
		if (e != last || id >= size || q->entry_of_id[id] != VHU_IFL_NONE)
			return BAD(vq, "queue %u: inflight head %u: last entry %u (says "
				   "%u), buffer id %u (ring of %u, unique)", vq->index,
				   h, e, last, id, size);
		q->entry_of_id[id] = (uint16_t)h;
		v[n++] = (struct by_counter){ ld64(&r->desc[h].counter), (uint16_t)h };
		descs += num;
	}
	for (uint32_t i = 0; i < size; i++)
		if (!owner[i])
			return BAD(vq, "queue %u: inflight entry %u neither free nor in "
				   "flight", vq->index, i);
	*nheads = n;
	*ndescs = descs;
	return 0;
}

/* Copy each head's descriptors, oldest head first, into local memory: a
 * front-end rewriting the region later changes nothing handed out. */
static int copy_packed(struct vhu_ifl_queue *q, struct vhu_ifl_packed *r,
		       const struct by_counter *v, uint32_t n, uint32_t ndescs)
{
	uint32_t at = 0;

	q->resubmit = malloc((n ? n : 1) * sizeof(uint16_t));
	q->first = malloc((n + 1) * sizeof(uint32_t));
	q->stored = malloc((ndescs ? ndescs : 1) * sizeof(*q->stored));
	if (!q->resubmit || !q->first || !q->stored)
		return -ENOMEM;
	for (uint32_t k = 0; k < n; k++) {
		uint16_t e = v[k].entry, num = ld16(&r->desc[e].num);

		q->resubmit[k] = e;
		q->first[k] = at;
		for (uint16_t j = 0; j < num; j++) {
			q->stored[at++] = (struct vhu_ifl_stored){
				.addr = ld64(&r->desc[e].addr),
				.len = ld32(&r->desc[e].len),
				.flags = ld16(&r->desc[e].flags),
				.id = ld16(&r->desc[e].id),
			};
			e = ld16(&r->desc[e].next); /* checked by collect_packed() */
		}
	}
	q->first[n] = at;
	q->nresubmit = (uint16_t)n;
	q->counter = n ? v[n - 1].counter + 1 : 0;
	return 0;
}

static int start_packed(struct vhu_vq *vq, struct vhu_ifl_queue *q)
{
	struct vhu_ifl_packed *r = q->region;
	uint32_t size = vq->size, n = 0, ndescs = 0, pos;
	uint16_t version = ld16(&r->version);
	struct by_counter *v;
	uint8_t *owner;
	int rc;

	q->entry_of_id = malloc(size * sizeof(uint16_t));
	if (!q->entry_of_id)
		return -ENOMEM;
	for (uint32_t i = 0; i < size; i++)
		q->entry_of_id[i] = VHU_IFL_NONE;
	if (version == 0)
		return 0; /* set up by vhu_inflight_fresh() at the ring's position */
	rc = check_header(vq, version, ld16(&r->desc_num));
	if (rc)
		return rc;
	rc = repair_packed(vq, r);
	if (rc)
		return rc;
	owner = calloc(size, 1);
	v = malloc(size * sizeof(*v));
	rc = -ENOMEM;
	if (owner && v) {
		rc = collect_packed(vq, q, r, owner, v, &n, &ndescs);
		if (!rc && !sort_by_counter(v, n))
			rc = BAD(vq, "queue %u: two inflight requests share a counter",
				 vq->index);
		if (!rc)
			rc = copy_packed(q, r, v, n, ndescs);
	}
	free(owner);
	free(v);
	if (rc)
		return rc;
	/* Taken from the ring: those used and those in flight (ndescs is at
	 * most the ring: every entry was counted once). */
	pos = (uint32_t)vq->used_idx + ndescs;
	vq->avail_wrap = vq->used_wrap;
	if (pos >= size) {
		pos -= size;
		vq->avail_wrap = !vq->avail_wrap;
	}
	vq->last_avail_idx = (uint16_t)pos;
	return 1;
}

/* ---- Life ---- */

static void queue_free(struct vhu_ifl_queue *q)
{
	if (!q)
		return;
	free(q->resubmit);
	free(q->first);
	free(q->stored);
	free(q->entry_of_id);
	free(q->claimed);
	free(q);
}

void vhu_inflight_stop(struct vhu_vq *vq)
{
	queue_free(vq->ifl);
	vq->ifl = NULL;
}

int vhu_inflight_start(struct vhu_vq *vq)
{
	struct vhu_dev *dev = vq->dev;
	const struct vhu_inflight_map *m = dev->inflight;
	struct vhu_ifl_queue *q;
	uint64_t part;
	int rc;

	vhu_inflight_stop(vq);
	if (!vhu_has_protocol(dev, VHU_PF_INFLIGHT_SHMFD))
		return 0;
	if (!m) {
		vhu_warn(&dev->lg, "queue %u: INFLIGHT_SHMFD negotiated but no "
			 "SET_INFLIGHT_FD: the queue runs untracked", vq->index);
		return 0;
	}
	part = vhu_inflight_queue_bytes(m->queue_size, vq->packed);
	if (vq->index >= m->num_queues || m->queue_size != vq->size ||
	    part * m->num_queues > m->size)
		return BAD(vq, "queue %u (%s, %u entries) has no part in the inflight "
			   "region (%u queues of %u, %llu bytes)", vq->index,
			   vq->packed ? "packed" : "split", vq->size, m->num_queues,
			   m->queue_size, (unsigned long long)m->size);
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->region = m->base + part * vq->index;
	q->packed = vq->packed;
	q->claimed = calloc(vq->size, 1);
	if (!q->claimed) {
		free(q);
		return -ENOMEM;
	}
	rc = vq->packed ? start_packed(vq, q) : start_split(vq, q);
	if (rc < 0) {
		queue_free(q);
		return rc;
	}
	vq->ifl = q;
	if (q->nresubmit)
		vhu_info(&dev->lg, "queue %u: %u requests were in flight; handed out "
			 "again first", vq->index, q->nresubmit);
	return rc;
}

void vhu_inflight_fresh(struct vhu_vq *vq)
{
	struct vhu_ifl_queue *q = vq->ifl;

	if (q && q->packed &&
	    ld16(&((struct vhu_ifl_packed *)q->region)->version) == 0)
		init_packed(vq, q->region);
}
