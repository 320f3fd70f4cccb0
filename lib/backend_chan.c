/* SPDX-License-Identifier: BSD-3-Clause */
/* The back-end channel: requests vhu sends to the front-end on the socket
 * it was given with SET_BACKEND_REQ_FD. */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* A front-end that stops reading its channel must not stall the control
 * thread for long. */
#define VHU_BACKEND_SEND_TIMEOUT_MS 1000

void vhu_backend_close(struct vhu_dev *dev)
{
	if (dev->backend_fd >= 0)
		close(dev->backend_fd);
	dev->backend_fd = -1;
}

int vhu_backend_send(struct vhu_dev *dev, uint32_t request, const void *payload,
		     uint32_t size)
{
	int rc;

	if (dev->backend_fd < 0)
		return -EOPNOTSUPP;
	/* No NEED_REPLY: waiting for the answer would block the control thread
	 * on a peer we do not trust. */
	rc = vhu_msg_send(dev->backend_fd, request, VHU_FLAG_VERSION, payload, size,
			  NULL, 0, VHU_BACKEND_SEND_TIMEOUT_MS);
	if (rc) {
		vhu_err(&dev->lg, "back-end channel request %u failed: %s; closing "
			"the channel", request, strerror(-rc));
		vhu_backend_close(dev);
	}
	return rc;
}

int vhu_dev_notify_config_change(struct vhu_dev *dev)
{
	if (dev->conn_fd < 0)
		return -ENOTCONN;
	if (!vhu_has_protocol(dev, VHU_PF_CONFIG) ||
	    !vhu_has_protocol(dev, VHU_PF_BACKEND_REQ) || dev->backend_fd < 0)
		return -EOPNOTSUPP;
	return vhu_backend_send(dev, VHU_BREQ_CONFIG_CHANGE_MSG, NULL, 0);
}
