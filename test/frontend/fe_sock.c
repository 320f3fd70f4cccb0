/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test frontend: the socket, connection lifecycle and raw message I/O.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fe_int.h"

int64_t fe_deadline(int timeout_ms)
{
	struct timespec ts;

	if (timeout_ms < 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + timeout_ms;
}

/* Milliseconds left until @deadline, for poll(): -1 forever, 0 expired. */
static int fe_left(int64_t deadline)
{
	struct timespec ts;
	int64_t now;

	if (deadline < 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	return now >= deadline ? 0 : (int)(deadline - now);
}

/* Wait for @events on @fd until @deadline: 0, -ETIMEDOUT or -errno. */
static int fe_wait(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;

	for (;;) {
		r = poll(&p, 1, fe_left(deadline));
		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

void fe_close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

static int fe_fill_addr(struct sockaddr_un *sa, const char *path)
{
	if (!path || strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	strcpy(sa->sun_path, path);
	return 0;
}

int fe_sock_connect(const char *path, int timeout_ms)
{
	int64_t deadline = fe_deadline(timeout_ms);
	struct sockaddr_un sa;
	int fd, err;

	err = fe_fill_addr(&sa, path);
	if (err)
		return err;
	for (;;) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		err = -errno;
		close(fd);
		if (err != -ENOENT && err != -ECONNREFUSED && err != -EAGAIN)
			return err;
		if (fe_left(deadline) == 0)
			return -ETIMEDOUT;
		usleep(5000);
	}
}

static struct vhu_fe *fe_alloc(const char *path)
{
	struct vhu_fe *fe;

	if (!path || strlen(path) >= sizeof(fe->path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	fe = calloc(1, sizeof(*fe));
	if (!fe)
		return NULL;
	fe->sock = -1;
	fe->listen_fd = -1;
	fe->backend_fd = -1;
	fe->ifl.fd = -1;
	fe->timeout_ms = VHU_FE_DEFAULT_TIMEOUT_MS;
	strcpy(fe->path, path);
	for (unsigned i = 0; i < VHU_FE_MAX_QUEUES; i++) {
		fe->q[i].kick_fd = -1;
		fe->q[i].call_fd = -1;
	}
	return fe;
}

struct vhu_fe *vhu_fe_connect(const char *path, int timeout_ms)
{
	struct vhu_fe *fe = fe_alloc(path);
	int fd;

	if (!fe)
		return NULL;
	fd = fe_sock_connect(path, timeout_ms);
	if (fd < 0) {
		free(fe);
		errno = -fd;
		return NULL;
	}
	fe->sock = fd;
	return fe;
}

struct vhu_fe *vhu_fe_listen(const char *path)
{
	struct vhu_fe *fe = fe_alloc(path);
	struct sockaddr_un sa;
	struct stat st;
	int fd, err;

	if (!fe)
		return NULL;
	fe_fill_addr(&sa, path);
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto err_free;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 4) < 0)
		goto err_close;
	fe->listen_fd = fd;
	return fe;

err_close:
	err = errno;
	close(fd);
	errno = err;
err_free:
	err = errno;
	free(fe);
	errno = err;
	return NULL;
}

int vhu_fe_accept(struct vhu_fe *fe, int timeout_ms)
{
	int64_t deadline = fe_deadline(timeout_ms);
	int fd, err;

	if (fe->listen_fd < 0)
		return -EINVAL;
	if (fe->sock >= 0)
		return -EISCONN;
	for (;;) {
		err = fe_wait(fe->listen_fd, POLLIN, deadline);
		if (err)
			return err;
		fd = accept4(fe->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			break;
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			return -errno;
	}
	fe->sock = fd;
	return 0;
}

void vhu_fe_disconnect(struct vhu_fe *fe)
{
	if (fe->sock >= 0)
		close(fe->sock);
	if (fe->backend_fd >= 0)
		close(fe->backend_fd);
	fe->sock = -1;
	fe->backend_fd = -1;
	fe->offered_features = fe->acked_features = 0;
	fe->offered_pf = fe->acked_pf = 0;
}

int vhu_fe_reconnect(struct vhu_fe *fe, int timeout_ms)
{
	int fd;

	if (fe->listen_fd >= 0)
		return -EINVAL;
	vhu_fe_disconnect(fe);
	fd = fe_sock_connect(fe->path, timeout_ms);
	if (fd < 0)
		return fd;
	fe->sock = fd;
	return 0;
}

void vhu_fe_free(struct vhu_fe *fe)
{
	if (!fe)
		return;
	vhu_fe_disconnect(fe);
	if (fe->listen_fd >= 0) {
		close(fe->listen_fd);
		unlink(fe->path);
	}
	fe_queues_free(fe);
	fe_mem_free(fe);
	fe_inflight_free(fe);
	fe_record_close(fe);
	free(fe);
}

bool vhu_fe_is_connected(const struct vhu_fe *fe)
{
	return fe->sock >= 0;
}

int vhu_fe_sock_fd(const struct vhu_fe *fe)
{
	return fe->sock;
}

void vhu_fe_set_timeout(struct vhu_fe *fe, int timeout_ms)
{
	fe->timeout_ms = timeout_ms;
}

int vhu_fe_wait_hangup(struct vhu_fe *fe, int timeout_ms)
{
	char c;
	ssize_t n;
	int err;

	if (fe->sock < 0)
		return 0;
	err = fe_wait(fe->sock, POLLIN, fe_deadline(timeout_ms));
	if (err)
		return err;
	n = recv(fe->sock, &c, 1, MSG_DONTWAIT | MSG_PEEK); /* data stays */
	if (n > 0)
		return -EPROTO;
	if (n < 0 && errno != ECONNRESET)
		return -errno;
	vhu_fe_disconnect(fe);
	return 0;
}

int fe_read_full(int fd, void *buf, size_t len, int *fds, size_t *nfds,
		 size_t max_fds, int64_t deadline)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VHU_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	size_t got = 0;

	while (got < len) {
		struct iovec iov = { (char *)buf + got, len - got };
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
		};
		struct cmsghdr *c;
		ssize_t n;
		int err;

		err = fe_wait(fd, POLLIN, deadline);
		if (err)
			return err;
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return errno == ECONNRESET ? -ECONNRESET : -errno;
		}
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			size_t k;
			int *p;

			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			p = (int *)CMSG_DATA(c);
			for (size_t i = 0; i < k; i++) {
				int f;

				memcpy(&f, p + i, sizeof(f));
				if (fds && nfds && *nfds < max_fds)
					fds[(*nfds)++] = f;
				else
					close(f);
			}
		}
		if (n == 0)
			return -ECONNRESET;
		got += (size_t)n;
	}
	return 0;
}

int fe_write_msg(int fd, const void *buf, size_t len, const int *fds,
		 size_t nfds, int timeout_ms)
{
	int64_t deadline = fe_deadline(timeout_ms);
	union {
		char buf[CMSG_SPACE(sizeof(int) * 64)];
		struct cmsghdr align;
	} ctl;
	size_t sent = 0;

	if (nfds > 64)
		return -EINVAL;
	do {
		struct iovec iov = { (char *)buf + sent, len - sent };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;

		if (sent == 0 && nfds) {
			struct cmsghdr *c;

			memset(&ctl, 0, sizeof(ctl));
			mh.msg_control = ctl.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
			memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
		}
		n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				/* A peer that stopped reading: give up at the
				 * deadline rather than block the test. */
				int err = fe_wait(fd, POLLOUT, deadline);

				if (err)
					return err;
				continue;
			}
			return -errno;
		}
		sent += (size_t)n;
	} while (sent < len);
	return 0;
}

int vhu_fe_send_raw(struct vhu_fe *fe, const void *buf, size_t len,
		    const int *fds, size_t nfds)
{
	if (fe->sock < 0)
		return -ENOTCONN;
	if (len == 0)
		return nfds ? -EINVAL : 0; /* fds need at least one byte */
	return fe_write_msg(fe->sock, buf, len, fds, nfds, fe->timeout_ms);
}

int vhu_fe_send_hdr(struct vhu_fe *fe, uint32_t request, uint32_t flags,
		    uint32_t size_field, const void *payload, size_t len,
		    const int *fds, size_t nfds)
{
	struct vhu_msg_hdr hdr = { request, flags, size_field };
	uint8_t *buf;
	int err;

	if (len > (64u << 10))
		return -EMSGSIZE;
	fe_record(fe, request, flags, payload, len, fds, nfds);
	buf = malloc(sizeof(hdr) + len);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, &hdr, sizeof(hdr));
	if (len)
		memcpy(buf + sizeof(hdr), payload, len);
	err = vhu_fe_send_raw(fe, buf, sizeof(hdr) + len, fds, nfds);
	free(buf);
	return err;
}

int vhu_fe_send(struct vhu_fe *fe, uint32_t request, uint32_t flags,
		const void *payload, size_t len, const int *fds, size_t nfds)
{
	if (len > UINT32_MAX)
		return -EMSGSIZE;
	return vhu_fe_send_hdr(fe, request, flags, (uint32_t)len, payload, len,
			       fds, nfds);
}

int vhu_fe_recv_reply(struct vhu_fe *fe, uint32_t request, void *buf,
		      size_t cap, int *fds, size_t *nfds, int timeout_ms)
{
	int64_t deadline = fe_deadline(timeout_ms < 0 ? fe->timeout_ms : timeout_ms);
	struct vhu_msg_hdr hdr;
	int got[VHU_MAX_FDS];
	size_t ngot = 0, max = nfds ? *nfds : 0;
	uint8_t scratch[VHU_MAX_PAYLOAD];
	int err;

	if (nfds)
		*nfds = 0;
	if (fe->sock < 0)
		return -ENOTCONN;
	err = fe_read_full(fe->sock, &hdr, sizeof(hdr), got, &ngot, VHU_MAX_FDS,
			   deadline);
	if (err)
		goto out_close;
	/* A payload we cannot hold leaves the stream out of step: -EPROTO,
	 * and the caller should disconnect. */
	err = -EPROTO;
	if (hdr.size > sizeof(scratch))
		goto out_close;
	/* Otherwise read it whole first, so that a reply we refuse below
	 * does not desynchronise the next one. */
	err = fe_read_full(fe->sock, scratch, hdr.size, got, &ngot, VHU_MAX_FDS,
			   deadline);
	if (err)
		goto out_close;
	err = -EPROTO;
	if ((hdr.flags & VHU_FLAG_VERSION_MASK) != VHU_FLAG_VERSION ||
	    !(hdr.flags & VHU_FLAG_REPLY) || (hdr.flags & ~VHU_FLAG_KNOWN) ||
	    hdr.request != request)
		goto out_close;
	err = -EMSGSIZE;
	if (hdr.size > cap)
		goto out_close;
	if (hdr.size)
		memcpy(buf, scratch, hdr.size);
	for (size_t i = 0; i < ngot; i++) {
		if (fds && i < max) {
			fds[i] = got[i];
			(*nfds)++;
		} else {
			close(got[i]);
		}
	}
	return (int)hdr.size;

out_close:
	fe_close_fds(got, ngot);
	return err;
}

bool vhu_fe_has_reply(uint32_t request)
{
	switch (request) {
	case VHU_REQ_GET_FEATURES:
	case VHU_REQ_GET_PROTOCOL_FEATURES:
	case VHU_REQ_GET_VRING_BASE:
	case VHU_REQ_GET_QUEUE_NUM:
	case VHU_REQ_GET_CONFIG:
	case VHU_REQ_GET_INFLIGHT_FD:
	case VHU_REQ_GET_MAX_MEM_SLOTS:
	case VHU_REQ_GET_STATUS:
	case VHU_REQ_GET_SHARED_OBJECT:
	case VHU_REQ_IOTLB_MSG:
	case VHU_REQ_POSTCOPY_ADVISE:
	case VHU_REQ_POSTCOPY_END:
	case VHU_REQ_SET_DEVICE_STATE_FD:
	case VHU_REQ_CHECK_DEVICE_STATE:
		return true;
	default:
		return false;
	}
}

int vhu_fe_request(struct vhu_fe *fe, uint32_t request, uint32_t flags,
		   const void *payload, size_t len, const int *fds,
		   size_t nfds, void *reply, size_t reply_cap)
{
	uint64_t ack;
	int n, err;

	err = vhu_fe_send(fe, request, flags, payload, len, fds, nfds);
	if (err)
		return err;
	if (vhu_fe_has_reply(request) ||
	    (request == VHU_REQ_SET_LOG_BASE &&
	     (fe->acked_pf & VHU_BIT(VHU_PF_LOG_SHMFD))))
		return vhu_fe_recv_reply(fe, request, reply, reply_cap, NULL,
					 NULL, -1);
	if (!(flags & VHU_FLAG_NEED_REPLY))
		return 0;
	n = vhu_fe_recv_reply(fe, request, &ack, sizeof(ack), NULL, NULL, -1);
	if (n < 0)
		return n;
	if (n != sizeof(ack))
		return -EPROTO;
	fe->last_ack = ack;
	return ack ? -EREMOTEIO : 0;
}

uint64_t vhu_fe_last_ack(const struct vhu_fe *fe)
{
	return fe->last_ack;
}

void vhu_fe_set_need_reply(struct vhu_fe *fe, bool on)
{
	fe->need_reply = on;
}
