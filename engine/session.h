/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Client sessions: the engine side of common/pc_session_proto.h.
 *
 * The control lcore owns the Unix socket at `engine_socket`: it accepts
 * clients, answers their hello with the segment and a fresh session region
 * (SCM_RIGHTS), hands each session to the worker lcore with the fewest
 * sessions, and notices a client's death when its socket hangs up. The
 * owning worker polls the session's submission ring every pass, runs the
 * requests against the page store, and posts completions; it alone touches
 * the session's engine-private state. A session is freed in three steps
 * (control: hang-up seen -> worker: pages released, session dropped ->
 * control: unmapped and freed), so nothing is freed under a lcore still
 * using it. A connection whose first message starts with PC_ADMIN_MAGIC
 * (peercache-ctl) is not a session: it goes to the admin hook, if one is set.
 *
 * Everything a client writes into its region is untrusted: each field is
 * read once, bounds-checked, and used from the engine's copy. The pages a
 * request allocated or pinned are remembered in engine memory, never taken
 * back from the region.
 */
#ifndef PC_SESSION_H
#define PC_SESSION_H

#include <stdint.h>

#include "config.h"
#include "lcore.h"
#include "store.h"

struct pc_sessions;

struct pc_sessions_stats {
	uint64_t open;          /* sessions open now */
	uint64_t opened;        /* ever */
	uint64_t closed;        /* ever */
	uint64_t hello_refused; /* bad version, namespace, no room */
	uint64_t accept_failed; /* accepts failed for lack of fds or memory (then paused) */
	uint64_t requests;      /* requests completed */
	uint64_t bad_requests;  /* requests failed as malformed, or dropped */
	uint64_t expired_holds; /* allocations or pins released by their lease */
	uint64_t parked;        /* SET allocations retried for lack of memory */
	uint64_t remote_waits;  /* GETs and EXISTS whose local misses went to other nodes */
};

/*
 * Bind the socket (its directory is created; a stale socket file is
 * replaced, a live engine's is not), and register the control poller and
 * one poller per worker lcore. st may be NULL (a discovery-only engine, role
 * meta): then every session hello is refused with -ENOTSUP and no worker
 * poller is registered; admin connections (pc_sessions_set_admin) still
 * work. Control lcore, before pc_runtime_launch(). Returns NULL and logs on
 * failure (socket in use, path too long, no memory).
 */
struct pc_sessions *pc_sessions_create(const struct pc_config *cfg, struct pc_runtime *rt,
				       struct pc_store *st);

/*
 * Close every session (their pages are released) and the socket, and
 * remove the socket file. Control lcore, after pc_runtime_wait(). Accepts
 * NULL.
 */
void pc_sessions_destroy(struct pc_sessions *ss);

/*
 * Takes an admin connection (common/pc_admin_proto.h): fd is the accepted,
 * non-blocking socket, with the first request still queued on it (session.c
 * only peeks at its magic). The callee owns fd from then on and must close
 * it, whatever happens.
 */
typedef void (*pc_sessions_admin_fn)(void *arg, int fd);

/*
 * Hand connections whose first message starts with PC_ADMIN_MAGIC to fn
 * (NULL: such a message is refused like any bad hello). Control lcore.
 */
void pc_sessions_set_admin(struct pc_sessions *ss, pc_sessions_admin_fn fn, void *arg);

struct pc_fetch;

/*
 * Give worker `worker` (0..workers-1) its remote reader (fetch.h, created
 * for that worker's lcore and cache index): from then on a GET or EXISTS
 * with keys missing here asks the cluster for them, and completes when the
 * other nodes answered (or the deadline came). NULL: local pages only.
 * Control lcore, before pc_runtime_launch().
 */
void pc_sessions_set_fetch(struct pc_sessions *ss, unsigned int worker, struct pc_fetch *f);

/* Counters summed over lcores. Any thread; values may be slightly stale. */
void pc_sessions_get_stats(const struct pc_sessions *ss, struct pc_sessions_stats *stats);

#endif /* PC_SESSION_H */
