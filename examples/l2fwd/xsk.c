/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The NIC side of vhu-l2fwd: UMEM memory and AF_XDP sockets.
 *
 * Memory: one allocation holds the UMEM of every socket (L2_UMEM_SIZE
 * each).  It comes from hugepages through libhugetlbfs' get_huge_pages()
 * (fewer TLB misses on the copy paths); with --hugepages auto a failure
 * falls back to plain pages, with "on" it is an error.
 *
 * Sockets: one per NIC queue, each with its own UMEM, created with libxdp's
 * xsk_umem__create()/xsk_socket__create(), which load and attach libxdp's
 * default XDP program (it redirects each queue's frames to the socket bound
 * there and passes everything else to the kernel).  Copy mode; in native
 * mode zero-copy is tried first and copy mode is the fallback (veth and
 * most drivers without XSK support only copy).  Closing the last socket
 * detaches the program.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <hugetlbfs.h>
#include <linux/if_link.h>
#include <xdp/libxdp.h>

#include "l2fwd.h"

/* Free hugepages of the default size, from /proc/meminfo (0 if unknown). */
static uint64_t huge_free(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	unsigned long long n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "HugePages_Free: %llu", &n) == 1)
			break;
	fclose(f);
	return n;
}

/**
 * l2_mem_alloc() - @len bytes (a multiple of 2 MiB) of page-aligned,
 * zeroed memory.  Prints which kind it got.  0 or -errno.
 */
int l2_mem_alloc(struct l2_mem *m, uint64_t len, enum l2_huge huge)
{
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };

	/* Kernels before 5.11 charge UMEM to RLIMIT_MEMLOCK. */
	(void)setrlimit(RLIMIT_MEMLOCK, &unlimited);
	m->len = len;
	m->huge = false;
	if (huge != L2_HUGE_OFF) {
		long hps = gethugepagesize();

		/* Asking libhugetlbfs without free pages only makes it warn. */
		m->base = hps > 0 && huge_free() * (uint64_t)hps >= len ?
			get_huge_pages(len, GHP_DEFAULT) : NULL;
		if (m->base) {
			memset(m->base, 0, len);
			m->huge = true;
			printf("vhu-l2fwd: UMEM %llu MiB on %ld KiB hugepages\n",
			       (unsigned long long)(len >> 20), hps >> 10);
			return 0;
		}
		if (huge == L2_HUGE_ON) {
			fprintf(stderr, "vhu-l2fwd: no hugepages for %llu MiB of UMEM "
				"(needs a hugetlbfs mount and vm.nr_hugepages)\n",
				(unsigned long long)(len >> 20));
			return -ENOMEM;
		}
	}
	m->base = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (m->base == MAP_FAILED) {
		m->base = NULL;
		return -errno;
	}
	printf("vhu-l2fwd: UMEM %llu MiB on plain pages%s\n",
	       (unsigned long long)(len >> 20),
	       huge == L2_HUGE_AUTO ? " (no hugepages available)" : "");
	return 0;
}

void l2_mem_free(struct l2_mem *m)
{
	if (!m->base)
		return;
	if (m->huge)
		free_huge_pages(m->base);
	else
		munmap(m->base, m->len);
	m->base = NULL;
}

static int libxdp_print(enum libxdp_print_level level, const char *fmt,
			va_list ap)
{
	if (level == LIBXDP_DEBUG)
		return 0;
	fprintf(stderr, "vhu-l2fwd: ");
	return vfprintf(stderr, fmt, ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt,
			va_list ap)
{
	if (level != LIBBPF_WARN)
		return 0;
	fprintf(stderr, "vhu-l2fwd: ");
	return vfprintf(stderr, fmt, ap);
}

/** l2_xsk_libxdp_quiet() - route libxdp's and libbpf's messages to stderr,
 *  warnings and errors only. */
void l2_xsk_libxdp_quiet(void)
{
	libxdp_set_print(libxdp_print);
	libbpf_set_print(libbpf_print);
}

static int create(struct l2_xsk *x, const char *iface, uint32_t qid,
		  uint32_t xdp_flags, uint16_t bind_flags)
{
	const struct xsk_socket_config cfg = {
		.rx_size = L2_RX_FRAMES,
		.tx_size = L2_TX_FRAMES,
		.xdp_flags = xdp_flags,
		.bind_flags = bind_flags | XDP_USE_NEED_WAKEUP,
	};

	return xsk_socket__create(&x->xsk, iface, qid, x->umem, &x->rx, &x->tx,
				  &cfg);
}

/**
 * l2_xsk_open() - a UMEM on @area (L2_UMEM_SIZE bytes) and a socket on
 * queue @queue_id of @iface; the RX frames go to the fill ring.  On
 * failure a human explanation is left in @err and -errno returned.
 */
int l2_xsk_open(struct l2_xsk *x, const char *iface, uint32_t queue_id,
		uint8_t *area, bool native, char *err, size_t errlen)
{
	const struct xsk_umem_config ucfg = {
		.fill_size = 2 * L2_RX_FRAMES, /* holds every RX frame */
		.comp_size = L2_TX_FRAMES,
		.frame_size = L2_FRAME_SIZE,
		.frame_headroom = 0,
	};
	uint32_t mode = native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
	struct xdp_options xo = { 0 };
	socklen_t xolen = sizeof(xo);
	uint32_t idx = 0;
	int rc;

	memset(x, 0, sizeof(*x));
	x->area = area;
	x->queue_id = queue_id;
	x->fd = -1;
	rc = xsk_umem__create(&x->umem, area, L2_UMEM_SIZE, &x->fill, &x->comp,
			      &ucfg);
	if (rc) {
		snprintf(err, errlen, "cannot create the UMEM: %s%s", strerror(-rc),
			 rc == -EPERM ? " (needs CAP_NET_RAW, CAP_BPF/CAP_SYS_ADMIN: run as root)" : "");
		x->umem = NULL;
		return rc;
	}
	rc = -EOPNOTSUPP;
	if (native)
		rc = create(x, iface, queue_id, mode, XDP_ZEROCOPY);
	if (rc)
		rc = create(x, iface, queue_id, mode, XDP_COPY);
	if (rc) {
		const char *why = "";

		if (rc == -EPERM || rc == -EACCES)
			why = " (needs CAP_NET_ADMIN, CAP_BPF/CAP_SYS_ADMIN: run as root)";
		else if (rc == -EINVAL && queue_id)
			why = " (does the interface have that many queues?)";
		else if (rc == -EOPNOTSUPP || rc == -EINVAL)
			why = native ? " (the driver may lack native XDP: try --xdp-mode skb)" : "";
		else if (rc == -EBUSY || rc == -EEXIST)
			why = " (another XDP program or socket holds the queue)";
		snprintf(err, errlen,
			 "cannot attach the XDP program and bind an AF_XDP socket to %s queue %u in %s mode: %s%s",
			 iface, queue_id, native ? "native" : "skb", strerror(-rc), why);
		x->xsk = NULL;
		xsk_umem__delete(x->umem);
		x->umem = NULL;
		return rc;
	}
	x->fd = xsk_socket__fd(x->xsk);
	x->zerocopy = !getsockopt(x->fd, SOL_XDP, XDP_OPTIONS, &xo, &xolen) &&
		      (xo.flags & XDP_OPTIONS_ZEROCOPY);
	/* Every RX frame goes to the kernel now; TX frames wait in free_tx. */
	if (xsk_ring_prod__reserve(&x->fill, L2_RX_FRAMES, &idx) != L2_RX_FRAMES) {
		snprintf(err, errlen, "fill ring too small");
		l2_xsk_close(x);
		return -ENOSPC;
	}
	for (uint32_t i = 0; i < L2_RX_FRAMES; i++)
		*xsk_ring_prod__fill_addr(&x->fill, idx + i) = (uint64_t)i * L2_FRAME_SIZE;
	xsk_ring_prod__submit(&x->fill, L2_RX_FRAMES);
	for (uint32_t i = 0; i < L2_TX_FRAMES; i++)
		x->free_tx[i] = (uint64_t)(L2_RX_FRAMES + i) * L2_FRAME_SIZE;
	x->nfree = L2_TX_FRAMES;
	return 0;
}

/** l2_xsk_close() - close the socket (libxdp detaches its program with the
 *  last one) and delete the UMEM.  Safe on a closed or failed socket. */
void l2_xsk_close(struct l2_xsk *x)
{
	if (x->xsk)
		xsk_socket__delete(x->xsk);
	x->xsk = NULL;
	if (x->umem)
		xsk_umem__delete(x->umem);
	x->umem = NULL;
	x->fd = -1;
}
