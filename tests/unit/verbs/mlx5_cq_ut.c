/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * verbs/mlx5_cq.c: direct mlx5 CQ polling.
 *
 * CQEs are crafted here byte by byte at the offsets of the PRM layout
 * (op_own at 63, wqe_counter big-endian at 60, syndrome at 55, vendor
 * syndrome at 54), not through mlx5dv.h's structs, and fed to the parser
 * and to a fake CQ that mlx5dv_init_obj (stubbed) hands out.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../../../verbs/mlx5_cq.c"
#include "mock.h"
#include "ut.h"

#define OFF_VENDOR 54
#define OFF_SYND   55
#define OFF_WQE    60
#define OFF_OPOWN  63

/* The return value of the stubbed mlx5dv_init_obj, and what it hands out. */
int ut_init_obj_rc(void);
DEFINE_STUB(ut_init_obj_rc, int, (void), 0)
static struct mlx5dv_cq g_dv;
static unsigned int g_init_obj_type_ok;

int
mlx5dv_init_obj(struct mlx5dv_obj *obj, uint64_t obj_type)
{
	int rc = ut_init_obj_rc();

	if (obj_type == MLX5DV_OBJ_CQ && obj->cq.in != NULL) {
		g_init_obj_type_ok++;
	}
	if (rc == 0) {
		*obj->cq.out = g_dv;
	}
	return rc;
}

static void
craft(uint8_t *c, uint8_t opcode, unsigned int owner, uint16_t wqe, uint8_t synd, uint8_t vendor)
{
	memset(c, 0, 64);
	c[OFF_VENDOR] = vendor;
	c[OFF_SYND] = synd;
	c[OFF_WQE] = (uint8_t)(wqe >> 8);
	c[OFF_WQE + 1] = (uint8_t)wqe;
	c[OFF_OPOWN] = (uint8_t)((opcode << 4) | (owner & 1u));
}

static void
test_parse_success(void)
{
	uint8_t c[64];
	struct pc_mlx5_cqe_res r;

	for (unsigned int parity = 0; parity < 2; parity++) {
		craft(c, MLX5_CQE_REQ, parity, 0x1234, 0, 0);
		memset(&r, 0xff, sizeof(r));
		CU_ASSERT_EQUAL(pc_mlx5_cqe_parse(c, parity, &r), PC_MLX5_CQE_OK);
		CU_ASSERT_EQUAL(r.wqe_counter, 0x1234);
		CU_ASSERT_EQUAL(r.opcode, MLX5_CQE_REQ);
		CU_ASSERT_EQUAL(r.syndrome, 0);
	}
}

static void
test_parse_error(void)
{
	uint8_t c[64];
	struct pc_mlx5_cqe_res r;

	craft(c, MLX5_CQE_REQ_ERR, 1, 7, MLX5_CQE_SYNDROME_REMOTE_ACCESS_ERR, 0x88);
	CU_ASSERT_EQUAL(pc_mlx5_cqe_parse(c, 1, &r), PC_MLX5_CQE_ERR);
	CU_ASSERT_EQUAL(r.syndrome, 0x13);
	CU_ASSERT_EQUAL(r.vendor_syndrome, 0x88);
	CU_ASSERT_EQUAL(r.wqe_counter, 7);
	CU_ASSERT_EQUAL(r.opcode, MLX5_CQE_REQ_ERR);
	craft(c, MLX5_CQE_RESP_ERR, 0, 9, MLX5_CQE_SYNDROME_TRANSPORT_RETRY_EXC_ERR, 0);
	CU_ASSERT_EQUAL(pc_mlx5_cqe_parse(c, 0, &r), PC_MLX5_CQE_ERR);
	CU_ASSERT_EQUAL(r.syndrome, 0x15);
	/* An opcode we never ask for is not a success. */
	craft(c, 5 /* resize */, 0, 0, 0, 0);
	CU_ASSERT_EQUAL(pc_mlx5_cqe_parse(c, 0, &r), PC_MLX5_CQE_ERR);
}

static void
test_parse_flush(void)
{
	uint8_t c[64];
	struct pc_mlx5_cqe_res r;

	craft(c, MLX5_CQE_REQ_ERR, 0, 3, MLX5_CQE_SYNDROME_WR_FLUSH_ERR, 0);
	CU_ASSERT_EQUAL(pc_mlx5_cqe_parse(c, 0, &r), PC_MLX5_CQE_FLUSH);
	CU_ASSERT_EQUAL(r.syndrome, 5);
	craft(c, MLX5_CQE_RESP_ERR, 1, 3, MLX5_CQE_SYNDROME_WR_FLUSH_ERR, 0);
	CU_ASSERT_EQUAL(pc_mlx5_cqe_parse(c, 1, &r), PC_MLX5_CQE_FLUSH);
}

static void
test_parse_not_owned(void)
{
	uint8_t c[64];
	struct pc_mlx5_cqe_res r = {.wqe_counter = 0xAAAA};

	/* Owner bit of the other wrap: still the hardware's. */
	craft(c, MLX5_CQE_REQ, 1, 1, 0, 0);
	CU_ASSERT_EQUAL(pc_mlx5_cqe_parse(c, 0, &r), PC_MLX5_CQE_EMPTY);
	craft(c, MLX5_CQE_REQ_ERR, 0, 1, 0x13, 0);
	CU_ASSERT_EQUAL(pc_mlx5_cqe_parse(c, 1, &r), PC_MLX5_CQE_EMPTY);
	/* Never written (INVALID), whatever the owner bit. */
	craft(c, MLX5_CQE_INVALID, 0, 1, 0, 0);
	CU_ASSERT_EQUAL(pc_mlx5_cqe_parse(c, 0, &r), PC_MLX5_CQE_EMPTY);
	craft(c, MLX5_CQE_INVALID, 1, 1, 0, 0);
	CU_ASSERT_EQUAL(pc_mlx5_cqe_parse(c, 1, &r), PC_MLX5_CQE_EMPTY);
	CU_ASSERT_EQUAL(r.wqe_counter, 0xAAAA); /* untouched */
}

#define FAKE_CNT 4

static uint8_t g_buf[FAKE_CNT * 128] __attribute__((aligned(64)));
static uint32_t g_dbrec[2];
static struct ibv_cq g_cq; /* only its address is used */

static void
fake_cq(uint32_t cqe_size)
{
	memset(&g_dv, 0, sizeof(g_dv));
	memset(g_dbrec, 0, sizeof(g_dbrec));
	g_dv.buf = g_buf;
	g_dv.dbrec = g_dbrec;
	g_dv.cqe_cnt = FAKE_CNT;
	g_dv.cqe_size = cqe_size;
	/* As the provider leaves a new CQ: every entry INVALID, owner 0. */
	for (unsigned int i = 0; cqe_size >= 64 && i < FAKE_CNT; i++) {
		craft(g_buf + (size_t)i * cqe_size + (cqe_size - 64), MLX5_CQE_INVALID, 0, 0, 0, 0);
	}
}

/* Wrap three times around a 4-entry CQ, checking the owner parity each round. */
static void
wrap_rounds(uint32_t cqe_size)
{
	struct pc_mlx5_cq c;
	struct pc_mlx5_cqe_res r;
	struct ibv_cq *cq = &g_cq;
	uint16_t wqe = 0;

	fake_cq(cqe_size);
	MOCK_CLEAR(ut_init_obj_rc);
	CU_ASSERT_EQUAL_FATAL(pc_mlx5_cq_open(&c, cq), 0);
	CU_ASSERT_EQUAL(pc_mlx5_cq_next(&c, &r), PC_MLX5_CQE_EMPTY);
	for (unsigned int round = 0; round < 3; round++) {
		unsigned int owner = round & 1u;

		for (unsigned int i = 0; i < FAKE_CNT; i++) {
			uint8_t *e = g_buf + (size_t)i * cqe_size + (cqe_size - 64);

			/* Before the hardware writes it: last round's entry, not ours. */
			if (round > 0) {
				CU_ASSERT_EQUAL(pc_mlx5_cq_next(&c, &r), PC_MLX5_CQE_EMPTY);
			}
			craft(e, MLX5_CQE_REQ, owner, wqe, 0, 0);
			if (cqe_size == 128) {
				memset(g_buf + (size_t)i * cqe_size, 0xEE,
				       64); /* the unused first half */
			}
			CU_ASSERT_EQUAL(pc_mlx5_cq_next(&c, &r), PC_MLX5_CQE_OK);
			CU_ASSERT_EQUAL(r.wqe_counter, wqe);
			wqe++;
		}
		CU_ASSERT_EQUAL(pc_mlx5_cq_next(&c, &r), PC_MLX5_CQE_EMPTY);
		pc_mlx5_cq_commit(&c);
		CU_ASSERT_EQUAL(be32toh(g_dbrec[0]), (round + 1) * FAKE_CNT);
	}
	CU_ASSERT_EQUAL(c.ci, 3 * FAKE_CNT);
}

static void
test_wrap_64(void)
{
	wrap_rounds(64);
}

static void
test_wrap_128(void)
{
	wrap_rounds(128);
}

static void
test_open_refuses(void)
{
	struct pc_mlx5_cq c;
	struct ibv_cq *cq = &g_cq;

	MOCK_CLEAR(ut_init_obj_rc);
	g_init_obj_type_ok = 0;
	fake_cq(64);
	MOCK_PUSH(ut_init_obj_rc, EOPNOTSUPP); /* not an mlx5 CQ */
	CU_ASSERT_EQUAL(pc_mlx5_cq_open(&c, cq), -EOPNOTSUPP);
	g_dv.cqe_cnt = 6;
	CU_ASSERT_EQUAL(pc_mlx5_cq_open(&c, cq), -EOPNOTSUPP);
	fake_cq(32);
	CU_ASSERT_EQUAL(pc_mlx5_cq_open(&c, cq), -EOPNOTSUPP);
	fake_cq(64);
	g_dv.dbrec = NULL;
	CU_ASSERT_EQUAL(pc_mlx5_cq_open(&c, cq), -EOPNOTSUPP);
	fake_cq(64);
	CU_ASSERT_EQUAL(pc_mlx5_cq_open(&c, cq), 0);
	CU_ASSERT_EQUAL(MOCK_CALLS(ut_init_obj_rc), 5);
	CU_ASSERT_EQUAL(g_init_obj_type_ok, 5);
}

static const struct pc_ut_test g_parse_tests[] = {
	{"success CQE", test_parse_success},
	{"error CQE with a syndrome", test_parse_error},
	{"flush error CQE", test_parse_flush},
	{"not yet owned (owner bit, INVALID opcode)", test_parse_not_owned},
	{NULL, NULL},
};

static const struct pc_ut_test g_cq_tests[] = {
	{"owner bit wraps across the CQ size (64-byte CQEs)", test_wrap_64},
	{"owner bit wraps across the CQ size (128-byte CQEs)", test_wrap_128},
	{"open refuses non-mlx5 and odd layouts", test_open_refuses},
	{NULL, NULL},
};

static const struct pc_ut_suite suites[] = {
	{"mlx5 CQE parse", NULL, NULL, g_parse_tests},
	{"mlx5 CQ", NULL, NULL, g_cq_tests},
};

int
main(void)
{
	return pc_ut_run(suites, PC_ARRAY_SIZE(suites));
}
