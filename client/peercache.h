/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libpeercache: the C client of a node's PeerCache engine.
 *
 * A client connects to the engine's Unix socket (`engine_socket`), maps the
 * node's published segment and a per-session region of request slots and
 * rings, and moves pages with one memcpy each: SET copies from the caller's
 * buffers into freshly allocated published pages, GET copies published pages
 * into the caller's buffers. A page's payload may be scattered over several
 * caller buffers (SGLang's get_page_buffer_meta gives 2 or 2*L per page):
 * the segments are packed in order.
 *
 * Keys are strings (up to PC_CLIENT_KEY_MAX bytes), namespaced by the
 * namespace given at connect: two namespaces never see each other's pages.
 *
 * Every function is thread-safe on one client (SGLang calls from three
 * threads at once) and never blocks longer than the client's timeout. If
 * the engine dies, calls return -ENOTCONN (or -ETIMEDOUT) instead of
 * crashing, and the next call reconnects. Return values are 0/counts or
 * -errno; per-key results are 0, PC_CLIENT_DEDUP or -errno.
 */
#ifndef PEERCACHE_H
#define PEERCACHE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PC_CLIENT_KEY_MAX   128 /* bytes per key */
#define PC_CLIENT_NS_MAX    128 /* bytes of namespace */
#define PC_CLIENT_BATCH_MAX 128 /* keys per engine request; larger batches are split */
#define PC_CLIENT_DEDUP     1   /* per-key SET result: already stored (a success) */

struct pc_client;

/* One piece of a page's payload in the caller's memory. */
struct pc_iov {
	void *base;
	size_t len;
};

struct pc_client_stats {
	uint64_t segment_size;
	uint64_t bytes_used;
	uint64_t pages;
	uint64_t sets;
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
	uint64_t quarantined;
	uint64_t pinned;
	uint64_t sessions;
	uint64_t bad_requests;
	/* client side */
	uint64_t reconnects;
	uint64_t timeouts;
	/* engine side: of get_hits, the pages read from other nodes, and their bytes */
	uint64_t remote_hits;
	uint64_t remote_bytes;
};

/*
 * Connect to the engine at socket_path (NULL: $PEERCACHE_SOCKET, else
 * "/tmp/peercache/engine.sock") with key namespace ns (NULL or "" allowed)
 * and a per-call timeout in ms (0: 5000). Returns the client, or NULL with
 * *err (if err is not NULL) set to -errno: -ENOENT/-ECONNREFUSED (no engine),
 * -EPROTO (refused hello: version, namespace), -ENAMETOOLONG, -ETIMEDOUT.
 */
struct pc_client *pc_client_connect(const char *socket_path, const char *ns,
				    unsigned int timeout_ms, int *err);

/* Disconnect and free. Calls in progress on other threads must have returned. */
void pc_client_close(struct pc_client *c);

/* Set the per-call timeout in ms (> 0). */
void pc_client_set_timeout(struct pc_client *c, unsigned int timeout_ms);

/*
 * Store n pages. Page i is key keys[i] (NUL-terminated) with payload the
 * concatenation of niov[i] segments taken in order from iov[] (page 0's
 * segments first, then page 1's, ...). prefix_depth is the number of pages
 * in the chain before keys[0] (SGLang's len(prefix_keys)); key i is at depth
 * prefix_depth + i. results[i]: 0 stored, PC_CLIENT_DEDUP already stored,
 * -ENOSPC no room, -EMSGSIZE bad size, -EINVAL bad key, -ENOTCONN/-ETIMEDOUT.
 * Returns the number of pages stored or already present, or -errno when
 * the whole call failed (then every results[i] holds it too).
 */
int pc_client_batch_set(struct pc_client *c, unsigned int n, const char *const keys[],
			const struct pc_iov iov[], const unsigned int niov[], uint32_t prefix_depth,
			int results[]);

/*
 * Fetch n pages into the caller's segments (same layout as batch_set). A
 * hit fills the segments exactly: the page's length must equal the sum of
 * its segments, else -EMSGSIZE and nothing is claimed. results[i]: 0 hit,
 * -ENOENT miss, -EMSGSIZE, -EBADMSG (failed check), -ENOTCONN/-ETIMEDOUT.
 * Returns the number of hits, or -errno when the whole call failed.
 */
int pc_client_batch_get(struct pc_client *c, unsigned int n, const char *const keys[],
			const struct pc_iov iov[], const unsigned int niov[], int results[]);

/*
 * Which of n keys are stored: present[i] (may be NULL) = 1 or 0. Returns the
 * number of leading keys present (SGLang's batch_exists), or -errno.
 */
int pc_client_batch_exists(struct pc_client *c, unsigned int n, const char *const keys[],
			   uint8_t present[]);

/* Delete n keys; results[i] (may be NULL) 0 or -ENOENT. Returns the number deleted or -errno. */
int pc_client_delete(struct pc_client *c, unsigned int n, const char *const keys[], int results[]);

/* Delete every page of this client's namespace. Returns the number deleted or -errno. */
long pc_client_clear(struct pc_client *c);

/* Engine and client counters. Returns 0 or -errno. */
int pc_client_stats(struct pc_client *c, struct pc_client_stats *stats);

/* One empty round trip through the engine (for benchmarks). Returns 0 or -errno. */
int pc_client_ping(struct pc_client *c);

/* The library's version string. */
const char *pc_client_version(void);

#ifdef __cplusplus
}
#endif

#endif /* PEERCACHE_H */
