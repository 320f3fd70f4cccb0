/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The request table: for each front-end request its name, payload size
 * rule, fd rule, the state and protocol feature it needs, how it is
 * answered, and its handler.  vhu_msg_dispatch() checks all of that before
 * a handler runs, so handlers only see well-formed messages.
 */
#ifndef VHU_MSG_H
#define VHU_MSG_H

#include <stdint.h>

#include "internal.h"

/* How many fds a request carries. */
enum vhu_fd_rule {
	VHU_FDS_NONE,     /* none */
	VHU_FDS_ONE,      /* exactly one */
	VHU_FDS_NOFD_BIT, /* one, unless the u64 payload has VHU_VRING_NOFD */
	VHU_FDS_REGIONS,  /* one per memory region in the payload */
	VHU_FDS_ZERO_OR_ONE,
};

/* What the front-end waits for. */
enum vhu_reply_kind {
	VHU_REPLY_ACK,    /* nothing, or a u64 status when NEED_REPLY is set */
	VHU_REPLY_DATA,   /* a payload; a refusal closes the connection */
	VHU_REPLY_STATUS, /* always a u64 status */
	VHU_REPLY_CONFIG, /* a config payload; empty on refusal */
};

/* State a request needs. */
enum {
	VHU_NEED_OWNER = 1u << 0,    /* SET_OWNER seen */
	VHU_NEED_FEATURES = 1u << 1, /* SET_FEATURES seen */
	VHU_NEED_PROTOCOL = 1u << 2, /* VHOST_USER_F_PROTOCOL_FEATURES negotiated */
	VHU_HAS_VRING = 1u << 3,     /* payload names a vring: check the index */
};

/* A reply under construction. */
struct vhu_reply {
	uint32_t size;
	union {
		uint64_t u64;
		struct vhu_vring_state state;
		uint8_t bytes[VHU_MAX_PAYLOAD];
	} u;
	int fd; /* sent with the reply when >= 0, then closed */
};

typedef int (*vhu_handler_fn)(struct vhu_dev *dev, struct vhu_rx *rx,
			      struct vhu_reply *reply);

struct vhu_req_info {
	const char *name;
	uint16_t min_size;
	uint16_t max_size;
	uint8_t fds;   /* enum vhu_fd_rule */
	uint8_t reply; /* enum vhu_reply_kind */
	uint8_t needs; /* VHU_NEED_* */
	int8_t pf;     /* protocol feature required, or -1 */
	vhu_handler_fn handler;
};

/* NULL for codes outside the spec. */
const struct vhu_req_info *vhu_req_lookup(uint32_t request);

/* The vring index a request names (only for VHU_HAS_VRING requests). */
uint32_t vhu_msg_vring_index(const struct vhu_msg *msg);

/* Handlers (dev_handlers.c). */
int vhu_h_get_features(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_set_features(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_set_owner(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_reset_owner(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_set_mem_table(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_set_log_base(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_set_log_fd(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_set_vring_num(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_set_vring_addr(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_set_vring_base(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_get_vring_base(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_set_vring_kick(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_set_vring_call(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_set_vring_err(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_get_protocol_features(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_set_protocol_features(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_get_queue_num(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_set_vring_enable(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_send_rarp(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_net_set_mtu(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_set_backend_req_fd(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_get_config(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_set_config(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_reset_device(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_vring_kick(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_get_max_mem_slots(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_add_mem_reg(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_rem_mem_reg(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_get_inflight_fd(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_set_inflight_fd(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_set_status(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);
int vhu_h_get_status(struct vhu_dev *, struct vhu_rx *, struct vhu_reply *);

#endif
