/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What vhu-blk offers: the virtio-blk feature bits, the config space the
 * driver reads through GET_CONFIG (little endian), and the limits the
 * request parser enforces, all from one place so they agree.
 */
#include <string.h>

#include "blk.h"

static uint8_t log2u(uint32_t v)
{
	uint8_t n = 0;

	while (v > 1) {
		v >>= 1;
		n++;
	}
	return n;
}

void blk_config_build(struct blk_config *c, const struct blk_image *img,
		      unsigned queues, bool read_only)
{
	struct virtio_blk_config *g = &c->cfg;
	uint32_t align_sectors = img->lbs / VIRTIO_BLK_SECTOR_SIZE;

	memset(c, 0, sizeof(*c));
	c->features = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |
		      (1ull << VIRTIO_BLK_F_TOPOLOGY) | (1ull << VIRTIO_BLK_F_FLUSH) |
		      (1ull << VIRTIO_BLK_F_MQ);
	if (read_only)
		c->features |= 1ull << VIRTIO_BLK_F_RO;
	else
		c->features |= (1ull << VIRTIO_BLK_F_DISCARD) |
			       (1ull << VIRTIO_BLK_F_WRITE_ZEROES);

	c->lim.capacity = img->size / VIRTIO_BLK_SECTOR_SIZE;
	c->lim.read_only = read_only;
	c->lim.max_ranges = BLK_MAX_RANGES;
	if (!read_only) {
		c->lim.max_discard_sectors = BLK_MAX_DISCARD_SECTORS;
		c->lim.max_wz_sectors = BLK_MAX_WZ_SECTORS;
	}

	g->capacity = blk_le64(c->lim.capacity);
	g->size_max = blk_le32(1u << 20); /* SIZE_MAX is not offered: informative */
	g->seg_max = blk_le32(BLK_SEG_MAX);
	g->blk_size = blk_le32(img->lbs);
	g->physical_block_exp = log2u(img->pbs / img->lbs);
	g->min_io_size = blk_le16(1);
	g->opt_io_size = blk_le32(0);
	g->num_queues = blk_le16((uint16_t)queues);
	if (!read_only) {
		g->max_discard_sectors = blk_le32(BLK_MAX_DISCARD_SECTORS);
		g->max_discard_seg = blk_le32(BLK_MAX_RANGES);
		g->discard_sector_alignment = blk_le32(align_sectors);
		g->max_write_zeroes_sectors = blk_le32(BLK_MAX_WZ_SECTORS);
		g->max_write_zeroes_seg = blk_le32(BLK_MAX_RANGES);
		/* a hole punched in a file reads back as zeroes */
		g->write_zeroes_may_unmap = !img->blockdev;
	}
}

void blk_config_read(const struct blk_config *c, uint32_t offset, void *buf,
		     uint32_t len)
{
	uint64_t end = (uint64_t)offset + len;

	memset(buf, 0, len);
	if (offset >= sizeof(c->cfg))
		return;
	if (end > sizeof(c->cfg))
		end = sizeof(c->cfg);
	memcpy(buf, (const uint8_t *)&c->cfg + offset, (size_t)(end - offset));
}
