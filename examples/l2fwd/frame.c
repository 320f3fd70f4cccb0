/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Frame helpers of vhu-l2fwd: completing a partial checksum the guest left
 * (VIRTIO_NET_F_CSUM: the device computes the ones' complement sum from
 * csum_start to the end of the frame and stores it at csum_start +
 * csum_offset; the field already holds the pseudo-header sum), a flow hash
 * to spread NIC frames over the guest's queues, and the RARP announcement
 * sent for SEND_RARP.
 */
#include <string.h>

#include "l2fwd.h"

#define ETH_HLEN 14
#define ETH_ZLEN 60

/* Ones' complement sum of @len bytes, big-endian 16-bit words. */
static uint32_t sum16(const uint8_t *p, uint32_t len)
{
	uint64_t s = 0;

	for (; len >= 2; p += 2, len -= 2)
		s += (uint32_t)p[0] << 8 | p[1];
	if (len)
		s += (uint32_t)p[0] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint32_t)s;
}

/**
 * l2_csum_complete() - fold the sum of @frame[@start..@len) into the 16-bit
 * field at @start + @offset.  -1 when the offsets do not fit the frame
 * (the guest is wrong: drop the frame), 0 otherwise.
 */
int l2_csum_complete(uint8_t *frame, uint32_t len, uint16_t start,
		     uint16_t offset)
{
	uint32_t field = (uint32_t)start + offset, s;

	if (start >= len || field + 2 > len || offset & 1)
		return -1;
	s = sum16(frame + start, len - start);
	s = ~s & 0xffff;
	/* UDP: a computed zero is sent as all ones (0 means "no checksum"). */
	if (s == 0)
		s = 0xffff;
	frame[field] = (uint8_t)(s >> 8);
	frame[field + 1] = (uint8_t)s;
	return 0;
}

/* FNV-1a over the bytes that name a flow. */
static uint32_t fnv(uint32_t h, const uint8_t *p, uint32_t n)
{
	while (n--)
		h = (h ^ *p++) * 16777619u;
	return h;
}

/**
 * l2_flow_hash() - a hash of the frame's flow: IPv4/IPv6 addresses and, for
 * TCP/UDP, ports; else the MAC addresses.  Frames of one flow always get
 * the same value, so they reach the guest on one queue, in order.
 */
uint32_t l2_flow_hash(const uint8_t *f, uint32_t len)
{
	uint32_t h = 2166136261u, l4 = 0;
	uint16_t type;

	if (len < ETH_HLEN)
		return 0;
	type = (uint16_t)(f[12] << 8 | f[13]);
	if (type == 0x0800 && len >= ETH_HLEN + 20) {
		const uint8_t *ip = f + ETH_HLEN;
		uint32_t ihl = (ip[9] == 6 || ip[9] == 17) ? (ip[0] & 0xfu) * 4 : 0;

		h = fnv(h, ip + 12, 8);
		/* not for fragments after the first */
		if (ihl >= 20 && !(ip[6] & 0x1f) && !ip[7])
			l4 = ETH_HLEN + ihl;
	} else if (type == 0x86dd && len >= ETH_HLEN + 40) {
		const uint8_t *ip = f + ETH_HLEN;

		h = fnv(h, ip + 8, 32);
		if (ip[6] == 6 || ip[6] == 17)
			l4 = ETH_HLEN + 40;
	} else {
		return fnv(h, f, 12);
	}
	if (l4 && l4 + 4 <= len)
		h = fnv(h, f + l4, 4);
	return h;
}

/**
 * l2_rarp_frame() - build in @buf (at least 60 bytes) the RARP broadcast a
 * switch port sends to announce @mac after a migration (RFC 903 layout,
 * operation 3 "request reverse", as QEMU's announcements).  Returns its
 * length.
 */
uint32_t l2_rarp_frame(uint8_t *buf, const uint8_t mac[6])
{
	static const uint8_t arp_hdr[8] = {
		0x00, 0x01, /* hardware: Ethernet */
		0x08, 0x00, /* protocol: IPv4 */
		6, 4,       /* address lengths */
		0x00, 0x03, /* reverse request */
	};
	uint8_t *p = buf;

	memset(buf, 0, ETH_ZLEN);
	memset(p, 0xff, 6);
	memcpy(p + 6, mac, 6);
	p[12] = 0x80;
	p[13] = 0x35;
	p += ETH_HLEN;
	memcpy(p, arp_hdr, sizeof(arp_hdr));
	p += sizeof(arp_hdr);
	memcpy(p, mac, 6);       /* sender hardware address */
	memcpy(p + 10, mac, 6);  /* target hardware address; IPs stay 0 */
	return ETH_ZLEN;
}
