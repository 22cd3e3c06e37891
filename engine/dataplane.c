/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The engine's data plane (dataplane.h): transports per worker, remote
 * readers, and the rdma channel handshake between workers and the control
 * lcore.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_common.h>
#include <rte_malloc.h>
#include <rte_pause.h>

#include "dataplane.h"
#include "fetch.h"
#include "pc_common.h"
#include "pc_log.h"
#include "rdma.h"
#include "tcp.h"

#define DP_CQ_BURST 16 /* serving-only polls: no READs are posted there */
/* After a failed rdma handshake, a worker asks that peer again only this much later. */
#define DP_CONNECT_BACKOFF_NS (100ull * 1000 * 1000)
#define DP_BACKOFF_PEERS      8 /* failed peers remembered per worker */
/* Passive rdma channels remembered for eviction: the control lcore's transport's capacity. */
#define DP_PASSIVE_MAX PC_RDMA_CHANNELS_MAX

struct pc_dataplane;

/* One worker's share: polled by that worker only. */
struct dp_worker {
	struct pc_dataplane *dp;
	unsigned int idx; /* worker index = store cache index */
	struct pc_lcore *lc;
	struct pc_xport *tcp;  /* serves the data port; reads too unless rdma */
	struct pc_xport *rdma; /* reads when protocol = rdma and a device works */
	struct pc_fetch *fetch;
	struct pc_xport_cqe cqe[DP_CQ_BURST];
	/*
	 * Peers whose handshake failed lately: without this a dead or refusing
	 * peer would cost a QP and a control round trip every pass until the
	 * READs' deadline. The oldest entry is overwritten.
	 */
	struct {
		uint64_t incarnation;
		uint64_t until_ns;
		char node_id[PC_DIR_NODE_ID_MAX];
	} backoff[DP_BACKOFF_PEERS];
	unsigned int backoff_next;
} __rte_cache_aligned;

/* A passive rdma channel (this node the READ target), oldest first in dp->passive_ids. */
struct dp_passive {
	uint64_t id;
	uint64_t incarnation;
	char node_id[PC_DIR_NODE_ID_MAX];
};

/* A channel handshake on its way worker -> control -> peer -> control -> worker. */
struct qp_msg {
	struct pc_dataplane *dp;
	struct dp_worker *w;
	uint64_t chan;
	uint64_t incarnation; /* the peer's */
	int status;
	char node_id[PC_DIR_NODE_ID_MAX];
	struct pc_qp_info info; /* ours on the way out, the peer's on the way back */
};

/* A stale location a worker found, on its way to the control lcore. */
struct stale_msg {
	struct pc_dataplane *dp;
	struct pc_dir_loc loc;
	uint32_t key_len;
	uint8_t key[PC_STORE_KEY_MAX];
};

struct pc_dataplane {
	const struct pc_config *cfg;
	struct pc_runtime *rt;
	struct pc_lcore *control;
	struct pc_store *store;
	struct pc_cluster *cluster;
	struct pc_dirq *dirq;
	const struct pc_xport_ops *read_ops; /* &pc_xport_tcp or &pc_xport_rdma */
	struct pc_rdma_dev *rdev;
	struct pc_xport *passive; /* control lcore: the passive ends of peers' channels */
	struct pc_poller *passive_poller;
	struct dp_passive *passive_ids; /* FIFO, DP_PASSIVE_MAX */
	unsigned int n_passive;
	struct dp_worker *w;
	unsigned int nw;
	unsigned int n_tcp;  /* tcp transports created */
	unsigned int n_rdma; /* rdma transports created */
	unsigned int n_fetch;
	uint16_t port;
	/* control lcore */
	uint64_t qp_connects;
	uint64_t qp_failed;
	uint64_t qp_served;
	uint64_t qp_refused;
};

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------ rdma channels */

/* The backoff entry of (node_id, incarnation): its index, or -1. */
static int
backoff_find(const struct dp_worker *w, const char *node_id, uint64_t incarnation)
{
	for (int i = 0; i < DP_BACKOFF_PEERS; i++) {
		if (w->backoff[i].until_ns != 0 && w->backoff[i].incarnation == incarnation &&
		    strcmp(w->backoff[i].node_id, node_id) == 0) {
			return i;
		}
	}
	return -1;
}

static void
backoff_note(struct dp_worker *w, const char *node_id, uint64_t incarnation, bool failed)
{
	int i = backoff_find(w, node_id, incarnation);

	if (!failed) {
		if (i >= 0) {
			w->backoff[i].until_ns = 0;
		}
		return;
	}
	if (i < 0) {
		i = (int)w->backoff_next;
		w->backoff_next = (w->backoff_next + 1) % DP_BACKOFF_PEERS;
		w->backoff[i].incarnation = incarnation;
		snprintf(w->backoff[i].node_id, sizeof(w->backoff[i].node_id), "%s", node_id);
	}
	w->backoff[i].until_ns = mono_ns() + DP_CONNECT_BACKOFF_NS;
}

/* Control -> worker: the peer answered (or not); connect or drop the QP. */
static void
qp_done_on_worker(void *arg)
{
	struct qp_msg *m = arg;
	struct dp_worker *w = m->w;
	int rc = m->status;

	if (rc == 0) {
		rc = pc_rdma_chan_connect(w->rdma, m->chan, &m->info);
	} else {
		pc_rdma_chan_close(w->rdma, m->chan);
	}
	if (rc != 0) {
		PC_LOG(WARNING, engine, "rdma channel to %s: %s", m->node_id, strerror(-rc));
	}
	backoff_note(w, m->node_id, m->incarnation, rc != 0);
	free(m);
}

static void
qp_reply_to_worker(struct qp_msg *m)
{
	if (m->w->lc == m->dp->control) {
		qp_done_on_worker(m); /* one lcore runs everything */
		return;
	}
	/* The worker never blocks on the control lcore, so this wait is short, unless it stopped.
	 */
	while (pc_lcore_send(m->w->lc, qp_done_on_worker, m) != 0) {
		if (pc_runtime_stopping(m->dp->rt)) {
			free(m); /* the QP goes with its transport */
			return;
		}
		rte_pause();
	}
}

/* Control lcore: the peer's reply to QP_CONNECT. */
static void
qp_connected(void *arg, int status, const struct pc_qp_info *reply)
{
	struct qp_msg *m = arg;

	if (pc_runtime_stopping(m->dp->rt)) {
		/* Shutting down (the cluster cancels its calls): the QP goes with its transport. */
		free(m);
		return;
	}
	m->status = status;
	if (status == 0 && reply != NULL) {
		m->info = *reply;
	} else {
		m->dp->qp_failed++;
		if (m->status == 0) {
			m->status = -EPROTO;
		}
	}
	qp_reply_to_worker(m);
}

/* Control lcore: send a worker's QP record to the peer. */
static void
qp_connect_on_control(void *arg)
{
	struct qp_msg *m = arg;
	struct pc_dataplane *dp = m->dp;
	struct pc_cluster_info info;
	int rc;

	pc_cluster_get_info(dp->cluster, &info);
	/* Records carry this node's current incarnation (it changes after a rejoin). */
	m->info.incarnation = info.incarnation;
	dp->qp_connects++;
	rc = pc_cluster_qp_connect(dp->cluster, m->node_id, m->incarnation, &m->info, 0,
				   qp_connected, m);
	if (rc != 0) {
		dp->qp_failed++;
		m->status = rc;
		qp_reply_to_worker(m);
	}
}

/* Worker: its rdma transport needs a channel to peer (rdma.h, step 1). */
static void
qp_need_channel(void *arg, const struct pc_xport_peer *peer)
{
	struct dp_worker *w = arg;
	struct qp_msg *m;
	uint64_t id;
	int b = backoff_find(w, peer->node_id, peer->incarnation);

	if (b >= 0 && mono_ns() < w->backoff[b].until_ns) {
		return; /* failed lately: its READs wait, then go to the key's next location */
	}
	id = pc_rdma_chan_create(w->rdma, peer);
	if (id == 0) {
		return; /* the READs wait, and fail at their deadline */
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL || pc_rdma_chan_info(w->rdma, id, &m->info) != 0) {
		pc_rdma_chan_close(w->rdma, id);
		free(m);
		return;
	}
	m->dp = w->dp;
	m->w = w;
	m->chan = id;
	m->incarnation = peer->incarnation;
	snprintf(m->node_id, sizeof(m->node_id), "%s", peer->node_id);
	if (pc_lcore_send(w->dp->control, qp_connect_on_control, m) != 0) {
		pc_rdma_chan_close(w->rdma, id);
		free(m);
	}
}

/* Forget passive channel i of the FIFO (closing it first when close_it). */
static void
passive_drop(struct pc_dataplane *dp, unsigned int i, bool close_it)
{
	if (close_it) {
		pc_rdma_chan_close(dp->passive, dp->passive_ids[i].id);
	}
	memmove(&dp->passive_ids[i], &dp->passive_ids[i + 1],
		(dp->n_passive - i - 1) * sizeof(dp->passive_ids[0]));
	dp->n_passive--;
}

/*
 * Room for one more passive channel to (node_id, incarnation): the
 * oldest of that peer's goes when it has its cap, else the oldest of all
 * when the transport is full. Its remote end fails its next READ and the
 * peer connects again. Channels gone on their own are forgotten here.
 */
static void
passive_make_room(struct pc_dataplane *dp, const char *node_id, uint64_t incarnation)
{
	unsigned int mine = 0;
	unsigned int oldest_mine = UINT32_MAX;

	for (unsigned int i = 0; i < dp->n_passive;) {
		struct pc_qp_info dummy;

		if (pc_rdma_chan_info(dp->passive, dp->passive_ids[i].id, &dummy) != 0) {
			passive_drop(dp, i, false);
			continue;
		}
		if (dp->passive_ids[i].incarnation == incarnation &&
		    strcmp(dp->passive_ids[i].node_id, node_id) == 0) {
			if (oldest_mine == UINT32_MAX) {
				oldest_mine = i;
			}
			mine++;
		}
		i++;
	}
	if (mine >= PC_RDMA_PEER_CHANNELS_MAX && oldest_mine != UINT32_MAX) {
		passive_drop(dp, oldest_mine, true);
	} else if (dp->n_passive >= DP_PASSIVE_MAX) {
		passive_drop(dp, 0, true);
	}
}

/* Control lcore: a peer asks for a channel to this node (QP_CONNECT). */
static int
qp_serve(void *arg, const char *node_id, const struct pc_qp_info *remote, struct pc_qp_info *reply)
{
	struct pc_dataplane *dp = arg;
	struct pc_xport_peer peer = {.node_id = node_id, .incarnation = remote->incarnation};
	struct pc_cluster_info info;
	uint64_t id;
	int rc;

	passive_make_room(dp, node_id, remote->incarnation);
	id = pc_rdma_chan_create(dp->passive, &peer);
	if (id == 0) {
		dp->qp_refused++;
		return errno != 0 ? -errno : -ENOMEM;
	}
	rc = pc_rdma_chan_connect(dp->passive, id, remote);
	if (rc == 0) {
		rc = pc_rdma_chan_info(dp->passive, id, reply);
	}
	if (rc != 0) {
		pc_rdma_chan_close(dp->passive, id);
		dp->qp_refused++;
		return rc;
	}
	pc_cluster_get_info(dp->cluster, &info);
	reply->incarnation = info.incarnation;
	dp->passive_ids[dp->n_passive].id = id;
	dp->passive_ids[dp->n_passive].incarnation = remote->incarnation;
	snprintf(dp->passive_ids[dp->n_passive].node_id, sizeof(dp->passive_ids[0].node_id), "%s",
		 node_id);
	dp->n_passive++;
	dp->qp_served++;
	return 0;
}

/* Control lcore: the passive QPs post nothing; this reaps the ones that died. */
static int
passive_poll(void *arg, uint64_t now_tsc)
{
	struct pc_dataplane *dp = arg;
	struct pc_xport_cqe cqe[DP_CQ_BURST];

	return pc_xport_rdma.poll(dp->passive, pc_lcore_mono_ns(dp->control, now_tsc), cqe,
				  DP_CQ_BURST);
}

/* ------------------------------------------------------------ remote reads */

static int
worker_poll(void *arg, uint64_t now_tsc)
{
	struct dp_worker *w = arg;
	uint64_t now_ns = pc_lcore_mono_ns(w->lc, now_tsc);
	int work;

	/* The reader polls its transport: reading (and serving, for tcp). */
	work = pc_fetch_poll(w->fetch, now_ns);
	if (w->rdma != NULL) {
		/* Reading over rdma: the tcp transport only serves, no READ completes there. */
		work += pc_xport_tcp.poll(w->tcp, now_ns, w->cqe, DP_CQ_BURST);
		/* rdma completions wake no fd: no sleeping while READs are out. */
		if (pc_fetch_active(w->fetch)) {
			pc_lcore_stay_awake(w->lc);
		}
	}
	return work;
}

/* Worker -> control: the directory lookup of a remote GET or EXISTS (dirq.h). */
static int
fetch_lookup(void *arg, const struct pc_dir_key *keys, unsigned int n, uint64_t timeout_ns,
	     pc_cluster_lookup_fn cb, void *cb_arg)
{
	struct dp_worker *w = arg;

	return pc_dirq_lookup(w->dp->dirq, w->lc, keys, n, timeout_ns, cb, cb_arg);
}

/*
 * Control lcore: a reader found a location stale. The read cache forgets
 * it and the key's owners drop that location if it still has that
 * generation (a newer one of the same node stays).
 */
static void
stale_on_control(void *arg)
{
	struct stale_msg *m = arg;

	pc_cluster_stale_loc(m->dp->cluster, m->key, m->key_len, &m->loc);
	free(m);
}

static void
fetch_stale(void *arg, const void *key, uint32_t key_len, const struct pc_dir_loc *loc)
{
	struct dp_worker *w = arg;
	struct stale_msg *m;

	if (key_len == 0 || key_len > sizeof(m->key)) {
		return;
	}
	m = malloc(sizeof(*m));
	if (m == NULL) {
		return; /* the next reader finds it stale again */
	}
	m->dp = w->dp;
	m->loc = *loc;
	m->key_len = key_len;
	memcpy(m->key, key, key_len);
	if (pc_lcore_send(w->dp->control, stale_on_control, m) != 0) {
		free(m);
	}
}

/* ------------------------------------------------------------ setup */

/*
 * protocol = "rdma": the device, the passive transport and one rdma
 * transport per worker. Any failure is a warning and leaves nothing
 * behind: the node then reads over tcp.
 */
static void
rdma_setup(struct pc_dataplane *dp)
{
	const struct pc_config *cfg = dp->cfg;
	struct pc_rdma_dev_opts o = {
		.device_name = cfg->device_name,
		.ib_port = cfg->ib_port,
		.gid_index = cfg->gid_index,
	};
	struct pc_xport_opts xo = {
		.seg_base = pc_store_segment_base(dp->store),
		.seg_size = pc_store_segment_size(dp->store),
		.max_channels_per_peer = (unsigned int)cfg->max_channels_per_peer,
		.op_timeout_ns = (uint64_t)(cfg->request_timeout * 1e9),
	};
	char rail[PC_CONFIG_STR_MAX];
	char why[256];

	/* device_names (rails) overrides device_name; one rail is used for now. */
	if (cfg->device_names[0] != '\0') {
		size_t n = strcspn(cfg->device_names, ",");

		snprintf(rail, sizeof(rail), "%.*s", (int)n, cfg->device_names);
		o.device_name = rail;
		if (cfg->device_names[n] != '\0') {
			PC_LOG(WARNING, engine,
			       "device_names: reading over the first rail only (%s); the others "
			       "are "
			       "not used yet",
			       rail);
		}
	}
	if (pc_rdma_probe(o.device_name, cfg->ib_port, why, sizeof(why)) != 0) {
		PC_LOG(WARNING, engine, "protocol rdma: %s; reading over tcp", why);
		return;
	}
	dp->rdev = pc_rdma_dev_open(&o, xo.seg_base, xo.seg_size);
	if (dp->rdev == NULL) {
		PC_LOG(WARNING, engine,
		       "protocol rdma: the device did not open (%s); reading over tcp",
		       strerror(errno));
		return;
	}
	dp->passive_ids = calloc(DP_PASSIVE_MAX, sizeof(*dp->passive_ids));
	xo.max_channels_per_peer = PC_RDMA_PEER_CHANNELS_MAX;
	dp->passive = dp->passive_ids != NULL ? pc_rdma_create(&xo, dp->rdev) : NULL;
	/*
	 * A peer keeps at most PC_RDMA_PEER_CHANNELS_MAX passive QPs for this
	 * node, shared by all its workers: past that they would evict each
	 * other's. Nodes are assumed to run as many workers as this one.
	 */
	xo.max_channels_per_peer =
		PC_MIN((unsigned int)cfg->max_channels_per_peer,
		       PC_MAX(1u, PC_RDMA_PEER_CHANNELS_MAX / PC_MAX(1u, dp->nw)));
	if (xo.max_channels_per_peer < (unsigned int)cfg->max_channels_per_peer) {
		PC_LOG(NOTICE, engine,
		       "protocol rdma: %u channel(s) per peer and worker (max_channels_per_peer "
		       "%d): "
		       "a peer holds at most %u for this node",
		       xo.max_channels_per_peer, cfg->max_channels_per_peer,
		       PC_RDMA_PEER_CHANNELS_MAX);
	}
	for (unsigned int i = 0; dp->passive != NULL && i < dp->nw; i++) {
		xo.ci = i;
		dp->w[i].rdma = pc_rdma_create(&xo, dp->rdev);
		if (dp->w[i].rdma == NULL) {
			break;
		}
		pc_rdma_set_connect_cb(dp->w[i].rdma, qp_need_channel, &dp->w[i]);
		dp->n_rdma++;
	}
	if (dp->passive == NULL || dp->n_rdma < dp->nw) {
		PC_LOG(WARNING, engine, "protocol rdma: no rdma transport (%s); reading over tcp",
		       strerror(errno));
		for (unsigned int i = 0; i < dp->n_rdma; i++) {
			pc_xport_rdma.destroy(dp->w[i].rdma);
			dp->w[i].rdma = NULL;
		}
		dp->n_rdma = 0;
		if (dp->passive != NULL) {
			pc_xport_rdma.destroy(dp->passive);
			dp->passive = NULL;
		}
		free(dp->passive_ids);
		dp->passive_ids = NULL;
		pc_rdma_dev_close(dp->rdev);
		dp->rdev = NULL;
		return;
	}
	dp->read_ops = &pc_xport_rdma;
	if (cfg->page_quarantine <= 0.0) {
		PC_LOG(WARNING, engine,
		       "protocol rdma with page_quarantine 0: a READ racing a slot's reuse on its "
		       "owner "
		       "can only be caught by the page header check");
	}
}

struct pc_dataplane *
pc_dataplane_create(const struct pc_config *cfg, struct pc_runtime *rt, struct pc_store *st)
{
	struct pc_dataplane *dp = rte_zmalloc(NULL, sizeof(*dp), RTE_CACHE_LINE_SIZE);
	struct pc_xport_opts o = {
		.store = st,
		.seg_base = pc_store_segment_base(st),
		.seg_size = pc_store_segment_size(st),
		.bind_host = cfg->rdma_bind_host,
		.port = (uint16_t)cfg->rdma_port,
		.secret = (const uint8_t *)cfg->cluster_secret,
		.secret_len = strlen(cfg->cluster_secret),
		/* The config allows up to 1024; tcp keeps at most PC_TCP_CHANNELS_MAX. */
		.max_channels_per_peer =
			PC_MIN((unsigned int)cfg->max_channels_per_peer, PC_TCP_CHANNELS_MAX),
		.op_timeout_ns = (uint64_t)(cfg->request_timeout * 1e9),
		.tcp_zerocopy = cfg->tcp_zerocopy,
	};

	if (dp == NULL) {
		PC_LOG(ERR, engine, "no memory for the data plane");
		return NULL;
	}
	dp->cfg = cfg;
	dp->rt = rt;
	dp->control = pc_runtime_control(rt);
	dp->store = st;
	dp->nw = pc_runtime_worker_count(rt);
	dp->read_ops = &pc_xport_tcp;
	dp->w = rte_zmalloc(NULL, dp->nw * sizeof(*dp->w), RTE_CACHE_LINE_SIZE);
	if (dp->w == NULL) {
		PC_LOG(ERR, engine, "no memory for the data plane");
		goto err_destroy;
	}
	for (unsigned int i = 0; i < dp->nw; i++) {
		struct dp_worker *w = &dp->w[i];

		w->dp = dp;
		w->idx = i;
		w->lc = pc_runtime_worker(rt, i);
		o.ci = i;
		w->tcp = pc_xport_tcp.create(&o);
		if (w->tcp == NULL) {
			PC_LOG(ERR, engine, "data plane: rdma_bind_host %s, rdma_port %u: %s",
			       cfg->rdma_bind_host, o.port, strerror(errno));
			goto err_destroy;
		}
		dp->n_tcp++;
		/* Port 0 was ephemeral: the others share the first one's. */
		o.port = pc_xport_tcp.port(w->tcp);
	}
	dp->port = o.port;
	if (cfg->protocol == PC_PROTO_RDMA) {
		rdma_setup(dp);
	}
	PC_LOG(INFO, engine,
	       "data plane: serving over tcp on %s port %u, reading over %s, %u lcore(s)",
	       cfg->rdma_bind_host, dp->port, dp->read_ops->name, dp->nw);
	return dp;

err_destroy:
	pc_dataplane_destroy(dp);
	return NULL;
}

uint16_t
pc_dataplane_port(const struct pc_dataplane *dp)
{
	return dp->port;
}

const char *
pc_dataplane_transport(const struct pc_dataplane *dp)
{
	return dp->read_ops->name;
}

/*
 * Half the quarantine: the owner reuses a freed slot only after a whole
 * one. No quarantine: no bound but the request's (0), with the warning
 * rdma_setup() gave.
 */
static uint64_t
rdma_read_timeout(const struct pc_config *cfg)
{
	return (uint64_t)(cfg->page_quarantine * 1e9) / 2;
}

int
pc_dataplane_attach(struct pc_dataplane *dp, struct pc_cluster *c, struct pc_dirq *q,
		    struct pc_sessions *ss)
{
	struct pc_cluster_info info;

	dp->cluster = c;
	dp->dirq = q;
	pc_cluster_get_info(c, &info);
	for (unsigned int i = 0; i < dp->nw; i++) {
		struct dp_worker *w = &dp->w[i];
		struct pc_fetch_opts o = {
			.store = dp->store,
			.ci = i,
			.xops = dp->read_ops,
			.xport = w->rdma != NULL ? w->rdma : w->tcp,
			.self_id = info.node_id,
			/* A page whose owner computed its CRC32C (page_crc) is checked. */
			.verify_crc = true,
			.timeout_ns = (uint64_t)(dp->cfg->request_timeout * 1e9),
			/* One-sided READs cannot pin: over before the owner may reuse a slot. */
			.read_timeout_ns = w->rdma != NULL ? rdma_read_timeout(dp->cfg) : 0,
			.lookup = fetch_lookup,
			.lookup_arg = w,
			.stale = fetch_stale,
			.stale_arg = w,
		};

		w->fetch = pc_fetch_create(&o);
		if (w->fetch == NULL) {
			PC_LOG(ERR, engine, "no memory for the remote readers");
			return -ENOMEM;
		}
		dp->n_fetch++;
		if (pc_lcore_poller_register(w->lc, "data", worker_poll, w) == NULL) {
			return -ENOMEM;
		}
		/* An idle worker's sleep ends when a socket it reads or serves is ready. */
		(void)pc_lcore_wait_fd_add(w->lc, pc_xport_tcp.wait_fd(w->tcp));
		pc_sessions_set_fetch(ss, i, w->fetch);
	}
	if (dp->passive != NULL) {
		pc_cluster_set_qp_handler(c, qp_serve, dp);
		dp->passive_poller =
			pc_lcore_poller_register(dp->control, "rdma-passive", passive_poll, dp);
		if (dp->passive_poller == NULL) {
			return -ENOMEM;
		}
	}
	return 0;
}

static void
add_counters(uint64_t *dst, const uint64_t *src, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		dst[k] += src[k];
	}
}

_Static_assert(sizeof(struct pc_fetch_stats) % sizeof(uint64_t) == 0, "counters only");
_Static_assert(sizeof(struct pc_xport_stats) % sizeof(uint64_t) == 0, "counters only");

void
pc_dataplane_stats(void *arg, struct pc_admin_data_stats *out)
{
	struct pc_dataplane *dp = arg;

	for (unsigned int i = 0; i < dp->n_fetch; i++) {
		struct pc_fetch_stats fs;

		pc_fetch_get_stats(dp->w[i].fetch, &fs);
		add_counters((uint64_t *)&out->fetch, (const uint64_t *)&fs,
			     sizeof(fs) / sizeof(uint64_t));
	}
	/* Counters of a transport another lcore polls: read as they are, maybe a pass late. */
	for (unsigned int i = 0; i < dp->nw; i++) {
		struct pc_xport_stats xs;

		if (dp->w[i].tcp != NULL) {
			pc_xport_tcp.get_stats(dp->w[i].tcp, &xs);
			add_counters((uint64_t *)&out->xport, (const uint64_t *)&xs,
				     sizeof(xs) / sizeof(uint64_t));
		}
		if (dp->w[i].rdma != NULL) {
			pc_xport_rdma.get_stats(dp->w[i].rdma, &xs);
			add_counters((uint64_t *)&out->xport, (const uint64_t *)&xs,
				     sizeof(xs) / sizeof(uint64_t));
		}
	}
	if (dp->passive != NULL) {
		struct pc_xport_stats xs;

		pc_xport_rdma.get_stats(dp->passive, &xs);
		add_counters((uint64_t *)&out->xport, (const uint64_t *)&xs,
			     sizeof(xs) / sizeof(uint64_t));
	}
	out->qp_connects = dp->qp_connects;
	out->qp_failed = dp->qp_failed;
	out->qp_served = dp->qp_served;
	out->qp_refused = dp->qp_refused;
}

void
pc_dataplane_destroy(struct pc_dataplane *dp)
{
	if (dp == NULL) {
		return;
	}
	for (unsigned int i = 0; dp->w != NULL && i < dp->n_fetch; i++) {
		pc_fetch_destroy(dp->w[i].fetch);
	}
	/* tcp unpins what it was serving: before the store goes. */
	for (unsigned int i = 0; dp->w != NULL && i < dp->n_tcp; i++) {
		pc_lcore_wait_fd_del(dp->w[i].lc, pc_xport_tcp.wait_fd(dp->w[i].tcp));
		pc_xport_tcp.destroy(dp->w[i].tcp);
	}
	for (unsigned int i = 0; dp->w != NULL && i < dp->n_rdma; i++) {
		pc_xport_rdma.destroy(dp->w[i].rdma);
	}
	if (dp->passive != NULL) {
		pc_xport_rdma.destroy(dp->passive);
	}
	free(dp->passive_ids);
	pc_rdma_dev_close(dp->rdev);
	rte_free(dp->w);
	rte_free(dp);
}
