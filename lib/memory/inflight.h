/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Inflight I/O tracking (vhost-user "Inflight I/O tracking",
 * VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD): every request from vhu_vq_pop()
 * to vhu_vq_push() is recorded in shared memory the front-end keeps across
 * back-end restarts, so a restarted back-end takes again what was in
 * flight when the last one died.
 *
 * Who owns what: the region is created by GET_INFLIGHT_FD (a zeroed memfd
 * the front-end keeps) and mapped by SET_INFLIGHT_FD, on the control
 * thread, only while every queue is stopped.  When a queue starts, the
 * control thread reads its part of the region (the previous back-end
 * wrote it, the front-end handed it over: every field is hostile),
 * repairs what a crash cut short, and makes the list of requests to hand
 * out again.  From then on only the queue's data plane writes its part.
 * Layout and update rules are the spec's, split and packed
 * (docs/blk.md has the crash cases).
 */
#ifndef VHU_INFLIGHT_H
#define VHU_INFLIGHT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/proto.h"

struct vhu_dev;
struct vhu_vq;
struct vhu_req;
struct vhu_seg;
struct vhu_guard;

#define VHU_INFLIGHT_VERSION 1
#define VHU_INFLIGHT_ALIGN 64 /* each queue's part starts on a cache line */

/* Split: one entry per descriptor table index (heads only). */
struct vhu_ifl_split_desc {
	uint8_t inflight;
	uint8_t padding[5];
	uint16_t next;    /* list of the last used batch */
	uint64_t counter; /* order in which heads were taken */
};

struct vhu_ifl_split {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t last_batch_head;
	uint16_t used_idx; /* used->idx once the last batch was accounted */
	struct vhu_ifl_split_desc desc[];
};

/* Packed: a free list of entries, each a copy of one descriptor taken. */
struct vhu_ifl_packed_desc {
	uint8_t inflight; /* heads only */
	uint8_t padding;
	uint16_t next;    /* next entry of the chain or of the free list */
	uint16_t last;    /* heads: the chain's last entry */
	uint16_t num;     /* heads: descriptors in the chain */
	uint64_t counter; /* heads */
	uint16_t id;
	uint16_t flags;
	uint32_t len;
	uint64_t addr;
};

struct vhu_ifl_packed {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t free_head;
	uint16_t old_free_head;
	uint16_t used_idx;
	uint16_t old_used_idx;
	uint8_t used_wrap_counter;
	uint8_t old_used_wrap_counter;
	uint8_t padding[7];
	struct vhu_ifl_packed_desc desc[];
};

_Static_assert(sizeof(struct vhu_ifl_split_desc) == 16, "split entry");
_Static_assert(sizeof(struct vhu_ifl_split) == 16, "split header");
_Static_assert(sizeof(struct vhu_ifl_packed_desc) == 32, "packed entry");
_Static_assert(sizeof(struct vhu_ifl_packed) == 32, "packed header");

/* The region SET_INFLIGHT_FD mapped. */
struct vhu_inflight_map {
	uint8_t *base;    /* queue 0's part */
	uint64_t size;    /* bytes the front-end described */
	uint16_t num_queues;
	uint16_t queue_size;
	void *map_base;
	size_t map_len;
	int guard_slot;   /* watched by the device's SIGBUS guard, or -1 */
	struct vhu_guard *guard;
	_Atomic bool lost; /* the guard replaced it with zero pages */
};

/* A descriptor as taken, kept for a packed request handed out again. */
struct vhu_ifl_stored {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t id;
};

/* A queue's tracking state (vq->ifl); NULL when not tracking. */
struct vhu_ifl_queue {
	void *region;        /* struct vhu_ifl_split or _packed */
	bool packed;
	uint64_t counter;    /* the next request's submission counter */
	/* Requests to hand out again, oldest first: split heads, or packed
	 * head entries whose descriptors are in stored[first[k] ..]. */
	uint16_t *resubmit;
	uint32_t *first;
	struct vhu_ifl_stored *stored;
	uint16_t nresubmit, next_resubmit;
	/* Packed: the head entry of each buffer id in flight, or NONE. */
	uint16_t *entry_of_id;
	/* Per id: in the push being checked (vhu_inflight_push()). */
	uint8_t *claimed;
};

#define VHU_IFL_NONE 0xffff

/* Bytes of one queue's part for rings of @queue_size entries. */
uint64_t vhu_inflight_queue_bytes(uint16_t queue_size, bool packed);

/* Control thread (inflight.c). */
int vhu_inflight_get_fd(struct vhu_dev *dev, const struct vhu_inflight *msg,
			struct vhu_inflight *out, int *fd);
int vhu_inflight_set_fd(struct vhu_dev *dev, const struct vhu_inflight *msg,
			int fd);
/* RESET_DEVICE: mark every queue's part fresh (nothing in flight). */
void vhu_inflight_forget(struct vhu_dev *dev);
/* Disconnect, reset or free: unmap (every queue is stopped). */
void vhu_inflight_clear(struct vhu_dev *dev);

/* Control thread, vq starting (inflight_start.c): attach the queue's part,
 * repair it, find the ring position and what to hand out again.  0 (also
 * when the queue is not tracked), -ENOMEM, or -EPROTO (the region is not
 * usable: the queue must break; logged). */
int vhu_inflight_start(struct vhu_vq *vq);
/* After the ring found its position: set up a fresh packed part there. */
void vhu_inflight_fresh(struct vhu_vq *vq);
/* vq stopped (no burst runs): detach. */
void vhu_inflight_stop(struct vhu_vq *vq);

/* Data plane, only when vq->ifl is set (inflight_track.c). */
/* Hand out again what was in flight: up to @max requests; 0 when nothing
 * is left to resubmit, else the count or -errno as vhu_vq_pop(). */
int vhu_inflight_pop_resubmit(struct vhu_vq *vq, struct vhu_req *reqs,
			      unsigned max, struct vhu_seg *segs, unsigned nsegs);
/* Record @n requests vhu_vq_pop() just took from ring position @from
 * (packed: slot and wrap; split: avail index).  0 or -EIO (queue failed). */
int vhu_inflight_popped(struct vhu_vq *vq, const struct vhu_req *reqs,
			unsigned n, uint16_t from, bool from_wrap);
/* vhu_vq_push() with tracking. */
int vhu_inflight_push(struct vhu_vq *vq, const struct vhu_req *reqs,
		      const uint32_t *written, unsigned n);

#endif
