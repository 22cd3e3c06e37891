/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * engine/admin.c: what peercache-ctl shows, and how the engine's side of
 * its connections behaves.
 *
 *   render       members, ring, lookup and stats against a fake cluster
 *                (the pc_cluster_* calls are stubbed here): exact text
 *                (columns, human sizes, escaped bytes), and JSON that a
 *                strict parser reads back to the same fields and bytes.
 *   connections  socket pairs adopted by the admin and polled with a
 *                hand-fed clock: several requests on one connection, a long
 *                reply in parts reassembled byte for byte, garbage /
 *                truncated / oversized requests answered then closed, a
 *                silent peer closed at its deadline, the connection cap, a
 *                peer that stops reading dropped, lookups whose connection
 *                or admin goes away before the cluster answers.
 *   engine       the session server's socket with the admin hook, on a
 *                discovery-only engine (no page store: session hellos are
 *                refused with ENOTSUP) and on one with a store, driven by
 *                build/peercache-ctl run as a child process: exit codes,
 *                stdout and stderr.
 */
#define PC_UT_WITH_EAL
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rte_cycles.h>

#include "../../../engine/admin.c"
#include "mock.h"
#include "ut.h"

static struct pc_config g_cfg;
static struct pc_runtime *g_rt;
static uint64_t g_now; /* the hand-fed TSC of the connection tests */

/* ------------------------------------------------------------------ */
/* The fake cluster                                                    */
/* ------------------------------------------------------------------ */

static char g_cluster_obj; /* admin.c only passes the pointer back */
#define FAKE_CLUSTER ((struct pc_cluster *)&g_cluster_obj)

static struct pc_cluster_info g_info;
static struct pc_cluster_stats g_cstats;
static struct pc_disc_member *g_members;
static unsigned int g_nmembers;
static struct pc_disc_endpoint g_masters[4];
static unsigned int g_nmasters;
static struct pc_ring *g_ring;

/* Queued results of the fake's calls that can fail. */
int ut_members_rc(void);
int ut_lookup_rc(void);
DEFINE_STUB(ut_members_rc, int, (void), 0)
DEFINE_STUB(ut_lookup_rc, int, (void), 0)

/* The lookup in flight: what the admin handed over. */
static pc_cluster_lookup_fn g_lk_cb;
static void *g_lk_arg;
static unsigned int g_lk_n;
static uint64_t g_lk_timeout;
static uint8_t g_lk_bytes[PC_ADMIN_KEYS_MAX][PC_DIR_KEY_MAX];
static uint32_t g_lk_len[PC_ADMIN_KEYS_MAX];

void
pc_cluster_get_info(const struct pc_cluster *c, struct pc_cluster_info *out)
{
	CU_ASSERT_PTR_EQUAL(c, FAKE_CLUSTER);
	*out = g_info;
}

void
pc_cluster_get_stats(const struct pc_cluster *c, struct pc_cluster_stats *out)
{
	CU_ASSERT_PTR_EQUAL(c, FAKE_CLUSTER);
	*out = g_cstats;
}

int
pc_cluster_members(const struct pc_cluster *c, struct pc_disc_member *out, unsigned int max)
{
	int rc = ut_members_rc();

	CU_ASSERT_PTR_EQUAL(c, FAKE_CLUSTER);
	if (rc != 0) {
		return rc;
	}
	if (max < g_nmembers) {
		return -ENOBUFS;
	}
	memcpy(out, g_members, g_nmembers * sizeof(*out));
	return (int)g_nmembers;
}

int
pc_cluster_masters(const struct pc_cluster *c, struct pc_disc_endpoint *out, unsigned int max)
{
	CU_ASSERT_PTR_EQUAL(c, FAKE_CLUSTER);
	if (max < g_nmasters) {
		return -ENOBUFS;
	}
	memcpy(out, g_masters, g_nmasters * sizeof(*out));
	return (int)g_nmasters;
}

const struct pc_ring *
pc_cluster_ring(const struct pc_cluster *c)
{
	CU_ASSERT_PTR_EQUAL(c, FAKE_CLUSTER);
	return g_ring;
}

int
pc_cluster_lookup(struct pc_cluster *c, const struct pc_dir_key *keys, unsigned int n,
		  uint64_t timeout_ns, pc_cluster_lookup_fn cb, void *arg)
{
	int rc = ut_lookup_rc();

	CU_ASSERT_PTR_EQUAL(c, FAKE_CLUSTER);
	if (rc != 0) {
		return rc;
	}
	CU_ASSERT_PTR_NULL(g_lk_cb); /* the admin asks for one lookup at a time here */
	CU_ASSERT_FATAL(n >= 1 && n <= PC_ADMIN_KEYS_MAX);
	for (unsigned int i = 0; i < n; i++) {
		CU_ASSERT_FATAL(keys[i].len >= 1 && keys[i].len <= PC_DIR_KEY_MAX);
		memcpy(g_lk_bytes[i], keys[i].bytes, keys[i].len);
		g_lk_len[i] = keys[i].len;
	}
	g_lk_n = n;
	g_lk_timeout = timeout_ns;
	g_lk_cb = cb;
	g_lk_arg = arg;
	return 0;
}

/* The cluster answers the lookup in flight (as its poll would). */
static void
lookup_answer(const struct pc_cluster_lookup_result *res, unsigned int n)
{
	pc_cluster_lookup_fn cb = g_lk_cb;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cb);
	g_lk_cb = NULL;
	cb(g_lk_arg, res, n);
}

static void
member_set(struct pc_disc_member *m, const char *id, uint64_t inc, enum pc_disc_role role,
	   const char *host, uint16_t data_port, uint16_t meta_port, uint64_t cap, uint64_t used)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->node_id, sizeof(m->node_id), "%s", id);
	m->incarnation = inc;
	m->role = role;
	snprintf(m->hostname, sizeof(m->hostname), "%s", host);
	snprintf(m->control.host, sizeof(m->control.host), "%s", host);
	m->control.port = 31999;
	snprintf(m->data.host, sizeof(m->data.host), "%s", host);
	m->data.port = data_port;
	m->meta_port = meta_port;
	m->pool_capacity = cap;
	m->pool_used = used;
}

#define NOW_NS (1000ull * 1000000000ull)

/* Three members: two storage masters (one IPv6), one inference node with a hostile hostname. */
static void
fake_cluster_small(void)
{
	static struct pc_disc_member m[3];

	memset(&g_info, 0, sizeof(g_info));
	snprintf(g_info.node_id, sizeof(g_info.node_id), "storage-01");
	g_info.incarnation = 1700000000000001ull;
	g_info.role = PC_DISC_ROLE_STORAGE;
	snprintf(g_info.host, sizeof(g_info.host), "10.0.0.1");
	g_info.control_port = 31999;
	g_info.meta_port = 31998;
	g_info.is_master = true;
	g_info.set_gen = 7;
	g_info.members = 3;
	g_info.ring_nodes = 2;
	g_info.vnodes = 160;
	g_info.replicas = 2;
	member_set(&m[0], "storage-01", 1700000000000001ull, PC_DISC_ROLE_STORAGE, "10.0.0.1",
		   32000, 31998, 16ull << 30, 1ull << 30);
	member_set(&m[1], "storage-02", 1700000000000002ull, PC_DISC_ROLE_STORAGE, "fd00::2", 32000,
		   31998, 1ull << 30, 512ull << 20);
	m[1].last_seen_ns = NOW_NS - 1500ull * 1000000ull;
	member_set(&m[2], "infer-01", 42, PC_DISC_ROLE_INFERENCE, "h\x07st", 0, 0, 0, 0);
	m[2].last_seen_ns = NOW_NS - 2000ull * 1000000ull;
	g_members = m;
	g_nmembers = 3;
	snprintf(g_masters[0].host, sizeof(g_masters[0].host), "10.0.0.1");
	g_masters[0].port = 31998;
	snprintf(g_masters[1].host, sizeof(g_masters[1].host), "fd00::2");
	g_masters[1].port = 31998;
	g_nmasters = 2;
	MOCK_CLEAR(ut_members_rc);
	MOCK_CLEAR(ut_lookup_rc);
	g_lk_cb = NULL;
}

/* ------------------------------------------------------------------ */
/* A strict JSON reader (RFC 8259), enough to check structure and values */
/* ------------------------------------------------------------------ */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
	enum jtype t;
	bool b;
	char num[32]; /* the number's text, for exact u64 checks */
	char *s;      /* J_STR: decoded bytes (NUL-terminated, may hold NULs) */
	size_t slen;
	struct jv *kids; /* J_ARR, J_OBJ */
	char **keys;     /* J_OBJ */
	size_t n;
	size_t cap;
};

struct jp {
	const char *p;
	const char *end;
	int depth;
};

static bool j_value(struct jp *j, struct jv *v);

static void
j_ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\t' || *j->p == '\r')) {
		j->p++;
	}
}

static bool
j_lit(struct jp *j, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0) {
		return false;
	}
	j->p += n;
	return true;
}

static int
j_hex(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

/* A string; \u00XX becomes the byte XX (what admin.c writes for non-ASCII bytes). */
static bool
j_string(struct jp *j, char **out, size_t *outlen)
{
	const char *q;
	size_t n = 0;
	char *s;

	if (j->p >= j->end || *j->p != '"') {
		return false;
	}
	j->p++;
	/* The decoded string is never longer than its encoding. */
	for (q = j->p; q < j->end && *q != '"'; q++) {
		q += *q == '\\' && q + 1 < j->end;
	}
	s = malloc((size_t)(q - j->p) + 1);
	while (j->p < j->end && *j->p != '"') {
		unsigned char c = (unsigned char)*j->p++;

		if (c < 0x20 || c >= 0x80) {
			free(s); /* raw control bytes are invalid; admin.c writes ASCII only */
			return false;
		}
		if (c != '\\') {
			s[n++] = (char)c;
			continue;
		}
		if (j->p >= j->end) {
			break;
		}
		c = (unsigned char)*j->p++;
		switch (c) {
		case '"':
		case '\\':
		case '/':
			s[n++] = (char)c;
			break;
		case 'b':
			s[n++] = '\b';
			break;
		case 'f':
			s[n++] = '\f';
			break;
		case 'n':
			s[n++] = '\n';
			break;
		case 'r':
			s[n++] = '\r';
			break;
		case 't':
			s[n++] = '\t';
			break;
		case 'u': {
			int v = 0;

			for (int k = 0; k < 4; k++) {
				int h = j->p < j->end ? j_hex(*j->p++) : -1;

				if (h < 0) {
					free(s);
					return false;
				}
				v = v * 16 + h;
			}
			if (v > 0xff) {
				free(s);
				return false;
			}
			s[n++] = (char)v;
			break;
		}
		default:
			free(s);
			return false;
		}
	}
	if (j->p >= j->end) {
		free(s);
		return false;
	}
	j->p++;
	s[n] = '\0';
	*out = s;
	*outlen = n;
	return true;
}

static bool
j_number(struct jp *j, struct jv *v)
{
	const char *start = j->p;

	if (j->p < j->end && *j->p == '-') {
		j->p++;
	}
	if (j->p >= j->end || !(*j->p >= '0' && *j->p <= '9')) {
		return false;
	}
	if (*j->p == '0' && j->p + 1 < j->end && j->p[1] >= '0' && j->p[1] <= '9') {
		return false; /* leading zero */
	}
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
		j->p++;
	}
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (j->p >= j->end || !(*j->p >= '0' && *j->p <= '9')) {
			return false;
		}
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
			j->p++;
		}
	}
	if ((size_t)(j->p - start) >= sizeof(v->num)) {
		return false;
	}
	v->t = J_NUM;
	memcpy(v->num, start, (size_t)(j->p - start));
	v->num[j->p - start] = '\0';
	return true;
}

static bool
j_push(struct jv *v, struct jv *kid, char *key)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? 2 * v->cap : 8;
		v->kids = realloc(v->kids, v->cap * sizeof(*v->kids));
		v->keys = realloc(v->keys, v->cap * sizeof(*v->keys));
	}
	v->kids[v->n] = *kid;
	v->keys[v->n] = key;
	v->n++;
	return true;
}

static bool
j_container(struct jp *j, struct jv *v, char close)
{
	bool obj = close == '}';

	v->t = obj ? J_OBJ : J_ARR;
	j->p++;
	j_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		return true;
	}
	for (;;) {
		struct jv kid = {0};
		char *key = NULL;
		size_t klen;

		j_ws(j);
		if (obj) {
			if (!j_string(j, &key, &klen)) {
				return false;
			}
			j_ws(j);
			if (j->p >= j->end || *j->p != ':') {
				free(key);
				return false;
			}
			j->p++;
		}
		if (!j_value(j, &kid)) {
			free(key);
			return false;
		}
		j_push(v, &kid, key);
		j_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == close) {
			j->p++;
			return true;
		}
		return false;
	}
}

static bool
j_value(struct jp *j, struct jv *v)
{
	bool ok;

	j_ws(j);
	if (j->p >= j->end || ++j->depth > 32) {
		return false;
	}
	switch (*j->p) {
	case '{':
		ok = j_container(j, v, '}');
		break;
	case '[':
		ok = j_container(j, v, ']');
		break;
	case '"':
		v->t = J_STR;
		ok = j_string(j, &v->s, &v->slen);
		break;
	case 't':
		v->t = J_BOOL;
		v->b = true;
		ok = j_lit(j, "true");
		break;
	case 'f':
		v->t = J_BOOL;
		ok = j_lit(j, "false");
		break;
	case 'n':
		v->t = J_NULL;
		ok = j_lit(j, "null");
		break;
	default:
		ok = j_number(j, v);
		break;
	}
	j->depth--;
	return ok;
}

static void
j_free(struct jv *v)
{
	for (size_t i = 0; i < v->n; i++) {
		j_free(&v->kids[i]);
		if (v->keys != NULL) {
			free(v->keys[i]);
		}
	}
	free(v->kids);
	free(v->keys);
	free(v->s);
	memset(v, 0, sizeof(*v));
}

/* Parse one whole document (only whitespace after it). */
static bool
j_parse(const char *text, size_t len, struct jv *out)
{
	struct jp j = {.p = text, .end = text + len};

	memset(out, 0, sizeof(*out));
	if (!j_value(&j, out)) {
		j_free(out);
		return false;
	}
	j_ws(&j);
	if (j.p != j.end) {
		j_free(out);
		return false;
	}
	return true;
}

/* "a.b.3.c": object keys and array indices. NULL when absent. */
static const struct jv *
jget(const struct jv *v, const char *path)
{
	char buf[128];
	char *save = NULL;
	char *tok;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok != NULL && v != NULL;
	     tok = strtok_r(NULL, ".", &save)) {
		const struct jv *next = NULL;

		if (v->t == J_ARR) {
			char *end;
			unsigned long i = strtoul(tok, &end, 10);

			next = *end == '\0' && i < v->n ? &v->kids[i] : NULL;
		} else if (v->t == J_OBJ) {
			for (size_t i = 0; i < v->n; i++) {
				if (strcmp(v->keys[i], tok) == 0) {
					next = &v->kids[i];
				}
			}
		}
		v = next;
	}
	return v;
}

static bool
jstr_is(const struct jv *root, const char *path, const char *want)
{
	const struct jv *v = jget(root, path);

	return v != NULL && v->t == J_STR && v->slen == strlen(want) && strcmp(v->s, want) == 0;
}

static bool
jnum_is(const struct jv *root, const char *path, const char *want)
{
	const struct jv *v = jget(root, path);

	return v != NULL && v->t == J_NUM && strcmp(v->num, want) == 0;
}

static bool
jbool_is(const struct jv *root, const char *path, bool want)
{
	const struct jv *v = jget(root, path);

	return v != NULL && v->t == J_BOOL && v->b == want;
}

static bool
jnull_at(const struct jv *root, const char *path)
{
	const struct jv *v = jget(root, path);

	return v != NULL && v->t == J_NULL;
}

static size_t
jlen(const struct jv *root, const char *path)
{
	const struct jv *v = jget(root, path);

	return v != NULL && (v->t == J_ARR || v->t == J_OBJ) ? v->n : SIZE_MAX;
}

static void
test_json_reader_refuses(void)
{
	static const char *const bad[] = {
		"",       "{",     "{\"a\":1,}",  "[1 2]",       "{\"a\" 1}", "01",
		"\"\n\"", "[1] x", "{\"a\":tru}", "\"\\u00zz\"", "[-]",       "1.",
	};
	static const char good[] = "{\"a\": [1, {\"b\": \"x\\u0007\"}], \"c\": null}";
	struct jv v;

	for (size_t i = 0; i < PC_ARRAY_SIZE(bad); i++) {
		CU_ASSERT_FALSE(j_parse(bad[i], strlen(bad[i]), &v));
	}
	CU_ASSERT_TRUE_FATAL(j_parse(good, strlen(good), &v));
	CU_ASSERT_TRUE(jnum_is(&v, "a.0", "1"));
	CU_ASSERT_TRUE(jstr_is(&v, "a.1.b", "x\x07"));
	CU_ASSERT_TRUE(jnull_at(&v, "c"));
	CU_ASSERT_PTR_NULL(jget(&v, "a.2"));
	j_free(&v);
}

/* ------------------------------------------------------------------ */
/* render                                                              */
/* ------------------------------------------------------------------ */

static struct pc_admin *
admin_new(struct pc_cluster *cluster, struct pc_store *store, struct pc_sessions *ss)
{
	struct pc_admin_deps d = {
		.cfg = &g_cfg, .rt = g_rt, .sessions = ss, .store = store, .cluster = cluster};
	struct pc_admin *a = pc_admin_create(&d);

	CU_ASSERT_PTR_NOT_NULL(a);
	return a;
}

static void
test_members_text(void)
{
	struct pc_admin *a = admin_new(FAKE_CLUSTER, NULL, NULL);
	struct sbuf sb = {0};
	char want[2048];
	int n;

	fake_cluster_small();
	CU_ASSERT_EQUAL_FATAL(render_members(a, &sb, false, NOW_NS), 0);
	n = snprintf(
		want, sizeof(want),
		"node storage-01 incarnation 1700000000000001, role storage, control "
		"10.0.0.1:31999, meta port 31998, master\n"
		"member set generation 7, 3 members; masters: 10.0.0.1:31998, [fd00::2]:31998\n"
		"\n"
		"%-10s  %-16s  %-9s  %-8s  %-15s  %-15s  %-5s  %-6s  %-8s  %-9s  %s\n"
		"%-10s  %-16s  %-9s  %-8s  %-15s  %-15s  %-5s  %-6s  %-8s  %-9s  %s\n"
		"%-10s  %-16s  %-9s  %-8s  %-15s  %-15s  %-5s  %-6s  %-8s  %-9s  %s\n"
		"%-10s  %-16s  %-9s  %-8s  %-15s  %-15s  %-5s  %-6s  %-8s  %-9s  %s\n",
		"NODE", "INCARNATION", "ROLE", "HOST", "CONTROL", "DATA", "META", "MASTER", "POOL",
		"USED", "LISTED", "storage-01", "1700000000000001", "storage", "10.0.0.1",
		"10.0.0.1:31999", "10.0.0.1:32000", "31998", "yes", "16.0 GiB", "1.0 GiB", "self",
		"storage-02", "1700000000000002", "storage", "fd00::2", "[fd00::2]:31999",
		"[fd00::2]:32000", "31998", "yes", "1.0 GiB", "512.0 MiB", "1.5s ago", "infer-01",
		"42", "inference", "h\\x07st", "h\\x07st:31999", "-", "-", "no", "-", "-",
		"2.0s ago");
	CU_ASSERT_FATAL(n > 0 && (size_t)n < sizeof(want));
	CU_ASSERT_EQUAL(sb.err, 0);
	CU_ASSERT_STRING_EQUAL(sb.p, want);
	if (strcmp(sb.p, want) != 0) {
		printf("\n--- got\n%s--- want\n%s", sb.p, want);
	}
	sb_free(&sb);

	/* Not a master, no meta port, no masters known. */
	g_info.meta_port = 0;
	g_info.is_master = false;
	g_nmasters = 0;
	CU_ASSERT_EQUAL_FATAL(render_members(a, &sb, false, NOW_NS), 0);
	snprintf(want, sizeof(want), "%s",
		 "node storage-01 incarnation 1700000000000001, role storage, control "
		 "10.0.0.1:31999, no meta port, not a master\n"
		 "member set generation 7, 3 members; masters: none\n\n");
	CU_ASSERT_EQUAL(strncmp(sb.p, want, strlen(want)), 0);
	CU_ASSERT_PTR_NULL(strstr(sb.p, " yes "));
	sb_free(&sb);
	pc_admin_destroy(a);
}

static void
test_members_json(void)
{
	struct pc_admin *a = admin_new(FAKE_CLUSTER, NULL, NULL);
	struct sbuf sb = {0};
	struct jv v;

	fake_cluster_small();
	CU_ASSERT_EQUAL_FATAL(render_members(a, &sb, true, NOW_NS), 0);
	CU_ASSERT_TRUE_FATAL(j_parse(sb.p, sb.len, &v));
	CU_ASSERT_EQUAL(v.t, J_OBJ);
	CU_ASSERT_TRUE(jstr_is(&v, "self.node_id", "storage-01"));
	CU_ASSERT_TRUE(jnum_is(&v, "self.incarnation", "1700000000000001"));
	CU_ASSERT_TRUE(jstr_is(&v, "self.role", "storage"));
	CU_ASSERT_TRUE(jnum_is(&v, "self.meta_port", "31998"));
	CU_ASSERT_TRUE(jbool_is(&v, "self.is_master", true));
	CU_ASSERT_TRUE(jnum_is(&v, "set_gen", "7"));
	CU_ASSERT_EQUAL(jlen(&v, "masters"), 2);
	CU_ASSERT_TRUE(jstr_is(&v, "masters.0", "10.0.0.1:31998"));
	CU_ASSERT_TRUE(jstr_is(&v, "masters.1", "[fd00::2]:31998"));
	CU_ASSERT_EQUAL(jlen(&v, "members"), 3);
	CU_ASSERT_TRUE(jstr_is(&v, "members.0.node_id", "storage-01"));
	CU_ASSERT_TRUE(jnum_is(&v, "members.0.pool_capacity", "17179869184"));
	CU_ASSERT_TRUE(jnum_is(&v, "members.0.pool_used", "1073741824"));
	CU_ASSERT_TRUE(jbool_is(&v, "members.0.master", true));
	CU_ASSERT_TRUE(jbool_is(&v, "members.0.self", true));
	CU_ASSERT_TRUE(jnull_at(&v, "members.0.listed_ms_ago"));
	CU_ASSERT_TRUE(jbool_is(&v, "members.1.self", false));
	CU_ASSERT_TRUE(jstr_is(&v, "members.1.control", "[fd00::2]:31999"));
	CU_ASSERT_TRUE(jstr_is(&v, "members.1.data", "[fd00::2]:32000"));
	CU_ASSERT_TRUE(jnum_is(&v, "members.1.listed_ms_ago", "1500"));
	CU_ASSERT_TRUE(jstr_is(&v, "members.2.role", "inference"));
	CU_ASSERT_TRUE(jstr_is(&v, "members.2.host", "h\x07st"));
	CU_ASSERT_TRUE(jnull_at(&v, "members.2.data"));
	CU_ASSERT_TRUE(jnull_at(&v, "members.2.meta_port"));
	CU_ASSERT_TRUE(jbool_is(&v, "members.2.master", false));
	CU_ASSERT_TRUE(jnum_is(&v, "members.2.incarnation", "42"));
	CU_ASSERT_TRUE(jnum_is(&v, "members.2.listed_ms_ago", "2000"));
	j_free(&v);
	sb_free(&sb);

	/* No members at all: still one valid document. */
	g_nmembers = 0;
	CU_ASSERT_EQUAL_FATAL(render_members(a, &sb, true, NOW_NS), 0);
	CU_ASSERT_TRUE_FATAL(j_parse(sb.p, sb.len, &v));
	CU_ASSERT_EQUAL(jlen(&v, "members"), 0);
	j_free(&v);
	sb_free(&sb);

	/* The cluster failing to list its members is an error with a reason. */
	MOCK_PUSH(ut_members_rc, -EIO);
	CU_ASSERT_EQUAL(render_members(a, &sb, true, NOW_NS), -EIO);
	CU_ASSERT_STRING_EQUAL(a->err, "cannot list the members: Input/output error");
	sb_free(&sb);
	pc_admin_destroy(a);
}

static void
test_ring(void)
{
	static const char *const ids[] = {"node-a", "node-b", "node-c"};
	struct pc_admin *a = admin_new(FAKE_CLUSTER, NULL, NULL);
	struct sbuf sb = {0};
	char want[1024];
	char pct[3][16];
	double share[3];
	double sum = 0;
	struct jv v;

	fake_cluster_small();
	g_ring = pc_ring_build(ids, 3, 160);
	CU_ASSERT_PTR_NOT_NULL_FATAL(g_ring);
	CU_ASSERT_EQUAL_FATAL(pc_ring_shares(g_ring, share, 3), 3);
	for (unsigned int i = 0; i < 3; i++) {
		snprintf(pct[i], sizeof(pct[i]), "%.2f%%", 100.0 * share[i]);
		sum += share[i];
		CU_ASSERT(share[i] > 0.1); /* three nodes: none near empty */
	}
	CU_ASSERT(fabs(sum - 1.0) < 1e-9);
	CU_ASSERT_EQUAL_FATAL(render_ring(a, &sb, false), 0);
	snprintf(want, sizeof(want),
		 "ring: 3 nodes, 160 vnodes per node, 2 replicas, member set generation 7\n\n"
		 "NODE    SHARE\nnode-a  %s\nnode-b  %s\nnode-c  %s\n",
		 pct[0], pct[1], pct[2]);
	CU_ASSERT_STRING_EQUAL(sb.p, want);
	sb_free(&sb);

	CU_ASSERT_EQUAL_FATAL(render_ring(a, &sb, true), 0);
	CU_ASSERT_TRUE_FATAL(j_parse(sb.p, sb.len, &v));
	CU_ASSERT_TRUE(jbool_is(&v, "built", true));
	CU_ASSERT_TRUE(jnum_is(&v, "vnodes", "160"));
	CU_ASSERT_TRUE(jnum_is(&v, "replicas", "2"));
	CU_ASSERT_TRUE(jnum_is(&v, "set_gen", "7"));
	CU_ASSERT_EQUAL(jlen(&v, "ring"), 3);
	for (unsigned int i = 0; i < 3; i++) {
		char path[64];
		char num[16];

		snprintf(path, sizeof(path), "ring.%u.node_id", i);
		CU_ASSERT_TRUE(jstr_is(&v, path, ids[i]));
		snprintf(path, sizeof(path), "ring.%u.share_pct", i);
		snprintf(num, sizeof(num), "%.2f", 100.0 * share[i]);
		CU_ASSERT_TRUE(jnum_is(&v, path, num));
	}
	j_free(&v);
	sb_free(&sb);

	/* Before the first ring. */
	pc_ring_free(g_ring);
	g_ring = NULL;
	g_info.vnodes = 160;
	CU_ASSERT_EQUAL_FATAL(render_ring(a, &sb, false), 0);
	CU_ASSERT_STRING_EQUAL(sb.p, "ring: 0 nodes, 160 vnodes per node, 2 replicas, member set "
				     "generation 7\nno ring built yet\n");
	sb_free(&sb);
	CU_ASSERT_EQUAL_FATAL(render_ring(a, &sb, true), 0);
	CU_ASSERT_TRUE_FATAL(j_parse(sb.p, sb.len, &v));
	CU_ASSERT_TRUE(jbool_is(&v, "built", false));
	CU_ASSERT_EQUAL(jlen(&v, "ring"), 0);
	j_free(&v);
	sb_free(&sb);
	pc_admin_destroy(a);
}

/* The line of a text section whose field is `name`, e.g. "  lookups   77". */
static bool
has_field_line(const char *text, const char *name, const char *value)
{
	char head[64];
	const char *p = text;

	snprintf(head, sizeof(head), "\n  %s ", name);
	while ((p = strstr(p, head)) != NULL) {
		const char *eol = strchr(p + 1, '\n');
		const char *q = p + strlen(head);

		while (*q == ' ') {
			q++;
		}
		if (eol != NULL && (size_t)(eol - q) == strlen(value) &&
		    strncmp(q, value, strlen(value)) == 0) {
			return true;
		}
		p++;
	}
	return false;
}

static void
test_stats(void)
{
	struct pc_admin *a = admin_new(FAKE_CLUSTER, NULL, NULL);
	struct sbuf sb = {0};
	struct jv v;
	char path[64];

	fake_cluster_small();
	memset(&g_cstats, 0, sizeof(g_cstats));
	g_cstats.rpc.bytes_in = 3ull << 20;
	g_cstats.rpc.calls = 11;
	g_cstats.node.heartbeats_sent = 12;
	g_cstats.master.joins = 13;
	g_cstats.shard.entries = 14;
	g_cstats.cache.hits = 15;
	g_cstats.lookups = 77;
	g_cstats.lookup_hits = 5;
	g_cstats.publish_dropped = 9;
	CU_ASSERT_EQUAL_FATAL(render_stats(a, &sb, false, mono_ns()), 0);
	CU_ASSERT_EQUAL(strncmp(sb.p, "engine\n  version  ", 18), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(sb.p, "\n  pool     no (discovery-only)\n"));
	CU_ASSERT_PTR_NULL(strstr(sb.p, "\nstore\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(sb.p, "\ncluster (node storage-01, role storage)\n"));
	CU_ASSERT_TRUE(has_field_line(sb.p, "lookups", "77"));
	CU_ASSERT_TRUE(has_field_line(sb.p, "lookup_hits", "5"));
	CU_ASSERT_TRUE(has_field_line(sb.p, "publish_dropped", "9"));
	CU_ASSERT_TRUE(has_field_line(sb.p, "bytes_in", "3145728 (3.0 MiB)"));
	CU_ASSERT_TRUE(has_field_line(sb.p, "is_master", "yes"));
	CU_ASSERT_PTR_NOT_NULL(strstr(sb.p, "\ncluster.rpc\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(sb.p, "\ncluster.directory_cache\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(sb.p, "\nlcores\nLCORE  ROLE     PASSES"));
	sb_free(&sb);

	CU_ASSERT_EQUAL_FATAL(render_stats(a, &sb, true, mono_ns()), 0);
	CU_ASSERT_TRUE_FATAL(j_parse(sb.p, sb.len, &v));
	CU_ASSERT_TRUE(jstr_is(&v, "engine.version", PC_VERSION));
	snprintf(path, sizeof(path), "%d", (int)getpid());
	CU_ASSERT_TRUE(jnum_is(&v, "engine.pid", path));
	CU_ASSERT_TRUE(jbool_is(&v, "engine.page_pool", false));
	CU_ASSERT_TRUE(jnull_at(&v, "store"));
	CU_ASSERT_TRUE(jnull_at(&v, "sessions"));
	CU_ASSERT_TRUE(jnum_is(&v, "admin.open", "0"));
	CU_ASSERT_TRUE(jstr_is(&v, "cluster.node_id", "storage-01"));
	CU_ASSERT_TRUE(jnum_is(&v, "cluster.lookups", "77"));
	CU_ASSERT_TRUE(jnum_is(&v, "cluster.set_gen", "7"));
	CU_ASSERT_TRUE(jbool_is(&v, "cluster.resharding", false));
	CU_ASSERT_TRUE(jnum_is(&v, "cluster.rpc.bytes_in", "3145728"));
	CU_ASSERT_TRUE(jnum_is(&v, "cluster.rpc.calls", "11"));
	CU_ASSERT_TRUE(jnum_is(&v, "cluster.discovery_node.heartbeats_sent", "12"));
	CU_ASSERT_TRUE(jnum_is(&v, "cluster.discovery_master.joins", "13"));
	CU_ASSERT_TRUE(jnum_is(&v, "cluster.directory_shard.entries", "14"));
	CU_ASSERT_TRUE(jnum_is(&v, "cluster.directory_cache.hits", "15"));
	CU_ASSERT_EQUAL(jlen(&v, "lcores"), rte_lcore_count());
	CU_ASSERT_TRUE(jstr_is(&v, "lcores.0.role", "control"));
	CU_ASSERT_TRUE(jnum_is(&v, "lcores.0.lcore", "0"));
	j_free(&v);
	sb_free(&sb);
	pc_admin_destroy(a);

	/* Without a cluster, stats still answer. */
	a = admin_new(NULL, NULL, NULL);
	CU_ASSERT_EQUAL_FATAL(render_stats(a, &sb, false, mono_ns()), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(sb.p, "\ncluster\n  none (no control plane)\n"));
	sb_free(&sb);
	CU_ASSERT_EQUAL_FATAL(render_stats(a, &sb, true, mono_ns()), 0);
	CU_ASSERT_TRUE_FATAL(j_parse(sb.p, sb.len, &v));
	CU_ASSERT_TRUE(jnull_at(&v, "cluster"));
	j_free(&v);
	sb_free(&sb);
	pc_admin_destroy(a);
}

static void
test_helpers(void)
{
	char buf[64];
	struct sbuf sb = {0};

	fmt_size(buf, sizeof(buf), 0);
	CU_ASSERT_STRING_EQUAL(buf, "0 B");
	fmt_size(buf, sizeof(buf), 1023);
	CU_ASSERT_STRING_EQUAL(buf, "1023 B");
	fmt_size(buf, sizeof(buf), 1536);
	CU_ASSERT_STRING_EQUAL(buf, "1.5 KiB");
	fmt_size(buf, sizeof(buf), 3ull << 40);
	CU_ASSERT_STRING_EQUAL(buf, "3.0 TiB");
	fmt_endpoint(buf, sizeof(buf), "::1", 80);
	CU_ASSERT_STRING_EQUAL(buf, "[::1]:80");
	safe_cpy(buf, sizeof(buf), "a\x1b[31mb\xff");
	CU_ASSERT_STRING_EQUAL(buf, "a\\x1b[31mb\\xff");
	/* A long hostile string is cut, never overflowed. */
	safe_cpy(buf, 8, "\x01\x02\x03\x04");
	CU_ASSERT_STRING_EQUAL(buf, "\\x01");
	sb_text_bytes(&sb, "q\"\\\n\0z", 6);
	CU_ASSERT_STRING_EQUAL(sb.p, "q\\\"\\\\\\x0a\\x00z");
	sb_free(&sb);
	sb_json_bytes(&sb, "q\"\\\n\0\x80", 6);
	CU_ASSERT_STRING_EQUAL(sb.p, "\"q\\\"\\\\\\u000a\\u0000\\u0080\"");
	sb_free(&sb);
	/* The reply cap: past it the buffer reports -EMSGSIZE and stays as it was. */
	sb_printf(&sb, "%s", "x");
	sb_put(&sb, "y", PC_ADMIN_REPLY_MAX);
	CU_ASSERT_EQUAL(sb.err, -EMSGSIZE);
	CU_ASSERT_EQUAL(sb.len, 1);
	sb_free(&sb);
}

/* ------------------------------------------------------------------ */
/* connections                                                         */
/* ------------------------------------------------------------------ */

struct reply {
	int32_t status;
	char *text;
	size_t len;
	unsigned int parts;
	bool bad; /* a part broke the protocol */
};

static void
reply_free(struct reply *r)
{
	free(r->text);
	memset(r, 0, sizeof(*r));
}

static void
pump(struct pc_admin *a, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		g_now += a->poll_tsc;
		admin_poll(a, g_now);
	}
}

/*
 * Take the reply parts queued on fd. Returns 1 when the reply is complete,
 * 0 when more is to come, -1 when the engine closed the connection.
 */
static int
take_parts(int fd, struct reply *r)
{
	static uint8_t buf[sizeof(struct pc_admin_reply_hdr) + PC_ADMIN_CHUNK_MAX + 1];

	for (;;) {
		struct pc_admin_reply_hdr h;
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0 && errno == EAGAIN) {
			return 0;
		}
		if (n <= 0) {
			return -1;
		}
		memcpy(&h, buf, sizeof(h));
		if ((size_t)n < sizeof(h) || h.magic != PC_ADMIN_REPLY_MAGIC ||
		    h.len != (size_t)n - sizeof(h) || h.len > PC_ADMIN_CHUNK_MAX ||
		    (r->parts > 0 && h.status != r->status)) {
			r->bad = true;
		}
		r->text = realloc(r->text, r->len + h.len + 1);
		memcpy(r->text + r->len, buf + sizeof(h), h.len);
		r->len += h.len;
		r->text[r->len] = '\0';
		r->status = h.status;
		r->parts++;
		if (!(h.flags & PC_ADMIN_RF_MORE)) {
			return 1;
		}
	}
}

/* Poll the admin until the reply on fd is complete (0) or the connection closed (-1). */
static int
await_reply(struct pc_admin *a, int fd, struct reply *r)
{
	memset(r, 0, sizeof(*r));
	for (int i = 0; i < 10000; i++) {
		int rc;

		pump(a, 1);
		rc = take_parts(fd, r);
		if (rc != 0) {
			return rc > 0 ? 0 : -1;
		}
	}
	return -1;
}

static int
exchange(struct pc_admin *a, int fd, const void *req, size_t len, struct reply *r)
{
	CU_ASSERT_EQUAL(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
	return await_reply(a, fd, r);
}

static size_t
req_simple(uint8_t *buf, uint16_t op, uint32_t flags)
{
	struct pc_admin_req_hdr h = {
		.magic = PC_ADMIN_MAGIC, .version = PC_ADMIN_VERSION, .op = op, .flags = flags};

	memcpy(buf, &h, sizeof(h));
	return sizeof(h);
}

/* A lookup request for the keys (NUL-terminated strings) in namespace ns. */
static size_t
req_lookup(uint8_t *buf, uint32_t flags, const char *ns, const char *const *keys, unsigned int n)
{
	size_t len = req_simple(buf, PC_ADMIN_OP_LOOKUP, flags);
	uint16_t v = (uint16_t)strlen(ns);

	memcpy(buf + len, &v, 2);
	memcpy(buf + len + 2, ns, v);
	len += 2 + v;
	v = (uint16_t)n;
	memcpy(buf + len, &v, 2);
	len += 2;
	for (unsigned int i = 0; i < n; i++) {
		v = (uint16_t)strlen(keys[i]);
		memcpy(buf + len, &v, 2);
		memcpy(buf + len + 2, keys[i], v);
		len += 2 + v;
	}
	return len;
}

/* A socket pair whose engine end the admin adopts; returns the tool's end. */
static int
connect_pair(struct pc_admin *a)
{
	int sv[2];

	CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	CU_ASSERT_EQUAL(pc_admin_adopt(a, sv[0]), 0);
	return sv[1];
}

static bool
peer_closed(int fd)
{
	char b[64];

	while (recv(fd, b, sizeof(b), MSG_DONTWAIT) > 0) {
	}
	return recv(fd, b, sizeof(b), MSG_DONTWAIT) == 0;
}

static void
test_several_requests(void)
{
	struct pc_admin *a = admin_new(FAKE_CLUSTER, NULL, NULL);
	int fd = connect_pair(a);
	uint8_t req[64];
	struct reply r;
	struct jv v;

	fake_cluster_small();
	CU_ASSERT_EQUAL_FATAL(exchange(a, fd, req, req_simple(req, PC_ADMIN_OP_STATS, 0), &r), 0);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_FALSE(r.bad);
	CU_ASSERT_EQUAL(r.parts, 1);
	CU_ASSERT_EQUAL(strncmp(r.text, "engine\n", 7), 0);
	reply_free(&r);
	CU_ASSERT_EQUAL_FATAL(
		exchange(a, fd, req, req_simple(req, PC_ADMIN_OP_MEMBERS, PC_ADMIN_F_JSON), &r), 0);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_TRUE_FATAL(j_parse(r.text, r.len, &v));
	CU_ASSERT_EQUAL(jlen(&v, "members"), 3);
	j_free(&v);
	reply_free(&r);
	CU_ASSERT_EQUAL_FATAL(exchange(a, fd, req, req_simple(req, PC_ADMIN_OP_RING, 0), &r), 0);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.text, "no ring built yet"));
	reply_free(&r);
	/* The admin counted all three and keeps the connection. */
	CU_ASSERT_EQUAL(a->stats.requests, 3);
	CU_ASSERT_EQUAL(a->nconns, 1);
	/* The tool hangs up: the admin notices at its next poll. */
	close(fd);
	pump(a, 2);
	CU_ASSERT_EQUAL(a->nconns, 0);
	pc_admin_destroy(a);
}

/* 4096 members with long host names: a reply of many parts, reassembled byte for byte. */
static void
test_long_reply_chunked(void)
{
	struct pc_admin *a = admin_new(FAKE_CLUSTER, NULL, NULL);
	struct pc_disc_member *m = calloc(PC_DISC_MEMBERS_MAX, sizeof(*m));
	int fd = connect_pair(a);
	uint8_t req[64];
	struct sbuf direct = {0};
	struct reply r;
	struct jv v;

	fake_cluster_small();
	for (unsigned int i = 0; i < PC_DISC_MEMBERS_MAX; i++) {
		char id[32];
		char host[PC_DISC_HOST_MAX];

		snprintf(id, sizeof(id), "storage-%04u", i);
		snprintf(host, sizeof(host), "host-%04u.rack-%02u.a-rather-long-domain.example.com",
			 i, i % 32);
		member_set(&m[i], id, 1000 + i, PC_DISC_ROLE_STORAGE, host, 32000, 31998,
			   (uint64_t)(i + 1) << 30, (uint64_t)i << 20);
	}
	g_members = m;
	g_nmembers = PC_DISC_MEMBERS_MAX;
	g_info.members = 1; /* stale: the admin must retry with room for everyone */
	for (int json = 0; json <= 1; json++) {
		CU_ASSERT_EQUAL_FATAL(render_members(a, &direct, json, NOW_NS), 0);
		CU_ASSERT(direct.len > 8 * PC_ADMIN_CHUNK_MAX);
		CU_ASSERT_EQUAL_FATAL(
			exchange(a, fd, req,
				 req_simple(req, PC_ADMIN_OP_MEMBERS, json ? PC_ADMIN_F_JSON : 0),
				 &r),
			0);
		CU_ASSERT_EQUAL(r.status, 0);
		CU_ASSERT_FALSE(r.bad);
		CU_ASSERT_EQUAL(r.parts,
				(direct.len + PC_ADMIN_CHUNK_MAX - 1) / PC_ADMIN_CHUNK_MAX);
		CU_ASSERT_EQUAL_FATAL(r.len, direct.len);
		CU_ASSERT_EQUAL(memcmp(r.text, direct.p, r.len), 0);
		if (json) {
			CU_ASSERT_TRUE_FATAL(j_parse(r.text, r.len, &v));
			CU_ASSERT_EQUAL(jlen(&v, "members"), PC_DISC_MEMBERS_MAX);
			CU_ASSERT_TRUE(jstr_is(&v, "members.4095.node_id", "storage-4095"));
			j_free(&v);
		}
		reply_free(&r);
		sb_free(&direct);
	}
	close(fd);
	pc_admin_destroy(a);
	free(m);
}

static void
test_bad_requests_closed(void)
{
	struct pc_admin *a = admin_new(FAKE_CLUSTER, NULL, NULL);
	static const char *const keys[] = {"k1", "k2"};
	uint8_t req[256];
	uint8_t *big;
	struct reply r;
	size_t len;
	int sndbuf = 1 << 20;
	int fd;

	fake_cluster_small();
	/* Not the protocol at all. */
	fd = connect_pair(a);
	CU_ASSERT_EQUAL_FATAL(exchange(a, fd, "GET / HTTP/1.1\r\n\r\n", 18, &r), 0);
	CU_ASSERT_EQUAL(r.status, -EPROTO);
	CU_ASSERT_STRING_EQUAL(r.text, "bad request: not a PeerCache admin request\n");
	reply_free(&r);
	pump(a, 2);
	CU_ASSERT_TRUE(peer_closed(fd));
	CU_ASSERT_EQUAL(a->nconns, 0);
	close(fd);

	/* A truncated lookup. */
	fd = connect_pair(a);
	len = req_lookup(req, 0, "ns", keys, 2);
	CU_ASSERT_EQUAL_FATAL(exchange(a, fd, req, len - 1, &r), 0);
	CU_ASSERT_EQUAL(r.status, -EINVAL);
	CU_ASSERT_STRING_EQUAL(r.text, "bad request: lookup request truncated inside key 2 of 2\n");
	reply_free(&r);
	pump(a, 2);
	CU_ASSERT_TRUE(peer_closed(fd));
	close(fd);

	/* Oversized: one byte over the cap. */
	fd = connect_pair(a);
	CU_ASSERT_EQUAL(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
	big = calloc(1, PC_ADMIN_REQ_MAX + 1);
	req_simple(big, PC_ADMIN_OP_STATS, 0);
	CU_ASSERT_EQUAL_FATAL(exchange(a, fd, big, PC_ADMIN_REQ_MAX + 1, &r), 0);
	CU_ASSERT_EQUAL(r.status, -EMSGSIZE);
	CU_ASSERT_STRING_EQUAL(r.text, "bad request: request of 139265 bytes, at most 139264\n");
	reply_free(&r);
	free(big);
	pump(a, 2);
	CU_ASSERT_TRUE(peer_closed(fd));
	close(fd);

	/* Three bytes: shorter than a header. */
	fd = connect_pair(a);
	CU_ASSERT_EQUAL_FATAL(exchange(a, fd, "PCA", 3, &r), 0);
	CU_ASSERT_EQUAL(r.status, -EPROTO);
	reply_free(&r);
	close(fd);
	pump(a, 2);
	CU_ASSERT_EQUAL(a->stats.bad_requests, 4);
	CU_ASSERT_EQUAL(a->stats.requests, 0);
	CU_ASSERT_EQUAL(a->nconns, 0);
	pc_admin_destroy(a);
}

static void
test_silent_closed(void)
{
	struct pc_admin *a = admin_new(FAKE_CLUSTER, NULL, NULL);
	int fd = connect_pair(a);
	uint8_t req[64];
	struct reply r;

	pump(a, 1); /* arms the deadline */
	g_now += a->idle_tsc - 2 * a->poll_tsc;
	pump(a, 1);
	CU_ASSERT_EQUAL(a->nconns, 1);
	pump(a, 2);
	CU_ASSERT_EQUAL(a->nconns, 0);
	CU_ASSERT_EQUAL(a->stats.timeouts, 1);
	CU_ASSERT_TRUE(peer_closed(fd));
	close(fd);

	/* Silence after a reply counts from the reply. */
	fake_cluster_small();
	fd = connect_pair(a);
	CU_ASSERT_EQUAL_FATAL(exchange(a, fd, req, req_simple(req, PC_ADMIN_OP_STATS, 0), &r), 0);
	reply_free(&r);
	g_now += a->idle_tsc - 2 * a->poll_tsc;
	pump(a, 1);
	CU_ASSERT_EQUAL(a->nconns, 1);
	g_now += 2 * a->poll_tsc;
	pump(a, 1);
	CU_ASSERT_EQUAL(a->nconns, 0);
	CU_ASSERT_EQUAL(a->stats.timeouts, 2);
	close(fd);
	pc_admin_destroy(a);
}

static void
test_connection_cap(void)
{
	struct pc_admin *a = admin_new(FAKE_CLUSTER, NULL, NULL);
	int fds[PC_ADMIN_CONNS_MAX];
	int sv[2];
	uint8_t req[64];
	struct reply r = {0};

	fake_cluster_small();
	for (int i = 0; i < PC_ADMIN_CONNS_MAX; i++) {
		fds[i] = connect_pair(a);
	}
	CU_ASSERT_EQUAL(a->nconns, PC_ADMIN_CONNS_MAX);
	CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	CU_ASSERT_EQUAL(send(sv[1], req, req_simple(req, PC_ADMIN_OP_STATS, 0), 0), 12);
	CU_ASSERT_EQUAL(pc_admin_adopt(a, sv[0]), -EUSERS);
	/* Its request was drained, so the refusal is read, not lost to a reset. */
	CU_ASSERT_EQUAL_FATAL(take_parts(sv[1], &r), 1);
	CU_ASSERT_EQUAL(r.status, -EUSERS);
	CU_ASSERT_STRING_EQUAL(r.text, "too many admin connections (16); try again\n");
	reply_free(&r);
	CU_ASSERT_TRUE(peer_closed(sv[1]));
	close(sv[1]);
	CU_ASSERT_EQUAL(a->stats.refused, 1);
	CU_ASSERT_EQUAL(a->nconns, PC_ADMIN_CONNS_MAX);
	/* One leaves, the next is served. */
	close(fds[3]);
	pump(a, 2);
	CU_ASSERT_EQUAL(a->nconns, PC_ADMIN_CONNS_MAX - 1);
	fds[3] = connect_pair(a);
	CU_ASSERT_EQUAL(exchange(a, fds[3], req, req_simple(req, PC_ADMIN_OP_STATS, 0), &r), 0);
	CU_ASSERT_EQUAL(r.status, 0);
	reply_free(&r);
	for (int i = 0; i < PC_ADMIN_CONNS_MAX; i++) {
		close(fds[i]);
	}
	pc_admin_destroy(a);
}

static void
test_slow_reader_dropped(void)
{
	struct pc_admin *a = admin_new(FAKE_CLUSTER, NULL, NULL);
	struct pc_disc_member *m = calloc(PC_DISC_MEMBERS_MAX, sizeof(*m));
	int fd = connect_pair(a);
	uint8_t req[64];
	char b[64];

	fake_cluster_small();
	for (unsigned int i = 0; i < PC_DISC_MEMBERS_MAX; i++) {
		char id[32];

		snprintf(id, sizeof(id), "storage-%04u", i);
		member_set(&m[i], id, 1000 + i, PC_DISC_ROLE_STORAGE, "10.1.2.3", 32000, 31998,
			   1ull << 30, 0);
	}
	g_members = m;
	g_nmembers = PC_DISC_MEMBERS_MAX;
	CU_ASSERT_EQUAL(send(fd, req, req_simple(req, PC_ADMIN_OP_MEMBERS, PC_ADMIN_F_JSON), 0),
			12);
	/* The tool never reads: the socket fills, the admin keeps polling without blocking. */
	pump(a, 20);
	CU_ASSERT_EQUAL(a->nconns, 1);
	CU_ASSERT_EQUAL(a->conns[0]->state, CONN_WRITE);
	CU_ASSERT(a->conns[0]->out_off > 0);
	CU_ASSERT(a->conns[0]->out_off < a->conns[0]->out.len);
	g_now += a->write_tsc;
	pump(a, 2);
	CU_ASSERT_EQUAL(a->nconns, 0);
	CU_ASSERT_EQUAL(a->stats.slow_closed, 1);
	/* What was sent can still be read, then the end. */
	CU_ASSERT(recv(fd, b, sizeof(b), MSG_DONTWAIT | MSG_TRUNC) > 0);
	CU_ASSERT_TRUE(peer_closed(fd));
	close(fd);
	pc_admin_destroy(a);
	free(m);
}

static void
test_lookup_async(void)
{
	static const char *const keys[] = {"k1", "k\"2"};
	struct pc_admin *a = admin_new(FAKE_CLUSTER, NULL, NULL);
	int fd = connect_pair(a);
	uint8_t req[256];
	struct pc_cluster_lookup_result res[2];
	struct reply r = {0};
	struct jv v;

	fake_cluster_small();
	CU_ASSERT_EQUAL(send(fd, req, req_lookup(req, PC_ADMIN_F_JSON, "llama", keys, 2), 0),
			(ssize_t)req_lookup(req, PC_ADMIN_F_JSON, "llama", keys, 2));
	pump(a, 3);
	CU_ASSERT_PTR_NOT_NULL_FATAL(g_lk_cb);
	/* The directory keys are ns '\0' key; the deadline is the engine's default. */
	CU_ASSERT_EQUAL(g_lk_n, 2);
	CU_ASSERT_EQUAL(g_lk_len[0], 8);
	CU_ASSERT_EQUAL(memcmp(g_lk_bytes[0], "llama\0k1", 8), 0);
	CU_ASSERT_EQUAL(g_lk_len[1], 9);
	CU_ASSERT_EQUAL(memcmp(g_lk_bytes[1], "llama\0k\"2", 9), 0);
	CU_ASSERT_EQUAL(g_lk_timeout, 0);
	/* Nothing is sent while the cluster works. */
	pump(a, 5);
	CU_ASSERT_EQUAL(take_parts(fd, &r), 0);
	memset(res, 0, sizeof(res));
	res[0].status = 0;
	res[0].n_locs = 1;
	snprintf(res[0].owner, sizeof(res[0].owner), "storage-02");
	snprintf(res[0].locs[0].node_id, sizeof(res[0].locs[0].node_id), "storage-01");
	res[0].locs[0].incarnation = 5;
	res[0].locs[0].offset = 4096;
	res[0].locs[0].length = 1000;
	res[0].locs[0].generation = 9;
	res[0].locs[0].rkey = 0xabc;
	res[1].status = -ENOENT;
	snprintf(res[1].owner, sizeof(res[1].owner), "storage-02");
	lookup_answer(res, 2);
	CU_ASSERT_EQUAL_FATAL(await_reply(a, fd, &r), 0);
	CU_ASSERT_EQUAL(r.status, 0);
	CU_ASSERT_TRUE_FATAL(j_parse(r.text, r.len, &v));
	CU_ASSERT_EQUAL(jlen(&v, ""), 2);
	CU_ASSERT_TRUE(jstr_is(&v, "0.key", "k1"));
	CU_ASSERT_TRUE(jstr_is(&v, "0.namespace", "llama"));
	CU_ASSERT_TRUE(jstr_is(&v, "0.status", "found"));
	CU_ASSERT_TRUE(jnum_is(&v, "0.locations.0.rkey", "2748"));
	CU_ASSERT_TRUE(jstr_is(&v, "1.key", "k\"2"));
	CU_ASSERT_TRUE(jstr_is(&v, "1.status", "miss"));
	CU_ASSERT_EQUAL(jlen(&v, "1.locations"), 0);
	j_free(&v);
	reply_free(&r);

	/* The cluster is busy: an error reply, and the connection goes on. */
	MOCK_PUSH(ut_lookup_rc, -EBUSY);
	CU_ASSERT_EQUAL_FATAL(exchange(a, fd, req, req_lookup(req, 0, "", keys, 1), &r), 0);
	CU_ASSERT_EQUAL(r.status, -EBUSY);
	CU_ASSERT_STRING_EQUAL(r.text, "too many lookups in flight; try again\n");
	reply_free(&r);
	CU_ASSERT_EQUAL(a->nconns, 1);
	CU_ASSERT_EQUAL(a->stats.errors, 1);

	/* The tool hangs up while the cluster works: the late answer goes nowhere. */
	CU_ASSERT_EQUAL(send(fd, req, req_lookup(req, 0, "", keys, 1), 0),
			(ssize_t)req_lookup(req, 0, "", keys, 1));
	pump(a, 3);
	CU_ASSERT_PTR_NOT_NULL_FATAL(g_lk_cb);
	close(fd);
	pump(a, 3);
	res[0].status = -ETIMEDOUT;
	lookup_answer(res, 1);
	pump(a, 3);
	CU_ASSERT_EQUAL(a->nconns, 0);

	/* The admin goes away first: the lookup frees itself at the callback (LSan checks). */
	fd = connect_pair(a);
	CU_ASSERT_EQUAL(send(fd, req, req_lookup(req, 0, "", keys, 2), 0),
			(ssize_t)req_lookup(req, 0, "", keys, 2));
	pump(a, 3);
	CU_ASSERT_PTR_NOT_NULL_FATAL(g_lk_cb);
	pc_admin_destroy(a);
	res[0].status = -ECANCELED;
	res[1].status = -ECANCELED;
	lookup_answer(res, 2);
	CU_ASSERT_TRUE(peer_closed(fd));
	close(fd);
}

static void
test_lookup_text(void)
{
	static const char *const keys[] = {"a", "b\x01", "c", "d"};
	struct pc_admin *a = admin_new(FAKE_CLUSTER, NULL, NULL);
	int fd = connect_pair(a);
	uint8_t req[256];
	struct pc_cluster_lookup_result res[4];
	struct reply r;
	struct jv v;

	fake_cluster_small();
	for (int json = 0; json <= 1; json++) {
		size_t len = req_lookup(req, json ? PC_ADMIN_F_JSON : 0, "n\"s", keys, 4);

		CU_ASSERT_EQUAL(send(fd, req, len, 0), (ssize_t)len);
		pump(a, 3);
		memset(res, 0, sizeof(res));
		res[0].n_locs = 2;
		res[0].cached = true;
		snprintf(res[0].locs[0].node_id, sizeof(res[0].locs[0].node_id), "storage-01");
		res[0].locs[0].incarnation = 5;
		res[0].locs[0].offset = 65536;
		res[0].locs[0].length = 4096;
		res[0].locs[0].generation = 3;
		res[0].locs[0].rkey = 0x1234;
		snprintf(res[0].locs[1].node_id, sizeof(res[0].locs[1].node_id), "storage-02");
		res[0].locs[1].incarnation = 6;
		res[0].locs[1].offset = 0;
		res[0].locs[1].length = 4096;
		res[0].locs[1].generation = 1;
		res[0].locs[1].tier = PC_DIR_TIER_DISK;
		res[1].status = -ENOENT;
		snprintf(res[1].owner, sizeof(res[1].owner), "storage-02");
		res[2].status = -EHOSTUNREACH;
		res[3].status = -ETIMEDOUT;
		lookup_answer(res, 4);
		CU_ASSERT_EQUAL_FATAL(await_reply(a, fd, &r), 0);
		CU_ASSERT_EQUAL(r.status, 0);
		if (!json) {
			CU_ASSERT_STRING_EQUAL(
				r.text, "namespace \"n\\\"s\": 4 keys, 1 found, 1 miss, 2 error\n"
					"key \"a\": found, 2 locations, from the read cache\n"
					"  node storage-01 incarnation 5 offset 65536 length 4096 "
					"generation 3 "
					"tier memory rkey 0x1234\n"
					"  node storage-02 incarnation 6 offset 0 length 4096 "
					"generation 1 tier "
					"disk rkey 0x0\n"
					"key \"b\\x01\": miss, owner storage-02\n"
					"key \"c\": error: no owner answered\n"
					"key \"d\": error: timed out\n");
		} else {
			CU_ASSERT_TRUE_FATAL(j_parse(r.text, r.len, &v));
			CU_ASSERT_TRUE(jstr_is(&v, "0.namespace", "n\"s"));
			CU_ASSERT_TRUE(jbool_is(&v, "0.cached", true));
			CU_ASSERT_TRUE(jnull_at(&v, "0.owner"));
			CU_ASSERT_EQUAL(jlen(&v, "0.locations"), 2);
			CU_ASSERT_TRUE(jstr_is(&v, "0.locations.0.tier", "memory"));
			CU_ASSERT_TRUE(jstr_is(&v, "0.locations.1.tier", "disk"));
			CU_ASSERT_TRUE(jnum_is(&v, "0.locations.0.offset", "65536"));
			CU_ASSERT_TRUE(jnum_is(&v, "0.locations.0.rkey", "4660"));
			CU_ASSERT_TRUE(jstr_is(&v, "1.key", "b\x01"));
			CU_ASSERT_TRUE(jstr_is(&v, "1.owner", "storage-02"));
			CU_ASSERT_TRUE(jstr_is(&v, "2.status", "error"));
			CU_ASSERT_TRUE(jnum_is(&v, "2.errno", "113"));
			CU_ASSERT_TRUE(jstr_is(&v, "2.error", "no owner answered"));
			CU_ASSERT_TRUE(jnum_is(&v, "3.errno", "110"));
			j_free(&v);
		}
		reply_free(&r);
	}
	close(fd);
	pc_admin_destroy(a);
}

static void
test_no_cluster(void)
{
	static const char *const keys[] = {"k"};
	struct pc_admin *a = admin_new(NULL, NULL, NULL);
	int fd = connect_pair(a);
	uint8_t req[64];
	struct reply r;
	static const uint16_t ops[] = {PC_ADMIN_OP_MEMBERS, PC_ADMIN_OP_RING};

	for (unsigned int i = 0; i < PC_ARRAY_SIZE(ops); i++) {
		CU_ASSERT_EQUAL_FATAL(exchange(a, fd, req, req_simple(req, ops[i], 0), &r), 0);
		CU_ASSERT_EQUAL(r.status, -ENOTSUP);
		CU_ASSERT_STRING_EQUAL(
			r.text, "no cluster: this engine runs without the cluster control plane\n");
		reply_free(&r);
	}
	CU_ASSERT_EQUAL_FATAL(exchange(a, fd, req, req_lookup(req, 0, "", keys, 1), &r), 0);
	CU_ASSERT_EQUAL(r.status, -ENOTSUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.text, "no cluster"));
	reply_free(&r);
	CU_ASSERT_EQUAL(a->nconns, 1); /* an engine error is not a protocol error */
	close(fd);
	pc_admin_destroy(a);
}

/* ------------------------------------------------------------------ */
/* engine: the session socket's hook and peercache-ctl                 */
/* ------------------------------------------------------------------ */

struct child {
	int status;
	char out[1 << 16];
	size_t out_len;
	char err[4096];
	size_t err_len;
};

static void
drain(int fd, char *buf, size_t cap, size_t *len)
{
	ssize_t n;

	while (*len + 1 < cap && (n = read(fd, buf + *len, cap - 1 - *len)) > 0) {
		*len += (size_t)n;
	}
	buf[*len] = '\0';
}

/*
 * Run build/peercache-ctl with args while this thread runs the control
 * lcore; answer_lookup (may be NULL) plays the cluster when a lookup comes.
 */
static void
run_ctl(const char *const *args, struct child *ch,
	void (*answer_lookup)(const struct pc_cluster_lookup_result *, unsigned int),
	const struct pc_cluster_lookup_result *res, unsigned int nres)
{
	struct pc_lcore *control = pc_runtime_control(g_rt);
	char exe[PATH_MAX], ctl[PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *argv[16];
	int out[2], err[2];
	uint64_t deadline;
	pid_t pid;
	int argc = 0;

	memset(ch, 0, sizeof(*ch));
	ch->status = -1;
	CU_ASSERT_FATAL(n > 0);
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0'; /* build/tests/engine */
	snprintf(ctl, sizeof(ctl), "%s/../../peercache-ctl", exe);
	CU_ASSERT_FATAL(access(ctl, X_OK) == 0);
	argv[argc++] = ctl;
	for (; *args != NULL && argc < 15; args++) {
		argv[argc++] = (char *)*args;
	}
	argv[argc] = NULL;
	CU_ASSERT_FATAL(pipe2(out, O_CLOEXEC | O_NONBLOCK) == 0);
	CU_ASSERT_FATAL(pipe2(err, O_CLOEXEC | O_NONBLOCK) == 0);
	pid = fork();
	if (pid == 0) {
		dup2(out[1], STDOUT_FILENO);
		dup2(err[1], STDERR_FILENO);
		execv(ctl, argv);
		_exit(127);
	}
	CU_ASSERT_FATAL(pid > 0);
	close(out[1]);
	close(err[1]);
	deadline = rte_rdtsc() + 30 * rte_get_tsc_hz();
	while (rte_rdtsc() < deadline) {
		pid_t w;

		pc_lcore_poll_once(control, rte_rdtsc());
		if (answer_lookup != NULL && g_lk_cb != NULL) {
			answer_lookup(res, nres);
		}
		drain(out[0], ch->out, sizeof(ch->out), &ch->out_len);
		drain(err[0], ch->err, sizeof(ch->err), &ch->err_len);
		w = waitpid(pid, &ch->status, WNOHANG);
		if (w == pid) {
			break;
		}
	}
	if (ch->status == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, &ch->status, 0);
		CU_FAIL("peercache-ctl did not finish within 30 s");
	}
	drain(out[0], ch->out, sizeof(ch->out), &ch->out_len);
	drain(err[0], ch->err, sizeof(ch->err), &ch->err_len);
	close(out[0]);
	close(err[0]);
}

static int
exit_code(const struct child *ch)
{
	return WIFEXITED(ch->status) ? WEXITSTATUS(ch->status) : 128 + WTERMSIG(ch->status);
}

/* A raw session hello to the engine socket; returns the reply's status (and message). */
static int32_t
raw_hello(const char *path, char *msg, size_t msglen)
{
	struct pc_lcore *control = pc_runtime_control(g_rt);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct pc_hello h = {.magic = PC_HELLO_MAGIC, .version = PC_PROTO_VERSION, .pid = 1};
	struct pc_hello_reply rep;
	char cbuf[CMSG_SPACE(2 * sizeof(int))];
	struct iovec iov = {.iov_base = &rep, .iov_len = sizeof(rep)};
	struct msghdr m = {.msg_iov = &iov,
			   .msg_iovlen = 1,
			   .msg_control = cbuf,
			   .msg_controllen = sizeof(cbuf)};
	uint64_t deadline = rte_rdtsc() + 10 * rte_get_tsc_hz();
	ssize_t n = -1;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	CU_ASSERT_EQUAL(send(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	while (rte_rdtsc() < deadline) {
		pc_lcore_poll_once(control, rte_rdtsc());
		n = recvmsg(fd, &m, MSG_DONTWAIT);
		if (n >= 0 || errno != EAGAIN) {
			break;
		}
	}
	CU_ASSERT_EQUAL_FATAL(n, (ssize_t)sizeof(rep));
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
		int fds[2];

		if (c->cmsg_type == SCM_RIGHTS) {
			memcpy(fds, CMSG_DATA(c), sizeof(fds));
			close(fds[0]);
			close(fds[1]);
		}
	}
	snprintf(msg, msglen, "%s", rep.msg);
	close(fd);
	return rep.status;
}

static void
socket_path(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "/tmp/pc-admin-ut-%d-%s.sock", (int)getpid(), tag);
}

static void
test_meta_engine_ctl(void)
{
	static const struct pc_cluster_lookup_result found = {
		.status = 0,
		.n_locs = 1,
		.owner = "storage-02",
		.locs = {{.node_id = "storage-02", .incarnation = 3, .offset = 128, .length = 64}},
	};
	struct pc_cluster_lookup_result res[2] = {found, {.status = -ENOENT}};
	struct pc_sessions *ss;
	struct pc_admin *a;
	struct child ch;
	struct jv v;
	char path[108];
	char msg[PC_HELLO_MSG_MAX];

	fake_cluster_small();
	socket_path(path, sizeof(path), "meta");
	snprintf(g_cfg.engine_socket, sizeof(g_cfg.engine_socket), "%s", path);
	ss = pc_sessions_create(&g_cfg, g_rt, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ss);
	a = admin_new(FAKE_CLUSTER, NULL, ss);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);

	/* A session hello: refused, with the reason. */
	CU_ASSERT_EQUAL(raw_hello(path, msg, sizeof(msg)), -ENOTSUP);
	CU_ASSERT_STRING_EQUAL(msg, "this engine is discovery-only (role meta): no page pool");

	run_ctl((const char *const[]){"--socket", path, "--json", "stats", NULL}, &ch, NULL, NULL,
		0);
	CU_ASSERT_EQUAL(exit_code(&ch), 0);
	CU_ASSERT_EQUAL(ch.err_len, 0);
	CU_ASSERT_TRUE_FATAL(j_parse(ch.out, ch.out_len, &v));
	CU_ASSERT_TRUE(jnull_at(&v, "store"));
	CU_ASSERT_TRUE(jnum_is(&v, "sessions.open", "0"));
	CU_ASSERT_TRUE(jnum_is(&v, "sessions.hello_refused", "1"));
	CU_ASSERT_TRUE(jnum_is(&v, "admin.open", "1"));
	CU_ASSERT_TRUE(jstr_is(&v, "engine.socket", path));
	j_free(&v);

	run_ctl((const char *const[]){"-s", path, "members", NULL}, &ch, NULL, NULL, 0);
	CU_ASSERT_EQUAL(exit_code(&ch), 0);
	CU_ASSERT_EQUAL(
		strncmp(ch.out, "node storage-01 incarnation 1700000000000001, role storage", 58),
		0);
	CU_ASSERT_PTR_NOT_NULL(strstr(ch.out, "\ninfer-01 "));

	/* Options after the command, a namespace, keys after "--". */
	run_ctl((const char *const[]){"lookup", "-s", path, "--namespace", "llama", "--json", "--",
				      "-k1", "k2", NULL},
		&ch, lookup_answer, res, 2);
	CU_ASSERT_EQUAL(exit_code(&ch), 0);
	CU_ASSERT_EQUAL(memcmp(g_lk_bytes[0], "llama\0-k1", 9), 0);
	CU_ASSERT_TRUE_FATAL(j_parse(ch.out, ch.out_len, &v));
	CU_ASSERT_TRUE(jstr_is(&v, "0.key", "-k1"));
	CU_ASSERT_TRUE(jstr_is(&v, "0.locations.0.node_id", "storage-02"));
	CU_ASSERT_TRUE(jstr_is(&v, "1.status", "miss"));
	j_free(&v);

	/* An engine error: exit 1, the engine's message on stderr, nothing on stdout. */
	MOCK_PUSH(ut_lookup_rc, -EBUSY);
	run_ctl((const char *const[]){"-s", path, "lookup", "x", NULL}, &ch, NULL, NULL, 0);
	CU_ASSERT_EQUAL(exit_code(&ch), 1);
	CU_ASSERT_EQUAL(ch.out_len, 0);
	CU_ASSERT_STRING_EQUAL(ch.err, "peercache-ctl: too many lookups in flight; try again\n");

	/* Usage errors: exit 2 before any connection. */
	run_ctl((const char *const[]){"-s", path, "lookup", NULL}, &ch, NULL, NULL, 0);
	CU_ASSERT_EQUAL(exit_code(&ch), 2);
	run_ctl((const char *const[]){"-s", path, "frobnicate", NULL}, &ch, NULL, NULL, 0);
	CU_ASSERT_EQUAL(exit_code(&ch), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(ch.err, "unknown command 'frobnicate'"));
	run_ctl((const char *const[]){"-s", path, "--timeout", "0", "stats", NULL}, &ch, NULL, NULL,
		0);
	CU_ASSERT_EQUAL(exit_code(&ch), 2);
	run_ctl(
		(const char *const[]){
			"-s", path, "lookup",
			"0123456789012345678901234567890123456789012345678901234567890"
			"1234567890123456789012345678901234567890123456789012345678901"
			"234567890",
			NULL},
		&ch, NULL, NULL, 0);
	CU_ASSERT_EQUAL(exit_code(&ch), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(ch.err, "key 1 has 131 bytes, at most 128"));
	run_ctl((const char *const[]){"--version", NULL}, &ch, NULL, NULL, 0);
	CU_ASSERT_EQUAL(exit_code(&ch), 0);
	CU_ASSERT_EQUAL(strncmp(ch.out, "peercache-ctl " PC_VERSION, 14 + strlen(PC_VERSION)), 0);

	/* Without the hook the engine refuses it as a bad hello; the tool says so. */
	pc_admin_destroy(a);
	run_ctl((const char *const[]){"-s", path, "stats", NULL}, &ch, NULL, NULL, 0);
	CU_ASSERT_EQUAL(exit_code(&ch), 1);
	CU_ASSERT_PTR_NOT_NULL(
		strstr(ch.err, "does not serve admin requests: not a PeerCache hello"));
	pc_sessions_destroy(ss);

	/* No engine at all. */
	run_ctl((const char *const[]){"-s", path, "stats", NULL}, &ch, NULL, NULL, 0);
	CU_ASSERT_EQUAL(exit_code(&ch), 1);
	CU_ASSERT_EQUAL(strncmp(ch.err, "peercache-ctl: no engine at ", 28), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(ch.err, "no such socket"));
}

static void
test_store_engine_ctl(void)
{
	struct pc_store_opts so = {
		.name = "admst",
		.segment_size = 16ull << 20,
		.nb_caches = 1,
		.quarantine_us = 1000,
	};
	struct pc_store *st = pc_store_create(&so);
	struct pc_sessions *ss;
	struct pc_admin *a;
	struct child ch;
	struct jv v;
	char path[108];
	char msg[PC_HELLO_MSG_MAX];

	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	socket_path(path, sizeof(path), "store");
	snprintf(g_cfg.engine_socket, sizeof(g_cfg.engine_socket), "%s", path);
	ss = pc_sessions_create(&g_cfg, g_rt, st);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ss);
	a = admin_new(NULL, st, ss);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);

	/* Session hellos still work beside the admin hook. */
	CU_ASSERT_EQUAL(raw_hello(path, msg, sizeof(msg)), 0);

	run_ctl((const char *const[]){"-s", path, "-j", "stats", NULL}, &ch, NULL, NULL, 0);
	CU_ASSERT_EQUAL(exit_code(&ch), 0);
	CU_ASSERT_TRUE_FATAL(j_parse(ch.out, ch.out_len, &v));
	CU_ASSERT_TRUE(jnum_is(&v, "store.segment_size", "16777216"));
	CU_ASSERT_TRUE(jbool_is(&v, "engine.page_pool", true));
	CU_ASSERT_TRUE(jnull_at(&v, "cluster"));
	CU_ASSERT_TRUE(jnum_is(&v, "sessions.opened", "1"));
	j_free(&v);
	run_ctl((const char *const[]){"-s", path, "stats", NULL}, &ch, NULL, NULL, 0);
	CU_ASSERT_EQUAL(exit_code(&ch), 0);
	CU_ASSERT_TRUE(has_field_line(ch.out, "segment_size", "16777216 (16.0 MiB)"));

	/* No cluster on this engine: members is an engine error. */
	run_ctl((const char *const[]){"-s", path, "--json", "members", NULL}, &ch, NULL, NULL, 0);
	CU_ASSERT_EQUAL(exit_code(&ch), 1);
	CU_ASSERT_EQUAL(ch.out_len, 0);
	CU_ASSERT_STRING_EQUAL(
		ch.err,
		"peercache-ctl: no cluster: this engine runs without the cluster control plane\n");

	pc_admin_destroy(a);
	pc_sessions_destroy(ss);
	pc_store_destroy(st);
}

static const struct pc_ut_test render_tests[] = {
	{"the test's JSON reader refuses what is not JSON", test_json_reader_refuses},
	{"helpers: sizes, endpoints, escaping, the reply cap", test_helpers},
	{"members: exact table, escaped host, masters", test_members_text},
	{"members: JSON fields and bytes", test_members_json},
	{"ring: shares, before the first build", test_ring},
	{"stats: text lines and JSON sections", test_stats},
	{NULL, NULL},
};

static const struct pc_ut_test conn_tests[] = {
	{"several requests on one connection", test_several_requests},
	{"4096 members: parts reassemble byte for byte", test_long_reply_chunked},
	{"garbage, truncated, oversized: error reply, closed", test_bad_requests_closed},
	{"a silent connection is closed at its deadline", test_silent_closed},
	{"the connection cap refuses with a readable reply", test_connection_cap},
	{"a peer that stops reading is dropped", test_slow_reader_dropped},
	{"lookup: async answer, busy, hang-up, admin destroyed", test_lookup_async},
	{"lookup: text and JSON of found, miss, errors", test_lookup_text},
	{"no cluster: members, ring, lookup are errors", test_no_cluster},
	{NULL, NULL},
};

static const struct pc_ut_test engine_tests[] = {
	{"discovery-only engine: hello refused, peercache-ctl served", test_meta_engine_ctl},
	{"engine with a store: stats, no cluster, hellos still work", test_store_engine_ctl},
	{NULL, NULL},
};

static const struct pc_ut_suite suites[] = {
	{"admin render", NULL, NULL, render_tests},
	{"admin connections", NULL, NULL, conn_tests},
	{"admin engine", NULL, NULL, engine_tests},
};

int
main(void)
{
	struct pc_runtime_opts opts = {.name = "admrt", .idle_policy = PC_IDLE_ADAPTIVE};
	char err[PC_CONFIG_ERR_MAX];
	int rc;

	signal(SIGPIPE, SIG_IGN);
	pc_config_defaults(&g_cfg);
	if (pc_config_load_embedded(&g_cfg, err, sizeof(err)) != 0 ||
	    pc_config_finalize(&g_cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "admin_ut: embedded config: %s\n", err);
		return 1;
	}
	if (pc_ut_eal_init("admin_ut", "0") != 0) {
		return 1;
	}
	g_rt = pc_runtime_create(&opts);
	if (g_rt == NULL) {
		fprintf(stderr, "admin_ut: no runtime\n");
		return 1;
	}
	g_now = rte_rdtsc();
	rc = pc_ut_run(suites, PC_ARRAY_SIZE(suites));
	pc_runtime_destroy(g_rt);
	rte_eal_cleanup();
	return rc;
}
