/* SPDX-License-Identifier: BSD-3-Clause */
/* The crashing back-end and its driver: see crashdev.h. */
#define _GNU_SOURCE
#include "crashdev.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vhu/vhu.h>
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define VALGRIND_CLO_CHANGE(opt) ((void)0)
#endif

#include "fe.h"
#include "internal.h" /* vhu_dev_crash_at() */
#include "testutil.h"

#define CD_TMO 5000
#define CD_MAX_TOKENS 256
#define CD_SEGS 8      /* segments of one request */
#define CD_HOLD 64     /* requests the child holds at most */
#define DATA_LEN 256

/* Child -> parent records. */
enum { R_POP = 1, R_DONE, R_ERR };
struct rec {
	uint32_t type;
	uint32_t arg;
	uint64_t token;
};

/* ---- the child: a back-end ------------------------------------------ */

struct child {
	const struct cd_opts *o;
	struct vhu_dev *dev;
	int rep;
	unsigned rs;          /* rand_r state */
	unsigned step;
	bool boundary;        /* this child does the test-made crash */
	int fds[8];
	int nfds;
	int64_t deadline;     /* ms, CLOCK_MONOTONIC; -1: no timer */
	struct held {
		struct vhu_req req;
		struct vhu_seg segs[CD_SEGS];
		uint64_t token;
	} held[CD_HOLD];
	unsigned nheld;
};

/* The library's crash point: die as a SIGKILL there would. */
static void die_here(void *arg)
{
	(void)arg;
	_exit(VHU_CRASH_EXIT);
}

static void report(struct child *c, uint32_t type, uint32_t arg, uint64_t token)
{
	struct rec r = { type, arg, token };

	if (write(c->rep, &r, sizeof(r)) != sizeof(r))
		_exit(91);
}

static void child_fail(struct child *c, uint32_t why, uint64_t token)
{
	report(c, R_ERR, why, token);
	_exit(92);
}

static int cl_watch(void *ctx, struct vhu_dev *dev, int fd)
{
	struct child *c = ctx;

	(void)dev;
	if (c->nfds == 8)
		return -ENOSPC;
	c->fds[c->nfds++] = fd;
	return 0;
}

static void cl_unwatch(void *ctx, struct vhu_dev *dev, int fd)
{
	struct child *c = ctx;

	(void)dev;
	for (int i = 0; i < c->nfds; i++)
		if (c->fds[i] == fd)
			c->fds[i--] = c->fds[--c->nfds];
}

static void cl_timer(void *ctx, struct vhu_dev *dev, int64_t ms)
{
	struct child *c = ctx;

	(void)dev;
	c->deadline = ms < 0 ? -1 : tu_now_ms() + ms;
}

static void cl_log(void *opaque, enum vhu_log_level level, const char *dev,
		   const char *msg)
{
	(void)opaque;
	if (level <= VHU_LOG_WARN)
		fprintf(stderr, "crashdev child %d: %s: %s\n", (int)getpid(), dev, msg);
}

/* The driver's pattern in readable data, the device's in writable bytes. */
static uint8_t rd_pat(uint64_t token, uint32_t off)
{
	return (uint8_t)(token * 7 + off);
}

static uint8_t wr_pat(uint64_t token, uint32_t off)
{
	return (uint8_t)(token * 31 + off * 3 + 1);
}

static void take(struct child *c, const struct vhu_req *r)
{
	struct held *h = &c->held[c->nheld++];
	uint32_t off = 0;

	if (r->nr_out + r->nr_in > CD_SEGS || r->nr_out < 1 || r->segs[0].len < 16)
		child_fail(c, 1, (uint64_t)r->nr_out << 48 | (uint64_t)r->nr_in << 32 |
			   (r->nr_out ? r->segs[0].len : 0));
	h->req = *r;
	memcpy(h->segs, r->segs, (r->nr_out + r->nr_in) * sizeof(h->segs[0]));
	h->req.segs = h->segs;
	memcpy(&h->token, h->segs[0].addr, sizeof(h->token));
	/* readable data after the 16-byte header */
	for (unsigned s = 1; s < r->nr_out; s++)
		for (uint32_t i = 0; i < h->segs[s].len; i++, off++)
			if (((uint8_t *)h->segs[s].addr)[i] != rd_pat(h->token, off))
				child_fail(c, 2, h->token);
	report(c, R_POP, 0, h->token);
}

static void complete(struct held *h)
{
	uint32_t off = 0;

	for (unsigned s = h->req.nr_out; s < h->req.nr_out + h->req.nr_in; s++)
		for (uint32_t i = 0; i < h->segs[s].len; i++, off++)
			((uint8_t *)h->segs[s].addr)[i] = wr_pat(h->token, off);
}

/* One burst: pop a few, push a random subset in a random order. */
static void child_step(struct child *c)
{
	struct vhu_vq *vq = vhu_dev_vq(c->dev, 0);
	static struct vhu_seg bsegs[CD_HOLD][CD_SEGS];
	struct vhu_req reqs[4], batch[CD_HOLD];
	struct vhu_seg segs[4 * CD_SEGS];
	uint32_t written[CD_HOLD];
	unsigned st = vhu_vq_begin(vq), want, k = 0;
	int n = 0;

	c->step++;
	if (st & VHU_VQ_RUNNING) {
		want = 1 + (unsigned)rand_r(&c->rs) % 4;
		if (want > CD_HOLD - c->nheld)
			want = CD_HOLD - c->nheld;
		n = want ? vhu_vq_pop(vq, reqs, want, segs, 4 * CD_SEGS) : 0;
		if (n < 0)
			child_fail(c, 3, (uint64_t)-n);
		for (int i = 0; i < n; i++)
			take(c, &reqs[i]);
		if (c->boundary && c->o->boundary == CD_AFTER_POP &&
		    c->step == c->o->boundary_step)
			_exit(VHU_CRASH_EXIT);
		/* nothing new: finish everything, so the run ends */
		k = n == 0 ? c->nheld : (unsigned)rand_r(&c->rs) % (c->nheld + 1);
		for (unsigned i = 0; i < k; i++) {
			unsigned j = (unsigned)rand_r(&c->rs) % c->nheld;

			complete(&c->held[j]);
			batch[i] = c->held[j].req;
			memcpy(bsegs[i], c->held[j].segs, sizeof(bsegs[i]));
			batch[i].segs = bsegs[i];
			written[i] = c->held[j].req.in_len;
			/* the segments stay where they are: move the copy */
			c->held[j] = c->held[--c->nheld];
			for (unsigned m = 0; m < c->nheld; m++)
				c->held[m].req.segs = c->held[m].segs;
		}
		for (unsigned i = 0, calls = 0; i < k; calls++) {
			unsigned g = 1 + (unsigned)rand_r(&c->rs) % 3;

			if (g > k - i)
				g = k - i;
			if (calls == 1 && c->boundary &&
			    c->o->boundary == CD_BETWEEN_PUSH &&
			    c->step == c->o->boundary_step)
				_exit(VHU_CRASH_EXIT);
			if (vhu_vq_push(vq, &batch[i], &written[i], g))
				child_fail(c, 4, batch[i].id);
			i += g;
		}
		vhu_vq_notify(vq);
	}
	vhu_vq_end(vq);
	report(c, R_DONE, (uint32_t)n, st);
}

static void child_loop(struct child *c, int cmd)
{
	for (;;) {
		struct pollfd p[9] = { { .fd = cmd, .events = POLLIN } };
		int snap[8], ns = c->nfds, tmo = -1;

		memcpy(snap, c->fds, sizeof(snap));
		for (int i = 0; i < ns; i++)
			p[1 + i] = (struct pollfd){ .fd = snap[i], .events = POLLIN };
		if (c->deadline >= 0)
			tmo = (int)(c->deadline > tu_now_ms() ? c->deadline - tu_now_ms() : 0);
		if (poll(p, (nfds_t)(1 + ns), tmo) < 0 && errno != EINTR)
			_exit(93);
		if (c->deadline >= 0 && tu_now_ms() >= c->deadline) {
			c->deadline = -1;
			vhu_dev_on_timer(c->dev);
		}
		for (int i = 0; i < ns; i++) {
			bool still = false;

			for (int j = 0; j < c->nfds; j++)
				still |= c->fds[j] == snap[i];
			if (still && p[1 + i].revents)
				vhu_dev_on_readable(c->dev, snap[i]);
		}
		if (p[0].revents) {
			char cmdc = 0;

			if (read(cmd, &cmdc, 1) != 1 || cmdc == 'Q') {
				vhu_dev_free(c->dev);
				_exit(0);
			}
			child_step(c);
		}
	}
}

static __attribute__((noreturn)) void child_main(const struct cd_opts *o,
						 unsigned gen, const char *path,
						 int cmd, int rep)
{
	static struct child c;
	struct vhu_loop loop = {
		.sz = sizeof(loop), .ctx = &c, .watch = cl_watch,
		.unwatch = cl_unwatch, .timer = cl_timer,
	};
	struct vhu_dev_opts d = {
		.sz = sizeof(d), .name = "blk", .num_queues = 1,
		.log = cl_log, .log_level = VHU_LOG_WARN, .loop = &loop,
		.reconnect_min_ms = 1, .reconnect_max_ms = 10,
		.inflight = !o->no_inflight,
	};

	c.o = o;
	c.rep = rep;
	c.rs = o->seed * 977 + gen * 131 + 7;
	c.deadline = -1;
	c.boundary = gen == 0 && o->boundary != CD_NONE;
	/* A back-end dies mid-request by design: what it held is no leak
	 * (valgrind would make its exit status 1); the parent is checked. */
	VALGRIND_CLO_CHANGE("--leak-check=no");
	signal(SIGPIPE, SIG_IGN);
	c.dev = vhu_dev_new(&d);
	if (!c.dev)
		_exit(94);
	vhu_dev_crash_at(c.dev, o->crash_at[gen], die_here, NULL);
	if (vhu_dev_connect(c.dev, path))
		_exit(95);
	child_loop(&c, cmd);
	_exit(96);
}

/* ---- the parent: the driver ----------------------------------------- */

struct tok {
	uint64_t hdr, data, status, table;
	uint32_t in_len;
	bool split_data;      /* data in two descriptors */
	bool writable;        /* a read request: data written by the device */
	bool indirect;
	bool popped, used;
};

struct drv {
	const struct cd_opts *o;
	struct cd_result *res;
	struct vhu_fe *fe;
	struct vhu_fe_handshake_opts h;
	struct tok t[CD_MAX_TOKENS + 1];
	unsigned ntok, next, nused;
	unsigned rs;
	pid_t pid;
	int cmd, rep;
	char path[108];
	/* the current child's pops: strictly increasing, first @expect */
	uint64_t expect[CD_MAX_TOKENS];
	unsigned nexpect, npops;
	uint64_t last_pop;
	uint64_t popped_max;  /* tokens 1 .. popped_max were taken */
};

static void drv_tokens(struct drv *d)
{
	for (unsigned i = 1; i <= d->ntok; i++) {
		struct tok *k = &d->t[i];

		ck_assert_int_eq(vhu_fe_mem_alloc(d->fe, 16, 16, &k->hdr), 0);
		ck_assert_int_eq(vhu_fe_mem_alloc(d->fe, DATA_LEN, 64, &k->data), 0);
		ck_assert_int_eq(vhu_fe_mem_alloc(d->fe, 1, 1, &k->status), 0);
		ck_assert_int_eq(vhu_fe_mem_alloc(d->fe, 64, 16, &k->table), 0);
		k->writable = i & 1;
		k->split_data = i % 3 == 0;
		k->indirect = d->o->indirect && !(i & 1);
		k->in_len = 1 + (k->writable ? DATA_LEN : 0);
		vhu_fe_st64(vhu_fe_gpa_to_ptr(d->fe, k->hdr, 8), i);
		if (!k->writable) {
			uint8_t *p = vhu_fe_gpa_to_ptr(d->fe, k->data, DATA_LEN);

			for (uint32_t b = 0; b < DATA_LEN; b++)
				p[b] = rd_pat(i, b);
		}
	}
}

/* Add token d->next if the ring has room. */
static bool drv_add(struct drv *d)
{
	struct vhu_fe_ring *r = vhu_fe_queue_ring(d->fe, 0);
	struct tok *k = &d->t[d->next];
	struct vhu_fe_buf b[4];
	unsigned n = 0, nout;
	int id;

	b[n++] = (struct vhu_fe_buf){ k->hdr, 16 };
	if (k->split_data) {
		b[n++] = (struct vhu_fe_buf){ k->data, DATA_LEN / 2 };
		b[n++] = (struct vhu_fe_buf){ k->data + DATA_LEN / 2, DATA_LEN / 2 };
	} else {
		b[n++] = (struct vhu_fe_buf){ k->data, DATA_LEN };
	}
	nout = k->writable ? 1 : n;
	b[n++] = (struct vhu_fe_buf){ k->status, 1 };
	if (r->num_free < (k->indirect ? 1 : n))
		return false;
	if (k->indirect)
		id = vhu_fe_ring_add_indirect(r, b, nout, n - nout,
					      vhu_fe_gpa_to_ptr(d->fe, k->table, 64),
					      k->table, (void *)(uintptr_t)d->next);
	else
		id = vhu_fe_ring_add(r, b, nout, n - nout, (void *)(uintptr_t)d->next);
	ck_assert_int_ge(id, 0);
	d->next++;
	return true;
}

static void drv_check_written(struct drv *d, uint64_t tn, uint32_t len)
{
	struct tok *k = &d->t[tn];
	const uint8_t *data = vhu_fe_gpa_to_ptr(d->fe, k->data, DATA_LEN);
	const uint8_t *st = vhu_fe_gpa_to_ptr(d->fe, k->status, 1);
	uint32_t off = 0;

	FAST_EQ(len, k->in_len);
	if (k->writable)
		for (; off < DATA_LEN; off++)
			if (data[off] != wr_pat(tn, off))
				ck_abort_msg("token %llu: data byte %u is 0x%02x, want 0x%02x",
					     (unsigned long long)tn, off, data[off],
					     wr_pat(tn, off));
	ck_assert_msg(*st == wr_pat(tn, off), "token %llu: status 0x%02x",
		      (unsigned long long)tn, *st);
}

static void drv_reap(struct drv *d)
{
	struct vhu_fe_ring *r = vhu_fe_queue_ring(d->fe, 0);
	uint32_t len;
	void *tok;
	int rc;

	while ((rc = vhu_fe_ring_get_used(r, NULL, &len, &tok)) == 1) {
		uint64_t tn = (uintptr_t)tok;

		ck_assert_msg(tn >= 1 && tn < d->next, "used token %llu never added",
			      (unsigned long long)tn);
		ck_assert_msg(d->t[tn].popped, "token %llu used, never reported "
			      "popped", (unsigned long long)tn);
		ck_assert_msg(!d->t[tn].used, "token %llu used twice",
			      (unsigned long long)tn);
		d->t[tn].used = true;
		d->nused++;
		drv_check_written(d, tn, len);
	}
	ck_assert_msg(rc == 0, "the driver got a used id not in flight (%d)", rc);
}

static void drv_pop(struct drv *d, uint64_t tn)
{
	ck_assert_msg(tn >= 1 && tn < d->next, "popped token %llu never added",
		      (unsigned long long)tn);
	ck_assert_msg(!d->t[tn].used, "token %llu handed out again after it was "
		      "used", (unsigned long long)tn);
	if (d->npops < d->nexpect)
		ck_assert_msg(tn == d->expect[d->npops], "back-end %u pop %u: token "
			      "%llu, want %llu (in flight when it started)",
			      d->res->children - 1, d->npops,
			      (unsigned long long)tn,
			      (unsigned long long)d->expect[d->npops]);
	ck_assert_msg(tn > d->last_pop, "back-end %u popped token %llu after %llu",
		      d->res->children - 1, (unsigned long long)tn,
		      (unsigned long long)d->last_pop);
	/* the rest come from the ring in the driver's order: the first one
	 * no back-end took yet (or took without telling: it died in the pop) */
	if (d->npops >= d->nexpect)
		ck_assert_msg(tn <= d->popped_max + 1, "back-end %u popped token "
			      "%llu; token %llu was never taken",
			      d->res->children - 1, (unsigned long long)tn,
			      (unsigned long long)d->popped_max + 1);
	if (tn > d->popped_max)
		d->popped_max = tn;
	if (d->t[tn].popped)
		d->res->resubmitted++;
	d->t[tn].popped = true;
	d->last_pop = tn;
	d->npops++;
}

/* The child died (EOF on its pipe, or the session failed): it must have
 * been a crash. */
static void drv_wait_crash(struct drv *d)
{
	struct pollfd p = { .fd = d->rep, .events = POLLIN };
	struct rec r;
	int status;

	/* drain what it said before it died */
	for (;;) {
		ck_assert_msg(poll(&p, 1, CD_TMO) == 1, "back-end alive, not answering");
		if (read(d->rep, &r, sizeof(r)) != sizeof(r))
			break;
		ck_assert_msg(r.type == R_POP, "record %u from a dying back-end", r.type);
		drv_pop(d, r.token);
	}
	ck_assert_int_eq(waitpid(d->pid, &status, 0), d->pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == VHU_CRASH_EXIT,
		      "back-end %u ended with status 0x%x", d->res->children - 1,
		      status);
	close(d->cmd);
	close(d->rep);
	d->pid = -1;
	d->res->crashes++;
}

/* Start back-end number res->children and its session; false if it died
 * during the session. */
static bool drv_start(struct drv *d)
{
	unsigned gen = d->res->children++;
	int cmd[2], rep[2];
	uint64_t f;
	pid_t pid;

	ck_assert_uint_lt(gen, CD_MAX_CHILDREN);
	/* what it must hand out first */
	d->nexpect = d->npops = 0;
	d->last_pop = 0;
	for (unsigned i = 1; i < d->next; i++)
		if (d->t[i].popped && !d->t[i].used)
			d->expect[d->nexpect++] = i;
	if (gen && d->nexpect > d->res->held_max)
		d->res->held_max = d->nexpect;
	ck_assert_int_eq(pipe2(cmd, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(rep, O_CLOEXEC), 0);
	vhu_fe_disconnect(d->fe); /* the last one's, before the child copies it */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(cmd[1]);
		close(rep[0]);
		child_main(d->o, gen, d->path, cmd[0], rep[1]);
	}
	close(cmd[0]);
	close(rep[1]);
	d->pid = pid;
	d->cmd = cmd[1];
	d->rep = rep[0];
	ck_assert_int_eq(vhu_fe_accept(d->fe, CD_TMO), 0);
	if (vhu_fe_handshake(d->fe, &d->h, NULL) || vhu_fe_get_features(d->fe, &f)) {
		drv_wait_crash(d);
		return false;
	}
	return true;
}

/* One burst of the child; false if it died in it. */
static bool drv_step(struct drv *d)
{
	struct pollfd p = { .fd = d->rep, .events = POLLIN };
	unsigned add = 1 + (unsigned)rand_r(&d->rs) % 4;
	struct rec r;

	while (add-- && d->next <= d->ntok && drv_add(d))
		;
	vhu_fe_ring_publish(vhu_fe_queue_ring(d->fe, 0));
	d->res->steps++;
	if (write(d->cmd, "S", 1) != 1) {
		drv_wait_crash(d);
		return false;
	}
	for (;;) {
		ck_assert_msg(poll(&p, 1, CD_TMO) == 1, "back-end stuck in a burst");
		if (read(d->rep, &r, sizeof(r)) != sizeof(r)) {
			drv_wait_crash(d);
			return false;
		}
		ck_assert_msg(r.type != R_ERR, "back-end: error %u (0x%llx)",
			      r.arg, (unsigned long long)r.token);
		if (r.type == R_DONE)
			return true;
		drv_pop(d, r.token);
	}
}

void cd_run(const struct cd_opts *o, struct cd_result *res)
{
	struct drv *d = calloc(1, sizeof(*d));
	struct vhu_fe_mem_opts mo = { .sz = sizeof(mo), .nregions = 1,
				      .region_size = 1 << 20 };
	int status;

	ck_assert_ptr_nonnull(d);
	memset(res, 0, sizeof(*res));
	signal(SIGPIPE, SIG_IGN);
	d->o = o;
	d->res = res;
	d->ntok = o->tokens ? o->tokens : 24;
	ck_assert_uint_le(d->ntok, CD_MAX_TOKENS);
	d->next = 1;
	d->rs = o->seed;
	d->h = (struct vhu_fe_handshake_opts){
		.sz = sizeof(d->h), .num_queues = 1, .ring_size = o->qsize ? o->qsize : 8,
		.packed = o->packed, .keep_rings = true, .crash_base = true,
		.inflight = true,
	};
	snprintf(d->path, sizeof(d->path), "%s", tu_sock_path("crashdev"));
	d->fe = vhu_fe_listen(d->path);
	ck_assert_ptr_nonnull(d->fe);
	ck_assert_int_eq(vhu_fe_mem_setup(d->fe, &mo), 0);
	drv_tokens(d);
	while (!drv_start(d))
		drv_reap(d);
	for (unsigned spins = 0; d->nused < d->ntok; spins++) {
		ck_assert_msg(spins < 40 * d->ntok, "%u of %u requests done after %u "
			      "bursts", d->nused, d->ntok, spins);
		if (!drv_step(d)) {
			drv_reap(d);
			while (!drv_start(d))
				drv_reap(d);
		}
		drv_reap(d);
	}
	ck_assert_int_eq(write(d->cmd, "Q", 1), 1);
	ck_assert_int_eq(waitpid(d->pid, &status, 0), d->pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "last back-end ended with status 0x%x", status);
	close(d->cmd);
	close(d->rep);
	vhu_fe_free(d->fe);
	free(d);
}
