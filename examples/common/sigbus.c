/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A front-end that truncates the file behind guest memory makes the next
 * access raise SIGBUS.  This handler lets vhu repair faults in guest memory
 * (the device breaks, the process lives) and leaves any other SIGBUS its
 * default action.
 */
#define _GNU_SOURCE
#include "sigbus.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>

#include <vhu/guard.h>

/* The handler's way to the guard: the application's state, not vhu's. */
static struct vhu_guard *_Atomic active_guard;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (vhu_guard_handle_fault(atomic_load(&active_guard), si))
		return;
	signal(sig, SIG_DFL);
	raise(sig);
}

struct vhu_guard *example_guard_install(void)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };
	struct vhu_guard *g = vhu_guard_new(0);

	if (!g)
		return NULL;
	atomic_store(&active_guard, g);
	if (sigaction(SIGBUS, &sa, NULL)) {
		int err = errno;

		atomic_store(&active_guard, NULL);
		vhu_guard_free(g);
		errno = err;
		return NULL;
	}
	return g;
}

void example_guard_remove(struct vhu_guard *g)
{
	signal(SIGBUS, SIG_DFL);
	atomic_store(&active_guard, NULL);
	vhu_guard_free(g);
}
