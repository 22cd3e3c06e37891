/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The rdma handshake record: what one side of an RC channel tells the other
 * (over the control RPC) so that both QPs can be moved to RTR/RTS, plus the
 * segment registration the READs will target. Pure: no I/O, no verbs; the
 * decoder is fuzzed (tests/fuzz/qp_fuzz.c).
 *
 * Wire layout, PC_QP_INFO_LEN bytes, little-endian, no padding:
 *   0 u32 magic "PCQP"   4 u16 version   6 u8 mtu (1..5: IBV_MTU_256..4096)
 *   7 u8 flags (0)       8 u32 qpn       12 u32 psn     16 u16 lid
 *  18 u16 reserved (0)  20 u8 gid[16]   36 u32 rkey    40 u64 seg_base
 *  48 u64 incarnation
 * qpn and psn are 24-bit fields; anything above is refused, as are the
 * reserved bytes when not zero (the encoding is canonical).
 */
#ifndef PC_QP_PROTO_H
#define PC_QP_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PC_QP_INFO_MAGIC   0x50514350u /* the bytes "PCQP" */
#define PC_QP_INFO_VERSION 1
#define PC_QP_INFO_LEN     56
#define PC_QP_24BIT_MAX    0xFFFFFFu
#define PC_QP_MTU_MIN      1 /* IBV_MTU_256 */
#define PC_QP_MTU_MAX      5 /* IBV_MTU_4096 */

struct pc_qp_info {
	uint32_t qpn; /* 24 bits */
	uint32_t psn; /* 24 bits: the first PSN this side sends with */
	uint16_t lid;
	uint8_t mtu; /* enum ibv_mtu of the sender's port (active_mtu) */
	uint8_t gid[16];
	uint32_t rkey;        /* the sender's segment registration */
	uint64_t seg_base;    /* the sender's segment address */
	uint64_t incarnation; /* the sender's node incarnation */
};

/*
 * Encode `in` into buf[0..cap). Returns PC_QP_INFO_LEN, -ENOSPC (cap too
 * small, nothing written) or -EINVAL (a field out of range). Any lcore.
 */
int pc_qp_info_encode(const struct pc_qp_info *in, void *buf, size_t cap);

/*
 * Decode exactly len bytes into *out. Returns 0, or -EBADMSG (wrong length,
 * magic, version, a field out of range, reserved bytes set); *out is only
 * written on success. Any lcore.
 */
int pc_qp_info_decode(const void *buf, size_t len, struct pc_qp_info *out);

#endif /* PC_QP_PROTO_H */
