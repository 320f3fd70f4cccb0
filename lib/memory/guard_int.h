/* SPDX-License-Identifier: BSD-3-Clause */
/* The guard's side for the memory code: watching mapped regions. */
#ifndef VHU_GUARD_INTERNAL_H
#define VHU_GUARD_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vhu/guard.h>

/* Watch [@base, @base + @len): a fault there sets *@lost and increments
 * *@faults.  Returns the watch's slot (>= 0) or -ENOSPC. */
int vhu_guard_watch(struct vhu_guard *g, void *base, size_t len,
		    _Atomic bool *lost, _Atomic uint32_t *faults);
/* Stop watching; call before unmapping the range. */
void vhu_guard_unwatch(struct vhu_guard *g, int slot);

#endif
