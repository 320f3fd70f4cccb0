/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Message sequences against a live device: the input is a list of
 * messages, each  request (1) | flags (1) | payload length (1) | fd kinds
 * (1: count in the low 2 bits, kinds in the next 6) | payload.  The
 * harness creates the fds for real (memfds of sizes the input chooses,
 * eventfds, pipes), so memory mapping, ring set-up and start run for real;
 * the payloads carry addresses the fuzzer controls, so rings can start in
 * the memory it described.
 */
#include <unistd.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	struct vhu_dev *dev;
	int peer;

	fz_check_fds();
	dev = fz_dev_connected(&peer, 4);
	if (!dev)
		return 0;
	for (int m = 0; m < 64 && in.left >= 4; m++) {
		uint8_t req = fz_u8(&in), flags = fz_u8(&in), len = fz_u8(&in);
		uint8_t fdspec = fz_u8(&in);
		uint8_t payload[256];
		int fds[3], nfds = fdspec & 3, good = 0;

		fz_bytes(&in, payload, len);
		for (int i = 0; i < nfds; i++) {
			int fd = fz_make_fd(&in, (uint8_t)(fdspec >> (2 + 2 * i)));

			if (fd >= 0)
				fds[good++] = fd;
		}
		/* mostly well-formed headers, so the handlers are reached */
		uint32_t fl = (flags & 0x80) ? flags : VHU_FLAG_VERSION | (flags & VHU_FLAG_NEED_REPLY);
		vhu_msg_send(peer, req % 48, fl, payload, len, fds, (unsigned)good, 100);
		for (int i = 0; i < good; i++)
			close(fds[i]);
		fz_pump(dev, peer);
		if (!vhu_dev_is_connected(dev))
			break;
	}
	close(peer);
	vhu_dev_free(dev);
	return 0;
}
