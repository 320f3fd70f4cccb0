/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test frontend, shared by the ring files: the driver side of split
 * (VIRTIO 1.2 section 2.7) and packed (section 2.8) virtqueues.  This is
 * the reference the back-end's ring code is tested against, so it
 * follows the spec to the letter and keeps its own bookkeeping: nothing
 * the device writes is trusted beyond the used id and length, which are
 * checked.
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
#ifndef VHU_FE_RING_INT_H
#define VHU_FE_RING_INT_H

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

/* fe_ring.c: shared by both layouts */
void fe_ring_write_table(struct vhu_fe_ring *r, void *table,
			 const struct vhu_fe_buf *bufs, unsigned n_out, unsigned n);
uint32_t fe_ring_writable_len(const struct vhu_fe_buf *bufs, unsigned n_out,
			      unsigned n);
void fe_ring_order_push(struct vhu_fe_ring *r, uint16_t id);
uint16_t fe_ring_order_pop(struct vhu_fe_ring *r);
bool fe_ring_is_pending(const struct vhu_fe_ring *r, uint16_t id);

/* fe_ring_split.c */
int fe_split_add(struct vhu_fe_ring *r, const struct vhu_fe_buf *bufs,
		 unsigned n_out, unsigned n_in, void *table, uint64_t table_gpa,
		 void *token);
void fe_split_publish(struct vhu_fe_ring *r);
bool fe_split_needs_kick(struct vhu_fe_ring *r);
int fe_split_get_used(struct vhu_fe_ring *r, uint16_t *id, uint32_t *len,
		      void **token);

/* fe_ring_packed.c */
int fe_packed_add(struct vhu_fe_ring *r, const struct vhu_fe_buf *bufs,
		  unsigned n_out, unsigned n_in, void *table, uint64_t table_gpa,
		  void *token);
void fe_packed_publish(struct vhu_fe_ring *r);
bool fe_packed_needs_kick(struct vhu_fe_ring *r);
int fe_packed_get_used(struct vhu_fe_ring *r, uint16_t *id, uint32_t *len,
		       void **token);
void fe_packed_set_driver_event(struct vhu_fe_ring *r);

#endif
