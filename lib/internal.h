/* SPDX-License-Identifier: BSD-3-Clause */
/* The device and virtqueue structures shared by the library's modules. */
#ifndef VHU_INTERNAL_H
#define VHU_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>

#include <vhu/dev.h>
#include <vhu/vq.h>

#include "protocol/conn.h"
#include "memory/dirty_log.h"
#include "memory/inflight.h"
#include "log.h"
#include "memory/mem.h"
#include "protocol/proto.h"
#include "rings/ring.h"

#define VHU_MAX_QUEUES 1024
#define VHU_MAX_QUEUE_SIZE 32768

/* Data-plane view of a queue's state, read once per burst (vq->dp_state). */
enum {
	VHU_DP_RUNNING = 1u << 0, /* started and not stopped */
	VHU_DP_ENABLED = 1u << 1,
	VHU_DP_BROKEN = 1u << 2,
	VHU_DP_DRAINING = 1u << 3, /* vhu_vq_drain(): pushes only */
};

struct vhu_dev;

/*
 * One virtqueue.  The first part is the data plane's: the control thread
 * changes it only while VHU_DP_RUNNING is clear and after
 * vhu_mem_sync_reader() on `reader` (see vring.c), except the atomics.
 */
struct vhu_vq {
	struct vhu_mem_reader reader; /* a burst is a read section */
	_Atomic uint32_t dp_state;
	uint32_t size;
	bool packed;
	bool event_idx;
	bool indirect;
	bool in_order;
	bool inband_calls; /* in-band notifications when there is no call fd */
	uint64_t features;  /* negotiated, copied at start */
	/* Ring in local memory, valid while RUNNING. */
	void *desc;
	void *avail; /* split: avail ring; packed: driver event suppression */
	void *used;  /* split: used ring; packed: device event suppression */
	uint16_t last_avail_idx;
	bool avail_wrap;
	uint16_t used_idx; /* next used slot (split: the used ring's idx) */
	bool used_wrap;
	uint16_t shadow_avail_idx; /* split: avail->idx as last read */
	uint16_t signalled_used;   /* used_idx at the last notification */
	bool signalled_used_valid;
	bool signalled_used_wrap;
	uint16_t pending_used;     /* requests pushed since the last notify */
	const struct vhu_memtable *mt; /* the burst's memory table */
	const struct vhu_region *rhint; /* region of mt last translated in */
	uint32_t burst_state;          /* dp_state seen by vhu_vq_begin() */
	/* The dirty log the burst marks (LOG_ALL on), else NULL. */
	const struct vhu_dirty_log *burst_log;
	uint32_t used_since_signal;    /* packed: descs used since last notify */
	struct vring_desc *bounce;     /* indirect tables that cross regions */
	struct vhu_ifl_queue *ifl;     /* inflight tracking, or NULL */
	uint32_t gen;                  /* vhu_vq_generation() */
	/* Draining: set by a burst that ends with every request pushed. */
	_Atomic bool drained;
	_Atomic int kick_fd;
	_Atomic int call_fd;
	_Atomic int err_fd;
	struct vhu_logger dp_lg; /* the data plane's own rate limit */
	_Atomic uint64_t st_popped, st_pushed, st_calls, st_calls_suppressed,
		st_kicks, st_errors;
	_Atomic uint64_t net_st[7]; /* struct vhu_net_stats, in order */

	/* Control plane only. */
	struct vhu_dev *dev __attribute__((aligned(64)));
	uint16_t index;
	bool started;
	bool enabled;
	bool broken;
	bool has_addr;
	bool kick_polling; /* SET_VRING_KICK with the no-fd bit */
	int8_t remap;      /* vhu_vq_mem_change(): 1 moves, -1 breaks */
	bool ring_unlogged; /* written at start with LOG_ALL on and no log */
	bool draining;      /* vhu_vq_drain() waiting */
	struct vhu_vring_addr addr;
} __attribute__((aligned(64)));

struct vhu_dev {
	char name[64];
	struct vhu_logger lg;
	struct vhu_dev_ops ops;
	void *opaque;
	struct vhu_loop loop;
	bool has_loop;

	/* Negotiation. */
	uint64_t offered_features;
	uint64_t offered_protocol;
	uint64_t features;
	uint64_t protocol;
	bool features_set;
	bool protocol_set;
	bool owner;          /* SET_OWNER, or implicitly by a session request */
	bool owner_explicit; /* SET_OWNER itself */
	uint8_t status;

	/* Queues. */
	uint16_t nvq;
	uint16_t min_ready;
	bool queue_pairs;
	uint32_t max_qsize;
	uint32_t max_mem_slots;
	uint32_t stop_drain_ms;
	struct vhu_vq *vqs;
	bool ready;

	struct vhu_mem mem;

	/* Dirty-page logging (dirty_log.h). */
	struct vhu_dirty_log *_Atomic dp_log; /* what bursts mark, or NULL */
	struct vhu_dirty_log *dirty_log;      /* the last SET_LOG_BASE */
	struct vhu_dirty_log *log_stale;      /* replaced, a burst overstayed */
	bool log_held; /* LOG_ALL without a log: rings do not run */

	/* Inflight tracking (inflight.h): the last SET_INFLIGHT_FD. */
	struct vhu_inflight_map *inflight;
	/* test build: vhu_crash_point() countdown and hook */
	uint32_t crash_at;
	void (*crash_hook)(void *);
	void *crash_arg;

	/* Connection. */
	enum { VHU_MODE_NONE, VHU_MODE_SERVER, VHU_MODE_CLIENT, VHU_MODE_FD } mode;
	char path[108];
	int listen_fd;
	int conn_fd;
	int backend_fd; /* back-end channel (SET_BACKEND_REQ_FD) */
	pthread_mutex_t backend_lock; /* data planes send in-band calls too */
	int log_call_fd; /* SET_LOG_FD */
	struct vhu_rx rx;
	uint32_t reconnect_min_ms;
	uint32_t reconnect_max_ms;
	uint32_t reconnect_ms;
	int64_t timer_deadline_ns; /* poll mode; -1 when disarmed */
	bool in_dispatch;
	bool disconnect_pending;
};

/*
 * Crash points, for the tests of inflight tracking: in the library built
 * with VHU_CRASH_POINTS (never installed), the crash_at-th point reached
 * calls the test's hook, which ends the process there as a SIGKILL would.
 * The library itself never ends a process; in the real library this is
 * nothing at all.
 */
#ifdef VHU_CRASH_POINTS
static inline void vhu_crash_point(struct vhu_dev *dev)
{
	if (dev->crash_at && --dev->crash_at == 0 && dev->crash_hook)
		dev->crash_hook(dev->crash_arg);
}
#else
static inline void vhu_crash_point(struct vhu_dev *dev)
{
	(void)dev;
}
#endif
/* Tests: call @hook(@arg) at the @n-th crash point (0: never). */
void vhu_dev_crash_at(struct vhu_dev *dev, uint32_t n, void (*hook)(void *),
		      void *arg);

/* dev.c */
void vhu_dev_conn_established(struct vhu_dev *dev, int fd);
void vhu_dev_conn_lost(struct vhu_dev *dev, const char *why);
void vhu_dev_check_ready(struct vhu_dev *dev);
void vhu_dev_reset_state(struct vhu_dev *dev);
int vhu_dev_watch(struct vhu_dev *dev, int fd);
void vhu_dev_unwatch(struct vhu_dev *dev, int fd);
void vhu_dev_timer(struct vhu_dev *dev, int64_t ms);
void vhu_dev_queue_event(struct vhu_dev *dev, uint16_t q, enum vhu_queue_event ev);

/* sock.c */
int vhu_sock_listen(struct vhu_logger *lg, const char *path);
void vhu_sock_accept(struct vhu_dev *dev);
void vhu_sock_try_connect(struct vhu_dev *dev);
void vhu_sock_schedule_reconnect(struct vhu_dev *dev);

/* msg_table.c: validate and dispatch one complete message. */
void vhu_msg_dispatch(struct vhu_dev *dev, struct vhu_rx *rx);

/* vring.c */
void vhu_vq_init(struct vhu_dev *dev, struct vhu_vq *vq, uint16_t index);
int vhu_vq_start(struct vhu_vq *vq);
void vhu_vq_stop(struct vhu_vq *vq);
void vhu_vq_drain(struct vhu_vq *vq);
void vhu_vq_reset(struct vhu_vq *vq);
int vhu_vq_set_enable(struct vhu_vq *vq, bool enable);
void vhu_vq_set_kick_fd(struct vhu_vq *vq, int fd, bool polling);
void vhu_vq_set_call_fd(struct vhu_vq *vq, int fd);
void vhu_vq_set_err_fd(struct vhu_vq *vq, int fd);
void vhu_vq_mem_change(struct vhu_vq *vq, const struct vhu_memtable *t,
		       enum vhu_mem_phase phase);
void vhu_vq_mark_broken(struct vhu_vq *vq);
/* vhu_dev.log_held changed: pause or run the ring again. */
void vhu_vq_hold_changed(struct vhu_vq *vq);
void vhu_vq_fill_info(const struct vhu_vq *vq, struct vhu_queue_info *info);
uint32_t vhu_vq_get_base(const struct vhu_vq *vq);

/* vq_recover.c: find a packed ring's position from the ring itself, at
 * start: 0 with both positions set, -EIO when none fits (logged),
 * -ENOMEM. */
int vhu_vq_recover_packed(struct vhu_vq *vq);
int vhu_vq_set_base(struct vhu_vq *vq, uint32_t num);

/* backend_chan.c */
int vhu_backend_send(struct vhu_dev *dev, struct vhu_logger *lg, uint32_t request,
		     const void *payload, uint32_t size);
void vhu_backend_set_fd(struct vhu_dev *dev, int fd);
void vhu_backend_close(struct vhu_dev *dev);

static inline bool vhu_has_feature(const struct vhu_dev *dev, unsigned bit)
{
	return dev->features & VHU_BIT(bit);
}

static inline bool vhu_has_protocol(const struct vhu_dev *dev, unsigned bit)
{
	return dev->protocol & VHU_BIT(bit);
}

#endif
