/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The published segment (see segment.h): a memfd, sized, mapped shared and
 * registered with DPDK as external memory.
 *
 * The mapping is never populated up front: a segment may be many GiB and is
 * touched as pages are written. Plain pages are mapped MAP_NORESERVE for the
 * same reason. Hugetlb pages are mapped without it, so that the kernel
 * reserves them at mmap time: with too few free hugepages mmap fails here,
 * where we can fall back to plain pages, instead of a SIGBUS at the first
 * touch of a page that was never there.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_memory.h>

#include "pc_common.h"
#include "pc_log.h"
#include "segment.h"

#ifndef MFD_HUGE_SHIFT
#define MFD_HUGE_SHIFT 26
#endif

#define SEGMENT_HUGE_DEFAULT (2ull << 20)
#define SEGMENT_SIZE_MAX     (4ull << 40) /* 4 TiB: caps a size from the config */
#define SEGMENT_NAME_DEFAULT "peercache"

struct pc_segment {
	int fd;
	void *base;
	uint64_t size; /* mapped and registered bytes, a multiple of page_sz */
	uint64_t page_sz;
	bool hugepages;
	bool registered;
};

static int
segment_hugepage_size_cb(const struct rte_memseg_list *msl, void *arg)
{
	uint64_t *page_sz = arg;

	if (msl->external || msl->page_sz == 0) {
		return 0;
	}
	*page_sz = msl->page_sz;
	return 1;
}

/* The hugepage size EAL runs with, or 0 when EAL runs without hugepages. */
static uint64_t
segment_eal_hugepage_size(void)
{
	uint64_t page_sz = SEGMENT_HUGE_DEFAULT;

	if (!rte_eal_has_hugepages()) {
		return 0;
	}
	rte_memseg_list_walk(segment_hugepage_size_cb, &page_sz);
	return page_sz;
}

/*
 * Create, size and map the memfd with pages of huge_sz bytes (hugetlb), or
 * plain pages when huge_sz is 0. On failure nothing is left open and seg
 * is untouched. Returns 0 or -errno.
 */
static int
segment_map(struct pc_segment *seg, const char *name, uint64_t size, uint64_t huge_sz)
{
	uint64_t page_sz = huge_sz != 0 ? huge_sz : (uint64_t)sysconf(_SC_PAGESIZE);
	unsigned int flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
	uint64_t len;
	void *base;
	int fd;
	int rc;

	if (huge_sz != 0) {
		flags |= MFD_HUGETLB | ((unsigned int)__builtin_ctzll(huge_sz) << MFD_HUGE_SHIFT);
	}
	len = (size + page_sz - 1) & ~(page_sz - 1);
	fd = memfd_create(name, flags);
	if (fd < 0) {
		return -errno;
	}
	if (ftruncate(fd, (off_t)len) != 0) {
		rc = -errno;
		goto err_close;
	}
	/*
	 * Clients get this descriptor: none of them may resize the file under
	 * the engine's mapping (a shrink would SIGBUS the engine on its next
	 * touch of the lost range).
	 */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
		rc = -errno;
		goto err_close;
	}
	/*
	 * Hugepages are faulted in now, as DPDK does with its own: the pool is
	 * reserved memory, and the first SET of each page must not pay for the
	 * kernel clearing it. Plain pages (tests, laptops) stay lazy.
	 */
	base = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_SHARED | (huge_sz != 0 ? MAP_POPULATE : MAP_NORESERVE), fd, 0);
	if (base == MAP_FAILED) {
		rc = -errno;
		goto err_close;
	}
	seg->fd = fd;
	seg->base = base;
	seg->size = len;
	seg->page_sz = page_sz;
	seg->hugepages = huge_sz != 0;
	return 0;

err_close:
	close(fd);
	return rc;
}

/* pc_segment_create with the hugepage size to try given (0: plain pages only); tests call it. */
static struct pc_segment *
segment_create(const struct pc_segment_opts *opts, uint64_t huge_sz)
{
	const char *name = opts->name != NULL ? opts->name : SEGMENT_NAME_DEFAULT;
	struct pc_segment *seg;
	int rc = -1;

	seg = calloc(1, sizeof(*seg));
	if (seg == NULL) {
		PC_LOG(ERR, mempool, "segment %s: out of memory", name);
		return NULL;
	}
	seg->fd = -1;

	if (huge_sz != 0) {
		rc = segment_map(seg, name, opts->size, huge_sz);
		if (rc < 0) {
			PC_LOG(NOTICE, mempool,
			       "segment %s: no %" PRIu64 " KiB hugepages for %" PRIu64
			       " bytes (%s); using plain pages",
			       name, huge_sz >> 10, opts->size, strerror(-rc));
		}
	}
	if (rc < 0) {
		rc = segment_map(seg, name, opts->size, 0);
		if (rc < 0) {
			PC_LOG(ERR, mempool, "segment %s: cannot create %" PRIu64 " bytes: %s",
			       name, opts->size, strerror(-rc));
			goto err_destroy;
		}
	}

	if (rte_extmem_register(seg->base, seg->size, NULL, 0, seg->page_sz) != 0) {
		rc = -rte_errno;
		PC_LOG(ERR, mempool, "segment %s: rte_extmem_register of %" PRIu64 " bytes: %s",
		       name, seg->size, rte_strerror(-rc));
		goto err_destroy;
	}
	seg->registered = true;

	PC_LOG(INFO, mempool, "segment %s: %" PRIu64 " bytes at %p, %s pages of %" PRIu64 " KiB",
	       name, seg->size, seg->base, seg->hugepages ? "huge" : "plain", seg->page_sz >> 10);
	return seg;

err_destroy:
	pc_segment_destroy(seg);
	return NULL;
}

struct pc_segment *
pc_segment_create(const struct pc_segment_opts *opts)
{
	uint64_t huge_sz = 0;

	if (opts == NULL || opts->size == 0 || opts->size > SEGMENT_SIZE_MAX) {
		PC_LOG(ERR, mempool, "segment: size must be 1..%" PRIu64 " bytes",
		       (uint64_t)SEGMENT_SIZE_MAX);
		return NULL;
	}
	if (opts->hugepages) {
		huge_sz = segment_eal_hugepage_size();
		if (huge_sz == 0) {
			PC_LOG(INFO, mempool, "segment: EAL runs without hugepages; plain pages");
		}
	}
	return segment_create(opts, huge_sz);
}

void
pc_segment_destroy(struct pc_segment *seg)
{
	if (seg == NULL) {
		return;
	}
	if (seg->registered && rte_extmem_unregister(seg->base, seg->size) != 0) {
		PC_LOG(ERR, mempool, "segment: rte_extmem_unregister: %s", rte_strerror(rte_errno));
	}
	if (seg->base != NULL && munmap(seg->base, seg->size) != 0) {
		PC_LOG(ERR, mempool, "segment: munmap: %s", strerror(errno));
	}
	if (seg->fd >= 0) {
		close(seg->fd);
	}
	free(seg);
}

void *
pc_segment_base(const struct pc_segment *seg)
{
	return seg->base;
}

uint64_t
pc_segment_size(const struct pc_segment *seg)
{
	return seg->size;
}

int
pc_segment_fd(const struct pc_segment *seg)
{
	return seg->fd;
}

uint64_t
pc_segment_page_size(const struct pc_segment *seg)
{
	return seg->page_sz;
}

bool
pc_segment_hugepages(const struct pc_segment *seg)
{
	return seg->hugepages;
}
