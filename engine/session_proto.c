/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "session_proto.h"

int
pc_hello_decode(const void *buf, size_t len, struct pc_hello_info *out, char *why, size_t whylen)
{
	struct pc_hello h;

	memset(&h, 0, sizeof(h));
	memcpy(&h, buf, len < sizeof(h) ? len : sizeof(h));
	if (len < offsetof(struct pc_hello, pid) || h.magic != PC_HELLO_MAGIC) {
		snprintf(why, whylen, "not a PeerCache hello");
		return -EPROTO;
	}
	if (h.version != PC_PROTO_VERSION) {
		snprintf(why, whylen, "protocol version %u, this engine speaks %d", h.version,
			 PC_PROTO_VERSION);
		return -EPROTO;
	}
	if (len != sizeof(h)) {
		snprintf(why, whylen, "hello of %zu bytes, expected %zu", len, sizeof(h));
		return -EPROTO;
	}
	if (h.ns_len > PC_NS_MAX) {
		snprintf(why, whylen, "namespace of %u bytes, at most %d", h.ns_len, PC_NS_MAX);
		return -ENAMETOOLONG;
	}
	if (memchr(h.ns, '\0', h.ns_len) != NULL) {
		snprintf(why, whylen, "namespace contains a NUL byte");
		return -EINVAL;
	}
	if ((h.flags & ~PC_HELLO_F_DOORBELL) != 0) {
		snprintf(why, whylen, "unknown hello flags 0x%x", h.flags);
		return -EINVAL;
	}
	out->nslots = h.nslots == 0 ? PC_SESSION_SLOTS : h.nslots;
	if (out->nslots > PC_SESSION_SLOTS_MAX) {
		snprintf(why, whylen, "%u request slots, at most %d", out->nslots,
			 PC_SESSION_SLOTS_MAX);
		return -EINVAL;
	}
	out->pid = h.pid;
	out->flags = h.flags;
	out->ns_len = h.ns_len;
	memcpy(out->ns, h.ns, h.ns_len);
	return 0;
}

int
pc_req_head_decode(const struct pc_req_slot *rs, struct pc_req_head *out)
{
	out->op = __atomic_load_n(&rs->op, __ATOMIC_RELAXED);
	out->nkeys = __atomic_load_n(&rs->nkeys, __ATOMIC_RELAXED);
	out->deadline_ns = __atomic_load_n(&rs->deadline_ns, __ATOMIC_RELAXED);
	out->prefix_depth = __atomic_load_n(&rs->prefix_depth, __ATOMIC_RELAXED);
	if (out->op >= PC_OP__COUNT || out->nkeys > PC_REQ_MAX_KEYS) {
		return -EINVAL;
	}
	return 0;
}

int
pc_req_key_decode(const struct pc_req_slot *rs, unsigned int i, uint8_t buf[PC_KEY_MAX])
{
	uint32_t off;
	uint32_t len;

	if (i >= PC_REQ_MAX_KEYS) {
		return -EINVAL;
	}
	off = __atomic_load_n(&rs->keys[i].key_off, __ATOMIC_RELAXED);
	len = __atomic_load_n(&rs->keys[i].key_len, __ATOMIC_RELAXED);
	if (len == 0 || len > PC_KEY_MAX || off > PC_REQ_ARENA_SIZE ||
	    len > PC_REQ_ARENA_SIZE - off) {
		return -EINVAL;
	}
	/* Copied out at once: the client may be rewriting the arena right now. */
	memcpy(buf, rs->arena + off, len);
	return (int)len;
}
