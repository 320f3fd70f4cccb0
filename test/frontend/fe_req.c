/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test frontend: one typed helper per front-end request, and the fe's end
 * of the back-end channel.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fe_int.h"

uint32_t fe_req_flags(const struct vhu_fe *fe, uint32_t request)
{
	uint32_t flags = VHU_FLAG_VERSION;

	if (fe->need_reply && !vhu_fe_has_reply(request) &&
	    (fe->acked_pf & VHU_BIT(VHU_PF_REPLY_ACK)))
		flags |= VHU_FLAG_NEED_REPLY;
	return flags;
}

/* A request without an explicit reply. */
static int fe_do(struct vhu_fe *fe, uint32_t request, const void *payload,
		 size_t len, const int *fds, size_t nfds)
{
	return vhu_fe_request(fe, request, fe_req_flags(fe, request), payload,
			      len, fds, nfds, NULL, 0);
}

static int fe_do_u64(struct vhu_fe *fe, uint32_t request, uint64_t v)
{
	return fe_do(fe, request, &v, sizeof(v), NULL, 0);
}

/* A request answered with a u64. */
static int fe_get_u64(struct vhu_fe *fe, uint32_t request, uint64_t *out)
{
	uint64_t v = 0;
	int n;

	n = vhu_fe_request(fe, request, VHU_FLAG_VERSION, NULL, 0, NULL, 0, &v,
			   sizeof(v));
	if (n < 0)
		return n;
	if (n != sizeof(v))
		return -EPROTO;
	if (out)
		*out = v;
	return 0;
}

int vhu_fe_get_features(struct vhu_fe *fe, uint64_t *features)
{
	uint64_t v;
	int err = fe_get_u64(fe, VHU_REQ_GET_FEATURES, &v);

	if (err)
		return err;
	fe->offered_features = v;
	if (features)
		*features = v;
	return 0;
}

int vhu_fe_set_features(struct vhu_fe *fe, uint64_t features)
{
	int err = fe_do_u64(fe, VHU_REQ_SET_FEATURES, features);

	if (!err)
		fe->acked_features = features;
	return err;
}

int vhu_fe_get_protocol_features(struct vhu_fe *fe, uint64_t *pf)
{
	uint64_t v;
	int err = fe_get_u64(fe, VHU_REQ_GET_PROTOCOL_FEATURES, &v);

	if (err)
		return err;
	fe->offered_pf = v;
	if (pf)
		*pf = v;
	return 0;
}

int vhu_fe_set_protocol_features(struct vhu_fe *fe, uint64_t pf)
{
	int err;

	/* Like QEMU, never ask for an ack of the request that may be the one
	 * negotiating REPLY_ACK: fe_req_flags() still sees the old set. */
	err = fe_do_u64(fe, VHU_REQ_SET_PROTOCOL_FEATURES, pf);
	if (!err)
		fe->acked_pf = pf;
	return err;
}

int vhu_fe_set_owner(struct vhu_fe *fe)
{
	return fe_do(fe, VHU_REQ_SET_OWNER, NULL, 0, NULL, 0);
}

int vhu_fe_reset_owner(struct vhu_fe *fe)
{
	return fe_do(fe, VHU_REQ_RESET_OWNER, NULL, 0, NULL, 0);
}

int vhu_fe_reset_device(struct vhu_fe *fe)
{
	return fe_do(fe, VHU_REQ_RESET_DEVICE, NULL, 0, NULL, 0);
}

int vhu_fe_get_queue_num(struct vhu_fe *fe, uint64_t *num)
{
	return fe_get_u64(fe, VHU_REQ_GET_QUEUE_NUM, num);
}

int vhu_fe_get_max_mem_slots(struct vhu_fe *fe, uint64_t *slots)
{
	return fe_get_u64(fe, VHU_REQ_GET_MAX_MEM_SLOTS, slots);
}

static void fe_region_desc(const struct vhu_fe_region *r,
			   struct vhu_mem_region *d)
{
	d->guest_phys_addr = r->gpa;
	d->memory_size = r->size;
	d->userspace_addr = r->uva;
	d->mmap_offset = r->mmap_offset;
}

int vhu_fe_set_mem_table_raw(struct vhu_fe *fe,
			     const struct vhu_mem_region *regions,
			     uint32_t nregions, const int *fds, size_t nfds)
{
	struct vhu_mem_table_hdr h = { .nregions = nregions };
	size_t len;
	uint8_t *buf;
	int err;

	if (nregions > 4096)
		return -E2BIG;
	len = sizeof(h) + nregions * sizeof(*regions);
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, &h, sizeof(h));
	if (nregions)
		memcpy(buf + sizeof(h), regions, nregions * sizeof(*regions));
	err = fe_do(fe, VHU_REQ_SET_MEM_TABLE, buf, len, fds, nfds);
	free(buf);
	return err;
}

int vhu_fe_set_mem_table(struct vhu_fe *fe)
{
	struct vhu_mem_region d[VHU_MEM_TABLE_MAX_REGIONS];
	int fds[VHU_MEM_TABLE_MAX_REGIONS];

	if (fe->nregions > VHU_MEM_TABLE_MAX_REGIONS)
		return -E2BIG;
	for (unsigned i = 0; i < fe->nregions; i++) {
		fe_region_desc(&fe->regions[i], &d[i]);
		fds[i] = fe->regions[i].fd;
	}
	return vhu_fe_set_mem_table_raw(fe, d, fe->nregions, fds, fe->nregions);
}

static int fe_mem_reg(struct vhu_fe *fe, uint32_t request, unsigned i,
		      bool with_fd)
{
	struct vhu_mem_reg_msg m = { 0 };

	if (i >= fe->nregions)
		return -EINVAL;
	fe_region_desc(&fe->regions[i], &m.region);
	return fe_do(fe, request, &m, sizeof(m), &fe->regions[i].fd,
		     with_fd ? 1 : 0);
}

int vhu_fe_add_mem_reg(struct vhu_fe *fe, unsigned i)
{
	return fe_mem_reg(fe, VHU_REQ_ADD_MEM_REG, i, true);
}

int vhu_fe_rem_mem_reg(struct vhu_fe *fe, unsigned i, bool with_fd)
{
	return fe_mem_reg(fe, VHU_REQ_REM_MEM_REG, i, with_fd);
}

static int fe_do_state(struct vhu_fe *fe, uint32_t request, uint32_t idx,
		       uint32_t num)
{
	struct vhu_vring_state s = { idx, num };

	return fe_do(fe, request, &s, sizeof(s), NULL, 0);
}

int vhu_fe_set_vring_num(struct vhu_fe *fe, uint32_t idx, uint32_t num)
{
	return fe_do_state(fe, VHU_REQ_SET_VRING_NUM, idx, num);
}

int vhu_fe_set_vring_addr(struct vhu_fe *fe, uint32_t idx, uint64_t desc,
			  uint64_t used, uint64_t avail, uint32_t flags)
{
	struct vhu_vring_addr a = {
		.index = idx, .flags = flags, .desc_user_addr = desc,
		.used_user_addr = used, .avail_user_addr = avail,
	};

	return fe_do(fe, VHU_REQ_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
}

int vhu_fe_set_vring_base(struct vhu_fe *fe, uint32_t idx, uint32_t base)
{
	return fe_do_state(fe, VHU_REQ_SET_VRING_BASE, idx, base);
}

int vhu_fe_get_vring_base(struct vhu_fe *fe, uint32_t idx, uint32_t *base)
{
	struct vhu_vring_state s = { idx, 0 }, r = { 0 };
	int n;

	n = vhu_fe_request(fe, VHU_REQ_GET_VRING_BASE, VHU_FLAG_VERSION, &s,
			   sizeof(s), NULL, 0, &r, sizeof(r));
	if (n < 0)
		return n;
	if (n != sizeof(r) || r.index != idx)
		return -EPROTO;
	if (base)
		*base = r.num;
	return 0;
}

static int fe_do_fd(struct vhu_fe *fe, uint32_t request, uint32_t idx, int fd)
{
	uint64_t v = idx;

	if (fd < 0)
		v |= VHU_VRING_NOFD;
	return fe_do(fe, request, &v, sizeof(v), &fd, fd < 0 ? 0 : 1);
}

int vhu_fe_set_vring_kick(struct vhu_fe *fe, uint32_t idx, int fd)
{
	return fe_do_fd(fe, VHU_REQ_SET_VRING_KICK, idx, fd);
}

int vhu_fe_set_vring_call(struct vhu_fe *fe, uint32_t idx, int fd)
{
	return fe_do_fd(fe, VHU_REQ_SET_VRING_CALL, idx, fd);
}

int vhu_fe_set_vring_err(struct vhu_fe *fe, uint32_t idx, int fd)
{
	return fe_do_fd(fe, VHU_REQ_SET_VRING_ERR, idx, fd);
}

int vhu_fe_set_vring_enable(struct vhu_fe *fe, uint32_t idx, bool on)
{
	return fe_do_state(fe, VHU_REQ_SET_VRING_ENABLE, idx, on ? 1 : 0);
}

int vhu_fe_set_status(struct vhu_fe *fe, uint8_t status)
{
	return fe_do_u64(fe, VHU_REQ_SET_STATUS, status);
}

int vhu_fe_get_status(struct vhu_fe *fe, uint8_t *status)
{
	uint64_t v;
	int err = fe_get_u64(fe, VHU_REQ_GET_STATUS, &v);

	if (!err && status)
		*status = (uint8_t)v;
	return err;
}

int vhu_fe_get_config(struct vhu_fe *fe, uint32_t offset, void *buf,
		      uint32_t size, uint32_t flags)
{
	struct {
		struct vhu_config_hdr h;
		uint8_t data[VHU_CONFIG_MAX_SIZE];
	} __attribute__((packed)) m = { { offset, size, flags }, { 0 } }, r;
	int n;

	if (size > VHU_CONFIG_MAX_SIZE)
		return -EINVAL;
	n = vhu_fe_request(fe, VHU_REQ_GET_CONFIG, VHU_FLAG_VERSION, &m,
			   sizeof(m.h) + size, NULL, 0, &r, sizeof(r));
	if (n < 0)
		return n;
	/* The spec's failure answer is a reply with size 0. */
	if (n == 0)
		return -EREMOTEIO;
	if ((size_t)n != sizeof(r.h) + size || r.h.size != size ||
	    r.h.offset != offset)
		return -EPROTO;
	memcpy(buf, r.data, size);
	return 0;
}

int vhu_fe_set_config(struct vhu_fe *fe, uint32_t offset, const void *buf,
		      uint32_t size, uint32_t flags)
{
	struct {
		struct vhu_config_hdr h;
		uint8_t data[VHU_CONFIG_MAX_SIZE];
	} __attribute__((packed)) m = { { offset, size, flags }, { 0 } };

	if (size > VHU_CONFIG_MAX_SIZE)
		return -EINVAL;
	memcpy(m.data, buf, size);
	return fe_do(fe, VHU_REQ_SET_CONFIG, &m, sizeof(m.h) + size, NULL, 0);
}

int vhu_fe_send_rarp(struct vhu_fe *fe, const uint8_t mac[6])
{
	uint64_t v = 0;

	memcpy(&v, mac, 6);
	return fe_do_u64(fe, VHU_REQ_SEND_RARP, v);
}

int vhu_fe_net_set_mtu(struct vhu_fe *fe, uint16_t mtu)
{
	return fe_do_u64(fe, VHU_REQ_NET_SET_MTU, mtu);
}

int vhu_fe_vring_kick(struct vhu_fe *fe, uint32_t idx)
{
	return fe_do_state(fe, VHU_REQ_VRING_KICK, idx, 0);
}

int vhu_fe_set_log_base(struct vhu_fe *fe, int fd, uint64_t size,
			uint64_t offset)
{
	struct vhu_log m = { .mmap_size = size, .mmap_offset = offset };
	uint64_t status = 0;
	int n;

	/* With LOG_SHMFD the reply is the status, as QEMU reads it; else an
	 * ack if NEED_REPLY is on. */
	n = vhu_fe_request(fe, VHU_REQ_SET_LOG_BASE,
			   (fe->acked_pf & VHU_BIT(VHU_PF_LOG_SHMFD)) ?
				   VHU_FLAG_VERSION :
				   fe_req_flags(fe, VHU_REQ_SET_LOG_BASE),
			   &m, sizeof(m), &fd, fd < 0 ? 0 : 1, &status,
			   sizeof(status));
	if (n < 0)
		return n;
	/* Without LOG_SHMFD: no reply, or a NEED_REPLY ack already checked. */
	if (!(fe->acked_pf & VHU_BIT(VHU_PF_LOG_SHMFD)))
		return 0;
	if (n != sizeof(status))
		return -EPROTO;
	fe->last_ack = status;
	return status ? -EREMOTEIO : 0;
}

int vhu_fe_set_log_all(struct vhu_fe *fe, bool on)
{
	uint64_t f = fe->acked_features;

	if (on)
		f |= VHU_BIT(VHU_F_LOG_ALL);
	else
		f &= ~VHU_BIT(VHU_F_LOG_ALL);
	return vhu_fe_set_features(fe, f);
}

uint64_t vhu_fe_offered_features(const struct vhu_fe *fe)
{
	return fe->offered_features;
}

uint64_t vhu_fe_acked_features(const struct vhu_fe *fe)
{
	return fe->acked_features;
}

uint64_t vhu_fe_offered_protocol_features(const struct vhu_fe *fe)
{
	return fe->offered_pf;
}

uint64_t vhu_fe_acked_protocol_features(const struct vhu_fe *fe)
{
	return fe->acked_pf;
}

/* The back-end channel. */

int vhu_fe_set_backend_req_fd(struct vhu_fe *fe)
{
	int sv[2], err;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	err = fe_do(fe, VHU_REQ_SET_BACKEND_REQ_FD, NULL, 0, &sv[1], 1);
	close(sv[1]);
	if (err) {
		close(sv[0]);
		return err;
	}
	if (fe->backend_fd >= 0)
		close(fe->backend_fd);
	fe->backend_fd = sv[0];
	return 0;
}

int vhu_fe_backend_fd(const struct vhu_fe *fe)
{
	return fe->backend_fd;
}

void vhu_fe_breq_close_fds(struct vhu_fe_breq *req)
{
	fe_close_fds(req->fds, req->nfds);
	req->nfds = 0;
}

int vhu_fe_backend_recv(struct vhu_fe *fe, struct vhu_fe_breq *req,
			int timeout_ms)
{
	int64_t deadline = fe_deadline(timeout_ms);
	int err;

	memset(req, 0, sizeof(*req));
	if (fe->backend_fd < 0)
		return -ENOTCONN;
	err = fe_read_full(fe->backend_fd, &req->hdr, sizeof(req->hdr),
			   req->fds, &req->nfds, VHU_MAX_FDS, deadline);
	if (err)
		goto out_close;
	err = -EPROTO;
	if ((req->hdr.flags & VHU_FLAG_VERSION_MASK) != VHU_FLAG_VERSION ||
	    (req->hdr.flags & VHU_FLAG_REPLY) ||
	    (req->hdr.flags & ~VHU_FLAG_KNOWN) ||
	    req->hdr.size > sizeof(req->payload))
		goto out_close;
	err = fe_read_full(fe->backend_fd, req->payload, req->hdr.size,
			   req->fds, &req->nfds, VHU_MAX_FDS, deadline);
	if (err)
		goto out_close;
	return 0;

out_close:
	vhu_fe_breq_close_fds(req);
	return err;
}

int vhu_fe_backend_reply(struct vhu_fe *fe, const struct vhu_fe_breq *req,
			 uint64_t result)
{
	struct {
		struct vhu_msg_hdr h;
		uint64_t v;
	} __attribute__((packed)) m = {
		{ req->hdr.request, VHU_FLAG_VERSION | VHU_FLAG_REPLY,
		  sizeof(uint64_t) }, result
	};

	if (!(req->hdr.flags & VHU_FLAG_NEED_REPLY))
		return 0;
	if (fe->backend_fd < 0)
		return -ENOTCONN;
	return fe_write_msg(fe->backend_fd, &m, sizeof(m), NULL, 0, fe->timeout_ms);
}
