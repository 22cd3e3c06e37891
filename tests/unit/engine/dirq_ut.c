/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * engine/dirq.c: a worker lcore asks the cluster where keys are and gets
 * the answer back on its own lcore. Real lcores (EAL 0-1), a real
 * single-node cluster on loopback, and a discovery-only one that refuses.
 */
#define PC_UT_WITH_EAL
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_lcore.h>

#include "../../../engine/dirq.c"
#include "ut.h"

#define N_KEYS 300

static struct pc_runtime *g_rt;

struct ask {
	struct pc_dirq *q;
	unsigned int n;
	const struct pc_dir_key *keys;
	/* Filled on the worker by the callback. */
	int calls;
	unsigned int lcore;
	unsigned int got_n;
	struct pc_cluster_lookup_result res[N_KEYS];
	int post_rc;
};

static struct ask g_asks[3];
static int g_done; /* atomic: callbacks run */

static char g_keybuf[N_KEYS][32];
static struct pc_dir_key g_keys[N_KEYS];
static char g_missbuf[5][32];
static struct pc_dir_key g_miss[5];

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int
cluster_poll(void *arg, uint64_t now_tsc)
{
	(void)now_tsc;
	return pc_cluster_poll(arg, mono_ns());
}

static void
asked(void *arg, const struct pc_cluster_lookup_result *res, unsigned int n)
{
	struct ask *a = arg;

	a->calls++;
	a->lcore = rte_lcore_id();
	a->got_n = n;
	memcpy(a->res, res, PC_MIN(n, (unsigned int)N_KEYS) * sizeof(*res));
	if (__atomic_add_fetch(&g_done, 1, __ATOMIC_ACQ_REL) == (int)PC_ARRAY_SIZE(g_asks)) {
		pc_runtime_stop(g_rt);
	}
}

/* Runs on the worker lcore: ask every question from there. */
static void
ask_all(void *arg)
{
	struct pc_lcore *self = pc_runtime_lcore(g_rt, rte_lcore_id());

	(void)arg;
	for (unsigned int i = 0; i < PC_ARRAY_SIZE(g_asks); i++) {
		struct ask *a = &g_asks[i];

		a->post_rc = pc_dirq_lookup(a->q, self, a->keys, a->n, 0, asked, a);
		if (a->post_rc != 0 && __atomic_add_fetch(&g_done, 1, __ATOMIC_ACQ_REL) ==
					       (int)PC_ARRAY_SIZE(g_asks)) {
			pc_runtime_stop(g_rt);
		}
	}
}

static uint16_t
free_port(const char *host)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t port = 0;

	inet_pton(AF_INET, host, &sa.sin_addr);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
		port = ntohs(sa.sin_port);
	}
	if (fd >= 0) {
		close(fd);
	}
	return port;
}

static void
config(struct pc_config *cfg, const char *host, uint16_t port, const char *id)
{
	pc_config_defaults(cfg);
	snprintf(cfg->discovery_addr, sizeof(cfg->discovery_addr), "%s:%u", host, port);
	snprintf(cfg->meta_bind_host, sizeof(cfg->meta_bind_host), "%s", host);
	snprintf(cfg->control_bind_host, sizeof(cfg->control_bind_host), "%s", host);
	snprintf(cfg->local_hostname, sizeof(cfg->local_hostname), "%s", host);
	snprintf(cfg->node_id, sizeof(cfg->node_id), "%s", id);
	cfg->disk_enabled = false;
	cfg->request_timeout = 2.0;
}

static void
test_lookup_from_a_worker(void)
{
	struct pc_runtime_opts ro = {.name = "dq", .idle_policy = PC_IDLE_ADAPTIVE};
	struct pc_cluster_opts po = {.role = PC_DISC_ROLE_INFERENCE, .pool_capacity = 1ull << 30};
	struct pc_cluster_opts mo = {.role = PC_DISC_ROLE_META};
	static struct pc_cluster_pub pubs[N_KEYS];
	struct pc_config cfg, mcfg;
	struct pc_cluster *cl, *meta;
	struct pc_dirq *q, *mq;
	struct pc_dirq_stats st;
	struct pc_lcore *worker;
	int bad = 0;

	g_rt = pc_runtime_create(&ro);
	CU_ASSERT_PTR_NOT_NULL_FATAL(g_rt);
	worker = pc_runtime_worker(g_rt, 0);
	CU_ASSERT_FALSE_FATAL(pc_lcore_is_control(worker));
	config(&cfg, "127.0.0.1", free_port("127.0.0.1"), "dq-node");
	config(&mcfg, "127.0.0.2", free_port("127.0.0.2"), "dq-meta");
	cl = pc_cluster_create(&cfg, &po, mono_ns());
	meta = pc_cluster_create(&mcfg, &mo, mono_ns());
	CU_ASSERT_PTR_NOT_NULL_FATAL(cl);
	CU_ASSERT_PTR_NOT_NULL_FATAL(meta);
	CU_ASSERT_PTR_NOT_NULL_FATAL(
		pc_lcore_poller_register(pc_runtime_control(g_rt), "cl", cluster_poll, cl));
	CU_ASSERT_PTR_NOT_NULL_FATAL(
		pc_lcore_poller_register(pc_runtime_control(g_rt), "meta", cluster_poll, meta));
	q = pc_dirq_create(g_rt, cl);
	mq = pc_dirq_create(g_rt, meta);
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mq);

	for (int k = 0; k < N_KEYS; k++) {
		int len = snprintf(g_keybuf[k], sizeof(g_keybuf[k]), "dq%ck-%d", 0, k);

		g_keys[k] = (struct pc_dir_key){.bytes = g_keybuf[k], .len = (uint32_t)len};
		pubs[k] = (struct pc_cluster_pub){.key = g_keybuf[k],
						  .key_len = (uint32_t)len,
						  .length = 4096,
						  .offset = 65536ull * (uint64_t)k,
						  .generation = 7 + (uint64_t)k};
	}
	for (int k = 0; k < 5; k++) {
		int len = snprintf(g_missbuf[k], sizeof(g_missbuf[k]), "dq%cnever-%d", 0, k);

		g_miss[k] = (struct pc_dir_key){.bytes = g_missbuf[k], .len = (uint32_t)len};
	}
	CU_ASSERT_EQUAL(pc_cluster_publish(cl, pubs, N_KEYS), N_KEYS);
	g_asks[0] = (struct ask){.q = q, .n = N_KEYS, .keys = g_keys};
	g_asks[1] = (struct ask){.q = q, .n = 5, .keys = g_miss};
	g_asks[2] = (struct ask){.q = mq, .n = 3, .keys = g_keys};
	g_done = 0;

	/* Arguments are checked where the call is made. */
	CU_ASSERT_EQUAL(pc_dirq_lookup(q, worker, g_keys, 0, 0, asked, NULL), -EINVAL);
	CU_ASSERT_EQUAL(
		pc_dirq_lookup(q, worker, g_keys, PC_CLUSTER_LOOKUP_MAX + 1, 0, asked, NULL),
		-EINVAL);
	CU_ASSERT_EQUAL(pc_dirq_lookup(q, NULL, g_keys, 1, 0, asked, NULL), -EINVAL);
	CU_ASSERT_EQUAL(pc_dirq_lookup(q, worker, g_keys, 1, 0, NULL, NULL), -EINVAL);

	/* Let the cluster build its ring and publish, then ask from the worker. */
	for (int i = 0; i < 2000; i++) {
		pc_lcore_poll_once(pc_runtime_control(g_rt), rte_rdtsc());
	}
	CU_ASSERT_EQUAL_FATAL(pc_lcore_send(worker, ask_all, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(pc_runtime_launch(g_rt), 0);
	pc_lcore_run(pc_runtime_control(g_rt));
	CU_ASSERT_EQUAL(pc_runtime_wait(g_rt), 0);

	for (unsigned int i = 0; i < PC_ARRAY_SIZE(g_asks); i++) {
		CU_ASSERT_EQUAL(g_asks[i].post_rc, 0);
		CU_ASSERT_EQUAL(g_asks[i].calls, 1);
		CU_ASSERT_EQUAL(g_asks[i].lcore, pc_lcore_id(worker)); /* back on the asker */
		CU_ASSERT_EQUAL(g_asks[i].got_n, g_asks[i].n);
	}
	for (int k = 0; k < N_KEYS; k++) {
		const struct pc_cluster_lookup_result *r = &g_asks[0].res[k];

		bad += r->status != 0 || r->n_locs != 1 ||
		       strcmp(r->locs[0].node_id, "dq-node") != 0 ||
		       r->locs[0].offset != 65536ull * (uint64_t)k || r->locs[0].length != 4096 ||
		       r->locs[0].generation != 7 + (uint64_t)k;
	}
	CU_ASSERT_EQUAL(bad, 0);
	for (int k = 0; k < 5; k++) {
		CU_ASSERT_EQUAL(g_asks[1].res[k].status, -ENOENT);
	}
	/* A discovery-only cluster refuses: every key carries its status. */
	for (int k = 0; k < 3; k++) {
		CU_ASSERT_EQUAL(g_asks[2].res[k].status, -ENOTSUP);
	}
	pc_dirq_get_stats(q, &st);
	CU_ASSERT_EQUAL(st.requests, 2);
	CU_ASSERT_EQUAL(st.keys, N_KEYS + 5);
	CU_ASSERT_EQUAL(st.refused, 0);
	pc_dirq_get_stats(mq, &st);
	CU_ASSERT_EQUAL(st.refused, 1);

	pc_dirq_destroy(q);
	pc_dirq_destroy(mq);
	pc_cluster_destroy(cl);
	pc_cluster_destroy(meta);
	pc_runtime_destroy(g_rt);
	g_rt = NULL;
}

static const struct pc_ut_test dirq_tests[] = {
	{"a worker's lookup comes back on the worker", test_lookup_from_a_worker},
	{NULL, NULL},
};

static const struct pc_ut_suite suites[] = {
	{"dirq", NULL, NULL, dirq_tests},
};

int
main(void)
{
	int rc;

	if (pc_ut_eal_init("dirq_ut", "0-1") != 0) {
		return 1;
	}
	rc = pc_ut_run(suites, PC_ARRAY_SIZE(suites));
	rte_eal_cleanup();
	return rc;
}
