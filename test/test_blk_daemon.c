/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vhu-blk program itself, driven by the in-tree test front-end over
 * its socket: the config space, the features, requests on two queues
 * served by their own threads, and SIGTERM with requests in flight (a
 * clean exit, status 0).  The binary: the first argument, else
 * $VHU_BLK_BIN (ctest sets it), else ../examples/vhu-blk next to this
 * test's own binary; when there is none (built without libev) the suite
 * passes without running.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fe.h"
#include "testutil.h"
#include "virtio_blk.h"

#define IMG_SIZE (4 * 1024 * 1024)

static const char *blk_bin;
static char blk_bin_buf[4096];

/* BUILD_DIR/examples/vhu-blk, from BUILD_DIR/test/test_blk_daemon. */
static const char *bin_next_to_us(void)
{
	ssize_t n = readlink("/proc/self/exe", blk_bin_buf, sizeof(blk_bin_buf) - 32);
	char *slash;

	if (n <= 0)
		return NULL;
	blk_bin_buf[n] = 0;
	slash = strrchr(blk_bin_buf, '/');
	if (!slash)
		return NULL;
	strcpy(slash, "/../examples/vhu-blk");
	return blk_bin_buf;
}

struct daemon {
	pid_t pid;
	char img[64];
	char sock[108];
	struct vhu_fe *fe;
};

static void daemon_up(struct daemon *d, bool packed)
{
	int fd;

	snprintf(d->img, sizeof(d->img), "/var/tmp/vhu-blkd-test-XXXXXX");
	fd = mkstemp(d->img);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, IMG_SIZE), 0);
	close(fd);
	snprintf(d->sock, sizeof(d->sock), "%s", tu_sock_path("blkd"));
	d->pid = fork();
	ck_assert_int_ge(d->pid, 0);
	if (d->pid == 0) {
		execl(blk_bin, blk_bin, "--socket", d->sock, "--file", d->img,
		      "--queues", "2", "--serial", "daemon-test", (char *)NULL);
		_exit(127);
	}
	d->fe = vhu_fe_connect(d->sock, 5000);
	ck_assert_ptr_nonnull(d->fe);
	struct vhu_fe_handshake_opts h = { .sz = sizeof(h), .num_queues = 2,
					   .ring_size = 128, .packed = packed };
	ck_assert_int_eq(vhu_fe_handshake(d->fe, &h, NULL), 0);
}

/* SIGTERM; the exit status. */
static int daemon_down(struct daemon *d)
{
	int status = -1;

	kill(d->pid, SIGTERM);
	for (int i = 0; i < 1000; i++) {
		if (waitpid(d->pid, &status, WNOHANG) == d->pid)
			break;
		usleep(10000);
	}
	vhu_fe_free(d->fe);
	unlink(d->img);
	return status;
}

/* Post header + data + status on queue @q; returns the status gpa. */
static uint64_t post(struct daemon *d, uint16_t q, uint32_t type, uint64_t sector,
		     uint64_t data, uint32_t len, void *tok)
{
	struct virtio_blk_outhdr h = { .type = blk_le32(type), .sector = blk_le64(sector) };
	struct vhu_fe_buf b[3];
	bool in = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
	unsigned n = 0;

	ck_assert_int_eq(vhu_fe_mem_alloc(d->fe, 16, 16, &b[0].gpa), 0);
	b[n++].len = 16;
	ck_assert_int_eq(vhu_fe_mem_write(d->fe, b[0].gpa, &h, sizeof(h)), 0);
	if (len)
		b[n++] = (struct vhu_fe_buf){ data, len };
	ck_assert_int_eq(vhu_fe_mem_alloc(d->fe, 1, 1, &b[n].gpa), 0);
	b[n++].len = 1;
	ck_assert_int_ge(vhu_fe_ring_add(vhu_fe_queue_ring(d->fe, q), b,
					 in || !len ? 1 : 2, in && len ? 2 : 1, tok), 0);
	ck_assert_int_eq(vhu_fe_queue_notify(d->fe, q), 0);
	return b[n - 1].gpa;
}

/* Wait for one used request on queue @q; its used length. */
static uint32_t reap(struct daemon *d, uint16_t q)
{
	uint16_t id;
	uint32_t len;
	void *tok;

	for (int i = 0; i < 50; i++) {
		if (vhu_fe_ring_get_used(vhu_fe_queue_ring(d->fe, q), &id, &len, &tok) == 1)
			return len;
		vhu_fe_queue_wait_call(d->fe, q, 100, NULL);
	}
	ck_abort_msg("no used request on queue %u", q);
	return 0;
}

static uint8_t status_at(struct daemon *d, uint64_t gpa)
{
	uint8_t s = 0xaa;

	ck_assert_int_eq(vhu_fe_mem_read(d->fe, gpa, &s, 1), 0);
	return s;
}

START_TEST(serves_two_queues_and_exits_cleanly)
{
	struct daemon d;
	struct virtio_blk_config cfg;
	uint64_t buf[2], st;
	uint8_t pat[4096], file[4096];

	if (!blk_bin || access(blk_bin, X_OK))
		return; /* not built (no libev) */
	daemon_up(&d, _i);
	ck_assert_int_eq(vhu_fe_get_config(d.fe, 0, &cfg, sizeof(cfg), 0), 0);
	ck_assert_uint_eq(blk_le64(cfg.capacity), IMG_SIZE / 512);
	ck_assert_uint_eq(blk_le16(cfg.num_queues), 2);
	ck_assert_uint_eq(blk_le32(cfg.blk_size), 512);
	ck_assert_uint_eq(blk_le32(cfg.seg_max), 126);
	ck_assert_uint_eq(blk_le32(cfg.max_discard_seg), 16);
	uint64_t f = vhu_fe_offered_features(d.fe);
	ck_assert(f & (1ull << VIRTIO_BLK_F_FLUSH));
	ck_assert(f & (1ull << VIRTIO_BLK_F_MQ));
	ck_assert(f & (1ull << VIRTIO_BLK_F_DISCARD));
	ck_assert(!(f & (1ull << VIRTIO_BLK_F_RO)));
	ck_assert(!(f & (1ull << VIRTIO_F_IN_ORDER)));

	for (uint16_t q = 0; q < 2; q++) {
		for (unsigned i = 0; i < sizeof(pat); i++)
			pat[i] = (uint8_t)(i * 13 + q);
		ck_assert_int_eq(vhu_fe_mem_alloc(d.fe, 4096, 4096, &buf[q]), 0);
		ck_assert_int_eq(vhu_fe_mem_write(d.fe, buf[q], pat, sizeof(pat)), 0);
		st = post(&d, q, VIRTIO_BLK_T_OUT, 64 * (q + 1), buf[q], 4096, NULL);
		ck_assert_uint_eq(reap(&d, q), 1);
		ck_assert_uint_eq(status_at(&d, st), VIRTIO_BLK_S_OK);
		st = post(&d, q, VIRTIO_BLK_T_FLUSH, 0, 0, 0, NULL);
		ck_assert_uint_eq(reap(&d, q), 1);
		ck_assert_uint_eq(status_at(&d, st), VIRTIO_BLK_S_OK);
		int fd = open(d.img, O_RDONLY | O_CLOEXEC);

		ck_assert_int_eq(pread(fd, file, 4096, 64 * (q + 1) * 512), 4096);
		close(fd);
		ck_assert_int_eq(memcmp(file, pat, 4096), 0);
		memset(vhu_fe_gpa_to_ptr(d.fe, buf[q], 4096), 0, 4096);
		st = post(&d, q, VIRTIO_BLK_T_IN, 64 * (q + 1), buf[q], 4096, NULL);
		ck_assert_uint_eq(reap(&d, q), 4097);
		ck_assert_uint_eq(status_at(&d, st), VIRTIO_BLK_S_OK);
		ck_assert_int_eq(memcmp(vhu_fe_gpa_to_ptr(d.fe, buf[q], 4096), pat, 4096), 0);
	}
	/* GET_ID answers the serial */
	ck_assert_int_eq(vhu_fe_mem_alloc(d.fe, 20, 8, &buf[0]), 0);
	st = post(&d, 1, VIRTIO_BLK_T_GET_ID, 0, buf[0], 20, NULL);
	ck_assert_uint_eq(reap(&d, 1), 21);
	ck_assert_int_eq(memcmp(vhu_fe_gpa_to_ptr(d.fe, buf[0], 20), "daemon-test", 12), 0);
	/* requests in flight at SIGTERM: still a clean exit */
	for (unsigned i = 0; i < 8; i++)
		post(&d, i & 1, VIRTIO_BLK_T_IN, i, buf[i & 1], 4096, NULL);
	int status = daemon_down(&d);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("blk_daemon");
	TCase *tc = tcase_create("daemon");

	blk_bin = argc > 1 ? argv[1] : getenv("VHU_BLK_BIN");
	if (!blk_bin)
		blk_bin = bin_next_to_us();
	signal(SIGPIPE, SIG_IGN);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, serves_two_queues_and_exits_cleanly, 0, 2);
	suite_add_tcase(s, tc);
	return tu_run_suite(s);
}
