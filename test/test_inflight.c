/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Inflight I/O tracking (lib/inflight*.c, INFLIGHT_SHMFD): a block-like
 * back-end that completes requests out of order dies, another takes its
 * place on the same region, and no request is lost or done twice in the
 * driver's eyes; the new one hands out first what was in flight, oldest
 * first (test/util/crashdev.h has the harness and every check).
 *
 * The back-end dies at every crash point of the library in turn (this
 * suite links the build with VHU_CRASH_POINTS: vhu_dev_crash_at()), for
 * N = 1, 2, ... until a run ends without reaching the N-th: split and
 * packed rings, chains like virtio-blk's (header, data, status), indirect
 * tables, small rings over many laps.  Also at burst boundaries (the test
 * kills it after a pop, between two push calls), and twice in a row.
 * Then, inside one process: a clean stop and start with requests held
 * (vhu_vq_generation(), what a stale push does), and a device or
 * front-end that does not track.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vhu/vhu.h>

#include "crashdev.h"
#include "fe.h"
#include "testutil.h"
#include "vqenv.h"

/* Variants of the crash runs: _i of the loop tests. */
static void variant(int i, struct cd_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->packed = i & 1;
	o->indirect = i & 2;
	o->qsize = o->indirect ? 16 : 8;
	o->tokens = tu_under_valgrind() ? 12 : 24;
	o->seed = 100 + (unsigned)i;
}

/* Every crash point N until a run ends without reaching it. */
START_TEST(crash_at_every_point)
{
	unsigned stride = tu_under_valgrind() ? 7 : 1, runs = 0, resub = 0, held = 0;
	struct cd_result r;
	struct cd_opts o;
	uint32_t n;

	variant(_i, &o);
	for (n = 1;; n += stride) {
		o.crash_at[0] = n;
		cd_run(&o, &r);
		runs++;
		if (!r.crashes)
			break;
		ck_assert_uint_eq(r.crashes, 1);
		ck_assert_uint_eq(r.children, 2);
		resub += r.resubmitted;
		if (r.held_max > held)
			held = r.held_max;
	}
	/* the points are spread over the whole run, and many crashes left
	 * requests in flight, several at once */
	ck_assert_uint_gt(n, o.tokens * 2);
	ck_assert_uint_gt(resub, runs / 4);
	ck_assert_uint_ge(held, 2);
	if (getenv("VHU_TEST_TRACE"))
		fprintf(stderr, "variant %d: %u crash points, %u handed out again, "
			"at most %u in flight\n", _i, n - 1, resub, held);
}
END_TEST

/* Crash, a restart that crashes again at its M-th point, a restart. */
START_TEST(crash_twice)
{
	static const uint32_t second[] = { 1, 2, 3, 5, 8, 13 };
	unsigned stride = tu_under_valgrind() ? 23 : 5, twice = 0;
	struct cd_result r;
	struct cd_opts o;

	variant(_i, &o);
	for (uint32_t n = 1;; n += stride) {
		bool reached = false;

		for (unsigned m = 0; m < sizeof(second) / sizeof(second[0]); m++) {
			o.crash_at[0] = n;
			o.crash_at[1] = second[m];
			cd_run(&o, &r);
			reached = r.crashes > 0;
			if (r.crashes == 2) {
				ck_assert_uint_eq(r.children, 3);
				twice++;
			}
		}
		if (!reached)
			break;
	}
	ck_assert_uint_gt(twice, 5);
}
END_TEST

/* The back-end dies between the library's calls: after a pop (nothing
 * pushed), between two push calls of a burst. */
START_TEST(crash_at_burst_boundaries)
{
	unsigned crashes = 0, runs = 0, steps;
	struct cd_result r;
	struct cd_opts o;

	variant(_i, &o);
	cd_run(&o, &r);
	ck_assert_uint_eq(r.crashes, 0);
	steps = r.steps;
	for (unsigned s = 1; s <= steps; s += tu_under_valgrind() ? 5 : 1) {
		for (int w = CD_AFTER_POP; w <= CD_BETWEEN_PUSH; w++) {
			o.boundary = (enum cd_boundary)w;
			o.boundary_step = s;
			cd_run(&o, &r);
			crashes += r.crashes;
			runs++;
		}
	}
	/* most bursts pop something, many push twice */
	ck_assert_uint_gt(crashes, runs / 4);
}
END_TEST

/* ---- inside one process ------------------------------------------ */

#define HELD 4

/* Queue 0 set up again at @base after a GET_VRING_BASE, as QEMU does. */
static void restart_q0(struct env *e, uint32_t base)
{
	struct vhu_fe_ring *r = ring(e, 0);

	ck_assert_int_eq(vhu_fe_set_vring_num(e->fe, 0, r->num), 0);
	ck_assert_int_eq(vhu_fe_set_vring_addr(e->fe, 0,
					       vhu_fe_gpa_to_uva(e->fe, r->desc_gpa),
					       vhu_fe_gpa_to_uva(e->fe, r->used_gpa),
					       vhu_fe_gpa_to_uva(e->fe, r->avail_gpa), 0), 0);
	ck_assert_int_eq(vhu_fe_set_vring_base(e->fe, 0, base), 0);
	ck_assert_int_eq(vhu_fe_set_vring_kick(e->fe, 0, vhu_fe_queue_kick_fd(e->fe, 0)), 0);
	ck_assert_int_eq(vhu_fe_set_vring_call(e->fe, 0, vhu_fe_queue_call_fd(e->fe, 0)), 0);
	fe_sync(e);
}

/* HELD requests on queue 0 (16 readable bytes holding the token, 16
 * writable), all popped; the third pushed, out of order. */
static void hold_some(struct env *e, struct vhu_req *reqs, struct vhu_seg *segs,
		      uint32_t *gen)
{
	struct vhu_vq *vq = vhu_dev_vq(e->dev, 0);
	struct vhu_fe_ring *r = ring(e, 0);
	uint32_t w = 16;
	void *tok;

	for (uint64_t t = 1; t <= HELD; t++) {
		struct vhu_fe_buf b[2] = { { galloc(e, 16), 16 }, { galloc(e, 16), 16 } };

		vhu_fe_st64(vhu_fe_gpa_to_ptr(e->fe, b[0].gpa, 8), t);
		ck_assert_int_ge(vhu_fe_ring_add(r, b, 1, 1, (void *)(uintptr_t)t), 0);
	}
	vhu_fe_ring_publish(r);
	ck_assert(vhu_vq_begin(vq) & VHU_VQ_RUNNING);
	*gen = vhu_vq_generation(vq);
	ck_assert_int_eq(vhu_vq_pop(vq, reqs, HELD, segs, 2 * HELD), HELD);
	ck_assert_int_eq(vhu_vq_push(vq, &reqs[2], &w, 1), 0);
	vhu_vq_end(vq);
	ck_assert_int_eq(vhu_fe_ring_get_used(r, NULL, NULL, &tok), 1);
	ck_assert_ptr_eq(tok, (void *)(uintptr_t)3);
}

/* The driver finds queue 0's next @n used requests, with these tokens. */
static void expect_used(struct env *e, const uint64_t *tokens, unsigned n)
{
	void *tok;

	for (unsigned i = 0; i < n; i++) {
		ck_assert_int_eq(vhu_fe_ring_get_used(ring(e, 0), NULL, NULL, &tok), 1);
		ck_assert_ptr_eq(tok, (void *)(uintptr_t)tokens[i]);
	}
}

static uint64_t token_of(const struct vhu_req *q)
{
	return vhu_fe_ld64(q->segs[0].addr);
}

/*
 * A clean stop (GET_VRING_BASE) while the application holds requests, and
 * the ring set up again: with tracking the held ones are handed out again
 * first, in their order; vhu_vq_generation() tells the application that
 * what it holds is stale.  What a push of a stale request does (the API
 * says: drop them): vhu knows requests by id only, so it is taken for the
 * request handed out again with that id; the driver sees it used once and
 * the later push of the one handed out again is refused (-EINVAL).
 */
START_TEST(clean_stop_hands_out_again)
{
	struct env_opts eo = { .packed = _i, .qsize = 8, .inflight = true };
	struct vhu_req reqs[HELD], again[HELD];
	struct vhu_seg segs[2 * HELD], segs2[2 * HELD];
	struct vhu_vq *vq;
	uint32_t gen, base, w = 16;
	void *tok;
	struct env e;

	env_up(&e, &eo);
	vq = vhu_dev_vq(e.dev, 0);
	hold_some(&e, reqs, segs, &gen);
	tu_log_clear();
	ck_assert_int_eq(vhu_fe_get_vring_base(e.fe, 0, &base), 0);
	restart_q0(&e, base);
	ck_assert(tu_log_contains("3 requests were in flight; handed out again first"));
	ck_assert(vhu_vq_begin(vq) & VHU_VQ_RUNNING);
	ck_assert_uint_ne(vhu_vq_generation(vq), gen);
	ck_assert_int_eq(vhu_vq_pop(vq, again, HELD, segs2, 2 * HELD), 3);
	ck_assert_uint_eq(token_of(&again[0]), 1);
	ck_assert_uint_eq(token_of(&again[1]), 2);
	ck_assert_uint_eq(token_of(&again[2]), 4);
	ck_assert_uint_eq(again[0].id, reqs[0].id);
	ck_assert_int_eq(vhu_vq_pop(vq, again, HELD, segs2, 2 * HELD), 0);
	/* the stale request 1 goes as the one handed out again ... */
	ck_assert_int_eq(vhu_vq_push(vq, &reqs[0], &w, 1), 0);
	/* ... which can then no longer be returned; the others can */
	ck_assert_int_eq(vhu_vq_push(vq, &again[0], &w, 1), -EINVAL);
	ck_assert_int_eq(vhu_vq_push(vq, &again[1], (uint32_t[]){ 16, 16 }, 2), 0);
	/* the request 3 returned before the stop is not in flight */
	ck_assert_int_eq(vhu_vq_push(vq, &reqs[2], &w, 1), -EINVAL);
	vhu_vq_end(vq);
	expect_used(&e, (const uint64_t[]){ 1, 2, 4 }, 3);
	ck_assert_int_eq(vhu_fe_ring_get_used(ring(&e, 0), NULL, NULL, &tok), 0);
	round_trip(&e, 0, false, 0x31);
	round_trip(&e, 1, true, 0x32);
	env_down(&e);
}
END_TEST

/*
 * A tracked push is all or nothing: a request pushed twice in one call, or
 * one not in flight (already used), refuses the whole push and uses none;
 * the good ones then go in one call.
 */
START_TEST(push_all_or_nothing)
{
	struct env_opts eo = { .packed = _i, .qsize = 8, .inflight = true };
	struct vhu_req reqs[HELD], bad[3];
	struct vhu_seg segs[2 * HELD];
	uint32_t gen, w[3] = { 16, 16, 16 };
	struct vhu_vq *vq;
	void *tok;
	struct env e;

	env_up(&e, &eo);
	vq = vhu_dev_vq(e.dev, 0);
	hold_some(&e, reqs, segs, &gen); /* 1, 2, 4 held; 3 used */
	ck_assert(vhu_vq_begin(vq) & VHU_VQ_RUNNING);
	bad[0] = reqs[0];
	bad[1] = reqs[1];
	bad[2] = reqs[0];
	ck_assert_int_eq(vhu_vq_push(vq, bad, w, 3), -EINVAL);
	bad[2] = reqs[2];
	ck_assert_int_eq(vhu_vq_push(vq, bad, w, 3), -EINVAL);
	vhu_vq_end(vq);
	ck_assert_int_eq(vhu_fe_ring_get_used(ring(&e, 0), NULL, NULL, &tok), 0);
	ck_assert(vhu_vq_begin(vq) & VHU_VQ_RUNNING);
	bad[2] = reqs[3];
	ck_assert_int_eq(vhu_vq_push(vq, bad, w, 3), 0);
	vhu_vq_end(vq);
	expect_used(&e, (const uint64_t[]){ 1, 2, 4 }, 3);
	round_trip(&e, 0, false, 0x33);
	env_down(&e);
}
END_TEST

/*
 * No tracking: the device does not offer it (0), the front-end withholds
 * the protocol feature (1), or acks it and sends no region (2).  Nothing
 * is recorded, and a stop and start with requests held hands nothing out
 * again (the ring resumes at the front-end's base, as without tracking).
 */
START_TEST(untracked_as_before)
{
	struct env_opts eo = { .packed = _i / 3, .qsize = 8, .inflight = _i % 3 != 0 };
	struct vhu_req reqs[HELD], again[HELD];
	struct vhu_seg segs[2 * HELD], segs2[2 * HELD];
	struct vhu_fe_inflight fi;
	struct vhu_vq *vq;
	uint32_t gen, base;
	struct env e;
	uint64_t pf;

	if (_i % 3 == 1) {
		env_up(&e, &(struct env_opts){ .packed = eo.packed, .qsize = 8,
					       .inflight = true, .num_queues = 2 });
		/* again, withholding the feature */
		env_disconnect(&e);
		e.h.protocol_features_off = VHU_BIT(VHU_PF_INFLIGHT_SHMFD);
		env_connect(&e);
	} else {
		env_up(&e, &eo);
	}
	if (_i % 3 == 2) {
		/* acked, and no SET_INFLIGHT_FD: the queues run untracked */
		env_disconnect(&e);
		tu_log_clear();
		e.h.inflight = false;
		env_connect(&e);
		ck_assert(tu_log_contains("no SET_INFLIGHT_FD: the queue runs untracked"));
	}
	pf = vhu_dev_protocol_features(e.dev);
	ck_assert(!(pf & VHU_BIT(VHU_PF_INFLIGHT_SHMFD)) == (_i % 3 != 2));
	vhu_fe_inflight(e.fe, &fi);
	ck_assert_int_eq(fi.fd, -1);
	vq = vhu_dev_vq(e.dev, 0);
	hold_some(&e, reqs, segs, &gen);
	tu_log_clear();
	ck_assert_int_eq(vhu_fe_get_vring_base(e.fe, 0, &base), 0);
	restart_q0(&e, base);
	ck_assert(!tu_log_contains("handed out again"));
	ck_assert(vhu_vq_begin(vq) & VHU_VQ_RUNNING);
	ck_assert_uint_ne(vhu_vq_generation(vq), gen);
	if (!eo.packed) {
		ck_assert_int_eq(vhu_vq_pop(vq, again, HELD, segs2, 2 * HELD), 0);
	} else {
		/* a packed ring resumes where its used descriptors end
		 * (docs/reconnect.md): the slots after the one request 3 was
		 * returned in, so request 1 is lost and 3 comes again, what
		 * tracking exists for */
		ck_assert_int_eq(vhu_vq_pop(vq, again, HELD, segs2, 2 * HELD), 3);
		ck_assert_uint_eq(token_of(&again[0]), 2);
		ck_assert_uint_eq(token_of(&again[1]), 3);
		ck_assert_uint_eq(token_of(&again[2]), 4);
	}
	vhu_vq_end(vq);
	round_trip(&e, 1, false, 0x41);
	/* a region asked for anyway, when not negotiated: refused, and the
	 * connection closed (the front-end waits for a reply with data) */
	if (_i % 3 != 2) {
		int fd;
		uint64_t size, off;

		tu_log_clear();
		ck_assert_int_lt(vhu_fe_get_inflight_fd(e.fe, 2, 8, &fd, &size, &off), 0);
		ck_assert(tu_log_contains("GET_INFLIGHT_FD needs protocol feature 12"));
		ck_assert_int_eq(vhu_fe_wait_hangup(e.fe, TMO), 0);
	}
	env_down(&e);
}
END_TEST

/* GET_VRING_BASE from a thread of its own: the test thread is the data
 * plane the drain waits for. */
struct stopper {
	struct env *e;
	uint32_t base;
	int rc;
	atomic_bool done;
};

static void *stop_q0(void *arg)
{
	struct stopper *s = arg;

	s->rc = vhu_fe_get_vring_base(s->e->fe, 0, &s->base);
	atomic_store(&s->done, true);
	return NULL;
}

/* A burst that sees DRAINING (polls up to TMO); the burst stays open. */
static unsigned begin_draining(struct vhu_vq *vq)
{
	for (int t = 0; t < TMO; t++) {
		unsigned st = vhu_vq_begin(vq);

		if (st & VHU_VQ_DRAINING)
			return st;
		vhu_vq_end(vq);
		usleep(1000);
	}
	ck_abort_msg("the queue never reported VHU_VQ_DRAINING");
	return 0;
}

static void push_in_burst(struct vhu_vq *vq, const struct vhu_req *req)
{
	uint32_t w = 16;

	ck_assert(begin_draining(vq) & VHU_VQ_RUNNING);
	ck_assert_int_eq(vhu_vq_push(vq, req, &w, 1), 0);
	vhu_vq_end(vq);
}

/*
 * vhu_dev_opts.stop_drain_ms: GET_VRING_BASE while the application holds
 * three requests and the driver has made a fifth available.  The reply
 * waits; meanwhile the data plane sees DRAINING, pops nothing new and
 * pushes what it holds.  The reply comes after the last push, with the
 * base right after the four taken, and the ring set up again at it gives
 * the fifth and nothing twice (tracked or not: _i bit 1).
 */
START_TEST(drain_before_stop)
{
	struct env_opts eo = { .packed = _i & 1, .qsize = 16, .inflight = _i & 2,
			       .stop_drain_ms = 10000 };
	struct vhu_req reqs[HELD], again[HELD];
	struct vhu_seg segs[2 * HELD], segs2[2 * HELD];
	struct stopper s = { 0 };
	struct vhu_fe_ring *r;
	struct vhu_vq *vq;
	pthread_t th;
	uint32_t gen, w = 16;
	void *tok;
	struct env e;

	env_up(&e, &eo);
	vq = vhu_dev_vq(e.dev, 0);
	r = ring(&e, 0);
	hold_some(&e, reqs, segs, &gen);
	struct vhu_fe_buf b[2] = { { galloc(&e, 16), 16 }, { galloc(&e, 16), 16 } };

	vhu_fe_st64(vhu_fe_gpa_to_ptr(e.fe, b[0].gpa, 8), 5);
	ck_assert_int_ge(vhu_fe_ring_add(r, b, 1, 1, (void *)(uintptr_t)5), 0);
	vhu_fe_ring_publish(r);
	tu_log_clear();
	s.e = &e;
	ck_assert_int_eq(pthread_create(&th, NULL, stop_q0, &s), 0);
	ck_assert(begin_draining(vq) & VHU_VQ_RUNNING);
	ck_assert_int_eq(vhu_vq_pop(vq, again, HELD, segs2, 2 * HELD), 0);
	/* the fifth is there, but not for the taking: no reason to look again */
	ck_assert(!vhu_vq_avail(vq));
	ck_assert_int_eq(vhu_vq_set_kicks(vq, true), 0);
	vhu_vq_end(vq);
	usleep(100 * 1000);
	ck_assert_msg(!atomic_load(&s.done), "GET_VRING_BASE answered with 3 requests held");
	push_in_burst(vq, &reqs[1]);
	push_in_burst(vq, &reqs[0]);
	usleep(50 * 1000);
	ck_assert_msg(!atomic_load(&s.done), "GET_VRING_BASE answered with 1 request held");
	push_in_burst(vq, &reqs[3]);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(s.rc, 0);
	ck_assert(tu_log_contains("came back before the ring stopped"));
	/* the used position at the avail one: four requests of 2 descriptors */
	if (eo.packed)
		ck_assert_uint_eq(s.base, 8 | 8u << 16 | 1u << 15 | 1u << 31);
	else
		ck_assert_uint_eq(s.base, 4);
	expect_used(&e, (const uint64_t[]){ 2, 1, 4 }, 3);
	ck_assert_int_eq(vhu_fe_ring_get_used(r, NULL, NULL, &tok), 0);

	restart_q0(&e, s.base);
	ck_assert(!tu_log_contains("were in flight"));
	ck_assert(vhu_vq_begin(vq) & VHU_VQ_RUNNING);
	ck_assert_int_eq(vhu_vq_pop(vq, again, HELD, segs2, 2 * HELD), 1);
	ck_assert_uint_eq(token_of(&again[0]), 5);
	ck_assert_int_eq(vhu_vq_push(vq, &again[0], &w, 1), 0);
	vhu_vq_end(vq);
	ck_assert_int_eq(vhu_fe_ring_get_used(r, NULL, NULL, &tok), 1);
	ck_assert_ptr_eq(tok, (void *)(uintptr_t)5);
	round_trip(&e, 0, false, 0x41);
	round_trip(&e, 1, true, 0x42);
	/* nothing held: the next stop answers at once */
	tu_log_clear();
	ck_assert_int_eq(vhu_fe_get_vring_base(e.fe, 0, &s.base), 0);
	ck_assert(!tu_log_contains("came back"));
	env_down(&e);
}
END_TEST

/*
 * The drain gives up after stop_drain_ms: the ring stops with the requests
 * still held, the front-end gets the base after them, and with tracking
 * the next start hands them out again.
 */
START_TEST(drain_times_out)
{
	struct env_opts eo = { .packed = _i & 1, .qsize = 16, .inflight = _i & 2,
			       .stop_drain_ms = 300 };
	struct vhu_req reqs[HELD], again[HELD];
	struct vhu_seg segs[2 * HELD], segs2[2 * HELD];
	struct vhu_vq *vq;
	uint32_t gen, base;
	int64_t t0, waited;
	struct env e;

	env_up(&e, &eo);
	vq = vhu_dev_vq(e.dev, 0);
	hold_some(&e, reqs, segs, &gen);
	tu_log_clear();
	t0 = tu_now_ms();
	ck_assert_int_eq(vhu_fe_get_vring_base(e.fe, 0, &base), 0);
	waited = tu_now_ms() - t0;
	ck_assert_int_ge(waited, 290);
	ck_assert_int_lt(waited, 300 + TMO);
	ck_assert(tu_log_contains("requests still held after 300 ms"));
	if (!eo.packed)
		ck_assert_uint_eq(base, 4);
	restart_q0(&e, base);
	if (eo.inflight) {
		ck_assert(tu_log_contains("3 requests were in flight; handed out again first"));
		ck_assert(vhu_vq_begin(vq) & VHU_VQ_RUNNING);
		ck_assert_int_eq(vhu_vq_pop(vq, again, HELD, segs2, 2 * HELD), 3);
		ck_assert_uint_eq(token_of(&again[0]), 1);
		vhu_vq_end(vq);
	}
	round_trip(&e, 1, false, 0x43);
	env_down(&e);
}
END_TEST

static Suite *inflight_suite(void)
{
	Suite *s = suite_create("inflight");
	TCase *c = tcase_create("crash");
	TCase *p = tcase_create("process");

	tcase_set_timeout(c, 280);
	tcase_add_loop_test(c, crash_at_every_point, 0, 4);
	tcase_add_loop_test(c, crash_twice, 0, 4);
	tcase_add_loop_test(c, crash_at_burst_boundaries, 0, 4);
	suite_add_tcase(s, c);
	tcase_add_loop_test(p, clean_stop_hands_out_again, 0, 2);
	tcase_add_loop_test(p, push_all_or_nothing, 0, 2);
	tcase_add_loop_test(p, untracked_as_before, 0, 6);
	tcase_add_loop_test(p, drain_before_stop, 0, 4);
	tcase_add_loop_test(p, drain_times_out, 0, 4);
	suite_add_tcase(s, p);
	return s;
}

int main(void)
{
	return tu_run_suite(inflight_suite());
}
