/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Layouts private to lcore/ and its tests.
 */
#ifndef PC_LCORE_INTERNAL_H
#define PC_LCORE_INTERNAL_H

#include <poll.h>
#include <stdatomic.h>

#include <rte_lcore.h>

#include "lcore.h"
#include "pc_common.h"

#define PC_LCORE_MSG_BURST       32   /* messages drained per pass */
#define PC_LCORE_RING_DEFAULT    4096 /* per-lcore message ring slots */
#define PC_LCORE_POLLER_NAME_MAX 32
#define PC_RUNTIME_NAME_MAX      16

/*
 * Adaptive idle policy: microseconds idle before each back-off step. Every
 * event an lcore waits for wakes its sleep (messages, sockets, client
 * doorbells), so it sleeps soon and leaves the core to whoever shares it.
 */
#define PC_IDLE_SPIN_US       10  /* plain spinning */
#define PC_IDLE_PAUSE_US      50  /* then rte_pause() each pass */
#define PC_IDLE_YIELD_US      100 /* then sched_yield() each pass, then sleeps */
#define PC_IDLE_SLEEP_MIN_US  16
#define PC_IDLE_SLEEP_MAX_US  1000 /* bounds the reaction time to what wakes no fd */
#define PC_LCORE_WAIT_FDS_MAX 8    /* the lcore's eventfd and up to 7 registered fds */
#define PC_LCORE_DOZE_HOOKS   4

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
	uint64_t idle_since_tsc;   /* start of the idle stretch (idle_passes > 0) */
	uint64_t idle_step_tsc[3]; /* PC_IDLE_{SPIN,PAUSE,YIELD}_US in TSC ticks */
	uint64_t sleep_us;
	struct {
		pc_doze_fn fn;
		void *arg;
	} doze[PC_LCORE_DOZE_HOOKS];
	unsigned int n_doze;
	bool stay_awake; /* a poller has work in flight that wakes no fd: yield, never sleep */
	/*
	 * An adaptive sleep is a ppoll on these: [0] is the lcore's eventfd
	 * (written by pc_lcore_send and pc_runtime_stop when `sleeping`), the
	 * rest were registered with pc_lcore_wait_fd_add.
	 */
	struct pollfd wait_fds[PC_LCORE_WAIT_FDS_MAX];
	unsigned int n_wait_fds;

	/* pc_lcore_mono_ns: a CLOCK_MONOTONIC reading and the pass TSC it stands for. */
	uint64_t mono_anchor_tsc;
	uint64_t mono_anchor_ns; /* 0: not read yet */
	uint64_t mono_last_ns;   /* the last value returned (never goes back) */
	uint64_t mono_period_tsc;
	uint64_t mono_ns_per_tsc_q32; /* ns per TSC tick, 32.32 fixed point */

	struct pc_lcore_stats stats;
	atomic_bool running; /* entered its loop at least once */

	/* Read by senders after every send: its own line, away from the owner's counters. */
	atomic_bool sleeping PC_CACHE_ALIGNED;
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
