/* SPDX-License-Identifier: BSD-3-Clause */
#include "log.h"

#include <stdio.h>
#include <time.h>

#define VHU_LOG_BURST 20 /* lines per second through vhu_log_ratelimited */

static void log_stderr(void *opaque, enum vhu_log_level level,
		       const char *name, const char *msg)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };

	(void)opaque;
	fprintf(stderr, "vhu %s: %s: %s\n", name, names[level & 3], msg);
}

void vhu_logger_init(struct vhu_logger *lg, vhu_log_fn fn, void *opaque,
		     enum vhu_log_level level, const char *name)
{
	lg->fn = fn ? fn : log_stderr;
	lg->opaque = opaque;
	lg->level = fn ? level : (level > VHU_LOG_WARN ? level : VHU_LOG_WARN);
	lg->name = name;
	lg->window_start_ns = 0;
	lg->in_window = 0;
	lg->suppressed = 0;
}

static void vlog(struct vhu_logger *lg, enum vhu_log_level level,
		 const char *fmt, va_list ap)
{
	char line[512];

	vsnprintf(line, sizeof(line), fmt, ap);
	lg->fn(lg->opaque, level, lg->name, line);
}

void vhu_log(struct vhu_logger *lg, enum vhu_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!lg || level > lg->level)
		return;
	va_start(ap, fmt);
	vlog(lg, level, fmt, ap);
	va_end(ap);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void vhu_log_ratelimited(struct vhu_logger *lg, enum vhu_log_level level,
			 const char *fmt, ...)
{
	uint64_t now;
	va_list ap;

	if (!lg || level > lg->level)
		return;
	now = now_ns();
	if (now - lg->window_start_ns >= 1000000000ull) {
		if (lg->suppressed)
			vhu_log(lg, VHU_LOG_WARN, "%u similar lines suppressed",
				lg->suppressed);
		lg->window_start_ns = now;
		lg->in_window = 0;
		lg->suppressed = 0;
	}
	if (lg->in_window >= VHU_LOG_BURST) {
		lg->suppressed++;
		return;
	}
	lg->in_window++;
	va_start(ap, fmt);
	vlog(lg, level, fmt, ap);
	va_end(ap);
}
