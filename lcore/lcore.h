/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The lcore runtime: one run-to-completion loop per EAL lcore.
 *
 * Every enabled EAL lcore gets one cache-aligned context (struct pc_lcore).
 * The EAL main lcore is the control lcore (the slow path); every other lcore
 * is a worker. A pass of the loop, pc_lcore_poll_once(), drains a small batch
 * of the lcore's message ring, fires the timers that are due, and runs every
 * registered poller once. The thread loop, pc_lcore_run(), is a thin loop
 * around it that accounts busy and idle cycles and applies the idle policy;
 * tests call pc_lcore_poll_once() by hand with a clock they feed themselves.
 *
 * Objects have one owner lcore. Other lcores and threads never touch them;
 * they send the owner a {fn, arg} message with pc_lcore_send(). Functions
 * marked "owner only" may be called by the lcore that owns the context, or
 * by anyone before pc_runtime_launch() (set-up) and after pc_runtime_wait()
 * (tear-down); debug builds assert this.
 */
#ifndef PC_LCORE_H
#define PC_LCORE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

struct pc_runtime;
struct pc_lcore;
struct pc_poller;

/* A poller returns the amount of work it did: 0 when idle, > 0 when busy. */
typedef int (*pc_poller_fn)(void *arg, uint64_t now_tsc);
/* A message handler, run on the destination lcore. */
typedef void (*pc_msg_fn)(void *arg);
struct pc_timer;
/*
 * A doze hook (adaptive policy): called with dozing = true just before the
 * lcore sleeps, after which it must make sure whoever gives it work wakes it
 * (raise a flag its producers read after queuing, then look once more);
 * returning false vetoes the sleep (work came in). Called with dozing =
 * false after the sleep, or after a veto, to lower the flags again.
 */
typedef bool (*pc_doze_fn)(void *arg, bool dozing);
/* A timer callback, run on the lcore the timer was started on. */
typedef void (*pc_timer_fn)(struct pc_timer *timer, void *arg, uint64_t now_tsc);

/*
 * A TSC timer, embedded in its owner's object. Fields are the runtime's;
 * use the pc_timer_* functions.
 */
struct pc_timer {
	uint64_t deadline_tsc;
	uint64_t period_tsc; /* 0 = one-shot */
	pc_timer_fn fn;
	void *arg;
	int heap_index; /* -1 when not armed */
};

struct pc_runtime_opts {
	const char *name;                /* unique prefix (< 16 chars) for its rte objects */
	enum pc_idle_policy idle_policy; /* busy or adaptive */
	unsigned int msg_ring_size;      /* per lcore, a power of two; 0 = default (4096) */
};

struct pc_lcore_stats {
	uint64_t passes;       /* loop passes */
	uint64_t busy_passes;  /* passes that found work */
	uint64_t busy_cycles;  /* TSC cycles spent in passes that found work */
	uint64_t idle_cycles;  /* TSC cycles spent idle, backing off included */
	uint64_t msgs;         /* messages handled */
	uint64_t timers_fired; /* timer callbacks run */
	uint64_t sleeps;       /* adaptive back-off sleeps */
	uint64_t wakeups;      /* sleeps cut short by a message, a stop or a wait fd */
};

/*
 * Create a context for every enabled EAL lcore, each with its message ring.
 * Call on the main lcore after
 * rte_eal_init(). Returns NULL and logs on failure (no memory, a name in
 * use).
 */
struct pc_runtime *pc_runtime_create(const struct pc_runtime_opts *opts);

/*
 * Free everything pc_runtime_create() made. Call after pc_runtime_wait() (or
 * when never launched). Messages still queued are dropped, counted and
 * logged. Accepts NULL.
 */
void pc_runtime_destroy(struct pc_runtime *rt);

/* The control lcore's context (the EAL main lcore). */
struct pc_lcore *pc_runtime_control(struct pc_runtime *rt);

/*
 * Number of lcores that run worker pollers: the worker lcores, or 1 when the
 * runtime has only the main lcore (then the control lcore runs them too).
 */
unsigned int pc_runtime_worker_count(const struct pc_runtime *rt);

/*
 * The i-th lcore that runs worker pollers (i < pc_runtime_worker_count()):
 * a worker lcore, or the control lcore when there is no worker lcore.
 */
struct pc_lcore *pc_runtime_worker(struct pc_runtime *rt, unsigned int i);

/* The context of EAL lcore `lcore_id`, or NULL if it is not enabled. */
struct pc_lcore *pc_runtime_lcore(struct pc_runtime *rt, unsigned int lcore_id);

/*
 * Start pc_lcore_run() on every worker lcore. Main lcore only. Returns 0 or
 * -EBUSY if a worker lcore is already running something.
 */
int pc_runtime_launch(struct pc_runtime *rt);

/*
 * Ask every lcore to leave its loop after its current pass (a sleeping one
 * is woken). Any thread, and async-signal-safe (an atomic store, and a
 * write(2) to the eventfd of each lcore asleep).
 */
void pc_runtime_stop(struct pc_runtime *rt);

/* True once pc_runtime_stop() was called. Any thread. */
bool pc_runtime_stopping(const struct pc_runtime *rt);

/*
 * Wait until every worker lcore has left its loop. Main lcore only. Returns
 * 0, or the first non-zero value a worker loop returned.
 */
int pc_runtime_wait(struct pc_runtime *rt);

/*
 * Ready means every lcore has entered its loop at least once. Any thread.
 */
bool pc_runtime_all_running(const struct pc_runtime *rt);

/* EAL lcore id of a context, and whether it is the control lcore. */
unsigned int pc_lcore_id(const struct pc_lcore *lc);
bool pc_lcore_is_control(const struct pc_lcore *lc);

/*
 * Add a poller to the lcore's pass. Owner only. The name is copied (for
 * stats and logs). Returns the handle, or NULL when out of memory.
 */
struct pc_poller *pc_lcore_poller_register(struct pc_lcore *lc, const char *name, pc_poller_fn fn,
					   void *arg);

/*
 * Remove a poller; it is not called again. Owner only; safe from inside any
 * poller, itself included (the slot is reclaimed after the pass).
 */
void pc_lcore_poller_unregister(struct pc_lcore *lc, struct pc_poller *poller);

/*
 * Under the adaptive policy, end an idle sleep as soon as `fd` is readable
 * (an epoll set of sockets, an eventfd): I/O in flight is then picked up at
 * once instead of after the back-off interval. Whatever makes the fd readable
 * must be consumed by a poller of this lcore, or the lcore never sleeps.
 * Owner only. Returns 0, -EINVAL (fd < 0) or -ENOSPC (PC_LCORE_WAIT_FDS_MAX).
 */
int pc_lcore_wait_fd_add(struct pc_lcore *lc, int fd);

/* Forget a wait fd (before it is closed). Owner only; unknown fds are ignored. */
void pc_lcore_wait_fd_del(struct pc_lcore *lc, int fd);

/*
 * Register a doze hook (pc_doze_fn). Owner only. Returns 0 or -ENOSPC
 * (PC_LCORE_DOZE_HOOKS).
 */
int pc_lcore_doze_hook_add(struct pc_lcore *lc, pc_doze_fn fn, void *arg);

/*
 * The lcore's own eventfd: a write(2) of a non-zero 8-byte count wakes its
 * sleep. Handed to other processes as a doorbell (clients ring it after
 * queuing work when a doze hook said the lcore may be asleep).
 */
int pc_lcore_wake_fd(const struct pc_lcore *lc);

/*
 * Called by a poller during a pass: it has work in flight that no wait fd
 * signals (rdma READs on a polled CQ), so if the lcore backs off after this
 * pass it yields the core but does not sleep. Owner only; for one pass.
 */
void pc_lcore_stay_awake(struct pc_lcore *lc);

/*
 * Send {fn, arg} to run on lcore `dst`. Any thread (EAL lcore or not).
 * Messages from one sender arrive in the order sent, each exactly once; a
 * destination asleep under the adaptive policy is woken (its eventfd).
 * Returns 0, or -ENOBUFS when the destination ring is full (nothing was
 * queued; the caller keeps ownership of arg and may retry).
 */
int pc_lcore_send(struct pc_lcore *dst, pc_msg_fn fn, void *arg);

/* Prepare a timer; it is not armed. */
void pc_timer_init(struct pc_timer *timer, pc_timer_fn fn, void *arg);

/*
 * Arm (or re-arm) a timer on `lc` to fire when the loop's clock reaches
 * deadline_tsc, then every period_tsc (0 = once). Periods missed by a late
 * loop are skipped, not replayed. Owner only. Returns 0 or -ENOMEM.
 */
int pc_timer_start(struct pc_lcore *lc, struct pc_timer *timer, uint64_t deadline_tsc,
		   uint64_t period_tsc);

/* Disarm a timer; harmless if it is not armed. Owner only. */
void pc_timer_stop(struct pc_lcore *lc, struct pc_timer *timer);

/* Whether a timer is armed. */
bool pc_timer_armed(const struct pc_timer *timer);

/*
 * One pass: up to a batch of messages, the timers due at now_tsc, every
 * poller once. Owner only. Returns the amount of work done (0 = idle).
 */
int pc_lcore_poll_once(struct pc_lcore *lc, uint64_t now_tsc);

/*
 * The lcore's thread loop: pc_lcore_poll_once() with the TSC until
 * pc_runtime_stop(), accounting busy/idle cycles, backing off when idle
 * under the adaptive policy: spin, pause, yield (PC_IDLE_*_US), then sleep
 * in ppoll on its wait fds, never longer than the next timer or 1 ms; a
 * message, a stop, a readable wait fd or a doorbell ends the sleep at once.
 * Owner only. Returns 0. Its signature fits rte_eal_remote_launch().
 */
int pc_lcore_run(void *lcore);

/* A snapshot of the lcore's counters. Any thread (values may be torn). */
void pc_lcore_get_stats(const struct pc_lcore *lc, struct pc_lcore_stats *stats);

/*
 * CLOCK_MONOTONIC in ns at now_tsc (the TSC of this pass, as pollers get
 * it) without a system call per pass: clock_gettime is read at most every
 * PC_LCORE_MONO_PERIOD_US and the TSC extrapolates from there. It never
 * goes backwards, and it is off from the clock by the drift between the two
 * over one period plus the time between now_tsc and the reading (NTP slews
 * CLOCK_MONOTONIC by 500 ppm at most: well under a microsecond). For the
 * deadlines clients write (CLOCK_MONOTONIC) and transport timeouts. Owner
 * only.
 */
#define PC_LCORE_MONO_PERIOD_US 1000
uint64_t pc_lcore_mono_ns(struct pc_lcore *lc, uint64_t now_tsc);

/* TSC helpers: ticks per second, and a duration in microseconds as ticks. */
uint64_t pc_tsc_hz(void);
uint64_t pc_us_to_tsc(uint64_t us);

#endif /* PC_LCORE_H */
