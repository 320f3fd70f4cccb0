/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * An opt-in guard against guest memory that disappears under vhu.
 *
 * A front-end can shrink (ftruncate) the file behind a memory region after
 * vhu mapped it, and a hugetlbfs region can run out of huge pages; the next
 * access to that memory raises SIGBUS, which kills the process by default.
 * Memfds sealed with F_SEAL_SHRINK (QEMU's memory-backend-memfd seals them)
 * cannot shrink; for anything else, an application that does not trust its
 * front-ends can turn the fault into a broken device:
 *
 *     static struct vhu_guard *guard;   // the application's, not vhu's
 *
 *     static void on_sigbus(int sig, siginfo_t *si, void *uc)
 *     {
 *             if (vhu_guard_handle_fault(guard, si))
 *                     return;               // repaired: the access retries
 *             signal(sig, SIG_DFL);         // not guest memory: die as usual
 *             raise(sig);
 *     }
 *
 *     guard = vhu_guard_new(0);
 *     sigaction(SIGBUS, &(struct sigaction){ .sa_sigaction = on_sigbus,
 *                                            .sa_flags = SA_SIGINFO }, NULL);
 *     opts.guard = guard;                   // for every device to cover
 *
 * The repair replaces the whole region's mapping with private zero pages,
 * so the faulting access (in vhu or in the application, e.g. copying into a
 * segment vhu_vq_pop() returned) completes and reads zeros; writes are
 * lost.  The next vhu_vq_begin() on any queue of that device marks the
 * queue broken (VHU_VQ_BROKEN, error eventfd, log line naming the region),
 * and it stays broken until the front-end replaces that region.  Other
 * devices and regions are not affected.
 *
 * The library itself keeps no global state: the guard is an object the
 * application creates, and the signal handler is the application's.
 */
#ifndef VHU_GUARD_H
#define VHU_GUARD_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <vhu/vhu.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vhu_guard;

/**
 * vhu_guard_new() - a guard able to watch @max_regions mapped regions at
 * once, over all the devices that use it (0: 4096).  NULL with errno set on
 * failure.
 */
VHU_API struct vhu_guard *vhu_guard_new(unsigned max_regions);

/** vhu_guard_free() - free @g; every device using it must be freed first. */
VHU_API void vhu_guard_free(struct vhu_guard *g);

/**
 * vhu_guard_handle_fault() - call from a SIGBUS handler installed with
 * SA_SIGINFO.  If @si's address lies in guest memory a device of @g mapped,
 * the region is replaced with zero pages, its device is told, and true is
 * returned: return from the handler and the access is retried.  False for
 * any other fault (leave the default action to it).  Async-signal-safe.
 */
VHU_API bool vhu_guard_handle_fault(struct vhu_guard *g, const siginfo_t *si);

/** vhu_guard_faults() - how many faults @g has repaired so far. */
VHU_API uint64_t vhu_guard_faults(const struct vhu_guard *g);

#ifdef __cplusplus
}
#endif

#endif
