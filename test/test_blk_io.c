/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhu-blk's request path end to end: its queue loop (examples/blk/queue.c,
 * io.c, io_sync.c over a temporary image file) serves queue 0 of a vhu
 * device whose front-end is the in-tree test front-end, the test thread
 * being the data plane.  Split and packed rings, io_uring and synchronous
 * I/O: writes read back, FLUSH, DISCARD, WRITE_ZEROES (with and without
 * UNMAP), GET_ID, unsupported types, out-of-range and malformed requests,
 * many requests in flight at once, and a completion that arrives after
 * its queue restarted (dropped, not pushed into the new session).
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blk.h"
#include "vqenv.h"

#define IMG_SIZE (1024 * 1024)
#define CAPACITY (IMG_SIZE / 512)

struct blk_env {
	struct env e;
	char path[64];
	struct blk_image img;
	struct blk_config cfg;
	struct blk_queue q;
};

static void blk_up(struct blk_env *b, int variant)
{
	struct env_opts o = { .packed = variant & 1 };
	char err[256];
	int fd;

	memset(b, 0, sizeof(*b));
	snprintf(b->path, sizeof(b->path), "/var/tmp/vhu-blk-test-XXXXXX");
	fd = mkstemp(b->path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, IMG_SIZE), 0);
	close(fd);
	ck_assert_int_eq(blk_image_open(&b->img, b->path, false, err, sizeof(err)), 0);
	blk_config_build(&b->cfg, &b->img, 2, false);
	o.device_features = b->cfg.features;
	env_up(&b->e, &o);
	ck_assert_int_eq(blk_queue_init(&b->q, vhu_dev_vq(b->e.dev, 0), 0, &b->img,
					&b->cfg.lim, "serial-0123456789", 64,
					variant & 2, false), 0);
	if (!(variant & 2) && b->q.uring_err)
		fprintf(stderr, "test_blk_io: io_uring unavailable (%s): synchronous\n",
			strerror(-b->q.uring_err));
}

static void blk_down(struct blk_env *b)
{
	blk_queue_fini(&b->q);
	env_down(&b->e);
	blk_image_close(&b->img);
	unlink(b->path);
}

/* A request in guest memory. */
struct treq {
	uint64_t status_gpa;
	bool done;
	uint32_t len;
};

/* Post header (+ @ndata data buffers, writable if @data_in) + status. */
static void post(struct blk_env *b, struct treq *t, uint32_t type, uint64_t sector,
		 const struct vhu_fe_buf *data, unsigned ndata, bool data_in)
{
	struct virtio_blk_outhdr h = { .type = blk_le32(type), .sector = blk_le64(sector) };
	struct vhu_fe_buf bufs[16];
	unsigned n = 0;
	uint8_t ff = 0xff;

	ck_assert_uint_le(ndata, 14);
	bufs[n++] = (struct vhu_fe_buf){ galloc(&b->e, sizeof(h)), sizeof(h) };
	ck_assert_int_eq(vhu_fe_mem_write(b->e.fe, bufs[0].gpa, &h, sizeof(h)), 0);
	for (unsigned i = 0; i < ndata; i++)
		bufs[n++] = data[i];
	t->status_gpa = galloc(&b->e, 1);
	ck_assert_int_eq(vhu_fe_mem_write(b->e.fe, t->status_gpa, &ff, 1), 0);
	bufs[n++] = (struct vhu_fe_buf){ t->status_gpa, 1 };
	t->done = false;
	ck_assert_int_ge(vhu_fe_ring_add(ring(&b->e, 0), bufs,
					 data_in ? 1 : 1 + ndata,
					 data_in ? ndata + 1 : 1, t), 0);
	ck_assert_int_eq(vhu_fe_queue_notify(b->e.fe, 0), 0);
}

/* Run the queue until every request of @ts is used (10 s at most),
 * sleeping on its wake eventfd as its data-plane thread would. */
static void run_until_done(struct blk_env *b, struct treq **ts, unsigned n)
{
	unsigned left = n;

	for (int ms = 0; left && ms < 10000;) {
		uint16_t id;
		uint32_t len;
		void *tok;

		if (!blk_queue_run(&b->q, true)) {
			struct pollfd p = { .fd = b->q.wake_fd, .events = POLLIN };
			uint64_t v;

			ms += poll(&p, 1, 1) == 0;
			if (read(b->q.wake_fd, &v, sizeof(v)) < 0)
				ck_assert_int_eq(errno, EAGAIN);
		}
		while (vhu_fe_ring_get_used(ring(&b->e, 0), &id, &len, &tok) == 1) {
			struct treq *t = tok;

			ck_assert(!t->done);
			t->done = true;
			t->len = len;
			left--;
		}
	}
	ck_assert_uint_eq(left, 0);
	for (unsigned i = 0; i < n; i++)
		ck_assert(ts[i]->done);
}

static uint8_t status_of(struct blk_env *b, const struct treq *t)
{
	uint8_t s = 0xaa;

	ck_assert_int_eq(vhu_fe_mem_read(b->e.fe, t->status_gpa, &s, 1), 0);
	return s;
}

/* One request, waited for: returns its status, used length in *@len. */
static uint8_t one(struct blk_env *b, uint32_t type, uint64_t sector,
		   const struct vhu_fe_buf *data, unsigned ndata, bool data_in,
		   uint32_t *len)
{
	struct treq t, *tp = &t;

	post(b, &t, type, sector, data, ndata, data_in);
	run_until_done(b, &tp, 1);
	if (len)
		*len = t.len;
	return status_of(b, &t);
}

static uint64_t dalloc(struct blk_env *b, uint32_t size)
{
	uint64_t gpa;

	ck_assert_int_eq(vhu_fe_mem_alloc(b->e.fe, size, 4096, &gpa), 0);
	return gpa;
}

static void pattern(struct blk_env *b, uint64_t gpa, uint32_t len, uint8_t seed)
{
	fill(&b->e, gpa, len, seed);
}

static void expect_pattern(const uint8_t *p, uint32_t len, uint8_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		FAST_EQ(p[i], (uint8_t)(seed + i * 7));
}

static void expect_zero(const uint8_t *p, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		FAST_EQ(p[i], 0);
}

/* The guest's buffer at @gpa. */
static const uint8_t *gp(struct blk_env *b, uint64_t gpa, uint32_t len)
{
	const uint8_t *p = vhu_fe_gpa_to_ptr(b->e.fe, gpa, len);

	ck_assert_ptr_nonnull(p);
	return p;
}

static uint8_t range_req(struct blk_env *b, uint32_t type, uint64_t sector,
			 uint32_t n, uint32_t flags)
{
	struct virtio_blk_range r = { blk_le64(sector), blk_le32(n), blk_le32(flags) };
	struct vhu_fe_buf d = { galloc(&b->e, sizeof(r)), sizeof(r) };
	uint32_t len;
	uint8_t st;

	ck_assert_int_eq(vhu_fe_mem_write(b->e.fe, d.gpa, &r, sizeof(r)), 0);
	st = one(b, type, 0, &d, 1, false, &len);
	ck_assert_uint_eq(len, 1);
	return st;
}

START_TEST(io_paths)
{
	struct blk_env b;
	uint8_t file[8192];
	uint32_t len;

	blk_up(&b, _i);
	/* a write in three pieces, read back in two */
	struct vhu_fe_buf w[3] = { { dalloc(&b, 4096), 4096 }, { dalloc(&b, 3584), 3584 },
				   { dalloc(&b, 512), 512 } };
	pattern(&b, w[0].gpa, 4096, 1);
	pattern(&b, w[1].gpa, 3584, 2);
	pattern(&b, w[2].gpa, 512, 3);
	ck_assert_uint_eq(one(&b, VIRTIO_BLK_T_OUT, 8, w, 3, false, &len), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(len, 1);
	ck_assert_uint_eq(one(&b, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false, &len), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(len, 1);
	ck_assert_int_eq(pread(b.img.fd_buffered, file, sizeof(file), 8 * 512), (ssize_t)sizeof(file));
	expect_pattern(file, 4096, 1);
	expect_pattern(file + 4096, 3584, 2);
	expect_pattern(file + 7680, 512, 3);

	struct vhu_fe_buf r[2] = { { dalloc(&b, 1024), 1024 }, { dalloc(&b, 7168), 7168 } };
	ck_assert_uint_eq(one(&b, VIRTIO_BLK_T_IN, 8, r, 2, true, &len), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(len, 8192 + 1);
	expect_pattern(gp(&b, r[0].gpa, 1024), 1024, 1);
	ck_assert_int_eq(memcmp(gp(&b, r[1].gpa, 7168), file + 1024, 7168), 0);

	/* buffers O_DIRECT cannot take (64-byte aligned): the page cache */
	struct vhu_fe_buf u = { galloc(&b.e, 1024), 1024 };
	pattern(&b, u.gpa, 1024, 9);
	ck_assert_uint_eq(one(&b, VIRTIO_BLK_T_OUT, 100, &u, 1, false, NULL), VIRTIO_BLK_S_OK);
	struct vhu_fe_buf u2 = { galloc(&b.e, 1024), 1024 };
	ck_assert_uint_eq(one(&b, VIRTIO_BLK_T_IN, 100, &u2, 1, true, &len), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(len, 1025);
	expect_pattern(gp(&b, u2.gpa, 1024), 1024, 9);

	/* WRITE_ZEROES without and with UNMAP, DISCARD */
	ck_assert_uint_eq(range_req(&b, VIRTIO_BLK_T_WRITE_ZEROES, 8, 4, 0), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(range_req(&b, VIRTIO_BLK_T_WRITE_ZEROES, 12, 4,
				    VIRTIO_BLK_WZ_F_UNMAP), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(one(&b, VIRTIO_BLK_T_IN, 8, r, 2, true, &len), VIRTIO_BLK_S_OK);
	expect_zero(gp(&b, r[0].gpa, 1024), 1024);
	expect_zero(gp(&b, r[1].gpa, 7168), 3072);        /* sectors 10..15 */
	ck_assert_int_eq(memcmp(gp(&b, r[1].gpa, 7168) + 3072, file + 4096, 4096), 0);
	ck_assert_uint_eq(range_req(&b, VIRTIO_BLK_T_DISCARD, 16, 8, 0), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(range_req(&b, VIRTIO_BLK_T_DISCARD, CAPACITY - 1, 2, 0),
			  VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(range_req(&b, VIRTIO_BLK_T_DISCARD, 0, 1, VIRTIO_BLK_WZ_F_UNMAP),
			  VIRTIO_BLK_S_UNSUPP);

	/* GET_ID: the serial, 20 bytes */
	struct vhu_fe_buf id = { galloc(&b.e, 20), 20 };
	ck_assert_uint_eq(one(&b, VIRTIO_BLK_T_GET_ID, 0, &id, 1, true, &len), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(len, 21);
	ck_assert_int_eq(memcmp(gp(&b, id.gpa, 20), "serial-0123456789\0\0\0", 20), 0);

	/* refusals: unknown type, past the end, not a multiple of 512 */
	ck_assert_uint_eq(one(&b, 99, 0, NULL, 0, false, &len), VIRTIO_BLK_S_UNSUPP);
	ck_assert_uint_eq(len, 1);
	ck_assert_uint_eq(one(&b, VIRTIO_BLK_T_IN, CAPACITY - 1, r, 2, true, &len),
			  VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(len, 1);
	struct vhu_fe_buf odd = { dalloc(&b, 700), 700 };
	ck_assert_uint_eq(one(&b, VIRTIO_BLK_T_OUT, 0, &odd, 1, false, &len), VIRTIO_BLK_S_IOERR);

	/* malformed: a header of 8 bytes; no status byte at all */
	{
		struct vhu_fe_buf m[2] = { { galloc(&b.e, 8), 8 }, { galloc(&b.e, 1), 1 } };
		struct treq t, *tp = &t;

		t.status_gpa = m[1].gpa;
		t.done = false;
		ck_assert_int_ge(vhu_fe_ring_add(ring(&b.e, 0), m, 1, 1, &t), 0);
		ck_assert_int_eq(vhu_fe_queue_notify(b.e.fe, 0), 0);
		run_until_done(&b, &tp, 1);
		ck_assert_uint_eq(t.len, 1);
		ck_assert_uint_eq(status_of(&b, &t), VIRTIO_BLK_S_IOERR);

		m[0] = (struct vhu_fe_buf){ galloc(&b.e, 16), 16 };
		ck_assert_int_ge(vhu_fe_ring_add(ring(&b.e, 0), m, 1, 0, &t), 0);
		t.done = false;
		ck_assert_int_eq(vhu_fe_queue_notify(b.e.fe, 0), 0);
		run_until_done(&b, &tp, 1);
		ck_assert_uint_eq(t.len, 0);
	}
	ck_assert_uint_eq(atomic_load(&b.q.st.reqs[BLK_ST_OUT]), 3);
	ck_assert_uint_eq(atomic_load(&b.q.st.unsupp), 2);
	ck_assert_uint_eq(atomic_load(&b.q.st.no_status), 1);
	ck_assert_uint_eq(blk_queue_busy(&b.q), 0);
	blk_down(&b);
}
END_TEST

/* More requests than slots, in flight together; completions in any order. */
START_TEST(many_in_flight)
{
	enum { N = 80 }; /* 3 descriptors each in a ring of 256 */
	static struct treq t[N];
	static struct vhu_fe_buf d[N];
	struct treq *tp[N];
	struct blk_env b;

	blk_up(&b, _i);
	for (unsigned i = 0; i < N; i++) {
		d[i] = (struct vhu_fe_buf){ dalloc(&b, 2048), 2048 };
		pattern(&b, d[i].gpa, 2048, (uint8_t)i);
		post(&b, &t[i], VIRTIO_BLK_T_OUT, 4 * i, &d[i], 1, false);
		tp[i] = &t[i];
	}
	run_until_done(&b, tp, N);
	for (unsigned i = 0; i < N; i++) {
		ck_assert_uint_eq(status_of(&b, &t[i]), VIRTIO_BLK_S_OK);
		memset(vhu_fe_gpa_to_ptr(b.e.fe, d[i].gpa, 2048), 0, 2048);
		post(&b, &t[i], VIRTIO_BLK_T_IN, 4 * i, &d[i], 1, true);
	}
	run_until_done(&b, tp, N);
	for (unsigned i = 0; i < N; i++) {
		ck_assert_uint_eq(status_of(&b, &t[i]), VIRTIO_BLK_S_OK);
		ck_assert_uint_eq(t[i].len, 2049);
		expect_pattern(gp(&b, d[i].gpa, 2048), 2048, (uint8_t)i);
	}
	blk_down(&b);
}
END_TEST

/* A request whose I/O completes after its queue restarted is dropped. */
START_TEST(stale_completion_dropped)
{
	struct blk_env b;
	struct treq t;
	struct vhu_fe_buf d;

	blk_up(&b, _i);
	d = (struct vhu_fe_buf){ dalloc(&b, 4096), 4096 };
	post(&b, &t, VIRTIO_BLK_T_IN, 0, &d, 1, true);
	/* one round pops it and starts its I/O; the completion is not pushed
	 * until the next round */
	for (int i = 0; i < 1000 && blk_queue_busy(&b.q) == 0; i++) {
		blk_queue_run(&b.q, true);
		usleep(1000);
	}
	ck_assert_uint_eq(blk_queue_busy(&b.q), 1);
	for (int i = 0; i < 1000 && !b.q.io.done_head; i++) {
		blk_io_reap(&b.q.io);
		usleep(1000);
	}
	ck_assert_ptr_nonnull(b.q.io.done_head);
	env_reconnect(&b.e); /* the queue starts again: a new generation */
	atomic_fetch_add(&b.q.events, 1);
	blk_queue_run(&b.q, true);
	ck_assert_uint_eq(atomic_load(&b.q.st.stale), 1);
	ck_assert_uint_eq(blk_queue_busy(&b.q), 0);
	/* and the new session works */
	d = (struct vhu_fe_buf){ dalloc(&b, 4096), 4096 };
	pattern(&b, d.gpa, 4096, 5);
	ck_assert_uint_eq(one(&b, VIRTIO_BLK_T_OUT, 0, &d, 1, false, NULL), VIRTIO_BLK_S_OK);
	blk_down(&b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("blk_io");
	TCase *tc = tcase_create("io");

	tcase_set_timeout(tc, 120);
	/* _i: bit 0 packed rings, bit 1 synchronous I/O */
	tcase_add_loop_test(tc, io_paths, 0, 4);
	tcase_add_loop_test(tc, many_in_flight, 0, 4);
	tcase_add_loop_test(tc, stale_completion_dropped, 0, 4);
	suite_add_tcase(s, tc);
	return tu_run_suite(s);
}
