/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The page store: segment + slab + index + CLOCK eviction (see store.h for
 * the contract and the page life cycle).
 *
 * Slot state (pc_slot.state, 32 bits, atomic): the state in the low 4 bits,
 * the pin count above them. A reader pins with a CAS that only succeeds
 * while the state is PUBLISHED; evict/delete move PUBLISHED -> RETIRED with a
 * CAS that keeps the pin count; whoever leaves a slot RETIRED with no pin
 * (the unpublisher when it held the only pin, else the last reader to
 * unpin) retires the page header and puts the slot in its own lcore's
 * quarantine.
 *
 * First writer wins: every change of the index and of the PUBLISHED state
 * happens under one of PC_STORE_STRIPES spinlocks chosen by the key digest.
 * rte_hash_add_key_data() overwrites the data of a key already present, so
 * commit looks the key up and adds it under the stripe lock; unpublish
 * moves the slot out of PUBLISHED and deletes the key under the same lock.
 * Hence, at every lock boundary: the index maps digest d to slot s iff s is
 * PUBLISHED (any pin count) with digest d. The lock is held for a lookup and
 * an add or a delete: only SET, DELETE and eviction take it; GET and EXISTS
 * never do.
 *
 * Every unpublish holds a pin on the slot (the unpublisher pins it first:
 * GET, DELETE, clear_ns and the evictor alike), so the descriptor it reads
 * (the digest that picks the lock) cannot be reused under it.
 *
 * Quarantine: a per-cache FIFO of retired slots, linked through the
 * descriptor's generation field (the page's generation lives on in its
 * header; nothing reads the descriptor's copy of a slot that is not
 * PUBLISHED). Intrusive, so it never fills up: no overflow path. A slot
 * enters unstamped; the owner's next pc_store_poll() stamps it with its
 * now_tsc, and a later poll hands it back to the slab once quarantine_tsc
 * has passed since the stamp (so the quarantine is at least quarantine_us,
 * measured on the clock the caller passes in).
 *
 * Counters: one cache-aligned block per cache index, written only by the
 * thread using that index (plain read-modify-write with relaxed atomic
 * stores, so get_stats can read them from anywhere); gauges are per-cache
 * deltas summed on read. EXISTS has no cache index and counts with one
 * atomic add per burst.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>
#include <rte_spinlock.h>

#include "lcore.h"
#include "pc_common.h"
#include "pc_log.h"
#include "segment.h"
#include "slab.h"
#include "store.h"

/* Slot states (low bits of pc_slot.state); FREE must be 0: a new descriptor is zeroed. */
#define ST_FREE        0u
#define ST_ALLOCATED   1u
#define ST_PUBLISHED   2u
#define ST_RETIRED     3u
#define ST_QUARANTINED 4u
#define ST_MASK        0xFu
#define PIN_SHIFT      4
#define PIN_ONE        (1u << PIN_SHIFT)

#define STORE_STRIPES         256         /* first-writer-wins locks, by digest byte */
#define STORE_HASH_MAX        (16u << 20) /* index entries, at most */
#define STORE_HASH_MIN        1024
#define STORE_QUARANTINE_MAX  (60ull * 1000 * 1000) /* us: cap before it sizes a TSC delta */
#define STORE_FREE_BATCH      64   /* quarantined slots returned to the slab per call */
#define STORE_FLUSH_IDLE      64   /* idle polls before a cache with frees is flushed */
#define EVICT_WINDOW          64   /* descriptors per pc_slab_scan() */
#define EVICT_MAX_PER_CALL    256  /* pages evicted per evict_poll, at most */
#define EVICT_SCAN_MAX        8192 /* descriptors looked at per evict_poll, at most */
#define EVICT_CAND_MAX        1024
#define EVICT_DEMAND_MIN      16  /* slots freed for a class whose allocation failed ... */
#define EVICT_DEMAND_SHIFT    5   /* ... at most 1/32 of the segment's bytes, at least one */
#define EVICT_WINDOW_SLOTS    256 /* victim-window slots per call */
#define STORE_DEFAULT_LOW_PCT 5
#define STORE_WASTE_SHIFT     3 /* waste estimate: at most 1/8 of the segment */

/* Per cache index: counters, gauges and the quarantine. One thread at a time. */
struct store_cache {
	uint64_t sets;
	uint64_t set_dedup;
	uint64_t set_nospace;
	uint64_t set_aborted;
	uint64_t gets;
	uint64_t get_hits;
	uint64_t get_misses;
	uint64_t get_bad_header;
	uint64_t deletes;
	uint64_t evictions;
	uint64_t staged; /* pc_store_stage() slots handed out */
	/* gauges, as deltas of this cache: summed over caches on read */
	int64_t pages;
	int64_t bytes_used; /* payload bytes published */
	int64_t live_bytes; /* slot bytes ALLOCATED or PUBLISHED */
	int64_t held_bytes; /* slot bytes taken from the slab, not yet given back */
	int64_t pinned;
	int64_t staged_now;
	uint64_t quarantined;                     /* slots in this cache's FIFO */
	int64_t cls_live[PC_SLAB_MAX_CLASSES];    /* live_bytes by class */
	uint64_t cls_allocs[PC_SLAB_MAX_CLASSES]; /* allocations tried, by class */

	uint64_t gen_ctr;
	struct pc_slot *q_head;      /* oldest */
	struct pc_slot *q_tail;      /* newest */
	struct pc_slot *q_unstamped; /* first slot not yet stamped, NULL if none */
	uint64_t seen_demand;        /* st->demand_epoch at the last flush */
	unsigned int idle_polls;
	bool dirty;   /* freed slots into the slab cache since the last flush */
	bool evictor; /* the control lcore's cache: pc_store_evict_poll runs on it */
	bool registered;
} PC_CACHE_ALIGNED;

struct store_stripe {
	rte_spinlock_t lock;
} PC_CACHE_ALIGNED;

/* Per class: demand from failed allocations and the CLOCK hand. */
struct store_class {
	uint32_t want;        /* atomic: failed allocations not yet served */
	uint64_t next_serve;  /* control: no demand eviction before this TSC */
	uint64_t hand;        /* control: pc_slab_scan cursor */
	bool swept;           /* control: swept in the current evict_poll call */
	uint64_t allocs_seen; /* control: sum of cls_allocs at the last rate update */
	uint64_t rate;        /* control: allocations, halved at every update */
};

struct evict_cand {
	struct pc_slot *slot;
	uint32_t depth;
	uint32_t seq; /* order the hand met it */
};

struct pc_store {
	struct pc_segment *seg;
	struct pc_slab *slab;
	struct rte_hash *index;
	struct rte_rcu_qsbr *rcu;
	unsigned int nb_caches;
	bool page_crc;
	unsigned int low_pct;
	uint64_t quarantine_tsc;
	uint64_t demand_epoch; /* atomic: bumped by every failed allocation */
	uint64_t space_epoch;  /* atomic: bumped whenever slots go back to the slab */
	uint64_t exists_keys;  /* atomic */
	unsigned int class_rr; /* control: where the global sweep starts */
	uint64_t waste_est;    /* control: free bytes no allocation could use, learnt */
	uint64_t fail_gap;     /* atomic: bytes held by no slot at the last failed allocation */
	uint64_t usable;       /* bytes in whole chunks */
	struct store_cache *caches;
	struct store_stripe stripes[STORE_STRIPES];
	struct store_class classes[PC_SLAB_MAX_CLASSES];
	pc_store_event_fn event_fn; /* set before use, read-only after */
	void *event_arg;
	struct evict_cand cand[EVICT_CAND_MAX]; /* control: eviction scratch */
	unsigned int ncand;
	uint32_t cand_seq;
	char name[32];
};

/* ---- small helpers ---- */

/* Single-writer counter update, readable from any thread. */
#define CNT_ADD(c, field, v) __atomic_store_n(&(c)->field, (c)->field + (v), __ATOMIC_RELAXED)
#define CNT_GET(c, field)    __atomic_load_n(&(c)->field, __ATOMIC_RELAXED)

static inline struct store_cache *
c_of(struct pc_store *st, unsigned int ci)
{
	return &st->caches[ci];
}

static inline uint32_t
slot_state(const struct pc_slot *s)
{
	return __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
}

static inline uint64_t
slot_size(const struct pc_slot *s)
{
	return pc_slab_class_slot_size(s->class_id);
}

static inline rte_spinlock_t *
stripe_of(struct pc_store *st, const uint8_t digest[PC_PAGE_DIGEST_LEN])
{
	return &st->stripes[digest[PC_PAGE_DIGEST_LEN - 1] % STORE_STRIPES].lock;
}

static inline struct pc_slot *
qnext_get(const struct pc_slot *s)
{
	/* The quarantine links slots through their generation word (see qnext_set). */
	return (struct pc_slot *)(uintptr_t)s->generation; /* NOLINT(performance-no-int-to-ptr) */
}

static inline void
qnext_set(struct pc_slot *s, struct pc_slot *next)
{
	s->generation = (uint64_t)(uintptr_t)next;
}

/* A slot becomes live (ALLOCATED) or stops being live (freed, or unpublished). */
static inline void
live_add(struct store_cache *c, const struct pc_slot *s, int64_t sign)
{
	int64_t size = sign * (int64_t)slot_size(s);

	CNT_ADD(c, live_bytes, size);
	CNT_ADD(c, cls_live[s->class_id], size);
}

static inline void *
page_payload(struct pc_page_hdr *hdr)
{
	return (uint8_t *)hdr + PC_PAGE_HDR_SIZE;
}

/* Pin a PUBLISHED slot (any pin count). False when it is not PUBLISHED. */
static bool
slot_pin(struct pc_slot *s)
{
	uint32_t v = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);

	do {
		if ((v & ST_MASK) != ST_PUBLISHED) {
			return false;
		}
	} while (!__atomic_compare_exchange_n(&s->state, &v, v + PIN_ONE, true, __ATOMIC_ACQUIRE,
					      __ATOMIC_ACQUIRE));
	return true;
}

/* Pin a PUBLISHED slot nobody else has pinned (the evictor's pin). */
static bool
slot_pin_idle(struct pc_slot *s)
{
	uint32_t v = ST_PUBLISHED;

	return __atomic_compare_exchange_n(&s->state, &v, ST_PUBLISHED + PIN_ONE, false,
					   __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

/* The slot is RETIRED with no pin and belongs to the caller: retire it into c's quarantine. */
static void
slot_retire(struct pc_store *st, struct store_cache *c, struct pc_slot *s)
{
	pc_page_retire(pc_slab_page(st->slab, s));
	__atomic_store_n(&s->state, ST_QUARANTINED, __ATOMIC_RELAXED);
	qnext_set(s, NULL);
	s->free_tsc = 0;
	if (c->q_tail == NULL) {
		c->q_head = s;
	} else {
		qnext_set(c->q_tail, s);
	}
	c->q_tail = s;
	if (c->q_unstamped == NULL) {
		c->q_unstamped = s;
	}
	CNT_ADD(c, quarantined, 1);
}

static void
slot_unpin(struct pc_store *st, struct store_cache *c, struct pc_slot *s)
{
	uint32_t v = __atomic_sub_fetch(&s->state, PIN_ONE, __ATOMIC_ACQ_REL);

	if (v == ST_RETIRED) {
		slot_retire(st, c, s);
	}
}

/* Give a never-published (or published-and-retired, never indexed) slot straight back. */
static void
slot_free_now(struct pc_store *st, struct store_cache *c, unsigned int ci, struct pc_slot *s)
{
	int64_t size = (int64_t)slot_size(s);

	__atomic_store_n(&s->state, ST_FREE, __ATOMIC_RELAXED);
	live_add(c, s, -1);
	CNT_ADD(c, held_bytes, -size);
	pc_slab_free_bulk(st->slab, ci, &s, 1);
	c->dirty = true;
	__atomic_fetch_add(&st->space_epoch, 1, __ATOMIC_RELEASE);
}

/*
 * Take a pinned slot out of the index: PUBLISHED -> RETIRED (pins kept) and
 * the index entry deleted, both under the digest's stripe lock. The caller's
 * pin keeps the slot; its unpin (or a reader's) retires it. False when
 * someone else unpublished it first.
 */
static bool
slot_unpublish(struct pc_store *st, struct store_cache *c, struct pc_slot *s)
{
	rte_spinlock_t *lock = stripe_of(st, s->digest);
	uint32_t v;
	int32_t rc;

	rte_spinlock_lock(lock);
	v = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
	do {
		if ((v & ST_MASK) != ST_PUBLISHED) {
			rte_spinlock_unlock(lock);
			return false;
		}
	} while (!__atomic_compare_exchange_n(&s->state, &v, (v & ~ST_MASK) | ST_RETIRED, true,
					      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
	rc = rte_hash_del_key(st->index, s->digest);
	rte_spinlock_unlock(lock);
	if (rc < 0) {
		/* The invariant says this cannot happen; the page still goes. */
		PC_LOG(ERR, mempool, "%s: unpublish: no index entry for slot at %" PRIu64 " (%d)",
		       st->name, s->off, rc);
	}
	CNT_ADD(c, pages, -1);
	CNT_ADD(c, bytes_used, -(int64_t)s->payload_len);
	live_add(c, s, -1);
	if (st->event_fn != NULL) {
		/* The caller's pin keeps the key tail until its unpin. */
		struct pc_store_event ev = {
			.key = pc_slab_key_tail(st->slab, s),
			.key_len = s->key_len,
			.len = s->payload_len,
			.off = s->off,
			.generation = s->generation,
		};

		st->event_fn(st->event_arg, (unsigned int)(c - st->caches), false, &ev);
	}
	return true;
}

static bool
slot_matches_key(struct pc_store *st, const struct pc_slot *s, const struct pc_store_key *k)
{
	return s->key_len == k->len && k->len <= PC_SLAB_KEY_TAIL &&
	       memcmp(pc_slab_key_tail(st->slab, s), k->bytes, k->len) == 0;
}

/* ---- create / destroy / accessors ---- */

static uint32_t
store_index_entries(uint64_t segment_size)
{
	int cls = pc_slab_class_of(1);
	uint64_t min_slot = cls < 0 ? 0 : pc_slab_class_slot_size(cls);
	uint64_t n;

	if (min_slot == 0) {
		min_slot = 4096;
	}
	/* Every slot, plus a quarter for keys deleted and waiting out the RCU grace period. */
	n = segment_size / min_slot;
	n += n / 4;
	return (uint32_t)PC_MAX(PC_MIN(n, (uint64_t)STORE_HASH_MAX), (uint64_t)STORE_HASH_MIN);
}

struct pc_store *
pc_store_create(const struct pc_store_opts *opts)
{
	struct pc_segment_opts seg_opts;
	struct pc_slab_opts slab_opts;
	struct pc_slab_stats slab_stats;
	struct rte_hash_parameters hp;
	struct rte_hash_rcu_config rcu_cfg;
	struct pc_store *st;
	size_t rcu_size;
	uint64_t q_us;

	if (opts == NULL || opts->name == NULL || opts->name[0] == '\0' ||
	    strlen(opts->name) >= 16 || opts->nb_caches == 0 || opts->nb_caches > RTE_MAX_LCORE ||
	    opts->segment_size < PC_SLAB_CHUNK_SIZE || opts->low_watermark_pct >= 100) {
		PC_LOG(ERR, mempool,
		       "store: invalid options (name < 16 chars, nb_caches 1..%d, "
		       "segment >= %u bytes, watermark < 100)",
		       RTE_MAX_LCORE, PC_SLAB_CHUNK_SIZE);
		return NULL;
	}
	st = rte_zmalloc("pc_store", sizeof(*st), RTE_CACHE_LINE_SIZE);
	if (st == NULL) {
		PC_LOG(ERR, mempool, "%s: no memory for the store", opts->name);
		return NULL;
	}
	snprintf(st->name, sizeof(st->name), "%s", opts->name);
	st->nb_caches = opts->nb_caches;
	st->page_crc = opts->page_crc;
	st->low_pct =
		opts->low_watermark_pct == 0 ? STORE_DEFAULT_LOW_PCT : opts->low_watermark_pct;
	q_us = PC_MIN(opts->quarantine_us, STORE_QUARANTINE_MAX);
	if (q_us != opts->quarantine_us) {
		PC_LOG(WARNING, mempool, "%s: quarantine capped to %" PRIu64 " us", st->name, q_us);
	}
	st->quarantine_tsc = pc_us_to_tsc(q_us);
	for (unsigned int i = 0; i < STORE_STRIPES; i++) {
		rte_spinlock_init(&st->stripes[i].lock);
	}

	st->caches = rte_zmalloc("pc_store_caches", sizeof(*st->caches) * st->nb_caches,
				 RTE_CACHE_LINE_SIZE);
	if (st->caches == NULL) {
		PC_LOG(ERR, mempool, "%s: no memory for %u caches", st->name, st->nb_caches);
		goto err_free_store;
	}

	seg_opts = (struct pc_segment_opts){
		.name = opts->name,
		.size = opts->segment_size,
		.hugepages = opts->hugepages,
	};
	st->seg = pc_segment_create(&seg_opts);
	if (st->seg == NULL) {
		goto err_free_caches;
	}

	slab_opts = (struct pc_slab_opts){
		.name = opts->name,
		.base = pc_segment_base(st->seg),
		.size = pc_segment_size(st->seg),
		.nb_caches = st->nb_caches,
	};
	st->slab = pc_slab_create(&slab_opts);
	if (st->slab == NULL) {
		goto err_destroy_segment;
	}
	pc_slab_get_stats(st->slab, &slab_stats);
	st->usable = slab_stats.chunks_total * (uint64_t)PC_SLAB_CHUNK_SIZE;

	/*
	 * RW_CONCURRENCY_LF and MULTI_WRITER_ADD combine in DPDK 22.11 (only
	 * RW_CONCURRENCY with RW_CONCURRENCY_LF is refused): readers take no
	 * lock, writers serialize on the table's writer lock. EXT_TABLE (also
	 * allowed with LF) makes an add fail only when key slots run out, never
	 * on a bucket collision. MULTI_WRITER_ADD keeps per-lcore key-slot
	 * caches indexed by rte_lcore_id(): every thread that adds or deletes
	 * needs an lcore id (EAL lcore or rte_thread_register()).
	 */
	memset(&hp, 0, sizeof(hp));
	hp.name = st->name;
	hp.entries = store_index_entries(pc_segment_size(st->seg));
	hp.key_len = PC_PAGE_DIGEST_LEN;
	hp.socket_id = (int)rte_socket_id();
	hp.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF |
			RTE_HASH_EXTRA_FLAGS_MULTI_WRITER_ADD | RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
	st->index = rte_hash_create(&hp);
	if (st->index == NULL) {
		PC_LOG(ERR, mempool, "%s: index of %u entries: %s", st->name, hp.entries,
		       rte_strerror(rte_errno));
		goto err_destroy_slab;
	}

	rcu_size = rte_rcu_qsbr_get_memsize(st->nb_caches);
	st->rcu = rte_zmalloc("pc_store_rcu", rcu_size, RTE_CACHE_LINE_SIZE);
	if (st->rcu == NULL || rte_rcu_qsbr_init(st->rcu, st->nb_caches) != 0) {
		PC_LOG(ERR, mempool, "%s: RCU state for %u threads failed", st->name,
		       st->nb_caches);
		goto err_free_rcu;
	}
	memset(&rcu_cfg, 0, sizeof(rcu_cfg));
	rcu_cfg.v = st->rcu;
	rcu_cfg.mode = RTE_HASH_QSBR_MODE_DQ;
	if (rte_hash_rcu_qsbr_add(st->index, &rcu_cfg) != 0) {
		PC_LOG(ERR, mempool, "%s: attaching RCU to the index: %s", st->name,
		       rte_strerror(rte_errno));
		goto err_free_rcu;
	}
	PC_LOG(INFO, mempool, "%s: %" PRIu64 " bytes (%s), index %u entries, %u caches", st->name,
	       pc_segment_size(st->seg),
	       pc_segment_hugepages(st->seg) ? "hugepages" : "plain pages", hp.entries,
	       st->nb_caches);
	return st;

err_free_rcu:
	rte_free(st->rcu);
	rte_hash_free(st->index);
err_destroy_slab:
	pc_slab_destroy(st->slab);
err_destroy_segment:
	pc_segment_destroy(st->seg);
err_free_caches:
	rte_free(st->caches);
err_free_store:
	rte_free(st);
	return NULL;
}

void
pc_store_destroy(struct pc_store *st)
{
	if (st == NULL) {
		return;
	}
	/*
	 * Every user has stopped: take their RCU registrations back so the
	 * index's defer queue can be drained when it is freed.
	 */
	if (st->rcu != NULL && st->caches != NULL) {
		for (unsigned int ci = 0; ci < st->nb_caches; ci++) {
			if (st->caches[ci].registered) {
				rte_rcu_qsbr_thread_offline(st->rcu, ci);
				rte_rcu_qsbr_thread_unregister(st->rcu, ci);
				st->caches[ci].registered = false;
			}
		}
	}
	rte_hash_free(st->index);
	rte_free(st->rcu);
	pc_slab_destroy(st->slab);
	pc_segment_destroy(st->seg);
	rte_free(st->caches);
	rte_free(st);
}

int
pc_store_segment_fd(const struct pc_store *st)
{
	return pc_segment_fd(st->seg);
}

uint64_t
pc_store_segment_size(const struct pc_store *st)
{
	return pc_segment_size(st->seg);
}

void *
pc_store_segment_base(const struct pc_store *st)
{
	return pc_segment_base(st->seg);
}

int
pc_store_key_init(struct pc_store_key *k, const void *ns, size_t ns_len, const void *key,
		  size_t key_len)
{
	if (k == NULL || (ns == NULL && ns_len != 0) || key == NULL) {
		return -EINVAL;
	}
	if (ns_len > PC_NS_MAX || key_len > PC_KEY_MAX) {
		return -ENAMETOOLONG;
	}
	if (key_len == 0) {
		return -EINVAL;
	}
	if (ns_len > 0) {
		memcpy(k->bytes, ns, ns_len);
	}
	k->bytes[ns_len] = '\0';
	memcpy(k->bytes + ns_len + 1, key, key_len);
	k->len = (uint32_t)(ns_len + 1 + key_len);
	pc_page_digest(k->bytes, k->len, k->digest);
	return 0;
}

/* ---- SET ---- */

/* Whether the index holds a PUBLISHED page of k's digest. Pin-free: a hint that may race. */
static bool
store_published(struct pc_store *st, const uint8_t digest[PC_PAGE_DIGEST_LEN])
{
	void *data = NULL;
	struct pc_slot *s;

	if (rte_hash_lookup_data(st->index, digest, &data) < 0) {
		return false;
	}
	s = data;
	return (slot_state(s) & ST_MASK) == ST_PUBLISHED &&
	       memcmp(s->digest, digest, PC_PAGE_DIGEST_LEN) == 0;
}

/* The slot of an ALLOCATED loc, or NULL for a consumed or foreign one. */
static struct pc_slot *
loc_allocated(const struct pc_store_loc *loc)
{
	struct pc_slot *s = loc->slot;

	if (s == NULL || (slot_state(s) & ST_MASK) != ST_ALLOCATED ||
	    s->generation != loc->generation) {
		return NULL;
	}
	return s;
}

/* prefix_depth of a landing slot (pc_store_stage): never a SET's, which are clamped below it. */
#define SLOT_STAGED UINT32_MAX

static bool
slot_staged(const struct pc_slot *s)
{
	return s->prefix_depth == SLOT_STAGED;
}

/* alloc and stage: a slot for k's page of len payload bytes; stage skips the dedup check. */
static int
slot_reserve(struct pc_store *st, unsigned int ci, const struct pc_store_key *k, uint32_t len,
	     uint32_t prefix_depth, bool stage, struct pc_store_loc *loc)
{
	struct store_cache *c;
	struct pc_slot *s;
	int cls;

	if (st == NULL || ci >= st->nb_caches || k == NULL || loc == NULL || k->len == 0 ||
	    k->len > PC_STORE_KEY_MAX || k->len > PC_SLAB_KEY_TAIL) {
		return -EINVAL;
	}
	c = &st->caches[ci];
	if (len == 0 || len > PC_PAGE_PAYLOAD_MAX) {
		return -EMSGSIZE;
	}
	cls = pc_slab_class_of(len);
	if (cls < 0) {
		return -EMSGSIZE;
	}
	if (!stage && store_published(st, k->digest)) {
		CNT_ADD(c, set_dedup, 1);
		return PC_STORE_DEDUP;
	}
	if (pc_slab_alloc_burst(st->slab, ci, cls, &s, 1) != 1) {
		int64_t held = 0;

		for (unsigned int i = 0; i < st->nb_caches; i++) {
			held += CNT_GET(&st->caches[i], held_bytes);
		}
		__atomic_store_n(&st->fail_gap,
				 st->usable > (uint64_t)held ? st->usable - (uint64_t)held : 0,
				 __ATOMIC_RELAXED);
		/*
		 * Demand saturates at one eviction batch: a caller retrying the
		 * same allocations (a parked SET) fails again and again, and each
		 * failure is not another page wanted. While allocations keep
		 * failing the evictor serves a batch per quarantine period.
		 */
		if (__atomic_load_n(&st->classes[cls].want, __ATOMIC_RELAXED) < EVICT_DEMAND_MIN) {
			__atomic_fetch_add(&st->classes[cls].want, 1, __ATOMIC_RELAXED);
		}
		__atomic_fetch_add(&st->demand_epoch, 1, __ATOMIC_RELEASE);
		return -ENOSPC;
	}
	CNT_ADD(c, cls_allocs[cls], 1);
	/* Memory is there again: demand left by earlier failures is stale, serving it would
	 * evict pages nobody needs evicted. */
	if (__atomic_load_n(&st->classes[cls].want, __ATOMIC_RELAXED) != 0) {
		__atomic_store_n(&st->classes[cls].want, 0, __ATOMIC_RELAXED);
	}
	/* Stale bytes of a re-cut span must never read as a page at this header. */
	__atomic_store_n(&pc_slab_page(st->slab, s)->magic, 0, __ATOMIC_RELAXED);
	c->gen_ctr++;
	s->generation = c->gen_ctr * st->nb_caches + ci; /* unique per store */
	s->payload_len = len;
	s->prefix_depth = stage ? SLOT_STAGED : PC_MIN(prefix_depth, SLOT_STAGED - 1);
	s->key_len = k->len;
	memcpy(s->digest, k->digest, PC_PAGE_DIGEST_LEN);
	__atomic_store_n(&s->clock_ref, 0, __ATOMIC_RELAXED);
	s->free_tsc = 0;
	memcpy(pc_slab_key_tail(st->slab, s), k->bytes, k->len);
	__atomic_store_n(&s->state, ST_ALLOCATED, __ATOMIC_RELEASE);
	live_add(c, s, 1);
	CNT_ADD(c, held_bytes, (int64_t)slot_size(s));

	loc->slot = s;
	loc->off = s->off;
	loc->generation = s->generation;
	loc->len = len;
	loc->pad = 0;
	return 0;
}

int
pc_store_alloc(struct pc_store *st, unsigned int ci, const struct pc_store_key *k, uint32_t len,
	       uint32_t prefix_depth, struct pc_store_loc *loc)
{
	return slot_reserve(st, ci, k, len, prefix_depth, false, loc);
}

int
pc_store_stage(struct pc_store *st, unsigned int ci, const struct pc_store_key *k, uint32_t len,
	       struct pc_store_loc *loc)
{
	int rc = slot_reserve(st, ci, k, len, 0, true, loc);

	if (rc == 0) {
		CNT_ADD(&st->caches[ci], staged, 1);
		CNT_ADD(&st->caches[ci], staged_now, 1);
	}
	return rc;
}

void
pc_store_unstage(struct pc_store *st, unsigned int ci, struct pc_store_loc *loc)
{
	struct store_cache *c;
	struct pc_slot *s;

	if (st == NULL || ci >= st->nb_caches || loc == NULL) {
		return;
	}
	s = loc_allocated(loc);
	if (s != NULL && !slot_staged(s)) {
		return; /* a SET's allocation: pc_store_abort()'s to drop */
	}
	loc->slot = NULL;
	if (s == NULL) {
		return;
	}
	c = &st->caches[ci];
	/* The landed bytes carry another node's valid header: never leave it in a free slot. */
	__atomic_store_n(&pc_slab_page(st->slab, s)->magic, 0, __ATOMIC_RELEASE);
	slot_free_now(st, c, ci, s);
	CNT_ADD(c, staged_now, -1);
}

int
pc_store_commit(struct pc_store *st, unsigned int ci, struct pc_store_loc *loc)
{
	struct store_cache *c;
	struct pc_page_hdr *hdr;
	rte_spinlock_t *lock;
	struct pc_slot *s;
	void *data = NULL;
	uint32_t len;
	int rc;

	if (st == NULL || ci >= st->nb_caches || loc == NULL) {
		return -EINVAL;
	}
	s = loc_allocated(loc);
	if (s == NULL || slot_staged(s)) {
		return -EINVAL; /* a landing slot is never published */
	}
	c = &st->caches[ci];
	loc->slot = NULL;
	hdr = pc_slab_page(st->slab, s);
	/* Header outside the lock: the CRC of a big page must not hold a stripe. */
	rc = pc_page_publish(hdr, s->digest, s->generation, s->payload_len, st->page_crc);
	if (rc != 0) {
		slot_free_now(st, c, ci, s);
		return rc;
	}

	lock = stripe_of(st, s->digest);
	rte_spinlock_lock(lock);
	if (rte_hash_lookup_data(st->index, s->digest, &data) >= 0) {
		rte_spinlock_unlock(lock);
		/* Lost the race: never indexed, so no reader knows this generation. */
		pc_page_retire(hdr);
		slot_free_now(st, c, ci, s);
		CNT_ADD(c, set_dedup, 1);
		return PC_STORE_DEDUP;
	}
	/*
	 * Index entry first, then PUBLISHED, both under the lock: a reader that
	 * finds the entry a moment early fails to pin (a miss: commit has not
	 * returned yet), and nothing can pin the slot before the add succeeded.
	 */
	rc = rte_hash_add_key_data(st->index, s->digest, s);
	if (rc == 0) {
		__atomic_store_n(&s->state, ST_PUBLISHED, __ATOMIC_RELEASE);
	}
	if (rc != 0) {
		rte_spinlock_unlock(lock);
		pc_page_retire(hdr);
		slot_free_now(st, c, ci, s);
		CNT_ADD(c, set_nospace, 1);
		return -ENOSPC;
	}
	/* Once published it may be evicted and reused at once: read what we count first. */
	len = s->payload_len;
	if (st->event_fn != NULL) {
		uint8_t key[PC_STORE_KEY_MAX];
		struct pc_store_event ev = {
			.key = key,
			.key_len = PC_MIN(s->key_len, (uint32_t)sizeof(key)),
			.len = len,
			.off = s->off,
			.generation = s->generation,
		};

		memcpy(key, pc_slab_key_tail(st->slab, s), ev.key_len);
		rte_spinlock_unlock(lock);
		st->event_fn(st->event_arg, ci, true, &ev);
	} else {
		rte_spinlock_unlock(lock);
	}
	CNT_ADD(c, sets, 1);
	CNT_ADD(c, pages, 1);
	CNT_ADD(c, bytes_used, (int64_t)len);
	return 0;
}

void
pc_store_set_event_cb(struct pc_store *st, pc_store_event_fn fn, void *arg)
{
	st->event_fn = fn;
	st->event_arg = arg;
}

void
pc_store_abort(struct pc_store *st, unsigned int ci, struct pc_store_loc *loc)
{
	struct store_cache *c;
	struct pc_slot *s;

	if (st == NULL || ci >= st->nb_caches || loc == NULL) {
		return;
	}
	s = loc_allocated(loc);
	if (s != NULL && slot_staged(s)) {
		pc_store_unstage(st, ci, loc); /* a landing slot, counted as one */
		return;
	}
	loc->slot = NULL;
	if (s == NULL) {
		return;
	}
	c = &st->caches[ci];
	slot_free_now(st, c, ci, s);
	CNT_ADD(c, set_aborted, 1);
}

/* ---- GET / EXISTS / DELETE ---- */

/*
 * Confirm a pinned slot is k's valid page. 0, -ENOENT (another key's page:
 * the slot was reused under a stale index read), -EBADMSG (damaged: its
 * key tail or its header or payload failed the check).
 */
static int
slot_verify(struct pc_store *st, const struct pc_slot *s, const struct pc_store_key *k)
{
	struct pc_page_hdr *hdr;

	if (memcmp(s->digest, k->digest, PC_PAGE_DIGEST_LEN) != 0) {
		return -ENOENT;
	}
	if (!slot_matches_key(st, s, k)) {
		return -EBADMSG;
	}
	hdr = pc_slab_page(st->slab, s);
	if (pc_page_check(hdr, page_payload(hdr), s->cap, s->digest, s->generation, s->payload_len,
			  st->page_crc) != 0) {
		return -EBADMSG;
	}
	return 0;
}

unsigned int
pc_store_lookup_pin_burst(struct pc_store *st, unsigned int ci,
			  const struct pc_store_key *const keys[], unsigned int n,
			  struct pc_store_loc locs[], int rc[])
{
	const void *dig[RTE_HASH_LOOKUP_BULK_MAX];
	void *data[RTE_HASH_LOOKUP_BULK_MAX];
	struct store_cache *c;
	unsigned int pinned = 0, hits = 0, bad = 0;

	if (st == NULL || ci >= st->nb_caches) {
		for (unsigned int i = 0; rc != NULL && i < n; i++) {
			rc[i] = -EINVAL;
		}
		return 0;
	}
	c = &st->caches[ci];
	for (unsigned int base = 0; base < n; base += RTE_HASH_LOOKUP_BULK_MAX) {
		unsigned int m = PC_MIN(n - base, (unsigned int)RTE_HASH_LOOKUP_BULK_MAX);
		uint64_t hit_mask = 0;

		for (unsigned int i = 0; i < m; i++) {
			dig[i] = keys[base + i]->digest;
		}
		if (rte_hash_lookup_bulk_data(st->index, dig, m, &hit_mask, data) < 0) {
			hit_mask = 0;
		}
		for (unsigned int i = 0; i < m; i++) {
			const struct pc_store_key *k = keys[base + i];
			struct pc_store_loc *loc = &locs[base + i];
			struct pc_slot *s = data[i];
			int r;

			loc->slot = NULL;
			if ((hit_mask & (1ull << i)) == 0 || !slot_pin(s)) {
				rc[base + i] = -ENOENT;
				continue;
			}
			r = slot_verify(st, s, k);
			if (r != 0) {
				if (r == -EBADMSG) {
					bad++;
					slot_unpublish(st, c, s);
					/* A damaged key tail is reported as a plain miss. */
					r = slot_matches_key(st, s, k) ? -EBADMSG : -ENOENT;
				}
				slot_unpin(st, c, s);
				rc[base + i] = r;
				continue;
			}
			if (__atomic_load_n(&s->clock_ref, __ATOMIC_RELAXED) == 0) {
				__atomic_store_n(&s->clock_ref, 1, __ATOMIC_RELAXED);
			}
			loc->slot = s;
			loc->off = s->off;
			loc->generation = s->generation;
			loc->len = s->payload_len;
			loc->pad = 0;
			rc[base + i] = 0;
			pinned++;
			hits++;
		}
	}
	CNT_ADD(c, gets, n);
	CNT_ADD(c, get_hits, hits);
	CNT_ADD(c, get_misses, n - hits);
	CNT_ADD(c, get_bad_header, bad);
	CNT_ADD(c, pinned, (int64_t)pinned);
	return pinned;
}

int
pc_store_pin_at(struct pc_store *st, unsigned int ci, uint64_t off, uint64_t generation,
		struct pc_store_loc *loc)
{
	struct pc_slot *s;

	if (st == NULL || ci >= st->nb_caches || loc == NULL) {
		return -EINVAL;
	}
	loc->slot = NULL;
	s = pc_slab_slot_at(st->slab, off);
	if (s == NULL) {
		return -EINVAL;
	}
	if (!slot_pin(s)) {
		return -ENOENT;
	}
	/* Pinned and published: the generation is that page's until the unpin. */
	if (s->off != off || s->generation != generation) {
		slot_unpin(st, c_of(st, ci), s);
		return -ESTALE;
	}
	if (__atomic_load_n(&s->clock_ref, __ATOMIC_RELAXED) == 0) {
		__atomic_store_n(&s->clock_ref, 1, __ATOMIC_RELAXED);
	}
	loc->slot = s;
	loc->off = s->off;
	loc->generation = s->generation;
	loc->len = s->payload_len;
	loc->pad = 0;
	CNT_ADD(c_of(st, ci), pinned, 1);
	return 0;
}

void
pc_store_unpin_bulk(struct pc_store *st, unsigned int ci, struct pc_store_loc locs[],
		    unsigned int n)
{
	struct store_cache *c;
	int64_t dropped = 0;

	if (st == NULL || ci >= st->nb_caches) {
		return;
	}
	c = &st->caches[ci];
	for (unsigned int i = 0; i < n; i++) {
		struct pc_slot *s = locs[i].slot;

		if (s == NULL) {
			continue;
		}
		locs[i].slot = NULL;
		slot_unpin(st, c, s);
		dropped++;
	}
	CNT_ADD(c, pinned, -dropped);
}

unsigned int
pc_store_exists_burst(struct pc_store *st, const struct pc_store_key *const keys[], unsigned int n,
		      bool present[])
{
	const void *dig[RTE_HASH_LOOKUP_BULK_MAX];
	void *data[RTE_HASH_LOOKUP_BULK_MAX];
	unsigned int leading = 0;
	bool gap = false;

	if (st == NULL) {
		return 0;
	}
	for (unsigned int base = 0; base < n; base += RTE_HASH_LOOKUP_BULK_MAX) {
		unsigned int m = PC_MIN(n - base, (unsigned int)RTE_HASH_LOOKUP_BULK_MAX);
		uint64_t hit_mask = 0;

		for (unsigned int i = 0; i < m; i++) {
			dig[i] = keys[base + i]->digest;
		}
		if (rte_hash_lookup_bulk_data(st->index, dig, m, &hit_mask, data) < 0) {
			hit_mask = 0;
		}
		for (unsigned int i = 0; i < m; i++) {
			const struct pc_slot *s = data[i];
			bool p = (hit_mask & (1ull << i)) != 0 &&
				 (slot_state(s) & ST_MASK) == ST_PUBLISHED &&
				 memcmp(s->digest, keys[base + i]->digest, PC_PAGE_DIGEST_LEN) == 0;

			present[base + i] = p;
			gap |= !p;
			leading += gap ? 0 : 1;
		}
	}
	__atomic_fetch_add(&st->exists_keys, n, __ATOMIC_RELAXED);
	return leading;
}

int
pc_store_delete(struct pc_store *st, unsigned int ci, const struct pc_store_key *k)
{
	struct store_cache *c;
	struct pc_slot *s;
	void *data = NULL;
	bool done;

	if (st == NULL || ci >= st->nb_caches || k == NULL) {
		return -EINVAL;
	}
	c = &st->caches[ci];
	if (rte_hash_lookup_data(st->index, k->digest, &data) < 0) {
		return -ENOENT;
	}
	s = data;
	if (!slot_pin(s)) {
		return -ENOENT;
	}
	if (memcmp(s->digest, k->digest, PC_PAGE_DIGEST_LEN) != 0) {
		slot_unpin(st, c, s);
		return -ENOENT;
	}
	done = slot_unpublish(st, c, s);
	slot_unpin(st, c, s);
	if (!done) {
		return -ENOENT;
	}
	CNT_ADD(c, deletes, 1);
	return 0;
}

/* Whether key tail bytes (len of them) start with ns '\0'. */
static bool
key_in_ns(const uint8_t *tail, uint32_t len, const void *ns, size_t ns_len)
{
	return len > ns_len && tail[ns_len] == '\0' &&
	       (ns_len == 0 || memcmp(tail, ns, ns_len) == 0);
}

/* Called with the slot pinned; returns whether the visit counts. */
typedef bool (*walk_visit_fn)(struct pc_store *st, struct store_cache *c, struct pc_slot *s,
			      void *arg);

/*
 * Up to max slots of the walk, class after class, each class once in
 * address order (its scan wrapping back below the last offset seen ends
 * it). Slots that cannot be pinned (free, retired) are passed over.
 */
static uint64_t
walk_step(struct pc_store *st, struct store_cache *c, struct pc_store_walk *w, uint64_t max,
	  walk_visit_fn visit, void *arg)
{
	struct pc_slot *win[EVICT_WINDOW];
	uint64_t seen = 0;
	uint64_t counted = 0;

	while (!w->done && seen < max) {
		unsigned int want = (unsigned int)PC_MIN((uint64_t)PC_ARRAY_SIZE(win), max - seen);
		unsigned int got;
		bool class_over;

		if (w->class_id >= PC_SLAB_MAX_CLASSES) {
			w->done = true;
			break;
		}
		got = pc_slab_scan(st->slab, w->class_id, &w->cursor, win, want);
		class_over = got == 0;
		for (unsigned int i = 0; i < got; i++) {
			struct pc_slot *s = win[i];

			if (w->started && s->off <= w->prev) {
				class_over = true;
				break;
			}
			w->started = true;
			w->prev = s->off;
			seen++;
			if (slot_pin(s)) {
				counted += visit(st, c, s, arg);
				slot_unpin(st, c, s);
			}
		}
		if (class_over) {
			w->class_id++;
			w->cursor = 0;
			w->prev = 0;
			w->started = false;
		}
	}
	return counted;
}

struct clear_arg {
	const void *ns;
	size_t ns_len;
};

static bool
clear_visit(struct pc_store *st, struct store_cache *c, struct pc_slot *s, void *arg)
{
	const struct clear_arg *a = arg;

	return key_in_ns(pc_slab_key_tail(st->slab, s), s->key_len, a->ns, a->ns_len) &&
	       slot_unpublish(st, c, s);
}

uint64_t
pc_store_clear_ns(struct pc_store *st, unsigned int ci, const void *ns, size_t ns_len)
{
	struct clear_arg a = {.ns = ns, .ns_len = ns_len};
	struct pc_store_walk w = {0};
	struct store_cache *c;
	uint64_t removed;

	if (st == NULL || ci >= st->nb_caches || (ns == NULL && ns_len != 0) ||
	    ns_len > PC_NS_MAX) {
		return 0;
	}
	c = &st->caches[ci];
	removed = walk_step(st, c, &w, UINT64_MAX, clear_visit, &a);
	CNT_ADD(c, deletes, removed);
	return removed;
}

static bool
announce_visit(struct pc_store *st, struct store_cache *c, struct pc_slot *s, void *arg)
{
	struct pc_store_event ev;

	(void)arg;
	/* The pin keeps the key tail; a page being unpublished right now is left out. */
	if ((slot_state(s) & ST_MASK) != ST_PUBLISHED) {
		return false;
	}
	ev = (struct pc_store_event){
		.key = pc_slab_key_tail(st->slab, s),
		.key_len = s->key_len,
		.len = s->payload_len,
		.off = s->off,
		.generation = s->generation,
	};
	st->event_fn(st->event_arg, (unsigned int)(c - st->caches), true, &ev);
	return true;
}

unsigned int
pc_store_announce(struct pc_store *st, unsigned int ci, struct pc_store_walk *w, unsigned int max)
{
	if (st == NULL || ci >= st->nb_caches || w == NULL || st->event_fn == NULL) {
		if (w != NULL) {
			w->done = true;
		}
		return 0;
	}
	return (unsigned int)walk_step(st, &st->caches[ci], w, max, announce_visit, NULL);
}

/* ---- per-lcore poll, RCU ---- */

int
pc_store_reader_register(struct pc_store *st, unsigned int ci)
{
	struct store_cache *c;

	if (st == NULL || ci >= st->nb_caches) {
		return -EINVAL;
	}
	c = &st->caches[ci];
	if (c->registered) {
		return -EBUSY;
	}
	if (rte_lcore_id() == LCORE_ID_ANY) {
		/* rte_hash's multi-writer key-slot caches are indexed by lcore id. */
		PC_LOG(ERR, mempool,
		       "%s: cache %u: the thread has no lcore id "
		       "(EAL lcore or rte_thread_register() needed)",
		       st->name, ci);
		return -EINVAL;
	}
	if (rte_rcu_qsbr_thread_register(st->rcu, ci) != 0) {
		return -rte_errno;
	}
	rte_rcu_qsbr_thread_online(st->rcu, ci);
	c->registered = true;
	return 0;
}

void
pc_store_reader_unregister(struct pc_store *st, unsigned int ci)
{
	if (st == NULL || ci >= st->nb_caches || !st->caches[ci].registered) {
		return;
	}
	rte_rcu_qsbr_thread_offline(st->rcu, ci);
	rte_rcu_qsbr_thread_unregister(st->rcu, ci);
	st->caches[ci].registered = false;
}

int
pc_store_poll(struct pc_store *st, unsigned int ci, uint64_t now_tsc)
{
	struct pc_slot *batch[STORE_FREE_BATCH];
	struct store_cache *c;
	unsigned int nb = 0;
	int work = 0;
	uint64_t epoch;

	if (st == NULL || ci >= st->nb_caches) {
		return 0;
	}
	c = &st->caches[ci];
	if (c->registered) {
		rte_rcu_qsbr_quiescent(st->rcu, ci);
	}
	for (struct pc_slot *s = c->q_unstamped; s != NULL; s = qnext_get(s)) {
		s->free_tsc = now_tsc;
	}
	c->q_unstamped = NULL;

	while (c->q_head != NULL && nb < STORE_FREE_BATCH &&
	       now_tsc - c->q_head->free_tsc >= st->quarantine_tsc) {
		struct pc_slot *s = c->q_head;

		c->q_head = qnext_get(s);
		if (c->q_head == NULL) {
			c->q_tail = NULL;
		}
		__atomic_store_n(&s->state, ST_FREE, __ATOMIC_RELAXED);
		CNT_ADD(c, held_bytes, -(int64_t)slot_size(s));
		batch[nb++] = s;
	}
	if (nb > 0) {
		pc_slab_free_bulk(st->slab, ci, batch, nb);
		__atomic_fetch_add(&st->space_epoch, 1, __ATOMIC_RELEASE);
		CNT_ADD(c, quarantined, -(uint64_t)nb);
		c->dirty = true;
		c->idle_polls = 0;
		work += (int)nb;
	} else if (c->idle_polls < STORE_FLUSH_IDLE) {
		c->idle_polls++;
	}

	/*
	 * Slots in this cache (freed here, or left over from a refill) serve
	 * this lcore's next allocations, but they also keep their spans from
	 * going back to the chunk pool. Give them back when an allocation
	 * failed anywhere since the last flush, or after a long idle spell
	 * that followed frees; the evictor's lcore (which rarely allocates)
	 * gives back what it freed at once, or the evicted memory would sit in
	 * its cache.
	 */
	epoch = __atomic_load_n(&st->demand_epoch, __ATOMIC_ACQUIRE);
	if (epoch != c->seen_demand ||
	    (c->dirty && (c->evictor || c->idle_polls >= STORE_FLUSH_IDLE))) {
		pc_slab_flush_cache(st->slab, ci);
		/* Slots this cache held are allocatable by every lcore now: wake parked SETs. */
		__atomic_fetch_add(&st->space_epoch, 1, __ATOMIC_RELEASE);
		c->dirty = false;
		c->seen_demand = epoch;
		work++;
	}
	return work;
}

uint64_t
pc_store_space_epoch(const struct pc_store *st)
{
	return __atomic_load_n(&st->space_epoch, __ATOMIC_ACQUIRE);
}

void
pc_store_count_nospace(struct pc_store *st, unsigned int ci, unsigned int n)
{
	if (st != NULL && ci < st->nb_caches) {
		CNT_ADD(&st->caches[ci], set_nospace, n);
	}
}

/* ---- eviction (control lcore) ---- */

static int
cand_cmp(const void *a, const void *b)
{
	const struct evict_cand *x = a, *y = b;

	if (x->depth != y->depth) {
		return x->depth > y->depth ? -1 : 1; /* deeper first */
	}
	return x->seq < y->seq ? -1 : (x->seq > y->seq); /* then in hand order */
}

/*
 * Move class cls's CLOCK hand at most one revolution, until `want` cold
 * candidates are collected in total: referenced pages lose their bit and
 * stay, unpinned unreferenced PUBLISHED pages become candidates. Returns the
 * descriptors looked at.
 */
static unsigned int
evict_sweep(struct pc_store *st, int cls, unsigned int want, unsigned int *budget)
{
	struct store_class *sc = &st->classes[cls];
	struct pc_slot *win[EVICT_WINDOW];
	uint64_t first = 0, prev = 0;
	bool started = false, wrapped = false;
	unsigned int looked = 0;

	if (sc->swept) {
		return 0;
	}
	sc->swept = true;
	want = PC_MIN(want, (unsigned int)EVICT_CAND_MAX);
	while (st->ncand<want && * budget> 0) {
		unsigned int got = pc_slab_scan(st->slab, cls, &sc->hand, win,
						PC_MIN((unsigned int)EVICT_WINDOW, *budget));

		if (got == 0) {
			break;
		}
		for (unsigned int i = 0; i < got; i++) {
			struct pc_slot *s = win[i];
			uint32_t v;

			if (started) {
				wrapped |= s->off <= prev;
				if (wrapped && s->off >= first) {
					return looked;
				}
			} else {
				first = s->off;
				started = true;
			}
			prev = s->off;
			looked++;
			(*budget)--;
			v = slot_state(s);
			if ((v & ST_MASK) != ST_PUBLISHED) {
				continue;
			}
			if (__atomic_load_n(&s->clock_ref, __ATOMIC_RELAXED) != 0) {
				__atomic_store_n(&s->clock_ref, 0, __ATOMIC_RELAXED);
				continue;
			}
			if ((v >> PIN_SHIFT) != 0 || st->ncand >= EVICT_CAND_MAX) {
				continue;
			}
			st->cand[st->ncand++] = (struct evict_cand){
				.slot = s,
				.depth = __atomic_load_n(&s->prefix_depth, __ATOMIC_RELAXED),
				.seq = st->cand_seq++,
			};
		}
	}
	return looked;
}

/*
 * Evict one slot: pin it if nobody has, skip it if it was referenced since
 * the sweep (when cold_only), unpublish, unpin (the last unpin retires it
 * into c's quarantine). Returns the slot bytes freed, 0 if skipped.
 */
static uint64_t
evict_slot(struct pc_store *st, struct store_cache *c, struct pc_slot *s, bool cold_only)
{
	uint64_t size;
	bool done;

	if (!slot_pin_idle(s)) {
		return 0;
	}
	if (cold_only && __atomic_load_n(&s->clock_ref, __ATOMIC_RELAXED) != 0) {
		slot_unpin(st, c, s);
		return 0;
	}
	size = slot_size(s);
	done = slot_unpublish(st, c, s);
	slot_unpin(st, c, s);
	if (!done) {
		return 0;
	}
	CNT_ADD(c, evictions, 1);
	return size;
}

/*
 * Evict candidates deepest first (cand[] sorted from *pos) until `slots`
 * slots or `bytes` bytes are freed, within the per-call budget. Returns the
 * slots freed; *freed_bytes grows.
 */
static unsigned int
evict_cands(struct pc_store *st, struct store_cache *c, unsigned int *pos, int only_cls,
	    unsigned int slots, uint64_t bytes, uint64_t *freed_bytes, unsigned int *evicted)
{
	unsigned int done = 0;
	uint64_t got = 0;

	for (unsigned int i = *pos; i < st->ncand; i++) {
		struct evict_cand *e = &st->cand[i];
		uint64_t sz;

		if (done >= slots || got >= bytes || *evicted >= EVICT_MAX_PER_CALL) {
			break;
		}
		if (e->slot == NULL || (only_cls >= 0 && e->slot->class_id != only_cls)) {
			continue;
		}
		sz = evict_slot(st, c, e->slot, true);
		e->slot = NULL;
		if (sz > 0) {
			done++;
			got += sz;
			(*evicted)++;
		}
	}
	*freed_bytes += got;
	return done;
}

static void
evict_sort(struct pc_store *st)
{
	unsigned int n = 0;

	/* Drop used-up entries, then order what is left. */
	for (unsigned int i = 0; i < st->ncand; i++) {
		if (st->cand[i].slot != NULL) {
			st->cand[n++] = st->cand[i];
		}
	}
	st->ncand = n;
	qsort(st->cand, st->ncand, sizeof(st->cand[0]), cand_cmp);
}

/*
 * Empty the cheapest window of chunks that would make a span for cls, its
 * own spans' slots excepted (evicting those cannot give it a new span).
 * Returns the pages evicted.
 */
static unsigned int
evict_window(struct pc_store *st, struct store_cache *c, int cls, unsigned int *evicted,
	     uint64_t *freed)
{
	struct pc_slot *victims[EVICT_WINDOW_SLOTS];
	unsigned int nv, done = 0;

	nv = pc_slab_victim_window(st->slab, cls, victims, PC_ARRAY_SIZE(victims));
	for (unsigned int i = 0; i < nv && *evicted < EVICT_MAX_PER_CALL; i++) {
		uint64_t sz;

		if (victims[i]->class_id == cls) {
			continue;
		}
		/* Hot or not: the span needs them all (pinned ones are skipped). */
		sz = evict_slot(st, c, victims[i], false);
		if (sz > 0) {
			*freed += sz;
			(*evicted)++;
			done++;
		}
	}
	return done;
}

/*
 * Give memory to cls from the class that holds the most memory for its
 * allocation rate: its cold pages go in address order from its CLOCK hand,
 * so whole spans empty and return to the chunk pool. Returns pages evicted.
 */
static unsigned int
evict_donor(struct pc_store *st, struct store_cache *c, int cls, const int64_t live[],
	    uint64_t total_rate, int64_t total_live, unsigned int *budget, unsigned int *evicted,
	    uint64_t *freed)
{
	uint64_t need = PC_MAX(2 * pc_slab_class_slot_size(cls), 4ull * PC_SLAB_CHUNK_SIZE);
	unsigned __int128 best = 0;
	unsigned int base = st->ncand, done = 0;
	uint64_t got = 0, dsize;
	int donor = -1;

	for (int d = 0; d < PC_SLAB_MAX_CLASSES; d++) {
		unsigned __int128 have, fair, excess;

		if (d == cls || live[d] <= 0) {
			continue;
		}
		have = (unsigned __int128)live[d] * (total_rate + 1);
		fair = (unsigned __int128)st->classes[d].rate * (uint64_t)total_live;
		excess = have > fair ? have - fair : 0;
		if (donor < 0 || excess > best) {
			best = excess;
			donor = d;
		}
	}
	if (donor < 0) {
		return 0;
	}
	dsize = pc_slab_class_slot_size(donor);
	evict_sweep(st, donor, base + (unsigned int)PC_MIN(2 * (need / dsize + 1), 512ull), budget);
	/* Sweep order is address order (from the hand): no depth sort here. */
	for (unsigned int i = base; i < st->ncand && got < need; i++) {
		uint64_t sz;

		if (*evicted >= EVICT_MAX_PER_CALL) {
			break;
		}
		sz = evict_slot(st, c, st->cand[i].slot, true);
		st->cand[i].slot = NULL;
		if (sz > 0) {
			got += sz;
			(*evicted)++;
			done++;
		}
	}
	*freed += got;
	return done;
}

/*
 * Serve class cls's failed allocations. A class that holds less memory than
 * its share of recent allocations grows: first by the fragmentation window
 * (pages of other classes in the cheapest window of chunks for one of its
 * spans), else from the most over-provisioned class. Otherwise CLOCK runs
 * within the class, whose freed slots come straight back to it, deepest
 * cold pages first; the window is the fallback when that cannot cover the
 * failures (every page of the class hot or pinned).
 */
static void
evict_for_class(struct pc_store *st, struct store_cache *c, int cls, unsigned int want,
		unsigned int target, bool grow, const int64_t live[], uint64_t total_rate,
		int64_t total_live, unsigned int *budget, unsigned int *evicted, uint64_t *freed)
{
	unsigned int pos, done;

	if (grow &&
	    (evict_window(st, c, cls, evicted, freed) > 0 ||
	     evict_donor(st, c, cls, live, total_rate, total_live, budget, evicted, freed) > 0)) {
		return;
	}
	pos = 0;
	evict_sweep(st, cls, st->ncand + 2 * target, budget);
	evict_sort(st);
	done = evict_cands(st, c, &pos, cls, target, UINT64_MAX, freed, evicted);
	if (!grow && done < want && *evicted < EVICT_MAX_PER_CALL) {
		evict_window(st, c, cls, evicted, freed);
	}
}

static int64_t
store_sum(const struct pc_store *st, size_t field_off)
{
	int64_t sum = 0;

	for (unsigned int ci = 0; ci < st->nb_caches; ci++) {
		const int64_t *p = (const int64_t *)((const char *)&st->caches[ci] + field_off);

		sum += __atomic_load_n(p, __ATOMIC_RELAXED);
	}
	return sum;
}

#define STORE_SUM(st, field) store_sum((st), offsetof(struct store_cache, field))

static bool
demand_due(const struct store_class *sc, uint64_t now_tsc)
{
	return __atomic_load_n(&sc->want, __ATOMIC_RELAXED) != 0 &&
	       (int64_t)(now_tsc - sc->next_serve) >= 0;
}

/*
 * Allocation rates per class (halved at every update, so recent traffic
 * weighs most) against the live bytes each class holds: a class whose share
 * of the memory is under its share of the allocations should grow.
 */
static void
demand_rates(struct pc_store *st, uint64_t *total_rate, int64_t *total_live, int64_t live[])
{
	*total_rate = 0;
	*total_live = 0;
	for (int cls = 0; cls < PC_SLAB_MAX_CLASSES; cls++) {
		struct store_class *sc = &st->classes[cls];
		uint64_t allocs = 0;

		live[cls] = 0;
		for (unsigned int ci = 0; ci < st->nb_caches; ci++) {
			allocs += CNT_GET(&st->caches[ci], cls_allocs[cls]);
			live[cls] += CNT_GET(&st->caches[ci], cls_live[cls]);
		}
		live[cls] = PC_MAX(live[cls], (int64_t)0);
		sc->rate = sc->rate / 2 + (allocs - sc->allocs_seen);
		sc->allocs_seen = allocs;
		*total_rate += sc->rate;
		*total_live += live[cls];
	}
}

static bool
evict_demand(struct pc_store *st, struct store_cache *c, uint64_t now_tsc, uint64_t usable,
	     unsigned int *budget, unsigned int *evicted, uint64_t *freed)
{
	int64_t live[PC_SLAB_MAX_CLASSES];
	uint64_t total_rate;
	int64_t total_live;
	bool due = false;

	for (int cls = 0; cls < PC_SLAB_MAX_CLASSES && !due; cls++) {
		due = demand_due(&st->classes[cls], now_tsc);
	}
	if (!due) {
		return false;
	}
	demand_rates(st, &total_rate, &total_live, live);
	for (int cls = 0; cls < PC_SLAB_MAX_CLASSES && *evicted < EVICT_MAX_PER_CALL; cls++) {
		struct store_class *sc = &st->classes[cls];
		uint64_t size = pc_slab_class_slot_size(cls);
		unsigned int want, target, batch;
		bool grow;

		if (!demand_due(sc, now_tsc) || size == 0) {
			continue;
		}
		want = __atomic_exchange_n(&sc->want, 0, __ATOMIC_RELAXED);
		want = PC_MIN(want, (unsigned int)EVICT_MAX_PER_CALL);
		/* Evict a little ahead: a batch, but never a big share of the segment. */
		batch = (unsigned int)PC_MIN((usable >> EVICT_DEMAND_SHIFT) / size,
					     (uint64_t)EVICT_DEMAND_MIN);
		target = PC_MAX(PC_MAX(want, batch), 1u);
		grow = live[cls] == 0 || (unsigned __int128)live[cls] * total_rate <
						 (unsigned __int128)sc->rate * (uint64_t)total_live;
		evict_for_class(st, c, cls, want, target, grow, live, total_rate, total_live,
				budget, evicted, freed);
		/* What was freed comes back after the quarantine; wait for it before serving again.
		 */
		sc->next_serve = now_tsc + st->quarantine_tsc + st->quarantine_tsc / 4 + 1;
	}
	return true;
}

int
pc_store_evict_poll(struct pc_store *st, unsigned int ci, uint64_t now_tsc)
{
	struct pc_slab_stats ss;
	struct store_cache *c;
	int ids[PC_SLAB_MAX_CLASSES];
	unsigned int nclasses, budget = EVICT_SCAN_MAX, evicted = 0, looked = 0, pos = 0;
	uint64_t usable, live, free_b, low, high, freed = 0;
	bool any_demand = false;

	if (st == NULL || ci >= st->nb_caches) {
		return 0;
	}
	c = &st->caches[ci];
	c->evictor = true;
	pc_slab_get_stats(st->slab, &ss);
	usable = ss.chunks_total * (uint64_t)PC_SLAB_CHUNK_SIZE;
	live = (uint64_t)PC_MAX(STORE_SUM(st, live_bytes), (int64_t)0);
	/*
	 * Retired and quarantined slots count as free: they are on their way
	 * back. Bytes no slot can use (span tails, chunk runs too short for any
	 * span in use) do not: waste_est learns them from failed allocations.
	 */
	free_b = usable > live + st->waste_est ? usable - live - st->waste_est : 0;
	low = usable / 100 * st->low_pct;
	high = low + low / 2;
	for (int cls = 0; cls < PC_SLAB_MAX_CLASSES; cls++) {
		st->classes[cls].swept = false;
		any_demand |= __atomic_load_n(&st->classes[cls].want, __ATOMIC_RELAXED) != 0;
	}
	if (!any_demand && free_b >= low) {
		return 0;
	}
	st->ncand = 0;

	/* 1. Classes whose allocations failed, once their last batch is out of quarantine. */
	if (any_demand && evict_demand(st, c, now_tsc, usable, &budget, &evicted, &freed)) {
		/* An allocation failed while this much was held by no slot: count it as waste. */
		st->waste_est = PC_MIN(__atomic_load_n(&st->fail_gap, __ATOMIC_RELAXED),
				       usable >> STORE_WASTE_SHIFT);
	}

	/* 2. Free memory under the low watermark: CLOCK over every class, deepest first. */
	if (free_b + freed < low) {
		uint64_t need = high - (free_b + freed);

		nclasses = pc_slab_classes(st->slab, ids, PC_ARRAY_SIZE(ids));
		for (unsigned int k = 0; k < nclasses && budget > 0; k++) {
			int cls = ids[(st->class_rr + k) % nclasses];
			uint64_t sz = pc_slab_class_slot_size(cls);
			uint64_t want = sz == 0 ? 0 : 2 * ((need + sz - 1) / sz);

			looked += evict_sweep(
				st, cls, st->ncand + (unsigned int)PC_MIN(want, 1024u), &budget);
		}
		if (nclasses > 0) {
			st->class_rr = (st->class_rr + 1) % nclasses;
		}
		evict_sort(st);
		evict_cands(st, c, &pos, -1, UINT32_MAX, need, &freed, &evicted);
	}
	st->ncand = 0;
	return evicted > 0 ? (int)evicted : (looked > 0 || budget < EVICT_SCAN_MAX ? 1 : 0);
}

void
pc_store_get_stats(const struct pc_store *st, struct pc_store_stats *stats)
{
	struct pc_slab_stats ss;
	int64_t held;
	uint64_t usable;

	memset(stats, 0, sizeof(*stats));
	if (st == NULL) {
		return;
	}
	pc_slab_get_stats(st->slab, &ss);
	usable = ss.chunks_total * (uint64_t)PC_SLAB_CHUNK_SIZE;
	held = PC_MAX(STORE_SUM(st, held_bytes), (int64_t)0);
	stats->segment_size = pc_segment_size(st->seg);
	stats->bytes_used = (uint64_t)PC_MAX(STORE_SUM(st, bytes_used), (int64_t)0);
	stats->bytes_free = usable > (uint64_t)held ? usable - (uint64_t)held : 0;
	stats->pages = (uint64_t)PC_MAX(STORE_SUM(st, pages), (int64_t)0);
	stats->pinned = (uint64_t)PC_MAX(STORE_SUM(st, pinned), (int64_t)0);
	stats->quarantined = (uint64_t)STORE_SUM(st, quarantined);
	for (unsigned int ci = 0; ci < st->nb_caches; ci++) {
		const struct store_cache *c = &st->caches[ci];

		stats->sets += CNT_GET(c, sets);
		stats->set_dedup += CNT_GET(c, set_dedup);
		stats->set_nospace += CNT_GET(c, set_nospace);
		stats->set_aborted += CNT_GET(c, set_aborted);
		stats->gets += CNT_GET(c, gets);
		stats->get_hits += CNT_GET(c, get_hits);
		stats->get_misses += CNT_GET(c, get_misses);
		stats->get_bad_header += CNT_GET(c, get_bad_header);
		stats->deletes += CNT_GET(c, deletes);
		stats->evictions += CNT_GET(c, evictions);
		stats->staged += CNT_GET(c, staged);
	}
	stats->staged_now = (uint64_t)PC_MAX(STORE_SUM(st, staged_now), (int64_t)0);
	stats->exists_keys = __atomic_load_n(&st->exists_keys, __ATOMIC_RELAXED);
	stats->classes = ss.classes;
	stats->hugepages = pc_segment_hugepages(st->seg);
}
