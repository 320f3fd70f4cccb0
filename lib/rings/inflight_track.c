/* SPDX-License-Identifier: BSD-3-Clause */
/* Inflight tracking on the data plane: vhu_vq_pop() records each request
 * it hands out, vhu_vq_push() clears it, in the order the repair at the
 * next start relies on (inflight_ring.h). */
#include "rings/inflight_ring.h"

#include <errno.h>
#include <string.h>

int vhu_inflight_pop_resubmit(struct vhu_vq *vq, struct vhu_req *reqs,
			      unsigned max, struct vhu_seg *segs, unsigned nsegs)
{
	struct vhu_ifl_queue *q = vq->ifl;
	unsigned n = 0, used_segs = 0;

	while (n < max && q->next_resubmit < q->nresubmit) {
		uint16_t k = q->next_resubmit;
		int rc;

		if (q->packed)
			rc = vhu_vq_take_stored(vq, &q->stored[q->first[k]],
						q->first[k + 1] - q->first[k],
						&reqs[n], segs + used_segs,
						nsegs - used_segs);
		else
			rc = vhu_vq_take_head(vq, q->resubmit[k], &reqs[n],
					      segs + used_segs, nsegs - used_segs);
		if (rc < 0) {
			if (rc == -ENOBUFS && n > 0)
				break;
			return rc;
		}
		used_segs += (unsigned)rc;
		q->next_resubmit++;
		n++;
	}
	return (int)n;
}

static void popped_split(struct vhu_vq *vq, struct vhu_ifl_queue *q,
			 const struct vhu_req *reqs, unsigned n)
{
	struct vhu_ifl_split *r = q->region;

	for (unsigned i = 0; i < n; i++) {
		struct vhu_ifl_split_desc *d = &r->desc[reqs[i].id];

		st64(&d->counter, q->counter++);
		ifl_order(vq);
		st8(&d->inflight, 1);
	}
}

static int popped_packed(struct vhu_vq *vq, struct vhu_ifl_queue *q,
			 const struct vhu_req *reqs, unsigned n, uint16_t slot,
			 bool wrap)
{
	const struct vring_packed_desc *ring = vq->desc;
	struct vhu_ifl_packed *r = q->region;
	uint32_t size = vq->size;

	for (unsigned i = 0; i < n; i++) {
		uint16_t head = ld16(&r->old_free_head);

		if (q->entry_of_id[reqs[i].id] != VHU_IFL_NONE)
			return vhu_vq_fail(vq, "buffer id %u made available again "
					   "while in flight", reqs[i].id);
		for (uint16_t k = 0; k < reqs[i].ndesc; k++) {
			const struct vring_packed_desc *d = &ring[slot];
			uint16_t fh = ld16(&r->free_head);
			bool last = k + 1 == reqs[i].ndesc;

			if (fh >= size || head >= size)
				return vhu_vq_fail(vq, "inflight free list exhausted "
						   "or rewritten (entry %u)", fh);
			if (k == 0) {
				st16(&r->desc[head].num, 0);
				st64(&r->desc[head].counter, q->counter++);
				st8(&r->desc[head].inflight, 1);
			}
			if (last)
				st16(&r->desc[head].last, fh);
			st16(&r->desc[head].num, (uint16_t)(k + 1));
			st64(&r->desc[fh].addr, ld64(&d->addr));
			st32(&r->desc[fh].len, ld32(&d->len));
			st16(&r->desc[fh].flags, ld16(&d->flags));
			st16(&r->desc[fh].id, last ? reqs[i].id : ld16(&d->id));
			ifl_order(vq);
			st16(&r->free_head, ld16(&r->desc[fh].next));
			if (last) {
				ifl_order(vq);
				st16(&r->old_free_head, ld16(&r->free_head));
			}
			if (++slot == size) {
				slot = 0;
				wrap = !wrap;
			}
		}
		q->entry_of_id[reqs[i].id] = head;
	}
	return 0;
}

int vhu_inflight_popped(struct vhu_vq *vq, const struct vhu_req *reqs,
			unsigned n, uint16_t from, bool from_wrap)
{
	if (!vq->ifl->packed) {
		popped_split(vq, vq->ifl, reqs, n);
		return 0;
	}
	return popped_packed(vq, vq->ifl, reqs, n, from, from_wrap);
}

static int push_split(struct vhu_vq *vq, struct vhu_ifl_queue *q,
		      const struct vhu_req *reqs, const uint32_t *written,
		      unsigned n)
{
	struct vhu_ifl_split *r = q->region;
	uint16_t head = ld16(&r->last_batch_head);
	int rc;

	for (unsigned i = 0; i < n; i++) {
		st16(&r->desc[reqs[i].id].next, head);
		head = reqs[i].id;
	}
	st16(&r->last_batch_head, head);
	ifl_order(vq);
	rc = vhu_vq_push_split(vq, reqs, written, n);
	if (rc)
		return rc;
	ifl_order(vq);
	for (unsigned i = 0; i < n; i++)
		st8(&r->desc[reqs[i].id].inflight, 0);
	ifl_order(vq);
	st16(&r->used_idx, vq->used_idx);
	return 0;
}

/* One request at a time: each return is published (its flags written)
 * before the next begins, so a cut leaves no used flags beyond the one
 * the repair checks. */
static int push_packed_one(struct vhu_vq *vq, struct vhu_ifl_queue *q,
			   const struct vhu_req *req, const uint32_t *written)
{
	struct vhu_ifl_packed *r = q->region;
	uint32_t size = vq->size, pos;
	uint16_t e = q->entry_of_id[req->id], last;
	bool wrap;
	int rc;

	last = ld16(&r->desc[e].last);
	if (last >= size)
		return vhu_vq_fail(vq, "inflight entry %u rewritten (last %u)", e,
				   last);
	st16(&r->desc[last].next, ld16(&r->free_head));
	st16(&r->free_head, e);
	pos = (uint32_t)vq->used_idx + req->ndesc;
	wrap = vq->used_wrap;
	if (pos >= size) {
		pos -= size;
		wrap = !wrap;
	}
	st16(&r->used_idx, (uint16_t)pos);
	st8(&r->used_wrap_counter, wrap);
	ifl_order(vq);
	rc = vhu_vq_push_packed(vq, req, written, 1);
	if (rc)
		return rc;
	ifl_order(vq);
	st8(&r->desc[e].inflight, 0);
	q->entry_of_id[req->id] = VHU_IFL_NONE;
	ifl_order(vq);
	/* The commit: free list first, the used index last (repair_packed()
	 * compares index and wrap). */
	st16(&r->old_free_head, e);
	st8(&r->old_used_wrap_counter, wrap);
	ifl_order(vq);
	st16(&r->old_used_idx, (uint16_t)pos);
	return 0;
}

/* Is the request with buffer id / head @id one vhu handed out? */
static bool in_flight(const struct vhu_ifl_queue *q, uint16_t id)
{
	if (q->packed)
		return q->entry_of_id[id] != VHU_IFL_NONE;
	return ld8(&((struct vhu_ifl_split *)q->region)->desc[id].inflight) == 1;
}

/* Every request of a push must be in flight, and in it once: all are
 * checked (and marked in q->claimed) before any is returned, so a push is
 * all or nothing.  The number marked; n when all are good. */
static unsigned claim(const struct vhu_vq *vq, struct vhu_ifl_queue *q,
		      const struct vhu_req *reqs, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		uint16_t id = reqs[i].id;

		if (id >= vq->size || q->claimed[id] || reqs[i].ndesc == 0 ||
		    reqs[i].ndesc > vq->size || !in_flight(q, id))
			break;
		q->claimed[id] = 1;
	}
	return i;
}

static void unclaim(struct vhu_ifl_queue *q, const struct vhu_req *reqs,
		    unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		q->claimed[reqs[i].id] = 0;
}

int vhu_inflight_push(struct vhu_vq *vq, const struct vhu_req *reqs,
		      const uint32_t *written, unsigned n)
{
	struct vhu_ifl_queue *q = vq->ifl;
	unsigned good = claim(vq, q, reqs, n);
	int rc = 0;

	if (good < n) {
		rc = -EINVAL; /* not handed out, pushed already, or twice here */
	} else if (!q->packed) {
		rc = push_split(vq, q, reqs, written, n);
	} else {
		for (unsigned i = 0; i < n && !rc; i++)
			rc = push_packed_one(vq, q, &reqs[i], written ? &written[i] : NULL);
	}
	unclaim(q, reqs, good);
	return rc;
}
