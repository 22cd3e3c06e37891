/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Directory lookups from any lcore (dirq.h): a request travels to the
 * control lcore and back as one message each way.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "dirq.h"
#include "pc_common.h"
#include "pc_log.h"

struct dirq_req {
	struct pc_dirq *q;
	struct pc_lcore *origin;
	pc_cluster_lookup_fn cb;
	void *arg;
	uint64_t timeout_ns;
	unsigned int n;
	STAILQ_ENTRY(dirq_req) link; /* control lcore: waiting for room in origin's ring */
	struct pc_dir_key *keys;     /* point into bytes */
	struct pc_cluster_lookup_result *res;
	uint8_t *bytes;
};

STAILQ_HEAD(dirq_list, dirq_req);

struct pc_dirq {
	struct pc_runtime *rt;
	struct pc_lcore *control;
	struct pc_cluster *cluster;
	struct pc_poller *poller;
	struct dirq_list waiting; /* control lcore only */
	uint64_t requests;        /* atomic: any lcore */
	uint64_t keys;            /* atomic */
	uint64_t refused;         /* control lcore */
	uint64_t reply_retries;   /* control lcore */
};

static void
req_free(struct dirq_req *r)
{
	free(r->keys);
	free(r->res);
	free(r->bytes);
	free(r);
}

/* On the asking lcore: hand the results over. */
static void
deliver(void *arg)
{
	struct dirq_req *r = arg;

	r->cb(r->arg, r->res, r->n);
	req_free(r);
}

/* Control lcore: send the results home, or keep them until the ring has room. */
static void
reply(struct dirq_req *r)
{
	if (pc_lcore_send(r->origin, deliver, r) != 0) {
		r->q->reply_retries++;
		STAILQ_INSERT_TAIL(&r->q->waiting, r, link);
	}
}

static void
lookup_done(void *arg, const struct pc_cluster_lookup_result *res, unsigned int n)
{
	struct dirq_req *r = arg;

	memcpy(r->res, res, PC_MIN(n, r->n) * sizeof(*res));
	reply(r);
}

/* Control lcore: the request arrived. */
static void
start(void *arg)
{
	struct dirq_req *r = arg;
	int rc = pc_cluster_lookup(r->q->cluster, r->keys, r->n, r->timeout_ns, lookup_done, r);

	if (rc != 0) {
		r->q->refused++;
		for (unsigned int i = 0; i < r->n; i++) {
			r->res[i].status = rc;
		}
		reply(r);
	}
}

static int
retry_poll(void *arg, uint64_t now_tsc)
{
	struct pc_dirq *q = arg;
	int work = 0;

	(void)now_tsc;
	while (!STAILQ_EMPTY(&q->waiting)) {
		struct dirq_req *r = STAILQ_FIRST(&q->waiting);

		if (pc_lcore_send(r->origin, deliver, r) != 0) {
			break;
		}
		STAILQ_REMOVE_HEAD(&q->waiting, link);
		work++;
	}
	return work;
}

struct pc_dirq *
pc_dirq_create(struct pc_runtime *rt, struct pc_cluster *cluster)
{
	struct pc_dirq *q = calloc(1, sizeof(*q));

	if (q == NULL) {
		PC_LOG(ERR, engine, "no memory for directory lookups");
		return NULL;
	}
	q->rt = rt;
	q->control = pc_runtime_control(rt);
	q->cluster = cluster;
	STAILQ_INIT(&q->waiting);
	q->poller = pc_lcore_poller_register(q->control, "dirq", retry_poll, q);
	if (q->poller == NULL) {
		PC_LOG(ERR, engine, "no memory for directory lookups");
		free(q);
		return NULL;
	}
	return q;
}

void
pc_dirq_destroy(struct pc_dirq *q)
{
	if (q == NULL) {
		return;
	}
	/* The lcores have stopped: replies nobody will take are dropped. */
	while (!STAILQ_EMPTY(&q->waiting)) {
		struct dirq_req *r = STAILQ_FIRST(&q->waiting);

		STAILQ_REMOVE_HEAD(&q->waiting, link);
		req_free(r);
	}
	pc_lcore_poller_unregister(q->control, q->poller);
	free(q);
}

int
pc_dirq_lookup(struct pc_dirq *q, struct pc_lcore *self, const struct pc_dir_key *keys,
	       unsigned int n, uint64_t timeout_ns, pc_cluster_lookup_fn cb, void *arg)
{
	struct dirq_req *r;
	size_t total = 0;
	size_t at = 0;
	int rc;

	if (q == NULL || self == NULL || keys == NULL || cb == NULL || n == 0 ||
	    n > PC_CLUSTER_LOOKUP_MAX) {
		return -EINVAL;
	}
	for (unsigned int i = 0; i < n; i++) {
		if (keys[i].bytes == NULL || keys[i].len == 0 || keys[i].len > PC_DIR_KEY_MAX) {
			return -EINVAL;
		}
		total += keys[i].len;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		return -ENOMEM;
	}
	r->keys = calloc(n, sizeof(*r->keys));
	r->res = calloc(n, sizeof(*r->res));
	r->bytes = malloc(total);
	if (r->keys == NULL || r->res == NULL || r->bytes == NULL) {
		req_free(r);
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < n; i++) {
		memcpy(r->bytes + at, keys[i].bytes, keys[i].len);
		r->keys[i] = (struct pc_dir_key){.bytes = r->bytes + at, .len = keys[i].len};
		at += keys[i].len;
	}
	r->q = q;
	r->origin = self;
	r->cb = cb;
	r->arg = arg;
	r->n = n;
	r->timeout_ns = timeout_ns;
	rc = pc_lcore_send(q->control, start, r);
	if (rc != 0) {
		req_free(r);
		return rc;
	}
	__atomic_fetch_add(&q->requests, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&q->keys, n, __ATOMIC_RELAXED);
	return 0;
}

void
pc_dirq_get_stats(const struct pc_dirq *q, struct pc_dirq_stats *st)
{
	st->requests = __atomic_load_n(&q->requests, __ATOMIC_RELAXED);
	st->keys = __atomic_load_n(&q->keys, __ATOMIC_RELAXED);
	st->refused = __atomic_load_n(&q->refused, __ATOMIC_RELAXED);
	st->reply_retries = __atomic_load_n(&q->reply_retries, __ATOMIC_RELAXED);
}
