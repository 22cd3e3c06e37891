/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <rte_branch_prediction.h>
#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_ring.h>

#include "fetch.h"
#include "pc_admin_proto.h"
#include "pc_common.h"
#include "pc_log.h"
#include "pc_session_proto.h"
#include "session.h"
#include "session_proto.h"

#define PC_SESS_BURST        16      /* submissions taken per session per pass */
#define PC_SESS_EPOLL_US     200     /* control: the socket is polled this often when quiet */
#define PC_SESS_SWEEP_US     10000   /* worker: how often leases are checked */
#define PC_SESS_HELLO_US     5000000 /* a connection must say hello within this */
#define PC_SESS_EPOLL_EVENTS 32
#define PC_SESS_PENDING_MAX  64 /* connections beyond max_sessions awaiting hello */
/* After accept fails for lack of descriptors or memory: accepts pause this long. */
#define PC_SESS_ACCEPT_PAUSE_US 100000
#define PC_SESS_ACCEPT_LOG_US   10000000 /* at most one such warning this often */
/* A remote wait answers this much before the client's deadline, at most (1/8 of the time left). */
#define PC_SESS_REMOTE_MARGIN_NS 50000000ull

/* Engine-private state of one request slot. */
enum eslot_state {
	ES_IDLE,       /* nothing held */
	ES_PARKED,     /* SET_ALLOC waiting for memory; not completed yet */
	ES_CLEARING,   /* CLEAR sent to the control lcore; not completed yet */
	ES_HOLD_ALLOC, /* SET_ALLOC completed: pages allocated, awaiting commit */
	ES_HOLD_PIN,   /* GET completed: pages pinned, awaiting GET_DONE */
	ES_REMOTE,     /* GET or EXISTS waiting for other nodes; not completed yet */
};

struct pc_eslot {
	uint8_t state;
	uint16_t nkeys;                         /* keys of the request that made the hold */
	uint16_t nheld;                         /* locs[] entries with a slot */
	uint32_t seq;                           /* of the request parked or clearing */
	uint32_t depth;                         /* parked SET_ALLOC: prefix depth */
	uint64_t deadline_tsc;                  /* parked: give up; hold: lease end */
	uint64_t pending[PC_REQ_MAX_KEYS / 64]; /* parked: keys still waiting */
	int32_t res[PC_REQ_MAX_KEYS];           /* SET_ALLOC results, for the commit */
	/* remote: the request that went to other nodes */
	uint8_t rop;                           /* PC_OP_GET or PC_OP_EXISTS */
	uint16_t ftag;                         /* tells this wait from an earlier one */
	uint64_t staged[PC_REQ_MAX_KEYS / 64]; /* locs[i] is a landing slot, not a pin */
	uint8_t rmap[PC_REQ_MAX_KEYS];         /* fetch index -> request key index */
	struct pc_store_loc locs[PC_REQ_MAX_KEYS];
};

enum sess_state {
	SS_HELLO,     /* accepted, waiting for the hello */
	SS_ATTACH,    /* hello answered; attach message not yet queued */
	SS_OPEN,      /* a worker owns it */
	SS_DETACH,    /* hung up; detach message not yet queued */
	SS_DETACHING, /* the worker is releasing it */
};

/*
 * The engine's view of the submission ring in the region: its geometry is
 * copied at creation and never read back from shared memory, so a client
 * that scribbles the ring's header can stall its own session, not steer the
 * engine's loads and stores out of the ring.
 */
struct pc_sring {
	struct rte_ring *r; /* in the region */
	uint64_t *elems;    /* the element array after the header */
	uint32_t mask;
	uint32_t capacity;
	uint32_t head; /* the engine's own consumer index */
};

struct pc_sworker;

struct pc_session {
	uint32_t id;
	enum sess_state state;
	int sock;
	int region_fd;
	void *region;
	size_t region_size;
	struct pc_session_hdr *hdr;
	uint8_t *slots;
	uint32_t nslots;
	pid_t pid;
	uint16_t ns_len;
	char ns[PC_NS_MAX];
	uint64_t accept_tsc;
	struct pc_sessions *ss;
	struct pc_sworker *owner;
	bool notify;   /* completions posted this pass */
	bool broken;   /* the client corrupted its ring: stop serving it */
	bool clearing; /* a CLEAR of this session is on the control lcore */
	struct pc_sring sq;
	struct pc_session *next; /* control's list */
	struct pc_eslot eslots[];
};

struct pc_sworker_stats {
	uint64_t requests;
	uint64_t bad_requests;
	uint64_t expired_holds;
	uint64_t parked;
	uint64_t remote_waits; /* GETs and EXISTS that went to other nodes */
} PC_CACHE_ALIGNED;

struct pc_sworker {
	struct pc_sessions *ss;
	struct pc_lcore *lc;
	unsigned int ci;
	bool registered;
	bool polls_store; /* this poller also runs pc_store_poll for ci */
	unsigned int nsess;
	unsigned int nparked;
	uint64_t parked_epoch; /* pc_store_space_epoch() at the last retry */
	uint64_t next_sweep_tsc;
	struct pc_poller *poller;
	struct pc_fetch *fetch;   /* remote GET/EXISTS; NULL: local pages only */
	struct pc_session **list; /* cap: max_sessions */
	struct pc_sworker_stats stats;
	struct pc_store_key keys[PC_REQ_MAX_KEYS];
	const struct pc_store_key *kp[PC_REQ_MAX_KEYS];
	struct pc_store_loc locs[PC_REQ_MAX_KEYS];
	int rc[PC_REQ_MAX_KEYS];
	bool present[PC_REQ_MAX_KEYS];
} PC_CACHE_ALIGNED;

struct pc_sessions {
	const struct pc_config *cfg;
	struct pc_runtime *rt;
	struct pc_store *st; /* NULL: discovery-only engine, no sessions */
	struct pc_lcore *control;
	unsigned int control_ci;
	unsigned int nworkers;
	struct pc_sworker **workers;
	int listen_fd;
	bool waits; /* epfd is in the control lcore's wait set */
	int epfd;
	bool bound; /* the socket file is ours to unlink */
	struct pc_poller *ctl_poller;
	uint64_t next_epoll_tsc;
	uint64_t incarnation;
	uint32_t next_id;
	uint64_t lease_tsc;
	uint64_t lease_ns;
	struct pc_session *list; /* every session not yet freed */
	unsigned int nconn;      /* sessions in list */
	_Atomic uint64_t open;
	uint64_t opened;
	uint64_t closed;
	uint64_t hello_refused;
	uint64_t accept_failed;     /* accept() failures other than EAGAIN, EINTR, ECONNABORTED */
	uint64_t accept_resume_tsc; /* non-zero: the listen socket is muted until then */
	uint64_t accept_log_tsc;    /* the next accept failure is logged from then */
	pc_sessions_admin_fn admin_fn; /* takes PC_ADMIN_MAGIC connections */
	void *admin_arg;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* CLEAR round trip: worker -> control -> worker. */
struct clear_msg {
	struct pc_sessions *ss;
	struct pc_sworker *w;
	uint32_t sid;
	uint32_t slot;
	uint32_t seq;
	uint16_t ns_len;
	char ns[PC_NS_MAX];
	uint64_t count;
};

static void control_free_session(struct pc_sessions *ss, struct pc_session *s);
static struct pc_session *worker_find(struct pc_sworker *w, uint32_t sid);

/* ------------------------------------------------------------------ */
/* Shared-ring access with private geometry                            */
/* ------------------------------------------------------------------ */

static int
sring_init(struct pc_sring *sr, void *mem, const char *name, uint32_t count, unsigned int flags)
{
	struct rte_ring *r = mem;
	int rc = rte_ring_init(r, name, count, flags);

	if (rc != 0) {
		return rc;
	}
	sr->r = r;
	sr->elems = (uint64_t *)(r + 1);
	sr->mask = r->mask;
	sr->capacity = r->capacity;
	sr->head = 0;
	return 0;
}

/*
 * Single-consumer dequeue from a ring the client produces into (its
 * producers are multi-producer RTS; an RTS tail's position sits where a
 * plain tail does). Returns the count, or -EBADMSG when the producer's tail
 * cannot be right (more entries than the ring holds).
 */
static int
sring_dequeue(struct pc_sring *sr, struct pc_ring_elem *out, unsigned int max)
{
	uint32_t tail = __atomic_load_n(&sr->r->prod.tail, __ATOMIC_ACQUIRE);
	uint32_t entries = tail - sr->head;
	unsigned int i;

	if (entries > sr->capacity) {
		return -EBADMSG;
	}
	if (entries > max) {
		entries = max;
	}
	for (i = 0; i < entries; i++) {
		uint64_t v =
			__atomic_load_n(&sr->elems[(sr->head + i) & sr->mask], __ATOMIC_RELAXED);

		memcpy(&out[i], &v, sizeof(v));
	}
	if (entries > 0) {
		sr->head += entries;
		sr->r->cons.head = sr->head;
		__atomic_store_n(&sr->r->cons.tail, sr->head, __ATOMIC_RELEASE);
	}
	return (int)entries;
}

/* ------------------------------------------------------------------ */
/* Worker side                                                         */
/* ------------------------------------------------------------------ */

static inline struct pc_req_slot *
req_slot(const struct pc_session *s, uint32_t i)
{
	return (struct pc_req_slot *)(s->slots + (size_t)i * sizeof(struct pc_req_slot));
}

static uint64_t
ns_to_tsc(uint64_t ns)
{
	return (uint64_t)((double)ns * (double)pc_tsc_hz() / 1e9);
}

static inline bool
bit_test(const uint64_t *bits, unsigned int i)
{
	return (bits[i / 64] >> (i % 64)) & 1u;
}

static inline void
bit_set(uint64_t *bits, unsigned int i)
{
	bits[i / 64] |= 1ull << (i % 64);
}

static inline void
bit_clear(uint64_t *bits, unsigned int i)
{
	bits[i / 64] &= ~(1ull << (i % 64));
}

/* Release whatever a slot holds: allocations are dropped, pins released. */
static void
eslot_release(struct pc_sworker *w, struct pc_eslot *es)
{
	struct pc_store *st = w->ss->st;
	unsigned int i;
	unsigned int n = 0;

	if (es->state == ES_PARKED) {
		w->nparked--;
	}
	if (es->state == ES_HOLD_ALLOC || es->state == ES_PARKED) {
		for (i = 0; i < es->nkeys; i++) {
			if (es->locs[i].slot != NULL) {
				pc_store_abort(st, w->ci, &es->locs[i]);
				es->locs[i].slot = NULL;
			}
		}
	} else if (es->state == ES_HOLD_PIN || es->state == ES_REMOTE) {
		/* A remote wait holds its local pins; its landing slots arrive later, or never. */
		for (i = 0; i < es->nkeys; i++) {
			if (es->locs[i].slot == NULL) {
				continue;
			}
			if (bit_test(es->staged, i)) {
				bit_clear(es->staged, i);
				pc_store_unstage(st, w->ci, &es->locs[i]);
			} else {
				w->locs[n++] = es->locs[i];
				es->locs[i].slot = NULL;
			}
		}
		if (n > 0) {
			pc_store_unpin_bulk(st, w->ci, w->locs, n);
		}
		es->ftag++;
	}
	es->nheld = 0;
	es->nkeys = 0;
	es->state = ES_IDLE;
}

/* Answer request seq in its slot: the response, then done_seq (the client polls it). */
static void
complete(struct pc_sworker *w, struct pc_session *s, uint32_t slot, uint32_t seq, int32_t status,
	 uint32_t count)
{
	struct pc_req_slot *rs = req_slot(s, slot);

	__atomic_store_n(&rs->count, count, __ATOMIC_RELAXED);
	__atomic_store_n(&rs->status, status, __ATOMIC_RELAXED);
	__atomic_store_n(&rs->done_seq, seq, __ATOMIC_RELEASE);
	w->stats.requests++;
	s->notify = true;
}

static void
notify_client(struct pc_session *s)
{
	struct pc_session_hdr *h = s->hdr;

	s->notify = false;
	__atomic_fetch_add(&h->cq_futex, 1, __ATOMIC_RELEASE);
	/* Pairs with the client's fence between raising cq_waiters and re-checking its slots. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&h->cq_waiters, __ATOMIC_RELAXED) != 0) {
		syscall(SYS_futex, &h->cq_futex, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
	}
}

/* Read key i of a request into w->keys[i] (pc_req_key_decode). Returns 0 or -EINVAL. */
static int
parse_key(struct pc_sworker *w, const struct pc_session *s, struct pc_req_slot *rs, unsigned int i)
{
	uint8_t buf[PC_KEY_MAX];
	int len = pc_req_key_decode(rs, i, buf);

	if (len < 0 || pc_store_key_init(&w->keys[i], s->ns, s->ns_len, buf, (size_t)len) != 0) {
		return -EINVAL;
	}
	w->kp[i] = &w->keys[i];
	return 0;
}

static int
parse_keys(struct pc_sworker *w, const struct pc_session *s, struct pc_req_slot *rs, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (parse_key(w, s, rs, i) != 0) {
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * Try to allocate the keys of a SET_ALLOC still pending. Returns true when
 * none is left waiting for memory.
 */
static bool
set_alloc_try(struct pc_sworker *w, struct pc_session *s, struct pc_eslot *es,
	      struct pc_req_slot *rs, bool last_try)
{
	unsigned int i;
	bool waiting = false;

	for (i = 0; i < es->nkeys; i++) {
		uint32_t len;
		int rc;

		if (!bit_test(es->pending, i)) {
			continue;
		}
		if (parse_key(w, s, rs, i) != 0) {
			rc = -EINVAL;
		} else {
			len = __atomic_load_n(&rs->keys[i].len, __ATOMIC_RELAXED);
			rc = pc_store_alloc(w->ss->st, w->ci, &w->keys[i], len, es->depth + i,
					    &es->locs[i]);
		}
		if (rc == -ENOSPC && !last_try) {
			waiting = true;
			continue;
		}
		bit_clear(es->pending, i);
		if (rc == -ENOSPC) {
			pc_store_count_nospace(w->ss->st, w->ci, 1);
		}
		if (rc == 0) {
			es->nheld++;
			rs->keys[i].page_off = es->locs[i].off;
		} else {
			es->locs[i].slot = NULL;
		}
		es->res[i] = rc;
		rs->keys[i].result = rc;
	}
	return !waiting;
}

static void
set_alloc_finish(struct pc_sworker *w, struct pc_session *s, struct pc_eslot *es, uint32_t slot,
		 uint64_t now_tsc)
{
	unsigned int i;
	uint32_t ok = 0;

	for (i = 0; i < es->nkeys; i++) {
		ok += es->res[i] == 0 || es->res[i] == PC_R_DEDUP;
	}
	if (es->nheld > 0) {
		es->state = ES_HOLD_ALLOC;
		es->deadline_tsc = now_tsc + w->ss->lease_tsc;
	} else {
		es->state = ES_IDLE;
	}
	complete(w, s, slot, es->seq, 0, ok);
}

static void
op_set_alloc(struct pc_sworker *w, struct pc_session *s, struct pc_eslot *es,
	     struct pc_req_slot *rs, uint32_t slot, uint32_t nkeys, uint32_t depth,
	     uint64_t give_up_tsc, uint64_t now_tsc)
{
	unsigned int i;

	es->nkeys = (uint16_t)nkeys;
	es->nheld = 0;
	es->depth = depth;
	memset(es->pending, 0, sizeof(es->pending));
	for (i = 0; i < nkeys; i++) {
		es->locs[i].slot = NULL;
		bit_set(es->pending, i);
	}
	if (set_alloc_try(w, s, es, rs, false)) {
		set_alloc_finish(w, s, es, slot, now_tsc);
		return;
	}
	/*
	 * Memory is short: the control lcore is evicting. Retry whenever slots
	 * come back to the slab, until give-up.
	 */
	if (w->nparked == 0) {
		w->parked_epoch = pc_store_space_epoch(w->ss->st);
	}
	es->state = ES_PARKED;
	es->deadline_tsc = give_up_tsc;
	w->nparked++;
	w->stats.parked++;
}

static void
op_set_commit(struct pc_sworker *w, struct pc_session *s, struct pc_eslot *es,
	      struct pc_req_slot *rs, uint32_t slot, uint32_t seq)
{
	unsigned int i;
	uint32_t ok = 0;

	if (es->state != ES_HOLD_ALLOC) {
		/* Nothing to commit: nothing was allocated on this slot. */
		complete(w, s, slot, seq, -ETIMEDOUT, 0);
		return;
	}
	for (i = 0; i < es->nkeys; i++) {
		int32_t res = es->res[i];

		if (es->locs[i].slot != NULL) {
			if (__atomic_load_n(&rs->keys[i].result, __ATOMIC_RELAXED) == 0) {
				res = pc_store_commit(w->ss->st, w->ci, &es->locs[i]);
			} else {
				pc_store_abort(w->ss->st, w->ci, &es->locs[i]);
				res = -ECANCELED;
			}
			es->locs[i].slot = NULL;
		}
		ok += res == 0 || res == PC_R_DEDUP;
		rs->keys[i].result = res;
	}
	es->nheld = 0;
	es->nkeys = 0;
	es->state = ES_IDLE;
	complete(w, s, slot, seq, 0, ok);
}

/* The deadline a remote wait gets: the client's, a little early, and within the lease. */
static uint64_t
remote_deadline(const struct pc_sworker *w, uint64_t deadline_ns, uint64_t now_ns)
{
	uint64_t end = now_ns + w->ss->lease_ns;

	if (deadline_ns != 0 && deadline_ns < end) {
		/* Answer before the client gives up: misses, not a timeout. */
		uint64_t left = deadline_ns > now_ns ? deadline_ns - now_ns : 0;

		end = deadline_ns - PC_MIN(left / 8, PC_SESS_REMOTE_MARGIN_NS);
	}
	return end;
}

static uint64_t
remote_tag(const struct pc_session *s, uint32_t slot, const struct pc_eslot *es)
{
	return (uint64_t)s->id << 32 | (uint64_t)slot << 16 | es->ftag;
}

/* The remote wait tag names, if it is still waiting; NULL otherwise. */
static struct pc_eslot *
remote_find(struct pc_sworker *w, uint64_t tag, struct pc_session **sp, uint32_t *slotp)
{
	struct pc_session *s = worker_find(w, (uint32_t)(tag >> 32));
	uint32_t slot = (uint32_t)(tag >> 16) & 0xffffu;
	struct pc_eslot *es;

	if (s == NULL || slot >= s->nslots) {
		return NULL;
	}
	es = &s->eslots[slot];
	if (es->state != ES_REMOTE || es->ftag != (uint16_t)tag) {
		return NULL;
	}
	*sp = s;
	*slotp = slot;
	return es;
}

static void exists_remote_done(void *arg, uint64_t tag, struct pc_fetch_result *res,
			       unsigned int n);

/* Other nodes answered a GET's local misses (this worker). */
static void
get_remote_done(void *arg, uint64_t tag, struct pc_fetch_result *res, unsigned int n)
{
	struct pc_sworker *w = arg;
	struct pc_session *s;
	struct pc_req_slot *rs;
	struct pc_eslot *es;
	uint32_t slot;
	unsigned int i;

	es = remote_find(w, tag, &s, &slot);
	if (es == NULL) {
		return; /* the session went, or the slot moved on: the landing slots go back */
	}
	rs = req_slot(s, slot);
	for (unsigned int j = 0; j < n; j++) {
		struct pc_req_key *k;

		i = es->rmap[j];
		k = &rs->keys[i];
		if (res[j].rc != 0) {
			k->result = res[j].rc == -ETIMEDOUT ? -ETIMEDOUT : -ENOENT;
			continue;
		}
		es->locs[i] = res[j].staged;
		res[j].staged.slot = NULL;
		bit_set(es->staged, i);
		es->nheld++;
		k->page_off = es->locs[i].off;
		k->len = es->locs[i].len;
		k->generation = res[j].generation;
		k->result = 0;
	}
	es->state = es->nheld > 0 ? ES_HOLD_PIN : ES_IDLE;
	es->deadline_tsc = rte_rdtsc() + w->ss->lease_tsc;
	complete(w, s, slot, es->seq, 0, es->nheld);
	notify_client(s);
}

/*
 * Send a request's local misses to the nodes that hold them. Returns true
 * when the slot now waits for them (it completes in the callback).
 */
static bool
remote_start(struct pc_sworker *w, struct pc_session *s, struct pc_eslot *es, uint32_t slot,
	     uint32_t seq, uint32_t op, unsigned int nmiss, uint64_t deadline_ns)
{
	const struct pc_store_key *kp[PC_REQ_MAX_KEYS];
	/* The clock the fetch's poller (the data plane's, on this lcore) reads too. */
	uint64_t now_ns = pc_lcore_mono_ns(w->lc, rte_rdtsc());
	int rc;

	for (unsigned int j = 0; j < nmiss; j++) {
		kp[j] = &w->keys[es->rmap[j]];
	}
	es->rop = (uint8_t)op;
	es->seq = seq;
	es->ftag++;
	if (op == PC_OP_GET) {
		rc = pc_fetch_get(w->fetch, kp, nmiss, remote_deadline(w, deadline_ns, now_ns),
				  now_ns, get_remote_done, w, remote_tag(s, slot, es));
	} else {
		rc = pc_fetch_exists(w->fetch, kp, nmiss, remote_deadline(w, deadline_ns, now_ns),
				     now_ns, exists_remote_done, w, remote_tag(s, slot, es));
	}
	if (rc != 0) {
		return false; /* answered with what this node has */
	}
	es->state = ES_REMOTE;
	w->stats.remote_waits++;
	return true;
}

static void
op_get(struct pc_sworker *w, struct pc_session *s, struct pc_eslot *es, struct pc_req_slot *rs,
       uint32_t slot, uint32_t seq, uint32_t nkeys, uint64_t deadline_ns, uint64_t now_tsc)
{
	unsigned int i;
	unsigned int hits;
	unsigned int nmiss = 0;

	hits = pc_store_lookup_pin_burst(w->ss->st, w->ci, w->kp, nkeys, es->locs, w->rc);
	memset(es->staged, 0, sizeof(es->staged));
	for (i = 0; i < nkeys; i++) {
		struct pc_req_key *k = &rs->keys[i];

		if (w->rc[i] == 0) {
			k->page_off = es->locs[i].off;
			k->len = es->locs[i].len;
			k->generation = es->locs[i].generation;
		} else {
			es->locs[i].slot = NULL;
			es->rmap[nmiss++] = (uint8_t)i;
		}
		k->result = w->rc[i];
	}
	es->nkeys = (uint16_t)nkeys;
	es->nheld = (uint16_t)hits;
	if (nmiss > 0 && w->fetch != NULL &&
	    remote_start(w, s, es, slot, seq, PC_OP_GET, nmiss, deadline_ns)) {
		return;
	}
	if (hits > 0) {
		es->state = ES_HOLD_PIN;
		es->deadline_tsc = now_tsc + w->ss->lease_tsc;
	}
	complete(w, s, slot, seq, 0, hits);
}

/* Leading keys present, from the present bits of n keys. */
static unsigned int
leading(const uint64_t *bits, unsigned int n)
{
	unsigned int i = 0;

	while (i < n && bit_test(bits, i)) {
		i++;
	}
	return i;
}

/* Other nodes answered an EXISTS's local misses (this worker). */
static void
exists_remote_done(void *arg, uint64_t tag, struct pc_fetch_result *res, unsigned int n)
{
	struct pc_sworker *w = arg;
	struct pc_session *s;
	struct pc_req_slot *rs;
	struct pc_eslot *es;
	uint32_t slot;
	uint64_t bits[PC_REQ_MAX_KEYS / 64];

	es = remote_find(w, tag, &s, &slot);
	if (es == NULL) {
		return;
	}
	rs = req_slot(s, slot);
	memcpy(bits, es->pending, sizeof(bits));
	for (unsigned int j = 0; j < n; j++) {
		if (res[j].rc == 0) {
			bit_set(bits, es->rmap[j]);
		}
	}
	memcpy(rs->present, bits, sizeof(bits));
	es->state = ES_IDLE;
	complete(w, s, slot, es->seq, 0, leading(bits, es->nkeys));
	notify_client(s);
}

static void
op_exists(struct pc_sworker *w, struct pc_session *s, struct pc_eslot *es, struct pc_req_slot *rs,
	  uint32_t slot, uint32_t seq, uint32_t nkeys, uint64_t deadline_ns)
{
	uint64_t bits[PC_REQ_MAX_KEYS / 64] = {0};
	unsigned int nmiss = 0;
	unsigned int lead;
	unsigned int i;

	lead = pc_store_exists_burst(w->ss->st, w->kp, nkeys, w->present);
	for (i = 0; i < nkeys; i++) {
		if (w->present[i]) {
			bit_set(bits, i);
		} else {
			es->rmap[nmiss++] = (uint8_t)i;
		}
	}
	if (nmiss > 0 && w->fetch != NULL) {
		memcpy(es->pending, bits, sizeof(bits));
		es->nkeys = (uint16_t)nkeys;
		es->nheld = 0;
		if (remote_start(w, s, es, slot, seq, PC_OP_EXISTS, nmiss, deadline_ns)) {
			return;
		}
		es->nkeys = 0;
	}
	memcpy(rs->present, bits, sizeof(bits));
	complete(w, s, slot, seq, 0, lead);
}

static void
op_delete(struct pc_sworker *w, struct pc_session *s, struct pc_req_slot *rs, uint32_t slot,
	  uint32_t seq, uint32_t nkeys)
{
	unsigned int i;
	uint32_t n = 0;

	for (i = 0; i < nkeys; i++) {
		int rc = pc_store_delete(w->ss->st, w->ci, &w->keys[i]);

		rs->keys[i].result = rc;
		n += rc == 0;
	}
	complete(w, s, slot, seq, 0, n);
}

static void
op_stats(struct pc_sworker *w, struct pc_session *s, struct pc_req_slot *rs, uint32_t slot,
	 uint32_t seq)
{
	struct pc_store_stats ps;
	struct pc_sessions_stats ss;
	struct pc_engine_stats es = {0};

	pc_store_get_stats(w->ss->st, &ps);
	pc_sessions_get_stats(w->ss, &ss);
	es.segment_size = ps.segment_size;
	es.bytes_used = ps.bytes_used;
	es.pages = ps.pages;
	es.sets = ps.sets;
	es.set_dedup = ps.set_dedup;
	es.set_nospace = ps.set_nospace;
	es.set_aborted = ps.set_aborted;
	for (unsigned int i = 0; i < w->ss->nworkers; i++) {
		struct pc_fetch_stats fs;

		if (w->ss->workers[i]->fetch != NULL) {
			pc_fetch_get_stats(w->ss->workers[i]->fetch, &fs);
			es.remote_hits += fs.hits;
			es.remote_bytes += fs.bytes;
		}
	}
	es.gets = ps.gets;
	/* The store counts a key read from another node as its miss. */
	es.get_hits = ps.get_hits + es.remote_hits;
	es.get_misses = ps.get_misses > es.remote_hits ? ps.get_misses - es.remote_hits : 0;
	es.get_bad_header = ps.get_bad_header;
	es.exists_keys = ps.exists_keys;
	es.deletes = ps.deletes;
	es.evictions = ps.evictions;
	es.quarantined = ps.quarantined;
	es.pinned = ps.pinned;
	es.sessions = ss.open;
	es.bad_requests = ss.bad_requests;
	memcpy(rs->arena, &es, sizeof(es));
	complete(w, s, slot, seq, 0, 0);
}

static void clear_on_control(void *arg);

static void
op_clear(struct pc_sworker *w, struct pc_session *s, struct pc_eslot *es, uint32_t slot,
	 uint32_t seq)
{
	struct clear_msg *m;

	/* A CLEAR scans the whole segment on the control lcore: one at a time per session. */
	if (s->clearing) {
		complete(w, s, slot, seq, -EBUSY, 0);
		return;
	}
	m = rte_zmalloc(NULL, sizeof(*m), 0);
	if (m == NULL) {
		complete(w, s, slot, seq, -ENOMEM, 0);
		return;
	}
	m->ss = w->ss;
	m->w = w;
	m->sid = s->id;
	m->slot = slot;
	m->seq = seq;
	m->ns_len = s->ns_len;
	memcpy(m->ns, s->ns, s->ns_len);
	if (pc_lcore_send(w->ss->control, clear_on_control, m) != 0) {
		rte_free(m);
		complete(w, s, slot, seq, -EBUSY, 0);
		return;
	}
	es->state = ES_CLEARING;
	es->seq = seq;
	s->clearing = true;
}

static struct pc_session *
worker_find(struct pc_sworker *w, uint32_t sid)
{
	unsigned int i;

	for (i = 0; i < w->nsess; i++) {
		if (w->list[i]->id == sid) {
			return w->list[i];
		}
	}
	return NULL;
}

/* On the worker: the control lcore finished a CLEAR. */
static void
clear_done_on_worker(void *arg)
{
	struct clear_msg *m = arg;
	struct pc_sworker *w = m->w;
	struct pc_session *s = worker_find(w, m->sid);

	if (s != NULL && m->slot < s->nslots) {
		struct pc_eslot *es = &s->eslots[m->slot];

		s->clearing = false;
		if (es->state == ES_CLEARING && es->seq == m->seq) {
			es->state = ES_IDLE;
			complete(w, s, m->slot, m->seq, 0, (uint32_t)PC_MIN(m->count, UINT32_MAX));
			notify_client(s);
		}
	}
	rte_free(m);
}

/* On the control lcore: run a CLEAR, send the count back. */
static void
clear_on_control(void *arg)
{
	struct clear_msg *m = arg;

	m->count = pc_store_clear_ns(m->ss->st, m->ss->control_ci, m->ns, m->ns_len);
	PC_LOG(INFO, engine, "session %u: cleared %" PRIu64 " page(s) of its namespace", m->sid,
	       m->count);
	while (pc_lcore_send(m->w->lc, clear_done_on_worker, m) != 0) {
		rte_pause();
	}
}

/* Run one submission. */
static void
handle_request(struct pc_sworker *w, struct pc_session *s, const struct pc_ring_elem *e,
	       uint64_t now_tsc, uint64_t *now_ns)
{
	struct pc_req_head head;
	struct pc_req_slot *rs;
	struct pc_eslot *es;
	bool bad;
	uint32_t slot = e->slot;
	uint32_t seq = e->seq;
	uint32_t op;
	uint32_t nkeys;
	uint64_t deadline_ns;
	uint64_t give_up_tsc;

	if (slot >= s->nslots) {
		/* No slot to answer in: dropped and counted. */
		w->stats.bad_requests++;
		return;
	}
	rs = req_slot(s, slot);
	es = &s->eslots[slot];
	if (es->state == ES_PARKED || es->state == ES_CLEARING || es->state == ES_REMOTE) {
		/* Resubmitted while still running: the client broke the protocol. */
		w->stats.bad_requests++;
		return;
	}
	bad = pc_req_head_decode(rs, &head) != 0;
	op = head.op;
	nkeys = head.nkeys;
	deadline_ns = head.deadline_ns;

	/* A new request on a slot releases what its previous one held, except its own commit/ack.
	 */
	if ((es->state == ES_HOLD_ALLOC && op != PC_OP_SET_COMMIT) ||
	    (es->state == ES_HOLD_PIN && op != PC_OP_GET_DONE)) {
		eslot_release(w, es);
	}
	if (bad) {
		w->stats.bad_requests++;
		complete(w, s, slot, seq, -EINVAL, 0);
		return;
	}
	if (*now_ns == 0) {
		*now_ns = pc_lcore_mono_ns(w->lc, now_tsc);
	}
	give_up_tsc = now_tsc + w->ss->lease_tsc;
	if (deadline_ns != 0) {
		if (deadline_ns <= *now_ns) {
			complete(w, s, slot, seq, -ETIMEDOUT, 0);
			return;
		}
		if (deadline_ns - *now_ns < w->ss->lease_ns) {
			give_up_tsc = now_tsc + ns_to_tsc(deadline_ns - *now_ns);
		}
	}
	switch (op) {
	case PC_OP_SET_ALLOC:
	case PC_OP_GET:
	case PC_OP_EXISTS:
	case PC_OP_DELETE:
		if (parse_keys(w, s, rs, nkeys) != 0) {
			w->stats.bad_requests++;
			complete(w, s, slot, seq, -EINVAL, 0);
			return;
		}
		break;
	default:
		break;
	}
	switch (op) {
	case PC_OP_NOP:
		complete(w, s, slot, seq, 0, 0);
		break;
	case PC_OP_SET_ALLOC:
		es->seq = seq;
		op_set_alloc(w, s, es, rs, slot, nkeys, head.prefix_depth, give_up_tsc, now_tsc);
		break;
	case PC_OP_SET_COMMIT:
		op_set_commit(w, s, es, rs, slot, seq);
		break;
	case PC_OP_GET:
		op_get(w, s, es, rs, slot, seq, nkeys, deadline_ns, now_tsc);
		break;
	case PC_OP_GET_DONE: {
		uint32_t n = es->state == ES_HOLD_PIN ? es->nheld : 0;

		eslot_release(w, es);
		complete(w, s, slot, seq, 0, n);
		break;
	}
	case PC_OP_EXISTS:
		op_exists(w, s, es, rs, slot, seq, nkeys, deadline_ns);
		break;
	case PC_OP_DELETE:
		op_delete(w, s, rs, slot, seq, nkeys);
		break;
	case PC_OP_STATS:
		op_stats(w, s, rs, slot, seq);
		break;
	case PC_OP_CLEAR:
		op_clear(w, s, es, slot, seq);
		break;
	default:
		w->stats.bad_requests++;
		complete(w, s, slot, seq, -EINVAL, 0);
		break;
	}
}

static int
session_poll(struct pc_sworker *w, struct pc_session *s, uint64_t now_tsc, uint64_t *now_ns)
{
	struct pc_ring_elem elems[PC_SESS_BURST];
	int n;
	int i;

	if (s->broken) {
		return 0;
	}
	n = sring_dequeue(&s->sq, elems, PC_SESS_BURST);
	if (n < 0) {
		PC_LOG(WARNING, engine,
		       "session %u (pid %d): submission ring corrupted; the session is no longer "
		       "served",
		       s->id, (int)s->pid);
		w->stats.bad_requests++;
		s->broken = true;
		return 1;
	}
	for (i = 0; i < n; i++) {
		handle_request(w, s, &elems[i], now_tsc, now_ns);
	}
	if (s->notify) {
		notify_client(s);
	}
	return n;
}

/* Retry parked SET_ALLOCs; give up on those past their deadline. */
static int
retry_parked(struct pc_sworker *w, uint64_t now_tsc)
{
	uint64_t epoch = pc_store_space_epoch(w->ss->st);
	bool space = epoch != w->parked_epoch;
	unsigned int i;
	uint32_t j;
	int work = 0;

	w->parked_epoch = epoch;
	for (i = 0; i < w->nsess && w->nparked > 0; i++) {
		struct pc_session *s = w->list[i];

		for (j = 0; j < s->nslots; j++) {
			struct pc_eslot *es = &s->eslots[j];
			bool last;

			if (es->state != ES_PARKED) {
				continue;
			}
			last = now_tsc >= es->deadline_tsc;
			if (!space && !last) {
				continue;
			}
			if (set_alloc_try(w, s, es, req_slot(s, j), last) || last) {
				w->nparked--;
				set_alloc_finish(w, s, es, j, now_tsc);
				work++;
			}
		}
		if (s->notify) {
			notify_client(s);
		}
	}
	return work;
}

/*
 * Release pins whose lease ran out (a client that never acknowledges a GET).
 * Pages allocated for a SET have no lease: the client may still be copying
 * into them (stalled, not dead), and a slot freed under it would take its
 * late bytes into another key's page. They go when the client moves on (its
 * next request on the slot) or hangs up, and are bounded by its slots.
 */
static void
sweep_leases(struct pc_sworker *w, uint64_t now_tsc)
{
	unsigned int i;
	uint32_t j;

	for (i = 0; i < w->nsess; i++) {
		struct pc_session *s = w->list[i];

		for (j = 0; j < s->nslots; j++) {
			struct pc_eslot *es = &s->eslots[j];

			if (es->state == ES_HOLD_PIN && now_tsc >= es->deadline_tsc) {
				eslot_release(w, es);
				w->stats.expired_holds++;
			}
		}
	}
}

static int
worker_poll(void *arg, uint64_t now_tsc)
{
	struct pc_sworker *w = arg;
	uint64_t now_ns = 0;
	unsigned int i;
	int work = 0;

	if (PC_UNLIKELY(w->polls_store && !w->registered)) {
		if (pc_store_reader_register(w->ss->st, w->ci) != 0) {
			return 0;
		}
		w->registered = true;
	}
	if (w->polls_store) {
		work += pc_store_poll(w->ss->st, w->ci, now_tsc);
	}
	for (i = 0; i < w->nsess; i++) {
		work += session_poll(w, w->list[i], now_tsc, &now_ns);
	}
	if (w->nparked > 0) {
		work += retry_parked(w, now_tsc);
		/* Space is made on the control lcore, which rings no bell here. */
		pc_lcore_stay_awake(w->lc);
	}
	if (now_tsc >= w->next_sweep_tsc) {
		w->next_sweep_tsc = now_tsc + pc_us_to_tsc(PC_SESS_SWEEP_US);
		sweep_leases(w, now_tsc);
	}
	return work;
}

/*
 * Doze hook (pc_doze_fn): before the worker sleeps, ask every client to
 * ring the doorbell after its next submission, then look at the rings once
 * more (the client enqueues, then reads sq_doze: one of the two sees the
 * other). After the sleep, clients stop ringing.
 */
static bool
worker_doze(void *arg, bool dozing)
{
	struct pc_sworker *w = arg;
	unsigned int i;

	for (i = 0; i < w->nsess; i++) {
		__atomic_store_n(&w->list[i]->hdr->sq_doze, dozing ? 1u : 0u, __ATOMIC_RELAXED);
	}
	if (!dozing) {
		return true;
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (i = 0; i < w->nsess; i++) {
		const struct pc_sring *sq = &w->list[i]->sq;

		if (!w->list[i]->broken &&
		    __atomic_load_n(&sq->r->prod.tail, __ATOMIC_RELAXED) != sq->head) {
			return false;
		}
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* Control <-> worker hand-over                                        */
/* ------------------------------------------------------------------ */

static void
released_on_control(void *arg)
{
	struct pc_session *s = arg;

	control_free_session(s->ss, s);
}

static void
attach_on_worker(void *arg)
{
	struct pc_session *s = arg;
	struct pc_sworker *w = s->owner;

	w->list[w->nsess++] = s;
}

static void
detach_on_worker(void *arg)
{
	struct pc_session *s = arg;
	struct pc_sworker *w = s->owner;
	unsigned int i;
	uint32_t j;

	for (j = 0; j < s->nslots; j++) {
		eslot_release(w, &s->eslots[j]);
	}
	for (i = 0; i < w->nsess; i++) {
		if (w->list[i] == s) {
			w->list[i] = w->list[--w->nsess];
			break;
		}
	}
	while (pc_lcore_send(w->ss->control, released_on_control, s) != 0) {
		rte_pause();
	}
}

/* ------------------------------------------------------------------ */
/* Control side: socket, hello, life cycle                             */
/* ------------------------------------------------------------------ */

static void
control_free_session(struct pc_sessions *ss, struct pc_session *s)
{
	struct pc_session **pp;

	for (pp = &ss->list; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			ss->nconn--;
			break;
		}
	}
	if (s->sock >= 0) {
		epoll_ctl(ss->epfd, EPOLL_CTL_DEL, s->sock, NULL);
		close(s->sock);
	}
	if (s->region != NULL) {
		munmap(s->region, s->region_size);
	}
	if (s->region_fd >= 0) {
		close(s->region_fd);
	}
	if (s->state != SS_HELLO) {
		atomic_fetch_sub(&ss->open, 1);
		ss->closed++;
		PC_LOG(INFO, engine, "session %u (pid %d) closed", s->id, (int)s->pid);
	}
	rte_free(s);
}

static struct pc_sworker *
least_loaded_worker(struct pc_sessions *ss)
{
	struct pc_sworker *best = ss->workers[0];
	unsigned int i;

	for (i = 1; i < ss->nworkers; i++) {
		if (ss->workers[i]->nsess < best->nsess) {
			best = ss->workers[i];
		}
	}
	return best;
}

static void
send_refusal(struct pc_sessions *ss, struct pc_session *s, int status, const char *why)
{
	struct pc_hello_reply r = {
		.magic = PC_HELLO_REPLY_MAGIC,
		.version = PC_PROTO_VERSION,
		.status = status,
	};

	snprintf(r.msg, sizeof(r.msg), "%s", why);
	if (send(s->sock, &r, sizeof(r), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		PC_LOG(DEBUG, engine, "refusal not sent: %s", strerror(errno));
	}
	ss->hello_refused++;
	PC_LOG(WARNING, engine, "client (pid %d) refused: %s", (int)s->pid, why);
}

/* Build the session region: header, submission ring, slots. Returns 0 or -errno. */
static int
build_region(struct pc_sessions *ss, struct pc_session *s, struct pc_hello_reply *r)
{
	uint32_t ring_count = rte_align32pow2(2 * s->nslots + 2);
	size_t ring_bytes =
		RTE_ALIGN_CEIL(rte_ring_get_memsize_elem(PC_RING_ELEM_SIZE, ring_count), 64);
	size_t sq_off = RTE_ALIGN_CEIL(sizeof(struct pc_session_hdr), 64);
	size_t slots_off = RTE_ALIGN_CEIL(sq_off + ring_bytes, 4096);
	size_t size =
		RTE_ALIGN_CEIL(slots_off + (size_t)s->nslots * sizeof(struct pc_req_slot), 4096);
	char name[RTE_RING_NAMESIZE];
	int rc;

	snprintf(name, sizeof(name), "peercache-session-%u", s->id);
	s->region_fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (s->region_fd < 0) {
		return -errno;
	}
	if (ftruncate(s->region_fd, (off_t)size) != 0) {
		return -errno;
	}
	/* The client must not shrink it under the engine (a SIGBUS here). */
	if (fcntl(s->region_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
		return -errno;
	}
	s->region = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, s->region_fd, 0);
	if (s->region == MAP_FAILED) {
		s->region = NULL;
		return -errno;
	}
	s->region_size = size;
	s->hdr = s->region;
	s->hdr->magic = PC_SESSION_MAGIC;
	s->hdr->version = PC_PROTO_VERSION;
	s->hdr->session_id = s->id;
	s->hdr->nslots = s->nslots;
	s->hdr->engine_incarnation = ss->incarnation;
	snprintf(name, sizeof(name), "pcsq%u", s->id);
	rc = sring_init(&s->sq, (uint8_t *)s->region + sq_off, name, ring_count,
			RING_F_MP_RTS_ENQ | RING_F_SC_DEQ);
	if (rc != 0) {
		return rc;
	}
	s->slots = (uint8_t *)s->region + slots_off;

	r->magic = PC_HELLO_REPLY_MAGIC;
	r->version = PC_PROTO_VERSION;
	r->status = 0;
	r->session_id = s->id;
	r->engine_incarnation = ss->incarnation;
	r->segment_size = pc_store_segment_size(ss->st);
	r->region_size = size;
	r->nslots = s->nslots;
	r->slot_size = sizeof(struct pc_req_slot);
	r->sq_off = (uint32_t)sq_off;
	r->slots_off = (uint32_t)slots_off;
	r->ring_size = ring_count;
	return 0;
}

static int
send_welcome(struct pc_sessions *ss, struct pc_session *s, const struct pc_hello_reply *r)
{
	int fds[3] = {pc_store_segment_fd(ss->st), s->region_fd, pc_lcore_wake_fd(s->owner->lc)};
	size_t nfds = (r->flags & PC_HELLO_F_DOORBELL) ? 3 : 2;
	union {
		char buf[CMSG_SPACE(sizeof(fds))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = (void *)r, .iov_len = sizeof(*r)};
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = CMSG_SPACE(nfds * sizeof(int)),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	memset(u.buf, 0, sizeof(u.buf));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
	memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	if (sendmsg(s->sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(*r)) {
		return -errno;
	}
	return 0;
}

/*
 * Whether the first message queued on the socket is an admin request. Only
 * peeks: the request stays queued for the admin module, which reads it
 * whole (up to PC_ADMIN_REQ_MAX bytes, more than a hello's buffer).
 */
static bool
is_admin_hello(const struct pc_session *s)
{
	uint32_t magic = 0;

	return recv(s->sock, &magic, sizeof(magic), MSG_DONTWAIT | MSG_PEEK) ==
		       (ssize_t)sizeof(magic) &&
	       magic == PC_ADMIN_MAGIC;
}

/* The admin module takes the socket; the session (never opened) goes without closing it. */
static void
hand_to_admin(struct pc_sessions *ss, struct pc_session *s)
{
	int fd = s->sock;

	epoll_ctl(ss->epfd, EPOLL_CTL_DEL, fd, NULL);
	s->sock = -1;
	control_free_session(ss, s);
	ss->admin_fn(ss->admin_arg, fd);
}

/*
 * The hello arrived (or the socket has something to say). Returns the
 * session (it may have moved while growing), or NULL when the connection
 * was refused and freed.
 */
static struct pc_session *
on_hello(struct pc_sessions *ss, struct pc_session *s)
{
	struct pc_hello buf;
	struct pc_hello_info h;
	struct pc_hello_reply r = {0};
	struct pc_session *grown;
	ssize_t n;
	uint32_t nslots;
	char why[96];
	int rc;

	if (ss->admin_fn != NULL && is_admin_hello(s)) {
		hand_to_admin(ss, s);
		return NULL;
	}
	n = recv(s->sock, &buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		return s;
	}
	if (n <= 0) {
		goto err_free;
	}
	rc = pc_hello_decode(&buf, PC_MIN((size_t)n, sizeof(buf)), &h, why, sizeof(why));
	if (rc == 0 && (size_t)n > sizeof(buf)) {
		rc = -EPROTO;
		snprintf(why, sizeof(why), "hello of %zd bytes, expected %zu", n, sizeof(buf));
	}
	if (rc != 0) {
		send_refusal(ss, s, rc, why);
		goto err_free;
	}
	if (ss->st == NULL) {
		send_refusal(ss, s, -ENOTSUP,
			     "this engine is discovery-only (role meta): no page pool");
		goto err_free;
	}
	nslots = h.nslots;
	if (atomic_load(&ss->open) >= (uint64_t)ss->cfg->max_sessions) {
		snprintf(why, sizeof(why), "max_sessions (%d) reached", ss->cfg->max_sessions);
		send_refusal(ss, s, -EUSERS, why);
		goto err_free;
	}
	/* Grow the session to hold its slots' engine state. */
	grown = rte_realloc(s, sizeof(*s) + nslots * sizeof(struct pc_eslot), 64);
	if (grown == NULL) {
		send_refusal(ss, s, -ENOMEM, "engine out of memory");
		goto err_free;
	}
	if (grown != s) {
		struct pc_session **pp;

		for (pp = &ss->list; *pp != NULL; pp = &(*pp)->next) {
			if (*pp == s) {
				*pp = grown;
				break;
			}
		}
		s = grown;
		{
			struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = s};

			/* epoll must not keep the old pointer: refuse rather than risk it. */
			if (epoll_ctl(ss->epfd, EPOLL_CTL_MOD, s->sock, &ev) != 0) {
				goto err_free;
			}
		}
	}
	memset(s->eslots, 0, nslots * sizeof(struct pc_eslot));
	s->nslots = nslots;
	s->ns_len = h.ns_len;
	memcpy(s->ns, h.ns, h.ns_len);
	rc = build_region(ss, s, &r);
	if (rc != 0) {
		snprintf(why, sizeof(why), "cannot build the session region: %s", strerror(-rc));
		send_refusal(ss, s, rc, why);
		goto err_free;
	}
	s->owner = least_loaded_worker(ss);
	r.flags = h.flags & PC_HELLO_F_DOORBELL;
	rc = send_welcome(ss, s, &r);
	if (rc != 0) {
		PC_LOG(WARNING, engine, "session %u: reply not sent: %s", s->id, strerror(-rc));
		goto err_free;
	}
	s->state = SS_ATTACH;
	atomic_fetch_add(&ss->open, 1);
	ss->opened++;
	PC_LOG(INFO, engine,
	       "session %u opened: pid %d (hello said %u), namespace \"%.*s\", %u slots, "
	       "worker lcore %u",
	       s->id, (int)s->pid, h.pid, (int)s->ns_len, s->ns, s->nslots,
	       pc_lcore_id(s->owner->lc));
	return s;

err_free:
	control_free_session(ss, s);
	return NULL;
}

/*
 * accept() failed with the connection still queued (EMFILE, ENFILE,
 * ENOBUFS, ENOMEM): the listen socket stays readable, and the control
 * lcore, which polls its epoll set again at once while events come, would
 * spin on it and log every pass. Mute it for PC_SESS_ACCEPT_PAUSE_US
 * (control_housekeeping unmutes it); queued clients wait, they are not
 * refused. One warning per PC_SESS_ACCEPT_LOG_US.
 */
static void
accept_pause(struct pc_sessions *ss, uint64_t now_tsc, int err)
{
	struct epoll_event ev = {.events = 0, .data.ptr = NULL};

	ss->accept_failed++;
	if (now_tsc >= ss->accept_log_tsc) {
		PC_LOG(WARNING, engine,
		       "accept on %s: %s; new clients wait, accepts retried every %u ms (%" PRIu64
		       " failures so far)",
		       ss->path, strerror(err), (unsigned int)(PC_SESS_ACCEPT_PAUSE_US / 1000),
		       ss->accept_failed);
		ss->accept_log_tsc = now_tsc + pc_us_to_tsc(PC_SESS_ACCEPT_LOG_US);
	}
	if (epoll_ctl(ss->epfd, EPOLL_CTL_MOD, ss->listen_fd, &ev) == 0) {
		ss->accept_resume_tsc = now_tsc + pc_us_to_tsc(PC_SESS_ACCEPT_PAUSE_US);
	}
}

static void
accept_resume(struct pc_sessions *ss, uint64_t now_tsc)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};

	if (ss->accept_resume_tsc == 0 || now_tsc < ss->accept_resume_tsc) {
		return;
	}
	if (epoll_ctl(ss->epfd, EPOLL_CTL_MOD, ss->listen_fd, &ev) == 0) {
		ss->accept_resume_tsc = 0;
	}
}

static void
accept_clients(struct pc_sessions *ss, uint64_t now_tsc)
{
	for (;;) {
		int fd = accept4(ss->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};
		struct pc_session *s;
		struct ucred cred;
		socklen_t clen = sizeof(cred);

		if (fd < 0) {
			if (errno == ECONNABORTED) {
				continue; /* the client hung up first */
			}
			if (errno != EAGAIN && errno != EINTR) {
				accept_pause(ss, now_tsc, errno);
			}
			return;
		}
		/* Connections that have not said hello yet are capped too. */
		if (ss->nconn >= (unsigned int)ss->cfg->max_sessions + PC_SESS_PENDING_MAX) {
			ss->hello_refused++;
			close(fd);
			continue;
		}
		s = rte_zmalloc(NULL, sizeof(*s), 64);
		if (s == NULL) {
			close(fd);
			continue;
		}
		s->sock = fd;
		s->region_fd = -1;
		s->ss = ss;
		s->state = SS_HELLO;
		s->accept_tsc = now_tsc;
		s->id = ++ss->next_id;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0) {
			s->pid = cred.pid;
		}
		ev.data.ptr = s;
		if (epoll_ctl(ss->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
			close(fd);
			rte_free(s);
			continue;
		}
		s->next = ss->list;
		ss->list = s;
		ss->nconn++;
	}
}

/* Anything after the hello is either a hang-up or a protocol error: both end the session. */
static void
on_session_event(struct pc_sessions *ss, struct pc_session *s, uint32_t events)
{
	char buf[64];
	ssize_t n;

	if (s->state == SS_HELLO) {
		if (!(events & EPOLLIN)) {
			control_free_session(ss, s);
		} else {
			on_hello(ss, s);
		}
		return;
	}
	if (s->state == SS_DETACH || s->state == SS_DETACHING) {
		return;
	}
	n = recv(s->sock, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR) && !(events & (EPOLLHUP | EPOLLRDHUP))) {
		return;
	}
	if (n > 0) {
		PC_LOG(WARNING, engine, "session %u: unexpected bytes on the socket; closing",
		       s->id);
	}
	epoll_ctl(ss->epfd, EPOLL_CTL_DEL, s->sock, NULL);
	if (s->state == SS_ATTACH) {
		/* Never reached its worker: nothing else refers to it. */
		control_free_session(ss, s);
		return;
	}
	s->state = SS_DETACH;
}

/* Queue attach/detach messages that could not be sent earlier; expire silent connections. */
static void
control_housekeeping(struct pc_sessions *ss, uint64_t now_tsc)
{
	struct pc_session *s = ss->list;

	accept_resume(ss, now_tsc);
	while (s != NULL) {
		struct pc_session *next = s->next;

		switch (s->state) {
		case SS_HELLO:
			if (now_tsc - s->accept_tsc > pc_us_to_tsc(PC_SESS_HELLO_US)) {
				PC_LOG(WARNING, engine, "client (pid %d) sent no hello; closed",
				       (int)s->pid);
				control_free_session(ss, s);
			}
			break;
		case SS_ATTACH:
			if (pc_lcore_send(s->owner->lc, attach_on_worker, s) == 0) {
				s->state = SS_OPEN;
			}
			break;
		case SS_DETACH:
			if (pc_lcore_send(s->owner->lc, detach_on_worker, s) == 0) {
				s->state = SS_DETACHING;
			}
			break;
		default:
			break;
		}
		s = next;
	}
}

static int
control_poll(void *arg, uint64_t now_tsc)
{
	struct pc_sessions *ss = arg;
	struct epoll_event evs[PC_SESS_EPOLL_EVENTS];
	int n;
	int i;

	if (now_tsc < ss->next_epoll_tsc) {
		return 0;
	}
	n = epoll_wait(ss->epfd, evs, PC_SESS_EPOLL_EVENTS, 0);
	/* A handshake is a few events in a row: look again at once while they come. */
	ss->next_epoll_tsc = n > 0 ? 0 : now_tsc + pc_us_to_tsc(PC_SESS_EPOLL_US);
	for (i = 0; i < n; i++) {
		if (evs[i].data.ptr == NULL) {
			accept_clients(ss, now_tsc);
		} else {
			on_session_event(ss, evs[i].data.ptr, evs[i].events);
		}
	}
	control_housekeeping(ss, now_tsc);
	return n > 0 ? n : 0;
}

/* mkdir -p of the socket's directory. */
static int
make_parent_dirs(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *p;

	snprintf(dir, sizeof(dir), "%s", path);
	p = strrchr(dir, '/');
	if (p == NULL || p == dir) {
		return 0;
	}
	*p = '\0';
	for (p = dir + 1; *p != '\0'; p++) {
		if (*p == '/') {
			*p = '\0';
			if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
				return -errno;
			}
			*p = '/';
		}
	}
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		return -errno;
	}
	return 0;
}

static int
bind_socket(struct pc_sessions *ss)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	int rc;

	if (strlen(ss->cfg->engine_socket) >= sizeof(sa.sun_path)) {
		PC_LOG(ERR, engine, "engine_socket %s is too long", ss->cfg->engine_socket);
		return -ENAMETOOLONG;
	}
	snprintf(ss->path, sizeof(ss->path), "%s", ss->cfg->engine_socket);
	memcpy(sa.sun_path, ss->path, strlen(ss->path) + 1);
	rc = make_parent_dirs(ss->path);
	if (rc != 0) {
		PC_LOG(ERR, engine, "cannot create the directory of %s: %s", ss->path,
		       strerror(-rc));
		return rc;
	}
	ss->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ss->listen_fd < 0) {
		return -errno;
	}
	if (bind(ss->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int probe;

		if (errno != EADDRINUSE) {
			rc = -errno;
			PC_LOG(ERR, engine, "cannot bind %s: %s", ss->path, strerror(-rc));
			return rc;
		}
		/* A socket file exists: in use by a live engine, or left by a dead one? */
		probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			PC_LOG(ERR, engine,
			       "engine_socket %s is in use by another engine; stop it or give this "
			       "one another engine_socket",
			       ss->path);
			return -EADDRINUSE;
		}
		if (probe >= 0) {
			close(probe);
		}
		PC_LOG(INFO, engine, "replacing the stale socket file %s", ss->path);
		unlink(ss->path);
		if (bind(ss->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			rc = -errno;
			PC_LOG(ERR, engine, "cannot bind %s: %s", ss->path, strerror(-rc));
			return rc;
		}
	}
	ss->bound = true;
	if (listen(ss->listen_fd, 128) != 0) {
		return -errno;
	}
	ss->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ss->epfd < 0) {
		return -errno;
	}
	if (epoll_ctl(ss->epfd, EPOLL_CTL_ADD, ss->listen_fd, &ev) != 0) {
		return -errno;
	}
	return 0;
}

struct pc_sessions *
pc_sessions_create(const struct pc_config *cfg, struct pc_runtime *rt, struct pc_store *st)
{
	struct pc_sessions *ss = rte_zmalloc(NULL, sizeof(*ss), 64);
	unsigned int i;
	int rc;

	if (ss == NULL) {
		PC_LOG(ERR, engine, "no memory for the session server");
		return NULL;
	}
	ss->cfg = cfg;
	ss->rt = rt;
	ss->st = st;
	ss->listen_fd = -1;
	ss->epfd = -1;
	ss->control = pc_runtime_control(rt);
	/* Without a page store there is nothing for a worker to serve. */
	ss->nworkers = st != NULL ? pc_runtime_worker_count(rt) : 0;
	ss->incarnation = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
	ss->lease_ns = (uint64_t)(cfg->request_timeout * 1e9);
	ss->lease_tsc = ns_to_tsc(ss->lease_ns);
	if (ss->nworkers > 0) {
		ss->workers = rte_zmalloc(NULL, ss->nworkers * sizeof(struct pc_sworker *), 0);
		if (ss->workers == NULL) {
			goto err_destroy;
		}
	}
	for (i = 0; i < ss->nworkers; i++) {
		struct pc_sworker *w = rte_zmalloc(NULL, sizeof(*w), 64);

		if (w == NULL) {
			goto err_destroy;
		}
		ss->workers[i] = w;
		w->ss = ss;
		w->ci = i;
		w->lc = pc_runtime_worker(rt, i);
		/* The control lcore polls the store itself when it also runs the workers. */
		w->polls_store = !pc_lcore_is_control(w->lc);
		w->list = rte_zmalloc(NULL, (size_t)cfg->max_sessions * sizeof(struct pc_session *),
				      0);
		if (w->list == NULL) {
			goto err_destroy;
		}
		w->poller = pc_lcore_poller_register(w->lc, "sessions", worker_poll, w);
		if (w->poller == NULL || pc_lcore_doze_hook_add(w->lc, worker_doze, w) != 0) {
			goto err_destroy;
		}
	}
	if (ss->nworkers > 0) {
		ss->control_ci = pc_lcore_is_control(ss->workers[0]->lc) ? 0 : ss->nworkers;
	}
	rc = bind_socket(ss);
	if (rc != 0) {
		PC_LOG(ERR, engine, "client sessions: %s", strerror(-rc));
		goto err_destroy;
	}
	ss->ctl_poller = pc_lcore_poller_register(ss->control, "session-accept", control_poll, ss);
	if (ss->ctl_poller == NULL) {
		goto err_destroy;
	}
	/*
	 * A connecting client, a hello or a hang-up ends the control lcore's
	 * idle sleep (adaptive): a new client waits at most the epoll
	 * interval, not a whole sleep.
	 */
	if (pc_lcore_wait_fd_add(ss->control, ss->epfd) != 0) {
		goto err_destroy;
	}
	ss->waits = true;
	if (st == NULL) {
		PC_LOG(INFO, engine, "admin connections at %s (no page pool: sessions refused)",
		       ss->path);
	} else {
		PC_LOG(INFO, engine,
		       "clients connect at %s (up to %d sessions, request timeout %.3f s)",
		       ss->path, cfg->max_sessions, cfg->request_timeout);
	}
	return ss;

err_destroy:
	pc_sessions_destroy(ss);
	return NULL;
}

void
pc_sessions_destroy(struct pc_sessions *ss)
{
	unsigned int i;

	if (ss == NULL) {
		return;
	}
	/* The lcores are stopped: release every session's pages from here. */
	while (ss->list != NULL) {
		struct pc_session *s = ss->list;

		if (s->state == SS_OPEN || s->state == SS_DETACH || s->state == SS_DETACHING) {
			uint32_t j;

			for (j = 0; j < s->nslots; j++) {
				eslot_release(s->owner, &s->eslots[j]);
			}
		}
		if (s->hdr != NULL) {
			__atomic_store_n(&s->hdr->closing, 1, __ATOMIC_RELEASE);
		}
		control_free_session(ss, s);
	}
	if (ss->waits) {
		pc_lcore_wait_fd_del(ss->control, ss->epfd);
	}
	if (ss->ctl_poller != NULL) {
		pc_lcore_poller_unregister(ss->control, ss->ctl_poller);
	}
	for (i = 0; ss->workers != NULL && i < ss->nworkers; i++) {
		struct pc_sworker *w = ss->workers[i];

		if (w == NULL) {
			continue;
		}
		if (w->poller != NULL) {
			pc_lcore_poller_unregister(w->lc, w->poller);
		}
		if (w->registered) {
			pc_store_reader_unregister(ss->st, w->ci);
		}
		rte_free(w->list);
		rte_free(w);
	}
	rte_free(ss->workers);
	if (ss->epfd >= 0) {
		close(ss->epfd);
	}
	if (ss->listen_fd >= 0) {
		close(ss->listen_fd);
	}
	if (ss->bound) {
		unlink(ss->path);
	}
	rte_free(ss);
}

void
pc_sessions_set_admin(struct pc_sessions *ss, pc_sessions_admin_fn fn, void *arg)
{
	ss->admin_fn = fn;
	ss->admin_arg = arg;
}

void
pc_sessions_set_fetch(struct pc_sessions *ss, unsigned int worker, struct pc_fetch *f)
{
	if (ss != NULL && worker < ss->nworkers) {
		ss->workers[worker]->fetch = f;
	}
}

void
pc_sessions_get_stats(const struct pc_sessions *ss, struct pc_sessions_stats *stats)
{
	unsigned int i;

	memset(stats, 0, sizeof(*stats));
	stats->open = atomic_load(&((struct pc_sessions *)ss)->open);
	stats->opened = ss->opened;
	stats->closed = ss->closed;
	stats->hello_refused = ss->hello_refused;
	stats->accept_failed = ss->accept_failed;
	for (i = 0; i < ss->nworkers; i++) {
		const struct pc_sworker *w = ss->workers[i];

		stats->requests += w->stats.requests;
		stats->bad_requests += w->stats.bad_requests;
		stats->expired_holds += w->stats.expired_holds;
		stats->parked += w->stats.parked;
		stats->remote_waits += w->stats.remote_waits;
	}
}
