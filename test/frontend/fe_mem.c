/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test frontend: guest memory laid out as QEMU does it.  Each region is its
 * own memfd, mapped shared by the fe; the user address the back-end is told
 * is the fe's own mapping address.  A bump allocator hands out guest
 * memory from the regions.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fe_int.h"

int vhu_fe_mem_add(struct vhu_fe *fe, uint64_t gpa, uint64_t size,
		   uint64_t mmap_offset, unsigned flags)
{
	struct vhu_fe_region *r;
	uint64_t file_len;
	void *map;
	int fd, err;

	if (fe->nregions >= VHU_FE_MAX_REGIONS)
		return -ENOSPC;
	if (size == 0 || gpa + size < gpa || mmap_offset + size < size ||
	    (flags & ~VHU_FE_MEM_SEAL) || (mmap_offset & 4095))
		return -EINVAL;
	for (unsigned i = 0; i < fe->nregions; i++) {
		r = &fe->regions[i];
		if (gpa < r->gpa + r->size && r->gpa < gpa + size)
			return -EEXIST;
	}
	file_len = mmap_offset + size;
	fd = memfd_create("vhu-fe-guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)file_len) < 0)
		goto err_close;
	if ((flags & VHU_FE_MEM_SEAL) &&
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		goto err_close;
	map = mmap(NULL, file_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		goto err_close;
	r = &fe->regions[fe->nregions++];
	r->fd = fd;
	r->map = map;
	r->map_len = file_len;
	r->gpa = gpa;
	r->size = size;
	r->mmap_offset = mmap_offset;
	r->uva = (uint64_t)(uintptr_t)(r->map + mmap_offset);
	r->lo = gpa;
	r->hi = gpa + size;
	return (int)(fe->nregions - 1);

err_close:
	err = -errno;
	close(fd);
	return err;
}

int vhu_fe_mem_setup(struct vhu_fe *fe, const struct vhu_fe_mem_opts *opts)
{
	struct vhu_fe_mem_opts o = {
		.nregions = 1, .region_size = 4u << 20,
	};
	uint64_t gpa;
	int err;

	if (opts) {
		if (opts->sz != sizeof(*opts))
			return -EINVAL;
		if (opts->nregions)
			o.nregions = opts->nregions;
		if (opts->region_size)
			o.region_size = opts->region_size;
		o.base_gpa = opts->base_gpa;
		o.hole = opts->hole;
		o.mmap_offset = opts->mmap_offset;
		o.flags = opts->flags;
	}
	if (fe->nregions)
		return -EBUSY;
	if (o.nregions > VHU_FE_MAX_REGIONS)
		return -E2BIG;
	gpa = o.base_gpa;
	for (unsigned i = 0; i < o.nregions; i++) {
		err = vhu_fe_mem_add(fe, gpa, o.region_size, o.mmap_offset,
				     o.flags);
		if (err < 0) {
			fe_mem_free(fe);
			return err;
		}
		gpa += o.region_size + o.hole;
	}
	return 0;
}

void fe_mem_free(struct vhu_fe *fe)
{
	for (unsigned i = 0; i < fe->nregions; i++) {
		munmap(fe->regions[i].map, fe->regions[i].map_len);
		close(fe->regions[i].fd);
	}
	memset(fe->regions, 0, sizeof(fe->regions));
	fe->nregions = 0;
}

unsigned vhu_fe_mem_nregions(const struct vhu_fe *fe)
{
	return fe->nregions;
}

struct vhu_fe_region *vhu_fe_mem_region(struct vhu_fe *fe, unsigned i)
{
	return i < fe->nregions ? &fe->regions[i] : NULL;
}

static struct vhu_fe_region *fe_find(struct vhu_fe *fe, uint64_t gpa)
{
	for (unsigned i = 0; i < fe->nregions; i++) {
		struct vhu_fe_region *r = &fe->regions[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return r;
	}
	return NULL;
}

void *vhu_fe_gpa_to_ptr(struct vhu_fe *fe, uint64_t gpa, uint64_t len)
{
	struct vhu_fe_region *r = fe_find(fe, gpa);

	if (!r || len > r->size - (gpa - r->gpa))
		return NULL;
	return r->map + r->mmap_offset + (gpa - r->gpa);
}

uint64_t vhu_fe_gpa_to_uva(struct vhu_fe *fe, uint64_t gpa)
{
	struct vhu_fe_region *r = fe_find(fe, gpa);

	return r ? r->uva + (gpa - r->gpa) : 0;
}

/* Copy between guest memory and a buffer, region by region. */
static int fe_mem_copy(struct vhu_fe *fe, uint64_t gpa, void *buf,
		       size_t len, bool to_guest)
{
	uint8_t *b = buf;

	while (len) {
		struct vhu_fe_region *r = fe_find(fe, gpa);
		uint64_t off, n;
		uint8_t *p;

		if (!r)
			return -EFAULT;
		off = gpa - r->gpa;
		n = r->size - off < len ? r->size - off : len;
		p = r->map + r->mmap_offset + off;
		if (to_guest)
			memcpy(p, b, n);
		else
			memcpy(b, p, n);
		b += n;
		gpa += n;
		len -= n;
	}
	return 0;
}

int vhu_fe_mem_write(struct vhu_fe *fe, uint64_t gpa, const void *src,
		     size_t len)
{
	return fe_mem_copy(fe, gpa, (void *)src, len, true);
}

int vhu_fe_mem_read(struct vhu_fe *fe, uint64_t gpa, void *dst, size_t len)
{
	return fe_mem_copy(fe, gpa, dst, len, false);
}

int vhu_fe_mem_alloc(struct vhu_fe *fe, uint64_t size, uint64_t align,
		     uint64_t *gpa)
{
	if (align == 0)
		align = 8;
	if (size == 0 || (align & (align - 1)))
		return -EINVAL;
	for (unsigned i = 0; i < fe->nregions; i++) {
		struct vhu_fe_region *r = &fe->regions[i];
		uint64_t at = (r->lo + align - 1) & ~(align - 1);

		if (at < r->lo || at > r->hi || r->hi - at < size)
			continue;
		r->lo = at + size;
		memset(vhu_fe_gpa_to_ptr(fe, at, size), 0, size);
		*gpa = at;
		return 0;
	}
	return -ENOMEM;
}

int vhu_fe_mem_alloc_straddle(struct vhu_fe *fe, uint64_t size,
			      uint64_t *gpa)
{
	uint64_t first = size / 2, second = size - first;

	if (size < 2)
		return -EINVAL;
	for (unsigned i = 0; i < fe->nregions; i++) {
		struct vhu_fe_region *a = &fe->regions[i];

		for (unsigned j = 0; j < fe->nregions; j++) {
			struct vhu_fe_region *b = &fe->regions[j];

			/* The tail of a, then the untouched head of b. */
			if (b->gpa != a->gpa + a->size || a->hi != a->gpa + a->size ||
			    b->lo != b->gpa || a->hi - a->lo < first ||
			    b->hi - b->lo < second)
				continue;
			a->hi -= first;
			b->lo += second;
			*gpa = a->hi;
			memset(a->map + a->mmap_offset + (a->hi - a->gpa), 0, first);
			memset(b->map + b->mmap_offset, 0, second);
			return 0;
		}
	}
	return -ENOMEM;
}
