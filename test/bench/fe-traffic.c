/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fe-traffic - the in-tree test front-end (vhu_fe) as a traffic source and
 * sink, for benchmarks of a vhost-user net back-end that need what DPDK's
 * virtio_user cannot do: dirty-page logging (bench/dirty-log.sh).
 *
 * It connects to a back-end's socket and does QEMU's handshake
 * (vhu_fe_handshake: two 256-entry queues, RX 0 and TX 1, and the features
 * virtio_user acks: VERSION_1, IN_ORDER, INDIRECT_DESC, MRG_RXBUF unless
 * --mrg off, RING_PACKED with --packed).  With --log or --log-base it sends
 * SET_LOG_BASE: a sealed memfd, one bit per 4 KiB page of its guest memory
 * (QEMU's size); the reply's payload, a u64 status from vhu and none from
 * librte_vhost, is taken as QEMU takes it.  With --log, or on SIGUSR2, it
 * turns logging on as QEMU does when a migration starts: SET_FEATURES with
 * LOG_ALL, then SET_VRING_ADDR with VHOST_VRING_F_LOG and log_guest_addr =
 * the used ring's (device area's) guest address for each queue, acked
 * (REPLY_ACK).  SIGUSR2 again turns it off (the same without LOG_ALL and
 * the flag), as a cancelled migration does.
 *
 * Then it plays the guest driver on one core, as fast as it can, in bursts
 * of 32:
 *   guest-rx  keeps 2 KiB device-writable buffers posted on queue 0, reaps
 *             what the back-end fills, checks the virtio-net header (no
 *             flags, no GSO, num_buffers with MRG_RXBUF), counts frames and
 *             their bytes (without the header).  A buffer starts on a
 *             2 KiB boundary, so the frame lands 12 bytes past one, as in a
 *             Linux guest's mergeable buffers (--offset N moves them);
 *   guest-tx  sends --size-byte frames (a 12-byte header, no offloads, and
 *             an Ethernet/IPv4/UDP frame, one descriptor each) on queue 1
 *             and counts the buffers the back-end returns.
 * It asks for no interrupts and kicks only when the back-end's ring says so
 * (both back-ends poll with kicks off; "kicks" and "calls" count them).
 *
 * Reports, one flushed line each:
 *   fe-traffic: ready features 0x.. log on|off|none
 *   fe-traffic: log on|off SEQ                  (after a SIGUSR2 toggle)
 *   fe-traffic: report SEQ ns T frames F bytes B errors E kicks K calls C
 *               log on|off|none log_bits L log_missing M
 * a report on SIGUSR1 (and on each --seconds timer): counters since the
 * start; log_bits, the bits set since the previous report, read and cleared
 * word by word with an atomic exchange as QEMU's log sync does;
 * log_missing, pages the back-end must have written since then (buffers it
 * filled, the used ring or packed descriptors when the ring went round)
 * whose bit is not set.  With --seconds N it reports after --warmup and N
 * seconds later, prints the rate and exits; with --seconds 0 it runs until
 * SIGTERM/SIGINT.  Exit status 1 on a protocol or ring error, a header
 * that failed the check, or a back-end that closed the connection.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "fe.h"

#define HDR_LEN 12u /* struct virtio_net_hdr_v1 */
#define LOG_PAGE_SHIFT 12
#define VIRTIO_NET_F_MRG_RXBUF 15

static volatile sig_atomic_t want_report, want_toggle, want_stop;

static void on_signal(int sig)
{
	if (sig == SIGUSR1 || sig == SIGALRM)
		want_report = 1;
	else if (sig == SIGUSR2)
		want_toggle = 1;
	else
		want_stop = 1;
}

struct opts {
	const char *socket;
	bool rx, packed, mrg;
	int log; /* 0 none, 1 base only (off), 2 on */
	unsigned size, ring, burst, offset;
	double seconds, warmup;
};

struct traffic {
	struct opts o;
	struct vhu_fe *fe;
	struct vhu_fe_ring *r;
	uint16_t q;
	uint64_t features;
	uint8_t *pool; /* the fe's pointer to the buffers */
	uint64_t pool_gpa;
	uint32_t bufsz; /* a buffer's slot; the buffer starts o.offset into it */
	unsigned nbuf;
	unsigned *post; /* buffers to post (rx) / free buffers (tx) */
	unsigned npost;
	unsigned frame_left; /* rx: buffers of the current frame still to come */
	uint64_t frames, bytes, errors, kicks;
	uint64_t ring_laps; /* buffers reaped since the last report */
	/* the dirty log */
	uint64_t *log;
	size_t log_words;
	bool log_on;
	uint32_t *filled; /* rx: bytes the back-end wrote into a buffer since
			   * the last report, 0 if none */
};

static void die(const char *what, int err)
{
	fprintf(stderr, "fe-traffic: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: fe-traffic --socket PATH --dir guest-rx|guest-tx [--packed]\n"
		"                  [--size N] [--mrg on|off] [--log | --log-base]\n"
		"                  [--seconds N] [--warmup N] [--ring N] [--burst N] [--offset N]\n"
		"  --ring N      queue size, a power of 2, 8..1024 (default 256); as many buffers\n"
		"  --size N      frame size without the virtio-net header (60..2036, default 64)\n"
		"  --offset N    buffers start N bytes into their 2 KiB slots (default 0: the\n"
		"                frame at 12 mod 64, as in a Linux guest's mergeable buffers)\n"
		"  --log         dirty log set up and logging on before traffic starts\n"
		"  --log-base    dirty log set up, logging off; SIGUSR2 toggles it\n"
		"  --seconds N   report after --warmup (default 2) and N s later, then exit;\n"
		"                0: run until SIGTERM, report on SIGUSR1 (default 5)\n");
}

static void parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "dir", required_argument, NULL, 'd' },
		{ "packed", no_argument, NULL, 'p' },
		{ "size", required_argument, NULL, 'l' },
		{ "mrg", required_argument, NULL, 'm' },
		{ "log", no_argument, NULL, 'L' },
		{ "log-base", no_argument, NULL, 'B' },
		{ "seconds", required_argument, NULL, 't' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "ring", required_argument, NULL, 'r' },
		{ "burst", required_argument, NULL, 'b' },
		{ "offset", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL;
	int c;

	*o = (struct opts){ .mrg = true, .size = 64, .ring = 256, .burst = 32,
			    .seconds = 5, .warmup = 2 };
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 's': o->socket = optarg; break;
		case 'd': dir = optarg; break;
		case 'p': o->packed = true; break;
		case 'l': o->size = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'm': o->mrg = strcmp(optarg, "off") != 0; break;
		case 'L': o->log = 2; break;
		case 'B': o->log = 1; break;
		case 't': o->seconds = strtod(optarg, NULL); break;
		case 'w': o->warmup = strtod(optarg, NULL); break;
		case 'r': o->ring = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'b': o->burst = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'o': o->offset = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (!o->socket || !dir || (strcmp(dir, "guest-rx") && strcmp(dir, "guest-tx")) ||
	    o->offset > 512 || o->size < 60 || o->size > 2048 - HDR_LEN - o->offset ||
	    o->ring < 8 || o->ring > 1024 || /* buffers: 2 KiB each, in 8 MiB */
	    (o->ring & (o->ring - 1)) || o->burst < 1 || o->burst > o->ring ||
	    o->seconds < 0 || o->warmup < 0) {
		usage(stderr);
		exit(2);
	}
	o->rx = !strcmp(dir, "guest-rx");
}

/* ---- the dirty log ---- */

static void log_setup(struct traffic *t)
{
	uint64_t end = 0, bytes, file, status = 0;
	int fd, n;

	for (unsigned i = 0; i < vhu_fe_mem_nregions(t->fe); i++) {
		struct vhu_fe_region *r = vhu_fe_mem_region(t->fe, i);

		if (r->gpa + r->size > end)
			end = r->gpa + r->size;
	}
	/* QEMU's vhost_get_log_size(): whole u64 words of bits. */
	bytes = (((end - 1) >> LOG_PAGE_SHIFT) / 64 + 1) * 8;
	file = (bytes + 4095) & ~4095ull;
	fd = memfd_create("fe-traffic-log", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, (off_t)file) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		die("log memfd", errno);
	t->log = mmap(NULL, file, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (t->log == MAP_FAILED)
		die("log mmap", errno);
	t->log_words = bytes / 8;
	/* Not vhu_fe_set_log_base(): it wants the u64 status vhu sends, and
	 * librte_vhost 22.11 answers with an empty payload.  QEMU 7.2 reads
	 * the reply's header only; so does this, and a status if there is one. */
	n = vhu_fe_request(t->fe, VHU_REQ_SET_LOG_BASE, VHU_FLAG_VERSION,
			   &(struct vhu_log){ .mmap_size = bytes, .mmap_offset = 0 },
			   sizeof(struct vhu_log), &fd, 1, &status, sizeof(status));
	close(fd);
	if (n < 0)
		die("SET_LOG_BASE", n);
	if (n == sizeof(status) && status)
		die("SET_LOG_BASE refused", EREMOTEIO);
}

/* QEMU's vhost_dev_set_log(): features, then each ring's address. */
static void log_enable(struct traffic *t, bool on)
{
	bool ack = vhu_fe_acked_protocol_features(t->fe) & VHU_BIT(VHU_PF_REPLY_ACK);
	int err;

	vhu_fe_set_need_reply(t->fe, ack);
	err = vhu_fe_set_log_all(t->fe, on);
	if (err)
		die(on ? "SET_FEATURES with LOG_ALL" : "SET_FEATURES without LOG_ALL", err);
	for (uint16_t q = 0; q < 2; q++) {
		err = vhu_fe_queue_set_addr_log(t->fe, q, on,
						vhu_fe_queue_ring(t->fe, q)->used_gpa);
		if (err)
			die("SET_VRING_ADDR (log flag)", err);
	}
	vhu_fe_set_need_reply(t->fe, false);
	t->log_on = on;
}

static bool log_test(const struct traffic *t, uint64_t gpa, const uint64_t *bits)
{
	uint64_t page = gpa >> LOG_PAGE_SHIFT;

	return page / 64 < t->log_words && (bits[page / 64] >> (page % 64) & 1);
}

/* Pages of [gpa, gpa + len) whose bit is not in @bits. */
static uint64_t log_missing(const struct traffic *t, uint64_t gpa, uint64_t len,
			    const uint64_t *bits)
{
	uint64_t n = 0;

	for (uint64_t p = gpa >> LOG_PAGE_SHIFT; len && p <= (gpa + len - 1) >> LOG_PAGE_SHIFT; p++)
		n += !log_test(t, p << LOG_PAGE_SHIFT, bits);
	return n;
}

/* The log sync: every word taken (and cleared) atomically; the bits set and
 * the pages written since the last sync that have none. */
static void log_sync(struct traffic *t, uint64_t *set, uint64_t *missing)
{
	static uint64_t *bits;
	const struct vhu_fe_ring *r = t->r;

	*set = *missing = 0;
	if (!t->log)
		return;
	if (!bits && !(bits = calloc(t->log_words, 8)))
		die("log sync", ENOMEM);
	for (size_t i = 0; i < t->log_words; i++) {
		bits[i] = __atomic_exchange_n(&t->log[i], 0, __ATOMIC_ACQ_REL);
		*set += (uint64_t)__builtin_popcountll(bits[i]);
	}
	if (t->log_on) {
		for (unsigned b = 0; t->filled && b < t->nbuf; b++)
			if (t->filled[b])
				*missing += log_missing(t, t->pool_gpa + (uint64_t)b * t->bufsz +
							t->o.offset, t->filled[b], bits);
		/* A whole lap: every used entry / descriptor was written. */
		if (t->ring_laps >= r->num)
			*missing += r->packed ? log_missing(t, r->desc_gpa, 16u * r->num, bits)
					      : log_missing(t, r->used_gpa, 4 + 8u * r->num, bits);
	}
	if (t->filled)
		memset(t->filled, 0, t->nbuf * sizeof(*t->filled));
	t->ring_laps = 0;
}

/* ---- the rings ---- */

static void kick_if_wanted(struct traffic *t)
{
	int err;

	vhu_fe_ring_publish(t->r);
	if (!vhu_fe_ring_needs_kick(t->r))
		return;
	t->kicks++;
	err = vhu_fe_queue_kick(t->fe, t->q);
	if (err)
		die("kick", err);
}

static void add_buf(struct traffic *t, unsigned b)
{
	struct vhu_fe_buf fb = { t->pool_gpa + (uint64_t)b * t->bufsz + t->o.offset,
				 t->o.rx ? t->bufsz - t->o.offset : HDR_LEN + t->o.size };
	int rc = t->o.rx ? vhu_fe_ring_add(t->r, &fb, 0, 1, (void *)(uintptr_t)b)
			 : vhu_fe_ring_add(t->r, &fb, 1, 0, (void *)(uintptr_t)b);

	if (rc < 0)
		die("ring add", rc);
}

static void rx_buffer(struct traffic *t, unsigned b, uint32_t len)
{
	const uint8_t *p = t->pool + (size_t)b * t->bufsz + t->o.offset;

	if (len > t->bufsz - t->o.offset || (t->frame_left == 0 && len < HDR_LEN)) {
		t->errors++;
		return;
	}
	if (t->filled)
		t->filled[b] = len;
	if (t->frame_left == 0) {
		uint16_t nb;

		memcpy(&nb, p + 10, 2); /* num_buffers */
		if (p[0] || p[1] || (t->o.mrg && nb == 0)) /* flags, gso_type */
			t->errors++;
		t->frame_left = t->o.mrg && nb ? nb : 1;
		t->frames++;
		len -= HDR_LEN;
	}
	t->bytes += len;
	t->frame_left--;
}

/* One burst: reap what the back-end used, give buffers back (rx) or send
 * new frames (tx), publish, kick if the back-end wants it. */
static void round_once(struct traffic *t)
{
	unsigned n = 0;
	uint32_t len;
	void *tok;
	int rc = 0;

	while (n < t->o.burst && (rc = vhu_fe_ring_get_used(t->r, NULL, &len, &tok)) == 1) {
		unsigned b = (unsigned)(uintptr_t)tok;

		n++;
		if (t->o.rx) {
			rx_buffer(t, b, len);
			add_buf(t, b);
		} else {
			t->frames++;
			t->bytes += t->o.size;
			t->post[t->npost++] = b;
		}
	}
	if (n < t->o.burst && rc < 0)
		die("used ring", rc);
	t->ring_laps += n;
	if (!t->o.rx) {
		unsigned k = t->npost < t->o.burst ? t->npost : t->o.burst;

		for (unsigned i = 0; i < k; i++)
			add_buf(t, t->post[--t->npost]);
		n = k;
	}
	if (n)
		kick_if_wanted(t);
}

static void fill_frame(uint8_t *f, unsigned len)
{
	static const uint8_t head[42] = {
		0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00, /* Ethernet */
		0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
		0x04, 0x00, 0x04, 0x01, 0, 0, 0, 0, /* UDP 1024 -> 1025 */
	};

	memcpy(f, head, sizeof(head));
	f[16] = (uint8_t)((len - 14) >> 8);
	f[17] = (uint8_t)(len - 14);
	f[38] = (uint8_t)((len - 34) >> 8);
	f[39] = (uint8_t)(len - 34);
	for (unsigned i = sizeof(head); i < len; i++)
		f[i] = (uint8_t)i;
}

static void setup(struct traffic *t)
{
	const struct opts *o = &t->o;
	uint64_t keep = VHU_BIT(VHU_F_VERSION_1) | VHU_BIT(VHU_F_PROTOCOL_FEATURES) |
			VHU_BIT(VHU_F_INDIRECT_DESC) | VHU_BIT(VHU_F_IN_ORDER) |
			VHU_BIT(VHU_F_RING_PACKED) |
			(o->mrg ? VHU_BIT(VIRTIO_NET_F_MRG_RXBUF) : 0);
	struct vhu_fe_handshake_opts ho = {
		.sz = sizeof(ho), .num_queues = 2, .ring_size = (uint16_t)o->ring,
		.packed = o->packed, .in_order = true, .features_off = ~keep,
		.mem_regions = 2, .mem_region_size = 8u << 20,
	};
	int err;

	t->fe = vhu_fe_connect(o->socket, 30000);
	if (!t->fe)
		die("connect", errno);
	err = vhu_fe_handshake(t->fe, &ho, NULL);
	if (err)
		die("handshake", err);
	t->features = vhu_fe_acked_features(t->fe);
	if (o->log && !(vhu_fe_acked_protocol_features(t->fe) & VHU_BIT(VHU_PF_LOG_SHMFD)))
		die("the back-end offers no LOG_SHMFD", EOPNOTSUPP);
	if (o->log && !(vhu_fe_offered_features(t->fe) & VHU_BIT(VHU_F_LOG_ALL)))
		die("the back-end offers no LOG_ALL", EOPNOTSUPP);
	t->q = o->rx ? 0 : 1;
	t->r = vhu_fe_queue_ring(t->fe, t->q);
	for (uint16_t q = 0; q < 2; q++)
		vhu_fe_ring_disable_cb(vhu_fe_queue_ring(t->fe, q));
	t->nbuf = o->ring;
	t->bufsz = 2048;
	err = vhu_fe_mem_alloc(t->fe, (uint64_t)t->nbuf * t->bufsz, 4096, &t->pool_gpa);
	if (err)
		die("buffer memory", err);
	t->pool = vhu_fe_gpa_to_ptr(t->fe, t->pool_gpa, (uint64_t)t->nbuf * t->bufsz);
	t->post = calloc(t->nbuf, sizeof(*t->post));
	if (!t->pool || !t->post)
		die("buffers", ENOMEM);
	if (o->log) {
		log_setup(t);
		if (o->log == 2)
			log_enable(t, true);
		if (o->rx && !(t->filled = calloc(t->nbuf, sizeof(*t->filled))))
			die("buffers", ENOMEM);
	}
	for (unsigned b = 0; b < t->nbuf; b++) {
		if (o->rx) {
			add_buf(t, b);
		} else {
			uint8_t *p = t->pool + (size_t)b * t->bufsz + o->offset;

			memset(p, 0, HDR_LEN);
			fill_frame(p + HDR_LEN, o->size);
			t->post[t->npost++] = b;
		}
	}
	if (o->rx)
		kick_if_wanted(t);
}

static void arm_timer(double s)
{
	struct itimerval it = { .it_value = { (time_t)s, (suseconds_t)((s - (double)(time_t)s) * 1e6) } };

	if (!it.it_value.tv_sec && !it.it_value.tv_usec)
		it.it_value.tv_usec = 1;
	setitimer(ITIMER_REAL, &it, NULL);
}

/* The back-end closed the connection (or died): nothing will move again. */
static bool hung_up(const struct traffic *t)
{
	struct pollfd p = { .fd = vhu_fe_sock_fd(t->fe), .events = POLLRDHUP };

	return p.fd < 0 || (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)));
}

static uint64_t calls(const struct traffic *t)
{
	uint64_t v, sum = 0;

	for (uint16_t q = 0; q < 2; q++)
		if (read(vhu_fe_queue_call_fd(t->fe, q), &v, sizeof(v)) == sizeof(v))
			sum += v;
	return sum;
}

int main(int argc, char **argv)
{
	static struct traffic t;
	struct sigaction sa = { .sa_handler = on_signal };
	uint64_t seq = 0, toggles = 0, ncalls = 0, start_ns = 0, start_frames = 0, start_bytes = 0;

	parse(argc, argv, &t.o);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	setup(&t);
	printf("fe-traffic: ready features 0x%" PRIx64 " log %s\n", t.features,
	       !t.o.log ? "none" : t.log_on ? "on" : "off");
	fflush(stdout);
	if (t.o.seconds > 0)
		arm_timer(t.o.warmup);
	for (uint32_t rounds = 1; !want_stop; rounds++) {
		round_once(&t);
		if (!(rounds & 0xffff) && hung_up(&t)) {
			fprintf(stderr, "fe-traffic: the back-end closed the connection\n");
			t.errors++;
			break;
		}
		if (want_toggle) {
			want_toggle = 0;
			if (t.o.log) {
				log_enable(&t, !t.log_on);
				printf("fe-traffic: log %s %" PRIu64 "\n", t.log_on ? "on" : "off",
				       ++toggles);
			} else {
				printf("fe-traffic: no log to toggle (--log-base)\n");
			}
			fflush(stdout);
		}
		if (want_report) {
			uint64_t ns = now_ns(), set, missing;

			want_report = 0;
			log_sync(&t, &set, &missing);
			ncalls += calls(&t);
			printf("fe-traffic: report %" PRIu64 " ns %" PRIu64 " frames %" PRIu64
			       " bytes %" PRIu64 " errors %" PRIu64 " kicks %" PRIu64
			       " calls %" PRIu64 " log %s log_bits %" PRIu64
			       " log_missing %" PRIu64 "\n", ++seq, ns, t.frames, t.bytes,
			       t.errors, t.kicks, ncalls,
			       !t.o.log ? "none" : t.log_on ? "on" : "off", set, missing);
			fflush(stdout);
			if (t.o.seconds > 0 && seq == 1) {
				start_ns = ns, start_frames = t.frames, start_bytes = t.bytes;
				arm_timer(t.o.seconds);
			} else if (t.o.seconds > 0) {
				double s = (double)(ns - start_ns) / 1e9;

				printf("fe-traffic: %s %u-byte frames, %s, mrg %s, log %s: "
				       "%.0f frames/s (%" PRIu64 " frames, %" PRIu64 " bytes in "
				       "%.3f s), %" PRIu64 " header errors, log bits %" PRIu64
				       ", log pages missing %" PRIu64 "\n",
				       t.o.rx ? "guest-rx" : "guest-tx", t.o.size,
				       t.o.packed ? "packed" : "split", t.o.mrg ? "on" : "off",
				       !t.o.log ? "none" : t.log_on ? "on" : "off",
				       (double)(t.frames - start_frames) / s, t.frames - start_frames,
				       t.bytes - start_bytes, s, t.errors, set, missing);
				break;
			}
		}
	}
	fflush(stdout);
	vhu_fe_free(t.fe);
	return t.errors ? 1 : 0;
}
