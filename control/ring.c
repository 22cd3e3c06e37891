/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The consistent-hash ring: member ids sorted, points sorted, both in one
 * immutable block, so lookups are a binary search and a short walk with no
 * locks and no allocation.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "pc_common.h"
#include "ring.h"

/*
 * libsodium's documented shortest BLAKE2b digest. A shorter outlen is accepted
 * by today's code but is outside the contract, and every node must hash alike
 * across libsodium versions, so hash 16 bytes and keep the first 8.
 */
#define PC_RING_DIGEST_BYTES 16

/* "X#i": an id, '#', a vnode number below PC_RING_VNODES_MAX, the NUL. */
#define PC_RING_POINT_NAME_MAX (PC_RING_NODE_ID_MAX + 16)

/* Only while building: the points are sorted as pairs, then stored split. */
struct pc_ring_point {
	uint64_t hash;
	uint32_t node;
};

struct pc_ring {
	unsigned int n_nodes;
	unsigned int vnodes;
	size_t n_points;
	/*
	 * Ascending; a separate array from the owners so the binary search touches
	 * only hashes (8 per cache line).
	 */
	const uint64_t *point_hash;
	const uint32_t *point_node;       /* node index of point_hash[k] */
	char (*ids)[PC_RING_NODE_ID_MAX]; /* sorted by strcmp(): index = rank */
};

uint64_t
pc_ring_hash(const void *key, size_t len)
{
	static const unsigned char empty[1];
	unsigned char digest[PC_RING_DIGEST_BYTES];
	uint64_t h = 0;

	if (key == NULL) {
		key = empty;
		len = 0;
	}
	/* Fails only for lengths outside libsodium's bounds, which these are not. */
	crypto_generichash(digest, sizeof(digest), key, len, NULL, 0);
	/* Little-endian whatever the host is: rings must agree across nodes. */
	for (int i = 7; i >= 0; i--) {
		h = (h << 8) | digest[i];
	}
	return h;
}

static bool
is_id_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

static bool
valid_id(const char *id)
{
	size_t len;

	if (id == NULL) {
		return false;
	}
	len = strnlen(id, PC_RING_NODE_ID_MAX);
	if (len == 0 || len == PC_RING_NODE_ID_MAX) {
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		if (!is_id_char(id[i])) {
			return false;
		}
	}
	return true;
}

static int
cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* By hash, then node index: equal points land in the same order everywhere. */
static int
cmp_point(const void *a, const void *b)
{
	const struct pc_ring_point *pa = a;
	const struct pc_ring_point *pb = b;

	if (pa->hash != pb->hash) {
		return pa->hash < pb->hash ? -1 : 1;
	}
	if (pa->node != pb->node) {
		return pa->node < pb->node ? -1 : 1;
	}
	return 0;
}

static int
check_args(const char *const *node_ids, unsigned int n_nodes, unsigned int vnodes)
{
	if (vnodes == 0 || vnodes > PC_RING_VNODES_MAX || n_nodes > PC_RING_NODES_MAX) {
		return -EINVAL;
	}
	if (n_nodes > 0 && node_ids == NULL) {
		return -EINVAL;
	}
	for (unsigned int i = 0; i < n_nodes; i++) {
		if (!valid_id(node_ids[i])) {
			return -EINVAL;
		}
	}
	return 0;
}

/* Make, sort and store every node's points; the ids are already sorted. */
static int
fill_points(struct pc_ring *ring, uint64_t *hashes, uint32_t *nodes)
{
	struct pc_ring_point *pts;
	char name[PC_RING_POINT_NAME_MAX];
	size_t k = 0;

	if (ring->n_points == 0) {
		return 0;
	}
	pts = malloc(ring->n_points * sizeof(*pts));
	if (pts == NULL) {
		return -ENOMEM;
	}
	for (unsigned int node = 0; node < ring->n_nodes; node++) {
		for (unsigned int v = 0; v < ring->vnodes; v++) {
			int len = snprintf(name, sizeof(name), "%s#%u", ring->ids[node], v);

			pts[k].hash = pc_ring_hash(name, (size_t)len);
			pts[k].node = node;
			k++;
		}
	}
	qsort(pts, ring->n_points, sizeof(*pts), cmp_point);
	for (k = 0; k < ring->n_points; k++) {
		hashes[k] = pts[k].hash;
		nodes[k] = pts[k].node;
	}
	free(pts);
	return 0;
}

struct pc_ring *
pc_ring_build(const char *const *node_ids, unsigned int n_nodes, unsigned int vnodes)
{
	struct pc_ring *ring;
	uint64_t *hashes;
	uint32_t *nodes;
	size_t n_points;
	size_t off_hash;
	size_t off_node;
	size_t off_ids;
	int rc;

	if (sodium_init() < 0) {
		errno = EIO;
		return NULL;
	}
	rc = check_args(node_ids, n_nodes, vnodes);
	if (rc < 0) {
		errno = -rc;
		return NULL;
	}

	/*
	 * One block: header, hashes, owners, ids. The caps above bound it
	 * (4096 * 4096 points of 12 bytes), so nothing here can overflow.
	 */
	n_points = (size_t)n_nodes * vnodes;
	off_hash = (sizeof(*ring) + sizeof(uint64_t) - 1) & ~(sizeof(uint64_t) - 1);
	off_node = off_hash + n_points * sizeof(uint64_t);
	off_ids = off_node + n_points * sizeof(uint32_t);
	ring = calloc(1, off_ids + (size_t)n_nodes * PC_RING_NODE_ID_MAX);
	if (ring == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	hashes = (uint64_t *)((char *)ring + off_hash);
	nodes = (uint32_t *)((char *)ring + off_node);
	ring->n_nodes = n_nodes;
	ring->vnodes = vnodes;
	ring->n_points = n_points;
	ring->point_hash = hashes;
	ring->point_node = nodes;
	ring->ids = (char(*)[PC_RING_NODE_ID_MAX])((char *)ring + off_ids);

	/* Sorted ids make the indices, and so the ring, independent of input order. */
	for (unsigned int i = 0; i < n_nodes; i++) {
		memcpy(ring->ids[i], node_ids[i], strlen(node_ids[i]) + 1);
	}
	qsort(ring->ids, n_nodes, PC_RING_NODE_ID_MAX, cmp_id);
	for (unsigned int i = 1; i < n_nodes; i++) {
		if (strcmp(ring->ids[i - 1], ring->ids[i]) == 0) {
			rc = -EINVAL;
			goto err_free_ring;
		}
	}

	rc = fill_points(ring, hashes, nodes);
	if (rc < 0) {
		goto err_free_ring;
	}
	return ring;

err_free_ring:
	free(ring);
	errno = -rc;
	return NULL;
}

void
pc_ring_free(struct pc_ring *ring)
{
	free(ring);
}

/* Index of the first point >= h, or n_points when h is above them all. */
static size_t
lower_bound(const struct pc_ring *ring, uint64_t h)
{
	size_t lo = 0;
	size_t hi = ring->n_points;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ring->point_hash[mid] < h) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return lo;
}

static bool
has_node(const unsigned int *owners, unsigned int n, unsigned int node)
{
	for (unsigned int i = 0; i < n; i++) {
		if (owners[i] == node) {
			return true;
		}
	}
	return false;
}

unsigned int
pc_ring_owners(const struct pc_ring *ring, uint64_t key_hash, unsigned int want,
	       unsigned int *owners)
{
	unsigned int n = 0;
	size_t k;

	if (ring == NULL || ring->n_points == 0) {
		return 0;
	}
	want = PC_MIN(want, ring->n_nodes);
	k = lower_bound(ring, key_hash);
	/*
	 * Every node has a point, so one lap finds `want` distinct nodes; the lap
	 * bound only keeps the loop finite.
	 */
	for (size_t step = 0; step < ring->n_points && n < want; step++) {
		if (k == ring->n_points) {
			k = 0;
		}
		if (!has_node(owners, n, ring->point_node[k])) {
			owners[n++] = ring->point_node[k];
		}
		k++;
	}
	return n;
}

unsigned int
pc_ring_node_count(const struct pc_ring *ring)
{
	return ring == NULL ? 0 : ring->n_nodes;
}

const char *
pc_ring_node_id(const struct pc_ring *ring, unsigned int index)
{
	if (ring == NULL || index >= ring->n_nodes) {
		return NULL;
	}
	return ring->ids[index];
}

int
pc_ring_index_of(const struct pc_ring *ring, const char *node_id)
{
	unsigned int lo = 0;
	unsigned int hi;

	if (ring == NULL || node_id == NULL) {
		return -EINVAL;
	}
	hi = ring->n_nodes;
	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;
		int c = strcmp(ring->ids[mid], node_id);

		if (c == 0) {
			return (int)mid;
		}
		if (c < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return -ENOENT;
}

int
pc_ring_shares(const struct pc_ring *ring, double *out, unsigned int max)
{
	if (ring == NULL || ring->n_nodes == 0) {
		return 0;
	}
	if (out == NULL || max < ring->n_nodes) {
		return -ENOBUFS;
	}
	for (unsigned int i = 0; i < ring->n_nodes; i++) {
		out[i] = 0.0;
	}
	if (ring->n_points == 1) {
		out[ring->point_node[0]] = 1.0; /* the one arc is the whole ring */
		return (int)ring->n_nodes;
	}
	for (size_t k = 0; k < ring->n_points; k++) {
		/* Point k owns the arc after the previous point, up to and including itself. */
		uint64_t prev = ring->point_hash[k == 0 ? ring->n_points - 1 : k - 1];

		out[ring->point_node[k]] +=
			(double)(ring->point_hash[k] - prev) / 18446744073709551616.0;
	}
	return (int)ring->n_nodes;
}

bool
pc_ring_owners_changed(const struct pc_ring *old_ring, const struct pc_ring *new_ring,
		       uint64_t key_hash, unsigned int replicas)
{
	unsigned int old_owners[PC_RING_REPLICAS_MAX];
	unsigned int new_owners[PC_RING_REPLICAS_MAX];
	unsigned int n_old;
	unsigned int n_new;

	replicas = PC_MIN(replicas, PC_RING_REPLICAS_MAX);
	n_old = pc_ring_owners(old_ring, key_hash, replicas, old_owners);
	n_new = pc_ring_owners(new_ring, key_hash, replicas, new_owners);
	if (n_old != n_new) {
		return true;
	}
	/*
	 * Indices differ between rings (a join shifts them), so compare ids. Both
	 * sides are sets of the same size: old within new means equal.
	 */
	for (unsigned int i = 0; i < n_old; i++) {
		const char *id = old_ring->ids[old_owners[i]];
		bool found = false;

		for (unsigned int j = 0; j < n_new && !found; j++) {
			found = strcmp(id, new_ring->ids[new_owners[j]]) == 0;
		}
		if (!found) {
			return true;
		}
	}
	return false;
}
