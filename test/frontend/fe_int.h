/* SPDX-License-Identifier: BSD-3-Clause */
/* Internals shared by the test frontend's files. */
#ifndef VHU_FE_INT_H
#define VHU_FE_INT_H

#include <stdio.h>
#include <sys/un.h>

#include "fe.h"

struct vhu_fe_queue {
	bool set_up;
	struct vhu_fe_ring ring;
	uint64_t ring_gpa;    /* where the ring memory was allocated */
	size_t ring_bytes;
	int kick_fd;
	int call_fd;
	bool inband;          /* no kick fd: VRING_KICK messages instead */
};

struct vhu_fe {
	int sock;             /* connection, -1 when none */
	int listen_fd;        /* server fe, else -1 */
	int backend_fd;       /* fe end of the back-end channel, or -1 */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int timeout_ms;
	bool need_reply;
	uint64_t last_ack;

	uint64_t offered_features;
	uint64_t acked_features;
	uint64_t offered_pf;
	uint64_t acked_pf;

	struct vhu_fe_region regions[VHU_FE_MAX_REGIONS];
	unsigned nregions;

	struct vhu_fe_queue q[VHU_FE_MAX_QUEUES];
	unsigned nqueues;
	bool crash_base; /* vhu_fe_handshake_opts.crash_base of the last start */

	/* fe_inflight.c: the inflight region, kept across connections as
	 * QEMU keeps it across back-end restarts (fd -1: none). */
	struct vhu_fe_inflight ifl;

	FILE *record; /* fe_record.c: VHU_FE_RECORD */
};

/* fe_record.c */
void fe_record(struct vhu_fe *fe, uint32_t request, uint32_t flags,
	       const void *payload, size_t len, const int *fds, size_t nfds);
void fe_record_close(struct vhu_fe *fe);

/* fe_sock.c */
int fe_sock_connect(const char *path, int timeout_ms);
/* Read exactly @len bytes, collecting fds into @fds/@nfds (closing extras),
 * waiting up to the deadline (ms, CLOCK_MONOTONIC; -1 forever). */
int fe_read_full(int fd, void *buf, size_t len, int *fds, size_t *nfds,
		 size_t max_fds, int64_t deadline);
/* Write all of @buf, @fds with the first byte; -ETIMEDOUT when the peer
 * does not take it within @timeout_ms. */
int fe_write_msg(int fd, const void *buf, size_t len, const int *fds,
		 size_t nfds, int timeout_ms);
int64_t fe_deadline(int timeout_ms);
void fe_close_fds(int *fds, size_t n);

/* fe_req.c: the flags typed helpers use for a request without a reply */
uint32_t fe_req_flags(const struct vhu_fe *fe, uint32_t request);

/* fe_mem.c */
void fe_mem_free(struct vhu_fe *fe);

/* fe_inflight.c */
void fe_inflight_free(struct vhu_fe *fe);
int fe_inflight_start(struct vhu_fe *fe, uint16_t num_queues,
		      uint16_t queue_size);

/* fe_queue.c */
void fe_queues_free(struct vhu_fe *fe);
int fe_queue_start(struct vhu_fe *fe, uint16_t idx, bool qemu_order);

#endif
