/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench/rdma.c: the bench's raw verbs READ baseline, through
 * tests/fake_verbs.h (no RDMA device here). The fake provides the device,
 * the objects and the bookkeeping (every ibv_modify_qp recorded, every
 * object counted until destroyed); on top of it this file puts a small
 * device model as the context's post_send and poll_cq: it keeps the READs
 * posted in order, checks each work request as it arrives, and completes
 * the oldest ones a few at a time, copying the bytes from the "remote"
 * address (memory of this process) to the local one, as a NIC would. So
 * the window, the work requests, the bytes, and what an error completion,
 * a failed post or a silent device do to the loop are all observable.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../../bench/rdma.c"
#include "../../../bench/series.c"
#include "fake_verbs.h"
#include "mock.h"
#include "ut.h"

/* ---- what rdma.c takes from peercache-bench.c: time (the series are series.c's) ---- */

double g_tsc_ghz = 1.0;

uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

double
ticks_to_ns(uint64_t t)
{
	return (double)t / g_tsc_ghz;
}

/* ---- the GID table (ibv_query_gid_table is inline over this) ---- */

static struct ibv_gid_entry g_gid_table[8];
static ssize_t g_gid_table_n;
static int g_gid_table_rc; /* non-zero: the query fails with -rc */

ssize_t
_ibv_query_gid_table(struct ibv_context *context, struct ibv_gid_entry *entries, size_t max_entries,
		     uint32_t flags, size_t entry_size)
{
	(void)context;
	CU_ASSERT_EQUAL(flags, 0);
	CU_ASSERT_EQUAL(entry_size, sizeof(struct ibv_gid_entry));
	if (g_gid_table_rc != 0) {
		return -g_gid_table_rc;
	}
	CU_ASSERT_FATAL((size_t)g_gid_table_n <= max_entries);
	memcpy(entries, g_gid_table, (size_t)g_gid_table_n * sizeof(*entries));
	return g_gid_table_n;
}

static void
gid_entry(unsigned int i, uint32_t port, uint32_t index, enum ibv_gid_type type, bool v4)
{
	struct ibv_gid_entry *e = &g_gid_table[i];

	memset(e, 0, sizeof(*e));
	e->port_num = port;
	e->gid_index = index;
	e->gid_type = type;
	if (v4) {
		e->gid.raw[10] = 0xff;
		e->gid.raw[11] = 0xff;
		e->gid.raw[12] = 10;
		e->gid.raw[15] = (uint8_t)index;
	} else {
		e->gid.raw[0] = 0xfe;
		e->gid.raw[1] = 0x80;
		e->gid.raw[15] = (uint8_t)index;
	}
}

/* ---- the device model ---- */

#define PEER_RKEY 0xABCDu
#define MODEL_MAX 256u

struct inflight {
	uint64_t wr_id;
	uint64_t laddr, raddr;
	uint32_t len;
};

static struct {
	unsigned int window; /* the most READs in flight the loop may have */
	unsigned int burst;  /* completions per poll, at most */
	unsigned int in_flight, max_in_flight;
	uint64_t next_wr_id;
	unsigned int wrs, chains, polls;
	uint64_t fail_wr_id; /* this READ completes with fail_status (UINT64_MAX: none) */
	enum ibv_wc_status fail_status;
	uint64_t lost_wr_id; /* this READ completes but moves no bytes */
	bool stall;          /* nothing ever completes */
	uint64_t stall_since;
	bool swap; /* the first two completions come out of order */
	struct inflight q[MODEL_MAX];
	unsigned int head, tail;
} g_m;

static struct rdma_ep *g_ep;
static struct rdma_reads g_rr;
static uint8_t *g_local, *g_remote;
static size_t g_size, g_lpages, g_rpages;
static char g_why[512];

static int
model_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad)
{
	int rc = ut_post_send_rc();

	CU_ASSERT_PTR_EQUAL(qp, g_ep->qp);
	if (rc != 0) {
		*bad = wr;
		return rc;
	}
	g_m.chains++;
	for (struct ibv_send_wr *w = wr; w != NULL; w = w->next) {
		uint64_t seq = g_m.next_wr_id++;
		struct inflight *f = &g_m.q[g_m.tail++ % MODEL_MAX];

		/* A signaled READ of one block, numbered in order, with the peer's rkey. */
		CU_ASSERT_EQUAL(w->opcode, IBV_WR_RDMA_READ);
		CU_ASSERT(w->send_flags & IBV_SEND_SIGNALED);
		CU_ASSERT_EQUAL(w->num_sge, 1);
		CU_ASSERT_EQUAL(w->wr_id, seq);
		CU_ASSERT_EQUAL(w->sg_list[0].length, g_size);
		CU_ASSERT_EQUAL(w->sg_list[0].lkey, g_ep->mr->lkey);
		CU_ASSERT_EQUAL(w->wr.rdma.rkey, PEER_RKEY);
		/* READ seq reads block seq of the served buffer (mod its size) into slot seq. */
		CU_ASSERT_EQUAL(w->wr.rdma.remote_addr,
				(uint64_t)(uintptr_t)g_remote + (seq % g_rpages) * g_size);
		CU_ASSERT_EQUAL(w->sg_list[0].addr,
				(uint64_t)(uintptr_t)g_local + (seq % g_lpages) * g_size);
		f->wr_id = w->wr_id;
		f->laddr = w->sg_list[0].addr;
		f->raddr = w->wr.rdma.remote_addr;
		f->len = w->sg_list[0].length;
		g_m.wrs++;
		g_m.in_flight++;
		CU_ASSERT(g_m.in_flight <= g_m.window);
		if (g_m.in_flight > g_m.max_in_flight) {
			g_m.max_in_flight = g_m.in_flight;
		}
	}
	return 0;
}

static int
model_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc)
{
	int k = 0;

	if (cq != g_ep->cq) {
		CU_FAIL("poll of another CQ"); /* counted only when it fails: polls are many */
	}
	g_m.polls++;
	if (g_m.stall) {
		/* Backstop: a loop with no deadline of its own gets a poll error here, not a hang.
		 */
		if (g_m.stall_since == 0) {
			g_m.stall_since = now_ns();
		} else if (now_ns() - g_m.stall_since > 2000000000ULL) {
			CU_FAIL("the READ loop kept polling 2 s past its deadline");
			return -1;
		}
		return 0;
	}
	while (k < n && k < (int)g_m.burst && g_m.head != g_m.tail) {
		struct inflight *f = &g_m.q[g_m.head++ % MODEL_MAX];

		memset(&wc[k], 0, sizeof(wc[k]));
		wc[k].wr_id = f->wr_id;
		wc[k].opcode = IBV_WC_RDMA_READ;
		wc[k].byte_len = f->len;
		wc[k].qp_num = g_ep->qp->qp_num;
		if (f->wr_id == g_m.fail_wr_id) {
			wc[k].status = g_m.fail_status;
			wc[k].vendor_err = 0x88;
		} else if (f->wr_id != g_m.lost_wr_id) {
			memcpy((void *)(uintptr_t)f->laddr, (const void *)(uintptr_t)f->raddr,
			       f->len);
		}
		g_m.in_flight--;
		k++;
	}
	if (g_m.swap && k >= 2) {
		uint64_t t = wc[0].wr_id;

		wc[0].wr_id = wc[1].wr_id;
		wc[1].wr_id = t;
		g_m.swap = false;
	}
	return k;
}

static struct rdma_where
where(int gid_index)
{
	struct rdma_where w;

	memset(&w, 0, sizeof(w));
	snprintf(w.dev, sizeof(w.dev), "mlx5_0");
	w.port = 1;
	w.gid_index = gid_index;
	return w;
}

/* The serving side's record, as rdma_serve would send it. */
static struct rdma_msg
peer_msg(void)
{
	struct rdma_msg m;

	memset(&m, 0, sizeof(m));
	m.qpn = 0xBEEF;
	m.psn = 0x123456;
	m.rkey = PEER_RKEY;
	m.lid = 0x77;
	m.mtu = IBV_MTU_1024;
	m.rd_atom = 8;
	for (unsigned int i = 0; i < 16; i++) {
		m.gid[i] = (uint8_t)(0x10 + i);
	}
	m.addr = (uint64_t)(uintptr_t)g_remote;
	m.len = g_rpages * g_size;
	return m;
}

/*
 * A connected reader with a READ window of `window` READs of `size`,
 * landing in lpages slots, reading a served buffer of rpages blocks, the
 * model as its device (completing `burst` at a time).
 */
static void
setup(unsigned int window, size_t size, size_t lpages, size_t rpages, unsigned int burst)
{
	struct rdma_where w = where(-1);
	struct rdma_msg peer;
	int err = 0;

	fv_reset();
	g_fv_checks = FV_CHECK_QP_LIFE;
	memset(&g_m, 0, sizeof(g_m));
	g_m.window = window;
	g_m.burst = burst;
	g_m.fail_wr_id = UINT64_MAX;
	g_m.lost_wr_id = UINT64_MAX;
	g_size = size;
	g_lpages = lpages;
	g_rpages = rpages;
	g_local = calloc(lpages, size);
	g_remote = malloc(rpages * size);
	CU_ASSERT_FATAL(g_local != NULL && g_remote != NULL);
	pattern_fill(g_remote, rpages * size, RDMA_SEED);
	peer = peer_msg();
	g_why[0] = 0;
	g_ep = ep_open(&w, g_local, lpages * size, IBV_ACCESS_LOCAL_WRITE, window, 0, &err, g_why,
		       sizeof(g_why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(g_ep);
	CU_ASSERT_EQUAL_FATAL(ep_connect(g_ep, &peer, g_why, sizeof(g_why)), 0);
	g_ep->ctx->ops.post_send = model_post_send;
	g_ep->ctx->ops.poll_cq = model_poll_cq;
	CU_ASSERT_EQUAL_FATAL(reads_init(&g_rr, g_ep, g_local, lpages * size, peer.addr,
					 (size_t)peer.len, peer.rkey, size, window),
			      0);
}

static void
teardown(void)
{
	reads_fini(&g_rr);
	ep_close(g_ep);
	g_ep = NULL;
	free(g_local);
	free(g_remote);
	g_local = NULL;
	g_remote = NULL;
	fv_assert_no_leak();
}

/* ---- device choice: the skip reason ---- */

static void
test_pick_no_device(void)
{
	struct rdma_where w;
	char why[256];

	fv_reset();
	g_n_devs = 0;
	CU_ASSERT_EQUAL(rdma_where_pick(NULL, 1, RDMA_GID_AUTO, &w, why, sizeof(why)), -ENODEV);
	CU_ASSERT_STRING_EQUAL(why, "no RDMA device (ibv_get_device_list found none)");
	/* No kernel support: the list call itself fails (ENOSYS). */
	g_list_null = true;
	CU_ASSERT_EQUAL(rdma_where_pick("", 1, RDMA_GID_AUTO, &w, why, sizeof(why)), -ENODEV);
	CU_ASSERT_STRING_EQUAL(why, "no RDMA device (ibv_get_device_list: Function not "
				    "implemented: no RDMA support in this kernel)");
	fv_assert_no_leak();
}

static void
test_pick_port_and_name(void)
{
	struct rdma_where w;
	char why[256];

	fv_reset();
	g_n_devs = 2;
	g_port_state[0] = IBV_PORT_DOWN;
	g_port_state[1] = IBV_PORT_DOWN;
	CU_ASSERT_EQUAL(rdma_where_pick(NULL, 1, RDMA_GID_AUTO, &w, why, sizeof(why)), -ENODEV);
	CU_ASSERT_STRING_EQUAL(why, "mlx5_1: port 1 is DOWN, not ACTIVE");
	/* The first device whose port is ACTIVE. */
	g_port_state[1] = IBV_PORT_ACTIVE;
	CU_ASSERT_EQUAL(rdma_where_pick(NULL, 1, RDMA_GID_AUTO, &w, why, sizeof(why)), 0);
	CU_ASSERT_STRING_EQUAL(w.dev, "mlx5_1");
	CU_ASSERT_EQUAL(w.port, 1);
	/* A named one, and only that one. */
	CU_ASSERT_EQUAL(rdma_where_pick("mlx5_0", 1, RDMA_GID_AUTO, &w, why, sizeof(why)), -ENODEV);
	CU_ASSERT_STRING_EQUAL(why, "mlx5_0: port 1 is DOWN, not ACTIVE");
	CU_ASSERT_EQUAL(rdma_where_pick("mlx5_9", 1, RDMA_GID_AUTO, &w, why, sizeof(why)), -ENODEV);
	CU_ASSERT_STRING_EQUAL(why, "RDMA device mlx5_9 not found (ibv_get_device_list has 2)");
	fv_assert_no_leak();
}

static void
test_pick_gid(void)
{
	struct rdma_where w;
	char why[256];

	fv_reset();
	/* InfiniBand: no GRH unless asked. */
	CU_ASSERT_EQUAL(rdma_where_pick(NULL, 1, RDMA_GID_AUTO, &w, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(w.roce, 0);
	CU_ASSERT_EQUAL(w.gid_index, -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(w.text, "InfiniBand"));
	/* RoCE: the port's RoCE v2 GID with an IPv4 address, not another port's. */
	g_link_layer = IBV_LINK_LAYER_ETHERNET;
	gid_entry(0, 2, 0, IBV_GID_TYPE_ROCE_V2, true);
	gid_entry(1, 1, 0, IBV_GID_TYPE_ROCE_V1, false);
	gid_entry(2, 1, 1, IBV_GID_TYPE_ROCE_V2, false);
	gid_entry(3, 1, 2, IBV_GID_TYPE_ROCE_V1, true);
	gid_entry(4, 1, 3, IBV_GID_TYPE_ROCE_V2, true);
	g_gid_table_n = 5;
	g_gid_table_rc = 0;
	CU_ASSERT_EQUAL(rdma_where_pick(NULL, 1, RDMA_GID_AUTO, &w, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(w.roce, 1);
	CU_ASSERT_EQUAL(w.gid_index, 3);
	CU_ASSERT_STRING_EQUAL(w.text, "mlx5_0 port 1, RoCE, GID index 3 (RoCE v2, IPv4)");
	/* No IPv4 one: the first RoCE v2. */
	g_gid_table_n = 4;
	CU_ASSERT_EQUAL(rdma_where_pick(NULL, 1, RDMA_GID_AUTO, &w, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(w.gid_index, 1);
	/* No GID on the port at all. */
	g_gid_table_n = 1;
	CU_ASSERT_EQUAL(rdma_where_pick(NULL, 1, RDMA_GID_AUTO, &w, why, sizeof(why)), -ENODEV);
	CU_ASSERT_STRING_EQUAL(why, "mlx5_0: port 1 has no GID (RoCE needs one)");
	/* The table cannot be read: the engine's default. */
	g_gid_table_rc = EOPNOTSUPP;
	CU_ASSERT_EQUAL(rdma_where_pick(NULL, 1, RDMA_GID_AUTO, &w, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(w.gid_index, ROCE_GID_DEFAULT);
	g_gid_table_rc = 0;
	/* Given: taken as is; RoCE without a GRH is refused. */
	CU_ASSERT_EQUAL(rdma_where_pick(NULL, 1, 5, &w, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(w.gid_index, 5);
	CU_ASSERT_EQUAL(rdma_where_pick(NULL, 1, -1, &w, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "needs a GID index"));
	fv_assert_no_leak();
}

/* ---- the QP ---- */

static void
test_qp_setup_ib(void)
{
	const struct mod_rec *m;
	struct rdma_msg peer;

	setup(4, 4096, 8, 16, 1);
	CU_ASSERT_EQUAL(g_reg_mr_access, IBV_ACCESS_LOCAL_WRITE);
	CU_ASSERT_PTR_EQUAL(g_reg_mr_addr, g_local);
	CU_ASSERT_EQUAL(g_reg_mr_len, 8 * 4096);
	peer = peer_msg();
	CU_ASSERT_EQUAL_FATAL(g_n_mods, 3);
	m = &g_mods[0];
	CU_ASSERT_EQUAL(m->attr.qp_state, IBV_QPS_INIT);
	CU_ASSERT_EQUAL(m->mask,
			IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
	CU_ASSERT_EQUAL(m->attr.port_num, 1);
	m = &g_mods[1];
	CU_ASSERT_EQUAL(m->attr.qp_state, IBV_QPS_RTR);
	CU_ASSERT_EQUAL(m->mask, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
					 IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
					 IBV_QP_MIN_RNR_TIMER);
	/* The smaller of the two ports' MTUs (the fake's is 4096). */
	CU_ASSERT_EQUAL(m->attr.path_mtu, IBV_MTU_1024);
	CU_ASSERT_EQUAL(m->attr.dest_qp_num, peer.qpn);
	CU_ASSERT_EQUAL(m->attr.rq_psn, peer.psn);
	CU_ASSERT_EQUAL(m->attr.max_dest_rd_atomic, 16); /* the fake's max_qp_rd_atom */
	CU_ASSERT_EQUAL(m->attr.ah_attr.dlid, peer.lid);
	CU_ASSERT_EQUAL(m->attr.ah_attr.port_num, 1);
	CU_ASSERT_EQUAL(m->attr.ah_attr.is_global, 0);
	m = &g_mods[2];
	CU_ASSERT_EQUAL(m->attr.qp_state, IBV_QPS_RTS);
	CU_ASSERT_EQUAL(m->mask, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
					 IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN |
					 IBV_QP_MAX_QP_RD_ATOMIC);
	CU_ASSERT_EQUAL(m->attr.sq_psn, g_ep->psn);
	CU_ASSERT(g_ep->psn <= 0xFFFFFFu);
	/* No more READs on the wire than the peer answers at once (8 < this side's 16). */
	CU_ASSERT_EQUAL(m->attr.max_rd_atomic, 8);
	CU_ASSERT(m->attr.timeout > 0 && m->attr.retry_cnt > 0 && m->attr.rnr_retry > 0);
	CU_ASSERT_EQUAL(qp_rec(g_ep->qp->qp_num)->state, IBV_QPS_RTS);
	CU_ASSERT_EQUAL(qp_rec(g_ep->qp->qp_num)->dest_qpn, peer.qpn);
	teardown();
}

static void
test_qp_setup_roce(void)
{
	struct rdma_where w = where(3);
	struct rdma_msg peer;
	struct rdma_ep *ep;
	char why[256];
	int err = 0;

	fv_reset();
	g_fv_checks = FV_CHECK_QP_LIFE | FV_CHECK_RDMA_ARGS; /* port 1, GID index 3, one CQ */
	g_link_layer = IBV_LINK_LAYER_ETHERNET;
	g_size = 4096;
	g_rpages = 4;
	g_remote = malloc(g_rpages * g_size);
	CU_ASSERT_FATAL(g_remote != NULL);
	/* The serving side: its buffer registered for remote READ, and its QP allows it. */
	ep = ep_open(&w, g_remote, g_rpages * g_size, IBV_ACCESS_REMOTE_READ, 1,
		     IBV_ACCESS_REMOTE_READ, &err, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(ep);
	CU_ASSERT_EQUAL(g_reg_mr_access, IBV_ACCESS_REMOTE_READ);
	CU_ASSERT_EQUAL(g_mods[0].attr.qp_access_flags, IBV_ACCESS_REMOTE_READ);
	CU_ASSERT_EQUAL(memcmp(ep->gid.raw, g_gid.raw, 16), 0);
	peer = peer_msg();
	peer.mtu = IBV_MTU_4096;
	peer.rd_atom = 32;
	CU_ASSERT_EQUAL_FATAL(ep_connect(ep, &peer, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(g_mods[1].attr.path_mtu, IBV_MTU_4096);
	CU_ASSERT_EQUAL(g_mods[1].attr.ah_attr.is_global, 1);
	CU_ASSERT_EQUAL(g_mods[1].attr.ah_attr.grh.sgid_index, 3);
	CU_ASSERT_EQUAL(memcmp(g_mods[1].attr.ah_attr.grh.dgid.raw, peer.gid, 16), 0);
	CU_ASSERT(g_mods[1].attr.ah_attr.grh.hop_limit > 0);
	CU_ASSERT_EQUAL(g_mods[2].attr.max_rd_atomic, 16); /* this side's, below the peer's 32 */
	ep_close(ep);
	free(g_remote);
	g_remote = NULL;
	fv_assert_no_leak();
}

/* ep_open of a 4 KiB reader that must fail with want; why must hold what. */
static void
open_fails(int want, const char *what)
{
	struct rdma_where w = where(-1);
	static uint8_t buf[4096];
	char why[256] = "";
	int err = 0;

	CU_ASSERT_PTR_NULL(ep_open(&w, buf, sizeof(buf), IBV_ACCESS_LOCAL_WRITE, 4, 0, &err, why,
				   sizeof(why)));
	CU_ASSERT_EQUAL(err, want);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, what));
	fv_assert_no_leak();
}

static void
test_qp_setup_failures(void)
{
	struct rdma_where w = where(-1);
	struct rdma_msg peer;
	struct rdma_ep *ep;
	uint8_t buf[4096];
	char why[256];
	int err = 0;

	fv_reset();
	g_fv_checks = FV_CHECK_QP_LIFE;
	MOCK_PUSH(ut_reg_mr_rc, ENOMEM);
	open_fails(-ENOMEM, "ibv_reg_mr of 4096 bytes: Cannot allocate memory (RLIMIT_MEMLOCK?");
	MOCK_PUSH(ut_create_qp_rc, EINVAL);
	open_fails(-EINVAL, "ibv_create_qp");
	MOCK_PUSH(ut_modify_qp_rc, EPERM);
	open_fails(-EPERM, "QP to INIT");
	MOCK_PUSH(ut_alloc_pd_rc, EIO);
	open_fails(-EIO, "ibv_alloc_pd");
	g_port_state[0] = IBV_PORT_DOWN;
	open_fails(-ENETDOWN, "mlx5_0: port 1");
	g_port_state[0] = IBV_PORT_ACTIVE;
	g_n_devs = 0;
	open_fails(-ENODEV, "mlx5_0: ibv_open_device");
	g_n_devs = 1;
	/* RTR refused, then a malformed record: an error, and the QP is still closed cleanly. */
	ep = ep_open(&w, buf, sizeof(buf), IBV_ACCESS_LOCAL_WRITE, 4, 0, &err, why, sizeof(why));
	CU_ASSERT_PTR_NOT_NULL_FATAL(ep);
	peer = peer_msg();
	MOCK_PUSH(ut_modify_qp_rc, EINVAL);
	CU_ASSERT_EQUAL(ep_connect(ep, &peer, why, sizeof(why)), -EINVAL);
	CU_ASSERT_STRING_EQUAL(why, "QP to RTR: Invalid argument");
	peer.mtu = 0;
	CU_ASSERT_EQUAL(ep_connect(ep, &peer, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "malformed"));
	ep_close(ep);
	fv_assert_no_leak();
}

/* ---- the READ window ---- */

/* reps + 1 repetitions of n READs, each checked, as rdma_read_bench runs them. */
static void
run_reps(unsigned int n, unsigned int reps, struct series *s)
{
	for (unsigned int r = 0; r <= reps; r++) {
		uint64_t total = 0;

		memset(g_local, 0, g_lpages * g_size);
		CU_ASSERT_EQUAL_FATAL(reads_run(&g_rr, n, r, s, &total, g_why, sizeof(g_why)), 0);
		CU_ASSERT(total > 0);
		CU_ASSERT_EQUAL(reads_check(&g_rr, n, RDMA_SEED, g_why, sizeof(g_why)), 0);
	}
}

static void
test_window(void)
{
	struct series s;

	memset(&s, 0, sizeof(s));
	/* 4 in flight, completions one at a time: the window refills one by one. */
	setup(4, 4096, 8, 16, 1);
	run_reps(50, 2, &s);
	CU_ASSERT_EQUAL(g_m.wrs, 150);
	CU_ASSERT_EQUAL(g_m.max_in_flight, 4);
	CU_ASSERT_EQUAL(g_m.in_flight, 0);
	CU_ASSERT_EQUAL(g_rr.posted, 150);
	CU_ASSERT_EQUAL(g_rr.done, 150);
	/* A sample per 4 completions (13 per repetition, the last of 2), none in the warm-up. */
	CU_ASSERT_EQUAL(s.n, 26);
	/* Refilled as completions come: far more chains than windows' worth. */
	CU_ASSERT(g_m.chains > 150 / 4);
	teardown();
	free(s.ns);
	memset(&s, 0, sizeof(s));

	/* Completions in bursts of 3 against a window of 32 bigger than the landing area. */
	setup(32, 8192, 16, 4, 3);
	run_reps(100, 1, &s);
	CU_ASSERT_EQUAL(g_m.max_in_flight, 32);
	CU_ASSERT_EQUAL(s.n, 4); /* 32, 32, 32, 4 */
	teardown();
	free(s.ns);
	memset(&s, 0, sizeof(s));

	/* Fewer READs than the window: never more than asked for. */
	setup(16, 4096, 8, 8, 5);
	run_reps(5, 1, &s);
	CU_ASSERT_EQUAL(g_m.max_in_flight, 5);
	CU_ASSERT_EQUAL(g_m.wrs, 10);
	CU_ASSERT_EQUAL(s.n, 1);
	teardown();
	free(s.ns);
}

static void
test_error_completion(void)
{
	struct series s;
	uint64_t total = 0;
	uint64_t t0;

	memset(&s, 0, sizeof(s));
	setup(8, 4096, 8, 16, 2);
	g_rr.timeout_ns = 2000000000ULL; /* were the error missed, the run would end here */
	g_m.fail_wr_id = 5;
	g_m.fail_status = IBV_WC_REM_ACCESS_ERR;
	t0 = now_ns();
	CU_ASSERT_EQUAL(reads_run(&g_rr, 40, 1, &s, &total, g_why, sizeof(g_why)), -EIO);
	CU_ASSERT(now_ns() - t0 < 1000000000ULL);
	CU_ASSERT_STRING_EQUAL(g_why, "READ 5 of 4096 B failed: remote access error (status 10, "
				      "vendor_err 0x88)");
	CU_ASSERT_EQUAL(g_rr.done, 5);
	CU_ASSERT(g_m.wrs < 40);
	/* The window is not reused after an error. */
	CU_ASSERT_EQUAL(reads_run(&g_rr, 4, 1, &s, &total, g_why, sizeof(g_why)), -EINVAL);
	teardown();
	free(s.ns);
}

static void
test_stall_times_out(void)
{
	struct series s;
	uint64_t total = 0;

	memset(&s, 0, sizeof(s));
	setup(4, 4096, 8, 16, 1);
	g_rr.timeout_ns = 20000000ULL;
	g_m.stall = true;
	CU_ASSERT_EQUAL(reads_run(&g_rr, 10, 1, &s, &total, g_why, sizeof(g_why)), -ETIMEDOUT);
	CU_ASSERT_STRING_EQUAL(g_why, "no READ completed in 20 ms (4 of 10 in flight)");
	CU_ASSERT_EQUAL(g_m.wrs, 4);
	teardown();
	free(s.ns);
}

static void
test_post_failure(void)
{
	struct series s;
	uint64_t total = 0;

	memset(&s, 0, sizeof(s));
	setup(4, 4096, 8, 16, 1);
	MOCK_SET(ut_post_send_rc, ENOMEM);
	CU_ASSERT_EQUAL(reads_run(&g_rr, 10, 1, &s, &total, g_why, sizeof(g_why)), -ENOMEM);
	CU_ASSERT_STRING_EQUAL(g_why, "ibv_post_send of 4 READs (READ 0 on): Cannot allocate "
				      "memory");
	CU_ASSERT_EQUAL(g_rr.posted, 0);
	MOCK_CLEAR(ut_post_send_rc);
	teardown();
	free(s.ns);
}

static void
test_bad_completions(void)
{
	struct series s;
	uint64_t total = 0;

	memset(&s, 0, sizeof(s));
	/* Out of order: an RC send queue completes in order, so this is a fault. */
	setup(4, 4096, 8, 16, 2);
	g_m.swap = true;
	CU_ASSERT_EQUAL(reads_run(&g_rr, 10, 1, &s, &total, g_why, sizeof(g_why)), -EPROTO);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_why, "wr_id 1, opcode"));
	CU_ASSERT_PTR_NOT_NULL(strstr(g_why, "oldest READ in flight 0"));
	teardown();

	/* A READ that reports success but moved nothing: the check names it. */
	setup(4, 4096, 8, 16, 1);
	g_m.lost_wr_id = 27;
	CU_ASSERT_EQUAL(reads_run(&g_rr, 30, 1, &s, &total, g_why, sizeof(g_why)), 0);
	CU_ASSERT_EQUAL(reads_check(&g_rr, 30, RDMA_SEED, g_why, sizeof(g_why)), -EIO);
	CU_ASSERT_STRING_EQUAL(g_why, "READ 27: the bytes at local offset 12288 differ from the "
				      "server's at offset 45056");
	/* A check against another pattern fails too: it compares, it does not just count. */
	CU_ASSERT_EQUAL(reads_check(&g_rr, 2, RDMA_SEED + 1, g_why, sizeof(g_why)), -EIO);
	teardown();
	free(s.ns);
}

/* ---- the handshake ---- */

static void
test_handshake_errors(void)
{
	struct rdma_where w = where(-1);
	struct rdma_msg m;
	struct series s;
	char why[256];
	int sv[2];

	memset(&s, 0, sizeof(s));
	fv_reset();
	CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	/* Nothing comes: the wait ends at its deadline. */
	CU_ASSERT_EQUAL(msg_recv(sv[0], &m, 20), -ETIMEDOUT);
	/* The server failed: the reader says why, and opens nothing. */
	msg_fail(sv[1], -ENOMEM, "mlx5_0: ibv_reg_mr of 67108864 bytes: Cannot allocate memory");
	CU_ASSERT_EQUAL(rdma_read_bench(sv[0], &w, 4096, 4, 8, 1, &s, why, sizeof(why)), -ENOMEM);
	CU_ASSERT_STRING_EQUAL(why, "serving side: mlx5_0: ibv_reg_mr of 67108864 bytes: Cannot "
				    "allocate memory");
	CU_ASSERT_EQUAL(g_reg_mr_calls, 0);
	/* The server is gone. */
	close(sv[1]);
	CU_ASSERT_EQUAL(rdma_read_bench(sv[0], &w, 4096, 4, 8, 1, &s, why, sizeof(why)), -EPIPE);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "no QP record from the serving process"));
	close(sv[0]);
	fv_assert_no_leak();
}

static void
test_pattern_and_sizes(void)
{
	uint8_t buf[256];

	pattern_fill(buf, sizeof(buf), 42);
	CU_ASSERT(pattern_ok(buf + 64, 64, 42, 64));
	CU_ASSERT(!pattern_ok(buf + 64, 64, 42, 0));
	buf[100] ^= 1;
	CU_ASSERT(!pattern_ok(buf + 64, 64, 42, 64));
	/* The served buffer: the point's bytes, at most 64 MiB, whole blocks, at least one. */
	CU_ASSERT_EQUAL(rdma_remote_len(4096, 16), 65536);
	CU_ASSERT_EQUAL(rdma_remote_len(1 << 20, 256), 64u << 20);
	CU_ASSERT_EQUAL(rdma_remote_len(3 << 20, 256), 63u << 20);
	CU_ASSERT_EQUAL(rdma_remote_len(128u << 20, 1), 128u << 20);
	/* The landing area: 64 MiB, or two batches when a batch is bigger. */
	CU_ASSERT_EQUAL(local_len(1 << 20, 32), 64u << 20);
	CU_ASSERT_EQUAL(local_len(8 << 20, 16), 256u << 20);
}

static const struct pc_ut_test g_device_tests[] = {
	{"no device: the skip reason", test_pick_no_device},
	{"first ACTIVE port, or the named device", test_pick_port_and_name},
	{"GID: none on IB, RoCE v2 IPv4 on RoCE, given as is", test_pick_gid},
	{NULL, NULL},
};

static const struct pc_ut_test g_qp_tests[] = {
	{"INIT, RTR, RTS with the attributes RC needs (IB)", test_qp_setup_ib},
	{"RoCE: GRH with the GID; the server's REMOTE_READ", test_qp_setup_roce},
	{"failures at each step: a reason, nothing leaked", test_qp_setup_failures},
	{NULL, NULL},
};

static const struct pc_ut_test g_read_tests[] = {
	{"window never exceeds batch; WRs and bytes right", test_window},
	{"error completion ends the run with its status", test_error_completion},
	{"no completion: -ETIMEDOUT, not a hang", test_stall_times_out},
	{"post_send failure", test_post_failure},
	{"out-of-order completion; a READ that moved nothing", test_bad_completions},
	{"handshake: deadline, server's failure, server gone", test_handshake_errors},
	{"pattern and buffer sizes", test_pattern_and_sizes},
	{NULL, NULL},
};

static const struct pc_ut_suite suites[] = {
	{"bench rdma device", NULL, NULL, g_device_tests},
	{"bench rdma qp", NULL, NULL, g_qp_tests},
	{"bench rdma reads", NULL, NULL, g_read_tests},
};

int
main(void)
{
	return pc_ut_run(suites, PC_ARRAY_SIZE(suites));
}
