/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The engine's data plane: how this node serves its pages to others and
 * reads theirs.
 *
 *   - Serving: one tcp transport per worker lcore on the data port
 *     (rdma_bind_host:rdma_port, shared through SO_REUSEPORT), always:
 *     tcp readers are served whatever this node reads with.
 *   - Reading (`protocol`): "tcp" reads over those same transports;
 *     "rdma" opens the device once (one PD, the segment registered once,
 *     remote READ only) and gives each worker an rdma transport. A device
 *     that is missing or fails to open is a warning, and the node reads
 *     over tcp, as the seed promises.
 *   - RDMA channels are set up over the control RPC (QP_CONNECT): a worker
 *     that needs a channel creates its QP and sends its record through the
 *     control lcore (pc_cluster_qp_connect); the peer's control lcore
 *     creates the passive QP on its own rdma transport, connects it, and
 *     replies with its record; the worker then connects its QP. Passive
 *     QPs are capped per peer (the oldest goes when a peer asks for more).
 *   - Remote GET/EXISTS: one reader (fetch.h) per worker on its reading
 *     transport, handed to the sessions; the directory is reached through
 *     dirq.h, and stale locations go to pc_cluster_stale_loc().
 *
 * Threads: create/attach/destroy on the control lcore (destroy after the
 * lcores stopped); each worker's transports and reader are polled by that
 * worker only.
 */
#ifndef PC_DATAPLANE_H
#define PC_DATAPLANE_H

#include <stdint.h>

#include "admin.h"
#include "cluster.h"
#include "config.h"
#include "dirq.h"
#include "lcore.h"
#include "session.h"
#include "store.h"

struct pc_dataplane;

/*
 * The transports, before the cluster exists (its member record advertises
 * the data port). Returns NULL and logs on failure (the data port cannot be
 * bound, no memory); rdma trouble is a warning and a tcp fallback.
 */
struct pc_dataplane *pc_dataplane_create(const struct pc_config *cfg, struct pc_runtime *rt,
					 struct pc_store *st);

/* The data port bound (advertised in the member record). */
uint16_t pc_dataplane_port(const struct pc_dataplane *dp);

/* The transport pages are read with: "tcp" or "rdma". */
const char *pc_dataplane_transport(const struct pc_dataplane *dp);

/*
 * Wire the readers to the cluster (which must outlive dp): one remote
 * reader per worker, given to the sessions; the QP_CONNECT handler when
 * reading over rdma; the pollers. Returns 0, or -ENOMEM (logged).
 */
int pc_dataplane_attach(struct pc_dataplane *dp, struct pc_cluster *c, struct pc_dirq *q,
			struct pc_sessions *ss);

/* Counters summed over the workers (pc_admin_data_fn). Control lcore. */
void pc_dataplane_stats(void *dp, struct pc_admin_data_stats *out);

/*
 * After the lcores stopped and the sessions were destroyed (they give
 * their landing slots back first), before the store. Accepts NULL.
 */
void pc_dataplane_destroy(struct pc_dataplane *dp);

#endif /* PC_DATAPLANE_H */
