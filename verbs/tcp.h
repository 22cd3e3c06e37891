/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The tcp transport (protocol = "tcp"): struct pc_xport_ops over
 * non-blocking sockets, one epoll set per lcore, polled (epoll_wait with a
 * zero timeout), never blocking. The wire is verbs/data_proto.h after the
 * cluster handshake (control/auth.h), the same as control connections.
 *
 * Serving: each pc_xport listens on the data port with SO_REUSEPORT (so the
 * kernel spreads connections over the lcores), when it has a store. A READ
 * request is checked against the store by pc_store_pin_at (offset and
 * generation; never an address computed from the wire), its len against
 * the pinned page (header + payload, else -EINVAL), and the page is sent
 * straight from the segment mapping (sendmsg, gathering reply headers and
 * pages), pinned until its last byte is written, or with tcp_zerocopy
 * (MSG_ZEROCOPY, for sends of 16 KiB of pages or more) until the kernel
 * reports the send done on the error queue; a connection whose sends the
 * kernel copies anyway (loopback, a NIC without scatter-gather) goes back
 * to plain sends. Per connection at most
 * PC_TCP_SERVE_QUEUE replies and, soft, PC_TCP_SERVE_OUT_CAP bytes are
 * pending: past that the connection's requests are not read (back-pressure
 * onto the reader). Deadlines, all op_timeout_ns: the handshake, a request
 * that started arriving, output that makes no progress. At most
 * PC_TCP_SERVE_CONNS_MAX connections per lcore. Bad bytes close that
 * connection (serve_malformed) and nothing else.
 *
 * Reading: channels are connections to a peer, keyed by node id and
 * incarnation (a new incarnation, or a new address, drops the old ones), up
 * to max_channels_per_peer, opened on demand; a READ goes to the least
 * loaded channel (a new one is opened while every open one has work), at
 * most PC_TCP_CHAN_DEPTH in flight per channel, pipelined. Reply bytes are
 * received straight into seg_base + local_off. A channel that sees an error
 * or a timeout is closed, never reused: its READs complete with the error
 * (-ETIMEDOUT for those whose deadline passed, -ECONNRESET for the others
 * on a channel that timed out). Besides transport.h's statuses a READ may
 * complete -EPROTO (the peer broke the protocol: a malformed or unexpected
 * reply) or -EIO (the owner failed otherwise).
 *
 * Threads: one owner lcore per struct pc_xport (see transport.h).
 */
#ifndef PC_TCP_H
#define PC_TCP_H

#include "transport.h"

#define PC_TCP_CHAN_DEPTH      64          /* READs in flight per channel */
#define PC_TCP_CHANNELS_MAX    256         /* max_channels_per_peer's upper bound */
#define PC_TCP_SERVE_CONNS_MAX 1024        /* server connections per lcore */
#define PC_TCP_SERVE_QUEUE     64          /* replies pending per server connection */
#define PC_TCP_SERVE_OUT_CAP   (16u << 20) /* bytes pending before requests stop being read */
#define PC_TCP_NODE_ID_MAX     127         /* node id length */
#define PC_TCP_TIMEOUT_MAX     (3600ull * 1000000000ull)

extern const struct pc_xport_ops pc_xport_tcp;

#endif /* PC_TCP_H */
