/* SPDX-License-Identifier: BSD-3-Clause */
/* The virtqueue data plane: bursts, notifications, kicks, counters. */
#include "rings/vq.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Counters the queue's data plane alone writes: a plain add, stored
 * untorn for vhu_vq_stats() readers (no locked instruction per burst). */
#define STAT_ADD(vq, field, n) vhu_stat_add(&(vq)->field, (n))
/* Counters other threads may write too (errors, kicks). */
#define STAT_ADD_SHARED(vq, field, n) \
	atomic_fetch_add_explicit(&(vq)->field, (n), memory_order_relaxed)

/* Private to the data plane: the state seen at vhu_vq_begin() (or since
 * set BROKEN by vhu_vq_fail()).  The control thread waits for the burst to
 * end before it changes anything, so a burst that began RUNNING stays so:
 * no call of it is skipped half-way (a skipped notify or set_kicks loses a
 * wakeup). */
static inline bool burst_running(const struct vhu_vq *vq, uint32_t *state)
{
	*state = vq->burst_state;
	return (*state & VHU_DP_RUNNING) && vq->mt;
}

/* The guard replaced a region of this device: break the queue if its
 * table holds it (a later table without it is fine). */
static uint32_t burst_check_lost_memory(struct vhu_vq *vq)
{
	const struct vhu_region *r = vhu_mem_lost_region(vq->mt);

	if (vq->burst_log &&
	    atomic_load_explicit(&vq->burst_log->lost, memory_order_relaxed))
		vhu_vq_fail(vq, "the dirty log vanished under its mapping (file "
			    "truncated?); the SIGBUS guard replaced it with zero "
			    "pages, and writes can no longer be logged");
	else if (vq->ifl && vq->dev->inflight &&
		 atomic_load_explicit(&vq->dev->inflight->lost, memory_order_relaxed))
		vhu_vq_fail(vq, "the inflight region vanished under its mapping "
			    "(file truncated?); requests can no longer be tracked");
	else if (r)
		vhu_vq_fail(vq, "guest memory at gpa 0x%llx (size 0x%llx) vanished "
			    "under a mapping (file truncated?); the SIGBUS guard "
			    "replaced it with zero pages",
			    (unsigned long long)r->gpa, (unsigned long long)r->size);
	return vq->burst_state;
}

unsigned vhu_vq_begin(struct vhu_vq *vq)
{
	uint32_t s;
	unsigned r = 0;

	/* The read section covers the memory table and the ring fields: the
	 * control thread waits for it before unmapping or changing them. */
	vq->mt = vhu_mem_read_begin(&vq->dev->mem, &vq->reader);
	vq->rhint = NULL; /* regions of an older table may be gone */
	/* Acquire pairs with the release in vq_publish() (vring.c). */
	s = atomic_load_explicit(&vq->dp_state, memory_order_acquire);
	vq->burst_state = s;
	/* Acquire pairs with the release in log_publish() (dirty_log.c). */
	vq->burst_log = atomic_load_explicit(&vq->dev->dp_log, memory_order_acquire);
	/* Acquire pairs with the release in vhu_guard_handle_fault(). */
	if (unlikely(atomic_load_explicit(&vq->dev->mem.faults,
					  memory_order_acquire)) &&
	    (s & VHU_DP_RUNNING) && vq->mt)
		s = burst_check_lost_memory(vq);
	if (s & VHU_DP_RUNNING)
		r |= VHU_VQ_RUNNING;
	if (s & VHU_DP_ENABLED)
		r |= VHU_VQ_ENABLED;
	if (s & VHU_DP_BROKEN)
		r |= VHU_VQ_BROKEN;
	if (s & VHU_DP_DRAINING)
		r |= VHU_VQ_DRAINING;
	return r;
}

void vhu_vq_end(struct vhu_vq *vq)
{
	if (unlikely(vq->burst_state & VHU_DP_DRAINING) &&
	    vq->used_idx == vq->last_avail_idx &&
	    (!vq->packed || vq->used_wrap == vq->avail_wrap))
		/* Release, barrier [vq-drain]: pairs with the acquire load in
		 * vhu_vq_drain(); the pushes of this burst come first. */
		atomic_store_explicit(&vq->drained, true, memory_order_release);
	vq->mt = NULL;
	vq->burst_state = 0;
	vq->burst_log = NULL;
	vhu_mem_read_end(&vq->reader);
}

int vhu_vq_fail(struct vhu_vq *vq, const char *fmt, ...)
{
	uint32_t old = atomic_load_explicit(&vq->dp_state, memory_order_relaxed);
	char why[256];
	va_list ap;
	int efd;

	while (!atomic_compare_exchange_weak_explicit(
		&vq->dp_state, &old, (old | VHU_DP_BROKEN) & ~VHU_DP_RUNNING,
		memory_order_relaxed, memory_order_relaxed))
		;
	vq->burst_state = (vq->burst_state | VHU_DP_BROKEN) & ~VHU_DP_RUNNING;
	if (old & VHU_DP_BROKEN)
		return -EIO;
	STAT_ADD_SHARED(vq, st_errors, 1);
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	vhu_log_ratelimited(&vq->dp_lg, VHU_LOG_ERR, "queue %u broken: %s",
			    vq->index, why);
	/* Acquire, barrier [vq-fd]: pairs with the exchange in swap_fd()
	 * (vring.c), so the fd is used after the control thread received it. */
	efd = atomic_load_explicit(&vq->err_fd, memory_order_acquire);
	if (efd >= 0) {
		uint64_t one = 1;

		if (write(efd, &one, sizeof(one)) != sizeof(one))
			vhu_log_ratelimited(&vq->dp_lg, VHU_LOG_WARN,
					    "queue %u: error eventfd write failed",
					    vq->index);
	} else if (vq->inband_calls) {
		struct vhu_vring_state st = { .index = vq->index, .num = 0 };

		vhu_backend_send(vq->dev, &vq->dp_lg, VHU_BREQ_VRING_ERR, &st,
				 sizeof(st));
	}
	return -EIO;
}

const void *vhu_vq_indirect_table(struct vhu_vq *vq, struct vhu_chain *c,
				  uint64_t gpa, uint32_t len)
{
	const void *p;
	uint8_t *dst;

	if (len == 0 || len % sizeof(struct vring_desc) ||
	    len / sizeof(struct vring_desc) > VHU_MAX_INDIRECT) {
		c->why = "indirect table length is 0, not a multiple of 16, or "
			 "longer than 32768 entries";
		return NULL;
	}
	p = vhu_gpa_to_va_whole(c->mt, gpa, len);
	if (likely(p && !(gpa & 7)))
		return p;
	/* The table crosses regions, is not 8-byte aligned (its fields could
	 * not be loaded in one access), or is not mapped at all: copy it. */
	if (!vq->bounce) {
		vq->bounce = malloc(VHU_MAX_INDIRECT * sizeof(struct vring_desc));
		if (!vq->bounce) {
			c->why = "no memory for an indirect table crossing regions";
			return NULL;
		}
	}
	dst = (uint8_t *)vq->bounce;
	for (uint32_t done = 0; done < len;) {
		uint64_t chunk = len - done;
		const void *src = vhu_gpa_to_va(c->mt, gpa + done, &chunk);

		if (!src) {
			c->why = "indirect table outside guest memory";
			return NULL;
		}
		memcpy(dst + done, src, chunk);
		done += (uint32_t)chunk;
	}
	return vq->bounce;
}

/* Inflight tracking on: first what a previous back-end left in flight,
 * then new requests, each recorded before the application sees it. */
static __attribute__((noinline)) int pop_tracked(struct vhu_vq *vq,
						 struct vhu_req *reqs, unsigned max,
						 struct vhu_seg *segs, unsigned nsegs)
{
	uint16_t from = vq->last_avail_idx;
	bool from_wrap = vq->avail_wrap;
	int n = vhu_inflight_pop_resubmit(vq, reqs, max, segs, nsegs);

	if (n == 0) {
		n = vq->packed ? vhu_vq_pop_packed(vq, reqs, max, segs, nsegs)
			       : vhu_vq_pop_split(vq, reqs, max, segs, nsegs);
		if (n > 0 && vhu_inflight_popped(vq, reqs, (unsigned)n, from, from_wrap))
			return -EIO;
	}
	if (n > 0)
		STAT_ADD(vq, st_popped, (uint64_t)n);
	return n;
}

int vhu_vq_pop(struct vhu_vq *vq, struct vhu_req *reqs, unsigned max,
	       struct vhu_seg *segs, unsigned nsegs)
{
	uint32_t s;
	int n;

	if (!burst_running(vq, &s))
		return s & VHU_DP_BROKEN ? -EIO : 0;
	if (max == 0)
		return 0;
	if (unlikely(s & VHU_DP_DRAINING)) {
		/* nothing new; a request a crashed back-end left is one the
		 * drain waits for */
		n = vq->ifl ? vhu_inflight_pop_resubmit(vq, reqs, max, segs, nsegs) : 0;
		if (n > 0)
			STAT_ADD(vq, st_popped, (uint64_t)n);
		return n;
	}
	if (unlikely(vq->ifl))
		return pop_tracked(vq, reqs, max, segs, nsegs);
	n = vq->packed ? vhu_vq_pop_packed(vq, reqs, max, segs, nsegs)
		       : vhu_vq_pop_split(vq, reqs, max, segs, nsegs);
	if (n > 0)
		STAT_ADD(vq, st_popped, (uint64_t)n);
	return n;
}

int vhu_vq_push(struct vhu_vq *vq, const struct vhu_req *reqs,
		const uint32_t *written, unsigned n)
{
	uint32_t s;
	int rc;

	if (!burst_running(vq, &s))
		return s & VHU_DP_BROKEN ? -EIO : -EAGAIN;
	if (n == 0)
		return 0;
	uint16_t old_used = vq->used_idx;
	bool old_wrap = vq->used_wrap;

	if (unlikely(vq->ifl))
		rc = vhu_inflight_push(vq, reqs, written, n);
	else
		rc = vq->packed ? vhu_vq_push_packed(vq, reqs, written, n)
				: vhu_vq_push_split(vq, reqs, written, n);
	if (rc == 0) {
		STAT_ADD(vq, st_pushed, n);
		vq->pending_used = (uint16_t)(vq->pending_used + n);
		if (unlikely(vq->burst_log)) {
			/* Packed: descriptors from the old used position to
			 * the new one, a lap counted by the wrap counter. */
			uint32_t descs = (uint32_t)vq->used_idx +
					 (vq->used_wrap != old_wrap ? vq->size : 0) -
					 old_used;

			vhu_dirty_log_push(vq, reqs, written, n, old_used, descs);
		}
	}
	return rc;
}

static void send_call(struct vhu_vq *vq)
{
	/* Acquire, barrier [vq-fd]: as for err_fd in vhu_vq_fail(). */
	int fd = atomic_load_explicit(&vq->call_fd, memory_order_acquire);

	if (fd >= 0) {
		uint64_t one = 1;

		/* An eventfd write fails only on counter overflow: the guest
		 * then has an interrupt pending anyway. */
		if (write(fd, &one, sizeof(one)) < 0)
			return;
	} else if (vq->inband_calls) {
		struct vhu_vring_state st = { .index = vq->index, .num = 0 };

		if (vhu_backend_send(vq->dev, &vq->dp_lg, VHU_BREQ_VRING_CALL,
				     &st, sizeof(st)))
			return;
	} else {
		return; /* the front-end polls */
	}
	STAT_ADD(vq, st_calls, 1);
}

int vhu_vq_notify(struct vhu_vq *vq)
{
	uint32_t s;
	bool need;

	if (!burst_running(vq, &s))
		return s & VHU_DP_BROKEN ? -EIO : 0;
	if (vq->pending_used == 0)
		return 0;
	/* Barrier [used-event]: our used-ring stores before the reads of the
	 * driver's suppression fields; pairs with the driver's full barrier
	 * between writing those fields and re-checking the used ring. */
	vhu_smp_mb();
	need = vq->packed ? vhu_vq_need_call_packed(vq) : vhu_vq_need_call_split(vq);
	vq->pending_used = 0;
	if (!need) {
		STAT_ADD(vq, st_calls_suppressed, 1);
		return 0;
	}
	send_call(vq);
	return 1;
}

int vhu_vq_set_kicks(struct vhu_vq *vq, bool on)
{
	uint32_t s;

	int rc;

	if (!burst_running(vq, &s))
		return 0;
	rc = vq->packed ? vhu_vq_set_kicks_packed(vq, on)
			: vhu_vq_set_kicks_split(vq, on);
	if (unlikely(vq->burst_log))
		vhu_dirty_log_kicks(vq);
	/* draining: what the driver made available is not handed out, so it
	 * is no reason to look again (vhu_vq_avail() says the same) */
	return unlikely(s & VHU_DP_DRAINING) ? 0 : rc;
}

int vhu_vq_log_write(struct vhu_vq *vq, const void *addr, size_t len)
{
	uint32_t s;

	if (!burst_running(vq, &s))
		return s & VHU_DP_BROKEN ? -EIO : -EAGAIN;
	if (likely(!vq->burst_log) || len == 0)
		return 0;
	return vhu_dirty_log_host(vq, addr, len);
}

bool vhu_vq_avail(struct vhu_vq *vq)
{
	uint32_t s;

	if (!burst_running(vq, &s))
		return false;
	if (unlikely(s & VHU_DP_DRAINING)) /* only what a crashed back-end left */
		return vq->ifl && vq->ifl->next_resubmit < vq->ifl->nresubmit;
	return vq_has_avail(vq);
}

int vhu_vq_kick_fd(struct vhu_vq *vq)
{
	/* Acquire, barrier [vq-fd]: as for err_fd in vhu_vq_fail(). */
	return atomic_load_explicit(&vq->kick_fd, memory_order_acquire);
}

uint64_t vhu_vq_kick_clear(struct vhu_vq *vq)
{
	/* Acquire, barrier [vq-fd]: as for err_fd in vhu_vq_fail(). */
	int fd = atomic_load_explicit(&vq->kick_fd, memory_order_acquire);
	uint64_t v = 0;

	if (fd < 0 || read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	STAT_ADD_SHARED(vq, st_kicks, v);
	return v;
}

uint32_t vhu_vq_generation(const struct vhu_vq *vq)
{
	return vq->gen;
}

uint16_t vhu_vq_index(const struct vhu_vq *vq)
{
	return vq->index;
}

uint32_t vhu_vq_size(const struct vhu_vq *vq)
{
	return vq->size;
}

bool vhu_vq_packed(const struct vhu_vq *vq)
{
	return vq->packed;
}

bool vhu_vq_in_order(const struct vhu_vq *vq)
{
	return vq->in_order;
}

void vhu_vq_stats(const struct vhu_vq *vq, struct vhu_vq_stats *st)
{
	struct vhu_vq *v = (struct vhu_vq *)vq;

	st->popped = atomic_load_explicit(&v->st_popped, memory_order_relaxed);
	st->pushed = atomic_load_explicit(&v->st_pushed, memory_order_relaxed);
	st->calls = atomic_load_explicit(&v->st_calls, memory_order_relaxed);
	st->calls_suppressed =
		atomic_load_explicit(&v->st_calls_suppressed, memory_order_relaxed);
	st->kicks = atomic_load_explicit(&v->st_kicks, memory_order_relaxed);
	st->errors = atomic_load_explicit(&v->st_errors, memory_order_relaxed);
}
