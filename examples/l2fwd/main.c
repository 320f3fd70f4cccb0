/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhu-l2fwd - bridge one vhost-user net port and one NIC through AF_XDP.
 *
 *   vhu-l2fwd --socket PATH [--client] --iface IFNAME [--queue-id N[,N...]]
 *             [--xdp-mode skb|native] [--hugepages auto|on|off]
 *             [--stats SECONDS] [--help]
 *
 * Threads: the control thread runs a libev loop (the vhost-user socket
 * through the vhu_ev glue, SIGINT/SIGTERM, the stats timer); the data plane
 * (fwd.c) runs in its own thread, busy-polls while frames flow and sleeps
 * in poll() on the kick eventfds and XSK fds when idle (see fwd.c and
 * docs/l2fwd.md).  Device callbacks only update l2_shared and wake the
 * data plane.
 *
 * Offered to the guest: MRG_RXBUF, MQ (up to 8 pairs, spread over the
 * --queue-id sockets) and CSUM (partial checksums are completed in
 * software before transmission).  Not offered: HOST_TSO/UFO (AF_XDP sends
 * no frame above the MTU) and GUEST_* offloads (frames from AF_XDP carry
 * no checksum state to report truthfully).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>
#include <linux/if_xdp.h>

#include <vhu/ev.h>
#include <vhu/vhu.h>

#include "device.h"
#include "l2fwd.h"
#include "stats.h"

static struct l2_shared sh = { .wake_fd = -1 };

/* ---- device callbacks (control thread) ---------------------------------- */

static void update_queue(struct vhu_dev *dev, uint16_t q)
{
	struct vhu_queue_info qi;
	uint32_t bit = 1u << q;

	if (q >= 2 * L2_MAX_PAIRS || vhu_dev_queue_info(dev, q, &qi))
		return;
	if (qi.started && qi.enabled && !qi.broken)
		atomic_fetch_or(&sh.qmask, bit);
	else
		atomic_fetch_and(&sh.qmask, ~bit);
}

static void on_queue(struct vhu_dev *dev, void *opaque, uint16_t q,
		     enum vhu_queue_event ev)
{
	static const char *const names[] = { "started", "stopped", "enabled",
					     "disabled", "broken", "kicked" };

	if (ev != VHU_QUEUE_KICKED && (unsigned)ev < 6)
		printf("vhu-l2fwd: queue %u %s\n", q, names[ev]);
	if (ev == VHU_QUEUE_BROKEN)
		fprintf(stderr, "vhu-l2fwd: guest queue %u broke (see the log); "
			"it is skipped until the front-end resets it\n", q);
	if (ev != VHU_QUEUE_KICKED)
		update_queue(dev, q);
	/* a ring set up again starts with the driver's defaults (kicks on):
	 * a new generation makes the data plane set its kick mode again */
	if (ev == VHU_QUEUE_STARTED || ev == VHU_QUEUE_STOPPED)
		atomic_fetch_add(&sh.gen, 1);
	l2_fwd_wake(&sh);
}

static void on_ready(struct vhu_dev *dev, void *opaque)
{
	unsigned pairs = 0;

	for (uint16_t q = 0; q < 2 * L2_MAX_PAIRS; q++)
		update_queue(dev, q);
	for (unsigned p = 0; p < L2_MAX_PAIRS; p++)
		pairs += (atomic_load(&sh.qmask) >> (2 * p) & 3) == 3;
	atomic_fetch_add(&sh.gen, 1);
	/* more pairs may follow (queue N enabled lines) */
	printf("vhu-l2fwd: guest ready: %u queue pair(s) up so far, features 0x%llx\n",
	       pairs, (unsigned long long)vhu_dev_features(dev));
	l2_fwd_wake(&sh);
}

static void on_stopped(struct vhu_dev *dev, void *opaque)
{
	atomic_store(&sh.qmask, 0);
	atomic_fetch_add(&sh.gen, 1);
	printf("vhu-l2fwd: guest stopped\n");
	l2_fwd_wake(&sh);
}

static void on_connected(struct vhu_dev *dev, void *opaque)
{
	printf("vhu-l2fwd: front-end connected\n");
}

static void on_disconnected(struct vhu_dev *dev, void *opaque)
{
	printf("vhu-l2fwd: front-end disconnected\n");
}

static void on_rarp(struct vhu_dev *dev, void *opaque, const uint8_t mac[6])
{
	if (atomic_load(&sh.rarp_pending))
		return; /* one announcement in flight is enough */
	memcpy(sh.rarp_mac, mac, 6);
	atomic_store(&sh.rarp_pending, true);
	printf("vhu-l2fwd: RARP for %02x:%02x:%02x:%02x:%02x:%02x\n", mac[0],
	       mac[1], mac[2], mac[3], mac[4], mac[5]);
	l2_fwd_wake(&sh);
}

static void vhu_log(void *opaque, enum vhu_log_level level,
		    const char *dev_name, const char *msg)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };

	fprintf(stderr, "vhu-l2fwd: vhu %s: %s: %s\n", dev_name,
		names[level & 3], msg);
}

static const struct vhu_dev_ops ops = {
	.sz = sizeof(ops),
	.connected = on_connected,
	.disconnected = on_disconnected,
	.device_ready = on_ready,
	.device_stopped = on_stopped,
	.queue_event = on_queue,
	.send_rarp = on_rarp,
};

/* ---- libev watchers ------------------------------------------------------ */

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	printf("vhu-l2fwd: %s, exiting\n", strsignal(w->signum));
	ev_break(loop, EVBREAK_ALL);
}

static void on_stats(struct ev_loop *loop, ev_timer *w, int revents)
{
	l2_stats_print(&sh, "stats");
}

/* The NIC's MTU; 1500 when it cannot be read. */
static unsigned iface_mtu(const char *iface)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	unsigned mtu = 1500;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", iface);
	if (fd >= 0 && ioctl(fd, SIOCGIFMTU, &ifr) == 0)
		mtu = (unsigned)ifr.ifr_mtu;
	if (fd >= 0)
		close(fd);
	return mtu;
}

/* Sockets on every --queue-id; a warning for NIC queues left unserved
 * (libxdp's program passes their frames to the kernel: not forwarded, not
 * lost). */
static int open_sockets(const struct l2_opts *o, struct l2_mem *mem)
{
	char err[256], path[300];
	unsigned nrx = 0;

	for (unsigned i = 0; i < o->nqid; i++) {
		int rc, tries = 0;

		/* The NIC's lock is ours (claim.c), so a busy queue is held by
		 * an instance that just died: the kernel frees an AF_XDP socket
		 * after an RCU grace period and releases its queue later still,
		 * in a work item under rtnl_lock (measured: 11 of 30 restarts
		 * right after a SIGKILL hit it).  Give it 5 s. */
		while ((rc = l2_xsk_open(&sh.xsk[i], o->iface, o->qids[i],
					 mem->base + (uint64_t)i * L2_UMEM_SIZE,
					 o->native, err, sizeof(err))) == -EBUSY &&
		       ++tries < 100)
			usleep(50000);
		if (rc) {
			fprintf(stderr, "vhu-l2fwd: %s\n", err);
			return rc;
		}
		sh.nxsk++;
	}
	for (;; nrx++) {
		snprintf(path, sizeof(path), "/sys/class/net/%s/queues/rx-%u",
			 o->iface, nrx);
		if (access(path, F_OK))
			break;
	}
	if (nrx > o->nqid)
		fprintf(stderr, "vhu-l2fwd: warning: %s has %u RX queues and %u are "
			"served: frames on the others go to the kernel stack "
			"(add them with --queue-id, or ethtool -L %s combined %u)\n",
			o->iface, nrx, o->nqid, o->iface, o->nqid);
	return 0;
}

int main(int argc, char **argv)
{
	struct l2_opts o;
	struct l2_mem mem = { 0 };
	struct ev_loop *loop = EV_DEFAULT;
	struct example_dev x;
	struct vhu_dev *dev;
	ev_signal sigint, sigterm;
	ev_timer stats;
	int rc, status = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	rc = l2_parse_opts(argc, argv, &o);
	if (rc)
		return rc == 1 ? 0 : 2;
	if (!if_nametoindex(o.iface)) {
		fprintf(stderr, "vhu-l2fwd: no interface '%s' (%s)\n", o.iface,
			strerror(errno));
		return 1;
	}
	/* From here on SIGINT/SIGTERM wait for the loop: a signal during
	 * the set-up still ends in a clean exit that detaches XDP. */
	ev_signal_init(&sigint, on_signal, SIGINT);
	ev_signal_init(&sigterm, on_signal, SIGTERM);
	ev_signal_start(loop, &sigint);
	ev_signal_start(loop, &sigterm);
	signal(SIGPIPE, SIG_IGN);
	sh.max_frame = iface_mtu(o.iface) + 14 + 4;
	if (sh.max_frame > L2_FRAME_SIZE)
		sh.max_frame = L2_FRAME_SIZE;
	l2_xsk_libxdp_quiet();
	{
		char err[256];

		if (l2_nic_claim(o.iface, err, sizeof(err))) {
			fprintf(stderr, "vhu-l2fwd: %s\n", err);
			return 1;
		}
	}
	if (l2_mem_alloc(&mem, (uint64_t)o.nqid * L2_UMEM_SIZE, o.huge)) {
		fprintf(stderr, "vhu-l2fwd: cannot allocate the UMEM\n");
		l2_nic_release();
		return 1;
	}
	if (open_sockets(&o, &mem))
		goto out_sockets;

	struct vhu_dev_opts d = {
		.sz = sizeof(d),
		.name = "l2fwd",
		/* GUEST_ANNOUNCE: after a live migration the guest announces
		 * itself (gratuitous ARPs, forwarded like any frame); a
		 * front-end that cannot ask it to sends SEND_RARP instead. */
		.device_features = (1ull << VHU_NET_F_MRG_RXBUF) |
				   (1ull << VHU_NET_F_MQ) | (1ull << VHU_NET_F_CSUM) |
				   (1ull << VHU_NET_F_GUEST_ANNOUNCE),
		.num_queues = 2 * L2_MAX_PAIRS,
		.queue_pairs = true,
		.min_ready_queues = 2,
		.ops = &ops,
		.log = vhu_log,
		.log_level = VHU_LOG_WARN,
	};
	if (example_dev_new(&x, loop, &d, "vhu-l2fwd"))
		goto out_sockets;
	dev = x.dev;
	sh.dev = dev;
	for (uint16_t p = 0; p < L2_MAX_PAIRS; p++) {
		sh.rxq[p] = vhu_dev_vq(dev, (uint16_t)(2 * p));
		sh.txq[p] = vhu_dev_vq(dev, (uint16_t)(2 * p + 1));
	}
	rc = l2_fwd_start(&sh);
	if (rc) {
		fprintf(stderr, "vhu-l2fwd: data-plane thread: %s\n", strerror(-rc));
		goto out_dev;
	}
	if (example_dev_attach(&x, o.socket, o.client, "vhu-l2fwd"))
		goto out_fwd;
	printf("vhu-l2fwd: %s %s, %s queue(s)", o.client ? "connecting to" : "listening on",
	       o.socket, o.iface);
	for (unsigned i = 0; i < o.nqid; i++)
		printf("%s%u", i ? "," : " ", o.qids[i]);
	printf(" in %s mode (%s), max frame %u\n", o.native ? "native" : "skb",
	       sh.xsk[0].zerocopy ? "zero-copy" : "copy", sh.max_frame);

	if (o.stats_s) {
		ev_timer_init(&stats, on_stats, o.stats_s, o.stats_s);
		ev_timer_start(loop, &stats);
	}
	l2_stats_init(&sh);
	ev_run(loop, 0);
	status = 0;

out_fwd:
	l2_fwd_stop(&sh);
out_dev:
	if (status == 0) {
		l2_stats_print(&sh, "final");
		l2_stats_pairs(&sh);
	}
	example_dev_free(&x);
out_sockets:
	for (unsigned i = 0; i < sh.nxsk; i++)
		l2_xsk_close(&sh.xsk[i]);
	l2_mem_free(&mem);
	l2_nic_release();
	if (status == 0)
		printf("vhu-l2fwd: XDP program detached, bye\n");
	return status;
}
