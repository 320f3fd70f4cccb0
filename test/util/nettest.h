/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared by the virtio-net suites: the device features they offer and the
 * virtio-net header as the guest reads it. */
#ifndef VHU_NETTEST_H
#define VHU_NETTEST_H

#include <stdint.h>

#include <vhu/vhu.h>

#include "proto.h"

#define NET_FEATURES                                                         \
	(VHU_BIT(VHU_NET_F_MRG_RXBUF) | VHU_BIT(VHU_NET_F_CSUM) |              \
	 VHU_BIT(VHU_NET_F_GUEST_CSUM) | VHU_BIT(VHU_NET_F_HOST_TSO4) |        \
	 VHU_BIT(VHU_NET_F_GUEST_TSO4) | VHU_BIT(VHU_NET_F_MQ))

/* virtio_net_hdr with num_buffers (VERSION_1 / MRG_RXBUF layout). */
struct vnet_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
} __attribute__((packed));
_Static_assert(sizeof(struct vnet_hdr) == 12, "virtio_net_hdr_mrg_rxbuf");

#endif
