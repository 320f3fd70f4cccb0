/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Virtqueue control: ring addresses, size, base, notification fds, and the
 * started / enabled state the data plane reads.
 *
 * Rule shared with the data plane: the control thread changes a field the
 * data plane uses only after clearing VHU_DP_RUNNING (or while it is
 * clear) and waiting with vhu_mem_sync_reader() for a burst in progress to
 * end.  Fds the data plane may write (call, err) are swapped atomically and
 * the old one is closed only after that wait.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void vhu_vq_init(struct vhu_dev *dev, struct vhu_vq *vq, uint16_t index)
{
	memset(vq, 0, sizeof(*vq));
	vq->dev = dev;
	vq->index = index;
	vq->dp_lg = dev->lg;
	atomic_store_explicit(&vq->kick_fd, -1, memory_order_relaxed);
	atomic_store_explicit(&vq->call_fd, -1, memory_order_relaxed);
	atomic_store_explicit(&vq->err_fd, -1, memory_order_relaxed);
	atomic_store_explicit(&vq->dp_state, 0, memory_order_relaxed);
	/* A packed ring's wrap counters start at 1 (VIRTIO 1.2 §2.8.1). */
	vq->avail_wrap = vq->used_wrap = true;
}

/*
 * Publish started/enabled/broken to the data plane.  The data plane may set
 * BROKEN itself at any time (a bad ring), so keep that bit unless this is a
 * fresh start (@clear_broken).
 */
static void vq_publish(struct vhu_vq *vq, bool clear_broken)
{
	uint32_t old = atomic_load_explicit(&vq->dp_state, memory_order_relaxed);
	uint32_t s;

	do {
		if (!clear_broken && (old & VHU_DP_BROKEN))
			vq->broken = true;
		s = 0;
		if (vq->started && !vq->broken && !vq->dev->log_held)
			s |= VHU_DP_RUNNING;
		if (vq->enabled)
			s |= VHU_DP_ENABLED;
		if (vq->broken)
			s |= VHU_DP_BROKEN;
		if (vq->draining && (s & VHU_DP_RUNNING))
			s |= VHU_DP_DRAINING;
		/* Release pairs with the acquire load of dp_state in
		 * vhu_vq_begin(): ring pointers and indexes written before are
		 * seen by the burst that sees RUNNING. */
	} while (!atomic_compare_exchange_weak_explicit(&vq->dp_state, &old, s,
							memory_order_release,
							memory_order_relaxed));
}

static void vq_publish_state(struct vhu_vq *vq)
{
	vq_publish(vq, false);
}

/* Clear RUNNING and wait for a burst in progress to finish. */
static void vq_pause(struct vhu_vq *vq)
{
	/* An atomic and: a BROKEN bit the data plane sets meanwhile stays. */
	atomic_fetch_and_explicit(&vq->dp_state, ~(uint32_t)VHU_DP_RUNNING,
				  memory_order_relaxed);
	/* Barrier [vq-pause]: pairs with the fence in vhu_mem_read_begin(),
	 * which the data plane runs before it loads dp_state. */
	atomic_thread_fence(memory_order_seq_cst);
	if (vhu_mem_sync_reader(&vq->reader))
		vhu_err(&vq->dev->lg, "queue %u: data plane did not leave its burst "
			"within 5 s", vq->index);
}

static void swap_fd(struct vhu_vq *vq, _Atomic int *slot, int fd)
{
	/* Release half: pairs with the data plane's acquire loads of the fd
	 * (vq.c), which may see the new fd while the ring runs (KICK starts a
	 * ring, CALL may come after). */
	int old = atomic_exchange_explicit(slot, fd, memory_order_acq_rel);

	if (old >= 0) {
		/* Barrier [vq-fd]: the data plane loads the fd inside a section;
		 * wait for it before the number can be reused. */
		atomic_thread_fence(memory_order_seq_cst);
		vhu_mem_sync_reader(&vq->reader);
		close(old);
	}
}

void vhu_vq_set_kick_fd(struct vhu_vq *vq, int fd, bool polling)
{
	if (fd >= 0) {
		/* We read it to clear kicks and must never block there.  The
		 * front-end's eventfds are non-blocking already (QEMU, DPDK). */
		int fl = fcntl(fd, F_GETFL);

		if (fl >= 0 && !(fl & O_NONBLOCK))
			fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	}
	swap_fd(vq, &vq->kick_fd, fd);
	vq->kick_polling = polling;
}

void vhu_vq_set_call_fd(struct vhu_vq *vq, int fd)
{
	swap_fd(vq, &vq->call_fd, fd);
}

void vhu_vq_set_err_fd(struct vhu_vq *vq, int fd)
{
	swap_fd(vq, &vq->err_fd, fd);
}

/* A data plane that saw the queue paused may be asleep on the kick fd:
 * wake it to look again. */
static void vq_wake(struct vhu_vq *vq)
{
	int kfd = atomic_load_explicit(&vq->kick_fd, memory_order_relaxed);
	uint64_t one = 1;

	if (kfd >= 0 && write(kfd, &one, sizeof(one)) < 0)
		vhu_warn(&vq->dev->lg, "queue %u: wake-up kick failed", vq->index);
}

void vhu_vq_hold_changed(struct vhu_vq *vq)
{
	if (!vq->started || vq->broken)
		return;
	if (vq->dev->log_held) {
		vq_pause(vq); /* a burst in progress ends first */
		return;
	}
	vq_publish_state(vq);
	vq_wake(vq);
}

/* The queue is unusable until the front-end sets it up again: stop the data
 * plane, tell the application, and signal the front-end's error eventfd
 * (or, with in-band notifications, send VRING_ERR). */
void vhu_vq_mark_broken(struct vhu_vq *vq)
{
	struct vhu_dev *dev = vq->dev;
	int efd;

	if (vq->broken)
		return;
	vq_pause(vq);
	vq->broken = true;
	vq_publish_state(vq);
	efd = atomic_load_explicit(&vq->err_fd, memory_order_relaxed);
	if (efd >= 0) {
		uint64_t one = 1;

		if (write(efd, &one, sizeof(one)) != sizeof(one))
			vhu_warn(&dev->lg, "queue %u: error eventfd write failed",
				 vq->index);
	} else if (vhu_has_protocol(dev, VHU_PF_INBAND_NOTIFICATIONS)) {
		struct vhu_vring_state st = { .index = vq->index, .num = 0 };

		vhu_backend_send(dev, &dev->lg, VHU_BREQ_VRING_ERR, &st, sizeof(st));
	}
	vhu_dev_queue_event(dev, vq->index, VHU_QUEUE_BROKEN);
	vhu_dev_check_ready(dev);
}

/* Translate the ring areas of @vq through memory table @t. */
static int vq_translate(struct vhu_vq *vq, const struct vhu_memtable *t,
			void **desc, void **avail, void **used)
{
	struct vhu_dev *dev = vq->dev;
	uint64_t n = vq->size, dlen, alen, ulen;
	uint64_t dalign, aalign, ualign;

	if (vq->packed) {
		dlen = 16 * n;
		alen = ulen = 4; /* event suppression structures */
		dalign = 16;
		aalign = ualign = 4;
	} else {
		dlen = 16 * n;
		alen = 4 + 2 * n + 2; /* flags, idx, ring, used_event */
		ulen = 4 + 8 * n + 2; /* flags, idx, ring, avail_event */
		dalign = 16;
		aalign = 2;
		ualign = 4;
	}
	const struct vhu_vring_addr *a = &vq->addr;

	if ((a->desc_user_addr & (dalign - 1)) || (a->avail_user_addr & (aalign - 1)) ||
	    (a->used_user_addr & (ualign - 1))) {
		vhu_err(&dev->lg, "queue %u: misaligned ring addresses desc 0x%llx "
			"avail 0x%llx used 0x%llx", vq->index,
			(unsigned long long)a->desc_user_addr,
			(unsigned long long)a->avail_user_addr,
			(unsigned long long)a->used_user_addr);
		return -EINVAL;
	}
	uint64_t got_d = dlen, got_a = alen, got_u = ulen;

	*desc = vhu_uva_to_va(t, a->desc_user_addr, &got_d);
	*avail = vhu_uva_to_va(t, a->avail_user_addr, &got_a);
	*used = vhu_uva_to_va(t, a->used_user_addr, &got_u);
	if (!*desc || !*avail || !*used || got_d != dlen || got_a != alen ||
	    got_u != ulen) {
		vhu_err(&dev->lg, "queue %u: ring (size %u) is not inside guest "
			"memory: desc 0x%llx avail 0x%llx used 0x%llx", vq->index,
			vq->size, (unsigned long long)a->desc_user_addr,
			(unsigned long long)a->avail_user_addr,
			(unsigned long long)a->used_user_addr);
		return -EFAULT;
	}
	/* Aligned addresses can still land misaligned here when a region's
	 * user address and file offset are not congruent: every ring field
	 * is accessed as a whole, aligned, so refuse that too. */
	if (((uintptr_t)*desc & (dalign - 1)) || ((uintptr_t)*avail & (aalign - 1)) ||
	    ((uintptr_t)*used & (ualign - 1))) {
		vhu_err(&dev->lg, "queue %u: ring misaligned in the mapping of its "
			"memory region (region user address and file offset not "
			"congruent)", vq->index);
		return -EINVAL;
	}
	return 0;
}

int vhu_vq_start(struct vhu_vq *vq)
{
	struct vhu_dev *dev = vq->dev;
	bool recovered = true;
	void *d, *a, *u;
	int rc;

	if (vq->started)
		return 0;
	vq->packed = vhu_has_feature(dev, VHU_F_RING_PACKED);
	if (!vq->size || !vq->has_addr || vhu_mem_nregions(&dev->mem) == 0) {
		vhu_err(&dev->lg, "queue %u: cannot start without %s", vq->index,
			!vq->size ? "SET_VRING_NUM" :
			!vq->has_addr ? "SET_VRING_ADDR" : "SET_MEM_TABLE");
		return -EINVAL;
	}
	if (!vq->packed && (vq->size & (vq->size - 1))) {
		vhu_err(&dev->lg, "queue %u: split ring size %u is not a power of 2",
			vq->index, vq->size);
		return -EINVAL;
	}
	if (vq->packed && (vq->last_avail_idx >= vq->size || vq->used_idx >= vq->size)) {
		vhu_err(&dev->lg, "queue %u: packed ring base beyond size %u",
			vq->index, vq->size);
		return -EINVAL;
	}
	rc = vq_translate(vq, vhu_mem_current(&dev->mem), &d, &a, &u);
	if (rc)
		return rc;
	vq->desc = d;
	vq->avail = a;
	vq->used = u;
	/* With inflight tracking the region knows the position (1); a fresh
	 * region, or none, leaves it to the ring. */
	rc = vhu_inflight_start(vq);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0)
		recovered = false;
	if (vq->packed && rc == 0) {
		rc = vhu_vq_recover_packed(vq);
		if (rc == -ENOMEM) {
			vhu_inflight_stop(vq);
			return rc;
		}
		recovered = rc == 0;
		vhu_inflight_fresh(vq);
	}
	vq->features = dev->features;
	vq->event_idx = vhu_has_feature(dev, VHU_F_EVENT_IDX);
	vq->indirect = vhu_has_feature(dev, VHU_F_INDIRECT_DESC);
	vq->in_order = vhu_has_feature(dev, VHU_F_IN_ORDER);
	vq->inband_calls = vhu_has_protocol(dev, VHU_PF_INBAND_NOTIFICATIONS);
	if (!vq->packed) {
		/* The used index lives in guest memory (spec: GET_VRING_BASE
		 * carries only the avail side for split rings). */
		vq->used_idx = ld16(VRING_USED_IDX(u));
		vq->shadow_avail_idx = vq->last_avail_idx;
	}
	vq->signalled_used_valid = false;
	vq->used_since_signal = 0;
	vq->pending_used = 0;
	vq->gen++;
	vq->started = true;
	vq->broken = false;
	/* Without protocol features no SET_VRING_ENABLE will come: a started
	 * ring is enabled.  With them, ENABLED was reported when it came. */
	bool enable_now = !vhu_has_feature(dev, VHU_F_PROTOCOL_FEATURES) &&
			  !vq->enabled;
	if (enable_now)
		vq->enabled = true;
	vq_publish(vq, true);
	vhu_dev_queue_event(dev, vq->index, VHU_QUEUE_STARTED);
	if (enable_now)
		vhu_dev_queue_event(dev, vq->index, VHU_QUEUE_ENABLED);
	/* A packed ring whose position could not be found (class 45):
	 * started, so the front-end's sequence goes on, and broken. */
	if (!recovered)
		vhu_vq_mark_broken(vq);
	vhu_dev_check_ready(dev);
	return 0;
}

/*
 * A memory table change (vhu_mem.hook): before @t replaces the current
 * table, pause every running queue whose ring would move or vanish; once
 * it is current (the old table still mapped), point the ring into it and
 * run again, or break the queue.  A queue whose ring stays in a region both
 * tables share is never paused.
 */
void vhu_vq_mem_change(struct vhu_vq *vq, const struct vhu_memtable *t,
		       enum vhu_mem_phase phase)
{
	void *d, *a, *u;
	int rc;

	if (!vq->started || vq->broken)
		return;
	if (phase == VHU_MEM_BEFORE) {
		rc = vq_translate(vq, t, &d, &a, &u);
		vq->remap = rc ? -1 : (d != vq->desc || a != vq->avail || u != vq->used);
		if (vq->remap)
			vq_pause(vq);
		return;
	}
	if (vq->remap < 0) {
		vhu_err(&vq->dev->lg, "queue %u: ring no longer in guest memory; "
			"queue broken", vq->index);
		vhu_vq_mark_broken(vq);
	} else if (vq->remap > 0) {
		rc = vq_translate(vq, t, &d, &a, &u);
		vq->desc = d;
		vq->avail = a;
		vq->used = u;
		vq_publish_state(vq);
		vq_wake(vq);
	}
	vq->remap = 0;
}

static int64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Every request taken from the ring given back?  (Data-plane fields: the
 * queue is paused.) */
static bool vq_caught_up(const struct vhu_vq *vq)
{
	return vq->used_idx == vq->last_avail_idx &&
	       (!vq->packed || vq->used_wrap == vq->avail_wrap);
}

/*
 * Before GET_VRING_BASE stops the ring (vhu_dev_opts.stop_drain_ms): the
 * data plane runs on with DRAINING, pushing what the application holds
 * and popping nothing new, until a burst ends with the used position at
 * the avail one (vhu_vq_end() sets vq->drained) or the time is up.
 */
void vhu_vq_drain(struct vhu_vq *vq)
{
	uint32_t ms = vq->dev->stop_drain_ms;
	int64_t t0, waited;

	if (!ms || !vq->started || vq->broken || vq->dev->log_held)
		return;
	vq_pause(vq); /* the indexes are ours to read */
	if ((atomic_load_explicit(&vq->dp_state, memory_order_relaxed) & VHU_DP_BROKEN) ||
	    vq_caught_up(vq)) {
		vq_publish_state(vq);
		return;
	}
	atomic_store_explicit(&vq->drained, false, memory_order_relaxed);
	vq->draining = true;
	vq_publish_state(vq);
	vq_wake(vq); /* a burst to see DRAINING even with nothing to push */
	t0 = now_ms();
	/* Acquire, barrier [vq-drain]: pairs with the release store in
	 * vhu_vq_end(); the pushes of the burst that drained are done before
	 * the ring stops. */
	while (!atomic_load_explicit(&vq->drained, memory_order_acquire) &&
	       !(atomic_load_explicit(&vq->dp_state, memory_order_relaxed) & VHU_DP_BROKEN) &&
	       now_ms() - t0 < ms) {
		struct timespec tick = { 0, 1000000 };

		nanosleep(&tick, NULL);
	}
	waited = now_ms() - t0;
	vq->draining = false;
	if (atomic_load_explicit(&vq->drained, memory_order_acquire))
		vhu_info(&vq->dev->lg, "queue %u: requests held by the application "
			 "came back before the ring stopped (%lld ms)", vq->index,
			 (long long)waited);
	else if (!(atomic_load_explicit(&vq->dp_state, memory_order_relaxed) & VHU_DP_BROKEN))
		vhu_warn(&vq->dev->lg, "queue %u: requests still held after %u ms; "
			 "the ring stops without them", vq->index, ms);
}

void vhu_vq_stop(struct vhu_vq *vq)
{
	if (!vq->started)
		return;
	vq_pause(vq);
	vq->started = false;
	vq->desc = vq->avail = vq->used = NULL;
	vhu_inflight_stop(vq);
	vq_publish_state(vq);
	vhu_vq_set_kick_fd(vq, -1, false);
	vhu_vq_set_call_fd(vq, -1);
	vhu_dev_queue_event(vq->dev, vq->index, VHU_QUEUE_STOPPED);
	vhu_dev_check_ready(vq->dev);
}

/* Back to the state of a fresh connection; closes every fd. */
void vhu_vq_reset(struct vhu_vq *vq)
{
	vhu_vq_stop(vq);
	vhu_vq_set_kick_fd(vq, -1, false);
	vhu_vq_set_call_fd(vq, -1);
	vhu_vq_set_err_fd(vq, -1);
	vq->size = 0;
	vq->packed = false;
	vq->has_addr = false;
	vq->enabled = false;
	vq->broken = false;
	vq->kick_polling = false;
	vq->last_avail_idx = vq->used_idx = 0;
	vq->avail_wrap = vq->used_wrap = true;
	memset(&vq->addr, 0, sizeof(vq->addr));
	free(vq->bounce);
	vq->bounce = NULL;
	vq_publish(vq, true);
}

int vhu_vq_set_enable(struct vhu_vq *vq, bool enable)
{
	if (vq->enabled == enable)
		return 0;
	if (!enable && vq->started)
		vq_pause(vq); /* a burst in progress finishes before we report */
	vq->enabled = enable;
	vq_publish_state(vq);
	vhu_dev_queue_event(vq->dev, vq->index,
			    enable ? VHU_QUEUE_ENABLED : VHU_QUEUE_DISABLED);
	vhu_dev_check_ready(vq->dev);
	return 0;
}

uint32_t vhu_vq_get_base(const struct vhu_vq *vq)
{
	if (!vhu_has_feature(vq->dev, VHU_F_RING_PACKED))
		return vq->last_avail_idx;
	return (uint32_t)vq->last_avail_idx |
	       ((uint32_t)vq->avail_wrap << VHU_PACKED_WRAP_BIT) |
	       ((uint32_t)vq->used_idx << 16) |
	       ((uint32_t)vq->used_wrap << (16 + VHU_PACKED_WRAP_BIT));
}

/*
 * Can the device have used up to (@used, @uwrap) and taken up to (@avail,
 * @awrap)?  The used position trails the avail one by 0 .. @size
 * descriptors (@size 0: not known yet, anything goes).
 */
static bool packed_base_consistent(uint32_t size, uint16_t avail, bool awrap,
				   uint16_t used, bool uwrap)
{
	if (!size)
		return true;
	if (awrap == uwrap)
		return avail >= used;
	return avail <= used; /* avail is a lap ahead: at most a ring */
}

int vhu_vq_set_base(struct vhu_vq *vq, uint32_t num)
{
	struct vhu_dev *dev = vq->dev;

	if (vq->started) {
		vhu_err(&dev->lg, "queue %u: SET_VRING_BASE on a started ring",
			vq->index);
		return -EBUSY;
	}
	if (vhu_has_feature(dev, VHU_F_RING_PACKED)) {
		uint16_t avail = num & VHU_PACKED_IDX_MASK;
		uint16_t used;

		/* Front-ends that send only the avail half (DPDK's virtio_user)
		 * start the used index at the same place. */
		if ((num >> 16) == 0 && (num & (1u << VHU_PACKED_WRAP_BIT)))
			num |= (num & 0xffff) << 16;
		used = (num >> 16) & VHU_PACKED_IDX_MASK;

		if (vq->size && (avail >= vq->size || used >= vq->size)) {
			vhu_err(&dev->lg, "queue %u: packed base avail %u used %u "
				"beyond ring size %u", vq->index, avail, used, vq->size);
			return -EINVAL;
		}
		if (!packed_base_consistent(vq->size, avail,
					    num & (1u << VHU_PACKED_WRAP_BIT), used,
					    num & (1u << (16 + VHU_PACKED_WRAP_BIT)))) {
			vhu_err(&dev->lg, "queue %u: packed base 0x%x: the used "
				"position is not within a ring behind the avail one",
				vq->index, num);
			return -EINVAL;
		}
		vq->last_avail_idx = avail;
		vq->avail_wrap = num & (1u << VHU_PACKED_WRAP_BIT);
		vq->used_idx = used;
		vq->used_wrap = num & (1u << (16 + VHU_PACKED_WRAP_BIT));
		return 0;
	}
	/* Split: a free-running 16-bit index, any value is a valid position. */
	if (num > 0xffff) {
		vhu_err(&dev->lg, "queue %u: split ring base %u is not a 16-bit index",
			vq->index, num);
		return -EINVAL;
	}
	vq->last_avail_idx = (uint16_t)num;
	return 0;
}

void vhu_vq_fill_info(const struct vhu_vq *vq, struct vhu_queue_info *info)
{
	memset(info, 0, sizeof(*info));
	info->size = vq->size;
	info->packed = vq->packed || vhu_has_feature(vq->dev, VHU_F_RING_PACKED);
	info->started = vq->started;
	info->enabled = vq->enabled;
	info->broken = vq->broken ||
		       (atomic_load_explicit(&vq->dp_state, memory_order_relaxed) &
			VHU_DP_BROKEN);
	info->has_addr = vq->has_addr;
	info->kick_fd = atomic_load_explicit(&vq->kick_fd, memory_order_relaxed);
	info->call_fd = atomic_load_explicit(&vq->call_fd, memory_order_relaxed);
	info->err_fd = atomic_load_explicit(&vq->err_fd, memory_order_relaxed);
	/* The data plane owns the indexes while the ring runs. */
	info->last_avail_idx = vq->last_avail_idx;
	info->avail_wrap = vq->avail_wrap;
	info->used_idx = vq->used_idx;
	info->used_wrap = vq->used_wrap;
	info->desc_addr = vq->addr.desc_user_addr;
	info->avail_addr = vq->addr.avail_user_addr;
	info->used_addr = vq->addr.used_user_addr;
}
