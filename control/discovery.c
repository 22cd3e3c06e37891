/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Discovery membership logic (see discovery.h): the master's table, the
 * node's union of the masters' views, the master set, and the start-up
 * helpers (node id, incarnation, local address).
 *
 * Both tables keep their records in fixed slots, indexed by an array of slot
 * numbers sorted by node id: a lookup is a binary search, a join or a leave
 * moves 4 bytes per member, and listing in node-id order is free.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "discovery.h"
#include "pc_common.h"
#include "ring.h"

_Static_assert(PC_DISC_NODE_ID_MAX == PC_RING_NODE_ID_MAX, "node ids are ring ids");
_Static_assert(PC_DISC_MEMBERS_MAX <= PC_RING_NODES_MAX, "every member fits a ring");
_Static_assert(PC_DISC_HOST_MAX == PC_CONFIG_STR_MAX, "seed hosts fit an endpoint");

/* Targets are bits in a member's mask: 64 masters and 16 seeds, with room for retired views. */
#define DISC_TARGETS_MAX 128
#define DISC_MASK_WORDS  (DISC_TARGETS_MAX / 64)
/* Passes of master-set recomputation before giving up on a cascade (each pass drops views). */
#define DISC_SETTLE_PASSES 8

/* ------------------------------------------------------------ records */

static bool
is_id_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

static bool
valid_id(const char *id)
{
	size_t len = strnlen(id, PC_DISC_NODE_ID_MAX);

	if (len == 0 || len == PC_DISC_NODE_ID_MAX) {
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		if (!is_id_char(id[i])) {
			return false;
		}
	}
	return true;
}

/* Hosts are names or IP literals (IPv6 with ':' and a '%' zone): nothing a log could trip on. */
static bool
valid_host(const char *h, bool need)
{
	size_t len = strnlen(h, PC_DISC_HOST_MAX);

	if (len == PC_DISC_HOST_MAX || (need && len == 0)) {
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		if (!is_id_char(h[i]) && h[i] != ':' && h[i] != '%') {
			return false;
		}
	}
	return true;
}

int
pc_disc_member_check(const struct pc_disc_member *m)
{
	if (m == NULL || !valid_id(m->node_id) || m->incarnation == 0) {
		return -EINVAL;
	}
	if (m->role != PC_DISC_ROLE_INFERENCE && m->role != PC_DISC_ROLE_STORAGE &&
	    m->role != PC_DISC_ROLE_META) {
		return -EINVAL;
	}
	if (!valid_host(m->hostname, true) || !valid_host(m->control.host, true) ||
	    m->control.port == 0 || !valid_host(m->data.host, false)) {
		return -EINVAL;
	}
	return 0;
}

/* A canonical copy: bytes after each string's NUL are zero, last_seen is the caller's. */
static void
member_copy(struct pc_disc_member *dst, const struct pc_disc_member *src, uint64_t now_ns)
{
	memset(dst, 0, sizeof(*dst));
	memcpy(dst->node_id, src->node_id, strnlen(src->node_id, PC_DISC_NODE_ID_MAX - 1));
	dst->incarnation = src->incarnation;
	dst->role = src->role;
	dst->flags = src->flags;
	memcpy(dst->hostname, src->hostname, strnlen(src->hostname, PC_DISC_HOST_MAX - 1));
	memcpy(dst->control.host, src->control.host,
	       strnlen(src->control.host, PC_DISC_HOST_MAX - 1));
	dst->control.port = src->control.port;
	memcpy(dst->data.host, src->data.host, strnlen(src->data.host, PC_DISC_HOST_MAX - 1));
	dst->data.port = src->data.port;
	dst->meta_port = src->meta_port;
	dst->pool_capacity = src->pool_capacity;
	dst->pool_used = src->pool_used;
	dst->last_seen_ns = now_ns;
}

/* Same record, last_seen aside. */
static bool
member_same(const struct pc_disc_member *a, const struct pc_disc_member *b)
{
	return strcmp(a->node_id, b->node_id) == 0 && a->incarnation == b->incarnation &&
	       a->role == b->role && a->flags == b->flags &&
	       strcmp(a->hostname, b->hostname) == 0 &&
	       strcmp(a->control.host, b->control.host) == 0 &&
	       a->control.port == b->control.port && strcmp(a->data.host, b->data.host) == 0 &&
	       a->data.port == b->data.port && a->meta_port == b->meta_port &&
	       a->pool_capacity == b->pool_capacity && a->pool_used == b->pool_used;
}

/* Monotonic time since `then`; 0 if the caller's clock went backwards. */
static uint64_t
elapsed(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

/* --------------------------------------------------------- host order */

enum host_kind { HOST_V4, HOST_V6, HOST_NAME };

static enum host_kind
host_key(const char *h, uint8_t addr[16])
{
	if (inet_pton(AF_INET, h, addr) == 1) {
		return HOST_V4;
	}
	if (inet_pton(AF_INET6, h, addr) == 1) {
		return HOST_V6;
	}
	return HOST_NAME;
}

/* The seed ordered IPs as strings (10.0.0.10 before 10.0.0.9): compare them as numbers. */
int
pc_disc_host_cmp(const char *a, const char *b)
{
	uint8_t xa[16], xb[16];
	enum host_kind ka = host_key(a, xa);
	enum host_kind kb = host_key(b, xb);

	if (ka != kb) {
		return ka < kb ? -1 : 1;
	}
	switch (ka) {
	case HOST_V4:
		return memcmp(xa, xb, 4);
	case HOST_V6:
		return memcmp(xa, xb, 16);
	default:
		return strcmp(a, b);
	}
}

static bool
ep_equal(const struct pc_disc_endpoint *a, const char *host, uint16_t port)
{
	return a->port == port && pc_disc_host_cmp(a->host, host) == 0;
}

static void
ep_set(struct pc_disc_endpoint *ep, const char *host, uint16_t port)
{
	memset(ep, 0, sizeof(*ep));
	memcpy(ep->host, host, strnlen(host, PC_DISC_HOST_MAX - 1));
	ep->port = port;
}

/* Host order: hostname, node id, control endpoint. Node ids are unique, so this is total. */
static int
master_order(const void *pa, const void *pb)
{
	const struct pc_disc_member *a = *(const struct pc_disc_member *const *)pa;
	const struct pc_disc_member *b = *(const struct pc_disc_member *const *)pb;
	int c = pc_disc_host_cmp(a->hostname, b->hostname);

	if (c != 0) {
		return c;
	}
	c = strcmp(a->node_id, b->node_id);
	if (c != 0) {
		return c;
	}
	c = pc_disc_host_cmp(a->control.host, b->control.host);
	if (c != 0) {
		return c;
	}
	return (int)a->control.port - (int)b->control.port;
}

static int
id_order(const void *pa, const void *pb)
{
	const struct pc_disc_member *a = *(const struct pc_disc_member *const *)pa;
	const struct pc_disc_member *b = *(const struct pc_disc_member *const *)pb;

	return strcmp(a->node_id, b->node_id);
}

/* The head, then the sorted candidates' meta endpoints, each endpoint once. Sorts `ptrs`. */
static unsigned int
masters_select(const struct pc_disc_endpoint *head, const struct pc_disc_member **ptrs,
	       unsigned int n, unsigned int max_masters, struct pc_disc_endpoint *out,
	       unsigned int max_out)
{
	unsigned int want = PC_MIN(max_masters, max_out);
	unsigned int k = 0;

	if (want == 0) {
		return 0;
	}
	out[k++] = *head;
	qsort(ptrs, n, sizeof(const struct pc_disc_member *), master_order);
	for (unsigned int i = 0; i < n && k < want; i++) {
		const struct pc_disc_member *m = ptrs[i];
		bool dup = false;

		if (m->meta_port == 0) {
			continue;
		}
		for (unsigned int j = 0; j < k && !dup; j++) {
			dup = ep_equal(&out[j], m->hostname, m->meta_port);
		}
		if (!dup) {
			ep_set(&out[k++], m->hostname, m->meta_port);
		}
	}
	return k;
}

int
pc_disc_masters_compute(const struct pc_disc_endpoint *head, const struct pc_disc_member *members,
			unsigned int n, unsigned int max_masters, struct pc_disc_endpoint *out,
			unsigned int max_out)
{
	const struct pc_disc_member **ptrs;
	unsigned int k;

	if (head == NULL || out == NULL || (members == NULL && n > 0) || max_masters == 0 ||
	    max_masters > PC_DISC_MASTERS_MAX || n > PC_DISC_MEMBERS_MAX) {
		return -EINVAL;
	}
	ptrs = malloc(sizeof(const struct pc_disc_member *) * (n > 0 ? n : 1));
	if (ptrs == NULL) {
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < n; i++) {
		ptrs[i] = &members[i];
	}
	k = masters_select(head, ptrs, n, max_masters, out, max_out);
	free(ptrs);
	return (int)k;
}

/* ------------------------------------------------------------- tables */

/* Fixed slots, each starting with a node id, and their slot numbers in node-id order. */
struct disc_tab {
	uint8_t *slots;
	size_t stride;
	uint32_t cap;
	uint32_t n;
	uint32_t *order;
	uint32_t *free;
	uint32_t n_free;
};

static void
tab_fini(struct disc_tab *t)
{
	free(t->slots);
	free(t->order);
	free(t->free);
	t->slots = NULL;
	t->order = NULL;
	t->free = NULL;
	t->cap = 0;
	t->n = 0;
	t->n_free = 0;
}

static int
tab_init(struct disc_tab *t, size_t stride, uint32_t cap)
{
	memset(t, 0, sizeof(*t));
	t->slots = calloc(cap, stride);
	t->order = calloc(cap, sizeof(*t->order));
	t->free = calloc(cap, sizeof(*t->free));
	if (t->slots == NULL || t->order == NULL || t->free == NULL) {
		tab_fini(t);
		return -ENOMEM;
	}
	t->stride = stride;
	t->cap = cap;
	for (uint32_t i = 0; i < cap; i++) {
		t->free[i] = cap - 1 - i; /* slot 0 first: tests and dumps read better */
	}
	t->n_free = cap;
	return 0;
}

static void *
tab_at(const struct disc_tab *t, uint32_t pos)
{
	return t->slots + (size_t)t->order[pos] * t->stride;
}

/* Binary search; *pos is the match or where the id would go. */
static bool
tab_find(const struct disc_tab *t, const char *id, uint32_t *pos)
{
	uint32_t lo = 0, hi = t->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = strcmp((const char *)tab_at(t, mid), id);

		if (c == 0) {
			*pos = mid;
			return true;
		}
		if (c < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	*pos = lo;
	return false;
}

/* A zeroed slot at `pos` (from tab_find); the caller writes the same id. NULL when full. */
static void *
tab_insert(struct disc_tab *t, uint32_t pos)
{
	uint32_t slot;

	if (t->n_free == 0) {
		return NULL;
	}
	slot = t->free[--t->n_free];
	memmove(&t->order[pos + 1], &t->order[pos], (t->n - pos) * sizeof(*t->order));
	t->order[pos] = slot;
	t->n++;
	memset(t->slots + (size_t)slot * t->stride, 0, t->stride);
	return t->slots + (size_t)slot * t->stride;
}

static void
tab_remove(struct disc_tab *t, uint32_t pos)
{
	uint32_t slot = t->order[pos];

	memmove(&t->order[pos], &t->order[pos + 1], (t->n - pos - 1) * sizeof(*t->order));
	t->n--;
	t->free[t->n_free++] = slot;
}

/* A removed member's last incarnation, to refuse older ones for a while. */
struct disc_fence {
	char node_id[PC_DISC_NODE_ID_MAX];
	uint64_t incarnation;
	uint64_t expire_ns;
};

static void
fence_add(struct disc_tab *t, const char *id, uint64_t inc, uint64_t expire_ns)
{
	struct disc_fence *f;
	uint32_t pos;

	if (tab_find(t, id, &pos)) {
		f = tab_at(t, pos);
		f->incarnation = PC_MAX(f->incarnation, inc);
		f->expire_ns = PC_MAX(f->expire_ns, expire_ns);
		return;
	}
	if (t->n_free == 0) {
		/* Full: the fence closest to expiry goes (it protects the least). */
		uint32_t oldest = 0;

		for (uint32_t i = 1; i < t->n; i++) {
			const struct disc_fence *a = tab_at(t, i);
			const struct disc_fence *b = tab_at(t, oldest);

			if (a->expire_ns < b->expire_ns) {
				oldest = i;
			}
		}
		tab_remove(t, oldest);
		tab_find(t, id, &pos);
	}
	f = tab_insert(t, pos);
	memcpy(f->node_id, id, strnlen(id, PC_DISC_NODE_ID_MAX - 1));
	f->incarnation = inc;
	f->expire_ns = expire_ns;
}

/* Whether a fence refuses (id, inc): a live fence with a newer incarnation. */
static bool
fence_blocks(struct disc_tab *t, const char *id, uint64_t inc, uint64_t now_ns)
{
	struct disc_fence *f;
	uint32_t pos;

	if (!tab_find(t, id, &pos)) {
		return false;
	}
	f = tab_at(t, pos);
	if (now_ns >= f->expire_ns) {
		tab_remove(t, pos);
		return false;
	}
	return inc < f->incarnation;
}

static void
fence_clear(struct disc_tab *t, const char *id)
{
	uint32_t pos;

	if (tab_find(t, id, &pos)) {
		tab_remove(t, pos);
	}
}

static void
fence_prune(struct disc_tab *t, uint64_t now_ns)
{
	for (uint32_t pos = t->n; pos-- > 0;) {
		const struct disc_fence *f = tab_at(t, pos);

		if (now_ns >= f->expire_ns) {
			tab_remove(t, pos);
		}
	}
}

static void
emit(pc_disc_event_cb cb, void *arg, enum pc_disc_event_type type, const struct pc_disc_member *m,
     uint64_t old_inc, uint64_t epoch)
{
	struct pc_disc_event ev = {
		.type = type,
		.member = m,
		.old_incarnation = old_inc,
		.epoch = epoch,
	};

	if (cb != NULL) {
		cb(arg, &ev);
	}
}

/* ------------------------------------------------------------- master */

struct pc_disc_master {
	struct disc_tab members; /* struct pc_disc_member */
	struct disc_tab fences;  /* struct disc_fence */
	uint64_t ttl_ns;
	uint64_t epoch;
	pc_disc_event_cb cb;
	void *cb_arg;
	struct pc_disc_master_stats stats;
};

struct pc_disc_master *
pc_disc_master_create(unsigned int max_members, uint64_t member_ttl_ns, uint64_t epoch_base,
		      pc_disc_event_cb cb, void *cb_arg)
{
	struct pc_disc_master *m;

	if (max_members == 0 || max_members > PC_DISC_MEMBERS_MAX || member_ttl_ns == 0) {
		errno = EINVAL;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	if (tab_init(&m->members, sizeof(struct pc_disc_member), max_members) != 0 ||
	    tab_init(&m->fences, sizeof(struct disc_fence), max_members) != 0) {
		pc_disc_master_destroy(m);
		errno = ENOMEM;
		return NULL;
	}
	m->ttl_ns = member_ttl_ns;
	m->epoch = epoch_base;
	m->cb = cb;
	m->cb_arg = cb_arg;
	return m;
}

void
pc_disc_master_destroy(struct pc_disc_master *m)
{
	if (m == NULL) {
		return;
	}
	tab_fini(&m->members);
	tab_fini(&m->fences);
	free(m);
}

static bool
master_expired(const struct pc_disc_master *m, const struct pc_disc_member *rec, uint64_t now_ns)
{
	return elapsed(now_ns, rec->last_seen_ns) > m->ttl_ns;
}

/* Remove the member at pos, fence its incarnation, tell the listener. */
static void
master_remove(struct pc_disc_master *m, uint32_t pos, uint64_t now_ns)
{
	struct pc_disc_member gone = *(const struct pc_disc_member *)tab_at(&m->members, pos);

	tab_remove(&m->members, pos);
	fence_add(&m->fences, gone.node_id, gone.incarnation,
		  now_ns + PC_DISC_FENCE_TTLS * m->ttl_ns);
	m->epoch++;
	emit(m->cb, m->cb_arg, PC_DISC_EV_LEFT, &gone, 0, m->epoch);
}

/* Find node_id, expiring its record first if it is past the TTL. */
static struct pc_disc_member *
master_lookup(struct pc_disc_master *m, const char *node_id, uint64_t now_ns, uint32_t *pos)
{
	struct pc_disc_member *rec;

	if (!tab_find(&m->members, node_id, pos)) {
		return NULL;
	}
	rec = tab_at(&m->members, *pos);
	if (master_expired(m, rec, now_ns)) {
		m->stats.pruned++;
		master_remove(m, *pos, now_ns);
		tab_find(&m->members, node_id, pos);
		return NULL;
	}
	return rec;
}

int
pc_disc_master_register(struct pc_disc_master *m, const struct pc_disc_member *rec, uint64_t now_ns)
{
	struct pc_disc_member *cur;
	uint32_t pos;

	if (m == NULL) {
		return -EINVAL;
	}
	if (pc_disc_member_check(rec) != 0) {
		m->stats.invalid++;
		return -EINVAL;
	}
	cur = master_lookup(m, rec->node_id, now_ns, &pos);
	if (cur != NULL) {
		struct pc_disc_member old;
		struct pc_disc_member next;

		if (rec->incarnation < cur->incarnation) {
			m->stats.stale_rejected++;
			return -ESTALE;
		}
		member_copy(&next, rec, now_ns);
		if (rec->incarnation == cur->incarnation) {
			m->stats.refreshes++;
			if (!member_same(cur, &next)) {
				*cur = next;
				m->epoch++;
			}
			cur->last_seen_ns = now_ns;
			return 0;
		}
		/* A restart: the old process is gone, whatever it left under the old incarnation.
		 */
		old = *cur;
		*cur = next;
		m->stats.replaced++;
		m->epoch++;
		emit(m->cb, m->cb_arg, PC_DISC_EV_LEFT, &old, 0, m->epoch);
		emit(m->cb, m->cb_arg, PC_DISC_EV_JOINED, cur, 0, m->epoch);
		return 0;
	}
	if (fence_blocks(&m->fences, rec->node_id, rec->incarnation, now_ns)) {
		m->stats.stale_rejected++;
		return -ESTALE;
	}
	if (m->members.n_free == 0) {
		m->stats.full++;
		return -ENOSPC;
	}
	fence_clear(&m->fences, rec->node_id);
	cur = tab_insert(&m->members, pos);
	member_copy(cur, rec, now_ns);
	m->stats.joins++;
	m->epoch++;
	emit(m->cb, m->cb_arg, PC_DISC_EV_JOINED, cur, 0, m->epoch);
	return 0;
}

int
pc_disc_master_heartbeat(struct pc_disc_master *m, const char *node_id, uint64_t incarnation,
			 uint64_t now_ns)
{
	struct pc_disc_member *cur;
	uint32_t pos;

	if (m == NULL || node_id == NULL || !valid_id(node_id)) {
		return -EINVAL;
	}
	cur = master_lookup(m, node_id, now_ns, &pos);
	if (cur == NULL) {
		if (fence_blocks(&m->fences, node_id, incarnation, now_ns)) {
			m->stats.stale_rejected++;
			return -ESTALE;
		}
		m->stats.unknown++;
		return -ENOENT;
	}
	if (incarnation < cur->incarnation) {
		m->stats.stale_rejected++;
		return -ESTALE;
	}
	if (incarnation > cur->incarnation) {
		/* Restarted but not registered yet: the register brings the new record. */
		m->stats.unknown++;
		return -ENOENT;
	}
	cur->last_seen_ns = now_ns;
	m->stats.heartbeats++;
	return 0;
}

int
pc_disc_master_deregister(struct pc_disc_master *m, const char *node_id, uint64_t incarnation,
			  uint64_t now_ns)
{
	struct pc_disc_member *cur;
	uint32_t pos;

	if (m == NULL || node_id == NULL || !valid_id(node_id)) {
		return -EINVAL;
	}
	cur = master_lookup(m, node_id, now_ns, &pos);
	if (cur == NULL) {
		return -ENOENT;
	}
	if (incarnation != cur->incarnation) {
		if (incarnation < cur->incarnation) {
			m->stats.stale_rejected++;
		}
		return -ESTALE;
	}
	m->stats.leaves++;
	master_remove(m, pos, now_ns);
	return 0;
}

unsigned int
pc_disc_master_prune(struct pc_disc_master *m, uint64_t now_ns)
{
	unsigned int removed = 0;

	if (m == NULL) {
		return 0;
	}
	for (uint32_t pos = m->members.n; pos-- > 0;) {
		const struct pc_disc_member *rec = tab_at(&m->members, pos);

		if (master_expired(m, rec, now_ns)) {
			m->stats.pruned++;
			master_remove(m, pos, now_ns);
			removed++;
		}
	}
	fence_prune(&m->fences, now_ns);
	return removed;
}

int
pc_disc_master_list(struct pc_disc_master *m, uint64_t now_ns, struct pc_disc_member *out,
		    unsigned int max, uint64_t *epoch)
{
	if (m == NULL || (out == NULL && max > 0)) {
		return -EINVAL;
	}
	pc_disc_master_prune(m, now_ns);
	if (m->members.n > max) {
		return -ENOBUFS;
	}
	for (uint32_t pos = 0; pos < m->members.n; pos++) {
		out[pos] = *(const struct pc_disc_member *)tab_at(&m->members, pos);
	}
	if (epoch != NULL) {
		*epoch = m->epoch;
	}
	return (int)m->members.n;
}

unsigned int
pc_disc_master_count(const struct pc_disc_master *m)
{
	return m != NULL ? m->members.n : 0;
}

uint64_t
pc_disc_master_epoch(const struct pc_disc_master *m)
{
	return m != NULL ? m->epoch : 0;
}

void
pc_disc_master_get_stats(const struct pc_disc_master *m, struct pc_disc_master_stats *out)
{
	if (m != NULL && out != NULL) {
		*out = m->stats;
	}
}

/* --------------------------------------------------------------- node */

/* A member in the node's union, with the targets whose latest view lists this incarnation. */
struct disc_entry {
	struct pc_disc_member m; /* first: the table reads the node id there */
	uint64_t mask[DISC_MASK_WORDS];
	uint32_t stamp; /* the view pass that last listed it */
	bool self;
};

/* A master or a seed this node talks to (or a retired one whose view is still held). */
struct disc_target {
	struct pc_disc_endpoint ep;
	bool used;
	bool active;     /* a master or a seed: gets actions */
	bool master;     /* in the master set */
	bool seed;       /* in discovery_addr */
	bool registered; /* our current incarnation is accepted there */
	bool reachable;  /* answered lately */
	bool has_view;   /* its member list is merged into the union */
	bool held;       /* its view is kept though it cannot count (nothing else answers) */
	bool want_members;
	unsigned int fails; /* failures in a row */
	uint64_t view_epoch;
	uint64_t next_at_ns;
	uint64_t last_ok_ns;
	uint64_t token; /* the request in flight, 0 = none */
	uint64_t deadline_ns;
};

struct pc_disc_node {
	struct pc_disc_member self;
	struct pc_disc_endpoint seeds[PC_DISC_SEEDS_MAX];
	unsigned int n_seeds;
	unsigned int max_masters;
	unsigned int max_members;
	uint64_t hb_ns;
	uint64_t ttl_ns;
	uint64_t req_ns;
	struct disc_tab members;               /* struct disc_entry */
	struct disc_tab fences;                /* struct disc_fence */
	const struct pc_disc_member **scratch; /* max_members pointers for sorting */
	struct disc_target t[DISC_TARGETS_MAX];
	struct pc_disc_endpoint masters[PC_DISC_MASTERS_MAX];
	unsigned int n_masters;
	uint64_t set_gen;
	uint64_t next_token;
	uint64_t last_due_ns;
	uint64_t removals; /* members removed so far: tells settle() a pass changed the union */
	uint32_t stamp;
	bool set_dirty;     /* the id set changed since the last SET_CHANGED */
	bool masters_dirty; /* the union changed since the master set was computed */
	bool leaving;
	pc_disc_event_cb cb;
	void *cb_arg;
	struct pc_disc_node_stats stats;
};

static void
mask_set(struct disc_entry *e, unsigned int ti)
{
	e->mask[ti / 64] |= 1ull << (ti % 64);
}

static bool
mask_test(const struct disc_entry *e, unsigned int ti)
{
	return (e->mask[ti / 64] >> (ti % 64)) & 1u;
}

static bool
mask_empty(const struct disc_entry *e)
{
	for (unsigned int w = 0; w < DISC_MASK_WORDS; w++) {
		if (e->mask[w] != 0) {
			return false;
		}
	}
	return true;
}

static void
node_emit(struct pc_disc_node *node, enum pc_disc_event_type type, const struct pc_disc_member *m,
	  uint64_t old_inc)
{
	emit(node->cb, node->cb_arg, type, m, old_inc, node->set_gen);
}

/* Remove the member at pos from the union: it left. */
static void
node_remove(struct pc_disc_node *node, uint32_t pos, uint64_t now_ns)
{
	struct pc_disc_member gone = ((const struct disc_entry *)tab_at(&node->members, pos))->m;

	tab_remove(&node->members, pos);
	fence_add(&node->fences, gone.node_id, gone.incarnation,
		  now_ns + PC_DISC_FENCE_TTLS * node->ttl_ns);
	node->removals++;
	node->set_dirty = true;
	node->masters_dirty = true;
	node_emit(node, PC_DISC_EV_LEFT, &gone, 0);
}

/* Forget the views of the targets in `bits`: members nobody else lists leave. */
static void
node_drop_views(struct pc_disc_node *node, const uint64_t bits[DISC_MASK_WORDS], uint64_t now_ns)
{
	bool any = false;

	for (unsigned int w = 0; w < DISC_MASK_WORDS; w++) {
		any |= bits[w] != 0;
	}
	if (!any) {
		return;
	}
	for (uint32_t pos = node->members.n; pos-- > 0;) {
		struct disc_entry *e = tab_at(&node->members, pos);
		bool had = false;

		if (e->self) {
			continue;
		}
		for (unsigned int w = 0; w < DISC_MASK_WORDS; w++) {
			had |= (e->mask[w] & bits[w]) != 0;
			e->mask[w] &= ~bits[w];
		}
		if (had && mask_empty(e)) {
			node_remove(node, pos, now_ns);
		}
	}
	for (unsigned int ti = 0; ti < DISC_TARGETS_MAX; ti++) {
		struct disc_target *t = &node->t[ti];

		if (!((bits[ti / 64] >> (ti % 64)) & 1u)) {
			continue;
		}
		t->has_view = false;
		t->held = false;
		if (!t->active) {
			memset(t, 0, sizeof(*t));
		}
	}
}

static void
node_drop_view(struct pc_disc_node *node, unsigned int ti, uint64_t now_ns)
{
	uint64_t bits[DISC_MASK_WORDS] = {0};

	bits[ti / 64] |= 1ull << (ti % 64);
	node_drop_views(node, bits, now_ns);
}

/* Whether a target other than `ti` has a view that counts. */
static bool
node_other_live_view(const struct pc_disc_node *node, unsigned int ti)
{
	for (unsigned int j = 0; j < DISC_TARGETS_MAX; j++) {
		const struct disc_target *t = &node->t[j];

		if (j != ti && t->used && t->active && t->reachable && t->has_view && !t->held) {
			return true;
		}
	}
	return false;
}

/*
 * Target ti's view stops counting (unreachable, or no longer a target). If
 * another view counts, drop it now; if none does, hold it: the last
 * membership is better than none while every master is down.
 */
static void
node_target_lost(struct pc_disc_node *node, unsigned int ti, uint64_t now_ns)
{
	struct disc_target *t = &node->t[ti];

	if (!t->has_view) {
		if (!t->active) {
			memset(t, 0, sizeof(*t));
		}
		return;
	}
	if (node_other_live_view(node, ti)) {
		node_drop_view(node, ti, now_ns);
	} else {
		t->held = true;
	}
}

/* A view counts again: every held view (other than ti's) goes. */
static void
node_release_held(struct pc_disc_node *node, unsigned int ti, uint64_t now_ns)
{
	uint64_t bits[DISC_MASK_WORDS] = {0};

	for (unsigned int j = 0; j < DISC_TARGETS_MAX; j++) {
		if (j != ti && node->t[j].used && node->t[j].held) {
			bits[j / 64] |= 1ull << (j % 64);
		}
	}
	node_drop_views(node, bits, now_ns);
}

static int
node_target_new(struct pc_disc_node *node, const struct pc_disc_endpoint *ep, uint64_t now_ns)
{
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned int ti = 0; ti < DISC_TARGETS_MAX; ti++) {
			struct disc_target *t = &node->t[ti];

			if (t->used) {
				continue;
			}
			memset(t, 0, sizeof(*t));
			t->used = true;
			t->active = true;
			t->ep = *ep;
			t->next_at_ns = now_ns;
			t->last_ok_ns = now_ns;
			return (int)ti;
		}
		/* Full of retired views: let them go (there are at most 80 live targets). */
		uint64_t bits[DISC_MASK_WORDS] = {0};

		for (unsigned int ti = 0; ti < DISC_TARGETS_MAX; ti++) {
			if (!node->t[ti].active) {
				bits[ti / 64] |= 1ull << (ti % 64);
			}
		}
		node_drop_views(node, bits, now_ns);
	}
	return -ENOSPC;
}

static int
node_target_find(const struct pc_disc_node *node, const char *host, uint16_t port)
{
	for (unsigned int ti = 0; ti < DISC_TARGETS_MAX; ti++) {
		if (node->t[ti].used && ep_equal(&node->t[ti].ep, host, port)) {
			return (int)ti;
		}
	}
	return -1;
}

/* Recompute the master set from the union and make the targets follow it. */
static void
node_update_masters(struct pc_disc_node *node, uint64_t now_ns)
{
	struct pc_disc_endpoint next[PC_DISC_MASTERS_MAX];
	unsigned int n = 0;
	unsigned int k;
	bool changed;

	for (uint32_t pos = 0; pos < node->members.n; pos++) {
		node->scratch[n++] = &((const struct disc_entry *)tab_at(&node->members, pos))->m;
	}
	k = masters_select(&node->seeds[0], node->scratch, n, node->max_masters, next,
			   PC_DISC_MASTERS_MAX);
	node->masters_dirty = false;
	changed = k != node->n_masters;
	for (unsigned int i = 0; i < k && !changed; i++) {
		changed = !ep_equal(&node->masters[i], next[i].host, next[i].port);
	}
	if (!changed) {
		return;
	}
	memcpy(node->masters, next, k * sizeof(next[0]));
	node->n_masters = k;

	for (unsigned int ti = 0; ti < DISC_TARGETS_MAX; ti++) {
		node->t[ti].master = false;
	}
	for (unsigned int i = 0; i < k; i++) {
		int ti = node_target_find(node, next[i].host, next[i].port);

		if (ti < 0) {
			ti = node_target_new(node, &next[i], now_ns);
		}
		if (ti >= 0) {
			node->t[ti].master = true;
			node->t[ti].active = true;
		}
	}
	for (unsigned int ti = 0; ti < DISC_TARGETS_MAX; ti++) {
		struct disc_target *t = &node->t[ti];

		if (t->used && t->active && !t->master && !t->seed) {
			t->active = false;
			t->token = 0;
			t->registered = false;
			node_target_lost(node, ti, now_ns);
		}
	}
	node_emit(node, PC_DISC_EV_MASTERS_CHANGED, NULL, 0);
}

/*
 * After any change: follow the master set until it stops moving (a retired
 * master's view can take members with it, which can move the set again),
 * then announce a new id set once.
 */
static void
node_settle(struct pc_disc_node *node, uint64_t now_ns)
{
	for (int pass = 0; pass < DISC_SETTLE_PASSES && node->masters_dirty; pass++) {
		node_update_masters(node, now_ns);
	}
	if (node->set_dirty) {
		node->set_dirty = false;
		node->set_gen++;
		node_emit(node, PC_DISC_EV_SET_CHANGED, NULL, 0);
	}
}

/* A list from the wire: valid records, no node id twice, no more than the table holds. */
static int
node_check_list(struct pc_disc_node *node, const struct pc_disc_member *members, unsigned int n)
{
	if (n > node->max_members || (members == NULL && n > 0)) {
		return -EINVAL;
	}
	for (unsigned int i = 0; i < n; i++) {
		if (pc_disc_member_check(&members[i]) != 0) {
			return -EINVAL;
		}
		node->scratch[i] = &members[i];
	}
	qsort(node->scratch, n, sizeof(const struct pc_disc_member *), id_order);
	for (unsigned int i = 1; i < n; i++) {
		if (strcmp(node->scratch[i - 1]->node_id, node->scratch[i]->node_id) == 0) {
			return -EINVAL;
		}
	}
	return 0;
}

/* Merge target ti's full list (checked) into the union. */
static void
node_apply_view(struct pc_disc_node *node, unsigned int ti, uint64_t epoch,
		const struct pc_disc_member *members, unsigned int n, uint64_t now_ns)
{
	struct disc_target *t = &node->t[ti];
	uint32_t stamp = ++node->stamp;

	for (unsigned int i = 0; i < n; i++) {
		const struct pc_disc_member *r = &members[i];
		struct disc_entry *e;
		uint32_t pos;

		if (strcmp(r->node_id, node->self.node_id) == 0) {
			/* Our own older records linger until pruned; a newer one is another
			 * process. */
			if (r->incarnation > node->self.incarnation) {
				node->stats.id_conflicts++;
			}
			continue;
		}
		if (!tab_find(&node->members, r->node_id, &pos)) {
			if (fence_blocks(&node->fences, r->node_id, r->incarnation, now_ns)) {
				node->stats.stale_records++;
				continue;
			}
			e = tab_insert(&node->members, pos);
			if (e == NULL) {
				node->stats.full++;
				continue;
			}
			fence_clear(&node->fences, r->node_id);
			member_copy(&e->m, r, now_ns);
			mask_set(e, ti);
			e->stamp = stamp;
			node->set_dirty = true;
			node->masters_dirty = true;
			node_emit(node, PC_DISC_EV_JOINED, &e->m, 0);
			continue;
		}
		e = tab_at(&node->members, pos);
		if (r->incarnation < e->m.incarnation) {
			/* This master has not seen the restart yet: the newer record stands. */
			node->stats.stale_records++;
			continue;
		}
		if (r->incarnation > e->m.incarnation) {
			uint64_t old = e->m.incarnation;

			member_copy(&e->m, r, now_ns);
			memset(e->mask, 0, sizeof(e->mask));
			mask_set(e, ti);
			e->stamp = stamp;
			node->masters_dirty = true; /* its hostname may have changed */
			node_emit(node, PC_DISC_EV_RESTARTED, &e->m, old);
			continue;
		}
		if (strcmp(e->m.hostname, r->hostname) != 0 || e->m.meta_port != r->meta_port) {
			node->masters_dirty = true;
		}
		member_copy(&e->m, r, now_ns);
		mask_set(e, ti);
		e->stamp = stamp;
	}
	/* Whatever this master listed before and not now, it no longer vouches for. */
	for (uint32_t pos = node->members.n; pos-- > 0;) {
		struct disc_entry *e = tab_at(&node->members, pos);

		if (e->self || e->stamp == stamp || !mask_test(e, ti)) {
			continue;
		}
		e->mask[ti / 64] &= ~(1ull << (ti % 64));
		if (mask_empty(e)) {
			node_remove(node, pos, now_ns);
		}
	}
	t->has_view = true;
	t->held = false;
	t->view_epoch = epoch;
	t->want_members = false;
	node_release_held(node, ti, now_ns);
}

static void
node_target_ok(struct pc_disc_node *node, unsigned int ti, uint64_t now_ns)
{
	struct disc_target *t = &node->t[ti];

	t->fails = 0;
	t->last_ok_ns = now_ns;
	t->reachable = true;
	t->held = false;
}

static void
node_target_fail(struct pc_disc_node *node, unsigned int ti, uint64_t now_ns)
{
	struct disc_target *t = &node->t[ti];

	node->stats.failures++;
	t->token = 0;
	t->fails++;
	if (!t->reachable) {
		t->registered = false;
		return;
	}
	if (t->fails >= PC_DISC_FAILS_MAX || elapsed(now_ns, t->last_ok_ns) > node->ttl_ns) {
		t->reachable = false;
		t->registered = false;
		t->want_members = false;
		node->stats.unreachable++;
		node_target_lost(node, ti, now_ns);
	}
}

static int
node_by_token(const struct pc_disc_node *node, uint64_t token)
{
	if (token == 0) {
		return -1;
	}
	for (unsigned int ti = 0; ti < DISC_TARGETS_MAX; ti++) {
		if (node->t[ti].used && node->t[ti].active && node->t[ti].token == token) {
			return (int)ti;
		}
	}
	return -1;
}

struct pc_disc_node *
pc_disc_node_create(const struct pc_disc_node_params *p, uint64_t now_ns)
{
	struct pc_config_hostport *seeds = NULL;
	struct pc_disc_node *node = NULL;
	struct disc_entry *self;
	uint32_t pos;
	int n_seeds;
	int err = EINVAL;

	if (p == NULL || pc_disc_member_check(p->self) != 0 || p->discovery_addr == NULL ||
	    p->max_masters == 0 || p->max_masters > PC_DISC_MASTERS_MAX || p->max_members == 0 ||
	    p->max_members > PC_DISC_MEMBERS_MAX || p->heartbeat_interval_ns == 0 ||
	    p->member_ttl_ns <= p->heartbeat_interval_ns) {
		goto err;
	}
	n_seeds = pc_config_parse_seeds(p->discovery_addr, NULL, 0);
	if (n_seeds <= 0) {
		goto err;
	}
	if (n_seeds > PC_DISC_SEEDS_MAX) {
		err = E2BIG;
		goto err;
	}
	err = ENOMEM;
	seeds = calloc((size_t)n_seeds, sizeof(*seeds));
	node = calloc(1, sizeof(*node));
	if (seeds == NULL || node == NULL) {
		goto err_free;
	}
	node->scratch = calloc(p->max_members, sizeof(const struct pc_disc_member *));
	if (node->scratch == NULL ||
	    tab_init(&node->members, sizeof(struct disc_entry), p->max_members) != 0 ||
	    tab_init(&node->fences, sizeof(struct disc_fence), p->max_members) != 0) {
		goto err_free;
	}
	pc_config_parse_seeds(p->discovery_addr, seeds, n_seeds);
	for (int i = 0; i < n_seeds; i++) {
		bool dup = false;

		for (unsigned int j = 0; j < node->n_seeds && !dup; j++) {
			dup = ep_equal(&node->seeds[j], seeds[i].host, seeds[i].port);
		}
		if (!dup) {
			ep_set(&node->seeds[node->n_seeds++], seeds[i].host, seeds[i].port);
		}
	}
	free(seeds);
	seeds = NULL;

	member_copy(&node->self, p->self, now_ns);
	node->max_masters = p->max_masters;
	node->max_members = p->max_members;
	node->hb_ns = p->heartbeat_interval_ns;
	node->ttl_ns = p->member_ttl_ns;
	node->req_ns =
		p->request_timeout_ns != 0 ? p->request_timeout_ns : p->heartbeat_interval_ns;
	node->next_token = 1;
	node->cb = p->cb;
	node->cb_arg = p->cb_arg;

	tab_find(&node->members, node->self.node_id, &pos);
	self = tab_insert(&node->members, pos);
	self->m = node->self;
	self->self = true;

	/* The head gets target 0 so that it is asked first. */
	for (unsigned int i = 0; i < node->n_seeds; i++) {
		int ti = node_target_new(node, &node->seeds[i], now_ns);

		node->t[ti].seed = true;
	}
	node->masters_dirty = true;
	node->set_dirty = false;
	node_settle(node, now_ns);
	return node;

err_free:
	free(seeds);
	pc_disc_node_destroy(node);
err:
	errno = err;
	return NULL;
}

void
pc_disc_node_destroy(struct pc_disc_node *node)
{
	if (node == NULL) {
		return;
	}
	tab_fini(&node->members);
	tab_fini(&node->fences);
	free(node->scratch);
	free(node);
}

static void
node_issue(struct pc_disc_node *node, unsigned int ti, enum pc_disc_action_type type,
	   uint64_t now_ns, struct pc_disc_action *a)
{
	struct disc_target *t = &node->t[ti];

	t->token = node->next_token++;
	t->deadline_ns = now_ns + node->req_ns;
	a->type = type;
	a->to = t->ep;
	a->token = t->token;
	switch (type) {
	case PC_DISC_ACT_REGISTER:
		node->stats.registers_sent++;
		break;
	case PC_DISC_ACT_HEARTBEAT:
		node->stats.heartbeats_sent++;
		break;
	case PC_DISC_ACT_MEMBERS:
		node->stats.members_sent++;
		break;
	default:
		break;
	}
}

int
pc_disc_node_due(struct pc_disc_node *node, uint64_t now_ns, struct pc_disc_action *actions,
		 unsigned int max)
{
	unsigned int k = 0;

	if (node == NULL || (actions == NULL && max > 0)) {
		return -EINVAL;
	}
	if (node->leaving) {
		return 0;
	}
	if (node->last_due_ns != 0 && elapsed(now_ns, node->last_due_ns) > node->ttl_ns) {
		/* We were stopped, not them: every master has pruned us; re-register, keep views.
		 */
		node->stats.pauses++;
		for (unsigned int ti = 0; ti < DISC_TARGETS_MAX; ti++) {
			struct disc_target *t = &node->t[ti];

			t->registered = false;
			t->token = 0;
			t->fails = 0;
			t->want_members = false;
			t->next_at_ns = now_ns;
			t->last_ok_ns = now_ns;
		}
	}
	node->last_due_ns = now_ns;

	for (unsigned int ti = 0; ti < DISC_TARGETS_MAX; ti++) {
		struct disc_target *t = &node->t[ti];

		if (!t->used || !t->active) {
			continue;
		}
		if (t->token != 0) {
			if (now_ns < t->deadline_ns) {
				continue;
			}
			node_target_fail(node, ti, now_ns);
		}
		if (k == max) {
			continue; /* keep expiring deadlines; the rest is sent on the next call */
		}
		if (!t->registered) {
			if (now_ns >= t->next_at_ns) {
				node_issue(node, ti, PC_DISC_ACT_REGISTER, now_ns, &actions[k++]);
				t->next_at_ns = now_ns + node->hb_ns;
			}
		} else if (t->want_members) {
			t->want_members = false;
			node_issue(node, ti, PC_DISC_ACT_MEMBERS, now_ns, &actions[k++]);
		} else if (now_ns >= t->next_at_ns) {
			node_issue(node, ti, PC_DISC_ACT_HEARTBEAT, now_ns, &actions[k++]);
			t->next_at_ns = now_ns + node->hb_ns;
		}
	}
	node_settle(node, now_ns);
	return (int)k;
}

int
pc_disc_node_on_register(struct pc_disc_node *node, uint64_t token, uint64_t now_ns, int status,
			 uint64_t epoch, const struct pc_disc_member *members, unsigned int n)
{
	struct disc_target *t;
	int ti;

	if (node == NULL) {
		return -EINVAL;
	}
	ti = node_by_token(node, token);
	if (ti < 0) {
		node->stats.stale_replies++;
		return -ESTALE;
	}
	t = &node->t[ti];
	t->token = 0;
	if (status == 0 && node_check_list(node, members, n) != 0) {
		node->stats.bad_lists++;
		node_target_fail(node, (unsigned int)ti, now_ns);
		node_settle(node, now_ns);
		return -EINVAL;
	}
	node_target_ok(node, (unsigned int)ti, now_ns);
	if (status != 0) {
		/* -ESTALE: a newer process holds our id; -ENOSPC: full. Retry after an interval. */
		node->stats.rejected++;
		t->registered = false;
		if (status == -ESTALE) {
			node->stats.id_conflicts++;
		}
		return 0;
	}
	t->registered = true;
	node_apply_view(node, (unsigned int)ti, epoch, members, n, now_ns);
	node_settle(node, now_ns);
	return 0;
}

int
pc_disc_node_on_heartbeat(struct pc_disc_node *node, uint64_t token, uint64_t now_ns, int status,
			  uint64_t epoch)
{
	struct disc_target *t;
	int ti;

	if (node == NULL) {
		return -EINVAL;
	}
	ti = node_by_token(node, token);
	if (ti < 0) {
		node->stats.stale_replies++;
		return -ESTALE;
	}
	t = &node->t[ti];
	t->token = 0;
	node_target_ok(node, (unsigned int)ti, now_ns);
	if (status != 0) {
		/* Pruned us, restarted, or never had us: register again now. */
		node->stats.reregisters++;
		t->registered = false;
		t->next_at_ns = now_ns;
		return 0;
	}
	if (!t->has_view || t->view_epoch != epoch) {
		t->want_members = true;
	}
	return 0;
}

int
pc_disc_node_on_members(struct pc_disc_node *node, uint64_t token, uint64_t now_ns, uint64_t epoch,
			const struct pc_disc_member *members, unsigned int n)
{
	int ti;

	if (node == NULL) {
		return -EINVAL;
	}
	ti = node_by_token(node, token);
	if (ti < 0) {
		node->stats.stale_replies++;
		return -ESTALE;
	}
	node->t[ti].token = 0;
	if (node_check_list(node, members, n) != 0) {
		node->stats.bad_lists++;
		node_target_fail(node, (unsigned int)ti, now_ns);
		node_settle(node, now_ns);
		return -EINVAL;
	}
	node_target_ok(node, (unsigned int)ti, now_ns);
	node_apply_view(node, (unsigned int)ti, epoch, members, n, now_ns);
	node_settle(node, now_ns);
	return 0;
}

int
pc_disc_node_on_failure(struct pc_disc_node *node, uint64_t token, uint64_t now_ns, int err)
{
	int ti;

	(void)err;
	if (node == NULL) {
		return -EINVAL;
	}
	ti = node_by_token(node, token);
	if (ti < 0) {
		node->stats.stale_replies++;
		return -ESTALE;
	}
	node_target_fail(node, (unsigned int)ti, now_ns);
	node_settle(node, now_ns);
	return 0;
}

int
pc_disc_node_leave(struct pc_disc_node *node, struct pc_disc_action *actions, unsigned int max)
{
	unsigned int k = 0;

	if (node == NULL || (actions == NULL && max > 0)) {
		return -EINVAL;
	}
	node->leaving = true;
	for (unsigned int ti = 0; ti < DISC_TARGETS_MAX && k < max; ti++) {
		struct disc_target *t = &node->t[ti];

		if (t->used && t->active && t->reachable) {
			actions[k].type = PC_DISC_ACT_DEREGISTER;
			actions[k].to = t->ep;
			actions[k].token = node->next_token++;
			k++;
		}
		t->token = 0;
	}
	return (int)k;
}

const struct pc_disc_member *
pc_disc_node_self(const struct pc_disc_node *node)
{
	return node != NULL ? &node->self : NULL;
}

void
pc_disc_node_set_usage(struct pc_disc_node *node, uint64_t capacity, uint64_t used)
{
	uint32_t pos;

	if (node == NULL) {
		return;
	}
	node->self.pool_capacity = capacity;
	node->self.pool_used = used;
	if (tab_find(&node->members, node->self.node_id, &pos)) {
		struct disc_entry *e = tab_at(&node->members, pos);

		e->m.pool_capacity = capacity;
		e->m.pool_used = used;
	}
}

int
pc_disc_node_member_ids(const struct pc_disc_node *node, unsigned int role_mask, const char **ids,
			unsigned int max)
{
	unsigned int k = 0;

	if (node == NULL || ids == NULL) {
		return -EINVAL;
	}
	for (uint32_t pos = 0; pos < node->members.n; pos++) {
		const struct disc_entry *e = tab_at(&node->members, pos);

		if (role_mask & PC_DISC_ROLE_BIT(e->m.role)) {
			k++;
		}
	}
	if (k > max) {
		return -ENOBUFS;
	}
	k = 0;
	for (uint32_t pos = 0; pos < node->members.n; pos++) {
		const struct disc_entry *e = tab_at(&node->members, pos);

		if (role_mask & PC_DISC_ROLE_BIT(e->m.role)) {
			ids[k++] = e->m.node_id;
		}
	}
	return (int)k;
}

int
pc_disc_node_member(const struct pc_disc_node *node, const char *node_id,
		    struct pc_disc_member *out)
{
	uint32_t pos;

	if (node == NULL || node_id == NULL || out == NULL) {
		return -EINVAL;
	}
	if (!tab_find(&node->members, node_id, &pos)) {
		return -ENOENT;
	}
	*out = ((const struct disc_entry *)tab_at(&node->members, pos))->m;
	return 0;
}

unsigned int
pc_disc_node_member_count(const struct pc_disc_node *node)
{
	return node != NULL ? node->members.n : 0;
}

uint64_t
pc_disc_node_set_gen(const struct pc_disc_node *node)
{
	return node != NULL ? node->set_gen : 0;
}

int
pc_disc_node_masters(const struct pc_disc_node *node, struct pc_disc_endpoint *out,
		     unsigned int max)
{
	if (node == NULL || out == NULL) {
		return -EINVAL;
	}
	if (node->n_masters > max) {
		return -ENOBUFS;
	}
	memcpy(out, node->masters, node->n_masters * sizeof(*out));
	return (int)node->n_masters;
}

bool
pc_disc_node_is_master(const struct pc_disc_node *node)
{
	if (node == NULL || node->self.meta_port == 0) {
		return false;
	}
	for (unsigned int i = 0; i < node->n_masters; i++) {
		if (ep_equal(&node->masters[i], node->self.hostname, node->self.meta_port)) {
			return true;
		}
	}
	return false;
}

void
pc_disc_node_get_stats(const struct pc_disc_node *node, struct pc_disc_node_stats *out)
{
	if (node != NULL && out != NULL) {
		*out = node->stats;
	}
}

/* ------------------------------------------------------------ helpers */

static int
random_bytes(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* mkdir -p: every missing folder along the path. */
static int
mkdir_p(const char *dir)
{
	char buf[PATH_MAX];
	size_t len = strnlen(dir, sizeof(buf));

	if (len == 0 || len == sizeof(buf)) {
		return -ENAMETOOLONG;
	}
	memcpy(buf, dir, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0') {
			continue;
		}
		buf[i] = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
			return -errno;
		}
		if (i < len) {
			buf[i] = '/';
		}
	}
	return 0;
}

/* Up to cap - 1 bytes of dir/name, NUL-terminated; returns the length or -errno. */
static ssize_t
read_small(const char *dir, const char *name, char *buf, size_t cap)
{
	char path[PATH_MAX];
	ssize_t total = 0;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
		return -ENAMETOOLONG;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return -errno;
	}
	while ((size_t)total < cap - 1) {
		ssize_t n = read(fd, buf + total, cap - 1 - (size_t)total);

		if (n < 0) {
			int err = errno;

			if (err == EINTR) {
				continue;
			}
			close(fd);
			return -err;
		}
		if (n == 0) {
			break;
		}
		total += n;
	}
	close(fd);
	buf[total] = '\0';
	return total;
}

/* Replace dir/name with `len` bytes so that a crash leaves the old file or the new, never half. */
static int
write_atomic(const char *dir, const char *name, const char *data, size_t len)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	size_t done = 0;
	int fd, dfd, rc;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.%d", dir, name, (int)getpid()) >=
		    sizeof(tmp)) {
		return -ENAMETOOLONG;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		return -errno;
	}
	while (done < len) {
		ssize_t n = write(fd, data + done, len - done);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			rc = -errno;
			goto err_close;
		}
		done += (size_t)n;
	}
	if (fsync(fd) != 0) {
		rc = -errno;
		goto err_close;
	}
	if (close(fd) != 0) {
		rc = -errno;
		goto err_unlink;
	}
	if (rename(tmp, path) != 0) {
		rc = -errno;
		goto err_unlink;
	}
	/* The rename is durable only once the folder is. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		return -errno;
	}
	rc = fsync(dfd) != 0 ? -errno : 0;
	close(dfd);
	return rc;

err_close:
	close(fd);
err_unlink:
	unlink(tmp);
	return rc;
}

/* "<host>-<8 hex>", host reduced to id bytes and cut so the whole fits 63 bytes. */
static int
id_generate(const char *hostname, char *out, size_t len)
{
	char host[PC_DISC_HOST_MAX];
	char base[PC_DISC_NODE_ID_MAX - 9];
	size_t n = 0;
	uint32_t r;
	int rc;

	if (hostname == NULL) {
		if (gethostname(host, sizeof(host)) != 0) {
			host[0] = '\0';
		}
		host[sizeof(host) - 1] = '\0';
		hostname = host;
	}
	for (const char *c = hostname; *c != '\0' && n < sizeof(base) - 1; c++) {
		base[n++] = is_id_char(*c) ? *c : '-';
	}
	if (n == 0) {
		memcpy(base, "node", 4);
		n = 4;
	}
	base[n] = '\0';
	rc = random_bytes(&r, sizeof(r));
	if (rc != 0) {
		return rc;
	}
	snprintf(out, len, "%s-%08x", base, r);
	return 0;
}

/* The file holds an id and at most a newline: anything else is corrupt. */
static bool
id_parse(char *buf, size_t len)
{
	if (len > 0 && buf[len - 1] == '\n') {
		buf[--len] = '\0';
	}
	return len > 0 && strlen(buf) == len && valid_id(buf);
}

int
pc_disc_node_id_load_or_create(const char *dir, const char *configured, const char *hostname,
			       char *out, size_t len)
{
	char buf[PC_DISC_NODE_ID_MAX + 2];
	char line[PC_DISC_NODE_ID_MAX + 1];
	ssize_t n;
	int rc;

	if (out == NULL || len < PC_DISC_NODE_ID_MAX) {
		return -EINVAL;
	}
	if (configured != NULL && configured[0] != '\0') {
		if (!valid_id(configured)) {
			return -EINVAL;
		}
		snprintf(out, len, "%s", configured);
		return 0;
	}
	if (dir == NULL || dir[0] == '\0') {
		return id_generate(hostname, out, len);
	}
	rc = mkdir_p(dir);
	if (rc != 0) {
		return rc;
	}
	n = read_small(dir, "node_id", buf, sizeof(buf));
	if (n >= 0 && id_parse(buf, (size_t)n)) {
		snprintf(out, len, "%s", buf);
		return 0;
	}
	if (n < 0 && n != -ENOENT) {
		return (int)n; /* unreadable is not missing: do not change identity over EACCES */
	}
	rc = id_generate(hostname, out, len);
	if (rc != 0) {
		return rc;
	}
	n = snprintf(line, sizeof(line), "%s\n", out);
	return write_atomic(dir, "node_id", line, (size_t)n);
}

int
pc_disc_incarnation_new(const char *dir, uint64_t *out)
{
	struct timespec ts;
	uint64_t inc;
	uint16_t r;
	int rc;

	if (out == NULL) {
		return -EINVAL;
	}
	if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
		return -errno;
	}
	rc = random_bytes(&r, sizeof(r));
	if (rc != 0) {
		return rc;
	}
	/* Realtime for order across starts, random low bits in case two starts share a tick. */
	inc = ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) & ~0xffffull;
	inc |= r;
	if (inc == 0) {
		inc = 1;
	}
	if (dir != NULL && dir[0] != '\0') {
		char buf[32] = {0};
		char *end;
		ssize_t n;
		int len;

		rc = mkdir_p(dir);
		if (rc != 0) {
			return rc;
		}
		n = read_small(dir, "incarnation", buf, sizeof(buf));
		if (n > 0) {
			unsigned long long last;

			errno = 0;
			last = strtoull(buf, &end, 10);
			if (errno == 0 && end != buf && (*end == '\n' || *end == '\0') &&
			    buf[0] != '-' && last >= inc) {
				if (last == UINT64_MAX) {
					return -EOVERFLOW;
				}
				inc = last + 1;
			}
		} else if (n < 0 && n != -ENOENT) {
			return (int)n;
		}
		len = snprintf(buf, sizeof(buf), "%llu\n", (unsigned long long)inc);
		rc = write_atomic(dir, "incarnation", buf, (size_t)len);
		if (rc != 0) {
			return rc;
		}
	}
	*out = inc;
	return 0;
}

int
pc_disc_resolve_local_host(const char *discovery_addr, char *out, size_t len)
{
	struct pc_config_hostport head;
	struct addrinfo hints, *res, *ai;
	char port[8];
	int rc = -EHOSTUNREACH;

	if (discovery_addr == NULL || out == NULL || len == 0 ||
	    pc_config_parse_seeds(discovery_addr, &head, 1) <= 0) {
		return -EINVAL;
	}
	snprintf(port, sizeof(port), "%u", (unsigned int)head.port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICSERV;
	switch (getaddrinfo(head.host, port, &hints, &res)) {
	case 0:
		break;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_SYSTEM:
		return errno != 0 ? -errno : -EHOSTUNREACH;
	default:
		return -EHOSTUNREACH;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		struct sockaddr_storage local = {0};
		socklen_t local_len = sizeof(local);
		const void *addr;
		int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		if (fd < 0) {
			rc = -errno;
			continue;
		}
		/* A UDP connect only picks the route and source address: nothing goes out. */
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
		    getsockname(fd, (struct sockaddr *)&local, &local_len) != 0) {
			rc = -errno;
			close(fd);
			continue;
		}
		close(fd);
		if (local.ss_family == AF_INET) {
			addr = &((const struct sockaddr_in *)&local)->sin_addr;
		} else if (local.ss_family == AF_INET6) {
			addr = &((const struct sockaddr_in6 *)&local)->sin6_addr;
		} else {
			rc = -EAFNOSUPPORT;
			continue;
		}
		rc = inet_ntop(local.ss_family, addr, out, (socklen_t)PC_MIN(len, 65535)) != NULL
			     ? 0
			     : -errno;
		break;
	}
	freeaddrinfo(res);
	return rc;
}
