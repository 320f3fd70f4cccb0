/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Dirty-page logging for live migration (lib/memory/dirty_log.c, docs/migration.md)
 * end to end: a vhu device served by a helper thread, the in-tree front-end
 * as QEMU (SET_LOG_BASE with a memfd it maps too, SET_FEATURES with
 * VHOST_F_LOG_ALL) and as the guest driver, the test thread (or a thread
 * of its own) as the device's data plane.
 *
 * What is expected in the log comes from what the driver sees, never from
 * what the data plane meant to do: each used entry's id and length say
 * which bytes of which buffer were written (and they must hold what the
 * device wrote), and the ring entry the driver read (a split used element
 * and used->idx, a packed descriptor) was written too.  Each check is
 * exact: every page written is marked, and nothing is marked outside the
 * pages written and the ring areas the device writes (split: the used
 * ring; packed: the descriptor table and the device event area), nor
 * outside the bitmap in the log file.
 *
 * "bits" (the test thread is the data plane): split and packed, a buffer
 * over three pages partly written, read-only requests, logging off,
 * set_kicks, a log at an unaligned file offset, indirect tables, buffers
 * across two regions, ring entries by position and across the end of the
 * ring, an in-order packed batch (one used descriptor), vhu_vq_log_write(),
 * virtio-net mergeable RX / single-buffer RX / TX.
 * "replace" (data-plane threads): logs replaced and LOG_ALL toggled while
 * a thread writes (no bit lost, nothing written into a log after the reply
 * that replaced it, nothing while LOG_ALL is off); GET_VRING_BASE under
 * traffic (every buffer used before its reply is marked after it); two
 * queues marking the same log bytes at once.
 * "hostile": classes 39-43 and 46 of shared/HOSTILE-INPUTS.md, and
 * RESET_DEVICE, each followed by the aftermath checks (util/aftermath.h).
 *
 * Runs in about 6 s (two 2 s stress tests); under valgrind or TSan the
 * loops are shorter.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <vhu/vhu.h>

#include "aftermath.h"
#include "fe.h"
#include "protocol/proto.h"
#include "testutil.h"
#include "rings/vq.h" /* VHU_USED_TAG: vhu's mark in a used packed descriptor */
#include "vqenv.h"

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

#define PAGE 4096u
#define PG(gpa) ((uint64_t)(gpa) >> 12)
#define LOG_MAX 4096   /* bytes of bitmap an expectation holds: 128 MiB */
#define RMAX 1024      /* largest ring the tests use */
#define LOG_NAME "vhu-dirty-log"

static bool slow(void)
{
	return tu_under_valgrind() || UNDER_TSAN;
}

/* ---- bitmaps: bit p & 7 of byte p >> 3 is guest page p ------------- */

static bool bit(const uint8_t *bm, uint64_t page)
{
	return bm[page >> 3] & (1u << (page & 7));
}

static void mark(uint8_t *bm, uint64_t gpa, uint64_t len)
{
	if (len == 0)
		return;
	for (uint64_t p = PG(gpa); p <= PG(gpa + len - 1); p++) {
		FAST((p >> 3) < LOG_MAX);
		bm[p >> 3] |= (uint8_t)(1u << (p & 7));
	}
}

static unsigned count_bits(const uint8_t *bm, uint64_t bytes)
{
	unsigned n = 0;

	for (uint64_t i = 0; i < bytes; i++)
		n += (unsigned)__builtin_popcount(bm[i]);
	return n;
}

/* ---- the front-end's log: a memfd it maps too ------------------------ */

struct dlog {
	int fd;
	uint8_t *map;     /* the whole file */
	size_t map_len;
	uint8_t *bits;    /* the bitmap, at its offset in the file */
	uint64_t size;    /* bytes of bitmap */
};

/* Bytes of bitmap for every region of the fe's memory. */
static uint64_t log_need(struct vhu_fe *fe)
{
	uint64_t end = 0;

	for (unsigned i = 0; i < vhu_fe_mem_nregions(fe); i++) {
		const struct vhu_fe_region *r = vhu_fe_mem_region(fe, i);

		if (r->gpa + r->size > end)
			end = r->gpa + r->size;
	}
	ck_assert_uint_gt(end, 0);
	return ((end - 1) >> 15) + 1;
}

/* A log of @size bytes at @off in a fresh memfd of whole pages. */
static void dlog_make(struct dlog *l, uint64_t size, uint64_t off)
{
	l->size = size;
	l->map_len = (size_t)((off + size + PAGE - 1) & ~(uint64_t)(PAGE - 1));
	l->fd = memfd_create(LOG_NAME, MFD_CLOEXEC);
	ck_assert_int_ge(l->fd, 0);
	ck_assert_int_eq(ftruncate(l->fd, (off_t)l->map_len), 0);
	l->map = mmap(NULL, l->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, l->fd, 0);
	ck_assert(l->map != MAP_FAILED);
	l->bits = l->map + off;
}

static void dlog_free(struct dlog *l)
{
	if (l->map)
		munmap(l->map, l->map_len);
	if (l->fd >= 0)
		close(l->fd);
	l->map = NULL;
	l->bits = NULL;
	l->fd = -1;
}

/* ---- what must be marked, and what may be -------------------------- */

struct expect {
	uint8_t must[LOG_MAX]; /* pages the device wrote */
	uint8_t may[LOG_MAX];  /* ring areas it may write */
};

/* The parts of ring @r the device writes: split, the used ring (flags,
 * idx, entries, avail_event); packed, the descriptor table and the device
 * event suppression area. */
static void may_ring(struct expect *x, const struct vhu_fe_ring *r)
{
	if (r->packed) {
		mark(x->may, r->desc_gpa, 16u * r->num);
		mark(x->may, r->used_gpa, 4);
	} else {
		mark(x->may, r->used_gpa, 4 + 8u * r->num + 2);
	}
}

/* Every page written is marked; nothing is marked but pages written and
 * ring areas; the file holds nothing outside its bitmap.  NULL, or what is
 * wrong (in @why). */
static const char *log_problem(const struct dlog *l, const struct expect *x,
			       const char *what, char *why, size_t cap)
{
	for (uint64_t p = 0; p < l->size * 8; p++) {
		bool got = bit(l->bits, p), must = bit(x->must, p);

		if (must && !got) {
			snprintf(why, cap, "%s: page %llu (gpa 0x%llx) was written "
				 "but is not marked", what, (unsigned long long)p,
				 (unsigned long long)(p << 12));
			return why;
		}
		if (got && !must && !bit(x->may, p)) {
			snprintf(why, cap, "%s: page %llu (gpa 0x%llx) is marked but "
				 "nothing was written there", what,
				 (unsigned long long)p, (unsigned long long)(p << 12));
			return why;
		}
	}
	for (uint8_t *b = l->map; b < l->map + l->map_len; b++)
		if (*b && (b < l->bits || b >= l->bits + l->size)) {
			snprintf(why, cap, "%s: byte %td of the log file, outside "
				 "the bitmap, was written", what, b - l->map);
			return why;
		}
	return NULL;
}

static void check_log(const struct dlog *l, const struct expect *x,
		      const char *what)
{
	char why[256];

	if (log_problem(l, x, what, why, sizeof(why)))
		ck_abort_msg("%s", why);
}

static void check_clear(const struct dlog *l, const char *what)
{
	static struct expect none;

	check_log(l, &none, what);
}

/* ---- the driver's side of a queue ----------------------------------- */

/* A request as the driver posted it. */
struct greq {
	struct vhu_fe_buf b[4];
	unsigned n_out, n_in;
	uint32_t write; /* bytes serve() writes into its writable buffers */
};

struct qd {
	struct env *e;
	uint16_t q;
	struct vhu_fe_ring *r;
	struct vhu_vq *vq;
	struct greq g[RMAX]; /* by id (split head, packed buffer id) */
};

/* A used buffer as the driver reaped it. */
struct used {
	uint16_t id;
	uint32_t len;
};

static void qd_init(struct qd *d, struct env *e, uint16_t q)
{
	memset(d, 0, sizeof(*d));
	d->e = e;
	d->q = q;
	d->r = ring(e, q);
	d->vq = vhu_dev_vq(e->dev, q);
	ck_assert_ptr_nonnull(d->r);
	ck_assert_uint_le(d->r->num, RMAX);
}

/* @n whole pages of guest memory, zeroed. */
static uint64_t pages(struct env *e, unsigned n)
{
	uint64_t gpa;

	ck_assert_int_eq(vhu_fe_mem_alloc(e->fe, (uint64_t)n * PAGE, PAGE, &gpa), 0);
	return gpa;
}

/* What serve() writes into request @id. */
static uint8_t pat(uint16_t id)
{
	return (uint8_t)(0x80 | (id * 37));
}

/* Post a chain (through an indirect table on a page of its own when
 * @indirect) and publish it.  The device is to write @write bytes. */
static int post(struct qd *d, const struct vhu_fe_buf *b, unsigned n_out,
		unsigned n_in, uint32_t write, bool indirect)
{
	unsigned n = n_out + n_in;
	struct greq *g;
	int id;

	ck_assert_uint_le(n, 4);
	if (indirect) {
		uint64_t t = pages(d->e, 1);

		id = vhu_fe_ring_add_indirect(d->r, b, n_out, n_in,
					      vhu_fe_gpa_to_ptr(d->e->fe, t, 16u * n),
					      t, NULL);
	} else {
		id = vhu_fe_ring_add(d->r, b, n_out, n_in, NULL);
	}
	ck_assert_int_ge(id, 0);
	g = &d->g[id];
	memset(g, 0, sizeof(*g));
	memcpy(g->b, b, n * sizeof(*b));
	g->n_out = n_out;
	g->n_in = n_in;
	g->write = write;
	vhu_fe_ring_publish(d->r);
	return id;
}

/* The device: take every request the queue has, write into each the
 * bytes its plan says (pattern pat(id)), push them in one call (@written
 * NULL when @null_written: nothing written) and notify.  Returns how many. */
static unsigned serve(struct qd *d, bool null_written)
{
	struct vhu_req reqs[64];
	struct vhu_seg segs[256];
	uint32_t written[64];
	int n;

	ck_assert(vhu_vq_begin(d->vq) & VHU_VQ_RUNNING);
	n = vhu_vq_pop(d->vq, reqs, 64, segs, 256);
	ck_assert_int_ge(n, 0);
	for (int i = 0; i < n; i++) {
		const struct greq *g = &d->g[reqs[i].id];
		uint32_t left = g->write;

		for (unsigned s = reqs[i].nr_out;
		     left && s < (unsigned)(reqs[i].nr_out + reqs[i].nr_in); s++) {
			uint32_t k = reqs[i].segs[s].len < left ? reqs[i].segs[s].len : left;

			memset(reqs[i].segs[s].addr, pat(reqs[i].id), k);
			left -= k;
		}
		ck_assert_uint_eq(left, 0);
		ck_assert(!null_written || g->write == 0);
		written[i] = g->write;
	}
	if (n > 0)
		ck_assert_int_eq(vhu_vq_push(d->vq, reqs, null_written ? NULL : written,
					     (unsigned)n), 0);
	ck_assert_int_ge(vhu_vq_notify(d->vq), 0);
	vhu_vq_end(d->vq);
	return (unsigned)n;
}

/* The first @len bytes of request @id's writable buffers were written:
 * mark them; with @check they hold pat(id) and the byte after them is
 * untouched. */
static void mark_written(struct qd *d, struct expect *x, uint16_t id,
			 uint32_t len, bool check)
{
	static uint8_t tmp[4 * PAGE];
	const struct greq *g = &d->g[id];
	uint32_t left = len;

	if (check)
		ck_assert_uint_eq(len, g->write);
	for (unsigned i = g->n_out; i < g->n_out + g->n_in; i++) {
		uint32_t k = g->b[i].len < left ? g->b[i].len : left;

		mark(x->must, g->b[i].gpa, k);
		if (check && g->b[i].len) {
			uint32_t look = k < g->b[i].len ? k + 1 : k;

			ck_assert_uint_le(look, sizeof(tmp));
			ck_assert_int_eq(vhu_fe_mem_read(d->e->fe, g->b[i].gpa, tmp, look), 0);
			for (uint32_t j = 0; j < k; j++)
				FAST_EQ(tmp[j], pat(id));
			if (look > k)
				FAST_EQ(tmp[k], 0);
		}
		left -= k;
	}
	ck_assert_uint_eq(left, 0);
}

/*
 * The driver reaps every used buffer of the queue.  What it reads says
 * what the device wrote: the ring entry (split: the used element at the
 * used index, and used->idx; packed: the descriptor at its used position;
 * in order, the one descriptor of a batch) and the first len bytes of the
 * buffer's writable part (@check: holding serve()'s pattern).  Returns how
 * many; each (id, len) goes to @out (room for @cap).
 */
static unsigned reap(struct qd *d, struct expect *x, bool check,
		     struct used *out, unsigned cap)
{
	struct vhu_fe_ring *r = d->r;
	unsigned n = 0;

	for (;;) {
		uint16_t slot = r->last_used, id;
		bool entry = !(r->packed && r->in_order && r->batch_id >= 0);
		uint32_t len;
		int rc = vhu_fe_ring_get_used(r, &id, &len, NULL);

		ck_assert_int_ge(rc, 0);
		if (rc == 0)
			return n;
		if (entry && r->packed) {
			mark(x->must, r->desc_gpa + 16u * slot, 16);
		} else if (entry) {
			mark(x->must, r->used_gpa + 4 + 8u * (slot & (r->num - 1)), 8);
			mark(x->must, r->used_gpa + 2, 2);
		}
		mark_written(d, x, id, len, check);
		if (out) {
			ck_assert_uint_lt(n, cap);
			out[n] = (struct used){ id, len };
		}
		n++;
	}
}

/* One writable request of two pages (from 100 bytes into the first) with
 * a readable one before it, @write bytes written. */
static void one_request(struct qd *d, struct expect *x, uint32_t write)
{
	uint64_t rd = pages(d->e, 1), w = pages(d->e, 2);
	struct vhu_fe_buf b[2] = { { rd, 64 }, { w + 100, 2 * PAGE - 100 } };

	post(d, b, 1, 1, write, false);
	ck_assert_uint_eq(serve(d, false), 1);
	ck_assert_uint_eq(reap(d, x, true, NULL, 0), 1);
}

/* ---- set-up ------------------------------------------------------- */

/* env_up(), and every typed request waits for the device's ack. */
static void up(struct env *e, const struct env_opts *o)
{
	env_up(e, o);
	vhu_fe_set_need_reply(e->fe, true);
	ck_assert(vhu_fe_acked_protocol_features(e->fe) & VHU_BIT(VHU_PF_LOG_SHMFD));
	ck_assert(!(vhu_fe_acked_features(e->fe) & VHU_BIT(VHU_F_LOG_ALL)));
}

/* QEMU's start of a migration: a log covering guest memory, LOG_ALL on. */
static void logging_on(struct env *e, struct dlog *l)
{
	dlog_make(l, log_need(e->fe), 0);
	ck_assert_int_eq(vhu_fe_set_log_base(e->fe, l->fd, l->size, 0), 0);
	ck_assert_int_eq(vhu_fe_set_log_all(e->fe, true), 0);
}

/* Start queue @q again where GET_VRING_BASE stopped it (@base): base,
 * kick and call, as QEMU's vhost_virtqueue_start(). */
static void restart(struct env *e, uint16_t q, uint32_t base)
{
	ck_assert_int_eq(vhu_fe_set_vring_base(e->fe, q, base), 0);
	ck_assert_int_eq(vhu_fe_set_vring_kick(e->fe, q, vhu_fe_queue_kick_fd(e->fe, q)), 0);
	ck_assert_int_eq(vhu_fe_set_vring_call(e->fe, q, vhu_fe_queue_call_fd(e->fe, q)), 0);
}

/* ---- a data-plane thread ------------------------------------------ */

/* Loops bursts on one queue: pop up to 8, fill every writable segment,
 * push with written = in_len, notify. */
struct worker {
	struct vhu_vq *vq;
	pthread_t th;
	atomic_bool stop;
	atomic_ulong served;
	atomic_int err; /* first unexpected result, or 0 */
};

/* Running workers, for worker_teardown(). */
static struct worker *live_workers[2];

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct vhu_req reqs[8];
	struct vhu_seg segs[64];
	uint32_t written[8];
	int expected = 0;

	while (!atomic_load(&w->stop)) {
		unsigned st = vhu_vq_begin(w->vq);
		int n = 0;

		if (st & VHU_VQ_RUNNING)
			n = vhu_vq_pop(w->vq, reqs, 8, segs, 64);
		if (n < 0 || (st & VHU_VQ_BROKEN))
			atomic_compare_exchange_strong(&w->err, &expected,
						       n < 0 ? n : -EIO);
		for (int i = 0; i < n; i++) {
			for (unsigned s = reqs[i].nr_out;
			     s < (unsigned)(reqs[i].nr_out + reqs[i].nr_in); s++)
				memset(reqs[i].segs[s].addr, 0x5a, reqs[i].segs[s].len);
			written[i] = reqs[i].in_len;
		}
		if (n > 0) {
			int rc = vhu_vq_push(w->vq, reqs, written, (unsigned)n);

			if (rc)
				atomic_compare_exchange_strong(&w->err, &expected, rc);
			vhu_vq_notify(w->vq);
			atomic_fetch_add(&w->served, (unsigned long)n);
		}
		vhu_vq_end(w->vq);
		if (n <= 0)
			usleep(tu_under_valgrind() ? 200 : 20);
	}
	return NULL;
}

static struct worker *worker_start(struct vhu_vq *vq)
{
	struct worker *w = calloc(1, sizeof(*w));

	ck_assert_ptr_nonnull(w);
	w->vq = vq;
	ck_assert_int_eq(pthread_create(&w->th, NULL, worker_run, w), 0);
	for (int i = 0; i < 2; i++)
		if (!live_workers[i]) {
			live_workers[i] = w;
			return w;
		}
	ck_abort_msg("more than two workers");
	return NULL;
}

/* Stop and free it; its error, or 0. */
static int worker_stop(struct worker *w)
{
	int err;

	atomic_store(&w->stop, true);
	pthread_join(w->th, NULL);
	err = atomic_load(&w->err);
	for (int i = 0; i < 2; i++)
		if (live_workers[i] == w)
			live_workers[i] = NULL;
	free(w);
	return err;
}

/* A test that failed with its worker running (CK_FORK=no leaves the test
 * by longjmp): stop the thread before its device is reused or freed. */
static void worker_teardown(void)
{
	for (int i = 0; i < 2; i++)
		if (live_workers[i])
			worker_stop(live_workers[i]);
}

/* ==== bits ========================================================= */

/*
 * A writable buffer over three pages with only part of it written: the
 * pages of the bytes written are marked, the page beyond them is not.
 * Two writable buffers in one chain, the second barely written; a
 * writable buffer nothing was written into; the readable buffer: never.
 */
START_TEST(partial_write)
{
	struct env e;
	struct env_opts o = { .packed = _i & 1 };
	struct expect x = { 0 };
	struct dlog l;
	struct qd d;

	up(&e, &o);
	logging_on(&e, &l);
	qd_init(&d, &e, 0);
	may_ring(&x, d.r);
	uint64_t rd = pages(&e, 1), w3 = pages(&e, 3), wa = pages(&e, 1),
		 wb = pages(&e, 1), w0 = pages(&e, 1);
	struct vhu_fe_buf b1[2] = { { rd, 100 }, { w3 + 512, 3 * PAGE - 1024 } };
	struct vhu_fe_buf b2[3] = { { rd, 100 }, { wa + 100, 1000 }, { wb, 2000 } };
	struct vhu_fe_buf b3[1] = { { w0, 512 } };

	fill(&e, rd, 100, 3);
	post(&d, b1, 1, 1, PAGE, false);     /* bytes 512..4607: pages 0, 1 */
	post(&d, b2, 1, 2, 1010, false);     /* 1000 + 10 */
	post(&d, b3, 0, 1, 0, false);
	ck_assert_uint_eq(serve(&d, false), 3);
	ck_assert_uint_eq(reap(&d, &x, true, NULL, 0), 3);
	/* what the driver saw is what the test planned */
	ck_assert(bit(x.must, PG(w3)) && bit(x.must, PG(w3) + 1));
	ck_assert(!bit(x.must, PG(w3) + 2));
	ck_assert(bit(x.must, PG(wa)) && bit(x.must, PG(wb)));
	ck_assert(!bit(x.must, PG(w0)) && !bit(x.must, PG(rd)));
	check_log(&l, &x, "partial write");

	/* again, the front-end having taken the bits (a migration round) */
	memset(l.bits, 0, l.size);
	memset(x.must, 0, sizeof(x.must));
	one_request(&d, &x, 2 * PAGE - 100);
	check_log(&l, &x, "second round");
	/* freeing the device unmaps its log: ours is the only mapping left */
	env_down(&e);
	ck_assert_int_eq(tu_count_maps("/memfd:" LOG_NAME), 1);
	dlog_free(&l);
}
END_TEST

/* Requests the device only reads: only ring entries are marked, whether
 * pushed with written NULL or with zeros. */
START_TEST(readable_only)
{
	struct env e;
	struct env_opts o = { .packed = _i & 1 };
	struct expect x = { 0 };
	struct dlog l;
	struct qd d;

	up(&e, &o);
	logging_on(&e, &l);
	qd_init(&d, &e, 0);
	may_ring(&x, d.r);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 8; i++) {
			uint64_t rd = pages(&e, 2);
			struct vhu_fe_buf b[2] = { { rd, PAGE }, { rd + PAGE, 100 } };

			fill(&e, rd, PAGE, (uint8_t)i);
			post(&d, b, 2, 0, 0, false);
		}
		ck_assert_uint_eq(serve(&d, round == 0), 8);
		ck_assert_uint_eq(reap(&d, &x, true, NULL, 0), 8);
	}
	ck_assert_uint_gt(count_bits(x.must, sizeof(x.must)), 0);
	check_log(&l, &x, "read-only requests");
	env_down(&e);
	dlog_free(&l);
}
END_TEST

/* Logging off marks nothing: no log and no LOG_ALL, a log without
 * LOG_ALL, LOG_ALL switched off again; on in between, the same traffic is
 * marked in the same log. */
START_TEST(logging_off)
{
	struct env e;
	struct env_opts o = { .packed = _i & 1 };
	struct expect x = { 0 };
	struct dlog l;
	struct qd d;
	int local = 0;

	up(&e, &o);
	qd_init(&d, &e, 0);
	/* neither: vhu_vq_log_write() checks nothing */
	one_request(&d, &x, 3000);
	ck_assert(vhu_vq_begin(d.vq) & VHU_VQ_RUNNING);
	ck_assert_int_eq(vhu_vq_log_write(d.vq, &local, sizeof(local)), 0);
	vhu_vq_end(d.vq);

	/* a log, LOG_ALL never negotiated */
	dlog_make(&l, log_need(e.fe), 0);
	ck_assert_int_eq(vhu_fe_set_log_base(e.fe, l.fd, l.size, 0), 0);
	one_request(&d, &x, 3000);
	check_clear(&l, "a log without LOG_ALL");

	/* LOG_ALL on: marked */
	ck_assert_int_eq(vhu_fe_set_log_all(e.fe, true), 0);
	memset(&x, 0, sizeof(x));
	may_ring(&x, d.r);
	one_request(&d, &x, 3000);
	ck_assert_uint_gt(count_bits(l.bits, l.size), 0);
	check_log(&l, &x, "LOG_ALL on");

	/* off again: nothing more */
	ck_assert_int_eq(vhu_fe_set_log_all(e.fe, false), 0);
	memset(l.bits, 0, l.size);
	one_request(&d, &x, 3000);
	ck_assert(vhu_vq_begin(d.vq) & VHU_VQ_RUNNING);
	ck_assert_int_eq(vhu_vq_log_write(d.vq, &local, sizeof(local)), 0);
	vhu_vq_end(d.vq);
	check_clear(&l, "LOG_ALL off again");
	env_down(&e);
	dlog_free(&l);
}
END_TEST

/*
 * vhu_vq_set_kicks() writes the split used->flags (no event index) or
 * avail_event (event index, when turning kicks on), or the packed device
 * event area: those pages are marked.  A split ring of 1024 entries puts
 * used->flags and avail_event on different pages.
 */
START_TEST(set_kicks_logged)
{
	bool packed = _i & 1, event_idx = _i & 2;
	struct env e;
	struct env_opts o = { .packed = packed, .qsize = packed ? 256 : 1024,
			      .features_off = event_idx ? 0 : VHU_BIT(VHU_F_EVENT_IDX) };
	struct expect x = { 0 };
	struct dlog l;
	struct qd d;

	up(&e, &o);
	logging_on(&e, &l);
	qd_init(&d, &e, 0);
	may_ring(&x, d.r);
	ck_assert(vhu_vq_begin(d.vq) & VHU_VQ_RUNNING);
	ck_assert_int_eq(vhu_vq_set_kicks(d.vq, false), 0);
	ck_assert_int_eq(vhu_vq_set_kicks(d.vq, true), 0);
	vhu_vq_end(d.vq);
	if (packed) {
		uint16_t flags = vhu_fe_ld16((uint8_t *)d.r->used + 2);

		ck_assert_uint_eq(flags, event_idx ? VHU_FE_EVENT_F_DESC
						   : VHU_FE_EVENT_F_ENABLE);
		mark(x.must, d.r->used_gpa, 4);
	} else if (event_idx) {
		mark(x.must, d.r->used_gpa + 4 + 8u * d.r->num, 2);
		ck_assert(PG(d.r->used_gpa) != PG(d.r->used_gpa + 4 + 8u * d.r->num));
	} else {
		mark(x.must, d.r->used_gpa, 2);
	}
	check_log(&l, &x, "set_kicks");
	env_down(&e);
	dlog_free(&l);
}
END_TEST

/* A log that starts 100 bytes into the second page of its file: the bits
 * land there, nothing before or after them. */
START_TEST(log_at_offset)
{
	struct env e;
	struct env_opts o = { 0 };
	struct expect x = { 0 };
	struct dlog l;
	struct qd d;

	up(&e, &o);
	qd_init(&d, &e, 0);
	may_ring(&x, d.r);
	dlog_make(&l, log_need(e.fe), PAGE + 100);
	ck_assert_int_eq(vhu_fe_set_log_base(e.fe, l.fd, l.size, PAGE + 100), 0);
	ck_assert_int_eq(vhu_fe_set_log_all(e.fe, true), 0);
	one_request(&d, &x, PAGE);
	check_log(&l, &x, "log at offset 4196");
	env_down(&e);
	dlog_free(&l);
}
END_TEST

/* Through an indirect table (on a page of its own, which is only read):
 * the buffer pages written are marked, the table's page is not. */
START_TEST(indirect)
{
	struct env e;
	struct env_opts o = { .packed = _i & 1 };
	struct expect x = { 0 };
	struct dlog l;
	struct qd d;

	up(&e, &o);
	logging_on(&e, &l);
	qd_init(&d, &e, 0);
	may_ring(&x, d.r);
	uint64_t rd = pages(&e, 1), w1 = pages(&e, 2), w2 = pages(&e, 2);
	struct vhu_fe_buf b1[2] = { { rd, 64 }, { w1 + 1000, 6000 } };
	struct vhu_fe_buf b2[3] = { { rd, 64 }, { w2 + 1000, 3000 }, { w2 + PAGE, 100 } };

	post(&d, b1, 1, 1, 4000, true);      /* 1000..4999: both pages */
	post(&d, b2, 1, 2, 3000, true);      /* the first buffer only */
	ck_assert_uint_eq(serve(&d, false), 2);
	ck_assert_uint_eq(reap(&d, &x, true, NULL, 0), 2);
	ck_assert(bit(x.must, PG(w1)) && bit(x.must, PG(w1) + 1));
	ck_assert(bit(x.must, PG(w2)) && !bit(x.must, PG(w2) + 1));
	check_log(&l, &x, "indirect");
	env_down(&e);
	dlog_free(&l);
}
END_TEST

/* A buffer across two memory regions comes out as two segments: the
 * bytes written on each side mark the pages on each side, and only them
 * (4097 bytes reach one byte into the second region, 4095 do not). */
START_TEST(straddle)
{
	struct env e;
	struct env_opts o = { .packed = _i & 1, .regions = 3 };
	struct expect x = { 0 };
	struct dlog l;
	struct qd d;
	uint64_t s1, s2;

	up(&e, &o);
	logging_on(&e, &l);
	qd_init(&d, &e, 0);
	may_ring(&x, d.r);
	ck_assert_int_eq(vhu_fe_mem_alloc_straddle(e.fe, 2 * PAGE, &s1), 0);
	ck_assert_int_eq(vhu_fe_mem_alloc_straddle(e.fe, 2 * PAGE, &s2), 0);
	ck_assert(s1 % (4 * MB) == 4 * MB - PAGE && s2 % (4 * MB) == 4 * MB - PAGE);
	struct vhu_fe_buf b1 = { s1, 2 * PAGE }, b2 = { s2, 2 * PAGE };

	post(&d, &b1, 0, 1, PAGE + 1, false);
	post(&d, &b2, 0, 1, PAGE - 1, false);
	ck_assert_uint_eq(serve(&d, false), 2);
	ck_assert_uint_eq(reap(&d, &x, true, NULL, 0), 2);
	ck_assert(bit(x.must, PG(s1)) && bit(x.must, PG(s1) + 1));
	ck_assert(bit(x.must, PG(s2)) && !bit(x.must, PG(s2) + 1));
	check_log(&l, &x, "across regions");
	env_down(&e);
	dlog_free(&l);
}
END_TEST

/* The device moves the ring to slot @to (read-only requests, batches of
 * up to 64), logging off. */
static void advance(struct qd *d, uint64_t rd, uint16_t to)
{
	struct expect *scratch = calloc(1, sizeof(*scratch));
	uint16_t mask = (uint16_t)(d->r->num - 1);

	ck_assert_ptr_nonnull(scratch);
	while ((d->r->last_used & (d->r->packed ? 0xffff : mask)) != to) {
		uint16_t at = d->r->last_used & (d->r->packed ? 0xffff : mask);
		unsigned n = (uint16_t)(to - at) & mask;
		struct vhu_fe_buf b = { rd, 64 };

		n = n > 64 ? 64 : n;
		for (unsigned i = 0; i < n; i++)
			post(d, &b, 1, 0, 0, false);
		ck_assert_uint_eq(serve(d, true), n);
		ck_assert_uint_eq(reap(d, scratch, true, NULL, 0), n);
	}
	free(scratch);
}

/* 16 writable requests pushed at once from the ring's position, logging
 * on; the log holds exactly what the driver saw. */
static void logged_batch(struct qd *d, struct dlog *l, uint64_t w,
			 struct expect *x, const char *what)
{
	ck_assert_int_eq(vhu_fe_set_log_all(d->e->fe, true), 0);
	memset(l->bits, 0, l->size);
	memset(x, 0, sizeof(*x));
	may_ring(x, d->r);
	for (unsigned i = 0; i < 16; i++) {
		struct vhu_fe_buf b = { w + i * PAGE, 200 };

		post(d, &b, 0, 1, 100 + i, false);
	}
	ck_assert_uint_eq(serve(d, false), 16);
	ck_assert_uint_eq(reap(d, x, true, NULL, 0), 16);
	check_log(l, x, what);
	ck_assert_int_eq(vhu_fe_set_log_all(d->e->fe, false), 0);
}

/*
 * Ring entries by position, on rings whose device-written parts span
 * pages.  Packed, 512 entries: the descriptor table is two pages.  Split,
 * 1024 entries: the used ring spans three pages (flags and idx with the
 * first 255 entries, then entries 255..766, then the rest).
 *  - a batch at slot 300, on the second page (split: used->idx is marked
 *    on the first one);
 *  - one push of a batch that crosses the end of the ring: entries on
 *    both sides marked (packed: slots 500..511 and 0..3).
 */
START_TEST(ring_positions)
{
	bool packed = _i & 1;
	uint16_t num = packed ? 512 : 1024;
	struct env e;
	struct env_opts o = { .packed = packed, .qsize = num };
	struct expect *x = calloc(1, sizeof(*x));
	struct dlog l;
	struct qd d;
	uint64_t rd, w;

	ck_assert_ptr_nonnull(x);
	up(&e, &o);
	qd_init(&d, &e, 0);
	dlog_make(&l, log_need(e.fe), 0);
	ck_assert_int_eq(vhu_fe_set_log_base(e.fe, l.fd, l.size, 0), 0);
	rd = pages(&e, 1);
	w = pages(&e, 16);

	advance(&d, rd, 300);
	logged_batch(&d, &l, w, x, "a batch at slot 300");
	if (packed) {
		ck_assert(!bit(x->must, PG(d.r->desc_gpa)));
		ck_assert(bit(x->must, PG(d.r->desc_gpa) + 1));
	} else {
		ck_assert(PG(d.r->used_gpa + 4 + 8u * 300) != PG(d.r->used_gpa + 2));
		ck_assert(bit(x->must, PG(d.r->used_gpa + 2)));
	}

	advance(&d, rd, (uint16_t)(num - (packed ? 12 : 4)));
	logged_batch(&d, &l, w, x, "a batch across the end of the ring");
	if (packed)
		ck_assert(bit(x->must, PG(d.r->desc_gpa)) &&
			  bit(x->must, PG(d.r->desc_gpa) + 1));
	else
		ck_assert(bit(x->must, PG(d.r->used_gpa + 4 + 8u * (num - 1))) &&
			  bit(x->must, PG(d.r->used_gpa + 4)));
	env_down(&e);
	dlog_free(&l);
	free(x);
}
END_TEST

/* In-order packed: a batch of read-only requests pushed at once goes
 * back as one used descriptor (the driver counts the others); its page is
 * marked, no buffer page is.  Then a written one. */
START_TEST(in_order_batch)
{
	struct env e;
	struct env_opts o = { .packed = true, .in_order = true };
	struct expect x = { 0 };
	struct dlog l;
	struct qd d;

	up(&e, &o);
	logging_on(&e, &l);
	qd_init(&d, &e, 0);
	may_ring(&x, d.r);
	ck_assert(vhu_vq_in_order(d.vq));
	for (int i = 0; i < 16; i++) {
		struct vhu_fe_buf b = { pages(&e, 1), 300 };

		fill(&e, b.gpa, 300, (uint8_t)i);
		post(&d, &b, 1, 0, 0, false);
	}
	ck_assert_uint_eq(serve(&d, true), 16);
	ck_assert_uint_eq(reap(&d, &x, true, NULL, 0), 16);
	ck_assert_uint_eq(d.r->used_skipped, 15); /* one descriptor for 16 */
	one_request(&d, &x, 5000);
	check_log(&l, &x, "in-order batch");
	env_down(&e);
	dlog_free(&l);
}
END_TEST

/* vhu_vq_log_write(): a write push's count does not cover (bytes 5000..
 * 5099 of a three-page buffer pushed with nothing written) marks only its
 * page; a pointer outside guest memory is -EFAULT; outside a burst
 * -EAGAIN; with logging off 0, even outside guest memory. */
START_TEST(log_write_api)
{
	struct env e;
	struct env_opts o = { .packed = _i & 1 };
	struct expect x = { 0 };
	struct vhu_req req;
	struct vhu_seg seg;
	struct dlog l;
	struct qd d;
	int local = 0;

	up(&e, &o);
	logging_on(&e, &l);
	qd_init(&d, &e, 0);
	may_ring(&x, d.r);
	uint64_t w = pages(&e, 3);
	struct vhu_fe_buf b = { w, 3 * PAGE };

	post(&d, &b, 0, 1, 0, false);
	ck_assert(vhu_vq_begin(d.vq) & VHU_VQ_RUNNING);
	ck_assert_int_eq(vhu_vq_pop(d.vq, &req, 1, &seg, 1), 1);
	ck_assert_uint_eq(seg.len, 3 * PAGE);
	memset((uint8_t *)seg.addr + 5000, 0x77, 100);
	ck_assert_int_eq(vhu_vq_log_write(d.vq, (uint8_t *)seg.addr + 5000, 100), 0);
	ck_assert_int_eq(vhu_vq_log_write(d.vq, &local, sizeof(local)), -EFAULT);
	ck_assert_int_eq(vhu_vq_log_write(d.vq, seg.addr, 0), 0);
	ck_assert_int_eq(vhu_vq_push(d.vq, &req, NULL, 1), 0);
	vhu_vq_end(d.vq);
	ck_assert_int_eq(vhu_vq_log_write(d.vq, seg.addr, 1), -EAGAIN);
	ck_assert_uint_eq(reap(&d, &x, true, NULL, 0), 1);
	/* the driver finds the bytes where the device said it wrote them */
	uint8_t *p = vhu_fe_gpa_to_ptr(e.fe, w, 3 * PAGE);
	ck_assert_uint_eq(p[4999], 0);
	ck_assert_uint_eq(p[5000], 0x77);
	ck_assert_uint_eq(p[5099], 0x77);
	ck_assert_uint_eq(p[5100], 0);
	mark(x.must, w + 5000, 100);
	check_log(&l, &x, "vhu_vq_log_write");

	/* logging off: nothing checked, nothing marked */
	ck_assert_int_eq(vhu_fe_set_log_all(e.fe, false), 0);
	memset(l.bits, 0, l.size);
	ck_assert(vhu_vq_begin(d.vq) & VHU_VQ_RUNNING);
	ck_assert_int_eq(vhu_vq_log_write(d.vq, &local, sizeof(local)), 0);
	ck_assert_int_eq(vhu_vq_log_write(d.vq, p, 100), 0);
	vhu_vq_end(d.vq);
	check_clear(&l, "vhu_vq_log_write with logging off");
	env_down(&e);
	dlog_free(&l);
}
END_TEST

/* ---- virtio-net ---- */

#define FRAME_MAX 1500

/* The frames of RX queue @d as the guest reassembles them from the used
 * buffers @u (in ring order): header (num_buffers) then data. */
static void check_frames(struct qd *d, const struct used *u, unsigned nu,
			 uint8_t frames[][FRAME_MAX], const uint32_t *flen,
			 unsigned nf)
{
	static uint8_t got[FRAME_MAX * 2];
	unsigned k = 0;

	for (unsigned f = 0; f < nf; f++) {
		struct virtio_net_hdr_v1 h;
		uint32_t n = 0;

		ck_assert_uint_lt(k, nu);
		ck_assert_int_eq(vhu_fe_mem_read(d->e->fe, d->g[u[k].id].b[0].gpa,
						 &h, sizeof(h)), 0);
		ck_assert_uint_ge(h.num_buffers, 1);
		for (unsigned j = 0; j < h.num_buffers; j++, k++) {
			uint32_t from = j == 0 ? sizeof(h) : 0;

			ck_assert_uint_lt(k, nu);
			ck_assert_uint_ge(u[k].len, from);
			ck_assert_uint_le(n + u[k].len - from, sizeof(got));
			ck_assert_int_eq(vhu_fe_mem_read(d->e->fe,
							 d->g[u[k].id].b[0].gpa + from,
							 got + n, u[k].len - from), 0);
			n += u[k].len - from;
		}
		ck_assert_uint_eq(n, flen[f]);
		ck_assert_mem_eq(got, frames[f], n);
	}
	ck_assert_uint_eq(k, nu);
}

/*
 * A device with VIRTIO_NET_F_MRG_RXBUF, split and packed, logging on
 * (packed: the fast paths must step aside for the general path, which
 * pushes and logs).  The length of each used buffer says which pages were
 * written.
 *  A: single-buffer frames (what the packed fast path would take): 1000
 *     bytes into buffers of 2048 that start 3000 bytes into a page: the
 *     first page only.
 *  B: mergeable frames of 1400 bytes into 512-byte buffers that cross a
 *     page 400 bytes in (three buffers each, the last with 388 bytes: its
 *     second page clear); 7 frames for 20 buffers: 6 go, 2 buffers stay
 *     posted and clear.
 *  C: TX, 8 frames dequeued: only ring entries marked.
 * Frames arrive byte for byte.
 */
START_TEST(net_mergeable_rx)
{
	static uint8_t frames[8][FRAME_MAX];
	struct env e;
	struct env_opts o = { .packed = _i & 1,
			      .device_features = VHU_BIT(VHU_NET_F_MRG_RXBUF) };
	struct expect x = { 0 };
	struct vhu_net_pkt pkts[8];
	struct used u[64];
	uint32_t flen[8];
	struct dlog l;
	struct qd rx, tx;
	unsigned nu;

	up(&e, &o);
	ck_assert(vhu_fe_acked_features(e.fe) & VHU_BIT(VHU_NET_F_MRG_RXBUF));
	logging_on(&e, &l);
	qd_init(&rx, &e, 0);
	qd_init(&tx, &e, 1);
	may_ring(&x, rx.r);
	may_ring(&x, tx.r);
	ck_assert_uint_eq(vhu_net_hdr_size(rx.vq), 12);
	for (unsigned f = 0; f < 8; f++)
		for (unsigned i = 0; i < FRAME_MAX; i++)
			frames[f][i] = (uint8_t)(f * 31 + i * 7 + 1);

	/* A */
	uint64_t slot[20];
	for (unsigned i = 0; i < 8; i++) {
		struct vhu_fe_buf b = { pages(&e, 2) + 3000, 2048 };

		slot[i] = b.gpa - 3000;
		post(&rx, &b, 0, 1, 0, false);
	}
	for (unsigned f = 0; f < 8; f++) {
		flen[f] = 1000;
		pkts[f] = (struct vhu_net_pkt){ .data = frames[f], .len = 1000 };
	}
	ck_assert_int_eq(vhu_net_enqueue(rx.vq, pkts, 8), 8);
	nu = reap(&rx, &x, false, u, 64);
	ck_assert_uint_eq(nu, 8);
	check_frames(&rx, u, nu, frames, flen, 8);
	for (unsigned i = 0; i < 8; i++)
		ck_assert(bit(x.must, PG(slot[i])) && !bit(x.must, PG(slot[i]) + 1));

	/* B */
	for (unsigned i = 0; i < 20; i++) {
		struct vhu_fe_buf b = { pages(&e, 2) + PAGE - 400, 512 };

		slot[i] = b.gpa - (PAGE - 400);
		post(&rx, &b, 0, 1, 0, false);
	}
	for (unsigned f = 0; f < 7; f++) {
		flen[f] = 1400;
		pkts[f] = (struct vhu_net_pkt){ .data = frames[f], .len = 1400 };
	}
	ck_assert_int_eq(vhu_net_enqueue(rx.vq, pkts, 7), 6);
	nu = reap(&rx, &x, false, u, 64);
	ck_assert_uint_eq(nu, 18);
	check_frames(&rx, u, nu, frames, flen, 6);
	for (unsigned i = 0; i < 18; i++) {
		ck_assert_uint_eq(u[i].len, i % 3 == 2 ? 388 : 512);
		ck_assert(bit(x.must, PG(slot[i])));
		ck_assert(bit(x.must, PG(slot[i]) + 1) == (i % 3 != 2));
	}
	for (unsigned i = 18; i < 20; i++)
		ck_assert(!bit(x.must, PG(slot[i])) && !bit(x.must, PG(slot[i]) + 1));

	/* C */
	static uint8_t out[8][2048];
	void *bufs[8];
	for (unsigned i = 0; i < 8; i++) {
		struct vhu_fe_buf b = { pages(&e, 1), 12 + 200 };

		ck_assert_int_eq(vhu_fe_mem_write(e.fe, b.gpa + 12, frames[i], 200), 0);
		post(&tx, &b, 1, 0, 0, false);
		bufs[i] = out[i];
	}
	ck_assert_int_eq(vhu_net_dequeue(tx.vq, pkts, bufs, 2048, 8), 8);
	for (unsigned i = 0; i < 8; i++) {
		ck_assert_uint_eq(pkts[i].len, 200);
		ck_assert_mem_eq(out[i], frames[i], 200);
	}
	ck_assert_uint_eq(reap(&tx, &x, true, NULL, 0), 8);
	check_log(&l, &x, "virtio-net");
	env_down(&e);
	dlog_free(&l);
}
END_TEST

/* ==== replace ====================================================== */

#define WIN 16          /* generations a request may stay in flight */
#define SLOTS (WIN + 2) /* logs mapped at once */

/* A request of the replacement test, as the driver made it available. */
struct rec {
	uint64_t gpa;
	uint32_t gen;      /* the log in force then */
	uint32_t epoch;    /* LOG_ALL off switches so far */
	bool on;           /* LOG_ALL on then */
	bool covered;      /* on from then until the driver saw it used */
};

struct replace {
	struct env e;
	struct vhu_fe_ring *r;
	uint64_t size;
	struct dlog logs[SLOTS]; /* generation j in logs[j % SLOTS] */
	uint8_t *snap[SLOTS];    /* a copy right after j was replaced */
	uint32_t g;              /* the generation in force */
	bool on;
	uint32_t epoch;
	struct rec inflight[64]; /* by ring id */
	struct rec *done;        /* reaped, not checked yet */
	unsigned ndone;
	uint64_t *free_pages;
	unsigned nfree;
	struct expect *x;        /* must: the pool; may: queue 1's ring */
	unsigned long posted, reaped, covered, checked;
};

static struct dlog *gen_log(struct replace *t, uint32_t j)
{
	return &t->logs[j % SLOTS];
}

/* A request reaped before the reply that froze generation t->g - 1 (or
 * the data plane stopped): if LOG_ALL was on from its making available
 * to its use, its page is marked in the log of its generation or a later
 * one.  Its page is free again: every mark of it is in logs no later
 * request is checked against. */
static void replace_check(struct replace *t, const struct rec *c, uint32_t upto)
{
	bool marked = false;

	if (c->covered) {
		ck_assert_msg(c->gen + WIN >= upto, "a request in flight over %u "
			      "replacements", upto - c->gen);
		for (uint32_t j = c->gen; j <= upto && !marked; j++)
			marked = bit(gen_log(t, j)->bits, PG(c->gpa));
		if (!marked)
			ck_abort_msg("a request at gpa 0x%llx, made available under "
				     "log %u with LOG_ALL on and used before log %u "
				     "was replaced, is marked in none of logs %u..%u",
				     (unsigned long long)c->gpa, c->gen, upto, c->gen,
				     upto);
		t->checked++;
	}
	t->free_pages[t->nfree++] = c->gpa;
}

/* Generation @j, replaced a while ago: unchanged since the reply that
 * replaced it, and marks nothing but the pool and the ring.  Unmapped. */
static void replace_retire(struct replace *t, uint32_t j)
{
	struct dlog *l = gen_log(t, j);

	ck_assert_msg(memcmp(t->snap[j % SLOTS], l->bits, t->size) == 0,
		      "log %u changed after the reply of the SET_LOG_BASE that "
		      "replaced it", j);
	for (uint64_t p = 0; p < t->size * 8; p++)
		if (bit(l->bits, p) && !bit(t->x->must, p) && !bit(t->x->may, p))
			ck_abort_msg("log %u marks page %llu, which no request and "
				     "no ring holds", j, (unsigned long long)p);
	dlog_free(l);
	free(t->snap[j % SLOTS]);
	t->snap[j % SLOTS] = NULL;
}

/* SET_LOG_BASE with a fresh memfd; after its reply, copy the log it
 * replaced, check the requests reaped before it, retire an old log. */
static void replace_log(struct replace *t)
{
	uint32_t g = t->g;
	struct dlog *n = gen_log(t, g + 1);

	if (g + 1 >= SLOTS)
		replace_retire(t, g + 1 - SLOTS);
	dlog_make(n, t->size, 0);
	ck_assert_int_eq(vhu_fe_set_log_base(t->e.fe, n->fd, t->size, 0), 0);
	t->snap[g % SLOTS] = malloc(t->size);
	ck_assert_ptr_nonnull(t->snap[g % SLOTS]);
	memcpy(t->snap[g % SLOTS], gen_log(t, g)->bits, t->size);
	close(n->fd);
	n->fd = -1;
	t->g = g + 1;
	for (unsigned i = 0; i < t->ndone; i++)
		replace_check(t, &t->done[i], g);
	t->ndone = 0;
}

static unsigned replace_reap(struct replace *t)
{
	unsigned n = 0;
	uint16_t id;
	uint32_t len;

	while (vhu_fe_ring_get_used(t->r, &id, &len, NULL) == 1) {
		struct rec *c = &t->inflight[id];

		FAST_EQ(len, PAGE);
		c->covered = c->on && t->on && c->epoch == t->epoch;
		t->covered += c->covered;
		t->done[t->ndone++] = *c;
		t->reaped++;
		n++;
	}
	return n;
}

/*
 * A thread loops bursts on queue 1 (pop up to 8, fill, push with written
 * = in_len) while the test thread, as driver, keeps the ring full of
 * page-aligned 4 KiB writable buffers, and as front-end sends a new
 * SET_LOG_BASE (a fresh memfd) every few requests and switches LOG_ALL
 * off and on now and then.  Each request records the generation of the
 * log in force when it was made available (after the reply that installed
 * it) and whether LOG_ALL was on.
 *  - every request made available with LOG_ALL on, still on when the
 *    driver saw it used, has its page marked in the log of its generation
 *    or a later one (checked after the next replacement's reply, when the
 *    bursts that used it have ended; its page then goes back to the pool);
 *  - a log copied right after the reply of the SET_LOG_BASE that replaced
 *    it is unchanged generations later (nothing written into the old map
 *    after the reply);
 *  - a log copied right after LOG_ALL went off is unchanged when it goes
 *    on again;
 *  - no log marks a page other than the pool's and queue 1's ring.
 */
START_TEST(log_replaced_under_traffic)
{
	bool vg = tu_under_valgrind();
	unsigned every = vg ? 16 : 48, toggle = vg ? 150 : 400, toggles = 0;
	unsigned long max = vg ? 20000 : ULONG_MAX;
	uint64_t deadline, next_replace, next_toggle;
	struct replace *t = calloc(1, sizeof(*t));
	struct env_opts o = { .packed = _i & 1, .qsize = 64, .region_size = 8 * MB };
	uint8_t *off_snap;
	uint32_t off_gen = 0;
	struct worker *w;
	unsigned pool = 0;

	ck_assert_ptr_nonnull(t);
	up(&t->e, &o);
	t->r = ring(&t->e, 1);
	t->size = log_need(t->e.fe);
	t->x = calloc(1, sizeof(*t->x));
	t->done = calloc(4096, sizeof(*t->done));
	t->free_pages = calloc(4096, sizeof(*t->free_pages));
	off_snap = malloc(t->size);
	ck_assert(t->x && t->done && t->free_pages && off_snap);
	may_ring(t->x, t->r);
	/* the pool: the rest of guest memory, a page per buffer */
	while (vhu_fe_mem_alloc(t->e.fe, PAGE, PAGE, &t->free_pages[pool]) == 0) {
		mark(t->x->must, t->free_pages[pool], PAGE);
		ck_assert_uint_lt(++pool, 4096);
	}
	ck_assert_uint_gt(pool, 1000);
	t->nfree = pool;
	dlog_make(gen_log(t, 0), t->size, 0);
	ck_assert_int_eq(vhu_fe_set_log_base(t->e.fe, gen_log(t, 0)->fd, t->size, 0), 0);
	ck_assert_int_eq(vhu_fe_set_log_all(t->e.fe, true), 0);
	t->on = true;
	w = worker_start(vhu_dev_vq(t->e.dev, 1));
	next_replace = every;
	next_toggle = toggle;
	deadline = (uint64_t)tu_now_ms() + (vg ? 60000 : UNDER_TSAN ? 4000 : 2000);

	while (t->posted < max && (uint64_t)tu_now_ms() < deadline) {
		bool idle = replace_reap(t) == 0;

		while (t->r->num_free && t->nfree && t->posted < max) {
			struct vhu_fe_buf b = { t->free_pages[--t->nfree], PAGE };
			int id = vhu_fe_ring_add(t->r, &b, 0, 1, NULL);

			FAST(id >= 0 && id < 64);
			t->inflight[id] = (struct rec){ .gpa = b.gpa, .gen = t->g,
							.epoch = t->epoch, .on = t->on };
			t->posted++;
			/* made available right away: the generation holds */
			vhu_fe_ring_publish(t->r);
			idle = false;
		}
		if (t->posted >= next_replace) {
			replace_log(t);
			next_replace = t->posted + every;
		}
		if (t->posted >= next_toggle) {
			if (t->on) {
				ck_assert_int_eq(vhu_fe_set_log_all(t->e.fe, false), 0);
				t->on = false;
				t->epoch++;
				off_gen = t->g;
				memcpy(off_snap, gen_log(t, off_gen)->bits, t->size);
				next_toggle = t->posted + toggle / 4;
			} else {
				if (off_gen + SLOTS > t->g)
					ck_assert_msg(memcmp(gen_log(t, off_gen)->bits,
							     off_snap, t->size) == 0,
						      "log %u was written while LOG_ALL "
						      "was off", off_gen);
				ck_assert_int_eq(vhu_fe_set_log_all(t->e.fe, true), 0);
				t->on = true;
				next_toggle = t->posted + toggle;
			}
			toggles++;
		}
		if (idle)
			usleep(vg ? 200 : 20);
	}
	/* everything made available gets used; then the data plane stops
	 * (its last marks happen before the join) */
	for (uint64_t end = (uint64_t)tu_now_ms() + TMO; t->reaped < t->posted && (uint64_t)tu_now_ms() < end;)
		if (replace_reap(t) == 0)
			usleep(100);
	ck_assert_int_eq(worker_stop(w), 0);
	ck_assert_uint_eq(t->reaped, t->posted);
	for (unsigned i = 0; i < t->ndone; i++)
		replace_check(t, &t->done[i], t->g);
	for (uint32_t j = t->g >= SLOTS - 1 ? t->g - (SLOTS - 1) : 0; j < t->g; j++)
		replace_retire(t, j);
	ck_assert_msg(t->g >= 3 && toggles >= 2 && t->checked >= t->posted / 4,
		      "too little happened: %u logs, %u toggles, %lu of %lu "
		      "requests checked", t->g + 1, toggles, t->checked, t->posted);
	if (getenv("VHU_TEST_VERBOSE"))
		fprintf(stderr, "replace: %lu requests, %u logs, %u toggles, %lu "
			"checked\n", t->posted, t->g + 1, toggles, t->checked);
	env_down(&t->e);
	dlog_free(gen_log(t, t->g));
	free(t->x);
	free(t->done);
	free(t->free_pages);
	free(off_snap);
	free(t);
}
END_TEST

/*
 * QEMU's last round: with the data plane running on queue 1 and logging
 * on, GET_VRING_BASE stops the ring; after its reply, every buffer the
 * driver finds used has its page marked already (the burst in progress
 * ended, its marks included, before the reply), and the base is where
 * the ring stopped.  Started again, five times.
 */
START_TEST(final_round_under_traffic)
{
	struct env e;
	struct env_opts o = { .packed = _i & 1, .qsize = 64, .region_size = 8 * MB };
	unsigned rounds = 5, per_round = tu_under_valgrind() ? 100 : 300;
	uint64_t *seen = calloc(2048, sizeof(*seen));
	struct vhu_fe_ring *r;
	struct worker *w;
	struct dlog l;
	uint64_t gpa_by_id[64];
	unsigned long used = 0;

	ck_assert_ptr_nonnull(seen);
	up(&e, &o);
	logging_on(&e, &l);
	r = ring(&e, 1);
	w = worker_start(vhu_dev_vq(e.dev, 1));
	for (unsigned round = 0; round < rounds; round++) {
		unsigned nseen = 0;
		uint64_t end = (uint64_t)tu_now_ms() + TMO;
		uint32_t base;
		uint16_t id;
		uint32_t len;

		while (nseen < per_round && (uint64_t)tu_now_ms() < end) {
			while (vhu_fe_ring_get_used(r, &id, &len, NULL) == 1) {
				FAST_EQ(len, PAGE);
				FAST(nseen < 2048);
				seen[nseen++] = gpa_by_id[id];
			}
			while (r->num_free) {
				struct vhu_fe_buf b = { pages(&e, 1), PAGE };
				int n = vhu_fe_ring_add(r, &b, 0, 1, NULL);

				ck_assert(n >= 0 && n < 64);
				gpa_by_id[n] = b.gpa;
			}
			vhu_fe_ring_publish(r);
			usleep(20);
		}
		ck_assert_uint_ge(nseen, per_round);
		/* the last round: stop the ring, then everything used is in */
		ck_assert_int_eq(vhu_fe_get_vring_base(e.fe, 1, &base), 0);
		while (vhu_fe_ring_get_used(r, &id, &len, NULL) == 1) {
			FAST_EQ(len, PAGE);
			FAST(nseen < 2048);
			seen[nseen++] = gpa_by_id[id];
		}
		for (unsigned i = 0; i < nseen; i++)
			ck_assert_msg(bit(l.bits, PG(seen[i])),
				      "round %u: buffer at gpa 0x%llx used before the "
				      "GET_VRING_BASE reply but not marked after it",
				      round, (unsigned long long)seen[i]);
		used += nseen;
		/* nothing more gets used: the ring stopped */
		usleep(2000);
		ck_assert_int_eq(vhu_fe_ring_get_used(r, NULL, NULL, NULL), 0);
		/* every buffer taken was used: the base is the driver's used
		 * position (packed: in both halves) */
		if (r->packed)
			ck_assert_uint_eq(base, vhu_fe_ring_base(r));
		else
			ck_assert_uint_eq(base, (uint16_t)used);
		if (round + 1 < rounds)
			restart(&e, 1, base);
	}
	ck_assert_int_eq(worker_stop(w), 0);
	env_down(&e);
	dlog_free(&l);
	free(seen);
}
END_TEST

/*
 * Two data-plane threads, queues 0 and 1, mark the same log bytes at once:
 * buffer pages alternate between the queues, so each byte of the bitmap
 * gets bits from both.  A round feeds both rings until the pool is used
 * up; after every buffer came back, a SET_LOG_BASE of the same log waits
 * for the bursts, and then every page is marked (no bit lost to the other
 * thread's update of the byte); the log is cleared for the next round.
 */
START_TEST(queues_share_log_bytes)
{
	struct env e;
	struct env_opts o = { .packed = _i & 1, .qsize = 64, .region_size = 8 * MB };
	unsigned rounds = tu_under_valgrind() ? 2 : 10, npool = 0;
	uint64_t *pool = calloc(4096, sizeof(*pool));
	struct vhu_fe_ring *r[2];
	struct worker *w[2];
	struct dlog l;

	ck_assert_ptr_nonnull(pool);
	up(&e, &o);
	logging_on(&e, &l);
	r[0] = ring(&e, 0);
	r[1] = ring(&e, 1);
	while (npool < 4096 && vhu_fe_mem_alloc(e.fe, PAGE, PAGE, &pool[npool]) == 0)
		npool++;
	ck_assert_uint_gt(npool, 2000);
	npool &= ~1u;
	w[0] = worker_start(vhu_dev_vq(e.dev, 0));
	w[1] = worker_start(vhu_dev_vq(e.dev, 1));
	for (unsigned round = 0; round < rounds; round++) {
		unsigned next[2] = { 0, 1 }, back = 0;
		uint64_t end = (uint64_t)tu_now_ms() + 10 * TMO;

		while (back < npool && (uint64_t)tu_now_ms() < end) {
			bool idle = true;

			for (int q = 0; q < 2; q++) {
				while (vhu_fe_ring_get_used(r[q], NULL, NULL, NULL) == 1) {
					back++;
					idle = false;
				}
				while (r[q]->num_free && next[q] < npool) {
					struct vhu_fe_buf b = { pool[next[q]], PAGE };

					FAST(vhu_fe_ring_add(r[q], &b, 0, 1, NULL) >= 0);
					next[q] += 2;
					idle = false;
				}
				vhu_fe_ring_publish(r[q]);
			}
			if (idle)
				usleep(20);
		}
		ck_assert_uint_eq(back, npool);
		ck_assert_int_eq(vhu_fe_set_log_base(e.fe, l.fd, l.size, 0), 0);
		for (unsigned i = 0; i < npool; i++)
			ck_assert_msg(bit(l.bits, PG(pool[i])), "round %u: page of "
				      "buffer %u (queue %u) used but not marked",
				      round, i, i & 1);
		memset(l.bits, 0, l.size);
	}
	ck_assert_int_eq(worker_stop(w[1]), 0);
	ck_assert_int_eq(worker_stop(w[0]), 0);
	env_down(&e);
	dlog_free(&l);
	free(pool);
}
END_TEST

/* ==== hostile ====================================================== */

/* The SIGBUS guard (vhu/guard.h) of the devices that have one. */
static struct vhu_guard *guard;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (vhu_guard_handle_fault(guard, si))
		return;
	signal(sig, SIG_DFL);
	raise(sig);
}

static void guard_install(unsigned slots)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };

	guard = vhu_guard_new(slots);
	ck_assert_ptr_nonnull(guard);
	ck_assert_int_eq(sigaction(SIGBUS, &sa, NULL), 0);
}

static void guard_remove(void)
{
	signal(SIGBUS, SIG_DFL);
	vhu_guard_free(guard);
	guard = NULL;
}

/* Class 39: SET_LOG_BASE the device must refuse, with a non-zero status,
 * keeping the log in force (all or nothing). */
enum lb_case {
	LB_SIZE_ZERO,
	LB_TOO_SMALL,   /* one byte short of the highest guest page */
	LB_OVERFLOW,    /* mmap_offset + mmap_size past 2^64 */
	LB_PAST_EOF,    /* ends one byte past the file */
	LB_TOO_BIG,     /* above 1 TiB of bitmap */
	LB_EVENTFD,     /* not a file */
	LB_RDONLY,      /* a file opened read-only: cannot be mapped shared */
	LB_NO_FD,
	LB_TWO_FDS,
	LB_COUNT
};

static const char *const lb_log[LB_COUNT] = {
	[LB_SIZE_ZERO] = "no overflow",
	[LB_TOO_SMALL] = "guest memory needs",
	[LB_OVERFLOW] = "no overflow",
	[LB_PAST_EOF] = "but the file has",
	[LB_TOO_BIG] = "no overflow",
	[LB_EVENTFD] = "not a regular file",
	[LB_RDONLY] = "mmap of",
	[LB_NO_FD] = "file descriptors attached",
	[LB_TWO_FDS] = "file descriptors attached",
};

START_TEST(log_base_refused)
{
	enum lb_case c = (enum lb_case)_i;
	struct env e;
	struct env_opts o = { .packed = c & 1 };
	struct expect x = { 0 };
	struct dlog l;
	struct qd d;
	int fd = -1, rc;

	up(&e, &o);
	logging_on(&e, &l);
	qd_init(&d, &e, 0);
	may_ring(&x, d.r);
	one_request(&d, &x, 1000);
	check_log(&l, &x, "before");
	tu_log_clear();
	switch (c) {
	case LB_SIZE_ZERO:
		rc = vhu_fe_set_log_base(e.fe, l.fd, 0, 0);
		break;
	case LB_TOO_SMALL:
		rc = vhu_fe_set_log_base(e.fe, l.fd, l.size - 1, 0);
		break;
	case LB_OVERFLOW:
		rc = vhu_fe_set_log_base(e.fe, l.fd, l.size, UINT64_MAX - l.size + 2);
		break;
	case LB_PAST_EOF:
		rc = vhu_fe_set_log_base(e.fe, l.fd, l.size, l.map_len - l.size + 1);
		break;
	case LB_TOO_BIG:
		rc = vhu_fe_set_log_base(e.fe, l.fd, (1ull << 40) + 1, 0);
		break;
	case LB_EVENTFD:
		fd = eventfd(0, EFD_CLOEXEC);
		rc = vhu_fe_set_log_base(e.fe, fd, l.size, 0);
		break;
	case LB_RDONLY: {
		char path[64];

		snprintf(path, sizeof(path), "/proc/self/fd/%d", l.fd);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		ck_assert_int_ge(fd, 0);
		rc = vhu_fe_set_log_base(e.fe, fd, l.size, 0);
		break;
	}
	case LB_NO_FD:
		rc = vhu_fe_set_log_base(e.fe, -1, l.size, 0);
		break;
	default: {
		struct vhu_log m = { .mmap_size = l.size, .mmap_offset = 0 };
		int two[2] = { l.fd, l.fd };
		uint64_t status = 0;

		ck_assert_int_eq(vhu_fe_request(e.fe, VHU_REQ_SET_LOG_BASE, VHU_FLAG_VERSION,
						&m, sizeof(m), two, 2, &status,
						sizeof(status)), sizeof(status));
		rc = status ? -EREMOTEIO : 0;
		break;
	}
	}
	ck_assert_int_eq(rc, -EREMOTEIO);
	ck_assert_msg(tu_log_contains(lb_log[c]), "no log line with \"%s\"", lb_log[c]);
	if (fd >= 0)
		close(fd);
	/* still connected, and the log in force still gets the bits */
	fe_sync(&e);
	ck_assert(vhu_fe_is_connected(e.fe));
	memset(l.bits, 0, l.size);
	memset(x.must, 0, sizeof(x.must));
	one_request(&d, &x, 2 * PAGE - 100);
	check_log(&l, &x, "after the refusal");
	aftermath_env(&e);
	env_down(&e);
	dlog_free(&l);
}
END_TEST

/*
 * Class 39: a log too small for the memory table is refused; and class
 * 16's write past the end of the log: the memory table grows beyond a log
 * that covered it (QEMU grows the log first; this front-end does not).
 * The write into the new region breaks the queue, with a log line; nothing
 * is written past the bitmap.  A log that covers the new region and a
 * restart of the ring bring it back.
 */
START_TEST(log_outgrown_by_memory)
{
	struct env e;
	struct env_opts o = { .packed = _i & 1 };
	struct expect x = { 0 };
	struct dlog l, big;
	struct qd d;
	uint32_t base;
	int ri;

	up(&e, &o);
	logging_on(&e, &l);
	qd_init(&d, &e, 0);
	may_ring(&x, d.r);
	ri = vhu_fe_mem_add(e.fe, 64 * MB, MB, 0, 0);
	ck_assert_int_ge(ri, 0);
	ck_assert_int_eq(vhu_fe_set_mem_table(e.fe), 0);
	/* a log for the old table is too small now */
	ck_assert_int_eq(vhu_fe_set_log_base(e.fe, l.fd, l.size, 0), -EREMOTEIO);
	ck_assert(tu_log_contains("guest memory needs"));

	struct vhu_fe_region *nr = vhu_fe_mem_region(e.fe, (unsigned)ri);
	struct vhu_fe_buf b = { nr->lo, 512 };
	nr->lo += PAGE;
	post(&d, &b, 0, 1, 100, false);
	tu_log_clear();
	ck_assert(vhu_vq_begin(d.vq) & VHU_VQ_RUNNING);
	{
		struct vhu_req req;
		struct vhu_seg seg;
		uint32_t wr = 100;

		int rc;

		ck_assert_int_eq(vhu_vq_pop(d.vq, &req, 1, &seg, 1), 1);
		memset(seg.addr, pat(req.id), 100);
		/* the entry is written; the bit cannot be: the queue breaks */
		rc = vhu_vq_push(d.vq, &req, &wr, 1);
		ck_assert(rc == 0 || rc == -EIO);
	}
	vhu_vq_end(d.vq);
	ck_assert(vhu_vq_begin(d.vq) & VHU_VQ_BROKEN);
	vhu_vq_end(d.vq);
	ck_assert(tu_log_contains("too small for a write at gpa"));
	struct pollfd pf = { .fd = e.errfd[0], .events = POLLIN };
	ck_assert_int_eq(poll(&pf, 1, TMO), 1);
	check_log(&l, &x, "log outgrown"); /* ring pages at most, nothing past it */

	/* a log for the new table, the ring started again */
	dlog_make(&big, log_need(e.fe), 0);
	ck_assert_uint_gt(big.size, l.size);
	ck_assert_int_eq(vhu_fe_set_log_base(e.fe, big.fd, big.size, 0), 0);
	ck_assert_int_eq(vhu_fe_get_vring_base(e.fe, 0, &base), 0);
	restart(&e, 0, base);
	/* the request was used before the queue broke (into the old log) */
	ck_assert_uint_eq(reap(&d, &x, true, NULL, 0), 1);
	memset(&x, 0, sizeof(x));
	may_ring(&x, d.r);
	b = (struct vhu_fe_buf){ nr->lo, 3000 };
	nr->lo += PAGE;
	post(&d, &b, 0, 1, 3000, false);
	ck_assert_uint_eq(serve(&d, false), 1);
	ck_assert_uint_eq(reap(&d, &x, true, NULL, 0), 1);
	ck_assert(bit(x.must, PG(b.gpa)) && PG(b.gpa) >= PG(64 * MB));
	check_log(&big, &x, "the bigger log");
	aftermath_env(&e);
	env_down(&e);
	dlog_free(&l);
	dlog_free(&big);
}
END_TEST

/* Class 40: SET_LOG_BASE 20,000 times (the same memfd, LOG_ALL on):
 * every one answered 0, fds, mappings and RSS flat, the last log works.
 * With a SIGBUS guard of 8 slots (two regions, and two logs while one
 * replaces the other), no slot leaks either. */
START_TEST(log_base_repeated)
{
	bool guarded = _i & 1;
	unsigned n = slow() ? (tu_under_valgrind() ? 5000 : 2000) : 20000, warm = 100;
	struct env e;
	struct env_opts o = { 0 };
	struct expect x = { 0 };
	struct dlog l;
	struct qd d;
	int fds = 0, maps = 0;
	long rss = 0;

	if (guarded) {
		guard_install(8);
		o.guard = guard;
	}
	up(&e, &o);
	logging_on(&e, &l);
	qd_init(&d, &e, 0);
	may_ring(&x, d.r);
	for (unsigned i = 0; i < n; i++) {
		if (i == warm) {
			fds = tu_count_fds();
			maps = tu_count_maps("/memfd:" LOG_NAME);
			rss = tu_rss_pages();
		}
		FAST_EQ(vhu_fe_set_log_base(e.fe, l.fd, l.size, 0), 0);
	}
	ck_assert_int_eq(tu_count_fds(), fds);
	ck_assert_int_eq(tu_count_maps("/memfd:" LOG_NAME), maps);
	ck_assert_int_eq(maps, 2); /* ours and the device's */
	ck_assert_int_lt(tu_rss_pages() - rss, tu_rss_bound(256));
	one_request(&d, &x, PAGE);
	check_log(&l, &x, "after 20,000 SET_LOG_BASE");
	aftermath_env(&e);
	env_down(&e);
	dlog_free(&l);
	if (guarded)
		guard_remove();
}
END_TEST

/* Class 46: the front-end goes away in the middle of a migration (a log,
 * LOG_ALL on, no GET_VRING_BASE) while a data-plane thread moves traffic
 * on queue 1: the thread sees the queue stop and nothing else, the device
 * unmaps the log and serves a fresh front-end. */
START_TEST(disconnect_mid_migration)
{
	struct env e;
	struct env_opts o = { .packed = _i & 1, .qsize = 64 };
	struct vhu_fe_ring *r;
	struct worker *w;
	struct dlog l;
	uint64_t pool, end;
	unsigned posted = 0;

	up(&e, &o);
	logging_on(&e, &l);
	r = ring(&e, 1);
	pool = pages(&e, 64);
	w = worker_start(vhu_dev_vq(e.dev, 1));
	end = (uint64_t)tu_now_ms() + TMO;
	while (atomic_load(&w->served) < 500 && (uint64_t)tu_now_ms() < end) {
		while (vhu_fe_ring_get_used(r, NULL, NULL, NULL) == 1)
			;
		while (r->num_free) {
			struct vhu_fe_buf b = { pool + (posted++ % 64) * PAGE, PAGE };

			FAST(vhu_fe_ring_add(r, &b, 0, 1, NULL) >= 0);
		}
		vhu_fe_ring_publish(r);
		usleep(50);
	}
	ck_assert_uint_ge(atomic_load(&w->served), 500);
	ck_assert_int_eq(count_bits(l.bits, l.size) > 0, 1);
	ck_assert_int_eq(tu_count_maps("/memfd:" LOG_NAME), 2);
	env_disconnect(&e);
	usleep(10000); /* the thread keeps trying meanwhile */
	ck_assert_int_eq(worker_stop(w), 0);
	ck_assert_int_eq(tu_count_maps("/memfd:" LOG_NAME), 1); /* ours */
	aftermath_check(&(struct aftermath_target){ .dev = e.dev, .path = e.path,
						   .be = e.be, .packed = e.packed });
	env_down(&e);
	dlog_free(&l);
}
END_TEST

/* Class 41: LOG_ALL with no log holds the started rings (bursts do not
 * see them running), also after a refused SET_LOG_BASE; LOG_ALL off
 * releases them; the log releases them too, waking the data plane through
 * the kick eventfd, and the request posted meanwhile is served and
 * logged. */
START_TEST(log_all_without_log)
{
	struct env e;
	struct env_opts o = { .packed = _i & 1 };
	struct expect x = { 0 };
	struct dlog l;
	struct qd d;
	int kfd;

	up(&e, &o);
	qd_init(&d, &e, 0);
	may_ring(&x, d.r);
	tu_log_clear();
	ck_assert_int_eq(vhu_fe_set_log_all(e.fe, true), 0);
	ck_assert(tu_log_contains("rings are held"));
	uint64_t w = pages(&e, 2);
	struct vhu_fe_buf b = { w, 2 * PAGE };
	post(&d, &b, 0, 1, PAGE + 10, false);
	for (int q = 0; q < 2; q++) {
		struct vhu_vq *vq = vhu_dev_vq(e.dev, (uint16_t)q);

		ck_assert(!(vhu_vq_begin(vq) & (VHU_VQ_RUNNING | VHU_VQ_BROKEN)));
		vhu_vq_end(vq);
	}
	/* off: released; on: held again */
	ck_assert_int_eq(vhu_fe_set_log_all(e.fe, false), 0);
	ck_assert(vhu_vq_begin(d.vq) & VHU_VQ_RUNNING);
	vhu_vq_end(d.vq);
	ck_assert_int_eq(vhu_fe_set_log_all(e.fe, true), 0);
	ck_assert(!(vhu_vq_begin(d.vq) & VHU_VQ_RUNNING));
	vhu_vq_end(d.vq);
	/* a refused log changes nothing */
	dlog_make(&l, log_need(e.fe), 0);
	ck_assert_int_eq(vhu_fe_set_log_base(e.fe, l.fd, 0, 0), -EREMOTEIO);
	ck_assert(!(vhu_vq_begin(d.vq) & VHU_VQ_RUNNING));
	kfd = vhu_vq_kick_fd(d.vq);
	vhu_vq_end(d.vq);
	ck_assert_int_ge(kfd, 0);
	vhu_vq_kick_clear(d.vq);

	/* the log comes */
	ck_assert_int_eq(vhu_fe_set_log_base(e.fe, l.fd, l.size, 0), 0);
	struct pollfd pf = { .fd = kfd, .events = POLLIN };
	ck_assert_int_eq(poll(&pf, 1, TMO), 1);
	ck_assert_uint_eq(serve(&d, false), 1);
	ck_assert_uint_eq(reap(&d, &x, true, NULL, 0), 1);
	check_log(&l, &x, "held, then the log came");
	aftermath_env(&e);
	env_down(&e);
	dlog_free(&l);
}
END_TEST

/* Class 41: SET_VRING_ADDR with the log flag: log_guest_addr outside
 * guest memory (far, or just past the end) refused, inside accepted (and
 * never written: vhu logs by its own translation); the flag without
 * LOG_ALL refused; the ring keeps running through all of it. */
START_TEST(vring_addr_log_flag)
{
	struct env e;
	struct env_opts o = { .packed = _i & 1 };
	struct expect x = { 0 };
	struct dlog l;
	struct qd d;
	uint64_t spot;

	up(&e, &o);
	logging_on(&e, &l);
	qd_init(&d, &e, 0);
	may_ring(&x, d.r);
	spot = pages(&e, 1);
	tu_log_clear();
	ck_assert_int_eq(vhu_fe_queue_set_addr_log(e.fe, 0, true, 1ull << 40), -EREMOTEIO);
	ck_assert(tu_log_contains("outside guest memory"));
	ck_assert_int_eq(vhu_fe_queue_set_addr_log(e.fe, 0, true, 8 * MB), -EREMOTEIO);
	ck_assert_int_eq(vhu_fe_queue_set_addr_log(e.fe, 0, true, UINT64_MAX), -EREMOTEIO);
	ck_assert_int_eq(vhu_fe_queue_set_addr_log(e.fe, 0, true, d.r->used_gpa), 0);
	ck_assert_int_eq(vhu_fe_queue_set_addr_log(e.fe, 0, true, spot), 0);
	ck_assert_int_eq(vhu_fe_queue_set_addr_log(e.fe, 1, true, 8 * MB - 1), 0);
	one_request(&d, &x, 5000);
	ck_assert(!bit(x.must, PG(spot)));
	check_log(&l, &x, "log flag");
	/* the flag needs LOG_ALL */
	ck_assert_int_eq(vhu_fe_set_log_all(e.fe, false), 0);
	tu_log_clear();
	ck_assert_int_eq(vhu_fe_queue_set_addr_log(e.fe, 0, true, spot), -EREMOTEIO);
	ck_assert(tu_log_contains("without LOG_ALL"));
	ck_assert_int_eq(vhu_fe_queue_set_addr_log(e.fe, 0, false, 0), 0);
	round_trip(&e, 0, false, 9);
	aftermath_env(&e);
	env_down(&e);
	dlog_free(&l);
}
END_TEST

/* Class 42: LOG_ALL switched on and off 1,000 times while a data-plane
 * thread serves queue 1 and the driver keeps it fed; with a log (logging
 * starts and stops) and without (the rings are held and released each
 * time).  It goes on until requests have come back meanwhile (traffic
 * flows while LOG_ALL flips), and all of them by the end; no error; with a
 * log, nothing outside the buffers and the ring marked. */
START_TEST(log_all_toggled_under_traffic)
{
	bool with_log = _i & 2;
	unsigned n = slow() ? 100 : 1000, reaped = 0, posted = 0, t;
	uint64_t end;
	struct env e;
	struct env_opts o = { .packed = _i & 1, .qsize = 64 };
	struct expect x = { 0 };
	struct vhu_fe_ring *r;
	struct worker *w;
	struct dlog l = { .fd = -1 };
	uint64_t pool;

	up(&e, &o);
	if (with_log)
		logging_on(&e, &l);
	r = ring(&e, 1);
	may_ring(&x, r);
	pool = pages(&e, 128);
	mark(x.must, pool, 128 * PAGE);
	w = worker_start(vhu_dev_vq(e.dev, 1));
	end = (uint64_t)tu_now_ms() + 10 * TMO;
	for (t = 0; t < n || ((reaped < 256 || (t & 1)) && (uint64_t)tu_now_ms() < end); t++) {
		while (vhu_fe_ring_get_used(r, NULL, NULL, NULL) == 1)
			reaped++;
		while (r->num_free) {
			struct vhu_fe_buf b = { pool + (posted++ % 128) * PAGE, PAGE };

			FAST(vhu_fe_ring_add(r, &b, 0, 1, NULL) >= 0);
		}
		vhu_fe_ring_publish(r);
		/* with a log it ends on, without it off */
		FAST_EQ(vhu_fe_set_log_all(e.fe, (t & 1) == with_log), 0);
	}
	ck_assert_msg(reaped >= 256, "%u requests used over %u LOG_ALL switches",
		      reaped, t);
	for (end = (uint64_t)tu_now_ms() + TMO; reaped < posted && (uint64_t)tu_now_ms() < end;) {
		if (vhu_fe_ring_get_used(r, NULL, NULL, NULL) == 1)
			reaped++;
		else
			usleep(100);
	}
	ck_assert_int_eq(worker_stop(w), 0);
	ck_assert_uint_eq(reaped, posted);
	if (with_log) {
		ck_assert_uint_gt(count_bits(l.bits, l.size), 0);
		/* must holds the pool: bits only there or in the ring */
		for (uint64_t p = 0; p < l.size * 8; p++)
			if (bit(l.bits, p) && !bit(x.must, p) && !bit(x.may, p))
				ck_abort_msg("page %llu marked", (unsigned long long)p);
	}
	aftermath_env(&e);
	env_down(&e);
	dlog_free(&l);
}
END_TEST

/* ---- the log file shrunk under its mapping (class 39) ---- */

/*
 * The front-end truncates the log memfd (unsealed) after the device
 * mapped it; the device has the SIGBUS guard.  The next logged write
 * faults, the guard repairs it, the process lives: the device's queues
 * break at their next burst (log line, error eventfd); another device
 * (the aftermath's bystander) never notices.  A new log and a restart of
 * the ring bring the queue back with logging.
 */
START_TEST(log_shrunk_under_its_mapping)
{
	struct env e;
	struct env_opts o = { .packed = _i & 1 };
	struct expect x = { 0 };
	struct dlog l, l2;
	struct qd d;
	uint32_t base;

	guard_install(0);
	o.guard = guard;
	up(&e, &o);
	logging_on(&e, &l);
	qd_init(&d, &e, 0);
	may_ring(&x, d.r);
	one_request(&d, &x, 3000);
	check_log(&l, &x, "before the truncation");

	/* ours goes first: touching it after the truncation would fault here */
	munmap(l.map, l.map_len);
	l.map = NULL;
	ck_assert_int_eq(ftruncate(l.fd, 0), 0);
	tu_log_clear();
	uint64_t w = pages(&e, 1);
	struct vhu_fe_buf b = { w, 512 };
	post(&d, &b, 0, 1, 512, false);
	ck_assert_uint_eq(serve(&d, false), 1);
	ck_assert_uint_eq(vhu_guard_faults(guard), 1);
	for (int q = 0; q < 2; q++) {
		struct vhu_vq *vq = vhu_dev_vq(e.dev, (uint16_t)q);
		struct pollfd pf = { .fd = e.errfd[q], .events = POLLIN };

		ck_assert_msg(vhu_vq_begin(vq) & VHU_VQ_BROKEN, "queue %d not broken", q);
		vhu_vq_end(vq);
		ck_assert_int_eq(poll(&pf, 1, TMO), 1);
	}
	ck_assert(tu_log_contains("dirty log vanished"));

	/* a new log, queue 0 started again: logged again */
	dlog_make(&l2, log_need(e.fe), 0);
	ck_assert_int_eq(vhu_fe_set_log_base(e.fe, l2.fd, l2.size, 0), 0);
	ck_assert_int_eq(vhu_fe_get_vring_base(e.fe, 0, &base), 0);
	restart(&e, 0, base);
	ck_assert_uint_eq(reap(&d, &x, true, NULL, 0), 1);
	memset(&x, 0, sizeof(x));
	may_ring(&x, d.r);
	one_request(&d, &x, 2000);
	check_log(&l2, &x, "a new log after the truncation");
	ck_assert_uint_eq(vhu_guard_faults(guard), 1);

	aftermath_env(&e);
	env_down(&e);
	dlog_free(&l);
	dlog_free(&l2);
	guard_remove();
}
END_TEST

/* Class 43: SET_VRING_BASE with garbage in the bits a ring type does not
 * use, on a stopped ring: split, above 16 bits; packed, a used position
 * ahead of the avail one, or more than a lap behind it.  Refused; the
 * right base restarts the ring where it stopped. */
START_TEST(vring_base_garbage)
{
	bool packed = _i & 1;
	struct env e;
	struct env_opts o = { .packed = packed, .qsize = 64 };
	uint32_t base;

	up(&e, &o);
	round_trip(&e, 0, false, 1);
	round_trip(&e, 0, false, 2);
	ck_assert_int_eq(vhu_fe_get_vring_base(e.fe, 0, &base), 0);
	tu_log_clear();
	if (!packed) {
		ck_assert_uint_eq(base, 2);
		ck_assert_int_eq(vhu_fe_set_vring_base(e.fe, 0, 0x10000u | base), -EREMOTEIO);
		ck_assert_int_eq(vhu_fe_set_vring_base(e.fe, 0, 0xffffffffu), -EREMOTEIO);
		ck_assert(tu_log_contains("not a 16-bit index"));
	} else {
		uint32_t wrap = 1u << VHU_PACKED_WRAP_BIT, at = base & 0x7fffu;

		/* two chains of three descriptors, all used: both halves equal */
		ck_assert_uint_eq(at, 6);
		ck_assert_uint_eq(base, (at | wrap) | (at | wrap) << 16);
		/* used 4 ahead of avail, same lap */
		ck_assert_int_eq(vhu_fe_set_vring_base(e.fe, 0, (at | wrap) |
						       ((at + 4) | wrap) << 16), -EREMOTEIO);
		/* avail a lap ahead and past used: more than a ring in flight */
		ck_assert_int_eq(vhu_fe_set_vring_base(e.fe, 0, (at + 4) | (at | wrap) << 16),
				 -EREMOTEIO);
		/* beyond the ring */
		ck_assert_int_eq(vhu_fe_set_vring_base(e.fe, 0, (64u | wrap) | (at | wrap) << 16),
				 -EREMOTEIO);
		ck_assert(tu_log_contains("packed base"));
	}
	restart(&e, 0, base);
	round_trip(&e, 0, false, 3);
	aftermath_env(&e);
	env_down(&e);
}
END_TEST

/*
 * RESET_DEVICE resets "all internal device state to the initial state"
 * (vhost-user spec), as a new connection does: the log of before is gone.
 * Started again with LOG_ALL and no new SET_LOG_BASE, the rings must be
 * held as on a fresh session (a log arriving later releases them), and
 * nothing may be written into the log of before the reset.
 */
START_TEST(log_cleared_by_reset_device)
{
	struct env e;
	struct env_opts o = { .packed = _i & 1 };
	struct expect x = { 0 };
	struct dlog l, l2;
	struct qd d;
	unsigned stale = 0;
	bool held;

	up(&e, &o);
	logging_on(&e, &l);
	ck_assert_int_eq(vhu_fe_reset_device(e.fe), 0);
	ck_assert_int_eq(vhu_fe_start(e.fe, &e.h), 0);
	vhu_fe_set_need_reply(e.fe, true);
	fe_sync(&e);
	qd_init(&d, &e, 0);
	may_ring(&x, d.r);
	ck_assert(vhu_vq_begin(d.vq) & VHU_VQ_RUNNING);
	vhu_vq_end(d.vq);
	memset(l.bits, 0, l.size);
	ck_assert_int_eq(vhu_fe_set_log_all(e.fe, true), 0);
	uint64_t w = pages(&e, 1);
	struct vhu_fe_buf b = { w, 512 };
	post(&d, &b, 0, 1, 512, false);
	held = !(vhu_vq_begin(d.vq) & VHU_VQ_RUNNING);
	vhu_vq_end(d.vq);
	if (held) {
		check_clear(&l, "the log of before the reset");
		dlog_make(&l2, log_need(e.fe), 0);
		ck_assert_int_eq(vhu_fe_set_log_base(e.fe, l2.fd, l2.size, 0), 0);
		ck_assert_uint_eq(serve(&d, false), 1);
		ck_assert_uint_eq(reap(&d, &x, true, NULL, 0), 1);
		check_log(&l2, &x, "the log after the reset");
		dlog_free(&l2);
	} else {
		/* where the bits go instead (the failure is reported after the
		 * clean-up, so that valgrind sees no leak) */
		ck_assert_uint_eq(serve(&d, false), 1);
		ck_assert_uint_eq(reap(&d, &x, true, NULL, 0), 1);
		stale = count_bits(l.bits, l.size);
	}
	if (held)
		check_clear(&l, "the log of before the reset");
	aftermath_env(&e);
	env_down(&e);
	dlog_free(&l);
	ck_assert_msg(held, "after RESET_DEVICE, LOG_ALL without a new SET_LOG_BASE "
		      "runs the rings, logging into the log of before the reset "
		      "(%u bits set there)", stale);
}
END_TEST

/*
 * A packed ring started during a migration (the log in force, LOG_ALL
 * on) whose descriptor at the device's position is a push cut short: id,
 * length and vhu's tag written, not the flags (what a back-end crash
 * between them leaves, or a guest forges; vq_recover.c step 3).  Starting
 * the ring finishes the push: vhu writes the flags into guest memory, and
 * the driver finds the buffer used.  That write is vhu's like any other:
 * its page must be marked.
 */
START_TEST(recovered_push_logged)
{
	struct env e;
	struct env_opts o = { .packed = true };
	struct expect x = { 0 };
	struct vhu_fe_packed_desc *desc;
	const char *bad;
	char why[256];
	struct dlog l;
	struct qd d;
	uint32_t base;
	uint16_t slot;
	int id;

	up(&e, &o);
	logging_on(&e, &l);
	qd_init(&d, &e, 0);
	one_request(&d, &x, 1000);
	ck_assert_int_eq(vhu_fe_get_vring_base(e.fe, 0, &base), 0);
	/* a read-only buffer at the device's position, as if the device had
	 * written all of its used descriptor but the flags */
	slot = (uint16_t)(base & 0x7fff);
	ck_assert_uint_eq(slot, d.r->next_avail);
	struct vhu_fe_buf b = { pages(&e, 1), 64 };
	id = post(&d, &b, 1, 0, 0, false);
	desc = (struct vhu_fe_packed_desc *)d.r->desc + slot;
	ck_assert_uint_eq(vhu_fe_ld16(&desc->id), id);
	vhu_fe_st32(&desc->len, 0);
	vhu_fe_st64(&desc->addr, VHU_USED_TAG | 1);
	memset(l.bits, 0, l.size);
	memset(&x, 0, sizeof(x));
	may_ring(&x, d.r);
	tu_log_clear();
	restart(&e, 0, base);
	fe_sync(&e);
	ck_assert(tu_log_contains("a half-written push finished"));
	ck_assert_uint_eq(reap(&d, &x, true, NULL, 0), 1);
	ck_assert(bit(x.must, PG(d.r->desc_gpa + 16u * slot)));
	/* reported after the clean-up, so that valgrind sees no leak */
	bad = log_problem(&l, &x, "a push finished at ring start", why, sizeof(why));
	aftermath_env(&e);
	env_down(&e);
	dlog_free(&l);
	ck_assert_msg(!bad, "%s", why);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dirty_log");
	TCase *b = tcase_create("bits");
	TCase *r = tcase_create("replace");
	TCase *h = tcase_create("hostile");

	tcase_set_timeout(b, 120);
	tcase_set_timeout(r, 240);
	tcase_set_timeout(h, 240);
	tcase_add_loop_test(b, partial_write, 0, 2);
	tcase_add_loop_test(b, readable_only, 0, 2);
	tcase_add_loop_test(b, logging_off, 0, 2);
	tcase_add_loop_test(b, set_kicks_logged, 0, 4);
	tcase_add_test(b, log_at_offset);
	tcase_add_loop_test(b, indirect, 0, 2);
	tcase_add_loop_test(b, straddle, 0, 2);
	tcase_add_loop_test(b, ring_positions, 0, 2);
	tcase_add_test(b, in_order_batch);
	tcase_add_loop_test(b, log_write_api, 0, 2);
	tcase_add_loop_test(b, net_mergeable_rx, 0, 2);
	tcase_add_checked_fixture(r, NULL, worker_teardown);
	tcase_add_loop_test(r, log_replaced_under_traffic, 0, 2);
	tcase_add_loop_test(r, final_round_under_traffic, 0, 2);
	tcase_add_loop_test(r, queues_share_log_bytes, 0, 2);
	tcase_add_checked_fixture(h, NULL, worker_teardown);
	tcase_add_checked_fixture(h, aftermath_setup, aftermath_teardown);
	tcase_add_loop_test(h, log_base_refused, 0, LB_COUNT);
	tcase_add_loop_test(h, log_outgrown_by_memory, 0, 2);
	tcase_add_loop_test(h, log_base_repeated, 0, 2);
	tcase_add_loop_test(h, disconnect_mid_migration, 0, 2);
	tcase_add_loop_test(h, log_all_without_log, 0, 2);
	tcase_add_loop_test(h, vring_addr_log_flag, 0, 2);
	tcase_add_loop_test(h, log_all_toggled_under_traffic, 0, 4);
	tcase_add_loop_test(h, log_shrunk_under_its_mapping, 0, 2);
	tcase_add_loop_test(h, vring_base_garbage, 0, 2);
	tcase_add_loop_test(h, log_cleared_by_reset_device, 0, 2);
	tcase_add_test(h, recovered_push_logged);
	suite_add_tcase(s, b);
	suite_add_tcase(s, r);
	suite_add_tcase(s, h);
	return tu_run_suite(s);
}
