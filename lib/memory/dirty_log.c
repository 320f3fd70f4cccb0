/* SPDX-License-Identifier: BSD-3-Clause */
/* Dirty-page logging for live migration: the log's life on the control
 * thread, and the marking of pages on the data plane (dirty_log.h). */
#include "memory/dirty_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memory/guard_int.h"
#include "rings/vq.h"


/* The largest log accepted: it covers 2^55 bytes of guest-physical
 * space, far beyond any machine; a larger one is a front-end's mistake. */
#define VHU_LOG_MAX_BYTES (1ull << 40)

/* Bytes of bitmap that cover every region of @t. */
static uint64_t log_bytes_needed(const struct vhu_memtable *t)
{
	uint64_t end = 0;

	for (uint32_t i = 0; i < t->n; i++)
		if (t->r[i]->gpa + t->r[i]->size > end) /* checked at map time */
			end = t->r[i]->gpa + t->r[i]->size;
	if (end == 0)
		return 0;
	return (((end - 1) >> VHU_LOG_PAGE_SHIFT) >> 3) + 1;
}

static void log_ring_now(struct vhu_vq *vq, const struct vhu_dirty_log *l);

static void log_unmap(struct vhu_dirty_log *l)
{
	if (!l)
		return;
	if (l->guard)
		vhu_guard_unwatch(l->guard, l->guard_slot);
	munmap(l->map_base, l->map_len);
	free(l);
}

bool vhu_dirty_log_hold(const struct vhu_dev *dev)
{
	return vhu_has_feature(dev, VHU_F_LOG_ALL) && !dev->dirty_log;
}

/*
 * Publish the log the data plane marks (NULL: none) and wait until no
 * burst can still use the one before.  False if a burst overstayed the
 * wait (an application bug): the old log must then stay mapped.
 */
static bool log_publish(struct vhu_dev *dev)
{
	struct vhu_dirty_log *l = vhu_has_feature(dev, VHU_F_LOG_ALL) ? dev->dirty_log : NULL;
	bool all_left = true;

	if (atomic_load_explicit(&dev->dp_log, memory_order_relaxed) == l)
		return true;
	/* Release: the mapping before the pointer; pairs with the acquire
	 * load in vhu_vq_begin(). */
	atomic_store_explicit(&dev->dp_log, l, memory_order_release);
	/* Barrier [log-sync]: pairs with the fence in vhu_mem_read_begin():
	 * a burst either sees the new pointer or is waited for here. */
	atomic_thread_fence(memory_order_seq_cst);
	for (uint16_t i = 0; i < dev->nvq; i++)
		if (vhu_mem_sync_reader(&dev->vqs[i].reader))
			all_left = false;
	if (!all_left)
		vhu_err(&dev->lg, "dirty log changed while a data-plane burst stayed "
			"in its section for 5 s; the old log stays mapped");
	return all_left;
}

static bool log_update(struct vhu_dev *dev)
{
	bool hold = vhu_dirty_log_hold(dev), ok;

	if (hold && !dev->log_held) {
		vhu_warn(&dev->lg, "VHOST_F_LOG_ALL without a log (no SET_LOG_BASE "
			 "yet): rings are held until one comes, as their writes "
			 "could not be logged");
		dev->log_held = true;
		for (uint16_t i = 0; i < dev->nvq; i++)
			vhu_vq_hold_changed(&dev->vqs[i]);
	}
	ok = log_publish(dev);
	if (dev->dp_log) /* rings written while no log could take it */
		for (uint16_t i = 0; i < dev->nvq; i++)
			if (dev->vqs[i].ring_unlogged && dev->vqs[i].started)
				log_ring_now(&dev->vqs[i], dev->dirty_log);
	if (!hold && dev->log_held) {
		dev->log_held = false;
		for (uint16_t i = 0; i < dev->nvq; i++)
			vhu_vq_hold_changed(&dev->vqs[i]);
	}
	return ok;
}

void vhu_dirty_log_update(struct vhu_dev *dev)
{
	log_update(dev);
}

static void log_release_stale(struct vhu_dev *dev)
{
	while (dev->log_stale) {
		struct vhu_dirty_log *l = dev->log_stale;

		dev->log_stale = l->next_stale;
		log_unmap(l);
	}
}

/* Map and check the log a SET_LOG_BASE describes. */
static int log_map(struct vhu_dev *dev, const struct vhu_log *msg, int fd,
		   struct vhu_dirty_log **out)
{
	uint64_t size = msg->mmap_size, off = msg->mmap_offset, end, need;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), lead, map_len;
	struct vhu_dirty_log *l;
	struct stat st;
	void *base;

	if (size == 0 || size > VHU_LOG_MAX_BYTES ||
	    __builtin_add_overflow(off, size, &end)) {
		vhu_err(&dev->lg, "SET_LOG_BASE: log of 0x%llx bytes at offset 0x%llx "
			"(1 byte .. 1 TiB, no overflow)", (unsigned long long)size,
			(unsigned long long)off);
		return -EINVAL;
	}
	need = log_bytes_needed(vhu_mem_current(&dev->mem));
	if (size < need) {
		vhu_err(&dev->lg, "SET_LOG_BASE: log of 0x%llx bytes, guest memory "
			"needs 0x%llx (one bit per 4 KiB page)",
			(unsigned long long)size, (unsigned long long)need);
		return -EINVAL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		vhu_err(&dev->lg, "SET_LOG_BASE: the fd is not a regular file "
			"(a memfd or a shm file)");
		return -EINVAL;
	}
	if ((uint64_t)st.st_size < end) {
		vhu_err(&dev->lg, "SET_LOG_BASE: log needs file bytes up to 0x%llx "
			"but the file has 0x%llx", (unsigned long long)end,
			(unsigned long long)st.st_size);
		return -EINVAL;
	}
	lead = off & (page - 1);
	map_len = (lead + size + page - 1) & ~(page - 1); /* size <= 1 TiB */
	base = mmap(NULL, (size_t)map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		    (off_t)(off - lead));
	if (base == MAP_FAILED) {
		int err = errno;

		vhu_err(&dev->lg, "SET_LOG_BASE: mmap of 0x%llx bytes failed: %s",
			(unsigned long long)map_len, strerror(err));
		return -err;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		munmap(base, (size_t)map_len);
		return -ENOMEM;
	}
	l->map_base = base;
	l->map_len = (size_t)map_len;
	l->bits = (uint8_t *)base + lead;
	l->len = size;
	l->guard_slot = -1;
	if (!vhu_fd_shrink_sealed(fd))
		vhu_dbg(&dev->lg, "SET_LOG_BASE: log file not sealed against "
			"shrinking");
	if (dev->mem.guard) {
		l->guard_slot = vhu_guard_watch(dev->mem.guard, base, l->map_len,
						&l->lost, &dev->mem.faults);
		if (l->guard_slot < 0) {
			vhu_err(&dev->lg, "SET_LOG_BASE: the SIGBUS guard has no "
				"free slot; log refused");
			log_unmap(l);
			return -ENOSPC;
		}
		l->guard = dev->mem.guard;
	}
	*out = l;
	return 0;
}

int vhu_dirty_log_set_base(struct vhu_dev *dev, const struct vhu_log *msg, int fd)
{
	struct vhu_dirty_log *l = NULL, *old;
	int rc = log_map(dev, msg, fd, &l);

	close(fd);
	if (rc)
		return rc;
	old = dev->dirty_log;
	dev->dirty_log = l;
	if (log_update(dev)) {
		log_unmap(old);
		log_release_stale(dev);
	} else if (old) {
		old->next_stale = dev->log_stale;
		dev->log_stale = old;
	}
	vhu_info(&dev->lg, "dirty log: 0x%llx bytes (guest memory up to 0x%llx)",
		 (unsigned long long)l->len,
		 (unsigned long long)(l->len << (3 + VHU_LOG_PAGE_SHIFT)));
	return 0;
}

void vhu_dirty_log_clear(struct vhu_dev *dev)
{
	struct vhu_dirty_log *l = dev->dirty_log;

	/* No feature, no log: publish NULL and wait, as for any change (a
	 * burst on a stopped queue may still hold the pointer). */
	dev->features &= ~VHU_BIT(VHU_F_LOG_ALL);
	dev->dirty_log = NULL;
	dev->log_held = false;
	if (log_publish(dev))
		log_unmap(l);
	else if (l) {
		l->next_stale = dev->log_stale;
		dev->log_stale = l;
		return;
	}
	log_release_stale(dev);
}

/* ---- data plane ---- */

/* Mark the pages of [@gpa, @gpa + @len), @len > 0: 0, or -ERANGE when
 * the log is too small for them. */
static int mark_gpa(const struct vhu_dirty_log *l, uint64_t gpa, uint64_t len)
{
	uint64_t page = gpa >> VHU_LOG_PAGE_SHIFT;
	uint64_t last = (gpa + (len - 1)) >> VHU_LOG_PAGE_SHIFT; /* in one region */

	if (unlikely((last >> 3) >= l->len))
		return -ERANGE;
	while (page <= last) {
		uint64_t byte = page >> 3;
		uint8_t mask = 0;

		do
			mask |= (uint8_t)(1u << (page & 7));
		while (++page <= last && (page & 7));
		/* Relaxed: the release fence before the caller's first mark
		 * orders the data before it (barrier [log-bit]). */
		__atomic_fetch_or(&l->bits[byte], mask, __ATOMIC_RELAXED);
	}
	return 0;
}

/* The region of @t holding local address @p (@hint first), or NULL. */
static const struct vhu_region *host_region(const struct vhu_memtable *t,
					    const struct vhu_region *hint, uintptr_t p)
{
	if (hint && p - (uintptr_t)hint->host < hint->size)
		return hint;
	for (uint32_t i = 0; i < t->n; i++)
		if (p - (uintptr_t)t->r[i]->host < t->r[i]->size)
			return t->r[i];
	return NULL;
}

/* Mark the guest pages of local [@p, @p + @len) in @l, translating
 * through @t: 0, -EFAULT (not guest memory), -ERANGE (*@gpa beyond the
 * log). */
static int mark_host(const struct vhu_memtable *t, const struct vhu_region *hint,
		     const struct vhu_dirty_log *l, uintptr_t p, uint64_t len,
		     uint64_t *gpa)
{
	while (len) {
		const struct vhu_region *r = host_region(t, hint, p);
		uint64_t off, n;

		if (unlikely(!r))
			return -EFAULT;
		off = p - (uintptr_t)r->host;
		n = r->size - off < len ? r->size - off : len;
		*gpa = r->gpa + off;
		if (mark_gpa(l, *gpa, n))
			return -ERANGE;
		p += n;
		len -= n;
	}
	return 0;
}

static int log_host(struct vhu_vq *vq, uintptr_t p, uint64_t len)
{
	uint64_t gpa = 0;
	int rc = mark_host(vq->mt, vq->rhint, vq->burst_log, p, len, &gpa);

	if (unlikely(rc == -ERANGE))
		return vhu_vq_fail(vq, "dirty log of 0x%llx bytes is too small for "
				   "a write at gpa 0x%llx",
				   (unsigned long long)vq->burst_log->len,
				   (unsigned long long)gpa);
	return rc;
}

/* Log a control-thread write of @vq's descriptor ring (ring recovery) in
 * @l, all of it. */
static void log_ring_now(struct vhu_vq *vq, const struct vhu_dirty_log *l)
{
	uint64_t gpa = 0;

	/* Barrier [log-bit]: as in log_begin(). */
	atomic_thread_fence(memory_order_release);
	if (mark_host(vhu_mem_current(&vq->dev->mem), NULL, l, (uintptr_t)vq->desc,
		      (uint64_t)vq->size * sizeof(struct vring_packed_desc), &gpa))
		vhu_err(&vq->dev->lg, "queue %u: the dirty log cannot hold the "
			"ring written at its start (gpa 0x%llx)", vq->index,
			(unsigned long long)gpa);
	vq->ring_unlogged = false;
}

void vhu_dirty_log_ring_written(struct vhu_vq *vq)
{
	struct vhu_dev *dev = vq->dev;

	/* Logging off: the migration that turns it on sends every page once
	 * anyway.  On with no log yet (QEMU starts rings before it sends the
	 * log): when the log comes. */
	if (!vhu_has_feature(dev, VHU_F_LOG_ALL))
		return;
	if (dev->dirty_log)
		log_ring_now(vq, dev->dirty_log);
	else
		vq->ring_unlogged = true;
}

/* Before the marks of a write: 0, or -EIO when the log is gone. */
static int log_begin(struct vhu_vq *vq)
{
	if (atomic_load_explicit(&vq->burst_log->lost, memory_order_relaxed))
		return vhu_vq_fail(vq, "the dirty log vanished under its mapping "
				   "(file truncated?); writes can no longer be logged");
	/* Barrier [log-bit]: the data before its bits; pairs with the
	 * front-end's atomic exchange of a log word before it copies the
	 * pages that word names. */
	atomic_thread_fence(memory_order_release);
	return 0;
}

int vhu_dirty_log_host(struct vhu_vq *vq, const void *p, uint64_t len)
{
	int rc = log_begin(vq);

	return rc ? rc : log_host(vq, (uintptr_t)p, len);
}

/* @count entries of @esize bytes from entry @first of the ring array at
 * @base (@size entries), wrapping around its end. */
static void log_ring_entries(struct vhu_vq *vq, void *base, size_t esize,
			     uint32_t first, uint32_t count, uint32_t size)
{
	uint32_t n1 = count < size - first ? count : size - first;

	if (n1)
		log_host(vq, (uintptr_t)base + first * esize, (uint64_t)n1 * esize);
	if (count > n1)
		log_host(vq, (uintptr_t)base, (uint64_t)(count - n1) * esize);
}

void vhu_dirty_log_push(struct vhu_vq *vq, const struct vhu_req *reqs,
			const uint32_t *written, unsigned n, uint16_t old_used,
			uint32_t used_descs)
{
	if (log_begin(vq))
		return;
	for (unsigned i = 0; written && i < n; i++) {
		uint32_t left = written[i] < reqs[i].in_len ? written[i] : reqs[i].in_len;
		const struct vhu_seg *g = &reqs[i].segs[reqs[i].nr_out];

		for (unsigned s = 0; left && s < reqs[i].nr_in; s++) {
			uint32_t k = g[s].len < left ? g[s].len : left;

			if (log_host(vq, (uintptr_t)g[s].addr, k) == -EIO)
				return;
			left -= k;
		}
	}
	if (vq->packed) {
		log_ring_entries(vq, vq->desc, sizeof(struct vring_packed_desc),
				 old_used, used_descs > vq->size ? vq->size : used_descs,
				 vq->size);
		return;
	}
	log_ring_entries(vq, VRING_USED_RING(vq->used, 0),
			 sizeof(struct vring_used_elem), old_used & (vq->size - 1),
			 n > vq->size ? vq->size : n, vq->size);
	log_host(vq, (uintptr_t)VRING_USED_IDX(vq->used), sizeof(uint16_t));
}

void vhu_dirty_log_descs(struct vhu_vq *vq, uint16_t first, uint32_t n)
{
	if (log_begin(vq))
		return;
	log_ring_entries(vq, vq->desc, sizeof(struct vring_packed_desc), first,
			 n > vq->size ? vq->size : n, vq->size);
}

void vhu_dirty_log_kicks(struct vhu_vq *vq)
{
	if (log_begin(vq))
		return;
	if (vq->packed) { /* the device event suppression area */
		log_host(vq, (uintptr_t)vq->used, 4);
		return;
	}
	log_host(vq, (uintptr_t)VRING_USED_FLAGS(vq->used), sizeof(uint16_t));
	log_host(vq, (uintptr_t)VRING_AVAIL_EVENT(vq->used, vq->size),
		 sizeof(uint16_t));
}
