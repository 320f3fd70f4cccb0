/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * l2fwd-fe --case bench: frames per second through vhu-l2fwd, each way,
 * for 64-byte and 1514-byte frames, 2 seconds each.  The guest end runs on
 * this thread; the wire end (AF_PACKET) on a second one.  It reports what
 * arrived; it fails only when nothing did.  Informational: on a small
 * machine the AF_PACKET end, not vhu-l2fwd, is often the bottleneck.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "l2fwd-fe.h"

#define SECONDS 2

struct wire_ctx {
	struct drv *d;
	uint32_t len;
	atomic_bool stop;
	unsigned long count;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void mkframe(uint8_t *f, const uint8_t *dst, const uint8_t *src, uint32_t len)
{
	memset(f, 0x5a, len);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x88;
	f[13] = 0xb6; /* not the functional cases' 0x88b5 */
}

static void *wire_rx(void *arg)
{
	struct wire_ctx *c = arg;
	uint8_t g[2048];
	int n;

	while (!atomic_load(&c->stop))
		if ((n = wire_recv(c->d, g, sizeof(g), 100)) > 0 && g[13] == 0xb6)
			c->count++;
	return NULL;
}

static void *wire_tx(void *arg)
{
	struct wire_ctx *c = arg;
	uint8_t f[2048];

	mkframe(f, c->d->guest_mac, c->d->wire_mac, c->len);
	while (!atomic_load(&c->stop)) {
		wire_send(c->d, f, c->len);
		c->count++;
	}
	return NULL;
}

static void guest_to_wire(struct drv *d, uint32_t len)
{
	const struct virtio_net_hdr_v1 h = { 0 };
	struct wire_ctx c = { .d = d, .len = len };
	uint8_t f[2048];
	unsigned long sent = 0;
	pthread_t t;
	double t0, dt;

	mkframe(f, d->wire_mac, d->guest_mac, len);
	pthread_create(&t, NULL, wire_rx, &c);
	t0 = now();
	while ((dt = now() - t0) < SECONDS)
		for (int p = 0; p < d->pairs; p++)
			sent += guest_send(d, p, &h, f, len) == 0;
	usleep(300 * 1000);
	atomic_store(&c.stop, true);
	pthread_join(t, NULL);
	printf("bench guest->wire %4u B: sent %lu, wire got %lu: %.0f pps, %.1f Mbit/s\n",
	       len, sent, c.count, (double)c.count / dt,
	       (double)c.count * len * 8 / dt / 1e6);
	case_check(c.count > 0, "bench guest->wire frames arrived", (long)c.count, (long)sent);
}

static void wire_to_guest(struct drv *d, uint32_t len)
{
	struct wire_ctx c = { .d = d, .len = len };
	uint8_t g[2048];
	unsigned long got = 0;
	pthread_t t;
	double t0, dt;
	int p, n;

	pthread_create(&t, NULL, wire_tx, &c);
	t0 = now();
	while ((dt = now() - t0) < SECONDS)
		if ((n = guest_recv(d, g, sizeof(g), &p, 10)) > 0 && g[13] == 0xb6)
			got++;
	atomic_store(&c.stop, true);
	pthread_join(t, NULL);
	while ((n = guest_recv(d, g, sizeof(g), &p, 200)) > 0)
		got += g[13] == 0xb6;
	printf("bench wire->guest %4u B: wire sent %lu, guest got %lu: %.0f pps, %.1f Mbit/s\n",
	       len, c.count, got, (double)got / dt, (double)got * len * 8 / dt / 1e6);
	case_check(got > 0, "bench wire->guest frames arrived", (long)got, (long)c.count);
}

void bench(struct drv *d)
{
	guest_post_rx(d);
	guest_to_wire(d, 64);
	guest_to_wire(d, 1514);
	wire_to_guest(d, 64);
	wire_to_guest(d, 1514);
}
