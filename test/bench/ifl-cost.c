/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ifl-cost - what inflight tracking costs a request, for
 * bench/inflight-cost.sh, which runs it under callgrind counting only the
 * instructions inside vhu_vq_pop() and vhu_vq_push().
 *
 *	ifl-cost split|packed on|off ROUNDS
 *
 * Queue 0 of two of 256 entries, driven by the in-tree front-end (vqenv) in
 * this process; the device tracks requests (vhu_dev_opts.inflight and
 * the front-end's region) with "on".  Each round the driver makes 32
 * virtio-blk-shaped requests available (a 16-byte header, 4 KiB of data
 * to fill, a status byte), the device pops them in one call and pushes
 * them back in one call in reverse order (out of order, as a disk
 * completes them), and the driver reaps them.  Prints the requests done.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vqenv.h"

#define BATCH 32

static void round_of(struct env *e, struct vhu_vq *vq, uint64_t hdr,
		     uint64_t data, uint64_t status)
{
	struct vhu_fe_ring *r = ring(e, 0);
	struct vhu_req reqs[BATCH], rev[BATCH];
	struct vhu_seg segs[BATCH * 4];
	uint32_t written[BATCH];
	uint16_t id;
	uint32_t len;
	void *tok;
	int n;

	for (unsigned i = 0; i < BATCH; i++) {
		struct vhu_fe_buf b[3] = {
			{ hdr + 16 * i, 16 },
			{ data + 4096 * (uint64_t)i, 4096 },
			{ status + i, 1 },
		};

		if (vhu_fe_ring_add(r, b, 1, 2, (void *)(uintptr_t)(i + 1)) < 0)
			abort();
	}
	vhu_fe_ring_publish(r);
	if (!(vhu_vq_begin(vq) & VHU_VQ_RUNNING))
		abort();
	n = vhu_vq_pop(vq, reqs, BATCH, segs, BATCH * 4);
	if (n != BATCH)
		abort();
	for (int i = 0; i < n; i++) {
		rev[i] = reqs[n - 1 - i];
		written[i] = 4097;
	}
	if (vhu_vq_push(vq, rev, written, (unsigned)n))
		abort();
	vhu_vq_end(vq);
	for (int i = 0; i < n; i++)
		if (vhu_fe_ring_get_used(r, &id, &len, &tok) != 1)
			abort();
}

static const char *ring_kind, *tracking;
static long rounds;

/* vqenv checks with Check's asserts: the work runs as a Check test, in
 * this process (CK_NOFORK), so callgrind sees it. */
START_TEST(run)
{
	struct env e;
	struct vhu_vq *vq;
	uint64_t hdr, data, status;

	env_up(&e, &(struct env_opts){ .name = "ifl-cost",
				       .packed = !strcmp(ring_kind, "packed"),
				       .qsize = 256,
				       .region_size = 8 * MB,
				       .inflight = !strcmp(tracking, "on") });
	vq = vhu_dev_vq(e.dev, 0);
	hdr = galloc(&e, 16 * BATCH);
	data = galloc(&e, 4096 * BATCH);
	status = galloc(&e, BATCH);
	for (long i = 0; i < rounds; i++)
		round_of(&e, vq, hdr, data, status);
	printf("ifl-cost: %s inflight %s requests %ld\n", ring_kind, tracking,
	       rounds * BATCH);
	env_down(&e);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s = suite_create("ifl-cost");
	TCase *tc = tcase_create("run");
	SRunner *sr;
	int failed;

	if (argc != 4 || (strcmp(argv[1], "split") && strcmp(argv[1], "packed")) ||
	    (strcmp(argv[2], "on") && strcmp(argv[2], "off")) ||
	    (rounds = atol(argv[3])) <= 0) {
		fprintf(stderr, "usage: ifl-cost split|packed on|off ROUNDS\n");
		return 2;
	}
	ring_kind = argv[1];
	tracking = argv[2];
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, run);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
