/* SPDX-License-Identifier: BSD-3-Clause */
#include "testutil.h"

#include <check.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int tu_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

long tu_rss_pages(void)
{
	long size = 0, rss = -1;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &rss) != 2)
		rss = -1;
	fclose(f);
	return rss;
}

int tu_count_maps(const char *needle)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

int64_t tu_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int tu_under_valgrind(void)
{
	const char *p = getenv("LD_PRELOAD");

	return p && strstr(p, "valgrind") != NULL;
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TU_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(TU_ASAN)
#define TU_ASAN 1
#endif

long tu_rss_bound(long pages)
{
#ifdef TU_ASAN
	return 1L << 40; /* ASan's quarantine holds freed memory */
#else
	return tu_under_valgrind() ? 1L << 40 : pages;
#endif
}

const char *tu_sock_path(const char *tag)
{
	static char dir[64];
	static char path[128];
	static int seq;

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/vhu-test.XXXXXX");
		if (!mkdtemp(dir))
			abort();
	}
	snprintf(path, sizeof(path), "%s/%s-%d-%d.sock", dir, tag, (int)getpid(),
		 seq++);
	return path;
}

#define TU_LOG_LINES 256
static char tu_lines[TU_LOG_LINES][256];
static unsigned tu_next;
static pthread_mutex_t tu_lock = PTHREAD_MUTEX_INITIALIZER;

void tu_log(void *opaque, enum vhu_log_level level, const char *dev,
	    const char *msg)
{
	(void)opaque;
	pthread_mutex_lock(&tu_lock);
	snprintf(tu_lines[tu_next++ % TU_LOG_LINES], sizeof(tu_lines[0]),
		 "%d %s: %s", (int)level, dev, msg);
	pthread_mutex_unlock(&tu_lock);
	if (getenv("VHU_TEST_VERBOSE"))
		fprintf(stderr, "[%d] %s: %s\n", (int)level, dev, msg);
}

int tu_log_contains(const char *needle)
{
	int found = 0;

	pthread_mutex_lock(&tu_lock);
	for (unsigned i = 0; i < TU_LOG_LINES && !found; i++)
		found = strstr(tu_lines[i], needle) != NULL;
	pthread_mutex_unlock(&tu_lock);
	return found;
}

void tu_log_clear(void)
{
	pthread_mutex_lock(&tu_lock);
	memset(tu_lines, 0, sizeof(tu_lines));
	tu_next = 0;
	pthread_mutex_unlock(&tu_lock);
}

/* ---- a device served by a polling thread ---- */

struct tu_backend {
	struct vhu_dev *dev;
	pthread_t thread;
	pthread_mutex_t lock;
	atomic_bool stop;
	atomic_int waiters; /* main thread wants the lock: poller steps aside */
};

static void *tu_backend_main(void *arg)
{
	struct tu_backend *b = arg;

	while (!atomic_load(&b->stop)) {
		if (atomic_load(&b->waiters)) {
			usleep(200);
			continue;
		}
		pthread_mutex_lock(&b->lock);
		vhu_dev_poll(b->dev, 10);
		pthread_mutex_unlock(&b->lock);
	}
	return NULL;
}

struct tu_backend *tu_backend_start(struct vhu_dev *dev)
{
	struct tu_backend *b = calloc(1, sizeof(*b));
	int err;

	if (!b)
		return NULL;
	b->dev = dev;
	pthread_mutex_init(&b->lock, NULL);
	err = pthread_create(&b->thread, NULL, tu_backend_main, b);
	if (err) {
		pthread_mutex_destroy(&b->lock);
		free(b);
		errno = err;
		return NULL;
	}
	return b;
}

void tu_backend_stop(struct tu_backend *b)
{
	if (!b)
		return;
	atomic_store(&b->stop, true);
	pthread_join(b->thread, NULL);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

void tu_backend_lock(struct tu_backend *b)
{
	atomic_fetch_add(&b->waiters, 1);
	pthread_mutex_lock(&b->lock);
	atomic_fetch_sub(&b->waiters, 1);
}

void tu_backend_unlock(struct tu_backend *b)
{
	pthread_mutex_unlock(&b->lock);
}

int tu_backend_wait(struct tu_backend *b, int (*pred)(void *arg), void *arg,
		    int timeout_ms)
{
	struct timespec t0, now;
	int ok;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		tu_backend_lock(b);
		ok = pred(arg);
		tu_backend_unlock(b);
		if (ok)
			return 1;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - t0.tv_sec) * 1000 +
		    (now.tv_nsec - t0.tv_nsec) / 1000000 >= timeout_ms)
			return 0;
		usleep(1000);
	}
}

int tu_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
