/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mempool/segment.c: what a client mapping the segment would notice: bytes
 * written through the engine's mapping read back through a second mapping
 * of the descriptor (and the other way); the size is rounded up to whole
 * pages; DPDK knows the memory while the segment lives and forgets it after;
 * asking for hugepages where there are none still gives a working segment
 * of plain pages; bad options are refused and destroy takes NULL or a
 * half-built segment. EAL runs --no-huge, as in CI.
 */
#define PC_UT_WITH_EAL
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <rte_memory.h>

#include "../../../mempool/segment.c"
#include "ut.h"

#define UT_NAME "segment_ut"
#define MIB     (1ull << 20)

static struct pc_segment *
seg_new(const char *name, uint64_t size, bool huge)
{
	struct pc_segment_opts opts = {.name = name, .size = size, .hugepages = huge};

	return pc_segment_create(&opts);
}

/* Free hugepages of the default size, from /proc/meminfo (0 when unknown). */
static uint64_t
free_hugepages(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	unsigned long long n = 0;

	if (f == NULL) {
		return 0;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "HugePages_Free: %llu", &n) == 1) {
			break;
		}
	}
	fclose(f);
	return n;
}

/* Bytes written through one mapping are seen through a second mapping of the fd, both ways. */
static void
check_shared(struct pc_segment *seg)
{
	uint64_t size = pc_segment_size(seg);
	uint8_t *base = pc_segment_base(seg);
	uint8_t *other;
	struct stat st;

	CU_ASSERT_EQUAL_FATAL(fstat(pc_segment_fd(seg), &st), 0);
	CU_ASSERT_EQUAL((uint64_t)st.st_size, size);
	other = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, pc_segment_fd(seg), 0);
	CU_ASSERT_FATAL(other != MAP_FAILED);
	for (uint64_t off = 0; off < size; off += size / 7 + 1) {
		base[off] = (uint8_t)(off * 13 + 1);
	}
	base[size - 1] = 0xA5;
	for (uint64_t off = 0; off < size; off += size / 7 + 1) {
		CU_ASSERT_EQUAL(other[off], (uint8_t)(off * 13 + 1));
	}
	CU_ASSERT_EQUAL(other[size - 1], 0xA5);
	other[size / 2] = 0x5A;
	CU_ASSERT_EQUAL(base[size / 2], 0x5A);
	munmap(other, size);
}

static void
test_create_shared(void)
{
	struct pc_segment *seg = seg_new("ut_seg", 10 * MIB, false);
	char path[64], link[256];
	ssize_t n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(seg);
	CU_ASSERT_EQUAL(pc_segment_size(seg), 10 * MIB);
	CU_ASSERT_FALSE(pc_segment_hugepages(seg));
	CU_ASSERT_PTR_NOT_NULL(pc_segment_base(seg));
	check_shared(seg);

	/* Close-on-exec, and named in /proc/PID/fd. */
	CU_ASSERT((fcntl(pc_segment_fd(seg), F_GETFD) & FD_CLOEXEC) != 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", pc_segment_fd(seg));
	n = readlink(path, link, sizeof(link) - 1);
	CU_ASSERT_FATAL(n > 0);
	link[n] = '\0';
	CU_ASSERT_PTR_NOT_NULL(strstr(link, "memfd:ut_seg"));
	pc_segment_destroy(seg);
}

static void
test_size_rounding(void)
{
	uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE);
	const struct {
		uint64_t size, expect;
	} cases[] = {
		{1, pg}, {pg - 1, pg}, {pg, pg}, {pg + 1, 2 * pg}, {3 * MIB + 5, 3 * MIB + pg},
	};

	for (size_t i = 0; i < PC_ARRAY_SIZE(cases); i++) {
		struct pc_segment *seg = seg_new("ut_round", cases[i].size, false);

		CU_ASSERT_PTR_NOT_NULL_FATAL(seg);
		CU_ASSERT_EQUAL(pc_segment_size(seg), cases[i].expect);
		CU_ASSERT_EQUAL(pc_segment_page_size(seg), pg);
		CU_ASSERT_EQUAL((uintptr_t)pc_segment_base(seg) % pg, 0);
		check_shared(seg);
		pc_segment_destroy(seg);
	}
}

/* DPDK sees the segment as external memory while it lives, and not after. */
static void
test_registered(void)
{
	struct pc_segment *seg = seg_new("ut_reg", 4 * MIB, false);
	struct rte_memseg_list *msl;
	void *base;

	CU_ASSERT_PTR_NOT_NULL_FATAL(seg);
	base = pc_segment_base(seg);
	msl = rte_mem_virt2memseg_list(base);
	CU_ASSERT_PTR_NOT_NULL_FATAL(msl);
	CU_ASSERT(msl->external);
	CU_ASSERT_EQUAL(msl->page_sz, pc_segment_page_size(seg));
	CU_ASSERT_EQUAL(msl->len, pc_segment_size(seg));
	CU_ASSERT_PTR_NOT_NULL(rte_mem_virt2memseg((uint8_t *)base + 4 * MIB - 1, msl));
	pc_segment_destroy(seg);
	CU_ASSERT_PTR_NULL(rte_mem_virt2memseg_list(base));
}

static void
test_hugepage_fallback(void)
{
	uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t huge = 2 * MIB;
	struct pc_segment_opts opts = {.name = "ut_huge", .size = 8 * MIB + 1, .hugepages = true};
	struct pc_segment *seg;

	/* EAL runs --no-huge: the segment does not try hugepages at all. */
	seg = pc_segment_create(&opts);
	CU_ASSERT_PTR_NOT_NULL_FATAL(seg);
	CU_ASSERT_FALSE(pc_segment_hugepages(seg));
	CU_ASSERT_EQUAL(pc_segment_page_size(seg), pg);
	check_shared(seg);
	pc_segment_destroy(seg);

	/* Try 2 MiB hugepages for real: with too few free, plain pages that work. */
	seg = segment_create(&opts, huge);
	CU_ASSERT_PTR_NOT_NULL_FATAL(seg);
	if (free_hugepages() * huge >= 10 * MIB) {
		fprintf(stderr, "(this host has free hugepages: checked the hugepage path) ");
		CU_ASSERT_TRUE(pc_segment_hugepages(seg));
		CU_ASSERT_EQUAL(pc_segment_page_size(seg), huge);
		CU_ASSERT_EQUAL(pc_segment_size(seg), 10 * MIB);
	} else {
		CU_ASSERT_FALSE(pc_segment_hugepages(seg));
		CU_ASSERT_EQUAL(pc_segment_page_size(seg), pg);
		CU_ASSERT_EQUAL(pc_segment_size(seg), 8 * MIB + pg);
	}
	CU_ASSERT_PTR_NOT_NULL(rte_mem_virt2memseg_list(pc_segment_base(seg)));
	check_shared(seg);
	pc_segment_destroy(seg);

	/* The mapping failure itself leaves nothing behind. */
	if (free_hugepages() == 0) {
		struct pc_segment s = {.fd = -1};

		CU_ASSERT(segment_map(&s, "ut_huge", 8 * MIB, huge) < 0);
		CU_ASSERT_EQUAL(s.fd, -1);
		CU_ASSERT_PTR_NULL(s.base);
	}
}

/* A client holding the descriptor cannot resize the file under the engine's mapping. */
static void
test_sealed(void)
{
	struct pc_segment *seg = seg_new("ut_sealed", 4 * MIB, false);
	int fd;

	CU_ASSERT_PTR_NOT_NULL_FATAL(seg);
	fd = pc_segment_fd(seg);
	CU_ASSERT_EQUAL(ftruncate(fd, 4096), -1);
	CU_ASSERT_EQUAL(errno, EPERM);
	CU_ASSERT_EQUAL(ftruncate(fd, 8 * MIB), -1);
	CU_ASSERT_EQUAL(errno, EPERM);
	CU_ASSERT_EQUAL(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1); /* the seals are sealed */
	CU_ASSERT_EQUAL(pc_segment_size(seg), 4 * MIB);
	memset(pc_segment_base(seg), 0x5a, 4 * MIB); /* still all there */
	pc_segment_destroy(seg);
}

static void
test_bad_options_and_destroy(void)
{
	struct pc_segment_opts opts = {.name = NULL, .size = 0};
	struct pc_segment *half;
	int fd;

	CU_ASSERT_PTR_NULL(pc_segment_create(NULL));
	CU_ASSERT_PTR_NULL(pc_segment_create(&opts));
	opts.size = SEGMENT_SIZE_MAX + 1;
	CU_ASSERT_PTR_NULL(pc_segment_create(&opts));
	opts.size = UINT64_MAX;
	CU_ASSERT_PTR_NULL(pc_segment_create(&opts));
	pc_segment_destroy(NULL);

	/* No name: a default one. */
	opts.size = 4096;
	half = pc_segment_create(&opts);
	CU_ASSERT_PTR_NOT_NULL_FATAL(half);
	pc_segment_destroy(half);

	/* Half-built: a descriptor but no mapping, no registration. */
	half = calloc(1, sizeof(*half));
	CU_ASSERT_PTR_NOT_NULL_FATAL(half);
	fd = memfd_create("ut_half", MFD_CLOEXEC);
	CU_ASSERT_FATAL(fd >= 0);
	half->fd = fd;
	pc_segment_destroy(half);
	CU_ASSERT_EQUAL(fcntl(fd, F_GETFD), -1); /* closed */
}

static const struct pc_ut_test segment_tests[] = {
	{"create: shared memfd, both mappings see the bytes", test_create_shared},
	{"size rounded up to the page size", test_size_rounding},
	{"registered with DPDK as external memory", test_registered},
	{"hugepages asked for, none free: plain pages", test_hugepage_fallback},
	{"sealed: clients cannot shrink or grow it", test_sealed},
	{"bad options; destroy NULL and half-built", test_bad_options_and_destroy},
	{NULL, NULL},
};

static const struct pc_ut_suite suites[] = {
	{"segment", NULL, NULL, segment_tests},
};

int
main(void)
{
	int rc;

	if (pc_ut_eal_init(UT_NAME, "0") != 0) {
		return 1;
	}
	rc = pc_ut_run(suites, PC_ARRAY_SIZE(suites));
	rte_eal_cleanup();
	return rc;
}
