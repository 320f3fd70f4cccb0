/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The test frontend's driver-side rings, checked against a small device
 * model written here from VIRTIO 1.2 sections 2.7 and 2.8 (not from the
 * frontend's code), over plain memory: split and packed, wrap-around over
 * many laps, indirect tables, out-of-order and in-order completion,
 * notification suppression and event indexes, and a device that lies.
 * Also the fe's guest memory (layout, copies across regions, allocator).
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fe.h"
#include "testutil.h"

#define MEM_SIZE (1u << 20)
#define RING_GPA 0x1000u   /* gpa == offset in mem */
#define DATA_GPA 0x40000u

static uint8_t *mem;

static void *gpa_ptr(uint64_t gpa)
{
	FAST(gpa < MEM_SIZE);
	return mem + gpa;
}

static void setup(void)
{
	mem = aligned_alloc(4096, MEM_SIZE);
	FAST(mem != NULL);
	memset(mem, 0xee, MEM_SIZE);
	srandom(1234);
}

static void teardown(void)
{
	free(mem);
	mem = NULL;
}

static unsigned rnd(unsigned n)
{
	return n ? (unsigned)random() % n : 0;
}

/* ---- device model ---- */

struct dbuf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

struct dchain {
	uint16_t id;     /* split: head; packed: buffer id */
	uint16_t ndesc;  /* ring descriptors it took */
	unsigned n;
	struct dbuf b[8];
};

struct dev {
	struct vhu_fe_ring *r; /* for addresses and num only */
	uint16_t last_avail;   /* split: free-running; packed: slot */
	bool avail_wrap;
	uint16_t used_idx;     /* split: free-running; packed: slot */
	bool used_wrap;
	uint16_t signalled_used; /* split event idx: used idx at last check */
};

static void dev_init(struct dev *d, struct vhu_fe_ring *r)
{
	memset(d, 0, sizeof(*d));
	d->r = r;
	d->avail_wrap = d->used_wrap = true;
}

static uint16_t le16(const void *p)
{
	return vhu_fe_ld16(p);
}

/* Walk an indirect table (split format when !packed). */
static void dev_indirect(struct dev *d, uint64_t gpa, uint32_t len,
			 struct dchain *c)
{
	unsigned n = len / 16;

	FAST((len % 16) == (0));
	FAST(n > 0);
	for (unsigned i = 0, k = 0; k < n; k++) {
		uint8_t *e = gpa_ptr(gpa + 16u * i);
		uint16_t flags = le16(e + (d->r->packed ? 14 : 12));

		FAST(!(flags & VHU_FE_DESC_F_INDIRECT));
		FAST(c->n < 8);
		c->b[c->n++] = (struct dbuf){ vhu_fe_ld64(e), vhu_fe_ld32(e + 8),
					      flags & VHU_FE_DESC_F_WRITE };
		if (d->r->packed) {
			i++;
		} else {
			if (!(flags & VHU_FE_DESC_F_NEXT)) {
				FAST((k + 1) == (n));
				break;
			}
			i = le16(e + 14);
			FAST(i < n);
		}
	}
}

/* Take the next available chain: 1, or 0 if none. */
static int dev_pop(struct dev *d, struct dchain *c)
{
	struct vhu_fe_ring *r = d->r;

	memset(c, 0, sizeof(*c));
	if (!r->packed) {
		uint8_t *avail = r->avail;
		uint16_t idx = le16(avail + 2), i;

		if (idx == d->last_avail)
			return 0;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		FAST(((uint16_t)(idx - d->last_avail)) <= (r->num));
		i = le16(avail + 4 + 2 * (d->last_avail % r->num));
		FAST(i < r->num);
		c->id = i;
		d->last_avail++;
		for (unsigned guard = 0;; guard++) {
			struct vhu_fe_split_desc *e = (struct vhu_fe_split_desc *)r->desc + i;
			uint16_t flags = le16(&e->flags);

			FAST(guard < r->num);
			c->ndesc++;
			if (flags & VHU_FE_DESC_F_INDIRECT) {
				FAST(!(flags & VHU_FE_DESC_F_NEXT));
				dev_indirect(d, vhu_fe_ld64(&e->addr),
					     vhu_fe_ld32(&e->len), c);
				break;
			}
			c->b[c->n++] = (struct dbuf){ vhu_fe_ld64(&e->addr),
						      vhu_fe_ld32(&e->len),
						      flags & VHU_FE_DESC_F_WRITE };
			if (!(flags & VHU_FE_DESC_F_NEXT))
				break;
			i = le16(&e->next);
			FAST(i < r->num);
		}
		return 1;
	}
	for (unsigned guard = 0;; guard++) {
		struct vhu_fe_packed_desc *e =
			(struct vhu_fe_packed_desc *)r->desc + d->last_avail;
		uint16_t flags = le16(&e->flags);
		bool a = flags & VHU_FE_DESC_F_AVAIL, u = flags & VHU_FE_DESC_F_USED;

		if (guard == 0) {
			if (a != d->avail_wrap || u == d->avail_wrap)
				return 0;
			__atomic_thread_fence(__ATOMIC_ACQUIRE);
		} else {
			/* The rest of a chain is available in the same lap. */
			FAST(a == d->avail_wrap && u != d->avail_wrap);
		}
		FAST(guard < r->num);
		c->ndesc++;
		c->id = le16(&e->id); /* the last one's counts */
		if (flags & VHU_FE_DESC_F_INDIRECT)
			dev_indirect(d, vhu_fe_ld64(&e->addr), vhu_fe_ld32(&e->len), c);
		else
			c->b[c->n++] = (struct dbuf){ vhu_fe_ld64(&e->addr),
						      vhu_fe_ld32(&e->len),
						      flags & VHU_FE_DESC_F_WRITE };
		if (++d->last_avail == r->num) {
			d->last_avail = 0;
			d->avail_wrap = !d->avail_wrap;
		}
		if (!(flags & VHU_FE_DESC_F_NEXT))
			return 1;
		FAST(!(flags & VHU_FE_DESC_F_INDIRECT));
	}
}

/* Return a chain as used: @ndesc is how far a packed device moves on (the
 * chain's descriptors, or a whole in-order batch's). */
static void dev_push(struct dev *d, uint16_t id, uint32_t len, uint16_t ndesc)
{
	struct vhu_fe_ring *r = d->r;

	if (!r->packed) {
		struct vhu_fe_used_elem *e = (struct vhu_fe_used_elem *)
			((uint8_t *)r->used + 4) + d->used_idx % r->num;

		vhu_fe_st32(&e->id, id);
		vhu_fe_st32(&e->len, len);
		__atomic_thread_fence(__ATOMIC_RELEASE);
		vhu_fe_st16((uint8_t *)r->used + 2, ++d->used_idx);
		return;
	}
	{
		struct vhu_fe_packed_desc *e =
			(struct vhu_fe_packed_desc *)r->desc + d->used_idx;
		uint16_t f = d->used_wrap ? VHU_FE_DESC_F_AVAIL | VHU_FE_DESC_F_USED : 0;

		vhu_fe_st16(&e->id, id);
		vhu_fe_st32(&e->len, len);
		__atomic_thread_fence(__ATOMIC_RELEASE);
		vhu_fe_st16(&e->flags, f);
		d->used_idx += ndesc;
		if (d->used_idx >= r->num) {
			d->used_idx -= r->num;
			d->used_wrap = !d->used_wrap;
		}
	}
}

/* ---- driver side bookkeeping of the test ---- */

struct inflight {
	bool live;
	unsigned n_out, n_in;
	struct vhu_fe_buf b[8];
	uint32_t in_len;
	uint16_t ndesc;
	uint16_t id;
};

/* Add a random chain; the token is its inflight record.  -ENOSPC when full. */
static int add_random(struct vhu_fe_ring *r, struct inflight *f, unsigned nf,
		      uint64_t *data_gpa, bool allow_indirect)
{
	struct inflight *slot = NULL;
	unsigned n_out = rnd(3), n_in = rnd(3);
	bool indirect = allow_indirect && rnd(4) == 0;
	int id;

	for (unsigned i = 0; i < nf; i++)
		if (!f[i].live) {
			slot = &f[i];
			break;
		}
	FAST(slot != NULL);
	if (n_out + n_in == 0)
		n_in = 1;
	/* A direct chain longer than the ring can never fit (-EINVAL). */
	while (!indirect && n_out + n_in > r->num)
		n_out ? n_out-- : n_in--;
	memset(slot, 0, sizeof(*slot));
	slot->n_out = n_out;
	slot->n_in = n_in;
	for (unsigned k = 0; k < n_out + n_in; k++) {
		slot->b[k].gpa = *data_gpa;
		slot->b[k].len = 1 + rnd(4000);
		if (k >= n_out)
			slot->in_len += slot->b[k].len;
		*data_gpa += 4096;
		if (*data_gpa >= MEM_SIZE)
			*data_gpa = DATA_GPA;
	}
	if (indirect) {
		uint64_t tgpa = 0x20000u + 256u * (unsigned)(slot - f);

		id = vhu_fe_ring_add_indirect(r, slot->b, n_out, n_in,
					      gpa_ptr(tgpa), tgpa, slot);
		slot->ndesc = 1;
	} else {
		id = vhu_fe_ring_add(r, slot->b, n_out, n_in, slot);
		slot->ndesc = (uint16_t)(n_out + n_in);
	}
	if (id >= 0) {
		slot->live = true;
		slot->id = (uint16_t)id;
	}
	return id;
}

static void check_chain(const struct dchain *c, const struct inflight *f)
{
	FAST((c->n) == (f->n_out + f->n_in));
	for (unsigned k = 0; k < c->n; k++) {
		FAST(c->b[k].gpa == f->b[k].gpa);
		FAST(c->b[k].len == f->b[k].len);
		FAST((c->b[k].write) == (k >= f->n_out));
	}
	FAST(c->id == f->id);
	FAST(c->ndesc == f->ndesc);
}

static struct inflight *find_by_id(struct inflight *f, unsigned nf, uint16_t id)
{
	for (unsigned i = 0; i < nf; i++)
		if (f[i].live && f[i].id == id)
			return &f[i];
	return NULL;
}

/*
 * Many rounds: the driver fills part of the ring, the device takes
 * everything, checks it, completes it in random order (or in order, in
 * batches, when @in_order) and the driver reaps it all.
 */
static void run_traffic(bool packed, uint16_t num, unsigned flags,
			bool indirect, unsigned rounds)
{
	struct vhu_fe_ring r;
	struct dev d;
	struct inflight *f = calloc(num, sizeof(*f));
	struct dchain *got = calloc(num + 1u, sizeof(*got)); /* + the failed pop */
	uint64_t data = DATA_GPA;
	bool in_order = flags & VHU_FE_RING_IN_ORDER;

	FAST((vhu_fe_ring_init(&r, packed, num, gpa_ptr(RING_GPA),
					  RING_GPA, flags)) == (0));
	dev_init(&d, &r);
	for (unsigned round = 0; round < rounds; round++) {
		unsigned want = 1 + rnd(num), added = 0, npop = 0, reaped = 0;
		uint16_t id;
		uint32_t len;
		void *tok;
		int rc;

		while (added < want) {
			rc = add_random(&r, f, num, &data, indirect);
			if (rc == -ENOSPC)
				break;
			FAST(rc >= 0);
			added++;
		}
		FAST(added > 0);
		/* Nothing visible before publishing. */
		{
			struct dchain c;

			FAST((dev_pop(&d, &c)) == (0));
		}
		vhu_fe_ring_publish(&r);
		while (dev_pop(&d, &got[npop])) {
			struct inflight *fl = find_by_id(f, num, got[npop].id);

			FAST(fl != NULL);
			check_chain(&got[npop], fl);
			npop++;
		}
		FAST(npop == added);

		if (in_order) {
			/* Batches of 1..4 buffers, one used entry each. */
			for (unsigned i = 0; i < npop;) {
				unsigned b = 1 + rnd(4), ndesc = 0;

				if (i + b > npop)
					b = npop - i;
				for (unsigned k = 0; k < b; k++)
					ndesc += got[i + k].ndesc;
				dev_push(&d, got[i + b - 1].id, 7777, (uint16_t)ndesc);
				i += b;
			}
		} else {
			/* Random order. */
			for (unsigned i = npop; i > 1; i--) {
				unsigned j = rnd(i);
				struct dchain t = got[i - 1];

				got[i - 1] = got[j];
				got[j] = t;
			}
			for (unsigned i = 0; i < npop; i++)
				dev_push(&d, got[i].id, 1000 + i, got[i].ndesc);
		}

		for (unsigned i = 0;; i++) {
			struct inflight *fl;

			rc = vhu_fe_ring_get_used(&r, &id, &len, &tok);
			FAST(rc >= 0);
			if (rc == 0)
				break;
			fl = tok;
			FAST(fl->live);
			FAST(fl->id == id);
			if (in_order)
				FAST(len == 7777 || len == fl->in_len);
			else
				FAST((len) == (1000 + i));
			fl->live = false;
			reaped++;
		}
		FAST(reaped == added);
		FAST(r.num_free == num);
	}
	/* Where a device would start again: after the last used buffer. */
	if (packed) {
		uint32_t base = vhu_fe_ring_base(&r);

		FAST((base & 0x7fff) == (d.used_idx));
		FAST((!!(base & 0x8000)) == (d.used_wrap));
		FAST((base >> 16) == (base & 0xffff));
	} else {
		FAST((vhu_fe_ring_base(&r)) == (d.used_idx));
	}
	vhu_fe_ring_fini(&r);
	free(f);
	free(got);
}

static const uint16_t split_sizes[] = { 1, 2, 4, 8, 256 };
static const uint16_t packed_sizes[] = { 1, 3, 4, 7, 255, 256 };

START_TEST(split_traffic)
{
	run_traffic(false, split_sizes[_i], 0, false, 300);
}
END_TEST

START_TEST(split_traffic_indirect)
{
	run_traffic(false, split_sizes[_i], VHU_FE_RING_EVENT_IDX, true, 300);
}
END_TEST

START_TEST(split_in_order)
{
	run_traffic(false, split_sizes[_i], VHU_FE_RING_IN_ORDER, true, 300);
}
END_TEST

START_TEST(packed_traffic)
{
	run_traffic(true, packed_sizes[_i], 0, false, 300);
}
END_TEST

START_TEST(packed_traffic_indirect)
{
	run_traffic(true, packed_sizes[_i], VHU_FE_RING_EVENT_IDX, true, 300);
}
END_TEST

START_TEST(packed_in_order)
{
	run_traffic(true, packed_sizes[_i], VHU_FE_RING_IN_ORDER, true, 300);
}
END_TEST

/* In-order split: descriptors are taken in table order, next = x + 1. */
START_TEST(split_in_order_layout)
{
	struct vhu_fe_ring r;
	struct vhu_fe_buf b[3] = { { DATA_GPA, 10 }, { DATA_GPA + 4096, 20 },
				   { DATA_GPA + 8192, 30 } };
	struct vhu_fe_split_desc *desc;
	uint16_t id;
	uint32_t len;

	ck_assert_int_eq(vhu_fe_ring_init(&r, false, 4, gpa_ptr(RING_GPA), RING_GPA,
					  VHU_FE_RING_IN_ORDER), 0);
	desc = r.desc;
	ck_assert_int_eq(vhu_fe_ring_add(&r, b, 1, 1, NULL), 0);
	ck_assert_int_eq(vhu_fe_ring_add(&r, b, 1, 0, NULL), 2);
	/* Wraps from slot 3 to slot 0 only once slot 0 is used again. */
	ck_assert_int_eq(vhu_fe_ring_add(&r, b, 1, 1, NULL), -ENOSPC);
	vhu_fe_ring_publish(&r);
	ck_assert_uint_eq(le16(&desc[0].next), 1);
	/* One used entry for both: head 2 */
	{
		struct dev d;
		struct dchain c;

		dev_init(&d, &r);
		ck_assert_int_eq(dev_pop(&d, &c), 1);
		ck_assert_int_eq(dev_pop(&d, &c), 1);
		dev_push(&d, 2, 5, 3);
	}
	ck_assert_int_eq(vhu_fe_ring_get_used(&r, &id, &len, NULL), 1);
	ck_assert_uint_eq(id, 0);
	ck_assert_uint_eq(len, 20);
	ck_assert_int_eq(vhu_fe_ring_get_used(&r, &id, &len, NULL), 1);
	ck_assert_uint_eq(id, 2);
	ck_assert_uint_eq(len, 5);
	ck_assert_int_eq(vhu_fe_ring_get_used(&r, &id, &len, NULL), 0);
	ck_assert_int_eq(vhu_fe_ring_add(&r, b, 2, 1, NULL), 3);
	ck_assert_uint_eq(le16(&desc[3].next), 0); /* x = num - 1 */
	ck_assert_uint_eq(le16(&desc[0].next), 1);
	ck_assert_uint_eq(le16(&desc[3].flags), VHU_FE_DESC_F_NEXT);
	vhu_fe_ring_fini(&r);
}
END_TEST

/* Split: NO_NOTIFY, avail_event, NO_INTERRUPT and used_event. */
START_TEST(split_notifications)
{
	struct vhu_fe_ring r;
	struct vhu_fe_buf b = { DATA_GPA, 64 };
	uint8_t *used_flags, *avail_flags, *avail_event, *used_event;

	/* Without event idx. */
	ck_assert_int_eq(vhu_fe_ring_init(&r, false, 8, gpa_ptr(RING_GPA), RING_GPA,
					  0), 0);
	used_flags = r.used;
	avail_flags = r.avail;
	ck_assert_int_ge(vhu_fe_ring_add(&r, &b, 1, 0, NULL), 0);
	vhu_fe_ring_publish(&r);
	ck_assert(vhu_fe_ring_needs_kick(&r));
	vhu_fe_st16(used_flags, VHU_FE_USED_F_NO_NOTIFY);
	ck_assert_int_ge(vhu_fe_ring_add(&r, &b, 1, 0, NULL), 0);
	vhu_fe_ring_publish(&r);
	ck_assert(!vhu_fe_ring_needs_kick(&r));
	vhu_fe_ring_disable_cb(&r);
	ck_assert_uint_eq(le16(avail_flags), VHU_FE_AVAIL_F_NO_INTERRUPT);
	vhu_fe_ring_enable_cb(&r);
	ck_assert_uint_eq(le16(avail_flags), 0);
	vhu_fe_ring_fini(&r);

	/* With event idx: kick iff the published range passed avail_event. */
	ck_assert_int_eq(vhu_fe_ring_init(&r, false, 8, gpa_ptr(RING_GPA), RING_GPA,
					  VHU_FE_RING_EVENT_IDX), 0);
	avail_event = (uint8_t *)r.used + 4 + 8 * 8;
	used_event = (uint8_t *)r.avail + 4 + 2 * 8;
	vhu_fe_st16(avail_event, 2); /* the device wants a kick when idx 2 goes */
	ck_assert_int_ge(vhu_fe_ring_add(&r, &b, 1, 0, NULL), 0);
	ck_assert_int_ge(vhu_fe_ring_add(&r, &b, 1, 0, NULL), 0);
	vhu_fe_ring_publish(&r); /* 0..1 */
	ck_assert(!vhu_fe_ring_needs_kick(&r));
	ck_assert_int_ge(vhu_fe_ring_add(&r, &b, 1, 0, NULL), 0);
	ck_assert_int_ge(vhu_fe_ring_add(&r, &b, 1, 0, NULL), 0);
	vhu_fe_ring_publish(&r); /* 2..3: passes 2 */
	ck_assert(vhu_fe_ring_needs_kick(&r));
	ck_assert_int_ge(vhu_fe_ring_add(&r, &b, 1, 0, NULL), 0);
	vhu_fe_ring_publish(&r); /* 4: already past */
	ck_assert(!vhu_fe_ring_needs_kick(&r));
	/* Reaping moves used_event along (interrupts wanted). */
	{
		struct dev d;
		struct dchain c;

		dev_init(&d, &r);
		while (dev_pop(&d, &c))
			dev_push(&d, c.id, 0, c.ndesc);
		for (int i = 0; i < 5; i++)
			ck_assert_int_eq(vhu_fe_ring_get_used(&r, NULL, NULL, NULL), 1);
		ck_assert_uint_eq(le16(used_event), 5);
		vhu_fe_ring_disable_cb(&r);
		ck_assert_int_ge(vhu_fe_ring_add(&r, &b, 1, 0, NULL), 0);
		vhu_fe_ring_publish(&r);
		ck_assert_int_eq(dev_pop(&d, &c), 1);
		dev_push(&d, c.id, 0, c.ndesc);
		ck_assert_int_eq(vhu_fe_ring_get_used(&r, NULL, NULL, NULL), 1);
		ck_assert_uint_eq(le16(used_event), 5); /* not moved */
		vhu_fe_ring_enable_cb(&r);
		ck_assert_uint_eq(le16(used_event), 6);
	}
	vhu_fe_ring_fini(&r);
}
END_TEST

/* Packed: the device event area decides kicks; the driver area carries
 * the driver's wishes. */
START_TEST(packed_notifications)
{
	struct vhu_fe_ring r;
	struct vhu_fe_buf b = { DATA_GPA, 64 };
	struct vhu_fe_event *dev_ev, *drv_ev;

	ck_assert_int_eq(vhu_fe_ring_init(&r, true, 4, gpa_ptr(RING_GPA), RING_GPA,
					  VHU_FE_RING_EVENT_IDX), 0);
	dev_ev = r.used;
	drv_ev = r.avail;
	ck_assert_ptr_eq(r.avail, (uint8_t *)r.desc + 64);
	ck_assert_ptr_eq(r.used, (uint8_t *)r.desc + 68);

	ck_assert_int_ge(vhu_fe_ring_add(&r, &b, 1, 0, NULL), 0);
	vhu_fe_ring_publish(&r);
	ck_assert(vhu_fe_ring_needs_kick(&r)); /* ENABLE (0) */
	vhu_fe_st16(&dev_ev->flags, VHU_FE_EVENT_F_DISABLE);
	ck_assert_int_ge(vhu_fe_ring_add(&r, &b, 1, 0, NULL), 0);
	vhu_fe_ring_publish(&r);
	ck_assert(!vhu_fe_ring_needs_kick(&r));
	/* DESC: kick when slot 3 in this lap (wrap 1) is made available. */
	vhu_fe_st16(&dev_ev->off_wrap, 3 | 0x8000);
	vhu_fe_st16(&dev_ev->flags, VHU_FE_EVENT_F_DESC);
	ck_assert_int_ge(vhu_fe_ring_add(&r, &b, 1, 0, NULL), 0);
	vhu_fe_ring_publish(&r); /* slot 2 */
	ck_assert(!vhu_fe_ring_needs_kick(&r));
	ck_assert_int_ge(vhu_fe_ring_add(&r, &b, 1, 0, NULL), 0);
	vhu_fe_ring_publish(&r); /* slot 3 */
	ck_assert(vhu_fe_ring_needs_kick(&r));
	ck_assert(!r.avail_wrap); /* wrapped */

	vhu_fe_ring_disable_cb(&r);
	ck_assert_uint_eq(le16(&drv_ev->flags), VHU_FE_EVENT_F_DISABLE);
	vhu_fe_ring_enable_cb(&r);
	ck_assert_uint_eq(le16(&drv_ev->flags), VHU_FE_EVENT_F_DESC);
	ck_assert_uint_eq(le16(&drv_ev->off_wrap), 0 | 0x8000);
	{
		struct dev d;
		struct dchain c;

		dev_init(&d, &r);
		ck_assert_int_eq(dev_pop(&d, &c), 1);
		dev_push(&d, c.id, 0, c.ndesc);
		ck_assert_int_eq(vhu_fe_ring_get_used(&r, NULL, NULL, NULL), 1);
		ck_assert_uint_eq(le16(&drv_ev->off_wrap), 1 | 0x8000);
	}
	vhu_fe_ring_fini(&r);

	/* Without event idx: DESC is not a valid device choice; kick. */
	ck_assert_int_eq(vhu_fe_ring_init(&r, true, 4, gpa_ptr(RING_GPA), RING_GPA,
					  0), 0);
	vhu_fe_ring_enable_cb(&r);
	ck_assert_uint_eq(le16(&((struct vhu_fe_event *)r.avail)->flags),
			  VHU_FE_EVENT_F_ENABLE);
	vhu_fe_ring_fini(&r);
}
END_TEST

/* Layouts and argument checks. */
START_TEST(layout)
{
	struct vhu_fe_ring_layout l;
	struct vhu_fe_ring r;

	ck_assert_int_eq(vhu_fe_ring_layout(false, 256, &l), 0);
	ck_assert_uint_eq(l.desc_off, 0);
	ck_assert_uint_eq(l.avail_off, 4096);
	ck_assert_uint_eq(l.used_off, 4096 + 4 + 512 + 2 + 2); /* aligned to 4 */
	ck_assert_uint_eq(l.used_off % 4, 0);
	ck_assert_uint_eq(l.total, l.used_off + 4 + 8 * 256 + 2);
	ck_assert_int_eq(vhu_fe_ring_layout(true, 255, &l), 0);
	ck_assert_uint_eq(l.total, 16 * 255 + 8);
	ck_assert_int_eq(vhu_fe_ring_layout(false, 3, &l), -EINVAL);
	ck_assert_int_eq(vhu_fe_ring_layout(false, 0, &l), -EINVAL);
	ck_assert_int_eq(vhu_fe_ring_layout(true, 32768, &l), 0);
	ck_assert_int_eq(vhu_fe_ring_init(&r, false, 8, gpa_ptr(RING_GPA + 8),
					  RING_GPA + 8, 0), -EINVAL);
	ck_assert_int_eq(vhu_fe_ring_init(&r, false, 8, gpa_ptr(RING_GPA),
					  RING_GPA, 0), 0);
	ck_assert_int_eq(vhu_fe_ring_add(&r, NULL, 0, 0, NULL), -EINVAL);
	ck_assert_int_eq(vhu_fe_ring_base(&r), 0);
	vhu_fe_ring_fini(&r);
	ck_assert_int_eq(vhu_fe_ring_init(&r, true, 8, gpa_ptr(RING_GPA),
					  RING_GPA, 0), 0);
	ck_assert_uint_eq(vhu_fe_ring_base(&r), 0x80008000u);
	vhu_fe_ring_fini(&r);
}
END_TEST

/* A device that returns ids never made available, or runs used->idx
 * ahead by more than the ring: the driver says -EPROTO, never crashes. */
START_TEST(lying_device)
{
	struct vhu_fe_ring r;
	struct vhu_fe_buf b = { DATA_GPA, 64 };
	struct dev d;
	struct dchain c;

	ck_assert_int_eq(vhu_fe_ring_init(&r, false, 8, gpa_ptr(RING_GPA), RING_GPA,
					  0), 0);
	dev_init(&d, &r);
	ck_assert_int_eq(vhu_fe_ring_add(&r, &b, 1, 0, NULL), 0);
	vhu_fe_ring_publish(&r);
	dev_push(&d, 5, 0, 1); /* head 5 was never used */
	ck_assert_int_eq(vhu_fe_ring_get_used(&r, NULL, NULL, NULL), -EPROTO);
	vhu_fe_ring_fini(&r);

	ck_assert_int_eq(vhu_fe_ring_init(&r, false, 8, gpa_ptr(RING_GPA), RING_GPA,
					  0), 0);
	vhu_fe_st16((uint8_t *)r.used + 2, 9);
	ck_assert_int_eq(vhu_fe_ring_get_used(&r, NULL, NULL, NULL), -EPROTO);
	vhu_fe_ring_fini(&r);

	ck_assert_int_eq(vhu_fe_ring_init(&r, true, 8, gpa_ptr(RING_GPA), RING_GPA,
					  0), 0);
	dev_init(&d, &r);
	ck_assert_int_eq(vhu_fe_ring_add(&r, &b, 1, 0, NULL), 0);
	ck_assert_int_eq(vhu_fe_ring_add(&r, &b, 1, 0, NULL), 1);
	vhu_fe_ring_publish(&r);
	ck_assert_int_eq(dev_pop(&d, &c), 1);
	dev_push(&d, 7, 0, 1); /* id 7 is not in flight */
	ck_assert_int_eq(vhu_fe_ring_get_used(&r, NULL, NULL, NULL), -EPROTO);
	vhu_fe_ring_fini(&r);

	/* A packed id added but not yet published cannot come back. */
	ck_assert_int_eq(vhu_fe_ring_init(&r, true, 8, gpa_ptr(RING_GPA), RING_GPA,
					  0), 0);
	dev_init(&d, &r);
	ck_assert_int_eq(vhu_fe_ring_add(&r, &b, 1, 0, NULL), 0);
	dev_push(&d, 0, 0, 1);
	ck_assert_int_eq(vhu_fe_ring_get_used(&r, NULL, NULL, NULL), -EPROTO);
	vhu_fe_ring_fini(&r);
}
END_TEST

/* ---- the fe's guest memory ---- */

START_TEST(guest_memory)
{
	struct vhu_fe_mem_opts mo = {
		.sz = sizeof(mo), .nregions = 3, .region_size = 1u << 20,
		.base_gpa = 0x100000, .mmap_offset = 8192,
	};
	int fds0 = tu_count_fds();
	const char *path = tu_sock_path("mem");
	struct vhu_fe *fe = vhu_fe_listen(path);
	struct vhu_fe_region *r0, *r1;
	uint8_t buf[300], back[300];
	uint64_t a, b, st;

	ck_assert_ptr_nonnull(fe);
	ck_assert_int_eq(vhu_fe_mem_setup(fe, &mo), 0);
	ck_assert_uint_eq(vhu_fe_mem_nregions(fe), 3);
	r0 = vhu_fe_mem_region(fe, 0);
	r1 = vhu_fe_mem_region(fe, 1);
	ck_assert_ptr_null(vhu_fe_mem_region(fe, 3));
	/* QEMU's user address: the fe's own mapping of the region. */
	ck_assert_uint_eq(r0->uva, (uintptr_t)r0->map + 8192);
	ck_assert_uint_eq(r0->map_len, (1u << 20) + 8192);
	ck_assert_uint_eq(r1->gpa, 0x200000);
	ck_assert_ptr_eq(vhu_fe_gpa_to_ptr(fe, 0x100010, 16), r0->map + 8192 + 16);
	ck_assert_uint_eq(vhu_fe_gpa_to_uva(fe, 0x200000), r1->uva);
	ck_assert_uint_eq(vhu_fe_gpa_to_uva(fe, 0x50), 0);
	ck_assert_ptr_null(vhu_fe_gpa_to_ptr(fe, 0x1ffff0, 32)); /* crosses */
	ck_assert_ptr_null(vhu_fe_gpa_to_ptr(fe, 0x400000, 1));
	/* Not sealed unless asked. */
	ck_assert_int_eq(fcntl(r0->fd, F_GET_SEALS) & F_SEAL_SHRINK, 0);

	/* Copies run across adjacent regions. */
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 13);
	ck_assert_int_eq(vhu_fe_mem_write(fe, 0x200000 - 100, buf, sizeof(buf)), 0);
	ck_assert_int_eq(vhu_fe_mem_read(fe, 0x200000 - 100, back, sizeof(back)), 0);
	ck_assert_mem_eq(buf, back, sizeof(buf));
	ck_assert_mem_eq(r1->map + 8192, buf + 100, 200);
	ck_assert_int_eq(vhu_fe_mem_write(fe, 0x400000 - 10, buf, 20), -EFAULT);

	/* The bump allocator: aligned, zeroed, inside one region. */
	ck_assert_int_eq(vhu_fe_mem_alloc(fe, 10, 0, &a), 0);
	ck_assert_uint_eq(a, 0x100000);
	ck_assert_int_eq(vhu_fe_mem_alloc(fe, 100, 4096, &b), 0);
	ck_assert_uint_eq(b, 0x101000);
	/* Straddling: the tail of one region and the untouched head of the
	 * next, adjacent one; once per boundary. */
	ck_assert_int_eq(vhu_fe_mem_alloc_straddle(fe, 64, &st), 0);
	ck_assert_uint_eq(st, 0x200000 - 32);
	ck_assert_ptr_null(vhu_fe_gpa_to_ptr(fe, st, 64));
	ck_assert_ptr_nonnull(vhu_fe_gpa_to_ptr(fe, st, 32));
	ck_assert_int_eq(vhu_fe_mem_alloc_straddle(fe, 64, &st), 0);
	ck_assert_uint_eq(st, 0x300000 - 32);
	ck_assert_int_eq(vhu_fe_mem_alloc_straddle(fe, 64, &st), -ENOMEM);
	/* What is left: no region has a free MiB; small pieces still fit. */
	ck_assert_int_eq(vhu_fe_mem_alloc(fe, 1u << 20, 0, &b), -ENOMEM);
	ck_assert_int_eq(vhu_fe_mem_alloc(fe, 4096, 0, &b), 0);
	ck_assert_uint_eq(b, 0x101068);
	ck_assert_int_eq(vhu_fe_mem_alloc(fe, 8, 3, &b), -EINVAL);
	/* More regions: overlapping refused, sealed on request. */
	ck_assert_int_eq(vhu_fe_mem_add(fe, 0x150000, 4096, 0, 0), -EEXIST);
	ck_assert_int_eq(vhu_fe_mem_add(fe, 0x1000000, 4096, 0, VHU_FE_MEM_SEAL), 3);
	ck_assert_int_eq(fcntl(vhu_fe_mem_region(fe, 3)->fd, F_GET_SEALS) &
			 (F_SEAL_SHRINK | F_SEAL_GROW), F_SEAL_SHRINK | F_SEAL_GROW);
	ck_assert_int_eq(ftruncate(vhu_fe_mem_region(fe, 3)->fd, 0), -1);
	ck_assert_int_eq(vhu_fe_mem_add(fe, 0x2000000, 0, 0, 0), -EINVAL);
	ck_assert_int_eq(vhu_fe_mem_add(fe, UINT64_MAX - 10, 4096, 0, 0), -EINVAL);
	/* No connection: requests say so. */
	ck_assert_int_eq(vhu_fe_set_mem_table(fe), -ENOTCONN);
	vhu_fe_free(fe);
	ck_assert_int_eq(access(path, F_OK), -1); /* the socket file is gone */
	ck_assert_int_eq(tu_count_fds(), fds0);
}
END_TEST

static Suite *ring_suite(void)
{
	Suite *s = suite_create("fe_ring");
	TCase *tc = tcase_create("ring");
	int ns = sizeof(split_sizes) / sizeof(split_sizes[0]);
	int np = sizeof(packed_sizes) / sizeof(packed_sizes[0]);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, split_traffic, 0, ns);
	tcase_add_loop_test(tc, split_traffic_indirect, 0, ns);
	tcase_add_loop_test(tc, split_in_order, 0, ns);
	tcase_add_loop_test(tc, packed_traffic, 0, np);
	tcase_add_loop_test(tc, packed_traffic_indirect, 0, np);
	tcase_add_loop_test(tc, packed_in_order, 0, np);
	tcase_add_test(tc, split_in_order_layout);
	tcase_add_test(tc, split_notifications);
	tcase_add_test(tc, packed_notifications);
	tcase_add_test(tc, layout);
	tcase_add_test(tc, lying_device);
	suite_add_tcase(s, tc);
	tc = tcase_create("mem");
	tcase_add_test(tc, guest_memory);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run_suite(ring_suite());
}
