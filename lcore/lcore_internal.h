/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Layouts private to lcore/ and its tests.
 */
#ifndef PC_LCORE_INTERNAL_H
#define PC_LCORE_INTERNAL_H

#include <stdatomic.h>

#include <rte_lcore.h>

#include "lcore.h"
#include "pc_common.h"

#define PC_LCORE_MSG_BURST       32   /* messages drained per pass */
#define PC_LCORE_RING_DEFAULT    4096 /* per-lcore message ring slots */
#define PC_LCORE_POLLER_NAME_MAX 32
#define PC_RUNTIME_NAME_MAX      16

/* Adaptive idle policy: idle passes before each back-off step. */
#define PC_IDLE_SPIN_PASSES  256  /* plain spinning */
#define PC_IDLE_PAUSE_PASSES 1024 /* then rte_pause() each pass */
#define PC_IDLE_YIELD_PASSES 2048 /* then sched_yield() each pass, then sleeps */
#define PC_IDLE_SLEEP_MIN_US 16
#define PC_IDLE_SLEEP_MAX_US 1000 /* bounds the reaction time to a message or a stop */

/* One message, stored by value in a ring slot. */
struct pc_msg {
	pc_msg_fn fn;
	void *arg;
};

struct pc_poller {
	pc_poller_fn fn;
	void *arg;
	bool removed;
	char name[PC_LCORE_POLLER_NAME_MAX];
};

struct pc_lcore {
	/* Hot: read every pass by the owner. */
	struct pc_runtime *rt;
	struct rte_ring *msg_ring;
	struct pc_poller **pollers;
	unsigned int n_pollers;
	unsigned int cap_pollers;
	bool pollers_dirty; /* some poller was unregistered during a pass */
	bool in_pass;
	unsigned int lcore_id;
	bool is_control;

	struct pc_timer **heap; /* min-heap on deadline_tsc */
	unsigned int n_timers;
	unsigned int cap_timers;

	/* Idle policy state. */
	uint64_t idle_passes;
	uint64_t sleep_us;

	struct pc_lcore_stats stats;
	atomic_bool running; /* entered its loop at least once */
} PC_CACHE_ALIGNED;

struct pc_runtime {
	atomic_bool stop;
	bool launched;
	enum pc_idle_policy idle_policy;
	unsigned int control_id;
	unsigned int n_workers;
	struct pc_lcore *by_id[RTE_MAX_LCORE];   /* NULL when not enabled */
	struct pc_lcore *workers[RTE_MAX_LCORE]; /* the worker lcores, in id order */
	char name[PC_RUNTIME_NAME_MAX];          /* short: it prefixes the ring names */
};

#endif /* PC_LCORE_INTERNAL_H */
