/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhu-blk's request parser (examples/blk/req.c) against well-formed and
 * malformed requests, over plain memory: headers split at every byte,
 * status bytes missing, empty or in the wrong direction, sector ranges
 * that overflow or pass the capacity, data lengths, GET_ID buffers,
 * DISCARD / WRITE_ZEROES range lists, unknown types, read-only disks.
 * Each case asserts the exact status, status location and parsed values.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "req.h"
#include "testutil.h"

#define CAP 1024u /* sectors */
#define MAXSEG 64

static const struct blk_limits lim = {
	.capacity = CAP, .max_discard_sectors = 256, .max_wz_sectors = 128,
	.max_ranges = BLK_MAX_RANGES,
};
static const struct blk_limits lim_ro = {
	.capacity = CAP, .max_discard_sectors = 256, .max_wz_sectors = 128,
	.max_ranges = BLK_MAX_RANGES, .read_only = true,
};

/* A request over a private buffer: readable segments carry @out's bytes
 * cut at the lengths given, writable ones are filled with 0xee. */
struct mreq {
	uint8_t mem[64 * 1024];
	size_t used;
	struct vhu_seg segs[MAXSEG];
	struct vhu_req req;
	struct iovec iov[MAXSEG];
	struct blk_req r;
};

static struct mreq m;

static void build(const void *out, const uint32_t *out_lens, unsigned n_out,
		  const uint32_t *in_lens, unsigned n_in)
{
	const uint8_t *src = out;

	memset(&m, 0, sizeof(m));
	ck_assert_uint_le(n_out + n_in, MAXSEG);
	for (unsigned i = 0; i < n_out + n_in; i++) {
		uint32_t len = i < n_out ? out_lens[i] : in_lens[i - n_out];

		ck_assert_uint_le(m.used + len, sizeof(m.mem));
		m.segs[i].addr = m.mem + m.used;
		m.segs[i].len = len;
		if (i < n_out) {
			memcpy(m.mem + m.used, src, len);
			src += len;
		} else {
			memset(m.mem + m.used, 0xee, len);
		}
		m.used += len + 8; /* a gap: no segment touches the next */
	}
	m.req.nr_out = (uint16_t)n_out;
	m.req.nr_in = (uint16_t)n_in;
	m.req.segs = m.segs;
}

static void parse_with(const struct blk_limits *l, unsigned iov_cap)
{
	blk_req_parse(&m.req, l, m.iov, iov_cap, &m.r);
}

static void parse(void)
{
	parse_with(&lim, MAXSEG);
}

/* The 16-byte header, little endian, followed by @extra bytes. */
static uint8_t *hdr(uint8_t *buf, uint32_t type, uint64_t sector)
{
	for (int i = 0; i < 4; i++)
		buf[i] = (uint8_t)(type >> (8 * i));
	memset(buf + 4, 0x5a, 4); /* ioprio: ignored */
	for (int i = 0; i < 8; i++)
		buf[8 + i] = (uint8_t)(sector >> (8 * i));
	return buf + 16;
}

static uint8_t *range(uint8_t *p, uint64_t sector, uint32_t n, uint32_t flags)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(sector >> (8 * i));
	for (int i = 0; i < 4; i++) {
		p[8 + i] = (uint8_t)(n >> (8 * i));
		p[12 + i] = (uint8_t)(flags >> (8 * i));
	}
	return p + 16;
}

/* The status is the last byte of writable segment @seg. */
static void assert_status_at(unsigned seg, uint8_t status)
{
	const struct vhu_seg *s = &m.segs[m.req.nr_out + seg];

	ck_assert_uint_eq(m.r.status, status);
	ck_assert_ptr_eq(m.r.status_ptr, (uint8_t *)s->addr + s->len - 1);
}

static void assert_refused(uint8_t status)
{
	ck_assert_uint_eq(m.r.status, status);
	ck_assert_ptr_nonnull(m.r.status_ptr);
	ck_assert_ptr_nonnull(m.r.why);
	ck_assert_uint_eq(m.r.niov, 0);
	ck_assert_uint_eq(m.r.len, 0);
	ck_assert_uint_eq(m.r.nranges, 0);
}

/* ---- headers ------------------------------------------------------ */

START_TEST(header_split_at_every_byte)
{
	uint8_t h[16];

	hdr(h, VIRTIO_BLK_T_IN, 77);
	for (uint32_t a = 1; a < 16; a++) {
		for (uint32_t b = a; b < 16; b++) {
			/* three pieces (the middle one empty when a == b) */
			uint32_t outs[3] = { a, b - a, 16 - b }, ins[2] = { 1024, 1 };

			build(h, outs, 3, ins, 2);
			parse();
			assert_status_at(1, VIRTIO_BLK_S_OK);
			ck_assert_uint_eq(m.r.type, VIRTIO_BLK_T_IN);
			ck_assert_uint_eq(m.r.sector, 77);
			ck_assert_uint_eq(m.r.len, 1024);
			ck_assert_uint_eq(m.r.niov, 1);
			ck_assert_ptr_eq(m.r.iov[0].iov_base, m.segs[3].addr);
			ck_assert_uint_eq(m.r.status_off, 1024);
		}
	}
}
END_TEST

START_TEST(out_header_and_data_share_segments)
{
	uint8_t buf[16 + 1536];
	uint8_t *d = hdr(buf, VIRTIO_BLK_T_OUT, 5);

	memset(d, 0x11, 1536);
	for (uint32_t cut = 1; cut < sizeof(buf); cut += 97) {
		uint32_t outs[2] = { cut, (uint32_t)sizeof(buf) - cut }, ins[1] = { 1 };
		uint64_t total = 0;

		build(buf, outs, 2, ins, 1);
		parse();
		assert_status_at(0, VIRTIO_BLK_S_OK);
		ck_assert_uint_eq(m.r.type, VIRTIO_BLK_T_OUT);
		ck_assert_uint_eq(m.r.sector, 5);
		ck_assert_uint_eq(m.r.len, 1536);
		ck_assert_uint_eq(m.r.niov, cut <= 16 ? 1 : 2);
		/* the iovecs start right after the header's 16th byte */
		if (cut <= 16)
			ck_assert_ptr_eq(m.r.iov[0].iov_base, (uint8_t *)m.segs[1].addr + (16 - cut));
		else
			ck_assert_ptr_eq(m.r.iov[0].iov_base, (uint8_t *)m.segs[0].addr + 16);
		for (unsigned i = 0; i < m.r.niov; i++)
			total += m.r.iov[i].iov_len;
		ck_assert_uint_eq(total, 1536);
	}
}
END_TEST

START_TEST(header_too_short)
{
	uint8_t h[16];

	hdr(h, VIRTIO_BLK_T_IN, 0);
	for (uint32_t len = 0; len < 16; len++) {
		uint32_t outs[1] = { len }, ins[2] = { 512, 1 };

		build(h, outs, 1, ins, 2);
		parse();
		assert_status_at(1, VIRTIO_BLK_S_IOERR);
		assert_refused(VIRTIO_BLK_S_IOERR);
	}
	/* no readable segment at all */
	{
		uint32_t ins[1] = { 1 };

		build(NULL, NULL, 0, ins, 1);
		parse();
		assert_status_at(0, VIRTIO_BLK_S_IOERR);
	}
}
END_TEST

/* ---- the status byte ----------------------------------------------- */

START_TEST(status_missing)
{
	uint8_t buf[16 + 512];
	uint32_t outs[1] = { sizeof(buf) }, empty[2] = { 0, 0 };

	/* an OUT request whose "status" is readable: nowhere to answer */
	hdr(buf, VIRTIO_BLK_T_OUT, 0);
	build(buf, outs, 1, NULL, 0);
	parse();
	ck_assert_ptr_null(m.r.status_ptr);
	ck_assert_uint_eq(m.r.status, VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(blk_req_written(&m.r, 0), 0);
	/* writable segments that are all empty */
	build(buf, outs, 1, empty, 2);
	parse();
	ck_assert_ptr_null(m.r.status_ptr);
	ck_assert_uint_eq(m.r.niov, 0);
	/* a bare FLUSH header without a status */
	outs[0] = 16;
	hdr(buf, VIRTIO_BLK_T_FLUSH, 0);
	build(buf, outs, 1, NULL, 0);
	parse();
	ck_assert_ptr_null(m.r.status_ptr);
}
END_TEST

START_TEST(status_segment_empty)
{
	uint8_t h[16];
	uint32_t outs[1] = { 16 };

	/* IN [512][0]: the status is the data's last byte, leaving 511 */
	{
		uint32_t ins[2] = { 512, 0 };

		hdr(h, VIRTIO_BLK_T_IN, 0);
		build(h, outs, 1, ins, 2);
		parse();
		assert_status_at(0, VIRTIO_BLK_S_IOERR);
		ck_assert_uint_eq(m.r.status_off, 511);
		assert_refused(VIRTIO_BLK_S_IOERR);
	}
	/* IN [512][1][0]: the real status is the 1-byte segment */
	{
		uint32_t ins[3] = { 512, 1, 0 };

		build(h, outs, 1, ins, 3);
		parse();
		assert_status_at(1, VIRTIO_BLK_S_OK);
		ck_assert_uint_eq(m.r.len, 512);
		ck_assert_uint_eq(blk_req_written(&m.r, 512), 513);
	}
	/* FLUSH [0][1]: fine */
	{
		uint32_t ins[2] = { 0, 1 };

		hdr(h, VIRTIO_BLK_T_FLUSH, 0);
		build(h, outs, 1, ins, 2);
		parse();
		assert_status_at(1, VIRTIO_BLK_S_OK);
		ck_assert_uint_eq(m.r.status_off, 0);
	}
}
END_TEST

/* ---- sectors and lengths ------------------------------------------- */

static void rw(uint32_t type, uint64_t sector, uint32_t len)
{
	static uint8_t buf[16 + 4096];
	uint32_t outs[1], ins[2] = { len, 1 };

	hdr(buf, type, sector);
	if (type == VIRTIO_BLK_T_OUT) {
		outs[0] = 16 + len;
		build(buf, outs, 1, ins + 1, 1);
	} else {
		outs[0] = 16;
		build(buf, outs, 1, ins, 2);
	}
	parse();
}

START_TEST(sector_ranges)
{
	static const struct { uint64_t sector; uint32_t len; uint8_t status; } c[] = {
		{ 0, 512, VIRTIO_BLK_S_OK },
		{ CAP - 1, 512, VIRTIO_BLK_S_OK },
		{ CAP - 8, 4096, VIRTIO_BLK_S_OK },
		{ CAP - 7, 4096, VIRTIO_BLK_S_IOERR },  /* one sector past the end */
		{ CAP, 512, VIRTIO_BLK_S_IOERR },
		{ CAP, 0, VIRTIO_BLK_S_OK },            /* empty, at the end */
		{ CAP + 1, 0, VIRTIO_BLK_S_IOERR },
		{ UINT64_MAX, 512, VIRTIO_BLK_S_IOERR },/* sector + 1 wraps */
		{ UINT64_MAX / 512 + 1, 512, VIRTIO_BLK_S_IOERR }, /* * 512 wraps */
		{ 1ull << 55, 512, VIRTIO_BLK_S_IOERR },
		{ UINT64_MAX - 7, 4096, VIRTIO_BLK_S_IOERR },
	};

	for (unsigned t = 0; t < 2; t++) {
		for (unsigned i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
			rw(t ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, c[i].sector, c[i].len);
			if (c[i].status != m.r.status)
				ck_abort_msg("type %u sector %llu len %u: status %u, want %u",
					     t, (unsigned long long)c[i].sector, c[i].len,
					     m.r.status, c[i].status);
			if (c[i].status == VIRTIO_BLK_S_OK) {
				ck_assert_uint_eq(m.r.len, c[i].len);
				ck_assert_uint_eq(m.r.sector, c[i].sector);
			} else {
				assert_refused(c[i].status);
			}
		}
	}
}
END_TEST

START_TEST(data_not_a_multiple_of_512)
{
	static const uint32_t lens[] = { 1, 511, 513, 1000, 4095 };

	for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		rw(VIRTIO_BLK_T_IN, 0, lens[i]);
		assert_refused(VIRTIO_BLK_S_IOERR);
		rw(VIRTIO_BLK_T_OUT, 0, lens[i]);
		assert_refused(VIRTIO_BLK_S_IOERR);
	}
}
END_TEST

START_TEST(data_in_the_wrong_direction)
{
	uint8_t buf[16 + 512];
	uint32_t outs[1] = { 16 + 512 }, ins[2] = { 512, 1 };

	/* IN with readable data after the header */
	hdr(buf, VIRTIO_BLK_T_IN, 0);
	build(buf, outs, 1, ins, 2);
	parse();
	assert_status_at(1, VIRTIO_BLK_S_IOERR);
	assert_refused(VIRTIO_BLK_S_IOERR);
	/* OUT whose data the device would write (writable segments) */
	outs[0] = 16;
	hdr(buf, VIRTIO_BLK_T_OUT, 0);
	build(buf, outs, 1, ins, 2);
	parse();
	assert_status_at(1, VIRTIO_BLK_S_IOERR);
	assert_refused(VIRTIO_BLK_S_IOERR);
	/* OUT with data both ways */
	outs[0] = 16 + 512;
	build(buf, outs, 1, ins, 2);
	parse();
	assert_refused(VIRTIO_BLK_S_IOERR);
	/* GET_ID with readable bytes after the header */
	{
		uint32_t o2[1] = { 32 }, i2[1] = { 21 };
		uint8_t b2[32] = { 0 };

		hdr(b2, VIRTIO_BLK_T_GET_ID, 0);
		build(b2, o2, 1, i2, 1);
		parse();
		assert_refused(VIRTIO_BLK_S_IOERR);
	}
}
END_TEST

START_TEST(too_many_data_segments)
{
	uint8_t h[16];
	uint32_t outs[1] = { 16 }, ins[6] = { 512, 512, 512, 512, 512, 1 };

	hdr(h, VIRTIO_BLK_T_IN, 0);
	build(h, outs, 1, ins, 6);
	parse_with(&lim, 5);
	assert_status_at(5, VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(m.r.niov, 5);
	parse_with(&lim, 4);
	assert_status_at(5, VIRTIO_BLK_S_IOERR);
	assert_refused(VIRTIO_BLK_S_IOERR);
}
END_TEST

START_TEST(read_only)
{
	rw(VIRTIO_BLK_T_OUT, 0, 512);
	ck_assert_uint_eq(m.r.status, VIRTIO_BLK_S_OK);
	parse_with(&lim_ro, MAXSEG);
	assert_refused(VIRTIO_BLK_S_IOERR);
	rw(VIRTIO_BLK_T_IN, 0, 512);
	parse_with(&lim_ro, MAXSEG);
	ck_assert_uint_eq(m.r.status, VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(m.r.len, 512);
	{
		uint8_t h[16];
		uint32_t outs[1] = { 16 }, ins[1] = { 1 };

		hdr(h, VIRTIO_BLK_T_FLUSH, 0);
		build(h, outs, 1, ins, 1);
		parse_with(&lim_ro, MAXSEG);
		assert_status_at(0, VIRTIO_BLK_S_OK);
	}
}
END_TEST

/* ---- GET_ID -------------------------------------------------------- */

START_TEST(get_id_buffers)
{
	uint8_t h[16];
	uint32_t outs[1] = { 16 };
	static const char id[20] = "0123456789abcdefghij";

	hdr(h, VIRTIO_BLK_T_GET_ID, 12345);
	for (uint32_t len = 0; len < 20; len++) {
		uint32_t ins[2] = { len, 1 };

		build(h, outs, 1, ins, 2);
		parse();
		assert_status_at(1, VIRTIO_BLK_S_IOERR);
		assert_refused(VIRTIO_BLK_S_IOERR);
	}
	/* exactly 20, split 7 + 13, with the status in its own segment */
	{
		uint32_t ins[3] = { 7, 13, 1 };

		build(h, outs, 1, ins, 3);
		parse();
		assert_status_at(2, VIRTIO_BLK_S_OK);
		ck_assert_uint_eq(m.r.len, 20);
		ck_assert_uint_eq(m.r.niov, 2);
		ck_assert_uint_eq(blk_iov_copy_to(m.r.iov, m.r.niov, id, m.r.len), 20);
		ck_assert_int_eq(memcmp(m.segs[1].addr, id, 7), 0);
		ck_assert_int_eq(memcmp(m.segs[2].addr, id + 7, 13), 0);
		ck_assert_uint_eq(*m.r.status_ptr, 0xee); /* the parser writes nothing */
	}
	/* a 64-byte buffer whose last byte is the status: 20 written */
	{
		uint32_t ins[1] = { 65 };

		build(h, outs, 1, ins, 1);
		parse();
		assert_status_at(0, VIRTIO_BLK_S_OK);
		ck_assert_uint_eq(m.r.len, 20);
		ck_assert_uint_eq(m.r.status_off, 64);
		ck_assert_uint_eq(blk_req_written(&m.r, 20), 21);
	}
}
END_TEST

/* ---- DISCARD / WRITE_ZEROES ---------------------------------------- */

static uint8_t rbuf[16 + 20 * 16];

/* A DISCARD/WRITE_ZEROES request with @n ranges in rbuf, its readable
 * part cut at @cut (0: one segment), status in its own segment. */
static void ranges_req(unsigned n, uint32_t cut)
{
	uint32_t len = 16 + 16 * n;
	uint32_t outs[2] = { cut, len - cut }, ins[1] = { 1 };

	if (cut == 0 || cut >= len) {
		outs[0] = len;
		build(rbuf, outs, 1, ins, 1);
	} else {
		build(rbuf, outs, 2, ins, 1);
	}
}

START_TEST(discard_ranges)
{
	uint8_t *p = hdr(rbuf, VIRTIO_BLK_T_DISCARD, 999 /* ignored */);

	for (unsigned i = 0; i < 16; i++)
		p = range(p, i * 10, 1 + i, 0);
	/* all 16 ranges, cut at every byte of the readable part */
	for (uint32_t cut = 0; cut < 16 + 16 * 16; cut++) {
		ranges_req(16, cut);
		parse();
		assert_status_at(0, VIRTIO_BLK_S_OK);
		ck_assert_uint_eq(m.r.type, VIRTIO_BLK_T_DISCARD);
		ck_assert_uint_eq(m.r.nranges, 16);
		for (unsigned i = 0; i < 16; i++) {
			FAST_EQ(m.r.ranges[i].sector, i * 10);
			FAST_EQ(m.r.ranges[i].nsectors, 1 + i);
			FAST_EQ(m.r.ranges[i].flags, 0);
		}
	}
	/* 17 ranges: more than max_discard_seg */
	p = range(p, 500, 1, 0);
	ranges_req(17, 0);
	parse();
	assert_refused(VIRTIO_BLK_S_IOERR);
	/* no range at all, half a range */
	ranges_req(0, 0);
	parse();
	assert_refused(VIRTIO_BLK_S_IOERR);
	{
		uint32_t outs[1] = { 16 + 24 }, ins[1] = { 1 };

		build(rbuf, outs, 1, ins, 1);
		parse();
		assert_refused(VIRTIO_BLK_S_IOERR);
	}
	/* a writable byte more than the status */
	{
		uint32_t outs[1] = { 32 }, ins[2] = { 1, 1 };

		build(rbuf, outs, 1, ins, 2);
		parse();
		assert_refused(VIRTIO_BLK_S_IOERR);
	}
}
END_TEST

/* One range in a request of @type; returns the status. */
static uint8_t one_range(uint32_t type, uint64_t sector, uint32_t n,
			 uint32_t flags, const struct blk_limits *l)
{
	range(hdr(rbuf, type, 0), sector, n, flags);
	ranges_req(1, 0);
	parse_with(l, MAXSEG);
	return m.r.status;
}

START_TEST(range_values)
{
	const uint32_t D = VIRTIO_BLK_T_DISCARD, W = VIRTIO_BLK_T_WRITE_ZEROES;

	ck_assert_uint_eq(one_range(D, 0, 256, 0, &lim), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(one_range(D, 0, 257, 0, &lim), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(one_range(W, 0, 128, 0, &lim), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(one_range(W, 0, 129, 0, &lim), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(one_range(D, 5, 0, 0, &lim), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(one_range(W, CAP - 10, 10, 0, &lim), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(m.r.ranges[0].sector, CAP - 10);
	ck_assert_uint_eq(m.r.ranges[0].nsectors, 10);
	ck_assert_uint_eq(one_range(W, CAP - 10, 11, 0, &lim), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(one_range(D, CAP, 1, 0, &lim), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(one_range(D, UINT64_MAX - 1, 4, 0, &lim), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(one_range(W, UINT64_MAX / 512 + 1, 1, 0, &lim), VIRTIO_BLK_S_IOERR);
	/* flags: UNMAP only for WRITE_ZEROES, nothing else anywhere */
	ck_assert_uint_eq(one_range(W, 0, 8, VIRTIO_BLK_WZ_F_UNMAP, &lim), VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(m.r.ranges[0].flags, VIRTIO_BLK_WZ_F_UNMAP);
	ck_assert_uint_eq(one_range(D, 0, 8, VIRTIO_BLK_WZ_F_UNMAP, &lim), VIRTIO_BLK_S_UNSUPP);
	ck_assert_uint_eq(one_range(W, 0, 8, 2, &lim), VIRTIO_BLK_S_UNSUPP);
	ck_assert_uint_eq(one_range(D, 0, 8, 0x80000000u, &lim), VIRTIO_BLK_S_UNSUPP);
	assert_refused(VIRTIO_BLK_S_UNSUPP);
	/* read-only, and a disk that offers neither */
	ck_assert_uint_eq(one_range(D, 0, 8, 0, &lim_ro), VIRTIO_BLK_S_IOERR);
	ck_assert_uint_eq(one_range(W, 0, 8, 0, &lim_ro), VIRTIO_BLK_S_IOERR);
	{
		struct blk_limits none = lim;

		none.max_discard_sectors = none.max_wz_sectors = 0;
		ck_assert_uint_eq(one_range(D, 0, 8, 0, &none), VIRTIO_BLK_S_UNSUPP);
		ck_assert_uint_eq(one_range(W, 0, 8, 0, &none), VIRTIO_BLK_S_UNSUPP);
	}
	/* a bad second range refuses the whole request */
	{
		uint8_t *p = hdr(rbuf, D, 0);

		p = range(p, 0, 8, 0);
		range(p, CAP, 8, 0);
		ranges_req(2, 0);
		parse();
		assert_refused(VIRTIO_BLK_S_IOERR);
	}
}
END_TEST

/* ---- types --------------------------------------------------------- */

START_TEST(unknown_types)
{
	static const uint32_t types[] = { 2, 3, 5, 6, 7, 9, 10, 12, 14, 15, 16,
					  0x80000000u, 0xffffffffu };
	uint8_t h[16];
	uint32_t outs[1] = { 16 }, ins[2] = { 512, 1 };

	for (unsigned i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		hdr(h, types[i], 0);
		build(h, outs, 1, ins, 2);
		parse();
		assert_status_at(1, VIRTIO_BLK_S_UNSUPP);
		assert_refused(VIRTIO_BLK_S_UNSUPP);
		ck_assert_uint_eq(m.r.type, types[i]);
		ck_assert_uint_eq(blk_req_written(&m.r, 0), 1);
	}
}
END_TEST

START_TEST(flush_ignores_extra_bytes)
{
	uint8_t buf[16 + 64] = { 0 };
	uint32_t outs[1] = { sizeof(buf) }, ins[2] = { 100, 1 };

	hdr(buf, VIRTIO_BLK_T_FLUSH, 42);
	build(buf, outs, 1, ins, 2);
	parse();
	assert_status_at(1, VIRTIO_BLK_S_OK);
	ck_assert_uint_eq(m.r.niov, 0);
	ck_assert_uint_eq(m.r.len, 0);
}
END_TEST

START_TEST(iov_copy)
{
	uint8_t a[3], b[5], src[10] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
	struct iovec iov[2] = { { a, sizeof(a) }, { b, sizeof(b) } };

	ck_assert_uint_eq(blk_iov_copy_to(iov, 2, src, 10), 8);
	ck_assert_uint_eq(a[2], 3);
	ck_assert_uint_eq(b[4], 8);
	ck_assert_uint_eq(blk_iov_copy_to(iov, 2, src, 4), 4);
	ck_assert_uint_eq(blk_iov_copy_to(iov, 0, src, 4), 0);
	ck_assert_str_eq(blk_type_name(VIRTIO_BLK_T_WRITE_ZEROES), "WRITE_ZEROES");
	ck_assert_str_eq(blk_type_name(77), "unknown");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("blk_req");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, header_split_at_every_byte);
	tcase_add_test(tc, out_header_and_data_share_segments);
	tcase_add_test(tc, header_too_short);
	tcase_add_test(tc, status_missing);
	tcase_add_test(tc, status_segment_empty);
	tcase_add_test(tc, sector_ranges);
	tcase_add_test(tc, data_not_a_multiple_of_512);
	tcase_add_test(tc, data_in_the_wrong_direction);
	tcase_add_test(tc, too_many_data_segments);
	tcase_add_test(tc, read_only);
	tcase_add_test(tc, get_id_buffers);
	tcase_add_test(tc, discard_ranges);
	tcase_add_test(tc, range_values);
	tcase_add_test(tc, unknown_types);
	tcase_add_test(tc, flush_ignores_extra_bytes);
	tcase_add_test(tc, iov_copy);
	suite_add_tcase(s, tc);
	return tu_run_suite(s);
}
