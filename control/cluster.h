/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The cluster: this engine's part of the control plane, put together from
 * the pieces beside it (rpc, discovery, ring, directory) and run on the
 * control lcore.
 *
 *   - One RPC endpoint (rpc.h) listens on the meta port (the port of
 *     discovery_addr, on meta_bind_host) and on control_port (on
 *     control_bind_host). Requests are told apart by frame type, not port.
 *   - The discovery master (discovery.h) answers REGISTER, HEARTBEAT,
 *     MEMBERS and DEREGISTER when the meta port could be bound. When another
 *     engine on the same host already holds it, this engine runs without a
 *     master (meta_port 0 in its record) and says so in the log.
 *   - The discovery node drives REGISTER / HEARTBEAT / MEMBERS to every
 *     master and seed through the RPC client side, and rebuilds the ring
 *     when the member set changes.
 *   - The ring (ring.h) places directory entries on the members that hold
 *     a pool (roles inference and storage; a meta-only engine is not on
 *     it).
 *   - The directory shard (directory.h) answers DIR_* requests for the
 *     entries this node owns. Publishing a page sends a DIR_PUT to each of
 *     the key's `directory_replicas` owners (the local shard directly);
 *     lookups go to the first owner, and fall back to the next one when an
 *     owner fails, misses its deadline, or (while a re-shard may still be
 *     moving entries) does not have the key. After a ring change every node
 *     re-publishes, in bounded chunks, the entries of its shard whose owner
 *     set changed, then drops the ones it no longer owns. A reader that
 *     finds a location's page gone sends the owners a conditional
 *     DIR_DELETE_LOC naming that generation (pc_cluster_stale_loc()).
 *
 * Threads: everything here runs on the control lcore (the thread of the
 * first pc_cluster_poll()). Worker lcores reach it by message to that lcore
 * (the engine's glue, engine.c). Time is CLOCK_MONOTONIC nanoseconds,
 * passed in, so tests drive several clusters in one process.
 */
#ifndef PC_CLUSTER_H
#define PC_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "directory.h"
#include "discovery.h"
#include "qp_proto.h"
#include "ring.h"
#include "rpc.h"

struct pc_cluster;

struct pc_cluster_opts {
	enum pc_disc_role role;     /* PC_DISC_ROLE_META: discovery only, no directory */
	uint64_t pool_capacity;     /* bytes of the published segment (0 for meta) */
	uint16_t data_port;         /* advertised data-plane port, 0 = none yet */
	unsigned int shard_entries; /* directory shard capacity; 0 = from the pool size */
};

/*
 * Set up from the config: the node id (node_id, or persisted under
 * disk_path when the disk tier is on, else new), a new incarnation, the
 * advertised host (local_hostname, "auto" = the local address that reaches
 * the discovery head; a name is resolved now), the seeds (names resolved
 * now), the listeners (meta port, control port) and the discovery node.
 * Blocking name resolution happens here only. Returns NULL and logs a clear
 * error on failure (a port in use other than the shared meta port, a seed
 * that does not resolve, no memory).
 */
struct pc_cluster *pc_cluster_create(const struct pc_config *cfg, const struct pc_cluster_opts *o,
				     uint64_t now_ns);

/*
 * Leave cleanly (DEREGISTER to every reachable master, sent best-effort
 * with a short flush) and free everything. Accepts NULL. Control lcore.
 */
void pc_cluster_destroy(struct pc_cluster *c);

/*
 * Do what is due: RPC I/O, discovery actions, master pruning, ring
 * rebuild, publishing, re-shard chunks, lookup deadlines. Returns the
 * amount of work done (0: idle). Control lcore.
 */
int pc_cluster_poll(struct pc_cluster *c, uint64_t now_ns);

/* An fd readable when pc_cluster_poll() has RPC I/O to do (pc_lcore_wait_fd_add). */
int pc_cluster_wait_fd(const struct pc_cluster *c);

/* ---- publishing (the local store's pages) ---- */

/* One page this node holds. */
struct pc_cluster_pub {
	const void *key; /* the namespaced key (ns '\0' key), 1..PC_DIR_KEY_MAX bytes */
	uint32_t key_len;
	uint32_t length; /* payload bytes */
	uint64_t offset; /* segment offset of the page header */
	uint64_t generation;
};

/*
 * Queue directory puts for n pages (this node's id and incarnation, tier
 * memory). Keys are copied. Sent from pc_cluster_poll(), one DIR_PUT per
 * owner per chunk. Returns how many were queued (fewer when the queue is
 * full: the rest are counted as dropped; a dropped entry only costs a
 * remote miss). Control lcore.
 */
unsigned int pc_cluster_publish(struct pc_cluster *c, const struct pc_cluster_pub *p,
				unsigned int n);

/* Entries pc_cluster_publish() can queue now without dropping any. Control lcore. */
unsigned int pc_cluster_publish_room(const struct pc_cluster *c);

/*
 * How many times this node came back as a new incarnation after being
 * silent past member_ttl (every shard dropped its locations then). When it
 * changes, the owner of the pages publishes them all again. Control lcore.
 */
uint64_t pc_cluster_rejoins(const struct pc_cluster *c);

/*
 * Queue the removal of this node's location of each key, whatever its
 * generation (DIR_DELETE_LOC, generation 0). Control lcore.
 */
unsigned int pc_cluster_unpublish(struct pc_cluster *c, const struct pc_dir_key *keys,
				  unsigned int n);

/* ---- lookups ---- */

#define PC_CLUSTER_LOOKUP_MAX 1024 /* keys per pc_cluster_lookup() */

struct pc_cluster_lookup_result {
	int status; /* 0 found, -ENOENT miss, -EHOSTUNREACH no owner answered, -ETIMEDOUT */
	uint8_t n_locs;
	bool cached;                    /* answered from the read cache */
	char owner[PC_DIR_NODE_ID_MAX]; /* the owner that answered last ("" for the cache, none) */
	struct pc_dir_loc locs[PC_DIR_LOCS_MAX];
	/*
	 * locs[j]'s data endpoint from the member table when the lookup
	 * finished; port 0 when that node incarnation is not a member now
	 * (it left, died or restarted: the location is dead).
	 */
	struct pc_disc_endpoint data[PC_DIR_LOCS_MAX];
};

/* res[i] is keys[i]'s result; valid during the call only. */
typedef void (*pc_cluster_lookup_fn)(void *arg, const struct pc_cluster_lookup_result *res,
				     unsigned int n);

/*
 * Resolve n keys (1..PC_CLUSTER_LOOKUP_MAX; bytes copied) through the read
 * cache and the owners, one DIR_LOOKUP per owner per 128 keys, within
 * timeout_ns (0 = request_timeout). cb runs exactly once, from a later
 * pc_cluster_poll() (or pc_cluster_destroy(), every key -ECANCELED), never
 * from here. Returns 0; -EINVAL (n out of range, a bad key, cb NULL);
 * -EBUSY (too many lookups in flight); -ENOTSUP (a meta-only engine);
 * -ENOMEM. Control lcore.
 */
int pc_cluster_lookup(struct pc_cluster *c, const struct pc_dir_key *keys, unsigned int n,
		      uint64_t timeout_ns, pc_cluster_lookup_fn cb, void *arg);

/* A read through a cached location found nothing there: forget it. Control lcore. */
void pc_cluster_lookup_miss(struct pc_cluster *c, const void *key, uint32_t key_len);

/*
 * A read of the key's page at loc (as a lookup gave it) found no page of
 * loc->generation there: the slot was evicted or reused, and the owner's
 * own DIR_DELETE_LOC may have been lost. Forget the cached locations of the
 * key (pc_cluster_lookup_miss()) and queue, through the publish queue, a
 * DIR_DELETE_LOC {key, loc->node_id, loc->incarnation, loc->generation} to
 * every owner of the key (the local shard directly): each removes that
 * location only if it still has exactly that incarnation and generation,
 * so a location the node put since (another slot or generation) and other
 * nodes' locations stay. Counted in stale_repairs; a full queue counts in
 * publish_dropped (the location stays until its node's next delete or
 * departure). Nothing is queued for loc NULL, a generation of 0 (it would
 * mean any generation), a bad node id or key, or a meta-only engine.
 * Control lcore.
 */
void pc_cluster_stale_loc(struct pc_cluster *c, const void *key, uint32_t key_len,
			  const struct pc_dir_loc *loc);

/* ---- rdma handshakes (verbs/rdma.h) over the control RPC ---- */

/*
 * Passive side: node_id (a current member whose incarnation is
 * remote->incarnation: checked before the call) asks for an RC channel to
 * this node with its handshake record. Create and connect a QP, fill *reply
 * with this side's record (it comes in zeroed but for incarnation, this
 * node's) and return 0; or return -errno (-1..-4095; anything else is sent
 * as -EIO), sent back as the call's error. Runs inside pc_cluster_poll().
 */
typedef int (*pc_cluster_qp_fn)(void *arg, const char *node_id, const struct pc_qp_info *remote,
				struct pc_qp_info *reply);

/*
 * Set (fn NULL: clear) the QP_CONNECT handler. Without one, a QP_CONNECT is
 * answered with -ENOTSUP; a meta-only engine answers -ENOTSUP whatever is
 * set. A request from a node id that is not a member of this node's view is
 * answered -EHOSTUNREACH, one whose record names another incarnation than
 * the member's -ESTALE, neither reaching fn. Control lcore.
 */
void pc_cluster_set_qp_handler(struct pc_cluster *c, pc_cluster_qp_fn fn, void *arg);

/*
 * The end of a pc_cluster_qp_connect(): status 0 and the peer's record
 * (valid during the call only), or -errno and reply NULL.
 */
typedef void (*pc_cluster_qp_done_fn)(void *arg, int status, const struct pc_qp_info *reply);

/*
 * Active side: send `local` (this node's record: local->incarnation must be
 * this node's incarnation now) in a QP_CONNECT to member node_id, which must
 * be a member of this node's view now with that incarnation, at its control
 * endpoint. Checked at once: on any error returned here cb is never called.
 * Returns 0; -EINVAL (an argument NULL, a node id or record that does not
 * encode); -ESTALE (local->incarnation is not this node's: it rejoined as a
 * new one); -EHOSTUNREACH (node_id is not a member, or not with that
 * incarnation, or its control endpoint cannot be called); -ENOTSUP (a
 * meta-only engine); -EBUSY (PC_CLUSTER_QP_CALLS_MAX calls in flight, or
 * the peer's max_inflight); -ECANCELED (from a callback that
 * pc_cluster_destroy() runs); -ENOMEM.
 *
 * After 0, cb(arg, ...) runs exactly once, from a later pc_cluster_poll()
 * (or pc_cluster_destroy(), with -ECANCELED), never from here, with:
 *   0              the peer's record, decoded and checked
 *                  (pc_qp_info_decode()), its incarnation the one called
 *   the peer's error (-ENOTSUP: no handler or a meta-only engine;
 *                  -EHOSTUNREACH / -ESTALE: it does not know this node
 *                  incarnation (yet); the handler's own -errno)
 *   -ESTALE        the record names another incarnation than the one called
 *   -EPROTO        the reply (or its error body) did not decode
 *   -ETIMEDOUT     no reply within timeout_ns (0 = request_timeout)
 *   -EACCES        the control handshake failed (cluster_secret differs)
 *   -EHOSTUNREACH  the connection failed (refused, reset, not an engine)
 *   -ECANCELED     pc_cluster_destroy()
 * Counted in qp_calls and, for any status but 0, qp_failed (calls refused
 * here are not counted). Control lcore.
 */
#define PC_CLUSTER_QP_CALLS_MAX 256
int pc_cluster_qp_connect(struct pc_cluster *c, const char *node_id, uint64_t incarnation,
			  const struct pc_qp_info *local, uint64_t timeout_ns,
			  pc_cluster_qp_done_fn cb, void *arg);

/* ---- inspection (peercache-ctl) ---- */

struct pc_cluster_info {
	char node_id[PC_DISC_NODE_ID_MAX];
	uint64_t incarnation;
	enum pc_disc_role role;
	char host[PC_DISC_HOST_MAX]; /* advertised */
	uint16_t control_port;       /* bound */
	uint16_t meta_port;          /* bound; 0 = no master here */
	bool is_master;              /* in the master set now */
	uint64_t set_gen;            /* member set generation */
	unsigned int members;
	unsigned int ring_nodes;
	unsigned int vnodes;
	unsigned int replicas;
	bool resharding; /* a re-shard walk or its clean-up is under way */
};

struct pc_cluster_stats {
	struct pc_rpc_stats rpc;
	struct pc_disc_node_stats node;
	struct pc_disc_master_stats master; /* zeros without a master */
	struct pc_dir_shard_stats shard;    /* zeros for a meta-only engine */
	struct pc_dir_cache_stats cache;
	uint64_t ring_builds;
	uint64_t rejoins;            /* new incarnations after a silence past member_ttl */
	uint64_t reshards;           /* re-shard walks finished */
	uint64_t republished;        /* entries sent to new owners by re-shards */
	uint64_t recent_republished; /* own entries sent again after a ring change */
	uint64_t reshard_pruned;     /* entries dropped after a re-shard or a hand-off sweep */
	uint64_t handed_off;         /* entries a sweep sent on to their owners (stale routing) */
	uint64_t published;          /* pages queued by pc_cluster_publish() */
	uint64_t publish_dropped;    /* queue full */
	uint64_t publish_failed;     /* DIR_PUT entries an owner refused or never got */
	uint64_t unpublished;
	uint64_t stale_repairs; /* stale locations queued for removal (pc_cluster_stale_loc()) */
	uint64_t lookups;       /* keys looked up */
	uint64_t lookup_hits;
	uint64_t lookup_fallbacks; /* keys sent on to a next replica */
	uint64_t lookup_failed;    /* keys with no owner answering */
	uint64_t bad_requests;     /* requests refused: malformed body, wrong kind of engine */
	uint64_t qp_requests;      /* QP_CONNECT requests whose body decoded */
	uint64_t qp_served;        /* of those, answered with the handler's record */
	uint64_t qp_refused;       /* answered with an error (no handler, not a member, handler) */
	uint64_t qp_calls;         /* pc_cluster_qp_connect() calls accepted */
	uint64_t qp_failed;        /* of those, ended with an error */
};

/* The pool bytes in use, sent with the next REGISTER and heartbeat. Control lcore. */
void pc_cluster_set_usage(struct pc_cluster *c, uint64_t used);

/* Control lcore. */
void pc_cluster_get_info(const struct pc_cluster *c, struct pc_cluster_info *out);
void pc_cluster_get_stats(const struct pc_cluster *c, struct pc_cluster_stats *out);

/*
 * The members of this node's view, sorted by node id. Returns the count,
 * -ENOBUFS when max is too small. Control lcore.
 */
int pc_cluster_members(const struct pc_cluster *c, struct pc_disc_member *out, unsigned int max);

/* The master set, head first (pc_disc_node_masters()). Control lcore. */
int pc_cluster_masters(const struct pc_cluster *c, struct pc_disc_endpoint *out, unsigned int max);

/* The current ring (NULL before the first build); valid until the next pc_cluster_poll(). */
const struct pc_ring *pc_cluster_ring(const struct pc_cluster *c);

#endif /* PC_CLUSTER_H */
