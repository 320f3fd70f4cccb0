/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * l2fwd-fe: the guest side of the vhu-l2fwd tests, without a guest.
 *
 *   l2fwd-fe --socket PATH [--listen] --iface IF [--pairs N] [--packed]
 *            --case flow|oversize|norxbuf|reconnect|rarp
 *
 * It plays a guest through the in-tree front-end (vhu_fe: memory, rings,
 * QEMU's handshake) on vhu-l2fwd's socket (--listen: it serves the socket
 * and vhu-l2fwd runs with --client), and the far end of the wire through
 * an AF_PACKET socket on IF (run it in the namespace holding IF, the peer
 * of vhu-l2fwd's veth).  Each check prints "ok ..." or "FAIL ..."; the
 * exit status is 0 when all passed.  Test frames carry the ethertype
 * 0x88b5 (local experimental) and a magic, so other traffic is ignored.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fe.h"
#include "l2fwd-fe.h"

static const uint8_t fe_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static int failures;

static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s ", ok ? "ok" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	failures += !ok;
}

static uint64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the wire end (AF_PACKET) -------------------------------------------- */

static int wire_open(struct drv *d, const char *iface)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET,
				   .sll_protocol = htons(ETH_P_ALL) };
	struct ifreq ifr = { 0 };

	d->ifindex = (int)if_nametoindex(iface);
	d->pk = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (!d->ifindex || d->pk < 0)
		return -1;
	sll.sll_ifindex = d->ifindex;
	/* bursts of a few hundred frames must not overflow the socket */
	int rcvbuf = 16 << 20;

	setsockopt(d->pk, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", iface);
	if (bind(d->pk, (struct sockaddr *)&sll, sizeof(sll)) ||
	    ioctl(d->pk, SIOCGIFHWADDR, &ifr))
		return -1;
	memcpy(d->wire_mac, ifr.ifr_hwaddr.sa_data, 6);
	return 0;
}

void wire_send(struct drv *d, const uint8_t *f, uint32_t len)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET,
				   .sll_ifindex = d->ifindex, .sll_halen = 6 };

	memcpy(sll.sll_addr, f, 6);
	if (sendto(d->pk, f, len, 0, (struct sockaddr *)&sll, sizeof(sll)) != (ssize_t)len)
		perror("l2fwd-fe: wire send");
}

/* One frame that arrived on the wire (not one we sent), or 0 after @ms. */
int wire_recv(struct drv *d, uint8_t *buf, uint32_t cap, int ms)
{
	uint64_t end = ms_now() + (uint64_t)ms;

	for (;;) {
		struct pollfd p = { .fd = d->pk, .events = POLLIN };
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		int64_t left = (int64_t)(end - ms_now());
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return 0;
		n = recvfrom(d->pk, buf, cap, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		if (n > 0 && from.sll_pkttype != PACKET_OUTGOING)
			return (int)n;
	}
}

/* ---- the guest end (vhu_fe rings) ------------------------------------------ */

static int guest_up(struct drv *d, bool again)
{
	struct vhu_fe_handshake_opts h = {
		.sz = sizeof(h), .num_queues = (uint16_t)(2 * d->pairs),
		.ring_size = RING, .packed = d->packed,
		.mem_regions = 2, .mem_region_size = 32ull << 20,
	};
	int rc;

	if (d->listen)
		rc = again ? vhu_fe_accept(d->fe, 10000) : 0;
	else
		rc = again ? vhu_fe_reconnect(d->fe, 10000) : 0;
	if (!rc)
		rc = vhu_fe_handshake(d->fe, &h, NULL);
	/* a request with a reply: everything before it was handled; then
	 * a moment for vhu-l2fwd's data plane to see the queues */
	uint64_t features;

	if (!rc)
		rc = vhu_fe_get_features(d->fe, &features);
	if (rc)
		return rc;
	usleep(50 * 1000);
	for (int p = 0; p < d->pairs; p++) {
		d->ntxfree[p] = 0;
		for (int i = 0; i < RING; i++) {
			if (!again && vhu_fe_mem_alloc(d->fe, TXBUF, 64, &d->txbuf[p][i]))
				return -ENOMEM;
			d->txfree[p][d->ntxfree[p]++] = (uint16_t)i;
		}
		for (int i = 0; i < RING && !again; i++)
			if (vhu_fe_mem_alloc(d->fe, RXBUF, 64, &d->rxbuf[p][i]))
				return -ENOMEM;
		d->rx_posted[p] = false;
	}
	return 0;
}

/* Post every RX buffer of every pair. */
void guest_post_rx(struct drv *d)
{
	for (int p = 0; p < d->pairs; p++) {
		struct vhu_fe_ring *r = vhu_fe_queue_ring(d->fe, (uint16_t)(2 * p));

		if (d->rx_posted[p])
			continue;
		for (int i = 0; i < RING; i++) {
			struct vhu_fe_buf b = { d->rxbuf[p][i], RXBUF };

			vhu_fe_ring_add(r, &b, 0, 1, (void *)(uintptr_t)i);
		}
		vhu_fe_queue_notify(d->fe, (uint16_t)(2 * p));
		d->rx_posted[p] = true;
	}
}

static void reap_tx(struct drv *d, int p)
{
	struct vhu_fe_ring *r = vhu_fe_queue_ring(d->fe, (uint16_t)(2 * p + 1));
	uint16_t id;
	uint32_t len;
	void *tok;

	while (vhu_fe_ring_get_used(r, &id, &len, &tok) == 1)
		d->txfree[p][d->ntxfree[p]++] = (uint16_t)(uintptr_t)tok;
}

/* Send @f on TX queue pair @p with the virtio-net header @h (12 bytes).
 * -ETIMEDOUT if no buffer came back within a second. */
int guest_send(struct drv *d, int p, const struct virtio_net_hdr_v1 *h,
	       const uint8_t *f, uint32_t len)
{
	uint64_t end = ms_now() + 1000;
	struct vhu_fe_buf b;
	uint16_t i;

	reap_tx(d, p);
	while (!d->ntxfree[p]) {
		if (ms_now() > end)
			return -ETIMEDOUT;
		usleep(500);
		reap_tx(d, p);
	}
	i = d->txfree[p][--d->ntxfree[p]];
	b = (struct vhu_fe_buf){ d->txbuf[p][i], (uint32_t)sizeof(*h) + len };
	vhu_fe_mem_write(d->fe, b.gpa, h, sizeof(*h));
	vhu_fe_mem_write(d->fe, b.gpa + sizeof(*h), f, len);
	vhu_fe_ring_add(vhu_fe_queue_ring(d->fe, (uint16_t)(2 * p + 1)), &b, 1, 0,
			(void *)(uintptr_t)i);
	return vhu_fe_queue_notify(d->fe, (uint16_t)(2 * p + 1));
}

/* One frame the guest received, from any pair, within @ms: its length
 * (the frame without header goes to @buf, its pair to *@pair), 0 if none.
 * The buffer is posted again. */
int guest_recv(struct drv *d, uint8_t *buf, uint32_t cap, int *pair, int ms)
{
	uint64_t end = ms_now() + (uint64_t)ms;

	do {
		for (int p = 0; p < d->pairs; p++) {
			struct vhu_fe_ring *r = vhu_fe_queue_ring(d->fe, (uint16_t)(2 * p));
			struct virtio_net_hdr_v1 h;
			uint16_t id;
			uint32_t len;
			void *tok;
			int i;

			if (vhu_fe_ring_get_used(r, &id, &len, &tok) != 1)
				continue;
			i = (int)(uintptr_t)tok;
			if (len < sizeof(h) || len - sizeof(h) > cap)
				len = sizeof(h);
			vhu_fe_mem_read(d->fe, d->rxbuf[p][i], &h, sizeof(h));
			vhu_fe_mem_read(d->fe, d->rxbuf[p][i] + sizeof(h), buf,
					len - sizeof(h));
			if (h.num_buffers != 1)
				check(false, "guest rx: num_buffers %u, want 1", h.num_buffers);
			struct vhu_fe_buf b = { d->rxbuf[p][i], RXBUF };
			vhu_fe_ring_add(r, &b, 0, 1, tok);
			vhu_fe_queue_notify(d->fe, (uint16_t)(2 * p));
			*pair = p;
			return (int)(len - sizeof(h));
		}
		usleep(200);
	} while (ms_now() < end);
	return 0;
}

/* ---- main ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "listen", no_argument, NULL, 'l' },
		{ "iface", required_argument, NULL, 'i' },
		{ "pairs", required_argument, NULL, 'p' },
		{ "packed", no_argument, NULL, 'P' },
		{ "case", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	static struct drv d = { .pairs = 1 };
	const char *sock = NULL, *iface = NULL, *name = NULL;
	int c;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's': sock = optarg; break;
		case 'l': d.listen = true; break;
		case 'i': iface = optarg; break;
		case 'p': d.pairs = atoi(optarg); break;
		case 'P': d.packed = true; break;
		case 'c': name = optarg; break;
		default: return 2;
		}
	}
	if (!sock || !iface || !name || d.pairs < 1 || d.pairs > MAX_PAIRS) {
		fprintf(stderr, "usage: l2fwd-fe --socket PATH [--listen] --iface IF "
			"[--pairs N] [--packed] --case NAME\n");
		return 2;
	}
	memcpy(d.guest_mac, fe_mac, 6);
	if (wire_open(&d, iface)) {
		perror("l2fwd-fe: AF_PACKET socket");
		return 1;
	}
	if (d.listen) {
		d.fe = vhu_fe_listen(sock);
		if (d.fe && vhu_fe_accept(d.fe, 10000)) {
			fprintf(stderr, "l2fwd-fe: vhu-l2fwd did not connect\n");
			return 1;
		}
	} else {
		d.fe = vhu_fe_connect(sock, 10000);
	}
	if (!d.fe) {
		perror("l2fwd-fe: front-end");
		return 1;
	}
	d.up = guest_up;
	c = guest_up(&d, false);
	check(c == 0, "handshake (%d pair(s)%s): %s", d.pairs,
	      d.packed ? ", packed" : "", strerror(-c));
	if (c == 0 && run_case(&d, name) < 0)
		check(false, "unknown case %s", name);
	vhu_fe_free(d.fe);
	printf("%s: %d failure(s)\n", name, failures);
	return failures ? 1 : 0;
}

void case_check(bool ok, const char *what, long got, long want)
{
	check(ok, "%s: %ld/%ld", what, got, want);
}
