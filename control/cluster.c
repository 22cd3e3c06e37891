/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The cluster (cluster.h): the RPC endpoint, the discovery master and node,
 * the ring, the directory shard, publishing, lookups and re-sharding, all
 * on the control lcore.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "frame.h"
#include "pc_common.h"
#include "pc_log.h"

#define NS_PER_S  1000000000ull
#define NS_PER_MS 1000000ull

/* Discovery actions handled per poll pass. */
#define DISC_BURST 32
/* How often the master prunes silent members. */
#define MASTER_PRUNE_NS (100ull * NS_PER_MS)
/* Pages waiting to be published or unpublished. */
#define PUB_QUEUE_LEN 8192
/* Entries this node sent lately, sent again when the ring changes under them. */
#define RECENT_LEN 8192
/* Directory calls (publish and re-shard) in flight at once. */
#define PUB_INFLIGHT_MAX 64
/* Lookups in flight at once. */
#define LOOKUPS_MAX 256
/* Re-shard records collected per poll pass. */
#define RESHARD_CHUNK 64
/* Meta (discovery) peers kept at once; unused ones go after a while. */
#define META_PEERS_MAX (PC_DISC_MASTERS_MAX + PC_DISC_SEEDS_MAX)
/* Shard capacity bounds when derived from the pool size. */
#define SHARD_ENTRIES_MIN (1u << 16)
#define SHARD_ENTRIES_MAX (1u << 23)
/* The shortest share of a lookup's time a first owner gets before its replica is tried. */
#define LOOKUP_CALL_MIN_NS (1ull * NS_PER_MS)
/* How long leaving waits for the masters to take the DEREGISTER. */
#define LEAVE_FLUSH_NS (200ull * NS_PER_MS)

/* A ring and the RPC peers of its nodes (NULL for self), shared by the lookups using it. */
struct ring_ref {
	struct pc_ring *ring;
	struct pc_rpc_peer **peers;
	int self; /* this node's index, -1 when not on the ring */
	unsigned int refs;
};

struct meta_peer {
	struct pc_disc_endpoint ep;
	struct pc_rpc_peer *peer;
	uint64_t last_used_ns;
};

enum pub_kind {
	PUB_PUT,    /* this node's page: DIR_PUT */
	PUB_DEL,    /* this node's location, any generation: DIR_DELETE_LOC */
	PUB_REPAIR, /* node_id's location of that generation, a reader found stale: the same */
};

struct pub_entry {
	uint8_t kind; /* enum pub_kind */
	uint16_t key_len;
	uint32_t length;
	uint64_t offset;
	uint64_t generation;  /* PUB_DEL: 0 (any) */
	uint64_t incarnation; /* PUB_REPAIR only: the others are this node's, when sent */
	char node_id[PC_DIR_NODE_ID_MAX];
	uint8_t key[PC_DIR_KEY_MAX];
};

/* A discovery request in flight. */
struct disc_call {
	struct pc_cluster *c;
	enum pc_disc_action_type type;
	uint64_t token;
};

/* A publish, unpublish or re-shard call in flight. */
struct dir_call {
	struct pc_cluster *c;
	uint8_t type;   /* the frame type */
	bool reshard;   /* sent by the re-shard walk */
	unsigned int n; /* entries in it */
};

/* A QP_CONNECT in flight: freed by its RPC callback, which may run after cb (destroy). */
struct qp_call {
	struct pc_cluster *c;
	struct qp_call *next;
	struct qp_call **pprev;
	struct pc_rpc_peer *peer; /* this call's reference; NULL once put */
	pc_cluster_qp_done_fn cb;
	void *arg;
	uint64_t incarnation; /* the member's, which its record must carry */
	bool done;            /* cb has run */
};

struct lookup_op;

/* One DIR_LOOKUP in flight: which keys of the op went to which node. */
struct lookup_call {
	struct lookup_op *op;
	unsigned int node;
	unsigned int n;
	uint32_t idx[PC_FRAME_BATCH_MAX]; /* plan indices */
};

struct lookup_op {
	struct pc_cluster *c;
	struct lookup_op *next;
	struct ring_ref *rr;
	struct pc_dir_plan *plan;
	pc_cluster_lookup_fn cb;
	void *arg;
	uint64_t deadline_ns;
	unsigned int n;
	unsigned int remaining; /* keys without a final result */
	unsigned int calls;     /* calls in flight */
	bool started;
	bool finished;   /* cb has run; freed when calls reaches 0 */
	unsigned int pn; /* keys in the plan: those the cache did not answer */
	uint32_t *map;   /* plan index -> key index */
	uint64_t *hashes;
	struct pc_frame_key *keys;
	struct pc_cluster_lookup_result *res;
	bool *done;
	bool *missed;    /* per plan index: some owner said it does not have the key */
	uint32_t *retry; /* plan indices */
	unsigned int n_retry;
	uint32_t *failed; /* nodes whose calls failed, to route around */
	unsigned int n_failed;
	uint32_t *gkeys; /* the groups being sent, copied out of the plan */
	uint32_t *gnode;
	uint32_t *gstart;
	uint32_t *glen;
};

struct pc_cluster {
	const struct pc_config *cfg;
	struct pc_cluster_opts opts;
	uint64_t now_ns;
	struct pc_disc_member self;
	char discovery[PC_CONFIG_STR_MAX * 2]; /* discovery_addr with the seeds as literals */
	struct pc_rpc *rpc;
	struct pc_disc_master *master;
	struct pc_disc_node *node;
	struct pc_disc_node_params np;
	uint64_t last_poll_ns;
	uint64_t prune_ns;
	uint64_t request_timeout_ns;
	unsigned int replicas;

	/* The ring: current, and the one the shard was last settled on. */
	struct ring_ref *ring;
	struct ring_ref *settled;
	bool ring_dirty;
	uint64_t ring_changed_ns;

	struct pc_dir_shard *shard; /* NULL for a meta-only engine */
	struct pc_dir_cache *cache;

	/*
	 * Re-shard walk from settled to ring, then its prune; a while later, a
	 * sweep that hands off what stale rings sent here, then its prune.
	 */
	bool walking;
	bool pruning;
	bool sweeping;
	bool sweep_pending;
	uint64_t sweep_at;
	bool walk_failed;
	uint64_t cursor;
	struct pc_dir_record records[RESHARD_CHUNK];

	/* Publishing. */
	struct pub_entry *pubq;
	unsigned int pub_head;
	unsigned int pub_len;
	struct pub_entry *recent; /* a ring of the last RECENT_LEN entries sent */
	uint64_t *recent_ns;      /* when each was sent */
	unsigned int recent_next;
	unsigned int recent_len;
	unsigned int dir_inflight;
	unsigned int reshard_inflight; /* of which sent by the re-shard walk */

	/* Lookups: started ones, in arrival order. */
	struct lookup_op *ops;
	struct lookup_op **ops_tail;
	unsigned int n_ops;

	struct meta_peer meta[META_PEERS_MAX];
	unsigned int n_meta;

	/* rdma handshakes: the passive side's handler, the active side's calls. */
	pc_cluster_qp_fn qp_fn;
	void *qp_arg;
	struct qp_call *qps;
	unsigned int n_qps;
	bool closing; /* pc_cluster_destroy() is under way: no new calls */

	struct pc_cluster_stats st;

	/* Scratch for frames: never on the stack (the member lists are large). */
	uint8_t tx[PC_FRAME_MEMBERS_REPLY_MAX];
	struct pc_frame_member fmembers[PC_FRAME_MEMBERS_MAX];
	struct pc_disc_member dmembers[PC_FRAME_MEMBERS_MAX];
	struct pc_frame_put puts[PC_FRAME_BATCH_MAX];
	struct pc_frame_key fkeys[PC_FRAME_BATCH_MAX];
	struct pc_frame_delete_loc dlocs[PC_FRAME_BATCH_MAX];
	struct pc_frame_lookup lookups[PC_FRAME_BATCH_MAX];
	int32_t status[PC_FRAME_BATCH_MAX];
	bool present[PC_FRAME_BATCH_MAX];
	struct pc_dir_loc locs[PC_DIR_LOCS_MAX];
	const char *ids[PC_DISC_MEMBERS_MAX];
};

/* ------------------------------------------------------------ conversions */

static bool
is_ip_literal(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;

	return inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
}

static void
member_to_frame(const struct pc_disc_member *m, struct pc_frame_member *f)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->node_id, sizeof(f->node_id), "%s", m->node_id);
	f->incarnation = m->incarnation;
	f->role = (uint8_t)m->role;
	f->flags = m->meta_port != 0 ? PC_FRAME_MEMBER_F_MASTER : 0;
	f->ctrl_port = m->control.port;
	f->data_port = m->data.port;
	f->meta_port = m->meta_port;
	f->pool_capacity = m->pool_capacity;
	f->pool_used = m->pool_used;
	snprintf(f->hostname, sizeof(f->hostname), "%s", m->hostname);
	snprintf(f->ctrl_host, sizeof(f->ctrl_host), "%s", m->control.host);
	snprintf(f->data_host, sizeof(f->data_host), "%s", m->data.host);
}

static void
member_from_frame(const struct pc_frame_member *f, struct pc_disc_member *m)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->node_id, sizeof(m->node_id), "%s", f->node_id);
	m->incarnation = f->incarnation;
	m->role = (enum pc_disc_role)f->role;
	m->control.port = f->ctrl_port;
	m->data.port = f->data_port;
	m->meta_port = f->meta_port;
	m->pool_capacity = f->pool_capacity;
	m->pool_used = f->pool_used;
	snprintf(m->hostname, sizeof(m->hostname), "%s", f->hostname);
	snprintf(m->control.host, sizeof(m->control.host), "%s", f->ctrl_host);
	snprintf(m->data.host, sizeof(m->data.host), "%s", f->data_host);
}

static void
loc_to_frame(const struct pc_dir_loc *d, struct pc_frame_location *f)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->node_id, sizeof(f->node_id), "%s", d->node_id);
	f->incarnation = d->incarnation;
	f->offset = d->offset;
	f->generation = d->generation;
	f->length = d->length;
	f->rkey = d->rkey;
	f->tier = d->tier;
}

static void
loc_from_frame(const struct pc_frame_location *f, struct pc_dir_loc *d)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->node_id, sizeof(d->node_id), "%s", f->node_id);
	d->incarnation = f->incarnation;
	d->offset = f->offset;
	d->generation = f->generation;
	d->length = f->length;
	d->rkey = f->rkey;
	d->tier = f->tier;
}

/* Members of the own view, sorted by node id. */
static int
view_members(const struct pc_cluster *c, struct pc_disc_member *out, unsigned int max)
{
	const char *ids[PC_DISC_MEMBERS_MAX];
	int n = pc_disc_node_member_ids(c->node, PC_DISC_ROLES_ALL, ids, PC_DISC_MEMBERS_MAX);

	if (n < 0) {
		return n;
	}
	if ((unsigned int)n > max) {
		return -ENOBUFS;
	}
	for (int i = 0; i < n; i++) {
		if (pc_disc_node_member(c->node, ids[i], &out[i]) != 0) {
			return -EIO;
		}
	}
	return n;
}

/* -------------------------------------------------------------- the ring */

static void
ring_ref_put(struct ring_ref *rr)
{
	unsigned int n;

	if (rr == NULL || --rr->refs > 0) {
		return;
	}
	n = pc_ring_node_count(rr->ring);
	for (unsigned int i = 0; i < n; i++) {
		pc_rpc_peer_put(rr->peers[i]);
	}
	free(rr->peers);
	pc_ring_free(rr->ring);
	free(rr);
}

/* The ring of the members that hold a pool, with a peer for each (control endpoint). */
static struct ring_ref *
ring_ref_build(struct pc_cluster *c)
{
	unsigned int mask =
		PC_DISC_ROLE_BIT(PC_DISC_ROLE_INFERENCE) | PC_DISC_ROLE_BIT(PC_DISC_ROLE_STORAGE);
	const char **ids = c->ids;
	struct ring_ref *rr;
	int n;

	n = pc_disc_node_member_ids(c->node, mask, ids, PC_DISC_MEMBERS_MAX);
	if (n < 0) {
		return NULL;
	}
	rr = calloc(1, sizeof(*rr));
	if (rr == NULL) {
		return NULL;
	}
	rr->refs = 1;
	rr->self = -1;
	rr->ring = pc_ring_build(ids, (unsigned int)n, (unsigned int)c->cfg->vnodes);
	rr->peers = calloc((size_t)n + 1, sizeof(struct pc_rpc_peer *));
	if (rr->ring == NULL || rr->peers == NULL) {
		pc_ring_free(rr->ring);
		free(rr->peers);
		free(rr);
		return NULL;
	}
	for (unsigned int i = 0; i < (unsigned int)n; i++) {
		const char *id = pc_ring_node_id(rr->ring, i);
		struct pc_disc_member m;

		if (strcmp(id, c->self.node_id) == 0) {
			rr->self = (int)i;
			continue;
		}
		if (pc_disc_node_member(c->node, id, &m) != 0) {
			continue;
		}
		rr->peers[i] = pc_rpc_peer_get(c->rpc, m.control.host, m.control.port);
		if (rr->peers[i] == NULL) {
			PC_LOG(WARNING, control,
			       "member %s advertises control endpoint %s:%u, which cannot be "
			       "called (an IP literal is needed): its directory shard is "
			       "unreachable",
			       id, m.control.host, m.control.port);
		}
	}
	return rr;
}

static void
start_walk(struct pc_cluster *c)
{
	if (c->shard == NULL) {
		return;
	}
	c->walking = true;
	c->pruning = false;
	c->sweeping = false;
	c->sweep_pending = false;
	c->walk_failed = false;
	c->cursor = 0;
}

/* How long members can take to agree on a ring after it changed. */
static uint64_t
settle_window(const struct pc_cluster *c)
{
	return c->np.member_ttl_ns + 2 * c->np.heartbeat_interval_ns + c->request_timeout_ns;
}

static void republish_recent(struct pc_cluster *c, const struct pc_ring *old_ring,
			     const struct pc_ring *new_ring);

static int
rebuild_ring(struct pc_cluster *c)
{
	struct ring_ref *rr = ring_ref_build(c);

	if (rr == NULL) {
		PC_LOG(ERR, control, "ring rebuild failed: %s", strerror(errno));
		return 0; /* stays dirty: retried next pass */
	}
	c->ring_dirty = false;
	c->st.ring_builds++;
	c->ring_changed_ns = c->now_ns;
	if (c->settled == NULL) {
		/* The first ring: nothing was placed on another one. */
		c->settled = rr;
		rr->refs++;
	} else {
		start_walk(c);
	}
	if (c->ring != NULL) {
		republish_recent(c, c->ring->ring, rr->ring);
	}
	ring_ref_put(c->ring);
	c->ring = rr;
	PC_LOG(INFO, control, "ring: %u node(s), %d vnodes each, generation %" PRIu64,
	       pc_ring_node_count(rr->ring), c->cfg->vnodes, pc_disc_node_set_gen(c->node));
	return 1;
}

/* ------------------------------------------------------------- discovery */

static void
disc_event(void *arg, const struct pc_disc_event *ev)
{
	struct pc_cluster *c = arg;

	switch (ev->type) {
	case PC_DISC_EV_JOINED:
		PC_LOG(NOTICE, control, "member joined: %s (incarnation %" PRIu64 ", %s:%u)",
		       ev->member->node_id, ev->member->incarnation, ev->member->control.host,
		       ev->member->control.port);
		break;
	case PC_DISC_EV_LEFT:
		PC_LOG(NOTICE, control, "member left: %s (incarnation %" PRIu64 ")",
		       ev->member->node_id, ev->member->incarnation);
		if (c->shard != NULL) {
			pc_dir_shard_drop_node(c->shard, ev->member->node_id,
					       PC_DIR_INCARNATION_ALL);
		}
		pc_dir_cache_invalidate_node(c->cache, ev->member->node_id);
		break;
	case PC_DISC_EV_RESTARTED:
		PC_LOG(NOTICE, control,
		       "member restarted: %s (incarnation %" PRIu64 " replaces %" PRIu64 ")",
		       ev->member->node_id, ev->member->incarnation, ev->old_incarnation);
		if (c->shard != NULL) {
			pc_dir_shard_drop_node(c->shard, ev->member->node_id,
					       ev->member->incarnation);
		}
		pc_dir_cache_invalidate_node(c->cache, ev->member->node_id);
		/* Its control port may have changed: rebuild the peers. */
		c->ring_dirty = true;
		break;
	case PC_DISC_EV_SET_CHANGED:
		c->ring_dirty = true;
		break;
	case PC_DISC_EV_MASTERS_CHANGED: {
		struct pc_disc_endpoint m[PC_DISC_MASTERS_MAX];
		int n = c->node != NULL ? pc_disc_node_masters(c->node, m, PC_DISC_MASTERS_MAX) : 0;
		char line[512] = "";
		size_t len = 0;

		if (n <= 0) {
			break; /* while the node is being created: the set follows */
		}
		for (int i = 0; i < n && len < sizeof(line); i++) {
			len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s:%u",
						i ? ", " : "", m[i].host, m[i].port);
		}
		PC_LOG(NOTICE, control, "discovery masters: %s", line);
		break;
	}
	}
}

static struct pc_rpc_peer *
meta_peer(struct pc_cluster *c, const struct pc_disc_endpoint *ep)
{
	struct meta_peer *mp = NULL;
	unsigned int oldest = 0;

	for (unsigned int i = 0; i < c->n_meta; i++) {
		if (c->meta[i].ep.port == ep->port && strcmp(c->meta[i].ep.host, ep->host) == 0) {
			c->meta[i].last_used_ns = c->now_ns;
			return c->meta[i].peer;
		}
		if (c->meta[i].last_used_ns < c->meta[oldest].last_used_ns) {
			oldest = i;
		}
	}
	if (c->n_meta < META_PEERS_MAX) {
		mp = &c->meta[c->n_meta++];
	} else {
		mp = &c->meta[oldest];
		pc_rpc_peer_put(mp->peer);
	}
	mp->ep = *ep;
	mp->last_used_ns = c->now_ns;
	mp->peer = pc_rpc_peer_get(c->rpc, ep->host, ep->port);
	if (mp->peer == NULL) {
		*mp = c->meta[--c->n_meta];
		return NULL;
	}
	return mp->peer;
}

/* Peers of targets unused for a few TTLs (a master that left the set) are let go. */
static void
meta_peers_expire(struct pc_cluster *c)
{
	uint64_t idle = 3 * (uint64_t)(c->cfg->member_ttl * 1e9);

	for (unsigned int i = 0; i < c->n_meta;) {
		if (c->now_ns - c->meta[i].last_used_ns > idle) {
			pc_rpc_peer_put(c->meta[i].peer);
			c->meta[i] = c->meta[--c->n_meta];
		} else {
			i++;
		}
	}
}

static void
disc_reply(void *arg, int status, const struct pc_frame_hdr *h, const uint8_t *body, uint32_t len)
{
	struct disc_call *dc = arg;
	struct pc_cluster *c = dc->c;
	uint64_t now = c->now_ns;
	uint64_t epoch = 0;
	unsigned int n = 0;

	if (dc->type == PC_DISC_ACT_DEREGISTER) {
		free(dc);
		return;
	}
	if (status != 0) {
		pc_disc_node_on_failure(c->node, dc->token, now, status);
		free(dc);
		return;
	}
	if ((h->flags & PC_FRAME_F_ERROR) != 0) {
		struct pc_frame_error e;

		if (pc_frame_dec_error(body, len, &e) != 0) {
			pc_disc_node_on_failure(c->node, dc->token, now, -EBADMSG);
		} else if (dc->type == PC_DISC_ACT_REGISTER &&
			   (e.status == -ESTALE || e.status == -ENOSPC)) {
			pc_disc_node_on_register(c->node, dc->token, now, e.status, 0, NULL, 0);
		} else if (dc->type == PC_DISC_ACT_HEARTBEAT &&
			   (e.status == -ENOENT || e.status == -ESTALE)) {
			pc_disc_node_on_heartbeat(c->node, dc->token, now, e.status, 0);
		} else {
			pc_disc_node_on_failure(c->node, dc->token, now, e.status);
		}
		free(dc);
		return;
	}
	switch (dc->type) {
	case PC_DISC_ACT_REGISTER:
	case PC_DISC_ACT_MEMBERS:
		if (pc_frame_dec_members(body, len, &epoch, c->fmembers, PC_FRAME_MEMBERS_MAX,
					 &n) != 0) {
			pc_disc_node_on_failure(c->node, dc->token, now, -EBADMSG);
			break;
		}
		for (unsigned int i = 0; i < n; i++) {
			member_from_frame(&c->fmembers[i], &c->dmembers[i]);
		}
		if (dc->type == PC_DISC_ACT_REGISTER) {
			pc_disc_node_on_register(c->node, dc->token, now, 0, epoch, c->dmembers, n);
		} else {
			pc_disc_node_on_members(c->node, dc->token, now, epoch, c->dmembers, n);
		}
		break;
	case PC_DISC_ACT_HEARTBEAT: {
		bool known;

		if (pc_frame_dec_heartbeat_reply(body, len, &epoch, &known) != 0) {
			pc_disc_node_on_failure(c->node, dc->token, now, -EBADMSG);
			break;
		}
		pc_disc_node_on_heartbeat(c->node, dc->token, now, known ? 0 : -ENOENT, epoch);
		break;
	}
	default:
		break;
	}
	free(dc);
}

/* Send one discovery action; a failure to even queue it is the target's failure. */
static void
disc_send(struct pc_cluster *c, const struct pc_disc_action *a, uint64_t deadline_ns)
{
	const struct pc_disc_member *self = pc_disc_node_self(c->node);
	struct pc_rpc_peer *peer = meta_peer(c, &a->to);
	struct disc_call *dc = malloc(sizeof(*dc));
	struct pc_frame_member fm;
	struct pc_frame_heartbeat hb = {0};
	uint8_t type;
	int len;
	int rc;

	if (peer == NULL || dc == NULL) {
		free(dc);
		if (a->type != PC_DISC_ACT_DEREGISTER) {
			pc_disc_node_on_failure(c->node, a->token, c->now_ns, -ENOMEM);
		}
		return;
	}
	*dc = (struct disc_call){.c = c, .type = a->type, .token = a->token};
	snprintf(hb.node_id, sizeof(hb.node_id), "%s", self->node_id);
	hb.incarnation = self->incarnation;
	hb.pool_used = self->pool_used;
	switch (a->type) {
	case PC_DISC_ACT_REGISTER:
		type = PC_FRAME_REGISTER;
		member_to_frame(self, &fm);
		len = pc_frame_enc_register(c->tx, sizeof(c->tx), &fm);
		break;
	case PC_DISC_ACT_HEARTBEAT:
		type = PC_FRAME_HEARTBEAT;
		len = pc_frame_enc_heartbeat(c->tx, sizeof(c->tx), &hb);
		break;
	case PC_DISC_ACT_MEMBERS:
		type = PC_FRAME_MEMBERS;
		len = pc_frame_enc_empty(c->tx, sizeof(c->tx));
		break;
	case PC_DISC_ACT_DEREGISTER:
	default:
		type = PC_FRAME_DEREGISTER;
		len = pc_frame_enc_heartbeat(c->tx, sizeof(c->tx), &hb);
		break;
	}
	rc = len < 0 ? len
		     : pc_rpc_call(peer, type, c->tx, (uint32_t)len, deadline_ns, disc_reply, dc);
	if (rc != 0) {
		free(dc);
		if (a->type != PC_DISC_ACT_DEREGISTER) {
			pc_disc_node_on_failure(c->node, a->token, c->now_ns, rc);
		}
	}
}

static int
disc_poll(struct pc_cluster *c)
{
	struct pc_disc_action act[DISC_BURST];
	int n = pc_disc_node_due(c->node, c->now_ns, act, DISC_BURST);

	for (int i = 0; i < n; i++) {
		/* The node counts a request unanswered after one interval as failed: so does the
		 * call. */
		disc_send(c, &act[i], c->now_ns + c->np.heartbeat_interval_ns);
	}
	if (c->master != NULL && c->now_ns - c->prune_ns >= MASTER_PRUNE_NS) {
		c->prune_ns = c->now_ns;
		pc_disc_master_prune(c->master, c->now_ns);
		meta_peers_expire(c);
	}
	return n;
}

/* --------------------------------------------------------- master requests */

static void
reply_members(struct pc_cluster *c, struct pc_rpc_conn *conn, const struct pc_frame_hdr *h)
{
	uint64_t epoch = 0;
	int n = pc_disc_master_list(c->master, c->now_ns, c->dmembers, PC_FRAME_MEMBERS_MAX,
				    &epoch);
	int len;

	if (n < 0) {
		pc_rpc_reply_error(conn, h, n, "member list unavailable");
		return;
	}
	for (int i = 0; i < n; i++) {
		member_to_frame(&c->dmembers[i], &c->fmembers[i]);
	}
	len = pc_frame_enc_members(c->tx, sizeof(c->tx), epoch, c->fmembers, (unsigned int)n);
	if (len < 0) {
		pc_rpc_reply_error(conn, h, len, "member list does not encode");
		return;
	}
	pc_rpc_reply(conn, h, 0, c->tx, (uint32_t)len);
}

static void
on_master_request(struct pc_cluster *c, struct pc_rpc_conn *conn, const struct pc_frame_hdr *h,
		  const uint8_t *body, uint32_t len)
{
	struct pc_frame_heartbeat hb;
	struct pc_frame_member fm;
	int rc;

	if (c->master == NULL) {
		c->st.bad_requests++;
		pc_rpc_reply_error(conn, h, -ENOTSUP, "no discovery master on this engine");
		return;
	}
	switch (h->type) {
	case PC_FRAME_REGISTER:
		if (pc_frame_dec_register(body, len, &fm) != 0) {
			break;
		}
		member_from_frame(&fm, &c->dmembers[0]);
		rc = pc_disc_master_register(c->master, &c->dmembers[0], c->now_ns);
		if (rc != 0) {
			pc_rpc_reply_error(conn, h, rc,
					   rc == -ESTALE   ? "a newer incarnation is registered"
					   : rc == -ENOSPC ? "member table full"
							   : "bad member record");
			return;
		}
		reply_members(c, conn, h);
		return;
	case PC_FRAME_HEARTBEAT:
		if (pc_frame_dec_heartbeat(body, len, &hb) != 0) {
			break;
		}
		rc = pc_disc_master_heartbeat(c->master, hb.node_id, hb.incarnation, c->now_ns);
		rc = pc_frame_enc_heartbeat_reply(c->tx, sizeof(c->tx),
						  pc_disc_master_epoch(c->master), rc == 0);
		pc_rpc_reply(conn, h, 0, c->tx, (uint32_t)PC_MAX(rc, 0));
		return;
	case PC_FRAME_MEMBERS:
		if (pc_frame_dec_empty(body, len) != 0) {
			break;
		}
		reply_members(c, conn, h);
		return;
	case PC_FRAME_DEREGISTER:
		if (pc_frame_dec_heartbeat(body, len, &hb) != 0) {
			break;
		}
		pc_disc_master_deregister(c->master, hb.node_id, hb.incarnation, c->now_ns);
		pc_rpc_reply(conn, h, 0, NULL, 0);
		return;
	default:
		break;
	}
	c->st.bad_requests++;
	pc_rpc_conn_malformed(conn, "discovery request body does not decode");
}

/* ------------------------------------------------------ directory requests */

static void
on_dir_request(struct pc_cluster *c, struct pc_rpc_conn *conn, const struct pc_frame_hdr *h,
	       const uint8_t *body, uint32_t blen)
{
	unsigned int n = 0;
	int len = -EINVAL;

	if (c->shard == NULL) {
		c->st.bad_requests++;
		pc_rpc_reply_error(conn, h, -ENOTSUP, "discovery-only engine: no directory shard");
		return;
	}
	switch (h->type) {
	case PC_FRAME_DIR_PUT:
		if (pc_frame_dec_dir_put(body, blen, c->puts, PC_FRAME_BATCH_MAX, &n) != 0) {
			break;
		}
		for (unsigned int i = 0; i < n; i++) {
			struct pc_dir_loc loc;

			loc_from_frame(&c->puts[i].loc, &loc);
			c->status[i] = pc_dir_shard_put(c->shard, c->puts[i].key.bytes,
							c->puts[i].key.len, &loc);
		}
		len = pc_frame_enc_dir_status(c->tx, sizeof(c->tx), c->status, n);
		break;
	case PC_FRAME_DIR_LOOKUP:
		if (pc_frame_dec_dir_keys(body, blen, c->fkeys, PC_FRAME_BATCH_MAX, &n) != 0) {
			break;
		}
		for (unsigned int i = 0; i < n; i++) {
			int got = pc_dir_shard_lookup(c->shard, c->fkeys[i].bytes, c->fkeys[i].len,
						      c->locs);

			memset(&c->lookups[i], 0, sizeof(c->lookups[i]));
			c->lookups[i].status = got < 0 ? got : 0;
			for (int k = 0; k < got; k++) {
				loc_to_frame(&c->locs[k], &c->lookups[i].loc[k]);
			}
			c->lookups[i].nloc = (uint8_t)PC_MAX(got, 0);
		}
		len = pc_frame_enc_dir_lookup_reply(c->tx, sizeof(c->tx), c->lookups, n);
		break;
	case PC_FRAME_DIR_EXISTS:
		if (pc_frame_dec_dir_keys(body, blen, c->fkeys, PC_FRAME_BATCH_MAX, &n) != 0) {
			break;
		}
		for (unsigned int i = 0; i < n; i++) {
			c->present[i] =
				pc_dir_shard_exists(c->shard, c->fkeys[i].bytes, c->fkeys[i].len);
		}
		len = pc_frame_enc_dir_exists_reply(c->tx, sizeof(c->tx), c->present, n);
		break;
	case PC_FRAME_DIR_DELETE:
		if (pc_frame_dec_dir_keys(body, blen, c->fkeys, PC_FRAME_BATCH_MAX, &n) != 0) {
			break;
		}
		for (unsigned int i = 0; i < n; i++) {
			c->status[i] =
				pc_dir_shard_delete(c->shard, c->fkeys[i].bytes, c->fkeys[i].len);
		}
		len = pc_frame_enc_dir_status(c->tx, sizeof(c->tx), c->status, n);
		break;
	case PC_FRAME_DIR_DELETE_LOC:
		if (pc_frame_dec_dir_delete_loc(body, blen, c->dlocs, PC_FRAME_BATCH_MAX, &n) !=
		    0) {
			break;
		}
		for (unsigned int i = 0; i < n; i++) {
			c->status[i] = pc_dir_shard_delete_loc(
				c->shard, c->dlocs[i].key.bytes, c->dlocs[i].key.len,
				c->dlocs[i].node_id, c->dlocs[i].incarnation,
				c->dlocs[i].generation);
		}
		len = pc_frame_enc_dir_status(c->tx, sizeof(c->tx), c->status, n);
		break;
	default:
		break;
	}
	if (len < 0) {
		c->st.bad_requests++;
		pc_rpc_conn_malformed(conn, "directory request body does not decode");
		return;
	}
	pc_rpc_reply(conn, h, 0, c->tx, (uint32_t)len);
}

/* ------------------------------------------------------- rdma handshakes */

static void
qp_refuse(struct pc_cluster *c, struct pc_rpc_conn *conn, const struct pc_frame_hdr *h, int err,
	  const char *why)
{
	c->st.qp_refused++;
	pc_rpc_reply_error(conn, h, err, why);
}

/*
 * The passive side: a member asks for an RC channel. Only a node
 * incarnation this node's view has now reaches the handler: a record from
 * a node it does not know, or from another start of one it knows, would
 * be a QP kept for something that may never read through it.
 */
static void
on_qp_request(struct pc_cluster *c, struct pc_rpc_conn *conn, const struct pc_frame_hdr *h,
	      const uint8_t *body, uint32_t blen)
{
	struct pc_frame_qp_connect q;
	struct pc_disc_member m;
	struct pc_qp_info reply;
	int len;
	int rc;

	if (pc_frame_dec_qp_connect(body, blen, &q) != 0) {
		c->st.bad_requests++;
		pc_rpc_conn_malformed(conn, "QP_CONNECT body does not decode");
		return;
	}
	c->st.qp_requests++;
	if (c->opts.role == PC_DISC_ROLE_META) {
		c->st.bad_requests++;
		qp_refuse(c, conn, h, -ENOTSUP, "discovery-only engine: no data plane");
		return;
	}
	if (c->qp_fn == NULL) {
		qp_refuse(c, conn, h, -ENOTSUP, "no rdma transport on this engine");
		return;
	}
	if (pc_disc_node_member(c->node, q.node_id, &m) != 0) {
		qp_refuse(c, conn, h, -EHOSTUNREACH, "not a member in this node's view");
		return;
	}
	if (m.incarnation != q.info.incarnation) {
		qp_refuse(c, conn, h, -ESTALE, "another incarnation of the node is the member");
		return;
	}
	memset(&reply, 0, sizeof(reply));
	reply.incarnation = c->self.incarnation;
	rc = c->qp_fn(c->qp_arg, q.node_id, &q.info, &reply);
	len = -EIO;
	if (rc == 0) {
		len = pc_frame_enc_qp_connect_reply(c->tx, sizeof(c->tx), &reply);
		if (len < 0) {
			PC_LOG(ERR, control,
			       "QP_CONNECT from %s: the handler's record does not encode",
			       q.node_id);
			rc = -EIO;
		}
	} else if (rc > 0 || rc < -PC_FRAME_ERRNO_MAX) {
		rc = -EIO;
	}
	if (rc != 0) {
		qp_refuse(c, conn, h, rc, "rdma channel refused");
		return;
	}
	c->st.qp_served++;
	pc_rpc_reply(conn, h, 0, c->tx, (uint32_t)len);
}

void
pc_cluster_set_qp_handler(struct pc_cluster *c, pc_cluster_qp_fn fn, void *arg)
{
	c->qp_fn = fn;
	c->qp_arg = fn != NULL ? arg : NULL;
}

static void
qp_finish(struct qp_call *q, int status, const struct pc_qp_info *reply)
{
	if (q->done) {
		return;
	}
	q->done = true;
	q->c->st.qp_failed += status != 0;
	q->cb(q->arg, status, reply);
}

/* What a failed call means to the caller: the peer is out of reach, unless the rpc says more. */
static int
qp_call_status(int status)
{
	switch (status) {
	case -ETIMEDOUT:
	case -ECANCELED:
	case -EACCES:
		return status;
	case -EBADMSG:
		return -EPROTO;
	default:
		return -EHOSTUNREACH;
	}
}

static void
qp_reply(void *arg, int status, const struct pc_frame_hdr *h, const uint8_t *body, uint32_t len)
{
	struct qp_call *q = arg;
	struct pc_frame_error e;
	struct pc_qp_info info;

	if (status != 0) {
		status = qp_call_status(status);
	} else if ((h->flags & PC_FRAME_F_ERROR) != 0) {
		status = pc_frame_dec_error(body, len, &e) == 0 ? e.status : -EPROTO;
	} else if (pc_frame_dec_qp_connect_reply(body, len, &info) != 0) {
		status = -EPROTO;
	} else if (info.incarnation != q->incarnation) {
		status = -ESTALE;
	}
	qp_finish(q, status, status == 0 ? &info : NULL);
	*q->pprev = q->next;
	if (q->next != NULL) {
		q->next->pprev = q->pprev;
	}
	q->c->n_qps--;
	pc_rpc_peer_put(q->peer);
	free(q);
}

int
pc_cluster_qp_connect(struct pc_cluster *c, const char *node_id, uint64_t incarnation,
		      const struct pc_qp_info *local, uint64_t timeout_ns, pc_cluster_qp_done_fn cb,
		      void *arg)
{
	struct pc_frame_qp_connect fq;
	struct pc_disc_member m;
	struct qp_call *q;
	uint64_t deadline;
	int len;
	int rc;

	if (c == NULL || node_id == NULL || local == NULL || cb == NULL ||
	    strnlen(node_id, PC_DISC_NODE_ID_MAX) == PC_DISC_NODE_ID_MAX) {
		return -EINVAL;
	}
	if (c->closing) {
		return -ECANCELED;
	}
	if (c->opts.role == PC_DISC_ROLE_META) {
		return -ENOTSUP;
	}
	memset(&fq, 0, sizeof(fq));
	snprintf(fq.node_id, sizeof(fq.node_id), "%s", c->self.node_id);
	fq.info = *local;
	len = pc_frame_enc_qp_connect(c->tx, sizeof(c->tx), &fq);
	if (len < 0) {
		return -EINVAL;
	}
	if (local->incarnation != c->self.incarnation) {
		return -ESTALE;
	}
	if (pc_disc_node_member(c->node, node_id, &m) != 0 || m.incarnation != incarnation) {
		return -EHOSTUNREACH;
	}
	if (c->n_qps >= PC_CLUSTER_QP_CALLS_MAX) {
		return -EBUSY;
	}
	q = calloc(1, sizeof(*q));
	if (q == NULL) {
		return -ENOMEM;
	}
	q->peer = pc_rpc_peer_get(c->rpc, m.control.host, m.control.port);
	if (q->peer == NULL) {
		rc = errno == ENOMEM ? -ENOMEM : -EHOSTUNREACH;
		free(q);
		return rc;
	}
	q->c = c;
	q->cb = cb;
	q->arg = arg;
	q->incarnation = incarnation;
	if (timeout_ns == 0) {
		timeout_ns = c->request_timeout_ns;
	}
	deadline = c->now_ns + PC_MIN(timeout_ns, UINT64_MAX - c->now_ns);
	rc = pc_rpc_call(q->peer, PC_FRAME_QP_CONNECT, c->tx, (uint32_t)len, deadline, qp_reply, q);
	if (rc != 0) {
		pc_rpc_peer_put(q->peer);
		free(q);
		return rc;
	}
	q->next = c->qps;
	q->pprev = &c->qps;
	if (c->qps != NULL) {
		c->qps->pprev = &q->next;
	}
	c->qps = q;
	c->n_qps++;
	c->st.qp_calls++;
	return 0;
}

/*
 * Every call ends now with -ECANCELED; then each lets go of its peer. A
 * peer's last reference cancels its RPC calls at once (qp_reply frees
 * them); one the ring still holds cancels them when the ring or the rpc goes.
 */
static void
qp_cancel_all(struct pc_cluster *c)
{
	for (struct qp_call *q = c->qps; q != NULL; q = q->next) {
		qp_finish(q, -ECANCELED, NULL);
	}
	for (;;) {
		struct qp_call *q = c->qps;
		struct pc_rpc_peer *peer;

		while (q != NULL && q->peer == NULL) {
			q = q->next;
		}
		if (q == NULL) {
			break;
		}
		peer = q->peer;
		q->peer = NULL;
		pc_rpc_peer_put(peer); /* may free q, and others of the list */
	}
}

static void
on_request(void *arg, struct pc_rpc_conn *conn, const struct pc_frame_hdr *h, const uint8_t *body,
	   uint32_t len)
{
	struct pc_cluster *c = arg;

	switch (h->type) {
	case PC_FRAME_PING:
		if (pc_frame_dec_empty(body, len) != 0) {
			c->st.bad_requests++;
			pc_rpc_conn_malformed(conn, "ping with a body");
			return;
		}
		pc_rpc_reply(conn, h, 0, NULL, 0);
		return;
	case PC_FRAME_REGISTER:
	case PC_FRAME_HEARTBEAT:
	case PC_FRAME_MEMBERS:
	case PC_FRAME_DEREGISTER:
		on_master_request(c, conn, h, body, len);
		return;
	case PC_FRAME_QP_CONNECT:
		on_qp_request(c, conn, h, body, len);
		return;
	default:
		on_dir_request(c, conn, h, body, len);
		return;
	}
}

/* ------------------------------------------------------------- publishing */

static void
dir_reply(void *arg, int status, const struct pc_frame_hdr *h, const uint8_t *body, uint32_t len)
{
	struct dir_call *dc = arg;
	struct pc_cluster *c = dc->c;
	unsigned int n = 0;
	unsigned int bad = dc->n;

	c->dir_inflight--;
	c->reshard_inflight -= dc->reshard;
	if (status == 0 && (h->flags & PC_FRAME_F_ERROR) == 0 &&
	    pc_frame_dec_dir_status(body, len, c->status, PC_FRAME_BATCH_MAX, &n) == 0 &&
	    n == dc->n) {
		bad = 0;
		for (unsigned int i = 0; i < n; i++) {
			/* A delete of what is already gone is not a failure. */
			bad += c->status[i] != 0 && c->status[i] != -ENOENT;
		}
	}
	if (dc->reshard && bad > 0) {
		c->walk_failed = true;
	}
	if (dc->type == PC_FRAME_DIR_PUT) {
		c->st.publish_failed += bad;
	}
	free(dc);
}

static void
dir_send(struct pc_cluster *c, struct pc_rpc_peer *peer, uint8_t type, int len, unsigned int n,
	 bool reshard)
{
	struct dir_call *dc;

	if (len < 0) {
		PC_LOG(ERR, control, "directory %s of %u entries does not encode: %s",
		       pc_frame_type_name(type), n, strerror(-len));
		return;
	}
	dc = malloc(sizeof(*dc));
	if (dc == NULL) {
		c->st.publish_failed += type == PC_FRAME_DIR_PUT ? n : 0;
		c->walk_failed |= reshard;
		return;
	}
	*dc = (struct dir_call){.c = c, .type = type, .reshard = reshard, .n = n};
	if (pc_rpc_call(peer, type, c->tx, (uint32_t)len, c->now_ns + c->request_timeout_ns,
			dir_reply, dc) != 0) {
		free(dc);
		c->st.publish_failed += type == PC_FRAME_DIR_PUT ? n : 0;
		c->walk_failed |= reshard;
		return;
	}
	c->dir_inflight++;
	c->reshard_inflight += reshard;
}

static void
self_loc(const struct pc_cluster *c, const struct pub_entry *e, struct pc_dir_loc *loc)
{
	memset(loc, 0, sizeof(*loc));
	snprintf(loc->node_id, sizeof(loc->node_id), "%s", c->self.node_id);
	loc->incarnation = c->self.incarnation;
	loc->offset = e->offset;
	loc->generation = e->generation;
	loc->length = e->length;
	loc->tier = PC_DIR_TIER_MEMORY;
}

/* Up to PC_FRAME_BATCH_MAX keys routed at once: each key's owners, and the owners of them all. */
struct routing {
	unsigned int owners[PC_FRAME_BATCH_MAX][PC_RING_REPLICAS_MAX];
	unsigned int n_owners[PC_FRAME_BATCH_MAX];
	unsigned int distinct[PC_FRAME_BATCH_MAX * PC_RING_REPLICAS_MAX];
	unsigned int n_distinct;
};

static void
route_key(const struct pc_cluster *c, struct routing *rt, unsigned int i, uint64_t key_hash)
{
	rt->n_owners[i] = pc_ring_owners(c->ring->ring, key_hash, c->replicas, rt->owners[i]);
	for (unsigned int r = 0; r < rt->n_owners[i]; r++) {
		unsigned int d = 0;

		while (d < rt->n_distinct && rt->distinct[d] != rt->owners[i][r]) {
			d++;
		}
		if (d == rt->n_distinct) {
			rt->distinct[rt->n_distinct++] = rt->owners[i][r];
		}
	}
}

static bool
routed_to(const struct routing *rt, unsigned int i, unsigned int node)
{
	for (unsigned int r = 0; r < rt->n_owners[i]; r++) {
		if (rt->owners[i][r] == node) {
			return true;
		}
	}
	return false;
}

/* The frame a queued entry goes in: runs of one frame type are sent together. */
static uint8_t
pub_frame(enum pub_kind kind)
{
	return kind == PUB_PUT ? PC_FRAME_DIR_PUT : PC_FRAME_DIR_DELETE_LOC;
}

/* The DIR_DELETE_LOC entry of a PUB_DEL or PUB_REPAIR. */
static void
pub_delete_loc(const struct pc_cluster *c, const struct pub_entry *e, struct pc_frame_delete_loc *d)
{
	bool own = e->kind == PUB_DEL;

	d->key.len = e->key_len;
	memcpy(d->key.bytes, e->key, e->key_len);
	snprintf(d->node_id, sizeof(d->node_id), "%s", own ? c->self.node_id : e->node_id);
	d->incarnation = own ? c->self.incarnation : e->incarnation;
	d->generation = own ? PC_DIR_GENERATION_ANY : e->generation;
}

/*
 * Send the first `n` queued entries (all of one frame type) to their
 * owners: one frame per owner, the local shard directly.
 */
static void
flush_chunk(struct pc_cluster *c, unsigned int n, uint8_t type)
{
	const struct ring_ref *rr = c->ring;
	struct routing rt;

	rt.n_distinct = 0;
	for (unsigned int i = 0; i < n; i++) {
		const struct pub_entry *e = &c->pubq[(c->pub_head + i) % PUB_QUEUE_LEN];

		route_key(c, &rt, i, pc_ring_hash(e->key, e->key_len));
	}
	/* Each owner once: its entries in one frame (the local shard directly). */
	for (unsigned int d = 0; d < rt.n_distinct; d++) {
		unsigned int node = rt.distinct[d];
		unsigned int m = 0;

		for (unsigned int i = 0; i < n; i++) {
			const struct pub_entry *e = &c->pubq[(c->pub_head + i) % PUB_QUEUE_LEN];

			if (!routed_to(&rt, i, node)) {
				continue;
			}
			if (type == PC_FRAME_DIR_PUT) {
				struct pc_dir_loc loc;

				self_loc(c, e, &loc);
				c->puts[m].key.len = e->key_len;
				memcpy(c->puts[m].key.bytes, e->key, e->key_len);
				loc_to_frame(&loc, &c->puts[m].loc);
				if ((int)node == rr->self &&
				    pc_dir_shard_put(c->shard, e->key, e->key_len, &loc) != 0) {
					c->st.publish_failed++;
				}
			} else {
				const struct pc_frame_delete_loc *dl = &c->dlocs[m];

				pub_delete_loc(c, e, &c->dlocs[m]);
				if ((int)node == rr->self) {
					pc_dir_shard_delete_loc(c->shard, e->key, e->key_len,
								dl->node_id, dl->incarnation,
								dl->generation);
				}
			}
			m++;
		}
		if ((int)node == rr->self) {
			continue;
		}
		if (rr->peers[node] == NULL) {
			c->st.publish_failed += type == PC_FRAME_DIR_PUT ? m : 0;
			continue;
		}
		if (type == PC_FRAME_DIR_PUT) {
			dir_send(c, rr->peers[node], PC_FRAME_DIR_PUT,
				 pc_frame_enc_dir_put(c->tx, sizeof(c->tx), c->puts, m), m, false);
		} else {
			dir_send(c, rr->peers[node], PC_FRAME_DIR_DELETE_LOC,
				 pc_frame_enc_dir_delete_loc(c->tx, sizeof(c->tx), c->dlocs, m), m,
				 false);
		}
	}
	for (unsigned int i = 0; i < n; i++) {
		c->recent[c->recent_next] = c->pubq[(c->pub_head + i) % PUB_QUEUE_LEN];
		c->recent_ns[c->recent_next] = c->now_ns;
		c->recent_next = (c->recent_next + 1) % RECENT_LEN;
		c->recent_len = PC_MIN(c->recent_len + 1, RECENT_LEN);
	}
	c->pub_head = (c->pub_head + n) % PUB_QUEUE_LEN;
	c->pub_len -= n;
}

static int
publish_poll(struct pc_cluster *c)
{
	int work = 0;

	if (c->ring == NULL || c->shard == NULL) {
		return 0;
	}
	while (c->pub_len > 0 && c->dir_inflight < PUB_INFLIGHT_MAX) {
		uint8_t type = pub_frame((enum pub_kind)c->pubq[c->pub_head].kind);
		unsigned int n = 0;

		/* A run of one frame, in order: a put and a later delete of a key never swap. */
		while (n < c->pub_len && n < PC_FRAME_BATCH_MAX &&
		       pub_frame((enum pub_kind)c->pubq[(c->pub_head + n) % PUB_QUEUE_LEN].kind) ==
			       type) {
			n++;
		}
		flush_chunk(c, n, type);
		work++;
	}
	return work;
}

/* p: a PUB_PUT's page; loc: a PUB_REPAIR's location. */
static unsigned int
enqueue(struct pc_cluster *c, enum pub_kind kind, const void *key, uint32_t key_len,
	const struct pc_cluster_pub *p, const struct pc_dir_loc *loc)
{
	struct pub_entry *e;

	if (c->pubq == NULL || key == NULL || key_len == 0 || key_len > PC_DIR_KEY_MAX) {
		return 0;
	}
	if (c->pub_len == PUB_QUEUE_LEN) {
		c->st.publish_dropped++;
		return 0;
	}
	e = &c->pubq[(c->pub_head + c->pub_len++) % PUB_QUEUE_LEN];
	e->kind = (uint8_t)kind;
	e->key_len = (uint16_t)key_len;
	memcpy(e->key, key, key_len);
	e->length = p != NULL ? p->length : 0;
	e->offset = p != NULL ? p->offset : 0;
	e->generation = p != NULL ? p->generation : loc != NULL ? loc->generation : 0;
	e->incarnation = loc != NULL ? loc->incarnation : 0;
	snprintf(e->node_id, sizeof(e->node_id), "%s", loc != NULL ? loc->node_id : "");
	return 1;
}

/*
 * The ring changed under entries this node sent lately: other nodes may
 * have placed them on their old ring, or walked their shards before they
 * arrived, so a re-shard alone can miss them. Send again, in their order
 * (a put and a later delete of a key keep theirs), those sent within the
 * time the members can take to agree on a ring whose owners changed.
 */
static void
republish_recent(struct pc_cluster *c, const struct pc_ring *old_ring,
		 const struct pc_ring *new_ring)
{
	uint64_t window = settle_window(c);

	if (c->recent == NULL) {
		return;
	}
	for (unsigned int k = 0; k < c->recent_len; k++) {
		unsigned int at = (c->recent_next + RECENT_LEN - c->recent_len + k) % RECENT_LEN;
		const struct pub_entry *e = &c->recent[at];
		struct pc_cluster_pub p = {.key = e->key,
					   .key_len = e->key_len,
					   .length = e->length,
					   .offset = e->offset,
					   .generation = e->generation};
		struct pc_dir_loc loc = {.incarnation = e->incarnation,
					 .generation = e->generation};

		if (c->now_ns - c->recent_ns[at] > window ||
		    !pc_ring_owners_changed(old_ring, new_ring, pc_ring_hash(e->key, e->key_len),
					    c->replicas)) {
			continue;
		}
		snprintf(loc.node_id, sizeof(loc.node_id), "%s", e->node_id);
		c->st.recent_republished +=
			e->kind == PUB_PUT ? enqueue(c, PUB_PUT, e->key, e->key_len, &p, NULL)
					   : enqueue(c, (enum pub_kind)e->kind, e->key, e->key_len,
						     NULL, &loc);
	}
}

unsigned int
pc_cluster_publish(struct pc_cluster *c, const struct pc_cluster_pub *p, unsigned int n)
{
	unsigned int queued = 0;

	for (unsigned int i = 0; i < n; i++) {
		if (p[i].length == 0) {
			continue;
		}
		queued += enqueue(c, PUB_PUT, p[i].key, p[i].key_len, &p[i], NULL);
	}
	c->st.published += queued;
	return queued;
}

unsigned int
pc_cluster_publish_room(const struct pc_cluster *c)
{
	return c->pubq != NULL ? PUB_QUEUE_LEN - c->pub_len : 0;
}

uint64_t
pc_cluster_rejoins(const struct pc_cluster *c)
{
	return c->st.rejoins;
}

unsigned int
pc_cluster_unpublish(struct pc_cluster *c, const struct pc_dir_key *keys, unsigned int n)
{
	unsigned int queued = 0;

	for (unsigned int i = 0; i < n; i++) {
		queued += enqueue(c, PUB_DEL, keys[i].bytes, keys[i].len, NULL, NULL);
	}
	c->st.unpublished += queued;
	return queued;
}

/* -------------------------------------------------------------- re-shard */

/* Send the collected records to their new owners but self: per owner, frames of up to 128. */
static void
republish_records(struct pc_cluster *c, unsigned int n)
{
	const struct ring_ref *rr = c->ring;
	struct routing rt;

	rt.n_distinct = 0;
	for (unsigned int i = 0; i < n; i++) {
		route_key(c, &rt, i, c->records[i].key_hash);
	}
	for (unsigned int d = 0; d < rt.n_distinct; d++) {
		unsigned int node = rt.distinct[d];
		unsigned int m = 0;

		if ((int)node == rr->self) {
			continue;
		}
		if (rr->peers[node] == NULL) {
			c->walk_failed = true;
			continue;
		}
		for (unsigned int i = 0; i < n; i++) {
			const struct pc_dir_record *rec = &c->records[i];

			if (!routed_to(&rt, i, node)) {
				continue;
			}
			for (unsigned int l = 0; l < rec->n_locs; l++) {
				c->puts[m].key.len = rec->key_len;
				memcpy(c->puts[m].key.bytes, rec->key, rec->key_len);
				loc_to_frame(&rec->locs[l], &c->puts[m].loc);
				if (++m == PC_FRAME_BATCH_MAX) {
					dir_send(c, rr->peers[node], PC_FRAME_DIR_PUT,
						 pc_frame_enc_dir_put(c->tx, sizeof(c->tx), c->puts,
								      m),
						 m, true);
					m = 0;
				}
			}
		}
		if (m > 0) {
			dir_send(c, rr->peers[node], PC_FRAME_DIR_PUT,
				 pc_frame_enc_dir_put(c->tx, sizeof(c->tx), c->puts, m), m, true);
		}
	}
	c->st.republished += n;
}

static int
reshard_poll(struct pc_cluster *c)
{
	int n;

	if (c->shard == NULL) {
		return 0;
	}
	if (c->sweep_pending && c->now_ns >= c->sweep_at) {
		c->sweep_pending = false;
		c->sweeping = true;
		c->walk_failed = false;
		c->cursor = 0;
	}
	if (!c->walking && !c->pruning && !c->sweeping) {
		return 0;
	}
	if ((c->walking || c->sweeping) && !c->pruning) {
		if (c->dir_inflight >= PUB_INFLIGHT_MAX) {
			return 0;
		}
		if (c->walking) {
			n = pc_dir_shard_collect_moved(c->shard, c->settled->ring, c->ring->ring,
						       c->self.node_id, c->replicas, &c->cursor,
						       c->records, RESHARD_CHUNK);
		} else {
			n = pc_dir_shard_collect_unowned(c->shard, c->ring->ring, c->self.node_id,
							 c->replicas, &c->cursor, c->records,
							 RESHARD_CHUNK);
			c->st.handed_off += (uint64_t)PC_MAX(n, 0);
		}
		if (n > 0) {
			republish_records(c, (unsigned int)n);
		}
		if (c->cursor == PC_DIR_CURSOR_END) {
			c->pruning = true;
			c->cursor = 0;
		}
		return 1;
	}
	/* Pruning: once every re-published entry has been taken. */
	if (c->reshard_inflight > 0) {
		return 0;
	}
	if (c->walk_failed || c->ring->self < 0) {
		/*
		 * Some new owner did not take its entries (or this node is not on
		 * the ring): keep them here rather than lose them.
		 */
		c->cursor = PC_DIR_CURSOR_END;
	} else {
		n = pc_dir_shard_prune_unowned(c->shard, c->ring->ring, c->self.node_id,
					       c->replicas, &c->cursor);
		if (n > 0) {
			c->st.reshard_pruned += (uint64_t)n;
		}
	}
	if (c->cursor != PC_DIR_CURSOR_END) {
		return 1;
	}
	c->pruning = false;
	if (c->sweeping) {
		c->sweeping = false;
		return 1;
	}
	c->walking = false;
	c->st.reshards++;
	ring_ref_put(c->settled);
	c->settled = c->ring;
	c->settled->refs++;
	/* Once every member has the ring, hand off what stale rings still send here. */
	c->sweep_pending = true;
	c->sweep_at = c->now_ns + settle_window(c);
	PC_LOG(INFO, control, "re-shard done: %" PRIu64 " entries re-published so far%s",
	       c->st.republished, c->walk_failed ? " (some owners unreachable)" : "");
	return 1;
}

/* ---------------------------------------------------------------- lookups */

static void
op_free(struct lookup_op *op)
{
	ring_ref_put(op->rr);
	pc_dir_plan_free(op->plan);
	free(op->map);
	free(op->hashes);
	free(op->keys);
	free(op->res);
	free(op->done);
	free(op->missed);
	free(op->retry);
	free(op->failed);
	free(op->gkeys);
	free(op->gnode);
	free(op->gstart);
	free(op->glen);
	free(op);
}

static void
op_key_final(struct lookup_op *op, unsigned int i, int status)
{
	if (op->done[i]) {
		return;
	}
	op->done[i] = true;
	op->res[i].status = status;
	op->remaining--;
	if (status == 0) {
		op->c->st.lookup_hits++;
	} else if (status != -ENOENT) {
		op->c->st.lookup_failed++;
	}
}

/* Fill in where each location's node serves its pages, as the member table says now. */
static void
op_endpoints(struct lookup_op *op)
{
	struct pc_disc_member m = {0};
	bool have = false;

	for (unsigned int i = 0; i < op->n; i++) {
		struct pc_cluster_lookup_result *r = &op->res[i];

		for (unsigned int j = 0; j < r->n_locs && j < PC_DIR_LOCS_MAX; j++) {
			const struct pc_dir_loc *l = &r->locs[j];

			r->data[j] = (struct pc_disc_endpoint){0};
			if (!have || strcmp(m.node_id, l->node_id) != 0) {
				have = pc_disc_node_member(op->c->node, l->node_id, &m) == 0;
			}
			if (have && m.incarnation == l->incarnation) {
				r->data[j] = m.data;
			}
		}
	}
}

static void
op_finish(struct lookup_op *op, int rest)
{
	if (op->finished) {
		return;
	}
	for (unsigned int i = 0; i < op->n; i++) {
		op_key_final(op, i, rest);
	}
	op_endpoints(op);
	op->finished = true;
	op->cb(op->arg, op->res, op->n);
}

/* Whether owners may still be receiving entries after a ring change. */
static bool
reshard_window(const struct pc_cluster *c)
{
	return c->walking || c->pruning || c->sweeping || c->sweep_pending ||
	       c->now_ns - c->ring_changed_ns < (uint64_t)(c->cfg->member_ttl * 1e9);
}

/* Plan key j has an answer from node: found, or a miss. */
static void
op_key_answer(struct lookup_op *op, unsigned int j, unsigned int node,
	      const struct pc_dir_loc *locs, int n)
{
	struct pc_cluster *c = op->c;
	unsigned int i = op->map[j];
	struct pc_cluster_lookup_result *r = &op->res[i];

	if (op->done[i]) {
		return;
	}
	if (n > 0) {
		r->n_locs = (uint8_t)n;
		memcpy(r->locs, locs, (size_t)n * sizeof(*locs));
		snprintf(r->owner, sizeof(r->owner), "%s", pc_ring_node_id(op->rr->ring, node));
		r->cached = false;
		pc_dir_cache_put(c->cache, op->keys[i].bytes, op->keys[i].len, locs,
				 (unsigned int)n, c->now_ns);
		op_key_final(op, i, 0);
		return;
	}
	/* A miss from an owner it is no longer routed to (a replica answered faster) counts not. */
	if (pc_dir_plan_key_node(op->plan, j) != (int)node) {
		return;
	}
	op->missed[j] = true;
	snprintf(r->owner, sizeof(r->owner), "%s", pc_ring_node_id(op->rr->ring, node));
	if (reshard_window(c) && op->n_retry < op->pn) {
		op->retry[op->n_retry++] = j;
	} else {
		op_key_final(op, i, -ENOENT);
	}
}

static void lookup_reply(void *arg, int status, const struct pc_frame_hdr *h, const uint8_t *body,
			 uint32_t len);

/* Send the plan's current groups; local ones are answered at once. */
static void
op_send_groups(struct lookup_op *op)
{
	struct pc_cluster *c = op->c;
	unsigned int ng = pc_dir_plan_group_count(op->plan);
	unsigned int at = 0;

	/* Copy the groups out: answering a local group may re-route the plan. */
	for (unsigned int g = 0; g < ng; g++) {
		const uint32_t *keys;
		unsigned int node;
		unsigned int n;

		pc_dir_plan_group(op->plan, g, &node, &keys, &n);
		op->gnode[g] = node;
		op->gstart[g] = at;
		op->glen[g] = n;
		memcpy(&op->gkeys[at], keys, n * sizeof(*keys));
		at += n;
	}
	for (unsigned int g = 0; g < ng; g++) {
		unsigned int node = op->gnode[g];
		const uint32_t *keys = &op->gkeys[op->gstart[g]];

		if ((int)node == op->rr->self) {
			for (unsigned int k = 0; k < op->glen[g]; k++) {
				const struct pc_frame_key *key = &op->keys[op->map[keys[k]]];
				int got = pc_dir_shard_lookup(c->shard, key->bytes, key->len,
							      c->locs);

				op_key_answer(op, keys[k], node, c->locs, got);
			}
			continue;
		}
		for (unsigned int k = 0; k < op->glen[g]; k += PC_FRAME_BATCH_MAX) {
			unsigned int n = PC_MIN(op->glen[g] - k, PC_FRAME_BATCH_MAX);
			struct lookup_call *lc = malloc(sizeof(*lc));
			uint64_t left =
				op->deadline_ns > c->now_ns ? op->deadline_ns - c->now_ns : 0;
			int len;

			if (lc == NULL || op->rr->peers[node] == NULL) {
				free(lc);
				op->failed[op->n_failed++] = node;
				break;
			}
			lc->op = op;
			lc->node = node;
			lc->n = n;
			for (unsigned int j = 0; j < n; j++) {
				lc->idx[j] = keys[k + j];
				c->fkeys[j] = op->keys[op->map[keys[k + j]]];
			}
			len = pc_frame_enc_dir_keys(c->tx, sizeof(c->tx), c->fkeys, n);
			/* A slow first owner leaves its replicas half of what is left. */
			if (len < 0 || pc_rpc_call(op->rr->peers[node], PC_FRAME_DIR_LOOKUP, c->tx,
						   (uint32_t)len,
						   c->now_ns + PC_MAX(left / 2, LOOKUP_CALL_MIN_NS),
						   lookup_reply, lc) != 0) {
				free(lc);
				op->failed[op->n_failed++] = node;
				break;
			}
			op->calls++;
		}
	}
}

static bool
node_failed(const struct lookup_op *op, unsigned int node)
{
	for (unsigned int f = 0; f < op->n_failed; f++) {
		if (op->failed[f] == node) {
			return true;
		}
	}
	return false;
}

/* Route what failed or missed to the next replicas until nothing is left to send. */
static void
op_advance(struct lookup_op *op)
{
	unsigned int failed_done = 0;

	while (!op->finished) {
		int moved = 0;

		if (op->n_retry > 0) {
			unsigned int n = op->n_retry;

			op->n_retry = 0;
			moved = pc_dir_plan_retry_keys(op->plan, op->retry, n);
			op->c->st.lookup_fallbacks += (uint64_t)PC_MAX(moved, 0);
		} else if (failed_done < op->n_failed) {
			moved = pc_dir_plan_next_replica(op->plan, op->failed[failed_done++]);
			op->c->st.lookup_fallbacks += (uint64_t)PC_MAX(moved, 0);
		} else {
			break;
		}
		if (moved > 0) {
			op_send_groups(op);
		}
	}
	/* Keys no owner is left for: a miss if one said so, else unreachable. */
	for (unsigned int j = 0; j < op->pn; j++) {
		if (pc_dir_plan_key_node(op->plan, j) == -EHOSTUNREACH) {
			op_key_final(op, op->map[j], op->missed[j] ? -ENOENT : -EHOSTUNREACH);
		}
	}
	/* Failed nodes were routed around: forget them but keep the plan's marks. */
	op->n_failed = 0;
	if (op->remaining == 0 || (op->calls == 0 && !op->finished)) {
		op_finish(op, -EHOSTUNREACH);
	}
}

static void
lookup_reply(void *arg, int status, const struct pc_frame_hdr *h, const uint8_t *body, uint32_t len)
{
	struct lookup_call *lc = arg;
	struct lookup_op *op = lc->op;
	struct pc_cluster *c = op->c;
	unsigned int n = 0;

	op->calls--;
	if (op->finished) {
		free(lc);
		return;
	}
	if (status != 0 || (h->flags & PC_FRAME_F_ERROR) != 0 ||
	    pc_frame_dec_dir_lookup_reply(body, len, c->lookups, PC_FRAME_BATCH_MAX, &n) != 0 ||
	    n != lc->n) {
		if (!node_failed(op, lc->node)) {
			op->failed[op->n_failed++] = lc->node;
		}
	} else {
		for (unsigned int k = 0; k < n; k++) {
			const struct pc_frame_lookup *e = &c->lookups[k];

			if (e->status != 0 && e->status != -ENOENT) {
				continue; /* this owner cannot say: leave it to the others */
			}
			for (unsigned int l = 0; l < e->nloc; l++) {
				loc_from_frame(&e->loc[l], &c->locs[l]);
			}
			op_key_answer(op, lc->idx[k], lc->node, c->locs,
				      e->status == 0 ? e->nloc : 0);
		}
	}
	free(lc);
	op_advance(op);
}

static void
op_start(struct lookup_op *op)
{
	struct pc_cluster *c = op->c;

	op->started = true;
	for (unsigned int i = 0; i < op->n; i++) {
		int got = pc_dir_cache_get(c->cache, op->keys[i].bytes, op->keys[i].len, c->now_ns,
					   op->res[i].locs);

		if (got > 0) {
			op->res[i].n_locs = (uint8_t)got;
			op->res[i].cached = true;
			op_key_final(op, i, 0);
			continue;
		}
		op->map[op->pn] = i;
		op->hashes[op->pn++] = pc_ring_hash(op->keys[i].bytes, op->keys[i].len);
	}
	if (op->remaining == 0) {
		op_finish(op, 0);
		return;
	}
	op->rr = c->ring;
	op->rr->refs++;
	if (pc_dir_plan_build(op->plan, op->rr->ring, op->hashes, op->pn) < 0) {
		op_finish(op, -EINVAL);
		return;
	}
	op_send_groups(op);
	op_advance(op);
}

static int
lookups_poll(struct pc_cluster *c)
{
	struct lookup_op **pp = &c->ops;
	int work = 0;

	while (*pp != NULL) {
		struct lookup_op *op = *pp;

		if (!op->started && c->ring != NULL) {
			op_start(op);
			work++;
		}
		if (!op->finished && c->now_ns >= op->deadline_ns) {
			op_finish(op, -ETIMEDOUT);
			work++;
		}
		if (op->finished && op->calls == 0) {
			*pp = op->next;
			if (c->ops_tail == &op->next) {
				c->ops_tail = pp;
			}
			c->n_ops--;
			op_free(op);
			continue;
		}
		pp = &op->next;
	}
	return work;
}

int
pc_cluster_lookup(struct pc_cluster *c, const struct pc_dir_key *keys, unsigned int n,
		  uint64_t timeout_ns, pc_cluster_lookup_fn cb, void *arg)
{
	struct lookup_op *op;

	if (c == NULL || keys == NULL || n == 0 || n > PC_CLUSTER_LOOKUP_MAX || cb == NULL) {
		return -EINVAL;
	}
	if (c->shard == NULL) {
		return -ENOTSUP;
	}
	for (unsigned int i = 0; i < n; i++) {
		if (keys[i].bytes == NULL || keys[i].len == 0 || keys[i].len > PC_DIR_KEY_MAX) {
			return -EINVAL;
		}
	}
	if (c->n_ops >= LOOKUPS_MAX) {
		return -EBUSY;
	}
	op = calloc(1, sizeof(*op));
	if (op == NULL) {
		return -ENOMEM;
	}
	op->c = c;
	op->n = n;
	op->remaining = n;
	op->cb = cb;
	op->arg = arg;
	op->deadline_ns = c->now_ns + (timeout_ns != 0 ? timeout_ns : c->request_timeout_ns);
	op->plan = pc_dir_plan_create(n, c->replicas);
	op->map = calloc(n, sizeof(*op->map));
	op->hashes = calloc(n, sizeof(*op->hashes));
	op->keys = calloc(n, sizeof(*op->keys));
	op->res = calloc(n, sizeof(*op->res));
	op->done = calloc(n, sizeof(*op->done));
	op->missed = calloc(n, sizeof(*op->missed));
	op->retry = calloc(n, sizeof(*op->retry));
	/* A group fails at most once per owner a key can move to. */
	op->failed = calloc((size_t)n * (c->replicas + 1), sizeof(*op->failed));
	op->gkeys = calloc(n, sizeof(*op->gkeys));
	op->gnode = calloc(n, sizeof(*op->gnode));
	op->gstart = calloc(n, sizeof(*op->gstart));
	op->glen = calloc(n, sizeof(*op->glen));
	if (op->plan == NULL || op->map == NULL || op->hashes == NULL || op->keys == NULL ||
	    op->res == NULL || op->done == NULL || op->missed == NULL || op->retry == NULL ||
	    op->failed == NULL || op->gkeys == NULL || op->gnode == NULL || op->gstart == NULL ||
	    op->glen == NULL) {
		op_free(op);
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < n; i++) {
		op->keys[i].len = (uint16_t)keys[i].len;
		memcpy(op->keys[i].bytes, keys[i].bytes, keys[i].len);
		op->res[i].status = -ENOENT;
	}
	*c->ops_tail = op;
	c->ops_tail = &op->next;
	c->n_ops++;
	c->st.lookups += n;
	return 0;
}

void
pc_cluster_lookup_miss(struct pc_cluster *c, const void *key, uint32_t key_len)
{
	pc_dir_cache_invalidate(c->cache, key, key_len);
}

/* Whether a DIR_DELETE_LOC can carry this repair: checked by the encoder that will. */
static bool
repair_encodes(const void *key, uint32_t key_len, const struct pc_dir_loc *loc)
{
	struct pc_frame_delete_loc d = {.incarnation = loc->incarnation,
					.generation = loc->generation};
	uint8_t buf[4 + PC_FRAME_DELLOC_WIRE_MAX];

	if (key == NULL || key_len == 0 || key_len > PC_FRAME_KEY_MAX ||
	    memchr(loc->node_id, '\0', sizeof(loc->node_id)) == NULL) {
		return false;
	}
	d.key.len = (uint16_t)key_len;
	memcpy(d.key.bytes, key, key_len);
	snprintf(d.node_id, sizeof(d.node_id), "%s", loc->node_id);
	return pc_frame_enc_dir_delete_loc(buf, sizeof(buf), &d, 1) > 0;
}

void
pc_cluster_stale_loc(struct pc_cluster *c, const void *key, uint32_t key_len,
		     const struct pc_dir_loc *loc)
{
	pc_cluster_lookup_miss(c, key, key_len);
	/*
	 * Generation 0 would mean any generation: a repair that could take the
	 * node's newer location of the key. A bad entry would fail its whole frame.
	 */
	if (loc == NULL || loc->generation == PC_DIR_GENERATION_ANY ||
	    !repair_encodes(key, key_len, loc)) {
		return;
	}
	c->st.stale_repairs += enqueue(c, PUB_REPAIR, key, key_len, NULL, loc);
}

/* ------------------------------------------------------------------ setup */

/* host -> an IP literal (names resolved now, the first address getaddrinfo gives). */
static int
resolve_literal(const char *host, char *out, size_t len)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	int rc;

	if (is_ip_literal(host)) {
		snprintf(out, len, "%s", host);
		return 0;
	}
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0 || res == NULL) {
		PC_LOG(ERR, control, "cannot resolve %s: %s", host, gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	rc = getnameinfo(res->ai_addr, res->ai_addrlen, out, (socklen_t)len, NULL, 0,
			 NI_NUMERICHOST);
	freeaddrinfo(res);
	return rc == 0 ? 0 : -EHOSTUNREACH;
}

/* discovery_addr with every seed as an IP literal (nothing later may block on DNS). */
static int
resolve_seeds(struct pc_cluster *c, struct pc_config_hostport *seeds, int *n_seeds)
{
	size_t at = 0;
	int n = pc_config_parse_seeds(c->cfg->discovery_addr, seeds, PC_DISC_SEEDS_MAX);

	if (n <= 0 || n > PC_DISC_SEEDS_MAX) {
		PC_LOG(ERR, control, "discovery_addr \"%s\": expected 1 to %d host:port seeds",
		       c->cfg->discovery_addr, PC_DISC_SEEDS_MAX);
		return -EINVAL;
	}
	for (int i = 0; i < n; i++) {
		char lit[INET6_ADDRSTRLEN];
		int rc = resolve_literal(seeds[i].host, lit, sizeof(lit));

		if (rc != 0) {
			PC_LOG(ERR, control, "discovery_addr: seed %s does not resolve",
			       seeds[i].host);
			return rc;
		}
		snprintf(seeds[i].host, sizeof(seeds[i].host), "%s", lit);
		at += (size_t)snprintf(c->discovery + at, sizeof(c->discovery) - at,
				       strchr(lit, ':') ? "%s[%s]:%u" : "%s%s:%u", i ? "," : "",
				       lit, seeds[i].port);
	}
	*n_seeds = n;
	return 0;
}

/* The meta port: a seed's own when this host is one of the seeds, else the head's. */
static uint16_t
meta_port_of(const struct pc_cluster *c, const struct pc_config_hostport *seeds, int n)
{
	for (int i = 0; i < n; i++) {
		if (strcmp(seeds[i].host, c->self.hostname) == 0) {
			return seeds[i].port;
		}
	}
	return seeds[0].port;
}

static int
create_identity(struct pc_cluster *c)
{
	const struct pc_config *cfg = c->cfg;
	const char *dir = cfg->disk_enabled && cfg->disk_path[0] ? cfg->disk_path : NULL;
	int rc;

	rc = pc_disc_node_id_load_or_create(dir, cfg->node_id, NULL, c->self.node_id,
					    sizeof(c->self.node_id));
	if (rc != 0) {
		PC_LOG(ERR, control, "node id: %s%s%s", strerror(-rc), dir ? " (disk_path " : "",
		       dir ? ")" : "");
		return rc;
	}
	rc = pc_disc_incarnation_new(dir, &c->self.incarnation);
	if (rc != 0) {
		PC_LOG(ERR, control, "incarnation: %s", strerror(-rc));
		return rc;
	}
	if (cfg->local_hostname[0] == '\0' || strcmp(cfg->local_hostname, "auto") == 0) {
		rc = pc_disc_resolve_local_host(c->discovery, c->self.hostname,
						sizeof(c->self.hostname));
		if (rc != 0) {
			PC_LOG(ERR, control,
			       "local_hostname auto: no local address reaches %s: %s; set "
			       "local_hostname",
			       c->discovery, strerror(-rc));
			return rc;
		}
	} else {
		rc = resolve_literal(cfg->local_hostname, c->self.hostname,
				     sizeof(c->self.hostname));
		if (rc != 0) {
			PC_LOG(ERR, control, "local_hostname %s does not resolve",
			       cfg->local_hostname);
			return rc;
		}
	}
	return 0;
}

static int
create_listeners(struct pc_cluster *c, uint16_t meta_port)
{
	const struct pc_config *cfg = c->cfg;
	uint16_t bound = 0;
	int rc;

	rc = pc_rpc_listen(c->rpc, cfg->meta_bind_host, meta_port, &bound);
	if (rc == -EADDRINUSE) {
		PC_LOG(WARNING, control,
		       "meta port %s:%u is in use (another engine on this host runs its "
		       "discovery master): this engine runs without one",
		       cfg->meta_bind_host, meta_port);
	} else if (rc != 0) {
		PC_LOG(ERR, control, "meta_bind_host %s:%u: %s", cfg->meta_bind_host, meta_port,
		       strerror(-rc));
		return rc;
	} else {
		c->self.meta_port = bound;
	}
	rc = pc_rpc_listen(c->rpc, cfg->control_bind_host, (uint16_t)cfg->control_port, &bound);
	if (rc != 0) {
		PC_LOG(ERR, control, "control_bind_host %s, control_port %d: %s",
		       cfg->control_bind_host, cfg->control_port, strerror(-rc));
		return rc;
	}
	c->self.control.port = bound;
	return 0;
}

static unsigned int
shard_capacity(const struct pc_cluster *c)
{
	uint64_t n = c->opts.shard_entries;

	if (n == 0) {
		/* Pages of 8 KiB on average, each entry on `replicas` owners. */
		n = c->opts.pool_capacity / 8192 * c->replicas;
		n = PC_MAX(n, SHARD_ENTRIES_MIN);
		n = PC_MIN(n, SHARD_ENTRIES_MAX);
	}
	return (unsigned int)PC_MIN(n, PC_DIR_ENTRIES_MAX);
}

struct pc_cluster *
pc_cluster_create(const struct pc_config *cfg, const struct pc_cluster_opts *o, uint64_t now_ns)
{
	struct pc_config_hostport seeds[PC_DISC_SEEDS_MAX];
	struct pc_cluster *c = calloc(1, sizeof(*c));
	struct pc_rpc_opts ro = {0};
	uint64_t timeout;
	int n_seeds = 0;

	if (c == NULL) {
		PC_LOG(ERR, control, "no memory for the cluster state");
		return NULL;
	}
	c->cfg = cfg;
	c->opts = *o;
	c->now_ns = now_ns;
	c->ops_tail = &c->ops;
	c->replicas = (unsigned int)cfg->directory_replicas;
	c->request_timeout_ns = (uint64_t)(cfg->request_timeout * 1e9);
	timeout = PC_MAX(NS_PER_S, 2 * c->request_timeout_ns);
	if (resolve_seeds(c, seeds, &n_seeds) != 0 || create_identity(c) != 0) {
		goto err;
	}
	c->self.role = o->role;
	c->self.pool_capacity = o->pool_capacity;
	snprintf(c->self.control.host, sizeof(c->self.control.host), "%s", c->self.hostname);
	snprintf(c->self.data.host, sizeof(c->self.data.host), "%s", c->self.hostname);
	c->self.data.port = o->data_port;

	ro.secret = (const uint8_t *)cfg->cluster_secret;
	ro.secret_len = strlen(cfg->cluster_secret);
	ro.on_request = on_request;
	ro.arg = c;
	ro.read_timeout_ns = timeout;
	ro.auth_timeout_ns = timeout;
	c->rpc = pc_rpc_create(&ro);
	if (c->rpc == NULL) {
		PC_LOG(ERR, control, "control RPC: %s", strerror(errno));
		goto err;
	}
	if (create_listeners(c, meta_port_of(c, seeds, n_seeds)) != 0) {
		goto err;
	}
	if (c->self.meta_port != 0) {
		c->master = pc_disc_master_create(PC_FRAME_MEMBERS_MAX,
						  (uint64_t)(cfg->member_ttl * 1e9),
						  c->self.incarnation, NULL, NULL);
		if (c->master == NULL) {
			goto err_nomem;
		}
	}
	if (o->role != PC_DISC_ROLE_META) {
		c->shard = pc_dir_shard_create(shard_capacity(c));
		c->pubq = calloc(PUB_QUEUE_LEN, sizeof(*c->pubq));
		c->recent = calloc(RECENT_LEN, sizeof(*c->recent));
		c->recent_ns = calloc(RECENT_LEN, sizeof(*c->recent_ns));
		if (c->shard == NULL || c->pubq == NULL || c->recent == NULL ||
		    c->recent_ns == NULL) {
			goto err_nomem;
		}
	}
	c->cache = pc_dir_cache_create(cfg->directory_read_cache_ttl > 0 ? 65536 : 0,
				       (uint64_t)(cfg->directory_read_cache_ttl * 1e9));
	if (c->cache == NULL) {
		goto err_nomem;
	}
	c->np = (struct pc_disc_node_params){
		.self = &c->self,
		.discovery_addr = c->discovery,
		.max_masters = (unsigned int)cfg->max_masters,
		.max_members = PC_FRAME_MEMBERS_MAX,
		.heartbeat_interval_ns = (uint64_t)(cfg->heartbeat_interval * 1e9),
		.member_ttl_ns = (uint64_t)(cfg->member_ttl * 1e9),
		.request_timeout_ns = 0,
		.cb = disc_event,
		.cb_arg = c,
	};
	c->node = pc_disc_node_create(&c->np, now_ns);
	if (c->node == NULL) {
		PC_LOG(ERR, control, "discovery: %s", strerror(errno));
		goto err;
	}
	c->ring_dirty = true;
	PC_LOG(NOTICE, control,
	       "node %s incarnation %" PRIu64 " on %s: control port %u, %s, discovery %s, "
	       "role %s",
	       c->self.node_id, c->self.incarnation, c->self.hostname, c->self.control.port,
	       c->master != NULL ? "discovery master on the meta port" : "no discovery master",
	       c->discovery,
	       o->role == PC_DISC_ROLE_META      ? "meta"
	       : o->role == PC_DISC_ROLE_STORAGE ? "storage"
						 : "inference");
	return c;

err_nomem:
	PC_LOG(ERR, control, "no memory for the cluster state");
err:
	pc_cluster_destroy(c);
	return NULL;
}

void
pc_cluster_destroy(struct pc_cluster *c)
{
	if (c == NULL) {
		return;
	}
	/* Handshake calls end first, before the leave below can answer any of them. */
	c->closing = true;
	qp_cancel_all(c);
	if (c->node != NULL && c->rpc != NULL) {
		struct pc_disc_action act[PC_DISC_MASTERS_MAX + PC_DISC_SEEDS_MAX];
		int n = pc_disc_node_leave(c->node, act, PC_ARRAY_SIZE(act));
		uint64_t t0 = c->now_ns;

		for (int i = 0; i < n; i++) {
			disc_send(c, &act[i], t0 + LEAVE_FLUSH_NS);
		}
		/* Give the masters a moment to take it; they prune us after member_ttl anyway. */
		while (n > 0 && c->now_ns - t0 < LEAVE_FLUSH_NS) {
			struct timespec ts;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			c->now_ns = PC_MAX(c->now_ns,
					   (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec);
			if (pc_rpc_poll(c->rpc, c->now_ns) == 0) {
				struct pc_rpc_stats st;

				pc_rpc_get_stats(c->rpc, &st);
				if (st.replies + st.call_failed + st.timeouts >= st.calls) {
					break;
				}
				usleep(1000);
			}
		}
	}
	/* Lookups end first, so the cancelled calls below find them finished. */
	for (struct lookup_op *op = c->ops; op != NULL; op = op->next) {
		op_finish(op, -ECANCELED);
	}
	/* Putting the peers cancels their calls (the callbacks run now, the rpc still up). */
	for (unsigned int i = 0; i < c->n_meta; i++) {
		pc_rpc_peer_put(c->meta[i].peer);
	}
	c->n_meta = 0;
	ring_ref_put(c->ring);
	c->ring = NULL;
	ring_ref_put(c->settled);
	c->settled = NULL;
	while (c->ops != NULL) {
		struct lookup_op *op = c->ops;

		c->ops = op->next;
		op_free(op);
	}
	pc_rpc_destroy(c->rpc);
	c->rpc = NULL;
	pc_disc_node_destroy(c->node);
	pc_disc_master_destroy(c->master);
	pc_dir_shard_free(c->shard);
	pc_dir_cache_free(c->cache);
	free(c->pubq);
	free(c->recent);
	free(c->recent_ns);
	free(c);
}

/*
 * This process was stopped (SIGSTOP, a stalled lcore) for more than
 * member_ttl: every master has pruned it and every shard has dropped its
 * locations. Come back as a new incarnation, so that nothing the old one
 * sent can be taken for the new one's, and rejoin from scratch.
 */
static int
reincarnate(struct pc_cluster *c, uint64_t silent_ns)
{
	const struct pc_config *cfg = c->cfg;
	const char *dir = cfg->disk_enabled && cfg->disk_path[0] ? cfg->disk_path : NULL;
	struct pc_disc_node *node;
	uint64_t old = c->self.incarnation;
	uint64_t inc;

	if (pc_disc_incarnation_new(dir, &inc) != 0 || inc <= old) {
		inc = old + 1;
	}
	c->self.incarnation = inc;
	node = pc_disc_node_create(&c->np, c->now_ns);
	if (node == NULL) {
		c->self.incarnation = old;
		return 0; /* the old node re-registers on its own */
	}
	pc_disc_node_destroy(c->node);
	c->node = node;
	if (c->shard != NULL) {
		pc_dir_shard_drop_node(c->shard, c->self.node_id, inc);
	}
	pc_dir_cache_invalidate_node(c->cache, c->self.node_id);
	c->ring_dirty = true;
	c->st.rejoins++;
	PC_LOG(NOTICE, control,
	       "this engine was silent for %.1f s, past member_ttl (%.1f s): rejoining as "
	       "incarnation %" PRIu64 " (was %" PRIu64 ")",
	       (double)silent_ns / 1e9, cfg->member_ttl, inc, old);
	return 1;
}

int
pc_cluster_wait_fd(const struct pc_cluster *c)
{
	return pc_rpc_wait_fd(c->rpc);
}

int
pc_cluster_poll(struct pc_cluster *c, uint64_t now_ns)
{
	int work = 0;

	c->now_ns = PC_MAX(c->now_ns, now_ns);
	if (c->last_poll_ns != 0 && c->now_ns - c->last_poll_ns > c->np.member_ttl_ns) {
		work += reincarnate(c, c->now_ns - c->last_poll_ns);
	}
	c->last_poll_ns = c->now_ns;
	work += pc_rpc_poll(c->rpc, c->now_ns);
	work += disc_poll(c);
	if (c->ring_dirty) {
		work += rebuild_ring(c);
	}
	work += publish_poll(c);
	work += reshard_poll(c);
	work += lookups_poll(c);
	return work;
}

/* ------------------------------------------------------------- inspection */

void
pc_cluster_set_usage(struct pc_cluster *c, uint64_t used)
{
	c->self.pool_used = used;
	pc_disc_node_set_usage(c->node, c->self.pool_capacity, used);
}

void
pc_cluster_get_info(const struct pc_cluster *c, struct pc_cluster_info *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->node_id, sizeof(out->node_id), "%s", c->self.node_id);
	out->incarnation = c->self.incarnation;
	out->role = c->self.role;
	snprintf(out->host, sizeof(out->host), "%s", c->self.hostname);
	out->control_port = c->self.control.port;
	out->meta_port = c->self.meta_port;
	out->is_master = c->master != NULL && pc_disc_node_is_master(c->node);
	out->set_gen = pc_disc_node_set_gen(c->node);
	out->members = pc_disc_node_member_count(c->node);
	out->ring_nodes = c->ring != NULL ? pc_ring_node_count(c->ring->ring) : 0;
	out->vnodes = (unsigned int)c->cfg->vnodes;
	out->replicas = c->replicas;
	out->resharding = c->walking || c->pruning || c->sweeping;
}

void
pc_cluster_get_stats(const struct pc_cluster *c, struct pc_cluster_stats *out)
{
	*out = c->st;
	pc_rpc_get_stats(c->rpc, &out->rpc);
	pc_disc_node_get_stats(c->node, &out->node);
	if (c->master != NULL) {
		pc_disc_master_get_stats(c->master, &out->master);
	}
	if (c->shard != NULL) {
		pc_dir_shard_stats(c->shard, &out->shard);
	}
	pc_dir_cache_stats(c->cache, &out->cache);
}

int
pc_cluster_members(const struct pc_cluster *c, struct pc_disc_member *out, unsigned int max)
{
	return view_members(c, out, max);
}

int
pc_cluster_masters(const struct pc_cluster *c, struct pc_disc_endpoint *out, unsigned int max)
{
	return pc_disc_node_masters(c->node, out, max);
}

const struct pc_ring *
pc_cluster_ring(const struct pc_cluster *c)
{
	return c->ring != NULL ? c->ring->ring : NULL;
}
