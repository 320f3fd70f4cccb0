/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared by the virtio-net suites: the device features they offer (the
 * header itself is struct virtio_net_hdr_v1 of proto.h). */
#ifndef VHU_NETTEST_H
#define VHU_NETTEST_H

#include <stdint.h>

#include <vhu/vhu.h>

#include "protocol/proto.h"

#define NET_FEATURES                                                         \
	(VHU_BIT(VHU_NET_F_MRG_RXBUF) | VHU_BIT(VHU_NET_F_CSUM) |              \
	 VHU_BIT(VHU_NET_F_GUEST_CSUM) | VHU_BIT(VHU_NET_F_HOST_TSO4) |        \
	 VHU_BIT(VHU_NET_F_GUEST_TSO4) | VHU_BIT(VHU_NET_F_MQ))


#endif
