/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Virtqueues end to end: a vhu device (control plane served by a helper
 * thread) and the in-tree front-end, whose driver-side rings play the
 * guest.  The test thread is the device's data plane.  Split and packed,
 * indirect, event index on and off, kick suppression, index wrap-around,
 * ring sizes 1..32768, buffers across regions.
 *
 * The "hostile" test case holds the catalogue tests of shared/
 * HOSTILE-INPUTS.md for rings (classes 25-31, 33, 34) and for memory
 * tables changing under traffic (36).  Each asserts the documented outcome
 * (a broken queue: -EIO, error eventfd, log line, GET_STATUS; or a legal
 * oddity accepted), then the aftermath (util/aftermath.h): the other
 * queue and a bystander device still move data, a fresh front-end on the
 * same device completes a session with data, fds, mappings and RSS flat.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <vhu/vhu.h>

#include "aftermath.h"
#include "fe.h"
#include "protocol/proto.h"
#include "testutil.h"
#include "vqenv.h"


/* ---- behaviour ---------------------------------------------------- */

START_TEST(round_trips)
{
	struct env e;
	struct env_opts o = { .packed = _i & 1 };
	struct vhu_vq_stats st;

	env_up(&e, &o);
	round_trip(&e, 0, false, 1);
	round_trip(&e, 1, false, 2);
	round_trip(&e, 0, true, 3);   /* indirect */
	round_trip(&e, 1, true, 4);
	vhu_vq_stats(vhu_dev_vq(e.dev, 0), &st);
	ck_assert_uint_eq(st.popped, 2);
	ck_assert_uint_eq(st.pushed, 2);
	ck_assert_uint_eq(st.calls, 2);
	ck_assert_uint_ge(st.kicks, 2);
	struct vhu_vq *vq0 = vhu_dev_vq(e.dev, 0);
	vhu_vq_begin(vq0); /* the queue's properties are read inside a burst */
	ck_assert(vhu_vq_packed(vq0) == o.packed);
	vhu_vq_end(vq0);
	env_down(&e);
}
END_TEST

/* A buffer that crosses from one memory region into the next comes out as
 * two segments (never rejected); so does an indirect table that does
 * (class 29: vhu copies the table). */
START_TEST(straddling_buffers)
{
	struct env e;
	struct env_opts o = { .packed = _i & 1, .regions = 3 };
	struct vhu_fe_buf b[2];
	struct vhu_req req;
	struct vhu_seg segs[8];
	uint64_t gpa, tgpa;

	env_up(&e, &o);
	ck_assert_int_eq(vhu_fe_mem_alloc_straddle(e.fe, 8192, &gpa), 0);
	fill(&e, gpa, 4096, 9); /* halves written through the fe's mapping */
	fill(&e, gpa + 4096, 4096, (uint8_t)(9 + 4096 * 7));
	b[0] = (struct vhu_fe_buf){ gpa, 8192 };
	b[1] = (struct vhu_fe_buf){ galloc(&e, 64), 64 };
	ck_assert_int_ge(vhu_fe_ring_add(ring(&e, 0), b, 1, 1, NULL), 0);
	vhu_fe_ring_publish(ring(&e, 0));
	pop_one(&e, 0, &req, segs, 8);
	ck_assert_uint_eq(req.nr_out, 2);
	ck_assert_uint_eq(req.nr_in, 1);
	ck_assert_uint_eq(req.segs[0].len + req.segs[1].len, 8192);
	uint32_t l0 = req.segs[0].len;
	ck_assert_uint_eq(((uint8_t *)req.segs[0].addr)[0], 9);
	ck_assert_uint_eq(((uint8_t *)req.segs[1].addr)[0], (uint8_t)(9 + l0 * 7));
	push_one(&e, 0, &req, 0);

	/* the indirect table itself across the next boundary */
	ck_assert_int_eq(vhu_fe_mem_alloc_straddle(e.fe, 2 * 16, &tgpa), 0);
	uint8_t table[32];
	b[0] = (struct vhu_fe_buf){ galloc(&e, 10), 10 };
	fill(&e, b[0].gpa, 10, 42);
	ck_assert_int_ge(vhu_fe_ring_add_indirect(ring(&e, 0), b, 1, 1, table, tgpa,
						  NULL), 0);
	/* the fe wrote the table into our local buffer: copy it to the guest */
	ck_assert_int_eq(vhu_fe_mem_write(e.fe, tgpa, table, sizeof(table)), 0);
	vhu_fe_ring_publish(ring(&e, 0));
	pop_one(&e, 0, &req, segs, 8);
	ck_assert_uint_eq(req.nr_out, 1);
	ck_assert_uint_eq(req.nr_in, 1);
	ck_assert_uint_eq(((uint8_t *)req.segs[0].addr)[9], (uint8_t)(42 + 63));
	push_one(&e, 0, &req, 10);
	aftermath_env(&e);
	env_down(&e);
}
END_TEST

/* Notification suppression in both directions, event index on and off. */
START_TEST(notification_suppression)
{
	struct env e;
	bool packed = _i & 1, event_idx = _i & 2;
	struct env_opts o = { .packed = packed,
			      .features_off = event_idx ? 0 : VHU_BIT(VHU_F_EVENT_IDX) };
	struct vhu_vq *vq;
	struct vhu_fe_ring *r;
	struct vhu_fe_buf b = { 0, 64 };
	struct vhu_req req;
	struct vhu_seg segs[4];
	uint64_t calls;
	uint16_t id;
	uint32_t len;

	env_up(&e, &o);
	vq = vhu_dev_vq(e.dev, 0);
	r = ring(&e, 0);
	b.gpa = galloc(&e, 64);

	/* device turns kicks off: the driver is told not to kick */
	ck_assert(vhu_vq_begin(vq) & VHU_VQ_RUNNING);
	ck_assert_int_eq(vhu_vq_set_kicks(vq, false), 0);
	vhu_vq_end(vq);
	ck_assert_int_ge(vhu_fe_ring_add(r, &b, 0, 1, NULL), 0);
	vhu_fe_ring_publish(r);
	if (!event_idx) /* with event idx the driver kicks once more at most */
		ck_assert(!vhu_fe_ring_needs_kick(r));
	else
		(void)vhu_fe_ring_needs_kick(r);
	/* turning kicks on reports the buffer that came meanwhile */
	ck_assert(vhu_vq_begin(vq) & VHU_VQ_RUNNING);
	ck_assert_int_eq(vhu_vq_set_kicks(vq, true), 1);
	ck_assert(vhu_vq_avail(vq));
	ck_assert_int_eq(vhu_vq_pop(vq, &req, 1, segs, 4), 1);
	ck_assert_int_eq(vhu_vq_set_kicks(vq, true), 0); /* nothing left */
	ck_assert(!vhu_vq_avail(vq));
	vhu_vq_end(vq);
	/* now a new buffer must be kicked */
	ck_assert_int_ge(vhu_fe_ring_add(r, &b, 0, 1, NULL), 0);
	vhu_fe_ring_publish(r);
	ck_assert(vhu_fe_ring_needs_kick(r));

	if (!event_idx) {
		/* driver turns interrupts off (NO_INTERRUPT / DISABLE): no call */
		vhu_fe_ring_disable_cb(r);
		ck_assert(vhu_vq_begin(vq) & VHU_VQ_RUNNING);
		ck_assert_int_eq(vhu_vq_push(vq, &req, NULL, 1), 0);
		ck_assert_int_eq(vhu_vq_notify(vq), 0);
		ck_assert_int_eq(vhu_vq_notify(vq), 0); /* nothing new */
		vhu_vq_end(vq);
		ck_assert_int_eq(vhu_fe_queue_wait_call(e.fe, 0, 50, &calls), -ETIMEDOUT);
		ck_assert_int_eq(vhu_fe_ring_get_used(r, &id, &len, NULL), 1);
		/* on again: the next used buffer interrupts */
		vhu_fe_ring_enable_cb(r);
		ck_assert(vhu_vq_begin(vq) & VHU_VQ_RUNNING);
		ck_assert_int_eq(vhu_vq_pop(vq, &req, 1, segs, 4), 1);
		ck_assert_int_eq(vhu_vq_push(vq, &req, NULL, 1), 0);
		ck_assert_int_eq(vhu_vq_notify(vq), 1);
		vhu_vq_end(vq);
		ck_assert_int_eq(vhu_fe_queue_wait_call(e.fe, 0, TMO, &calls), 0);
		ck_assert_uint_eq(calls, 1);
	} else {
		/* the driver asks for an interrupt only when the used index
		 * passes the third entry from now */
		struct vhu_req more[3];
		struct vhu_seg ms[12];

		ck_assert(vhu_vq_begin(vq) & VHU_VQ_RUNNING);
		ck_assert_int_eq(vhu_vq_push(vq, &req, NULL, 1), 0);
		ck_assert_int_eq(vhu_vq_notify(vq), 1); /* first one always */
		vhu_vq_end(vq);
		ck_assert_int_eq(vhu_fe_ring_get_used(r, &id, &len, NULL), 1);
		ck_assert_int_eq(vhu_fe_queue_wait_call(e.fe, 0, TMO, &calls), 0);
		for (int i = 0; i < 3; i++)
			ck_assert_int_ge(vhu_fe_ring_add(r, &b, 0, 1, NULL), 0);
		vhu_fe_ring_publish(r);
		if (packed) {
			uint16_t *ev = r->avail; /* driver event suppression */
			uint16_t slot = (uint16_t)(r->last_used + 2);
			bool w = r->used_wrap;

			if (slot >= r->num) {
				slot = (uint16_t)(slot - r->num);
				w = !w;
			}
			vhu_fe_st16(&ev[0], (uint16_t)(slot | (w ? 0x8000 : 0)));
			vhu_fe_st16(&ev[1], VHU_FE_EVENT_F_DESC);
		} else {
			uint16_t *avail = r->avail;

			vhu_fe_st16(&avail[2 + r->num], (uint16_t)(r->last_used + 2));
		}
		ck_assert(vhu_vq_begin(vq) & VHU_VQ_RUNNING);
		ck_assert_int_eq(vhu_vq_pop(vq, more, 3, ms, 12), 3);
		for (int i = 0; i < 3; i++) {
			ck_assert_int_eq(vhu_vq_push(vq, &more[i], NULL, 1), 0);
			ck_assert_int_eq(vhu_vq_notify(vq), i == 2);
		}
		vhu_vq_end(vq);
		ck_assert_int_eq(vhu_fe_queue_wait_call(e.fe, 0, TMO, &calls), 0);
		ck_assert_uint_eq(calls, 1);
	}
	env_down(&e);
}
END_TEST

/* Without IN_ORDER the device may complete requests in any order. */
START_TEST(out_of_order_completion)
{
	struct env e;
	struct env_opts o = { .packed = _i & 1 };
	struct vhu_vq *vq;
	struct vhu_fe_ring *r;
	struct vhu_fe_buf b;
	struct vhu_req req[3];
	struct vhu_seg segs[8];
	static const int order[3] = { 2, 0, 1 };

	env_up(&e, &o);
	vq = vhu_dev_vq(e.dev, 0);
	r = ring(&e, 0);
	vhu_vq_begin(vq);
	ck_assert(!vhu_vq_in_order(vq));
	vhu_vq_end(vq);
	b = (struct vhu_fe_buf){ galloc(&e, 32), 32 };
	for (uintptr_t i = 0; i < 3; i++)
		ck_assert_int_ge(vhu_fe_ring_add(r, &b, 0, 1, (void *)(i + 1)), 0);
	vhu_fe_ring_publish(r);
	vhu_vq_begin(vq);
	ck_assert_int_eq(vhu_vq_pop(vq, req, 3, segs, 8), 3);
	for (int i = 0; i < 3; i++) {
		uint32_t w = (uint32_t)(10 + order[i]);

		ck_assert_int_eq(vhu_vq_push(vq, &req[order[i]], &w, 1), 0);
	}
	vhu_vq_notify(vq);
	vhu_vq_end(vq);
	for (int i = 0; i < 3; i++) {
		uint32_t len;
		void *tok;

		ck_assert_int_eq(vhu_fe_ring_get_used(r, NULL, &len, &tok), 1);
		ck_assert_ptr_eq(tok, (void *)(uintptr_t)(order[i] + 1));
		ck_assert_uint_eq(len, 10u + (unsigned)order[i]);
	}
	env_down(&e);
}
END_TEST

/* In-band notifications: VRING_KICK reaches the application as a queue
 * event, and with no call fd a used buffer is signalled with
 * BACKEND_VRING_CALL on the back-end channel. */
START_TEST(inband_notifications)
{
	struct env e;
	struct env_opts o = { .packed = _i & 1, .inband = true };
	struct vhu_vq *vq;
	struct vhu_fe_breq breq;
	struct vhu_req req;
	struct vhu_seg segs[4];
	struct vhu_fe_buf b;

	env_up(&e, &o);
	vq = vhu_dev_vq(e.dev, 0);
	ck_assert_int_eq(vhu_fe_set_vring_call(e.fe, 0, -1), 0);
	ck_assert_int_eq(vhu_fe_queue_set_inband(e.fe, 0, true), 0);
	b = (struct vhu_fe_buf){ galloc(&e, 32), 32 };
	ck_assert_int_ge(vhu_fe_ring_add(ring(&e, 0), &b, 0, 1, NULL), 0);
	vhu_fe_ring_publish(ring(&e, 0));
	ck_assert_int_eq(vhu_fe_queue_kick(e.fe, 0), 0);
	fe_sync(&e);
	ck_assert_int_eq(atomic_load(&e.kicked[0]), 1);
	vhu_vq_begin(vq);
	ck_assert_int_eq(vhu_vq_pop(vq, &req, 1, segs, 4), 1);
	ck_assert_int_eq(vhu_vq_push(vq, &req, NULL, 1), 0);
	ck_assert_int_eq(vhu_vq_notify(vq), 1);
	vhu_vq_end(vq);
	ck_assert_int_eq(vhu_fe_backend_recv(e.fe, &breq, TMO), 0);
	ck_assert_uint_eq(breq.hdr.request, VHU_BREQ_VRING_CALL);
	ck_assert_uint_eq(breq.hdr.size, sizeof(struct vhu_vring_state));
	ck_assert_uint_eq(((struct vhu_vring_state *)breq.payload)->index, 0);
	vhu_fe_breq_close_fds(&breq);
	env_down(&e);
}
END_TEST

/* Tiny rings, many requests: 16-bit indexes and packed wrap counters wrap
 * many times; batches of several requests per burst. */
START_TEST(wrap_around)
{
	struct env e;
	bool packed = _i & 1;
	struct env_opts o = { .packed = packed, .qsize = packed ? 3 : 4 };
	struct vhu_vq *vq;
	struct vhu_fe_ring *r;
	struct vhu_fe_buf b[2];
	struct vhu_req req[4];
	struct vhu_seg segs[16];
	uint32_t written[4];
	unsigned done = 0;

	env_up(&e, &o);
	vq = vhu_dev_vq(e.dev, 0);
	r = ring(&e, 0);
	b[0] = (struct vhu_fe_buf){ galloc(&e, 8), 8 };
	b[1] = (struct vhu_fe_buf){ galloc(&e, 8), 8 };
	vhu_fe_ring_disable_cb(r);
	while (done < 70000) {
		unsigned added = 0, batch = 1 + done % 3;
		int n;

		while (added < batch && vhu_fe_ring_add(r, b, 1, 1,
							(void *)(uintptr_t)(done + added + 1)) >= 0)
			added++;
		vhu_fe_ring_publish(r);
		ck_assert(vhu_vq_begin(vq) & VHU_VQ_RUNNING);
		n = vhu_vq_pop(vq, req, 4, segs, 16);
		ck_assert_int_eq(n, (int)added);
		for (int i = 0; i < n; i++)
			written[i] = (uint32_t)((done + (unsigned)i) % 9);
		ck_assert_int_eq(vhu_vq_push(vq, req, written, (unsigned)n), 0);
		vhu_vq_end(vq);
		for (int i = 0; i < n; i++) {
			uint16_t id;
			uint32_t len;
			void *tok;

			ck_assert_int_eq(vhu_fe_ring_get_used(r, &id, &len, &tok), 1);
			ck_assert_ptr_eq(tok, (void *)(uintptr_t)(done + 1));
			ck_assert_uint_eq(len, done % 9 > 8 ? 8 : done % 9);
			done++;
		}
	}
	/* GET_VRING_BASE reports where the device stopped */
	uint32_t base = 0;
	ck_assert_int_eq(vhu_fe_get_vring_base(e.fe, 0, &base), 0);
	if (!packed)
		ck_assert_uint_eq(base, done & 0xffff);
	else
		ck_assert_uint_eq(base, vhu_fe_ring_base(r));
	env_down(&e);
}
END_TEST

/* Every ring size the layout allows works to its full capacity. */
START_TEST(ring_sizes)
{
	static const uint16_t split_sizes[] = { 1, 2, 64, 32768 };
	static const uint16_t packed_sizes[] = { 1, 3, 255, 32768 };
	bool packed = _i & 1;
	const uint16_t *sizes = packed ? packed_sizes : split_sizes;

	for (int k = 0; k < 4; k++) {
		struct env e;
		struct env_opts o = { .packed = packed, .qsize = sizes[k] };
		struct vhu_vq *vq;
		struct vhu_fe_ring *r;
		struct vhu_fe_buf b;
		struct vhu_req req[64];
		struct vhu_seg segs[64];
		unsigned got = 0;

		env_up(&e, &o);
		vq = vhu_dev_vq(e.dev, 0);
		r = ring(&e, 0);
		vhu_vq_begin(vq);
		ck_assert_uint_eq(vhu_vq_size(vq), sizes[k]);
		vhu_vq_end(vq);
		b = (struct vhu_fe_buf){ galloc(&e, 16), 16 };
		for (unsigned i = 0; i < sizes[k]; i++)
			ck_assert_int_ge(vhu_fe_ring_add(r, &b, 0, 1, NULL), 0);
		ck_assert_int_eq(vhu_fe_ring_add(r, &b, 0, 1, NULL), -ENOSPC);
		vhu_fe_ring_publish(r);
		ck_assert(vhu_vq_begin(vq) & VHU_VQ_RUNNING);
		while (got < sizes[k]) {
			int n = vhu_vq_pop(vq, req, 64, segs, 64);

			ck_assert_int_gt(n, 0);
			ck_assert_int_eq(vhu_vq_push(vq, req, NULL, (unsigned)n), 0);
			got += (unsigned)n;
		}
		ck_assert_int_eq(vhu_vq_pop(vq, req, 64, segs, 64), 0);
		vhu_vq_end(vq);
		for (unsigned i = 0; i < got; i++)
			ck_assert_int_eq(vhu_fe_ring_get_used(r, NULL, NULL, NULL), 1);
		env_down(&e);
	}
}
END_TEST

/* Too few segments for the first request: -ENOBUFS and nothing taken. */
START_TEST(segment_capacity)
{
	struct env e;
	struct env_opts o = { .packed = _i & 1 };
	struct vhu_vq *vq;
	struct vhu_fe_buf b[4];
	struct vhu_req req[2];
	struct vhu_seg segs[6];

	env_up(&e, &o);
	vq = vhu_dev_vq(e.dev, 0);
	for (int i = 0; i < 4; i++)
		b[i] = (struct vhu_fe_buf){ galloc(&e, 8), 8 };
	ck_assert_int_ge(vhu_fe_ring_add(ring(&e, 0), b, 2, 2, NULL), 0);
	ck_assert_int_ge(vhu_fe_ring_add(ring(&e, 0), b, 2, 2, NULL), 0);
	vhu_fe_ring_publish(ring(&e, 0));
	vhu_vq_begin(vq);
	ck_assert_int_eq(vhu_vq_pop(vq, req, 2, segs, 3), -ENOBUFS);
	ck_assert_int_eq(vhu_vq_pop(vq, req, 2, segs, 6), 1); /* the 2nd does not fit */
	ck_assert_int_eq(vhu_vq_pop(vq, req + 1, 1, segs + 4, 2), -ENOBUFS);
	ck_assert_int_eq(vhu_vq_pop(vq, req + 1, 1, segs, 4), 1);
	vhu_vq_end(vq);
	env_down(&e);
}
END_TEST

/*
 * Stopping a ring (GET_VRING_BASE) and disabling it while a data-plane
 * thread is in the middle of bursts on another core: the control thread
 * waits for the burst; afterwards the data plane sees a stopped ring, and
 * the base it reports counts exactly the requests taken.
 */
struct spinner {
	struct vhu_vq *vq;
	atomic_bool stop;
	atomic_ulong popped;
};

static void *spin_dataplane(void *arg)
{
	struct spinner *s = arg;
	struct vhu_req req[8];
	struct vhu_seg segs[32];

	/* Under valgrind, which runs one thread at a time, a shorter burst
	 * and a yield: the control thread must still get its turn. */
	int burst = tu_under_valgrind() ? 200 : 20000;

	while (!atomic_load(&s->stop)) {
		unsigned st = vhu_vq_begin(s->vq);

		if (st & VHU_VQ_RUNNING) {
			int n = vhu_vq_pop(s->vq, req, 8, segs, 32);

			if (n > 0) {
				for (volatile int spin = 0; spin < burst; spin++)
					; /* a long burst */
				vhu_vq_push(s->vq, req, NULL, (unsigned)n);
				vhu_vq_notify(s->vq);
				atomic_fetch_add(&s->popped, (unsigned long)n);
			}
		}
		vhu_vq_end(s->vq);
		if (burst < 20000)
			sched_yield();
	}
	return NULL;
}

/* A device whose queue 0 (64 entries) a spinner thread serves, and an
 * 8-byte writable buffer the driver posts again and again. */
struct spinning {
	struct env e;
	struct spinner s;
	struct vhu_fe_ring *r;
	struct vhu_fe_buf b;
	pthread_t th;
};

/* The spinner running, if any. */
static struct spinning *live_spinner;

static void spinning_up(struct spinning *sp, bool packed)
{
	struct env_opts o = { .packed = packed, .qsize = 64 };

	memset(sp, 0, sizeof(*sp));
	env_up(&sp->e, &o);
	sp->s.vq = vhu_dev_vq(sp->e.dev, 0);
	sp->r = ring(&sp->e, 0);
	sp->b = (struct vhu_fe_buf){ galloc(&sp->e, 8), 8 };
	ck_assert_int_eq(pthread_create(&sp->th, NULL, spin_dataplane, &sp->s), 0);
	live_spinner = sp;
}

/* Post the buffer until the ring is full; returns how many went in. */
static unsigned spinning_fill(struct spinning *sp)
{
	unsigned n = 0;

	while (vhu_fe_ring_add(sp->r, &sp->b, 0, 1, NULL) >= 0)
		n++;
	vhu_fe_ring_publish(sp->r);
	return n;
}

static void spinning_stop(struct spinning *sp)
{
	atomic_store(&sp->s.stop, true);
	pthread_join(sp->th, NULL);
	live_spinner = NULL;
}

/* A test that failed with its spinner running (CK_FORK=no leaves the test
 * by longjmp): stop the thread before the next test reuses the stack its
 * state lives on. */
static void spinner_teardown(void)
{
	if (live_spinner)
		spinning_stop(live_spinner);
}

START_TEST(stop_during_burst)
{
	struct spinning sp;
	uint32_t base;

	spinning_up(&sp, _i & 1);
	for (int round = 0; round < 200; round++) {
		spinning_fill(&sp);
		while (vhu_fe_ring_get_used(sp.r, NULL, NULL, NULL) == 1)
			;
		if (round % 50 == 25) { /* disable/enable under traffic */
			ck_assert_int_eq(vhu_fe_set_vring_enable(sp.e.fe, 0, false), 0);
			ck_assert_int_eq(vhu_fe_set_vring_enable(sp.e.fe, 0, true), 0);
		}
	}
	ck_assert_int_eq(vhu_fe_get_vring_base(sp.e.fe, 0, &base), 0);
	/* the ring is stopped now: the data plane takes nothing more */
	unsigned long after_stop = atomic_load(&sp.s.popped);
	spinning_fill(&sp);
	usleep(20000);
	ck_assert_uint_eq(atomic_load(&sp.s.popped), after_stop);
	spinning_stop(&sp);
	if (!sp.e.packed)
		ck_assert_uint_eq(base, after_stop & 0xffff);
	env_down(&sp.e);
}
END_TEST

/*
 * QEMU 7.2's stop order with STATUS negotiated: SET_STATUS 0, then
 * GET_VRING_BASE, while the ring still holds buffers the device never
 * took (class 43).  The base is where the ring stopped: after the two
 * requests used, before the two still available; packed, both halves.
 */
START_TEST(status_zero_then_get_base)
{
	struct env e;
	struct env_opts o = { .packed = _i & 1 };
	struct vhu_req req;
	struct vhu_seg segs[4];
	uint32_t base = 0;

	env_up(&e, &o);
	for (int i = 0; i < 4; i++) {
		struct vhu_fe_buf b = { galloc(&e, 256), 256 };

		ck_assert_int_ge(vhu_fe_ring_add(ring(&e, 0), &b, 0, 1, NULL), 0);
	}
	ck_assert_int_eq(vhu_fe_queue_notify(e.fe, 0), 0);
	for (int i = 0; i < 2; i++) {
		pop_one(&e, 0, &req, segs, 4);
		push_one(&e, 0, &req, 100);
	}
	ck_assert_int_eq(vhu_fe_set_status(e.fe, 0), 0);
	ck_assert_int_eq(vhu_fe_get_vring_base(e.fe, 0, &base), 0);
	if (o.packed)
		ck_assert_uint_eq(base, (2u | 1u << 15) * 0x10001u);
	else
		ck_assert_uint_eq(base, 2);
	/* stopped: the two buffers left are not taken any more */
	struct vhu_vq *vq = vhu_dev_vq(e.dev, 0);
	ck_assert(!(vhu_vq_begin(vq) & VHU_VQ_RUNNING));
	ck_assert_int_eq(vhu_vq_pop(vq, &req, 1, segs, 4), 0);
	vhu_vq_end(vq);
	env_down(&e);
}
END_TEST

/* Reap used buffers until @want have come back in all (@used so far),
 * for up to TMO ms; returns the new count. */
static unsigned reap_until(struct vhu_fe_ring *r, unsigned used, unsigned want)
{
	for (int i = 0; i < TMO * 5; i++) {
		while (vhu_fe_ring_get_used(r, NULL, NULL, NULL) == 1)
			used++;
		if (used >= want)
			break;
		usleep(200);
	}
	return used;
}

/*
 * Class 36: the memory table changes while a data-plane thread works the
 * ring: SET_MEM_TABLE with the same regions, REM_MEM_REG and ADD_MEM_REG of
 * the region neither the ring nor its buffers use.  The ring does not
 * notice: every buffer comes back and nothing breaks.
 */
START_TEST(mem_table_under_traffic)
{
	struct spinning sp;
	struct vhu_queue_info qi;
	unsigned added = 0, used = 0;
	uint64_t region1, cnt;

	spinning_up(&sp, _i & 1);
	region1 = vhu_fe_mem_region(sp.e.fe, 1)->gpa;
	ck_assert_uint_lt(sp.b.gpa, region1);
	ck_assert_uint_lt(sp.r->used_gpa, region1);
	for (int round = 0; round < 200; round++) {
		added += spinning_fill(&sp);
		if (round % 20 == 5)
			ck_assert_int_eq(vhu_fe_set_mem_table(sp.e.fe), 0);
		if (round % 20 == 15) {
			ck_assert_int_eq(vhu_fe_rem_mem_reg(sp.e.fe, 1, false), 0);
			ck_assert_int_eq(vhu_fe_add_mem_reg(sp.e.fe, 1), 0);
		}
		used = reap_until(sp.r, used, used + 1); /* traffic between changes */
	}
	used = reap_until(sp.r, used, added);
	spinning_stop(&sp);
	ck_assert_uint_eq(used, added);
	ck_assert_uint_eq(atomic_load(&sp.s.popped), added);
	ck_assert_uint_gt(added, 2u * sp.e.qsize);
	fe_sync(&sp.e);
	tu_backend_lock(sp.e.be);
	ck_assert_int_eq(vhu_dev_queue_info(sp.e.dev, 0, &qi), 0);
	ck_assert_uint_eq(vhu_dev_mem_regions(sp.e.dev), 2);
	tu_backend_unlock(sp.e.be);
	ck_assert(qi.started && !qi.broken);
	ck_assert_int_eq(read(sp.e.errfd[0], &cnt, sizeof(cnt)), -1);
	aftermath_env(&sp.e);
	env_down(&sp.e);
}
END_TEST

/* ---- hostile rings (classes 25-34) -------------------------------- */

/* Raw ring writes, bypassing the driver helpers. */
static void split_desc(struct vhu_fe_ring *r, uint16_t i, uint64_t addr, uint32_t len,
		       uint16_t flags, uint16_t next)
{
	struct vhu_fe_split_desc *d = (struct vhu_fe_split_desc *)r->desc + i;

	vhu_fe_st64(&d->addr, addr);
	vhu_fe_st32(&d->len, len);
	vhu_fe_st16(&d->flags, flags);
	vhu_fe_st16(&d->next, next);
}

/* Put @head on the avail ring and publish it; @ahead moves the index by
 * that many entries instead of 1. */
static void split_avail(struct vhu_fe_ring *r, uint16_t head, uint16_t ahead)
{
	uint16_t *avail = r->avail;
	uint16_t idx = vhu_fe_ld16(&avail[1]);

	vhu_fe_st16(&avail[2 + (idx % r->num)], head);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	vhu_fe_st16(&avail[1], (uint16_t)(idx + ahead));
}

static void packed_desc(struct vhu_fe_ring *r, uint16_t slot, uint64_t addr,
			uint32_t len, uint16_t id, uint16_t flags, bool wrap)
{
	struct vhu_fe_packed_desc *d = (struct vhu_fe_packed_desc *)r->desc + slot;

	flags &= ~(VHU_FE_DESC_F_AVAIL | VHU_FE_DESC_F_USED);
	if (wrap)
		flags |= VHU_FE_DESC_F_AVAIL;
	else
		flags |= VHU_FE_DESC_F_USED;
	vhu_fe_st64(&d->addr, addr);
	vhu_fe_st32(&d->len, len);
	vhu_fe_st16(&d->id, id);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	vhu_fe_st16(&d->flags, flags);
}

/* After the guest broke queue 0: pop says -EIO, the queue reports broken,
 * the error eventfd fired, the log says why, queue 1 still works, and a
 * fresh set-up of queue 0 works again. */
static void expect_broken(struct env *e, const char *why)
{
	struct vhu_vq *vq = vhu_dev_vq(e->dev, 0);
	struct vhu_req req;
	struct vhu_seg segs[64];
	uint64_t cnt = 0;
	struct vhu_queue_info qi;

	ck_assert(vhu_vq_begin(vq) & VHU_VQ_RUNNING);
	ck_assert_int_eq(vhu_vq_pop(vq, &req, 1, segs, 64), -EIO);
	vhu_vq_end(vq);
	ck_assert(vhu_vq_begin(vq) & VHU_VQ_BROKEN);
	ck_assert_int_eq(vhu_vq_pop(vq, &req, 1, segs, 64), -EIO);
	vhu_vq_end(vq);
	ck_assert_msg(tu_log_contains(why), "log lacks \"%s\"", why);
	ck_assert_int_eq(read(e->errfd[0], &cnt, sizeof(cnt)), sizeof(cnt));
	ck_assert_uint_eq(cnt, 1);
	tu_backend_lock(e->be);
	ck_assert_int_eq(vhu_dev_queue_info(e->dev, 0, &qi), 0);
	tu_backend_unlock(e->be);
	ck_assert(qi.broken);
	/* the other queue is unaffected */
	round_trip(e, 1, false, 77);
	/* set the queue up again from scratch */
	uint32_t base;
	ck_assert_int_eq(vhu_fe_get_vring_base(e->fe, 0, &base), 0);
	ck_assert_int_eq(vhu_fe_queue_setup(e->fe, 0, e->packed, e->qsize,
					    vhu_fe_queue_ring(e->fe, 0)->event_idx ?
						    VHU_FE_RING_EVENT_IDX : 0), 0);
	ck_assert_int_eq(vhu_fe_queue_start(e->fe, 0), 0);
	ck_assert_int_eq(vhu_fe_set_vring_enable(e->fe, 0, true), 0);
	fe_sync(e);
	round_trip(e, 0, false, 78);
}

enum split_case {
	SC_HEAD_RANGE, SC_AHEAD, SC_NEXT_RANGE, SC_SELF_LOOP, SC_CYCLE,
	SC_INDIRECT_LOOP, SC_OVER_4G, SC_NESTED_INDIRECT, SC_INDIRECT_LEN0,
	SC_INDIRECT_LEN17, SC_INDIRECT_NEXT, SC_OUTSIDE, SC_WRAP_ADDR,
	SC_READ_AFTER_WRITE, SC_COUNT
};

static const char *const split_why[SC_COUNT] = {
	[SC_HEAD_RANGE] = "is head 9",
	[SC_AHEAD] = "entries ahead",
	[SC_NEXT_RANGE] = "beyond the table",
	[SC_SELF_LOOP] = "a loop",
	[SC_CYCLE] = "a loop",
	[SC_INDIRECT_LOOP] = "a loop",
	[SC_OVER_4G] = "longer than 4 GiB",
	[SC_NESTED_INDIRECT] = "inside an indirect table",
	[SC_INDIRECT_LEN0] = "indirect table length",
	[SC_INDIRECT_LEN17] = "indirect table length",
	[SC_INDIRECT_NEXT] = "both INDIRECT and NEXT",
	[SC_OUTSIDE] = "outside guest memory",
	[SC_WRAP_ADDR] = "wraps around",
	[SC_READ_AFTER_WRITE] = "readable descriptor after a device-writable",
};

START_TEST(hostile_split)
{
	struct env e;
	struct env_opts o = { .qsize = 8 };
	uint64_t buf, tbl;
	struct vhu_fe_ring *r;
	enum split_case c = (enum split_case)_i;

	if (c == SC_OVER_4G) { /* one sparse 3 GiB region: nothing is touched */
		o.regions = 1;
		o.region_size = 3ull << 30;
	}
	tu_log_clear();
	env_up(&e, &o);
	r = ring(&e, 0);
	buf = galloc(&e, 4096);
	tbl = galloc(&e, 64);
	switch (c) {
	case SC_HEAD_RANGE: /* 25 */
		split_avail(r, 9, 1);
		break;
	case SC_AHEAD: /* 25 */
		split_desc(r, 0, buf, 16, 0, 0);
		split_avail(r, 0, 9);
		break;
	case SC_NEXT_RANGE: /* 26 */
		split_desc(r, 0, buf, 16, VHU_FE_DESC_F_NEXT, 8);
		split_avail(r, 0, 1);
		break;
	case SC_SELF_LOOP: /* 26 */
		split_desc(r, 0, buf, 16, VHU_FE_DESC_F_NEXT, 0);
		split_avail(r, 0, 1);
		break;
	case SC_CYCLE: /* 26, 27 */
		split_desc(r, 0, buf, 16, VHU_FE_DESC_F_NEXT, 1);
		split_desc(r, 1, buf, 16, VHU_FE_DESC_F_NEXT, 0);
		split_avail(r, 0, 1);
		break;
	case SC_INDIRECT_LOOP: { /* 27: a loop inside an indirect table */
		struct vhu_fe_split_desc t[2] = {
			{ buf, 16, VHU_FE_DESC_F_NEXT, 1 }, { buf, 16, VHU_FE_DESC_F_NEXT, 0 } };
		vhu_fe_mem_write(e.fe, tbl, t, sizeof(t));
		split_desc(r, 0, tbl, sizeof(t), VHU_FE_DESC_F_INDIRECT, 0);
		split_avail(r, 0, 1);
		break;
	}
	case SC_OVER_4G: /* 27: two 2.25 GiB buffers */
		split_desc(r, 0, 1ull << 20, 0x90000000u, VHU_FE_DESC_F_NEXT, 1);
		split_desc(r, 1, 1ull << 20, 0x90000000u, 0, 0);
		split_avail(r, 0, 1);
		break;
	case SC_NESTED_INDIRECT: { /* 28 */
		struct vhu_fe_split_desc t[1] = { { tbl, 16, VHU_FE_DESC_F_INDIRECT, 0 } };
		vhu_fe_mem_write(e.fe, tbl, t, sizeof(t));
		split_desc(r, 0, tbl, sizeof(t), VHU_FE_DESC_F_INDIRECT, 0);
		split_avail(r, 0, 1);
		break;
	}
	case SC_INDIRECT_LEN0: /* 28 */
		split_desc(r, 0, tbl, 0, VHU_FE_DESC_F_INDIRECT, 0);
		split_avail(r, 0, 1);
		break;
	case SC_INDIRECT_LEN17: /* 28 */
		split_desc(r, 0, tbl, 17, VHU_FE_DESC_F_INDIRECT, 0);
		split_avail(r, 0, 1);
		break;
	case SC_INDIRECT_NEXT: /* 28 */
		split_desc(r, 0, tbl, 16, VHU_FE_DESC_F_INDIRECT | VHU_FE_DESC_F_NEXT, 1);
		split_desc(r, 1, buf, 16, 0, 0);
		split_avail(r, 0, 1);
		break;
	case SC_OUTSIDE: /* 30 */
		split_desc(r, 0, 1ull << 40, 16, 0, 0);
		split_avail(r, 0, 1);
		break;
	case SC_WRAP_ADDR: /* 30 */
		split_desc(r, 0, UINT64_MAX - 4, 16, 0, 0);
		split_avail(r, 0, 1);
		break;
	case SC_READ_AFTER_WRITE: /* 31 */
		split_desc(r, 0, buf, 16, VHU_FE_DESC_F_WRITE | VHU_FE_DESC_F_NEXT, 1);
		split_desc(r, 1, buf + 16, 16, 0, 0);
		split_avail(r, 0, 1);
		break;
	default:
		break;
	}
	expect_broken(&e, split_why[c]);
	aftermath_env(&e);
	env_down(&e);
}
END_TEST

/* Legal oddities the device must accept: a zero-length buffer with a wild
 * address (never touched), a chain that uses every descriptor. */
START_TEST(split_legal_oddities)
{
	struct env e;
	struct env_opts o = { .qsize = 8 };
	struct vhu_fe_ring *r;
	struct vhu_vq *vq;
	struct vhu_req req;
	struct vhu_seg segs[16];
	uint64_t buf;

	env_up(&e, &o);
	r = ring(&e, 0);
	vq = vhu_dev_vq(e.dev, 0);
	buf = galloc(&e, 64);
	split_desc(r, 0, 0xdead000000000000ull, 0, VHU_FE_DESC_F_NEXT, 1);
	for (uint16_t i = 1; i < 8; i++)
		split_desc(r, i, buf, 8, VHU_FE_DESC_F_WRITE | (i < 7 ? VHU_FE_DESC_F_NEXT : 0),
			   (uint16_t)(i + 1));
	split_avail(r, 0, 1);
	vhu_vq_begin(vq);
	ck_assert_int_eq(vhu_vq_pop(vq, &req, 1, segs, 16), 1);
	ck_assert_uint_eq(req.nr_out, 0);
	ck_assert_uint_eq(req.nr_in, 7);
	ck_assert_uint_eq(req.in_len, 56);
	/* a driver that claims more was written than offered is told the truth */
	uint32_t w = 1000;
	ck_assert_int_eq(vhu_vq_push(vq, &req, &w, 1), 0);
	vhu_vq_end(vq);
	uint32_t len;
	struct vhu_fe_used_elem *u = (void *)((uint8_t *)r->used + 4);
	len = vhu_fe_ld32(&u[0].len);
	ck_assert_uint_eq(len, 56);
	aftermath_env(&e);
	env_down(&e);
}
END_TEST

enum packed_case { PC_ID_RANGE, PC_WRAP_MIDCHAIN, PC_INDIRECT_CHAINED,
		   PC_OUTSIDE, PC_COUNT };

static const char *const packed_why[PC_COUNT] = {
	[PC_ID_RANGE] = "buffer id 8",
	[PC_WRAP_MIDCHAIN] = "not available in this lap",
	[PC_INDIRECT_CHAINED] = "chained with others",
	[PC_OUTSIDE] = "outside guest memory",
};

START_TEST(hostile_packed)
{
	struct env e;
	struct env_opts o = { .packed = true, .qsize = 8 };
	struct vhu_fe_ring *r;
	uint64_t buf, tbl;
	enum packed_case c = (enum packed_case)_i;

	tu_log_clear();
	env_up(&e, &o);
	r = ring(&e, 0);
	buf = galloc(&e, 64);
	tbl = galloc(&e, 64);
	switch (c) {
	case PC_ID_RANGE: /* 34 */
		packed_desc(r, 0, buf, 16, 8, 0, true);
		break;
	case PC_WRAP_MIDCHAIN: /* 34: the second descriptor is from another lap */
		packed_desc(r, 1, buf, 16, 0, 0, false);
		packed_desc(r, 0, buf, 16, 0, VHU_FE_DESC_F_NEXT, true);
		break;
	case PC_INDIRECT_CHAINED: /* 28 */
		packed_desc(r, 1, buf, 16, 0, 0, true);
		packed_desc(r, 0, tbl, 16, 0, VHU_FE_DESC_F_INDIRECT | VHU_FE_DESC_F_NEXT,
			    true);
		break;
	case PC_OUTSIDE: /* 30 */
		packed_desc(r, 0, 1ull << 40, 16, 0, 0, true);
		break;
	default:
		break;
	}
	expect_broken(&e, packed_why[c]);
	aftermath_env(&e);
	env_down(&e);
}
END_TEST

/* A packed chain may wrap past the end of the ring (legal), and a head
 * whose AVAIL/USED bits are equal is simply not available. */
START_TEST(packed_legal_oddities)
{
	struct env e;
	struct env_opts o = { .packed = true, .qsize = 4 };
	struct vhu_fe_ring *r;
	struct vhu_vq *vq;
	struct vhu_req req[4];
	struct vhu_seg segs[16];
	struct vhu_fe_buf b;

	env_up(&e, &o);
	r = ring(&e, 0);
	vq = vhu_dev_vq(e.dev, 0);
	b = (struct vhu_fe_buf){ galloc(&e, 8), 8 };
	/* move the ring to slot 3 through the driver */
	for (int i = 0; i < 3; i++)
		ck_assert_int_ge(vhu_fe_ring_add(r, &b, 0, 1, NULL), 0);
	vhu_fe_ring_publish(r);
	vhu_vq_begin(vq);
	ck_assert_int_eq(vhu_vq_pop(vq, req, 4, segs, 16), 3);
	ck_assert_int_eq(vhu_vq_push(vq, req, NULL, 3), 0);
	vhu_vq_end(vq);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(vhu_fe_ring_get_used(r, NULL, NULL, NULL), 1);
	/* a two-descriptor chain at slots 3 and 0 (second lap) */
	struct vhu_fe_buf two[2] = { b, b };
	ck_assert_int_ge(vhu_fe_ring_add(r, two, 1, 1, NULL), 0);
	vhu_fe_ring_publish(r);
	vhu_vq_begin(vq);
	ck_assert_int_eq(vhu_vq_pop(vq, req, 4, segs, 16), 1);
	ck_assert_uint_eq(req[0].ndesc, 2);
	ck_assert_int_eq(vhu_vq_push(vq, req, NULL, 1), 0);
	/* slot 1 with AVAIL == USED: not available, not an error */
	struct vhu_fe_packed_desc *d = (struct vhu_fe_packed_desc *)r->desc + 1;
	vhu_fe_st16(&d->flags, 0);
	ck_assert_int_eq(vhu_vq_pop(vq, req, 4, segs, 16), 0);
	ck_assert(!(vhu_vq_begin(vq) & VHU_VQ_BROKEN));
	vhu_vq_end(vq);
	vhu_vq_end(vq);
	ck_assert_int_eq(vhu_fe_ring_get_used(r, NULL, NULL, NULL), 1);
	aftermath_env(&e);
	env_down(&e);
}
END_TEST

/*
 * Class 33: the guest rewrites descriptors while the device walks them.
 * A thread scribbles random values over the descriptor table and the
 * avail ring while the data plane pops: every outcome is either a request
 * whose segments lie in guest memory or a broken queue; never a crash
 * (ASan/valgrind runs make "lie in guest memory" an enforced property).
 */
struct scribbler {
	struct vhu_fe_ring *r;
	uint64_t mem_lo, mem_hi;
	atomic_bool stop;
};

static void *scribble(void *arg)
{
	struct scribbler *s = arg;
	unsigned seed = 12345;
	uint16_t idx = 0;
	/* valgrind runs one thread at a time: let the data plane in */
	bool yield = tu_under_valgrind();

	while (!atomic_load(&s->stop)) {
		if (yield)
			sched_yield();
		uint16_t i = (uint16_t)(rand_r(&seed) % s->r->num);
		uint64_t addr = s->mem_lo + (uint64_t)rand_r(&seed) % (s->mem_hi - s->mem_lo);

		if (rand_r(&seed) % 8 == 0)
			addr = (uint64_t)rand_r(&seed) << 32;
		split_desc(s->r, i, addr, (uint32_t)rand_r(&seed) % 9000,
			   (uint16_t)(rand_r(&seed) & 7), (uint16_t)(rand_r(&seed) % 10));
		uint16_t *avail = s->r->avail;
		vhu_fe_st16(&avail[2 + (idx % s->r->num)], (uint16_t)(rand_r(&seed) % 10));
		vhu_fe_st16(&avail[1], ++idx);
	}
	return NULL;
}

START_TEST(guest_rewrites_descriptors)
{
	struct env e;
	struct env_opts o = { .qsize = 8 };
	struct scribbler s = { 0 };
	struct vhu_vq *vq;
	pthread_t th;
	unsigned ok = 0, broken = 0, last_st = 0;
	int last_n = 0;
	bool yield = tu_under_valgrind();

	env_up(&e, &o);
	vq = vhu_dev_vq(e.dev, 0);
	s.r = ring(&e, 0);
	s.mem_lo = 0;
	s.mem_hi = 8 * MB;
	ck_assert_int_eq(pthread_create(&th, NULL, scribble, &s), 0);
	uint64_t t0 = (uint64_t)time(NULL);

	/* 2 s, and (on a slow machine, or valgrind) until the data plane met
	 * the guest's writes at least once, for up to a minute */
	while ((uint64_t)time(NULL) - t0 < 2 ||
	       (ok + broken == 0 && (uint64_t)time(NULL) - t0 < 60)) {
		struct vhu_req req[8];
		struct vhu_seg segs[256];
		unsigned st = vhu_vq_begin(vq);
		int n = vhu_vq_pop(vq, req, 8, segs, 256);

		if (n > 0) {
			for (int i = 0; i < n; i++)
				for (unsigned k = 0; k < (unsigned)(req[i].nr_out + req[i].nr_in); k++)
					((volatile uint8_t *)req[i].segs[k].addr)[req[i].segs[k].len - 1];
			vhu_vq_push(vq, req, NULL, (unsigned)n);
			ok += (unsigned)n;
		}
		vhu_vq_end(vq);
		last_n = n;
		last_st = st;
		if (n <= 0 && yield)
			sched_yield(); /* one thread at a time: let the guest write */
		if (n == -EIO || (st & VHU_VQ_BROKEN)) {
			broken++;
			/* start the queue again and keep going */
			uint32_t base;
			ck_assert_int_eq(vhu_fe_get_vring_base(e.fe, 0, &base), 0);
			ck_assert_int_eq(vhu_fe_set_vring_base(e.fe, 0, 0), 0);
			ck_assert_int_eq(vhu_fe_set_vring_kick(e.fe, 0,
							       vhu_fe_queue_kick_fd(e.fe, 0)), 0);
			fe_sync(&e);
		}
	}
	atomic_store(&s.stop, true);
	pthread_join(th, NULL);
	ck_assert_msg(ok + broken > 0, "the data plane never met the guest's writes "
		      "(last pop %d, queue status 0x%x)", last_n, last_st);
	aftermath_env(&e);
	env_down(&e);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vq");
	TCase *b = tcase_create("behaviour");
	TCase *h = tcase_create("hostile");

	tcase_set_timeout(b, 120);
	tcase_set_timeout(h, 120);
	tcase_add_checked_fixture(b, NULL, spinner_teardown);
	tcase_add_loop_test(b, round_trips, 0, 2);
	tcase_add_loop_test(b, notification_suppression, 0, 4);
	tcase_add_loop_test(b, wrap_around, 0, 2);
	tcase_add_loop_test(b, out_of_order_completion, 0, 2);
	tcase_add_loop_test(b, inband_notifications, 0, 2);
	tcase_add_loop_test(b, ring_sizes, 0, 2);
	tcase_add_loop_test(b, segment_capacity, 0, 2);
	tcase_add_loop_test(b, stop_during_burst, 0, 2);
	tcase_add_loop_test(b, status_zero_then_get_base, 0, 2);
	tcase_add_checked_fixture(h, NULL, spinner_teardown);
	tcase_add_checked_fixture(h, aftermath_setup, aftermath_teardown);
	tcase_add_loop_test(h, hostile_split, 0, SC_COUNT);
	tcase_add_test(h, split_legal_oddities);
	tcase_add_loop_test(h, hostile_packed, 0, PC_COUNT);
	tcase_add_test(h, packed_legal_oddities);
	tcase_add_test(h, guest_rewrites_descriptors);
	tcase_add_loop_test(h, straddling_buffers, 0, 2);
	tcase_add_loop_test(h, mem_table_under_traffic, 0, 2);
	suite_add_tcase(s, b);
	suite_add_tcase(s, h);
	return tu_run_suite(s);
}
