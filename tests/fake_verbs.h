/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A fake libibverbs/mlx5dv provider for unit tests that run verbs/rdma.c
 * with no RDMA device. Include it once, after the code under test (which
 * brings in <infiniband/verbs.h> and <infiniband/mlx5dv.h>); it defines the
 * library functions themselves, so the real ones are never called.
 *
 * What it fakes: ibv_get_device_list / free_device_list / get_device_name,
 * ibv_open_device / close_device, ibv_query_port / query_device /
 * query_gid, ibv_alloc_pd / dealloc_pd, ibv_reg_mr / dereg_mr,
 * ibv_create_cq / destroy_cq, ibv_create_qp / destroy_qp / modify_qp,
 * ibv_post_send and ibv_poll_cq (as the fake context's ops),
 * mlx5dv_is_supported and mlx5dv_init_obj (CQs only). Every CQ is a
 * struct fake_cq: an mlx5 CQE buffer of CQE_CNT entries, all invalid until
 * a test writes one, that mlx5dv_init_obj hands out.
 *
 * Knobs:
 *   return codes (tests/mock.h: MOCK_SET / MOCK_PUSH): ut_open_rc,
 *     ut_query_port_rc, ut_query_device_rc, ut_query_gid_rc,
 *     ut_alloc_pd_rc, ut_reg_mr_rc, ut_create_cq_rc, ut_create_qp_rc,
 *     ut_modify_qp_rc (never applied to a move to ERR), ut_post_send_rc
 *     (with g_post_bad, the index in the chain that *bad_wr names), and
 *     ut_dv_rc (non-zero: an mlx5 device, CQs polled directly);
 *   the device: g_n_devs of g_devs (named g_dev_names), g_list_null (the
 *     list call fails with ENOSYS), g_port_state[] per device,
 *     g_link_layer, g_max_rd_atom, g_gid;
 *   completions for ibv_poll_cq: g_wc[g_wc_tail++] (taken from g_wc_head);
 *   g_fv_checks: which argument checks the fake asserts (CUnit assertions,
 *     so each one counts): FV_CHECK_RDMA_ARGS (port 1, gid index 3,
 *     1 <= cqe <= CQE_CNT, one CQ for send and receive, one SGE, no
 *     sq_sig_all), FV_CHECK_QP_LIFE (a QP destroyed is alive, every modify
 *     sets IBV_QP_STATE, fewer than QP_MAX QPs per test). A QP's type is
 *     always checked to be RC, and a posted WR to have one SGE.
 *
 * Counters and records:
 *   g_live_lists, g_live_ctx, g_live_pd, g_live_mr, g_live_cq, g_live_qp:
 *     created minus destroyed, never reset (fv_assert_no_leak() checks
 *     them all are 0);
 *   g_list_calls; g_reg_mr_calls and the last ibv_reg_mr's access, addr,
 *     len (recorded even when it fails);
 *   g_qps / qp_rec(qpn): every QP of the test by qpn - QPN_BASE: alive or
 *     not, its state, and from RTR its peer's qpn and psn;
 *   g_mods[g_n_mods]: every ibv_modify_qp, its attributes and mask;
 *   g_posts[g_n_posts]: every post_send, its WRs (and their SGEs) in
 *     g_wrs / g_sges[first .. first + n - 1].
 *
 * Reset: fv_reset() puts every knob back to its default (one device, ports
 * active, InfiniBand, max_rd_atom 16, gid A0..AF, no failures, not mlx5),
 * and empties the records; qpns start again at QPN_BASE. It leaves
 * g_fv_checks and the live counts alone. Call it at the start of each test.
 */
#ifndef PC_FAKE_VERBS_H
#define PC_FAKE_VERBS_H

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <infiniband/mlx5dv.h>
#include <infiniband/verbs.h>

#include "mock.h"
#include "ut.h"

/* ---- return values, settable with MOCK_SET / MOCK_PUSH ---- */

int ut_open_rc(void);
int ut_query_port_rc(void);
int ut_query_device_rc(void);
int ut_query_gid_rc(void);
int ut_alloc_pd_rc(void);
int ut_reg_mr_rc(void);
int ut_create_cq_rc(void);
int ut_create_qp_rc(void);
int ut_modify_qp_rc(void);
int ut_post_send_rc(void);
int ut_dv_rc(void);
DEFINE_STUB(ut_open_rc, int, (void), 0)
DEFINE_STUB(ut_query_port_rc, int, (void), 0)
DEFINE_STUB(ut_query_device_rc, int, (void), 0)
DEFINE_STUB(ut_query_gid_rc, int, (void), 0)
DEFINE_STUB(ut_alloc_pd_rc, int, (void), 0)
DEFINE_STUB(ut_reg_mr_rc, int, (void), 0)
DEFINE_STUB(ut_create_cq_rc, int, (void), 0)
DEFINE_STUB(ut_create_qp_rc, int, (void), 0)
DEFINE_STUB(ut_modify_qp_rc, int, (void), 0)
DEFINE_STUB(ut_post_send_rc, int, (void), 0)
DEFINE_STUB(ut_dv_rc, int, (void), 0) /* 1: mlx5 device, CQs polled directly */

/* ---- the fake device ---- */

#define N_DEVS   2
#define LOG_MAX  256
#define CQE_CNT  64
#define QPN_BASE 0x100u
#define QP_MAX   4096u

#define FV_CHECK_RDMA_ARGS 0x1u
#define FV_CHECK_QP_LIFE   0x2u
static unsigned int g_fv_checks;

static struct ibv_device g_devs[N_DEVS];
static const char *g_dev_names[N_DEVS] = {"mlx5_0", "mlx5_1"};
static int g_n_devs = 1;
static bool g_list_null;
static unsigned int g_list_calls;
static enum ibv_port_state g_port_state[N_DEVS];
static uint8_t g_link_layer = IBV_LINK_LAYER_INFINIBAND;
static int g_max_rd_atom = 16;
static union ibv_gid g_gid;

/* Live object counts: created minus destroyed. */
static int g_live_lists, g_live_ctx, g_live_pd, g_live_mr, g_live_cq, g_live_qp;
static unsigned int g_reg_mr_calls;
static int g_reg_mr_access;
static void *g_reg_mr_addr;
static size_t g_reg_mr_len;

/* Every QP of the current test, by qpn - QPN_BASE: alive or not, its state, its peer. */
struct qp_rec {
	bool live;
	enum ibv_qp_state state;
	uint32_t dest_qpn; /* set at RTR */
	uint32_t rq_psn;
};
static struct qp_rec g_qps[QP_MAX];
static uint32_t g_next_qpn = QPN_BASE;

struct mod_rec {
	struct ibv_qp *qp;
	struct ibv_qp_attr attr;
	int mask;
};
static struct mod_rec g_mods[LOG_MAX];
static unsigned int g_n_mods;

struct post_rec {
	struct ibv_qp *qp;
	unsigned int first; /* index in g_wrs */
	unsigned int n;
};
static struct post_rec g_posts[LOG_MAX];
static unsigned int g_n_posts;
static struct ibv_send_wr g_wrs[LOG_MAX];
static struct ibv_sge g_sges[LOG_MAX];
static unsigned int g_n_wrs;
static int g_post_bad; /* on a failing post: the index of bad_wr in the chain */

static struct ibv_wc g_wc[LOG_MAX];
static unsigned int g_wc_head, g_wc_tail;

/* A fake mlx5 CQ: the buffer the stubbed mlx5dv_init_obj gives out. */
struct fake_cq {
	struct ibv_cq cq;
	uint8_t buf[CQE_CNT * 64] __attribute__((aligned(64)));
	uint32_t dbrec[2];
	uint32_t pi; /* CQEs written */
};

static void
fv_reset(void)
{
	MOCK_CLEAR(ut_open_rc);
	MOCK_CLEAR(ut_query_port_rc);
	MOCK_CLEAR(ut_query_device_rc);
	MOCK_CLEAR(ut_query_gid_rc);
	MOCK_CLEAR(ut_alloc_pd_rc);
	MOCK_CLEAR(ut_reg_mr_rc);
	MOCK_CLEAR(ut_create_cq_rc);
	MOCK_CLEAR(ut_create_qp_rc);
	MOCK_CLEAR(ut_modify_qp_rc);
	MOCK_CLEAR(ut_post_send_rc);
	MOCK_CLEAR(ut_dv_rc);
	g_n_devs = 1;
	g_list_null = false;
	g_list_calls = 0;
	g_port_state[0] = IBV_PORT_ACTIVE;
	g_port_state[1] = IBV_PORT_ACTIVE;
	g_link_layer = IBV_LINK_LAYER_INFINIBAND;
	g_max_rd_atom = 16;
	for (unsigned int i = 0; i < 16; i++) {
		g_gid.raw[i] = (uint8_t)(0xA0 + i);
	}
	g_reg_mr_calls = 0;
	g_reg_mr_access = 0;
	g_reg_mr_addr = NULL;
	g_reg_mr_len = 0;
	g_next_qpn = QPN_BASE;
	memset(g_qps, 0, sizeof(g_qps));
	g_n_mods = 0;
	g_n_posts = 0;
	g_n_wrs = 0;
	g_post_bad = 0;
	g_wc_head = g_wc_tail = 0;
}

/* Every verbs object handed out has been given back. */
static void
fv_assert_no_leak(void)
{
	CU_ASSERT_EQUAL(g_live_lists, 0);
	CU_ASSERT_EQUAL(g_live_ctx, 0);
	CU_ASSERT_EQUAL(g_live_pd, 0);
	CU_ASSERT_EQUAL(g_live_mr, 0);
	CU_ASSERT_EQUAL(g_live_cq, 0);
	CU_ASSERT_EQUAL(g_live_qp, 0);
}

/* The record of a QP this test created (unused by some tests). */
__attribute__((unused)) static struct qp_rec *
qp_rec(uint32_t qpn)
{
	CU_ASSERT_FATAL(qpn >= QPN_BASE && qpn - QPN_BASE < g_next_qpn - QPN_BASE);
	return &g_qps[qpn - QPN_BASE];
}

/* The record of a QP, or NULL past QP_MAX (not asserted: see FV_CHECK_QP_LIFE). */
static struct qp_rec *
fv_qp_rec(const struct ibv_qp *qp)
{
	uint32_t i = qp->qp_num - QPN_BASE;

	return i < QP_MAX ? &g_qps[i] : NULL;
}

static int fake_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc);
static int fake_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad);

static struct ibv_context *
new_ctx(struct ibv_device *dev)
{
	struct ibv_context *c = calloc(1, sizeof(*c));

	CU_ASSERT_FATAL(c != NULL);
	c->device = dev;
	c->ops.poll_cq = fake_poll_cq;
	c->ops.post_send = fake_post_send;
	g_live_ctx++;
	return c;
}

struct ibv_device **(ibv_get_device_list)(int *num_devices)
{
	struct ibv_device **l;

	g_list_calls++;
	if (g_list_null) {
		errno = ENOSYS;
		return NULL;
	}
	l = calloc((size_t)g_n_devs + 1, sizeof(*l));
	CU_ASSERT_FATAL(l != NULL);
	for (int i = 0; i < g_n_devs; i++) {
		l[i] = &g_devs[i];
	}
	*num_devices = g_n_devs;
	g_live_lists++;
	return l;
}

void
ibv_free_device_list(struct ibv_device **list)
{
	g_live_lists--;
	free(list);
}

const char *
ibv_get_device_name(struct ibv_device *device)
{
	return g_dev_names[device - g_devs];
}

struct ibv_context *
ibv_open_device(struct ibv_device *device)
{
	int rc = ut_open_rc();

	if (rc != 0) {
		errno = rc;
		return NULL;
	}
	return new_ctx(device);
}

int
ibv_close_device(struct ibv_context *context)
{
	g_live_ctx--;
	free(context);
	return 0;
}

int(ibv_query_port)(struct ibv_context *context, uint8_t port_num,
		    struct _compat_ibv_port_attr *port_attr)
{
	struct ibv_port_attr *pa = (struct ibv_port_attr *)port_attr;
	int rc = ut_query_port_rc();

	if (g_fv_checks & FV_CHECK_RDMA_ARGS) {
		CU_ASSERT_EQUAL(port_num, 1);
	}
	if (rc != 0) {
		return rc;
	}
	pa->state = g_port_state[context->device - g_devs];
	pa->active_mtu = IBV_MTU_4096;
	pa->lid = 0x42;
	pa->link_layer = g_link_layer;
	return 0;
}

int
ibv_query_device(struct ibv_context *context, struct ibv_device_attr *device_attr)
{
	int rc = ut_query_device_rc();

	(void)context;
	memset(device_attr, 0, sizeof(*device_attr));
	device_attr->max_qp_rd_atom = g_max_rd_atom;
	return rc;
}

int
ibv_query_gid(struct ibv_context *context, uint8_t port_num, int index, union ibv_gid *gid)
{
	(void)context;
	(void)port_num;
	if (g_fv_checks & FV_CHECK_RDMA_ARGS) {
		CU_ASSERT_EQUAL(index, 3);
	}
	*gid = g_gid;
	return ut_query_gid_rc();
}

struct ibv_pd *
ibv_alloc_pd(struct ibv_context *context)
{
	struct ibv_pd *pd;
	int rc = ut_alloc_pd_rc();

	if (rc != 0) {
		errno = rc;
		return NULL;
	}
	pd = calloc(1, sizeof(*pd));
	CU_ASSERT_FATAL(pd != NULL);
	pd->context = context;
	g_live_pd++;
	return pd;
}

int
ibv_dealloc_pd(struct ibv_pd *pd)
{
	g_live_pd--;
	free(pd);
	return 0;
}

struct ibv_mr *(ibv_reg_mr)(struct ibv_pd *pd, void *addr, size_t length, int access)
{
	struct ibv_mr *mr;
	int rc = ut_reg_mr_rc();

	g_reg_mr_calls++;
	g_reg_mr_access = access;
	g_reg_mr_addr = addr;
	g_reg_mr_len = length;
	if (rc != 0) {
		errno = rc;
		return NULL;
	}
	mr = calloc(1, sizeof(*mr));
	CU_ASSERT_FATAL(mr != NULL);
	mr->pd = pd;
	mr->addr = addr;
	mr->length = length;
	mr->lkey = 0x1111;
	mr->rkey = 0x2222;
	g_live_mr++;
	return mr;
}

int
ibv_dereg_mr(struct ibv_mr *mr)
{
	g_live_mr--;
	free(mr);
	return 0;
}

struct ibv_cq *
ibv_create_cq(struct ibv_context *context, int cqe, void *cq_context,
	      struct ibv_comp_channel *channel, int comp_vector)
{
	struct fake_cq *f;
	int rc = ut_create_cq_rc();

	(void)cq_context;
	(void)channel;
	(void)comp_vector;
	if (g_fv_checks & FV_CHECK_RDMA_ARGS) {
		CU_ASSERT(cqe >= 1 && cqe <= CQE_CNT);
	}
	if (rc != 0) {
		errno = rc;
		return NULL;
	}
	f = aligned_alloc(64, sizeof(*f));
	CU_ASSERT_FATAL(f != NULL);
	memset(f, 0, sizeof(*f));
	for (unsigned int i = 0; i < CQE_CNT; i++) {
		f->buf[i * 64 + 63] = MLX5_CQE_INVALID << 4;
	}
	f->cq.context = context;
	f->cq.cqe = cqe;
	g_live_cq++;
	return &f->cq;
}

int
ibv_destroy_cq(struct ibv_cq *cq)
{
	g_live_cq--;
	free(cq); /* cq is the first member of struct fake_cq */
	return 0;
}

struct ibv_qp *
ibv_create_qp(struct ibv_pd *pd, struct ibv_qp_init_attr *qp_init_attr)
{
	struct ibv_qp *qp;
	struct qp_rec *r;
	int rc = ut_create_qp_rc();

	CU_ASSERT_EQUAL(qp_init_attr->qp_type, IBV_QPT_RC);
	if (g_fv_checks & FV_CHECK_RDMA_ARGS) {
		CU_ASSERT(qp_init_attr->send_cq != NULL &&
			  qp_init_attr->send_cq == qp_init_attr->recv_cq);
		CU_ASSERT_EQUAL(qp_init_attr->cap.max_send_sge, 1);
		CU_ASSERT_EQUAL(qp_init_attr->sq_sig_all, 0);
	}
	if (rc != 0) {
		errno = rc;
		return NULL;
	}
	if (g_fv_checks & FV_CHECK_QP_LIFE) {
		CU_ASSERT_FATAL(g_next_qpn - QPN_BASE < QP_MAX);
	}
	qp = calloc(1, sizeof(*qp));
	CU_ASSERT_FATAL(qp != NULL);
	qp->context = pd->context;
	qp->pd = pd;
	qp->send_cq = qp_init_attr->send_cq;
	qp->qp_num = g_next_qpn++;
	qp->qp_type = IBV_QPT_RC;
	r = fv_qp_rec(qp);
	if (r != NULL) {
		memset(r, 0, sizeof(*r));
		r->live = true;
		r->state = IBV_QPS_RESET;
	}
	g_live_qp++;
	return qp;
}

int
ibv_destroy_qp(struct ibv_qp *qp)
{
	struct qp_rec *r = fv_qp_rec(qp);

	if (g_fv_checks & FV_CHECK_QP_LIFE) {
		CU_ASSERT(r != NULL && r->live);
	}
	if (r != NULL) {
		r->live = false;
	}
	g_live_qp--;
	free(qp);
	return 0;
}

int
ibv_modify_qp(struct ibv_qp *qp, struct ibv_qp_attr *attr, int attr_mask)
{
	struct qp_rec *r = fv_qp_rec(qp);
	int rc = 0;

	if (g_fv_checks & FV_CHECK_QP_LIFE) {
		CU_ASSERT(attr_mask & IBV_QP_STATE);
	}
	if (g_n_mods < LOG_MAX) {
		g_mods[g_n_mods].qp = qp;
		g_mods[g_n_mods].attr = *attr;
		g_mods[g_n_mods].mask = attr_mask;
		g_n_mods++;
	}
	if (attr->qp_state != IBV_QPS_ERR) {
		rc = ut_modify_qp_rc(); /* the reset path is never failed here */
	}
	if (rc == 0 && r != NULL) {
		r->state = attr->qp_state;
		if (attr->qp_state == IBV_QPS_RTR) {
			r->dest_qpn = attr->dest_qp_num;
			r->rq_psn = attr->rq_psn;
		}
	}
	return rc;
}

bool
mlx5dv_is_supported(struct ibv_device *device)
{
	(void)device;
	return ut_dv_rc() != 0;
}

int
mlx5dv_init_obj(struct mlx5dv_obj *obj, uint64_t obj_type)
{
	struct fake_cq *f = (struct fake_cq *)obj->cq.in;

	CU_ASSERT_EQUAL_FATAL(obj_type, MLX5DV_OBJ_CQ);
	memset(obj->cq.out, 0, sizeof(*obj->cq.out));
	obj->cq.out->buf = f->buf;
	obj->cq.out->dbrec = f->dbrec;
	obj->cq.out->cqe_cnt = CQE_CNT;
	obj->cq.out->cqe_size = 64;
	return 0;
}

static int
fake_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad)
{
	int rc = ut_post_send_rc();
	struct post_rec *p;
	int i = 0;

	if (g_n_posts >= LOG_MAX) {
		CU_FAIL_FATAL("fake_verbs: too many posts"); /* counted only when it fails */
	}
	p = &g_posts[g_n_posts++];
	p->qp = qp;
	p->first = g_n_wrs;
	p->n = 0;
	for (struct ibv_send_wr *w = wr; w != NULL; w = w->next, i++) {
		CU_ASSERT_FATAL(g_n_wrs < LOG_MAX);
		CU_ASSERT_EQUAL(w->num_sge, 1);
		g_wrs[g_n_wrs] = *w;
		g_sges[g_n_wrs] = w->sg_list[0];
		g_n_wrs++;
		p->n++;
		if (rc != 0 && i == g_post_bad) {
			*bad = w;
		}
	}
	return rc;
}

static int
fake_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc)
{
	int k = 0;

	(void)cq;
	while (k < n && g_wc_head < g_wc_tail) {
		wc[k++] = g_wc[g_wc_head++];
	}
	return k;
}

#endif /* PC_FAKE_VERBS_H */
