/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Dirty-page logging for live migration (vhost-user "Migration"): while
 * the front-end has VHOST_F_LOG_ALL on, every write vhu makes into guest
 * memory sets, after the data, the bit of each 4 KiB guest-physical page
 * it touched in a bitmap the front-end shares (SET_LOG_BASE).
 *
 * Who owns what: the control thread maps, replaces and unmaps logs
 * (struct vhu_dev.dirty_log) and publishes the one the data plane uses
 * (vhu_dev.dp_log: the log while LOG_ALL is on, else NULL).  A burst reads
 * dp_log once, in vhu_vq_begin(), inside its memory read section; the
 * control thread replaces or withdraws it, then waits for every queue's
 * burst in progress to end before it replies or unmaps (the same wait as
 * for memory tables, docs/migration.md).
 */
#ifndef VHU_DIRTY_LOG_H
#define VHU_DIRTY_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/proto.h"

#define VHU_LOG_PAGE_SHIFT 12 /* one bit per 4 KiB guest page (VHOST_LOG_PAGE) */

struct vhu_dev;
struct vhu_vq;
struct vhu_req;
struct vhu_guard;

struct vhu_dirty_log {
	uint8_t *bits;    /* bit p of byte p / 8 = guest page p */
	uint64_t len;     /* bytes of bitmap the front-end gave */
	void *map_base;
	size_t map_len;
	int guard_slot;   /* watched by the device's SIGBUS guard, or -1 */
	struct vhu_guard *guard;
	_Atomic bool lost; /* the guard replaced it: bits no longer shared */
	struct vhu_dirty_log *next_stale;
};

/* Control thread (dirty_log.c). */
/* SET_LOG_BASE: map the log in @fd (always consumed), check it covers the
 * memory table, install it, wait for the data plane, unmap the old one.
 * All or nothing. */
int vhu_dirty_log_set_base(struct vhu_dev *dev, const struct vhu_log *msg, int fd);
/* Features changed (LOG_ALL on or off): publish what the data plane logs
 * into, and hold or release the rings (docs/migration.md). */
void vhu_dirty_log_update(struct vhu_dev *dev);
/* Disconnect or free: logging off, every log unmapped once no burst can
 * use it (a log a burst still overstays is released at the next clear). */
void vhu_dirty_log_clear(struct vhu_dev *dev);
/* Must a started ring be held (not run)?  LOG_ALL is on with no log: its
 * writes could not be logged. */
bool vhu_dirty_log_hold(const struct vhu_dev *dev);

/* Control thread: vq's descriptor ring was written outside any burst
 * (ring recovery at start): logged now, or when a log comes. */
void vhu_dirty_log_ring_written(struct vhu_vq *vq);

/* Data plane, only while vq->burst_log is set (dirty_log.c). */
/* Log [@p, @p + @len), local memory inside the burst's memory table.
 * 0; -EFAULT when it is not guest memory; -EIO when the log is too small
 * for it or lost (the queue is failed: a bit that cannot be set would
 * lose that page at the destination). */
int vhu_dirty_log_host(struct vhu_vq *vq, const void *p, uint64_t len);
/* After vhu_vq_push() of @n requests: what they wrote (@written bytes of
 * their writable segments, NULL: nothing) and the ring entries the push
 * wrote from the used position @old_used, @used_descs descriptors. */
void vhu_dirty_log_push(struct vhu_vq *vq, const struct vhu_req *reqs,
			const uint32_t *written, unsigned n, uint16_t old_used,
			uint32_t used_descs);
/* Packed: @n descriptors from slot @first were written (fast paths). */
void vhu_dirty_log_descs(struct vhu_vq *vq, uint16_t first, uint32_t n);
/* After a change of the ring's notification fields (set_kicks). */
void vhu_dirty_log_kicks(struct vhu_vq *vq);

#endif
