/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The virtio-net paths over fuzz-controlled rings: TX (queue 1) headers
 * split anywhere, offload fields, chains shorter than the header; RX
 * (queue 0) mergeable and single buffers with frames and metadata the
 * input chooses.  Split or packed, MRG_RXBUF on or off, VERSION_1 or the
 * legacy header.
 */
#include <vhu/net.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	struct fz_rings r;
	uint8_t fbits = fz_u8(&in);
	uint64_t features = ((fbits & 1) ? VHU_BIT(VHU_F_VERSION_1) : 0) |
			    ((fbits & 2) ? VHU_BIT(VHU_F_RING_PACKED) : 0) |
			    ((fbits & 4) ? VHU_BIT(VHU_NET_F_MRG_RXBUF) : 0) |
			    ((fbits & 8) ? VHU_BIT(VHU_F_INDIRECT_DESC) : 0) |
			    ((fbits & 16) ? VHU_BIT(VHU_NET_F_CSUM) | VHU_BIT(VHU_NET_F_HOST_TSO4) |
						    VHU_BIT(VHU_NET_F_GUEST_CSUM) |
						    VHU_BIT(VHU_NET_F_GUEST_TSO4)
					  : 0) |
			    ((fbits & 32) ? VHU_BIT(VHU_F_LOG_ALL) : 0);
	uint32_t qsize = (fbits & 2) ? 1u + fz_u8(&in) % 64 : 1u << (fz_u8(&in) % 7);
	static uint8_t bufs_store[4][2048];
	void *bufs[4] = { bufs_store[0], bufs_store[1], bufs_store[2], bufs_store[3] };
	struct vhu_net_pkt pkts[4];
	static uint8_t frame[4096];

	fz_check_fds();
	if (fz_rings_up(&r, features, qsize, 2) == 0) {
		fz_log_up(&r, &in);
		fz_bytes(&in, r.mem[0], in.left < 0x600 ? in.left : 0x600);      /* q0 desc */
		fz_bytes(&in, r.mem[0] + 0x6000, in.left < 0x200 ? in.left : 0x200);
		fz_bytes(&in, r.mem[0] + 0x8000, in.left < 0x600 ? in.left : 0x600); /* q1 */
		fz_bytes(&in, r.mem[0] + 0xe000, in.left < 0x200 ? in.left : 0x200);
		for (int round = 0; round < 4; round++) {
			struct vhu_net_pkt p = {
				.data = frame, .len = fz_u16(&in) % sizeof(frame),
				.flags = fz_u8(&in), .gso_type = fz_u8(&in),
				.hdr_len = fz_u16(&in), .gso_size = fz_u16(&in),
				.csum_start = fz_u16(&in), .csum_offset = fz_u16(&in),
			};

			vhu_net_dequeue(vhu_dev_vq(r.dev, 1), pkts, bufs,
					1 + fz_u16(&in) % 2048, 1 + fz_u8(&in) % 4);
			vhu_net_enqueue(vhu_dev_vq(r.dev, 0), &p, 1);
			fz_guest_writes(&r, &in, 4);
		}
	}
	fz_rings_down(&r);
	return 0;
}
