/* SPDX-License-Identifier: BSD-3-Clause */
/* The examples' SIGBUS handler for vhu's guest-memory guard (vhu/guard.h). */
#ifndef VHU_EXAMPLE_SIGBUS_H
#define VHU_EXAMPLE_SIGBUS_H

struct vhu_guard;

/* Create the guard and install the handler; NULL (errno set) on failure.
 * One per process: the handler reaches it through a static pointer. */
struct vhu_guard *example_guard_install(void);
/* Restore the default action and free the guard (after its devices). */
void example_guard_remove(struct vhu_guard *g);

#endif
