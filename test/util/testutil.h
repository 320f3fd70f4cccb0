/* SPDX-License-Identifier: BSD-3-Clause */
/* Helpers shared by the Check suites. */
#ifndef VHU_TESTUTIL_H
#define VHU_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include <vhu/vhu.h>

/* ck_assert for tight loops: Check's own asserts record a location on
 * every pass (a write to its pipe), which makes loops slow, under valgrind
 * above all; these only talk to Check on failure.  FAST_EQ shows both
 * values. */
#define FAST(c)                                                          \
	do {                                                             \
		if (!(c))                                                \
			ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #c); \
	} while (0)
#define FAST_EQ(a, b)                                                    \
	do {                                                             \
		unsigned long long a_ = (a), b_ = (b);                   \
		if (a_ != b_)                                            \
			ck_abort_msg("%s:%d: %s == %llu, want %s == %llu", \
				     __FILE__, __LINE__, #a, a_, #b, b_); \
	} while (0)

/* Count of open fds of this process (entries of /proc/self/fd). */
int tu_count_fds(void);
/* Resident set size in pages (second field of /proc/self/statm). */
long tu_rss_pages(void);
/* Mappings of this process (lines of /proc/self/maps) whose path contains
 * @needle, e.g. "/memfd:" for guest memory. */
int tu_count_maps(const char *needle);
/* Running under valgrind (RSS figures are valgrind's, not ours). */
int tu_under_valgrind(void);
/* CLOCK_MONOTONIC in milliseconds. */
int64_t tu_now_ms(void);
/* RSS growth bound in pages for "memory stays flat" checks: @pages, or no
 * bound under valgrind, whose own bookkeeping grows RSS. */
long tu_rss_bound(long pages);
/* A fresh socket path in a private temporary directory; static buffer. */
const char *tu_sock_path(const char *tag);
/* A log callback that keeps the last lines in a ring buffer for asserts. */
void tu_log(void *opaque, enum vhu_log_level level, const char *dev,
	    const char *msg);
/* Did any kept log line contain @needle?  Clears nothing. */
int tu_log_contains(const char *needle);
void tu_log_clear(void);

/*
 * A back-end device served by a helper thread that loops vhu_dev_poll(dev,
 * 10), holding a mutex per iteration.  The main thread takes the same
 * mutex (tu_backend_lock) around any vhu_dev_* call or look at state the
 * device's callbacks write, so calls for the device stay one thread at a
 * time.  Callbacks run on the helper thread with the mutex held.
 */
struct vhu_dev;
struct tu_backend;

/* Start serving @dev (which stays the caller's: free it after stop).
 * NULL with errno set on failure. */
struct tu_backend *tu_backend_start(struct vhu_dev *dev);
/* Stop the thread and free @b; the device is left as it is. */
void tu_backend_stop(struct tu_backend *b);
void tu_backend_lock(struct tu_backend *b);
void tu_backend_unlock(struct tu_backend *b);
/* Wait up to @timeout_ms until @pred(@arg) is true, evaluated with the
 * mutex held.  Returns 1 when it became true, 0 on timeout. */
int tu_backend_wait(struct tu_backend *b, int (*pred)(void *arg), void *arg,
		    int timeout_ms);

/* Run a Check suite the usual way (CK_NORMAL output); returns the exit
 * status for main(). */
struct Suite;
int tu_run_suite(struct Suite *s);

#endif
