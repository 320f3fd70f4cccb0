/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Handlers of front-end requests.  vhu_msg_dispatch() has already checked
 * payload size, fd count, negotiated features, state and vring index; a
 * handler checks the values and changes state only once nothing can fail
 * any more, so a refused request leaves nothing half applied.
 */
#include "protocol/msg.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define VIRTIO_STATUS_NEEDS_RESET 0x40

static void reply_u64(struct vhu_reply *reply, uint64_t v)
{
	reply->u.u64 = v;
	reply->size = sizeof(uint64_t);
}

static struct vhu_vq *msg_vq(struct vhu_dev *dev, const struct vhu_rx *rx)
{
	return &dev->vqs[vhu_msg_vring_index(&rx->msg)];
}

/* Kick, call and error fds must be eventfds (Linux front-ends use them;
 * anything else would make our reads and writes block or misbehave). */
static int check_eventfd(struct vhu_dev *dev, const char *what, int fd)
{
	char link[64], target[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return 0; /* no /proc: cannot tell, accept */
	target[n] = 0;
	if (strcmp(target, "anon_inode:[eventfd]") != 0) {
		vhu_err(&dev->lg, "%s: fd is %s, not an eventfd", what, target);
		return -EINVAL;
	}
	return 0;
}

static bool any_queue_started(const struct vhu_dev *dev)
{
	for (uint16_t i = 0; i < dev->nvq; i++)
		if (dev->vqs[i].started)
			return true;
	return false;
}

int vhu_h_get_features(struct vhu_dev *dev, struct vhu_rx *rx,
		       struct vhu_reply *reply)
{
	reply_u64(reply, dev->offered_features);
	return 0;
}

int vhu_h_set_features(struct vhu_dev *dev, struct vhu_rx *rx,
		       struct vhu_reply *reply)
{
	uint64_t f = rx->msg.u.u64;

	if (f & ~dev->offered_features) {
		vhu_err(&dev->lg, "SET_FEATURES 0x%llx has bits never offered: 0x%llx",
			(unsigned long long)f,
			(unsigned long long)(f & ~dev->offered_features));
		return -EINVAL;
	}
	if (any_queue_started(dev) && ((f ^ dev->features) & ~VHU_BIT(VHU_F_LOG_ALL))) {
		vhu_err(&dev->lg, "SET_FEATURES 0x%llx changes ring features while "
			"rings run", (unsigned long long)f);
		return -EBUSY;
	}
	if ((f ^ dev->features) & VHU_BIT(VHU_F_LOG_ALL))
		vhu_info(&dev->lg, "dirty-page logging %s",
			 (f & VHU_BIT(VHU_F_LOG_ALL)) ? "on" : "off");
	dev->features = f;
	dev->features_set = true;
	/* Before the reply: every burst from now on logs (or not). */
	vhu_dirty_log_update(dev);
	vhu_info(&dev->lg, "features negotiated: 0x%llx", (unsigned long long)f);
	if (dev->ops.features_set)
		dev->ops.features_set(dev, dev->opaque, f);
	return 0;
}

int vhu_h_set_owner(struct vhu_dev *dev, struct vhu_rx *rx,
		    struct vhu_reply *reply)
{
	if (dev->owner_explicit) {
		vhu_err(&dev->lg, "SET_OWNER: the session already has an owner");
		return -EBUSY;
	}
	dev->owner = dev->owner_explicit = true;
	return 0;
}

int vhu_h_reset_owner(struct vhu_dev *dev, struct vhu_rx *rx,
		      struct vhu_reply *reply)
{
	/* Deprecated; the spec recommends only disabling the rings. */
	for (uint16_t i = 0; i < dev->nvq; i++)
		vhu_vq_stop(&dev->vqs[i]);
	return 0;
}

int vhu_h_set_mem_table(struct vhu_dev *dev, struct vhu_rx *rx,
			struct vhu_reply *reply)
{
	uint32_t n = rx->msg.u.mem.mem_hdr.nregions;
	struct vhu_mem_region regs[VHU_MEM_TABLE_MAX_REGIONS];
	int fds[VHU_MEM_TABLE_MAX_REGIONS];
	int rc;

	memcpy(regs, rx->msg.u.mem.regions, n * sizeof(regs[0]));
	for (uint32_t i = 0; i < n; i++)
		fds[i] = vhu_rx_take_fd(rx, i);
	rc = vhu_mem_set_table(&dev->mem, regs, fds, n);
	if (rc)
		return rc;
	vhu_info(&dev->lg, "memory table: %u regions", n);
	return 0;
}

int vhu_h_set_log_base(struct vhu_dev *dev, struct vhu_rx *rx,
		       struct vhu_reply *reply)
{
	struct vhu_log msg = rx->msg.u.log;

	return vhu_dirty_log_set_base(dev, &msg, vhu_rx_take_fd(rx, 0));
}

int vhu_h_set_log_fd(struct vhu_dev *dev, struct vhu_rx *rx,
		     struct vhu_reply *reply)
{
	int fd = vhu_rx_take_fd(rx, 0);
	int rc = check_eventfd(dev, "SET_LOG_FD", fd);

	if (rc) {
		close(fd);
		return rc;
	}
	if (dev->log_call_fd >= 0)
		close(dev->log_call_fd);
	dev->log_call_fd = fd;
	return 0;
}

int vhu_h_set_vring_num(struct vhu_dev *dev, struct vhu_rx *rx,
			struct vhu_reply *reply)
{
	struct vhu_vq *vq = msg_vq(dev, rx);
	uint32_t num = rx->msg.u.state.num;
	bool packed = vhu_has_feature(dev, VHU_F_RING_PACKED);

	if (vq->started) {
		vhu_err(&dev->lg, "queue %u: SET_VRING_NUM on a started ring", vq->index);
		return -EBUSY;
	}
	if (num == 0 || num > dev->max_qsize || (!packed && (num & (num - 1)))) {
		vhu_err(&dev->lg, "queue %u: ring size %u invalid (1..%u%s)",
			vq->index, num, dev->max_qsize,
			packed ? "" : ", a power of 2");
		return -EINVAL;
	}
	vq->size = num;
	return 0;
}

int vhu_h_set_vring_addr(struct vhu_dev *dev, struct vhu_rx *rx,
			 struct vhu_reply *reply)
{
	struct vhu_vq *vq = msg_vq(dev, rx);
	const struct vhu_vring_addr *a = &rx->msg.u.addr;

	if (a->flags & ~VHU_VRING_F_LOG) {
		vhu_err(&dev->lg, "queue %u: unknown vring flags 0x%x", vq->index,
			a->flags);
		return -EINVAL;
	}
	if ((a->flags & VHU_VRING_F_LOG) && !vhu_has_feature(dev, VHU_F_LOG_ALL)) {
		vhu_err(&dev->lg, "queue %u: used-ring logging without LOG_ALL",
			vq->index);
		return -EINVAL;
	}
	/* vhu logs what it writes by its own translation, never at
	 * log_guest_addr; an address outside guest memory is still wrong. */
	if ((a->flags & VHU_VRING_F_LOG) && vhu_mem_nregions(&dev->mem) &&
	    !vhu_mem_find(vhu_mem_current(&dev->mem), a->log_guest_addr)) {
		vhu_err(&dev->lg, "queue %u: log_guest_addr 0x%llx is outside guest "
			"memory", vq->index, (unsigned long long)a->log_guest_addr);
		return -EINVAL;
	}
	if (vq->started && (a->desc_user_addr != vq->addr.desc_user_addr ||
			    a->avail_user_addr != vq->addr.avail_user_addr ||
			    a->used_user_addr != vq->addr.used_user_addr)) {
		vhu_err(&dev->lg, "queue %u: SET_VRING_ADDR moves a started ring",
			vq->index);
		return -EBUSY;
	}
	vq->addr = *a;
	vq->has_addr = true;
	return 0;
}

int vhu_h_set_vring_base(struct vhu_dev *dev, struct vhu_rx *rx,
			 struct vhu_reply *reply)
{
	return vhu_vq_set_base(msg_vq(dev, rx), rx->msg.u.state.num);
}

int vhu_h_get_vring_base(struct vhu_dev *dev, struct vhu_rx *rx,
			 struct vhu_reply *reply)
{
	struct vhu_vq *vq = msg_vq(dev, rx);

	vhu_vq_drain(vq);
	vhu_vq_stop(vq);
	reply->u.state.index = vq->index;
	reply->u.state.num = vhu_vq_get_base(vq);
	reply->size = sizeof(reply->u.state);
	return 0;
}

int vhu_h_set_vring_kick(struct vhu_dev *dev, struct vhu_rx *rx,
			 struct vhu_reply *reply)
{
	struct vhu_vq *vq = msg_vq(dev, rx);
	bool nofd = rx->msg.u.u64 & VHU_VRING_NOFD;
	int fd = nofd ? -1 : vhu_rx_take_fd(rx, 0);

	if (fd >= 0 && check_eventfd(dev, "SET_VRING_KICK", fd)) {
		close(fd);
		return -EINVAL;
	}
	vhu_vq_set_kick_fd(vq, fd, nofd);
	if (vq->started) {
		/* A new kick fd for a running ring: tell the application. */
		vhu_dev_queue_event(dev, vq->index, VHU_QUEUE_STARTED);
		return 0;
	}
	return vhu_vq_start(vq);
}

static int set_notify_fd(struct vhu_dev *dev, struct vhu_rx *rx, const char *what,
			 void (*set)(struct vhu_vq *, int))
{
	bool nofd = rx->msg.u.u64 & VHU_VRING_NOFD;
	int fd = nofd ? -1 : vhu_rx_take_fd(rx, 0);

	if (fd >= 0 && check_eventfd(dev, what, fd)) {
		close(fd);
		return -EINVAL;
	}
	set(msg_vq(dev, rx), fd);
	return 0;
}

int vhu_h_set_vring_call(struct vhu_dev *dev, struct vhu_rx *rx,
			 struct vhu_reply *reply)
{
	return set_notify_fd(dev, rx, "SET_VRING_CALL", vhu_vq_set_call_fd);
}

int vhu_h_set_vring_err(struct vhu_dev *dev, struct vhu_rx *rx,
			struct vhu_reply *reply)
{
	return set_notify_fd(dev, rx, "SET_VRING_ERR", vhu_vq_set_err_fd);
}

int vhu_h_get_protocol_features(struct vhu_dev *dev, struct vhu_rx *rx,
				struct vhu_reply *reply)
{
	reply_u64(reply, dev->offered_protocol);
	return 0;
}

int vhu_h_set_protocol_features(struct vhu_dev *dev, struct vhu_rx *rx,
				struct vhu_reply *reply)
{
	uint64_t pf = rx->msg.u.u64;
	uint64_t inband_needs = VHU_BIT(VHU_PF_BACKEND_REQ) | VHU_BIT(VHU_PF_REPLY_ACK);

	if (pf & ~dev->offered_protocol) {
		vhu_err(&dev->lg, "SET_PROTOCOL_FEATURES 0x%llx has bits never "
			"offered: 0x%llx", (unsigned long long)pf,
			(unsigned long long)(pf & ~dev->offered_protocol));
		return -EINVAL;
	}
	if ((pf & VHU_BIT(VHU_PF_INBAND_NOTIFICATIONS)) &&
	    (pf & inband_needs) != inband_needs) {
		/* The spec's answer: close the connection. */
		vhu_err(&dev->lg, "in-band notifications without BACKEND_REQ and "
			"REPLY_ACK; disconnecting");
		return -ECONNABORTED;
	}
	dev->protocol = pf;
	dev->protocol_set = true;
	return 0;
}

int vhu_h_get_queue_num(struct vhu_dev *dev, struct vhu_rx *rx,
			struct vhu_reply *reply)
{
	reply_u64(reply, dev->queue_pairs ? dev->nvq / 2 : dev->nvq);
	return 0;
}

int vhu_h_set_vring_enable(struct vhu_dev *dev, struct vhu_rx *rx,
			   struct vhu_reply *reply)
{
	uint32_t num = rx->msg.u.state.num;

	if (num > 1) {
		vhu_err(&dev->lg, "SET_VRING_ENABLE with %u (0 or 1)", num);
		return -EINVAL;
	}
	return vhu_vq_set_enable(msg_vq(dev, rx), num == 1);
}

int vhu_h_send_rarp(struct vhu_dev *dev, struct vhu_rx *rx,
		    struct vhu_reply *reply)
{
	uint8_t mac[6];

	memcpy(mac, rx->msg.u.bytes, sizeof(mac));
	vhu_info(&dev->lg, "SEND_RARP for %02x:%02x:%02x:%02x:%02x:%02x", mac[0],
		 mac[1], mac[2], mac[3], mac[4], mac[5]);
	if (dev->ops.send_rarp)
		dev->ops.send_rarp(dev, dev->opaque, mac);
	return 0;
}

int vhu_h_net_set_mtu(struct vhu_dev *dev, struct vhu_rx *rx,
		      struct vhu_reply *reply)
{
	uint64_t mtu = rx->msg.u.u64;

	if (mtu < 68 || mtu > 65535) {
		vhu_err(&dev->lg, "NET_SET_MTU %llu out of range 68..65535",
			(unsigned long long)mtu);
		return -EINVAL;
	}
	return dev->ops.set_mtu(dev, dev->opaque, (uint16_t)mtu);
}

int vhu_h_set_backend_req_fd(struct vhu_dev *dev, struct vhu_rx *rx,
			     struct vhu_reply *reply)
{
	vhu_backend_set_fd(dev, vhu_rx_take_fd(rx, 0));
	return 0;
}

int vhu_h_get_config(struct vhu_dev *dev, struct vhu_rx *rx,
		     struct vhu_reply *reply)
{
	struct vhu_config_hdr h = rx->msg.u.config.hdr;
	uint32_t end;
	int rc;

	if (h.size == 0 || __builtin_add_overflow(h.offset, h.size, &end)) {
		vhu_err(&dev->lg, "GET_CONFIG offset %u size %u", h.offset, h.size);
		return -EINVAL;
	}
	memset(reply->u.bytes, 0, sizeof(h) + h.size);
	rc = dev->ops.get_config(dev, dev->opaque, h.offset,
				 reply->u.bytes + sizeof(h), h.size);
	if (rc)
		return rc < 0 ? rc : -EIO;
	memcpy(reply->u.bytes, &h, sizeof(h));
	reply->size = (uint32_t)sizeof(h) + h.size;
	return 0;
}

int vhu_h_set_config(struct vhu_dev *dev, struct vhu_rx *rx,
		     struct vhu_reply *reply)
{
	struct vhu_config_hdr h = rx->msg.u.config.hdr;
	uint32_t end;

	if (h.size == 0 || __builtin_add_overflow(h.offset, h.size, &end) ||
	    h.flags > 1) {
		vhu_err(&dev->lg, "SET_CONFIG offset %u size %u flags %u", h.offset,
			h.size, h.flags);
		return -EINVAL;
	}
	if (!dev->ops.set_config)
		return -EPERM; /* read-only config space */
	return dev->ops.set_config(dev, dev->opaque, h.offset,
				   rx->msg.u.config.data, h.size, h.flags);
}

int vhu_h_get_inflight_fd(struct vhu_dev *dev, struct vhu_rx *rx,
			  struct vhu_reply *reply)
{
	struct vhu_inflight msg = rx->msg.u.inflight;

	reply->size = sizeof(struct vhu_inflight);
	return vhu_inflight_get_fd(dev, &msg, (struct vhu_inflight *)reply->u.bytes,
				   &reply->fd);
}

int vhu_h_set_inflight_fd(struct vhu_dev *dev, struct vhu_rx *rx,
			  struct vhu_reply *reply)
{
	struct vhu_inflight msg = rx->msg.u.inflight;

	return vhu_inflight_set_fd(dev, &msg, vhu_rx_take_fd(rx, 0));
}

int vhu_h_reset_device(struct vhu_dev *dev, struct vhu_rx *rx,
		       struct vhu_reply *reply)
{
	for (uint16_t i = 0; i < dev->nvq; i++)
		vhu_vq_reset(&dev->vqs[i]);
	/* A reset device has nothing in flight: the region must not hand
	 * anything out again if the front-end sends it back. */
	vhu_inflight_forget(dev);
	vhu_inflight_clear(dev);
	dev->features = 0;
	dev->features_set = false;
	dev->status = 0;
	vhu_dirty_log_clear(dev);
	return 0;
}

int vhu_h_vring_kick(struct vhu_dev *dev, struct vhu_rx *rx,
		     struct vhu_reply *reply)
{
	struct vhu_vq *vq = msg_vq(dev, rx);

	if (!vq->started) {
		int rc = vhu_vq_start(vq);

		if (rc)
			return rc;
	}
	vhu_dev_queue_event(dev, vq->index, VHU_QUEUE_KICKED);
	return 0;
}

int vhu_h_get_max_mem_slots(struct vhu_dev *dev, struct vhu_rx *rx,
			    struct vhu_reply *reply)
{
	reply_u64(reply, dev->max_mem_slots);
	return 0;
}

int vhu_h_add_mem_reg(struct vhu_dev *dev, struct vhu_rx *rx,
		      struct vhu_reply *reply)
{
	struct vhu_mem_region reg = rx->msg.u.mem_reg.region;

	return vhu_mem_add_region(&dev->mem, &reg, vhu_rx_take_fd(rx, 0));
}

int vhu_h_rem_mem_reg(struct vhu_dev *dev, struct vhu_rx *rx,
		      struct vhu_reply *reply)
{
	struct vhu_mem_region reg = rx->msg.u.mem_reg.region;

	/* An fd sent anyway is closed unused by the dispatcher (spec: MAY). */
	return vhu_mem_remove_region(&dev->mem, &reg);
}

int vhu_h_set_status(struct vhu_dev *dev, struct vhu_rx *rx,
		     struct vhu_reply *reply)
{
	uint64_t st = rx->msg.u.u64;

	if (st > 0xff) {
		vhu_err(&dev->lg, "SET_STATUS 0x%llx is not a status byte",
			(unsigned long long)st);
		return -EINVAL;
	}
	dev->status = (uint8_t)st;
	if (dev->ops.status_set)
		dev->ops.status_set(dev, dev->opaque, dev->status);
	return 0;
}

int vhu_h_get_status(struct vhu_dev *dev, struct vhu_rx *rx,
		     struct vhu_reply *reply)
{
	uint64_t st = dev->status;

	for (uint16_t i = 0; i < dev->nvq; i++)
		if (dev->vqs[i].broken)
			st |= VIRTIO_STATUS_NEEDS_RESET;
	reply_u64(reply, st);
	return 0;
}
