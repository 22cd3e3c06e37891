/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * control/frame.c: the control RPC header and body codecs.
 *
 * The wire layout is pinned by bodies built here byte by byte (struct tb),
 * not by the module's own writer. Every decoder is run on bodies copied into
 * an exact malloc, so a read one byte past the end is an ASan report; every
 * encoder writes into a buffer with guard bytes after its cap. Each body
 * type is checked at its caps (strings of exactly the cap, counts at the
 * cap: they pass and encode to exactly pc_frame_body_cap() bytes; one more
 * fails), truncated at every length, with a trailing byte, with counts the
 * body cannot hold, and with each field rule broken.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../../control/frame.c"
#include "ut.h"
#include "helpers.h"

/* ---- building bodies by hand, independently of frame.c ---- */

#define TB_CAP (PC_FRAME_MEMBERS_REPLY_MAX + 4096)

struct tb {
	uint8_t *b;
	size_t n;
};

static uint8_t g_tb_buf[TB_CAP];

static struct tb
tb_start(void)
{
	struct tb t = {.b = g_tb_buf, .n = 0};

	return t;
}

static void
tb_u8(struct tb *t, uint8_t v)
{
	CU_ASSERT_FATAL(t->n + 1 <= TB_CAP);
	t->b[t->n++] = v;
}

static void
tb_u16(struct tb *t, uint16_t v)
{
	tb_u8(t, (uint8_t)v);
	tb_u8(t, (uint8_t)(v >> 8));
}

static void
tb_u32(struct tb *t, uint32_t v)
{
	tb_u16(t, (uint16_t)v);
	tb_u16(t, (uint16_t)(v >> 16));
}

static void
tb_u64(struct tb *t, uint64_t v)
{
	tb_u32(t, (uint32_t)v);
	tb_u32(t, (uint32_t)(v >> 32));
}

static void
tb_raw(struct tb *t, const void *p, size_t n)
{
	CU_ASSERT_FATAL(t->n + n <= TB_CAP);
	if (n > 0) {
		memcpy(t->b + t->n, p, n);
	}
	t->n += n;
}

/* A string as the wire has it: u16 length, then the bytes. */
static void
tb_str(struct tb *t, const char *s, size_t n)
{
	tb_u16(t, (uint16_t)n);
	tb_raw(t, s, n);
}

static void
tb_cstr(struct tb *t, const char *s)
{
	tb_str(t, s, strlen(s));
}

static void
tb_member(struct tb *t, const struct pc_frame_member *m)
{
	tb_cstr(t, m->node_id);
	tb_u64(t, m->incarnation);
	tb_u8(t, m->role);
	tb_u8(t, m->flags);
	tb_cstr(t, m->hostname);
	tb_cstr(t, m->ctrl_host);
	tb_u16(t, m->ctrl_port);
	tb_cstr(t, m->data_host);
	tb_u16(t, m->data_port);
	tb_u16(t, m->meta_port);
	tb_u64(t, m->pool_capacity);
	tb_u64(t, m->pool_used);
}

static void
tb_location(struct tb *t, const struct pc_frame_location *l)
{
	tb_cstr(t, l->node_id);
	tb_u64(t, l->incarnation);
	tb_u64(t, l->offset);
	tb_u32(t, l->length);
	tb_u64(t, l->generation);
	tb_u8(t, l->tier);
	tb_u32(t, l->rkey);
}

static void
tb_key(struct tb *t, const struct pc_frame_key *k)
{
	tb_u16(t, k->len);
	tb_raw(t, k->bytes, k->len);
}

/* A handshake record as verbs/qp_proto.h documents it, 56 bytes. */
static void
tb_qp_info(struct tb *t, const struct pc_qp_info *q)
{
	tb_raw(t, "PCQP", 4);
	tb_u16(t, 1);
	tb_u8(t, q->mtu);
	tb_u8(t, 0);
	tb_u32(t, q->qpn);
	tb_u32(t, q->psn);
	tb_u16(t, q->lid);
	tb_u16(t, 0);
	tb_raw(t, q->gid, sizeof(q->gid));
	tb_u32(t, q->rkey);
	tb_u64(t, q->seg_base);
	tb_u64(t, q->incarnation);
}

/* ---- decoding from an exact copy ---- */

typedef int (*dec_fn)(const uint8_t *body, size_t len);

/* Decode a copy of body in a malloc of exactly len bytes: one byte past it is an ASan report. */
static int
dec_exact(dec_fn dec, const uint8_t *body, size_t len)
{
	uint8_t *copy = malloc(len);
	int rc;

	CU_ASSERT_FATAL(copy != NULL || len == 0);
	if (len > 0) {
		memcpy(copy, body, len);
	}
	rc = dec(copy, len);
	free(copy);
	return rc;
}

/* ---- inputs: typical and at every cap ---- */

static void
fill_node_id(char *dst, unsigned int i, bool max)
{
	int n = snprintf(dst, PC_FRAME_NODE_ID_MAX + 1, "node-%u.", i);

	if (max) {
		for (int j = n; j < PC_FRAME_NODE_ID_MAX; j++) {
			dst[j] = "abcXYZ019._-"[j % 12];
		}
		dst[PC_FRAME_NODE_ID_MAX] = '\0';
	}
}

/* Max hosts use every byte the rule allows, 0x21..0x7e. */
static void
fill_host(char *dst, unsigned int i, const char *what, bool max)
{
	int n = snprintf(dst, PC_FRAME_HOST_MAX + 1, "%s%u.example", what, i);

	if (max) {
		for (int j = n; j < PC_FRAME_HOST_MAX; j++) {
			dst[j] = (char)(0x21 + (j + i) % (0x7f - 0x21));
		}
		dst[PC_FRAME_HOST_MAX] = '\0';
	}
}

static void
mk_member(struct pc_frame_member *m, unsigned int i, bool max)
{
	memset(m, 0, sizeof(*m));
	fill_node_id(m->node_id, i, max);
	m->incarnation = max ? UINT64_MAX - i : 0x1000u + i;
	m->role = (uint8_t)(i % 3);
	m->flags = (uint8_t)(i & PC_FRAME_MEMBER_F_MASTER);
	fill_host(m->hostname, i, "host", max);
	fill_host(m->ctrl_host, i, "ctrl", max);
	fill_host(m->data_host, i, "data", max);
	m->ctrl_port = (uint16_t)(max ? 65535 : 7000 + i);
	m->data_port = (uint16_t)(max ? 65534 : 7100 + i);
	m->meta_port = (uint16_t)(max ? 65533 : 7200 + i);
	m->pool_capacity = max ? UINT64_MAX : (uint64_t)(i + 1) << 30;
	m->pool_used = max ? UINT64_MAX - 1 : (uint64_t)i << 20;
}

static void
mk_location(struct pc_frame_location *l, unsigned int i, bool max)
{
	memset(l, 0, sizeof(*l));
	fill_node_id(l->node_id, i, max);
	l->incarnation = max ? UINT64_MAX : 77u + i;
	/* At max, offset + length is exactly UINT64_MAX: the last range that does not wrap. */
	l->offset = max ? UINT64_MAX - UINT32_MAX : (uint64_t)i * 4096;
	l->length = max ? UINT32_MAX : 4096;
	l->generation = max ? UINT64_MAX : 3u + i;
	l->tier = (uint8_t)(i & 1);
	l->rkey = max ? UINT32_MAX : 0xabc0u + i;
}

/* Max keys are binary: every byte value, NUL included. */
static void
mk_key(struct pc_frame_key *k, unsigned int i, bool max)
{
	memset(k, 0, sizeof(*k));
	if (max) {
		k->len = PC_FRAME_KEY_MAX;
		for (unsigned int j = 0; j < k->len; j++) {
			k->bytes[j] = (uint8_t)(i * 31 + j * 7);
		}
	} else {
		k->len = (uint16_t)snprintf((char *)k->bytes, PC_FRAME_KEY_MAX, "model/layer%u", i);
	}
}

static void
mk_lookup(struct pc_frame_lookup *e, unsigned int i, bool max)
{
	memset(e, 0, sizeof(*e));
	if (!max && i % 3 == 2) {
		e->status = -ENOENT;
		return;
	}
	e->nloc = max ? PC_FRAME_LOCS_MAX : (uint8_t)(i % (PC_FRAME_LOCS_MAX + 1));
	for (unsigned int j = 0; j < e->nloc; j++) {
		mk_location(&e->loc[j], i * 8 + j, max);
	}
}

static void
mk_delete_loc(struct pc_frame_delete_loc *e, unsigned int i, bool max)
{
	memset(e, 0, sizeof(*e));
	mk_key(&e->key, i, max);
	fill_node_id(e->node_id, i, max);
	e->incarnation = max ? UINT64_MAX : 5u + i;
	/* 0 (any generation) on every third entry: both meanings round-trip. */
	e->generation = max ? UINT64_MAX : (i % 3 == 0 ? 0 : 0x100000000ull + i);
}

static void
mk_qp_info(struct pc_qp_info *q, unsigned int i, bool max)
{
	memset(q, 0, sizeof(*q));
	q->qpn = max ? PC_QP_24BIT_MAX : 0x100u + i;
	q->psn = max ? PC_QP_24BIT_MAX : 0x4242u + i;
	q->lid = (uint16_t)(max ? UINT16_MAX : 7 + i);
	q->mtu = max ? PC_QP_MTU_MAX : PC_QP_MTU_MIN + i % PC_QP_MTU_MAX;
	for (unsigned int j = 0; j < sizeof(q->gid); j++) {
		q->gid[j] = (uint8_t)(max ? 0xff - j : i + j);
	}
	q->rkey = max ? UINT32_MAX : 0xbeef0000u + i;
	q->seg_base = max ? UINT64_MAX : 0x7f0000000000ull + 4096ull * i;
	q->incarnation = max ? UINT64_MAX : 0x1000u + i;
}

static bool
qp_info_eq(const struct pc_qp_info *a, const struct pc_qp_info *b)
{
	return a->qpn == b->qpn && a->psn == b->psn && a->lid == b->lid && a->mtu == b->mtu &&
	       memcmp(a->gid, b->gid, sizeof(a->gid)) == 0 && a->rkey == b->rkey &&
	       a->seg_base == b->seg_base && a->incarnation == b->incarnation;
}

/* Inputs and outputs, static: a member list at its cap is most of a megabyte. */
static struct pc_frame_member g_members[PC_FRAME_MEMBERS_MAX + 1];
static struct pc_frame_member g_members_out[PC_FRAME_MEMBERS_MAX + 1];
static struct pc_frame_put g_puts[PC_FRAME_BATCH_MAX + 1];
static struct pc_frame_put g_puts_out[PC_FRAME_BATCH_MAX + 1];
static struct pc_frame_key g_keys[PC_FRAME_BATCH_MAX + 1];
static struct pc_frame_key g_keys_out[PC_FRAME_BATCH_MAX + 1];
static struct pc_frame_delete_loc g_dels[PC_FRAME_BATCH_MAX + 1];
static struct pc_frame_delete_loc g_dels_out[PC_FRAME_BATCH_MAX + 1];
static struct pc_frame_lookup g_lookups[PC_FRAME_BATCH_MAX + 1];
static struct pc_frame_lookup g_lookups_out[PC_FRAME_BATCH_MAX + 1];
static int32_t g_status[PC_FRAME_BATCH_MAX + 1];
static int32_t g_status_out[PC_FRAME_BATCH_MAX + 1];
static bool g_present[PC_FRAME_BATCH_MAX + 1];
static bool g_present_out[PC_FRAME_BATCH_MAX + 1];
static uint8_t g_body[TB_CAP];

/* Variants of each body: every field and count at its cap, a typical one, no entries. */
enum variant { V_MAX, V_SMALL, V_EMPTY, V__COUNT };

static unsigned int
variant_count(enum variant v, unsigned int cap)
{
	return v == V_MAX ? cap : v == V_SMALL ? 3 : 0;
}

static char g_errmsg[PC_FRAME_ERRMSG_MAX + 1];

static void
mk_inputs(enum variant v)
{
	bool max = v == V_MAX;

	for (unsigned int i = 0; i <= PC_FRAME_MEMBERS_MAX; i++) {
		mk_member(&g_members[i], i, max);
	}
	for (unsigned int i = 0; i <= PC_FRAME_BATCH_MAX; i++) {
		mk_key(&g_puts[i].key, i, max);
		mk_location(&g_puts[i].loc, i, max);
		mk_key(&g_keys[i], i, max);
		mk_delete_loc(&g_dels[i], i, max);
		mk_lookup(&g_lookups[i], i, max);
		g_status[i] = max ? -PC_FRAME_ERRNO_MAX : (i % 2 == 0 ? 0 : -ENOENT);
		g_present[i] = (i % 3) != 0;
	}
	memset(g_errmsg, 0, sizeof(g_errmsg));
	if (max) {
		for (int j = 0; j < PC_FRAME_ERRMSG_MAX; j++) {
			g_errmsg[j] = (char)(0x20 + j % (0x7f - 0x20));
		}
	} else if (v == V_SMALL) {
		strcpy(g_errmsg, "no such key");
	}
}

/* ---- one table entry per body: its encoder on the inputs, its decoder ---- */

static unsigned int g_n_out;
static uint64_t g_epoch_out;

static int
enc_ping(uint8_t *buf, size_t cap, enum variant v)
{
	(void)v;
	return pc_frame_enc_empty(buf, cap);
}

static int
dec_ping(const uint8_t *b, size_t len)
{
	return pc_frame_dec_empty(b, len);
}

static int
enc_register(uint8_t *buf, size_t cap, enum variant v)
{
	(void)v;
	return pc_frame_enc_register(buf, cap, &g_members[0]);
}

static int
dec_register(const uint8_t *b, size_t len)
{
	return pc_frame_dec_register(b, len, &g_members_out[0]);
}

static int
enc_members(uint8_t *buf, size_t cap, enum variant v)
{
	return pc_frame_enc_members(buf, cap, v == V_MAX ? UINT64_MAX : 42, g_members,
				    variant_count(v, PC_FRAME_MEMBERS_MAX));
}

static int
dec_members(const uint8_t *b, size_t len)
{
	return pc_frame_dec_members(b, len, &g_epoch_out, g_members_out, PC_FRAME_MEMBERS_MAX,
				    &g_n_out);
}

static int
enc_heartbeat(uint8_t *buf, size_t cap, enum variant v)
{
	struct pc_frame_heartbeat hb = {.incarnation = UINT64_MAX, .pool_used = 1u << 20};

	fill_node_id(hb.node_id, 9, v == V_MAX);
	return pc_frame_enc_heartbeat(buf, cap, &hb);
}

static int
dec_heartbeat(const uint8_t *b, size_t len)
{
	struct pc_frame_heartbeat hb;

	return pc_frame_dec_heartbeat(b, len, &hb);
}

static int
enc_heartbeat_reply(uint8_t *buf, size_t cap, enum variant v)
{
	return pc_frame_enc_heartbeat_reply(buf, cap, 1234, v != V_EMPTY);
}

static int
dec_heartbeat_reply(const uint8_t *b, size_t len)
{
	bool known;

	return pc_frame_dec_heartbeat_reply(b, len, &g_epoch_out, &known);
}

static int
enc_dir_put(uint8_t *buf, size_t cap, enum variant v)
{
	return pc_frame_enc_dir_put(buf, cap, g_puts, variant_count(v, PC_FRAME_BATCH_MAX));
}

static int
dec_dir_put(const uint8_t *b, size_t len)
{
	return pc_frame_dec_dir_put(b, len, g_puts_out, PC_FRAME_BATCH_MAX, &g_n_out);
}

static int
enc_dir_keys(uint8_t *buf, size_t cap, enum variant v)
{
	return pc_frame_enc_dir_keys(buf, cap, g_keys, variant_count(v, PC_FRAME_BATCH_MAX));
}

static int
dec_dir_keys(const uint8_t *b, size_t len)
{
	return pc_frame_dec_dir_keys(b, len, g_keys_out, PC_FRAME_BATCH_MAX, &g_n_out);
}

static int
enc_dir_delete_loc(uint8_t *buf, size_t cap, enum variant v)
{
	return pc_frame_enc_dir_delete_loc(buf, cap, g_dels, variant_count(v, PC_FRAME_BATCH_MAX));
}

static int
dec_dir_delete_loc(const uint8_t *b, size_t len)
{
	return pc_frame_dec_dir_delete_loc(b, len, g_dels_out, PC_FRAME_BATCH_MAX, &g_n_out);
}

static int
enc_dir_status(uint8_t *buf, size_t cap, enum variant v)
{
	return pc_frame_enc_dir_status(buf, cap, g_status, variant_count(v, PC_FRAME_BATCH_MAX));
}

static int
dec_dir_status(const uint8_t *b, size_t len)
{
	return pc_frame_dec_dir_status(b, len, g_status_out, PC_FRAME_BATCH_MAX, &g_n_out);
}

static int
enc_dir_lookup_reply(uint8_t *buf, size_t cap, enum variant v)
{
	return pc_frame_enc_dir_lookup_reply(buf, cap, g_lookups,
					     variant_count(v, PC_FRAME_BATCH_MAX));
}

static int
dec_dir_lookup_reply(const uint8_t *b, size_t len)
{
	return pc_frame_dec_dir_lookup_reply(b, len, g_lookups_out, PC_FRAME_BATCH_MAX, &g_n_out);
}

static int
enc_dir_exists_reply(uint8_t *buf, size_t cap, enum variant v)
{
	return pc_frame_enc_dir_exists_reply(buf, cap, g_present,
					     variant_count(v, PC_FRAME_BATCH_MAX));
}

static int
dec_dir_exists_reply(const uint8_t *b, size_t len)
{
	return pc_frame_dec_dir_exists_reply(b, len, g_present_out, PC_FRAME_BATCH_MAX, &g_n_out);
}

static int
enc_qp_connect(uint8_t *buf, size_t cap, enum variant v)
{
	struct pc_frame_qp_connect q;

	memset(&q, 0, sizeof(q));
	fill_node_id(q.node_id, 4, v == V_MAX);
	mk_qp_info(&q.info, 4, v == V_MAX);
	return pc_frame_enc_qp_connect(buf, cap, &q);
}

static int
dec_qp_connect(const uint8_t *b, size_t len)
{
	struct pc_frame_qp_connect q;

	return pc_frame_dec_qp_connect(b, len, &q);
}

static int
enc_qp_connect_reply(uint8_t *buf, size_t cap, enum variant v)
{
	struct pc_qp_info q;

	mk_qp_info(&q, 5, v == V_MAX);
	return pc_frame_enc_qp_connect_reply(buf, cap, &q);
}

static int
dec_qp_connect_reply(const uint8_t *b, size_t len)
{
	struct pc_qp_info q;

	return pc_frame_dec_qp_connect_reply(b, len, &q);
}

static int
enc_error(uint8_t *buf, size_t cap, enum variant v)
{
	return pc_frame_enc_error(buf, cap, v == V_MAX ? -PC_FRAME_ERRNO_MAX : -ENOENT, g_errmsg);
}

static int
dec_error(const uint8_t *b, size_t len)
{
	struct pc_frame_error e;

	return pc_frame_dec_error(b, len, &e);
}

struct body_case {
	const char *name;
	uint8_t type;
	uint16_t flags;
	int (*enc)(uint8_t *buf, size_t cap, enum variant v);
	dec_fn dec;
};

#define REQ   0
#define REPLY PC_FRAME_F_REPLY
#define ERROR PC_FRAME_F_KNOWN

static const struct body_case g_cases[] = {
	{"ping request", PC_FRAME_PING, REQ, enc_ping, dec_ping},
	{"ping reply", PC_FRAME_PING, REPLY, enc_ping, dec_ping},
	{"register request", PC_FRAME_REGISTER, REQ, enc_register, dec_register},
	{"register reply", PC_FRAME_REGISTER, REPLY, enc_members, dec_members},
	{"heartbeat request", PC_FRAME_HEARTBEAT, REQ, enc_heartbeat, dec_heartbeat},
	{"heartbeat reply", PC_FRAME_HEARTBEAT, REPLY, enc_heartbeat_reply, dec_heartbeat_reply},
	{"members request", PC_FRAME_MEMBERS, REQ, enc_ping, dec_ping},
	{"members reply", PC_FRAME_MEMBERS, REPLY, enc_members, dec_members},
	{"dir-put request", PC_FRAME_DIR_PUT, REQ, enc_dir_put, dec_dir_put},
	{"dir-put reply", PC_FRAME_DIR_PUT, REPLY, enc_dir_status, dec_dir_status},
	{"dir-lookup request", PC_FRAME_DIR_LOOKUP, REQ, enc_dir_keys, dec_dir_keys},
	{"dir-lookup reply", PC_FRAME_DIR_LOOKUP, REPLY, enc_dir_lookup_reply,
	 dec_dir_lookup_reply},
	{"dir-exists request", PC_FRAME_DIR_EXISTS, REQ, enc_dir_keys, dec_dir_keys},
	{"dir-exists reply", PC_FRAME_DIR_EXISTS, REPLY, enc_dir_exists_reply,
	 dec_dir_exists_reply},
	{"dir-delete request", PC_FRAME_DIR_DELETE, REQ, enc_dir_keys, dec_dir_keys},
	{"dir-delete reply", PC_FRAME_DIR_DELETE, REPLY, enc_dir_status, dec_dir_status},
	{"dir-delete-loc request", PC_FRAME_DIR_DELETE_LOC, REQ, enc_dir_delete_loc,
	 dec_dir_delete_loc},
	{"dir-delete-loc reply", PC_FRAME_DIR_DELETE_LOC, REPLY, enc_dir_status, dec_dir_status},
	{"deregister request", PC_FRAME_DEREGISTER, REQ, enc_heartbeat, dec_heartbeat},
	{"deregister reply", PC_FRAME_DEREGISTER, REPLY, enc_ping, dec_ping},
	{"qp-connect request", PC_FRAME_QP_CONNECT, REQ, enc_qp_connect, dec_qp_connect},
	{"qp-connect reply", PC_FRAME_QP_CONNECT, REPLY, enc_qp_connect_reply,
	 dec_qp_connect_reply},
	{"error reply", PC_FRAME_DIR_LOOKUP, ERROR, enc_error, dec_error},
};

/* Encode a case into g_body (room to spare); returns the length. */
static size_t
case_encode(const struct body_case *c, enum variant v)
{
	int len = c->enc(g_body, sizeof(g_body), v);

	CU_ASSERT_FATAL(len >= 0);
	return (size_t)len;
}

/* ---- the header ---- */

static void
hdr_bytes(uint8_t out[PC_FRAME_HDR_SIZE], uint8_t type, uint16_t flags, uint64_t id, uint32_t len)
{
	struct tb t = tb_start();

	tb_raw(&t, "PCRF", 4);
	tb_u8(&t, 1);
	tb_u8(&t, type);
	tb_u16(&t, flags);
	tb_u64(&t, id);
	tb_u32(&t, len);
	tb_u32(&t, 0);
	CU_ASSERT_EQUAL_FATAL(t.n, PC_FRAME_HDR_SIZE);
	memcpy(out, t.b, PC_FRAME_HDR_SIZE);
}

static int
hdr_decode_exact(const uint8_t *buf, size_t len, struct pc_frame_hdr *h)
{
	uint8_t *copy = malloc(len);
	int rc;

	CU_ASSERT_FATAL(copy != NULL || len == 0);
	if (len > 0) {
		memcpy(copy, buf, len);
	}
	rc = pc_frame_hdr_decode(copy, len, h);
	free(copy);
	return rc;
}

static void
test_hdr_round_trip(void)
{
	static const uint16_t dirs[] = {REQ, REPLY, ERROR};
	static const uint64_t ids[] = {0, 1, 0x0123456789abcdefull, UINT64_MAX};
	uint8_t wire[PC_FRAME_HDR_SIZE];
	uint8_t want[PC_FRAME_HDR_SIZE];
	struct pc_frame_hdr h;
	struct pc_frame_hdr got;

	for (uint8_t type = 1; type < PC_FRAME_TYPE__MAX; type++) {
		for (size_t d = 0; d < PC_ARRAY_SIZE(dirs); d++) {
			for (size_t i = 0; i < PC_ARRAY_SIZE(ids); i++) {
				uint32_t cap = pc_frame_body_cap(type, dirs[d]);

				/* version 0 on purpose: the encoder writes PC_FRAME_VERSION. */
				h = (struct pc_frame_hdr){.version = 0,
							  .type = type,
							  .flags = dirs[d],
							  .request_id = ids[i],
							  .body_len = i % 2 == 0 ? 0 : cap};
				pc_frame_hdr_encode(wire, &h);
				hdr_bytes(want, type, dirs[d], ids[i], h.body_len);
				CU_ASSERT_EQUAL(memcmp(wire, want, sizeof(want)), 0);
				memset(&got, 0xee, sizeof(got));
				CU_ASSERT_EQUAL(hdr_decode_exact(wire, sizeof(wire), &got), 0);
				CU_ASSERT_EQUAL(got.version, PC_FRAME_VERSION);
				CU_ASSERT_EQUAL(got.type, type);
				CU_ASSERT_EQUAL(got.flags, dirs[d]);
				CU_ASSERT_EQUAL(got.request_id, ids[i]);
				CU_ASSERT_EQUAL(got.body_len, h.body_len);
			}
		}
	}
	/* More bytes than the header (the body behind it) are fine. */
	hdr_bytes(want, PC_FRAME_PING, REQ, 7, 0);
	memcpy(g_body, want, sizeof(want));
	CU_ASSERT_EQUAL(pc_frame_hdr_decode(g_body, sizeof(want) + 100, &got), 0);
	CU_ASSERT_EQUAL(got.request_id, 7);
}

/* Every field's bound: one bad field, the rest good. */
static void
test_hdr_bounds(void)
{
	uint8_t good[PC_FRAME_HDR_SIZE];
	uint8_t bad[PC_FRAME_HDR_SIZE];
	struct pc_frame_hdr h;

	hdr_bytes(good, PC_FRAME_DIR_PUT, REQ, 99, 10);
	CU_ASSERT_EQUAL_FATAL(hdr_decode_exact(good, sizeof(good), &h), 0);

	/* Magic: any bit of any of its bytes. */
	for (int i = 0; i < 4 * 8; i++) {
		memcpy(bad, good, sizeof(bad));
		bad[i / 8] ^= (uint8_t)(1u << (i % 8));
		CU_ASSERT_EQUAL(hdr_decode_exact(bad, sizeof(bad), &h), -EBADMSG);
	}
	/* Version: only 1. */
	for (int v = 0; v < 256; v++) {
		memcpy(bad, good, sizeof(bad));
		bad[4] = (uint8_t)v;
		CU_ASSERT_EQUAL(hdr_decode_exact(bad, sizeof(bad), &h), v == 1 ? 0 : -EBADMSG);
	}
	/* Type: 0 and PC_FRAME_TYPE__MAX upwards. */
	for (int type = 0; type < 256; type++) {
		bool known = type >= 1 && type < PC_FRAME_TYPE__MAX;

		hdr_bytes(bad, (uint8_t)type, REQ, 1, 0);
		CU_ASSERT_EQUAL(hdr_decode_exact(bad, sizeof(bad), &h), known ? 0 : -EBADMSG);
		CU_ASSERT_EQUAL(pc_frame_body_max((uint8_t)type) == 0, !known);
		CU_ASSERT_EQUAL(strcmp(pc_frame_type_name((uint8_t)type), "unknown") == 0, !known);
	}
	/* Flags: every unknown bit, alone and with REPLY; ERROR without REPLY. */
	for (int bit = 2; bit < 16; bit++) {
		hdr_bytes(bad, PC_FRAME_PING, (uint16_t)(1u << bit), 1, 0);
		CU_ASSERT_EQUAL(hdr_decode_exact(bad, sizeof(bad), &h), -EBADMSG);
		hdr_bytes(bad, PC_FRAME_PING, (uint16_t)(1u << bit | REPLY), 1, 0);
		CU_ASSERT_EQUAL(hdr_decode_exact(bad, sizeof(bad), &h), -EBADMSG);
	}
	hdr_bytes(bad, PC_FRAME_PING, PC_FRAME_F_ERROR, 1, 0);
	CU_ASSERT_EQUAL(hdr_decode_exact(bad, sizeof(bad), &h), -EBADMSG);
	/* Reserved: any byte non-zero. */
	for (int i = 20; i < 24; i++) {
		memcpy(bad, good, sizeof(bad));
		bad[i] = 0x80;
		CU_ASSERT_EQUAL(hdr_decode_exact(bad, sizeof(bad), &h), -EBADMSG);
	}
	/* body_len: the cap of each direction passes, one more fails, and so does 4 GiB - 1. */
	for (size_t i = 0; i < PC_ARRAY_SIZE(g_cases); i++) {
		const struct body_case *c = &g_cases[i];
		uint32_t cap = pc_frame_body_cap(c->type, c->flags);

		hdr_bytes(bad, c->type, c->flags, 1, cap);
		CU_ASSERT_EQUAL(hdr_decode_exact(bad, sizeof(bad), &h), 0);
		hdr_bytes(bad, c->type, c->flags, 1, cap + 1);
		CU_ASSERT_EQUAL(hdr_decode_exact(bad, sizeof(bad), &h), -EBADMSG);
		hdr_bytes(bad, c->type, c->flags, 1, UINT32_MAX);
		CU_ASSERT_EQUAL(hdr_decode_exact(bad, sizeof(bad), &h), -EBADMSG);
	}
	/* A PING request has no body at all. */
	hdr_bytes(bad, PC_FRAME_PING, REQ, 1, 1);
	CU_ASSERT_EQUAL(hdr_decode_exact(bad, sizeof(bad), &h), -EBADMSG);
}

static void
test_hdr_short(void)
{
	uint8_t good[PC_FRAME_HDR_SIZE];
	struct pc_frame_hdr h;

	hdr_bytes(good, PC_FRAME_MEMBERS, REPLY, 1, 100);
	for (size_t len = 0; len < PC_FRAME_HDR_SIZE; len++) {
		CU_ASSERT_EQUAL(hdr_decode_exact(good, len, &h), -EAGAIN);
	}
	/* Even garbage: too short to judge yet. */
	CU_ASSERT_EQUAL(hdr_decode_exact((const uint8_t *)"GET / HTTP/1.1\r\n", 16, &h), -EAGAIN);
	CU_ASSERT_EQUAL(pc_frame_hdr_decode(NULL, 0, &h), -EAGAIN);
	CU_ASSERT_EQUAL(hdr_decode_exact(good, PC_FRAME_HDR_SIZE, &h), 0);
	/* ... and once there are 24 bytes, the HTTP request is closed. */
	CU_ASSERT_EQUAL(hdr_decode_exact((const uint8_t *)"POST / HTTP/1.1\r\nHost: x\r\n", 24, &h),
			-EBADMSG);
}

/* The caps, computed by hand from the field caps; body_max is the largest direction. */
static void
test_body_caps(void)
{
	static const struct {
		uint8_t type;
		uint32_t req, reply, max;
	} want[] = {
		{PC_FRAME_PING, 0, 0, 133},
		{PC_FRAME_REGISTER, 868, 888844, 888844},
		{PC_FRAME_HEARTBEAT, 81, 9, 133},
		{PC_FRAME_MEMBERS, 0, 888844, 888844},
		{PC_FRAME_DIR_PUT, 45700, 516, 45700},
		{PC_FRAME_DIR_LOOKUP, 33156, 50820, 50820},
		{PC_FRAME_DIR_EXISTS, 33156, 132, 33156},
		{PC_FRAME_DIR_DELETE, 33156, 516, 33156},
		{PC_FRAME_DIR_DELETE_LOC, 43524, 516, 43524},
		{PC_FRAME_DEREGISTER, 81, 0, 133},
		{PC_FRAME_QP_CONNECT, 121, 56, 133},
	};

	CU_ASSERT_EQUAL(PC_FRAME_MEMBER_WIRE_MAX, 868);
	CU_ASSERT_EQUAL(PC_FRAME_LOC_WIRE_MAX, 98);
	CU_ASSERT_EQUAL(PC_FRAME_ERROR_BODY_MAX, 133);
	CU_ASSERT_EQUAL(PC_ARRAY_SIZE(want), PC_FRAME_TYPE__MAX - 1);
	for (size_t i = 0; i < PC_ARRAY_SIZE(want); i++) {
		CU_ASSERT_EQUAL(pc_frame_body_cap(want[i].type, REQ), want[i].req);
		CU_ASSERT_EQUAL(pc_frame_body_cap(want[i].type, REPLY), want[i].reply);
		CU_ASSERT_EQUAL(pc_frame_body_cap(want[i].type, ERROR), 133);
		CU_ASSERT_EQUAL(pc_frame_body_max(want[i].type), want[i].max);
		CU_ASSERT(pc_frame_body_max(want[i].type) <= PC_FRAME_BODY_MAX);
	}
	CU_ASSERT_EQUAL(pc_frame_body_cap(PC_FRAME_DIR_PUT, PC_FRAME_F_ERROR), 0);
	CU_ASSERT_EQUAL(pc_frame_body_cap(PC_FRAME_DIR_PUT, 0x0004), 0);
	CU_ASSERT_EQUAL(pc_frame_body_cap(0, REQ), 0);
	CU_ASSERT_EQUAL(pc_frame_body_cap(PC_FRAME_TYPE__MAX, REPLY), 0);
}

static void
test_type_names(void)
{
	CU_ASSERT_STRING_EQUAL(pc_frame_type_name(PC_FRAME_DIR_PUT), "dir-put");
	CU_ASSERT_STRING_EQUAL(pc_frame_type_name(PC_FRAME_PING), "ping");
	for (uint8_t a = 1; a < PC_FRAME_TYPE__MAX; a++) {
		for (uint8_t b = (uint8_t)(a + 1); b < PC_FRAME_TYPE__MAX; b++) {
			CU_ASSERT(strcmp(pc_frame_type_name(a), pc_frame_type_name(b)) != 0);
		}
	}
	CU_ASSERT_STRING_EQUAL(pc_frame_type_name(0), "unknown");
	CU_ASSERT_STRING_EQUAL(pc_frame_type_name(255), "unknown");
}

/* ---- every body, generically ---- */

/* At its caps each body encodes to exactly its direction's cap: the caps are true maxima. */
static void
test_bodies_at_cap(void)
{
	mk_inputs(V_MAX);
	for (size_t i = 0; i < PC_ARRAY_SIZE(g_cases); i++) {
		const struct body_case *c = &g_cases[i];
		uint32_t cap = pc_frame_body_cap(c->type, c->flags);
		uint8_t *buf = malloc(cap + 1);
		int len;

		CU_ASSERT_FATAL(buf != NULL);
		len = c->enc(buf, cap, V_MAX);
		if (len != (int)cap) {
			fprintf(stderr, "%s: %d bytes, cap %u\n", c->name, len, cap);
		}
		CU_ASSERT_EQUAL(len, (int)cap);
		CU_ASSERT(len >= 0 && (uint32_t)len <= pc_frame_body_max(c->type));
		CU_ASSERT_EQUAL(dec_exact(c->dec, buf, (size_t)len), 0);
		free(buf);
	}
}

/*
 * Which lengths to try of a body of len bytes: all of a small one; of one
 * at its caps, the first and last `ends` bytes and about 256 in between (a
 * member list at its cap is 868 KB: each try copies it).
 */
static bool
cut_wanted(size_t cut, size_t len, enum variant v, size_t ends)
{
	if (v != V_MAX || cut < ends || cut + ends >= len) {
		return true;
	}
	return cut % (len / 256 + 1) == 0;
}

static void
test_bodies_truncated(void)
{
	for (enum variant v = 0; v < V__COUNT; v++) {
		mk_inputs(v);
		for (size_t i = 0; i < PC_ARRAY_SIZE(g_cases); i++) {
			const struct body_case *c = &g_cases[i];
			size_t len = case_encode(c, v);
			size_t fails = 0;
			size_t tried = 0;

			CU_ASSERT_EQUAL(dec_exact(c->dec, g_body, len), 0);
			/* Every length of a small body; the ends and a stride of a body at cap. */
			for (size_t cut = 0; cut < len; cut++) {
				if (!cut_wanted(cut, len, v, len > 100000 ? 64 : 1024)) {
					continue;
				}
				tried++;
				fails += dec_exact(c->dec, g_body, cut) == -EBADMSG;
			}
			if (fails != tried) {
				fprintf(stderr, "%s: %zu of %zu cuts decoded\n", c->name,
					tried - fails, tried);
			}
			CU_ASSERT_EQUAL(fails, tried);
		}
	}
}

static void
test_bodies_trailing(void)
{
	for (enum variant v = 0; v < V__COUNT; v++) {
		mk_inputs(v);
		for (size_t i = 0; i < PC_ARRAY_SIZE(g_cases); i++) {
			const struct body_case *c = &g_cases[i];
			size_t len = case_encode(c, v);

			g_body[len] = 0;
			CU_ASSERT_EQUAL(dec_exact(c->dec, g_body, len + 1), -EBADMSG);
			g_body[len] = 0xff;
			CU_ASSERT_EQUAL(dec_exact(c->dec, g_body, len + 1), -EBADMSG);
			/* Another whole copy of the body after it is still trailing bytes. */
			if (len > 0 && 2 * len <= sizeof(g_body)) {
				memcpy(g_body + len, g_body, len);
				CU_ASSERT_EQUAL(dec_exact(c->dec, g_body, 2 * len), -EBADMSG);
			}
		}
	}
}

/* Too small a buffer: -ENOSPC, and nothing written at or past cap. */
static void
test_encoders_nospace(void)
{
	static uint8_t buf[TB_CAP + 64];

	for (enum variant v = 0; v < V__COUNT; v++) {
		mk_inputs(v);
		for (size_t i = 0; i < PC_ARRAY_SIZE(g_cases); i++) {
			const struct body_case *c = &g_cases[i];
			size_t len = case_encode(c, v);

			for (size_t cap = 0; cap < len; cap++) {
				if (!cut_wanted(cap, len, v, len > 100000 ? 64 : 256)) {
					continue;
				}
				memset(buf, 0xa5, cap + 64);
				CU_ASSERT_EQUAL(c->enc(buf, cap, v), -ENOSPC);
				CU_ASSERT_EQUAL(buf[cap], 0xa5);
				for (size_t j = cap; j < cap + 64; j++) {
					if (buf[j] != 0xa5) {
						CU_FAIL("encoder wrote past cap");
						break;
					}
				}
			}
			/* Exactly enough is enough, and gives the same bytes. */
			memset(buf, 0xa5, len + 64);
			CU_ASSERT_EQUAL(c->enc(buf, len, v), (int)len);
			CU_ASSERT_EQUAL(memcmp(buf, g_body, len), 0);
			CU_ASSERT_EQUAL(buf[len], 0xa5);
			/* A NULL buffer holds nothing. */
			CU_ASSERT_EQUAL(c->enc(NULL, 1 << 20, v), len == 0 ? 0 : -ENOSPC);
		}
	}
}

/* ---- each body: round trips against hand-built bytes ---- */

static void
test_member_round_trip(void)
{
	for (enum variant v = 0; v < V__COUNT; v++) {
		unsigned int n = variant_count(v, PC_FRAME_MEMBERS_MAX);
		uint64_t epoch = v == V_MAX ? UINT64_MAX : 42;
		struct tb t = tb_start();
		int len;

		mk_inputs(v);
		tb_u64(&t, epoch);
		tb_u32(&t, n);
		for (unsigned int i = 0; i < n; i++) {
			tb_member(&t, &g_members[i]);
		}
		len = pc_frame_enc_members(g_body, sizeof(g_body), epoch, g_members, n);
		CU_ASSERT_EQUAL_FATAL(len, (int)t.n);
		CU_ASSERT_EQUAL(memcmp(g_body, t.b, t.n), 0);

		memset(g_members_out, 0, sizeof(g_members_out));
		g_n_out = 9999;
		CU_ASSERT_EQUAL(pc_frame_dec_members(g_body, (size_t)len, &g_epoch_out,
						     g_members_out, PC_FRAME_MEMBERS_MAX, &g_n_out),
				0);
		CU_ASSERT_EQUAL(g_n_out, n);
		CU_ASSERT_EQUAL(g_epoch_out, epoch);
		CU_ASSERT_EQUAL(memcmp(g_members_out, g_members, n * sizeof(g_members[0])), 0);
		/* The caller's room: exactly n passes, n - 1 does not. */
		if (n > 0) {
			CU_ASSERT_EQUAL(pc_frame_dec_members(g_body, (size_t)len, &g_epoch_out,
							     g_members_out, n, &g_n_out),
					0);
			CU_ASSERT_EQUAL(pc_frame_dec_members(g_body, (size_t)len, &g_epoch_out,
							     g_members_out, n - 1, &g_n_out),
					-EBADMSG);
		}

		/* One member: the REGISTER request. */
		t = tb_start();
		tb_member(&t, &g_members[1]);
		len = pc_frame_enc_register(g_body, sizeof(g_body), &g_members[1]);
		CU_ASSERT_EQUAL_FATAL(len, (int)t.n);
		CU_ASSERT_EQUAL(memcmp(g_body, t.b, t.n), 0);
		memset(g_members_out, 0, sizeof(g_members_out[0]));
		CU_ASSERT_EQUAL(pc_frame_dec_register(g_body, (size_t)len, &g_members_out[0]), 0);
		CU_ASSERT_EQUAL(memcmp(&g_members_out[0], &g_members[1], sizeof(g_members[0])), 0);
	}
}

/* The layout itself, byte by byte, for one member: nothing reordered, nothing padded. */
static void
test_member_golden(void)
{
	static const uint8_t want[] = {
		1,    0,    'a',                         /* node_id */
		1,    2,    3,    4,   5,    6,    7, 8, /* incarnation */
		1,    1,                                 /* role storage, master */
		1,    0,    'h',                         /* hostname */
		2,    0,    'c',  'h', 0x58, 0x1b,       /* ctrl host, port 7000 */
		2,    0,    'd',  'h', 0x59, 0x1b,       /* data host, port 7001 */
		0x5a, 0x1b,                              /* meta port 7002 */
		0,    0,    0,    0,   1,    0,    0, 0, /* capacity 4 GiB */
		0,    0,    0x10, 0,   0,    0,    0, 0, /* used 1 MiB */
	};
	struct pc_frame_member m = {.node_id = "a",
				    .incarnation = 0x0807060504030201ull,
				    .role = PC_FRAME_ROLE_STORAGE,
				    .flags = PC_FRAME_MEMBER_F_MASTER,
				    .hostname = "h",
				    .ctrl_host = "ch",
				    .ctrl_port = 7000,
				    .data_host = "dh",
				    .data_port = 7001,
				    .meta_port = 7002,
				    .pool_capacity = 4ull << 30,
				    .pool_used = 1u << 20};
	struct pc_frame_member got;
	uint8_t buf[sizeof(want)];

	CU_ASSERT_EQUAL(sizeof(want), PC_FRAME_MEMBER_WIRE_MIN + 2);
	CU_ASSERT_EQUAL(pc_frame_enc_register(buf, sizeof(buf), &m), (int)sizeof(want));
	CU_ASSERT_EQUAL(memcmp(buf, want, sizeof(want)), 0);
	memset(&got, 0, sizeof(got));
	CU_ASSERT_EQUAL(dec_exact(dec_register, want, sizeof(want)), 0);
	CU_ASSERT_EQUAL(pc_frame_dec_register(want, sizeof(want), &got), 0);
	CU_ASSERT_EQUAL(memcmp(&got, &m, sizeof(m)), 0);
}

static void
test_heartbeat_round_trip(void)
{
	static const uint8_t want[] = {
		3,    0,    'n',  '-',  '1',                    /* node_id */
		0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01, /* incarnation */
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* pool used */
	};
	static const uint8_t want_reply[] = {9, 0, 0, 0, 0, 0, 0, 0x80, 1};
	struct pc_frame_heartbeat hb = {
		.node_id = "n-1", .incarnation = 0x0123456789abcdefull, .pool_used = UINT64_MAX};
	struct pc_frame_heartbeat got;
	uint8_t buf[PC_FRAME_HEARTBEAT_REQ_MAX];
	uint64_t epoch = 0;
	bool known = false;

	CU_ASSERT_EQUAL(pc_frame_enc_heartbeat(buf, sizeof(buf), &hb), (int)sizeof(want));
	CU_ASSERT_EQUAL(memcmp(buf, want, sizeof(want)), 0);
	memset(&got, 0, sizeof(got));
	CU_ASSERT_EQUAL(pc_frame_dec_heartbeat(want, sizeof(want), &got), 0);
	CU_ASSERT_EQUAL(memcmp(&got, &hb, sizeof(hb)), 0);

	CU_ASSERT_EQUAL(pc_frame_enc_heartbeat_reply(buf, sizeof(buf), 0x8000000000000009ull, true),
			(int)sizeof(want_reply));
	CU_ASSERT_EQUAL(memcmp(buf, want_reply, sizeof(want_reply)), 0);
	CU_ASSERT_EQUAL(
		pc_frame_dec_heartbeat_reply(want_reply, sizeof(want_reply), &epoch, &known), 0);
	CU_ASSERT_EQUAL(epoch, 0x8000000000000009ull);
	CU_ASSERT_TRUE(known);
	CU_ASSERT_EQUAL(pc_frame_enc_heartbeat_reply(buf, sizeof(buf), 5, false), 9);
	CU_ASSERT_EQUAL(buf[8], 0);
	CU_ASSERT_EQUAL(pc_frame_dec_heartbeat_reply(buf, 9, &epoch, &known), 0);
	CU_ASSERT_FALSE(known);
	CU_ASSERT_EQUAL(epoch, 5);
}

static void
test_dir_put_round_trip(void)
{
	static const uint8_t want_loc[] = {
		2,    0,    'n',  '2',              /* node_id */
		7,    0,    0,    0,    0, 0, 0, 0, /* incarnation */
		0,    0x10, 0,    0,    0, 0, 0, 0, /* offset 4096 */
		0,    0x20, 0,    0,                /* length 8192 */
		9,    0,    0,    0,    0, 0, 0, 0, /* generation */
		1,                                  /* tier disk */
		0x44, 0x33, 0x22, 0x11,             /* rkey */
	};
	struct pc_frame_put one = {.key = {.len = 3, .bytes = {'k', 0, 'x'}},
				   .loc = {.node_id = "n2",
					   .incarnation = 7,
					   .offset = 4096,
					   .length = 8192,
					   .generation = 9,
					   .tier = PC_FRAME_TIER_DISK,
					   .rkey = 0x11223344}};
	uint8_t buf[128];
	unsigned int n = 0;

	CU_ASSERT_EQUAL(sizeof(want_loc), PC_FRAME_LOC_WIRE_MIN + 1);
	CU_ASSERT_EQUAL(pc_frame_enc_dir_put(buf, sizeof(buf), &one, 1),
			(int)(4 + 5 + sizeof(want_loc)));
	CU_ASSERT_EQUAL(memcmp(buf, "\x01\x00\x00\x00\x03\x00k\x00x", 9), 0);
	CU_ASSERT_EQUAL(memcmp(buf + 9, want_loc, sizeof(want_loc)), 0);

	for (enum variant v = 0; v < V__COUNT; v++) {
		unsigned int cnt = variant_count(v, PC_FRAME_BATCH_MAX);
		struct tb t = tb_start();
		int len;

		mk_inputs(v);
		tb_u32(&t, cnt);
		for (unsigned int i = 0; i < cnt; i++) {
			tb_key(&t, &g_puts[i].key);
			tb_location(&t, &g_puts[i].loc);
		}
		len = pc_frame_enc_dir_put(g_body, sizeof(g_body), g_puts, cnt);
		CU_ASSERT_EQUAL_FATAL(len, (int)t.n);
		CU_ASSERT_EQUAL(memcmp(g_body, t.b, t.n), 0);
		memset(g_puts_out, 0, sizeof(g_puts_out));
		CU_ASSERT_EQUAL(pc_frame_dec_dir_put(t.b, t.n, g_puts_out, PC_FRAME_BATCH_MAX, &n),
				0);
		CU_ASSERT_EQUAL(n, cnt);
		CU_ASSERT_EQUAL(memcmp(g_puts_out, g_puts, cnt * sizeof(g_puts[0])), 0);
	}
}

static void
test_dir_keys_round_trip(void)
{
	unsigned int n = 0;

	for (enum variant v = 0; v < V__COUNT; v++) {
		unsigned int cnt = variant_count(v, PC_FRAME_BATCH_MAX);
		struct tb t = tb_start();
		int len;

		mk_inputs(v);
		tb_u32(&t, cnt);
		for (unsigned int i = 0; i < cnt; i++) {
			tb_key(&t, &g_keys[i]);
		}
		len = pc_frame_enc_dir_keys(g_body, sizeof(g_body), g_keys, cnt);
		CU_ASSERT_EQUAL_FATAL(len, (int)t.n);
		CU_ASSERT_EQUAL(memcmp(g_body, t.b, t.n), 0);
		memset(g_keys_out, 0, sizeof(g_keys_out));
		CU_ASSERT_EQUAL(pc_frame_dec_dir_keys(t.b, t.n, g_keys_out, PC_FRAME_BATCH_MAX, &n),
				0);
		CU_ASSERT_EQUAL(n, cnt);
		CU_ASSERT_EQUAL(memcmp(g_keys_out, g_keys, cnt * sizeof(g_keys[0])), 0);
	}
}

static void
test_dir_delete_loc_round_trip(void)
{
	unsigned int n = 0;

	for (enum variant v = 0; v < V__COUNT; v++) {
		unsigned int cnt = variant_count(v, PC_FRAME_BATCH_MAX);
		struct tb t = tb_start();
		int len;

		mk_inputs(v);
		tb_u32(&t, cnt);
		for (unsigned int i = 0; i < cnt; i++) {
			tb_key(&t, &g_dels[i].key);
			tb_cstr(&t, g_dels[i].node_id);
			tb_u64(&t, g_dels[i].incarnation);
			tb_u64(&t, g_dels[i].generation);
		}
		len = pc_frame_enc_dir_delete_loc(g_body, sizeof(g_body), g_dels, cnt);
		CU_ASSERT_EQUAL_FATAL(len, (int)t.n);
		CU_ASSERT_EQUAL(memcmp(g_body, t.b, t.n), 0);
		memset(g_dels_out, 0, sizeof(g_dels_out));
		CU_ASSERT_EQUAL(
			pc_frame_dec_dir_delete_loc(t.b, t.n, g_dels_out, PC_FRAME_BATCH_MAX, &n),
			0);
		CU_ASSERT_EQUAL(n, cnt);
		CU_ASSERT_EQUAL(memcmp(g_dels_out, g_dels, cnt * sizeof(g_dels[0])), 0);
	}
}

/*
 * The generation is the entry's last field: the layout before it (no
 * generation) is refused, not read as generation 0 ("any"), which would
 * widen a reader's repair into removing the node's newer location.
 */
static void
test_dir_delete_loc_generation(void)
{
	struct pc_frame_key k1 = {.len = 1, .bytes = {'k'}};
	unsigned int n = 0;
	struct tb t;

	t = tb_start();
	tb_u32(&t, 1);
	tb_key(&t, &k1);
	tb_cstr(&t, "node-a");
	tb_u64(&t, 7);
	CU_ASSERT_EQUAL(pc_frame_dec_dir_delete_loc(t.b, t.n, g_dels_out, 1, &n), -EBADMSG);
	/* Two entries, the first without its generation: the second cannot make up for it. */
	t = tb_start();
	tb_u32(&t, 2);
	tb_key(&t, &k1);
	tb_cstr(&t, "node-a");
	tb_u64(&t, 7);
	tb_key(&t, &k1);
	tb_cstr(&t, "node-b");
	tb_u64(&t, 8);
	tb_u64(&t, 9);
	CU_ASSERT_EQUAL(pc_frame_dec_dir_delete_loc(t.b, t.n, g_dels_out, 2, &n), -EBADMSG);

	t = tb_start();
	tb_u32(&t, 2);
	tb_key(&t, &k1);
	tb_cstr(&t, "node-a");
	tb_u64(&t, 7);
	tb_u64(&t, 0);
	tb_key(&t, &k1);
	tb_cstr(&t, "node-a");
	tb_u64(&t, 7);
	tb_u64(&t, 0x0102030405060708ull);
	CU_ASSERT_EQUAL(t.n, 4 + 2 * PC_FRAME_DELLOC_WIRE_MIN + 2 * 5);
	memset(g_dels_out, 0x5a, 2 * sizeof(g_dels_out[0]));
	CU_ASSERT_EQUAL_FATAL(pc_frame_dec_dir_delete_loc(t.b, t.n, g_dels_out, 2, &n), 0);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_STRING_EQUAL(g_dels_out[0].node_id, "node-a");
	CU_ASSERT_EQUAL(g_dels_out[0].incarnation, 7);
	CU_ASSERT_EQUAL(g_dels_out[0].generation, 0);
	CU_ASSERT_EQUAL(g_dels_out[1].generation, 0x0102030405060708ull);
	/* It re-encodes to the same bytes, little-endian. */
	CU_ASSERT_EQUAL(pc_frame_enc_dir_delete_loc(g_body, sizeof(g_body), g_dels_out, 2),
			(int)t.n);
	CU_ASSERT_EQUAL(memcmp(g_body, t.b, t.n), 0);
	CU_ASSERT_EQUAL(g_body[t.n - 8], 0x08);
	CU_ASSERT_EQUAL(g_body[t.n - 1], 0x01);
}

static void
test_dir_replies_round_trip(void)
{
	unsigned int n = 0;

	for (enum variant v = 0; v < V__COUNT; v++) {
		unsigned int cnt = variant_count(v, PC_FRAME_BATCH_MAX);
		struct tb t = tb_start();
		int len;

		mk_inputs(v);
		/* Statuses. */
		tb_u32(&t, cnt);
		for (unsigned int i = 0; i < cnt; i++) {
			tb_u32(&t, (uint32_t)g_status[i]);
		}
		len = pc_frame_enc_dir_status(g_body, sizeof(g_body), g_status, cnt);
		CU_ASSERT_EQUAL_FATAL(len, (int)t.n);
		CU_ASSERT_EQUAL(memcmp(g_body, t.b, t.n), 0);
		memset(g_status_out, 0x55, sizeof(g_status_out));
		CU_ASSERT_EQUAL(
			pc_frame_dec_dir_status(t.b, t.n, g_status_out, PC_FRAME_BATCH_MAX, &n), 0);
		CU_ASSERT_EQUAL(n, cnt);
		CU_ASSERT_EQUAL(memcmp(g_status_out, g_status, cnt * sizeof(g_status[0])), 0);

		/* Presence. */
		t = tb_start();
		tb_u32(&t, cnt);
		for (unsigned int i = 0; i < cnt; i++) {
			tb_u8(&t, g_present[i] ? 1 : 0);
		}
		len = pc_frame_enc_dir_exists_reply(g_body, sizeof(g_body), g_present, cnt);
		CU_ASSERT_EQUAL_FATAL(len, (int)t.n);
		CU_ASSERT_EQUAL(memcmp(g_body, t.b, t.n), 0);
		memset(g_present_out, 0, sizeof(g_present_out));
		CU_ASSERT_EQUAL(pc_frame_dec_dir_exists_reply(t.b, t.n, g_present_out,
							      PC_FRAME_BATCH_MAX, &n),
				0);
		CU_ASSERT_EQUAL(n, cnt);
		CU_ASSERT_EQUAL(memcmp(g_present_out, g_present, cnt * sizeof(g_present[0])), 0);

		/* Lookups. */
		t = tb_start();
		tb_u32(&t, cnt);
		for (unsigned int i = 0; i < cnt; i++) {
			tb_u32(&t, (uint32_t)g_lookups[i].status);
			tb_u8(&t, g_lookups[i].nloc);
			for (unsigned int j = 0; j < g_lookups[i].nloc; j++) {
				tb_location(&t, &g_lookups[i].loc[j]);
			}
		}
		len = pc_frame_enc_dir_lookup_reply(g_body, sizeof(g_body), g_lookups, cnt);
		CU_ASSERT_EQUAL_FATAL(len, (int)t.n);
		CU_ASSERT_EQUAL(memcmp(g_body, t.b, t.n), 0);
		memset(g_lookups_out, 0, sizeof(g_lookups_out));
		CU_ASSERT_EQUAL(pc_frame_dec_dir_lookup_reply(t.b, t.n, g_lookups_out,
							      PC_FRAME_BATCH_MAX, &n),
				0);
		CU_ASSERT_EQUAL(n, cnt);
		CU_ASSERT_EQUAL(memcmp(g_lookups_out, g_lookups, cnt * sizeof(g_lookups[0])), 0);
	}
}

static void
test_error_round_trip(void)
{
	char longer[300];
	struct pc_frame_error e;
	struct tb t = tb_start();
	uint8_t buf[PC_FRAME_ERROR_BODY_MAX];
	int len;

	tb_u32(&t, (uint32_t)-ENOENT);
	tb_cstr(&t, "no such key");
	len = pc_frame_enc_error(buf, sizeof(buf), -ENOENT, "no such key");
	CU_ASSERT_EQUAL_FATAL(len, (int)t.n);
	CU_ASSERT_EQUAL(memcmp(buf, t.b, t.n), 0);
	memset(&e, 0x55, sizeof(e));
	CU_ASSERT_EQUAL(pc_frame_dec_error(buf, (size_t)len, &e), 0);
	CU_ASSERT_EQUAL(e.status, -ENOENT);
	CU_ASSERT_STRING_EQUAL(e.msg, "no such key");

	/* NULL is an empty message. */
	CU_ASSERT_EQUAL(pc_frame_enc_error(buf, sizeof(buf), -EIO, NULL), 6);
	CU_ASSERT_EQUAL(pc_frame_dec_error(buf, 6, &e), 0);
	CU_ASSERT_STRING_EQUAL(e.msg, "");
	CU_ASSERT_EQUAL(e.status, -EIO);

	/* A long message with control bytes: cut to the cap, made printable, and it decodes. */
	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	longer[0] = '\n';
	longer[126] = '\x7f';
	longer[127] = '\t';
	CU_ASSERT_EQUAL(pc_frame_enc_error(buf, sizeof(buf), -E2BIG, longer),
			(int)PC_FRAME_ERROR_BODY_MAX);
	CU_ASSERT_EQUAL(pc_frame_dec_error(buf, PC_FRAME_ERROR_BODY_MAX, &e), 0);
	CU_ASSERT_EQUAL(strlen(e.msg), PC_FRAME_ERRMSG_MAX);
	CU_ASSERT_EQUAL(e.msg[0], '?');
	CU_ASSERT_EQUAL(e.msg[1], 'x');
	CU_ASSERT_EQUAL(e.msg[126], '?');

	/* The status is -1..-4095. */
	CU_ASSERT_EQUAL(pc_frame_enc_error(buf, sizeof(buf), -1, "x"), 7);
	CU_ASSERT_EQUAL(pc_frame_enc_error(buf, sizeof(buf), -4095, "x"), 7);
	CU_ASSERT_EQUAL(pc_frame_enc_error(buf, sizeof(buf), 0, "x"), -EINVAL);
	CU_ASSERT_EQUAL(pc_frame_enc_error(buf, sizeof(buf), 1, "x"), -EINVAL);
	CU_ASSERT_EQUAL(pc_frame_enc_error(buf, sizeof(buf), -4096, "x"), -EINVAL);
	CU_ASSERT_EQUAL(pc_frame_enc_error(buf, sizeof(buf), INT32_MIN, "x"), -EINVAL);
}

/* ---- caps: exactly the cap passes, one more fails, both ways ---- */

/* A heartbeat body with a node id of n bytes of c. */
static size_t
hb_body(uint8_t *out, size_t n, char c)
{
	struct tb t = tb_start();
	char id[PC_FRAME_NODE_ID_MAX + 2];

	memset(id, c, n);
	tb_str(&t, id, n);
	tb_u64(&t, 1);
	tb_u64(&t, 2);
	memcpy(out, t.b, t.n);
	return t.n;
}

static int
dec_hb(const uint8_t *b, size_t len)
{
	struct pc_frame_heartbeat hb;

	return pc_frame_dec_heartbeat(b, len, &hb);
}

static void
test_string_caps(void)
{
	static uint8_t body[2048];
	struct pc_frame_heartbeat hb = {.incarnation = 1};
	struct pc_frame_member m;
	struct pc_frame_key k;
	struct tb t;
	char msg[PC_FRAME_ERRMSG_MAX + 2];
	size_t len;

	/* Node id: 63 passes, 64 fails; an unterminated field is refused, not overrun. */
	memset(hb.node_id, 'n', PC_FRAME_NODE_ID_MAX);
	hb.node_id[PC_FRAME_NODE_ID_MAX] = '\0';
	CU_ASSERT_EQUAL(pc_frame_enc_heartbeat(body, sizeof(body), &hb), 81);
	hb.node_id[PC_FRAME_NODE_ID_MAX] = 'n';
	CU_ASSERT_EQUAL(pc_frame_enc_heartbeat(body, sizeof(body), &hb), -EINVAL);
	len = hb_body(body, PC_FRAME_NODE_ID_MAX, 'n');
	CU_ASSERT_EQUAL(dec_exact(dec_hb, body, len), 0);
	len = hb_body(body, PC_FRAME_NODE_ID_MAX + 1, 'n');
	CU_ASSERT_EQUAL(dec_exact(dec_hb, body, len), -EBADMSG);
	len = hb_body(body, 1, 'n');
	CU_ASSERT_EQUAL(dec_exact(dec_hb, body, len), 0);
	/* Empty, and bytes outside [A-Za-z0-9._-]. */
	len = hb_body(body, 0, 'n');
	CU_ASSERT_EQUAL(dec_exact(dec_hb, body, len), -EBADMSG);
	hb.node_id[0] = '\0';
	CU_ASSERT_EQUAL(pc_frame_enc_heartbeat(body, sizeof(body), &hb), -EINVAL);
	for (int c = 0; c < 256; c++) {
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';

		len = hb_body(body, 5, (char)c);
		CU_ASSERT_EQUAL(dec_exact(dec_hb, body, len), ok ? 0 : -EBADMSG);
		if (c != 0) {
			memset(hb.node_id, c, 5);
			hb.node_id[5] = '\0';
			CU_ASSERT_EQUAL(pc_frame_enc_heartbeat(body, sizeof(body), &hb),
					ok ? 23 : -EINVAL);
		}
	}

	/* Host names: 255 passes, 256 fails; empty, a space or a NUL fails. */
	mk_member(&m, 1, true);
	CU_ASSERT_EQUAL(pc_frame_enc_register(body, sizeof(body), &m), 868);
	m.data_host[PC_FRAME_HOST_MAX] = 'h';
	CU_ASSERT_EQUAL(pc_frame_enc_register(body, sizeof(body), &m), -EINVAL);
	for (int what = 0; what < 4; what++) {
		mk_member(&m, 1, false);
		t = tb_start();
		tb_cstr(&t, m.node_id);
		tb_u64(&t, m.incarnation);
		tb_u8(&t, m.role);
		tb_u8(&t, m.flags);
		if (what == 0) {
			char host[PC_FRAME_HOST_MAX + 1];

			memset(host, 'h', sizeof(host));
			tb_str(&t, host, PC_FRAME_HOST_MAX + 1);
		} else {
			tb_str(&t, what == 1 ? "" : what == 2 ? "a b" : "a\0b", what == 1 ? 0 : 3);
		}
		tb_cstr(&t, m.ctrl_host);
		tb_u16(&t, m.ctrl_port);
		tb_cstr(&t, m.data_host);
		tb_u16(&t, m.data_port);
		tb_u16(&t, m.meta_port);
		tb_u64(&t, m.pool_capacity);
		tb_u64(&t, m.pool_used);
		CU_ASSERT_EQUAL(dec_exact(dec_register, t.b, t.n), -EBADMSG);
	}
	mk_member(&m, 1, false);
	strcpy(m.ctrl_host, "a b");
	CU_ASSERT_EQUAL(pc_frame_enc_register(body, sizeof(body), &m), -EINVAL);
	m.ctrl_host[0] = '\0';
	CU_ASSERT_EQUAL(pc_frame_enc_register(body, sizeof(body), &m), -EINVAL);

	/* Keys: 257 passes, 258 fails, 0 fails; any byte values. */
	memset(&k, 0, sizeof(k));
	k.len = PC_FRAME_KEY_MAX;
	CU_ASSERT_EQUAL(pc_frame_enc_dir_keys(body, sizeof(body), &k, 1), 4 + 2 + 257);
	CU_ASSERT_EQUAL(dec_exact(dec_dir_keys, body, 4 + 2 + 257), 0);
	k.len = PC_FRAME_KEY_MAX + 1;
	CU_ASSERT_EQUAL(pc_frame_enc_dir_keys(body, sizeof(body), &k, 1), -EINVAL);
	k.len = 0;
	CU_ASSERT_EQUAL(pc_frame_enc_dir_keys(body, sizeof(body), &k, 1), -EINVAL);
	t = tb_start();
	tb_u32(&t, 1);
	tb_u16(&t, PC_FRAME_KEY_MAX + 1);
	for (int i = 0; i < PC_FRAME_KEY_MAX + 1; i++) {
		tb_u8(&t, 0);
	}
	CU_ASSERT_EQUAL(dec_exact(dec_dir_keys, t.b, t.n), -EBADMSG);
	t = tb_start();
	tb_u32(&t, 1);
	tb_u16(&t, 0);
	CU_ASSERT_EQUAL(dec_exact(dec_dir_keys, t.b, t.n), -EBADMSG);

	/* Error messages: 127 passes, 128 fails to decode; a control byte fails. */
	memset(msg, 'm', sizeof(msg));
	for (size_t n = PC_FRAME_ERRMSG_MAX; n <= PC_FRAME_ERRMSG_MAX + 1; n++) {
		t = tb_start();
		tb_u32(&t, (uint32_t)-EIO);
		tb_str(&t, msg, n);
		CU_ASSERT_EQUAL(dec_exact(dec_error, t.b, t.n),
				n <= PC_FRAME_ERRMSG_MAX ? 0 : -EBADMSG);
	}
	for (int c = 0; c < 256; c++) {
		char one = (char)c;

		t = tb_start();
		tb_u32(&t, (uint32_t)-EIO);
		tb_str(&t, &one, 1);
		CU_ASSERT_EQUAL(dec_exact(dec_error, t.b, t.n),
				c >= 0x20 && c <= 0x7e ? 0 : -EBADMSG);
	}
}

/* Body of `n` statuses (0), with the count field saying `count`. */
static size_t
status_body(uint8_t *out, uint32_t count, unsigned int n)
{
	struct tb t = tb_start();

	tb_u32(&t, count);
	for (unsigned int i = 0; i < n; i++) {
		tb_u32(&t, 0);
	}
	memcpy(out, t.b, t.n);
	return t.n;
}

static void
test_count_caps(void)
{
	static uint8_t body[8192];
	unsigned int n;
	size_t len;
	struct tb t;

	mk_inputs(V_SMALL);
	/* Batches: 128 pass, 129 fail (encoders and decoders of every kind). */
	CU_ASSERT(pc_frame_enc_dir_status(g_body, sizeof(g_body), g_status, 128) > 0);
	CU_ASSERT_EQUAL(pc_frame_enc_dir_status(g_body, sizeof(g_body), g_status, 129), -EINVAL);
	CU_ASSERT(pc_frame_enc_dir_keys(g_body, sizeof(g_body), g_keys, 128) > 0);
	CU_ASSERT_EQUAL(pc_frame_enc_dir_keys(g_body, sizeof(g_body), g_keys, 129), -EINVAL);
	CU_ASSERT(pc_frame_enc_dir_put(g_body, sizeof(g_body), g_puts, 128) > 0);
	CU_ASSERT_EQUAL(pc_frame_enc_dir_put(g_body, sizeof(g_body), g_puts, 129), -EINVAL);
	CU_ASSERT(pc_frame_enc_dir_delete_loc(g_body, sizeof(g_body), g_dels, 128) > 0);
	CU_ASSERT_EQUAL(pc_frame_enc_dir_delete_loc(g_body, sizeof(g_body), g_dels, 129), -EINVAL);
	CU_ASSERT(pc_frame_enc_dir_lookup_reply(g_body, sizeof(g_body), g_lookups, 128) > 0);
	CU_ASSERT_EQUAL(pc_frame_enc_dir_lookup_reply(g_body, sizeof(g_body), g_lookups, 129),
			-EINVAL);
	CU_ASSERT(pc_frame_enc_dir_exists_reply(g_body, sizeof(g_body), g_present, 128) > 0);
	CU_ASSERT_EQUAL(pc_frame_enc_dir_exists_reply(g_body, sizeof(g_body), g_present, 129),
			-EINVAL);
	len = status_body(body, 128, 128);
	CU_ASSERT_EQUAL(dec_exact(dec_dir_status, body, len), 0);
	len = status_body(body, 129, 129);
	CU_ASSERT_EQUAL(dec_exact(dec_dir_status, body, len), -EBADMSG);
	t = tb_start();
	tb_u32(&t, 129);
	for (int i = 0; i < 129; i++) {
		tb_u8(&t, 1);
	}
	CU_ASSERT_EQUAL(dec_exact(dec_dir_exists_reply, t.b, t.n), -EBADMSG);
	t = tb_start();
	tb_u32(&t, 129);
	for (int i = 0; i < 129; i++) {
		tb_key(&t, &g_keys[0]);
	}
	CU_ASSERT_EQUAL(dec_exact(dec_dir_keys, t.b, t.n), -EBADMSG);

	/* The type's cap holds even when the caller has room for more. */
	len = status_body(body, 129, 129);
	CU_ASSERT_EQUAL(pc_frame_dec_dir_status(body, len, g_status_out, 129, &n), -EBADMSG);
	t = tb_start();
	tb_u32(&t, 129);
	for (int i = 0; i < 129; i++) {
		tb_u8(&t, 1);
	}
	CU_ASSERT_EQUAL(pc_frame_dec_dir_exists_reply(t.b, t.n, g_present_out, 129, &n), -EBADMSG);
	t = tb_start();
	tb_u32(&t, 129);
	for (int i = 0; i < 129; i++) {
		tb_key(&t, &g_keys[i]);
	}
	CU_ASSERT_EQUAL(pc_frame_dec_dir_keys(t.b, t.n, g_keys_out, 129, &n), -EBADMSG);
	t.n = 0;
	tb_u32(&t, 128);
	for (int i = 0; i < 128; i++) {
		tb_key(&t, &g_keys[i]);
	}
	CU_ASSERT_EQUAL(pc_frame_dec_dir_keys(t.b, t.n, g_keys_out, 129, &n), 0);
	t = tb_start();
	tb_u32(&t, 129);
	for (int i = 0; i < 129; i++) {
		tb_key(&t, &g_puts[i].key);
		tb_location(&t, &g_puts[i].loc);
	}
	CU_ASSERT_EQUAL(pc_frame_dec_dir_put(t.b, t.n, g_puts_out, 129, &n), -EBADMSG);
	t = tb_start();
	tb_u32(&t, 129);
	for (int i = 0; i < 129; i++) {
		tb_key(&t, &g_dels[i].key);
		tb_cstr(&t, g_dels[i].node_id);
		tb_u64(&t, g_dels[i].incarnation);
		tb_u64(&t, g_dels[i].generation);
	}
	CU_ASSERT_EQUAL(pc_frame_dec_dir_delete_loc(t.b, t.n, g_dels_out, 129, &n), -EBADMSG);
	t = tb_start();
	tb_u32(&t, 129);
	for (int i = 0; i < 129; i++) {
		tb_u32(&t, (uint32_t)-ENOENT);
		tb_u8(&t, 0);
	}
	CU_ASSERT_EQUAL(pc_frame_dec_dir_lookup_reply(t.b, t.n, g_lookups_out, 129, &n), -EBADMSG);

	/* Members: 1024 pass (test_bodies_at_cap), 1025 fail. */
	CU_ASSERT_EQUAL(pc_frame_enc_members(g_body, sizeof(g_body), 1, g_members, 1025), -EINVAL);
	t = tb_start();
	tb_u64(&t, 1);
	tb_u32(&t, 1025);
	for (unsigned int i = 0; i < 1025; i++) {
		tb_member(&t, &g_members[i]);
	}
	CU_ASSERT_EQUAL(dec_exact(dec_members, t.b, t.n), -EBADMSG);
	CU_ASSERT_EQUAL(pc_frame_dec_members(t.b, t.n, &g_epoch_out, g_members_out, 1025, &n),
			-EBADMSG);
	/* ... and the same 1025 less the last one pass: the count was what failed. */
	t.n = 0;
	tb_u64(&t, 1);
	tb_u32(&t, 1024);
	for (unsigned int i = 0; i < 1024; i++) {
		tb_member(&t, &g_members[i]);
	}
	CU_ASSERT_EQUAL(dec_exact(dec_members, t.b, t.n), 0);

	/* Locations per key: 4 pass, 5 fail. */
	g_lookups[0].status = 0;
	g_lookups[0].nloc = PC_FRAME_LOCS_MAX;
	for (unsigned int j = 0; j < PC_FRAME_LOCS_MAX; j++) {
		mk_location(&g_lookups[0].loc[j], j, false);
	}
	CU_ASSERT(pc_frame_enc_dir_lookup_reply(g_body, sizeof(g_body), g_lookups, 1) > 0);
	g_lookups[0].nloc = PC_FRAME_LOCS_MAX + 1;
	CU_ASSERT_EQUAL(pc_frame_enc_dir_lookup_reply(g_body, sizeof(g_body), g_lookups, 1),
			-EINVAL);
	for (unsigned int nloc = 4; nloc <= 5; nloc++) {
		t = tb_start();
		tb_u32(&t, 1);
		tb_u32(&t, 0);
		tb_u8(&t, (uint8_t)nloc);
		for (unsigned int j = 0; j < nloc; j++) {
			tb_location(&t, &g_lookups[0].loc[j % 4]);
		}
		CU_ASSERT_EQUAL(dec_exact(dec_dir_lookup_reply, t.b, t.n),
				nloc == 4 ? 0 : -EBADMSG);
	}

	/* The caller's room: a reply with more than it asked for. */
	len = status_body(body, 10, 10);
	CU_ASSERT_EQUAL(pc_frame_dec_dir_status(body, len, g_status_out, 10, &n), 0);
	CU_ASSERT_EQUAL(n, 10);
	CU_ASSERT_EQUAL(pc_frame_dec_dir_status(body, len, g_status_out, 9, &n), -EBADMSG);

	/* NULL arrays with entries are caller bugs. */
	CU_ASSERT_EQUAL(pc_frame_enc_dir_keys(g_body, sizeof(g_body), NULL, 1), -EINVAL);
	CU_ASSERT_EQUAL(pc_frame_enc_dir_keys(g_body, sizeof(g_body), NULL, 0), 4);
	CU_ASSERT_EQUAL(pc_frame_enc_members(g_body, sizeof(g_body), 1, NULL, 2), -EINVAL);
}

/*
 * A count the body cannot hold is refused before the loop: the outputs keep
 * their poison. Each body has (count - 1) entries of the smallest encoding.
 */
static void
test_count_vs_body(void)
{
	static const uint32_t counts[] = {2, 3, 128, 1024, 0x7fffffffu, 0xffffffffu};
	struct pc_frame_key k1 = {.len = 1, .bytes = {'k'}};
	unsigned int n;
	struct tb t;

	for (size_t c = 0; c < PC_ARRAY_SIZE(counts); c++) {
		uint32_t count = counts[c];
		unsigned int have = count - 1 > 8 ? 8 : count - 1;

		/* Keys (3 bytes at least). */
		t = tb_start();
		tb_u32(&t, count);
		for (unsigned int i = 0; i < have; i++) {
			tb_key(&t, &k1);
		}
		memset(g_keys_out, 0x5a, sizeof(g_keys_out));
		CU_ASSERT_EQUAL(pc_frame_dec_dir_keys(t.b, t.n, g_keys_out, UINT32_MAX, &n),
				-EBADMSG);
		CU_ASSERT_EQUAL(g_keys_out[0].len, 0x5a5a);

		/* Statuses (4 bytes each). */
		t = tb_start();
		tb_u32(&t, count);
		for (unsigned int i = 0; i < have; i++) {
			tb_u32(&t, 0);
		}
		memset(g_status_out, 0x5a, sizeof(g_status_out));
		CU_ASSERT_EQUAL(pc_frame_dec_dir_status(t.b, t.n, g_status_out, UINT32_MAX, &n),
				-EBADMSG);
		CU_ASSERT_EQUAL(g_status_out[0], 0x5a5a5a5a);

		/* Members (44 bytes at least): the smallest member, have times. */
		t = tb_start();
		tb_u64(&t, 1);
		tb_u32(&t, count);
		for (unsigned int i = 0; i < have; i++) {
			struct pc_frame_member m = {
				.hostname = "h", .ctrl_host = "c", .data_host = "d"};

			m.node_id[0] = (char)('a' + i);
			tb_member(&t, &m);
		}
		CU_ASSERT_EQUAL(t.n, 12 + have * PC_FRAME_MEMBER_WIRE_MIN);
		memset(g_members_out, 0x5a, sizeof(g_members_out[0]));
		CU_ASSERT_EQUAL(
			pc_frame_dec_members(t.b, t.n, &g_epoch_out, g_members_out, UINT32_MAX, &n),
			-EBADMSG);
		CU_ASSERT_EQUAL(g_members_out[0].node_id[0], 0x5a);

		/* Lookup entries (5 bytes at least). */
		t = tb_start();
		tb_u32(&t, count);
		for (unsigned int i = 0; i < have; i++) {
			tb_u32(&t, (uint32_t)-ENOENT);
			tb_u8(&t, 0);
		}
		memset(g_lookups_out, 0x5a, sizeof(g_lookups_out[0]));
		CU_ASSERT_EQUAL(
			pc_frame_dec_dir_lookup_reply(t.b, t.n, g_lookups_out, UINT32_MAX, &n),
			-EBADMSG);
		CU_ASSERT_EQUAL(g_lookups_out[0].nloc, 0x5a);

		/* Puts (39 bytes at least) and delete-locs (22 at least). */
		t = tb_start();
		tb_u32(&t, count);
		for (unsigned int i = 0; i < have; i++) {
			struct pc_frame_location l = {.node_id = "n", .length = 1};

			tb_key(&t, &k1);
			tb_location(&t, &l);
		}
		memset(g_puts_out, 0x5a, sizeof(g_puts_out[0]));
		CU_ASSERT_EQUAL(pc_frame_dec_dir_put(t.b, t.n, g_puts_out, UINT32_MAX, &n),
				-EBADMSG);
		CU_ASSERT_EQUAL(g_puts_out[0].key.len, 0x5a5a);
		t = tb_start();
		tb_u32(&t, count);
		for (unsigned int i = 0; i < have; i++) {
			tb_key(&t, &k1);
			tb_cstr(&t, "n");
			tb_u64(&t, 1);
			tb_u64(&t, 2);
		}
		memset(g_dels_out, 0x5a, sizeof(g_dels_out[0]));
		CU_ASSERT_EQUAL(pc_frame_dec_dir_delete_loc(t.b, t.n, g_dels_out, UINT32_MAX, &n),
				-EBADMSG);
		CU_ASSERT_EQUAL(g_dels_out[0].key.len, 0x5a5a);

		/* Flags (1 byte each). */
		t = tb_start();
		tb_u32(&t, count);
		for (unsigned int i = 0; i < have; i++) {
			tb_u8(&t, 0);
		}
		memset(g_present_out, 1, sizeof(g_present_out));
		CU_ASSERT_EQUAL(
			pc_frame_dec_dir_exists_reply(t.b, t.n, g_present_out, UINT32_MAX, &n),
			-EBADMSG);
		CU_ASSERT_EQUAL(g_present_out[0], true);
	}
	/* The minimums are real minimums: exactly count of them decode. */
	t = tb_start();
	tb_u32(&t, 2);
	tb_key(&t, &k1);
	tb_key(&t, &k1);
	CU_ASSERT_EQUAL(dec_exact(dec_dir_keys, t.b, t.n), 0);
}

/* ---- field rules ---- */

/* Encode a REGISTER of m, patch byte `off` to `val`, decode. */
static int
member_patched(const struct pc_frame_member *m, size_t off, uint8_t val)
{
	uint8_t buf[PC_FRAME_MEMBER_WIRE_MAX];
	int len = pc_frame_enc_register(buf, sizeof(buf), m);

	CU_ASSERT_FATAL(len > 0 && off < (size_t)len);
	if (len <= 0 || off >= (size_t)len) {
		return 1; /* not reached: the assertion above ends the test */
	}
	buf[off] = val;
	return dec_exact(dec_register, buf, (size_t)len);
}

static void
test_field_rules(void)
{
	struct pc_frame_member m;
	struct pc_frame_lookup e;
	struct pc_frame_put p;
	int32_t st;
	bool present[2] = {true, false};
	uint8_t buf[4096];
	size_t role_off;
	struct tb t;
	int len;

	/* Member role 0..2, flags bit 0 only. */
	mk_member(&m, 1, false);
	role_off = 2 + strlen(m.node_id) + 8;
	for (int role = 0; role < 256; role++) {
		CU_ASSERT_EQUAL(member_patched(&m, role_off, (uint8_t)role),
				role <= PC_FRAME_ROLE_META ? 0 : -EBADMSG);
	}
	for (int flags = 0; flags < 256; flags++) {
		CU_ASSERT_EQUAL(member_patched(&m, role_off + 1, (uint8_t)flags),
				flags <= 1 ? 0 : -EBADMSG);
	}
	m.role = 3;
	CU_ASSERT_EQUAL(pc_frame_enc_register(buf, sizeof(buf), &m), -EINVAL);
	m.role = 2;
	m.flags = 2;
	CU_ASSERT_EQUAL(pc_frame_enc_register(buf, sizeof(buf), &m), -EINVAL);

	/* A member list names each node once. */
	mk_member(&g_members[0], 1, false);
	mk_member(&g_members[1], 2, false);
	mk_member(&g_members[2], 1, false);
	g_members[2].incarnation++;
	CU_ASSERT_EQUAL(pc_frame_enc_members(buf, sizeof(buf), 1, g_members, 2), 12 + 2 * 86);
	CU_ASSERT_EQUAL(pc_frame_enc_members(buf, sizeof(buf), 1, g_members, 3), -EINVAL);
	t = tb_start();
	tb_u64(&t, 1);
	tb_u32(&t, 3);
	for (int i = 0; i < 3; i++) {
		tb_member(&t, &g_members[i]);
	}
	CU_ASSERT_EQUAL(dec_exact(dec_members, t.b, t.n), -EBADMSG);

	/* Location: tier 0..1, length > 0, offset + length does not wrap. */
	memset(&p, 0, sizeof(p));
	mk_key(&p.key, 1, false);
	mk_location(&p.loc, 1, false);
	len = pc_frame_enc_dir_put(buf, sizeof(buf), &p, 1);
	CU_ASSERT_FATAL(len > 0);
	for (int tier = 0; tier < 256; tier++) {
		buf[len - 5] = (uint8_t)tier;
		CU_ASSERT_EQUAL(dec_exact(dec_dir_put, buf, (size_t)len), tier <= 1 ? 0 : -EBADMSG);
	}
	p.loc.tier = 2;
	CU_ASSERT_EQUAL(pc_frame_enc_dir_put(buf, sizeof(buf), &p, 1), -EINVAL);
	p.loc.tier = 0;
	p.loc.length = 0;
	CU_ASSERT_EQUAL(pc_frame_enc_dir_put(buf, sizeof(buf), &p, 1), -EINVAL);
	p.loc.length = 1;
	p.loc.offset = UINT64_MAX;
	CU_ASSERT_EQUAL(pc_frame_enc_dir_put(buf, sizeof(buf), &p, 1), -EINVAL);
	p.loc.offset = UINT64_MAX - 1;
	CU_ASSERT(pc_frame_enc_dir_put(buf, sizeof(buf), &p, 1) > 0);
	for (int which = 0; which < 2; which++) {
		t = tb_start();
		tb_u32(&t, 1);
		tb_key(&t, &p.key);
		p.loc.offset = which == 0 ? 0 : UINT64_MAX - 4095;
		p.loc.length = which == 0 ? 0 : 4096;
		tb_location(&t, &p.loc);
		CU_ASSERT_EQUAL(dec_exact(dec_dir_put, t.b, t.n), -EBADMSG);
	}

	/* Statuses: 0 or -1..-4095. */
	for (int which = 0; which < 4; which++) {
		static const int32_t vals[] = {1, -4096, INT32_MIN, INT32_MAX};

		st = vals[which];
		CU_ASSERT_EQUAL(pc_frame_enc_dir_status(buf, sizeof(buf), &st, 1), -EINVAL);
		t = tb_start();
		tb_u32(&t, 1);
		tb_u32(&t, (uint32_t)st);
		CU_ASSERT_EQUAL(dec_exact(dec_dir_status, t.b, t.n), -EBADMSG);
	}
	/* ... and an error reply's is never 0. */
	t = tb_start();
	tb_u32(&t, 0);
	tb_u16(&t, 0);
	CU_ASSERT_EQUAL(dec_exact(dec_error, t.b, t.n), -EBADMSG);
	t = tb_start();
	tb_u32(&t, (uint32_t)-4096);
	tb_u16(&t, 0);
	CU_ASSERT_EQUAL(dec_exact(dec_error, t.b, t.n), -EBADMSG);

	/* A lookup miss carries no locations. */
	memset(&e, 0, sizeof(e));
	e.status = -ENOENT;
	e.nloc = 1;
	mk_location(&e.loc[0], 0, false);
	CU_ASSERT_EQUAL(pc_frame_enc_dir_lookup_reply(buf, sizeof(buf), &e, 1), -EINVAL);
	t = tb_start();
	tb_u32(&t, 1);
	tb_u32(&t, (uint32_t)-ENOENT);
	tb_u8(&t, 1);
	tb_location(&t, &e.loc[0]);
	CU_ASSERT_EQUAL(dec_exact(dec_dir_lookup_reply, t.b, t.n), -EBADMSG);
	e.status = 0;
	CU_ASSERT(pc_frame_enc_dir_lookup_reply(buf, sizeof(buf), &e, 1) > 0);

	/* Booleans are 0 or 1 on the wire. */
	CU_ASSERT_EQUAL(pc_frame_enc_dir_exists_reply(buf, sizeof(buf), present, 2), 6);
	CU_ASSERT_EQUAL(memcmp(buf, "\x02\x00\x00\x00\x01\x00", 6), 0);
	for (int v = 0; v < 256; v++) {
		uint8_t body[5] = {1, 0, 0, 0, (uint8_t)v};
		uint8_t hb[9] = {0, 0, 0, 0, 0, 0, 0, 0, (uint8_t)v};

		CU_ASSERT_EQUAL(dec_exact(dec_dir_exists_reply, body, 5), v <= 1 ? 0 : -EBADMSG);
		CU_ASSERT_EQUAL(dec_exact(dec_heartbeat_reply, hb, 9), v <= 1 ? 0 : -EBADMSG);
	}

	/* A bad value is -EINVAL whatever the buffer: it is checked first. */
	st = 1;
	CU_ASSERT_EQUAL(pc_frame_enc_dir_status(NULL, 0, &st, 1), -EINVAL);
	mk_inputs(V_SMALL);
	g_keys[2].len = 0;
	CU_ASSERT_EQUAL(pc_frame_enc_dir_keys(buf, 6, g_keys, 3), -EINVAL);

	/* Empty bodies are empty. */
	CU_ASSERT_EQUAL(pc_frame_dec_empty(NULL, 0), 0);
	CU_ASSERT_EQUAL(pc_frame_dec_empty(buf, 1), -EBADMSG);
	CU_ASSERT_EQUAL(pc_frame_enc_empty(NULL, 0), 0);
}

/*
 * QP_CONNECT both ways against hand-built bytes: the node id, then the
 * 56-byte handshake record as verbs/qp_proto.h lays it out; every cut and a
 * trailing byte fail; a record pc_qp_info_decode() refuses fails in either
 * direction, and one pc_qp_info_encode() refuses is -EINVAL whatever the room.
 */
static void
test_qp_connect_round_trip(void)
{
	struct pc_frame_qp_connect q;
	struct pc_frame_qp_connect got;
	struct pc_qp_info info;
	struct pc_qp_info rinfo;
	uint8_t want[PC_FRAME_QP_CONNECT_REQ_MAX];
	uint8_t want_reply[PC_QP_INFO_LEN];
	uint8_t buf[PC_FRAME_QP_CONNECT_REQ_MAX + 8];
	size_t id_len;
	size_t n;
	struct tb t;

	memset(&q, 0, sizeof(q));
	snprintf(q.node_id, sizeof(q.node_id), "node-7");
	mk_qp_info(&q.info, 3, false);
	id_len = strlen(q.node_id);
	t = tb_start();
	tb_cstr(&t, q.node_id);
	tb_qp_info(&t, &q.info);
	CU_ASSERT_EQUAL_FATAL(t.n, 2 + id_len + PC_QP_INFO_LEN);
	n = t.n;
	memcpy(want, t.b, n);
	/* The record's first bytes, pinned: "PCQP", version 1, mtu, flags 0, qpn. */
	CU_ASSERT_EQUAL(memcmp(want + 2 + id_len, "PCQP\x01\x00", 6), 0);
	CU_ASSERT_EQUAL(want[2 + id_len + 6], q.info.mtu);
	CU_ASSERT_EQUAL(want[2 + id_len + 8], 0x03);
	CU_ASSERT_EQUAL(want[2 + id_len + 9], 0x01);

	CU_ASSERT_EQUAL(pc_frame_enc_qp_connect(buf, sizeof(buf), &q), (int)n);
	CU_ASSERT_EQUAL(memcmp(buf, want, n), 0);
	memset(&got, 0xee, sizeof(got));
	CU_ASSERT_EQUAL(dec_exact(dec_qp_connect, want, n), 0);
	CU_ASSERT_EQUAL(pc_frame_dec_qp_connect(want, n, &got), 0);
	CU_ASSERT_STRING_EQUAL(got.node_id, "node-7");
	CU_ASSERT_TRUE(qp_info_eq(&got.info, &q.info));

	/* The reply: the record alone. */
	mk_qp_info(&info, 9, true);
	t = tb_start();
	tb_qp_info(&t, &info);
	CU_ASSERT_EQUAL_FATAL(t.n, PC_QP_INFO_LEN);
	memcpy(want_reply, t.b, sizeof(want_reply));
	CU_ASSERT_EQUAL(pc_frame_enc_qp_connect_reply(buf, sizeof(buf), &info), PC_QP_INFO_LEN);
	CU_ASSERT_EQUAL(memcmp(buf, want_reply, sizeof(want_reply)), 0);
	memset(&rinfo, 0, sizeof(rinfo));
	CU_ASSERT_EQUAL(pc_frame_dec_qp_connect_reply(want_reply, sizeof(want_reply), &rinfo), 0);
	CU_ASSERT_TRUE(qp_info_eq(&rinfo, &info));

	/* Every cut, and a trailing byte, either way. */
	for (size_t cut = 0; cut < n; cut++) {
		CU_ASSERT_EQUAL(dec_exact(dec_qp_connect, want, cut), -EBADMSG);
	}
	for (size_t cut = 0; cut < sizeof(want_reply); cut++) {
		CU_ASSERT_EQUAL(dec_exact(dec_qp_connect_reply, want_reply, cut), -EBADMSG);
	}
	memcpy(buf, want, n);
	buf[n] = 0;
	CU_ASSERT_EQUAL(dec_exact(dec_qp_connect, buf, n + 1), -EBADMSG);
	memcpy(buf, want_reply, sizeof(want_reply));
	buf[sizeof(want_reply)] = 0;
	CU_ASSERT_EQUAL(dec_exact(dec_qp_connect_reply, buf, sizeof(want_reply) + 1), -EBADMSG);
	/* Two records back to back are not a reply. */
	memcpy(buf, want_reply, sizeof(want_reply));
	memcpy(buf + sizeof(want_reply), want_reply, 8);
	CU_ASSERT_EQUAL(dec_exact(dec_qp_connect_reply, buf, sizeof(want_reply) + 8), -EBADMSG);

	/* A bad record: each field rule of qp_proto.h, in the request and in the reply. */
	{
		static const struct {
			size_t off;
			uint8_t val;
		} bad[] = {
			{0, 'X'},   /* magic */
			{4, 2},     /* version */
			{5, 1},     /* version, high byte */
			{6, 0},     /* mtu below IBV_MTU_256 */
			{6, 6},     /* mtu above IBV_MTU_4096 */
			{7, 1},     /* flags */
			{11, 1},    /* qpn over 24 bits */
			{15, 0x80}, /* psn over 24 bits */
			{18, 1},    /* reserved */
			{19, 1},    /* reserved */
		};

		for (size_t i = 0; i < PC_ARRAY_SIZE(bad); i++) {
			memcpy(buf, want, n);
			buf[2 + id_len + bad[i].off] = bad[i].val;
			CU_ASSERT_EQUAL(dec_exact(dec_qp_connect, buf, n), -EBADMSG);
			memcpy(buf, want_reply, sizeof(want_reply));
			buf[bad[i].off] = bad[i].val;
			CU_ASSERT_EQUAL(dec_exact(dec_qp_connect_reply, buf, sizeof(want_reply)),
					-EBADMSG);
		}
	}
	/* A bad node id: empty, a byte outside the rule, over the cap. */
	{
		static const char *ids[] = {"", "no de", "n\xff"};

		for (size_t i = 0; i < PC_ARRAY_SIZE(ids); i++) {
			t = tb_start();
			tb_cstr(&t, ids[i]);
			tb_qp_info(&t, &q.info);
			CU_ASSERT_EQUAL(dec_exact(dec_qp_connect, t.b, t.n), -EBADMSG);
			snprintf(got.node_id, sizeof(got.node_id), "%s", ids[i]);
			got.info = q.info;
			CU_ASSERT_EQUAL(pc_frame_enc_qp_connect(buf, sizeof(buf), &got), -EINVAL);
		}
		memset(got.node_id, 'a', sizeof(got.node_id)); /* no NUL: 64 bytes read at most */
		CU_ASSERT_EQUAL(pc_frame_enc_qp_connect(buf, sizeof(buf), &got), -EINVAL);
		t = tb_start();
		tb_str(&t, got.node_id, PC_FRAME_NODE_ID_MAX + 1);
		tb_qp_info(&t, &q.info);
		CU_ASSERT_EQUAL(dec_exact(dec_qp_connect, t.b, t.n), -EBADMSG);
	}
	/* The encoders refuse what the record's encoder refuses, whatever the room. */
	for (int which = 0; which < 4; which++) {
		struct pc_frame_qp_connect b = q;

		if (which == 0) {
			b.info.qpn = PC_QP_24BIT_MAX + 1;
		} else if (which == 1) {
			b.info.psn = UINT32_MAX;
		} else if (which == 2) {
			b.info.mtu = 0;
		} else {
			b.info.mtu = PC_QP_MTU_MAX + 1;
		}
		CU_ASSERT_EQUAL(pc_frame_enc_qp_connect(buf, sizeof(buf), &b), -EINVAL);
		CU_ASSERT_EQUAL(pc_frame_enc_qp_connect(NULL, 0, &b), -EINVAL);
		CU_ASSERT_EQUAL(pc_frame_enc_qp_connect_reply(buf, sizeof(buf), &b.info), -EINVAL);
		CU_ASSERT_EQUAL(pc_frame_enc_qp_connect_reply(buf, 10, &b.info), -EINVAL);
	}
	/* One byte short of room is -ENOSPC, the record included. */
	CU_ASSERT_EQUAL(pc_frame_enc_qp_connect(buf, n - 1, &q), -ENOSPC);
	CU_ASSERT_EQUAL(pc_frame_enc_qp_connect_reply(buf, PC_QP_INFO_LEN - 1, &info), -ENOSPC);
}

static const struct pc_ut_test header_tests[] = {
	{"header round trip, layout as documented", test_hdr_round_trip},
	{"each header field's bound is -EBADMSG", test_hdr_bounds},
	{"a short header is -EAGAIN", test_hdr_short},
	{"body caps computed from the field caps", test_body_caps},
	{"type names", test_type_names},
	{NULL, NULL},
};

static const struct pc_ut_test body_tests[] = {
	{"every body at its caps encodes to exactly its cap", test_bodies_at_cap},
	{"every body truncated anywhere is -EBADMSG", test_bodies_truncated},
	{"every body with trailing bytes is -EBADMSG", test_bodies_trailing},
	{"every encoder refuses a buffer too small", test_encoders_nospace},
	{"members and REGISTER round trip", test_member_round_trip},
	{"a member's bytes, one by one", test_member_golden},
	{"HEARTBEAT both ways, bytes pinned", test_heartbeat_round_trip},
	{"DIR_PUT round trip, a location's bytes pinned", test_dir_put_round_trip},
	{"directory keys round trip", test_dir_keys_round_trip},
	{"DIR_DELETE_LOC round trip", test_dir_delete_loc_round_trip},
	{"DIR_DELETE_LOC generation: last field, 0 = any, old layout refused",
	 test_dir_delete_loc_generation},
	{"directory replies round trip", test_dir_replies_round_trip},
	{"error replies: cut, made printable, strict status", test_error_round_trip},
	{"QP_CONNECT both ways, bytes pinned, bad records refused", test_qp_connect_round_trip},
	{NULL, NULL},
};

static const struct pc_ut_test cap_tests[] = {
	{"strings: the cap passes, one more fails", test_string_caps},
	{"counts: the cap passes, one more fails", test_count_caps},
	{"a count the body cannot hold fails before the loop", test_count_vs_body},
	{"field rules, both directions", test_field_rules},
	{NULL, NULL},
};

static const struct pc_ut_suite suites[] = {
	{"frame header", NULL, NULL, header_tests},
	{"frame bodies", NULL, NULL, body_tests},
	{"frame caps and rules", NULL, NULL, cap_tests},
};

int
main(void)
{
	return pc_ut_run(suites, PC_ARRAY_SIZE(suites));
}
