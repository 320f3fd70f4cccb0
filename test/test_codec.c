/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The message codec and the request table: every request round-trips
 * through the framing code, and every malformed message of the control-plane
 * classes in shared/HOSTILE-INPUTS.md (1-24, 35-38) is refused the
 * documented way: a non-zero ack, an empty or u64 error reply, a hang-up,
 * a log line.
 *
 * The device listens in server mode and is driven single-threaded: the
 * test connects a plain socket, writes raw messages on it and calls
 * vhu_dev_poll(dev, 0) to process them.  The test cases of the catalogue
 * (framing, memory, vring, lifecycle) then check the aftermath
 * (util/aftermath.h): the hostile connection closed, a bystander device
 * still moves data, a fresh front-end completes a session with data on the
 * same device, and fds, guest-memory mappings and RSS are back to where
 * they were.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "aftermath.h"
#include "protocol/conn.h"
#include "protocol/msg.h"
#include "protocol/proto.h"
#include "testutil.h"

#define MB (1024ull * 1024)
#define QSZ 256

struct raw {
	struct vhu_dev *dev;
	char path[108];  /* where the device listens */
	int fd;          /* our connection, -1 when closed */
	int memfd;       /* guest memory */
	uint8_t *mem;    /* our mapping; its address is the region's uva */
	uint64_t memsz;
	int disconnects;
	int started[4];
	int last_rc;
	uint32_t last_req;
};

static void on_disconnect(struct vhu_dev *dev, void *opaque)
{
	((struct raw *)opaque)->disconnects++;
}

static void on_queue(struct vhu_dev *dev, void *opaque, uint16_t q,
		     enum vhu_queue_event ev)
{
	struct raw *r = opaque;

	if (q < 4 && ev == VHU_QUEUE_STARTED)
		r->started[q]++;
}

static void on_done(struct vhu_dev *dev, void *opaque, uint32_t req, int rc)
{
	struct raw *r = opaque;

	r->last_req = req;
	r->last_rc = rc;
}

static int get_config(struct vhu_dev *dev, void *opaque, uint32_t off, void *buf,
		      uint32_t len)
{
	if ((uint64_t)off + len > 16)
		return -EINVAL;
	for (uint32_t i = 0; i < len; i++)
		((uint8_t *)buf)[i] = (uint8_t)(off + i);
	return 0;
}

static const struct vhu_dev_ops ops = {
	.sz = sizeof(ops),
	.disconnected = on_disconnect,
	.queue_event = on_queue,
	.request_done = on_done,
	.get_config = get_config,
};

static void pump(struct raw *r)
{
	for (int i = 0; i < 100 && vhu_dev_poll(r->dev, 0) > 0; i++)
		;
}

/* A new connection to the device, accepted. */
static void raw_connect(struct raw *r)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", r->path);
	r->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(r->fd, 0);
	ck_assert_int_eq(connect(r->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	pump(r);
	ck_assert(vhu_dev_is_connected(r->dev));
}

/* Close our connection; the device sees it go. */
static void raw_hangup(struct raw *r)
{
	close(r->fd);
	r->fd = -1;
	pump(r);
	ck_assert(!vhu_dev_is_connected(r->dev));
}

static void raw_open_opts(struct raw *r, uint32_t max_slots)
{
	struct vhu_dev_opts o = {
		.sz = sizeof(o),
		.name = "codec",
		.num_queues = 2,
		.max_mem_slots = max_slots,
		.ops = &ops,
		.opaque = r,
		.log = tu_log,
		.log_level = VHU_LOG_DEBUG,
	};

	memset(r, 0, sizeof(*r));
	r->memfd = -1;
	r->dev = vhu_dev_new(&o);
	ck_assert_ptr_nonnull(r->dev);
	snprintf(r->path, sizeof(r->path), "%s", tu_sock_path("codec"));
	ck_assert_int_eq(vhu_dev_listen(r->dev, r->path), 0);
	raw_connect(r);
}

static void raw_open(struct raw *r)
{
	raw_open_opts(r, 0);
}

/* The attack is over: hang up (if the device did not) and check the
 * aftermath on this device. */
static void raw_aftermath(struct raw *r)
{
	if (r->fd >= 0)
		raw_hangup(r);
	aftermath_check(&(struct aftermath_target){ .dev = r->dev, .path = r->path });
}

static void raw_close(struct raw *r)
{
	vhu_dev_free(r->dev);
	if (r->fd >= 0)
		close(r->fd);
	if (r->mem)
		munmap(r->mem, r->memsz);
	if (r->memfd >= 0)
		close(r->memfd);
}

static void send_raw(struct raw *r, uint32_t req, uint32_t flags,
		     const void *payload, uint32_t size, const int *fds, unsigned n)
{
	ck_assert_int_eq(vhu_msg_send(r->fd, req, flags, payload, size, fds, n,
				      1000), 0);
	pump(r);
}

/* A bare header {@req, VERSION, @size} with @n fds attached (up to 16:
 * more than any message may carry), whatever @size says. */
static void send_hdr_fds(struct raw *r, uint32_t req, uint32_t size,
			 const int *fds, unsigned n)
{
	struct vhu_msg_hdr h = { req, VHU_FLAG_VERSION, size };
	struct iovec iov = { &h, sizeof(h) };
	union {
		char buf[CMSG_SPACE(16 * sizeof(int))];
		struct cmsghdr align;
	} c;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf,
			     .msg_controllen = CMSG_SPACE(n * sizeof(int)) };
	struct cmsghdr *cm;

	ck_assert_uint_le(n, 16);
	memset(&c, 0, sizeof(c));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, n * sizeof(int));
	ck_assert_int_eq(sendmsg(r->fd, &mh, 0), sizeof(h));
}

static void send_req(struct raw *r, uint32_t req, const void *payload,
		     uint32_t size, const int *fds, unsigned n)
{
	send_raw(r, req, VHU_FLAG_VERSION, payload, size, fds, n);
}

static void send_u64(struct raw *r, uint32_t req, uint64_t v)
{
	send_req(r, req, &v, sizeof(v), NULL, 0);
}

/* Read a reply to @req; returns its payload size. */
static uint32_t get_reply(struct raw *r, uint32_t req, void *out, uint32_t max)
{
	struct vhu_rx rx;
	struct vhu_logger lg;

	vhu_logger_init(&lg, tu_log, NULL, VHU_LOG_DEBUG, "test");
	vhu_rx_init(&rx);
	ck_assert_int_eq(vhu_msg_recv_timeout(r->fd, &rx, &lg, 1000), 1);
	ck_assert_uint_eq(rx.msg.hdr.request, req);
	ck_assert_uint_eq(rx.msg.hdr.flags, VHU_FLAG_VERSION | VHU_FLAG_REPLY);
	ck_assert_uint_le(rx.msg.hdr.size, max);
	memcpy(out, &rx.msg.u, rx.msg.hdr.size);
	uint32_t size = rx.msg.hdr.size;
	vhu_rx_reset(&rx);
	return size;
}

/* Send with NEED_REPLY and return the ack value (0 = accepted). */
static uint64_t send_ack(struct raw *r, uint32_t req, const void *payload,
			 uint32_t size, const int *fds, unsigned n)
{
	uint64_t ack = 99;

	send_raw(r, req, VHU_FLAG_VERSION | VHU_FLAG_NEED_REPLY, payload, size, fds, n);
	ck_assert_uint_eq(get_reply(r, req, &ack, sizeof(ack)), sizeof(ack));
	return ack;
}

static uint64_t ack_u64(struct raw *r, uint32_t req, uint64_t v)
{
	return send_ack(r, req, &v, sizeof(v), NULL, 0);
}

static uint64_t get_u64(struct raw *r, uint32_t req)
{
	uint64_t v = 0;

	send_req(r, req, NULL, 0, NULL, 0);
	ck_assert_uint_eq(get_reply(r, req, &v, sizeof(v)), sizeof(v));
	return v;
}

/* Did the device hang up on us? */
static bool peer_closed(struct raw *r)
{
	char b;

	pump(r);
	return recv(r->fd, &b, 1, MSG_DONTWAIT) == 0;
}

static void negotiate(struct raw *r, uint64_t extra)
{
	uint64_t f = get_u64(r, VHU_REQ_GET_FEATURES);
	uint64_t pf = get_u64(r, VHU_REQ_GET_PROTOCOL_FEATURES);

	ck_assert_uint_eq(ack_u64(r, VHU_REQ_SET_PROTOCOL_FEATURES, pf), 0);
	ck_assert_uint_eq(ack_u64(r, VHU_REQ_SET_OWNER, 0) , 1); /* payload size wrong */
	ck_assert_uint_eq(send_ack(r, VHU_REQ_SET_OWNER, NULL, 0, NULL, 0), 0);
	ck_assert_uint_eq(ack_u64(r, VHU_REQ_SET_FEATURES,
				  (f & (VHU_BIT(VHU_F_VERSION_1) |
					VHU_BIT(VHU_F_PROTOCOL_FEATURES))) | extra), 0);
}

static void map_memory(struct raw *r)
{
	struct {
		struct vhu_mem_table_hdr h;
		struct vhu_mem_region reg;
	} __attribute__((packed)) t;

	r->memsz = 2 * MB;
	r->memfd = memfd_create("guest", MFD_CLOEXEC);
	ck_assert_int_ge(r->memfd, 0);
	ck_assert_int_eq(ftruncate(r->memfd, (off_t)r->memsz), 0);
	r->mem = mmap(NULL, r->memsz, PROT_READ | PROT_WRITE, MAP_SHARED, r->memfd, 0);
	ck_assert_ptr_ne(r->mem, MAP_FAILED);
	t.h = (struct vhu_mem_table_hdr){ .nregions = 1 };
	t.reg = (struct vhu_mem_region){ .guest_phys_addr = 0, .memory_size = r->memsz,
					 .userspace_addr = (uintptr_t)r->mem };
	ck_assert_uint_eq(send_ack(r, VHU_REQ_SET_MEM_TABLE, &t, sizeof(t), &r->memfd, 1), 0);
}

static uint64_t uva(struct raw *r, uint64_t off)
{
	return (uintptr_t)r->mem + off;
}

static uint64_t set_addr(struct raw *r, uint32_t q, uint64_t d, uint64_t a, uint64_t u)
{
	struct vhu_vring_addr va = { .index = q, .desc_user_addr = d,
				     .avail_user_addr = a, .used_user_addr = u };

	return send_ack(r, VHU_REQ_SET_VRING_ADDR, &va, sizeof(va), NULL, 0);
}

static uint64_t set_state(struct raw *r, uint32_t req, uint32_t q, uint32_t num)
{
	struct vhu_vring_state s = { .index = q, .num = num };

	return send_ack(r, req, &s, sizeof(s), NULL, 0);
}

static uint64_t kick(struct raw *r, uint32_t req, uint64_t v, int fd)
{
	return send_ack(r, req, &v, sizeof(v), fd >= 0 ? &fd : NULL, fd >= 0);
}

/* A fully set-up session with queue 0 started. */
static void start_queue0(struct raw *r)
{
	int efd = eventfd(0, EFD_CLOEXEC);

	negotiate(r, 0);
	map_memory(r);
	ck_assert_uint_eq(set_state(r, VHU_REQ_SET_VRING_NUM, 0, QSZ), 0);
	ck_assert_uint_eq(set_addr(r, 0, uva(r, 0), uva(r, 0x4000), uva(r, 0x5000)), 0);
	ck_assert_uint_eq(set_state(r, VHU_REQ_SET_VRING_BASE, 0, 0), 0);
	ck_assert_uint_eq(kick(r, VHU_REQ_SET_VRING_KICK, 0, efd), 0);
	close(efd);
	ck_assert_int_eq(r->started[0], 1);
}

/* ---- round trips --------------------------------------------------- */

START_TEST(table_is_complete)
{
	for (uint32_t req = 1; req < VHU_REQ_MAX; req++) {
		const struct vhu_req_info *info = vhu_req_lookup(req);

		ck_assert_msg(info != NULL, "request %u missing", req);
		ck_assert_str_ne(vhu_request_name(req), "UNKNOWN");
		ck_assert_uint_le(info->min_size, info->max_size);
		ck_assert_uint_le(info->max_size, VHU_MAX_PAYLOAD);
	}
	ck_assert_ptr_null(vhu_req_lookup(0));
	ck_assert_ptr_null(vhu_req_lookup(VHU_REQ_MAX));
	ck_assert_ptr_null(vhu_req_lookup(0xffffffffu));
	ck_assert_str_eq(vhu_request_name(5), "SET_MEM_TABLE");
	ck_assert_str_eq(vhu_request_name(43), "CHECK_DEVICE_STATE");
	ck_assert_str_eq(vhu_request_name(1000), "UNKNOWN");
}
END_TEST

/* Every request, with a payload of its largest legal size and fds where it
 * takes them, is reassembled byte for byte, even when the bytes arrive one
 * at a time. */
START_TEST(every_request_round_trips)
{
	struct vhu_logger lg;

	vhu_logger_init(&lg, tu_log, NULL, VHU_LOG_DEBUG, "rt");
	for (uint32_t req = 1; req < VHU_REQ_MAX; req++) {
		const struct vhu_req_info *info = vhu_req_lookup(req);
		uint8_t payload[VHU_MAX_PAYLOAD];
		int sp[2], efd = eventfd(0, EFD_CLOEXEC);
		struct vhu_rx rx;
		uint32_t size = info->max_size;

		for (uint32_t i = 0; i < size; i++)
			payload[i] = (uint8_t)(req * 31 + i);
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
		ck_assert_int_eq(vhu_msg_send(sp[0], req, VHU_FLAG_VERSION, payload,
					      size, &efd, info->fds != VHU_FDS_NONE,
					      100), 0);
		vhu_rx_init(&rx);
		ck_assert_int_eq(vhu_msg_recv_timeout(sp[1], &rx, &lg, 1000), 1);
		ck_assert_uint_eq(rx.msg.hdr.request, req);
		ck_assert_uint_eq(rx.msg.hdr.size, size);
		ck_assert_int_eq(memcmp(&rx.msg.u, payload, size), 0);
		ck_assert_uint_eq(rx.nfds, info->fds != VHU_FDS_NONE);
		vhu_rx_reset(&rx);
		close(sp[0]);
		close(sp[1]);
		close(efd);
	}
}
END_TEST

START_TEST(partial_reads_reassemble)
{
	struct raw r;
	struct vhu_msg_hdr h = { VHU_REQ_GET_FEATURES, VHU_FLAG_VERSION, 0 };
	uint64_t f = 0;

	raw_open(&r);
	/* one byte at a time, the device polled in between */
	for (size_t i = 0; i < sizeof(h); i++) {
		ck_assert_int_eq(write(r.fd, (char *)&h + i, 1), 1);
		pump(&r);
	}
	ck_assert_uint_eq(get_reply(&r, VHU_REQ_GET_FEATURES, &f, sizeof(f)), 8);
	ck_assert_uint_eq(f, vhu_dev_offered_features(r.dev));
	ck_assert(f & VHU_BIT(VHU_F_VERSION_1));
	ck_assert(f & VHU_BIT(VHU_F_PROTOCOL_FEATURES));
	raw_close(&r);
}
END_TEST

/* ---- framing (classes 1-8) ------------------------------------------ */

START_TEST(short_header_then_eof)
{
	struct raw r;

	raw_open(&r);
	ck_assert_int_eq(write(r.fd, "\x01\x00\x00", 3), 3);
	pump(&r);
	shutdown(r.fd, SHUT_WR);
	ck_assert(peer_closed(&r));
	ck_assert_int_eq(r.disconnects, 1);
	ck_assert(!vhu_dev_is_connected(r.dev));
	raw_aftermath(&r);
	raw_close(&r);
}
END_TEST

/* One connection after the other to the same device, each announcing a
 * payload larger than any with three fds attached: each is hung up on. */
START_TEST(oversized_size_with_fds)
{
	struct raw r;
	int efd[3] = { eventfd(0, 0), eventfd(0, 0), eventfd(0, 0) };
	uint32_t sizes[] = { VHU_MAX_PAYLOAD + 1, 0x10000, 0xffffffffu };

	raw_open(&r);
	for (int i = 0; i < 3; i++) {
		if (i)
			raw_connect(&r);
		send_hdr_fds(&r, VHU_REQ_SET_MEM_TABLE, sizes[i], efd, 3);
		ck_assert(peer_closed(&r));
		ck_assert(tu_log_contains("payload; the largest is"));
		close(r.fd);
		r.fd = -1;
	}
	ck_assert_int_eq(r.disconnects, 3);
	for (int i = 0; i < 3; i++)
		close(efd[i]);
	raw_aftermath(&r);
	raw_close(&r);
}
END_TEST

START_TEST(truncated_payload_and_stall)
{
	struct raw a, b;
	int efd = eventfd(0, 0);

	raw_open(&a);
	raw_open(&b);
	/* a stalls mid-message, holding an fd in flight */
	send_hdr_fds(&a, VHU_REQ_SET_FEATURES, 8, &efd, 1);
	ck_assert_int_eq(write(a.fd, "abc", 3), 3);
	pump(&a);
	/* b, polled by the same thread, is served meanwhile */
	ck_assert(get_u64(&b, VHU_REQ_GET_FEATURES) & VHU_BIT(VHU_F_VERSION_1));
	ck_assert(vhu_dev_is_connected(a.dev));
	/* a closes inside the message */
	raw_hangup(&a);
	ck_assert_int_eq(a.disconnects, 1);
	ck_assert(tu_log_contains("closed inside a message"));
	close(efd);
	raw_close(&b);
	raw_aftermath(&a);
	raw_close(&a);
}
END_TEST

START_TEST(unknown_and_backend_codes)
{
	struct raw r;
	uint32_t codes[] = { 0, VHU_REQ_MAX, 100, 0xffffffffu };
	int efd = eventfd(0, EFD_CLOEXEC);

	raw_open(&r);
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		ck_assert_uint_eq(send_ack(&r, codes[i], "12345678", 8, NULL, 0), 1);
		ck_assert_int_eq(r.last_rc, -EOPNOTSUPP);
	}
	/* Requests of features we never offer are refused, not half done. */
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_SET_LOG_BASE, "0123456789abcdef", 16,
				   &efd, 1), 1);
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_POSTCOPY_LISTEN, NULL, 0, NULL, 0), 1);
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_GPU_SET_SOCKET, NULL, 0, &efd, 1), 1);
	/* A request whose reply carries data cannot be answered "no": the
	 * device hangs up (GET_INFLIGHT_FD without INFLIGHT_SHMFD). */
	struct vhu_inflight inf = { .mmap_size = 0, .num_queues = 2, .queue_size = 256 };
	send_req(&r, VHU_REQ_GET_INFLIGHT_FD, &inf, sizeof(inf), NULL, 0);
	ck_assert(peer_closed(&r));
	close(efd);
	raw_aftermath(&r);
	raw_close(&r);
}
END_TEST

START_TEST(wrong_fd_counts)
{
	struct raw r;
	int fds[16];

	for (int i = 0; i < 8; i++)
		fds[i] = fds[i + 8] = eventfd(0, EFD_CLOEXEC);
	raw_open(&r);
	/* fds on a request that takes none */
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_SET_OWNER, NULL, 0, fds, 2), 1);
	ck_assert_int_eq(r.last_rc, -EBADF);
	/* the device still works, owner not set by the refused message */
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_SET_OWNER, NULL, 0, NULL, 0), 0);
	/* kick: no-fd bit with an fd, and no bit without one */
	uint64_t f = VHU_BIT(VHU_F_VERSION_1);
	ck_assert_uint_eq(ack_u64(&r, VHU_REQ_SET_FEATURES, f), 0);
	ck_assert_uint_eq(kick(&r, VHU_REQ_SET_VRING_CALL, VHU_VRING_NOFD, fds[0]), 1);
	ck_assert_uint_eq(kick(&r, VHU_REQ_SET_VRING_CALL, 0, -1), 1);
	ck_assert_uint_eq(kick(&r, VHU_REQ_SET_VRING_CALL, 0, fds[0]), 0);
	ck_assert_uint_eq(kick(&r, VHU_REQ_SET_VRING_CALL, VHU_VRING_NOFD, -1), 0);
	/* more fds than any message may carry (16, the kernel truncates) */
	send_hdr_fds(&r, VHU_REQ_SET_OWNER, 0, fds, 16);
	ck_assert(peer_closed(&r));
	for (int i = 0; i < 8; i++)
		close(fds[i]);
	raw_aftermath(&r);
	raw_close(&r);
}
END_TEST

/* One connection after the other, each with bad header flags: hung up. */
START_TEST(bad_header_flags)
{
	uint32_t flags[] = { 0, 2, 3, VHU_FLAG_VERSION | VHU_FLAG_REPLY,
			     VHU_FLAG_VERSION | 0x10, VHU_FLAG_VERSION | 0x80000000u };
	struct raw r;

	raw_open(&r);
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		if (i)
			raw_connect(&r);
		send_raw(&r, VHU_REQ_GET_FEATURES, flags[i], NULL, 0, NULL, 0);
		ck_assert_msg(peer_closed(&r), "flags 0x%x", flags[i]);
		ck_assert_int_eq(r.last_rc, -EPROTO);
		close(r.fd);
		r.fd = -1;
	}
	raw_aftermath(&r);
	raw_close(&r);
}
END_TEST

START_TEST(wrong_payload_sizes)
{
	struct raw r;
	uint8_t buf[VHU_MAX_PAYLOAD] = { 0 };

	raw_open(&r);
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_SET_FEATURES, buf, 4, NULL, 0), 1);
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_SET_FEATURES, buf, 16, NULL, 0), 1);
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_SET_VRING_ADDR, buf, 39, NULL, 0), 1);
	/* SET_MEM_TABLE must be 8 + 32 * nregions */
	struct vhu_mem_table_hdr *h = (void *)buf;
	h->nregions = 2;
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_SET_MEM_TABLE, buf, 8 + 32, NULL, 0), 1);
	ck_assert(tu_log_contains("SET_MEM_TABLE: 2 regions in a 40-byte payload"));
	/* GET_CONFIG size field must match the payload */
	struct vhu_config_hdr *c = (void *)buf;
	*c = (struct vhu_config_hdr){ .offset = 0, .size = 8 };
	ck_assert_uint_eq(ack_u64(&r, VHU_REQ_SET_PROTOCOL_FEATURES,
				  VHU_BIT(VHU_PF_CONFIG) | VHU_BIT(VHU_PF_REPLY_ACK)), 0);
	send_req(&r, VHU_REQ_GET_CONFIG, buf, 12 + 4, NULL, 0);
	ck_assert_uint_eq(get_reply(&r, VHU_REQ_GET_CONFIG, buf, sizeof(buf)), 0);
	send_req(&r, VHU_REQ_GET_CONFIG, buf, 12 + 8, NULL, 0);
	ck_assert_uint_eq(get_reply(&r, VHU_REQ_GET_CONFIG, buf, sizeof(buf)), 20);
	ck_assert_uint_eq(buf[12 + 5], 5);
	/* outside the config space: empty reply */
	*c = (struct vhu_config_hdr){ .offset = 12, .size = 8 };
	send_req(&r, VHU_REQ_GET_CONFIG, buf, 12 + 8, NULL, 0);
	ck_assert_uint_eq(get_reply(&r, VHU_REQ_GET_CONFIG, buf, sizeof(buf)), 0);
	ck_assert(vhu_dev_is_connected(r.dev));
	raw_aftermath(&r);
	raw_close(&r);
}
END_TEST

static void repeat_calls(struct raw *r, int efd, int n)
{
	for (int i = 0; i < n; i++) {
		uint64_t v = (uint64_t)(i & 1);

		ck_assert_int_eq(vhu_msg_send(r->fd, VHU_REQ_SET_VRING_CALL,
					      VHU_FLAG_VERSION, &v, 8, &efd, 1, 1000), 0);
		if (i % 64 == 0)
			pump(r);
	}
	pump(r);
	/* each queue holds its last call fd; drop them */
	send_u64(r, VHU_REQ_SET_VRING_CALL, 0 | VHU_VRING_NOFD);
	send_u64(r, VHU_REQ_SET_VRING_CALL, 1 | VHU_VRING_NOFD);
}

static void repeat_mem_tables(struct raw *r, int n)
{
	struct {
		struct vhu_mem_table_hdr h;
		struct vhu_mem_region reg;
	} __attribute__((packed)) t = { { 1, 0 }, { 0, r->memsz, (uintptr_t)r->mem, 0 } };

	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(vhu_msg_send(r->fd, VHU_REQ_SET_MEM_TABLE,
					      VHU_FLAG_VERSION, &t, sizeof(t),
					      &r->memfd, 1, 1000), 0);
		pump(r);
	}
}

START_TEST(repeated_requests_stay_flat)
{
	struct raw r;
	int nfd, efd = eventfd(0, EFD_CLOEXEC);
	long rss;

	raw_open(&r);
	negotiate(&r, 0);
	map_memory(&r);
	nfd = tu_count_fds();
	/* warm up (allocator and, under valgrind, its own bookkeeping) */
	repeat_calls(&r, efd, 20000);
	repeat_mem_tables(&r, 1000);
	ck_assert_int_eq(tu_count_fds(), nfd);
	rss = tu_rss_pages();
	repeat_calls(&r, efd, 100000);
	repeat_mem_tables(&r, 2000);
	ck_assert_int_eq(tu_count_fds(), nfd);
	ck_assert_int_lt(tu_rss_pages() - rss, tu_rss_bound(1024));
	ck_assert_uint_eq(vhu_dev_mem_regions(r.dev), 1);
	close(efd);
	raw_aftermath(&r);
	raw_close(&r);
}
END_TEST

/* ---- memory table (9-17) -------------------------------------------- */

START_TEST(mem_table_rules)
{
	struct raw r;
	uint8_t buf[VHU_MAX_PAYLOAD] = { 0 };
	struct vhu_mem_table_hdr *h = (void *)buf;
	struct vhu_mem_region *reg = (void *)(buf + 8);
	int mfd = memfd_create("g", MFD_CLOEXEC);
	int mfds[VHU_MEM_TABLE_MAX_REGIONS];

	ck_assert_int_eq(ftruncate(mfd, 1 * MB), 0);
	for (int i = 0; i < VHU_MEM_TABLE_MAX_REGIONS; i++)
		mfds[i] = mfd;
	raw_open(&r);
	/* before SET_OWNER / SET_FEATURES */
	h->nregions = 1;
	reg[0] = (struct vhu_mem_region){ 0, MB, 0x10000000, 0 };
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_SET_MEM_TABLE, buf, 40, &mfd, 1), 1);
	ck_assert_int_eq(r.last_rc, -EPERM);
	negotiate(&r, 0);
	/* nregions 0, and more than 8 in the largest table there is */
	h->nregions = 0;
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_SET_MEM_TABLE, buf, 8, NULL, 0), 1);
	h->nregions = VHU_MEM_TABLE_MAX_REGIONS + 1;
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_SET_MEM_TABLE, buf,
				   8 + 32 * VHU_MEM_TABLE_MAX_REGIONS, mfds,
				   VHU_MEM_TABLE_MAX_REGIONS), 1);
	h->nregions = 0xffffffffu;
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_SET_MEM_TABLE, buf,
				   8 + 32 * VHU_MEM_TABLE_MAX_REGIONS, mfds,
				   VHU_MEM_TABLE_MAX_REGIONS), 1);
	/* nregions != fds */
	h->nregions = 2;
	reg[1] = (struct vhu_mem_region){ MB, MB, 0x20000000, 0 };
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_SET_MEM_TABLE, buf, 72, &mfd, 1), 1);
	ck_assert_int_eq(r.last_rc, -EBADF);
	ck_assert_uint_eq(vhu_dev_mem_regions(r.dev), 0);
	/* and a good one */
	h->nregions = 1;
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_SET_MEM_TABLE, buf, 40, &mfd, 1), 0);
	ck_assert_uint_eq(vhu_dev_mem_regions(r.dev), 1);
	/* ADD/REM_MEM_REG need CONFIGURE_MEM_SLOTS: negotiated above (all) */
	struct vhu_mem_reg_msg one = { 0, { 2 * MB, MB, 0x30000000, 0 } };
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_ADD_MEM_REG, &one, sizeof(one), &mfd, 1), 0);
	ck_assert_uint_eq(vhu_dev_mem_regions(r.dev), 2);
	/* the same region again (QEMU 7.2 sends it once per queue pair):
	 * counted, not mapped twice; one that overlaps it differently: refused */
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_ADD_MEM_REG, &one, sizeof(one), &mfd, 1), 0);
	ck_assert_uint_eq(vhu_dev_mem_regions(r.dev), 2);
	one.region.userspace_addr = 0x40000000;
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_ADD_MEM_REG, &one, sizeof(one), &mfd, 1), 1);
	one.region.userspace_addr = 0x30000000;
	one.region.guest_phys_addr = 8 * MB; /* unknown */
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_REM_MEM_REG, &one, sizeof(one), NULL, 0), 1);
	ck_assert_int_eq(r.last_rc, -ENOENT);
	one.region.guest_phys_addr = 2 * MB;
	/* spec: an fd sent with REM_MEM_REG is accepted and closed; a region
	 * added twice goes with the second removal */
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_REM_MEM_REG, &one, sizeof(one), &mfd, 1), 0);
	ck_assert_uint_eq(vhu_dev_mem_regions(r.dev), 2);
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_REM_MEM_REG, &one, sizeof(one), NULL, 0), 0);
	ck_assert_uint_eq(vhu_dev_mem_regions(r.dev), 1);
	ck_assert_uint_eq(get_u64(&r, VHU_REQ_GET_MAX_MEM_SLOTS), 509);
	/* SET_LOG_BASE / SET_INFLIGHT_FD: not negotiated, refused */
	struct vhu_log lb = { 0, 0 };
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_SET_LOG_BASE, &lb, sizeof(lb), &mfd, 1), 1);
	struct vhu_inflight inf = { .mmap_size = 4096 };
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_SET_INFLIGHT_FD, &inf, sizeof(inf), &mfd, 1), 1);
	close(mfd);
	raw_aftermath(&r);
	raw_close(&r);
}
END_TEST

/* What backs a region in a bad_region_cases entry. */
enum region_fd { FD_MEMFD, FD_EVENTFD, FD_SOCKET, FD_DEVNULL, FD_READ_ONLY };

#define BAD_GPA (1ull << 30) /* clear of the good region at gpa 0 */
#define BAD_UVA 0x10000000ull

static const struct bad_region {
	const char *what;
	unsigned n;
	struct vhu_mem_region r[2];
	enum region_fd fd;
} bad_region_cases[] = {
	/* class 10 */
	{ "size 0", 1, { { BAD_GPA, 0, BAD_UVA, 0 } }, FD_MEMFD },
	/* 11 */
	{ "gpa + size wraps", 1, { { UINT64_MAX - 4095, 8192, BAD_UVA, 0 } }, FD_MEMFD },
	{ "uva + size wraps", 1, { { BAD_GPA, 8192, UINT64_MAX - 4095, 0 } }, FD_MEMFD },
	{ "offset + size wraps", 1, { { BAD_GPA, 8192, BAD_UVA, UINT64_MAX - 4095 } },
	  FD_MEMFD },
	{ "offset + size rounded to pages wraps", 1,
	  { { BAD_GPA, 8, BAD_UVA, UINT64_MAX - 10 } }, FD_MEMFD },
	/* 12 (the file is 1 MiB) */
	{ "size past the end of the file", 1, { { BAD_GPA, 2 * MB, BAD_UVA, 0 } },
	  FD_MEMFD },
	{ "offset + size past the end of the file", 1,
	  { { BAD_GPA, MB, BAD_UVA, 4096 } }, FD_MEMFD },
	/* 13 */
	{ "overlapping gpa", 2, { { BAD_GPA, MB / 2, BAD_UVA, 0 },
				  { BAD_GPA + MB / 4, MB / 2, 2 * BAD_UVA, MB / 2 } },
	  FD_MEMFD },
	{ "overlapping uva", 2, { { BAD_GPA, MB / 2, BAD_UVA, 0 },
				  { 2 * BAD_GPA, MB / 2, BAD_UVA + MB / 4, MB / 2 } },
	  FD_MEMFD },
	/* 14 */
	{ "an eventfd", 1, { { BAD_GPA, 4096, BAD_UVA, 0 } }, FD_EVENTFD },
	{ "a socket", 1, { { BAD_GPA, 4096, BAD_UVA, 0 } }, FD_SOCKET },
	{ "/dev/null", 1, { { BAD_GPA, 4096, BAD_UVA, 0 } }, FD_DEVNULL },
	{ "a read-only file", 1, { { BAD_GPA, 4096, BAD_UVA, 0 } }, FD_READ_ONLY },
};

/* A new fd of kind @k (a dup of @memfd for FD_MEMFD). */
static int region_fd(enum region_fd k, int memfd)
{
	const char *path;
	int fd = -1, sp[2];

	switch (k) {
	case FD_MEMFD:
		fd = dup(memfd);
		break;
	case FD_EVENTFD:
		fd = eventfd(0, EFD_CLOEXEC);
		break;
	case FD_SOCKET:
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
		close(sp[1]);
		fd = sp[0];
		break;
	case FD_DEVNULL:
		fd = open("/dev/null", O_RDWR);
		break;
	case FD_READ_ONLY:
		path = tu_sock_path("read-only");
		fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(ftruncate(fd, (off_t)MB), 0);
		close(fd);
		fd = open(path, O_RDONLY);
		unlink(path);
		break;
	}
	ck_assert_int_ge(fd, 0);
	return fd;
}

/* Classes 10-14 through the device, each as SET_MEM_TABLE and (one
 * region) ADD_MEM_REG while queue 0 runs on a good table: refused with a
 * non-zero ack, and (38) nothing of it stays: the good table and the
 * running ring are as they were. */
START_TEST(bad_regions)
{
	struct raw r;
	struct vhu_queue_info qi;
	int mfd = memfd_create("bad", MFD_CLOEXEC);

	ck_assert_int_eq(ftruncate(mfd, (off_t)MB), 0);
	raw_open(&r);
	start_queue0(&r);
	for (size_t i = 0; i < sizeof(bad_region_cases) / sizeof(bad_region_cases[0]);
	     i++) {
		const struct bad_region *c = &bad_region_cases[i];
		int fd = region_fd(c->fd, mfd);
		struct {
			struct vhu_mem_table_hdr h;
			struct vhu_mem_region reg[2];
		} __attribute__((packed)) t = { { c->n, 0 }, { c->r[0], c->r[1] } };
		struct vhu_mem_reg_msg one = { 0, c->r[0] };

		ck_assert_msg(send_ack(&r, VHU_REQ_SET_MEM_TABLE, &t, 8 + 32 * c->n,
				       (int[]){ fd, fd }, c->n) == 1,
			      "SET_MEM_TABLE, %s: accepted", c->what);
		if (c->n == 1)
			ck_assert_msg(send_ack(&r, VHU_REQ_ADD_MEM_REG, &one,
					       sizeof(one), &fd, 1) == 1,
				      "ADD_MEM_REG, %s: accepted", c->what);
		close(fd);
		ck_assert_uint_eq(vhu_dev_mem_regions(r.dev), 1);
		ck_assert_int_eq(vhu_dev_queue_info(r.dev, 0, &qi), 0);
		ck_assert_msg(qi.started && !qi.broken, "queue 0 after %s", c->what);
	}
	ck_assert(tu_log_contains("but the file has"));
	ck_assert(tu_log_contains("overflows"));
	close(mfd);
	raw_aftermath(&r);
	raw_close(&r);
}
END_TEST

START_TEST(mem_slot_limit)
{
	struct raw r;
	int mfd = memfd_create("g", MFD_CLOEXEC);

	ck_assert_int_eq(ftruncate(mfd, 64 * 4096), 0);
	raw_open_opts(&r, 4);
	negotiate(&r, 0);
	ck_assert_uint_eq(get_u64(&r, VHU_REQ_GET_MAX_MEM_SLOTS), 4);
	for (int i = 0; i < 5; i++) {
		struct vhu_mem_reg_msg one = {
			0, { (uint64_t)i * 4096, 4096, 0x10000000 + (uint64_t)i * 4096,
			     (uint64_t)i * 4096 } };
		ck_assert_uint_eq(send_ack(&r, VHU_REQ_ADD_MEM_REG, &one, sizeof(one),
					   &mfd, 1), i < 4 ? 0 : 1);
	}
	ck_assert_uint_eq(vhu_dev_mem_regions(r.dev), 4);
	close(mfd);
	raw_aftermath(&r);
	raw_close(&r);
}
END_TEST

/* ---- vring setup (18-24) -------------------------------------------- */

START_TEST(vring_index_and_bits)
{
	struct raw r;
	int efd = eventfd(0, EFD_CLOEXEC);

	raw_open(&r);
	negotiate(&r, 0);
	ck_assert_uint_eq(set_state(&r, VHU_REQ_SET_VRING_NUM, 2, 256), 1);
	ck_assert_int_eq(r.last_rc, -ERANGE);
	ck_assert_uint_eq(set_state(&r, VHU_REQ_SET_VRING_NUM, 0x10000, 256), 1);
	ck_assert_uint_eq(set_state(&r, VHU_REQ_SET_VRING_NUM, 0xffffffffu, 256), 1);
	ck_assert_uint_eq(set_addr(&r, 7, 0, 0, 0), 1);
	ck_assert_uint_eq(kick(&r, VHU_REQ_SET_VRING_CALL, 2, efd), 1);
	ck_assert_uint_eq(kick(&r, VHU_REQ_SET_VRING_CALL, 0x200 | 1, efd), 1);
	ck_assert_uint_eq(kick(&r, VHU_REQ_SET_VRING_CALL, (1ull << 40), efd), 1);
	ck_assert_uint_eq(kick(&r, VHU_REQ_SET_VRING_ERR, 1, efd), 0);
	/* GET_VRING_BASE of a bad index: no way to say no, so hang up */
	struct vhu_vring_state s = { 9, 0 };
	send_req(&r, VHU_REQ_GET_VRING_BASE, &s, sizeof(s), NULL, 0);
	ck_assert(peer_closed(&r));
	close(efd);
	raw_aftermath(&r);
	raw_close(&r);
}
END_TEST

START_TEST(vring_num_rules)
{
	struct raw r;
	struct vhu_queue_info qi;

	raw_open(&r);
	negotiate(&r, 0);
	uint32_t bad[] = { 0, 3, 100, 65536, 32769, 0xffffffffu };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_uint_eq(set_state(&r, VHU_REQ_SET_VRING_NUM, 0, bad[i]), 1);
	ck_assert_uint_eq(set_state(&r, VHU_REQ_SET_VRING_NUM, 0, 1), 0);
	ck_assert_uint_eq(set_state(&r, VHU_REQ_SET_VRING_NUM, 0, 32768), 0);
	/* class 38: a refused size leaves the accepted one in place */
	ck_assert_uint_eq(set_state(&r, VHU_REQ_SET_VRING_NUM, 0, 12345), 1);
	ck_assert_int_eq(vhu_dev_queue_info(r.dev, 0, &qi), 0);
	ck_assert_uint_eq(qi.size, 32768);
	raw_aftermath(&r);
	raw_close(&r);
}
END_TEST

START_TEST(vring_start_needs_everything)
{
	struct raw r;
	int efd = eventfd(0, EFD_CLOEXEC);
	struct vhu_queue_info qi;

	raw_open(&r);
	negotiate(&r, 0);
	/* kick before memory, size, address */
	ck_assert_uint_eq(kick(&r, VHU_REQ_SET_VRING_KICK, 0, efd), 1);
	ck_assert(tu_log_contains("cannot start without SET_VRING_NUM"));
	ck_assert_uint_eq(set_state(&r, VHU_REQ_SET_VRING_NUM, 0, QSZ), 0);
	ck_assert_uint_eq(kick(&r, VHU_REQ_SET_VRING_KICK, 0, efd), 1);
	ck_assert(tu_log_contains("cannot start without SET_VRING_ADDR"));
	ck_assert_uint_eq(set_addr(&r, 0, 0x1000, 0x2000, 0x3000), 0);
	ck_assert_uint_eq(kick(&r, VHU_REQ_SET_VRING_KICK, 0, efd), 1);
	ck_assert(tu_log_contains("cannot start without SET_MEM_TABLE"));
	map_memory(&r);
	/* addresses outside memory */
	ck_assert_uint_eq(kick(&r, VHU_REQ_SET_VRING_KICK, 0, efd), 1);
	ck_assert(tu_log_contains("is not inside guest memory"));
	/* misaligned */
	ck_assert_uint_eq(set_addr(&r, 0, uva(&r, 8), uva(&r, 0x4000), uva(&r, 0x5000)), 0);
	ck_assert_uint_eq(kick(&r, VHU_REQ_SET_VRING_KICK, 0, efd), 1);
	ck_assert(tu_log_contains("misaligned"));
	/* used ring running past the end of the region */
	ck_assert_uint_eq(set_addr(&r, 0, uva(&r, 0), uva(&r, 0x4000),
				   uva(&r, r.memsz - 1024)), 0);
	ck_assert_uint_eq(kick(&r, VHU_REQ_SET_VRING_KICK, 0, efd), 1);
	ck_assert_int_eq(vhu_dev_queue_info(r.dev, 0, &qi), 0);
	ck_assert(!qi.started);
	/* a kick fd that is not an eventfd */
	ck_assert_uint_eq(set_addr(&r, 0, uva(&r, 0), uva(&r, 0x4000), uva(&r, 0x5000)), 0);
	ck_assert_uint_eq(kick(&r, VHU_REQ_SET_VRING_KICK, 0, r.memfd), 1);
	ck_assert(tu_log_contains("not an eventfd"));
	/* and finally right */
	ck_assert_uint_eq(kick(&r, VHU_REQ_SET_VRING_KICK, 0, efd), 0);
	ck_assert_int_eq(vhu_dev_queue_info(r.dev, 0, &qi), 0);
	ck_assert(qi.started);
	ck_assert(!qi.enabled); /* protocol features: waits for SET_VRING_ENABLE */
	ck_assert_int_ge(qi.kick_fd, 0);
	/* a started ring refuses size, base and moves */
	ck_assert_uint_eq(set_state(&r, VHU_REQ_SET_VRING_NUM, 0, 64), 1);
	ck_assert_uint_eq(set_state(&r, VHU_REQ_SET_VRING_BASE, 0, 5), 1);
	ck_assert_uint_eq(set_addr(&r, 0, uva(&r, 0x8000), uva(&r, 0x4000), uva(&r, 0x5000)), 1);
	ck_assert_uint_eq(set_state(&r, VHU_REQ_SET_VRING_ENABLE, 0, 2), 1);
	ck_assert_uint_eq(set_state(&r, VHU_REQ_SET_VRING_ENABLE, 0, 1), 0);
	ck_assert_int_eq(vhu_dev_queue_info(r.dev, 0, &qi), 0);
	ck_assert(qi.enabled);
	close(efd);
	raw_aftermath(&r);
	raw_close(&r);
}
END_TEST

START_TEST(vring_base_rules)
{
	struct raw r;
	struct vhu_vring_state s = { 0, 0 };

	/* split: any 16-bit index, nothing larger */
	raw_open(&r);
	start_queue0(&r);
	send_req(&r, VHU_REQ_GET_VRING_BASE, &s, sizeof(s), NULL, 0);
	ck_assert_uint_eq(get_reply(&r, VHU_REQ_GET_VRING_BASE, &s, sizeof(s)), 8);
	ck_assert_uint_eq(s.num, 0);
	ck_assert_uint_eq(set_state(&r, VHU_REQ_SET_VRING_BASE, 0, 0x10000), 1);
	ck_assert_uint_eq(set_state(&r, VHU_REQ_SET_VRING_BASE, 0, 40000), 0);
	s = (struct vhu_vring_state){ 0, 0 };
	send_req(&r, VHU_REQ_GET_VRING_BASE, &s, sizeof(s), NULL, 0);
	ck_assert_uint_eq(get_reply(&r, VHU_REQ_GET_VRING_BASE, &s, sizeof(s)), 8);
	ck_assert_uint_eq(s.num, 40000);

	/* packed (a new connection): indexes below the ring size, wrap bits
	 * kept */
	raw_hangup(&r);
	raw_connect(&r);
	negotiate(&r, VHU_BIT(VHU_F_RING_PACKED));
	ck_assert_uint_eq(set_state(&r, VHU_REQ_SET_VRING_NUM, 0, 100), 0);
	ck_assert_uint_eq(set_state(&r, VHU_REQ_SET_VRING_BASE, 0, 100), 1);
	ck_assert_uint_eq(set_state(&r, VHU_REQ_SET_VRING_BASE, 0, (200u << 16) | 5), 1);
	/* used a lap behind by more than the ring: refused (class 43) */
	ck_assert_uint_eq(set_state(&r, VHU_REQ_SET_VRING_BASE, 0,
				    7u | (1u << 15) | (3u << 16)), 1);
	uint32_t st = 7u | (1u << 15) | (3u << 16) | (1u << 31);
	ck_assert_uint_eq(set_state(&r, VHU_REQ_SET_VRING_BASE, 0, st), 0);
	s = (struct vhu_vring_state){ 0, 0 };
	send_req(&r, VHU_REQ_GET_VRING_BASE, &s, sizeof(s), NULL, 0);
	ck_assert_uint_eq(get_reply(&r, VHU_REQ_GET_VRING_BASE, &s, sizeof(s)), 8);
	ck_assert_uint_eq(s.num, st);
	raw_aftermath(&r);
	raw_close(&r);
}
END_TEST

/* ---- lifecycle (35-38) ---------------------------------------------- */

START_TEST(lifecycle_order)
{
	struct raw r;

	raw_open(&r);
	/* ring set-up before features: refused (the request still claims the
	 * session, as DPDK's virtio-user never sends SET_OWNER) */
	ck_assert_uint_eq(set_state(&r, VHU_REQ_SET_VRING_NUM, 0, 256), 1);
	ck_assert(tu_log_contains("before SET_FEATURES"));
	ck_assert(tu_log_contains("session claimed implicitly"));
	/* an explicit SET_OWNER is still accepted once, not twice */
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_SET_OWNER, NULL, 0, NULL, 0), 0);
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_SET_OWNER, NULL, 0, NULL, 0), 1);
	/* bits never offered */
	ck_assert_uint_eq(ack_u64(&r, VHU_REQ_SET_FEATURES, VHU_BIT(63)), 1);
	ck_assert_uint_eq(ack_u64(&r, VHU_REQ_SET_FEATURES, VHU_BIT(VHU_F_ANY_LAYOUT)), 1);
	ck_assert_uint_eq(ack_u64(&r, VHU_REQ_SET_PROTOCOL_FEATURES,
				  VHU_BIT(VHU_PF_PAGEFAULT)), 1);
	ck_assert_uint_eq(vhu_dev_features(r.dev), 0);
	/* in-band notifications without its companions: the spec says hang up */
	send_u64(&r, VHU_REQ_SET_PROTOCOL_FEATURES,
		 VHU_BIT(VHU_PF_INBAND_NOTIFICATIONS));
	ck_assert(peer_closed(&r));
	raw_aftermath(&r);
	raw_close(&r);
}
END_TEST

START_TEST(mem_table_while_running)
{
	struct raw r;
	struct vhu_queue_info qi;

	int errfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	uint64_t cnt = 0;

	raw_open(&r);
	start_queue0(&r);
	ck_assert_uint_eq(kick(&r, VHU_REQ_SET_VRING_ERR, 0, errfd), 0);
	/* the same memory again: the ring keeps running */
	struct {
		struct vhu_mem_table_hdr h;
		struct vhu_mem_region reg[2];
	} __attribute__((packed)) t = { { 1, 0 }, { { 0, r.memsz, (uintptr_t)r.mem, 0 } } };
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_SET_MEM_TABLE, &t, 40, &r.memfd, 1), 0);
	ck_assert_int_eq(vhu_dev_queue_info(r.dev, 0, &qi), 0);
	ck_assert(qi.started && !qi.broken);
	/* memory that no longer holds the ring: the queue is broken, not the
	 * process */
	int other = memfd_create("other", MFD_CLOEXEC);
	ck_assert_int_eq(ftruncate(other, (off_t)MB), 0);
	t.reg[0] = (struct vhu_mem_region){ 0, MB, 0x7000000000, 0 };
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_SET_MEM_TABLE, &t, 40, &other, 1), 0);
	ck_assert_int_eq(vhu_dev_queue_info(r.dev, 0, &qi), 0);
	ck_assert(qi.broken);
	ck_assert_uint_eq(get_u64(&r, VHU_REQ_GET_STATUS) & 0x40, 0x40);
	/* the front-end's error eventfd was signalled */
	ck_assert_int_eq(read(errfd, &cnt, sizeof(cnt)), sizeof(cnt));
	ck_assert_uint_eq(cnt, 1);
	close(errfd);
	close(other);
	raw_aftermath(&r);
	raw_close(&r);
}
END_TEST

START_TEST(reset_then_reuse)
{
	struct raw r;
	struct vhu_queue_info qi;

	raw_open(&r);
	start_queue0(&r);
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_RESET_OWNER, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(vhu_dev_queue_info(r.dev, 0, &qi), 0);
	ck_assert(!qi.started);
	ck_assert_uint_eq(send_ack(&r, VHU_REQ_RESET_DEVICE, NULL, 0, NULL, 0), 0);
	ck_assert_uint_eq(vhu_dev_features(r.dev), 0);
	ck_assert_int_eq(vhu_dev_queue_info(r.dev, 0, &qi), 0);
	ck_assert_uint_eq(qi.size, 0);
	/* set up again on the same connection */
	uint64_t f = VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_PROTOCOL_FEATURES);
	ck_assert_uint_eq(ack_u64(&r, VHU_REQ_SET_FEATURES, f), 0);
	ck_assert_uint_eq(set_state(&r, VHU_REQ_SET_VRING_NUM, 0, QSZ), 0);
	ck_assert_uint_eq(set_addr(&r, 0, uva(&r, 0), uva(&r, 0x4000), uva(&r, 0x5000)), 0);
	ck_assert_uint_eq(kick(&r, VHU_REQ_SET_VRING_KICK, VHU_VRING_NOFD, -1), 0);
	ck_assert_int_eq(vhu_dev_queue_info(r.dev, 0, &qi), 0);
	ck_assert(qi.started);
	ck_assert_int_eq(r.started[0], 2);
	raw_aftermath(&r);
	raw_close(&r);
}
END_TEST

/* The front-end goes away with an fd in flight (a header whose payload
 * never comes): the device drops everything of the session.  Then a
 * front-end that leaves right after asking for a reply: the reply goes to
 * a closed socket (no SIGPIPE), and the session ends the same way. */
START_TEST(disconnect_releases_everything)
{
	struct raw r;
	struct vhu_queue_info qi;
	int efd = eventfd(0, EFD_CLOEXEC);

	raw_open(&r);
	start_queue0(&r);
	ck_assert_uint_eq(kick(&r, VHU_REQ_SET_VRING_CALL, 1, efd), 0);
	send_hdr_fds(&r, VHU_REQ_SET_VRING_KICK, 8, &efd, 1);
	raw_hangup(&r);
	ck_assert_int_eq(r.disconnects, 1);
	ck_assert_uint_eq(vhu_dev_mem_regions(r.dev), 0);
	ck_assert_int_eq(vhu_dev_queue_info(r.dev, 0, &qi), 0);
	ck_assert(!qi.started && qi.kick_fd < 0 && qi.call_fd < 0 && qi.size == 0);
	raw_connect(&r);
	ck_assert_int_eq(vhu_msg_send(r.fd, VHU_REQ_GET_FEATURES, VHU_FLAG_VERSION,
				      NULL, 0, NULL, 0, 1000), 0);
	raw_hangup(&r);
	ck_assert_int_eq(r.disconnects, 2);
	close(efd);
	raw_aftermath(&r);
	raw_close(&r);
}
END_TEST

START_TEST(opts_validation)
{
	struct vhu_dev_opts o = { .sz = sizeof(o), .num_queues = 2 };
	struct vhu_dev *d;
	struct {
		struct vhu_dev_opts o;
		uint64_t future;
	} big = { .o = { .sz = sizeof(big), .num_queues = 2 }, .future = 1 };

	d = vhu_dev_new(&o);
	ck_assert_ptr_nonnull(d);
	vhu_dev_free(d);
	o.num_queues = 0;
	ck_assert_ptr_null(vhu_dev_new(&o));
	ck_assert_int_eq(errno, EINVAL);
	o.num_queues = 3;
	o.queue_pairs = true;
	ck_assert_ptr_null(vhu_dev_new(&o));
	o.queue_pairs = false;
	o.device_features = VHU_BIT(VHU_F_RING_PACKED);
	ck_assert_ptr_null(vhu_dev_new(&o));
	o.device_features = 0;
	o.max_queue_size = 65536;
	ck_assert_ptr_null(vhu_dev_new(&o));
	/* a larger struct from a newer caller: unknown non-zero tail refused */
	ck_assert_ptr_null(vhu_dev_new(&big.o));
	big.future = 0;
	d = vhu_dev_new(&big.o);
	ck_assert_ptr_nonnull(d);
	vhu_dev_free(d);
	ck_assert_ptr_null(vhu_dev_new(NULL));
}
END_TEST

/* Is GET_FEATURES on @fd answered by @d? */
static bool answers(struct vhu_dev *d, int fd)
{
	struct vhu_logger lg;
	struct vhu_rx rx;
	bool ok;

	vhu_logger_init(&lg, tu_log, NULL, VHU_LOG_DEBUG, "test");
	vhu_rx_init(&rx);
	ck_assert_int_eq(vhu_msg_send(fd, VHU_REQ_GET_FEATURES, VHU_FLAG_VERSION,
				      NULL, 0, NULL, 0, 1000), 0);
	for (int i = 0; i < 10; i++)
		vhu_dev_poll(d, 10);
	ok = vhu_msg_recv_timeout(fd, &rx, &lg, 1000) == 1 &&
	     rx.msg.hdr.request == VHU_REQ_GET_FEATURES;
	vhu_rx_reset(&rx);
	return ok;
}

/* The --fd convention: one connection at a time, and the next fd once the
 * last connection is gone. */
START_TEST(attach_fd_again)
{
	struct vhu_dev_opts o = { .sz = sizeof(o), .num_queues = 2, .log = tu_log };
	struct vhu_dev *d = vhu_dev_new(&o);
	int fds = tu_count_fds();
	int a[2], b[2];

	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b), 0);
	ck_assert_int_eq(vhu_dev_attach_fd(d, a[0]), 0);
	ck_assert(answers(d, a[1]));
	ck_assert_int_eq(vhu_dev_attach_fd(d, b[0]), -EBUSY); /* a is up */
	close(a[1]);
	for (int i = 0; i < 10 && vhu_dev_is_connected(d); i++)
		vhu_dev_poll(d, 10);
	ck_assert(!vhu_dev_is_connected(d));
	ck_assert_int_eq(vhu_dev_attach_fd(d, b[0]), 0);
	ck_assert(answers(d, b[1]));
	ck_assert_int_eq(vhu_dev_listen(d, tu_sock_path("fd")), -EBUSY);
	vhu_dev_free(d);
	close(b[1]);
	ck_assert_int_eq(tu_count_fds(), fds); /* the device closed a[0] and b[0] */
}
END_TEST

int main(void)
{
	Suite *s = suite_create("codec");
	TCase *rt = tcase_create("round-trip");
	TCase *fr = tcase_create("framing");
	TCase *mt = tcase_create("memory");
	TCase *vr = tcase_create("vring");
	TCase *lc = tcase_create("lifecycle");
	TCase *catalogue[] = { fr, mt, vr, lc };

	for (size_t i = 0; i < sizeof(catalogue) / sizeof(catalogue[0]); i++) {
		tcase_add_checked_fixture(catalogue[i], tu_log_clear, NULL);
		tcase_add_checked_fixture(catalogue[i], aftermath_setup,
					  aftermath_teardown);
	}
	tcase_add_test(rt, table_is_complete);
	tcase_add_test(rt, every_request_round_trips);
	tcase_add_test(rt, partial_reads_reassemble);
	tcase_add_test(rt, opts_validation);
	tcase_add_test(rt, attach_fd_again);
	tcase_add_test(fr, short_header_then_eof);
	tcase_add_test(fr, oversized_size_with_fds);
	tcase_add_test(fr, truncated_payload_and_stall);
	tcase_add_test(fr, unknown_and_backend_codes);
	tcase_add_test(fr, wrong_fd_counts);
	tcase_add_test(fr, bad_header_flags);
	tcase_add_test(fr, wrong_payload_sizes);
	tcase_add_test(fr, repeated_requests_stay_flat);
	tcase_set_timeout(fr, 120);
	tcase_add_test(mt, mem_table_rules);
	tcase_add_test(mt, bad_regions);
	tcase_add_test(mt, mem_slot_limit);
	tcase_add_test(vr, vring_index_and_bits);
	tcase_add_test(vr, vring_num_rules);
	tcase_add_test(vr, vring_start_needs_everything);
	tcase_add_test(vr, vring_base_rules);
	tcase_add_test(lc, lifecycle_order);
	tcase_add_test(lc, mem_table_while_running);
	tcase_add_test(lc, reset_then_reuse);
	tcase_add_test(lc, disconnect_releases_everything);
	suite_add_tcase(s, rt);
	suite_add_tcase(s, fr);
	suite_add_tcase(s, mt);
	suite_add_tcase(s, vr);
	suite_add_tcase(s, lc);
	return tu_run_suite(s);
}
