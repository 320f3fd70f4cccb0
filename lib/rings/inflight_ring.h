/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Inflight tracking of one queue, shared by its two halves: the repair
 * when the queue starts (inflight_start.c, control thread) and the records
 * at pop and push (inflight_track.c, data plane).
 *
 * A back-end dies between any two stores.  The region's update rules
 * (the spec's) make every such cut repairable: a split batch is known
 * published or not by comparing the region's used index with the ring's;
 * a packed request's return is committed by copying free_head / used_idx
 * / used_wrap into their old_* copies last, and the ring's flags at the
 * old used index tell whether the guest was told.  The stores to the
 * region are plain (nobody reads them while we live); only their order as
 * issued matters, hence the compiler barriers [ifl-order], which pair
 * with the reads of the repair at the next start.
 */
#ifndef VHU_INFLIGHT_RING_H
#define VHU_INFLIGHT_RING_H

#include <stdatomic.h>

#include "memory/inflight.h"
#include "rings/vq.h"

/* Barrier [ifl-order]: stores before it are issued before stores after it
 * (a SIGKILL between them leaves the first ones in the region); pairs with
 * the repair in start_split() / start_packed().  Each is also a point
 * where the test build of the library hands over to a test's hook that
 * kills the process (VHU_CRASH_POINTS). */
static inline void ifl_order(struct vhu_vq *vq)
{
	atomic_signal_fence(memory_order_seq_cst);
	vhu_crash_point(vq->dev);
	atomic_signal_fence(memory_order_seq_cst);
}

static inline uint8_t ld8(const void *p)
{
	return __atomic_load_n((const uint8_t *)p, __ATOMIC_RELAXED);
}

static inline void st8(void *p, uint8_t v)
{
	__atomic_store_n((uint8_t *)p, v, __ATOMIC_RELAXED);
}

static inline void st64(void *p, uint64_t v)
{
	__atomic_store_n((uint64_t *)p, vhu_le64(v), __ATOMIC_RELAXED);
}

#endif
