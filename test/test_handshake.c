/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vhost-user handshake, end to end: a vhu device served by a polling
 * thread (tu_backend) and the in-tree test frontend (vhu_fe) in the same
 * process, in server and client mode, across disconnects, reconnects and
 * back-end restarts.  Each test asserts what the back-end ended with and
 * the order its callbacks fired in, and that no fd leaked.
 *
 * The "hostile" test case (front-ends that send broken framing or vanish
 * mid-session: classes 1, 2, 6, 7, 9 and 37 of shared/HOSTILE-INPUTS.md)
 * also checks the aftermath (util/aftermath.h): a bystander device still
 * moves data, a fresh front-end on the same device completes a session
 * with data, fds, mappings and RSS flat.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vhu/vhu.h>

#include "aftermath.h"
#include "fe.h"
#include "protocol/proto.h"
#include "testutil.h"

#define NQ 2
#define TMO 3000 /* ms */
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_MTU 3

/* ---- what the device's callbacks saw ---- */

enum ev_kind {
	EV_CONNECTED,
	EV_DISCONNECTED,
	EV_FEATURES,
	EV_READY,
	EV_STOPPED,
	EV_QUEUE, /* arg: enum vhu_queue_event */
	EV_STATUS,
};

struct ev {
	enum ev_kind kind;
	int q;
	uint64_t arg;
};

struct req_done {
	uint32_t request;
	int result;
};

#define MAX_EV 512
#define MAX_REQ 512
#define CFG_SIZE 64

struct hs {
	struct vhu_dev *dev;
	struct tu_backend *be;
	const char *path;
	struct ev ev[MAX_EV];
	unsigned nev;
	struct req_done req[MAX_REQ];
	unsigned nreq;
	uint8_t cfg[CFG_SIZE];
	uint32_t last_set_cfg_off, last_set_cfg_len, last_set_cfg_flags;
	uint8_t rarp_mac[6];
	int rarps;
	uint16_t mtu;
	int fds_before;
	bool qemu_order; /* the handshake under test used opts.qemu_order */
};

static struct hs H;

static void add_ev(struct hs *h, enum ev_kind k, int q, uint64_t arg)
{
	if (h->nev < MAX_EV)
		h->ev[h->nev++] = (struct ev){ k, q, arg };
}

static void cb_connected(struct vhu_dev *d, void *o)
{
	add_ev(o, EV_CONNECTED, -1, 0);
}

static void cb_disconnected(struct vhu_dev *d, void *o)
{
	add_ev(o, EV_DISCONNECTED, -1, 0);
}

static void cb_features(struct vhu_dev *d, void *o, uint64_t f)
{
	add_ev(o, EV_FEATURES, -1, f);
}

static void cb_ready(struct vhu_dev *d, void *o)
{
	add_ev(o, EV_READY, -1, 0);
}

static void cb_stopped(struct vhu_dev *d, void *o)
{
	add_ev(o, EV_STOPPED, -1, 0);
}

static void cb_queue(struct vhu_dev *d, void *o, uint16_t q,
		     enum vhu_queue_event e)
{
	add_ev(o, EV_QUEUE, q, (uint64_t)e);
}

static void cb_status(struct vhu_dev *d, void *o, uint8_t st)
{
	add_ev(o, EV_STATUS, -1, st);
}

static int cb_get_config(struct vhu_dev *d, void *o, uint32_t off, void *buf,
			 uint32_t len)
{
	struct hs *h = o;

	if (off > CFG_SIZE || len > CFG_SIZE - off)
		return -EINVAL;
	memcpy(buf, h->cfg + off, len);
	return 0;
}

static int cb_set_config(struct vhu_dev *d, void *o, uint32_t off,
			 const void *buf, uint32_t len, uint32_t flags)
{
	struct hs *h = o;

	if (off > CFG_SIZE || len > CFG_SIZE - off)
		return -EINVAL;
	memcpy(h->cfg + off, buf, len);
	h->last_set_cfg_off = off;
	h->last_set_cfg_len = len;
	h->last_set_cfg_flags = flags;
	return 0;
}

static int cb_set_mtu(struct vhu_dev *d, void *o, uint16_t mtu)
{
	struct hs *h = o;

	if (mtu > 9000)
		return -EINVAL;
	h->mtu = mtu;
	return 0;
}

static void cb_send_rarp(struct vhu_dev *d, void *o, const uint8_t mac[6])
{
	struct hs *h = o;

	memcpy(h->rarp_mac, mac, 6);
	h->rarps++;
}

static void cb_request_done(struct vhu_dev *d, void *o, uint32_t request,
			    int result)
{
	struct hs *h = o;

	if (h->nreq < MAX_REQ)
		h->req[h->nreq++] = (struct req_done){ request, result };
}

static const struct vhu_dev_ops ops = {
	.sz = sizeof(ops),
	.connected = cb_connected,
	.disconnected = cb_disconnected,
	.features_set = cb_features,
	.device_ready = cb_ready,
	.device_stopped = cb_stopped,
	.queue_event = cb_queue,
	.get_config = cb_get_config,
	.set_config = cb_set_config,
	.status_set = cb_status,
	.set_mtu = cb_set_mtu,
	.send_rarp = cb_send_rarp,
	.request_done = cb_request_done,
};

/* ---- set-up ---- */

static struct vhu_dev *new_dev(struct hs *h)
{
	struct vhu_dev_opts o = {
		.sz = sizeof(o),
		.name = "hs",
		.device_features = VHU_BIT(VIRTIO_NET_F_MAC),
		.num_queues = NQ,
		.min_ready_queues = NQ,
		.reconnect_min_ms = 10,
		.reconnect_max_ms = 100,
		.ops = &ops,
		.opaque = h,
		.log = tu_log,
		.log_level = VHU_LOG_DEBUG,
	};
	struct vhu_dev *d = vhu_dev_new(&o);

	ck_assert_msg(d, "vhu_dev_new: %s", strerror(errno));
	return d;
}

static void reset_trace(struct hs *h)
{
	h->nev = 0;
	h->nreq = 0;
}

static void hs_begin(void)
{
	memset(&H, 0, sizeof(H));
	for (unsigned i = 0; i < CFG_SIZE; i++)
		H.cfg[i] = (uint8_t)(0xa0 + i);
	tu_log_clear();
	H.fds_before = tu_count_fds();
	H.path = strdup(tu_sock_path("hs"));
	H.dev = new_dev(&H);
}

/* Serve the device from the polling thread. */
static void be_start(void)
{
	H.be = tu_backend_start(H.dev);
	ck_assert_ptr_nonnull(H.be);
}

static void be_stop(void)
{
	tu_backend_stop(H.be);
	H.be = NULL;
}

static void hs_end(void)
{
	if (H.be)
		be_stop();
	vhu_dev_free(H.dev);
	H.dev = NULL;
	unlink(H.path);
	free((void *)H.path);
	ck_assert_int_eq(tu_count_fds(), H.fds_before);
}

/* The end of a hostile test: @fe leaves, the aftermath on the device. */
static void hostile_end(struct vhu_fe *fe)
{
	vhu_fe_free(fe);
	aftermath_check(&(struct aftermath_target){ .dev = H.dev, .path = H.path,
						   .be = H.be });
	hs_end();
}

static void lock(void)
{
	tu_backend_lock(H.be);
}

static void unlock(void)
{
	tu_backend_unlock(H.be);
}

static int pred_ready(void *a)
{
	return vhu_dev_is_ready(H.dev);
}

static int pred_connected(void *a)
{
	return vhu_dev_is_connected(H.dev);
}

static int pred_disconnected(void *a)
{
	return !vhu_dev_is_connected(H.dev);
}

/* Events of kind @k for queue @q (-1: not a queue event; < -1: any) with
 * @arg (queue events only). */
static int count_ev(enum ev_kind k, int q, uint64_t arg)
{
	int n = 0;

	for (unsigned i = 0; i < H.nev; i++)
		if (H.ev[i].kind == k && (q < -1 || H.ev[i].q == q) &&
		    (k != EV_QUEUE || H.ev[i].arg == arg))
			n++;
	return n;
}

static int pred_disconnected_ev(void *a)
{
	return count_ev(EV_DISCONNECTED, -1, 0) >= (int)(intptr_t)a;
}

/* Index of the first matching event at or after @from, -1 if none. */
static int find_ev(unsigned from, enum ev_kind k, int q, uint64_t arg)
{
	for (unsigned i = from; i < H.nev; i++)
		if (H.ev[i].kind == k && H.ev[i].q == q &&
		    (k != EV_QUEUE || H.ev[i].arg == arg))
			return (int)i;
	return -1;
}

/* Last result of @request in the request_done trace; 1 if never seen. */
static int req_result(uint32_t request)
{
	for (unsigned i = H.nreq; i-- > 0;)
		if (H.req[i].request == request)
			return H.req[i].result;
	return 1;
}

static void wait_ready(void)
{
	ck_assert_msg(tu_backend_wait(H.be, pred_ready, NULL, TMO),
		      "device not ready");
}

static void assert_fe_ok(int rc, const char *what)
{
	ck_assert_msg(rc == 0, "%s: %s", what, strerror(-rc));
}

/* The requests QEMU's start-up sends, in order, for what was negotiated. */
static unsigned expected_requests(uint64_t pf, bool mem_slots, unsigned nregions,
				  unsigned nq, uint32_t *out)
{
	unsigned n = 0;

	out[n++] = VHU_REQ_GET_FEATURES;
	out[n++] = VHU_REQ_GET_PROTOCOL_FEATURES;
	out[n++] = VHU_REQ_SET_PROTOCOL_FEATURES;
	if (pf & VHU_BIT(VHU_PF_MQ))
		out[n++] = VHU_REQ_GET_QUEUE_NUM;
	if (pf & VHU_BIT(VHU_PF_CONFIGURE_MEM_SLOTS))
		out[n++] = VHU_REQ_GET_MAX_MEM_SLOTS;
	if (pf & VHU_BIT(VHU_PF_BACKEND_REQ))
		out[n++] = VHU_REQ_SET_BACKEND_REQ_FD;
	out[n++] = VHU_REQ_SET_OWNER;
	if (H.qemu_order) {
		out[n++] = VHU_REQ_GET_FEATURES;
		for (unsigned q = 0; q < nq; q++)
			out[n++] = VHU_REQ_SET_VRING_CALL;
	}
	out[n++] = VHU_REQ_SET_FEATURES;
	if (mem_slots)
		for (unsigned i = 0; i < nregions; i++)
			out[n++] = VHU_REQ_ADD_MEM_REG;
	else
		out[n++] = VHU_REQ_SET_MEM_TABLE;
	for (unsigned q = 0; q < nq; q++) {
		out[n++] = VHU_REQ_SET_VRING_NUM;
		if (H.qemu_order)
			out[n++] = VHU_REQ_SET_VRING_BASE;
		out[n++] = VHU_REQ_SET_VRING_ADDR;
		if (!H.qemu_order)
			out[n++] = VHU_REQ_SET_VRING_BASE;
		out[n++] = VHU_REQ_SET_VRING_KICK;
		out[n++] = VHU_REQ_SET_VRING_CALL;
	}
	for (unsigned q = 0; q < nq; q++)
		out[n++] = VHU_REQ_SET_VRING_ENABLE;
	if (pf & VHU_BIT(VHU_PF_STATUS))
		out[n++] = VHU_REQ_SET_STATUS;
	return n;
}

/* Round trip: every earlier request has been handled when this returns. */
static void fe_sync(struct vhu_fe *fe)
{
	uint64_t f;

	assert_fe_ok(vhu_fe_get_features(fe, &f), "sync GET_FEATURES");
}

/*
 * What a full handshake must leave behind: features, protocol features,
 * memory, every queue configured/started/enabled with the fe's addresses,
 * the callbacks in order, and every request accepted.  @req_from: index in
 * the request trace where this handshake began.
 */
static void check_handshake(struct vhu_fe *fe, bool packed, bool mem_slots,
			    unsigned req_from, unsigned ev_from)
{
	uint32_t want[128];
	unsigned n;
	uint64_t pf = vhu_fe_acked_protocol_features(fe);

	lock();
	ck_assert(vhu_dev_is_connected(H.dev));
	ck_assert(vhu_dev_is_ready(H.dev));
	ck_assert_uint_eq(vhu_dev_features(H.dev), vhu_fe_acked_features(fe));
	ck_assert_uint_eq(vhu_dev_offered_features(H.dev),
			  vhu_fe_offered_features(fe));
	ck_assert_uint_eq(vhu_dev_protocol_features(H.dev), pf);
	ck_assert(vhu_dev_features(H.dev) & VHU_BIT(VIRTIO_NET_F_MAC));
	ck_assert(vhu_dev_features(H.dev) & VHU_BIT(VHU_F_VERSION_1));
	ck_assert_int_eq(!!(vhu_dev_features(H.dev) & VHU_BIT(VHU_F_RING_PACKED)),
			 packed);
	ck_assert_uint_eq(vhu_dev_mem_regions(H.dev), vhu_fe_mem_nregions(fe));
	if (pf & VHU_BIT(VHU_PF_STATUS))
		ck_assert_uint_eq(vhu_dev_status(H.dev), 0xf);

	for (uint16_t q = 0; q < NQ; q++) {
		struct vhu_fe_ring *r = vhu_fe_queue_ring(fe, q);
		struct vhu_queue_info qi;

		ck_assert_ptr_nonnull(r);
		ck_assert_int_eq(vhu_dev_queue_info(H.dev, q, &qi), 0);
		ck_assert_uint_eq(qi.size, r->num);
		ck_assert_int_eq(qi.packed, packed);
		ck_assert(qi.started);
		ck_assert(qi.enabled);
		ck_assert(!qi.broken);
		ck_assert(qi.has_addr);
		ck_assert_int_ge(qi.kick_fd, 0);
		ck_assert_int_ge(qi.call_fd, 0);
		ck_assert_uint_eq(qi.desc_addr, (uintptr_t)r->desc);
		ck_assert_uint_eq(qi.avail_addr, (uintptr_t)r->avail);
		ck_assert_uint_eq(qi.used_addr, (uintptr_t)r->used);
		ck_assert_uint_eq(qi.last_avail_idx, 0);
		if (packed) {
			ck_assert(qi.avail_wrap);
			ck_assert(qi.used_wrap);
			ck_assert_uint_eq(qi.used_idx, 0);
		}
	}
	ck_assert_int_eq(vhu_dev_queue_info(H.dev, NQ, &(struct vhu_queue_info){ 0 }),
			 -EINVAL);

	/* Callbacks: connected, features_set, then per queue STARTED before
	 * ENABLED, and device_ready after all of them. */
	{
		int c = find_ev(ev_from, EV_CONNECTED, -1, 0);
		int f = find_ev(ev_from, EV_FEATURES, -1, 0);
		int rd = find_ev(ev_from, EV_READY, -1, 0);

		ck_assert_int_ge(c, 0);
		ck_assert_int_gt(f, c);
		ck_assert_uint_eq(H.ev[f].arg, vhu_fe_acked_features(fe));
		ck_assert_int_gt(rd, f);
		for (int q = 0; q < NQ; q++) {
			int s = find_ev(ev_from, EV_QUEUE, q, VHU_QUEUE_STARTED);
			int e = find_ev(ev_from, EV_QUEUE, q, VHU_QUEUE_ENABLED);

			ck_assert_int_gt(s, f);
			ck_assert_int_gt(e, s);
			ck_assert_int_gt(rd, e);
		}
		ck_assert_int_eq(find_ev(rd + 1, EV_READY, -1, 0), -1);
	}

	/* request_done: QEMU's order, everything accepted. */
	n = expected_requests(pf, mem_slots, vhu_fe_mem_nregions(fe), NQ, want);
	ck_assert_uint_ge(H.nreq - req_from, n);
	for (unsigned i = 0; i < n; i++) {
		struct req_done *d = &H.req[req_from + i];

		ck_assert_msg(d->request == want[i] && d->result == 0,
			      "request %u: got %s (%d) result %d, want %s",
			      i, vhu_request_name(d->request), d->request,
			      d->result, vhu_request_name(want[i]));
	}
	unlock();
}

static struct vhu_fe *connect_fe(void)
{
	struct vhu_fe *fe = vhu_fe_connect(H.path, TMO);

	ck_assert_msg(fe, "vhu_fe_connect: %s", strerror(errno));
	return fe;
}

static void do_handshake(struct vhu_fe *fe, const struct vhu_fe_handshake_opts *o)
{
	assert_fe_ok(vhu_fe_handshake(fe, o, NULL), "handshake");
	fe_sync(fe);
	wait_ready();
}

/* ---- server mode ---- */

static void server_handshake(bool packed, bool mem_slots)
{
	struct vhu_fe_handshake_opts o = {
		.sz = sizeof(o), .num_queues = NQ, .ring_size = 256,
		.packed = packed, .mem_slots = mem_slots,
	};
	struct vhu_fe_handshake_info info;
	struct vhu_fe *fe;

	hs_begin();
	ck_assert_int_eq(vhu_dev_listen(H.dev, H.path), 0);
	be_start();
	fe = connect_fe();
	assert_fe_ok(vhu_fe_handshake(fe, &o, &info), "handshake");
	fe_sync(fe);
	wait_ready();
	check_handshake(fe, packed, mem_slots, 0, 0);
	if (vhu_fe_acked_protocol_features(fe) & VHU_BIT(VHU_PF_MQ))
		ck_assert_uint_eq(info.queue_num, NQ);
	if (vhu_fe_acked_protocol_features(fe) &
	    VHU_BIT(VHU_PF_CONFIGURE_MEM_SLOTS))
		ck_assert_uint_gt(info.max_mem_slots, 0);

	if (mem_slots) {
		/* The rings live in region 0; region 1 can go. */
		vhu_fe_set_need_reply(fe, true);
		assert_fe_ok(vhu_fe_rem_mem_reg(fe, 1, false), "REM_MEM_REG");
		lock();
		ck_assert_uint_eq(vhu_dev_mem_regions(H.dev), 1);
		ck_assert_int_eq(req_result(VHU_REQ_REM_MEM_REG), 0);
		ck_assert(vhu_dev_is_ready(H.dev));
		unlock();
		/* Removing it again: unknown region, refused with an ack. */
		if (vhu_fe_acked_protocol_features(fe) & VHU_BIT(VHU_PF_REPLY_ACK))
			ck_assert_int_eq(vhu_fe_rem_mem_reg(fe, 1, false),
					 -EREMOTEIO);
		/* Old QEMU style, with an fd: accepted too. */
		assert_fe_ok(vhu_fe_add_mem_reg(fe, 1), "ADD_MEM_REG again");
		assert_fe_ok(vhu_fe_rem_mem_reg(fe, 1, true), "REM_MEM_REG + fd");
		fe_sync(fe);
		lock();
		ck_assert_uint_eq(vhu_dev_mem_regions(H.dev), 1);
		unlock();
	}
	vhu_fe_free(fe);
	ck_assert(tu_backend_wait(H.be, pred_disconnected, NULL, TMO));
	hs_end();
}

START_TEST(server_split)
{
	server_handshake(false, false);
}
END_TEST

START_TEST(server_packed)
{
	server_handshake(true, false);
}
END_TEST

START_TEST(server_mem_slots)
{
	server_handshake(false, true);
}
END_TEST

START_TEST(server_packed_mem_slots)
{
	server_handshake(true, true);
}
END_TEST

/* A first fe goes away mid-session: queues stop, then disconnected; a
 * second one does the whole handshake; a third connecting meanwhile is
 * closed and the second keeps working. */
START_TEST(server_disconnect_and_second_fe)
{
	struct vhu_fe_handshake_opts o = {
		.sz = sizeof(o), .num_queues = NQ,
	};
	struct vhu_fe *fe, *fe2, *fe3;
	unsigned ev_mark, req_mark;
	uint64_t f;

	hs_begin();
	ck_assert_int_eq(vhu_dev_listen(H.dev, H.path), 0);
	be_start();
	fe = connect_fe();
	do_handshake(fe, &o);
	check_handshake(fe, false, false, 0, 0);

	lock();
	ev_mark = H.nev;
	unlock();
	vhu_fe_free(fe);
	ck_assert(tu_backend_wait(H.be, pred_disconnected_ev, (void *)1, TMO));

	lock();
	{
		int disc = find_ev(ev_mark, EV_DISCONNECTED, -1, 0);
		int stop = find_ev(ev_mark, EV_STOPPED, -1, 0);

		ck_assert_int_ge(disc, 0);
		ck_assert_int_ge(stop, 0);
		ck_assert_int_lt(stop, disc);
		for (int q = 0; q < NQ; q++) {
			struct vhu_queue_info qi;
			int s = find_ev(ev_mark, EV_QUEUE, q, VHU_QUEUE_STOPPED);

			ck_assert_int_ge(s, 0);
			ck_assert_int_lt(s, disc);
			ck_assert_int_eq(vhu_dev_queue_info(H.dev, q, &qi), 0);
			ck_assert(!qi.started);
			ck_assert_int_eq(qi.kick_fd, -1);
			ck_assert_int_eq(qi.call_fd, -1);
		}
		ck_assert(!vhu_dev_is_ready(H.dev));
		ck_assert(!vhu_dev_is_connected(H.dev));
		ck_assert_uint_eq(vhu_dev_mem_regions(H.dev), 0);
		ev_mark = H.nev;
		req_mark = H.nreq;
	}
	unlock();

	fe2 = connect_fe();
	do_handshake(fe2, &o);
	check_handshake(fe2, false, false, req_mark, ev_mark);

	/* A third front-end while the second is served: closed. */
	fe3 = connect_fe();
	ck_assert_int_eq(vhu_fe_wait_hangup(fe3, TMO), 0);
	ck_assert(!vhu_fe_is_connected(fe3));
	vhu_fe_free(fe3);
	assert_fe_ok(vhu_fe_get_features(fe2, &f), "fe2 still served");
	lock();
	ck_assert(vhu_dev_is_ready(H.dev));
	ck_assert_int_eq(count_ev(EV_CONNECTED, -1, 0), 2);
	ck_assert(tu_log_contains("second front-end"));
	unlock();
	hostile_end(fe2);
}
END_TEST

/* ---- client mode ---- */

START_TEST(client_reconnect)
{
	struct vhu_fe_handshake_opts o = {
		.sz = sizeof(o), .num_queues = NQ, .ring_size = 128,
	};
	struct vhu_fe *fe;
	unsigned ev_mark, req_mark;

	hs_begin();
	fe = vhu_fe_listen(H.path);
	ck_assert_ptr_nonnull(fe);
	ck_assert_int_eq(vhu_dev_connect(H.dev, H.path), 0);
	be_start();
	assert_fe_ok(vhu_fe_accept(fe, TMO), "accept");
	do_handshake(fe, &o);
	check_handshake(fe, false, false, 0, 0);

	/* The fe drops the device; it comes back by itself. */
	lock();
	ev_mark = H.nev;
	unlock();
	vhu_fe_disconnect(fe);
	ck_assert(tu_backend_wait(H.be, pred_disconnected_ev, (void *)1, TMO));
	lock();
	/* The device may have reconnected already: look from the disconnect. */
	ck_assert_int_ge(find_ev(ev_mark, EV_DISCONNECTED, -1, 0), 0);
	for (int q = 0; q < NQ; q++)
		ck_assert_int_ge(find_ev(ev_mark, EV_QUEUE, q, VHU_QUEUE_STOPPED), 0);
	ck_assert_int_ge(find_ev(ev_mark, EV_STOPPED, -1, 0), 0);
	ev_mark = (unsigned)find_ev(ev_mark, EV_DISCONNECTED, -1, 0) + 1;
	req_mark = H.nreq;
	unlock();

	assert_fe_ok(vhu_fe_accept(fe, TMO), "accept after reconnect");
	ck_assert(tu_backend_wait(H.be, pred_connected, NULL, TMO));
	do_handshake(fe, &o);
	check_handshake(fe, false, false, req_mark, ev_mark);
	lock();
	ck_assert_int_eq(count_ev(EV_CONNECTED, -1, 0), 2);
	ck_assert_int_eq(count_ev(EV_READY, -1, 0), 2);
	unlock();

	/* The device is freed while connected: the fe sees the hang-up. */
	be_stop();
	vhu_dev_free(H.dev);
	H.dev = NULL;
	ck_assert_int_eq(vhu_fe_wait_hangup(fe, TMO), 0);
	vhu_fe_free(fe);
	H.dev = new_dev(&H); /* hs_end frees one */
	hs_end();
}
END_TEST

/* The back-end restarts while the fe (server) waits: a new device on the
 * same path connects and the handshake completes again. */
START_TEST(backend_restart)
{
	struct vhu_fe_handshake_opts o = {
		.sz = sizeof(o), .num_queues = NQ, .packed = true,
	};
	struct vhu_fe *fe;

	hs_begin();
	fe = vhu_fe_listen(H.path);
	ck_assert_ptr_nonnull(fe);
	ck_assert_int_eq(vhu_dev_connect(H.dev, H.path), 0);
	be_start();
	assert_fe_ok(vhu_fe_accept(fe, TMO), "accept");
	do_handshake(fe, &o);
	check_handshake(fe, true, false, 0, 0);

	be_stop();
	vhu_dev_free(H.dev);
	ck_assert_int_eq(vhu_fe_wait_hangup(fe, TMO), 0);

	reset_trace(&H);
	H.dev = new_dev(&H);
	ck_assert_int_eq(vhu_dev_connect(H.dev, H.path), 0);
	be_start();
	assert_fe_ok(vhu_fe_accept(fe, TMO), "accept the new back-end");
	do_handshake(fe, &o);
	check_handshake(fe, true, false, 0, 0);

	vhu_fe_free(fe);
	ck_assert(tu_backend_wait(H.be, pred_disconnected, NULL, TMO));
	hs_end();
}
END_TEST

/* ---- GET_VRING_BASE ---- */

static void start_server_fe(struct vhu_fe **fe, bool packed, bool need_reply)
{
	struct vhu_fe_handshake_opts o = {
		.sz = sizeof(o), .num_queues = NQ, .ring_size = 64,
		.packed = packed, .need_reply = need_reply,
	};

	hs_begin();
	ck_assert_int_eq(vhu_dev_listen(H.dev, H.path), 0);
	be_start();
	*fe = connect_fe();
	do_handshake(*fe, &o);
	check_handshake(*fe, packed, false, 0, 0);
}

static void stop_server_fe(struct vhu_fe *fe)
{
	vhu_fe_free(fe);
	ck_assert(tu_backend_wait(H.be, pred_disconnected, NULL, TMO));
	hs_end();
}

static void queue_info(uint16_t q, struct vhu_queue_info *qi)
{
	lock();
	ck_assert_int_eq(vhu_dev_queue_info(H.dev, q, qi), 0);
	unlock();
}

START_TEST(vring_base_split)
{
	struct vhu_queue_info qi;
	struct vhu_fe *fe;
	uint32_t base = 99;
	unsigned mark;

	start_server_fe(&fe, false, true);
	lock();
	mark = H.nev;
	unlock();
	assert_fe_ok(vhu_fe_get_vring_base(fe, 0, &base), "GET_VRING_BASE");
	ck_assert_uint_eq(base, 0);
	queue_info(0, &qi);
	ck_assert(!qi.started);
	lock();
	ck_assert_int_ge(find_ev(mark, EV_QUEUE, 0, VHU_QUEUE_STOPPED), 0);
	ck_assert_int_ge(find_ev(mark, EV_STOPPED, -1, 0), 0);
	ck_assert(!vhu_dev_is_ready(H.dev));
	unlock();
	/* Queue 1 runs on. */
	queue_info(1, &qi);
	ck_assert(qi.started);

	/* Restart queue 0 at 42: BASE, KICK, CALL. */
	assert_fe_ok(vhu_fe_set_vring_base(fe, 0, 42), "SET_VRING_BASE");
	queue_info(0, &qi);
	ck_assert_uint_eq(qi.last_avail_idx, 42);
	assert_fe_ok(vhu_fe_set_vring_kick(fe, 0, vhu_fe_queue_kick_fd(fe, 0)),
		     "SET_VRING_KICK");
	assert_fe_ok(vhu_fe_set_vring_call(fe, 0, vhu_fe_queue_call_fd(fe, 0)),
		     "SET_VRING_CALL");
	wait_ready();
	/* A started ring refuses a new base. */
	ck_assert_int_eq(vhu_fe_set_vring_base(fe, 0, 7), -EREMOTEIO);
	ck_assert_uint_ne(vhu_fe_last_ack(fe), 0);
	assert_fe_ok(vhu_fe_get_vring_base(fe, 0, &base), "GET_VRING_BASE");
	ck_assert_uint_eq(base, 42);
	/* A free-running 16-bit index, not bounded by the ring size. */
	assert_fe_ok(vhu_fe_set_vring_base(fe, 0, 0xfffe), "SET_VRING_BASE");
	assert_fe_ok(vhu_fe_set_vring_kick(fe, 0, -1), "SET_VRING_KICK nofd");
	queue_info(0, &qi);
	ck_assert(qi.started);
	ck_assert_int_eq(qi.kick_fd, -1);
	assert_fe_ok(vhu_fe_get_vring_base(fe, 0, &base), "GET_VRING_BASE");
	ck_assert_uint_eq(base, 0xfffe);
	ck_assert_int_eq(vhu_fe_set_vring_base(fe, 0, 0x10000), -EREMOTEIO);
	/* Out of range index: refused, and the connection survives. */
	ck_assert_int_eq(vhu_fe_set_vring_base(fe, NQ, 0), -EREMOTEIO);
	fe_sync(fe);
	stop_server_fe(fe);
}
END_TEST

START_TEST(vring_base_packed)
{
	struct vhu_queue_info qi;
	struct vhu_fe *fe;
	uint32_t base = 0;
	/* avail slot 5 wrap 0, used slot 60 wrap 1: 9 descriptors in flight
	 * across the end of the ring */
	uint32_t want = 5u | (60u | 1u << VHU_PACKED_WRAP_BIT) << 16;

	start_server_fe(&fe, true, true);
	assert_fe_ok(vhu_fe_get_vring_base(fe, 1, &base), "GET_VRING_BASE");
	ck_assert_uint_eq(base, 0x80008000u); /* fresh ring: both wraps 1 */
	queue_info(1, &qi);
	ck_assert(!qi.started);

	assert_fe_ok(vhu_fe_set_vring_base(fe, 1, want), "SET_VRING_BASE");
	queue_info(1, &qi);
	ck_assert_uint_eq(qi.last_avail_idx, 5);
	ck_assert(!qi.avail_wrap);
	ck_assert_uint_eq(qi.used_idx, 60);
	ck_assert(qi.used_wrap);
	assert_fe_ok(vhu_fe_set_vring_kick(fe, 1, vhu_fe_queue_kick_fd(fe, 1)),
		     "SET_VRING_KICK");
	queue_info(1, &qi);
	ck_assert(qi.started);
	/* The ring itself (nothing ever made available) says the device is at
	 * its start: a base that does not fit it gives way (vq_recover.c). */
	assert_fe_ok(vhu_fe_get_vring_base(fe, 1, &base), "GET_VRING_BASE");
	ck_assert_uint_eq(base, 0x80008000u);
	ck_assert(tu_log_contains("packed ring resumes at slot 0 wrap 1"));

	/* Only the avail half (DPDK virtio_user): used starts there too. */
	assert_fe_ok(vhu_fe_set_vring_base(fe, 1, 7u | 1u << VHU_PACKED_WRAP_BIT),
		     "SET_VRING_BASE avail half");
	queue_info(1, &qi);
	ck_assert_uint_eq(qi.used_idx, 7);
	ck_assert(qi.used_wrap);

	/* Beyond the ring size (64): refused. */
	ck_assert_int_eq(vhu_fe_set_vring_base(fe, 1, 64u | 1u << 15), -EREMOTEIO);
	ck_assert_int_eq(vhu_fe_set_vring_base(fe, 1, 0x8000u | (70u << 16)),
			 -EREMOTEIO);
	/* Used ahead of avail, or more than a ring behind it (class 43):
	 * no position a device can be at. */
	ck_assert_int_eq(vhu_fe_set_vring_base(fe, 1, 5u | 1u << 15 |
					       (9u | 1u << 15) << 16), -EREMOTEIO);
	ck_assert_int_eq(vhu_fe_set_vring_base(fe, 1, 5u | (3u | 1u << 15) << 16),
			 -EREMOTEIO);
	ck_assert_int_eq(vhu_fe_set_vring_base(fe, 1, 5u | 3u << 16), 0);
	fe_sync(fe);
	stop_server_fe(fe);
}
END_TEST

/* ---- REPLY_ACK, config space, back-end channel ---- */

START_TEST(reply_ack)
{
	struct vhu_fe *fe;
	int rc;

	start_server_fe(&fe, false, true);
	ck_assert(vhu_fe_acked_protocol_features(fe) & VHU_BIT(VHU_PF_REPLY_ACK));
	/* The whole handshake ran with NEED_REPLY, acks were all 0. */
	ck_assert_uint_eq(vhu_fe_last_ack(fe), 0);

	/* Accepted: ack 0. */
	assert_fe_ok(vhu_fe_set_vring_enable(fe, 1, false), "disable");
	assert_fe_ok(vhu_fe_set_vring_enable(fe, 1, true), "enable");
	/* Refused: non-zero ack, and request_done saw the error. */
	ck_assert_int_eq(vhu_fe_set_vring_num(fe, 0, 3), -EREMOTEIO);
	ck_assert_uint_ne(vhu_fe_last_ack(fe), 0);
	rc = vhu_fe_request(fe, VHU_REQ_SET_VRING_ENABLE,
			    VHU_FLAG_VERSION | VHU_FLAG_NEED_REPLY,
			    &(struct vhu_vring_state){ 0, 2 },
			    sizeof(struct vhu_vring_state), NULL, 0, NULL, 0);
	ck_assert_int_eq(rc, -EREMOTEIO);
	ck_assert_int_eq(vhu_fe_set_vring_num(fe, 500, 64), -EREMOTEIO);
	/* An unknown request with NEED_REPLY: refused with an ack. */
	rc = vhu_fe_request(fe, 200, VHU_FLAG_VERSION | VHU_FLAG_NEED_REPLY, NULL,
			    0, NULL, 0, NULL, 0);
	ck_assert_int_eq(rc, -EREMOTEIO);
	/* Explicit flags through the raw helper: ack 0. */
	rc = vhu_fe_request(fe, VHU_REQ_SET_VRING_ENABLE,
			    VHU_FLAG_VERSION | VHU_FLAG_NEED_REPLY,
			    &(struct vhu_vring_state){ 1, 1 },
			    sizeof(struct vhu_vring_state), NULL, 0, NULL, 0);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(vhu_fe_last_ack(fe), 0);
	lock();
	ck_assert_int_lt(req_result(VHU_REQ_SET_VRING_NUM), 0);
	ck_assert_int_eq(req_result(200), -EOPNOTSUPP);
	ck_assert(vhu_dev_is_ready(H.dev));
	unlock();
	stop_server_fe(fe);
}
END_TEST

START_TEST(config_and_backend_channel)
{
	struct vhu_fe_breq breq;
	uint8_t buf[16], data[4] = { 1, 2, 3, 4 };
	struct vhu_fe *fe;

	start_server_fe(&fe, false, true);
	ck_assert(vhu_fe_acked_protocol_features(fe) & VHU_BIT(VHU_PF_CONFIG));
	ck_assert(vhu_fe_acked_protocol_features(fe) & VHU_BIT(VHU_PF_BACKEND_REQ));
	ck_assert_int_ge(vhu_fe_backend_fd(fe), 0);

	assert_fe_ok(vhu_fe_get_config(fe, 8, buf, sizeof(buf), 0), "GET_CONFIG");
	for (unsigned i = 0; i < sizeof(buf); i++)
		ck_assert_uint_eq(buf[i], 0xa0 + 8 + i);
	/* The callback refuses: the spec's empty reply. */
	ck_assert_int_eq(vhu_fe_get_config(fe, 60, buf, 8, 0), -EREMOTEIO);

	assert_fe_ok(vhu_fe_set_config(fe, 2, data, sizeof(data), 0), "SET_CONFIG");
	lock();
	ck_assert_uint_eq(H.last_set_cfg_off, 2);
	ck_assert_uint_eq(H.last_set_cfg_len, 4);
	ck_assert_uint_eq(H.last_set_cfg_flags, 0);
	ck_assert_mem_eq(H.cfg + 2, data, 4);
	unlock();
	assert_fe_ok(vhu_fe_get_config(fe, 0, buf, 8, 0), "GET_CONFIG");
	ck_assert_mem_eq(buf + 2, data, 4);
	ck_assert_int_eq(vhu_fe_set_config(fe, 62, data, 4, 0), -EREMOTEIO);
	ck_assert_int_eq(vhu_fe_set_config(fe, 0, data, 4, 7), -EREMOTEIO);

	/* CONFIG_CHANGE_MSG on the back-end channel. */
	lock();
	ck_assert_int_eq(vhu_dev_notify_config_change(H.dev), 0);
	unlock();
	assert_fe_ok(vhu_fe_backend_recv(fe, &breq, TMO), "backend recv");
	ck_assert_uint_eq(breq.hdr.request, VHU_BREQ_CONFIG_CHANGE_MSG);
	ck_assert_uint_eq(breq.nfds, 0);
	assert_fe_ok(vhu_fe_backend_reply(fe, &breq, 0), "backend reply");
	vhu_fe_breq_close_fds(&breq);

	/* Status round trip. */
	{
		uint8_t st = 0;

		assert_fe_ok(vhu_fe_get_status(fe, &st), "GET_STATUS");
		ck_assert_uint_eq(st, 0xf);
	}
	stop_server_fe(fe);

	/* Without a front-end. */
	hs_begin();
	ck_assert_int_eq(vhu_dev_notify_config_change(H.dev), -ENOTCONN);
	hs_end();
}
END_TEST

/* Without BACKEND_REQ the channel is not there: -EOPNOTSUPP. */
START_TEST(no_backend_channel)
{
	struct vhu_fe_handshake_opts o = {
		.sz = sizeof(o), .num_queues = NQ,
		.protocol_features_off = VHU_BIT(VHU_PF_BACKEND_REQ),
	};
	struct vhu_fe *fe;

	hs_begin();
	ck_assert_int_eq(vhu_dev_listen(H.dev, H.path), 0);
	be_start();
	fe = connect_fe();
	do_handshake(fe, &o);
	check_handshake(fe, false, false, 0, 0);
	ck_assert_int_eq(vhu_fe_backend_fd(fe), -1);
	lock();
	ck_assert_int_eq(vhu_dev_notify_config_change(H.dev), -EOPNOTSUPP);
	unlock();
	stop_server_fe(fe);
}
END_TEST

/* No protocol features at all (a legacy front-end): rings are enabled as
 * soon as they start. */
START_TEST(no_protocol_features)
{
	struct vhu_fe_handshake_opts o = {
		.sz = sizeof(o), .num_queues = NQ,
		.features_off = VHU_BIT(VHU_F_PROTOCOL_FEATURES),
	};
	struct vhu_fe *fe;
	struct vhu_queue_info qi;

	hs_begin();
	ck_assert_int_eq(vhu_dev_listen(H.dev, H.path), 0);
	be_start();
	fe = connect_fe();
	do_handshake(fe, &o);
	lock();
	ck_assert(!(vhu_dev_features(H.dev) & VHU_BIT(VHU_F_PROTOCOL_FEATURES)));
	unlock();
	for (uint16_t q = 0; q < NQ; q++) {
		queue_info(q, &qi);
		ck_assert(qi.started);
		ck_assert(qi.enabled);
	}
	stop_server_fe(fe);
}
END_TEST

/* The fe's raw I/O against the back-end's framing checks: a torn header,
 * fds that do not match the table, a reply flag on a request.  Each is
 * refused without leaking the fds, and a fresh handshake works after. */
START_TEST(raw_messages)
{
	struct vhu_fe_handshake_opts o = {
		.sz = sizeof(o), .num_queues = NQ, .need_reply = true,
	};
	struct vhu_fe *fe;
	uint8_t torn[5] = { VHU_REQ_GET_FEATURES, 0, 0, 0, VHU_FLAG_VERSION };
	struct {
		struct vhu_mem_table_hdr h;
		struct vhu_mem_region r;
	} __attribute__((packed)) table;
	int efd[2];

	hs_begin();
	ck_assert_int_eq(vhu_dev_listen(H.dev, H.path), 0);
	be_start();
	fe = connect_fe();
	assert_fe_ok(vhu_fe_send_raw(fe, torn, sizeof(torn), NULL, 0), "torn");
	ck_assert(tu_backend_wait(H.be, pred_connected, NULL, TMO));
	vhu_fe_disconnect(fe);
	/* (Reconnecting before the device saw the EOF would be refused as a
	 * second front-end.) */
	ck_assert(tu_backend_wait(H.be, pred_disconnected_ev, (void *)1, TMO));
	assert_fe_ok(vhu_fe_reconnect(fe, TMO), "reconnect");
	do_handshake(fe, &o);

	/* One region, two fds (and eventfds at that): refused, ack != 0. */
	memset(&table, 0, sizeof(table));
	table.h.nregions = 1;
	table.r = (struct vhu_mem_region){ 0, 4096, vhu_fe_mem_region(fe, 0)->uva, 0 };
	efd[0] = vhu_fe_queue_kick_fd(fe, 0);
	efd[1] = vhu_fe_queue_call_fd(fe, 0);
	ck_assert_int_eq(vhu_fe_request(fe, VHU_REQ_SET_MEM_TABLE,
					VHU_FLAG_VERSION | VHU_FLAG_NEED_REPLY,
					&table, sizeof(table), efd, 2, NULL, 0),
			 -EREMOTEIO);
	/* A payload longer than the table it announces: refused too. */
	{
		uint8_t longer[sizeof(table) + 32] = { 0 };

		memcpy(longer, &table, sizeof(table));
		ck_assert_int_eq(vhu_fe_request(fe, VHU_REQ_SET_MEM_TABLE,
						VHU_FLAG_VERSION | VHU_FLAG_NEED_REPLY,
						longer, sizeof(longer), efd, 1, NULL, 0),
				 -EREMOTEIO);
	}
	/* A size field beyond any payload: the back-end cannot frame the
	 * stream any more and hangs up; the fd is not leaked. */
	ck_assert_int_eq(vhu_fe_send_hdr(fe, VHU_REQ_SET_MEM_TABLE, VHU_FLAG_VERSION,
					 0xffffffffu, &table, sizeof(table), efd, 1),
			 0);
	ck_assert_int_eq(vhu_fe_wait_hangup(fe, TMO), 0);
	ck_assert(tu_backend_wait(H.be, pred_disconnected_ev, (void *)2, TMO));
	assert_fe_ok(vhu_fe_reconnect(fe, TMO), "reconnect");
	do_handshake(fe, &o);
	fe_sync(fe);
	lock();
	ck_assert_uint_eq(vhu_dev_mem_regions(H.dev), 2);
	ck_assert(vhu_dev_is_ready(H.dev));
	unlock();

	/* The reply bit on a request: the back-end hangs up. */
	ck_assert_int_eq(vhu_fe_send(fe, VHU_REQ_GET_FEATURES,
				     VHU_FLAG_VERSION | VHU_FLAG_REPLY, NULL, 0,
				     NULL, 0), 0);
	ck_assert_int_eq(vhu_fe_wait_hangup(fe, TMO), 0);
	ck_assert(tu_backend_wait(H.be, pred_disconnected, NULL, TMO));

	/* And a new session is as good as the first. */
	assert_fe_ok(vhu_fe_reconnect(fe, TMO), "reconnect");
	do_handshake(fe, &o);
	hostile_end(fe);
}
END_TEST

/* IN_ORDER acked and EVENT_IDX dropped: what the features say, the rings
 * follow. */
START_TEST(in_order_no_event_idx)
{
	struct vhu_fe_handshake_opts o = {
		.sz = sizeof(o), .num_queues = NQ, .in_order = true,
		.features_off = VHU_BIT(VHU_F_EVENT_IDX),
	};
	struct vhu_fe *fe;

	hs_begin();
	ck_assert_int_eq(vhu_dev_listen(H.dev, H.path), 0);
	be_start();
	fe = connect_fe();
	do_handshake(fe, &o);
	check_handshake(fe, false, false, 0, 0);
	ck_assert(vhu_fe_acked_features(fe) & VHU_BIT(VHU_F_IN_ORDER));
	ck_assert(!(vhu_fe_acked_features(fe) & VHU_BIT(VHU_F_EVENT_IDX)));
	ck_assert(vhu_fe_queue_ring(fe, 0)->in_order);
	ck_assert(!vhu_fe_queue_ring(fe, 0)->event_idx);
	stop_server_fe(fe);
}
END_TEST

/* SEND_RARP and NET_SET_MTU reach their callbacks; refusals come back as
 * non-zero acks. */
START_TEST(rarp_and_mtu)
{
	const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	struct vhu_fe *fe;

	start_server_fe(&fe, false, true);
	ck_assert(vhu_fe_acked_protocol_features(fe) & VHU_BIT(VHU_PF_RARP));
	ck_assert(vhu_fe_acked_protocol_features(fe) & VHU_BIT(VHU_PF_NET_MTU));
	assert_fe_ok(vhu_fe_send_rarp(fe, mac), "SEND_RARP");
	assert_fe_ok(vhu_fe_net_set_mtu(fe, 1500), "NET_SET_MTU");
	ck_assert_int_eq(vhu_fe_net_set_mtu(fe, 9500), -EREMOTEIO); /* callback */
	ck_assert_int_eq(vhu_fe_net_set_mtu(fe, 60), -EREMOTEIO);   /* < 68 */
	lock();
	ck_assert_int_eq(H.rarps, 1);
	ck_assert_mem_eq(H.rarp_mac, mac, 6);
	ck_assert_uint_eq(H.mtu, 1500);
	ck_assert_int_eq(req_result(VHU_REQ_NET_SET_MTU), -EINVAL);
	unlock();
	stop_server_fe(fe);
}
END_TEST

/* RESET_DEVICE stops and forgets the rings and the features; QEMU's
 * vhost_dev_start on the same connection brings the device back. */
START_TEST(reset_device_and_restart)
{
	struct vhu_fe_handshake_opts o = {
		.sz = sizeof(o), .num_queues = NQ, .ring_size = 64,
		.need_reply = true, .packed = _i,
	};
	struct vhu_queue_info qi;
	struct vhu_fe *fe;
	unsigned mark;

	start_server_fe(&fe, _i, true);
	lock();
	mark = H.nev;
	unlock();
	assert_fe_ok(vhu_fe_reset_device(fe), "RESET_DEVICE");
	lock();
	ck_assert(!vhu_dev_is_ready(H.dev));
	ck_assert_uint_eq(vhu_dev_features(H.dev), 0);
	ck_assert_int_ge(find_ev(mark, EV_STOPPED, -1, 0), 0);
	for (uint16_t q = 0; q < NQ; q++) {
		ck_assert_int_ge(find_ev(mark, EV_QUEUE, q, VHU_QUEUE_STOPPED), 0);
		ck_assert_int_eq(vhu_dev_queue_info(H.dev, q, &qi), 0);
		ck_assert(!qi.started);
		ck_assert_uint_eq(qi.size, 0);
		ck_assert_int_eq(qi.kick_fd, -1);
		ck_assert_int_eq(qi.call_fd, -1);
	}
	mark = H.nev;
	unlock();
	/* Rings need features first. */
	ck_assert_int_eq(vhu_fe_set_vring_num(fe, 0, 64), -EREMOTEIO);
	assert_fe_ok(vhu_fe_start(fe, &o), "start again");
	wait_ready();
	lock();
	ck_assert_uint_eq(vhu_dev_features(H.dev), vhu_fe_acked_features(fe));
	ck_assert_int_ge(find_ev(mark, EV_READY, -1, 0), 0);
	for (uint16_t q = 0; q < NQ; q++) {
		ck_assert_int_eq(vhu_dev_queue_info(H.dev, q, &qi), 0);
		ck_assert(qi.started && qi.enabled);
		ck_assert_int_eq(qi.packed, _i);
	}
	unlock();
	stop_server_fe(fe);
}
END_TEST

/* In-band notifications: a queue started without a kick fd is kicked with
 * VRING_KICK messages. */
START_TEST(inband_kick)
{
	struct vhu_fe_handshake_opts o = {
		.sz = sizeof(o), .num_queues = NQ, .need_reply = true,
		.inband_notifications = true,
	};
	struct vhu_queue_info qi;
	struct vhu_fe *fe;
	uint32_t base;

	hs_begin();
	ck_assert_int_eq(vhu_dev_listen(H.dev, H.path), 0);
	be_start();
	fe = connect_fe();
	do_handshake(fe, &o);
	ck_assert(vhu_fe_acked_protocol_features(fe) &
		  VHU_BIT(VHU_PF_INBAND_NOTIFICATIONS));
	/* Queue 1 goes in-band: stop it, start it without a kick fd. */
	assert_fe_ok(vhu_fe_get_vring_base(fe, 1, &base), "GET_VRING_BASE");
	assert_fe_ok(vhu_fe_queue_set_inband(fe, 1, true), "set inband");
	assert_fe_ok(vhu_fe_queue_start(fe, 1), "restart queue 1");
	queue_info(1, &qi);
	ck_assert(qi.started);
	ck_assert_int_eq(qi.kick_fd, -1);
	assert_fe_ok(vhu_fe_queue_kick(fe, 1), "VRING_KICK");
	assert_fe_ok(vhu_fe_queue_kick(fe, 1), "VRING_KICK");
	lock();
	ck_assert_int_eq(req_result(VHU_REQ_VRING_KICK), 0);
	ck_assert_int_eq(count_ev(EV_QUEUE, 1, VHU_QUEUE_KICKED), 2);
	ck_assert_int_eq(count_ev(EV_QUEUE, 0, VHU_QUEUE_KICKED), 0);
	unlock();
	stop_server_fe(fe);
}
END_TEST

/* Guest memory QEMU-style but less tidy: regions high in gpa with holes
 * between them, placed at an offset in sealed memfds. */
START_TEST(memory_layout)
{
	struct vhu_fe_mem_opts mo = {
		.sz = sizeof(mo), .nregions = 3, .region_size = 2u << 20,
		.base_gpa = 1ull << 32, .hole = 1u << 20,
		.mmap_offset = 64u << 10, .flags = VHU_FE_MEM_SEAL,
	};
	struct vhu_fe_handshake_opts o = {
		.sz = sizeof(o), .num_queues = NQ, .mem_slots = _i,
		.need_reply = true,
	};
	struct vhu_fe *fe;
	uint64_t gpa;

	hs_begin();
	ck_assert_int_eq(vhu_dev_listen(H.dev, H.path), 0);
	be_start();
	fe = connect_fe();
	assert_fe_ok(vhu_fe_mem_setup(fe, &mo), "mem setup");
	ck_assert_int_eq(vhu_fe_mem_setup(fe, &mo), -EBUSY);
	ck_assert_uint_eq(vhu_fe_mem_region(fe, 1)->gpa, (1ull << 32) + (3u << 20));
	ck_assert_ptr_null(vhu_fe_gpa_to_ptr(fe, (1ull << 32) + (2u << 20), 1));
	ck_assert_ptr_null(vhu_fe_gpa_to_ptr(fe, (1ull << 32) + (2u << 20) - 1, 2));
	/* No two regions touch: nothing can straddle. */
	ck_assert_int_eq(vhu_fe_mem_alloc_straddle(fe, 64, &gpa), -ENOMEM);
	do_handshake(fe, &o);
	check_handshake(fe, false, _i, 0, 0);
	lock();
	ck_assert_uint_eq(vhu_dev_mem_regions(H.dev), 3);
	unlock();
	stop_server_fe(fe);
}
END_TEST

/* QEMU's exact order: the call notifiers before any feature is set, and
 * each ring's base before its address. */
START_TEST(qemu_order)
{
	struct vhu_fe_handshake_opts o = {
		.sz = sizeof(o), .num_queues = NQ, .packed = _i, .qemu_order = true,
	};
	struct vhu_fe *fe;

	hs_begin();
	H.qemu_order = true;
	ck_assert_int_eq(vhu_dev_listen(H.dev, H.path), 0);
	be_start();
	fe = connect_fe();
	do_handshake(fe, &o);
	check_handshake(fe, _i, false, 0, 0);
	stop_server_fe(fe);
}
END_TEST

static Suite *handshake_suite(void)
{
	Suite *s = suite_create("handshake");
	TCase *tc = tcase_create("handshake");
	TCase *h = tcase_create("hostile");

	tcase_set_timeout(tc, 60);
	tcase_set_timeout(h, 60);
	tcase_add_checked_fixture(h, aftermath_setup, aftermath_teardown);
	tcase_add_test(tc, server_split);
	tcase_add_test(tc, server_packed);
	tcase_add_test(tc, server_mem_slots);
	tcase_add_test(tc, server_packed_mem_slots);
	tcase_add_test(h, server_disconnect_and_second_fe);
	tcase_add_test(tc, client_reconnect);
	tcase_add_test(tc, backend_restart);
	tcase_add_test(tc, vring_base_split);
	tcase_add_test(tc, vring_base_packed);
	tcase_add_test(tc, reply_ack);
	tcase_add_test(tc, config_and_backend_channel);
	tcase_add_test(tc, no_backend_channel);
	tcase_add_test(tc, no_protocol_features);
	tcase_add_test(h, raw_messages);
	tcase_add_test(tc, in_order_no_event_idx);
	tcase_add_test(tc, rarp_and_mtu);
	tcase_add_loop_test(tc, reset_device_and_restart, 0, 2);
	tcase_add_test(tc, inband_kick);
	tcase_add_loop_test(tc, memory_layout, 0, 2);
	tcase_add_loop_test(tc, qemu_order, 0, 2);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, h);
	return s;
}

int main(void)
{
	return tu_run_suite(handshake_suite());
}
