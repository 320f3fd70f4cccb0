/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-net over vhu: frames to and from a guest played by the in-tree
 * front-end.  Headers (12-byte and legacy 10-byte), mergeable RX buffers,
 * offload metadata both ways, drops counted by reason, disabled queues, and
 * 8 queue pairs driven from their own threads.
 *
 * The "hostile" test case holds class 32 of shared/HOSTILE-INPUTS.md
 * (headers split, chains shorter than the header, bad csum/gso fields from
 * the guest; metadata the guest did not negotiate never reaching it): each
 * frame is dropped and counted, then the aftermath (util/aftermath.h) is
 * checked: a bystander device still moves data, a fresh front-end on the
 * same device completes a session with data, fds, mappings and RSS flat.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vhu/vhu.h>

#include "aftermath.h"
#include "nettest.h"
#include "vqenv.h"

static void net_up(struct env *e, bool packed, uint64_t features_off,
		   uint16_t nq)
{
	struct env_opts o = { .packed = packed, .device_features = NET_FEATURES,
			      .features_off = features_off, .num_queues = nq,
			      .regions = 2, .region_size = 8 * MB };

	env_up(e, &o);
}

static void frame(uint8_t *buf, uint32_t len, uint8_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed ^ (i * 13));
}

/* Post @n writable RX buffers of @size bytes on queue @q. */
static void post_rx(struct env *e, int q, unsigned n, uint32_t size)
{
	for (unsigned i = 0; i < n; i++) {
		struct vhu_fe_buf b = { galloc(e, size), size };

		ck_assert_int_ge(vhu_fe_ring_add(ring(e, q), &b, 0, 1,
						 (void *)(uintptr_t)b.gpa), 0);
	}
	vhu_fe_ring_publish(ring(e, q));
}

/* Reap one used RX buffer: its gpa and length. */
static uint32_t reap(struct env *e, int q, uint64_t *gpa)
{
	uint32_t len;
	void *tok;

	ck_assert_int_eq(vhu_fe_ring_get_used(ring(e, q), NULL, &len, &tok), 1);
	*gpa = (uintptr_t)tok;
	return len;
}

START_TEST(rx_frames)
{
	struct env e;
	uint8_t f[3][1400];
	struct vhu_net_pkt p[3];
	struct vhu_net_stats st;
	/* without MRG_RXBUF: one buffer per frame, 12-byte header (VERSION_1) */
	net_up(&e, _i & 1, VHU_BIT(VHU_NET_F_MRG_RXBUF), 2);
	struct vhu_vq *rx = vhu_dev_vq(e.dev, 0);

	ck_assert_uint_eq(vhu_net_hdr_size(rx), 12);
	post_rx(&e, 0, 2, 2048);
	for (int i = 0; i < 3; i++) {
		frame(f[i], 1000 + 100 * (uint32_t)i, (uint8_t)i);
		p[i] = (struct vhu_net_pkt){ .data = f[i], .len = 1000 + 100 * (uint32_t)i };
	}
	/* two buffers for three frames: two delivered, one counted */
	ck_assert_int_eq(vhu_net_enqueue(rx, p, 3), 2);
	for (int i = 0; i < 2; i++) {
		uint64_t gpa;
		uint32_t len = reap(&e, 0, &gpa);
		const struct virtio_net_hdr_v1 *h = vhu_fe_gpa_to_ptr(e.fe, gpa, 12);

		ck_assert_uint_eq(len, 12 + p[i].len);
		ck_assert_uint_eq(h->num_buffers, 1);
		ck_assert_uint_eq(h->flags, 0);
		ck_assert_int_eq(memcmp((const uint8_t *)h + 12, f[i], p[i].len), 0);
	}
	vhu_net_stats(rx, &st);
	ck_assert_uint_eq(st.packets, 2);
	ck_assert_uint_eq(st.bytes, 2100);
	ck_assert_uint_eq(st.drop_no_buffers, 1);
	/* a guest that posts nothing: counted, never a hang */
	ck_assert_int_eq(vhu_net_enqueue(rx, p, 3), 0);
	vhu_net_stats(rx, &st);
	ck_assert_uint_eq(st.drop_no_buffers, 4);
	/* buffers too small for the frame: dropped, the buffer is kept */
	post_rx(&e, 0, 1, 512);
	ck_assert_int_eq(vhu_net_enqueue(rx, p, 1), 0);
	vhu_net_stats(rx, &st);
	ck_assert_uint_eq(st.drop_too_big, 1);
	p[2].len = 400;
	ck_assert_int_eq(vhu_net_enqueue(rx, &p[2], 1), 1);
	env_down(&e);
}
END_TEST

START_TEST(rx_mergeable)
{
	struct env e;
	static uint8_t f[9000];
	struct vhu_net_pkt p = { .data = f, .len = sizeof(f) };
	uint8_t out[9000 + 12];
	uint32_t got = 0;
	int nb = -1;

	net_up(&e, _i & 1, 0, 2);
	struct vhu_vq *rx = vhu_dev_vq(e.dev, 0);
	frame(f, sizeof(f), 0x5a);
	post_rx(&e, 0, 12, 1024);
	ck_assert_int_eq(vhu_net_enqueue(rx, &p, 1), 1);
	/* 9012 bytes in 1 KiB buffers: 9 buffers, num_buffers in the first */
	for (int i = 0; got < sizeof(out); i++) {
		uint64_t gpa;
		uint32_t len = reap(&e, 0, &gpa);
		const uint8_t *b = vhu_fe_gpa_to_ptr(e.fe, gpa, len);

		if (i == 0)
			nb = ((const struct virtio_net_hdr_v1 *)b)->num_buffers;
		ck_assert_uint_le(got + len, sizeof(out));
		memcpy(out + got, b, len);
		got += len;
	}
	ck_assert_int_eq(nb, 9);
	ck_assert_int_eq(memcmp(out + 12, f, sizeof(f)), 0);
	/* 3 buffers left, not enough for the next one: nothing taken */
	ck_assert_int_eq(vhu_net_enqueue(rx, &p, 1), 0);
	post_rx(&e, 0, 1, 1024);
	p.len = 1500;
	ck_assert_int_eq(vhu_net_enqueue(rx, &p, 1), 1); /* 2 of the 4 left */
	env_down(&e);
}
END_TEST

START_TEST(rx_offload_metadata)
{
	struct env e;
	uint8_t f[200];
	struct vhu_net_pkt p = { .data = f, .len = sizeof(f),
				 .flags = VHU_NET_HDR_F_NEEDS_CSUM, .csum_start = 34,
				 .csum_offset = 16, .gso_type = VHU_NET_GSO_TCPV4,
				 .gso_size = 1448, .hdr_len = 54 };
	struct vhu_net_stats st;
	uint64_t gpa;

	/* the guest acks GUEST_CSUM and GUEST_TSO4: metadata goes through */
	net_up(&e, false, 0, 2);
	struct vhu_vq *rx = vhu_dev_vq(e.dev, 0);
	post_rx(&e, 0, 4, 1024);
	ck_assert_int_eq(vhu_net_enqueue(rx, &p, 1), 1);
	reap(&e, 0, &gpa);
	const struct virtio_net_hdr_v1 *h = vhu_fe_gpa_to_ptr(e.fe, gpa, 12);
	ck_assert_uint_eq(h->flags, VHU_NET_HDR_F_NEEDS_CSUM);
	ck_assert_uint_eq(h->gso_type, VHU_NET_GSO_TCPV4);
	ck_assert_uint_eq(h->gso_size, 1448);
	ck_assert_uint_eq(h->csum_start, 34);
	ck_assert_uint_eq(h->csum_offset, 16);
	ck_assert_uint_eq(h->hdr_len, 54);
	/* metadata the guest did not negotiate never reaches it */
	p.gso_type = VHU_NET_GSO_TCPV6;
	ck_assert_int_eq(vhu_net_enqueue(rx, &p, 1), 0);
	p.gso_type = VHU_NET_GSO_TCPV4;
	p.gso_size = 0;
	ck_assert_int_eq(vhu_net_enqueue(rx, &p, 1), 0);
	vhu_net_stats(rx, &st);
	ck_assert_uint_eq(st.drop_bad_header, 2);
	aftermath_env(&e);
	env_down(&e);

	net_up(&e, false, VHU_BIT(VHU_NET_F_GUEST_CSUM) | VHU_BIT(VHU_NET_F_GUEST_TSO4), 2);
	rx = vhu_dev_vq(e.dev, 0);
	post_rx(&e, 0, 4, 1024);
	p = (struct vhu_net_pkt){ .data = f, .len = 100, .flags = VHU_NET_HDR_F_NEEDS_CSUM };
	ck_assert_int_eq(vhu_net_enqueue(rx, &p, 1), 0);
	p.flags = VHU_NET_HDR_F_DATA_VALID;
	ck_assert_int_eq(vhu_net_enqueue(rx, &p, 1), 1);
	env_down(&e);
}
END_TEST

/* A TX frame: header @h of @hs bytes split into @hsplit descriptors, then
 * the frame in one or two more.  Returns nothing; the caller dequeues. */
static void tx_frame(struct env *e, const void *h, uint32_t hs, unsigned hsplit,
		     const uint8_t *f, uint32_t flen)
{
	struct vhu_fe_buf b[8];
	unsigned n = 0;
	uint64_t hg = galloc(e, hs ? hs : 1), fg = galloc(e, flen ? flen : 1);

	vhu_fe_mem_write(e->fe, hg, h, hs);
	vhu_fe_mem_write(e->fe, fg, f, flen);
	for (unsigned i = 0; i < hsplit; i++) {
		uint32_t a = hs * i / hsplit, z = hs * (i + 1) / hsplit;

		b[n++] = (struct vhu_fe_buf){ hg + a, z - a };
	}
	if (flen > 1) {
		b[n++] = (struct vhu_fe_buf){ fg, flen / 2 };
		b[n++] = (struct vhu_fe_buf){ fg + flen / 2, flen - flen / 2 };
	} else if (flen) {
		b[n++] = (struct vhu_fe_buf){ fg, flen };
	}
	ck_assert_int_ge(vhu_fe_ring_add(ring(e, 1), b, n, 0, NULL), 0);
	vhu_fe_ring_publish(ring(e, 1));
}

START_TEST(tx_frames_and_hostile_headers)
{
	struct env e;
	uint8_t f[1500], buf[4][2048];
	void *bufs[4] = { buf[0], buf[1], buf[2], buf[3] };
	struct vhu_net_pkt p[4];
	struct vhu_net_stats st;
	struct virtio_net_hdr_v1 h = { 0 };

	net_up(&e, _i & 1, 0, 2);
	struct vhu_vq *tx = vhu_dev_vq(e.dev, 1);
	frame(f, sizeof(f), 7);

	/* class 32: the header over 3 descriptors is reassembled */
	h = (struct virtio_net_hdr_v1){ .flags = VHU_NET_HDR_F_NEEDS_CSUM, .csum_start = 34,
			       .csum_offset = 16, .gso_type = VHU_NET_GSO_TCPV4,
			       .gso_size = 1448, .hdr_len = 66 };
	tx_frame(&e, &h, 12, 3, f, 1500);
	ck_assert_int_eq(vhu_net_dequeue(tx, p, bufs, 2048, 4), 1);
	ck_assert_uint_eq(p[0].len, 1500);
	ck_assert_int_eq(memcmp(buf[0], f, 1500), 0);
	ck_assert_uint_eq(p[0].flags, VHU_NET_HDR_F_NEEDS_CSUM);
	ck_assert_uint_eq(p[0].gso_type, VHU_NET_GSO_TCPV4);
	ck_assert_uint_eq(p[0].gso_size, 1448);
	ck_assert_uint_eq(p[0].csum_start, 34);
	ck_assert_uint_eq(p[0].csum_offset, 16);
	ck_assert_uint_eq(p[0].hdr_len, 66);

	/* a chain shorter than the header */
	tx_frame(&e, &h, 8, 2, f, 0);
	/* csum_start + csum_offset beyond the frame */
	h = (struct virtio_net_hdr_v1){ .flags = VHU_NET_HDR_F_NEEDS_CSUM, .csum_start = 90,
			       .csum_offset = 16 };
	tx_frame(&e, &h, 12, 1, f, 100);
	/* GSO with gso_size 0 */
	h = (struct virtio_net_hdr_v1){ .gso_type = VHU_NET_GSO_TCPV4, .gso_size = 0 };
	tx_frame(&e, &h, 12, 1, f, 100);
	/* GSO the device never offered (UDP) */
	h = (struct virtio_net_hdr_v1){ .gso_type = VHU_NET_GSO_UDP, .gso_size = 1000 };
	tx_frame(&e, &h, 12, 1, f, 100);
	/* unknown flag bits */
	h = (struct virtio_net_hdr_v1){ .flags = 0x80 };
	tx_frame(&e, &h, 12, 1, f, 100);
	/* a frame larger than the application's buffer */
	h = (struct virtio_net_hdr_v1){ 0 };
	tx_frame(&e, &h, 12, 1, f, 1500);
	/* and a good one after all that */
	tx_frame(&e, &h, 12, 2, f, 64);
	ck_assert_int_eq(vhu_net_dequeue(tx, p, bufs, 1000, 4), 1);
	ck_assert_uint_eq(p[0].len, 64);
	ck_assert_int_eq(memcmp(buf[0], f, 64), 0);
	vhu_net_stats(tx, &st);
	ck_assert_uint_eq(st.packets, 2);
	ck_assert_uint_eq(st.drop_bad_header, 5);
	ck_assert_uint_eq(st.drop_too_big, 1);
	/* every frame went back to the guest */
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(vhu_fe_ring_get_used(ring(&e, 1), NULL, NULL, NULL), 1);
	ck_assert_int_eq(vhu_fe_ring_get_used(ring(&e, 1), NULL, NULL, NULL), 0);
	aftermath_env(&e);
	env_down(&e);
}
END_TEST

/* Without VERSION_1 and MRG_RXBUF the header is the legacy 10 bytes; a
 * guest without CSUM must not send NEEDS_CSUM. */
/* A guest that keeps posting frames the device drops (bad headers) while
 * one dequeue runs: the call still returns after a ring's worth.  Each
 * frame is an indirect table of TX_PIECES one-byte buffers, so the device
 * works harder per frame than the guest does to post it again, and the
 * ring never runs dry under it. */
#define TX_PIECES 250

struct reposter {
	struct env *e;
	struct vhu_fe_buf pieces[TX_PIECES];
	void *table;
	uint64_t table_gpa;
	atomic_bool stop;
};

static void *repost_bad_frames(void *arg)
{
	struct reposter *g = arg;
	struct vhu_fe_ring *r = ring(g->e, 1);

	while (!atomic_load(&g->stop)) {
		while (vhu_fe_ring_get_used(r, NULL, NULL, NULL) == 1)
			;
		while (vhu_fe_ring_add_indirect(r, g->pieces, TX_PIECES, 0, g->table,
						g->table_gpa, NULL) >= 0)
			;
		vhu_fe_ring_publish(r);
	}
	return NULL;
}

START_TEST(tx_work_is_bounded)
{
	struct env e;
	struct env_opts o = { .packed = _i, .device_features = NET_FEATURES,
			      .qsize = 64 };
	static struct reposter g;
	uint8_t buf[8][2048];
	void *bufs[8];
	struct vhu_net_pkt p[8];
	struct vhu_vq_stats before, after;
	struct vhu_vq *tx;
	uint64_t gpa;
	pthread_t th;

	env_up(&e, &o);
	tx = vhu_dev_vq(e.dev, 1);
	memset(&g, 0, sizeof(g));
	g.e = &e;
	gpa = galloc(&e, TX_PIECES);
	fill(&e, gpa, TX_PIECES, 0xff); /* flags and gso_type nobody offered */
	for (int i = 0; i < TX_PIECES; i++)
		g.pieces[i] = (struct vhu_fe_buf){ gpa + (uint64_t)i, 1 };
	g.table_gpa = galloc(&e, TX_PIECES * 16);
	g.table = vhu_fe_gpa_to_ptr(e.fe, g.table_gpa, TX_PIECES * 16);
	for (int i = 0; i < 8; i++)
		bufs[i] = buf[i];
	ck_assert_int_eq(pthread_create(&th, NULL, repost_bad_frames, &g), 0);
	usleep(20000);
	vhu_vq_stats(tx, &before);
	ck_assert_int_eq(vhu_net_dequeue(tx, p, bufs, 2048, 8), 0);
	vhu_vq_stats(tx, &after);
	atomic_store(&g.stop, true);
	pthread_join(th, NULL);
	ck_assert_uint_gt(after.popped - before.popped, 0);
	ck_assert_uint_le(after.popped - before.popped, 64);
	aftermath_env(&e);
	env_down(&e);
}
END_TEST

START_TEST(legacy_header)
{
	struct env e;
	uint8_t f[100], buf[256];
	void *bufs[1] = { buf };
	struct vhu_net_pkt p;
	struct virtio_net_hdr_v1 h = { 0 };
	uint64_t gpa;

	net_up(&e, false, VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_NET_F_MRG_RXBUF) |
				  VHU_BIT(VHU_NET_F_CSUM), 2);
	ck_assert_uint_eq(vhu_net_hdr_size(vhu_dev_vq(e.dev, 0)), 10);
	frame(f, sizeof(f), 3);
	tx_frame(&e, &h, 10, 1, f, 100);
	ck_assert_int_eq(vhu_net_dequeue(vhu_dev_vq(e.dev, 1), &p, bufs, 256, 1), 1);
	ck_assert_uint_eq(p.len, 100);
	ck_assert_int_eq(memcmp(buf, f, 100), 0);
	h.flags = VHU_NET_HDR_F_NEEDS_CSUM;
	tx_frame(&e, &h, 10, 1, f, 100);
	ck_assert_int_eq(vhu_net_dequeue(vhu_dev_vq(e.dev, 1), &p, bufs, 256, 1), 0);
	post_rx(&e, 0, 1, 256);
	p = (struct vhu_net_pkt){ .data = f, .len = 100 };
	ck_assert_int_eq(vhu_net_enqueue(vhu_dev_vq(e.dev, 0), &p, 1), 1);
	ck_assert_uint_eq(reap(&e, 0, &gpa), 110);
	ck_assert_int_eq(memcmp((uint8_t *)vhu_fe_gpa_to_ptr(e.fe, gpa, 110) + 10, f, 100), 0);
	env_down(&e);
}
END_TEST

/* A disabled queue pair: RX gets nothing, TX is processed and discarded. */
START_TEST(disabled_queues)
{
	struct env e;
	uint8_t f[64], buf[128];
	void *bufs[1] = { buf };
	struct vhu_net_pkt p = { .data = f, .len = 64 };
	struct vhu_net_stats st;
	struct virtio_net_hdr_v1 h = { 0 };

	net_up(&e, false, 0, 2);
	post_rx(&e, 0, 2, 256);
	tx_frame(&e, &h, 12, 1, f, 64);
	ck_assert_int_eq(vhu_fe_set_vring_enable(e.fe, 0, false), 0);
	ck_assert_int_eq(vhu_fe_set_vring_enable(e.fe, 1, false), 0);
	fe_sync(&e);
	ck_assert_int_eq(vhu_net_enqueue(vhu_dev_vq(e.dev, 0), &p, 1), 0);
	ck_assert_int_eq(vhu_net_dequeue(vhu_dev_vq(e.dev, 1), &p, bufs, 128, 1), 0);
	ck_assert_int_eq(vhu_fe_ring_get_used(ring(&e, 1), NULL, NULL, NULL), 1);
	vhu_net_stats(vhu_dev_vq(e.dev, 0), &st);
	ck_assert_uint_eq(st.drop_not_ready, 1);
	vhu_net_stats(vhu_dev_vq(e.dev, 1), &st);
	ck_assert_uint_eq(st.drop_not_ready, 1);
	env_down(&e);
}
END_TEST

/*
 * 8 queue pairs, each driven by its own device thread: the thread of pair
 * i dequeues what the guest sends on TX queue 2i+1 and enqueues it back on
 * RX queue 2i (a loopback).  The guest side (this thread) checks that each
 * pair returns exactly its own frames.
 */
struct pair_worker {
	struct env *e;
	int pair;
	atomic_bool stop;
	unsigned looped;
};

static void *pair_loop(void *arg)
{
	struct pair_worker *w = arg;
	struct vhu_vq *tx = vhu_dev_vq(w->e->dev, (uint16_t)(2 * w->pair + 1));
	struct vhu_vq *rx = vhu_dev_vq(w->e->dev, (uint16_t)(2 * w->pair));
	static __thread uint8_t buf[8][2048];
	void *bufs[8];
	struct vhu_net_pkt p[8];

	for (int i = 0; i < 8; i++)
		bufs[i] = buf[i];
	while (!atomic_load(&w->stop)) {
		int n = vhu_net_dequeue(tx, p, bufs, 2048, 8);

		if (n > 0) {
			int sent = 0;

			while (sent < n && !atomic_load(&w->stop)) {
				int k = vhu_net_enqueue(rx, p + sent, (unsigned)(n - sent));

				sent += k;
				if (k == 0)
					usleep(100);
			}
			w->looped += (unsigned)n;
		} else {
			usleep(100);
		}
	}
	return NULL;
}

START_TEST(multiqueue_pairs)
{
	struct env e;
	struct pair_worker w[8];
	pthread_t th[8];
	uint64_t qnum = 0;

	net_up(&e, _i & 1, 0, 16);
	ck_assert_int_eq(vhu_fe_get_queue_num(e.fe, &qnum), 0);
	ck_assert_uint_eq(qnum, 8);
	for (int i = 0; i < 8; i++) {
		w[i] = (struct pair_worker){ .e = &e, .pair = i };
		ck_assert_int_eq(pthread_create(&th[i], NULL, pair_loop, &w[i]), 0);
	}
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 8; i++) {
			uint8_t f[60];
			struct virtio_net_hdr_v1 h = { 0 };

			memset(f, i, sizeof(f));
			f[0] = (uint8_t)round;
			post_rx(&e, 2 * i, 1, 256);
			struct vhu_fe_buf b[2] = { { galloc(&e, 12), 12 }, { galloc(&e, 60), 60 } };
			vhu_fe_mem_write(e.fe, b[0].gpa, &h, 12);
			vhu_fe_mem_write(e.fe, b[1].gpa, f, 60);
			ck_assert_int_ge(vhu_fe_ring_add(ring(&e, 2 * i + 1), b, 2, 0, NULL), 0);
			vhu_fe_ring_publish(ring(&e, 2 * i + 1));
		}
		for (int i = 0; i < 8; i++) {
			uint64_t gpa = 0;
			int tries = 0;
			uint32_t len;
			void *tok;

			while (vhu_fe_ring_get_used(ring(&e, 2 * i), NULL, &len, &tok) != 1) {
				ck_assert_int_lt(++tries, TMO);
				usleep(1000);
			}
			gpa = (uintptr_t)tok;
			const uint8_t *got = vhu_fe_gpa_to_ptr(e.fe, gpa, len);
			ck_assert_uint_eq(len, 72);
			ck_assert_uint_eq(got[12], (uint8_t)round);
			ck_assert_uint_eq(got[13], (uint8_t)i); /* its own pair's frame */
			while (vhu_fe_ring_get_used(ring(&e, 2 * i + 1), NULL, NULL, NULL) != 1)
				usleep(100);
		}
	}
	for (int i = 0; i < 8; i++) {
		atomic_store(&w[i].stop, true);
		pthread_join(th[i], NULL);
		ck_assert_uint_eq(w[i].looped, 20);
	}
	env_down(&e);
}
END_TEST

/*
 * The application holds a request it popped itself (vhu_vq_pop()) while
 * vhu_net_*() serve the rest of the queue: used entries must not land
 * where the fast path of a packed ring would put them (in place), and
 * every buffer comes back once, with its own frame.  Then, nothing held,
 * the next bursts go the fast way again.  Single-descriptor buffers.
 */
START_TEST(request_held_by_application)
{
	struct env e;
	uint8_t f[4][300], buf[4][2048];
	void *bufs[4] = { buf[0], buf[1], buf[2], buf[3] };
	struct vhu_net_pkt p[4];
	struct vhu_req req;
	struct vhu_seg seg[4];
	uint64_t gpa[4];
	bool seen[4];

	net_up(&e, _i & 1, 0, 2);
	struct vhu_vq *rx = vhu_dev_vq(e.dev, 0), *tx = vhu_dev_vq(e.dev, 1);

	for (int round = 0; round < 3; round++) {
		bool hold = round < 2;
		unsigned first = hold ? 1 : 0;

		/* TX: four frames, header and frame in one descriptor */
		for (unsigned i = 0; i < 4; i++) {
			struct virtio_net_hdr_v1 h = { 0 };
			struct vhu_fe_buf b = { galloc(&e, 12 + 300), 12 + 300 };

			frame(f[i], 300, (uint8_t)(round * 4 + i));
			vhu_fe_mem_write(e.fe, b.gpa, &h, 12);
			vhu_fe_mem_write(e.fe, b.gpa + 12, f[i], 300);
			gpa[i] = b.gpa;
			ck_assert_int_ge(vhu_fe_ring_add(ring(&e, 1), &b, 1, 0,
							 (void *)(uintptr_t)i), 0);
		}
		vhu_fe_ring_publish(ring(&e, 1));
		if (hold) {
			vhu_vq_begin(tx);
			ck_assert_int_eq(vhu_vq_pop(tx, &req, 1, seg, 4), 1);
			vhu_vq_end(tx);
		}
		ck_assert_int_eq(vhu_net_dequeue(tx, p, bufs, 2048, 4), 4 - (int)first);
		for (unsigned i = first; i < 4; i++) {
			ck_assert_uint_eq(p[i - first].len, 300);
			ck_assert_int_eq(memcmp(buf[i - first], f[i], 300), 0);
		}
		if (hold) {
			vhu_vq_begin(tx);
			ck_assert_int_eq(vhu_vq_push(tx, &req, NULL, 1), 0);
			vhu_vq_notify(tx);
			vhu_vq_end(tx);
		}
		memset(seen, 0, sizeof(seen));
		for (unsigned k = 0; k < 4; k++) {
			void *tok;
			uint32_t len;

			ck_assert_int_eq(vhu_fe_ring_get_used(ring(&e, 1), NULL, &len, &tok), 1);
			ck_assert_uint_lt((uintptr_t)tok, 4);
			ck_assert(!seen[(uintptr_t)tok]);
			seen[(uintptr_t)tok] = true;
			ck_assert_uint_eq(len, 0);
		}

		/* RX: four buffers, the application holds the first */
		for (unsigned i = 0; i < 4; i++) {
			struct vhu_fe_buf b = { galloc(&e, 2048), 2048 };

			gpa[i] = b.gpa;
			ck_assert_int_ge(vhu_fe_ring_add(ring(&e, 0), &b, 0, 1,
							 (void *)(uintptr_t)i), 0);
			p[i] = (struct vhu_net_pkt){ .data = f[i], .len = 300 };
		}
		vhu_fe_ring_publish(ring(&e, 0));
		if (hold) {
			vhu_vq_begin(rx);
			ck_assert_int_eq(vhu_vq_pop(rx, &req, 1, seg, 4), 1);
			vhu_vq_end(rx);
		}
		ck_assert_int_eq(vhu_net_enqueue(rx, p, 4 - first), 4 - (int)first);
		if (hold) {
			uint32_t zero = 0;

			vhu_vq_begin(rx);
			ck_assert_int_eq(vhu_vq_push(rx, &req, &zero, 1), 0);
			vhu_vq_notify(rx);
			vhu_vq_end(rx);
		}
		memset(seen, 0, sizeof(seen));
		for (unsigned k = 0; k < 4; k++) {
			void *tok;
			uint32_t len;
			unsigned i;

			ck_assert_int_eq(vhu_fe_ring_get_used(ring(&e, 0), NULL, &len, &tok), 1);
			i = (unsigned)(uintptr_t)tok;
			ck_assert_uint_lt(i, 4);
			ck_assert(!seen[i]);
			seen[i] = true;
			if (i < first) {
				ck_assert_uint_eq(len, 0);
				continue;
			}
			/* buffer i holds frame i - first */
			const uint8_t *d = vhu_fe_gpa_to_ptr(e.fe, gpa[i], 12 + 300);

			ck_assert_uint_eq(len, 12 + 300);
			ck_assert_int_eq(memcmp(d + 12, f[i - first], 300), 0);
		}
	}
	env_down(&e);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("net");
	TCase *tc = tcase_create("net");
	TCase *h = tcase_create("hostile");

	tcase_set_timeout(tc, 120);
	tcase_set_timeout(h, 120);
	tcase_add_checked_fixture(h, aftermath_setup, aftermath_teardown);
	tcase_add_loop_test(tc, rx_frames, 0, 2);
	tcase_add_loop_test(tc, rx_mergeable, 0, 2);
	tcase_add_test(h, rx_offload_metadata);
	tcase_add_loop_test(h, tx_frames_and_hostile_headers, 0, 2);
	tcase_add_loop_test(h, tx_work_is_bounded, 0, 2);
	tcase_add_test(tc, legacy_header);
	tcase_add_test(tc, disabled_queues);
	tcase_add_loop_test(tc, multiqueue_pairs, 0, 2);
	tcase_add_loop_test(tc, request_held_by_application, 0, 2);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, h);
	return tu_run_suite(s);
}
