/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * control/directory.c: the shard keeps every node's location apart (a node
 * never replaces or deletes another's), fences old incarnations, stays within
 * its capacity, and re-shards by handing over exactly the entries whose owner
 * set changed, in chunks that see everything once; the read cache honours its
 * TTL and bound; the planner makes one group per owner and re-routes a failed
 * owner's keys to their next live replica.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../control/directory.c"
#include "ut.h"

#define RESHARD_KEYS  10000
#define RESHARD_VNODE 160
#define REPLICAS      2

static struct pc_dir_loc
mkloc(const char *node, uint64_t inc, uint64_t offset, uint64_t gen)
{
	struct pc_dir_loc l;

	memset(&l, 0, sizeof(l));
	snprintf(l.node_id, sizeof(l.node_id), "%s", node);
	l.incarnation = inc;
	l.offset = offset;
	l.generation = gen;
	l.length = 4096;
	l.rkey = 0x1234;
	l.tier = PC_DIR_TIER_MEMORY;
	return l;
}

static bool
loc_equal(const struct pc_dir_loc *a, const struct pc_dir_loc *b)
{
	return strcmp(a->node_id, b->node_id) == 0 && a->incarnation == b->incarnation &&
	       a->offset == b->offset && a->generation == b->generation && a->length == b->length &&
	       a->rkey == b->rkey && a->tier == b->tier;
}

/* The location of node_id among out[0..n), or NULL. */
static const struct pc_dir_loc *
find_loc(const struct pc_dir_loc *out, int n, const char *node_id)
{
	for (int i = 0; i < n; i++) {
		if (strcmp(out[i].node_id, node_id) == 0) {
			return &out[i];
		}
	}
	return NULL;
}

static struct pc_dir_shard *
shard_new(unsigned int cap)
{
	struct pc_dir_shard *s = pc_dir_shard_create(cap);

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	return s;
}

static int
keyname(char *buf, size_t size, int d)
{
	return snprintf(buf, size, "model-x/tp0/key-%d", d);
}

static int
put_str(struct pc_dir_shard *s, const char *key, const struct pc_dir_loc *l)
{
	return pc_dir_shard_put(s, key, strlen(key), l);
}

static int
lookup_str(struct pc_dir_shard *s, const char *key, struct pc_dir_loc *out)
{
	return pc_dir_shard_lookup(s, key, strlen(key), out);
}

static struct pc_dir_shard_stats
stats_of(const struct pc_dir_shard *s)
{
	struct pc_dir_shard_stats st;

	pc_dir_shard_stats(s, &st);
	return st;
}

/* ---- shard: basic operations ---- */

static void
test_round_trip(void)
{
	struct pc_dir_shard *s = shard_new(64);
	struct pc_dir_loc a = mkloc("node-a", 7, 1u << 20, 3);
	struct pc_dir_loc out[PC_DIR_LOCS_MAX];
	uint8_t longkey[PC_DIR_KEY_MAX + 1];
	uint8_t binkey[5] = {'k', 0, 'e', 0, 'y'};

	a.tier = PC_DIR_TIER_DISK;
	a.length = 131072;
	a.rkey = 0xdeadbeef;
	CU_ASSERT_EQUAL(put_str(s, "alpha", &a), 0);
	CU_ASSERT_EQUAL(lookup_str(s, "alpha", out), 1);
	CU_ASSERT_TRUE(loc_equal(&out[0], &a));
	CU_ASSERT_TRUE(pc_dir_shard_exists(s, "alpha", 5));
	/* Exact matching: a prefix or an extension is another key. */
	CU_ASSERT_EQUAL(pc_dir_shard_lookup(s, "alph", 4, out), -ENOENT);
	CU_ASSERT_EQUAL(pc_dir_shard_lookup(s, "alphaa", 6, out), -ENOENT);
	CU_ASSERT_FALSE(pc_dir_shard_exists(s, "beta", 4));

	/* Binary keys with NULs, and the longest key, round-trip. */
	memset(longkey, 'z', sizeof(longkey));
	CU_ASSERT_EQUAL(pc_dir_shard_put(s, binkey, sizeof(binkey), &a), 0);
	CU_ASSERT_EQUAL(pc_dir_shard_lookup(s, binkey, 1, out), -ENOENT);
	CU_ASSERT_EQUAL(pc_dir_shard_lookup(s, binkey, sizeof(binkey), out), 1);
	CU_ASSERT_EQUAL(pc_dir_shard_put(s, longkey, PC_DIR_KEY_MAX, &a), 0);
	CU_ASSERT_EQUAL(pc_dir_shard_lookup(s, longkey, PC_DIR_KEY_MAX, out), 1);
	CU_ASSERT_EQUAL(pc_dir_shard_put(s, longkey, PC_DIR_KEY_MAX + 1, &a), -EINVAL);
	CU_ASSERT_EQUAL(pc_dir_shard_put(s, longkey, 0, &a), -EINVAL);
	CU_ASSERT_EQUAL(pc_dir_shard_lookup(s, longkey, PC_DIR_KEY_MAX + 1, out), -EINVAL);
	CU_ASSERT_EQUAL(stats_of(s).entries, 3);

	CU_ASSERT_EQUAL(pc_dir_shard_delete(s, "alpha", 5), 0);
	CU_ASSERT_EQUAL(lookup_str(s, "alpha", out), -ENOENT);
	CU_ASSERT_FALSE(pc_dir_shard_exists(s, "alpha", 5));
	CU_ASSERT_EQUAL(pc_dir_shard_delete(s, "alpha", 5), -ENOENT);
	/* The others survive the delete. */
	CU_ASSERT_EQUAL(pc_dir_shard_lookup(s, binkey, sizeof(binkey), out), 1);
	CU_ASSERT_EQUAL(stats_of(s).entries, 2);
	CU_ASSERT_EQUAL(stats_of(s).locations, 2);
	CU_ASSERT_EQUAL(stats_of(s).deletes, 1);
	CU_ASSERT_EQUAL(stats_of(s).puts, 3);
	pc_dir_shard_free(s);
	pc_dir_shard_free(NULL);
}

static void
test_bad_args(void)
{
	struct pc_dir_shard *s = shard_new(8);
	struct pc_dir_loc l = mkloc("node-a", 1, 0, 1);
	struct pc_dir_loc out[PC_DIR_LOCS_MAX];

	errno = 0;
	CU_ASSERT_PTR_NULL(pc_dir_shard_create(0));
	CU_ASSERT_EQUAL(errno, EINVAL);
	errno = 0;
	CU_ASSERT_PTR_NULL(pc_dir_shard_create(PC_DIR_ENTRIES_MAX + 1));
	CU_ASSERT_EQUAL(errno, EINVAL);

	l.length = 0;
	CU_ASSERT_EQUAL(put_str(s, "k", &l), -EINVAL);
	l = mkloc("node-a", 1, 0, 1);
	l.tier = 2;
	CU_ASSERT_EQUAL(put_str(s, "k", &l), -EINVAL);
	l = mkloc("bad#id", 1, 0, 1);
	CU_ASSERT_EQUAL(put_str(s, "k", &l), -EINVAL);
	l = mkloc("", 1, 0, 1);
	CU_ASSERT_EQUAL(put_str(s, "k", &l), -EINVAL);
	l = mkloc("node-a", 1, 0, 1);
	memset(l.node_id, 'n', sizeof(l.node_id)); /* no NUL within 64 bytes */
	CU_ASSERT_EQUAL(put_str(s, "k", &l), -EINVAL);
	CU_ASSERT_EQUAL(pc_dir_shard_put(NULL, "k", 1, &l), -EINVAL);
	CU_ASSERT_EQUAL(pc_dir_shard_put(s, NULL, 1, &l), -EINVAL);
	CU_ASSERT_EQUAL(pc_dir_shard_put(s, "k", 1, NULL), -EINVAL);
	CU_ASSERT_EQUAL(pc_dir_shard_lookup(s, "k", 1, NULL), -EINVAL);
	CU_ASSERT_EQUAL(pc_dir_shard_delete_loc(s, "k", 1, "no#de", 1, PC_DIR_GENERATION_ANY),
			-EINVAL);
	CU_ASSERT_EQUAL(pc_dir_shard_drop_node(s, NULL, 1), -EINVAL);
	CU_ASSERT_EQUAL(lookup_str(s, "k", out), -ENOENT);
	CU_ASSERT_EQUAL(stats_of(s).entries, 0);
	CU_ASSERT_EQUAL(stats_of(s).puts, 0);
	pc_dir_shard_free(s);
}

static void
test_four_location_limit(void)
{
	static const char *const ids[] = {"node-a", "node-b", "node-c",
					  "node-d", "node-e", "node-f"};
	struct pc_dir_shard *s = shard_new(8);
	struct pc_dir_loc out[PC_DIR_LOCS_MAX];
	struct pc_dir_loc l;
	int n;

	for (int i = 0; i < 4; i++) {
		l = mkloc(ids[i], 1, (uint64_t)i * 4096, 1);
		CU_ASSERT_EQUAL(put_str(s, "k", &l), 0);
	}
	CU_ASSERT_EQUAL(lookup_str(s, "k", out), 4);
	/* A fifth node replaces the location put longest ago: node-a's. */
	l = mkloc(ids[4], 1, 4 * 4096, 1);
	CU_ASSERT_EQUAL(put_str(s, "k", &l), 0);
	n = lookup_str(s, "k", out);
	CU_ASSERT_EQUAL(n, 4);
	CU_ASSERT_PTR_NULL(find_loc(out, n, "node-a"));
	CU_ASSERT_PTR_NOT_NULL(find_loc(out, n, "node-e"));
	CU_ASSERT_EQUAL(stats_of(s).displaced, 1);
	/* node-b refreshes its location: node-c is now the oldest and goes next. */
	l = mkloc(ids[1], 1, 9 * 4096, 1);
	CU_ASSERT_EQUAL(put_str(s, "k", &l), 0);
	l = mkloc(ids[5], 1, 5 * 4096, 1);
	CU_ASSERT_EQUAL(put_str(s, "k", &l), 0);
	n = lookup_str(s, "k", out);
	CU_ASSERT_EQUAL(n, 4);
	CU_ASSERT_PTR_NOT_NULL_FATAL(find_loc(out, n, "node-b"));
	CU_ASSERT_PTR_NULL(find_loc(out, n, "node-c"));
	CU_ASSERT_PTR_NOT_NULL(find_loc(out, n, "node-d"));
	CU_ASSERT_PTR_NOT_NULL(find_loc(out, n, "node-e"));
	CU_ASSERT_PTR_NOT_NULL(find_loc(out, n, "node-f"));
	CU_ASSERT_EQUAL(find_loc(out, n, "node-b")->offset, 9 * 4096);
	CU_ASSERT_EQUAL(stats_of(s).locations, 4);
	CU_ASSERT_EQUAL(stats_of(s).displaced, 2);
	pc_dir_shard_free(s);
}

static void
test_same_node_replaces(void)
{
	struct pc_dir_shard *s = shard_new(8);
	struct pc_dir_loc out[PC_DIR_LOCS_MAX];
	struct pc_dir_loc a1 = mkloc("node-a", 1, 100, 1);
	struct pc_dir_loc a2 = mkloc("node-a", 1, 200, 2);
	struct pc_dir_loc b = mkloc("node-b", 1, 300, 1);

	CU_ASSERT_EQUAL(put_str(s, "k", &a1), 0);
	CU_ASSERT_EQUAL(put_str(s, "k", &b), 0);
	CU_ASSERT_EQUAL(put_str(s, "k", &a2), 0);
	CU_ASSERT_EQUAL_FATAL(lookup_str(s, "k", out), 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(find_loc(out, 2, "node-a"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(find_loc(out, 2, "node-b"));
	CU_ASSERT_TRUE(loc_equal(find_loc(out, 2, "node-a"), &a2));
	CU_ASSERT_TRUE(loc_equal(find_loc(out, 2, "node-b"), &b));
	CU_ASSERT_EQUAL(stats_of(s).replaced, 1);
	CU_ASSERT_EQUAL(stats_of(s).locations, 2);
	pc_dir_shard_free(s);
}

static void
test_incarnation_fencing(void)
{
	struct pc_dir_shard *s = shard_new(8);
	struct pc_dir_loc out[PC_DIR_LOCS_MAX];
	struct pc_dir_loc a5 = mkloc("node-a", 5, 500, 1);
	struct pc_dir_loc a4 = mkloc("node-a", 4, 400, 9);
	struct pc_dir_loc a6 = mkloc("node-a", 6, 600, 1);
	struct pc_dir_loc b = mkloc("node-b", 1, 100, 1);

	CU_ASSERT_EQUAL(put_str(s, "k", &a5), 0);
	CU_ASSERT_EQUAL(put_str(s, "other", &a5), 0);
	CU_ASSERT_EQUAL(put_str(s, "other", &b), 0);
	/* An older incarnation is refused, on this key and on any other. */
	CU_ASSERT_EQUAL(put_str(s, "k", &a4), -ESTALE);
	CU_ASSERT_EQUAL(put_str(s, "fresh", &a4), -ESTALE);
	CU_ASSERT_EQUAL(stats_of(s).stale_rejected, 2);
	CU_ASSERT_EQUAL(lookup_str(s, "k", out), 1);
	CU_ASSERT_TRUE(loc_equal(&out[0], &a5));
	CU_ASSERT_FALSE(pc_dir_shard_exists(s, "fresh", 5));
	/* A newer one replaces. */
	CU_ASSERT_EQUAL(put_str(s, "k", &a6), 0);
	CU_ASSERT_EQUAL(lookup_str(s, "k", out), 1);
	CU_ASSERT_TRUE(loc_equal(&out[0], &a6));
	/* node-a restarted: its incarnation-5 location of "other" is dead, node-b's is not. */
	CU_ASSERT_EQUAL(lookup_str(s, "other", out), 1);
	CU_ASSERT_TRUE(loc_equal(&out[0], &b));
	CU_ASSERT_EQUAL(put_str(s, "k", &a5), -ESTALE);
	CU_ASSERT_EQUAL(stats_of(s).stale_rejected, 3);
	pc_dir_shard_free(s);
}

/*
 * The original's bug: node B evicting its copy wrote the key's single entry
 * without checking whose it was, so it erased node A's valid location.
 */
static void
test_delete_loc_keeps_other_nodes(void)
{
	struct pc_dir_shard *s = shard_new(8);
	struct pc_dir_loc out[PC_DIR_LOCS_MAX];
	struct pc_dir_loc a = mkloc("node-a", 3, 100, 1);
	struct pc_dir_loc b = mkloc("node-b", 2, 200, 1);
	struct pc_dir_loc c = mkloc("node-c", 1, 300, 1);

	CU_ASSERT_EQUAL(put_str(s, "k", &a), 0);
	/* B never had the key, evicts it anyway: A's entry stays. */
	CU_ASSERT_EQUAL(put_str(s, "unrelated", &b), 0);
	CU_ASSERT_EQUAL(pc_dir_shard_delete_loc(s, "k", 1, "node-b", 2, PC_DIR_GENERATION_ANY),
			-ENOENT);
	CU_ASSERT_EQUAL(lookup_str(s, "k", out), 1);
	CU_ASSERT_TRUE(loc_equal(&out[0], &a));

	/* A and B both hold it; B evicts: only B's location goes. */
	CU_ASSERT_EQUAL(put_str(s, "k", &b), 0);
	CU_ASSERT_EQUAL(lookup_str(s, "k", out), 2);
	CU_ASSERT_EQUAL(pc_dir_shard_delete_loc(s, "k", 1, "node-b", 2, PC_DIR_GENERATION_ANY), 0);
	CU_ASSERT_EQUAL(lookup_str(s, "k", out), 1);
	CU_ASSERT_TRUE(loc_equal(&out[0], &a));
	CU_ASSERT_EQUAL(pc_dir_shard_delete_loc(s, "k", 1, "node-b", 2, PC_DIR_GENERATION_ANY),
			-ENOENT);
	/* A node never seen here. */
	CU_ASSERT_EQUAL(pc_dir_shard_delete_loc(s, "k", 1, "node-z", 9, PC_DIR_GENERATION_ANY),
			-ENOENT);
	/* A late delete from A's earlier life keeps A's current location. */
	CU_ASSERT_EQUAL(pc_dir_shard_delete_loc(s, "k", 1, "node-a", 2, PC_DIR_GENERATION_ANY),
			-ESTALE);
	CU_ASSERT_EQUAL(lookup_str(s, "k", out), 1);
	/* With C also there, A's own delete takes A's only. */
	CU_ASSERT_EQUAL(put_str(s, "k", &c), 0);
	CU_ASSERT_EQUAL(pc_dir_shard_delete_loc(s, "k", 1, "node-a", 3, PC_DIR_GENERATION_ANY), 0);
	CU_ASSERT_EQUAL(lookup_str(s, "k", out), 1);
	CU_ASSERT_TRUE(loc_equal(&out[0], &c));
	/* The last location's delete takes the key. */
	CU_ASSERT_EQUAL(pc_dir_shard_delete_loc(s, "k", 1, "node-c", 1, PC_DIR_GENERATION_ANY), 0);
	CU_ASSERT_EQUAL(lookup_str(s, "k", out), -ENOENT);
	CU_ASSERT_EQUAL(stats_of(s).entries, 1); /* "unrelated" */
	CU_ASSERT_EQUAL(stats_of(s).loc_deletes, 3);
	pc_dir_shard_free(s);
}

static void
test_drop_node(void)
{
	struct pc_dir_shard *s = shard_new(512);
	struct pc_dir_loc out[PC_DIR_LOCS_MAX];
	struct pc_dir_loc l;
	char key[64];
	int bad = 0;

	/* Keys 0..99: node-a and node-b; 100..149: node-a only; 150..199: node-b only. */
	for (int d = 0; d < 200; d++) {
		int len = keyname(key, sizeof(key), d);

		if (d < 150) {
			l = mkloc("node-a", 1, (uint64_t)d, 1);
			bad += pc_dir_shard_put(s, key, (size_t)len, &l) != 0;
		}
		if (d < 100 || d >= 150) {
			l = mkloc("node-b", 2, (uint64_t)d, 1);
			bad += pc_dir_shard_put(s, key, (size_t)len, &l) != 0;
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(stats_of(s).entries, 200);
	CU_ASSERT_EQUAL(stats_of(s).locations, 300);
	/* node-a left: its 150 locations go, and the 50 keys only it had. */
	CU_ASSERT_EQUAL(pc_dir_shard_drop_node(s, "node-a", PC_DIR_INCARNATION_ALL), 150);
	CU_ASSERT_EQUAL(stats_of(s).entries, 150);
	CU_ASSERT_EQUAL(stats_of(s).locations, 150);
	for (int d = 0; d < 200; d++) {
		int len = keyname(key, sizeof(key), d);
		int n = pc_dir_shard_lookup(s, key, (size_t)len, out);

		if (d >= 100 && d < 150) {
			bad += n != -ENOENT;
		} else {
			bad += n != 1 || strcmp(out[0].node_id, "node-b") != 0 ||
			       out[0].offset != (uint64_t)d;
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	/* node-a was only cut off: it comes back with the same incarnation. */
	l = mkloc("node-a", 1, 7, 1);
	CU_ASSERT_EQUAL(put_str(s, "back", &l), 0);

	/*
	 * node-b restarts as incarnation 3 and re-publishes its odd keys: the
	 * even keys' incarnation-2 locations are dead at once (lookups skip
	 * them) and go with drop_node(below 3).
	 */
	for (int d = 1; d < 200; d += 2) {
		int len = keyname(key, sizeof(key), d);

		if (d < 100 || d >= 150) {
			l = mkloc("node-b", 3, (uint64_t)d + 1000, 1);
			bad += pc_dir_shard_put(s, key, (size_t)len, &l) != 0;
		}
	}
	keyname(key, sizeof(key), 2);
	CU_ASSERT_EQUAL(lookup_str(s, key, out), -ENOENT);
	CU_ASSERT_FALSE(pc_dir_shard_exists(s, key, strlen(key)));
	CU_ASSERT_EQUAL(stats_of(s).entries, 151);
	CU_ASSERT_EQUAL(pc_dir_shard_drop_node(s, "node-b", 3), 75);
	CU_ASSERT_EQUAL(stats_of(s).entries, 76);
	for (int d = 0; d < 200; d++) {
		int len = keyname(key, sizeof(key), d);
		int n = pc_dir_shard_lookup(s, key, (size_t)len, out);

		if ((d & 1) && (d < 100 || d >= 150)) {
			bad += n != 1 || out[0].offset != (uint64_t)d + 1000;
		} else {
			bad += n != -ENOENT;
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	keyname(key, sizeof(key), 2);
	l = mkloc("node-b", 2, 0, 1);
	CU_ASSERT_EQUAL(put_str(s, key, &l), -ESTALE);
	l = mkloc("node-b", 3, 0, 1);
	CU_ASSERT_EQUAL(put_str(s, key, &l), 0);
	CU_ASSERT_EQUAL(pc_dir_shard_drop_node(s, "node-unknown", 1), 0);
	CU_ASSERT_EQUAL(stats_of(s).dropped, 225);
	pc_dir_shard_free(s);
}

static void
test_capacity_full(void)
{
	struct pc_dir_shard *s = shard_new(100);
	struct pc_dir_loc out[PC_DIR_LOCS_MAX];
	struct pc_dir_loc l;
	char key[64];
	int bad = 0;
	int len;

	for (int d = 0; d < 100; d++) {
		len = keyname(key, sizeof(key), d);
		l = mkloc("node-a", 1, (uint64_t)d, 1);
		bad += pc_dir_shard_put(s, key, (size_t)len, &l) != 0;
	}
	CU_ASSERT_EQUAL(bad, 0);
	len = keyname(key, sizeof(key), 100);
	CU_ASSERT_EQUAL(pc_dir_shard_put(s, key, (size_t)len, &l), -ENOSPC);
	CU_ASSERT_EQUAL(pc_dir_shard_put(s, key, (size_t)len, &l), -ENOSPC);
	CU_ASSERT_FALSE(pc_dir_shard_exists(s, key, (size_t)len));
	CU_ASSERT_EQUAL(stats_of(s).full_rejected, 2);
	CU_ASSERT_EQUAL(stats_of(s).entries, 100);
	/* Every existing entry is intact, and an existing key still takes a location. */
	for (int d = 0; d < 100; d++) {
		len = keyname(key, sizeof(key), d);
		bad += pc_dir_shard_lookup(s, key, (size_t)len, out) != 1 ||
		       out[0].offset != (uint64_t)d;
	}
	CU_ASSERT_EQUAL(bad, 0);
	len = keyname(key, sizeof(key), 5);
	l = mkloc("node-b", 1, 5, 1);
	CU_ASSERT_EQUAL(pc_dir_shard_put(s, key, (size_t)len, &l), 0);
	CU_ASSERT_EQUAL(pc_dir_shard_lookup(s, key, (size_t)len, out), 2);
	/* A delete frees room. */
	CU_ASSERT_EQUAL(pc_dir_shard_delete(s, key, (size_t)len), 0);
	len = keyname(key, sizeof(key), 100);
	CU_ASSERT_EQUAL(pc_dir_shard_put(s, key, (size_t)len, &l), 0);
	CU_ASSERT_EQUAL(stats_of(s).entries, 100);
	CU_ASSERT_EQUAL(stats_of(s).full_rejected, 2);
	pc_dir_shard_free(s);
}

static void
test_node_table_full(void)
{
	struct pc_dir_shard *s = shard_new(PC_DIR_NODES_MAX + 8);
	struct pc_dir_loc l;
	char key[64];
	char id[32];
	int bad = 0;

	/* One key per node fills the node table. */
	for (int i = 0; i < PC_DIR_NODES_MAX; i++) {
		int len = keyname(key, sizeof(key), i);

		snprintf(id, sizeof(id), "n%d", i);
		l = mkloc(id, 1, 0, 1);
		bad += pc_dir_shard_put(s, key, (size_t)len, &l) != 0;
	}
	CU_ASSERT_EQUAL(bad, 0);
	l = mkloc("newcomer", 1, 0, 1);
	CU_ASSERT_EQUAL(put_str(s, "x", &l), -ENOSPC);
	CU_ASSERT_EQUAL(stats_of(s).full_rejected, 1);
	CU_ASSERT_EQUAL(stats_of(s).entries, PC_DIR_NODES_MAX);
	/* Once a node has no location left, its row is reused. */
	CU_ASSERT_EQUAL(pc_dir_shard_drop_node(s, "n17", PC_DIR_INCARNATION_ALL), 1);
	CU_ASSERT_EQUAL(put_str(s, "x", &l), 0);
	CU_ASSERT_EQUAL(stats_of(s).nodes, PC_DIR_NODES_MAX);
	pc_dir_shard_free(s);
}

static void
test_batches(void)
{
	struct pc_dir_shard *s = shard_new(16);
	struct pc_dir_key keys[4] = {{"a", 1}, {"b", 1}, {"", 0}, {"d", 1}};
	struct pc_dir_loc locs[4];
	struct pc_dir_loc out[4][PC_DIR_LOCS_MAX];
	uint8_t n_locs[4];
	bool present[4];
	int status[4];

	for (int i = 0; i < 4; i++) {
		locs[i] = mkloc("node-a", 1, (uint64_t)i, 1);
	}
	CU_ASSERT_EQUAL(pc_dir_shard_put_batch(s, keys, locs, 4, status), 3);
	CU_ASSERT_EQUAL(status[0], 0);
	CU_ASSERT_EQUAL(status[2], -EINVAL);
	CU_ASSERT_EQUAL(status[3], 0);
	CU_ASSERT_EQUAL(pc_dir_shard_delete(s, "b", 1), 0);
	CU_ASSERT_EQUAL(pc_dir_shard_lookup_batch(s, keys, 4, out, n_locs), 2);
	CU_ASSERT_EQUAL(n_locs[0], 1);
	CU_ASSERT_EQUAL(n_locs[1], 0);
	CU_ASSERT_EQUAL(n_locs[2], 0);
	CU_ASSERT_EQUAL(n_locs[3], 1);
	CU_ASSERT_EQUAL(out[3][0].offset, 3);
	CU_ASSERT_EQUAL(pc_dir_shard_exists_batch(s, keys, 4, present), 2);
	CU_ASSERT_TRUE(present[0] && !present[1] && !present[2] && present[3]);
	pc_dir_shard_free(s);
}

/* Random puts and deletes against a plain array: the index must never lose or invent a key. */
static void
test_index_against_model(void)
{
	enum { KEYS = 3000, CAP = 1024, OPS = 200000 };
	struct pc_dir_shard *s = shard_new(CAP);
	static int64_t model[KEYS]; /* offset stored, -1 = absent */
	struct pc_dir_loc out[PC_DIR_LOCS_MAX];
	unsigned int seed = 12345;
	unsigned int present = 0;
	char key[64];
	int bad = 0;

	for (int d = 0; d < KEYS; d++) {
		model[d] = -1;
	}
	for (int op = 0; op < OPS; op++) {
		int d = (int)(rand_r(&seed) % KEYS);
		int len = keyname(key, sizeof(key), d);
		int r = (int)(rand_r(&seed) % 3);

		if (r < 2) {
			struct pc_dir_loc l = mkloc("node-a", 1, (uint64_t)op, 1);
			int rc = pc_dir_shard_put(s, key, (size_t)len, &l);

			if (model[d] < 0 && present == CAP) {
				bad += rc != -ENOSPC;
			} else {
				bad += rc != 0;
				present += model[d] < 0;
				model[d] = op;
			}
		} else {
			int rc = pc_dir_shard_delete_loc(s, key, (size_t)len, "node-a", 1,
							 PC_DIR_GENERATION_ANY);

			bad += rc != (model[d] < 0 ? -ENOENT : 0);
			present -= model[d] >= 0;
			model[d] = -1;
		}
		if (op % 1000 == 0) {
			for (int k = 0; k < KEYS; k++) {
				int kl = keyname(key, sizeof(key), k);
				int n = pc_dir_shard_lookup(s, key, (size_t)kl, out);

				bad += model[k] < 0
					       ? n != -ENOENT
					       : (n != 1 || out[0].offset != (uint64_t)model[k]);
			}
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(stats_of(s).entries, present);
	CU_ASSERT_EQUAL(stats_of(s).locations, present);
	pc_dir_shard_free(s);
}

/* ---- re-shard ---- */

static const char *const g_ids4[] = {"node-a", "node-b", "node-c", "node-d"};
static const char *const g_ids5[] = {"node-a", "node-b", "node-c", "node-d", "node-e"};

static int
key_of_record(const struct pc_dir_record *r)
{
	int d = -1;

	/* "model-x/tp0/key-%d" */
	if (r->key_len > 16 && r->key_len < 40) {
		char buf[48];

		memcpy(buf, r->key, r->key_len);
		buf[r->key_len] = '\0';
		if (sscanf(buf, "model-x/tp0/key-%d", &d) != 1) {
			d = -1;
		}
	}
	return d;
}

/* Whether key d's owner set differs between the rings, computed directly. */
static bool
owner_set_changed(const struct pc_ring *a, const struct pc_ring *b, uint64_t h)
{
	unsigned int oa[REPLICAS];
	unsigned int ob[REPLICAS];
	unsigned int na = pc_ring_owners(a, h, REPLICAS, oa);
	unsigned int nb = pc_ring_owners(b, h, REPLICAS, ob);

	if (na != nb) {
		return true;
	}
	for (unsigned int i = 0; i < na; i++) {
		bool found = false;

		for (unsigned int j = 0; j < nb; j++) {
			found = found ||
				strcmp(pc_ring_node_id(a, oa[i]), pc_ring_node_id(b, ob[j])) == 0;
		}
		if (!found) {
			return true;
		}
	}
	return false;
}

/* The data location of key d: written by node d % 4. */
static struct pc_dir_loc
data_loc(int d)
{
	return mkloc(g_ids4[d % 4], 1, (uint64_t)d * 4096, (uint64_t)d + 1);
}

static void
test_reshard_join(void)
{
	struct pc_ring *old = pc_ring_build(g_ids4, 4, RESHARD_VNODE);
	struct pc_ring *new = pc_ring_build(g_ids5, 5, RESHARD_VNODE);
	struct pc_dir_shard *sh[5];
	struct pc_dir_record *rec = malloc(64 * sizeof(*rec));
	uint64_t *hash = malloc(RESHARD_KEYS * sizeof(*hash));
	int *published = calloc(RESHARD_KEYS, sizeof(int));
	int *held_changed = calloc(RESHARD_KEYS, sizeof(int));
	unsigned int expect_changed = 0;
	struct pc_dir_loc out[PC_DIR_LOCS_MAX];
	char key[64];
	int bad = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(old);
	CU_ASSERT_PTR_NOT_NULL_FATAL(new);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rec);
	CU_ASSERT_PTR_NOT_NULL_FATAL(hash);
	CU_ASSERT_PTR_NOT_NULL_FATAL(published);
	CU_ASSERT_PTR_NOT_NULL_FATAL(held_changed);
	for (int i = 0; i < 5; i++) {
		sh[i] = shard_new(RESHARD_KEYS);
	}
	/* Each key into the shards of its owners in the 4-node ring. */
	for (int d = 0; d < RESHARD_KEYS; d++) {
		int len = keyname(key, sizeof(key), d);
		unsigned int o[REPLICAS];
		struct pc_dir_loc l = data_loc(d);

		hash[d] = pc_ring_hash(key, (size_t)len);
		CU_ASSERT_EQUAL_FATAL(pc_ring_owners(old, hash[d], REPLICAS, o), REPLICAS);
		for (int r = 0; r < REPLICAS; r++) {
			/* Ring indices of the 4-node ring are the ids' order: node-a = 0. */
			bad += pc_dir_shard_put(sh[o[r]], key, (size_t)len, &l) != 0;
		}
		expect_changed += owner_set_changed(old, new, hash[d]);
	}
	CU_ASSERT_EQUAL(bad, 0);

	/* Without self: each holder returns exactly its changed keys. */
	for (int i = 0; i < 4; i++) {
		uint64_t cursor = 0;
		unsigned int got = 0;
		unsigned int want = 0;

		memset(held_changed, 0, RESHARD_KEYS * sizeof(int));
		while (cursor != PC_DIR_CURSOR_END) {
			int n = pc_dir_shard_collect_moved(sh[i], old, new, NULL, REPLICAS, &cursor,
							   rec, 64);

			CU_ASSERT_FATAL(n >= 0 && n <= 64);
			for (int k = 0; k < n; k++) {
				int d = key_of_record(&rec[k]);

				bad += d < 0 || held_changed[d]++ != 0;
				got++;
			}
		}
		for (int d = 0; d < RESHARD_KEYS; d++) {
			int len = keyname(key, sizeof(key), d);

			if (pc_dir_shard_exists(sh[i], key, (size_t)len) &&
			    owner_set_changed(old, new, hash[d])) {
				want++;
				bad += held_changed[d] != 1;
			}
		}
		CU_ASSERT_EQUAL(got, want);
	}
	CU_ASSERT_EQUAL(bad, 0);

	/*
	 * With self: each changed key is published by exactly one holder, with
	 * its location and ring hash, and handed to its new owners.
	 */
	for (int i = 0; i < 4; i++) {
		uint64_t cursor = 0;

		while (cursor != PC_DIR_CURSOR_END) {
			int n = pc_dir_shard_collect_moved(sh[i], old, new, g_ids4[i], REPLICAS,
							   &cursor, rec, 64);

			CU_ASSERT_FATAL(n >= 0);
			for (int k = 0; k < n; k++) {
				int d = key_of_record(&rec[k]);
				struct pc_dir_loc l;
				unsigned int o[REPLICAS];

				if (d < 0) {
					bad++;
					continue;
				}
				l = data_loc(d);
				published[d]++;
				bad += rec[k].key_hash != hash[d] || rec[k].n_locs != 1 ||
				       !loc_equal(&rec[k].locs[0], &l);
				pc_ring_owners(new, rec[k].key_hash, REPLICAS, o);
				for (int r = 0; r < REPLICAS; r++) {
					for (int j = 0; j < rec[k].n_locs; j++) {
						bad += pc_dir_shard_put(sh[o[r]], rec[k].key,
									rec[k].key_len,
									&rec[k].locs[j]) != 0;
					}
				}
			}
		}
	}
	for (int d = 0; d < RESHARD_KEYS; d++) {
		bad += published[d] != (owner_set_changed(old, new, hash[d]) ? 1 : 0);
	}
	CU_ASSERT_EQUAL(bad, 0);
	printf("\n    join 4 -> 5, replicas %d: %u of %d keys changed owner set (%.4f; "
	       "replicas/N = %.4f) ",
	       REPLICAS, expect_changed, RESHARD_KEYS, (double)expect_changed / RESHARD_KEYS,
	       (double)REPLICAS / 5);
	CU_ASSERT(expect_changed > RESHARD_KEYS * 3 / 10 && expect_changed < RESHARD_KEYS / 2);

	/* After the hand-over, prune: each key is left on exactly its new owners. */
	for (int i = 0; i < 5; i++) {
		uint64_t cursor = 0;

		while (cursor != PC_DIR_CURSOR_END) {
			CU_ASSERT_FATAL(pc_dir_shard_prune_unowned(sh[i], new, g_ids5[i], REPLICAS,
								   &cursor) >= 0);
		}
	}
	for (int d = 0; d < RESHARD_KEYS; d++) {
		int len = keyname(key, sizeof(key), d);
		unsigned int o[REPLICAS];
		struct pc_dir_loc l = data_loc(d);
		int holders = 0;

		pc_ring_owners(new, hash[d], REPLICAS, o);
		for (int i = 0; i < 5; i++) {
			bool owner = (unsigned int)i == o[0] || (unsigned int)i == o[1];
			int n = pc_dir_shard_lookup(sh[i], key, (size_t)len, out);

			if (n > 0) {
				holders++;
				bad += !owner || n != 1 || !loc_equal(&out[0], &l);
			} else {
				bad += owner;
			}
		}
		bad += holders != REPLICAS;
	}
	CU_ASSERT_EQUAL(bad, 0);
	{
		uint64_t total = 0;

		for (int i = 0; i < 5; i++) {
			total += stats_of(sh[i]).entries;
		}
		CU_ASSERT_EQUAL(total, (uint64_t)RESHARD_KEYS * REPLICAS);
	}
	/* A node that is not a member prunes nothing. */
	{
		uint64_t cursor = 0;
		uint64_t before = stats_of(sh[0]).entries;

		CU_ASSERT_EQUAL(pc_dir_shard_prune_unowned(sh[0], old, "node-e", REPLICAS, &cursor),
				-ENOENT);
		CU_ASSERT_EQUAL(stats_of(sh[0]).entries, before);
	}
	for (int i = 0; i < 5; i++) {
		pc_dir_shard_free(sh[i]);
	}
	free(held_changed);
	free(published);
	free(hash);
	free(rec);
	pc_ring_free(old);
	pc_ring_free(new);
}

/*
 * Chunked walks: collect_moved from an empty ring (every entry "moved") in
 * chunks of 7, deleting and adding entries between chunks. Entries present
 * for the whole walk are returned exactly once; deleted ones before their
 * turn never.
 */
static void
test_cursor_exactly_once(void)
{
	enum { N = 10000, EXTRA = 2000 };
	struct pc_ring *ring = pc_ring_build(g_ids4, 4, RESHARD_VNODE);
	struct pc_dir_shard *s = shard_new(N + EXTRA);
	struct pc_dir_record rec[7];
	static int seen[N + EXTRA];
	static bool deleted[N + EXTRA];
	unsigned int seed = 99;
	uint64_t cursor = 0;
	unsigned int calls = 0;
	int next_new = N;
	char key[64];
	int bad = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ring);
	memset(seen, 0, sizeof(seen));
	memset(deleted, 0, sizeof(deleted));
	for (int d = 0; d < N; d++) {
		int len = keyname(key, sizeof(key), d);
		struct pc_dir_loc l = mkloc("node-a", 1, (uint64_t)d, 1);

		bad += pc_dir_shard_put(s, key, (size_t)len, &l) != 0;
	}
	CU_ASSERT_EQUAL_FATAL(bad, 0);
	while (cursor != PC_DIR_CURSOR_END) {
		uint64_t before = cursor;
		int n = pc_dir_shard_collect_moved(s, NULL, ring, NULL, REPLICAS, &cursor, rec, 7);

		CU_ASSERT_FATAL(n >= 0 && n <= 7);
		CU_ASSERT_FATAL(cursor == PC_DIR_CURSOR_END ||
				cursor - before <= PC_DIR_SCAN_CHUNK);
		calls++;
		for (int k = 0; k < n; k++) {
			int d = key_of_record(&rec[k]);

			if (d < 0 || deleted[d]) {
				bad++;
				continue;
			}
			seen[d]++;
		}
		/* Between chunks: delete two random keys, add one. */
		for (int j = 0; j < 2; j++) {
			int d = (int)(rand_r(&seed) % (unsigned int)next_new);
			int len = keyname(key, sizeof(key), d);

			if (!deleted[d] && pc_dir_shard_delete(s, key, (size_t)len) == 0) {
				deleted[d] = true;
			}
		}
		if (next_new < N + EXTRA) {
			int len = keyname(key, sizeof(key), next_new);
			struct pc_dir_loc l = mkloc("node-b", 1, (uint64_t)next_new, 1);

			bad += pc_dir_shard_put(s, key, (size_t)len, &l) != 0;
			next_new++;
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	{
		unsigned int stayed = 0;
		unsigned int dup = 0;
		unsigned int missed = 0;

		for (int d = 0; d < next_new; d++) {
			dup += seen[d] > 1;
			if (d < N && !deleted[d]) {
				stayed++;
				missed += seen[d] != 1;
			}
		}
		CU_ASSERT_EQUAL(dup, 0);
		CU_ASSERT_EQUAL(missed, 0);
		CU_ASSERT(stayed > N / 2);
		CU_ASSERT(calls > N / 14);
	}
	/* A finished walk stays finished. */
	CU_ASSERT_EQUAL(pc_dir_shard_collect_moved(s, NULL, ring, NULL, REPLICAS, &cursor, rec, 7),
			0);
	CU_ASSERT_EQUAL(cursor, PC_DIR_CURSOR_END);
	CU_ASSERT_EQUAL(pc_dir_shard_collect_moved(s, NULL, ring, NULL, REPLICAS, &cursor, rec, 0),
			-EINVAL);

	/*
	 * prune in chunks with deletions between them: with a ring where node-z
	 * owns everything, every entry present at its turn goes exactly once.
	 */
	{
		static const char *const solo[] = {"node-z"};
		struct pc_ring *mine = pc_ring_build(solo, 1, RESHARD_VNODE);
		struct pc_ring *theirs = pc_ring_build(g_ids4, 4, RESHARD_VNODE);
		uint64_t before = stats_of(s).entries;
		unsigned int removed = 0;
		unsigned int deleted_between = 0;
		unsigned int prune_calls = 0;

		CU_ASSERT_PTR_NOT_NULL_FATAL(mine);
		CU_ASSERT_PTR_NOT_NULL_FATAL(theirs);
		/* node-z owns all in `mine`: prune keeps everything. */
		for (cursor = 0; cursor != PC_DIR_CURSOR_END;) {
			CU_ASSERT_EQUAL(pc_dir_shard_prune_unowned(s, mine, "node-z", 1, &cursor),
					0);
		}
		CU_ASSERT_EQUAL(stats_of(s).entries, before);
		/* node-a owns some in `theirs`; count what stays. */
		for (cursor = 0; cursor != PC_DIR_CURSOR_END;) {
			int rc = pc_dir_shard_prune_unowned(s, theirs, "node-a", 1, &cursor);

			CU_ASSERT_FATAL(rc >= 0);
			removed += (unsigned int)rc;
			prune_calls++;
			for (int j = 0; j < 2; j++) {
				int d = (int)(rand_r(&seed) % (unsigned int)next_new);
				int len = keyname(key, sizeof(key), d);

				if (!deleted[d] && pc_dir_shard_delete(s, key, (size_t)len) == 0) {
					deleted[d] = true;
					deleted_between++;
				}
			}
		}
		CU_ASSERT(prune_calls > 1);
		CU_ASSERT_EQUAL(stats_of(s).entries + removed + deleted_between, before);
		/* Whatever is left is owned by node-a. */
		bad = 0;
		for (int d = 0; d < next_new; d++) {
			int len = keyname(key, sizeof(key), d);
			unsigned int o;

			if (pc_dir_shard_exists(s, key, (size_t)len)) {
				pc_ring_owners(theirs, pc_ring_hash(key, (size_t)len), 1, &o);
				bad += strcmp(pc_ring_node_id(theirs, o), "node-a") != 0;
			}
		}
		CU_ASSERT_EQUAL(bad, 0);
		CU_ASSERT(stats_of(s).entries > 0);
		pc_ring_free(mine);
		pc_ring_free(theirs);
	}
	pc_dir_shard_free(s);
	pc_ring_free(ring);
}

/* ---- read cache ---- */

static void
test_cache_ttl(void)
{
	struct pc_dir_cache *c = pc_dir_cache_create(16, 1000);
	struct pc_dir_loc l = mkloc("node-a", 1, 42, 7);
	struct pc_dir_loc out[PC_DIR_LOCS_MAX];
	struct pc_dir_cache_stats st;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(pc_dir_cache_get(c, "k", 1, 0, out), -ENOENT);
	CU_ASSERT_EQUAL(pc_dir_cache_put(c, "k", 1, &l, 1, 5000), 0);
	CU_ASSERT_EQUAL(pc_dir_cache_get(c, "k", 1, 5000, out), 1);
	CU_ASSERT_TRUE(loc_equal(&out[0], &l));
	CU_ASSERT_EQUAL(pc_dir_cache_get(c, "k", 1, 5999, out), 1);
	/* Expired at put time + ttl exactly. */
	CU_ASSERT_EQUAL(pc_dir_cache_get(c, "k", 1, 6000, out), -ENOENT);
	CU_ASSERT_EQUAL(pc_dir_cache_get(c, "k", 1, 5500, out), -ENOENT); /* gone, not hidden */
	/* A put refreshes. */
	CU_ASSERT_EQUAL(pc_dir_cache_put(c, "k", 1, &l, 1, 7000), 0);
	l.offset = 43;
	CU_ASSERT_EQUAL(pc_dir_cache_put(c, "k", 1, &l, 1, 7500), 0);
	CU_ASSERT_EQUAL(pc_dir_cache_get(c, "k", 1, 8200, out), 1);
	CU_ASSERT_EQUAL(out[0].offset, 43);
	/* A huge now does not wrap the expiry. */
	CU_ASSERT_EQUAL(pc_dir_cache_put(c, "late", 4, &l, 1, UINT64_MAX - 10), 0);
	CU_ASSERT_EQUAL(pc_dir_cache_get(c, "late", 4, UINT64_MAX - 5, out), 1);
	pc_dir_cache_stats(c, &st);
	CU_ASSERT_EQUAL(st.hits, 4);
	CU_ASSERT_EQUAL(st.misses, 3);
	CU_ASSERT_EQUAL(st.expired, 1);
	CU_ASSERT_EQUAL(st.entries, 2);
	CU_ASSERT_EQUAL(pc_dir_cache_put(c, "k", 1, &l, 0, 0), -EINVAL);
	CU_ASSERT_EQUAL(pc_dir_cache_put(c, "k", 1, &l, PC_DIR_LOCS_MAX + 1, 0), -EINVAL);
	pc_dir_cache_free(c);
	pc_dir_cache_free(NULL);
}

static void
test_cache_invalidate(void)
{
	struct pc_dir_cache *c = pc_dir_cache_create(16, 1000000);
	struct pc_dir_loc two[2] = {mkloc("node-a", 1, 1, 1), mkloc("node-b", 1, 2, 1)};
	struct pc_dir_loc b = mkloc("node-b", 1, 3, 1);
	struct pc_dir_loc out[PC_DIR_LOCS_MAX];

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(pc_dir_cache_put(c, "k1", 2, two, 2, 0), 0);
	CU_ASSERT_EQUAL(pc_dir_cache_put(c, "k2", 2, &two[0], 1, 0), 0);
	CU_ASSERT_EQUAL(pc_dir_cache_put(c, "k3", 2, &b, 1, 0), 0);
	CU_ASSERT_EQUAL(pc_dir_cache_get(c, "k1", 2, 1, out), 2);
	/* A read through k1 failed. */
	CU_ASSERT_EQUAL(pc_dir_cache_invalidate(c, "k1", 2), 0);
	CU_ASSERT_EQUAL(pc_dir_cache_get(c, "k1", 2, 2, out), -ENOENT);
	CU_ASSERT_EQUAL(pc_dir_cache_invalidate(c, "k1", 2), -ENOENT);
	CU_ASSERT_EQUAL(pc_dir_cache_get(c, "k2", 2, 2, out), 1);
	/* node-a left. */
	CU_ASSERT_EQUAL(pc_dir_cache_put(c, "k1", 2, two, 2, 3), 0);
	CU_ASSERT_EQUAL(pc_dir_cache_invalidate_node(c, "node-a"), 2);
	CU_ASSERT_EQUAL(pc_dir_cache_get(c, "k1", 2, 4, out), -ENOENT);
	CU_ASSERT_EQUAL(pc_dir_cache_get(c, "k2", 2, 4, out), -ENOENT);
	CU_ASSERT_EQUAL(pc_dir_cache_get(c, "k3", 2, 4, out), 1);
	pc_dir_cache_free(c);
}

static void
test_cache_disabled(void)
{
	struct pc_dir_cache *c = pc_dir_cache_create(1024, 0);
	struct pc_dir_cache *c0 = pc_dir_cache_create(0, 1000);
	struct pc_dir_loc l = mkloc("node-a", 1, 1, 1);
	struct pc_dir_loc out[PC_DIR_LOCS_MAX];
	struct pc_dir_cache_stats st;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c0);
	CU_ASSERT_EQUAL(pc_dir_cache_put(c, "k", 1, &l, 1, 0), 0);
	CU_ASSERT_EQUAL(pc_dir_cache_get(c, "k", 1, 0, out), -ENOENT);
	CU_ASSERT_EQUAL(pc_dir_cache_put(c0, "k", 1, &l, 1, 0), 0);
	CU_ASSERT_EQUAL(pc_dir_cache_get(c0, "k", 1, 0, out), -ENOENT);
	CU_ASSERT_EQUAL(pc_dir_cache_invalidate(c, "k", 1), -ENOENT);
	CU_ASSERT_EQUAL(pc_dir_cache_invalidate_node(c, "node-a"), 0);
	pc_dir_cache_stats(c, &st);
	CU_ASSERT_EQUAL(st.entries, 0);
	CU_ASSERT_EQUAL(st.inserts, 0);
	CU_ASSERT_EQUAL(st.misses, 1);
	errno = 0;
	CU_ASSERT_PTR_NULL(pc_dir_cache_create(PC_DIR_ENTRIES_MAX + 1, 1));
	CU_ASSERT_EQUAL(errno, EINVAL);
	pc_dir_cache_free(c);
	pc_dir_cache_free(c0);
}

static void
test_cache_bounded_eviction(void)
{
	struct pc_dir_cache *c = pc_dir_cache_create(4, 100);
	struct pc_dir_loc l = mkloc("node-a", 1, 1, 1);
	struct pc_dir_loc out[PC_DIR_LOCS_MAX];
	struct pc_dir_cache_stats st;
	const char *k[] = {"k0", "k1", "k2", "k3", "k4", "k5"};

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	/* Slots in key order; k2 expires at 100, the others are refreshed to 150. */
	for (int i = 0; i < 4; i++) {
		CU_ASSERT_EQUAL(pc_dir_cache_put(c, k[i], 2, &l, 1, 0), 0);
	}
	CU_ASSERT_EQUAL(pc_dir_cache_put(c, k[0], 2, &l, 1, 50), 0);
	CU_ASSERT_EQUAL(pc_dir_cache_put(c, k[1], 2, &l, 1, 50), 0);
	CU_ASSERT_EQUAL(pc_dir_cache_put(c, k[3], 2, &l, 1, 50), 0);
	for (int i = 0; i < 4; i++) {
		CU_ASSERT_EQUAL(pc_dir_cache_get(c, k[i], 2, 60, out), 1);
	}
	/*
	 * Full, all read recently: the hand passes k0 and k1 (second chance) and
	 * takes the expired k2, not a live one.
	 */
	CU_ASSERT_EQUAL(pc_dir_cache_put(c, k[4], 2, &l, 1, 120), 0);
	pc_dir_cache_stats(c, &st);
	CU_ASSERT_EQUAL(st.evictions, 0);
	CU_ASSERT_EQUAL(st.entries, 4);
	CU_ASSERT_EQUAL(pc_dir_cache_get(c, k[0], 2, 121, out), 1);
	CU_ASSERT_EQUAL(pc_dir_cache_get(c, k[1], 2, 121, out), 1);
	CU_ASSERT_EQUAL(pc_dir_cache_get(c, k[3], 2, 121, out), 1);
	CU_ASSERT_EQUAL(pc_dir_cache_get(c, k[4], 2, 121, out), 1);
	/* Nothing expired: one live entry goes, the cache never grows. */
	CU_ASSERT_EQUAL(pc_dir_cache_put(c, k[5], 2, &l, 1, 122), 0);
	pc_dir_cache_stats(c, &st);
	CU_ASSERT_EQUAL(st.evictions, 1);
	CU_ASSERT_EQUAL(st.entries, 4);
	CU_ASSERT_EQUAL(pc_dir_cache_get(c, k[5], 2, 123, out), 1);
	pc_dir_cache_free(c);
}

/* Random traffic on a small cache: a hit always carries its own key's data. */
static void
test_cache_random(void)
{
	enum { CAP = 64, KEYS = 300, OPS = 100000 };
	struct pc_dir_cache *c = pc_dir_cache_create(CAP, 500);
	struct pc_dir_loc out[PC_DIR_LOCS_MAX];
	struct pc_dir_cache_stats st = {0};
	unsigned int seed = 7;
	char key[64];
	int bad = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	for (uint64_t now = 0; now < OPS; now++) {
		int d = (int)(rand_r(&seed) % KEYS);
		int len = keyname(key, sizeof(key), d);
		int r = (int)(rand_r(&seed) % 4);

		if (r == 0) {
			struct pc_dir_loc l = mkloc("node-a", 1, (uint64_t)d, now);

			bad += pc_dir_cache_put(c, key, (size_t)len, &l, 1, now) != 0;
		} else if (r == 3) {
			int rc = pc_dir_cache_invalidate(c, key, (size_t)len);

			bad += rc != 0 && rc != -ENOENT;
		} else {
			int n = pc_dir_cache_get(c, key, (size_t)len, now, out);

			if (n > 0) {
				bad += n != 1 || out[0].offset != (uint64_t)d ||
				       out[0].generation + 500 <= now;
			} else {
				bad += n != -ENOENT;
			}
		}
		pc_dir_cache_stats(c, &st);
		bad += st.entries > CAP;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(st.hits > 0);
	CU_ASSERT(st.evictions > 0);
	pc_dir_cache_free(c);
}

/* ---- planner ---- */

static void
test_plan_grouping(void)
{
	enum { N = 1000 };
	struct pc_ring *ring = pc_ring_build(g_ids4, 4, RESHARD_VNODE);
	struct pc_dir_plan *p = pc_dir_plan_create(N, REPLICAS);
	static uint64_t h[N];
	static int in_group[N];
	bool primary_seen[4] = {false};
	unsigned int distinct = 0;
	unsigned int total = 0;
	char key[64];
	int bad = 0;
	int groups;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ring);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	memset(in_group, 0, sizeof(in_group));
	for (int d = 0; d < N; d++) {
		unsigned int o;

		h[d] = pc_ring_hash(key, (size_t)keyname(key, sizeof(key), d));
		pc_ring_owners(ring, h[d], 1, &o);
		if (!primary_seen[o]) {
			primary_seen[o] = true;
			distinct++;
		}
	}
	groups = pc_dir_plan_build(p, ring, h, N);
	CU_ASSERT_EQUAL(groups, (int)distinct);
	CU_ASSERT_EQUAL(pc_dir_plan_group_count(p), distinct);
	for (unsigned int g = 0; g < pc_dir_plan_group_count(p); g++) {
		unsigned int node;
		const uint32_t *keys;
		unsigned int n;

		CU_ASSERT_EQUAL_FATAL(pc_dir_plan_group(p, g, &node, &keys, &n), 0);
		CU_ASSERT(n > 0);
		for (unsigned int k = 0; k < n; k++) {
			unsigned int o;

			pc_ring_owners(ring, h[keys[k]], 1, &o);
			bad += o != node;
			bad += in_group[keys[k]]++ != 0;
			bad += k > 0 && keys[k] <= keys[k - 1]; /* batch order */
			bad += pc_dir_plan_key_node(p, keys[k]) != (int)node;
		}
		total += n;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(total, N);
	CU_ASSERT_EQUAL(pc_dir_plan_stranded(p), 0);
	{
		unsigned int node;
		const uint32_t *keys;
		unsigned int n;

		CU_ASSERT_EQUAL(pc_dir_plan_group(p, distinct, &node, &keys, &n), -EINVAL);
	}
	CU_ASSERT_EQUAL(pc_dir_plan_key_node(p, N), -EINVAL);
	CU_ASSERT_EQUAL(pc_dir_plan_build(p, ring, h, N + 1), -EINVAL);
	errno = 0;
	CU_ASSERT_PTR_NULL(pc_dir_plan_create(8, 0));
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT_PTR_NULL(pc_dir_plan_create(8, PC_RING_REPLICAS_MAX + 1));
	CU_ASSERT_PTR_NULL(pc_dir_plan_create(0, 2));
	pc_dir_plan_free(p);
	pc_dir_plan_free(NULL);
	pc_ring_free(ring);
}

/* A miss during a re-shard moves only the missed keys, one owner on, and fails nobody. */
static void
test_plan_retry_keys(void)
{
	enum { N = 600, R = 3 };
	struct pc_ring *ring = pc_ring_build(g_ids5, 5, RESHARD_VNODE);
	struct pc_dir_plan *p = pc_dir_plan_create(N, R);
	static uint64_t h[N];
	static unsigned int own[N][R];
	uint32_t retry[N / 2];
	unsigned int n_retry = 0;
	unsigned int total = 0;
	char key[64];
	int bad = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ring);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	for (int d = 0; d < N; d++) {
		h[d] = pc_ring_hash(key, (size_t)keyname(key, sizeof(key), d));
		pc_ring_owners(ring, h[d], R, own[d]);
	}
	CU_ASSERT_FATAL(pc_dir_plan_build(p, ring, h, N) > 1);
	for (uint32_t i = 0; i < N; i += 2) {
		retry[n_retry++] = i;
	}
	CU_ASSERT_EQUAL(pc_dir_plan_retry_keys(p, retry, n_retry), (int)n_retry);
	for (unsigned int g = 0; g < pc_dir_plan_group_count(p); g++) {
		unsigned int node;
		const uint32_t *keys;
		unsigned int n;

		pc_dir_plan_group(p, g, &node, &keys, &n);
		for (unsigned int k = 0; k < n; k++) {
			bad += keys[k] % 2 != 0;
			bad += node != own[keys[k]][1];
		}
		total += n;
	}
	CU_ASSERT_EQUAL(total, n_retry);
	/* Keys not retried stay with their primary: no owner was marked failed. */
	for (uint32_t i = 1; i < N; i += 2) {
		bad += pc_dir_plan_key_node(p, i) != (int)own[i][0];
	}
	CU_ASSERT_EQUAL(bad, 0);
	/* Two more misses: the third owner, then stranded. */
	CU_ASSERT_EQUAL(pc_dir_plan_retry_keys(p, retry, 1), 1);
	CU_ASSERT_EQUAL(pc_dir_plan_key_node(p, retry[0]), (int)own[retry[0]][2]);
	CU_ASSERT_EQUAL(pc_dir_plan_retry_keys(p, retry, 1), 0);
	CU_ASSERT_EQUAL(pc_dir_plan_key_node(p, retry[0]), -EHOSTUNREACH);
	CU_ASSERT_EQUAL(pc_dir_plan_stranded(p), 1);
	/* A stranded key stays stranded; an index out of range is refused whole. */
	CU_ASSERT_EQUAL(pc_dir_plan_retry_keys(p, retry, 1), 0);
	CU_ASSERT_EQUAL(pc_dir_plan_stranded(p), 1);
	retry[1] = N;
	CU_ASSERT_EQUAL(pc_dir_plan_retry_keys(p, retry, 2), -EINVAL);
	CU_ASSERT_EQUAL(pc_dir_plan_retry_keys(NULL, retry, 1), -EINVAL);
	pc_dir_plan_free(p);
	pc_ring_free(ring);
}

static void
test_plan_next_replica(void)
{
	enum { N = 2000, R = 3 };
	struct pc_ring *ring = pc_ring_build(g_ids5, 5, RESHARD_VNODE);
	struct pc_dir_plan *p = pc_dir_plan_create(N, R);
	static uint64_t h[N];
	static unsigned int own[N][R];
	bool failed[5] = {false};
	char key[64];
	unsigned int first = 0;
	unsigned int second;
	unsigned int expect_moved;
	int moved;
	int bad = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ring);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	for (int d = 0; d < N; d++) {
		h[d] = pc_ring_hash(key, (size_t)keyname(key, sizeof(key), d));
		pc_ring_owners(ring, h[d], R, own[d]);
	}
	CU_ASSERT_FATAL(pc_dir_plan_build(p, ring, h, N) > 1);

	/* Fail the first group's owner: its keys go to their second owner. */
	{
		const uint32_t *keys;
		unsigned int n = 0;

		CU_ASSERT_EQUAL_FATAL(pc_dir_plan_group(p, 0, &first, &keys, &n), 0);
		expect_moved = n;
	}
	failed[first] = true;
	moved = pc_dir_plan_next_replica(p, first);
	CU_ASSERT_EQUAL(moved, (int)expect_moved);
	for (unsigned int g = 0; g < pc_dir_plan_group_count(p); g++) {
		unsigned int node;
		const uint32_t *keys;
		unsigned int n;

		pc_dir_plan_group(p, g, &node, &keys, &n);
		bad += node == first;
		for (unsigned int k = 0; k < n; k++) {
			bad += own[keys[k]][0] != first || own[keys[k]][1] != node;
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	/* Keys of other owners stay where they were. */
	for (int d = 0; d < N; d++) {
		int want = (int)(own[d][0] == first ? own[d][1] : own[d][0]);

		bad += pc_dir_plan_key_node(p, (unsigned int)d) != want;
	}
	CU_ASSERT_EQUAL(bad, 0);

	/*
	 * Fail a second node: keys now on it move to their next owner that has not
	 * failed, skipping `first` (a key with owners [second, first, x] goes to x).
	 */
	second = (first + 1) % 5;
	failed[second] = true;
	expect_moved = 0;
	for (int d = 0; d < N; d++) {
		expect_moved += pc_dir_plan_key_node(p, (unsigned int)d) == (int)second;
	}
	moved = pc_dir_plan_next_replica(p, second);
	CU_ASSERT_EQUAL(moved, (int)expect_moved);
	{
		unsigned int skipped = 0;

		for (int d = 0; d < N; d++) {
			int want = -EHOSTUNREACH;

			for (int r = 0; r < R; r++) {
				if (!failed[own[d][r]]) {
					want = (int)own[d][r];
					break;
				}
			}
			bad += pc_dir_plan_key_node(p, (unsigned int)d) != want;
			skipped += own[d][0] == second && own[d][1] == first;
		}
		CU_ASSERT_EQUAL(bad, 0);
		CU_ASSERT(skipped > 0); /* the skip case did occur */
	}
	for (unsigned int g = 0; g < pc_dir_plan_group_count(p); g++) {
		unsigned int node;
		const uint32_t *keys;
		unsigned int n;

		pc_dir_plan_group(p, g, &node, &keys, &n);
		bad += failed[node];
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(pc_dir_plan_stranded(p), 0);

	/* A third failure strands the keys whose three owners all failed. */
	{
		unsigned int third = (first + 2) % 5;
		unsigned int stranded = 0;

		failed[third] = true;
		for (int d = 0; d < N; d++) {
			stranded += failed[own[d][0]] && failed[own[d][1]] && failed[own[d][2]];
		}
		CU_ASSERT(pc_dir_plan_next_replica(p, third) >= 0);
		CU_ASSERT_EQUAL(pc_dir_plan_stranded(p), stranded);
		CU_ASSERT(stranded > 0);
	}
	CU_ASSERT_EQUAL(pc_dir_plan_next_replica(p, 5), -EINVAL);
	/* A new build forgets the failures. */
	CU_ASSERT_FATAL(pc_dir_plan_build(p, ring, h, N) > 1);
	CU_ASSERT_EQUAL(pc_dir_plan_stranded(p), 0);
	CU_ASSERT_EQUAL(pc_dir_plan_key_node(p, 0), (int)own[0][0]);
	pc_dir_plan_free(p);
	pc_ring_free(ring);
}

static void
test_plan_empty_ring(void)
{
	struct pc_ring *ring = pc_ring_build(NULL, 0, RESHARD_VNODE);
	struct pc_dir_plan *p = pc_dir_plan_create(4, 2);
	uint64_t h[2] = {1, 2};

	CU_ASSERT_PTR_NOT_NULL_FATAL(ring);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(pc_dir_plan_next_replica(p, 0), -EINVAL); /* nothing built */
	CU_ASSERT_EQUAL(pc_dir_plan_build(p, ring, h, 2), 0);
	CU_ASSERT_EQUAL(pc_dir_plan_stranded(p), 2);
	CU_ASSERT_EQUAL(pc_dir_plan_key_node(p, 1), -EHOSTUNREACH);
	CU_ASSERT_EQUAL(pc_dir_plan_build(p, NULL, h, 2), -EINVAL);
	pc_dir_plan_free(p);
	pc_ring_free(ring);
}

/*
 * A reader found the page of a location gone (its slot was reused) and
 * names that location: only it goes. The node's newer location of the key
 * (stored again at another slot, another generation) and other nodes' stay;
 * the node's own delete (any generation) still takes whatever it has.
 */
static void
test_delete_loc_generation(void)
{
	struct pc_dir_shard *s = shard_new(8);
	struct pc_dir_loc out[PC_DIR_LOCS_MAX];
	struct pc_dir_loc a1 = mkloc("node-a", 3, 100, 11);
	struct pc_dir_loc a2 = mkloc("node-a", 3, 900, 22);
	struct pc_dir_loc b = mkloc("node-b", 2, 200, 11);

	/* A stored k at generation 11, then again at 22 (replacing it); B has it at 11 too. */
	CU_ASSERT_EQUAL(put_str(s, "k", &a1), 0);
	CU_ASSERT_EQUAL(put_str(s, "k", &b), 0);
	CU_ASSERT_EQUAL(put_str(s, "k", &a2), 0);
	/* A reader's late repair of a1: a2 is A's page now and stays, as does B's. */
	CU_ASSERT_EQUAL(pc_dir_shard_delete_loc(s, "k", 1, "node-a", 3, 11), -ENOENT);
	CU_ASSERT_EQUAL(lookup_str(s, "k", out), 2);
	CU_ASSERT_TRUE(find_loc(out, 2, "node-a") != NULL &&
		       loc_equal(find_loc(out, 2, "node-a"), &a2));
	CU_ASSERT_TRUE(find_loc(out, 2, "node-b") != NULL &&
		       loc_equal(find_loc(out, 2, "node-b"), &b));
	/* The right generation on the wrong incarnation, older or newer: kept. */
	CU_ASSERT_EQUAL(pc_dir_shard_delete_loc(s, "k", 1, "node-a", 4, 22), -ENOENT);
	CU_ASSERT_EQUAL(pc_dir_shard_delete_loc(s, "k", 1, "node-a", 2, 22), -ESTALE);
	CU_ASSERT_EQUAL(lookup_str(s, "k", out), 2);
	CU_ASSERT_EQUAL(stats_of(s).loc_deletes, 0);
	/* The repair of a2 itself takes a2 only: B's location of the same generation stays. */
	CU_ASSERT_EQUAL(pc_dir_shard_delete_loc(s, "k", 1, "node-a", 3, 22), 0);
	CU_ASSERT_EQUAL(lookup_str(s, "k", out), 1);
	CU_ASSERT_TRUE(loc_equal(&out[0], &b));
	CU_ASSERT_EQUAL(pc_dir_shard_delete_loc(s, "k", 1, "node-a", 3, 22), -ENOENT);
	/* The last location's repair takes the key. */
	CU_ASSERT_EQUAL(pc_dir_shard_delete_loc(s, "k", 1, "node-b", 2, 11), 0);
	CU_ASSERT_EQUAL(lookup_str(s, "k", out), -ENOENT);
	CU_ASSERT_EQUAL(stats_of(s).entries, 0);

	/* Generation 0 (any) takes the node incarnation's location whatever its generation. */
	CU_ASSERT_EQUAL(put_str(s, "k", &a2), 0);
	CU_ASSERT_EQUAL(put_str(s, "k", &b), 0);
	CU_ASSERT_EQUAL(pc_dir_shard_delete_loc(s, "k", 1, "node-a", 3, PC_DIR_GENERATION_ANY), 0);
	CU_ASSERT_EQUAL(lookup_str(s, "k", out), 1);
	CU_ASSERT_TRUE(loc_equal(&out[0], &b));
	/* ... and an older incarnation's too (the node's own delete after a restart). */
	CU_ASSERT_EQUAL(pc_dir_shard_delete_loc(s, "k", 1, "node-b", 5, PC_DIR_GENERATION_ANY), 0);
	CU_ASSERT_EQUAL(lookup_str(s, "k", out), -ENOENT);
	CU_ASSERT_EQUAL(stats_of(s).loc_deletes, 4);
	CU_ASSERT_EQUAL(stats_of(s).entries, 0);
	CU_ASSERT_EQUAL(stats_of(s).locations, 0);
	pc_dir_shard_free(s);
}

static const struct pc_ut_test g_shard_tests[] = {
	{"put/lookup/delete round trip", test_round_trip},
	{"bad arguments rejected", test_bad_args},
	{"four locations, 5th displaces the oldest put", test_four_location_limit},
	{"same node replaces its own location", test_same_node_replaces},
	{"older incarnation rejected, newer accepted", test_incarnation_fencing},
	{"delete_loc never removes another node's location", test_delete_loc_keeps_other_nodes},
	{"delete_loc with a generation removes that location only", test_delete_loc_generation},
	{"drop_node", test_drop_node},
	{"full shard: -ENOSPC, counted, entries intact", test_capacity_full},
	{"full node table", test_node_table_full},
	{"batch calls", test_batches},
	{"index against a model", test_index_against_model},
	{NULL, NULL},
};

/* The hand-off sweep picks exactly the entries self does not own, in chunks, once each. */
static void
test_collect_unowned(void)
{
	enum { N = 3000 };
	struct pc_ring *ring = pc_ring_build(g_ids4, 4, RESHARD_VNODE);
	struct pc_dir_shard *s = pc_dir_shard_create(N);
	static struct pc_dir_record rec[64];
	static unsigned char seen[N];
	uint64_t cursor = 0;
	unsigned int want = 0;
	unsigned int got = 0;
	unsigned int calls = 0;
	char key[64];
	int bad = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ring);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	for (int d = 0; d < N; d++) {
		struct pc_dir_loc l = data_loc(d);
		int len = keyname(key, sizeof(key), d);
		unsigned int o[2];
		unsigned int n = pc_ring_owners(ring, pc_ring_hash(key, (size_t)len), 2, o);
		bool mine = false;

		CU_ASSERT_EQUAL_FATAL(pc_dir_shard_put(s, key, (size_t)len, &l), 0);
		for (unsigned int i = 0; i < n; i++) {
			mine |= strcmp(pc_ring_node_id(ring, o[i]), g_ids4[1]) == 0;
		}
		want += !mine;
	}
	while (cursor != PC_DIR_CURSOR_END) {
		int n = pc_dir_shard_collect_unowned(s, ring, g_ids4[1], 2, &cursor, rec, 64);

		CU_ASSERT_FATAL(n >= 0);
		calls++;
		for (int i = 0; i < n; i++) {
			unsigned int o[2];
			unsigned int no = pc_ring_owners(ring, rec[i].key_hash, 2, o);
			int d;

			for (unsigned int k = 0; k < no; k++) {
				bad += strcmp(pc_ring_node_id(ring, o[k]), g_ids4[1]) == 0;
			}
			CU_ASSERT_EQUAL_FATAL(
				sscanf((const char *)rec[i].key, "model-x/tp0/key-%d", &d), 1);
			bad += rec[i].n_locs != 1 || rec[i].locs[0].offset != (uint64_t)d * 4096;
			seen[d]++;
		}
		got += (unsigned int)n;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(got, want);
	CU_ASSERT(want > N / 3 && want < N);
	CU_ASSERT(calls > 1);
	for (int d = 0; d < N; d++) {
		bad += seen[d] > 1;
	}
	CU_ASSERT_EQUAL(bad, 0);
	/* Not on the ring: everything is someone else's. */
	{
		static const char *const others[] = {"node-y", "node-z"};
		struct pc_ring *theirs = pc_ring_build(others, 2, RESHARD_VNODE);
		unsigned int all = 0;

		CU_ASSERT_PTR_NOT_NULL_FATAL(theirs);
		for (cursor = 0; cursor != PC_DIR_CURSOR_END;) {
			int n = pc_dir_shard_collect_unowned(s, theirs, g_ids4[1], 2, &cursor, rec,
							     64);

			CU_ASSERT_FATAL(n >= 0);
			all += (unsigned int)n;
		}
		CU_ASSERT_EQUAL(all, N);
		pc_ring_free(theirs);
	}
	CU_ASSERT_EQUAL(pc_dir_shard_collect_unowned(s, ring, g_ids4[1], 0, &cursor, rec, 64),
			-EINVAL);
	CU_ASSERT_EQUAL(pc_dir_shard_collect_unowned(s, ring, "bad id!", 2, &cursor, rec, 64),
			-EINVAL);
	pc_dir_shard_free(s);
	pc_ring_free(ring);
}

static const struct pc_ut_test g_reshard_tests[] = {
	{"collect_unowned: the hand-off sweep", test_collect_unowned},
	{"join 4 -> 5: collect, hand over, prune", test_reshard_join},
	{"chunked cursors see everything once", test_cursor_exactly_once},
	{NULL, NULL},
};

static const struct pc_ut_test g_cache_tests[] = {
	{"ttl expiry on a fake clock", test_cache_ttl},
	{"invalidate and invalidate_node", test_cache_invalidate},
	{"ttl 0 disables", test_cache_disabled},
	{"bounded: expired first, then CLOCK", test_cache_bounded_eviction},
	{"random traffic", test_cache_random},
	{NULL, NULL},
};

static const struct pc_ut_test g_plan_tests[] = {
	{"one group per primary owner", test_plan_grouping},
	{"next replica skips failed nodes", test_plan_next_replica},
	{"retry_keys moves only the missed keys", test_plan_retry_keys},
	{"empty ring strands keys", test_plan_empty_ring},
	{NULL, NULL},
};

static const struct pc_ut_suite g_suites[] = {
	{"directory shard", NULL, NULL, g_shard_tests},
	{"directory re-shard", NULL, NULL, g_reshard_tests},
	{"directory read cache", NULL, NULL, g_cache_tests},
	{"directory planner", NULL, NULL, g_plan_tests},
};

int
main(void)
{
	return pc_ut_run(g_suites, PC_ARRAY_SIZE(g_suites));
}
