/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the decoders of what a local client sends the engine
 * (engine/session_proto.c): its hello, and the request it writes into a
 * request slot of its session region.
 *
 * Input: byte 0 picks the decoder. 'H': the rest is a hello as received
 * (any length). Otherwise the rest is laid over a zeroed struct pc_req_slot
 * (what a scribbling client can write), and the request's header and every
 * key slot are decoded.
 *
 * Properties: a decoded hello has a namespace of at most PC_NS_MAX bytes with
 * no NUL, 1..PC_SESSION_SLOTS_MAX slots, and came from exactly
 * sizeof(struct pc_hello) bytes with the right magic and version; a refused
 * one returns a documented error with a non-empty reason. A decoded
 * request has a known op and at most PC_REQ_MAX_KEYS keys; a decoded key
 * has 1..PC_KEY_MAX bytes, lies wholly inside the arena, and equals the
 * arena bytes at its offset. The slot sits at the very end of an exact
 * malloc, so a read past it is an ASan report.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "session_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_hello(const uint8_t *data, size_t size)
{
	struct pc_hello_info info;
	char why[128] = "";
	uint8_t *buf = malloc(size ? size : 1);
	const struct pc_hello *h;
	int rc;

	memcpy(buf, data, size);
	rc = pc_hello_decode(buf, size, &info, why, sizeof(why));
	if (rc == 0) {
		h = (const struct pc_hello *)buf;
		if (size != sizeof(struct pc_hello) || h->magic != PC_HELLO_MAGIC ||
		    h->version != PC_PROTO_VERSION || info.ns_len > PC_NS_MAX ||
		    memchr(info.ns, '\0', info.ns_len) != NULL || info.nslots == 0 ||
		    info.nslots > PC_SESSION_SLOTS_MAX) {
			abort();
		}
	} else if ((rc != -EPROTO && rc != -ENAMETOOLONG && rc != -EINVAL) || why[0] == '\0') {
		abort();
	}
	free(buf);
}

static void
fuzz_request(const uint8_t *data, size_t size)
{
	struct pc_req_slot *rs = malloc(sizeof(*rs));
	struct pc_req_head head;
	uint8_t key[PC_KEY_MAX];
	unsigned int i;

	memset(rs, 0, sizeof(*rs));
	memcpy(rs, data, size < sizeof(*rs) ? size : sizeof(*rs));
	if (pc_req_head_decode(rs, &head) == 0 &&
	    (head.op >= PC_OP__COUNT || head.nkeys > PC_REQ_MAX_KEYS)) {
		abort();
	}
	for (i = 0; i < PC_REQ_MAX_KEYS; i++) {
		int len = pc_req_key_decode(rs, i, key);
		uint32_t off = rs->keys[i].key_off;

		if (len == -EINVAL) {
			continue;
		}
		if (len < 1 || len > PC_KEY_MAX || len != rs->keys[i].key_len ||
		    (uint64_t)off + (uint64_t)len > PC_REQ_ARENA_SIZE ||
		    memcmp(key, rs->arena + off, (size_t)len) != 0) {
			abort();
		}
	}
	if (pc_req_key_decode(rs, PC_REQ_MAX_KEYS, key) != -EINVAL) {
		abort();
	}
	free(rs);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0) {
		return 0;
	}
	if (data[0] == 'H') {
		fuzz_hello(data + 1, size - 1);
	} else {
		fuzz_request(data + 1, size - 1);
	}
	return 0;
}
