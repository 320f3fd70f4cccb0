/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Virtqueue layouts (VIRTIO 1.2 §2.7 split, §2.8 packed), little-endian
 * accessors and the memory barriers of the data plane.
 *
 * Every access to ring memory goes through these accessors: single untorn
 * loads and stores (the guest writes the same memory concurrently), so a
 * field the guest can rewrite is read exactly once into a local.
 */
#ifndef VHU_RING_H
#define VHU_RING_H

#include <stdatomic.h>
#include <stdint.h>

#define VRING_DESC_F_NEXT 1u
#define VRING_DESC_F_WRITE 2u
#define VRING_DESC_F_INDIRECT 4u
#define VRING_PACKED_DESC_F_AVAIL (1u << 7)
#define VRING_PACKED_DESC_F_USED (1u << 15)

#define VRING_AVAIL_F_NO_INTERRUPT 1u
#define VRING_USED_F_NO_NOTIFY 1u

#define VRING_EVENT_F_ENABLE 0u
#define VRING_EVENT_F_DISABLE 1u
#define VRING_EVENT_F_DESC 2u

struct vring_desc { /* split descriptor, also the indirect table entry */
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
_Static_assert(sizeof(struct vring_desc) == 16, "split descriptor");

struct vring_packed_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t id;
	uint16_t flags;
};
_Static_assert(sizeof(struct vring_packed_desc) == 16, "packed descriptor");

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};
_Static_assert(sizeof(struct vring_used_elem) == 8, "used element");

/* Split avail ring: flags, idx, ring[size], used_event. */
#define VRING_AVAIL_FLAGS(a) ((uint16_t *)(a))
#define VRING_AVAIL_IDX(a) ((uint16_t *)(a) + 1)
#define VRING_AVAIL_RING(a, i) ((uint16_t *)(a) + 2 + (i))
#define VRING_USED_EVENT(a, size) ((uint16_t *)(a) + 2 + (size))
/* Split used ring: flags, idx, ring[size] of used elements, avail_event. */
#define VRING_USED_FLAGS(u) ((uint16_t *)(u))
#define VRING_USED_IDX(u) ((uint16_t *)(u) + 1)
#define VRING_USED_RING(u, i) \
	((struct vring_used_elem *)((uint8_t *)(u) + 4) + (i))
#define VRING_AVAIL_EVENT(u, size) \
	((uint16_t *)((uint8_t *)(u) + 4 + 8 * (size_t)(size)))
/* Packed event suppression structure: off_wrap, flags. */
#define VRING_EVENT_OFF_WRAP(e) ((uint16_t *)(e))
#define VRING_EVENT_FLAGS(e) ((uint16_t *)(e) + 1)

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define vhu_le16(v) (v)
#define vhu_le32(v) (v)
#define vhu_le64(v) (v)
#else
#define vhu_le16(v) __builtin_bswap16(v)
#define vhu_le32(v) __builtin_bswap32(v)
#define vhu_le64(v) __builtin_bswap64(v)
#endif

static inline uint16_t ld16(const void *p)
{
	return vhu_le16(__atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED));
}

static inline uint32_t ld32(const void *p)
{
	return vhu_le32(__atomic_load_n((const uint32_t *)p, __ATOMIC_RELAXED));
}

static inline uint64_t ld64(const void *p)
{
	return vhu_le64(__atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED));
}

static inline uint16_t ld16_acquire(const void *p)
{
	return vhu_le16(__atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE));
}

static inline void st16(void *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)p, vhu_le16(v), __ATOMIC_RELAXED);
}

static inline void st32(void *p, uint32_t v)
{
	__atomic_store_n((uint32_t *)p, vhu_le32(v), __ATOMIC_RELAXED);
}

static inline void st64_release(void *p, uint64_t v)
{
	__atomic_store_n((uint64_t *)p, vhu_le64(v), __ATOMIC_RELEASE);
}

static inline void st16_release(void *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)p, vhu_le16(v), __ATOMIC_RELEASE);
}

/* Full barrier: orders our earlier stores before our later loads. */
static inline void vhu_smp_mb(void)
{
	atomic_thread_fence(memory_order_seq_cst);
}

/* VIRTIO's vring_need_event(): has [old, new) passed event? */
static inline int vring_need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#endif
