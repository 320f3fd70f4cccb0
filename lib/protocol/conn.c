/* SPDX-License-Identifier: BSD-3-Clause */
#include "protocol/conn.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

void vhu_rx_init(struct vhu_rx *rx)
{
	rx->have = 0;
	rx->nfds = 0;
	for (unsigned i = 0; i < VHU_MAX_FDS; i++)
		rx->fds[i] = -1;
}

void vhu_rx_reset(struct vhu_rx *rx)
{
	for (unsigned i = 0; i < rx->nfds; i++)
		if (rx->fds[i] >= 0)
			close(rx->fds[i]);
	vhu_rx_init(rx);
}

int vhu_rx_take_fd(struct vhu_rx *rx, unsigned i)
{
	int fd;

	if (i >= rx->nfds)
		return -1;
	fd = rx->fds[i];
	rx->fds[i] = -1;
	return fd;
}

/* Collect SCM_RIGHTS fds from @mh into @rx; close any beyond the limit. */
static int rx_collect_fds(struct vhu_rx *rx, struct msghdr *mh,
			  struct vhu_logger *lg)
{
	int rc = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int fds[VHU_MAX_FDS * 2];

		if (n > sizeof(fds) / sizeof(fds[0]))
			n = sizeof(fds) / sizeof(fds[0]);
		memcpy(fds, CMSG_DATA(c), n * sizeof(int));
		for (size_t i = 0; i < n; i++) {
			if (rx->nfds < VHU_MAX_FDS) {
				rx->fds[rx->nfds++] = fds[i];
			} else {
				close(fds[i]);
				rc = -EBADMSG;
			}
		}
	}
	if (rc)
		vhu_err(lg, "message carries more than %d file descriptors",
			VHU_MAX_FDS);
	return rc;
}

int vhu_rx_read(int fd, struct vhu_rx *rx, struct vhu_logger *lg)
{
	const size_t hdr = sizeof(struct vhu_msg_hdr);

	for (;;) {
		size_t want = rx->have < hdr ? hdr : hdr + rx->msg.hdr.size;

		if (rx->have == want)
			return 1;

		/* Room for more fds than allowed, so an excess is seen, closed
		 * and reported rather than truncated silently. */
		union {
			char buf[CMSG_SPACE(sizeof(int) * VHU_MAX_FDS * 2)];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = {
			.iov_base = (char *)&rx->msg + rx->have,
			.iov_len = want - rx->have,
		};
		struct msghdr mh = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = ctl.buf,
			.msg_controllen = sizeof(ctl.buf),
		};
		ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		int rc = rx_collect_fds(rx, &mh, lg);

		if (mh.msg_flags & MSG_CTRUNC) {
			vhu_err(lg, "ancillary data truncated (too many fds)");
			return -EBADMSG;
		}
		if (rc)
			return rc;
		if (n == 0) {
			if (rx->have)
				vhu_err(lg, "connection closed inside a message "
					"(%zu of %zu bytes)", rx->have, want);
			return -ECONNRESET;
		}
		rx->have += (size_t)n;
		if (rx->have == hdr && rx->msg.hdr.size > VHU_MAX_PAYLOAD) {
			vhu_err(lg, "request %u declares a %u-byte payload; the "
				"largest is %zu", rx->msg.hdr.request,
				rx->msg.hdr.size, (size_t)VHU_MAX_PAYLOAD);
			return -EMSGSIZE;
		}
	}
}

static int wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int rc;

	do {
		rc = poll(&p, 1, timeout_ms);
	} while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return -errno;
	if (rc == 0)
		return -ETIMEDOUT;
	if (p.revents & (POLLERR | POLLNVAL))
		return -EPIPE;
	return 0;
}

int vhu_msg_send(int fd, uint32_t request, uint32_t flags, const void *payload,
		 uint32_t size, const int *fds, unsigned nfds, int timeout_ms)
{
	struct vhu_msg_hdr h = { .request = request, .flags = flags, .size = size };
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHU_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov[2] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = (void *)payload, .iov_len = size },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = size ? 2 : 1 };
	size_t total = sizeof(h) + size, sent = 0;

	if (nfds > VHU_MAX_FDS)
		return -EINVAL;
	if (nfds) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	while (sent < total) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				int rc = wait_fd(fd, POLLOUT, timeout_ms);

				if (rc)
					return rc;
				continue;
			}
			return -errno;
		}
		sent += (size_t)n;
		/* fds go with the first byte only. */
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		while (n > 0 && mh.msg_iovlen) {
			size_t step = (size_t)n < mh.msg_iov->iov_len ?
				(size_t)n : mh.msg_iov->iov_len;

			mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + step;
			mh.msg_iov->iov_len -= step;
			n -= (ssize_t)step;
			if (mh.msg_iov->iov_len == 0) {
				mh.msg_iov++;
				mh.msg_iovlen--;
			}
		}
	}
	return 0;
}

int vhu_msg_recv_timeout(int fd, struct vhu_rx *rx, struct vhu_logger *lg,
			 int timeout_ms)
{
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		int rc = vhu_rx_read(fd, rx, lg);

		if (rc != 0)
			return rc;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long left = timeout_ms - ((now.tv_sec - start.tv_sec) * 1000 +
					  (now.tv_nsec - start.tv_nsec) / 1000000);
		if (left <= 0)
			return -ETIMEDOUT;
		rc = wait_fd(fd, POLLIN, (int)left);
		if (rc)
			return rc;
	}
}
