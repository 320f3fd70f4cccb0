/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A device with live rings for data-plane tests: a vhu device in server
 * mode whose control plane a helper thread serves (tu_backend), and the
 * in-tree front-end (vhu_fe) after QEMU's handshake.  The test thread is
 * the data plane.  Built into the suites that include this header (or
 * aftermath.h, whose bystander and fresh sessions are envs too).
 */
#ifndef VHU_VQENV_H
#define VHU_VQENV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <vhu/vhu.h>

#include "fe.h"
#include "testutil.h"

#define TMO 3000 /* ms, every wait in the data-plane suites */
#define MB (1024ull * 1024)
#define ENV_MAX_QUEUES 16

struct env {
	atomic_int kicked[ENV_MAX_QUEUES]; /* VHU_QUEUE_KICKED (in-band kicks) */
	struct vhu_dev *dev;
	struct tu_backend *be;
	struct vhu_fe *fe;
	bool packed;
	uint16_t qsize;
	uint16_t nq;
	int errfd[2]; /* the error eventfds of queues 0 and 1 */
	char path[108];
	struct vhu_fe_handshake_opts h;
};

struct env_opts {
	const char *name;       /* the device's, in log lines; default "vq" */
	bool inband;            /* ack INBAND_NOTIFICATIONS */
	bool in_order;          /* ack VIRTIO_F_IN_ORDER */
	bool packed;
	uint16_t qsize;         /* default 256 */
	uint16_t num_queues;    /* default 2 */
	uint64_t device_features;
	uint64_t features_off;  /* features the front-end does not ack */
	unsigned regions;       /* default 2 */
	uint64_t region_size;   /* default 4 MiB */
	struct vhu_guard *guard; /* SIGBUS guard for the device, or NULL */
	bool inflight;          /* the device tracks (vhu_dev_opts.inflight),
				 * the front-end hands it a region (INFLIGHT_SHMFD) */
	uint32_t stop_drain_ms; /* vhu_dev_opts.stop_drain_ms */
};

/* Set up: device, front-end, handshake, device ready, error fds. */
void env_up(struct env *e, const struct env_opts *o);
/* Free the front-end (if any), the thread and the device. */
void env_down(struct env *e);
/* The front-end half of env_up(): a front-end at e->path through the
 * handshake e->h, the device (e->dev, served by e->be) ready, error fds on
 * queues 0 and 1.  Also for a device env_up() did not make: the caller
 * sets dev, be, path and h. */
void env_connect(struct env *e);
/* The front-end goes away (error fds closed) and the device saw it. */
void env_disconnect(struct env *e);
/* Drop the front-end and serve a fresh one (new memory, same options)
 * through the whole handshake until the device is ready again. */
void env_reconnect(struct env *e);
/* Everything the front-end sent so far has been handled. */
void fe_sync(struct env *e);
struct vhu_fe_ring *ring(struct env *e, int q);
/* Guest memory: allocate (64-byte aligned), fill with a pattern. */
uint64_t galloc(struct env *e, uint64_t size);
void fill(struct env *e, uint64_t gpa, uint32_t len, uint8_t seed);
/* Wait until queue @q's kick eventfd is readable. */
void wait_kick(struct env *e, int q);
/* Data plane: pop exactly one request from queue @q (polls up to TMO);
 * push one back with @written bytes and notify. */
void pop_one(struct env *e, int q, struct vhu_req *req, struct vhu_seg *segs,
	     unsigned nsegs);
void push_one(struct env *e, int q, const struct vhu_req *req,
	      uint32_t written);
/* One full request on queue @q, both ways: 2 readable buffers with a
 * pattern the device checks, 1 writable the device fills and the driver
 * checks after the used entry and the call.  @indirect: through an
 * indirect table. */
void round_trip(struct env *e, int q, bool indirect, uint8_t seed);

#endif
