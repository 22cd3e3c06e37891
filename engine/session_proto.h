/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Decoders of what a client sends the engine: its hello, and each request
 * read out of its session region. Pure functions with no DPDK dependency,
 * so that they are fuzzed on their own (tests/fuzz/session_fuzz.c).
 */
#ifndef PC_SESSION_PROTO_DECODE_H
#define PC_SESSION_PROTO_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "pc_session_proto.h"

/* A hello that passed every check. */
struct pc_hello_info {
	uint32_t pid;    /* as the client claims it (the engine logs SO_PEERCRED's too) */
	uint32_t nslots; /* 1..PC_SESSION_SLOTS_MAX */
	uint16_t ns_len;
	uint16_t flags; /* PC_HELLO_F_* asked for */
	char ns[PC_NS_MAX];
};

/*
 * Decode a hello of len bytes received from a client. Returns 0 and fills
 * *out, or -EPROTO (not a hello, wrong version or size), -ENAMETOOLONG
 * (namespace over PC_NS_MAX), -EINVAL (NUL in the namespace, too many
 * slots), with a reason in why (NUL-terminated). Any thread.
 */
int pc_hello_decode(const void *buf, size_t len, struct pc_hello_info *out, char *why,
		    size_t whylen);

/* A request's header fields, each read once from the shared slot. */
struct pc_req_head {
	uint32_t op;
	uint32_t nkeys;
	uint64_t deadline_ns;
	uint32_t prefix_depth;
};

/*
 * Read a request's header from a slot the client may be writing at the same
 * time. Returns 0, or -EINVAL (unknown op, more than PC_REQ_MAX_KEYS keys).
 */
int pc_req_head_decode(const struct pc_req_slot *rs, struct pc_req_head *out);

/*
 * Copy key i of a request (0 <= i < PC_REQ_MAX_KEYS) into buf
 * (PC_KEY_MAX bytes): its offset and length are read once and checked
 * against the arena, overflow-safely. Returns the key length (1..PC_KEY_MAX)
 * or -EINVAL.
 */
int pc_req_key_decode(const struct pc_req_slot *rs, unsigned int i, uint8_t buf[PC_KEY_MAX]);

#endif /* PC_SESSION_PROTO_DECODE_H */
