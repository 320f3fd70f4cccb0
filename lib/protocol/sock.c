/* SPDX-License-Identifier: BSD-3-Clause */
/* Unix sockets: server mode (listen, accept one front-end at a time) and
 * client mode (connect, reconnect with exponential backoff). */
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int sock_addr(struct vhu_logger *lg, const char *path,
		     struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path)) {
		vhu_err(lg, "socket path too long (%zu bytes, at most %zu): %s",
			strlen(path), sizeof(sa->sun_path) - 1, path);
		return -ENAMETOOLONG;
	}
	memcpy(sa->sun_path, path, strlen(path));
	return 0;
}

int vhu_sock_listen(struct vhu_logger *lg, const char *path)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, rc;

	rc = sock_addr(lg, path, &sa);
	if (rc)
		return rc;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			vhu_err(lg, "%s exists and is not a socket; refusing to "
				"replace it", path);
			return -EEXIST;
		}
		/* A socket nobody listens on any more: remove it. */
		if (unlink(path) < 0 && errno != ENOENT) {
			rc = -errno;
			vhu_err(lg, "cannot remove stale socket %s: %s", path,
				strerror(-rc));
			return rc;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 8) < 0) {
		rc = -errno;
		vhu_err(lg, "cannot listen on %s: %s", path, strerror(-rc));
		close(fd);
		return rc;
	}
	return fd;
}

void vhu_sock_accept(struct vhu_dev *dev)
{
	int fd = accept4(dev->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			vhu_err(&dev->lg, "accept on %s: %s", dev->path,
				strerror(errno));
		return;
	}
	if (dev->conn_fd >= 0) {
		/* The served one may have just hung up: finish it first, so a
		 * quick reconnect is not taken for a second front-end. */
		struct pollfd p = { .fd = dev->conn_fd, .events = POLLIN | POLLRDHUP };

		if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR)))
			vhu_dev_on_readable(dev, dev->conn_fd);
	}
	if (dev->conn_fd >= 0) {
		vhu_warn(&dev->lg, "a second front-end connected to %s while one "
			 "is served; closing it", dev->path);
		close(fd);
		return;
	}
	vhu_info(&dev->lg, "front-end connected on %s", dev->path);
	vhu_dev_conn_established(dev, fd);
}

void vhu_sock_schedule_reconnect(struct vhu_dev *dev)
{
	uint32_t ms = dev->reconnect_ms;

	vhu_dev_timer(dev, ms);
	/* Exponential backoff, reset by a successful connection. */
	dev->reconnect_ms = ms >= dev->reconnect_max_ms / 2 ? dev->reconnect_max_ms
							   : ms * 2;
}

void vhu_sock_try_connect(struct vhu_dev *dev)
{
	struct sockaddr_un sa;
	int fd;

	if (dev->conn_fd >= 0 || sock_addr(&dev->lg, dev->path, &sa))
		return;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		vhu_err(&dev->lg, "socket: %s", strerror(errno));
		vhu_sock_schedule_reconnect(dev);
		return;
	}
	/* A Unix-socket connect completes at once or fails at once; EAGAIN
	 * means the front-end's backlog is full: try again later. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = errno;

		close(fd);
		vhu_dbg(&dev->lg, "connect to %s: %s; retrying in %u ms", dev->path,
			strerror(err), dev->reconnect_ms);
		vhu_sock_schedule_reconnect(dev);
		return;
	}
	vhu_info(&dev->lg, "connected to front-end at %s", dev->path);
	dev->reconnect_ms = dev->reconnect_min_ms;
	vhu_dev_conn_established(dev, fd);
}
