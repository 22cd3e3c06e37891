/* SPDX-License-Identifier: BSD-3-Clause */
#include "qp_proto.h"

#include <errno.h>
#include <string.h>

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void
put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void
put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)get16(p) | ((uint32_t)get16(p + 2) << 16);
}

static uint64_t
get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32);
}

static int
info_valid(const struct pc_qp_info *i)
{
	return i->qpn <= PC_QP_24BIT_MAX && i->psn <= PC_QP_24BIT_MAX && i->mtu >= PC_QP_MTU_MIN &&
	       i->mtu <= PC_QP_MTU_MAX;
}

int
pc_qp_info_encode(const struct pc_qp_info *in, void *buf, size_t cap)
{
	uint8_t *p = buf;

	if (cap < PC_QP_INFO_LEN) {
		return -ENOSPC;
	}
	if (!info_valid(in)) {
		return -EINVAL;
	}
	put32(p + 0, PC_QP_INFO_MAGIC);
	put16(p + 4, PC_QP_INFO_VERSION);
	p[6] = in->mtu;
	p[7] = 0;
	put32(p + 8, in->qpn);
	put32(p + 12, in->psn);
	put16(p + 16, in->lid);
	put16(p + 18, 0);
	memcpy(p + 20, in->gid, sizeof(in->gid));
	put32(p + 36, in->rkey);
	put64(p + 40, in->seg_base);
	put64(p + 48, in->incarnation);
	return PC_QP_INFO_LEN;
}

int
pc_qp_info_decode(const void *buf, size_t len, struct pc_qp_info *out)
{
	const uint8_t *p = buf;
	struct pc_qp_info i;

	if (len != PC_QP_INFO_LEN || get32(p) != PC_QP_INFO_MAGIC ||
	    get16(p + 4) != PC_QP_INFO_VERSION || p[7] != 0 || get16(p + 18) != 0) {
		return -EBADMSG;
	}
	i.mtu = p[6];
	i.qpn = get32(p + 8);
	i.psn = get32(p + 12);
	i.lid = get16(p + 16);
	memcpy(i.gid, p + 20, sizeof(i.gid));
	i.rkey = get32(p + 36);
	i.seg_base = get64(p + 40);
	i.incarnation = get64(p + 48);
	if (!info_valid(&i)) {
		return -EBADMSG;
	}
	*out = i;
	return 0;
}
