/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * engine/fetch.c: remote GET and EXISTS for one lcore, two "nodes" in one
 * process: store A (the owner) serves on a real tcp transport on
 * 127.0.0.1, store B (the reader) lands pages through its own transport,
 * the one pc_fetch drives. The directory is a fake lookup hook: it records
 * the request and the test answers it later with crafted results (node,
 * offset, generation, length, tier, data endpoint). What a user would
 * notice: a page set on A lands in B's segment byte for byte (4 KiB to
 * 8 MiB, several per batch, 128 through one channel) and the landing slots
 * come back whether or not the callback keeps them; a key no live node has
 * is a miss; a stale location (wrong generation, a deleted and reused slot,
 * another key's page, a wrong length) is a miss, never other bytes, and the
 * stale hook hears of it; the next location is tried after a dead or stale
 * one; a dead owner costs -ETIMEDOUT by the deadline, never a hang; EXISTS
 * reads nothing; bad arguments and a failing lookup start nothing; destroy
 * with READs in flight gives every landing slot back and calls nobody; two
 * requests in flight end each on its own.
 *
 * Time is virtual (g_now, stepped by every pump pass); the sockets are real.
 */
#define PC_UT_WITH_EAL
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rte_cycles.h>

#include "fetch.h"
#include "lcore.h"
#include "store.h"
#include "tcp.h"
#include "ut.h"

#define SEG_SIZE   (96ull << 20)
#define NB_CACHES  2
#define CI         0
#define Q_US       1000
#define STEP_NS    10000ull               /* virtual time per pump pass */
#define TIMEOUT_NS (2ull * 1000000000ull) /* xports' op timeout, fetch's default deadline */
#define PUMP_MAX   400000                 /* passes: far past every deadline */
#define MAX_KEYS   PC_REQ_MAX_KEYS
#define MAX_STALE  16
#define NODE_A     "nodeA"
#define NODE_B     "nodeB" /* the reader's own id */
#define INC_A      7

static const struct pc_xport_ops *const T = &pc_xport_tcp;

static struct pc_store *g_a; /* the owner */
static struct pc_store *g_b; /* the reader */
static struct pc_xport *g_xa;
static struct pc_xport *g_xb;
static struct pc_fetch *g_f;
static uint16_t g_port_a;
static uint64_t g_now = 1000000000000ull;
static uint32_t g_key_seq;

/* A page set on A. */
struct page {
	struct pc_store_key k;
	uint64_t off;
	uint64_t gen;
	uint32_t len; /* payload */
};

/* ------------------------------------------------------------ fake hooks */

#define LK_QUEUE 4

/* The lookup hook: records the requests; the test answers them in order with lk_answer(). */
struct lk {
	unsigned int calls;
	int ret;        /* what the hook answers */
	unsigned int n; /* of the last request */
	uint64_t timeout_ns;
	unsigned int pending;
	pc_cluster_lookup_fn cb[LK_QUEUE];
	void *cb_arg[LK_QUEUE];
	uint8_t key[MAX_KEYS][PC_STORE_KEY_MAX];
	uint32_t key_len[MAX_KEYS];
};

static struct lk g_lk;

static int
lk_hook(void *arg, const struct pc_dir_key *keys, unsigned int n, uint64_t timeout_ns,
	pc_cluster_lookup_fn cb, void *cb_arg)
{
	struct lk *l = arg;

	l->calls++;
	if (l->ret != 0) {
		return l->ret;
	}
	CU_ASSERT_FATAL(n >= 1 && n <= MAX_KEYS);
	CU_ASSERT_FATAL(l->pending < LK_QUEUE);
	l->n = n;
	l->timeout_ns = timeout_ns;
	l->cb[l->pending] = cb;
	l->cb_arg[l->pending] = cb_arg;
	l->pending++;
	for (unsigned int i = 0; i < n; i++) {
		CU_ASSERT_FATAL(keys[i].len <= PC_STORE_KEY_MAX);
		memcpy(l->key[i], keys[i].bytes, keys[i].len);
		l->key_len[i] = keys[i].len;
	}
	return 0;
}

/* The directory answers the oldest pending lookup. */
static void
lk_answer(const struct pc_cluster_lookup_result *res, unsigned int n)
{
	pc_cluster_lookup_fn cb;
	void *arg;

	CU_ASSERT_FATAL(g_lk.pending > 0);
	cb = g_lk.cb[0];
	arg = g_lk.cb_arg[0];
	g_lk.pending--;
	memmove(&g_lk.cb[0], &g_lk.cb[1], g_lk.pending * sizeof(g_lk.cb[0]));
	memmove(&g_lk.cb_arg[0], &g_lk.cb_arg[1], g_lk.pending * sizeof(g_lk.cb_arg[0]));
	cb(arg, res, n);
}

struct stale_rec {
	unsigned int n;
	uint8_t key[MAX_STALE][PC_STORE_KEY_MAX];
	uint32_t key_len[MAX_STALE];
	struct pc_dir_loc loc[MAX_STALE];
};

static struct stale_rec g_stale;

static void
stale_hook(void *arg, const void *key, uint32_t key_len, const struct pc_dir_loc *loc)
{
	struct stale_rec *s = arg;

	if (s->n < MAX_STALE && key_len <= PC_STORE_KEY_MAX) {
		memcpy(s->key[s->n], key, key_len);
		s->key_len[s->n] = key_len;
		s->loc[s->n] = *loc;
	}
	s->n++;
}

/* Whether the stale hook was told about key k at (node, offset, generation). */
static bool
stale_has(const struct pc_store_key *k, const char *node, uint64_t off, uint64_t gen)
{
	for (unsigned int i = 0; i < g_stale.n && i < MAX_STALE; i++) {
		if (g_stale.key_len[i] == k->len && memcmp(g_stale.key[i], k->bytes, k->len) == 0 &&
		    strcmp(g_stale.loc[i].node_id, node) == 0 && g_stale.loc[i].offset == off &&
		    g_stale.loc[i].generation == gen) {
			return true;
		}
	}
	return false;
}

/* The done callback: copies the results, checks landed bytes while they are there. */
struct done {
	unsigned int calls;
	uint64_t tag;
	unsigned int n;
	bool keep; /* move the landing slots out of res */
	const struct page *want[MAX_KEYS];
	struct pc_fetch_result res[MAX_KEYS];
	bool bytes_ok[MAX_KEYS];
	uint64_t staged_now_in_cb;
};

static uint8_t *
seg(struct pc_store *st, uint64_t off)
{
	return (uint8_t *)pc_store_segment_base(st) + off;
}

/* The page landed whole at local_off of B: the header checks and every byte is A's. */
static bool
landed_ok(const struct page *pg, uint64_t local_off)
{
	const struct pc_page_hdr *h = (const void *)seg(g_b, local_off);

	return pc_page_check(h, (const uint8_t *)h + PC_PAGE_HDR_SIZE, pg->len, pg->k.digest,
			     pg->gen, pg->len, true) == 0 &&
	       memcmp(h, seg(g_a, pg->off), (size_t)PC_PAGE_HDR_SIZE + pg->len) == 0;
}

static uint64_t
staged_now(void)
{
	struct pc_store_stats s;

	pc_store_get_stats(g_b, &s);
	return s.staged_now;
}

static void
done_cb(void *arg, uint64_t tag, struct pc_fetch_result *res, unsigned int n)
{
	struct done *d = arg;

	d->calls++;
	d->tag = tag;
	d->n = n;
	d->staged_now_in_cb = staged_now();
	for (unsigned int i = 0; i < n && i < MAX_KEYS; i++) {
		d->res[i] = res[i];
		d->bytes_ok[i] = false;
		if (res[i].rc == 0 && d->want[i] != NULL) {
			d->bytes_ok[i] = res[i].staged.slot != NULL &&
					 res[i].staged.len == d->want[i]->len &&
					 res[i].generation == d->want[i]->gen &&
					 landed_ok(d->want[i], res[i].staged.off);
		}
		if (res[i].rc != 0) {
			CU_ASSERT_PTR_NULL(res[i].staged.slot); /* a miss holds no slot */
		}
		if (d->keep) {
			res[i].staged.slot = NULL; /* moved out: ours to unstage */
		}
	}
}

/* ---------------------------------------------------------------- helpers */

static struct pc_store *
store_new(const char *name)
{
	struct pc_store_opts o = {
		.name = name,
		.segment_size = SEG_SIZE,
		.nb_caches = NB_CACHES,
		.quarantine_us = Q_US,
		.page_crc = true,
	};
	struct pc_store *st = pc_store_create(&o);

	if (st != NULL && pc_store_reader_register(st, CI) != 0) {
		pc_store_destroy(st);
		return NULL;
	}
	return st;
}

static int
suite_init(void)
{
	g_a = store_new("fetchA");
	g_b = store_new("fetchB");
	return g_a != NULL && g_b != NULL ? 0 : -1;
}

static int
suite_cleanup(void)
{
	pc_store_destroy(g_a);
	pc_store_destroy(g_b);
	return 0;
}

static void
fill(uint8_t *p, uint32_t len, uint32_t seed)
{
	uint64_t s = 0x9e3779b97f4a7c15ull * (seed + 1);

	for (uint32_t i = 0; i < len; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		p[i] = (uint8_t)s;
	}
}

static void
mkkey(struct pc_store_key *k, const char *ns, uint32_t id)
{
	char key[32];
	int n = snprintf(key, sizeof(key), "k-%u", id);

	CU_ASSERT_EQUAL_FATAL(pc_store_key_init(k, ns, strlen(ns), key, (size_t)n), 0);
}

/* SET a page of len payload bytes on st; fills pg (offset and generation as a GET names them). */
static void
page_set_on(struct pc_store *st, struct page *pg, uint32_t len)
{
	const struct pc_store_key *keys[1] = {&pg->k};
	struct pc_store_loc loc;
	int rc = -1;

	mkkey(&pg->k, "f", g_key_seq++);
	pg->len = len;
	CU_ASSERT_EQUAL_FATAL(pc_store_alloc(st, CI, &pg->k, len, 0, &loc), 0);
	fill(seg(st, loc.off) + PC_PAGE_HDR_SIZE, len, g_key_seq);
	CU_ASSERT_EQUAL_FATAL(pc_store_commit(st, CI, &loc), 0);
	CU_ASSERT_EQUAL_FATAL(pc_store_lookup_pin_burst(st, CI, keys, 1, &loc, &rc), 1);
	pg->off = loc.off;
	pg->gen = loc.generation;
	pc_store_unpin_bulk(st, CI, &loc, 1);
}

static void
page_set(struct page *pg, uint32_t len)
{
	page_set_on(g_a, pg, len);
}

static void
page_del(struct page *pg)
{
	CU_ASSERT_EQUAL(pc_store_delete(g_a, CI, &pg->k), 0);
}

static struct pc_xport *
xp_new(struct pc_store *st, unsigned int max_ch)
{
	struct pc_xport_opts o = {
		.store = st,
		.ci = CI,
		.seg_base = pc_store_segment_base(st),
		.seg_size = SEG_SIZE,
		.bind_host = "127.0.0.1",
		.port = 0,
		.max_channels_per_peer = max_ch,
		.op_timeout_ns = TIMEOUT_NS,
	};
	struct pc_xport *x = T->create(&o);

	CU_ASSERT_PTR_NOT_NULL_FATAL(x);
	return x;
}

static struct pc_fetch_opts
fetch_opts(void)
{
	struct pc_fetch_opts o = {
		.store = g_b,
		.ci = CI,
		.xops = T,
		.xport = g_xb,
		.self_id = NODE_B,
		.verify_crc = true,
		.timeout_ns = TIMEOUT_NS,
		.lookup = lk_hook,
		.lookup_arg = &g_lk,
		.stale = stale_hook,
		.stale_arg = &g_stale,
	};

	return o;
}

/* A's serving xport, B's reading xport (max_ch channels per peer) and B's pc_fetch. */
static void
env_up(unsigned int max_ch)
{
	struct pc_fetch_opts o;

	memset(&g_lk, 0, sizeof(g_lk));
	memset(&g_stale, 0, sizeof(g_stale));
	g_xa = xp_new(g_a, 0);
	g_port_a = T->port(g_xa);
	g_xb = xp_new(g_b, max_ch);
	o = fetch_opts();
	g_f = pc_fetch_create(&o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(g_f);
}

static void
env_down(void)
{
	struct pc_store_stats s;

	pc_fetch_destroy(g_f);
	g_f = NULL;
	T->destroy(g_xb);
	T->destroy(g_xa);
	g_xb = NULL;
	g_xa = NULL;
	/* Whatever a test did, no landing slot and no pin outlives it. */
	pc_store_get_stats(g_b, &s);
	CU_ASSERT_EQUAL(s.staged_now, 0);
	pc_store_get_stats(g_a, &s);
	CU_ASSERT_EQUAL(s.pinned, 0);
}

static struct pc_xport_stats
xstats(const struct pc_xport *x)
{
	struct pc_xport_stats s;

	T->get_stats(x, &s);
	return s;
}

static struct pc_fetch_stats
fstats(void)
{
	struct pc_fetch_stats s;

	pc_fetch_get_stats(g_f, &s);
	return s;
}

/* A lookup result: found, no location yet. */
static void
res_found(struct pc_cluster_lookup_result *r)
{
	memset(r, 0, sizeof(*r));
	r->status = 0;
}

static void
res_add(struct pc_cluster_lookup_result *r, const char *node, uint64_t inc, uint64_t off,
	uint64_t gen, uint32_t len, uint16_t port)
{
	unsigned int j = r->n_locs;

	CU_ASSERT_FATAL(j < PC_DIR_LOCS_MAX);
	snprintf(r->locs[j].node_id, sizeof(r->locs[j].node_id), "%s", node);
	r->locs[j].incarnation = inc;
	r->locs[j].offset = off;
	r->locs[j].generation = gen;
	r->locs[j].length = len;
	r->locs[j].tier = PC_DIR_TIER_MEMORY;
	snprintf(r->data[j].host, sizeof(r->data[j].host), "127.0.0.1");
	r->data[j].port = port;
	r->n_locs++;
}

/* The page where A has it. */
static void
res_page(struct pc_cluster_lookup_result *r, const struct page *pg)
{
	res_add(r, NODE_A, INC_A, pg->off, pg->gen, pg->len, g_port_a);
}

static void
res_status(struct pc_cluster_lookup_result *r, int status)
{
	memset(r, 0, sizeof(*r));
	r->status = status;
}

/* Poll A's server and B's fetch until d has `want` callbacks (bounded). Returns the passes. */
static unsigned long
pump(struct done *d, unsigned int want)
{
	unsigned long i;

	for (i = 0; i < PUMP_MAX && d->calls < want; i++) {
		struct pc_xport_cqe none[4];

		g_now += STEP_NS;
		if (g_xa != NULL) {
			CU_ASSERT_EQUAL(T->poll(g_xa, g_now, none, 4), 0);
		}
		CU_ASSERT(pc_fetch_poll(g_f, g_now) >= 0);
	}
	return i;
}

/* Poll for a while (passes) without waiting for anything. */
static void
idle(unsigned int passes)
{
	for (unsigned int i = 0; i < passes; i++) {
		struct pc_xport_cqe none[4];

		g_now += STEP_NS;
		if (g_xa != NULL) {
			CU_ASSERT_EQUAL(T->poll(g_xa, g_now, none, 4), 0);
		}
		CU_ASSERT(pc_fetch_poll(g_f, g_now) >= 0);
	}
}

/* A port on 127.0.0.1 nothing listens on. */
static uint16_t
dead_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	CU_ASSERT_FATAL(fd >= 0);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	CU_ASSERT_EQUAL_FATAL(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	CU_ASSERT_EQUAL_FATAL(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

/* A listener that never accepts and never answers. */
static int
mute_listen(uint16_t *port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sin);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	CU_ASSERT_FATAL(lfd >= 0);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	CU_ASSERT_EQUAL_FATAL(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	CU_ASSERT_EQUAL_FATAL(listen(lfd, 8), 0);
	CU_ASSERT_EQUAL_FATAL(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
	*port = ntohs(sin.sin_port);
	return lfd;
}

/*
 * GET keys[0..n) with the directory answering res[0..n); pump until the
 * callback ran. d is reset (keep and want[] are the caller's).
 */
static void
run_get(struct done *d, const struct pc_store_key *const keys[], unsigned int n,
	const struct pc_cluster_lookup_result *res, uint64_t tag)
{
	d->calls = 0;
	CU_ASSERT_EQUAL_FATAL(pc_fetch_get(g_f, keys, n, 0, g_now, done_cb, d, tag), 0);
	CU_ASSERT_EQUAL(d->calls, 0); /* never from inside pc_fetch_get */
	CU_ASSERT_EQUAL(g_lk.n, n);
	lk_answer(res, n);
	pump(d, 1);
	CU_ASSERT_EQUAL_FATAL(d->calls, 1);
	CU_ASSERT_EQUAL(d->tag, tag);
	CU_ASSERT_EQUAL(d->n, n);
}

/* One key, one answer: the key's rc. */
static int
get_one(const struct page *pg, const struct pc_cluster_lookup_result *res)
{
	static struct done d;
	const struct pc_store_key *keys[1] = {&pg->k};

	memset(&d, 0, sizeof(d));
	d.want[0] = pg;
	run_get(&d, keys, 1, res, 1);
	if (d.res[0].rc == 0) {
		CU_ASSERT(d.bytes_ok[0]);
	}
	return d.res[0].rc;
}

/* ------------------------------------------------------------------ tests */

/* 4 KiB, 1 MiB and 8 MiB pages in one batch, twice: the callback keeps the slots, then not. */
static void
test_get_batch(void)
{
	static const uint32_t lens[] = {4096, 1u << 20, 8u << 20, 4096, 1u << 20, 8u << 20};
	enum { N = PC_ARRAY_SIZE(lens) };
	static struct page pg[N];
	static struct pc_cluster_lookup_result res[N];
	static struct done d;
	const struct pc_store_key *keys[N];
	struct pc_store_stats s0, s1;
	struct pc_fetch_stats fs;
	uint64_t bytes = 0;
	uint64_t deadline;

	env_up(0);
	for (unsigned int i = 0; i < N; i++) {
		page_set(&pg[i], lens[i]);
		keys[i] = &pg[i].k;
		res_found(&res[i]);
		res_page(&res[i], &pg[i]);
		bytes += lens[i];
	}
	pc_store_get_stats(g_b, &s0);

	/* Round 1: the callback keeps every slot. */
	memset(&d, 0, sizeof(d));
	d.keep = true;
	for (unsigned int i = 0; i < N; i++) {
		d.want[i] = &pg[i];
	}
	deadline = g_now + 500000000ull;
	CU_ASSERT_EQUAL_FATAL(pc_fetch_get(g_f, keys, N, deadline, g_now, done_cb, &d, 77), 0);
	CU_ASSERT_EQUAL(d.calls, 0);
	/* The directory is asked once, for the whole batch, within the deadline. */
	CU_ASSERT_EQUAL(g_lk.calls, 1);
	CU_ASSERT_EQUAL_FATAL(g_lk.n, N);
	CU_ASSERT_EQUAL(g_lk.timeout_ns, deadline - g_now);
	for (unsigned int i = 0; i < N; i++) {
		CU_ASSERT_EQUAL(g_lk.key_len[i], pg[i].k.len);
		CU_ASSERT_EQUAL(memcmp(g_lk.key[i], pg[i].k.bytes, pg[i].k.len), 0);
	}
	/* Nothing happens before the directory answers. */
	idle(2000); /* 20 ms */
	CU_ASSERT_EQUAL(d.calls, 0);
	CU_ASSERT_EQUAL(xstats(g_xb).reads_posted, 0);
	lk_answer(res, N);
	CU_ASSERT_EQUAL(d.calls, 0); /* READs to do: not from inside the answer */
	pump(&d, 1);
	CU_ASSERT_EQUAL_FATAL(d.calls, 1);
	CU_ASSERT_EQUAL(d.tag, 77);
	CU_ASSERT_EQUAL(d.n, N);
	for (unsigned int i = 0; i < N; i++) {
		CU_ASSERT_EQUAL(d.res[i].rc, 0);
		CU_ASSERT(d.bytes_ok[i]);
		CU_ASSERT_EQUAL(d.res[i].generation, pg[i].gen);
		CU_ASSERT_EQUAL(d.res[i].staged.len, pg[i].len);
	}
	CU_ASSERT_EQUAL(d.staged_now_in_cb, N);
	CU_ASSERT_EQUAL(staged_now(), N); /* kept: still ours */
	CU_ASSERT_EQUAL(xstats(g_xb).reads_posted, N);
	CU_ASSERT_EQUAL(xstats(g_xa).serve_requests, N);
	/* The kept slots still hold the pages after the callback, and go back with unstage. */
	for (unsigned int i = 0; i < N; i++) {
		struct pc_store_loc loc = d.res[i].staged;

		CU_ASSERT(landed_ok(&pg[i], loc.off));
		pc_store_unstage(g_b, CI, &loc);
		CU_ASSERT_PTR_NULL(loc.slot);
		CU_ASSERT_NOT_EQUAL(
			((const struct pc_page_hdr *)seg(g_b, d.res[i].staged.off))->magic,
			PC_PAGE_MAGIC);
	}
	pc_store_get_stats(g_b, &s1);
	CU_ASSERT_EQUAL(s1.staged_now, 0);
	CU_ASSERT_EQUAL(s1.staged, s0.staged + N);
	CU_ASSERT_EQUAL(s1.bytes_free, s0.bytes_free);
	CU_ASSERT_EQUAL(s1.pages, s0.pages); /* landed pages are never published on B */

	/* Round 2: the callback leaves the slots in res: they come back by themselves. */
	memset(&d, 0, sizeof(d));
	for (unsigned int i = 0; i < N; i++) {
		d.want[i] = &pg[i];
	}
	run_get(&d, keys, N, res, 78);
	for (unsigned int i = 0; i < N; i++) {
		CU_ASSERT_EQUAL(d.res[i].rc, 0);
		CU_ASSERT(d.bytes_ok[i]);
	}
	CU_ASSERT_EQUAL(d.staged_now_in_cb, N);
	CU_ASSERT_EQUAL(staged_now(), 0);
	pc_store_get_stats(g_b, &s1);
	CU_ASSERT_EQUAL(s1.staged, s0.staged + 2 * N);
	CU_ASSERT_EQUAL(s1.bytes_free, s0.bytes_free);
	/* A slot the callback left is given back: unstaging the copy is a no-op. */
	{
		struct pc_store_loc stale_copy = d.res[0].staged;

		pc_store_unstage(g_b, CI, &stale_copy);
		CU_ASSERT_EQUAL(staged_now(), 0);
	}

	fs = fstats();
	CU_ASSERT_EQUAL(fs.requests, 2);
	CU_ASSERT_EQUAL(fs.keys, 2 * N);
	CU_ASSERT_EQUAL(fs.hits, 2 * N);
	CU_ASSERT_EQUAL(fs.bytes, 2 * bytes);
	CU_ASSERT_EQUAL(fs.misses, 0);
	CU_ASSERT_EQUAL(fs.stale, 0);
	CU_ASSERT_EQUAL(fs.retries, 0);
	CU_ASSERT_EQUAL(fs.in_flight, 0);
	CU_ASSERT_EQUAL(g_stale.n, 0);
	env_down();
	for (unsigned int i = 0; i < N; i++) {
		page_del(&pg[i]);
	}
}

/* 128 keys (a full request) through one channel of depth 64: posts that push back. */
static void
test_get_full_batch_one_channel(void)
{
	static struct page pg[MAX_KEYS];
	static struct pc_cluster_lookup_result res[MAX_KEYS];
	static struct done d;
	const struct pc_store_key *keys[MAX_KEYS];

	env_up(1);
	memset(&d, 0, sizeof(d));
	for (unsigned int i = 0; i < MAX_KEYS; i++) {
		page_set(&pg[i], 4096 + i * 64);
		keys[i] = &pg[i].k;
		res_found(&res[i]);
		res_page(&res[i], &pg[i]);
		d.want[i] = &pg[i];
	}
	run_get(&d, keys, MAX_KEYS, res, 5);
	for (unsigned int i = 0; i < MAX_KEYS; i++) {
		CU_ASSERT_EQUAL(d.res[i].rc, 0);
		CU_ASSERT(d.bytes_ok[i]);
	}
	CU_ASSERT_EQUAL(xstats(g_xb).channels_opened, 1);
	CU_ASSERT_EQUAL(xstats(g_xb).reads_posted, MAX_KEYS);
	CU_ASSERT_EQUAL(fstats().hits, MAX_KEYS);
	CU_ASSERT_EQUAL(staged_now(), 0);
	env_down();
	for (unsigned int i = 0; i < MAX_KEYS; i++) {
		page_del(&pg[i]);
	}
}

/* Keys no live node has: misses, without a READ. */
static void
test_misses(void)
{
	enum {
		K_NOENT,    /* the directory has no location */
		K_SELF,     /* only on this node, where the page is not (a stale own location) */
		K_SELF_OK,  /* only on this node, where the page is (a race with a SET): no stale */
		K_DEAD,     /* on A, whose member record is gone (port 0) */
		K_DISK,     /* on A's disk tier only */
		K_UNREACH,  /* no owner answered */
		K_TIMEDOUT, /* the lookup timed out */
		K_N,
	};
	static struct page pg[K_N];
	static struct pc_cluster_lookup_result res[K_N];
	static struct done d;
	const struct pc_store_key *keys[K_N];
	struct page own; /* published on B */
	struct pc_fetch_stats fs;

	env_up(0);
	for (unsigned int i = 0; i < K_N; i++) {
		page_set(&pg[i], 5000);
		keys[i] = &pg[i].k;
		res_found(&res[i]);
	}
	page_set_on(g_b, &own, 5000);
	res_status(&res[K_NOENT], -ENOENT);
	res_add(&res[K_SELF], NODE_B, 1, pg[K_SELF].off, pg[K_SELF].gen + 1000, 5000, 1);
	res_add(&res[K_SELF_OK], NODE_B, 1, own.off, own.gen, 5000, 1);
	res_add(&res[K_DEAD], NODE_A, INC_A, pg[K_DEAD].off, pg[K_DEAD].gen, 5000, 0);
	res_page(&res[K_DISK], &pg[K_DISK]);
	res[K_DISK].locs[0].tier = PC_DIR_TIER_DISK;
	res_status(&res[K_UNREACH], -EHOSTUNREACH);
	res_status(&res[K_TIMEDOUT], -ETIMEDOUT);
	memset(&d, 0, sizeof(d));
	run_get(&d, keys, K_N, res, 9);
	for (unsigned int i = 0; i < K_N; i++) {
		CU_ASSERT_EQUAL(d.res[i].rc, i == K_TIMEDOUT ? -ETIMEDOUT : -ENOENT);
		CU_ASSERT_PTR_NULL(d.res[i].staged.slot);
	}
	CU_ASSERT_EQUAL(xstats(g_xb).reads_posted, 0);
	CU_ASSERT_EQUAL(xstats(g_xa).serve_requests, 0);
	/* Only the own location that is not there is stale. */
	CU_ASSERT_EQUAL(g_stale.n, 1);
	CU_ASSERT(stale_has(&pg[K_SELF].k, NODE_B, pg[K_SELF].off, pg[K_SELF].gen + 1000));
	fs = fstats();
	CU_ASSERT_EQUAL(fs.misses, K_N);
	CU_ASSERT_EQUAL(fs.hits, 0);
	CU_ASSERT_EQUAL(fs.stale, 1);
	CU_ASSERT_EQUAL(fs.lookup_failed, 2);
	CU_ASSERT_EQUAL(fs.in_flight, 0);
	CU_ASSERT_EQUAL(staged_now(), 0);
	env_down();
	for (unsigned int i = 0; i < K_N; i++) {
		page_del(&pg[i]);
	}
	CU_ASSERT_EQUAL(pc_store_delete(g_b, CI, &own.k), 0);
}

/* The directory is wrong about A's page: the owner or the header says so; never other bytes. */
static void
test_stale_locations(void)
{
	static struct pc_cluster_lookup_result res;
	struct page pg, other;
	struct pc_fetch_stats fs;

	env_up(0);
	page_set(&pg, 20000);
	page_set(&other, 20000);

	/* A wrong generation: the owner refuses. */
	res_found(&res);
	res_add(&res, NODE_A, INC_A, pg.off, pg.gen + 1, pg.len, g_port_a);
	CU_ASSERT_EQUAL(get_one(&pg, &res), -ENOENT);
	CU_ASSERT_EQUAL(g_stale.n, 1);
	CU_ASSERT(stale_has(&pg.k, NODE_A, pg.off, pg.gen + 1));
	CU_ASSERT_EQUAL(g_stale.loc[0].incarnation, INC_A);
	fs = fstats();
	CU_ASSERT_EQUAL(fs.stale, 1);
	CU_ASSERT_EQUAL(fs.misses, 1);
	CU_ASSERT_EQUAL(fs.hits, 0);
	CU_ASSERT(xstats(g_xa).serve_refused >= 1);
	CU_ASSERT_EQUAL(staged_now(), 0);

	/* Another key's page at that place (offset and generation right): the header says so. */
	res_found(&res);
	res_add(&res, NODE_A, INC_A, other.off, other.gen, other.len, g_port_a);
	CU_ASSERT_EQUAL(get_one(&pg, &res), -ENOENT);
	CU_ASSERT_EQUAL(g_stale.n, 2);
	CU_ASSERT(stale_has(&pg.k, NODE_A, other.off, other.gen));
	CU_ASSERT_EQUAL(fstats().stale, 2);

	/* The right place with a wrong length: the owner refuses the range. */
	res_found(&res);
	res_add(&res, NODE_A, INC_A, pg.off, pg.gen, pg.len - 1, g_port_a);
	CU_ASSERT_EQUAL(get_one(&pg, &res), -ENOENT);
	CU_ASSERT_EQUAL(g_stale.n, 3);
	CU_ASSERT_EQUAL(fstats().hits, 0);
	CU_ASSERT_EQUAL(staged_now(), 0);

	/* And the right location still works on the same channels. */
	res_found(&res);
	res_page(&res, &pg);
	CU_ASSERT_EQUAL(get_one(&pg, &res), 0);
	CU_ASSERT_EQUAL(g_stale.n, 3);
	env_down();
	page_del(&pg);
	page_del(&other);
}

/* B has no room for a landing slot: -ENOSPC for that key, no READ, the others still land. */
static void
test_no_space(void)
{
	enum { MAX_FILL = 64 };
	static struct pc_cluster_lookup_result res[2];
	static struct done d;
	static struct pc_store_loc fill_locs[MAX_FILL];
	struct page big, small;
	const struct pc_store_key *keys[2] = {&big.k, &small.k};
	struct pc_store_key fk;
	unsigned int nfill = 0;

	env_up(0);
	page_set(&big, 8u << 20);
	page_set(&small, 4096);
	mkkey(&fk, "fill", 0);
	while (nfill < MAX_FILL && pc_store_stage(g_b, CI, &fk, 8u << 20, &fill_locs[nfill]) == 0) {
		nfill++;
	}
	CU_ASSERT_FATAL(nfill < MAX_FILL); /* the test means a full segment */
	for (unsigned int i = 0; i < 2; i++) {
		res_found(&res[i]);
	}
	res_page(&res[0], &big);
	res_page(&res[1], &small);
	memset(&d, 0, sizeof(d));
	d.want[0] = &big;
	d.want[1] = &small;
	run_get(&d, keys, 2, res, 1);
	CU_ASSERT_EQUAL(d.res[0].rc, -ENOSPC);
	CU_ASSERT_PTR_NULL(d.res[0].staged.slot);
	if (d.res[1].rc != -ENOSPC) { /* a 4 KiB slot may still be had */
		CU_ASSERT_EQUAL(d.res[1].rc, 0);
		CU_ASSERT(d.bytes_ok[1]);
	}
	CU_ASSERT_EQUAL(fstats().no_space, d.res[1].rc == -ENOSPC ? 2u : 1u);
	CU_ASSERT_EQUAL(xstats(g_xb).reads_posted, d.res[1].rc == 0 ? 1u : 0u);
	CU_ASSERT_EQUAL(staged_now(), nfill);
	for (unsigned int i = 0; i < nfill; i++) {
		pc_store_unstage(g_b, CI, &fill_locs[i]);
	}
	CU_ASSERT_EQUAL(staged_now(), 0);
	/* Room again: the same GET lands. */
	memset(&d, 0, sizeof(d));
	d.want[0] = &big;
	d.want[1] = &small;
	run_get(&d, keys, 2, res, 2);
	CU_ASSERT_EQUAL(d.res[0].rc, 0);
	CU_ASSERT_EQUAL(d.res[1].rc, 0);
	CU_ASSERT(d.bytes_ok[0]);
	CU_ASSERT(d.bytes_ok[1]);
	env_down();
	page_del(&big);
	page_del(&small);
}

/* The page was deleted on A and its slot reused by another key: a miss, never the new bytes. */
static void
test_reused_slot(void)
{
	static struct pc_cluster_lookup_result res;
	struct page old, held, neu;
	bool reused = false;

	env_up(0);
	page_set(&old, 30000);
	held = old;
	page_del(&old);
	/* Past the quarantine the slot goes back to A's slab; the next SET may take it. */
	for (int i = 0; i < 20; i++) {
		pc_store_poll(g_a, CI, rte_rdtsc() + (uint64_t)(i + 1) * pc_us_to_tsc(10 * Q_US));
	}
	for (int i = 0; i < 64 && !reused; i++) {
		page_set(&neu, 30000);
		reused = neu.off == held.off;
	}
	CU_ASSERT_FATAL(reused); /* the test means a reused slot */
	CU_ASSERT_NOT_EQUAL(neu.gen, held.gen);
	res_found(&res);
	res_page(&res, &held);
	CU_ASSERT_EQUAL(get_one(&held, &res), -ENOENT);
	CU_ASSERT(stale_has(&held.k, NODE_A, held.off, held.gen));
	CU_ASSERT_EQUAL(fstats().stale, 1);
	CU_ASSERT_EQUAL(fstats().hits, 0);
	/* The new page at that slot is readable under its own name. */
	res_found(&res);
	res_page(&res, &neu);
	CU_ASSERT_EQUAL(get_one(&neu, &res), 0);
	CU_ASSERT_EQUAL(staged_now(), 0);
	env_down();
}

/* The first location fails (nobody listens, a stale generation, a garbage length): the next one. */
static void
test_fallback(void)
{
	static struct pc_cluster_lookup_result res[2];
	static struct done d;
	struct page pg[2];
	const struct pc_store_key *keys[2] = {&pg[0].k, &pg[1].k};
	uint16_t dead = dead_port();
	struct pc_fetch_stats fs;

	env_up(0);
	page_set(&pg[0], 1u << 20);
	page_set(&pg[1], 7000);

	/* A dead port first, for both keys of a batch. */
	for (unsigned int i = 0; i < 2; i++) {
		res_found(&res[i]);
		res_add(&res[i], "nodeGone", 3, pg[i].off, pg[i].gen, pg[i].len, dead);
		res_page(&res[i], &pg[i]);
	}
	memset(&d, 0, sizeof(d));
	d.want[0] = &pg[0];
	d.want[1] = &pg[1];
	run_get(&d, keys, 2, res, 1);
	for (unsigned int i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(d.res[i].rc, 0);
		CU_ASSERT(d.bytes_ok[i]);
	}
	fs = fstats();
	CU_ASSERT(fs.retries >= 2);
	CU_ASSERT(fs.peer_errors >= 2);
	CU_ASSERT_EQUAL(fs.hits, 2);
	CU_ASSERT_EQUAL(g_stale.n, 0); /* a dead node is not a stale location */
	CU_ASSERT_EQUAL(staged_now(), 0);

	/* A stale generation first (another node id on the same server), then the valid one. */
	res_found(&res[0]);
	res_add(&res[0], "nodeA2", 1, pg[0].off, pg[0].gen + 5, pg[0].len, g_port_a);
	res_page(&res[0], &pg[0]);
	CU_ASSERT_EQUAL(get_one(&pg[0], &res[0]), 0);
	CU_ASSERT_EQUAL(g_stale.n, 1);
	CU_ASSERT(stale_has(&pg[0].k, "nodeA2", pg[0].off, pg[0].gen + 5));
	CU_ASSERT(fstats().retries >= fs.retries + 1);

	/* A length no page can have, then the valid one. */
	res_found(&res[0]);
	res_add(&res[0], "nodeA2", 1, pg[0].off, pg[0].gen, 0, g_port_a);
	res_page(&res[0], &pg[0]);
	CU_ASSERT_EQUAL(get_one(&pg[0], &res[0]), 0);

	/* Every location dead: a miss, each tried. */
	res_found(&res[0]);
	res_add(&res[0], "nodeGone", 3, pg[0].off, pg[0].gen, pg[0].len, dead);
	res_add(&res[0], "nodeA2", 1, pg[0].off, pg[0].gen + 9, pg[0].len, g_port_a);
	CU_ASSERT_EQUAL(get_one(&pg[0], &res[0]), -ENOENT);
	CU_ASSERT_EQUAL(staged_now(), 0);
	CU_ASSERT_EQUAL(fstats().in_flight, 0);
	env_down();
	page_del(&pg[0]);
	page_del(&pg[1]);
}

/*
 * read_timeout_ns (the rdma setting: a READ is over well before the owner
 * may reuse a slot): a mute first owner costs one READ deadline, then the
 * second location answers within the request's deadline.
 */
static void
test_read_timeout_then_next(void)
{
	static struct pc_cluster_lookup_result res;
	static struct done d;
	struct pc_fetch_opts o;
	struct page pg;
	const struct pc_store_key *keys[1] = {&pg.k};
	uint16_t port;
	int lfd = mute_listen(&port);
	uint64_t start;

	env_up(0);
	pc_fetch_destroy(g_f);
	o = fetch_opts();
	o.read_timeout_ns = 20000000ull; /* 20 ms of a 2 s request */
	g_f = pc_fetch_create(&o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(g_f);
	page_set(&pg, 32000);
	res_found(&res);
	res_add(&res, "nodeMute", 5, pg.off, pg.gen, pg.len, port);
	res_add(&res, NODE_A, INC_A, pg.off, pg.gen, pg.len, g_port_a);
	memset(&d, 0, sizeof(d));
	d.want[0] = &pg; /* checked in the callback: the slot goes back after it */
	start = g_now;
	CU_ASSERT_EQUAL_FATAL(pc_fetch_get(g_f, keys, 1, g_now + TIMEOUT_NS, g_now, done_cb, &d, 9),
			      0);
	lk_answer(&res, 1);
	CU_ASSERT(pump(&d, 1) < PUMP_MAX);
	CU_ASSERT_EQUAL_FATAL(d.calls, 1);
	CU_ASSERT_EQUAL(d.res[0].rc, 0);
	CU_ASSERT_TRUE(d.bytes_ok[0]);
	CU_ASSERT(g_now >= start + o.read_timeout_ns);
	CU_ASSERT(g_now < start + TIMEOUT_NS);
	CU_ASSERT_EQUAL(fstats().timeouts, 1);
	CU_ASSERT_EQUAL(fstats().retries, 1);
	CU_ASSERT_EQUAL(fstats().hits, 1);
	env_down();
	page_del(&pg);
	close(lfd);
}

/* An owner that never answers: -ETIMEDOUT at the deadline, not before, not long after. */
static void
test_dead_owner(void)
{
	static struct pc_cluster_lookup_result res;
	static struct done d;
	struct page pg;
	const struct pc_store_key *keys[1] = {&pg.k};
	uint16_t port;
	int lfd = mute_listen(&port);
	uint64_t deadline;
	unsigned long passes;

	env_up(0);
	page_set(&pg, 64000);
	res_found(&res);
	res_add(&res, NODE_A, INC_A, pg.off, pg.gen, pg.len, port);
	memset(&d, 0, sizeof(d));
	deadline = g_now + 100000000ull;
	CU_ASSERT_EQUAL_FATAL(pc_fetch_get(g_f, keys, 1, deadline, g_now, done_cb, &d, 3), 0);
	lk_answer(&res, 1);
	passes = pump(&d, 1);
	CU_ASSERT(passes < PUMP_MAX);
	CU_ASSERT_EQUAL_FATAL(d.calls, 1);
	CU_ASSERT_EQUAL(d.res[0].rc, -ETIMEDOUT);
	CU_ASSERT(g_now >= deadline);
	CU_ASSERT(g_now < deadline + 5000000ull);
	CU_ASSERT_EQUAL(fstats().timeouts, 1);
	CU_ASSERT_EQUAL(fstats().hits, 0);
	CU_ASSERT_EQUAL(g_stale.n, 0);
	CU_ASSERT_EQUAL(staged_now(), 0);

	/* The directory answers after the deadline: the key times out without a READ. */
	{
		uint64_t posted = xstats(g_xb).reads_posted;

		memset(&d, 0, sizeof(d));
		deadline = g_now + 1000000ull;
		CU_ASSERT_EQUAL_FATAL(pc_fetch_get(g_f, keys, 1, deadline, g_now, done_cb, &d, 4),
				      0);
		g_now = deadline + 1;
		res_found(&res);
		res_page(&res, &pg);
		lk_answer(&res, 1);
		pump(&d, 1);
		CU_ASSERT_EQUAL_FATAL(d.calls, 1);
		CU_ASSERT_EQUAL(d.res[0].rc, -ETIMEDOUT);
		CU_ASSERT(g_now < deadline + 5000000ull);
		CU_ASSERT_EQUAL(xstats(g_xb).reads_posted, posted);
		CU_ASSERT_EQUAL(staged_now(), 0);
	}
	env_down();
	close(lfd);
	page_del(&pg);
}

/* Two requests at once: one to an owner that never answers, one to A; each ends on its own. */
static void
test_two_requests(void)
{
	static struct pc_cluster_lookup_result res[3];
	static struct done d1, d2;
	struct page pg[2];
	const struct pc_store_key *k1[1] = {&pg[0].k};
	const struct pc_store_key *k2[2] = {&pg[0].k, &pg[1].k};
	uint16_t port;
	int lfd = mute_listen(&port);
	uint64_t dl1;

	env_up(0);
	page_set(&pg[0], 1u << 20);
	page_set(&pg[1], 4096);
	memset(&d1, 0, sizeof(d1));
	memset(&d2, 0, sizeof(d2));
	d2.want[0] = &pg[0];
	d2.want[1] = &pg[1];
	dl1 = g_now + 50000000ull;
	CU_ASSERT_EQUAL_FATAL(pc_fetch_get(g_f, k1, 1, dl1, g_now, done_cb, &d1, 100), 0);
	CU_ASSERT_EQUAL_FATAL(pc_fetch_get(g_f, k2, 2, 0, g_now, done_cb, &d2, 200), 0);
	CU_ASSERT_EQUAL(fstats().in_flight, 2);
	res_found(&res[0]);
	res_add(&res[0], "nodeMute", 1, pg[0].off, pg[0].gen, pg[0].len, port);
	lk_answer(&res[0], 1);
	res_found(&res[1]);
	res_page(&res[1], &pg[0]);
	res_found(&res[2]);
	res_page(&res[2], &pg[1]);
	lk_answer(&res[1], 2);
	pump(&d2, 1);
	CU_ASSERT_EQUAL_FATAL(d2.calls, 1);
	CU_ASSERT_EQUAL(d2.tag, 200);
	CU_ASSERT_EQUAL(d2.res[0].rc, 0);
	CU_ASSERT_EQUAL(d2.res[1].rc, 0);
	CU_ASSERT(d2.bytes_ok[0]);
	CU_ASSERT(d2.bytes_ok[1]);
	CU_ASSERT(g_now < dl1);
	CU_ASSERT_EQUAL(d1.calls, 0); /* still waiting for the mute owner */
	pump(&d1, 1);
	CU_ASSERT_EQUAL_FATAL(d1.calls, 1);
	CU_ASSERT_EQUAL(d1.tag, 100);
	CU_ASSERT_EQUAL(d1.res[0].rc, -ETIMEDOUT);
	CU_ASSERT(g_now >= dl1 && g_now < dl1 + 5000000ull);
	CU_ASSERT_EQUAL(d2.calls, 1);
	CU_ASSERT_EQUAL(fstats().in_flight, 0);
	CU_ASSERT_EQUAL(staged_now(), 0);
	env_down();
	close(lfd);
	page_del(&pg[0]);
	page_del(&pg[1]);
}

/* EXISTS asks the directory only: a live remote location is present, nothing is read. */
static void
test_exists(void)
{
	enum { E_A, E_SELF, E_DEAD, E_NOENT, E_TWO, E_N };
	static struct pc_cluster_lookup_result res[E_N];
	static struct done d;
	struct page pg[E_N];
	const struct pc_store_key *keys[E_N];
	struct pc_fetch_stats fs;

	env_up(0);
	for (unsigned int i = 0; i < E_N; i++) {
		page_set(&pg[i], 3000);
		keys[i] = &pg[i].k;
		res_found(&res[i]);
	}
	res_page(&res[E_A], &pg[E_A]);
	res_add(&res[E_SELF], NODE_B, 1, 0, 1, 3000, 1);
	res_add(&res[E_DEAD], NODE_A, INC_A, pg[E_DEAD].off, pg[E_DEAD].gen, 3000, 0);
	res_status(&res[E_NOENT], -ENOENT);
	res_add(&res[E_TWO], NODE_A, INC_A, pg[E_TWO].off, pg[E_TWO].gen, 3000, 0);
	res_page(&res[E_TWO], &pg[E_TWO]); /* the second of two is live */
	memset(&d, 0, sizeof(d));
	CU_ASSERT_EQUAL_FATAL(pc_fetch_exists(g_f, keys, E_N, 0, g_now, done_cb, &d, 11), 0);
	CU_ASSERT_EQUAL(d.calls, 0);
	CU_ASSERT_EQUAL(g_lk.n, E_N);
	lk_answer(res, E_N);
	pump(&d, 1);
	CU_ASSERT_EQUAL_FATAL(d.calls, 1);
	CU_ASSERT_EQUAL(d.tag, 11);
	CU_ASSERT_EQUAL(d.res[E_A].rc, 0);
	CU_ASSERT_EQUAL(d.res[E_SELF].rc, -ENOENT);
	CU_ASSERT_EQUAL(d.res[E_DEAD].rc, -ENOENT);
	CU_ASSERT_EQUAL(d.res[E_NOENT].rc, -ENOENT);
	CU_ASSERT_EQUAL(d.res[E_TWO].rc, 0);
	for (unsigned int i = 0; i < E_N; i++) {
		CU_ASSERT_PTR_NULL(d.res[i].staged.slot);
	}
	CU_ASSERT_EQUAL(xstats(g_xb).reads_posted, 0);
	CU_ASSERT_EQUAL(xstats(g_xa).serve_requests, 0);
	fs = fstats();
	CU_ASSERT_EQUAL(fs.exists, 1);
	CU_ASSERT_EQUAL(fs.exists_keys, E_N);
	CU_ASSERT_EQUAL(fs.exists_found, 2);
	CU_ASSERT_EQUAL(fs.requests, 0);
	CU_ASSERT_EQUAL(fs.in_flight, 0);
	CU_ASSERT_EQUAL(staged_now(), 0);
	env_down();
	for (unsigned int i = 0; i < E_N; i++) {
		page_del(&pg[i]);
	}
}

/* Bad arguments and a failing lookup start nothing and call nobody. */
static void
test_args(void)
{
	static const struct pc_store_key *keys[MAX_KEYS + 1];
	static struct pc_cluster_lookup_result res[MAX_KEYS];
	static struct done d;
	struct pc_store_key k;
	struct pc_store_key empty = {.len = 0};
	const struct pc_store_key *bad[1] = {&empty};
	struct pc_fetch_opts o;

	env_up(0);
	mkkey(&k, "args", 1);
	for (unsigned int i = 0; i < MAX_KEYS + 1; i++) {
		keys[i] = &k;
	}
	memset(&d, 0, sizeof(d));
	CU_ASSERT_EQUAL(pc_fetch_get(g_f, keys, 0, 0, g_now, done_cb, &d, 1), -EINVAL);
	CU_ASSERT_EQUAL(pc_fetch_get(g_f, keys, MAX_KEYS + 1, 0, g_now, done_cb, &d, 1), -EINVAL);
	CU_ASSERT_EQUAL(pc_fetch_exists(g_f, keys, 0, 0, g_now, done_cb, &d, 1), -EINVAL);
	CU_ASSERT_EQUAL(pc_fetch_exists(g_f, keys, MAX_KEYS + 1, 0, g_now, done_cb, &d, 1),
			-EINVAL);
	CU_ASSERT_EQUAL(pc_fetch_get(g_f, NULL, 1, 0, g_now, done_cb, &d, 1), -EINVAL);
	CU_ASSERT_EQUAL(pc_fetch_get(g_f, keys, 1, 0, g_now, NULL, &d, 1), -EINVAL);
	CU_ASSERT_EQUAL(pc_fetch_get(g_f, bad, 1, 0, g_now, done_cb, &d, 1), -EINVAL);
	CU_ASSERT_EQUAL(g_lk.calls, 0);

	/* The lookup hook refuses: its error, and the callback never runs. */
	g_lk.ret = -ENOBUFS;
	CU_ASSERT_EQUAL(pc_fetch_get(g_f, keys, 1, 0, g_now, done_cb, &d, 1), -ENOBUFS);
	CU_ASSERT_EQUAL(pc_fetch_exists(g_f, keys, 1, 0, g_now, done_cb, &d, 1), -ENOBUFS);
	CU_ASSERT_EQUAL(g_lk.calls, 2);
	idle(2000);
	CU_ASSERT_EQUAL(d.calls, 0);
	CU_ASSERT_EQUAL(fstats().in_flight, 0);
	CU_ASSERT_EQUAL(staged_now(), 0);
	g_lk.ret = 0;

	/* A full request is accepted; the callback waits for the answer. */
	CU_ASSERT_EQUAL_FATAL(pc_fetch_get(g_f, keys, MAX_KEYS, 0, g_now, done_cb, &d, 2), 0);
	CU_ASSERT_EQUAL(d.calls, 0);
	CU_ASSERT_EQUAL(fstats().in_flight, 1);
	idle(1000);
	CU_ASSERT_EQUAL(d.calls, 0);
	for (unsigned int i = 0; i < MAX_KEYS; i++) {
		res_status(&res[i], -ENOENT);
	}
	lk_answer(res, MAX_KEYS);
	pump(&d, 1);
	CU_ASSERT_EQUAL_FATAL(d.calls, 1);
	CU_ASSERT_EQUAL(d.n, MAX_KEYS);
	CU_ASSERT_EQUAL(d.res[0].rc, -ENOENT);
	CU_ASSERT_EQUAL(d.res[MAX_KEYS - 1].rc, -ENOENT);
	CU_ASSERT_EQUAL(fstats().in_flight, 0);

	/* No deadline: the fetch's own timeout. */
	memset(&d, 0, sizeof(d));
	CU_ASSERT_EQUAL_FATAL(pc_fetch_get(g_f, keys, 1, 0, g_now, done_cb, &d, 2), 0);
	CU_ASSERT_EQUAL(g_lk.timeout_ns, TIMEOUT_NS);
	lk_answer(res, 1);
	pump(&d, 1);
	CU_ASSERT_EQUAL_FATAL(d.calls, 1);

	/* A short answer: the keys it does not cover are misses. */
	memset(&d, 0, sizeof(d));
	CU_ASSERT_EQUAL_FATAL(pc_fetch_get(g_f, keys, 3, 0, g_now, done_cb, &d, 2), 0);
	lk_answer(res, 1);
	pump(&d, 1);
	CU_ASSERT_EQUAL_FATAL(d.calls, 1);
	CU_ASSERT_EQUAL(d.res[2].rc, -ENOENT);

	/* Bad options. */
	o = fetch_opts();
	o.lookup = NULL;
	errno = 0;
	CU_ASSERT_PTR_NULL(pc_fetch_create(&o));
	CU_ASSERT_EQUAL(errno, EINVAL);
	o = fetch_opts();
	o.self_id = NULL;
	CU_ASSERT_PTR_NULL(pc_fetch_create(&o));
	o = fetch_opts();
	o.store = NULL;
	CU_ASSERT_PTR_NULL(pc_fetch_create(&o));
	CU_ASSERT_PTR_NULL(pc_fetch_create(NULL));
	pc_fetch_destroy(NULL);
	env_down();
}

/* Destroyed with READs in flight: every landing slot back, the callback never runs. */
static void
test_destroy_in_flight(void)
{
	static struct pc_cluster_lookup_result res[2];
	static struct done d;
	struct page pg[2];
	const struct pc_store_key *keys[2] = {&pg[0].k, &pg[1].k};
	struct pc_store_stats s0, s1;

	env_up(0);
	page_set(&pg[0], 8u << 20);
	page_set(&pg[1], 1u << 20);
	pc_store_get_stats(g_b, &s0);
	for (unsigned int i = 0; i < 2; i++) {
		res_found(&res[i]);
		res_page(&res[i], &pg[i]);
	}
	memset(&d, 0, sizeof(d));
	CU_ASSERT_EQUAL_FATAL(pc_fetch_get(g_f, keys, 2, 0, g_now, done_cb, &d, 1), 0);
	lk_answer(res, 2);
	g_now += STEP_NS;
	pc_fetch_poll(g_f, g_now); /* posts; A never polled: nothing completes */
	CU_ASSERT_EQUAL(xstats(g_xb).reads_posted, 2);
	CU_ASSERT_EQUAL(staged_now(), 2);
	CU_ASSERT_EQUAL(d.calls, 0);
	CU_ASSERT_EQUAL(fstats().in_flight, 1);
	pc_fetch_destroy(g_f);
	g_f = NULL;
	CU_ASSERT_EQUAL(d.calls, 0);
	pc_store_get_stats(g_b, &s1);
	CU_ASSERT_EQUAL(s1.staged_now, 0);
	CU_ASSERT_EQUAL(s1.bytes_free, s0.bytes_free);
	env_down(); /* B's xport drops the READs; nothing is delivered */
	CU_ASSERT_EQUAL(d.calls, 0);
	page_del(&pg[0]);
	page_del(&pg[1]);
}

static const struct pc_ut_test get_tests[] = {
	{"4 KiB to 8 MiB in one batch, slots kept or left", test_get_batch},
	{"128 keys through one channel", test_get_full_batch_one_channel},
	{"misses: none, own, dead, disk, lookup failed", test_misses},
	{"stale generation, another key, wrong length", test_stale_locations},
	{"deleted and reused slot", test_reused_slot},
	{"no landing slot: -ENOSPC", test_no_space},
	{"next location after a dead or stale one", test_fallback},
	{NULL, NULL},
};

static const struct pc_ut_test fail_tests[] = {
	{"owner never answers: -ETIMEDOUT by the deadline", test_dead_owner},
	{"two requests, one to a mute owner", test_two_requests},
	{"a READ's own deadline, then the next location", test_read_timeout_then_next},
	{"EXISTS reads nothing", test_exists},
	{"bad arguments, lookup refused", test_args},
	{"destroy with READs in flight", test_destroy_in_flight},
	{NULL, NULL},
};

static const struct pc_ut_suite suites[] = {
	{"fetch get", suite_init, suite_cleanup, get_tests},
	{"fetch failures and exists", suite_init, suite_cleanup, fail_tests},
};

int
main(void)
{
	if (pc_ut_eal_init("fetch_ut", "0") != 0) {
		return 1;
	}
	return pc_ut_run(suites, PC_ARRAY_SIZE(suites));
}
