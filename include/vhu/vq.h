/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The device side of a virtqueue, for any virtio device type: take requests
 * the driver made available (as segments of local memory, already
 * translated and split where a buffer crosses a memory region), and return
 * them used.  Split and packed rings behind one interface.
 *
 * Threading rule: one data-plane thread at a time per queue (different
 * queues may run on different threads, concurrently with the control
 * thread).  Every call below except vhu_dev_vq() and vhu_vq_kick_fd() is
 * made inside a burst:
 *
 *	int st = vhu_vq_begin(vq);
 *	if (st & VHU_VQ_RUNNING) {
 *		n = vhu_vq_pop(vq, reqs, 32, segs, 256);
 *		... read/write the segments ...
 *		vhu_vq_push(vq, reqs, written, n);
 *		vhu_vq_notify(vq);
 *	}
 *	vhu_vq_end(vq);
 *
 * A burst that began RUNNING stays running to vhu_vq_end(): the control
 * thread waits for it before it stops, disables or moves the ring.  When
 * the front-end moves guest memory under a running ring, bursts see the
 * queue not RUNNING for a moment and vhu then writes the queue's kick
 * eventfd, so a data plane sleeping on it looks again.
 *
 * Segment pointers are valid until vhu_vq_end().  A request may be kept
 * across bursts and returned later; its segments then stay valid as long
 * as the front-end does not remove the memory they point into (vhu never
 * remaps memory that stays in the table).  The control thread never waits
 * for more than one burst: keep bursts short.
 *
 * Disconnects, reconnects and restarts need nothing of the data plane: a
 * data-plane thread may run bursts on its queues for the life of the
 * device, whatever the front-end does.  While a queue is stopped (the
 * front-end went away, a GET_VRING_BASE, a migration) bursts see it not
 * RUNNING and pop nothing; when a front-end sets it up again it runs
 * again, at the ring position vhu found: a split ring resumes at the base
 * given and the used index in the ring; a packed ring where the ring
 * itself shows the device stopped (the front-end's base when it fits,
 * else what vhu marked in the ring: after a back-end crash QEMU sends
 * a stale one).  Buffers taken and not returned when the queue stopped
 * are taken again after the restart: a frame sent may be sent once more.
 * The only thing to follow is the kick eventfd, which changes with
 * VHU_QUEUE_STARTED and VHU_QUEUE_STOPPED: a thread that sleeps on it
 * fetches it again (vhu_vq_kick_fd()) after those events.  A request held
 * across a stop cannot be returned any more: hold none past a burst when
 * the device cannot replay it (virtio-net's calls never do).
 *
 * A device that completes requests out of order and holds them across
 * bursts (a block device waiting for its I/O) sets vhu_dev_opts.inflight:
 * vhu then records each request from pop to push in the front-end's
 * inflight region, and after a restart of the queue, or of the whole
 * back-end process, vhu_vq_pop() hands out first the requests that were
 * in flight, oldest first, then new ones.  The application drops what it
 * held from before (vhu_vq_generation() tells) and does the replayed
 * requests again: it must be able to do a request twice.
 */
#ifndef VHU_VQ_H
#define VHU_VQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vhu/dev.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vhu_dev;
struct vhu_vq;

/** vhu_dev_vq() - queue @index of @dev, or NULL if out of range. */
VHU_API struct vhu_vq *vhu_dev_vq(struct vhu_dev *dev, uint16_t index);

/* vhu_vq_begin() result bits. */
#define VHU_VQ_RUNNING 0x1u /* started: the ring may be processed */
#define VHU_VQ_ENABLED 0x2u /* enabled: side effects allowed (e.g. net RX) */
#define VHU_VQ_BROKEN 0x4u  /* the ring is unusable until set up again */
/* stopping: push the requests held, no new ones come (stop_drain_ms) */
#define VHU_VQ_DRAINING 0x8u

/** vhu_vq_begin() - start a burst; returns VHU_VQ_* bits.  Always pair
 *  with vhu_vq_end(), whatever it returned. */
VHU_API unsigned vhu_vq_begin(struct vhu_vq *vq);
/** vhu_vq_end() - end the burst. */
VHU_API void vhu_vq_end(struct vhu_vq *vq);

/** A piece of a request's buffers, in local memory. */
struct vhu_seg {
	void *addr;
	uint32_t len;
};

/** A request the driver made available. */
struct vhu_req {
	uint16_t id;      /* identifies the request; give it back to push */
	uint16_t ndesc;   /* ring descriptors it occupies (packed) */
	uint16_t nr_out;  /* device-readable segments: segs[0 .. nr_out-1] */
	uint16_t nr_in;   /* device-writable segments: segs[nr_out ..] */
	uint32_t out_len; /* bytes readable */
	uint32_t in_len;  /* bytes writable */
	struct vhu_seg *segs;
};

/**
 * vhu_vq_pop() - take up to @max available requests.  Their segments are
 * stored in @segs (capacity @nsegs), shared by the requests in order.
 * Returns the number taken (0: none available, or the queue is not
 * running), -ENOBUFS if the first request needs more than @nsegs segments
 * (nothing is taken), -EIO if the ring is broken (see the log; the queue
 * stays broken until the front-end sets it up again).
 */
VHU_API int vhu_vq_pop(struct vhu_vq *vq, struct vhu_req *reqs, unsigned max,
		       struct vhu_seg *segs, unsigned nsegs);

/**
 * vhu_vq_push() - return @n requests as used; @written[i] bytes were
 * written into request i's device-writable segments (NULL: 0 for all).
 * With VIRTIO_F_IN_ORDER negotiated, requests must be returned in the order
 * they were taken.  Returns 0, -EAGAIN outside a running burst, -EINVAL
 * for a request the queue never handed out, -EIO on a broken ring.
 *
 * During a live migration (the front-end turned dirty-page logging on)
 * this also logs the pages of the first @written[i] bytes of request i's
 * device-writable segments, and the ring entries it writes: report what
 * you wrote truthfully and logging needs nothing more from you.  Writes
 * into guest memory that @written does not cover: vhu_vq_log_write().
 */
VHU_API int vhu_vq_push(struct vhu_vq *vq, const struct vhu_req *reqs,
			const uint32_t *written, unsigned n);

/**
 * vhu_vq_notify() - signal the driver (call eventfd, i.e. an interrupt in
 * the guest) if it asked to be told about the requests used since the last
 * signal (event index, NO_INTERRUPT, packed event suppression).  Call once
 * per burst.  Returns 1 if it signalled, 0 if not needed, -errno.
 */
VHU_API int vhu_vq_notify(struct vhu_vq *vq);

/**
 * vhu_vq_set_kicks() - ask the driver to kick (@on) or not to (@off, for
 * polling).  Turning kicks on returns 1 if requests became available
 * meanwhile: process them before sleeping, or a wakeup is lost.  0
 * otherwise.
 */
VHU_API int vhu_vq_set_kicks(struct vhu_vq *vq, bool on);

/**
 * vhu_vq_log_write() - during a live migration, log a write the
 * application made into guest memory at @addr (a segment pointer, or
 * anywhere inside the burst's guest memory) of @len bytes, which
 * vhu_vq_push()'s @written does not cover: e.g. bytes beyond the count it
 * reports, or memory it reached other than through a request's segments.
 * Call it after the write and before the request is pushed, inside the
 * burst.  Returns 0 (also when no migration is in progress: nothing is
 * checked then, the call is one test), -EFAULT when @addr is not guest
 * memory, -EAGAIN outside a running burst, -EIO when the queue broke (the
 * log is too small for the page, or it vanished).
 */
VHU_API int vhu_vq_log_write(struct vhu_vq *vq, const void *addr, size_t len);

/** vhu_vq_avail() - are requests available?  (Cheap: one index read.) */
VHU_API bool vhu_vq_avail(struct vhu_vq *vq);

/**
 * vhu_vq_kick_fd() - the eventfd the driver kicks (readable when kicked),
 * or -1 when the front-end asked for polling or the queue is stopped.  The
 * fd changes only with VHU_QUEUE_STARTED / VHU_QUEUE_STOPPED events.  Call
 * from the control thread, or from the data plane inside a burst.
 */
VHU_API int vhu_vq_kick_fd(struct vhu_vq *vq);

/** vhu_vq_kick_clear() - consume pending kicks (reads the eventfd); returns
 *  the number of kicks, 0 if none. */
VHU_API uint64_t vhu_vq_kick_clear(struct vhu_vq *vq);

/** vhu_vq_index() / vhu_vq_size() / vhu_vq_packed() / vhu_vq_in_order(). */
VHU_API uint16_t vhu_vq_index(const struct vhu_vq *vq);
VHU_API uint32_t vhu_vq_size(const struct vhu_vq *vq);
VHU_API bool vhu_vq_packed(const struct vhu_vq *vq);
VHU_API bool vhu_vq_in_order(const struct vhu_vq *vq);

/**
 * vhu_vq_generation() - changes every time the queue starts.  A request
 * taken in a burst of another generation than the current one can no
 * longer be pushed (the queue stopped in between; with inflight tracking
 * it is handed out again): an application that keeps requests across
 * bursts (I/O in progress) compares the generation it saw at pop with this,
 * inside a running burst, and drops stale ones.
 */
VHU_API uint32_t vhu_vq_generation(const struct vhu_vq *vq);

/** Counters of a queue, updated by the data plane. */
struct vhu_vq_stats {
	uint64_t popped;   /* requests taken */
	uint64_t pushed;   /* requests returned */
	uint64_t calls;    /* used-buffer notifications sent */
	uint64_t calls_suppressed; /* notifications the driver did not want */
	uint64_t kicks;    /* kicks consumed by vhu_vq_kick_clear() */
	uint64_t errors;   /* ring errors (the queue broke) */
};

/** vhu_vq_stats() - a snapshot of the counters (any thread; values may lag
 *  by one burst). */
VHU_API void vhu_vq_stats(const struct vhu_vq *vq, struct vhu_vq_stats *stats);

#ifdef __cplusplus
}
#endif

#endif
