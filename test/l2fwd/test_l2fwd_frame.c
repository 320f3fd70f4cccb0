/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhu-l2fwd's frame helpers (examples/l2fwd/frame.c), compiled in:
 * completing partial checksums as a guest with VIRTIO_NET_F_CSUM leaves
 * them (UDP/TCP over IPv4 and IPv6, odd lengths, offsets outside the
 * frame), the flow hash and the RARP announcement.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "l2fwd.h"

static uint32_t sum16(const uint8_t *p, uint32_t len, uint32_t s)
{
	for (; len >= 2; p += 2, len -= 2)
		s += (uint32_t)p[0] << 8 | p[1];
	if (len)
		s += (uint32_t)p[0] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return s;
}

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/*
 * An Ethernet + IPv4/IPv6 + UDP/TCP frame with @plen payload bytes whose
 * L4 checksum field holds the pseudo-header sum (not inverted), like
 * Linux's virtio-net driver leaves it.  Returns the frame length; the L4
 * offset and checksum offset in *@l4, *@off.
 */
static uint32_t mk(uint8_t *f, bool v6, uint8_t proto, uint32_t plen,
		   uint16_t *l4, uint16_t *off)
{
	uint32_t iph = v6 ? 40 : 20, l4h = proto == 17 ? 8 : 20;
	uint32_t l4len = l4h + plen, len = 14 + iph + l4len, s;
	uint8_t *ip = f + 14, *t = ip + iph;

	memset(f, 0, len);
	f[12] = v6 ? 0x86 : 0x08;
	f[13] = v6 ? 0xdd : 0x00;
	if (v6) {
		ip[0] = 0x60;
		put16(ip + 4, l4len);
		ip[6] = proto;
		ip[7] = 64;
		for (int i = 0; i < 32; i++)
			ip[8 + i] = (uint8_t)(i * 11 + 1);
	} else {
		ip[0] = 0x45;
		put16(ip + 2, iph + l4len);
		ip[8] = 64;
		ip[9] = proto;
		memcpy(ip + 12, (uint8_t[]){ 192, 0, 2, 1, 198, 51, 100, 7 }, 8);
	}
	put16(t, 40000);
	put16(t + 2, 5201);
	if (proto == 17)
		put16(t + 4, l4len);
	else
		t[12] = 0x50;
	for (uint32_t i = 0; i < plen; i++)
		t[l4h + i] = (uint8_t)(i * 7 + 3);
	/* pseudo header: addresses, protocol, L4 length */
	s = v6 ? sum16(ip + 8, 32, 0) : sum16(ip + 12, 8, 0);
	s = sum16((uint8_t[]){ 0, proto, (uint8_t)(l4len >> 8), (uint8_t)l4len }, 4, s);
	*l4 = (uint16_t)(14 + iph);
	*off = proto == 17 ? 6 : 16;
	put16(t + *off, s);
	return len;
}

/* The L4 checksum verifies: pseudo header + segment sums to 0xffff. */
static bool valid(const uint8_t *f, uint32_t len, bool v6, uint8_t proto)
{
	uint32_t iph = v6 ? 40 : 20, l4len = len - 14 - iph, s;
	const uint8_t *ip = f + 14;

	s = v6 ? sum16(ip + 8, 32, 0) : sum16(ip + 12, 8, 0);
	s = sum16((uint8_t[]){ 0, proto, (uint8_t)(l4len >> 8), (uint8_t)l4len }, 4, s);
	return sum16(ip + iph, l4len, s) == 0xffff;
}

START_TEST(csum_completed)
{
	static const uint32_t plens[] = { 0, 1, 2, 17, 1000, 1431 };
	uint8_t f[2048];

	for (int v6 = 0; v6 < 2; v6++)
		for (int tcp = 0; tcp < 2; tcp++)
			for (unsigned i = 0; i < sizeof(plens) / sizeof(plens[0]); i++) {
				uint8_t proto = tcp ? 6 : 17;
				uint16_t l4, off;
				uint32_t len = mk(f, v6, proto, plens[i], &l4, &off);

				ck_assert(!valid(f, len, v6, proto) || plens[i] == 0);
				ck_assert_int_eq(l2_csum_complete(f, len, l4, off), 0);
				ck_assert_msg(valid(f, len, v6, proto),
					      "v6 %d proto %u payload %u", v6, proto, plens[i]);
				if (proto == 17)
					ck_assert(f[l4 + off] || f[l4 + off + 1]);
			}
}
END_TEST

START_TEST(csum_offsets_outside_refused)
{
	uint8_t f[256], copy[256];
	uint16_t l4, off;
	uint32_t len = mk(f, false, 17, 30, &l4, &off);

	memcpy(copy, f, sizeof(f));
	ck_assert_int_eq(l2_csum_complete(f, len, (uint16_t)len, 0), -1);
	ck_assert_int_eq(l2_csum_complete(f, len, l4, (uint16_t)(len - l4 - 1)), -1);
	ck_assert_int_eq(l2_csum_complete(f, len, l4, 65534), -1);
	ck_assert_int_eq(l2_csum_complete(f, len, 65535, 65535), -1);
	ck_assert_int_eq(l2_csum_complete(f, len, l4, 7), -1); /* odd offset */
	ck_assert_int_eq(memcmp(f, copy, sizeof(f)), 0);
	/* the last two bytes of the frame are a valid field */
	ck_assert_int_eq(l2_csum_complete(f, len, l4, (uint16_t)(len - l4 - 2)), 0);
}
END_TEST

START_TEST(flow_hash)
{
	uint8_t a[128], b[128];
	uint16_t l4, off;
	uint32_t len = mk(a, false, 6, 20, &l4, &off), h;

	memcpy(b, a, sizeof(a));
	h = l2_flow_hash(a, len);
	/* the payload does not matter, the ports do */
	b[len - 1] ^= 0xff;
	ck_assert_uint_eq(l2_flow_hash(b, len), h);
	b[l4 + 1] ^= 1;
	ck_assert_uint_ne(l2_flow_hash(b, len), h);
	/* a later fragment: addresses only, whatever sits where ports were */
	memcpy(b, a, sizeof(a));
	b[14 + 7] = 0x10; /* fragment offset 16 */
	h = l2_flow_hash(b, len);
	b[l4] ^= 0xff;
	ck_assert_uint_eq(l2_flow_hash(b, len), h);
	/* short and non-IP frames */
	ck_assert_uint_eq(l2_flow_hash(a, 10), 0);
	ck_assert_uint_eq(l2_flow_hash(a, 20), l2_flow_hash(a, 20));
	len = mk(a, true, 17, 5, &l4, &off);
	ck_assert_uint_eq(l2_flow_hash(a, len), l2_flow_hash(a, len));
}
END_TEST

START_TEST(rarp)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 1, 2, 3 };
	uint8_t f[64];

	memset(f, 0xee, sizeof(f));
	ck_assert_uint_eq(l2_rarp_frame(f, mac), 60);
	for (int i = 0; i < 6; i++)
		ck_assert_uint_eq(f[i], 0xff);
	ck_assert_int_eq(memcmp(f + 6, mac, 6), 0);
	ck_assert_uint_eq(f[12], 0x80);
	ck_assert_uint_eq(f[13], 0x35);
	ck_assert_uint_eq(f[15], 1);    /* Ethernet */
	ck_assert_uint_eq(f[16], 0x08); /* IPv4 */
	ck_assert_uint_eq(f[18], 6);
	ck_assert_uint_eq(f[19], 4);
	ck_assert_uint_eq(f[21], 3);    /* reverse request */
	ck_assert_int_eq(memcmp(f + 22, mac, 6), 0);
	ck_assert_int_eq(memcmp(f + 32, mac, 6), 0);
	for (int i = 28; i < 32; i++)
		ck_assert_uint_eq(f[i], 0);
	for (int i = 42; i < 60; i++)
		ck_assert_uint_eq(f[i], 0);
	ck_assert_uint_eq(f[60], 0xee);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("l2fwd_frame");
	TCase *tc = tcase_create("frame");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, csum_completed);
	tcase_add_test(tc, csum_offsets_outside_refused);
	tcase_add_test(tc, flow_hash);
	tcase_add_test(tc, rarp);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
