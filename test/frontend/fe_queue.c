/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test frontend: virtqueues in guest memory, their kick and call eventfds,
 * and the SET_VRING_* sequence that hands one to the back-end.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fe_int.h"

int vhu_fe_queue_setup(struct vhu_fe *fe, uint16_t idx, bool packed,
		       uint16_t num, unsigned ring_flags)
{
	struct vhu_fe_queue *q;
	struct vhu_fe_ring_layout lay;
	uint64_t gpa;
	void *mem;
	int err;

	if (idx >= VHU_FE_MAX_QUEUES)
		return -EINVAL;
	err = vhu_fe_ring_layout(packed, num, &lay);
	if (err)
		return err;
	q = &fe->q[idx];
	if (q->set_up)
		vhu_fe_ring_fini(&q->ring);
	/* Reuse the ring's memory when it is big enough. */
	if (q->set_up && q->ring_bytes >= lay.total) {
		gpa = q->ring_gpa;
	} else {
		err = vhu_fe_mem_alloc(fe, lay.total, 4096, &gpa);
		if (err)
			goto err_down;
		q->ring_gpa = gpa;
		q->ring_bytes = lay.total;
	}
	mem = vhu_fe_gpa_to_ptr(fe, gpa, lay.total);
	err = vhu_fe_ring_init(&q->ring, packed, num, mem, gpa, ring_flags);
	if (err)
		goto err_down;
	if (q->kick_fd < 0)
		q->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->call_fd < 0)
		q->call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->kick_fd < 0 || q->call_fd < 0) {
		err = -errno;
		vhu_fe_ring_fini(&q->ring);
		goto err_down;
	}
	/* A fresh ring starts with no notification pending either way. */
	{
		uint64_t v;

		while (read(q->kick_fd, &v, sizeof(v)) == sizeof(v))
			;
		while (read(q->call_fd, &v, sizeof(v)) == sizeof(v))
			;
	}
	q->set_up = true;
	if (idx >= fe->nqueues)
		fe->nqueues = idx + 1u;
	return 0;

err_down:
	q->set_up = false;
	return err;
}

void fe_queues_free(struct vhu_fe *fe)
{
	for (unsigned i = 0; i < VHU_FE_MAX_QUEUES; i++) {
		struct vhu_fe_queue *q = &fe->q[i];

		if (q->set_up)
			vhu_fe_ring_fini(&q->ring);
		if (q->kick_fd >= 0)
			close(q->kick_fd);
		if (q->call_fd >= 0)
			close(q->call_fd);
		q->kick_fd = q->call_fd = -1;
		q->set_up = false;
	}
	fe->nqueues = 0;
}

static struct vhu_fe_queue *fe_queue(const struct vhu_fe *fe, uint16_t idx)
{
	if (idx >= VHU_FE_MAX_QUEUES || !fe->q[idx].set_up)
		return NULL;
	return (struct vhu_fe_queue *)&fe->q[idx];
}

int fe_queue_start(struct vhu_fe *fe, uint16_t idx, bool qemu_order)
{
	struct vhu_fe_queue *q = fe_queue(fe, idx);
	struct vhu_fe_ring *r;
	uint32_t base;
	int err;

	if (!q)
		return -EINVAL;
	r = &q->ring;
	if (fe->crash_base)
		base = r->packed ? 0x80008000u : vhu_fe_ld16((uint8_t *)r->used + 2);
	else
		base = vhu_fe_ring_base(r);
	err = vhu_fe_set_vring_num(fe, idx, r->num);
	/* QEMU's vhost_virtqueue_start() sends the base before the address. */
	if (!err && qemu_order)
		err = vhu_fe_set_vring_base(fe, idx, base);
	if (!err)
		err = vhu_fe_set_vring_addr(fe, idx,
					    vhu_fe_gpa_to_uva(fe, r->desc_gpa),
					    vhu_fe_gpa_to_uva(fe, r->used_gpa),
					    vhu_fe_gpa_to_uva(fe, r->avail_gpa), 0);
	if (!err && !qemu_order)
		err = vhu_fe_set_vring_base(fe, idx, base);
	if (!err)
		err = vhu_fe_set_vring_kick(fe, idx, q->inband ? -1 : q->kick_fd);
	if (!err)
		err = vhu_fe_set_vring_call(fe, idx, q->inband ? -1 : q->call_fd);
	return err;
}

int vhu_fe_queue_set_addr_log(struct vhu_fe *fe, uint16_t idx, bool on,
			      uint64_t log_gpa)
{
	struct vhu_fe_queue *q = fe_queue(fe, idx);
	struct vhu_vring_addr a = { .index = idx };

	if (!q)
		return -EINVAL;
	a.flags = on ? VHU_VRING_F_LOG : 0;
	a.desc_user_addr = vhu_fe_gpa_to_uva(fe, q->ring.desc_gpa);
	a.used_user_addr = vhu_fe_gpa_to_uva(fe, q->ring.used_gpa);
	a.avail_user_addr = vhu_fe_gpa_to_uva(fe, q->ring.avail_gpa);
	a.log_guest_addr = log_gpa;
	return vhu_fe_request(fe, VHU_REQ_SET_VRING_ADDR,
			      fe_req_flags(fe, VHU_REQ_SET_VRING_ADDR), &a,
			      sizeof(a), NULL, 0, NULL, 0);
}

int vhu_fe_queue_start(struct vhu_fe *fe, uint16_t idx)
{
	return fe_queue_start(fe, idx, false);
}

struct vhu_fe_ring *vhu_fe_queue_ring(struct vhu_fe *fe, uint16_t idx)
{
	struct vhu_fe_queue *q = fe_queue(fe, idx);

	return q ? &q->ring : NULL;
}

int vhu_fe_queue_kick_fd(const struct vhu_fe *fe, uint16_t idx)
{
	struct vhu_fe_queue *q = fe_queue(fe, idx);

	return q ? q->kick_fd : -1;
}

int vhu_fe_queue_call_fd(const struct vhu_fe *fe, uint16_t idx)
{
	struct vhu_fe_queue *q = fe_queue(fe, idx);

	return q ? q->call_fd : -1;
}

int vhu_fe_queue_set_inband(struct vhu_fe *fe, uint16_t idx, bool on)
{
	struct vhu_fe_queue *q = fe_queue(fe, idx);

	if (!q)
		return -EINVAL;
	q->inband = on;
	return 0;
}

int vhu_fe_queue_kick(struct vhu_fe *fe, uint16_t idx)
{
	struct vhu_fe_queue *q = fe_queue(fe, idx);
	uint64_t one = 1;

	if (!q)
		return -EINVAL;
	if (q->inband)
		return vhu_fe_vring_kick(fe, idx);
	if (write(q->kick_fd, &one, sizeof(one)) != sizeof(one))
		return -errno;
	return 0;
}

int vhu_fe_queue_notify(struct vhu_fe *fe, uint16_t idx)
{
	struct vhu_fe_queue *q = fe_queue(fe, idx);

	if (!q)
		return -EINVAL;
	vhu_fe_ring_publish(&q->ring);
	if (!vhu_fe_ring_needs_kick(&q->ring))
		return 0;
	return vhu_fe_queue_kick(fe, idx);
}

/* In-band: wait for the back-end's VRING_CALL for queue @idx. */
static int fe_wait_inband_call(struct vhu_fe *fe, uint16_t idx, int timeout_ms,
			       uint64_t *count)
{
	int64_t deadline = fe_deadline(timeout_ms);
	struct vhu_fe_breq req;

	for (;;) {
		struct vhu_vring_state st;
		int64_t left = timeout_ms < 0 ? -1 : deadline - fe_deadline(0);
		bool ours;
		int err;

		err = vhu_fe_backend_recv(fe, &req, left < 0 && timeout_ms >= 0 ?
					  0 : (int)left);
		if (err)
			return err;
		memcpy(&st, req.payload, sizeof(st));
		ours = req.hdr.request == VHU_BREQ_VRING_CALL &&
		       req.hdr.size == sizeof(st) && st.index == idx;
		/* Anything else on the channel is acknowledged and dropped. */
		err = vhu_fe_backend_reply(fe, &req, 0);
		vhu_fe_breq_close_fds(&req);
		if (err)
			return err;
		if (ours) {
			if (count)
				*count = 1;
			return 0;
		}
	}
}

int vhu_fe_queue_wait_call(struct vhu_fe *fe, uint16_t idx, int timeout_ms,
			   uint64_t *count)
{
	struct vhu_fe_queue *q = fe_queue(fe, idx);
	struct pollfd p;
	uint64_t v;
	int r;

	if (!q)
		return -EINVAL;
	if (q->inband)
		return fe_wait_inband_call(fe, idx, timeout_ms, count);
	p.fd = q->call_fd;
	p.events = POLLIN;
	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	if (read(q->call_fd, &v, sizeof(v)) != sizeof(v))
		return -errno;
	if (count)
		*count = v;
	return 0;
}

unsigned vhu_fe_num_queues(const struct vhu_fe *fe)
{
	return fe->nqueues;
}
