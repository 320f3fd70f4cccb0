/* SPDX-License-Identifier: BSD-3-Clause */
#include "fuzz_common.h"
#include "rings/vq.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

uint8_t fz_u8(struct fz_in *in)
{
	uint8_t v = 0;

	fz_bytes(in, &v, 1);
	return v;
}

uint16_t fz_u16(struct fz_in *in)
{
	uint16_t v = 0;

	fz_bytes(in, &v, 2);
	return v;
}

uint32_t fz_u32(struct fz_in *in)
{
	uint32_t v = 0;

	fz_bytes(in, &v, 4);
	return v;
}

uint64_t fz_u64(struct fz_in *in)
{
	uint64_t v = 0;

	fz_bytes(in, &v, 8);
	return v;
}

size_t fz_bytes(struct fz_in *in, void *dst, size_t n)
{
	size_t k = n < in->left ? n : in->left;

	memcpy(dst, in->p, k);
	if (k < n)
		memset((uint8_t *)dst + k, 0, n - k);
	in->p += k;
	in->left -= k;
	return k;
}

int fz_make_fd(struct fz_in *in, uint8_t kind)
{
	int fd = -1, sp[2], pp[2];

	switch (kind % 8) {
	case 0:
	case 1: { /* memfd, maybe sealed against shrinking */
		uint32_t size = (fz_u16(in) + 1u) * 4096u;

		fd = memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd >= 0 && ftruncate(fd, size) == 0 && kind % 8 == 1)
			fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK);
		return fd;
	}
	case 2:
	case 3:
		return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	case 4:
		if (pipe2(pp, O_CLOEXEC))
			return -1;
		close(pp[1]);
		return pp[0];
	case 5:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp))
			return -1;
		close(sp[1]);
		return sp[0];
	case 6:
		return open("/dev/null", O_RDWR | O_CLOEXEC);
	default:
		return -1;
	}
}

static void fz_log(void *o, enum vhu_log_level l, const char *d, const char *m)
{
	(void)o;
	(void)l;
	(void)d;
	(void)m;
}

struct vhu_dev *fz_dev_connected(int *peer, uint16_t num_queues)
{
	int sp[2];
	struct vhu_dev_opts o = {
		.sz = sizeof(o), .name = "fuzz", .num_queues = num_queues,
		.log = fz_log, .log_level = VHU_LOG_DEBUG, .inflight = true,
		.device_features = 1ull << 15,
	};
	struct vhu_dev *dev = vhu_dev_new(&o);

	if (!dev || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp)) {
		vhu_dev_free(dev);
		return NULL;
	}
	if (vhu_dev_attach_fd(dev, sp[0])) {
		close(sp[1]);
		vhu_dev_free(dev);
		return NULL;
	}
	*peer = sp[1];
	return dev;
}

void fz_pump(struct vhu_dev *dev, int peer)
{
	char buf[4096];
	int fds[8];

	for (int i = 0; i < 64 && vhu_dev_poll(dev, 0) > 0; i++) {
		/* drain replies (and the fds a reply could carry) */
		for (;;) {
			union {
				char c[CMSG_SPACE(sizeof(fds))];
				struct cmsghdr a;
			} ctl;
			struct iovec iov = { buf, sizeof(buf) };
			struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
					     .msg_control = ctl.c,
					     .msg_controllen = sizeof(ctl.c) };

			if (recvmsg(peer, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) <= 0)
				break;
			for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
			     c = CMSG_NXTHDR(&mh, c)) {
				size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

				memcpy(fds, CMSG_DATA(c), n * sizeof(int));
				for (size_t k = 0; k < n; k++)
					close(fds[k]);
			}
		}
	}
}

/* Inflight tracking as SET_INFLIGHT_FD installs it: a region for two
 * queues of @size whose first bytes are @img (what a previous back-end
 * left, as hostile as a front-end makes it; zeros: a fresh one). */
static void inflight_up(struct fz_rings *r, uint32_t size, bool packed,
			const uint8_t *img, size_t len)
{
	uint64_t bytes = vhu_inflight_queue_bytes((uint16_t)size, packed) * 2;
	struct vhu_inflight m = { .mmap_size = bytes, .num_queues = 2,
				  .queue_size = (uint16_t)size };
	int fd = memfd_create("inflight", MFD_CLOEXEC);

	if (fd < 0 || ftruncate(fd, (off_t)bytes) ||
	    pwrite(fd, img, len < bytes ? len : bytes, 0) < 0)
		abort();
	r->dev->protocol |= VHU_BIT(VHU_PF_INFLIGHT_SHMFD);
	vhu_inflight_set_fd(r->dev, &m, fd); /* takes the fd */
}

int fz_rings_up(struct fz_rings *r, uint64_t features, uint32_t size, int nq)
{
	return fz_rings_up_inflight(r, features, size, nq, NULL, 0);
}

int fz_rings_up_inflight(struct fz_rings *r, uint64_t features, uint32_t size,
			 int nq, const uint8_t *ifl, size_t ifl_len)
{
	static const uint64_t gpas[FZ_NREGIONS] = { 0, FZ_REGION, 0x100000 };
	struct vhu_mem_region regs[FZ_NREGIONS];
	int fds[FZ_NREGIONS];
	struct vhu_dev_opts o = {
		.sz = sizeof(o), .name = "fuzz-rings", .num_queues = 2,
		.log = fz_log, .log_level = VHU_LOG_DEBUG,
		.device_features = (1ull << 15) | 1 | 2 | (1ull << 11) | (1ull << 7),
	};

	memset(r, 0, sizeof(*r));
	r->dev = vhu_dev_new(&o);
	if (!r->dev)
		return -1;
	for (int i = 0; i < FZ_NREGIONS; i++) {
		fds[i] = memfd_create("guest", MFD_CLOEXEC);
		if (fds[i] < 0 || ftruncate(fds[i], FZ_REGION))
			abort();
		r->mem[i] = mmap(NULL, FZ_REGION, PROT_READ | PROT_WRITE, MAP_SHARED,
				 fds[i], 0);
		if (r->mem[i] == MAP_FAILED)
			abort();
		r->gpa[i] = gpas[i];
		regs[i] = (struct vhu_mem_region){ gpas[i], FZ_REGION, gpas[i] + FZ_UVA, 0 };
	}
	/* The fds go to the device (it closes them); our mappings stay. */
	if (vhu_mem_set_table(&r->dev->mem, regs, fds, FZ_NREGIONS))
		abort();
	r->dev->features = features & r->dev->offered_features;
	r->dev->features_set = true;
	r->dev->owner = true;
	if (ifl)
		inflight_up(r, size, features & VHU_BIT(VHU_F_RING_PACKED), ifl,
			    ifl_len);
	for (int q = 0; q < nq; q++) {
		struct vhu_vq *vq = &r->dev->vqs[q];

		vq->size = size;
		vq->addr = (struct vhu_vring_addr){
			.index = (uint32_t)q,
			.desc_user_addr = FZ_UVA + (uint64_t)q * 0x8000,
			.avail_user_addr = FZ_UVA + 0x6000 + (uint64_t)q * 0x8000,
			.used_user_addr = FZ_UVA + 0x7000 + (uint64_t)q * 0x8000,
		};
		vq->has_addr = true;
		if (vhu_vq_start(vq))
			return -1;
		vhu_vq_set_enable(vq, true);
	}
	return 0;
}

void fz_log_up(struct fz_rings *r, struct fz_in *in)
{
	struct vhu_log msg = { .mmap_size = 1 + fz_u8(in) % 64 };
	int fd;

	if (!(r->dev->features & VHU_BIT(VHU_F_LOG_ALL)))
		return;
	fd = memfd_create("log", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, 4096))
		abort();
	vhu_dirty_log_set_base(r->dev, &msg, fd); /* closes fd */
	vhu_dirty_log_update(r->dev);
}

void fz_rings_down(struct fz_rings *r)
{
	vhu_dev_free(r->dev);
	for (int i = 0; i < FZ_NREGIONS; i++)
		if (r->mem[i])
			munmap(r->mem[i], FZ_REGION);
}

void fz_guest_writes(struct fz_rings *r, struct fz_in *in, unsigned max)
{
	for (unsigned i = 0; i < max && in->left; i++) {
		uint8_t reg = fz_u8(in) % FZ_NREGIONS;
		uint16_t off = fz_u16(in);
		uint8_t len = fz_u8(in) % 32;

		if (off + len > FZ_REGION)
			continue;
		fz_bytes(in, r->mem[reg] + off, len);
	}
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		n++;
	closedir(d);
	return n;
}

void fz_check_fds(void)
{
	static int baseline = -1;
	int n = count_fds();

	if (baseline < 0)
		baseline = n;
	else if (n > baseline + 4)
		abort(); /* the library leaked descriptors */
}

/* Bursts as a device would run them: every segment read end to end (ASan
 * checks it lies in mapped memory), writable ones written, all returned;
 * kicks toggled; guest writes between bursts. */
void fz_ring_bursts(struct fz_rings *r, struct fz_in *in, int q)
{
	struct vhu_vq *vq = &r->dev->vqs[q];

	for (int b = 0; b < 8; b++) {
		struct vhu_req req[8];
		struct vhu_seg segs[64];
		uint32_t written[8];
		int n;

		vhu_vq_begin(vq);
		n = vhu_vq_pop(vq, req, 1 + fz_u8(in) % 8, segs, 1 + fz_u8(in) % 64);
		for (int i = 0; i < n; i++) {
			volatile uint8_t sink = 0;

			for (unsigned k = 0; k < (unsigned)(req[i].nr_out + req[i].nr_in); k++) {
				const uint8_t *p = req[i].segs[k].addr;

				sink ^= p[0];
				sink ^= p[req[i].segs[k].len - 1];
				if (k >= req[i].nr_out)
					((uint8_t *)req[i].segs[k].addr)[0] = 0xee;
			}
			(void)sink;
			written[i] = req[i].in_len;
		}
		if (n > 0)
			vhu_vq_push(vq, req, written, (unsigned)n);
		vhu_vq_notify(vq);
		vhu_vq_set_kicks(vq, fz_u8(in) & 1);
		vhu_vq_avail(vq);
		vhu_vq_end(vq);
		fz_guest_writes(r, in, 4);
	}
}

int fz_ring_target(const uint8_t *data, size_t size, bool packed)
{
	struct fz_in in = { data, size };
	struct fz_rings r;
	uint8_t fbits = fz_u8(&in);
	uint64_t features = VHU_BIT(VHU_F_VERSION_1) |
			    (packed ? VHU_BIT(VHU_F_RING_PACKED) : 0) |
			    ((fbits & 1) ? VHU_BIT(VHU_F_INDIRECT_DESC) : 0) |
			    ((fbits & 2) ? VHU_BIT(VHU_F_EVENT_IDX) : 0) |
			    ((fbits & 4) ? VHU_BIT(VHU_F_LOG_ALL) : 0);
	/* packed rings may have any size; split ones a power of 2 */
	uint32_t qsize = packed ? 1u + fz_u8(&in) : 1u << (fz_u8(&in) % 9);
	/* fbits & 8: inflight tracking, the region's image from the input */
	uint8_t ifl[512] = { 0 };
	size_t ifl_len = 0;

	if (fbits & 8) {
		ifl_len = fz_u8(&in) * 2u;
		fz_bytes(&in, ifl, ifl_len);
	}
	fz_check_fds();
	if (fz_rings_up_inflight(&r, features, qsize, 1, (fbits & 8) ? ifl : NULL,
				 ifl_len) == 0) {
		fz_log_up(&r, &in);
		/* driver area first: small inputs already make buffers available */
		fz_bytes(&in, r.mem[0] + 0x6000, in.left < 0x40 ? in.left : 0x40);
		fz_bytes(&in, r.mem[0], in.left < 0x400 ? in.left : 0x400);
		fz_ring_bursts(&r, &in, 0);
	}
	fz_rings_down(&r);
	return 0;
}
