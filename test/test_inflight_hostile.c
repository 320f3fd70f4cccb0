/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Hostile inflight regions and messages (shared/HOSTILE-INPUTS.md class
 * 44): GET/SET_INFLIGHT_FD with shapes the device cannot have, regions
 * that lie past their file or cannot be mapped, SET_INFLIGHT_FD while a
 * queue runs; and regions whose content the front-end rewrote before the
 * ring started again (split and packed: sizes, versions, indexes, lists
 * with cycles, flags, counters, ids).  Each is refused or breaks queue 0
 * only, with a log line that says why; queue 1 and the device go on, and
 * the aftermath checks (util/aftermath.h) pass.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vhu/vhu.h>

#include "aftermath.h"
#include "fe.h"
#include "memory/inflight.h" /* the region's layout */
#include "testutil.h"
#include "vqenv.h"

#define QS 8

static void up(struct env *e, bool packed)
{
	struct env_opts o = { .packed = packed, .qsize = QS, .inflight = true };

	env_up(e, &o);
	vhu_fe_set_need_reply(e->fe, true);
}

static uint32_t stop_q(struct env *e, uint32_t q)
{
	uint32_t base;

	ck_assert_int_eq(vhu_fe_get_vring_base(e->fe, q, &base), 0);
	return base;
}

static void start_q(struct env *e, uint32_t q, uint32_t base)
{
	struct vhu_fe_ring *r = ring(e, (int)q);

	ck_assert_int_eq(vhu_fe_set_vring_num(e->fe, q, r->num), 0);
	ck_assert_int_eq(vhu_fe_set_vring_addr(e->fe, q,
					       vhu_fe_gpa_to_uva(e->fe, r->desc_gpa),
					       vhu_fe_gpa_to_uva(e->fe, r->used_gpa),
					       vhu_fe_gpa_to_uva(e->fe, r->avail_gpa), 0), 0);
	ck_assert_int_eq(vhu_fe_set_vring_base(e->fe, q, base), 0);
	ck_assert_int_eq(vhu_fe_set_vring_kick(e->fe, q, vhu_fe_queue_kick_fd(e->fe, q)), 0);
	ck_assert_int_eq(vhu_fe_set_vring_call(e->fe, q, vhu_fe_queue_call_fd(e->fe, q)), 0);
	fe_sync(e);
}

static bool q_broken(struct env *e, uint16_t q)
{
	struct vhu_vq *vq = vhu_dev_vq(e->dev, q);
	bool b = vhu_vq_begin(vq) & VHU_VQ_BROKEN;

	vhu_vq_end(vq);
	return b;
}

/* ---- messages ------------------------------------------------------- */

enum msg_case {
	G_NQ0, G_NQ_BIG, G_QS0, G_QS_BIG,
	S_NQ0, S_NQ_BIG, S_QS0, S_QS_BIG, S_SMALL, S_PAST_EOF, S_OVERFLOW,
	S_HUGE, S_PIPE, S_SOCKET, S_DIR, S_RDONLY, S_NOFD, S_RUNNING,
	S_OTHER_SIZE, S_PACKED_SPLIT_SIZED, MSG_CASES
};

static const char *const msg_expect[MSG_CASES] = {
	[G_NQ0] = "GET_INFLIGHT_FD: 0 queues",
	[G_NQ_BIG] = "GET_INFLIGHT_FD: 3 queues",
	[G_QS0] = "GET_INFLIGHT_FD: queue size 0",
	[G_QS_BIG] = "GET_INFLIGHT_FD: queue size 40000",
	[S_NQ0] = "SET_INFLIGHT_FD: 0 queues",
	[S_NQ_BIG] = "SET_INFLIGHT_FD: 3 queues",
	[S_QS0] = "SET_INFLIGHT_FD: queue size 0",
	[S_QS_BIG] = "SET_INFLIGHT_FD: queue size 40000",
	[S_SMALL] = "need 0x",
	[S_PAST_EOF] = "holding bytes up to",
	[S_OVERFLOW] = "no overflow",
	[S_HUGE] = "at most 4 GiB",
	[S_PIPE] = "not a regular file",
	[S_SOCKET] = "not a regular file",
	[S_DIR] = "not a regular file",
	[S_RDONLY] = "SET_INFLIGHT_FD: mmap of",
	[S_NOFD] = "SET_INFLIGHT_FD: 0 file descriptors attached",
	[S_RUNNING] = "SET_INFLIGHT_FD while queues run",
	[S_OTHER_SIZE] = "has no part in the inflight region",
	[S_PACKED_SPLIT_SIZED] = "has no part in the inflight region",
};

START_TEST(hostile_messages)
{
	enum msg_case c = (enum msg_case)_i;
	bool packed = c == S_PACKED_SPLIT_SIZED;
	struct vhu_fe_inflight fi;
	uint64_t size, off, sz;
	uint16_t nq = 2, qs = QS;
	uint32_t base[2] = { 0, 0 };
	int fd = -1, rc, own = -1;
	struct env e;

	up(&e, packed);
	vhu_fe_inflight(e.fe, &fi);
	ck_assert_int_ge(fi.fd, 0);
	tu_log_clear();
	if (c <= G_QS_BIG) {
		nq = c == G_NQ0 ? 0 : c == G_NQ_BIG ? 3 : 2;
		qs = c == G_QS0 ? 0 : c == G_QS_BIG ? 40000 : QS;
		ck_assert_int_eq(vhu_fe_get_inflight_fd(e.fe, nq, qs, &fd, &size, &off), 0);
		/* an empty answer: the front-end runs untracked */
		ck_assert_int_eq(fd, -1);
		ck_assert_uint_eq(size, 0);
		goto check;
	}
	if (c != S_RUNNING) {
		base[0] = stop_q(&e, 0);
		base[1] = stop_q(&e, 1);
	}
	fd = fi.fd;
	size = fi.mmap_size;
	off = 0;
	sz = vhu_inflight_queue_bytes(QS, false) * 2;
	switch (c) {
	case S_NQ0: nq = 0; break;
	case S_NQ_BIG: nq = 3; break;
	case S_QS0: qs = 0; break;
	case S_QS_BIG: qs = 40000; break;
	case S_SMALL: size = sz - 1; break;
	case S_PAST_EOF: off = 64; break;
	case S_OVERFLOW: off = UINT64_MAX - 100; break;
	case S_HUGE: size = (1ull << 32) + 4096; break;
	case S_PIPE: {
		int p[2];

		ck_assert_int_eq(pipe(p), 0);
		close(p[1]);
		fd = own = p[0];
		break;
	}
	case S_SOCKET: fd = own = socket(AF_UNIX, SOCK_STREAM, 0); break;
	case S_DIR: fd = own = open("/", O_RDONLY | O_DIRECTORY); break;
	case S_RDONLY: {
		char path[64];

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fi.fd);
		fd = own = open(path, O_RDONLY);
		break;
	}
	case S_NOFD: fd = -1; break;
	case S_OTHER_SIZE: qs = 2 * QS; size = vhu_inflight_queue_bytes(2 * QS, true) * 2;
		/* a region of its own, big enough */
		fd = own = memfd_create("ifl", MFD_CLOEXEC);
		ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
		break;
	case S_PACKED_SPLIT_SIZED: size = sz; break;
	default: break;
	}
	ck_assert_int_ge(fd, c == S_NOFD ? -1 : 0);
	rc = vhu_fe_set_inflight_fd(e.fe, fd, size, off, nq, qs);
	if (own >= 0)
		close(own);
	if (c == S_OTHER_SIZE || c == S_PACKED_SPLIT_SIZED) {
		/* taken: the region does not fit the rings, which break */
		ck_assert_int_eq(rc, 0);
		start_q(&e, 0, base[0]);
		start_q(&e, 1, base[1]);
		ck_assert(q_broken(&e, 0));
		ck_assert(q_broken(&e, 1));
		goto check;
	}
	ck_assert_int_eq(rc, -EREMOTEIO);
	ck_assert_msg(tu_log_contains(msg_expect[c]), "no log line with \"%s\"",
		      msg_expect[c]);
	if (c != S_RUNNING) {
		/* the region before stays in force */
		start_q(&e, 0, base[0]);
		start_q(&e, 1, base[1]);
	}
	ck_assert(!q_broken(&e, 0));
	round_trip(&e, 0, false, 0x21);
	round_trip(&e, 1, true, 0x22);
	aftermath_env(&e);
	env_down(&e);
	return;
check:
	ck_assert_msg(tu_log_contains(msg_expect[c]), "no log line with \"%s\"",
		      msg_expect[c]);
	aftermath_env(&e);
	env_down(&e);
}
END_TEST

/* ---- region content ------------------------------------------------- */

enum region_case {
	/* split */
	R_S_DESC_NUM, R_S_VERSION, R_S_BATCH_FAR, R_S_BATCH_HEAD, R_S_FLAG,
	R_S_TOO_MANY, R_S_COUNTER, R_S_BATCH_CYCLE,
	/* packed */
	R_P_DESC_NUM, R_P_VERSION, R_P_USED_RANGE, R_P_WRAP, R_P_FREE_CYCLE,
	R_P_FREE_RANGE, R_P_FLAG, R_P_NUM0, R_P_NUM_BIG, R_P_FLAGS,
	R_P_CHAIN_CYCLE, R_P_CHAIN_LEAVES, R_P_DUP_ID, R_P_COUNTER, R_P_LEAK,
	R_P_LAST, REGION_CASES
};

static const char *const region_expect[REGION_CASES] = {
	[R_S_DESC_NUM] = "inflight region has 16 entries, the ring 8",
	[R_S_VERSION] = "inflight region version 7",
	[R_S_BATCH_FAR] = "behind the ring's",
	[R_S_BATCH_HEAD] = "inflight batch list reaches entry 300",
	[R_S_FLAG] = "inflight flag 2 at entry",
	[R_S_TOO_MANY] = "8 requests in flight; the driver has 2",
	[R_S_COUNTER] = "two inflight requests share a counter",
	[R_S_BATCH_CYCLE] = NULL, /* bounded, either outcome */
	[R_P_DESC_NUM] = "inflight region has 16 entries, the ring 8",
	[R_P_VERSION] = "inflight region version 7",
	[R_P_USED_RANGE] = "inflight indexes out of range",
	[R_P_WRAP] = "inflight indexes out of range",
	[R_P_FREE_CYCLE] = "inflight free list broken",
	[R_P_FREE_RANGE] = "inflight free list broken",
	[R_P_FLAG] = "flag 3, or inside another chain",
	[R_P_NUM0] = "has 0 descriptors",
	[R_P_NUM_BIG] = "has 9 descriptors",
	[R_P_FLAGS] = "flags 0x",
	[R_P_CHAIN_CYCLE] = "twice or a free one",
	[R_P_CHAIN_LEAVES] = "leaves the table",
	[R_P_DUP_ID] = "(ring of 8, unique)",
	[R_P_COUNTER] = "two inflight requests share a counter",
	[R_P_LEAK] = "neither free nor in flight",
	[R_P_LAST] = "(ring of 8, unique)",
};

/* Three requests of two descriptors on queue 0, popped; the second one
 * pushed (out of order) and reaped: two in flight. */
static void hold_two(struct env *e)
{
	struct vhu_vq *vq = vhu_dev_vq(e->dev, 0);
	struct vhu_fe_ring *r = ring(e, 0);
	struct vhu_req reqs[3];
	struct vhu_seg segs[6];
	uint32_t w = 16;

	for (uintptr_t t = 1; t <= 3; t++) {
		struct vhu_fe_buf b[2] = { { galloc(e, 16), 16 }, { galloc(e, 16), 16 } };

		ck_assert_int_ge(vhu_fe_ring_add(r, b, 1, 1, (void *)t), 0);
	}
	vhu_fe_ring_publish(r);
	ck_assert(vhu_vq_begin(vq) & VHU_VQ_RUNNING);
	ck_assert_int_eq(vhu_vq_pop(vq, reqs, 3, segs, 6), 3);
	ck_assert_int_eq(vhu_vq_push(vq, &reqs[1], &w, 1), 0);
	vhu_vq_end(vq);
	ck_assert_int_eq(vhu_fe_ring_get_used(r, NULL, NULL, NULL), 1);
}

/* The entries with the inflight flag, oldest first (two of them). */
static void heads(const uint8_t *base, bool packed, uint16_t h[2])
{
	unsigned n = 0;

	for (uint16_t i = 0; i < QS && n < 3; i++) {
		bool f = packed ? ((const struct vhu_ifl_packed *)base)->desc[i].inflight
				: ((const struct vhu_ifl_split *)base)->desc[i].inflight;

		if (f) {
			ck_assert_uint_lt(n, 2);
			h[n++] = i;
		}
	}
	ck_assert_uint_eq(n, 2);
}

static void corrupt_split(struct vhu_ifl_split *r, enum region_case c, const uint16_t h[2])
{
	switch (c) {
	case R_S_DESC_NUM: r->desc_num = 16; break;
	case R_S_VERSION: r->version = 7; break;
	case R_S_BATCH_FAR: r->used_idx = (uint16_t)(r->used_idx - 9); break;
	case R_S_BATCH_HEAD:
		r->used_idx = (uint16_t)(r->used_idx - 1);
		r->last_batch_head = 300;
		break;
	case R_S_FLAG: r->desc[h[1]].inflight = 2; break;
	case R_S_TOO_MANY:
		for (unsigned i = 0; i < QS; i++) {
			r->desc[i].inflight = 1;
			r->desc[i].counter = 100 + i;
		}
		break;
	case R_S_COUNTER: r->desc[h[1]].counter = r->desc[h[0]].counter; break;
	case R_S_BATCH_CYCLE:
		r->used_idx = (uint16_t)(r->used_idx - 3);
		r->last_batch_head = h[0];
		r->desc[h[0]].next = h[0];
		break;
	default: break;
	}
}

static void corrupt_packed(struct vhu_ifl_packed *r, enum region_case c, const uint16_t h[2])
{
	struct vhu_ifl_packed_desc *d = r->desc;

	switch (c) {
	case R_P_DESC_NUM: r->desc_num = 16; break;
	case R_P_VERSION: r->version = 7; break;
	case R_P_USED_RANGE: r->used_idx = r->old_used_idx = QS; break;
	case R_P_WRAP: r->old_used_wrap_counter = 2; break;
	case R_P_FREE_CYCLE: d[r->free_head].next = r->free_head; break;
	case R_P_FREE_RANGE: d[r->free_head].next = 100; break;
	case R_P_FLAG: d[h[0]].inflight = 3; break;
	case R_P_NUM0: d[h[0]].num = 0; break;
	case R_P_NUM_BIG: d[h[0]].num = 9; break;
	case R_P_FLAGS: d[h[0]].flags &= (uint16_t)~VHU_FE_DESC_F_NEXT; break;
	case R_P_CHAIN_CYCLE: d[h[0]].next = h[0]; break;
	case R_P_CHAIN_LEAVES: d[h[0]].next = 200; break;
	case R_P_DUP_ID: d[d[h[1]].last].id = d[d[h[0]].last].id; break;
	case R_P_COUNTER: d[h[1]].counter = d[h[0]].counter; break;
	case R_P_LEAK: r->free_head = r->old_free_head = d[r->free_head].next; break;
	case R_P_LAST: d[h[0]].last = h[0]; break;
	default: break;
	}
}

START_TEST(hostile_region)
{
	enum region_case c = (enum region_case)_i;
	bool packed = c >= R_P_DESC_NUM;
	struct vhu_fe_inflight fi;
	uint16_t h[2];
	uint32_t base;
	uint8_t *map;
	struct env e;

	up(&e, packed);
	hold_two(&e);
	base = stop_q(&e, 0);
	vhu_fe_inflight(e.fe, &fi);
	map = mmap(NULL, fi.mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fi.fd, 0);
	ck_assert_ptr_ne(map, MAP_FAILED);
	heads(map, packed, h);
	if (packed)
		corrupt_packed((struct vhu_ifl_packed *)map, c, h);
	else
		corrupt_split((struct vhu_ifl_split *)map, c, h);
	tu_log_clear();
	start_q(&e, 0, base);
	if (region_expect[c]) {
		ck_assert_msg(q_broken(&e, 0), "queue 0 runs on a rewritten region");
		ck_assert_msg(tu_log_contains(region_expect[c]), "no log line with \"%s\"",
			      region_expect[c]);
	} else {
		struct vhu_vq *vq = vhu_dev_vq(e.dev, 0);
		struct vhu_req reqs[QS];
		struct vhu_seg segs[2 * QS];

		/* whatever it makes of it, it is bounded and checked */
		vhu_vq_begin(vq);
		ck_assert_int_le(vhu_vq_pop(vq, reqs, QS, segs, 2 * QS), QS);
		vhu_vq_end(vq);
	}
	ck_assert(!q_broken(&e, 1));
	round_trip(&e, 1, false, 0x61);
	munmap(map, fi.mmap_size);
	aftermath_env(&e);
	env_down(&e);
}
END_TEST

static Suite *inflight_hostile_suite(void)
{
	Suite *s = suite_create("inflight_hostile");
	TCase *m = tcase_create("messages");
	TCase *r = tcase_create("region");

	tcase_add_checked_fixture(m, aftermath_setup, aftermath_teardown);
	tcase_add_checked_fixture(r, aftermath_setup, aftermath_teardown);
	tcase_set_timeout(m, 120);
	tcase_set_timeout(r, 120);
	tcase_add_loop_test(m, hostile_messages, 0, MSG_CASES);
	tcase_add_loop_test(r, hostile_region, 0, REGION_CASES);
	suite_add_tcase(s, m);
	suite_add_tcase(s, r);
	return s;
}

int main(void)
{
	return tu_run_suite(inflight_hostile_suite());
}
