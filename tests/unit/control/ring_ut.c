/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * control/ring.c: the same members give the same ring in any order, keys
 * spread evenly, a join or a leave moves only the keys it must, replicas are
 * distinct, owners_changed() agrees with a brute-force comparison, and the
 * edges (empty, one node, wrap-around, bad ids) behave.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../control/ring.c"
#include "ut.h"

#define N_KEYS      1000000
#define VNODES      160
#define BALANCE_TOL 0.15 /* the bound: each node within 15% of an even share */

/* "key-%d" for d < N_KEYS, hashed once for every test. */
static uint64_t *g_keys;

/* The members: ids as an operator would name storage servers. */
static const char *const g_ids8[] = {
	"storage-01", "storage-02", "storage-03", "storage-04",
	"storage-05", "storage-06", "storage-07", "storage-08",
};

static int
suite_init(void)
{
	char key[32];

	/* Both suites use the keys; hash them once. */
	if (g_keys != NULL) {
		return 0;
	}
	g_keys = malloc(N_KEYS * sizeof(*g_keys));
	if (g_keys == NULL) {
		return -1;
	}
	for (int d = 0; d < N_KEYS; d++) {
		int len = snprintf(key, sizeof(key), "key-%d", d);

		g_keys[d] = pc_ring_hash(key, (size_t)len);
	}
	return 0;
}

static int
suite_cleanup(void)
{
	free(g_keys);
	g_keys = NULL;
	return 0;
}

static struct pc_ring *
build(const char *const *ids, unsigned int n, unsigned int vnodes)
{
	struct pc_ring *ring = pc_ring_build(ids, n, vnodes);

	CU_ASSERT_PTR_NOT_NULL_FATAL(ring);
	return ring;
}

static const char *
primary_id(const struct pc_ring *ring, uint64_t h)
{
	unsigned int o;

	if (pc_ring_owners(ring, h, 1, &o) != 1) {
		return NULL;
	}
	return pc_ring_node_id(ring, o);
}

/* ---- building and the edges ---- */

static void
test_hash_known_answer(void)
{
	struct pc_ring *ring = build(g_ids8, 8, VNODES);
	bool found = false;

	/*
	 * Values from Python's hashlib.blake2b(digest_size=16), first 8 bytes
	 * little-endian: a change of hash or point spelling would split a cluster
	 * of mixed versions, so it must not pass unnoticed.
	 */
	CU_ASSERT_EQUAL(pc_ring_hash("", 0), 0x40bdefd94169e6caULL);
	CU_ASSERT_EQUAL(pc_ring_hash(NULL, 0), 0x40bdefd94169e6caULL);
	CU_ASSERT_EQUAL(pc_ring_hash("abc", 3), 0x2b8d2bc691b74acfULL);
	/* "storage-01#0" is point 0 of node 0 (storage-01 sorts first). */
	for (size_t k = 0; k < ring->n_points; k++) {
		if (ring->point_hash[k] == 0x7182f68a00b7bd1eULL) {
			found = ring->point_node[k] == 0;
		}
	}
	CU_ASSERT_TRUE(found);
	CU_ASSERT_EQUAL(ring->n_points, (size_t)8 * VNODES);
	pc_ring_free(ring);
}

static void
test_empty_ring(void)
{
	struct pc_ring *ring = build(NULL, 0, VNODES);
	unsigned int owners[4] = {99, 99, 99, 99};

	CU_ASSERT_EQUAL(pc_ring_node_count(ring), 0);
	CU_ASSERT_EQUAL(pc_ring_owners(ring, g_keys[0], 3, owners), 0);
	CU_ASSERT_EQUAL(pc_ring_owners(ring, UINT64_MAX, 1, owners), 0);
	CU_ASSERT_EQUAL(owners[0], 99);
	CU_ASSERT_PTR_NULL(pc_ring_node_id(ring, 0));
	CU_ASSERT_EQUAL(pc_ring_index_of(ring, "storage-01"), -ENOENT);
	CU_ASSERT_EQUAL(pc_ring_owners(NULL, g_keys[0], 3, owners), 0);
	CU_ASSERT_EQUAL(pc_ring_node_count(NULL), 0);
	pc_ring_free(ring);
	pc_ring_free(NULL);
}

static void
test_one_node(void)
{
	const char *ids[] = {"solo"};
	struct pc_ring *ring = build(ids, 1, VNODES);
	unsigned int owners[3];
	unsigned int wrong = 0;

	for (int d = 0; d < 10000; d++) {
		if (pc_ring_owners(ring, g_keys[d], 3, owners) != 1 || owners[0] != 0) {
			wrong++;
		}
	}
	CU_ASSERT_EQUAL(wrong, 0);
	{
		double share[2] = {0.0, 0.0};

		CU_ASSERT_EQUAL(pc_ring_shares(ring, share, 2), 1);
		CU_ASSERT_DOUBLE_EQUAL(share[0], 1.0, 1e-12);
	}
	CU_ASSERT_EQUAL(pc_ring_owners(ring, 0, 3, owners), 1);
	CU_ASSERT_EQUAL(pc_ring_owners(ring, UINT64_MAX, 3, owners), 1);
	CU_ASSERT_EQUAL(owners[0], 0);
	CU_ASSERT_STRING_EQUAL(pc_ring_node_id(ring, 0), "solo");
	pc_ring_free(ring);
}

static void
test_duplicate_ids(void)
{
	const char *dup[] = {"b", "a", "c", "a"};
	const char *dup_far[] = {"storage-01", "storage-02", "storage-03", "storage-01"};

	errno = 0;
	CU_ASSERT_PTR_NULL(pc_ring_build(dup, 4, VNODES));
	CU_ASSERT_EQUAL(errno, EINVAL);
	errno = 0;
	CU_ASSERT_PTR_NULL(pc_ring_build(dup_far, 4, VNODES));
	CU_ASSERT_EQUAL(errno, EINVAL);
}

static void
test_bad_vnodes(void)
{
	struct pc_ring *ring;

	errno = 0;
	CU_ASSERT_PTR_NULL(pc_ring_build(g_ids8, 8, 0));
	CU_ASSERT_EQUAL(errno, EINVAL);
	errno = 0;
	CU_ASSERT_PTR_NULL(pc_ring_build(g_ids8, 8, PC_RING_VNODES_MAX + 1));
	CU_ASSERT_EQUAL(errno, EINVAL);
	errno = 0;
	CU_ASSERT_PTR_NULL(pc_ring_build(NULL, 0, 0));
	CU_ASSERT_EQUAL(errno, EINVAL);
	ring = pc_ring_build(g_ids8, 2, PC_RING_VNODES_MAX);
	CU_ASSERT_PTR_NOT_NULL(ring);
	pc_ring_free(ring);
}

static void
test_bad_ids(void)
{
	char id63[64];
	char id64[65];
	const char *ok[] = {id63, "a", "A.b_c-9"};
	const char *too_long[] = {"a", id64};
	const char *empty[] = {"a", ""};
	const char *hash_sign[] = {"a#1", "b"};
	const char *space[] = {"a b"};
	const char *slash[] = {"a/b"};
	const char *null_id[] = {"a", NULL};
	const char *const *bad[] = {too_long, empty, hash_sign, space, slash, null_id};
	const unsigned int n_bad[] = {2, 2, 2, 1, 1, 2};
	struct pc_ring *ring;

	memset(id63, 'x', 63);
	id63[63] = '\0';
	memset(id64, 'x', 64);
	id64[64] = '\0';
	ring = pc_ring_build(ok, 3, 4);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ring);
	CU_ASSERT_EQUAL(pc_ring_index_of(ring, id63), 2);
	pc_ring_free(ring);
	for (size_t i = 0; i < PC_ARRAY_SIZE(bad); i++) {
		errno = 0;
		CU_ASSERT_PTR_NULL(pc_ring_build(bad[i], n_bad[i], 4));
		CU_ASSERT_EQUAL(errno, EINVAL);
	}
	errno = 0;
	CU_ASSERT_PTR_NULL(pc_ring_build(NULL, 3, 4));
	CU_ASSERT_EQUAL(errno, EINVAL);
	errno = 0;
	CU_ASSERT_PTR_NULL(pc_ring_build(g_ids8, PC_RING_NODES_MAX + 1, 4));
	CU_ASSERT_EQUAL(errno, EINVAL);
}

static void
test_index_of(void)
{
	const char *ids[] = {"gamma", "alpha", "beta"};
	struct pc_ring *ring = build(ids, 3, VNODES);

	/* Indices follow the ids' byte order, not the order given. */
	CU_ASSERT_EQUAL(pc_ring_node_count(ring), 3);
	CU_ASSERT_STRING_EQUAL(pc_ring_node_id(ring, 0), "alpha");
	CU_ASSERT_STRING_EQUAL(pc_ring_node_id(ring, 1), "beta");
	CU_ASSERT_STRING_EQUAL(pc_ring_node_id(ring, 2), "gamma");
	CU_ASSERT_PTR_NULL(pc_ring_node_id(ring, 3));
	CU_ASSERT_EQUAL(pc_ring_index_of(ring, "alpha"), 0);
	CU_ASSERT_EQUAL(pc_ring_index_of(ring, "beta"), 1);
	CU_ASSERT_EQUAL(pc_ring_index_of(ring, "gamma"), 2);
	CU_ASSERT_EQUAL(pc_ring_index_of(ring, "delta"), -ENOENT);
	CU_ASSERT_EQUAL(pc_ring_index_of(ring, "alph"), -ENOENT);
	CU_ASSERT_EQUAL(pc_ring_index_of(ring, ""), -ENOENT);
	CU_ASSERT_EQUAL(pc_ring_index_of(ring, NULL), -EINVAL);
	CU_ASSERT_EQUAL(pc_ring_index_of(NULL, "alpha"), -EINVAL);
	pc_ring_free(ring);
}

static void
test_wrap_around(void)
{
	struct pc_ring *ring = build(g_ids8, 8, VNODES);
	size_t last = ring->n_points - 1;
	size_t k = 1;
	unsigned int owners[8];
	unsigned int n;

	CU_ASSERT_FATAL(ring->point_hash[last] < UINT64_MAX);
	/* Above the largest point: the walk wraps to the first point. */
	CU_ASSERT_EQUAL(pc_ring_owners(ring, UINT64_MAX, 1, owners), 1);
	CU_ASSERT_EQUAL(owners[0], ring->point_node[0]);
	CU_ASSERT_EQUAL(pc_ring_owners(ring, ring->point_hash[last] + 1, 1, owners), 1);
	CU_ASSERT_EQUAL(owners[0], ring->point_node[0]);
	/* Below or at the first point: the first point too. */
	CU_ASSERT_EQUAL(pc_ring_owners(ring, 0, 1, owners), 1);
	CU_ASSERT_EQUAL(owners[0], ring->point_node[0]);
	/*
	 * A hash equal to a point belongs to that point; one above it, to the
	 * next. Take a point whose successor is another node, so that an off-by-one
	 * shows, the last point's (successor: the first point) included.
	 */
	while (k < last && ring->point_node[k] == ring->point_node[k + 1]) {
		k++;
	}
	CU_ASSERT_FATAL(k < last);
	CU_ASSERT_EQUAL(pc_ring_owners(ring, ring->point_hash[k], 1, owners), 1);
	CU_ASSERT_EQUAL(owners[0], ring->point_node[k]);
	CU_ASSERT_EQUAL(pc_ring_owners(ring, ring->point_hash[k] + 1, 1, owners), 1);
	CU_ASSERT_EQUAL(owners[0], ring->point_node[k + 1]);
	if (ring->point_node[last] != ring->point_node[0]) {
		CU_ASSERT_EQUAL(pc_ring_owners(ring, ring->point_hash[last], 1, owners), 1);
		CU_ASSERT_EQUAL(owners[0], ring->point_node[last]);
	}
	/* Starting at the last point, every node is still found across the wrap. */
	n = pc_ring_owners(ring, ring->point_hash[last], 8, owners);
	CU_ASSERT_EQUAL(n, 8);
	for (unsigned int i = 0; i < n; i++) {
		for (unsigned int j = i + 1; j < n; j++) {
			CU_ASSERT_NOT_EQUAL(owners[i], owners[j]);
		}
	}
	pc_ring_free(ring);
}

static void
test_equal_points_ordered_by_node(void)
{
	struct pc_ring_point a = {.hash = 7, .node = 1};
	struct pc_ring_point b = {.hash = 7, .node = 2};
	struct pc_ring_point c = {.hash = 8, .node = 0};

	/*
	 * Two nodes' points colliding is a 2^-64 event that no key set reaches, so
	 * check the order itself: it must not be left to qsort, which is unstable
	 * and differs between C libraries.
	 */
	CU_ASSERT(cmp_point(&a, &b) < 0);
	CU_ASSERT(cmp_point(&b, &a) > 0);
	CU_ASSERT(cmp_point(&b, &c) < 0);
	CU_ASSERT(cmp_point(&c, &a) > 0);
	CU_ASSERT_EQUAL(cmp_point(&a, &a), 0);
}

/* ---- placement ---- */

static void
test_deterministic_any_order(void)
{
	const char *rev[8];
	const char *mixed[] = {
		"storage-05", "storage-02", "storage-08", "storage-01",
		"storage-07", "storage-03", "storage-06", "storage-04",
	};
	struct pc_ring *r[4];
	unsigned int o0[3];
	unsigned int o[3];
	unsigned int differ = 0;

	for (int i = 0; i < 8; i++) {
		rev[i] = g_ids8[7 - i];
	}
	r[0] = build(g_ids8, 8, VNODES);
	r[1] = build(rev, 8, VNODES);
	r[2] = build(mixed, 8, VNODES);
	r[3] = build(g_ids8, 8, VNODES);
	for (int i = 1; i < 4; i++) {
		CU_ASSERT_EQUAL_FATAL(r[i]->n_points, r[0]->n_points);
		CU_ASSERT_EQUAL(memcmp(r[i]->point_hash, r[0]->point_hash,
				       r[0]->n_points * sizeof(uint64_t)),
				0);
		CU_ASSERT_EQUAL(memcmp(r[i]->point_node, r[0]->point_node,
				       r[0]->n_points * sizeof(uint32_t)),
				0);
	}
	for (int d = 0; d < 100000; d++) {
		if (pc_ring_owners(r[0], g_keys[d], 3, o0) != 3) {
			differ++;
			continue;
		}
		for (int i = 1; i < 4; i++) {
			if (pc_ring_owners(r[i], g_keys[d], 3, o) != 3) {
				differ++;
				continue;
			}
			for (int j = 0; j < 3; j++) {
				if (strcmp(pc_ring_node_id(r[i], o[j]),
					   pc_ring_node_id(r[0], o0[j])) != 0) {
					differ++;
				}
			}
		}
	}
	CU_ASSERT_EQUAL(differ, 0);
	for (int i = 0; i < 4; i++) {
		pc_ring_free(r[i]);
	}
}

static void
test_balance(void)
{
	struct pc_ring *ring = build(g_ids8, 8, VNODES);
	unsigned int count[8] = {0};
	double share[8];
	double sum = 0.0;
	double key_dev = 0.0;
	double space_dev = 0.0;
	unsigned int o;

	for (int d = 0; d < N_KEYS; d++) {
		if (pc_ring_owners(ring, g_keys[d], 1, &o) == 1) {
			count[o]++;
		}
	}
	CU_ASSERT_EQUAL(pc_ring_shares(ring, share, 7), -ENOBUFS);
	CU_ASSERT_EQUAL(pc_ring_shares(ring, share, 8), 8);
	CU_ASSERT_EQUAL(pc_ring_shares(NULL, share, 8), 0);
	for (int i = 0; i < 8; i++) {
		double kd = fabs((double)count[i] / N_KEYS * 8.0 - 1.0);
		double sd = fabs(share[i] * 8.0 - 1.0);

		sum += share[i];
		key_dev = PC_MAX(key_dev, kd);
		space_dev = PC_MAX(space_dev, sd);
		CU_ASSERT(kd <= BALANCE_TOL);
		CU_ASSERT(sd <= BALANCE_TOL);
	}
	CU_ASSERT_DOUBLE_EQUAL(sum, 1.0, 1e-9);
	printf("\n    8 nodes x %d vnodes: max deviation from an even share: %.2f%% of %d keys, "
	       "%.2f%% of the hash space ",
	       VNODES, key_dev * 100.0, N_KEYS, space_dev * 100.0);
	pc_ring_free(ring);
}

static void
test_replicas_distinct(void)
{
	struct pc_ring *ring = build(g_ids8, 8, VNODES);
	const unsigned int wants[] = {1, 2, 3, 8};
	unsigned int prev[8];
	unsigned int o[8];
	unsigned int bad = 0;

	for (int d = 0; d < 100000; d++) {
		unsigned int n_prev = 0;

		for (size_t w = 0; w < PC_ARRAY_SIZE(wants); w++) {
			unsigned int n = pc_ring_owners(ring, g_keys[d], wants[w], o);

			if (n != wants[w]) {
				bad++;
				continue;
			}
			for (unsigned int i = 0; i < n; i++) {
				bad += o[i] >= 8;
				for (unsigned int j = i + 1; j < n; j++) {
					bad += o[i] == o[j];
				}
			}
			/* Asking for more replicas extends the list; it never reorders it. */
			bad += memcmp(o, prev, n_prev * sizeof(o[0])) != 0;
			memcpy(prev, o, n * sizeof(o[0]));
			n_prev = n;
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(pc_ring_owners(ring, g_keys[0], 9, o), 8);
	CU_ASSERT_EQUAL(pc_ring_owners(ring, g_keys[1], 0, o), 0);
	pc_ring_free(ring);
}

static void
test_join_moves_keys_to_new_node_only(void)
{
	const char *ids9[] = {
		"storage-01", "storage-02", "storage-03", "storage-04", "storage-05",
		"storage-06", "storage-07", "storage-08", "storage-09",
	};
	struct pc_ring *old = build(g_ids8, 8, VNODES);
	struct pc_ring *new = build(ids9, 9, VNODES);
	unsigned int moved = 0;
	unsigned int moved_elsewhere = 0;
	double frac;

	for (int d = 0; d < N_KEYS; d++) {
		const char *a = primary_id(old, g_keys[d]);
		const char *b = primary_id(new, g_keys[d]);

		if (strcmp(a, b) != 0) {
			moved++;
			moved_elsewhere += strcmp(b, "storage-09") != 0;
		}
	}
	frac = (double)moved / N_KEYS;
	CU_ASSERT(frac >= 0.5 / 9 && frac <= 1.5 / 9);
	CU_ASSERT_EQUAL(moved_elsewhere, 0);
	printf("\n    join 8 -> 9: %.4f of the keys moved (even: %.4f) ", frac, 1.0 / 9);
	pc_ring_free(old);
	pc_ring_free(new);
}

static void
test_leave_moves_only_its_keys(void)
{
	const char *ids7[] = {
		"storage-01", "storage-02", "storage-04", "storage-05",
		"storage-06", "storage-07", "storage-08",
	};
	struct pc_ring *old = build(g_ids8, 8, VNODES);
	struct pc_ring *new = build(ids7, 7, VNODES);
	unsigned int moved = 0;
	unsigned int moved_wrongly = 0;
	unsigned int set_changed_without_it = 0;

	for (int d = 0; d < N_KEYS; d++) {
		const char *a = primary_id(old, g_keys[d]);
		const char *b = primary_id(new, g_keys[d]);
		unsigned int o[2];
		bool had_it = false;

		if (strcmp(a, b) != 0) {
			moved++;
			moved_wrongly += strcmp(a, "storage-03") != 0;
		}
		if (pc_ring_owners(old, g_keys[d], 2, o) != 2) {
			set_changed_without_it++;
			continue;
		}
		for (int i = 0; i < 2; i++) {
			had_it = had_it || strcmp(pc_ring_node_id(old, o[i]), "storage-03") == 0;
		}
		/* With two replicas too: only the entries storage-03 held change owners. */
		if (!had_it && pc_ring_owners_changed(old, new, g_keys[d], 2)) {
			set_changed_without_it++;
		}
	}
	CU_ASSERT_EQUAL(moved_wrongly, 0);
	CU_ASSERT_EQUAL(set_changed_without_it, 0);
	CU_ASSERT(moved > 0);
	printf("\n    leave 8 -> 7: %.4f of the keys moved (even: %.4f) ", (double)moved / N_KEYS,
	       1.0 / 8);
	pc_ring_free(old);
	pc_ring_free(new);
}

/* ---- owners_changed ---- */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The owner ids, sorted: two rings agree on a key iff these are equal. */
static unsigned int
owner_ids(const struct pc_ring *ring, uint64_t h, unsigned int want, const char **ids)
{
	unsigned int o[PC_RING_REPLICAS_MAX];
	unsigned int n = pc_ring_owners(ring, h, want, o);

	for (unsigned int i = 0; i < n; i++) {
		ids[i] = pc_ring_node_id(ring, o[i]);
	}
	qsort(ids, n, sizeof(ids[0]), cmp_str);
	return n;
}

static void
test_owners_changed_brute_force(void)
{
	/* storage-00 sorts first, so every old index shifts by one in the new ring. */
	const char *ids9[] = {
		"storage-00", "storage-01", "storage-02", "storage-03", "storage-04",
		"storage-05", "storage-06", "storage-07", "storage-08",
	};
	struct pc_ring *old = build(g_ids8, 8, VNODES);
	struct pc_ring *new = build(ids9, 9, VNODES);

	for (unsigned int replicas = 1; replicas <= 3; replicas++) {
		unsigned int disagree = 0;
		unsigned int changed = 0;

		for (int d = 0; d < 10000; d++) {
			const char *a[PC_RING_REPLICAS_MAX];
			const char *b[PC_RING_REPLICAS_MAX];
			unsigned int na = owner_ids(old, g_keys[d], replicas, a);
			unsigned int nb = owner_ids(new, g_keys[d], replicas, b);
			bool expect = na != nb;

			for (unsigned int i = 0; i < na && !expect; i++) {
				expect = strcmp(a[i], b[i]) != 0;
			}
			changed += expect;
			disagree += pc_ring_owners_changed(old, new, g_keys[d], replicas) != expect;
			disagree += pc_ring_owners_changed(old, old, g_keys[d], replicas);
		}
		CU_ASSERT_EQUAL(disagree, 0);
		/* A join changes some owner sets, and more of them the more replicas. */
		CU_ASSERT(changed > 0 && changed < 10000);
	}
	CU_ASSERT_TRUE(pc_ring_owners_changed(NULL, new, g_keys[0], 2));
	CU_ASSERT_TRUE(pc_ring_owners_changed(old, NULL, g_keys[0], 2));
	CU_ASSERT_FALSE(pc_ring_owners_changed(NULL, NULL, g_keys[0], 2));
	CU_ASSERT_FALSE(pc_ring_owners_changed(old, new, g_keys[0], 0));
	pc_ring_free(old);
	pc_ring_free(new);
}

static void
test_owners_changed_ignores_order(void)
{
	const char *ids[] = {"storage-01", "storage-02"};
	struct pc_ring *a = build(ids, 2, VNODES);
	struct pc_ring *b = build(ids, 2, VNODES + 1);
	unsigned int reordered = 0;
	unsigned int reported = 0;

	/* Two members, two replicas: the set is always both, only the order moves. */
	for (int d = 0; d < 10000; d++) {
		unsigned int oa[2];
		unsigned int ob[2];

		pc_ring_owners(a, g_keys[d], 2, oa);
		pc_ring_owners(b, g_keys[d], 2, ob);
		reordered += oa[0] != ob[0];
		reported += pc_ring_owners_changed(a, b, g_keys[d], 2);
	}
	CU_ASSERT(reordered > 0);
	CU_ASSERT_EQUAL(reported, 0);
	pc_ring_free(a);
	pc_ring_free(b);
}

static const struct pc_ut_test g_build_tests[] = {
	{"hash known answer", test_hash_known_answer},
	{"empty ring owns nothing", test_empty_ring},
	{"one node owns every key", test_one_node},
	{"duplicate ids rejected", test_duplicate_ids},
	{"vnodes out of range rejected", test_bad_vnodes},
	{"bad ids rejected", test_bad_ids},
	{"index_of and node_id", test_index_of},
	{"wrap-around", test_wrap_around},
	{"equal points ordered by node", test_equal_points_ordered_by_node},
	{NULL, NULL},
};

static const struct pc_ut_test g_placement_tests[] = {
	{"same ring in any member order", test_deterministic_any_order},
	{"balance within 15%", test_balance},
	{"replicas distinct", test_replicas_distinct},
	{"join moves keys to the new node only", test_join_moves_keys_to_new_node_only},
	{"leave moves only its keys", test_leave_moves_only_its_keys},
	{"owners_changed agrees with brute force", test_owners_changed_brute_force},
	{"owners_changed ignores order", test_owners_changed_ignores_order},
	{NULL, NULL},
};

static const struct pc_ut_suite g_suites[] = {
	{"ring build", suite_init, NULL, g_build_tests},
	{"ring placement", suite_init, suite_cleanup, g_placement_tests},
};

int
main(void)
{
	return pc_ut_run(g_suites, PC_ARRAY_SIZE(g_suites));
}
