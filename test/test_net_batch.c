/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The batched virtio-net data path (net.c): guest RX buffers popped 64 at
 * a time, frames across the end of a batch, buffers too small for the
 * header, unused buffers given back (rewound) at the end of a burst, TX
 * requests popped 32 at a time, the single-descriptor fast path of both
 * ring layouts and its fallback where a buffer crosses a region, the
 * last-region hint, and the counters.
 *
 * The guest side keeps a model of what the device must do with what was
 * posted: which buffers each frame fills, with how many bytes, in ring
 * order, and what each counter says.  After every burst the used ring is
 * reaped against it: each buffer once, in order, with its length; each
 * frame's bytes and header (num_buffers); vhu_vq_stats popped == pushed;
 * the drops by reason.
 *
 * Guest buffers come from a pool per queue with fixed addresses,
 * alternating between two memory regions (the hint changes all the time);
 * buffer 0 starts 8 bytes before a region ends, so its header is split
 * and the fast path must fall back.  Buffers are posted whole, as chains
 * of up to three pieces, or through an indirect table.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <vhu/vhu.h>

#include "nettest.h"
#include "vqenv.h"

#define POOL 256      /* guest buffers per queue */
#define BUF_CAP 4096  /* bytes of each */
#define GAP 32        /* between the pieces of a buffer in guest memory */
#define SLOT (BUF_CAP + 2 * GAP)
#define RX_BATCH 64   /* net.c: RX buffers per pop, and per frame at most */
#define TX_BUF 1600   /* the application's TX buffers */
#define MAX_FRAMES 96 /* per burst */
#define CANARY 0xee   /* RX buffers are filled with it when posted */
#define JUNK 0x5a     /* what TX buffers hold between their pieces */

struct gbuf {
	uint64_t gpa;
	uint64_t table;          /* its indirect table (4 entries) */
	uint32_t size;           /* bytes posted (TX: header and frame) */
	uint32_t cuts[2];        /* where its pieces start (GAP bytes apart) */
	unsigned ncuts;
	bool posted;
	bool bad;                /* TX: metadata the device must refuse */
	struct vhu_net_pkt meta; /* TX: the frame it holds */
};

/* One queue: the guest's buffers and the model of the device's work. */
struct q {
	struct env *e;
	struct vhu_vq *vq;
	struct vhu_fe_ring *r;
	bool rx;
	struct gbuf buf[POOL];
	uint16_t fifo[POOL]; /* posted and not used yet, in ring order */
	unsigned head, count;
	struct vhu_net_stats want; /* what vhu_net_stats() must say */
	uint64_t used;             /* buffers used so far */
	uint64_t bursts_used;      /* bursts that used any */
};

/* A test's device (RX queue 0, TX queue 1) and the guest's side. */
struct t {
	struct env e;
	struct q rx, tx;
	bool mrg;
	uint32_t hs;
	uint32_t rng;
};

/* Frame bytes: frames point into it at random offsets. */
static uint8_t pat[BUF_CAP + 64 * 1024];
/* RX frames as the guest reassembles them. */
static uint8_t img[RX_BATCH * BUF_CAP];
static uint8_t txbuf[MAX_FRAMES][TX_BUF];

static uint32_t rnd(struct t *t, uint32_t n)
{
	t->rng ^= t->rng << 13;
	t->rng ^= t->rng >> 17;
	t->rng ^= t->rng << 5;
	return n ? t->rng % n : 0;
}

static unsigned bursts(unsigned n)
{
	return tu_under_valgrind() ? n / 10 : n;
}

/* @size bytes in region @i (the fe's allocator only hands out the first
 * region with room): bump its free range. */
static uint64_t galloc_in(struct env *e, unsigned i, uint32_t size)
{
	struct vhu_fe_region *r = vhu_fe_mem_region(e->fe, i);
	uint64_t gpa = (r->lo + 63) & ~63ull;

	FAST(gpa + size <= r->hi);
	r->lo = gpa + size;
	return gpa;
}

static void q_init(struct t *t, struct q *q, uint16_t idx)
{
	q->e = &t->e;
	q->vq = vhu_dev_vq(t->e.dev, idx);
	q->r = ring(&t->e, idx);
	q->rx = idx == 0;
	for (unsigned i = 1; i < POOL; i++)
		q->buf[i].gpa = galloc_in(&t->e, 1 + i % 2, SLOT);
	for (unsigned i = 0; i < POOL; i++)
		q->buf[i].table = galloc(&t->e, 64);
}

/* RX queue 0 and TX queue 1 over three regions (rings in the first). */
static struct t *t_up_order(bool packed, bool mrg, uint16_t qsize, bool in_order)
{
	struct t *t = calloc(1, sizeof(*t));
	struct env_opts o = {
		.packed = packed, .in_order = in_order,
		.device_features = NET_FEATURES, .qsize = qsize,
		.features_off = mrg ? 0 : VHU_BIT(VHU_NET_F_MRG_RXBUF),
		.regions = 3, .region_size = 4 * MB,
	};
	uint64_t s;

	ck_assert_ptr_nonnull(t);
	t->rng = 0x9e3779b9u;
	for (size_t i = 0; i < sizeof(pat); i++)
		pat[i] = (uint8_t)rnd(t, 256);
	env_up(&t->e, &o);
	t->mrg = mrg;
	t->hs = vhu_net_hdr_size(vhu_dev_vq(t->e.dev, 0));
	ck_assert(vhu_vq_in_order(vhu_dev_vq(t->e.dev, 0)) == in_order);
	ck_assert_uint_eq(t->hs, 12);
	/* Buffer 0 of each queue crosses a region boundary (regions 0|1 for
	 * RX, 1|2 for TX), 8 bytes in (RX: the header is split) or 20 (TX:
	 * the frame is): taken before the other buffers, which use the
	 * regions' heads. */
	ck_assert_int_eq(vhu_fe_mem_alloc_straddle(t->e.fe, 2 * SLOT, &s), 0);
	t->rx.buf[0].gpa = s + SLOT - 8;
	ck_assert_int_eq(vhu_fe_mem_alloc_straddle(t->e.fe, 2 * SLOT, &s), 0);
	t->tx.buf[0].gpa = s + SLOT - 20;
	q_init(t, &t->rx, 0);
	q_init(t, &t->tx, 1);
	return t;
}

/* Without VIRTIO_F_IN_ORDER. */
static struct t *t_up(bool packed, bool mrg, uint16_t qsize)
{
	return t_up_order(packed, mrg, qsize, false);
}

static void t_down(struct t *t)
{
	env_down(&t->e);
	free(t);
}

static unsigned front(const struct q *q, unsigned k)
{
	return q->fifo[(q->head + k) % POOL];
}

/* A free buffer of @q, or -1. */
static int pick(struct t *t, struct q *q)
{
	unsigned s = rnd(t, POOL);

	for (unsigned k = 0; k < POOL; k++)
		if (!q->buf[(s + k) % POOL].posted)
			return (int)((s + k) % POOL);
	return -1;
}

/* Post buffer @i of @q: @size bytes cut into pieces at @cuts (ascending,
 * inside the buffer; the pieces lie GAP bytes apart), through its
 * indirect table if @ind.  False, nothing posted, when the ring has no
 * room. */
static bool post(struct q *q, unsigned i, uint32_t size, const uint32_t *cuts,
		 unsigned ncuts, bool ind)
{
	struct gbuf *g = &q->buf[i];
	struct vhu_fe_buf b[3];
	unsigned n = 0, out, in;
	uint32_t at = 0;
	int rc;

	FAST(!g->posted && ncuts <= 2);
	for (unsigned k = 0; k <= ncuts; k++) {
		uint32_t end = k < ncuts ? cuts[k] : size;

		b[n] = (struct vhu_fe_buf){ g->gpa + at + n * GAP, end - at };
		n++;
		at = end;
	}
	if (q->r->num_free < (ind ? 1u : n))
		return false;
	out = q->rx ? 0 : n;
	in = q->rx ? n : 0;
	if (ind)
		rc = vhu_fe_ring_add_indirect(q->r, b, out, in,
					      vhu_fe_gpa_to_ptr(q->e->fe, g->table, 64),
					      g->table, (void *)(uintptr_t)i);
	else
		rc = vhu_fe_ring_add(q->r, b, out, in, (void *)(uintptr_t)i);
	FAST(rc >= 0);
	g->posted = true;
	g->size = size;
	g->ncuts = ncuts;
	memcpy(g->cuts, cuts, ncuts * sizeof(*cuts));
	q->fifo[(q->head + q->count++) % POOL] = (uint16_t)i;
	return true;
}

/* Copy @len bytes at offset @off of buffer @g (across its pieces) to the
 * guest from @p, or from the guest to @p. */
static void gcopy(struct env *e, const struct gbuf *g, uint32_t off, void *p,
		  uint32_t len, bool to_guest)
{
	uint8_t *b = p;

	while (len) {
		unsigned k = 0;
		uint32_t end, n;
		uint64_t gpa;

		while (k < g->ncuts && g->cuts[k] <= off)
			k++;
		end = k < g->ncuts ? g->cuts[k] : g->size;
		n = end - off < len ? end - off : len;
		gpa = g->gpa + off + k * GAP;
		FAST_EQ(to_guest ? vhu_fe_mem_write(e->fe, gpa, b, n)
				 : vhu_fe_mem_read(e->fe, gpa, b, n), 0);
		b += n;
		off += n;
		len -= n;
	}
}

/* The next used buffer must be the oldest one posted, with @written
 * bytes: each buffer comes back once, in ring order. */
static struct gbuf *reap(struct q *q, uint32_t written)
{
	struct gbuf *g = &q->buf[front(q, 0)];
	uint32_t len;
	void *tok;

	FAST(q->count > 0);
	FAST_EQ(vhu_fe_ring_get_used(q->r, NULL, &len, &tok), 1);
	FAST_EQ((uintptr_t)tok, front(q, 0));
	FAST_EQ(len, written);
	g->posted = false;
	q->head = (q->head + 1) % POOL;
	q->count--;
	q->used++;
	return g;
}

/* After a burst: nothing else used, the counters as the model says. */
static void q_check(struct q *q, uint64_t used_before)
{
	const char *name[7] = { "packets", "bytes", "drop_no_buffers", "drop_too_big",
				"drop_bad_header", "drop_not_ready", "drop_ring_error" };
	struct vhu_net_stats st;
	struct vhu_vq_stats vs;
	const uint64_t *got = (const uint64_t *)&st, *want = (const uint64_t *)&q->want;

	FAST_EQ(vhu_fe_ring_get_used(q->r, NULL, NULL, NULL), 0);
	if (q->used != used_before)
		q->bursts_used++;
	vhu_net_stats(q->vq, &st);
	for (int i = 0; i < 7; i++)
		if (got[i] != want[i])
			ck_abort_msg("%s: %llu, want %llu", name[i],
				     (unsigned long long)got[i], (unsigned long long)want[i]);
	vhu_vq_stats(q->vq, &vs);
	FAST_EQ(vs.popped, q->used); /* the rewinds gave back the rest */
	FAST_EQ(vs.pushed, q->used);
	FAST_EQ(vs.calls + vs.calls_suppressed, q->bursts_used);
	FAST_EQ(vs.errors, 0);
}

/* ---- RX ---- */

static struct vhu_net_pkt pkt(struct t *t, uint32_t len)
{
	FAST(len <= sizeof(pat) - BUF_CAP);
	return (struct vhu_net_pkt){ .data = pat + rnd(t, BUF_CAP), .len = len };
}

/* Post RX buffer @i: @size bytes of CANARY, in @pieces pieces (at random
 * cuts), through the indirect table if @ind. */
static bool rx_post(struct t *t, unsigned i, uint32_t size, unsigned pieces,
		    bool ind)
{
	static const uint8_t canary[SLOT] = { [0 ... SLOT - 1] = CANARY };
	uint32_t cuts[2] = { 0, 0 }; /* gcc -O3 cannot tell n guards them */
	unsigned n = 0;

	if (pieces > 1 && size >= 2)
		cuts[n++] = 1 + rnd(t, size - 1);
	if (pieces > 2 && n && cuts[0] + 1 < size)
		cuts[n++] = cuts[0] + 1 + rnd(t, size - cuts[0] - 1);
	if (!post(&t->rx, i, size, cuts, n, ind))
		return false;
	FAST_EQ(vhu_fe_mem_write(t->e.fe, t->rx.buf[i].gpa, canary, size + n * GAP), 0);
	return true;
}

/* The guest reassembles the frame the device wrote over the next @nb
 * buffers: lengths, header, bytes, nothing written past the length or
 * between the pieces. */
static void rx_expect_frame(struct t *t, const struct vhu_net_pkt *p, unsigned nb)
{
	uint32_t left = t->hs + p->len, off = 0;
	struct virtio_net_hdr_v1 h;

	for (unsigned k = 0; k < nb; k++) {
		uint32_t size = t->rx.buf[front(&t->rx, 0)].size;
		uint32_t w = left < size ? left : size;
		struct gbuf *g = reap(&t->rx, w);
		uint8_t c[GAP];

		gcopy(&t->e, g, 0, img + off, w, false);
		if (w < size) {
			gcopy(&t->e, g, w, c, 1, false);
			FAST_EQ(c[0], CANARY);
		}
		for (unsigned pc = 0; pc < g->ncuts; pc++) {
			FAST_EQ(vhu_fe_mem_read(t->e.fe, g->gpa + g->cuts[pc] + pc * GAP,
						c, GAP), 0);
			for (unsigned j = 0; j < GAP; j++)
				FAST_EQ(c[j], CANARY);
		}
		off += w;
		left -= w;
	}
	memcpy(&h, img, sizeof(h));
	FAST_EQ(h.num_buffers, nb);
	FAST(!h.flags && !h.gso_type && !h.hdr_len && !h.gso_size &&
	     !h.csum_start && !h.csum_offset);
	FAST_EQ(memcmp(img + t->hs, p->data, p->len), 0);
}

/*
 * vhu_net_enqueue(@p, @n) and the model: a frame takes the oldest posted
 * buffers after handing back empty those too small for a header; one
 * buffer (several with MRG_RXBUF, up to 64) as long as they hold header
 * and frame.  A frame that 64 buffers cannot hold is dropped, nothing
 * used; when the guest has not posted enough, that frame and the rest
 * wait (dropped, counted no_buffers) and the buffers stay posted.
 */
static int rx_burst(struct t *t, const struct vhu_net_pkt *p, unsigned n)
{
	struct q *q = &t->rx;
	unsigned maxb = t->mrg ? RX_BATCH : 1, delivered = 0;
	uint64_t used = q->used;
	int got = vhu_net_enqueue(q->vq, p, n);

	for (unsigned f = 0; f < n; f++) {
		uint32_t need = t->hs + p[f].len;
		uint64_t sum = 0;
		unsigned nb = 0;

		while (q->count && q->buf[front(q, 0)].size < t->hs) {
			reap(q, 0);
			q->want.drop_too_big++;
		}
		while (nb < q->count && nb < maxb && sum < need)
			sum += q->buf[front(q, nb++)].size;
		if (sum >= need) {
			if ((int)delivered >= got)
				ck_abort_msg("frame %u (%u bytes) fits in %u posted buffers; "
					     "the device delivered %d frames", f, p[f].len,
					     nb, got);
			rx_expect_frame(t, &p[f], nb);
			delivered++;
			q->want.packets++;
			q->want.bytes += p[f].len;
		} else if (nb == maxb) {
			q->want.drop_too_big++;
		} else {
			q->want.drop_no_buffers += n - f;
			break;
		}
	}
	FAST_EQ(got, (int)delivered);
	q_check(q, used);
	return got;
}

/* 200 frames into 256 buffers, then more frames than buffers, then the
 * ring again from its start (the next lap of a packed ring), with frames
 * of several buffers crossing batch ends. */
START_TEST(rx_burst_beyond_batch)
{
	struct t *t = t_up(_i & 1, _i & 2, 256);
	struct vhu_net_pkt p[200];

	for (unsigned i = 0; i < 256; i++)
		ck_assert(rx_post(t, i, 2048, 1, i % 2));
	vhu_fe_ring_publish(t->rx.r);
	for (unsigned f = 0; f < 200; f++)
		p[f] = pkt(t, 1 + f * 997 % (2048 - 12));
	ck_assert_int_eq(rx_burst(t, p, 200), 200);
	ck_assert_int_eq(rx_burst(t, p, 100), 56);
	ck_assert_uint_eq(t->rx.want.drop_no_buffers, 44);
	ck_assert_int_eq(rx_burst(t, p, 10), 0);
	/* 128 buffers of 1000 bytes as two-piece chains: the whole ring */
	for (unsigned i = 0; i < 128; i++)
		ck_assert(rx_post(t, i, 1000, 2, false));
	vhu_fe_ring_publish(t->rx.r);
	for (unsigned f = 0; f < 50; f++)
		p[f] = pkt(t, t->mrg ? 2500 : 900); /* 3 buffers, or 1 */
	ck_assert_int_eq(rx_burst(t, p, 50), t->mrg ? 42 : 50);
	ck_assert_uint_eq(t->rx.used, 256 + (t->mrg ? 126 : 50));
	t_down(t);
}
END_TEST

/* Mergeable frames that need more buffers than the batch has left take
 * them contiguously from the next; one needing exactly 64 is delivered,
 * one needing 65 dropped with nothing used. */
START_TEST(rx_frame_across_batch_end)
{
	struct t *t = t_up(_i & 1, true, 512);
	struct vhu_net_pkt p[70];

	for (unsigned i = 0; i < 200; i++)
		ck_assert(rx_post(t, i, 512, 1 + i % 3, i % 4 == 3));
	vhu_fe_ring_publish(t->rx.r);
	for (unsigned f = 0; f < 62; f++)
		p[f] = pkt(t, 100);
	p[62] = pkt(t, 1500);                /* 2 buffers left in the batch, needs 3 */
	p[63] = pkt(t, RX_BATCH * 512 - 12); /* 64 buffers, from mid-batch */
	p[64] = pkt(t, RX_BATCH * 512 - 11); /* 65: never fits */
	p[65] = pkt(t, 100);
	ck_assert_int_eq(rx_burst(t, p, 66), 65);
	ck_assert_uint_eq(t->rx.want.drop_too_big, 1);
	ck_assert_uint_eq(t->rx.used, 62 + 3 + 64 + 1);
	/* 70 left: use 60, then a 65-buffer frame with 10 posted: the device
	 * cannot tell it will never fit, so it waits like the frame after it */
	ck_assert_int_eq(rx_burst(t, p, 60), 60);
	p[0] = p[64];
	p[1] = p[65];
	ck_assert_int_eq(rx_burst(t, p, 2), 0);
	ck_assert_uint_eq(t->rx.want.drop_no_buffers, 2);
	t_down(t);
}
END_TEST

/* Buffers too small for the header (0..11 bytes) among the others,
 * including the last of a batch and the first of the next: each goes back
 * empty when a frame would start in it, and the frames all arrive; with
 * MRG_RXBUF one inside a frame carries its share. */
START_TEST(rx_tiny_buffers)
{
	struct t *t = t_up(_i & 1, _i & 2, 512);
	struct vhu_net_pkt p[MAX_FRAMES];
	unsigned tiny = 0, f;

	for (unsigned i = 0; i < 150; i++) {
		bool small = i % 5 == 1 || i == 63 || i == 64;

		tiny += small;
		ck_assert(rx_post(t, i, small ? i % 12 : 2048, 1 + i % 3, i % 7 == 0));
	}
	vhu_fe_ring_publish(t->rx.r);
	for (f = 0; f < 80; f++)
		p[f] = pkt(t, t->mrg && f % 3 == 2 ? 3000 : 1000);
	ck_assert_int_eq(rx_burst(t, p, 80), 80);
	/* Without MRG_RXBUF: 80 buffers and the 23 tiny ones before the
	 * last.  With it: 106 for the frames, 15 tiny ones where a frame
	 * would start (1, 6, .. 61, 63, 64), then 14 inside 3000-byte frames
	 * (66, 71, .. 131): buffers 63 and 64 shifted the frames. */
	ck_assert_uint_eq(tiny, 32);
	ck_assert_uint_eq(t->rx.used, t->mrg ? 106 + 15 + 14 : 80 + 23);
	ck_assert_uint_eq(t->rx.want.drop_too_big, t->mrg ? 15 : 23);
	t_down(t);
}
END_TEST

/* The guest posts too few buffers for a mergeable frame, then more: the
 * device must see the new ones although it gave the first back. */
START_TEST(rx_more_buffers_after_shortfall)
{
	struct t *t = t_up(_i & 1, true, 256);
	struct vhu_net_pkt p = pkt(t, 9000); /* 9 buffers of 1024 */

	for (unsigned i = 0; i < 5; i++)
		ck_assert(rx_post(t, i, 1024, 1, false));
	vhu_fe_ring_publish(t->rx.r);
	ck_assert_int_eq(rx_burst(t, &p, 1), 0);
	for (unsigned i = 5; i < 10; i++)
		ck_assert(rx_post(t, i, 1024, 1, false));
	vhu_fe_ring_publish(t->rx.r);
	ck_assert_msg(vhu_net_enqueue(t->rx.vq, &p, 1) == 1,
		      "10 buffers posted, the frame needs 9: not delivered");
	t_down(t);
}
END_TEST

/* Packed ring: a batch that wraps around the ring, two-descriptor chains
 * across the wrap, and buffers given back with the mark before the wrap
 * and after it. */
START_TEST(rx_rewind_across_wrap)
{
	struct t *t = t_up(true, _i & 1, 256);
	struct vhu_net_pkt p[200];
	unsigned i = 0;
	bool across = false;

	for (; i < 200; i++)
		ck_assert(rx_post(t, i, 1024, 1, false));
	vhu_fe_ring_publish(t->rx.r);
	for (unsigned f = 0; f < 200; f++)
		p[f] = pkt(t, 100);
	ck_assert_int_eq(rx_burst(t, p, MAX_FRAMES), MAX_FRAMES);
	ck_assert_int_eq(rx_burst(t, p, 200 - MAX_FRAMES), 200 - MAX_FRAMES);
	/* slots 200..255 then 0..: three pieces once, then two, so that a
	 * chain takes slots 255 and 0 */
	ck_assert_uint_eq(t->rx.r->next_avail, 200);
	ck_assert(rx_post(t, i++, 1024, 3, false));
	while (t->rx.r->num_free >= 2) {
		across |= t->rx.r->next_avail == 255;
		ck_assert(rx_post(t, i++ % POOL, 1024, 2, false));
	}
	ck_assert(across);
	vhu_fe_ring_publish(t->rx.r);
	for (unsigned f = 0; f < MAX_FRAMES; f++)
		p[f] = pkt(t, f % 4 == 3 && t->mrg ? 1500 : 500);
	ck_assert_int_eq(rx_burst(t, p, 10), 10);  /* mark before the wrap */
	ck_assert_int_eq(rx_burst(t, p, 40), 40);  /* ... across it */
	ck_assert_int_eq(rx_burst(t, p, 20), 20);  /* ... after it */
	ck_assert_int_eq(rx_burst(t, p, MAX_FRAMES), t->mrg ? 32 : 57);
	t_down(t);
}
END_TEST

static uint32_t rx_rand_size(struct t *t)
{
	uint32_t r = rnd(t, 100);

	if (r < 6)
		return rnd(t, 12); /* too small for the header */
	if (r < 80)
		return t->mrg ? 12 + rnd(t, 1500) : 1536 + rnd(t, BUF_CAP - 1535);
	return 12 + rnd(t, BUF_CAP - 11);
}

static uint32_t rx_rand_len(struct t *t)
{
	uint32_t r = rnd(t, 100);

	if (r < 80)
		return rnd(t, 1500);
	if (!t->mrg)
		return 1500 + rnd(t, BUF_CAP - 1500); /* may not fit */
	if (r < 97)
		return rnd(t, 9000);
	return 30000 + rnd(t, 30000); /* often more than 64 buffers */
}

/* Bursts of random frames, the guest posting random buffers (or none)
 * between them: often fewer than the frames need. */
START_TEST(rx_random)
{
	/* a packed ring whose size is not a power of 2 */
	struct t *t = t_up_order(_i & 1, _i & 2, _i & 1 ? 250 : 256, _i & 4);
	struct vhu_net_pkt p[MAX_FRAMES];
	unsigned nb = bursts(2500);

	for (unsigned b = 0; b < nb; b++) {
		unsigned nbuf = rnd(t, 4) ? rnd(t, 48) : 0;
		unsigned n = rnd(t, 4) ? rnd(t, 24) : rnd(t, MAX_FRAMES);

		for (unsigned k = 0; k < nbuf; k++) {
			int i = pick(t, &t->rx);
			uint32_t size = rx_rand_size(t);
			unsigned pieces = 1 + rnd(t, 3);
			bool ind = !rnd(t, 4);

			if (i < 0 || !rx_post(t, (unsigned)i, size, pieces, ind))
				break;
		}
		vhu_fe_ring_publish(t->rx.r);
		for (unsigned f = 0; f < n; f++)
			p[f] = pkt(t, rx_rand_len(t));
		rx_burst(t, p, n);
	}
	/* it did go round: every kind of drop, many laps */
	ck_assert_uint_gt(t->rx.want.drop_no_buffers, 0);
	ck_assert_uint_gt(t->rx.want.drop_too_big, 0);
	ck_assert_uint_gt(t->rx.used, 20u * POOL * nb / 2500);
	/* every RX buffer has its own used entry: the guest needs its length */
	ck_assert_uint_eq(t->rx.r->used_skipped, 0);
	t_down(t);
}
END_TEST

/* Buffers that already hold a header, as recycled buffers do: the one
 * the frame needs, or one a byte away from it (num_buffers of a merged
 * frame, a field of an offload).  The guest must read each frame's own
 * header either way: the device may skip writing what is there already,
 * never what is not. */
START_TEST(rx_stale_headers)
{
	struct t *t = t_up(_i & 1, _i & 2, 256);
	struct vhu_net_pkt p[64];
	unsigned exact = 0, off_by_one = 0;

	for (unsigned lap = 0; lap < 8; lap++) {
		for (unsigned k = 0; k < 64; k++) {
			/* no offloads, one buffer: zero but num_buffers 1 */
			uint8_t h[12] = { [10] = 1 };
			unsigned at = (k + lap) % 13; /* 12: leave it right */
			int i = pick(t, &t->rx);

			if (i < 0)
				break;
			if (at < 12)
				h[at] ^= (uint8_t)(1u << (k % 8));
			ck_assert(rx_post(t, (unsigned)i, 1024, 1, k % 3 == 0));
			ck_assert_int_eq(vhu_fe_mem_write(t->e.fe, t->rx.buf[i].gpa,
							  h, 12), 0);
			if (at < 12)
				off_by_one++;
			else
				exact++;
		}
		vhu_fe_ring_publish(t->rx.r);
		for (unsigned f = 0; f < 64; f++)
			p[f] = pkt(t, t->mrg && f % 4 == 3 ? 1500 : 60);
		ck_assert_int_gt(rx_burst(t, p, 64), 0);
	}
	ck_assert_uint_gt(exact, 30);
	ck_assert_uint_gt(off_by_one, 400);
	t_down(t);
}
END_TEST

/* ---- TX ---- */

enum { TX_ONE, TX_HDR_APART, TX_HDR_SPLIT, TX_INDIRECT, TX_LAYOUTS };

/* Post frame @m in TX buffer @i: header and frame in one piece, header
 * apart, header itself in two pieces, or through the indirect table.
 * @bad: metadata the device must refuse; @short_hdr: 8 bytes only. */
static bool tx_post(struct t *t, unsigned i, const struct vhu_net_pkt *m,
		    bool bad, bool short_hdr, unsigned layout)
{
	struct gbuf *g = &t->tx.buf[i];
	struct virtio_net_hdr_v1 h = {
		.flags = m->flags, .gso_type = m->gso_type, .hdr_len = m->hdr_len,
		.gso_size = m->gso_size, .csum_start = m->csum_start,
		.csum_offset = m->csum_offset,
	};
	static const uint8_t junk[SLOT] = { [0 ... SLOT - 1] = JUNK };
	uint32_t size = short_hdr ? 8 : 12 + m->len, cuts[2];
	unsigned n = 0;

	if (layout == TX_HDR_SPLIT)
		cuts[n++] = 5;
	if (layout != TX_ONE && size > 12)
		cuts[n++] = 12;
	if (!post(&t->tx, i, size, cuts, n, layout == TX_INDIRECT))
		return false;
	FAST_EQ(vhu_fe_mem_write(t->e.fe, g->gpa, junk, size + n * GAP), 0);
	gcopy(&t->e, g, 0, &h, short_hdr ? 8 : 12, true);
	gcopy(&t->e, g, 12, (void *)m->data, short_hdr ? 0 : m->len, true);
	g->bad = bad;
	g->meta = *m;
	return true;
}

/* Metadata for a frame of @len bytes: none, valid offloads, or (*@bad)
 * something the device must refuse. */
static struct vhu_net_pkt tx_meta(struct t *t, uint32_t len, bool *bad)
{
	struct vhu_net_pkt m = pkt(t, len);

	*bad = false;
	switch (rnd(t, 12)) {
	case 0:
		if (len >= 18) {
			m.flags = VHU_NET_HDR_F_NEEDS_CSUM;
			m.csum_start = (uint16_t)rnd(t, len - 17);
			m.csum_offset = 16;
		}
		break;
	case 1:
		m.gso_type = VHU_NET_GSO_TCPV4;
		m.gso_size = (uint16_t)(1 + rnd(t, 9000));
		m.hdr_len = 54;
		break;
	case 2:
		m.flags = VHU_NET_HDR_F_DATA_VALID;
		break;
	case 3:
		m.flags = 0x80;
		*bad = true;
		break;
	case 4:
		m.flags = VHU_NET_HDR_F_NEEDS_CSUM;
		m.csum_start = (uint16_t)len;
		m.csum_offset = 0;
		*bad = true;
		break;
	case 5:
		m.gso_type = VHU_NET_GSO_TCPV4;
		*bad = true; /* gso_size 0 */
		break;
	case 6:
		m.gso_type = VHU_NET_GSO_UDP; /* never offered */
		m.gso_size = 1000;
		*bad = true;
		break;
	}
	return m;
}

/*
 * vhu_net_dequeue(@n) and the model: frames are taken in ring order until
 * @n are good; each one taken is used (length 0) whether it is good or
 * dropped: header shorter than 12 bytes or refused metadata (bad header),
 * frame longer than TX_BUF (too big).
 */
static int tx_burst(struct t *t, unsigned n)
{
	struct q *q = &t->tx;
	struct vhu_net_pkt pk[MAX_FRAMES];
	void *bufs[MAX_FRAMES];
	uint64_t used = q->used;
	unsigned k = 0;
	int got;

	FAST(n <= MAX_FRAMES);
	for (unsigned i = 0; i < MAX_FRAMES; i++)
		bufs[i] = txbuf[i];
	got = vhu_net_dequeue(q->vq, pk, bufs, TX_BUF, n);
	while (k < n && q->count) {
		struct gbuf *g = reap(q, 0);
		const struct vhu_net_pkt *m = &g->meta;

		if (g->size < t->hs || (g->bad && m->len <= TX_BUF)) {
			q->want.drop_bad_header++;
		} else if (m->len > TX_BUF) {
			q->want.drop_too_big++;
		} else {
			FAST((int)k < got);
			FAST(pk[k].data == txbuf[k]);
			FAST_EQ(pk[k].len, m->len);
			FAST_EQ(memcmp(txbuf[k], m->data, m->len), 0);
			FAST(pk[k].flags == m->flags && pk[k].gso_type == m->gso_type &&
				  pk[k].hdr_len == m->hdr_len && pk[k].gso_size == m->gso_size &&
				  pk[k].csum_start == m->csum_start &&
				  pk[k].csum_offset == m->csum_offset);
			k++;
			q->want.packets++;
			q->want.bytes += m->len;
		}
	}
	FAST_EQ(got, (int)k);
	q_check(q, used);
	return got;
}

/* With IN_ORDER, a packed ring's TX buffers come back a batch per used
 * descriptor (the guest reaped buffers no entry named); split rings and
 * rings without it name every buffer. */
static void tx_check_in_order(struct t *t, bool in_order)
{
	if (in_order && t->e.packed)
		ck_assert_uint_gt(t->tx.r->used_skipped, 0);
	else
		ck_assert_uint_eq(t->tx.r->used_skipped, 0);
}

/* More than 32 frames; fewer asked for than there are; frames with bad
 * headers and too big inside batches; every layout, buffer 0 across a
 * region boundary. */
START_TEST(tx_burst_beyond_batch)
{
	struct t *t = t_up_order(_i & 1, true, 256, _i & 2);
	unsigned i;

	for (i = 0; i < 100; i++) {
		struct vhu_net_pkt m = pkt(t, 60 + i * 13);

		ck_assert(tx_post(t, i, &m, false, false, i % TX_LAYOUTS));
	}
	vhu_fe_ring_publish(t->tx.r);
	ck_assert_int_eq(tx_burst(t, 40), 40);
	ck_assert_uint_eq(t->tx.used, 40);
	ck_assert_int_eq(tx_burst(t, MAX_FRAMES), 60);
	/* 90 frames: every third with a bad header (one in three of those
	 * shorter than the header), every seventh too big */
	for (i = 0; i < 90; i++) {
		bool bad = i % 3 == 1;
		struct vhu_net_pkt m = pkt(t, i % 7 == 6 ? TX_BUF + 1 + i : 100 + i);

		if (bad)
			m.flags = 0x40;
		ck_assert(tx_post(t, i, &m, bad, bad && i % 9 == 1, i % TX_LAYOUTS));
	}
	vhu_fe_ring_publish(t->tx.r);
	ck_assert_int_eq(tx_burst(t, 20), 20);
	ck_assert_uint_lt(t->tx.used, 100 + 40);
	ck_assert_int_eq(tx_burst(t, MAX_FRAMES), 52 - 20);
	/* 3 of the bad ones are too big too: the size is checked first */
	ck_assert_uint_eq(t->tx.want.packets, 100 + 52);
	ck_assert_uint_eq(t->tx.want.drop_bad_header, 27);
	ck_assert_uint_eq(t->tx.want.drop_too_big, 11);
	ck_assert_uint_eq(t->tx.used, 190);
	tx_check_in_order(t, _i & 2);
	t_down(t);
}
END_TEST

/* Bursts asking for random numbers of frames, the guest posting random
 * frames (good, refused, too big; every layout) between them. */
START_TEST(tx_random)
{
	struct t *t = t_up_order(_i & 1, true, _i & 1 ? 250 : 256, _i & 2);
	unsigned nb = bursts(2500);

	for (unsigned b = 0; b < nb; b++) {
		unsigned nf = rnd(t, 4) ? rnd(t, 48) : 0;

		for (unsigned k = 0; k < nf; k++) {
			int i = pick(t, &t->tx);
			bool bad;
			struct vhu_net_pkt m = tx_meta(t, rnd(t, 2000), &bad);
			bool short_hdr = !rnd(t, 40);

			if (i < 0 || !tx_post(t, (unsigned)i, &m, bad || short_hdr, short_hdr,
					      rnd(t, TX_LAYOUTS)))
				break;
		}
		vhu_fe_ring_publish(t->tx.r);
		tx_burst(t, rnd(t, MAX_FRAMES));
	}
	ck_assert_uint_gt(t->tx.want.drop_bad_header, 0);
	ck_assert_uint_gt(t->tx.want.drop_too_big, 0);
	ck_assert_uint_gt(t->tx.used, 10u * POOL * nb / 2500);
	tx_check_in_order(t, _i & 2);
	t_down(t);
}
END_TEST

/* The last-region hint does not outlive a memory table: a region the
 * last burst used goes away and comes back (a new mapping).  A stale hint
 * is a use after free: ASan and valgrind see it. */
START_TEST(hint_after_mem_change)
{
	struct t *t = t_up(_i & 1, true, 256);
	struct vhu_net_pkt p = pkt(t, 1000);

	ck_assert(rx_post(t, 3, 2048, 1, false)); /* region 2 */
	vhu_fe_ring_publish(t->rx.r);
	ck_assert_int_eq(rx_burst(t, &p, 1), 1);
	ck_assert_int_eq(vhu_fe_rem_mem_reg(t->e.fe, 2, false), 0);
	ck_assert_int_eq(vhu_fe_add_mem_reg(t->e.fe, 2), 0);
	fe_sync(&t->e);
	ck_assert(rx_post(t, 5, 2048, 1, false)); /* region 2 again */
	vhu_fe_ring_publish(t->rx.r);
	ck_assert_int_eq(rx_burst(t, &p, 1), 1);
	t_down(t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("net_batch");
	TCase *tc = tcase_create("net_batch");

	tcase_set_timeout(tc, 120);
	/* _i: bit 0 packed, bit 1 MRG_RXBUF */
	tcase_add_loop_test(tc, rx_burst_beyond_batch, 0, 4);
	tcase_add_loop_test(tc, rx_frame_across_batch_end, 0, 2);
	tcase_add_loop_test(tc, rx_tiny_buffers, 0, 4);
	tcase_add_loop_test(tc, rx_more_buffers_after_shortfall, 0, 2);
	tcase_add_loop_test(tc, rx_rewind_across_wrap, 0, 2);
	tcase_add_loop_test(tc, rx_random, 0, 8);
	tcase_add_loop_test(tc, rx_stale_headers, 0, 4);
	tcase_add_loop_test(tc, tx_burst_beyond_batch, 0, 4);
	tcase_add_loop_test(tc, tx_random, 0, 4);
	tcase_add_loop_test(tc, hint_after_mem_change, 0, 2);
	suite_add_tcase(s, tc);
	return tu_run_suite(s);
}
