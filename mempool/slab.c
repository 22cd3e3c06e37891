/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Slab classes over the published segment (see slab.h for the contract).
 *
 * Classes. Payload capacities go up in 4 KiB steps to 64 KiB (ids 0..15),
 * then in 16 steps per octave to PC_PAGE_PAYLOAD_MAX (ids 16..175): a
 * payload of len bytes in (2^o, 2^(o+1)] gets the next multiple of 2^o/16,
 * so it wastes under 1/16 of itself. The slot is [header][cap][key tail]
 * rounded up to 64 bytes, i.e. cap + 384.
 *
 * Spans. A class's span holds k slots (1..64, one 64-bit free mask) in
 * ceil(k * slot / chunk) chunks; k is the smallest count whose packing
 * waste (the span's tail that no slot fits in) is at most 1/32 of the span,
 * or, if no k up to 64 gets there, the k with the least waste. Smallest k
 * keeps spans short, which is what lets a span come back to the pool (all
 * its slots must be free) and keeps victim windows small: classes up to
 * 64 KiB get spans of 128 KiB..1.75 MiB, up to 1 MiB spans of at most
 * ~2 MiB, and slots over ~2 MiB get a span of their own (the waste is then
 * under one chunk). The worst class wastes 3.1 %.
 *
 * Caches. Per cache index and class a stack of at most
 * min(32, 4 MiB / slot) slots: 32 (or 31) up to 64 KiB, 3 at 1 MiB, 1 at
 * 2 MiB and none from 4 MiB up, where the class lock per page costs
 * nothing next to copying the page and a cached slot per lcore would hide
 * memory. An empty cache is refilled with what the caller needs plus half a
 * cache; a full one flushes half of itself, under the class lock once.
 *
 * Layout, all of it outside the segment, in anonymous mappings that the
 * kernel fills lazily:
 * - the chunk map, one word per chunk: 0 when free, else {held, class, first
 *   chunk of its span}; pc_slab_slot_at reads it without a lock;
 * - the span table, one entry per chunk, meaningful at the first chunk of a
 *   span (class, slots, free mask, list links) or of a free run (length and
 *   bin links; the run's last chunk names its first, for coalescing);
 * - the descriptor table: D descriptors per chunk (D = 15 = the most slots
 *   any class packs per chunk, rounded up), slot i of the span at chunk s is
 *   desc[s * D + i]: stable while the span is held, 1.5 % of the segment;
 * - per class a bitmap of the chunks where its spans start (address-order
 *   scans);
 * - per cache index a stack per class.
 *
 * Locks. A class's lock covers its spans' free masks, its list of spans with
 * free slots and its span bitmap; the pool lock covers the free runs, the
 * chunk map and the span table's layout. Order: class, then pool. Free masks
 * are also read, relaxed and without the class lock, by the victim window
 * (advisory) and so are written with atomic stores.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <rte_spinlock.h>

#include "pc_common.h"
#include "pc_log.h"
#include "slab.h"

#define SLAB_CHUNK_SHIFT      16
#define SLAB_SMALL_STEP       4096u
#define SLAB_SMALL_MAX        (64u << 10)
#define SLAB_SMALL_CLASSES    (SLAB_SMALL_MAX / SLAB_SMALL_STEP)
#define SLAB_OCTAVE_STEPS     16
#define SLAB_FIRST_OCTAVE     16 /* 2^16 = SLAB_SMALL_MAX */
#define SLAB_OCTAVES          10 /* 2^16 .. 2^26 = PC_PAGE_PAYLOAD_MAX */
#define SLAB_NB_CLASSES       ((int)(SLAB_SMALL_CLASSES + SLAB_OCTAVES * SLAB_OCTAVE_STEPS))
#define SLAB_SLOT_OVERHEAD    (PC_PAGE_HDR_SIZE + PC_SLAB_KEY_TAIL)
#define SLAB_SPAN_SLOTS_MAX   64 /* one 64-bit free mask per span */
#define SLAB_SPAN_WASTE_SHIFT 5  /* packing waste at most 1/32 of a span */
#define SLAB_CACHE_SLOTS      32
#define SLAB_CACHE_BYTES      (4u << 20)
#define SLAB_MAX_CACHES       1024
#define SLAB_MAX_CHUNKS       (1u << 26) /* 4 TiB */
#define SLAB_BINS             32
#define SLAB_NONE             UINT32_MAX
#define SLAB_CHUNK_HELD       (1ull << 63)

_Static_assert(SLAB_NB_CLASSES <= PC_SLAB_MAX_CLASSES, "class ids fit the contract");
_Static_assert((1u << SLAB_CHUNK_SHIFT) == PC_SLAB_CHUNK_SIZE, "chunk shift");
_Static_assert((SLAB_SLOT_OVERHEAD % 64) == 0, "slot overhead keeps 4 KiB caps 64-aligned");
_Static_assert(SLAB_SMALL_MAX << (SLAB_OCTAVES) == PC_PAGE_PAYLOAD_MAX, "octaves reach the max");

/* A class's shape; a pure function of its id. */
struct slab_geom {
	uint32_t cap;       /* payload bytes */
	uint32_t slot_size; /* bytes, multiple of 64 */
	uint32_t nslots;    /* per span, 1..SLAB_SPAN_SLOTS_MAX */
	uint32_t nchunks;   /* per span */
	uint32_t cache_max; /* per-cache stack depth, 0..SLAB_CACHE_SLOTS */
};

/* One per chunk; see the layout above for which fields mean what. */
struct slab_span {
	uint64_t free_mask; /* held: bit i = slot i is in the class's free structure */
	uint32_t prev;      /* held: class's free-slot list; free run: its bin */
	uint32_t next;
	uint32_t nchunks; /* held span or free run, at its first chunk */
	uint32_t head;    /* free run: its first chunk, at its first and last chunk */
	uint32_t cost;    /* victim window scratch, pool lock */
	uint16_t class_id;
	uint8_t nslots;
	uint8_t on_list; /* held: in the class's free-slot list */
};

struct slab_class {
	rte_spinlock_t lock;
	bool created;   /* set once, on the first alloc; read relaxed */
	uint32_t avail; /* first span with free slots, or SLAB_NONE */
	uint64_t nspans;
	uint64_t *span_bits; /* bit s: one of our spans starts at chunk s */
	struct slab_geom g;
} __attribute__((aligned(PC_CACHE_LINE)));

struct slab_cache {
	uint32_t len;
	uint32_t max;
	struct pc_slot *objs[SLAB_CACHE_SLOTS];
};

struct pc_slab {
	uint8_t *base;
	uint64_t size; /* whole chunks */
	uint32_t nb_chunks;
	uint32_t desc_per_chunk;
	unsigned int nb_caches;
	size_t cache_stride; /* bytes per cache index: SLAB_NB_CLASSES stacks */
	size_t bits_words;   /* 64-bit words per class bitmap */

	uint64_t *chunk_map;
	struct slab_span *spans;
	struct pc_slot *desc;
	uint64_t *bits;
	uint8_t *caches;
	size_t chunk_map_len, spans_len, desc_len, bits_len, caches_len;

	rte_spinlock_t pool_lock;
	uint32_t bins[SLAB_BINS]; /* free runs by floor(log2(length)) */
	uint64_t chunks_free;     /* written under the pool lock, read relaxed */
	uint64_t spans_taken;
	uint64_t spans_returned;

	char name[32];
	struct slab_class classes[SLAB_NB_CLASSES];
};

/* ---- classes ---- */

int
pc_slab_class_of(uint32_t payload_len)
{
	uint32_t o, step, j;

	if (payload_len == 0 || payload_len > PC_PAGE_PAYLOAD_MAX) {
		return -EMSGSIZE;
	}
	if (payload_len <= SLAB_SMALL_MAX) {
		return (int)((payload_len - 1) / SLAB_SMALL_STEP);
	}
	o = 31u - (uint32_t)__builtin_clz(payload_len - 1); /* payload_len in (2^o, 2^(o+1)] */
	step = (1u << o) / SLAB_OCTAVE_STEPS;
	j = (payload_len - (1u << o) + step - 1) / step; /* 1..16 */
	return (int)(SLAB_SMALL_CLASSES + (o - SLAB_FIRST_OCTAVE) * SLAB_OCTAVE_STEPS + j - 1);
}

uint32_t
pc_slab_class_cap(int class_id)
{
	uint32_t o, j;

	if (class_id < 0 || class_id >= SLAB_NB_CLASSES) {
		return 0;
	}
	if (class_id < (int)SLAB_SMALL_CLASSES) {
		return ((uint32_t)class_id + 1) * SLAB_SMALL_STEP;
	}
	o = SLAB_FIRST_OCTAVE + ((uint32_t)class_id - SLAB_SMALL_CLASSES) / SLAB_OCTAVE_STEPS;
	j = ((uint32_t)class_id - SLAB_SMALL_CLASSES) % SLAB_OCTAVE_STEPS + 1;
	return (1u << o) + j * ((1u << o) / SLAB_OCTAVE_STEPS);
}

uint64_t
pc_slab_class_slot_size(int class_id)
{
	uint64_t cap = pc_slab_class_cap(class_id);

	if (cap == 0) {
		return 0;
	}
	return (cap + SLAB_SLOT_OVERHEAD + 63) & ~(uint64_t)63;
}

static void
slab_geom_of(int class_id, struct slab_geom *g)
{
	uint64_t slot = pc_slab_class_slot_size(class_id);
	uint64_t best_waste = UINT64_MAX, best_span = 0;
	uint32_t best_k = 1;

	for (uint32_t k = 1; k <= SLAB_SPAN_SLOTS_MAX; k++) {
		uint64_t chunks = (k * slot + PC_SLAB_CHUNK_SIZE - 1) / PC_SLAB_CHUNK_SIZE;
		uint64_t span = chunks * PC_SLAB_CHUNK_SIZE;
		uint64_t waste = span - k * slot;

		if (waste <= span >> SLAB_SPAN_WASTE_SHIFT) {
			best_k = k;
			break;
		}
		/* compare waste fractions: waste / span < best_waste / best_span */
		if (best_span == 0 || waste * best_span < best_waste * span) {
			best_waste = waste;
			best_span = span;
			best_k = k;
		}
	}
	g->cap = pc_slab_class_cap(class_id);
	g->slot_size = (uint32_t)slot;
	g->nslots = best_k;
	g->nchunks = (uint32_t)((best_k * slot + PC_SLAB_CHUNK_SIZE - 1) / PC_SLAB_CHUNK_SIZE);
	g->cache_max = (uint32_t)PC_MIN((uint64_t)SLAB_CACHE_SLOTS, SLAB_CACHE_BYTES / slot);
}

static inline bool
slab_class_valid(int class_id)
{
	return class_id >= 0 && class_id < SLAB_NB_CLASSES;
}

/* ---- chunk map ---- */

static inline uint64_t
chunk_entry(uint32_t start, uint16_t class_id)
{
	return SLAB_CHUNK_HELD | (uint64_t)class_id << 32 | start;
}

static inline bool
chunk_held(uint64_t e)
{
	return (e & SLAB_CHUNK_HELD) != 0;
}

static inline uint32_t
chunk_start(uint64_t e)
{
	return (uint32_t)e;
}

static inline uint16_t
chunk_class(uint64_t e)
{
	return (uint16_t)(e >> 32);
}

static inline uint64_t
chunk_load(const struct pc_slab *slab, uint32_t c)
{
	return __atomic_load_n(&slab->chunk_map[c], __ATOMIC_ACQUIRE);
}

static inline struct pc_slot *
slab_desc(const struct pc_slab *slab, uint32_t s, uint32_t i)
{
	return &slab->desc[(uint64_t)s * slab->desc_per_chunk + i];
}

static inline uint64_t
span_full_mask(uint32_t nslots)
{
	return nslots == 64 ? UINT64_MAX : (1ull << nslots) - 1;
}

static inline uint64_t
span_mask_load(const struct slab_span *sp)
{
	return __atomic_load_n(&sp->free_mask, __ATOMIC_RELAXED);
}

static inline void
span_mask_store(struct slab_span *sp, uint64_t mask)
{
	__atomic_store_n(&sp->free_mask, mask, __ATOMIC_RELAXED);
}

static inline void
stat_add(uint64_t *ctr, int64_t delta)
{
	__atomic_store_n(ctr, *ctr + (uint64_t)delta, __ATOMIC_RELAXED);
}

/* ---- chunk pool: free runs in bins by length, boundary-tagged (pool lock) ---- */

static inline unsigned int
bin_of(uint32_t len)
{
	return 31u - (unsigned int)__builtin_clz(len);
}

static void
run_insert(struct pc_slab *slab, uint32_t s, uint32_t len)
{
	struct slab_span *sp = &slab->spans[s];
	unsigned int b = bin_of(len);

	sp->nchunks = len;
	sp->head = s;
	slab->spans[s + len - 1].head = s;
	sp->prev = SLAB_NONE;
	sp->next = slab->bins[b];
	if (sp->next != SLAB_NONE) {
		slab->spans[sp->next].prev = s;
	}
	slab->bins[b] = s;
}

static void
run_remove(struct pc_slab *slab, uint32_t s)
{
	struct slab_span *sp = &slab->spans[s];

	if (sp->prev != SLAB_NONE) {
		slab->spans[sp->prev].next = sp->next;
	} else {
		slab->bins[bin_of(sp->nchunks)] = sp->next;
	}
	if (sp->next != SLAB_NONE) {
		slab->spans[sp->next].prev = sp->prev;
	}
}

/* The first chunk of a free run of at least need chunks, or SLAB_NONE. */
static uint32_t
run_find(const struct pc_slab *slab, uint32_t need)
{
	unsigned int b = bin_of(need);

	/* First fit within need's own bin keeps longer runs whole for longer spans. */
	for (uint32_t s = slab->bins[b]; s != SLAB_NONE; s = slab->spans[s].next) {
		if (slab->spans[s].nchunks >= need) {
			return s;
		}
	}
	for (b++; b < SLAB_BINS; b++) {
		if (slab->bins[b] != SLAB_NONE) {
			return slab->bins[b];
		}
	}
	return SLAB_NONE;
}

static uint32_t
run_take(struct pc_slab *slab, uint32_t need)
{
	uint32_t s = run_find(slab, need);
	uint32_t len;

	if (s == SLAB_NONE) {
		return SLAB_NONE;
	}
	len = slab->spans[s].nchunks;
	run_remove(slab, s);
	if (len > need) {
		run_insert(slab, s + need, len - need);
	}
	stat_add(&slab->chunks_free, -(int64_t)need);
	return s;
}

/* Give chunks [s, s + len) back, merged with the free runs beside them. */
static void
run_give(struct pc_slab *slab, uint32_t s, uint32_t len)
{
	uint32_t start = s, end = s + len;

	for (uint32_t c = s; c < end; c++) {
		__atomic_store_n(&slab->chunk_map[c], 0, __ATOMIC_RELEASE);
	}
	if (start > 0 && !chunk_held(slab->chunk_map[start - 1])) {
		start = slab->spans[start - 1].head;
		run_remove(slab, start);
	}
	if (end < slab->nb_chunks && !chunk_held(slab->chunk_map[end])) {
		uint32_t right = slab->spans[end].nchunks;

		run_remove(slab, end);
		end += right;
	}
	run_insert(slab, start, end - start);
	stat_add(&slab->chunks_free, len);
}

/* ---- spans (class lock held) ---- */

static void
avail_push(struct pc_slab *slab, struct slab_class *cls, uint32_t s)
{
	struct slab_span *sp = &slab->spans[s];

	sp->prev = SLAB_NONE;
	sp->next = cls->avail;
	if (cls->avail != SLAB_NONE) {
		slab->spans[cls->avail].prev = s;
	}
	cls->avail = s;
	sp->on_list = 1;
}

static void
avail_remove(struct pc_slab *slab, struct slab_class *cls, uint32_t s)
{
	struct slab_span *sp = &slab->spans[s];

	if (sp->prev != SLAB_NONE) {
		slab->spans[sp->prev].next = sp->next;
	} else {
		cls->avail = sp->next;
	}
	if (sp->next != SLAB_NONE) {
		slab->spans[sp->next].prev = sp->prev;
	}
	sp->on_list = 0;
}

/*
 * Re-initialise a slot's descriptor for its new place. Fields a stale reader
 * may be looking at through pc_slab_slot_at (off, state, generation,
 * clock_ref) are stored atomically.
 */
static void
slot_init(struct pc_slot *d, uint64_t off, const struct slab_geom *g, uint16_t class_id)
{
	__atomic_store_n(&d->off, off, __ATOMIC_RELAXED);
	__atomic_store_n(&d->cap, g->cap, __ATOMIC_RELAXED);
	__atomic_store_n(&d->class_id, class_id, __ATOMIC_RELAXED);
	__atomic_store_n(&d->flags, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&d->clock_ref, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&d->state, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&d->generation, 0, __ATOMIC_RELAXED);
	d->payload_len = 0;
	d->prefix_depth = 0;
	d->key_len = 0;
	memset(d->digest, 0, sizeof(d->digest));
	d->free_tsc = 0;
}

/* Take a span for cls from the chunk pool; its slots all free. Returns its first chunk. */
static uint32_t
span_form(struct pc_slab *slab, struct slab_class *cls, uint16_t class_id)
{
	const struct slab_geom *g = &cls->g;
	struct slab_span *sp;
	uint32_t s;

	rte_spinlock_lock(&slab->pool_lock);
	s = run_take(slab, g->nchunks);
	if (s == SLAB_NONE) {
		rte_spinlock_unlock(&slab->pool_lock);
		return SLAB_NONE;
	}
	for (uint32_t i = 0; i < g->nslots; i++) {
		uint64_t off = ((uint64_t)s << SLAB_CHUNK_SHIFT) + (uint64_t)i * g->slot_size;

		slot_init(slab_desc(slab, s, i), off, g, class_id);
	}
	sp = &slab->spans[s];
	sp->nchunks = g->nchunks;
	sp->class_id = class_id;
	sp->nslots = (uint8_t)g->nslots;
	span_mask_store(sp, span_full_mask(g->nslots));
	/* Descriptors first, then the map: slot_at sees a slot only once it is set up. */
	for (uint32_t c = s; c < s + g->nchunks; c++) {
		__atomic_store_n(&slab->chunk_map[c], chunk_entry(s, class_id), __ATOMIC_RELEASE);
	}
	stat_add(&slab->spans_taken, 1);
	rte_spinlock_unlock(&slab->pool_lock);

	cls->span_bits[s / 64] |= 1ull << (s % 64);
	cls->nspans++;
	avail_push(slab, cls, s);
	return s;
}

static void
span_release(struct pc_slab *slab, struct slab_class *cls, uint32_t s)
{
	if (slab->spans[s].on_list) {
		avail_remove(slab, cls, s);
	}
	cls->span_bits[s / 64] &= ~(1ull << (s % 64));
	cls->nspans--;

	rte_spinlock_lock(&slab->pool_lock);
	run_give(slab, s, cls->g.nchunks);
	stat_add(&slab->spans_returned, 1);
	rte_spinlock_unlock(&slab->pool_lock);
}

/* Up to n free slots of cls into out[], forming spans as needed. */
static unsigned int
class_get(struct pc_slab *slab, struct slab_class *cls, uint16_t class_id, struct pc_slot *out[],
	  unsigned int n)
{
	unsigned int got = 0;

	while (got < n) {
		uint32_t s = cls->avail;
		struct slab_span *sp;
		uint64_t mask;

		if (s == SLAB_NONE) {
			s = span_form(slab, cls, class_id);
			if (s == SLAB_NONE) {
				break;
			}
		}
		sp = &slab->spans[s];
		mask = sp->free_mask;
		while (mask != 0 && got < n) {
			out[got++] = slab_desc(slab, s, (uint32_t)__builtin_ctzll(mask));
			mask &= mask - 1;
		}
		span_mask_store(sp, mask);
		if (mask == 0) {
			avail_remove(slab, cls, s);
		}
	}
	return got;
}

/* Put n slots of cls back; a span whose slots are all back goes to the pool. */
static void
class_put(struct pc_slab *slab, struct slab_class *cls, uint16_t class_id,
	  struct pc_slot *const slots[], unsigned int n)
{
	uint64_t ndesc = (uint64_t)slab->nb_chunks * slab->desc_per_chunk;

	for (unsigned int k = 0; k < n; k++) {
		uint64_t idx = (uint64_t)(slots[k] - slab->desc);
		uint32_t s, i;
		struct slab_span *sp;
		uint64_t bit, mask, e;

		if (slots[k] < slab->desc || idx >= ndesc) {
			PC_LOG(ERR, mempool, "slab %s: free of a foreign slot %p", slab->name,
			       (void *)slots[k]);
			continue;
		}
		/* idx / D is a chunk of the slot's span (i < nchunks * D), not always its first. */
		e = chunk_load(slab, (uint32_t)(idx / slab->desc_per_chunk));
		s = chunk_start(e);
		i = (uint32_t)(idx - (uint64_t)s * slab->desc_per_chunk);
		sp = &slab->spans[s];
		if (!chunk_held(e) || chunk_class(e) != class_id || i >= sp->nslots) {
			PC_LOG(ERR, mempool,
			       "slab %s: free of slot %" PRIu64 " not held by class %u", slab->name,
			       idx, class_id);
			continue;
		}
		bit = 1ull << i;
		mask = sp->free_mask;
		if ((mask & bit) != 0) {
			PC_LOG(ERR, mempool, "slab %s: double free of the slot at %" PRIu64,
			       slab->name, slots[k]->off);
			continue;
		}
		mask |= bit;
		span_mask_store(sp, mask);
		if (mask == span_full_mask(sp->nslots)) {
			span_release(slab, cls, s);
		} else if (!sp->on_list) {
			avail_push(slab, cls, s);
		}
	}
}

/* ---- caches ---- */

static inline struct slab_cache *
slab_cache(const struct pc_slab *slab, unsigned int ci, int class_id)
{
	return (struct slab_cache *)(slab->caches + ci * slab->cache_stride) + class_id;
}

unsigned int
pc_slab_alloc_burst(struct pc_slab *slab, unsigned int ci, int class_id, struct pc_slot *slots[],
		    unsigned int n)
{
	struct slab_class *cls;
	struct slab_cache *c;
	unsigned int got, need;

	if (slab == NULL || !slab_class_valid(class_id) || ci >= slab->nb_caches || n == 0) {
		return 0;
	}
	cls = &slab->classes[class_id];
	if (PC_UNLIKELY(!__atomic_load_n(&cls->created, __ATOMIC_RELAXED))) {
		__atomic_store_n(&cls->created, true, __ATOMIC_RELAXED);
	}
	c = slab_cache(slab, ci, class_id);
	got = PC_MIN(c->len, n);
	for (unsigned int i = 0; i < got; i++) {
		slots[i] = c->objs[--c->len];
	}
	if (got == n) {
		return n;
	}

	need = n - got;
	rte_spinlock_lock(&cls->lock);
	if (need > c->max) {
		got += class_get(slab, cls, (uint16_t)class_id, slots + got, need);
	} else {
		/* The cache is empty here: fill it with what we need and half a cache more. */
		unsigned int take;

		c->len = class_get(slab, cls, (uint16_t)class_id, c->objs,
				   PC_MIN(c->max, need + c->max / 2));
		take = PC_MIN(c->len, need);
		for (unsigned int i = 0; i < take; i++) {
			slots[got++] = c->objs[--c->len];
		}
	}
	rte_spinlock_unlock(&cls->lock);
	return got;
}

void
pc_slab_free_bulk(struct pc_slab *slab, unsigned int ci, struct pc_slot *const slots[],
		  unsigned int n)
{
	unsigned int i = 0;

	if (slab == NULL) {
		return;
	}
	while (i < n) {
		uint16_t class_id = slots[i]->class_id;
		struct slab_class *cls;
		struct slab_cache *c;
		unsigned int j;

		if (!slab_class_valid(class_id)) {
			PC_LOG(ERR, mempool, "slab %s: free of a slot with class %u", slab->name,
			       class_id);
			i++;
			continue;
		}
		cls = &slab->classes[class_id];
		c = ci < slab->nb_caches ? slab_cache(slab, ci, class_id) : NULL;
		if (c != NULL && c->max > 0) {
			if (c->len == c->max) {
				/* Flush the older half; the recently freed, warm slots stay. */
				unsigned int half = c->max - c->max / 2;

				rte_spinlock_lock(&cls->lock);
				class_put(slab, cls, class_id, c->objs, half);
				rte_spinlock_unlock(&cls->lock);
				memmove(c->objs, c->objs + half,
					(c->len - half) * sizeof(struct pc_slot *));
				c->len -= half;
			}
			c->objs[c->len++] = slots[i++];
			continue;
		}
		/* Uncached class: one lock for the run of slots of this class. */
		for (j = i + 1; j < n && slots[j]->class_id == class_id; j++) {
		}
		rte_spinlock_lock(&cls->lock);
		class_put(slab, cls, class_id, slots + i, j - i);
		rte_spinlock_unlock(&cls->lock);
		i = j;
	}
}

void
pc_slab_flush_cache(struct pc_slab *slab, unsigned int ci)
{
	if (slab == NULL || ci >= slab->nb_caches) {
		return;
	}
	for (int id = 0; id < SLAB_NB_CLASSES; id++) {
		struct slab_cache *c = slab_cache(slab, ci, id);
		struct slab_class *cls = &slab->classes[id];

		if (c->len == 0) {
			continue;
		}
		rte_spinlock_lock(&cls->lock);
		class_put(slab, cls, (uint16_t)id, c->objs, c->len);
		rte_spinlock_unlock(&cls->lock);
		c->len = 0;
	}
}

/* ---- lookups ---- */

struct pc_slot *
pc_slab_slot_at(const struct pc_slab *slab, uint64_t off)
{
	const struct slab_geom *g;
	struct pc_slot *d;
	uint64_t e, rel, i;
	uint32_t s;
	uint16_t id;

	if (slab == NULL || off >= slab->size) {
		return NULL;
	}
	e = chunk_load(slab, (uint32_t)(off >> SLAB_CHUNK_SHIFT));
	if (!chunk_held(e)) {
		return NULL;
	}
	s = chunk_start(e);
	id = chunk_class(e);
	if (id >= SLAB_NB_CLASSES || s > (off >> SLAB_CHUNK_SHIFT)) {
		return NULL;
	}
	g = &slab->classes[id].g;
	rel = off - ((uint64_t)s << SLAB_CHUNK_SHIFT);
	i = rel / g->slot_size;
	if (rel % g->slot_size != 0 || i >= g->nslots) {
		return NULL;
	}
	d = slab_desc(slab, s, (uint32_t)i);
	/* The span may have been re-formed since the map was read. */
	if (__atomic_load_n(&d->off, __ATOMIC_RELAXED) != off) {
		return NULL;
	}
	return d;
}

struct pc_page_hdr *
pc_slab_page(const struct pc_slab *slab, const struct pc_slot *slot)
{
	return (struct pc_page_hdr *)(slab->base + slot->off);
}

uint8_t *
pc_slab_key_tail(const struct pc_slab *slab, const struct pc_slot *slot)
{
	return slab->base + slot->off + PC_PAGE_HDR_SIZE + slot->cap;
}

/* The first span of cls starting at chunk >= from, or SLAB_NONE (class lock). */
static uint32_t
span_next(const struct pc_slab *slab, const struct slab_class *cls, uint64_t from)
{
	uint64_t w = from / 64;
	uint64_t word;

	if (from >= slab->nb_chunks) {
		return SLAB_NONE;
	}
	word = cls->span_bits[w] & (UINT64_MAX << (from % 64));
	while (word == 0) {
		if (++w >= slab->bits_words) {
			return SLAB_NONE;
		}
		word = cls->span_bits[w];
	}
	return (uint32_t)(w * 64 + (uint64_t)__builtin_ctzll(word));
}

/*
 * The first slot of cls at segment offset >= pos: its span in *s, its index
 * in *i. False when there is none up to the end of the segment.
 */
static bool
slot_next(const struct pc_slab *slab, const struct slab_class *cls, uint16_t class_id, uint64_t pos,
	  uint32_t *s, uint32_t *i)
{
	uint64_t c = pos >> SLAB_CHUNK_SHIFT;
	uint64_t e;

	if (c >= slab->nb_chunks) {
		return false;
	}
	e = chunk_load(slab, (uint32_t)c);
	if (chunk_held(e) && chunk_class(e) == class_id) {
		uint64_t rel = pos - ((uint64_t)chunk_start(e) << SLAB_CHUNK_SHIFT);
		uint64_t k = (rel + cls->g.slot_size - 1) / cls->g.slot_size;

		if (k < cls->g.nslots) {
			*s = chunk_start(e);
			*i = (uint32_t)k;
			return true;
		}
	}
	*s = span_next(slab, cls, c + 1);
	*i = 0;
	return *s != SLAB_NONE;
}

unsigned int
pc_slab_scan(struct pc_slab *slab, int class_id, uint64_t *cursor, struct pc_slot *out[],
	     unsigned int n)
{
	struct slab_class *cls;
	uint64_t pos, start;
	unsigned int cnt = 0;
	bool wrapped = false;

	if (slab == NULL || !slab_class_valid(class_id) || cursor == NULL || n == 0) {
		return 0;
	}
	cls = &slab->classes[class_id];
	pos = *cursor < slab->size ? *cursor : 0;
	start = pos;

	rte_spinlock_lock(&cls->lock);
	while (cnt < n) {
		uint32_t s, i;
		uint64_t off;

		if (!slot_next(slab, cls, (uint16_t)class_id, pos, &s, &i)) {
			if (wrapped || start == 0) {
				break;
			}
			wrapped = true;
			pos = 0;
			continue;
		}
		off = ((uint64_t)s << SLAB_CHUNK_SHIFT) + (uint64_t)i * cls->g.slot_size;
		if (wrapped && off >= start) {
			break;
		}
		out[cnt++] = slab_desc(slab, s, i);
		pos = off + cls->g.slot_size;
	}
	rte_spinlock_unlock(&cls->lock);
	*cursor = pos;
	return cnt;
}

/* Slots of span s not in its class's free structure (relaxed: advisory). */
static uint32_t
span_in_use(const struct slab_span *sp)
{
	return sp->nslots - (uint32_t)__builtin_popcountll(span_mask_load(sp));
}

/*
 * What evicting a span costs for a window wanted by class_id: its slots in
 * use, or "never" for a span of class_id itself (the window could not become
 * a free run while that span is held, whatever the others give up).
 */
#define SLAB_WINDOW_OWN ((uint64_t)UINT32_MAX) /* above any sum of slots in use */

static uint32_t
window_cost(const struct slab_span *sp, int class_id)
{
	return sp->class_id == class_id ? UINT32_MAX : span_in_use(sp);
}

unsigned int
pc_slab_victim_window(struct pc_slab *slab, int class_id, struct pc_slot *out[], unsigned int n)
{
	uint32_t w, width, best_w = 0, end;
	uint64_t cost = 0, best = SLAB_WINDOW_OWN;
	unsigned int cnt = 0;

	if (slab == NULL || !slab_class_valid(class_id)) {
		return 0;
	}
	width = slab->classes[class_id].g.nchunks;
	if (width > slab->nb_chunks) {
		return 0;
	}

	rte_spinlock_lock(&slab->pool_lock);
	if (run_find(slab, width) != SLAB_NONE) {
		rte_spinlock_unlock(&slab->pool_lock);
		return 0;
	}
	/*
	 * Slide a window of width chunks over the segment. Its cost is the
	 * in-use slots of every span it touches: a span only comes back whole.
	 * A span's cost is counted when the window reaches its first chunk and
	 * dropped (the same snapshot) when the window leaves its last.
	 */
	for (uint32_t c = 0; c < width; c++) {
		uint64_t e = chunk_load(slab, c);

		if (chunk_held(e) && chunk_start(e) == c) {
			slab->spans[c].cost = window_cost(&slab->spans[c], class_id);
			cost += slab->spans[c].cost;
		}
	}
	for (w = 0;; w++) {
		uint64_t e;

		if (cost < best) {
			best = cost;
			best_w = w;
		}
		if (w + width >= slab->nb_chunks) {
			break;
		}
		e = chunk_load(slab, w);
		if (chunk_held(e)) {
			struct slab_span *sp = &slab->spans[chunk_start(e)];

			if (chunk_start(e) + sp->nchunks - 1 == w) {
				cost -= sp->cost;
			}
		}
		e = chunk_load(slab, w + width);
		if (chunk_held(e) && chunk_start(e) == w + width) {
			struct slab_span *sp = &slab->spans[w + width];

			sp->cost = window_cost(sp, class_id);
			cost += sp->cost;
		}
	}

	if (best >= SLAB_WINDOW_OWN) {
		/* Every window holds a span of the class itself: evicting the others frees nothing.
		 */
		rte_spinlock_unlock(&slab->pool_lock);
		return 0;
	}
	end = best_w + width;
	for (uint32_t c = best_w; c < end && cnt < n;) {
		uint64_t e = chunk_load(slab, c);
		const struct slab_span *sp;
		uint64_t mask;

		if (!chunk_held(e)) {
			c++;
			continue;
		}
		sp = &slab->spans[chunk_start(e)];
		mask = span_mask_load(sp);
		for (uint32_t i = 0; i < sp->nslots && cnt < n; i++) {
			if ((mask & (1ull << i)) == 0) {
				out[cnt++] = slab_desc(slab, chunk_start(e), i);
			}
		}
		c = chunk_start(e) + sp->nchunks;
	}
	rte_spinlock_unlock(&slab->pool_lock);
	return cnt;
}

unsigned int
pc_slab_classes(const struct pc_slab *slab, int ids[], unsigned int n)
{
	unsigned int cnt = 0;

	if (slab == NULL) {
		return 0;
	}
	for (int id = 0; id < SLAB_NB_CLASSES && cnt < n; id++) {
		if (__atomic_load_n(&slab->classes[id].created, __ATOMIC_RELAXED)) {
			ids[cnt++] = id;
		}
	}
	return cnt;
}

void
pc_slab_get_stats(const struct pc_slab *slab, struct pc_slab_stats *stats)
{
	memset(stats, 0, sizeof(*stats));
	if (slab == NULL) {
		return;
	}
	stats->chunks_total = slab->nb_chunks;
	stats->chunks_free = __atomic_load_n(&slab->chunks_free, __ATOMIC_RELAXED);
	stats->spans_taken = __atomic_load_n(&slab->spans_taken, __ATOMIC_RELAXED);
	stats->spans_returned = __atomic_load_n(&slab->spans_returned, __ATOMIC_RELAXED);
	for (int id = 0; id < SLAB_NB_CLASSES; id++) {
		stats->classes += __atomic_load_n(&slab->classes[id].created, __ATOMIC_RELAXED);
	}
}

/* ---- create / destroy ---- */

/* Zeroed anonymous memory that the kernel fills in as it is touched; NULL on failure. */
static void *
slab_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void
slab_unmap(void *p, size_t len)
{
	if (p != NULL) {
		munmap(p, len);
	}
}

/* The most descriptors any class needs per chunk of its span. */
static uint32_t
slab_desc_per_chunk(void)
{
	uint32_t d = 1;

	for (int id = 0; id < SLAB_NB_CLASSES; id++) {
		struct slab_geom g;

		slab_geom_of(id, &g);
		d = PC_MAX(d, (g.nslots + g.nchunks - 1) / g.nchunks);
	}
	return d;
}

struct pc_slab *
pc_slab_create(const struct pc_slab_opts *opts)
{
	const char *name;
	struct pc_slab *slab;
	uint64_t nb;

	if (opts == NULL) {
		PC_LOG(ERR, mempool, "slab: no options");
		return NULL;
	}
	name = opts->name != NULL ? opts->name : "slab";
	nb = opts->size / PC_SLAB_CHUNK_SIZE;
	if (opts->base == NULL || ((uintptr_t)opts->base % 64) != 0) {
		PC_LOG(ERR, mempool, "slab %s: the segment base must be 64-byte aligned", name);
		return NULL;
	}
	if (nb == 0 || nb > SLAB_MAX_CHUNKS) {
		PC_LOG(ERR, mempool, "slab %s: size %" PRIu64 " is not 1..%u chunks of %u bytes",
		       name, opts->size, SLAB_MAX_CHUNKS, PC_SLAB_CHUNK_SIZE);
		return NULL;
	}
	if (opts->nb_caches == 0 || opts->nb_caches > SLAB_MAX_CACHES) {
		PC_LOG(ERR, mempool, "slab %s: nb_caches %u is not 1..%u", name, opts->nb_caches,
		       SLAB_MAX_CACHES);
		return NULL;
	}

	slab = aligned_alloc(PC_CACHE_LINE, sizeof(*slab));
	if (slab == NULL) {
		PC_LOG(ERR, mempool, "slab %s: out of memory", name);
		return NULL;
	}
	memset(slab, 0, sizeof(*slab));
	snprintf(slab->name, sizeof(slab->name), "%s", name);
	slab->base = opts->base;
	slab->nb_chunks = (uint32_t)nb;
	slab->size = nb * PC_SLAB_CHUNK_SIZE;
	slab->nb_caches = opts->nb_caches;
	slab->desc_per_chunk = slab_desc_per_chunk();
	slab->bits_words = (nb + 63) / 64;
	slab->cache_stride =
		(SLAB_NB_CLASSES * sizeof(struct slab_cache) + PC_CACHE_LINE - 1) & ~(size_t)63;

	slab->chunk_map_len = nb * sizeof(slab->chunk_map[0]);
	slab->spans_len = nb * sizeof(slab->spans[0]);
	slab->desc_len = nb * slab->desc_per_chunk * sizeof(struct pc_slot);
	slab->bits_len = SLAB_NB_CLASSES * slab->bits_words * sizeof(uint64_t);
	slab->caches_len = slab->nb_caches * slab->cache_stride;
	slab->chunk_map = slab_map(slab->chunk_map_len);
	slab->spans = slab_map(slab->spans_len);
	slab->desc = slab_map(slab->desc_len);
	slab->bits = slab_map(slab->bits_len);
	slab->caches = slab_map(slab->caches_len);
	if (slab->chunk_map == NULL || slab->spans == NULL || slab->desc == NULL ||
	    slab->bits == NULL || slab->caches == NULL) {
		PC_LOG(ERR, mempool, "slab %s: cannot map its tables for %" PRIu64 " chunks", name,
		       nb);
		goto err_destroy;
	}

	rte_spinlock_init(&slab->pool_lock);
	for (unsigned int b = 0; b < SLAB_BINS; b++) {
		slab->bins[b] = SLAB_NONE;
	}
	run_insert(slab, 0, slab->nb_chunks);
	slab->chunks_free = slab->nb_chunks;

	for (int id = 0; id < SLAB_NB_CLASSES; id++) {
		struct slab_class *cls = &slab->classes[id];

		rte_spinlock_init(&cls->lock);
		cls->avail = SLAB_NONE;
		cls->span_bits = slab->bits + (size_t)id * slab->bits_words;
		slab_geom_of(id, &cls->g);
		for (unsigned int ci = 0; ci < slab->nb_caches; ci++) {
			slab_cache(slab, ci, id)->max = cls->g.cache_max;
		}
	}

	PC_LOG(INFO, mempool,
	       "slab %s: %" PRIu64 " chunks of %u KiB, %u descriptors per chunk, %u caches", name,
	       nb, PC_SLAB_CHUNK_SIZE >> 10, slab->desc_per_chunk, slab->nb_caches);
	return slab;

err_destroy:
	pc_slab_destroy(slab);
	return NULL;
}

void
pc_slab_destroy(struct pc_slab *slab)
{
	if (slab == NULL) {
		return;
	}
	slab_unmap(slab->caches, slab->caches_len);
	slab_unmap(slab->bits, slab->bits_len);
	slab_unmap(slab->desc, slab->desc_len);
	slab_unmap(slab->spans, slab->spans_len);
	slab_unmap(slab->chunk_map, slab->chunk_map_len);
	free(slab);
}
