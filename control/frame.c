/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Control RPC frames: the header and one codec per body (see frame.h for the
 * wire format and the field rules).
 *
 * Every codec goes through the two cursors below. The reader checks each
 * read against the bytes left (never pos + n, which could wrap), and each
 * count against the bytes left divided by its entry's smallest encoding
 * before anything is looped over or written. The writer keeps going after
 * the buffer is full, checking without writing, so that a value the rules
 * refuse is -EINVAL whatever the buffer's size.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "frame.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "frame fields are copied as little-endian; big-endian hosts need byte swaps"
#endif

/* Every body fits a frame and an int (the encoders return its size). */
_Static_assert(PC_FRAME_ERROR_BODY_MAX <= PC_FRAME_BODY_MAX, "error cap");
_Static_assert(PC_FRAME_REGISTER_REQ_MAX <= PC_FRAME_BODY_MAX, "REGISTER request cap");
_Static_assert(PC_FRAME_MEMBERS_REPLY_MAX <= PC_FRAME_BODY_MAX, "member list cap");
_Static_assert(PC_FRAME_HEARTBEAT_REQ_MAX <= PC_FRAME_BODY_MAX, "HEARTBEAT request cap");
_Static_assert(PC_FRAME_HEARTBEAT_REPLY_MAX <= PC_FRAME_BODY_MAX, "HEARTBEAT reply cap");
_Static_assert(PC_FRAME_DIR_PUT_REQ_MAX <= PC_FRAME_BODY_MAX, "DIR_PUT request cap");
_Static_assert(PC_FRAME_DIR_KEYS_REQ_MAX <= PC_FRAME_BODY_MAX, "directory keys cap");
_Static_assert(PC_FRAME_DIR_STATUS_REPLY_MAX <= PC_FRAME_BODY_MAX, "status reply cap");
_Static_assert(PC_FRAME_DIR_LOOKUP_REPLY_MAX <= PC_FRAME_BODY_MAX, "DIR_LOOKUP reply cap");
_Static_assert(PC_FRAME_DIR_EXISTS_REPLY_MAX <= PC_FRAME_BODY_MAX, "DIR_EXISTS reply cap");
_Static_assert(PC_FRAME_DIR_DELLOC_REQ_MAX <= PC_FRAME_BODY_MAX, "DIR_DELETE_LOC request cap");
_Static_assert(PC_FRAME_QP_CONNECT_REQ_MAX <= PC_FRAME_BODY_MAX, "QP_CONNECT request cap");
_Static_assert(PC_FRAME_BODY_MAX <= INT_MAX, "encoders return the size as an int");
/* A lookup entry's location count is a u8, a string's length a u16. */
_Static_assert(PC_FRAME_LOCS_MAX <= UINT8_MAX, "nloc is a u8");
_Static_assert(PC_FRAME_KEY_MAX <= UINT16_MAX && PC_FRAME_HOST_MAX <= UINT16_MAX,
	       "string lengths are u16");

/* Header offsets. */
#define FRAME_OFF_VERSION  4
#define FRAME_OFF_TYPE     5
#define FRAME_OFF_FLAGS    6
#define FRAME_OFF_REQ_ID   8
#define FRAME_OFF_BODY_LEN 16
#define FRAME_OFF_RESERVED 20

/* Minimum encodings of the other entries (the strings' minimums are in frame.h). */
#define FRAME_PUT_WIRE_MIN    (PC_FRAME_KEY_WIRE_MIN + PC_FRAME_LOC_WIRE_MIN)
#define FRAME_STATUS_WIRE_MIN 4u
#define FRAME_FLAG_WIRE_MIN   1u

struct frame_type_info {
	const char *name;
	uint32_t req_max;
	uint32_t reply_max;
};

static const struct frame_type_info g_frame_types[PC_FRAME_TYPE__MAX] = {
	[PC_FRAME_PING] = {"ping", 0, 0},
	[PC_FRAME_REGISTER] = {"register", PC_FRAME_REGISTER_REQ_MAX, PC_FRAME_MEMBERS_REPLY_MAX},
	[PC_FRAME_HEARTBEAT] = {"heartbeat", PC_FRAME_HEARTBEAT_REQ_MAX,
				PC_FRAME_HEARTBEAT_REPLY_MAX},
	[PC_FRAME_MEMBERS] = {"members", 0, PC_FRAME_MEMBERS_REPLY_MAX},
	[PC_FRAME_DIR_PUT] = {"dir-put", PC_FRAME_DIR_PUT_REQ_MAX, PC_FRAME_DIR_STATUS_REPLY_MAX},
	[PC_FRAME_DIR_LOOKUP] = {"dir-lookup", PC_FRAME_DIR_KEYS_REQ_MAX,
				 PC_FRAME_DIR_LOOKUP_REPLY_MAX},
	[PC_FRAME_DIR_EXISTS] = {"dir-exists", PC_FRAME_DIR_KEYS_REQ_MAX,
				 PC_FRAME_DIR_EXISTS_REPLY_MAX},
	[PC_FRAME_DIR_DELETE] = {"dir-delete", PC_FRAME_DIR_KEYS_REQ_MAX,
				 PC_FRAME_DIR_STATUS_REPLY_MAX},
	[PC_FRAME_DIR_DELETE_LOC] = {"dir-delete-loc", PC_FRAME_DIR_DELLOC_REQ_MAX,
				     PC_FRAME_DIR_STATUS_REPLY_MAX},
	[PC_FRAME_DEREGISTER] = {"deregister", PC_FRAME_HEARTBEAT_REQ_MAX, 0},
	[PC_FRAME_QP_CONNECT] = {"qp-connect", PC_FRAME_QP_CONNECT_REQ_MAX,
				 PC_FRAME_QP_CONNECT_REPLY_MAX},
};

static bool
frame_type_known(uint8_t type)
{
	return type > 0 && type < PC_FRAME_TYPE__MAX;
}

/* The three directions: request, reply, error reply. An error request means nothing. */
static bool
frame_flags_known(uint16_t flags)
{
	return flags == 0 || flags == PC_FRAME_F_REPLY || flags == PC_FRAME_F_KNOWN;
}

static uint32_t
get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void
put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

uint32_t
pc_frame_body_cap(uint8_t type, uint16_t flags)
{
	if (!frame_type_known(type) || !frame_flags_known(flags)) {
		return 0;
	}
	if (flags == 0) {
		return g_frame_types[type].req_max;
	}
	return flags == PC_FRAME_F_REPLY ? g_frame_types[type].reply_max : PC_FRAME_ERROR_BODY_MAX;
}

uint32_t
pc_frame_body_max(uint8_t type)
{
	uint32_t max = pc_frame_body_cap(type, 0);
	uint32_t reply = pc_frame_body_cap(type, PC_FRAME_F_REPLY);
	uint32_t error = pc_frame_body_cap(type, PC_FRAME_F_KNOWN);

	if (reply > max) {
		max = reply;
	}
	return error > max ? error : max;
}

const char *
pc_frame_type_name(uint8_t type)
{
	return frame_type_known(type) ? g_frame_types[type].name : "unknown";
}

int
pc_frame_hdr_decode(const void *buf, size_t len, struct pc_frame_hdr *out)
{
	const uint8_t *p = buf;
	uint16_t flags;
	uint32_t body_len;

	if (buf == NULL || len < PC_FRAME_HDR_SIZE) {
		return -EAGAIN;
	}
	flags = (uint16_t)(p[FRAME_OFF_FLAGS] | p[FRAME_OFF_FLAGS + 1] << 8);
	body_len = get_le32(p + FRAME_OFF_BODY_LEN);
	if (get_le32(p) != PC_FRAME_MAGIC || p[FRAME_OFF_VERSION] != PC_FRAME_VERSION ||
	    !frame_type_known(p[FRAME_OFF_TYPE]) || !frame_flags_known(flags) ||
	    get_le32(p + FRAME_OFF_RESERVED) != 0 ||
	    body_len > pc_frame_body_cap(p[FRAME_OFF_TYPE], flags)) {
		return -EBADMSG;
	}
	out->version = p[FRAME_OFF_VERSION];
	out->type = p[FRAME_OFF_TYPE];
	out->flags = flags;
	out->request_id = (uint64_t)get_le32(p + FRAME_OFF_REQ_ID) |
			  (uint64_t)get_le32(p + FRAME_OFF_REQ_ID + 4) << 32;
	out->body_len = body_len;
	return 0;
}

void
pc_frame_hdr_encode(void *out, const struct pc_frame_hdr *h)
{
	uint8_t *p = out;

	put_le32(p, PC_FRAME_MAGIC);
	p[FRAME_OFF_VERSION] = PC_FRAME_VERSION;
	p[FRAME_OFF_TYPE] = h->type;
	p[FRAME_OFF_FLAGS] = (uint8_t)h->flags;
	p[FRAME_OFF_FLAGS + 1] = (uint8_t)(h->flags >> 8);
	put_le32(p + FRAME_OFF_REQ_ID, (uint32_t)h->request_id);
	put_le32(p + FRAME_OFF_REQ_ID + 4, (uint32_t)(h->request_id >> 32));
	put_le32(p + FRAME_OFF_BODY_LEN, h->body_len);
	put_le32(p + FRAME_OFF_RESERVED, 0);
}

/* ---- field rules, shared by both directions ---- */

enum frame_charset {
	FRAME_CS_NODE_ID, /* [A-Za-z0-9._-] */
	FRAME_CS_HOST,    /* 0x21..0x7e */
	FRAME_CS_TEXT,    /* 0x20..0x7e */
};

static bool
frame_char_ok(uint8_t c, enum frame_charset cs)
{
	switch (cs) {
	case FRAME_CS_NODE_ID:
		return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		       c == '.' || c == '_' || c == '-';
	case FRAME_CS_HOST:
		return c >= 0x21 && c <= 0x7e;
	case FRAME_CS_TEXT:
		return c >= 0x20 && c <= 0x7e;
	}
	return false;
}

static bool
frame_str_ok(const uint8_t *s, size_t n, size_t min, size_t max, enum frame_charset cs)
{
	if (n < min || n > max) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (!frame_char_ok(s[i], cs)) {
			return false;
		}
	}
	return true;
}

static bool
frame_status_ok(int32_t st)
{
	return st <= 0 && st >= -PC_FRAME_ERRNO_MAX;
}

static bool
frame_location_ok(const struct pc_frame_location *l)
{
	return l->tier <= PC_FRAME_TIER_DISK && l->length > 0 &&
	       l->offset <= UINT64_MAX - l->length;
}

static bool
frame_member_ok(const struct pc_frame_member *m)
{
	return m->role <= PC_FRAME_ROLE_META && (m->flags & ~PC_FRAME_MEMBER_F_KNOWN) == 0;
}

static bool
frame_lookup_ok(const struct pc_frame_lookup *e)
{
	return frame_status_ok(e->status) && e->nloc <= PC_FRAME_LOCS_MAX &&
	       (e->status == 0 || e->nloc == 0);
}

/*
 * Whether the n members' node ids are distinct: open addressing over a
 * table on the stack, so a list at its cap costs about n comparisons, not
 * n^2 / 2 (ids crafted to collide cost no more than the plain loop would).
 * Bounded reads: an encoder's input may lack its NUL.
 */
#define FRAME_ID_SLOTS 2048u /* a power of two, at least twice PC_FRAME_MEMBERS_MAX */
_Static_assert(FRAME_ID_SLOTS >= 2 * PC_FRAME_MEMBERS_MAX, "the table stays half empty");

static bool
frame_members_unique(const struct pc_frame_member *m, unsigned int n)
{
	uint16_t slot[FRAME_ID_SLOTS]; /* member index + 1; 0 is empty */

	memset(slot, 0, sizeof(slot));
	for (unsigned int i = 0; i < n; i++) {
		const char *id = m[i].node_id;
		size_t len = strnlen(id, sizeof(m[i].node_id));
		uint32_t h = 2166136261u; /* FNV-1a */

		for (size_t j = 0; j < len; j++) {
			h = (h ^ (uint8_t)id[j]) * 16777619u;
		}
		for (h &= FRAME_ID_SLOTS - 1; slot[h] != 0; h = (h + 1) & (FRAME_ID_SLOTS - 1)) {
			if (strncmp(m[slot[h] - 1].node_id, id, sizeof(m[i].node_id)) == 0) {
				return false;
			}
		}
		slot[h] = (uint16_t)(i + 1);
	}
	return true;
}

/* ---- the writer ---- */

struct frame_wr {
	uint8_t *p;
	size_t cap;
	size_t pos; /* <= cap */
	int err;    /* 0, -ENOSPC (still checking values), or -EINVAL (final) */
};

static void
wr_bytes(struct frame_wr *w, const void *src, size_t n)
{
	if (w->err != 0 || n == 0) {
		return;
	}
	if (n > w->cap - w->pos) {
		w->err = -ENOSPC;
		return;
	}
	memcpy(w->p + w->pos, src, n);
	w->pos += n;
}

static void
wr_invalid(struct frame_wr *w)
{
	w->err = -EINVAL;
}

static void
wr_u8(struct frame_wr *w, uint8_t v)
{
	wr_bytes(w, &v, 1);
}

static void
wr_u16(struct frame_wr *w, uint16_t v)
{
	wr_bytes(w, &v, 2);
}

static void
wr_u32(struct frame_wr *w, uint32_t v)
{
	wr_bytes(w, &v, 4);
}

static void
wr_u64(struct frame_wr *w, uint64_t v)
{
	wr_bytes(w, &v, 8);
}

static void
wr_i32(struct frame_wr *w, int32_t v)
{
	wr_u32(w, (uint32_t)v);
}

/* A NUL-terminated field of a struct: read at most max + 1 bytes of it. */
static void
wr_str(struct frame_wr *w, const char *s, size_t min, size_t max, enum frame_charset cs)
{
	size_t n = strnlen(s, max + 1);

	if (!frame_str_ok((const uint8_t *)s, n, min, max, cs)) {
		wr_invalid(w);
		return;
	}
	wr_u16(w, (uint16_t)n);
	wr_bytes(w, s, n);
}

static void
wr_node_id(struct frame_wr *w, const char *s)
{
	wr_str(w, s, 1, PC_FRAME_NODE_ID_MAX, FRAME_CS_NODE_ID);
}

static void
wr_host(struct frame_wr *w, const char *s)
{
	wr_str(w, s, 1, PC_FRAME_HOST_MAX, FRAME_CS_HOST);
}

static void
wr_key(struct frame_wr *w, const struct pc_frame_key *k)
{
	if (k->len == 0 || k->len > PC_FRAME_KEY_MAX) {
		wr_invalid(w);
		return;
	}
	wr_u16(w, k->len);
	wr_bytes(w, k->bytes, k->len);
}

/* A count of n entries out of `array` (NULL only when n is 0), at most `cap`. */
static bool
wr_count(struct frame_wr *w, const void *array, unsigned int n, unsigned int cap)
{
	if (n > cap || (array == NULL && n > 0)) {
		wr_invalid(w);
		return false;
	}
	wr_u32(w, n);
	return true;
}

static void
wr_member(struct frame_wr *w, const struct pc_frame_member *m)
{
	if (!frame_member_ok(m)) {
		wr_invalid(w);
		return;
	}
	wr_node_id(w, m->node_id);
	wr_u64(w, m->incarnation);
	wr_u8(w, m->role);
	wr_u8(w, m->flags);
	wr_host(w, m->hostname);
	wr_host(w, m->ctrl_host);
	wr_u16(w, m->ctrl_port);
	wr_host(w, m->data_host);
	wr_u16(w, m->data_port);
	wr_u16(w, m->meta_port);
	wr_u64(w, m->pool_capacity);
	wr_u64(w, m->pool_used);
}

static void
wr_location(struct frame_wr *w, const struct pc_frame_location *l)
{
	if (!frame_location_ok(l)) {
		wr_invalid(w);
		return;
	}
	wr_node_id(w, l->node_id);
	wr_u64(w, l->incarnation);
	wr_u64(w, l->offset);
	wr_u32(w, l->length);
	wr_u64(w, l->generation);
	wr_u8(w, l->tier);
	wr_u32(w, l->rkey);
}

/* A handshake record: encoded on the side first, so a bad one is -EINVAL whatever the room. */
static void
wr_qp_info(struct frame_wr *w, const struct pc_qp_info *info)
{
	uint8_t rec[PC_QP_INFO_LEN];

	if (pc_qp_info_encode(info, rec, sizeof(rec)) != PC_QP_INFO_LEN) {
		wr_invalid(w);
		return;
	}
	wr_bytes(w, rec, sizeof(rec));
}

static int
wr_finish(const struct frame_wr *w)
{
	return w->err != 0 ? w->err : (int)w->pos;
}

static struct frame_wr
wr_start(void *buf, size_t cap)
{
	struct frame_wr w = {.p = buf, .cap = buf == NULL ? 0 : cap, .pos = 0, .err = 0};

	return w;
}

/* ---- the reader: every function returns false on bytes the rules refuse ---- */

struct frame_rd {
	const uint8_t *p;
	size_t len;
	size_t pos; /* <= len */
};

static size_t
rd_left(const struct frame_rd *r)
{
	return r->len - r->pos;
}

static bool
rd_bytes(struct frame_rd *r, void *dst, size_t n)
{
	if (n > rd_left(r)) {
		return false;
	}
	if (n > 0) {
		memcpy(dst, r->p + r->pos, n);
		r->pos += n;
	}
	return true;
}

static bool
rd_u8(struct frame_rd *r, uint8_t *v)
{
	return rd_bytes(r, v, 1);
}

static bool
rd_u16(struct frame_rd *r, uint16_t *v)
{
	return rd_bytes(r, v, 2);
}

static bool
rd_u32(struct frame_rd *r, uint32_t *v)
{
	return rd_bytes(r, v, 4);
}

static bool
rd_u64(struct frame_rd *r, uint64_t *v)
{
	return rd_bytes(r, v, 8);
}

static bool
rd_i32(struct frame_rd *r, int32_t *v)
{
	uint32_t u;

	if (!rd_u32(r, &u)) {
		return false;
	}
	*v = (int32_t)u;
	return true;
}

/* A string into out[max + 1], NUL-terminated; checked in place before it is copied. */
static bool
rd_str(struct frame_rd *r, char *out, size_t min, size_t max, enum frame_charset cs)
{
	uint16_t n;

	if (!rd_u16(r, &n) || n > rd_left(r) || !frame_str_ok(r->p + r->pos, n, min, max, cs)) {
		return false;
	}
	memcpy(out, r->p + r->pos, n);
	out[n] = '\0';
	r->pos += n;
	return true;
}

static bool
rd_node_id(struct frame_rd *r, char *out)
{
	return rd_str(r, out, 1, PC_FRAME_NODE_ID_MAX, FRAME_CS_NODE_ID);
}

static bool
rd_host(struct frame_rd *r, char *out)
{
	return rd_str(r, out, 1, PC_FRAME_HOST_MAX, FRAME_CS_HOST);
}

static bool
rd_key(struct frame_rd *r, struct pc_frame_key *k)
{
	uint16_t n;

	if (!rd_u16(r, &n) || n == 0 || n > PC_FRAME_KEY_MAX) {
		return false;
	}
	k->len = n;
	return rd_bytes(r, k->bytes, n);
}

/* 0 or 1 only, so that a decoded body re-encodes to the same bytes. */
static bool
rd_bool(struct frame_rd *r, bool *v)
{
	uint8_t b;

	if (!rd_u8(r, &b) || b > 1) {
		return false;
	}
	*v = b == 1;
	return true;
}

/*
 * A count, refused when over the type's cap or the caller's room, or when
 * that many entries of at least `min_entry` bytes cannot fit in what is
 * left: a 4-billion count in a 10-byte body fails here, not after a loop.
 */
static bool
rd_count(struct frame_rd *r, unsigned int cap, unsigned int max, size_t min_entry, unsigned int *n)
{
	uint32_t v;

	if (!rd_u32(r, &v) || v > cap || v > max || v > rd_left(r) / min_entry) {
		return false;
	}
	*n = v;
	return true;
}

static bool
rd_member(struct frame_rd *r, struct pc_frame_member *m)
{
	return rd_node_id(r, m->node_id) && rd_u64(r, &m->incarnation) && rd_u8(r, &m->role) &&
	       rd_u8(r, &m->flags) && rd_host(r, m->hostname) && rd_host(r, m->ctrl_host) &&
	       rd_u16(r, &m->ctrl_port) && rd_host(r, m->data_host) && rd_u16(r, &m->data_port) &&
	       rd_u16(r, &m->meta_port) && rd_u64(r, &m->pool_capacity) &&
	       rd_u64(r, &m->pool_used) && frame_member_ok(m);
}

static bool
rd_location(struct frame_rd *r, struct pc_frame_location *l)
{
	return rd_node_id(r, l->node_id) && rd_u64(r, &l->incarnation) && rd_u64(r, &l->offset) &&
	       rd_u32(r, &l->length) && rd_u64(r, &l->generation) && rd_u8(r, &l->tier) &&
	       rd_u32(r, &l->rkey) && frame_location_ok(l);
}

/* A handshake record: exactly PC_QP_INFO_LEN bytes that pc_qp_info_decode() takes. */
static bool
rd_qp_info(struct frame_rd *r, struct pc_qp_info *info)
{
	if (rd_left(r) < PC_QP_INFO_LEN ||
	    pc_qp_info_decode(r->p + r->pos, PC_QP_INFO_LEN, info) != 0) {
		return false;
	}
	r->pos += PC_QP_INFO_LEN;
	return true;
}

static bool
rd_start(struct frame_rd *r, const void *body, size_t len)
{
	r->p = body;
	r->len = len;
	r->pos = 0;
	return body != NULL || len == 0;
}

/* The body was consumed exactly. */
static int
rd_finish(const struct frame_rd *r, bool ok)
{
	return ok && r->pos == r->len ? 0 : -EBADMSG;
}

/* ---- the codecs ---- */

int
pc_frame_enc_empty(void *buf, size_t cap)
{
	(void)buf;
	(void)cap;
	return 0;
}

int
pc_frame_dec_empty(const void *body, size_t len)
{
	(void)body;
	return len == 0 ? 0 : -EBADMSG;
}

int
pc_frame_enc_register(void *buf, size_t cap, const struct pc_frame_member *m)
{
	struct frame_wr w = wr_start(buf, cap);

	wr_member(&w, m);
	return wr_finish(&w);
}

int
pc_frame_dec_register(const void *body, size_t len, struct pc_frame_member *m)
{
	struct frame_rd r;

	return rd_finish(&r, rd_start(&r, body, len) && rd_member(&r, m));
}

int
pc_frame_enc_members(void *buf, size_t cap, uint64_t epoch, const struct pc_frame_member *m,
		     unsigned int n)
{
	struct frame_wr w = wr_start(buf, cap);

	wr_u64(&w, epoch);
	if (wr_count(&w, m, n, PC_FRAME_MEMBERS_MAX)) {
		if (!frame_members_unique(m, n)) {
			wr_invalid(&w);
		}
		for (unsigned int i = 0; i < n; i++) {
			wr_member(&w, &m[i]);
		}
	}
	return wr_finish(&w);
}

int
pc_frame_dec_members(const void *body, size_t len, uint64_t *epoch, struct pc_frame_member *m,
		     unsigned int max, unsigned int *n)
{
	struct frame_rd r;
	bool ok = rd_start(&r, body, len) && rd_u64(&r, epoch) &&
		  rd_count(&r, PC_FRAME_MEMBERS_MAX, max, PC_FRAME_MEMBER_WIRE_MIN, n);

	for (unsigned int i = 0; ok && i < *n; i++) {
		ok = rd_member(&r, &m[i]);
	}
	return rd_finish(&r, ok && frame_members_unique(m, *n));
}

int
pc_frame_enc_heartbeat(void *buf, size_t cap, const struct pc_frame_heartbeat *hb)
{
	struct frame_wr w = wr_start(buf, cap);

	wr_node_id(&w, hb->node_id);
	wr_u64(&w, hb->incarnation);
	wr_u64(&w, hb->pool_used);
	return wr_finish(&w);
}

int
pc_frame_dec_heartbeat(const void *body, size_t len, struct pc_frame_heartbeat *hb)
{
	struct frame_rd r;

	return rd_finish(&r, rd_start(&r, body, len) && rd_node_id(&r, hb->node_id) &&
				     rd_u64(&r, &hb->incarnation) && rd_u64(&r, &hb->pool_used));
}

int
pc_frame_enc_heartbeat_reply(void *buf, size_t cap, uint64_t epoch, bool known)
{
	struct frame_wr w = wr_start(buf, cap);

	wr_u64(&w, epoch);
	wr_u8(&w, known ? 1 : 0);
	return wr_finish(&w);
}

int
pc_frame_dec_heartbeat_reply(const void *body, size_t len, uint64_t *epoch, bool *known)
{
	struct frame_rd r;

	return rd_finish(&r, rd_start(&r, body, len) && rd_u64(&r, epoch) && rd_bool(&r, known));
}

int
pc_frame_enc_dir_put(void *buf, size_t cap, const struct pc_frame_put *e, unsigned int n)
{
	struct frame_wr w = wr_start(buf, cap);

	if (wr_count(&w, e, n, PC_FRAME_BATCH_MAX)) {
		for (unsigned int i = 0; i < n; i++) {
			wr_key(&w, &e[i].key);
			wr_location(&w, &e[i].loc);
		}
	}
	return wr_finish(&w);
}

int
pc_frame_dec_dir_put(const void *body, size_t len, struct pc_frame_put *e, unsigned int max,
		     unsigned int *n)
{
	struct frame_rd r;
	bool ok = rd_start(&r, body, len) &&
		  rd_count(&r, PC_FRAME_BATCH_MAX, max, FRAME_PUT_WIRE_MIN, n);

	for (unsigned int i = 0; ok && i < *n; i++) {
		ok = rd_key(&r, &e[i].key) && rd_location(&r, &e[i].loc);
	}
	return rd_finish(&r, ok);
}

int
pc_frame_enc_dir_keys(void *buf, size_t cap, const struct pc_frame_key *keys, unsigned int n)
{
	struct frame_wr w = wr_start(buf, cap);

	if (wr_count(&w, keys, n, PC_FRAME_BATCH_MAX)) {
		for (unsigned int i = 0; i < n; i++) {
			wr_key(&w, &keys[i]);
		}
	}
	return wr_finish(&w);
}

int
pc_frame_dec_dir_keys(const void *body, size_t len, struct pc_frame_key *keys, unsigned int max,
		      unsigned int *n)
{
	struct frame_rd r;
	bool ok = rd_start(&r, body, len) &&
		  rd_count(&r, PC_FRAME_BATCH_MAX, max, PC_FRAME_KEY_WIRE_MIN, n);

	for (unsigned int i = 0; ok && i < *n; i++) {
		ok = rd_key(&r, &keys[i]);
	}
	return rd_finish(&r, ok);
}

int
pc_frame_enc_dir_delete_loc(void *buf, size_t cap, const struct pc_frame_delete_loc *e,
			    unsigned int n)
{
	struct frame_wr w = wr_start(buf, cap);

	if (wr_count(&w, e, n, PC_FRAME_BATCH_MAX)) {
		for (unsigned int i = 0; i < n; i++) {
			wr_key(&w, &e[i].key);
			wr_node_id(&w, e[i].node_id);
			wr_u64(&w, e[i].incarnation);
			wr_u64(&w, e[i].generation);
		}
	}
	return wr_finish(&w);
}

int
pc_frame_dec_dir_delete_loc(const void *body, size_t len, struct pc_frame_delete_loc *e,
			    unsigned int max, unsigned int *n)
{
	struct frame_rd r;
	bool ok = rd_start(&r, body, len) &&
		  rd_count(&r, PC_FRAME_BATCH_MAX, max, PC_FRAME_DELLOC_WIRE_MIN, n);

	for (unsigned int i = 0; ok && i < *n; i++) {
		ok = rd_key(&r, &e[i].key) && rd_node_id(&r, e[i].node_id) &&
		     rd_u64(&r, &e[i].incarnation) && rd_u64(&r, &e[i].generation);
	}
	return rd_finish(&r, ok);
}

int
pc_frame_enc_dir_status(void *buf, size_t cap, const int32_t *status, unsigned int n)
{
	struct frame_wr w = wr_start(buf, cap);

	if (wr_count(&w, status, n, PC_FRAME_BATCH_MAX)) {
		for (unsigned int i = 0; i < n; i++) {
			if (!frame_status_ok(status[i])) {
				wr_invalid(&w);
			}
			wr_i32(&w, status[i]);
		}
	}
	return wr_finish(&w);
}

int
pc_frame_dec_dir_status(const void *body, size_t len, int32_t *status, unsigned int max,
			unsigned int *n)
{
	struct frame_rd r;
	bool ok = rd_start(&r, body, len) &&
		  rd_count(&r, PC_FRAME_BATCH_MAX, max, FRAME_STATUS_WIRE_MIN, n);

	for (unsigned int i = 0; ok && i < *n; i++) {
		ok = rd_i32(&r, &status[i]) && frame_status_ok(status[i]);
	}
	return rd_finish(&r, ok);
}

int
pc_frame_enc_dir_lookup_reply(void *buf, size_t cap, const struct pc_frame_lookup *e,
			      unsigned int n)
{
	struct frame_wr w = wr_start(buf, cap);

	if (wr_count(&w, e, n, PC_FRAME_BATCH_MAX)) {
		for (unsigned int i = 0; i < n; i++) {
			if (!frame_lookup_ok(&e[i])) {
				wr_invalid(&w);
				break;
			}
			wr_i32(&w, e[i].status);
			wr_u8(&w, e[i].nloc);
			for (unsigned int j = 0; j < e[i].nloc; j++) {
				wr_location(&w, &e[i].loc[j]);
			}
		}
	}
	return wr_finish(&w);
}

int
pc_frame_dec_dir_lookup_reply(const void *body, size_t len, struct pc_frame_lookup *e,
			      unsigned int max, unsigned int *n)
{
	struct frame_rd r;
	bool ok = rd_start(&r, body, len) &&
		  rd_count(&r, PC_FRAME_BATCH_MAX, max, PC_FRAME_LOOKUP_WIRE_MIN, n);

	for (unsigned int i = 0; ok && i < *n; i++) {
		ok = rd_i32(&r, &e[i].status) && rd_u8(&r, &e[i].nloc) && frame_lookup_ok(&e[i]);
		for (unsigned int j = 0; ok && j < e[i].nloc; j++) {
			ok = rd_location(&r, &e[i].loc[j]);
		}
	}
	return rd_finish(&r, ok);
}

int
pc_frame_enc_dir_exists_reply(void *buf, size_t cap, const bool *present, unsigned int n)
{
	struct frame_wr w = wr_start(buf, cap);

	if (wr_count(&w, present, n, PC_FRAME_BATCH_MAX)) {
		for (unsigned int i = 0; i < n; i++) {
			wr_u8(&w, present[i] ? 1 : 0);
		}
	}
	return wr_finish(&w);
}

int
pc_frame_dec_dir_exists_reply(const void *body, size_t len, bool *present, unsigned int max,
			      unsigned int *n)
{
	struct frame_rd r;
	bool ok = rd_start(&r, body, len) &&
		  rd_count(&r, PC_FRAME_BATCH_MAX, max, FRAME_FLAG_WIRE_MIN, n);

	for (unsigned int i = 0; ok && i < *n; i++) {
		ok = rd_bool(&r, &present[i]);
	}
	return rd_finish(&r, ok);
}

int
pc_frame_enc_qp_connect(void *buf, size_t cap, const struct pc_frame_qp_connect *q)
{
	struct frame_wr w = wr_start(buf, cap);

	wr_node_id(&w, q->node_id);
	wr_qp_info(&w, &q->info);
	return wr_finish(&w);
}

int
pc_frame_dec_qp_connect(const void *body, size_t len, struct pc_frame_qp_connect *q)
{
	struct frame_rd r;

	return rd_finish(&r, rd_start(&r, body, len) && rd_node_id(&r, q->node_id) &&
				     rd_qp_info(&r, &q->info));
}

int
pc_frame_enc_qp_connect_reply(void *buf, size_t cap, const struct pc_qp_info *info)
{
	struct frame_wr w = wr_start(buf, cap);

	wr_qp_info(&w, info);
	return wr_finish(&w);
}

int
pc_frame_dec_qp_connect_reply(const void *body, size_t len, struct pc_qp_info *info)
{
	struct frame_rd r;

	return rd_finish(&r, rd_start(&r, body, len) && rd_qp_info(&r, info));
}

int
pc_frame_enc_error(void *buf, size_t cap, int32_t status, const char *msg)
{
	struct frame_wr w = wr_start(buf, cap);
	char text[PC_FRAME_ERRMSG_MAX];
	size_t n = msg == NULL ? 0 : strnlen(msg, sizeof(text));

	if (status >= 0 || status < -PC_FRAME_ERRNO_MAX) {
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		text[i] = frame_char_ok((uint8_t)msg[i], FRAME_CS_TEXT) ? msg[i] : '?';
	}
	wr_i32(&w, status);
	wr_u16(&w, (uint16_t)n);
	wr_bytes(&w, text, n);
	return wr_finish(&w);
}

int
pc_frame_dec_error(const void *body, size_t len, struct pc_frame_error *e)
{
	struct frame_rd r;

	return rd_finish(&r, rd_start(&r, body, len) && rd_i32(&r, &e->status) && e->status < 0 &&
				     e->status >= -PC_FRAME_ERRNO_MAX &&
				     rd_str(&r, e->msg, 0, PC_FRAME_ERRMSG_MAX, FRAME_CS_TEXT));
}
