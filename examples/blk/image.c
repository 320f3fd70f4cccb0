/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Opening the disk image: a regular file or a block device, O_DIRECT when
 * the file system takes it (a second, buffered fd serves requests whose
 * buffers O_DIRECT cannot take), its size and block sizes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blk.h"

static bool pow2_between(uint64_t v, uint64_t lo, uint64_t hi)
{
	return v >= lo && v <= hi && !(v & (v - 1));
}

/* What O_DIRECT wants aligned: statx() knows on Linux 6.1 and later;
 * otherwise the logical block size (a request that still gets EINVAL is
 * redone through the page cache, io_sync.c). */
static uint32_t dio_alignment(int fd, uint32_t lbs)
{
#ifdef STATX_DIOALIGN
	struct statx stx;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align) {
		uint32_t a = stx.stx_dio_offset_align;

		if (stx.stx_dio_mem_align > a)
			a = stx.stx_dio_mem_align;
		if (pow2_between(a, 1, 65536))
			return a;
	}
#endif
	(void)fd;
	return lbs;
}

static int blockdev_sizes(struct blk_image *img, char *err, size_t errlen)
{
	uint64_t bytes = 0;
	int lbs = 0;
	unsigned pbs = 0;

	if (ioctl(img->fd, BLKGETSIZE64, &bytes) || ioctl(img->fd, BLKSSZGET, &lbs)) {
		int e = errno;

		snprintf(err, errlen, "cannot read the size of the block device: %s",
			 strerror(e));
		return -e;
	}
	if (!pow2_between((uint64_t)lbs, 512, 65536)) {
		snprintf(err, errlen, "block device has an odd logical block size %d", lbs);
		return -EINVAL;
	}
	img->size = bytes;
	img->lbs = (uint32_t)lbs;
	if (ioctl(img->fd, BLKPBSZGET, &pbs) == 0 && pow2_between(pbs, img->lbs, 1u << 20))
		img->pbs = pbs;
	else
		img->pbs = img->lbs;
	return 0;
}

int blk_image_open(struct blk_image *img, const char *path, bool read_only,
		   char *err, size_t errlen)
{
	int flags = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct stat st;
	int rc;

	memset(img, 0, sizeof(*img));
	img->fd = img->fd_buffered = -1;
	img->read_only = read_only;
	img->fd_buffered = open(path, flags);
	if (img->fd_buffered < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(-rc));
		return rc;
	}
	img->fd = open(path, flags | O_DIRECT);
	if (img->fd >= 0) {
		img->direct = true;
	} else if (errno == EINVAL) {
		img->fd = img->fd_buffered; /* e.g. tmpfs: main.c warns */
	} else {
		rc = -errno;
		snprintf(err, errlen, "cannot open %s with O_DIRECT: %s", path,
			 strerror(-rc));
		goto out_close;
	}
	if (fstat(img->fd, &st)) {
		rc = -errno;
		snprintf(err, errlen, "cannot stat %s: %s", path, strerror(-rc));
		goto out_close;
	}
	if (S_ISBLK(st.st_mode)) {
		img->blockdev = true;
		rc = blockdev_sizes(img, err, errlen);
		if (rc)
			goto out_close;
	} else if (S_ISREG(st.st_mode)) {
		img->size = (uint64_t)st.st_size;
		img->lbs = VIRTIO_BLK_SECTOR_SIZE;
		img->pbs = pow2_between((uint64_t)st.st_blksize, 512, 65536)
				   ? (uint32_t)st.st_blksize : img->lbs;
	} else {
		snprintf(err, errlen, "%s is neither a regular file nor a block device", path);
		rc = -EINVAL;
		goto out_close;
	}
	img->dio_align = img->direct ? dio_alignment(img->fd, img->lbs) : 1;
	/* a trailing partial block cannot be addressed */
	img->size -= img->size % img->lbs;
	if (img->size == 0) {
		snprintf(err, errlen, "%s is smaller than one %u-byte block", path, img->lbs);
		rc = -EINVAL;
		goto out_close;
	}
	return 0;

out_close:
	blk_image_close(img);
	return rc;
}

void blk_image_close(struct blk_image *img)
{
	if (img->fd >= 0 && img->fd != img->fd_buffered)
		close(img->fd);
	if (img->fd_buffered >= 0)
		close(img->fd_buffered);
	img->fd = img->fd_buffered = -1;
}
