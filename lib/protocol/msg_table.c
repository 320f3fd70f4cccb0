/* SPDX-License-Identifier: BSD-3-Clause */
/* The request table, central validation and the reply rules. */
#include "protocol/msg.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define U64 sizeof(uint64_t)
#define STATE sizeof(struct vhu_vring_state)
#define ADDR sizeof(struct vhu_vring_addr)
#define MEMREG sizeof(struct vhu_mem_reg_msg)
#define CFG_MIN sizeof(struct vhu_config_hdr)
#define CFG_MAX (sizeof(struct vhu_config_hdr) + VHU_CONFIG_MAX_SIZE)
#define MEM_MIN (sizeof(struct vhu_mem_table_hdr) + sizeof(struct vhu_mem_region))
#define MEM_MAX (sizeof(struct vhu_mem_table_hdr) + \
		 VHU_MEM_TABLE_MAX_REGIONS * sizeof(struct vhu_mem_region))

#define OWNER VHU_NEED_OWNER
#define FEAT VHU_NEED_FEATURES
#define PROTO VHU_NEED_PROTOCOL
#define VRING VHU_HAS_VRING

#define REQ(code, nm, mn, mx, fd, rep, nd, p, h)                        \
	[VHU_REQ_##code] = { .name = nm, .min_size = mn, .max_size = mx, \
			     .fds = fd, .reply = rep, .needs = nd, .pf = p, \
			     .handler = h }

static const struct vhu_req_info req_table[VHU_REQ_MAX] = {
	REQ(GET_FEATURES, "GET_FEATURES", 0, 0, VHU_FDS_NONE, VHU_REPLY_DATA, 0, -1,
	    vhu_h_get_features),
	REQ(SET_FEATURES, "SET_FEATURES", U64, U64, VHU_FDS_NONE, VHU_REPLY_ACK,
	    OWNER, -1, vhu_h_set_features),
	REQ(SET_OWNER, "SET_OWNER", 0, 0, VHU_FDS_NONE, VHU_REPLY_ACK, 0, -1,
	    vhu_h_set_owner),
	REQ(RESET_OWNER, "RESET_OWNER", 0, 0, VHU_FDS_NONE, VHU_REPLY_ACK, 0, -1,
	    vhu_h_reset_owner),
	REQ(SET_MEM_TABLE, "SET_MEM_TABLE", MEM_MIN, MEM_MAX, VHU_FDS_REGIONS,
	    VHU_REPLY_ACK, OWNER | FEAT, -1, vhu_h_set_mem_table),
	/* With LOG_SHMFD the front-end always waits for a reply. */
	REQ(SET_LOG_BASE, "SET_LOG_BASE", sizeof(struct vhu_log),
	    sizeof(struct vhu_log), VHU_FDS_ONE, VHU_REPLY_STATUS, OWNER,
	    VHU_PF_LOG_SHMFD, vhu_h_set_log_base),
	REQ(SET_LOG_FD, "SET_LOG_FD", 0, 0, VHU_FDS_ONE, VHU_REPLY_ACK, OWNER, -1,
	    vhu_h_set_log_fd),
	REQ(SET_VRING_NUM, "SET_VRING_NUM", STATE, STATE, VHU_FDS_NONE,
	    VHU_REPLY_ACK, OWNER | FEAT | VRING, -1, vhu_h_set_vring_num),
	REQ(SET_VRING_ADDR, "SET_VRING_ADDR", ADDR, ADDR, VHU_FDS_NONE,
	    VHU_REPLY_ACK, OWNER | FEAT | VRING, -1, vhu_h_set_vring_addr),
	REQ(SET_VRING_BASE, "SET_VRING_BASE", STATE, STATE, VHU_FDS_NONE,
	    VHU_REPLY_ACK, OWNER | FEAT | VRING, -1, vhu_h_set_vring_base),
	REQ(GET_VRING_BASE, "GET_VRING_BASE", STATE, STATE, VHU_FDS_NONE,
	    VHU_REPLY_DATA, OWNER | VRING, -1, vhu_h_get_vring_base),
	REQ(SET_VRING_KICK, "SET_VRING_KICK", U64, U64, VHU_FDS_NOFD_BIT,
	    VHU_REPLY_ACK, OWNER | FEAT | VRING, -1, vhu_h_set_vring_kick),
	REQ(SET_VRING_CALL, "SET_VRING_CALL", U64, U64, VHU_FDS_NOFD_BIT,
	    VHU_REPLY_ACK, OWNER | VRING, -1, vhu_h_set_vring_call),
	REQ(SET_VRING_ERR, "SET_VRING_ERR", U64, U64, VHU_FDS_NOFD_BIT,
	    VHU_REPLY_ACK, OWNER | VRING, -1, vhu_h_set_vring_err),
	REQ(GET_PROTOCOL_FEATURES, "GET_PROTOCOL_FEATURES", 0, 0, VHU_FDS_NONE,
	    VHU_REPLY_DATA, 0, -1, vhu_h_get_protocol_features),
	REQ(SET_PROTOCOL_FEATURES, "SET_PROTOCOL_FEATURES", U64, U64,
	    VHU_FDS_NONE, VHU_REPLY_ACK, 0, -1, vhu_h_set_protocol_features),
	REQ(GET_QUEUE_NUM, "GET_QUEUE_NUM", 0, 0, VHU_FDS_NONE, VHU_REPLY_DATA, 0,
	    VHU_PF_MQ, vhu_h_get_queue_num),
	REQ(SET_VRING_ENABLE, "SET_VRING_ENABLE", STATE, STATE, VHU_FDS_NONE,
	    VHU_REPLY_ACK, OWNER | PROTO | VRING, -1, vhu_h_set_vring_enable),
	REQ(SEND_RARP, "SEND_RARP", U64, U64, VHU_FDS_NONE, VHU_REPLY_ACK, OWNER,
	    VHU_PF_RARP, vhu_h_send_rarp),
	REQ(NET_SET_MTU, "NET_SET_MTU", U64, U64, VHU_FDS_NONE, VHU_REPLY_ACK,
	    OWNER, VHU_PF_NET_MTU, vhu_h_net_set_mtu),
	REQ(SET_BACKEND_REQ_FD, "SET_BACKEND_REQ_FD", 0, 0, VHU_FDS_ONE,
	    VHU_REPLY_ACK, 0, VHU_PF_BACKEND_REQ, vhu_h_set_backend_req_fd),
	REQ(IOTLB_MSG, "IOTLB_MSG", sizeof(struct vhu_iotlb_msg),
	    sizeof(struct vhu_iotlb_msg), VHU_FDS_NONE, VHU_REPLY_STATUS, OWNER,
	    -1, NULL),
	REQ(SET_VRING_ENDIAN, "SET_VRING_ENDIAN", STATE, STATE, VHU_FDS_NONE,
	    VHU_REPLY_ACK, OWNER | VRING, VHU_PF_CROSS_ENDIAN, NULL),
	REQ(GET_CONFIG, "GET_CONFIG", CFG_MIN, CFG_MAX, VHU_FDS_NONE,
	    VHU_REPLY_CONFIG, 0, VHU_PF_CONFIG, vhu_h_get_config),
	REQ(SET_CONFIG, "SET_CONFIG", CFG_MIN, CFG_MAX, VHU_FDS_NONE,
	    VHU_REPLY_ACK, 0, VHU_PF_CONFIG, vhu_h_set_config),
	REQ(CREATE_CRYPTO_SESSION, "CREATE_CRYPTO_SESSION",
	    VHU_CRYPTO_SESSION_MIN_SIZE, VHU_MAX_PAYLOAD, VHU_FDS_NONE,
	    VHU_REPLY_DATA, OWNER, VHU_PF_CRYPTO_SESSION, NULL),
	REQ(CLOSE_CRYPTO_SESSION, "CLOSE_CRYPTO_SESSION", U64, U64, VHU_FDS_NONE,
	    VHU_REPLY_ACK, OWNER, VHU_PF_CRYPTO_SESSION, NULL),
	REQ(POSTCOPY_ADVISE, "POSTCOPY_ADVISE", 0, 0, VHU_FDS_NONE,
	    VHU_REPLY_DATA, OWNER, VHU_PF_PAGEFAULT, NULL),
	REQ(POSTCOPY_LISTEN, "POSTCOPY_LISTEN", 0, 0, VHU_FDS_NONE, VHU_REPLY_ACK,
	    OWNER, VHU_PF_PAGEFAULT, NULL),
	REQ(POSTCOPY_END, "POSTCOPY_END", 0, 0, VHU_FDS_NONE, VHU_REPLY_STATUS,
	    OWNER, VHU_PF_PAGEFAULT, NULL),
	REQ(GET_INFLIGHT_FD, "GET_INFLIGHT_FD", sizeof(struct vhu_inflight),
	    sizeof(struct vhu_inflight), VHU_FDS_NONE, VHU_REPLY_DATA, OWNER,
	    VHU_PF_INFLIGHT_SHMFD, vhu_h_get_inflight_fd),
	REQ(SET_INFLIGHT_FD, "SET_INFLIGHT_FD", sizeof(struct vhu_inflight),
	    sizeof(struct vhu_inflight), VHU_FDS_ONE, VHU_REPLY_ACK, OWNER,
	    VHU_PF_INFLIGHT_SHMFD, vhu_h_set_inflight_fd),
	REQ(GPU_SET_SOCKET, "GPU_SET_SOCKET", 0, 0, VHU_FDS_ONE, VHU_REPLY_ACK,
	    OWNER, -1, NULL),
	REQ(RESET_DEVICE, "RESET_DEVICE", 0, 0, VHU_FDS_NONE, VHU_REPLY_ACK, 0,
	    VHU_PF_RESET_DEVICE, vhu_h_reset_device),
	REQ(VRING_KICK, "VRING_KICK", STATE, STATE, VHU_FDS_NONE, VHU_REPLY_ACK,
	    OWNER | FEAT | VRING, VHU_PF_INBAND_NOTIFICATIONS, vhu_h_vring_kick),
	REQ(GET_MAX_MEM_SLOTS, "GET_MAX_MEM_SLOTS", 0, 0, VHU_FDS_NONE,
	    VHU_REPLY_DATA, 0, VHU_PF_CONFIGURE_MEM_SLOTS, vhu_h_get_max_mem_slots),
	REQ(ADD_MEM_REG, "ADD_MEM_REG", MEMREG, MEMREG, VHU_FDS_ONE, VHU_REPLY_ACK,
	    OWNER | FEAT, VHU_PF_CONFIGURE_MEM_SLOTS, vhu_h_add_mem_reg),
	REQ(REM_MEM_REG, "REM_MEM_REG", MEMREG, MEMREG, VHU_FDS_ZERO_OR_ONE,
	    VHU_REPLY_ACK, OWNER | FEAT, VHU_PF_CONFIGURE_MEM_SLOTS,
	    vhu_h_rem_mem_reg),
	REQ(SET_STATUS, "SET_STATUS", U64, U64, VHU_FDS_NONE, VHU_REPLY_ACK, 0,
	    VHU_PF_STATUS, vhu_h_set_status),
	REQ(GET_STATUS, "GET_STATUS", 0, 0, VHU_FDS_NONE, VHU_REPLY_DATA, 0,
	    VHU_PF_STATUS, vhu_h_get_status),
	REQ(GET_SHARED_OBJECT, "GET_SHARED_OBJECT",
	    sizeof(struct vhu_shared_object), sizeof(struct vhu_shared_object),
	    VHU_FDS_NONE, VHU_REPLY_DATA, OWNER, VHU_PF_SHARED_OBJECT, NULL),
	REQ(SET_DEVICE_STATE_FD, "SET_DEVICE_STATE_FD",
	    sizeof(struct vhu_device_state_transfer),
	    sizeof(struct vhu_device_state_transfer), VHU_FDS_ONE,
	    VHU_REPLY_STATUS, OWNER, VHU_PF_DEVICE_STATE, NULL),
	REQ(CHECK_DEVICE_STATE, "CHECK_DEVICE_STATE", 0, 0, VHU_FDS_NONE,
	    VHU_REPLY_STATUS, OWNER, VHU_PF_DEVICE_STATE, NULL),
};

const struct vhu_req_info *vhu_req_lookup(uint32_t request)
{
	if (request >= VHU_REQ_MAX || !req_table[request].name)
		return NULL;
	return &req_table[request];
}

const char *vhu_request_name(uint32_t request)
{
	const struct vhu_req_info *info = vhu_req_lookup(request);

	return info ? info->name : "UNKNOWN";
}

uint32_t vhu_msg_vring_index(const struct vhu_msg *msg)
{
	switch (msg->hdr.request) {
	case VHU_REQ_SET_VRING_KICK:
	case VHU_REQ_SET_VRING_CALL:
	case VHU_REQ_SET_VRING_ERR:
		return (uint32_t)(msg->u.u64 & VHU_VRING_IDX_MASK);
	case VHU_REQ_SET_VRING_ADDR:
		return msg->u.addr.index;
	default:
		return msg->u.state.index;
	}
}

static int check_size(struct vhu_dev *dev, const struct vhu_req_info *info,
		      const struct vhu_msg *msg)
{
	uint32_t size = msg->hdr.size;

	if (size < info->min_size || size > info->max_size) {
		vhu_err(&dev->lg, "%s: payload of %u bytes, expected %u..%u",
			info->name, size, info->min_size, info->max_size);
		return -EINVAL;
	}
	switch (msg->hdr.request) {
	case VHU_REQ_SET_MEM_TABLE: {
		uint32_t n = msg->u.mem.mem_hdr.nregions;

		if (n == 0 || n > VHU_MEM_TABLE_MAX_REGIONS ||
		    size != sizeof(struct vhu_mem_table_hdr) +
				    n * sizeof(struct vhu_mem_region)) {
			vhu_err(&dev->lg, "SET_MEM_TABLE: %u regions in a %u-byte "
				"payload (1..%d regions of 32 bytes after 8)", n,
				size, VHU_MEM_TABLE_MAX_REGIONS);
			return -EINVAL;
		}
		break;
	}
	case VHU_REQ_GET_CONFIG:
	case VHU_REQ_SET_CONFIG:
		if (msg->u.config.hdr.size > VHU_CONFIG_MAX_SIZE ||
		    size != CFG_MIN + msg->u.config.hdr.size) {
			vhu_err(&dev->lg, "%s: config size %u in a %u-byte payload",
				info->name, msg->u.config.hdr.size, size);
			return -EINVAL;
		}
		break;
	default:
		break;
	}
	return 0;
}

static int check_fds(struct vhu_dev *dev, const struct vhu_req_info *info,
		     const struct vhu_rx *rx)
{
	unsigned want_min, want_max;

	switch (info->fds) {
	case VHU_FDS_ONE:
		want_min = want_max = 1;
		break;
	case VHU_FDS_NOFD_BIT:
		want_min = want_max = (rx->msg.u.u64 & VHU_VRING_NOFD) ? 0 : 1;
		break;
	case VHU_FDS_REGIONS:
		want_min = want_max = rx->msg.u.mem.mem_hdr.nregions;
		break;
	case VHU_FDS_ZERO_OR_ONE:
		want_min = 0;
		want_max = 1;
		break;
	default:
		want_min = want_max = 0;
		break;
	}
	if (rx->nfds < want_min || rx->nfds > want_max) {
		vhu_err(&dev->lg, "%s: %u file descriptors attached, expected %u%s",
			info->name, rx->nfds, want_min,
			want_max != want_min ? " or 1" : "");
		return -EBADF;
	}
	return 0;
}

static int check_state(struct vhu_dev *dev, const struct vhu_req_info *info,
		       const struct vhu_msg *msg)
{
	if (info->pf >= 0 && !vhu_has_protocol(dev, (unsigned)info->pf)) {
		vhu_err(&dev->lg, "%s needs protocol feature %d, which was %s",
			info->name, info->pf,
			(dev->offered_protocol & VHU_BIT(info->pf)) ?
				"not negotiated" : "never offered");
		return -EOPNOTSUPP;
	}
	if (!info->handler) {
		vhu_err(&dev->lg, "%s is not supported by this back-end", info->name);
		return -EOPNOTSUPP;
	}
	if ((info->needs & VHU_NEED_OWNER) && !dev->owner) {
		/* DPDK's virtio-user, reconnecting in server mode, never sends
		 * SET_OWNER, and librte_vhost and libvhost-user do not require
		 * it: the first session request claims the session. */
		vhu_info(&dev->lg, "%s without SET_OWNER: session claimed implicitly",
			 info->name);
		dev->owner = true;
	}
	if ((info->needs & VHU_NEED_FEATURES) && !dev->features_set) {
		vhu_err(&dev->lg, "%s before SET_FEATURES", info->name);
		return -EPERM;
	}
	/* SET_PROTOCOL_FEATURES counts too: QEMU may enable rings before its
	 * SET_FEATURES carries the bit. */
	if ((info->needs & VHU_NEED_PROTOCOL) && !dev->protocol_set &&
	    !vhu_has_feature(dev, VHU_F_PROTOCOL_FEATURES)) {
		vhu_err(&dev->lg, "%s without VHOST_USER_F_PROTOCOL_FEATURES "
			"negotiated", info->name);
		return -EPERM;
	}
	if (info->needs & VHU_HAS_VRING) {
		uint32_t idx = vhu_msg_vring_index(msg);

		if (idx >= dev->nvq) {
			vhu_err(&dev->lg, "%s: vring index %u, the device has %u",
				info->name, idx, dev->nvq);
			return -ERANGE;
		}
		if ((msg->hdr.request == VHU_REQ_SET_VRING_KICK ||
		     msg->hdr.request == VHU_REQ_SET_VRING_CALL ||
		     msg->hdr.request == VHU_REQ_SET_VRING_ERR) &&
		    (msg->u.u64 & ~(uint64_t)(VHU_VRING_IDX_MASK | VHU_VRING_NOFD))) {
			vhu_err(&dev->lg, "%s: reserved bits set in 0x%llx",
				info->name, (unsigned long long)msg->u.u64);
			return -EINVAL;
		}
	}
	return 0;
}

static void send_reply(struct vhu_dev *dev, uint32_t request,
		       const void *payload, uint32_t size, int fd)
{
	int rc = vhu_msg_send(dev->conn_fd, request, VHU_FLAG_VERSION | VHU_FLAG_REPLY,
			      payload, size, fd >= 0 ? &fd : NULL, fd >= 0, 1000);

	if (rc) {
		vhu_err(&dev->lg, "cannot send reply to %s: %s",
			vhu_request_name(request), strerror(-rc));
		dev->disconnect_pending = true;
	}
}

void vhu_msg_dispatch(struct vhu_dev *dev, struct vhu_rx *rx)
{
	const struct vhu_msg_hdr *h = &rx->msg.hdr;
	const struct vhu_req_info *info;
	struct vhu_reply reply = { .fd = -1 };
	uint32_t request = h->request;
	bool need_reply = h->flags & VHU_FLAG_NEED_REPLY;
	int rc;

	if ((h->flags & VHU_FLAG_VERSION_MASK) != VHU_FLAG_VERSION ||
	    (h->flags & ~VHU_FLAG_KNOWN) || (h->flags & VHU_FLAG_REPLY)) {
		/* Not a request we can trust the framing of: hang up. */
		vhu_err(&dev->lg, "request %u with flags 0x%x (version must be 1, "
			"no reply or reserved bits); disconnecting", request,
			h->flags);
		dev->disconnect_pending = true;
		rc = -EPROTO;
		goto done;
	}
	info = vhu_req_lookup(request);
	if (!info) {
		vhu_err(&dev->lg, "unknown request %u (%u-byte payload, %u fds) "
			"refused", request, h->size, rx->nfds);
		rc = -EOPNOTSUPP;
		if (need_reply) {
			reply.u.u64 = 1;
			send_reply(dev, request, &reply.u.u64, sizeof(uint64_t), -1);
		}
		goto done;
	}
	vhu_dbg(&dev->lg, "%s (%u bytes, %u fds)", info->name, h->size, rx->nfds);
	rc = check_size(dev, info, &rx->msg);
	if (!rc)
		rc = check_fds(dev, info, rx);
	if (!rc)
		rc = check_state(dev, info, &rx->msg);
	if (!rc)
		rc = info->handler(dev, rx, &reply);

	switch (info->reply) {
	case VHU_REPLY_DATA:
		if (rc) {
			vhu_err(&dev->lg, "%s refused (%s); the front-end expects a "
				"reply with data, disconnecting", info->name,
				strerror(-rc));
			dev->disconnect_pending = true;
			break;
		}
		send_reply(dev, request, reply.u.bytes, reply.size, reply.fd);
		break;
	case VHU_REPLY_CONFIG:
		send_reply(dev, request, reply.u.bytes, rc ? 0 : reply.size, -1);
		break;
	case VHU_REPLY_STATUS:
		/* A request whose reply comes with a protocol feature gets
		 * none when it was not negotiated (SET_LOG_BASE without
		 * LOG_SHMFD): only the ack rule then. */
		if (info->pf < 0 || vhu_has_protocol(dev, (unsigned)info->pf) ||
		    need_reply) {
			reply.u.u64 = rc ? 1 : 0;
			send_reply(dev, request, &reply.u.u64, sizeof(uint64_t), -1);
		}
		break;
	default:
		if (need_reply) {
			reply.u.u64 = rc ? 1 : 0;
			send_reply(dev, request, &reply.u.u64, sizeof(uint64_t), -1);
		}
		break;
	}
	if (reply.fd >= 0)
		close(reply.fd);
done:
	if (rc == -ECONNABORTED)
		dev->disconnect_pending = true;
	if (dev->ops.request_done)
		dev->ops.request_done(dev, dev->opaque, request, rc);
	vhu_rx_reset(rx); /* closes every fd a handler did not take */
}
