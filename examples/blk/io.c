/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A queue's I/O engine.  With io_uring each request becomes one readv,
 * writev or fsync(DATASYNC), or one fallocate per range, on the queue's
 * own ring; completions come back in any order and are announced on the
 * queue's wake eventfd.  Without it (--no-uring, or io_uring_queue_init()
 * failed) the same operations run synchronously (io_sync.c) on the
 * data-plane thread, between bursts.
 *
 * FLUSH needs no ordering against writes in flight: a write is
 * acknowledged only once it completed, so every write the driver may
 * count on is done before the fdatasync starts.
 *
 * user_data of an operation: the slot's address (slots are 64-byte
 * aligned) with the range index in the low bits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/falloc.h>
#include <string.h>

#include "blk.h"

#define OP_INDEX_MASK 63u
_Static_assert(BLK_MAX_RANGES <= OP_INDEX_MASK + 1, "range index in user_data");
_Static_assert(_Alignof(struct blk_slot) > OP_INDEX_MASK, "slot alignment");

static uint64_t byte_off(uint64_t sector)
{
	return sector << VIRTIO_BLK_SECTOR_SHIFT;
}

static void finish(struct blk_io *io, struct blk_slot *s)
{
	bool ok = s->err == 0;

	s->br.status = ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
	s->data_done = ok && s->br.type == VIRTIO_BLK_T_IN ? (uint32_t)s->br.len : 0;
	s->next = NULL;
	if (io->done_tail)
		io->done_tail->next = s;
	else
		io->done_head = s;
	io->done_tail = s;
}

static void set_err(struct blk_slot *s, int err)
{
	if (err && !s->err)
		s->err = err;
}

static int run_sync(struct blk_io *io, struct blk_slot *s)
{
	struct blk_req *r = &s->br;
	int rc = 0;

	switch (r->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		return blk_sync_rw(io->img, r->iov, r->niov, byte_off(r->sector), r->len,
				   0, r->type == VIRTIO_BLK_T_OUT);
	case VIRTIO_BLK_T_FLUSH:
		return blk_sync_flush(io->img);
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		for (unsigned i = 0; i < r->nranges && !rc; i++) {
			const struct blk_range *g = &r->ranges[i];
			uint64_t off = byte_off(g->sector);
			uint64_t len = byte_off(g->nsectors);

			rc = r->type == VIRTIO_BLK_T_DISCARD
				     ? blk_sync_discard(io->img, off, len)
				     : blk_sync_write_zeroes(io->img, off, len,
							     g->flags & VIRTIO_BLK_WZ_F_UNMAP);
		}
		return rc;
	default:
		return -EINVAL; /* the parser lets no other type through */
	}
}

#ifdef VHU_BLK_URING

/* The fallocate mode for range @g, or -1: done synchronously. */
static int falloc_mode(const struct blk_image *img, uint32_t type,
		       const struct blk_range *g)
{
	if (img->blockdev)
		return -1; /* BLKDISCARD / BLKZEROOUT have no io_uring op */
	if (type == VIRTIO_BLK_T_DISCARD)
		return FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	if ((g->flags & VIRTIO_BLK_WZ_F_UNMAP) &&
	    !atomic_load_explicit(&img->no_punch_hole, memory_order_relaxed))
		return FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	if (!atomic_load_explicit(&img->no_zero_range, memory_order_relaxed))
		return FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
	return -1;
}

/* Prepare @s's operations; false when they must run synchronously. */
static bool prep_uring(struct blk_io *io, struct blk_slot *s)
{
	struct blk_req *r = &s->br;
	bool ranges = r->type == VIRTIO_BLK_T_DISCARD ||
		      r->type == VIRTIO_BLK_T_WRITE_ZEROES;
	unsigned need = ranges ? r->nranges : 1;
	struct io_uring_sqe *sqe;

	if (ranges)
		for (unsigned i = 0; i < r->nranges; i++)
			if (falloc_mode(io->img, r->type, &r->ranges[i]) < 0)
				return false;
	if ((r->type == VIRTIO_BLK_T_IN || r->type == VIRTIO_BLK_T_OUT) && !r->len)
		return false; /* nothing to transfer */
	if (io_uring_sq_space_left(&io->ring) < need) {
		blk_io_submit(io);
		if (io_uring_sq_space_left(&io->ring) < need)
			return false;
	}
	for (unsigned i = 0; i < need; i++) {
		sqe = io_uring_get_sqe(&io->ring);
		if (r->type == VIRTIO_BLK_T_IN || r->type == VIRTIO_BLK_T_OUT) {
			int fd = blk_io_can_direct(io->img, r->iov, r->niov,
						   byte_off(r->sector), r->len)
					 ? io->img->fd : io->img->fd_buffered;

			if (r->type == VIRTIO_BLK_T_IN)
				io_uring_prep_readv(sqe, fd, r->iov, r->niov,
						    byte_off(r->sector));
			else
				io_uring_prep_writev(sqe, fd, r->iov, r->niov,
						     byte_off(r->sector));
		} else if (r->type == VIRTIO_BLK_T_FLUSH) {
			io_uring_prep_fsync(sqe, io->img->fd, IORING_FSYNC_DATASYNC);
		} else {
			const struct blk_range *g = &r->ranges[i];

			io_uring_prep_fallocate(sqe, io->img->fd_buffered,
						falloc_mode(io->img, r->type, g),
						(off_t)byte_off(g->sector),
						(off_t)byte_off(g->nsectors));
		}
		io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)s | i);
	}
	s->ops = need;
	io->queued += need;
	return true;
}

/* One completion of @s's operation @i with result @res. */
static void complete_op(struct blk_io *io, struct blk_slot *s, unsigned i, int res)
{
	struct blk_req *r = &s->br;

	switch (r->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		if (res >= 0 && (uint64_t)res == r->len)
			break;
		/* short, or O_DIRECT refused the buffers: finish by hand */
		io->fallbacks++;
		set_err(s, res < 0 && res != -EINVAL
				   ? res
				   : blk_sync_rw(io->img, r->iov, r->niov,
						 byte_off(r->sector), r->len,
						 res > 0 ? (uint64_t)res : 0,
						 r->type == VIRTIO_BLK_T_OUT));
		break;
	case VIRTIO_BLK_T_FLUSH:
		set_err(s, res < 0 ? res : 0);
		break;
	case VIRTIO_BLK_T_DISCARD:
		set_err(s, res < 0 && res != -EOPNOTSUPP ? res : 0);
		break;
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (res == -EOPNOTSUPP) {
			/* remember, and let io_sync.c find what works */
			io->fallbacks++;
			set_err(s, blk_sync_write_zeroes(io->img, byte_off(r->ranges[i].sector),
							 byte_off(r->ranges[i].nsectors),
							 r->ranges[i].flags & VIRTIO_BLK_WZ_F_UNMAP));
		} else {
			set_err(s, res < 0 ? res : 0);
		}
		break;
	}
	if (--s->ops == 0) {
		io->inflight--;
		finish(io, s);
	}
}

#endif /* VHU_BLK_URING */

int blk_io_init(struct blk_io *io, struct blk_image *img, unsigned depth,
		bool no_uring, int notify_fd)
{
	memset(io, 0, sizeof(*io));
	io->img = img;
#ifdef VHU_BLK_URING
	if (!no_uring) {
		int rc = io_uring_queue_init(depth, &io->ring, 0);

		if (rc)
			return rc;
		rc = io_uring_register_eventfd(&io->ring, notify_fd);
		if (rc) {
			io_uring_queue_exit(&io->ring);
			return rc;
		}
		io->uring = true;
	}
#else
	(void)depth;
	(void)no_uring;
	(void)notify_fd;
#endif
	return 0;
}

void blk_io_fini(struct blk_io *io)
{
#ifdef VHU_BLK_URING
	if (io->uring)
		io_uring_queue_exit(&io->ring);
	io->uring = false;
#endif
	(void)io;
}

void blk_io_start(struct blk_io *io, struct blk_slot *s)
{
	s->err = 0;
	s->ops = 0;
	s->data_done = 0;
#ifdef VHU_BLK_URING
	if (io->uring && prep_uring(io, s)) {
		io->inflight++;
		return;
	}
#endif
	set_err(s, run_sync(io, s));
	finish(io, s);
}

void blk_io_submit(struct blk_io *io)
{
#ifdef VHU_BLK_URING
	if (io->uring && io->queued) {
		int rc = io_uring_submit(&io->ring);

		/* on -EAGAIN/-EBUSY the operations stay queued for next time */
		if (rc >= 0)
			io->queued = 0;
	}
#else
	(void)io;
#endif
}

void blk_io_reap(struct blk_io *io)
{
#ifdef VHU_BLK_URING
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	if (!io->uring)
		return;
	io_uring_for_each_cqe(&io->ring, head, cqe) {
		uint64_t d = io_uring_cqe_get_data64(cqe);

		complete_op(io, (struct blk_slot *)(uintptr_t)(d & ~(uint64_t)OP_INDEX_MASK),
			    (unsigned)(d & OP_INDEX_MASK), cqe->res);
		n++;
	}
	io_uring_cq_advance(&io->ring, n);
#else
	(void)io;
#endif
}

struct blk_slot *blk_io_take_done(struct blk_io *io)
{
	struct blk_slot *s = io->done_head;

	if (s) {
		io->done_head = s->next;
		if (!io->done_head)
			io->done_tail = NULL;
	}
	return s;
}
