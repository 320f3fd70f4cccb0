/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared by the virtio-net code (net.c, net_packed.c): counters, feature
 * tests and the small copies of the per-frame path. */
#ifndef VHU_NET_INT_H
#define VHU_NET_INT_H

#include <vhu/net.h>

#include <string.h>

#include "rings/vq.h"

/* The counters of struct vhu_net_stats, in order (vq->net_st[]). */
enum { NS_PACKETS, NS_BYTES, NS_NO_BUFFERS, NS_TOO_BIG, NS_BAD_HEADER,
       NS_NOT_READY, NS_RING_ERROR };

static inline void count(struct vhu_vq *vq, int which, uint64_t n)
{
	vhu_stat_add(&vq->net_st[which], n);
}

static inline bool has(const struct vhu_vq *vq, unsigned bit)
{
	return vq->features & VHU_BIT(bit);
}

/* Is the metadata of a frame for the guest allowed by its features? */
static inline bool rx_meta_ok(const struct vhu_vq *vq, const struct vhu_net_pkt *p)
{
	uint8_t gso = p->gso_type & (uint8_t)~VHU_NET_GSO_ECN;

	if (likely((p->flags | p->gso_type) == 0))
		return true; /* no offloads: the usual frame */
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
static inline bool tx_meta_ok(const struct vhu_vq *vq, const struct virtio_net_hdr_v1 *h,
		       uint32_t len)
{
	uint8_t gso = h->gso_type & (uint8_t)~VHU_NET_GSO_ECN;

	if (likely((h->flags | h->gso_type) == 0))
		return true; /* no offloads: the usual header */
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

/* Copy @len bytes to @dst.  Up to 128 bytes without the library call:
 * two fixed-size copies that overlap in the middle. */
static inline void copy_small(void *dst, const void *src, uint32_t len)
{
	uint8_t *d = dst;
	const uint8_t *s = src;

	if (len > 128) {
		memcpy(d, s, len);
	} else if (len > 64) {
		__builtin_memcpy(d, s, 64);
		__builtin_memcpy(d + len - 64, s + len - 64, 64);
	} else if (len > 32) {
		__builtin_memcpy(d, s, 32);
		__builtin_memcpy(d + len - 32, s + len - 32, 32);
	} else if (len > 16) {
		__builtin_memcpy(d, s, 16);
		__builtin_memcpy(d + len - 16, s + len - 16, 16);
	} else if (len >= 8) {
		__builtin_memcpy(d, s, 8);
		__builtin_memcpy(d + len - 8, s + len - 8, 8);
	} else {
		for (; len; len--)
			*d++ = *s++;
	}
}

/* A virtio-net header (12 or 10 bytes), inline. */
static inline void copy_hdr(void *dst, const void *src, uint32_t hs)
{
	if (hs == 12)
		__builtin_memcpy(dst, src, 12);
	else
		__builtin_memcpy(dst, src, 10);
}

/*
 * Header @h to the guest at @dst, unless it is there already, as it
 * usually is in a recycled buffer.  A driver that reads the header
 * (num_buffers, with mergeable buffers) then keeps its copy of that cache
 * line, instead of fetching it from this core for every frame.  The
 * guest may change its buffer meanwhile: what it then reads is its own
 * doing, as it would be after a store.
 */
static inline void put_hdr(void *dst, const void *h,
			   uint32_t hs)
{
	if (hs == 12) {
		if (__builtin_memcmp(dst, h, 12) != 0)
			__builtin_memcpy(dst, h, 12);
	} else if (__builtin_memcmp(dst, h, 10) != 0) {
		__builtin_memcpy(dst, h, 10);
	}
}

/* The header of a frame with no offloads in one buffer, 12 bytes: zero
 * but num_buffers, 1 (little-endian). */
static const uint8_t hdr_plain_12[12] = { [10] = 1 };

/* The virtio-net header for frame @p in @nb buffers; built from
 * constants when it asks for no offloads (the usual frame). */
static inline struct virtio_net_hdr_v1 rx_hdr(const struct vhu_net_pkt *p,
					      uint16_t nb)
{
	if (likely((p->flags | p->gso_type) == 0))
		return (struct virtio_net_hdr_v1){ .num_buffers = vhu_le16(nb) };
	return (struct virtio_net_hdr_v1){
		.flags = p->flags,
		.gso_type = p->gso_type,
		.hdr_len = vhu_le16(p->hdr_len),
		.gso_size = vhu_le16(p->gso_size),
		.csum_start = vhu_le16(p->csum_start),
		.csum_offset = vhu_le16(p->csum_offset),
		.num_buffers = vhu_le16(nb),
	};
}

/* The frame the guest sent: @len bytes copied to @buf, metadata from @h. */
static inline struct vhu_net_pkt tx_pkt(void *buf, uint32_t len,
					const struct virtio_net_hdr_v1 *h)
{
	return (struct vhu_net_pkt){
		.data = buf,
		.len = len,
		.flags = h->flags,
		.gso_type = h->gso_type,
		.hdr_len = vhu_le16(h->hdr_len),
		.gso_size = vhu_le16(h->gso_size),
		.csum_start = vhu_le16(h->csum_start),
		.csum_offset = vhu_le16(h->csum_offset),
	};
}

/*
 * The fast paths over packed rings (net_packed.c): frames that each fit
 * one direct descriptor, copied straight between ring and application.
 * Both stop at the first frame or descriptor that is anything else and
 * return how many they moved (bytes added to *@bytes); the general path
 * goes on from there, unless *@empty says the guest had no more buffers
 * posted at that point.
 */
unsigned vhu_net_rx_packed(struct vhu_vq *vq, const struct vhu_net_pkt *pkts,
			   unsigned n, uint32_t hs, uint64_t *bytes, bool *empty);
unsigned vhu_net_tx_packed(struct vhu_vq *vq, struct vhu_net_pkt *pkts,
			   void *const *bufs, uint32_t buf_len, unsigned n,
			   uint32_t hs, uint64_t *bytes, bool *empty);

#endif
