/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhu-l2fwd: one vhost-user net port bridged to one NIC through AF_XDP.
 * Shared declarations of its modules:
 *
 *   opts.c  the command line
 *   main.c  the control thread (libev: vhost-user socket, signals,
 *           stats timer), device callbacks
 *   claim.c one instance per NIC, and the XDP program a dead one left
 *   xsk.c   UMEM memory (hugepages or plain pages) and AF_XDP sockets
 *   fwd.c   the data-plane thread: forwarding both ways, busy-poll/sleep
 *   frame.c checksum completion, flow hash, the RARP frame
 *   stats.c the counters lines
 *
 * Ownership: the control thread writes struct l2_shared's masks and
 * mailboxes (atomics) and wakes the data plane through wake_fd; the data
 * plane alone touches the XSK rings and the virtqueues, and publishes its
 * counters as relaxed atomics that the stats timer reads.
 */
#ifndef L2FWD_H
#define L2FWD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <xdp/xsk.h>

#include <vhu/vhu.h>

#define L2_MAX_PAIRS 8
#define L2_MAX_XSK 8
#define L2_BURST 32

/* UMEM layout of one socket: L2_RX_FRAMES frames owned by the fill/RX
 * rings, then L2_TX_FRAMES frames for transmission. */
#define L2_FRAME_SIZE 4096u
#define L2_RX_FRAMES 1024u
#define L2_TX_FRAMES 1024u
#define L2_FRAMES (L2_RX_FRAMES + L2_TX_FRAMES)
#define L2_UMEM_SIZE ((uint64_t)L2_FRAMES * L2_FRAME_SIZE)

/* Counters the data plane keeps (relaxed atomics, read by the stats timer). */
struct l2_counters {
	/* guest -> NIC */
	atomic_uint_fast64_t tx_pkts, tx_bytes;
	atomic_uint_fast64_t tx_drop_mtu;      /* frame above the NIC's MTU */
	atomic_uint_fast64_t tx_drop_runt;     /* frame below an Ethernet header */
	atomic_uint_fast64_t tx_drop_csum;     /* bad csum_start/csum_offset */
	atomic_uint_fast64_t tx_drop_sendto;   /* sendto() refused the kick */
	/* NIC -> guest */
	atomic_uint_fast64_t rx_pkts, rx_bytes;
	atomic_uint_fast64_t rx_drop_no_guest; /* no enabled guest queue */
	atomic_uint_fast64_t rarp_sent;
	/* data-plane policy */
	atomic_uint_fast64_t sleeps, wakeups;
};

/* One AF_XDP socket bound to one NIC queue, with its own UMEM. */
struct l2_xsk {
	struct xsk_socket *xsk;
	struct xsk_umem *umem;
	struct xsk_ring_prod fill, tx;
	struct xsk_ring_cons comp, rx;
	uint8_t *area;
	uint32_t queue_id;
	int fd;
	bool zerocopy; /* bound in zero-copy mode (else copy mode) */
	uint64_t free_tx[L2_TX_FRAMES]; /* TX frame addresses not in flight */
	uint32_t nfree;
};

/* The UMEM memory of all sockets, from one allocation. */
struct l2_mem {
	uint8_t *base;
	uint64_t len;
	bool huge;
};

enum l2_huge { L2_HUGE_AUTO, L2_HUGE_ON, L2_HUGE_OFF };

struct l2_opts {
	const char *socket;
	const char *iface;
	bool client;
	bool native;
	enum l2_huge huge;
	unsigned stats_s;
	unsigned nqid;
	uint32_t qids[L2_MAX_XSK];
};

/* State shared by the control thread and the data plane. */
struct l2_shared {
	struct vhu_dev *dev;
	struct vhu_vq *rxq[L2_MAX_PAIRS]; /* guest RX queue 2i */
	struct vhu_vq *txq[L2_MAX_PAIRS]; /* guest TX queue 2i+1 */
	/* Bit i: guest queue i is started and enabled (control thread). */
	atomic_uint_fast32_t qmask;
	/* Bumped on device_ready / device_stopped and when a queue starts or
	 * stops: the data plane then drops and rebuilds its per-queue state. */
	atomic_uint gen;
	atomic_bool stop;
	/* SEND_RARP mailbox: rarp_pending set after rarp_mac is written. */
	uint8_t rarp_mac[6];
	atomic_bool rarp_pending;
	int wake_fd; /* eventfd: the control thread wakes a sleeping data plane */
	uint32_t max_frame; /* MTU + Ethernet header + one VLAN tag */
	struct l2_xsk xsk[L2_MAX_XSK];
	unsigned nxsk;
	struct l2_counters c;
};

/* opts.c */
int l2_parse_opts(int argc, char **argv, struct l2_opts *o);

/* xsk.c */
int l2_mem_alloc(struct l2_mem *m, uint64_t len, enum l2_huge huge);
void l2_mem_free(struct l2_mem *m);
int l2_xsk_open(struct l2_xsk *x, const char *iface, uint32_t queue_id,
		uint8_t *area, bool native, char *err, size_t errlen);
void l2_xsk_close(struct l2_xsk *x);
void l2_xsk_libxdp_quiet(void);
/* claim.c: lock @iface for this process (-EBUSY while another vhu-l2fwd
 * lives on it) and detach the AF_XDP program a dead one left there. */
int l2_nic_claim(const char *iface, char *err, size_t errlen);
/* At a clean exit: remove the lock file (the kernel drops the lock). */
void l2_nic_release(void);

/* fwd.c */
int l2_fwd_start(struct l2_shared *sh);
void l2_fwd_stop(struct l2_shared *sh);
void l2_fwd_wake(struct l2_shared *sh);

/* frame.c */
int l2_csum_complete(uint8_t *frame, uint32_t len, uint16_t start,
		     uint16_t offset);
uint32_t l2_flow_hash(const uint8_t *frame, uint32_t len);
uint32_t l2_rarp_frame(uint8_t *buf, const uint8_t mac[6]);

#endif
