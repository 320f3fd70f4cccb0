/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test frontend: the driver side of split (VIRTIO 1.2 section 2.7) and
 * packed (section 2.8) virtqueues.  This is the reference the back-end's
 * ring code is tested against, so it follows the spec to the letter and
 * keeps its own bookkeeping: nothing the device writes is trusted beyond
 * the used id and length, which are checked.
 *
 * Barrier pairs (the device side is lib/'s ring code):
 *  [A] descriptors written, release, then avail->idx (split) or the head's
 *      flags (packed); pairs with the device's acquire after reading them.
 *  [B] used->idx (split) or a used descriptor's flags (packed) read, then
 *      acquire before reading the used entry; pairs with the device's
 *      release before publishing it.
 *  [C] full fence between publishing buffers and reading the device's
 *      notification suppression (NO_NOTIFY, avail_event, device event
 *      area); pairs with the device's full fence between writing that and
 *      re-checking the avail ring.  Same between re-enabling interrupts and
 *      the next look at the used ring.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fe.h"

#define SPLIT_AVAIL_HDR 4 /* flags, idx */
#define SPLIT_USED_HDR 4

static inline void fe_release(void)
{
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static inline void fe_acquire(void)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
}

static inline void fe_full(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* VIRTIO's vring_need_event(): did [old, new) pass event? */
static inline bool fe_need_event(uint16_t event, uint16_t new_idx,
				 uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

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

/* Split ring field addresses. */
static inline struct vhu_fe_split_desc *sp_desc(struct vhu_fe_ring *r,
						unsigned i)
{
	return (struct vhu_fe_split_desc *)r->desc + i;
}
static inline void *sp_avail_flags(struct vhu_fe_ring *r)
{
	return (uint8_t *)r->avail;
}
static inline void *sp_avail_idx(struct vhu_fe_ring *r)
{
	return (uint8_t *)r->avail + 2;
}
static inline void *sp_avail_ring(struct vhu_fe_ring *r, unsigned i)
{
	return (uint8_t *)r->avail + SPLIT_AVAIL_HDR + 2u * i;
}
static inline void *sp_used_event(struct vhu_fe_ring *r)
{
	return sp_avail_ring(r, r->num);
}
static inline void *sp_used_flags(struct vhu_fe_ring *r)
{
	return (uint8_t *)r->used;
}
static inline void *sp_used_idx(struct vhu_fe_ring *r)
{
	return (uint8_t *)r->used + 2;
}
static inline struct vhu_fe_used_elem *sp_used_ring(struct vhu_fe_ring *r,
						    unsigned i)
{
	return (struct vhu_fe_used_elem *)((uint8_t *)r->used +
					   SPLIT_USED_HDR) + i;
}
static inline void *sp_avail_event(struct vhu_fe_ring *r)
{
	return sp_used_ring(r, r->num);
}

/* Packed ring field addresses. */
static inline struct vhu_fe_packed_desc *pk_desc(struct vhu_fe_ring *r,
						 unsigned i)
{
	return (struct vhu_fe_packed_desc *)r->desc + i;
}
static inline struct vhu_fe_event *pk_driver(struct vhu_fe_ring *r)
{
	return r->avail;
}
static inline struct vhu_fe_event *pk_device(struct vhu_fe_ring *r)
{
	return r->used;
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
static void write_table(struct vhu_fe_ring *r, void *table,
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

static uint32_t writable_len(const struct vhu_fe_buf *bufs, unsigned n_out,
			     unsigned n)
{
	uint32_t len = 0;

	for (unsigned k = n_out; k < n; k++)
		len += bufs[k].len;
	return len;
}

/* In-order bookkeeping: the buffers in the order they were added. */
static void order_push(struct vhu_fe_ring *r, uint16_t id)
{
	r->order[(r->order_first + r->order_count) % r->num] = id;
	r->order_count++;
}

static uint16_t order_pop(struct vhu_fe_ring *r)
{
	uint16_t id = r->order[r->order_first];

	r->order_first = (uint16_t)((r->order_first + 1u) % r->num);
	r->order_count--;
	return id;
}

static bool is_pending(const struct vhu_fe_ring *r, uint16_t id)
{
	for (unsigned i = 0; i < r->npend; i++)
		if (r->pend[i] == id)
			return true;
	return false;
}

/* ---- split ---- */

/* Next descriptor after @i: the free list, or table order when in order. */
static uint16_t split_next_desc(const struct vhu_fe_ring *r, uint16_t i)
{
	if (r->in_order)
		return (uint16_t)((i + 1u) & (r->num - 1));
	return r->next_free[i];
}

static int split_add(struct vhu_fe_ring *r, const struct vhu_fe_buf *bufs,
		     unsigned n_out, unsigned n_in, void *table,
		     uint64_t table_gpa, void *token)
{
	unsigned n = n_out + n_in, used = table ? 1 : n;
	uint16_t head = r->in_order ? r->next_desc : r->free_head;
	uint16_t i = head, last = head;
	struct vhu_fe_ring_slot *s = &r->slots[head];

	s->in_len = writable_len(bufs, n_out, n);
	if (table) {
		struct vhu_fe_split_desc *d = sp_desc(r, head);

		write_table(r, table, bufs, n_out, n);
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
		order_push(r, head);
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

static void split_publish(struct vhu_fe_ring *r)
{
	/* [A] the descriptors and ring entries before the index. */
	fe_release();
	vhu_fe_st16(sp_avail_idx(r), r->avail_idx);
	r->num_added += (uint16_t)(r->avail_idx - r->published);
	r->published = r->avail_idx;
}

static bool split_needs_kick(struct vhu_fe_ring *r)
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

static int split_get_used(struct vhu_fe_ring *r, uint16_t *id, uint32_t *len,
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
		head = order_pop(r);
		s = &r->slots[head];
		l = (int32_t)head == r->batch_id ? r->batch_len : s->in_len;
		if ((int32_t)head == r->batch_id)
			r->batch_id = -1;
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

/* ---- packed ---- */

static uint16_t pk_flags(bool wrap, uint16_t extra)
{
	/* Available: AVAIL == the driver's wrap counter, USED == its inverse. */
	return extra | (wrap ? VHU_FE_DESC_F_AVAIL : VHU_FE_DESC_F_USED);
}

static int packed_add(struct vhu_fe_ring *r, const struct vhu_fe_buf *bufs,
		      unsigned n_out, unsigned n_in, void *table,
		      uint64_t table_gpa, void *token)
{
	unsigned n = n_out + n_in, used = table ? 1 : n;
	uint16_t id = r->free_head, pos = r->next_avail;
	struct vhu_fe_ring_slot *s = &r->slots[id];
	bool wrap = r->avail_wrap;

	s->head_pos = pos;
	s->in_len = writable_len(bufs, n_out, n);
	for (unsigned k = 0; k < used; k++) {
		struct vhu_fe_packed_desc *d = pk_desc(r, pos);
		uint16_t f;

		if (table) {
			write_table(r, table, bufs, n_out, n);
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
		order_push(r, id);
	return id;
}

static void packed_publish(struct vhu_fe_ring *r)
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

static bool packed_needs_kick(struct vhu_fe_ring *r)
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

static void packed_set_driver_event(struct vhu_fe_ring *r)
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
	if (*id >= r->num || r->slots[*id].ndesc == 0 || is_pending(r, *id))
		return -EPROTO;
	return 1;
}

static int packed_get_used(struct vhu_fe_ring *r, uint16_t *id, uint32_t *len,
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
		bid = order_pop(r);
		l = bid == r->batch_id ? r->batch_len : r->slots[bid].in_len;
		if (bid == r->batch_id)
			r->batch_id = -1;
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
		packed_set_driver_event(r);
	return 1;
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
	return r->packed ? packed_add(r, bufs, n_out, n_in, table, table_gpa, token)
			 : split_add(r, bufs, n_out, n_in, table, table_gpa, token);
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
		packed_publish(r);
	else
		split_publish(r);
}

bool vhu_fe_ring_needs_kick(struct vhu_fe_ring *r)
{
	return r->packed ? packed_needs_kick(r) : split_needs_kick(r);
}

int vhu_fe_ring_get_used(struct vhu_fe_ring *r, uint16_t *id, uint32_t *len,
			 void **token)
{
	uint16_t i;
	uint32_t l;

	if (!r->num)
		return -EINVAL;
	return r->packed ? packed_get_used(r, id ? id : &i, len ? len : &l, token)
			 : split_get_used(r, id ? id : &i, len ? len : &l, token);
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
			packed_set_driver_event(r);
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
