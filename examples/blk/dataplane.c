/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One data-plane thread per queue.  It runs rounds of its queue (queue.c)
 * while there is work, then sleeps in poll() on the queue's kick eventfd
 * (the guest posted requests) and its wake eventfd, which io_uring writes
 * on every completion and the control thread writes on queue events.  A
 * block device is driven by the guest's requests and the disk, not by
 * polling: an idle disk costs no CPU.
 *
 * At exit the thread stops taking requests and waits for the I/O in
 * flight (pushing it while the queue runs), for up to BLK_DRAIN_MS.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blk.h"

#define BLK_DRAIN_MS 5000

static void drain_wake_fd(struct blk_queue *q)
{
	uint64_t v;

	if (read(q->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		perror("vhu-blk: wake eventfd");
}

static void sleep_on_fds(struct blk_queue *q, int timeout_ms)
{
	struct pollfd pfd[2] = { { .fd = q->wake_fd, .events = POLLIN } };
	nfds_t n = 1;

	if (q->kick_fd >= 0)
		pfd[n++] = (struct pollfd){ .fd = q->kick_fd, .events = POLLIN };
	/* a kick fd closed meanwhile gives POLLNVAL: the event that closed
	 * it also wrote wake_fd, and the next round fetches the new one */
	if (poll(pfd, n, timeout_ms) < 0 && errno != EINTR)
		perror("vhu-blk: poll");
	drain_wake_fd(q);
}

static void *dp_main(void *arg)
{
	struct blk_queue *q = arg;
	int64_t deadline;

	while (!atomic_load(&q->stop)) {
		if (!blk_queue_run(q, true))
			sleep_on_fds(q, q->sleep_ms);
	}
	/* the kernel may still write into guest memory: wait for it */
	deadline = blk_now_ms() + BLK_DRAIN_MS;
	while (q->io.inflight && blk_now_ms() < deadline) {
		if (!blk_queue_run(q, false))
			sleep_on_fds(q, 100);
	}
	blk_queue_run(q, false); /* push the last completions, if the queue runs */
	if (q->io.inflight)
		fprintf(stderr, "vhu-blk: queue %u: %u request(s) still in flight at exit\n",
			q->index, q->io.inflight);
	return NULL;
}

void blk_dp_notify(struct blk_queue *q)
{
	uint64_t one = 1;

	atomic_fetch_add(&q->events, 1);
	if (write(q->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		perror("vhu-blk: wake eventfd");
}

int blk_dp_start(struct blk_queue *q)
{
	char name[16];
	int rc = pthread_create(&q->thread, NULL, dp_main, q);

	if (rc)
		return -rc;
	q->thread_started = true;
	snprintf(name, sizeof(name), "blk-q%u", q->index);
	pthread_setname_np(q->thread, name);
	return 0;
}

void blk_dp_stop(struct blk_queue *q)
{
	if (!q->thread_started)
		return;
	atomic_store(&q->stop, true);
	blk_dp_notify(q);
	pthread_join(q->thread, NULL);
	q->thread_started = false;
}
