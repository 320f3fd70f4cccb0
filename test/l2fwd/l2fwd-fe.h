/* SPDX-License-Identifier: BSD-3-Clause */
/* l2fwd-fe: shared declarations of the driver (l2fwd-fe.c: the guest and
 * wire ends) and its cases (cases.c). */
#ifndef L2FWD_FE_H
#define L2FWD_FE_H

#include <stdbool.h>
#include <stdint.h>

#include "fe.h"
#include "../util/nettest.h" /* struct virtio_net_hdr_v1 */

#define MAX_PAIRS 8
#define RING 256
#define TXBUF 8192u /* room for frames above vhu-l2fwd's limits */
#define RXBUF 2048u

struct drv {
	struct vhu_fe *fe;
	int pairs;
	bool packed;
	bool listen;
	int pk, ifindex;
	uint8_t wire_mac[6], guest_mac[6];
	uint64_t txbuf[MAX_PAIRS][RING], rxbuf[MAX_PAIRS][RING];
	uint16_t txfree[MAX_PAIRS][RING];
	int ntxfree[MAX_PAIRS];
	bool rx_posted[MAX_PAIRS];
	/* (Re)connect and handshake; @again after a disconnect. */
	int (*up)(struct drv *d, bool again);
};

void wire_send(struct drv *d, const uint8_t *f, uint32_t len);
int wire_recv(struct drv *d, uint8_t *buf, uint32_t cap, int ms);
void guest_post_rx(struct drv *d);
int guest_send(struct drv *d, int pair, const struct virtio_net_hdr_v1 *h,
	       const uint8_t *f, uint32_t len);
int guest_recv(struct drv *d, uint8_t *buf, uint32_t cap, int *pair, int ms);
void case_check(bool ok, const char *what, long got, long want);
/* bench.c */
void bench(struct drv *d);
/* cases.c: run case @name; -1 if unknown. */
int run_case(struct drv *d, const char *name);

#endif
