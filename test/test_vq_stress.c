/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The virtqueue data plane under load, end to end: a vhu device served by
 * a control thread (tu_backend), the in-tree front-end (vhu_fe) after
 * QEMU's handshake, and per queue one driver thread (guest side, fe ring
 * code) and one device thread (vhu_vq_*), running against each other.
 *
 * The driver adds chains of random shape: 1..4 readable buffers carrying a
 * header, a payload and its checksum, 0..4 writable buffers; some through
 * an indirect table; some buffers (or the table) straddling the boundary
 * between two memory regions.  The device checks every request (sequence,
 * lengths, checksum), writes a pattern and its checksum into the writable
 * buffers, sometimes keeps a request for a later burst, and returns them
 * in random order.  The driver checks the used length and every byte.
 *
 * Both sides sleep on their eventfds when idle, after re-arming
 * notifications and re-checking the ring (device: vhu_vq_set_kicks(),
 * driver: enable_cb and reap).  No sleep is rescued by a timeout: a wait
 * that times out with work pending fails the test as a lost wakeup.
 *
 * Variants: split and packed rings; event idx on and off; ring sizes 8 and
 * 256 (split rings start just below 2^16 so the 16-bit indexes wrap; small
 * packed rings wrap their counters every few requests); in-order; two
 * queues on two device threads; the control thread replacing the memory
 * table (SET_MEM_TABLE with the same regions, ADD/REM_MEM_REG of an unused
 * region) and toggling SET_VRING_ENABLE while the traffic runs ("churn");
 * the control thread describing the rings' region differently in turn, so
 * every SET_MEM_TABLE moves the rings ("remap"); and the control thread
 * stopping every ring (GET_VRING_BASE, checked against the driver) and
 * starting it again, as QEMU does on vhost stop/start ("restart").
 *
 * The device thread is written the way an application should be: it
 * processes a ring only while vhu_vq_begin() says RUNNING and ENABLED,
 * sleeps on the kick fd otherwise, is woken by the ENABLED, STARTED and
 * STOPPED events (and takes the kick fd again then), and keeps requests
 * whose push was refused with -EAGAIN for a later burst.
 *
 * Environment: VHU_STRESS_REQS requests per queue (default 100000, halved
 * per queue with two queues); VHU_STRESS_QUICK=1 (implied under valgrind
 * and ThreadSanitizer) makes the default 20000; VHU_STRESS_SEED fixes the
 * shapes (each test prints its seed; thread timing still varies);
 * VHU_STRESS_ONLY=substring runs only the tests whose names contain it,
 * VHU_STRESS_SKIP=substring skips them.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <vhu/vhu.h>
#include <vhu/dev.h>
#include <vhu/vq.h>

#include "fe.h"
#include "internal.h" /* struct vhu_vq, for the state dump of a failure */
#include "protocol/proto.h"
#include "testutil.h"

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

/* Guest memory: NREG adjacent regions (NREG - 1 boundaries to straddle)
 * and one extra region far away that no buffer uses, for ADD/REM. */
#define NREG 4
#define REG_SIZE (2ull << 20)
#define EXTRA_GPA (64ull << 20)
#define EXTRA_SIZE (1ull << 20)
#define EXTRA_IDX NREG
#define NBND (NREG - 1)
#define WIN_HALF 4096ull /* straddle window: this much each side */

#define MAXQ 2
#define MAX_RING 256
#define SLOT_BYTES 4096ull /* per request in flight: buffers and table */
#define MAX_OUT 4
#define MAX_IN 4
#define MAX_PAYLOAD 1024u
#define MAX_WSEG 256u
#define MAGIC 0x76687573u /* "vhus" */
#define POISON 0xa5

#define BURST 32
#define NSEGS 256
#define SPLIT_BASE 0xfc00u /* split rings start here: 1024 before the wrap */

/* The readable stream of a request: header, payload, checksum. */
struct req_hdr {
	uint64_t seq;
	uint32_t payload_len;
	uint32_t in_len;
	uint16_t queue;
	uint8_t nr_out;
	uint8_t nr_in;
	uint32_t magic;
};
_Static_assert(sizeof(struct req_hdr) == 24, "request header");
#define MAX_OUT_LEN (sizeof(struct req_hdr) + MAX_PAYLOAD + 4)

/* ---- small helpers ---- */

static uint64_t rnd_next(uint64_t *s)
{
	/* xorshift64* */
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static uint32_t rnd(uint64_t *s, uint32_t n)
{
	return n ? (uint32_t)((rnd_next(s) >> 32) % n) : 0;
}

static uint32_t fnv1a(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Payload byte @i of request @seq. */
static uint8_t payload_byte(uint64_t seq, uint32_t i)
{
	uint64_t x = seq * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull;

	return (uint8_t)(x >> 56 ^ x >> 17);
}

/* What the device writes: how much, and which bytes. */
static uint32_t expected_written(uint64_t seq, uint32_t in_len)
{
	if (seq % 7 == 3)
		return 0;
	if (seq % 5 == 0)
		return in_len / 2;
	return in_len;
}

static void fill_pattern(uint64_t seq, uint8_t *buf, uint32_t w)
{
	for (uint32_t i = 0; i < w; i++)
		buf[i] = (uint8_t)(seq * 131 + i * 7 + (i >> 8) + 1);
	if (w >= 8) {
		uint32_t c = fnv1a(buf, w - 4);

		memcpy(buf + w - 4, &c, 4);
	}
}

/* ---- shared state ---- */

struct variant {
	const char *name;
	bool packed;
	bool event_idx;
	bool in_order;
	uint16_t ring;
	uint16_t nq;
	enum { CHURN_NONE, CHURN_SAME, CHURN_REMAP, CHURN_RESTART } churn;
};

struct stress;

/* Driver-side bookkeeping of a request in flight (the ring token). */
struct rec {
	bool busy;
	uint64_t seq;
	uint32_t in_len;
	int bnd; /* straddle window held, -1 if none */
	unsigned nw;
	struct vhu_fe_buf w[MAX_IN];
};

/* The guest driver of one queue. */
struct drv {
	struct stress *s;
	uint16_t q;
	struct vhu_fe_ring *ring;
	int kick_fd, call_fd;
	uint64_t arena_gpa;
	struct rec recs[MAX_RING];
	uint16_t free_slot[MAX_RING];
	unsigned nfree;
	int bnds[NBND]; /* windows this queue may use */
	bool bnd_busy[NBND];
	unsigned nbnds;
	uint64_t rng;
	uint64_t target, submitted, completed;
	uint64_t kicks, sleeps, indirect, straddled;
	/* Restart handshake with the control thread: it sets pause_req, the
	 * driver reaps everything, sets parked and waits on resume_fd. */
	atomic_bool pause_req, parked, finished;
	int resume_fd;
	pthread_t th;
};

/* A request the device took and has not returned yet. */
struct held {
	struct vhu_req req;
	uint64_t seq;
	bool answered; /* written in the burst it was taken or completed in */
	unsigned nw;
	struct vhu_seg w[MAX_IN + 1]; /* one may be split at a boundary */
};

/* The device side of one queue. */
struct dq {
	struct stress *s;
	uint16_t q;
	struct vhu_vq *vq;
	int wake_fd; /* written on ENABLED, STARTED, STOPPED */
	uint64_t next_seq;
	uint64_t rng;
	struct held held[MAX_RING];
	unsigned nheld;
	uint64_t sleeps, bursts, deferred, push_eagain;
	pthread_t th;
};

struct stress {
	struct variant v;
	struct vhu_dev *dev;
	struct tu_backend *be;
	struct vhu_fe *fe;
	char *path;
	int fds_before;
	int wait_ms; /* longest wait for a notification before "lost" */
	uint64_t seed;
	/* The driver's view of guest memory (fe mappings), fixed at start. */
	struct {
		uint64_t gpa, size;
		uint8_t *p;
	} reg[NREG];
	uint64_t bnd_gpa[NBND];
	struct drv drv[MAXQ];
	struct dq dq[MAXQ];
	int stop_fd; /* readable once everything should stop */
	atomic_bool stop;
	atomic_bool traffic; /* error log lines fail the test */
	atomic_bool failed;
	pthread_mutex_t err_lock;
	char err[512];
	atomic_uint drivers_done;
	atomic_uint ev_enabled, ev_disabled, ev_broken, ev_started;
	unsigned churn_rounds;
};

static struct stress S;

static void stop_all(struct stress *s)
{
	uint64_t one = 1;

	atomic_store(&s->stop, true);
	if (write(s->stop_fd, &one, sizeof(one)) != sizeof(one))
		abort(); /* an eventfd write of 1 cannot fail here */
}

__attribute__((format(printf, 2, 3)))
static void flunk(struct stress *s, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&s->err_lock);
	if (!atomic_load(&s->failed)) {
		va_start(ap, fmt);
		vsnprintf(s->err, sizeof(s->err), fmt, ap);
		va_end(ap);
		atomic_store(&s->failed, true);
		fprintf(stderr, "test_vq_stress: FAIL: %s\n", s->err);
	}
	pthread_mutex_unlock(&s->err_lock);
	stop_all(s);
}

static void stress_log(void *opaque, enum vhu_log_level level, const char *dev,
		       const char *msg)
{
	struct stress *s = opaque;

	if (level > VHU_LOG_WARN)
		return;
	fprintf(stderr, "[%s] %s: %s\n", dev, level == VHU_LOG_ERR ? "error" : "warn",
		msg);
	if (level == VHU_LOG_ERR && atomic_load(&s->traffic))
		flunk(s, "library error during traffic: %s", msg);
}

/* Control thread (tu_backend), lock held. */
static void cb_queue(struct vhu_dev *d, void *o, uint16_t q,
		     enum vhu_queue_event e)
{
	struct stress *s = o;
	uint64_t one = 1;

	switch (e) {
	case VHU_QUEUE_ENABLED:
	case VHU_QUEUE_STARTED:
	case VHU_QUEUE_STOPPED:
		if (e == VHU_QUEUE_ENABLED)
			atomic_fetch_add(&s->ev_enabled, 1);
		if (e == VHU_QUEUE_STARTED)
			atomic_fetch_add(&s->ev_started, 1);
		/* Wake the data plane: it processes a ring only while running
		 * and enabled, and takes the kick fd again after STARTED or
		 * STOPPED (the old one is closed). */
		if (q < MAXQ &&
		    write(s->dq[q].wake_fd, &one, sizeof(one)) != sizeof(one))
			flunk(s, "queue %u: wake eventfd write failed", q);
		break;
	case VHU_QUEUE_DISABLED:
		atomic_fetch_add(&s->ev_disabled, 1);
		break;
	case VHU_QUEUE_BROKEN:
		atomic_fetch_add(&s->ev_broken, 1);
		if (atomic_load(&s->traffic))
			flunk(s, "queue %u reported broken", q);
		break;
	default:
		break;
	}
}

static const struct vhu_dev_ops ops = {
	.sz = sizeof(ops),
	.queue_event = cb_queue,
};

/*
 * Wait up to @ms for @fd (or the stop eventfd).  1: @fd readable, 0:
 * timeout, -1: stop.  @fd < 0 waits for stop only.
 */
static int wait_fd(struct stress *s, int fd, int fd2, int ms, bool *fd2_ready)
{
	struct pollfd p[3] = {
		{ .fd = s->stop_fd, .events = POLLIN },
		{ .fd = fd, .events = POLLIN },
		{ .fd = fd2, .events = POLLIN },
	};
	int r;

	do
		r = poll(p, 3, ms);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		flunk(s, "poll: %s", strerror(errno));
		return -1;
	}
	if (p[0].revents)
		return -1;
	if (fd2_ready)
		*fd2_ready = p[2].revents != 0;
	return r > 0 ? 1 : 0;
}

static void drain_eventfd(int fd)
{
	uint64_t v;

	/* Non-blocking: fails only with EAGAIN, when there is nothing to take. */
	if (fd >= 0 && read(fd, &v, sizeof(v)) < 0)
		return;
}

/* ---- guest memory as the driver sees it ---- */

/* Copy to (@to_guest) or from guest memory, across adjacent regions. */
static bool guest_copy(struct stress *s, uint64_t gpa, void *buf, size_t len,
		       bool to_guest)
{
	uint8_t *b = buf;

	while (len) {
		unsigned i;

		for (i = 0; i < NREG; i++)
			if (gpa - s->reg[i].gpa < s->reg[i].size) /* wraps if below */
				break;
		if (i == NREG)
			return false;
		uint64_t off = gpa - s->reg[i].gpa, room = s->reg[i].size - off;
		size_t n = room < len ? (size_t)room : len;

		if (to_guest)
			memcpy(s->reg[i].p + off, b, n);
		else
			memcpy(b, s->reg[i].p + off, n);
		b += n;
		gpa += n;
		len -= n;
	}
	return true;
}

/* ---- driver ---- */

static int take_bnd(struct drv *d)
{
	if (!d->nbnds)
		return -1;
	unsigned k = rnd(&d->rng, d->nbnds);

	if (d->bnd_busy[k])
		return -1;
	d->bnd_busy[k] = true;
	return (int)k;
}

/*
 * Build and add one request of random shape.  0, -ENOSPC (ring full or
 * no slot), or -EIO after flunk().
 */
static int drv_add(struct drv *d)
{
	struct stress *s = d->s;
	struct vhu_fe_buf bufs[MAX_OUT + MAX_IN];
	uint8_t stream[MAX_OUT_LEN];
	uint8_t poison[MAX_WSEG];
	_Alignas(16) uint8_t table[(MAX_OUT + MAX_IN) * 16];
	uint32_t payload, out_len, cuts[MAX_OUT + 1];
	unsigned nr_out, nr_in, n, ncuts, slot;
	bool indirect;
	int b, strad = -1; /* straddled buffer index; n = the table */
	uint64_t table_gpa = 0, cursor;
	struct rec *r;
	int rc;

	if (!d->nfree)
		return -ENOSPC;
	payload = rnd(&d->rng, 4) ? rnd(&d->rng, 64) : rnd(&d->rng, MAX_PAYLOAD + 1);
	out_len = (uint32_t)sizeof(struct req_hdr) + payload + 4;
	nr_out = 1 + rnd(&d->rng, MAX_OUT);
	nr_in = rnd(&d->rng, MAX_IN + 1);
	indirect = rnd(&d->rng, 4) == 0;
	if (d->ring->num_free < (indirect ? 1 : nr_out + nr_in))
		return -ENOSPC;

	/* Cut the readable stream into nr_out pieces (distinct cut points). */
	ncuts = 0;
	cuts[ncuts++] = 0;
	for (unsigned k = 1; k < nr_out; k++) {
		uint32_t c = 1 + rnd(&d->rng, out_len - 1);
		unsigned j = ncuts;

		for (unsigned i = 0; i < ncuts; i++)
			if (cuts[i] == c)
				j = 0;
		if (!j)
			continue;
		while (j > 0 && cuts[j - 1] > c) {
			cuts[j] = cuts[j - 1];
			j--;
		}
		cuts[j] = c;
		ncuts++;
	}
	nr_out = ncuts;
	cuts[ncuts] = out_len;
	for (unsigned k = 0; k < nr_out; k++)
		bufs[k].len = cuts[k + 1] - cuts[k];
	for (unsigned k = 0; k < nr_in; k++)
		bufs[nr_out + k].len = 1 + (rnd(&d->rng, 4) ? rnd(&d->rng, MAX_WSEG)
							  : rnd(&d->rng, 8));
	n = nr_out + nr_in;

	slot = d->free_slot[--d->nfree];
	r = &d->recs[slot];
	memset(r, 0, sizeof(*r));
	r->busy = true;
	r->seq = d->submitted;
	r->bnd = -1;

	/* Sometimes one buffer, or the indirect table, straddles a region
	 * boundary: it starts in one region and ends in the next. */
	b = rnd(&d->rng, 6) == 0 ? take_bnd(d) : -1;
	if (b >= 0) {
		if (indirect && n >= 2 && rnd(&d->rng, 3) == 0) {
			strad = (int)n;
		} else {
			unsigned k0 = rnd(&d->rng, n);

			for (unsigned k = 0; k < n && strad < 0; k++)
				if (bufs[(k0 + k) % n].len >= 2)
					strad = (int)((k0 + k) % n);
		}
		if (strad < 0)
			d->bnd_busy[b] = false;
		else
			r->bnd = b;
	}

	cursor = d->arena_gpa + slot * SLOT_BYTES;
	for (unsigned k = 0; k < n; k++) {
		if ((int)k == strad) {
			uint64_t bnd = s->bnd_gpa[d->bnds[b]];

			bufs[k].gpa = bnd - 1 - rnd(&d->rng, bufs[k].len - 1);
		} else {
			bufs[k].gpa = cursor + rnd(&d->rng, 16);
			cursor = bufs[k].gpa + bufs[k].len;
		}
	}
	if (indirect) {
		if (strad == (int)n)
			table_gpa = s->bnd_gpa[d->bnds[b]] -
				    16 * (1 + rnd(&d->rng, n - 1));
		else
			table_gpa = (cursor + 15) & ~15ull;
	}
	if (cursor + n * 16 + 16 > d->arena_gpa + (slot + 1) * SLOT_BYTES) {
		flunk(s, "queue %u: request does not fit its slot", d->q);
		return -EIO;
	}

	/* The readable bytes: header, payload, checksum. */
	struct req_hdr h = {
		.seq = r->seq, .payload_len = payload, .queue = d->q,
		.nr_out = (uint8_t)nr_out, .nr_in = (uint8_t)nr_in, .magic = MAGIC,
	};
	for (unsigned k = 0; k < nr_in; k++)
		h.in_len += bufs[nr_out + k].len;
	memcpy(stream, &h, sizeof(h));
	for (uint32_t i = 0; i < payload; i++)
		stream[sizeof(h) + i] = payload_byte(r->seq, i);
	uint32_t c = fnv1a(stream, sizeof(h) + payload);

	memcpy(stream + sizeof(h) + payload, &c, 4);
	for (unsigned k = 0; k < nr_out; k++)
		if (!guest_copy(s, bufs[k].gpa, stream + cuts[k], bufs[k].len, true))
			goto err_mem;
	memset(poison, POISON, sizeof(poison));
	for (unsigned k = 0; k < nr_in; k++) {
		if (!guest_copy(s, bufs[nr_out + k].gpa, poison, bufs[nr_out + k].len,
				true))
			goto err_mem;
		r->w[k] = bufs[nr_out + k];
	}
	r->nw = nr_in;
	r->in_len = h.in_len;

	if (indirect) {
		/* The fe writes the table into a local copy; it is put in guest
		 * memory (maybe across regions) before it is published. */
		rc = vhu_fe_ring_add_indirect(d->ring, bufs, nr_out, nr_in, table,
					      table_gpa, r);
		if (rc >= 0 && !guest_copy(s, table_gpa, table, n * 16, true))
			goto err_mem;
		d->indirect++;
	} else {
		rc = vhu_fe_ring_add(d->ring, bufs, nr_out, nr_in, r);
	}
	if (rc < 0) {
		flunk(s, "queue %u: adding request %" PRIu64 " (%u+%u buffers%s): %s",
		      d->q, r->seq, nr_out, nr_in, indirect ? ", indirect" : "",
		      strerror(-rc));
		return -EIO;
	}
	if (r->bnd >= 0)
		d->straddled++;
	d->submitted++;
	return 0;

err_mem:
	flunk(s, "queue %u: request %" PRIu64 ": buffer outside the driver's memory",
	      d->q, r->seq);
	return -EIO;
}

/* Check a used request: its length and every writable byte. */
static bool drv_check(struct drv *d, struct rec *r, uint32_t len)
{
	uint8_t got[MAX_IN * MAX_WSEG], want[MAX_IN * MAX_WSEG];
	uint32_t w = expected_written(r->seq, r->in_len), off = 0;

	if (len != w) {
		flunk(d->s, "queue %u: request %" PRIu64 " came back with length %u, "
		      "the device wrote %u of %u", d->q, r->seq, len, w, r->in_len);
		return false;
	}
	for (unsigned k = 0; k < r->nw; k++) {
		if (!guest_copy(d->s, r->w[k].gpa, got + off, r->w[k].len, false)) {
			flunk(d->s, "queue %u: writable buffer outside memory", d->q);
			return false;
		}
		off += r->w[k].len;
	}
	fill_pattern(r->seq, want, w);
	memset(want + w, POISON, r->in_len - w);
	if (memcmp(got, want, r->in_len)) {
		uint32_t i = 0;

		while (got[i] == want[i])
			i++;
		flunk(d->s, "queue %u: request %" PRIu64 ": writable byte %u of %u is "
		      "0x%02x, expected 0x%02x (written %u)", d->q, r->seq, i,
		      r->in_len, got[i], want[i], w);
		return false;
	}
	return true;
}

/* Reap every used request; the count, or -1 after flunk(). */
static int drv_reap(struct drv *d)
{
	int n = 0;

	for (;;) {
		uint16_t id;
		uint32_t len;
		void *tok;
		int rc = vhu_fe_ring_get_used(d->ring, &id, &len, &tok);
		struct rec *r = tok;

		if (rc < 0) {
			flunk(d->s, "queue %u: the device returned id %u, not in "
			      "flight", d->q, id);
			return -1;
		}
		if (rc == 0)
			return n;
		if (!r || !r->busy) {
			flunk(d->s, "queue %u: used id %u has no request", d->q, id);
			return -1;
		}
		if (!drv_check(d, r, len))
			return -1;
		if (r->bnd >= 0)
			d->bnd_busy[r->bnd] = false;
		r->busy = false;
		d->free_slot[d->nfree++] = (uint16_t)(r - d->recs);
		d->completed++;
		n++;
	}
}

/* Make the added requests visible; kick if the device asked for it. */
static bool drv_publish(struct drv *d)
{
	uint64_t one = 1;

	vhu_fe_ring_publish(d->ring);
	if (!vhu_fe_ring_needs_kick(d->ring))
		return true;
	if (write(d->kick_fd, &one, sizeof(one)) != sizeof(one)) {
		flunk(d->s, "queue %u: kick: %s", d->q, strerror(errno));
		return false;
	}
	d->kicks++;
	return true;
}

/* Nothing used: ask for an interrupt, look again, then sleep on the call
 * fd.  False after flunk() or when told to stop. */
static bool drv_sleep(struct drv *d)
{
	struct stress *s = d->s;
	int got, rc;

	vhu_fe_ring_enable_cb(d->ring);
	got = drv_reap(d);
	if (got < 0)
		return false;
	if (got == 0) {
		if (d->submitted == d->completed) {
			flunk(s, "queue %u: driver about to sleep with nothing in "
			      "flight", d->q);
			return false;
		}
		rc = wait_fd(s, d->call_fd, -1, s->wait_ms, NULL);
		if (rc == 0)
			flunk(s, "queue %u: lost wakeup: no used-buffer notification "
			      "in %d ms with %" PRIu64 " requests in flight "
			      "(completed %" PRIu64 ")", d->q, s->wait_ms,
			      d->submitted - d->completed, d->completed);
		if (rc <= 0)
			return false;
		drain_eventfd(d->call_fd);
		d->sleeps++;
	}
	vhu_fe_ring_disable_cb(d->ring);
	return true;
}

/* Everything reaped and the control thread wants to restart the ring:
 * wait until it is done.  False after flunk() or when told to stop. */
static bool drv_park(struct drv *d)
{
	struct stress *s = d->s;
	int rc;

	/* Longer than the control thread waits for the others to park. */
	atomic_store(&d->parked, true);
	rc = wait_fd(s, d->resume_fd, -1, 3 * s->wait_ms, NULL);
	if (rc == 0)
		flunk(s, "queue %u: driver not resumed in %d ms", d->q,
		      3 * s->wait_ms);
	if (rc <= 0)
		return false;
	drain_eventfd(d->resume_fd);
	atomic_store(&d->parked, false);
	return true;
}

static void *drv_main(void *arg)
{
	struct drv *d = arg;
	struct stress *s = d->s;

	vhu_fe_ring_disable_cb(d->ring);
	while (d->completed < d->target && !atomic_load(&s->stop)) {
		bool hold = atomic_load(&d->pause_req);
		unsigned want = hold ? 0 : 1 + rnd(&d->rng, d->ring->num), added = 0;
		int rc = 0, got;

		if (hold && d->submitted == d->completed) {
			if (!drv_park(d))
				break;
			continue;
		}
		while (added < want && d->submitted < d->target) {
			rc = drv_add(d);
			if (rc)
				break;
			added++;
		}
		if (rc == -EIO || (added && !drv_publish(d)))
			break;
		got = drv_reap(d);
		if (got < 0)
			break;
		/* Busy: go on.  Idle, or could not add all it wanted: sleep
		 * (sometimes also when it could add more). */
		if (got > 0 || (!hold && added == want && rnd(&d->rng, 4)))
			continue;
		if (!drv_sleep(d))
			break;
	}
	atomic_store(&d->finished, true);
	atomic_fetch_add(&s->drivers_done, 1);
	return NULL;
}

/* ---- device ---- */

/* Check a request just popped and keep it for completion. */
static bool dev_take(struct dq *d, const struct vhu_req *req)
{
	struct stress *s = d->s;
	uint8_t buf[MAX_OUT_LEN];
	struct req_hdr h;
	uint32_t off = 0, c;
	struct held *hd;

	if (req->out_len < sizeof(h) + 4 || req->out_len > MAX_OUT_LEN) {
		flunk(s, "queue %u: request %" PRIu64 ": %u readable bytes", d->q,
		      d->next_seq, req->out_len);
		return false;
	}
	for (unsigned k = 0; k < req->nr_out; k++) {
		if (req->segs[k].len > req->out_len - off) {
			flunk(s, "queue %u: readable segments beyond out_len", d->q);
			return false;
		}
		memcpy(buf + off, req->segs[k].addr, req->segs[k].len);
		off += req->segs[k].len;
	}
	if (off != req->out_len) {
		flunk(s, "queue %u: readable segments hold %u bytes, out_len %u",
		      d->q, off, req->out_len);
		return false;
	}
	memcpy(&h, buf, sizeof(h));
	memcpy(&c, buf + off - 4, 4);
	if (h.magic != MAGIC || h.queue != d->q || h.seq != d->next_seq ||
	    sizeof(h) + h.payload_len + 4 != req->out_len || h.in_len != req->in_len ||
	    req->nr_out < h.nr_out || req->nr_out > h.nr_out + 1 ||
	    req->nr_in < h.nr_in || req->nr_in > h.nr_in + 1 ||
	    req->nr_in > MAX_IN + 1) {
		flunk(s, "queue %u: request %" PRIu64 " (id %u): header seq %" PRIu64
		      " queue %u magic 0x%x payload %u in_len %u nr %u+%u; ring says "
		      "out_len %u in_len %u nr %u+%u", d->q, d->next_seq, req->id,
		      h.seq, h.queue, h.magic, h.payload_len, h.in_len, h.nr_out,
		      h.nr_in, req->out_len, req->in_len, req->nr_out, req->nr_in);
		return false;
	}
	if (fnv1a(buf, off - 4) != c) {
		flunk(s, "queue %u: request %" PRIu64 ": checksum mismatch", d->q,
		      h.seq);
		return false;
	}
	hd = &d->held[d->nheld++];
	hd->req = *req;
	hd->req.segs = NULL;
	hd->seq = h.seq;
	hd->answered = false;
	hd->nw = req->nr_in;
	memcpy(hd->w, req->segs + req->nr_out, req->nr_in * sizeof(hd->w[0]));
	d->next_seq++;
	return true;
}

/* Write a held request's answer into its writable segments. */
static uint32_t dev_answer(const struct held *hd)
{
	uint8_t buf[(MAX_IN + 1) * MAX_WSEG];
	uint32_t w = expected_written(hd->seq, hd->req.in_len), off = 0;

	if (hd->answered)
		return w; /* its segments may be gone (remapped) by now */
	fill_pattern(hd->seq, buf, w);
	for (unsigned k = 0; k < hd->nw && off < w; k++) {
		uint32_t n = hd->w[k].len < w - off ? hd->w[k].len : w - off;

		memcpy(hd->w[k].addr, buf + off, n);
		off += n;
	}
	return w;
}

/*
 * Return held requests: all of them when @all, else a random subset (a
 * random prefix when the ring is in order), in random order unless in
 * order, in random batch sizes.  A push refused with -EAGAIN (the control
 * thread paused the queue during this burst) leaves the rest held, in
 * order, for a later burst.
 */
static bool dev_complete(struct dq *d, bool all)
{
	struct held done[MAX_RING];
	struct vhu_req reqs[MAX_RING];
	uint32_t written[MAX_RING];
	bool in_order = vhu_vq_in_order(d->vq);
	unsigned n = 0, keep = 0, prefix;

	if (!d->nheld)
		return true;
	/* When the memory table moves regions under us, hold nothing across
	 * bursts: the segments would point into the old mappings. */
	if (d->s->v.churn == CHURN_REMAP)
		all = true;
	prefix = all ? d->nheld : rnd(&d->rng, d->nheld + 1);
	for (unsigned i = 0; i < d->nheld; i++) {
		bool go = all || (in_order ? i < prefix : rnd(&d->rng, 2) == 0);

		if (go)
			done[n++] = d->held[i];
		else
			d->held[keep++] = d->held[i];
	}
	d->deferred += keep;
	d->nheld = keep;
	if (!in_order) {
		for (unsigned i = n; i > 1; i--) {
			unsigned j = rnd(&d->rng, i);
			struct held t = done[i - 1];

			done[i - 1] = done[j];
			done[j] = t;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		written[i] = dev_answer(&done[i]);
		done[i].answered = true;
		reqs[i] = done[i].req;
	}
	for (unsigned i = 0; i < n;) {
		unsigned k = 1 + rnd(&d->rng, n - i);
		int rc = vhu_vq_push(d->vq, reqs + i, written + i, k);

		if (rc == -EAGAIN) {
			/* Paused: hold done[i..n) again, ahead of the others. */
			unsigned back = n - i;

			memmove(d->held + back, d->held, d->nheld * sizeof(d->held[0]));
			memcpy(d->held, done + i, back * sizeof(d->held[0]));
			d->nheld += back;
			d->push_eagain++;
			return true;
		}
		if (rc) {
			flunk(d->s, "queue %u: vhu_vq_push of %u: %s", d->q, k,
			      strerror(-rc));
			return false;
		}
		i += k;
	}
	return true;
}

/* One burst.  Returns true when the device should sleep. */
static bool dev_burst(struct dq *d, unsigned st, bool *kicks_on)
{
	struct stress *s = d->s;
	struct vhu_req reqs[BURST];
	struct vhu_seg segs[NSEGS];
	int n, rc;

	if (st & VHU_VQ_BROKEN) {
		flunk(s, "queue %u: broken", d->q);
		return false;
	}
	if (!(st & VHU_VQ_RUNNING) || !(st & VHU_VQ_ENABLED)) {
		/* Not ours to process now: the ENABLED or STARTED event wakes
		 * us through wake_fd. */
		vhu_vq_kick_clear(d->vq);
		return true;
	}
	d->bursts++;
	vhu_vq_kick_clear(d->vq);
	n = vhu_vq_pop(d->vq, reqs, 1 + rnd(&d->rng, BURST), segs, NSEGS);
	if (n < 0) {
		flunk(s, "queue %u: vhu_vq_pop: %s", d->q, strerror(-n));
		return false;
	}
	for (int i = 0; i < n; i++)
		if (!dev_take(d, &reqs[i]))
			return false;
	if (!dev_complete(d, n == 0))
		return false;
	rc = vhu_vq_notify(d->vq);
	if (rc < 0) {
		flunk(s, "queue %u: vhu_vq_notify: %s", d->q, strerror(-rc));
		return false;
	}
	if (n == 0 && d->nheld == 0) {
		/* Idle: ask for kicks and look again before sleeping. */
		*kicks_on = true;
		return vhu_vq_set_kicks(d->vq, true) == 0;
	}
	if (*kicks_on && rnd(&d->rng, 2)) {
		vhu_vq_set_kicks(d->vq, false); /* busy: poll */
		*kicks_on = false;
	}
	return false;
}

/* Sleep on the kick fd, the wake fd (queue events) and stop.  A timeout is
 * fine when there is nothing to do, a lost wakeup otherwise.  False after
 * flunk() or when told to stop. */
static bool dev_sleep(struct dq *d, int kfd)
{
	struct stress *s = d->s;
	bool woken = false, lost;
	unsigned st;
	int rc;

	d->sleeps++;
	rc = wait_fd(s, kfd, d->wake_fd, s->wait_ms, &woken);
	if (rc < 0)
		return false;
	if (woken)
		drain_eventfd(d->wake_fd);
	if (rc > 0)
		return true;
	st = vhu_vq_begin(d->vq);
	lost = (st & VHU_VQ_RUNNING) && (st & VHU_VQ_ENABLED) && vhu_vq_avail(d->vq);
	vhu_vq_end(d->vq);
	if (lost)
		flunk(s, "queue %u: lost wakeup: requests available and no kick in "
		      "%d ms", d->q, s->wait_ms);
	return !lost;
}

static void *dev_main(void *arg)
{
	struct dq *d = arg;
	bool kicks_on = true;

	while (!atomic_load(&d->s->stop)) {
		unsigned st = vhu_vq_begin(d->vq);
		bool sleep = dev_burst(d, st, &kicks_on);
		int kfd = vhu_vq_kick_fd(d->vq);

		vhu_vq_end(d->vq);
		if (sleep && !dev_sleep(d, kfd))
			break;
	}
	return NULL;
}

/* ---- set-up ---- */

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static bool quick(void)
{
	return env_u64("VHU_STRESS_QUICK", 0) || tu_under_valgrind() || UNDER_TSAN;
}

static int pred_ready(void *a)
{
	return vhu_dev_is_ready(((struct stress *)a)->dev);
}

static int pred_disconnected(void *a)
{
	return !vhu_dev_is_connected(((struct stress *)a)->dev);
}

static void assert_ok(int rc, const char *what)
{
	ck_assert_msg(rc == 0, "%s: %s", what, strerror(-rc));
}

/* Restart split ring @q just below the 16-bit wrap (as after a migration:
 * nothing in flight, avail and used indexes at SPLIT_BASE). */
static void rebase_split(struct stress *s, uint16_t q)
{
	struct vhu_fe_ring *r = vhu_fe_queue_ring(s->fe, q);
	uint32_t base;

	assert_ok(vhu_fe_get_vring_base(s->fe, q, &base), "GET_VRING_BASE");
	ck_assert_uint_eq(base, 0);
	r->avail_idx = r->published = r->last_used = SPLIT_BASE;
	/* avail->idx, used_event, used->idx */
	vhu_fe_st16((uint8_t *)r->avail + 2, SPLIT_BASE);
	vhu_fe_st16((uint8_t *)r->avail + 4 + 2u * r->num, SPLIT_BASE);
	vhu_fe_st16((uint8_t *)r->used + 2, SPLIT_BASE);
	assert_ok(vhu_fe_queue_start(s->fe, q), "queue restart");
	assert_ok(vhu_fe_set_vring_enable(s->fe, q, true), "SET_VRING_ENABLE");
}

static void stress_setup(struct stress *s, const struct variant *v)
{
	struct vhu_fe_mem_opts mo = {
		.sz = sizeof(mo), .nregions = NREG, .region_size = REG_SIZE,
	};
	struct vhu_fe_handshake_opts ho = {
		.sz = sizeof(ho),
		.num_queues = v->nq,
		.ring_size = v->ring,
		.packed = v->packed,
		.in_order = v->in_order,
		.features_off = v->event_idx ? 0 : VHU_BIT(VHU_F_EVENT_IDX),
		.need_reply = true,
	};
	struct vhu_dev_opts o = {
		.sz = sizeof(o),
		.name = v->name,
		.num_queues = v->nq,
		.min_ready_queues = v->nq,
		.ops = &ops,
		.opaque = s,
		.log = stress_log,
		.log_opaque = s,
		.log_level = VHU_LOG_WARN,
	};
	int rc;

	memset(s, 0, sizeof(*s));
	s->v = *v;
	pthread_mutex_init(&s->err_lock, NULL);
	s->fds_before = tu_count_fds();
	s->wait_ms = quick() ? 60000 : 10000;
	s->seed = env_u64("VHU_STRESS_SEED", 0);
	if (!s->seed)
		s->seed = now_ns() ^ (uint64_t)getpid() << 32;
	s->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ck_assert_int_ge(s->stop_fd, 0);
	for (unsigned q = 0; q < MAXQ; q++) {
		s->dq[q].wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		s->drv[q].resume_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		ck_assert_int_ge(s->dq[q].wake_fd, 0);
		ck_assert_int_ge(s->drv[q].resume_fd, 0);
	}

	s->dev = vhu_dev_new(&o);
	ck_assert_msg(s->dev, "vhu_dev_new: %s", strerror(errno));
	s->path = strdup(tu_sock_path("stress"));
	ck_assert_int_eq(vhu_dev_listen(s->dev, s->path), 0);
	s->be = tu_backend_start(s->dev);
	ck_assert_ptr_nonnull(s->be);
	s->fe = vhu_fe_connect(s->path, 5000);
	ck_assert_msg(s->fe, "vhu_fe_connect: %s", strerror(errno));
	vhu_fe_set_timeout(s->fe, s->wait_ms);

	/* NREG adjacent regions from gpa 0, then the extra one. */
	assert_ok(vhu_fe_mem_setup(s->fe, &mo), "memory");
	rc = vhu_fe_mem_add(s->fe, EXTRA_GPA, EXTRA_SIZE, 0, 0);
	ck_assert_int_eq(rc, EXTRA_IDX);
	assert_ok(vhu_fe_handshake(s->fe, &ho, NULL), "handshake");
	ck_assert_msg(tu_backend_wait(s->be, pred_ready, s, 5000), "device not ready");
	if (!v->packed)
		for (uint16_t q = 0; q < v->nq; q++)
			rebase_split(s, q);
	ck_assert_msg(tu_backend_wait(s->be, pred_ready, s, 5000),
		      "device not ready after the restart");

	/* A straddle window at each boundary, then an arena per queue. */
	for (unsigned k = 0; k < NBND; k++) {
		uint64_t g;

		assert_ok(vhu_fe_mem_alloc_straddle(s->fe, 2 * WIN_HALF, &g),
			  "straddle window");
		s->bnd_gpa[k] = g + WIN_HALF;
		ck_assert_uint_eq(s->bnd_gpa[k] % REG_SIZE, 0);
	}
	for (unsigned i = 0; i < NREG; i++) {
		struct vhu_fe_region *r = vhu_fe_mem_region(s->fe, i);

		s->reg[i].gpa = r->gpa;
		s->reg[i].size = r->size;
		s->reg[i].p = r->map + r->mmap_offset;
	}

	tu_backend_lock(s->be);
	for (uint16_t q = 0; q < v->nq; q++) {
		struct drv *d = &s->drv[q];
		struct dq *dq = &s->dq[q];

		d->s = s;
		d->q = q;
		d->ring = vhu_fe_queue_ring(s->fe, q);
		d->kick_fd = vhu_fe_queue_kick_fd(s->fe, q);
		d->call_fd = vhu_fe_queue_call_fd(s->fe, q);
		d->rng = s->seed * 2 + q + 1;
		assert_ok(vhu_fe_mem_alloc(s->fe, v->ring * SLOT_BYTES, 4096,
					   &d->arena_gpa), "arena");
		ck_assert_uint_le(d->arena_gpa + v->ring * SLOT_BYTES, NREG * REG_SIZE);
		for (unsigned i = 0; i < v->ring; i++)
			d->free_slot[d->nfree++] = (uint16_t)(v->ring - 1 - i);
		for (unsigned k = q; k < NBND; k += v->nq)
			d->bnds[d->nbnds++] = (int)k;

		dq->s = s;
		dq->q = q;
		dq->vq = vhu_dev_vq(s->dev, q);
		dq->rng = s->seed * 3 + q + 7;
		ck_assert_ptr_nonnull(dq->vq);
		ck_assert_int_eq(vhu_vq_packed(dq->vq), v->packed);
		ck_assert_int_eq(vhu_vq_in_order(dq->vq), v->in_order);
		ck_assert_uint_eq(vhu_vq_size(dq->vq), v->ring);
	}
	tu_backend_unlock(s->be);
}

static void stress_teardown(struct stress *s)
{
	vhu_fe_free(s->fe);
	s->fe = NULL;
	ck_assert(tu_backend_wait(s->be, pred_disconnected, s, 5000));
	tu_backend_stop(s->be);
	vhu_dev_free(s->dev);
	unlink(s->path);
	free(s->path);
	close(s->stop_fd);
	for (unsigned q = 0; q < MAXQ; q++)
	{
		close(s->dq[q].wake_fd);
		close(s->drv[q].resume_fd);
	}
	pthread_mutex_destroy(&s->err_lock);
	ck_assert_int_eq(tu_count_fds(), s->fds_before);
}

/* ---- the control thread's churn ---- */

/* The same regions again, in place: nothing is remapped. */
static int churn_same(struct stress *s, unsigned step, uint64_t *rng)
{
	struct vhu_fe *fe = s->fe;

	switch (step % 5) {
	case 0: /* the same regions again (and the extra one) */
		return vhu_fe_set_mem_table(fe);
	case 1:
		return vhu_fe_rem_mem_reg(fe, EXTRA_IDX, false);
	case 2:
		for (uint16_t q = 0; q < s->v.nq; q++) {
			int rc = vhu_fe_set_vring_enable(fe, q, false);

			if (rc)
				return rc;
			if (rnd(rng, 2))
				usleep(rnd(rng, 300));
			rc = vhu_fe_set_vring_enable(fe, q, true);
			if (rc)
				return rc;
		}
		return 0;
	case 3:
		return vhu_fe_add_mem_reg(fe, EXTRA_IDX);
	default:
		return vhu_fe_rem_mem_reg(fe, EXTRA_IDX, false);
	}
}

/*
 * The same guest memory described two ways in turn: region 0 (the rings)
 * whole, then as two halves of its file.  Each change maps region 0 anew,
 * so the rings move and the back-end must re-translate them.
 */
static int churn_remap(struct stress *s, unsigned step)
{
	struct vhu_mem_region d[NREG + 1];
	int fds[NREG + 1];
	unsigned n = 0;

	for (unsigned i = 0; i < NREG; i++) {
		struct vhu_fe_region *r = vhu_fe_mem_region(s->fe, i);

		if (i == 0 && step % 2 == 0) {
			uint64_t half = r->size / 2;

			for (unsigned h = 0; h < 2; h++) {
				d[n] = (struct vhu_mem_region){
					.guest_phys_addr = r->gpa + h * half,
					.memory_size = half,
					.userspace_addr = r->uva + h * half,
					.mmap_offset = r->mmap_offset + h * half,
				};
				fds[n++] = r->fd;
			}
			continue;
		}
		d[n] = (struct vhu_mem_region){
			.guest_phys_addr = r->gpa, .memory_size = r->size,
			.userspace_addr = r->uva, .mmap_offset = r->mmap_offset,
		};
		fds[n++] = r->fd;
	}
	return vhu_fe_set_mem_table_raw(s->fe, d, n, fds, n);
}

/* Wait until every driver is parked (or finished), or none is parked any
 * more (@parked false); longer than a driver waits for an interrupt, so
 * that a lost one is reported as such. */
static bool wait_drivers(struct stress *s, bool parked)
{
	uint64_t end = now_ns() + 2ull * (uint64_t)s->wait_ms * 1000000ull;

	while (!atomic_load(&s->stop)) {
		unsigned n = 0;

		for (uint16_t q = 0; q < s->v.nq; q++)
			n += atomic_load(&s->drv[q].parked) == parked ||
			     (parked && atomic_load(&s->drv[q].finished));
		if (n == s->v.nq)
			return true;
		if (now_ns() > end) {
			flunk(s, "drivers did not %s in %d ms",
			      parked ? "park" : "resume", 2 * s->wait_ms);
			return false;
		}
		usleep(100);
	}
	return false;
}

/*
 * Stop and restart every ring under traffic, as QEMU does when it stops
 * and starts vhost: the drivers finish what is in flight and park;
 * GET_VRING_BASE stops each ring and must give back where the driver is;
 * NUM/ADDR/BASE/KICK/CALL start it again; the drivers resume.
 */
static int churn_restart(struct stress *s)
{
	int rc = 0;

	for (uint16_t q = 0; q < s->v.nq; q++)
		atomic_store(&s->drv[q].pause_req, true);
	if (!wait_drivers(s, true))
		return 0;
	for (uint16_t q = 0; q < s->v.nq && !rc; q++) {
		struct vhu_fe_ring *r = s->drv[q].ring;
		uint32_t base, want = r->packed ? vhu_fe_ring_base(r) : r->avail_idx;

		rc = vhu_fe_get_vring_base(s->fe, q, &base);
		if (!rc && base != want) {
			flunk(s, "queue %u: GET_VRING_BASE gave 0x%x, the driver is at "
			      "0x%x", q, base, want);
			return 0;
		}
		if (!rc)
			rc = vhu_fe_queue_start(s->fe, q);
		if (!rc)
			rc = vhu_fe_set_vring_enable(s->fe, q, true);
	}
	for (uint16_t q = 0; q < s->v.nq; q++) {
		uint64_t one = 1;

		atomic_store(&s->drv[q].pause_req, false);
		if (write(s->drv[q].resume_fd, &one, sizeof(one)) != sizeof(one))
			return -errno;
	}
	if (!rc)
		wait_drivers(s, false);
	return rc;
}

/* Steps of one churn round, per kind. */
static const unsigned churn_steps[] = { 1, 5, 2, 1 };

static const char *const churn_names[] = {
	"SET_MEM_TABLE", "REM_MEM_REG", "SET_VRING_ENABLE", "ADD_MEM_REG",
	"REM_MEM_REG",
};

/* ---- a run ---- */

/* Join a thread told to stop.  One that does not is stuck inside the
 * library (or the fe): nothing can be cleaned up, so end the process
 * rather than hang it. */
static void join(struct stress *s, pthread_t th, const char *what)
{
	struct timespec ts;
	int rc;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += s->wait_ms / 1000 + 10;
	rc = pthread_timedjoin_np(th, NULL, &ts);
	if (rc) {
		fprintf(stderr, "test_vq_stress: %s thread did not stop: %s\n", what,
			strerror(rc));
		abort();
	}
}

/* After a failure, with every thread stopped: both sides' view of the
 * rings, to tell a lost kick from a lost interrupt. */
static void dump_state(struct stress *s)
{
	tu_backend_lock(s->be); /* the control thread writes vq fields too */
	for (uint16_t q = 0; q < s->v.nq; q++) {
		struct vhu_fe_ring *r = s->drv[q].ring;
		struct vhu_vq *vq = s->dq[q].vq;
		uint8_t *av = r->avail, *us = r->used;

		fprintf(stderr, "  q%u driver: in flight %" PRIu64 ", last_used %u "
			"used_wrap %d, cb %s, ", q,
			s->drv[q].submitted - s->drv[q].completed, r->last_used,
			r->used_wrap, r->cb_disabled ? "off" : "on");
		if (r->packed)
			fprintf(stderr, "next_avail %u avail_wrap %d; driver event "
				"off_wrap 0x%04x flags %u; device event off_wrap "
				"0x%04x flags %u\n", r->next_avail, r->avail_wrap,
				vhu_fe_ld16(av), vhu_fe_ld16(av + 2), vhu_fe_ld16(us),
				vhu_fe_ld16(us + 2));
		else
			fprintf(stderr, "avail idx %u, used idx %u, avail flags %u, "
				"used_event %u, used flags %u, avail_event %u\n",
				r->avail_idx, vhu_fe_ld16((uint8_t *)r->used + 2),
				vhu_fe_ld16(r->avail),
				vhu_fe_ld16((uint8_t *)r->avail + 4 + 2u * r->num),
				vhu_fe_ld16(r->used),
				vhu_fe_ld16((uint8_t *)r->used + 4 + 8u * r->num));
		fprintf(stderr, "  q%u device: held %u, last_avail %u avail_wrap %d, "
			"used_idx %u used_wrap %d, signalled %u wrap %d valid %d, "
			"pending_used %u\n", q, s->dq[q].nheld, vq->last_avail_idx,
			vq->avail_wrap, vq->used_idx, vq->used_wrap, vq->signalled_used,
			vq->signalled_used_wrap, vq->signalled_used_valid,
			vq->pending_used);
	}
	tu_backend_unlock(s->be);
}

static void run(const struct variant *v)
{
	struct stress *s = &S;
	uint64_t reqs = env_u64("VHU_STRESS_REQS", 0), total = 0, t0, t1, deadline;
	uint64_t rng;
	unsigned step = 0;

	if (!reqs) {
		reqs = quick() ? 20000 : 100000;
		if (v->nq > 1)
			reqs /= 2; /* per queue */
	}
	stress_setup(s, v);
	rng = s->seed ^ 0x5bd1e995;
	for (uint16_t q = 0; q < v->nq; q++)
		s->drv[q].target = reqs;

	atomic_store(&s->traffic, true);
	t0 = now_ns();
	deadline = t0 + (uint64_t)(quick() ? 600 : 120) * 1000000000ull;
	for (uint16_t q = 0; q < v->nq; q++) {
		ck_assert_int_eq(pthread_create(&s->dq[q].th, NULL, dev_main,
						&s->dq[q]), 0);
		ck_assert_int_eq(pthread_create(&s->drv[q].th, NULL, drv_main,
						&s->drv[q]), 0);
	}
	while (atomic_load(&s->drivers_done) < v->nq && !atomic_load(&s->stop)) {
		if (now_ns() > deadline) {
			flunk(s, "traffic did not finish in time");
			break;
		}
		if (!v->churn) {
			usleep(5000);
			continue;
		}
		int rc = v->churn == CHURN_SAME	 ? churn_same(s, step, &rng)
			 : v->churn == CHURN_REMAP ? churn_remap(s, step)
						   : churn_restart(s);

		if (rc) {
			flunk(s, "churn step %u (%s): %s", step,
			      v->churn == CHURN_SAME	? churn_names[step % 5]
			      : v->churn == CHURN_REMAP ? "SET_MEM_TABLE (remap)"
							: "ring restart",
			      strerror(-rc));
			break;
		}
		if (++step % churn_steps[v->churn] == 0)
			s->churn_rounds++;
		usleep(rnd(&rng, 300));
	}
	t1 = now_ns();
	/* Put the extra region back where a round starts, for the checks. */
	stop_all(s);
	for (uint16_t q = 0; q < v->nq; q++) {
		join(s, s->drv[q].th, "driver");
		join(s, s->dq[q].th, "device");
	}
	atomic_store(&s->traffic, false);
	if (atomic_load(&s->failed))
		dump_state(s);

	/* Report. */
	for (uint16_t q = 0; q < v->nq; q++)
		total += s->drv[q].completed;
	double secs = (double)(t1 - t0) / 1e9;

	printf("%-22s %8" PRIu64 " requests in %6.2f s: %8.0f req/s (seed %" PRIu64
	       ")\n", v->name, total, secs, secs > 0 ? (double)total / secs : 0.0,
	       s->seed);
	for (uint16_t q = 0; q < v->nq; q++) {
		struct drv *d = &s->drv[q];
		struct dq *dq = &s->dq[q];
		struct vhu_vq_stats st;

		vhu_vq_stats(dq->vq, &st);
		printf("  q%u: kicks %" PRIu64 " (device consumed %" PRIu64 "), calls %"
		       PRIu64 " (suppressed %" PRIu64 "), driver sleeps %" PRIu64
		       ", device sleeps %" PRIu64 " bursts %" PRIu64 " deferred %"
		       PRIu64 " push-EAGAIN %" PRIu64 ", indirect %" PRIu64
		       ", straddling %" PRIu64 "\n", q, d->kicks, st.kicks, st.calls,
		       st.calls_suppressed, d->sleeps, dq->sleeps, dq->bursts,
		       dq->deferred, dq->push_eagain, d->indirect, d->straddled);
		if (!atomic_load(&s->failed)) {
			ck_assert_uint_eq(d->completed, reqs);
			ck_assert_uint_eq(dq->next_seq, reqs);
			ck_assert_uint_eq(st.popped, reqs);
			ck_assert_uint_eq(st.pushed, reqs);
			ck_assert_uint_eq(st.errors, 0);
		}
	}
	if (v->churn)
		printf("  control: %u churn rounds, %u disables, %u enables, %u "
		       "starts\n", s->churn_rounds, atomic_load(&s->ev_disabled),
		       atomic_load(&s->ev_enabled), atomic_load(&s->ev_started));
	fflush(stdout);
	stress_teardown(s);
	ck_assert_msg(!atomic_load(&s->failed), "%s (seed %" PRIu64 ")", s->err,
		      s->seed);
	if (v->churn)
		ck_assert_uint_gt(s->churn_rounds, 0);
}

#define VARIANT(tname, ...)                                             \
	START_TEST(tname)                                               \
	{                                                               \
		const struct variant v = { .name = #tname, __VA_ARGS__ }; \
		run(&v);                                                \
	}                                                               \
	END_TEST

VARIANT(split_evidx_8, .ring = 8, .nq = 1, .event_idx = true)
VARIANT(split_evidx_256, .ring = 256, .nq = 1, .event_idx = true)
VARIANT(split_noevidx_8, .ring = 8, .nq = 1)
VARIANT(split_noevidx_256, .ring = 256, .nq = 1)
VARIANT(packed_evidx_8, .packed = true, .ring = 8, .nq = 1, .event_idx = true)
VARIANT(packed_evidx_256, .packed = true, .ring = 256, .nq = 1, .event_idx = true)
VARIANT(packed_noevidx_8, .packed = true, .ring = 8, .nq = 1)
VARIANT(packed_noevidx_256, .packed = true, .ring = 256, .nq = 1)
VARIANT(split_in_order_32, .ring = 32, .nq = 1, .event_idx = true, .in_order = true)
VARIANT(packed_in_order_32, .packed = true, .ring = 32, .nq = 1, .event_idx = true,
	.in_order = true)
VARIANT(split_2q_256, .ring = 256, .nq = 2, .event_idx = true)
VARIANT(packed_2q_8, .packed = true, .ring = 8, .nq = 2, .event_idx = true)
VARIANT(churn_split_2q_64, .ring = 64, .nq = 2, .event_idx = true,
	.churn = CHURN_SAME)
VARIANT(churn_packed_2q_8, .packed = true, .ring = 8, .nq = 2, .churn = CHURN_SAME)
VARIANT(remap_split_2q_64, .ring = 64, .nq = 2, .event_idx = true,
	.churn = CHURN_REMAP)
VARIANT(remap_packed_2q_8, .packed = true, .ring = 8, .nq = 2, .event_idx = true,
	.churn = CHURN_REMAP)
VARIANT(restart_split_2q_64, .ring = 64, .nq = 2, .event_idx = true,
	.churn = CHURN_RESTART)
VARIANT(restart_packed_2q_8, .packed = true, .ring = 8, .nq = 2, .event_idx = true,
	.churn = CHURN_RESTART)

int main(void)
{
	const struct {
		const char *name;
		const TTest *test;
	} tests[] = {
#define T(n) { #n, n }
		T(split_evidx_8), T(split_evidx_256), T(split_noevidx_8),
		T(split_noevidx_256), T(packed_evidx_8), T(packed_evidx_256),
		T(packed_noevidx_8), T(packed_noevidx_256), T(split_in_order_32),
		T(packed_in_order_32), T(split_2q_256), T(packed_2q_8),
		T(churn_split_2q_64), T(churn_packed_2q_8), T(remap_split_2q_64),
		T(remap_packed_2q_8), T(restart_split_2q_64), T(restart_packed_2q_8),
#undef T
	};
	/* VHU_STRESS_ONLY / VHU_STRESS_SKIP=substring: run only / skip the
	 * tests whose names contain it. */
	const char *only = getenv("VHU_STRESS_ONLY");
	const char *skip = getenv("VHU_STRESS_SKIP");
	Suite *s = suite_create("vq_stress");
	TCase *tc = tcase_create("vq_stress");

	tcase_set_timeout(tc, 900);
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		if ((!only || strstr(tests[i].name, only)) &&
		    (!skip || !*skip || !strstr(tests[i].name, skip)))
			tcase_add_test(tc, tests[i].test);
	suite_add_tcase(s, tc);
	return tu_run_suite(s);
}
