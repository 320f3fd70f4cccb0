/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The cases of l2fwd-fe (see l2fwd-fe.c):
 *   flow      frames both ways on every pair, contents compared; partial
 *             UDP and TCP checksums (NEEDS_CSUM) completed by vhu-l2fwd
 *   oversize  frames above the MTU and above a UMEM frame, a runt and one
 *             with a checksum offset beyond it are dropped; the next passes
 *   norxbuf   the guest posts no RX buffers: the wire's frames are dropped
 *             (vhu-l2fwd counts them), TX keeps working, then RX works
 *             once buffers are posted
 *   reconnect the front-end goes away in the middle of traffic, three
 *             times, and traffic flows again after each handshake
 *   rarp      SEND_RARP makes vhu-l2fwd announce the MAC on the wire
 *   bench     frames per second each way (bench.c)
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "l2fwd-fe.h"

#define ETYPE 0x88b5
#define MAGIC 0x56485531u /* "VHU1" */

static uint32_t next_seq = 1;

static uint32_t mk(uint8_t *f, const uint8_t dst[6], const uint8_t src[6],
		   uint32_t seq, uint32_t len)
{
	uint32_t be;

	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = ETYPE >> 8;
	f[13] = ETYPE & 0xff;
	be = htonl(MAGIC);
	memcpy(f + 14, &be, 4);
	be = htonl(seq);
	memcpy(f + 18, &be, 4);
	for (uint32_t i = 22; i < len; i++)
		f[i] = (uint8_t)(seq * 7 + i);
	return len;
}

/* The sequence number of one of our frames, 0 for anything else. */
static uint32_t ours(const uint8_t *f, int len)
{
	uint32_t m, s;

	if (len < 22 || f[12] != ETYPE >> 8 || f[13] != (ETYPE & 0xff))
		return 0;
	memcpy(&m, f + 14, 4);
	memcpy(&s, f + 18, 4);
	return ntohl(m) == MAGIC ? ntohl(s) : 0;
}

static uint32_t frame_len(uint32_t seq)
{
	return 60 + (seq * 37) % (1514 - 60 + 1);
}

/* @n frames guest -> wire, spread over the pairs; how many arrived intact. */
static long guest_to_wire(struct drv *d, unsigned n)
{
	static uint8_t f[2048], g[2048];
	const struct virtio_net_hdr_v1 h = { 0 };
	uint32_t first = next_seq;
	long good = 0;
	int len;

	for (unsigned i = 0; i < n; i++) {
		uint32_t seq = next_seq++;

		mk(f, d->wire_mac, d->guest_mac, seq, frame_len(seq));
		if (guest_send(d, (int)(i % (unsigned)d->pairs), &h, f, frame_len(seq)))
			break;
	}
	while (good < (long)n && (len = wire_recv(d, g, sizeof(g), 2000)) > 0) {
		uint32_t seq = ours(g, len);

		if (seq < first || seq >= next_seq)
			continue;
		mk(f, d->wire_mac, d->guest_mac, seq, frame_len(seq));
		/* the wire pads short frames; compare what was sent */
		good += len >= (int)frame_len(seq) && !memcmp(f, g, frame_len(seq));
	}
	return good;
}

/* @n frames wire -> guest from 16 source MACs; intact ones, and how many
 * pairs they came on (in *@spread). */
static long wire_to_guest(struct drv *d, unsigned n, int *spread)
{
	static uint8_t f[2048], g[2048];
	uint32_t first = next_seq;
	unsigned per_pair[MAX_PAIRS] = { 0 };
	long good = 0;
	int len, p;

	for (unsigned i = 0; i < n; i++) {
		uint32_t seq = next_seq++;
		uint8_t src[6] = { 0x02, 0, 0, 0, 0, (uint8_t)(i % 16) };

		wire_send(d, f, mk(f, d->guest_mac, src, seq, frame_len(seq)));
		/* the guest ring holds RING buffers: reap as we go */
		while ((i + 1) % 64 == 0 && good < (long)(i + 1) &&
		       (len = guest_recv(d, g, sizeof(g), &p, 1000)) > 0) {
			uint32_t s = ours(g, len);

			if (s < first || s >= next_seq)
				continue;
			memcpy(src + 5, g + 11, 1);
			mk(f, d->guest_mac, src, s, frame_len(s));
			good += len == (int)frame_len(s) && !memcmp(f, g, (size_t)len);
			per_pair[p]++;
		}
	}
	while (good < (long)n && (len = guest_recv(d, g, sizeof(g), &p, 2000)) > 0) {
		uint32_t s = ours(g, len);
		uint8_t src[6] = { 0x02, 0, 0, 0, 0, g[11] };

		if (s < first || s >= next_seq)
			continue;
		mk(f, d->guest_mac, src, s, frame_len(s));
		good += len == (int)frame_len(s) && !memcmp(f, g, (size_t)len);
		per_pair[p]++;
	}
	*spread = 0;
	for (int i = 0; i < d->pairs; i++)
		*spread += per_pair[i] > 0;
	return good;
}

static int both_ways(struct drv *d, const char *tag, unsigned n)
{
	char what[64];
	long got;
	int spread;

	snprintf(what, sizeof(what), "%s guest->wire", tag);
	got = guest_to_wire(d, n);
	case_check(got == (long)n, what, got, n);
	snprintf(what, sizeof(what), "%s wire->guest", tag);
	got = wire_to_guest(d, n, &spread);
	case_check(got == (long)n, what, got, n);
	if (d->pairs > 1) {
		snprintf(what, sizeof(what), "%s guest queue pairs used", tag);
		case_check(spread == d->pairs, what, spread, d->pairs);
	}
	return 0;
}

/* Ones' complement sum, big-endian words. */
static uint32_t sum16(const uint8_t *p, uint32_t len, uint32_t s)
{
	for (; len >= 2; p += 2, len -= 2)
		s += (uint32_t)p[0] << 8 | p[1];
	if (len)
		s += (uint32_t)p[0] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return s;
}

/* An IPv4 UDP (17) or TCP (6) frame whose L4 checksum field holds the
 * pseudo-header sum, as a guest with CSUM offload leaves it. */
static uint32_t mk_l4(struct drv *d, uint8_t *f, uint8_t proto, uint32_t plen,
		      struct virtio_net_hdr_v1 *h)
{
	uint32_t l4len = (proto == 17 ? 8 : 20) + plen, tot = 20 + l4len, s;
	uint8_t *ip = f + 14, *l4 = ip + 20, ph[12];
	uint8_t csum_off = proto == 17 ? 6 : 16;

	memset(f, 0, 14 + tot);
	memcpy(f, d->wire_mac, 6);
	memcpy(f + 6, d->guest_mac, 6);
	f[12] = 0x08;
	ip[0] = 0x45;
	ip[2] = (uint8_t)(tot >> 8);
	ip[3] = (uint8_t)tot;
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, (uint8_t[]){ 10, 99, 0, 1, 10, 99, 0, 2 }, 8);
	s = ~sum16(ip, 20, 0) & 0xffff;
	ip[10] = (uint8_t)(s >> 8);
	ip[11] = (uint8_t)s;
	l4[0] = 0x30; l4[1] = 0x39; l4[2] = 0x04; l4[3] = 0xd2; /* ports */
	if (proto == 17) {
		l4[4] = (uint8_t)(l4len >> 8);
		l4[5] = (uint8_t)l4len;
	} else {
		l4[12] = 0x50; /* data offset 5 */
		l4[13] = 0x18; /* PSH ACK */
	}
	for (uint32_t i = 0; i < plen; i++)
		l4[l4len - plen + i] = (uint8_t)(i * 3 + proto);
	memcpy(ph, ip + 12, 8);
	ph[8] = 0;
	ph[9] = proto;
	ph[10] = (uint8_t)(l4len >> 8);
	ph[11] = (uint8_t)l4len;
	s = sum16(ph, 12, 0);
	l4[csum_off] = (uint8_t)(s >> 8);
	l4[csum_off + 1] = (uint8_t)s;
	*h = (struct virtio_net_hdr_v1){ .flags = 1 /* NEEDS_CSUM */, .csum_start = 34,
				.csum_offset = csum_off };
	return 14 + tot;
}

static void csum_case(struct drv *d, uint8_t proto)
{
	static uint8_t f[2048], g[2048];
	struct virtio_net_hdr_v1 h;
	uint32_t len = mk_l4(d, f, proto, 999, &h);
	bool seen = false, valid = false;
	int n;

	guest_send(d, 0, &h, f, len);
	while (!seen && (n = wire_recv(d, g, sizeof(g), 2000)) > 0) {
		uint8_t ph[12];

		if (n < (int)len || memcmp(g, f, 34) || g[23] != proto)
			continue;
		seen = true;
		memcpy(ph, g + 26, 8);
		ph[8] = 0;
		ph[9] = proto;
		ph[10] = (uint8_t)((len - 34) >> 8);
		ph[11] = (uint8_t)(len - 34);
		valid = sum16(g + 34, len - 34, sum16(ph, 12, 0)) == 0xffff &&
			!memcmp(g + 34 + (proto == 17 ? 8 : 20), f + 34 + (proto == 17 ? 8 : 20),
				len - 34 - (proto == 17 ? 8 : 20));
	}
	case_check(seen && valid, proto == 17 ? "partial UDP checksum completed"
					      : "partial TCP checksum completed",
		   seen + valid, 2);
}

static void oversize(struct drv *d)
{
	static uint8_t f[6000], g[6000];
	const struct virtio_net_hdr_v1 h = { 0 };
	uint32_t s1 = next_seq++, s2 = next_seq++, s4 = next_seq++, s3 = next_seq++;
	int n, seen[4] = { 0 };

	guest_send(d, 0, &h, f, mk(f, d->wire_mac, d->guest_mac, s1, 1600));
	guest_send(d, 0, &h, f, mk(f, d->wire_mac, d->guest_mac, s2, 5000));
	guest_send(d, 0, &h, f, 10); /* a runt: dropped too */
	/* a checksum field beyond the frame: dropped (vhu or vhu-l2fwd) */
	const struct virtio_net_hdr_v1 bad = { .flags = 1, .csum_start = 90, .csum_offset = 20 };
	guest_send(d, 0, &bad, f, mk(f, d->wire_mac, d->guest_mac, s4, 100));
	guest_send(d, 0, &h, f, mk(f, d->wire_mac, d->guest_mac, s3, 1514));
	while ((n = wire_recv(d, g, sizeof(g), 1000)) > 0) {
		uint32_t s = ours(g, n);

		if (s >= s1 && s <= s3)
			seen[s - s1]++;
	}
	case_check(!seen[0], "1600-byte frame (above the MTU) not sent", seen[0], 0);
	case_check(!seen[1], "5000-byte frame (above a UMEM frame) not sent", seen[1], 0);
	case_check(!seen[2], "frame with a bad checksum offset not sent", seen[2], 0);
	case_check(seen[3] == 1, "1514-byte frame after them sent", seen[3], 1);
	both_ways(d, "after oversize", 50);
}

static void norxbuf(struct drv *d)
{
	static uint8_t f[2048], g[2048];
	int p, got = 0;

	for (int i = 0; i < 100; i++)
		wire_send(d, f, mk(f, d->guest_mac, d->wire_mac, next_seq++, 200));
	usleep(500 * 1000);
	case_check(guest_recv(d, g, sizeof(g), &p, 100) == 0,
		   "nothing delivered without RX buffers", got, 0);
	case_check(guest_to_wire(d, 50) == 50, "guest->wire without RX buffers", 50, 50);
	guest_post_rx(d);
	both_ways(d, "after posting RX buffers", 100);
}

static void reconnect(struct drv *d)
{
	static uint8_t f[2048], g[2048];
	const struct virtio_net_hdr_v1 h = { 0 };

	guest_post_rx(d);
	both_ways(d, "before", 50);
	for (int round = 1; round <= 3; round++) {
		char tag[32];
		int rc;

		/* traffic in flight both ways, then the front-end goes away */
		for (int i = 0; i < 100; i++) {
			uint32_t seq = next_seq++;

			wire_send(d, f, mk(f, d->guest_mac, d->wire_mac, seq, 300));
			mk(f, d->wire_mac, d->guest_mac, seq, 300);
			guest_send(d, i % d->pairs, &h, f, 300);
		}
		vhu_fe_disconnect(d->fe);
		while (wire_recv(d, g, sizeof(g), 300) > 0)
			;
		rc = d->up(d, true);
		snprintf(tag, sizeof(tag), "reconnect %d", round);
		case_check(rc == 0, tag, rc, 0);
		if (rc)
			return;
		guest_post_rx(d);
		both_ways(d, tag, 50);
	}
}

static void rarp(struct drv *d)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };
	static uint8_t g[2048];
	int n, ok = 0;

	case_check(vhu_fe_send_rarp(d->fe, mac) == 0, "SEND_RARP accepted", 0, 0);
	while (!ok && (n = wire_recv(d, g, sizeof(g), 2000)) > 0)
		ok = n >= 42 && g[12] == 0x80 && g[13] == 0x35 &&
		     !memcmp(g + 6, mac, 6) && !memcmp(g + 22, mac, 6) &&
		     g[0] == 0xff && g[21] == 3;
	case_check(ok, "RARP broadcast for the guest MAC on the wire", ok, 1);
}

int run_case(struct drv *d, const char *name)
{
	if (!strcmp(name, "flow")) {
		guest_post_rx(d);
		both_ways(d, "flow", 300);
		csum_case(d, 17);
		csum_case(d, 6);
	} else if (!strcmp(name, "oversize")) {
		guest_post_rx(d);
		oversize(d);
	} else if (!strcmp(name, "norxbuf")) {
		norxbuf(d);
	} else if (!strcmp(name, "reconnect")) {
		reconnect(d);
	} else if (!strcmp(name, "bench")) {
		bench(d);
	} else if (!strcmp(name, "rarp")) {
		guest_post_rx(d);
		rarp(d);
	} else {
		return -1;
	}
	return 0;
}
