/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhu_fe: an in-tree vhost-user front-end for tests.
 *
 * It plays QEMU's part: it owns guest memory (memfd regions mapped in this
 * process, their "user addresses" being its own mapping addresses, as QEMU
 * sends them), lays out virtqueues the way a Linux driver does, speaks the
 * vhost-user protocol to a back-end over a Unix socket, and drives the
 * rings from the driver side.  It also sends whatever a test asks it to,
 * including malformed messages, so hostile-input tests can use it.
 *
 * Conventions: functions returning int return 0 (or a value >= 0 where
 * documented) on success and -errno on failure; constructors return NULL
 * and set errno.  Nothing here aborts or exits.  Every fd the fe opens is
 * closed by vhu_fe_free().  A struct vhu_fe is used by one thread at a time.
 *
 * A typical test (the device served by test/util's tu_backend thread):
 *
 *	struct vhu_fe *fe = vhu_fe_connect(path, 3000);
 *	struct vhu_fe_handshake_opts o = { .sz = sizeof(o), .num_queues = 2 };
 *	vhu_fe_handshake(fe, &o, NULL);          // memory, rings, DRIVER_OK
 *	struct vhu_fe_ring *r = vhu_fe_queue_ring(fe, 0);
 *	uint64_t gpa;
 *	vhu_fe_mem_alloc(fe, 4096, 0, &gpa);     // a buffer in guest memory
 *	struct vhu_fe_buf b = { gpa, 4096 };
 *	vhu_fe_ring_add(r, &b, 1, 0, token);     // one device-readable buffer
 *	vhu_fe_queue_notify(fe, 0);              // publish, kick if wanted
 *	... the device works ...
 *	vhu_fe_queue_wait_call(fe, 0, 1000, NULL);
 *	while (vhu_fe_ring_get_used(r, &id, &len, &token) == 1) ...
 *	vhu_fe_free(fe);
 *
 * Specific errors: -ETIMEDOUT (no reply in time), -ECONNRESET (the back-end
 * closed the connection), -EPROTO (a reply with a wrong header),
 * -EREMOTEIO (the back-end answered a NEED_REPLY request with a non-zero
 * ack; vhu_fe_last_ack() has the value), -ENOTCONN (no connection).
 */
#ifndef VHU_FE_H
#define VHU_FE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/proto.h"

#define VHU_FE_MAX_QUEUES 64
#define VHU_FE_MAX_REGIONS 512 /* enough to run past 509 memory slots */
#define VHU_FE_DEFAULT_TIMEOUT_MS 5000

struct vhu_fe;

/* ------------------------------------------------------------------------
 * Connection (fe_sock.c)
 */

/** vhu_fe_connect() - connect as a client to a back-end listening on @path,
 *  retrying for up to @timeout_ms while the socket is missing or refuses. */
struct vhu_fe *vhu_fe_connect(const char *path, int timeout_ms);

/** vhu_fe_listen() - listen on @path (a stale socket there is removed) for
 *  a back-end in client mode; then vhu_fe_accept(). */
struct vhu_fe *vhu_fe_listen(const char *path);

/** vhu_fe_accept() - wait up to @timeout_ms for the back-end to connect.
 *  -EISCONN if a connection is open, -EINVAL if the fe is not listening. */
int vhu_fe_accept(struct vhu_fe *fe, int timeout_ms);

/** vhu_fe_reconnect() - client fe: drop the connection and connect to the
 *  same path again (memory and queues are kept). */
int vhu_fe_reconnect(struct vhu_fe *fe, int timeout_ms);

/** vhu_fe_disconnect() - close the connection and the back-end channel.
 *  Memory, queues and a listening socket are kept; a listening fe can
 *  accept again. */
void vhu_fe_disconnect(struct vhu_fe *fe);

/** vhu_fe_free() - disconnect, unmap, close every fd, remove the socket
 *  file of a listening fe.  NULL is a no-op. */
void vhu_fe_free(struct vhu_fe *fe);

bool vhu_fe_is_connected(const struct vhu_fe *fe);
/** The connection's fd (-1 if none), for tests that poke it directly. */
int vhu_fe_sock_fd(const struct vhu_fe *fe);

/** vhu_fe_wait_hangup() - wait until the back-end closes the connection:
 *  0 when it did (the fe is then disconnected), -EPROTO if it sent data
 *  instead (left unread), -ETIMEDOUT. */
int vhu_fe_wait_hangup(struct vhu_fe *fe, int timeout_ms);

/** Default timeout for replies (VHU_FE_DEFAULT_TIMEOUT_MS). */
void vhu_fe_set_timeout(struct vhu_fe *fe, int timeout_ms);

/* ------------------------------------------------------------------------
 * Raw messages (fe_sock.c).  Flags are sent exactly as given: pass
 * VHU_FLAG_VERSION yourself.
 */

/** vhu_fe_send_raw() - send @len bytes (anything, even a partial header)
 *  with @nfds (at most 64) fds attached to the first byte.  Waits up to
 *  the fe's timeout for a peer that stopped reading (-ETIMEDOUT). */
int vhu_fe_send_raw(struct vhu_fe *fe, const void *buf, size_t len,
		    const int *fds, size_t nfds);

/** vhu_fe_send_hdr() - send a header {request, flags, size_field} followed
 *  by @len payload bytes; size_field need not equal @len. */
int vhu_fe_send_hdr(struct vhu_fe *fe, uint32_t request, uint32_t flags,
		    uint32_t size_field, const void *payload, size_t len,
		    const int *fds, size_t nfds);

/** vhu_fe_send() - send a well-framed request (size field = @len). */
int vhu_fe_send(struct vhu_fe *fe, uint32_t request, uint32_t flags,
		const void *payload, size_t len, const int *fds, size_t nfds);

/**
 * vhu_fe_recv_reply() - receive one reply within @timeout_ms (<0: the fe's
 * default) and check it: version 1, REPLY set, no unknown flags, request
 * == @request (else -EPROTO), size <= @cap (else -EMSGSIZE).  The payload
 * goes to @buf.  fds that came with it are stored in @fds (up to *@nfds,
 * which is updated) or closed when @fds is NULL.  Returns the payload
 * size.  A refused reply is consumed whole, so the next one can be read,
 * except when its size exceeds VHU_MAX_PAYLOAD (-EPROTO: disconnect).
 */
int vhu_fe_recv_reply(struct vhu_fe *fe, uint32_t request, void *buf,
		      size_t cap, int *fds, size_t *nfds, int timeout_ms);

/** vhu_fe_has_reply() - does @request always get a reply (GET_* and the
 *  like), regardless of NEED_REPLY?  (SET_LOG_BASE gets one only with
 *  LOG_SHMFD negotiated; vhu_fe_request() knows that.) */
bool vhu_fe_has_reply(uint32_t request);

/**
 * vhu_fe_request() - send a request and, when a reply is due (an explicit
 * reply, or NEED_REPLY in @flags), wait for it.  With an explicit reply
 * the payload is copied to @reply (up to @reply_cap) and its size is
 * returned.  With NEED_REPLY only, the u64 ack is checked: 0 returns 0,
 * anything else -EREMOTEIO.  Otherwise 0 once sent.
 */
int vhu_fe_request(struct vhu_fe *fe, uint32_t request, uint32_t flags,
		   const void *payload, size_t len, const int *fds,
		   size_t nfds, void *reply, size_t reply_cap);

/** The last ack received for a NEED_REPLY request. */
uint64_t vhu_fe_last_ack(const struct vhu_fe *fe);

/** vhu_fe_set_need_reply() - typed helpers set NEED_REPLY on every
 *  request without an explicit reply, when REPLY_ACK was negotiated (see
 *  vhu_fe_set_protocol_features()), and check the ack. */
void vhu_fe_set_need_reply(struct vhu_fe *fe, bool on);

/* ------------------------------------------------------------------------
 * Typed requests (fe_req.c).  They track what was negotiated.
 */

int vhu_fe_get_features(struct vhu_fe *fe, uint64_t *features);
int vhu_fe_set_features(struct vhu_fe *fe, uint64_t features);
int vhu_fe_get_protocol_features(struct vhu_fe *fe, uint64_t *pf);
int vhu_fe_set_protocol_features(struct vhu_fe *fe, uint64_t pf);
int vhu_fe_set_owner(struct vhu_fe *fe);
int vhu_fe_reset_owner(struct vhu_fe *fe);
int vhu_fe_reset_device(struct vhu_fe *fe);
int vhu_fe_get_queue_num(struct vhu_fe *fe, uint64_t *num);
int vhu_fe_get_max_mem_slots(struct vhu_fe *fe, uint64_t *slots);
/** SET_MEM_TABLE with every region of the fe's guest memory (at most
 *  VHU_MEM_TABLE_MAX_REGIONS, else -E2BIG: use ADD_MEM_REG). */
int vhu_fe_set_mem_table(struct vhu_fe *fe);
/** SET_MEM_TABLE with a table of the caller's (hostile tests): any
 *  @nregions up to 4096, sent as the header says, with @nfds fds. */
int vhu_fe_set_mem_table_raw(struct vhu_fe *fe,
			     const struct vhu_mem_region *regions,
			     uint32_t nregions, const int *fds, size_t nfds);
/** ADD_MEM_REG / REM_MEM_REG for region @i of the fe's memory.  REM sends
 *  no fd (the spec's recommendation) unless @with_fd (old QEMU). */
int vhu_fe_add_mem_reg(struct vhu_fe *fe, unsigned i);
int vhu_fe_rem_mem_reg(struct vhu_fe *fe, unsigned i, bool with_fd);
int vhu_fe_set_vring_num(struct vhu_fe *fe, uint32_t idx, uint32_t num);
int vhu_fe_set_vring_addr(struct vhu_fe *fe, uint32_t idx, uint64_t desc,
			  uint64_t used, uint64_t avail, uint32_t flags);
int vhu_fe_set_vring_base(struct vhu_fe *fe, uint32_t idx, uint32_t base);
int vhu_fe_get_vring_base(struct vhu_fe *fe, uint32_t idx, uint32_t *base);
/** KICK/CALL/ERR: @fd < 0 sends the no-fd bit. */
int vhu_fe_set_vring_kick(struct vhu_fe *fe, uint32_t idx, int fd);
int vhu_fe_set_vring_call(struct vhu_fe *fe, uint32_t idx, int fd);
int vhu_fe_set_vring_err(struct vhu_fe *fe, uint32_t idx, int fd);
int vhu_fe_set_vring_enable(struct vhu_fe *fe, uint32_t idx, bool on);
int vhu_fe_set_status(struct vhu_fe *fe, uint8_t status);
int vhu_fe_get_status(struct vhu_fe *fe, uint8_t *status);
/** GET_CONFIG: reads @size bytes at @offset into @buf. */
int vhu_fe_get_config(struct vhu_fe *fe, uint32_t offset, void *buf,
		      uint32_t size, uint32_t flags);
int vhu_fe_set_config(struct vhu_fe *fe, uint32_t offset, const void *buf,
		      uint32_t size, uint32_t flags);
int vhu_fe_send_rarp(struct vhu_fe *fe, const uint8_t mac[6]);
int vhu_fe_net_set_mtu(struct vhu_fe *fe, uint16_t mtu);
/** VRING_KICK (in-band notification, INBAND_NOTIFICATIONS). */
int vhu_fe_vring_kick(struct vhu_fe *fe, uint32_t idx);

/**
 * vhu_fe_set_log_base() - SET_LOG_BASE: the dirty-page log (one bit per
 * 4 KiB guest page) is @size bytes at @offset in @fd, which is sent and
 * stays the caller's (close it yourself); @fd < 0 sends no fd (hostile
 * tests).  With LOG_SHMFD acked (the handshake acks it when offered) the
 * back-end always answers with a u64 status: 0 returns 0, anything else
 * -EREMOTEIO (vhu_fe_last_ack() has it).  Without LOG_SHMFD the request
 * gets no reply unless NEED_REPLY is on (vhu_fe_set_need_reply()).
 */
int vhu_fe_set_log_base(struct vhu_fe *fe, int fd, uint64_t size,
			uint64_t offset);
/** vhu_fe_set_log_all() - SET_FEATURES with the features acked so far
 *  plus (@on) or minus VHOST_F_LOG_ALL: how QEMU starts and stops dirty
 *  logging for a migration.  The handshake never acks LOG_ALL itself. */
int vhu_fe_set_log_all(struct vhu_fe *fe, bool on);

/** What the back-end offered / what the fe acked (0 until known). */
uint64_t vhu_fe_offered_features(const struct vhu_fe *fe);
uint64_t vhu_fe_acked_features(const struct vhu_fe *fe);
uint64_t vhu_fe_offered_protocol_features(const struct vhu_fe *fe);
uint64_t vhu_fe_acked_protocol_features(const struct vhu_fe *fe);

/* Back-end channel (fe_req.c). */

/** vhu_fe_set_backend_req_fd() - create a socketpair, send one end with
 *  SET_BACKEND_REQ_FD, keep the other (replacing an older channel). */
int vhu_fe_set_backend_req_fd(struct vhu_fe *fe);
/** The fe's end of the back-end channel, or -1. */
int vhu_fe_backend_fd(const struct vhu_fe *fe);

/** A back-end request read from the back-end channel. */
struct vhu_fe_breq {
	struct vhu_msg_hdr hdr;
	uint8_t payload[VHU_MAX_PAYLOAD];
	int fds[VHU_MAX_FDS];
	size_t nfds;
};

/** vhu_fe_backend_recv() - read one back-end request within @timeout_ms;
 *  its fds belong to the caller (vhu_fe_breq_close_fds()). */
int vhu_fe_backend_recv(struct vhu_fe *fe, struct vhu_fe_breq *req,
			int timeout_ms);
/** vhu_fe_backend_reply() - answer @req with the u64 @result if it asked
 *  for a reply (NEED_REPLY); a no-op otherwise. */
int vhu_fe_backend_reply(struct vhu_fe *fe, const struct vhu_fe_breq *req,
			 uint64_t result);
void vhu_fe_breq_close_fds(struct vhu_fe_breq *req);

/* ------------------------------------------------------------------------
 * Inflight I/O tracking (fe_inflight.c), INFLIGHT_SHMFD: the back-end
 * makes a shared region, the front-end keeps it and hands it to every
 * back-end that comes after (QEMU's vhost-user-blk).
 */

/** An inflight region as GET_INFLIGHT_FD described it. */
struct vhu_fe_inflight {
	int fd;               /* -1: none */
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
};

/**
 * vhu_fe_get_inflight_fd() - GET_INFLIGHT_FD for @num_queues rings of
 * @queue_size entries.  The region's fd (the caller's to close; -1 when
 * the back-end answered without one) and where it lies in it.  A reply of
 * the wrong size is -EPROTO.
 */
int vhu_fe_get_inflight_fd(struct vhu_fe *fe, uint16_t num_queues,
			   uint16_t queue_size, int *fd, uint64_t *mmap_size,
			   uint64_t *mmap_offset);
/** vhu_fe_set_inflight_fd() - SET_INFLIGHT_FD: @fd is sent and stays the
 *  caller's; @fd < 0 sends none (hostile tests).  Acked when NEED_REPLY is
 *  on (vhu_fe_set_need_reply()). */
int vhu_fe_set_inflight_fd(struct vhu_fe *fe, int fd, uint64_t mmap_size,
			   uint64_t mmap_offset, uint16_t num_queues,
			   uint16_t queue_size);
/** vhu_fe_inflight() - the region the fe keeps (fd -1: none yet).  The fd
 *  stays the fe's. */
void vhu_fe_inflight(const struct vhu_fe *fe, struct vhu_fe_inflight *out);
/** vhu_fe_set_inflight() - replace the region the fe keeps with a dup of
 *  @r->fd (@r NULL or fd < 0: forget it; the next start gets a new one). */
int vhu_fe_set_inflight(struct vhu_fe *fe, const struct vhu_fe_inflight *r);

/* ------------------------------------------------------------------------
 * Guest memory (fe_mem.c)
 */

/* vhu_fe_mem_add() flags */
#define VHU_FE_MEM_SEAL 0x1u /* F_SEAL_SHRINK | F_SEAL_GROW on the memfd */

/** A region of guest memory.  The fe maps the whole file
 *  (mmap_offset + size bytes); the user address sent to the back-end is
 *  map + mmap_offset.  Tests may read it to build hostile tables. */
struct vhu_fe_region {
	int fd;
	uint8_t *map;         /* the fe's mapping of the whole file */
	size_t map_len;
	uint64_t gpa;
	uint64_t size;
	uint64_t mmap_offset;
	uint64_t uva;         /* (uintptr_t)(map + mmap_offset) */
	uint64_t lo, hi;      /* bump allocator: free gpa range [lo, hi) */
};

/** vhu_fe_mem_add() - add a memfd region of @size bytes at @gpa, placed
 *  @mmap_offset bytes into its file.  Returns the region index.  -EEXIST
 *  if it overlaps another region in gpa. */
int vhu_fe_mem_add(struct vhu_fe *fe, uint64_t gpa, uint64_t size,
		   uint64_t mmap_offset, unsigned flags);

struct vhu_fe_mem_opts {
	size_t sz;
	unsigned nregions;    /* default 1 */
	uint64_t region_size; /* default 4 MiB */
	uint64_t base_gpa;    /* gpa of the first region; default 0 */
	uint64_t hole;        /* gap between consecutive regions; default 0 */
	uint64_t mmap_offset; /* for every region; default 0 */
	unsigned flags;       /* VHU_FE_MEM_* */
};

/** vhu_fe_mem_setup() - add @opts->nregions regions, consecutive in gpa.
 *  -EBUSY if the fe has memory already. */
int vhu_fe_mem_setup(struct vhu_fe *fe, const struct vhu_fe_mem_opts *opts);

unsigned vhu_fe_mem_nregions(const struct vhu_fe *fe);
struct vhu_fe_region *vhu_fe_mem_region(struct vhu_fe *fe, unsigned i);

/** vhu_fe_gpa_to_ptr() - the fe's pointer for [gpa, gpa+len), NULL unless
 *  that whole range lies in one region. */
void *vhu_fe_gpa_to_ptr(struct vhu_fe *fe, uint64_t gpa, uint64_t len);
/** The user address (as sent to the back-end) of @gpa, 0 if unmapped. */
uint64_t vhu_fe_gpa_to_uva(struct vhu_fe *fe, uint64_t gpa);

/** vhu_fe_mem_write()/read() - copy to/from guest memory, across region
 *  boundaries where regions are adjacent.  -EFAULT if not all mapped. */
int vhu_fe_mem_write(struct vhu_fe *fe, uint64_t gpa, const void *src,
		     size_t len);
int vhu_fe_mem_read(struct vhu_fe *fe, uint64_t gpa, void *dst, size_t len);

/** vhu_fe_mem_alloc() - hand out @size bytes aligned to @align (a power of
 *  two, 0 = 8) from one region, zeroed; gpa in *@gpa.  -ENOMEM. */
int vhu_fe_mem_alloc(struct vhu_fe *fe, uint64_t size, uint64_t align,
		     uint64_t *gpa);
/** vhu_fe_mem_alloc_straddle() - @size bytes (>= 2) whose first half ends
 *  one region and whose rest starts the next, adjacent, region. */
int vhu_fe_mem_alloc_straddle(struct vhu_fe *fe, uint64_t size,
			      uint64_t *gpa);

/* ------------------------------------------------------------------------
 * Driver-side rings (fe_ring.c), VIRTIO 1.2 sections 2.7 (split) and 2.8
 * (packed).  A ring works over any memory: the fe puts them in guest
 * memory, unit tests may put them in plain buffers.
 */

/* Descriptor flags (split and packed). */
#define VHU_FE_DESC_F_NEXT 1u
#define VHU_FE_DESC_F_WRITE 2u
#define VHU_FE_DESC_F_INDIRECT 4u
#define VHU_FE_DESC_F_AVAIL (1u << 7)
#define VHU_FE_DESC_F_USED (1u << 15)
/* Split avail/used ring flags. */
#define VHU_FE_AVAIL_F_NO_INTERRUPT 1u
#define VHU_FE_USED_F_NO_NOTIFY 1u
/* Packed event suppression flags. */
#define VHU_FE_EVENT_F_ENABLE 0u
#define VHU_FE_EVENT_F_DISABLE 1u
#define VHU_FE_EVENT_F_DESC 2u

/* Wire layouts, little-endian. */
struct vhu_fe_split_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
_Static_assert(sizeof(struct vhu_fe_split_desc) == 16, "split desc");

struct vhu_fe_packed_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t id;
	uint16_t flags;
};
_Static_assert(sizeof(struct vhu_fe_packed_desc) == 16, "packed desc");

struct vhu_fe_used_elem {
	uint32_t id;
	uint32_t len;
};
_Static_assert(sizeof(struct vhu_fe_used_elem) == 8, "used elem");

struct vhu_fe_event {
	uint16_t off_wrap;
	uint16_t flags;
};
_Static_assert(sizeof(struct vhu_fe_event) == 4, "event suppression");

/* Little-endian accessors for shared ring memory (single, untorn loads and
 * stores: the other side runs concurrently). */
static inline uint16_t vhu_fe_ld16(const void *p)
{
	uint16_t v = __atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED);
	return __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? v : __builtin_bswap16(v);
}
static inline uint64_t vhu_fe_ld64(const void *p)
{
	uint64_t v = __atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED);
	return __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? v : __builtin_bswap64(v);
}
static inline uint32_t vhu_fe_ld32(const void *p)
{
	uint32_t v = __atomic_load_n((const uint32_t *)p, __ATOMIC_RELAXED);
	return __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? v : __builtin_bswap32(v);
}
static inline void vhu_fe_st16(void *p, uint16_t v)
{
	if (__BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__)
		v = __builtin_bswap16(v);
	__atomic_store_n((uint16_t *)p, v, __ATOMIC_RELAXED);
}
static inline void vhu_fe_st32(void *p, uint32_t v)
{
	if (__BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__)
		v = __builtin_bswap32(v);
	__atomic_store_n((uint32_t *)p, v, __ATOMIC_RELAXED);
}
static inline void vhu_fe_st64(void *p, uint64_t v)
{
	if (__BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__)
		v = __builtin_bswap64(v);
	__atomic_store_n((uint64_t *)p, v, __ATOMIC_RELAXED);
}

/** One buffer of a chain: guest address and length. */
struct vhu_fe_buf {
	uint64_t gpa;
	uint32_t len;
};

/** Per-buffer bookkeeping (driver private, never read back from the ring). */
struct vhu_fe_ring_slot {
	uint16_t ndesc;      /* ring descriptors the buffer holds; 0: free */
	uint16_t last;       /* split: last descriptor of the chain */
	uint16_t head_pos;   /* packed: ring slot of the first descriptor */
	uint16_t head_flags; /* packed: its flags, written when published */
	uint32_t in_len;     /* bytes of device-writable buffers */
	void *token;
};

/* vhu_fe_ring_init() flags, from the negotiated features. */
#define VHU_FE_RING_EVENT_IDX 0x1u /* VIRTIO_F_EVENT_IDX */
#define VHU_FE_RING_IN_ORDER 0x2u  /* VIRTIO_F_IN_ORDER */

struct vhu_fe_ring {
	bool packed;
	bool event_idx;
	bool in_order;
	uint16_t num;
	/* Split: desc, avail, used.  Packed: desc, driver event area
	 * (avail_*), device event area (used_*). */
	void *desc, *avail, *used;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	struct vhu_fe_ring_slot *slots; /* indexed by head (split) or id */
	uint16_t num_free;    /* free descriptors */
	uint16_t num_added;   /* descriptors published since the last kick check */
	bool cb_disabled;     /* vhu_fe_ring_disable_cb() in force */
	uint16_t *next_free;  /* free list: descriptors (split), ids (packed) */
	uint16_t free_head;   /* split: first free descriptor; packed: id */
	uint16_t last_used;   /* split: used index to reap next; packed: slot */
	/* split */
	uint16_t avail_idx;   /* shadow of avail->idx, including unpublished */
	uint16_t published;   /* avail->idx as last written */
	/* packed */
	uint16_t next_avail;  /* next descriptor slot to fill */
	bool avail_wrap;
	bool used_wrap;
	uint16_t *pend;       /* ids added but not yet made available, in order */
	uint16_t npend;
	/* in order: buffers in the order they were made available */
	uint16_t *order;
	uint16_t order_first, order_count;
	uint16_t next_desc;   /* split: descriptors are taken in table order */
	int32_t batch_id;     /* id ending the used batch being reaped, or -1 */
	uint32_t batch_len;
	uint64_t used_skipped; /* in order: buffers no used entry of their own named */
};

/* Offsets of the parts of a ring laid out contiguously from a base with
 * 16-byte alignment (Linux's layout for modern split rings: used aligned to
 * 4; packed: event areas right after the descriptors). */
struct vhu_fe_ring_layout {
	size_t desc_off, avail_off, used_off, total;
};
int vhu_fe_ring_layout(bool packed, uint16_t num,
		       struct vhu_fe_ring_layout *lay);

/**
 * vhu_fe_ring_init() - initialise a ring of @num entries (a power of two
 * for split, 1..32768) in @mem (vhu_fe_ring_layout().total bytes, zeroed
 * here, 16-byte aligned), at guest address @gpa.  @flags: VHU_FE_RING_*.
 * Allocates bookkeeping: vhu_fe_ring_fini().
 *
 * With IN_ORDER the driver takes descriptors in table order (split) and
 * accepts a used entry standing for every buffer up to the one it names
 * (2.7.9, 2.8.21.4); the buffers a batch skips are reported with their
 * whole writable length.
 */
int vhu_fe_ring_init(struct vhu_fe_ring *r, bool packed, uint16_t num,
		     void *mem, uint64_t gpa, unsigned flags);
void vhu_fe_ring_fini(struct vhu_fe_ring *r);

/**
 * vhu_fe_ring_add() - put a chain of @n_out device-readable then @n_in
 * device-writable buffers on the ring (not yet visible to the device:
 * vhu_fe_ring_publish()).  @token comes back from vhu_fe_ring_get_used().
 * Returns the head (split) or buffer id (packed), -ENOSPC when the ring is
 * full, -EINVAL for an empty chain.
 */
int vhu_fe_ring_add(struct vhu_fe_ring *r, const struct vhu_fe_buf *bufs,
		    unsigned n_out, unsigned n_in, void *token);

/**
 * vhu_fe_ring_add_indirect() - the same chain through an indirect table of
 * (n_out + n_in) * 16 bytes at @table (fe pointer) / @table_gpa, using one
 * ring descriptor.
 */
int vhu_fe_ring_add_indirect(struct vhu_fe_ring *r,
			     const struct vhu_fe_buf *bufs, unsigned n_out,
			     unsigned n_in, void *table, uint64_t table_gpa,
			     void *token);

/** vhu_fe_ring_publish() - make the added chains visible to the device
 *  (release ordering: descriptors before avail idx / head flags). */
void vhu_fe_ring_publish(struct vhu_fe_ring *r);

/** vhu_fe_ring_needs_kick() - after publishing: does the device want a
 *  notification (NO_NOTIFY flag, avail_event, or the device event area)?
 *  Resets the count of buffers added since the last check. */
bool vhu_fe_ring_needs_kick(struct vhu_fe_ring *r);

/**
 * vhu_fe_ring_get_used() - reap one used buffer: 1 with *@id (head or
 * buffer id), *@len and *@token filled, 0 if none is used, -EPROTO if the
 * device returned an id that is not in flight (the ring is then unusable).
 */
int vhu_fe_ring_get_used(struct vhu_fe_ring *r, uint16_t *id, uint32_t *len,
			 void **token);

/** Suppress / request used-buffer notifications (interrupts).  With
 *  event_idx, enable asks for one at the next used entry. */
void vhu_fe_ring_disable_cb(struct vhu_fe_ring *r);
void vhu_fe_ring_enable_cb(struct vhu_fe_ring *r);

/** For SET_VRING_BASE: where the device should start, i.e. just after the
 *  last buffer the driver reaped.  Split: that index; packed: slot | wrap
 *  << 15 in both halves (lib/protocol/proto.h); a fresh ring gives 0 / 0x80008000. */
uint32_t vhu_fe_ring_base(const struct vhu_fe_ring *r);

/* ------------------------------------------------------------------------
 * Queues (fe_queue.c): a ring in guest memory plus its kick/call eventfds.
 */

/** vhu_fe_queue_setup() - lay out queue @idx in guest memory (allocated
 *  with vhu_fe_mem_alloc; the fe needs memory first) and create its kick
 *  and call eventfds.  Setting up a queue again re-initialises its ring. */
int vhu_fe_queue_setup(struct vhu_fe *fe, uint16_t idx, bool packed,
		       uint16_t num, unsigned ring_flags);
/** vhu_fe_queue_set_addr_log() - SET_VRING_ADDR again with queue @idx's
 *  addresses, VHOST_VRING_F_LOG set (@on) or not and @log_gpa as
 *  log_guest_addr: QEMU's vhost_virtqueue_set_addr() when logging starts
 *  or stops on a running ring. */
int vhu_fe_queue_set_addr_log(struct vhu_fe *fe, uint16_t idx, bool on,
			      uint64_t log_gpa);
/** vhu_fe_queue_start() - SET_VRING_NUM, ADDR (user addresses), BASE,
 *  KICK, CALL for queue @idx. */
int vhu_fe_queue_start(struct vhu_fe *fe, uint16_t idx);
struct vhu_fe_ring *vhu_fe_queue_ring(struct vhu_fe *fe, uint16_t idx);
int vhu_fe_queue_kick_fd(const struct vhu_fe *fe, uint16_t idx);
int vhu_fe_queue_call_fd(const struct vhu_fe *fe, uint16_t idx);
/** vhu_fe_queue_set_inband() - queue @idx gets no kick and no call fd
 *  from vhu_fe_queue_start() (the no-fd bit), vhu_fe_queue_kick() sends
 *  VRING_KICK and vhu_fe_queue_wait_call() waits for the back-end's
 *  VRING_CALL on the back-end channel (INBAND_NOTIFICATIONS; other
 *  back-end requests arriving meanwhile are acked and dropped). */
int vhu_fe_queue_set_inband(struct vhu_fe *fe, uint16_t idx, bool on);
/** Signal queue @idx: its kick eventfd, or VRING_KICK when in-band. */
int vhu_fe_queue_kick(struct vhu_fe *fe, uint16_t idx);
/** Publish and kick when the device wants a notification. */
int vhu_fe_queue_notify(struct vhu_fe *fe, uint16_t idx);
/** Wait up to @timeout_ms (-1: forever) for a used-buffer notification:
 *  the call eventfd (*@count: its counter), or in-band (*@count: 1). */
int vhu_fe_queue_wait_call(struct vhu_fe *fe, uint16_t idx, int timeout_ms,
			   uint64_t *count);
/** Number of queues set up (highest index + 1). */
unsigned vhu_fe_num_queues(const struct vhu_fe *fe);

/* ------------------------------------------------------------------------
 * QEMU's start-up sequence (fe_handshake.c)
 */

/* virtio device status bits */
#define VHU_FE_S_ACKNOWLEDGE 1u
#define VHU_FE_S_DRIVER 2u
#define VHU_FE_S_DRIVER_OK 4u
#define VHU_FE_S_FEATURES_OK 8u

struct vhu_fe_handshake_opts {
	size_t sz;
	uint16_t num_queues;       /* default 1 */
	uint16_t ring_size;        /* default 256 */
	bool packed;               /* packed rings (needs RING_PACKED offered) */
	uint64_t features_off;     /* virtio features not to ack */
	uint64_t protocol_features_off;
	bool mem_slots;            /* ADD_MEM_REG per region, not SET_MEM_TABLE */
	bool need_reply;           /* NEED_REPLY on every request (REPLY_ACK) */
	bool no_enable;            /* skip SET_VRING_ENABLE */
	bool no_status;            /* skip SET_STATUS */
	bool in_order;             /* ack VIRTIO_F_IN_ORDER (QEMU's default: no) */
	/* QEMU's exact order instead of the plain one: after SET_OWNER a
	 * second GET_FEATURES and SET_VRING_CALL for every queue (before
	 * SET_FEATURES), then per queue NUM, BASE, ADDR, KICK, CALL. */
	bool qemu_order;
	/* Ack INBAND_NOTIFICATIONS when offered (with BACKEND_REQ and
	 * REPLY_ACK); QEMU never does, so the default is not to.  The queues
	 * still get kick fds unless vhu_fe_queue_set_inband() says not to. */
	bool inband_notifications;
	/* A back-end restart as QEMU 7.2 does it after a crash: the rings
	 * set up before keep their memory and driver state (keep_rings), and
	 * SET_VRING_BASE says what QEMU knows (crash_base): a split ring's
	 * used index read from the ring, a packed ring's start (0x80008000),
	 * the position of its last clean stop when it never stopped. */
	bool keep_rings;
	bool crash_base;
	/* Inflight tracking as QEMU 7.2's vhost-user-blk does it, when the
	 * back-end offers INFLIGHT_SHMFD (else nothing): after SET_FEATURES,
	 * GET_INFLIGHT_FD for num_queues rings of ring_size when the fe keeps
	 * no region yet (the first connection), then SET_INFLIGHT_FD with the
	 * kept one on every start, before the memory table and the rings. */
	bool inflight;
	/* guest memory created when the fe has none: */
	unsigned mem_regions;      /* default 2 */
	uint64_t mem_region_size;  /* default 4 MiB */
};

/* What the handshake learned. */
struct vhu_fe_handshake_info {
	uint64_t features;           /* offered */
	uint64_t protocol_features;  /* offered */
	uint64_t queue_num;          /* GET_QUEUE_NUM, 0 if not sent */
	uint64_t max_mem_slots;      /* 0 if not sent */
};

/**
 * vhu_fe_handshake() - GET_FEATURES, GET_PROTOCOL_FEATURES,
 * SET_PROTOCOL_FEATURES, GET_QUEUE_NUM (MQ), GET_MAX_MEM_SLOTS
 * (CONFIGURE_MEM_SLOTS), SET_BACKEND_REQ_FD (BACKEND_REQ), SET_OWNER,
 * SET_FEATURES, GET/SET_INFLIGHT_FD (opts->inflight), SET_MEM_TABLE or ADD_MEM_REG per region, then for every
 * queue NUM/ADDR/BASE/KICK/CALL and SET_VRING_ENABLE 1, then SET_STATUS
 * (DRIVER_OK) if STATUS was negotiated.  @opts may be NULL; @info may be
 * NULL.  On a fe that did a handshake before (reconnect), memory is kept
 * and the rings are re-initialised.
 */
int vhu_fe_handshake(struct vhu_fe *fe, const struct vhu_fe_handshake_opts *opts,
		     struct vhu_fe_handshake_info *info);

/**
 * vhu_fe_start() - only the second half of the handshake (QEMU's
 * vhost_dev_start): SET_FEATURES, SET_MEM_TABLE (not ADD_MEM_REG: with
 * mem_slots the back-end keeps its regions), the rings, enable, status.
 * For a connection that negotiated already, e.g. after RESET_DEVICE or
 * RESET_OWNER.  -EINVAL before any GET_FEATURES.
 */
int vhu_fe_start(struct vhu_fe *fe, const struct vhu_fe_handshake_opts *opts);

#endif
