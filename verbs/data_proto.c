/* SPDX-License-Identifier: BSD-3-Clause */
/* The tcp transport's wire codec (see data_proto.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "data_proto.h"

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void
put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++) {
		p[i] = (uint8_t)(v >> (8 * i));
	}
}

static void
put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		p[i] = (uint8_t)(v >> (8 * i));
	}
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static uint32_t
get32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--) {
		v = (v << 8) | p[i];
	}
	return v;
}

static uint64_t
get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--) {
		v = (v << 8) | p[i];
	}
	return v;
}

static bool
len_ok(uint32_t len)
{
	return len >= PC_DATA_LEN_MIN && len <= PC_DATA_LEN_MAX;
}

/* The statuses an owner may answer; anything else is a broken peer. */
static bool
status_ok(int32_t status)
{
	return status == 0 || status == -ESTALE || status == -EINVAL || status == -EIO;
}

static bool
rep_ok(const struct pc_data_rep *r)
{
	return status_ok(r->status) && (r->status == 0 ? len_ok(r->len) : r->len == 0);
}

int
pc_data_req_encode(uint8_t *out, const struct pc_data_req *r)
{
	if (out == NULL || r == NULL || !len_ok(r->len)) {
		return -EINVAL;
	}
	put32(out, PC_DATA_REQ_MAGIC);
	put16(out + 4, PC_DATA_VERSION);
	put16(out + 6, 0);
	put64(out + 8, r->id);
	put64(out + 16, r->remote_off);
	put64(out + 24, r->generation);
	put32(out + 32, r->len);
	put32(out + 36, 0);
	return 0;
}

int
pc_data_req_decode(const uint8_t *buf, size_t len, struct pc_data_req *r)
{
	struct pc_data_req d;

	if (buf == NULL || r == NULL) {
		return -EINVAL;
	}
	if (len < PC_DATA_REQ_SIZE) {
		return -EAGAIN;
	}
	if (get32(buf) != PC_DATA_REQ_MAGIC || get16(buf + 4) != PC_DATA_VERSION ||
	    get16(buf + 6) != 0 || get32(buf + 36) != 0) {
		return -EBADMSG;
	}
	d.id = get64(buf + 8);
	d.remote_off = get64(buf + 16);
	d.generation = get64(buf + 24);
	d.len = get32(buf + 32);
	if (!len_ok(d.len)) {
		return -EBADMSG;
	}
	*r = d;
	return 0;
}

int
pc_data_rep_encode(uint8_t *out, const struct pc_data_rep *r)
{
	if (out == NULL || r == NULL || !rep_ok(r)) {
		return -EINVAL;
	}
	put32(out, PC_DATA_REP_MAGIC);
	put16(out + 4, PC_DATA_VERSION);
	put16(out + 6, 0);
	put64(out + 8, r->id);
	put32(out + 16, (uint32_t)r->status);
	put32(out + 20, r->len);
	return 0;
}

int
pc_data_rep_decode(const uint8_t *buf, size_t len, struct pc_data_rep *r)
{
	struct pc_data_rep d;

	if (buf == NULL || r == NULL) {
		return -EINVAL;
	}
	if (len < PC_DATA_REP_SIZE) {
		return -EAGAIN;
	}
	if (get32(buf) != PC_DATA_REP_MAGIC || get16(buf + 4) != PC_DATA_VERSION ||
	    get16(buf + 6) != 0) {
		return -EBADMSG;
	}
	d.id = get64(buf + 8);
	d.status = (int32_t)get32(buf + 16);
	d.len = get32(buf + 20);
	if (!rep_ok(&d)) {
		return -EBADMSG;
	}
	*r = d;
	return 0;
}
