/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test frontend: driver-side rings, the parts both layouts share (layout,
 * set-up, bookkeeping, the public entry points).  The layouts themselves
 * are in fe_ring_split.c and fe_ring_packed.c; the barrier pairs are
 * listed in fe_ring_int.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fe_ring_int.h"

int vhu_fe_ring_layout(bool packed, uint16_t num,
		       struct vhu_fe_ring_layout *lay)
{
	if (num == 0 || num > 32768 || (!packed && (num & (num - 1))))
		return -EINVAL;
	lay->desc_off = 0;
	lay->avail_off = 16u * num;
	if (packed) {
		lay->used_off = lay->avail_off + sizeof(struct vhu_fe_event);
		lay->total = lay->used_off + sizeof(struct vhu_fe_event);
	} else {
		/* avail: flags, idx, ring[num], used_event */
		size_t avail_end = lay->avail_off + SPLIT_AVAIL_HDR + 2u * num + 2;

		lay->used_off = (avail_end + 3) & ~(size_t)3;
		/* used: flags, idx, ring[num], avail_event */
		lay->total = lay->used_off + SPLIT_USED_HDR + 8u * num + 2;
	}
	return 0;
}

int vhu_fe_ring_init(struct vhu_fe_ring *r, bool packed, uint16_t num,
		     void *mem, uint64_t gpa, unsigned flags)
{
	struct vhu_fe_ring_layout lay;
	int err;

	memset(r, 0, sizeof(*r));
	err = vhu_fe_ring_layout(packed, num, &lay);
	if (err)
		return err;
	if (((uintptr_t)mem & 15) || (gpa & 15) ||
	    (flags & ~(VHU_FE_RING_EVENT_IDX | VHU_FE_RING_IN_ORDER)))
		return -EINVAL;
	memset(mem, 0, lay.total);
	r->slots = calloc(num, sizeof(*r->slots));
	r->next_free = calloc(num, sizeof(*r->next_free));
	r->pend = calloc(num, sizeof(*r->pend));
	r->order = calloc(num, sizeof(*r->order));
	if (!r->slots || !r->next_free || !r->pend || !r->order) {
		vhu_fe_ring_fini(r);
		return -ENOMEM;
	}
	r->packed = packed;
	r->event_idx = flags & VHU_FE_RING_EVENT_IDX;
	r->in_order = flags & VHU_FE_RING_IN_ORDER;
	r->batch_id = -1;
	r->num = num;
	r->desc = (uint8_t *)mem + lay.desc_off;
	r->avail = (uint8_t *)mem + lay.avail_off;
	r->used = (uint8_t *)mem + lay.used_off;
	r->desc_gpa = gpa + lay.desc_off;
	r->avail_gpa = gpa + lay.avail_off;
	r->used_gpa = gpa + lay.used_off;
	r->num_free = num;
	for (unsigned i = 0; i < num; i++)
		r->next_free[i] = (uint16_t)(i + 1); /* num wraps to 0: unused */
	r->free_head = 0;
	r->avail_wrap = true;
	r->used_wrap = true;
	return 0;
}

void vhu_fe_ring_fini(struct vhu_fe_ring *r)
{
	free(r->slots);
	free(r->next_free);
	free(r->pend);
	free(r->order);
	memset(r, 0, sizeof(*r));
}

/* ---- both layouts ---- */

/* Write one descriptor's chain of buffers into an indirect table (the
 * split and packed table formats differ only in the last 4 bytes). */
void fe_ring_write_table(struct vhu_fe_ring *r, void *table,
			 const struct vhu_fe_buf *bufs, unsigned n_out,
			 unsigned n)
{
	for (unsigned k = 0; k < n; k++) {
		uint16_t f = k < n_out ? 0 : VHU_FE_DESC_F_WRITE;

		if (r->packed) {
			/* Read in order, no NEXT (2.8.19). */
			struct vhu_fe_packed_desc *t = table;

			vhu_fe_st64(&t[k].addr, bufs[k].gpa);
			vhu_fe_st32(&t[k].len, bufs[k].len);
			vhu_fe_st16(&t[k].id, 0);
			vhu_fe_st16(&t[k].flags, f);
		} else {
			struct vhu_fe_split_desc *t = table;
			bool more = k + 1 < n;

			vhu_fe_st64(&t[k].addr, bufs[k].gpa);
			vhu_fe_st32(&t[k].len, bufs[k].len);
			vhu_fe_st16(&t[k].flags, f | (more ? VHU_FE_DESC_F_NEXT : 0));
			vhu_fe_st16(&t[k].next, more ? (uint16_t)(k + 1) : 0);
		}
	}
}

uint32_t fe_ring_writable_len(const struct vhu_fe_buf *bufs, unsigned n_out,
			      unsigned n)
{
	uint32_t len = 0;

	for (unsigned k = n_out; k < n; k++)
		len += bufs[k].len;
	return len;
}

/* In-order bookkeeping: the buffers in the order they were added. */
void fe_ring_order_push(struct vhu_fe_ring *r, uint16_t id)
{
	r->order[(r->order_first + r->order_count) % r->num] = id;
	r->order_count++;
}

uint16_t fe_ring_order_pop(struct vhu_fe_ring *r)
{
	uint16_t id = r->order[r->order_first];

	r->order_first = (uint16_t)((r->order_first + 1u) % r->num);
	r->order_count--;
	return id;
}

bool fe_ring_is_pending(const struct vhu_fe_ring *r, uint16_t id)
{
	for (unsigned i = 0; i < r->npend; i++)
		if (r->pend[i] == id)
			return true;
	return false;
}

/* ---- common ---- */

static int ring_add(struct vhu_fe_ring *r, const struct vhu_fe_buf *bufs,
		    unsigned n_out, unsigned n_in, void *table,
		    uint64_t table_gpa, void *token)
{
	unsigned n = n_out + n_in;

	if (!r->num || n == 0 || (!table && n > r->num) || !bufs)
		return -EINVAL;
	if (r->num_free < (table ? 1u : n))
		return -ENOSPC;
	return r->packed ? fe_packed_add(r, bufs, n_out, n_in, table, table_gpa, token)
			 : fe_split_add(r, bufs, n_out, n_in, table, table_gpa, token);
}

int vhu_fe_ring_add(struct vhu_fe_ring *r, const struct vhu_fe_buf *bufs,
		    unsigned n_out, unsigned n_in, void *token)
{
	return ring_add(r, bufs, n_out, n_in, NULL, 0, token);
}

int vhu_fe_ring_add_indirect(struct vhu_fe_ring *r,
			     const struct vhu_fe_buf *bufs, unsigned n_out,
			     unsigned n_in, void *table, uint64_t table_gpa,
			     void *token)
{
	if (!table || ((uintptr_t)table & 15) || (table_gpa & 15))
		return -EINVAL;
	return ring_add(r, bufs, n_out, n_in, table, table_gpa, token);
}

void vhu_fe_ring_publish(struct vhu_fe_ring *r)
{
	if (r->packed)
		fe_packed_publish(r);
	else
		fe_split_publish(r);
}

bool vhu_fe_ring_needs_kick(struct vhu_fe_ring *r)
{
	return r->packed ? fe_packed_needs_kick(r) : fe_split_needs_kick(r);
}

int vhu_fe_ring_get_used(struct vhu_fe_ring *r, uint16_t *id, uint32_t *len,
			 void **token)
{
	uint16_t i;
	uint32_t l;

	if (!r->num)
		return -EINVAL;
	return r->packed ? fe_packed_get_used(r, id ? id : &i, len ? len : &l, token)
			 : fe_split_get_used(r, id ? id : &i, len ? len : &l, token);
}

void vhu_fe_ring_disable_cb(struct vhu_fe_ring *r)
{
	r->cb_disabled = true;
	if (r->packed)
		vhu_fe_st16(&pk_driver(r)->flags, VHU_FE_EVENT_F_DISABLE);
	else if (!r->event_idx)
		vhu_fe_st16(sp_avail_flags(r), VHU_FE_AVAIL_F_NO_INTERRUPT);
	/* With split event_idx, used_event simply stops moving forward. */
}

void vhu_fe_ring_enable_cb(struct vhu_fe_ring *r)
{
	r->cb_disabled = false;
	if (r->packed) {
		if (r->event_idx) {
			fe_packed_set_driver_event(r);
			/* off_wrap before the flag that makes it meaningful */
			fe_release();
			vhu_fe_st16(&pk_driver(r)->flags, VHU_FE_EVENT_F_DESC);
		} else {
			vhu_fe_st16(&pk_driver(r)->flags, VHU_FE_EVENT_F_ENABLE);
		}
	} else if (r->event_idx) {
		vhu_fe_st16(sp_used_event(r), r->last_used);
	} else {
		vhu_fe_st16(sp_avail_flags(r), 0);
	}
	fe_full(); /* [C] before the caller looks at the used ring again */
}

uint32_t vhu_fe_ring_base(const struct vhu_fe_ring *r)
{
	uint32_t half;

	if (!r->packed)
		return r->last_used;
	half = r->last_used | ((uint32_t)r->used_wrap << VHU_PACKED_WRAP_BIT);
	return half | half << 16;
}
