/* SPDX-License-Identifier: BSD-3-Clause */
#define _GNU_SOURCE
#include "vqenv.h"

#include <check.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Wait until the device handled everything the fe sent (a request with a
 * reply is answered in order). */
void fe_sync(struct env *e)
{
	uint64_t f;

	ck_assert_int_eq(vhu_fe_get_features(e->fe, &f), 0);
}

static void on_queue(struct vhu_dev *dev, void *opaque, uint16_t q,
		     enum vhu_queue_event ev)
{
	struct env *e = opaque;

	if (ev == VHU_QUEUE_KICKED && q < ENV_MAX_QUEUES)
		atomic_fetch_add(&e->kicked[q], 1);
}

static const struct vhu_dev_ops env_ops = {
	.sz = sizeof(env_ops),
	.queue_event = on_queue,
};

static int dev_ready(void *arg)
{
	return vhu_dev_is_ready(((struct env *)arg)->dev);
}

static int dev_gone(void *arg)
{
	return !vhu_dev_is_connected(((struct env *)arg)->dev);
}

void env_connect(struct env *e)
{
	e->fe = vhu_fe_connect(e->path, TMO);
	ck_assert_ptr_nonnull(e->fe);
	ck_assert_int_eq(vhu_fe_handshake(e->fe, &e->h, NULL), 0);
	ck_assert_int_eq(tu_backend_wait(e->be, dev_ready, e, TMO), 1);
	for (int q = 0; q < 2; q++) {
		e->errfd[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		ck_assert_int_eq(vhu_fe_set_vring_err(e->fe, q, e->errfd[q]), 0);
	}
	fe_sync(e);
}

void env_up(struct env *e, const struct env_opts *o)
{
	const char *path = tu_sock_path("vq");
	struct vhu_dev_opts d = {
		.sz = sizeof(d), .name = o->name ? o->name : "vq",
		.num_queues = o->num_queues ? o->num_queues : 2,
		.queue_pairs = true, .device_features = o->device_features,
		.min_ready_queues = 2, .log = tu_log, .log_level = VHU_LOG_INFO,
		.ops = &env_ops, .opaque = e, .guard = o->guard,
		.inflight = o->inflight, .stop_drain_ms = o->stop_drain_ms,
	};
	struct vhu_fe_handshake_opts h = {
		.sz = sizeof(h), .num_queues = o->num_queues ? o->num_queues : 2,
		.ring_size = o->qsize ? o->qsize : 256, .packed = o->packed,
		.features_off = o->features_off,
		.mem_regions = o->regions ? o->regions : 2,
		.mem_region_size = o->region_size ? o->region_size : 4 * MB,
		.inband_notifications = o->inband, .in_order = o->in_order,
		.inflight = o->inflight,
	};

	memset(e, 0, sizeof(*e));
	e->packed = o->packed;
	e->nq = o->num_queues ? o->num_queues : 2;
	e->qsize = h.ring_size;
	e->dev = vhu_dev_new(&d);
	ck_assert_ptr_nonnull(e->dev);
	ck_assert_int_eq(vhu_dev_listen(e->dev, path), 0);
	e->be = tu_backend_start(e->dev);
	ck_assert_ptr_nonnull(e->be);
	snprintf(e->path, sizeof(e->path), "%s", path);
	e->h = h;
	env_connect(e);
}

void env_disconnect(struct env *e)
{
	vhu_fe_free(e->fe);
	e->fe = NULL;
	close(e->errfd[0]);
	close(e->errfd[1]);
	e->errfd[0] = e->errfd[1] = -1;
	/* One front-end at a time: the device must see this one leave before
	 * it accepts the next. */
	ck_assert_int_eq(tu_backend_wait(e->be, dev_gone, e, TMO), 1);
}

void env_reconnect(struct env *e)
{
	env_disconnect(e);
	env_connect(e);
}

void env_down(struct env *e)
{
	vhu_fe_free(e->fe);
	tu_backend_stop(e->be);
	vhu_dev_free(e->dev);
	close(e->errfd[0]);
	close(e->errfd[1]);
}

struct vhu_fe_ring *ring(struct env *e, int q)
{
	return vhu_fe_queue_ring(e->fe, q);
}

uint64_t galloc(struct env *e, uint64_t size)
{
	uint64_t gpa;

	ck_assert_int_eq(vhu_fe_mem_alloc(e->fe, size, 64, &gpa), 0);
	return gpa;
}

void fill(struct env *e, uint64_t gpa, uint32_t len, uint8_t seed)
{
	uint8_t *p = vhu_fe_gpa_to_ptr(e->fe, gpa, len);

	ck_assert_ptr_nonnull(p);
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

/* Wait until the kick eventfd of queue @q is readable. */
void wait_kick(struct env *e, int q)
{
	struct pollfd p = { .fd = vhu_vq_kick_fd(vhu_dev_vq(e->dev, q)), .events = POLLIN };

	ck_assert_int_ge(p.fd, 0);
	ck_assert_int_eq(poll(&p, 1, TMO), 1);
}

/* Pop exactly one request from queue @q (polls up to TMO). */
void pop_one(struct env *e, int q, struct vhu_req *req, struct vhu_seg *segs,
	     unsigned nsegs)
{
	struct vhu_vq *vq = vhu_dev_vq(e->dev, q);

	for (int i = 0; i < TMO; i++) {
		unsigned st = vhu_vq_begin(vq);
		int n = 0;

		ck_assert(st & VHU_VQ_RUNNING);
		n = vhu_vq_pop(vq, req, 1, segs, nsegs);
		vhu_vq_end(vq);
		ck_assert_int_ge(n, 0);
		if (n == 1)
			return;
		usleep(1000);
	}
	ck_abort_msg("no request on queue %d", q);
}

void push_one(struct env *e, int q, const struct vhu_req *req,
	      uint32_t written)
{
	struct vhu_vq *vq = vhu_dev_vq(e->dev, q);

	ck_assert(vhu_vq_begin(vq) & VHU_VQ_RUNNING);
	ck_assert_int_eq(vhu_vq_push(vq, req, &written, 1), 0);
	ck_assert_int_ge(vhu_vq_notify(vq), 0);
	vhu_vq_end(vq);
}

/* One full request: 2 readable buffers with a pattern, 1 writable; the
 * device checks the bytes, writes back, the driver checks the used entry. */
void round_trip(struct env *e, int q, bool indirect, uint8_t seed)
{
	struct vhu_fe_ring *r = ring(e, q);
	struct vhu_fe_buf b[3] = {
		{ galloc(e, 100), 100 }, { galloc(e, 1000), 1000 }, { galloc(e, 512), 512 },
	};
	struct vhu_req req;
	struct vhu_seg segs[16];
	uint16_t id;
	uint32_t len;
	void *tok;
	int head;

	fill(e, b[0].gpa, 100, seed);
	fill(e, b[1].gpa, 1000, (uint8_t)(seed + 1));
	if (indirect) {
		uint64_t tgpa = galloc(e, 3 * 16);

		head = vhu_fe_ring_add_indirect(r, b, 2, 1,
						vhu_fe_gpa_to_ptr(e->fe, tgpa, 48), tgpa,
						(void *)(uintptr_t)0x1234);
	} else {
		head = vhu_fe_ring_add(r, b, 2, 1, (void *)(uintptr_t)0x1234);
	}
	ck_assert_int_ge(head, 0);
	vhu_fe_ring_publish(r);
	ck_assert_int_eq(vhu_fe_queue_kick(e->fe, q), 0);
	wait_kick(e, q);
	ck_assert_uint_ge(vhu_vq_kick_clear(vhu_dev_vq(e->dev, q)), 1);

	pop_one(e, q, &req, segs, 16);
	ck_assert_uint_eq(req.id, (unsigned)head);
	ck_assert_uint_eq(req.nr_out, 2);
	ck_assert_uint_eq(req.nr_in, 1);
	ck_assert_uint_eq(req.out_len, 1100);
	ck_assert_uint_eq(req.in_len, 512);
	ck_assert_uint_eq(req.segs[0].len, 100);
	ck_assert_uint_eq(((uint8_t *)req.segs[0].addr)[99], (uint8_t)(seed + 99 * 7));
	ck_assert_uint_eq(((uint8_t *)req.segs[1].addr)[10], (uint8_t)(seed + 1 + 70));
	memset(req.segs[2].addr, 0xab, 300);
	push_one(e, q, &req, 300);

	uint64_t calls = 0;
	ck_assert_int_eq(vhu_fe_queue_wait_call(e->fe, q, TMO, &calls), 0);
	ck_assert_int_eq(vhu_fe_ring_get_used(r, &id, &len, &tok), 1);
	ck_assert_uint_eq(id, (unsigned)head);
	ck_assert_uint_eq(len, 300);
	ck_assert_ptr_eq(tok, (void *)(uintptr_t)0x1234);
	uint8_t *w = vhu_fe_gpa_to_ptr(e->fe, b[2].gpa, 512);
	ck_assert_uint_eq(w[0], 0xab);
	ck_assert_uint_eq(w[299], 0xab);
	ck_assert_uint_eq(w[300], 0);
}
