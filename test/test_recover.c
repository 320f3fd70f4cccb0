/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Packed rings after a back-end crash (lib/rings/vq_recover.c): the back-end
 * stops at some point of a burst, the front-end reconnects and, as QEMU
 * 7.2 does, sends the base of the ring's last clean stop (its start)
 * while the driver is laps ahead.  The device must resume where the ring
 * says: every buffer the driver made available comes back used exactly
 * once in the driver's eyes (vhu_fe_ring_get_used() fails on an id not in
 * flight), buffers in flight at the crash are taken again, and traffic
 * goes on.  The crash points: after the pop, between pushes, inside a push
 * (the used descriptors written but the first one's flags: what vhu leaves
 * when it dies in vhu_vq_push()), with chains, indirect tables, in-order,
 * and at every ring position over many laps.  Split rings too (the used
 * index is in the ring, QEMU sends it as the base: the entries of a push
 * cut short are written over), with in-order and event index.
 *
 * Hostile rings (class 45): whatever the ring holds, the scan is bounded,
 * and a ring that fits no position breaks that queue only.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vhu/vhu.h>

#include "aftermath.h"
#include "fe.h"
#include "testutil.h"
#include "rings/vq.h" /* VHU_USED_TAG: what vhu writes in a used descriptor */
#include "vqenv.h"

#define QSIZE 8
#define POOL 64   /* buffers, reused in turn */
#define BUFLEN 512
#define MAXB 6    /* buffers the driver adds per round */

struct rec {
	struct env e;
	uint64_t pool[POOL];
	unsigned next_buf;
	bool in_order;
	uint64_t seq;       /* tokens: 1, 2, ... */
	unsigned outstanding;
	unsigned char seen[4096]; /* per token % 4096: times it came back */
	uint64_t first_live;      /* tokens below have all come back */
	unsigned rs;              /* rand_r state */
};

static int dev_gone(void *arg)
{
	return !vhu_dev_is_connected(((struct env *)arg)->dev);
}

static int dev_ready(void *arg)
{
	return vhu_dev_is_ready(((struct env *)arg)->dev);
}

/* Queue 0 started (broken or not: a hostile ring may break it). */
static int q0_started(void *arg)
{
	struct vhu_queue_info qi;

	vhu_dev_queue_info(((struct env *)arg)->dev, 0, &qi);
	return qi.started;
}

static void rec_up(struct rec *c, bool packed, bool in_order, unsigned seed)
{
	struct env_opts o = { .packed = packed, .qsize = QSIZE, .in_order = in_order };

	memset(c, 0, sizeof(*c));
	env_up(&c->e, &o);
	c->in_order = in_order;
	c->rs = seed;
	c->first_live = 1;
	for (unsigned i = 0; i < POOL; i++)
		c->pool[i] = galloc(&c->e, BUFLEN);
}

/* Add one buffer of 1..3 pieces, readable or writable, maybe through an
 * indirect table; false when the ring has no room. */
static bool add_one(struct rec *c)
{
	struct vhu_fe_ring *r = ring(&c->e, 0);
	unsigned pieces = 1 + rand_r(&c->rs) % 3;
	bool writable = rand_r(&c->rs) & 1, indirect = pieces > 1 && (rand_r(&c->rs) & 1);
	struct vhu_fe_buf b[3];
	uint64_t tok = ++c->seq;
	int id;

	if (r->num_free < (indirect ? 1 : pieces)) {
		c->seq--;
		return false;
	}
	for (unsigned i = 0; i < pieces; i++) {
		b[i].gpa = c->pool[c->next_buf++ % POOL];
		b[i].len = BUFLEN / pieces;
	}
	if (indirect) {
		uint64_t t = c->pool[c->next_buf++ % POOL];

		id = vhu_fe_ring_add_indirect(r, b, writable ? 0 : pieces,
					      writable ? pieces : 0,
					      vhu_fe_gpa_to_ptr(c->e.fe, t, 48), t,
					      (void *)(uintptr_t)tok);
	} else {
		id = vhu_fe_ring_add(r, b, writable ? 0 : pieces, writable ? pieces : 0,
				     (void *)(uintptr_t)tok);
	}
	ck_assert_int_ge(id, 0);
	c->outstanding++;
	return true;
}

/* The driver reaps what is used; every token must come back once. */
static unsigned reap(struct rec *c)
{
	struct vhu_fe_ring *r = ring(&c->e, 0);
	unsigned n = 0;
	void *tok;
	int rc;

	while ((rc = vhu_fe_ring_get_used(r, NULL, NULL, &tok)) == 1) {
		uint64_t t = (uintptr_t)tok;

		FAST(t >= c->first_live && t <= c->seq);
		FAST(c->seen[t % 4096] == 0);
		c->seen[t % 4096] = 1;
		while (c->first_live <= c->seq && c->seen[c->first_live % 4096]) {
			c->seen[c->first_live % 4096] = 0;
			c->first_live++;
		}
		c->outstanding--;
		n++;
	}
	ck_assert_msg(rc == 0, "the driver got a used id not in flight (token %llu..%llu)",
		      (unsigned long long)c->first_live, (unsigned long long)c->seq);
	return n;
}

/* Requests popped at once; used in order of the pop. */
struct taken {
	struct vhu_req reqs[MAXB];
	struct vhu_seg segs[MAXB * 3];
	int n;
};

static void take(struct rec *c, struct taken *t, unsigned max)
{
	struct vhu_vq *vq = vhu_dev_vq(c->e.dev, 0);

	ck_assert(vhu_vq_begin(vq) & VHU_VQ_RUNNING);
	t->n = vhu_vq_pop(vq, t->reqs, max, t->segs, MAXB * 3);
	vhu_vq_end(vq);
	ck_assert_int_ge(t->n, 0);
}

static void give_back(struct rec *c, struct taken *t, int from, int n)
{
	struct vhu_vq *vq = vhu_dev_vq(c->e.dev, 0);
	uint32_t written[MAXB];
	bool any_in = false;

	for (int i = from; i < from + n; i++) {
		written[i - from] = t->reqs[i].in_len;
		any_in |= t->reqs[i].in_len > 0;
		for (unsigned s = t->reqs[i].nr_out; s < t->reqs[i].nr_out + t->reqs[i].nr_in; s++)
			memset(t->reqs[i].segs[s].addr, 0x5a, t->reqs[i].segs[s].len);
	}
	ck_assert(vhu_vq_begin(vq) & VHU_VQ_RUNNING);
	/* Read-only batches go back as one used descriptor with in-order. */
	ck_assert_int_eq(vhu_vq_push(vq, &t->reqs[from], any_in ? written : NULL,
				     (unsigned)n), 0);
	vhu_vq_notify(vq);
	vhu_vq_end(vq);
}

/*
 * What vhu_vq_push() leaves when it dies after writing @n used
 * descriptors for t->reqs[from..] but before the first one's flags (the
 * flags of the others go as they are written; the first one's last).
 */
static void half_push(struct rec *c, struct taken *t, int from, int n)
{
	struct vhu_queue_info qi;
	struct vhu_fe_packed_desc *descs = ring(&c->e, 0)->desc;
	uint16_t pos;
	bool wrap;

	tu_backend_lock(c->e.be);
	vhu_dev_queue_info(c->e.dev, 0, &qi);
	tu_backend_unlock(c->e.be);
	pos = qi.used_idx;
	wrap = qi.used_wrap;
	if (!c->e.packed) {
		/* Split: the entries written, used->idx not yet. */
		struct vhu_fe_used_elem *u =
			(void *)((uint8_t *)ring(&c->e, 0)->used + 4);

		for (int i = from; i < from + n; i++, pos++) {
			vhu_fe_st32(&u[pos % QSIZE].id, t->reqs[i].id);
			vhu_fe_st32(&u[pos % QSIZE].len, t->reqs[i].in_len);
		}
		return;
	}
	for (int i = from; i < from + n; i++) {
		struct vhu_fe_packed_desc *d = &descs[pos];
		uint32_t len = t->reqs[i].in_len;
		uint16_t f = (wrap ? VHU_FE_DESC_F_AVAIL | VHU_FE_DESC_F_USED : 0) |
			     (len ? VHU_FE_DESC_F_WRITE : 0);

		vhu_fe_st16(&d->id, t->reqs[i].id);
		vhu_fe_st32(&d->len, len);
		vhu_fe_st64(&d->addr, VHU_USED_TAG | t->reqs[i].ndesc);
		/* the skip marks, unless it died before them too */
		for (unsigned k = 1; !(c->seq & 1) && k < t->reqs[i].ndesc; k++)
			vhu_fe_st64(&descs[(pos + k) % QSIZE].addr, VHU_SKIP_TAG);
		if (i > from)
			vhu_fe_st16(&d->flags, f);
		pos = (uint16_t)(pos + t->reqs[i].ndesc);
		if (pos >= QSIZE) {
			pos = (uint16_t)(pos - QSIZE);
			wrap = !wrap;
		}
	}
}

/* The back-end dies; QEMU reconnects it with the crash base; then
 * @ready says when the device is up. */
static void crash_and_restart_until(struct rec *c, int (*ready)(void *))
{
	struct vhu_fe_handshake_opts h = c->e.h;

	vhu_fe_disconnect(c->e.fe);
	ck_assert_int_eq(tu_backend_wait(c->e.be, dev_gone, &c->e, TMO), 1);
	ck_assert_int_eq(vhu_fe_reconnect(c->e.fe, TMO), 0);
	h.keep_rings = true;
	h.crash_base = true;
	ck_assert_int_eq(vhu_fe_handshake(c->e.fe, &h, NULL), 0);
	ck_assert_int_eq(tu_backend_wait(c->e.be, ready, &c->e, TMO), 1);
}

static void crash_and_restart(struct rec *c)
{
	crash_and_restart_until(c, dev_ready);
}

/* The device's and the driver's positions and the descriptor ring. */
static void dump(struct rec *c)
{
	struct vhu_fe_ring *r = ring(&c->e, 0);
	struct vhu_fe_packed_desc *d = r->desc;
	struct vhu_queue_info qi;

	vhu_dev_queue_info(c->e.dev, 0, &qi);
	fprintf(stderr, "dev: avail %u/%d used %u/%d; drv next_avail %u/%d last_used %u/%d\n",
		qi.last_avail_idx, qi.avail_wrap, qi.used_idx, qi.used_wrap,
		r->next_avail, r->avail_wrap, r->last_used, r->used_wrap);
	for (int i = 0; i < QSIZE; i++)
		fprintf(stderr, " slot %d flags %04x id %u len %u addr %llx\n", i,
			vhu_fe_ld16(&d[i].flags), vhu_fe_ld16(&d[i].id),
			vhu_fe_ld32(&d[i].len), (unsigned long long)vhu_fe_ld64(&d[i].addr));
}

/* Run the queue until the driver has everything back. */
static void drain(struct rec *c, unsigned round)
{
	for (int spin = 0; c->outstanding && spin < 20000; spin++) {
		struct taken t;

		take(c, &t, MAXB);
		if (t.n > 0)
			give_back(c, &t, 0, t.n);
		if (!reap(c) && t.n == 0)
			usleep(50);
	}
	if (c->outstanding)
		dump(c);
	ck_assert_msg(c->outstanding == 0, "round %u: %u buffers never came back after "
		      "the restart", round, c->outstanding);
}

START_TEST(crash_at_every_point)
{
	struct rec c;
	unsigned rounds = tu_under_valgrind() ? 60 : 600;

	/* packed, packed in-order, split, split in-order (event index on) */
	rec_up(&c, _i < 2, _i & 1, 1234 + (unsigned)_i);
	for (unsigned round = 0; round < rounds; round++) {
		struct taken t;
		unsigned want = 1 + round % MAXB, added = 0;
		int popped, pushed, half;

		while (added < want && add_one(&c))
			added++;
		ck_assert_int_eq(vhu_fe_queue_notify(c.e.fe, 0), 0);
		take(&c, &t, (unsigned)(round / MAXB) % (MAXB + 1));
		popped = t.n;
		pushed = popped ? (int)(round % (unsigned)(popped + 1)) : 0;
		half = popped - pushed ? (int)((round / 7) % (unsigned)(popped - pushed + 1)) : 0;
		if (pushed)
			give_back(&c, &t, 0, pushed);
		if (half)
			half_push(&c, &t, pushed, half);
		if (round % 3 == 0)
			reap(&c); /* the driver sometimes sees the pushes first */
		if (getenv("VHU_TEST_TRACE")) { /* the ring at each crash */
			fprintf(stderr, "in-order %d round %u: added %u popped %d "
				"pushed %d half-pushed %d\n", c.in_order, round, added,
				popped, pushed, half);
			dump(&c);
		}
		crash_and_restart(&c);
		drain(&c, round);
	}
	env_down(&c.e);
}
END_TEST

/* A clean stop (GET_VRING_BASE) and a restart at the base it gave: the
 * ring agrees, nothing is taken twice. */
START_TEST(clean_restart_keeps_base)
{
	struct rec c;
	uint32_t base;

	rec_up(&c, true, false, 99);
	for (int round = 0; round < 3 * QSIZE; round++) {
		struct taken t;

		add_one(&c);
		ck_assert_int_eq(vhu_fe_queue_notify(c.e.fe, 0), 0);
		take(&c, &t, 1);
		if (t.n)
			give_back(&c, &t, 0, t.n);
		reap(&c);
		tu_log_clear();
		ck_assert_int_eq(vhu_fe_get_vring_base(c.e.fe, 0, &base), 0);
		ck_assert_int_eq(vhu_fe_queue_start(c.e.fe, 0), 0);
		fe_sync(&c.e);
		ck_assert(!tu_log_contains("resumes at slot"));
	}
	drain(&c, 0);
	env_down(&c.e);
}
END_TEST

/*
 * Class 45: rings in any state at all.  The descriptor ring is filled
 * with random flags, ids and addresses (some with vhu's tag, some with a
 * tag claiming too many descriptors), the back-end restarts on it: the
 * queue either starts at a position where the ring is consistent or is
 * broken, the scan is bounded, and the device and a bystander go on.
 */
START_TEST(hostile_rings)
{
	struct rec c;
	unsigned rounds = tu_under_valgrind() ? 40 : 400, broken = 0, started = 0;
	static const uint16_t bits[] = {
		VHU_FE_DESC_F_AVAIL, VHU_FE_DESC_F_USED, VHU_FE_DESC_F_NEXT,
		VHU_FE_DESC_F_WRITE, VHU_FE_DESC_F_INDIRECT,
	};

	rec_up(&c, true, false, 4242);
	for (unsigned round = 0; round < rounds; round++) {
		struct vhu_fe_packed_desc *d = ring(&c.e, 0)->desc;
		struct vhu_queue_info qi;
		struct taken t;

		for (unsigned s = 0; s < QSIZE; s++) {
			uint16_t f = 0;
			unsigned kind = rand_r(&c.rs) % 4;

			for (unsigned b = 0; b < 5; b++)
				if (rand_r(&c.rs) & 1)
					f |= bits[b];
			vhu_fe_st16(&d[s].flags, f);
			vhu_fe_st16(&d[s].id, (uint16_t)rand_r(&c.rs));
			vhu_fe_st32(&d[s].len, (uint32_t)rand_r(&c.rs) % 1024);
			vhu_fe_st64(&d[s].addr,
				    kind == 0 ? VHU_USED_TAG | (rand_r(&c.rs) % (3 * QSIZE)) :
				    kind == 1 ? c.pool[rand_r(&c.rs) % POOL] :
						(uint64_t)rand_r(&c.rs) << 20);
		}
		crash_and_restart_until(&c, q0_started);
		tu_backend_lock(c.e.be);
		vhu_dev_queue_info(c.e.dev, 0, &qi);
		tu_backend_unlock(c.e.be);
		ck_assert(qi.started);
		if (qi.broken) {
			broken++;
			ck_assert(tu_log_contains("fits no device position"));
			continue;
		}
		started++;
		ck_assert_uint_eq(qi.used_idx, qi.last_avail_idx);
		ck_assert(qi.used_wrap == qi.avail_wrap);
		/* whatever it takes from there is checked as always */
		struct vhu_vq *vq = vhu_dev_vq(c.e.dev, 0);

		vhu_vq_begin(vq);
		t.n = vhu_vq_pop(vq, t.reqs, MAXB, t.segs, MAXB * 3);
		vhu_vq_end(vq);
		ck_assert_int_ge(t.n, -EIO);
	}
	/* both outcomes happen: the rule is neither always yes nor no */
	ck_assert_uint_gt(broken, 0);
	ck_assert_uint_gt(started, 0);
	aftermath_env(&c.e);
	env_down(&c.e);
}
END_TEST

static Suite *recover_suite(void)
{
	Suite *s = suite_create("recover");
	TCase *b = tcase_create("crash");
	TCase *h = tcase_create("hostile");

	tcase_set_timeout(b, 240);
	tcase_set_timeout(h, 240);
	tcase_add_loop_test(b, crash_at_every_point, 0, 4);
	tcase_add_test(b, clean_restart_keeps_base);
	tcase_add_checked_fixture(h, aftermath_setup, aftermath_teardown);
	tcase_add_test(h, hostile_rings);
	suite_add_tcase(s, b);
	suite_add_tcase(s, h);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(recover_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
