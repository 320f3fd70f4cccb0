/* SPDX-License-Identifier: BSD-3-Clause */
/* Test frontend: the driver side of a split virtqueue (VIRTIO 1.2 2.7). */
#include <errno.h>
#include <string.h>

#include "fe_ring_int.h"

/* Next descriptor after @i: the free list, or table order when in order. */
static uint16_t split_next_desc(const struct vhu_fe_ring *r, uint16_t i)
{
	if (r->in_order)
		return (uint16_t)((i + 1u) & (r->num - 1));
	return r->next_free[i];
}

int fe_split_add(struct vhu_fe_ring *r, const struct vhu_fe_buf *bufs,
		 unsigned n_out, unsigned n_in, void *table,
		 uint64_t table_gpa, void *token)
{
	unsigned n = n_out + n_in, used = table ? 1 : n;
	uint16_t head = r->in_order ? r->next_desc : r->free_head;
	uint16_t i = head, last = head;
	struct vhu_fe_ring_slot *s = &r->slots[head];

	s->in_len = fe_ring_writable_len(bufs, n_out, n);
	if (table) {
		struct vhu_fe_split_desc *d = sp_desc(r, head);

		fe_ring_write_table(r, table, bufs, n_out, n);
		vhu_fe_st64(&d->addr, table_gpa);
		vhu_fe_st32(&d->len, n * 16u);
		vhu_fe_st16(&d->flags, VHU_FE_DESC_F_INDIRECT);
		vhu_fe_st16(&d->next, 0);
	} else {
		for (unsigned k = 0; k < n; k++) {
			struct vhu_fe_split_desc *d = sp_desc(r, i);
			bool more = k + 1 < n;

			vhu_fe_st64(&d->addr, bufs[k].gpa);
			vhu_fe_st32(&d->len, bufs[k].len);
			vhu_fe_st16(&d->flags,
				    (k < n_out ? 0 : VHU_FE_DESC_F_WRITE) |
				    (more ? VHU_FE_DESC_F_NEXT : 0));
			vhu_fe_st16(&d->next, more ? split_next_desc(r, i) : 0);
			last = i;
			i = split_next_desc(r, i);
		}
	}
	if (r->in_order) {
		r->next_desc = split_next_desc(r, last);
		fe_ring_order_push(r, head);
	} else {
		r->free_head = r->next_free[last];
	}
	r->num_free -= used;
	s->ndesc = (uint16_t)used;
	s->last = last;
	s->token = token;
	vhu_fe_st16(sp_avail_ring(r, r->avail_idx & (r->num - 1)), head);
	r->avail_idx++;
	return head;
}

void fe_split_publish(struct vhu_fe_ring *r)
{
	/* [A] the descriptors and ring entries before the index. */
	fe_release();
	vhu_fe_st16(sp_avail_idx(r), r->avail_idx);
	r->num_added += (uint16_t)(r->avail_idx - r->published);
	r->published = r->avail_idx;
}

bool fe_split_needs_kick(struct vhu_fe_ring *r)
{
	uint16_t new_idx = r->published, old = new_idx - r->num_added;

	fe_full(); /* [C] */
	r->num_added = 0;
	if (r->event_idx)
		return fe_need_event(vhu_fe_ld16(sp_avail_event(r)), new_idx, old);
	return !(vhu_fe_ld16(sp_used_flags(r)) & VHU_FE_USED_F_NO_NOTIFY);
}

/* Read the next used element: 1 and its id/len, 0 if none, -EPROTO. */
static int split_read_used(struct vhu_fe_ring *r, uint32_t *id, uint32_t *len)
{
	uint16_t used_idx = vhu_fe_ld16(sp_used_idx(r));
	struct vhu_fe_used_elem *e;

	if (used_idx == r->last_used)
		return 0;
	if ((uint16_t)(used_idx - r->last_used) > r->num)
		return -EPROTO;
	fe_acquire(); /* [B] */
	e = sp_used_ring(r, r->last_used & (r->num - 1));
	*id = vhu_fe_ld32(&e->id);
	*len = vhu_fe_ld32(&e->len);
	if (*id >= r->num || r->slots[*id].ndesc == 0)
		return -EPROTO;
	r->last_used++;
	if (r->event_idx && !r->cb_disabled)
		vhu_fe_st16(sp_used_event(r), r->last_used);
	return 1;
}

int fe_split_get_used(struct vhu_fe_ring *r, uint16_t *id, uint32_t *len,
		      void **token)
{
	struct vhu_fe_ring_slot *s;
	uint32_t head, l;
	int rc;

	if (r->in_order) {
		if (r->batch_id < 0) {
			rc = split_read_used(r, &head, &l);
			if (rc <= 0)
				return rc;
			r->batch_id = (int32_t)head;
			r->batch_len = l;
		}
		head = fe_ring_order_pop(r);
		s = &r->slots[head];
		l = (int32_t)head == r->batch_id ? r->batch_len : s->in_len;
		if ((int32_t)head == r->batch_id)
			r->batch_id = -1;
		else
			r->used_skipped++;
	} else {
		rc = split_read_used(r, &head, &l);
		if (rc <= 0)
			return rc;
		s = &r->slots[head];
		/* The chain is still linked through next_free[]. */
		r->next_free[s->last] = r->free_head;
		r->free_head = (uint16_t)head;
	}
	*id = (uint16_t)head;
	*len = l;
	if (token)
		*token = s->token;
	r->num_free += s->ndesc;
	memset(s, 0, sizeof(*s));
	return 1;
}

