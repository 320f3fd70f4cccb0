/* SPDX-License-Identifier: BSD-3-Clause */
/* libev glue: one ev_io per watched fd, one ev_timer per device. */
#include <vhu/ev.h>

#include <errno.h>
#include <ev.h>
#include <stdlib.h>

struct vhu_ev_io {
	ev_io io;
	struct vhu_dev *dev;
	struct vhu_ev_io *next;
};

struct vhu_ev_timer {
	ev_timer timer;
	struct vhu_dev *dev;
	struct vhu_ev_timer *next;
};

struct vhu_ev {
	struct ev_loop *loop;
	struct vhu_loop ops;
	struct vhu_ev_io *ios;
	struct vhu_ev_timer *timers;
};

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct vhu_ev_io *io = (struct vhu_ev_io *)w;

	(void)loop;
	(void)revents;
	vhu_dev_on_readable(io->dev, w->fd);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct vhu_ev_timer *t = (struct vhu_ev_timer *)w;

	(void)loop;
	(void)revents;
	vhu_dev_on_timer(t->dev);
}

static int glue_watch(void *ctx, struct vhu_dev *dev, int fd)
{
	struct vhu_ev *g = ctx;
	struct vhu_ev_io *io = calloc(1, sizeof(*io));

	if (!io)
		return -ENOMEM;
	io->dev = dev;
	ev_io_init(&io->io, io_cb, fd, EV_READ);
	ev_io_start(g->loop, &io->io);
	io->next = g->ios;
	g->ios = io;
	return 0;
}

static void glue_unwatch(void *ctx, struct vhu_dev *dev, int fd)
{
	struct vhu_ev *g = ctx;

	for (struct vhu_ev_io **p = &g->ios; *p; p = &(*p)->next) {
		if ((*p)->dev == dev && (*p)->io.fd == fd) {
			struct vhu_ev_io *io = *p;

			ev_io_stop(g->loop, &io->io);
			*p = io->next;
			free(io);
			return;
		}
	}
}

static void glue_timer(void *ctx, struct vhu_dev *dev, int64_t ms)
{
	struct vhu_ev *g = ctx;
	struct vhu_ev_timer *t;

	for (t = g->timers; t && t->dev != dev; t = t->next)
		;
	if (!t) {
		if (ms < 0)
			return;
		t = calloc(1, sizeof(*t));
		if (!t)
			return; /* the device stays unconnected; nothing to corrupt */
		t->dev = dev;
		ev_init(&t->timer, timer_cb);
		t->next = g->timers;
		g->timers = t;
	}
	ev_timer_stop(g->loop, &t->timer);
	if (ms >= 0) {
		ev_timer_set(&t->timer, (double)ms / 1000.0, 0.0);
		ev_timer_start(g->loop, &t->timer);
	}
}

struct vhu_ev *vhu_ev_new(struct ev_loop *loop)
{
	struct vhu_ev *g;

	if (!loop) {
		errno = EINVAL;
		return NULL;
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->loop = loop;
	g->ops = (struct vhu_loop){
		.sz = sizeof(struct vhu_loop),
		.ctx = g,
		.watch = glue_watch,
		.unwatch = glue_unwatch,
		.timer = glue_timer,
	};
	return g;
}

const struct vhu_loop *vhu_ev_loop(struct vhu_ev *g)
{
	return &g->ops;
}

void vhu_ev_free(struct vhu_ev *g)
{
	if (!g)
		return;
	while (g->ios) {
		struct vhu_ev_io *io = g->ios;

		ev_io_stop(g->loop, &io->io);
		g->ios = io->next;
		free(io);
	}
	while (g->timers) {
		struct vhu_ev_timer *t = g->timers;

		ev_timer_stop(g->loop, &t->timer);
		g->timers = t->next;
		free(t);
	}
	free(g);
}
