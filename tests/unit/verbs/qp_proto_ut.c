/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * verbs/qp_proto.c: the rdma handshake record.
 *
 * The layout is pinned by a record written here byte by byte, not by the
 * module's encoder. Decoding runs on an exact malloc (a read past the end
 * is an ASan report); every truncation and one byte more is refused; every
 * field is checked at its bounds and every reserved byte set is refused.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../../../verbs/qp_proto.c"
#include "ut.h"

static const struct pc_qp_info g_ref = {
	.qpn = 0xABCDEF,
	.psn = 0x123456,
	.lid = 0xBEEF,
	.mtu = 5,
	.gid = {0xfe, 0x80, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xff},
	.rkey = 0xCAFEF00D,
	.seg_base = 0x0102030405060708ull,
	.incarnation = 0x1122334455667788ull,
};

/* g_ref as the layout in qp_proto.h says, written independently. */
static void
ref_bytes(uint8_t *b)
{
	static const uint8_t head[20] = {'P',  'C', 'Q',  'P',  1,    0, 5,    0,    0xEF, 0xCD,
					 0xAB, 0,   0x56, 0x34, 0x12, 0, 0xEF, 0xBE, 0,    0};
	static const uint8_t tail[20] = {0x0D, 0xF0, 0xFE, 0xCA, 8,    7,    6,    5,    4,   3, 2,
					 1,    0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11};

	memcpy(b, head, 20);
	memcpy(b + 20, g_ref.gid, 16);
	memcpy(b + 36, tail, 20);
}

static int
decode_exact(const uint8_t *b, size_t len, struct pc_qp_info *out)
{
	uint8_t *copy = malloc(len == 0 ? 1 : len);
	int rc;

	CU_ASSERT_FATAL(copy != NULL);
	memcpy(copy, b, len);
	rc = pc_qp_info_decode(copy, len, out);
	free(copy);
	return rc;
}

static bool
info_eq(const struct pc_qp_info *a, const struct pc_qp_info *b)
{
	return a->qpn == b->qpn && a->psn == b->psn && a->lid == b->lid && a->mtu == b->mtu &&
	       memcmp(a->gid, b->gid, 16) == 0 && a->rkey == b->rkey &&
	       a->seg_base == b->seg_base && a->incarnation == b->incarnation;
}

static void
test_layout(void)
{
	uint8_t want[PC_QP_INFO_LEN], got[PC_QP_INFO_LEN + 8];
	struct pc_qp_info out;

	CU_ASSERT_EQUAL(PC_QP_INFO_LEN, 56);
	ref_bytes(want);
	memset(got, 0xA5, sizeof(got));
	CU_ASSERT_EQUAL(pc_qp_info_encode(&g_ref, got, PC_QP_INFO_LEN), PC_QP_INFO_LEN);
	CU_ASSERT_EQUAL(memcmp(got, want, PC_QP_INFO_LEN), 0);
	for (size_t i = PC_QP_INFO_LEN; i < sizeof(got); i++) {
		CU_ASSERT_EQUAL(got[i], 0xA5); /* nothing written past the record */
	}
	memset(&out, 0, sizeof(out));
	CU_ASSERT_EQUAL(decode_exact(want, PC_QP_INFO_LEN, &out), 0);
	CU_ASSERT(info_eq(&out, &g_ref));
}

static void
test_round_trip_bounds(void)
{
	/* Each field at its minimum and its maximum. */
	struct pc_qp_info lo = {.mtu = PC_QP_MTU_MIN};
	struct pc_qp_info hi = {.qpn = PC_QP_24BIT_MAX,
				.psn = PC_QP_24BIT_MAX,
				.lid = UINT16_MAX,
				.mtu = PC_QP_MTU_MAX,
				.rkey = UINT32_MAX,
				.seg_base = UINT64_MAX,
				.incarnation = UINT64_MAX};
	const struct pc_qp_info *cases[] = {&lo, &hi, &g_ref};
	uint8_t b[PC_QP_INFO_LEN];
	struct pc_qp_info out;

	memset(hi.gid, 0xff, sizeof(hi.gid));
	for (size_t i = 0; i < PC_ARRAY_SIZE(cases); i++) {
		CU_ASSERT_EQUAL(pc_qp_info_encode(cases[i], b, sizeof(b)), PC_QP_INFO_LEN);
		memset(&out, 0x5A, sizeof(out));
		CU_ASSERT_EQUAL(decode_exact(b, sizeof(b), &out), 0);
		CU_ASSERT(info_eq(&out, cases[i]));
	}
}

static void
test_encode_refuses(void)
{
	struct pc_qp_info i = g_ref;
	uint8_t b[PC_QP_INFO_LEN];

	CU_ASSERT_EQUAL(pc_qp_info_encode(&g_ref, b, PC_QP_INFO_LEN - 1), -ENOSPC);
	i.qpn = PC_QP_24BIT_MAX + 1;
	CU_ASSERT_EQUAL(pc_qp_info_encode(&i, b, sizeof(b)), -EINVAL);
	i = g_ref;
	i.psn = PC_QP_24BIT_MAX + 1;
	CU_ASSERT_EQUAL(pc_qp_info_encode(&i, b, sizeof(b)), -EINVAL);
	i = g_ref;
	i.mtu = PC_QP_MTU_MIN - 1;
	CU_ASSERT_EQUAL(pc_qp_info_encode(&i, b, sizeof(b)), -EINVAL);
	i.mtu = PC_QP_MTU_MAX + 1;
	CU_ASSERT_EQUAL(pc_qp_info_encode(&i, b, sizeof(b)), -EINVAL);
}

static void
test_truncated_and_long(void)
{
	uint8_t b[PC_QP_INFO_LEN + 1];
	struct pc_qp_info out = {.qpn = 7};

	ref_bytes(b);
	b[PC_QP_INFO_LEN] = 0;
	for (size_t len = 0; len < PC_QP_INFO_LEN; len++) {
		CU_ASSERT_EQUAL(decode_exact(b, len, &out), -EBADMSG);
	}
	CU_ASSERT_EQUAL(decode_exact(b, PC_QP_INFO_LEN + 1, &out), -EBADMSG);
	CU_ASSERT_EQUAL(out.qpn, 7); /* untouched on failure */
}

/* Set byte `off` to v in a good record: decoding must give want. */
static void
check_byte(size_t off, uint8_t v, int want)
{
	uint8_t b[PC_QP_INFO_LEN];
	struct pc_qp_info out;

	ref_bytes(b);
	b[off] = v;
	CU_ASSERT_EQUAL(decode_exact(b, sizeof(b), &out), want);
}

static void
test_decode_fields(void)
{
	for (size_t off = 0; off < 4; off++) {
		check_byte(off, 0, -EBADMSG); /* magic */
	}
	check_byte(4, 2, -EBADMSG); /* version */
	check_byte(5, 1, -EBADMSG);
	check_byte(6, 0, -EBADMSG); /* mtu */
	check_byte(6, 6, -EBADMSG);
	check_byte(6, 1, 0);
	check_byte(7, 1, -EBADMSG);  /* flags */
	check_byte(11, 1, -EBADMSG); /* qpn's top byte */
	check_byte(15, 1, -EBADMSG); /* psn's top byte */
	check_byte(18, 1, -EBADMSG); /* reserved */
	check_byte(19, 0x80, -EBADMSG);
	/* Every byte of the free fields may be anything. */
	for (size_t off = 16; off < 18; off++) {
		check_byte(off, 0xff, 0);
	}
	for (size_t off = 20; off < PC_QP_INFO_LEN; off++) {
		check_byte(off, 0x00, 0);
		check_byte(off, 0xff, 0);
	}
}

static const struct pc_ut_test g_tests[] = {
	{"layout pinned byte by byte", test_layout},
	{"round trip at every field's bounds", test_round_trip_bounds},
	{"encode refuses out-of-range fields and short buffers", test_encode_refuses},
	{"truncated and overlong input refused", test_truncated_and_long},
	{"decode checks magic, version, mtu, 24-bit fields, reserved", test_decode_fields},
	{NULL, NULL},
};

static const struct pc_ut_suite suites[] = {
	{"qp_proto", NULL, NULL, g_tests},
};

int
main(void)
{
	return pc_ut_run(suites, PC_ARRAY_SIZE(suites));
}
