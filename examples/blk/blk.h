/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhu-blk: a vhost-user-blk back-end serving a raw image or block device.
 * Shared declarations of its modules:
 *
 *   opts.c      the command line
 *   main.c      the control thread (libev: vhost-user socket, signals),
 *               device callbacks, stats lines
 *   config.c    offered features and the virtio-blk config space
 *   image.c     opening the image: O_DIRECT, size, block sizes
 *   req.c       parsing and validating requests (req.h; pure, fuzzed)
 *   io.c        a queue's I/O engine: io_uring, or synchronous calls
 *   io_sync.c   the synchronous operations and every fallback
 *   queue.c     one queue's request loop: pop, parse, start I/O, push
 *   dataplane.c one thread per queue, sleeping on its kick and wake fds
 *
 * Ownership: each queue (struct blk_queue) belongs to its data-plane
 * thread; the control thread only bumps its event counter and writes its
 * wake eventfd, and reads its counters (relaxed atomics).  The image is
 * shared read-only, but for two "this operation is unsupported" flags.
 */
#ifndef VHU_BLK_H
#define VHU_BLK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

#ifdef VHU_BLK_URING
#include <liburing.h>
#endif

#include <vhu/vhu.h>

#include "req.h"

#define BLK_MAX_QUEUES 64
/* Data segments a driver may use per request (seg_max), header and status
 * not counted. */
#define BLK_SEG_MAX 126u
/* Segments one popped request may take; a longer chain stalls its queue
 * (logged), which only a broken or hostile driver can cause. */
#define BLK_MAX_SEGS 8192u
#define BLK_MAX_DISCARD_SECTORS (1u << 22) /* 2 GiB per range */
#define BLK_MAX_WZ_SECTORS (1u << 16)      /* 32 MiB per range */

static inline int64_t blk_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- opts.c -------------------------------------------------------------- */

struct blk_opts {
	const char *socket;
	const char *file;
	const char *serial;   /* GET_ID answer, up to 20 bytes */
	unsigned queues;
	unsigned queue_size;  /* largest ring accepted; requests in flight per queue */
	unsigned stats_s;     /* stats line period, 0: only on SIGUSR1 and at exit */
	unsigned drain_ms;    /* vhu_dev_opts.stop_drain_ms (default 5000) */
	bool read_only;
	bool client;
	bool no_packed;
	bool no_uring;
	bool verbose;
	unsigned hold_every;  /* --hold N:MS (tests): hold each Nth completion */
	unsigned hold_ms;     /* ... for MS milliseconds before answering it */
};

/* 0: run; 1: --help printed (exit 0); 2: usage error explained (exit 2). */
int blk_parse_opts(int argc, char **argv, struct blk_opts *o);

/* ---- image.c ------------------------------------------------------------- */

struct blk_image {
	int fd;              /* O_DIRECT when the file system takes it */
	int fd_buffered;     /* the same file through the page cache (may be fd) */
	bool direct;         /* fd is O_DIRECT */
	bool blockdev;
	bool read_only;
	uint64_t size;       /* bytes, a multiple of lbs */
	uint32_t lbs;        /* logical block size */
	uint32_t pbs;        /* physical block size (>= lbs) */
	uint32_t dio_align;  /* alignment O_DIRECT wants of offsets, lengths, buffers */
	/* Set once the file system refused an fallocate mode: later requests
	 * go straight to the fallback. */
	atomic_bool no_zero_range;
	atomic_bool no_punch_hole;
};

/* Open @path; on failure -errno and a message in @err. */
int blk_image_open(struct blk_image *img, const char *path, bool read_only,
		   char *err, size_t errlen);
void blk_image_close(struct blk_image *img);

/* ---- config.c ------------------------------------------------------------ */

struct blk_config {
	struct virtio_blk_config cfg; /* little endian, as the driver reads it */
	uint64_t features;            /* VIRTIO_BLK_F_* offered */
	struct blk_limits lim;
};

void blk_config_build(struct blk_config *c, const struct blk_image *img,
		      unsigned queues, bool read_only);
/* GET_CONFIG: copy what overlaps [offset, offset + len); zeros beyond. */
void blk_config_read(const struct blk_config *c, uint32_t offset, void *buf,
		     uint32_t len);

/* ---- io.c / io_sync.c ---------------------------------------------------- */

/* One request between pop and push. */
struct blk_slot {
	_Alignas(64) struct vhu_req req; /* io.c keeps an index in low bits */
	struct vhu_seg *segs;  /* the request's segments (capacity cap) */
	struct iovec *iov;     /* its data, as the parser described it */
	unsigned cap;
	struct blk_req br;     /* br.status is the final status once done */
	uint32_t gen;          /* vhu_vq_generation() when popped */
	uint32_t data_done;    /* data bytes written into the guest's buffers */
	int64_t hold_until;    /* --hold: answered from then on (blk_now_ms()) */
	unsigned ops;          /* io_uring operations outstanding */
	int err;               /* first error of those operations, -errno */
	struct blk_slot *next; /* on the done list */
};

struct blk_io {
	struct blk_image *img;
	bool uring;
#ifdef VHU_BLK_URING
	struct io_uring ring;
	unsigned queued;       /* prepared, not yet submitted */
#endif
	unsigned inflight;     /* slots with operations outstanding */
	struct blk_slot *done_head, *done_tail;
	uint64_t fallbacks;    /* operations redone synchronously */
};

/* Set up the engine: io_uring with @depth entries unless @no_uring or it
 * cannot be had (then synchronous calls); completions are announced on
 * @notify_fd (an eventfd).  0 or -errno. */
int blk_io_init(struct blk_io *io, struct blk_image *img, unsigned depth,
		bool no_uring, int notify_fd);
void blk_io_fini(struct blk_io *io);
/* Begin @s's operations (a validated IN/OUT/FLUSH/DISCARD/WRITE_ZEROES);
 * with synchronous calls it is done on return. */
void blk_io_start(struct blk_io *io, struct blk_slot *s);
/* Hand what blk_io_start() prepared to the kernel. */
void blk_io_submit(struct blk_io *io);
/* Collect completions without waiting; the finished slots join the done
 * list with br.status and data_done final. */
void blk_io_reap(struct blk_io *io);
struct blk_slot *blk_io_take_done(struct blk_io *io);

/* io_sync.c: 0 or -errno each; they finish short transfers themselves. */
bool blk_io_can_direct(const struct blk_image *img, const struct iovec *iov,
		       unsigned niov, uint64_t off, uint64_t len);
int blk_sync_rw(const struct blk_image *img, struct iovec *iov, unsigned niov,
		uint64_t off, uint64_t len, uint64_t skip, bool write);
int blk_sync_flush(const struct blk_image *img);
int blk_sync_discard(struct blk_image *img, uint64_t off, uint64_t len);
int blk_sync_write_zeroes(struct blk_image *img, uint64_t off, uint64_t len,
			  bool unmap);

/* ---- queue.c ------------------------------------------------------------- */

enum blk_stat_type {
	BLK_ST_IN, BLK_ST_OUT, BLK_ST_FLUSH, BLK_ST_GET_ID, BLK_ST_DISCARD,
	BLK_ST_WRITE_ZEROES, BLK_ST_OTHER, BLK_ST_NTYPES,
};

/* Counters of one queue: written by its thread only, read by any. */
struct blk_stats {
	atomic_uint_fast64_t reqs[BLK_ST_NTYPES];
	atomic_uint_fast64_t ioerr, unsupp;   /* answered with that status */
	atomic_uint_fast64_t no_status;       /* pushed back with nothing written */
	atomic_uint_fast64_t stale;           /* completed after the queue restarted */
	atomic_uint_fast64_t bytes_read, bytes_written;
};

struct blk_queue {
	struct vhu_vq *vq;
	uint16_t index;
	const struct blk_limits *lim;
	char serial[VIRTIO_BLK_ID_BYTES];
	bool verbose;
	struct blk_io io;
	struct blk_slot *slots;
	unsigned nslots;
	struct blk_slot **free;  /* unused slots (stack) */
	unsigned nfree;
	struct blk_slot **start; /* popped in this burst, I/O to begin after it */
	unsigned nstart;
	struct vhu_req *push_reqs; /* one push per burst */
	uint32_t *push_written;
	struct blk_slot **push_slots;
	unsigned npush;
	int uring_err;           /* why io_uring could not be had, -errno; 0 */
	int kick_fd;             /* -1: none (stopped, polling or in-band) */
	int sleep_ms;            /* how long the thread may sleep: -1 forever */
	unsigned seen_events;
	atomic_uint events;      /* bumped by the control thread on queue events */
	int wake_fd;             /* eventfd: control thread and I/O completions */
	unsigned refusals_logged;
	bool stall_logged;
	/* --hold (crash tests): completions answered out of order on purpose */
	unsigned hold_every, hold_ms;
	uint64_t completions;
	struct blk_slot **held;
	unsigned nheld;
	struct blk_stats st;
	/* dataplane.c */
	pthread_t thread;
	atomic_bool stop;
	bool thread_started;
};

/* 0 or -errno.  @serial is copied (20 bytes at most). */
int blk_queue_init(struct blk_queue *q, struct vhu_vq *vq, uint16_t index,
		   struct blk_image *img, const struct blk_limits *lim,
		   const char *serial, unsigned nslots, bool no_uring,
		   bool verbose);
void blk_queue_fini(struct blk_queue *q);
/* One round: completions pushed, new requests popped and their I/O begun
 * (no new ones when !@accept).  True when there is work left right now;
 * else the caller may sleep on wake_fd and kick_fd for sleep_ms. */
bool blk_queue_run(struct blk_queue *q, bool accept);
/* Requests taken and not yet returned or dropped. */
unsigned blk_queue_busy(const struct blk_queue *q);

/* ---- dataplane.c --------------------------------------------------------- */

int blk_dp_start(struct blk_queue *q);
/* Stop taking requests, finish those in flight (up to 5 s), join. */
void blk_dp_stop(struct blk_queue *q);
/* A queue event happened: the thread looks at its ring again. */
void blk_dp_notify(struct blk_queue *q);

#endif
