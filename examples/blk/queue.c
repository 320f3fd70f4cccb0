/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One queue's request loop, run by its data-plane thread (or a test):
 *
 *   reap completions                                  (no burst)
 *   burst: push the completed requests of this generation, drop the
 *          others (the queue restarted: vhu hands them out again);
 *          pop new ones into free slots, parse them, answer at once
 *          those that need no I/O; one push, one notify
 *   start and submit the I/O of the requests popped   (no burst)
 *
 * The I/O itself runs outside bursts, so the control thread never waits
 * on a disk; a request's segments stay valid across bursts (vhu/vq.h).
 * Status bytes are written inside the burst that pushes them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "blk.h"

#define SLOT_SEGS 16u         /* segments a slot starts with; grows on demand */
#define REFUSALS_LOGGED 5u    /* without --verbose, then only counted */

#define ADD(x, v) atomic_fetch_add_explicit(&(x), (v), memory_order_relaxed)

static enum blk_stat_type stat_type(uint32_t type)
{
	switch (type) {
	case VIRTIO_BLK_T_IN: return BLK_ST_IN;
	case VIRTIO_BLK_T_OUT: return BLK_ST_OUT;
	case VIRTIO_BLK_T_FLUSH: return BLK_ST_FLUSH;
	case VIRTIO_BLK_T_GET_ID: return BLK_ST_GET_ID;
	case VIRTIO_BLK_T_DISCARD: return BLK_ST_DISCARD;
	case VIRTIO_BLK_T_WRITE_ZEROES: return BLK_ST_WRITE_ZEROES;
	default: return BLK_ST_OTHER;
	}
}

static int slot_grow(struct blk_slot *s)
{
	unsigned cap = s->cap * 2 < BLK_MAX_SEGS ? s->cap * 2 : BLK_MAX_SEGS;
	struct vhu_seg *segs;
	struct iovec *iov;

	if (cap <= s->cap)
		return -E2BIG;
	segs = realloc(s->segs, cap * sizeof(*segs));
	if (!segs)
		return -ENOMEM;
	s->segs = segs;
	iov = realloc(s->iov, cap * sizeof(*iov));
	if (!iov)
		return -ENOMEM;
	s->iov = iov;
	s->cap = cap;
	return 0;
}

/* Write the status, queue the request for this burst's push. */
static void answer(struct blk_queue *q, struct blk_slot *s)
{
	struct blk_req *r = &s->br;
	uint32_t written = 0;

	if (r->status_ptr) {
		*(volatile uint8_t *)r->status_ptr = r->status;
		written = blk_req_written(r, s->data_done);
		/* the used length does not reach the status byte: tell the
		 * dirty log about it (a no-op unless migrating) */
		if (r->status_off >= written)
			vhu_vq_log_write(q->vq, r->status_ptr, 1);
	} else {
		ADD(q->st.no_status, 1);
	}
	if (r->status == VIRTIO_BLK_S_IOERR)
		ADD(q->st.ioerr, 1);
	else if (r->status == VIRTIO_BLK_S_UNSUPP)
		ADD(q->st.unsupp, 1);
	else if (r->type == VIRTIO_BLK_T_IN)
		ADD(q->st.bytes_read, r->len);
	else if (r->type == VIRTIO_BLK_T_OUT)
		ADD(q->st.bytes_written, r->len);
	q->push_reqs[q->npush] = s->req;
	q->push_written[q->npush] = written;
	q->push_slots[q->npush++] = s;
}

static void log_refusal(struct blk_queue *q, const struct blk_req *r)
{
	if (!q->verbose && q->refusals_logged > REFUSALS_LOGGED)
		return;
	if (!q->verbose && q->refusals_logged++ == REFUSALS_LOGGED) {
		fprintf(stderr, "vhu-blk: queue %u: more refused requests are only "
			"counted (--verbose logs them)\n", q->index);
		return;
	}
	fprintf(stderr, "vhu-blk: queue %u: %s request (type %u) refused with %s: %s\n",
		q->index, blk_type_name(r->type), r->type,
		r->status == VIRTIO_BLK_S_UNSUPP ? "UNSUPP" : "IOERR", r->why);
}

/* Take requests while slots are free (the bound of one burst). */
static void pop_requests(struct blk_queue *q, uint32_t gen)
{
	while (q->nfree) {
		struct blk_slot *s = q->free[q->nfree - 1];
		int n = vhu_vq_pop(q->vq, &s->req, 1, s->segs, s->cap);

		if (n == -ENOBUFS) {
			if (slot_grow(s) == 0)
				continue;
			if (!q->stall_logged)
				fprintf(stderr, "vhu-blk: queue %u: a request takes more "
					"than %u segments: the queue stalls until the "
					"driver resets it\n", q->index, s->cap);
			q->stall_logged = true;
			return;
		}
		if (n <= 0)
			return; /* empty, or the ring broke (vhu logged it) */
		q->nfree--;
		s->gen = gen;
		s->data_done = 0;
		blk_req_parse(&s->req, q->lim, s->iov, s->cap, &s->br);
		ADD(q->st.reqs[stat_type(s->br.type)], 1);
		if (s->br.status != VIRTIO_BLK_S_OK) {
			log_refusal(q, &s->br);
			answer(q, s);
		} else if (s->br.type == VIRTIO_BLK_T_GET_ID) {
			s->data_done = (uint32_t)blk_iov_copy_to(s->br.iov, s->br.niov,
								 q->serial, s->br.len);
			answer(q, s);
		} else {
			q->start[q->nstart++] = s;
		}
	}
}

/* --hold: every hold_every-th completion waits hold_ms before it is
 * answered, so requests complete out of order even on a quiet disk: a
 * crash then finds later requests used while an earlier one is in flight,
 * the case only inflight tracking recovers (test/interop/qemu-blk.sh). */
static bool hold_back(struct blk_queue *q, struct blk_slot *s)
{
	if (!q->hold_every || ++q->completions % q->hold_every)
		return false;
	s->hold_until = blk_now_ms() + q->hold_ms;
	q->held[q->nheld++] = s;
	if (q->verbose) /* a crash test stops the back-end on this line */
		fprintf(stderr, "vhu-blk: queue %u: holding a completion %u ms (--hold)\n",
			q->index, q->hold_ms);
	return true;
}

static void answer_or_drop(struct blk_queue *q, struct blk_slot *s, uint32_t gen)
{
	if (s->gen == gen) {
		answer(q, s);
	} else {
		ADD(q->st.stale, 1);
		q->free[q->nfree++] = s;
	}
}

/* Answer the held completions whose time came (all of them at exit); the
 * thread sleeps no longer than the next one's. */
static void release_held(struct blk_queue *q, uint32_t gen)
{
	int64_t now = blk_now_ms(), wait = -1;
	bool all = atomic_load(&q->stop);
	unsigned k = 0;

	for (unsigned i = 0; i < q->nheld; i++) {
		struct blk_slot *s = q->held[i];

		if (s->hold_until > now && !all) {
			if (wait < 0 || s->hold_until - now < wait)
				wait = s->hold_until - now;
			q->held[k++] = s;
		} else {
			answer_or_drop(q, s, gen);
		}
	}
	q->nheld = k;
	if (wait >= 0 && (q->sleep_ms < 0 || wait < q->sleep_ms))
		q->sleep_ms = (int)wait;
}

/* Completed requests of this generation are answered, older ones dropped. */
static void answer_completed(struct blk_queue *q, uint32_t gen)
{
	struct blk_slot *s;

	while ((s = blk_io_take_done(&q->io)))
		if (s->gen != gen || !hold_back(q, s))
			answer_or_drop(q, s, gen);
}

static void push_answered(struct blk_queue *q)
{
	if (!q->npush)
		return;
	/* -EIO: the ring broke meanwhile; vhu logged it and the requests
	 * are gone with it */
	vhu_vq_push(q->vq, q->push_reqs, q->push_written, q->npush);
	vhu_vq_notify(q->vq);
	for (unsigned i = 0; i < q->npush; i++)
		q->free[q->nfree++] = q->push_slots[i];
	q->npush = 0;
}

bool blk_queue_run(struct blk_queue *q, bool accept)
{
	unsigned ev = atomic_load(&q->events);
	bool again = false;
	unsigned st;

	blk_io_reap(&q->io);
	st = vhu_vq_begin(q->vq);
	if (ev != q->seen_events) {
		/* started or stopped: the kick fd may have changed */
		q->seen_events = ev;
		q->kick_fd = vhu_vq_kick_fd(q->vq);
	}
	q->sleep_ms = -1;
	if (st & VHU_VQ_RUNNING) {
		uint32_t gen = vhu_vq_generation(q->vq);
		bool take = accept && (st & VHU_VQ_ENABLED);

		if (q->kick_fd >= 0)
			vhu_vq_kick_clear(q->vq);
		answer_completed(q, gen);
		if (take)
			pop_requests(q, gen);
		if (take && q->kick_fd < 0)
			q->sleep_ms = 1; /* polling or in-band kicks: look again soon */
		release_held(q, gen);
		push_answered(q);
		/* before sleeping: kicks on, and a last look at the ring */
		if (take && q->nfree && vhu_vq_set_kicks(q->vq, true) == 1)
			again = true;
	}
	vhu_vq_end(q->vq);
	for (unsigned i = 0; i < q->nstart; i++)
		blk_io_start(&q->io, q->start[i]);
	q->nstart = 0;
	blk_io_submit(&q->io);
	if ((st & VHU_VQ_RUNNING) && q->io.done_head)
		again = true; /* synchronous completions to push */
	return again;
}

unsigned blk_queue_busy(const struct blk_queue *q)
{
	return q->nslots - q->nfree;
}

int blk_queue_init(struct blk_queue *q, struct vhu_vq *vq, uint16_t index,
		   struct blk_image *img, const struct blk_limits *lim,
		   const char *serial, unsigned nslots, bool no_uring,
		   bool verbose)
{
	memset(q, 0, sizeof(*q));
	q->vq = vq;
	q->index = index;
	q->lim = lim;
	q->verbose = verbose;
	q->kick_fd = -1;
	q->sleep_ms = -1;
	q->seen_events = ~0u;
	strncpy(q->serial, serial ? serial : "", sizeof(q->serial));
	q->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->wake_fd < 0)
		return -errno;
	q->nslots = nslots;
	q->slots = aligned_alloc(_Alignof(struct blk_slot), nslots * sizeof(*q->slots));
	q->free = calloc(nslots, sizeof(*q->free));
	q->start = calloc(nslots, sizeof(*q->start));
	q->push_reqs = calloc(nslots, sizeof(*q->push_reqs));
	q->push_written = calloc(nslots, sizeof(*q->push_written));
	q->push_slots = calloc(nslots, sizeof(*q->push_slots));
	q->held = calloc(nslots, sizeof(*q->held));
	if (!q->slots || !q->free || !q->start || !q->push_reqs ||
	    !q->push_written || !q->push_slots || !q->held)
		goto err_nomem;
	memset(q->slots, 0, nslots * sizeof(*q->slots));
	for (unsigned i = 0; i < nslots; i++) {
		struct blk_slot *s = &q->slots[i];

		s->segs = calloc(SLOT_SEGS, sizeof(*s->segs));
		s->iov = calloc(SLOT_SEGS, sizeof(*s->iov));
		if (!s->segs || !s->iov)
			goto err_nomem;
		s->cap = SLOT_SEGS;
		q->free[q->nfree++] = s;
	}
	q->uring_err = blk_io_init(&q->io, img, nslots, no_uring, q->wake_fd);
	return 0;

err_nomem:
	blk_queue_fini(q);
	return -ENOMEM;
}

void blk_queue_fini(struct blk_queue *q)
{
	blk_io_fini(&q->io);
	if (q->slots)
		for (unsigned i = 0; i < q->nslots; i++) {
			free(q->slots[i].segs);
			free(q->slots[i].iov);
		}
	free(q->slots);
	free(q->free);
	free(q->start);
	free(q->push_reqs);
	free(q->push_written);
	free(q->push_slots);
	free(q->held);
	if (q->wake_fd >= 0)
		close(q->wake_fd);
	memset(q, 0, sizeof(*q));
	q->wake_fd = -1;
}
