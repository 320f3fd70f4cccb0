/* SPDX-License-Identifier: BSD-3-Clause */
/* Logging through the application's callback. */
#ifndef VHU_LOG_H
#define VHU_LOG_H

#include <stdint.h>

#include <vhu/vhu.h>

struct vhu_logger {
	vhu_log_fn fn;
	void *opaque;
	enum vhu_log_level level;
	const char *name;
	/* Rate limit for lines a guest can trigger at will (data path). */
	uint64_t window_start_ns;
	uint32_t in_window;
	uint32_t suppressed;
};

void vhu_logger_init(struct vhu_logger *lg, vhu_log_fn fn, void *opaque,
		     enum vhu_log_level level, const char *name);

__attribute__((format(printf, 3, 4)))
void vhu_log(struct vhu_logger *lg, enum vhu_log_level level, const char *fmt, ...);

/* Like vhu_log, but at most a burst of lines per second; the rest are
 * counted and reported with the next line that gets through. */
__attribute__((format(printf, 3, 4)))
void vhu_log_ratelimited(struct vhu_logger *lg, enum vhu_log_level level,
			 const char *fmt, ...);

#define vhu_err(lg, ...) vhu_log((lg), VHU_LOG_ERR, __VA_ARGS__)
#define vhu_warn(lg, ...) vhu_log((lg), VHU_LOG_WARN, __VA_ARGS__)
#define vhu_info(lg, ...) vhu_log((lg), VHU_LOG_INFO, __VA_ARGS__)
#define vhu_dbg(lg, ...) vhu_log((lg), VHU_LOG_DEBUG, __VA_ARGS__)

#endif
