/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Discovery: who is in the cluster. This is the membership logic only, no
 * sockets: the RPC layer carries the messages, this module decides what they
 * mean and what to send next. Time is passed in as CLOCK_MONOTONIC
 * nanoseconds (never the wall clock, so a clock jump expires nothing).
 *
 * Every engine runs a discovery MASTER (struct pc_disc_master) on its meta
 * port: a soft-state table of member records, each refreshed by heartbeats
 * and pruned after member_ttl of silence. Masters do not talk to each other.
 *
 * Every engine is also a discovery NODE (struct pc_disc_node): it registers
 * with, heartbeats to and fetches the member list from every target, and
 * takes the union of what the masters say. Targets are the master set plus
 * the seeds of discovery_addr:
 *
 *   master set = the head (the first seed, pinned, even when it is down or
 *                not a member), then the live members that run a master
 *                (meta_port != 0), in host order, up to max_masters in all.
 *                Host order compares hostnames as IP addresses when both are
 *                literals (10.0.0.9 < 10.0.0.10; IPv4 before IPv6), literals
 *                before names, names bytewise; ties by node id, then control
 *                endpoint. Members sharing a meta endpoint count once. The set
 *                is a pure function of the member list and the head, so every
 *                node that sees the same members picks the same masters; a
 *                dead master is pruned from the lists within member_ttl and
 *                the next host is promoted.
 *   union      = a member is present while at least one master whose view
 *                counts lists it with the newest incarnation seen for its id;
 *                when no master lists it any more it leaves. A view counts
 *                while its master is reachable; when every master is
 *                unreachable the last membership is kept (cached reads go on)
 *                until some master answers again.
 *
 * Incarnations fence restarts: a record carries the incarnation of the
 * process that sent it (new each start, increasing). A newer incarnation
 * replaces an older one (the node restarted); a message with an older one
 * is rejected and counted. A removed member leaves a fence {id, incarnation}
 * for PC_DISC_FENCE_TTLS x member_ttl, so a paused process's late messages
 * cannot bring back an incarnation that has already been replaced.
 *
 * Threads: a master or a node belongs to the control lcore that created it
 * and only that lcore calls into it. Event callbacks run inside the call
 * that caused them and must not call back into the same object. Nothing here
 * logs and nothing here needs DPDK; errors are -errno.
 */
#ifndef PC_DISCOVERY_H
#define PC_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for a node id and its NUL: 1..63 bytes of [A-Za-z0-9._-] (as ring.h). */
#define PC_DISC_NODE_ID_MAX 64
/* Room for a host name or address and its NUL. */
#define PC_DISC_HOST_MAX 256
/* Most members a table holds (the ring's own bound). */
#define PC_DISC_MEMBERS_MAX 4096
/* Most seeds in discovery_addr. */
#define PC_DISC_SEEDS_MAX 16
/* Most masters (the max_masters config bound). */
#define PC_DISC_MASTERS_MAX 64
/* A target is unreachable after this many failures in a row (or member_ttl without an answer). */
#define PC_DISC_FAILS_MAX 3
/* A removed member's fence lives this many member_ttl. */
#define PC_DISC_FENCE_TTLS 10

/* The wire's numbering (frame.h's enum pc_frame_role). */
enum pc_disc_role {
	PC_DISC_ROLE_INFERENCE = 0,
	PC_DISC_ROLE_STORAGE = 1,
	PC_DISC_ROLE_META = 2, /* a dedicated discovery host: no pool */
};

/* Role masks for pc_disc_node_member_ids(). */
#define PC_DISC_ROLE_BIT(r) (1u << (r))
#define PC_DISC_ROLES_ALL   (~0u)

/* Member flags (reserved for the wire; carried, not interpreted here). */
#define PC_DISC_F_DISK 0x1u /* the node has a disk tier */

struct pc_disc_endpoint {
	char host[PC_DISC_HOST_MAX]; /* IP literal or name, IPv6 without brackets */
	uint16_t port;
};

/* One member as masters store and list it. node_id comes first (the tables rely on it). */
struct pc_disc_member {
	char node_id[PC_DISC_NODE_ID_MAX];
	uint64_t incarnation; /* nonzero; larger = later start of the same node id */
	enum pc_disc_role role;
	uint32_t flags;
	char hostname[PC_DISC_HOST_MAX]; /* advertised address (local_hostname) */
	struct pc_disc_endpoint control; /* control RPC */
	struct pc_disc_endpoint data;    /* data plane; port 0 = no pool */
	uint16_t meta_port;              /* discovery master on hostname:meta_port; 0 = none */
	uint64_t pool_capacity;          /* bytes */
	uint64_t pool_used;              /* bytes */
	uint64_t last_seen_ns;           /* local monotonic time; never sent */
};

enum pc_disc_event_type {
	PC_DISC_EV_JOINED,      /* member: the new record */
	PC_DISC_EV_LEFT,        /* member: the record that left */
	PC_DISC_EV_RESTARTED,   /* node only: member is the new record, old_incarnation the old */
	PC_DISC_EV_SET_CHANGED, /* node only: the set of node ids changed; rebuild the ring */
	PC_DISC_EV_MASTERS_CHANGED, /* node only: the master set changed */
};

struct pc_disc_event {
	enum pc_disc_event_type type;
	const struct pc_disc_member
		*member;          /* valid during the callback only; NULL for set events */
	uint64_t old_incarnation; /* RESTARTED */
	uint64_t epoch;           /* master: its epoch after the change; node: the set generation */
};

/* Called for every change, inside the call that made it. Must not re-enter the object. */
typedef void (*pc_disc_event_cb)(void *arg, const struct pc_disc_event *ev);

/*
 * Check a record as it arrives from the wire: node id 1..63 bytes of
 * [A-Za-z0-9._-], incarnation nonzero, a known role, NUL-terminated non-empty
 * hostname and control host, NUL-terminated data host, control port nonzero.
 * Returns 0 or -EINVAL. Any thread.
 */
int pc_disc_member_check(const struct pc_disc_member *m);

/*
 * Order two hosts as the master set does (IP literals numerically, IPv4
 * first, then names bytewise). Returns <0, 0, >0. Any thread.
 */
int pc_disc_host_cmp(const char *a, const char *b);

/*
 * The master set for `members` (n of them, any order, duplicates by node id
 * not allowed) and the pinned `head`: writes up to max_out endpoints to
 * out[], the head first, and returns how many (at most max_masters), or
 * -EINVAL (NULL head/out, max_masters 0 or above PC_DISC_MASTERS_MAX).
 * Deterministic: the same members in any order give the same result.
 * Any thread; no allocation; O(max_masters x n).
 */
int pc_disc_masters_compute(const struct pc_disc_endpoint *head,
			    const struct pc_disc_member *members, unsigned int n,
			    unsigned int max_masters, struct pc_disc_endpoint *out,
			    unsigned int max_out);

/* ---------------------------------------------------------------- master */

struct pc_disc_master;

struct pc_disc_master_stats {
	uint64_t joins;          /* new records accepted */
	uint64_t refreshes;      /* re-registrations of a known incarnation */
	uint64_t replaced;       /* a newer incarnation replaced an older one */
	uint64_t leaves;         /* deregistered */
	uint64_t pruned;         /* removed after member_ttl of silence */
	uint64_t heartbeats;     /* known heartbeats */
	uint64_t unknown;        /* heartbeats from nodes not in the table */
	uint64_t stale_rejected; /* registers and heartbeats with an older incarnation */
	uint64_t full;           /* registrations refused for lack of room */
	uint64_t invalid;        /* malformed records */
};

/*
 * Create a master for up to max_members members (1..PC_DISC_MEMBERS_MAX),
 * pruning after member_ttl_ns of silence. epoch_base is the first epoch:
 * give each master start a different one (its incarnation) so that a node
 * never mistakes a restarted master's table for the one it fetched before.
 * cb may be NULL. Returns NULL with errno EINVAL or ENOMEM. Control lcore.
 */
struct pc_disc_master *pc_disc_master_create(unsigned int max_members, uint64_t member_ttl_ns,
					     uint64_t epoch_base, pc_disc_event_cb cb,
					     void *cb_arg);

/* Free a master (NULL is fine). Control lcore. */
void pc_disc_master_destroy(struct pc_disc_master *m);

/*
 * A node registers (or re-registers) `rec` at `now_ns`. A new node id joins;
 * the same incarnation refreshes the record and its last_seen; a newer
 * incarnation replaces the old record (LEFT then JOINED). Returns 0 when
 * accepted, -ESTALE when a newer incarnation of that node id is known (live
 * or fenced; counted), -ENOSPC when the table is full, -EINVAL for a bad
 * record. Control lcore.
 */
int pc_disc_master_register(struct pc_disc_master *m, const struct pc_disc_member *rec,
			    uint64_t now_ns);

/*
 * A heartbeat from (node_id, incarnation). Returns 0 (known; last_seen is
 * now), -ENOENT (unknown, expired or a newer incarnation not yet
 * registered: the node must register), -ESTALE (an older incarnation than
 * the one known or fenced: rejected and counted), -EINVAL. Control lcore.
 */
int pc_disc_master_heartbeat(struct pc_disc_master *m, const char *node_id, uint64_t incarnation,
			     uint64_t now_ns);

/*
 * A node leaving cleanly: remove it now rather than after member_ttl.
 * Returns 0, -ENOENT (not a member), -ESTALE (another incarnation), -EINVAL.
 * Control lcore.
 */
int pc_disc_master_deregister(struct pc_disc_master *m, const char *node_id, uint64_t incarnation,
			      uint64_t now_ns);

/*
 * Remove members silent for more than member_ttl (silent exactly member_ttl
 * stays) and expired fences. Returns the number of members removed. Every
 * call above also expires the record it touches, so results do not depend
 * on how often this runs. Control lcore.
 */
unsigned int pc_disc_master_prune(struct pc_disc_master *m, uint64_t now_ns);

/*
 * Prune, then copy the members, sorted by node id, to out[] and the epoch
 * to *epoch (may be NULL). Returns the count, or -ENOBUFS when max is too
 * small (nothing written), -EINVAL. Control lcore.
 */
int pc_disc_master_list(struct pc_disc_master *m, uint64_t now_ns, struct pc_disc_member *out,
			unsigned int max, uint64_t *epoch);

/* Number of members (expired ones not yet pruned included). Control lcore. */
unsigned int pc_disc_master_count(const struct pc_disc_master *m);

/* The epoch: changes on every join, leave, replacement or record change. Control lcore. */
uint64_t pc_disc_master_epoch(const struct pc_disc_master *m);

/* A copy of the counters. Control lcore. */
void pc_disc_master_get_stats(const struct pc_disc_master *m, struct pc_disc_master_stats *out);

/* ------------------------------------------------------------------ node */

struct pc_disc_node;

struct pc_disc_node_params {
	const struct pc_disc_member *self; /* this engine's record (copied) */
	const char *discovery_addr;        /* "host:port[,host:port...]"; first = head */
	unsigned int max_masters;          /* 1..PC_DISC_MASTERS_MAX */
	unsigned int max_members;          /* 1..PC_DISC_MEMBERS_MAX, self included */
	uint64_t heartbeat_interval_ns;    /* > 0 */
	uint64_t member_ttl_ns;            /* > heartbeat_interval_ns */
	uint64_t request_timeout_ns;       /* no answer by then = failure; 0 = heartbeat interval */
	pc_disc_event_cb cb;               /* may be NULL */
	void *cb_arg;
};

enum pc_disc_action_type {
	PC_DISC_ACT_REGISTER,   /* send pc_disc_node_self(); reply: on_register */
	PC_DISC_ACT_HEARTBEAT,  /* send self's node id + incarnation; reply: on_heartbeat */
	PC_DISC_ACT_MEMBERS,    /* ask for the member list; reply: on_members */
	PC_DISC_ACT_DEREGISTER, /* from pc_disc_node_leave() only; no reply expected */
};

struct pc_disc_action {
	enum pc_disc_action_type type;
	struct pc_disc_endpoint to; /* a master's meta endpoint */
	uint64_t token;             /* hand back with the reply or the failure */
};

struct pc_disc_node_stats {
	uint64_t registers_sent;
	uint64_t heartbeats_sent;
	uint64_t members_sent;
	uint64_t failures;      /* failed or timed-out requests */
	uint64_t unreachable;   /* transitions of a target to unreachable */
	uint64_t rejected;      /* registrations refused (stale or full) */
	uint64_t reregisters;   /* heartbeats answered unknown/stale */
	uint64_t stale_replies; /* replies with an unknown or superseded token */
	uint64_t stale_records; /* listed records older than the known incarnation */
	uint64_t id_conflicts;  /* a master lists our node id with a newer incarnation */
	uint64_t bad_lists;     /* member lists refused (bad record, duplicate id, too long) */
	uint64_t full;          /* members dropped for lack of room */
	uint64_t pauses;        /* due() found this process silent for more than member_ttl */
};

/*
 * Create the node side. Parses discovery_addr (pc_config_parse_seeds);
 * every seed and the master set become targets, to register with at once.
 * The own record is always a member of the own view. Returns NULL with
 * errno EINVAL (bad params, bad record, bad seed list), E2BIG (more than
 * PC_DISC_SEEDS_MAX seeds) or ENOMEM. Control lcore.
 */
struct pc_disc_node *pc_disc_node_create(const struct pc_disc_node_params *p, uint64_t now_ns);

/* Free the node side (NULL is fine). Control lcore. */
void pc_disc_node_destroy(struct pc_disc_node *node);

/*
 * What to send now: writes up to max actions (a burst; the rest come on the
 * next call) and returns how many. Per target: REGISTER until registered
 * (retried every heartbeat interval), then HEARTBEAT every interval, and
 * MEMBERS when a heartbeat reports an epoch other than the one last
 * fetched. One request per target at a time; one with no answer after
 * request_timeout counts as a failure. If this process itself was silent
 * for more than member_ttl (SIGSTOP, a stalled lcore), every target is
 * assumed to have pruned it and gets a REGISTER. Cheap (O(targets)); call
 * it from the control poller. Control lcore.
 */
int pc_disc_node_due(struct pc_disc_node *node, uint64_t now_ns, struct pc_disc_action *actions,
		     unsigned int max);

/*
 * The reply to a REGISTER: status 0 (accepted; members/n/epoch are the
 * master's list), -ESTALE or -ENOSPC (refused: retried after an interval).
 * Returns 0, -ESTALE (token unknown or superseded: ignored), -EINVAL (bad
 * list: counted as the target's failure). Control lcore.
 */
int pc_disc_node_on_register(struct pc_disc_node *node, uint64_t token, uint64_t now_ns, int status,
			     uint64_t epoch, const struct pc_disc_member *members, unsigned int n);

/*
 * The reply to a HEARTBEAT: status 0 (known; epoch = the master's), -ENOENT
 * or -ESTALE (the master does not know this incarnation: register again at
 * once). Returns 0 or -ESTALE (token unknown: ignored). Control lcore.
 */
int pc_disc_node_on_heartbeat(struct pc_disc_node *node, uint64_t token, uint64_t now_ns,
			      int status, uint64_t epoch);

/*
 * The reply to MEMBERS: the master's list and epoch. Returns 0, -ESTALE
 * (token unknown: ignored) or -EINVAL (bad record, duplicate node id, more
 * than max_members: refused whole, counted as the target's failure).
 * Control lcore.
 */
int pc_disc_node_on_members(struct pc_disc_node *node, uint64_t token, uint64_t now_ns,
			    uint64_t epoch, const struct pc_disc_member *members, unsigned int n);

/*
 * A request failed (connect refused, reset, deadline): `err` is the
 * -errno, for the counters. After PC_DISC_FAILS_MAX failures in a row, or
 * member_ttl without any answer, the target is unreachable: its view stops
 * counting and it is registered with again when it answers. Returns 0 or
 * -ESTALE (token unknown). Control lcore.
 */
int pc_disc_node_on_failure(struct pc_disc_node *node, uint64_t token, uint64_t now_ns, int err);

/*
 * Leaving cleanly: writes a DEREGISTER for every reachable target (up to
 * max) and returns how many; afterwards due() returns nothing. Control lcore.
 */
int pc_disc_node_leave(struct pc_disc_node *node, struct pc_disc_action *actions, unsigned int max);

/* This engine's record as registered (the REGISTER payload). Control lcore. */
const struct pc_disc_member *pc_disc_node_self(const struct pc_disc_node *node);

/* Update the pool figures sent with the next REGISTER. Control lcore. */
void pc_disc_node_set_usage(struct pc_disc_node *node, uint64_t capacity, uint64_t used);

/*
 * The member ids whose role is in role_mask (PC_DISC_ROLES_ALL, or
 * PC_DISC_ROLE_BIT(PC_DISC_ROLE_STORAGE) for the data ring), sorted
 * bytewise, as pc_ring_build() takes them. The strings live until the next
 * call into the node. Returns the count, -ENOBUFS (max too small) or -EINVAL
 * (NULL node or ids).
 * Control lcore.
 */
int pc_disc_node_member_ids(const struct pc_disc_node *node, unsigned int role_mask,
			    const char **ids, unsigned int max);

/* Copy of the member record for node_id: 0, or -ENOENT. Control lcore. */
int pc_disc_node_member(const struct pc_disc_node *node, const char *node_id,
			struct pc_disc_member *out);

/* Number of members in the own view, self included. Control lcore. */
unsigned int pc_disc_node_member_count(const struct pc_disc_node *node);

/*
 * The set generation: incremented (and SET_CHANGED emitted) only when the
 * set of member ids changes, never for heartbeats or restarts. Control lcore.
 */
uint64_t pc_disc_node_set_gen(const struct pc_disc_node *node);

/*
 * Copy the master set (head first) to out[]. Returns the count, -ENOBUFS
 * (max too small) or -EINVAL. Control lcore.
 */
int pc_disc_node_masters(const struct pc_disc_node *node, struct pc_disc_endpoint *out,
			 unsigned int max);

/* Whether this engine's own hostname:meta_port is in the master set. Control lcore. */
bool pc_disc_node_is_master(const struct pc_disc_node *node);

/* A copy of the counters. Control lcore. */
void pc_disc_node_get_stats(const struct pc_disc_node *node, struct pc_disc_node_stats *out);

/* --------------------------------------------------------------- helpers */

/*
 * The node id to use: `configured` when non-empty (checked: -EINVAL if not
 * a valid id). Otherwise, when `dir` is non-NULL and non-empty (the disk
 * tier's disk_path), the id stored in dir/node_id, or a new one written
 * there atomically (temp file, fsync, rename, fsync of the folder; the
 * folder is created if missing) when the file is missing or does not hold a
 * valid id. Without a dir, a new id each call. New ids read
 * "<hostname>-<8 hex>" (hostname, or gethostname() when NULL, with bytes
 * outside [A-Za-z0-9._-] replaced by '-', cut to fit 63 bytes). len must be
 * at least PC_DISC_NODE_ID_MAX. Returns 0, -EINVAL, or -errno from the file
 * system. Control lcore, at start.
 */
int pc_disc_node_id_load_or_create(const char *dir, const char *configured, const char *hostname,
				   char *out, size_t len);

/*
 * A new incarnation: CLOCK_REALTIME nanoseconds with the low 16 bits from
 * getrandom(), so later starts compare larger. With a non-empty `dir`, it
 * is also above the one stored in dir/incarnation by the previous start
 * (written back atomically), so a wall clock set back between two starts
 * cannot make a restart look older. Never 0. Returns 0 or -errno.
 * Control lcore, at start.
 */
int pc_disc_incarnation_new(const char *dir, uint64_t *out);

/*
 * The local address to advertise (local_hostname "auto"): the source
 * address the kernel picks for a UDP connect() to the discovery head (the
 * first seed of `discovery_addr`; no packet is sent). A loopback head gives
 * 127.0.0.1 (or ::1). A head given by name is resolved with getaddrinfo(),
 * which may wait on DNS: call it at start only. Returns 0, -EINVAL (bad
 * list, len too small), -EHOSTUNREACH (cannot resolve or no route), or
 * -errno. Control lcore, at start.
 */
int pc_disc_resolve_local_host(const char *discovery_addr, char *out, size_t len);

#endif /* PC_DISCOVERY_H */
