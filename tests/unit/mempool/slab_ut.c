/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mempool/slab.c: size classes and what the store would notice: every
 * payload gets a class that fits it with bounded waste; slots handed out
 * never overlap, stay inside the segment and are 64-byte aligned; memory
 * filled with one size and freed serves another size just as well; an
 * offset from outside resolves only at an exact slot start; the CLOCK scan
 * sees every slot once per turn; the victim window's slots, once freed,
 * make room for a span that could not be formed; two threads allocating and
 * freeing at once never get the same bytes. No EAL: the segment is an
 * aligned malloc.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../../../mempool/slab.c"
#include "ut.h"

#define MIB (1ull << 20)

struct ut_slab {
	uint8_t *mem;
	uint64_t size;
	struct pc_slab *slab;
};

static void
ut_slab_new(struct ut_slab *u, uint64_t size, unsigned int nb_caches)
{
	struct pc_slab_opts opts = {.name = "ut", .size = size, .nb_caches = nb_caches};

	u->mem = aligned_alloc(4096, size);
	CU_ASSERT_PTR_NOT_NULL_FATAL(u->mem);
	u->size = size;
	opts.base = u->mem;
	u->slab = pc_slab_create(&opts);
	CU_ASSERT_PTR_NOT_NULL_FATAL(u->slab);
}

static void
ut_slab_free(struct ut_slab *u)
{
	pc_slab_destroy(u->slab);
	free(u->mem);
	memset(u, 0, sizeof(*u));
}

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint64_t
rnd(void)
{
	g_rng ^= g_rng << 13;
	g_rng ^= g_rng >> 7;
	g_rng ^= g_rng << 17;
	return g_rng;
}

static uint64_t
round64(uint64_t x)
{
	return (x + 63) & ~(uint64_t)63;
}

/* Allocate class_id until the slab says no; returns the count, slots in out[]. */
static unsigned int
fill(struct pc_slab *slab, unsigned int ci, int class_id, struct pc_slot **out, unsigned int max)
{
	unsigned int total = 0, got;

	do {
		got = pc_slab_alloc_burst(slab, ci, class_id, out + total,
					  PC_MIN(16u, max - total));
		total += got;
	} while (got > 0 && total < max);
	return total;
}

static void
free_all(struct pc_slab *slab, unsigned int ci, struct pc_slot **slots, unsigned int n)
{
	for (unsigned int i = 0; i < n; i += 16) {
		pc_slab_free_bulk(slab, ci, slots + i, PC_MIN(16u, n - i));
	}
	pc_slab_flush_cache(slab, ci);
}

/* Stamp every 8-byte word of the slot (header, payload, key tail) with its offset. */
static void
stamp(struct pc_slab *slab, const struct pc_slot *s)
{
	uint64_t *w = (uint64_t *)pc_slab_page(slab, s);
	uint64_t n = pc_slab_class_slot_size(s->class_id) / 8;

	for (uint64_t i = 0; i < n; i++) {
		w[i] = s->off;
	}
}

static bool
stamp_intact(struct pc_slab *slab, const struct pc_slot *s)
{
	const uint64_t *w = (const uint64_t *)pc_slab_page(slab, s);
	uint64_t n = pc_slab_class_slot_size(s->class_id) / 8;

	for (uint64_t i = 0; i < n; i++) {
		if (w[i] != s->off) {
			return false;
		}
	}
	return true;
}

/* ---- classes ---- */

static void
test_class_boundaries(void)
{
	static const struct {
		uint32_t len;
		int id;
		uint32_t cap;
	} cases[] = {
		{1, 0, 4096},
		{4096, 0, 4096},
		{4097, 1, 8192},
		{65535, 15, 65536},
		{65536, 15, 65536},
		{65537, 16, 65536 + 4096},
		{69632, 16, 69632},
		{69633, 17, 69632 + 4096},
		{131072, 31, 131072},
		{131073, 32, 131072 + 8192},
		{1u << 20, 79, 1u << 20},
		{(1u << 20) + 1, 80, (1u << 20) + (1u << 16)},
		{PC_PAGE_PAYLOAD_MAX, 175, PC_PAGE_PAYLOAD_MAX},
		{0, -EMSGSIZE, 0},
		{PC_PAGE_PAYLOAD_MAX + 1, -EMSGSIZE, 0},
		{UINT32_MAX, -EMSGSIZE, 0},
	};

	for (size_t i = 0; i < PC_ARRAY_SIZE(cases); i++) {
		int id = pc_slab_class_of(cases[i].len);

		CU_ASSERT_EQUAL(id, cases[i].id);
		if (cases[i].id >= 0) {
			CU_ASSERT_EQUAL(pc_slab_class_cap(id), cases[i].cap);
			CU_ASSERT_EQUAL(
				pc_slab_class_slot_size(id),
				round64(PC_PAGE_HDR_SIZE + cases[i].cap + PC_SLAB_KEY_TAIL));
		}
	}
	CU_ASSERT_EQUAL(pc_slab_class_cap(-1), 0);
	CU_ASSERT_EQUAL(pc_slab_class_cap(SLAB_NB_CLASSES), 0);
	CU_ASSERT_EQUAL(pc_slab_class_slot_size(PC_SLAB_MAX_CLASSES), 0);
}

static void
check_len(uint32_t len, int *prev_id)
{
	int id = pc_slab_class_of(len);
	uint32_t cap = pc_slab_class_cap(id);

	CU_ASSERT_FATAL(id >= 0 && id < PC_SLAB_MAX_CLASSES);
	CU_ASSERT_FATAL(cap >= len);
	/* The smallest class that fits: the one below does not. */
	if (id > 0) {
		CU_ASSERT_FATAL(pc_slab_class_cap(id - 1) < len);
	}
	if (len <= 65536) {
		CU_ASSERT_FATAL(cap - len < 4096);
	} else {
		CU_ASSERT_FATAL((uint64_t)(cap - len) * 16 < len); /* under 6.25 % */
	}
	CU_ASSERT_FATAL(pc_slab_class_slot_size(id) - PC_PAGE_HDR_SIZE - PC_SLAB_KEY_TAIL - len <
			(len <= 65536 ? 4096 + 64 : len / 16 + 64));
	CU_ASSERT_FATAL(id >= *prev_id);
	*prev_id = id;
}

static void
test_class_sweep(void)
{
	int prev = 0;

	for (uint32_t len = 1; len <= 65536; len++) {
		check_len(len, &prev);
	}
	for (uint64_t len = 65537; len <= PC_PAGE_PAYLOAD_MAX; len += 1 + len / 3000) {
		check_len((uint32_t)len, &prev);
	}
	/* Either side of every class edge, in id order. */
	prev = 0;
	for (int id = 0; id < SLAB_NB_CLASSES; id++) {
		uint32_t cap = pc_slab_class_cap(id);

		CU_ASSERT_FATAL(cap > 0);
		check_len(cap, &prev);
		CU_ASSERT_EQUAL(pc_slab_class_of(cap), id);
		if (cap < PC_PAGE_PAYLOAD_MAX) {
			CU_ASSERT_EQUAL(pc_slab_class_of(cap + 1), id + 1);
		}
		if (id > 0) {
			CU_ASSERT(cap > pc_slab_class_cap(id - 1));
		}
	}
	CU_ASSERT_EQUAL(pc_slab_class_of(PC_PAGE_PAYLOAD_MAX), SLAB_NB_CLASSES - 1);
}

static void
test_geometry(void)
{
	uint32_t d = slab_desc_per_chunk();

	for (int id = 0; id < SLAB_NB_CLASSES; id++) {
		struct slab_geom g;
		uint64_t span, used;

		slab_geom_of(id, &g);
		span = (uint64_t)g.nchunks * PC_SLAB_CHUNK_SIZE;
		used = (uint64_t)g.nslots * g.slot_size;
		CU_ASSERT(g.nslots >= 1 && g.nslots <= 64);
		CU_ASSERT(used <= span);
		CU_ASSERT(used > span - PC_SLAB_CHUNK_SIZE); /* no chunk left empty */
		CU_ASSERT((span - used) * 32 <= span);       /* packing waste <= 1/32 */
		CU_ASSERT(g.slot_size % 64 == 0);
		CU_ASSERT(g.nslots <= d * g.nchunks);
		if (g.cap <= 65536) {
			CU_ASSERT(span <= 2 * MIB);
			CU_ASSERT(g.cache_max >= 31);
		}
		CU_ASSERT((uint64_t)g.cache_max * g.slot_size <= SLAB_CACHE_BYTES);
		if (g.slot_size >= 4 * MIB) {
			CU_ASSERT_EQUAL(g.cache_max, 0);
		}
	}
	/* The descriptor table is under 1.5 % of the segment. */
	CU_ASSERT(d * sizeof(struct pc_slot) * 1000 < PC_SLAB_CHUNK_SIZE * 15);
}

/* ---- allocation ---- */

static void
test_create_args(void)
{
	uint8_t *mem = aligned_alloc(4096, 4 * MIB);
	struct pc_slab_opts ok = {.name = "ut", .base = mem, .size = 4 * MIB, .nb_caches = 1};
	struct pc_slab_opts o;
	struct pc_slab *slab;
	struct pc_slot *s[1];

	CU_ASSERT_PTR_NOT_NULL_FATAL(mem);
	CU_ASSERT_PTR_NULL(pc_slab_create(NULL));
	o = ok, o.base = NULL;
	CU_ASSERT_PTR_NULL(pc_slab_create(&o));
	o = ok, o.base = mem + 8;
	CU_ASSERT_PTR_NULL(pc_slab_create(&o));
	o = ok, o.size = PC_SLAB_CHUNK_SIZE - 1;
	CU_ASSERT_PTR_NULL(pc_slab_create(&o));
	o = ok, o.nb_caches = 0;
	CU_ASSERT_PTR_NULL(pc_slab_create(&o));
	pc_slab_destroy(NULL);

	/* A partial chunk at the end is not used. */
	o = ok, o.size = 4 * MIB - 1;
	slab = pc_slab_create(&o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(slab);
	{
		struct pc_slab_stats st;

		pc_slab_get_stats(slab, &st);
		CU_ASSERT_EQUAL(st.chunks_total, 4 * MIB / PC_SLAB_CHUNK_SIZE - 1);
		CU_ASSERT_EQUAL(st.chunks_free, st.chunks_total);
		CU_ASSERT_EQUAL(st.classes, 0);
	}
	CU_ASSERT_EQUAL(pc_slab_alloc_burst(slab, 1, 0, s, 1), 0);  /* ci out of range */
	CU_ASSERT_EQUAL(pc_slab_alloc_burst(slab, 0, -1, s, 1), 0); /* no such class */
	CU_ASSERT_EQUAL(pc_slab_alloc_burst(slab, 0, SLAB_NB_CLASSES, s, 1), 0);
	pc_slab_destroy(slab);
	free(mem);
}

static void
test_alloc_disjoint(void)
{
	static const uint32_t lens[] = {1,      4096,   5000,     65536,          65537,
					100000, 300000, 1u << 20, (1u << 20) + 1, 3u << 20};
	enum { MAX_SLOTS = 4096 };
	struct pc_slot **all = calloc(MAX_SLOTS, sizeof(*all));
	struct pc_slab_stats st;
	struct ut_slab u;
	unsigned int n = 0;
	uint64_t bytes = 0;
	bool ok = true;

	CU_ASSERT_PTR_NOT_NULL_FATAL(all);
	ut_slab_new(&u, 64 * MIB, 2);
	/* Allocate a mix until about half the segment is handed out. */
	while (bytes < u.size / 2 && n + 8 <= MAX_SLOTS) {
		int id = pc_slab_class_of(lens[rnd() % PC_ARRAY_SIZE(lens)]);
		unsigned int want = 1 + (unsigned int)(rnd() % 8);
		unsigned int got =
			pc_slab_alloc_burst(u.slab, (unsigned int)(rnd() % 2), id, all + n, want);

		CU_ASSERT_EQUAL_FATAL(got, want);
		for (unsigned int i = n; i < n + got; i++) {
			CU_ASSERT_EQUAL(all[i]->class_id, id);
			CU_ASSERT_EQUAL(all[i]->cap, pc_slab_class_cap(id));
			CU_ASSERT_EQUAL(all[i]->off % 64, 0);
			CU_ASSERT(all[i]->off + pc_slab_class_slot_size(id) <= u.size);
			CU_ASSERT_PTR_EQUAL(pc_slab_key_tail(u.slab, all[i]),
					    u.mem + all[i]->off + PC_PAGE_HDR_SIZE + all[i]->cap);
			stamp(u.slab, all[i]);
			bytes += pc_slab_class_slot_size(id);
		}
		n += got;
	}
	/* A slot overlapping another would have had part of its stamp overwritten. */
	for (unsigned int i = 0; i < n; i++) {
		ok &= stamp_intact(u.slab, all[i]);
		ok &= pc_slab_slot_at(u.slab, all[i]->off) == all[i];
	}
	CU_ASSERT(ok);

	/* Free in a shuffled order, mixed classes in each bulk, from both caches. */
	for (unsigned int i = n; i > 1; i--) {
		unsigned int j = (unsigned int)(rnd() % i);
		struct pc_slot *t = all[i - 1];

		all[i - 1] = all[j];
		all[j] = t;
	}
	for (unsigned int i = 0; i < n; i += 5) {
		pc_slab_free_bulk(u.slab, (i / 5) % 2, all + i, PC_MIN(5u, n - i));
	}
	pc_slab_flush_cache(u.slab, 0);
	pc_slab_flush_cache(u.slab, 1);
	pc_slab_get_stats(u.slab, &st);
	CU_ASSERT_EQUAL(st.chunks_free, st.chunks_total);
	CU_ASSERT_EQUAL(st.spans_taken, st.spans_returned);
	CU_ASSERT(st.spans_taken > 0);
	CU_ASSERT_EQUAL(u.slab->bins[bin_of(u.slab->nb_chunks)], 0); /* one run, from chunk 0 */
	CU_ASSERT_EQUAL(u.slab->spans[0].nchunks, u.slab->nb_chunks);
	ut_slab_free(&u);
	free(all);
}

/* Fill with one size, free, then another size gets the same memory. */
static void
test_rebalance(void)
{
	enum { MAX_SLOTS = 16384 };
	struct pc_slot **all = calloc(MAX_SLOTS, sizeof(*all));
	int small = pc_slab_class_of(4096), big = pc_slab_class_of(1u << 20);
	unsigned int n_big, n_small, n;
	struct pc_slab_stats st;
	struct ut_slab u;

	CU_ASSERT_PTR_NOT_NULL_FATAL(all);
	ut_slab_new(&u, 64 * MIB, 1);

	n_big = fill(u.slab, 0, big, all, MAX_SLOTS);
	CU_ASSERT(n_big * pc_slab_class_slot_size(big) > u.size * 9 / 10);
	CU_ASSERT_EQUAL(pc_slab_alloc_burst(u.slab, 0, big, all + n_big, 1), 0);
	free_all(u.slab, 0, all, n_big);

	n_small = fill(u.slab, 0, small, all, MAX_SLOTS);
	CU_ASSERT(n_small * pc_slab_class_slot_size(small) > u.size * 95 / 100);
	CU_ASSERT(n_small < MAX_SLOTS);
	/* Full: no room for any other class either, and nothing blocks. */
	CU_ASSERT_EQUAL(pc_slab_alloc_burst(u.slab, 0, big, all + n_small, 1), 0);
	CU_ASSERT_EQUAL(pc_slab_alloc_burst(u.slab, 0, pc_slab_class_of(8192), all + n_small, 4),
			0);
	free_all(u.slab, 0, all, n_small);
	pc_slab_get_stats(u.slab, &st);
	CU_ASSERT_EQUAL(st.chunks_free, st.chunks_total);

	n = fill(u.slab, 0, big, all, MAX_SLOTS);
	CU_ASSERT_EQUAL(n, n_big);
	free_all(u.slab, 0, all, n);
	n = fill(u.slab, 0, small, all, MAX_SLOTS);
	CU_ASSERT_EQUAL(n, n_small);
	free_all(u.slab, 0, all, n);

	pc_slab_get_stats(u.slab, &st);
	CU_ASSERT_EQUAL(st.chunks_free, st.chunks_total);
	CU_ASSERT_EQUAL(st.spans_taken, st.spans_returned);
	CU_ASSERT_EQUAL(st.classes, 3);
	ut_slab_free(&u);
	free(all);
}

/* Warm alloc/free cycles stay in the cache; flushing gives the span back. */
static void
test_cache(void)
{
	int id = pc_slab_class_of(10000);
	struct pc_slab_stats st;
	struct pc_slot *s[4];
	int ids[4] = {-1, -1, -1, -1};
	struct ut_slab u;

	ut_slab_new(&u, 8 * MIB, 2);
	for (int i = 0; i < 1000; i++) {
		CU_ASSERT_EQUAL_FATAL(pc_slab_alloc_burst(u.slab, 0, id, s, 3), 3);
		pc_slab_free_bulk(u.slab, 0, s, 3);
	}
	pc_slab_get_stats(u.slab, &st);
	CU_ASSERT_EQUAL(st.spans_taken, 1);
	CU_ASSERT_EQUAL(st.spans_returned, 0);
	pc_slab_flush_cache(u.slab, 1); /* another cache: nothing of ours there */
	pc_slab_get_stats(u.slab, &st);
	CU_ASSERT_EQUAL(st.spans_returned, 0);
	pc_slab_flush_cache(u.slab, 0);
	pc_slab_get_stats(u.slab, &st);
	CU_ASSERT_EQUAL(st.spans_returned, 1);
	CU_ASSERT_EQUAL(st.chunks_free, st.chunks_total);

	/* Classes appear on first use, in id order. */
	CU_ASSERT_EQUAL(pc_slab_alloc_burst(u.slab, 1, pc_slab_class_of(1u << 20), s, 1), 1);
	pc_slab_free_bulk(u.slab, 1, s, 1);
	CU_ASSERT_EQUAL(pc_slab_classes(u.slab, ids, 4), 2);
	CU_ASSERT_EQUAL(ids[0], id);
	CU_ASSERT_EQUAL(ids[1], pc_slab_class_of(1u << 20));
	CU_ASSERT_EQUAL(pc_slab_classes(u.slab, ids, 1), 1);
	ut_slab_free(&u);
}

/* A span re-formed for another class gets fresh descriptors; store fields zeroed. */
static void
test_descriptor_reinit(void)
{
	int small = pc_slab_class_of(4096), big = pc_slab_class_of(PC_PAGE_PAYLOAD_MAX);
	struct pc_slot *s[1], *d;
	struct ut_slab u;

	ut_slab_new(&u, 128 * MIB, 1);
	CU_ASSERT_EQUAL_FATAL(pc_slab_alloc_burst(u.slab, 0, small, s, 1), 1);
	/* The slot at offset 0 (free, in the cache) as the store may have left it. */
	d = pc_slab_slot_at(u.slab, 0);
	CU_ASSERT_PTR_EQUAL_FATAL(d, &u.slab->desc[0]);
	CU_ASSERT_EQUAL(d->class_id, small);
	d->generation = 77;
	d->state = 5;
	d->key_len = 9;
	pc_slab_free_bulk(u.slab, 0, s, 1);
	pc_slab_flush_cache(u.slab, 0);
	CU_ASSERT_PTR_NULL(pc_slab_slot_at(u.slab, 0)); /* its span went back */

	CU_ASSERT_EQUAL_FATAL(pc_slab_alloc_burst(u.slab, 0, big, s, 1), 1);
	CU_ASSERT_EQUAL(s[0]->off, 0);
	CU_ASSERT_PTR_EQUAL(s[0], &u.slab->desc[0]); /* the same descriptor, re-formed */
	CU_ASSERT_EQUAL(s[0]->class_id, big);
	CU_ASSERT_EQUAL(s[0]->cap, PC_PAGE_PAYLOAD_MAX);
	CU_ASSERT_EQUAL(s[0]->generation, 0);
	CU_ASSERT_EQUAL(s[0]->state, 0);
	CU_ASSERT_EQUAL(s[0]->key_len, 0);
	pc_slab_free_bulk(u.slab, 0, s, 1);
	ut_slab_free(&u);
}

/* ---- lookups ---- */

static void
test_slot_at(void)
{
	int small = pc_slab_class_of(4096), big = pc_slab_class_of(1u << 20);
	uint64_t slot_small = pc_slab_class_slot_size(small);
	uint64_t slot_big = pc_slab_class_slot_size(big);
	struct pc_slot *a[29], *b[1];
	struct ut_slab u;
	uint64_t span_end;

	ut_slab_new(&u, 16 * MIB, 1);
	CU_ASSERT_EQUAL_FATAL(pc_slab_alloc_burst(u.slab, 0, small, a, 29), 29);
	CU_ASSERT_EQUAL_FATAL(pc_slab_alloc_burst(u.slab, 0, big, b, 1), 1);

	for (unsigned int i = 0; i < 29; i++) {
		CU_ASSERT_PTR_EQUAL(pc_slab_slot_at(u.slab, a[i]->off), a[i]);
	}
	CU_ASSERT_PTR_EQUAL(pc_slab_slot_at(u.slab, b[0]->off), b[0]);
	{
		const uint64_t bad[] = {
			a[3]->off + 1,
			a[3]->off + 64,
			a[3]->off + PC_PAGE_HDR_SIZE + 4096, /* the key tail */
			a[3]->off + slot_small - 64,
			b[0]->off + 1,
			b[0]->off + PC_SLAB_CHUNK_SIZE, /* a chunk boundary inside the slot */
			b[0]->off + slot_big,           /* past its span's only slot */
			29 * slot_small,                /* the 4 KiB span's tail waste */
			8 * MIB,                        /* a free chunk */
			u.slab->size - 64,
			u.slab->size,
			u.slab->size + 1,
			UINT64_MAX,
			UINT64_MAX - 63,
			(uint64_t)UINT32_MAX << 16,
			1ull << 63,
		};

		for (size_t i = 0; i < PC_ARRAY_SIZE(bad); i++) {
			CU_ASSERT_PTR_NULL(pc_slab_slot_at(u.slab, bad[i]));
		}
	}
	span_end = (uint64_t)u.slab->classes[small].g.nchunks * PC_SLAB_CHUNK_SIZE;
	CU_ASSERT(29 * slot_small < span_end);

	/*
	 * Keep the lowest slot, free the rest: free slots of its held span still
	 * resolve (the scan and the store see them), those of a span that went
	 * back do not.
	 */
	{
		unsigned int k = 0;
		struct pc_slot *t;
		bool ok = true;

		for (unsigned int i = 1; i < 29; i++) {
			k = a[i]->off < a[k]->off ? i : k;
		}
		t = a[k], a[k] = a[28], a[28] = t;
		pc_slab_free_bulk(u.slab, 0, a, 28);
		pc_slab_flush_cache(u.slab, 0);
		CU_ASSERT_PTR_EQUAL(pc_slab_slot_at(u.slab, a[28]->off), a[28]);
		for (unsigned int i = 0; i < 28; i++) {
			ok &= pc_slab_slot_at(u.slab, a[i]->off) ==
			      (a[i]->off < span_end ? a[i] : NULL);
		}
		CU_ASSERT(ok);
		pc_slab_free_bulk(u.slab, 0, a + 28, 1);
		pc_slab_flush_cache(u.slab, 0);
		CU_ASSERT_PTR_NULL(pc_slab_slot_at(u.slab, a[28]->off));
	}
	CU_ASSERT_PTR_EQUAL(pc_slab_slot_at(u.slab, b[0]->off), b[0]);
	pc_slab_free_bulk(u.slab, 0, b, 1);
	CU_ASSERT_PTR_EQUAL(pc_slab_slot_at(u.slab, b[0]->off), b[0]); /* in the cache */
	pc_slab_flush_cache(u.slab, 0);
	CU_ASSERT_PTR_NULL(pc_slab_slot_at(u.slab, b[0]->off));
	CU_ASSERT_PTR_NULL(pc_slab_slot_at(NULL, 0));
	ut_slab_free(&u);
}

static void
test_scan(void)
{
	enum { MAX_SLOTS = 2048 };
	int a_id = pc_slab_class_of(20000), b_id = pc_slab_class_of(4096);
	struct pc_slot **held = calloc(MAX_SLOTS, sizeof(*held));
	struct pc_slot *out[64];
	unsigned int *visits;
	unsigned int n = 0, total, got, seen;
	size_t ndesc;
	struct ut_slab u;
	uint64_t cursor = 0, prev;
	bool ok = true;

	CU_ASSERT_PTR_NOT_NULL_FATAL(held);
	ut_slab_new(&u, 32 * MIB, 1);
	ndesc = u.slab->desc_len / sizeof(struct pc_slot);
	visits = calloc(ndesc, sizeof(*visits));
	CU_ASSERT_PTR_NOT_NULL_FATAL(visits);
	CU_ASSERT_EQUAL(pc_slab_scan(u.slab, a_id, &cursor, out, 64), 0); /* no spans yet */

	/* Interleave the two classes' spans; then free some A slots (scan shows them too). */
	for (int r = 0; r < 12; r++) {
		n += pc_slab_alloc_burst(u.slab, 0, a_id, held + n, 30);
		n += pc_slab_alloc_burst(u.slab, 0, b_id, held + n, 40);
	}
	pc_slab_free_bulk(u.slab, 0, held, 10);
	pc_slab_flush_cache(u.slab, 0);
	total = (unsigned int)(u.slab->classes[a_id].nspans * u.slab->classes[a_id].g.nslots);
	CU_ASSERT_FATAL(total > 0);

	/* Three turns in steps of 7: every A slot once per turn, in address order. */
	cursor = 0;
	for (int turn = 1; turn <= 3; turn++) {
		seen = 0;
		prev = 0;
		while (seen < total) {
			got = pc_slab_scan(u.slab, a_id, &cursor, out, 7);
			CU_ASSERT_FATAL(got > 0);
			for (unsigned int i = 0; i < got && seen < total; i++, seen++) {
				ok &= out[i]->class_id == a_id;
				ok &= seen == 0 || out[i]->off > prev;
				prev = out[i]->off;
				visits[out[i] - u.slab->desc]++;
			}
			if (seen == total && got > 0) {
				/* a turn ends mid-call: put the cursor back at that point */
				cursor = prev + 1;
			}
		}
		for (size_t d = 0; d < ndesc; d++) {
			ok &= visits[d] == 0 || visits[d] == (unsigned int)turn;
		}
	}
	CU_ASSERT(ok);

	/* From the middle with room for everything: each slot once, the wrap included. */
	memset(visits, 0, ndesc * sizeof(*visits));
	{
		struct pc_slot **big = calloc(total + 8, sizeof(*big));

		CU_ASSERT_PTR_NOT_NULL_FATAL(big);
		cursor = 5 * MIB;
		got = pc_slab_scan(u.slab, a_id, &cursor, big, total + 8);
		CU_ASSERT_EQUAL(got, total);
		for (unsigned int i = 0; i < got; i++) {
			ok &= ++visits[big[i] - u.slab->desc] == 1;
		}
		CU_ASSERT(ok);
		free(big);
	}
	free_all(u.slab, 0, held + 10, n - 10);
	cursor = 0;
	CU_ASSERT_EQUAL(pc_slab_scan(u.slab, a_id, &cursor, out, 64), 0);
	ut_slab_free(&u);
	free(visits);
	free(held);
}

static void
test_victim_window(void)
{
	enum { MAX_SLOTS = 8192 };
	int small = pc_slab_class_of(4096), big = pc_slab_class_of(1u << 20);
	struct pc_slot **all = calloc(MAX_SLOTS, sizeof(*all));
	struct pc_slot **keep = calloc(MAX_SLOTS, sizeof(*keep));
	struct pc_slot *victims[256], *b[1];
	unsigned int n, nkeep = 0, nv, nfree = 0;
	uint32_t width = 0;
	struct pc_slab_stats st;
	struct ut_slab u;
	bool ok = true;

	CU_ASSERT_PTR_NOT_NULL_FATAL(all);
	CU_ASSERT_PTR_NOT_NULL_FATAL(keep);
	ut_slab_new(&u, 32 * MIB, 1);
	CU_ASSERT_EQUAL(pc_slab_victim_window(u.slab, big, victims, 256), 0); /* room already */

	/* Fill with 4 KiB pages, keep one page in every fourth span, free the rest. */
	n = fill(u.slab, 0, small, all, MAX_SLOTS);
	for (unsigned int i = 0; i < n; i++) {
		uint32_t span = (uint32_t)(all[i]->off / PC_SLAB_CHUNK_SIZE) /
				u.slab->classes[small].g.nchunks;
		bool first = all[i]->off % (2 * PC_SLAB_CHUNK_SIZE) == 0;

		if (span % 4 == 0 && first) {
			keep[nkeep++] = all[i];
		} else {
			all[nfree++] = all[i];
		}
	}
	free_all(u.slab, 0, all, nfree);
	pc_slab_get_stats(u.slab, &st);
	width = u.slab->classes[big].g.nchunks;
	CU_ASSERT_FATAL(st.chunks_free >= width); /* enough chunks, but no run long enough */
	CU_ASSERT_EQUAL(pc_slab_alloc_burst(u.slab, 0, big, b, 1), 0);

	nv = pc_slab_victim_window(u.slab, big, victims, 256);
	/* Kept pages every 8 chunks, 6 free between: a window touches ceil((width - 6) / 8). */
	CU_ASSERT_EQUAL(nv, (width + 1) / 8);
	for (unsigned int i = 0; i < nv; i++) {
		bool kept = false;

		for (unsigned int k = 0; k < nkeep; k++) {
			kept |= keep[k] == victims[i];
		}
		ok &= kept;
		ok &= i == 0 || victims[i]->off > victims[i - 1]->off;
		ok &= victims[i]->off - victims[0]->off < (uint64_t)width * PC_SLAB_CHUNK_SIZE;
	}
	CU_ASSERT(ok);
	CU_ASSERT_EQUAL(pc_slab_victim_window(u.slab, big, victims, 2), 2); /* capped at n */

	/* Evict them: now the big page fits, and the window is no longer needed. */
	nv = pc_slab_victim_window(u.slab, big, victims, 256);
	pc_slab_free_bulk(u.slab, 0, victims, nv);
	pc_slab_flush_cache(u.slab, 0);
	CU_ASSERT_EQUAL(pc_slab_victim_window(u.slab, big, victims, 256), 0);
	CU_ASSERT_EQUAL(pc_slab_alloc_burst(u.slab, 0, big, b, 1), 1);
	CU_ASSERT_EQUAL(pc_slab_victim_window(u.slab, small, victims, 256), 0);
	ut_slab_free(&u);
	free(keep);
	free(all);
}

/*
 * A window that holds a span of the requesting class itself can never become
 * a free run while that span is held: evicting the other pages in it frees
 * nothing the class can use, so such windows are never named.
 */
static void
test_victim_window_skips_own_class(void)
{
	enum { MAX_SLOTS = 8192 };
	int small = pc_slab_class_of(4096), big = pc_slab_class_of(1u << 20);
	struct pc_slot **all = calloc(MAX_SLOTS, sizeof(*all));
	struct pc_slot *bigs[64], *victims[2048], *b[1];
	unsigned int nbig, nsmall, nv;
	struct ut_slab u;
	bool ok = true;

	CU_ASSERT_PTR_NOT_NULL_FATAL(all);
	ut_slab_new(&u, 32 * MIB, 1);
	/* A full span of the big class at the start: its window costs only its two slots. */
	nbig = pc_slab_alloc_burst(u.slab, 0, big, bigs, u.slab->classes[big].g.nslots);
	CU_ASSERT_EQUAL_FATAL(nbig, u.slab->classes[big].g.nslots);
	pc_slab_flush_cache(u.slab, 0);
	/* Everything else full of 4 KiB pages: hundreds of slots per window. */
	nsmall = fill(u.slab, 0, small, all, MAX_SLOTS);
	CU_ASSERT_FATAL(nsmall > 0);
	/* The big class's spans full too (a refill may have started a second one). */
	nbig += fill(u.slab, 0, big, bigs + nbig, 64 - nbig);
	CU_ASSERT_EQUAL(pc_slab_alloc_burst(u.slab, 0, big, b, 1), 0);

	nv = pc_slab_victim_window(u.slab, big, victims, 2048);
	CU_ASSERT(nv > 0 && nv < 2048); /* the whole window fits */
	for (unsigned int i = 0; i < nv; i++) {
		ok &= victims[i]->class_id != big;
	}
	CU_ASSERT(ok);
	/* And evicting what it named makes room for another span of the big class. */
	pc_slab_free_bulk(u.slab, 0, victims, nv);
	pc_slab_flush_cache(u.slab, 0);
	CU_ASSERT_EQUAL(pc_slab_victim_window(u.slab, big, victims, 2048), 0);
	CU_ASSERT_EQUAL(pc_slab_alloc_burst(u.slab, 0, big, b, 1), 1);
	ut_slab_free(&u);
	free(all);
}

/* ---- threads ---- */

#define RACE_HELD 48

struct race {
	struct pc_slab *slab;
	_Atomic uint8_t *owner; /* one byte per 64-byte line of the segment */
	const uint32_t *lens;
	unsigned int nb_lens;
	unsigned int iters;
	unsigned int held_max; /* slots a thread holds at most, <= RACE_HELD */
	uint64_t stride;       /* claim every stride-th line of a slot, and its last */
	unsigned int ci;
	unsigned int errors;
	unsigned int allocs;
};

/* Move the slot's lines from owner `from` to `to`; false if any was not `from`. */
static bool
claim(struct race *r, const struct pc_slot *s, uint8_t from, uint8_t to)
{
	uint64_t first = s->off / 64, n = pc_slab_class_slot_size(s->class_id) / 64;
	bool ok = true;

	for (uint64_t l = first; l < first + n; l += r->stride) {
		uint8_t expect = from;

		ok &= atomic_compare_exchange_strong(&r->owner[l], &expect, to);
	}
	if ((n - 1) % r->stride != 0) {
		uint8_t expect = from;

		ok &= atomic_compare_exchange_strong(&r->owner[first + n - 1], &expect, to);
	}
	return ok;
}

static void *
race_thread(void *arg)
{
	struct race *r = arg;
	struct pc_slot *held[RACE_HELD + 8];
	uint64_t rng = 0x1234567ull + r->ci;
	unsigned int n = 0;
	uint8_t me = (uint8_t)(r->ci + 1);

	for (unsigned int it = 0; it < r->iters; it++) {
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		if (n < r->held_max && (rng & 1)) {
			int id = pc_slab_class_of(r->lens[(rng >> 8) % r->nb_lens]);
			unsigned int want =
				PC_MIN(1 + (unsigned int)((rng >> 16) % 8), r->held_max - n);
			unsigned int got = pc_slab_alloc_burst(r->slab, r->ci, id, held + n, want);

			for (unsigned int i = n; i < n + got; i++) {
				if (!claim(r, held[i], 0, me)) {
					r->errors++;
				}
				*(uint64_t *)pc_slab_page(r->slab, held[i]) = held[i]->off ^ me;
			}
			n += got;
			r->allocs += got;
		} else if (n > 0) {
			unsigned int k = 1 + (unsigned int)((rng >> 24) % n);

			for (unsigned int i = n - k; i < n; i++) {
				if (*(uint64_t *)pc_slab_page(r->slab, held[i]) !=
					    (held[i]->off ^ me) ||
				    !claim(r, held[i], me, 0)) {
					r->errors++;
				}
			}
			pc_slab_free_bulk(r->slab, r->ci, held + n - k, k);
			n -= k;
		}
	}
	for (unsigned int i = 0; i < n; i++) {
		if (!claim(r, held[i], me, 0)) {
			r->errors++;
		}
	}
	pc_slab_free_bulk(r->slab, r->ci, held, n);
	pc_slab_flush_cache(r->slab, r->ci);
	return NULL;
}

static void
race_run(const uint32_t *lens, unsigned int nb_lens, unsigned int iters, unsigned int held_max,
	 uint64_t stride)
{
	struct race r[2];
	pthread_t t[2];
	struct pc_slab_stats st;
	struct ut_slab u;
	_Atomic uint8_t *owner;

	/* Small enough that the threads run out of room and trade spans. */
	ut_slab_new(&u, 24 * MIB, 2);
	owner = calloc(u.size / 64, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(owner);
	for (unsigned int i = 0; i < 2; i++) {
		r[i] = (struct race){.slab = u.slab,
				     .owner = owner,
				     .lens = lens,
				     .nb_lens = nb_lens,
				     .iters = iters,
				     .held_max = held_max,
				     .stride = stride,
				     .ci = i};
		CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, race_thread, &r[i]), 0);
	}
	for (unsigned int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		CU_ASSERT_EQUAL(r[i].errors, 0);
	}
	/*
	 * It did work. Not per thread: a thread that runs while the other,
	 * descheduled, holds the memory fails every alloc, correctly.
	 */
	CU_ASSERT(r[0].allocs + r[1].allocs > iters / 10);
	pc_slab_get_stats(u.slab, &st);
	CU_ASSERT_EQUAL(st.chunks_free, st.chunks_total);
	CU_ASSERT_EQUAL(st.spans_taken, st.spans_returned);
	free(owner);
	ut_slab_free(&u);
}

/* Mixed sizes through the caches: every byte of a slot is claimed. */
static void
test_two_threads(void)
{
	static const uint32_t lens[] = {4096, 16384, 65536, 200000, 1u << 20};

	race_run(lens, PC_ARRAY_SIZE(lens), 20000, RACE_HELD, 1);
}

/*
 * Classes without a cache: every alloc and free takes the class lock and
 * forms or returns a span under the pool lock. One slot per span, starting
 * at its first chunk: claiming each chunk's first line catches any overlap.
 * Two slots a thread at most, so that both keep finding room.
 */
static void
test_two_threads_uncached(void)
{
	static const uint32_t lens[] = {3u << 20, 5u << 20, (6u << 20) + 1};

	race_run(lens, PC_ARRAY_SIZE(lens), 200000, 2, PC_SLAB_CHUNK_SIZE / 64);
}

static const struct pc_ut_test class_tests[] = {
	{"class_of: boundaries and errors", test_class_boundaries},
	{"class_of: sweep, waste bound, monotonic ids", test_class_sweep},
	{"span geometry: packing waste, sizes, caches", test_geometry},
	{NULL, NULL},
};

static const struct pc_ut_test alloc_tests[] = {
	{"create: bad options, partial chunk", test_create_args},
	{"alloc/free many sizes: disjoint, aligned, in bounds", test_alloc_disjoint},
	{"fill, free, refill with another size", test_rebalance},
	{"cache keeps warm slots; flush returns the span", test_cache},
	{"re-formed span: fresh descriptors", test_descriptor_reinit},
	{NULL, NULL},
};

static const struct pc_ut_test lookup_tests[] = {
	{"slot_at: exact starts only", test_slot_at},
	{"scan: every slot once per turn", test_scan},
	{"victim window never holds a span of the class itself",
	 test_victim_window_skips_own_class},
	{"victim window: eviction makes room for a span", test_victim_window},
	{NULL, NULL},
};

static const struct pc_ut_test race_tests[] = {
	{"two threads alloc/free: no shared bytes", test_two_threads},
	{"two threads, uncached classes: no shared chunks", test_two_threads_uncached},
	{NULL, NULL},
};

static const struct pc_ut_suite suites[] = {
	{"slab classes", NULL, NULL, class_tests},
	{"slab alloc", NULL, NULL, alloc_tests},
	{"slab lookup", NULL, NULL, lookup_tests},
	{"slab race", NULL, NULL, race_tests},
};

int
main(void)
{
	rte_log_set_level_pattern("peercache.*", RTE_LOG_ERR);
	return pc_ut_run(suites, PC_ARRAY_SIZE(suites));
}
