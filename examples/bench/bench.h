/* SPDX-License-Identifier: BSD-3-Clause */
/* vhu-bench: a vhost-user net back-end that is a traffic source and sink. */
#ifndef VHU_BENCH_H
#define VHU_BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <vhu/vhu.h>

#define BENCH_MAX_PAIRS 8
#define BENCH_MAX_BURST 256
#define BENCH_MAX_FRAME 9018

enum bench_mode { MODE_RXONLY, MODE_TXONLY, MODE_LOOPBACK };

struct bench {
	enum bench_mode mode;
	uint32_t pkt_len;
	unsigned queues;   /* queue pairs */
	unsigned burst;
	struct vhu_dev *dev;
	atomic_bool ready; /* the device is ready: the data plane runs */
	atomic_bool quit;
	uint8_t frame[BENCH_MAX_FRAME]; /* txonly's frame */
};

/* dataplane.c: the data-plane thread. */
void *bench_dataplane(void *arg);

/* frames.c: a UDP/IPv4 frame of @len bytes (>= 60) into @buf. */
void bench_build_frame(uint8_t *buf, uint32_t len);

#endif
