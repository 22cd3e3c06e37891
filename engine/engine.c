/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "admin.h"
#include "cluster.h"
#include "dirq.h"
#include "dataplane.h"
#include "engine.h"
#include "lcore.h"
#include "pc_common.h"
#include "pc_log.h"
#include "session.h"
#include "store.h"

#define PC_ENGINE_STATS_PERIOD_US (10ULL * 1000 * 1000)
#define PC_ENGINE_USAGE_PERIOD_US (1000ULL * 1000)
/* Page events batched per lcore before they go to the control lcore. */
#define DIRPUB_BATCH 64

/* A batch of page events from one lcore, for the cluster directory. */
struct dirpub_msg {
	struct pc_engine *e;
	unsigned int n;
	struct {
		bool published;
		uint16_t key_len;
		uint32_t len;
		uint64_t off;
		uint64_t generation;
		uint8_t key[PC_STORE_KEY_MAX];
	} ev[DIRPUB_BATCH];
};

/* One lcore's batch being filled; only that lcore touches it. */
struct dirpub_buf {
	struct pc_engine *e;
	unsigned int ci;
	struct dirpub_msg *msg;
	uint64_t dropped;
} __rte_cache_aligned;

struct pc_engine {
	const struct pc_config *cfg;
	struct pc_runtime *rt;
	struct pc_lcore *control;
	struct pc_poller *stop_poller;
	struct pc_poller *ready_poller;
	struct pc_poller *store_poller;
	struct pc_poller *cluster_poller;
	struct pc_store *store; /* NULL for role meta */
	struct pc_sessions *sessions;
	struct pc_cluster *cluster;
	struct pc_admin *admin;
	struct pc_dirq *dirq;      /* workers' directory lookups (the data plane's remote GETs) */
	struct pc_dataplane *dp;   /* transports and remote readers; NULL for role meta */
	struct dirpub_buf *dirpub; /* per cache index */
	unsigned int n_dirpub;
	unsigned int control_ci;
	bool store_reader;
	struct pc_timer stats_timer;
	struct pc_timer usage_timer;
	uint64_t rejoins;              /* pc_cluster_rejoins() last acted on */
	bool announcing;               /* publishing every page again after a rejoin */
	struct pc_store_walk announce; /* where that walk is */
	uint64_t start_tsc;
};

/* Set by the signal handler, read by the control lcore's stop poller. */
static volatile sig_atomic_t g_stop_signal;

void
pc_engine_request_stop(int signo)
{
	g_stop_signal = signo ? signo : SIGTERM;
}

static int
stop_poll(void *arg, uint64_t now_tsc)
{
	struct pc_engine *e = arg;
	int signo = g_stop_signal;

	(void)now_tsc;
	if (signo == 0) {
		return 0;
	}
	PC_LOG(NOTICE, engine, "SIG%s received: stopping", sigabbrev_np(signo));
	pc_lcore_poller_unregister(e->control, e->stop_poller);
	e->stop_poller = NULL;
	pc_runtime_stop(e->rt);
	return 1;
}

static int
ready_poll(void *arg, uint64_t now_tsc)
{
	struct pc_engine *e = arg;
	const struct pc_config *cfg = e->cfg;

	if (!pc_runtime_all_running(e->rt)) {
		return 0;
	}
	PC_LOG(NOTICE, engine,
	       "ready: pid %d, control lcore %u, %u worker lcore(s), protocol %s, "
	       "discovery %s, idle policy %s, config %s, %.3f s after start",
	       (int)getpid(), pc_lcore_id(e->control),
	       rte_lcore_count() > 1 ? rte_lcore_count() - 1 : 0,
	       pc_config_protocol_name(cfg->protocol), cfg->discovery_addr,
	       pc_config_idle_policy_name(cfg->idle_policy), cfg->source,
	       (double)(now_tsc - e->start_tsc) / (double)pc_tsc_hz());
	pc_lcore_poller_unregister(e->control, e->ready_poller);
	e->ready_poller = NULL;
	return 1;
}

static void
log_lcore_stats(struct pc_engine *e, uint32_t level)
{
	unsigned int id;

	RTE_LCORE_FOREACH (id) {
		struct pc_lcore_stats st;
		struct pc_lcore *lc = pc_runtime_lcore(e->rt, id);
		uint64_t total;

		if (lc == NULL) {
			continue;
		}
		pc_lcore_get_stats(lc, &st);
		total = st.busy_cycles + st.idle_cycles;
		rte_log(level, pc_logtype_engine,
			"peercache.engine: lcore %u (%s): %" PRIu64 " passes, %.1f%% busy, %" PRIu64
			" messages, %" PRIu64 " timers, %" PRIu64 " sleeps (%" PRIu64 " woken)\n",
			id, pc_lcore_is_control(lc) ? "control" : "worker", st.passes,
			total ? 100.0 * (double)st.busy_cycles / (double)total : 0.0, st.msgs,
			st.timers_fired, st.sleeps, st.wakeups);
	}
}

static void
stats_fire(struct pc_timer *timer, void *arg, uint64_t now_tsc)
{
	(void)timer;
	(void)now_tsc;
	log_lcore_stats(arg, RTE_LOG_DEBUG);
}

/* The control lcore's share of the store: its quarantine, RCU state and eviction. */
static int
store_poll(void *arg, uint64_t now_tsc)
{
	struct pc_engine *e = arg;
	int work;

	if (!e->store_reader) {
		if (pc_store_reader_register(e->store, e->control_ci) != 0) {
			return 0;
		}
		e->store_reader = true;
	}
	work = pc_store_poll(e->store, e->control_ci, now_tsc);
	return work + pc_store_evict_poll(e->store, e->control_ci, now_tsc);
}

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void dirpub_flush(struct pc_engine *e, unsigned int ci);

/*
 * After a rejoin as a new incarnation, every shard has dropped this node's
 * locations: walk the store and publish every page again, a batch at a
 * time while the cluster's queue has room for it.
 */
static int
announce_poll(struct pc_engine *e)
{
	uint64_t rejoins = pc_cluster_rejoins(e->cluster);

	if (e->store == NULL) {
		return 0;
	}
	if (rejoins != e->rejoins) {
		e->rejoins = rejoins;
		e->announce = (struct pc_store_walk){0};
		e->announcing = true;
		PC_LOG(NOTICE, engine, "rejoined the cluster: publishing every page again");
	}
	if (!e->announcing || pc_cluster_publish_room(e->cluster) < 2 * DIRPUB_BATCH) {
		return 0;
	}
	pc_store_announce(e->store, e->control_ci, &e->announce, DIRPUB_BATCH);
	dirpub_flush(e, e->control_ci);
	if (e->announce.done) {
		e->announcing = false;
		PC_LOG(INFO, engine, "every page published again");
	}
	return 1;
}

/* The cluster, and its fd out of the control lcore's wait set. */
static void
cluster_destroy(struct pc_engine *e)
{
	if (e->cluster != NULL && e->control != NULL) {
		pc_lcore_wait_fd_del(e->control, pc_cluster_wait_fd(e->cluster));
	}
	pc_cluster_destroy(e->cluster);
	e->cluster = NULL;
}

static int
cluster_poll(void *arg, uint64_t now_tsc)
{
	struct pc_engine *e = arg;

	return pc_cluster_poll(e->cluster, pc_lcore_mono_ns(e->control, now_tsc)) +
	       announce_poll(e);
}

static void
usage_fire(struct pc_timer *timer, void *arg, uint64_t now_tsc)
{
	struct pc_engine *e = arg;
	struct pc_store_stats st;

	(void)timer;
	(void)now_tsc;
	pc_store_get_stats(e->store, &st);
	pc_cluster_set_usage(e->cluster, st.bytes_used);
}

/* Control lcore: hand a batch of page events to the cluster, in order. */
static void
dirpub_deliver(void *arg)
{
	struct dirpub_msg *m = arg;

	for (unsigned int i = 0; i < m->n; i++) {
		if (m->ev[i].published) {
			struct pc_cluster_pub p = {
				.key = m->ev[i].key,
				.key_len = m->ev[i].key_len,
				.length = m->ev[i].len,
				.offset = m->ev[i].off,
				.generation = m->ev[i].generation,
			};

			pc_cluster_publish(m->e->cluster, &p, 1);
		} else {
			struct pc_dir_key k = {.bytes = m->ev[i].key, .len = m->ev[i].key_len};

			pc_cluster_unpublish(m->e->cluster, &k, 1);
		}
	}
	free(m);
}

/* Send this lcore's batch on (or hand it over at once on the control lcore). */
static void
dirpub_flush(struct pc_engine *e, unsigned int ci)
{
	struct dirpub_buf *b = &e->dirpub[ci];
	struct dirpub_msg *m = b->msg;

	if (m == NULL || m->n == 0) {
		return;
	}
	b->msg = NULL;
	if (ci == e->control_ci) {
		dirpub_deliver(m);
		return;
	}
	if (pc_lcore_send(e->control, dirpub_deliver, m) != 0) {
		/* The control lcore is swamped: those pages cost a remote miss, nothing more. */
		b->dropped += m->n;
		free(m);
	}
}

/* A store event on lcore ci (datapath): batch it. */
static void
dirpub_event(void *arg, unsigned int ci, bool published, const struct pc_store_event *ev)
{
	struct pc_engine *e = arg;
	struct dirpub_buf *b = &e->dirpub[ci];
	struct dirpub_msg *m = b->msg;

	if (ev->key_len == 0 || ev->key_len > PC_STORE_KEY_MAX) {
		return;
	}
	if (m == NULL) {
		m = malloc(sizeof(*m));
		if (m == NULL) {
			b->dropped++;
			return;
		}
		m->e = e;
		m->n = 0;
		b->msg = m;
	}
	m->ev[m->n].published = published;
	m->ev[m->n].key_len = (uint16_t)ev->key_len;
	m->ev[m->n].len = ev->len;
	m->ev[m->n].off = ev->off;
	m->ev[m->n].generation = ev->generation;
	memcpy(m->ev[m->n].key, ev->key, ev->key_len);
	if (++m->n == DIRPUB_BATCH) {
		dirpub_flush(e, ci);
	}
}

/* Each lcore that uses the store flushes what it batched at the end of its pass. */
static int
dirpub_poll(void *arg, uint64_t now_tsc)
{
	const struct dirpub_buf *b = arg;

	(void)now_tsc;
	if (b->msg == NULL || b->msg->n == 0) {
		return 0;
	}
	dirpub_flush(b->e, b->ci);
	return 1;
}

static enum pc_disc_role
disc_role(enum pc_role role)
{
	switch (role) {
	case PC_ROLE_STORAGE:
		return PC_DISC_ROLE_STORAGE;
	case PC_ROLE_META:
		return PC_DISC_ROLE_META;
	case PC_ROLE_AUTO:
	case PC_ROLE_INFERENCE:
	default:
		return PC_DISC_ROLE_INFERENCE;
	}
}

static int
create_cluster(struct pc_engine *e)
{
	struct pc_cluster_opts o = {
		.role = disc_role(e->cfg->role),
		.pool_capacity = e->store != NULL ? pc_store_segment_size(e->store) : 0,
		.data_port = e->dp != NULL ? pc_dataplane_port(e->dp) : 0,
	};
	e->cluster = pc_cluster_create(e->cfg, &o, mono_ns());
	if (e->cluster == NULL) {
		return -EINVAL;
	}
	e->cluster_poller = pc_lcore_poller_register(e->control, "cluster", cluster_poll, e);
	if (e->cluster_poller == NULL) {
		return -ENOMEM;
	}
	/* An RPC (a lookup reply, a peer's request) ends the control lcore's idle sleep. */
	(void)pc_lcore_wait_fd_add(e->control, pc_cluster_wait_fd(e->cluster));
	e->dirq = pc_dirq_create(e->rt, e->cluster);
	if (e->dirq == NULL) {
		return -ENOMEM;
	}
	if (e->store == NULL) {
		return 0;
	}
	e->n_dirpub = e->control_ci + 1;
	e->dirpub = rte_zmalloc(NULL, e->n_dirpub * sizeof(*e->dirpub), RTE_CACHE_LINE_SIZE);
	if (e->dirpub == NULL) {
		return -ENOMEM;
	}
	for (unsigned int ci = 0; ci < e->n_dirpub; ci++) {
		struct pc_lcore *lc =
			ci == e->control_ci ? e->control : pc_runtime_worker(e->rt, ci);

		e->dirpub[ci].e = e;
		e->dirpub[ci].ci = ci;
		if (pc_lcore_poller_register(lc, "dirpub", dirpub_poll, &e->dirpub[ci]) == NULL) {
			return -ENOMEM;
		}
	}
	pc_store_set_event_cb(e->store, dirpub_event, e);
	return pc_timer_start(e->control, &e->usage_timer,
			      e->start_tsc + pc_us_to_tsc(PC_ENGINE_USAGE_PERIOD_US),
			      pc_us_to_tsc(PC_ENGINE_USAGE_PERIOD_US));
}

static int
create_store(struct pc_engine *e)
{
	const struct pc_config *cfg = e->cfg;
	unsigned int nworkers = pc_runtime_worker_count(e->rt);
	bool control_works = pc_lcore_is_control(pc_runtime_worker(e->rt, 0));
	struct pc_store_opts o = {
		.name = "pc",
		.segment_size = cfg->global_segment_size,
		.hugepages = rte_eal_has_hugepages() != 0,
		/* Workers use 0..n-1, the control lcore n (or 0 when it runs the workers too). */
		.nb_caches = control_works ? 1 : nworkers + 1,
		.quarantine_us = (uint64_t)(cfg->page_quarantine * 1e6),
		.page_crc = cfg->page_crc,
	};

	e->control_ci = control_works ? 0 : nworkers;
	e->store = pc_store_create(&o);
	if (e->store == NULL) {
		return -ENOMEM;
	}
	e->store_poller = pc_lcore_poller_register(e->control, "store", store_poll, e);
	return e->store_poller == NULL ? -ENOMEM : 0;
}

struct pc_engine *
pc_engine_create(const struct pc_config *cfg)
{
	struct pc_runtime_opts opts = {
		.name = "pc",
		.idle_policy = cfg->idle_policy,
	};
	struct pc_engine *e = rte_zmalloc(NULL, sizeof(*e), 0);

	if (e == NULL) {
		PC_LOG(ERR, engine, "no memory for the engine");
		return NULL;
	}
	e->cfg = cfg;
	e->start_tsc = rte_rdtsc();
	/* Initialised before anything can fail: destroy stops them whether they ran or not. */
	pc_timer_init(&e->stats_timer, stats_fire, e);
	pc_timer_init(&e->usage_timer, usage_fire, e);
	if (cfg->cluster_secret[0] == '\0') {
		PC_LOG(WARNING, engine,
		       "no cluster_secret: control and data connections are not authenticated; "
		       "set cluster_secret_file on every node of a shared network");
	}
	e->rt = pc_runtime_create(&opts);
	if (e->rt == NULL) {
		goto err_free_engine;
	}
	e->control = pc_runtime_control(e->rt);
	e->stop_poller = pc_lcore_poller_register(e->control, "stop", stop_poll, e);
	if (e->stop_poller == NULL) {
		goto err_destroy_runtime;
	}
	e->ready_poller = pc_lcore_poller_register(e->control, "ready", ready_poll, e);
	if (e->ready_poller == NULL) {
		goto err_destroy_runtime;
	}
	if (cfg->role != PC_ROLE_META) {
		if (create_store(e) != 0) {
			goto err_destroy_runtime;
		}
		e->dp = pc_dataplane_create(cfg, e->rt, e->store);
		if (e->dp == NULL) {
			goto err_destroy_runtime;
		}
	}
	e->sessions = pc_sessions_create(cfg, e->rt, e->store);
	if (e->sessions == NULL) {
		goto err_destroy_runtime;
	}
	/* Last: a node joins the cluster only once it can serve its clients. */
	if (create_cluster(e) != 0) {
		goto err_destroy_runtime;
	}
	if (e->dp != NULL && pc_dataplane_attach(e->dp, e->cluster, e->dirq, e->sessions) != 0) {
		goto err_destroy_runtime;
	}
	{
		struct pc_admin_deps d = {.cfg = cfg,
					  .rt = e->rt,
					  .sessions = e->sessions,
					  .store = e->store,
					  .cluster = e->cluster,
					  .data_stats = e->dp != NULL ? pc_dataplane_stats : NULL,
					  .data_arg = e->dp,
					  .transport = e->dp != NULL ? pc_dataplane_transport(e->dp)
								     : NULL};

		e->admin = pc_admin_create(&d);
		if (e->admin == NULL) {
			goto err_destroy_runtime;
		}
	}
	if (pc_timer_start(e->control, &e->stats_timer,
			   e->start_tsc + pc_us_to_tsc(PC_ENGINE_STATS_PERIOD_US),
			   pc_us_to_tsc(PC_ENGINE_STATS_PERIOD_US)) != 0) {
		goto err_destroy_runtime;
	}
	return e;

err_destroy_runtime:
	pc_admin_destroy(e->admin);
	pc_sessions_destroy(e->sessions);
	pc_dirq_destroy(e->dirq);
	cluster_destroy(e);
	pc_dataplane_destroy(e->dp);
	pc_store_destroy(e->store);
	rte_free(e->dirpub);
	/* The runtime frees the pollers and timer heap registered on its lcores. */
	pc_runtime_destroy(e->rt);
err_free_engine:
	rte_free(e);
	return NULL;
}

int
pc_engine_run(struct pc_engine *e)
{
	int rc = pc_runtime_launch(e->rt);

	if (rc != 0) {
		return rc;
	}
	pc_lcore_run(e->control);
	rc = pc_runtime_wait(e->rt);
	log_lcore_stats(e, RTE_LOG_INFO);
	PC_LOG(NOTICE, engine, "stopped");
	return rc;
}

void
pc_engine_destroy(struct pc_engine *e)
{
	if (e == NULL) {
		return;
	}
	pc_admin_destroy(e->admin);
	/* Sessions give their landing slots back; the readers then free what is still in flight. */
	pc_sessions_destroy(e->sessions);
	pc_dirq_destroy(e->dirq);
	/* Leaves the cluster (DEREGISTER to the masters) before the pages go. */
	cluster_destroy(e);
	for (unsigned int ci = 0; ci < e->n_dirpub; ci++) {
		free(e->dirpub[ci].msg);
	}
	rte_free(e->dirpub);
	/* Its readers and transports (tcp unpins what it was serving): before the store goes. */
	pc_dataplane_destroy(e->dp);
	if (e->store_reader) {
		pc_store_reader_unregister(e->store, e->control_ci);
	}
	pc_store_destroy(e->store);
	if (e->rt != NULL) {
		pc_timer_stop(e->control, &e->stats_timer);
		pc_timer_stop(e->control, &e->usage_timer);
		pc_runtime_destroy(e->rt);
	}
	rte_free(e);
}
