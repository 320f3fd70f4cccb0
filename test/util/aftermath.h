/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What every hostile-input test asserts once the attack is over, on top of
 * the documented error it checks itself (shared/HOSTILE-INPUTS.md: "no
 * crash, no leak of fds or memory, other devices keep running, and a fresh
 * connection works afterwards"):
 *
 *	tcase_add_checked_fixture(tc, aftermath_setup, aftermath_teardown);
 *
 *	START_TEST(an_attack)
 *	{
 *		... attack the device, assert the refusal, hang-up or broken
 *		    queue; close the hostile connection ...
 *		aftermath_check(&(struct aftermath_target){ .dev = dev,
 *							   .path = path });
 *		... free the device and everything else the test made ...
 *	}
 *
 * aftermath_setup() counts the open fds (/proc/self/fd) and the mappings of
 * guest memory (/memfd: lines of /proc/self/maps), reads the RSS
 * (/proc/self/statm), and brings up a bystander: a second device with live
 * rings (2 queues of 8, one 1 MiB region) and its front-end, served by a
 * thread of its own.
 *
 * aftermath_check() moves a buffer both ways through each of the
 * bystander's queues; then a fresh front-end connects to the attacked
 * device and goes through the whole session: handshake, memory, rings, and
 * a buffer both ways through queues 0 and 1 (the test thread plays the
 * device's data plane); then it leaves.  May be called more than once.
 *
 * aftermath_teardown() frees the bystander and asserts that the fds and
 * guest-memory mappings are those of before the test, that the RSS grew by
 * less than tu_rss_bound(AFTERMATH_RSS_PAGES), and that aftermath_check()
 * ran.  So everything the test made must be freed by the end of the test.
 *
 * The fixture works forked and with CK_FORK=no (valgrind runs): it keeps
 * one bystander at a time, in this process.
 */
#ifndef VHU_AFTERMATH_H
#define VHU_AFTERMATH_H

#include <stdbool.h>

struct env;
struct tu_backend;
struct vhu_dev;

/* RSS growth allowed over one test: pages the process faults in for the
 * first time (library code, thread stacks, allocator arenas), not the
 * guest memory of the sessions, which the mapping count covers exactly. */
#define AFTERMATH_RSS_PAGES 1024

/* The attacked device. */
struct aftermath_target {
	struct vhu_dev *dev;
	/* Where it listens (server mode); its hostile front-end must be gone
	 * or going (the check waits until the device has seen it leave). */
	const char *path;
	/* The thread serving it, or NULL: then the check serves the device
	 * from a thread of its own meanwhile, and the caller must not touch
	 * the device until the check returns. */
	struct tu_backend *be;
	bool packed; /* the fresh session's rings */
};

void aftermath_setup(void);
void aftermath_teardown(void);
void aftermath_check(const struct aftermath_target *t);
/* For a device of vqenv.h: its front-end leaves (env_disconnect), then
 * aftermath_check() with the env's device, path, thread and ring layout. */
void aftermath_env(struct env *e);

#endif
