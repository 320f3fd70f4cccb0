/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A block-like back-end that dies, and the front-end that restarts it:
 * the harness of the inflight tracking tests.
 *
 * The back-end runs in a forked child process through the public API
 * (vhu_dev_new() in client mode with inflight tracking, its control fds
 * in a poll loop of its own, vhu_vq_begin/pop/push/notify/end), one
 * burst per command the parent sends.  It completes requests out of
 * order: it holds what it popped across bursts and pushes a pseudo-random
 * subset in a pseudo-random order, one to three requests per push call.
 * It reports every request it pops (the token the driver wrote in the
 * first 8 bytes of the request's first readable buffer) and, before the
 * push, writes a pattern of the token into every writable byte.  It dies
 * with VHU_CRASH_EXIT at the library's N-th crash point
 * (vhu_dev_crash_at()), or at a burst boundary chosen by the test.
 *
 * The parent is the driver (the in-tree front-end: guest memory, ring and
 * inflight region survive the child).  It adds requests with increasing
 * tokens, reaps used ones (the fe's ring rejects an id not in flight),
 * and when the child dies starts another on the same socket and region:
 * SET_INFLIGHT_FD again and QEMU's crash base.  Checked all along:
 *  - every token comes back used exactly once, with its pattern;
 *  - a restarted back-end first pops exactly the requests in flight when
 *    it started, in their original pop order, then new ones: its pops
 *    are strictly increasing tokens, none of them used already.
 * Failures are Check assertions in the parent.  The child never returns:
 * it _exit()s (86 on a crash, 0 when told to quit, 90+ on a surprise).
 */
#ifndef VHU_CRASHDEV_H
#define VHU_CRASHDEV_H

/* A back-end's exit status when it dies at a crash point. */
#define VHU_CRASH_EXIT 86

#include <stdbool.h>
#include <stdint.h>

#define CD_MAX_CHILDREN 4

/* Where a test-made crash happens in burst @boundary_step of child 0. */
enum cd_boundary {
	CD_NONE,
	CD_AFTER_POP,     /* popped and reported, nothing pushed */
	CD_BETWEEN_PUSH,  /* after the first push call of the burst */
};

struct cd_opts {
	bool packed;
	uint16_t qsize;        /* default 8 */
	bool indirect;         /* every other request through an indirect table */
	unsigned tokens;       /* requests in the run; default 24 */
	unsigned seed;         /* the child's and the driver's choices */
	bool no_inflight;      /* the device does not offer tracking */
	/* vhu_dev_crash_at() for child i (0: none).  Child i+1 starts when
	 * child i died. */
	uint32_t crash_at[CD_MAX_CHILDREN];
	enum cd_boundary boundary;
	unsigned boundary_step; /* 1-based burst of child 0 */
};

struct cd_result {
	unsigned children;     /* back-ends started */
	unsigned crashes;      /* back-ends that died with VHU_CRASH_EXIT */
	unsigned resubmitted;  /* pops of requests already popped before */
	unsigned steps;        /* bursts the parent asked for */
	unsigned held_max;     /* most requests in flight at a crash */
};

/* One run: asserts every check; fills @res. */
void cd_run(const struct cd_opts *o, struct cd_result *res);

#endif
