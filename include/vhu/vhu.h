/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhu: a vhost-user back-end library.
 *
 * Conventions, for every header under vhu/:
 *  - Functions returning int return 0 (or a count) on success and -errno on
 *    failure.  Constructors return NULL and set errno.
 *  - Handles are opaque.  Options structs start with `size_t sz`, which the
 *    caller sets to sizeof(the struct it was compiled against); fields the
 *    library does not know must be zero, or the call fails with -EINVAL.
 *  - The library creates no threads and keeps no global state.  Everything
 *    that belongs to a device is reached through its handle.
 *  - Nothing a peer sends ends the process: bad input is logged through the
 *    device's log callback, refused, and at worst disconnects that device or
 *    marks one queue broken.
 */
#ifndef VHU_VHU_H
#define VHU_VHU_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef VHU_API
#define VHU_API __attribute__((visibility("default")))
#endif

#define VHU_VERSION_MAJOR 0
#define VHU_VERSION_MINOR 1

/** vhu_version() - the library's version string, e.g. "0.1.0". */
VHU_API const char *vhu_version(void);

enum vhu_log_level {
	VHU_LOG_ERR = 0,
	VHU_LOG_WARN = 1,
	VHU_LOG_INFO = 2,
	VHU_LOG_DEBUG = 3,
};

/**
 * vhu_log_fn - where a device's log lines go.
 * @opaque: the log_opaque the application gave with the callback.
 * @level: severity.
 * @dev_name: the device's name (from its options), never NULL.
 * @msg: one line, without a trailing newline.
 *
 * Called from whichever thread is inside the library for that device.
 */
typedef void (*vhu_log_fn)(void *opaque, enum vhu_log_level level,
			   const char *dev_name, const char *msg);

/** vhu_request_name() - the spec's name of a front-end request code, or
 *  "UNKNOWN". */
VHU_API const char *vhu_request_name(uint32_t request);

#ifdef __cplusplus
}
#endif

#include <vhu/dev.h>
#include <vhu/vq.h>
#include <vhu/net.h>
#include <vhu/guard.h>

#endif
