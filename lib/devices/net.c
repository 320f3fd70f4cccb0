/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-net frames over virtqueues: headers, mergeable RX buffers,
 * offload metadata, per-queue counters. */
#include <vhu/net.h>

#include <string.h>

#include "devices/net_int.h"

/* Segments a single guest buffer may use here; Linux guests use at most
 * MAX_SKB_FRAGS + 2. */
#define NET_MAX_SEGS 256
/* Guest buffers one mergeable frame may fill (64 KiB in 1.5 KiB buffers
 * needs 44). */
#define NET_MAX_BUFS 64

uint32_t vhu_net_hdr_size(const struct vhu_vq *vq)
{
	/* The queue's own copy, taken when it started: the device's field is
	 * the control thread's and may change under a running burst. */
	uint64_t f = vq->features;

	return (f & (VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_NET_F_MRG_RXBUF))) ? 12 : 10;
}

/* Copy @len bytes from @src into the writable segments of @r, starting
 * @off bytes in. */
static void copy_to_req(const struct vhu_req *r, uint32_t off, const void *src,
			uint32_t len)
{
	const uint8_t *s = src;

	for (unsigned i = r->nr_out; len && i < (unsigned)(r->nr_out + r->nr_in); i++) {
		const struct vhu_seg *g = &r->segs[i];

		if (off >= g->len) {
			off -= g->len;
			continue;
		}
		uint32_t n = g->len - off < len ? g->len - off : len;

		memcpy((uint8_t *)g->addr + off, s, n);
		s += n;
		len -= n;
		off = 0;
	}
}

/* Copy @len bytes out of the readable segments of @r from @off. */
static void copy_from_req(const struct vhu_req *r, uint32_t off, void *dst,
			  uint32_t len)
{
	uint8_t *d = dst;

	for (unsigned i = 0; len && i < r->nr_out; i++) {
		const struct vhu_seg *g = &r->segs[i];

		if (off >= g->len) {
			off -= g->len;
			continue;
		}
		uint32_t n = g->len - off < len ? g->len - off : len;

		memcpy(d, (const uint8_t *)g->addr + off, n);
		d += n;
		len -= n;
		off = 0;
	}
}

/*
 * Guest RX buffers, popped a batch at a time.  reqs[done, head) are used
 * (written[] says how much) but not yet returned, reqs[head, n) are still
 * free; `mark` is the ring position of reqs[0], from which release finds
 * where reqs[head] starts, to give the free ones back.  One pop and one
 * used-index store per batch rather than per frame.
 */
#define NET_RX_BATCH NET_MAX_BUFS
struct rx_bufs {
	unsigned done, head, n;
	struct vhu_vq_mark mark;
	struct vhu_req reqs[NET_RX_BATCH];
	uint32_t written[NET_RX_BATCH];
	struct vhu_seg segs[NET_MAX_SEGS * 4];
};

/* Return the used buffers to the guest, and give back the free ones. */
static void rx_bufs_release(struct vhu_vq *vq, struct rx_bufs *b)
{
	if (b->head > b->done)
		vhu_vq_push(vq, &b->reqs[b->done], &b->written[b->done],
			    b->head - b->done);
	if (b->n > b->head) {
		struct vhu_vq_mark m = b->mark;

		for (unsigned i = 0; i < b->head; i++)
			m = vhu_vq_mark_next(vq, m, b->reqs[i].ndesc);
		vhu_vq_rewind(vq, m, b->n - b->head);
	}
	b->done = b->head = b->n = 0;
}

/* Release, then pop up to @want buffers.  0 or -EIO. */
static int rx_bufs_fill(struct vhu_vq *vq, struct rx_bufs *b, unsigned want)
{
	int rc;

	rx_bufs_release(vq, b);
	b->mark = vhu_vq_mark(vq);
	rc = vhu_vq_pop(vq, b->reqs, want, b->segs,
			sizeof(b->segs) / sizeof(b->segs[0]));
	if (rc == -ENOBUFS)
		return vhu_vq_fail(vq, "RX buffer of more than %zu segments",
				   sizeof(b->segs) / sizeof(b->segs[0]));
	if (rc < 0)
		return rc;
	b->n = (unsigned)rc;
	return 0;
}

/*
 * Buffers for one frame of @need bytes (header of @hs included) at
 * reqs[head]: one buffer, or with @mrg as many as it takes.  Returns how
 * many, 0 when the guest has not posted enough, -1 when the frame cannot
 * fit, -EIO on a broken ring.  @frames: frames left in the burst, to size
 * the next pop.
 */
static int rx_bufs_get(struct vhu_vq *vq, struct rx_bufs *b, uint32_t need,
		       uint32_t hs, bool mrg, unsigned frames)
{
	unsigned max_bufs = mrg ? NET_MAX_BUFS : 1;

	/* The common case: the next buffer holds the whole frame. */
	if (likely(b->head < b->n && b->reqs[b->head].in_len >= need))
		return 1;
	for (;;) {
		unsigned nb = 0, free;
		uint64_t got = 0;
		int rc;

		/* A buffer too small for the header would block every frame:
		 * hand it back empty. */
		while (b->head < b->n && b->reqs[b->head].in_len < hs) {
			b->written[b->head++] = 0;
			count(vq, NS_TOO_BIG, 1);
		}
		while (b->head + nb < b->n && got < need && nb < max_bufs)
			got += b->reqs[b->head + nb++].in_len;
		if (got >= need)
			return (int)nb;
		if (nb == max_bufs)
			return -1;
		free = b->n - b->head;
		if (b->head == 0 && b->n == NET_RX_BATCH)
			return -1; /* more buffers than one batch holds */
		rc = rx_bufs_fill(vq, b, mrg ? NET_RX_BATCH :
					 frames < NET_RX_BATCH ? frames : NET_RX_BATCH);
		if (rc)
			return rc;
		if (b->n <= free)
			return 0; /* the guest posted nothing more */
	}
}

/* The frame of @p after the header, into the @nb buffers at @r. */
static void rx_copy_frame(const struct vhu_net_pkt *p, struct vhu_req *r,
			  uint32_t *written, int nb, uint32_t hs)
{
	const struct vhu_seg *g = &r[0].segs[r[0].nr_out];

	/* One segment holds header and frame: the common case. */
	if (likely(r[0].nr_in && g->len >= hs + p->len)) {
		copy_small((uint8_t *)g->addr + hs, p->data, p->len);
		written[0] = hs + p->len;
		return;
	}
	uint32_t left = p->len;

	for (int b = 0; b < nb; b++) {
		uint32_t room = r[b].in_len - (b == 0 ? hs : 0);
		uint32_t take = left < room ? left : room;

		copy_to_req(&r[b], b == 0 ? hs : 0,
			    (const uint8_t *)p->data + (p->len - left), take);
		written[b] = take + (b == 0 ? hs : 0);
		left -= take;
	}
}

int vhu_net_enqueue(struct vhu_vq *vq, const struct vhu_net_pkt *pkts, unsigned n)
{
	struct rx_bufs b;
	unsigned st = vhu_vq_begin(vq), delivered = 0, i;
	uint64_t bytes = 0;
	uint32_t hs;
	bool mrg;

	/* Inflight tracking is for devices that can replay a request; the
	 * net paths give buffers back untracked (vhu_dev_opts.inflight). */
	if ((st & (VHU_VQ_RUNNING | VHU_VQ_ENABLED)) != (VHU_VQ_RUNNING | VHU_VQ_ENABLED) ||
	    unlikely(vq->ifl)) {
		count(vq, st & VHU_VQ_BROKEN ? NS_RING_ERROR : NS_NOT_READY, n);
		vhu_vq_end(vq);
		return 0;
	}
	if (!vq_has_avail(vq)) { /* the usual poll of an idle guest */
		count(vq, NS_NO_BUFFERS, n);
		vhu_vq_end(vq);
		return 0;
	}
	b.done = b.head = b.n = 0;
	hs = vhu_net_hdr_size(vq);
	mrg = has(vq, VHU_NET_F_MRG_RXBUF);
	/* Frames that fit one buffer each go straight in (net_packed.c). */
	if (vq->packed) {
		bool empty;

		i = vhu_net_rx_packed(vq, pkts, n, hs, &bytes, &empty);
		delivered = i;
		if (empty && i < n) {
			count(vq, NS_NO_BUFFERS, n - i);
			i = n; /* nothing more for the general path to find */
		}
	} else {
		i = 0;
	}
	for (; i < n; i++) {
		const struct vhu_net_pkt *p = &pkts[i];
		struct virtio_net_hdr_v1 h;
		const struct vhu_seg *g;
		struct vhu_req *r;
		int nb;

		if (!rx_meta_ok(vq, p) || p->len > UINT32_MAX - hs) {
			count(vq, NS_BAD_HEADER, 1);
			continue;
		}
		nb = rx_bufs_get(vq, &b, hs + p->len, hs, mrg, n - i);
		if (nb == -EIO) {
			count(vq, NS_RING_ERROR, n - i);
			break;
		}
		if (nb == 0) {
			count(vq, NS_NO_BUFFERS, n - i); /* later frames neither */
			break;
		}
		if (nb < 0) {
			count(vq, NS_TOO_BIG, 1);
			continue;
		}
		r = &b.reqs[b.head];
		g = &r->segs[r->nr_out];
		/* The header, then the frame, across the buffers in order. */
		if (likely(nb == 1 && hs == 12 && g->len >= hs &&
			   (p->flags | p->gso_type) == 0)) {
			put_hdr(g->addr, hdr_plain_12, 12);
		} else {
			h = rx_hdr(p, (uint16_t)nb);
			if (g->len >= hs)
				put_hdr(g->addr, &h, hs);
			else
				copy_to_req(r, 0, &h, hs);
		}
		rx_copy_frame(p, r, &b.written[b.head], nb, hs);
		b.head += (unsigned)nb;
		delivered++;
		bytes += p->len;
	}
	rx_bufs_release(vq, &b);
	count(vq, NS_PACKETS, delivered);
	count(vq, NS_BYTES, bytes);
	vhu_vq_notify(vq); /* once, if anything was used */
	vhu_vq_end(vq);
	return (int)delivered;
}

/* Requests popped at once by vhu_net_dequeue(). */
#define NET_TX_BATCH 32

/* Take TX request @r: 1 and the frame in @pkt/@buf, or 0 (dropped and
 * counted). */
static int tx_take(struct vhu_vq *vq, const struct vhu_req *r, uint32_t hs,
		   struct vhu_net_pkt *pkt, void *buf, uint32_t buf_len)
{
	struct virtio_net_hdr_v1 h = { 0 };
	const struct vhu_seg *g = &r->segs[0];
	uint32_t flen;

	if (unlikely(r->out_len < hs)) {
		count(vq, NS_BAD_HEADER, 1);
		return 0;
	}
	/* The header may be split over any number of descriptors. */
	if (likely(g->len >= hs))
		copy_hdr(&h, g->addr, hs);
	else
		copy_from_req(r, 0, &h, hs);
	flen = r->out_len - hs;
	if (unlikely(flen > buf_len)) {
		count(vq, NS_TOO_BIG, 1);
		return 0;
	}
	if (unlikely(!tx_meta_ok(vq, &h, flen))) {
		count(vq, NS_BAD_HEADER, 1);
		return 0;
	}
	if (likely(g->len == r->out_len)) /* header and frame in one piece */
		copy_small(buf, (const uint8_t *)g->addr + hs, flen);
	else
		copy_from_req(r, hs, buf, flen);
	*pkt = tx_pkt(buf, flen, &h);
	return 1;
}

int vhu_net_dequeue(struct vhu_vq *vq, struct vhu_net_pkt *pkts,
		    void *const *bufs, uint32_t buf_len, unsigned n)
{
	struct vhu_req reqs[NET_TX_BATCH];
	struct vhu_seg segs[NET_MAX_SEGS];
	unsigned st = vhu_vq_begin(vq), got = 0, budget;
	uint64_t bytes = 0;
	uint32_t hs;
	int rc = 0;

	if (!(st & VHU_VQ_RUNNING)) {
		vhu_vq_end(vq);
		return st & VHU_VQ_BROKEN ? -EIO : 0;
	}
	if (unlikely(vq->ifl)) { /* as in vhu_net_enqueue() */
		vhu_vq_end(vq);
		return -EOPNOTSUPP;
	}
	if (!vq_has_avail(vq) || n == 0) { /* the usual poll of an idle guest */
		vhu_vq_end(vq);
		return 0;
	}
	hs = vhu_net_hdr_size(vq);
	/* Frames dropped do not count towards @n: bound the work by a ring's
	 * worth of requests, or a guest posting only bad frames keeps us. */
	budget = vhu_vq_size(vq);
	/* Frames in one descriptor each come straight out (net_packed.c). */
	if (vq->packed && (st & VHU_VQ_ENABLED)) {
		bool empty;

		got = vhu_net_tx_packed(vq, pkts, bufs, buf_len, n, hs, &bytes, &empty);
		budget = empty ? 0 : budget - got;
	}
	while (got < n && budget) {
		unsigned want = n - got < NET_TX_BATCH ? n - got : NET_TX_BATCH;

		if (want > budget)
			want = budget;

		rc = vhu_vq_pop(vq, reqs, want, segs, NET_MAX_SEGS);
		if (rc <= 0) {
			if (rc == -ENOBUFS) /* a frame in more than 256 pieces */
				rc = vhu_vq_fail(vq, "TX chain of more than %d segments",
						 NET_MAX_SEGS);
			if (rc == -EIO)
				count(vq, NS_RING_ERROR, 1);
			break;
		}
		/* A disabled queue discards what it takes (the state is the
		 * burst's: one look). */
		if (unlikely(!(st & VHU_VQ_ENABLED)))
			count(vq, NS_NOT_READY, (uint64_t)rc);
		for (int i = 0; (st & VHU_VQ_ENABLED) && i < rc; i++) {
			/* The guest wrote these frames on another core: start
			 * fetching the next one while this one is copied. */
			if (i + 1 < rc && reqs[i + 1].nr_out)
				__builtin_prefetch(reqs[i + 1].segs[0].addr);
			if (tx_take(vq, &reqs[i], hs, &pkts[got], bufs[got], buf_len))
				bytes += pkts[got++].len;
		}
		vhu_vq_push(vq, reqs, NULL, (unsigned)rc);
		budget -= (unsigned)rc;
	}
	count(vq, NS_PACKETS, got);
	count(vq, NS_BYTES, bytes);
	vhu_vq_notify(vq);
	vhu_vq_end(vq);
	return got ? (int)got : (rc == -EIO ? -EIO : 0);
}

void vhu_net_stats(const struct vhu_vq *vq, struct vhu_net_stats *st)
{
	struct vhu_vq *v = (struct vhu_vq *)vq;
	uint64_t *out = (uint64_t *)st;

	_Static_assert(sizeof(*st) == 7 * sizeof(uint64_t), "net stats layout");
	for (int i = 0; i < 7; i++)
		out[i] = atomic_load_explicit(&v->net_st[i], memory_order_relaxed);
}
