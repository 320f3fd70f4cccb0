/* SPDX-License-Identifier: BSD-3-Clause */
/* virtio-net frames over virtqueues: headers, mergeable RX buffers,
 * offload metadata, per-queue counters. */
#include <vhu/net.h>

#include <string.h>

#include "vq.h"

/* Segments a single guest buffer may use here; Linux guests use at most
 * MAX_SKB_FRAGS + 2. */
#define NET_MAX_SEGS 256
/* Guest buffers one mergeable frame may fill (64 KiB in 1.5 KiB buffers
 * needs 44). */
#define NET_MAX_BUFS 64

enum { NS_PACKETS, NS_BYTES, NS_NO_BUFFERS, NS_TOO_BIG, NS_BAD_HEADER,
       NS_NOT_READY, NS_RING_ERROR };

struct virtio_net_hdr_v1 {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers; /* MRG_RXBUF or VERSION_1 only */
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_net_hdr_v1) == 12, "virtio_net_hdr_v1");

static inline void count(struct vhu_vq *vq, int which, uint64_t n)
{
	atomic_fetch_add_explicit(&vq->net_st[which], n, memory_order_relaxed);
}

static inline bool has(const struct vhu_vq *vq, unsigned bit)
{
	return vq->features & VHU_BIT(bit);
}

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

/* Is the metadata of a frame for the guest allowed by its features? */
static bool rx_meta_ok(const struct vhu_vq *vq, const struct vhu_net_pkt *p)
{
	uint8_t gso = p->gso_type & (uint8_t)~VHU_NET_GSO_ECN;

	if (p->flags & ~(VHU_NET_HDR_F_NEEDS_CSUM | VHU_NET_HDR_F_DATA_VALID))
		return false;
	if ((p->flags & VHU_NET_HDR_F_NEEDS_CSUM) && !has(vq, VHU_NET_F_GUEST_CSUM))
		return false;
	if (p->gso_type == VHU_NET_GSO_NONE)
		return true;
	if (p->gso_size == 0 || ((p->gso_type & VHU_NET_GSO_ECN) &&
				 !has(vq, VHU_NET_F_GUEST_ECN)))
		return false;
	return (gso == VHU_NET_GSO_TCPV4 && has(vq, VHU_NET_F_GUEST_TSO4)) ||
	       (gso == VHU_NET_GSO_TCPV6 && has(vq, VHU_NET_F_GUEST_TSO6)) ||
	       (gso == VHU_NET_GSO_UDP && has(vq, VHU_NET_F_GUEST_UFO));
}

/* Is the header the guest sent allowed, and consistent with the frame? */
static bool tx_meta_ok(const struct vhu_vq *vq, const struct virtio_net_hdr_v1 *h,
		       uint32_t len)
{
	uint8_t gso = h->gso_type & (uint8_t)~VHU_NET_GSO_ECN;

	if (h->flags & ~(VHU_NET_HDR_F_NEEDS_CSUM | VHU_NET_HDR_F_DATA_VALID))
		return false;
	if (h->flags & VHU_NET_HDR_F_NEEDS_CSUM) {
		uint32_t start = vhu_le16(h->csum_start), off = vhu_le16(h->csum_offset);

		if (!has(vq, VHU_NET_F_CSUM) || start + off + 2 > len)
			return false;
	}
	if (h->gso_type == VHU_NET_GSO_NONE)
		return true;
	if (vhu_le16(h->gso_size) == 0 || ((h->gso_type & VHU_NET_GSO_ECN) &&
					   !has(vq, VHU_NET_F_HOST_ECN)))
		return false;
	return (gso == VHU_NET_GSO_TCPV4 && has(vq, VHU_NET_F_HOST_TSO4)) ||
	       (gso == VHU_NET_GSO_TCPV6 && has(vq, VHU_NET_F_HOST_TSO6)) ||
	       (gso == VHU_NET_GSO_UDP && has(vq, VHU_NET_F_HOST_UFO));
}

/*
 * Take guest buffers for one frame of @need bytes (header of @hs
 * included): one buffer, or with MRG_RXBUF as many as it takes.  Returns
 * the number of buffers, 0 when the guest has not posted enough (nothing
 * is taken), -1 when the frame does not fit (nothing taken), -EIO on a
 * broken ring.
 */
static int rx_reserve(struct vhu_vq *vq, uint32_t need, uint32_t hs, bool mrg,
		      struct vhu_req *reqs, struct vhu_seg *segs, unsigned nsegs)
{
	struct vhu_vq_mark mark = vhu_vq_mark(vq);
	unsigned nb = 0, used_segs = 0;
	uint64_t got = 0;

	while (got < need) {
		int rc;

		if (nb == (mrg ? NET_MAX_BUFS : 1)) {
			vhu_vq_rewind(vq, mark, nb);
			return -1;
		}
		rc = vhu_vq_pop(vq, &reqs[nb], 1, segs + used_segs, nsegs - used_segs);
		if (rc == -ENOBUFS && nb == 0)
			return vhu_vq_fail(vq, "RX buffer of more than %u segments",
					   nsegs);
		if (rc == -EIO)
			return rc;
		if (rc <= 0) { /* none left, or no room for more segments */
			vhu_vq_rewind(vq, mark, nb);
			return rc == 0 ? 0 : -1;
		}
		if (nb == 0 && reqs[0].in_len < hs) {
			/* Not even the header fits: hand the buffer back empty
			 * rather than let it block every frame. */
			vhu_vq_push(vq, &reqs[0], NULL, 1);
			count(vq, NS_TOO_BIG, 1);
			mark = vhu_vq_mark(vq);
			continue;
		}
		used_segs += (unsigned)(reqs[nb].nr_out + reqs[nb].nr_in);
		got += reqs[nb].in_len;
		nb++;
	}
	return (int)nb;
}

int vhu_net_enqueue(struct vhu_vq *vq, const struct vhu_net_pkt *pkts, unsigned n)
{
	struct vhu_req reqs[NET_MAX_BUFS];
	struct vhu_seg segs[NET_MAX_SEGS * 4];
	uint32_t written[NET_MAX_BUFS];
	unsigned st = vhu_vq_begin(vq), delivered = 0, i;
	uint32_t hs;
	bool mrg;

	if ((st & (VHU_VQ_RUNNING | VHU_VQ_ENABLED)) != (VHU_VQ_RUNNING | VHU_VQ_ENABLED)) {
		count(vq, st & VHU_VQ_BROKEN ? NS_RING_ERROR : NS_NOT_READY, n);
		vhu_vq_end(vq);
		return 0;
	}
	hs = vhu_net_hdr_size(vq);
	mrg = has(vq, VHU_NET_F_MRG_RXBUF);
	for (i = 0; i < n; i++) {
		const struct vhu_net_pkt *p = &pkts[i];
		struct virtio_net_hdr_v1 h;
		uint32_t need = hs + p->len, off, left;
		int nb;

		if (!rx_meta_ok(vq, p) || p->len > UINT32_MAX - hs) {
			count(vq, NS_BAD_HEADER, 1);
			continue;
		}
		nb = rx_reserve(vq, need, hs, mrg, reqs, segs,
				sizeof(segs) / sizeof(segs[0]));
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
		h = (struct virtio_net_hdr_v1){
			.flags = p->flags,
			.gso_type = p->gso_type,
			.hdr_len = vhu_le16(p->hdr_len),
			.gso_size = vhu_le16(p->gso_size),
			.csum_start = vhu_le16(p->csum_start),
			.csum_offset = vhu_le16(p->csum_offset),
			.num_buffers = vhu_le16((uint16_t)nb),
		};
		/* The header, then the frame, across the buffers in order. */
		copy_to_req(&reqs[0], 0, &h, hs);
		off = hs;
		left = p->len;
		for (int b = 0; b < nb; b++) {
			uint32_t room = reqs[b].in_len - (b == 0 ? hs : 0);
			uint32_t take = left < room ? left : room;

			copy_to_req(&reqs[b], b == 0 ? off : 0,
				    (const uint8_t *)p->data + (p->len - left), take);
			written[b] = take + (b == 0 ? hs : 0);
			left -= take;
		}
		vhu_vq_push(vq, reqs, written, (unsigned)nb);
		delivered++;
		count(vq, NS_PACKETS, 1);
		count(vq, NS_BYTES, p->len);
	}
	vhu_vq_notify(vq); /* once, if anything was used */
	vhu_vq_end(vq);
	return (int)delivered;
}

int vhu_net_dequeue(struct vhu_vq *vq, struct vhu_net_pkt *pkts,
		    void *const *bufs, uint32_t buf_len, unsigned n)
{
	struct vhu_req req;
	struct vhu_seg segs[NET_MAX_SEGS];
	unsigned st = vhu_vq_begin(vq), got = 0;
	uint32_t hs;
	int rc = 0;

	if (!(st & VHU_VQ_RUNNING)) {
		vhu_vq_end(vq);
		return st & VHU_VQ_BROKEN ? -EIO : 0;
	}
	hs = vhu_net_hdr_size(vq);
	while (got < n) {
		struct virtio_net_hdr_v1 h = { 0 };
		uint32_t flen;

		rc = vhu_vq_pop(vq, &req, 1, segs, NET_MAX_SEGS);
		if (rc <= 0) {
			if (rc == -ENOBUFS) /* a frame in more than 256 pieces */
				rc = vhu_vq_fail(vq, "TX chain of more than %d segments",
						 NET_MAX_SEGS);
			if (rc == -EIO)
				count(vq, NS_RING_ERROR, 1);
			break;
		}
		if (!(st & VHU_VQ_ENABLED)) {
			count(vq, NS_NOT_READY, 1);
			vhu_vq_push(vq, &req, NULL, 1);
			continue;
		}
		if (req.out_len < hs) {
			count(vq, NS_BAD_HEADER, 1);
			vhu_vq_push(vq, &req, NULL, 1);
			continue;
		}
		/* The header may be split over any number of descriptors. */
		copy_from_req(&req, 0, &h, hs);
		flen = req.out_len - hs;
		if (flen > buf_len) {
			count(vq, NS_TOO_BIG, 1);
			vhu_vq_push(vq, &req, NULL, 1);
			continue;
		}
		if (!tx_meta_ok(vq, &h, flen)) {
			count(vq, NS_BAD_HEADER, 1);
			vhu_vq_push(vq, &req, NULL, 1);
			continue;
		}
		copy_from_req(&req, hs, bufs[got], flen);
		pkts[got] = (struct vhu_net_pkt){
			.data = bufs[got],
			.len = flen,
			.flags = h.flags,
			.gso_type = h.gso_type,
			.hdr_len = vhu_le16(h.hdr_len),
			.gso_size = vhu_le16(h.gso_size),
			.csum_start = vhu_le16(h.csum_start),
			.csum_offset = vhu_le16(h.csum_offset),
		};
		vhu_vq_push(vq, &req, NULL, 1);
		count(vq, NS_PACKETS, 1);
		count(vq, NS_BYTES, flen);
		got++;
	}
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
