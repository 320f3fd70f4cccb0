/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhu-l2fwd's command line (see main.c and docs/l2fwd.md).
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "l2fwd.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vhu-l2fwd --socket PATH [--client] --iface IFNAME [--queue-id N[,N...]]\n"
		"                 [--xdp-mode skb|native] [--hugepages auto|on|off]\n"
		"                 [--stats SECONDS] [--help]\n"
		"Bridges a vhost-user net port (PATH; served, or connected to with --client,\n"
		"reconnecting) and the NIC IFNAME through AF_XDP sockets on the given NIC\n"
		"queues (default 0).  Guest queue pairs (up to %d) are spread over them.\n"
		"  --xdp-mode   skb (generic, default) or native (driver; zero-copy if supported)\n"
		"  --hugepages  UMEM on hugepages: auto (default, falls back), on, off\n"
		"  --stats N    print counters every N seconds (default 0: only at exit)\n",
		L2_MAX_PAIRS);
}

static int parse_qids(struct l2_opts *o, const char *s)
{
	char *end;

	o->nqid = 0;
	do {
		unsigned long v = strtoul(s, &end, 10);

		if (end == s || v > 4095 || o->nqid == L2_MAX_XSK)
			return -1;
		for (unsigned i = 0; i < o->nqid; i++)
			if (o->qids[i] == v)
				return -1;
		o->qids[o->nqid++] = (uint32_t)v;
		s = end + 1;
	} while (*end == ',');
	return *end ? -1 : 0;
}

/**
 * l2_parse_opts() - fill @o from the command line.  0: run; 1: --help was
 * printed (exit 0); 2: usage error, explained on stderr (exit 2).
 */
int l2_parse_opts(int argc, char **argv, struct l2_opts *o)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "client", no_argument, NULL, 'c' },
		{ "iface", required_argument, NULL, 'i' },
		{ "queue-id", required_argument, NULL, 'q' },
		{ "xdp-mode", required_argument, NULL, 'x' },
		{ "hugepages", required_argument, NULL, 'H' },
		{ "stats", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->nqid = 1;
	while ((c = getopt_long(argc, argv, "s:ci:q:x:H:S:h", lo, NULL)) != -1) {
		switch (c) {
		case 's': o->socket = optarg; break;
		case 'c': o->client = true; break;
		case 'i': o->iface = optarg; break;
		case 'q':
			if (parse_qids(o, optarg)) {
				fprintf(stderr, "vhu-l2fwd: bad --queue-id '%s' (distinct numbers, at most %d)\n",
					optarg, L2_MAX_XSK);
				return 2;
			}
			break;
		case 'x':
			if (strcmp(optarg, "skb") && strcmp(optarg, "native")) {
				fprintf(stderr, "vhu-l2fwd: --xdp-mode is skb or native\n");
				return 2;
			}
			o->native = !strcmp(optarg, "native");
			break;
		case 'H':
			if (!strcmp(optarg, "auto"))
				o->huge = L2_HUGE_AUTO;
			else if (!strcmp(optarg, "on"))
				o->huge = L2_HUGE_ON;
			else if (!strcmp(optarg, "off"))
				o->huge = L2_HUGE_OFF;
			else {
				fprintf(stderr, "vhu-l2fwd: --hugepages is auto, on or off\n");
				return 2;
			}
			break;
		case 'S': o->stats_s = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'h': usage(stdout); return 1;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !o->socket || !o->iface) {
		usage(stderr);
		return 2;
	}
	return 0;
}
