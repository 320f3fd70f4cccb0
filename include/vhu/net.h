/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-net on top of vhu/vq.h: frames in and out of a guest, each with
 * the offload metadata of its virtio_net_hdr.
 *
 * Queue pair i is RX queue 2i (device to guest: vhu_net_enqueue) and TX
 * queue 2i+1 (guest to device: vhu_net_dequeue).  The header layout
 * follows what was negotiated: 12 bytes with VIRTIO_F_VERSION_1 or
 * VIRTIO_NET_F_MRG_RXBUF, else the legacy 10.  With MRG_RXBUF a frame
 * may fill several guest buffers.
 *
 * Offloads are never dropped silently: what the guest asked for on TX
 * (NEEDS_CSUM, GSO) comes to the application in struct vhu_net_pkt, and
 * what the application gives on RX goes to the guest.  Offer only the
 * offload features you honour (VIRTIO_NET_F_CSUM, HOST_TSO4/6 for TX;
 * GUEST_CSUM, GUEST_TSO4/6 for RX).  Frames whose metadata the negotiated
 * features do not allow are dropped and counted.
 *
 * Threading: the vq.h rule; these functions run their own burst
 * (vhu_vq_begin/end) and notify the guest once per call.
 */
#ifndef VHU_NET_H
#define VHU_NET_H

#include <stdint.h>

#include <vhu/vq.h>

/* Declared here too: <vhu/vq.h> reaches this header (through vhu.h)
 * before its own declarations when it is the first one included. */
struct vhu_vq;

#ifdef __cplusplus
extern "C" {
#endif

/* virtio-net feature bits (VIRTIO 1.2 §5.1.3) for vhu_dev_opts.device_features. */
#define VHU_NET_F_CSUM 0
#define VHU_NET_F_GUEST_CSUM 1
#define VHU_NET_F_MTU 3
#define VHU_NET_F_MAC 5
#define VHU_NET_F_GUEST_TSO4 7
#define VHU_NET_F_GUEST_TSO6 8
#define VHU_NET_F_GUEST_ECN 9
#define VHU_NET_F_GUEST_UFO 10
#define VHU_NET_F_HOST_TSO4 11
#define VHU_NET_F_HOST_TSO6 12
#define VHU_NET_F_HOST_ECN 13
#define VHU_NET_F_HOST_UFO 14
#define VHU_NET_F_MRG_RXBUF 15
#define VHU_NET_F_STATUS 16
#define VHU_NET_F_CTRL_VQ 17
#define VHU_NET_F_GUEST_ANNOUNCE 21
#define VHU_NET_F_MQ 22

/* vhu_net_pkt.flags (virtio_net_hdr.flags) */
#define VHU_NET_HDR_F_NEEDS_CSUM 1
#define VHU_NET_HDR_F_DATA_VALID 2
/* vhu_net_pkt.gso_type */
#define VHU_NET_GSO_NONE 0
#define VHU_NET_GSO_TCPV4 1
#define VHU_NET_GSO_UDP 3
#define VHU_NET_GSO_TCPV6 4
#define VHU_NET_GSO_ECN 0x80

/** A frame and its offload metadata (the fields of virtio_net_hdr). */
struct vhu_net_pkt {
	void *data;           /* enqueue: the frame; dequeue: the copy */
	uint32_t len;         /* frame bytes, without the virtio-net header */
	uint8_t flags;        /* VHU_NET_HDR_F_* */
	uint8_t gso_type;     /* VHU_NET_GSO_* */
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
};

/**
 * vhu_net_enqueue() - copy @n frames into the guest's RX queue @vq.
 * Returns how many were delivered (in order; not always a prefix of
 * @pkts: a frame too large or with bad metadata is skipped and later ones
 * still go); the others were dropped and counted (no guest buffers,
 * frame too large, queue disabled or stopped, offload not negotiated).
 * The guest is notified once if it asked to be.
 */
VHU_API int vhu_net_enqueue(struct vhu_vq *vq, const struct vhu_net_pkt *pkts,
			    unsigned n);

/**
 * vhu_net_dequeue() - take up to @n frames the guest sent on TX queue
 * @vq, copying frame i into @bufs[i] (@buf_len bytes each) and its
 * metadata into @pkts[i].  Returns the number of frames, 0 if none, -EIO
 * if the ring broke.  Frames that do not fit or whose header is invalid
 * are dropped, counted and returned to the guest; on a disabled queue
 * every frame is (the spec's "process and discard").  At most a ring's
 * worth of requests is taken per call, dropped ones included.
 */
VHU_API int vhu_net_dequeue(struct vhu_vq *vq, struct vhu_net_pkt *pkts,
			    void *const *bufs, uint32_t buf_len, unsigned n);

/** Per-queue virtio-net counters (RX queues count enqueue, TX dequeue). */
struct vhu_net_stats {
	uint64_t packets;
	uint64_t bytes;
	uint64_t drop_no_buffers; /* RX: the guest posted no (or too few) buffers */
	uint64_t drop_too_big;    /* the frame did not fit the buffers */
	uint64_t drop_bad_header; /* invalid or not-negotiated offload metadata */
	uint64_t drop_not_ready;  /* queue stopped or disabled */
	uint64_t drop_ring_error; /* the ring broke */
};

/** vhu_net_stats() - a snapshot of queue @vq's counters (any thread). */
VHU_API void vhu_net_stats(const struct vhu_vq *vq, struct vhu_net_stats *st);

/** vhu_net_hdr_size() - bytes of virtio-net header on @vq's rings under the
 *  features negotiated when the queue started (12 or 10). */
VHU_API uint32_t vhu_net_hdr_size(const struct vhu_vq *vq);

#ifdef __cplusplus
}
#endif

#endif
