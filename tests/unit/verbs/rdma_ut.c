/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * verbs/rdma.c: the rdma transport, through stubs of every verbs and mlx5dv
 * call it makes (there is no RDMA device here; the stubs are
 * tests/fake_verbs.h, with its rdma argument checks on). The stubs keep
 * books: every object they hand out is counted until it is destroyed (so a
 * leak on an error path is an assertion, and under ASan a report), every
 * ibv_modify_qp is recorded with its attributes and mask, every
 * ibv_post_send with the chain it was given. Completions are fed either
 * as struct ibv_wc (the ibv_poll_cq path) or as crafted mlx5 CQE bytes in
 * a fake CQ buffer that the stubbed mlx5dv_init_obj hands out.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../../../verbs/rdma.c"
#include "fake_verbs.h"
#include "mock.h"
#include "ut.h"

/* ---- helpers ---- */

#define SEG_SIZE (1u << 20)

static uint8_t *g_seg;
static struct pc_rdma_dev *g_dev;
static struct pc_xport *g_x;
static unsigned int g_cb_calls;
static struct pc_xport_peer g_cb_peer;

static const struct pc_xport_peer g_peer = {
	.node_id = "node-b",
	.incarnation = 7,
	.host = "10.0.0.2",
};

/* The peer's segment, as its handshake record (remote_info) names it. */
#define PEER_RKEY     0xABCDu
#define PEER_SEG_BASE 0x7f0000000000ull

static void
connect_cb(void *arg, const struct pc_xport_peer *peer)
{
	CU_ASSERT_PTR_EQUAL(arg, &g_cb_calls);
	g_cb_calls++;
	g_cb_peer = *peer;
}

static void
reset_mocks(void)
{
	fv_reset();
	g_fv_checks = FV_CHECK_RDMA_ARGS;
	g_cb_calls = 0;
}

static struct pc_rdma_dev *
open_dev(int gid_index)
{
	struct pc_rdma_dev_opts o = {
		.device_name = "", .ib_port = 1, .gid_index = gid_index, .incarnation = 99};

	return pc_rdma_dev_open(&o, g_seg, SEG_SIZE);
}

/* A device and a transport with max_channels_per_peer `chans`. */
static void
setup(int gid_index, unsigned int chans)
{
	struct pc_xport_opts opts = {
		.seg_base = g_seg,
		.seg_size = SEG_SIZE,
		.max_channels_per_peer = chans,
		.op_timeout_ns = 1000,
	};

	reset_mocks();
	g_dev = open_dev(gid_index);
	CU_ASSERT_PTR_NOT_NULL_FATAL(g_dev);
	g_x = pc_xport_rdma.create(&opts);
	CU_ASSERT_PTR_NOT_NULL_FATAL(g_x);
	pc_rdma_set_connect_cb(g_x, connect_cb, &g_cb_calls);
}

static void
teardown(void)
{
	pc_xport_rdma.destroy(g_x);
	g_x = NULL;
	pc_rdma_dev_close(g_dev);
	g_dev = NULL;
	fv_assert_no_leak();
}

static struct pc_qp_info
remote_info(void)
{
	struct pc_qp_info r = {.qpn = 0x00BEEF,
			       .psn = 0x00ABCD,
			       .lid = 0x77,
			       .mtu = IBV_MTU_2048,
			       .rkey = PEER_RKEY,
			       .seg_base = PEER_SEG_BASE,
			       .incarnation = 7};

	for (unsigned int i = 0; i < 16; i++) {
		r.gid[i] = (uint8_t)(0x10 + i);
	}
	return r;
}

/* A connected channel to g_peer. */
static uint64_t
connected_chan(void)
{
	struct pc_qp_info r = remote_info();
	uint64_t id = pc_rdma_chan_create(g_x, &g_peer);

	CU_ASSERT_FATAL(id != 0);
	CU_ASSERT_EQUAL_FATAL(pc_rdma_chan_connect(g_x, id, &r), 0);
	return id;
}

static struct rdma_chan *
chan_of(uint64_t id)
{
	return g_x->chans[id & 0xFFFFu];
}

static void
make_reads(struct pc_xport_read *r, unsigned int n, uint64_t cookie0)
{
	for (unsigned int i = 0; i < n; i++) {
		r[i].remote_off = 0x10000 + (uint64_t)i * 0x1000;
		r[i].generation = 1;
		r[i].len = 0x800 + i;
		r[i].local_off = 0x2000 * i;
		r[i].cookie = cookie0 + i;
	}
}

static void
push_wc(uint64_t wr_id, enum ibv_wc_status st)
{
	struct ibv_wc wc = {.wr_id = wr_id, .status = st, .opcode = IBV_WC_RDMA_READ};

	g_wc[g_wc_tail++] = wc;
}

/* Write the next CQE of a fake mlx5 CQ (owner bit of its wrap). */
static void
push_cqe(struct rdma_chan *ch, uint8_t opcode, uint8_t syndrome, uint16_t wqe)
{
	struct fake_cq *f = (struct fake_cq *)ch->cq;
	uint8_t *c = f->buf + (size_t)(f->pi & (CQE_CNT - 1)) * 64;

	memset(c, 0, 64);
	c[55] = syndrome;
	c[60] = (uint8_t)(wqe >> 8);
	c[61] = (uint8_t)wqe;
	c[63] = (uint8_t)((opcode << 4) | ((f->pi / CQE_CNT) & 1u));
	f->pi++;
}

/* Poll until nothing more comes, max per call; returns the total, completions in out. */
static unsigned int
poll_all(uint64_t now, struct pc_xport_cqe *out, unsigned int cap, unsigned int max)
{
	unsigned int n = 0;

	for (int pass = 0; pass < 64; pass++) {
		int k = pc_xport_rdma.poll(g_x, now, out + n, PC_MIN(max, cap - n));

		CU_ASSERT(k >= 0);
		if (k <= 0) {
			break;
		}
		n += (unsigned int)k;
	}
	return n;
}

/* ---- device ---- */

static void
test_probe(void)
{
	char why[128];

	reset_mocks();
	g_list_null = true;
	CU_ASSERT_EQUAL(pc_rdma_probe("", 1, why, sizeof(why)), -ENODEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "no RDMA device"));
	g_list_null = false;
	g_n_devs = 0;
	CU_ASSERT_EQUAL(pc_rdma_probe(NULL, 1, why, sizeof(why)), -ENODEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "no RDMA device"));
	g_n_devs = 2;
	CU_ASSERT_EQUAL(pc_rdma_probe("mlx5_9", 1, why, sizeof(why)), -ENODEV);
	CU_ASSERT_STRING_EQUAL(why, "RDMA device mlx5_9 not found");
	g_port_state[1] = IBV_PORT_DOWN;
	CU_ASSERT_EQUAL(pc_rdma_probe("mlx5_1", 1, why, sizeof(why)), -ENODEV);
	CU_ASSERT_STRING_EQUAL(why, "mlx5_1: port 1 is not ACTIVE");
	g_port_state[0] = IBV_PORT_DOWN;
	CU_ASSERT_EQUAL(pc_rdma_probe("", 1, why, sizeof(why)), -ENODEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "not ACTIVE"));
	/* The first ACTIVE one is taken when none is named. */
	g_port_state[1] = IBV_PORT_ACTIVE;
	CU_ASSERT_EQUAL(pc_rdma_probe("", 1, why, sizeof(why)), 0);
	CU_ASSERT_STRING_EQUAL(why, "");
	CU_ASSERT_EQUAL(pc_rdma_probe("", 0, why, sizeof(why)), -ENODEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "ib_port"));
	fv_assert_no_leak();
}

static void
test_segment_registered_once(void)
{
	struct pc_xport_opts opts = {.seg_base = g_seg, .seg_size = SEG_SIZE};
	struct pc_xport *x2;

	setup(3, 0);
	CU_ASSERT_EQUAL(g_reg_mr_calls, 1);
	CU_ASSERT_PTR_EQUAL(g_reg_mr_addr, g_seg);
	CU_ASSERT_EQUAL(g_reg_mr_len, SEG_SIZE);
	CU_ASSERT_EQUAL(g_reg_mr_access, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ);
	CU_ASSERT_EQUAL(g_reg_mr_access & IBV_ACCESS_REMOTE_WRITE, 0);
	CU_ASSERT_EQUAL(pc_rdma_dev_rkey(g_dev), 0x2222);
	CU_ASSERT_EQUAL(pc_rdma_dev_seg_base(g_dev), (uint64_t)(uintptr_t)g_seg);
	/* A second lcore's transport, channels, posts: no other registration. */
	x2 = pc_xport_rdma.create(&opts);
	CU_ASSERT_PTR_NOT_NULL(x2);
	(void)connected_chan();
	CU_ASSERT_EQUAL(g_reg_mr_calls, 1);
	/* A segment outside the registered one is refused. */
	opts.seg_size = SEG_SIZE + 1;
	CU_ASSERT_PTR_NULL(pc_xport_rdma.create(&opts));
	CU_ASSERT_EQUAL(errno, EINVAL);
	pc_xport_rdma.destroy(x2);
	CU_ASSERT_STRING_EQUAL(pc_xport_rdma.name, "rdma");
	CU_ASSERT_EQUAL(pc_xport_rdma.port(g_x), 0);
	teardown();
	CU_ASSERT_EQUAL(g_reg_mr_calls, 1);
}

static void
test_dev_open_failures(void)
{
	reset_mocks();
	MOCK_PUSH(ut_query_gid_rc, EINVAL);
	CU_ASSERT_PTR_NULL(open_dev(3));
	fv_assert_no_leak();
	MOCK_PUSH(ut_query_device_rc, EIO);
	CU_ASSERT_PTR_NULL(open_dev(3));
	CU_ASSERT_EQUAL(errno, EIO);
	fv_assert_no_leak();
	MOCK_PUSH(ut_alloc_pd_rc, ENOMEM);
	CU_ASSERT_PTR_NULL(open_dev(3));
	CU_ASSERT_EQUAL(errno, ENOMEM);
	fv_assert_no_leak();
	MOCK_PUSH(ut_reg_mr_rc, EFAULT);
	CU_ASSERT_PTR_NULL(open_dev(3));
	CU_ASSERT_EQUAL(errno, EFAULT);
	fv_assert_no_leak();
	MOCK_PUSH(ut_open_rc, EPERM);
	CU_ASSERT_PTR_NULL(open_dev(3));
	CU_ASSERT_EQUAL(errno, ENODEV);
	fv_assert_no_leak();
	/* RoCE without a GID index cannot route. */
	g_link_layer = IBV_LINK_LAYER_ETHERNET;
	CU_ASSERT_PTR_NULL(open_dev(-1));
	CU_ASSERT_EQUAL(errno, EINVAL);
	fv_assert_no_leak();
	/* No device open: the ops' create refuses. */
	CU_ASSERT_PTR_NULL(
		pc_xport_rdma.create(&(struct pc_xport_opts){.seg_base = g_seg, .seg_size = 1}));
	CU_ASSERT_EQUAL(errno, ENODEV);
}

/* ---- the QP handshake ---- */

static void
test_qp_transitions(void)
{
	struct pc_qp_info mine, r = remote_info();
	uint64_t id;
	const struct ibv_qp_attr *a;

	setup(3, 0);
	g_n_mods = 0;
	id = pc_rdma_chan_create(g_x, &g_peer);
	CU_ASSERT_FATAL(id != 0);
	CU_ASSERT_EQUAL_FATAL(g_n_mods, 1);
	a = &g_mods[0].attr;
	CU_ASSERT_EQUAL(a->qp_state, IBV_QPS_INIT);
	CU_ASSERT_EQUAL(g_mods[0].mask,
			IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
	CU_ASSERT_EQUAL(a->pkey_index, 0);
	CU_ASSERT_EQUAL(a->port_num, 1);
	CU_ASSERT_EQUAL(a->qp_access_flags, IBV_ACCESS_REMOTE_READ);
	/* Not connected yet: takes nothing, and is not counted as usable. */
	CU_ASSERT_EQUAL(pc_rdma_peer_channels(g_x, "node-b", 7), 0);

	CU_ASSERT_EQUAL_FATAL(pc_rdma_chan_info(g_x, id, &mine), 0);
	CU_ASSERT_EQUAL(mine.qpn, chan_of(id)->qp->qp_num);
	CU_ASSERT(mine.psn <= PC_QP_24BIT_MAX);
	CU_ASSERT_EQUAL(mine.lid, 0x42);
	CU_ASSERT_EQUAL(mine.mtu, IBV_MTU_4096);
	CU_ASSERT_EQUAL(memcmp(mine.gid, g_gid.raw, 16), 0);
	CU_ASSERT_EQUAL(mine.rkey, 0x2222);
	CU_ASSERT_EQUAL(mine.seg_base, (uint64_t)(uintptr_t)g_seg);
	CU_ASSERT_EQUAL(mine.incarnation, 99);

	CU_ASSERT_EQUAL_FATAL(pc_rdma_chan_connect(g_x, id, &r), 0);
	CU_ASSERT_EQUAL_FATAL(g_n_mods, 3);
	a = &g_mods[1].attr;
	CU_ASSERT_EQUAL(a->qp_state, IBV_QPS_RTR);
	CU_ASSERT_EQUAL(g_mods[1].mask, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
						IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
						IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER);
	CU_ASSERT_EQUAL(a->path_mtu, IBV_MTU_2048); /* the smaller of the two ports */
	CU_ASSERT_EQUAL(a->dest_qp_num, 0xBEEF);
	CU_ASSERT_EQUAL(a->rq_psn, 0xABCD);
	CU_ASSERT_EQUAL(a->max_dest_rd_atomic, 16);
	CU_ASSERT_EQUAL(a->min_rnr_timer, 12);
	CU_ASSERT_EQUAL(a->ah_attr.dlid, 0x77);
	CU_ASSERT_EQUAL(a->ah_attr.port_num, 1);
	CU_ASSERT_EQUAL(a->ah_attr.sl, 0);
	CU_ASSERT_EQUAL(a->ah_attr.is_global, 1);
	CU_ASSERT_EQUAL(a->ah_attr.grh.hop_limit, 1);
	CU_ASSERT_EQUAL(a->ah_attr.grh.sgid_index, 3);
	CU_ASSERT_EQUAL(memcmp(a->ah_attr.grh.dgid.raw, r.gid, 16), 0);
	a = &g_mods[2].attr;
	CU_ASSERT_EQUAL(a->qp_state, IBV_QPS_RTS);
	CU_ASSERT_EQUAL(g_mods[2].mask, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
						IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN |
						IBV_QP_MAX_QP_RD_ATOMIC);
	CU_ASSERT_EQUAL(a->timeout, 14);
	CU_ASSERT_EQUAL(a->retry_cnt, 7);
	CU_ASSERT_EQUAL(a->rnr_retry, 7);
	CU_ASSERT_EQUAL(a->sq_psn, mine.psn);
	CU_ASSERT_EQUAL(a->max_rd_atomic, 16);
	CU_ASSERT_EQUAL(pc_rdma_peer_channels(g_x, "node-b", 7), 1);
	CU_ASSERT_EQUAL(pc_rdma_peer_channels(g_x, "node-b", 8), 0);
	/* Connected: no second connect; the record is still there (passive sides reply with it). */
	CU_ASSERT_EQUAL(pc_rdma_chan_connect(g_x, id, &r), -ENOENT);
	{
		struct pc_qp_info again;

		CU_ASSERT_EQUAL(pc_rdma_chan_info(g_x, id, &again), 0);
		CU_ASSERT_EQUAL(again.qpn, mine.qpn);
		CU_ASSERT_EQUAL(again.psn, mine.psn);
	}
	CU_ASSERT_EQUAL(pc_rdma_chan_close(g_x, id), 0);
	CU_ASSERT_EQUAL(pc_rdma_chan_info(g_x, id, &mine), -ENOENT);
	CU_ASSERT_EQUAL(g_live_qp, 0);
	teardown();
}

static void
test_qp_no_grh(void)
{
	struct pc_qp_info r = remote_info();
	uint64_t id;

	setup(-1, 0);
	g_max_rd_atom = 4;
	id = pc_rdma_chan_create(g_x, &g_peer);
	g_n_mods = 0;
	CU_ASSERT_EQUAL_FATAL(pc_rdma_chan_connect(g_x, id, &r), 0);
	CU_ASSERT_EQUAL(g_mods[0].attr.ah_attr.is_global, 0);
	CU_ASSERT_EQUAL(g_mods[0].attr.ah_attr.dlid, 0x77);
	teardown();
}

/* Fail the step-th verbs call of create+connect; nothing may be left. */
static void
test_qp_failures(void)
{
	struct pc_qp_info r = remote_info();
	uint64_t id;

	setup(3, 0);
	MOCK_PUSH(ut_create_cq_rc, ENOMEM);
	CU_ASSERT_EQUAL(pc_rdma_chan_create(g_x, &g_peer), 0);
	CU_ASSERT_EQUAL(errno, ENOMEM);
	CU_ASSERT_EQUAL(g_live_cq, 0);
	MOCK_PUSH(ut_create_qp_rc, ENOMEM);
	CU_ASSERT_EQUAL(pc_rdma_chan_create(g_x, &g_peer), 0);
	CU_ASSERT_EQUAL(g_live_cq, 0);
	CU_ASSERT_EQUAL(g_live_qp, 0);
	MOCK_PUSH(ut_modify_qp_rc, EINVAL); /* INIT */
	CU_ASSERT_EQUAL(pc_rdma_chan_create(g_x, &g_peer), 0);
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT_EQUAL(g_live_cq, 0);
	CU_ASSERT_EQUAL(g_live_qp, 0);
	for (int step = 0; step < 2; step++) { /* RTR, then RTS */
		id = pc_rdma_chan_create(g_x, &g_peer);
		CU_ASSERT_FATAL(id != 0);
		CU_ASSERT_EQUAL(g_live_qp, 1);
		if (step == 1) {
			MOCK_PUSH(ut_modify_qp_rc, 0);
		}
		MOCK_PUSH(ut_modify_qp_rc, EIO);
		g_n_mods = 0;
		CU_ASSERT_EQUAL(pc_rdma_chan_connect(g_x, id, &r), -EIO);
		CU_ASSERT_EQUAL(g_n_mods, (unsigned int)step + 2); /* the steps, then ERR */
		CU_ASSERT_EQUAL(g_mods[g_n_mods - 1].attr.qp_state, IBV_QPS_ERR);
		CU_ASSERT_EQUAL(g_live_qp, 0);
		CU_ASSERT_EQUAL(g_live_cq, 0);
		CU_ASSERT_EQUAL(pc_rdma_chan_info(g_x, id, &r), -ENOENT);
		r = remote_info();
	}
	/* A record from another incarnation of the peer. */
	id = pc_rdma_chan_create(g_x, &g_peer);
	r.incarnation = 6;
	CU_ASSERT_EQUAL(pc_rdma_chan_connect(g_x, id, &r), -ESTALE);
	CU_ASSERT_EQUAL(g_live_qp, 0);
	r = remote_info();
	r.mtu = 9;
	id = pc_rdma_chan_create(g_x, &g_peer);
	CU_ASSERT_EQUAL(pc_rdma_chan_connect(g_x, id, &r), -EINVAL);
	CU_ASSERT_EQUAL(g_live_qp, 0);
	CU_ASSERT_EQUAL(pc_rdma_chan_connect(g_x, 12345, &r), -ENOENT);
	CU_ASSERT_EQUAL(pc_rdma_peer_channels(g_x, "node-b", 7), 0);
	teardown();
}

static void
test_channel_cap(void)
{
	setup(3, 2);
	(void)connected_chan();
	CU_ASSERT(pc_rdma_chan_create(g_x, &g_peer) != 0);
	CU_ASSERT_EQUAL(pc_rdma_chan_create(g_x, &g_peer), 0);
	CU_ASSERT_EQUAL(errno, ENOSPC);
	teardown();
}

/* ---- posting ---- */

static void
test_post_needs_connect(void)
{
	struct pc_xport_read r[2];
	uint64_t id;

	setup(3, 0);
	make_reads(r, 2, 1);
	CU_ASSERT_EQUAL(pc_xport_rdma.post_reads(g_x, &g_peer, r, 2, 0, 0), 0);
	CU_ASSERT_EQUAL(g_cb_calls, 1);
	CU_ASSERT_STRING_EQUAL(g_cb_peer.node_id, "node-b");
	CU_ASSERT_EQUAL(g_cb_peer.incarnation, 7);
	/* Being connected: not asked again. */
	id = pc_rdma_chan_create(g_x, &g_peer);
	CU_ASSERT_EQUAL(pc_xport_rdma.post_reads(g_x, &g_peer, r, 2, 0, 0), 0);
	CU_ASSERT_EQUAL(g_cb_calls, 1);
	CU_ASSERT_EQUAL(g_n_posts, 0);
	{
		struct pc_qp_info ri = remote_info();

		CU_ASSERT_EQUAL(pc_rdma_chan_connect(g_x, id, &ri), 0);
	}
	CU_ASSERT_EQUAL(pc_xport_rdma.post_reads(g_x, &g_peer, r, 2, 0, 0), 2);
	CU_ASSERT_EQUAL(g_cb_calls, 1);
	teardown();
}

static void
test_post_chain(void)
{
	struct pc_xport_read r[5];
	struct pc_xport_stats st;
	uint64_t wr_ids = 0;

	setup(3, 0);
	(void)connected_chan();
	make_reads(r, 5, 100);
	CU_ASSERT_EQUAL(pc_xport_rdma.post_reads(g_x, &g_peer, r, 5, 0, 0), 5);
	CU_ASSERT_EQUAL_FATAL(g_n_posts, 1); /* one doorbell */
	CU_ASSERT_EQUAL_FATAL(g_posts[0].n, 5);
	for (unsigned int i = 0; i < 5; i++) {
		const struct ibv_send_wr *w = &g_wrs[i];
		const struct ibv_sge *s = &g_sges[i];

		CU_ASSERT_EQUAL(w->opcode, IBV_WR_RDMA_READ);
		CU_ASSERT_EQUAL(w->send_flags & IBV_SEND_SIGNALED, IBV_SEND_SIGNALED);
		/* The address and key come from the peer's handshake record, not the caller. */
		CU_ASSERT_EQUAL(w->wr.rdma.remote_addr, PEER_SEG_BASE + r[i].remote_off);
		CU_ASSERT_EQUAL(w->wr.rdma.rkey, PEER_RKEY);
		CU_ASSERT_EQUAL(s->addr, (uint64_t)(uintptr_t)(g_seg + r[i].local_off));
		CU_ASSERT_EQUAL(s->length, r[i].len);
		CU_ASSERT_EQUAL(s->lkey, 0x1111);
		CU_ASSERT(w->wr_id < PC_RDMA_DEPTH_MAX);
		wr_ids |= 1ull << w->wr_id;
	}
	CU_ASSERT_EQUAL(__builtin_popcountll(wr_ids), 5); /* distinct in-flight slots */
	pc_xport_rdma.get_stats(g_x, &st);
	CU_ASSERT_EQUAL(st.reads_posted, 5);
	CU_ASSERT_EQUAL(st.channels_open, 1);
	CU_ASSERT_EQUAL(st.channels_opened, 1);
	teardown();
}

static void
test_post_outstanding_cap(void)
{
	struct pc_xport_read r[10];
	struct pc_xport_cqe out[16];
	struct pc_xport_stats st;

	reset_mocks();
	g_max_rd_atom = 4; /* the device's max_qp_rd_atom */
	g_dev = open_dev(3);
	CU_ASSERT_PTR_NOT_NULL_FATAL(g_dev);
	g_x = pc_rdma_create(&(struct pc_xport_opts){.seg_base = g_seg,
						     .seg_size = SEG_SIZE,
						     .max_channels_per_peer = 1},
			     g_dev);
	CU_ASSERT_PTR_NOT_NULL_FATAL(g_x);
	pc_rdma_set_connect_cb(g_x, connect_cb, &g_cb_calls);
	(void)connected_chan();
	CU_ASSERT_EQUAL(g_mods[g_n_mods - 1].attr.max_rd_atomic, 4);
	make_reads(r, 10, 0);
	CU_ASSERT_EQUAL(pc_xport_rdma.post_reads(g_x, &g_peer, r, 10, 0, 0), 4);
	CU_ASSERT_EQUAL(g_n_posts, 1);
	CU_ASSERT_EQUAL(g_posts[0].n, 4);
	/* Full, and at max_channels_per_peer: nothing taken, no connect asked. */
	CU_ASSERT_EQUAL(pc_xport_rdma.post_reads(g_x, &g_peer, r + 4, 6, 0, 0), 0);
	CU_ASSERT_EQUAL(g_n_posts, 1);
	CU_ASSERT_EQUAL(g_cb_calls, 0);
	/* Two complete: two more go, in one post. */
	push_wc(g_wrs[0].wr_id, IBV_WC_SUCCESS);
	push_wc(g_wrs[1].wr_id, IBV_WC_SUCCESS);
	CU_ASSERT_EQUAL(pc_xport_rdma.poll(g_x, 0, out, 16), 2);
	CU_ASSERT_EQUAL(out[0].cookie, 0);
	CU_ASSERT_EQUAL(out[0].status, 0);
	CU_ASSERT_EQUAL(out[1].cookie, 1);
	CU_ASSERT_EQUAL(pc_xport_rdma.post_reads(g_x, &g_peer, r + 4, 6, 0, 0), 2);
	CU_ASSERT_EQUAL(g_n_posts, 2);
	CU_ASSERT_EQUAL(g_posts[1].n, 2);
	pc_xport_rdma.get_stats(g_x, &st);
	CU_ASSERT_EQUAL(st.reads_ok, 2);
	CU_ASSERT_EQUAL(st.bytes_read, r[0].len + r[1].len);
	teardown();
}

static void
test_post_bounds(void)
{
	struct pc_xport_read r[3];

	setup(3, 0);
	(void)connected_chan();
	make_reads(r, 3, 0);
	r[2].local_off = SEG_SIZE - r[2].len + 1;
	CU_ASSERT_EQUAL(pc_xport_rdma.post_reads(g_x, &g_peer, r, 3, 0, 0), -EINVAL);
	r[2].local_off = UINT64_MAX - 2;
	CU_ASSERT_EQUAL(pc_xport_rdma.post_reads(g_x, &g_peer, r, 3, 0, 0), -EINVAL);
	r[2].local_off = 0;
	r[2].len = 0;
	CU_ASSERT_EQUAL(pc_xport_rdma.post_reads(g_x, &g_peer, r, 3, 0, 0), -EINVAL);
	r[2].len = 16;
	r[2].remote_off = UINT64_MAX - 8;
	CU_ASSERT_EQUAL(pc_xport_rdma.post_reads(g_x, &g_peer, r, 3, 0, 0), -EINVAL);
	CU_ASSERT_EQUAL(g_n_posts, 0); /* refused whole, nothing posted */
	CU_ASSERT_EQUAL(pc_xport_rdma.post_reads(g_x, &g_peer, NULL, 1, 0, 0), -EINVAL);
	/* The last byte of the segment is fine. */
	r[2].remote_off = 0;
	r[2].local_off = SEG_SIZE - r[2].len;
	CU_ASSERT_EQUAL(pc_xport_rdma.post_reads(g_x, &g_peer, r, 3, 0, 0), 3);
	teardown();
}

static void
test_post_send_failure(void)
{
	struct pc_xport_read r[4];
	struct pc_xport_cqe out[8];
	unsigned int n;

	setup(3, 0);
	(void)connected_chan();
	make_reads(r, 4, 10);
	MOCK_PUSH(ut_post_send_rc, ENOMEM);
	g_post_bad = 2;
	/* The two before bad_wr went out; they complete with an error. */
	CU_ASSERT_EQUAL(pc_xport_rdma.post_reads(g_x, &g_peer, r, 4, 0, 0), 2);
	CU_ASSERT_EQUAL(g_live_qp, 0);
	n = poll_all(0, out, 8, 8);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_EQUAL(out[0].cookie, 10);
	CU_ASSERT_EQUAL(out[0].status, -ECONNRESET);
	CU_ASSERT_EQUAL(out[1].cookie, 11);
	CU_ASSERT_EQUAL(out[1].status, -ECONNRESET);
	teardown();
}

/* ---- completions and errors ---- */

/* Every cookie in [c0, c0+n) exactly once in out[0..got). */
static void
assert_each_once(const struct pc_xport_cqe *out, unsigned int got, uint64_t c0, unsigned int n)
{
	CU_ASSERT_EQUAL(got, n);
	for (unsigned int c = 0; c < n; c++) {
		unsigned int seen = 0;

		for (unsigned int i = 0; i < got; i++) {
			seen += out[i].cookie == c0 + c;
		}
		CU_ASSERT_EQUAL(seen, 1);
	}
}

static void
test_error_cqe_ibv(void)
{
	struct pc_xport_read r[5];
	struct pc_xport_cqe out[16];
	struct pc_xport_stats st;
	unsigned int n, mods;

	setup(3, 0);
	(void)connected_chan();
	make_reads(r, 5, 20);
	CU_ASSERT_EQUAL(pc_xport_rdma.post_reads(g_x, &g_peer, r, 5, 0, 0), 5);
	push_wc(g_wrs[0].wr_id, IBV_WC_SUCCESS);
	push_wc(g_wrs[1].wr_id, IBV_WC_REM_ACCESS_ERR);
	push_wc(g_wrs[2].wr_id, IBV_WC_WR_FLUSH_ERR);
	mods = g_n_mods;
	n = poll_all(0, out, 16, 2); /* two at a time: what is left waits */
	assert_each_once(out, n, 20, 5);
	CU_ASSERT_EQUAL(out[0].cookie, 20);
	CU_ASSERT_EQUAL(out[0].status, 0);
	CU_ASSERT_EQUAL(out[1].cookie, 21);
	CU_ASSERT_EQUAL(out[1].status, -EINVAL); /* the owner refused the range */
	for (unsigned int i = 2; i < n; i++) {
		CU_ASSERT_EQUAL(out[i].status, -ECONNRESET);
	}
	/* QP to ERR, then destroyed; never reused. */
	CU_ASSERT_EQUAL(g_n_mods, mods + 1);
	CU_ASSERT_EQUAL(g_mods[mods].attr.qp_state, IBV_QPS_ERR);
	CU_ASSERT_EQUAL(g_live_qp, 0);
	CU_ASSERT_EQUAL(g_live_cq, 0);
	CU_ASSERT_EQUAL(pc_rdma_peer_channels(g_x, "node-b", 7), 0);
	CU_ASSERT_EQUAL(pc_xport_rdma.poll(g_x, 0, out, 16), 0);
	g_cb_calls = 0;
	CU_ASSERT_EQUAL(pc_xport_rdma.post_reads(g_x, &g_peer, r, 1, 0, 0), 0);
	CU_ASSERT_EQUAL(g_cb_calls, 1); /* a new channel needs a new handshake */
	pc_xport_rdma.get_stats(g_x, &st);
	CU_ASSERT_EQUAL(st.reads_ok, 1);
	CU_ASSERT_EQUAL(st.reads_failed, 4);
	CU_ASSERT_EQUAL(st.channels_destroyed, 1);
	CU_ASSERT_EQUAL(st.channels_open, 0);
	teardown();
}

static void
test_retry_exceeded_ibv(void)
{
	struct pc_xport_read r[2];
	struct pc_xport_cqe out[4];

	setup(3, 0);
	(void)connected_chan();
	make_reads(r, 2, 0);
	CU_ASSERT_EQUAL(pc_xport_rdma.post_reads(g_x, &g_peer, r, 2, 0, 0), 2);
	push_wc(g_wrs[0].wr_id, IBV_WC_RETRY_EXC_ERR);
	CU_ASSERT_EQUAL(poll_all(0, out, 4, 4), 2);
	CU_ASSERT_EQUAL(out[0].status, -EHOSTUNREACH);
	CU_ASSERT_EQUAL(out[1].status, -ECONNRESET);
	/* A wr_id out of order is not trusted either. */
	CU_ASSERT_EQUAL(g_live_qp, 0);
	(void)connected_chan();
	CU_ASSERT_EQUAL(pc_xport_rdma.post_reads(g_x, &g_peer, r, 2, 0, 0), 2);
	push_wc(g_wrs[g_n_wrs - 1].wr_id, IBV_WC_SUCCESS);
	CU_ASSERT_EQUAL(poll_all(0, out, 4, 4), 2);
	CU_ASSERT_EQUAL(out[0].status, -ECONNRESET);
	CU_ASSERT_EQUAL(g_live_qp, 0);
	teardown();
}

static void
test_error_cqe_mlx5(void)
{
	struct pc_xport_read r[4];
	struct pc_xport_cqe out[8];
	struct rdma_chan *ch;
	struct fake_cq *f;
	unsigned int n;

	setup(3, 0);
	MOCK_SET(ut_dv_rc, 1);
	pc_xport_rdma.destroy(g_x);
	pc_rdma_dev_close(g_dev);
	g_dev = open_dev(3);
	g_x = pc_rdma_create(&(struct pc_xport_opts){.seg_base = g_seg, .seg_size = SEG_SIZE},
			     g_dev);
	CU_ASSERT_PTR_NOT_NULL_FATAL(g_x);
	ch = chan_of(connected_chan());
	CU_ASSERT_FATAL(ch->dv);
	f = (struct fake_cq *)ch->cq;
	make_reads(r, 4, 40);
	CU_ASSERT_EQUAL(pc_xport_rdma.post_reads(g_x, &g_peer, r, 4, 0, 0), 4);
	/* Nothing written yet: nothing completes, the doorbell record is untouched. */
	CU_ASSERT_EQUAL(pc_xport_rdma.poll(g_x, 0, out, 8), 0);
	push_cqe(ch, MLX5_CQE_REQ, 0, 0);
	CU_ASSERT_EQUAL(pc_xport_rdma.poll(g_x, 0, out, 8), 1);
	CU_ASSERT_EQUAL(out[0].cookie, 40);
	CU_ASSERT_EQUAL(out[0].status, 0);
	CU_ASSERT_EQUAL(be32toh(f->dbrec[0]), 1);
	push_cqe(ch, MLX5_CQE_REQ_ERR, MLX5_CQE_SYNDROME_REMOTE_ACCESS_ERR, 1);
	push_cqe(ch, MLX5_CQE_REQ_ERR, MLX5_CQE_SYNDROME_WR_FLUSH_ERR, 2);
	n = poll_all(0, out, 8, 8);
	assert_each_once(out, n, 41, 3);
	CU_ASSERT_EQUAL(out[0].cookie, 41);
	CU_ASSERT_EQUAL(out[0].status, -EINVAL);
	CU_ASSERT_EQUAL(out[1].status, -ECONNRESET);
	CU_ASSERT_EQUAL(out[2].status, -ECONNRESET);
	CU_ASSERT_EQUAL(g_live_qp, 0);
	CU_ASSERT_EQUAL(pc_rdma_peer_channels(g_x, "node-b", 7), 0);
	teardown();
}

/* Many READs through a direct-polled CQ: its owner bit wraps. */
static void
test_mlx5_wrap(void)
{
	struct pc_xport_read r[8];
	struct pc_xport_cqe out[8];
	struct rdma_chan *ch;
	uint64_t cookie = 0;

	reset_mocks();
	MOCK_SET(ut_dv_rc, 1);
	g_dev = open_dev(3);
	g_x = pc_rdma_create(&(struct pc_xport_opts){.seg_base = g_seg, .seg_size = SEG_SIZE},
			     g_dev);
	CU_ASSERT_PTR_NOT_NULL_FATAL(g_x);
	ch = chan_of(connected_chan());
	for (unsigned int round = 0; round < 3 * CQE_CNT / 8; round++) {
		make_reads(r, 8, cookie);
		CU_ASSERT_EQUAL_FATAL(pc_xport_rdma.post_reads(g_x, &g_peer, r, 8, 0, 0), 8);
		for (unsigned int i = 0; i < 8; i++) {
			push_cqe(ch, MLX5_CQE_REQ, 0, (uint16_t)(cookie + i));
		}
		CU_ASSERT_EQUAL_FATAL(pc_xport_rdma.poll(g_x, 0, out, 8), 8);
		for (unsigned int i = 0; i < 8; i++) {
			CU_ASSERT_EQUAL(out[i].cookie, cookie + i);
			CU_ASSERT_EQUAL(out[i].status, 0);
		}
		cookie += 8;
	}
	CU_ASSERT_EQUAL(ch->mcq.ci, 3 * CQE_CNT);
	CU_ASSERT_EQUAL(pc_rdma_peer_channels(g_x, "node-b", 7), 1);
	teardown();
}

/* A success CQE with no READ in flight: the channel's state is unknown, it goes. */
static void
test_mlx5_stray_cqe(void)
{
	struct pc_xport_read r[1];
	struct pc_xport_cqe out[4];
	struct pc_xport_stats st;
	struct rdma_chan *ch;

	reset_mocks();
	MOCK_SET(ut_dv_rc, 1);
	g_dev = open_dev(3);
	g_x = pc_rdma_create(&(struct pc_xport_opts){.seg_base = g_seg, .seg_size = SEG_SIZE},
			     g_dev);
	CU_ASSERT_PTR_NOT_NULL_FATAL(g_x);
	ch = chan_of(connected_chan());
	make_reads(r, 1, 90);
	CU_ASSERT_EQUAL(pc_xport_rdma.post_reads(g_x, &g_peer, r, 1, 0, 0), 1);
	push_cqe(ch, MLX5_CQE_REQ, 0, 0);
	push_cqe(ch, MLX5_CQE_REQ, 0, 1);
	CU_ASSERT_EQUAL(poll_all(0, out, 4, 4), 1);
	CU_ASSERT_EQUAL(out[0].cookie, 90);
	CU_ASSERT_EQUAL(out[0].status, 0);
	CU_ASSERT_EQUAL(g_live_qp, 0);
	pc_xport_rdma.get_stats(g_x, &st);
	CU_ASSERT_EQUAL(st.channels_destroyed, 1);
	CU_ASSERT_EQUAL(st.reads_ok, 1);
	CU_ASSERT_EQUAL(st.reads_failed, 0);
	teardown();
}

static void
test_deadline(void)
{
	struct pc_xport_read r[3];
	struct pc_xport_cqe out[8];
	struct pc_xport_stats st;
	unsigned int n;

	setup(3, 0);
	(void)connected_chan();
	make_reads(r, 3, 50);
	CU_ASSERT_EQUAL(pc_xport_rdma.post_reads(g_x, &g_peer, r, 2, 5000, 10), 2);
	/* Deadline 0: now + op_timeout (1000 ns in setup). */
	CU_ASSERT_EQUAL(pc_xport_rdma.post_reads(g_x, &g_peer, r + 2, 1, 0, 3000), 1);
	CU_ASSERT_EQUAL(pc_xport_rdma.poll(g_x, 3999, out, 8), 0);
	CU_ASSERT_EQUAL(g_live_qp, 1);
	n = poll_all(4000, out, 8, 8);
	assert_each_once(out, n, 50, 3);
	for (unsigned int i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(out[i].status, -ETIMEDOUT);
	}
	CU_ASSERT_EQUAL(g_live_qp, 0);
	CU_ASSERT_EQUAL(g_mods[g_n_mods - 1].attr.qp_state, IBV_QPS_ERR);
	pc_xport_rdma.get_stats(g_x, &st);
	CU_ASSERT_EQUAL(st.timeouts, 3);
	CU_ASSERT_EQUAL(st.channels_destroyed, 1);
	CU_ASSERT_EQUAL(pc_rdma_peer_channels(g_x, "node-b", 7), 0);
	teardown();
}

static void
test_new_incarnation_and_destroy(void)
{
	struct pc_xport_read r[2];
	struct pc_xport_cqe out[4];
	struct pc_xport_peer p2 = g_peer;
	struct pc_xport_stats st;

	setup(3, 0);
	(void)connected_chan();
	make_reads(r, 2, 70);
	CU_ASSERT_EQUAL(pc_xport_rdma.post_reads(g_x, &g_peer, r, 2, 0, 0), 2);
	p2.incarnation = 8;
	CU_ASSERT_EQUAL(pc_xport_rdma.post_reads(g_x, &p2, r, 2, 0, 0), 0);
	CU_ASSERT_EQUAL(g_live_qp, 0); /* the old incarnation's channel is gone */
	CU_ASSERT_EQUAL(poll_all(0, out, 4, 4), 2);
	CU_ASSERT_EQUAL(out[0].status, -ECONNRESET);
	/* destroy with READs in flight and a channel half-connected: nothing leaks. */
	p2.incarnation = 8;
	CU_ASSERT(pc_rdma_chan_create(g_x, &p2) != 0);
	{
		struct pc_qp_info ri = remote_info();
		uint64_t id = pc_rdma_chan_create(g_x, &p2);

		ri.incarnation = 8;
		CU_ASSERT_EQUAL(pc_rdma_chan_connect(g_x, id, &ri), 0);
	}
	CU_ASSERT_EQUAL(pc_xport_rdma.post_reads(g_x, &p2, r, 2, 0, 0), 2);
	pc_xport_rdma.get_stats(g_x, &st);
	CU_ASSERT_EQUAL(st.channels_open, 1);
	CU_ASSERT_EQUAL(pc_rdma_chan_close(g_x, 999), -ENOENT);
	teardown();
}

static int
suite_init(void)
{
	g_seg = aligned_alloc(4096, SEG_SIZE);
	return g_seg == NULL ? -1 : 0;
}

static int
suite_fini(void)
{
	free(g_seg);
	return 0;
}

static const struct pc_ut_test g_dev_tests[] = {
	{"probe with no device, a missing name, a port down", test_probe},
	{"segment registered once, REMOTE_READ, never REMOTE_WRITE", test_segment_registered_once},
	{"device open fails at each step, nothing leaked", test_dev_open_failures},
	{NULL, NULL},
};

static const struct pc_ut_test g_qp_tests[] = {
	{"INIT, RTR, RTS in order with the expected attributes", test_qp_transitions},
	{"no GRH with gid_index -1", test_qp_no_grh},
	{"failure at each step cleans up", test_qp_failures},
	{"max_channels_per_peer", test_channel_cap},
	{NULL, NULL},
};

static const struct pc_ut_test g_io_tests[] = {
	{"no channel: connect asked for, nothing taken", test_post_needs_connect},
	{"a burst is one WR chain, one post_send", test_post_chain},
	{"outstanding READs capped at max_qp_rd_atom", test_post_outstanding_cap},
	{"local_off out of the segment refused", test_post_bounds},
	{"post_send failure kills the channel", test_post_send_failure},
	{"error CQE (ibv_poll_cq): channel destroyed, each READ fails once", test_error_cqe_ibv},
	{"retry exceeded, and a wr_id out of order", test_retry_exceeded_ibv},
	{"error CQE (mlx5 direct): channel destroyed, each READ fails once", test_error_cqe_mlx5},
	{"mlx5 direct polling across owner-bit wraps", test_mlx5_wrap},
	{"mlx5 direct: a completion with nothing in flight", test_mlx5_stray_cqe},
	{"deadline: reset and -ETIMEDOUT", test_deadline},
	{"new incarnation drops channels; destroy leaks nothing", test_new_incarnation_and_destroy},
	{NULL, NULL},
};

static const struct pc_ut_suite suites[] = {
	{"rdma device", suite_init, suite_fini, g_dev_tests},
	{"rdma qp", suite_init, suite_fini, g_qp_tests},
	{"rdma io", suite_init, suite_fini, g_io_tests},
};

int
main(void)
{
	/* The error paths log by design; keep the run's output to CUnit's. */
	rte_log_set_level(pc_logtype_verbs, RTE_LOG_CRIT);
	return pc_ut_run(suites, PC_ARRAY_SIZE(suites));
}
