/* SPDX-License-Identifier: BSD-3-Clause */
/* Device lifecycle: creation, the connection, event-loop glue, readiness
 * and the queries the application makes. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Transport features vhu implements. */
#define VHU_TRANSPORT_FEATURES                                             \
	(VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_PROTOCOL_FEATURES) |      \
	 VHU_BIT(VHU_F_INDIRECT_DESC) | VHU_BIT(VHU_F_EVENT_IDX) |          \
	 VHU_BIT(VHU_F_RING_PACKED) | VHU_BIT(VHU_F_IN_ORDER) |             \
	 VHU_BIT(VHU_F_LOG_ALL))

/* Bits 24..49 belong to the transport, not to a device type. */
#define VHU_TRANSPORT_RANGE (((1ULL << 50) - 1) & ~((1ULL << 24) - 1))

/* Protocol features vhu implements whatever the device. */
#define VHU_PROTOCOL_FEATURES                                               \
	(VHU_BIT(VHU_PF_MQ) | VHU_BIT(VHU_PF_REPLY_ACK) |                    \
	 VHU_BIT(VHU_PF_BACKEND_REQ) | VHU_BIT(VHU_PF_RESET_DEVICE) |        \
	 VHU_BIT(VHU_PF_INBAND_NOTIFICATIONS) |                              \
	 VHU_BIT(VHU_PF_CONFIGURE_MEM_SLOTS) | VHU_BIT(VHU_PF_STATUS) |      \
	 VHU_BIT(VHU_PF_LOG_SHMFD))

/* Messages handled per readable event, so one chatty front-end cannot
 * starve the other devices of the same loop. */
#define VHU_MSGS_PER_EVENT 64

/* Copy a caller's options struct of size @sz into @dst (size @dsz): a
 * smaller struct (older caller) leaves the rest zero; a larger one must
 * have only zeros beyond what this library knows. */
static int opts_copy(void *dst, size_t dsz, const void *src, size_t sz)
{
	memset(dst, 0, dsz);
	if (!src)
		return 0;
	if (sz < sizeof(size_t))
		return -EINVAL;
	for (size_t i = dsz; i < sz; i++)
		if (((const uint8_t *)src)[i])
			return -EINVAL;
	memcpy(dst, src, sz < dsz ? sz : dsz);
	return 0;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Rings live in guest memory: they move with the memory table. */
static void dev_mem_hook(void *arg, const struct vhu_memtable *t,
			 enum vhu_mem_phase phase)
{
	struct vhu_dev *dev = arg;

	for (uint16_t i = 0; i < dev->nvq; i++)
		vhu_vq_mem_change(&dev->vqs[i], t, phase);
}

struct vhu_dev *vhu_dev_new(const struct vhu_dev_opts *uopts)
{
	struct vhu_dev_opts o;
	struct vhu_dev *dev;
	int rc;

	if (!uopts || opts_copy(&o, sizeof(o), uopts, uopts->sz)) {
		errno = EINVAL;
		return NULL;
	}
	if (o.num_queues == 0 || o.num_queues > VHU_MAX_QUEUES ||
	    (o.queue_pairs && (o.num_queues & 1)) ||
	    o.min_ready_queues > o.num_queues ||
	    o.max_queue_size > VHU_MAX_QUEUE_SIZE ||
	    o.max_mem_slots > VHU_MAX_MEM_SLOTS ||
	    (o.device_features & VHU_TRANSPORT_RANGE) ||
	    o.log_level > VHU_LOG_DEBUG) {
		errno = EINVAL;
		return NULL;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return NULL;
	snprintf(dev->name, sizeof(dev->name), "%s", o.name ? o.name : "vhu");
	vhu_logger_init(&dev->lg, o.log, o.log_opaque, o.log_level, dev->name);
	if (o.ops && opts_copy(&dev->ops, sizeof(dev->ops), o.ops, o.ops->sz))
		goto err_inval;
	if (o.loop) {
		if (opts_copy(&dev->loop, sizeof(dev->loop), o.loop, o.loop->sz) ||
		    !dev->loop.watch || !dev->loop.unwatch || !dev->loop.timer)
			goto err_inval;
		dev->has_loop = true;
	}
	dev->opaque = o.opaque;
	dev->nvq = o.num_queues;
	dev->queue_pairs = o.queue_pairs;
	dev->min_ready = o.min_ready_queues ? o.min_ready_queues : 1;
	dev->max_qsize = o.max_queue_size ? o.max_queue_size : VHU_MAX_QUEUE_SIZE;
	dev->max_mem_slots = o.max_mem_slots ? o.max_mem_slots : VHU_MAX_MEM_SLOTS;
	dev->stop_drain_ms = o.stop_drain_ms;
	dev->reconnect_min_ms = o.reconnect_min_ms ? o.reconnect_min_ms : 100;
	dev->reconnect_max_ms = o.reconnect_max_ms ? o.reconnect_max_ms : 5000;
	if (dev->reconnect_max_ms < dev->reconnect_min_ms)
		dev->reconnect_max_ms = dev->reconnect_min_ms;
	dev->reconnect_ms = dev->reconnect_min_ms;

	dev->offered_features = o.device_features |
				(VHU_TRANSPORT_FEATURES & ~o.transport_features_off);
	dev->offered_protocol = VHU_PROTOCOL_FEATURES;
	if (dev->ops.get_config)
		dev->offered_protocol |= VHU_BIT(VHU_PF_CONFIG);
	if (dev->ops.set_mtu)
		dev->offered_protocol |= VHU_BIT(VHU_PF_NET_MTU);
	if (dev->ops.send_rarp)
		dev->offered_protocol |= VHU_BIT(VHU_PF_RARP);
	if (o.inflight)
		dev->offered_protocol |= VHU_BIT(VHU_PF_INFLIGHT_SHMFD);
	dev->offered_protocol &= ~o.protocol_features_off;

	dev->mode = VHU_MODE_NONE;
	dev->listen_fd = dev->conn_fd = dev->backend_fd = dev->log_call_fd = -1;
	dev->timer_deadline_ns = -1;
	vhu_rx_init(&dev->rx);
	pthread_mutex_init(&dev->backend_lock, NULL);

	dev->vqs = aligned_alloc(64, sizeof(struct vhu_vq) * dev->nvq);
	if (!dev->vqs)
		goto err_nomem;
	rc = vhu_mem_init(&dev->mem, dev->max_mem_slots, dev->nvq, &dev->lg);
	if (rc)
		goto err_vqs;
	for (uint16_t i = 0; i < dev->nvq; i++) {
		vhu_vq_init(dev, &dev->vqs[i], i);
		vhu_mem_reader_add(&dev->mem, &dev->vqs[i].reader);
	}
	dev->mem.guard = o.guard;
	dev->mem.hook = dev_mem_hook;
	dev->mem.hook_arg = dev;
	return dev;

err_vqs:
	pthread_mutex_destroy(&dev->backend_lock);
	free(dev->vqs);
err_nomem:
	free(dev);
	errno = ENOMEM;
	return NULL;
err_inval:
	free(dev);
	errno = EINVAL;
	return NULL;
}

int vhu_dev_watch(struct vhu_dev *dev, int fd)
{
	if (!dev->has_loop)
		return 0;
	return dev->loop.watch(dev->loop.ctx, dev, fd);
}

void vhu_dev_unwatch(struct vhu_dev *dev, int fd)
{
	if (dev->has_loop)
		dev->loop.unwatch(dev->loop.ctx, dev, fd);
}

void vhu_dev_timer(struct vhu_dev *dev, int64_t ms)
{
	if (dev->has_loop)
		dev->loop.timer(dev->loop.ctx, dev, ms);
	else
		dev->timer_deadline_ns = ms < 0 ? -1 : now_ns() + ms * 1000000;
}

void vhu_dev_queue_event(struct vhu_dev *dev, uint16_t q, enum vhu_queue_event ev)
{
	if (dev->ops.queue_event)
		dev->ops.queue_event(dev, dev->opaque, q, ev);
}

void vhu_dev_check_ready(struct vhu_dev *dev)
{
	bool ready = dev->conn_fd >= 0;

	for (uint16_t i = 0; i < dev->min_ready && ready; i++) {
		const struct vhu_vq *vq = &dev->vqs[i];

		ready = vq->started && vq->enabled && !vq->broken;
	}
	if (ready == dev->ready)
		return;
	dev->ready = ready;
	vhu_info(&dev->lg, "device %s", ready ? "ready" : "stopped");
	if (ready && dev->ops.device_ready)
		dev->ops.device_ready(dev, dev->opaque);
	else if (!ready && dev->ops.device_stopped)
		dev->ops.device_stopped(dev, dev->opaque);
}

void vhu_dev_crash_at(struct vhu_dev *dev, uint32_t n, void (*hook)(void *),
		      void *arg)
{
	dev->crash_at = n;
	dev->crash_hook = hook;
	dev->crash_arg = arg;
}

void vhu_dev_reset_state(struct vhu_dev *dev)
{
	for (uint16_t i = 0; i < dev->nvq; i++)
		vhu_vq_reset(&dev->vqs[i]);
	vhu_dirty_log_clear(dev);
	vhu_inflight_clear(dev); /* the region's content stays for the next */
	vhu_mem_clear(&dev->mem);
	vhu_backend_close(dev);
	if (dev->log_call_fd >= 0)
		close(dev->log_call_fd);
	dev->log_call_fd = -1;
	dev->features = dev->protocol = 0;
	dev->features_set = dev->protocol_set = false;
	dev->owner = dev->owner_explicit = false;
	dev->status = 0;
}

void vhu_dev_conn_established(struct vhu_dev *dev, int fd)
{
	int rc;

	dev->conn_fd = fd;
	vhu_rx_init(&dev->rx);
	rc = vhu_dev_watch(dev, fd);
	if (rc) {
		vhu_err(&dev->lg, "the event loop refused to watch the connection: %s",
			strerror(-rc));
		close(fd);
		dev->conn_fd = -1;
		if (dev->mode == VHU_MODE_CLIENT)
			vhu_sock_schedule_reconnect(dev);
		return;
	}
	if (dev->ops.connected)
		dev->ops.connected(dev, dev->opaque);
}

void vhu_dev_conn_lost(struct vhu_dev *dev, const char *why)
{
	if (dev->conn_fd < 0)
		return;
	vhu_info(&dev->lg, "front-end disconnected: %s", why);
	vhu_dev_unwatch(dev, dev->conn_fd);
	close(dev->conn_fd);
	dev->conn_fd = -1;
	vhu_rx_reset(&dev->rx);
	dev->disconnect_pending = false;
	vhu_dev_reset_state(dev);
	vhu_dev_check_ready(dev);
	if (dev->ops.disconnected)
		dev->ops.disconnected(dev, dev->opaque);
	if (dev->mode == VHU_MODE_CLIENT) {
		dev->reconnect_ms = dev->reconnect_min_ms;
		vhu_sock_schedule_reconnect(dev);
	}
}

static void conn_readable(struct vhu_dev *dev)
{
	for (int i = 0; i < VHU_MSGS_PER_EVENT && dev->conn_fd >= 0; i++) {
		int rc = vhu_rx_read(dev->conn_fd, &dev->rx, &dev->lg);

		if (rc == 0)
			return;
		if (rc < 0) {
			vhu_dev_conn_lost(dev, rc == -ECONNRESET ? "connection closed" :
					  strerror(-rc));
			return;
		}
		vhu_msg_dispatch(dev, &dev->rx);
		if (dev->disconnect_pending) {
			vhu_dev_conn_lost(dev, "protocol error");
			return;
		}
	}
}

void vhu_dev_on_readable(struct vhu_dev *dev, int fd)
{
	if (fd < 0)
		return;
	if (fd == dev->conn_fd)
		conn_readable(dev);
	else if (fd == dev->listen_fd)
		vhu_sock_accept(dev);
}

void vhu_dev_on_timer(struct vhu_dev *dev)
{
	dev->timer_deadline_ns = -1;
	if (dev->mode == VHU_MODE_CLIENT && dev->conn_fd < 0)
		vhu_sock_try_connect(dev);
}

int vhu_dev_poll(struct vhu_dev *dev, int timeout_ms)
{
	struct pollfd p[2];
	int n = 0, rc, handled = 0;

	if (dev->has_loop)
		return -EINVAL;
	if (dev->listen_fd >= 0)
		p[n++] = (struct pollfd){ .fd = dev->listen_fd, .events = POLLIN };
	if (dev->conn_fd >= 0)
		p[n++] = (struct pollfd){ .fd = dev->conn_fd, .events = POLLIN };
	if (dev->timer_deadline_ns >= 0) {
		int64_t left = (dev->timer_deadline_ns - now_ns() + 999999) / 1000000;

		if (left < 0)
			left = 0;
		if (timeout_ms < 0 || left < timeout_ms)
			timeout_ms = (int)left;
	}
	rc = poll(p, (nfds_t)n, timeout_ms);
	if (rc < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		if (p[i].revents) {
			vhu_dev_on_readable(dev, p[i].fd);
			handled++;
		}
	}
	if (dev->timer_deadline_ns >= 0 && now_ns() >= dev->timer_deadline_ns) {
		vhu_dev_on_timer(dev);
		handled++;
	}
	return handled;
}

int vhu_dev_listen(struct vhu_dev *dev, const char *path)
{
	int fd, rc;

	if (dev->mode != VHU_MODE_NONE)
		return -EBUSY;
	if (!path || strlen(path) >= sizeof(dev->path))
		return -EINVAL;
	fd = vhu_sock_listen(&dev->lg, path);
	if (fd < 0)
		return fd;
	rc = vhu_dev_watch(dev, fd);
	if (rc) {
		close(fd);
		unlink(path);
		return rc;
	}
	snprintf(dev->path, sizeof(dev->path), "%s", path);
	dev->listen_fd = fd;
	dev->mode = VHU_MODE_SERVER;
	return 0;
}

int vhu_dev_connect(struct vhu_dev *dev, const char *path)
{
	if (dev->mode != VHU_MODE_NONE)
		return -EBUSY;
	if (!path || strlen(path) >= sizeof(dev->path))
		return -EINVAL;
	snprintf(dev->path, sizeof(dev->path), "%s", path);
	dev->mode = VHU_MODE_CLIENT;
	dev->reconnect_ms = dev->reconnect_min_ms;
	vhu_sock_try_connect(dev);
	return 0;
}

int vhu_dev_attach_fd(struct vhu_dev *dev, int fd)
{
	int fl;

	/* A device served through fds takes the next one once the last
	 * connection is gone (a supervisor handing over a new front-end). */
	if (dev->mode != VHU_MODE_NONE &&
	    (dev->mode != VHU_MODE_FD || dev->conn_fd >= 0))
		return -EBUSY;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	dev->mode = VHU_MODE_FD;
	vhu_dev_conn_established(dev, fd);
	return dev->conn_fd >= 0 ? 0 : -EIO;
}

void vhu_dev_disconnect(struct vhu_dev *dev)
{
	vhu_dev_conn_lost(dev, "disconnected by the application");
}

void vhu_dev_free(struct vhu_dev *dev)
{
	if (!dev)
		return;
	int mode = dev->mode;

	dev->mode = VHU_MODE_NONE; /* no reconnect from here on */
	vhu_dev_conn_lost(dev, "device freed");
	if (dev->listen_fd >= 0) {
		vhu_dev_unwatch(dev, dev->listen_fd);
		close(dev->listen_fd);
		if (mode == VHU_MODE_SERVER)
			unlink(dev->path);
	}
	vhu_dev_timer(dev, -1);
	vhu_dev_reset_state(dev);
	vhu_mem_destroy(&dev->mem);
	pthread_mutex_destroy(&dev->backend_lock);
	free(dev->vqs);
	free(dev);
}

bool vhu_dev_is_connected(const struct vhu_dev *dev)
{
	return dev->conn_fd >= 0;
}

bool vhu_dev_is_ready(const struct vhu_dev *dev)
{
	return dev->ready;
}

uint64_t vhu_dev_features(const struct vhu_dev *dev)
{
	return dev->features;
}

uint64_t vhu_dev_offered_features(const struct vhu_dev *dev)
{
	return dev->offered_features;
}

uint64_t vhu_dev_protocol_features(const struct vhu_dev *dev)
{
	return dev->protocol;
}

uint64_t vhu_dev_offered_protocol_features(const struct vhu_dev *dev)
{
	return dev->offered_protocol;
}

uint8_t vhu_dev_status(const struct vhu_dev *dev)
{
	return dev->status;
}

const char *vhu_dev_name(const struct vhu_dev *dev)
{
	return dev->name;
}

uint16_t vhu_dev_num_queues(const struct vhu_dev *dev)
{
	return dev->nvq;
}

uint32_t vhu_dev_mem_regions(const struct vhu_dev *dev)
{
	return vhu_mem_current((struct vhu_mem *)&dev->mem)->n;
}

int vhu_dev_queue_info(const struct vhu_dev *dev, uint16_t queue,
		       struct vhu_queue_info *info)
{
	if (queue >= dev->nvq || !info)
		return -EINVAL;
	vhu_vq_fill_info(&dev->vqs[queue], info);
	return 0;
}

struct vhu_vq *vhu_dev_vq(struct vhu_dev *dev, uint16_t index)
{
	return dev && index < dev->nvq ? &dev->vqs[index] : NULL;
}
