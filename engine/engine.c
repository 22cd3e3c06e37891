/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "engine.h"
#include "lcore.h"
#include "pc_log.h"
#include "session.h"
#include "store.h"

#define PC_ENGINE_STATS_PERIOD_US (10ULL * 1000 * 1000)

struct pc_engine {
	const struct pc_config *cfg;
	struct pc_runtime *rt;
	struct pc_lcore *control;
	struct pc_poller *stop_poller;
	struct pc_poller *ready_poller;
	struct pc_poller *store_poller;
	struct pc_store *store;
	struct pc_sessions *sessions;
	unsigned int control_ci;
	bool store_reader;
	struct pc_timer stats_timer;
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
			" messages, %" PRIu64 " timers, %" PRIu64 " sleeps\n",
			id, pc_lcore_is_control(lc) ? "control" : "worker", st.passes,
			total ? 100.0 * (double)st.busy_cycles / (double)total : 0.0, st.msgs,
			st.timers_fired, st.sleeps);
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
	if (create_store(e) != 0) {
		goto err_destroy_runtime;
	}
	e->sessions = pc_sessions_create(cfg, e->rt, e->store);
	if (e->sessions == NULL) {
		goto err_destroy_runtime;
	}
	pc_timer_init(&e->stats_timer, stats_fire, e);
	if (pc_timer_start(e->control, &e->stats_timer,
			   e->start_tsc + pc_us_to_tsc(PC_ENGINE_STATS_PERIOD_US),
			   pc_us_to_tsc(PC_ENGINE_STATS_PERIOD_US)) != 0) {
		goto err_destroy_runtime;
	}
	return e;

err_destroy_runtime:
	pc_sessions_destroy(e->sessions);
	pc_store_destroy(e->store);
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
	pc_sessions_destroy(e->sessions);
	if (e->store_reader) {
		pc_store_reader_unregister(e->store, e->control_ci);
	}
	pc_store_destroy(e->store);
	if (e->rt != NULL) {
		pc_timer_stop(e->control, &e->stats_timer);
		pc_runtime_destroy(e->rt);
	}
	rte_free(e);
}
