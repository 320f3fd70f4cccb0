/* SPDX-License-Identifier: BSD-3-Clause */
#include "testutil.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
