/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * engine/engine.c: a whole engine on two lcores, started and stopped the way
 * a signal stops it; the ready and stop pollers retire themselves; every
 * lcore ran; a stop requested before the run still ends it.
 */
#define PC_UT_WITH_EAL
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "../../../engine/engine.c"
#include "lcore_internal.h"
#include "rdma.h"
#include "ut.h"

static struct pc_config g_cfg;

/* Plays the signal handler once every lcore is in its loop. */
static void *
stop_when_running(void *arg)
{
	struct pc_engine *e = arg;
	struct timespec ts = {.tv_sec = 0, .tv_nsec = 1000 * 1000};

	/* Liveness bound: give up (and let the test fail) after about 30 s. */
	for (int i = 0; i < 30000 && !pc_runtime_all_running(e->rt); i++) {
		nanosleep(&ts, NULL);
	}
	pc_engine_request_stop(SIGTERM);
	return NULL;
}

static void
test_run_until_signal(void)
{
	struct pc_engine *e;
	struct pc_lcore_stats st;
	pthread_t thread;

	g_stop_signal = 0;
	e = pc_engine_create(&g_cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_PTR_NOT_NULL(e->ready_poller);
	CU_ASSERT_PTR_NOT_NULL(e->stop_poller);
	CU_ASSERT_TRUE(pc_timer_armed(&e->stats_timer));
	CU_ASSERT_EQUAL_FATAL(pthread_create(&thread, NULL, stop_when_running, e), 0);
	CU_ASSERT_EQUAL(pc_engine_run(e), 0);
	pthread_join(thread, NULL);
	CU_ASSERT_TRUE(pc_runtime_all_running(e->rt));
	CU_ASSERT_TRUE(pc_runtime_stopping(e->rt));
	/*
	 * Both one-shot pollers removed themselves; the store's, the session
	 * socket's, the cluster's, the directory batches', the workers' lookups' and the admin's
	 * remain.
	 */
	CU_ASSERT_PTR_NULL(e->ready_poller);
	CU_ASSERT_PTR_NULL(e->stop_poller);
	CU_ASSERT_PTR_NOT_NULL(e->store);
	CU_ASSERT_PTR_NOT_NULL(e->sessions);
	CU_ASSERT_PTR_NOT_NULL(e->cluster);
	CU_ASSERT_PTR_NOT_NULL(e->admin);
	CU_ASSERT_PTR_NOT_NULL(e->cluster_poller);
	CU_ASSERT_PTR_NOT_NULL(e->dirq);
	CU_ASSERT_EQUAL(e->control->n_pollers, 6);
	/* sessions, batches, the data plane */
	CU_ASSERT_EQUAL(pc_runtime_worker(e->rt, 0)->n_pollers, 3);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e->dp);
	CU_ASSERT_NOT_EQUAL(pc_dataplane_port(e->dp), 0);
	/* protocol tcp: pages are read over tcp as well as served */
	CU_ASSERT_STRING_EQUAL(pc_dataplane_transport(e->dp), "tcp");
	CU_ASSERT_TRUE(pc_timer_armed(&e->usage_timer));
	pc_lcore_get_stats(pc_runtime_worker(e->rt, 0), &st);
	CU_ASSERT(st.passes > 0);
	pc_lcore_get_stats(e->control, &st);
	CU_ASSERT(st.passes > 0);
	CU_ASSERT(st.busy_passes >= 2); /* the ready pass and the stop pass */
	pc_engine_destroy(e);
}

/* A discovery-only engine: no store, no batches, no usage timer; it runs and stops cleanly. */
static void
test_meta_role(void)
{
	struct pc_config cfg = g_cfg;
	struct pc_engine *e;
	pthread_t thread;

	cfg.role = PC_ROLE_META;
	g_stop_signal = 0;
	e = pc_engine_create(&cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_PTR_NULL(e->store);
	CU_ASSERT_PTR_NULL(e->dirpub);
	CU_ASSERT_PTR_NULL(e->dp); /* no pool to serve */
	CU_ASSERT_PTR_NOT_NULL(e->cluster);
	CU_ASSERT_FALSE(pc_timer_armed(&e->usage_timer));
	CU_ASSERT_EQUAL_FATAL(pthread_create(&thread, NULL, stop_when_running, e), 0);
	CU_ASSERT_EQUAL(pc_engine_run(e), 0);
	pthread_join(thread, NULL);
	pc_engine_destroy(e);
	g_stop_signal = 0;
}

static void
test_stop_before_run(void)
{
	struct pc_engine *e = pc_engine_create(&g_cfg);

	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	pc_engine_request_stop(SIGINT);
	CU_ASSERT_EQUAL(pc_engine_run(e), 0);
	CU_ASSERT_PTR_NULL(e->stop_poller);
	pc_engine_destroy(e);
	g_stop_signal = 0;
}

/*
 * protocol = "rdma" with no usable device (the CI machines have none): the
 * engine still starts, serves and reads over tcp. With a device the rdma
 * transport must be the one reading.
 */
static void
test_rdma_falls_back_to_tcp(void)
{
	struct pc_config cfg = g_cfg;
	struct pc_engine *e;
	char why[256];
	bool device = pc_rdma_probe(cfg.device_name, cfg.ib_port, why, sizeof(why)) == 0;

	cfg.protocol = PC_PROTO_RDMA;
	g_stop_signal = 0;
	e = pc_engine_create(&cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e->dp);
	CU_ASSERT_NOT_EQUAL(pc_dataplane_port(e->dp), 0);
	CU_ASSERT_STRING_EQUAL(pc_dataplane_transport(e->dp), device ? "rdma" : "tcp");
	pc_engine_request_stop(SIGTERM);
	CU_ASSERT_EQUAL(pc_engine_run(e), 0);
	pc_engine_destroy(e);
	g_stop_signal = 0;
}

static void
test_destroy_accepts_null(void)
{
	pc_engine_destroy(NULL);
	CU_PASS("no crash");
}

static const struct pc_ut_test engine_tests[] = {
	{"runs until a signal, pollers retire", test_run_until_signal},
	{"a stop requested before the run ends it", test_stop_before_run},
	{"role meta: no pool, runs and stops", test_meta_role},
	{"protocol rdma without a device reads over tcp", test_rdma_falls_back_to_tcp},
	{"destroy(NULL)", test_destroy_accepts_null},
	{NULL, NULL},
};

static const struct pc_ut_suite suites[] = {
	{"engine", NULL, NULL, engine_tests},
};

int
main(void)
{
	char err[PC_CONFIG_ERR_MAX];
	int rc;

	pc_config_defaults(&g_cfg);
	if (pc_config_load_embedded(&g_cfg, err, sizeof(err)) != 0 ||
	    pc_config_finalize(&g_cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "engine_ut: embedded config: %s\n", err);
		return 1;
	}
	/* A small segment and a socket of its own. */
	g_cfg.global_segment_size = 16ULL << 20;
	snprintf(g_cfg.engine_socket, sizeof(g_cfg.engine_socket), "/tmp/pc-engine-ut-%d.sock",
		 (int)getpid());
	if (pc_ut_eal_init("engine_ut", "0-1") != 0) {
		return 1;
	}
	rc = pc_ut_run(suites, PC_ARRAY_SIZE(suites));
	rte_eal_cleanup();
	return rc;
}
