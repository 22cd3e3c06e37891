/* SPDX-License-Identifier: BSD-3-Clause */
#include "mlx5_cq.h"

#include <endian.h>
#include <errno.h>
#include <stddef.h>

#include <infiniband/mlx5dv.h>

#define CQE64_SIZE 64u
/* The consumer index word of the CQ doorbell record (rdma-core mlx5.h MLX5_CQ_SET_CI). */
#define CQ_SET_CI 0

enum pc_mlx5_cqe_kind
pc_mlx5_cqe_parse(const void *cqe64, unsigned int parity, struct pc_mlx5_cqe_res *res)
{
	const struct mlx5_cqe64 *cqe = cqe64;
	const struct mlx5_err_cqe *ecqe = cqe64;
	uint8_t op_own = __atomic_load_n(&cqe->op_own, __ATOMIC_RELAXED);
	uint8_t opcode = op_own >> 4;

	if (opcode == MLX5_CQE_INVALID || (op_own & MLX5_CQE_OWNER_MASK) != (parity & 1u)) {
		return PC_MLX5_CQE_EMPTY;
	}
	/* The owner bit says the entry is ours: only now may the rest of it be read. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	op_own = cqe->op_own;
	res->opcode = op_own >> 4;
	res->wqe_counter = be16toh(cqe->wqe_counter);
	res->syndrome = 0;
	res->vendor_syndrome = 0;
	switch (res->opcode) {
	case MLX5_CQE_REQ:
	case MLX5_CQE_RESP_WR_IMM:
	case MLX5_CQE_RESP_SEND:
	case MLX5_CQE_RESP_SEND_IMM:
	case MLX5_CQE_RESP_SEND_INV:
		return PC_MLX5_CQE_OK;
	case MLX5_CQE_REQ_ERR:
	case MLX5_CQE_RESP_ERR:
		res->syndrome = ecqe->syndrome;
		res->vendor_syndrome = ecqe->vendor_err_synd;
		return res->syndrome == MLX5_CQE_SYNDROME_WR_FLUSH_ERR ? PC_MLX5_CQE_FLUSH
								       : PC_MLX5_CQE_ERR;
	default:
		return PC_MLX5_CQE_ERR;
	}
}

int
pc_mlx5_cq_open(struct pc_mlx5_cq *c, struct ibv_cq *cq)
{
	struct mlx5dv_cq dv = {0};
	struct mlx5dv_obj obj = {0};

	obj.cq.in = cq;
	obj.cq.out = &dv;
	if (mlx5dv_init_obj(&obj, MLX5DV_OBJ_CQ) != 0) {
		return -EOPNOTSUPP;
	}
	if (dv.buf == NULL || dv.dbrec == NULL || dv.cqe_cnt == 0 ||
	    (dv.cqe_cnt & (dv.cqe_cnt - 1)) != 0 || (dv.cqe_size != 64 && dv.cqe_size != 128)) {
		return -EOPNOTSUPP;
	}
	c->buf = dv.buf;
	c->dbrec = (uint32_t *)dv.dbrec;
	c->cqe_cnt = dv.cqe_cnt;
	c->cqe_size = dv.cqe_size;
	c->ci = 0;
	return 0;
}

enum pc_mlx5_cqe_kind
pc_mlx5_cq_next(struct pc_mlx5_cq *c, struct pc_mlx5_cqe_res *res)
{
	uint32_t idx = c->ci & (c->cqe_cnt - 1);
	const uint8_t *entry = c->buf + (size_t)idx * c->cqe_size + (c->cqe_size - CQE64_SIZE);
	unsigned int parity = (c->ci & c->cqe_cnt) != 0 ? 1u : 0u;
	enum pc_mlx5_cqe_kind k = pc_mlx5_cqe_parse(entry, parity, res);

	if (k != PC_MLX5_CQE_EMPTY) {
		c->ci++;
	}
	return k;
}

void
pc_mlx5_cq_commit(struct pc_mlx5_cq *c)
{
	/* Release: the CQEs are read before the hardware may overwrite them. */
	__atomic_store_n(&c->dbrec[CQ_SET_CI], htobe32(c->ci & 0xffffffu), __ATOMIC_RELEASE);
}
