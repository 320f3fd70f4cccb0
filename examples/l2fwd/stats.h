/* SPDX-License-Identifier: BSD-3-Clause */
/* vhu-l2fwd counters: one line per interval, both directions (stats.c). */
#ifndef L2FWD_STATS_H
#define L2FWD_STATS_H

#include "l2fwd.h"

/** l2_stats_init() - take the first snapshot (the rates' starting point). */
void l2_stats_init(struct l2_shared *sh);
/** l2_stats_print() - print "@tag: ..." with totals, rates since the last
 *  line, and drops by reason (control thread). */
void l2_stats_print(struct l2_shared *sh, const char *tag);

/** l2_stats_pairs() - per queue pair counters, for the final report. */
void l2_stats_pairs(struct l2_shared *sh);

#endif
