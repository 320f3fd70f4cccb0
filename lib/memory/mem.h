/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Guest memory: regions mapped from the front-end's fds, grouped in
 * immutable tables, and the translation of guest-physical and front-end
 * user addresses to local pointers.
 *
 * Replacing the table while data-plane threads translate addresses:
 * every data-plane thread brackets its work with vhu_mem_read_begin() /
 * vhu_mem_read_end() on its own reader (each virtqueue has one).  The
 * control thread publishes a new table, then waits until every reader that
 * was inside a section when the table changed has left it
 * (vhu_mem_sync()), and only then unmaps regions that the new table no
 * longer holds.  Regions present in both tables (same file, offset, size
 * and addresses) are shared, not remapped, so pointers into them stay
 * valid across the change.  See docs/architecture.md.
 */
#ifndef VHU_MEM_H
#define VHU_MEM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "log.h"
#include "protocol/proto.h"
#include "rings/ring.h"

#define VHU_MAX_MEM_SLOTS 509

struct vhu_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uva;
	uint64_t mmap_offset;
	uint8_t *host;     /* local address of gpa */
	void *map_base;
	size_t map_len;
	uint64_t file_dev; /* identity of the file, to share across tables */
	uint64_t file_ino;
	uint32_t refs;     /* tables holding this region; control thread only */
	uint32_t adds;     /* front-end references: ADD_MEM_REG of the same
			    * region again (QEMU 7.2 sends one per queue pair)
			    * needs as many REM_MEM_REG */
	bool shrink_sealed;
	int guard_slot;          /* watched by the device's guard, or -1 */
	struct vhu_guard *guard;
	_Atomic bool lost;       /* the guard replaced it with zero pages */
};

struct vhu_memtable {
	struct vhu_memtable *next_stale; /* see vhu_mem.stale */
	uint32_t n;
	struct vhu_region *r[]; /* sorted by gpa, non-overlapping */
};

/* One per data-plane context (virtqueue).  seq is odd inside a section. */
struct vhu_mem_reader {
	_Atomic uint64_t seq;
};

/* Phases of a table change, for vhu_mem.hook. */
enum vhu_mem_phase {
	VHU_MEM_BEFORE, /* @t is about to replace the current table */
	VHU_MEM_AFTER,  /* @t is current, readers of the old one have left,
			 * the old one is still mapped */
};

struct vhu_mem {
	struct vhu_memtable *_Atomic cur; /* never NULL after init */
	/* Called around every table change (the device moves its rings). */
	void (*hook)(void *arg, const struct vhu_memtable *t, enum vhu_mem_phase p);
	void *hook_arg;
	/* Old tables a reader was still using when they were replaced (it
	 * overstayed the wait); released at the next successful wait. */
	struct vhu_memtable *stale;
	struct vhu_mem_reader **readers;
	uint32_t nreaders;
	uint32_t max_readers;
	uint32_t max_regions;
	struct vhu_logger *lg;
	/* Optional SIGBUS guard (vhu/guard.h): regions are watched while
	 * mapped, and @faults counts the ones it had to replace. */
	struct vhu_guard *guard;
	_Atomic uint32_t faults;
};

int vhu_mem_init(struct vhu_mem *m, uint32_t max_regions, uint32_t max_readers,
		 struct vhu_logger *lg);
/* Unmaps everything; no reader may be inside a section. */
void vhu_mem_destroy(struct vhu_mem *m);
int vhu_mem_reader_add(struct vhu_mem *m, struct vhu_mem_reader *r);
void vhu_mem_reader_remove(struct vhu_mem *m, struct vhu_mem_reader *r);

/*
 * Table changes.  Each builds a new table, maps what is new, publishes it,
 * waits for readers and unmaps what left.  All or nothing: on failure the
 * current table is unchanged.  Received fds are always closed.
 */
int vhu_mem_set_table(struct vhu_mem *m, const struct vhu_mem_region *regs,
		      const int *fds, uint32_t n);
int vhu_mem_add_region(struct vhu_mem *m, const struct vhu_mem_region *reg, int fd);
int vhu_mem_remove_region(struct vhu_mem *m, const struct vhu_mem_region *reg);
/* Drop every region (disconnect, reset). */
void vhu_mem_clear(struct vhu_mem *m);

/* The first region of @t the guard replaced, or NULL.  Cheap to call when
 * vhu_mem.faults is 0: don't. */
const struct vhu_region *vhu_mem_lost_region(const struct vhu_memtable *t);

/* Wait until @r is outside any section that began before this call. */
int vhu_mem_sync_reader(struct vhu_mem_reader *r);

static inline const struct vhu_memtable *vhu_mem_current(struct vhu_mem *m)
{
	return atomic_load_explicit(&m->cur, memory_order_acquire);
}

static inline uint32_t vhu_mem_nregions(struct vhu_mem *m)
{
	return vhu_mem_current(m)->n;
}

/* Enter a read section: the table returned stays mapped until read_end. */
static inline const struct vhu_memtable *
vhu_mem_read_begin(struct vhu_mem *m, struct vhu_mem_reader *r)
{
	uint64_t s = atomic_load_explicit(&r->seq, memory_order_relaxed);

	atomic_store_explicit(&r->seq, s + 1, memory_order_relaxed);
	/* Barrier [mem-sync]: pairs with the fence in mem_publish().  Either
	 * the writer sees our odd seq and waits for us, or we see its table. */
	atomic_thread_fence(memory_order_seq_cst);
	return atomic_load_explicit(&m->cur, memory_order_acquire);
}

static inline void vhu_mem_read_end(struct vhu_mem_reader *r)
{
	uint64_t s = atomic_load_explicit(&r->seq, memory_order_relaxed);

	/* Release: our accesses to the old table happen before the writer's
	 * acquire load in vhu_mem_sync_reader() that lets it unmap. */
	atomic_store_explicit(&r->seq, s + 1, memory_order_release);
}

/* The region holding guest-physical @gpa, or NULL. */
static inline const struct vhu_region *vhu_mem_find(const struct vhu_memtable *t,
						    uint64_t gpa)
{
	uint32_t lo = 0, hi = t->n;

	while (lo < hi) { /* last region with r->gpa <= gpa */
		uint32_t mid = lo + (hi - lo) / 2;

		if (t->r[mid]->gpa <= gpa)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || gpa - t->r[lo - 1]->gpa >= t->r[lo - 1]->size)
		return NULL;
	return t->r[lo - 1];
}

/* @gpa's local address in region @r (which holds it); *len is cut to what
 * is contiguous there. */
static inline void *vhu_region_va(const struct vhu_region *r, uint64_t gpa,
				  uint64_t *len)
{
	uint64_t off = gpa - r->gpa;

	if (*len > r->size - off)
		*len = r->size - off;
	return r->host + off;
}

/*
 * Translate guest-physical @gpa.  On entry *len is the length wanted; on
 * return it is how many bytes are contiguous at the returned pointer
 * (at most the length wanted).  NULL when @gpa is in no region.
 */
static inline void *vhu_gpa_to_va(const struct vhu_memtable *t, uint64_t gpa,
				  uint64_t *len)
{
	const struct vhu_region *r = vhu_mem_find(t, gpa);

	return r ? vhu_region_va(r, gpa, len) : NULL;
}

/* Same, trying *@hint (a region of @t, or NULL) first and leaving the
 * region found there: buffers of a burst mostly share a region. */
static inline void *vhu_gpa_to_va_hint(const struct vhu_memtable *t, uint64_t gpa,
				       uint64_t *len, const struct vhu_region **hint)
{
	const struct vhu_region *r = *hint;

	if (likely(r && gpa - r->gpa < r->size))
		return vhu_region_va(r, gpa, len);
	r = vhu_mem_find(t, gpa);
	if (!r)
		return NULL;
	*hint = r;
	return vhu_region_va(r, gpa, len);
}

/* Same for a front-end user address (ring addresses). */
void *vhu_uva_to_va(const struct vhu_memtable *t, uint64_t uva, uint64_t *len);

/* Translate a whole [gpa, gpa+len) that must be contiguous in one region. */
static inline void *vhu_gpa_to_va_whole(const struct vhu_memtable *t,
					uint64_t gpa, uint64_t len)
{
	uint64_t got = len;
	void *p = vhu_gpa_to_va(t, gpa, &got);

	return p && got == len ? p : NULL;
}

#endif
