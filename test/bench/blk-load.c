/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * blk-load - the guest side of bench/blk.sh: O_DIRECT I/O on a raw virtio
 * disk in timed windows, driven by the host over a serial line.
 *
 *   blk-load serve TTY NDISKS
 *
 * Built on the host (gcc -O2 -static -pthread) and put in the test
 * guest's initramfs; the guest has no fio.  It waits (20 s at most) for
 * NDISKS virtio disks (/sys/block/vd*), sets TTY raw and says, one line
 * each:
 *
 *   H <disk> <serial> <sectors> <max_sectors_kb> <max_segments> <features>
 *   READY
 *
 * then reads commands from TTY, one per line:
 *
 *   run DISK MODE BS THREADS WARMUP_MS WINDOW_MS
 *       MODE seq-read, seq-write, rand-read or rand-write; BS bytes (a
 *       multiple of 512); THREADS threads, each with one synchronous
 *       pread/pwrite in flight (the queue depth), on /dev/DISK opened
 *       O_DIRECT.  Sequential modes share one offset (the device sees one
 *       stream, THREADS deep), wrapping at the end of the disk; random
 *       ones pick BS-aligned offsets uniformly.  After WARMUP_MS the
 *       counters are taken and "B" is sent; WINDOW_MS later they are taken
 *       again and "E" is sent; the threads keep going until the host
 *       answers "go" (so its own readings at B and E both fall inside the
 *       load), then stop, and the result is sent:
 *         R <ios> <bytes> <ns> <errors> <guest_busy_pct> <irqs>
 *       ios, bytes and ns between B and E (ns by CLOCK_MONOTONIC);
 *       guest_busy_pct: the guest's CPUs' busy share over the window
 *       (/proc/stat: all but idle and iowait); irqs: the interrupts of
 *       the disk's virtio device (/proc/interrupts) over the window.
 *   quit
 *
 * A command it cannot run gets "X <reason>".  Every line sent to the host
 * is also printed on stdout (the console) after "VHU-T: ".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

enum mode { SEQ_READ, SEQ_WRITE, RAND_READ, RAND_WRITE };

struct counter {
	_Atomic uint64_t ios;
	_Atomic uint64_t bytes;
	_Atomic uint64_t errors;
	char pad[64 - 3 * sizeof(uint64_t)];
};

struct job {
	int fd;
	enum mode mode;
	size_t bs;
	uint64_t blocks; /* disk size / bs */
	_Atomic uint64_t next; /* sequential: the next block */
	_Atomic int stop;
};

struct worker {
	struct job *job;
	struct counter *cnt;
	unsigned id;
	pthread_t th;
};

static int ctl = -1;

/* say FMT...: one line to the host and to the console. */
static void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (ctl >= 0) {
		const char *p = line;
		int left = n;

		while (left > 0) {
			ssize_t w = write(ctl, p, (size_t)left);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break;
			p += w;
			left -= (int)w;
		}
	}
	printf("VHU-T: %.*s", n, line);
	fflush(stdout);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* cpu_times: busy and total jiffies of all the guest's CPUs. */
static void cpu_times(uint64_t *busy, uint64_t *total)
{
	unsigned long long v[10] = { 0 };
	FILE *f = fopen("/proc/stat", "r");
	int i;

	*busy = *total = 0;
	if (!f)
		return;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
		   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) >= 8) {
		for (i = 0; i < 8; i++) /* guest time is in user already */
			*total += v[i];
		*busy = *total - v[3] - v[4];
	}
	fclose(f);
}

/* read_attr PATH BUF SIZE: the first line of a sysfs file ("-" if none). */
static void read_attr(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	char *nl;

	snprintf(buf, size, "-");
	if (!f)
		return;
	if (!fgets(buf, (int)size, f))
		snprintf(buf, size, "-");
	fclose(f);
	nl = strchr(buf, '\n');
	if (nl)
		*nl = 0;
	if (!buf[0])
		snprintf(buf, size, "-");
	for (nl = buf; *nl; nl++)
		if (*nl == ' ' || *nl == '\t')
			*nl = '_';
}

/* irq_count DEV: the interrupts of virtio device DEV ("virtio1": lines
 * of /proc/interrupts naming DEV-config or DEV-req.N) on all CPUs. */
static uint64_t irq_count(const char *dev)
{
	char line[1024], want[48];
	uint64_t n = 0;
	FILE *f;

	if (!dev[0] || !(f = fopen("/proc/interrupts", "r")))
		return 0;
	snprintf(want, sizeof(want), " %s-", dev);
	while (fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ':'), *end;

		if (!p || !strstr(line, want))
			continue;
		for (p++;; p = end) {
			unsigned long long v = strtoull(p, &end, 10);

			if (end == p)
				break;
			n += v;
		}
	}
	fclose(f);
	return n;
}

/* virtio_dev DISK BUF SIZE: the virtio device under /dev/DISK ("virtio1";
 * empty if unknown). */
static void virtio_dev(const char *disk, char *buf, size_t size)
{
	char p[96], target[256];
	ssize_t n;
	const char *slash;

	buf[0] = 0;
	snprintf(p, sizeof(p), "/sys/block/%.63s/device", disk);
	n = readlink(p, target, sizeof(target) - 1);
	if (n <= 0)
		return;
	target[n] = 0;
	slash = strrchr(target, '/');
	snprintf(buf, size, "%.40s", slash ? slash + 1 : target);
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct job *j = w->job;
	uint64_t seed = 0x9e3779b97f4a7c15ull * (w->id + 1) ^ now_ns();
	bool write_mode = j->mode == SEQ_WRITE || j->mode == RAND_WRITE;
	bool seq = j->mode == SEQ_READ || j->mode == SEQ_WRITE;
	void *buf;

	if (posix_memalign(&buf, 4096, j->bs)) {
		atomic_fetch_add(&w->cnt->errors, 1);
		return NULL;
	}
	memset(buf, 0xa5 ^ (int)w->id, j->bs);
	while (!atomic_load_explicit(&j->stop, memory_order_relaxed)) {
		uint64_t blk;
		ssize_t n;

		if (seq)
			blk = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed) % j->blocks;
		else
			blk = xorshift(&seed) % j->blocks;
		if (write_mode)
			n = pwrite(j->fd, buf, j->bs, (off_t)(blk * j->bs));
		else
			n = pread(j->fd, buf, j->bs, (off_t)(blk * j->bs));
		if (n != (ssize_t)j->bs) {
			atomic_fetch_add_explicit(&w->cnt->errors, 1, memory_order_relaxed);
			sleep_ms(1);
			continue;
		}
		atomic_fetch_add_explicit(&w->cnt->ios, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&w->cnt->bytes, j->bs, memory_order_relaxed);
	}
	free(buf);
	return NULL;
}

static void sum(struct counter *c, unsigned n, uint64_t *ios, uint64_t *bytes, uint64_t *err)
{
	unsigned i;

	*ios = *bytes = *err = 0;
	for (i = 0; i < n; i++) {
		*ios += atomic_load(&c[i].ios);
		*bytes += atomic_load(&c[i].bytes);
		*err += atomic_load(&c[i].errors);
	}
}

/* read_line BUF SIZE: one line from the host (without the newline);
 * false at end of file. */
static bool read_line(char *buf, size_t size)
{
	size_t n = 0;
	char ch;

	for (;;) {
		ssize_t r = read(ctl, &ch, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		if (ch == '\r')
			continue;
		if (ch == '\n') {
			if (!n)
				continue;
			buf[n] = 0;
			return true;
		}
		if (n + 1 < size)
			buf[n++] = ch;
	}
}

static int parse_mode(const char *s, enum mode *m)
{
	static const char *const names[] = { "seq-read", "seq-write", "rand-read", "rand-write" };
	int i;

	for (i = 0; i < 4; i++)
		if (!strcmp(s, names[i])) {
			*m = (enum mode)i;
			return 0;
		}
	return -1;
}

static void run(char *args)
{
	char disk[64], mode_s[32], path[96], line[128], vdev[64];
	unsigned long bs, threads, warmup_ms, window_ms;
	uint64_t size = 0, i0 = 0, b0 = 0, e0 = 0, i1 = 0, b1 = 0, e1 = 0, t0 = 0, t1 = 0;
	uint64_t cb0 = 0, ct0 = 0, cb1 = 0, ct1 = 0, q0 = 0, q1 = 0;
	struct counter *cnt = NULL;
	struct worker *w = NULL;
	struct job job;
	unsigned i, started = 0;
	double busy;

	if (sscanf(args, "%63s %31s %lu %lu %lu %lu", disk, mode_s, &bs, &threads, &warmup_ms,
		   &window_ms) != 6 ||
	    parse_mode(mode_s, &job.mode) || !bs || bs % 512 || bs > (16u << 20) || !threads ||
	    threads > 64 || !window_ms) {
		say("X bad run command: %s", args);
		return;
	}
	snprintf(path, sizeof(path), "/dev/%s", disk);
	virtio_dev(disk, vdev, sizeof(vdev));
	job.fd = open(path, O_RDWR | O_DIRECT);
	if (job.fd < 0 || ioctl(job.fd, BLKGETSIZE64, &size) || size < bs) {
		say("X cannot use %s: %s", path, job.fd < 0 ? strerror(errno) : "size");
		if (job.fd >= 0)
			close(job.fd);
		return;
	}
	job.bs = bs;
	job.blocks = size / bs;
	atomic_init(&job.next, 0);
	atomic_init(&job.stop, 0);
	cnt = aligned_alloc(64, threads * sizeof(*cnt));
	w = calloc(threads, sizeof(*w));
	if (!cnt || !w) {
		say("X out of memory");
		goto out;
	}
	memset(cnt, 0, threads * sizeof(*cnt));
	for (i = 0; i < threads; i++) {
		w[i] = (struct worker){ .job = &job, .cnt = &cnt[i], .id = i };
		if (pthread_create(&w[i].th, NULL, worker_main, &w[i])) {
			say("X pthread_create failed");
			break;
		}
		started++;
	}
	if (started == threads) {
		sleep_ms((unsigned)warmup_ms);
		cpu_times(&cb0, &ct0);
		q0 = irq_count(vdev);
		sum(cnt, threads, &i0, &b0, &e0);
		t0 = now_ns();
		say("B");
		sleep_ms((unsigned)window_ms);
		sum(cnt, threads, &i1, &b1, &e1);
		t1 = now_ns();
		q1 = irq_count(vdev);
		cpu_times(&cb1, &ct1);
		say("E");
		/* the host's reading at E is taken while the load still runs */
		if (!read_line(line, sizeof(line)) || strcmp(line, "go"))
			say("X wanted go");
	}
	atomic_store(&job.stop, 1);
	for (i = 0; i < started; i++)
		pthread_join(w[i].th, NULL);
	if (started == threads) {
		busy = ct1 > ct0 ? 100.0 * (double)(cb1 - cb0) / (double)(ct1 - ct0) : 0;
		say("R %llu %llu %llu %llu %.0f %llu", (unsigned long long)(i1 - i0),
		    (unsigned long long)(b1 - b0), (unsigned long long)(t1 - t0),
		    (unsigned long long)(e1 - e0), busy, (unsigned long long)(q1 - q0));
	}
out:
	free(cnt);
	free(w);
	close(job.fd);
}

/* hello NDISKS: wait for the disks, describe them. */
static int hello(unsigned want)
{
	char names[16][32], p[128], serial[64], sectors[32], maxkb[32], segs[32], feat[128];
	unsigned n = 0, tries, i;

	for (tries = 0; tries < 200; tries++) {
		DIR *d = opendir("/sys/block");
		struct dirent *e;

		n = 0;
		while (d && (e = readdir(d)) && n < 16)
			if (!strncmp(e->d_name, "vd", 2) && strlen(e->d_name) < sizeof(names[n])) {
				memcpy(names[n], e->d_name, strlen(e->d_name) + 1);
				snprintf(p, sizeof(p), "/dev/%s", names[n]);
				if (access(p, R_OK) == 0)
					n++;
			}
		if (d)
			closedir(d);
		if (n >= want)
			break;
		sleep_ms(100);
	}
	if (n < want) {
		say("X %u disks, want %u", n, want);
		return -1;
	}
	for (i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "/sys/block/%.31s/serial", names[i]);
		read_attr(p, serial, sizeof(serial));
		snprintf(p, sizeof(p), "/sys/block/%.31s/size", names[i]);
		read_attr(p, sectors, sizeof(sectors));
		snprintf(p, sizeof(p), "/sys/block/%.31s/queue/max_sectors_kb", names[i]);
		read_attr(p, maxkb, sizeof(maxkb));
		snprintf(p, sizeof(p), "/sys/block/%.31s/queue/max_segments", names[i]);
		read_attr(p, segs, sizeof(segs));
		snprintf(p, sizeof(p), "/sys/block/%.31s/device/features", names[i]);
		read_attr(p, feat, sizeof(feat));
		say("H %s %s %s %s %s %s", names[i], serial, sectors, maxkb, segs, feat);
	}
	say("READY");
	return 0;
}

int main(int argc, char **argv)
{
	struct termios t;
	char line[256];

	if (argc != 4 || strcmp(argv[1], "serve")) {
		fprintf(stderr, "usage: blk-load serve TTY NDISKS\n");
		return 2;
	}
	ctl = open(argv[2], O_RDWR | O_NOCTTY);
	if (ctl < 0) {
		printf("VHU-T: X cannot open %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	if (tcgetattr(ctl, &t) == 0) {
		cfmakeraw(&t);
		cfsetispeed(&t, B115200);
		cfsetospeed(&t, B115200);
		t.c_cc[VMIN] = 1;
		t.c_cc[VTIME] = 0;
		tcsetattr(ctl, TCSANOW, &t);
		tcflush(ctl, TCIFLUSH);
	}
	if (hello((unsigned)atoi(argv[3])))
		return 1;
	while (read_line(line, sizeof(line))) {
		if (!strncmp(line, "run ", 4))
			run(line + 4);
		else if (!strcmp(line, "quit"))
			break;
		else
			say("X unknown command: %s", line);
	}
	say("BYE");
	return 0;
}
