/* SPDX-License-Identifier: BSD-3-Clause */
#include "memory/mem.h"
#include "memory/guard_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

/* How long the control thread waits for a data-plane section to end before
 * it gives up unmapping (and leaks the old mapping rather than risk it). */
#define VHU_SYNC_TIMEOUT_NS (5ull * 1000000000ull)

static struct vhu_memtable *table_alloc(uint32_t n)
{
	struct vhu_memtable *t = calloc(1, sizeof(*t) + n * sizeof(t->r[0]));

	if (t)
		t->n = n;
	return t;
}

int vhu_mem_init(struct vhu_mem *m, uint32_t max_regions, uint32_t max_readers,
		 struct vhu_logger *lg)
{
	memset(m, 0, sizeof(*m));
	m->lg = lg;
	m->max_regions = max_regions;
	m->max_readers = max_readers;
	m->readers = calloc(max_readers ? max_readers : 1, sizeof(m->readers[0]));
	struct vhu_memtable *empty = table_alloc(0);

	if (!m->readers || !empty) {
		free(m->readers);
		free(empty);
		return -ENOMEM;
	}
	atomic_store_explicit(&m->cur, empty, memory_order_relaxed);
	return 0;
}

int vhu_mem_reader_add(struct vhu_mem *m, struct vhu_mem_reader *r)
{
	if (m->nreaders >= m->max_readers)
		return -ENOSPC;
	atomic_store_explicit(&r->seq, 0, memory_order_relaxed);
	m->readers[m->nreaders++] = r;
	return 0;
}

void vhu_mem_reader_remove(struct vhu_mem *m, struct vhu_mem_reader *r)
{
	for (uint32_t i = 0; i < m->nreaders; i++) {
		if (m->readers[i] == r) {
			m->readers[i] = m->readers[--m->nreaders];
			return;
		}
	}
}

static void region_unmap(struct vhu_region *r)
{
	if (r->guard)
		vhu_guard_unwatch(r->guard, r->guard_slot);
	if (r->map_base)
		munmap(r->map_base, r->map_len);
	free(r);
}

static void region_unref(struct vhu_region *r)
{
	if (--r->refs == 0)
		region_unmap(r);
}

static void table_release(struct vhu_memtable *t)
{
	for (uint32_t i = 0; i < t->n; i++)
		region_unref(t->r[i]);
	free(t);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int vhu_mem_sync_reader(struct vhu_mem_reader *r)
{
	uint64_t s = atomic_load_explicit(&r->seq, memory_order_acquire);
	uint64_t deadline = 0;
	unsigned spins = 0;

	if (!(s & 1))
		return 0;
	/* Acquire pairs with the release in vhu_mem_read_end(). */
	while (atomic_load_explicit(&r->seq, memory_order_acquire) == s) {
		if (++spins < 1000)
			continue;
		if (!deadline)
			deadline = now_ns() + VHU_SYNC_TIMEOUT_NS;
		else if (now_ns() > deadline)
			return -ETIMEDOUT;
		sched_yield();
	}
	return 0;
}

/* Install @t, wait for readers of the old table, release the old table. */
static void mem_publish(struct vhu_mem *m, struct vhu_memtable *t)
{
	struct vhu_memtable *old;
	int stuck = 0;

	if (m->hook)
		m->hook(m->hook_arg, t, VHU_MEM_BEFORE);
	old = atomic_exchange_explicit(&m->cur, t, memory_order_release);

	/* Barrier [mem-sync]: pairs with the fence in vhu_mem_read_begin(). */
	atomic_thread_fence(memory_order_seq_cst);
	for (uint32_t i = 0; i < m->nreaders; i++)
		if (vhu_mem_sync_reader(m->readers[i]))
			stuck++;
	if (m->hook)
		m->hook(m->hook_arg, t, VHU_MEM_AFTER);
	if (stuck) {
		/* A reader never left its section (an application bug: e.g. it
		 * called into the control plane from inside one).  Keeping the old
		 * mappings is safe; unmapping them under it would not be. */
		vhu_err(m->lg, "memory table replaced while %d data-plane reader(s) "
			"stayed inside a section for 5 s; old mappings kept", stuck);
		old->next_stale = m->stale;
		m->stale = old;
		return;
	}
	table_release(old);
	while (m->stale) {
		struct vhu_memtable *st = m->stale;

		m->stale = st->next_stale;
		table_release(st);
	}
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Address arithmetic of one region description, before any fd is used. */
static int region_check(struct vhu_mem *m, const struct vhu_mem_region *d)
{
	uint64_t end;

	if (d->memory_size == 0) {
		vhu_err(m->lg, "memory region at gpa 0x%llx has size 0",
			(unsigned long long)d->guest_phys_addr);
		return -EINVAL;
	}
	if (__builtin_add_overflow(d->guest_phys_addr, d->memory_size, &end) ||
	    __builtin_add_overflow(d->userspace_addr, d->memory_size, &end) ||
	    __builtin_add_overflow(d->mmap_offset, d->memory_size, &end) ||
	    d->memory_size > (uint64_t)SIZE_MAX / 2) {
		vhu_err(m->lg, "memory region gpa 0x%llx size 0x%llx uva 0x%llx "
			"offset 0x%llx overflows 64 bits",
			(unsigned long long)d->guest_phys_addr,
			(unsigned long long)d->memory_size,
			(unsigned long long)d->userspace_addr,
			(unsigned long long)d->mmap_offset);
		return -EINVAL;
	}
	return 0;
}

static int region_overlaps(struct vhu_mem *m, struct vhu_region *const *rs,
			   uint32_t n, const struct vhu_mem_region *d)
{
	for (uint32_t i = 0; i < n; i++) {
		if (ranges_overlap(rs[i]->gpa, rs[i]->size, d->guest_phys_addr,
				   d->memory_size) ||
		    ranges_overlap(rs[i]->uva, rs[i]->size, d->userspace_addr,
				   d->memory_size)) {
			vhu_err(m->lg, "memory region gpa 0x%llx size 0x%llx overlaps "
				"region gpa 0x%llx size 0x%llx",
				(unsigned long long)d->guest_phys_addr,
				(unsigned long long)d->memory_size,
				(unsigned long long)rs[i]->gpa,
				(unsigned long long)rs[i]->size);
			return -EINVAL;
		}
	}
	return 0;
}

/* An existing region of the current table describing the same memory. */
static struct vhu_region *region_find_same(const struct vhu_memtable *t,
					   const struct vhu_mem_region *d,
					   const struct stat *st)
{
	for (uint32_t i = 0; i < t->n; i++) {
		struct vhu_region *r = t->r[i];

		if (r->gpa == d->guest_phys_addr && r->size == d->memory_size &&
		    r->uva == d->userspace_addr && r->mmap_offset == d->mmap_offset &&
		    r->file_dev == (uint64_t)st->st_dev &&
		    r->file_ino == (uint64_t)st->st_ino)
			return r;
	}
	return NULL;
}

static int region_map(struct vhu_mem *m, const struct vhu_mem_region *d, int fd,
		      const struct stat *st, struct vhu_region **out)
{
	struct statfs sfs;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t file_end = d->mmap_offset + d->memory_size; /* checked already */

	if (!S_ISREG(st->st_mode)) {
		vhu_err(m->lg, "memory region fd is not a regular file (mode 0%o): "
			"only memfd, shm and hugetlbfs files can back guest memory",
			(unsigned)st->st_mode);
		return -EINVAL;
	}
	if ((uint64_t)st->st_size < file_end) {
		vhu_err(m->lg, "memory region needs file bytes up to 0x%llx but the "
			"file has 0x%llx", (unsigned long long)file_end,
			(unsigned long long)st->st_size);
		return -EINVAL;
	}
	if (fstatfs(fd, &sfs) == 0 && (uint32_t)sfs.f_type == HUGETLBFS_MAGIC &&
	    sfs.f_bsize > 0)
		page = (uint64_t)sfs.f_bsize;

	uint64_t map_off = d->mmap_offset & ~(page - 1);
	uint64_t lead = d->mmap_offset - map_off;
	uint64_t map_len;

	if (__builtin_add_overflow(lead, d->memory_size, &map_len) ||
	    __builtin_add_overflow(map_len, page - 1, &map_len) ||
	    (map_len & ~(page - 1)) == 0 || map_len > SIZE_MAX) {
		vhu_err(m->lg, "memory region length overflows when rounded to pages");
		return -EINVAL;
	}
	map_len &= ~(page - 1);

	void *base = mmap(NULL, (size_t)map_len, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_NORESERVE, fd, (off_t)map_off);
	if (base == MAP_FAILED) {
		int err = errno;

		vhu_err(m->lg, "mmap of memory region (len 0x%llx, offset 0x%llx) "
			"failed: %s", (unsigned long long)map_len,
			(unsigned long long)map_off, strerror(err));
		return -err;
	}

	struct vhu_region *r = calloc(1, sizeof(*r));

	if (!r) {
		munmap(base, (size_t)map_len);
		return -ENOMEM;
	}
	r->gpa = d->guest_phys_addr;
	r->size = d->memory_size;
	r->uva = d->userspace_addr;
	r->mmap_offset = d->mmap_offset;
	r->map_base = base;
	r->map_len = (size_t)map_len;
	r->host = (uint8_t *)base + lead;
	r->file_dev = (uint64_t)st->st_dev;
	r->file_ino = (uint64_t)st->st_ino;
	r->shrink_sealed = vhu_fd_shrink_sealed(fd);
	if (!r->shrink_sealed)
		vhu_dbg(m->lg, "memory region gpa 0x%llx: file not sealed against "
			"shrinking", (unsigned long long)r->gpa);
	r->guard_slot = -1;
	if (m->guard) {
		/* Sealed files still need it: hugetlbfs pages can run out. */
		r->guard_slot = vhu_guard_watch(m->guard, base, r->map_len,
						&r->lost, &m->faults);
		if (r->guard_slot < 0) {
			vhu_err(m->lg, "memory region gpa 0x%llx: the SIGBUS guard "
				"has no free slot; region refused",
				(unsigned long long)r->gpa);
			region_unmap(r);
			return -ENOSPC;
		}
		r->guard = m->guard;
	}
	*out = r;
	return 0;
}

/* Map (or share) one region for table @t being built. */
static int region_get(struct vhu_mem *m, const struct vhu_mem_region *d, int fd,
		      struct vhu_region **out)
{
	struct stat st;

	if (fd < 0) {
		vhu_err(m->lg, "memory region without a file descriptor");
		return -EBADF;
	}
	if (fstat(fd, &st) < 0) {
		int err = errno;

		vhu_err(m->lg, "fstat on memory region fd failed: %s", strerror(err));
		return -err;
	}
	struct vhu_region *same = region_find_same(vhu_mem_current(m), d, &st);

	if (same) {
		same->refs++;
		*out = same;
		return 0;
	}
	int rc = region_map(m, d, fd, &st, out);

	if (rc == 0)
		(*out)->refs = 1;
	return rc;
}

static int cmp_region_gpa(const void *a, const void *b)
{
	const struct vhu_region *x = *(struct vhu_region *const *)a;
	const struct vhu_region *y = *(struct vhu_region *const *)b;

	return x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

static void close_fds(const int *fds, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

int vhu_mem_set_table(struct vhu_mem *m, const struct vhu_mem_region *regs,
		      const int *fds, uint32_t n)
{
	struct vhu_memtable *t;
	uint32_t built = 0;
	int rc = 0;

	if (n > m->max_regions) {
		vhu_err(m->lg, "memory table with %u regions, at most %u", n,
			m->max_regions);
		close_fds(fds, n);
		return -E2BIG;
	}
	t = table_alloc(n);
	if (!t) {
		close_fds(fds, n);
		return -ENOMEM;
	}
	for (; built < n; built++) {
		rc = region_check(m, &regs[built]);
		if (!rc)
			rc = region_overlaps(m, t->r, built, &regs[built]);
		if (!rc)
			rc = region_get(m, &regs[built], fds[built], &t->r[built]);
		if (rc)
			break;
	}
	close_fds(fds, n);
	if (rc) {
		t->n = built;
		table_release(t);
		return rc;
	}
	qsort(t->r, t->n, sizeof(t->r[0]), cmp_region_gpa);
	for (uint32_t i = 0; i < t->n; i++)
		t->r[i]->adds = 1;
	mem_publish(m, t);
	return 0;
}

int vhu_mem_add_region(struct vhu_mem *m, const struct vhu_mem_region *reg, int fd)
{
	const struct vhu_memtable *old = vhu_mem_current(m);
	struct vhu_memtable *t;
	struct vhu_region *same;
	struct stat st;
	int rc;

	/* The same region again (same file, offset, size, addresses): count
	 * the reference, map nothing. */
	if (fd >= 0 && fstat(fd, &st) == 0 &&
	    (same = region_find_same(old, reg, &st)) != NULL) {
		same->adds++;
		close(fd);
		return 0;
	}
	if (old->n >= m->max_regions) {
		vhu_err(m->lg, "ADD_MEM_REG beyond the %u memory slots", m->max_regions);
		rc = -ENOSPC;
		goto out_close;
	}
	rc = region_check(m, reg);
	if (!rc)
		rc = region_overlaps(m, old->r, old->n, reg);
	if (rc)
		goto out_close;
	t = table_alloc(old->n + 1);
	if (!t) {
		rc = -ENOMEM;
		goto out_close;
	}
	rc = region_get(m, reg, fd, &t->r[old->n]);
	if (rc) {
		free(t);
		goto out_close;
	}
	for (uint32_t i = 0; i < old->n; i++) {
		t->r[i] = old->r[i];
		t->r[i]->refs++;
	}
	close(fd);
	t->r[old->n]->adds = 1;
	qsort(t->r, t->n, sizeof(t->r[0]), cmp_region_gpa);
	mem_publish(m, t);
	return 0;

out_close:
	if (fd >= 0)
		close(fd);
	return rc;
}

int vhu_mem_remove_region(struct vhu_mem *m, const struct vhu_mem_region *reg)
{
	const struct vhu_memtable *old = vhu_mem_current(m);
	struct vhu_memtable *t;
	uint32_t found = old->n;

	for (uint32_t i = 0; i < old->n; i++) {
		if (old->r[i]->gpa == reg->guest_phys_addr &&
		    old->r[i]->uva == reg->userspace_addr &&
		    old->r[i]->size == reg->memory_size) {
			found = i;
			break;
		}
	}
	if (found == old->n) {
		vhu_err(m->lg, "REM_MEM_REG of unknown region gpa 0x%llx size 0x%llx",
			(unsigned long long)reg->guest_phys_addr,
			(unsigned long long)reg->memory_size);
		return -ENOENT;
	}
	if (old->r[found]->adds > 1) { /* added more than once: keep it */
		old->r[found]->adds--;
		return 0;
	}
	t = table_alloc(old->n - 1);
	if (!t)
		return -ENOMEM;
	for (uint32_t i = 0, j = 0; i < old->n; i++) {
		if (i == found)
			continue;
		t->r[j] = old->r[i];
		t->r[j++]->refs++;
	}
	mem_publish(m, t);
	return 0;
}

void vhu_mem_clear(struct vhu_mem *m)
{
	struct vhu_memtable *t;

	if (vhu_mem_current(m)->n == 0)
		return;
	t = table_alloc(0);
	if (!t)
		return; /* keep the old table; freed at destroy */
	mem_publish(m, t);
}

void vhu_mem_destroy(struct vhu_mem *m)
{
	struct vhu_memtable *t = atomic_load_explicit(&m->cur, memory_order_relaxed);

	if (t)
		table_release(t);
	while (m->stale) {
		struct vhu_memtable *st = m->stale;

		m->stale = st->next_stale;
		table_release(st);
	}
	atomic_store_explicit(&m->cur, NULL, memory_order_relaxed);
	free(m->readers);
	m->readers = NULL;
	m->nreaders = 0;
}

const struct vhu_region *vhu_mem_lost_region(const struct vhu_memtable *t)
{
	for (uint32_t i = 0; i < t->n; i++)
		if (atomic_load_explicit(&t->r[i]->lost, memory_order_relaxed))
			return t->r[i];
	return NULL;
}

void *vhu_uva_to_va(const struct vhu_memtable *t, uint64_t uva, uint64_t *len)
{
	for (uint32_t i = 0; i < t->n; i++) {
		const struct vhu_region *r = t->r[i];

		if (uva >= r->uva && uva - r->uva < r->size) {
			uint64_t off = uva - r->uva;

			if (*len > r->size - off)
				*len = r->size - off;
			return r->host + off;
		}
	}
	return NULL;
}
