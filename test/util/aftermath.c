/* SPDX-License-Identifier: BSD-3-Clause */
/* The checks after a hostile input: see aftermath.h. */
#define _GNU_SOURCE
#include "aftermath.h"

#include <check.h>
#include <stdio.h>

#include "vqenv.h"

#define GUEST_MAPS "/memfd:"
#define RING 8
#define REGION MB

static struct {
	struct env bystander;
	int fds;
	int maps;
	long rss;
	bool checked;
} A;

void aftermath_setup(void)
{
	struct env_opts o = { .name = "bystander", .qsize = RING, .regions = 1,
			      .region_size = REGION };

	A.checked = false;
	A.fds = tu_count_fds();
	A.maps = tu_count_maps(GUEST_MAPS);
	A.rss = tu_rss_pages();
	env_up(&A.bystander, &o);
}

void aftermath_teardown(void)
{
	int fds, maps;
	long grown;

	env_down(&A.bystander);
	fds = tu_count_fds();
	maps = tu_count_maps(GUEST_MAPS);
	grown = tu_rss_pages() - A.rss;
	ck_assert_msg(A.checked, "the test never called aftermath_check()");
	ck_assert_msg(fds == A.fds, "%d fds open after the test, %d before", fds,
		      A.fds);
	ck_assert_msg(maps == A.maps, "%d guest memory mappings after the test, "
		      "%d before", maps, A.maps);
	ck_assert_msg(grown < tu_rss_bound(AFTERMATH_RSS_PAGES),
		      "RSS grew by %ld pages", grown);
}

static int dev_gone(void *dev)
{
	return !vhu_dev_is_connected(dev);
}

/* A new front-end on the attacked device: the whole session, data both
 * ways on both queues, and away again. */
static void fresh_session(const struct aftermath_target *t)
{
	struct env e = {
		.dev = t->dev, .be = t->be, .packed = t->packed, .qsize = RING,
		.nq = 2, .errfd = { -1, -1 },
		.h = { .sz = sizeof(e.h), .num_queues = 2, .ring_size = RING,
		       .packed = t->packed, .mem_regions = 1,
		       .mem_region_size = REGION },
	};

	snprintf(e.path, sizeof(e.path), "%s", t->path);
	if (!t->be) {
		e.be = tu_backend_start(t->dev);
		ck_assert_ptr_nonnull(e.be);
	}
	ck_assert_msg(tu_backend_wait(e.be, dev_gone, t->dev, TMO),
		      "the hostile front-end is still connected");
	env_connect(&e);
	round_trip(&e, 0, false, 0x51);
	round_trip(&e, 1, true, 0x52);
	env_disconnect(&e);
	if (!t->be)
		tu_backend_stop(e.be);
}

void aftermath_check(const struct aftermath_target *t)
{
	for (int q = 0; q < 2; q++)
		round_trip(&A.bystander, q, false, (uint8_t)(0x41 + q));
	fresh_session(t);
	A.checked = true;
}

void aftermath_env(struct env *e)
{
	env_disconnect(e);
	aftermath_check(&(struct aftermath_target){
		.dev = e->dev, .path = e->path, .be = e->be, .packed = e->packed });
}
