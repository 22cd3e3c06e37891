/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the control RPC frame codecs (control/frame.c).
 *
 * Input: a byte stream as a connection receives it, frames back to back.
 * Each header is decoded from the bytes left; a good one's body (when the
 * input holds all of it) is copied into a malloc of exactly body_len bytes,
 * so a read past it is an ASan report, and decoded with the decoder its
 * type and direction (flags) pick. Then every other body decoder is run on
 * the same bytes too, so each one sees every shape the fuzzer finds.
 *
 * Properties: a header decode returns 0, -EAGAIN exactly when fewer than 24
 * bytes are left, or -EBADMSG; a decoded header re-encodes to the same 24
 * bytes and its body_len is within pc_frame_body_cap() of its direction,
 * which is within pc_frame_body_max() and PC_FRAME_BODY_MAX. A body decode
 * returns 0 or -EBADMSG; a body that decodes re-encodes to the same bytes
 * (the encoding is canonical), its length is within the caps of the body's
 * own type and direction, and the same encoder given one byte less refuses
 * with -ENOSPC (into an exact malloc: a write past the cap is a report).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decoder outputs: static, a member list at its cap is most of a megabyte. */
static struct pc_frame_member g_members[PC_FRAME_MEMBERS_MAX];
static struct pc_frame_put g_puts[PC_FRAME_BATCH_MAX];
static struct pc_frame_key g_keys[PC_FRAME_BATCH_MAX];
static struct pc_frame_delete_loc g_dels[PC_FRAME_BATCH_MAX];
static struct pc_frame_lookup g_lookups[PC_FRAME_BATCH_MAX];
static int32_t g_status[PC_FRAME_BATCH_MAX];
static bool g_present[PC_FRAME_BATCH_MAX];

/* Re-encode what a decoder produced: `enc` writes into buf[0..cap). */
typedef int (*reenc_fn)(void *buf, size_t cap);

static unsigned int g_n;
static uint64_t g_epoch;
static bool g_known;
static struct pc_frame_heartbeat g_hb;
static struct pc_frame_error g_err;
static struct pc_frame_qp_connect g_qp;

/*
 * A body that decoded: it re-encodes to the same len bytes, within the cap
 * of its own direction (cap), and one byte less of room is -ENOSPC.
 */
static void
check_canonical(const uint8_t *body, size_t len, uint32_t cap, reenc_fn enc)
{
	uint8_t *buf = malloc(len == 0 ? 1 : len);
	int rc;

	if (buf == NULL) {
		return;
	}
	if (len > cap || cap > PC_FRAME_BODY_MAX) {
		__builtin_trap();
	}
	rc = enc(buf, len);
	if (rc < 0 || (size_t)rc != len || (len > 0 && memcmp(buf, body, len) != 0)) {
		__builtin_trap();
	}
	if (len > 0 && enc(buf, len - 1) != -ENOSPC) {
		__builtin_trap();
	}
	free(buf);
}

static void
check_rc(int rc)
{
	if (rc != 0 && rc != -EBADMSG) {
		__builtin_trap();
	}
}

static int
reenc_empty(void *buf, size_t cap)
{
	return pc_frame_enc_empty(buf, cap);
}

static int
reenc_register(void *buf, size_t cap)
{
	return pc_frame_enc_register(buf, cap, &g_members[0]);
}

static int
reenc_members(void *buf, size_t cap)
{
	return pc_frame_enc_members(buf, cap, g_epoch, g_members, g_n);
}

static int
reenc_heartbeat(void *buf, size_t cap)
{
	return pc_frame_enc_heartbeat(buf, cap, &g_hb);
}

static int
reenc_heartbeat_reply(void *buf, size_t cap)
{
	return pc_frame_enc_heartbeat_reply(buf, cap, g_epoch, g_known);
}

static int
reenc_dir_put(void *buf, size_t cap)
{
	return pc_frame_enc_dir_put(buf, cap, g_puts, g_n);
}

static int
reenc_dir_keys(void *buf, size_t cap)
{
	return pc_frame_enc_dir_keys(buf, cap, g_keys, g_n);
}

static int
reenc_dir_delete_loc(void *buf, size_t cap)
{
	return pc_frame_enc_dir_delete_loc(buf, cap, g_dels, g_n);
}

static int
reenc_dir_status(void *buf, size_t cap)
{
	return pc_frame_enc_dir_status(buf, cap, g_status, g_n);
}

static int
reenc_dir_lookup_reply(void *buf, size_t cap)
{
	return pc_frame_enc_dir_lookup_reply(buf, cap, g_lookups, g_n);
}

static int
reenc_dir_exists_reply(void *buf, size_t cap)
{
	return pc_frame_enc_dir_exists_reply(buf, cap, g_present, g_n);
}

static int
reenc_qp_connect(void *buf, size_t cap)
{
	return pc_frame_enc_qp_connect(buf, cap, &g_qp);
}

static int
reenc_qp_connect_reply(void *buf, size_t cap)
{
	return pc_frame_enc_qp_connect_reply(buf, cap, &g_qp.info);
}

static int
reenc_error(void *buf, size_t cap)
{
	return pc_frame_enc_error(buf, cap, g_err.status, g_err.msg);
}

/* Decode with every decoder of one body shape; returns the decode's result. */
enum body_kind {
	K_EMPTY,
	K_REGISTER,
	K_MEMBERS,
	K_HEARTBEAT,
	K_HEARTBEAT_REPLY,
	K_DIR_PUT,
	K_DIR_KEYS,
	K_DIR_DELETE_LOC,
	K_DIR_STATUS,
	K_DIR_LOOKUP_REPLY,
	K_DIR_EXISTS_REPLY,
	K_QP_CONNECT,
	K_QP_CONNECT_REPLY,
	K_ERROR,
	K__COUNT
};

/* Where each kind is used, for its cap: a type and a direction. */
static const struct {
	uint8_t type;
	uint16_t flags;
	reenc_fn enc;
} g_kinds[K__COUNT] = {
	[K_EMPTY] = {PC_FRAME_PING, 0, reenc_empty},
	[K_REGISTER] = {PC_FRAME_REGISTER, 0, reenc_register},
	[K_MEMBERS] = {PC_FRAME_MEMBERS, PC_FRAME_F_REPLY, reenc_members},
	[K_HEARTBEAT] = {PC_FRAME_HEARTBEAT, 0, reenc_heartbeat},
	[K_HEARTBEAT_REPLY] = {PC_FRAME_HEARTBEAT, PC_FRAME_F_REPLY, reenc_heartbeat_reply},
	[K_DIR_PUT] = {PC_FRAME_DIR_PUT, 0, reenc_dir_put},
	[K_DIR_KEYS] = {PC_FRAME_DIR_LOOKUP, 0, reenc_dir_keys},
	[K_DIR_DELETE_LOC] = {PC_FRAME_DIR_DELETE_LOC, 0, reenc_dir_delete_loc},
	[K_DIR_STATUS] = {PC_FRAME_DIR_PUT, PC_FRAME_F_REPLY, reenc_dir_status},
	[K_DIR_LOOKUP_REPLY] = {PC_FRAME_DIR_LOOKUP, PC_FRAME_F_REPLY, reenc_dir_lookup_reply},
	[K_DIR_EXISTS_REPLY] = {PC_FRAME_DIR_EXISTS, PC_FRAME_F_REPLY, reenc_dir_exists_reply},
	[K_QP_CONNECT] = {PC_FRAME_QP_CONNECT, 0, reenc_qp_connect},
	[K_QP_CONNECT_REPLY] = {PC_FRAME_QP_CONNECT, PC_FRAME_F_REPLY, reenc_qp_connect_reply},
	[K_ERROR] = {PC_FRAME_PING, PC_FRAME_F_KNOWN, reenc_error},
};

static int
decode_kind(enum body_kind k, const uint8_t *b, size_t len)
{
	switch (k) {
	case K_EMPTY:
		return pc_frame_dec_empty(b, len);
	case K_REGISTER:
		return pc_frame_dec_register(b, len, &g_members[0]);
	case K_MEMBERS:
		return pc_frame_dec_members(b, len, &g_epoch, g_members, PC_FRAME_MEMBERS_MAX,
					    &g_n);
	case K_HEARTBEAT:
		return pc_frame_dec_heartbeat(b, len, &g_hb);
	case K_HEARTBEAT_REPLY:
		return pc_frame_dec_heartbeat_reply(b, len, &g_epoch, &g_known);
	case K_DIR_PUT:
		return pc_frame_dec_dir_put(b, len, g_puts, PC_FRAME_BATCH_MAX, &g_n);
	case K_DIR_KEYS:
		return pc_frame_dec_dir_keys(b, len, g_keys, PC_FRAME_BATCH_MAX, &g_n);
	case K_DIR_DELETE_LOC:
		return pc_frame_dec_dir_delete_loc(b, len, g_dels, PC_FRAME_BATCH_MAX, &g_n);
	case K_DIR_STATUS:
		return pc_frame_dec_dir_status(b, len, g_status, PC_FRAME_BATCH_MAX, &g_n);
	case K_DIR_LOOKUP_REPLY:
		return pc_frame_dec_dir_lookup_reply(b, len, g_lookups, PC_FRAME_BATCH_MAX, &g_n);
	case K_DIR_EXISTS_REPLY:
		return pc_frame_dec_dir_exists_reply(b, len, g_present, PC_FRAME_BATCH_MAX, &g_n);
	case K_QP_CONNECT:
		return pc_frame_dec_qp_connect(b, len, &g_qp);
	case K_QP_CONNECT_REPLY:
		return pc_frame_dec_qp_connect_reply(b, len, &g_qp.info);
	case K_ERROR:
		return pc_frame_dec_error(b, len, &g_err);
	case K__COUNT:
		break;
	}
	__builtin_trap();
}

/* Decode as kind k and check the properties; the cap is that of the kind's own use. */
static int
fuzz_kind(enum body_kind k, const uint8_t *b, size_t len)
{
	int rc = decode_kind(k, b, len);

	check_rc(rc);
	if (rc == 0) {
		check_canonical(b, len, pc_frame_body_cap(g_kinds[k].type, g_kinds[k].flags),
				g_kinds[k].enc);
	}
	return rc;
}

/* The body shape of a type in a direction. */
static enum body_kind
kind_of(uint8_t type, uint16_t flags)
{
	bool reply = (flags & PC_FRAME_F_REPLY) != 0;

	if ((flags & PC_FRAME_F_ERROR) != 0) {
		return K_ERROR;
	}
	switch (type) {
	case PC_FRAME_PING:
		return K_EMPTY;
	case PC_FRAME_REGISTER:
		return reply ? K_MEMBERS : K_REGISTER;
	case PC_FRAME_HEARTBEAT:
		return reply ? K_HEARTBEAT_REPLY : K_HEARTBEAT;
	case PC_FRAME_MEMBERS:
		return reply ? K_MEMBERS : K_EMPTY;
	case PC_FRAME_DIR_PUT:
		return reply ? K_DIR_STATUS : K_DIR_PUT;
	case PC_FRAME_DIR_LOOKUP:
		return reply ? K_DIR_LOOKUP_REPLY : K_DIR_KEYS;
	case PC_FRAME_DIR_EXISTS:
		return reply ? K_DIR_EXISTS_REPLY : K_DIR_KEYS;
	case PC_FRAME_DIR_DELETE:
		return reply ? K_DIR_STATUS : K_DIR_KEYS;
	case PC_FRAME_DIR_DELETE_LOC:
		return reply ? K_DIR_STATUS : K_DIR_DELETE_LOC;
	case PC_FRAME_DEREGISTER:
		return reply ? K_EMPTY : K_HEARTBEAT;
	case PC_FRAME_QP_CONNECT:
		return reply ? K_QP_CONNECT_REPLY : K_QP_CONNECT;
	}
	__builtin_trap(); /* the header decoder let an unknown type through */
}

static void
fuzz_frame(const struct pc_frame_hdr *h, const uint8_t *body)
{
	enum body_kind own = kind_of(h->type, h->flags);
	uint8_t *copy = malloc(h->body_len == 0 ? 1 : h->body_len);

	if (copy == NULL) {
		return;
	}
	memcpy(copy, body, h->body_len);
	/* The frame's own decoder, held to the cap of the frame's type and direction. */
	if (fuzz_kind(own, copy, h->body_len) == 0 &&
	    h->body_len > pc_frame_body_cap(h->type, h->flags)) {
		__builtin_trap();
	}
	/* Every other decoder on the same bytes. */
	for (int k = 0; k < K__COUNT; k++) {
		if (k != (int)own) {
			(void)fuzz_kind((enum body_kind)k, copy, h->body_len);
		}
	}
	free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	for (;;) {
		struct pc_frame_hdr h;
		uint8_t again[PC_FRAME_HDR_SIZE];
		size_t left = size - off;
		int rc = pc_frame_hdr_decode(data + off, left, &h);

		if (rc == -EAGAIN) {
			if (left >= PC_FRAME_HDR_SIZE) {
				__builtin_trap();
			}
			return 0;
		}
		if (rc != 0 && rc != -EBADMSG) {
			__builtin_trap();
		}
		if (left < PC_FRAME_HDR_SIZE) {
			__builtin_trap();
		}
		if (rc != 0) {
			/* A bad header closes the connection; the bytes after it are never read. */
			return 0;
		}
		pc_frame_hdr_encode(again, &h);
		if (memcmp(again, data + off, PC_FRAME_HDR_SIZE) != 0 ||
		    h.version != PC_FRAME_VERSION ||
		    h.body_len > pc_frame_body_cap(h.type, h.flags) ||
		    pc_frame_body_cap(h.type, h.flags) > pc_frame_body_max(h.type) ||
		    pc_frame_body_max(h.type) > PC_FRAME_BODY_MAX) {
			__builtin_trap();
		}
		if (h.body_len > left - PC_FRAME_HDR_SIZE) {
			return 0; /* the rest of the body has not arrived */
		}
		fuzz_frame(&h, data + off + PC_FRAME_HDR_SIZE);
		off += PC_FRAME_HDR_SIZE + h.body_len;
	}
}
