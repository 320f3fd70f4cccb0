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

static void backend_close_locked(struct vhu_dev *dev)
{
	if (dev->backend_fd >= 0)
		close(dev->backend_fd);
	dev->backend_fd = -1;
}

void vhu_backend_close(struct vhu_dev *dev)
{
	pthread_mutex_lock(&dev->backend_lock);
	backend_close_locked(dev);
	pthread_mutex_unlock(&dev->backend_lock);
}

void vhu_backend_set_fd(struct vhu_dev *dev, int fd)
{
	pthread_mutex_lock(&dev->backend_lock);
	backend_close_locked(dev);
	dev->backend_fd = fd;
	pthread_mutex_unlock(&dev->backend_lock);
}

/* Any thread: the control thread (config change, errors) and data planes
 * (in-band calls) share the channel under backend_lock. */
int vhu_backend_send(struct vhu_dev *dev, struct vhu_logger *lg, uint32_t request,
		     const void *payload, uint32_t size)
{
	int rc;

	pthread_mutex_lock(&dev->backend_lock);
	if (dev->backend_fd < 0) {
		pthread_mutex_unlock(&dev->backend_lock);
		return -EOPNOTSUPP;
	}
	/* No NEED_REPLY: waiting for the answer would block on a peer we do
	 * not trust. */
	rc = vhu_msg_send(dev->backend_fd, request, VHU_FLAG_VERSION, payload, size,
			  NULL, 0, VHU_BACKEND_SEND_TIMEOUT_MS);
	if (rc) {
		vhu_log_ratelimited(lg, VHU_LOG_ERR, "back-end channel request %u "
				    "failed: %s; closing the channel", request,
				    strerror(-rc));
		backend_close_locked(dev);
	}
	pthread_mutex_unlock(&dev->backend_lock);
	return rc;
}

int vhu_dev_notify_config_change(struct vhu_dev *dev)
{
	if (dev->conn_fd < 0)
		return -ENOTCONN;
	if (!vhu_has_protocol(dev, VHU_PF_CONFIG) ||
	    !vhu_has_protocol(dev, VHU_PF_BACKEND_REQ) || dev->backend_fd < 0)
		return -EOPNOTSUPP;
	return vhu_backend_send(dev, &dev->lg, VHU_BREQ_CONFIG_CHANGE_MSG, NULL, 0);
}
