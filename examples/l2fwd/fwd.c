/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The data plane of vhu-l2fwd: one thread that owns every XSK ring and
 * every virtqueue burst.
 *
 * Forwarding, per loop iteration:
 *  - guest -> NIC: for each started+enabled TX queue 2i+1, frames are
 *    copied by vhu_net_dequeue() straight into free TX frames of the UMEM
 *    of socket i % nxsk, partial checksums completed (VIRTIO_NET_F_CSUM),
 *    frames above the NIC's MTU dropped and counted, then posted on the TX
 *    ring and the kernel kicked with sendto() (copy mode needs it);
 *    completed TX frames return to the socket's free list;
 *  - NIC -> guest: each socket's RX ring is drained; every frame goes to
 *    the RX queue of one enabled pair chosen by a flow hash (a flow stays
 *    on one guest queue, in order), copied by vhu_net_enqueue(), and its
 *    UMEM frame goes straight back to the fill ring.  Without an enabled
 *    guest queue frames are dropped and counted; the rings never stall.
 *  - a pending SEND_RARP announcement is transmitted on socket 0.
 *
 * Polling policy: while an iteration moves anything the thread spins,
 * with guest kicks turned off (vhu_vq_set_kicks(false)), so a busy port
 * costs no VM exits and no syscalls on the guest side.  After
 * L2_IDLE_NS without work it goes to sleep: it turns the TX queues' kicks
 * back on, and vhu_vq_set_kicks() re-checks the rings after doing so (1:
 * something arrived meanwhile, do not sleep); it re-checks the XSK RX
 * rings and the control mailbox; only then it sleeps in poll() on the TX
 * queues' kick eventfds, the XSK fds (POLLIN: NIC frames) and the
 * control thread's wake eventfd.  An idle port therefore uses no CPU.
 * The guest RX queues keep kicks off: buffers the guest posts are found
 * when the next NIC frame arrives, never waited for.
 *
 * State from the control thread (struct l2_shared): qmask says which
 * queues are started and enabled; gen changes on device_ready and
 * device_stopped, upon which the thread forgets its per-queue state (kick
 * modes) and rebuilds it for the queues of the new session.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "l2fwd.h"

#define L2_IDLE_NS 200000ull /* spin this long without work, then sleep */

#define RD(x) atomic_load_explicit(&(x), memory_order_relaxed)
#define ADD(x, v) atomic_fetch_add_explicit(&(x), (v), memory_order_relaxed)

static pthread_t fwd_thread;

/* The data plane's own per-session state. */
struct fwd {
	unsigned gen;
	uint32_t configured; /* queues whose kick mode was set this session */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void tx_kick(struct l2_shared *sh, struct l2_xsk *x)
{
	if (!xsk_ring_prod__needs_wakeup(&x->tx))
		return;
	if (sendto(x->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 &&
	    errno != EAGAIN && errno != EBUSY && errno != ENOBUFS &&
	    errno != EINTR)
		ADD(sh->c.tx_drop_sendto, 1);
}

/* Completed TX frames back to the free list; re-kick what the kernel left
 * on the TX ring (copy mode sends a limited batch per sendto()). */
static unsigned reap_tx(struct l2_shared *sh, struct l2_xsk *x)
{
	uint32_t idx = 0, n = xsk_ring_cons__peek(&x->comp, L2_TX_FRAMES, &idx);

	for (uint32_t i = 0; i < n; i++)
		x->free_tx[x->nfree++] = *xsk_ring_cons__comp_addr(&x->comp, idx + i);
	if (n)
		xsk_ring_cons__release(&x->comp, n);
	if (x->nfree < L2_TX_FRAMES)
		tx_kick(sh, x);
	return n;
}

static unsigned guest_to_nic(struct l2_shared *sh, struct vhu_vq *vq,
			     struct l2_xsk *x)
{
	struct vhu_net_pkt pkts[L2_BURST];
	void *bufs[L2_BURST] = { 0 };
	uint64_t addr[L2_BURST];
	uint32_t n = L2_BURST, idx = 0, sent = 0, bytes = 0;
	int got;

	if (n > x->nfree)
		n = x->nfree;
	n = n < xsk_prod_nb_free(&x->tx, n) ? n : xsk_prod_nb_free(&x->tx, n);
	if (!n)
		return 0; /* back-pressure: the frames wait in the guest ring */
	for (uint32_t i = 0; i < n; i++) {
		addr[i] = x->free_tx[--x->nfree];
		bufs[i] = x->area + addr[i];
	}
	got = vhu_net_dequeue(vq, pkts, bufs, L2_FRAME_SIZE, n);
	if (got < 0)
		got = 0;
	for (int i = 0; i < got; i++) {
		struct vhu_net_pkt *p = &pkts[i];

		if (p->len > sh->max_frame) {
			ADD(sh->c.tx_drop_mtu, 1);
			continue;
		}
		if (p->len < 14) {
			ADD(sh->c.tx_drop_runt, 1); /* not even an Ethernet header */
			continue;
		}
		if ((p->flags & VHU_NET_HDR_F_NEEDS_CSUM) &&
		    l2_csum_complete(bufs[i], p->len, p->csum_start, p->csum_offset)) {
			ADD(sh->c.tx_drop_csum, 1);
			continue;
		}
		/* keep the accepted frames' addresses at the front */
		uint64_t a = addr[sent];

		addr[sent] = addr[i];
		addr[i] = a;
		pkts[sent].len = p->len;
		bytes += p->len;
		sent++;
	}
	/* frames not filled or dropped go back to the free list */
	for (uint32_t i = sent; i < n; i++)
		x->free_tx[x->nfree++] = addr[i];
	if (!sent)
		return (unsigned)got;
	xsk_ring_prod__reserve(&x->tx, sent, &idx); /* room checked above */
	for (uint32_t i = 0; i < sent; i++) {
		struct xdp_desc *d = xsk_ring_prod__tx_desc(&x->tx, idx + i);

		d->addr = addr[i];
		d->len = pkts[i].len;
	}
	xsk_ring_prod__submit(&x->tx, sent);
	tx_kick(sh, x);
	ADD(sh->c.tx_pkts, sent);
	ADD(sh->c.tx_bytes, bytes);
	return (unsigned)got;
}

static unsigned nic_to_guest(struct l2_shared *sh, struct l2_xsk *x,
			     uint32_t mask)
{
	struct vhu_net_pkt grp[L2_MAX_PAIRS][L2_BURST];
	unsigned cnt[L2_MAX_PAIRS] = { 0 }, pairs[L2_MAX_PAIRS], np = 0;
	uint32_t idx = 0, fidx = 0, n, bytes = 0;

	n = xsk_ring_cons__peek(&x->rx, L2_BURST, &idx);
	if (!n)
		return 0;
	for (unsigned p = 0; p < L2_MAX_PAIRS; p++)
		if (mask & (1u << (2 * p)))
			pairs[np++] = p;
	for (uint32_t i = 0; i < n; i++) {
		const struct xdp_desc *d = xsk_ring_cons__rx_desc(&x->rx, idx + i);
		uint8_t *data = x->area + xsk_umem__add_offset_to_addr(d->addr);
		unsigned t;

		bytes += d->len;
		if (!np)
			continue;
		t = np == 1 ? 0 : l2_flow_hash(data, d->len) % np;
		grp[t][cnt[t]++] = (struct vhu_net_pkt){ .data = data, .len = d->len };
	}
	/* vhu_net_enqueue() copies and counts its own drops (no buffers...) */
	for (unsigned t = 0; t < np; t++)
		if (cnt[t])
			vhu_net_enqueue(sh->rxq[pairs[t]], grp[t], cnt[t]);
	if (!np)
		ADD(sh->c.rx_drop_no_guest, n);
	ADD(sh->c.rx_pkts, n);
	ADD(sh->c.rx_bytes, bytes);
	/* The fill ring holds all RX frames: room for these is certain. */
	xsk_ring_prod__reserve(&x->fill, n, &fidx);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t a = xsk_ring_cons__rx_desc(&x->rx, idx + i)->addr;

		*xsk_ring_prod__fill_addr(&x->fill, fidx + i) =
			xsk_umem__extract_addr(a) & ~(uint64_t)(L2_FRAME_SIZE - 1);
	}
	xsk_ring_prod__submit(&x->fill, n);
	xsk_ring_cons__release(&x->rx, n);
	return n;
}

static unsigned send_rarp(struct l2_shared *sh)
{
	struct l2_xsk *x = &sh->xsk[0];
	uint32_t idx = 0;
	struct xdp_desc *d;

	if (!x->nfree || !xsk_ring_prod__reserve(&x->tx, 1, &idx))
		return 0; /* retried on the next iteration */
	d = xsk_ring_prod__tx_desc(&x->tx, idx);
	d->addr = x->free_tx[--x->nfree];
	d->len = l2_rarp_frame(x->area + d->addr, sh->rarp_mac);
	xsk_ring_prod__submit(&x->tx, 1);
	atomic_store(&sh->rarp_pending, false);
	tx_kick(sh, x);
	ADD(sh->c.rarp_sent, 1);
	return 1;
}

/* Kicks on (@on) or off for every started TX queue; with @on, 1 if one of
 * them has frames (do not sleep), and their kick fds in @pfd. */
static int tx_kicks(struct l2_shared *sh, uint32_t mask, bool on,
		    struct pollfd *pfd, unsigned *npfd)
{
	int pending = 0;

	for (unsigned p = 0; p < L2_MAX_PAIRS; p++) {
		struct vhu_vq *vq = sh->txq[p];

		if (!(mask & (1u << (2 * p + 1))))
			continue;
		if (vhu_vq_begin(vq) & VHU_VQ_RUNNING) {
			if (on) {
				int fd = vhu_vq_kick_fd(vq);

				if (vhu_vq_set_kicks(vq, true) == 1)
					pending = 1;
				if (fd >= 0)
					pfd[(*npfd)++] = (struct pollfd){ .fd = fd, .events = POLLIN };
			} else {
				vhu_vq_kick_clear(vq);
				vhu_vq_set_kicks(vq, false);
			}
		}
		vhu_vq_end(vq);
	}
	return pending;
}

/* New session or new queues: polling mode for their TX queues, no kicks
 * ever for their RX queues. */
static void configure(struct l2_shared *sh, struct fwd *st, uint32_t mask)
{
	uint32_t fresh = mask & ~st->configured;

	for (unsigned q = 0; q < 2 * L2_MAX_PAIRS; q++) {
		struct vhu_vq *vq = q & 1 ? sh->txq[q / 2] : sh->rxq[q / 2];

		if (!(fresh & (1u << q)))
			continue;
		if (vhu_vq_begin(vq) & VHU_VQ_RUNNING)
			vhu_vq_set_kicks(vq, false);
		vhu_vq_end(vq);
	}
	st->configured = mask;
}

static void fwd_sleep(struct l2_shared *sh, struct fwd *st, uint32_t mask)
{
	struct pollfd pfd[1 + L2_MAX_PAIRS + L2_MAX_XSK];
	unsigned npfd = 0;
	int pending, timeout = 1000;
	uint64_t v;

	pfd[npfd++] = (struct pollfd){ .fd = sh->wake_fd, .events = POLLIN };
	pending = tx_kicks(sh, mask, true, pfd, &npfd);
	for (unsigned i = 0; i < sh->nxsk; i++) {
		struct l2_xsk *x = &sh->xsk[i];

		if (xsk_cons_nb_avail(&x->rx, 1))
			pending = 1;
		if (x->nfree < L2_TX_FRAMES)
			timeout = 1; /* TX frames in flight: reap them soon */
		pfd[npfd++] = (struct pollfd){ .fd = x->fd, .events = POLLIN };
	}
	if (atomic_load(&sh->rarp_pending) || atomic_load(&sh->gen) != st->gen ||
	    atomic_load(&sh->stop))
		pending = 1;
	if (!pending) {
		ADD(sh->c.sleeps, 1);
		poll(pfd, npfd, timeout);
	}
	ADD(sh->c.wakeups, 1);
	if (read(sh->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		perror("vhu-l2fwd: wake eventfd");
	tx_kicks(sh, mask, false, NULL, NULL);
}

static void *fwd_main(void *arg)
{
	struct l2_shared *sh = arg;
	struct fwd st = { .gen = ~0u };
	uint64_t idle_since = 0;

	while (!atomic_load(&sh->stop)) {
		unsigned gen = atomic_load(&sh->gen), work = 0;
		uint32_t mask = (uint32_t)atomic_load(&sh->qmask);

		if (gen != st.gen) {
			/* device_ready/stopped: a new session's queues */
			st.gen = gen;
			st.configured = 0;
		}
		if (mask & ~st.configured || st.configured & ~mask)
			configure(sh, &st, mask);
		for (unsigned i = 0; i < sh->nxsk; i++)
			work += reap_tx(sh, &sh->xsk[i]);
		for (unsigned p = 0; p < L2_MAX_PAIRS; p++)
			if (mask & (1u << (2 * p + 1)))
				work += guest_to_nic(sh, sh->txq[p], &sh->xsk[p % sh->nxsk]);
		for (unsigned i = 0; i < sh->nxsk; i++)
			work += nic_to_guest(sh, &sh->xsk[i], mask);
		if (atomic_load(&sh->rarp_pending))
			work += send_rarp(sh);
		if (work) {
			idle_since = 0;
			continue;
		}
		if (!idle_since) {
			idle_since = now_ns();
			continue;
		}
		if (now_ns() - idle_since < L2_IDLE_NS)
			continue;
		fwd_sleep(sh, &st, mask);
		idle_since = 0;
	}
	return NULL;
}

/** l2_fwd_wake() - wake the data plane if it sleeps (any thread). */
void l2_fwd_wake(struct l2_shared *sh)
{
	uint64_t one = 1;

	if (sh->wake_fd < 0)
		return;
	if (write(sh->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		perror("vhu-l2fwd: wake eventfd");
}

/** l2_fwd_start() - start the data-plane thread.  0 or -errno. */
int l2_fwd_start(struct l2_shared *sh)
{
	int rc;

	sh->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (sh->wake_fd < 0)
		return -errno;
	rc = pthread_create(&fwd_thread, NULL, fwd_main, sh);
	if (rc) {
		close(sh->wake_fd);
		sh->wake_fd = -1;
		return -rc;
	}
	pthread_setname_np(fwd_thread, "l2fwd-dp");
	return 0;
}

/** l2_fwd_stop() - stop and join the data-plane thread. */
void l2_fwd_stop(struct l2_shared *sh)
{
	if (sh->wake_fd < 0)
		return;
	atomic_store(&sh->stop, true);
	l2_fwd_wake(sh);
	pthread_join(fwd_thread, NULL);
	close(sh->wake_fd);
	sh->wake_fd = -1;
}
