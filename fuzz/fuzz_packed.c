/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Packed ring processing over fuzz-controlled guest memory: descriptor
 * table, avail ring and indirect tables in three regions (two adjacent).
 * input = features (1) | ring size (1) | driver area image (64 bytes) |
 * descriptor image (1 KiB) | per burst: burst and segment limits, kicks
 * on/off, and "guest writes" (region, offset, bytes) between bursts.
 * Every segment handed out is read end to end (ASan checks that it lies in
 * mapped memory), written as a device would, and returned.
 */
#include "fuzz_common.h"
#include "vq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void bursts(struct fz_rings *r, struct fz_in *in, int q)
{
	struct vhu_vq *vq = &r->dev->vqs[q];

	for (int b = 0; b < 8; b++) {
		struct vhu_req req[8];
		struct vhu_seg segs[64];
		uint32_t written[8];
		int n;

		vhu_vq_begin(vq);
		n = vhu_vq_pop(vq, req, 1 + fz_u8(in) % 8, segs, 1 + fz_u8(in) % 64);
		for (int i = 0; i < n; i++) {
			volatile uint8_t sink = 0;

			for (unsigned k = 0; k < (unsigned)(req[i].nr_out + req[i].nr_in); k++) {
				const uint8_t *p = req[i].segs[k].addr;

				sink ^= p[0];
				sink ^= p[req[i].segs[k].len - 1];
				if (k >= req[i].nr_out)
					((uint8_t *)req[i].segs[k].addr)[0] = 0xee;
			}
			(void)sink;
			written[i] = req[i].in_len;
		}
		if (n > 0)
			vhu_vq_push(vq, req, written, (unsigned)n);
		vhu_vq_notify(vq);
		vhu_vq_set_kicks(vq, fz_u8(in) & 1);
		vhu_vq_avail(vq);
		vhu_vq_end(vq);
		fz_guest_writes(r, in, 4);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	struct fz_rings r;
	uint8_t fbits = fz_u8(&in);
	uint64_t features = VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_RING_PACKED) |
			    ((fbits & 1) ? VHU_BIT(VHU_F_INDIRECT_DESC) : 0) |
			    ((fbits & 2) ? VHU_BIT(VHU_F_EVENT_IDX) : 0);
	uint32_t qsize = 1u + fz_u8(&in); /* any size for packed rings */

	fz_check_fds();
	if (fz_rings_up(&r, features, qsize, 1) == 0) {
		/* the driver's rings and tables: a raw image, then edits */
		/* driver area first: small inputs already make buffers available */
		fz_bytes(&in, r.mem[0] + 0x6000, in.left < 0x40 ? in.left : 0x40);
		fz_bytes(&in, r.mem[0], in.left < 0x400 ? in.left : 0x400);
		bursts(&r, &in, 0);
	}
	fz_rings_down(&r);
	return 0;
}
