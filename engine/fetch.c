/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Remote GET and EXISTS (fetch.h): directory lookup, landing slots, READs
 * grouped per peer, header checks, the next location on failure.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "fetch.h"
#include "pc_common.h"
#include "pc_log.h"

#define FETCH_POST_BURST 32 /* READs per post_reads() call */
#define FETCH_CQ_BURST   64 /* completions taken per poll */
#define FETCH_TIMEOUT_NS 5000000000ull
/* How often READs waiting for a channel are checked against their deadline. */
#define FETCH_EXPIRY_STEP_NS 1000000ull
/* Requests kept for reuse, each sized for a full batch. */
#define FETCH_REQ_CACHE 4

enum fk_state {
	FK_LOOKUP, /* the directory has not answered */
	FK_WAIT,   /* landing slot taken; waiting for a channel (on f->pending) */
	FK_READ,   /* READ posted */
	FK_DONE,
};

struct fetch_req;

/* One key of a request. */
struct fetch_key {
	struct fetch_req *req;
	TAILQ_ENTRY(fetch_key) link; /* f->pending while FK_WAIT */
	uint8_t state;
	uint8_t ncand; /* live locations on other nodes, in the directory's order */
	uint8_t cand;  /* the one being read */
	uint32_t idx;  /* in the request */
	struct pc_dir_loc loc[PC_DIR_LOCS_MAX];
	struct pc_disc_endpoint ep[PC_DIR_LOCS_MAX];
};

TAILQ_HEAD(fetch_key_list, fetch_key);

struct fetch_req {
	struct pc_fetch *f;
	TAILQ_ENTRY(fetch_req) link; /* f->reqs */
	pc_fetch_done_fn cb;
	void *arg;
	uint64_t tag;
	uint64_t deadline_ns;
	bool exists;
	unsigned int n;
	unsigned int remaining; /* keys not FK_DONE */
	struct pc_store_key *keys;
	struct pc_fetch_result *res;
	struct fetch_key *fk;
};

TAILQ_HEAD(fetch_req_list, fetch_req);

struct pc_fetch {
	struct pc_fetch_opts o;
	char self_id[PC_DIR_NODE_ID_MAX];
	uint8_t *seg_base;
	uint64_t timeout_ns;
	uint64_t next_expiry_ns;
	struct fetch_req_list reqs;
	struct fetch_key_list pending;
	/*
	 * Freed requests, for the next ones: a full batch's is over 100 KiB,
	 * past malloc's mmap threshold, so allocating each anew would cost a
	 * mmap and its page faults.
	 */
	struct fetch_req *spare[FETCH_REQ_CACHE];
	unsigned int n_spare;
	struct pc_fetch_stats st;
	struct pc_xport_read rd[FETCH_POST_BURST];
	struct pc_xport_cqe cqe[FETCH_CQ_BURST];
};

#define STAT_ADD(f, field, v)                                                                      \
	__atomic_store_n(&(f)->st.field, (f)->st.field + (v), __ATOMIC_RELAXED)

struct pc_fetch *
pc_fetch_create(const struct pc_fetch_opts *o)
{
	struct pc_fetch *f;

	if (o == NULL || o->store == NULL || o->xops == NULL || o->xport == NULL ||
	    o->lookup == NULL || o->self_id == NULL ||
	    strlen(o->self_id) >= sizeof(((struct pc_fetch *)0)->self_id)) {
		errno = EINVAL;
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		return NULL;
	}
	f->o = *o;
	snprintf(f->self_id, sizeof(f->self_id), "%s", o->self_id);
	f->o.self_id = f->self_id;
	f->seg_base = pc_store_segment_base(o->store);
	f->timeout_ns = o->timeout_ns != 0 ? o->timeout_ns : FETCH_TIMEOUT_NS;
	TAILQ_INIT(&f->reqs);
	TAILQ_INIT(&f->pending);
	return f;
}

static void
req_free(struct pc_fetch *f, struct fetch_req *r)
{
	if (f->n_spare < FETCH_REQ_CACHE) {
		f->spare[f->n_spare++] = r;
		return;
	}
	free(r);
}

/* Give back every landing slot the caller left in res, and free the request. */
static void
req_release(struct pc_fetch *f, struct fetch_req *r)
{
	for (unsigned int i = 0; i < r->n; i++) {
		if (r->res[i].staged.slot != NULL) {
			pc_store_unstage(f->o.store, f->o.ci, &r->res[i].staged);
		}
	}
	req_free(f, r);
}

void
pc_fetch_destroy(struct pc_fetch *f)
{
	if (f == NULL) {
		return;
	}
	while (!TAILQ_EMPTY(&f->reqs)) {
		struct fetch_req *r = TAILQ_FIRST(&f->reqs);

		TAILQ_REMOVE(&f->reqs, r, link);
		req_release(f, r);
	}
	while (f->n_spare > 0) {
		free(f->spare[--f->n_spare]);
	}
	free(f);
}

static struct fetch_req *
req_new(struct pc_fetch *f, const struct pc_store_key *const keys[], unsigned int n,
	uint64_t deadline_ns, uint64_t now_ns, pc_fetch_done_fn cb, void *arg, uint64_t tag)
{
	/* Every request has room for a full batch, so any spare fits. */
	size_t size = sizeof(struct fetch_req) +
		      PC_REQ_MAX_KEYS * (sizeof(struct pc_store_key) +
					 sizeof(struct pc_fetch_result) + sizeof(struct fetch_key));
	struct fetch_req *r;

	r = f->n_spare > 0 ? f->spare[--f->n_spare] : malloc(size);
	if (r == NULL) {
		return NULL;
	}
	memset(r, 0, sizeof(*r));
	r->keys = (struct pc_store_key *)(r + 1);
	r->res = (struct pc_fetch_result *)(r->keys + PC_REQ_MAX_KEYS);
	r->fk = (struct fetch_key *)(r->res + PC_REQ_MAX_KEYS);
	r->f = f;
	r->cb = cb;
	r->arg = arg;
	r->tag = tag;
	r->n = n;
	r->remaining = n;
	r->deadline_ns = deadline_ns != 0 ? deadline_ns : now_ns + f->timeout_ns;
	for (unsigned int i = 0; i < n; i++) {
		r->keys[i] = *keys[i];
		r->res[i] = (struct pc_fetch_result){.rc = -ENOENT};
		r->fk[i].req = r;
		r->fk[i].idx = i;
		r->fk[i].state = FK_LOOKUP;
		r->fk[i].ncand = 0;
		r->fk[i].cand = 0;
	}
	return r;
}

/* Final result of key i (the request finishes in req_maybe_finish). */
static void
key_set(struct fetch_req *r, unsigned int i, int rc)
{
	struct fetch_key *fk = &r->fk[i];

	if (fk->state == FK_DONE) {
		return;
	}
	if (fk->state == FK_WAIT) {
		TAILQ_REMOVE(&r->f->pending, fk, link);
	}
	fk->state = FK_DONE;
	r->res[i].rc = rc;
	if (rc != 0 && r->res[i].staged.slot != NULL) {
		pc_store_unstage(r->f->o.store, r->f->o.ci, &r->res[i].staged);
	}
	r->remaining--;
}

/* Hand the results over once every key is final. Returns whether r is gone. */
static bool
req_maybe_finish(struct fetch_req *r)
{
	struct pc_fetch *f = r->f;

	if (r->remaining != 0) {
		return false;
	}
	TAILQ_REMOVE(&f->reqs, r, link);
	STAT_ADD(f, in_flight, (uint64_t)-1);
	r->cb(r->arg, r->tag, r->res, r->n);
	/* Slots the caller did not take go back. */
	req_release(f, r);
	return true;
}

/* Take a landing slot for key i's current location and queue its READ. */
static void
key_start(struct fetch_req *r, unsigned int i)
{
	struct pc_fetch *f = r->f;
	struct fetch_key *fk = &r->fk[i];

	while (fk->cand < fk->ncand) {
		const struct pc_dir_loc *l = &fk->loc[fk->cand];
		int rc = pc_store_stage(f->o.store, f->o.ci, &r->keys[i], l->length,
					&r->res[i].staged);

		if (rc == 0) {
			fk->state = FK_WAIT;
			TAILQ_INSERT_TAIL(&f->pending, fk, link);
			return;
		}
		if (rc == -ENOSPC) {
			STAT_ADD(f, no_space, 1);
			key_set(r, i, -ENOSPC);
			return;
		}
		/* A length no page can have: this location is garbage, try the next. */
		fk->cand++;
	}
	STAT_ADD(f, misses, 1);
	key_set(r, i, -ENOENT);
}

/* Key i's current location failed: the next one, while time is left. */
static void
key_next(struct fetch_req *r, unsigned int i, uint64_t now_ns)
{
	struct fetch_key *fk = &r->fk[i];

	if (r->res[i].staged.slot != NULL) {
		pc_store_unstage(r->f->o.store, r->f->o.ci, &r->res[i].staged);
	}
	fk->cand++;
	if (now_ns >= r->deadline_ns) {
		STAT_ADD(r->f, timeouts, 1);
		key_set(r, i, -ETIMEDOUT);
		return;
	}
	if (fk->cand < fk->ncand) {
		STAT_ADD(r->f, retries, 1);
	}
	key_start(r, i);
}

static void
report_stale(struct pc_fetch *f, const struct pc_store_key *k, const struct pc_dir_loc *l)
{
	STAT_ADD(f, stale, 1);
	if (f->o.stale != NULL) {
		f->o.stale(f->o.stale_arg, k->bytes, k->len, l);
	}
}

/*
 * This node's own location of a key that missed in its store: stale unless
 * the page was published there since (a race with a SET on another lcore).
 */
static void
check_own_loc(struct pc_fetch *f, const struct pc_store_key *k, const struct pc_dir_loc *l)
{
	struct pc_store_loc loc;

	if (pc_store_pin_at(f->o.store, f->o.ci, l->offset, l->generation, &loc) == 0) {
		pc_store_unpin_bulk(f->o.store, f->o.ci, &loc, 1);
		return;
	}
	report_stale(f, k, l);
}

/* Keep the locations worth reading: memory tier, a live node, not this one. */
static void
key_candidates(struct pc_fetch *f, struct fetch_req *r, unsigned int i,
	       const struct pc_cluster_lookup_result *res)
{
	struct fetch_key *fk = &r->fk[i];

	fk->ncand = 0;
	fk->cand = 0;
	for (unsigned int j = 0; j < res->n_locs && j < PC_DIR_LOCS_MAX; j++) {
		const struct pc_dir_loc *l = &res->locs[j];

		if (strcmp(l->node_id, f->self_id) == 0) {
			check_own_loc(f, &r->keys[i], l);
			continue;
		}
		if (l->tier != PC_DIR_TIER_MEMORY || res->data[j].port == 0 ||
		    res->data[j].host[0] == '\0') {
			continue;
		}
		fk->loc[fk->ncand] = *l;
		fk->ep[fk->ncand] = res->data[j];
		fk->ncand++;
	}
}

static bool
same_peer(const struct fetch_key *a, const struct fetch_key *b)
{
	const struct pc_dir_loc *la = &a->loc[a->cand];
	const struct pc_dir_loc *lb = &b->loc[b->cand];

	return la->incarnation == lb->incarnation && a->ep[a->cand].port == b->ep[b->cand].port &&
	       strcmp(la->node_id, lb->node_id) == 0 &&
	       strcmp(a->ep[a->cand].host, b->ep[b->cand].host) == 0;
}

/* The directory answered (this lcore). */
static void
on_lookup(void *arg, const struct pc_cluster_lookup_result *res, unsigned int n)
{
	struct fetch_req *r = arg;
	struct pc_fetch *f = r->f;
	unsigned int i;

	for (i = 0; i < r->n; i++) {
		int st = i < n ? res[i].status : -EIO;

		if (st != 0) {
			if (st != -ENOENT) {
				STAT_ADD(f, lookup_failed, 1);
			}
			if (!r->exists) {
				STAT_ADD(f, misses, 1);
			}
			key_set(r, i, st == -ETIMEDOUT ? -ETIMEDOUT : -ENOENT);
			continue;
		}
		key_candidates(f, r, i, &res[i]);
		if (r->exists) {
			if (r->fk[i].ncand > 0) {
				STAT_ADD(f, exists_found, 1);
			}
			key_set(r, i, r->fk[i].ncand > 0 ? 0 : -ENOENT);
		}
	}
	if (!r->exists) {
		/* Queue peer by peer, so one post carries a peer's whole share of the batch. */
		for (i = 0; i < r->n; i++) {
			struct fetch_key *lead = &r->fk[i];

			if (lead->state != FK_LOOKUP) {
				continue;
			}
			key_start(r, i);
			if (lead->state != FK_WAIT) {
				continue;
			}
			for (unsigned int j = i + 1; j < r->n; j++) {
				struct fetch_key *fk = &r->fk[j];

				if (fk->state == FK_LOOKUP && fk->ncand > 0 &&
				    same_peer(lead, fk)) {
					key_start(r, j);
				}
			}
		}
	}
	req_maybe_finish(r);
}

static int
fetch_start(struct pc_fetch *f, bool exists, const struct pc_store_key *const keys[],
	    unsigned int n, uint64_t deadline_ns, uint64_t now_ns, pc_fetch_done_fn cb, void *arg,
	    uint64_t tag)
{
	struct fetch_req *r;
	uint64_t timeout_ns;
	int rc;

	if (f == NULL || keys == NULL || cb == NULL || n == 0 || n > PC_REQ_MAX_KEYS) {
		return -EINVAL;
	}
	for (unsigned int i = 0; i < n; i++) {
		if (keys[i] == NULL || keys[i]->len == 0 || keys[i]->len > PC_DIR_KEY_MAX) {
			return -EINVAL;
		}
	}
	r = req_new(f, keys, n, deadline_ns, now_ns, cb, arg, tag);
	if (r == NULL) {
		return -ENOMEM;
	}
	r->exists = exists;
	if (exists) {
		STAT_ADD(f, exists, 1);
		STAT_ADD(f, exists_keys, n);
	} else {
		STAT_ADD(f, requests, 1);
		STAT_ADD(f, keys, n);
	}
	timeout_ns = r->deadline_ns > now_ns ? r->deadline_ns - now_ns : 1;
	TAILQ_INSERT_TAIL(&f->reqs, r, link);
	STAT_ADD(f, in_flight, 1);
	{
		struct pc_dir_key dk[PC_REQ_MAX_KEYS];

		for (unsigned int i = 0; i < n; i++) {
			dk[i] = (struct pc_dir_key){.bytes = r->keys[i].bytes,
						    .len = r->keys[i].len};
		}
		rc = f->o.lookup(f->o.lookup_arg, dk, n, timeout_ns, on_lookup, r);
	}
	if (rc != 0) {
		TAILQ_REMOVE(&f->reqs, r, link);
		STAT_ADD(f, in_flight, (uint64_t)-1);
		req_free(f, r);
	}
	return rc;
}

int
pc_fetch_get(struct pc_fetch *f, const struct pc_store_key *const keys[], unsigned int n,
	     uint64_t deadline_ns, uint64_t now_ns, pc_fetch_done_fn cb, void *arg, uint64_t tag)
{
	return fetch_start(f, false, keys, n, deadline_ns, now_ns, cb, arg, tag);
}

int
pc_fetch_exists(struct pc_fetch *f, const struct pc_store_key *const keys[], unsigned int n,
		uint64_t deadline_ns, uint64_t now_ns, pc_fetch_done_fn cb, void *arg, uint64_t tag)
{
	return fetch_start(f, true, keys, n, deadline_ns, now_ns, cb, arg, tag);
}

/* A READ finished: check what landed, or move on to the key's next location. */
static void
on_cqe(struct pc_fetch *f, const struct pc_xport_cqe *e, uint64_t now_ns)
{
	/* The cookie is the key's own address, handed to post_reads() below. */
	struct fetch_key *fk =
		(struct fetch_key *)(uintptr_t)e->cookie; /* NOLINT(performance-no-int-to-ptr) */
	struct fetch_req *r = fk->req;
	unsigned int i = fk->idx;
	const struct pc_dir_loc *l = &fk->loc[fk->cand];
	struct pc_fetch_result *res = &r->res[i];
	int rc;

	if (fk->state != FK_READ) {
		return; /* cannot happen: one completion per READ */
	}
	switch (e->status) {
	case 0: {
		const struct pc_page_hdr *hdr =
			(const struct pc_page_hdr *)(f->seg_base + res->staged.off);

		rc = pc_page_check(hdr, (const uint8_t *)hdr + PC_PAGE_HDR_SIZE, l->length,
				   r->keys[i].digest, l->generation, l->length, f->o.verify_crc);
		if (rc == 0) {
			res->generation = l->generation;
			STAT_ADD(f, hits, 1);
			STAT_ADD(f, bytes, l->length);
			key_set(r, i, 0);
			break;
		}
		if (rc == -EBADMSG) {
			STAT_ADD(f, bad_pages, 1);
		} else {
			/* Another generation, key or length: the owner moved on. */
			report_stale(f, &r->keys[i], l);
		}
		key_next(r, i, now_ns);
		break;
	}
	case -ESTALE:
	case -EINVAL:
		/* The owner has no page of that generation there (or no slot starts there). */
		report_stale(f, &r->keys[i], l);
		key_next(r, i, now_ns);
		break;
	case -ETIMEDOUT:
		/* The READ's own deadline (read_timeout_ns) may come before the request's. */
		STAT_ADD(f, timeouts, 1);
		if (now_ns >= r->deadline_ns) {
			key_set(r, i, -ETIMEDOUT);
		} else {
			key_next(r, i, now_ns); /* time left: the next location */
		}
		break;
	default:
		STAT_ADD(f, peer_errors, 1);
		key_next(r, i, now_ns);
		break;
	}
	req_maybe_finish(r);
}

/*
 * Post what waits for a channel: runs of keys of one request to one peer
 * (on_lookup queued them peer by peer). A peer whose channels are all busy
 * keeps its keys queued for the next pass.
 */
static int
post_pending(struct pc_fetch *f, uint64_t now_ns)
{
	struct fetch_key *fk = TAILQ_FIRST(&f->pending);
	struct fetch_key *run[FETCH_POST_BURST];
	int work = 0;

	while (fk != NULL) {
		struct fetch_req *r = fk->req;
		const struct pc_dir_loc *l = &fk->loc[fk->cand];
		const struct pc_disc_endpoint *ep = &fk->ep[fk->cand];
		struct pc_xport_peer peer = {
			.node_id = l->node_id,
			.incarnation = l->incarnation,
			.host = ep->host,
			.port = ep->port,
		};
		struct fetch_key *next = fk;
		unsigned int n = 0;
		uint64_t deadline;
		int taken;

		while (next != NULL && n < FETCH_POST_BURST && next->req == r &&
		       same_peer(fk, next)) {
			const struct pc_dir_loc *nl = &next->loc[next->cand];

			run[n] = next;
			f->rd[n] = (struct pc_xport_read){
				.remote_off = nl->offset,
				.generation = nl->generation,
				.len = PC_PAGE_HDR_SIZE + nl->length,
				.local_off = r->res[next->idx].staged.off,
				.cookie = (uint64_t)(uintptr_t)next,
			};
			n++;
			next = TAILQ_NEXT(next, link);
		}
		deadline = r->deadline_ns;
		if (f->o.read_timeout_ns != 0 && now_ns + f->o.read_timeout_ns < deadline) {
			deadline = now_ns + f->o.read_timeout_ns;
		}
		taken = f->o.xops->post_reads(f->o.xport, &peer, f->rd, n, deadline, now_ns);
		if (taken < 0) {
			/* The transport refused the arguments: these keys cannot be read there. */
			for (unsigned int k = 0; k < n; k++) {
				STAT_ADD(f, peer_errors, 1);
				run[k]->state = FK_READ; /* key_next expects it off the list */
				TAILQ_REMOVE(&f->pending, run[k], link);
				key_next(r, run[k]->idx, now_ns);
			}
			req_maybe_finish(r);
			fk = TAILQ_FIRST(&f->pending);
			work++;
			continue;
		}
		for (int k = 0; k < taken; k++) {
			TAILQ_REMOVE(&f->pending, run[k], link);
			run[k]->state = FK_READ;
		}
		work += taken;
		fk = next;
	}
	return work;
}

/* Keys still waiting for a channel past their deadline: misses now. */
static void
expire(struct pc_fetch *f, uint64_t now_ns)
{
	struct fetch_key *fk = TAILQ_FIRST(&f->pending);

	while (fk != NULL) {
		struct fetch_key *next = TAILQ_NEXT(fk, link);
		struct fetch_req *r = fk->req;

		if (now_ns >= r->deadline_ns) {
			STAT_ADD(f, timeouts, 1);
			key_set(r, fk->idx, -ETIMEDOUT);
			/* When this frees r, next was not r's: r had no key left waiting. */
			req_maybe_finish(r);
		}
		fk = next;
	}
}

int
pc_fetch_poll(struct pc_fetch *f, uint64_t now_ns)
{
	int work = 0;
	int n;

	n = f->o.xops->poll(f->o.xport, now_ns, f->cqe, FETCH_CQ_BURST);
	for (int i = 0; i < n; i++) {
		on_cqe(f, &f->cqe[i], now_ns);
	}
	work += n > 0 ? n : 0;
	if (!TAILQ_EMPTY(&f->pending)) {
		if (now_ns >= f->next_expiry_ns) {
			f->next_expiry_ns = now_ns + FETCH_EXPIRY_STEP_NS;
			expire(f, now_ns);
		}
		work += post_pending(f, now_ns);
	}
	return work;
}

bool
pc_fetch_active(const struct pc_fetch *f)
{
	return !TAILQ_EMPTY(&f->reqs);
}

void
pc_fetch_get_stats(const struct pc_fetch *f, struct pc_fetch_stats *st)
{
	const uint64_t *src = (const uint64_t *)&f->st;
	uint64_t *dst = (uint64_t *)st;

	for (size_t i = 0; i < sizeof(*st) / sizeof(uint64_t); i++) {
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	}
}
