/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One message through framing, the request table's validation and the
 * handler: input = header (12 bytes) | fd count and kinds (1 + n bytes) |
 * the rest as the payload, sent as one message (size field as given, so
 * it may lie).  The fds are real: memfds, eventfds, pipes, sockets.
 */
#include <unistd.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	struct vhu_msg_hdr h;
	int fds[VHU_MAX_FDS + 2], nfds, peer;
	struct vhu_dev *dev;

	fz_check_fds();
	dev = fz_dev_connected(&peer, 4);
	if (!dev)
		return 0;
	fz_bytes(&in, &h, sizeof(h));
	nfds = fz_u8(&in) % (VHU_MAX_FDS + 1);
	for (int i = 0; i < nfds; i++)
		fds[i] = fz_make_fd(&in, fz_u8(&in));
	/* header, then whatever payload bytes the input has left */
	int good = 0;
	for (int i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			fds[good++] = fds[i];
	vhu_msg_send(peer, h.request, h.flags, NULL, 0, fds, (unsigned)good, 100);
	(void)!write(peer, in.p, in.left < 4096 ? in.left : 4096);
	for (int i = 0; i < good; i++)
		close(fds[i]);
	fz_pump(vhu_dev_is_connected(dev) ? dev : dev, peer);
	/* hang up mid-message, too */
	close(peer);
	fz_pump(dev, -1);
	vhu_dev_free(dev);
	return 0;
}
