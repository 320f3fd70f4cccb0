/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Optional libev glue (library libvhu_ev): serves the control fds and timers
 * of any number of devices from one libev loop.
 *
 *	struct vhu_ev *glue = vhu_ev_new(EV_DEFAULT);
 *	opts.loop = vhu_ev_loop(glue);
 *	dev = vhu_dev_new(&opts);
 *	...
 *	ev_run(EV_DEFAULT, 0);
 *	vhu_dev_free(dev);
 *	vhu_ev_free(glue);
 *
 * Threading rule: the thread that runs the loop is the devices' control
 * thread.
 */
#ifndef VHU_EV_H
#define VHU_EV_H

#include <vhu/dev.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ev_loop;
struct vhu_ev;

/** vhu_ev_new() - glue for @loop.  NULL with errno set on failure. */
VHU_API struct vhu_ev *vhu_ev_new(struct ev_loop *loop);

/** vhu_ev_loop() - the vhu_loop to put in vhu_dev_opts.loop. */
VHU_API const struct vhu_loop *vhu_ev_loop(struct vhu_ev *glue);

/** vhu_ev_free() - free the glue; free its devices first. */
VHU_API void vhu_ev_free(struct vhu_ev *glue);

#ifdef __cplusplus
}
#endif

#endif
