/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The admin module: the engine's side of peercache-ctl
 * (common/pc_admin_proto.h). It answers `members`, `ring`, `lookup` and
 * `stats` requests on connections that the session server hands over
 * (pc_sessions_set_admin()), rendering the reply text itself (a human table
 * or JSON) so that the tool only prints it.
 *
 * Everything runs on the control lcore, in a poller the admin registers
 * there itself ("admin"), and never blocks it: sockets are non-blocking,
 * replies go out in PC_ADMIN_CHUNK_MAX parts with MSG_DONTWAIT, and a peer
 * that stops reading for PC_ADMIN_WRITE_US is dropped rather than waited
 * for. A connection that sends something undecodable gets an error reply
 * and is closed; one silent for PC_ADMIN_IDLE_US is closed; at most
 * PC_ADMIN_CONNS_MAX are served at once (the next gets an error reply).
 * A lookup keeps its connection until the cluster's callback; a connection
 * that closes meanwhile leaves the lookup to free itself when the callback
 * comes.
 */
#ifndef PC_ADMIN_H
#define PC_ADMIN_H

#include <stdint.h>

#include "config.h"
#include "lcore.h"

struct pc_admin;
struct pc_cluster;
struct pc_sessions;
struct pc_store;

#define PC_ADMIN_CONNS_MAX 16          /* admin connections served at once */
#define PC_ADMIN_IDLE_US   10000000u   /* a connection must send a request within this */
#define PC_ADMIN_WRITE_US  5000000u    /* a reply must make progress within this */
#define PC_ADMIN_POLL_US   500u        /* how often the connections are polled */
#define PC_ADMIN_REPLY_MAX (16u << 20) /* longest reply text */

#include "fetch.h"
#include "transport.h"

/* The data plane's counters, summed over the worker lcores. */
struct pc_admin_data_stats {
	struct pc_fetch_stats fetch; /* remote GET / EXISTS (this node reading) */
	struct pc_xport_stats xport; /* the transports: reading and serving */
	uint64_t qp_connects;        /* rdma channels this node asked peers for */
	uint64_t qp_failed;          /* of those, refused or unanswered */
	uint64_t qp_served;          /* rdma channels peers got from this node */
	uint64_t qp_refused;         /* peers' requests this node could not serve */
};

/* Fill *out (control lcore; the values may be slightly stale). */
typedef void (*pc_admin_data_fn)(void *arg, struct pc_admin_data_stats *out);

struct pc_admin_deps {
	const struct pc_config *cfg;  /* required; outlives the admin */
	struct pc_runtime *rt;        /* required: the poller goes on its control lcore */
	struct pc_sessions *sessions; /* NULL: nobody hands connections over (tests adopt) */
	struct pc_store *store;       /* NULL: no page pool (role meta) */
	struct pc_cluster *cluster;   /* NULL: members, ring and lookup answer "no cluster" */
	pc_admin_data_fn data_stats;  /* NULL: no data plane (role meta) */
	void *data_arg;
	const char *transport; /* the data plane's transport name ("tcp", "rdma") */
};

struct pc_admin_stats {
	uint64_t open;         /* connections open now */
	uint64_t accepted;     /* connections adopted, all time */
	uint64_t refused;      /* connections over PC_ADMIN_CONNS_MAX */
	uint64_t requests;     /* requests decoded */
	uint64_t bad_requests; /* undecodable requests (the connection was closed) */
	uint64_t errors;       /* requests answered with an error status */
	uint64_t timeouts;     /* connections closed for silence */
	uint64_t slow_closed;  /* connections dropped: the peer stopped reading its reply */
};

/*
 * Create the admin: register its poller ("admin") on the control lcore and,
 * when d->sessions is set, install pc_admin_adopt() as the session server's
 * admin hook (pc_sessions_set_admin()). Control lcore, before
 * pc_runtime_launch(), after the dependencies exist. Returns NULL and logs
 * on failure (no memory, a required dependency missing).
 */
struct pc_admin *pc_admin_create(const struct pc_admin_deps *d);

/*
 * Close every admin connection, remove the hook and the poller. Lookups
 * still in flight are left to free themselves when the cluster calls them
 * back (its poll or its destroy), so the cluster may be destroyed before or
 * after the admin; the sessions must still exist (the hook is removed from
 * them). Control lcore, after pc_runtime_wait(), first of the engine's
 * teardown. Accepts NULL.
 */
void pc_admin_destroy(struct pc_admin *a);

/*
 * Take an admin connection: fd is a connected SOCK_SEQPACKET socket (made
 * non-blocking here), its first request queued on it or still to come. The
 * admin owns fd from here on, whatever the result. Returns 0; -EUSERS when
 * PC_ADMIN_CONNS_MAX are open (an error reply was sent and fd closed);
 * -ENOMEM (fd closed). Control lcore. Its signature fits
 * pc_sessions_admin_fn through the hook pc_admin_create() installs.
 */
int pc_admin_adopt(struct pc_admin *a, int fd);

/* A copy of the counters. Control lcore. */
void pc_admin_get_stats(const struct pc_admin *a, struct pc_admin_stats *out);

#endif /* PC_ADMIN_H */
