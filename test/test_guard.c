/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Guest memory that vanishes under running rings (class 12 of
 * shared/HOSTILE-INPUTS.md, second half): the front-end truncates the
 * unsealed memfd behind a region vhu mapped, and the next access raises
 * SIGBUS.  With the opt-in guard (vhu/guard.h) the process lives: the
 * access reads zeros, the device's queues break with a log line and the
 * error eventfd, another device keeps serving, the same device serves a
 * fresh front-end, and no fd or memory is left behind.
 *
 * The access that faults is either the application's (copying from a
 * segment vhu_vq_pop() returned) or vhu's own (vhu_net_dequeue() copying
 * the frame).
 */
#define _GNU_SOURCE
#include <check.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vhu/vhu.h>

#include "fe.h"
#include "testutil.h"
#include "vqenv.h"

#define BUF_LEN 1024
#define TXQ 1

/* The application's pointer for its handler, as in vhu/guard.h. */
static struct vhu_guard *guard;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (vhu_guard_handle_fault(guard, si))
		return;
	signal(sig, SIG_DFL);
	raise(sig);
}

static void guard_install(void)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };

	guard = vhu_guard_new(0);
	ck_assert_ptr_nonnull(guard);
	ck_assert_int_eq(sigaction(SIGBUS, &sa, NULL), 0);
}

static void guard_remove(void)
{
	signal(SIGBUS, SIG_DFL);
	vhu_guard_free(guard);
	guard = NULL;
}

/* @len bytes in the front-end's second region (the rings are in the
 * first, so truncating the second leaves the driver side usable). */
static uint64_t alloc_in_region1(struct env *e, uint32_t len)
{
	struct vhu_fe_region *r = vhu_fe_mem_region(e->fe, 1);
	uint64_t gpa = r->lo;

	ck_assert_uint_le(gpa + len, r->hi);
	r->lo += len;
	return gpa;
}

/* Make one device-readable buffer of BUF_LEN bytes (pattern @seed)
 * available on the TX queue and kick. */
static uint64_t post_buffer(struct env *e, uint8_t seed)
{
	uint64_t gpa = alloc_in_region1(e, BUF_LEN);
	struct vhu_fe_buf b = { gpa, BUF_LEN };

	fill(e, gpa, BUF_LEN, seed);
	/* A valid virtio-net header (no offloads) for vhu_net_dequeue(). */
	memset(vhu_fe_gpa_to_ptr(e->fe, gpa, 12), 0, 12);
	ck_assert_int_ge(vhu_fe_ring_add(ring(e, TXQ), &b, 1, 0, NULL), 0);
	vhu_fe_ring_publish(ring(e, TXQ));
	ck_assert_int_eq(vhu_fe_queue_kick(e->fe, TXQ), 0);
	wait_kick(e, TXQ);
	vhu_vq_kick_clear(vhu_dev_vq(e->dev, TXQ));
	return gpa;
}

enum access { BY_APPLICATION, BY_VHU, ACCESS_COUNT };

/* Take the posted buffer and copy its bytes into @out, either from the
 * segment (the application touches guest memory) or through
 * vhu_net_dequeue() (vhu does); return it to the driver. */
static void consume(struct env *e, enum access how, uint8_t *out)
{
	struct vhu_vq *vq = vhu_dev_vq(e->dev, TXQ);
	uint32_t hdr = 0;

	if (how == BY_VHU) {
		struct vhu_net_pkt pkt;
		void *bufs[1] = { out };

		hdr = vhu_net_hdr_size(vq);
		ck_assert_int_eq(vhu_net_dequeue(vq, &pkt, bufs, BUF_LEN, 1), 1);
		ck_assert_uint_eq(pkt.len, BUF_LEN - hdr);
		memmove(out + hdr, out, pkt.len); /* line up with the buffer */
		return;
	}
	struct vhu_req req;
	struct vhu_seg seg;

	ck_assert(vhu_vq_begin(vq) & VHU_VQ_RUNNING);
	ck_assert_int_eq(vhu_vq_pop(vq, &req, 1, &seg, 1), 1);
	ck_assert_uint_eq(seg.len, BUF_LEN);
	memcpy(out, seg.addr, BUF_LEN);
	ck_assert_int_eq(vhu_vq_push(vq, &req, NULL, 1), 0);
	vhu_vq_notify(vq);
	vhu_vq_end(vq);
}

/* A whole request through @e's TX queue, bytes checked. */
static void serve_one(struct env *e, enum access how, uint8_t seed)
{
	uint8_t out[BUF_LEN];
	uint32_t from = how == BY_VHU ? vhu_net_hdr_size(vhu_dev_vq(e->dev, TXQ)) : 0;
	uint64_t gpa = post_buffer(e, seed);
	const uint8_t *in = vhu_fe_gpa_to_ptr(e->fe, gpa, BUF_LEN);
	uint16_t id;
	uint32_t len;
	void *tok;

	consume(e, how, out);
	ck_assert_mem_eq(out + from, in + from, BUF_LEN - from);
	ck_assert_int_eq(vhu_fe_ring_get_used(ring(e, TXQ), &id, &len, &tok), 1);
}

static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, TMO) == 1;
}

START_TEST(truncated_region_breaks_only_its_device)
{
	enum access how = (enum access)(_i % ACCESS_COUNT);
	struct env_opts o = { .packed = _i >= ACCESS_COUNT, .qsize = 64 };
	int fds = tu_count_fds();
	long rss = tu_rss_pages();
	struct env victim, bystander;
	uint8_t out[BUF_LEN];

	guard_install();
	o.guard = guard;
	env_up(&victim, &o);
	env_up(&bystander, &o);
	serve_one(&victim, how, 1);

	/* The front-end shrinks the file under a posted buffer. */
	post_buffer(&victim, 2);
	tu_log_clear();
	ck_assert_int_eq(ftruncate(vhu_fe_mem_region(victim.fe, 1)->fd, 0), 0);
	memset(out, 0xee, sizeof(out));
	consume(&victim, how, out);
	ck_assert_uint_eq(vhu_guard_faults(guard), 1);
	/* The copy read the zero pages, not the pattern. */
	for (unsigned i = how == BY_VHU ? vhu_net_hdr_size(vhu_dev_vq(victim.dev, TXQ))
					: 0; i < BUF_LEN; i++)
		ck_assert_uint_eq(out[i], 0);

	/* Every queue of the device is broken from its next burst on. */
	for (int q = 0; q < 2; q++) {
		struct vhu_vq *vq = vhu_dev_vq(victim.dev, q);

		ck_assert(vhu_vq_begin(vq) & VHU_VQ_BROKEN);
		vhu_vq_end(vq);
		ck_assert(readable(victim.errfd[q]));
	}
	ck_assert(tu_log_contains("vanished under a mapping"));

	/* The other device never noticed; the victim serves a new front-end
	 * with new memory. */
	serve_one(&bystander, how, 3);
	env_reconnect(&victim);
	serve_one(&victim, how, 4);
	serve_one(&victim, how, 5);
	ck_assert_uint_eq(vhu_guard_faults(guard), 1);

	env_down(&victim);
	env_down(&bystander);
	guard_remove();
	ck_assert_int_eq(tu_count_fds(), fds);
	ck_assert_int_lt(tu_rss_pages() - rss, tu_rss_bound(2048));
}
END_TEST

/* The guard leaves faults outside guest memory alone: a process-private
 * file mapping that is truncated still kills (checked in a child). */
START_TEST(other_faults_keep_their_default)
{
	pid_t pid;
	int st;

	guard_install();
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		FILE *f = tmpfile();
		volatile uint8_t *p;

		if (!f || ftruncate(fileno(f), 4096))
			_exit(2);
		p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fileno(f), 0);
		if (p == MAP_FAILED || ftruncate(fileno(f), 0))
			_exit(3);
		(void)p[0];
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFSIGNALED(st));
	ck_assert_int_eq(WTERMSIG(st), SIGBUS);
	ck_assert_uint_eq(vhu_guard_faults(guard), 0);
	guard_remove();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("guard");
	TCase *t = tcase_create("sigbus");

	tcase_set_timeout(t, 60);
	tcase_add_loop_test(t, truncated_region_breaks_only_its_device, 0,
			    2 * ACCESS_COUNT);
	tcase_add_test(t, other_faults_keep_their_default);
	suite_add_tcase(s, t);
	return tu_run_suite(s);
}
