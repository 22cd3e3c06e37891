/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the tcp transport's wire codec (verbs/data_proto.c).
 *
 * Input: a byte stream as a data connection receives it. It is decoded
 * twice, as the serving side reads requests back to back and as the reading
 * side reads replies back to back (a successful reply's page bytes skipped,
 * as the channel receives them into the segment), each message copied into
 * a malloc of exactly its size, so a read past it is an ASan report.
 *
 * Properties: a decode returns 0, -EAGAIN exactly when fewer bytes than a
 * message are left, or -EBADMSG; what decodes is within the documented
 * bounds (len, status with its len) and re-encodes to the same bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_req(const uint8_t *p, size_t n)
{
	uint8_t *m = malloc(n == 0 ? 1 : n);
	uint8_t again[PC_DATA_REQ_SIZE];
	struct pc_data_req r;
	int rc;

	if (m == NULL) {
		return;
	}
	memcpy(m, p, n);
	rc = pc_data_req_decode(m, n, &r);
	if ((n < PC_DATA_REQ_SIZE) != (rc == -EAGAIN)) {
		__builtin_trap();
	}
	if (rc == 0) {
		if (r.len < PC_DATA_LEN_MIN || r.len > PC_DATA_LEN_MAX) {
			__builtin_trap();
		}
		if (pc_data_req_encode(again, &r) != 0 || memcmp(again, m, sizeof(again)) != 0) {
			__builtin_trap();
		}
	} else if (rc != -EAGAIN && rc != -EBADMSG) {
		__builtin_trap();
	}
	free(m);
}

/* Returns the reply's size on the wire (header + page), or 0 when it did not decode. */
static uint64_t
check_rep(const uint8_t *p, size_t n)
{
	uint8_t *m = malloc(n == 0 ? 1 : n);
	uint8_t again[PC_DATA_REP_SIZE];
	struct pc_data_rep r;
	uint64_t used = 0;
	int rc;

	if (m == NULL) {
		return 0;
	}
	memcpy(m, p, n);
	rc = pc_data_rep_decode(m, n, &r);
	if ((n < PC_DATA_REP_SIZE) != (rc == -EAGAIN)) {
		__builtin_trap();
	}
	if (rc == 0) {
		if (r.status == 0 ? (r.len < PC_DATA_LEN_MIN || r.len > PC_DATA_LEN_MAX)
				  : (r.len != 0 || (r.status != -ESTALE && r.status != -EINVAL &&
						    r.status != -EIO))) {
			__builtin_trap();
		}
		if (pc_data_rep_encode(again, &r) != 0 || memcmp(again, m, sizeof(again)) != 0) {
			__builtin_trap();
		}
		used = PC_DATA_REP_SIZE + (uint64_t)r.len;
	} else if (rc != -EAGAIN && rc != -EBADMSG) {
		__builtin_trap();
	}
	free(m);
	return used;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off;

	for (off = 0; off < size; off += PC_DATA_REQ_SIZE) {
		check_req(data + off,
			  PC_DATA_REQ_SIZE < size - off ? PC_DATA_REQ_SIZE : size - off);
	}
	for (off = 0; off < size;) {
		size_t n = PC_DATA_REP_SIZE < size - off ? PC_DATA_REP_SIZE : size - off;
		uint64_t used = check_rep(data + off, n);

		if (used == 0) {
			break; /* the connection would close here */
		}
		if (used > size - off) {
			break;
		}
		off += (size_t)used;
	}
	return 0;
}
