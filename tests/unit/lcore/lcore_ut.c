/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lcore/lcore.c: message delivery (order, exactly once, across lcores and
 * from non-EAL threads), TSC timers against a hand-fed clock, pollers, idle
 * accounting, prompt stop, and the one-lcore layout.
 */
#define PC_UT_WITH_EAL
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rte_launch.h>
#include <rte_lcore.h>

#include "../../../lcore/lcore.c"
#include "ut.h"

#define UT_NAME "lcore_ut"

/* ---- helpers ---- */

static struct pc_runtime *
runtime_new(const char *name, enum pc_idle_policy policy)
{
	struct pc_runtime_opts opts = {.name = name, .idle_policy = policy};
	struct pc_runtime *rt = pc_runtime_create(&opts);

	CU_ASSERT_PTR_NOT_NULL_FATAL(rt);
	return rt;
}

/* Wait (liveness bound, not a speed check) until *flag is true; false on timeout. */
static bool
wait_until(atomic_bool *flag, unsigned int seconds)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000};
	uint64_t deadline = rte_rdtsc() + seconds * rte_get_tsc_hz();

	while (!atomic_load(flag)) {
		if (rte_rdtsc() > deadline) {
			return false;
		}
		nanosleep(&ts, NULL);
	}
	return true;
}

/* Wait for worker lcores to return; false if one is still running at the bound. */
static bool
workers_stopped_within(struct pc_runtime *rt, unsigned int seconds)
{
	uint64_t deadline = rte_rdtsc() + seconds * rte_get_tsc_hz();

	for (unsigned int i = 0; i < rt->n_workers; i++) {
		while (rte_eal_get_lcore_state(rt->workers[i]->lcore_id) == RUNNING) {
			if (rte_rdtsc() > deadline) {
				return false;
			}
			rte_pause();
		}
	}
	return pc_runtime_wait(rt) == 0;
}

/* ---- messages, hand-stepped ---- */

struct seq_log {
	unsigned int n;
	unsigned int seen[256];
};

static struct seq_log g_log;

static void
record_msg(void *arg)
{
	g_log.seen[g_log.n++] = (unsigned int)(uintptr_t)arg;
}

static void
test_msgs_in_order_batched(void)
{
	struct pc_runtime *rt = runtime_new("ut_m1", PC_IDLE_BUSY);
	struct pc_lcore *lc = pc_runtime_control(rt);
	int work;

	memset(&g_log, 0, sizeof(g_log));
	for (unsigned int i = 0; i < 100; i++) {
		CU_ASSERT_EQUAL_FATAL(pc_lcore_send(lc, record_msg, (void *)(uintptr_t)i), 0);
	}
	/* One pass drains at most a burst: the rest waits for later passes. */
	work = pc_lcore_poll_once(lc, 0);
	CU_ASSERT_EQUAL(work, PC_LCORE_MSG_BURST);
	CU_ASSERT_EQUAL(g_log.n, PC_LCORE_MSG_BURST);
	while (pc_lcore_poll_once(lc, 0) > 0) {
	}
	CU_ASSERT_EQUAL(g_log.n, 100);
	for (unsigned int i = 0; i < g_log.n; i++) {
		CU_ASSERT_EQUAL(g_log.seen[i], i);
	}
	CU_ASSERT_EQUAL(lc->stats.msgs, 100);
	CU_ASSERT_EQUAL(pc_lcore_poll_once(lc, 0), 0);
	pc_runtime_destroy(rt);
}

static void
noop_msg(void *arg)
{
	(void)arg;
}

static void
test_msgs_ring_full(void)
{
	struct pc_runtime_opts opts = {.name = "ut_m2", .msg_ring_size = 64};
	struct pc_runtime *rt = pc_runtime_create(&opts);
	struct pc_lcore *lc;
	unsigned int sent = 0;
	int rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(rt);
	lc = pc_runtime_control(rt);
	while ((rc = pc_lcore_send(lc, noop_msg, NULL)) == 0) {
		sent++;
	}
	/* An rte_ring of 64 slots holds 63; the 64th send is refused, nothing lost. */
	CU_ASSERT_EQUAL(rc, -ENOBUFS);
	CU_ASSERT_EQUAL(sent, 63);
	while (pc_lcore_poll_once(lc, 0) > 0) {
	}
	CU_ASSERT_EQUAL(lc->stats.msgs, 63);
	CU_ASSERT_EQUAL(pc_lcore_send(lc, noop_msg, NULL), 0);
	pc_runtime_destroy(rt);
}

/* ---- messages across lcores ---- */

#define XL_SENDERS    3
#define XL_PER_SENDER 100000

struct xl_state {
	/* Owned by the worker lcore (only its handler writes them). */
	uint32_t next[XL_SENDERS];
	uint64_t received;
	uint64_t out_of_order;
	atomic_bool all_received;
	/* Written by the senders. */
	uint64_t retries[XL_SENDERS];
};

static struct xl_state g_xl;

/* The message encodes (sender, sequence) in its arg. */
static void
xl_handle(void *arg)
{
	uintptr_t v = (uintptr_t)arg;
	unsigned int sender = (unsigned int)(v >> 32);
	uint32_t seq = (uint32_t)v;

	if (sender >= XL_SENDERS || seq != g_xl.next[sender]) {
		g_xl.out_of_order++;
	} else {
		g_xl.next[sender]++;
	}
	if (++g_xl.received == (uint64_t)XL_SENDERS * XL_PER_SENDER) {
		atomic_store(&g_xl.all_received, true);
	}
}

struct xl_sender {
	struct pc_lcore *dst;
	unsigned int id;
};

static void *
xl_send_all(void *arg)
{
	struct xl_sender *s = arg;

	for (uint32_t seq = 0; seq < XL_PER_SENDER; seq++) {
		void *msg = (void *)(((uintptr_t)s->id << 32) | seq);

		while (pc_lcore_send(s->dst, xl_handle, msg) != 0) {
			/* Ring full: give the (possibly core-sharing) worker the CPU. */
			g_xl.retries[s->id]++;
			sched_yield();
		}
	}
	return NULL;
}

static void
test_msgs_across_lcores(void)
{
	struct pc_runtime *rt = runtime_new("ut_x1", PC_IDLE_ADAPTIVE);
	struct pc_lcore *worker = pc_runtime_worker(rt, 0);
	struct xl_sender senders[XL_SENDERS];
	pthread_t threads[XL_SENDERS - 1];

	CU_ASSERT_FATAL(!pc_lcore_is_control(worker));
	memset(&g_xl, 0, sizeof(g_xl));
	CU_ASSERT_EQUAL_FATAL(pc_runtime_launch(rt), 0);
	/* Two non-EAL threads and the main lcore send at the same time. */
	for (unsigned int i = 0; i < XL_SENDERS; i++) {
		senders[i] = (struct xl_sender){.dst = worker, .id = i};
	}
	for (unsigned int i = 1; i < XL_SENDERS; i++) {
		CU_ASSERT_EQUAL_FATAL(
			pthread_create(&threads[i - 1], NULL, xl_send_all, &senders[i]), 0);
	}
	xl_send_all(&senders[0]);
	for (unsigned int i = 1; i < XL_SENDERS; i++) {
		pthread_join(threads[i - 1], NULL);
	}
	CU_ASSERT(wait_until(&g_xl.all_received, 60));
	pc_runtime_stop(rt);
	CU_ASSERT(workers_stopped_within(rt, 10));
	CU_ASSERT_EQUAL(g_xl.received, (uint64_t)XL_SENDERS * XL_PER_SENDER);
	CU_ASSERT_EQUAL(g_xl.out_of_order, 0);
	for (unsigned int i = 0; i < XL_SENDERS; i++) {
		CU_ASSERT_EQUAL(g_xl.next[i], XL_PER_SENDER);
	}
	CU_ASSERT_EQUAL(worker->stats.msgs, (uint64_t)XL_SENDERS * XL_PER_SENDER);
	pc_runtime_destroy(rt);
}

/* Worker → control replies: the control lcore is stepped by hand on the main thread. */
static atomic_uint g_pongs;
static struct pc_lcore *g_control;

static void
pong(void *arg)
{
	(void)arg;
	atomic_fetch_add(&g_pongs, 1);
}

static void
ping(void *arg)
{
	while (pc_lcore_send(g_control, pong, arg) != 0) {
		rte_pause();
	}
}

static void
test_msgs_round_trip(void)
{
	struct pc_runtime *rt = runtime_new("ut_x2", PC_IDLE_ADAPTIVE);
	struct pc_lcore *worker = pc_runtime_worker(rt, 0);
	uint64_t deadline;

	g_control = pc_runtime_control(rt);
	atomic_store(&g_pongs, 0);
	CU_ASSERT_EQUAL_FATAL(pc_runtime_launch(rt), 0);
	for (unsigned int i = 0; i < 1000; i++) {
		while (pc_lcore_send(worker, ping, NULL) != 0) {
			pc_lcore_poll_once(g_control, rte_rdtsc());
		}
	}
	deadline = rte_rdtsc() + 30 * rte_get_tsc_hz();
	while (atomic_load(&g_pongs) < 1000 && rte_rdtsc() < deadline) {
		pc_lcore_poll_once(g_control, rte_rdtsc());
	}
	CU_ASSERT_EQUAL(atomic_load(&g_pongs), 1000);
	pc_runtime_stop(rt);
	CU_ASSERT(workers_stopped_within(rt, 10));
	pc_runtime_destroy(rt);
}

/* ---- timers with a hand-fed clock ---- */

struct fire_log {
	unsigned int n;
	uint64_t at[64];
	int who[64];
};

static struct fire_log g_fires;

static void
on_fire(struct pc_timer *t, void *arg, uint64_t now)
{
	(void)t;
	g_fires.at[g_fires.n] = now;
	g_fires.who[g_fires.n] = (int)(intptr_t)arg;
	g_fires.n++;
}

static void
test_timer_one_shot(void)
{
	struct pc_runtime *rt = runtime_new("ut_t1", PC_IDLE_BUSY);
	struct pc_lcore *lc = pc_runtime_control(rt);
	struct pc_timer t;

	memset(&g_fires, 0, sizeof(g_fires));
	pc_timer_init(&t, on_fire, (void *)1);
	CU_ASSERT_FALSE(pc_timer_armed(&t));
	CU_ASSERT_EQUAL(pc_timer_start(lc, &t, 1000, 0), 0);
	CU_ASSERT_TRUE(pc_timer_armed(&t));
	CU_ASSERT_EQUAL(pc_lcore_poll_once(lc, 999), 0);
	CU_ASSERT_EQUAL(g_fires.n, 0);
	CU_ASSERT_EQUAL(pc_lcore_poll_once(lc, 1000), 1);
	CU_ASSERT_EQUAL(g_fires.n, 1);
	CU_ASSERT_EQUAL(g_fires.at[0], 1000);
	CU_ASSERT_FALSE(pc_timer_armed(&t));
	pc_lcore_poll_once(lc, 5000);
	CU_ASSERT_EQUAL(g_fires.n, 1);
	pc_runtime_destroy(rt);
}

static void
test_timer_periodic_and_skips(void)
{
	struct pc_runtime *rt = runtime_new("ut_t2", PC_IDLE_BUSY);
	struct pc_lcore *lc = pc_runtime_control(rt);
	struct pc_timer t;

	memset(&g_fires, 0, sizeof(g_fires));
	pc_timer_init(&t, on_fire, (void *)2);
	CU_ASSERT_EQUAL(pc_timer_start(lc, &t, 100, 50), 0);
	pc_lcore_poll_once(lc, 99);
	pc_lcore_poll_once(lc, 100);
	pc_lcore_poll_once(lc, 149);
	pc_lcore_poll_once(lc, 150);
	CU_ASSERT_EQUAL(g_fires.n, 2);
	CU_ASSERT_EQUAL(t.deadline_tsc, 200);
	/* A loop late by several periods fires once and lands on the next period. */
	pc_lcore_poll_once(lc, 420);
	CU_ASSERT_EQUAL(g_fires.n, 3);
	CU_ASSERT_EQUAL(t.deadline_tsc, 450);
	pc_lcore_poll_once(lc, 449);
	CU_ASSERT_EQUAL(g_fires.n, 3);
	pc_timer_stop(lc, &t);
	CU_ASSERT_FALSE(pc_timer_armed(&t));
	pc_lcore_poll_once(lc, 10000);
	CU_ASSERT_EQUAL(g_fires.n, 3);
	pc_runtime_destroy(rt);
}

static void
test_timer_order_and_restart(void)
{
	struct pc_runtime *rt = runtime_new("ut_t3", PC_IDLE_BUSY);
	struct pc_lcore *lc = pc_runtime_control(rt);
	struct pc_timer t[20];
	/* Deadlines in scrambled order; some equal. */
	const uint64_t deadlines[20] = {70, 10, 50, 30, 90, 20, 80, 60, 40, 100,
					15, 15, 95, 5,  55, 35, 75, 25, 65, 45};

	memset(&g_fires, 0, sizeof(g_fires));
	for (int i = 0; i < 20; i++) {
		pc_timer_init(&t[i], on_fire, (void *)(intptr_t)i);
		CU_ASSERT_EQUAL(pc_timer_start(lc, &t[i], deadlines[i], 0), 0);
	}
	/* Re-arming moves a timer: 9 (100) now fires first, 4 (90) is stopped. */
	CU_ASSERT_EQUAL(pc_timer_start(lc, &t[9], 1, 0), 0);
	pc_timer_stop(lc, &t[4]);
	CU_ASSERT_EQUAL(lc->n_timers, 19);
	pc_lcore_poll_once(lc, 1000);
	CU_ASSERT_EQUAL_FATAL(g_fires.n, 19);
	CU_ASSERT_EQUAL(g_fires.who[0], 9);
	for (unsigned int i = 1; i < g_fires.n; i++) {
		CU_ASSERT(deadlines[g_fires.who[i - 1]] <= deadlines[g_fires.who[i]] ||
			  g_fires.who[i - 1] == 9);
		CU_ASSERT_NOT_EQUAL(g_fires.who[i], 4);
	}
	CU_ASSERT_EQUAL(lc->n_timers, 0);
	pc_runtime_destroy(rt);
}

/* A callback that stops its own periodic timer and arms another. */
static struct pc_timer g_t_self, g_t_other;
static struct pc_lcore *g_t_lc;

static void
self_stopping(struct pc_timer *t, void *arg, uint64_t now)
{
	on_fire(t, arg, now);
	pc_timer_stop(g_t_lc, t);
	pc_timer_start(g_t_lc, &g_t_other, now + 10, 0);
}

static void
test_timer_callback_rearms(void)
{
	struct pc_runtime *rt = runtime_new("ut_t4", PC_IDLE_BUSY);

	g_t_lc = pc_runtime_control(rt);
	memset(&g_fires, 0, sizeof(g_fires));
	pc_timer_init(&g_t_self, self_stopping, (void *)1);
	pc_timer_init(&g_t_other, on_fire, (void *)2);
	CU_ASSERT_EQUAL(pc_timer_start(g_t_lc, &g_t_self, 100, 10), 0);
	pc_lcore_poll_once(g_t_lc, 100);
	CU_ASSERT_EQUAL(g_fires.n, 1);
	CU_ASSERT_FALSE(pc_timer_armed(&g_t_self));
	CU_ASSERT_TRUE(pc_timer_armed(&g_t_other));
	pc_lcore_poll_once(g_t_lc, 109);
	CU_ASSERT_EQUAL(g_fires.n, 1);
	pc_lcore_poll_once(g_t_lc, 110);
	CU_ASSERT_EQUAL(g_fires.n, 2);
	CU_ASSERT_EQUAL(g_fires.who[1], 2);
	CU_ASSERT_EQUAL(g_fires.at[1], 110);
	pc_runtime_destroy(rt);
}

/* ---- pollers ---- */

struct counting_poller {
	unsigned int calls;
	int work;
	struct pc_poller *handle;
	struct pc_poller *victim; /* unregistered on the first call, if set */
	bool unregister_self;
	struct pc_lcore *lc;
};

static int
counting_poll(void *arg, uint64_t now)
{
	struct counting_poller *p = arg;

	(void)now;
	p->calls++;
	if (p->victim != NULL) {
		pc_lcore_poller_unregister(p->lc, p->victim);
		p->victim = NULL;
	}
	if (p->unregister_self) {
		pc_lcore_poller_unregister(p->lc, p->handle);
	}
	return p->work;
}

static void
test_pollers(void)
{
	struct pc_runtime *rt = runtime_new("ut_p1", PC_IDLE_BUSY);
	struct pc_lcore *lc = pc_runtime_control(rt);
	struct counting_poller a = {.work = 0, .lc = lc};
	struct counting_poller b = {.work = 3, .lc = lc};
	struct counting_poller c = {.work = -1, .lc = lc}; /* negative counts as no work */
	struct counting_poller d = {.work = 1, .lc = lc, .unregister_self = true};

	a.handle = pc_lcore_poller_register(lc, "a", counting_poll, &a);
	b.handle = pc_lcore_poller_register(lc, "b", counting_poll, &b);
	c.handle = pc_lcore_poller_register(lc, "c", counting_poll, &c);
	d.handle = pc_lcore_poller_register(lc, "d", counting_poll, &d);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d.handle);
	CU_ASSERT_EQUAL(pc_lcore_poll_once(lc, 0), 4); /* b: 3, d: 1 */
	CU_ASSERT_EQUAL(lc->n_pollers, 3);             /* d removed itself */
	/* a removes c during the pass; c, later in the array, is not called. */
	a.victim = c.handle;
	CU_ASSERT_EQUAL(pc_lcore_poll_once(lc, 0), 3);
	CU_ASSERT_EQUAL(a.calls, 2);
	CU_ASSERT_EQUAL(b.calls, 2);
	CU_ASSERT_EQUAL(c.calls, 1);
	CU_ASSERT_EQUAL(d.calls, 1);
	CU_ASSERT_EQUAL(lc->n_pollers, 2);
	pc_lcore_poller_unregister(lc, b.handle);
	CU_ASSERT_EQUAL(pc_lcore_poll_once(lc, 0), 0);
	CU_ASSERT_EQUAL(b.calls, 2);
	pc_runtime_destroy(rt);
}

/* ---- the thread loop: accounting, idle policy, stop ---- */

static atomic_bool g_busy_seen;

static int
busy_for_a_while(void *arg, uint64_t now)
{
	unsigned int *left = arg;

	(void)now;
	if (*left == 0) {
		return 0;
	}
	if (--*left == 0) {
		atomic_store(&g_busy_seen, true);
	}
	return 1;
}

static void
run_loop_case(enum pc_idle_policy policy, const char *name)
{
	struct pc_runtime *rt = runtime_new(name, policy);
	struct pc_lcore *worker = pc_runtime_worker(rt, 0);
	unsigned int left = 5000;
	struct pc_lcore_stats st;
	uint64_t deadline;

	atomic_store(&g_busy_seen, false);
	CU_ASSERT_PTR_NOT_NULL_FATAL(
		pc_lcore_poller_register(worker, "busy", busy_for_a_while, &left));
	CU_ASSERT_FALSE(pc_runtime_all_running(rt));
	CU_ASSERT_EQUAL_FATAL(pc_runtime_launch(rt), 0);
	CU_ASSERT(wait_until(&g_busy_seen, 30));
	/* Let the worker go idle long enough to reach its back-off. */
	deadline = rte_rdtsc() + 30 * rte_get_tsc_hz();
	do {
		pc_lcore_get_stats(worker, &st);
	} while (st.passes < 5000 + 1000 && rte_rdtsc() < deadline);
	if (policy == PC_IDLE_ADAPTIVE) {
		do {
			pc_lcore_get_stats(worker, &st);
		} while (st.sleeps == 0 && rte_rdtsc() < deadline);
	}
	/* The control lcore has not entered its loop: not all running yet. */
	CU_ASSERT_FALSE(pc_runtime_all_running(rt));
	pc_runtime_stop(rt);
	CU_ASSERT_TRUE(pc_runtime_stopping(rt));
	CU_ASSERT(workers_stopped_within(rt, 10));
	pc_lcore_get_stats(worker, &st);
	CU_ASSERT_EQUAL(st.busy_passes, 5000);
	CU_ASSERT(st.busy_cycles > 0);
	CU_ASSERT(st.idle_cycles > 0);
	CU_ASSERT(st.passes > st.busy_passes);
	if (policy == PC_IDLE_ADAPTIVE) {
		CU_ASSERT(st.sleeps > 0);
	} else {
		CU_ASSERT_EQUAL(st.sleeps, 0);
	}
	pc_runtime_destroy(rt);
}

static void
test_loop_adaptive(void)
{
	run_loop_case(PC_IDLE_ADAPTIVE, "ut_l1");
}

static void
test_loop_busy(void)
{
	run_loop_case(PC_IDLE_BUSY, "ut_l2");
}

/* ---- sleeping and waking (adaptive policy), hand-stepped ---- */

struct doze_rec {
	unsigned int up, down; /* calls with dozing true / false */
	bool veto;
};

static bool
doze_hook(void *arg, bool dozing)
{
	struct doze_rec *d = arg;

	if (dozing) {
		d->up++;
		return !d->veto;
	}
	d->down++;
	return true;
}

/* The eventfd's count, drained; 0 when nothing was written. */
static uint64_t
evfd_take(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v)) {
		return 0;
	}
	return v;
}

static void
nop_msg(void *arg)
{
	(void)arg;
}

static void
test_sleep_wakes(void)
{
	struct pc_runtime *rt = runtime_new("ut_w1", PC_IDLE_ADAPTIVE);
	struct pc_lcore *lc = pc_runtime_worker(rt, 0);
	struct doze_rec d = {0};
	int fds[2];
	uint64_t one = 1;

	CU_ASSERT_EQUAL_FATAL(pc_lcore_doze_hook_add(lc, doze_hook, &d), 0);
	/* A doorbell rung before the sleep: it returns at once, woken, count drained. */
	CU_ASSERT_EQUAL(write(pc_lcore_wake_fd(lc), &one, sizeof(one)), (ssize_t)sizeof(one));
	CU_ASSERT_TRUE(lcore_sleep(lc, 10 * 1000 * 1000));
	CU_ASSERT_EQUAL(lc->stats.sleeps, 1);
	CU_ASSERT_EQUAL(lc->stats.wakeups, 1);
	CU_ASSERT_EQUAL(evfd_take(pc_lcore_wake_fd(lc)), 0);
	CU_ASSERT_EQUAL(d.up, 1);
	CU_ASSERT_EQUAL(d.down, 1);
	CU_ASSERT_FALSE(atomic_load(&lc->sleeping));
	/* Nothing pending: the timeout ends it, not woken. */
	CU_ASSERT_FALSE(lcore_sleep(lc, 50));
	CU_ASSERT_EQUAL(lc->stats.sleeps, 2);
	CU_ASSERT_EQUAL(lc->stats.wakeups, 1);
	/* A registered fd that is readable wakes it; once removed, it does not. */
	CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
	CU_ASSERT_EQUAL(pc_lcore_wait_fd_add(lc, fds[0]), 0);
	CU_ASSERT_EQUAL(pc_lcore_wait_fd_add(lc, -1), -EINVAL);
	CU_ASSERT_EQUAL(write(fds[1], "x", 1), 1);
	CU_ASSERT_TRUE(lcore_sleep(lc, 10 * 1000 * 1000));
	CU_ASSERT_EQUAL(lc->stats.wakeups, 2);
	pc_lcore_wait_fd_del(lc, fds[0]);
	CU_ASSERT_EQUAL(lc->n_wait_fds, 1);
	CU_ASSERT_FALSE(lcore_sleep(lc, 50));
	/* A queued message: no sleep at all, the hooks lowered again. */
	CU_ASSERT_EQUAL(pc_lcore_send(lc, nop_msg, NULL), 0);
	CU_ASSERT_TRUE(lcore_sleep(lc, 10 * 1000 * 1000));
	CU_ASSERT_EQUAL(lc->stats.sleeps, 4);
	CU_ASSERT_EQUAL(msgs_run(lc), 1);
	/* A hook's veto: no sleep, every hook lowered. */
	d.veto = true;
	CU_ASSERT_TRUE(lcore_sleep(lc, 10 * 1000 * 1000));
	CU_ASSERT_EQUAL(lc->stats.sleeps, 4);
	CU_ASSERT_EQUAL(d.up, d.down);
	/* Room for the eventfd and PC_LCORE_WAIT_FDS_MAX - 1 others. */
	for (unsigned int i = 1; i < PC_LCORE_WAIT_FDS_MAX; i++) {
		CU_ASSERT_EQUAL(pc_lcore_wait_fd_add(lc, fds[0]), 0);
	}
	CU_ASSERT_EQUAL(pc_lcore_wait_fd_add(lc, fds[0]), -ENOSPC);
	close(fds[0]);
	close(fds[1]);
	pc_runtime_destroy(rt);
}

static void
test_send_and_stop_kick_sleepers(void)
{
	struct pc_runtime *rt = runtime_new("ut_w2", PC_IDLE_ADAPTIVE);
	struct pc_lcore *lc = pc_runtime_worker(rt, 0);
	struct pc_lcore *control = pc_runtime_control(rt);
	int efd = pc_lcore_wake_fd(lc);

	/* Awake: a send rings nothing. */
	CU_ASSERT_EQUAL(pc_lcore_send(lc, nop_msg, NULL), 0);
	CU_ASSERT_EQUAL(evfd_take(efd), 0);
	/* Asleep: the send writes its eventfd. */
	atomic_store(&lc->sleeping, true);
	CU_ASSERT_EQUAL(pc_lcore_send(lc, nop_msg, NULL), 0);
	CU_ASSERT_EQUAL(evfd_take(efd), 1);
	/* A stop rings every lcore asleep, and only those. */
	pc_runtime_stop(rt);
	CU_ASSERT_EQUAL(evfd_take(efd), 1);
	CU_ASSERT_EQUAL(evfd_take(pc_lcore_wake_fd(control)), 0);
	atomic_store(&lc->sleeping, false);
	CU_ASSERT_EQUAL(msgs_run(lc), 2);
	pc_runtime_destroy(rt);
}

static int
awake_poller(void *arg, uint64_t now)
{
	(void)now;
	pc_lcore_stay_awake(arg);
	return 0;
}

static void
test_backoff_steps(void)
{
	struct pc_runtime *rt = runtime_new("ut_w3", PC_IDLE_ADAPTIVE);
	struct pc_lcore *lc = pc_runtime_worker(rt, 0);
	uint64_t now = rte_rdtsc();
	uint64_t yield = lc->idle_step_tsc[2];

	/* Inside the spin and pause steps: no sleep. */
	idle_backoff(lc, now);
	CU_ASSERT_EQUAL(lc->idle_since_tsc, now);
	idle_backoff(lc, now + lc->idle_step_tsc[0]);
	CU_ASSERT_EQUAL(lc->stats.sleeps, 0);
	/* Past the yield step: a sleep of the shortest interval, then twice that. */
	idle_backoff(lc, now + yield + 1);
	CU_ASSERT_EQUAL(lc->stats.sleeps, 1);
	CU_ASSERT_EQUAL(lc->sleep_us, 2 * PC_IDLE_SLEEP_MIN_US);
	/* A poller with work in flight that wakes no fd: yield, never sleep. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(pc_lcore_poller_register(lc, "awake", awake_poller, lc));
	CU_ASSERT_EQUAL(pc_lcore_poll_once(lc, now + yield + 2), 0);
	idle_backoff(lc, now + yield + 2);
	CU_ASSERT_EQUAL(lc->stats.sleeps, 1);
	/* It lasts one pass. */
	idle_backoff(lc, now + yield + 3);
	CU_ASSERT_EQUAL(lc->stats.sleeps, 2);
	/* Woken: the next sleep starts short again. */
	CU_ASSERT_EQUAL(pc_lcore_send(lc, nop_msg, NULL), 0);
	idle_backoff(lc, now + yield + 4);
	CU_ASSERT_EQUAL(lc->sleep_us, 0);
	CU_ASSERT_EQUAL(msgs_run(lc), 1);
	pc_runtime_destroy(rt);
}

/* A launched worker asleep: a message wakes it through its eventfd (counted). */
static atomic_uint g_woken_msgs;

static void
count_msg(void *arg)
{
	(void)arg;
	atomic_fetch_add(&g_woken_msgs, 1);
}

static void
test_sleeping_worker_woken(void)
{
	struct pc_runtime *rt = runtime_new("ut_w4", PC_IDLE_ADAPTIVE);
	struct pc_lcore *w = pc_runtime_worker(rt, 0);
	struct timespec settle = {.tv_sec = 0, .tv_nsec = 200 * 1000};
	uint64_t deadline = rte_rdtsc() + 30 * rte_get_tsc_hz();
	struct pc_lcore_stats st;
	unsigned int sent = 0;

	atomic_store(&g_woken_msgs, 0);
	CU_ASSERT_EQUAL_FATAL(pc_runtime_launch(rt), 0);
	/*
	 * Each round: wait until it has raised its sleeping flag, give it time
	 * to enter ppoll, then send. A send that lands in the sleep is counted
	 * as a wakeup; one that lands before is seen by its last look at the
	 * ring (not counted). Every message is handled either way.
	 */
	do {
		while (!atomic_load(&w->sleeping) && rte_rdtsc() < deadline) {
			rte_pause();
		}
		nanosleep(&settle, NULL);
		CU_ASSERT_EQUAL(pc_lcore_send(w, count_msg, NULL), 0);
		sent++;
		while (atomic_load(&g_woken_msgs) < sent && rte_rdtsc() < deadline) {
			rte_pause();
		}
		pc_lcore_get_stats(w, &st);
	} while ((st.wakeups == 0 || sent < 20) && rte_rdtsc() < deadline);
	pc_runtime_stop(rt);
	CU_ASSERT(workers_stopped_within(rt, 10));
	pc_lcore_get_stats(w, &st);
	CU_ASSERT(st.wakeups > 0);
	CU_ASSERT_EQUAL(atomic_load(&g_woken_msgs), sent);
	pc_runtime_destroy(rt);
}

/* The control loop on the main lcore leaves on stop, too (sent as a message). */
static void
stop_from_msg(void *arg)
{
	pc_runtime_stop(arg);
}

static void
test_control_loop_stops(void)
{
	struct pc_runtime *rt = runtime_new("ut_l3", PC_IDLE_ADAPTIVE);
	struct pc_lcore *control = pc_runtime_control(rt);

	CU_ASSERT_EQUAL_FATAL(pc_runtime_launch(rt), 0);
	CU_ASSERT_EQUAL(pc_lcore_send(control, stop_from_msg, rt), 0);
	CU_ASSERT_EQUAL(pc_lcore_run(control), 0);
	CU_ASSERT_TRUE(atomic_load(&control->running));
	CU_ASSERT(workers_stopped_within(rt, 10));
	CU_ASSERT_TRUE(pc_runtime_all_running(rt));
	CU_ASSERT_EQUAL(control->stats.msgs, 1);
	pc_runtime_destroy(rt);
}

static void
test_layout_two_lcores(void)
{
	struct pc_runtime *rt = runtime_new("ut_y1", PC_IDLE_BUSY);

	CU_ASSERT_EQUAL(pc_runtime_worker_count(rt), 1);
	CU_ASSERT_PTR_NOT_NULL(pc_runtime_worker(rt, 0));
	CU_ASSERT_PTR_NOT_EQUAL(pc_runtime_worker(rt, 0), pc_runtime_control(rt));
	CU_ASSERT_PTR_NULL(pc_runtime_worker(rt, 1));
	CU_ASSERT_EQUAL(pc_lcore_id(pc_runtime_control(rt)), rte_get_main_lcore());
	CU_ASSERT_TRUE(pc_lcore_is_control(pc_runtime_control(rt)));
	CU_ASSERT_PTR_NULL(pc_runtime_lcore(rt, RTE_MAX_LCORE - 1));
	CU_ASSERT_PTR_NULL(pc_runtime_lcore(rt, RTE_MAX_LCORE + 5));
	pc_runtime_destroy(rt);
}

/*
 * `-l 0` alone: worker pollers run on the control lcore. EAL starts once per
 * process, so this case runs in a child forked before the parent's EAL.
 */
static int g_one_lcore_status = -1;

static int
one_lcore_child(void)
{
	struct pc_runtime_opts opts = {.name = "ut_one", .idle_policy = PC_IDLE_ADAPTIVE};
	struct pc_runtime *rt;
	struct pc_lcore *w;
	int fails = 0;

	if (pc_ut_eal_init(UT_NAME "_one", "0") != 0) {
		return 10;
	}
	rt = pc_runtime_create(&opts);
	if (rt == NULL) {
		return 11;
	}
	w = pc_runtime_worker(rt, 0);
	fails += pc_runtime_worker_count(rt) != 1;
	fails += w != pc_runtime_control(rt);
	fails += pc_runtime_launch(rt) != 0; /* nothing to launch */
	fails += pc_lcore_send(w, stop_from_msg, rt) != 0;
	fails += pc_lcore_run(w) != 0; /* leaves on the stop message */
	fails += pc_runtime_wait(rt) != 0;
	fails += w->stats.msgs != 1;
	pc_runtime_destroy(rt);
	rte_eal_cleanup();
	return fails;
}

static void
test_layout_one_lcore(void)
{
	CU_ASSERT_EQUAL(g_one_lcore_status, 0);
}

/* ---- the pass clock ---- */

static uint64_t
clock_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * pc_lcore_mono_ns follows CLOCK_MONOTONIC between readings (within 50 us:
 * a correctness bound, the TSC extrapolation is far closer), reads the
 * clock again after a period, never goes backwards (also for a now_tsc
 * behind the last one), and sits between the clock readings around it.
 */
static void
test_mono_clock(void)
{
	struct pc_runtime *rt = runtime_new("ut_mono", PC_IDLE_BUSY);
	struct pc_lcore *lc = pc_runtime_control(rt);
	uint64_t last = 0, first_tsc = rte_rdtsc(), v, before, after, tsc;
	unsigned int reads_far = 0;
	int i;

	for (i = 0; i < 20000; i++) {
		before = clock_mono_ns();
		tsc = rte_rdtsc();
		v = pc_lcore_mono_ns(lc, tsc);
		after = clock_mono_ns();
		CU_ASSERT(v >= last);
		/* The anchor is read after its pass TSC: up to a period's drift either way. */
		if (v + 50000 < before || v > after + 50000) {
			reads_far++;
		}
		last = v;
	}
	CU_ASSERT_EQUAL(reads_far, 0);
	/* A TSC behind the anchor: read again, not an earlier time. */
	v = pc_lcore_mono_ns(lc, first_tsc);
	CU_ASSERT(v >= last);
	/* A jump far ahead (a long sleep): read again, equal to the clock's reading. */
	before = clock_mono_ns();
	v = pc_lcore_mono_ns(lc, rte_rdtsc() + 10 * pc_us_to_tsc(PC_LCORE_MONO_PERIOD_US));
	after = clock_mono_ns();
	CU_ASSERT(v >= before && v <= after);
	/* An earlier value ahead of the clock (extrapolated, then re-read): held, not undone. */
	tsc = rte_rdtsc();
	last = pc_lcore_mono_ns(lc, tsc) + 1000000000ull;
	lc->mono_last_ns = last;
	CU_ASSERT_EQUAL(pc_lcore_mono_ns(lc, tsc), last);
	CU_ASSERT_EQUAL(pc_lcore_mono_ns(lc, tsc + 10 * pc_us_to_tsc(PC_LCORE_MONO_PERIOD_US)),
			last);
	pc_runtime_destroy(rt);
}

static const struct pc_ut_test msg_tests[] = {
	{"in order, batched per pass", test_msgs_in_order_batched},
	{"ring full is -ENOBUFS, nothing lost", test_msgs_ring_full},
	{"3 senders x 100k to a worker: order, exactly once", test_msgs_across_lcores},
	{"worker replies to the control lcore", test_msgs_round_trip},
	{NULL, NULL},
};

static const struct pc_ut_test timer_tests[] = {
	{"one-shot fires at its deadline, once", test_timer_one_shot},
	{"periodic, late loop skips missed periods", test_timer_periodic_and_skips},
	{"deadline order, re-arm, stop", test_timer_order_and_restart},
	{"callback stops itself and arms another", test_timer_callback_rearms},
	{"pass clock: follows CLOCK_MONOTONIC, re-reads, never goes back", test_mono_clock},
	{NULL, NULL},
};

static const struct pc_ut_test loop_tests[] = {
	{"pollers: work sum, unregister inside a pass", test_pollers},
	{"adaptive: busy/idle accounting, sleeps, prompt stop", test_loop_adaptive},
	{"busy: never sleeps, prompt stop", test_loop_busy},
	{"sleep: doorbell, wait fds, messages, doze hooks, veto", test_sleep_wakes},
	{"send and stop ring the eventfd of a sleeper only", test_send_and_stop_kick_sleepers},
	{"back-off steps in time; stay awake; short again after a wake", test_backoff_steps},
	{"a sleeping worker is woken by a message", test_sleeping_worker_woken},
	{"control loop leaves on stop", test_control_loop_stops},
	{"two lcores: one control, one worker", test_layout_two_lcores},
	{"one lcore: worker pollers on the control lcore", test_layout_one_lcore},
	{NULL, NULL},
};

static const struct pc_ut_suite suites[] = {
	{"lcore messages", NULL, NULL, msg_tests},
	{"lcore timers", NULL, NULL, timer_tests},
	{"lcore loop", NULL, NULL, loop_tests},
};

int
main(void)
{
	pid_t child = fork();
	int status;
	int rc;

	if (child == 0) {
		_exit(one_lcore_child());
	}
	if (child < 0 || waitpid(child, &status, 0) != child) {
		g_one_lcore_status = -1;
	} else {
		g_one_lcore_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
	}
	if (pc_ut_eal_init(UT_NAME, "0-1") != 0) {
		return 1;
	}
	rc = pc_ut_run(suites, PC_ARRAY_SIZE(suites));
	rte_eal_cleanup();
	return rc;
}
