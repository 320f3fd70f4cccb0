/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A program built against the *installed* vhu through pkg-config, the way a
 * switch embeds it: it serves a device on a socket and asks it for its
 * features over a real connection, using only the public headers.
 */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <vhu/vhu.h>

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/tmp/vhu-consumer.sock";
	struct vhu_dev_opts o = { .sz = sizeof(o), .name = "consumer", .num_queues = 2 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint32_t req[3] = { 1 /* GET_FEATURES */, 1 /* version */, 0 };
	struct { uint32_t req, flags, size; uint64_t v; } __attribute__((packed)) rep;
	struct vhu_dev *dev;
	int fd;

	if (strcmp(vhu_version(), "0.1.0") != 0) {
		fprintf(stderr, "unexpected version %s\n", vhu_version());
		return 1;
	}
	dev = vhu_dev_new(&o);
	if (!dev || vhu_dev_listen(dev, path) != 0)
		return 1;
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return 1;
	vhu_dev_poll(dev, 1000); /* accept */
	if (write(fd, req, sizeof(req)) != sizeof(req))
		return 1;
	vhu_dev_poll(dev, 1000); /* handle GET_FEATURES */
	if (read(fd, &rep, sizeof(rep)) != sizeof(rep) || rep.req != 1 ||
	    rep.flags != 5 || rep.size != 8 || rep.v != vhu_dev_offered_features(dev) ||
	    !(rep.v & (1ull << 32))) {
		fprintf(stderr, "bad reply\n");
		return 1;
	}
	printf("consumer: vhu %s offered features 0x%llx\n", vhu_version(),
	       (unsigned long long)rep.v);
	close(fd);
	vhu_dev_free(dev);
	return access(path, F_OK) == 0; /* the socket is removed */
}
