/* SPDX-License-Identifier: BSD-3-Clause */
/* Test frontend: the driver side of a packed virtqueue (VIRTIO 1.2 2.8). */
#include <errno.h>
#include <string.h>

#include "fe_ring_int.h"

static uint16_t pk_flags(bool wrap, uint16_t extra)
{
	/* Available: AVAIL == the driver's wrap counter, USED == its inverse. */
	return extra | (wrap ? VHU_FE_DESC_F_AVAIL : VHU_FE_DESC_F_USED);
}

int fe_packed_add(struct vhu_fe_ring *r, const struct vhu_fe_buf *bufs,
		  unsigned n_out, unsigned n_in, void *table,
		  uint64_t table_gpa, void *token)
{
	unsigned n = n_out + n_in, used = table ? 1 : n;
	uint16_t id = r->free_head, pos = r->next_avail;
	struct vhu_fe_ring_slot *s = &r->slots[id];
	bool wrap = r->avail_wrap;

	s->head_pos = pos;
	s->in_len = fe_ring_writable_len(bufs, n_out, n);
	for (unsigned k = 0; k < used; k++) {
		struct vhu_fe_packed_desc *d = pk_desc(r, pos);
		uint16_t f;

		if (table) {
			fe_ring_write_table(r, table, bufs, n_out, n);
			vhu_fe_st64(&d->addr, table_gpa);
			vhu_fe_st32(&d->len, n * 16u);
			f = pk_flags(wrap, VHU_FE_DESC_F_INDIRECT);
		} else {
			vhu_fe_st64(&d->addr, bufs[k].gpa);
			vhu_fe_st32(&d->len, bufs[k].len);
			f = pk_flags(wrap, (k < n_out ? 0 : VHU_FE_DESC_F_WRITE) |
					   (k + 1 < n ? VHU_FE_DESC_F_NEXT : 0));
		}
		vhu_fe_st16(&d->id, id);
		/* The head's flags are written last, when published. */
		if (k == 0)
			s->head_flags = f;
		else
			vhu_fe_st16(&d->flags, f);
		if (++pos == r->num) {
			pos = 0;
			wrap = !wrap;
		}
	}
	r->next_avail = pos;
	r->avail_wrap = wrap;
	r->num_free -= used;
	r->free_head = r->next_free[id];
	s->ndesc = (uint16_t)used;
	s->token = token;
	r->pend[r->npend++] = id;
	if (r->in_order)
		fe_ring_order_push(r, id);
	return id;
}

void fe_packed_publish(struct vhu_fe_ring *r)
{
	for (unsigned i = 0; i < r->npend; i++) {
		struct vhu_fe_ring_slot *s = &r->slots[r->pend[i]];

		/* [A] the chain before its head's flags. */
		fe_release();
		vhu_fe_st16(&pk_desc(r, s->head_pos)->flags, s->head_flags);
		r->num_added += s->ndesc;
	}
	r->npend = 0;
}

bool fe_packed_needs_kick(struct vhu_fe_ring *r)
{
	uint16_t new_idx = r->next_avail, old = new_idx - r->num_added;
	uint16_t flags, off_wrap, event;

	fe_full(); /* [C] */
	off_wrap = vhu_fe_ld16(&pk_device(r)->off_wrap);
	flags = vhu_fe_ld16(&pk_device(r)->flags);
	r->num_added = 0;
	if (flags == VHU_FE_EVENT_F_DISABLE)
		return false;
	if (flags != VHU_FE_EVENT_F_DESC || !r->event_idx)
		return true;
	/* Compare in one frame: an event in the previous lap (other wrap
	 * counter) sits num slots back. */
	event = off_wrap & VHU_PACKED_IDX_MASK;
	if ((bool)(off_wrap >> VHU_PACKED_WRAP_BIT) != r->avail_wrap)
		event -= r->num;
	return fe_need_event(event, new_idx, old);
}

void fe_packed_set_driver_event(struct vhu_fe_ring *r)
{
	vhu_fe_st16(&pk_driver(r)->off_wrap,
		    r->last_used | (uint16_t)(r->used_wrap << VHU_PACKED_WRAP_BIT));
}

/* Read the used descriptor at last_used: 1 and its id/len, 0, -EPROTO. */
static int packed_read_used(struct vhu_fe_ring *r, uint16_t *id,
			    uint32_t *len)
{
	struct vhu_fe_packed_desc *d = pk_desc(r, r->last_used);
	uint16_t flags = vhu_fe_ld16(&d->flags);
	bool avail = flags & VHU_FE_DESC_F_AVAIL, used = flags & VHU_FE_DESC_F_USED;

	if (avail != used || used != r->used_wrap)
		return 0;
	fe_acquire(); /* [B] */
	*id = vhu_fe_ld16(&d->id);
	*len = vhu_fe_ld32(&d->len);
	/* Only buffers already made available may come back. */
	if (*id >= r->num || r->slots[*id].ndesc == 0 || fe_ring_is_pending(r, *id))
		return -EPROTO;
	return 1;
}

int fe_packed_get_used(struct vhu_fe_ring *r, uint16_t *id, uint32_t *len,
		       void **token)
{
	struct vhu_fe_ring_slot *s;
	unsigned pos;
	uint16_t bid;
	uint32_t l;
	int rc;

	if (r->in_order) {
		if (r->batch_id < 0) {
			rc = packed_read_used(r, &bid, &l);
			if (rc <= 0)
				return rc;
			r->batch_id = bid;
			r->batch_len = l;
		}
		bid = fe_ring_order_pop(r);
		l = bid == r->batch_id ? r->batch_len : r->slots[bid].in_len;
		if (bid == r->batch_id)
			r->batch_id = -1;
		else
			r->used_skipped++;
	} else {
		rc = packed_read_used(r, &bid, &l);
		if (rc <= 0)
			return rc;
	}
	s = &r->slots[bid];
	*id = bid;
	*len = l;
	if (token)
		*token = s->token;
	/* The device's next used slot is past this buffer's descriptors. */
	pos = r->last_used + s->ndesc;
	if (pos >= r->num) {
		pos -= r->num;
		r->used_wrap = !r->used_wrap;
	}
	r->last_used = (uint16_t)pos;
	r->num_free += s->ndesc;
	memset(s, 0, sizeof(*s));
	r->next_free[bid] = r->free_head;
	r->free_head = bid;
	if (r->event_idx && !r->cb_disabled && r->batch_id < 0)
		fe_packed_set_driver_event(r);
	return 1;
}

