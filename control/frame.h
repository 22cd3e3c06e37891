/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Control RPC frames: how engines talk to each other on the control and
 * discovery ports, after the auth handshake (auth.h).
 *
 * A frame is a fixed 24-byte header then body_len bytes of body, all
 * little-endian:
 *
 *   offset size field
 *    0      4   magic       PC_FRAME_MAGIC ("PCRF")
 *    4      1   version     PC_FRAME_VERSION (1)
 *    5      1   type        enum pc_frame_type
 *    6      2   flags       PC_FRAME_F_*; other bits must be 0
 *    8      8   request_id  chosen by the requester, echoed in the reply
 *   16      4   body_len    <= the cap of the type (pc_frame_body_max())
 *   20      4   reserved    0
 *
 * A reply has the request's type with PC_FRAME_F_REPLY set; a failed
 * request's reply also sets PC_FRAME_F_ERROR and carries a struct
 * pc_frame_error body. Bodies are decoded by one function per type (below
 * the header part of this file); every count and length in a body is capped
 * before it sizes anything, and a body must be consumed exactly.
 *
 * Nothing here allocates, logs or needs DPDK: the decoders are fuzzed on
 * their own (tests/fuzz/frame_fuzz.c, linked with verbs/qp_proto.c, whose
 * handshake record QP_CONNECT carries). Any thread.
 */
#ifndef PC_FRAME_H
#define PC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qp_proto.h"

#define PC_FRAME_MAGIC    0x46524350u /* "PCRF" in memory (little-endian) */
#define PC_FRAME_VERSION  1
#define PC_FRAME_HDR_SIZE 24
#define PC_FRAME_BODY_MAX (4u << 20) /* no type's cap is above this */

#define PC_FRAME_F_REPLY 0x0001u
#define PC_FRAME_F_ERROR 0x0002u
#define PC_FRAME_F_KNOWN (PC_FRAME_F_REPLY | PC_FRAME_F_ERROR)

enum pc_frame_type {
	PC_FRAME_PING = 1,           /* empty body both ways */
	PC_FRAME_REGISTER = 2,       /* a member record to a master; reply: the members */
	PC_FRAME_HEARTBEAT = 3,      /* node id + incarnation; reply: the master's epoch */
	PC_FRAME_MEMBERS = 4,        /* request empty; reply: every member record */
	PC_FRAME_DIR_PUT = 5,        /* entries {key, location}; reply: per-entry status */
	PC_FRAME_DIR_LOOKUP = 6,     /* keys; reply: per key up to 4 locations */
	PC_FRAME_DIR_EXISTS = 7,     /* keys; reply: per key present or not */
	PC_FRAME_DIR_DELETE = 8,     /* keys; reply: per-key status */
	PC_FRAME_DIR_DELETE_LOC = 9, /* {key, node id, incarnation, generation}: that node's only */
	PC_FRAME_DEREGISTER = 10,    /* a node leaving: the heartbeat body; reply empty */
	PC_FRAME_QP_CONNECT = 11,    /* node id + rdma handshake record; reply: the peer's */
	PC_FRAME_TYPE__MAX
};

struct pc_frame_hdr {
	uint8_t version;
	uint8_t type;
	uint16_t flags;
	uint64_t request_id;
	uint32_t body_len;
};

/*
 * Decode a header from the first len bytes of buf. Returns 0, -EAGAIN when
 * len < PC_FRAME_HDR_SIZE (read more), or -EBADMSG (magic, version, unknown
 * type or flag, reserved bytes, a body over the type's cap: the connection
 * must be closed).
 */
int pc_frame_hdr_decode(const void *buf, size_t len, struct pc_frame_hdr *out);

/* Encode a header into out[PC_FRAME_HDR_SIZE]. */
void pc_frame_hdr_encode(void *out, const struct pc_frame_hdr *h);

/* The body cap of a type (request or reply: the larger), 0 for an unknown type. */
uint32_t pc_frame_body_max(uint8_t type);

/* A short static name of a type for logs and counters ("dir-put"); never NULL. */
const char *pc_frame_type_name(uint8_t type);

/* ------------------------------------------------------------------------ */
/*
 * Bodies. Little-endian, no padding; a string is a u16 length then that many
 * bytes (no NUL); a count is a u32. Every string and count has a cap below,
 * and a decoder checks it, and that the count's entries can fit in the bytes
 * left, before it writes or loops over anything.
 *
 *   member     node_id, incarnation u64, role u8, flags u8, hostname,
 *              ctrl_host, ctrl_port u16, data_host, data_port u16,
 *              meta_port u16, pool_capacity u64, pool_used u64
 *   location   node_id, incarnation u64, offset u64, length u32,
 *              generation u64, tier u8, rkey u32
 *   qp record  PC_QP_INFO_LEN bytes: verbs/qp_proto.h's handshake record
 *              (pc_qp_info_encode), no length prefix
 *   key        u16 length (1..PC_FRAME_KEY_MAX), the bytes (any values)
 *
 *   type          request                         reply
 *   PING          empty                           empty
 *   REGISTER      member                          epoch u64, count, members
 *   HEARTBEAT     node_id, incarnation u64,       epoch u64, known u8
 *                 pool_used u64
 *   MEMBERS       empty                           epoch u64, count, members
 *   DIR_PUT       count, {key, location}          count, status i32
 *   DIR_LOOKUP    count, key                      count, {status i32, nloc u8,
 *                                                         nloc locations}
 *   DIR_EXISTS    count, key                      count, present u8
 *   DIR_DELETE    count, key                      count, status i32
 *   DIR_DELETE_LOC count, {key, node_id,          count, status i32
 *                  incarnation u64,
 *                  generation u64}
 *   DEREGISTER    as HEARTBEAT                    empty
 *   QP_CONNECT    node_id, qp record              qp record
 *   any reply with PC_FRAME_F_ERROR: status i32, message
 *
 * Field rules, the same in every encoder (-EINVAL) and decoder (-EBADMSG):
 *   node ids     1..63 bytes of [A-Za-z0-9._-] (what pc_ring_build takes)
 *   host names   1..255 bytes, printable ASCII without spaces (0x21..0x7e)
 *   messages     0..127 bytes, printable ASCII (0x20..0x7e)
 *   keys         1..257 bytes, any values
 *   role 0..2; member flags only PC_FRAME_MEMBER_F_*; tier 0..1; known and
 *   present 0 or 1; a location's length is > 0 and offset + length does not
 *   wrap; a per-key status is 0 or -errno (-4095..0), an error reply's is
 *   -4095..-1; a lookup entry with a non-zero status has no locations; a
 *   member list names each node id once; a qp record is one that
 *   pc_qp_info_decode() takes (magic, version, 24-bit qpn and psn, mtu 1..5,
 *   reserved bytes 0) and pc_qp_info_encode() writes.
 * So every body that decodes re-encodes to the same bytes.
 *
 * Strings decode into NUL-terminated char arrays (the encoders read them up
 * to their NUL, or to the cap + 1 bytes: an unterminated field is -EINVAL,
 * never a read past the array). Decoders write only into the caller's
 * structs and arrays, never allocate, and consume the body exactly: a
 * trailing byte is -EBADMSG. On failure what they wrote is unspecified.
 *
 * Encoders write into buf[0..cap) and return the bytes written (the
 * body_len for the header), or -EINVAL for a value the rules above refuse
 * (checked first, whatever cap is), or -ENOSPC when cap is too small; on
 * failure buf's contents are unspecified. A buffer of pc_frame_body_cap()
 * bytes is always enough. Decoders return 0 or -EBADMSG (close the
 * connection). A reply's count is not checked against the request's here:
 * the caller compares *n with what it asked for.
 *
 * pc_frame_hdr_encode() writes PC_FRAME_VERSION whatever h->version holds,
 * and pc_frame_hdr_decode() also refuses PC_FRAME_F_ERROR without
 * PC_FRAME_F_REPLY and a body_len over the cap of the frame's direction
 * (pc_frame_body_cap()), which is at most pc_frame_body_max().
 *
 * Any thread; nothing here keeps state.
 */

#define PC_FRAME_NODE_ID_MAX 63   /* bytes of a node id */
#define PC_FRAME_HOST_MAX    255  /* bytes of a host name */
#define PC_FRAME_KEY_MAX     257  /* a namespaced key: namespace (128) + 1 + key (128) */
#define PC_FRAME_BATCH_MAX   128  /* keys or entries per directory frame */
#define PC_FRAME_LOCS_MAX    4    /* locations per key */
#define PC_FRAME_MEMBERS_MAX 1024 /* members per member list */
#define PC_FRAME_ERRMSG_MAX  127  /* bytes of an error reply's message */
#define PC_FRAME_ERRNO_MAX   4095 /* a status is 0 or -1..-4095 */

/* Encoded sizes, largest and smallest: buffers can be sized statically. */
#define PC_FRAME_STR_WIRE(max) (2u + (max))
#define PC_FRAME_MEMBER_WIRE_MAX                                                                   \
	(PC_FRAME_STR_WIRE(PC_FRAME_NODE_ID_MAX) + 8u + 1u + 1u +                                  \
	 3u * PC_FRAME_STR_WIRE(PC_FRAME_HOST_MAX) + 3u * 2u + 8u + 8u)
#define PC_FRAME_MEMBER_WIRE_MIN (3u + 8u + 1u + 1u + 3u * 3u + 3u * 2u + 8u + 8u)
#define PC_FRAME_LOC_WIRE_MAX                                                                      \
	(PC_FRAME_STR_WIRE(PC_FRAME_NODE_ID_MAX) + 8u + 8u + 4u + 8u + 1u + 4u)
#define PC_FRAME_LOC_WIRE_MIN (3u + 8u + 8u + 4u + 8u + 1u + 4u)
#define PC_FRAME_KEY_WIRE_MAX PC_FRAME_STR_WIRE(PC_FRAME_KEY_MAX)
#define PC_FRAME_KEY_WIRE_MIN 3u
#define PC_FRAME_DELLOC_WIRE_MAX                                                                   \
	(PC_FRAME_KEY_WIRE_MAX + PC_FRAME_STR_WIRE(PC_FRAME_NODE_ID_MAX) + 8u + 8u)
#define PC_FRAME_DELLOC_WIRE_MIN (PC_FRAME_KEY_WIRE_MIN + 3u + 8u + 8u)
#define PC_FRAME_LOOKUP_WIRE_MAX (4u + 1u + PC_FRAME_LOCS_MAX * PC_FRAME_LOC_WIRE_MAX)
#define PC_FRAME_LOOKUP_WIRE_MIN (4u + 1u)

/* The largest body of each message (pc_frame_body_cap() returns these). */
#define PC_FRAME_ERROR_BODY_MAX      (4u + PC_FRAME_STR_WIRE(PC_FRAME_ERRMSG_MAX))
#define PC_FRAME_REGISTER_REQ_MAX    PC_FRAME_MEMBER_WIRE_MAX
#define PC_FRAME_MEMBERS_REPLY_MAX   (8u + 4u + PC_FRAME_MEMBERS_MAX * PC_FRAME_MEMBER_WIRE_MAX)
#define PC_FRAME_HEARTBEAT_REQ_MAX   (PC_FRAME_STR_WIRE(PC_FRAME_NODE_ID_MAX) + 8u + 8u)
#define PC_FRAME_HEARTBEAT_REPLY_MAX (8u + 1u)
#define PC_FRAME_DIR_PUT_REQ_MAX                                                                   \
	(4u + PC_FRAME_BATCH_MAX * (PC_FRAME_KEY_WIRE_MAX + PC_FRAME_LOC_WIRE_MAX))
#define PC_FRAME_DIR_KEYS_REQ_MAX     (4u + PC_FRAME_BATCH_MAX * PC_FRAME_KEY_WIRE_MAX)
#define PC_FRAME_DIR_STATUS_REPLY_MAX (4u + PC_FRAME_BATCH_MAX * 4u)
#define PC_FRAME_DIR_LOOKUP_REPLY_MAX (4u + PC_FRAME_BATCH_MAX * PC_FRAME_LOOKUP_WIRE_MAX)
#define PC_FRAME_DIR_EXISTS_REPLY_MAX (4u + PC_FRAME_BATCH_MAX * 1u)
#define PC_FRAME_DIR_DELLOC_REQ_MAX   (4u + PC_FRAME_BATCH_MAX * PC_FRAME_DELLOC_WIRE_MAX)
#define PC_FRAME_QP_CONNECT_REQ_MAX   (PC_FRAME_STR_WIRE(PC_FRAME_NODE_ID_MAX) + PC_QP_INFO_LEN)
#define PC_FRAME_QP_CONNECT_REPLY_MAX PC_QP_INFO_LEN

enum pc_frame_role {
	PC_FRAME_ROLE_INFERENCE = 0,
	PC_FRAME_ROLE_STORAGE = 1,
	PC_FRAME_ROLE_META = 2, /* meta-only: discovery and directory, no pool */
};

#define PC_FRAME_MEMBER_F_MASTER 0x01u /* runs a discovery master */
#define PC_FRAME_MEMBER_F_KNOWN  PC_FRAME_MEMBER_F_MASTER

enum pc_frame_tier {
	PC_FRAME_TIER_MEMORY = 0,
	PC_FRAME_TIER_DISK = 1,
};

struct pc_frame_key {
	uint16_t len; /* 1..PC_FRAME_KEY_MAX */
	uint8_t bytes[PC_FRAME_KEY_MAX];
};

struct pc_frame_member {
	char node_id[PC_FRAME_NODE_ID_MAX + 1];
	uint64_t incarnation; /* new on every start of the node */
	uint8_t role;         /* enum pc_frame_role */
	uint8_t flags;        /* PC_FRAME_MEMBER_F_* */
	uint16_t ctrl_port;
	uint16_t data_port;
	uint16_t meta_port; /* the discovery (meta) port */
	uint64_t pool_capacity;
	uint64_t pool_used;
	char hostname[PC_FRAME_HOST_MAX + 1];
	char ctrl_host[PC_FRAME_HOST_MAX + 1];
	char data_host[PC_FRAME_HOST_MAX + 1];
};

struct pc_frame_location {
	char node_id[PC_FRAME_NODE_ID_MAX + 1];
	uint64_t incarnation;
	uint64_t offset; /* in the node's segment */
	uint64_t generation;
	uint32_t length; /* > 0; offset + length does not wrap */
	uint32_t rkey;
	uint8_t tier; /* enum pc_frame_tier */
};

struct pc_frame_heartbeat {
	char node_id[PC_FRAME_NODE_ID_MAX + 1];
	uint64_t incarnation;
	uint64_t pool_used;
};

/* A DIR_PUT entry. */
struct pc_frame_put {
	struct pc_frame_key key;
	struct pc_frame_location loc;
};

/* A DIR_LOOKUP reply entry: status 0 with 0..4 locations, or -errno with none. */
struct pc_frame_lookup {
	int32_t status;
	uint8_t nloc;
	struct pc_frame_location loc[PC_FRAME_LOCS_MAX];
};

/*
 * A DIR_DELETE_LOC entry: drop the key's location on that node incarnation.
 * generation 0 drops it whatever its generation (the node unpublishing its
 * own page); any other value only when the location has that generation (a
 * reader found the page gone: a newer location of the key stays).
 */
struct pc_frame_delete_loc {
	struct pc_frame_key key;
	char node_id[PC_FRAME_NODE_ID_MAX + 1];
	uint64_t incarnation;
	uint64_t generation; /* 0 = any */
};

/*
 * A QP_CONNECT request: the requester's node id and its handshake record
 * (whose incarnation is the requester's node incarnation).
 */
struct pc_frame_qp_connect {
	char node_id[PC_FRAME_NODE_ID_MAX + 1];
	struct pc_qp_info info;
};

/* The body of a reply with PC_FRAME_F_ERROR. */
struct pc_frame_error {
	int32_t status; /* -errno */
	char msg[PC_FRAME_ERRMSG_MAX + 1];
};

/*
 * The body cap of one direction of a type: flags 0 (request),
 * PC_FRAME_F_REPLY or PC_FRAME_F_REPLY | PC_FRAME_F_ERROR. 0 for an unknown
 * type or flags, and for a direction whose body is empty.
 */
uint32_t pc_frame_body_cap(uint8_t type, uint16_t flags);

/* An empty body (PING both ways, the MEMBERS request): returns 0; decode: len must be 0. */
int pc_frame_enc_empty(void *buf, size_t cap);
int pc_frame_dec_empty(const void *body, size_t len);

/* REGISTER request: the sender's member record. */
int pc_frame_enc_register(void *buf, size_t cap, const struct pc_frame_member *m);
int pc_frame_dec_register(const void *body, size_t len, struct pc_frame_member *m);

/*
 * REGISTER and MEMBERS replies: the master's epoch and n (up to
 * PC_FRAME_MEMBERS_MAX) member records, each node id once. The decoder
 * refuses more than `max` members.
 */
int pc_frame_enc_members(void *buf, size_t cap, uint64_t epoch, const struct pc_frame_member *m,
			 unsigned int n);
int pc_frame_dec_members(const void *body, size_t len, uint64_t *epoch, struct pc_frame_member *m,
			 unsigned int max, unsigned int *n);

/* HEARTBEAT request. */
int pc_frame_enc_heartbeat(void *buf, size_t cap, const struct pc_frame_heartbeat *hb);
int pc_frame_dec_heartbeat(const void *body, size_t len, struct pc_frame_heartbeat *hb);

/* HEARTBEAT reply: known false means the master does not know this node incarnation: re-register.
 */
int pc_frame_enc_heartbeat_reply(void *buf, size_t cap, uint64_t epoch, bool known);
int pc_frame_dec_heartbeat_reply(const void *body, size_t len, uint64_t *epoch, bool *known);

/* DIR_PUT request: n (up to PC_FRAME_BATCH_MAX) entries; the decoder refuses more than max. */
int pc_frame_enc_dir_put(void *buf, size_t cap, const struct pc_frame_put *e, unsigned int n);
int pc_frame_dec_dir_put(const void *body, size_t len, struct pc_frame_put *e, unsigned int max,
			 unsigned int *n);

/* DIR_LOOKUP, DIR_EXISTS and DIR_DELETE requests: n keys. */
int pc_frame_enc_dir_keys(void *buf, size_t cap, const struct pc_frame_key *keys, unsigned int n);
int pc_frame_dec_dir_keys(const void *body, size_t len, struct pc_frame_key *keys, unsigned int max,
			  unsigned int *n);

/* DIR_DELETE_LOC request: n entries. */
int pc_frame_enc_dir_delete_loc(void *buf, size_t cap, const struct pc_frame_delete_loc *e,
				unsigned int n);
int pc_frame_dec_dir_delete_loc(const void *body, size_t len, struct pc_frame_delete_loc *e,
				unsigned int max, unsigned int *n);

/* DIR_PUT, DIR_DELETE and DIR_DELETE_LOC replies: one status (0 or -errno) per entry. */
int pc_frame_enc_dir_status(void *buf, size_t cap, const int32_t *status, unsigned int n);
int pc_frame_dec_dir_status(const void *body, size_t len, int32_t *status, unsigned int max,
			    unsigned int *n);

/* DIR_LOOKUP reply: one entry per key. */
int pc_frame_enc_dir_lookup_reply(void *buf, size_t cap, const struct pc_frame_lookup *e,
				  unsigned int n);
int pc_frame_dec_dir_lookup_reply(const void *body, size_t len, struct pc_frame_lookup *e,
				  unsigned int max, unsigned int *n);

/* DIR_EXISTS reply: one flag per key. */
int pc_frame_enc_dir_exists_reply(void *buf, size_t cap, const bool *present, unsigned int n);
int pc_frame_dec_dir_exists_reply(const void *body, size_t len, bool *present, unsigned int max,
				  unsigned int *n);

/*
 * QP_CONNECT request. A record pc_qp_info_encode() refuses is -EINVAL; one
 * pc_qp_info_decode() refuses is -EBADMSG.
 */
int pc_frame_enc_qp_connect(void *buf, size_t cap, const struct pc_frame_qp_connect *q);
int pc_frame_dec_qp_connect(const void *body, size_t len, struct pc_frame_qp_connect *q);

/* QP_CONNECT reply: the passive side's record, exactly PC_QP_INFO_LEN bytes. */
int pc_frame_enc_qp_connect_reply(void *buf, size_t cap, const struct pc_qp_info *info);
int pc_frame_dec_qp_connect_reply(const void *body, size_t len, struct pc_qp_info *info);

/*
 * Error reply (PC_FRAME_F_REPLY | PC_FRAME_F_ERROR), any type. status is
 * -1..-4095 (else -EINVAL). For the sender's convenience msg (NULL: empty)
 * is cut to PC_FRAME_ERRMSG_MAX bytes and any byte outside 0x20..0x7e
 * becomes '?': an error reply can always be sent. The decoder is strict.
 */
int pc_frame_enc_error(void *buf, size_t cap, int32_t status, const char *msg);
int pc_frame_dec_error(const void *body, size_t len, struct pc_frame_error *e);

#endif /* PC_FRAME_H */
