/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * engine/admin_proto.c: what the engine accepts from peercache-ctl. Each op
 * decodes with its flags; a lookup's namespace and keys come back byte for
 * byte (NULs and high bytes in keys included), up to the largest request
 * (1024 keys of 128 bytes in a 128-byte namespace). Every proper prefix of a
 * valid request, a trailing byte, an oversized message, a wrong magic,
 * version, op or flag, a body on a bodyless op, an empty or overlong key, a
 * key count of 0 or 1025, and a NUL in the namespace are each refused with
 * their own error and a reason. Buffers are exact allocations, so a read
 * past the message is an ASan report.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../../engine/admin_proto.c"
#include "ut.h"

static struct pc_admin_req g_req;

/* A test-side encoder, written from the header's description. */
struct enc {
	uint8_t *buf;
	size_t len;
};

static void
enc_put(struct enc *e, const void *p, size_t n)
{
	e->buf = realloc(e->buf, e->len + n);
	memcpy(e->buf + e->len, p, n);
	e->len += n;
}

static void
enc_u16(struct enc *e, uint16_t v)
{
	enc_put(e, &v, 2);
}

static void
enc_hdr(struct enc *e, uint32_t magic, uint16_t version, uint16_t op, uint32_t flags)
{
	struct pc_admin_req_hdr h = {.magic = magic, .version = version, .op = op, .flags = flags};

	enc_put(e, &h, sizeof(h));
}

/* A lookup of n keys; key i is keylen(i) bytes of 'a' + i % 26, with byte 0 = i & 0xff. */
static struct enc
enc_lookup(const void *ns, uint16_t ns_len, unsigned int n, uint16_t (*keylen)(unsigned int))
{
	struct enc e = {0};
	uint8_t key[PC_KEY_MAX + 8];

	enc_hdr(&e, PC_ADMIN_MAGIC, PC_ADMIN_VERSION, PC_ADMIN_OP_LOOKUP, 0);
	enc_u16(&e, ns_len);
	enc_put(&e, ns, ns_len);
	enc_u16(&e, (uint16_t)n);
	for (unsigned int i = 0; i < n; i++) {
		uint16_t len = keylen(i);

		memset(key, 'a' + (int)(i % 26), sizeof(key));
		key[0] = (uint8_t)i;
		enc_u16(&e, len);
		enc_put(&e, key, len);
	}
	return e;
}

static uint16_t
len_small(unsigned int i)
{
	return (uint16_t)(1 + i % 7);
}

static uint16_t
len_max(unsigned int i)
{
	(void)i;
	return PC_KEY_MAX;
}

/* Decode from an exact copy (ASan sees any read past len). */
static int
decode(const void *buf, size_t len, char *why)
{
	uint8_t *copy = malloc(len ? len : 1);
	int rc;

	memcpy(copy, buf, len);
	why[0] = '\0';
	rc = pc_admin_req_decode(copy, len, &g_req, why, 160);
	/* The keys point into the decoded buffer: compare before it goes. */
	if (rc == 0 && g_req.nkeys > 0) {
		CU_ASSERT_TRUE(g_req.keys[0].bytes >= copy && g_req.keys[0].bytes < copy + len);
		CU_ASSERT_TRUE(g_req.keys[g_req.nkeys - 1].bytes +
				       g_req.keys[g_req.nkeys - 1].len ==
			       copy + len);
	}
	free(copy);
	return rc;
}

static void
test_simple_ops(void)
{
	static const uint16_t ops[] = {PC_ADMIN_OP_MEMBERS, PC_ADMIN_OP_RING, PC_ADMIN_OP_STATS};
	char why[160];

	for (unsigned int i = 0; i < PC_ARRAY_SIZE(ops); i++) {
		for (uint32_t flags = 0; flags <= PC_ADMIN_F_JSON; flags++) {
			struct enc e = {0};

			enc_hdr(&e, PC_ADMIN_MAGIC, PC_ADMIN_VERSION, ops[i], flags);
			CU_ASSERT_EQUAL(decode(e.buf, e.len, why), 0);
			CU_ASSERT_EQUAL(g_req.op, ops[i]);
			CU_ASSERT_EQUAL(g_req.flags, flags);
			CU_ASSERT_EQUAL(g_req.nkeys, 0);
			CU_ASSERT_EQUAL(g_req.ns_len, 0);
			/* A body where none belongs. */
			enc_u16(&e, 0);
			CU_ASSERT_EQUAL(decode(e.buf, e.len, why), -EINVAL);
			CU_ASSERT_PTR_NOT_NULL(strstr(why, "unexpected bytes"));
			free(e.buf);
		}
	}
	CU_ASSERT_STRING_EQUAL(pc_admin_op_name(PC_ADMIN_OP_MEMBERS), "members");
	CU_ASSERT_STRING_EQUAL(pc_admin_op_name(PC_ADMIN_OP_LOOKUP), "lookup");
	CU_ASSERT_STRING_EQUAL(pc_admin_op_name(99), "?");
}

static void
test_lookup_round_trip(void)
{
	static const uint8_t odd_key[] = {'k', 0, 0xff, '"', '\n'};
	struct enc e = {0};
	char why[160];

	enc_hdr(&e, PC_ADMIN_MAGIC, PC_ADMIN_VERSION, PC_ADMIN_OP_LOOKUP, PC_ADMIN_F_JSON);
	enc_u16(&e, 5);
	enc_put(&e, "llama", 5);
	enc_u16(&e, 2);
	enc_u16(&e, 3);
	enc_put(&e, "abc", 3);
	enc_u16(&e, sizeof(odd_key));
	enc_put(&e, odd_key, sizeof(odd_key));
	CU_ASSERT_EQUAL_FATAL(pc_admin_req_decode(e.buf, e.len, &g_req, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(g_req.op, PC_ADMIN_OP_LOOKUP);
	CU_ASSERT_EQUAL(g_req.flags, PC_ADMIN_F_JSON);
	CU_ASSERT_EQUAL(g_req.ns_len, 5);
	CU_ASSERT_EQUAL(memcmp(g_req.ns, "llama", 5), 0);
	CU_ASSERT_EQUAL(g_req.nkeys, 2);
	CU_ASSERT_EQUAL(g_req.keys[0].len, 3);
	CU_ASSERT_EQUAL(memcmp(g_req.keys[0].bytes, "abc", 3), 0);
	CU_ASSERT_EQUAL(g_req.keys[1].len, sizeof(odd_key));
	CU_ASSERT_EQUAL(memcmp(g_req.keys[1].bytes, odd_key, sizeof(odd_key)), 0);
	free(e.buf);

	/* An empty namespace is the default one. */
	e = enc_lookup("", 0, 1, len_small);
	CU_ASSERT_EQUAL(decode(e.buf, e.len, why), 0);
	CU_ASSERT_EQUAL(g_req.ns_len, 0);
	CU_ASSERT_EQUAL(g_req.nkeys, 1);
	free(e.buf);
}

static void
test_lookup_largest(void)
{
	uint8_t ns[PC_NS_MAX];
	struct enc e;
	char why[160];

	memset(ns, 'n', sizeof(ns));
	e = enc_lookup(ns, PC_NS_MAX, PC_ADMIN_KEYS_MAX, len_max);
	CU_ASSERT_EQUAL(e.len, PC_ADMIN_REQ_LOOKUP_MAX);
	CU_ASSERT(e.len <= PC_ADMIN_REQ_MAX);
	CU_ASSERT_EQUAL(decode(e.buf, e.len, why), 0);
	CU_ASSERT_EQUAL(g_req.nkeys, PC_ADMIN_KEYS_MAX);
	CU_ASSERT_EQUAL(g_req.ns_len, PC_NS_MAX);
	CU_ASSERT_EQUAL_FATAL(pc_admin_req_decode(e.buf, e.len, &g_req, why, sizeof(why)), 0);
	for (unsigned int i = 0; i < PC_ADMIN_KEYS_MAX; i++) {
		CU_ASSERT_EQUAL(g_req.keys[i].len, PC_KEY_MAX);
		CU_ASSERT_EQUAL(g_req.keys[i].bytes[0], (uint8_t)i);
		CU_ASSERT_EQUAL(g_req.keys[i].bytes[PC_KEY_MAX - 1], 'a' + (int)(i % 26));
	}
	free(e.buf);
}

static void
test_truncated_and_trailing(void)
{
	struct enc e = enc_lookup("ns", 2, 5, len_small);
	size_t cut;
	char why[160];
	int rc;

	CU_ASSERT_EQUAL(decode(e.buf, e.len, why), 0);
	/* Every proper prefix is refused: short header, or a length past the end. */
	for (cut = 0; cut < e.len; cut++) {
		rc = decode(e.buf, cut, why);
		CU_ASSERT(rc == (cut < sizeof(struct pc_admin_req_hdr) ? -EPROTO : -EINVAL));
		CU_ASSERT(why[0] != '\0');
	}
	CU_ASSERT_EQUAL(decode(e.buf, sizeof(struct pc_admin_req_hdr) + 1, why), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "truncated before its namespace"));
	/* One byte more is refused too. */
	enc_put(&e, "x", 1);
	CU_ASSERT_EQUAL(decode(e.buf, e.len, why), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "1 unexpected bytes after the lookup request"));
	free(e.buf);
}

static void
test_oversized(void)
{
	uint8_t *big = calloc(1, PC_ADMIN_REQ_MAX + 1);
	struct pc_admin_req_hdr h = {
		.magic = PC_ADMIN_MAGIC, .version = PC_ADMIN_VERSION, .op = PC_ADMIN_OP_STATS};
	char why[160];

	memcpy(big, &h, sizeof(h));
	CU_ASSERT_EQUAL(pc_admin_req_decode(big, PC_ADMIN_REQ_MAX + 1, &g_req, why, sizeof(why)),
			-EMSGSIZE);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "at most"));
	/* At the cap it is decoded, and refused for its trailing bytes only. */
	CU_ASSERT_EQUAL(pc_admin_req_decode(big, PC_ADMIN_REQ_MAX, &g_req, why, sizeof(why)),
			-EINVAL);
	free(big);
}

static void
test_header_refusals(void)
{
	struct enc e = {0};
	char why[160];

	enc_hdr(&e, PC_HELLO_MAGIC, PC_ADMIN_VERSION, PC_ADMIN_OP_STATS, 0);
	CU_ASSERT_EQUAL(decode(e.buf, e.len, why), -EPROTO);
	CU_ASSERT_STRING_EQUAL(why, "not a PeerCache admin request");
	e.len = 0;
	enc_hdr(&e, PC_ADMIN_MAGIC, PC_ADMIN_VERSION + 1, PC_ADMIN_OP_STATS, 0);
	CU_ASSERT_EQUAL(decode(e.buf, e.len, why), -EPROTO);
	CU_ASSERT_STRING_EQUAL(why, "admin protocol version 2, this engine speaks 1");
	e.len = 0;
	enc_hdr(&e, PC_ADMIN_MAGIC, PC_ADMIN_VERSION, 0, 0);
	CU_ASSERT_EQUAL(decode(e.buf, e.len, why), -EINVAL);
	CU_ASSERT_STRING_EQUAL(why, "unknown admin op 0");
	e.len = 0;
	enc_hdr(&e, PC_ADMIN_MAGIC, PC_ADMIN_VERSION, PC_ADMIN_OP__END, 0);
	CU_ASSERT_EQUAL(decode(e.buf, e.len, why), -EINVAL);
	e.len = 0;
	enc_hdr(&e, PC_ADMIN_MAGIC, PC_ADMIN_VERSION, PC_ADMIN_OP_RING, 0x6);
	CU_ASSERT_EQUAL(decode(e.buf, e.len, why), -EINVAL);
	CU_ASSERT_STRING_EQUAL(why, "unknown request flags 0x6");
	CU_ASSERT_EQUAL(decode("", 0, why), -EPROTO);
	free(e.buf);
}

static uint16_t
len_zero_third(unsigned int i)
{
	return i == 2 ? 0 : 4;
}

static uint16_t
len_long_second(unsigned int i)
{
	return i == 1 ? PC_KEY_MAX + 1 : 4;
}

static void
test_lookup_refusals(void)
{
	uint8_t ns[PC_NS_MAX + 1];
	struct enc e;
	char why[160];

	memset(ns, 'n', sizeof(ns));
	e = enc_lookup(ns, PC_NS_MAX + 1, 1, len_small);
	CU_ASSERT_EQUAL(decode(e.buf, e.len, why), -ENAMETOOLONG);
	CU_ASSERT_STRING_EQUAL(why, "namespace of 129 bytes, at most 128");
	free(e.buf);
	e = enc_lookup("a\0b", 3, 1, len_small);
	CU_ASSERT_EQUAL(decode(e.buf, e.len, why), -EINVAL);
	CU_ASSERT_STRING_EQUAL(why, "namespace contains a NUL byte");
	free(e.buf);
	e = enc_lookup("ns", 2, 0, len_small);
	CU_ASSERT_EQUAL(decode(e.buf, e.len, why), -EINVAL);
	CU_ASSERT_STRING_EQUAL(why, "0 keys, expected 1..1024");
	free(e.buf);
	e = enc_lookup("ns", 2, PC_ADMIN_KEYS_MAX + 1, len_small);
	CU_ASSERT_EQUAL(decode(e.buf, e.len, why), -EINVAL);
	CU_ASSERT_STRING_EQUAL(why, "1025 keys, expected 1..1024");
	free(e.buf);
	e = enc_lookup("ns", 2, 4, len_zero_third);
	CU_ASSERT_EQUAL(decode(e.buf, e.len, why), -EINVAL);
	CU_ASSERT_STRING_EQUAL(why, "key 3 is empty");
	free(e.buf);
	e = enc_lookup("ns", 2, 4, len_long_second);
	CU_ASSERT_EQUAL(decode(e.buf, e.len, why), -ENAMETOOLONG);
	CU_ASSERT_STRING_EQUAL(why, "key 2 has 129 bytes, at most 128");
	free(e.buf);
	/* A key length past the end of the message. */
	e = enc_lookup("ns", 2, 1, len_small);
	e.buf[e.len - 3] = 100; /* key 0's length, low byte (1 byte of key follows) */
	CU_ASSERT_EQUAL(decode(e.buf, e.len, why), -EINVAL);
	CU_ASSERT_STRING_EQUAL(why, "lookup request truncated inside key 1 of 1");
	free(e.buf);
}

static const struct pc_ut_test decode_tests[] = {
	{"members, ring, stats decode with their flags; no body", test_simple_ops},
	{"lookup: namespace and keys byte for byte", test_lookup_round_trip},
	{"lookup: the largest request fits and decodes", test_lookup_largest},
	{"every truncation and a trailing byte are refused", test_truncated_and_trailing},
	{"an oversized request is refused", test_oversized},
	{"magic, version, op, flags refused with reasons", test_header_refusals},
	{"namespace, key count, key lengths refused with reasons", test_lookup_refusals},
	{NULL, NULL},
};

static const struct pc_ut_suite suites[] = {
	{"admin request", NULL, NULL, decode_tests},
};

int
main(void)
{
	return pc_ut_run(suites, PC_ARRAY_SIZE(suites));
}
