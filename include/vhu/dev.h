/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A vhost-user device: one socket, one front-end at a time.
 *
 * Threading rule: all vhu_dev_* calls for one device are made from one
 * thread at a time (the control thread, which runs the application's event
 * loop).  The data-plane calls of vhu/vq.h may run on other threads at the
 * same time; the two sides synchronise inside the library (see
 * docs/architecture.md).  Different devices are fully independent.
 *
 * Front-ends come and go: a device serves one after another for its whole
 * life, in server mode (the next one connects) and in client mode (vhu
 * reconnects with backoff).  A lost front-end stops every queue
 * (VHU_QUEUE_STOPPED, device_stopped, disconnected) and drops its memory;
 * the next one sets everything up again (device_ready once more), and the
 * rings resume where they really are (vhu/vq.h).  The application keeps its
 * device, its threads and its loop through all of it: nothing to do but
 * follow the events.  A restarted back-end process starts a new device on
 * the same path; QEMU (reconnect=N on the chardev, or server=on with
 * vhu_dev_connect()) replays the set-up and vhu finds the rings' positions.
 */
#ifndef VHU_DEV_H
#define VHU_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vhu/vhu.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vhu_dev;

/* Queue events reported through vhu_dev_ops.queue_event. */
enum vhu_queue_event {
	VHU_QUEUE_STARTED,  /* the ring may be processed (kick fd set or polling) */
	VHU_QUEUE_STOPPED,  /* GET_VRING_BASE, reset or disconnect: stop using it */
	VHU_QUEUE_ENABLED,  /* SET_VRING_ENABLE 1, or started without protocol features */
	VHU_QUEUE_DISABLED, /* SET_VRING_ENABLE 0 */
	VHU_QUEUE_BROKEN,   /* the guest or front-end broke the ring; see the log */
	VHU_QUEUE_KICKED,   /* in-band kick (VRING_KICK): process the ring */
};

/*
 * Callbacks into the application.  All are optional and run on the control
 * thread, from inside vhu_dev_on_readable()/vhu_dev_on_timer()/vhu_dev_poll(),
 * and (connected) from vhu_dev_connect()/vhu_dev_attach_fd() when the
 * connection is made at once.  They must not call vhu_dev_free() on their
 * own device.
 */
struct vhu_dev_ops {
	size_t sz;
	/* A front-end connected (socket accepted or connect() succeeded). */
	void (*connected)(struct vhu_dev *dev, void *opaque);
	/* The front-end went away; every queue was stopped before this. */
	void (*disconnected)(struct vhu_dev *dev, void *opaque);
	/* Features were negotiated (SET_FEATURES). */
	void (*features_set)(struct vhu_dev *dev, void *opaque, uint64_t features);
	/* Queues 0 .. min_ready_queues-1 are started and enabled. */
	void (*device_ready)(struct vhu_dev *dev, void *opaque);
	/* The device was ready and no longer is. */
	void (*device_stopped)(struct vhu_dev *dev, void *opaque);
	/* A queue changed state. */
	void (*queue_event)(struct vhu_dev *dev, void *opaque, uint16_t queue,
			    enum vhu_queue_event event);
	/* Read @len bytes of the device config space at @offset into @buf
	 * (GET_CONFIG).  Return 0 or -errno.  Offering this enables the CONFIG
	 * protocol feature. */
	int (*get_config)(struct vhu_dev *dev, void *opaque, uint32_t offset,
			  void *buf, uint32_t len);
	/* The driver wrote the config space (SET_CONFIG).  @flags: 0 for a
	 * writable field, 1 during live migration.  Return 0 or -errno. */
	int (*set_config)(struct vhu_dev *dev, void *opaque, uint32_t offset,
			  const void *buf, uint32_t len, uint32_t flags);
	/* NET_SET_MTU.  Return 0 to accept, -errno to refuse.  Offering this
	 * enables the NET_MTU protocol feature. */
	int (*set_mtu)(struct vhu_dev *dev, void *opaque, uint16_t mtu);
	/* SEND_RARP: announce @mac (the guest's) after a migration.
	 * Offering this enables the RARP protocol feature. */
	void (*send_rarp)(struct vhu_dev *dev, void *opaque, const uint8_t mac[6]);
	/* SET_STATUS: the driver's virtio device status byte. */
	void (*status_set)(struct vhu_dev *dev, void *opaque, uint8_t status);
	/* Every front-end request after it was handled: @result is 0 or the
	 * -errno it was refused with.  For tracing and tests. */
	void (*request_done)(struct vhu_dev *dev, void *opaque, uint32_t request,
			     int result);
};

/*
 * How the device's control fds reach the application's event loop.  When
 * no loop is given, the application calls vhu_dev_poll() instead.
 */
struct vhu_loop {
	size_t sz;
	void *ctx;
	/* Start watching @fd for readability; call vhu_dev_on_readable(dev, fd)
	 * when it is.  Return 0 or -errno. */
	int (*watch)(void *ctx, struct vhu_dev *dev, int fd);
	/* Stop watching @fd (called before the library closes it). */
	void (*unwatch)(void *ctx, struct vhu_dev *dev, int fd);
	/* Arm the device's one-shot timer to fire in @ms milliseconds, then call
	 * vhu_dev_on_timer(dev); @ms < 0 disarms it. */
	void (*timer)(void *ctx, struct vhu_dev *dev, int64_t ms);
};

struct vhu_guard;

struct vhu_dev_opts {
	size_t sz;
	/* Name used in log lines; copied. */
	const char *name;
	/* Virtio device feature bits the application implements (for example
	 * VIRTIO_NET_F_* bits).  vhu adds the transport bits it implements. */
	uint64_t device_features;
	/* Transport feature bits to withhold from the front-end (e.g. to force
	 * split rings, or VHOST_USER_F_PROTOCOL_FEATURES for an old front-end's
	 * behaviour). */
	uint64_t transport_features_off;
	/* Protocol feature bits to withhold. */
	uint64_t protocol_features_off;
	/* Number of virtqueues (GET_QUEUE_NUM reports num_queues / 2 queue
	 * pairs when queue_pairs is set, else num_queues).  1..1024. */
	uint16_t num_queues;
	bool queue_pairs;
	/* device_ready fires when queues 0..min_ready_queues-1 are started and
	 * enabled.  Default (0) means 1. */
	uint16_t min_ready_queues;
	/* Largest ring size accepted; default and maximum 32768. */
	uint32_t max_queue_size;
	/* Memory slots reported by GET_MAX_MEM_SLOTS; default 509, max 509. */
	uint32_t max_mem_slots;
	/* Client mode: first and largest reconnect delay, ms.  Defaults 100
	 * and 5000. */
	uint32_t reconnect_min_ms;
	uint32_t reconnect_max_ms;
	const struct vhu_dev_ops *ops;
	void *opaque;
	/* Log callback; NULL logs errors and warnings to stderr. */
	vhu_log_fn log;
	void *log_opaque;
	enum vhu_log_level log_level;
	/* Event loop integration; NULL means the application uses vhu_dev_poll(). */
	const struct vhu_loop *loop;
	/* SIGBUS guard for this device's guest memory (vhu/guard.h); NULL:
	 * none.  Shared by any number of devices; outlives them. */
	struct vhu_guard *guard;
	/*
	 * The device can take a request again after a back-end crash (a block
	 * device: reads and writes may be done twice; not virtio-net, which
	 * leaves this false).  vhu then offers INFLIGHT_SHMFD and records every
	 * request from vhu_vq_pop() to vhu_vq_push() in a region the front-end
	 * keeps for the next back-end: a restarted one gets the requests that
	 * were in flight again, oldest first (vhu/vq.h).  Nothing to do but set
	 * this; docs/blk.md says what is replayed.
	 */
	bool inflight;
	/*
	 * GET_VRING_BASE (the front-end stopping a ring: the VM stopped or
	 * migrating, the device reset) waits up to this long, ms, for the
	 * requests the application holds to come back through vhu_vq_push()
	 * before the ring stops and the reply goes: the front-end takes the
	 * base it gets as "every request before it done", and a migration
	 * moves no request in flight.  Meanwhile vhu_vq_begin() reports
	 * VHU_VQ_DRAINING, vhu_vq_pop() hands out no new request and
	 * vhu_vq_avail() / vhu_vq_set_kicks() report none.  The
	 * control thread blocks while it waits, so the data plane must run on
	 * other threads.  0: the ring stops at once, and requests held then are
	 * the application's to drop (vhu_vq_generation()).
	 */
	uint32_t stop_drain_ms;
};

/** vhu_dev_new() - create a device.  NULL with errno set on failure. */
VHU_API struct vhu_dev *vhu_dev_new(const struct vhu_dev_opts *opts);

/** vhu_dev_free() - disconnect, unmap, close every fd, free.  NULL is a no-op. */
VHU_API void vhu_dev_free(struct vhu_dev *dev);

/**
 * vhu_dev_listen() - server mode: listen on the Unix socket @path.
 *
 * A stale socket at @path is removed; any other kind of file there is
 * refused with -EEXIST.  One front-end is served at a time; a second one
 * that connects meanwhile is closed with a log line.  After a disconnect
 * the next connection is accepted.
 */
VHU_API int vhu_dev_listen(struct vhu_dev *dev, const char *path);

/**
 * vhu_dev_connect() - client mode: connect to a front-end serving @path,
 * and reconnect with exponential backoff whenever it is missing or goes
 * away.  Returns 0 once the attempt is scheduled, whether or not the
 * front-end is there yet.
 */
VHU_API int vhu_dev_connect(struct vhu_dev *dev, const char *path);

/** vhu_dev_attach_fd() - serve an already connected socket (the --fd
 *  convention).  The device owns @fd from then on; no reconnect, but once
 *  that connection is gone another fd may be attached.  -EBUSY while a
 *  connection is up or the device listens or connects itself. */
VHU_API int vhu_dev_attach_fd(struct vhu_dev *dev, int fd);

/** vhu_dev_on_readable() - the application's loop saw @fd readable. */
VHU_API void vhu_dev_on_readable(struct vhu_dev *dev, int fd);

/** vhu_dev_on_timer() - the device's timer fired. */
VHU_API void vhu_dev_on_timer(struct vhu_dev *dev);

/**
 * vhu_dev_poll() - for applications without a loop: wait up to @timeout_ms
 * (-1: forever) for the device's control fds and timer, and handle what is
 * ready.  Returns the number of events handled, or -errno.
 */
VHU_API int vhu_dev_poll(struct vhu_dev *dev, int timeout_ms);

/** vhu_dev_is_connected() - a front-end is connected now. */
VHU_API bool vhu_dev_is_connected(const struct vhu_dev *dev);

/** vhu_dev_is_ready() - device_ready has fired and device_stopped has not. */
VHU_API bool vhu_dev_is_ready(const struct vhu_dev *dev);

/** vhu_dev_disconnect() - drop the current front-end (client mode then
 *  reconnects; server mode accepts the next one). */
VHU_API void vhu_dev_disconnect(struct vhu_dev *dev);

/** vhu_dev_features() - negotiated virtio features (0 before SET_FEATURES). */
VHU_API uint64_t vhu_dev_features(const struct vhu_dev *dev);

/** vhu_dev_offered_features() - what GET_FEATURES answers. */
VHU_API uint64_t vhu_dev_offered_features(const struct vhu_dev *dev);

/** vhu_dev_protocol_features() - negotiated protocol features. */
VHU_API uint64_t vhu_dev_protocol_features(const struct vhu_dev *dev);

/** vhu_dev_offered_protocol_features() - what GET_PROTOCOL_FEATURES answers. */
VHU_API uint64_t vhu_dev_offered_protocol_features(const struct vhu_dev *dev);

/** vhu_dev_status() - the virtio status byte last set by SET_STATUS. */
VHU_API uint8_t vhu_dev_status(const struct vhu_dev *dev);

/** vhu_dev_name() - the name given in the options. */
VHU_API const char *vhu_dev_name(const struct vhu_dev *dev);

/** vhu_dev_num_queues() - the num_queues given in the options. */
VHU_API uint16_t vhu_dev_num_queues(const struct vhu_dev *dev);

/** vhu_dev_mem_regions() - number of guest memory regions mapped now. */
VHU_API uint32_t vhu_dev_mem_regions(const struct vhu_dev *dev);

/** A queue's control-plane state, for the application and for tests. */
struct vhu_queue_info {
	uint32_t size;          /* SET_VRING_NUM; 0 if unset */
	bool packed;            /* packed layout (VIRTIO_F_RING_PACKED) */
	bool started;
	bool enabled;
	bool broken;
	bool has_addr;          /* SET_VRING_ADDR seen */
	int kick_fd;            /* -1: none (polling or unset) */
	int call_fd;            /* -1: none */
	int err_fd;             /* -1: none */
	uint16_t last_avail_idx;
	bool avail_wrap;        /* packed only */
	uint16_t used_idx;      /* packed only: device's used index */
	bool used_wrap;         /* packed only */
	uint64_t desc_addr, avail_addr, used_addr; /* front-end addresses */
};

/** vhu_dev_queue_info() - fill @info for queue @queue; -EINVAL if out of
 *  range. */
VHU_API int vhu_dev_queue_info(const struct vhu_dev *dev, uint16_t queue,
			       struct vhu_queue_info *info);

/**
 * vhu_dev_notify_config_change() - send CONFIG_CHANGE_MSG on the back-end
 * channel so the driver re-reads the config space.  -ENOTCONN without a
 * front-end, -EOPNOTSUPP when the channel or the CONFIG protocol feature
 * was not negotiated.
 */
VHU_API int vhu_dev_notify_config_change(struct vhu_dev *dev);

#ifdef __cplusplus
}
#endif

#endif
