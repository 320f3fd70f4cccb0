/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The SIGBUS guard (include/vhu/guard.h): a table of watched guest-memory
 * mappings that a signal handler can search without locks.  Writers (the
 * control threads of the devices sharing the guard) take a mutex; the
 * handler only loads.
 */
#include "memory/guard_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#define GUARD_DEFAULT_SLOTS 4096

struct guard_slot {
	/* 0 when free.  Published last, with release, so a handler that sees
	 * it also sees the other fields. */
	_Atomic uintptr_t start;
	size_t len;
	_Atomic bool *lost;
	_Atomic uint32_t *faults;
};

struct vhu_guard {
	pthread_mutex_t lock;    /* writers only */
	_Atomic unsigned used;   /* slots [0, used) may be busy */
	_Atomic uint64_t repaired;
	unsigned cap;
	struct guard_slot s[];
};

struct vhu_guard *vhu_guard_new(unsigned max_regions)
{
	unsigned cap = max_regions ? max_regions : GUARD_DEFAULT_SLOTS;
	struct vhu_guard *g;

	if (cap > (1u << 20)) {
		errno = EINVAL;
		return NULL;
	}
	g = calloc(1, sizeof(*g) + (size_t)cap * sizeof(g->s[0]));
	if (!g)
		return NULL;
	pthread_mutex_init(&g->lock, NULL);
	g->cap = cap;
	return g;
}

void vhu_guard_free(struct vhu_guard *g)
{
	if (!g)
		return;
	pthread_mutex_destroy(&g->lock);
	free(g);
}

int vhu_guard_watch(struct vhu_guard *g, void *base, size_t len,
		    _Atomic bool *lost, _Atomic uint32_t *faults)
{
	int slot = -ENOSPC;

	pthread_mutex_lock(&g->lock);
	for (unsigned i = 0; i < g->cap; i++) {
		struct guard_slot *s = &g->s[i];

		if (atomic_load_explicit(&s->start, memory_order_relaxed))
			continue;
		s->len = len;
		s->lost = lost;
		s->faults = faults;
		/* Barrier [guard-slot]: pairs with the acquire load in
		 * vhu_guard_handle_fault(). */
		atomic_store_explicit(&s->start, (uintptr_t)base,
				      memory_order_release);
		if (i >= atomic_load_explicit(&g->used, memory_order_relaxed))
			atomic_store_explicit(&g->used, i + 1, memory_order_release);
		slot = (int)i;
		break;
	}
	pthread_mutex_unlock(&g->lock);
	return slot;
}

void vhu_guard_unwatch(struct vhu_guard *g, int slot)
{
	if (slot < 0 || (unsigned)slot >= g->cap)
		return;
	pthread_mutex_lock(&g->lock);
	/* A fault can only come from an access to the range, and the memory
	 * code unwatches a region only once no reader can touch it. */
	atomic_store_explicit(&g->s[slot].start, 0, memory_order_relaxed);
	pthread_mutex_unlock(&g->lock);
}

bool vhu_guard_handle_fault(struct vhu_guard *g, const siginfo_t *si)
{
	uintptr_t addr = (uintptr_t)si->si_addr;
	unsigned used;

	if (!g || si->si_signo != SIGBUS)
		return false;
	used = atomic_load_explicit(&g->used, memory_order_acquire);
	for (unsigned i = 0; i < used; i++) {
		struct guard_slot *s = &g->s[i];
		/* Barrier [guard-slot]: pairs with the release in watch. */
		uintptr_t start = atomic_load_explicit(&s->start, memory_order_acquire);

		if (!start || addr - start >= s->len)
			continue;
		/* Zero pages over the whole mapping: partial replacement could
		 * split a huge-page mapping, and every later access to the
		 * region would fault again anyway.  mmap is a plain system call
		 * here, safe in a handler. */
		if (mmap((void *)start, s->len, PROT_READ | PROT_WRITE,
			 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			 -1, 0) == MAP_FAILED)
			return false;
		atomic_store_explicit(s->lost, true, memory_order_relaxed);
		/* Release: the data plane that sees the count sees the flag. */
		atomic_fetch_add_explicit(s->faults, 1, memory_order_release);
		atomic_fetch_add_explicit(&g->repaired, 1, memory_order_relaxed);
		return true;
	}
	return false;
}

uint64_t vhu_guard_faults(const struct vhu_guard *g)
{
	return atomic_load_explicit(&((struct vhu_guard *)g)->repaired,
				    memory_order_relaxed);
}
