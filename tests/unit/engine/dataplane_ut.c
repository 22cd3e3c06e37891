/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * engine/dataplane.c: the engine's data plane, with the verbs calls stubbed
 * (there is no RDMA device here) by tests/fake_verbs.h, as in
 * tests/unit/verbs/rdma_ut.c: every verbs object the stubs hand out is
 * counted until it is destroyed, and every QP keeps its state, so a leak or
 * a QP left behind on an error path is an assertion. verbs/rdma.c itself is
 * the real one (from the library archive); these stubs take the place of
 * libibverbs under it.
 *
 * Three seams, by macro before dataplane.c is included, count what the
 * data plane creates: pc_rdma_create (fails on the k-th call when asked),
 * the rdma ops (destroy counted) and pc_fetch_create (the opts each reader
 * gets). The tcp transports and the clusters are real (loopback sockets:
 * node-0 on 127.0.0.1, node-1 on 127.0.0.2, the cluster_ut way); a runtime
 * of three lcores, never launched, is polled by hand.
 *
 * What a user would notice: protocol tcp serves on one port from every
 * worker and leaves nothing listening after destroy; protocol rdma reads
 * over rdma when the device works, and over tcp (nothing left behind) when
 * there is none, it does not open, or any transport cannot be created; the
 * readers' READs end well before the owner may reuse a slot; a peer's
 * QP_CONNECT gets a connected QP and this node's record, never a QP left
 * behind on failure, at most 64 per peer incarnation; a worker's channel
 * is connected by the peer's reply, closed by an error, and left alone at
 * shutdown; a whole handshake between two nodes ends with both QPs in RTS,
 * each aimed at the other.
 */
#define PC_UT_WITH_EAL
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/mlx5dv.h>
#include <infiniband/verbs.h>
#include <rte_cycles.h>
#include <rte_ring.h>

/* ---- seams: what the data plane creates, counted ---- */
#define pc_rdma_create  ut_pc_rdma_create
#define pc_fetch_create ut_pc_fetch_create
#define pc_xport_rdma   ut_xport_rdma
#include "../../../engine/dataplane.c"
#undef pc_rdma_create
#undef pc_fetch_create
#undef pc_xport_rdma
struct pc_xport *pc_rdma_create(const struct pc_xport_opts *opts, struct pc_rdma_dev *d);
struct pc_fetch *pc_fetch_create(const struct pc_fetch_opts *o);
extern const struct pc_xport_ops pc_xport_rdma;

#include "dirq.h"
#include "fake_verbs.h" /* the verbs under verbs/rdma.c, with its QP life checks */
#include "lcore_internal.h"
#include "mock.h"
#include "session.h"
#include "ut.h"

#define NW        2 /* worker lcores: EAL lcores 1 and 2, the control lcore 0 */
#define SEG_SIZE  (8ull << 20)
#define MAX_FETCH 8
#define MS        1000000ull
#define S         1000000000ull

static unsigned int g_rdma_create_calls;
static unsigned int g_rdma_create_fail_at;  /* 1-based; 0 = never */
static unsigned int g_rdma_create_chans[8]; /* max_channels_per_peer of each call */
static int g_xport_live;                    /* rdma transports created minus destroyed */
static unsigned int g_xport_destroyed;

struct pc_xport *
ut_pc_rdma_create(const struct pc_xport_opts *opts, struct pc_rdma_dev *d)
{
	struct pc_xport *x;

	g_rdma_create_calls++;
	if (g_rdma_create_calls <= PC_ARRAY_SIZE(g_rdma_create_chans)) {
		g_rdma_create_chans[g_rdma_create_calls - 1] = opts->max_channels_per_peer;
	}
	if (g_rdma_create_calls == g_rdma_create_fail_at) {
		errno = ENOMEM;
		return NULL;
	}
	x = pc_rdma_create(opts, d);
	if (x != NULL) {
		g_xport_live++;
	}
	return x;
}

static void
ut_rdma_destroy(struct pc_xport *x)
{
	if (x != NULL) {
		g_xport_live--;
		g_xport_destroyed++;
	}
	pc_xport_rdma.destroy(x);
}

static struct pc_xport *
ut_rdma_ops_create(const struct pc_xport_opts *opts)
{
	return pc_xport_rdma.create(opts);
}

static int
ut_rdma_post(struct pc_xport *x, const struct pc_xport_peer *peer,
	     const struct pc_xport_read *reads, unsigned int n, uint64_t deadline_ns,
	     uint64_t now_ns)
{
	return pc_xport_rdma.post_reads(x, peer, reads, n, deadline_ns, now_ns);
}

static int
ut_rdma_poll(struct pc_xport *x, uint64_t now_ns, struct pc_xport_cqe *out, unsigned int max)
{
	return pc_xport_rdma.poll(x, now_ns, out, max);
}

static uint16_t
ut_rdma_port(const struct pc_xport *x)
{
	return pc_xport_rdma.port(x);
}

static void
ut_rdma_stats(const struct pc_xport *x, struct pc_xport_stats *st)
{
	pc_xport_rdma.get_stats(x, st);
}

const struct pc_xport_ops ut_xport_rdma = {
	.name = "rdma",
	.create = ut_rdma_ops_create,
	.destroy = ut_rdma_destroy,
	.post_reads = ut_rdma_post,
	.poll = ut_rdma_poll,
	.port = ut_rdma_port,
	.get_stats = ut_rdma_stats,
};

static unsigned int g_fetch_calls;
static struct pc_fetch_opts g_fetch_opts[MAX_FETCH];
static char g_fetch_self[MAX_FETCH][PC_DIR_NODE_ID_MAX]; /* self_id: the caller's may not last */

struct pc_fetch *
ut_pc_fetch_create(const struct pc_fetch_opts *o)
{
	if (g_fetch_calls < MAX_FETCH) {
		g_fetch_opts[g_fetch_calls] = *o;
		snprintf(g_fetch_self[g_fetch_calls], sizeof(g_fetch_self[0]), "%s",
			 o->self_id != NULL ? o->self_id : "(null)");
		g_fetch_opts[g_fetch_calls].self_id = g_fetch_self[g_fetch_calls];
	}
	g_fetch_calls++;
	return pc_fetch_create(o);
}

/* ---- fixtures ---- */

static struct pc_config g_base; /* node-0's config, what each test starts from */
static struct pc_config g_cfg;  /* the one the data plane under test is given */
static struct pc_config g_ncfg[2];
static struct pc_cluster *g_c[2]; /* node-0 (127.0.0.1) and node-1 (127.0.0.2) */
static uint64_t g_now = 1000 * S; /* the clusters' clock */
static struct pc_store *g_st[2];
static struct pc_runtime *g_rt;

static void
reset_mocks(void)
{
	fv_reset();
	g_fv_checks = FV_CHECK_QP_LIFE;
	g_rdma_create_calls = 0;
	g_rdma_create_fail_at = 0;
	memset(g_rdma_create_chans, 0, sizeof(g_rdma_create_chans));
	g_xport_destroyed = 0;
	g_fetch_calls = 0;
	memset(g_fetch_opts, 0, sizeof(g_fetch_opts));
}

static void
assert_no_verbs_left(void)
{
	fv_assert_no_leak();
	CU_ASSERT_EQUAL(g_xport_live, 0);
}

/* A fresh runtime (never launched: every lcore is polled by hand) and config. */
static void
up(enum pc_protocol proto)
{
	struct pc_runtime_opts o = {.name = "dput", .idle_policy = PC_IDLE_ADAPTIVE};

	reset_mocks();
	g_cfg = g_base;
	g_cfg.protocol = proto;
	g_rt = pc_runtime_create(&o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(g_rt);
	CU_ASSERT_EQUAL_FATAL(pc_runtime_worker_count(g_rt), NW);
}

static void
down(struct pc_dataplane *dp)
{
	pc_dataplane_destroy(dp);
	pc_runtime_destroy(g_rt);
	g_rt = NULL;
	assert_no_verbs_left();
}

static struct pc_dataplane *
dp_new(unsigned int node)
{
	return pc_dataplane_create(&g_cfg, g_rt, g_st[node]);
}

/* A data plane reading over rdma (stubs), wired to node's cluster by hand (no readers). */
static struct pc_dataplane *
dp_rdma(unsigned int node)
{
	struct pc_dataplane *dp = dp_new(node);

	CU_ASSERT_PTR_NOT_NULL_FATAL(dp);
	CU_ASSERT_STRING_EQUAL_FATAL(pc_dataplane_transport(dp), "rdma");
	dp->cluster = g_c[node];
	return dp;
}

static uint64_t
incarnation_of(unsigned int node)
{
	struct pc_cluster_info info;

	pc_cluster_get_info(g_c[node], &info);
	return info.incarnation;
}

static unsigned int
ring_count(struct pc_lcore *lc)
{
	return rte_ring_count(lc->msg_ring);
}

static int
poll_lcore(struct pc_lcore *lc)
{
	return pc_lcore_poll_once(lc, rte_rdtsc());
}

/* Whether something accepts TCP connections on 127.0.0.1:port. */
static bool
port_open(uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	CU_ASSERT_FATAL(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* A listening socket on 127.0.0.1 (no SO_REUSEPORT): its port, the fd in *fd. */
static uint16_t
hold_port(int *fd)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);

	*fd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (*fd < 0 || bind(*fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(*fd, 4) != 0 ||
	    getsockname(*fd, (struct sockaddr *)&sa, &len) != 0) {
		return 0;
	}
	return ntohs(sa.sin_port);
}

/* A peer's handshake record, as the cluster would hand it to qp_serve. */
static struct pc_qp_info
peer_record(uint64_t incarnation, unsigned int seed)
{
	struct pc_qp_info r = {.qpn = 0xBE00 + seed,
			       .psn = 0xAB00 + seed,
			       .lid = 0x77,
			       .mtu = IBV_MTU_2048,
			       .rkey = 0xABCD,
			       .seg_base = 0x7f0000000000ull,
			       .incarnation = incarnation};

	for (unsigned int i = 0; i < sizeof(r.gid); i++) {
		r.gid[i] = (uint8_t)(0x10 + i);
	}
	return r;
}

/* qp_serve() as the cluster calls it; returns rc, the reply in *reply. */
static int
serve(struct pc_dataplane *dp, const char *node_id, uint64_t incarnation, unsigned int seed,
      struct pc_qp_info *reply)
{
	struct pc_qp_info remote = peer_record(incarnation, seed);

	memset(reply, 0, sizeof(*reply));
	return qp_serve(dp, node_id, &remote, reply);
}

/* ---- protocol tcp ---- */

static void
test_tcp(void)
{
	struct pc_dataplane *dp;
	uint16_t port;

	up(PC_PROTO_TCP);
	dp = dp_new(0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dp);
	port = pc_dataplane_port(dp);
	CU_ASSERT_NOT_EQUAL(port, 0);
	CU_ASSERT_STRING_EQUAL(pc_dataplane_transport(dp), "tcp");
	CU_ASSERT_PTR_EQUAL(dp->read_ops, &pc_xport_tcp);
	CU_ASSERT_EQUAL(dp->nw, NW);
	CU_ASSERT_EQUAL(dp->n_tcp, NW);
	CU_ASSERT_EQUAL(dp->n_rdma, 0);
	for (unsigned int i = 0; i < NW; i++) {
		CU_ASSERT_PTR_NOT_NULL(dp->w[i].tcp);
		CU_ASSERT_PTR_NULL(dp->w[i].rdma);
		CU_ASSERT_PTR_EQUAL(dp->w[i].lc, pc_runtime_worker(g_rt, i));
		/* One port, shared by every worker (the first one's ephemeral port). */
		CU_ASSERT_EQUAL(pc_xport_tcp.port(dp->w[i].tcp), port);
	}
	CU_ASSERT_PTR_NULL(dp->rdev);
	CU_ASSERT_PTR_NULL(dp->passive);
	CU_ASSERT_EQUAL(g_list_calls, 0); /* protocol tcp never looks for a device */
	CU_ASSERT_EQUAL(g_rdma_create_calls, 0);
	CU_ASSERT_TRUE(port_open(port));
	down(dp);
	/* Nothing listens on the data port any more. */
	CU_ASSERT_FALSE(port_open(port));
}

static void
test_tcp_port_taken(void)
{
	int fd;
	uint16_t port = hold_port(&fd);

	CU_ASSERT_NOT_EQUAL_FATAL(port, 0);
	up(PC_PROTO_TCP);
	g_cfg.rdma_port = port;
	CU_ASSERT_PTR_NULL(dp_new(0));
	close(fd);
	/* The same port free again: it binds. */
	{
		struct pc_dataplane *dp = dp_new(0);

		CU_ASSERT_PTR_NOT_NULL(dp);
		if (dp != NULL) {
			CU_ASSERT_EQUAL(pc_dataplane_port(dp), port);
		}
		down(dp);
	}
}

/* ---- protocol rdma: setup and fallbacks ---- */

/* A data plane that fell back to tcp and kept nothing of rdma. */
static void
assert_tcp_fallback(struct pc_dataplane *dp)
{
	CU_ASSERT_PTR_NOT_NULL_FATAL(dp);
	CU_ASSERT_NOT_EQUAL(pc_dataplane_port(dp), 0);
	CU_ASSERT_STRING_EQUAL(pc_dataplane_transport(dp), "tcp");
	CU_ASSERT_PTR_EQUAL(dp->read_ops, &pc_xport_tcp);
	CU_ASSERT_EQUAL(dp->n_tcp, NW);
	CU_ASSERT_EQUAL(dp->n_rdma, 0);
	for (unsigned int i = 0; i < NW; i++) {
		CU_ASSERT_PTR_NOT_NULL(dp->w[i].tcp);
		CU_ASSERT_PTR_NULL(dp->w[i].rdma);
	}
	CU_ASSERT_PTR_NULL(dp->rdev);
	CU_ASSERT_PTR_NULL(dp->passive);
	CU_ASSERT_PTR_NULL(dp->passive_ids);
	/* Before destroy: the fallback itself left no verbs object and no rdma transport. */
	assert_no_verbs_left();
}

static void
test_rdma_ok(void)
{
	struct pc_dataplane *dp;

	up(PC_PROTO_RDMA);
	g_cfg.max_channels_per_peer = 3;
	dp = dp_new(0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dp);
	CU_ASSERT_NOT_EQUAL(pc_dataplane_port(dp), 0);
	CU_ASSERT_STRING_EQUAL(pc_dataplane_transport(dp), "rdma");
	CU_ASSERT_PTR_EQUAL(dp->read_ops, &ut_xport_rdma);
	CU_ASSERT_EQUAL(dp->n_tcp, NW); /* tcp still serves */
	CU_ASSERT_EQUAL(dp->n_rdma, NW);
	for (unsigned int i = 0; i < NW; i++) {
		CU_ASSERT_PTR_NOT_NULL(dp->w[i].tcp);
		CU_ASSERT_PTR_NOT_NULL(dp->w[i].rdma);
	}
	CU_ASSERT_PTR_NOT_NULL(dp->passive);
	CU_ASSERT_PTR_NOT_NULL(dp->passive_ids);
	/* The passive transport and one per worker; the device opened once, the segment once. */
	CU_ASSERT_EQUAL(g_rdma_create_calls, NW + 1);
	CU_ASSERT_EQUAL(g_xport_live, NW + 1);
	CU_ASSERT_EQUAL(g_rdma_create_chans[0], PC_RDMA_PEER_CHANNELS_MAX);
	for (unsigned int i = 1; i <= NW; i++) {
		CU_ASSERT_EQUAL(g_rdma_create_chans[i], 3);
	}
	CU_ASSERT_EQUAL(g_live_ctx, 1);
	CU_ASSERT_EQUAL(g_live_pd, 1);
	CU_ASSERT_EQUAL(g_live_mr, 1);
	CU_ASSERT_PTR_EQUAL(g_reg_mr_addr, pc_store_segment_base(g_st[0]));
	CU_ASSERT_EQUAL(g_reg_mr_len, pc_store_segment_size(g_st[0]));
	CU_ASSERT_EQUAL(g_live_qp, 0); /* no channel before a READ needs one */
	down(dp);
	CU_ASSERT_EQUAL(g_xport_destroyed, NW + 1);

	/* More than a peer can hold for this node over all workers: each worker gets its share. */
	up(PC_PROTO_RDMA);
	g_cfg.max_channels_per_peer = 1024;
	g_rdma_create_calls = 0;
	dp = dp_new(0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dp);
	for (unsigned int i = 1; i <= NW; i++) {
		CU_ASSERT_EQUAL(g_rdma_create_chans[i], PC_RDMA_PEER_CHANNELS_MAX / NW);
	}
	down(dp);
}

struct fallback_case {
	const char *what;
	void (*arrange)(void);
};

static void
no_devices(void)
{
	g_n_devs = 0;
}

static void
no_device_list(void)
{
	g_list_null = true;
}

static void
port_down(void)
{
	g_port_state[0] = IBV_PORT_DOWN;
}

static void
named_device_missing(void)
{
	snprintf(g_cfg.device_name, sizeof(g_cfg.device_name), "mlx5_9");
}

static void
open_fails_after_probe(void)
{
	MOCK_PUSH(ut_open_rc, 0); /* the probe's */
	MOCK_PUSH(ut_open_rc, EPERM);
}

static void
query_device_fails(void)
{
	MOCK_SET(ut_query_device_rc, EIO);
}

static void
alloc_pd_fails(void)
{
	MOCK_SET(ut_alloc_pd_rc, ENOMEM);
}

static void
reg_mr_fails(void)
{
	MOCK_SET(ut_reg_mr_rc, EFAULT);
}

static const struct fallback_case g_fallbacks[] = {
	{"no device", no_devices},
	{"ibv_get_device_list fails", no_device_list},
	{"port not ACTIVE", port_down},
	{"the named device is missing", named_device_missing},
	{"ibv_open_device fails", open_fails_after_probe},
	{"ibv_query_device fails", query_device_fails},
	{"ibv_alloc_pd fails", alloc_pd_fails},
	{"ibv_reg_mr fails", reg_mr_fails},
};

static void
test_rdma_fallbacks(void)
{
	for (size_t k = 0; k < PC_ARRAY_SIZE(g_fallbacks); k++) {
		unsigned int before = CU_get_number_of_failures();
		struct pc_dataplane *dp;

		up(PC_PROTO_RDMA);
		g_fallbacks[k].arrange();
		dp = dp_new(0);
		assert_tcp_fallback(dp);
		CU_ASSERT(g_list_calls >= 1); /* it did look for a device */
		CU_ASSERT_EQUAL(g_rdma_create_calls, 0);
		if (CU_get_number_of_failures() != before) {
			fprintf(stderr, "\n  fallback case: %s\n", g_fallbacks[k].what);
		}
		down(dp);
	}
}

/* The k-th rdma transport (1: the passive one, 2..: the workers') fails to be created. */
static void
test_rdma_transport_fails(void)
{
	for (unsigned int k = 1; k <= NW + 1; k++) {
		struct pc_dataplane *dp;

		up(PC_PROTO_RDMA);
		g_rdma_create_fail_at = k;
		dp = dp_new(0);
		assert_tcp_fallback(dp);
		/* The first failure stops it; every transport created before it is destroyed. */
		CU_ASSERT_EQUAL(g_rdma_create_calls, k);
		CU_ASSERT_EQUAL(g_xport_destroyed, k - 1);
		down(dp);
		CU_ASSERT_EQUAL(g_xport_destroyed, k - 1); /* and not destroyed again */
	}
}

/* pc_dataplane_attach: one reader per worker, on the reading transport, with its deadlines. */
static void
attach_and_check(double quarantine, uint64_t want_read_timeout)
{
	struct pc_dataplane *dp;
	struct pc_sessions *ss;
	struct pc_dirq *q;
	struct pc_cluster_info info;

	up(PC_PROTO_RDMA);
	g_cfg.page_quarantine = quarantine;
	dp = dp_new(0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dp);
	CU_ASSERT_STRING_EQUAL(pc_dataplane_transport(dp), "rdma");
	ss = pc_sessions_create(&g_cfg, g_rt, g_st[0]);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ss);
	q = pc_dirq_create(g_rt, g_c[0]);
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	CU_ASSERT_EQUAL(pc_dataplane_attach(dp, g_c[0], q, ss), 0);
	pc_cluster_get_info(g_c[0], &info);
	CU_ASSERT_EQUAL(g_fetch_calls, NW);
	CU_ASSERT_EQUAL(dp->n_fetch, NW);
	for (unsigned int i = 0; i < NW && i < MAX_FETCH; i++) {
		const struct pc_fetch_opts *o = &g_fetch_opts[i];

		CU_ASSERT_EQUAL(o->ci, i);
		CU_ASSERT_PTR_EQUAL(o->xops, &ut_xport_rdma);
		CU_ASSERT_PTR_EQUAL(o->xport, dp->w[i].rdma);
		CU_ASSERT_EQUAL(o->read_timeout_ns, want_read_timeout);
		CU_ASSERT_EQUAL(o->timeout_ns, (uint64_t)(g_cfg.request_timeout * 1e9));
		CU_ASSERT_STRING_EQUAL(o->self_id, info.node_id);
		CU_ASSERT_PTR_NOT_NULL(dp->w[i].fetch);
	}
	CU_ASSERT_EQUAL(rdma_read_timeout(&g_cfg), want_read_timeout);
	CU_ASSERT_PTR_NOT_NULL(dp->passive_poller);
	pc_cluster_set_qp_handler(g_c[0], NULL, NULL); /* the cluster outlives this dp */
	pc_sessions_destroy(ss);
	pc_dirq_destroy(q);
	down(dp);
}

static void
test_attach_rdma(void)
{
	/* Half the quarantine: READs end before the owner may reuse a slot. */
	attach_and_check(0.8, 400 * MS);
	attach_and_check(1.0, 500 * MS);
}

/*
 * page_quarantine 0 is allowed (0..3600; rdma_setup() only warns): the
 * READs then keep the request's deadline (read_timeout_ns 0, fetch.h), not
 * a 1 ns one that times every READ out and destroys its channel.
 */
static void
test_attach_rdma_no_quarantine(void)
{
	attach_and_check(0.0, 0);
}

static void
test_attach_tcp(void)
{
	struct pc_dataplane *dp;
	struct pc_sessions *ss;
	struct pc_dirq *q;

	up(PC_PROTO_TCP);
	dp = dp_new(0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dp);
	ss = pc_sessions_create(&g_cfg, g_rt, g_st[0]);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ss);
	q = pc_dirq_create(g_rt, g_c[0]);
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	CU_ASSERT_EQUAL(pc_dataplane_attach(dp, g_c[0], q, ss), 0);
	CU_ASSERT_EQUAL(g_fetch_calls, NW);
	for (unsigned int i = 0; i < NW && i < MAX_FETCH; i++) {
		CU_ASSERT_PTR_EQUAL(g_fetch_opts[i].xops, &pc_xport_tcp);
		CU_ASSERT_PTR_EQUAL(g_fetch_opts[i].xport, dp->w[i].tcp);
		CU_ASSERT_EQUAL(g_fetch_opts[i].read_timeout_ns, 0); /* tcp pins: no READ cap */
	}
	CU_ASSERT_PTR_NULL(dp->passive_poller);
	pc_sessions_destroy(ss);
	pc_dirq_destroy(q);
	down(dp);
}

/* ---- the passive side: qp_serve() as the cluster calls it ---- */

static void
test_serve(void)
{
	struct pc_dataplane *dp;
	struct pc_qp_info reply;
	struct qp_rec *r;
	uint32_t qpn;

	up(PC_PROTO_RDMA);
	dp = dp_rdma(0);
	CU_ASSERT_EQUAL_FATAL(serve(dp, "node-x", 77, 1, &reply), 0);
	/* One QP, connected (RTS) to the peer's QP with the peer's PSN. */
	CU_ASSERT_EQUAL(g_live_qp, 1);
	qpn = g_next_qpn - 1;
	r = qp_rec(qpn);
	CU_ASSERT_TRUE(r->live);
	CU_ASSERT_EQUAL(r->state, IBV_QPS_RTS);
	CU_ASSERT_EQUAL(r->dest_qpn, 0xBE01);
	CU_ASSERT_EQUAL(r->rq_psn, 0xAB01);
	/* The reply: that QP, this node's segment and incarnation. */
	CU_ASSERT_EQUAL(reply.qpn, qpn);
	CU_ASSERT_EQUAL(reply.incarnation, incarnation_of(0));
	CU_ASSERT_NOT_EQUAL(reply.incarnation, 0);
	CU_ASSERT_EQUAL(reply.rkey, 0x2222);
	CU_ASSERT_EQUAL(reply.seg_base, (uint64_t)(uintptr_t)pc_store_segment_base(g_st[0]));
	CU_ASSERT(reply.mtu >= PC_QP_MTU_MIN && reply.mtu <= PC_QP_MTU_MAX);
	/* Remembered for eviction. */
	CU_ASSERT_EQUAL(dp->n_passive, 1);
	CU_ASSERT_STRING_EQUAL(dp->passive_ids[0].node_id, "node-x");
	CU_ASSERT_EQUAL(dp->passive_ids[0].incarnation, 77);
	CU_ASSERT_EQUAL(dp->qp_served, 1);
	CU_ASSERT_EQUAL(dp->qp_refused, 0);
	CU_ASSERT_EQUAL(pc_rdma_peer_channels(dp->passive, "node-x", 77), 1);
	/* The worker transports are not used by the passive side. */
	CU_ASSERT_EQUAL(pc_rdma_peer_channels(dp->w[0].rdma, "node-x", 77), 0);
	down(dp); /* the passive QP goes with its transport */
}

struct serve_fail {
	const char *what;
	void (*arrange)(void);
	int rc;
};

static void
fail_init(void)
{
	MOCK_PUSH(ut_modify_qp_rc, EINVAL);
}

static void
fail_rtr(void)
{
	MOCK_PUSH(ut_modify_qp_rc, 0);
	MOCK_PUSH(ut_modify_qp_rc, EINVAL);
}

static void
fail_rts(void)
{
	MOCK_PUSH(ut_modify_qp_rc, 0);
	MOCK_PUSH(ut_modify_qp_rc, 0);
	MOCK_PUSH(ut_modify_qp_rc, EIO);
}

static void
fail_create_qp(void)
{
	MOCK_PUSH(ut_create_qp_rc, ENOMEM);
}

static void
fail_create_cq(void)
{
	MOCK_PUSH(ut_create_cq_rc, EAGAIN);
}

static const struct serve_fail g_serve_fails[] = {
	{"QP to INIT", fail_init, -EINVAL},
	{"QP to RTR", fail_rtr, -EINVAL},
	{"QP to RTS", fail_rts, -EIO},
	{"ibv_create_qp", fail_create_qp, -ENOMEM},
	{"ibv_create_cq", fail_create_cq, -EAGAIN},
};

static void
test_serve_fails(void)
{
	struct pc_dataplane *dp;
	struct pc_qp_info reply;

	up(PC_PROTO_RDMA);
	dp = dp_rdma(0);
	/* One channel served first: a failure leaves it alone. */
	CU_ASSERT_EQUAL_FATAL(serve(dp, "node-y", 5, 0, &reply), 0);
	for (size_t k = 0; k < PC_ARRAY_SIZE(g_serve_fails); k++) {
		int rc;

		g_serve_fails[k].arrange();
		rc = serve(dp, "node-x", 77, 1, &reply);
		CU_ASSERT_EQUAL(rc, g_serve_fails[k].rc);
		CU_ASSERT_EQUAL(g_live_qp, 1); /* no QP left behind */
		CU_ASSERT_EQUAL(g_live_cq, 1);
		CU_ASSERT_EQUAL(dp->n_passive, 1);
		CU_ASSERT_EQUAL(dp->qp_refused, k + 1);
		CU_ASSERT_EQUAL(pc_rdma_peer_channels(dp->passive, "node-x", 77), 0);
		if (rc != g_serve_fails[k].rc) {
			fprintf(stderr, "\n  serve failure case: %s: %d\n", g_serve_fails[k].what,
				rc);
		}
		MOCK_CLEAR(ut_modify_qp_rc);
		MOCK_CLEAR(ut_create_qp_rc);
		MOCK_CLEAR(ut_create_cq_rc);
	}
	CU_ASSERT_EQUAL(dp->qp_served, 1);
	CU_ASSERT_EQUAL(pc_rdma_peer_channels(dp->passive, "node-y", 5), 1);
	/* It still serves after the failures. */
	CU_ASSERT_EQUAL(serve(dp, "node-x", 77, 2, &reply), 0);
	CU_ASSERT_EQUAL(g_live_qp, 2);
	down(dp);
}

/* The 65th channel from one peer incarnation drops that peer's oldest, and only that. */
static void
test_serve_cap_per_peer(void)
{
	struct pc_dataplane *dp;
	struct pc_qp_info reply;
	uint32_t a_qpn[PC_RDMA_PEER_CHANNELS_MAX + 1];
	uint32_t b_qpn[3];
	unsigned int nb = 0;

	up(PC_PROTO_RDMA);
	dp = dp_rdma(0);
	for (unsigned int i = 0; i < PC_RDMA_PEER_CHANNELS_MAX; i++) {
		if (i % 30 == 0) { /* node-b's, interleaved: the oldest of all is node-b's */
			CU_ASSERT_EQUAL_FATAL(serve(dp, "node-b", 1, 100 + nb, &reply), 0);
			b_qpn[nb++] = reply.qpn;
		}
		CU_ASSERT_EQUAL_FATAL(serve(dp, "node-a", 1, i, &reply), 0);
		a_qpn[i] = reply.qpn;
	}
	CU_ASSERT_STRING_EQUAL(dp->passive_ids[0].node_id, "node-b");
	CU_ASSERT_EQUAL_FATAL(nb, 3);
	CU_ASSERT_EQUAL(dp->n_passive, PC_RDMA_PEER_CHANNELS_MAX + 3);
	CU_ASSERT_EQUAL(pc_rdma_peer_channels(dp->passive, "node-a", 1), PC_RDMA_PEER_CHANNELS_MAX);
	/* The 65th. */
	CU_ASSERT_EQUAL_FATAL(serve(dp, "node-a", 1, 64, &reply), 0);
	a_qpn[PC_RDMA_PEER_CHANNELS_MAX] = reply.qpn;
	CU_ASSERT_FALSE(qp_rec(a_qpn[0])->live); /* node-a's oldest: destroyed */
	for (unsigned int i = 1; i <= PC_RDMA_PEER_CHANNELS_MAX; i++) {
		CU_ASSERT_TRUE(qp_rec(a_qpn[i])->live);
		CU_ASSERT_EQUAL(qp_rec(a_qpn[i])->state, IBV_QPS_RTS);
	}
	for (unsigned int i = 0; i < nb; i++) {
		CU_ASSERT_TRUE(qp_rec(b_qpn[i])->live); /* other peers' untouched */
	}
	CU_ASSERT_EQUAL(pc_rdma_peer_channels(dp->passive, "node-a", 1), PC_RDMA_PEER_CHANNELS_MAX);
	CU_ASSERT_EQUAL(pc_rdma_peer_channels(dp->passive, "node-b", 1), 3);
	CU_ASSERT_EQUAL(dp->n_passive, PC_RDMA_PEER_CHANNELS_MAX + 3);
	CU_ASSERT_EQUAL(g_live_qp, PC_RDMA_PEER_CHANNELS_MAX + 3);
	/* The oldest entry of node-a is now its second channel. */
	for (unsigned int i = 0; i < dp->n_passive; i++) {
		if (strcmp(dp->passive_ids[i].node_id, "node-a") == 0) {
			struct pc_qp_info info;

			CU_ASSERT_EQUAL(
				pc_rdma_chan_info(dp->passive, dp->passive_ids[i].id, &info), 0);
			CU_ASSERT_EQUAL(info.qpn, a_qpn[1]);
			break;
		}
	}
	CU_ASSERT_EQUAL(dp->qp_served, PC_RDMA_PEER_CHANNELS_MAX + 4);
	CU_ASSERT_EQUAL(dp->qp_refused, 0);
	down(dp);
}

/* Channels gone on their own (an error, a new incarnation of the peer) are forgotten. */
static void
test_serve_forgets_dead(void)
{
	struct pc_dataplane *dp;
	struct pc_qp_info reply;
	uint32_t first;

	up(PC_PROTO_RDMA);
	dp = dp_rdma(0);
	for (unsigned int i = 0; i < 4; i++) {
		CU_ASSERT_EQUAL_FATAL(serve(dp, "node-a", 1, i, &reply), 0);
	}
	CU_ASSERT_EQUAL_FATAL(serve(dp, "node-b", 1, 10, &reply), 0);
	CU_ASSERT_EQUAL(dp->n_passive, 5);
	/* node-a's second channel dies (an error CQE, say): closed in the transport only. */
	first = g_live_qp;
	CU_ASSERT_EQUAL(pc_rdma_chan_close(dp->passive, dp->passive_ids[1].id), 0);
	CU_ASSERT_EQUAL(g_live_qp, first - 1);
	CU_ASSERT_EQUAL(serve(dp, "node-b", 1, 11, &reply), 0);
	CU_ASSERT_EQUAL(dp->n_passive, 5); /* 5 - the dead one + the new one */
	CU_ASSERT_EQUAL(g_live_qp, first);
	for (unsigned int i = 0; i < dp->n_passive; i++) {
		struct pc_qp_info info;

		CU_ASSERT_EQUAL(pc_rdma_chan_info(dp->passive, dp->passive_ids[i].id, &info), 0);
	}
	/* node-a comes back as a new incarnation: the transport drops its old channels... */
	CU_ASSERT_EQUAL(serve(dp, "node-a", 2, 20, &reply), 0);
	CU_ASSERT_EQUAL(pc_rdma_peer_channels(dp->passive, "node-a", 1), 0);
	CU_ASSERT_EQUAL(pc_rdma_peer_channels(dp->passive, "node-a", 2), 1);
	CU_ASSERT_EQUAL(g_live_qp, 3); /* node-b's two, node-a's new one */
	/* ...and the next request forgets them. */
	CU_ASSERT_EQUAL(serve(dp, "node-b", 1, 12, &reply), 0);
	CU_ASSERT_EQUAL(dp->n_passive, 4);
	CU_ASSERT_EQUAL(g_live_qp, 4);
	for (unsigned int i = 0; i < dp->n_passive; i++) {
		CU_ASSERT(dp->passive_ids[i].incarnation == 2 ||
			  strcmp(dp->passive_ids[i].node_id, "node-b") == 0);
	}
	down(dp);
}

/* The passive transport full (1024 channels): the oldest of all goes. */
static void
test_serve_transport_full(void)
{
	struct pc_dataplane *dp;
	struct pc_qp_info reply;
	uint32_t oldest = 0;
	unsigned int peers = DP_PASSIVE_MAX / PC_RDMA_PEER_CHANNELS_MAX;

	up(PC_PROTO_RDMA);
	dp = dp_rdma(0);
	for (unsigned int p = 0; p < peers; p++) {
		char id[16];

		snprintf(id, sizeof(id), "node-%u", 100 + p);
		for (unsigned int i = 0; i < PC_RDMA_PEER_CHANNELS_MAX; i++) {
			CU_ASSERT_EQUAL_FATAL(serve(dp, id, 1, i, &reply), 0);
			if (p == 0 && i == 0) {
				oldest = reply.qpn;
			}
		}
	}
	CU_ASSERT_EQUAL_FATAL(dp->n_passive, DP_PASSIVE_MAX);
	CU_ASSERT_EQUAL(g_live_qp, (int)DP_PASSIVE_MAX);
	CU_ASSERT_EQUAL(serve(dp, "node-new", 1, 0, &reply), 0);
	CU_ASSERT_EQUAL(dp->n_passive, DP_PASSIVE_MAX);
	CU_ASSERT_EQUAL(g_live_qp, (int)DP_PASSIVE_MAX);
	CU_ASSERT_FALSE(qp_rec(oldest)->live);
	CU_ASSERT_TRUE(qp_rec(oldest + 1)->live);
	CU_ASSERT_EQUAL(pc_rdma_peer_channels(dp->passive, "node-100", 1),
			PC_RDMA_PEER_CHANNELS_MAX - 1);
	CU_ASSERT_EQUAL(pc_rdma_peer_channels(dp->passive, "node-new", 1), 1);
	down(dp);
}

/* ---- the active side ---- */

static const struct pc_xport_peer g_peer9 = {
	.node_id = "node-9", .incarnation = 9, .host = "127.0.0.9", .port = 1};

/* A worker's channel to g_peer9, the message the control lcore would send back. */
static struct qp_msg *
worker_msg(struct pc_dataplane *dp, unsigned int wi, int status, uint32_t *qpn)
{
	struct qp_msg *m = calloc(1, sizeof(*m));
	struct pc_qp_info mine;

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	m->dp = dp;
	m->w = &dp->w[wi];
	m->chan = pc_rdma_chan_create(dp->w[wi].rdma, &g_peer9);
	CU_ASSERT_FATAL(m->chan != 0);
	CU_ASSERT_EQUAL_FATAL(pc_rdma_chan_info(dp->w[wi].rdma, m->chan, &mine), 0);
	*qpn = mine.qpn;
	m->incarnation = g_peer9.incarnation;
	m->status = status;
	snprintf(m->node_id, sizeof(m->node_id), "%s", g_peer9.node_id);
	m->info = peer_record(g_peer9.incarnation, 9);
	return m;
}

/* A worker needs a channel to a node its cluster does not know: the error comes back to it. */
static void
test_need_channel_unknown_peer(void)
{
	struct pc_dataplane *dp;
	struct pc_lcore *ctl, *wl;
	struct qp_rec *r;
	uint32_t qpn;

	up(PC_PROTO_RDMA);
	dp = dp_rdma(0);
	ctl = pc_runtime_control(g_rt);
	wl = dp->w[1].lc;
	CU_ASSERT_PTR_NOT_EQUAL_FATAL(wl, ctl);
	qp_need_channel(&dp->w[1], &g_peer9);
	/* A QP in INIT on that worker's transport, a message on its way to the control lcore. */
	CU_ASSERT_EQUAL(g_live_qp, 1);
	qpn = g_next_qpn - 1;
	r = qp_rec(qpn);
	CU_ASSERT_EQUAL(r->state, IBV_QPS_INIT);
	CU_ASSERT_EQUAL(ring_count(ctl), 1);
	CU_ASSERT_EQUAL(ring_count(wl), 0);
	CU_ASSERT_EQUAL(dp->qp_connects, 0);
	/* The control lcore calls the cluster: node-9 is no member, so the worker hears at once. */
	poll_lcore(ctl);
	CU_ASSERT_EQUAL(dp->qp_connects, 1);
	CU_ASSERT_EQUAL(dp->qp_failed, 1);
	CU_ASSERT_EQUAL(ring_count(ctl), 0);
	CU_ASSERT_EQUAL(ring_count(wl), 1);
	CU_ASSERT_TRUE(r->live); /* the worker's QP is the worker's to close */
	poll_lcore(wl);
	CU_ASSERT_EQUAL(ring_count(wl), 0);
	CU_ASSERT_FALSE(r->live);
	CU_ASSERT_EQUAL(g_live_qp, 0);
	CU_ASSERT_EQUAL(pc_rdma_peer_channels(dp->w[1].rdma, "node-9", 9), 0);
	/* Asking again at once is held back: no QP, no round trip, for the backoff. */
	qp_need_channel(&dp->w[1], &g_peer9);
	CU_ASSERT_EQUAL(g_live_qp, 0);
	CU_ASSERT_EQUAL(ring_count(ctl), 0);
	/* Another worker has its own view: it asks. */
	CU_ASSERT_EQUAL(dp->nw, 2);
	qp_need_channel(&dp->w[0], &g_peer9);
	CU_ASSERT_EQUAL(g_live_qp, 1);
	poll_lcore(ctl);
	poll_lcore(dp->w[0].lc);
	CU_ASSERT_EQUAL(g_live_qp, 0);
	/* After the backoff, a READ to node-9 may ask again: a new channel. */
	usleep((useconds_t)(DP_CONNECT_BACKOFF_NS / 1000 + 20000));
	qp_need_channel(&dp->w[1], &g_peer9);
	CU_ASSERT_EQUAL(g_live_qp, 1);
	CU_ASSERT_EQUAL(ring_count(ctl), 1);
	poll_lcore(ctl);
	poll_lcore(wl);
	CU_ASSERT_EQUAL(g_live_qp, 0);
	down(dp);
}

/* The transport itself asks (post_reads to a peer with no channel): the callback is wired. */
static void
test_post_asks_for_channel(void)
{
	struct pc_dataplane *dp;
	struct pc_xport_read rd = {.remote_off = 0, .generation = 1, .len = 4096, .local_off = 0};
	struct pc_lcore *ctl;

	up(PC_PROTO_RDMA);
	dp = dp_rdma(0);
	ctl = pc_runtime_control(g_rt);
	for (unsigned int i = 0; i < NW; i++) {
		CU_ASSERT_EQUAL(dp->read_ops->post_reads(dp->w[i].rdma, &g_peer9, &rd, 1, 0, 1), 0);
		CU_ASSERT_EQUAL(g_live_qp, (int)i + 1);
		CU_ASSERT_EQUAL(ring_count(ctl), i + 1);
		/* One channel being connected: the next READ does not ask again. */
		CU_ASSERT_EQUAL(dp->read_ops->post_reads(dp->w[i].rdma, &g_peer9, &rd, 1, 0, 1), 0);
		CU_ASSERT_EQUAL(ring_count(ctl), i + 1);
	}
	poll_lcore(ctl);
	for (unsigned int i = 0; i < NW; i++) {
		poll_lcore(dp->w[i].lc);
	}
	CU_ASSERT_EQUAL(g_live_qp, 0);
	CU_ASSERT_EQUAL(dp->qp_connects, NW);
	down(dp);
}

static void
test_done_connects(void)
{
	struct pc_dataplane *dp;
	uint32_t qpn;
	struct qp_msg *m;

	up(PC_PROTO_RDMA);
	dp = dp_rdma(0);
	m = worker_msg(dp, 0, 0, &qpn);
	CU_ASSERT_EQUAL(qp_rec(qpn)->state, IBV_QPS_INIT);
	CU_ASSERT_EQUAL(pc_rdma_peer_channels(dp->w[0].rdma, "node-9", 9), 0);
	qp_done_on_worker(m); /* frees m */
	CU_ASSERT_EQUAL(qp_rec(qpn)->state, IBV_QPS_RTS);
	CU_ASSERT_EQUAL(qp_rec(qpn)->dest_qpn, 0xBE09);
	CU_ASSERT_TRUE(qp_rec(qpn)->live);
	CU_ASSERT_EQUAL(pc_rdma_peer_channels(dp->w[0].rdma, "node-9", 9), 1);
	/* A peer record of another incarnation: the channel is destroyed, not connected. */
	m = worker_msg(dp, 1, 0, &qpn);
	m->info.incarnation = 10;
	qp_done_on_worker(m);
	CU_ASSERT_FALSE(qp_rec(qpn)->live);
	CU_ASSERT_EQUAL(pc_rdma_peer_channels(dp->w[1].rdma, "node-9", 9), 0);
	CU_ASSERT_EQUAL(g_live_qp, 1);
	down(dp);
}

static void
test_done_error_closes(void)
{
	static const int errs[] = {-ETIMEDOUT, -EHOSTUNREACH, -ESTALE, -ENOTSUP, -EPROTO};
	struct pc_dataplane *dp;

	up(PC_PROTO_RDMA);
	dp = dp_rdma(0);
	for (size_t k = 0; k < PC_ARRAY_SIZE(errs); k++) {
		uint32_t qpn;
		struct qp_msg *m = worker_msg(dp, 0, errs[k], &qpn);
		uint64_t chan = m->chan;
		struct pc_qp_info info;

		CU_ASSERT_TRUE(qp_rec(qpn)->live);
		qp_done_on_worker(m);
		CU_ASSERT_FALSE(qp_rec(qpn)->live);
		CU_ASSERT_EQUAL(pc_rdma_chan_info(dp->w[0].rdma, chan, &info), -ENOENT);
		CU_ASSERT_EQUAL(g_live_qp, 0);
	}
	down(dp);
}

/* qp_connected(), the cluster's callback on the control lcore. */
static void
test_connected(void)
{
	struct pc_dataplane *dp;
	struct pc_qp_info rec = peer_record(9, 9);
	struct pc_lcore *wl;
	struct qp_msg *m;
	uint32_t qpn;

	up(PC_PROTO_RDMA);
	dp = dp_rdma(0);
	wl = dp->w[1].lc;
	/* The peer's record: on to the worker, which connects. */
	m = worker_msg(dp, 1, 0, &qpn);
	memset(&m->info, 0, sizeof(m->info)); /* what qp_connect_on_control sent: ours */
	qp_connected(m, 0, &rec);
	CU_ASSERT_EQUAL(ring_count(wl), 1);
	CU_ASSERT_EQUAL(qp_rec(qpn)->state, IBV_QPS_INIT);
	poll_lcore(wl);
	CU_ASSERT_EQUAL(qp_rec(qpn)->state, IBV_QPS_RTS);
	CU_ASSERT_EQUAL(qp_rec(qpn)->dest_qpn, rec.qpn);
	CU_ASSERT_EQUAL(dp->qp_failed, 0);
	/* An error, or success without a record: the worker closes its channel. */
	m = worker_msg(dp, 1, 0, &qpn);
	qp_connected(m, -ETIMEDOUT, NULL);
	CU_ASSERT_EQUAL(dp->qp_failed, 1);
	poll_lcore(wl);
	CU_ASSERT_FALSE(qp_rec(qpn)->live);
	m = worker_msg(dp, 1, 0, &qpn);
	qp_connected(m, 0, NULL);
	CU_ASSERT_EQUAL(dp->qp_failed, 2);
	poll_lcore(wl);
	CU_ASSERT_FALSE(qp_rec(qpn)->live);
	CU_ASSERT_EQUAL(g_live_qp, 1);
	down(dp);
}

/* Shutting down (the cluster cancels its calls): the message is freed, the worker left alone. */
static void
test_connected_while_stopping(void)
{
	struct pc_dataplane *dp;
	struct pc_qp_info rec = peer_record(9, 9);
	struct qp_msg *m;
	uint32_t qpn;
	uint64_t chan;

	up(PC_PROTO_RDMA);
	dp = dp_rdma(0);
	pc_runtime_stop(g_rt);
	for (int k = 0; k < 2; k++) {
		struct pc_qp_info info;

		m = worker_msg(dp, 1, 0, &qpn);
		chan = m->chan;
		if (k == 0) {
			qp_connected(m, -ECANCELED, NULL);
		} else {
			qp_connected(m, 0, &rec);
		}
		/* Nothing sent to the worker, its QP untouched (still INIT), no failure counted. */
		CU_ASSERT_EQUAL(ring_count(dp->w[1].lc), 0);
		CU_ASSERT_TRUE(qp_rec(qpn)->live);
		CU_ASSERT_EQUAL(qp_rec(qpn)->state, IBV_QPS_INIT);
		CU_ASSERT_EQUAL(pc_rdma_chan_info(dp->w[1].rdma, chan, &info), 0);
		CU_ASSERT_EQUAL(dp->qp_failed, 0);
	}
	/* The QPs go with their transport; under ASan a message not freed is a leak report. */
	down(dp);
}

/* Pump both clusters until cond() or `ms` of real time. */
static bool
pump_until(bool (*cond)(void *), void *arg, unsigned int ms)
{
	struct timespec ts;
	uint64_t end;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	end = (uint64_t)ts.tv_sec * S + (uint64_t)ts.tv_nsec + ms * MS;
	for (;;) {
		int work = 0;

		if (cond != NULL && cond(arg)) {
			return true;
		}
		for (int i = 0; i < 2; i++) {
			work += pc_cluster_poll(g_c[i], g_now);
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if ((uint64_t)ts.tv_sec * S + (uint64_t)ts.tv_nsec >= end) {
			return cond != NULL && cond(arg);
		}
		if (work == 0) {
			usleep(200);
		}
	}
}

static bool
ring_not_empty(void *arg)
{
	return ring_count(arg) > 0;
}

/* node-0's worker asks node-1 for a channel, through both control lcores' clusters. */
static void
test_handshake_two_nodes(void)
{
	struct pc_dataplane *dp0, *dp1;
	struct pc_xport_read rd = {.remote_off = 0, .generation = 1, .len = 4096, .local_off = 0};
	struct pc_cluster_info i1;
	struct pc_xport_peer p1;
	struct pc_lcore *ctl, *wl;
	struct qp_rec *act, *pas;
	uint32_t act_qpn, pas_qpn;

	up(PC_PROTO_RDMA);
	dp0 = dp_rdma(0);
	dp1 = dp_rdma(1);
	pc_cluster_set_qp_handler(g_c[1], qp_serve, dp1);
	pc_cluster_get_info(g_c[1], &i1);
	p1 = (struct pc_xport_peer){
		.node_id = i1.node_id, .incarnation = i1.incarnation, .host = i1.host, .port = 1};
	ctl = pc_runtime_control(g_rt);
	wl = dp0->w[1].lc;

	CU_ASSERT_EQUAL(dp0->read_ops->post_reads(dp0->w[1].rdma, &p1, &rd, 1, 0, 1), 0);
	CU_ASSERT_EQUAL_FATAL(g_live_qp, 1);
	act_qpn = g_next_qpn - 1;
	CU_ASSERT_EQUAL_FATAL(ring_count(ctl), 1);
	poll_lcore(ctl); /* QP_CONNECT on its way */
	CU_ASSERT_EQUAL(dp0->qp_connects, 1);
	CU_ASSERT_EQUAL(dp0->qp_failed, 0);
	CU_ASSERT_TRUE_FATAL(pump_until(ring_not_empty, wl, 5000));
	/* node-1 created and connected its passive QP, aimed at the worker's. */
	CU_ASSERT_EQUAL(dp1->qp_served, 1);
	CU_ASSERT_EQUAL_FATAL(dp1->n_passive, 1);
	CU_ASSERT_STRING_EQUAL(dp1->passive_ids[0].node_id, "node-0");
	CU_ASSERT_EQUAL(dp1->passive_ids[0].incarnation, incarnation_of(0));
	CU_ASSERT_EQUAL_FATAL(g_live_qp, 2);
	pas_qpn = g_next_qpn - 1;
	pas = qp_rec(pas_qpn);
	CU_ASSERT_EQUAL(pas->state, IBV_QPS_RTS);
	CU_ASSERT_EQUAL(pas->dest_qpn, act_qpn);
	/* The worker connects with node-1's record. */
	act = qp_rec(act_qpn);
	CU_ASSERT_EQUAL(act->state, IBV_QPS_INIT);
	poll_lcore(wl);
	CU_ASSERT_EQUAL(act->state, IBV_QPS_RTS);
	CU_ASSERT_EQUAL(act->dest_qpn, pas_qpn);
	CU_ASSERT_EQUAL(pc_rdma_peer_channels(dp0->w[1].rdma, i1.node_id, i1.incarnation), 1);
	CU_ASSERT_EQUAL(dp0->qp_failed, 0);

	/* node-1 without a handler: -ENOTSUP comes back, and the worker's QP is closed. */
	pc_cluster_set_qp_handler(g_c[1], NULL, NULL);
	qp_need_channel(&dp0->w[0], &p1);
	CU_ASSERT_EQUAL(g_live_qp, 3);
	act_qpn = g_next_qpn - 1;
	poll_lcore(ctl);
	CU_ASSERT_TRUE(pump_until(ring_not_empty, dp0->w[0].lc, 5000));
	CU_ASSERT_EQUAL(dp0->qp_failed, 1);
	poll_lcore(dp0->w[0].lc);
	CU_ASSERT_FALSE(qp_rec(act_qpn)->live);
	CU_ASSERT_EQUAL(g_live_qp, 2);
	pc_dataplane_destroy(dp1);
	down(dp0);
}

/* ---- suites ---- */

static uint16_t
free_port(void)
{
	int fd;
	uint16_t port = hold_port(&fd);

	if (fd >= 0) {
		close(fd);
	}
	return port;
}

static int
stores_init(void)
{
	for (unsigned int i = 0; i < 2; i++) {
		char name[16];
		struct pc_store_opts o = {
			.segment_size = SEG_SIZE,
			.nb_caches = NW + 1,
			.quarantine_us = 1000,
		};

		snprintf(name, sizeof(name), "dpst%u", i);
		o.name = name;
		g_st[i] = pc_store_create(&o);
		if (g_st[i] == NULL) {
			return -1;
		}
	}
	return 0;
}

static bool
converged(void *arg)
{
	(void)arg;
	for (int i = 0; i < 2; i++) {
		struct pc_cluster_info info;

		pc_cluster_get_info(g_c[i], &info);
		if (info.members != 2) {
			return false;
		}
	}
	return true;
}

/* node-0 and node-1, one discovery master each on the same meta port, until they agree. */
static int
clusters_init(void)
{
	struct pc_cluster_opts o = {.role = PC_DISC_ROLE_INFERENCE,
				    .pool_capacity = SEG_SIZE,
				    .shard_entries = 1u << 12};
	uint16_t meta = free_port();

	if (meta == 0) {
		return -1;
	}
	for (int i = 0; i < 2; i++) {
		struct pc_config *c = &g_ncfg[i];
		char host[32];

		*c = g_base;
		snprintf(host, sizeof(host), "127.0.0.%d", i + 1);
		snprintf(c->discovery_addr, sizeof(c->discovery_addr), "127.0.0.1:%u", meta);
		snprintf(c->meta_bind_host, sizeof(c->meta_bind_host), "%s", host);
		snprintf(c->control_bind_host, sizeof(c->control_bind_host), "%s", host);
		snprintf(c->local_hostname, sizeof(c->local_hostname), "%s", host);
		snprintf(c->node_id, sizeof(c->node_id), "node-%d", i);
		c->control_port = 0;
		c->heartbeat_interval = 0.5;
		c->member_ttl = 1.5;
		c->request_timeout = 1.0;
		c->max_masters = 3;
		c->directory_read_cache_ttl = 0.0;
		g_c[i] = pc_cluster_create(c, &o, g_now);
		if (g_c[i] == NULL) {
			return -1;
		}
	}
	for (int round = 0; round < 60 && !converged(NULL); round++) {
		g_now += S / 4;
		pump_until(NULL, NULL, 20);
	}
	return converged(NULL) ? 0 : -1;
}

static int
suite_init(void)
{
	return g_st[0] != NULL && g_c[1] != NULL ? 0 : -1;
}

static const struct pc_ut_test g_tcp_tests[] = {
	{"protocol tcp: one port, a tcp transport per worker, nothing left", test_tcp},
	{"the data port taken: NULL; free again: it binds", test_tcp_port_taken},
	{NULL, NULL},
};

static const struct pc_ut_test g_rdma_tests[] = {
	{"a device: reads over rdma, one transport per worker and a passive one", test_rdma_ok},
	{"no usable device or it fails to open: tcp, no verbs object left", test_rdma_fallbacks},
	{"the k-th rdma transport fails: tcp, every earlier one destroyed",
	 test_rdma_transport_fails},
	{"attach: rdma readers get half the quarantine as READ deadline", test_attach_rdma},
	{"attach: page_quarantine 0 leaves READs the request's deadline",
	 test_attach_rdma_no_quarantine},
	{"attach: tcp readers on the tcp transports, no READ cap", test_attach_tcp},
	{NULL, NULL},
};

static const struct pc_ut_test g_passive_tests[] = {
	{"qp_serve: a QP in RTS, this node's record and incarnation", test_serve},
	{"qp_serve: each verbs failure an error, no QP left", test_serve_fails},
	{"65th channel of a peer incarnation drops its oldest only", test_serve_cap_per_peer},
	{"channels gone on their own are forgotten", test_serve_forgets_dead},
	{"transport full: the oldest of all goes", test_serve_transport_full},
	{NULL, NULL},
};

static const struct pc_ut_test g_active_tests[] = {
	{"qp_need_channel: QP, control lcore, an unknown peer's error closes it",
	 test_need_channel_unknown_peer},
	{"post_reads with no channel asks once per peer", test_post_asks_for_channel},
	{"qp_done_on_worker status 0: RTS; another incarnation: destroyed", test_done_connects},
	{"qp_done_on_worker error: channel closed", test_done_error_closes},
	{"qp_connected: record to the worker; errors close", test_connected},
	{"qp_connected while stopping: message freed, worker untouched",
	 test_connected_while_stopping},
	{"two nodes: the whole handshake, both QPs in RTS at each other", test_handshake_two_nodes},
	{NULL, NULL},
};

static const struct pc_ut_suite g_suites[] = {
	{"dataplane tcp", suite_init, NULL, g_tcp_tests},
	{"dataplane rdma setup", suite_init, NULL, g_rdma_tests},
	{"dataplane passive", suite_init, NULL, g_passive_tests},
	{"dataplane active", suite_init, NULL, g_active_tests},
};

/* pc_ut_eal_init with three lcores on CPU 0 (never launched; works on any machine). */
static int
eal_init(void)
{
	char prefix[64];
	char *argv[] = {
		"dataplane_ut",
		"--lcores=0@0,1@0,2@0",
		"--no-huge",
		"-m",
		"256",
		"--no-shconf",
		prefix,
		"--no-pci",
		"--no-telemetry",
		"--log-level=lib.*:error",
		"--log-level=peercache.*:crit",
		NULL,
	};

	snprintf(prefix, sizeof(prefix), "--file-prefix=ut_dataplane_%d", (int)getpid());
	if (rte_eal_init((int)PC_ARRAY_SIZE(argv) - 1, argv) < 0) {
		fprintf(stderr, "dataplane_ut: EAL init failed: %s\n", rte_strerror(rte_errno));
		return -1;
	}
	return 0;
}

int
main(void)
{
	char err[PC_CONFIG_ERR_MAX];
	int rc;

	pc_config_defaults(&g_base);
	if (pc_config_load_embedded(&g_base, err, sizeof(err)) != 0 ||
	    pc_config_finalize(&g_base, err, sizeof(err)) != 0) {
		fprintf(stderr, "dataplane_ut: embedded config: %s\n", err);
		return 1;
	}
	g_base.rdma_port = 0;
	g_base.max_channels_per_peer = 4;
	g_base.page_quarantine = 1.0;
	g_base.request_timeout = 1.0;
	g_base.device_name[0] = '\0';
	snprintf(g_base.rdma_bind_host, sizeof(g_base.rdma_bind_host), "127.0.0.1");
	snprintf(g_base.engine_socket, sizeof(g_base.engine_socket), "/tmp/pc-dataplane-ut-%d.sock",
		 (int)getpid());
	if (eal_init() != 0) {
		return 1;
	}
	/* Failing here fails every suite's init (reported by CUnit), never a silent pass. */
	if (stores_init() != 0 || clusters_init() != 0) {
		fprintf(stderr, "dataplane_ut: stores or clusters did not start\n");
	}
	rc = pc_ut_run(g_suites, PC_ARRAY_SIZE(g_suites));
	for (int i = 0; i < 2; i++) {
		pc_cluster_destroy(g_c[i]);
		pc_store_destroy(g_st[i]);
	}
	rte_eal_cleanup();
	return rc;
}
