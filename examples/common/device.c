/* SPDX-License-Identifier: BSD-3-Clause */
#include "device.h"

#include <stdio.h>
#include <string.h>

#include <vhu/ev.h>
#include <vhu/vhu.h>

#include "sigbus.h"

int example_dev_new(struct example_dev *x, struct ev_loop *loop,
		    struct vhu_dev_opts *d, const char *prog)
{
	memset(x, 0, sizeof(*x));
	x->guard = d->guard = example_guard_install();
	if (!x->guard) {
		fprintf(stderr, "%s: SIGBUS guard: %m\n", prog);
		return -1;
	}
	x->glue = vhu_ev_new(loop);
	if (!x->glue) {
		fprintf(stderr, "%s: vhu_ev_new: %m\n", prog);
		goto fail;
	}
	d->loop = vhu_ev_loop(x->glue);
	x->dev = vhu_dev_new(d);
	if (!x->dev) {
		fprintf(stderr, "%s: vhu_dev_new: %m\n", prog);
		goto fail;
	}
	return 0;
fail:
	example_dev_free(x);
	return -1;
}

int example_dev_attach(struct example_dev *x, const char *path, bool client,
		       const char *prog)
{
	int rc = client ? vhu_dev_connect(x->dev, path) : vhu_dev_listen(x->dev, path);

	if (rc) {
		fprintf(stderr, "%s: %s %s: %s\n", prog,
			client ? "cannot connect to" : "cannot listen on", path,
			strerror(-rc));
		return -1;
	}
	return 0;
}

void example_dev_free(struct example_dev *x)
{
	vhu_dev_free(x->dev);
	if (x->glue)
		vhu_ev_free(x->glue);
	if (x->guard)
		example_guard_remove(x->guard);
	memset(x, 0, sizeof(*x));
}
