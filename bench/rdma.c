/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * peercache-bench's RDMA half of `remote`: which device it uses (or why it
 * is skipped), and the raw verbs READ baseline, ib_read_bw style: one RC QP
 * between two processes, the serving one registers a buffer for remote
 * READ and does nothing else (the NIC answers), the reading one keeps
 * `batch` signaled READs of the block size in flight and posts a new one as
 * each completes.
 *
 * The pieces are separate so that tests/unit/bench/rdma_bench_ut.c can run
 * them over tests/fake_verbs.h without a NIC: rdma_where_pick (device, port,
 * GID), ep_open / ep_connect / ep_close (one side's verbs objects and its QP
 * through INIT, RTR, RTS), reads_run (the READ window over a QP and CQ) and
 * reads_check (the bytes). rdma_serve and rdma_read_bench join them into
 * the two processes; peercache-bench.c forks them.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "bench.h"

#define RDMA_SEED        0x5eedc0deULL
#define RDMA_LOCAL_MIN   (64ULL << 20) /* the reader's landing area: as the GET's destinations */
#define RDMA_REMOTE_MAX  (64ULL << 20) /* the server's buffer, at most */
#define RDMA_POLL_MAX    32
#define RDMA_READ_TMO    (10ULL * 1000000000ULL) /* ns without a completion: the run fails */
#define HANDSHAKE_MS     30000
#define SERVE_MS         (3600 * 1000) /* the server's backstop: the reader says done far sooner */
#define GID_TABLE_MAX    1024
#define ROCE_GID_DEFAULT 3 /* the engine's gid_index default (config.c) */

/* RC QP parameters: the usual ones, as the engine's transport uses. */
#define QP_MIN_RNR_TIMER 12
#define QP_TIMEOUT       14 /* 4.096 us << 14: about 67 ms per try */
#define QP_RETRY_CNT     7
#define QP_RNR_RETRY     7
#define QP_HOP_LIMIT     64 /* a TTL for RoCE v2; any value past the path length will do */

/* One side's verbs objects. */
struct rdma_ep {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_mr *mr;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	uint8_t port;
	int gid_index;
	enum ibv_mtu mtu;
	uint16_t lid;
	union ibv_gid gid;
	unsigned int init_rd_atom; /* READs this side may have outstanding on the wire */
	unsigned int dest_rd_atom; /* READs it answers at once (responder resources) */
	uint32_t psn;
};

/*
 * What each process sends the other, as is: both ends run on this machine.
 * Three of them go each way: the QP record, then "ready" (connected) and
 * from the reader "done".
 */
struct rdma_msg {
	int32_t err; /* 0, or the sender's -errno, with why */
	uint32_t qpn;
	uint32_t psn;
	uint32_t rkey;
	uint16_t lid;
	uint8_t mtu;
	uint8_t rd_atom; /* the sender's responder resources */
	uint8_t gid[16];
	uint64_t addr;
	uint64_t len;
	char why[192];
};

/* The READ window: batch READs of `size` in flight on one QP. */
struct rdma_reads {
	struct ibv_qp *qp;
	struct ibv_cq *cq;
	uint8_t *lbase; /* where READs land, in lpages slots of size */
	size_t lpages;
	uint32_t lkey;
	uint64_t rbase; /* what they read: rpages blocks of size on the server */
	size_t rpages;
	uint32_t rkey;
	size_t size;
	unsigned int window;
	uint64_t posted, done; /* READs so far; a READ's sequence number is its wr_id */
	uint64_t timeout_ns;   /* with no completion for this long, the run fails */
	struct ibv_send_wr *wr;
	struct ibv_sge *sge;
};

static void __attribute__((format(printf, 3, 4)))
set_why(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || len == 0) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

/* errno, or dflt where a call failed without setting it: never 0, as callers test for success. */
static int
errno_or(int dflt)
{
	int e = errno;

	return e > 0 ? e : dflt;
}

/* ---------------------------------------------------------------- pattern */

/* The server's bytes: word i of the buffer is seed ^ i-th multiple of the golden ratio. */
static uint64_t
pattern_word(uint64_t seed, size_t off)
{
	return seed ^ ((uint64_t)off * 0x9E3779B97F4A7C15ULL);
}

static void
pattern_fill(uint8_t *p, size_t len, uint64_t seed)
{
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		uint64_t v = pattern_word(seed, i);

		memcpy(p + i, &v, 8);
	}
}

/* Whether p holds the len bytes found at offset off of a buffer pattern_fill wrote. */
static int
pattern_ok(const uint8_t *p, size_t len, uint64_t seed, size_t off)
{
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		uint64_t v;

		memcpy(&v, p + i, 8);
		if (v != pattern_word(seed, off + i)) {
			return 0;
		}
	}
	return 1;
}

/* ---------------------------------------------------------------- device */

static const char *
port_state_name(enum ibv_port_state s)
{
	switch (s) {
	case IBV_PORT_DOWN:
		return "DOWN";
	case IBV_PORT_INIT:
		return "INIT";
	case IBV_PORT_ARMED:
		return "ARMED";
	case IBV_PORT_ACTIVE:
		return "ACTIVE";
	case IBV_PORT_ACTIVE_DEFER:
		return "ACTIVE_DEFER";
	default:
		return "NOP";
	}
}

/* IPv4-mapped (::ffff:a.b.c.d): the GID of an interface's IPv4 address. */
static int
gid_v4_mapped(const union ibv_gid *g)
{
	static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	return memcmp(g->raw, prefix, sizeof(prefix)) == 0;
}

/*
 * A RoCE port's GID index into *idx: the first RoCE v2 entry of the port
 * with an IPv4-mapped address, else its first RoCE v2 entry, else its first
 * entry; the engine's default when the table cannot be read. *kind says
 * which. 0, or -ENOENT (the port has no GID).
 */
static int
roce_gid_pick(struct ibv_context *ctx, uint8_t port, int *idx, const char **kind)
{
	struct ibv_gid_entry *e = calloc(GID_TABLE_MAX, sizeof(*e));
	ssize_t n, i;
	int v2 = -1, v4 = -1, any = -1;

	*idx = ROCE_GID_DEFAULT;
	*kind = "the engine's default; the GID table could not be read";
	if (e == NULL) {
		return 0;
	}
	n = ibv_query_gid_table(ctx, e, GID_TABLE_MAX, 0);
	if (n < 0) {
		free(e);
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (e[i].port_num != port) {
			continue;
		}
		if (any < 0) {
			any = (int)e[i].gid_index;
		}
		if (e[i].gid_type == IBV_GID_TYPE_ROCE_V2) {
			if (v2 < 0) {
				v2 = (int)e[i].gid_index;
			}
			if (v4 < 0 && gid_v4_mapped(&e[i].gid)) {
				v4 = (int)e[i].gid_index;
			}
		}
	}
	free(e);
	if (v4 >= 0) {
		*idx = v4;
		*kind = "RoCE v2, IPv4";
	} else if (v2 >= 0) {
		*idx = v2;
		*kind = "RoCE v2";
	} else if (any >= 0) {
		*idx = any;
		*kind = "not RoCE v2: the port has none";
	} else {
		return -ENOENT;
	}
	return 0;
}

int
rdma_where_pick(const char *name, int port, int gid_index, struct rdma_where *w, char *why,
		size_t len)
{
	struct ibv_device **list;
	struct ibv_context *ctx = NULL;
	struct ibv_port_attr pa;
	const char *kind = "given";
	int n = 0, i, found = 0, rc = 0;
	int any = name == NULL || name[0] == 0;

	memset(w, 0, sizeof(*w));
	if (port < 1 || port > 255 || gid_index < RDMA_GID_AUTO || gid_index > 255) {
		set_why(why, len, "rdma: port %d or GID index %d out of range", port, gid_index);
		return -EINVAL;
	}
	errno = 0;
	list = ibv_get_device_list(&n);
	if (list == NULL) {
		int err = errno;

		/* ENOSYS is the usual case on a machine without RDMA: say it in words. */
		set_why(why, len, "no RDMA device (ibv_get_device_list: %s%s)", strerror(err),
			err == ENOSYS ? ": no RDMA support in this kernel" : "");
		return -ENODEV;
	}
	if (n <= 0) {
		ibv_free_device_list(list);
		set_why(why, len, "no RDMA device (ibv_get_device_list found none)");
		return -ENODEV;
	}
	if (any) {
		set_why(why, len, "no RDMA device has port %d ACTIVE", port);
	} else {
		set_why(why, len, "RDMA device %s not found (ibv_get_device_list has %d)", name, n);
	}
	for (i = 0; i < n && !found; i++) {
		const char *dn = ibv_get_device_name(list[i]);

		if (dn == NULL || (!any && strcmp(dn, name) != 0)) {
			continue;
		}
		ctx = ibv_open_device(list[i]);
		if (ctx == NULL) {
			set_why(why, len, "%s: ibv_open_device: %s", dn, strerror(errno));
		} else if (ibv_query_port(ctx, (uint8_t)port, &pa) != 0) {
			set_why(why, len, "%s: ibv_query_port %d failed", dn, port);
		} else if (pa.state != IBV_PORT_ACTIVE) {
			set_why(why, len, "%s: port %d is %s, not ACTIVE", dn, port,
				port_state_name(pa.state));
		} else {
			found = 1;
			snprintf(w->dev, sizeof(w->dev), "%s", dn);
			break;
		}
		if (ctx != NULL) {
			ibv_close_device(ctx);
			ctx = NULL;
		}
	}
	ibv_free_device_list(list);
	if (!found) {
		return -ENODEV;
	}
	w->port = port;
	w->roce = pa.link_layer == IBV_LINK_LAYER_ETHERNET;
	if (gid_index != RDMA_GID_AUTO) {
		w->gid_index = gid_index;
	} else if (w->roce) {
		rc = roce_gid_pick(ctx, (uint8_t)port, &w->gid_index, &kind);
	} else {
		/* InfiniBand routes by LID; a GRH only where the port demands one. */
		w->gid_index = (pa.flags & IBV_QPF_GRH_REQUIRED) ? 0 : -1;
		kind = w->gid_index < 0 ? "no GRH" : "the port requires a GRH";
	}
	ibv_close_device(ctx);
	if (rc != 0) {
		set_why(why, len, "%s: port %d has no GID (RoCE needs one)", w->dev, port);
		return -ENODEV;
	}
	if (w->roce && w->gid_index < 0) {
		set_why(why, len, "%s is RoCE: it needs a GID index (--gid-index)", w->dev);
		return -EINVAL;
	}
	snprintf(w->text, sizeof(w->text), "%s port %d, %s, GID index %d (%s)", w->dev, port,
		 w->roce ? "RoCE" : "InfiniBand", w->gid_index, kind);
	return 0;
}

/* ---------------------------------------------------------------- one side */

static unsigned int
clamp_atom(int v)
{
	return v < 1 ? 1U : v > 255 ? 255U : (unsigned int)v;
}

/* Close what ep_open built; NULL and half-built are fine, and errors do not stop it. */
static void
ep_close(struct rdma_ep *ep)
{
	if (ep == NULL) {
		return;
	}
	if (ep->qp != NULL) {
		(void)ibv_destroy_qp(ep->qp);
	}
	if (ep->cq != NULL) {
		(void)ibv_destroy_cq(ep->cq);
	}
	if (ep->mr != NULL) {
		(void)ibv_dereg_mr(ep->mr);
	}
	if (ep->pd != NULL) {
		(void)ibv_dealloc_pd(ep->pd);
	}
	if (ep->ctx != NULL) {
		ibv_close_device(ep->ctx);
	}
	free(ep);
}

static struct ibv_context *
open_named(const char *name)
{
	struct ibv_device **list;
	struct ibv_context *ctx = NULL;
	int n = 0, i;

	list = ibv_get_device_list(&n);
	if (list == NULL) {
		return NULL;
	}
	errno = ENODEV;
	for (i = 0; i < n && ctx == NULL; i++) {
		const char *dn = ibv_get_device_name(list[i]);

		if (dn != NULL && strcmp(dn, name) == 0) {
			ctx = ibv_open_device(list[i]);
		}
	}
	ibv_free_device_list(list);
	return ctx;
}

/*
 * Open w's device and build one side: PD, buf registered with mr_access, a
 * CQ and an RC QP for `depth` signaled READs, the QP in INIT with
 * qp_access (what the peer may do to this side). Returns it, or NULL with
 * *errp (-errno) and why; nothing is left open on failure.
 */
static struct rdma_ep *
ep_open(const struct rdma_where *w, void *buf, size_t len, int mr_access, unsigned int depth,
	int qp_access, int *errp, char *why, size_t wlen)
{
	struct rdma_ep *ep = calloc(1, sizeof(*ep));
	struct ibv_port_attr pa;
	struct ibv_device_attr da;
	struct ibv_qp_init_attr qia;
	struct ibv_qp_attr attr;
	int err;

	if (ep == NULL) {
		err = ENOMEM;
		set_why(why, wlen, "out of memory");
		goto err_close;
	}
	ep->ctx = open_named(w->dev);
	if (ep->ctx == NULL) {
		err = errno_or(ENODEV);
		set_why(why, wlen, "%s: ibv_open_device: %s", w->dev, strerror(err));
		goto err_close;
	}
	ep->port = (uint8_t)w->port;
	ep->gid_index = w->gid_index;
	err = ibv_query_port(ep->ctx, ep->port, &pa);
	if (err == 0 && pa.state != IBV_PORT_ACTIVE) {
		err = ENETDOWN;
	}
	if (err != 0) {
		set_why(why, wlen, "%s: port %u: %s", w->dev, ep->port, strerror(err));
		goto err_close;
	}
	ep->mtu = pa.active_mtu != 0 ? pa.active_mtu : IBV_MTU_1024;
	ep->lid = pa.lid;
	if (ep->gid_index >= 0) {
		err = ibv_query_gid(ep->ctx, ep->port, ep->gid_index, &ep->gid);
		if (err != 0) {
			set_why(why, wlen, "%s: no GID at index %d", w->dev, ep->gid_index);
			err = EINVAL;
			goto err_close;
		}
	}
	err = ibv_query_device(ep->ctx, &da);
	if (err != 0) {
		set_why(why, wlen, "%s: ibv_query_device: %s", w->dev, strerror(err));
		goto err_close;
	}
	if ((da.max_qp_wr > 0 && depth > (unsigned int)da.max_qp_wr) ||
	    (da.max_cqe > 0 && depth > (unsigned int)da.max_cqe)) {
		set_why(why, wlen, "%s: %u READs in flight exceed max_qp_wr %d or max_cqe %d",
			w->dev, depth, da.max_qp_wr, da.max_cqe);
		err = EINVAL;
		goto err_close;
	}
	ep->dest_rd_atom = clamp_atom(da.max_qp_rd_atom);
	ep->init_rd_atom =
		clamp_atom(da.max_qp_init_rd_atom > 0 ? da.max_qp_init_rd_atom : da.max_qp_rd_atom);
	errno = 0;
	ep->pd = ibv_alloc_pd(ep->ctx);
	if (ep->pd == NULL) {
		err = errno_or(ENOMEM);
		set_why(why, wlen, "%s: ibv_alloc_pd: %s", w->dev, strerror(err));
		goto err_close;
	}
	errno = 0;
	ep->mr = ibv_reg_mr(ep->pd, buf, len, mr_access);
	if (ep->mr == NULL) {
		err = errno_or(ENOMEM);
		set_why(why, wlen, "%s: ibv_reg_mr of %zu bytes: %s%s", w->dev, len, strerror(err),
			err == ENOMEM ? " (RLIMIT_MEMLOCK? see ulimit -l)" : "");
		goto err_close;
	}
	errno = 0;
	ep->cq = ibv_create_cq(ep->ctx, (int)depth, NULL, NULL, 0);
	if (ep->cq == NULL) {
		err = errno_or(ENOMEM);
		set_why(why, wlen, "%s: ibv_create_cq of %u: %s", w->dev, depth, strerror(err));
		goto err_close;
	}
	memset(&qia, 0, sizeof(qia));
	qia.send_cq = ep->cq;
	qia.recv_cq = ep->cq;
	qia.qp_type = IBV_QPT_RC;
	qia.sq_sig_all = 0; /* every READ asks for its completion itself */
	qia.cap.max_send_wr = depth;
	qia.cap.max_recv_wr = 1;
	qia.cap.max_send_sge = 1;
	qia.cap.max_recv_sge = 1;
	errno = 0;
	ep->qp = ibv_create_qp(ep->pd, &qia);
	if (ep->qp == NULL) {
		err = errno_or(ENOMEM);
		set_why(why, wlen, "%s: ibv_create_qp (RC, %u WRs): %s", w->dev, depth,
			strerror(err));
		goto err_close;
	}
	memset(&attr, 0, sizeof(attr));
	attr.qp_state = IBV_QPS_INIT;
	attr.pkey_index = 0;
	attr.port_num = ep->port;
	attr.qp_access_flags = (unsigned int)qp_access;
	err = ibv_modify_qp(ep->qp, &attr,
			    IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
	if (err != 0) {
		set_why(why, wlen, "%s: QP to INIT: %s", w->dev, strerror(err));
		goto err_close;
	}
	/* 24 bits; a QP's PSN only has to differ from its previous incarnation's. */
	ep->psn = (uint32_t)(now_ns() ^ ((uint64_t)getpid() << 8)) & 0xFFFFFFU;
	return ep;

err_close:
	ep_close(ep);
	*errp = -err;
	return NULL;
}

/* This side's record for the peer; addr and len are the caller's. */
static void
ep_msg(const struct rdma_ep *ep, struct rdma_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->qpn = ep->qp->qp_num;
	m->psn = ep->psn;
	m->rkey = ep->mr->rkey;
	m->lid = ep->lid;
	m->mtu = (uint8_t)ep->mtu;
	m->rd_atom = (uint8_t)ep->dest_rd_atom;
	memcpy(m->gid, ep->gid.raw, sizeof(m->gid));
}

/*
 * INIT -> RTR -> RTS with the peer's record (man ibv_modify_qp: the
 * attributes an RC QP needs at each step). 0, or -errno with why.
 */
static int
ep_connect(struct rdma_ep *ep, const struct rdma_msg *peer, char *why, size_t wlen)
{
	struct ibv_qp_attr attr;
	int err;

	if (peer->mtu < IBV_MTU_256 || peer->mtu > IBV_MTU_4096 || peer->qpn > 0xFFFFFFU ||
	    peer->psn > 0xFFFFFFU) {
		set_why(why, wlen, "peer's QP record is malformed (mtu %u, qpn 0x%x, psn 0x%x)",
			peer->mtu, peer->qpn, peer->psn);
		return -EINVAL;
	}
	memset(&attr, 0, sizeof(attr));
	attr.qp_state = IBV_QPS_RTR;
	attr.path_mtu = ep->mtu < (enum ibv_mtu)peer->mtu ? ep->mtu : (enum ibv_mtu)peer->mtu;
	attr.dest_qp_num = peer->qpn;
	attr.rq_psn = peer->psn;
	attr.max_dest_rd_atomic = (uint8_t)ep->dest_rd_atom;
	attr.min_rnr_timer = QP_MIN_RNR_TIMER;
	attr.ah_attr.dlid = peer->lid;
	attr.ah_attr.sl = 0;
	attr.ah_attr.src_path_bits = 0;
	attr.ah_attr.port_num = ep->port;
	if (ep->gid_index >= 0) {
		attr.ah_attr.is_global = 1;
		memcpy(attr.ah_attr.grh.dgid.raw, peer->gid, sizeof(peer->gid));
		attr.ah_attr.grh.sgid_index = (uint8_t)ep->gid_index;
		attr.ah_attr.grh.hop_limit = QP_HOP_LIMIT;
	}
	err = ibv_modify_qp(ep->qp, &attr,
			    IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
				    IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
				    IBV_QP_MIN_RNR_TIMER);
	if (err != 0) {
		set_why(why, wlen, "QP to RTR: %s", strerror(err));
		return -err;
	}
	memset(&attr, 0, sizeof(attr));
	attr.qp_state = IBV_QPS_RTS;
	attr.timeout = QP_TIMEOUT;
	attr.retry_cnt = QP_RETRY_CNT;
	attr.rnr_retry = QP_RNR_RETRY;
	attr.sq_psn = ep->psn;
	/* No more READs on the wire than this side may issue and the peer will answer. */
	attr.max_rd_atomic =
		(uint8_t)(ep->init_rd_atom < peer->rd_atom ? ep->init_rd_atom : peer->rd_atom);
	if (attr.max_rd_atomic == 0) {
		attr.max_rd_atomic = 1;
	}
	err = ibv_modify_qp(ep->qp, &attr,
			    IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
				    IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
	if (err != 0) {
		set_why(why, wlen, "QP to RTS: %s", strerror(err));
		return -err;
	}
	return 0;
}

/* ---------------------------------------------------------------- the READ window */

/* The window over ep's QP: READs of size from [rbase, rbase + rlen) into [lbase, lbase + llen). */
static int
reads_init(struct rdma_reads *rr, const struct rdma_ep *ep, uint8_t *lbase, size_t llen,
	   uint64_t rbase, size_t rlen, uint32_t rkey, size_t size, unsigned int window)
{
	memset(rr, 0, sizeof(*rr));
	if (size == 0 || size > UINT32_MAX || window == 0 || llen < size || rlen < size) {
		return -EINVAL;
	}
	rr->wr = calloc(window, sizeof(*rr->wr));
	rr->sge = calloc(window, sizeof(*rr->sge));
	if (rr->wr == NULL || rr->sge == NULL) {
		free(rr->wr);
		free(rr->sge);
		rr->wr = NULL;
		rr->sge = NULL;
		return -ENOMEM;
	}
	rr->qp = ep->qp;
	rr->cq = ep->cq;
	rr->lbase = lbase;
	rr->lpages = llen / size;
	rr->lkey = ep->mr->lkey;
	rr->rbase = rbase;
	rr->rpages = rlen / size;
	rr->rkey = rkey;
	rr->size = size;
	rr->window = window;
	rr->timeout_ns = RDMA_READ_TMO;
	return 0;
}

static void
reads_fini(struct rdma_reads *rr)
{
	free(rr->wr);
	free(rr->sge);
	rr->wr = NULL;
	rr->sge = NULL;
}

/* Where READ seq lands, and what it reads. */
static uint8_t *
read_local(const struct rdma_reads *rr, uint64_t seq)
{
	return rr->lbase + (size_t)(seq % rr->lpages) * rr->size;
}

static uint64_t
read_remote_off(const struct rdma_reads *rr, uint64_t seq)
{
	return (uint64_t)(seq % rr->rpages) * rr->size;
}

/* Post the next k READs as one chain (one doorbell). 0, or -errno with why. */
static int
reads_post(struct rdma_reads *rr, unsigned int k, char *why, size_t len)
{
	struct ibv_send_wr *bad = NULL;
	unsigned int i;
	int rc;

	for (i = 0; i < k; i++) {
		uint64_t seq = rr->posted + i;

		rr->sge[i].addr = (uint64_t)(uintptr_t)read_local(rr, seq);
		rr->sge[i].length = (uint32_t)rr->size;
		rr->sge[i].lkey = rr->lkey;
		memset(&rr->wr[i], 0, sizeof(rr->wr[i]));
		rr->wr[i].wr_id = seq;
		rr->wr[i].next = i + 1 < k ? &rr->wr[i + 1] : NULL;
		rr->wr[i].sg_list = &rr->sge[i];
		rr->wr[i].num_sge = 1;
		rr->wr[i].opcode = IBV_WR_RDMA_READ;
		rr->wr[i].send_flags = IBV_SEND_SIGNALED;
		rr->wr[i].wr.rdma.remote_addr = rr->rbase + read_remote_off(rr, seq);
		rr->wr[i].wr.rdma.rkey = rr->rkey;
	}
	rc = ibv_post_send(rr->qp, rr->wr, &bad);
	if (rc == 0) {
		rr->posted += k;
		return 0;
	}
	/* The WRs before bad went out and will complete: count them as in flight. */
	if (bad != NULL && bad >= rr->wr && bad < rr->wr + k) {
		rr->posted += (uint64_t)(bad - rr->wr);
	}
	set_why(why, len, "ibv_post_send of %u READs (READ %llu on): %s", k,
		(unsigned long long)rr->posted, strerror(rc));
	return -rc;
}

/* One completion: it must be the oldest READ in flight, and good. 0, or -errno with why. */
static int
reads_complete(struct rdma_reads *rr, const struct ibv_wc *wc, char *why, size_t len)
{
	if (wc->status != IBV_WC_SUCCESS) {
		set_why(why, len, "READ %llu of %zu B failed: %s (status %d, vendor_err 0x%x)",
			(unsigned long long)wc->wr_id, rr->size, ibv_wc_status_str(wc->status),
			(int)wc->status, wc->vendor_err);
		return -EIO;
	}
	if (rr->done == rr->posted || wc->wr_id != rr->done || wc->opcode != IBV_WC_RDMA_READ) {
		set_why(why, len,
			"unexpected completion: wr_id %llu, opcode %d; oldest READ in flight %llu, "
			"%llu posted",
			(unsigned long long)wc->wr_id, (int)wc->opcode,
			(unsigned long long)rr->done, (unsigned long long)rr->posted);
		return -EPROTO;
	}
	rr->done++;
	return 0;
}

/*
 * n READs, at most rr->window in flight: the window is filled, and each
 * completion makes room for one more (posted, like the first fill, as one
 * chain per pass). Each group of `window` completions (the last may be
 * short) is one sample of s for repetition r: the time in which a batch
 * worth of READs completes, from the first post for the first group. 0, or
 * -errno with why: an error completion (-EIO), a failed post, or no
 * completion for rr->timeout_ns (-ETIMEDOUT). After an error the window is
 * unusable; close the QP.
 */
static int
reads_run(struct rdma_reads *rr, unsigned int n, unsigned int r, struct series *s, uint64_t *total,
	  char *why, size_t len)
{
	const uint64_t end = rr->posted + n;
	uint64_t group_end, deadline, tg;
	int rc;

	if (rr->posted != rr->done) {
		set_why(why, len, "the READ window was left with %llu READs in flight",
			(unsigned long long)(rr->posted - rr->done));
		return -EINVAL;
	}
	group_end = rr->done + (n < rr->window ? n : rr->window);
	deadline = now_ns() + rr->timeout_ns;
	tg = ticks();
	while (rr->done < end) {
		uint64_t room = rr->window - (rr->posted - rr->done);
		uint64_t want = end - rr->posted < room ? end - rr->posted : room;
		struct ibv_wc wc[RDMA_POLL_MAX];
		int got, i;

		if (want > 0) {
			rc = reads_post(rr, (unsigned int)want, why, len);
			if (rc != 0) {
				return rc;
			}
		}
		got = ibv_poll_cq(rr->cq, RDMA_POLL_MAX, wc);
		if (got < 0) {
			set_why(why, len, "ibv_poll_cq failed (%d)", got);
			return -EIO;
		}
		if (got == 0) {
			if (now_ns() > deadline) {
				set_why(why, len,
					"no READ completed in %llu ms (%llu of %u in flight)",
					(unsigned long long)(rr->timeout_ns / 1000000ULL),
					(unsigned long long)(rr->posted - rr->done), n);
				return -ETIMEDOUT;
			}
			continue;
		}
		for (i = 0; i < got; i++) {
			rc = reads_complete(rr, &wc[i], why, len);
			if (rc != 0) {
				return rc;
			}
			if (rr->done == group_end) {
				uint64_t t = ticks() - tg;

				series_time(s, r, t, total);
				tg += t;
				group_end =
					end - group_end < rr->window ? end : group_end + rr->window;
			}
		}
		deadline = now_ns() + rr->timeout_ns;
	}
	return 0;
}

/*
 * The bytes of the last n READs that still sit where they landed (the last
 * lpages of them at most) are the server's pattern at the right offsets.
 * 0, or -EIO with why.
 */
static int
reads_check(const struct rdma_reads *rr, unsigned int n, uint64_t seed, char *why, size_t len)
{
	uint64_t m = n < rr->lpages ? n : rr->lpages, seq;

	for (seq = rr->done - m; seq < rr->done; seq++) {
		const uint8_t *p = read_local(rr, seq);

		if (!pattern_ok(p, rr->size, seed, read_remote_off(rr, seq))) {
			set_why(why, len,
				"READ %llu: the bytes at local offset %zu differ from the server's "
				"at offset %llu",
				(unsigned long long)seq, (size_t)(p - rr->lbase),
				(unsigned long long)read_remote_off(rr, seq));
			return -EIO;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------- the two processes */

static int
msg_send(int fd, const struct rdma_msg *m)
{
	size_t off = 0;

	while (off < sizeof(*m)) {
		ssize_t k = write(fd, (const char *)m + off, sizeof(*m) - off);

		if (k < 0 && errno == EINTR) {
			continue;
		}
		if (k <= 0) {
			return k < 0 ? -errno_or(EIO) : -EPIPE;
		}
		off += (size_t)k;
	}
	return 0;
}

/* One message within ms: 0, -ETIMEDOUT, or -EPIPE (the other process is gone). */
static int
msg_recv(int fd, struct rdma_msg *m, int ms)
{
	uint64_t deadline = now_ns() + (uint64_t)ms * 1000000ULL;
	size_t off = 0;

	memset(m, 0, sizeof(*m));
	while (off < sizeof(*m)) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		uint64_t now = now_ns();
		ssize_t k;
		int rc;

		if (now >= deadline) {
			return -ETIMEDOUT;
		}
		rc = poll(&pf, 1, (int)((deadline - now) / 1000000ULL) + 1);
		if (rc < 0 && errno != EINTR) {
			return -errno_or(EIO);
		}
		if (rc <= 0) {
			continue;
		}
		k = read(fd, (char *)m + off, sizeof(*m) - off);
		if (k < 0 && errno == EINTR) {
			continue;
		}
		if (k <= 0) {
			return -EPIPE;
		}
		off += (size_t)k;
	}
	m->why[sizeof(m->why) - 1] = 0;
	return 0;
}

/* Send err with why as this side's record (the peer then stops too). */
static void
msg_fail(int fd, int err, const char *why)
{
	struct rdma_msg m;

	memset(&m, 0, sizeof(m));
	m.err = err;
	snprintf(m.why, sizeof(m.why), "%s", why);
	(void)msg_send(fd, &m);
}

size_t
rdma_remote_len(size_t size, unsigned int pages)
{
	size_t len = size * pages;

	if (len > RDMA_REMOTE_MAX) {
		len = RDMA_REMOTE_MAX;
	}
	len -= len % size;
	return len < size ? size : len;
}

static void *
map_populated(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

int
rdma_serve(int sock, const struct rdma_where *w, size_t len, char *why, size_t wlen)
{
	struct rdma_ep *ep = NULL;
	struct rdma_msg me, peer;
	uint8_t *buf = map_populated(len);
	int rc = 0;

	if (buf == NULL) {
		rc = -errno_or(ENOMEM);
		set_why(why, wlen, "serving side: mmap of %zu bytes: %s", len, strerror(-rc));
		msg_fail(sock, rc, why);
		return rc;
	}
	pattern_fill(buf, len, RDMA_SEED);
	/* It never posts: the QP needs one send WR only to exist. */
	ep = ep_open(w, buf, len, IBV_ACCESS_REMOTE_READ, 1, IBV_ACCESS_REMOTE_READ, &rc, why,
		     wlen);
	if (ep == NULL) {
		msg_fail(sock, rc, why);
		goto out;
	}
	ep_msg(ep, &me);
	me.addr = (uint64_t)(uintptr_t)buf;
	me.len = len;
	rc = msg_send(sock, &me);
	if (rc == 0) {
		rc = msg_recv(sock, &peer, HANDSHAKE_MS);
	}
	if (rc != 0) {
		set_why(why, wlen, "serving side: no QP record from the reader: %s", strerror(-rc));
		goto out;
	}
	if (peer.err != 0) {
		rc = peer.err;
		set_why(why, wlen, "%s", peer.why);
		goto out;
	}
	rc = ep_connect(ep, &peer, why, wlen);
	if (rc != 0) {
		msg_fail(sock, rc, why);
		goto out;
	}
	memset(&me, 0, sizeof(me)); /* ready */
	rc = msg_send(sock, &me);
	/* The NIC answers the READs; this process only waits for the reader's "done". */
	if (rc == 0) {
		rc = msg_recv(sock, &peer, SERVE_MS);
		rc = rc == -EPIPE ? 0 : rc;
	}
out:
	ep_close(ep);
	munmap(buf, len);
	return rc;
}

/* The reader's landing area: as the GET's rotating destinations, at least 64 MiB. */
static size_t
local_len(size_t size, unsigned int batch)
{
	size_t blen = size * batch;
	size_t len = blen > RDMA_LOCAL_MIN / 2 ? 2 * blen : RDMA_LOCAL_MIN;

	return len - len % size;
}

int
rdma_read_bench(int sock, const struct rdma_where *w, size_t size, unsigned int batch,
		unsigned int pages, unsigned int reps, struct series *s, char *why, size_t wlen)
{
	struct rdma_ep *ep;
	struct rdma_reads rr;
	struct rdma_msg me, peer;
	size_t llen = local_len(size, batch);
	uint8_t *buf;
	unsigned int r;
	int rc = 0;

	memset(&rr, 0, sizeof(rr));
	if (pages < batch) {
		pages = batch;
	}
	rc = msg_recv(sock, &peer, HANDSHAKE_MS);
	if (rc != 0) {
		set_why(why, wlen, "no QP record from the serving process: %s", strerror(-rc));
		return rc;
	}
	if (peer.err != 0) {
		set_why(why, wlen, "serving side: %s", peer.why);
		return peer.err;
	}
	buf = map_populated(llen);
	if (buf == NULL) {
		rc = -errno_or(ENOMEM);
		set_why(why, wlen, "mmap of %zu bytes: %s", llen, strerror(-rc));
		msg_fail(sock, rc, why);
		return rc;
	}
	ep = ep_open(w, buf, llen, IBV_ACCESS_LOCAL_WRITE, batch, 0, &rc, why, wlen);
	if (ep == NULL) {
		msg_fail(sock, rc, why);
		goto out;
	}
	rc = reads_init(&rr, ep, buf, llen, peer.addr, (size_t)peer.len, peer.rkey, size, batch);
	if (rc != 0) {
		set_why(why, wlen, "READ window of %u x %zu B over %llu served bytes: %s", batch,
			size, (unsigned long long)peer.len, strerror(-rc));
		msg_fail(sock, rc, why);
		goto out;
	}
	ep_msg(ep, &me);
	me.addr = (uint64_t)(uintptr_t)buf;
	me.len = llen;
	rc = msg_send(sock, &me);
	if (rc == 0) {
		rc = ep_connect(ep, &peer, why, wlen);
		if (rc != 0) {
			msg_fail(sock, rc, why);
			goto out;
		}
	}
	/* The server's QP must be at RTR before a READ reaches it. */
	if (rc == 0) {
		rc = msg_recv(sock, &peer, HANDSHAKE_MS);
	}
	if (rc != 0) {
		set_why(why, wlen, "handshake with the serving process: %s", strerror(-rc));
		goto out;
	}
	if (peer.err != 0) {
		rc = peer.err;
		set_why(why, wlen, "serving side: %s", peer.why);
		goto out;
	}
	for (r = 0; r <= reps && rc == 0; r++) {
		uint64_t total = 0;

		/* Stale bytes from the previous repetition must not pass the check. */
		memset(buf, 0, llen);
		rc = reads_run(&rr, pages, r, s, &total, why, wlen);
		if (rc == 0) {
			rc = reads_check(&rr, pages, RDMA_SEED, why, wlen);
		}
		if (rc == 0 && r > 0) {
			series_rep(s, (double)pages * (double)size / ticks_to_ns(total));
		}
	}
	memset(&me, 0, sizeof(me)); /* done */
	(void)msg_send(sock, &me);
out:
	reads_fini(&rr);
	ep_close(ep);
	munmap(buf, llen);
	return rc;
}
