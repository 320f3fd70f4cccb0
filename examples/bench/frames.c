/* SPDX-License-Identifier: BSD-3-Clause */
/* The frame txonly sends: Ethernet + IPv4 + UDP, checksummed, padded. */
#include <string.h>

#include "bench.h"

static uint16_t ip_csum(const uint8_t *p, unsigned len)
{
	uint32_t sum = 0;

	for (unsigned i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

void bench_build_frame(uint8_t *f, uint32_t len)
{
	static const uint8_t dst[6] = { 0x02, 0, 0, 0, 0, 0x02 };
	static const uint8_t src[6] = { 0x02, 0, 0, 0, 0, 0x01 };
	uint16_t ip_len = (uint16_t)(len - 14), udp_len = (uint16_t)(len - 34);
	uint16_t c;

	memset(f, 0, len);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x08; /* IPv4 */
	f[14] = 0x45;
	f[16] = (uint8_t)(ip_len >> 8);
	f[17] = (uint8_t)ip_len;
	f[22] = 64;   /* TTL */
	f[23] = 17;   /* UDP */
	memcpy(f + 26, (uint8_t[]){ 198, 18, 0, 1 }, 4); /* benchmark range */
	memcpy(f + 30, (uint8_t[]){ 198, 18, 0, 2 }, 4);
	c = ip_csum(f + 14, 20);
	f[24] = (uint8_t)(c >> 8);
	f[25] = (uint8_t)c;
	f[34] = 0x04; /* ports 1024 -> 1025 */
	f[36] = 0x04;
	f[37] = 0x01;
	f[38] = (uint8_t)(udp_len >> 8);
	f[39] = (uint8_t)udp_len;
	for (uint32_t i = 42; i < len; i++)
		f[i] = (uint8_t)i;
}
