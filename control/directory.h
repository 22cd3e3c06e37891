/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The directory's data structures, without the network: the shard an owner
 * node stores, the client-side read cache, and the planner that turns a batch
 * of keys into one request per owner.
 *
 * Shard. Key (1..PC_DIR_KEY_MAX bytes, kept in full and compared exactly) ->
 * up to PC_DIR_LOCS_MAX locations, at most one per node. Locations are
 * node-scoped: a node replaces or removes only its own location of a key,
 * never another node's (the original's last-writer-wins entries let one
 * node's eviction clobber another node's valid entry). Each node carries an
 * incarnation (new, and larger, on every start); the shard remembers the
 * newest incarnation it has seen of every node (its fence) and rejects a put
 * from an older one with -ESTALE, so a restarted or paused node's late
 * messages cannot resurrect dead locations. Lookups also skip a location
 * whose incarnation is below its node's fence (superseded by a restart, not
 * yet dropped). A location can also be removed on condition of its
 * generation (a reader found that page gone), which never removes the
 * node's newer location of the key.
 *
 * Tables are sized once at create from max_entries: no allocation after
 * that, and a put into a full shard fails with -ENOSPC (counted) instead of
 * growing. Every operation on one key is O(1) on average. Re-sharding walks
 * the shard in bounded chunks (at most PC_DIR_SCAN_CHUNK slots a call) with a
 * cursor, so the control lcore never stalls behind a large shard (the
 * original re-published everything on its heartbeat thread).
 *
 * Read cache. key -> locations until an expiry (monotonic ns, passed in);
 * bounded, CLOCK eviction preferring expired entries; ttl 0 disables it.
 *
 * Planner. Batch of key hashes + ring + replicas -> groups of keys, one per
 * owner, primary owners first; when an owner fails or is slow, its keys move
 * to their next replica that has not failed (the original fell back only on
 * the first key's replicas and only on exceptions).
 *
 * Threads: every object here belongs to one lcore (the control lcore) and is
 * not thread-safe; other lcores message that lcore. Rings passed in are only
 * read. No DPDK and no logging, so the module is tested on its own. Errors
 * are -errno; constructors return NULL with errno set.
 */
#ifndef PC_DIRECTORY_H
#define PC_DIRECTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring.h"

/* Most locations one key has (distinct nodes). */
#define PC_DIR_LOCS_MAX 4
/* Longest key, in bytes (namespaced key bytes; any byte values). */
#define PC_DIR_KEY_MAX 257
/* Room for a node id and its NUL: the ring's rule, 1..63 bytes of [A-Za-z0-9._-]. */
#define PC_DIR_NODE_ID_MAX PC_RING_NODE_ID_MAX
/* Most entries a shard, and a read cache, may be created with. */
#define PC_DIR_ENTRIES_MAX (1u << 25)
/* Distinct nodes a shard tracks at once (their locations and fences). */
#define PC_DIR_NODES_MAX 4096
/* Most shard slots one collect_moved or prune_unowned call looks at. */
#define PC_DIR_SCAN_CHUNK 4096
/* Most keys one plan takes. */
#define PC_DIR_PLAN_KEYS_MAX (1u << 20)

/* Start a walk with a cursor of 0; the walk sets it to this when it is over. */
#define PC_DIR_CURSOR_END UINT64_MAX
/* pc_dir_shard_drop_node(): every location of the node, whatever its incarnation. */
#define PC_DIR_INCARNATION_ALL UINT64_MAX

enum pc_dir_tier {
	PC_DIR_TIER_MEMORY = 0, /* in the node's published segment: RDMA READ */
	PC_DIR_TIER_DISK = 1,   /* on the node's disk: ask it to promote first */
};

/* Where a copy of a key's page lives. */
struct pc_dir_loc {
	char node_id[PC_DIR_NODE_ID_MAX]; /* NUL-terminated */
	uint64_t incarnation;             /* of node_id when it published this */
	uint64_t offset;                  /* in the node's published segment */
	uint64_t generation;              /* the page slot's generation, checked by readers */
	uint32_t length;                  /* payload bytes, > 0 */
	uint32_t rkey;
	uint8_t tier; /* enum pc_dir_tier */
};

/* A key as passed to the batch calls (the bytes are not copied). */
struct pc_dir_key {
	const void *bytes;
	uint32_t len;
};

/* One entry, copied out for re-publishing. */
struct pc_dir_record {
	uint64_t key_hash; /* pc_ring_hash(key): route it with pc_ring_owners() */
	uint16_t key_len;
	uint8_t n_locs;
	uint8_t key[PC_DIR_KEY_MAX];
	struct pc_dir_loc locs[PC_DIR_LOCS_MAX];
};

struct pc_dir_shard_stats {
	uint64_t entries;        /* keys stored now */
	uint64_t locations;      /* locations stored now (superseded ones included) */
	uint64_t nodes;          /* nodes tracked now */
	uint64_t capacity;       /* max_entries */
	uint64_t puts;           /* puts accepted */
	uint64_t replaced;       /* puts that replaced the same node's location */
	uint64_t displaced;      /* locations pushed out by a 5th node's put */
	uint64_t stale_rejected; /* puts refused: older incarnation (-ESTALE) */
	uint64_t full_rejected;  /* puts refused: shard or node table full (-ENOSPC) */
	uint64_t deletes;        /* keys removed by pc_dir_shard_delete() */
	uint64_t loc_deletes;    /* locations removed by pc_dir_shard_delete_loc() */
	uint64_t dropped;        /* locations removed by pc_dir_shard_drop_node() */
	uint64_t pruned;         /* keys removed by pc_dir_shard_prune_unowned() */
	uint64_t lookups;        /* keys looked up (lookup and exists) */
	uint64_t hits;           /* of which found with a live location */
};

struct pc_dir_shard;

/*
 * Create a shard for at most `max_entries` keys; every table is allocated
 * here (about 530 bytes per entry). Control lcore. Calls sodium_init().
 * Returns NULL with errno: EINVAL (max_entries 0 or above PC_DIR_ENTRIES_MAX),
 * ENOMEM, EIO (libsodium failed to initialise).
 */
struct pc_dir_shard *pc_dir_shard_create(unsigned int max_entries);

/* Free a shard. Accepts NULL. Control lcore. */
void pc_dir_shard_free(struct pc_dir_shard *shard);

/*
 * Add or replace `loc` for the key. The node's own location of the key, if
 * any, is replaced when loc's incarnation is the same or newer; a new node
 * takes a free slot, else a superseded location's, else the one put longest
 * ago. Control lcore; O(1) average, no allocation.
 * Returns 0, or:
 *   -EINVAL  a NULL pointer, key_len 0 or above PC_DIR_KEY_MAX, a bad node id,
 *            length 0, an unknown tier
 *   -ESTALE  loc's incarnation is older than the newest seen of its node
 *            (counted in stale_rejected); nothing changes
 *   -ENOSPC  a new key into a full shard, or a new node into a full node
 *            table (counted in full_rejected); nothing changes
 */
int pc_dir_shard_put(struct pc_dir_shard *shard, const void *key, size_t key_len,
		     const struct pc_dir_loc *loc);

/*
 * pc_dir_shard_put() for n keys, in order; status[i] gets each result.
 * Returns how many were accepted. Control lcore.
 */
unsigned int pc_dir_shard_put_batch(struct pc_dir_shard *shard, const struct pc_dir_key *keys,
				    const struct pc_dir_loc *locs, unsigned int n, int *status);

/*
 * Copy the key's live locations (at most PC_DIR_LOCS_MAX, in no particular
 * order) to out[]. Returns how many (>= 1), -ENOENT when the key has none,
 * -EINVAL for a NULL pointer or a bad key_len. Control lcore; no allocation.
 */
int pc_dir_shard_lookup(struct pc_dir_shard *shard, const void *key, size_t key_len,
			struct pc_dir_loc *out);

/*
 * pc_dir_shard_lookup() for n keys: locs[i] and n_locs[i] (0 = miss, or a
 * bad key). Returns the number of hits. Control lcore.
 */
unsigned int pc_dir_shard_lookup_batch(struct pc_dir_shard *shard, const struct pc_dir_key *keys,
				       unsigned int n, struct pc_dir_loc (*locs)[PC_DIR_LOCS_MAX],
				       uint8_t *n_locs);

/* Whether the key has a live location (false for a bad key). Control lcore. */
bool pc_dir_shard_exists(struct pc_dir_shard *shard, const void *key, size_t key_len);

/* pc_dir_shard_exists() for n keys into present[]; returns how many are present. */
unsigned int pc_dir_shard_exists_batch(struct pc_dir_shard *shard, const struct pc_dir_key *keys,
				       unsigned int n, bool *present);

/*
 * Remove the key with all its locations (an administrative clear; a node
 * dropping its own copy uses pc_dir_shard_delete_loc()). Control lcore.
 * Returns 0, -ENOENT (no such key), -EINVAL (bad key).
 */
int pc_dir_shard_delete(struct pc_dir_shard *shard, const void *key, size_t key_len);

/* pc_dir_shard_delete_loc(): node_id's location of the key, whatever its generation. */
#define PC_DIR_GENERATION_ANY 0

/*
 * Remove node_id's location of the key; other nodes' locations are never
 * touched. With generation PC_DIR_GENERATION_ANY (the node dropping its own
 * copy) the location goes if its incarnation is `incarnation` or older.
 * With any other generation (a reader found that page gone from its slot)
 * it goes only if its incarnation is `incarnation` and its generation is
 * `generation`: a location the node put since, at another slot or
 * generation, stays. The key goes when its last location does. Control
 * lcore; O(1) average.
 * Returns 0, or -ENOENT (no such key, no location of that node, or, with a
 * generation, one of another incarnation or generation: kept), -ESTALE (the
 * node's location is from a newer incarnation: kept), -EINVAL.
 */
int pc_dir_shard_delete_loc(struct pc_dir_shard *shard, const void *key, size_t key_len,
			    const char *node_id, uint64_t incarnation, uint64_t generation);

/*
 * Remove every location of node_id whose incarnation is below
 * `below_incarnation` (PC_DIR_INCARNATION_ALL: every one), for a node that
 * left (ALL) or restarted (its new incarnation). Puts from below it are
 * refused afterwards. Keys left without locations go. Control lcore;
 * O(the node's locations), through a per-node list.
 * Returns the number of locations removed, or -EINVAL (NULL or bad id).
 */
int pc_dir_shard_drop_node(struct pc_dir_shard *shard, const char *node_id,
			   uint64_t below_incarnation);

/*
 * One chunk of the re-shard walk: copy to out[] (up to max) the entries
 * whose owner set differs between old_ring and new_ring (pc_ring_owners_changed
 * with `replicas`), starting at *cursor (0 to begin) and looking at most at
 * PC_DIR_SCAN_CHUNK slots; *cursor moves on, to PC_DIR_CURSOR_END when the
 * walk is over. With self_node_id set, only the entries this node should
 * re-publish are returned: those whose first old owner still in new_ring is
 * self, or that have no old owner left in new_ring; every changed entry is
 * then published by exactly one of its holders. With self_node_id NULL every
 * changed entry is returned. Entries present for the whole walk are seen
 * exactly once, whatever is put or deleted between chunks. Entries whose
 * locations are all superseded (see the top) are skipped.
 * Control lcore. Returns the number copied (0 does not mean the end: check
 * the cursor), or -EINVAL (NULL shard, cursor or out, max 0, or a bad
 * self_node_id).
 */
int pc_dir_shard_collect_moved(struct pc_dir_shard *shard, const struct pc_ring *old_ring,
			       const struct pc_ring *new_ring, const char *self_node_id,
			       unsigned int replicas, uint64_t *cursor, struct pc_dir_record *out,
			       unsigned int max);

/*
 * One chunk of the hand-off sweep: copy to out[] (up to max) the live
 * entries of which self_node_id is not one of the `replicas` owners in ring
 * (all of them when self is not on the ring): entries that reached this
 * shard through a stale ring, to be sent to their owners before
 * pc_dir_shard_prune_unowned() drops them. Walks as collect_moved (cursor,
 * PC_DIR_SCAN_CHUNK slots a call). Control lcore. Returns the number
 * copied, or -EINVAL (NULL or bad arguments, replicas 0).
 */
int pc_dir_shard_collect_unowned(struct pc_dir_shard *s, const struct pc_ring *ring,
				 const char *self_node_id, unsigned int replicas, uint64_t *cursor,
				 struct pc_dir_record *out, unsigned int max);

/*
 * One chunk of the clean-up after hand-over: remove the entries of which
 * self_node_id is not one of the `replicas` owners in ring, looking at most at
 * PC_DIR_SCAN_CHUNK slots from *cursor (0 to begin; PC_DIR_CURSOR_END when
 * over). Control lcore. Returns the number removed, or -EINVAL (NULL or bad
 * arguments, replicas 0), -ENOENT (self is not a member of ring: nothing is
 * removed, since every entry would be).
 */
int pc_dir_shard_prune_unowned(struct pc_dir_shard *shard, const struct pc_ring *ring,
			       const char *self_node_id, unsigned int replicas, uint64_t *cursor);

/* Copy the counters. Control lcore. */
void pc_dir_shard_stats(const struct pc_dir_shard *shard, struct pc_dir_shard_stats *out);

/* ---- client read cache (directory_read_cache_ttl) ---- */

struct pc_dir_cache_stats {
	uint64_t entries; /* stored now */
	uint64_t capacity;
	uint64_t hits;
	uint64_t misses;        /* expired ones included */
	uint64_t expired;       /* gets that found the entry expired */
	uint64_t inserts;       /* puts stored (new or refreshed) */
	uint64_t evictions;     /* live entries pushed out to make room */
	uint64_t invalidations; /* entries removed by invalidate */
};

struct pc_dir_cache;

/*
 * Create a read cache of `capacity` entries that keeps a put for ttl_ns
 * nanoseconds. ttl_ns 0 (or capacity 0) makes a disabled cache: every get
 * misses and nothing is stored. Tables are allocated here (about 720 bytes
 * per entry). Control lcore. Returns NULL with errno: EINVAL (capacity above
 * PC_DIR_ENTRIES_MAX), ENOMEM, EIO.
 */
struct pc_dir_cache *pc_dir_cache_create(unsigned int capacity, uint64_t ttl_ns);

/* Free a cache. Accepts NULL. Control lcore. */
void pc_dir_cache_free(struct pc_dir_cache *cache);

/*
 * Remember the key's n resolved locations until now_ns + ttl (replacing any
 * cached ones). When full, an expired entry's slot is reused first, else the
 * CLOCK hand's victim (a recently read entry gets a second chance). Control
 * lcore; no allocation. Returns 0 (also when disabled: nothing stored), or
 * -EINVAL (NULL pointer, bad key_len, n 0 or above PC_DIR_LOCS_MAX).
 */
int pc_dir_cache_put(struct pc_dir_cache *cache, const void *key, size_t key_len,
		     const struct pc_dir_loc *locs, unsigned int n, uint64_t now_ns);

/*
 * Copy the cached locations of the key to out[] if they have not expired at
 * now_ns. Returns how many (>= 1), -ENOENT (a miss: absent, expired or
 * disabled), -EINVAL. Control lcore; no allocation.
 */
int pc_dir_cache_get(struct pc_dir_cache *cache, const void *key, size_t key_len, uint64_t now_ns,
		     struct pc_dir_loc *out);

/*
 * Forget the key (after a read through its cached location missed or
 * failed). Returns 0, -ENOENT (not cached), -EINVAL. Control lcore.
 */
int pc_dir_cache_invalidate(struct pc_dir_cache *cache, const void *key, size_t key_len);

/*
 * Forget every entry with a location on node_id (the node left or
 * restarted). O(capacity). Returns the number removed, or -EINVAL. Control
 * lcore.
 */
int pc_dir_cache_invalidate_node(struct pc_dir_cache *cache, const char *node_id);

/* Copy the counters. Control lcore. */
void pc_dir_cache_stats(const struct pc_dir_cache *cache, struct pc_dir_cache_stats *out);

/* ---- lookup planner ---- */

struct pc_dir_plan;

/*
 * Create a planner for batches of up to max_keys keys, each with `replicas`
 * owners; every array is allocated here. Control lcore (one plan per caller).
 * Returns NULL with errno: EINVAL (max_keys 0 or above PC_DIR_PLAN_KEYS_MAX,
 * replicas 0 or above PC_RING_REPLICAS_MAX), ENOMEM.
 */
struct pc_dir_plan *pc_dir_plan_create(unsigned int max_keys, unsigned int replicas);

/* Free a plan. Accepts NULL. Control lcore. */
void pc_dir_plan_free(struct pc_dir_plan *plan);

/*
 * Plan a batch: key i (its pc_ring_hash in key_hashes[i]) goes to its first
 * owner in ring, and the groups become one per first owner, in the order the
 * owners first appear in the batch. Forgets earlier failures. The ring must
 * outlive the plan's use. Control lcore; no allocation.
 * Returns the number of groups, or -EINVAL (NULL pointers, n above
 * max_keys). Keys with no owner (empty ring) are stranded (see
 * pc_dir_plan_key_node()).
 */
int pc_dir_plan_build(struct pc_dir_plan *plan, const struct pc_ring *ring,
		      const uint64_t *key_hashes, unsigned int n);

/*
 * The owner (a node index of the plan's ring) failed or is too slow: move
 * every key now routed to it to that key's next owner that has not failed in
 * this plan; a key with none left is stranded. The groups become those of the
 * moved keys only (send them; groups already sent stay valid). Control lcore;
 * no allocation. Returns how many keys moved (>= 0), or -EINVAL (NULL plan,
 * no batch built, node not in the ring).
 */
int pc_dir_plan_next_replica(struct pc_dir_plan *plan, unsigned int node);

/*
 * Some owners answered that they do not have keys[0..n) (batch indices)
 * while entries may still be moving (a re-shard): move each of those keys
 * to its next owner that has not failed in this plan, without marking the
 * owner failed for the other keys; a key with none left is stranded. The
 * groups become those of the moved keys only. Control lcore; no allocation.
 * Returns how many keys moved, or -EINVAL (NULL plan or keys, no batch
 * built, an index out of range).
 */
int pc_dir_plan_retry_keys(struct pc_dir_plan *plan, const uint32_t *keys, unsigned int n);

/* Number of groups of the latest build or re-route. Control lcore. */
unsigned int pc_dir_plan_group_count(const struct pc_dir_plan *plan);

/*
 * Group g: its owner's node index and its keys (indices into the batch, in
 * batch order; valid until the next build or re-route). Returns 0, or
 * -EINVAL (g out of range, NULL pointers). Control lcore.
 */
int pc_dir_plan_group(const struct pc_dir_plan *plan, unsigned int g, unsigned int *node,
		      const uint32_t **keys, unsigned int *n_keys);

/*
 * Where key i is routed now: a node index (>= 0), -EHOSTUNREACH when every
 * one of its owners failed (or the ring was empty), -EINVAL when i is out of
 * range. Control lcore.
 */
int pc_dir_plan_key_node(const struct pc_dir_plan *plan, unsigned int i);

/* Number of keys stranded (no owner left). Control lcore. */
unsigned int pc_dir_plan_stranded(const struct pc_dir_plan *plan);

#endif /* PC_DIRECTORY_H */
