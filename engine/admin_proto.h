/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Decoder of an admin request (common/pc_admin_proto.h) as received from a
 * peercache-ctl connection. A pure function with no DPDK dependency and no
 * allocation, fuzzed on its own (tests/fuzz/admin_fuzz.c).
 */
#ifndef PC_ADMIN_PROTO_DECODE_H
#define PC_ADMIN_PROTO_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "pc_admin_proto.h"

/* One key of a LOOKUP, pointing into the decoded buffer. */
struct pc_admin_key {
	const uint8_t *bytes;
	uint16_t len; /* 1..PC_KEY_MAX */
};

/* A request that passed every check. Pointers point into the decoded buffer. */
struct pc_admin_req {
	uint16_t op;    /* enum pc_admin_op */
	uint32_t flags; /* PC_ADMIN_F_* */
	uint16_t ns_len;
	const uint8_t *ns;  /* LOOKUP: ns_len bytes, no NUL */
	unsigned int nkeys; /* LOOKUP: 1..PC_ADMIN_KEYS_MAX; else 0 */
	struct pc_admin_key keys[PC_ADMIN_KEYS_MAX];
};

/*
 * Decode a request of len bytes (buf needs no alignment). Returns 0 and
 * fills *out, or, with a reason in why (NUL-terminated, never empty):
 *   -EMSGSIZE      len over PC_ADMIN_REQ_MAX
 *   -EPROTO        shorter than a header, not PC_ADMIN_MAGIC, another version
 *   -EINVAL        unknown op or flags, a body where none belongs, a count
 *                  out of range, an empty key, a NUL in the namespace, a
 *                  length past the end (truncated), bytes after the end
 *   -ENAMETOOLONG  the namespace over PC_NS_MAX or a key over PC_KEY_MAX
 * Any thread; reads nothing outside buf[0..len).
 */
int pc_admin_req_decode(const void *buf, size_t len, struct pc_admin_req *out, char *why,
			size_t whylen);

/* The op's name ("members", "ring", "lookup", "stats"), or "?" for another value. */
const char *pc_admin_op_name(unsigned int op);

#endif /* PC_ADMIN_PROTO_DECODE_H */
