/* SPDX-License-Identifier: BSD-3-Clause */
/* A device on an example's libev loop: the SIGBUS guard, the vhu_ev glue
 * and the device, made and freed together. */
#ifndef VHU_EXAMPLE_DEVICE_H
#define VHU_EXAMPLE_DEVICE_H

#include <stdbool.h>

struct ev_loop;
struct vhu_dev_opts;

struct example_dev {
	struct vhu_guard *guard;
	struct vhu_ev *glue;
	struct vhu_dev *dev;
};

/* Fill @d's guard and loop and create the device.  On failure say why on
 * stderr, after "@prog: ", leave nothing behind and return -1. */
int example_dev_new(struct example_dev *x, struct ev_loop *loop,
		    struct vhu_dev_opts *d, const char *prog);
/* Listen on @path, or connect to it with @client; -1 after saying why. */
int example_dev_attach(struct example_dev *x, const char *path, bool client,
		       const char *prog);
/* The device, then the glue, then the guard (safe on a zeroed @x). */
void example_dev_free(struct example_dev *x);

#endif
