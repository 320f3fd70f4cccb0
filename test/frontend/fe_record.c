/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Recording sessions as fuzz seeds: with VHU_FE_RECORD=DIR in the
 * environment, every message a front-end sends is appended to
 * DIR/session-<pid>-<n>, one file per front-end, in fuzz_session's input
 * format (fuzz/fuzz_session.c): request, flags, payload length, fd spec,
 * payload, then a size for each memfd.  scripts/fuzz-seeds.sh turns the
 * test suites' sessions into the checked-in corpus this way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fe_int.h"

/* fd kinds of fuzz/fuzz_common.c fz_make_fd() (2 bits each in the spec). */
enum { FZ_KIND_MEMFD = 0, FZ_KIND_EVENTFD = 2 };

void fe_record(struct vhu_fe *fe, uint32_t request, uint32_t flags,
	       const void *payload, size_t len, const int *fds, size_t nfds)
{
	const char *dir = getenv("VHU_FE_RECORD");
	static unsigned seq;
	uint8_t head[4], sizes[3][2];
	unsigned nsizes = 0;

	if (!dir)
		return;
	if (!fe->record) {
		char path[512];

		snprintf(path, sizeof(path), "%s/session-%d-%u", dir, (int)getpid(),
			 __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED));
		fe->record = fopen(path, "we");
		if (!fe->record)
			return;
	}
	if (len > 255)
		len = 255; /* the format's limit; the rest is lost */
	if (nfds > 3)
		nfds = 3;
	head[0] = (uint8_t)request;
	head[1] = (uint8_t)(flags & VHU_FLAG_NEED_REPLY);
	head[2] = (uint8_t)len;
	head[3] = (uint8_t)nfds;
	for (size_t i = 0; i < nfds; i++) {
		struct stat st;
		unsigned kind = FZ_KIND_EVENTFD;

		if (fstat(fds[i], &st) == 0 && S_ISREG(st.st_mode)) {
			uint64_t pages = (uint64_t)st.st_size / 4096;
			uint16_t enc = (uint16_t)(pages ? (pages > 65536 ? 65535 : pages - 1) : 0);

			kind = FZ_KIND_MEMFD;
			memcpy(sizes[nsizes++], &enc, 2);
		}
		head[3] |= (uint8_t)(kind << (2 + 2 * i));
	}
	fwrite(head, 1, sizeof(head), fe->record);
	fwrite(payload, 1, len, fe->record);
	for (unsigned i = 0; i < nsizes; i++)
		fwrite(sizes[i], 1, 2, fe->record);
	fflush(fe->record);
}

void fe_record_close(struct vhu_fe *fe)
{
	if (fe->record)
		fclose(fe->record);
	fe->record = NULL;
}
