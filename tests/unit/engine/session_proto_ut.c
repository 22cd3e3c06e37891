/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * engine/session_proto.c: what the engine accepts from a local client. A
 * well-formed hello decodes; each way of breaking one (magic, version, size,
 * namespace length or a NUL in it, flags, slot count) is refused with its
 * own error and a reason. A request's header and keys are bounds-checked
 * against the slot, including offsets that overflow 32 bits.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../engine/session_proto.c"
#include "ut.h"

static struct pc_hello
good_hello(const char *ns)
{
	struct pc_hello h = {.magic = PC_HELLO_MAGIC, .version = PC_PROTO_VERSION, .pid = 42};

	h.ns_len = (uint16_t)strlen(ns);
	memcpy(h.ns, ns, h.ns_len);
	return h;
}

static int
decode(const struct pc_hello *h, size_t len, struct pc_hello_info *info, char *why)
{
	why[0] = '\0';
	return pc_hello_decode(h, len, info, why, 128);
}

static void
test_hello_valid(void)
{
	struct pc_hello h = good_hello("llama-3-8b/tp0of2");
	struct pc_hello_info info;
	char why[128];

	CU_ASSERT_EQUAL(decode(&h, sizeof(h), &info, why), 0);
	CU_ASSERT_EQUAL(info.pid, 42);
	CU_ASSERT_EQUAL(info.nslots, PC_SESSION_SLOTS);
	CU_ASSERT_EQUAL(info.ns_len, strlen("llama-3-8b/tp0of2"));
	CU_ASSERT_EQUAL(memcmp(info.ns, "llama-3-8b/tp0of2", info.ns_len), 0);
	h.nslots = PC_SESSION_SLOTS_MAX;
	h.ns_len = 0;
	CU_ASSERT_EQUAL(decode(&h, sizeof(h), &info, why), 0);
	CU_ASSERT_EQUAL(info.nslots, PC_SESSION_SLOTS_MAX);
	CU_ASSERT_EQUAL(info.ns_len, 0);
	h.ns_len = PC_NS_MAX;
	memset(h.ns, 'n', PC_NS_MAX);
	CU_ASSERT_EQUAL(decode(&h, sizeof(h), &info, why), 0);
}

static void
test_hello_refusals(void)
{
	struct pc_hello_info info;
	struct pc_hello h;
	char why[128];

	h = good_hello("x");
	h.magic ^= 1;
	CU_ASSERT_EQUAL(decode(&h, sizeof(h), &info, why), -EPROTO);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "not a PeerCache hello"));
	/* A newer client, and one of version 1 (before completions moved into the slots). */
	for (int v = 0; v < 2; v++) {
		char want[64];

		h = good_hello("x");
		h.version = v == 0 ? PC_PROTO_VERSION + 1 : 1;
		snprintf(want, sizeof(want), "protocol version %d, this engine speaks %d",
			 (int)h.version, PC_PROTO_VERSION);
		CU_ASSERT_EQUAL(decode(&h, sizeof(h), &info, why), -EPROTO);
		CU_ASSERT_PTR_NOT_NULL(strstr(why, want));
	}
	h = good_hello("x");
	CU_ASSERT_EQUAL(decode(&h, sizeof(h) - 1, &info, why), -EPROTO);
	CU_ASSERT_EQUAL(decode(&h, 4, &info, why), -EPROTO);
	CU_ASSERT_EQUAL(decode(&h, 0, &info, why), -EPROTO);
	h.ns_len = PC_NS_MAX + 1;
	CU_ASSERT_EQUAL(decode(&h, sizeof(h), &info, why), -ENAMETOOLONG);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "at most 128"));
	h = good_hello("ab");
	h.ns[1] = '\0';
	CU_ASSERT_EQUAL(decode(&h, sizeof(h), &info, why), -EINVAL);
	h = good_hello("ab");
	h.flags = 2;
	CU_ASSERT_EQUAL(decode(&h, sizeof(h), &info, why), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "unknown hello flags 0x2"));
	h.flags = PC_HELLO_F_DOORBELL;
	CU_ASSERT_EQUAL(decode(&h, sizeof(h), &info, why), 0);
	CU_ASSERT_EQUAL(info.flags, PC_HELLO_F_DOORBELL);
	h = good_hello("ab");
	h.nslots = PC_SESSION_SLOTS_MAX + 1;
	CU_ASSERT_EQUAL(decode(&h, sizeof(h), &info, why), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "request slots"));
}

static void
test_request_head(void)
{
	struct pc_req_slot *rs = calloc(1, sizeof(*rs));
	struct pc_req_head head;

	rs->op = PC_OP_GET;
	rs->nkeys = PC_REQ_MAX_KEYS;
	rs->deadline_ns = 123;
	rs->prefix_depth = 7;
	CU_ASSERT_EQUAL(pc_req_head_decode(rs, &head), 0);
	CU_ASSERT_EQUAL(head.op, PC_OP_GET);
	CU_ASSERT_EQUAL(head.nkeys, PC_REQ_MAX_KEYS);
	CU_ASSERT_EQUAL(head.deadline_ns, 123);
	CU_ASSERT_EQUAL(head.prefix_depth, 7);
	rs->nkeys = PC_REQ_MAX_KEYS + 1;
	CU_ASSERT_EQUAL(pc_req_head_decode(rs, &head), -EINVAL);
	rs->nkeys = 1;
	rs->op = PC_OP__COUNT;
	CU_ASSERT_EQUAL(pc_req_head_decode(rs, &head), -EINVAL);
	rs->op = UINT32_MAX;
	CU_ASSERT_EQUAL(pc_req_head_decode(rs, &head), -EINVAL);
	free(rs);
}

static void
test_request_keys(void)
{
	struct pc_req_slot *rs = calloc(1, sizeof(*rs));
	uint8_t key[PC_KEY_MAX];

	memcpy(rs->arena + 100, "abcdef", 6);
	rs->keys[3].key_off = 100;
	rs->keys[3].key_len = 6;
	CU_ASSERT_EQUAL(pc_req_key_decode(rs, 3, key), 6);
	CU_ASSERT_EQUAL(memcmp(key, "abcdef", 6), 0);
	/* The last bytes of the arena are fine; one past is not. */
	rs->keys[3].key_off = PC_REQ_ARENA_SIZE - PC_KEY_MAX;
	rs->keys[3].key_len = PC_KEY_MAX;
	CU_ASSERT_EQUAL(pc_req_key_decode(rs, 3, key), PC_KEY_MAX);
	rs->keys[3].key_off = PC_REQ_ARENA_SIZE - PC_KEY_MAX + 1;
	CU_ASSERT_EQUAL(pc_req_key_decode(rs, 3, key), -EINVAL);
	rs->keys[3].key_off = UINT32_MAX - 2; /* off + len wraps around 32 bits */
	rs->keys[3].key_len = 8;
	CU_ASSERT_EQUAL(pc_req_key_decode(rs, 3, key), -EINVAL);
	rs->keys[3].key_off = 0;
	rs->keys[3].key_len = 0;
	CU_ASSERT_EQUAL(pc_req_key_decode(rs, 3, key), -EINVAL);
	rs->keys[3].key_len = PC_KEY_MAX + 1;
	CU_ASSERT_EQUAL(pc_req_key_decode(rs, 3, key), -EINVAL);
	CU_ASSERT_EQUAL(pc_req_key_decode(rs, PC_REQ_MAX_KEYS, key), -EINVAL);
	free(rs);
}

static const struct pc_ut_test hello_tests[] = {
	{"a valid hello decodes", test_hello_valid},
	{"each malformed hello is refused with a reason", test_hello_refusals},
	{NULL, NULL},
};

static const struct pc_ut_test request_tests[] = {
	{"request header: op and key count checked", test_request_head},
	{"request keys: bounds, overflow, lengths", test_request_keys},
	{NULL, NULL},
};

static const struct pc_ut_suite suites[] = {
	{"hello", NULL, NULL, hello_tests},
	{"request", NULL, NULL, request_tests},
};

int
main(void)
{
	return pc_ut_run(suites, PC_ARRAY_SIZE(suites));
}
