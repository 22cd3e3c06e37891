/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the rdma handshake record decoder (verbs/qp_proto.c).
 *
 * Input: the bytes a peer sent as its record, copied into a malloc of
 * exactly that size (a read past it is an ASan report).
 *
 * Properties: decode returns 0 or -EBADMSG; 0 only for exactly
 * PC_QP_INFO_LEN bytes; a decoded record has 24-bit qpn and psn and an mtu
 * in range, re-encodes to the same bytes (the encoding is canonical), and
 * the encoder refuses one byte less of room with -ENOSPC; a refused input
 * leaves the output untouched.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qp_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size == 0 ? 1 : size);
	uint8_t again[PC_QP_INFO_LEN];
	struct pc_qp_info info, poison;
	int rc;

	if (copy == NULL) {
		return 0;
	}
	memcpy(copy, data, size);
	memset(&info, 0xA5, sizeof(info));
	poison = info;
	rc = pc_qp_info_decode(copy, size, &info);
	if (rc != 0) {
		if (rc != -EBADMSG || memcmp(&info, &poison, sizeof(info)) != 0) {
			__builtin_trap();
		}
		free(copy);
		return 0;
	}
	if (size != PC_QP_INFO_LEN || info.qpn > PC_QP_24BIT_MAX || info.psn > PC_QP_24BIT_MAX ||
	    info.mtu < PC_QP_MTU_MIN || info.mtu > PC_QP_MTU_MAX) {
		__builtin_trap();
	}
	if (pc_qp_info_encode(&info, again, sizeof(again)) != PC_QP_INFO_LEN ||
	    memcmp(again, copy, PC_QP_INFO_LEN) != 0) {
		__builtin_trap();
	}
	if (pc_qp_info_encode(&info, again, sizeof(again) - 1) != -ENOSPC) {
		__builtin_trap();
	}
	free(copy);
	return 0;
}
