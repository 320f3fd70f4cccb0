/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * virtio-blk on the wire (VIRTIO 1.2 section 5.2): feature bits, request
 * types and statuses, the request header, discard/write-zeroes ranges and
 * the config space.  Every multi-byte field is little endian.
 */
#ifndef VHU_BLK_VIRTIO_BLK_H
#define VHU_BLK_VIRTIO_BLK_H

#include <stdint.h>

#define VIRTIO_ID_BLOCK 2

/* Feature bits. */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_TOPOLOGY 10
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Transport bits vhu offers that vhu-blk may withhold. */
#define VIRTIO_F_RING_PACKED 34
#define VIRTIO_F_IN_ORDER 35

/* Request types. */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

/* Status byte values. */
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_SECTOR_SIZE 512u
#define VIRTIO_BLK_SECTOR_SHIFT 9
#define VIRTIO_BLK_ID_BYTES 20u

/* The request header: the first 16 device-readable bytes. */
struct virtio_blk_outhdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};
_Static_assert(sizeof(struct virtio_blk_outhdr) == 16, "virtio-blk header");

/* One range of a DISCARD or WRITE_ZEROES request. */
#define VIRTIO_BLK_WZ_F_UNMAP 1u
struct virtio_blk_range {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};
_Static_assert(sizeof(struct virtio_blk_range) == 16, "virtio-blk range");

/* The config space, up to the write-zeroes fields (what the offered
 * features describe; the driver reads zeros beyond). */
struct virtio_blk_config {
	uint64_t capacity;         /* 512-byte sectors */
	uint32_t size_max;
	uint32_t seg_max;
	uint16_t cylinders;        /* geometry: not offered */
	uint8_t heads;
	uint8_t sectors;
	uint32_t blk_size;
	uint8_t physical_block_exp;
	uint8_t alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint8_t writeback;
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
} __attribute__((packed)); /* 60 bytes: the wire size, not a multiple of 8 */
_Static_assert(sizeof(struct virtio_blk_config) == 60, "virtio-blk config");
_Static_assert(__builtin_offsetof(struct virtio_blk_config, blk_size) == 20,
	       "blk_size");
_Static_assert(__builtin_offsetof(struct virtio_blk_config, num_queues) == 34,
	       "num_queues");
_Static_assert(__builtin_offsetof(struct virtio_blk_config,
				  write_zeroes_may_unmap) == 56,
	       "write_zeroes_may_unmap");

/* Little-endian conversions (the host may be big endian). */
static inline uint16_t blk_le16(uint16_t v)
{
	return __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? v : __builtin_bswap16(v);
}
static inline uint32_t blk_le32(uint32_t v)
{
	return __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? v : __builtin_bswap32(v);
}
static inline uint64_t blk_le64(uint64_t v)
{
	return __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? v : __builtin_bswap64(v);
}

#endif
