/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * End to end through a real socket: the test frontend negotiates, lays out
 * rings in guest memory and drives them as a Linux driver would; the
 * library's data plane (vhu/vq.h) serves them as an echo device that
 * copies each request's readable bytes, transformed, into its writable
 * buffers.  Split and packed, in order or not, direct and indirect chains,
 * buffers straddling two memory regions, and used-buffer notifications.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vhu/vhu.h>
#include <vhu/vq.h>

#include "fe.h"
#include "testutil.h"

#define NQ 2
#define TMO 3000
#define MAXREQ 32
#define MAXSEG 256

struct loop {
	struct vhu_dev *dev;
	struct tu_backend *be;
	struct vhu_fe *fe;
	const char *path;
	int fds_before;
};

static int pred_ready(void *a)
{
	return vhu_dev_is_ready(((struct loop *)a)->dev);
}

static int pred_disconnected(void *a)
{
	return !vhu_dev_is_connected(((struct loop *)a)->dev);
}

static void loop_start(struct loop *l, bool packed, bool in_order,
		       bool event_idx, uint16_t ring_size)
{
	struct vhu_dev_opts o = {
		.sz = sizeof(o), .name = "loop", .num_queues = NQ,
		.min_ready_queues = NQ, .log = tu_log,
		.log_level = VHU_LOG_DEBUG,
	};
	struct vhu_fe_handshake_opts ho = {
		.sz = sizeof(ho), .num_queues = NQ, .ring_size = ring_size,
		.packed = packed, .in_order = in_order,
		.features_off = event_idx ? 0 : VHU_BIT(VHU_F_EVENT_IDX),
	};
	int rc;

	memset(l, 0, sizeof(*l));
	tu_log_clear();
	l->fds_before = tu_count_fds();
	l->path = strdup(tu_sock_path("loop"));
	l->dev = vhu_dev_new(&o);
	ck_assert_ptr_nonnull(l->dev);
	ck_assert_int_eq(vhu_dev_listen(l->dev, l->path), 0);
	l->be = tu_backend_start(l->dev);
	ck_assert_ptr_nonnull(l->be);
	l->fe = vhu_fe_connect(l->path, TMO);
	ck_assert_ptr_nonnull(l->fe);
	rc = vhu_fe_handshake(l->fe, &ho, NULL);
	ck_assert_msg(rc == 0, "handshake: %s", strerror(-rc));
	ck_assert(tu_backend_wait(l->be, pred_ready, l, TMO));
}

static void loop_stop(struct loop *l)
{
	vhu_fe_free(l->fe);
	ck_assert(tu_backend_wait(l->be, pred_disconnected, l, TMO));
	tu_backend_stop(l->be);
	vhu_dev_free(l->dev);
	unlink(l->path);
	free((void *)l->path);
	ck_assert_int_eq(tu_count_fds(), l->fds_before);
}

/* The device: echo every request, byte i of the output = ~input[i]. */
static unsigned device_burst(struct vhu_vq *vq, int *notified)
{
	struct vhu_req reqs[MAXREQ];
	struct vhu_seg segs[MAXSEG];
	uint32_t written[MAXREQ];
	unsigned st, total = 0;
	int n;

	st = vhu_vq_begin(vq);
	ck_assert(st & VHU_VQ_RUNNING);
	ck_assert(!(st & VHU_VQ_BROKEN));
	n = vhu_vq_pop(vq, reqs, MAXREQ, segs, MAXSEG);
	ck_assert_int_ge(n, 0);
	for (int i = 0; i < n; i++) {
		struct vhu_req *r = &reqs[i];
		uint8_t in[16384];
		uint32_t got = 0, put = 0;

		ck_assert_uint_le(r->out_len, sizeof(in));
		for (unsigned k = 0; k < r->nr_out; k++) {
			memcpy(in + got, r->segs[k].addr, r->segs[k].len);
			got += r->segs[k].len;
		}
		ck_assert_uint_eq(got, r->out_len);
		for (unsigned k = r->nr_out; k < r->nr_out + r->nr_in && put < got; k++) {
			uint32_t c = r->segs[k].len < got - put ? r->segs[k].len
								 : got - put;
			uint8_t *p = r->segs[k].addr;

			for (uint32_t j = 0; j < c; j++)
				p[j] = (uint8_t)~in[put + j];
			put += c;
		}
		written[i] = put;
	}
	if (n > 0)
		ck_assert_int_eq(vhu_vq_push(vq, reqs, written, (unsigned)n), 0);
	*notified = vhu_vq_notify(vq);
	ck_assert_int_ge(*notified, 0);
	vhu_vq_end(vq);
	total += (unsigned)n;
	return total;
}

struct pending {
	uint64_t out_gpa, in_gpa;
	uint32_t len;
	uint8_t seed;
	bool live;
};

static void fill(struct vhu_fe *fe, uint64_t gpa, uint32_t len, uint8_t seed)
{
	uint8_t buf[16384];

	for (uint32_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed + i * 7);
	ck_assert_int_eq(vhu_fe_mem_write(fe, gpa, buf, len), 0);
}

static void check_echo(struct vhu_fe *fe, const struct pending *p, uint32_t len)
{
	uint8_t buf[16384], want[16384];

	ck_assert_uint_eq(len, p->len);
	ck_assert_int_eq(vhu_fe_mem_read(fe, p->in_gpa, buf, len), 0);
	for (uint32_t i = 0; i < len; i++)
		want[i] = (uint8_t)~(uint8_t)(p->seed + i * 7);
	ck_assert(memcmp(buf, want, len) == 0);
}

/*
 * Rounds of: add up to @batch requests (an out buffer and an in buffer
 * each, split in two descriptors each, sometimes through an indirect
 * table, the first one of a run straddling two regions), publish, kick if
 * wanted, let the device take them, reap and check.
 */
static void traffic(bool packed, bool in_order, bool event_idx, bool indirect)
{
	struct loop l;
	struct vhu_vq *vq;
	struct pending *p;
	uint64_t straddle, table_gpa, bufs_gpa;
	uint16_t num = 64;
	unsigned done = 0, rounds = 100;

	loop_start(&l, packed, in_order, event_idx, num);
	tu_backend_lock(l.be);
	vq = vhu_dev_vq(l.dev, 0);
	tu_backend_unlock(l.be);
	ck_assert_ptr_nonnull(vq);
	p = calloc(num, sizeof(*p));
	ck_assert_int_eq(vhu_fe_mem_alloc_straddle(l.fe, 8192, &straddle), 0);
	ck_assert_int_eq(vhu_fe_mem_alloc(l.fe, num * 64u, 16, &table_gpa), 0);
	ck_assert_int_eq(vhu_fe_mem_alloc(l.fe, num * 16384u, 4096, &bufs_gpa), 0);

	for (unsigned round = 0; round < rounds; round++) {
		struct vhu_fe_ring *r = vhu_fe_queue_ring(l.fe, 0);
		unsigned want = 1 + (unsigned)random() % 8, added = 0, reaped = 0;
		int notified = 0;
		uint16_t id;
		uint32_t len;
		void *tok;

		for (; added < want; added++) {
			struct pending *q = NULL;
			struct vhu_fe_buf b[4];
			unsigned slot;
			int rc;

			for (slot = 0; slot < num; slot++)
				if (!p[slot].live) {
					q = &p[slot];
					break;
				}
			if (!q)
				break;
			q->len = 1 + (uint32_t)random() % 6000;
			q->seed = (uint8_t)random();
			if (added == 0 && round % 3 == 0) {
				/* out straddles regions 0 and 1 */
				q->out_gpa = straddle + 4096 - q->len / 2;
			} else {
				q->out_gpa = bufs_gpa + slot * 16384u;
			}
			q->in_gpa = bufs_gpa + slot * 16384u + 8192;
			fill(l.fe, q->out_gpa, q->len, q->seed);
			ck_assert_int_eq(vhu_fe_mem_write(l.fe, q->in_gpa,
							  (uint8_t[8192]){ 0 }, 8192), 0);
			/* Two descriptors each way when there is enough. */
			b[0] = (struct vhu_fe_buf){ q->out_gpa, q->len / 2 };
			b[1] = (struct vhu_fe_buf){ q->out_gpa + q->len / 2,
						    q->len - q->len / 2 };
			b[2] = (struct vhu_fe_buf){ q->in_gpa, 100 };
			b[3] = (struct vhu_fe_buf){ q->in_gpa + 100, 8092 };
			if (q->len / 2 == 0)
				b[0] = b[1];
			if (indirect && random() % 2)
				rc = vhu_fe_ring_add_indirect(
					r, q->len / 2 ? b : b + 1, q->len / 2 ? 2 : 1, 2,
					vhu_fe_gpa_to_ptr(l.fe, table_gpa + slot * 64u, 64),
					table_gpa + slot * 64u, q);
			else
				rc = q->len / 2 ? vhu_fe_ring_add(r, b, 2, 2, q)
						: vhu_fe_ring_add(r, b + 1, 1, 2, q);
			if (rc == -ENOSPC)
				break;
			ck_assert_int_ge(rc, 0);
			q->live = true;
		}
		ck_assert_int_eq(vhu_fe_queue_notify(l.fe, 0), 0);

		while (reaped < added) {
			int rc;

			device_burst(vq, &notified);
			if (notified) {
				uint64_t cnt;

				ck_assert_int_eq(vhu_fe_queue_wait_call(l.fe, 0, TMO, &cnt), 0);
			}
			while ((rc = vhu_fe_ring_get_used(r, &id, &len, &tok)) == 1) {
				struct pending *q = tok;

				ck_assert(q->live);
				check_echo(l.fe, q, len);
				q->live = false;
				reaped++;
			}
			ck_assert_int_eq(rc, 0);
		}
		done += reaped;
		/* With interrupts wanted, the last burst must have signalled. */
		ck_assert_int_eq(notified, 1);
	}
	ck_assert_uint_gt(done, rounds);
	{
		struct vhu_vq_stats st;

		vhu_vq_stats(vq, &st);
		ck_assert_uint_eq(st.popped, done);
		ck_assert_uint_eq(st.pushed, done);
		ck_assert_uint_eq(st.errors, 0);
	}
	free(p);
	loop_stop(&l);
}

START_TEST(split_echo)
{
	traffic(false, false, true, false);
}
END_TEST

START_TEST(split_echo_indirect_no_event_idx)
{
	traffic(false, false, false, true);
}
END_TEST

START_TEST(split_echo_in_order)
{
	traffic(false, true, true, true);
}
END_TEST

START_TEST(packed_echo)
{
	traffic(true, false, true, false);
}
END_TEST

START_TEST(packed_echo_indirect_no_event_idx)
{
	traffic(true, false, false, true);
}
END_TEST

START_TEST(packed_echo_in_order)
{
	traffic(true, true, true, true);
}
END_TEST

/*
 * Packed ring, event index: the device's used index wraps between two
 * notification checks while the driver, reaping meanwhile, moved its event
 * offset into the new lap.  The used entry the driver asked about is
 * written in the same burst, so the device must signal.
 */
START_TEST(packed_event_idx_across_wrap)
{
	struct vhu_req reqs[8];
	struct vhu_seg segs[16];
	struct vhu_fe_ring *r;
	struct vhu_vq *vq;
	struct loop l;
	uint64_t gpa;

	loop_start(&l, true, false, true, 8);
	tu_backend_lock(l.be);
	vq = vhu_dev_vq(l.dev, 0);
	tu_backend_unlock(l.be);
	r = vhu_fe_queue_ring(l.fe, 0);
	ck_assert(r->event_idx);
	vhu_fe_ring_enable_cb(r);
	ck_assert_int_eq(vhu_fe_mem_alloc(l.fe, 4096, 0, &gpa), 0);

	/* Six buffers through: used index 6, wrap 1, signalled. */
	for (int i = 0; i < 6; i++)
		ck_assert_int_ge(vhu_fe_ring_add(r, &(struct vhu_fe_buf){ gpa, 64 },
						 1, 0, NULL), 0);
	ck_assert_int_eq(vhu_fe_queue_notify(l.fe, 0), 0);
	ck_assert(vhu_vq_begin(vq) & VHU_VQ_RUNNING);
	ck_assert_int_eq(vhu_vq_pop(vq, reqs, 8, segs, 16), 6);
	ck_assert_int_eq(vhu_vq_push(vq, reqs, NULL, 6), 0);
	ck_assert_int_eq(vhu_vq_notify(vq), 1);
	vhu_vq_end(vq);
	ck_assert_int_eq(vhu_fe_queue_wait_call(l.fe, 0, TMO, NULL), 0);
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(vhu_fe_ring_get_used(r, NULL, NULL, NULL), 1);

	/* Four more (slots 6, 7, 0, 1).  Three come back, crossing the end of
	 * the ring; the driver reaps them, so it now waits for slot 1 of the
	 * new lap; the fourth is used: that is the one it asked about. */
	for (int i = 0; i < 4; i++)
		ck_assert_int_ge(vhu_fe_ring_add(r, &(struct vhu_fe_buf){ gpa, 64 },
						 1, 0, NULL), 0);
	ck_assert_int_eq(vhu_fe_queue_notify(l.fe, 0), 0);
	ck_assert(vhu_vq_begin(vq) & VHU_VQ_RUNNING);
	ck_assert_int_eq(vhu_vq_pop(vq, reqs, 8, segs, 16), 4);
	ck_assert_int_eq(vhu_vq_push(vq, reqs, NULL, 3), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(vhu_fe_ring_get_used(r, NULL, NULL, NULL), 1);
	ck_assert_uint_eq(r->last_used, 1);
	ck_assert(!r->used_wrap);
	ck_assert_int_eq(vhu_vq_push(vq, reqs + 3, NULL, 1), 0);
	ck_assert_int_eq(vhu_vq_notify(vq), 1);
	vhu_vq_end(vq);
	ck_assert_int_eq(vhu_fe_queue_wait_call(l.fe, 0, TMO, NULL), 0);
	ck_assert_int_eq(vhu_fe_ring_get_used(r, NULL, NULL, NULL), 1);
	loop_stop(&l);
}
END_TEST

/* In-band notifications both ways: VRING_KICK messages in, VRING_CALL
 * back-end requests out, no eventfd on queue 0. */
START_TEST(inband_notifications)
{
	struct vhu_fe_handshake_opts ho = {
		.sz = sizeof(ho), .num_queues = NQ, .ring_size = 16,
		.inband_notifications = true, .need_reply = true,
	};
	struct vhu_queue_info qi;
	struct vhu_req reqs[4];
	struct vhu_seg segs[8];
	struct vhu_fe_ring *r;
	struct vhu_vq *vq;
	struct loop l;
	uint64_t gpa, cnt = 0;
	uint32_t base;

	loop_start(&l, false, false, true, 16);
	vhu_fe_free(l.fe); /* again, with in-band notifications */
	ck_assert(tu_backend_wait(l.be, pred_disconnected, &l, TMO));
	l.fe = vhu_fe_connect(l.path, TMO);
	ck_assert_ptr_nonnull(l.fe);
	ck_assert_int_eq(vhu_fe_handshake(l.fe, &ho, NULL), 0);
	ck_assert(tu_backend_wait(l.be, pred_ready, &l, TMO));
	ck_assert(vhu_fe_acked_protocol_features(l.fe) &
		  VHU_BIT(VHU_PF_INBAND_NOTIFICATIONS));
	ck_assert_int_eq(vhu_fe_get_vring_base(l.fe, 0, &base), 0);
	ck_assert_int_eq(vhu_fe_queue_set_inband(l.fe, 0, true), 0);
	ck_assert_int_eq(vhu_fe_queue_start(l.fe, 0), 0);
	tu_backend_lock(l.be);
	ck_assert_int_eq(vhu_dev_queue_info(l.dev, 0, &qi), 0);
	vq = vhu_dev_vq(l.dev, 0);
	tu_backend_unlock(l.be);
	ck_assert(qi.started);
	ck_assert_int_eq(qi.kick_fd, -1);
	ck_assert_int_eq(qi.call_fd, -1);

	r = vhu_fe_queue_ring(l.fe, 0);
	ck_assert_int_eq(vhu_fe_mem_alloc(l.fe, 4096, 0, &gpa), 0);
	ck_assert_int_ge(vhu_fe_ring_add(r, &(struct vhu_fe_buf){ gpa, 64 }, 1, 0,
					 NULL), 0);
	ck_assert_int_eq(vhu_fe_queue_notify(l.fe, 0), 0); /* VRING_KICK */
	ck_assert(vhu_vq_begin(vq) & VHU_VQ_RUNNING);
	ck_assert_int_eq(vhu_vq_pop(vq, reqs, 4, segs, 8), 1);
	ck_assert_int_eq(vhu_vq_push(vq, reqs, NULL, 1), 0);
	ck_assert_int_eq(vhu_vq_notify(vq), 1); /* VRING_CALL */
	vhu_vq_end(vq);
	ck_assert_int_eq(vhu_fe_queue_wait_call(l.fe, 0, TMO, &cnt), 0);
	ck_assert_uint_eq(cnt, 1);
	ck_assert_int_eq(vhu_fe_ring_get_used(r, NULL, NULL, NULL), 1);
	loop_stop(&l);
}
END_TEST

static Suite *loop_suite(void)
{
	Suite *s = suite_create("fe_loop");
	TCase *tc = tcase_create("echo");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, split_echo);
	tcase_add_test(tc, split_echo_indirect_no_event_idx);
	tcase_add_test(tc, split_echo_in_order);
	tcase_add_test(tc, packed_echo);
	tcase_add_test(tc, packed_echo_indirect_no_event_idx);
	tcase_add_test(tc, packed_echo_in_order);
	tcase_add_test(tc, packed_event_idx_across_wrap);
	tcase_add_test(tc, inband_notifications);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	srandom(42);
	return tu_run_suite(loop_suite());
}
