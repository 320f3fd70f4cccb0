/* SPDX-License-Identifier: BSD-3-Clause */
/* The guard's side for the memory code: watching mapped regions. */
#ifndef VHU_GUARD_INTERNAL_H
#define VHU_GUARD_INTERNAL_H

#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef F_GET_SEALS
#define F_GET_SEALS 1034
#endif
#ifndef F_SEAL_SHRINK
#define F_SEAL_SHRINK 0x0002
#endif

#include <vhu/guard.h>

/* Watch [@base, @base + @len): a fault there sets *@lost and increments
 * *@faults.  Returns the watch's slot (>= 0) or -ENOSPC. */
int vhu_guard_watch(struct vhu_guard *g, void *base, size_t len,
		    _Atomic bool *lost, _Atomic uint32_t *faults);
/* Stop watching; call before unmapping the range. */
void vhu_guard_unwatch(struct vhu_guard *g, int slot);

/* Is @fd sealed against shrinking (F_SEAL_SHRINK)?  A file that is not
 * can fault under a mapping of it: the guard must watch that mapping. */
static inline bool vhu_fd_shrink_sealed(int fd)
{
	int seals = fcntl(fd, F_GET_SEALS);

	return seals >= 0 && (seals & F_SEAL_SHRINK);
}

#endif
