/* SPDX-License-Identifier: BSD-3-Clause */
/* Guest memory: mapping rules, translation, replacement under readers. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <stdio.h>
#include <unistd.h>

#include "memory/mem.h"
#include "testutil.h"

#define MB (1024ull * 1024)

static struct vhu_logger lg;

static void setup(void)
{
	vhu_logger_init(&lg, tu_log, NULL, VHU_LOG_DEBUG, "mem");
	tu_log_clear();
}

/* A memfd of @size bytes whose byte i holds (i + salt) & 0xff. */
static int make_memfd(uint64_t size, unsigned salt, bool seal)
{
	int fd = memfd_create("vhu-test", MFD_CLOEXEC | (seal ? MFD_ALLOW_SEALING : 0));

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(p, MAP_FAILED);
	for (uint64_t i = 0; i < size; i += 4096)
		p[i] = (uint8_t)((i / 4096 + salt) & 0xff);
	munmap(p, size);
	if (seal)
		ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
	return fd;
}

static struct vhu_mem_region reg(uint64_t gpa, uint64_t size, uint64_t uva,
				 uint64_t off)
{
	return (struct vhu_mem_region){ .guest_phys_addr = gpa, .memory_size = size,
					.userspace_addr = uva, .mmap_offset = off };
}

START_TEST(translate_basic)
{
	struct vhu_mem m;
	int fds[2] = { make_memfd(2 * MB, 0, true), make_memfd(2 * MB, 100, false) };
	struct vhu_mem_region r[2] = {
		reg(0x100000, 1 * MB, 0x7f0000000000, 1 * MB), /* offset into file */
		reg(0x200000, 2 * MB, 0x7f1000000000, 0),      /* adjacent in gpa */
	};
	int nfd = tu_count_fds();

	ck_assert_int_eq(vhu_mem_init(&m, 8, 1, &lg), 0);
	ck_assert_int_eq(vhu_mem_set_table(&m, r, fds, 2), 0);
	ck_assert_int_eq(tu_count_fds(), nfd - 2); /* fds closed after mapping */
	const struct vhu_memtable *t = vhu_mem_current(&m);
	ck_assert_uint_eq(t->n, 2);
	ck_assert(t->r[0]->shrink_sealed);
	ck_assert(!t->r[1]->shrink_sealed);

	uint64_t len = 8192;
	uint8_t *p = vhu_gpa_to_va(t, 0x100000, &len);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(len, 8192);
	/* gpa 0x100000 is file offset 1 MiB: page 256, byte (256 + 0) & 0xff */
	ck_assert_uint_eq(p[0], 0);
	ck_assert_uint_eq(p[4096], 1);

	/* Contiguous length stops at the region's end, even when the next
	 * region follows in gpa: the caller splits there. */
	len = 16384;
	p = vhu_gpa_to_va(t, 0x200000 - 4096, &len);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(len, 4096);
	len = 4096;
	p = vhu_gpa_to_va(t, 0x200000, &len);
	ck_assert_uint_eq(p[0], 100);

	/* Outside every region, and the boundaries exactly. */
	len = 1;
	ck_assert_ptr_null(vhu_gpa_to_va(t, 0xfffff, &len));
	len = 1;
	ck_assert_ptr_null(vhu_gpa_to_va(t, 0x400000, &len));
	len = 1;
	ck_assert_ptr_nonnull(vhu_gpa_to_va(t, 0x3fffff, &len));
	ck_assert_uint_eq(len, 1);
	len = UINT64_MAX;
	ck_assert_ptr_nonnull(vhu_gpa_to_va(t, 0x3fffff, &len));
	ck_assert_uint_eq(len, 1);
	ck_assert_ptr_null(vhu_gpa_to_va_whole(t, 0x1ff000, 8192));
	ck_assert_ptr_nonnull(vhu_gpa_to_va_whole(t, 0x1ff000, 4096));

	/* User addresses. */
	len = 4096;
	ck_assert_ptr_eq(vhu_uva_to_va(t, 0x7f1000000000, &len), p);
	len = 1;
	ck_assert_ptr_null(vhu_uva_to_va(t, 0x7f1000000000 + 2 * MB, &len));
	vhu_mem_destroy(&m);
	ck_assert_int_eq(tu_count_fds(), nfd - 2);
}
END_TEST

START_TEST(many_slots)
{
	struct vhu_mem m;
	int nfd = tu_count_fds();
	int fd = make_memfd(VHU_MAX_MEM_SLOTS * 4096ull, 0, false);

	ck_assert_int_eq(vhu_mem_init(&m, VHU_MAX_MEM_SLOTS, 1, &lg), 0);
	/* 509 one-page regions of one file, added in reverse gpa order. */
	for (int i = VHU_MAX_MEM_SLOTS - 1; i >= 0; i--) {
		struct vhu_mem_region r = reg((uint64_t)i * 8192, 4096,
					      0x10000000 + (uint64_t)i * 4096,
					      (uint64_t)i * 4096);
		ck_assert_int_eq(vhu_mem_add_region(&m, &r, dup(fd)), 0);
	}
	ck_assert_uint_eq(vhu_mem_nregions(&m), VHU_MAX_MEM_SLOTS);
	struct vhu_mem_region extra = reg(1ull << 40, 4096, 1ull << 41, 0);
	ck_assert_int_eq(vhu_mem_add_region(&m, &extra, dup(fd)), -ENOSPC);
	const struct vhu_memtable *t = vhu_mem_current(&m);
	for (int i = 0; i < VHU_MAX_MEM_SLOTS; i++) {
		uint64_t len = 4096;
		uint8_t *p = vhu_gpa_to_va(t, (uint64_t)i * 8192 + 10, &len);

		ck_assert_ptr_nonnull(p);
		ck_assert_uint_eq(len, 4086);
		ck_assert_uint_eq(p[-10], i & 0xff);
		len = 1;
		ck_assert_ptr_null(vhu_gpa_to_va(t, (uint64_t)i * 8192 + 4096, &len));
	}
	/* Remove every other one; unknown ones are refused. */
	for (int i = 0; i < VHU_MAX_MEM_SLOTS; i += 2) {
		struct vhu_mem_region r = reg((uint64_t)i * 8192, 4096,
					      0x10000000 + (uint64_t)i * 4096, 0);
		ck_assert_int_eq(vhu_mem_remove_region(&m, &r), 0);
		ck_assert_int_eq(vhu_mem_remove_region(&m, &r), -ENOENT);
	}
	ck_assert_uint_eq(vhu_mem_nregions(&m), VHU_MAX_MEM_SLOTS / 2);
	close(fd);
	vhu_mem_destroy(&m);
	ck_assert_int_eq(tu_count_fds(), nfd);
}
END_TEST

/* Each bad region description is refused, nothing stays mapped, and every
 * fd is closed. */
START_TEST(bad_regions)
{
	struct vhu_mem m;
	int nfd = tu_count_fds();
	const uint64_t S = 2 * MB;
	struct {
		struct vhu_mem_region r[2];
		uint32_t n;
		int err;
	} cases[] = {
		{ { reg(0, 0, 0x1000000, 0) }, 1, -EINVAL },                   /* size 0 */
		{ { reg(UINT64_MAX - 4095, 8192, 0x1000000, 0) }, 1, -EINVAL }, /* gpa wraps */
		{ { reg(0, 8192, UINT64_MAX - 4095, 0) }, 1, -EINVAL },        /* uva wraps */
		{ { reg(0, 8192, 0x1000000, UINT64_MAX - 4095) }, 1, -EINVAL }, /* offset wraps */
		{ { reg(0, S, 0x1000000, 4096) }, 1, -EINVAL },                /* past EOF */
		{ { reg(0, S + 4096, 0x1000000, 0) }, 1, -EINVAL },            /* past EOF */
		{ { reg(0, S, 0x1000000, 0), reg(S - 4096, S, 0x9000000, 0) }, 2, -EINVAL },
		{ { reg(0, S, 0x1000000, 0), reg(S, S, 0x1000000 + 4096, 0) }, 2, -EINVAL },
	};

	ck_assert_int_eq(vhu_mem_init(&m, 8, 1, &lg), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int fds[2] = { make_memfd(S, 0, false), make_memfd(S, 0, false) };

		ck_assert_msg(vhu_mem_set_table(&m, cases[i].r, fds, cases[i].n) ==
				      cases[i].err, "case %zu", i);
		if (cases[i].n < 2)
			close(fds[1]);
		ck_assert_uint_eq(vhu_mem_nregions(&m), 0);
		ck_assert_int_eq(tu_count_fds(), nfd);
	}

	/* Fds that cannot back memory. */
	int sp[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	close(sp[1]);
	char ro_path[] = "/tmp/vhu-ro.XXXXXX";
	int tmp = mkstemp(ro_path);
	ck_assert_int_ge(tmp, 0);
	ck_assert_int_eq(ftruncate(tmp, (off_t)S), 0);
	close(tmp);
	int bad[] = { eventfd(0, 0), sp[0], open("/dev/null", O_RDWR),
		      open(ro_path, O_RDONLY), -1 };
	unlink(ro_path);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vhu_mem_region r = reg(0, 4096, 0x1000000, 0);

		ck_assert_msg(vhu_mem_set_table(&m, &r, &bad[i], 1) < 0, "fd %zu", i);
		ck_assert_uint_eq(vhu_mem_nregions(&m), 0);
	}
	ck_assert_int_eq(tu_count_fds(), nfd);

	/* Too many regions for the table. */
	int many[9];
	struct vhu_mem_region rs[9];
	for (int i = 0; i < 9; i++) {
		many[i] = make_memfd(4096, 0, false);
		rs[i] = reg((uint64_t)i * 4096, 4096, 0x1000000 + (uint64_t)i * 4096, 0);
	}
	ck_assert_int_eq(vhu_mem_set_table(&m, rs, many, 9), -E2BIG);
	ck_assert_int_eq(tu_count_fds(), nfd);
	vhu_mem_destroy(&m);
}
END_TEST

/* A region kept across a table change is shared, not remapped: pointers
 * into it stay valid. */
START_TEST(replace_keeps_shared_regions)
{
	struct vhu_mem m;
	int a = make_memfd(MB, 7, false), b = make_memfd(MB, 9, false);
	struct vhu_mem_region r1 = reg(0, MB, 0x1000000, 0);
	struct vhu_mem_region r2[2] = { reg(0, MB, 0x1000000, 0),
					reg(MB, MB, 0x2000000, 0) };
	int fds1[1] = { dup(a) };
	int fds2[2] = { dup(a), dup(b) };

	ck_assert_int_eq(vhu_mem_init(&m, 8, 1, &lg), 0);
	ck_assert_int_eq(vhu_mem_set_table(&m, &r1, fds1, 1), 0);
	uint64_t len = 1;
	uint8_t *before = vhu_gpa_to_va(vhu_mem_current(&m), 4096, &len);
	ck_assert_int_eq(vhu_mem_set_table(&m, r2, fds2, 2), 0);
	len = 1;
	ck_assert_ptr_eq(vhu_gpa_to_va(vhu_mem_current(&m), 4096, &len), before);
	ck_assert_uint_eq(before[0], 8);
	/* A failed replacement leaves the table as it was. */
	struct vhu_mem_region bad[2] = { reg(0, MB, 0x1000000, 0), reg(0, 0, 0, 0) };
	int fds3[2] = { dup(a), dup(b) };
	ck_assert_int_eq(vhu_mem_set_table(&m, bad, fds3, 2), -EINVAL);
	ck_assert_uint_eq(vhu_mem_nregions(&m), 2);
	ck_assert_uint_eq(vhu_mem_current(&m)->r[0]->refs, 1);
	close(a);
	close(b);
	vhu_mem_destroy(&m);
}
END_TEST

/* POSIX shm and hugetlbfs files back guest memory too; on hugetlbfs the
 * mapping is aligned to the huge page size, whatever the region offset. */
static long set_hugepages(long n)
{
	FILE *f = fopen("/proc/sys/vm/nr_hugepages", "r+");
	long old = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &old) == 1 && n >= 0) {
		rewind(f);
		fprintf(f, "%ld\n", n);
	}
	fclose(f);
	return old;
}

START_TEST(shm_and_hugetlbfs)
{
	struct vhu_mem m;
	char name[64];
	int nfd = tu_count_fds();

	ck_assert_int_eq(vhu_mem_init(&m, 8, 1, &lg), 0);
	snprintf(name, sizeof(name), "/vhu-test-%d", (int)getpid());
	int shm = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(shm, 0);
	shm_unlink(name);
	ck_assert_int_eq(ftruncate(shm, (off_t)MB), 0);
	uint8_t *p = mmap(NULL, MB, PROT_READ | PROT_WRITE, MAP_SHARED, shm, 0);
	ck_assert_ptr_ne(p, MAP_FAILED);
	p[MB / 2 + 100] = 0x5a;
	/* offset MB/2 - 4 KiB: page aligned, region MB/2 long */
	struct vhu_mem_region r = reg(0, MB / 2, 0x1000000, MB / 2 - 4096);
	ck_assert_int_eq(vhu_mem_set_table(&m, &r, &shm, 1), 0);
	uint64_t len = 1;
	uint8_t *q = vhu_gpa_to_va(vhu_mem_current(&m), 4096 + 100, &len);
	ck_assert_ptr_nonnull(q);
	ck_assert_uint_eq(*q, 0x5a);
	munmap(p, MB);

	/* hugetlbfs: make sure huge pages exist (the suite runs as root in CI) */
	long old = set_hugepages(-1);
	if (old < 0) {
		fprintf(stderr, "shm_and_hugetlbfs: no /proc/sys/vm/nr_hugepages; "
			"hugetlbfs part not run\n");
	} else {
		if (old < 4)
			set_hugepages(old + 4);
		int hfd = memfd_create("vhu-huge", MFD_CLOEXEC | MFD_HUGETLB);
		ck_assert_msg(hfd >= 0, "MFD_HUGETLB: %s", strerror(errno));
		ck_assert_int_eq(ftruncate(hfd, (off_t)(4 * MB)), 0);
		uint8_t *h = mmap(NULL, 4 * MB, PROT_READ | PROT_WRITE, MAP_SHARED, hfd, 0);
		ck_assert_ptr_ne(h, MAP_FAILED);
		h[2 * MB + 4096 + 7] = 0xa5;
		/* offset 2 MiB + 4 KiB: not aligned to the huge page */
		struct vhu_mem_region hr = reg(1ull << 32, MB, 0x9000000, 2 * MB + 4096);
		ck_assert_int_eq(vhu_mem_set_table(&m, &hr, &hfd, 1), 0);
		const struct vhu_memtable *t = vhu_mem_current(&m);
		ck_assert_uint_eq(t->r[0]->map_len % (2 * MB), 0);
		len = 1;
		q = vhu_gpa_to_va(t, (1ull << 32) + 7, &len);
		ck_assert_ptr_nonnull(q);
		ck_assert_uint_eq(*q, 0xa5);
		munmap(h, 4 * MB);
	}
	vhu_mem_destroy(&m);
	if (old >= 0)
		set_hugepages(old);
	ck_assert_int_eq(tu_count_fds(), nfd);
}
END_TEST

/*
 * A reader thread translates and reads guest memory in a tight loop while
 * the control thread replaces the table thousands of times, alternating
 * between two files.  Any access to an unmapped region would fault; any
 * torn table would return a wrong byte.
 */
struct hammer {
	struct vhu_mem *m;
	struct vhu_mem_reader reader;
	atomic_bool stop;
	_Atomic uint64_t passes; /* sections entered, table empty or not */
	_Atomic uint64_t reads;
	uint64_t wrong;
	bool yield; /* valgrind runs one thread at a time: let the writer in */
};

static void *hammer_reader(void *arg)
{
	struct hammer *h = arg;

	while (!atomic_load(&h->stop)) {
		const struct vhu_memtable *t = vhu_mem_read_begin(h->m, &h->reader);

		for (uint64_t gpa = 0; gpa < 4 * MB; gpa += 64 * 1024) {
			uint64_t len = 4096;
			volatile uint8_t *p = vhu_gpa_to_va(t, gpa, &len);

			if (!p)
				continue; /* an empty table in between */
			uint8_t v = *p;
			/* page k of file "salt s" holds (k + s) & 0xff, s in {0, 128} */
			uint8_t k = (uint8_t)((gpa / 4096) & 0xff);
			if (v != k && v != (uint8_t)(k + 128))
				h->wrong++;
			atomic_fetch_add_explicit(&h->reads, 1, memory_order_relaxed);
		}
		vhu_mem_read_end(&h->reader);
		atomic_fetch_add_explicit(&h->passes, 1, memory_order_relaxed);
		if (h->yield)
			sched_yield();
	}
	return NULL;
}

START_TEST(replace_under_concurrent_reader)
{
	struct vhu_mem m;
	struct hammer h = { .m = &m, .yield = tu_under_valgrind() };
	/* Under valgrind every replacement waits for a thread switch. */
	int rounds = tu_under_valgrind() ? 400 : 4000;
	pthread_t th;
	int files[2] = { make_memfd(4 * MB, 0, false), make_memfd(4 * MB, 128, false) };
	int nfd = tu_count_fds();
	long rss0;

	ck_assert_int_eq(vhu_mem_init(&m, 8, 1, &lg), 0);
	ck_assert_int_eq(vhu_mem_reader_add(&m, &h.reader), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, hammer_reader, &h), 0);
	/* The reader must be reading before the first replacement: valgrind
	 * may otherwise run every round before it schedules the thread. */
	for (int w = 0; w < 30000 && atomic_load(&h.passes) == 0; w++)
		usleep(1000);
	ck_assert_uint_gt(atomic_load(&h.passes), 0);
	rss0 = tu_rss_pages();
	/* At least `rounds` replacements, and on until the reader has done
	 * enough reads across them (bounded: a stalled reader fails below). */
	for (int i = 0; i < rounds || (atomic_load(&h.reads) <= 1000 && i < 100 * rounds); i++) {
		if (h.yield)
			sched_yield();
		/* two regions, both new every time (different file each round),
		 * so the old mappings really are unmapped under the reader */
		struct vhu_mem_region r[2] = { reg(0, 2 * MB, 0x1000000, 0),
					       reg(2 * MB, 2 * MB, 0x3000000, 2 * MB) };
		int fds[2] = { dup(files[i & 1]), dup(files[i & 1]) };

		if (i % 100 == 99) {
			vhu_mem_clear(&m);
			close(fds[0]);
			close(fds[1]);
			continue;
		}
		ck_assert_int_eq(vhu_mem_set_table(&m, r, fds, 2), 0);
	}
	atomic_store(&h.stop, true);
	pthread_join(th, NULL);
	ck_assert_uint_gt(atomic_load(&h.reads), 1000);
	ck_assert_uint_eq(h.wrong, 0);
	ck_assert_int_eq(tu_count_fds(), nfd);
	/* Nothing leaked: RSS does not grow with the number of replacements. */
	ck_assert_int_lt(tu_rss_pages() - rss0, tu_rss_bound(2048));
	vhu_mem_destroy(&m);
	close(files[0]);
	close(files[1]);
}
END_TEST

/* A reader that never leaves its section: the writer gives up waiting
 * (after its timeout) and keeps the old mapping rather than unmap it. */
START_TEST(stuck_reader_keeps_mapping)
{
	struct vhu_mem m;
	struct vhu_mem_reader r;
	int fd = make_memfd(MB, 3, false);
	struct vhu_mem_region rg = reg(0, MB, 0x1000000, 0);
	int fds[1] = { dup(fd) };

	ck_assert_int_eq(vhu_mem_init(&m, 8, 1, &lg), 0);
	ck_assert_int_eq(vhu_mem_reader_add(&m, &r), 0);
	ck_assert_int_eq(vhu_mem_set_table(&m, &rg, fds, 1), 0);
	const struct vhu_memtable *t = vhu_mem_read_begin(&m, &r);
	uint64_t len = 1;
	volatile uint8_t *p = vhu_gpa_to_va(t, 0, &len);
	vhu_mem_clear(&m); /* waits 5 s, then keeps the mapping */
	ck_assert(tu_log_contains("stayed inside a section"));
	ck_assert_uint_eq(*p, 3); /* still mapped: no fault */
	vhu_mem_read_end(&r);
	vhu_mem_destroy(&m);
	close(fd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mem");
	TCase *tc = tcase_create("mem");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, translate_basic);
	tcase_add_test(tc, many_slots);
	tcase_add_test(tc, shm_and_hugetlbfs);
	tcase_add_test(tc, bad_regions);
	tcase_add_test(tc, replace_keeps_shared_regions);
	tcase_add_test(tc, replace_under_concurrent_reader);
	tcase_add_test(tc, stuck_reader_keeps_mapping);
	suite_add_tcase(s, tc);
	return tu_run_suite(s);
}
