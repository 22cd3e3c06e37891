/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The cluster, several of them in one process: each listens on its own
 * loopback address (127.0.0.1, .2, ...) with the same meta port, so each runs
 * its discovery master as on separate hosts. Time is a fake monotonic clock
 * that the tests move on; the sockets are real.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "frame.h"
#include "ut.h"

#define MS 1000000ull
#define S  1000000000ull

#define MAX_NODES 5
#define HB_S      0.5
#define TTL_S     1.5

static uint64_t g_now = 1000 * S;
static uint16_t g_meta_port;

struct node {
	struct pc_config cfg;
	struct pc_cluster *c;
	bool paused; /* not polled: a stopped process */
};

static struct node g_nodes[MAX_NODES];

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * S + (uint64_t)ts.tv_nsec;
}

/* A port free on 127.0.0.1 now (for the shared meta port). */
static uint16_t
free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t port;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
		port = 0; /* the suite fails to start */
	} else {
		port = ntohs(sa.sin_port);
	}
	if (fd >= 0) {
		close(fd);
	}
	return port;
}

static void
node_config(struct pc_config *cfg, int i, const char *seeds)
{
	char host[32];

	pc_config_defaults(cfg);
	snprintf(host, sizeof(host), "127.0.0.%d", i + 1);
	snprintf(cfg->discovery_addr, sizeof(cfg->discovery_addr), "%s", seeds);
	snprintf(cfg->meta_bind_host, sizeof(cfg->meta_bind_host), "%s", host);
	snprintf(cfg->control_bind_host, sizeof(cfg->control_bind_host), "%s", host);
	snprintf(cfg->local_hostname, sizeof(cfg->local_hostname), "%s", host);
	snprintf(cfg->node_id, sizeof(cfg->node_id), "node-%d", i);
	cfg->control_port = 0;
	cfg->disk_enabled = false;
	cfg->heartbeat_interval = HB_S;
	cfg->member_ttl = TTL_S;
	cfg->request_timeout = 1.0;
	cfg->directory_replicas = 2;
	cfg->vnodes = 64;
	cfg->max_masters = 3;
	cfg->directory_read_cache_ttl = 0.0;
}

static struct pc_cluster *
node_start_seeds(int i, const char *seeds)
{
	struct pc_cluster_opts o = {.role = PC_DISC_ROLE_INFERENCE,
				    .pool_capacity = 1ull << 30,
				    .shard_entries = 1u << 16};
	struct node *n = &g_nodes[i];

	node_config(&n->cfg, i, seeds);
	n->paused = false;
	n->c = pc_cluster_create(&n->cfg, &o, g_now);
	CU_ASSERT_PTR_NOT_NULL(n->c);
	return n->c;
}

static struct pc_cluster *
node_start(int i)
{
	char seeds[64];

	snprintf(seeds, sizeof(seeds), "127.0.0.1:%u", g_meta_port);
	return node_start_seeds(i, seeds);
}

static void
node_stop(int i)
{
	pc_cluster_destroy(g_nodes[i].c);
	g_nodes[i].c = NULL;
}

/* Poll every running node that is not paused until `ms` of real time pass. */
static void
pump(unsigned int ms)
{
	uint64_t end = mono_ns() + ms * MS;

	do {
		int work = 0;

		for (int i = 0; i < MAX_NODES; i++) {
			if (g_nodes[i].c != NULL && !g_nodes[i].paused) {
				work += pc_cluster_poll(g_nodes[i].c, g_now);
			}
		}
		if (work == 0) {
			usleep(200);
		}
	} while (mono_ns() < end);
}

/* Move the clock on by `ns` in heartbeat-sized steps, pumping after each. */
static void
advance(uint64_t ns)
{
	uint64_t step = (uint64_t)(HB_S * 1e9) / 2;

	while (ns > 0) {
		uint64_t d = ns < step ? ns : step;

		g_now += d;
		ns -= d;
		pump(20);
	}
}

static unsigned int
members_of(int i)
{
	struct pc_cluster_info info;

	pc_cluster_get_info(g_nodes[i].c, &info);
	return info.members;
}

/* Whether every running, unpaused node sees exactly `want` members and the same ring. */
static bool
agree(unsigned int want)
{
	const struct pc_ring *first = NULL;

	for (int i = 0; i < MAX_NODES; i++) {
		const struct pc_ring *r;

		if (g_nodes[i].c == NULL || g_nodes[i].paused) {
			continue;
		}
		r = pc_cluster_ring(g_nodes[i].c);
		if (members_of(i) != want || r == NULL || pc_ring_node_count(r) != want) {
			return false;
		}
		if (first == NULL) {
			first = r;
			continue;
		}
		for (unsigned int k = 0; k < want; k++) {
			if (strcmp(pc_ring_node_id(first, k), pc_ring_node_id(r, k)) != 0) {
				return false;
			}
		}
	}
	return true;
}

/* Advance the clock until the nodes agree on `want` members (false after 20 TTLs). */
static bool
converge(unsigned int want)
{
	for (int round = 0; round < 60; round++) {
		if (agree(want)) {
			return true;
		}
		advance((uint64_t)(HB_S * 1e9));
	}
	return agree(want);
}

static void
stop_all(void)
{
	for (int i = 0; i < MAX_NODES; i++) {
		if (g_nodes[i].c != NULL) {
			node_stop(i);
		}
	}
}

static int
suite_init(void)
{
	g_meta_port = free_port();
	return g_meta_port == 0 ? -1 : 0;
}

/* ------------------------------------------------------------- lookups */

#define N_KEYS 600

struct lk {
	int calls;
	unsigned int n;
	struct pc_cluster_lookup_result res[PC_CLUSTER_LOOKUP_MAX];
};

static void
lk_cb(void *arg, const struct pc_cluster_lookup_result *res, unsigned int n)
{
	struct lk *l = arg;

	l->calls++;
	l->n = n;
	memcpy(l->res, res, n * sizeof(*res));
}

static char g_keybuf[N_KEYS][32];
static struct pc_dir_key g_keys[N_KEYS];

static void
make_keys(const char *tag)
{
	for (int k = 0; k < N_KEYS; k++) {
		int len = snprintf(g_keybuf[k], sizeof(g_keybuf[k]), "ns%c%s-%d", 0, tag, k);

		g_keys[k].bytes = g_keybuf[k];
		g_keys[k].len = (uint32_t)len;
	}
}

/* Node `from` publishes every key, page k at offset off0 + 4096 * k, generation gen0 + k. */
static void
publish_at(int from, uint64_t off0, uint64_t gen0)
{
	static struct pc_cluster_pub p[N_KEYS];

	for (int k = 0; k < N_KEYS; k++) {
		p[k] = (struct pc_cluster_pub){.key = g_keys[k].bytes,
					       .key_len = g_keys[k].len,
					       .length = 1000 + (uint32_t)k,
					       .offset = off0 + 4096ull * (uint64_t)k,
					       .generation = gen0 + (uint64_t)k};
	}
	CU_ASSERT_EQUAL(pc_cluster_publish(g_nodes[from].c, p, N_KEYS), N_KEYS);
	pump(100);
}

/* Node `from` publishes every key, page k at offset 4096 * k, generation k + 1. */
static void
publish_all(int from)
{
	publish_at(from, 0, 1);
}

/* Look every key up through node `via` and wait for the callback. */
static void
lookup_wait(int via, struct lk *l)
{
	uint64_t end = mono_ns() + 5 * S;

	memset(l, 0, sizeof(*l));
	CU_ASSERT_EQUAL_FATAL(pc_cluster_lookup(g_nodes[via].c, g_keys, N_KEYS, 0, lk_cb, l), 0);
	while (l->calls == 0 && mono_ns() < end) {
		pump(5);
	}
	CU_ASSERT_EQUAL(l->calls, 1);
	CU_ASSERT_EQUAL(l->n, N_KEYS);
}

/* Look every key up through node `via`; returns how many came back with `from`'s exact location. */
static unsigned int
lookup_all(int via, int from, struct lk *l)
{
	unsigned int right = 0;
	char id[16];

	snprintf(id, sizeof(id), "node-%d", from);
	lookup_wait(via, l);
	for (int k = 0; k < N_KEYS && l->calls == 1; k++) {
		const struct pc_cluster_lookup_result *r = &l->res[k];
		const struct pc_ring *ring = pc_cluster_ring(g_nodes[via].c);
		unsigned int owners[2];
		unsigned int n_own = pc_ring_owners(
			ring, pc_ring_hash(g_keys[k].bytes, g_keys[k].len), 2, owners);
		bool owner_ok = false;

		/* Whoever answered, found or not, is one of the key's owners. */
		for (unsigned int o = 0; o < n_own; o++) {
			owner_ok |= strcmp(r->owner, pc_ring_node_id(ring, owners[o])) == 0;
		}
		CU_ASSERT_TRUE(owner_ok);

		if (r->status == 0 && r->n_locs == 1 && strcmp(r->locs[0].node_id, id) == 0 &&
		    r->locs[0].offset == 4096ull * (uint64_t)k &&
		    r->locs[0].length == 1000 + (uint32_t)k &&
		    r->locs[0].generation == (uint64_t)k + 1 &&
		    r->locs[0].tier == PC_DIR_TIER_MEMORY) {
			right++;
		}
	}
	return right;
}

/* ---------------------------------------------------------------- tests */

static void
test_join_and_agree(void)
{
	struct pc_cluster_info info;
	struct pc_disc_member m[8];
	struct pc_disc_endpoint masters[8];

	for (int i = 0; i < 4; i++) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(node_start(i));
	}
	CU_ASSERT_TRUE(converge(4));
	/* Every one of them bound the shared meta port on its own address: a master each. */
	for (int i = 0; i < 4; i++) {
		pc_cluster_get_info(g_nodes[i].c, &info);
		CU_ASSERT_EQUAL(info.meta_port, g_meta_port);
		CU_ASSERT_EQUAL(info.ring_nodes, 4);
		CU_ASSERT_EQUAL(info.is_master, i < 3); /* the head, then .2 and .3 */
	}
	CU_ASSERT_EQUAL(pc_cluster_members(g_nodes[3].c, m, 8), 4);
	CU_ASSERT_STRING_EQUAL(m[0].node_id, "node-0");
	CU_ASSERT_STRING_EQUAL(m[3].node_id, "node-3");
	CU_ASSERT_STRING_EQUAL(m[2].control.host, "127.0.0.3");
	CU_ASSERT_EQUAL(pc_cluster_members(g_nodes[3].c, m, 3), -ENOBUFS);
	CU_ASSERT_EQUAL(pc_cluster_masters(g_nodes[3].c, masters, 8), 3);
	CU_ASSERT_STRING_EQUAL(masters[0].host, "127.0.0.1");
	CU_ASSERT_STRING_EQUAL(masters[1].host, "127.0.0.2");
	CU_ASSERT_STRING_EQUAL(masters[2].host, "127.0.0.3");
	stop_all();
}

static void
test_publish_lookup_unpublish(void)
{
	static struct lk l;
	struct pc_cluster_stats st;

	for (int i = 0; i < 3; i++) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(node_start(i));
	}
	CU_ASSERT_TRUE_FATAL(converge(3));
	make_keys("pub");
	publish_all(1);
	for (int via = 0; via < 3; via++) {
		CU_ASSERT_EQUAL(lookup_all(via, 1, &l), N_KEYS);
	}
	/* Each entry is on 2 owners: the shards hold 2 x N_KEYS between them. */
	{
		uint64_t entries = 0;

		for (int i = 0; i < 3; i++) {
			pc_cluster_get_stats(g_nodes[i].c, &st);
			entries += st.shard.entries;
		}
		CU_ASSERT_EQUAL(entries, 2 * N_KEYS);
	}
	/* Unpublishing by another node removes nothing of node-1's. */
	CU_ASSERT_EQUAL(pc_cluster_unpublish(g_nodes[2].c, g_keys, N_KEYS), N_KEYS);
	pump(100);
	CU_ASSERT_EQUAL(lookup_all(0, 1, &l), N_KEYS);
	CU_ASSERT_EQUAL(pc_cluster_unpublish(g_nodes[1].c, g_keys, N_KEYS), N_KEYS);
	pump(100);
	CU_ASSERT_EQUAL(lookup_all(0, 1, &l), 0);
	for (int k = 0; k < N_KEYS; k++) {
		CU_ASSERT_EQUAL(l.res[k].status, -ENOENT);
	}
	pc_cluster_get_stats(g_nodes[0].c, &st);
	CU_ASSERT(st.lookups >= 3 * N_KEYS);
	CU_ASSERT_EQUAL(st.lookup_failed, 0);
	stop_all();
}

static uint64_t
shard_loc_deletes(int nodes)
{
	struct pc_cluster_stats st;
	uint64_t n = 0;

	for (int i = 0; i < nodes; i++) {
		pc_cluster_get_stats(g_nodes[i].c, &st);
		n += st.shard.loc_deletes;
	}
	return n;
}

/*
 * A reader (node-1) found node-0's pages of the even keys gone from their
 * slots: its repairs take exactly those locations from both owners of each
 * key (itself among them for some), so every node's lookups of them miss;
 * the odd keys, not repaired, still resolve. A repair without a generation
 * (0 would mean any) is refused, not widened.
 */
static void
test_stale_loc_repair(void)
{
	static struct lk l;
	static struct pc_dir_loc seen[N_KEYS];
	struct pc_cluster_stats st;

	for (int i = 0; i < 3; i++) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(node_start(i));
	}
	CU_ASSERT_TRUE_FATAL(converge(3));
	make_keys("stale");
	publish_all(0);
	/* Let the re-shard window of the last join close, so misses are final. */
	advance((uint64_t)(TTL_S * 1e9) + S);
	CU_ASSERT_EQUAL_FATAL(lookup_all(1, 0, &l), N_KEYS);
	for (int k = 0; k < N_KEYS; k++) {
		seen[k] = l.res[k].locs[0];
	}
	CU_ASSERT_EQUAL(shard_loc_deletes(3), 0);

	/* Generation 0, a NULL loc, a bad node id: the read cache only, nothing queued. */
	for (int k = 1; k < N_KEYS; k += 2) {
		struct pc_dir_loc any = seen[k];

		any.generation = 0;
		pc_cluster_stale_loc(g_nodes[1].c, g_keys[k].bytes, g_keys[k].len, &any);
	}
	pc_cluster_stale_loc(g_nodes[1].c, g_keys[1].bytes, g_keys[1].len, NULL);
	{
		struct pc_dir_loc bad = seen[1];

		snprintf(bad.node_id, sizeof(bad.node_id), "no#de");
		pc_cluster_stale_loc(g_nodes[1].c, g_keys[1].bytes, g_keys[1].len, &bad);
	}
	pump(100);
	pc_cluster_get_stats(g_nodes[1].c, &st);
	CU_ASSERT_EQUAL(st.stale_repairs, 0);
	CU_ASSERT_EQUAL(lookup_all(2, 0, &l), N_KEYS);

	for (int k = 0; k < N_KEYS; k += 2) {
		pc_cluster_stale_loc(g_nodes[1].c, g_keys[k].bytes, g_keys[k].len, &seen[k]);
	}
	pc_cluster_get_stats(g_nodes[1].c, &st);
	CU_ASSERT_EQUAL(st.stale_repairs, N_KEYS / 2);
	pump(100);
	/* Each repaired key had a location on 2 owners: both went. */
	CU_ASSERT_EQUAL(shard_loc_deletes(3), N_KEYS);
	for (int via = 0; via < 3; via++) {
		lookup_wait(via, &l);
		for (int k = 0; k < N_KEYS && l.calls == 1; k++) {
			const struct pc_cluster_lookup_result *r = &l.res[k];

			if (k % 2 == 0) {
				CU_ASSERT_EQUAL(r->status, -ENOENT);
			} else {
				CU_ASSERT_EQUAL(r->status, 0);
				CU_ASSERT_EQUAL(r->n_locs, 1);
				CU_ASSERT_EQUAL(r->locs[0].generation, seen[k].generation);
			}
		}
	}
	pc_cluster_get_stats(g_nodes[1].c, &st);
	CU_ASSERT_EQUAL(st.publish_dropped, 0);
	stop_all();
}

/*
 * node-0 stored every key again (new slots, new generations) before a
 * reader's repairs of the old locations arrived: the repairs name the old
 * generation, so the new locations stay and every lookup finds them.
 */
static void
test_stale_loc_keeps_newer(void)
{
	static struct lk l;
	static struct pc_dir_loc seen[N_KEYS];
	struct pc_cluster_stats st;
	const uint64_t off2 = 1ull << 29;
	const uint64_t gen2 = 1000000;

	for (int i = 0; i < 3; i++) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(node_start(i));
	}
	CU_ASSERT_TRUE_FATAL(converge(3));
	make_keys("newer");
	publish_all(0);
	advance((uint64_t)(TTL_S * 1e9) + S);
	CU_ASSERT_EQUAL_FATAL(lookup_all(1, 0, &l), N_KEYS);
	for (int k = 0; k < N_KEYS; k++) {
		seen[k] = l.res[k].locs[0];
	}
	publish_at(0, off2, gen2);
	for (int k = 0; k < N_KEYS; k++) {
		pc_cluster_stale_loc(g_nodes[1].c, g_keys[k].bytes, g_keys[k].len, &seen[k]);
	}
	pump(100);
	pc_cluster_get_stats(g_nodes[1].c, &st);
	CU_ASSERT_EQUAL(st.stale_repairs, N_KEYS);
	CU_ASSERT_EQUAL(shard_loc_deletes(3), 0);
	for (int via = 0; via < 3; via++) {
		unsigned int right = 0;

		lookup_wait(via, &l);
		for (int k = 0; k < N_KEYS && l.calls == 1; k++) {
			const struct pc_cluster_lookup_result *r = &l.res[k];

			right += r->status == 0 && r->n_locs == 1 &&
				 strcmp(r->locs[0].node_id, "node-0") == 0 &&
				 r->locs[0].generation == gen2 + (uint64_t)k &&
				 r->locs[0].offset == off2 + 4096ull * (uint64_t)k;
		}
		CU_ASSERT_EQUAL(right, N_KEYS);
	}
	/* The repair of the current generation still takes it. */
	lookup_wait(2, &l);
	pc_cluster_stale_loc(g_nodes[2].c, g_keys[0].bytes, g_keys[0].len, &l.res[0].locs[0]);
	pump(100);
	CU_ASSERT_EQUAL(shard_loc_deletes(3), 2);
	lookup_wait(1, &l);
	CU_ASSERT_EQUAL(l.res[0].status, -ENOENT);
	CU_ASSERT_EQUAL(l.res[1].status, 0);
	stop_all();
}

/* A paused owner: lookups fall back to the replica; after member_ttl it is pruned everywhere. */
static void
test_owner_paused_then_pruned(void)
{
	static struct lk l;
	struct pc_cluster_stats st;
	struct pc_cluster_info info;
	uint64_t inc_before;

	for (int i = 0; i < 4; i++) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(node_start(i));
	}
	CU_ASSERT_TRUE_FATAL(converge(4));
	make_keys("pause");
	publish_all(0);
	/* Let the re-shard window of the last join close, so misses are final. */
	advance((uint64_t)(TTL_S * 1e9) + S);
	CU_ASSERT_EQUAL(lookup_all(3, 0, &l), N_KEYS);

	/* node-2 stops answering: its keys come from their second owner, within the deadline. */
	g_nodes[2].paused = true;
	{
		struct lk *lp = &l;
		uint64_t end = mono_ns() + 5 * S;

		memset(lp, 0, sizeof(*lp));
		CU_ASSERT_EQUAL_FATAL(pc_cluster_lookup(g_nodes[3].c, g_keys, N_KEYS, S, lk_cb, lp),
				      0);
		pump(50);
		g_now += S / 2 + MS; /* the first owner's share of the deadline is over */
		while (lp->calls == 0 && mono_ns() < end) {
			pump(5);
		}
		CU_ASSERT_EQUAL(lp->calls, 1);
		for (int k = 0; k < N_KEYS; k++) {
			CU_ASSERT_EQUAL(lp->res[k].status, 0);
		}
	}
	pc_cluster_get_stats(g_nodes[3].c, &st);
	CU_ASSERT(st.lookup_fallbacks > 0);

	/* Past member_ttl the others prune it: three members, and every key still resolves. */
	CU_ASSERT_TRUE(converge(3));
	CU_ASSERT_EQUAL(lookup_all(3, 0, &l), N_KEYS);

	/* It comes back as a new incarnation, and everyone takes it back. */
	pc_cluster_get_info(g_nodes[2].c, &info);
	inc_before = info.incarnation;
	g_nodes[2].paused = false;
	CU_ASSERT_TRUE(converge(4));
	pc_cluster_get_info(g_nodes[2].c, &info);
	CU_ASSERT(info.incarnation > inc_before);
	{
		struct pc_disc_member m;
		struct pc_disc_member all[8];
		int n = pc_cluster_members(g_nodes[0].c, all, 8);
		bool seen = false;

		for (int i = 0; i < n; i++) {
			m = all[i];
			if (strcmp(m.node_id, "node-2") == 0) {
				seen = true;
				CU_ASSERT_EQUAL(m.incarnation, info.incarnation);
			}
		}
		CU_ASSERT_TRUE(seen);
	}
	stop_all();
}

/* A new node joins: entries move to it and every key stays resolvable through every node. */
static void
test_join_reshard(void)
{
	static struct lk l;
	struct pc_cluster_stats st;
	uint64_t republished = 0;

	for (int i = 0; i < 3; i++) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(node_start(i));
	}
	CU_ASSERT_TRUE_FATAL(converge(3));
	make_keys("reshard");
	publish_all(2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(node_start(3));
	CU_ASSERT_TRUE_FATAL(converge(4));
	pump(200);
	for (int i = 0; i < 4; i++) {
		pc_cluster_get_stats(g_nodes[i].c, &st);
		republished += st.republished;
	}
	CU_ASSERT(republished > 0);
	pc_cluster_get_stats(g_nodes[3].c, &st);
	CU_ASSERT(st.shard.entries > 0);
	/* Past the window: every key is where the new ring says, no fallback needed. */
	advance((uint64_t)(TTL_S * 1e9) + S);
	for (int via = 0; via < 4; via++) {
		CU_ASSERT_EQUAL(lookup_all(via, 2, &l), N_KEYS);
	}
	/* The old owners dropped what they no longer own: 2 copies of each key in all. */
	{
		uint64_t entries = 0;

		for (int i = 0; i < 4; i++) {
			pc_cluster_get_stats(g_nodes[i].c, &st);
			entries += st.shard.entries;
			CU_ASSERT_FALSE(st.reshards == 0 && i < 3);
		}
		CU_ASSERT_EQUAL(entries, 2 * N_KEYS);
	}
	stop_all();
}

/* The head is gone: a node given a seed list still joins through the second seed. */
static void
test_head_down_seed_list(void)
{
	char seeds[96];

	for (int i = 0; i < 3; i++) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(node_start(i));
	}
	CU_ASSERT_TRUE_FATAL(converge(3));
	node_stop(0); /* a clean leave: the masters drop it at once */
	CU_ASSERT_TRUE_FATAL(converge(2));
	snprintf(seeds, sizeof(seeds), "127.0.0.1:%u,127.0.0.2:%u", g_meta_port, g_meta_port);
	CU_ASSERT_PTR_NOT_NULL_FATAL(node_start_seeds(3, seeds));
	CU_ASSERT_TRUE(converge(3));
	CU_ASSERT_EQUAL(members_of(3), 3);
	stop_all();
}

static int g_raw_done;
static int g_raw_status;

static void
raw_cb(void *arg, int status, const struct pc_frame_hdr *h, const uint8_t *body, uint32_t len)
{
	(void)arg;
	(void)h;
	(void)body;
	(void)len;
	g_raw_status = status;
	g_raw_done++;
}

/* A peer that authenticates but sends bodies that do not decode is cut off; the rest goes on. */
static void
test_malformed_bodies(void)
{
	struct pc_rpc_opts o = {0};
	struct pc_rpc *cli = pc_rpc_create(&o);
	struct pc_cluster_info info;
	struct pc_cluster_stats st;
	struct pc_rpc_peer *p;
	static const uint8_t junk[] = {5, 0, 0, 0, 0xff};

	CU_ASSERT_PTR_NOT_NULL_FATAL(cli);
	CU_ASSERT_PTR_NOT_NULL_FATAL(node_start(0));
	CU_ASSERT_TRUE_FATAL(converge(1));
	pc_cluster_get_info(g_nodes[0].c, &info);
	p = pc_rpc_peer_get(cli, "127.0.0.1", info.control_port);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	g_raw_done = 0;
	CU_ASSERT_EQUAL(
		pc_rpc_call(p, PC_FRAME_DIR_LOOKUP, junk, sizeof(junk), g_now + S, raw_cb, NULL),
		0);
	for (int k = 0; k < 2000 && g_raw_done == 0; k++) {
		pc_rpc_poll(cli, g_now);
		pump(1);
	}
	CU_ASSERT_EQUAL(g_raw_done, 1);
	CU_ASSERT_EQUAL(g_raw_status, -ECONNRESET);
	pc_cluster_get_stats(g_nodes[0].c, &st);
	CU_ASSERT_EQUAL(st.bad_requests, 1);
	CU_ASSERT_EQUAL(st.rpc.malformed, 1);
	CU_ASSERT_EQUAL(members_of(0), 1);
	pc_rpc_peer_put(p);
	pc_rpc_destroy(cli);
	stop_all();
}

/* ------------------------------------------------------- rdma handshakes */

/* The passive side's handler: what it saw, and what it answers. */
struct qp_srv {
	int calls;
	int rc;                     /* returned */
	bool bad_record;            /* fill in a record that does not encode */
	uint64_t reply_incarnation; /* 0: leave the one the cluster filled in */
	char node_id[PC_DISC_NODE_ID_MAX];
	struct pc_qp_info remote;
	struct pc_qp_info reply; /* filled in (incarnation: as the cluster gave it, unless set) */
};

static int
qp_handler(void *arg, const char *node_id, const struct pc_qp_info *remote,
	   struct pc_qp_info *reply)
{
	struct qp_srv *s = arg;
	uint64_t inc = reply->incarnation;

	s->calls++;
	snprintf(s->node_id, sizeof(s->node_id), "%s", node_id);
	s->remote = *remote;
	if (s->rc != 0) {
		return s->rc;
	}
	*reply = s->reply;
	reply->incarnation = s->reply_incarnation != 0 ? s->reply_incarnation : inc;
	if (s->bad_record) {
		reply->mtu = 0;
	}
	s->reply.incarnation = reply->incarnation;
	return 0;
}

/* The active side's callback. */
struct qp_end {
	int calls;
	int status;
	bool have_reply;
	struct pc_qp_info reply;
};

static void
qp_done(void *arg, int status, const struct pc_qp_info *reply)
{
	struct qp_end *e = arg;

	e->calls++;
	e->status = status;
	e->have_reply = reply != NULL;
	if (reply != NULL) {
		e->reply = *reply;
	}
}

static void
mk_qp(struct pc_qp_info *q, uint64_t incarnation, unsigned int seed)
{
	memset(q, 0, sizeof(*q));
	q->qpn = 0x1000 + seed;
	q->psn = 0xabcde + seed;
	q->lid = (uint16_t)(3 + seed);
	q->mtu = 5;
	for (unsigned int i = 0; i < sizeof(q->gid); i++) {
		q->gid[i] = (uint8_t)(seed * 16 + i);
	}
	q->rkey = 0x5eed0000u + seed;
	q->seg_base = 0x7f1200000000ull + ((uint64_t)seed << 20);
	q->incarnation = incarnation;
}

static bool
qp_eq(const struct pc_qp_info *a, const struct pc_qp_info *b)
{
	return a->qpn == b->qpn && a->psn == b->psn && a->lid == b->lid && a->mtu == b->mtu &&
	       memcmp(a->gid, b->gid, sizeof(a->gid)) == 0 && a->rkey == b->rkey &&
	       a->seg_base == b->seg_base && a->incarnation == b->incarnation;
}

static uint64_t
incarnation_of(int i)
{
	struct pc_cluster_info info;

	pc_cluster_get_info(g_nodes[i].c, &info);
	return info.incarnation;
}

/* Node `from` calls node `to` (at its incarnation) with its own record; wait for the end. */
static void
qp_call_wait(int from, int to, struct qp_end *e)
{
	struct pc_qp_info local;
	char id[16];
	uint64_t end = mono_ns() + 5 * S;

	memset(e, 0, sizeof(*e));
	snprintf(id, sizeof(id), "node-%d", to);
	mk_qp(&local, incarnation_of(from), (unsigned int)from);
	CU_ASSERT_EQUAL_FATAL(pc_cluster_qp_connect(g_nodes[from].c, id, incarnation_of(to), &local,
						    0, qp_done, e),
			      0);
	CU_ASSERT_EQUAL(e->calls, 0); /* never from inside the call */
	while (e->calls == 0 && mono_ns() < end) {
		pump(2);
	}
	CU_ASSERT_EQUAL(e->calls, 1);
}

/* A raw client's call: the reply's status, and an error reply's own. */
static int g_qraw_done;
static int g_qraw_status;
static int32_t g_qraw_err;

static void
qraw_cb(void *arg, int status, const struct pc_frame_hdr *h, const uint8_t *body, uint32_t len)
{
	struct pc_frame_error e;

	(void)arg;
	g_qraw_done++;
	g_qraw_status = status;
	g_qraw_err = 0;
	if (status == 0 && (h->flags & PC_FRAME_F_ERROR) != 0 &&
	    pc_frame_dec_error(body, len, &e) == 0) {
		g_qraw_err = e.status;
	}
}

/* Send a QP_CONNECT body to node i's control port from outside the cluster. */
static void
qp_raw(int i, const void *body, uint32_t len)
{
	struct pc_rpc_opts o = {0};
	struct pc_rpc *cli = pc_rpc_create(&o);
	struct pc_cluster_info info;
	struct pc_rpc_peer *p;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cli);
	pc_cluster_get_info(g_nodes[i].c, &info);
	p = pc_rpc_peer_get(cli, info.host, info.control_port);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	g_qraw_done = 0;
	CU_ASSERT_EQUAL(pc_rpc_call(p, PC_FRAME_QP_CONNECT, body, len, g_now + S, qraw_cb, NULL),
			0);
	for (int k = 0; k < 2000 && g_qraw_done == 0; k++) {
		pc_rpc_poll(cli, g_now);
		pump(1);
	}
	CU_ASSERT_EQUAL(g_qraw_done, 1);
	pc_rpc_peer_put(p);
	pc_rpc_destroy(cli);
}

/*
 * node-1 asks node-0 for a channel: node-0's handler sees node-1's id and
 * record, node-1 gets exactly node-0's record. The handler's error, no
 * handler, a record that does not encode or names another incarnation:
 * each a clear error at the caller.
 */
static void
test_qp_connect(void)
{
	static struct qp_srv srv;
	struct pc_cluster_stats st;
	struct pc_qp_info local;
	struct qp_end e;

	for (int i = 0; i < 3; i++) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(node_start(i));
	}
	CU_ASSERT_TRUE_FATAL(converge(3));
	memset(&srv, 0, sizeof(srv));
	mk_qp(&srv.reply, 0, 7);
	pc_cluster_set_qp_handler(g_nodes[0].c, qp_handler, &srv);

	qp_call_wait(1, 0, &e);
	CU_ASSERT_EQUAL(e.status, 0);
	CU_ASSERT_TRUE(e.have_reply);
	CU_ASSERT_EQUAL(srv.calls, 1);
	CU_ASSERT_STRING_EQUAL(srv.node_id, "node-1");
	mk_qp(&local, incarnation_of(1), 1);
	CU_ASSERT_TRUE(qp_eq(&srv.remote, &local));
	CU_ASSERT_EQUAL(srv.reply.incarnation, incarnation_of(0)); /* filled in by the cluster */
	CU_ASSERT_TRUE(qp_eq(&e.reply, &srv.reply));
	pc_cluster_get_stats(g_nodes[0].c, &st);
	CU_ASSERT_EQUAL(st.qp_requests, 1);
	CU_ASSERT_EQUAL(st.qp_served, 1);
	CU_ASSERT_EQUAL(st.qp_refused, 0);
	pc_cluster_get_stats(g_nodes[1].c, &st);
	CU_ASSERT_EQUAL(st.qp_calls, 1);
	CU_ASSERT_EQUAL(st.qp_failed, 0);

	/* node-2 asks too: its own id and record. */
	qp_call_wait(2, 0, &e);
	CU_ASSERT_EQUAL(e.status, 0);
	CU_ASSERT_EQUAL(srv.calls, 2);
	CU_ASSERT_STRING_EQUAL(srv.node_id, "node-2");
	CU_ASSERT_EQUAL(srv.remote.incarnation, incarnation_of(2));
	CU_ASSERT_EQUAL(srv.remote.qpn, 0x1000 + 2);

	/* The handler's error comes back as it is. */
	srv.rc = -EBUSY;
	qp_call_wait(1, 0, &e);
	CU_ASSERT_EQUAL(e.status, -EBUSY);
	CU_ASSERT_FALSE(e.have_reply);
	CU_ASSERT_EQUAL(srv.calls, 3);
	srv.rc = 0;

	/* A record that does not encode: -EIO from the peer; another incarnation's: -ESTALE. */
	srv.bad_record = true;
	qp_call_wait(1, 0, &e);
	CU_ASSERT_EQUAL(e.status, -EIO);
	srv.bad_record = false;
	srv.reply_incarnation = incarnation_of(0) + 1;
	qp_call_wait(1, 0, &e);
	CU_ASSERT_EQUAL(e.status, -ESTALE);
	CU_ASSERT_FALSE(e.have_reply);
	srv.reply_incarnation = 0;
	CU_ASSERT_EQUAL(srv.calls, 5);

	/* No handler on node-2: -ENOTSUP. */
	qp_call_wait(1, 2, &e);
	CU_ASSERT_EQUAL(e.status, -ENOTSUP);
	pc_cluster_get_stats(g_nodes[2].c, &st);
	CU_ASSERT_EQUAL(st.qp_requests, 1);
	CU_ASSERT_EQUAL(st.qp_refused, 1);
	CU_ASSERT_EQUAL(st.qp_served, 0);

	/* Cleared: the same. */
	pc_cluster_set_qp_handler(g_nodes[0].c, NULL, NULL);
	qp_call_wait(1, 0, &e);
	CU_ASSERT_EQUAL(e.status, -ENOTSUP);
	CU_ASSERT_EQUAL(srv.calls, 5);
	pc_cluster_set_qp_handler(g_nodes[0].c, qp_handler, &srv);
	qp_call_wait(1, 0, &e);
	CU_ASSERT_EQUAL(e.status, 0);
	CU_ASSERT_EQUAL(srv.calls, 6);

	pc_cluster_get_stats(g_nodes[0].c, &st);
	/* Served: three records and the one of another incarnation; refused: -EBUSY, -EIO, none. */
	CU_ASSERT_EQUAL(st.qp_requests, 7);
	CU_ASSERT_EQUAL(st.qp_served, 4);
	CU_ASSERT_EQUAL(st.qp_refused, 3);
	CU_ASSERT_EQUAL(st.bad_requests, 0);
	pc_cluster_get_stats(g_nodes[1].c, &st);
	CU_ASSERT_EQUAL(st.qp_calls, 7);
	CU_ASSERT_EQUAL(st.qp_failed, 5);
	stop_all();
}

/*
 * Refused at once (the callback never runs): a node that is not a member,
 * a member at another incarnation, a record of another incarnation than
 * this node's, bad arguments. Refused by the passive side without its
 * handler: a node id it does not know, a record of another incarnation of
 * a member. A body that does not decode closes the connection. A meta-only
 * engine neither calls nor serves.
 */
static void
test_qp_connect_refused(void)
{
	static struct qp_srv srv;
	struct pc_cluster_stats st;
	struct pc_frame_qp_connect fq;
	struct pc_qp_info local;
	struct qp_end e;
	uint8_t body[PC_FRAME_QP_CONNECT_REQ_MAX];
	int len;

	for (int i = 0; i < 2; i++) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(node_start(i));
	}
	CU_ASSERT_TRUE_FATAL(converge(2));
	memset(&srv, 0, sizeof(srv));
	mk_qp(&srv.reply, 0, 7);
	pc_cluster_set_qp_handler(g_nodes[0].c, qp_handler, &srv);
	memset(&e, 0, sizeof(e));
	mk_qp(&local, incarnation_of(1), 1);

	/* The active side's own checks. */
	CU_ASSERT_EQUAL(pc_cluster_qp_connect(g_nodes[1].c, "node-9", 1, &local, 0, qp_done, &e),
			-EHOSTUNREACH);
	CU_ASSERT_EQUAL(pc_cluster_qp_connect(g_nodes[1].c, "node-0", incarnation_of(0) + 1, &local,
					      0, qp_done, &e),
			-EHOSTUNREACH);
	local.incarnation++;
	CU_ASSERT_EQUAL(pc_cluster_qp_connect(g_nodes[1].c, "node-0", incarnation_of(0), &local, 0,
					      qp_done, &e),
			-ESTALE);
	local.incarnation--;
	local.mtu = 0;
	CU_ASSERT_EQUAL(pc_cluster_qp_connect(g_nodes[1].c, "node-0", incarnation_of(0), &local, 0,
					      qp_done, &e),
			-EINVAL);
	local.mtu = 5;
	CU_ASSERT_EQUAL(pc_cluster_qp_connect(g_nodes[1].c, "node-0", incarnation_of(0), &local, 0,
					      NULL, &e),
			-EINVAL);
	CU_ASSERT_EQUAL(pc_cluster_qp_connect(g_nodes[1].c, NULL, incarnation_of(0), &local, 0,
					      qp_done, &e),
			-EINVAL);
	CU_ASSERT_EQUAL(pc_cluster_qp_connect(g_nodes[1].c, "node-0", incarnation_of(0), NULL, 0,
					      qp_done, &e),
			-EINVAL);
	pump(50);
	CU_ASSERT_EQUAL(e.calls, 0);
	pc_cluster_get_stats(g_nodes[1].c, &st);
	CU_ASSERT_EQUAL(st.qp_calls, 0);

	/* The passive side's: an unknown node id, a member's other incarnation. */
	memset(&fq, 0, sizeof(fq));
	snprintf(fq.node_id, sizeof(fq.node_id), "node-9");
	mk_qp(&fq.info, incarnation_of(1), 1);
	len = pc_frame_enc_qp_connect(body, sizeof(body), &fq);
	CU_ASSERT_FATAL(len > 0);
	qp_raw(0, body, (uint32_t)len);
	CU_ASSERT_EQUAL(g_qraw_status, 0);
	CU_ASSERT_EQUAL(g_qraw_err, -EHOSTUNREACH);
	snprintf(fq.node_id, sizeof(fq.node_id), "node-1");
	fq.info.incarnation = incarnation_of(1) + 1;
	len = pc_frame_enc_qp_connect(body, sizeof(body), &fq);
	qp_raw(0, body, (uint32_t)len);
	CU_ASSERT_EQUAL(g_qraw_err, -ESTALE);
	CU_ASSERT_EQUAL(srv.calls, 0);
	/* The right incarnation from the same client: served (membership counts, not address). */
	fq.info.incarnation = incarnation_of(1);
	len = pc_frame_enc_qp_connect(body, sizeof(body), &fq);
	qp_raw(0, body, (uint32_t)len);
	CU_ASSERT_EQUAL(g_qraw_status, 0);
	CU_ASSERT_EQUAL(g_qraw_err, 0);
	CU_ASSERT_EQUAL(srv.calls, 1);
	pc_cluster_get_stats(g_nodes[0].c, &st);
	CU_ASSERT_EQUAL(st.qp_requests, 3);
	CU_ASSERT_EQUAL(st.qp_refused, 2);
	CU_ASSERT_EQUAL(st.qp_served, 1);

	/* A record that does not decode: the connection is cut, the handler never sees it. */
	body[len - PC_QP_INFO_LEN + 6] = 0; /* mtu */
	qp_raw(0, body, (uint32_t)len);
	CU_ASSERT_EQUAL(g_qraw_status, -ECONNRESET);
	qp_raw(0, body, (uint32_t)len - 1);
	CU_ASSERT_EQUAL(g_qraw_status, -ECONNRESET);
	CU_ASSERT_EQUAL(srv.calls, 1);
	pc_cluster_get_stats(g_nodes[0].c, &st);
	CU_ASSERT_EQUAL(st.qp_requests, 3);
	CU_ASSERT_EQUAL(st.bad_requests, 2);
	CU_ASSERT_EQUAL(st.rpc.malformed, 2);

	/* A meta-only engine: it neither calls nor serves, handler or not. */
	{
		struct pc_cluster_opts o = {.role = PC_DISC_ROLE_META};
		struct node *n = &g_nodes[2];
		bool seen = false;

		node_config(&n->cfg, 2, g_nodes[0].cfg.discovery_addr);
		n->c = pc_cluster_create(&n->cfg, &o, g_now);
		CU_ASSERT_PTR_NOT_NULL_FATAL(n->c);
		pc_cluster_set_qp_handler(n->c, qp_handler, &srv);
		for (int round = 0; round < 20 && !seen; round++) {
			advance((uint64_t)(HB_S * 1e9));
			seen = members_of(1) == 3;
		}
		CU_ASSERT_TRUE_FATAL(seen);
		qp_call_wait(1, 2, &e);
		CU_ASSERT_EQUAL(e.status, -ENOTSUP);
		mk_qp(&local, incarnation_of(2), 2);
		CU_ASSERT_EQUAL(pc_cluster_qp_connect(n->c, "node-0", incarnation_of(0), &local, 0,
						      qp_done, &e),
				-ENOTSUP);
		CU_ASSERT_EQUAL(srv.calls, 1);
	}
	stop_all();
}

/*
 * A peer that stops answering: -ETIMEDOUT at the call's deadline, not
 * before. One that goes away: an error by the deadline. A call in flight
 * at destroy: -ECANCELED, once, from the destroy.
 */
static void
test_qp_connect_deadlines(void)
{
	static struct qp_srv srv;
	struct pc_qp_info local;
	struct qp_end e;
	uint64_t deadline;

	for (int i = 0; i < 3; i++) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(node_start(i));
	}
	CU_ASSERT_TRUE_FATAL(converge(3));
	memset(&srv, 0, sizeof(srv));
	mk_qp(&srv.reply, 0, 7);
	for (int i = 0; i < 3; i++) {
		pc_cluster_set_qp_handler(g_nodes[i].c, qp_handler, &srv);
	}
	/* A first call: the connection is up and node-0 answers. */
	qp_call_wait(1, 0, &e);
	CU_ASSERT_EQUAL(e.status, 0);

	/* node-0 stops: nothing until the deadline (300 ms), then -ETIMEDOUT. */
	g_nodes[0].paused = true;
	memset(&e, 0, sizeof(e));
	mk_qp(&local, incarnation_of(1), 1);
	CU_ASSERT_EQUAL_FATAL(pc_cluster_qp_connect(g_nodes[1].c, "node-0", incarnation_of(0),
						    &local, 300 * MS, qp_done, &e),
			      0);
	deadline = g_now + 300 * MS;
	pump(100);
	g_now = deadline - MS;
	pump(50);
	CU_ASSERT_EQUAL(e.calls, 0);
	g_now = deadline;
	pump(50);
	CU_ASSERT_EQUAL(e.calls, 1);
	CU_ASSERT_EQUAL(e.status, -ETIMEDOUT);
	g_nodes[0].paused = false;
	pump(100); /* node-0 answers late: dropped, no second callback */
	CU_ASSERT_EQUAL(e.calls, 1);
	CU_ASSERT_EQUAL(srv.calls, 2);

	/* node-2 goes away with the call on its way: an error by the deadline. */
	memset(&e, 0, sizeof(e));
	CU_ASSERT_EQUAL_FATAL(pc_cluster_qp_connect(g_nodes[1].c, "node-2", incarnation_of(2),
						    &local, 300 * MS, qp_done, &e),
			      0);
	deadline = g_now + 300 * MS;
	node_stop(2);
	pump(100);
	g_now = deadline;
	pump(50);
	CU_ASSERT_EQUAL(e.calls, 1);
	CU_ASSERT(e.status == -EHOSTUNREACH || e.status == -ETIMEDOUT);
	CU_ASSERT_FALSE(e.have_reply);

	/* node-1 destroyed with a call in flight: -ECANCELED from the destroy, exactly once. */
	memset(&e, 0, sizeof(e));
	CU_ASSERT_EQUAL_FATAL(pc_cluster_qp_connect(g_nodes[1].c, "node-0", incarnation_of(0),
						    &local, 0, qp_done, &e),
			      0);
	node_stop(1);
	CU_ASSERT_EQUAL(e.calls, 1);
	CU_ASSERT_EQUAL(e.status, -ECANCELED);
	pump(100);
	CU_ASSERT_EQUAL(e.calls, 1);
	stop_all();
}

static void
test_bad_arguments(void)
{
	struct lk l;
	struct pc_dir_key k = {.bytes = "x", .len = 1};
	struct pc_dir_key empty = {.bytes = "x", .len = 0};

	CU_ASSERT_PTR_NOT_NULL_FATAL(node_start(0));
	CU_ASSERT_EQUAL(pc_cluster_lookup(g_nodes[0].c, &k, 0, 0, lk_cb, &l), -EINVAL);
	CU_ASSERT_EQUAL(
		pc_cluster_lookup(g_nodes[0].c, &k, PC_CLUSTER_LOOKUP_MAX + 1, 0, lk_cb, &l),
		-EINVAL);
	CU_ASSERT_EQUAL(pc_cluster_lookup(g_nodes[0].c, &empty, 1, 0, lk_cb, &l), -EINVAL);
	CU_ASSERT_EQUAL(pc_cluster_lookup(g_nodes[0].c, &k, 1, 0, NULL, &l), -EINVAL);
	/* A lookup pending at destroy ends with -ECANCELED, once. */
	memset(&l, 0, sizeof(l));
	CU_ASSERT_EQUAL(pc_cluster_lookup(g_nodes[0].c, &k, 1, 0, lk_cb, &l), 0);
	CU_ASSERT_EQUAL(l.calls, 0);
	node_stop(0);
	CU_ASSERT_EQUAL(l.calls, 1);
	CU_ASSERT_EQUAL(l.res[0].status, -ECANCELED);
	/* A meta port held by another engine on the host: this one runs without a master. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(node_start(0));
	{
		struct pc_config cfg;
		struct pc_cluster_opts o = {.role = PC_DISC_ROLE_META};
		struct pc_cluster_info info;
		struct pc_cluster *second;

		node_config(&cfg, 0, g_nodes[0].cfg.discovery_addr);
		snprintf(cfg.node_id, sizeof(cfg.node_id), "meta-twin");
		second = pc_cluster_create(&cfg, &o, g_now);
		CU_ASSERT_PTR_NOT_NULL_FATAL(second);
		pc_cluster_get_info(second, &info);
		CU_ASSERT_EQUAL(info.meta_port, 0);
		CU_ASSERT_EQUAL(pc_cluster_lookup(second, &k, 1, 0, lk_cb, &l), -ENOTSUP);
		pc_cluster_destroy(second);
	}
	/* A seed that is not an address and does not resolve: refused with an error. */
	{
		struct pc_config cfg;
		struct pc_cluster_opts o = {.role = PC_DISC_ROLE_INFERENCE};

		node_config(&cfg, 1, "no-such-host.invalid:31998");
		CU_ASSERT_PTR_NULL(pc_cluster_create(&cfg, &o, g_now));
	}
	stop_all();
}

static const struct pc_ut_test g_tests[] = {
	{"4 nodes join through the head and agree", test_join_and_agree},
	{"publish, lookup from every node, unpublish own only", test_publish_lookup_unpublish},
	{"stale location repair: only the repaired keys miss", test_stale_loc_repair},
	{"stale location repair keeps the owner's newer location", test_stale_loc_keeps_newer},
	{"paused owner: replica fallback, pruned, back", test_owner_paused_then_pruned},
	{"a join re-shards; every key resolvable", test_join_reshard},
	{"head down: a seed list still joins", test_head_down_seed_list},
	{"malformed bodies close the connection", test_malformed_bodies},
	{"QP_CONNECT: records both ways, handler errors, no handler", test_qp_connect},
	{"QP_CONNECT: refused at once, refused by the peer, meta-only", test_qp_connect_refused},
	{"QP_CONNECT: timeout, peer gone, cancelled by destroy", test_qp_connect_deadlines},
	{"bad arguments, cancel, shared meta port, bad seed", test_bad_arguments},
	{NULL, NULL},
};

static const struct pc_ut_suite g_suites[] = {
	{"cluster", suite_init, NULL, g_tests},
};

int
main(void)
{
	return pc_ut_run(g_suites, PC_ARRAY_SIZE(g_suites));
}
