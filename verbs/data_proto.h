/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The tcp transport's wire format (after the auth handshake, control/auth.h):
 * a pure codec, no I/O, no allocation, no DPDK, fuzzed (tests/fuzz/data_fuzz.c).
 *
 * The reader sends READ requests back to back (pipelined); the owner answers
 * each, in request order, with a reply header followed, when the status is 0,
 * by exactly len bytes of the page (its 64-byte header, then the payload).
 * Little-endian, fixed sizes, no padding:
 *
 *   REQUEST (40 bytes)                  REPLY (24 bytes)
 *   off size field                      off size field
 *    0   4   magic "PCDQ"                0   4   magic "PCDR"
 *    4   2   version (1)                 4   2   version (1)
 *    6   2   flags (0)                   6   2   flags (0)
 *    8   8   request id                  8   8   request id (the request's)
 *   16   8   remote_off                 16   4   status (i32): 0, -ESTALE,
 *   24   8   generation                             -EINVAL or -EIO
 *   32   4   len: header + payload      20   4   len: 0 unless status is 0;
 *   36   4   reserved (0)                           then header + payload
 *
 * len is within [PC_PAGE_HDR_SIZE, PC_PAGE_HDR_SIZE + PC_PAGE_PAYLOAD_MAX]
 * in a request and in a successful reply. remote_off and generation are
 * not judged here: the owner checks them against its own store
 * (pc_store_pin_at) and never computes an address from them.
 *
 * Threads: every function may be called from any thread.
 */
#ifndef PC_DATA_PROTO_H
#define PC_DATA_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "page.h"

#define PC_DATA_REQ_SIZE  40
#define PC_DATA_REP_SIZE  24
#define PC_DATA_REQ_MAGIC 0x51444350u /* "PCDQ" as little-endian bytes */
#define PC_DATA_REP_MAGIC 0x52444350u /* "PCDR" */
#define PC_DATA_VERSION   1
#define PC_DATA_LEN_MIN   ((uint32_t)PC_PAGE_HDR_SIZE)
#define PC_DATA_LEN_MAX   ((uint32_t)PC_PAGE_HDR_SIZE + PC_PAGE_PAYLOAD_MAX)

struct pc_data_req {
	uint64_t id;
	uint64_t remote_off;
	uint64_t generation;
	uint32_t len;
};

struct pc_data_rep {
	uint64_t id;
	int32_t status;
	uint32_t len;
};

/*
 * Encode a request into out[PC_DATA_REQ_SIZE]. Returns 0, or -EINVAL (NULL,
 * or len out of bounds: nothing written).
 */
int pc_data_req_encode(uint8_t *out, const struct pc_data_req *r);

/*
 * Decode a request from the first PC_DATA_REQ_SIZE of len bytes at buf.
 * Returns 0, -EAGAIN (fewer than PC_DATA_REQ_SIZE bytes), -EBADMSG (magic,
 * version, flags, reserved or len wrong: the connection is broken) or
 * -EINVAL (NULL). r is written only on success.
 */
int pc_data_req_decode(const uint8_t *buf, size_t len, struct pc_data_req *r);

/*
 * Encode a reply into out[PC_DATA_REP_SIZE]. Returns 0, or -EINVAL (NULL, a
 * status not allowed on the wire, a len that does not fit the status).
 */
int pc_data_rep_encode(uint8_t *out, const struct pc_data_rep *r);

/* Decode a reply: as pc_data_req_decode (status and its len checked too). */
int pc_data_rep_decode(const uint8_t *buf, size_t len, struct pc_data_rep *r);

#endif /* PC_DATA_PROTO_H */
