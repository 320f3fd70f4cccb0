/* SPDX-License-Identifier: BSD-3-Clause */
/* Inflight tracking: the shared region's life on the control thread
 * (GET_INFLIGHT_FD creates it, SET_INFLIGHT_FD maps it; inflight.h). */
#include "memory/inflight.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memory/guard_int.h"
#include "internal.h"

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#define MFD_ALLOW_SEALING 0x0002U
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#endif

uint64_t vhu_inflight_queue_bytes(uint16_t queue_size, bool packed)
{
	uint64_t b = packed ? sizeof(struct vhu_ifl_packed) +
				      (uint64_t)queue_size * sizeof(struct vhu_ifl_packed_desc)
			    : sizeof(struct vhu_ifl_split) +
				      (uint64_t)queue_size * sizeof(struct vhu_ifl_split_desc);

	return (b + VHU_INFLIGHT_ALIGN - 1) & ~(uint64_t)(VHU_INFLIGHT_ALIGN - 1);
}

/* Are @num_queues queues of @queue_size entries something this device can
 * have?  Logs why not. */
static bool shape_ok(struct vhu_dev *dev, const char *what, uint16_t num_queues,
		     uint16_t queue_size)
{
	if (num_queues == 0 || num_queues > dev->nvq) {
		vhu_err(&dev->lg, "%s: %u queues; the device has 1..%u", what,
			num_queues, dev->nvq);
		return false;
	}
	if (queue_size == 0 || queue_size > dev->max_qsize) {
		vhu_err(&dev->lg, "%s: queue size %u; 1..%u accepted", what,
			queue_size, dev->max_qsize);
		return false;
	}
	return true;
}

int vhu_inflight_get_fd(struct vhu_dev *dev, const struct vhu_inflight *msg,
			struct vhu_inflight *out, int *fdp)
{
	bool packed = vhu_has_feature(dev, VHU_F_RING_PACKED);
	uint64_t size;
	int fd;

	memset(out, 0, sizeof(*out));
	*fdp = -1;
	/* A refusal is an empty region (mmap_size 0): the front-end then runs
	 * the device untracked, rather than failing the connection. */
	if (!shape_ok(dev, "GET_INFLIGHT_FD", msg->num_queues, msg->queue_size))
		return 0;
	size = vhu_inflight_queue_bytes(msg->queue_size, packed) * msg->num_queues;
	fd = (int)memfd_create("vhu-inflight", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		vhu_err(&dev->lg, "GET_INFLIGHT_FD: memfd_create: %s", strerror(errno));
		return 0;
	}
	/* Zeroed: version 0 tells the first start to set each queue's part up
	 * at the ring's real position.  Sealed against shrinking, so a back-end
	 * mapping it never faults. */
	if (ftruncate(fd, (off_t)size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0) {
		vhu_err(&dev->lg, "GET_INFLIGHT_FD: region of %llu bytes: %s",
			(unsigned long long)size, strerror(errno));
		close(fd);
		return 0;
	}
	out->mmap_size = size;
	out->mmap_offset = 0;
	out->num_queues = msg->num_queues;
	out->queue_size = msg->queue_size;
	*fdp = fd;
	vhu_info(&dev->lg, "inflight region created: %u %s queues of %u, %llu bytes",
		 msg->num_queues, packed ? "packed" : "split", msg->queue_size,
		 (unsigned long long)size);
	return 0;
}

static void map_free(struct vhu_inflight_map *m)
{
	if (!m)
		return;
	if (m->guard)
		vhu_guard_unwatch(m->guard, m->guard_slot);
	munmap(m->map_base, m->map_len);
	free(m);
}

static bool any_queue_started(const struct vhu_dev *dev)
{
	for (uint16_t i = 0; i < dev->nvq; i++)
		if (dev->vqs[i].started)
			return true;
	return false;
}

int vhu_inflight_set_fd(struct vhu_dev *dev, const struct vhu_inflight *msg, int fd)
{
	uint64_t size = msg->mmap_size, off = msg->mmap_offset, end;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), lead, map_len, need;
	struct vhu_inflight_map *m;
	struct stat st;
	void *base;
	int rc = -EINVAL;

	if (any_queue_started(dev)) {
		/* The data plane writes the mapped region while a queue runs. */
		vhu_err(&dev->lg, "SET_INFLIGHT_FD while queues run; refused");
		rc = -EBUSY;
		goto out_close;
	}
	if (!shape_ok(dev, "SET_INFLIGHT_FD", msg->num_queues, msg->queue_size))
		goto out_close;
	/* The smaller layout (split) at least; the queue's start checks the
	 * layout of its ring type. */
	need = vhu_inflight_queue_bytes(msg->queue_size, false) * msg->num_queues;
	if (size < need || size > (1ull << 32) ||
	    __builtin_add_overflow(off, size, &end)) {
		vhu_err(&dev->lg, "SET_INFLIGHT_FD: region of 0x%llx bytes at offset "
			"0x%llx; %u queues of %u need 0x%llx (at most 4 GiB, no "
			"overflow)", (unsigned long long)size, (unsigned long long)off,
			msg->num_queues, msg->queue_size, (unsigned long long)need);
		goto out_close;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size < end) {
		vhu_err(&dev->lg, "SET_INFLIGHT_FD: the fd is not a regular file "
			"(memfd) holding bytes up to 0x%llx", (unsigned long long)end);
		goto out_close;
	}
	lead = off & (page - 1);
	map_len = (lead + size + page - 1) & ~(page - 1);
	base = mmap(NULL, (size_t)map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		    (off_t)(off - lead));
	if (base == MAP_FAILED) {
		rc = -errno;
		vhu_err(&dev->lg, "SET_INFLIGHT_FD: mmap of 0x%llx bytes: %s",
			(unsigned long long)map_len, strerror(-rc));
		goto out_close;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		munmap(base, (size_t)map_len);
		rc = -ENOMEM;
		goto out_close;
	}
	m->map_base = base;
	m->map_len = (size_t)map_len;
	m->base = (uint8_t *)base + lead;
	m->size = size;
	m->num_queues = msg->num_queues;
	m->queue_size = msg->queue_size;
	m->guard_slot = -1;
	if (!vhu_fd_shrink_sealed(fd) && dev->mem.guard) {
		/* A file that can shrink can fault under the data plane. */
		m->guard_slot = vhu_guard_watch(dev->mem.guard, base, m->map_len,
						&m->lost, &dev->mem.faults);
		if (m->guard_slot < 0) {
			vhu_err(&dev->lg, "SET_INFLIGHT_FD: the SIGBUS guard has no "
				"free slot; region refused");
			map_free(m);
			rc = -ENOSPC;
			goto out_close;
		}
		m->guard = dev->mem.guard;
	}
	close(fd);
	map_free(dev->inflight);
	dev->inflight = m;
	vhu_info(&dev->lg, "inflight region set: %u queues of %u, %llu bytes",
		 m->num_queues, m->queue_size, (unsigned long long)size);
	return 0;
out_close:
	close(fd);
	return rc;
}

void vhu_inflight_forget(struct vhu_dev *dev)
{
	struct vhu_inflight_map *m = dev->inflight;
	uint64_t part;

	if (!m)
		return;
	part = vhu_inflight_queue_bytes(m->queue_size,
					vhu_has_feature(dev, VHU_F_RING_PACKED));
	for (uint16_t i = 0; i < m->num_queues; i++)
		if (part * (i + 1) <= m->size) /* version: same offset in both */
			__atomic_store_n((uint16_t *)(m->base + part * i +
						      offsetof(struct vhu_ifl_split, version)),
					 0, __ATOMIC_RELAXED);
}

void vhu_inflight_clear(struct vhu_dev *dev)
{
	for (uint16_t i = 0; i < dev->nvq; i++)
		vhu_inflight_stop(&dev->vqs[i]);
	map_free(dev->inflight);
	dev->inflight = NULL;
}
