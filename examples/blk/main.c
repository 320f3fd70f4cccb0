/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhu-blk - a vhost-user-blk back-end: serves a raw image file or a block
 * device to a guest (QEMU: -device vhost-user-blk-pci,chardev=...).
 *
 *   vhu-blk --socket PATH --file IMAGE [--queues N] [--read-only] [--client]
 *           [--queue-size N] [--serial ID] [--no-packed] [--no-uring]
 *           [--stats SECONDS] [--verbose] [--help]
 *
 * Threads: the control thread runs a libev loop (the vhost-user socket
 * through the vhu_ev glue, SIGINT/SIGTERM/SIGUSR1, the stats timer); each
 * queue has a data-plane thread (dataplane.c) doing its requests with
 * io_uring (io.c).  Device callbacks only poke those threads.
 *
 * Requests in flight are recorded by vhu (opts.inflight, INFLIGHT_SHMFD):
 * a vhu-blk killed with I/O in flight and started again on the same
 * socket does those requests again.  VIRTIO_F_IN_ORDER is withheld:
 * requests complete in the order the disk finishes them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include <vhu/ev.h>
#include <vhu/vhu.h>

#include "blk.h"
#include "device.h"

static struct blk_opts opts;
static struct blk_image image = { .fd = -1, .fd_buffered = -1 };
static struct blk_config config;
static struct blk_queue queues[BLK_MAX_QUEUES];
static unsigned nqueues;

/* ---- device callbacks (control thread) ---------------------------------- */

static int on_get_config(struct vhu_dev *dev, void *opaque, uint32_t offset,
			 void *buf, uint32_t len)
{
	blk_config_read(&config, offset, buf, len);
	return 0;
}

static void on_queue(struct vhu_dev *dev, void *opaque, uint16_t q,
		     enum vhu_queue_event ev)
{
	static const char *const names[] = { "started", "stopped", "enabled",
					     "disabled", "broken", "kicked" };

	if (q >= nqueues)
		return;
	if (ev == VHU_QUEUE_BROKEN)
		fprintf(stderr, "vhu-blk: queue %u broke (see the log above); it "
			"waits for the front-end to set it up again\n", q);
	else if (opts.verbose && ev != VHU_QUEUE_KICKED && (unsigned)ev < 6)
		printf("vhu-blk: queue %u %s\n", q, names[ev]);
	blk_dp_notify(&queues[q]);
}

static void on_ready(struct vhu_dev *dev, void *opaque)
{
	printf("vhu-blk: guest ready, features 0x%" PRIx64 "\n", vhu_dev_features(dev));
}

static void on_stopped(struct vhu_dev *dev, void *opaque)
{
	printf("vhu-blk: guest stopped\n");
}

static void on_connected(struct vhu_dev *dev, void *opaque)
{
	printf("vhu-blk: front-end connected\n");
}

static void on_disconnected(struct vhu_dev *dev, void *opaque)
{
	printf("vhu-blk: front-end disconnected\n");
}

static void vhu_log(void *opaque, enum vhu_log_level level,
		    const char *dev_name, const char *msg)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };

	fprintf(stderr, "vhu-blk: vhu %s: %s: %s\n", dev_name, names[level & 3], msg);
}

static const struct vhu_dev_ops ops = {
	.sz = sizeof(ops),
	.connected = on_connected,
	.disconnected = on_disconnected,
	.device_ready = on_ready,
	.device_stopped = on_stopped,
	.queue_event = on_queue,
	.get_config = on_get_config,
};

/* ---- stats --------------------------------------------------------------- */

#define RD(x) atomic_load_explicit(&(x), memory_order_relaxed)

static void print_stats(const char *what)
{
	uint64_t reqs[BLK_ST_NTYPES] = { 0 }, ioerr = 0, unsupp = 0, nostatus = 0,
		 stale = 0, rd = 0, wr = 0;

	for (unsigned i = 0; i < nqueues; i++) {
		struct blk_stats *s = &queues[i].st;

		for (unsigned t = 0; t < BLK_ST_NTYPES; t++)
			reqs[t] += RD(s->reqs[t]);
		ioerr += RD(s->ioerr);
		unsupp += RD(s->unsupp);
		nostatus += RD(s->no_status);
		stale += RD(s->stale);
		rd += RD(s->bytes_read);
		wr += RD(s->bytes_written);
	}
	printf("vhu-blk: %s: in %" PRIu64 " out %" PRIu64 " flush %" PRIu64
	       " get_id %" PRIu64 " discard %" PRIu64 " write_zeroes %" PRIu64
	       " other %" PRIu64 " | read %" PRIu64 " written %" PRIu64
	       " bytes | ioerr %" PRIu64 " unsupp %" PRIu64 " no_status %" PRIu64
	       " stale %" PRIu64 "\n", what, reqs[BLK_ST_IN], reqs[BLK_ST_OUT],
	       reqs[BLK_ST_FLUSH], reqs[BLK_ST_GET_ID], reqs[BLK_ST_DISCARD],
	       reqs[BLK_ST_WRITE_ZEROES], reqs[BLK_ST_OTHER], rd, wr, ioerr, unsupp,
	       nostatus, stale);
}

/* ---- libev watchers ------------------------------------------------------ */

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	if (w->signum == SIGUSR1) {
		print_stats("stats");
		return;
	}
	printf("vhu-blk: %s, exiting\n", strsignal(w->signum));
	ev_break(loop, EVBREAK_ALL);
}

static void on_stats(struct ev_loop *loop, ev_timer *w, int revents)
{
	print_stats("stats");
}

/* ---- set-up -------------------------------------------------------------- */

static int start_queues(struct vhu_dev *dev, const char *serial)
{
	for (unsigned i = 0; i < opts.queues; i++) {
		struct blk_queue *q = &queues[i];
		int rc = blk_queue_init(q, vhu_dev_vq(dev, (uint16_t)i), (uint16_t)i,
					&image, &config.lim, serial, opts.queue_size,
					opts.no_uring, opts.verbose);

		if (rc) {
			fprintf(stderr, "vhu-blk: queue %u: %s\n", i, strerror(-rc));
			return rc;
		}
		nqueues++;
		q->hold_every = opts.hold_every;
		q->hold_ms = opts.hold_ms;
		if (q->uring_err && i == 0)
			fprintf(stderr, "vhu-blk: warning: io_uring unavailable (%s): "
				"synchronous I/O\n", strerror(-q->uring_err));
		rc = blk_dp_start(q);
		if (rc) {
			fprintf(stderr, "vhu-blk: queue %u thread: %s\n", i, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static void stop_queues(void)
{
	for (unsigned i = 0; i < nqueues; i++)
		blk_dp_stop(&queues[i]);
}

static void free_queues(void)
{
	for (unsigned i = 0; i < nqueues; i++)
		blk_queue_fini(&queues[i]);
	nqueues = 0;
}

static void print_banner(void)
{
	const char *io = opts.no_uring || queues[0].uring_err ? "synchronous I/O" : "io_uring";

#ifndef VHU_BLK_URING
	io = "synchronous I/O (built without liburing)";
#endif
	printf("vhu-blk: %s %s: %s, %" PRIu64 " sectors (%u-byte blocks)%s%s, "
	       "%u queue(s) of up to %u, %s\n",
	       opts.client ? "connecting to" : "listening on", opts.socket, opts.file,
	       config.lim.capacity, image.lbs, image.direct ? ", O_DIRECT" : "",
	       opts.read_only ? ", read-only" : "", opts.queues, opts.queue_size, io);
}

int main(int argc, char **argv)
{
	struct ev_loop *loop = EV_DEFAULT;
	struct example_dev x;
	struct vhu_dev *dev;
	ev_signal sigint, sigterm, sigusr1;
	ev_timer stats;
	char err[512], serial[VIRTIO_BLK_ID_BYTES + 1];
	int rc, status = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	rc = blk_parse_opts(argc, argv, &opts);
	if (rc)
		return rc == 1 ? 0 : 2;
	if (blk_image_open(&image, opts.file, opts.read_only, err, sizeof(err))) {
		fprintf(stderr, "vhu-blk: %s\n", err);
		return 1;
	}
	if (!image.direct)
		fprintf(stderr, "vhu-blk: warning: %s cannot be opened with O_DIRECT "
			"(tmpfs?): I/O goes through the page cache\n", opts.file);
	if (opts.serial) {
		snprintf(serial, sizeof(serial), "%s", opts.serial);
	} else {
		char *copy = strdup(opts.file);

		snprintf(serial, sizeof(serial), "%s", copy ? basename(copy) : "vhu-blk");
		free(copy);
	}
	blk_config_build(&config, &image, opts.queues, opts.read_only);
	ev_signal_init(&sigint, on_signal, SIGINT);
	ev_signal_init(&sigterm, on_signal, SIGTERM);
	ev_signal_init(&sigusr1, on_signal, SIGUSR1);
	ev_signal_start(loop, &sigint);
	ev_signal_start(loop, &sigterm);
	ev_signal_start(loop, &sigusr1);
	signal(SIGPIPE, SIG_IGN);

	struct vhu_dev_opts d = {
		.sz = sizeof(d),
		.name = "vhu-blk",
		.device_features = config.features,
		/* requests complete out of order */
		.transport_features_off = (1ull << VIRTIO_F_IN_ORDER) |
					  (opts.no_packed ? 1ull << VIRTIO_F_RING_PACKED : 0),
		.num_queues = (uint16_t)opts.queues,
		.min_ready_queues = 1,
		.max_queue_size = opts.queue_size,
		.ops = &ops,
		.log = vhu_log,
		.log_level = opts.verbose ? VHU_LOG_INFO : VHU_LOG_WARN,
		.inflight = true,
		/* a ring stops (VM stop, migration) once the requests in
		 * flight are answered: a migration moves none */
		.stop_drain_ms = opts.drain_ms,
	};
	if (example_dev_new(&x, loop, &d, "vhu-blk"))
		goto out_image;
	dev = x.dev;
	if (start_queues(dev, serial) || example_dev_attach(&x, opts.socket, opts.client, "vhu-blk"))
		goto out_queues;
	print_banner();
	if (opts.stats_s) {
		ev_timer_init(&stats, on_stats, opts.stats_s, opts.stats_s);
		ev_timer_start(loop, &stats);
	}
	ev_run(loop, 0);
	status = 0;

out_queues:
	stop_queues();
	if (status == 0)
		print_stats("final");
	example_dev_free(&x);
	free_queues();
out_image:
	blk_image_close(&image);
	return status;
}
