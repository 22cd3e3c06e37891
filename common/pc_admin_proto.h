/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The admin protocol: how peercache-ctl (tools/peercache-ctl.c) asks a
 * running engine what it knows. Shared by the engine (engine/admin.c,
 * engine/admin_proto.c) and the tool; nothing here needs EAL.
 *
 * Transport: the engine's client socket (`engine_socket`, SOCK_SEQPACKET).
 * A connection whose first message starts with PC_ADMIN_MAGIC (instead of
 * a session hello's PC_HELLO_MAGIC) is an admin connection. An engine built
 * before this protocol answers it with a refused struct pc_hello_reply.
 *
 * Request: one message per command, at most PC_ADMIN_REQ_MAX bytes:
 *
 *   struct pc_admin_req_hdr {magic, version, op, flags}
 *   PC_ADMIN_OP_LOOKUP only, then (lengths are unaligned u16s):
 *     u16 ns_len (0..PC_NS_MAX), ns bytes (no NUL),
 *     u16 nkeys (1..PC_ADMIN_KEYS_MAX),
 *     nkeys x {u16 key_len (1..PC_KEY_MAX), key bytes (any)}
 *
 * The message must end exactly after the last key (after the header for
 * the other ops). A lookup's directory key is ns '\0' key.
 *
 * Reply: one or more messages, each a struct pc_admin_reply_hdr then `len`
 * bytes of text (at most PC_ADMIN_CHUNK_MAX). PC_ADMIN_RF_MORE says another
 * part follows; the parts' texts concatenated are the reply: a human table
 * or, with PC_ADMIN_F_JSON, one JSON document (UTF-8), ending in a newline.
 * Every part carries the same status; status < 0 (-errno) means the text is
 * the engine's error message. A request the engine cannot decode gets an
 * error reply and the connection is then closed; after any other reply the
 * next request may follow on the same connection. Requests are answered in
 * order, one at a time.
 *
 * Byte order: host (both ends are on one machine).
 */
#ifndef PC_ADMIN_PROTO_H
#define PC_ADMIN_PROTO_H

#include <stdint.h>

#include "pc_session_proto.h"

#define PC_ADMIN_VERSION 1

#define PC_ADMIN_MAGIC       0x44414350u /* "PCAD" */
#define PC_ADMIN_REPLY_MAGIC 0x52414350u /* "PCAR" */

/* Keys per LOOKUP request: control/cluster.h's PC_CLUSTER_LOOKUP_MAX. */
#define PC_ADMIN_KEYS_MAX 1024

/* Text bytes per reply message. */
#define PC_ADMIN_CHUNK_MAX 32768

enum pc_admin_op {
	PC_ADMIN_OP_MEMBERS = 1, /* this node, the member set, the masters */
	PC_ADMIN_OP_RING = 2,    /* the ring and each node's share of it */
	PC_ADMIN_OP_LOOKUP = 3,  /* where the directory says keys are */
	PC_ADMIN_OP_STATS = 4,   /* store, sessions, cluster and lcore counters */
	PC_ADMIN_OP__END
};

/* Request flags. */
#define PC_ADMIN_F_JSON 0x1u /* answer with one JSON document */
#define PC_ADMIN_F_ALL  PC_ADMIN_F_JSON

/* Reply flags. */
#define PC_ADMIN_RF_MORE 0x1u /* another part of this reply follows */

struct pc_admin_req_hdr {
	uint32_t magic;   /* PC_ADMIN_MAGIC */
	uint16_t version; /* PC_ADMIN_VERSION */
	uint16_t op;      /* enum pc_admin_op */
	uint32_t flags;   /* PC_ADMIN_F_* */
};
_Static_assert(sizeof(struct pc_admin_req_hdr) == 12, "admin request header layout");

/* Every request fits: the largest LOOKUP (namespace and every key at their maximum). */
#define PC_ADMIN_REQ_LOOKUP_MAX                                                                    \
	(sizeof(struct pc_admin_req_hdr) + 2 + PC_NS_MAX + 2 +                                     \
	 (size_t)PC_ADMIN_KEYS_MAX * (2 + PC_KEY_MAX))
#define PC_ADMIN_REQ_MAX 139264u /* 136 KiB */
_Static_assert(PC_ADMIN_REQ_LOOKUP_MAX <= PC_ADMIN_REQ_MAX, "the largest lookup fits");

struct pc_admin_reply_hdr {
	uint32_t magic; /* PC_ADMIN_REPLY_MAGIC */
	int32_t status; /* 0, or -errno: the text is the error message */
	uint32_t flags; /* PC_ADMIN_RF_* */
	uint32_t len;   /* text bytes after this header, <= PC_ADMIN_CHUNK_MAX */
};
_Static_assert(sizeof(struct pc_admin_reply_hdr) == 16, "admin reply header layout");

#endif /* PC_ADMIN_PROTO_H */
