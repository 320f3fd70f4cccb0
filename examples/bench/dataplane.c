/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The data plane: one thread busy-polls every queue pair while the device
 * is ready (a benchmark wants the lowest latency and highest rate, so it
 * keeps the driver's kicks off), and sleeps while it is not.
 */
#include <string.h>
#include <unistd.h>

#include "bench.h"

struct pair_state {
	struct vhu_vq *rx; /* device -> guest */
	struct vhu_vq *tx; /* guest -> device */
};

static void kicks_off(struct vhu_vq *vq)
{
	if (vhu_vq_begin(vq) & VHU_VQ_RUNNING)
		vhu_vq_set_kicks(vq, false);
	vhu_vq_end(vq);
}

/* One round over one pair; returns the frames it moved. */
static unsigned pair_round(struct bench *b, struct pair_state *p,
			   struct vhu_net_pkt *pkts, void **bufs)
{
	int n;

	switch (b->mode) {
	case MODE_RXONLY:
		n = vhu_net_dequeue(p->tx, pkts, bufs, BENCH_MAX_FRAME, b->burst);
		return n > 0 ? (unsigned)n : 0;
	case MODE_TXONLY:
		for (unsigned i = 0; i < b->burst; i++)
			pkts[i] = (struct vhu_net_pkt){ .data = b->frame, .len = b->pkt_len };
		n = vhu_net_enqueue(p->rx, pkts, b->burst);
		return n > 0 ? (unsigned)n : 0;
	case MODE_LOOPBACK:
	default:
		n = vhu_net_dequeue(p->tx, pkts, bufs, BENCH_MAX_FRAME, b->burst);
		if (n > 0)
			vhu_net_enqueue(p->rx, pkts, (unsigned)n); /* the rest: counted drops */
		return n > 0 ? (unsigned)n : 0;
	}
}

void *bench_dataplane(void *arg)
{
	struct bench *b = arg;
	static uint8_t store[BENCH_MAX_BURST][BENCH_MAX_FRAME];
	struct vhu_net_pkt pkts[BENCH_MAX_BURST];
	void *bufs[BENCH_MAX_BURST];
	struct pair_state pairs[BENCH_MAX_PAIRS];
	bool was_ready = false;
	unsigned rounds = 0;

	for (unsigned i = 0; i < BENCH_MAX_BURST; i++)
		bufs[i] = store[i];
	for (unsigned i = 0; i < b->queues; i++) {
		pairs[i].rx = vhu_dev_vq(b->dev, (uint16_t)(2 * i));
		pairs[i].tx = vhu_dev_vq(b->dev, (uint16_t)(2 * i + 1));
	}
	while (!atomic_load_explicit(&b->quit, memory_order_relaxed)) {
		if (!atomic_load_explicit(&b->ready, memory_order_acquire)) {
			was_ready = false;
			usleep(10000);
			continue;
		}
		/* Poll, do not be kicked: for a new session, and now and then for
		 * queues the guest enables later. */
		if (!was_ready || (++rounds & 0xfffff) == 0) {
			for (unsigned i = 0; i < b->queues; i++) {
				kicks_off(pairs[i].rx);
				kicks_off(pairs[i].tx);
			}
			was_ready = true;
		}
		for (unsigned i = 0; i < b->queues; i++)
			pair_round(b, &pairs[i], pkts, bufs);
	}
	return NULL;
}
