/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <rte_lcore.h>

#include "admin.h"
#include "admin_proto.h"
#include "cluster.h"
#include "pc_common.h"
#include "pc_log.h"
#include "session.h"
#include "store.h"

#ifndef PC_VERSION
#define PC_VERSION "0.0.0"
#endif
#ifndef PC_GIT_REV
#define PC_GIT_REV "unknown"
#endif

#define PC_ADMIN_CELL_MAX   320 /* one table cell: a host (255) and a port */
#define PC_ADMIN_COLS_MAX   12
#define PC_ADMIN_JSON_DEPTH 8
#define PC_ADMIN_SNDBUF     (4 * (PC_ADMIN_CHUNK_MAX + (int)sizeof(struct pc_admin_reply_hdr)))

/* ------------------------------------------------------------------ */
/* Text buffer                                                         */
/* ------------------------------------------------------------------ */

/* A growing text buffer, capped at PC_ADMIN_REPLY_MAX; err sticks at the first failure. */
struct sbuf {
	char *p;
	size_t len;
	size_t cap;
	int err; /* 0, -ENOMEM, -EMSGSIZE */
};

static bool
sb_reserve(struct sbuf *sb, size_t more)
{
	size_t cap = sb->cap ? sb->cap : 4096;
	char *p;

	if (sb->err != 0) {
		return false;
	}
	if (sb->len + more + 1 <= sb->cap) {
		return true;
	}
	if (sb->len + more + 1 > PC_ADMIN_REPLY_MAX) {
		sb->err = -EMSGSIZE;
		return false;
	}
	while (cap < sb->len + more + 1) {
		cap *= 2;
	}
	cap = PC_MIN(cap, (size_t)PC_ADMIN_REPLY_MAX);
	p = realloc(sb->p, cap);
	if (p == NULL) {
		sb->err = -ENOMEM;
		return false;
	}
	sb->p = p;
	sb->cap = cap;
	return true;
}

static void
sb_put(struct sbuf *sb, const char *s, size_t n)
{
	if (!sb_reserve(sb, n)) {
		return;
	}
	memcpy(sb->p + sb->len, s, n);
	sb->len += n;
	sb->p[sb->len] = '\0';
}

static void
sb_puts(struct sbuf *sb, const char *s)
{
	sb_put(sb, s, strlen(s));
}

static void sb_printf(struct sbuf *sb, const char *fmt, ...) PC_PRINTF(2, 3);

static void
sb_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !sb_reserve(sb, (size_t)n)) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(sb->p + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

static void
sb_free(struct sbuf *sb)
{
	free(sb->p);
	memset(sb, 0, sizeof(*sb));
}

/* Bytes for a terminal: printable ASCII as is, '"' and '\' escaped, the rest as \xHH. */
static void
sb_text_bytes(struct sbuf *sb, const void *bytes, size_t n)
{
	const uint8_t *b = bytes;
	size_t i;

	for (i = 0; i < n; i++) {
		if (b[i] == '"' || b[i] == '\\') {
			char e[2] = {'\\', (char)b[i]};

			sb_put(sb, e, 2);
		} else if (b[i] >= 0x20 && b[i] < 0x7f) {
			sb_put(sb, (const char *)&b[i], 1);
		} else {
			sb_printf(sb, "\\x%02x", b[i]);
		}
	}
}

/* A JSON string of arbitrary bytes: bytes outside printable ASCII become \u00XX. */
static void
sb_json_bytes(struct sbuf *sb, const void *bytes, size_t n)
{
	const uint8_t *b = bytes;
	size_t i;

	sb_put(sb, "\"", 1);
	for (i = 0; i < n; i++) {
		if (b[i] == '"' || b[i] == '\\') {
			char e[2] = {'\\', (char)b[i]};

			sb_put(sb, e, 2);
		} else if (b[i] >= 0x20 && b[i] < 0x7f) {
			sb_put(sb, (const char *)&b[i], 1);
		} else {
			sb_printf(sb, "\\u%04x", b[i]);
		}
	}
	sb_put(sb, "\"", 1);
}

/* ------------------------------------------------------------------ */
/* JSON writer: pretty-printed, two spaces per level                   */
/* ------------------------------------------------------------------ */

struct jw {
	struct sbuf *sb;
	int depth;
	bool first[PC_ADMIN_JSON_DEPTH + 1];
};

static void
jw_init(struct jw *j, struct sbuf *sb)
{
	memset(j, 0, sizeof(*j));
	j->sb = sb;
	j->first[0] = true;
}

/* Separator, new line and indentation, then the key if there is one. */
static void
jw_key(struct jw *j, const char *key)
{
	if (j->depth > 0) {
		sb_puts(j->sb, j->first[j->depth] ? "\n" : ",\n");
		sb_printf(j->sb, "%*s", 2 * j->depth, "");
	}
	j->first[j->depth] = false;
	if (key != NULL) {
		sb_json_bytes(j->sb, key, strlen(key));
		sb_puts(j->sb, ": ");
	}
}

static void
jw_open(struct jw *j, const char *key, char brace)
{
	jw_key(j, key);
	sb_put(j->sb, &brace, 1);
	if (j->depth < PC_ADMIN_JSON_DEPTH) {
		j->depth++;
	}
	j->first[j->depth] = true;
}

static void
jw_close(struct jw *j, char brace)
{
	bool empty = j->first[j->depth];

	if (j->depth > 0) {
		j->depth--;
	}
	if (!empty) {
		sb_printf(j->sb, "\n%*s", 2 * j->depth, "");
	}
	sb_put(j->sb, &brace, 1);
	if (j->depth == 0) {
		sb_puts(j->sb, "\n");
	}
}

static void
jw_u64(struct jw *j, const char *key, uint64_t v)
{
	jw_key(j, key);
	sb_printf(j->sb, "%" PRIu64, v);
}

static void
jw_int(struct jw *j, const char *key, int64_t v)
{
	jw_key(j, key);
	sb_printf(j->sb, "%" PRId64, v);
}

static void
jw_double(struct jw *j, const char *key, double v, int decimals)
{
	jw_key(j, key);
	sb_printf(j->sb, "%.*f", decimals, v);
}

static void
jw_bool(struct jw *j, const char *key, bool v)
{
	jw_key(j, key);
	sb_puts(j->sb, v ? "true" : "false");
}

static void
jw_null(struct jw *j, const char *key)
{
	jw_key(j, key);
	sb_puts(j->sb, "null");
}

static void
jw_bytes(struct jw *j, const char *key, const void *p, size_t n)
{
	jw_key(j, key);
	sb_json_bytes(j->sb, p, n);
}

static void
jw_str(struct jw *j, const char *key, const char *s)
{
	jw_bytes(j, key, s, strlen(s));
}

/* ------------------------------------------------------------------ */
/* Formatting helpers                                                  */
/* ------------------------------------------------------------------ */

/* A NUL-terminated string (a host or node id from the wire) made safe for a terminal. */
static void
safe_cpy(char *buf, size_t len, const char *s)
{
	size_t o = 0;

	for (; *s != '\0' && o + 5 < len; s++) {
		uint8_t c = (uint8_t)*s;

		if (c >= 0x20 && c < 0x7f) {
			buf[o++] = (char)c;
		} else {
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
		}
	}
	buf[o] = '\0';
}

/* "host:port", with IPv6 literals in brackets. */
static void
fmt_endpoint(char *buf, size_t len, const char *host, uint16_t port)
{
	char h[PC_ADMIN_CELL_MAX];

	safe_cpy(h, sizeof(h), host);
	if (strchr(h, ':') != NULL) {
		snprintf(buf, len, "[%s]:%u", h, port);
	} else {
		snprintf(buf, len, "%s:%u", h, port);
	}
}

/* 1536 -> "1.5 KiB"; below 1 KiB, bytes. */
static void
fmt_size(char *buf, size_t len, uint64_t v)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double d = (double)v;
	unsigned int u = 0;

	if (v < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", v);
		return;
	}
	d /= 1024.0;
	while (d >= 1024.0 && u + 1 < PC_ARRAY_SIZE(units)) {
		d /= 1024.0;
		u++;
	}
	snprintf(buf, len, "%.1f %s", d, units[u]);
}

static const char *
role_name(enum pc_disc_role r)
{
	switch (r) {
	case PC_DISC_ROLE_INFERENCE:
		return "inference";
	case PC_DISC_ROLE_STORAGE:
		return "storage";
	case PC_DISC_ROLE_META:
		return "meta";
	default:
		return "unknown";
	}
}

static const char *
tier_name(uint8_t tier)
{
	switch (tier) {
	case PC_DIR_TIER_MEMORY:
		return "memory";
	case PC_DIR_TIER_DISK:
		return "disk";
	default:
		return "unknown";
	}
}

/* A table's cell (row, col) into buf. */
typedef void (*cell_fn)(void *ctx, unsigned int row, unsigned int col, char *buf, size_t len);

/*
 * A table with a header row: columns two spaces apart, as wide as their
 * widest cell, the last one unpadded. Cells are formatted twice (widths,
 * then text) so no per-cell storage is needed for 4096 rows.
 */
static void
sb_table(struct sbuf *sb, const char *const *heads, unsigned int ncols, unsigned int nrows,
	 cell_fn fn, void *ctx)
{
	size_t w[PC_ADMIN_COLS_MAX];
	char cell[PC_ADMIN_CELL_MAX];
	unsigned int r;
	unsigned int col;

	for (col = 0; col < ncols; col++) {
		w[col] = strlen(heads[col]);
	}
	for (r = 0; r < nrows; r++) {
		for (col = 0; col < ncols; col++) {
			fn(ctx, r, col, cell, sizeof(cell));
			w[col] = PC_MAX(w[col], strlen(cell));
		}
	}
	for (r = 0; r <= nrows; r++) {
		for (col = 0; col < ncols; col++) {
			const char *s = heads[col];

			if (r > 0) {
				fn(ctx, r - 1, col, cell, sizeof(cell));
				s = cell;
			}
			if (col + 1 < ncols) {
				sb_printf(sb, "%-*s  ", (int)w[col], s);
			} else {
				sb_printf(sb, "%s\n", s);
			}
		}
	}
}

/* ------------------------------------------------------------------ */
/* State                                                               */
/* ------------------------------------------------------------------ */

enum conn_state {
	CONN_READ,   /* waiting for a request */
	CONN_LOOKUP, /* a lookup is with the cluster */
	CONN_WRITE,  /* a reply is going out */
};

struct admin_lookup;

struct admin_conn {
	struct pc_admin *a;
	int fd;
	pid_t pid; /* SO_PEERCRED, for log lines */
	enum conn_state state;
	bool close_after;      /* the request was undecodable: close once the reply is out */
	uint64_t deadline_tsc; /* READ: silence; WRITE: no progress; 0 = arm at the next poll */
	struct admin_lookup *lookup;
	/* The reply going out. */
	struct sbuf out;
	size_t out_off;
	int32_t status;
	bool sent_one; /* a part went out (an empty reply is still one part) */
};

/* A lookup in flight: it outlives its connection if that closes first. */
struct admin_lookup {
	struct admin_conn *conn; /* NULL once the connection is gone */
	uint32_t flags;
	uint16_t ns_len;
	unsigned int n;
	struct pc_dir_key *keys; /* ns '\0' key, into the same allocation */
};

struct pc_admin {
	const struct pc_config *cfg;
	struct pc_runtime *rt;
	struct pc_lcore *control;
	struct pc_sessions *sessions;
	struct pc_store *store;
	struct pc_cluster *cluster;
	pc_admin_data_fn data_stats;
	void *data_arg;
	const char *transport;
	struct pc_poller *poller;
	uint64_t next_poll_tsc;
	uint64_t poll_tsc;
	uint64_t idle_tsc;
	uint64_t write_tsc;
	uint64_t start_ns;
	unsigned int nconns;
	struct admin_conn *conns[PC_ADMIN_CONNS_MAX];
	struct pc_admin_stats stats;
	char err[256]; /* the message of the failed render */
	uint8_t *rx;   /* PC_ADMIN_REQ_MAX bytes: the request being decoded */
	struct pc_admin_req req;
	struct pc_disc_endpoint masters[PC_DISC_MASTERS_MAX];
};

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int fail(struct pc_admin *a, int err, const char *fmt, ...) PC_PRINTF(3, 4);

static int
fail(struct pc_admin *a, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->err, sizeof(a->err), fmt, ap);
	va_end(ap);
	return err;
}

static int
no_cluster(struct pc_admin *a)
{
	return fail(a, -ENOTSUP, "no cluster: this engine runs without the cluster control plane");
}

/* ------------------------------------------------------------------ */
/* members                                                             */
/* ------------------------------------------------------------------ */

struct members_ctx {
	const struct pc_disc_member *m;
	const char *self_id;
	const struct pc_disc_endpoint *masters;
	unsigned int nmasters;
	uint64_t now_ns;
};

static bool
member_is_master(const struct members_ctx *x, const struct pc_disc_member *m)
{
	unsigned int i;

	if (m->meta_port == 0) {
		return false;
	}
	for (i = 0; i < x->nmasters; i++) {
		if (x->masters[i].port == m->meta_port &&
		    strcmp(x->masters[i].host, m->hostname) == 0) {
			return true;
		}
	}
	return false;
}

/*
 * Milliseconds since a master's member list last carried the record (the
 * node's view keeps last_seen_ns for that; lists are fetched when a master's
 * epoch changes, and masters drop members silent for member_ttl), or -1 for
 * this node itself and when unknown.
 */
static int64_t
member_age_ms(const struct members_ctx *x, const struct pc_disc_member *m)
{
	if (strcmp(m->node_id, x->self_id) == 0 || m->last_seen_ns == 0 ||
	    m->last_seen_ns > x->now_ns) {
		return -1;
	}
	return (int64_t)((x->now_ns - m->last_seen_ns) / 1000000u);
}

static const char *const g_member_heads[] = {
	"NODE", "INCARNATION", "ROLE", "HOST", "CONTROL", "DATA",
	"META", "MASTER",      "POOL", "USED", "LISTED",
};

static void
member_cell(void *ctx, unsigned int row, unsigned int col, char *buf, size_t len)
{
	const struct members_ctx *x = ctx;
	const struct pc_disc_member *m = &x->m[row];
	int64_t age;

	switch (col) {
	case 0:
		safe_cpy(buf, len, m->node_id);
		break;
	case 1:
		snprintf(buf, len, "%" PRIu64, m->incarnation);
		break;
	case 2:
		snprintf(buf, len, "%s", role_name(m->role));
		break;
	case 3:
		safe_cpy(buf, len, m->hostname);
		break;
	case 4:
		fmt_endpoint(buf, len, m->control.host, m->control.port);
		break;
	case 5:
		if (m->data.port == 0) {
			snprintf(buf, len, "-");
		} else {
			fmt_endpoint(buf, len, m->data.host, m->data.port);
		}
		break;
	case 6:
		if (m->meta_port == 0) {
			snprintf(buf, len, "-");
		} else {
			snprintf(buf, len, "%u", m->meta_port);
		}
		break;
	case 7:
		snprintf(buf, len, "%s", member_is_master(x, m) ? "yes" : "no");
		break;
	case 8:
	case 9:
		if (m->pool_capacity == 0) {
			snprintf(buf, len, "-");
		} else {
			fmt_size(buf, len, col == 8 ? m->pool_capacity : m->pool_used);
		}
		break;
	default:
		age = member_age_ms(x, m);
		if (strcmp(m->node_id, x->self_id) == 0) {
			snprintf(buf, len, "self");
		} else if (age < 0) {
			snprintf(buf, len, "-");
		} else {
			snprintf(buf, len, "%.1fs ago", (double)age / 1000.0);
		}
		break;
	}
}

static void
members_text(struct sbuf *sb, const struct pc_cluster_info *info, const struct members_ctx *x,
	     unsigned int n)
{
	char cell[PC_ADMIN_CELL_MAX];
	unsigned int i;

	safe_cpy(cell, sizeof(cell), info->node_id);
	sb_printf(sb, "node %s incarnation %" PRIu64 ", role %s, ", cell, info->incarnation,
		  role_name(info->role));
	fmt_endpoint(cell, sizeof(cell), info->host, info->control_port);
	sb_printf(sb, "control %s, ", cell);
	if (info->meta_port != 0) {
		sb_printf(sb, "meta port %u, %s\n", info->meta_port,
			  info->is_master ? "master" : "not a master");
	} else {
		sb_printf(sb, "no meta port, %s\n", info->is_master ? "master" : "not a master");
	}
	sb_printf(sb, "member set generation %" PRIu64 ", %u member%s; masters:", info->set_gen, n,
		  n == 1 ? "" : "s");
	for (i = 0; i < x->nmasters; i++) {
		fmt_endpoint(cell, sizeof(cell), x->masters[i].host, x->masters[i].port);
		sb_printf(sb, "%s %s", i == 0 ? "" : ",", cell);
	}
	sb_puts(sb, x->nmasters == 0 ? " none\n\n" : "\n\n");
	sb_table(sb, g_member_heads, PC_ARRAY_SIZE(g_member_heads), n, member_cell, (void *)x);
}

static void
jw_endpoint(struct jw *j, const char *key, const char *host, uint16_t port)
{
	char ep[PC_DISC_HOST_MAX + 16];

	/* JSON escapes what a terminal would not take; brackets only for IPv6. */
	if (strchr(host, ':') != NULL) {
		snprintf(ep, sizeof(ep), "[%s]:%u", host, port);
	} else {
		snprintf(ep, sizeof(ep), "%s:%u", host, port);
	}
	jw_str(j, key, ep);
}

static void
members_json(struct sbuf *sb, const struct pc_cluster_info *info, const struct members_ctx *x,
	     unsigned int n)
{
	struct jw j;
	unsigned int i;

	jw_init(&j, sb);
	jw_open(&j, NULL, '{');
	jw_open(&j, "self", '{');
	jw_str(&j, "node_id", info->node_id);
	jw_u64(&j, "incarnation", info->incarnation);
	jw_str(&j, "role", role_name(info->role));
	jw_str(&j, "host", info->host);
	jw_u64(&j, "control_port", info->control_port);
	if (info->meta_port != 0) {
		jw_u64(&j, "meta_port", info->meta_port);
	} else {
		jw_null(&j, "meta_port");
	}
	jw_bool(&j, "is_master", info->is_master);
	jw_close(&j, '}');
	jw_u64(&j, "set_gen", info->set_gen);
	jw_open(&j, "masters", '[');
	for (i = 0; i < x->nmasters; i++) {
		jw_endpoint(&j, NULL, x->masters[i].host, x->masters[i].port);
	}
	jw_close(&j, ']');
	jw_open(&j, "members", '[');
	for (i = 0; i < n; i++) {
		const struct pc_disc_member *m = &x->m[i];
		int64_t age = member_age_ms(x, m);

		jw_open(&j, NULL, '{');
		jw_str(&j, "node_id", m->node_id);
		jw_u64(&j, "incarnation", m->incarnation);
		jw_str(&j, "role", role_name(m->role));
		jw_str(&j, "host", m->hostname);
		jw_endpoint(&j, "control", m->control.host, m->control.port);
		if (m->data.port != 0) {
			jw_endpoint(&j, "data", m->data.host, m->data.port);
		} else {
			jw_null(&j, "data");
		}
		if (m->meta_port != 0) {
			jw_u64(&j, "meta_port", m->meta_port);
		} else {
			jw_null(&j, "meta_port");
		}
		jw_bool(&j, "master", member_is_master(x, m));
		jw_u64(&j, "flags", m->flags);
		jw_u64(&j, "pool_capacity", m->pool_capacity);
		jw_u64(&j, "pool_used", m->pool_used);
		jw_bool(&j, "self", strcmp(m->node_id, info->node_id) == 0);
		if (age >= 0) {
			jw_int(&j, "listed_ms_ago", age);
		} else {
			jw_null(&j, "listed_ms_ago");
		}
		jw_close(&j, '}');
	}
	jw_close(&j, ']');
	jw_close(&j, '}');
}

static int
render_members(struct pc_admin *a, struct sbuf *sb, bool json, uint64_t now_ns)
{
	struct pc_cluster_info info;
	struct members_ctx x = {.masters = a->masters, .now_ns = now_ns};
	struct pc_disc_member *m;
	unsigned int max;
	int n;
	int nm;

	if (a->cluster == NULL) {
		return no_cluster(a);
	}
	pc_cluster_get_info(a->cluster, &info);
	x.self_id = info.node_id;
	nm = pc_cluster_masters(a->cluster, a->masters, PC_DISC_MASTERS_MAX);
	if (nm < 0) {
		return fail(a, nm, "cannot list the masters: %s", strerror(-nm));
	}
	x.nmasters = (unsigned int)nm;
	/* The count may have grown since get_info: one more try with room for every member. */
	max = PC_MIN(info.members + 16, (unsigned int)PC_DISC_MEMBERS_MAX);
	m = calloc(max, sizeof(*m));
	if (m == NULL) {
		return fail(a, -ENOMEM, "engine out of memory");
	}
	n = pc_cluster_members(a->cluster, m, max);
	if (n == -ENOBUFS && max < PC_DISC_MEMBERS_MAX) {
		struct pc_disc_member *big = realloc(m, PC_DISC_MEMBERS_MAX * sizeof(*m));

		if (big == NULL) {
			free(m);
			return fail(a, -ENOMEM, "engine out of memory");
		}
		m = big;
		n = pc_cluster_members(a->cluster, m, PC_DISC_MEMBERS_MAX);
	}
	if (n < 0) {
		free(m);
		return fail(a, n, "cannot list the members: %s", strerror(-n));
	}
	x.m = m;
	if (json) {
		members_json(sb, &info, &x, (unsigned int)n);
	} else {
		members_text(sb, &info, &x, (unsigned int)n);
	}
	free(m);
	return 0;
}

/* ------------------------------------------------------------------ */
/* ring                                                                */
/* ------------------------------------------------------------------ */

struct ring_ctx {
	const struct pc_ring *ring;
	double *shares; /* per node, one pass over the points; NULL: out of memory */
};

static void
ring_cell(void *ctx, unsigned int row, unsigned int col, char *buf, size_t len)
{
	const struct ring_ctx *x = ctx;

	if (col == 0) {
		const char *id = pc_ring_node_id(x->ring, row);

		safe_cpy(buf, len, id != NULL ? id : "?");
	} else if (x->shares != NULL) {
		snprintf(buf, len, "%.2f%%", 100.0 * x->shares[row]);
	} else {
		snprintf(buf, len, "-");
	}
}

static int
render_ring(struct pc_admin *a, struct sbuf *sb, bool json)
{
	static const char *const heads[] = {"NODE", "SHARE"};
	struct pc_cluster_info info;
	struct ring_ctx x;
	unsigned int n;
	unsigned int i;

	if (a->cluster == NULL) {
		return no_cluster(a);
	}
	pc_cluster_get_info(a->cluster, &info);
	x.ring = pc_cluster_ring(a->cluster);
	n = pc_ring_node_count(x.ring);
	x.shares = n > 0 ? calloc(n, sizeof(*x.shares)) : NULL;
	if (x.shares != NULL && pc_ring_shares(x.ring, x.shares, n) != (int)n) {
		free(x.shares);
		x.shares = NULL;
	}
	if (json) {
		struct jw j;

		jw_init(&j, sb);
		jw_open(&j, NULL, '{');
		jw_bool(&j, "built", x.ring != NULL);
		jw_u64(&j, "nodes", n);
		jw_u64(&j, "vnodes", info.vnodes);
		jw_u64(&j, "replicas", info.replicas);
		jw_u64(&j, "set_gen", info.set_gen);
		jw_bool(&j, "resharding", info.resharding);
		jw_open(&j, "ring", '[');
		for (i = 0; i < n; i++) {
			const char *id = pc_ring_node_id(x.ring, i);

			jw_open(&j, NULL, '{');
			jw_str(&j, "node_id", id != NULL ? id : "");
			if (x.shares != NULL) {
				jw_double(&j, "share_pct", 100.0 * x.shares[i], 2);
			} else {
				jw_null(&j, "share_pct");
			}
			jw_close(&j, '}');
		}
		jw_close(&j, ']');
		jw_close(&j, '}');
		free(x.shares);
		return 0;
	}
	sb_printf(sb,
		  "ring: %u node%s, %u vnodes per node, %u replica%s, member set generation "
		  "%" PRIu64 "%s\n",
		  n, n == 1 ? "" : "s", info.vnodes, info.replicas, info.replicas == 1 ? "" : "s",
		  info.set_gen, info.resharding ? ", re-sharding" : "");
	if (x.ring == NULL) {
		sb_puts(sb, "no ring built yet\n");
		return 0;
	}
	if (x.shares == NULL) {
		sb_puts(sb, "shares not computed: out of memory\n");
	}
	sb_puts(sb, "\n");
	sb_table(sb, heads, 2, n, ring_cell, &x);
	free(x.shares);
	return 0;
}

/* ------------------------------------------------------------------ */
/* stats                                                               */
/* ------------------------------------------------------------------ */

enum field_kind { FK_COUNT, FK_BYTES, FK_BOOL };

struct field {
	const char *name;
	uint64_t v;
	enum field_kind kind;
};

/* clang-format off */
#define F_COUNT(s, f) {#f, (uint64_t)(s).f, FK_COUNT}
#define F_BYTES(s, f) {#f, (uint64_t)(s).f, FK_BYTES}
#define F_BOOL(s, f)  {#f, (uint64_t)(s).f, FK_BOOL}
/* clang-format on */

/* One section: "name" and aligned "  field  value" lines, or a JSON object under key. */
static void
put_section(struct sbuf *sb, struct jw *j, const char *name, const char *key, const struct field *f,
	    unsigned int n)
{
	size_t w = 0;
	unsigned int i;

	if (j != NULL) {
		jw_open(j, key, '{');
		for (i = 0; i < n; i++) {
			if (f[i].kind == FK_BOOL) {
				jw_bool(j, f[i].name, f[i].v != 0);
			} else {
				jw_u64(j, f[i].name, f[i].v);
			}
		}
		jw_close(j, '}');
		return;
	}
	for (i = 0; i < n; i++) {
		w = PC_MAX(w, strlen(f[i].name));
	}
	sb_printf(sb, "%s\n", name);
	for (i = 0; i < n; i++) {
		char size[32];

		switch (f[i].kind) {
		case FK_BOOL:
			sb_printf(sb, "  %-*s  %s\n", (int)w, f[i].name, f[i].v ? "yes" : "no");
			break;
		case FK_BYTES:
			fmt_size(size, sizeof(size), f[i].v);
			sb_printf(sb, "  %-*s  %" PRIu64 " (%s)\n", (int)w, f[i].name, f[i].v,
				  size);
			break;
		default:
			sb_printf(sb, "  %-*s  %" PRIu64 "\n", (int)w, f[i].name, f[i].v);
			break;
		}
	}
}

static void
stats_engine(struct pc_admin *a, struct sbuf *sb, struct jw *j, uint64_t now_ns)
{
	uint64_t up_ms = (now_ns - a->start_ns) / 1000000u;
	char sock[PC_ADMIN_CELL_MAX];

	safe_cpy(sock, sizeof(sock), a->cfg->engine_socket);
	if (j != NULL) {
		jw_open(j, "engine", '{');
		jw_str(j, "version", PC_VERSION);
		jw_str(j, "git_rev", PC_GIT_REV);
		jw_int(j, "pid", (int64_t)getpid());
		jw_str(j, "socket", a->cfg->engine_socket);
		jw_u64(j, "admin_uptime_ms", up_ms);
		jw_bool(j, "page_pool", a->store != NULL);
		jw_bool(j, "cluster", a->cluster != NULL);
		jw_close(j, '}');
		return;
	}
	sb_printf(sb,
		  "engine\n  version  %s (%s)\n  pid      %d\n  socket   %s\n  uptime   %.1fs\n"
		  "  pool     %s\n  cluster  %s\n",
		  PC_VERSION, PC_GIT_REV, (int)getpid(), sock, (double)up_ms / 1000.0,
		  a->store != NULL ? "yes" : "no (discovery-only)",
		  a->cluster != NULL ? "yes" : "no");
}

static void
stats_store(struct pc_admin *a, struct sbuf *sb, struct jw *j)
{
	struct pc_store_stats s;

	if (a->store == NULL) {
		if (j != NULL) {
			jw_null(j, "store");
		}
		return;
	}
	pc_store_get_stats(a->store, &s);
	{
		const struct field f[] = {
			F_BYTES(s, segment_size),   F_BOOL(s, hugepages),
			F_BYTES(s, bytes_used),     F_BYTES(s, bytes_free),
			F_COUNT(s, pages),          F_COUNT(s, sets),
			F_COUNT(s, set_dedup),      F_COUNT(s, set_nospace),
			F_COUNT(s, set_aborted),    F_COUNT(s, gets),
			F_COUNT(s, get_hits),       F_COUNT(s, get_misses),
			F_COUNT(s, get_bad_header), F_COUNT(s, exists_keys),
			F_COUNT(s, deletes),        F_COUNT(s, evictions),
			F_COUNT(s, quarantined),    F_COUNT(s, pinned),
			F_COUNT(s, staged),         F_COUNT(s, staged_now),
			F_COUNT(s, classes),
		};

		put_section(sb, j, "store", "store", f, PC_ARRAY_SIZE(f));
	}
}

static void
stats_sessions(struct pc_admin *a, struct sbuf *sb, struct jw *j)
{
	struct pc_sessions_stats s;

	if (a->sessions == NULL) {
		if (j != NULL) {
			jw_null(j, "sessions");
		}
		return;
	}
	pc_sessions_get_stats(a->sessions, &s);
	{
		const struct field f[] = {
			F_COUNT(s, open),          F_COUNT(s, opened),   F_COUNT(s, closed),
			F_COUNT(s, hello_refused), F_COUNT(s, requests), F_COUNT(s, bad_requests),
			F_COUNT(s, expired_holds), F_COUNT(s, parked),   F_COUNT(s, remote_waits),
			F_COUNT(s, accept_failed),
		};

		put_section(sb, j, "sessions", "sessions", f, PC_ARRAY_SIZE(f));
	}
}

static void
stats_data(struct pc_admin *a, struct sbuf *sb, struct jw *j)
{
	struct pc_admin_data_stats d;

	if (a->data_stats == NULL) {
		if (j != NULL) {
			jw_null(j, "remote");
			jw_null(j, "transport");
		}
		return;
	}
	memset(&d, 0, sizeof(d));
	a->data_stats(a->data_arg, &d);
	{
		const struct field f[] = {
			F_COUNT(d.fetch, requests),      F_COUNT(d.fetch, keys),
			F_COUNT(d.fetch, hits),          F_COUNT(d.fetch, misses),
			F_COUNT(d.fetch, stale),         F_COUNT(d.fetch, bad_pages),
			F_COUNT(d.fetch, peer_errors),   F_COUNT(d.fetch, timeouts),
			F_COUNT(d.fetch, no_space),      F_COUNT(d.fetch, retries),
			F_BYTES(d.fetch, bytes),         F_COUNT(d.fetch, exists),
			F_COUNT(d.fetch, exists_keys),   F_COUNT(d.fetch, exists_found),
			F_COUNT(d.fetch, lookup_failed), F_COUNT(d.fetch, in_flight),
		};
		const struct field x[] = {
			F_COUNT(d.xport, reads_posted),
			F_COUNT(d.xport, reads_ok),
			F_COUNT(d.xport, reads_failed),
			F_COUNT(d.xport, reads_stale),
			F_COUNT(d.xport, timeouts),
			F_BYTES(d.xport, bytes_read),
			F_COUNT(d.xport, channels_open),
			F_COUNT(d.xport, channels_opened),
			F_COUNT(d.xport, channels_destroyed),
			F_COUNT(d.xport, serve_requests),
			F_COUNT(d.xport, serve_refused),
			F_BYTES(d.xport, serve_bytes),
			F_COUNT(d.xport, serve_conns_open),
			F_COUNT(d.xport, serve_malformed),
			F_COUNT(d.xport, serve_zc_sends),
			F_COUNT(d.xport, serve_zc_done),
			F_COUNT(d.xport, serve_zc_copied),
			F_COUNT(d.xport, serve_zc_nobufs),
			F_COUNT(d, qp_connects),
			F_COUNT(d, qp_failed),
			F_COUNT(d, qp_served),
			F_COUNT(d, qp_refused),
		};
		char title[64];

		put_section(sb, j, "remote", "remote", f, PC_ARRAY_SIZE(f));
		snprintf(title, sizeof(title), "transport (%s)",
			 a->transport != NULL ? a->transport : "?");
		put_section(sb, j, title, "transport", x, PC_ARRAY_SIZE(x));
	}
}

static void
stats_admin(struct pc_admin *a, struct sbuf *sb, struct jw *j)
{
	struct pc_admin_stats s;

	pc_admin_get_stats(a, &s);
	{
		const struct field f[] = {
			F_COUNT(s, open),     F_COUNT(s, accepted),     F_COUNT(s, refused),
			F_COUNT(s, requests), F_COUNT(s, bad_requests), F_COUNT(s, errors),
			F_COUNT(s, timeouts), F_COUNT(s, slow_closed),
		};

		put_section(sb, j, "admin", "admin", f, PC_ARRAY_SIZE(f));
	}
}

static void
stats_cluster(struct pc_admin *a, struct sbuf *sb, struct jw *j)
{
	struct pc_cluster_info info;
	struct pc_cluster_stats s;

	if (a->cluster == NULL) {
		if (j != NULL) {
			jw_null(j, "cluster");
		} else {
			sb_puts(sb, "cluster\n  none (no control plane)\n");
		}
		return;
	}
	pc_cluster_get_info(a->cluster, &info);
	pc_cluster_get_stats(a->cluster, &s);
	{
		const struct field top[] = {
			F_COUNT(info, incarnation),
			F_BOOL(info, is_master),
			F_COUNT(info, set_gen),
			F_COUNT(info, members),
			F_COUNT(info, ring_nodes),
			F_COUNT(info, vnodes),
			F_COUNT(info, replicas),
			F_BOOL(info, resharding),
			F_COUNT(s, ring_builds),
			F_COUNT(s, reshards),
			F_COUNT(s, republished),
			F_COUNT(s, reshard_pruned),
			F_COUNT(s, published),
			F_COUNT(s, publish_dropped),
			F_COUNT(s, publish_failed),
			F_COUNT(s, unpublished),
			F_COUNT(s, lookups),
			F_COUNT(s, lookup_hits),
			F_COUNT(s, lookup_fallbacks),
			F_COUNT(s, lookup_failed),
			F_COUNT(s, bad_requests),
			F_COUNT(s, rejoins),
			F_COUNT(s, recent_republished),
			F_COUNT(s, handed_off),
		};
		const struct field rpc[] = {
			F_COUNT(s.rpc, conns_open),     F_COUNT(s.rpc, accepted),
			F_COUNT(s.rpc, rejected),       F_COUNT(s.rpc, auth_failed),
			F_COUNT(s.rpc, malformed),      F_COUNT(s.rpc, slow_closed),
			F_COUNT(s.rpc, out_overflow),   F_COUNT(s.rpc, requests),
			F_COUNT(s.rpc, replies_sent),   F_COUNT(s.rpc, calls),
			F_COUNT(s.rpc, replies),        F_COUNT(s.rpc, timeouts),
			F_COUNT(s.rpc, call_failed),    F_COUNT(s.rpc, late_replies),
			F_COUNT(s.rpc, connects),       F_COUNT(s.rpc, reconnects),
			F_COUNT(s.rpc, connect_failed), F_BYTES(s.rpc, bytes_in),
			F_BYTES(s.rpc, bytes_out),      F_BYTES(s.rpc, buf_bytes),
			F_BYTES(s.rpc, buf_bytes_peak),
		};
		const struct field node[] = {
			F_COUNT(s.node, registers_sent), F_COUNT(s.node, heartbeats_sent),
			F_COUNT(s.node, members_sent),   F_COUNT(s.node, failures),
			F_COUNT(s.node, unreachable),    F_COUNT(s.node, rejected),
			F_COUNT(s.node, reregisters),    F_COUNT(s.node, stale_replies),
			F_COUNT(s.node, stale_records),  F_COUNT(s.node, id_conflicts),
			F_COUNT(s.node, bad_lists),      F_COUNT(s.node, full),
			F_COUNT(s.node, pauses),
		};
		const struct field master[] = {
			F_COUNT(s.master, joins),    F_COUNT(s.master, refreshes),
			F_COUNT(s.master, replaced), F_COUNT(s.master, leaves),
			F_COUNT(s.master, pruned),   F_COUNT(s.master, heartbeats),
			F_COUNT(s.master, unknown),  F_COUNT(s.master, stale_rejected),
			F_COUNT(s.master, full),     F_COUNT(s.master, invalid),
		};
		const struct field shard[] = {
			F_COUNT(s.shard, entries),       F_COUNT(s.shard, locations),
			F_COUNT(s.shard, nodes),         F_COUNT(s.shard, capacity),
			F_COUNT(s.shard, puts),          F_COUNT(s.shard, replaced),
			F_COUNT(s.shard, displaced),     F_COUNT(s.shard, stale_rejected),
			F_COUNT(s.shard, full_rejected), F_COUNT(s.shard, deletes),
			F_COUNT(s.shard, loc_deletes),   F_COUNT(s.shard, dropped),
			F_COUNT(s.shard, pruned),        F_COUNT(s.shard, lookups),
			F_COUNT(s.shard, hits),
		};
		const struct field cache[] = {
			F_COUNT(s.cache, entries),   F_COUNT(s.cache, capacity),
			F_COUNT(s.cache, hits),      F_COUNT(s.cache, misses),
			F_COUNT(s.cache, expired),   F_COUNT(s.cache, inserts),
			F_COUNT(s.cache, evictions), F_COUNT(s.cache, invalidations),
		};
		char id[PC_ADMIN_CELL_MAX];

		if (j != NULL) {
			jw_open(j, "cluster", '{');
			jw_str(j, "node_id", info.node_id);
			jw_str(j, "role", role_name(info.role));
			jw_str(j, "host", info.host);
			jw_u64(j, "control_port", info.control_port);
			jw_u64(j, "meta_port", info.meta_port);
			for (unsigned int i = 0; i < PC_ARRAY_SIZE(top); i++) {
				if (top[i].kind == FK_BOOL) {
					jw_bool(j, top[i].name, top[i].v != 0);
				} else {
					jw_u64(j, top[i].name, top[i].v);
				}
			}
		} else {
			char name[PC_ADMIN_CELL_MAX + 32];

			safe_cpy(id, sizeof(id), info.node_id);
			snprintf(name, sizeof(name), "cluster (node %s, role %s)", id,
				 role_name(info.role));
			put_section(sb, NULL, name, NULL, top, PC_ARRAY_SIZE(top));
		}
		put_section(sb, j, "cluster.rpc", "rpc", rpc, PC_ARRAY_SIZE(rpc));
		put_section(sb, j, "cluster.discovery_node", "discovery_node", node,
			    PC_ARRAY_SIZE(node));
		put_section(sb, j, "cluster.discovery_master", "discovery_master", master,
			    PC_ARRAY_SIZE(master));
		put_section(sb, j, "cluster.directory_shard", "directory_shard", shard,
			    PC_ARRAY_SIZE(shard));
		put_section(sb, j, "cluster.directory_cache", "directory_cache", cache,
			    PC_ARRAY_SIZE(cache));
		if (j != NULL) {
			jw_close(j, '}');
		}
	}
}

struct lcore_row {
	unsigned int id;
	bool control;
	struct pc_lcore_stats st;
};

static double
busy_pct(const struct pc_lcore_stats *st)
{
	uint64_t total = st->busy_cycles + st->idle_cycles;

	return total ? 100.0 * (double)st->busy_cycles / (double)total : 0.0;
}

static void
lcore_cell(void *ctx, unsigned int row, unsigned int col, char *buf, size_t len)
{
	const struct lcore_row *r = (const struct lcore_row *)ctx + row;

	switch (col) {
	case 0:
		snprintf(buf, len, "%u", r->id);
		break;
	case 1:
		snprintf(buf, len, "%s", r->control ? "control" : "worker");
		break;
	case 2:
		snprintf(buf, len, "%" PRIu64, r->st.passes);
		break;
	case 3:
		snprintf(buf, len, "%.1f%%", busy_pct(&r->st));
		break;
	case 4:
		snprintf(buf, len, "%" PRIu64, r->st.msgs);
		break;
	case 5:
		snprintf(buf, len, "%" PRIu64, r->st.timers_fired);
		break;
	default:
		snprintf(buf, len, "%" PRIu64, r->st.sleeps);
		break;
	}
}

static void
stats_lcores(struct pc_admin *a, struct sbuf *sb, struct jw *j)
{
	static const char *const heads[] = {"LCORE",    "ROLE",   "PASSES", "BUSY",
					    "MESSAGES", "TIMERS", "SLEEPS"};
	struct lcore_row rows[RTE_MAX_LCORE];
	unsigned int n = 0;
	unsigned int id;
	unsigned int i;

	RTE_LCORE_FOREACH (id) {
		struct pc_lcore *lc = pc_runtime_lcore(a->rt, id);

		if (lc == NULL) {
			continue;
		}
		rows[n].id = id;
		rows[n].control = pc_lcore_is_control(lc);
		pc_lcore_get_stats(lc, &rows[n].st);
		n++;
	}
	if (j == NULL) {
		sb_puts(sb, "lcores\n");
		sb_table(sb, heads, PC_ARRAY_SIZE(heads), n, lcore_cell, rows);
		return;
	}
	jw_open(j, "lcores", '[');
	for (i = 0; i < n; i++) {
		const struct pc_lcore_stats *st = &rows[i].st;

		jw_open(j, NULL, '{');
		jw_u64(j, "lcore", rows[i].id);
		jw_str(j, "role", rows[i].control ? "control" : "worker");
		jw_u64(j, "passes", st->passes);
		jw_u64(j, "busy_passes", st->busy_passes);
		jw_u64(j, "busy_cycles", st->busy_cycles);
		jw_u64(j, "idle_cycles", st->idle_cycles);
		jw_double(j, "busy_pct", busy_pct(st), 1);
		jw_u64(j, "msgs", st->msgs);
		jw_u64(j, "timers_fired", st->timers_fired);
		jw_u64(j, "sleeps", st->sleeps);
		jw_u64(j, "wakeups", st->wakeups);
		jw_close(j, '}');
	}
	jw_close(j, ']');
}

static int
render_stats(struct pc_admin *a, struct sbuf *sb, bool json, uint64_t now_ns)
{
	struct jw j;
	struct jw *jp = NULL;

	if (json) {
		jw_init(&j, sb);
		jp = &j;
		jw_open(jp, NULL, '{');
	}
	stats_engine(a, sb, jp, now_ns);
	stats_store(a, sb, jp);
	stats_sessions(a, sb, jp);
	stats_data(a, sb, jp);
	stats_admin(a, sb, jp);
	stats_cluster(a, sb, jp);
	stats_lcores(a, sb, jp);
	if (json) {
		jw_close(jp, '}');
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* lookup                                                              */
/* ------------------------------------------------------------------ */

static const char *
lookup_error(int status)
{
	switch (status) {
	case -EHOSTUNREACH:
		return "no owner answered";
	case -ETIMEDOUT:
		return "timed out";
	case -ECANCELED:
		return "cancelled: the engine is stopping";
	default:
		return strerror(-status);
	}
}

/* The key as the user gave it: the directory key minus "ns\0". */
static const uint8_t *
lookup_user_key(const struct admin_lookup *lk, unsigned int i, size_t *len)
{
	*len = lk->keys[i].len - lk->ns_len - 1u;
	return (const uint8_t *)lk->keys[i].bytes + lk->ns_len + 1;
}

static void
lookup_text(struct sbuf *sb, const struct admin_lookup *lk,
	    const struct pc_cluster_lookup_result *res, unsigned int n)
{
	unsigned int found = 0;
	unsigned int miss = 0;
	unsigned int i;

	for (i = 0; i < n; i++) {
		found += res[i].status == 0;
		miss += res[i].status == -ENOENT;
	}
	sb_puts(sb, "namespace \"");
	sb_text_bytes(sb, lk->keys[0].bytes, lk->ns_len);
	sb_printf(sb, "\": %u key%s, %u found, %u miss, %u error\n", n, n == 1 ? "" : "s", found,
		  miss, n - found - miss);
	for (i = 0; i < n; i++) {
		const struct pc_cluster_lookup_result *r = &res[i];
		char owner[PC_ADMIN_CELL_MAX];
		size_t klen;
		const uint8_t *k = lookup_user_key(lk, i, &klen);
		unsigned int l;

		/* Who answered: the read cache, an owner, or (unknown) nobody named. */
		if (r->cached) {
			snprintf(owner, sizeof(owner), ", from the read cache");
		} else if (r->owner[0] != '\0') {
			char id[PC_DIR_NODE_ID_MAX * 4];

			safe_cpy(id, sizeof(id), r->owner);
			snprintf(owner, sizeof(owner), ", owner %s", id);
		} else {
			owner[0] = '\0';
		}
		sb_puts(sb, "key \"");
		sb_text_bytes(sb, k, klen);
		if (r->status == 0) {
			sb_printf(sb, "\": found, %u location%s%s\n", r->n_locs,
				  r->n_locs == 1 ? "" : "s", owner);
		} else if (r->status == -ENOENT) {
			sb_printf(sb, "\": miss%s\n", owner);
		} else {
			sb_printf(sb, "\": error: %s\n", lookup_error(r->status));
		}
		for (l = 0; r->status == 0 && l < r->n_locs && l < PC_DIR_LOCS_MAX; l++) {
			const struct pc_dir_loc *loc = &r->locs[l];

			safe_cpy(owner, sizeof(owner), loc->node_id);
			sb_printf(sb,
				  "  node %s incarnation %" PRIu64 " offset %" PRIu64
				  " length %u generation %" PRIu64 " tier %s rkey 0x%x\n",
				  owner, loc->incarnation, loc->offset, loc->length,
				  loc->generation, tier_name(loc->tier), loc->rkey);
		}
	}
}

static void
lookup_json(struct sbuf *sb, const struct admin_lookup *lk,
	    const struct pc_cluster_lookup_result *res, unsigned int n)
{
	struct jw j;
	unsigned int i;

	jw_init(&j, sb);
	jw_open(&j, NULL, '[');
	for (i = 0; i < n; i++) {
		const struct pc_cluster_lookup_result *r = &res[i];
		size_t klen;
		const uint8_t *k = lookup_user_key(lk, i, &klen);
		unsigned int l;

		jw_open(&j, NULL, '{');
		jw_bytes(&j, "namespace", lk->keys[i].bytes, lk->ns_len);
		jw_bytes(&j, "key", k, klen);
		jw_str(&j, "status",
		       r->status == 0         ? "found"
		       : r->status == -ENOENT ? "miss"
					      : "error");
		if (r->status != 0 && r->status != -ENOENT) {
			jw_int(&j, "errno", -(int64_t)r->status);
			jw_str(&j, "error", lookup_error(r->status));
		}
		if (r->owner[0] != '\0') {
			jw_str(&j, "owner", r->owner);
		} else {
			jw_null(&j, "owner");
		}
		jw_bool(&j, "cached", r->cached);
		jw_open(&j, "locations", '[');
		for (l = 0; r->status == 0 && l < r->n_locs && l < PC_DIR_LOCS_MAX; l++) {
			const struct pc_dir_loc *loc = &r->locs[l];

			jw_open(&j, NULL, '{');
			jw_str(&j, "node_id", loc->node_id);
			jw_u64(&j, "incarnation", loc->incarnation);
			jw_u64(&j, "offset", loc->offset);
			jw_u64(&j, "length", loc->length);
			jw_u64(&j, "generation", loc->generation);
			jw_str(&j, "tier", tier_name(loc->tier));
			jw_u64(&j, "rkey", loc->rkey);
			jw_close(&j, '}');
		}
		jw_close(&j, ']');
		jw_close(&j, '}');
	}
	jw_close(&j, ']');
}

/* ------------------------------------------------------------------ */
/* Connections                                                         */
/* ------------------------------------------------------------------ */

/* Queue a reply (the text is taken over). Sent by the next conn_flush(). */
static void
conn_reply(struct admin_conn *c, int32_t status, struct sbuf *text)
{
	sb_free(&c->out);
	c->out = *text;
	memset(text, 0, sizeof(*text));
	c->out_off = 0;
	c->status = status;
	c->sent_one = false;
	c->state = CONN_WRITE;
	c->deadline_tsc = 0;
	if (status < 0) {
		c->a->stats.errors++;
	}
}

static void conn_error(struct admin_conn *c, int status, const char *fmt, ...) PC_PRINTF(3, 4);

static void
conn_error(struct admin_conn *c, int status, const char *fmt, ...)
{
	struct sbuf sb = {0};
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sb_printf(&sb, "%s\n", msg);
	conn_reply(c, status, &sb);
}

/* A rendered reply, or the render's error. */
static void
conn_render_done(struct admin_conn *c, int rc, struct sbuf *sb)
{
	if (rc == 0 && sb->err != 0) {
		rc = sb->err;
		fail(c->a, rc, "%s",
		     rc == -EMSGSIZE ? "reply too large (over 16 MiB)" : "engine out of memory");
	}
	if (rc != 0) {
		sb_free(sb);
		conn_error(c, rc, "%s", c->a->err);
		return;
	}
	conn_reply(c, 0, sb);
}

static void
lookup_done(void *arg, const struct pc_cluster_lookup_result *res, unsigned int n)
{
	struct admin_lookup *lk = arg;
	struct admin_conn *c = lk->conn;
	struct sbuf sb = {0};

	if (c == NULL) {
		/* The connection went away while the cluster worked. */
		free(lk);
		return;
	}
	c->lookup = NULL;
	if (n != lk->n) {
		unsigned int want = lk->n;

		free(lk);
		conn_error(c, -EIO, "the cluster answered %u of %u keys", n, want);
		return;
	}
	if (lk->flags & PC_ADMIN_F_JSON) {
		lookup_json(&sb, lk, res, n);
	} else {
		lookup_text(&sb, lk, res, n);
	}
	free(lk);
	conn_render_done(c, 0, &sb);
}

/* Copy the keys (the receive buffer is reused) and hand them to the cluster. */
static void
start_lookup(struct pc_admin *a, struct admin_conn *c, const struct pc_admin_req *req)
{
	struct admin_lookup *lk;
	size_t bytes = 0;
	uint8_t *p;
	unsigned int i;
	int rc;

	if (a->cluster == NULL) {
		conn_error(c, no_cluster(a), "%s", a->err);
		return;
	}
	for (i = 0; i < req->nkeys; i++) {
		bytes += (size_t)req->ns_len + 1 + req->keys[i].len;
	}
	lk = malloc(sizeof(*lk) + req->nkeys * sizeof(struct pc_dir_key) + bytes);
	if (lk == NULL) {
		conn_error(c, -ENOMEM, "engine out of memory");
		return;
	}
	lk->conn = c;
	lk->flags = req->flags;
	lk->ns_len = req->ns_len;
	lk->n = req->nkeys;
	lk->keys = (struct pc_dir_key *)(lk + 1);
	p = (uint8_t *)(lk->keys + req->nkeys);
	for (i = 0; i < req->nkeys; i++) {
		lk->keys[i].bytes = p;
		lk->keys[i].len = (uint32_t)req->ns_len + 1 + req->keys[i].len;
		if (req->ns_len > 0) {
			memcpy(p, req->ns, req->ns_len);
		}
		p[req->ns_len] = '\0';
		memcpy(p + req->ns_len + 1, req->keys[i].bytes, req->keys[i].len);
		p += lk->keys[i].len;
	}
	rc = pc_cluster_lookup(a->cluster, lk->keys, lk->n, 0, lookup_done, lk);
	if (rc != 0) {
		free(lk);
		switch (rc) {
		case -EBUSY:
			conn_error(c, rc, "too many lookups in flight; try again");
			break;
		case -ENOTSUP:
			conn_error(c, rc, "this engine keeps no directory (role meta)");
			break;
		default:
			conn_error(c, rc, "lookup refused: %s", strerror(-rc));
			break;
		}
		return;
	}
	c->lookup = lk;
	c->state = CONN_LOOKUP;
}

static void
handle_request(struct pc_admin *a, struct admin_conn *c, const struct pc_admin_req *req)
{
	bool json = (req->flags & PC_ADMIN_F_JSON) != 0;
	struct sbuf sb = {0};
	uint64_t now_ns = mono_ns();
	int rc;

	a->stats.requests++;
	PC_LOG(DEBUG, engine, "admin: %s%s from pid %d", pc_admin_op_name(req->op),
	       json ? " (json)" : "", (int)c->pid);
	switch (req->op) {
	case PC_ADMIN_OP_MEMBERS:
		rc = render_members(a, &sb, json, now_ns);
		break;
	case PC_ADMIN_OP_RING:
		rc = render_ring(a, &sb, json);
		break;
	case PC_ADMIN_OP_STATS:
		rc = render_stats(a, &sb, json, now_ns);
		break;
	default: /* PC_ADMIN_OP_LOOKUP: the decoder knows no other op */
		start_lookup(a, c, req);
		return;
	}
	conn_render_done(c, rc, &sb);
}

/*
 * Send what the socket takes of the reply. Returns 1 when the reply is out,
 * 0 when the socket is full (try again later), -1 when the peer is gone.
 */
static int
conn_flush(struct admin_conn *c, int *work)
{
	while (!c->sent_one || c->out_off < c->out.len) {
		size_t chunk = PC_MIN(c->out.len - c->out_off, (size_t)PC_ADMIN_CHUNK_MAX);
		struct pc_admin_reply_hdr h = {
			.magic = PC_ADMIN_REPLY_MAGIC,
			.status = c->status,
			.flags = c->out_off + chunk < c->out.len ? PC_ADMIN_RF_MORE : 0,
			.len = (uint32_t)chunk,
		};
		struct iovec iov[2] = {
			{.iov_base = &h, .iov_len = sizeof(h)},
			{.iov_base = c->out.p + c->out_off, .iov_len = chunk},
		};
		struct msghdr msg = {.msg_iov = iov, .msg_iovlen = chunk > 0 ? 2 : 1};
		ssize_t n = sendmsg(c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			return 0;
		}
		if (n != (ssize_t)(sizeof(h) + chunk)) {
			return -1;
		}
		c->out_off += chunk;
		c->sent_one = true;
		c->deadline_tsc = 0; /* progress: a new deadline */
		(*work)++;
	}
	return 1;
}

static void
conn_free(struct admin_conn *c)
{
	if (c->lookup != NULL) {
		/* The lookup frees itself when the cluster calls back. */
		c->lookup->conn = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
	}
	sb_free(&c->out);
	free(c);
}

/* Read and decode one request. Returns false when the connection is to be closed now. */
static bool
conn_read(struct pc_admin *a, struct admin_conn *c, uint64_t now_tsc, int *work)
{
	char why[160];
	ssize_t n = recv(c->fd, a->rx, PC_ADMIN_REQ_MAX, MSG_DONTWAIT | MSG_TRUNC);
	int rc;

	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		if (now_tsc >= c->deadline_tsc) {
			a->stats.timeouts++;
			PC_LOG(INFO, engine, "admin: pid %d sent no request in %u s; closed",
			       (int)c->pid, PC_ADMIN_IDLE_US / 1000000u);
			return false;
		}
		return true;
	}
	if (n <= 0) {
		return false; /* hung up (or a reset) */
	}
	(*work)++;
	rc = pc_admin_req_decode(a->rx, (size_t)n, &a->req, why, sizeof(why));
	if (rc != 0) {
		a->stats.bad_requests++;
		PC_LOG(WARNING, engine, "admin: bad request from pid %d: %s; closing", (int)c->pid,
		       why);
		conn_error(c, rc, "bad request: %s", why);
		c->close_after = true;
		return true;
	}
	handle_request(a, c, &a->req);
	return true;
}

/* One connection's turn. Returns false when it was closed. */
static bool
conn_poll(struct pc_admin *a, struct admin_conn *c, uint64_t now_tsc, int *work)
{
	int rc;

	if (c->deadline_tsc == 0) {
		c->deadline_tsc = now_tsc + (c->state == CONN_READ ? a->idle_tsc : a->write_tsc);
	}
	if (c->state == CONN_READ && !conn_read(a, c, now_tsc, work)) {
		return false;
	}
	if (c->state != CONN_WRITE) {
		return true;
	}
	if (c->deadline_tsc == 0) {
		c->deadline_tsc = now_tsc + a->write_tsc;
	}
	rc = conn_flush(c, work);
	if (rc < 0) {
		return false;
	}
	if (rc == 0) {
		if (c->deadline_tsc != 0 && now_tsc >= c->deadline_tsc) {
			a->stats.slow_closed++;
			PC_LOG(WARNING, engine,
			       "admin: pid %d stopped reading its reply (%zu of %zu bytes sent); "
			       "dropped",
			       (int)c->pid, c->out_off, c->out.len);
			return false;
		}
		return true;
	}
	if (c->close_after) {
		return false;
	}
	sb_free(&c->out);
	c->state = CONN_READ;
	c->deadline_tsc = now_tsc + a->idle_tsc;
	return true;
}

static int
admin_poll(void *arg, uint64_t now_tsc)
{
	struct pc_admin *a = arg;
	unsigned int i = 0;
	int work = 0;

	if (a->nconns == 0 || now_tsc < a->next_poll_tsc) {
		return 0;
	}
	a->next_poll_tsc = now_tsc + a->poll_tsc;
	while (i < a->nconns) {
		struct admin_conn *c = a->conns[i];

		if (conn_poll(a, c, now_tsc, &work)) {
			i++;
			continue;
		}
		conn_free(c);
		a->conns[i] = a->conns[--a->nconns];
		work++;
	}
	return work;
}

/* Refused for lack of room: drain what it sent (else the close resets it), answer, close. */
static void
refuse(int fd)
{
	char buf[256];
	char msg[96];
	struct pc_admin_reply_hdr h = {.magic = PC_ADMIN_REPLY_MAGIC, .status = -EUSERS};
	struct iovec iov[2] = {{.iov_base = &h, .iov_len = sizeof(h)}, {.iov_base = msg}};
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
	int i;

	for (i = 0; i < 4 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0; i++) {
	}
	h.len = (uint32_t)snprintf(msg, sizeof(msg), "too many admin connections (%d); try again\n",
				   PC_ADMIN_CONNS_MAX);
	iov[1].iov_len = h.len;
	if (sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		PC_LOG(DEBUG, engine, "admin: refusal not sent: %s", strerror(errno));
	}
	close(fd);
}

int
pc_admin_adopt(struct pc_admin *a, int fd)
{
	struct admin_conn *c;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	socklen_t blen = sizeof(int);
	int fl = fcntl(fd, F_GETFL);
	int sndbuf = 0;

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
		int rc = -errno;

		PC_LOG(WARNING, engine, "admin: cannot make the socket non-blocking: %s",
		       strerror(-rc));
		close(fd);
		return rc;
	}
	if (a->nconns >= PC_ADMIN_CONNS_MAX) {
		a->stats.refused++;
		PC_LOG(WARNING, engine, "admin: %d connections open; one more refused",
		       PC_ADMIN_CONNS_MAX);
		refuse(fd);
		return -EUSERS;
	}
	/* A part larger than the send buffer could never go (EMSGSIZE): make room for two. */
	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &blen) == 0 &&
	    sndbuf < PC_ADMIN_SNDBUF) {
		sndbuf = PC_ADMIN_SNDBUF;
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return -ENOMEM;
	}
	c->a = a;
	c->fd = fd;
	c->state = CONN_READ;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0) {
		c->pid = cred.pid;
	}
	a->conns[a->nconns++] = c;
	a->stats.accepted++;
	/* Poll at once: the request is usually queued already. */
	a->next_poll_tsc = 0;
	return 0;
}

static void
adopt_hook(void *arg, int fd)
{
	pc_admin_adopt(arg, fd);
}

void
pc_admin_get_stats(const struct pc_admin *a, struct pc_admin_stats *out)
{
	*out = a->stats;
	out->open = a->nconns;
}

struct pc_admin *
pc_admin_create(const struct pc_admin_deps *d)
{
	struct pc_admin *a;

	if (d == NULL || d->cfg == NULL || d->rt == NULL) {
		PC_LOG(ERR, engine, "admin: the config and the runtime are required");
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		PC_LOG(ERR, engine, "admin: no memory");
		return NULL;
	}
	a->cfg = d->cfg;
	a->rt = d->rt;
	a->control = pc_runtime_control(d->rt);
	a->sessions = d->sessions;
	a->store = d->store;
	a->cluster = d->cluster;
	a->data_stats = d->data_stats;
	a->data_arg = d->data_arg;
	a->transport = d->transport;
	a->poll_tsc = pc_us_to_tsc(PC_ADMIN_POLL_US);
	a->idle_tsc = pc_us_to_tsc(PC_ADMIN_IDLE_US);
	a->write_tsc = pc_us_to_tsc(PC_ADMIN_WRITE_US);
	a->start_ns = mono_ns();
	a->rx = malloc(PC_ADMIN_REQ_MAX);
	if (a->rx == NULL) {
		PC_LOG(ERR, engine, "admin: no memory");
		goto err_free;
	}
	a->poller = pc_lcore_poller_register(a->control, "admin", admin_poll, a);
	if (a->poller == NULL) {
		PC_LOG(ERR, engine, "admin: cannot register its poller");
		goto err_free;
	}
	if (a->sessions != NULL) {
		pc_sessions_set_admin(a->sessions, adopt_hook, a);
	}
	return a;

err_free:
	free(a->rx);
	free(a);
	return NULL;
}

void
pc_admin_destroy(struct pc_admin *a)
{
	unsigned int i;

	if (a == NULL) {
		return;
	}
	if (a->sessions != NULL) {
		pc_sessions_set_admin(a->sessions, NULL, NULL);
	}
	if (a->poller != NULL) {
		pc_lcore_poller_unregister(a->control, a->poller);
	}
	for (i = 0; i < a->nconns; i++) {
		conn_free(a->conns[i]);
	}
	free(a->rx);
	free(a);
}
