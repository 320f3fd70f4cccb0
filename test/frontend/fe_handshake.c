/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test frontend: QEMU's start-up sequence.  vhu_fe_handshake() is
 * vhost_user_backend_init() (feature and protocol negotiation, SET_OWNER)
 * followed by vhu_fe_start(), which is vhost_dev_start() (features,
 * memory, rings, enable, status) and can be repeated on its own, e.g.
 * after RESET_DEVICE.
 */
#include <errno.h>
#include <string.h>

#include "fe_int.h"

static int fe_hs_opts(const struct vhu_fe_handshake_opts *in,
		      struct vhu_fe_handshake_opts *o)
{
	memset(o, 0, sizeof(*o));
	if (in) {
		if (in->sz != sizeof(*in))
			return -EINVAL;
		*o = *in;
	}
	if (!o->num_queues)
		o->num_queues = 1;
	if (!o->ring_size)
		o->ring_size = 256;
	if (!o->mem_regions)
		o->mem_regions = 2;
	if (!o->mem_region_size)
		o->mem_region_size = 4u << 20;
	if (o->num_queues > VHU_FE_MAX_QUEUES)
		return -EINVAL;
	return 0;
}

/* What the front-end acks of what the back-end offered. */
static uint64_t fe_hs_features(const struct vhu_fe_handshake_opts *o,
			       uint64_t offered)
{
	/* Like QEMU: no dirty logging outside migration, and the layout and
	 * ordering the caller asked for. */
	uint64_t acked = offered & ~o->features_off & ~VHU_BIT(VHU_F_LOG_ALL);

	if (!o->packed)
		acked &= ~VHU_BIT(VHU_F_RING_PACKED);
	if (!o->in_order)
		acked &= ~VHU_BIT(VHU_F_IN_ORDER);
	return acked;
}

static int fe_hs_negotiate(struct vhu_fe *fe,
			   const struct vhu_fe_handshake_opts *o,
			   struct vhu_fe_handshake_info *info)
{
	uint64_t features, pf;
	int err;

	err = vhu_fe_get_features(fe, &features);
	if (err)
		return err;
	info->features = features;
	/* Dropping F_PROTOCOL_FEATURES makes a legacy front-end: no protocol
	 * negotiation at all, rings enabled as they start. */
	if (!(fe_hs_features(o, features) & VHU_BIT(VHU_F_PROTOCOL_FEATURES)))
		return 0;
	err = vhu_fe_get_protocol_features(fe, &pf);
	if (err)
		return err;
	info->protocol_features = pf;
	pf &= ~o->protocol_features_off;
	/* QEMU never acks in-band notifications; and the spec ties them to
	 * BACKEND_REQ and REPLY_ACK. */
	if (!o->inband_notifications || !(pf & VHU_BIT(VHU_PF_BACKEND_REQ)) ||
	    !(pf & VHU_BIT(VHU_PF_REPLY_ACK)))
		pf &= ~VHU_BIT(VHU_PF_INBAND_NOTIFICATIONS);
	err = vhu_fe_set_protocol_features(fe, pf);
	if (!err && (pf & VHU_BIT(VHU_PF_MQ)))
		err = vhu_fe_get_queue_num(fe, &info->queue_num);
	if (!err && (pf & VHU_BIT(VHU_PF_CONFIGURE_MEM_SLOTS)))
		err = vhu_fe_get_max_mem_slots(fe, &info->max_mem_slots);
	if (!err && (pf & VHU_BIT(VHU_PF_BACKEND_REQ)))
		err = vhu_fe_set_backend_req_fd(fe);
	return err;
}

/* Guest memory for a fe that has none yet. */
static int fe_hs_guest_memory(struct vhu_fe *fe,
			      const struct vhu_fe_handshake_opts *o)
{
	struct vhu_fe_mem_opts mo = {
		.sz = sizeof(mo), .nregions = o->mem_regions,
		.region_size = o->mem_region_size,
	};

	return fe->nregions ? 0 : vhu_fe_mem_setup(fe, &mo);
}

static unsigned fe_hs_ring_flags(uint64_t acked)
{
	unsigned flags = 0;

	if (acked & VHU_BIT(VHU_F_EVENT_IDX))
		flags |= VHU_FE_RING_EVENT_IDX;
	if (acked & VHU_BIT(VHU_F_IN_ORDER))
		flags |= VHU_FE_RING_IN_ORDER;
	return flags;
}

/* QEMU's vhost_dev_init() after SET_OWNER: GET_FEATURES again, and every
 * queue's (masked) call notifier before any feature is set. */
static int fe_hs_qemu_init(struct vhu_fe *fe, const struct vhu_fe_handshake_opts *o)
{
	uint64_t acked = fe_hs_features(o, fe->offered_features);
	int err;

	err = vhu_fe_get_features(fe, NULL);
	if (!err)
		err = fe_hs_guest_memory(fe, o);
	for (uint16_t i = 0; !err && i < o->num_queues; i++) {
		err = vhu_fe_queue_setup(fe, i, o->packed, o->ring_size,
					 fe_hs_ring_flags(acked));
		if (!err)
			err = vhu_fe_set_vring_call(fe, i, vhu_fe_queue_call_fd(fe, i));
	}
	return err;
}

static int fe_hs_memory(struct vhu_fe *fe, const struct vhu_fe_handshake_opts *o)
{
	int err;

	err = fe_hs_guest_memory(fe, o);
	if (err)
		return err;
	if (!o->mem_slots)
		return vhu_fe_set_mem_table(fe);
	for (unsigned i = 0; i < fe->nregions; i++) {
		err = vhu_fe_add_mem_reg(fe, i);
		if (err)
			return err;
	}
	return 0;
}

static int fe_hs_start(struct vhu_fe *fe, const struct vhu_fe_handshake_opts *o,
		       bool memory)
{
	uint64_t acked = fe_hs_features(o, fe->offered_features);
	uint64_t pf = fe->acked_pf;
	unsigned ring_flags = fe_hs_ring_flags(acked);
	int err;

	if (o->mem_slots && !(pf & VHU_BIT(VHU_PF_CONFIGURE_MEM_SLOTS)))
		return -EOPNOTSUPP;
	if (o->packed && !(fe->offered_features & VHU_BIT(VHU_F_RING_PACKED)))
		return -EOPNOTSUPP;
	err = vhu_fe_set_features(fe, acked);
	if (!err && o->inflight && (pf & VHU_BIT(VHU_PF_INFLIGHT_SHMFD)))
		err = fe_inflight_start(fe, o->num_queues, o->ring_size);
	if (!err && memory)
		err = fe_hs_memory(fe, o);
	if (err)
		return err;

	fe->crash_base = o->crash_base;
	for (uint16_t i = 0; i < o->num_queues; i++) {
		if (!o->keep_rings || !fe->q[i].set_up)
			err = vhu_fe_queue_setup(fe, i, o->packed, o->ring_size,
						 ring_flags);
		if (!err)
			err = fe_queue_start(fe, i, o->qemu_order);
		if (err)
			return err;
	}
	if ((acked & VHU_BIT(VHU_F_PROTOCOL_FEATURES)) && !o->no_enable) {
		for (uint16_t i = 0; i < o->num_queues; i++) {
			err = vhu_fe_set_vring_enable(fe, i, true);
			if (err)
				return err;
		}
	}
	if ((pf & VHU_BIT(VHU_PF_STATUS)) && !o->no_status)
		err = vhu_fe_set_status(fe, VHU_FE_S_ACKNOWLEDGE | VHU_FE_S_DRIVER |
					    VHU_FE_S_FEATURES_OK |
					    VHU_FE_S_DRIVER_OK);
	return err;
}

int vhu_fe_handshake(struct vhu_fe *fe, const struct vhu_fe_handshake_opts *opts,
		     struct vhu_fe_handshake_info *info)
{
	struct vhu_fe_handshake_info dummy;
	struct vhu_fe_handshake_opts o;
	int err;

	if (!info)
		info = &dummy;
	memset(info, 0, sizeof(*info));
	err = fe_hs_opts(opts, &o);
	if (err)
		return err;
	vhu_fe_set_need_reply(fe, o.need_reply);
	err = fe_hs_negotiate(fe, &o, info);
	if (!err)
		err = vhu_fe_set_owner(fe);
	if (!err && o.qemu_order)
		err = fe_hs_qemu_init(fe, &o);
	if (!err)
		err = fe_hs_start(fe, &o, true);
	return err;
}

int vhu_fe_start(struct vhu_fe *fe, const struct vhu_fe_handshake_opts *opts)
{
	struct vhu_fe_handshake_opts o;
	int err;

	err = fe_hs_opts(opts, &o);
	if (err)
		return err;
	if (!fe->offered_features)
		return -EINVAL; /* no GET_FEATURES on this connection yet */
	vhu_fe_set_need_reply(fe, o.need_reply);
	/* ADD_MEM_REG would add the same regions twice: with slots, the
	 * back-end keeps what it has. */
	return fe_hs_start(fe, &o, !o.mem_slots);
}
