/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * control/discovery.c on a fake clock: the master's TTL boundaries and
 * incarnation fencing, the master set (pinned head, host order, promotion,
 * same answer from any order), the node's union of differing views, ring
 * rebuilds only on a set change, seeds when the head is down, a paused and
 * a restarted node, and a small cluster of real masters and nodes wired by
 * a synchronous fake RPC. Then the start-up helpers on a temp dir.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../../control/discovery.c"
#include "ring.h"
#include "ut.h"

#define MS   1000000ull
#define SEC  1000000000ull
#define HB   (2 * SEC)
#define TTL  (6 * SEC)
#define META 31998

/* ------------------------------------------------------------ helpers */

static void
mk(struct pc_disc_member *m, const char *id, uint64_t inc, const char *host, uint16_t meta_port)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->node_id, sizeof(m->node_id), "%s", id);
	m->incarnation = inc;
	m->role = PC_DISC_ROLE_STORAGE;
	snprintf(m->hostname, sizeof(m->hostname), "%s", host);
	snprintf(m->control.host, sizeof(m->control.host), "%s", host);
	m->control.port = 32000;
	snprintf(m->data.host, sizeof(m->data.host), "%s", host);
	m->data.port = 32001;
	m->meta_port = meta_port;
	m->pool_capacity = 1ull << 30;
}

#define EVLOG_MAX 256

struct evlog {
	unsigned int n;
	enum pc_disc_event_type type[EVLOG_MAX];
	char id[EVLOG_MAX][PC_DISC_NODE_ID_MAX];
	uint64_t inc[EVLOG_MAX];
	uint64_t old_inc[EVLOG_MAX];
	unsigned int count[PC_DISC_EV_MASTERS_CHANGED + 1];
};

static void
evlog_cb(void *arg, const struct pc_disc_event *ev)
{
	struct evlog *l = arg;

	l->count[ev->type]++;
	if (l->n == EVLOG_MAX) {
		return;
	}
	l->type[l->n] = ev->type;
	l->id[l->n][0] = '\0';
	if (ev->member != NULL) {
		snprintf(l->id[l->n], PC_DISC_NODE_ID_MAX, "%s", ev->member->node_id);
		l->inc[l->n] = ev->member->incarnation;
	}
	l->old_inc[l->n] = ev->old_incarnation;
	l->n++;
}

static bool
has_event(const struct evlog *l, enum pc_disc_event_type type, const char *id)
{
	for (unsigned int i = 0; i < l->n; i++) {
		if (l->type[i] == type && strcmp(l->id[i], id) == 0) {
			return true;
		}
	}
	return false;
}

static bool
ep_is(const struct pc_disc_endpoint *ep, const char *host, uint16_t port)
{
	return strcmp(ep->host, host) == 0 && ep->port == port;
}

/* ------------------------------------------------------------- master */

static void
test_master_ttl_boundary(void)
{
	struct evlog log = {0};
	struct pc_disc_master *m = pc_disc_master_create(16, TTL, 100, evlog_cb, &log);
	struct pc_disc_member a, b;
	const uint64_t t0 = 1000 * SEC;

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	mk(&a, "node-a", 5, "10.0.0.1", META);
	mk(&b, "node-b", 5, "10.0.0.2", META);
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &a, t0), 0);
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &b, t0), 0);
	CU_ASSERT_EQUAL(pc_disc_master_epoch(m), 102);
	CU_ASSERT_EQUAL(pc_disc_master_heartbeat(m, "node-a", 5, t0 + SEC), 0);

	/* b, last seen t0: silent just under, then exactly the TTL, stays; 1 ns over goes. */
	CU_ASSERT_EQUAL(pc_disc_master_prune(m, t0 + TTL - 1), 0);
	CU_ASSERT_EQUAL(pc_disc_master_prune(m, t0 + TTL), 0);
	CU_ASSERT_EQUAL(pc_disc_master_count(m), 2);
	CU_ASSERT_EQUAL(pc_disc_master_prune(m, t0 + TTL + 1), 1);
	CU_ASSERT_EQUAL(pc_disc_master_count(m), 1);
	CU_ASSERT_TRUE(has_event(&log, PC_DISC_EV_LEFT, "node-b"));
	/* a, last seen t0+1s: the same boundary, one second later. */
	CU_ASSERT_EQUAL(pc_disc_master_prune(m, t0 + SEC + TTL), 0);
	CU_ASSERT_EQUAL(pc_disc_master_prune(m, t0 + SEC + TTL + 1), 1);
	CU_ASSERT_EQUAL(pc_disc_master_count(m), 0);
	CU_ASSERT_EQUAL(pc_disc_master_epoch(m), 104);
	CU_ASSERT_EQUAL(log.count[PC_DISC_EV_JOINED], 2);
	CU_ASSERT_EQUAL(log.count[PC_DISC_EV_LEFT], 2);
	CU_ASSERT_EQUAL(pc_disc_master_heartbeat(m, "node-a", 5, t0 + 8 * SEC), -ENOENT);

	/* The expiry does not wait for prune(): a heartbeat 1 ns late is unknown. */
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &a, t0 + 20 * SEC), 0);
	CU_ASSERT_EQUAL(pc_disc_master_heartbeat(m, "node-a", 5, t0 + 20 * SEC + TTL), 0);
	CU_ASSERT_EQUAL(pc_disc_master_heartbeat(m, "node-a", 5, t0 + 20 * SEC + 2 * TTL + 1),
			-ENOENT);
	CU_ASSERT_EQUAL(pc_disc_master_count(m), 0);
	pc_disc_master_destroy(m);
}

static void
test_master_incarnation(void)
{
	struct evlog log = {0};
	struct pc_disc_master *m = pc_disc_master_create(16, TTL, 0, evlog_cb, &log);
	struct pc_disc_master_stats st;
	struct pc_disc_member a5, a7, out[4];
	uint64_t epoch;

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	mk(&a5, "node-a", 5, "10.0.0.1", META);
	mk(&a7, "node-a", 7, "10.0.0.1", META);
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &a5, SEC), 0);
	/* A restart: the newer incarnation replaces the older, as a leave and a join. */
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &a7, 2 * SEC), 0);
	CU_ASSERT_EQUAL_FATAL(log.n, 3);
	CU_ASSERT_EQUAL(log.type[1], PC_DISC_EV_LEFT);
	CU_ASSERT_EQUAL(log.inc[1], 5);
	CU_ASSERT_EQUAL(log.type[2], PC_DISC_EV_JOINED);
	CU_ASSERT_EQUAL(log.inc[2], 7);
	CU_ASSERT_EQUAL(pc_disc_master_list(m, 2 * SEC, out, 4, &epoch), 1);
	CU_ASSERT_EQUAL(out[0].incarnation, 7);
	CU_ASSERT_EQUAL(epoch, 2);
	/* The old process's messages are refused and counted. */
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &a5, 3 * SEC), -ESTALE);
	CU_ASSERT_EQUAL(pc_disc_master_heartbeat(m, "node-a", 5, 3 * SEC), -ESTALE);
	CU_ASSERT_EQUAL(pc_disc_master_deregister(m, "node-a", 5, 3 * SEC), -ESTALE);
	CU_ASSERT_EQUAL(pc_disc_master_heartbeat(m, "node-a", 7, 3 * SEC), 0);
	/* A newer one that has not registered yet must register. */
	CU_ASSERT_EQUAL(pc_disc_master_heartbeat(m, "node-a", 9, 3 * SEC), -ENOENT);
	pc_disc_master_get_stats(m, &st);
	CU_ASSERT_EQUAL(st.stale_rejected, 3);
	CU_ASSERT_EQUAL(st.replaced, 1);
	CU_ASSERT_EQUAL(pc_disc_master_count(m), 1);
	CU_ASSERT_EQUAL(pc_disc_master_epoch(m), 2);
	/* A clean leave: gone at once, and its incarnation is fenced. */
	CU_ASSERT_EQUAL(pc_disc_master_deregister(m, "node-a", 7, 4 * SEC), 0);
	CU_ASSERT_EQUAL(pc_disc_master_count(m), 0);
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &a5, 4 * SEC), -ESTALE);
	pc_disc_master_destroy(m);
}

static void
test_master_unknown_heartbeat(void)
{
	struct pc_disc_master *m = pc_disc_master_create(16, TTL, 0, NULL, NULL);
	struct pc_disc_master_stats st;
	struct pc_disc_member a;

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	mk(&a, "node-a", 5, "10.0.0.1", META);
	CU_ASSERT_EQUAL(pc_disc_master_heartbeat(m, "node-a", 5, SEC), -ENOENT);
	CU_ASSERT_EQUAL(pc_disc_master_heartbeat(m, "bad#id", 5, SEC), -EINVAL);
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &a, SEC), 0);
	CU_ASSERT_EQUAL(pc_disc_master_heartbeat(m, "node-a", 5, SEC), 0);
	pc_disc_master_get_stats(m, &st);
	CU_ASSERT_EQUAL(st.unknown, 1);
	CU_ASSERT_EQUAL(st.heartbeats, 1);
	pc_disc_master_destroy(m);
}

static void
test_master_list_full_invalid(void)
{
	struct pc_disc_master *m = pc_disc_master_create(3, TTL, 10, NULL, NULL);
	struct pc_disc_member a, b, c, d, bad, out[3];
	uint64_t epoch = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	mk(&a, "a", 1, "10.0.0.1", META);
	mk(&b, "b", 1, "10.0.0.2", META);
	mk(&c, "c", 1, "10.0.0.3", META);
	mk(&d, "d", 1, "10.0.0.4", META);
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &c, SEC), 0);
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &a, SEC), 0);
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &b, SEC), 0);
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &d, SEC), -ENOSPC);
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &a, 2 * SEC), 0); /* a refresh still fits */
	CU_ASSERT_EQUAL(pc_disc_master_epoch(m), 13); /* an identical refresh: same */
	a.pool_used = 4096;
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &a, 2 * SEC), 0);
	CU_ASSERT_EQUAL(pc_disc_master_epoch(m), 14);
	CU_ASSERT_EQUAL(pc_disc_master_list(m, 2 * SEC, out, 2, &epoch), -ENOBUFS);
	CU_ASSERT_EQUAL_FATAL(pc_disc_master_list(m, 2 * SEC, out, 3, &epoch), 3);
	CU_ASSERT_STRING_EQUAL(out[0].node_id, "a");
	CU_ASSERT_STRING_EQUAL(out[1].node_id, "b");
	CU_ASSERT_STRING_EQUAL(out[2].node_id, "c");
	CU_ASSERT_EQUAL(out[0].pool_used, 4096);
	CU_ASSERT_EQUAL(epoch, 14);

	mk(&bad, "x#1", 1, "10.0.0.9", META);
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &bad, SEC), -EINVAL);
	mk(&bad, "x", 0, "10.0.0.9", META);
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &bad, SEC), -EINVAL);
	mk(&bad, "x", 1, "", META);
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &bad, SEC), -EINVAL);
	mk(&bad, "x", 1, "10.0.0.9", META);
	bad.control.port = 0;
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &bad, SEC), -EINVAL);
	mk(&bad, "x", 1, "10.0.0.9", META);
	bad.role = (enum pc_disc_role)3;
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &bad, SEC), -EINVAL);
	mk(&bad, "x", 1, "10.0.0.9", META);
	memset(bad.hostname, 'h', sizeof(bad.hostname)); /* no NUL */
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &bad, SEC), -EINVAL);
	mk(&bad, "x", 1, "10.0.0.9 evil\n", META);
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &bad, SEC), -EINVAL);
	memset(bad.node_id, 'n', sizeof(bad.node_id)); /* 64 bytes, no NUL */
	CU_ASSERT_EQUAL(pc_disc_member_check(&bad), -EINVAL);
	CU_ASSERT_EQUAL(pc_disc_master_count(m), 3);
	pc_disc_master_destroy(m);
}

/*
 * SIGSTOP for 2 x TTL: pruned. The same process resuming is unknown and
 * re-registers (same incarnation, allowed back). A restart brings a new
 * incarnation; from then on the old one's messages are refused, even once
 * the new one is pruned too (the fence).
 */
static void
test_master_sigstop(void)
{
	struct evlog log = {0};
	struct pc_disc_master *m = pc_disc_master_create(16, TTL, 0, evlog_cb, &log);
	struct pc_disc_master_stats st;
	struct pc_disc_member x1, x2;
	uint64_t t = 10 * SEC;

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	mk(&x1, "node-x", 1000, "10.0.0.7", META);
	mk(&x2, "node-x", 2000, "10.0.0.7", META);
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &x1, t), 0);
	for (int i = 0; i < 5; i++) {
		t += HB;
		CU_ASSERT_EQUAL(pc_disc_master_heartbeat(m, "node-x", 1000, t), 0);
	}
	t += 2 * TTL; /* stopped */
	CU_ASSERT_EQUAL(pc_disc_master_prune(m, t), 1);
	CU_ASSERT_TRUE(has_event(&log, PC_DISC_EV_LEFT, "node-x"));
	/* SIGCONT: the same process is told to register, and may. */
	CU_ASSERT_EQUAL(pc_disc_master_heartbeat(m, "node-x", 1000, t), -ENOENT);
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &x1, t), 0);
	/* Stopped again, and this time restarted by its supervisor. */
	t += 2 * TTL;
	CU_ASSERT_EQUAL(pc_disc_master_prune(m, t), 1);
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &x2, t), 0);
	CU_ASSERT_EQUAL(log.count[PC_DISC_EV_JOINED], 3);
	/* The old process wakes up: every message of it is refused. */
	CU_ASSERT_EQUAL(pc_disc_master_heartbeat(m, "node-x", 1000, t + SEC), -ESTALE);
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &x1, t + SEC), -ESTALE);
	/* The new one dies too: the fence still refuses the old one. */
	t += 2 * TTL;
	CU_ASSERT_EQUAL(pc_disc_master_prune(m, t), 1);
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &x1, t), -ESTALE);
	CU_ASSERT_EQUAL(pc_disc_master_heartbeat(m, "node-x", 1000, t), -ESTALE);
	CU_ASSERT_EQUAL(pc_disc_master_count(m), 0);
	pc_disc_master_get_stats(m, &st);
	CU_ASSERT_EQUAL(st.stale_rejected, 4);
	/* After PC_DISC_FENCE_TTLS x TTL the fence is gone. */
	t += PC_DISC_FENCE_TTLS * TTL;
	pc_disc_master_prune(m, t);
	CU_ASSERT_EQUAL(pc_disc_master_register(m, &x1, t), 0);
	pc_disc_master_destroy(m);
}

/* --------------------------------------------------------- master set */

static void
test_host_order(void)
{
	/* The seed's string order put 10.0.0.10 before 10.0.0.9. */
	CU_ASSERT_TRUE(pc_disc_host_cmp("10.0.0.9", "10.0.0.10") < 0);
	CU_ASSERT_TRUE(pc_disc_host_cmp("10.0.0.10", "9.0.0.1") > 0);
	CU_ASSERT_TRUE(pc_disc_host_cmp("192.168.1.1", "::1") < 0); /* IPv4 first */
	CU_ASSERT_TRUE(pc_disc_host_cmp("fe80::1", "alpha") < 0);   /* literals before names */
	CU_ASSERT_TRUE(pc_disc_host_cmp("node-a", "node-b") < 0);
	CU_ASSERT_EQUAL(pc_disc_host_cmp("::1", "0:0:0:0:0:0:0:1"), 0); /* same address */
}

static int
compute(const char *head_host, const struct pc_disc_member *mem, unsigned int n,
	unsigned int max_masters, struct pc_disc_endpoint *out)
{
	struct pc_disc_endpoint head;

	ep_set(&head, head_host, META);
	return pc_disc_masters_compute(&head, mem, n, max_masters, out, PC_DISC_MASTERS_MAX);
}

static void
test_masters_head_pinned(void)
{
	struct pc_disc_member mem[4];
	struct pc_disc_endpoint out[PC_DISC_MASTERS_MAX];

	/* The head sorts last by address, and is first all the same. */
	mk(&mem[0], "n-head", 1, "10.0.0.200", META);
	mk(&mem[1], "n-10", 1, "10.0.0.10", META);
	mk(&mem[2], "n-9", 1, "10.0.0.9", META);
	mk(&mem[3], "n-100", 1, "10.0.0.100", META);
	CU_ASSERT_EQUAL_FATAL(compute("10.0.0.200", mem, 4, 3, out), 3);
	CU_ASSERT_TRUE(ep_is(&out[0], "10.0.0.200", META));
	CU_ASSERT_TRUE(ep_is(&out[1], "10.0.0.9", META)); /* numeric, not string order */
	CU_ASSERT_TRUE(ep_is(&out[2], "10.0.0.10", META));
	/* Pinned even when it is not a member at all (down, or a dedicated meta host). */
	CU_ASSERT_EQUAL_FATAL(compute("10.0.0.250", mem + 1, 3, 3, out), 3);
	CU_ASSERT_TRUE(ep_is(&out[0], "10.0.0.250", META));
	CU_ASSERT_TRUE(ep_is(&out[1], "10.0.0.9", META));
	CU_ASSERT_TRUE(ep_is(&out[2], "10.0.0.10", META));
	/* max_masters 1: the head alone. */
	CU_ASSERT_EQUAL(compute("10.0.0.200", mem, 4, 1, out), 1);
	CU_ASSERT_EQUAL(compute("10.0.0.200", mem, 4, 0, out), -EINVAL);
}

static void
test_masters_three_of_five(void)
{
	struct pc_disc_member mem[5];
	struct pc_disc_endpoint out[PC_DISC_MASTERS_MAX];

	mk(&mem[0], "n-e", 1, "host-e", META); /* the head */
	mk(&mem[1], "n-c", 1, "host-c", META);
	mk(&mem[2], "n-a", 1, "host-a", META);
	mk(&mem[3], "n-d", 1, "host-d", META);
	mk(&mem[4], "n-b", 1, "host-b", META);
	CU_ASSERT_EQUAL_FATAL(compute("host-e", mem, 5, 3, out), 3);
	CU_ASSERT_TRUE(ep_is(&out[0], "host-e", META));
	CU_ASSERT_TRUE(ep_is(&out[1], "host-a", META));
	CU_ASSERT_TRUE(ep_is(&out[2], "host-b", META));
}

static void
test_masters_promotion_deterministic(void)
{
	struct pc_disc_member mem[6], shuffled[6];
	struct pc_disc_endpoint ref[PC_DISC_MASTERS_MAX], out[PC_DISC_MASTERS_MAX];
	unsigned int seed = 12345;
	int k;

	mk(&mem[0], "n-head", 1, "10.1.0.1", META);
	mk(&mem[1], "n-a", 1, "10.0.0.1", META);
	mk(&mem[2], "n-b", 1, "10.0.0.2", META);
	mk(&mem[3], "n-c", 1, "10.0.0.3", META);
	/* Two engines on one host, distinct meta ports: ordered by node id. */
	mk(&mem[4], "n-d2", 1, "10.0.0.4", META + 2);
	mk(&mem[5], "n-d1", 1, "10.0.0.4", META + 1);
	CU_ASSERT_EQUAL_FATAL(compute("10.1.0.1", mem, 6, 3, ref), 3);
	CU_ASSERT_TRUE(ep_is(&ref[1], "10.0.0.1", META));
	CU_ASSERT_TRUE(ep_is(&ref[2], "10.0.0.2", META));

	/* n-a dies: once the lists drop it, n-c is promoted, on every node alike. */
	memmove(&mem[1], &mem[2], 4 * sizeof(mem[0]));
	for (int round = 0; round < 50; round++) {
		memcpy(shuffled, mem, 5 * sizeof(mem[0]));
		for (int i = 4; i > 0; i--) {
			int j = (int)(rand_r(&seed) % (unsigned int)(i + 1));
			struct pc_disc_member tmp = shuffled[i];

			shuffled[i] = shuffled[j];
			shuffled[j] = tmp;
		}
		k = compute("10.1.0.1", shuffled, 5, 3, out);
		CU_ASSERT_EQUAL_FATAL(k, 3);
		CU_ASSERT_TRUE(ep_is(&out[0], "10.1.0.1", META));
		CU_ASSERT_TRUE(ep_is(&out[1], "10.0.0.2", META));
		CU_ASSERT_TRUE(ep_is(&out[2], "10.0.0.3", META));
		/* max 6: both engines of 10.0.0.4, n-d1 (its id sorts first) before n-d2. */
		k = compute("10.1.0.1", shuffled, 5, 6, out);
		CU_ASSERT_EQUAL_FATAL(k, 5);
		CU_ASSERT_TRUE(ep_is(&out[3], "10.0.0.4", META + 1));
		CU_ASSERT_TRUE(ep_is(&out[4], "10.0.0.4", META + 2));
	}
}

static void
test_masters_small_cluster(void)
{
	struct pc_disc_member mem[3];
	struct pc_disc_endpoint out[PC_DISC_MASTERS_MAX];

	/* Two hosts, max_masters 3: both are masters. */
	mk(&mem[0], "n-head", 1, "10.0.0.1", META);
	mk(&mem[1], "n-other", 1, "10.0.0.2", META);
	CU_ASSERT_EQUAL_FATAL(compute("10.0.0.1", mem, 2, 3, out), 2);
	CU_ASSERT_TRUE(ep_is(&out[0], "10.0.0.1", META));
	CU_ASSERT_TRUE(ep_is(&out[1], "10.0.0.2", META));
	/* A shared meta endpoint counts once; a member without a master is never one. */
	mk(&mem[2], "n-twin", 1, "10.0.0.2", META);
	CU_ASSERT_EQUAL(compute("10.0.0.1", mem, 3, 3, out), 2);
	mem[1].meta_port = 0;
	mem[2].meta_port = 0;
	CU_ASSERT_EQUAL(compute("10.0.0.1", mem, 3, 3, out), 1);
	CU_ASSERT_EQUAL(compute("10.0.0.1", NULL, 0, 3, out), 1);
}

/* --------------------------------------------------------------- node */

static struct pc_disc_node *
node_new(const char *id, uint64_t inc, const char *host, uint16_t meta_port, const char *seeds,
	 unsigned int max_masters, struct evlog *log, uint64_t now)
{
	struct pc_disc_member self;
	struct pc_disc_node_params p = {
		.self = &self,
		.discovery_addr = seeds,
		.max_masters = max_masters,
		.max_members = 64,
		.heartbeat_interval_ns = HB,
		.member_ttl_ns = TTL,
		.cb = log != NULL ? evlog_cb : NULL,
		.cb_arg = log,
	};

	mk(&self, id, inc, host, meta_port);
	return pc_disc_node_create(&p, now);
}

/* The action for host in acts[0..n), or NULL. */
static const struct pc_disc_action *
act_to(const struct pc_disc_action *acts, int n, const char *host)
{
	for (int i = 0; i < n; i++) {
		if (strcmp(acts[i].to.host, host) == 0) {
			return &acts[i];
		}
	}
	return NULL;
}

static bool
node_has(const struct pc_disc_node *node, const char *id, uint64_t inc)
{
	struct pc_disc_member m;

	return pc_disc_node_member(node, id, &m) == 0 && (inc == 0 || m.incarnation == inc);
}

/* Fail the target's request three times in a row, one heartbeat interval apart. */
static void
fail_three(struct pc_disc_node *node, uint64_t *t, const char *host, const char *ok_host,
	   uint64_t ok_epoch)
{
	struct pc_disc_action acts[8] = {0};

	for (int i = 0; i < PC_DISC_FAILS_MAX; i++) {
		const struct pc_disc_action *a;
		int n;

		*t += HB;
		n = pc_disc_node_due(node, *t, acts, 8);
		a = act_to(acts, n, host);
		CU_ASSERT_PTR_NOT_NULL_FATAL(a);
		CU_ASSERT_EQUAL(pc_disc_node_on_failure(node, a->token, *t, -ECONNREFUSED), 0);
		a = ok_host != NULL ? act_to(acts, n, ok_host) : NULL;
		if (a != NULL) {
			CU_ASSERT_EQUAL(a->type, PC_DISC_ACT_HEARTBEAT);
			CU_ASSERT_EQUAL(pc_disc_node_on_heartbeat(node, a->token, *t, 0, ok_epoch),
					0);
		}
	}
}

/*
 * Two seeds with differing views: the newest incarnation wins, a member only
 * one master lists is a member, one no master lists any more leaves, a dead
 * master's view stops counting, and with every master down the last
 * membership stays.
 */
static void
test_node_union(void)
{
	struct evlog log = {0};
	struct pc_disc_node *node;
	struct pc_disc_member va[3], vb[2];
	struct pc_disc_action acts[8] = {0};
	struct pc_disc_node_stats st;
	const struct pc_disc_action *a, *b;
	uint64_t t = 100 * SEC;
	int n;

	/* meta_port 0 on every record: the targets stay the two seeds. */
	node = node_new("self", 50, "10.0.1.1", 0, "10.0.0.1:31998, 10.0.0.2:31998", 3, &log, t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(node);
	CU_ASSERT_EQUAL(pc_disc_node_member_count(node), 1); /* itself */
	n = pc_disc_node_due(node, t, acts, 8);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_TRUE(ep_is(&acts[0].to, "10.0.0.1", META)); /* the head first */
	CU_ASSERT_EQUAL(acts[0].type, PC_DISC_ACT_REGISTER);
	CU_ASSERT_TRUE(ep_is(&acts[1].to, "10.0.0.2", META));
	CU_ASSERT_EQUAL(acts[1].type, PC_DISC_ACT_REGISTER);
	CU_ASSERT_EQUAL(pc_disc_node_due(node, t, acts + 2, 6), 0); /* one request per target */

	mk(&va[0], "x", 1, "10.0.2.1", 0);
	mk(&va[1], "y", 1, "10.0.2.2", 0);
	mk(&va[2], "self", 50, "10.0.1.1", 0);
	mk(&vb[0], "x", 2, "10.0.2.1", 0); /* x restarted; only B has heard */
	mk(&vb[1], "z", 1, "10.0.2.3", 0);
	CU_ASSERT_EQUAL(pc_disc_node_on_register(node, acts[0].token, t, 0, 10, va, 3), 0);
	CU_ASSERT_EQUAL(pc_disc_node_on_register(node, acts[1].token, t, 0, 20, vb, 2), 0);
	CU_ASSERT_EQUAL(pc_disc_node_member_count(node), 4);
	CU_ASSERT_TRUE(node_has(node, "x", 2));
	CU_ASSERT_TRUE(node_has(node, "y", 1));
	CU_ASSERT_TRUE(node_has(node, "z", 1));
	CU_ASSERT_TRUE(has_event(&log, PC_DISC_EV_RESTARTED, "x"));
	CU_ASSERT_EQUAL(log.count[PC_DISC_EV_JOINED], 3);
	/* A late duplicate of a reply is ignored. */
	CU_ASSERT_EQUAL(pc_disc_node_on_register(node, acts[0].token, t, 0, 10, va, 3), -ESTALE);

	/* Heartbeats: A's epoch moved, so its list is fetched; it still lists x@1. */
	t += HB;
	n = pc_disc_node_due(node, t, acts, 8);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_EQUAL(acts[0].type, PC_DISC_ACT_HEARTBEAT);
	CU_ASSERT_EQUAL(pc_disc_node_on_heartbeat(node, acts[0].token, t, 0, 11), 0);
	CU_ASSERT_EQUAL(pc_disc_node_on_heartbeat(node, acts[1].token, t, 0, 20), 0);
	n = pc_disc_node_due(node, t, acts, 8);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(acts[0].type, PC_DISC_ACT_MEMBERS);
	CU_ASSERT_TRUE(ep_is(&acts[0].to, "10.0.0.1", META));
	CU_ASSERT_EQUAL(pc_disc_node_on_members(node, acts[0].token, t, 11, va, 3), 0);
	CU_ASSERT_TRUE(node_has(node, "x", 2)); /* the newest incarnation stands */
	pc_disc_node_get_stats(node, &st);
	CU_ASSERT_EQUAL(st.stale_records, 1);

	/* B forgets z: no master lists it, it leaves. y, known to A only, stays. */
	t += HB;
	n = pc_disc_node_due(node, t, acts, 8);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_EQUAL(pc_disc_node_on_heartbeat(node, acts[0].token, t, 0, 11), 0);
	CU_ASSERT_EQUAL(pc_disc_node_on_heartbeat(node, acts[1].token, t, 0, 21), 0);
	n = pc_disc_node_due(node, t, acts, 8);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_TRUE(ep_is(&acts[0].to, "10.0.0.2", META));
	CU_ASSERT_EQUAL(pc_disc_node_on_members(node, acts[0].token, t, 21, vb, 1), 0);
	CU_ASSERT_FALSE(node_has(node, "z", 0));
	CU_ASSERT_TRUE(has_event(&log, PC_DISC_EV_LEFT, "z"));
	CU_ASSERT_TRUE(node_has(node, "y", 1));

	/* A stops answering: after PC_DISC_FAILS_MAX failures its view goes, and y with it. */
	fail_three(node, &t, "10.0.0.1", "10.0.0.2", 21);
	pc_disc_node_get_stats(node, &st);
	CU_ASSERT_EQUAL(st.unreachable, 1);
	CU_ASSERT_FALSE(node_has(node, "y", 0));
	CU_ASSERT_TRUE(node_has(node, "x", 2));
	/* A unreachable is asked to REGISTER again, every interval. */
	n = pc_disc_node_due(node, t + HB, acts, 8);
	a = act_to(acts, n, "10.0.0.1");
	b = act_to(acts, n, "10.0.0.2");
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(a->type, PC_DISC_ACT_REGISTER);
	CU_ASSERT_EQUAL(pc_disc_node_on_failure(node, a->token, t + HB, -ECONNREFUSED), 0);
	CU_ASSERT_EQUAL(pc_disc_node_on_failure(node, b->token, t + HB, -ETIMEDOUT), 0);
	t += HB;

	/* B goes too: nothing answers, so the last membership is kept. */
	fail_three(node, &t, "10.0.0.2", NULL, 0);
	CU_ASSERT_TRUE(node_has(node, "x", 2));
	CU_ASSERT_EQUAL(pc_disc_node_member_count(node), 2);

	/* A comes back with its own view: it counts, B's held view is dropped. */
	t += HB;
	n = pc_disc_node_due(node, t, acts, 8);
	a = act_to(acts, n, "10.0.0.1");
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_EQUAL(a->type, PC_DISC_ACT_REGISTER);
	mk(&va[0], "y", 1, "10.0.2.2", 0);
	CU_ASSERT_EQUAL(pc_disc_node_on_register(node, a->token, t, 0, 12, va, 1), 0);
	CU_ASSERT_TRUE(node_has(node, "y", 1));
	CU_ASSERT_FALSE(node_has(node, "x", 0));
	CU_ASSERT_EQUAL(pc_disc_node_member_count(node), 2);
	pc_disc_node_destroy(node);
}

/* The id set drives the ring: heartbeats, re-fetches and restarts do not change it. */
static void
test_node_ring_rebuild_only_on_set_change(void)
{
	struct evlog log = {0};
	struct pc_disc_node *node;
	struct pc_disc_member v[4];
	struct pc_disc_action acts[4] = {0};
	const char *ids[8];
	struct pc_ring *ring;
	uint64_t t = SEC, gen;
	int n;

	node = node_new("n-self", 9, "10.0.1.1", 0, "10.0.0.1:31998", 3, &log, t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(node);
	mk(&v[0], "n-c", 1, "10.0.2.3", 0);
	mk(&v[1], "n-a", 1, "10.0.2.1", 0);
	mk(&v[2], "n-b", 1, "10.0.2.2", 0);
	n = pc_disc_node_due(node, t, acts, 4);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(pc_disc_node_on_register(node, acts[0].token, t, 0, 1, v, 3), 0);
	/* Three joins in one list: one set change. */
	CU_ASSERT_EQUAL(log.count[PC_DISC_EV_JOINED], 3);
	CU_ASSERT_EQUAL(log.count[PC_DISC_EV_SET_CHANGED], 1);
	gen = pc_disc_node_set_gen(node);
	CU_ASSERT_EQUAL(gen, 1);
	CU_ASSERT_EQUAL_FATAL(pc_disc_node_member_ids(node, PC_DISC_ROLES_ALL, ids, 8), 4);
	CU_ASSERT_STRING_EQUAL(ids[0], "n-a");
	CU_ASSERT_STRING_EQUAL(ids[1], "n-b");
	CU_ASSERT_STRING_EQUAL(ids[2], "n-c");
	CU_ASSERT_STRING_EQUAL(ids[3], "n-self");
	CU_ASSERT_EQUAL(pc_disc_node_member_ids(node, PC_DISC_ROLES_ALL, ids, 3), -ENOBUFS);
	ring = pc_ring_build(ids, 4, 16);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ring);
	CU_ASSERT_EQUAL(pc_ring_node_count(ring), 4);
	pc_ring_free(ring);

	/* Ten heartbeat rounds, each with a re-fetch of the same list: nothing changes. */
	for (int i = 1; i <= 10; i++) {
		t += HB;
		n = pc_disc_node_due(node, t, acts, 4);
		CU_ASSERT_EQUAL_FATAL(n, 1);
		CU_ASSERT_EQUAL(acts[0].type, PC_DISC_ACT_HEARTBEAT);
		CU_ASSERT_EQUAL(pc_disc_node_on_heartbeat(node, acts[0].token, t, 0, 1 + i), 0);
		n = pc_disc_node_due(node, t, acts, 4);
		CU_ASSERT_EQUAL_FATAL(n, 1);
		CU_ASSERT_EQUAL(acts[0].type, PC_DISC_ACT_MEMBERS);
		CU_ASSERT_EQUAL(pc_disc_node_on_members(node, acts[0].token, t, 1 + i, v, 3), 0);
	}
	CU_ASSERT_EQUAL(pc_disc_node_set_gen(node), gen);
	CU_ASSERT_EQUAL(log.count[PC_DISC_EV_SET_CHANGED], 1);

	/* n-b restarts: an event for the directory, not a new ring. */
	v[2].incarnation = 2;
	t += HB;
	n = pc_disc_node_due(node, t, acts, 4);
	CU_ASSERT_EQUAL(pc_disc_node_on_heartbeat(node, acts[0].token, t, 0, 100), 0);
	n = pc_disc_node_due(node, t, acts, 4);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(pc_disc_node_on_members(node, acts[0].token, t, 100, v, 3), 0);
	CU_ASSERT_TRUE(has_event(&log, PC_DISC_EV_RESTARTED, "n-b"));
	CU_ASSERT_EQUAL(log.old_inc[log.n - 1], 1);
	CU_ASSERT_EQUAL(pc_disc_node_set_gen(node), gen);

	/* One more member: a new ring. */
	mk(&v[3], "n-d", 1, "10.0.2.4", 0);
	v[3].role = PC_DISC_ROLE_INFERENCE;
	t += HB;
	n = pc_disc_node_due(node, t, acts, 4);
	CU_ASSERT_EQUAL(pc_disc_node_on_heartbeat(node, acts[0].token, t, 0, 101), 0);
	n = pc_disc_node_due(node, t, acts, 4);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(pc_disc_node_on_members(node, acts[0].token, t, 101, v, 4), 0);
	CU_ASSERT_EQUAL(pc_disc_node_set_gen(node), gen + 1);
	CU_ASSERT_EQUAL(log.count[PC_DISC_EV_SET_CHANGED], 2);
	/* The data ring takes the storage nodes only. */
	CU_ASSERT_EQUAL(
		pc_disc_node_member_ids(node, PC_DISC_ROLE_BIT(PC_DISC_ROLE_STORAGE), ids, 8), 4);
	CU_ASSERT_EQUAL(pc_disc_node_member_ids(node, PC_DISC_ROLES_ALL, ids, 8), 5);
	pc_disc_node_destroy(node);
}

static void
test_node_unknown_heartbeat_reregisters(void)
{
	struct pc_disc_node *node;
	struct pc_disc_action acts[4] = {0};
	struct pc_disc_node_stats st;
	uint64_t t = SEC;
	int n;

	node = node_new("n-self", 9, "10.0.1.1", 0, "10.0.0.1:31998", 3, NULL, t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(node);
	n = pc_disc_node_due(node, t, acts, 4);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(pc_disc_node_on_register(node, acts[0].token, t, 0, 1, NULL, 0), 0);
	t += HB;
	n = pc_disc_node_due(node, t, acts, 4);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(acts[0].type, PC_DISC_ACT_HEARTBEAT);
	CU_ASSERT_EQUAL(pc_disc_node_on_heartbeat(node, acts[0].token, t, -ENOENT, 0), 0);
	/* At once, not an interval later. */
	n = pc_disc_node_due(node, t, acts, 4);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(acts[0].type, PC_DISC_ACT_REGISTER);
	/* A refused registration is retried an interval later, not in a loop. */
	CU_ASSERT_EQUAL(pc_disc_node_on_register(node, acts[0].token, t, -ESTALE, 0, NULL, 0), 0);
	CU_ASSERT_EQUAL(pc_disc_node_due(node, t + HB - 1, acts, 4), 0);
	n = pc_disc_node_due(node, t + HB, acts, 4);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(acts[0].type, PC_DISC_ACT_REGISTER);
	/* No answer by the request timeout is a failure, and the next try follows. */
	n = pc_disc_node_due(node, t + 2 * HB, acts, 4);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(acts[0].type, PC_DISC_ACT_REGISTER);
	pc_disc_node_get_stats(node, &st);
	CU_ASSERT_EQUAL(st.reregisters, 1);
	CU_ASSERT_EQUAL(st.rejected, 1);
	CU_ASSERT_EQUAL(st.failures, 1);
	pc_disc_node_destroy(node);
}

static void
test_node_bad_lists(void)
{
	struct pc_disc_node *node;
	struct pc_disc_member v[2];
	struct pc_disc_action acts[4] = {0};
	struct pc_disc_node_stats st;
	uint64_t t = SEC;

	node = node_new("n-self", 9, "10.0.1.1", 0, "10.0.0.1:31998", 3, NULL, t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(node);
	CU_ASSERT_EQUAL_FATAL(pc_disc_node_due(node, t, acts, 4), 1);
	mk(&v[0], "dup", 1, "10.0.2.1", 0);
	mk(&v[1], "dup", 2, "10.0.2.2", 0);
	CU_ASSERT_EQUAL(pc_disc_node_on_register(node, acts[0].token, t, 0, 1, v, 2), -EINVAL);
	CU_ASSERT_EQUAL(pc_disc_node_member_count(node), 1);
	t += HB;
	CU_ASSERT_EQUAL_FATAL(pc_disc_node_due(node, t, acts, 4), 1);
	mk(&v[1], "ok", 1, "10.0.2.2", 0);
	v[0].control.port = 0;
	CU_ASSERT_EQUAL(pc_disc_node_on_register(node, acts[0].token, t, 0, 1, v, 2), -EINVAL);
	CU_ASSERT_EQUAL(pc_disc_node_member_count(node), 1);
	pc_disc_node_get_stats(node, &st);
	CU_ASSERT_EQUAL(st.bad_lists, 2);
	CU_ASSERT_EQUAL(pc_disc_node_on_failure(node, 999, t, -EIO), -ESTALE);
	pc_disc_node_destroy(node);
}

/* The head is down: a new node bootstraps through the next seed, and keeps trying the head. */
static void
test_node_seeds(void)
{
	struct pc_disc_node *node;
	struct pc_disc_member v[2];
	struct pc_disc_action acts[8] = {0};
	const struct pc_disc_action *head, *s2;
	struct pc_disc_endpoint ms[8] = {0};
	uint64_t t = SEC;
	int n;

	node = node_new("n-new", 9, "10.0.1.1", 0, "10.0.0.1:31998,10.0.0.2:31998,10.0.0.3:31998",
			3, NULL, t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(node);
	CU_ASSERT_EQUAL(pc_disc_node_masters(node, ms, 8), 1);
	CU_ASSERT_TRUE(ep_is(&ms[0], "10.0.0.1", META));
	/* A burst of 1: the head first, the next seed on the next call. */
	n = pc_disc_node_due(node, t, acts, 1);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_TRUE(ep_is(&acts[0].to, "10.0.0.1", META));
	CU_ASSERT_EQUAL(pc_disc_node_on_failure(node, acts[0].token, t, -ECONNREFUSED), 0);
	n = pc_disc_node_due(node, t, acts, 1);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_TRUE(ep_is(&acts[0].to, "10.0.0.2", META));
	CU_ASSERT_EQUAL(acts[0].type, PC_DISC_ACT_REGISTER);
	mk(&v[0], "n-old", 1, "10.0.2.1", 0);
	mk(&v[1], "n-new", 9, "10.0.1.1", 0);
	CU_ASSERT_EQUAL(pc_disc_node_on_register(node, acts[0].token, t, 0, 5, v, 2), 0);
	CU_ASSERT_TRUE(node_has(node, "n-old", 1));
	n = pc_disc_node_due(node, t, acts, 8);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_TRUE(ep_is(&acts[0].to, "10.0.0.3", META));
	CU_ASSERT_EQUAL(pc_disc_node_on_failure(node, acts[0].token, t, -ECONNREFUSED), 0);

	/* Later: the head and seed 3 get REGISTER retries, seed 2 a heartbeat. */
	t += HB;
	n = pc_disc_node_due(node, t, acts, 8);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	head = act_to(acts, n, "10.0.0.1");
	s2 = act_to(acts, n, "10.0.0.2");
	CU_ASSERT_PTR_NOT_NULL_FATAL(head);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s2);
	CU_ASSERT_EQUAL(head->type, PC_DISC_ACT_REGISTER);
	CU_ASSERT_EQUAL(s2->type, PC_DISC_ACT_HEARTBEAT);
	pc_disc_node_destroy(node);
}

/* SIGSTOP on the node itself: on waking it registers everywhere instead of heartbeating. */
static void
test_node_pause(void)
{
	struct pc_disc_node *node;
	struct pc_disc_action acts[4] = {0};
	struct pc_disc_node_stats st;
	uint64_t t = SEC;
	int n;

	node = node_new("n-self", 9, "10.0.1.1", 0, "10.0.0.1:31998,10.0.0.2:31998", 3, NULL, t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(node);
	n = pc_disc_node_due(node, t, acts, 4);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_EQUAL(pc_disc_node_on_register(node, acts[0].token, t, 0, 1, NULL, 0), 0);
	CU_ASSERT_EQUAL(pc_disc_node_on_register(node, acts[1].token, t, 0, 1, NULL, 0), 0);
	t += HB;
	n = pc_disc_node_due(node, t, acts, 4);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_EQUAL(acts[0].type, PC_DISC_ACT_HEARTBEAT);
	/* Stopped with both heartbeats in flight, for 2 x TTL. */
	t += 2 * TTL;
	n = pc_disc_node_due(node, t, acts + 2, 2);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_EQUAL(acts[2].type, PC_DISC_ACT_REGISTER);
	CU_ASSERT_EQUAL(acts[3].type, PC_DISC_ACT_REGISTER);
	/* The replies to the old heartbeats arrive late: ignored. */
	CU_ASSERT_EQUAL(pc_disc_node_on_heartbeat(node, acts[0].token, t, 0, 1), -ESTALE);
	pc_disc_node_get_stats(node, &st);
	CU_ASSERT_EQUAL(st.pauses, 1);
	CU_ASSERT_EQUAL(st.failures, 0); /* our stop is not the masters' fault */
	CU_ASSERT_EQUAL(st.unreachable, 0);
	pc_disc_node_destroy(node);
}

static void
test_node_create_invalid(void)
{
	struct pc_disc_member self;
	struct pc_disc_node_params p = {
		.self = &self,
		.discovery_addr = "10.0.0.1:31998",
		.max_masters = 3,
		.max_members = 64,
		.heartbeat_interval_ns = HB,
		.member_ttl_ns = TTL,
	};
	struct pc_disc_node *node;
	char many[512] = "";

	mk(&self, "n", 1, "10.0.0.5", META);
	node = pc_disc_node_create(&p, 0);
	CU_ASSERT_PTR_NOT_NULL(node);
	pc_disc_node_destroy(node);
	p.member_ttl_ns = HB; /* must be more than the interval */
	errno = 0;
	CU_ASSERT_PTR_NULL(pc_disc_node_create(&p, 0));
	CU_ASSERT_EQUAL(errno, EINVAL);
	p.member_ttl_ns = TTL;
	p.discovery_addr = "10.0.0.1";
	CU_ASSERT_PTR_NULL(pc_disc_node_create(&p, 0));
	p.discovery_addr = "";
	CU_ASSERT_PTR_NULL(pc_disc_node_create(&p, 0));
	for (int i = 0; i <= PC_DISC_SEEDS_MAX; i++) {
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "%s10.0.0.%d:1",
			 i > 0 ? "," : "", i + 1);
	}
	p.discovery_addr = many;
	errno = 0;
	CU_ASSERT_PTR_NULL(pc_disc_node_create(&p, 0));
	CU_ASSERT_EQUAL(errno, E2BIG);
	p.discovery_addr = "10.0.0.1:31998";
	p.max_masters = PC_DISC_MASTERS_MAX + 1;
	CU_ASSERT_PTR_NULL(pc_disc_node_create(&p, 0));
}

/* ------------------------------------------------- a cluster, by hand */

#define CL_HOSTS 5

struct cl_host {
	char ip[16];
	char id[8];
	struct pc_disc_master *master;
	struct pc_disc_node *node;
	struct evlog log;
	bool down;
};

struct cluster {
	struct cl_host h[CL_HOSTS];
	unsigned int n;
	uint64_t last_to_ns[CL_HOSTS]; /* when an action last went to host i's master */
	struct pc_disc_member list[64];
};

static struct cl_host *
cl_host_of(struct cluster *c, const struct pc_disc_endpoint *ep)
{
	for (unsigned int i = 0; i < c->n; i++) {
		if (strcmp(c->h[i].ip, ep->host) == 0 && ep->port == META) {
			return &c->h[i];
		}
	}
	return NULL;
}

static void
cl_start(struct cluster *c, unsigned int i, uint64_t inc, uint64_t now)
{
	struct cl_host *h = &c->h[i];

	memset(&h->log, 0, sizeof(h->log));
	h->master = pc_disc_master_create(64, TTL, inc, NULL, NULL);
	h->node = node_new(h->id, inc, h->ip, META, "10.0.0.1:31998", 3, &h->log, now);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h->master);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h->node);
	h->down = false;
}

static void
cl_stop(struct cluster *c, unsigned int i)
{
	pc_disc_master_destroy(c->h[i].master);
	pc_disc_node_destroy(c->h[i].node);
	c->h[i].master = NULL;
	c->h[i].node = NULL;
	c->h[i].down = true;
}

static void
cl_init(struct cluster *c, unsigned int n, uint64_t now)
{
	memset(c, 0, sizeof(*c));
	c->n = n;
	for (unsigned int i = 0; i < n; i++) {
		snprintf(c->h[i].ip, sizeof(c->h[i].ip), "10.0.0.%u", i + 1);
		snprintf(c->h[i].id, sizeof(c->h[i].id), "n%u", i + 1);
		cl_start(c, i, 1000 + i, now);
	}
}

static void
cl_fini(struct cluster *c)
{
	for (unsigned int i = 0; i < c->n; i++) {
		cl_stop(c, i);
	}
}

/*
 * A reply is taken (0), or ignored because an earlier reply in the same
 * batch changed the master set and retired its target (-ESTALE), as a late
 * reply would be in the real RPC. Anything else is a failure.
 */
static void
cl_reply_ok(int rc)
{
	CU_ASSERT_TRUE(rc == 0 || rc == -ESTALE);
}

/* One synchronous round trip through the fake RPC. */
static void
cl_deliver(struct cluster *c, struct pc_disc_node *node, const struct pc_disc_action *a,
	   uint64_t now)
{
	const struct pc_disc_member *self = pc_disc_node_self(node);
	struct cl_host *to = cl_host_of(c, &a->to);
	uint64_t epoch;
	int rc, n;

	for (unsigned int i = 0; i < c->n; i++) {
		if (to == &c->h[i]) {
			c->last_to_ns[i] = now;
		}
	}
	if (to == NULL || to->down) {
		cl_reply_ok(pc_disc_node_on_failure(node, a->token, now, -ECONNREFUSED));
		return;
	}
	switch (a->type) {
	case PC_DISC_ACT_REGISTER:
		rc = pc_disc_master_register(to->master, self, now);
		n = pc_disc_master_list(to->master, now, c->list, 64, &epoch);
		CU_ASSERT_TRUE_FATAL(n >= 0);
		cl_reply_ok(pc_disc_node_on_register(node, a->token, now, rc, epoch, c->list,
						     rc == 0 ? (unsigned int)n : 0));
		break;
	case PC_DISC_ACT_HEARTBEAT:
		rc = pc_disc_master_heartbeat(to->master, self->node_id, self->incarnation, now);
		cl_reply_ok(pc_disc_node_on_heartbeat(node, a->token, now, rc,
						      pc_disc_master_epoch(to->master)));
		break;
	case PC_DISC_ACT_MEMBERS:
		n = pc_disc_master_list(to->master, now, c->list, 64, &epoch);
		CU_ASSERT_TRUE_FATAL(n >= 0);
		cl_reply_ok(pc_disc_node_on_members(node, a->token, now, epoch, c->list,
						    (unsigned int)n));
		break;
	case PC_DISC_ACT_DEREGISTER:
		pc_disc_master_deregister(to->master, self->node_id, self->incarnation, now);
		break;
	}
}

/* Run every live host from `from` to `to` in 250 ms steps. */
static void
cl_run(struct cluster *c, uint64_t from, uint64_t to)
{
	struct pc_disc_action acts[16] = {0};

	for (uint64_t t = from; t <= to; t += 250 * MS) {
		for (unsigned int i = 0; i < c->n; i++) {
			struct cl_host *h = &c->h[i];
			int n;

			if (h->down) {
				continue;
			}
			pc_disc_master_prune(h->master, t);
			n = pc_disc_node_due(h->node, t, acts, 16);
			CU_ASSERT_TRUE_FATAL(n >= 0);
			for (int k = 0; k < n; k++) {
				cl_deliver(c, h->node, &acts[k], t);
			}
		}
	}
}

/* Every live node sees `n_members` members and exactly the masters given. */
static void
cl_check(struct cluster *c, unsigned int n_members, const char *const *masters, unsigned int nm)
{
	for (unsigned int i = 0; i < c->n; i++) {
		struct pc_disc_endpoint ms[8] = {0};
		int k;

		if (c->h[i].down) {
			continue;
		}
		CU_ASSERT_EQUAL(pc_disc_node_member_count(c->h[i].node), n_members);
		k = pc_disc_node_masters(c->h[i].node, ms, 8);
		CU_ASSERT_EQUAL_FATAL(k, (int)nm);
		for (unsigned int j = 0; j < nm; j++) {
			CU_ASSERT_TRUE(ep_is(&ms[j], masters[j], META));
		}
	}
}

static void
test_cluster_master_dies_next_promoted(void)
{
	static struct cluster c;
	const char *before[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3"};
	const char *after[] = {"10.0.0.1", "10.0.0.3", "10.0.0.4"};
	uint64_t gens[CL_HOSTS];
	struct pc_disc_member m;

	cl_init(&c, CL_HOSTS, 0);
	cl_run(&c, 0, 15 * SEC);
	cl_check(&c, CL_HOSTS, before, 3);
	CU_ASSERT_TRUE(pc_disc_node_is_master(c.h[1].node));
	CU_ASSERT_FALSE(pc_disc_node_is_master(c.h[3].node));
	/* Every master's soft state holds everyone. */
	for (unsigned int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(pc_disc_master_count(c.h[i].master), CL_HOSTS);
	}
	/* Steady state: heartbeats flow, no set changes. */
	for (unsigned int i = 0; i < CL_HOSTS; i++) {
		gens[i] = pc_disc_node_set_gen(c.h[i].node);
	}
	cl_run(&c, 15 * SEC + 250 * MS, 20 * SEC);
	for (unsigned int i = 0; i < CL_HOSTS; i++) {
		CU_ASSERT_EQUAL(pc_disc_node_set_gen(c.h[i].node), gens[i]);
	}

	/* 10.0.0.2 (a master) dies. */
	cl_stop(&c, 1);
	cl_run(&c, 20 * SEC + 250 * MS, 40 * SEC);
	cl_check(&c, CL_HOSTS - 1, after, 3);
	for (unsigned int i = 0; i < CL_HOSTS; i++) {
		if (i == 1) {
			continue;
		}
		CU_ASSERT_EQUAL(pc_disc_node_member(c.h[i].node, "n2", &m), -ENOENT);
		CU_ASSERT_TRUE(has_event(&c.h[i].log, PC_DISC_EV_LEFT, "n2"));
		CU_ASSERT_TRUE(has_event(&c.h[i].log, PC_DISC_EV_MASTERS_CHANGED, ""));
		CU_ASSERT_EQUAL(pc_disc_node_set_gen(c.h[i].node), gens[i] + 1);
	}
	/* The promoted master repopulated; nobody talks to the dead one any more. */
	CU_ASSERT_EQUAL(pc_disc_master_count(c.h[3].master), CL_HOSTS - 1);
	CU_ASSERT_TRUE(c.last_to_ns[1] < 35 * SEC);
	CU_ASSERT_TRUE(pc_disc_node_is_master(c.h[3].node));
	cl_fini(&c);
}

static void
test_cluster_restart_and_small(void)
{
	static struct cluster c;
	const char *three[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3"};
	const char *two[] = {"10.0.0.1", "10.0.0.2"};
	uint64_t gen;
	struct pc_disc_member m;

	/* Two hosts, max_masters 3: both are masters. */
	cl_init(&c, 2, 0);
	cl_run(&c, 0, 10 * SEC);
	cl_check(&c, 2, two, 2);
	CU_ASSERT_TRUE(pc_disc_node_is_master(c.h[0].node));
	CU_ASSERT_TRUE(pc_disc_node_is_master(c.h[1].node));
	cl_fini(&c);

	/* Four hosts; n3 (a master) restarts: a new incarnation, a new empty table. */
	cl_init(&c, 4, 0);
	cl_run(&c, 0, 10 * SEC);
	cl_check(&c, 4, three, 3);
	gen = pc_disc_node_set_gen(c.h[0].node);
	cl_stop(&c, 2);
	cl_run(&c, 10 * SEC + 250 * MS, 11 * SEC);
	cl_start(&c, 2, 5000, 11 * SEC);
	cl_run(&c, 11 * SEC + 250 * MS, 25 * SEC);
	cl_check(&c, 4, three, 3);
	CU_ASSERT_EQUAL(pc_disc_node_member(c.h[0].node, "n3", &m), 0);
	CU_ASSERT_EQUAL(m.incarnation, 5000);
	CU_ASSERT_TRUE(has_event(&c.h[0].log, PC_DISC_EV_RESTARTED, "n3"));
	CU_ASSERT_EQUAL(pc_disc_node_set_gen(c.h[0].node), gen); /* same ids: same ring */
	CU_ASSERT_EQUAL(pc_disc_master_count(c.h[2].master), 4); /* repopulated */

	/* n4 leaves cleanly: every node sees it go within a heartbeat, not after the TTL. */
	{
		struct pc_disc_action acts[8] = {0};
		uint64_t t = 25 * SEC + 100 * MS;
		int n = pc_disc_node_leave(c.h[3].node, acts, 8);

		CU_ASSERT_EQUAL(n, 3); /* the three masters */
		for (int k = 0; k < n; k++) {
			CU_ASSERT_EQUAL(acts[k].type, PC_DISC_ACT_DEREGISTER);
			cl_deliver(&c, c.h[3].node, &acts[k], t);
		}
		CU_ASSERT_EQUAL(pc_disc_node_due(c.h[3].node, t + 10 * SEC, acts, 8), 0);
		cl_stop(&c, 3);
		cl_run(&c, 25 * SEC + 250 * MS, 25 * SEC + HB + 250 * MS);
		for (unsigned int i = 0; i < 3; i++) {
			CU_ASSERT_EQUAL(pc_disc_node_member(c.h[i].node, "n4", &m), -ENOENT);
			CU_ASSERT_EQUAL(pc_disc_master_count(c.h[i].master), 3);
		}
	}
	cl_fini(&c);
}

/* ------------------------------------------------------------ helpers */

static char g_tmp[64];

static int
tmp_init(void)
{
	snprintf(g_tmp, sizeof(g_tmp), "/tmp/disc_ut.XXXXXX");
	return mkdtemp(g_tmp) != NULL ? 0 : -1;
}

static int
tmp_cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_tmp);
	return system(cmd) == 0 ? 0 : -1;
}

static void
write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fwrite(data, 1, len, f), len);
	fclose(f);
}

static bool
looks_generated(const char *id, const char *prefix)
{
	size_t p = strlen(prefix);

	if (strncmp(id, prefix, p) != 0 || id[p] != '-' || strlen(id) != p + 9) {
		return false;
	}
	for (size_t i = p + 1; i < p + 9; i++) {
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'))) {
			return false;
		}
	}
	return true;
}

static void
test_node_id(void)
{
	char dir[128], id1[64], id2[64], id3[64], id4[64], buf[128];
	char longhost[200];
	ssize_t n;

	snprintf(dir, sizeof(dir), "%s/disk/sub", g_tmp); /* created on the way */
	/* First start: generated and stored; second start: the same. */
	CU_ASSERT_EQUAL_FATAL(pc_disc_node_id_load_or_create(dir, "", "gpu-7", id1, sizeof(id1)),
			      0);
	CU_ASSERT_TRUE(looks_generated(id1, "gpu-7"));
	CU_ASSERT_EQUAL_FATAL(pc_disc_node_id_load_or_create(dir, NULL, "other", id2, sizeof(id2)),
			      0);
	CU_ASSERT_STRING_EQUAL(id1, id2);
	n = read_small(dir, "node_id", buf, sizeof(buf));
	CU_ASSERT_EQUAL(n, (ssize_t)strlen(id1) + 1);
	CU_ASSERT_TRUE(strncmp(buf, id1, strlen(id1)) == 0);
	/* Without a disk tier: new each start. */
	CU_ASSERT_EQUAL(pc_disc_node_id_load_or_create(NULL, "", "gpu-7", id3, sizeof(id3)), 0);
	CU_ASSERT_EQUAL(pc_disc_node_id_load_or_create("", "", "gpu-7", id4, sizeof(id4)), 0);
	CU_ASSERT_TRUE(looks_generated(id3, "gpu-7"));
	CU_ASSERT_STRING_NOT_EQUAL(id3, id4);
	CU_ASSERT_STRING_NOT_EQUAL(id3, id1);
	/* The config wins, and the file is left alone. */
	CU_ASSERT_EQUAL(pc_disc_node_id_load_or_create(dir, "prefill-0", "gpu-7", id3, sizeof(id3)),
			0);
	CU_ASSERT_STRING_EQUAL(id3, "prefill-0");
	CU_ASSERT_EQUAL(pc_disc_node_id_load_or_create(dir, "", "x", id2, sizeof(id2)), 0);
	CU_ASSERT_STRING_EQUAL(id2, id1);
	CU_ASSERT_EQUAL(pc_disc_node_id_load_or_create(dir, "bad#id", "x", id3, sizeof(id3)),
			-EINVAL);
	CU_ASSERT_EQUAL(pc_disc_node_id_load_or_create(dir, "", "x", id3, 16), -EINVAL);
	/* Corrupt files are replaced by a new valid id, which then sticks. */
	write_file(dir, "node_id", "not an id!\n", 11);
	CU_ASSERT_EQUAL(pc_disc_node_id_load_or_create(dir, "", "gpu-7", id2, sizeof(id2)), 0);
	CU_ASSERT_TRUE(looks_generated(id2, "gpu-7"));
	CU_ASSERT_STRING_NOT_EQUAL(id2, id1);
	CU_ASSERT_EQUAL(pc_disc_node_id_load_or_create(dir, "", "gpu-7", id3, sizeof(id3)), 0);
	CU_ASSERT_STRING_EQUAL(id3, id2);
	write_file(dir, "node_id", "abc\0def", 7);
	CU_ASSERT_EQUAL(pc_disc_node_id_load_or_create(dir, "", "gpu-7", id3, sizeof(id3)), 0);
	CU_ASSERT_STRING_NOT_EQUAL(id3, "abc");
	write_file(dir, "node_id", "", 0);
	CU_ASSERT_EQUAL(pc_disc_node_id_load_or_create(dir, "", "gpu-7", id3, sizeof(id3)), 0);
	CU_ASSERT_TRUE(looks_generated(id3, "gpu-7"));
	/* Hosts become id bytes, cut to fit. */
	CU_ASSERT_EQUAL(pc_disc_node_id_load_or_create(NULL, "", "fe80::1", id3, sizeof(id3)), 0);
	CU_ASSERT_TRUE(looks_generated(id3, "fe80--1"));
	memset(longhost, 'h', sizeof(longhost) - 1);
	longhost[sizeof(longhost) - 1] = '\0';
	CU_ASSERT_EQUAL(pc_disc_node_id_load_or_create(NULL, "", longhost, id3, sizeof(id3)), 0);
	CU_ASSERT_EQUAL(strlen(id3), 63);
	CU_ASSERT_TRUE(valid_id(id3));
	/* The host's own name when none is given. */
	CU_ASSERT_EQUAL(pc_disc_node_id_load_or_create(NULL, "", NULL, id3, sizeof(id3)), 0);
	CU_ASSERT_TRUE(valid_id(id3));
}

static void
test_incarnation(void)
{
	char dir[128], buf[64];
	uint64_t a, b, c;

	snprintf(dir, sizeof(dir), "%s/inc", g_tmp);
	CU_ASSERT_EQUAL(pc_disc_incarnation_new(NULL, &a), 0);
	CU_ASSERT_NOT_EQUAL(a, 0);
	/* With a folder: strictly increasing across starts. */
	CU_ASSERT_EQUAL(pc_disc_incarnation_new(dir, &a), 0);
	CU_ASSERT_EQUAL(pc_disc_incarnation_new(dir, &b), 0);
	CU_ASSERT_TRUE(b > a);
	/* The wall clock went back an hour (the file holds a later time): still above. */
	snprintf(buf, sizeof(buf), "%llu\n", (unsigned long long)(b + 3600 * SEC));
	write_file(dir, "incarnation", buf, strlen(buf));
	CU_ASSERT_EQUAL(pc_disc_incarnation_new(dir, &c), 0);
	CU_ASSERT_EQUAL(c, b + 3600 * SEC + 1);
	/* A corrupt file is ignored and replaced. */
	write_file(dir, "incarnation", "garbage", 7);
	CU_ASSERT_EQUAL(pc_disc_incarnation_new(dir, &a), 0);
	CU_ASSERT_NOT_EQUAL(a, 0);
	CU_ASSERT_EQUAL(pc_disc_incarnation_new(dir, &b), 0);
	CU_ASSERT_TRUE(b > a);
}

static void
test_resolve_local_host(void)
{
	char out[64];

	CU_ASSERT_EQUAL(pc_disc_resolve_local_host("127.0.0.1:31998", out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "127.0.0.1");
	CU_ASSERT_EQUAL(
		pc_disc_resolve_local_host(" 127.0.0.1:31998 ,10.9.9.9:1", out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "127.0.0.1");
	CU_ASSERT_EQUAL(pc_disc_resolve_local_host("localhost-no-port", out, sizeof(out)), -EINVAL);
	CU_ASSERT_EQUAL(pc_disc_resolve_local_host("", out, sizeof(out)), -EINVAL);
	CU_ASSERT_EQUAL(pc_disc_resolve_local_host("127.0.0.1:31998", out, 4), -ENOSPC);
}

static const struct pc_ut_test g_master_tests[] = {
	{"TTL boundary: just under stays, just over pruned", test_master_ttl_boundary},
	{"newer incarnation replaces, older rejected", test_master_incarnation},
	{"heartbeat from an unknown node", test_master_unknown_heartbeat},
	{"list order, epoch, full table, bad records", test_master_list_full_invalid},
	{"SIGSTOP 2xTTL, resume, restart, fence", test_master_sigstop},
	{NULL, NULL},
};

static const struct pc_ut_test g_masters_tests[] = {
	{"host order: IPs numerically", test_host_order},
	{"head pinned though it sorts last", test_masters_head_pinned},
	{"max_masters 3 of 5 hosts", test_masters_three_of_five},
	{"promotion, same from any order", test_masters_promotion_deterministic},
	{"small cluster, shared endpoints", test_masters_small_cluster},
	{NULL, NULL},
};

static const struct pc_ut_test g_node_tests[] = {
	{"union of differing views", test_node_union},
	{"ring rebuilt only on set change", test_node_ring_rebuild_only_on_set_change},
	{"unknown heartbeat re-registers", test_node_unknown_heartbeat_reregisters},
	{"bad member lists refused", test_node_bad_lists},
	{"head down: bootstrap through seeds", test_node_seeds},
	{"paused node re-registers", test_node_pause},
	{"create rejects bad params", test_node_create_invalid},
	{"cluster: master dies, next promoted", test_cluster_master_dies_next_promoted},
	{"cluster: restart and a 2-host cluster", test_cluster_restart_and_small},
	{NULL, NULL},
};

static const struct pc_ut_test g_helper_tests[] = {
	{"node id persisted, generated, configured", test_node_id},
	{"incarnation increases", test_incarnation},
	{"local host for a loopback head", test_resolve_local_host},
	{NULL, NULL},
};

static const struct pc_ut_suite g_suites[] = {
	{"discovery master", NULL, NULL, g_master_tests},
	{"discovery master set", NULL, NULL, g_masters_tests},
	{"discovery node", NULL, NULL, g_node_tests},
	{"discovery helpers", tmp_init, tmp_cleanup, g_helper_tests},
};

int
main(void)
{
	return pc_ut_run(g_suites, PC_ARRAY_SIZE(g_suites));
}
