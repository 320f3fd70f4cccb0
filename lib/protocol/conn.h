/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Message I/O on a non-blocking Unix socket: a message is reassembled
 * across partial reads, with the fds that arrive on the way (SCM_RIGHTS,
 * MSG_CMSG_CLOEXEC).  Only the bytes of the current message are read, so
 * the fds of the next one are never taken early.
 */
#ifndef VHU_CONN_H
#define VHU_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "protocol/proto.h"

struct vhu_rx {
	struct vhu_msg msg;
	size_t have; /* bytes of header + payload received */
	int fds[VHU_MAX_FDS];
	unsigned nfds;
};

void vhu_rx_init(struct vhu_rx *rx);
/* Close fds still held and forget a partial message. */
void vhu_rx_reset(struct vhu_rx *rx);
/* Take fd @i out of @rx (the caller owns it now); -1 if there is none. */
int vhu_rx_take_fd(struct vhu_rx *rx, unsigned i);

/*
 * Read what the socket has for the current message.  Returns 1 when a whole
 * message is in rx->msg, 0 when more bytes are needed, -ECONNRESET on EOF,
 * -EMSGSIZE for a size field beyond any payload, -EBADMSG for truncated
 * ancillary data or too many fds, or another -errno.
 */
int vhu_rx_read(int fd, struct vhu_rx *rx, struct vhu_logger *lg);

/*
 * Send one message with optional fds.  The socket may be non-blocking: a
 * full buffer is waited on for at most @timeout_ms.  Returns 0 or -errno.
 */
int vhu_msg_send(int fd, uint32_t request, uint32_t flags, const void *payload,
		 uint32_t size, const int *fds, unsigned nfds, int timeout_ms);

/* Wait for and read one whole message on a blocking path (back-end channel
 * replies): at most @timeout_ms. */
int vhu_msg_recv_timeout(int fd, struct vhu_rx *rx, struct vhu_logger *lg,
			 int timeout_ms);

#endif
