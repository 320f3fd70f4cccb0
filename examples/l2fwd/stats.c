/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhu-l2fwd statistics, printed by the control thread from three sources:
 * vhu_net_stats() of every guest queue (what the library dequeued from the
 * guest and enqueued to it, and its drops), the data plane's own counters
 * (struct l2_counters) and the kernel's AF_XDP counters (XDP_STATISTICS).
 *
 *   stats: guest->nic pkts=N pps=N bytes=N drop{...} | nic->guest pkts=N
 *          pps=N bytes=N drop{...} | sleeps=N
 *
 * Counters are totals since start (vhu's per-queue counters survive
 * reconnects); pps is the rate since the previous line.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <linux/if_xdp.h>

#include "stats.h"

#define RD(x) ((unsigned long long)atomic_load_explicit(&(x), memory_order_relaxed))

struct snap {
	double t;
	unsigned long long g2n_pkts, n2g_pkts;
};

static struct snap last;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void l2_stats_init(struct l2_shared *sh)
{
	last.t = now_s();
	last.g2n_pkts = RD(sh->c.tx_pkts);
	last.n2g_pkts = 0;
	for (unsigned p = 0; p < L2_MAX_PAIRS; p++) {
		struct vhu_net_stats rx;

		vhu_net_stats(sh->rxq[p], &rx);
		last.n2g_pkts += rx.packets;
	}
}

void l2_stats_print(struct l2_shared *sh, const char *tag)
{
	struct vhu_net_stats rx, tx, srx = { 0 }, stx = { 0 };
	struct xdp_statistics xs, sx = { 0 };
	struct snap now = { .t = now_s() };
	double dt;

	for (unsigned p = 0; p < L2_MAX_PAIRS; p++) {
		vhu_net_stats(sh->rxq[p], &rx);
		vhu_net_stats(sh->txq[p], &tx);
#define SUM(s, v)                                                           \
	do {                                                                \
		s.packets += v.packets; s.bytes += v.bytes;                     \
		s.drop_no_buffers += v.drop_no_buffers;                         \
		s.drop_too_big += v.drop_too_big;                               \
		s.drop_bad_header += v.drop_bad_header;                         \
		s.drop_not_ready += v.drop_not_ready;                           \
		s.drop_ring_error += v.drop_ring_error;                         \
	} while (0)
		SUM(srx, rx);
		SUM(stx, tx);
#undef SUM
	}
	for (unsigned i = 0; i < sh->nxsk; i++) {
		socklen_t len = sizeof(xs);

		memset(&xs, 0, sizeof(xs));
		if (getsockopt(sh->xsk[i].fd, SOL_XDP, XDP_STATISTICS, &xs, &len))
			continue;
		sx.rx_dropped += xs.rx_dropped;
		sx.rx_ring_full += xs.rx_ring_full;
		sx.rx_fill_ring_empty_descs += xs.rx_fill_ring_empty_descs;
		sx.tx_invalid_descs += xs.tx_invalid_descs;
	}
	now.g2n_pkts = RD(sh->c.tx_pkts);
	now.n2g_pkts = srx.packets;
	dt = now.t - last.t > 1e-3 ? now.t - last.t : 1e-3;
	printf("%s: guest->nic pkts=%llu pps=%.0f bytes=%llu "
	       "drop{mtu=%llu runt=%llu csum=%llu bad_header=%llu too_big=%llu not_ready=%llu "
	       "ring=%llu sendto=%llu xsk_tx_invalid=%llu} rarp=%llu | "
	       "nic->guest xsk_rx=%llu pkts=%llu pps=%.0f bytes=%llu "
	       "drop{no_buffers=%llu too_big=%llu bad_header=%llu not_ready=%llu "
	       "ring=%llu no_guest=%llu xsk_rx_dropped=%llu xsk_rx_ring_full=%llu "
	       "xsk_fill_empty=%llu} | sleeps=%llu\n",
	       tag, now.g2n_pkts, (double)(now.g2n_pkts - last.g2n_pkts) / dt,
	       RD(sh->c.tx_bytes), RD(sh->c.tx_drop_mtu), RD(sh->c.tx_drop_runt),
	       RD(sh->c.tx_drop_csum),
	       (unsigned long long)stx.drop_bad_header,
	       (unsigned long long)stx.drop_too_big,
	       (unsigned long long)stx.drop_not_ready,
	       (unsigned long long)stx.drop_ring_error, RD(sh->c.tx_drop_sendto),
	       (unsigned long long)sx.tx_invalid_descs, RD(sh->c.rarp_sent),
	       RD(sh->c.rx_pkts), now.n2g_pkts,
	       (double)(now.n2g_pkts - last.n2g_pkts) / dt,
	       (unsigned long long)srx.bytes,
	       (unsigned long long)srx.drop_no_buffers,
	       (unsigned long long)srx.drop_too_big,
	       (unsigned long long)srx.drop_bad_header,
	       (unsigned long long)srx.drop_not_ready,
	       (unsigned long long)srx.drop_ring_error, RD(sh->c.rx_drop_no_guest),
	       (unsigned long long)sx.rx_dropped,
	       (unsigned long long)sx.rx_ring_full,
	       (unsigned long long)sx.rx_fill_ring_empty_descs, RD(sh->c.sleeps));
	last = now;
}

/** l2_stats_pairs() - one line per queue pair that carried traffic. */
void l2_stats_pairs(struct l2_shared *sh)
{
	for (unsigned p = 0; p < L2_MAX_PAIRS; p++) {
		struct vhu_net_stats rx, tx;

		vhu_net_stats(sh->rxq[p], &rx);
		vhu_net_stats(sh->txq[p], &tx);
		if (rx.packets || tx.packets || rx.drop_no_buffers)
			printf("pair %u: guest rx pkts=%llu no_buffers=%llu, guest tx pkts=%llu (NIC queue socket %u)\n",
			       p, (unsigned long long)rx.packets,
			       (unsigned long long)rx.drop_no_buffers,
			       (unsigned long long)tx.packets, p % sh->nxsk);
	}
}
