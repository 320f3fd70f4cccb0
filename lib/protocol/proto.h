/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vhost-user wire format (QEMU docs/interop/vhost-user.rst).
 *
 * Numbers are in host byte order on the wire.  Every payload layout is
 * packed and its size asserted, so a compiler can never change what is
 * read off the socket.  This header is internal; the in-tree test frontend
 * includes it too, so both ends agree on the format by construction.
 */
#ifndef VHU_PROTO_H
#define VHU_PROTO_H

#include <stdint.h>

/* Front-end requests. */
enum vhu_request {
	VHU_REQ_NONE = 0,
	VHU_REQ_GET_FEATURES = 1,
	VHU_REQ_SET_FEATURES = 2,
	VHU_REQ_SET_OWNER = 3,
	VHU_REQ_RESET_OWNER = 4,
	VHU_REQ_SET_MEM_TABLE = 5,
	VHU_REQ_SET_LOG_BASE = 6,
	VHU_REQ_SET_LOG_FD = 7,
	VHU_REQ_SET_VRING_NUM = 8,
	VHU_REQ_SET_VRING_ADDR = 9,
	VHU_REQ_SET_VRING_BASE = 10,
	VHU_REQ_GET_VRING_BASE = 11,
	VHU_REQ_SET_VRING_KICK = 12,
	VHU_REQ_SET_VRING_CALL = 13,
	VHU_REQ_SET_VRING_ERR = 14,
	VHU_REQ_GET_PROTOCOL_FEATURES = 15,
	VHU_REQ_SET_PROTOCOL_FEATURES = 16,
	VHU_REQ_GET_QUEUE_NUM = 17,
	VHU_REQ_SET_VRING_ENABLE = 18,
	VHU_REQ_SEND_RARP = 19,
	VHU_REQ_NET_SET_MTU = 20,
	VHU_REQ_SET_BACKEND_REQ_FD = 21,
	VHU_REQ_IOTLB_MSG = 22,
	VHU_REQ_SET_VRING_ENDIAN = 23,
	VHU_REQ_GET_CONFIG = 24,
	VHU_REQ_SET_CONFIG = 25,
	VHU_REQ_CREATE_CRYPTO_SESSION = 26,
	VHU_REQ_CLOSE_CRYPTO_SESSION = 27,
	VHU_REQ_POSTCOPY_ADVISE = 28,
	VHU_REQ_POSTCOPY_LISTEN = 29,
	VHU_REQ_POSTCOPY_END = 30,
	VHU_REQ_GET_INFLIGHT_FD = 31,
	VHU_REQ_SET_INFLIGHT_FD = 32,
	VHU_REQ_GPU_SET_SOCKET = 33,
	VHU_REQ_RESET_DEVICE = 34,
	VHU_REQ_VRING_KICK = 35,
	VHU_REQ_GET_MAX_MEM_SLOTS = 36,
	VHU_REQ_ADD_MEM_REG = 37,
	VHU_REQ_REM_MEM_REG = 38,
	VHU_REQ_SET_STATUS = 39,
	VHU_REQ_GET_STATUS = 40,
	VHU_REQ_GET_SHARED_OBJECT = 41,
	VHU_REQ_SET_DEVICE_STATE_FD = 42,
	VHU_REQ_CHECK_DEVICE_STATE = 43,
	VHU_REQ_MAX
};

/* Back-end requests, sent on the back-end channel (SET_BACKEND_REQ_FD). */
enum vhu_backend_req {
	VHU_BREQ_NONE = 0,
	VHU_BREQ_IOTLB_MSG = 1,
	VHU_BREQ_CONFIG_CHANGE_MSG = 2,
	VHU_BREQ_VRING_HOST_NOTIFIER_MSG = 3,
	VHU_BREQ_VRING_CALL = 4,
	VHU_BREQ_VRING_ERR = 5,
	VHU_BREQ_SHARED_OBJECT_ADD = 6,
	VHU_BREQ_SHARED_OBJECT_REMOVE = 7,
	VHU_BREQ_SHARED_OBJECT_LOOKUP = 8,
	VHU_BREQ_MAX
};

/* Protocol feature bits (GET/SET_PROTOCOL_FEATURES). */
enum {
	VHU_PF_MQ = 0,
	VHU_PF_LOG_SHMFD = 1,
	VHU_PF_RARP = 2,
	VHU_PF_REPLY_ACK = 3,
	VHU_PF_NET_MTU = 4,
	VHU_PF_BACKEND_REQ = 5,
	VHU_PF_CROSS_ENDIAN = 6,
	VHU_PF_CRYPTO_SESSION = 7,
	VHU_PF_PAGEFAULT = 8,
	VHU_PF_CONFIG = 9,
	VHU_PF_BACKEND_SEND_FD = 10,
	VHU_PF_HOST_NOTIFIER = 11,
	VHU_PF_INFLIGHT_SHMFD = 12,
	VHU_PF_RESET_DEVICE = 13,
	VHU_PF_INBAND_NOTIFICATIONS = 14,
	VHU_PF_CONFIGURE_MEM_SLOTS = 15,
	VHU_PF_STATUS = 16,
	VHU_PF_XEN_MMAP = 17,
	VHU_PF_SHARED_OBJECT = 18,
	VHU_PF_DEVICE_STATE = 19,
	VHU_PF_COUNT
};

/* Virtio and vhost feature bits the transport itself cares about. */
enum {
	VHU_F_NOTIFY_ON_EMPTY = 24,
	VHU_F_LOG_ALL = 26, /* VHOST_F_LOG_ALL */
	VHU_F_ANY_LAYOUT = 27,
	VHU_F_INDIRECT_DESC = 28,
	VHU_F_EVENT_IDX = 29,
	VHU_F_PROTOCOL_FEATURES = 30, /* VHOST_USER_F_PROTOCOL_FEATURES */
	VHU_F_VERSION_1 = 32,
	VHU_F_ACCESS_PLATFORM = 33,
	VHU_F_RING_PACKED = 34,
	VHU_F_IN_ORDER = 35,
	VHU_F_ORDER_PLATFORM = 36,
	VHU_F_SR_IOV = 37,
	VHU_F_NOTIFICATION_DATA = 38,
	VHU_F_RING_RESET = 40,
};

#define VHU_BIT(n) (1ULL << (n))

/* Header flags. */
#define VHU_FLAG_VERSION_MASK 0x3u
#define VHU_FLAG_VERSION 0x1u
#define VHU_FLAG_REPLY (1u << 2)
#define VHU_FLAG_NEED_REPLY (1u << 3)
#define VHU_FLAG_KNOWN (VHU_FLAG_VERSION_MASK | VHU_FLAG_REPLY | VHU_FLAG_NEED_REPLY)

/* SET_VRING_KICK/CALL/ERR u64 payload. */
#define VHU_VRING_IDX_MASK 0xffu
#define VHU_VRING_NOFD (1u << 8)

/* SET_VRING_ADDR flags. */
#define VHU_VRING_F_LOG 0x1u

/* Packed-ring SET/GET_VRING_BASE num: avail idx | wrap << 15 (low half),
 * used idx | wrap << 31 (high half). */
#define VHU_PACKED_IDX_MASK 0x7fffu
#define VHU_PACKED_WRAP_BIT 15

/* Largest fds one message may carry (QEMU's VHOST_MEMORY_BASELINE_NREGIONS). */
#define VHU_MAX_FDS 8
/* Regions in one SET_MEM_TABLE message. */
#define VHU_MEM_TABLE_MAX_REGIONS 8
/* Size of a virtio config space access QEMU can send (VHOST_USER_MAX_CONFIG_SIZE). */
#define VHU_CONFIG_MAX_SIZE 256
/* Device state transfer. */
#define VHU_TRANSFER_SAVE 0
#define VHU_TRANSFER_LOAD 1

struct vhu_msg_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
} __attribute__((packed));
_Static_assert(sizeof(struct vhu_msg_hdr) == 12, "header");

struct vhu_vring_state {
	uint32_t index;
	uint32_t num;
} __attribute__((packed));
_Static_assert(sizeof(struct vhu_vring_state) == 8, "vring state");

struct vhu_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc_user_addr;
	uint64_t used_user_addr;
	uint64_t avail_user_addr;
	uint64_t log_guest_addr;
} __attribute__((packed));
_Static_assert(sizeof(struct vhu_vring_addr) == 40, "vring addr");

struct vhu_mem_region {
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t mmap_offset;
} __attribute__((packed));
_Static_assert(sizeof(struct vhu_mem_region) == 32, "mem region");

struct vhu_mem_table_hdr {
	uint32_t nregions;
	uint32_t padding;
} __attribute__((packed));
_Static_assert(sizeof(struct vhu_mem_table_hdr) == 8, "mem table header");

struct vhu_mem_reg_msg {
	uint64_t padding;
	struct vhu_mem_region region;
} __attribute__((packed));
_Static_assert(sizeof(struct vhu_mem_reg_msg) == 40, "single region");

struct vhu_log {
	uint64_t mmap_size;
	uint64_t mmap_offset;
} __attribute__((packed));
_Static_assert(sizeof(struct vhu_log) == 16, "log");

struct vhu_iotlb_msg {
	uint64_t iova;
	uint64_t size;
	uint64_t uaddr;
	uint8_t perm;
	uint8_t type;
} __attribute__((packed));
_Static_assert(sizeof(struct vhu_iotlb_msg) == 26, "iotlb");

struct vhu_config_hdr {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
} __attribute__((packed));
_Static_assert(sizeof(struct vhu_config_hdr) == 12, "config header");

struct vhu_vring_area {
	uint64_t u64;
	uint64_t size;
	uint64_t offset;
} __attribute__((packed));
_Static_assert(sizeof(struct vhu_vring_area) == 24, "vring area");

/* Not packed on the wire: QEMU and DPDK send and expect the C struct's
 * 24 bytes, its tail padding included. */
struct vhu_inflight {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
	uint32_t padding;
} __attribute__((packed));
_Static_assert(sizeof(struct vhu_inflight) == 24, "inflight");

struct vhu_shared_object {
	uint8_t uuid[16];
} __attribute__((packed));
_Static_assert(sizeof(struct vhu_shared_object) == 16, "shared object");

struct vhu_device_state_transfer {
	uint32_t direction;
	uint32_t phase;
} __attribute__((packed));
_Static_assert(sizeof(struct vhu_device_state_transfer) == 8, "transfer");

/* Fixed part of CREATE_CRYPTO_SESSION's payload: the session setup data
 * followed by keys; the backend never offers the feature, so only the
 * minimum size is checked. */
#define VHU_CRYPTO_SESSION_MIN_SIZE 16

/* The largest payload of any request: a config access of the largest size. */
#define VHU_MAX_PAYLOAD (sizeof(struct vhu_config_hdr) + VHU_CONFIG_MAX_SIZE)
_Static_assert(VHU_MAX_PAYLOAD >= sizeof(struct vhu_mem_table_hdr) +
	       VHU_MEM_TABLE_MAX_REGIONS * sizeof(struct vhu_mem_region),
	       "a full memory table fits");

/* A whole message as it sits in a buffer. */
struct vhu_msg {
	struct vhu_msg_hdr hdr;
	union {
		uint64_t u64;
		struct vhu_vring_state state;
		struct vhu_vring_addr addr;
		struct {
			struct vhu_mem_table_hdr mem_hdr;
			struct vhu_mem_region regions[VHU_MEM_TABLE_MAX_REGIONS];
		} __attribute__((packed)) mem;
		struct vhu_mem_reg_msg mem_reg;
		struct vhu_log log;
		struct vhu_iotlb_msg iotlb;
		struct {
			struct vhu_config_hdr hdr;
			uint8_t data[VHU_CONFIG_MAX_SIZE];
		} __attribute__((packed)) config;
		struct vhu_vring_area area;
		struct vhu_inflight inflight;
		struct vhu_shared_object object;
		struct vhu_device_state_transfer transfer;
		uint8_t bytes[VHU_MAX_PAYLOAD];
	} __attribute__((packed)) u;
} __attribute__((packed));
_Static_assert(sizeof(struct vhu_msg) == 12 + 268, "message buffer");

/* The virtio-net header in guest buffers (VERSION_1 / MRG_RXBUF layout;
 * the legacy one is these fields without num_buffers). */
struct virtio_net_hdr_v1 {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers; /* MRG_RXBUF or VERSION_1 only */
} __attribute__((packed));
_Static_assert(sizeof(struct virtio_net_hdr_v1) == 12, "virtio_net_hdr_v1");

#endif
