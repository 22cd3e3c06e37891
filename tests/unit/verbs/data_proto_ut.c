/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * verbs/data_proto.c: the tcp transport's wire codec. What a user would
 * notice: a request or reply round-trips field for field, in the documented
 * little-endian layout; every field's bounds are enforced on both sides
 * (the encoder refuses what the decoder would reject); a short buffer is
 * -EAGAIN, never a read past it; any damaged byte of the fixed fields is
 * -EBADMSG and leaves the output untouched.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "data_proto.h"
#include "helpers.h"
#include "ut.h"

static const uint8_t g_req_golden[PC_DATA_REQ_SIZE] = {
	'P',  'C',  'D',  'Q',  1,    0,    0,    0,    /* magic, version, flags */
	0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* id */
	0x40, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, /* remote_off */
	0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88, /* generation */
	0x40, 0x10, 0x00, 0x00, 0,    0,    0,    0,    /* len, reserved */
};

static const struct pc_data_req g_req = {
	.id = 0x0102030405060708ull,
	.remote_off = 0x100040ull,
	.generation = 0x8899aabbccddeeffull,
	.len = 0x1040,
};

static void
test_req_golden(void)
{
	uint8_t buf[PC_DATA_REQ_SIZE];
	struct pc_data_req r;

	memset(buf, 0xa5, sizeof(buf));
	CU_ASSERT_EQUAL(pc_data_req_encode(buf, &g_req), 0);
	CU_ASSERT_EQUAL(memcmp(buf, g_req_golden, sizeof(buf)), 0);
	memset(&r, 0, sizeof(r));
	CU_ASSERT_EQUAL(pc_data_req_decode(g_req_golden, sizeof(g_req_golden), &r), 0);
	CU_ASSERT_EQUAL(r.id, g_req.id);
	CU_ASSERT_EQUAL(r.remote_off, g_req.remote_off);
	CU_ASSERT_EQUAL(r.generation, g_req.generation);
	CU_ASSERT_EQUAL(r.len, g_req.len);
}

static void
test_req_bounds(void)
{
	static const uint32_t good[] = {PC_DATA_LEN_MIN, PC_DATA_LEN_MIN + 1, 4096 + 64,
					PC_DATA_LEN_MAX};
	static const uint32_t bad[] = {0, 1, PC_DATA_LEN_MIN - 1, PC_DATA_LEN_MAX + 1, UINT32_MAX};
	uint8_t buf[PC_DATA_REQ_SIZE];
	struct pc_data_req r = g_req;
	struct pc_data_req d;

	for (size_t i = 0; i < PC_ARRAY_SIZE(good); i++) {
		r.len = good[i];
		CU_ASSERT_EQUAL(pc_data_req_encode(buf, &r), 0);
		CU_ASSERT_EQUAL(pc_data_req_decode(buf, sizeof(buf), &d), 0);
		CU_ASSERT_EQUAL(d.len, good[i]);
	}
	for (size_t i = 0; i < PC_ARRAY_SIZE(bad); i++) {
		r.len = bad[i];
		memset(buf, 0, sizeof(buf));
		CU_ASSERT_EQUAL(pc_data_req_encode(buf, &r), -EINVAL);
		CU_ASSERT(all_zero(buf, sizeof(buf)));
		/* The same len forged into good bytes: refused by the decoder. */
		memcpy(buf, g_req_golden, sizeof(buf));
		buf[32] = (uint8_t)bad[i];
		buf[33] = (uint8_t)(bad[i] >> 8);
		buf[34] = (uint8_t)(bad[i] >> 16);
		buf[35] = (uint8_t)(bad[i] >> 24);
		memset(&d, 0x5a, sizeof(d));
		CU_ASSERT_EQUAL(pc_data_req_decode(buf, sizeof(buf), &d), -EBADMSG);
		CU_ASSERT_EQUAL(d.id, 0x5a5a5a5a5a5a5a5aull); /* untouched */
	}
	/* Any id, offset and generation is the owner's to judge: all round-trip. */
	r.len = 4160;
	r.id = UINT64_MAX;
	r.remote_off = UINT64_MAX;
	r.generation = 0;
	CU_ASSERT_EQUAL(pc_data_req_encode(buf, &r), 0);
	CU_ASSERT_EQUAL(pc_data_req_decode(buf, sizeof(buf), &d), 0);
	CU_ASSERT_EQUAL(d.id, UINT64_MAX);
	CU_ASSERT_EQUAL(d.remote_off, UINT64_MAX);
	CU_ASSERT_EQUAL(d.generation, 0);
}

/* Every byte of magic, version, flags and reserved: one bit flipped is -EBADMSG. */
static void
test_req_fixed_fields(void)
{
	static const unsigned int fixed[] = {0, 1, 2, 3, 4, 5, 6, 7, 36, 37, 38, 39};
	uint8_t buf[PC_DATA_REQ_SIZE];
	struct pc_data_req d;

	for (size_t i = 0; i < PC_ARRAY_SIZE(fixed); i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(buf, g_req_golden, sizeof(buf));
			buf[fixed[i]] ^= (uint8_t)(1u << bit);
			CU_ASSERT_EQUAL(pc_data_req_decode(buf, sizeof(buf), &d), -EBADMSG);
		}
	}
	/* A reply is not a request, nor the other way round. */
	{
		struct pc_data_rep rep = {.id = 1, .status = 0, .len = 64};
		uint8_t rbuf[PC_DATA_REQ_SIZE] = {0};
		struct pc_data_rep dr;

		CU_ASSERT_EQUAL(pc_data_rep_encode(rbuf, &rep), 0);
		CU_ASSERT_EQUAL(pc_data_req_decode(rbuf, sizeof(rbuf), &d), -EBADMSG);
		CU_ASSERT_EQUAL(pc_data_rep_decode(g_req_golden, sizeof(g_req_golden), &dr),
				-EBADMSG);
	}
}

static void
test_truncation(void)
{
	uint8_t buf[PC_DATA_REQ_SIZE + 8];
	struct pc_data_req d;
	struct pc_data_rep dr;
	struct pc_data_rep rep = {.id = 9, .status = 0, .len = 100};

	for (size_t n = 0; n < PC_DATA_REQ_SIZE; n++) {
		/* An exact malloc: ASan catches a read past n. */
		uint8_t *p = malloc(n == 0 ? 1 : n);

		CU_ASSERT_PTR_NOT_NULL_FATAL(p);
		memcpy(p, g_req_golden, n);
		CU_ASSERT_EQUAL(pc_data_req_decode(p, n, &d), -EAGAIN);
		free(p);
	}
	memcpy(buf, g_req_golden, PC_DATA_REQ_SIZE);
	memset(buf + PC_DATA_REQ_SIZE, 0xff, 8);
	CU_ASSERT_EQUAL(pc_data_req_decode(buf, sizeof(buf), &d), 0); /* trailing bytes: next */
	CU_ASSERT_EQUAL(pc_data_rep_encode(buf, &rep), 0);
	for (size_t n = 0; n < PC_DATA_REP_SIZE; n++) {
		uint8_t *p = malloc(n == 0 ? 1 : n);

		CU_ASSERT_PTR_NOT_NULL_FATAL(p);
		memcpy(p, buf, n);
		CU_ASSERT_EQUAL(pc_data_rep_decode(p, n, &dr), -EAGAIN);
		free(p);
	}
	CU_ASSERT_EQUAL(pc_data_req_decode(NULL, 40, &d), -EINVAL);
	CU_ASSERT_EQUAL(pc_data_req_decode(buf, 40, NULL), -EINVAL);
	CU_ASSERT_EQUAL(pc_data_rep_decode(NULL, 24, &dr), -EINVAL);
	CU_ASSERT_EQUAL(pc_data_req_encode(NULL, &d), -EINVAL);
	CU_ASSERT_EQUAL(pc_data_rep_encode(buf, NULL), -EINVAL);
}

static void
test_rep_golden(void)
{
	static const uint8_t golden[PC_DATA_REP_SIZE] = {
		'P',  'C',  'D',  'R',  1,    0,    0,    0,    /* magic, version, flags */
		0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, /* id */
		0x8c, 0xff, 0xff, 0xff, 0,    0,    0,    0,    /* status -ESTALE (-116), len */
	};
	struct pc_data_rep rep = {.id = 0x8877665544332211ull, .status = -ESTALE, .len = 0};
	uint8_t buf[PC_DATA_REP_SIZE];
	struct pc_data_rep d;

	_Static_assert(ESTALE == 116, "the golden bytes assume Linux errno values");
	CU_ASSERT_EQUAL(pc_data_rep_encode(buf, &rep), 0);
	CU_ASSERT_EQUAL(memcmp(buf, golden, sizeof(buf)), 0);
	CU_ASSERT_EQUAL(pc_data_rep_decode(golden, sizeof(golden), &d), 0);
	CU_ASSERT_EQUAL(d.id, rep.id);
	CU_ASSERT_EQUAL(d.status, -ESTALE);
	CU_ASSERT_EQUAL(d.len, 0);
	for (unsigned int i = 0; i < 8; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(buf, golden, sizeof(buf));
			buf[i] ^= (uint8_t)(1u << bit);
			CU_ASSERT_EQUAL(pc_data_rep_decode(buf, sizeof(buf), &d), -EBADMSG);
		}
	}
}

/* status and len go together: a page only with status 0, sizes within bounds. */
static void
test_rep_bounds(void)
{
	static const struct {
		int32_t status;
		uint32_t len;
		bool ok;
	} cases[] = {
		{0, PC_DATA_LEN_MIN, true},
		{0, PC_DATA_LEN_MAX, true},
		{0, 0, false},
		{0, PC_DATA_LEN_MIN - 1, false},
		{0, PC_DATA_LEN_MAX + 1, false},
		{-ESTALE, 0, true},
		{-EINVAL, 0, true},
		{-EIO, 0, true},
		{-ESTALE, 64, false},
		{-EINVAL, 1, false},
		{-ENOENT, 0, false},
		{-EPERM, 0, false},
		{1, 0, false},
		{INT32_MIN, 0, false},
		{INT32_MAX, 0, false},
	};

	for (size_t i = 0; i < PC_ARRAY_SIZE(cases); i++) {
		struct pc_data_rep rep = {.id = i, .status = cases[i].status, .len = cases[i].len};
		struct pc_data_rep good = {.id = i, .status = -EIO, .len = 0};
		uint8_t buf[PC_DATA_REP_SIZE];
		struct pc_data_rep d;

		CU_ASSERT_EQUAL(pc_data_rep_encode(buf, &rep), cases[i].ok ? 0 : -EINVAL);
		if (!cases[i].ok) {
			/* Forge the fields into a good reply: the decoder refuses them too. */
			CU_ASSERT_EQUAL(pc_data_rep_encode(buf, &good), 0);
			for (int b = 0; b < 4; b++) {
				buf[16 + b] = (uint8_t)((uint32_t)cases[i].status >> (8 * b));
				buf[20 + b] = (uint8_t)(cases[i].len >> (8 * b));
			}
			CU_ASSERT_EQUAL(pc_data_rep_decode(buf, sizeof(buf), &d), -EBADMSG);
			continue;
		}
		memset(&d, 0, sizeof(d));
		CU_ASSERT_EQUAL(pc_data_rep_decode(buf, sizeof(buf), &d), 0);
		CU_ASSERT_EQUAL(d.id, i);
		CU_ASSERT_EQUAL(d.status, cases[i].status);
		CU_ASSERT_EQUAL(d.len, cases[i].len);
	}
}

/* Random round trips: whatever decodes re-encodes to the same bytes. */
static void
test_random_canonical(void)
{
	uint64_t s = 0x9e3779b97f4a7c15ull;
	unsigned int decoded = 0;

	for (int i = 0; i < 200000; i++) {
		uint8_t buf[PC_DATA_REQ_SIZE];
		uint8_t again[PC_DATA_REQ_SIZE];
		struct pc_data_req d;
		struct pc_data_rep dr;

		memcpy(buf, g_req_golden, sizeof(buf));
		for (int k = 0; k < 3; k++) {
			s ^= s << 13;
			s ^= s >> 7;
			s ^= s << 17;
			buf[s % sizeof(buf)] = (uint8_t)(s >> 32);
		}
		if (pc_data_req_decode(buf, sizeof(buf), &d) == 0) {
			decoded++;
			CU_ASSERT_EQUAL_FATAL(pc_data_req_encode(again, &d), 0);
			CU_ASSERT_EQUAL_FATAL(memcmp(again, buf, sizeof(buf)), 0);
		}
		if (pc_data_rep_decode(buf, PC_DATA_REP_SIZE, &dr) == 0) {
			CU_ASSERT_EQUAL_FATAL(pc_data_rep_encode(again, &dr), 0);
			CU_ASSERT_EQUAL_FATAL(memcmp(again, buf, PC_DATA_REP_SIZE), 0);
		}
	}
	CU_ASSERT(decoded > 1000); /* the mutations did hit the free fields */
}

static const struct pc_ut_test codec_tests[] = {
	{"request golden bytes", test_req_golden},       {"request len bounds", test_req_bounds},
	{"request fixed fields", test_req_fixed_fields}, {"truncation and NULL", test_truncation},
	{"reply golden bytes", test_rep_golden},         {"reply status and len", test_rep_bounds},
	{"random canonical", test_random_canonical},     {NULL, NULL},
};

static const struct pc_ut_suite suites[] = {
	{"data proto", NULL, NULL, codec_tests},
};

int
main(void)
{
	return pc_ut_run(suites, PC_ARRAY_SIZE(suites));
}
