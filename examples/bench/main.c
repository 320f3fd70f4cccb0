/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhu-bench - a vhost-user net back-end for benchmarks:
 *   rxonly    drop every frame the guest sends;
 *   txonly    send --pkt-len-byte frames to the guest as fast as it takes them;
 *   loopback  return every frame the guest sends.
 * It serves one front-end after another until SIGINT/SIGTERM (or
 * --seconds), printing per-second and final statistics.  The control plane
 * runs in the main thread (vhu_dev_poll), the data plane in one thread that
 * busy-polls every queue pair while a front-end is connected.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "sigbus.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vhu-bench --socket PATH [--client] --mode rxonly|txonly|loopback\n"
		"                 [--pkt-len N] [--queues N] [--burst N] [--seconds N]\n"
		"  --socket PATH   vhost-user socket (listened on; with --client, connected to)\n"
		"  --client        connect to a front-end serving PATH, reconnect when it goes\n"
		"  --mode M        rxonly: drop guest frames; txonly: send frames to the guest;\n"
		"                  loopback: return guest frames\n"
		"  --pkt-len N     txonly frame length, 60..%d (default 64)\n"
		"  --queues N      queue pairs, 1..%d (default 1)\n"
		"  --burst N       frames per burst, 1..%d (default 32)\n"
		"  --seconds N     exit after N seconds (default: run until SIGINT/SIGTERM)\n",
		BENCH_MAX_FRAME, BENCH_MAX_PAIRS, BENCH_MAX_BURST);
}

struct totals {
	uint64_t rx_pkts, rx_bytes, tx_pkts, tx_bytes, drops;
	uint64_t rx_calls, tx_calls; /* calls that moved frames */
};

/* A call that moves frames ends in one notification decision, sent or
 * suppressed (not counted when the queue has no call fd at all): frames per
 * such call tell how bursty the data plane is.  Taken from the library's
 * counters: counting in the data-plane loop itself (two ways) moved
 * guest-rx/64/split by 2-8% against this (paired.sh --base). */
static uint64_t busy_calls(const struct vhu_vq *vq)
{
	struct vhu_vq_stats st;

	vhu_vq_stats(vq, &st);
	return st.calls + st.calls_suppressed;
}

static double per_call(uint64_t pkts, uint64_t calls)
{
	return calls ? (double)pkts / (double)calls : 0.0;
}

/* rx: frames from the guest (TX queues); tx: frames to the guest (RX queues). */
static void sum_stats(struct bench *b, struct totals *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned i = 0; i < b->queues; i++) {
		const struct vhu_vq *rxq = vhu_dev_vq(b->dev, (uint16_t)(2 * i));
		const struct vhu_vq *txq = vhu_dev_vq(b->dev, (uint16_t)(2 * i + 1));
		struct vhu_net_stats to_guest, from_guest;

		vhu_net_stats(rxq, &to_guest);
		vhu_net_stats(txq, &from_guest);
		t->rx_pkts += from_guest.packets;
		t->rx_bytes += from_guest.bytes;
		t->tx_pkts += to_guest.packets;
		t->tx_bytes += to_guest.bytes;
		t->rx_calls += busy_calls(txq);
		t->tx_calls += busy_calls(rxq);
		t->drops += to_guest.drop_no_buffers + to_guest.drop_too_big +
			    to_guest.drop_bad_header + from_guest.drop_too_big +
			    from_guest.drop_bad_header + from_guest.drop_ring_error +
			    to_guest.drop_ring_error;
	}
}

static void on_ready(struct vhu_dev *dev, void *opaque)
{
	struct bench *b = opaque;

	printf("vhu-bench: front-end ready (features 0x%" PRIx64 ")\n",
	       vhu_dev_features(dev));
	fflush(stdout);
	atomic_store_explicit(&b->ready, true, memory_order_release);
}

static void on_stopped(struct vhu_dev *dev, void *opaque)
{
	atomic_store_explicit(&((struct bench *)opaque)->ready, false,
			      memory_order_release);
}

static void on_disconnected(struct vhu_dev *dev, void *opaque)
{
	printf("vhu-bench: front-end disconnected; waiting for the next one\n");
	fflush(stdout);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_args(int argc, char **argv, struct bench *b, const char **path,
		      bool *client, long *seconds)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "client", no_argument, NULL, 'c' },
		{ "mode", required_argument, NULL, 'm' },
		{ "pkt-len", required_argument, NULL, 'l' },
		{ "queues", required_argument, NULL, 'q' },
		{ "burst", required_argument, NULL, 'b' },
		{ "seconds", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *mode = NULL;
	int c;

	b->pkt_len = 64;
	b->queues = 1;
	b->burst = 32;
	while ((c = getopt_long(argc, argv, "s:cm:l:q:b:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 's': *path = optarg; break;
		case 'c': *client = true; break;
		case 'm': mode = optarg; break;
		case 'l': b->pkt_len = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'q': b->queues = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'b': b->burst = (unsigned)strtoul(optarg, NULL, 0); break;
		case 't': *seconds = strtol(optarg, NULL, 0); break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	if (!*path || !mode)
		return -1;
	if (!strcmp(mode, "rxonly"))
		b->mode = MODE_RXONLY;
	else if (!strcmp(mode, "txonly"))
		b->mode = MODE_TXONLY;
	else if (!strcmp(mode, "loopback"))
		b->mode = MODE_LOOPBACK;
	else
		return -1;
	if (b->pkt_len < 60 || b->pkt_len > BENCH_MAX_FRAME || b->queues < 1 ||
	    b->queues > BENCH_MAX_PAIRS || b->burst < 1 || b->burst > BENCH_MAX_BURST)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	static struct bench b;
	const char *path = NULL;
	bool client = false;
	long seconds = 0;
	struct totals last, cur;
	pthread_t dp;
	int rc;

	if (parse_args(argc, argv, &b, &path, &client, &seconds)) {
		usage(stderr);
		return 2;
	}
	bench_build_frame(b.frame, b.pkt_len);
	static const struct vhu_dev_ops ops = {
		.sz = sizeof(ops),
		.device_ready = on_ready,
		.device_stopped = on_stopped,
		.disconnected = on_disconnected,
	};
	struct vhu_dev_opts o = {
		.sz = sizeof(o),
		.name = "vhu-bench",
		.device_features = (1ull << VHU_NET_F_MRG_RXBUF) |
				   (b.queues > 1 ? 1ull << VHU_NET_F_MQ : 0),
		.num_queues = (uint16_t)(2 * b.queues),
		.queue_pairs = true,
		.min_ready_queues = 2,
		.ops = &ops,
		.opaque = &b,
		.log_level = VHU_LOG_WARN,
		.guard = example_guard_install(),
	};
	if (!o.guard) {
		fprintf(stderr, "vhu-bench: cannot install the SIGBUS guard: %s\n",
			strerror(errno));
		return 1;
	}
	b.dev = vhu_dev_new(&o);
	if (!b.dev) {
		fprintf(stderr, "vhu-bench: cannot create the device: %s\n", strerror(errno));
		return 1;
	}
	rc = client ? vhu_dev_connect(b.dev, path) : vhu_dev_listen(b.dev, path);
	if (rc) {
		fprintf(stderr, "vhu-bench: %s %s: %s\n", client ? "connect" : "listen",
			path, strerror(-rc));
		vhu_dev_free(b.dev);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (pthread_create(&dp, NULL, bench_dataplane, &b)) {
		vhu_dev_free(b.dev);
		return 1;
	}
	static const char *const modes[] = { "rxonly", "txonly", "loopback" };
	printf("vhu-bench: %s on %s, %u queue pair(s), %s mode, %u-byte frames\n",
	       client ? "client" : "server", path, b.queues, modes[b.mode], b.pkt_len);
	fflush(stdout);

	double start = now_s(), next = start + 1;
	sum_stats(&b, &last);
	while (!stop && (seconds <= 0 || now_s() - start < (double)seconds)) {
		vhu_dev_poll(b.dev, 100);
		if (now_s() >= next) {
			sum_stats(&b, &cur);
			printf("vhu-bench: from-guest %" PRIu64 " pps %.1f Mbit/s "
			       "%.1f/call | to-guest %" PRIu64 " pps %.1f Mbit/s "
			       "%.1f/call | drops %" PRIu64 "\n",
			       cur.rx_pkts - last.rx_pkts,
			       (double)(cur.rx_bytes - last.rx_bytes) * 8 / 1e6,
			       per_call(cur.rx_pkts - last.rx_pkts, cur.rx_calls - last.rx_calls),
			       cur.tx_pkts - last.tx_pkts,
			       (double)(cur.tx_bytes - last.tx_bytes) * 8 / 1e6,
			       per_call(cur.tx_pkts - last.tx_pkts, cur.tx_calls - last.tx_calls),
			       cur.drops - last.drops);
			fflush(stdout);
			last = cur;
			next += 1;
		}
	}
	atomic_store(&b.quit, true);
	pthread_join(dp, NULL);
	sum_stats(&b, &cur);
	printf("vhu-bench: total from-guest %" PRIu64 " packets %" PRIu64
	       " bytes, to-guest %" PRIu64 " packets %" PRIu64 " bytes, drops %" PRIu64
	       ", %.1f s\n", cur.rx_pkts, cur.rx_bytes, cur.tx_pkts, cur.tx_bytes,
	       cur.drops, now_s() - start);
	vhu_dev_free(b.dev);
	example_guard_remove(o.guard);
	return 0;
}
