/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The per-lcore run-to-completion loop: message ring, TSC timers, pollers,
 * busy/idle accounting and the idle policy. See lcore.h for the contract.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_malloc.h>
#include <rte_pause.h>
#include <rte_ring.h>

#include "lcore_internal.h"
#include "pc_log.h"

/*
 * Owner-only functions may run on the owner lcore, or on any thread while
 * the runtime is not launched (set-up, tear-down, single-stepped tests).
 */
#define PC_ASSERT_OWNER(lc) assert(!(lc)->rt->launched || rte_lcore_id() == (lc)->lcore_id)

uint64_t
pc_tsc_hz(void)
{
	return rte_get_tsc_hz();
}

uint64_t
pc_us_to_tsc(uint64_t us)
{
	return us * (rte_get_tsc_hz() / 1000000) + us * (rte_get_tsc_hz() % 1000000) / 1000000;
}

uint64_t
pc_lcore_mono_ns(struct pc_lcore *lc, uint64_t now_tsc)
{
	uint64_t ns;

	if (lc->mono_anchor_ns == 0 || now_tsc - lc->mono_anchor_tsc >= lc->mono_period_tsc) {
		struct timespec ts;

		/* Also when now_tsc is behind the anchor (the difference wraps): read again. */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		lc->mono_anchor_tsc = now_tsc;
		lc->mono_anchor_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		ns = lc->mono_anchor_ns;
	} else {
		ns = lc->mono_anchor_ns +
		     (uint64_t)(((unsigned __int128)(now_tsc - lc->mono_anchor_tsc) *
				 lc->mono_ns_per_tsc_q32) >>
				32);
	}
	if (ns < lc->mono_last_ns) {
		ns = lc->mono_last_ns;
	}
	lc->mono_last_ns = ns;
	return ns;
}

/* ---- timers: a binary min-heap of armed timers on deadline_tsc ---- */

static void
heap_place(struct pc_lcore *lc, unsigned int i, struct pc_timer *t)
{
	lc->heap[i] = t;
	t->heap_index = (int)i;
}

static void
heap_sift_up(struct pc_lcore *lc, unsigned int i)
{
	struct pc_timer *t = lc->heap[i];

	while (i > 0) {
		unsigned int parent = (i - 1) / 2;

		if (lc->heap[parent]->deadline_tsc <= t->deadline_tsc) {
			break;
		}
		heap_place(lc, i, lc->heap[parent]);
		i = parent;
	}
	heap_place(lc, i, t);
}

static void
heap_sift_down(struct pc_lcore *lc, unsigned int i)
{
	struct pc_timer *t = lc->heap[i];

	for (;;) {
		unsigned int child = 2 * i + 1;

		if (child >= lc->n_timers) {
			break;
		}
		if (child + 1 < lc->n_timers &&
		    lc->heap[child + 1]->deadline_tsc < lc->heap[child]->deadline_tsc) {
			child++;
		}
		if (t->deadline_tsc <= lc->heap[child]->deadline_tsc) {
			break;
		}
		heap_place(lc, i, lc->heap[child]);
		i = child;
	}
	heap_place(lc, i, t);
}

static void
heap_remove(struct pc_lcore *lc, struct pc_timer *t)
{
	unsigned int i = (unsigned int)t->heap_index;
	struct pc_timer *last = lc->heap[--lc->n_timers];

	t->heap_index = -1;
	if (last == t) {
		return;
	}
	heap_place(lc, i, last);
	if (i > 0 && lc->heap[(i - 1) / 2]->deadline_tsc > last->deadline_tsc) {
		heap_sift_up(lc, i);
	} else {
		heap_sift_down(lc, i);
	}
}

void
pc_timer_init(struct pc_timer *timer, pc_timer_fn fn, void *arg)
{
	memset(timer, 0, sizeof(*timer));
	timer->fn = fn;
	timer->arg = arg;
	timer->heap_index = -1;
}

bool
pc_timer_armed(const struct pc_timer *timer)
{
	return timer->heap_index >= 0;
}

int
pc_timer_start(struct pc_lcore *lc, struct pc_timer *timer, uint64_t deadline_tsc,
	       uint64_t period_tsc)
{
	PC_ASSERT_OWNER(lc);
	if (pc_timer_armed(timer)) {
		heap_remove(lc, timer);
	}
	if (lc->n_timers == lc->cap_timers) {
		/* Grows only when a new timer is armed: a set-up cost, not a per-pass one. */
		unsigned int cap = lc->cap_timers ? 2 * lc->cap_timers : 16;
		struct pc_timer **heap = rte_realloc(lc->heap, cap * sizeof(struct pc_timer *), 0);

		if (heap == NULL) {
			return -ENOMEM;
		}
		lc->heap = heap;
		lc->cap_timers = cap;
	}
	timer->deadline_tsc = deadline_tsc;
	timer->period_tsc = period_tsc;
	lc->heap[lc->n_timers] = timer;
	timer->heap_index = (int)lc->n_timers;
	lc->n_timers++;
	heap_sift_up(lc, lc->n_timers - 1);
	return 0;
}

void
pc_timer_stop(struct pc_lcore *lc, struct pc_timer *timer)
{
	PC_ASSERT_OWNER(lc);
	if (pc_timer_armed(timer)) {
		heap_remove(lc, timer);
	}
}

static int
timers_run(struct pc_lcore *lc, uint64_t now_tsc)
{
	int fired = 0;

	while (lc->n_timers > 0 && lc->heap[0]->deadline_tsc <= now_tsc) {
		struct pc_timer *t = lc->heap[0];

		if (t->period_tsc != 0) {
			/* Re-arm before the callback so that it may stop or restart itself. */
			uint64_t late = now_tsc - t->deadline_tsc;

			t->deadline_tsc += (late / t->period_tsc + 1) * t->period_tsc;
			heap_sift_down(lc, 0);
		} else {
			heap_remove(lc, t);
		}
		t->fn(t, t->arg, now_tsc);
		fired++;
	}
	lc->stats.timers_fired += (uint64_t)fired;
	return fired;
}

/* Earliest armed deadline, or UINT64_MAX. */
static uint64_t
timers_next(const struct pc_lcore *lc)
{
	return lc->n_timers > 0 ? lc->heap[0]->deadline_tsc : UINT64_MAX;
}

/* ---- pollers ---- */

struct pc_poller *
pc_lcore_poller_register(struct pc_lcore *lc, const char *name, pc_poller_fn fn, void *arg)
{
	struct pc_poller *p;

	PC_ASSERT_OWNER(lc);
	if (lc->n_pollers == lc->cap_pollers) {
		unsigned int cap = lc->cap_pollers ? 2 * lc->cap_pollers : 8;
		struct pc_poller **arr =
			rte_realloc(lc->pollers, cap * sizeof(struct pc_poller *), 0);

		if (arr == NULL) {
			PC_LOG(ERR, lcore, "lcore %u: no memory for poller %s", lc->lcore_id, name);
			return NULL;
		}
		lc->pollers = arr;
		lc->cap_pollers = cap;
	}
	p = rte_zmalloc(NULL, sizeof(*p), 0);
	if (p == NULL) {
		PC_LOG(ERR, lcore, "lcore %u: no memory for poller %s", lc->lcore_id, name);
		return NULL;
	}
	p->fn = fn;
	p->arg = arg;
	snprintf(p->name, sizeof(p->name), "%s", name);
	lc->pollers[lc->n_pollers++] = p;
	return p;
}

static void
pollers_compact(struct pc_lcore *lc)
{
	unsigned int out = 0;

	for (unsigned int i = 0; i < lc->n_pollers; i++) {
		if (lc->pollers[i]->removed) {
			rte_free(lc->pollers[i]);
		} else {
			lc->pollers[out++] = lc->pollers[i];
		}
	}
	lc->n_pollers = out;
	lc->pollers_dirty = false;
}

void
pc_lcore_poller_unregister(struct pc_lcore *lc, struct pc_poller *poller)
{
	PC_ASSERT_OWNER(lc);
	if (poller == NULL || poller->removed) {
		return;
	}
	poller->removed = true;
	lc->pollers_dirty = true;
	if (!lc->in_pass) {
		pollers_compact(lc);
	}
}

/* ---- waking a sleeping lcore ---- */

/*
 * The sleeper raises `sleeping`, then re-checks its ring and the stop flag;
 * a sender queues, then reads `sleeping`. With a full fence on both sides
 * between the store and the load, at least one of them sees the other, so
 * a message is never left waiting out a sleep.
 */
static void
lcore_kick(struct pc_lcore *lc)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&lc->sleeping, memory_order_relaxed)) {
		uint64_t one = 1;

		/* EAGAIN means the counter is already non-zero: awake soon anyway. */
		(void)!write(lc->wait_fds[0].fd, &one, sizeof(one));
	}
}

int
pc_lcore_wait_fd_add(struct pc_lcore *lc, int fd)
{
	PC_ASSERT_OWNER(lc);
	if (fd < 0) {
		return -EINVAL;
	}
	if (lc->n_wait_fds == PC_LCORE_WAIT_FDS_MAX) {
		PC_LOG(WARNING, lcore, "lcore %u: no room for wait fd %d; it wakes no sleep",
		       lc->lcore_id, fd);
		return -ENOSPC;
	}
	lc->wait_fds[lc->n_wait_fds].fd = fd;
	lc->wait_fds[lc->n_wait_fds].events = POLLIN;
	lc->n_wait_fds++;
	return 0;
}

void
pc_lcore_wait_fd_del(struct pc_lcore *lc, int fd)
{
	PC_ASSERT_OWNER(lc);
	for (unsigned int i = 1; i < lc->n_wait_fds; i++) {
		if (lc->wait_fds[i].fd == fd) {
			lc->wait_fds[i] = lc->wait_fds[--lc->n_wait_fds];
			return;
		}
	}
}

int
pc_lcore_doze_hook_add(struct pc_lcore *lc, pc_doze_fn fn, void *arg)
{
	PC_ASSERT_OWNER(lc);
	if (lc->n_doze == PC_LCORE_DOZE_HOOKS) {
		return -ENOSPC;
	}
	lc->doze[lc->n_doze].fn = fn;
	lc->doze[lc->n_doze].arg = arg;
	lc->n_doze++;
	return 0;
}

int
pc_lcore_wake_fd(const struct pc_lcore *lc)
{
	return lc->wait_fds[0].fd;
}

void
pc_lcore_stay_awake(struct pc_lcore *lc)
{
	PC_ASSERT_OWNER(lc);
	lc->stay_awake = true;
}

/* ---- messages ---- */

int
pc_lcore_send(struct pc_lcore *dst, pc_msg_fn fn, void *arg)
{
	struct pc_msg m = {.fn = fn, .arg = arg};

	/* The message is copied into the ring slot: no object to allocate or free. */
	if (rte_ring_enqueue_elem(dst->msg_ring, &m, sizeof(m)) != 0) {
		return -ENOBUFS;
	}
	lcore_kick(dst);
	return 0;
}

static int
msgs_run(struct pc_lcore *lc)
{
	struct pc_msg burst[PC_LCORE_MSG_BURST];
	unsigned int n = rte_ring_sc_dequeue_burst_elem(lc->msg_ring, burst, sizeof(burst[0]),
							PC_LCORE_MSG_BURST, NULL);

	for (unsigned int i = 0; i < n; i++) {
		burst[i].fn(burst[i].arg);
	}
	lc->stats.msgs += n;
	return (int)n;
}

/* ---- the loop ---- */

int
pc_lcore_poll_once(struct pc_lcore *lc, uint64_t now_tsc)
{
	int work;

	PC_ASSERT_OWNER(lc);
	lc->in_pass = true;
	work = msgs_run(lc);
	work += timers_run(lc, now_tsc);
	for (unsigned int i = 0; i < lc->n_pollers; i++) {
		struct pc_poller *p = lc->pollers[i];

		if (!p->removed) {
			int n = p->fn(p->arg, now_tsc);

			work += n > 0 ? n : 0;
		}
	}
	lc->in_pass = false;
	if (lc->pollers_dirty) {
		pollers_compact(lc);
	}
	lc->stats.passes++;
	return work;
}

/* Tell the first n doze hooks that the lcore is awake again. */
static void
doze_end(struct pc_lcore *lc, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		lc->doze[i].fn(lc->doze[i].arg, false);
	}
}

/*
 * Sleep up to `us` in ppoll on the wait fds, unless a doze hook vetoes it or
 * a message or a stop came in first. Returns true when something (not the
 * timeout) ended or prevented the sleep.
 */
static bool
lcore_sleep(struct pc_lcore *lc, uint64_t us)
{
	struct timespec ts = {.tv_sec = (time_t)(us / 1000000),
			      .tv_nsec = (long)(us % 1000000) * 1000};
	int n;

	for (unsigned int i = 0; i < lc->n_doze; i++) {
		if (!lc->doze[i].fn(lc->doze[i].arg, true)) {
			doze_end(lc, i + 1);
			return true;
		}
	}
	atomic_store_explicit(&lc->sleeping, true, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst); /* pairs with lcore_kick */
	if (rte_ring_count(lc->msg_ring) > 0 ||
	    atomic_load_explicit(&lc->rt->stop, memory_order_relaxed)) {
		atomic_store_explicit(&lc->sleeping, false, memory_order_relaxed);
		doze_end(lc, lc->n_doze);
		return true;
	}
	n = ppoll(lc->wait_fds, lc->n_wait_fds, &ts, NULL);
	atomic_store_explicit(&lc->sleeping, false, memory_order_relaxed);
	doze_end(lc, lc->n_doze);
	lc->stats.sleeps++;
	if (n <= 0) {
		return false;
	}
	if (lc->wait_fds[0].revents & POLLIN) {
		uint64_t v;

		(void)!read(lc->wait_fds[0].fd, &v, sizeof(v));
	}
	lc->stats.wakeups++;
	return true;
}

/*
 * Adaptive back-off after an idle pass: spin, then pause, then yield, then
 * sleep for growing intervals, never past the next timer or
 * PC_IDLE_SLEEP_MAX_US. The sleep ends early when a message or a stop comes
 * in or a wait fd turns readable (I/O in flight), and the next sleep starts
 * short again. A poller with work in flight that no fd signals keeps the
 * lcore at the yield step.
 */
static void
idle_backoff(struct pc_lcore *lc, uint64_t now_tsc)
{
	uint64_t next = timers_next(lc);
	bool awake = lc->stay_awake;
	uint64_t idle, us;

	lc->stay_awake = false;
	if (lc->idle_passes++ == 0) {
		lc->idle_since_tsc = now_tsc;
	}
	idle = now_tsc - lc->idle_since_tsc;
	if (idle < lc->idle_step_tsc[0]) {
		return;
	}
	if (idle < lc->idle_step_tsc[1]) {
		rte_pause();
		return;
	}
	if (idle < lc->idle_step_tsc[2] || awake) {
		sched_yield();
		return;
	}
	us = lc->sleep_us ? lc->sleep_us : PC_IDLE_SLEEP_MIN_US;
	if (next != UINT64_MAX) {
		uint64_t tsc_per_us = PC_MAX(pc_tsc_hz() / 1000000, (uint64_t)1);
		uint64_t until = next > now_tsc ? (next - now_tsc) / tsc_per_us : 0;

		us = PC_MIN(us, until);
	}
	if (us > 0 && lcore_sleep(lc, us)) {
		lc->sleep_us = 0;
		return;
	}
	lc->sleep_us = PC_MIN(2 * (lc->sleep_us ? lc->sleep_us : PC_IDLE_SLEEP_MIN_US),
			      (uint64_t)PC_IDLE_SLEEP_MAX_US);
}

int
pc_lcore_run(void *lcore)
{
	struct pc_lcore *lc = lcore;
	struct pc_runtime *rt = lc->rt;
	bool adaptive = rt->idle_policy == PC_IDLE_ADAPTIVE;

	PC_ASSERT_OWNER(lc);
	atomic_store_explicit(&lc->running, true, memory_order_release);
	PC_LOG(DEBUG, lcore, "lcore %u: loop entered (%s)", lc->lcore_id,
	       lc->is_control ? "control" : "worker");
	while (!atomic_load_explicit(&rt->stop, memory_order_relaxed)) {
		uint64_t start = rte_rdtsc();
		int work = pc_lcore_poll_once(lc, start);

		if (work > 0) {
			lc->idle_passes = 0;
			lc->sleep_us = 0;
			lc->stay_awake = false;
			lc->stats.busy_passes++;
			lc->stats.busy_cycles += rte_rdtsc() - start;
		} else {
			if (adaptive) {
				idle_backoff(lc, start);
			}
			lc->stats.idle_cycles += rte_rdtsc() - start;
		}
	}
	PC_LOG(DEBUG, lcore, "lcore %u: loop left after %" PRIu64 " passes", lc->lcore_id,
	       lc->stats.passes);
	return 0;
}

void
pc_lcore_get_stats(const struct pc_lcore *lc, struct pc_lcore_stats *stats)
{
	*stats = lc->stats;
}

unsigned int
pc_lcore_id(const struct pc_lcore *lc)
{
	return lc->lcore_id;
}

bool
pc_lcore_is_control(const struct pc_lcore *lc)
{
	return lc->is_control;
}

/* ---- the runtime ---- */

static void
lcore_destroy(struct pc_lcore *lc)
{
	if (lc == NULL) {
		return;
	}
	if (lc->msg_ring != NULL) {
		unsigned int dropped = rte_ring_count(lc->msg_ring);

		if (dropped > 0) {
			PC_LOG(WARNING, lcore, "lcore %u: %u queued messages dropped at shutdown",
			       lc->lcore_id, dropped);
		}
		rte_ring_free(lc->msg_ring);
	}
	if (lc->n_wait_fds > 0) {
		close(lc->wait_fds[0].fd);
	}
	for (unsigned int i = 0; i < lc->n_pollers; i++) {
		rte_free(lc->pollers[i]);
	}
	rte_free(lc->pollers);
	rte_free(lc->heap);
	rte_free(lc);
}

static struct pc_lcore *
lcore_create(struct pc_runtime *rt, unsigned int lcore_id, unsigned int ring_size)
{
	char name[RTE_RING_NAMESIZE];
	int socket = (int)rte_lcore_to_socket_id(lcore_id);
	struct pc_lcore *lc = rte_zmalloc_socket(NULL, sizeof(*lc), PC_CACHE_LINE, socket);

	if (lc == NULL) {
		PC_LOG(ERR, lcore, "lcore %u: no memory for its context", lcore_id);
		return NULL;
	}
	lc->rt = rt;
	lc->lcore_id = lcore_id;
	lc->is_control = lcore_id == rt->control_id;
	lc->idle_step_tsc[0] = pc_us_to_tsc(PC_IDLE_SPIN_US);
	lc->idle_step_tsc[1] = pc_us_to_tsc(PC_IDLE_PAUSE_US);
	lc->idle_step_tsc[2] = pc_us_to_tsc(PC_IDLE_YIELD_US);
	lc->mono_period_tsc = pc_us_to_tsc(PC_LCORE_MONO_PERIOD_US);
	lc->mono_ns_per_tsc_q32 = (uint64_t)((1000000000ull << 32) / pc_tsc_hz());
	snprintf(name, sizeof(name), "%s_m%u", rt->name, lcore_id);
	/*
	 * Messages live in the ring slots (16 bytes each), so a send is one
	 * reservation and one copy. Relaxed tail sync (RTS) for the producers:
	 * senders include non-EAL threads and lcores that share a core with
	 * another engine, and a producer preempted mid-enqueue must not make the
	 * others spin on the tail as the classic MP ring does (seen here as a
	 * convoy with three senders on two cores).
	 */
	lc->msg_ring = rte_ring_create_elem(name, sizeof(struct pc_msg), ring_size, socket,
					    RING_F_MP_RTS_ENQ | RING_F_SC_DEQ);
	if (lc->msg_ring == NULL) {
		PC_LOG(ERR, lcore, "lcore %u: cannot create message ring %s: %s", lcore_id, name,
		       rte_strerror(rte_errno));
		rte_free(lc);
		return NULL;
	}
	lc->wait_fds[0].fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (lc->wait_fds[0].fd < 0) {
		PC_LOG(ERR, lcore, "lcore %u: eventfd: %s", lcore_id, strerror(errno));
		lcore_destroy(lc);
		return NULL;
	}
	lc->wait_fds[0].events = POLLIN;
	lc->n_wait_fds = 1;
	return lc;
}

struct pc_runtime *
pc_runtime_create(const struct pc_runtime_opts *opts)
{
	unsigned int ring_size = opts->msg_ring_size ? opts->msg_ring_size : PC_LCORE_RING_DEFAULT;
	struct pc_runtime *rt;
	unsigned int id;

	if (!rte_is_power_of_2(ring_size)) {
		PC_LOG(ERR, lcore, "message ring size %u is not a power of two", ring_size);
		return NULL;
	}
	rt = rte_zmalloc(NULL, sizeof(*rt), PC_CACHE_LINE);
	if (rt == NULL) {
		PC_LOG(ERR, lcore, "no memory for the runtime");
		return NULL;
	}
	snprintf(rt->name, sizeof(rt->name), "%s", opts->name ? opts->name : "pc");
	rt->idle_policy = opts->idle_policy;
	rt->control_id = rte_get_main_lcore();
	RTE_LCORE_FOREACH (id) {
		struct pc_lcore *lc = lcore_create(rt, id, ring_size);

		if (lc == NULL) {
			pc_runtime_destroy(rt);
			return NULL;
		}
		rt->by_id[id] = lc;
		if (!lc->is_control) {
			rt->workers[rt->n_workers++] = lc;
		}
	}
	return rt;
}

void
pc_runtime_destroy(struct pc_runtime *rt)
{
	if (rt == NULL) {
		return;
	}
	for (unsigned int id = 0; id < RTE_MAX_LCORE; id++) {
		lcore_destroy(rt->by_id[id]);
	}
	rte_free(rt);
}

struct pc_lcore *
pc_runtime_control(struct pc_runtime *rt)
{
	return rt->by_id[rt->control_id];
}

unsigned int
pc_runtime_worker_count(const struct pc_runtime *rt)
{
	return rt->n_workers > 0 ? rt->n_workers : 1;
}

struct pc_lcore *
pc_runtime_worker(struct pc_runtime *rt, unsigned int i)
{
	if (rt->n_workers == 0) {
		return pc_runtime_control(rt);
	}
	return i < rt->n_workers ? rt->workers[i] : NULL;
}

struct pc_lcore *
pc_runtime_lcore(struct pc_runtime *rt, unsigned int lcore_id)
{
	return lcore_id < RTE_MAX_LCORE ? rt->by_id[lcore_id] : NULL;
}

int
pc_runtime_launch(struct pc_runtime *rt)
{
	rt->launched = true;
	for (unsigned int i = 0; i < rt->n_workers; i++) {
		struct pc_lcore *lc = rt->workers[i];
		int rc = rte_eal_remote_launch(pc_lcore_run, lc, lc->lcore_id);

		if (rc != 0) {
			PC_LOG(ERR, lcore, "cannot launch lcore %u: %s", lc->lcore_id,
			       strerror(-rc));
			pc_runtime_stop(rt);
			pc_runtime_wait(rt);
			return rc;
		}
	}
	return 0;
}

void
pc_runtime_stop(struct pc_runtime *rt)
{
	atomic_store_explicit(&rt->stop, true, memory_order_relaxed);
	for (unsigned int id = 0; id < RTE_MAX_LCORE; id++) {
		if (rt->by_id[id] != NULL) {
			lcore_kick(rt->by_id[id]);
		}
	}
}

bool
pc_runtime_stopping(const struct pc_runtime *rt)
{
	return atomic_load_explicit(&rt->stop, memory_order_relaxed);
}

int
pc_runtime_wait(struct pc_runtime *rt)
{
	int first = 0;

	for (unsigned int i = 0; i < rt->n_workers; i++) {
		int rc = rte_eal_wait_lcore(rt->workers[i]->lcore_id);

		if (rc != 0 && first == 0) {
			first = rc;
		}
	}
	rt->launched = false;
	return first;
}

bool
pc_runtime_all_running(const struct pc_runtime *rt)
{
	for (unsigned int id = 0; id < RTE_MAX_LCORE; id++) {
		const struct pc_lcore *lc = rt->by_id[id];

		if (lc != NULL && !atomic_load_explicit(&lc->running, memory_order_acquire)) {
			return false;
		}
	}
	return true;
}
