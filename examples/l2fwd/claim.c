/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Taking the NIC: one vhu-l2fwd per interface, and what a dead one left.
 *
 * A lock file per (network namespace, interface) under /run, held with
 * flock() for the life of the process: the kernel drops it when the
 * process ends however it ends (SIGKILL included), so holding it proves
 * that no other vhu-l2fwd serves the interface any more.  Then an XDP
 * program of libxdp's AF_XDP kind (xsk_def_prog, alone or under libxdp's
 * dispatcher) still attached was left by a vhu-l2fwd that died before it
 * could detach it: it is detached, and this instance attaches its own,
 * which it detaches when it exits.  Any other program is not ours to
 * touch: the socket set-up then fails and says so.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xdp/libxdp.h>

#include "l2fwd.h"

#define XSK_PROG_NAME "xsk_def_prog"

/* The lock this process holds, removed at a clean exit. */
static char lock_path[128];

static int lock_nic(const char *iface, char *err, size_t errlen)
{
	char *path = lock_path, owner[32] = "";
	struct stat ns;
	ssize_t n;
	int fd;

	if (stat("/proc/self/ns/net", &ns))
		ns.st_ino = 0;
	snprintf(path, sizeof(lock_path), "/run/vhu-l2fwd.%lu.%s.lock",
		 (unsigned long)ns.st_ino, iface);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;

		snprintf(err, errlen, "cannot open the lock file %s: %s%s", path,
			 strerror(e), e == EACCES || e == EPERM ?
			 " (XDP and /run need privileges: run as root)" : "");
		path[0] = 0;
		return -e;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int e = errno;

		n = pread(fd, owner, sizeof(owner) - 1, 0);
		owner[n > 0 ? n : 0] = 0;
		owner[strcspn(owner, "\n")] = 0;
		snprintf(err, errlen, "another vhu-l2fwd (pid %s) serves %s (%s)",
			 owner[0] ? owner : "?", iface, path);
		close(fd);
		path[0] = 0;
		return e == EWOULDBLOCK ? -EBUSY : -e;
	}
	/* Held until the process ends: the fd stays open. */
	n = snprintf(owner, sizeof(owner), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, owner, (size_t)n, 0) != n)
		fprintf(stderr, "vhu-l2fwd: warning: cannot write %s\n", path);
	return 0;
}

/* Is every program of @mp libxdp's AF_XDP program? */
static bool only_xsk_programs(struct xdp_multiprog *mp)
{
	struct xdp_program *p;

	if (xdp_multiprog__is_legacy(mp))
		return !strcmp(xdp_program__name(xdp_multiprog__main_prog(mp)),
			       XSK_PROG_NAME);
	p = xdp_multiprog__next_prog(NULL, mp);
	if (!p)
		return false;
	for (; p; p = xdp_multiprog__next_prog(p, mp))
		if (strcmp(xdp_program__name(p), XSK_PROG_NAME))
			return false;
	return true;
}

int l2_nic_claim(const char *iface, char *err, size_t errlen)
{
	int ifindex = (int)if_nametoindex(iface), rc;
	struct xdp_multiprog *mp;

	rc = lock_nic(iface, err, errlen);
	if (rc)
		return rc;
	mp = xdp_multiprog__get_from_ifindex(ifindex);
	if (libxdp_get_error(mp) || !mp)
		return 0; /* nothing attached (or nothing libxdp can read) */
	if (only_xsk_programs(mp)) {
		rc = xdp_multiprog__detach(mp);
		if (rc)
			fprintf(stderr, "vhu-l2fwd: warning: cannot detach the XDP "
				"program a previous vhu-l2fwd left on %s: %s\n", iface,
				strerror(-rc));
		else
			printf("vhu-l2fwd: detached the XDP program a previous "
			       "vhu-l2fwd left on %s\n", iface);
	}
	xdp_multiprog__close(mp);
	return 0;
}

void l2_nic_release(void)
{
	/* Still held: a newcomer that opened it meanwhile finds it locked
	 * and says so; the next one creates a fresh file. */
	if (lock_path[0])
		unlink(lock_path);
}
