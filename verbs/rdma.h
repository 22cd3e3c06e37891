/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The rdma transport (`protocol = "rdma"`): one-sided RDMA READ over RC
 * QPs, behind struct pc_xport_ops (transport.h).
 *
 * Two levels:
 *  - the device (struct pc_rdma_dev), opened once per process by the main
 *    lcore before the workers start: the device context, one PD, and the
 *    local segment registered ONCE with LOCAL_WRITE | REMOTE_READ (never
 *    REMOTE_WRITE). Its rkey and base are what the node advertises. There
 *    are no other registrations, lazy or per address.
 *  - the per-lcore transport (struct pc_xport, from pc_xport_rdma.create or
 *    pc_rdma_create): that lcore's channels, one QP + CQ each, up to
 *    max_channels_per_peer per peer (node id, incarnation).
 *
 * Connecting: an RC QP needs the other side's QP number, PSN, LID/GID and
 * MTU, exchanged over the control RPC (struct pc_qp_info, qp_proto.h).
 * The transport never does I/O of its own for that; the engine does:
 *
 *   1. post_reads() to a peer with no channel that has room, and no
 *      channel being connected, calls the connect callback (set with
 *      pc_rdma_set_connect_cb) and takes nothing (returns 0);
 *   2. the engine calls pc_rdma_chan_create(x, peer): a QP + CQ in INIT;
 *      pc_rdma_chan_info() gives the record to send to the peer;
 *   3. the peer does the same with a channel of its own (create, then
 *      pc_rdma_chan_connect() with our record) and replies with its record;
 *   4. the engine calls pc_rdma_chan_connect(x, id, &reply): INIT->RTR->RTS.
 *      The channel then takes READs (both sides' channels can post: an RC
 *      pair carries READs in either direction).
 *
 * A channel whose QP reports any error CQE, or whose READ passes its
 * deadline, is destroyed (QP to ERR, then destroyed) and never reused; each
 * of its READs completes with an error exactly once, and the next
 * post_reads() asks for a new connection through the callback.
 *
 * All functions taking a struct pc_xport are called on the lcore that
 * created it.
 */
#ifndef PC_RDMA_H
#define PC_RDMA_H

#include <stddef.h>
#include <stdint.h>

#include "qp_proto.h"
#include "transport.h"

extern const struct pc_xport_ops pc_xport_rdma;

#define PC_RDMA_DEPTH_MAX         64u   /* READs in flight per QP, at most */
#define PC_RDMA_CHANNELS_MAX      1024u /* channels per lcore transport */
#define PC_RDMA_PEER_CHANNELS_MAX 64u   /* max_channels_per_peer is capped to this */
#define PC_RDMA_NODE_ID_MAX       128u  /* bytes, NUL included */

struct pc_rdma_dev;

struct pc_rdma_dev_opts {
	const char *device_name; /* NULL or "" = the first device whose ib_port is ACTIVE */
	int ib_port;             /* 1..255 */
	int gid_index;           /* -1 = no GRH (InfiniBand); RoCE needs one */
	uint64_t incarnation;    /* this node's, sent in every handshake record */
};

/*
 * Whether a usable device exists: device_name (or any, when NULL or "")
 * with ib_port ACTIVE. Returns 0, or -ENODEV with a sentence in why for the
 * fallback warning. Main lcore, at start.
 */
int pc_rdma_probe(const char *device_name, int ib_port, char *why, size_t len);

/*
 * Open the device, allocate the PD, register [seg_base, seg_base+seg_size)
 * once. The device becomes the one pc_xport_rdma.create uses. NULL with
 * errno set (ENODEV no usable device, EINVAL bad options, or the verbs
 * call's errno) and a log line. Main lcore, before any transport is created.
 */
struct pc_rdma_dev *pc_rdma_dev_open(const struct pc_rdma_dev_opts *o, void *seg_base,
				     uint64_t seg_size);

/* Close what pc_rdma_dev_open opened (NULL is fine), after every transport on it is destroyed. */
void pc_rdma_dev_close(struct pc_rdma_dev *d);

/* What the node advertises in its member record: the segment's rkey and base. */
uint32_t pc_rdma_dev_rkey(const struct pc_rdma_dev *d);
uint64_t pc_rdma_dev_seg_base(const struct pc_rdma_dev *d);

/*
 * A transport on device d: pc_xport_rdma.create with an explicit device.
 * opts' segment must lie inside d's registered one. NULL with errno set.
 */
struct pc_xport *pc_rdma_create(const struct pc_xport_opts *opts, struct pc_rdma_dev *d);

/* Called by post_reads when a peer needs a (new) channel; see the steps above. */
typedef void (*pc_rdma_connect_cb)(void *arg, const struct pc_xport_peer *peer);

void pc_rdma_set_connect_cb(struct pc_xport *x, pc_rdma_connect_cb cb, void *arg);

/*
 * A new channel to peer (node id, incarnation), its QP in INIT. Returns its
 * id (never 0), or 0 with errno set: ENOSPC (the peer has
 * max_channels_per_peer channels, or the lcore PC_RDMA_CHANNELS_MAX),
 * EINVAL, or the verbs call's errno. Nothing is left behind on failure.
 */
uint64_t pc_rdma_chan_create(struct pc_xport *x, const struct pc_xport_peer *peer);

/*
 * This side's handshake record for channel id (the same before and after
 * pc_rdma_chan_connect, so a passive side may connect first and reply
 * after). 0, or -ENOENT (no such channel, or destroyed).
 */
int pc_rdma_chan_info(const struct pc_xport *x, uint64_t id, struct pc_qp_info *out);

/*
 * Move channel id to RTR then RTS with the peer's record. Returns 0, or
 * -ENOENT (no such channel in INIT), -ESTALE (the record's incarnation is
 * not the channel's peer's), -EINVAL (mtu out of range), or the failing
 * ibv_modify_qp's -errno; on any error but -ENOENT the channel is destroyed.
 */
int pc_rdma_chan_connect(struct pc_xport *x, uint64_t id, const struct pc_qp_info *remote);

/* Destroy channel id (its READs complete -ECONNRESET). -ENOENT when there is none. */
int pc_rdma_chan_close(struct pc_xport *x, uint64_t id);

/* Channels to (node_id, incarnation) that take READs now (connected, not destroyed). */
unsigned int pc_rdma_peer_channels(const struct pc_xport *x, const char *node_id,
				   uint64_t incarnation);

#endif /* PC_RDMA_H */
