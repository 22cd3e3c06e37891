/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libpeercache: the client side of common/pc_session_proto.h.
 *
 * Connection. A struct pc_conn is one engine session: the socket, the two
 * mappings and the client-private state of its request slots. The client
 * holds one behind a writer-preferring rwlock: every call takes it shared
 * for its whole duration; a call that finds the session broken (socket hung
 * up, engine closing, or every slot lost to a silent engine) drops it and
 * takes it exclusive to swap in a new session, which it gets only once the
 * calls still using the old one have returned (they notice `broken` within
 * a millisecond). Nothing is unmapped under a running call.
 *
 * Slots. A thread takes a free slot (a bitmap under the session mutex: one
 * lock per request, nothing per key), fills the request and enqueues
 * {slot, seq}. Client-private state per slot: FREE, OWNED (a thread fills
 * or reads it), INFLIGHT (submitted, its owner waits), CANCELLED (its owner
 * gave up: timeout or engine death) and DETACHED (a GET_DONE nobody waits
 * for); the last three are `busy`: the engine owes them a completion. A
 * completion is the engine storing the request's seq into the slot's
 * done_seq; only a busy slot's is looked at, and only its current seq
 * counts. A CANCELLED or DETACHED slot becomes FREE only when its completion
 * arrives: until then the engine may still be reading or writing it.
 *
 * Waiting. Completions are looked for by whichever waiting thread holds the
 * `poller` role (leader/followers): it spins a few microseconds on the busy
 * slots' done_seq, then sleeps on the region's cq_futex (a shared futex,
 * cq_waiters counted around the sleep) and every millisecond checks the
 * socket and `closing`. It dispatches every completion it finds, its own
 * or another thread's, and bumps the private event word `evt`; the other
 * waiters sleep on `evt`, so a completion found for them is never a lost
 * wake-up, and the leader's leaving wakes one of them to take over.
 *
 * Timeouts. Each engine request (up to 128 keys) gets one deadline, now +
 * the client's timeout when its keys are gathered; it bounds the wait for a
 * free slot and the round trip, and is written into the slot for the
 * engine. SET_COMMIT gets a fresh one, after the copies. A silent or dead
 * engine therefore fails a call within about one timeout (two if it stops
 * between a SET's two phases, plus a reconnect attempt's own timeout); a
 * call moving many pages may take longer in total, since the requests that
 * succeed and the copies are not bounded by it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <rte_pause.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "page.h"
#include "pc_common.h"
#include "pc_session_proto.h"
#include "peercache.h"

#ifndef PC_VERSION
#define PC_VERSION "0.0.0"
#endif

#define PC_EXPORT __attribute__((visibility("default")))

#define PC_DEFAULT_SOCKET     "/tmp/peercache/engine.sock"
#define PC_DEFAULT_TIMEOUT_MS 5000u

#define PC_NS_PER_S         1000000000ull
#define PC_NS_PER_MS        1000000ull
#define PC_SPIN_NS          10000ull /* leader spins this long before sleeping */
#define PC_SPIN_CLOCK_EVERY 16u      /* spins between clock readings */
/* A GET of this much payload or more goes in parts, copied out while the rest travel. */
#define PC_GET_PART_BYTES (4ull << 20)
#define PC_GET_PARTS_MAX  4
#define PC_LIVENESS_NS    PC_NS_PER_MS        /* socket/closing check period while waiting */
#define PC_LEADER_NAP     PC_NS_PER_MS        /* longest sleep on cq_futex */
#define PC_FOLLOWER_NAP   (10 * PC_NS_PER_MS) /* longest sleep on evt (woken on every event) */

/* Sanity caps on what a hello reply may ask us to map. */
#define PC_SEGMENT_SIZE_MAX (1ull << 46)
#define PC_REGION_SIZE_MAX  (1ull << 30)
#define PC_RING_SIZE_MAX    (1u << 16)

#define PC_READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))

_Static_assert(PC_CLIENT_KEY_MAX == PC_KEY_MAX, "key limits agree");
_Static_assert(PC_CLIENT_NS_MAX == PC_NS_MAX, "namespace limits agree");
_Static_assert(PC_CLIENT_BATCH_MAX == PC_REQ_MAX_KEYS, "batch limits agree");
_Static_assert(PC_CLIENT_DEDUP == PC_R_DEDUP, "dedup result agrees");
_Static_assert(PC_SESSION_SLOTS_MAX <= 32, "free slots fit one 32-bit mask");
_Static_assert(sizeof(struct pc_engine_stats) <= PC_REQ_ARENA_SIZE, "stats fit the arena");

enum pc_failpoint {
	PC_FP_NONE = 0,
	PC_FP_BEFORE_COMMIT, /* SIGKILL after the SET copies, before SET_COMMIT */
	PC_FP_MID_GET,       /* SIGKILL after GET completed, before GET_DONE */
};

enum pc_slot_state {
	PC_SLOT_FREE = 0,
	PC_SLOT_OWNED,
	PC_SLOT_INFLIGHT,
	PC_SLOT_CANCELLED,
	PC_SLOT_DETACHED,
};

enum pc_wait_for {
	PC_WAIT_DONE, /* the slot's completion */
	PC_WAIT_FREE, /* any free slot */
};

struct pc_slot_ctl {
	uint32_t seq;   /* of the request in flight; completions must match it */
	uint32_t done;  /* INFLIGHT's completion arrived (read without the lock) */
	uint32_t state; /* enum pc_slot_state; under conn->lock */
};

struct pc_conn {
	int fd;
	int doorbell; /* the worker's eventfd, or -1 (an engine that gave none) */
	uint8_t *seg;
	uint64_t seg_size;
	uint8_t *region;
	uint64_t region_size;
	struct pc_session_hdr *hdr;
	struct rte_ring *sq;
	uint8_t *slots;
	uint32_t slot_size;
	uint32_t nslots;
	uint32_t session_id;
	uint64_t incarnation;

	uint32_t broken; /* the session is dead: every call on it fails fast */
	uint32_t next_seq;
	uint32_t poller;    /* a thread is looking for completions */
	uint32_t evt;       /* private futex: bumped on every dispatch or hand-off */
	uint32_t followers; /* threads sleeping on evt */

	pthread_mutex_t lock; /* changes of free_mask, busy_mask and ctl[].state/seq */
	uint32_t free_mask;   /* atomic: read without the lock as a hint */
	uint32_t busy_mask;   /* atomic: INFLIGHT, CANCELLED or DETACHED (awaiting done_seq) */
	struct pc_slot_ctl ctl[PC_SESSION_SLOTS_MAX];
};

struct pc_client {
	pthread_rwlock_t lock; /* shared: a call; exclusive: swapping conn */
	struct pc_conn *conn;  /* NULL while disconnected */
	char path[sizeof(((struct sockaddr_un *)NULL)->sun_path)];
	char ns[PC_NS_MAX];
	uint16_t ns_len;
	int failpoint;
	uint32_t timeout_ms;
	uint64_t reconnects;
	uint64_t timeouts;
};

/* Keys of one engine request, gathered before a slot is taken. */
struct pc_batch {
	unsigned int n;
	uint32_t arena_used;
	uint32_t depth;
	unsigned int idx[PC_REQ_MAX_KEYS]; /* the caller's index of request key j */
	const char *key[PC_REQ_MAX_KEYS];
	uint16_t klen[PC_REQ_MAX_KEYS];
	size_t iov0[PC_REQ_MAX_KEYS];  /* first segment of page j in iov[] */
	uint32_t len[PC_REQ_MAX_KEYS]; /* payload bytes (SET/GET) */
};

/* ---- small helpers ---- */

static void PC_PRINTF(1, 2) client_log(const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "peercache: %s\n", buf);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * PC_NS_PER_S + (uint64_t)ts.tv_nsec;
}

static struct timespec
ns_to_ts(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / PC_NS_PER_S),
			      .tv_nsec = (long)(ns % PC_NS_PER_S)};

	return ts;
}

/*
 * A monotonic deadline as a CLOCK_REALTIME timespec, for the timed rwlock
 * calls (pthread_rwlock_clock*lock would take CLOCK_MONOTONIC, but sanitizers
 * do not know them). A wall-clock step during the wait only stretches or
 * shortens that one wait.
 */
static struct timespec
realtime_deadline(uint64_t deadline)
{
	struct timespec rt;
	uint64_t now = now_ns();

	clock_gettime(CLOCK_REALTIME, &rt);
	return ns_to_ts((uint64_t)rt.tv_sec * PC_NS_PER_S + (uint64_t)rt.tv_nsec +
			(deadline > now ? deadline - now : 0));
}

static void
futex_wait(uint32_t *addr, uint32_t val, uint64_t ns, bool shared)
{
	struct timespec ts = ns_to_ts(ns);

	syscall(SYS_futex, addr, shared ? FUTEX_WAIT : FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

static void
futex_wake_all(uint32_t *addr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static uint64_t
client_timeout_ns(const struct pc_client *c)
{
	return (uint64_t)__atomic_load_n(&c->timeout_ms, __ATOMIC_RELAXED) * PC_NS_PER_MS;
}

/* A per-key result from the engine, as this library's contract allows it. */
static int
result_sanitize(int32_t r, bool dedup_ok)
{
	if (r == 0 || (dedup_ok && r == PC_R_DEDUP)) {
		return r;
	}
	if (r < 0 && r >= -4095) {
		return r;
	}
	return -EIO;
}

/* A key's length, or -EINVAL for NULL, empty or longer than PC_KEY_MAX. */
static int
key_len(const char *key)
{
	size_t len;

	if (key == NULL) {
		return -EINVAL;
	}
	len = strnlen(key, PC_KEY_MAX + 1);
	if (len == 0 || len > PC_KEY_MAX) {
		return -EINVAL;
	}
	return (int)len;
}

/* The payload bytes of one page's segments, or -EINVAL / -EMSGSIZE. */
static int64_t
payload_len(const struct pc_iov *iov, unsigned int niov)
{
	uint64_t sum = 0;

	for (unsigned int s = 0; s < niov; s++) {
		if (iov[s].len == 0) {
			continue;
		}
		if (iov[s].base == NULL) {
			return -EINVAL;
		}
		if (iov[s].len > PC_PAGE_PAYLOAD_MAX || sum + iov[s].len > PC_PAGE_PAYLOAD_MAX) {
			return -EMSGSIZE;
		}
		sum += iov[s].len;
	}
	return sum == 0 ? -EMSGSIZE : (int64_t)sum;
}

static int
failpoint_parse(const char *s)
{
	if (s == NULL || s[0] == '\0') {
		return PC_FP_NONE;
	}
	if (strcmp(s, "before_commit") == 0) {
		return PC_FP_BEFORE_COMMIT;
	}
	if (strcmp(s, "mid_get") == 0) {
		return PC_FP_MID_GET;
	}
	client_log("PEERCACHE_FAILPOINT=%.64s is not a failpoint; ignored", s);
	return PC_FP_NONE;
}

/* ---- session set-up ---- */

/* What is wrong with a hello reply on its own, or NULL. */
static const char *
reply_check(const struct pc_hello_reply *r)
{
	uint64_t slots_end;

	if (r->magic != PC_HELLO_REPLY_MAGIC) {
		return "bad reply magic";
	}
	if (r->status != 0) {
		return "refused";
	}
	if (r->version != PC_PROTO_VERSION) {
		return "protocol version mismatch";
	}
	if (r->segment_size < PC_PAGE_HDR_SIZE || r->segment_size > PC_SEGMENT_SIZE_MAX) {
		return "bad segment size";
	}
	if (r->region_size < sizeof(struct pc_session_hdr) || r->region_size > PC_REGION_SIZE_MAX) {
		return "bad region size";
	}
	if (r->nslots == 0 || r->nslots > PC_SESSION_SLOTS_MAX) {
		return "bad slot count";
	}
	if (r->slot_size < sizeof(struct pc_req_slot) || r->slot_size % 64 != 0) {
		return "bad slot size";
	}
	if (r->sq_off % 64 != 0 || r->slots_off % 64 != 0) {
		return "misaligned region offset";
	}
	if (r->ring_size < r->nslots || r->ring_size > PC_RING_SIZE_MAX) {
		return "bad ring size";
	}
	slots_end = (uint64_t)r->slots_off + (uint64_t)r->nslots * r->slot_size;
	if (r->slots_off < sizeof(struct pc_session_hdr) || slots_end > r->region_size) {
		return "slots outside the region";
	}
	return NULL;
}

static bool
ranges_overlap(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1)
{
	return a0 < b1 && b0 < a1;
}

/* Check the submission ring's header made by the engine; *end gets the end of its memory. */
static const char *
ring_check(const struct pc_conn *k, uint32_t off, uint32_t ring_size, uint64_t *end)
{
	const struct rte_ring *r = (const struct rte_ring *)(k->region + off);
	uint32_t size, mask, cap;
	enum rte_ring_sync_type st;

	if (off < sizeof(struct pc_session_hdr) ||
	    (uint64_t)off + sizeof(struct rte_ring) > k->region_size) {
		return "ring outside the region";
	}
	size = PC_READ_ONCE(r->size);
	mask = PC_READ_ONCE(r->mask);
	cap = PC_READ_ONCE(r->capacity);
	if (size == 0 || size > PC_RING_SIZE_MAX || (size & (size - 1)) != 0 || mask != size - 1 ||
	    cap > mask || cap < k->nslots || (ring_size != size && ring_size != cap)) {
		return "bad ring geometry";
	}
	*end = (uint64_t)off + sizeof(struct rte_ring) + (uint64_t)size * PC_RING_ELEM_SIZE;
	if (*end > k->region_size) {
		return "ring outside the region";
	}
	/* Our threads enqueue concurrently. */
	st = PC_READ_ONCE(r->prod.sync_type);
	if (st != RTE_RING_SYNC_MT && st != RTE_RING_SYNC_MT_RTS && st != RTE_RING_SYNC_MT_HTS) {
		return "ring not multi-thread safe on the client side";
	}
	return NULL;
}

/* Check the mapped region against the reply. */
static const char *
region_check(struct pc_conn *k, const struct pc_hello_reply *r)
{
	const struct pc_session_hdr *h = k->hdr;
	uint64_t hdr_end = sizeof(struct pc_session_hdr);
	uint64_t slots_end = (uint64_t)r->slots_off + (uint64_t)r->nslots * r->slot_size;
	uint64_t sq_end;
	const char *why;

	if (PC_READ_ONCE(h->magic) != PC_SESSION_MAGIC ||
	    PC_READ_ONCE(h->version) != PC_PROTO_VERSION) {
		return "bad session header";
	}
	if (PC_READ_ONCE(h->session_id) != r->session_id || PC_READ_ONCE(h->nslots) != r->nslots ||
	    PC_READ_ONCE(h->engine_incarnation) != r->engine_incarnation) {
		return "session header disagrees with the reply";
	}
	why = ring_check(k, r->sq_off, r->ring_size, &sq_end);
	if (why != NULL) {
		return why;
	}
	if (ranges_overlap(r->sq_off, sq_end, r->slots_off, slots_end) ||
	    ranges_overlap(0, hdr_end, r->sq_off, sq_end)) {
		return "region parts overlap";
	}
	return NULL;
}

static void
conn_destroy(struct pc_conn *k)
{
	if (k == NULL) {
		return;
	}
	if (k->region != NULL) {
		munmap(k->region, k->region_size);
	}
	if (k->seg != NULL) {
		munmap(k->seg, k->seg_size);
	}
	if (k->doorbell >= 0) {
		close(k->doorbell);
	}
	if (k->fd >= 0) {
		close(k->fd);
	}
	pthread_mutex_destroy(&k->lock);
	free(k);
}

/* Map the two descriptors of an accepted hello; closes them. */
static int
conn_map(struct pc_conn *k, const struct pc_hello_reply *r, int seg_fd, int region_fd)
{
	struct stat st;
	const char *why;
	void *p;
	int rc = -EPROTO;

	if (fstat(seg_fd, &st) != 0 || (uint64_t)st.st_size < r->segment_size) {
		client_log("engine's segment is smaller than announced");
		goto out;
	}
	if (fstat(region_fd, &st) != 0 || (uint64_t)st.st_size < r->region_size) {
		client_log("engine's session region is smaller than announced");
		goto out;
	}
	p = mmap(NULL, r->segment_size, PROT_READ | PROT_WRITE, MAP_SHARED, seg_fd, 0);
	if (p == MAP_FAILED) {
		rc = -errno;
		client_log("mmap segment (%llu bytes): %s", (unsigned long long)r->segment_size,
			   strerror(errno));
		goto out;
	}
	k->seg = p;
	k->seg_size = r->segment_size;
	p = mmap(NULL, r->region_size, PROT_READ | PROT_WRITE, MAP_SHARED, region_fd, 0);
	if (p == MAP_FAILED) {
		rc = -errno;
		client_log("mmap session region: %s", strerror(errno));
		goto out;
	}
	k->region = p;
	k->region_size = r->region_size;
	k->hdr = (struct pc_session_hdr *)k->region;
	k->nslots = r->nslots;
	why = region_check(k, r);
	if (why != NULL) {
		client_log("bad session region from the engine: %s", why);
		goto out;
	}
	k->sq = (struct rte_ring *)(k->region + r->sq_off);
	k->slots = k->region + r->slots_off;
	k->slot_size = r->slot_size;
	k->session_id = r->session_id;
	k->incarnation = r->engine_incarnation;
	k->free_mask = r->nslots == 32 ? UINT32_MAX : (1u << r->nslots) - 1;
	rc = 0;
out:
	close(seg_fd);
	close(region_fd);
	return rc;
}

static int
sock_wait(int fd, short events, uint64_t deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};

	for (;;) {
		uint64_t now = now_ns();
		int rc;

		if (now >= deadline) {
			return -ETIMEDOUT;
		}
		rc = poll(&pfd, 1, (int)((deadline - now + PC_NS_PER_MS - 1) / PC_NS_PER_MS));
		if (rc > 0) {
			return 0;
		}
		if (rc < 0 && errno != EINTR) {
			return -errno;
		}
	}
}

static int
sock_connect(int fd, const char *path, uint64_t deadline)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t len = sizeof(int);
	int err = 0;

	memcpy(sa.sun_path, path, strlen(path) + 1);
	for (;;) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			return 0;
		}
		if (errno == EINTR) {
			continue;
		}
		if (errno == EAGAIN) { /* the engine's backlog is full */
			if (now_ns() >= deadline) {
				return -ETIMEDOUT;
			}
			usleep(1000);
			continue;
		}
		if (errno != EINPROGRESS) {
			return -errno;
		}
		break;
	}
	if (sock_wait(fd, POLLOUT, deadline) != 0) {
		return -ETIMEDOUT;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
		return -errno;
	}
	return -err;
}

/*
 * Receive the hello reply and its descriptors: the segment, the region and,
 * when the reply's flags say so, the doorbell. Extra descriptors are closed.
 */
static int
hello_recv(int fd, struct pc_hello_reply *reply, int fds[3], uint64_t deadline)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 8)];
	} cbuf;
	struct iovec iov = {.iov_base = reply, .iov_len = sizeof(*reply)};
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf.buf,
		.msg_controllen = sizeof(cbuf.buf),
	};
	int nfds = 0;
	int want;
	ssize_t n = -1;
	int rc;

	fds[0] = fds[1] = fds[2] = -1;
	for (;;) {
		rc = sock_wait(fd, POLLIN, deadline);
		if (rc != 0) {
			return rc;
		}
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
		if (n >= 0) {
			break;
		}
		if (errno != EINTR && errno != EAGAIN) {
			return -errno;
		}
	}
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
		size_t count;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
		    cm->cmsg_len < CMSG_LEN(0)) {
			continue;
		}
		count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < count; i++) {
			int got;

			memcpy(&got, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (nfds < 3) {
				fds[nfds] = got;
			} else {
				close(got);
			}
			nfds++;
		}
	}
	want = (reply->flags & PC_HELLO_F_DOORBELL) ? 3 : 2;
	if (n == 0) {
		rc = -ECONNRESET;
	} else if ((size_t)n != sizeof(*reply) || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		client_log("malformed hello reply (%zd bytes)", n);
		rc = -EPROTO;
	} else if (reply->status == 0 && nfds != want) {
		client_log("hello reply carries %d descriptors, not %d", nfds, want);
		rc = -EPROTO;
	} else {
		return 0;
	}
	for (int i = 0; i < 3; i++) {
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
	}
	return rc;
}

/* Open a new session; *out on success. Any thread, no lock needed. */
static int
conn_open(const struct pc_client *c, uint64_t timeout_ns, struct pc_conn **out)
{
	uint64_t deadline = now_ns() + timeout_ns;
	struct pc_hello hello = {
		.magic = PC_HELLO_MAGIC,
		.version = PC_PROTO_VERSION,
		.nslots = 0,
		.pid = (uint32_t)getpid(),
		.ns_len = c->ns_len,
		.flags = PC_HELLO_F_DOORBELL,
	};
	struct pc_hello_reply reply;
	struct pc_conn *k = NULL;
	const char *why;
	int fds[3];
	int rc;

	k = calloc(1, sizeof(*k));
	if (k == NULL) {
		return -ENOMEM;
	}
	k->doorbell = -1;
	if (pthread_mutex_init(&k->lock, NULL) != 0) {
		free(k);
		return -ENOMEM;
	}
	k->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (k->fd < 0) {
		rc = -errno;
		goto err_destroy;
	}
	rc = sock_connect(k->fd, c->path, deadline);
	if (rc != 0) {
		goto err_destroy;
	}
	memcpy(hello.ns, c->ns, c->ns_len);
	if (send(k->fd, &hello, sizeof(hello), MSG_NOSIGNAL) != (ssize_t)sizeof(hello)) {
		rc = errno == EPIPE || errno == ECONNRESET ? -ECONNRESET : -EIO;
		goto err_destroy;
	}
	memset(&reply, 0, sizeof(reply));
	rc = hello_recv(k->fd, &reply, fds, deadline);
	if (rc != 0) {
		goto err_destroy;
	}
	why = reply_check(&reply);
	if (why != NULL) {
		reply.msg[PC_HELLO_MSG_MAX - 1] = '\0';
		if (reply.magic == PC_HELLO_REPLY_MAGIC && reply.status != 0) {
			client_log("engine at %s refused the session (%d): %s", c->path,
				   reply.status,
				   reply.msg[0] != '\0' ? reply.msg : "no reason given");
		} else {
			client_log("bad hello reply from the engine at %s: %s", c->path, why);
		}
		for (int i = 0; i < 3; i++) {
			if (fds[i] >= 0) {
				close(fds[i]);
			}
		}
		rc = -EPROTO;
		goto err_destroy;
	}
	k->doorbell = fds[2];
	rc = conn_map(k, &reply, fds[0], fds[1]);
	if (rc != 0) {
		goto err_destroy;
	}
	*out = k;
	return 0;

err_destroy:
	conn_destroy(k);
	return rc;
}

/* ---- waiting and completions ---- */

static struct pc_req_slot *
slot_ptr(const struct pc_conn *k, uint32_t s)
{
	return (struct pc_req_slot *)(k->slots + (size_t)s * k->slot_size);
}

static void
evt_bump(struct pc_conn *k)
{
	__atomic_fetch_add(&k->evt, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&k->followers, __ATOMIC_SEQ_CST) != 0) {
		futex_wake_all(&k->evt);
	}
}

static bool
conn_is_broken(const struct pc_conn *k)
{
	return __atomic_load_n(&k->broken, __ATOMIC_ACQUIRE) != 0;
}

static void
conn_mark_broken(struct pc_conn *k)
{
	__atomic_store_n(&k->broken, 1, __ATOMIC_RELEASE);
	evt_bump(k);
}

/* -ENOTCONN (and the session marked broken) when the engine is gone or going. */
static int
conn_check_alive(struct pc_conn *k)
{
	struct pollfd pfd = {.fd = k->fd, .events = POLLIN | POLLRDHUP};

	if (conn_is_broken(k)) {
		return -ENOTCONN;
	}
	if (PC_READ_ONCE(k->hdr->closing) != 0 ||
	    (poll(&pfd, 1, 0) > 0 &&
	     (pfd.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL)) != 0)) {
		conn_mark_broken(k);
		return -ENOTCONN;
	}
	return 0;
}

/*
 * Dispatch every completion the engine has written (a busy slot whose
 * done_seq is the seq we submitted on it); returns how many. The first look
 * takes no lock: it reads one cache line per slot in flight.
 */
static unsigned int
conn_drain(struct pc_conn *k)
{
	uint32_t busy = __atomic_load_n(&k->busy_mask, __ATOMIC_ACQUIRE);
	uint32_t done = 0;
	unsigned int n = 0;

	for (uint32_t m = busy; m != 0; m &= m - 1) {
		uint32_t s = (uint32_t)__builtin_ctz(m);

		if (__atomic_load_n(&slot_ptr(k, s)->done_seq, __ATOMIC_ACQUIRE) ==
		    __atomic_load_n(&k->ctl[s].seq, __ATOMIC_RELAXED)) {
			done |= 1u << s;
		}
	}
	if (done == 0) {
		return 0;
	}
	pthread_mutex_lock(&k->lock);
	for (uint32_t m = done; m != 0; m &= m - 1) {
		uint32_t s = (uint32_t)__builtin_ctz(m);
		struct pc_slot_ctl *ctl = &k->ctl[s];

		__atomic_fetch_and(&k->busy_mask, ~(1u << s), __ATOMIC_RELAXED);
		switch (ctl->state) {
		case PC_SLOT_INFLIGHT:
			ctl->state = PC_SLOT_OWNED;
			__atomic_store_n(&ctl->done, 1, __ATOMIC_RELEASE);
			n++;
			break;
		case PC_SLOT_CANCELLED:
		case PC_SLOT_DETACHED:
			ctl->state = PC_SLOT_FREE;
			__atomic_fetch_or(&k->free_mask, 1u << s, __ATOMIC_RELAXED);
			n++;
			break;
		default:
			break; /* not awaiting a completion: the bit was stale */
		}
	}
	pthread_mutex_unlock(&k->lock);
	if (n > 0) {
		evt_bump(k);
	}
	return n;
}

static bool
wait_ready(struct pc_conn *k, enum pc_wait_for what, uint32_t s)
{
	if (what == PC_WAIT_DONE) {
		return __atomic_load_n(&k->ctl[s].done, __ATOMIC_ACQUIRE) != 0;
	}
	return __atomic_load_n(&k->free_mask, __ATOMIC_RELAXED) != 0;
}

/* The poller: dequeue for everyone until our condition holds. */
static int
conn_lead(struct pc_conn *k, enum pc_wait_for what, uint32_t s, uint64_t deadline)
{
	uint64_t start = 0;
	uint64_t last_check = 0;
	unsigned int spins = 0;

	for (;;) {
		uint64_t now, nap;
		uint32_t v;
		int rc;

		conn_drain(k);
		if (wait_ready(k, what, s)) {
			return 0;
		}
		if (conn_is_broken(k)) {
			return -ENOTCONN;
		}
		/* The clock costs more than a look at the slots: read it every few spins. */
		if (++spins < PC_SPIN_CLOCK_EVERY) {
			rte_pause();
			continue;
		}
		spins = 0;
		now = now_ns();
		if (start == 0) {
			start = last_check = now;
		}
		if (now - start < PC_SPIN_NS && now < deadline) {
			rte_pause();
			continue;
		}
		if (now >= deadline) {
			return -ETIMEDOUT;
		}
		if (now - last_check >= PC_LIVENESS_NS) {
			rc = conn_check_alive(k);
			if (rc != 0) {
				return rc;
			}
			last_check = now;
		}
		/*
		 * Sleep: waiters raised, then the word read, then the slots
		 * looked at once more. The engine writes done_seq, bumps the
		 * word, then reads cq_waiters: either we see the completion,
		 * or the word moved (futex_wait returns at once), or it wakes
		 * us. Spinning never reads the word, so completions do not
		 * bounce its line while nobody sleeps.
		 */
		nap = PC_MIN(deadline - now, PC_LEADER_NAP);
		__atomic_fetch_add(&k->hdr->cq_waiters, 1, __ATOMIC_SEQ_CST);
		v = __atomic_load_n(&k->hdr->cq_futex, __ATOMIC_SEQ_CST);
		conn_drain(k);
		if (!wait_ready(k, what, s)) {
			futex_wait(&k->hdr->cq_futex, v, nap, true);
		}
		__atomic_fetch_sub(&k->hdr->cq_waiters, 1, __ATOMIC_SEQ_CST);
	}
}

/*
 * Wait until the slot's completion is dispatched (PC_WAIT_DONE) or a slot
 * is free (PC_WAIT_FREE), or the deadline, or the engine's death.
 */
static int
conn_wait(struct pc_conn *k, enum pc_wait_for what, uint32_t s, uint64_t deadline)
{
	for (;;) {
		uint32_t g = __atomic_load_n(&k->evt, __ATOMIC_SEQ_CST);
		uint32_t idle = 0;
		uint64_t now;

		if (wait_ready(k, what, s)) {
			return 0;
		}
		if (conn_is_broken(k)) {
			return -ENOTCONN;
		}
		if (__atomic_load_n(&k->poller, __ATOMIC_RELAXED) == 0 &&
		    __atomic_compare_exchange_n(&k->poller, &idle, 1, false, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED)) {
			int rc = conn_lead(k, what, s, deadline);

			__atomic_store_n(&k->poller, 0, __ATOMIC_RELEASE);
			evt_bump(k); /* a follower takes over */
			return rc;
		}
		now = now_ns();
		if (now >= deadline) {
			return -ETIMEDOUT;
		}
		__atomic_fetch_add(&k->followers, 1, __ATOMIC_SEQ_CST);
		futex_wait(&k->evt, g, PC_MIN(deadline - now, PC_FOLLOWER_NAP), false);
		__atomic_fetch_sub(&k->followers, 1, __ATOMIC_SEQ_CST);
	}
}

/* ---- slots ---- */

/* Take a slot if one is free now (OWNED). */
static bool
slot_try_acquire(struct pc_conn *k, uint32_t *out)
{
	bool got = false;

	pthread_mutex_lock(&k->lock);
	uint32_t mask = __atomic_load_n(&k->free_mask, __ATOMIC_RELAXED);

	if (mask != 0) {
		uint32_t s = (uint32_t)__builtin_ctz(mask);

		__atomic_fetch_and(&k->free_mask, ~(1u << s), __ATOMIC_RELAXED);
		k->ctl[s].state = PC_SLOT_OWNED;
		*out = s;
		got = true;
	}
	pthread_mutex_unlock(&k->lock);
	return got;
}

/* Take a free slot (OWNED). A session whose every slot is lost is marked broken. */
static int
slot_acquire(struct pc_client *c, struct pc_conn *k, uint64_t deadline, uint32_t *out)
{
	for (;;) {
		bool lost = true;
		int rc;

		if (slot_try_acquire(k, out)) {
			return 0;
		}
		rc = conn_wait(k, PC_WAIT_FREE, 0, deadline);
		if (rc == 0) {
			continue;
		}
		if (rc == -ETIMEDOUT) {
			__atomic_fetch_add(&c->timeouts, 1, __ATOMIC_RELAXED);
			pthread_mutex_lock(&k->lock);
			for (uint32_t s = 0; s < k->nslots; s++) {
				uint32_t st = k->ctl[s].state;

				lost &= st == PC_SLOT_CANCELLED || st == PC_SLOT_DETACHED;
			}
			pthread_mutex_unlock(&k->lock);
			if (lost) {
				/* The engine answered none of them for a whole timeout. */
				conn_mark_broken(k);
			}
		}
		return rc;
	}
}

/* Give back an OWNED slot; CANCELLED or DETACHED ones wait for their completion. */
static void
slot_release(struct pc_conn *k, uint32_t s)
{
	bool freed = false;

	pthread_mutex_lock(&k->lock);
	if (k->ctl[s].state == PC_SLOT_OWNED) {
		k->ctl[s].state = PC_SLOT_FREE;
		__atomic_fetch_or(&k->free_mask, 1u << s, __ATOMIC_RELAXED);
		freed = true;
	}
	pthread_mutex_unlock(&k->lock);
	if (freed) {
		evt_bump(k);
		/*
		 * The leader may be waiting for a free slot too, asleep on the
		 * engine's futex word: wake it without touching the word.
		 */
		if (__atomic_load_n(&k->poller, __ATOMIC_SEQ_CST) != 0) {
			syscall(SYS_futex, &k->hdr->cq_futex, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
		}
	}
}

/*
 * After an enqueue: wake the worker if it may be asleep (adaptive idle
 * policy). The worker raises sq_doze, then looks at the ring; we enqueued,
 * then read sq_doze: with a full fence on both sides one of us sees the other.
 */
static void
doorbell_ring(struct pc_conn *k)
{
	uint64_t one = 1;

	if (k->doorbell < 0) {
		return;
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&k->hdr->sq_doze, __ATOMIC_RELAXED) != 0) {
		/* EAGAIN: the count is already non-zero, the worker wakes anyway. */
		(void)!write(k->doorbell, &one, sizeof(one));
	}
}

/* Enqueue the filled request of OWNED slot s: INFLIGHT, or DETACHED (and no longer ours). */
static int
slot_submit(struct pc_conn *k, uint32_t s, uint64_t deadline, bool detach)
{
	struct pc_req_slot *rs = slot_ptr(k, s);
	struct pc_ring_elem e = {.slot = s};

	/* Never the seq the slot last completed (a fresh slot's done_seq is 0). */
	do {
		e.seq = __atomic_fetch_add(&k->next_seq, 1, __ATOMIC_RELAXED);
	} while (e.seq == __atomic_load_n(&rs->done_seq, __ATOMIC_ACQUIRE));
	rs->seq = e.seq;
	rs->flags = 0;
	rs->deadline_ns = deadline;
	rs->status = 0;
	rs->count = 0;
	pthread_mutex_lock(&k->lock);
	__atomic_store_n(&k->ctl[s].seq, e.seq, __ATOMIC_RELAXED);
	__atomic_store_n(&k->ctl[s].done, 0, __ATOMIC_RELAXED);
	k->ctl[s].state = detach ? PC_SLOT_DETACHED : PC_SLOT_INFLIGHT;
	__atomic_fetch_or(&k->busy_mask, 1u << s, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&k->lock);
	if (rte_ring_enqueue_elem(k->sq, &e, PC_RING_ELEM_SIZE) == 0) {
		doorbell_ring(k);
		return 0;
	}
	/* Cannot happen with capacity >= nslots, unless the engine broke the ring. */
	pthread_mutex_lock(&k->lock);
	k->ctl[s].state = PC_SLOT_OWNED;
	__atomic_fetch_and(&k->busy_mask, ~(1u << s), __ATOMIC_RELAXED);
	pthread_mutex_unlock(&k->lock);
	if (detach) {
		slot_release(k, s);
	}
	return -EAGAIN;
}

/* Wait for submitted slot s's completion. On error the slot is CANCELLED unless still OWNED. */
static int
slot_wait(struct pc_client *c, struct pc_conn *k, uint32_t s, uint64_t deadline)
{
	int rc = conn_wait(k, PC_WAIT_DONE, s, deadline);

	if (rc == 0) {
		return 0;
	}
	pthread_mutex_lock(&k->lock);
	if (k->ctl[s].state == PC_SLOT_OWNED) {
		rc = 0; /* it completed as we gave up */
	} else {
		k->ctl[s].state = PC_SLOT_CANCELLED;
	}
	pthread_mutex_unlock(&k->lock);
	if (rc == -ETIMEDOUT) {
		__atomic_fetch_add(&c->timeouts, 1, __ATOMIC_RELAXED);
	}
	return rc;
}

/* One round trip on OWNED slot s. On error the slot is CANCELLED unless still OWNED. */
static int
slot_call(struct pc_client *c, struct pc_conn *k, uint32_t s, uint64_t deadline)
{
	int rc;

	rc = slot_submit(k, s, deadline, false);
	if (rc != 0) {
		return rc;
	}
	return slot_wait(c, k, s, deadline);
}

/* Write batch b's keys into slot rs's request part. */
static void
slot_fill_keys(struct pc_req_slot *rs, uint32_t op, const struct pc_batch *b, bool with_len)
{
	uint32_t off = 0;

	rs->op = op;
	rs->nkeys = b->n;
	rs->prefix_depth = b->depth;
	for (unsigned int j = 0; j < b->n; j++) {
		struct pc_req_key *rk = &rs->keys[j];

		memcpy(&rs->arena[off], b->key[j], b->klen[j]);
		rk->key_off = off;
		rk->key_len = b->klen[j];
		rk->pad = 0;
		rk->len = with_len ? b->len[j] : 0;
		rk->result = 0;
		rk->page_off = 0;
		rk->generation = 0;
		off += b->klen[j];
	}
}

/* ---- the connection behind a call ---- */

static int
client_reconnect(struct pc_client *c, uint64_t deadline)
{
	struct timespec abs = realtime_deadline(deadline);
	struct pc_conn *k = NULL;
	int rc;

	rc = pthread_rwlock_timedwrlock(&c->lock, &abs);
	if (rc != 0) {
		return -rc;
	}
	if (c->conn != NULL && !conn_is_broken(c->conn)) {
		pthread_rwlock_unlock(&c->lock);
		return 0; /* another thread did it */
	}
	conn_destroy(c->conn);
	c->conn = NULL;
	rc = conn_open(c, client_timeout_ns(c), &k);
	if (rc == 0) {
		c->conn = k;
		__atomic_fetch_add(&c->reconnects, 1, __ATOMIC_RELAXED);
	}
	pthread_rwlock_unlock(&c->lock);
	return rc == 0 ? 0 : -ENOTCONN;
}

/*
 * Take the connection for one call (the lock shared until client_leave);
 * reconnects a broken one. NULL with *rc = -ENOTCONN or -ETIMEDOUT.
 */
static struct pc_conn *
client_enter(struct pc_client *c, int *rc)
{
	uint64_t deadline = now_ns() + client_timeout_ns(c);
	struct timespec abs = realtime_deadline(deadline);

	for (int attempt = 0; attempt < 2; attempt++) {
		struct pc_conn *k;
		int err = pthread_rwlock_timedrdlock(&c->lock, &abs);

		if (err != 0) {
			*rc = -err;
			return NULL;
		}
		k = c->conn;
		if (k != NULL && !conn_is_broken(k)) {
			*rc = 0;
			return k;
		}
		pthread_rwlock_unlock(&c->lock);
		*rc = client_reconnect(c, deadline);
		if (*rc != 0) {
			return NULL;
		}
	}
	*rc = -ENOTCONN;
	return NULL;
}

static void
client_leave(struct pc_client *c)
{
	pthread_rwlock_unlock(&c->lock);
}

/* ---- operations on one request ---- */

/* Whether a page of len payload bytes at off lies in the segment. */
static bool
page_fits(const struct pc_conn *k, uint64_t off, uint64_t len)
{
	return off % 8 == 0 && off <= k->seg_size && k->seg_size - off >= PC_PAGE_HDR_SIZE &&
	       k->seg_size - off - PC_PAGE_HDR_SIZE >= len;
}

/*
 * Take a slot, fill it with batch b for op and run it. Returns 0 with slot
 * *s still ours (the caller releases it), or a transport error: after a
 * failed call every key of b holds the error and the slot is given back.
 */
static int
batch_start(struct pc_client *c, struct pc_conn *k, const struct pc_batch *b, uint32_t op,
	    bool with_len, uint32_t *s, int results[])
{
	uint64_t deadline = now_ns() + client_timeout_ns(c);
	int rc = slot_acquire(c, k, deadline, s);

	if (rc != 0) {
		return rc;
	}
	slot_fill_keys(slot_ptr(k, *s), op, b, with_len);
	rc = slot_call(c, k, *s, deadline);
	if (rc != 0) {
		for (unsigned int j = 0; j < b->n; j++) {
			results[b->idx[j]] = rc;
		}
		slot_release(k, *s);
	}
	return rc;
}

/* SET one batch; results of its keys filled. Returns 0 or a transport error. */
static int
set_batch(struct pc_client *c, struct pc_conn *k, const struct pc_batch *b,
	  const struct pc_iov iov[], const unsigned int niov[], int results[])
{
	uint8_t filled[PC_REQ_MAX_KEYS];
	struct pc_req_slot *rs;
	unsigned int nalloc = 0;
	int32_t status;
	uint32_t s;
	int rc;

	rc = batch_start(c, k, b, PC_OP_SET_ALLOC, true, &s, results);
	if (rc != 0) {
		return rc;
	}
	rs = slot_ptr(k, s);
	status = PC_READ_ONCE(rs->status);
	for (unsigned int j = 0; j < b->n; j++) {
		int32_t r = status < 0 ? status : PC_READ_ONCE(rs->keys[j].result);
		unsigned int i = b->idx[j];
		uint64_t off;
		uint8_t *dst;

		filled[j] = 0;
		if (r != 0) {
			results[i] = result_sanitize(r, true);
			rs->keys[j].result = -1;
			continue;
		}
		nalloc++;
		off = PC_READ_ONCE(rs->keys[j].page_off);
		if (!page_fits(k, off, b->len[j])) {
			results[i] = -EIO; /* the engine's offset is not in its segment */
			rs->keys[j].result = -1;
			continue;
		}
		dst = k->seg + off + PC_PAGE_HDR_SIZE;
		for (unsigned int v = 0; v < niov[i]; v++) {
			const struct pc_iov *seg = &iov[b->iov0[j] + v];

			if (seg->len != 0) {
				memcpy(dst, seg->base, seg->len);
				dst += seg->len;
			}
		}
		rs->keys[j].result = 0;
		filled[j] = 1;
	}
	if (nalloc == 0) {
		goto out;
	}
	if (c->failpoint == PC_FP_BEFORE_COMMIT) {
		raise(SIGKILL);
	}
	rs->op = PC_OP_SET_COMMIT;
	rc = slot_call(c, k, s, now_ns() + client_timeout_ns(c)); /* the copies took their time */
	if (rc != 0) {
		for (unsigned int j = 0; j < b->n; j++) {
			if (filled[j]) {
				results[b->idx[j]] = rc;
			}
		}
		goto out;
	}
	status = PC_READ_ONCE(rs->status);
	for (unsigned int j = 0; j < b->n; j++) {
		if (filled[j]) {
			int32_t r = status < 0 ? status : PC_READ_ONCE(rs->keys[j].result);

			results[b->idx[j]] = result_sanitize(r, true);
		}
	}
out:
	slot_release(k, s);
	return rc;
}

/*
 * Copy out the pages of GET part b, whose slot s has completed, checking
 * each page header after its copy; then unpin them without waiting (the
 * slot frees itself when GET_DONE completes).
 */
static void
get_finish(struct pc_client *c, struct pc_conn *k, const struct pc_batch *b, uint32_t s,
	   const struct pc_iov iov[], const unsigned int niov[], int results[])
{
	struct pc_req_slot *rs = slot_ptr(k, s);
	int32_t status = PC_READ_ONCE(rs->status);
	unsigned int pinned = 0;

	for (unsigned int j = 0; j < b->n; j++) {
		int32_t r = status < 0 ? status : PC_READ_ONCE(rs->keys[j].result);
		unsigned int i = b->idx[j];
		const struct pc_page_hdr *ph;
		uint64_t off, gen;
		const uint8_t *src;

		if (r != 0) {
			results[i] = result_sanitize(r, false);
			continue;
		}
		pinned++;
		off = PC_READ_ONCE(rs->keys[j].page_off);
		gen = PC_READ_ONCE(rs->keys[j].generation);
		if (PC_READ_ONCE(rs->keys[j].len) != b->len[j]) {
			results[i] = -EMSGSIZE;
			continue;
		}
		if (!page_fits(k, off, b->len[j])) {
			results[i] = -EIO;
			continue;
		}
		ph = (const struct pc_page_hdr *)(k->seg + off);
		src = k->seg + off + PC_PAGE_HDR_SIZE;
		for (unsigned int v = 0; v < niov[i]; v++) {
			const struct pc_iov *seg = &iov[b->iov0[j] + v];

			if (seg->len != 0) {
				memcpy(seg->base, src, seg->len);
				src += seg->len;
			}
		}
		/* The copy happened before these reads: a retire racing it shows here. */
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (PC_READ_ONCE(ph->magic) != PC_PAGE_MAGIC ||
		    PC_READ_ONCE(ph->generation) != gen) {
			results[i] = -EBADMSG;
			continue;
		}
		results[i] = 0;
	}
	if (pinned == 0) {
		slot_release(k, s);
		return;
	}
	rs->op = PC_OP_GET_DONE;
	(void)slot_submit(k, s, now_ns() + client_timeout_ns(c), true);
}

/* Keys [j0, j0 + n) of batch b as a batch of their own. */
static void
batch_slice(const struct pc_batch *b, unsigned int j0, unsigned int n, struct pc_batch *out)
{
	out->n = n;
	out->depth = b->depth + j0;
	out->arena_used = 0;
	for (unsigned int j = 0; j < n; j++) {
		out->idx[j] = b->idx[j0 + j];
		out->key[j] = b->key[j0 + j];
		out->klen[j] = b->klen[j0 + j];
		out->iov0[j] = b->iov0[j0 + j];
		out->len[j] = b->len[j0 + j];
		out->arena_used += b->klen[j0 + j];
	}
}

/*
 * How many parts a GET of batch b is sent in: one per PC_GET_PART_BYTES of
 * payload, at most PC_GET_PARTS_MAX and one per key.
 */
static unsigned int
get_parts(const struct pc_batch *b)
{
	uint64_t bytes = 0;

	for (unsigned int j = 0; j < b->n; j++) {
		bytes += b->len[j];
	}
	return (unsigned int)PC_MIN(PC_MIN(bytes / PC_GET_PART_BYTES, (uint64_t)PC_GET_PARTS_MAX),
				    (uint64_t)b->n);
}

/*
 * GET one batch; results filled. Returns 0 or a transport error. A large
 * batch goes in parts on as many slots as are free (consecutive keys, all
 * submitted at once) and each part is copied out as soon as it completes,
 * while the engine is still fetching the next ones: for pages read from
 * other nodes, the copy out of the landing slots overlaps the transfer
 * instead of following it.
 */
static int
get_batch(struct pc_client *c, struct pc_conn *k, const struct pc_batch *b,
	  const struct pc_iov iov[], const unsigned int niov[], int results[])
{
	uint64_t deadline = now_ns() + client_timeout_ns(c);
	struct pc_batch part[PC_GET_PARTS_MAX];
	uint32_t slot[PC_GET_PARTS_MAX];
	unsigned int want = get_parts(b);
	unsigned int np = 1;
	unsigned int j0 = 0;
	int first = 0;
	int rc;

	rc = slot_acquire(c, k, deadline, &slot[0]);
	if (rc != 0) {
		return rc;
	}
	while (np < want && slot_try_acquire(k, &slot[np])) {
		np++;
	}
	for (unsigned int p = 0; p < np; p++) {
		unsigned int n = (b->n - j0) / (np - p);

		batch_slice(b, j0, n, &part[p]);
		j0 += n;
		slot_fill_keys(slot_ptr(k, slot[p]), PC_OP_GET, &part[p], false);
	}
	for (unsigned int p = 0; p < np; p++) {
		rc = slot_submit(k, slot[p], deadline, false);
		if (rc == 0) {
			continue;
		}
		/* Not sent (the slot is OWNED again): neither is any later part. */
		for (unsigned int q = p; q < np; q++) {
			for (unsigned int j = 0; j < part[q].n; j++) {
				results[part[q].idx[j]] = rc;
			}
			slot_release(k, slot[q]);
		}
		first = rc;
		np = p;
		break;
	}
	for (unsigned int p = 0; p < np; p++) {
		rc = slot_wait(c, k, slot[p], deadline);
		if (rc != 0) {
			for (unsigned int j = 0; j < part[p].n; j++) {
				results[part[p].idx[j]] = rc;
			}
			slot_release(k, slot[p]);
			first = first != 0 ? first : rc;
			continue;
		}
		if (p == 0 && c->failpoint == PC_FP_MID_GET) {
			raise(SIGKILL);
		}
		get_finish(c, k, &part[p], slot[p], iov, niov, results);
	}
	return first;
}

/*
 * A request with no keys (or batch b's keys for EXISTS/DELETE). On 0,
 * *status and *count hold the response; the per-key part is handed to
 * `take` before the slot is released.
 */
typedef void (*pc_take_fn)(const struct pc_req_slot *rs, const struct pc_batch *b, void *arg);

static int
simple_call(struct pc_client *c, struct pc_conn *k, uint32_t op, const struct pc_batch *b,
	    int32_t *status, uint32_t *count, pc_take_fn take, void *arg)
{
	uint64_t deadline = now_ns() + client_timeout_ns(c);
	static const struct pc_batch empty;
	struct pc_req_slot *rs;
	uint32_t s;
	int rc;

	rc = slot_acquire(c, k, deadline, &s);
	if (rc != 0) {
		return rc;
	}
	rs = slot_ptr(k, s);
	slot_fill_keys(rs, op, b != NULL ? b : &empty, false);
	rc = slot_call(c, k, s, deadline);
	if (rc == 0) {
		*status = PC_READ_ONCE(rs->status);
		*count = PC_READ_ONCE(rs->count);
		if (*status < 0) {
			*status = result_sanitize(*status, false);
		} else if (take != NULL) {
			take(rs, b, arg);
		}
	}
	slot_release(k, s);
	return rc;
}

/* ---- batching ---- */

/* Whether key j fits batch b; if so it is added. */
static bool
batch_add(struct pc_batch *b, unsigned int i, const char *key, int klen, size_t iov0, uint32_t len)
{
	if (b->n == PC_REQ_MAX_KEYS || b->arena_used + (uint32_t)klen > PC_REQ_ARENA_SIZE) {
		return false;
	}
	b->idx[b->n] = i;
	b->key[b->n] = key;
	b->klen[b->n] = (uint16_t)klen;
	b->iov0[b->n] = iov0;
	b->len[b->n] = len;
	b->arena_used += (uint32_t)klen;
	b->n++;
	return true;
}

static void
batch_reset(struct pc_batch *b, uint32_t depth)
{
	b->n = 0;
	b->arena_used = 0;
	b->depth = depth;
}

static uint32_t
depth_at(uint32_t prefix_depth, unsigned int i)
{
	uint64_t d = (uint64_t)prefix_depth + i;

	return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

typedef int (*pc_batch_fn)(struct pc_client *c, struct pc_conn *k, const struct pc_batch *b,
			   const struct pc_iov iov[], const unsigned int niov[], int results[]);

/*
 * batch_set and batch_get: split into requests of consecutive valid keys
 * (an invalid one ends a request, so every key keeps its chain depth). fn
 * fills the results of every key of its request. A transport error stops
 * the call and is the result of every key not yet answered. Returns the
 * number of keys whose result is 0 or DEDUP, or -errno when a transport
 * error left none (then it is every key's result).
 */
static int
pages_call(struct pc_client *c, unsigned int n, const char *const keys[], const struct pc_iov iov[],
	   const unsigned int niov[], uint32_t prefix_depth, int results[], pc_batch_fn fn)
{
	struct pc_batch b;
	struct pc_conn *k = NULL;
	unsigned int next = n; /* first key not answered after a transport error */
	size_t iov_at = 0;
	int done = 0;
	int rc;

	if (c == NULL || results == NULL || n > INT_MAX ||
	    (n > 0 && (keys == NULL || iov == NULL || niov == NULL))) {
		for (unsigned int i = 0; results != NULL && i < n && n <= INT_MAX; i++) {
			results[i] = -EINVAL;
		}
		return -EINVAL;
	}
	if (n == 0) {
		return 0;
	}
	k = client_enter(c, &rc);
	if (k == NULL) {
		next = 0;
		goto out;
	}
	batch_reset(&b, prefix_depth);
	for (unsigned int i = 0; i < n; i++) {
		int klen = key_len(keys[i]);
		int64_t len = payload_len(&iov[iov_at], niov[i]);
		size_t at = iov_at;

		iov_at += niov[i];
		if (klen < 0 || len < 0) {
			results[i] = klen < 0 ? klen : (int)len;
			if (b.n > 0) {
				rc = fn(c, k, &b, iov, niov, results);
			}
			batch_reset(&b, depth_at(prefix_depth, i + 1));
		} else if (!batch_add(&b, i, keys[i], klen, at, (uint32_t)len)) {
			rc = fn(c, k, &b, iov, niov, results);
			batch_reset(&b, depth_at(prefix_depth, i));
			if (rc != 0) {
				next = i; /* key i was not sent */
				break;
			}
			batch_add(&b, i, keys[i], klen, at, (uint32_t)len);
		}
		if (rc != 0) {
			next = i + 1; /* key i has its own error */
			break;
		}
	}
	if (rc == 0 && b.n > 0) {
		rc = fn(c, k, &b, iov, niov, results);
	} else if (rc != 0 && b.n > 0) {
		next = b.idx[0]; /* a batch started but never sent */
	}
	client_leave(c);
out:
	for (unsigned int i = next; i < n; i++) {
		results[i] = rc;
	}
	for (unsigned int i = 0; i < n; i++) {
		done += results[i] == 0 || results[i] == PC_CLIENT_DEDUP;
	}
	if (rc != 0 && done == 0) {
		for (unsigned int i = 0; i < n; i++) {
			results[i] = rc;
		}
		return rc;
	}
	return done;
}

/* ---- the API ---- */

PC_EXPORT struct pc_client *
pc_client_connect(const char *socket_path, const char *ns, unsigned int timeout_ms, int *err)
{
	struct pc_client *c;
	pthread_rwlockattr_t attr;
	size_t len;
	int rc;

	if (socket_path == NULL || socket_path[0] == '\0') {
		socket_path = getenv("PEERCACHE_SOCKET");
	}
	if (socket_path == NULL || socket_path[0] == '\0') {
		socket_path = PC_DEFAULT_SOCKET;
	}
	if (ns == NULL) {
		ns = "";
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		rc = -ENOMEM;
		goto err;
	}
	len = strnlen(socket_path, sizeof(c->path));
	if (len >= sizeof(c->path)) {
		rc = -ENAMETOOLONG;
		goto err_free;
	}
	memcpy(c->path, socket_path, len + 1);
	len = strnlen(ns, PC_NS_MAX + 1);
	if (len > PC_NS_MAX) {
		rc = -ENAMETOOLONG;
		goto err_free;
	}
	memcpy(c->ns, ns, len);
	c->ns_len = (uint16_t)len;
	c->timeout_ms = timeout_ms != 0 ? timeout_ms : PC_DEFAULT_TIMEOUT_MS;
	c->failpoint = failpoint_parse(getenv("PEERCACHE_FAILPOINT"));
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	rc = -pthread_rwlock_init(&c->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	if (rc != 0) {
		goto err_free;
	}
	rc = conn_open(c, client_timeout_ns(c), &c->conn);
	if (rc != 0) {
		goto err_destroy_lock;
	}
	return c;

err_destroy_lock:
	pthread_rwlock_destroy(&c->lock);
err_free:
	free(c);
err:
	if (err != NULL) {
		*err = rc;
	}
	return NULL;
}

PC_EXPORT void
pc_client_close(struct pc_client *c)
{
	if (c == NULL) {
		return;
	}
	pthread_rwlock_wrlock(&c->lock);
	conn_destroy(c->conn);
	c->conn = NULL;
	pthread_rwlock_unlock(&c->lock);
	pthread_rwlock_destroy(&c->lock);
	free(c);
}

PC_EXPORT void
pc_client_set_timeout(struct pc_client *c, unsigned int timeout_ms)
{
	if (c != NULL && timeout_ms > 0) {
		__atomic_store_n(&c->timeout_ms, timeout_ms, __ATOMIC_RELAXED);
	}
}

PC_EXPORT int
pc_client_batch_set(struct pc_client *c, unsigned int n, const char *const keys[],
		    const struct pc_iov iov[], const unsigned int niov[], uint32_t prefix_depth,
		    int results[])
{
	return pages_call(c, n, keys, iov, niov, prefix_depth, results, set_batch);
}

PC_EXPORT int
pc_client_batch_get(struct pc_client *c, unsigned int n, const char *const keys[],
		    const struct pc_iov iov[], const unsigned int niov[], int results[])
{
	return pages_call(c, n, keys, iov, niov, 0, results, get_batch);
}

struct exists_arg {
	uint8_t *present;
	uint32_t lead;
};

static void
exists_take(const struct pc_req_slot *rs, const struct pc_batch *b, void *arg)
{
	struct exists_arg *a = arg;
	uint32_t count = PC_READ_ONCE(rs->count);

	a->lead = PC_MIN(count, b->n);
	if (a->present == NULL) {
		return;
	}
	for (unsigned int j = 0; j < b->n; j++) {
		uint64_t w = PC_READ_ONCE(rs->present[j / 64]);

		a->present[b->idx[j]] = (uint8_t)((w >> (j % 64)) & 1);
	}
}

PC_EXPORT int
pc_client_batch_exists(struct pc_client *c, unsigned int n, const char *const keys[],
		       uint8_t present[])
{
	struct pc_batch b;
	struct pc_conn *k = NULL;
	int lead = 0;
	int rc = 0;
	unsigned int i = 0;

	if (c == NULL || (n > 0 && keys == NULL) || n > INT_MAX) {
		return -EINVAL;
	}
	if (present != NULL) {
		memset(present, 0, n);
	}
	if (n == 0) {
		return 0;
	}
	k = client_enter(c, &rc);
	if (k == NULL) {
		return rc;
	}
	while (i < n) {
		struct exists_arg a = {.present = present};
		int32_t status;
		uint32_t count;
		int klen;

		batch_reset(&b, 0);
		/* A bad key is not present: the prefix ends before it. */
		while (i < n && (klen = key_len(keys[i])) > 0 &&
		       batch_add(&b, i, keys[i], klen, 0, 0)) {
			i++;
		}
		if (b.n == 0) {
			break;
		}
		rc = simple_call(c, k, PC_OP_EXISTS, &b, &status, &count, exists_take, &a);
		if (rc == 0 && status < 0) {
			rc = status;
		}
		if (rc != 0) {
			break;
		}
		lead += (int)a.lead;
		if (a.lead < b.n || i >= n || key_len(keys[i]) < 0) {
			break;
		}
	}
	client_leave(c);
	if (present != NULL && rc != 0) {
		/* Only the leading keys already established stay marked. */
		memset(present + lead, 0, n - (unsigned int)lead);
	}
	return rc != 0 && lead == 0 ? rc : lead;
}

struct delete_arg {
	int *results;
	int deleted;
};

static void
delete_take(const struct pc_req_slot *rs, const struct pc_batch *b, void *arg)
{
	struct delete_arg *a = arg;

	for (unsigned int j = 0; j < b->n; j++) {
		int r = result_sanitize(PC_READ_ONCE(rs->keys[j].result), false);

		a->deleted += r == 0;
		if (a->results != NULL) {
			a->results[b->idx[j]] = r;
		}
	}
}

/* DELETE one batch; returns 0 or a transport error. */
static int
delete_batch(struct pc_client *c, struct pc_conn *k, const struct pc_batch *b, struct delete_arg *a)
{
	int32_t status;
	uint32_t count;
	int rc;

	rc = simple_call(c, k, PC_OP_DELETE, b, &status, &count, delete_take, a);
	for (unsigned int j = 0; a->results != NULL && j < b->n; j++) {
		if (rc != 0 || status < 0) {
			a->results[b->idx[j]] = rc != 0 ? rc : status;
		}
	}
	return rc;
}

PC_EXPORT int
pc_client_delete(struct pc_client *c, unsigned int n, const char *const keys[], int results[])
{
	struct delete_arg a = {.results = results};
	unsigned int next = n;
	struct pc_batch b;
	struct pc_conn *k = NULL;
	int rc;

	if (c == NULL || (n > 0 && keys == NULL) || n > INT_MAX) {
		return -EINVAL;
	}
	if (n == 0) {
		return 0;
	}
	k = client_enter(c, &rc);
	if (k == NULL) {
		next = 0;
		goto out;
	}
	batch_reset(&b, 0);
	for (unsigned int i = 0; i < n; i++) {
		int klen = key_len(keys[i]);

		if (klen < 0) {
			if (results != NULL) {
				results[i] = klen;
			}
			continue;
		}
		if (!batch_add(&b, i, keys[i], klen, 0, 0)) {
			rc = delete_batch(c, k, &b, &a);
			batch_reset(&b, 0);
			batch_add(&b, i, keys[i], klen, 0, 0);
			if (rc != 0) {
				next = i;
				break;
			}
		}
	}
	if (rc == 0 && b.n > 0) {
		rc = delete_batch(c, k, &b, &a);
	}
	client_leave(c);
out:
	for (unsigned int i = next; results != NULL && i < n; i++) {
		results[i] = rc;
	}
	return rc != 0 && a.deleted == 0 ? rc : a.deleted;
}

PC_EXPORT long
pc_client_clear(struct pc_client *c)
{
	struct pc_conn *k = NULL;
	int32_t status = 0;
	uint32_t count = 0;
	int rc;

	if (c == NULL) {
		return -EINVAL;
	}
	k = client_enter(c, &rc);
	if (k == NULL) {
		return rc;
	}
	rc = simple_call(c, k, PC_OP_CLEAR, NULL, &status, &count, NULL, NULL);
	client_leave(c);
	if (rc != 0) {
		return rc;
	}
	return status < 0 ? status : (long)count;
}

static void
stats_take(const struct pc_req_slot *rs, const struct pc_batch *b, void *arg)
{
	(void)b;
	memcpy(arg, (const void *)rs->arena, sizeof(struct pc_engine_stats));
}

PC_EXPORT int
pc_client_stats(struct pc_client *c, struct pc_client_stats *stats)
{
	struct pc_engine_stats es;
	struct pc_conn *k = NULL;
	int32_t status = 0;
	uint32_t count;
	int rc;

	if (c == NULL || stats == NULL) {
		return -EINVAL;
	}
	memset(stats, 0, sizeof(*stats));
	stats->reconnects = __atomic_load_n(&c->reconnects, __ATOMIC_RELAXED);
	stats->timeouts = __atomic_load_n(&c->timeouts, __ATOMIC_RELAXED);
	k = client_enter(c, &rc);
	if (k == NULL) {
		return rc;
	}
	rc = simple_call(c, k, PC_OP_STATS, NULL, &status, &count, stats_take, &es);
	client_leave(c);
	if (rc == 0 && status < 0) {
		rc = status;
	}
	/* These may have moved during the call. */
	stats->reconnects = __atomic_load_n(&c->reconnects, __ATOMIC_RELAXED);
	stats->timeouts = __atomic_load_n(&c->timeouts, __ATOMIC_RELAXED);
	if (rc != 0) {
		return rc;
	}
	stats->segment_size = es.segment_size;
	stats->bytes_used = es.bytes_used;
	stats->pages = es.pages;
	stats->sets = es.sets;
	stats->set_dedup = es.set_dedup;
	stats->set_nospace = es.set_nospace;
	stats->set_aborted = es.set_aborted;
	stats->gets = es.gets;
	stats->get_hits = es.get_hits;
	stats->get_misses = es.get_misses;
	stats->get_bad_header = es.get_bad_header;
	stats->exists_keys = es.exists_keys;
	stats->deletes = es.deletes;
	stats->evictions = es.evictions;
	stats->quarantined = es.quarantined;
	stats->pinned = es.pinned;
	stats->sessions = es.sessions;
	stats->bad_requests = es.bad_requests;
	stats->remote_hits = es.remote_hits;
	stats->remote_bytes = es.remote_bytes;
	return 0;
}

PC_EXPORT int
pc_client_ping(struct pc_client *c)
{
	struct pc_conn *k = NULL;
	int32_t status = 0;
	uint32_t count;
	int rc;

	if (c == NULL) {
		return -EINVAL;
	}
	k = client_enter(c, &rc);
	if (k == NULL) {
		return rc;
	}
	rc = simple_call(c, k, PC_OP_NOP, NULL, &status, &count, NULL, NULL);
	client_leave(c);
	return rc != 0 ? rc : (status < 0 ? status : 0);
}

PC_EXPORT const char *
pc_client_version(void)
{
	return PC_VERSION;
}
