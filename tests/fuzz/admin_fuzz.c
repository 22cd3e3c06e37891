/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the decoder of peercache-ctl's requests
 * (engine/admin_proto.c): the input is one message as the engine receives
 * it, copied into a malloc of exactly its size, so a read past it is an
 * ASan report.
 *
 * Properties: a decode returns 0 or one of -EMSGSIZE, -EPROTO, -EINVAL,
 * -ENAMETOOLONG, with a non-empty reason; -EMSGSIZE exactly when the input
 * is over PC_ADMIN_REQ_MAX. A decoded request has the magic and version, a
 * known op, known flags; a lookup has a namespace of at most PC_NS_MAX bytes
 * without NUL and 1..PC_ADMIN_KEYS_MAX keys of 1..PC_KEY_MAX bytes, each
 * pointing inside the message; other ops have no keys. Re-encoding the
 * decoded request gives the input back byte for byte (nothing is ignored:
 * no trailing bytes, no slack).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct pc_admin_req g_req;
static uint8_t g_enc[PC_ADMIN_REQ_MAX];

static size_t
reencode(const struct pc_admin_req *r)
{
	struct pc_admin_req_hdr h = {.magic = PC_ADMIN_MAGIC,
				     .version = PC_ADMIN_VERSION,
				     .op = r->op,
				     .flags = r->flags};
	size_t n = 0;
	uint16_t v;

	memcpy(g_enc, &h, sizeof(h));
	n += sizeof(h);
	if (r->op != PC_ADMIN_OP_LOOKUP) {
		return n;
	}
	memcpy(g_enc + n, &r->ns_len, 2);
	memcpy(g_enc + n + 2, r->ns, r->ns_len);
	n += 2 + r->ns_len;
	v = (uint16_t)r->nkeys;
	memcpy(g_enc + n, &v, 2);
	n += 2;
	for (unsigned int i = 0; i < r->nkeys; i++) {
		memcpy(g_enc + n, &r->keys[i].len, 2);
		memcpy(g_enc + n + 2, r->keys[i].bytes, r->keys[i].len);
		n += 2 + r->keys[i].len;
	}
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	char why[160] = "";
	int rc;

	memcpy(buf, data, size);
	rc = pc_admin_req_decode(buf, size, &g_req, why, sizeof(why));
	if (rc != 0) {
		if ((rc != -EMSGSIZE && rc != -EPROTO && rc != -EINVAL && rc != -ENAMETOOLONG) ||
		    why[0] == '\0' || (rc == -EMSGSIZE) != (size > PC_ADMIN_REQ_MAX)) {
			abort();
		}
		free(buf);
		return 0;
	}
	if (g_req.op == 0 || g_req.op >= PC_ADMIN_OP__END || (g_req.flags & ~PC_ADMIN_F_ALL) != 0) {
		abort();
	}
	if (g_req.op == PC_ADMIN_OP_LOOKUP) {
		if (g_req.ns_len > PC_NS_MAX || memchr(g_req.ns, '\0', g_req.ns_len) != NULL ||
		    g_req.nkeys < 1 || g_req.nkeys > PC_ADMIN_KEYS_MAX) {
			abort();
		}
		for (unsigned int i = 0; i < g_req.nkeys; i++) {
			const struct pc_admin_key *k = &g_req.keys[i];

			if (k->len < 1 || k->len > PC_KEY_MAX || k->bytes < buf ||
			    k->bytes + k->len > buf + size) {
				abort();
			}
		}
	} else if (g_req.nkeys != 0) {
		abort();
	}
	if (reencode(&g_req) != size || memcmp(g_enc, buf, size) != 0) {
		abort();
	}
	free(buf);
	return 0;
}
