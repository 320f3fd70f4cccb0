/* SPDX-License-Identifier: BSD-3-Clause */
#define _GNU_SOURCE
#include "vqenv.h"

#include <check.h>
#include <poll.h>
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

static int dev_ready(void *arg)
{
	return vhu_dev_is_ready(((struct env *)arg)->dev);
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

void env_up(struct env *e, const struct env_opts *o)
{
	const char *path = tu_sock_path("vq");
	struct vhu_dev_opts d = {
		.sz = sizeof(d), .name = "vq",
		.num_queues = o->num_queues ? o->num_queues : 2,
		.queue_pairs = true, .device_features = o->device_features,
		.min_ready_queues = 2, .log = tu_log, .log_level = VHU_LOG_INFO,
		.ops = &env_ops, .opaque = e,
	};
	struct vhu_fe_handshake_opts h = {
		.sz = sizeof(h), .num_queues = o->num_queues ? o->num_queues : 2,
		.ring_size = o->qsize ? o->qsize : 256, .packed = o->packed,
		.features_off = o->features_off,
		.mem_regions = o->regions ? o->regions : 2,
		.mem_region_size = o->region_size ? o->region_size : 4 * MB,
		.inband_notifications = o->inband,
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
	e->fe = vhu_fe_connect(path, TMO);
	ck_assert_ptr_nonnull(e->fe);
	ck_assert_int_eq(vhu_fe_handshake(e->fe, &h, NULL), 0);
	ck_assert_int_eq(tu_backend_wait(e->be, dev_ready, e, TMO), 1);
	for (int q = 0; q < 2; q++) {
		e->errfd[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		ck_assert_int_eq(vhu_fe_set_vring_err(e->fe, q, e->errfd[q]), 0);
	}
	fe_sync(e);
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

