/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Where a packed ring really is, read from the ring itself.
 *
 * A packed ring keeps the device's position only in the device: after a
 * back-end crash QEMU 7.2 hands the new back-end the position of the last
 * clean stop (often the start of the ring) while the driver is laps ahead.
 * Resuming there writes used descriptors where the driver does not look:
 * the queue never moves again.  So when a packed ring starts, vhu finds
 * the position in the descriptor ring (docs/reconnect.md has the rule and
 * why a hostile guest cannot turn it against anyone but itself):
 *
 * 1. Every slot holds what was last written at one position of the
 *    driver's last N (the driver writes each position in turn, the device
 *    only positions the driver already wrote), and the AVAIL bit of any
 *    descriptor, available or used, is the wrap counter of its position.
 *    So slots [0, a) are of the driver's current lap and [a, N) of the one
 *    before, where a is the first slot whose AVAIL bit differs from slot
 *    0's: in position order the ring reads [a, N) then [0, a), and the
 *    driver's next position is slot a (N: slot 0 of the next lap).
 * 2. A device that uses buffers in the order it takes them (vhu's
 *    virtio-net does) leaves, from the oldest position of the window, used
 *    descriptors each followed by the next one ndesc positions later, the
 *    positions between being the rest of its chain or in-order batch.
 *    vhu writes ndesc into the used descriptor's address field (unused in
 *    used descriptors, VIRTIO 1.2 §2.8.5) with a tag, and a skip mark into
 *    the address of each descriptor it skips (consumed: nobody reads it
 *    again): a skipped descriptor whose used one the driver has already
 *    overwritten is still known for what it is.  An untagged used
 *    descriptor (another back-end's, or the zeroed ring of a fresh queue)
 *    counts 1.  The walk ends at the device's used position U.
 * 3. A used descriptor vhu had written all but the flags of (a crash in
 *    the middle of a push; the flags go last) carries the tag with
 *    available flags: its push is finished (flags written) and the walk
 *    goes on.  Its buffer was processed; its descriptor no longer
 *    describes it, so it could not be taken again anyway.
 * 4. Every position from U to the driver's must be available: the device
 *    resumes at U for both its used and its avail position, taking again
 *    the buffers that were in flight (a TX frame may go twice, RX buffers
 *    are filled anew).  When that fails, the walk is tried again from the
 *    first used descriptor (a ring another back-end left, without marks);
 *    when that fails too, no position fits: the queue breaks.
 *
 * Buffers completed out of order cannot be recovered from the ring (which
 * buffers were in flight is known only to the device that died): devices
 * that do that need inflight tracking (VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD).
 */
#include "rings/vq.h"

#include <stdlib.h>
#include <time.h>

struct scan {
	struct vring_packed_desc *ring;
	uint16_t *flags; /* snapshot: each slot's flags read once */
	uint32_t n;
	uint32_t a;      /* first slot of the older lap (n: none) */
	bool w_new;      /* wrap counter of slots [0, a) */
};

/* Age t in [0, n]: t = 0 is the oldest position of the window, n the
 * driver's next one. */
static uint32_t slot_of(const struct scan *s, uint32_t t)
{
	return (s->a + t) % s->n;
}

static bool lap_of(const struct scan *s, uint32_t t)
{
	if (t == s->n) /* the driver's next position */
		return s->a == s->n ? !s->w_new : s->w_new;
	return t >= s->n - s->a ? s->w_new : !s->w_new;
}

static bool is_used(const struct scan *s, uint32_t t)
{
	uint16_t f = s->flags[slot_of(s, t)];
	bool w = lap_of(s, t);

	return (bool)(f & VRING_PACKED_DESC_F_AVAIL) == w &&
	       (bool)(f & VRING_PACKED_DESC_F_USED) == w;
}

static bool is_avail(const struct scan *s, uint32_t t)
{
	uint16_t f = s->flags[slot_of(s, t)];
	bool w = lap_of(s, t);

	return (bool)(f & VRING_PACKED_DESC_F_AVAIL) == w &&
	       (bool)(f & VRING_PACKED_DESC_F_USED) != w;
}

/* The ndesc vhu tagged slot @t with, or 0 when it has no valid tag. */
static uint32_t tag_of(const struct scan *s, uint32_t t)
{
	uint64_t addr = ld64(&s->ring[slot_of(s, t)].addr);
	uint32_t nd = (uint32_t)(addr & ~VHU_USED_TAG_MASK);

	if ((addr & VHU_USED_TAG_MASK) != VHU_USED_TAG || nd == 0 || nd > s->n)
		return 0;
	return nd;
}

static bool skipped(const struct scan *s, uint32_t t)
{
	return is_avail(s, t) && ld64(&s->ring[slot_of(s, t)].addr) == VHU_SKIP_TAG;
}

/* Made available and not consumed: no mark of vhu's on it. */
static bool in_flight(const struct scan *s, uint32_t t)
{
	return is_avail(s, t) && !tag_of(s, t) && !skipped(s, t);
}

static void snapshot(struct scan *s)
{
	for (uint32_t i = 0; i < s->n; i++)
		s->flags[i] = ld16(&s->ring[i].flags);
	s->w_new = s->flags[0] & VRING_PACKED_DESC_F_AVAIL;
	for (s->a = 1; s->a < s->n; s->a++)
		if ((bool)(s->flags[s->a] & VRING_PACKED_DESC_F_AVAIL) != s->w_new)
			break;
}

/*
 * One pass over a snapshot, from the oldest position (@lenient: from the
 * first used descriptor): *@u the age of the device's position, *@exact
 * whether the last step was on vhu's marks (ndesc known), *@finished how
 * many half-pushed descriptors were finished.  NULL, or why no position
 * fits.
 */
static const char *walk(struct scan *s, bool lenient, uint32_t *u, bool *exact,
			unsigned *finished)
{
	uint32_t t = 0;

	*exact = true; /* nothing used in the window: the oldest position */
	*finished = 0;
	if (lenient) {
		while (t < s->n && !is_used(s, t) && !(is_avail(s, t) && tag_of(s, t)))
			t++;
		if (t == s->n)
			t = 0;
	}
	while (t < s->n) {
		uint32_t nd = tag_of(s, t);

		if (skipped(s, t)) {
			*exact = true;
			t++;
			continue;
		}
		if (is_avail(s, t) && nd) {
			/* Step 3: a push cut short before its flags. */
			struct vring_packed_desc *d = &s->ring[slot_of(s, t)];
			uint16_t f = lap_of(s, t) ? VRING_PACKED_DESC_F_AVAIL |
						    VRING_PACKED_DESC_F_USED : 0;

			if (ld32(&d->len))
				f |= VRING_DESC_F_WRITE;
			if (ld16(&d->id) >= s->n)
				return "a half-written used descriptor names a buffer "
				       "id beyond the ring";
			/* The marks it may not have had time for, then the
			 * flags (release: the marks first). */
			put_skip_marks(s->ring, s->n, slot_of(s, t), nd);
			st16_release(&d->flags, f);
			s->flags[slot_of(s, t)] = f;
			(*finished)++;
		} else if (!is_used(s, t)) {
			break;
		}
		*exact = nd != 0;
		t += nd ? nd : 1;
	}
	if (t > s->n)
		return "a used descriptor spans past the driver's position";
	*u = t;
	for (; t < s->n; t++)
		if (!in_flight(s, t))
			return "a descriptor between the device's and the driver's "
			       "position is not one the driver made available";
	return NULL;
}

/* Is the front-end's base (@idx, @wrap) the position of age *@t? */
static bool base_age(const struct scan *s, uint16_t idx, bool wrap, uint32_t *t)
{
	uint32_t age = (idx + s->n - s->a) % s->n;

	if (age == 0 && idx == slot_of(s, s->n) && wrap == lap_of(s, s->n)) {
		*t = s->n;
		return true;
	}
	*t = age;
	return lap_of(s, age) == wrap;
}

int vhu_vq_recover_packed(struct vhu_vq *vq)
{
	struct scan s = { .ring = vq->desc, .n = vq->size };
	const char *why = NULL;
	unsigned finished = 0;
	uint32_t u = 0, tb;
	bool exact = false;

	s.flags = malloc(sizeof(*s.flags) * s.n);
	if (!s.flags)
		return -ENOMEM;
	/* The guest runs meanwhile; it only adds descriptors at its own
	 * position, so a snapshot torn by that settles in a retry. */
	for (int tries = 0; tries < 4; tries++) {
		if (tries)
			nanosleep(&(struct timespec){ .tv_nsec = 2000000 }, NULL);
		snapshot(&s);
		why = walk(&s, false, &u, &exact, &finished);
		if (why)
			why = walk(&s, true, &u, &exact, &finished);
		if (!why)
			break;
	}
	if (why) {
		free(s.flags);
		vhu_err(&vq->dev->lg, "queue %u: packed ring fits no device position: "
			"%s", vq->index, why);
		return -EIO;
	}
	/* An exact walk wins; an inexact one (another back-end's used
	 * descriptors, ndesc unknown) yields to a base that fits: at or past
	 * the last used descriptor, with only available ones after it. */
	if (!exact && base_age(&s, vq->used_idx, vq->used_wrap, &tb) && tb >= u) {
		bool fits = true;

		for (uint32_t t = tb; t < s.n && fits; t++)
			fits = in_flight(&s, t);
		if (fits)
			u = tb;
	}
	uint16_t idx = (uint16_t)slot_of(&s, u);
	bool wrap = lap_of(&s, u);

	free(s.flags);
	if (finished)
		vhu_dirty_log_ring_written(vq);
	if (idx != vq->used_idx || wrap != vq->used_wrap ||
	    idx != vq->last_avail_idx || wrap != vq->avail_wrap || finished)
		vhu_warn(&vq->dev->lg, "queue %u: packed ring resumes at slot %u wrap "
			 "%d, not at the base given (avail %u/%d, used %u/%d)%s; "
			 "buffers in flight are taken again", vq->index, idx, wrap,
			 vq->last_avail_idx, vq->avail_wrap, vq->used_idx,
			 vq->used_wrap, finished ? ", a half-written push finished" : "");
	vq->last_avail_idx = vq->used_idx = idx;
	vq->avail_wrap = vq->used_wrap = wrap;
	return 0;
}
