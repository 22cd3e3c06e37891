/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The directory shard, read cache and planner (directory.h).
 *
 * Shard layout: a dense array of fixed-size entries (key in full, four
 * location slots) with a free stack, indexed by an open-addressing table
 * (linear probing, load <= 1/2, backward-shift deletion so no tombstones
 * pile up). Slots are keyed by a per-shard SipHash (libsodium's
 * crypto_shorthash with a random key): keys come from peers, and a keyed
 * hash keeps a crafted key set from turning probes into scans. Node ids are
 * interned into a small node table, so a location holds a 16-bit node number;
 * each node threads its locations on a doubly linked list so drop_node() costs
 * the node's locations, not the shard. Entries never move, so a walk by slot
 * number with a cursor sees every entry that stays exactly once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "directory.h"
#include "pc_common.h"

#define NIL UINT32_MAX

/* ---- open-addressing index: slot -> (element number, 32-bit hash) ---- */

struct dir_ix_slot {
	uint32_t idx; /* NIL = empty */
	uint32_t h;
};

struct dir_ix {
	struct dir_ix_slot *slots;
	uint32_t mask;
};

/* At least twice `cap` slots, a power of two: probes stay short. */
static int
ix_init(struct dir_ix *ix, uint32_t cap)
{
	uint64_t size = 16;

	while (size < 2ull * cap) {
		size <<= 1;
	}
	ix->slots = malloc(size * sizeof(*ix->slots));
	if (ix->slots == NULL) {
		return -ENOMEM;
	}
	memset(ix->slots, 0xff, size * sizeof(*ix->slots));
	ix->mask = (uint32_t)(size - 1);
	return 0;
}

static void
ix_insert(struct dir_ix *ix, uint32_t h, uint32_t idx)
{
	uint32_t i = h & ix->mask;

	/* Load is at most 1/2, so an empty slot is near. */
	while (ix->slots[i].idx != NIL) {
		i = (i + 1) & ix->mask;
	}
	ix->slots[i].idx = idx;
	ix->slots[i].h = h;
}

/* The slot holding element idx (which must be there). */
static uint32_t
ix_slot_of(const struct dir_ix *ix, uint32_t h, uint32_t idx)
{
	uint32_t i = h & ix->mask;

	while (ix->slots[i].idx != idx) {
		i = (i + 1) & ix->mask;
	}
	return i;
}

/*
 * Empty slot pos and pull later members of its cluster back into the hole
 * when that does not move them before their home slot.
 */
static void
ix_erase(struct dir_ix *ix, uint32_t pos)
{
	uint32_t hole = pos;
	uint32_t j = pos;

	for (;;) {
		uint32_t home;

		j = (j + 1) & ix->mask;
		if (ix->slots[j].idx == NIL) {
			break;
		}
		home = ix->slots[j].h & ix->mask;
		if (((j - home) & ix->mask) >= ((j - hole) & ix->mask)) {
			ix->slots[hole] = ix->slots[j];
			hole = j;
		}
	}
	ix->slots[hole].idx = NIL;
}

/* ---- shared helpers ---- */

static uint64_t
sip64(const unsigned char *sipkey, const void *bytes, size_t len)
{
	unsigned char out[crypto_shorthash_BYTES];
	uint64_t h;

	crypto_shorthash(out, bytes, len, sipkey);
	memcpy(&h, out, sizeof(h));
	return h;
}

static bool
valid_node_id(const char *id)
{
	size_t len;

	if (id == NULL) {
		return false;
	}
	len = strnlen(id, PC_DIR_NODE_ID_MAX);
	if (len == 0 || len == PC_DIR_NODE_ID_MAX) {
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		char c = id[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-')) {
			return false;
		}
	}
	return true;
}

static bool
valid_key(const void *key, size_t len)
{
	return key != NULL && len >= 1 && len <= PC_DIR_KEY_MAX;
}

static bool
valid_loc(const struct pc_dir_loc *loc)
{
	return loc != NULL && valid_node_id(loc->node_id) && loc->length > 0 &&
	       loc->tier <= PC_DIR_TIER_DISK;
}

static int
sodium_ready(void)
{
	return sodium_init() < 0 ? -EIO : 0;
}

/* ---- shard ---- */

/* A location slot; its id is entry * PC_DIR_LOCS_MAX + slot. */
struct dir_loc {
	uint64_t incarnation;
	uint64_t offset;
	uint64_t generation;
	uint64_t put_seq; /* shard-wide put counter: the oldest put is displaced first */
	uint32_t length;
	uint32_t rkey;
	uint32_t prev; /* the node's list of location ids; NIL ends it */
	uint32_t next;
	uint16_t node; /* index into the node table */
	uint8_t tier;
};

struct dir_entry {
	uint64_t ring_hash; /* pc_ring_hash(key), for re-sharding */
	uint32_t h;         /* index hash, to find the entry's index slot */
	uint16_t key_len;   /* 0 = free */
	uint8_t used;       /* bit i: locs[i] holds a location */
	struct dir_loc locs[PC_DIR_LOCS_MAX];
	uint8_t key[PC_DIR_KEY_MAX];
};

struct dir_node {
	char id[PC_DIR_NODE_ID_MAX];
	/* The newest incarnation seen or fenced: anything older is stale. */
	uint64_t fence;
	uint32_t head; /* first location id of the node's list */
	uint32_t refs; /* locations on the list */
	uint32_t h;
	bool used;
};

struct pc_dir_shard {
	uint32_t max_entries;
	uint32_t n_entries;
	uint32_t hwm; /* slots [0, hwm) have been used: walks stop there */
	uint32_t n_free;
	uint32_t *free_stack; /* pops the lowest free slots first */
	struct dir_entry *entries;
	struct dir_ix ix;

	uint32_t n_nodes;
	uint32_t n_node_free;
	uint32_t node_free[PC_DIR_NODES_MAX];
	struct dir_node *nodes;
	struct dir_ix node_ix;

	uint64_t n_locs;
	uint64_t put_seq;
	struct pc_dir_shard_stats st;
	unsigned char sipkey[crypto_shorthash_KEYBYTES];
};

_Static_assert(PC_DIR_NODES_MAX <= UINT16_MAX + 1, "node numbers are 16-bit");
_Static_assert((uint64_t)PC_DIR_ENTRIES_MAX *PC_DIR_LOCS_MAX < NIL, "location ids fit in u32");
_Static_assert(PC_DIR_KEY_MAX <= UINT16_MAX, "key_len is 16-bit");

static inline struct dir_loc *
loc_at(struct pc_dir_shard *s, uint32_t id)
{
	return &s->entries[id / PC_DIR_LOCS_MAX].locs[id % PC_DIR_LOCS_MAX];
}

static inline bool
loc_live(const struct pc_dir_shard *s, const struct dir_loc *loc)
{
	return loc->incarnation >= s->nodes[loc->node].fence;
}

struct pc_dir_shard *
pc_dir_shard_create(unsigned int max_entries)
{
	struct pc_dir_shard *s;
	int rc;

	if (max_entries == 0 || max_entries > PC_DIR_ENTRIES_MAX) {
		errno = EINVAL;
		return NULL;
	}
	rc = sodium_ready();
	if (rc < 0) {
		errno = -rc;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		goto err_nomem;
	}
	s->max_entries = max_entries;
	/* calloc: pages of slots never used are never touched. */
	s->entries = calloc(max_entries, sizeof(*s->entries));
	if (s->entries == NULL) {
		goto err_free_shard;
	}
	s->free_stack = malloc((size_t)max_entries * sizeof(*s->free_stack));
	if (s->free_stack == NULL) {
		goto err_free_entries;
	}
	if (ix_init(&s->ix, max_entries) < 0) {
		goto err_free_stack;
	}
	s->nodes = calloc(PC_DIR_NODES_MAX, sizeof(*s->nodes));
	if (s->nodes == NULL) {
		goto err_free_ix;
	}
	if (ix_init(&s->node_ix, PC_DIR_NODES_MAX) < 0) {
		goto err_free_nodes;
	}
	for (uint32_t k = 0; k < max_entries; k++) {
		s->free_stack[k] = max_entries - 1 - k;
	}
	s->n_free = max_entries;
	for (uint32_t k = 0; k < PC_DIR_NODES_MAX; k++) {
		s->node_free[k] = PC_DIR_NODES_MAX - 1 - k;
	}
	s->n_node_free = PC_DIR_NODES_MAX;
	s->st.capacity = max_entries;
	randombytes_buf(s->sipkey, sizeof(s->sipkey));
	return s;

err_free_nodes:
	free(s->nodes);
err_free_ix:
	free(s->ix.slots);
err_free_stack:
	free(s->free_stack);
err_free_entries:
	free(s->entries);
err_free_shard:
	free(s);
err_nomem:
	errno = ENOMEM;
	return NULL;
}

void
pc_dir_shard_free(struct pc_dir_shard *s)
{
	if (s == NULL) {
		return;
	}
	free(s->node_ix.slots);
	free(s->nodes);
	free(s->ix.slots);
	free(s->free_stack);
	free(s->entries);
	free(s);
}

static uint32_t
entry_find(const struct pc_dir_shard *s, const void *key, size_t len, uint32_t h)
{
	const struct dir_ix *ix = &s->ix;

	for (uint32_t i = h & ix->mask; ix->slots[i].idx != NIL; i = (i + 1) & ix->mask) {
		const struct dir_entry *e;

		if (ix->slots[i].h != h) {
			continue;
		}
		e = &s->entries[ix->slots[i].idx];
		if (e->key_len == len && memcmp(e->key, key, len) == 0) {
			return ix->slots[i].idx;
		}
	}
	return NIL;
}

static uint32_t
node_find(const struct pc_dir_shard *s, const char *id, uint32_t h)
{
	const struct dir_ix *ix = &s->node_ix;

	for (uint32_t i = h & ix->mask; ix->slots[i].idx != NIL; i = (i + 1) & ix->mask) {
		if (ix->slots[i].h == h && strcmp(s->nodes[ix->slots[i].idx].id, id) == 0) {
			return ix->slots[i].idx;
		}
	}
	return NIL;
}

static uint32_t
node_hash(const struct pc_dir_shard *s, const char *id)
{
	return (uint32_t)sip64(s->sipkey, id, strlen(id));
}

/*
 * Add a node to the table. When it is full, forget a node with no locations
 * left (its fence goes with it: rare, and only after 4096 distinct nodes).
 */
static int
node_intern(struct pc_dir_shard *s, const char *id, uint32_t h, uint32_t *out)
{
	struct dir_node *n;
	uint32_t k;

	if (s->n_node_free == 0) {
		for (k = 0; k < PC_DIR_NODES_MAX; k++) {
			if (s->nodes[k].used && s->nodes[k].refs == 0) {
				break;
			}
		}
		if (k == PC_DIR_NODES_MAX) {
			return -ENOSPC;
		}
		ix_erase(&s->node_ix, ix_slot_of(&s->node_ix, s->nodes[k].h, k));
		s->nodes[k].used = false;
		s->n_nodes--;
		s->node_free[s->n_node_free++] = k;
	}
	k = s->node_free[--s->n_node_free];
	n = &s->nodes[k];
	memset(n, 0, sizeof(*n));
	memcpy(n->id, id, strlen(id) + 1);
	n->head = NIL;
	n->h = h;
	n->used = true;
	ix_insert(&s->node_ix, h, k);
	s->n_nodes++;
	*out = k;
	return 0;
}

static void
loc_link(struct pc_dir_shard *s, uint32_t e_idx, unsigned int slot, uint32_t node)
{
	uint32_t id = e_idx * PC_DIR_LOCS_MAX + slot;
	struct dir_loc *loc = loc_at(s, id);
	struct dir_node *n = &s->nodes[node];

	loc->node = (uint16_t)node;
	loc->prev = NIL;
	loc->next = n->head;
	if (n->head != NIL) {
		loc_at(s, n->head)->prev = id;
	}
	n->head = id;
	n->refs++;
	s->entries[e_idx].used |= (uint8_t)(1u << slot);
	s->n_locs++;
}

static void
loc_unlink(struct pc_dir_shard *s, uint32_t e_idx, unsigned int slot)
{
	struct dir_loc *loc = &s->entries[e_idx].locs[slot];
	struct dir_node *n = &s->nodes[loc->node];

	if (loc->prev != NIL) {
		loc_at(s, loc->prev)->next = loc->next;
	} else {
		n->head = loc->next;
	}
	if (loc->next != NIL) {
		loc_at(s, loc->next)->prev = loc->prev;
	}
	n->refs--;
	s->entries[e_idx].used &= (uint8_t) ~(1u << slot);
	s->n_locs--;
}

static uint32_t
entry_new(struct pc_dir_shard *s, const void *key, size_t len, uint32_t h)
{
	uint32_t e_idx = s->free_stack[--s->n_free];
	struct dir_entry *e = &s->entries[e_idx];

	e->ring_hash = pc_ring_hash(key, len);
	e->h = h;
	e->key_len = (uint16_t)len;
	e->used = 0;
	memcpy(e->key, key, len);
	ix_insert(&s->ix, h, e_idx);
	s->n_entries++;
	if (e_idx >= s->hwm) {
		s->hwm = e_idx + 1;
	}
	return e_idx;
}

static void
entry_remove(struct pc_dir_shard *s, uint32_t e_idx)
{
	struct dir_entry *e = &s->entries[e_idx];

	for (unsigned int slot = 0; slot < PC_DIR_LOCS_MAX; slot++) {
		if (e->used & (1u << slot)) {
			loc_unlink(s, e_idx, slot);
		}
	}
	ix_erase(&s->ix, ix_slot_of(&s->ix, e->h, e_idx));
	e->key_len = 0;
	s->free_stack[s->n_free++] = e_idx;
	s->n_entries--;
}

/*
 * Where a put of `node` goes in e: the node's own slot, else a free one,
 * else a superseded location's, else the one put longest ago.
 */
static unsigned int
pick_slot(const struct pc_dir_shard *s, const struct dir_entry *e, uint32_t node)
{
	unsigned int free_slot = PC_DIR_LOCS_MAX;
	unsigned int dead_slot = PC_DIR_LOCS_MAX;
	unsigned int oldest = 0;

	for (unsigned int slot = 0; slot < PC_DIR_LOCS_MAX; slot++) {
		const struct dir_loc *loc = &e->locs[slot];

		if (!(e->used & (1u << slot))) {
			if (free_slot == PC_DIR_LOCS_MAX) {
				free_slot = slot;
			}
			continue;
		}
		if (loc->node == node) {
			return slot;
		}
		if (dead_slot == PC_DIR_LOCS_MAX && !loc_live(s, loc)) {
			dead_slot = slot;
		}
		if (loc->put_seq < e->locs[oldest].put_seq) {
			oldest = slot;
		}
	}
	if (free_slot != PC_DIR_LOCS_MAX) {
		return free_slot;
	}
	return dead_slot != PC_DIR_LOCS_MAX ? dead_slot : oldest;
}

int
pc_dir_shard_put(struct pc_dir_shard *s, const void *key, size_t key_len,
		 const struct pc_dir_loc *loc)
{
	struct dir_entry *e;
	struct dir_loc *l;
	uint32_t h;
	uint32_t nh;
	uint32_t node;
	uint32_t e_idx;
	unsigned int slot;
	bool linked;

	if (s == NULL || !valid_key(key, key_len) || !valid_loc(loc)) {
		return -EINVAL;
	}
	nh = node_hash(s, loc->node_id);
	node = node_find(s, loc->node_id, nh);
	/*
	 * The fence is at least the incarnation of every location the node has
	 * here, so this also covers "older than the node's location of this key".
	 */
	if (node != NIL && loc->incarnation < s->nodes[node].fence) {
		s->st.stale_rejected++;
		return -ESTALE;
	}
	h = (uint32_t)sip64(s->sipkey, key, key_len);
	e_idx = entry_find(s, key, key_len, h);
	if (e_idx == NIL && s->n_free == 0) {
		s->st.full_rejected++;
		return -ENOSPC;
	}
	if (node == NIL && node_intern(s, loc->node_id, nh, &node) < 0) {
		s->st.full_rejected++;
		return -ENOSPC;
	}
	if (e_idx == NIL) {
		e_idx = entry_new(s, key, key_len, h);
	}
	e = &s->entries[e_idx];
	slot = pick_slot(s, e, node);
	l = &e->locs[slot];
	linked = (e->used & (1u << slot)) != 0;
	if (linked && l->node == node) {
		s->st.replaced++;
	} else {
		if (linked) {
			if (loc_live(s, l)) {
				s->st.displaced++;
			}
			loc_unlink(s, e_idx, slot);
		}
		loc_link(s, e_idx, slot, node);
	}
	l->incarnation = loc->incarnation;
	l->offset = loc->offset;
	l->generation = loc->generation;
	l->length = loc->length;
	l->rkey = loc->rkey;
	l->tier = loc->tier;
	l->put_seq = ++s->put_seq;
	s->nodes[node].fence = PC_MAX(s->nodes[node].fence, loc->incarnation);
	s->st.puts++;
	return 0;
}

unsigned int
pc_dir_shard_put_batch(struct pc_dir_shard *s, const struct pc_dir_key *keys,
		       const struct pc_dir_loc *locs, unsigned int n, int *status)
{
	unsigned int ok = 0;

	if (keys == NULL || locs == NULL || status == NULL) {
		return 0;
	}
	for (unsigned int i = 0; i < n; i++) {
		status[i] = pc_dir_shard_put(s, keys[i].bytes, keys[i].len, &locs[i]);
		ok += status[i] == 0;
	}
	return ok;
}

static void
loc_export(const struct pc_dir_shard *s, const struct dir_loc *l, struct pc_dir_loc *out)
{
	const struct dir_node *n = &s->nodes[l->node];

	memcpy(out->node_id, n->id, sizeof(out->node_id));
	out->incarnation = l->incarnation;
	out->offset = l->offset;
	out->generation = l->generation;
	out->length = l->length;
	out->rkey = l->rkey;
	out->tier = l->tier;
}

/* Copy e's live locations; returns how many. */
static unsigned int
entry_export(const struct pc_dir_shard *s, const struct dir_entry *e, struct pc_dir_loc *out)
{
	unsigned int n = 0;

	for (unsigned int slot = 0; slot < PC_DIR_LOCS_MAX; slot++) {
		if ((e->used & (1u << slot)) && loc_live(s, &e->locs[slot])) {
			if (out != NULL) {
				loc_export(s, &e->locs[slot], &out[n]);
			}
			n++;
		}
	}
	return n;
}

/* lookup and exists: the number of live locations, copied when out is set. */
static int
shard_get(struct pc_dir_shard *s, const void *key, size_t key_len, struct pc_dir_loc *out)
{
	uint32_t e_idx;
	unsigned int n;

	if (s == NULL || !valid_key(key, key_len)) {
		return -EINVAL;
	}
	s->st.lookups++;
	e_idx = entry_find(s, key, key_len, (uint32_t)sip64(s->sipkey, key, key_len));
	if (e_idx == NIL) {
		return -ENOENT;
	}
	n = entry_export(s, &s->entries[e_idx], out);
	if (n == 0) {
		return -ENOENT;
	}
	s->st.hits++;
	return (int)n;
}

int
pc_dir_shard_lookup(struct pc_dir_shard *s, const void *key, size_t key_len, struct pc_dir_loc *out)
{
	if (out == NULL) {
		return -EINVAL;
	}
	return shard_get(s, key, key_len, out);
}

unsigned int
pc_dir_shard_lookup_batch(struct pc_dir_shard *s, const struct pc_dir_key *keys, unsigned int n,
			  struct pc_dir_loc (*locs)[PC_DIR_LOCS_MAX], uint8_t *n_locs)
{
	unsigned int hits = 0;

	if (keys == NULL || locs == NULL || n_locs == NULL) {
		return 0;
	}
	for (unsigned int i = 0; i < n; i++) {
		int rc = shard_get(s, keys[i].bytes, keys[i].len, locs[i]);

		n_locs[i] = rc > 0 ? (uint8_t)rc : 0;
		hits += rc > 0;
	}
	return hits;
}

bool
pc_dir_shard_exists(struct pc_dir_shard *s, const void *key, size_t key_len)
{
	return shard_get(s, key, key_len, NULL) > 0;
}

unsigned int
pc_dir_shard_exists_batch(struct pc_dir_shard *s, const struct pc_dir_key *keys, unsigned int n,
			  bool *present)
{
	unsigned int found = 0;

	if (keys == NULL || present == NULL) {
		return 0;
	}
	for (unsigned int i = 0; i < n; i++) {
		present[i] = pc_dir_shard_exists(s, keys[i].bytes, keys[i].len);
		found += present[i];
	}
	return found;
}

int
pc_dir_shard_delete(struct pc_dir_shard *s, const void *key, size_t key_len)
{
	uint32_t e_idx;

	if (s == NULL || !valid_key(key, key_len)) {
		return -EINVAL;
	}
	e_idx = entry_find(s, key, key_len, (uint32_t)sip64(s->sipkey, key, key_len));
	if (e_idx == NIL) {
		return -ENOENT;
	}
	entry_remove(s, e_idx);
	s->st.deletes++;
	return 0;
}

int
pc_dir_shard_delete_loc(struct pc_dir_shard *s, const void *key, size_t key_len,
			const char *node_id, uint64_t incarnation, uint64_t generation)
{
	struct dir_entry *e;
	uint32_t e_idx;
	uint32_t node;

	if (s == NULL || !valid_key(key, key_len) || !valid_node_id(node_id)) {
		return -EINVAL;
	}
	node = node_find(s, node_id, node_hash(s, node_id));
	if (node == NIL) {
		return -ENOENT;
	}
	e_idx = entry_find(s, key, key_len, (uint32_t)sip64(s->sipkey, key, key_len));
	if (e_idx == NIL) {
		return -ENOENT;
	}
	e = &s->entries[e_idx];
	for (unsigned int slot = 0; slot < PC_DIR_LOCS_MAX; slot++) {
		if (!(e->used & (1u << slot)) || e->locs[slot].node != node) {
			continue;
		}
		/* A late delete from an earlier life must not remove the new one. */
		if (e->locs[slot].incarnation > incarnation) {
			return -ESTALE;
		}
		/* A reader's repair names the page it missed: the node's newer one stays. */
		if (generation != PC_DIR_GENERATION_ANY &&
		    (e->locs[slot].incarnation != incarnation ||
		     e->locs[slot].generation != generation)) {
			return -ENOENT;
		}
		loc_unlink(s, e_idx, slot);
		if (e->used == 0) {
			entry_remove(s, e_idx);
		}
		s->st.loc_deletes++;
		return 0;
	}
	return -ENOENT;
}

int
pc_dir_shard_drop_node(struct pc_dir_shard *s, const char *node_id, uint64_t below_incarnation)
{
	struct dir_node *n;
	uint32_t node;
	uint32_t id;
	int removed = 0;

	if (s == NULL || !valid_node_id(node_id)) {
		return -EINVAL;
	}
	node = node_find(s, node_id, node_hash(s, node_id));
	if (node == NIL) {
		return 0;
	}
	n = &s->nodes[node];
	for (id = n->head; id != NIL;) {
		struct dir_loc *loc = loc_at(s, id);
		uint32_t next = loc->next;
		uint32_t e_idx = id / PC_DIR_LOCS_MAX;

		if (below_incarnation == PC_DIR_INCARNATION_ALL ||
		    loc->incarnation < below_incarnation) {
			loc_unlink(s, e_idx, id % PC_DIR_LOCS_MAX);
			if (s->entries[e_idx].used == 0) {
				entry_remove(s, e_idx);
			}
			removed++;
		}
		id = next;
	}
	/*
	 * A node that left may come back with the same incarnation (it was only
	 * cut off): ALL removes without raising the fence.
	 */
	if (below_incarnation != PC_DIR_INCARNATION_ALL) {
		n->fence = PC_MAX(n->fence, below_incarnation);
	}
	s->st.dropped += (uint64_t)removed;
	return removed;
}

/*
 * Whether self re-publishes the entry at h: the first old owner that is
 * still a member does; when none is, whoever holds it does.
 */
static bool
is_publisher(const struct pc_ring *old_ring, const struct pc_ring *new_ring, const char *self,
	     uint64_t h, unsigned int replicas)
{
	unsigned int owners[PC_RING_REPLICAS_MAX];
	unsigned int n = pc_ring_owners(old_ring, h, replicas, owners);

	for (unsigned int i = 0; i < n; i++) {
		const char *id = pc_ring_node_id(old_ring, owners[i]);

		if (pc_ring_index_of(new_ring, id) >= 0) {
			return strcmp(id, self) == 0;
		}
	}
	return true;
}

struct collect_ctx {
	const struct pc_ring *old_ring;
	const struct pc_ring *new_ring;
	const char *self;
	int me; /* self's index in new_ring (collect_unowned) */
	unsigned int replicas;
};

typedef bool (*collect_pred)(const struct collect_ctx *x, uint64_t h);

/* One chunk of a walk: copy out the live entries pred picks. */
static int
collect(struct pc_dir_shard *s, uint64_t *cursor, struct pc_dir_record *out, unsigned int max,
	collect_pred pred, const struct collect_ctx *x)
{
	uint64_t i;
	uint64_t end;
	unsigned int n = 0;

	if (*cursor == PC_DIR_CURSOR_END) {
		return 0;
	}
	end = PC_MIN((uint64_t)s->hwm, *cursor + PC_DIR_SCAN_CHUNK);
	for (i = *cursor; i < end && n < max; i++) {
		const struct dir_entry *e = &s->entries[i];
		struct pc_dir_record *r = &out[n];

		if (e->key_len == 0 || !pred(x, e->ring_hash)) {
			continue;
		}
		r->n_locs = (uint8_t)entry_export(s, e, r->locs);
		if (r->n_locs == 0) {
			continue; /* only superseded locations: nothing worth sending */
		}
		r->key_hash = e->ring_hash;
		r->key_len = e->key_len;
		memcpy(r->key, e->key, e->key_len);
		n++;
	}
	*cursor = i >= s->hwm ? PC_DIR_CURSOR_END : i;
	return (int)n;
}

static bool
moved_pred(const struct collect_ctx *x, uint64_t h)
{
	return pc_ring_owners_changed(x->old_ring, x->new_ring, h, x->replicas) &&
	       (x->self == NULL || is_publisher(x->old_ring, x->new_ring, x->self, h, x->replicas));
}

int
pc_dir_shard_collect_moved(struct pc_dir_shard *s, const struct pc_ring *old_ring,
			   const struct pc_ring *new_ring, const char *self_node_id,
			   unsigned int replicas, uint64_t *cursor, struct pc_dir_record *out,
			   unsigned int max)
{
	struct collect_ctx x = {.old_ring = old_ring,
				.new_ring = new_ring,
				.self = self_node_id,
				.replicas = PC_MIN(replicas, PC_RING_REPLICAS_MAX)};

	if (s == NULL || cursor == NULL || out == NULL || max == 0 ||
	    (self_node_id != NULL && !valid_node_id(self_node_id))) {
		return -EINVAL;
	}
	return collect(s, cursor, out, max, moved_pred, &x);
}

static bool
owns(const struct pc_ring *ring, uint64_t h, unsigned int replicas, unsigned int me)
{
	unsigned int owners[PC_RING_REPLICAS_MAX];
	unsigned int n = pc_ring_owners(ring, h, replicas, owners);

	for (unsigned int i = 0; i < n; i++) {
		if (owners[i] == me) {
			return true;
		}
	}
	return false;
}

static bool
unowned_pred(const struct collect_ctx *x, uint64_t h)
{
	return x->me < 0 || !owns(x->new_ring, h, x->replicas, (unsigned int)x->me);
}

int
pc_dir_shard_collect_unowned(struct pc_dir_shard *s, const struct pc_ring *ring,
			     const char *self_node_id, unsigned int replicas, uint64_t *cursor,
			     struct pc_dir_record *out, unsigned int max)
{
	struct collect_ctx x = {.new_ring = ring,
				.self = self_node_id,
				.replicas = PC_MIN(replicas, PC_RING_REPLICAS_MAX)};

	if (s == NULL || ring == NULL || cursor == NULL || out == NULL || max == 0 ||
	    replicas == 0 || !valid_node_id(self_node_id)) {
		return -EINVAL;
	}
	x.me = pc_ring_index_of(ring, self_node_id);
	return collect(s, cursor, out, max, unowned_pred, &x);
}

int
pc_dir_shard_prune_unowned(struct pc_dir_shard *s, const struct pc_ring *ring,
			   const char *self_node_id, unsigned int replicas, uint64_t *cursor)
{
	uint64_t i;
	uint64_t end;
	int me;
	int removed = 0;

	if (s == NULL || ring == NULL || cursor == NULL || replicas == 0 ||
	    !valid_node_id(self_node_id)) {
		return -EINVAL;
	}
	me = pc_ring_index_of(ring, self_node_id);
	if (me < 0) {
		return -ENOENT;
	}
	if (*cursor == PC_DIR_CURSOR_END) {
		return 0;
	}
	replicas = PC_MIN(replicas, PC_RING_REPLICAS_MAX);
	end = PC_MIN((uint64_t)s->hwm, *cursor + PC_DIR_SCAN_CHUNK);
	for (i = *cursor; i < end; i++) {
		const struct dir_entry *e = &s->entries[i];

		if (e->key_len != 0 && !owns(ring, e->ring_hash, replicas, (unsigned int)me)) {
			entry_remove(s, (uint32_t)i);
			removed++;
		}
	}
	*cursor = i >= s->hwm ? PC_DIR_CURSOR_END : i;
	s->st.pruned += (uint64_t)removed;
	return removed;
}

void
pc_dir_shard_stats(const struct pc_dir_shard *s, struct pc_dir_shard_stats *out)
{
	if (s == NULL || out == NULL) {
		return;
	}
	*out = s->st;
	out->entries = s->n_entries;
	out->locations = s->n_locs;
	out->nodes = s->n_nodes;
}

/* ---- read cache ---- */

struct dir_cache_slot {
	uint64_t expiry; /* a get before this hits */
	uint32_t h;
	uint16_t key_len; /* 0 = free */
	uint8_t n_locs;
	uint8_t referenced; /* CLOCK: read since the hand last passed */
	uint8_t key[PC_DIR_KEY_MAX];
	struct pc_dir_loc locs[PC_DIR_LOCS_MAX];
};

struct pc_dir_cache {
	uint32_t capacity; /* 0 = disabled */
	uint32_t n_used;
	uint32_t hand;
	uint32_t n_free;
	uint64_t ttl_ns;
	uint32_t *free_stack;
	struct dir_cache_slot *slots;
	struct dir_ix ix;
	struct pc_dir_cache_stats st;
	unsigned char sipkey[crypto_shorthash_KEYBYTES];
};

struct pc_dir_cache *
pc_dir_cache_create(unsigned int capacity, uint64_t ttl_ns)
{
	struct pc_dir_cache *c;
	int rc;

	if (capacity > PC_DIR_ENTRIES_MAX) {
		errno = EINVAL;
		return NULL;
	}
	rc = sodium_ready();
	if (rc < 0) {
		errno = -rc;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		goto err_nomem;
	}
	if (capacity == 0 || ttl_ns == 0) {
		return c; /* disabled: no tables */
	}
	c->capacity = capacity;
	c->ttl_ns = ttl_ns;
	c->slots = calloc(capacity, sizeof(*c->slots));
	if (c->slots == NULL) {
		goto err_free_cache;
	}
	c->free_stack = malloc((size_t)capacity * sizeof(*c->free_stack));
	if (c->free_stack == NULL) {
		goto err_free_slots;
	}
	if (ix_init(&c->ix, capacity) < 0) {
		goto err_free_stack;
	}
	for (uint32_t k = 0; k < capacity; k++) {
		c->free_stack[k] = capacity - 1 - k;
	}
	c->n_free = capacity;
	c->st.capacity = capacity;
	randombytes_buf(c->sipkey, sizeof(c->sipkey));
	return c;

err_free_stack:
	free(c->free_stack);
err_free_slots:
	free(c->slots);
err_free_cache:
	free(c);
err_nomem:
	errno = ENOMEM;
	return NULL;
}

void
pc_dir_cache_free(struct pc_dir_cache *c)
{
	if (c == NULL) {
		return;
	}
	free(c->ix.slots);
	free(c->free_stack);
	free(c->slots);
	free(c);
}

static uint32_t
cache_find(const struct pc_dir_cache *c, const void *key, size_t len, uint32_t h)
{
	const struct dir_ix *ix = &c->ix;

	for (uint32_t i = h & ix->mask; ix->slots[i].idx != NIL; i = (i + 1) & ix->mask) {
		const struct dir_cache_slot *sl;

		if (ix->slots[i].h != h) {
			continue;
		}
		sl = &c->slots[ix->slots[i].idx];
		if (sl->key_len == len && memcmp(sl->key, key, len) == 0) {
			return ix->slots[i].idx;
		}
	}
	return NIL;
}

static void
cache_remove(struct pc_dir_cache *c, uint32_t k)
{
	struct dir_cache_slot *sl = &c->slots[k];

	ix_erase(&c->ix, ix_slot_of(&c->ix, sl->h, k));
	sl->key_len = 0;
	c->free_stack[c->n_free++] = k;
	c->n_used--;
}

/*
 * A slot for a new entry: a free one, else the CLOCK hand's first expired or
 * unreferenced one. The first lap clears every referenced bit it passes, so
 * two laps always find one.
 */
static uint32_t
cache_victim(struct pc_dir_cache *c, uint64_t now_ns)
{
	uint32_t k = c->hand;

	for (uint64_t step = 0; step < 2ull * c->capacity; step++) {
		struct dir_cache_slot *sl = &c->slots[k];

		if (now_ns >= sl->expiry || !sl->referenced) {
			break;
		}
		sl->referenced = 0;
		k = k + 1 == c->capacity ? 0 : k + 1;
	}
	c->hand = k + 1 == c->capacity ? 0 : k + 1;
	if (now_ns < c->slots[k].expiry) {
		c->st.evictions++;
	}
	cache_remove(c, k);
	return c->free_stack[--c->n_free];
}

int
pc_dir_cache_put(struct pc_dir_cache *c, const void *key, size_t key_len,
		 const struct pc_dir_loc *locs, unsigned int n, uint64_t now_ns)
{
	struct dir_cache_slot *sl;
	uint32_t h;
	uint32_t k;

	if (c == NULL || !valid_key(key, key_len) || locs == NULL || n == 0 ||
	    n > PC_DIR_LOCS_MAX) {
		return -EINVAL;
	}
	if (c->capacity == 0) {
		return 0;
	}
	h = (uint32_t)sip64(c->sipkey, key, key_len);
	k = cache_find(c, key, key_len, h);
	if (k == NIL) {
		k = c->n_free > 0 ? c->free_stack[--c->n_free] : cache_victim(c, now_ns);
		sl = &c->slots[k];
		sl->h = h;
		sl->key_len = (uint16_t)key_len;
		memcpy(sl->key, key, key_len);
		ix_insert(&c->ix, h, k);
		c->n_used++;
	}
	sl = &c->slots[k];
	memcpy(sl->locs, locs, n * sizeof(*locs));
	sl->n_locs = (uint8_t)n;
	sl->referenced = 0;
	sl->expiry = now_ns > UINT64_MAX - c->ttl_ns ? UINT64_MAX : now_ns + c->ttl_ns;
	c->st.inserts++;
	return 0;
}

int
pc_dir_cache_get(struct pc_dir_cache *c, const void *key, size_t key_len, uint64_t now_ns,
		 struct pc_dir_loc *out)
{
	struct dir_cache_slot *sl;
	uint32_t k;

	if (c == NULL || !valid_key(key, key_len) || out == NULL) {
		return -EINVAL;
	}
	if (c->capacity == 0) {
		c->st.misses++;
		return -ENOENT;
	}
	k = cache_find(c, key, key_len, (uint32_t)sip64(c->sipkey, key, key_len));
	if (k == NIL) {
		c->st.misses++;
		return -ENOENT;
	}
	sl = &c->slots[k];
	if (now_ns >= sl->expiry) {
		cache_remove(c, k);
		c->st.expired++;
		c->st.misses++;
		return -ENOENT;
	}
	sl->referenced = 1;
	memcpy(out, sl->locs, sl->n_locs * sizeof(*out));
	c->st.hits++;
	return sl->n_locs;
}

int
pc_dir_cache_invalidate(struct pc_dir_cache *c, const void *key, size_t key_len)
{
	uint32_t k;

	if (c == NULL || !valid_key(key, key_len)) {
		return -EINVAL;
	}
	if (c->capacity == 0) {
		return -ENOENT;
	}
	k = cache_find(c, key, key_len, (uint32_t)sip64(c->sipkey, key, key_len));
	if (k == NIL) {
		return -ENOENT;
	}
	cache_remove(c, k);
	c->st.invalidations++;
	return 0;
}

int
pc_dir_cache_invalidate_node(struct pc_dir_cache *c, const char *node_id)
{
	int removed = 0;

	if (c == NULL || !valid_node_id(node_id)) {
		return -EINVAL;
	}
	for (uint32_t k = 0; k < c->capacity; k++) {
		const struct dir_cache_slot *sl = &c->slots[k];

		if (sl->key_len == 0) {
			continue;
		}
		for (unsigned int i = 0; i < sl->n_locs; i++) {
			if (strcmp(sl->locs[i].node_id, node_id) == 0) {
				cache_remove(c, k);
				removed++;
				break;
			}
		}
	}
	c->st.invalidations += (uint64_t)removed;
	return removed;
}

void
pc_dir_cache_stats(const struct pc_dir_cache *c, struct pc_dir_cache_stats *out)
{
	if (c == NULL || out == NULL) {
		return;
	}
	*out = c->st;
	out->entries = c->n_used;
}

/* ---- planner ---- */

struct pc_dir_plan {
	unsigned int max_keys;
	unsigned int replicas;
	const struct pc_ring *ring; /* of the latest build; NULL before one */
	unsigned int n_keys;
	unsigned int n_groups;
	unsigned int n_stranded;
	uint32_t *owners;  /* key i's owners at [i * replicas], primary first */
	uint8_t *n_owners; /* per key */
	uint8_t *attempt;  /* per key: which of its owners it is routed to */
	uint32_t *cur;     /* per key: node routed to, NIL = stranded */
	uint32_t *order;   /* the groups' keys, group after group */
	uint32_t *scratch; /* keys to group */
	uint32_t *group_node;
	uint32_t *group_start;
	uint32_t *group_len;
	/* node -> group, valid where node_stamp[node] == stamp (no clearing per round) */
	uint32_t stamp;
	uint32_t node_group[PC_RING_NODES_MAX];
	uint32_t node_stamp[PC_RING_NODES_MAX];
	uint64_t failed[PC_RING_NODES_MAX / 64];
};

struct pc_dir_plan *
pc_dir_plan_create(unsigned int max_keys, unsigned int replicas)
{
	struct pc_dir_plan *p;
	size_t n;

	if (max_keys == 0 || max_keys > PC_DIR_PLAN_KEYS_MAX || replicas == 0 ||
	    replicas > PC_RING_REPLICAS_MAX) {
		errno = EINVAL;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	p->max_keys = max_keys;
	p->replicas = replicas;
	n = max_keys;
	p->owners = malloc(n * replicas * sizeof(*p->owners));
	p->n_owners = malloc(n);
	p->attempt = malloc(n);
	p->cur = malloc(n * sizeof(*p->cur));
	p->order = malloc(n * sizeof(*p->order));
	p->scratch = malloc(n * sizeof(*p->scratch));
	p->group_node = malloc(n * sizeof(*p->group_node));
	p->group_start = malloc(n * sizeof(*p->group_start));
	p->group_len = malloc(n * sizeof(*p->group_len));
	if (p->owners == NULL || p->n_owners == NULL || p->attempt == NULL || p->cur == NULL ||
	    p->order == NULL || p->scratch == NULL || p->group_node == NULL ||
	    p->group_start == NULL || p->group_len == NULL) {
		pc_dir_plan_free(p);
		errno = ENOMEM;
		return NULL;
	}
	return p;
}

void
pc_dir_plan_free(struct pc_dir_plan *p)
{
	if (p == NULL) {
		return;
	}
	free(p->owners);
	free(p->n_owners);
	free(p->attempt);
	free(p->cur);
	free(p->order);
	free(p->scratch);
	free(p->group_node);
	free(p->group_start);
	free(p->group_len);
	free(p);
}

/* Group keys[0..n) by their current node (a counting sort; batch order kept). */
static void
plan_group(struct pc_dir_plan *p, const uint32_t *keys, unsigned int n)
{
	if (++p->stamp == 0) {
		memset(p->node_stamp, 0, sizeof(p->node_stamp));
		p->stamp = 1;
	}
	p->n_groups = 0;
	for (unsigned int k = 0; k < n; k++) {
		uint32_t node = p->cur[keys[k]];

		if (p->node_stamp[node] != p->stamp) {
			p->node_stamp[node] = p->stamp;
			p->node_group[node] = p->n_groups;
			p->group_node[p->n_groups] = node;
			p->group_len[p->n_groups] = 0;
			p->n_groups++;
		}
		p->group_len[p->node_group[node]]++;
	}
	for (unsigned int g = 0, start = 0; g < p->n_groups; g++) {
		p->group_start[g] = start;
		start += p->group_len[g];
		p->group_len[g] = 0;
	}
	for (unsigned int k = 0; k < n; k++) {
		uint32_t g = p->node_group[p->cur[keys[k]]];

		p->order[p->group_start[g] + p->group_len[g]++] = keys[k];
	}
}

static bool
plan_failed(const struct pc_dir_plan *p, uint32_t node)
{
	return (p->failed[node / 64] >> (node % 64)) & 1;
}

int
pc_dir_plan_build(struct pc_dir_plan *p, const struct pc_ring *ring, const uint64_t *key_hashes,
		  unsigned int n)
{
	unsigned int routed = 0;

	if (p == NULL || ring == NULL || (key_hashes == NULL && n > 0) || n > p->max_keys) {
		return -EINVAL;
	}
	p->ring = ring;
	p->n_keys = n;
	p->n_stranded = 0;
	memset(p->failed, 0, sizeof(p->failed));
	for (unsigned int i = 0; i < n; i++) {
		unsigned int owners[PC_RING_REPLICAS_MAX];
		unsigned int got = pc_ring_owners(ring, key_hashes[i], p->replicas, owners);

		for (unsigned int r = 0; r < got; r++) {
			p->owners[(size_t)i * p->replicas + r] = owners[r];
		}
		p->n_owners[i] = (uint8_t)got;
		p->attempt[i] = 0;
		if (got == 0) {
			p->cur[i] = NIL;
			p->n_stranded++;
			continue;
		}
		p->cur[i] = owners[0];
		p->scratch[routed++] = i;
	}
	plan_group(p, p->scratch, routed);
	return (int)p->n_groups;
}

/* Route key i to its next owner that has not failed; false when none is left (stranded). */
static bool
plan_advance(struct pc_dir_plan *p, unsigned int i)
{
	const uint32_t *owners = &p->owners[(size_t)i * p->replicas];
	unsigned int a;

	for (a = p->attempt[i] + 1u; a < p->n_owners[i] && plan_failed(p, owners[a]); a++) {
	}
	if (a == p->n_owners[i]) {
		p->cur[i] = NIL;
		p->n_stranded++;
		return false;
	}
	p->attempt[i] = (uint8_t)a;
	p->cur[i] = owners[a];
	return true;
}

int
pc_dir_plan_next_replica(struct pc_dir_plan *p, unsigned int node)
{
	unsigned int moved = 0;

	if (p == NULL || p->ring == NULL || node >= pc_ring_node_count(p->ring)) {
		return -EINVAL;
	}
	p->failed[node / 64] |= 1ull << (node % 64);
	for (unsigned int i = 0; i < p->n_keys; i++) {
		if (p->cur[i] == node && plan_advance(p, i)) {
			p->scratch[moved++] = i;
		}
	}
	plan_group(p, p->scratch, moved);
	return (int)moved;
}

int
pc_dir_plan_retry_keys(struct pc_dir_plan *p, const uint32_t *keys, unsigned int n)
{
	unsigned int moved = 0;

	if (p == NULL || p->ring == NULL || (keys == NULL && n > 0)) {
		return -EINVAL;
	}
	for (unsigned int k = 0; k < n; k++) {
		if (keys[k] >= p->n_keys) {
			return -EINVAL;
		}
	}
	for (unsigned int k = 0; k < n; k++) {
		uint32_t i = keys[k];

		if (p->cur[i] != NIL && plan_advance(p, i)) {
			p->scratch[moved++] = i;
		}
	}
	plan_group(p, p->scratch, moved);
	return (int)moved;
}

unsigned int
pc_dir_plan_group_count(const struct pc_dir_plan *p)
{
	return p == NULL ? 0 : p->n_groups;
}

int
pc_dir_plan_group(const struct pc_dir_plan *p, unsigned int g, unsigned int *node,
		  const uint32_t **keys, unsigned int *n_keys)
{
	if (p == NULL || g >= p->n_groups || node == NULL || keys == NULL || n_keys == NULL) {
		return -EINVAL;
	}
	*node = p->group_node[g];
	*keys = &p->order[p->group_start[g]];
	*n_keys = p->group_len[g];
	return 0;
}

int
pc_dir_plan_key_node(const struct pc_dir_plan *p, unsigned int i)
{
	if (p == NULL || i >= p->n_keys) {
		return -EINVAL;
	}
	return p->cur[i] == NIL ? -EHOSTUNREACH : (int)p->cur[i];
}

unsigned int
pc_dir_plan_stranded(const struct pc_dir_plan *p)
{
	return p == NULL ? 0 : p->n_stranded;
}
