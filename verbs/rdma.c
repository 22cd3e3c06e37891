/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The rdma transport. See rdma.h for the model; the points that matter:
 *  - each channel is one RC QP with its own CQ; every READ is signaled and
 *    an RC send queue completes in order, so a channel's in-flight READs
 *    are a FIFO ring and a CQE completes the oldest one (wr_id, on the
 *    ibv_poll_cq path, must match it);
 *  - a burst is one WR chain and one ibv_post_send per channel per call;
 *  - an error CQE, a failed post or a passed deadline kills the channel:
 *    the QP goes to ERR and is destroyed at once, the channel becomes DEAD
 *    and only delivers the statuses of the READs it held, then is freed.
 *    DEAD channels are off their peer's list, so nothing is posted on them.
 */
#include "rdma.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <infiniband/mlx5dv.h>
#include <infiniband/verbs.h>

#include "mlx5_cq.h"
#include "pc_common.h"
#include "pc_log.h"

#define RING_MASK (PC_RDMA_DEPTH_MAX - 1u)

/* The original's connection parameters (reference summary, RDMA data plane). */
#define QP_MIN_RNR_TIMER 12
#define QP_TIMEOUT       14
#define QP_RETRY_CNT     7
#define QP_RNR_RETRY     7
#define QP_HOP_LIMIT     1

struct pc_rdma_dev {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_mr *mr;
	uint8_t port;
	int gid_index;
	bool dv; /* mlx5: CQs are polled directly */
	uint8_t mtu;
	uint16_t lid;
	union ibv_gid gid;
	unsigned int depth; /* READs in flight per QP: max_qp_rd_atom, capped */
	uint64_t incarnation;
	uint8_t *seg_base;
	uint64_t seg_size;
	char name[64];
};

enum chan_state {
	CHAN_INIT,  /* QP in INIT, waiting for the peer's record */
	CHAN_READY, /* RTS: takes READs */
	CHAN_DEAD,  /* QP destroyed: delivers its READs' statuses, then freed */
};

struct rdma_op {
	uint64_t cookie;
	uint64_t deadline_ns;
	uint32_t len;
	int status; /* DEAD channels: what the READ completes with */
};

struct rdma_chan {
	uint64_t id;
	enum chan_state state;
	unsigned int peer; /* index in x->peers; unused once DEAD */
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	uint32_t psn;
	uint32_t rkey;  /* the peer's segment registration, from its handshake record */
	uint64_t rbase; /* the peer's segment address, likewise */
	bool dv;
	struct pc_mlx5_cq mcq;
	unsigned int depth;
	uint32_t head, tail; /* free running: ops[head & RING_MASK] is the oldest */
	struct rdma_op ops[PC_RDMA_DEPTH_MAX];
};

struct rdma_peer {
	char node_id[PC_RDMA_NODE_ID_MAX];
	uint64_t incarnation;
	unsigned int n_init; /* channels being connected */
	unsigned int n;      /* channels INIT or READY */
	uint16_t slots[PC_RDMA_PEER_CHANNELS_MAX];
};

struct pc_xport {
	struct pc_rdma_dev *dev;
	uint8_t *seg_base; /* where READs land: inside dev's registration */
	uint64_t seg_size;
	uint64_t op_timeout_ns;
	unsigned int max_per_peer;
	pc_rdma_connect_cb connect_cb;
	void *connect_arg;
	uint64_t next_gen;
	uint64_t rand_state;
	struct rdma_peer *peers;
	unsigned int n_peers, cap_peers;
	unsigned int n_dead;
	unsigned int n_slots; /* chans[n_slots..] are all NULL */
	struct pc_xport_stats st;
	struct rdma_chan *chans[PC_RDMA_CHANNELS_MAX];
};

static struct pc_rdma_dev *g_rdma_dev;

static void PC_PRINTF(3, 4) set_why(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || len == 0) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

/*
 * Open the device to use (by name, or the first with ib_port ACTIVE) and
 * query its port. Returns the context, or NULL with *err and why set.
 */
static struct ibv_context *
dev_pick(const char *name, int ib_port, struct ibv_port_attr *pa, char *devname, size_t dn_len,
	 char *why, size_t len, int *err)
{
	struct ibv_device **list;
	struct ibv_context *found = NULL;
	int n = 0;
	bool any = name == NULL || name[0] == '\0';
	bool tried = false;

	*err = -ENODEV;
	if (ib_port < 1 || ib_port > 255) {
		set_why(why, len, "ib_port %d is not in 1..255", ib_port);
		*err = -EINVAL;
		return NULL;
	}
	list = ibv_get_device_list(&n);
	if (list == NULL || n <= 0) {
		set_why(why, len, "no RDMA device (ibv_get_device_list: %s)",
			list == NULL ? strerror(errno) : "none found");
		if (list != NULL) {
			ibv_free_device_list(list);
		}
		return NULL;
	}
	set_why(why, len, "no RDMA device has port %d ACTIVE", ib_port);
	for (int i = 0; i < n && found == NULL; i++) {
		const char *dn = ibv_get_device_name(list[i]);
		struct ibv_context *ctx;

		if (!any && (dn == NULL || strcmp(dn, name) != 0)) {
			continue;
		}
		tried = true;
		ctx = ibv_open_device(list[i]);
		if (ctx == NULL) {
			set_why(why, len, "%s: ibv_open_device failed (errno %d)", dn, errno);
		} else if (ibv_query_port(ctx, (uint8_t)ib_port, pa) != 0) {
			set_why(why, len, "%s: ibv_query_port failed on port %d", dn, ib_port);
			ibv_close_device(ctx);
		} else if (pa->state != IBV_PORT_ACTIVE) {
			set_why(why, len, "%s: port %d is not ACTIVE", dn, ib_port);
			ibv_close_device(ctx);
		} else {
			found = ctx;
			snprintf(devname, dn_len, "%s", dn != NULL ? dn : "?");
		}
		if (!any) {
			break;
		}
	}
	if (found == NULL && !any && !tried) {
		set_why(why, len, "RDMA device %s not found", name);
	}
	ibv_free_device_list(list);
	if (found != NULL) {
		*err = 0;
	}
	return found;
}

int
pc_rdma_probe(const char *device_name, int ib_port, char *why, size_t len)
{
	struct ibv_port_attr pa;
	char dn[64];
	int err;
	struct ibv_context *ctx =
		dev_pick(device_name, ib_port, &pa, dn, sizeof(dn), why, len, &err);

	if (ctx == NULL) {
		return -ENODEV;
	}
	ibv_close_device(ctx);
	if (why != NULL && len > 0) {
		why[0] = '\0';
	}
	return 0;
}

struct pc_rdma_dev *
pc_rdma_dev_open(const struct pc_rdma_dev_opts *o, void *seg_base, uint64_t seg_size)
{
	struct pc_rdma_dev *d;
	struct ibv_port_attr pa;
	struct ibv_device_attr da;
	char why[160];
	int err;

	if (o == NULL || seg_base == NULL || seg_size == 0 || o->gid_index < -1 ||
	    o->gid_index > 255) {
		PC_LOG(ERR, verbs, "rdma: bad device options or segment");
		errno = EINVAL;
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	d->ctx = dev_pick(o->device_name, o->ib_port, &pa, d->name, sizeof(d->name), why,
			  sizeof(why), &err);
	if (d->ctx == NULL) {
		PC_LOG(ERR, verbs, "rdma: %s", why);
		goto err_free;
	}
	d->port = (uint8_t)o->ib_port;
	d->gid_index = o->gid_index;
	d->lid = pa.lid;
	d->mtu = pa.active_mtu != 0 ? (uint8_t)pa.active_mtu : (uint8_t)IBV_MTU_1024;
	if (d->mtu < PC_QP_MTU_MIN || d->mtu > PC_QP_MTU_MAX) {
		d->mtu = IBV_MTU_1024;
	}
	if (pa.link_layer == IBV_LINK_LAYER_ETHERNET && o->gid_index < 0) {
		PC_LOG(ERR, verbs, "rdma: %s is RoCE: gid_index must be >= 0", d->name);
		err = -EINVAL;
		goto err_close;
	}
	if (o->gid_index >= 0 && ibv_query_gid(d->ctx, d->port, o->gid_index, &d->gid) != 0) {
		PC_LOG(ERR, verbs, "rdma: %s: no GID at index %d", d->name, o->gid_index);
		err = -EINVAL;
		goto err_close;
	}
	err = ibv_query_device(d->ctx, &da);
	if (err != 0) {
		PC_LOG(ERR, verbs, "rdma: %s: ibv_query_device: %s", d->name, strerror(err));
		err = -err;
		goto err_close;
	}
	d->depth = da.max_qp_rd_atom > 0
			   ? PC_MIN((unsigned int)da.max_qp_rd_atom, PC_RDMA_DEPTH_MAX)
			   : 1;
	d->dv = mlx5dv_is_supported(d->ctx->device);
	errno = 0;
	d->pd = ibv_alloc_pd(d->ctx);
	if (d->pd == NULL) {
		err = errno != 0 ? -errno : -ENOMEM;
		PC_LOG(ERR, verbs, "rdma: %s: ibv_alloc_pd: %s", d->name, strerror(-err));
		goto err_close;
	}
	/* Remote READ only: peers never write into this node's segment. */
	errno = 0;
	d->mr = ibv_reg_mr(d->pd, seg_base, seg_size,
			   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ);
	if (d->mr == NULL) {
		err = errno != 0 ? -errno : -ENOMEM;
		PC_LOG(ERR, verbs, "rdma: %s: ibv_reg_mr of %llu bytes: %s", d->name,
		       (unsigned long long)seg_size, strerror(-err));
		goto err_dealloc_pd;
	}
	d->seg_base = seg_base;
	d->seg_size = seg_size;
	d->incarnation = o->incarnation;
	g_rdma_dev = d;
	PC_LOG(INFO, verbs, "rdma: %s port %u, mtu %u, %u reads in flight per QP%s", d->name,
	       d->port, 128u << d->mtu, d->depth, d->dv ? ", mlx5 direct CQ polling" : "");
	return d;

err_dealloc_pd:
	ibv_dealloc_pd(d->pd);
err_close:
	ibv_close_device(d->ctx);
err_free:
	free(d);
	errno = -err;
	return NULL;
}

void
pc_rdma_dev_close(struct pc_rdma_dev *d)
{
	if (d == NULL) {
		return;
	}
	if (g_rdma_dev == d) {
		g_rdma_dev = NULL;
	}
	if (d->mr != NULL && ibv_dereg_mr(d->mr) != 0) {
		PC_LOG(WARNING, verbs, "rdma: %s: ibv_dereg_mr failed", d->name);
	}
	if (d->pd != NULL && ibv_dealloc_pd(d->pd) != 0) {
		PC_LOG(WARNING, verbs, "rdma: %s: ibv_dealloc_pd failed", d->name);
	}
	if (d->ctx != NULL) {
		ibv_close_device(d->ctx);
	}
	free(d);
}

uint32_t
pc_rdma_dev_rkey(const struct pc_rdma_dev *d)
{
	return d->mr->rkey;
}

uint64_t
pc_rdma_dev_seg_base(const struct pc_rdma_dev *d)
{
	return (uint64_t)(uintptr_t)d->seg_base;
}

/* ---- channels ---- */

static uint32_t
next_psn(struct pc_xport *x)
{
	/* xorshift64*: PSNs only need to differ between a QP's incarnations. */
	x->rand_state ^= x->rand_state >> 12;
	x->rand_state ^= x->rand_state << 25;
	x->rand_state ^= x->rand_state >> 27;
	return (uint32_t)((x->rand_state * 0x2545F4914F6CDD1Dull) >> 40) & PC_QP_24BIT_MAX;
}

static struct rdma_peer *
peer_find(const struct pc_xport *x, const char *node_id)
{
	for (unsigned int i = 0; i < x->n_peers; i++) {
		if (strcmp(x->peers[i].node_id, node_id) == 0) {
			return &x->peers[i];
		}
	}
	return NULL;
}

static void chan_kill(struct pc_xport *x, struct rdma_chan *ch, int first, int rest);

/* The peer entry for node_id at this incarnation; a new incarnation drops the old channels. */
static struct rdma_peer *
peer_get(struct pc_xport *x, const struct pc_xport_peer *peer)
{
	struct rdma_peer *p = peer_find(x, peer->node_id);

	if (p == NULL) {
		if (x->n_peers == x->cap_peers) {
			unsigned int cap = x->cap_peers == 0 ? 8 : x->cap_peers * 2;
			struct rdma_peer *np = realloc(x->peers, cap * sizeof(*np));

			if (np == NULL) {
				return NULL;
			}
			x->peers = np;
			x->cap_peers = cap;
		}
		p = &x->peers[x->n_peers++];
		memset(p, 0, sizeof(*p));
		snprintf(p->node_id, sizeof(p->node_id), "%s", peer->node_id);
		p->incarnation = peer->incarnation;
	}
	if (p->incarnation != peer->incarnation) {
		while (p->n > 0) {
			chan_kill(x, x->chans[p->slots[0]], -ECONNRESET, -ECONNRESET);
		}
		p->incarnation = peer->incarnation;
	}
	return p;
}

static void
peer_unlink(struct pc_xport *x, struct rdma_chan *ch, unsigned int slot)
{
	struct rdma_peer *p = &x->peers[ch->peer];

	for (unsigned int i = 0; i < p->n; i++) {
		if (p->slots[i] == slot) {
			p->slots[i] = p->slots[--p->n];
			break;
		}
	}
	if (ch->state == CHAN_INIT) {
		p->n_init--;
	}
}

static unsigned int
chan_slot(const struct rdma_chan *ch)
{
	return (unsigned int)(ch->id & 0xFFFFu);
}

static struct rdma_chan *
chan_lookup(const struct pc_xport *x, uint64_t id)
{
	unsigned int slot = (unsigned int)(id & 0xFFFFu);
	struct rdma_chan *ch;

	if (slot >= PC_RDMA_CHANNELS_MAX) {
		return NULL;
	}
	ch = x->chans[slot];
	return ch != NULL && ch->id == id && ch->state != CHAN_DEAD ? ch : NULL;
}

/* Tear down the verbs objects; accepts half-built channels, keeps going past errors. */
static void
chan_destroy_verbs(struct rdma_chan *ch)
{
	if (ch->qp != NULL) {
		struct ibv_qp_attr attr = {.qp_state = IBV_QPS_ERR};

		/* ERR first: the QP stops touching memory before it goes. */
		(void)ibv_modify_qp(ch->qp, &attr, IBV_QP_STATE);
		if (ibv_destroy_qp(ch->qp) != 0) {
			PC_LOG(WARNING, verbs, "rdma: ibv_destroy_qp failed");
		}
		ch->qp = NULL;
	}
	if (ch->cq != NULL) {
		if (ibv_destroy_cq(ch->cq) != 0) {
			PC_LOG(WARNING, verbs, "rdma: ibv_destroy_cq failed");
		}
		ch->cq = NULL;
	}
}

static void
chan_free(struct pc_xport *x, struct rdma_chan *ch)
{
	x->chans[chan_slot(ch)] = NULL;
	free(ch);
	while (x->n_slots > 0 && x->chans[x->n_slots - 1] == NULL) {
		x->n_slots--;
	}
}

/*
 * The channel is done: destroy its QP now, give the oldest READ `first`
 * and the others `rest`, and keep it (DEAD) until those are delivered.
 */
static void
chan_kill(struct pc_xport *x, struct rdma_chan *ch, int first, int rest)
{
	bool was_ready = ch->state == CHAN_READY;

	peer_unlink(x, ch, chan_slot(ch));
	chan_destroy_verbs(ch);
	for (uint32_t i = ch->head; i != ch->tail; i++) {
		ch->ops[i & RING_MASK].status = i == ch->head ? first : rest;
	}
	ch->state = CHAN_DEAD;
	x->st.channels_destroyed++;
	if (was_ready) {
		x->st.channels_open--;
	}
	if (ch->head == ch->tail) {
		chan_free(x, ch);
	} else {
		x->n_dead++;
	}
}

uint64_t
pc_rdma_chan_create(struct pc_xport *x, const struct pc_xport_peer *peer)
{
	struct pc_rdma_dev *d = x->dev;
	struct ibv_qp_init_attr qia = {0};
	struct ibv_qp_attr attr = {0};
	struct rdma_peer *p;
	struct rdma_chan *ch;
	unsigned int slot = 0;
	int err;

	if (peer == NULL || peer->node_id == NULL || peer->node_id[0] == '\0' ||
	    strlen(peer->node_id) >= PC_RDMA_NODE_ID_MAX) {
		errno = EINVAL;
		return 0;
	}
	p = peer_get(x, peer);
	if (p == NULL) {
		errno = ENOMEM;
		return 0;
	}
	while (slot < PC_RDMA_CHANNELS_MAX && x->chans[slot] != NULL) {
		slot++;
	}
	if (p->n >= x->max_per_peer || slot == PC_RDMA_CHANNELS_MAX) {
		errno = ENOSPC;
		return 0;
	}
	ch = calloc(1, sizeof(*ch));
	if (ch == NULL) {
		errno = ENOMEM;
		return 0;
	}
	ch->depth = d->depth;
	errno = 0;
	ch->cq = ibv_create_cq(d->ctx, (int)ch->depth, NULL, NULL, 0);
	if (ch->cq == NULL) {
		err = errno != 0 ? errno : ENOMEM;
		PC_LOG(ERR, verbs, "rdma: ibv_create_cq: %s", strerror(err));
		goto err_free;
	}
	qia.send_cq = ch->cq;
	qia.recv_cq = ch->cq;
	qia.qp_type = IBV_QPT_RC;
	qia.sq_sig_all = 0;
	qia.cap.max_send_wr = ch->depth;
	qia.cap.max_recv_wr = 1;
	qia.cap.max_send_sge = 1;
	qia.cap.max_recv_sge = 1;
	errno = 0;
	ch->qp = ibv_create_qp(d->pd, &qia);
	if (ch->qp == NULL) {
		err = errno != 0 ? errno : ENOMEM;
		PC_LOG(ERR, verbs, "rdma: ibv_create_qp: %s", strerror(err));
		goto err_destroy;
	}
	attr.qp_state = IBV_QPS_INIT;
	attr.pkey_index = 0;
	attr.port_num = d->port;
	attr.qp_access_flags = IBV_ACCESS_REMOTE_READ;
	err = ibv_modify_qp(ch->qp, &attr,
			    IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
	if (err != 0) {
		PC_LOG(ERR, verbs, "rdma: QP to INIT: %s", strerror(err));
		goto err_destroy;
	}
	ch->dv = d->dv && pc_mlx5_cq_open(&ch->mcq, ch->cq) == 0;
	ch->psn = next_psn(x);
	ch->state = CHAN_INIT;
	ch->peer = (unsigned int)(p - x->peers);
	ch->id = (++x->next_gen << 16) | slot;
	x->chans[slot] = ch;
	x->n_slots = PC_MAX(x->n_slots, slot + 1);
	p->slots[p->n++] = (uint16_t)slot;
	p->n_init++;
	return ch->id;

err_destroy:
	chan_destroy_verbs(ch);
err_free:
	free(ch);
	errno = err;
	return 0;
}

int
pc_rdma_chan_info(const struct pc_xport *x, uint64_t id, struct pc_qp_info *out)
{
	const struct pc_rdma_dev *d = x->dev;
	const struct rdma_chan *ch = chan_lookup(x, id);

	if (ch == NULL) {
		return -ENOENT;
	}
	memset(out, 0, sizeof(*out));
	out->qpn = ch->qp->qp_num & PC_QP_24BIT_MAX;
	out->psn = ch->psn;
	out->lid = d->lid;
	out->mtu = d->mtu;
	memcpy(out->gid, d->gid.raw, sizeof(out->gid));
	out->rkey = d->mr->rkey;
	out->seg_base = (uint64_t)(uintptr_t)d->seg_base;
	out->incarnation = d->incarnation;
	return 0;
}

int
pc_rdma_chan_connect(struct pc_xport *x, uint64_t id, const struct pc_qp_info *remote)
{
	struct pc_rdma_dev *d = x->dev;
	struct rdma_chan *ch = chan_lookup(x, id);
	struct ibv_qp_attr attr;
	int err;

	if (ch == NULL || ch->state != CHAN_INIT) {
		return -ENOENT;
	}
	if (remote->incarnation != x->peers[ch->peer].incarnation) {
		err = ESTALE;
		goto err_kill;
	}
	if (remote->mtu < PC_QP_MTU_MIN || remote->mtu > PC_QP_MTU_MAX ||
	    remote->qpn > PC_QP_24BIT_MAX || remote->psn > PC_QP_24BIT_MAX) {
		err = EINVAL;
		goto err_kill;
	}
	memset(&attr, 0, sizeof(attr));
	attr.qp_state = IBV_QPS_RTR;
	attr.path_mtu = (enum ibv_mtu)PC_MIN(d->mtu, remote->mtu);
	attr.dest_qp_num = remote->qpn;
	attr.rq_psn = remote->psn;
	attr.max_dest_rd_atomic = (uint8_t)d->depth;
	attr.min_rnr_timer = QP_MIN_RNR_TIMER;
	attr.ah_attr.dlid = remote->lid;
	attr.ah_attr.sl = 0;
	attr.ah_attr.src_path_bits = 0;
	attr.ah_attr.port_num = d->port;
	if (d->gid_index >= 0) {
		attr.ah_attr.is_global = 1;
		memcpy(attr.ah_attr.grh.dgid.raw, remote->gid, sizeof(remote->gid));
		attr.ah_attr.grh.sgid_index = (uint8_t)d->gid_index;
		attr.ah_attr.grh.hop_limit = QP_HOP_LIMIT;
		attr.ah_attr.grh.traffic_class = 0;
		attr.ah_attr.grh.flow_label = 0;
	}
	err = ibv_modify_qp(ch->qp, &attr,
			    IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
				    IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
				    IBV_QP_MIN_RNR_TIMER);
	if (err != 0) {
		PC_LOG(ERR, verbs, "rdma: QP to RTR: %s", strerror(err));
		goto err_kill;
	}
	memset(&attr, 0, sizeof(attr));
	attr.qp_state = IBV_QPS_RTS;
	attr.timeout = QP_TIMEOUT;
	attr.retry_cnt = QP_RETRY_CNT;
	attr.rnr_retry = QP_RNR_RETRY;
	attr.sq_psn = ch->psn;
	attr.max_rd_atomic = (uint8_t)ch->depth;
	err = ibv_modify_qp(ch->qp, &attr,
			    IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
				    IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
	if (err != 0) {
		PC_LOG(ERR, verbs, "rdma: QP to RTS: %s", strerror(err));
		goto err_kill;
	}
	ch->rkey = remote->rkey;
	ch->rbase = remote->seg_base;
	ch->state = CHAN_READY;
	x->peers[ch->peer].n_init--;
	x->st.channels_open++;
	x->st.channels_opened++;
	return 0;

err_kill:
	chan_kill(x, ch, -ECONNRESET, -ECONNRESET);
	return -err;
}

int
pc_rdma_chan_close(struct pc_xport *x, uint64_t id)
{
	struct rdma_chan *ch = chan_lookup(x, id);

	if (ch == NULL) {
		return -ENOENT;
	}
	chan_kill(x, ch, -ECONNRESET, -ECONNRESET);
	return 0;
}

unsigned int
pc_rdma_peer_channels(const struct pc_xport *x, const char *node_id, uint64_t incarnation)
{
	const struct rdma_peer *p = node_id != NULL ? peer_find(x, node_id) : NULL;

	if (p == NULL || p->incarnation != incarnation) {
		return 0;
	}
	return p->n - p->n_init;
}

void
pc_rdma_set_connect_cb(struct pc_xport *x, pc_rdma_connect_cb cb, void *arg)
{
	x->connect_cb = cb;
	x->connect_arg = arg;
}

/* ---- the transport ---- */

struct pc_xport *
pc_rdma_create(const struct pc_xport_opts *opts, struct pc_rdma_dev *d)
{
	struct pc_xport *x;
	uintptr_t base, reg;
	struct timespec ts;

	if (opts == NULL || d == NULL) {
		PC_LOG(ERR, verbs, "rdma: no device open (pc_rdma_dev_open)");
		errno = opts == NULL ? EINVAL : ENODEV;
		return NULL;
	}
	base = (uintptr_t)opts->seg_base;
	reg = (uintptr_t)d->seg_base;
	if (base == 0 || opts->seg_size == 0 || base < reg || base - reg > d->seg_size ||
	    opts->seg_size > d->seg_size - (base - reg)) {
		PC_LOG(ERR, verbs, "rdma: the segment is not inside the registered one");
		errno = EINVAL;
		return NULL;
	}
	x = calloc(1, sizeof(*x));
	if (x == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	x->dev = d;
	x->seg_base = opts->seg_base;
	x->seg_size = opts->seg_size;
	x->op_timeout_ns =
		opts->op_timeout_ns != 0 ? opts->op_timeout_ns : PC_XPORT_OP_TIMEOUT_DEFAULT;
	x->max_per_peer = opts->max_channels_per_peer != 0 ? opts->max_channels_per_peer
							   : PC_XPORT_CHANNELS_DEFAULT;
	x->max_per_peer = PC_MIN(x->max_per_peer, PC_RDMA_PEER_CHANNELS_MAX);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	x->rand_state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uintptr_t)x;
	if (x->rand_state == 0) {
		x->rand_state = 0x9E3779B97F4A7C15ull;
	}
	return x;
}

static struct pc_xport *
rdma_create(const struct pc_xport_opts *opts)
{
	return pc_rdma_create(opts, g_rdma_dev);
}

static void
rdma_destroy(struct pc_xport *x)
{
	if (x == NULL) {
		return;
	}
	for (unsigned int i = 0; i < x->n_slots; i++) {
		struct rdma_chan *ch = x->chans[i];

		if (ch == NULL) {
			continue;
		}
		if (ch->state != CHAN_DEAD) {
			chan_destroy_verbs(ch);
		}
		/* Nothing is delivered after destroy: each READ still held counts as cancelled. */
		x->st.reads_failed += ch->tail - ch->head;
		free(ch);
	}
	free(x->peers);
	free(x);
}

/* Post up to n READs on ch as one WR chain (one doorbell). Returns how many were taken. */
static unsigned int
chan_post(struct pc_xport *x, struct rdma_chan *ch, const struct pc_xport_read *reads,
	  unsigned int n, uint64_t deadline_ns)
{
	struct ibv_send_wr wr[PC_RDMA_DEPTH_MAX];
	struct ibv_sge sge[PC_RDMA_DEPTH_MAX];
	struct ibv_send_wr *bad = NULL;
	unsigned int room = ch->depth - (ch->tail - ch->head);
	unsigned int k = PC_MIN(room, n);
	unsigned int posted;
	int rc;

	if (k == 0) {
		return 0;
	}
	for (unsigned int i = 0; i < k; i++) {
		uint32_t idx = (ch->tail + i) & RING_MASK;
		struct rdma_op *op = &ch->ops[idx];

		op->cookie = reads[i].cookie;
		op->deadline_ns = deadline_ns;
		op->len = reads[i].len;
		op->status = 0;
		sge[i].addr = (uint64_t)(uintptr_t)(x->seg_base + reads[i].local_off);
		sge[i].length = reads[i].len;
		sge[i].lkey = x->dev->mr->lkey;
		memset(&wr[i], 0, sizeof(wr[i]));
		wr[i].wr_id = idx;
		wr[i].next = i + 1 < k ? &wr[i + 1] : NULL;
		wr[i].sg_list = &sge[i];
		wr[i].num_sge = 1;
		wr[i].opcode = IBV_WR_RDMA_READ;
		wr[i].send_flags = IBV_SEND_SIGNALED;
		wr[i].wr.rdma.remote_addr = ch->rbase + reads[i].remote_off;
		wr[i].wr.rdma.rkey = ch->rkey;
	}
	rc = ibv_post_send(ch->qp, wr, &bad);
	if (rc == 0) {
		ch->tail += k;
		x->st.reads_posted += k;
		return k;
	}
	/* The WRs before bad went out; they complete (with an error) as the channel dies. */
	posted = bad != NULL && bad >= wr && bad < wr + k ? (unsigned int)(bad - wr) : 0;
	PC_LOG(WARNING, verbs, "rdma: ibv_post_send: %s: channel destroyed", strerror(rc));
	ch->tail += posted;
	x->st.reads_posted += posted;
	chan_kill(x, ch, -ECONNRESET, -ECONNRESET);
	return posted;
}

static int
rdma_post_reads(struct pc_xport *x, const struct pc_xport_peer *peer,
		const struct pc_xport_read *reads, unsigned int n, uint64_t deadline_ns,
		uint64_t now_ns)
{
	struct rdma_peer *p;
	unsigned int taken = 0;

	if (x == NULL || peer == NULL || peer->node_id == NULL || peer->node_id[0] == '\0' ||
	    strlen(peer->node_id) >= PC_RDMA_NODE_ID_MAX || (reads == NULL && n > 0)) {
		return -EINVAL;
	}
	for (unsigned int i = 0; i < n; i++) {
		const struct pc_xport_read *r = &reads[i];

		if (r->len == 0 || r->local_off > x->seg_size ||
		    r->len > x->seg_size - r->local_off || r->remote_off > UINT64_MAX - r->len) {
			return -EINVAL;
		}
	}
	if (n == 0) {
		return 0;
	}
	if (deadline_ns == 0) {
		deadline_ns = now_ns + x->op_timeout_ns;
	}
	p = peer_get(x, peer);
	if (p == NULL) {
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < p->n && taken < n;) {
		struct rdma_chan *ch = x->chans[p->slots[i]];
		unsigned int before = p->n;

		if (ch->state == CHAN_READY) {
			taken += chan_post(x, ch, reads + taken, n - taken, deadline_ns);
		}
		if (p->n == before) {
			i++; /* else the channel died and another took its place in the list */
		}
	}
	if (taken < n && p->n_init == 0 && p->n < x->max_per_peer && x->connect_cb != NULL) {
		x->connect_cb(x->connect_arg, peer);
	}
	return (int)taken;
}

/* Hand out a finished READ. */
static void
deliver(struct pc_xport *x, const struct rdma_op *op, struct pc_xport_cqe *out)
{
	out->cookie = op->cookie;
	out->status = op->status;
	if (op->status == 0) {
		x->st.reads_ok++;
		x->st.bytes_read += op->len;
	} else {
		x->st.reads_failed++;
		if (op->status == -ETIMEDOUT) {
			x->st.timeouts++;
		}
	}
}

/* Statuses of the READs a dead channel held; frees it once all are out. */
static unsigned int
drain_dead(struct pc_xport *x, struct rdma_chan *ch, struct pc_xport_cqe *out, unsigned int max)
{
	unsigned int k = 0;

	while (ch->head != ch->tail && k < max) {
		deliver(x, &ch->ops[ch->head & RING_MASK], &out[k++]);
		ch->head++;
	}
	if (ch->head == ch->tail) {
		x->n_dead--;
		chan_free(x, ch);
	}
	return k;
}

static int
wc_status_errno(enum ibv_wc_status s)
{
	switch (s) {
	case IBV_WC_REM_ACCESS_ERR:
	case IBV_WC_REM_INV_REQ_ERR:
		return -EINVAL; /* the owner refused the range or key */
	case IBV_WC_RETRY_EXC_ERR:
	case IBV_WC_RNR_RETRY_EXC_ERR:
		return -EHOSTUNREACH;
	default:
		return -ECONNRESET;
	}
}

static int
syndrome_errno(uint8_t syndrome)
{
	switch (syndrome) {
	case MLX5_CQE_SYNDROME_REMOTE_ACCESS_ERR:
	case MLX5_CQE_SYNDROME_REMOTE_INVAL_REQ_ERR:
		return -EINVAL;
	case MLX5_CQE_SYNDROME_TRANSPORT_RETRY_EXC_ERR:
	case MLX5_CQE_SYNDROME_RNR_RETRY_EXC_ERR:
		return -EHOSTUNREACH;
	default:
		return -ECONNRESET;
	}
}

/* Cold: an error CQE (or one we cannot place) kills the channel. */
static __attribute__((cold, noinline)) void
chan_error(struct pc_xport *x, struct rdma_chan *ch, int status, unsigned int syndrome)
{
	PC_LOG(WARNING, verbs,
	       "rdma: channel to %s: completion error (status %d, syndrome 0x%x):"
	       " destroyed",
	       x->peers[ch->peer].node_id, status, syndrome);
	chan_kill(x, ch, status, -ECONNRESET);
}

/* Reap up to max CQEs of a READY channel. Returns how many READs were delivered. */
static unsigned int
chan_reap(struct pc_xport *x, struct rdma_chan *ch, struct pc_xport_cqe *out, unsigned int max)
{
	unsigned int k = 0;

	if (ch->dv) {
		struct pc_mlx5_cqe_res res;
		enum pc_mlx5_cqe_kind kind = PC_MLX5_CQE_EMPTY;
		unsigned int consumed = 0;

		while (k < max) {
			kind = pc_mlx5_cq_next(&ch->mcq, &res);
			if (kind == PC_MLX5_CQE_EMPTY) {
				break;
			}
			consumed++;
			if (kind != PC_MLX5_CQE_OK || ch->head == ch->tail) {
				break;
			}
			deliver(x, &ch->ops[ch->head & RING_MASK], &out[k++]);
			ch->head++;
			kind = PC_MLX5_CQE_EMPTY;
		}
		if (consumed > 0) {
			pc_mlx5_cq_commit(&ch->mcq);
		}
		if (kind == PC_MLX5_CQE_OK) {
			chan_error(x, ch, -ECONNRESET, 0); /* a completion with nothing in flight */
		} else if (kind != PC_MLX5_CQE_EMPTY) {
			chan_error(x, ch,
				   kind == PC_MLX5_CQE_FLUSH ? -ECONNRESET
							     : syndrome_errno(res.syndrome),
				   res.syndrome);
		}
		return k;
	}
	while (k < max) {
		struct ibv_wc wc[16];
		int got = ibv_poll_cq(ch->cq, (int)PC_MIN(max - k, PC_ARRAY_SIZE(wc)), wc);

		if (got < 0) {
			chan_error(x, ch, -ECONNRESET, 0);
			return k;
		}
		for (int i = 0; i < got; i++) {
			if (ch->head == ch->tail || wc[i].wr_id != (ch->head & RING_MASK)) {
				chan_error(x, ch, -ECONNRESET, 0);
				return k;
			}
			if (wc[i].status != IBV_WC_SUCCESS) {
				chan_error(x, ch, wc_status_errno(wc[i].status), wc[i].vendor_err);
				return k;
			}
			deliver(x, &ch->ops[ch->head & RING_MASK], &out[k++]);
			ch->head++;
		}
		if (got < (int)PC_ARRAY_SIZE(wc)) {
			break;
		}
	}
	return k;
}

/* Whether a READ in flight on ch is past its deadline. */
static bool
chan_expired(const struct rdma_chan *ch, uint64_t now_ns)
{
	for (uint32_t i = ch->head; i != ch->tail; i++) {
		if (ch->ops[i & RING_MASK].deadline_ns <= now_ns) {
			return true;
		}
	}
	return false;
}

static int
rdma_poll(struct pc_xport *x, uint64_t now_ns, struct pc_xport_cqe *out, unsigned int max)
{
	unsigned int k = 0;

	if (x == NULL || (out == NULL && max > 0)) {
		return 0;
	}
	for (unsigned int i = 0; i < x->n_slots && k < max; i++) {
		struct rdma_chan *ch = x->chans[i];

		if (ch == NULL) {
			continue;
		}
		if (ch->state == CHAN_READY && ch->head != ch->tail) {
			k += chan_reap(x, ch, out + k, max - k);
			ch = x->chans[i]; /* an error may have killed (and freed) it */
			if (ch != NULL && ch->state == CHAN_READY && chan_expired(ch, now_ns)) {
				PC_LOG(WARNING, verbs,
				       "rdma: channel to %s: a READ passed its"
				       " deadline: destroyed",
				       x->peers[ch->peer].node_id);
				chan_kill(x, ch, -ETIMEDOUT, -ETIMEDOUT);
				ch = x->chans[i];
			}
		}
		if (ch != NULL && ch->state == CHAN_DEAD && k < max) {
			k += drain_dead(x, ch, out + k, max - k);
		}
	}
	return (int)k;
}

static uint16_t
rdma_port(const struct pc_xport *x)
{
	(void)x;
	return 0; /* no data port: READs go QP to QP */
}

static void
rdma_get_stats(const struct pc_xport *x, struct pc_xport_stats *st)
{
	*st = x->st;
}

/* The CQs are polled (mlx5dv), without a completion channel: no fd to sleep on. */
static int
rdma_wait_fd(const struct pc_xport *x)
{
	(void)x;
	return -1;
}

const struct pc_xport_ops pc_xport_rdma = {
	.name = "rdma",
	.create = rdma_create,
	.destroy = rdma_destroy,
	.post_reads = rdma_post_reads,
	.poll = rdma_poll,
	.port = rdma_port,
	.get_stats = rdma_get_stats,
	.wait_fd = rdma_wait_fd,
};
