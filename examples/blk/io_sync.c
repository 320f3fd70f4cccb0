/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The synchronous operations: what --no-uring (or a kernel without
 * io_uring) runs, and how io.c finishes what io_uring left undone (a short
 * transfer, O_DIRECT refusing a buffer, an fallocate mode the file system
 * lacks).  Each returns 0 or -errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "blk.h"

/* Zeroes written 64 KiB at a time when nothing cheaper works. */
static const uint8_t zeroes[64 * 1024];

bool blk_io_can_direct(const struct blk_image *img, const struct iovec *iov,
		       unsigned niov, uint64_t off, uint64_t len)
{
	uint64_t mask = img->dio_align - 1;

	if (!img->direct || ((off | len) & mask))
		return false;
	for (unsigned i = 0; i < niov; i++)
		if (((uintptr_t)iov[i].iov_base | iov[i].iov_len) & mask)
			return false;
	return true;
}

static void iov_advance(struct iovec **iov, unsigned *niov, uint64_t n)
{
	while (*niov && n >= (*iov)->iov_len) {
		n -= (*iov)->iov_len;
		(*iov)++;
		(*niov)--;
	}
	if (*niov && n) {
		(*iov)->iov_base = (uint8_t *)(*iov)->iov_base + n;
		(*iov)->iov_len -= (size_t)n;
	}
}

/* Read or write [@off + @skip, @off + @len) from or into @iov (advanced by
 * @skip first; the iovecs are consumed). */
int blk_sync_rw(const struct blk_image *img, struct iovec *iov, unsigned niov,
		uint64_t off, uint64_t len, uint64_t skip, bool write)
{
	bool direct;
	int fd;

	iov_advance(&iov, &niov, skip);
	direct = blk_io_can_direct(img, iov, niov, off + skip, len - skip);
	fd = direct ? img->fd : img->fd_buffered;
	while (skip < len) {
		int cnt = niov < IOV_MAX ? (int)niov : IOV_MAX;
		ssize_t n = write ? pwritev(fd, iov, cnt, (off_t)(off + skip))
				  : preadv(fd, iov, cnt, (off_t)(off + skip));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && direct) {
			/* O_DIRECT wanted more alignment than we knew */
			direct = false;
			fd = img->fd_buffered;
			continue;
		}
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* the image shrank under us */
		skip += (uint64_t)n;
		iov_advance(&iov, &niov, (uint64_t)n);
	}
	return 0;
}

int blk_sync_flush(const struct blk_image *img)
{
	return fdatasync(img->fd) ? -errno : 0;
}

int blk_sync_discard(struct blk_image *img, uint64_t off, uint64_t len)
{
	int rc;

	if (img->blockdev) {
		uint64_t range[2] = { off, len };

		rc = ioctl(img->fd, BLKDISCARD, range) ? -errno : 0;
	} else {
		rc = fallocate(img->fd_buffered, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       (off_t)off, (off_t)len) ? -errno : 0;
	}
	/* a discard is a hint: a disk or file system without it did its part */
	return rc == -EOPNOTSUPP ? 0 : rc;
}

static int write_zeroes_by_hand(const struct blk_image *img, uint64_t off,
				uint64_t len)
{
	while (len) {
		size_t chunk = len < sizeof(zeroes) ? (size_t)len : sizeof(zeroes);
		ssize_t n = pwrite(img->fd_buffered, zeroes, chunk, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

int blk_sync_write_zeroes(struct blk_image *img, uint64_t off, uint64_t len,
			  bool unmap)
{
	if (img->blockdev) {
		uint64_t range[2] = { off, len };

		if (ioctl(img->fd, BLKZEROOUT, range) == 0)
			return 0;
		if (errno != EOPNOTSUPP)
			return -errno;
		return write_zeroes_by_hand(img, off, len);
	}
	if (unmap && !atomic_load_explicit(&img->no_punch_hole, memory_order_relaxed)) {
		if (fallocate(img->fd_buffered, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)off, (off_t)len) == 0)
			return 0;
		if (errno != EOPNOTSUPP)
			return -errno;
		atomic_store_explicit(&img->no_punch_hole, true, memory_order_relaxed);
	}
	if (!atomic_load_explicit(&img->no_zero_range, memory_order_relaxed)) {
		if (fallocate(img->fd_buffered, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
			      (off_t)off, (off_t)len) == 0)
			return 0;
		if (errno != EOPNOTSUPP)
			return -errno;
		atomic_store_explicit(&img->no_zero_range, true, memory_order_relaxed);
	}
	return write_zeroes_by_hand(img, off, len);
}
