/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Direct polling of an mlx5 CQ through mlx5dv (no provider call per CQE):
 * the CQE at the consumer index is ours when its opcode is not INVALID and
 * its owner bit equals the consumer index's wrap parity; only then, after a
 * load fence, are its other fields read (rdma-core get_sw_cqe, UCX).
 *
 * pc_mlx5_cqe_parse() is the pure part: given the 64 bytes of one
 * struct mlx5_cqe64 and the expected owner parity, it says what the CQE
 * is. It touches nothing else, so tests feed it crafted bytes.
 *
 * Everything here is used by the one lcore that owns the CQ.
 */
#ifndef PC_MLX5_CQ_H
#define PC_MLX5_CQ_H

#include <stdbool.h>
#include <stdint.h>

struct ibv_cq;

enum pc_mlx5_cqe_kind {
	PC_MLX5_CQE_EMPTY = 0, /* still the hardware's: nothing to consume */
	PC_MLX5_CQE_OK,        /* a requester or responder success */
	PC_MLX5_CQE_ERR,       /* REQ_ERR / RESP_ERR with a syndrome other than flush */
	PC_MLX5_CQE_FLUSH,     /* an error CQE with syndrome WR_FLUSH_ERR (QP already in error) */
};

struct pc_mlx5_cqe_res {
	uint16_t wqe_counter; /* the send queue WQE index the CQE is for */
	uint8_t opcode;       /* MLX5_CQE_* */
	uint8_t syndrome;     /* MLX5_CQE_SYNDROME_*; 0 on success */
	uint8_t vendor_syndrome;
};

/*
 * Classify the CQE whose 64 bytes are at cqe64, expecting owner bit
 * `parity` (0 or 1: the consumer index's wrap count, mod 2). Fills *res
 * unless EMPTY. Opcodes other than success/REQ_ERR/RESP_ERR (resize,
 * compressed...) are returned as ERR with syndrome 0: we never ask for them.
 */
enum pc_mlx5_cqe_kind pc_mlx5_cqe_parse(const void *cqe64, unsigned int parity,
					struct pc_mlx5_cqe_res *res);

/* A CQ opened for direct polling. */
struct pc_mlx5_cq {
	uint8_t *buf;
	uint32_t *dbrec;   /* big-endian consumer index at dbrec[0] (MLX5_CQ_SET_CI) */
	uint32_t cqe_cnt;  /* a power of two */
	uint32_t cqe_size; /* 64 or 128; the cqe64 is the last 64 bytes of an entry */
	uint32_t ci;       /* consumer index, free running (24 bits reach the dbrec) */
};

/*
 * Open cq for direct polling (mlx5dv_init_obj). Returns 0, or -EOPNOTSUPP
 * (not an mlx5 CQ, or a layout we do not handle: the caller uses
 * ibv_poll_cq instead).
 */
int pc_mlx5_cq_open(struct pc_mlx5_cq *c, struct ibv_cq *cq);

/*
 * The CQE at the consumer index: EMPTY (nothing consumed), or its kind with
 * *res filled and the consumer index advanced. Call pc_mlx5_cq_commit()
 * once after a batch of these.
 */
enum pc_mlx5_cqe_kind pc_mlx5_cq_next(struct pc_mlx5_cq *c, struct pc_mlx5_cqe_res *res);

/* Tell the hardware what was consumed (the CQ doorbell record). */
void pc_mlx5_cq_commit(struct pc_mlx5_cq *c);

#endif /* PC_MLX5_CQ_H */
