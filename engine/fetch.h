/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Remote GET and EXISTS: one lcore's reads of pages that other nodes hold.
 *
 * A GET that missed in the local store comes here with its missing keys:
 *
 *   1. the directory is asked where they are (one lookup for the batch,
 *      through the lookup hook: the engine's is dirq.h, a message to the
 *      control lcore and back);
 *   2. each key found on another live node gets a landing slot in the local
 *      segment (pc_store_stage) and one READ of header + payload from the
 *      owner (its segment offset and the generation the directory named);
 *      READs to one peer are posted together, on this lcore's transport;
 *   3. each landed page is checked (pc_page_check: magic, key digest,
 *      generation, length, payload CRC32C when verify_crc) before anyone
 *      sees it. A stale location (the owner has another page there now, or
 *      none) or a page that fails the check is a miss for that location:
 *      the stale hook is told (the engine repairs the directory), and the
 *      key's next location, if the directory gave another live one, is
 *      tried while the deadline allows. A dead owner costs a miss within
 *      the deadline, never a hang: the transport fails its READs then.
 *
 * The callback then gets, per key, a landing slot holding the checked page
 * (the client copies out of it; the caller gives it back with
 * pc_store_unstage) or a miss. EXISTS asks the directory only: a key is
 * present when it has a location on a live node other than this one.
 *
 * Threads: one struct pc_fetch per lcore (a worker, or the control lcore
 * when it runs the workers' pollers), with that lcore's store cache index
 * and transport; everything here runs on that lcore, callbacks included,
 * never from inside pc_fetch_get()/pc_fetch_exists().
 */
#ifndef PC_FETCH_H
#define PC_FETCH_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster.h"
#include "store.h"
#include "transport.h"

struct pc_fetch;

/*
 * Start a directory lookup of n keys; cb(cb_arg, results, n) must run later
 * on this lcore, exactly once, when the call returned 0. Returns 0 or
 * -errno (nothing started). The engine's is pc_dirq_lookup().
 */
typedef int (*pc_fetch_lookup_fn)(void *arg, const struct pc_dir_key *keys, unsigned int n,
				  uint64_t timeout_ns, pc_cluster_lookup_fn cb, void *cb_arg);

/* A location turned out stale (key as published: ns '\0' key). Runs on this lcore. */
typedef void (*pc_fetch_stale_fn)(void *arg, const void *key, uint32_t key_len,
				  const struct pc_dir_loc *loc);

struct pc_fetch_opts {
	struct pc_store *store; /* landing slots; the segment READs land in */
	unsigned int ci;        /* this lcore's store cache index */
	const struct pc_xport_ops *xops;
	struct pc_xport *xport; /* this lcore's; pc_fetch_poll() polls it */
	const char *self_id;    /* this node's id: its own locations are never read */
	bool verify_crc;        /* check the payload CRC32C of pages that carry one */
	uint64_t timeout_ns;    /* deadline of a request that gives none; 0 = 5 s */
	/*
	 * Longest a READ may be in flight (0 = the request's deadline). For
	 * one-sided READs the owner cannot pin the page: keep this under the
	 * owners' page_quarantine, so a slot freed during a READ is never
	 * reused before the READ is over (or its channel destroyed).
	 */
	uint64_t read_timeout_ns;
	pc_fetch_lookup_fn lookup; /* required */
	void *lookup_arg;
	pc_fetch_stale_fn stale; /* may be NULL */
	void *stale_arg;
};

/* Per key. On rc 0 (GET) the caller owns `staged` and gives it back with pc_store_unstage(). */
struct pc_fetch_result {
	int rc; /* 0; -ENOENT (miss anywhere); -ETIMEDOUT; -ENOSPC (no landing slot) */
	struct pc_store_loc staged; /* GET: the landing slot (off: header; len: payload bytes) */
	uint64_t generation;        /* GET: the owner's generation, in the landed header */
};

/* res is the caller's to read and move staged slots out of, during the call only. */
typedef void (*pc_fetch_done_fn)(void *arg, uint64_t tag, struct pc_fetch_result *res,
				 unsigned int n);

struct pc_fetch_stats {
	uint64_t requests;      /* GET batches that came here */
	uint64_t keys;          /* keys in them */
	uint64_t hits;          /* pages landed and checked */
	uint64_t misses;        /* keys no live node had */
	uint64_t stale;         /* locations found stale (owner said so, or the header did) */
	uint64_t bad_pages;     /* landed pages that failed their check (not stale) */
	uint64_t peer_errors;   /* READs failed by the transport (peer gone, refused, ...) */
	uint64_t timeouts;      /* keys that ran out of time */
	uint64_t no_space;      /* keys with no landing slot */
	uint64_t retries;       /* keys tried again at their next location */
	uint64_t bytes;         /* payload bytes landed */
	uint64_t exists;        /* EXISTS batches */
	uint64_t exists_keys;   /* keys asked */
	uint64_t exists_found;  /* keys with a live remote location */
	uint64_t lookup_failed; /* keys whose lookup failed (no owner answered, timeout) */
	uint64_t in_flight;     /* requests now */
};

/* Returns NULL (errno set) on bad options or no memory. */
struct pc_fetch *pc_fetch_create(const struct pc_fetch_opts *o);

/*
 * Free everything; landing slots still held here are given back; pending
 * callbacks never run. Only when nothing will deliver a lookup any more
 * (the lcores have stopped), and with the transport destroyed right after,
 * never polled again (a READ in flight would land in a freed slot).
 * Accepts NULL.
 */
void pc_fetch_destroy(struct pc_fetch *f);

/*
 * Read keys[0..n) (1..PC_REQ_MAX_KEYS) from the nodes that hold them, by
 * deadline_ns (monotonic; 0 = now + timeout). cb(arg, tag, res, n) runs
 * once, later, on this lcore. Returns 0, or -EINVAL (n out of range), or
 * -ENOMEM / the lookup hook's error: then cb never runs.
 */
int pc_fetch_get(struct pc_fetch *f, const struct pc_store_key *const keys[], unsigned int n,
		 uint64_t deadline_ns, uint64_t now_ns, pc_fetch_done_fn cb, void *arg,
		 uint64_t tag);

/*
 * As pc_fetch_get, asking only whether another live node holds each key:
 * rc 0, -ENOENT, or -ETIMEDOUT (the directory did not answer in time).
 */
int pc_fetch_exists(struct pc_fetch *f, const struct pc_store_key *const keys[], unsigned int n,
		    uint64_t deadline_ns, uint64_t now_ns, pc_fetch_done_fn cb, void *arg,
		    uint64_t tag);

/*
 * One pass: the transport's I/O (reading and serving), completions checked
 * and handed out, READs waiting for a channel posted, deadlines enforced.
 * Returns the work done (0 = idle).
 */
int pc_fetch_poll(struct pc_fetch *f, uint64_t now_ns);

/* Whether a GET or EXISTS is in flight (looking up, reading, or waiting to post). */
bool pc_fetch_active(const struct pc_fetch *f);

/* Counters. This lcore, or any thread for a slightly stale copy. */
void pc_fetch_get_stats(const struct pc_fetch *f, struct pc_fetch_stats *st);

#endif /* PC_FETCH_H */
