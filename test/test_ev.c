/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The libev glue, driving a device in client mode: the front-end's socket
 * appears only after a while (reconnect with backoff through the glue's
 * timer), the session works through the glue's fd watch, and after the
 * front-end hangs up the device reconnects by itself.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <vhu/ev.h>

#include "protocol/conn.h"
#include "protocol/proto.h"
#include "testutil.h"

struct ctx {
	struct ev_loop *loop;
	const char *path;
	int lfd;          /* front-end's listening socket */
	int cfd;          /* accepted connection */
	int connects;
	int disconnects;
	int phase;
	uint64_t features;
	ev_timer appear;  /* makes the listening socket appear */
	ev_io accept_w;
	ev_io conn_w;
	ev_timer guard;
};

static void on_connected(struct vhu_dev *dev, void *opaque)
{
	((struct ctx *)opaque)->connects++;
}

static void on_disconnected(struct vhu_dev *dev, void *opaque)
{
	((struct ctx *)opaque)->disconnects++;
}

static void conn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctx *c = w->data;
	struct vhu_rx rx;
	struct vhu_logger lg;

	vhu_logger_init(&lg, tu_log, NULL, VHU_LOG_DEBUG, "fe");
	vhu_rx_init(&rx);
	ck_assert_int_eq(vhu_msg_recv_timeout(c->cfd, &rx, &lg, 1000), 1);
	ck_assert_uint_eq(rx.msg.hdr.request, VHU_REQ_GET_FEATURES);
	c->features = rx.msg.u.u64;
	vhu_rx_reset(&rx);
	ev_io_stop(loop, w);
	close(c->cfd);
	c->cfd = -1;
	if (++c->phase == 2) {
		ev_io_stop(loop, &c->accept_w);
		ev_break(loop, EVBREAK_ALL);
	}
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctx *c = w->data;

	c->cfd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(c->cfd, 0);
	ck_assert_int_eq(vhu_msg_send(c->cfd, VHU_REQ_GET_FEATURES, VHU_FLAG_VERSION,
				      NULL, 0, NULL, 0, 1000), 0);
	ev_io_init(&c->conn_w, conn_cb, c->cfd, EV_READ);
	c->conn_w.data = c;
	ev_io_start(loop, &c->conn_w);
}

static void appear_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctx *c = w->data;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->path);
	ck_assert_int_eq(bind(c->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(c->lfd, 4), 0);
	ev_io_init(&c->accept_w, accept_cb, c->lfd, EV_READ);
	c->accept_w.data = c;
	ev_io_start(loop, &c->accept_w);
}

static void guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

START_TEST(client_reconnects_through_libev)
{
	struct ctx c = { .lfd = -1, .cfd = -1 };
	static const struct vhu_dev_ops ops = {
		.sz = sizeof(ops),
		.connected = on_connected,
		.disconnected = on_disconnected,
	};
	struct vhu_ev *glue;
	struct vhu_dev *dev;
	int nfd = tu_count_fds();

	c.loop = ev_loop_new(EVFLAG_AUTO);
	c.path = tu_sock_path("ev");
	glue = vhu_ev_new(c.loop);
	ck_assert_ptr_nonnull(glue);
	struct vhu_dev_opts o = {
		.sz = sizeof(o), .name = "ev", .num_queues = 2, .ops = &ops,
		.opaque = &c, .log = tu_log, .log_level = VHU_LOG_DEBUG,
		.loop = vhu_ev_loop(glue), .reconnect_min_ms = 20,
		.reconnect_max_ms = 200,
	};
	dev = vhu_dev_new(&o);
	ck_assert_ptr_nonnull(dev);
	ck_assert_int_eq(vhu_dev_connect(dev, c.path), 0);
	ck_assert(!vhu_dev_is_connected(dev)); /* nobody listens yet */

	ev_timer_init(&c.appear, appear_cb, 0.5, 0.);
	c.appear.data = &c;
	ev_timer_start(c.loop, &c.appear);
	ev_timer_init(&c.guard, guard_cb, 20., 0.);
	ev_timer_start(c.loop, &c.guard);
	ev_run(c.loop, 0);

	ck_assert_int_eq(c.phase, 2);
	ck_assert_int_eq(c.connects, 2);       /* connected, dropped, reconnected */
	ck_assert_int_ge(c.disconnects, 1);
	ck_assert(c.features & VHU_BIT(VHU_F_VERSION_1));
	ck_assert(tu_log_contains("retrying in"));
	vhu_dev_free(dev);
	vhu_ev_free(glue);
	close(c.lfd);
	unlink(c.path);
	ev_loop_destroy(c.loop);
	ck_assert_int_eq(tu_count_fds(), nfd);
}
END_TEST

START_TEST(server_mode_through_libev)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct vhu_ev *glue = vhu_ev_new(loop);
	const char *path = tu_sock_path("evs");
	struct vhu_dev_opts o = {
		.sz = sizeof(o), .name = "evs", .num_queues = 2,
		.log = tu_log, .log_level = VHU_LOG_DEBUG, .loop = vhu_ev_loop(glue),
	};
	struct vhu_dev *dev = vhu_dev_new(&o);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct vhu_rx rx;
	struct vhu_logger lg;
	int fd;

	ck_assert_int_eq(vhu_dev_listen(dev, path), 0);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(vhu_msg_send(fd, VHU_REQ_GET_PROTOCOL_FEATURES,
				      VHU_FLAG_VERSION, NULL, 0, NULL, 0, 1000), 0);
	for (int i = 0; i < 10; i++)
		ev_run(loop, EVRUN_NOWAIT);
	vhu_logger_init(&lg, tu_log, NULL, VHU_LOG_DEBUG, "fe");
	vhu_rx_init(&rx);
	ck_assert_int_eq(vhu_msg_recv_timeout(fd, &rx, &lg, 1000), 1);
	ck_assert_uint_eq(rx.msg.u.u64, vhu_dev_offered_protocol_features(dev));
	ck_assert(vhu_dev_is_connected(dev));
	close(fd);
	for (int i = 0; i < 10; i++)
		ev_run(loop, EVRUN_NOWAIT);
	ck_assert(!vhu_dev_is_connected(dev));
	vhu_dev_free(dev);
	ck_assert_int_eq(access(path, F_OK), -1); /* socket file removed */
	vhu_ev_free(glue);
	ev_loop_destroy(loop);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ev");
	TCase *tc = tcase_create("ev");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, client_reconnects_through_libev);
	tcase_add_test(tc, server_mode_through_libev);
	suite_add_tcase(s, tc);
	return tu_run_suite(s);
}
