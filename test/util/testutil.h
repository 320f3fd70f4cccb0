/* SPDX-License-Identifier: BSD-3-Clause */
/* Helpers shared by the Check suites. */
#ifndef VHU_TESTUTIL_H
#define VHU_TESTUTIL_H

#include <stddef.h>

#include <vhu/vhu.h>

/* Count of open fds of this process (entries of /proc/self/fd). */
int tu_count_fds(void);
/* Resident set size in pages (second field of /proc/self/statm). */
long tu_rss_pages(void);
/* A fresh socket path in a private temporary directory; static buffer. */
const char *tu_sock_path(const char *tag);
/* A log callback that keeps the last lines in a ring buffer for asserts. */
void tu_log(void *opaque, enum vhu_log_level level, const char *dev,
	    const char *msg);
/* Did any kept log line contain @needle?  Clears nothing. */
int tu_log_contains(const char *needle);
void tu_log_clear(void);

#endif
