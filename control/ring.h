/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The consistent-hash ring that places directory entries on nodes.
 *
 * Every node contributes `vnodes` points to a 64-bit ring; a key's owners are
 * the first `replicas` distinct nodes met walking clockwise from the key's
 * hash. Node ids are sorted before the points are made, and equal points are
 * ordered by node index, so every node that sees the same member set builds
 * the same ring, whatever order the members arrived in.
 *
 * Hash: BLAKE2b (libsodium crypto_generichash, no key) with a 16-byte digest
 * (libsodium's shortest), of which the first 8 bytes are read as a
 * little-endian u64. Node X's i-th point is the hash of the bytes "X#i" (i in
 * decimal, no NUL); a key's hash is the hash of the key's bytes. Node ids may
 * not contain '#', so no point of one node can be spelled by another.
 *
 * A ring is immutable once built: any number of lcores and threads may read
 * it at the same time without locks. Replacing the current ring (RCU or a
 * message to the readers) and freeing the old one after the last reader is
 * the caller's business. No DPDK and no logging here, so the module can be
 * tested and fuzzed on its own.
 */
#ifndef PC_RING_H
#define PC_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for a node id and its NUL: ids are 1..63 bytes of [A-Za-z0-9._-]. */
#define PC_RING_NODE_ID_MAX 64
/* Most members a ring takes (a cap before anything is sized from n_nodes). */
#define PC_RING_NODES_MAX 4096
/* Most points per node; the same bound as the `vnodes` config key. */
#define PC_RING_VNODES_MAX 4096
/* Most owners pc_ring_owners_changed() compares; directory_replicas' bound. */
#define PC_RING_REPLICAS_MAX 8

struct pc_ring;

/*
 * Build the ring of `n_nodes` members (`node_ids`, in any order) with
 * `vnodes` points each. The ids are copied. n_nodes 0 builds an empty ring
 * (it owns nothing). Any lcore or thread; it allocates, so keep it off the
 * datapath. Calls sodium_init() (idempotent, thread-safe).
 * Returns the ring, or NULL with errno set:
 *   EINVAL  node_ids NULL while n_nodes > 0, an id NULL, empty, longer than
 *           63 bytes or with a byte outside [A-Za-z0-9._-], an id given twice,
 *           vnodes 0 or above PC_RING_VNODES_MAX, n_nodes above
 *           PC_RING_NODES_MAX
 *   ENOMEM  out of memory
 *   EIO     libsodium failed to initialise
 */
struct pc_ring *pc_ring_build(const char *const *node_ids, unsigned int n_nodes,
			      unsigned int vnodes);

/* Free a ring. No reader may still hold it. Accepts NULL. */
void pc_ring_free(struct pc_ring *ring);

/*
 * The ring position of a key: BLAKE2b of its `len` bytes, as above. Any lcore
 * or thread, before or after sodium_init() (the result is the same).
 */
uint64_t pc_ring_hash(const void *key, size_t len);

/*
 * The owners of the key at `key_hash`: write up to `want` distinct node
 * indices to owners[], the primary first, walking clockwise from the first
 * point >= key_hash and wrapping past the top. Returns how many were written:
 * min(want, node count), so 0 for an empty or NULL ring. Any lcore, no
 * allocation; O(log points) plus the walk.
 */
unsigned int pc_ring_owners(const struct pc_ring *ring, uint64_t key_hash, unsigned int want,
			    unsigned int *owners);

/* Number of members (0 for NULL). Any lcore. */
unsigned int pc_ring_node_count(const struct pc_ring *ring);

/*
 * The id of node `index` (indices follow the ids' byte order, from 0), or
 * NULL when index is out of range. The string lives as long as the ring.
 * Any lcore.
 */
const char *pc_ring_node_id(const struct pc_ring *ring, unsigned int index);

/*
 * The index of `node_id`, or -ENOENT when it is not a member, -EINVAL when
 * ring or node_id is NULL. Any lcore; O(log nodes).
 */
int pc_ring_index_of(const struct pc_ring *ring, const char *node_id);

/*
 * Each node's share of the hash space (0..1): the arcs ending at its points,
 * the keys it is the primary owner of. Writes out[0..n) for the n nodes
 * (they add up to 1) and returns n, or -ENOBUFS when max < n (nothing
 * written); 0 for a NULL or empty ring. Any lcore; one pass over the points.
 */
int pc_ring_shares(const struct pc_ring *ring, double *out, unsigned int max);

/*
 * Whether the set of owners (by node id, in any order) of the key at
 * `key_hash` differs between two rings; the re-shard step re-publishes only
 * the entries for which it does. A NULL ring counts as empty. `replicas` above
 * PC_RING_REPLICAS_MAX counts as PC_RING_REPLICAS_MAX. Any lcore, no
 * allocation.
 */
bool pc_ring_owners_changed(const struct pc_ring *old_ring, const struct pc_ring *new_ring,
			    uint64_t key_hash, unsigned int replicas);

#endif /* PC_RING_H */
