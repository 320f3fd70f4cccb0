/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test frontend: QEMU's start-up sequence (hw/virtio/vhost-user.c order:
 * vhost_user_backend_init, then vhost_dev_start).
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

static int fe_hs_memory(struct vhu_fe *fe, const struct vhu_fe_handshake_opts *o)
{
	if (o->mem_slots) {
		for (unsigned i = 0; i < fe->nregions; i++) {
			int err = vhu_fe_add_mem_reg(fe, i);

			if (err)
				return err;
		}
		return 0;
	}
	return vhu_fe_set_mem_table(fe);
}

int vhu_fe_handshake(struct vhu_fe *fe, const struct vhu_fe_handshake_opts *opts,
		     struct vhu_fe_handshake_info *info)
{
	struct vhu_fe_handshake_info dummy;
	struct vhu_fe_handshake_opts o;
	uint64_t features, pf = 0, acked;
	unsigned ring_flags = 0;
	bool has_pf;
	int err;

	if (!info)
		info = &dummy;
	memset(info, 0, sizeof(*info));
	err = fe_hs_opts(opts, &o);
	if (err)
		return err;
	vhu_fe_set_need_reply(fe, o.need_reply);

	err = vhu_fe_get_features(fe, &features);
	if (err)
		return err;
	info->features = features;
	/* Dropping F_PROTOCOL_FEATURES makes a legacy front-end: no protocol
	 * negotiation at all, rings enabled as they start. */
	has_pf = features & ~o.features_off & VHU_BIT(VHU_F_PROTOCOL_FEATURES);
	if (has_pf) {
		err = vhu_fe_get_protocol_features(fe, &pf);
		if (err)
			return err;
		info->protocol_features = pf;
		pf &= ~o.protocol_features_off;
		/* QEMU never acks in-band notifications; and the spec ties
		 * them to BACKEND_REQ and REPLY_ACK. */
		if (!o.inband_notifications ||
		    (pf & VHU_BIT(VHU_PF_BACKEND_REQ)) == 0 ||
		    (pf & VHU_BIT(VHU_PF_REPLY_ACK)) == 0)
			pf &= ~VHU_BIT(VHU_PF_INBAND_NOTIFICATIONS);
		err = vhu_fe_set_protocol_features(fe, pf);
		if (err)
			return err;
		if (pf & VHU_BIT(VHU_PF_MQ)) {
			err = vhu_fe_get_queue_num(fe, &info->queue_num);
			if (err)
				return err;
		}
		if (pf & VHU_BIT(VHU_PF_CONFIGURE_MEM_SLOTS)) {
			err = vhu_fe_get_max_mem_slots(fe, &info->max_mem_slots);
			if (err)
				return err;
		}
		if (pf & VHU_BIT(VHU_PF_BACKEND_REQ)) {
			err = vhu_fe_set_backend_req_fd(fe);
			if (err)
				return err;
		}
	}
	if (o.mem_slots && !(pf & VHU_BIT(VHU_PF_CONFIGURE_MEM_SLOTS)))
		return -EOPNOTSUPP;
	if (o.packed && !(features & VHU_BIT(VHU_F_RING_PACKED)))
		return -EOPNOTSUPP;

	err = vhu_fe_set_owner(fe);
	if (err)
		return err;
	/* Like QEMU: no dirty logging outside migration, and the layout and
	 * ordering the caller asked for. */
	acked = features & ~o.features_off & ~VHU_BIT(VHU_F_LOG_ALL);
	if (!o.packed)
		acked &= ~VHU_BIT(VHU_F_RING_PACKED);
	if (!o.in_order)
		acked &= ~VHU_BIT(VHU_F_IN_ORDER);
	err = vhu_fe_set_features(fe, acked);
	if (err)
		return err;

	if (!fe->nregions) {
		struct vhu_fe_mem_opts mo = {
			.sz = sizeof(mo), .nregions = o.mem_regions,
			.region_size = o.mem_region_size,
		};

		err = vhu_fe_mem_setup(fe, &mo);
		if (err)
			return err;
	}
	err = fe_hs_memory(fe, &o);
	if (err)
		return err;

	if (acked & VHU_BIT(VHU_F_EVENT_IDX))
		ring_flags |= VHU_FE_RING_EVENT_IDX;
	if (acked & VHU_BIT(VHU_F_IN_ORDER))
		ring_flags |= VHU_FE_RING_IN_ORDER;
	for (uint16_t i = 0; i < o.num_queues; i++) {
		err = vhu_fe_queue_setup(fe, i, o.packed, o.ring_size, ring_flags);
		if (!err)
			err = vhu_fe_queue_start(fe, i);
		if (err)
			return err;
	}
	if (has_pf && !o.no_enable) {
		for (uint16_t i = 0; i < o.num_queues; i++) {
			err = vhu_fe_set_vring_enable(fe, i, true);
			if (err)
				return err;
		}
	}
	if ((pf & VHU_BIT(VHU_PF_STATUS)) && !o.no_status)
		err = vhu_fe_set_status(fe, VHU_FE_S_ACKNOWLEDGE | VHU_FE_S_DRIVER |
					    VHU_FE_S_FEATURES_OK |
					    VHU_FE_S_DRIVER_OK);
	return err;
}
