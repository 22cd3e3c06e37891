/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Directory lookups from any lcore. The cluster (control/cluster.h) lives
 * on the control lcore; a worker that needs to know where keys are (a GET
 * that missed locally) sends its batch there as one message, the control
 * lcore runs it through pc_cluster_lookup() (the read cache, then one
 * DIR_LOOKUP per owner per 128 keys, replicas on failure), and the results
 * come back to the asking lcore as one message, where the callback runs.
 *
 * Every request completes exactly once, on the lcore that made it, even
 * when the cluster refuses it (the status is then every key's) or a message
 * ring is momentarily full (the reply is retried from the control lcore).
 */
#ifndef PC_DIRQ_H
#define PC_DIRQ_H

#include <stdint.h>

#include "cluster.h"
#include "lcore.h"

struct pc_dirq;

struct pc_dirq_stats {
	uint64_t requests;      /* lookups asked for */
	uint64_t keys;          /* keys in them */
	uint64_t refused;       /* the cluster refused the batch (its status went to every key) */
	uint64_t reply_retries; /* replies that waited for room in the asker's message ring */
};

/*
 * Set up on the control lcore of rt, for cluster (which must outlive it).
 * Registers a control poller (for replies waiting on a full ring). Returns
 * NULL and logs on failure.
 */
struct pc_dirq *pc_dirq_create(struct pc_runtime *rt, struct pc_cluster *cluster);

/* Control lcore, after the runtime stopped. Accepts NULL. */
void pc_dirq_destroy(struct pc_dirq *q);

/*
 * Resolve n keys (1..PC_CLUSTER_LOOKUP_MAX, bytes copied) within timeout_ns
 * (0 = the cluster's request_timeout). cb(arg, results, n) runs later on
 * `self` (the calling lcore, whose context this is), never from here.
 * Any lcore of rt. Returns 0, -EINVAL (bad n, a bad key, NULL cb or self),
 * -ENOMEM, or -ENOBUFS (the control lcore's message ring is full: nothing
 * was queued, try again).
 */
int pc_dirq_lookup(struct pc_dirq *q, struct pc_lcore *self, const struct pc_dir_key *keys,
		   unsigned int n, uint64_t timeout_ns, pc_cluster_lookup_fn cb, void *arg);

/* Counters. Any thread (values may be slightly stale). */
void pc_dirq_get_stats(const struct pc_dirq *q, struct pc_dirq_stats *st);

#endif /* PC_DIRQ_H */
