/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The page store: the node's published segment (segment.h), its slab
 * classes (slab.h), the page index and CLOCK eviction. The engine's session
 * and transport code uses only this header.
 *
 * Page life cycle (one slot):
 *
 *   FREE --alloc--> ALLOCATED --commit--> PUBLISHED --evict/delete--> RETIRED
 *     ^                 |                   |  ^ pin/unpin (readers)     |
 *     |                 +--abort/lost race--+--(free at once, never      |
 *     |                                         published)               |
 *     +------------ quarantine (quarantine_us after the last unpin) <----+
 *
 * - alloc writes the full key into the slot's key tail and remembers its
 *   digest; the client then copies the payload; commit publishes the page
 *   header (magic written last, pc_page_publish) and inserts the index
 *   entry. A key already published makes alloc or commit answer
 *   PC_STORE_DEDUP: keys are immutable, the first writer wins.
 * - A reader pins a page (lookup_pin) before copying and unpins after; a
 *   pinned page is never evicted or reused: delete/evict of a pinned page
 *   unpublishes it at once (no new reader finds it) and retires it at the
 *   last unpin.
 * - Retiring clears the magic and bumps the header generation
 *   (pc_page_retire); the slot then waits out the quarantine before the
 *   slab may hand it out again, so a reader holding a stale location (a
 *   remote READ in flight) sees an invalid header, never another page.
 *   Generations are unique per store, never reused by another page.
 *
 * Index: key digest -> slot, an rte_hash with lock-free concurrent readers
 * and writers (RW_CONCURRENCY_LF, MULTI_WRITER_ADD); a hit is confirmed
 * against the descriptor's digest and the full key in the slot's key tail.
 * Deleted index entries are reclaimed through RCU QSBR: every lcore that
 * uses the store reports a quiescent state in pc_store_poll().
 *
 * Eviction: the control lcore (pc_store_evict_poll) keeps free memory
 * above a low watermark and serves classes whose allocations failed. A
 * CLOCK hand per class skips pages referenced since its last visit (GET
 * sets the bit; EXISTS does not, so probes cannot keep pages alive) and
 * pinned pages; among the cold pages it looks at in one sweep it evicts the
 * deepest prefix pages first (losing page i orphans every page after it in
 * an SGLang chain).
 *
 * Threads: "ci" is the caller's cache index: one per lcore (workers 0..n-1,
 * control n), never shared between threads at once. Functions marked
 * "any lcore" may run on several lcores at once with distinct ci.
 */
#ifndef PC_STORE_H
#define PC_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "page.h"
#include "pc_session_proto.h"

#define PC_STORE_DEDUP   1 /* the key was already published */
#define PC_STORE_KEY_MAX (PC_NS_MAX + 1 + PC_KEY_MAX)

struct pc_store;
struct pc_slot;

/* A namespaced key: ns '\0' key, and its digest. */
struct pc_store_key {
	uint8_t digest[PC_PAGE_DIGEST_LEN];
	uint32_t len;
	uint8_t bytes[PC_STORE_KEY_MAX];
};

/* Where a page is: engine-private; only off/len/generation go to a client. */
struct pc_store_loc {
	struct pc_slot *slot;
	uint64_t off;        /* segment offset of the page header */
	uint64_t generation; /* of the published page (GET) */
	uint32_t len;        /* payload bytes */
	uint32_t pad;
};

struct pc_store_opts {
	const char *name;               /* prefix for rte objects (< 16 chars) */
	uint64_t segment_size;          /* bytes */
	bool hugepages;                 /* back the segment with hugepages if possible */
	unsigned int nb_caches;         /* lcores that use the store (workers + control) */
	uint64_t quarantine_us;         /* how long a retired slot waits before reuse */
	bool page_crc;                  /* commit computes the payload CRC32C; readers check it */
	unsigned int low_watermark_pct; /* evict when free memory is under this, 0 = 5 */
};

struct pc_store_stats {
	uint64_t segment_size;
	uint64_t bytes_used; /* payload bytes published */
	uint64_t bytes_free; /* free chunks + free slots, payload capacity */
	uint64_t pages;      /* published now */
	uint64_t sets;       /* commits that published */
	uint64_t set_dedup;
	uint64_t set_nospace;
	uint64_t set_aborted;
	uint64_t gets;
	uint64_t get_hits;
	uint64_t get_misses;
	uint64_t get_bad_header;
	uint64_t exists_keys;
	uint64_t deletes;
	uint64_t evictions;
	uint64_t quarantined; /* now */
	uint64_t pinned;      /* pages pinned now */
	uint64_t staged;      /* landing slots handed out to remote GETs */
	uint64_t staged_now;  /* of those, not yet given back */
	uint64_t classes;     /* slab classes in use */
	bool hugepages;       /* the segment is hugepage-backed */
};

/*
 * A page entering or leaving the index, for the cluster directory: its key
 * (valid during the callback only), segment offset of the header, payload
 * length and generation.
 */
struct pc_store_event {
	const void *key;
	uint32_t key_len;
	uint32_t len;
	uint64_t off;
	uint64_t generation;
};

/*
 * Called on the lcore that published (commit) or unpublished (delete,
 * eviction, clear) the page, with that lcore's ci, after the index changed
 * and outside every store lock. Keep it short: it runs on the datapath.
 */
typedef void (*pc_store_event_fn)(void *arg, unsigned int ci, bool published,
				  const struct pc_store_event *ev);

/* A walk over every page of the store, resumed call after call; start zeroed. */
struct pc_store_walk {
	int class_id;
	uint64_t cursor;
	uint64_t prev;
	bool started;
	bool done; /* set when every class has been walked */
};

/*
 * Create the segment, the slab, the index and the RCU state. Control
 * lcore, after rte_eal_init(). Returns NULL and logs on failure.
 */
struct pc_store *pc_store_create(const struct pc_store_opts *opts);

/* Tear everything down; pins and allocations are dropped. Accepts NULL. */
void pc_store_destroy(struct pc_store *st);

/*
 * Announce published pages again: one step of the walk `w` looks at up to
 * max slots and sends a published event (the callback above) for each page
 * that is published, on lcore ci. For the cluster after this node came back
 * as a new incarnation, whose old locations every shard dropped. Control
 * lcore. Returns the number of events sent; w->done when the walk is over.
 */
unsigned int pc_store_announce(struct pc_store *st, unsigned int ci, struct pc_store_walk *w,
			       unsigned int max);

/* Set the page event callback (NULL: none). Control lcore, before any lcore uses the store. */
void pc_store_set_event_cb(struct pc_store *st, pc_store_event_fn fn, void *arg);

/* The segment: memfd, size, local mapping. Any thread. */
int pc_store_segment_fd(const struct pc_store *st);
uint64_t pc_store_segment_size(const struct pc_store *st);
void *pc_store_segment_base(const struct pc_store *st);

/*
 * Build a namespaced key and its digest (BLAKE2b-128 over ns '\0' key).
 * Returns 0, or -ENAMETOOLONG (ns over PC_NS_MAX, key over PC_KEY_MAX) or
 * -EINVAL (empty key). Any thread.
 */
int pc_store_key_init(struct pc_store_key *k, const void *ns, size_t ns_len, const void *key,
		      size_t key_len);

/*
 * A remote reader's page, by location rather than key (the data plane's
 * serving side): pin the page whose header is at segment offset off if it
 * is published with `generation`. Nothing from the wire is trusted: off
 * must be the start of a slot of this segment. Counts as a reference for
 * CLOCK, like a GET. Unpin with pc_store_unpin_bulk(). Returns 0 (loc
 * filled: off, generation, payload len), -EINVAL (off is not the start of a
 * page slot of this segment), -ENOENT (no page published there now),
 * -ESTALE (a page of another generation is there: the reader's location is
 * stale). Any lcore.
 */
int pc_store_pin_at(struct pc_store *st, unsigned int ci, uint64_t off, uint64_t generation,
		    struct pc_store_loc *loc);

/*
 * SET, phase 1: reserve a page for key k with a payload of len bytes,
 * prefix_depth pages before it in its chain. Writes the key tail; loc->off
 * is where the client copies (payload at off + PC_PAGE_HDR_SIZE). Returns 0,
 * PC_STORE_DEDUP (k is published already: no page), -EMSGSIZE (len 0 or over
 * PC_PAGE_PAYLOAD_MAX), -ENOSPC (no memory now: recorded, so the control
 * lcore evicts for this size; retry later), -EINVAL (ci out of range, key
 * length 0 or over PC_STORE_KEY_MAX). Any lcore.
 */
int pc_store_alloc(struct pc_store *st, unsigned int ci, const struct pc_store_key *k, uint32_t len,
		   uint32_t prefix_depth, struct pc_store_loc *loc);

/*
 * SET, phase 2: publish the page filled since alloc (header last, then the
 * index entry). Returns 0, or PC_STORE_DEDUP (another writer published the
 * key first: this page is freed), -ENOSPC (the index is full: this page is
 * freed), -EINVAL (loc is not a page allocated and not yet committed or
 * aborted). loc is consumed either way. Any lcore.
 */
int pc_store_commit(struct pc_store *st, unsigned int ci, struct pc_store_loc *loc);

/*
 * Bumped whenever slots go back to the slab (a quarantine ran out, an
 * allocation was dropped): a caller holding allocations that failed with
 * -ENOSPC retries them when this changes, not in a busy loop. Any lcore.
 */
uint64_t pc_store_space_epoch(const struct pc_store *st);

/*
 * Count n SET pages finally refused for lack of memory (set_nospace):
 * pc_store_alloc() does not, since its caller may retry. Any lcore.
 */
void pc_store_count_nospace(struct pc_store *st, unsigned int ci, unsigned int n);

/*
 * A landing slot for a remote GET: room for k's page of len payload bytes
 * (header at loc->off), never indexed, published or announced: a READ
 * puts the owner's header and payload there, the caller checks them
 * (pc_page_check), a client copies out, and pc_store_unstage() gives the
 * slot back. No dedup check: the key may be published here meanwhile.
 * Returns 0, -EMSGSIZE, -ENOSPC (recorded for the evictor, as alloc) or
 * -EINVAL. Any lcore.
 */
int pc_store_stage(struct pc_store *st, unsigned int ci, const struct pc_store_key *k, uint32_t len,
		   struct pc_store_loc *loc);

/*
 * Give a landing slot back (its header is cleared first). loc is consumed;
 * a SET's allocation is left alone (pc_store_abort drops those, and gives a
 * landing slot back as this does). pc_store_commit() refuses a landing
 * slot (-EINVAL). Any lcore.
 */
void pc_store_unstage(struct pc_store *st, unsigned int ci, struct pc_store_loc *loc);

/*
 * Drop a page allocated and never committed; it is never published, and its
 * slot goes straight back to the slab: call it only once the writer can no
 * longer write into the page (it said it is done, or it is dead). Any lcore.
 */
void pc_store_abort(struct pc_store *st, unsigned int ci, struct pc_store_loc *loc);

/*
 * GET: find and pin each of n keys. rc[i] = 0 (pinned, locs[i] filled),
 * -ENOENT (miss) or -EBADMSG (the page failed its header check: counted,
 * unpublished, a miss). Returns the number pinned. Marks hits referenced.
 * Any lcore.
 */
unsigned int pc_store_lookup_pin_burst(struct pc_store *st, unsigned int ci,
				       const struct pc_store_key *const keys[], unsigned int n,
				       struct pc_store_loc locs[], int rc[]);

/* Release pins taken by lookup_pin_burst; locs are consumed. Any lcore. */
void pc_store_unpin_bulk(struct pc_store *st, unsigned int ci, struct pc_store_loc locs[],
			 unsigned int n);

/*
 * EXISTS: present[i] = whether keys[i] is published. Returns the number of
 * leading keys present. Does not mark pages referenced. Any lcore.
 */
unsigned int pc_store_exists_burst(struct pc_store *st, const struct pc_store_key *const keys[],
				   unsigned int n, bool present[]);

/* DELETE one key: 0, or -ENOENT. A pinned page goes at its last unpin. Any lcore. */
int pc_store_delete(struct pc_store *st, unsigned int ci, const struct pc_store_key *k);

/*
 * Delete every unpinned-or-not page whose key starts with ns '\0'. Control
 * lcore. Returns the number of pages unpublished.
 */
uint64_t pc_store_clear_ns(struct pc_store *st, unsigned int ci, const void *ns, size_t ns_len);

/*
 * Every lcore that uses the store calls this once per pass, the control
 * lcore included (evicted pages wait in its quarantine): reports the RCU
 * quiescent state and returns its quarantined slots whose time is up to
 * the slab (a slot's quarantine starts at the first poll after it was
 * retired). Returns the work done (0 = idle).
 */
int pc_store_poll(struct pc_store *st, unsigned int ci, uint64_t now_tsc);

/*
 * Register lcore ci as an index reader (before it first uses the store), on
 * the thread that will use ci. Every thread that calls the store needs an
 * lcore id (an EAL lcore, or rte_thread_register()): the index keeps
 * per-lcore caches. Returns 0, -EINVAL (ci out of range, or the thread has
 * no lcore id) or -EBUSY (ci is registered already).
 */
int pc_store_reader_register(struct pc_store *st, unsigned int ci);
void pc_store_reader_unregister(struct pc_store *st, unsigned int ci);

/*
 * Control lcore, each pass: evict while free memory is under the low
 * watermark or a class has unmet allocations. Returns the work done.
 */
int pc_store_evict_poll(struct pc_store *st, unsigned int ci, uint64_t now_tsc);

/* A snapshot of the counters (summed over lcores). Any thread. */
void pc_store_get_stats(const struct pc_store *st, struct pc_store_stats *stats);

#endif /* PC_STORE_H */
