/* SPDX-License-Identifier: BSD-3-Clause */
/* vhu-blk's command line (see main.c). */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blk.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vhu-blk --socket PATH --file IMAGE [--queues N] [--read-only]\n"
		"               [--client] [--queue-size N] [--serial ID] [--no-packed]\n"
		"               [--no-uring] [--stats SECONDS] [--drain-ms MS] [--verbose]\n"
		"               [--help]\n"
		"Serves IMAGE (a raw image file or a block device) as a vhost-user-blk\n"
		"device on the Unix socket PATH (for QEMU: -device vhost-user-blk-pci).\n"
		"  --socket PATH     listen on PATH; with --client, connect to a front-end\n"
		"                    listening there (QEMU server=on), reconnecting\n"
		"  --file IMAGE      the disk: opened O_DIRECT unless the file system\n"
		"                    refuses it (then buffered, with a warning)\n"
		"  --queues N        request queues, 1..%d (default 1), one thread each\n"
		"  --queue-size N    largest ring accepted and requests in flight per\n"
		"                    queue, 1..32768 (default 1024)\n"
		"  --read-only       offer VIRTIO_BLK_F_RO; writes fail with IOERR\n"
		"  --serial ID       what GET_ID answers, up to 20 bytes (default: the\n"
		"                    image's file name, cut to 20)\n"
		"  --no-packed       withhold VIRTIO_F_RING_PACKED (split rings only)\n"
		"  --no-uring        synchronous I/O instead of io_uring\n"
		"  --stats N         a counters line every N seconds (also on SIGUSR1\n"
		"                    and at exit)\n"
		"  --drain-ms MS     when the front-end stops a ring (VM stop, migration),\n"
		"                    wait up to MS ms, 0..60000 (default 5000), for the\n"
		"                    requests in flight to be answered first; 0: the\n"
		"                    ring stops at once, without them\n"
		"  --verbose         log every refused request and vhu's info lines\n"
		"  --hold N:MS       for crash tests: hold every Nth completion MS ms\n"
		"                    before answering it (out-of-order completions)\n",
		BLK_MAX_QUEUES);
}

static bool parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *v)
{
	char *end;
	unsigned long x = strtoul(s, &end, 10);

	if (end == s || *end || x < lo || x > hi)
		return false;
	*v = (unsigned)x;
	return true;
}

/* --hold N:MS */
static bool parse_hold(const char *s, struct blk_opts *o)
{
	char n[16];
	const char *colon = strchr(s, ':');

	if (!colon || (size_t)(colon - s) >= sizeof(n))
		return false;
	memcpy(n, s, (size_t)(colon - s));
	n[colon - s] = 0;
	return parse_uint(n, 1, 1000000, &o->hold_every) &&
	       parse_uint(colon + 1, 1, 60000, &o->hold_ms);
}

int blk_parse_opts(int argc, char **argv, struct blk_opts *o)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "file", required_argument, NULL, 'f' },
		{ "queues", required_argument, NULL, 'q' },
		{ "queue-size", required_argument, NULL, 'Q' },
		{ "serial", required_argument, NULL, 'S' },
		{ "stats", required_argument, NULL, 't' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "client", no_argument, NULL, 'c' },
		{ "no-packed", no_argument, NULL, 'P' },
		{ "no-uring", no_argument, NULL, 'U' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "hold", required_argument, NULL, 'H' },
		{ "drain-ms", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->queues = 1;
	o->queue_size = 1024;
	o->drain_ms = 5000;
	while ((c = getopt_long(argc, argv, "s:f:q:Q:S:t:rcPUvH:D:h", lo, NULL)) != -1) {
		switch (c) {
		case 's': o->socket = optarg; break;
		case 'f': o->file = optarg; break;
		case 'q':
			if (!parse_uint(optarg, 1, BLK_MAX_QUEUES, &o->queues)) {
				fprintf(stderr, "vhu-blk: --queues takes 1..%d\n", BLK_MAX_QUEUES);
				return 2;
			}
			break;
		case 'Q':
			if (!parse_uint(optarg, 1, 32768, &o->queue_size)) {
				fprintf(stderr, "vhu-blk: --queue-size takes 1..32768\n");
				return 2;
			}
			break;
		case 'S':
			if (strlen(optarg) > VIRTIO_BLK_ID_BYTES) {
				fprintf(stderr, "vhu-blk: --serial is at most %u bytes\n",
					VIRTIO_BLK_ID_BYTES);
				return 2;
			}
			o->serial = optarg;
			break;
		case 't':
			if (!parse_uint(optarg, 0, 86400, &o->stats_s)) {
				fprintf(stderr, "vhu-blk: --stats takes 0..86400 seconds\n");
				return 2;
			}
			break;
		case 'r': o->read_only = true; break;
		case 'c': o->client = true; break;
		case 'P': o->no_packed = true; break;
		case 'U': o->no_uring = true; break;
		case 'v': o->verbose = true; break;
		case 'H':
			if (!parse_hold(optarg, o)) {
				fprintf(stderr, "vhu-blk: --hold takes N:MS (every Nth "
					"completion, 1..1000000, held 1..60000 ms)\n");
				return 2;
			}
			break;
		case 'D':
			if (!parse_uint(optarg, 0, 60000, &o->drain_ms)) {
				fprintf(stderr, "vhu-blk: --drain-ms takes 0..60000\n");
				return 2;
			}
			break;
		case 'h': usage(stdout); return 1;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !o->socket || !o->file) {
		if (optind == argc)
			fprintf(stderr, "vhu-blk: --socket and --file are required\n");
		usage(stderr);
		return 2;
	}
	return 0;
}
