/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "admin_proto.h"

const char *
pc_admin_op_name(unsigned int op)
{
	switch (op) {
	case PC_ADMIN_OP_MEMBERS:
		return "members";
	case PC_ADMIN_OP_RING:
		return "ring";
	case PC_ADMIN_OP_LOOKUP:
		return "lookup";
	case PC_ADMIN_OP_STATS:
		return "stats";
	default:
		return "?";
	}
}

/* A cursor over the body: every read is checked against the end first. */
struct rd {
	const uint8_t *p;
	size_t left;
};

static int
rd_u16(struct rd *r, uint16_t *v)
{
	if (r->left < sizeof(*v)) {
		return -1;
	}
	memcpy(v, r->p, sizeof(*v));
	r->p += sizeof(*v);
	r->left -= sizeof(*v);
	return 0;
}

static const uint8_t *
rd_bytes(struct rd *r, size_t n)
{
	const uint8_t *p = r->p;

	if (r->left < n) {
		return NULL;
	}
	r->p += n;
	r->left -= n;
	return p;
}

static int
decode_lookup(struct rd *r, struct pc_admin_req *out, char *why, size_t whylen)
{
	uint16_t nkeys;
	unsigned int i;

	if (rd_u16(r, &out->ns_len) != 0) {
		snprintf(why, whylen, "lookup request truncated before its namespace");
		return -EINVAL;
	}
	if (out->ns_len > PC_NS_MAX) {
		snprintf(why, whylen, "namespace of %u bytes, at most %d", out->ns_len, PC_NS_MAX);
		return -ENAMETOOLONG;
	}
	out->ns = rd_bytes(r, out->ns_len);
	if (out->ns == NULL) {
		snprintf(why, whylen, "lookup request truncated inside its namespace");
		return -EINVAL;
	}
	if (memchr(out->ns, '\0', out->ns_len) != NULL) {
		snprintf(why, whylen, "namespace contains a NUL byte");
		return -EINVAL;
	}
	if (rd_u16(r, &nkeys) != 0) {
		snprintf(why, whylen, "lookup request truncated before its key count");
		return -EINVAL;
	}
	if (nkeys == 0 || nkeys > PC_ADMIN_KEYS_MAX) {
		snprintf(why, whylen, "%u keys, expected 1..%d", nkeys, PC_ADMIN_KEYS_MAX);
		return -EINVAL;
	}
	for (i = 0; i < nkeys; i++) {
		struct pc_admin_key *k = &out->keys[i];

		if (rd_u16(r, &k->len) != 0) {
			snprintf(why, whylen, "lookup request truncated before key %u of %u", i + 1,
				 nkeys);
			return -EINVAL;
		}
		if (k->len == 0) {
			snprintf(why, whylen, "key %u is empty", i + 1);
			return -EINVAL;
		}
		if (k->len > PC_KEY_MAX) {
			snprintf(why, whylen, "key %u has %u bytes, at most %d", i + 1, k->len,
				 PC_KEY_MAX);
			return -ENAMETOOLONG;
		}
		k->bytes = rd_bytes(r, k->len);
		if (k->bytes == NULL) {
			snprintf(why, whylen, "lookup request truncated inside key %u of %u", i + 1,
				 nkeys);
			return -EINVAL;
		}
	}
	out->nkeys = nkeys;
	return 0;
}

int
pc_admin_req_decode(const void *buf, size_t len, struct pc_admin_req *out, char *why, size_t whylen)
{
	struct pc_admin_req_hdr h;
	struct rd r;
	int rc;

	if (len > PC_ADMIN_REQ_MAX) {
		snprintf(why, whylen, "request of %zu bytes, at most %u", len, PC_ADMIN_REQ_MAX);
		return -EMSGSIZE;
	}
	if (len < sizeof(h)) {
		snprintf(why, whylen, "request of %zu bytes, shorter than its %zu-byte header", len,
			 sizeof(h));
		return -EPROTO;
	}
	memcpy(&h, buf, sizeof(h));
	if (h.magic != PC_ADMIN_MAGIC) {
		snprintf(why, whylen, "not a PeerCache admin request");
		return -EPROTO;
	}
	if (h.version != PC_ADMIN_VERSION) {
		snprintf(why, whylen, "admin protocol version %u, this engine speaks %d", h.version,
			 PC_ADMIN_VERSION);
		return -EPROTO;
	}
	if (h.op == 0 || h.op >= PC_ADMIN_OP__END) {
		snprintf(why, whylen, "unknown admin op %u", h.op);
		return -EINVAL;
	}
	if ((h.flags & ~PC_ADMIN_F_ALL) != 0) {
		snprintf(why, whylen, "unknown request flags 0x%x", h.flags & ~PC_ADMIN_F_ALL);
		return -EINVAL;
	}
	out->op = h.op;
	out->flags = h.flags;
	out->ns_len = 0;
	out->ns = NULL;
	out->nkeys = 0;
	r.p = (const uint8_t *)buf + sizeof(h);
	r.left = len - sizeof(h);
	if (h.op == PC_ADMIN_OP_LOOKUP) {
		rc = decode_lookup(&r, out, why, whylen);
		if (rc != 0) {
			return rc;
		}
	}
	if (r.left != 0) {
		snprintf(why, whylen, "%zu unexpected bytes after the %s request", r.left,
			 pc_admin_op_name(h.op));
		return -EINVAL;
	}
	return 0;
}
