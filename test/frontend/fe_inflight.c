/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test frontend: inflight I/O tracking (INFLIGHT_SHMFD).  The region the
 * back-end makes with GET_INFLIGHT_FD is kept by the fe across
 * connections, as QEMU keeps it across back-end restarts, and handed to
 * every back-end with SET_INFLIGHT_FD before its rings start.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "fe_int.h"

int vhu_fe_get_inflight_fd(struct vhu_fe *fe, uint16_t num_queues,
			   uint16_t queue_size, int *fdp, uint64_t *mmap_size,
			   uint64_t *mmap_offset)
{
	struct vhu_inflight m = { .num_queues = num_queues,
				  .queue_size = queue_size };
	struct vhu_inflight r;
	int fds[1] = { -1 };
	size_t nfds = 1;
	int n;

	*fdp = -1;
	n = vhu_fe_send(fe, VHU_REQ_GET_INFLIGHT_FD, VHU_FLAG_VERSION, &m,
			sizeof(m), NULL, 0);
	if (n)
		return n;
	n = vhu_fe_recv_reply(fe, VHU_REQ_GET_INFLIGHT_FD, &r, sizeof(r), fds,
			      &nfds, -1);
	if (n < 0)
		return n;
	if (n != (int)sizeof(r)) {
		if (nfds)
			close(fds[0]);
		return -EPROTO;
	}
	*fdp = nfds ? fds[0] : -1;
	*mmap_size = r.mmap_size;
	*mmap_offset = r.mmap_offset;
	return 0;
}

int vhu_fe_set_inflight_fd(struct vhu_fe *fe, int fd, uint64_t mmap_size,
			   uint64_t mmap_offset, uint16_t num_queues,
			   uint16_t queue_size)
{
	struct vhu_inflight m = {
		.mmap_size = mmap_size, .mmap_offset = mmap_offset,
		.num_queues = num_queues, .queue_size = queue_size,
	};

	return vhu_fe_request(fe, VHU_REQ_SET_INFLIGHT_FD,
			      fe_req_flags(fe, VHU_REQ_SET_INFLIGHT_FD), &m,
			      sizeof(m), &fd, fd < 0 ? 0 : 1, NULL, 0);
}

void vhu_fe_inflight(const struct vhu_fe *fe, struct vhu_fe_inflight *out)
{
	*out = fe->ifl;
}

void fe_inflight_free(struct vhu_fe *fe)
{
	if (fe->ifl.fd >= 0)
		close(fe->ifl.fd);
	fe->ifl = (struct vhu_fe_inflight){ .fd = -1 };
}

int vhu_fe_set_inflight(struct vhu_fe *fe, const struct vhu_fe_inflight *r)
{
	int fd = -1;

	if (r && r->fd >= 0) {
		fd = fcntl(r->fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
	}
	fe_inflight_free(fe);
	if (fd >= 0) {
		fe->ifl = *r;
		fe->ifl.fd = fd;
	}
	return 0;
}

/* The handshake's part: a region on the first start, the kept one sent on
 * every start.  A back-end that answers without a region (it refused the
 * shape) runs untracked: nothing to send. */
int fe_inflight_start(struct vhu_fe *fe, uint16_t num_queues,
		      uint16_t queue_size)
{
	struct vhu_fe_inflight *r = &fe->ifl;
	int err;

	if (r->fd < 0) {
		err = vhu_fe_get_inflight_fd(fe, num_queues, queue_size, &r->fd,
					     &r->mmap_size, &r->mmap_offset);
		if (err)
			return err;
		r->num_queues = num_queues;
		r->queue_size = queue_size;
		if (r->fd < 0)
			return 0;
	}
	return vhu_fe_set_inflight_fd(fe, r->fd, r->mmap_size, r->mmap_offset,
				      r->num_queues, r->queue_size);
}
