/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The published segment: one shared-memory region per node that holds every
 * published page. It is a memfd (so local clients can map it from the
 * descriptor the engine passes them, and the TCP fallback can sendfile from
 * it), backed by hugepages (MFD_HUGETLB) when EAL runs with hugepages and
 * enough are free, by plain pages otherwise (`--no-huge`, or no free
 * hugepages: logged), mapped MAP_SHARED and registered with DPDK as external
 * memory (rte_extmem_register) so DPDK libraries and, later, the NIC can
 * address it.
 */
#ifndef PC_SEGMENT_H
#define PC_SEGMENT_H

#include <stdbool.h>
#include <stdint.h>

struct pc_segment;

struct pc_segment_opts {
	const char *name; /* memfd name (shows in /proc/PID/fd) */
	uint64_t size;    /* bytes; rounded up to the backing page size */
	bool hugepages;   /* try MFD_HUGETLB first */
};

/*
 * Create, size, map and register the segment. Control lcore, after
 * rte_eal_init(). Returns NULL and logs on failure (memfd, ftruncate, mmap
 * or registration failed).
 */
struct pc_segment *pc_segment_create(const struct pc_segment_opts *opts);

/* Unregister, unmap, close. Accepts NULL and half-built segments. */
void pc_segment_destroy(struct pc_segment *seg);

void *pc_segment_base(const struct pc_segment *seg);
uint64_t pc_segment_size(const struct pc_segment *seg);
int pc_segment_fd(const struct pc_segment *seg);
/* The backing page size: the hugepage size, or the system page size. */
uint64_t pc_segment_page_size(const struct pc_segment *seg);
bool pc_segment_hugepages(const struct pc_segment *seg);

#endif /* PC_SEGMENT_H */
