/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Control RPC connections (see rpc.h for the contract).
 *
 * Shape. Every socket is in one level-triggered epoll set; epoll data points
 * at a struct that starts with a kind byte (listener or connection). Reads go
 * through one shared 64 KiB scratch buffer and are consumed by a small state
 * machine per connection: handshake bytes into the connection struct,
 * frame headers into a 24-byte array, bodies dispatched straight from the
 * scratch when they arrived whole, else copied into the connection's one
 * body buffer (grown with the bytes that really came). Writes are queued in
 * a per-connection output buffer and flushed once at the end of a pass.
 *
 * Lifetimes. A connection that closes leaves the epoll set and closes its fd
 * at once, but its memory lives on a dead list until the end of the pass (an
 * epoll event of the same batch, or a callback's body pointer, may still
 * refer to it), or until its last hold is released. Peers put for the last
 * time wait on a dying list the same way. Callbacks with an error status are
 * not run where the error is found, in the middle of walking a list, but
 * queued on r->done and run at a few safe points of the pass: a callback may
 * then queue calls, take and drop peers, without pulling a list from under
 * the code that found the error.
 *
 * Request ids are given when a request is copied into a connection's
 * output, so the ids sent on one connection are the range
 * [first_id, peer->next_id): a reply for an id in that range whose call has
 * gone (timed out) is late and dropped; any other unknown id is a protocol
 * error.
 */
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "auth.h"
#include "frame.h"
#include "pc_common.h"
#include "pc_log.h"
#include "rpc.h"

#define RPC_RX_SIZE          ((size_t)64 * 1024) /* the shared read scratch */
#define RPC_READS_PER_EVENT  4                   /* fairness: then the next connection */
#define RPC_ACCEPTS_PER_POLL 64
#define RPC_EPOLL_EVENTS     64
#define RPC_BODY_MIN         4096u         /* the first body buffer, if the body is larger */
#define RPC_BUF_KEEP         (64u * 1024u) /* buffers above this are freed once idle */
#define RPC_NAME_LEN         (INET6_ADDRSTRLEN + 16)
#define RPC_LOG_INTERVAL_NS  1000000000ull /* hostile-peer warnings: one a second */
#define RPC_BACKOFF_MAX_MAX  (3600ull * 1000000000ull)
#define RPC_TIMEOUT_MAX      (3600ull * 1000000000ull)

#define RPC_AUTH_MAGIC     "PCA1" /* auth.h's header magic: a first byte test */
#define RPC_AUTH_MAGIC_LEN 4

enum rpc_kind {
	RPC_KIND_LISTENER = 1,
	RPC_KIND_CONN,
};

enum conn_state {
	CONN_CONNECTING = 1, /* client: non-blocking connect in progress */
	CONN_AUTH,           /* the handshake */
	CONN_READY,          /* authenticated: frames */
	CONN_CLOSED,         /* fd closed; memory waits for the reap */
};

struct rpc_listener {
	uint8_t kind; /* first: epoll data points here */
	int fd;
	TAILQ_ENTRY(rpc_listener) link;
};

/* One call; on exactly one of: its peer's queue, its peer's in-flight list, r->done. */
struct rpc_call {
	TAILQ_ENTRY(rpc_call) link;
	LIST_ENTRY(rpc_call) hlink; /* the in-flight table, while in flight */
	uint64_t id;                /* 0 until sent */
	uint64_t deadline_ns;
	pc_rpc_reply_fn cb;
	void *arg;
	uint8_t *body; /* the request body until it is copied into a connection's output */
	uint32_t len;
	int status; /* on r->done: what the callback gets */
	uint8_t type;
};

TAILQ_HEAD(rpc_call_list, rpc_call);
LIST_HEAD(rpc_call_chain, rpc_call);
TAILQ_HEAD(rpc_listener_list, rpc_listener);
TAILQ_HEAD(rpc_conn_list, pc_rpc_conn);
TAILQ_HEAD(rpc_peer_list, pc_rpc_peer);

struct pc_rpc_conn {
	uint8_t kind; /* first: epoll data points here */
	uint8_t state;
	bool server;
	bool on_flush;
	bool wblocked;   /* the last send hit EAGAIN: EPOLLOUT armed */
	bool has_hdr;    /* hdr decoded, body being read */
	uint8_t hs_step; /* client: 0 waiting for CHALLENGE, 1 for CONFIRM */
	uint32_t events; /* registered epoll events */
	int fd;
	int refs; /* pc_rpc_conn_hold() */
	struct pc_rpc *rpc;
	struct pc_rpc_peer *peer;            /* client side, until closed */
	TAILQ_ENTRY(pc_rpc_conn) link;       /* r->conns, then r->dead */
	TAILQ_ENTRY(pc_rpc_conn) flush_link; /* r->flush */
	/* CONNECTING and AUTH: the phase's end; READY: a started frame's (0: none). */
	uint64_t deadline_ns;
	uint64_t wdeadline_ns; /* output pending without progress until then (0: none) */
	uint64_t first_id;     /* client: the first request id sent here (0: none yet) */
	/* Input. */
	uint32_t hs_have;
	uint32_t hdr_have;
	uint32_t body_have;
	uint32_t body_cap;
	uint8_t *body;
	uint8_t *stash; /* server: input held back while replies are not read */
	uint32_t stash_len;
	struct pc_frame_hdr hdr;
	uint8_t hdr_raw[PC_FRAME_HDR_SIZE];
	uint8_t hs[PC_AUTH_RESPONSE_LEN]; /* the longest handshake message */
	/* Output: bytes [out_off, out_len) of out[out_size] are to send. */
	uint8_t *out;
	size_t out_off;
	size_t out_len;
	size_t out_size;
	struct pc_auth auth;
	char name[RPC_NAME_LEN];
};

struct pc_rpc_peer {
	struct pc_rpc *rpc;
	TAILQ_ENTRY(pc_rpc_peer) link; /* r->peers, then r->dying */
	struct sockaddr_storage addr;
	socklen_t addr_len;
	int refs;
	bool dying;
	bool attempted; /* a connection was tried before: the next is a reconnect */
	struct pc_rpc_conn *conn;
	uint64_t retry_at_ns;
	uint64_t backoff_ns;
	uint64_t next_id;
	uint32_t n_calls; /* queued + in flight */
	uint32_t hmask;
	struct rpc_call_list queue;    /* not sent yet, in call order */
	struct rpc_call_list inflight; /* sent, in send order */
	struct rpc_call_chain *table;  /* in flight by id: hmask + 1 chains */
	char name[RPC_NAME_LEN];
};

struct pc_rpc {
	int epfd;
	bool in_poll;
	bool destroying;
	bool owner_set;
	pthread_t owner;
	uint64_t now_ns;
	uint64_t next_timer_ns; /* no deadline is earlier than this */
	uint64_t log_next_ns;
	uint32_t n_queued; /* calls on any peer's queue */
	/* Options, defaults applied. */
	uint8_t secret[PC_AUTH_SECRET_MAX];
	size_t secret_len;
	pc_rpc_request_fn on_request;
	void *arg;
	uint32_t max_conns;
	uint32_t max_inflight;
	uint32_t out_cap;
	uint64_t read_timeout_ns;
	uint64_t auth_timeout_ns;
	uint64_t connect_timeout_ns;
	uint64_t backoff_min_ns;
	uint64_t backoff_max_ns;
	struct rpc_listener_list listeners;
	struct rpc_conn_list conns;
	struct rpc_conn_list dead;
	struct rpc_conn_list flush; /* linked by flush_link */
	struct rpc_peer_list peers;
	struct rpc_peer_list dying;
	struct rpc_call_list done;
	struct pc_rpc_stats stats;
	uint8_t *rx; /* RPC_RX_SIZE */
};

static void conn_close(struct pc_rpc_conn *c, int err);

/* ---------------------------------------------------------------- helpers */

static void
rpc_assert_owner(const struct pc_rpc *r)
{
	assert(!r->owner_set || pthread_equal(r->owner, pthread_self()));
	(void)r;
}

/* Hostile or failing peers can produce a line per connection: one a second. */
static bool
rpc_log_ok(struct pc_rpc *r)
{
	if (r->now_ns < r->log_next_ns) {
		return false;
	}
	r->log_next_ns = r->now_ns + RPC_LOG_INTERVAL_NS;
	return true;
}

static void
rpc_arm(struct pc_rpc *r, uint64_t deadline_ns)
{
	if (deadline_ns < r->next_timer_ns) {
		r->next_timer_ns = deadline_ns;
	}
}

static void
buf_account(struct pc_rpc *r, size_t old_size, size_t new_size)
{
	r->stats.buf_bytes = r->stats.buf_bytes - old_size + new_size;
	if (r->stats.buf_bytes > r->stats.buf_bytes_peak) {
		r->stats.buf_bytes_peak = r->stats.buf_bytes;
	}
}

static void
addr_name(const struct sockaddr *sa, socklen_t len, char *out, size_t size)
{
	char host[INET6_ADDRSTRLEN];
	char serv[8];

	if (getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(out, size, "?");
		return;
	}
	snprintf(out, size, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

/* The port of a bound or peer address, host order. */
static uint16_t
sockaddr_port(const struct sockaddr_storage *ss)
{
	struct sockaddr_in6 sin6;
	struct sockaddr_in sin;

	if (ss->ss_family == AF_INET6) {
		memcpy(&sin6, ss, sizeof(sin6));
		return ntohs(sin6.sin6_port);
	}
	memcpy(&sin, ss, sizeof(sin));
	return ntohs(sin.sin_port);
}

static size_t
out_pending(const struct pc_rpc_conn *c)
{
	return c->out_len - c->out_off;
}

/* A server connection whose replies are not being read stops taking requests. */
static bool
conn_backpressured(const struct pc_rpc_conn *c)
{
	return c->server && out_pending(c) > c->rpc->out_cap / 2;
}

/* ------------------------------------------------------------------ calls */

static uint32_t
call_hash(const struct pc_rpc_peer *p, uint64_t id)
{
	return (uint32_t)id & p->hmask; /* ids are sequential: the low bits spread them */
}

static struct rpc_call *
inflight_find(struct pc_rpc_peer *p, uint64_t id)
{
	struct rpc_call *call;

	/* Plain loops rather than the FOREACH macros: cppcheck does not expand them. */
	for (call = LIST_FIRST(&p->table[call_hash(p, id)]); call != NULL;
	     call = LIST_NEXT(call, hlink)) {
		if (call->id == id) {
			return call;
		}
	}
	return NULL;
}

/* Take a call off its peer (queue or in flight) and queue its callback with `status`. */
static void
call_end(struct pc_rpc_peer *p, struct rpc_call *call, bool in_flight, int status)
{
	struct pc_rpc *r = p->rpc;

	if (in_flight) {
		TAILQ_REMOVE(&p->inflight, call, link);
		LIST_REMOVE(call, hlink);
	} else {
		TAILQ_REMOVE(&p->queue, call, link);
		r->n_queued--;
	}
	p->n_calls--;
	free(call->body);
	call->body = NULL;
	call->status = status;
	if (status == -ETIMEDOUT) {
		r->stats.timeouts++;
	} else {
		r->stats.call_failed++;
	}
	TAILQ_INSERT_TAIL(&r->done, call, link);
}

static void
peer_fail_list(struct pc_rpc_peer *p, bool in_flight, int status)
{
	struct rpc_call_list *list = in_flight ? &p->inflight : &p->queue;
	struct rpc_call *call;

	while ((call = TAILQ_FIRST(list)) != NULL) {
		call_end(p, call, in_flight, status);
	}
}

/* Run the callbacks of calls that ended with an error. Returns how many ran. */
static int
rpc_drain(struct pc_rpc *r)
{
	struct rpc_call_list batch;
	struct rpc_call *call;
	struct rpc_call *next;
	int n = 0;

	/* Callbacks may end more calls (a last peer put): those come in the next batch. */
	while (!TAILQ_EMPTY(&r->done)) {
		TAILQ_INIT(&batch);
		TAILQ_CONCAT(&batch, &r->done, link);
		for (call = TAILQ_FIRST(&batch); call != NULL; call = next) {
			next = TAILQ_NEXT(call, link);
			call->cb(call->arg, call->status, NULL, NULL, 0);
			free(call);
			n++;
		}
	}
	return n;
}

/* ------------------------------------------------------------ connections */

static int
conn_update_events(struct pc_rpc_conn *c)
{
	struct pc_rpc *r = c->rpc;
	struct epoll_event ev = {.data.ptr = c};
	uint32_t want = 0;

	if (c->state == CONN_CLOSED) {
		return 0;
	}
	if (c->state == CONN_CONNECTING) {
		want = EPOLLOUT;
	} else {
		if (!conn_backpressured(c)) {
			want |= EPOLLIN | EPOLLRDHUP;
		}
		if (c->wblocked) {
			want |= EPOLLOUT;
		}
	}
	if (want == c->events) {
		return 0;
	}
	ev.events = want;
	if (epoll_ctl(r->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
		return -errno;
	}
	c->events = want;
	return 0;
}

static struct pc_rpc_conn *
conn_new(struct pc_rpc *r, int fd, bool server, uint8_t state, uint32_t events)
{
	struct pc_rpc_conn *c = calloc(1, sizeof(*c));
	struct epoll_event ev = {.events = events};
	int one = 1;

	if (c == NULL) {
		return NULL;
	}
	c->kind = RPC_KIND_CONN;
	c->rpc = r;
	c->fd = fd;
	c->server = server;
	c->state = state;
	c->events = events;
	ev.data.ptr = c;
	/* Small frames, request/reply: Nagle would add a delayed-ACK round trip to each. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		free(c);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&r->conns, c, link);
	return c;
}

/* Reserve room for `need` more output bytes; -ENOBUFS past out_cap. */
static int
out_reserve(struct pc_rpc_conn *c, size_t need)
{
	struct pc_rpc *r = c->rpc;
	size_t pending = out_pending(c);
	size_t size;
	uint8_t *p;

	if (pending + need > r->out_cap) {
		return -ENOBUFS;
	}
	if (c->out_len + need <= c->out_size) {
		return 0;
	}
	if (c->out_off > 0) {
		memmove(c->out, c->out + c->out_off, pending);
		c->out_off = 0;
		c->out_len = pending;
		if (pending + need <= c->out_size) {
			return 0;
		}
	}
	size = PC_MAX(PC_MAX(c->out_size * 2, pending + need), (size_t)1024);
	size = PC_MIN(size, (size_t)r->out_cap);
	p = realloc(c->out, size);
	if (p == NULL) {
		return -ENOMEM;
	}
	buf_account(r, c->out_size, size);
	c->out = p;
	c->out_size = size;
	return 0;
}

static void
conn_mark_flush(struct pc_rpc_conn *c)
{
	if (!c->on_flush && c->state != CONN_CLOSED) {
		c->on_flush = true;
		TAILQ_INSERT_TAIL(&c->rpc->flush, c, flush_link);
	}
}

static int
out_append(struct pc_rpc_conn *c, const void *a, size_t alen, const void *b, size_t blen)
{
	int rc = out_reserve(c, alen + blen);

	if (rc != 0) {
		return rc;
	}
	if (alen > 0) {
		memcpy(c->out + c->out_len, a, alen);
	}
	if (blen > 0) {
		memcpy(c->out + c->out_len + alen, b, blen);
	}
	c->out_len += alen + blen;
	conn_mark_flush(c);
	return 0;
}

static void
conn_free(struct pc_rpc_conn *c)
{
	struct pc_rpc *r = c->rpc;

	buf_account(r, c->out_size + c->body_cap + c->stash_len, 0);
	free(c->out);
	free(c->body);
	free(c->stash);
	free(c);
}

/* ------------------------------------------------------------------ peers */

/* When the peer may connect again: [d/2, d] after now, d = the backoff (or its minimum). */
static void
peer_schedule(struct pc_rpc_peer *p, bool failed)
{
	struct pc_rpc *r = p->rpc;
	uint64_t d = failed ? p->backoff_ns : r->backoff_min_ns;
	uint64_t jitter = 0;

	randombytes_buf(&jitter, sizeof(jitter));
	p->retry_at_ns = r->now_ns + d / 2 + jitter % (d / 2 + 1);
	if (failed) {
		p->backoff_ns = PC_MIN(p->backoff_ns * 2, r->backoff_max_ns);
	}
}

/* The peer's connection has closed (was_state: what it was); settle its calls. */
static void
peer_conn_closed(struct pc_rpc_peer *p, uint8_t was_state, int err)
{
	struct pc_rpc *r = p->rpc;

	p->conn = NULL;
	peer_fail_list(p, true, err);
	if (was_state == CONN_READY) {
		/* Queued calls wait for the next connection, within their deadlines. */
		peer_schedule(p, false);
		return;
	}
	/* The attempt they waited for failed: say why now rather than at the deadline. */
	r->stats.connect_failed++;
	peer_fail_list(p, false, err);
	peer_schedule(p, true);
}

/* Copy queued calls into the connection's output while they fit; they are then in flight. */
static int
peer_send_queued(struct pc_rpc_peer *p)
{
	struct pc_rpc *r = p->rpc;
	struct pc_rpc_conn *c = p->conn;
	struct rpc_call *call;
	struct rpc_call *next;
	int n = 0;

	for (call = TAILQ_FIRST(&p->queue); call != NULL; call = next) {
		struct pc_frame_hdr h = {
			.version = PC_FRAME_VERSION,
			.type = call->type,
			.flags = 0,
			.request_id = p->next_id,
			.body_len = call->len,
		};
		uint8_t raw[PC_FRAME_HDR_SIZE];

		next = TAILQ_NEXT(call, link);
		if (out_pending(c) + PC_FRAME_HDR_SIZE + call->len > r->out_cap) {
			break; /* the rest goes as the output drains */
		}
		pc_frame_hdr_encode(raw, &h);
		if (out_append(c, raw, sizeof(raw), call->body, call->len) != 0) {
			break; /* -ENOMEM: try again next pass */
		}
		call->id = p->next_id++;
		if (c->first_id == 0) {
			c->first_id = call->id;
		}
		free(call->body);
		call->body = NULL;
		TAILQ_REMOVE(&p->queue, call, link);
		r->n_queued--;
		TAILQ_INSERT_TAIL(&p->inflight, call, link);
		LIST_INSERT_HEAD(&p->table[call_hash(p, call->id)], call, hlink);
		n++;
	}
	return n;
}

static void
peer_connect(struct pc_rpc_peer *p)
{
	struct pc_rpc *r = p->rpc;
	struct pc_rpc_conn *c;
	int fd;
	int rc;

	r->stats.connects++;
	if (p->attempted) {
		r->stats.reconnects++;
	}
	p->attempted = true;
	fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		goto err_fail;
	}
	c = conn_new(r, fd, false, CONN_CONNECTING, EPOLLOUT);
	if (c == NULL) {
		rc = -ENOMEM;
		close(fd);
		goto err_fail;
	}
	c->peer = p;
	p->conn = c;
	snprintf(c->name, sizeof(c->name), "%s", p->name);
	c->deadline_ns = r->now_ns + r->connect_timeout_ns;
	rpc_arm(r, c->deadline_ns);
	if (connect(fd, (const struct sockaddr *)&p->addr, p->addr_len) == 0) {
		c->state = CONN_AUTH;
		c->deadline_ns = r->now_ns + r->auth_timeout_ns;
		rpc_arm(r, c->deadline_ns);
		conn_update_events(c);
	} else if (errno != EINPROGRESS) {
		rc = -errno;
		if (rpc_log_ok(r)) {
			PC_LOG(WARNING, control, "connect to %s: %s", p->name, strerror(-rc));
		}
		conn_close(c, rc);
	}
	return;

err_fail:
	if (rpc_log_ok(r)) {
		PC_LOG(WARNING, control, "connect to %s: %s", p->name, strerror(-rc));
	}
	r->stats.connect_failed++;
	peer_fail_list(p, false, rc);
	peer_schedule(p, true);
}

/* ---------------------------------------------------------------- closing */

/*
 * Close a connection: out of epoll, fd closed, handshake state wiped. A
 * client connection's calls end with `err` (see peer_conn_closed). The
 * memory stays until the reap.
 */
static void
conn_close(struct pc_rpc_conn *c, int err)
{
	struct pc_rpc *r = c->rpc;
	uint8_t was = c->state;

	if (was == CONN_CLOSED) {
		return;
	}
	epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->state = CONN_CLOSED;
	pc_auth_wipe(&c->auth);
	if (c->on_flush) {
		TAILQ_REMOVE(&r->flush, c, flush_link);
		c->on_flush = false;
	}
	TAILQ_REMOVE(&r->conns, c, link);
	TAILQ_INSERT_TAIL(&r->dead, c, link);
	if (c->server) {
		r->stats.conns_open--;
		if (was != CONN_READY) {
			r->stats.auth_failed++;
		}
		return;
	}
	if (c->peer != NULL) {
		struct pc_rpc_peer *p = c->peer;

		c->peer = NULL;
		peer_conn_closed(p, was, err);
	}
}

/* The peer broke the frame protocol. */
static void
conn_malformed(struct pc_rpc_conn *c, const char *why)
{
	struct pc_rpc *r = c->rpc;

	r->stats.malformed++;
	if (rpc_log_ok(r)) {
		PC_LOG(WARNING, control, "%s: %s: closing the connection", c->name, why);
	}
	conn_close(c, -EBADMSG);
}

/* ------------------------------------------------------------- handshake */

static void
conn_auth_failed(struct pc_rpc_conn *c, int rc)
{
	struct pc_rpc *r = c->rpc;

	if (rpc_log_ok(r)) {
		PC_LOG(WARNING, control, "%s: authentication failed (%s): %s", c->name,
		       c->server ? "incoming" : "outgoing", pc_auth_error(&c->auth));
	}
	conn_close(c, rc);
}

static void
conn_ready(struct pc_rpc_conn *c)
{
	struct pc_rpc *r = c->rpc;

	c->state = CONN_READY;
	c->deadline_ns = 0;
	if (!c->server) {
		struct pc_rpc_peer *p = c->peer;

		p->backoff_ns = r->backoff_min_ns;
		PC_LOG(DEBUG, control, "connected to %s", p->name);
		peer_send_queued(p);
	}
}

/* A whole handshake message is in c->hs. */
static void
conn_hs_step(struct pc_rpc_conn *c)
{
	struct pc_rpc *r = c->rpc;
	uint8_t msg[PC_AUTH_RESPONSE_LEN];
	int rc;

	c->hs_have = 0;
	if (c->server) {
		rc = pc_auth_server_verify(&c->auth, c->hs, PC_AUTH_RESPONSE_LEN, msg);
		if (rc != 0) {
			conn_auth_failed(c, rc);
			return;
		}
		rc = out_append(c, msg, PC_AUTH_CONFIRM_LEN, NULL, 0);
		if (rc != 0) {
			conn_close(c, rc);
			return;
		}
		conn_ready(c);
		return;
	}
	if (c->hs_step == 0) {
		rc = pc_auth_client_respond(&c->auth, r->secret, r->secret_len, c->hs,
					    PC_AUTH_CHALLENGE_LEN, msg);
		if (rc != 0) {
			conn_auth_failed(c, rc);
			return;
		}
		rc = out_append(c, msg, PC_AUTH_RESPONSE_LEN, NULL, 0);
		if (rc != 0) {
			conn_close(c, rc);
			return;
		}
		c->hs_step = 1;
		return;
	}
	rc = pc_auth_client_finish(&c->auth, c->hs, PC_AUTH_CONFIRM_LEN);
	if (rc != 0) {
		conn_auth_failed(c, rc);
		return;
	}
	conn_ready(c);
}

static size_t
conn_hs_input(struct pc_rpc_conn *c, const uint8_t *p, size_t n)
{
	uint32_t want = c->server ? PC_AUTH_RESPONSE_LEN : PC_AUTH_CHALLENGE_LEN;
	size_t take = PC_MIN((size_t)(want - c->hs_have), n);
	uint32_t check = c->hs_have;

	memcpy(c->hs + c->hs_have, p, take);
	c->hs_have += (uint32_t)take;
	/* Not a PeerCache peer (HTTP, garbage): no need to wait for a whole message. */
	for (; check < c->hs_have && check < RPC_AUTH_MAGIC_LEN; check++) {
		if (c->hs[check] != (uint8_t)RPC_AUTH_MAGIC[check]) {
			struct pc_rpc *r = c->rpc;

			if (rpc_log_ok(r)) {
				PC_LOG(WARNING, control,
				       "%s: not a PeerCache peer (bad handshake magic): closing",
				       c->name);
			}
			conn_close(c, -EPROTO);
			return take;
		}
	}
	if (c->hs_have == want) {
		conn_hs_step(c);
	}
	return take;
}

/* ----------------------------------------------------------------- frames */

/* A client connection got a whole reply. */
static void
conn_reply(struct pc_rpc_conn *c, const struct pc_frame_hdr *h, const uint8_t *body, uint32_t len)
{
	struct pc_rpc *r = c->rpc;
	struct pc_rpc_peer *p = c->peer;
	struct rpc_call *call = inflight_find(p, h->request_id);

	if (call == NULL) {
		if (c->first_id != 0 && h->request_id >= c->first_id &&
		    h->request_id < p->next_id) {
			r->stats.late_replies++; /* its call timed out */
			return;
		}
		conn_malformed(c, "reply to a request id never sent");
		return;
	}
	if (call->type != h->type) {
		call_end(p, call, true, -EBADMSG);
		conn_malformed(c, "reply of another type than its request");
		return;
	}
	TAILQ_REMOVE(&p->inflight, call, link);
	LIST_REMOVE(call, hlink);
	p->n_calls--;
	r->stats.replies++;
	call->cb(call->arg, 0, h, body, len);
	free(call);
}

static void
conn_dispatch(struct pc_rpc_conn *c, const uint8_t *body)
{
	struct pc_rpc *r = c->rpc;
	struct pc_frame_hdr h = c->hdr;

	c->has_hdr = false;
	c->hdr_have = 0;
	c->body_have = 0;
	c->deadline_ns = 0;
	if (c->server) {
		r->stats.requests++;
		r->on_request(r->arg, c, &h, body, h.body_len);
	} else {
		conn_reply(c, &h, body, h.body_len);
	}
}

/* The frame being read has started: it must be whole by read_timeout from now. */
static void
conn_frame_started(struct pc_rpc_conn *c)
{
	struct pc_rpc *r = c->rpc;

	if (c->deadline_ns == 0) {
		c->deadline_ns = r->now_ns + r->read_timeout_ns;
		rpc_arm(r, c->deadline_ns);
	}
}

/* Room for `need` body bytes: at most twice what has arrived (or RPC_BODY_MIN), never past
 * body_len. */
static int
body_grow(struct pc_rpc_conn *c, uint32_t need)
{
	struct pc_rpc *r = c->rpc;
	uint32_t size;
	uint8_t *p;

	if (need <= c->body_cap) {
		return 0;
	}
	size = PC_MAX(need, PC_MAX(c->body_cap * 2, RPC_BODY_MIN));
	size = PC_MIN(size, c->hdr.body_len);
	p = realloc(c->body, size);
	if (p == NULL) {
		return -ENOMEM;
	}
	buf_account(r, c->body_cap, size);
	c->body = p;
	c->body_cap = size;
	return 0;
}

static void
body_shrink(struct pc_rpc_conn *c)
{
	if (c->body_cap > RPC_BUF_KEEP && !c->has_hdr) {
		buf_account(c->rpc, c->body_cap, 0);
		free(c->body);
		c->body = NULL;
		c->body_cap = 0;
	}
}

static size_t
conn_frame_input(struct pc_rpc_conn *c, const uint8_t *p, size_t n)
{
	size_t used = 0;
	size_t take;

	if (!c->has_hdr) {
		const uint8_t *raw = p;
		uint16_t want_reply = c->server ? 0 : PC_FRAME_F_REPLY;

		if (c->hdr_have == 0 && n >= PC_FRAME_HDR_SIZE) {
			used = PC_FRAME_HDR_SIZE;
		} else {
			take = PC_MIN((size_t)(PC_FRAME_HDR_SIZE - c->hdr_have), n);
			memcpy(c->hdr_raw + c->hdr_have, p, take);
			c->hdr_have += (uint32_t)take;
			used = take;
			if (c->hdr_have < PC_FRAME_HDR_SIZE) {
				conn_frame_started(c);
				return used;
			}
			raw = c->hdr_raw;
		}
		/* The cap is checked here, before a byte of the body is read or stored. */
		if (pc_frame_hdr_decode(raw, PC_FRAME_HDR_SIZE, &c->hdr) != 0 ||
		    c->hdr.body_len > PC_FRAME_BODY_MAX) {
			conn_malformed(c, "malformed frame header");
			return used;
		}
		if ((c->hdr.flags & PC_FRAME_F_REPLY) != want_reply) {
			conn_malformed(c, c->server ? "a reply where a request was due"
						    : "a request where a reply was due");
			return used;
		}
		c->has_hdr = true;
		c->body_have = 0;
		p += used;
		n -= used;
	}
	if (c->body_have == 0 && n >= c->hdr.body_len) {
		/* Whole in the scratch: no copy. */
		used += c->hdr.body_len;
		conn_dispatch(c, p);
		return used;
	}
	if (n == 0) {
		conn_frame_started(c); /* a header alone: the body has not started arriving */
		return used;
	}
	take = PC_MIN((size_t)(c->hdr.body_len - c->body_have), n);
	if (body_grow(c, c->body_have + (uint32_t)take) != 0) {
		PC_LOG(ERR, control, "%s: no memory for a %u-byte body", c->name, c->hdr.body_len);
		conn_close(c, -ENOMEM);
		return used + take;
	}
	memcpy(c->body + c->body_have, p, take);
	c->body_have += (uint32_t)take;
	used += take;
	if (c->body_have == c->hdr.body_len) {
		conn_dispatch(c, c->body);
		body_shrink(c);
	} else {
		conn_frame_started(c);
	}
	return used;
}

/*
 * Keep input that arrived while back-pressured (at most what one read
 * brings, RPC_RX_SIZE: a read is never issued while there is a stash).
 */
static void
conn_stash(struct pc_rpc_conn *c, const uint8_t *p, size_t n)
{
	struct pc_rpc *r = c->rpc;

	assert(c->stash == NULL);
	c->stash = malloc(n);
	if (c->stash == NULL) {
		PC_LOG(ERR, control, "%s: no memory to hold %zu bytes of requests", c->name, n);
		conn_close(c, -ENOMEM);
		return;
	}
	memcpy(c->stash, p, n);
	c->stash_len = (uint32_t)n;
	buf_account(r, 0, n);
}

static void
conn_consume(struct pc_rpc_conn *c, const uint8_t *p, size_t n)
{
	while (n > 0) {
		size_t used;

		/*
		 * Requests pipelined in one read must not run the output past
		 * out_cap: between frames, stop once replies pile up, and go on
		 * from the stash when they drain.
		 */
		if (c->state == CONN_READY && !c->has_hdr && c->hdr_have == 0 &&
		    conn_backpressured(c)) {
			conn_stash(c, p, n);
			return;
		}
		if (c->state == CONN_AUTH) {
			used = conn_hs_input(c, p, n);
		} else if (c->state == CONN_READY) {
			used = conn_frame_input(c, p, n);
		} else {
			return; /* closed (or bytes during a connect: impossible) */
		}
		p += used;
		n -= used;
	}
}

/* Go on with the input held back, now that the replies have drained. */
static void
conn_unstash(struct pc_rpc_conn *c)
{
	uint8_t *p = c->stash;
	uint32_t n = c->stash_len;

	c->stash = NULL;
	c->stash_len = 0;
	conn_consume(c, p, n); /* may stash a tail again, in a new buffer */
	buf_account(c->rpc, n, 0);
	free(p);
}

/* ---------------------------------------------------------------- I/O */

static void
conn_eof(struct pc_rpc_conn *c, int err)
{
	struct pc_rpc *r = c->rpc;

	if (c->server) {
		conn_close(c, 0);
		return;
	}
	/* A server that denies our RESPONSE closes without a word: that is the answer. */
	if (c->state == CONN_AUTH && c->hs_step == 1) {
		if (rpc_log_ok(r)) {
			PC_LOG(WARNING, control,
			       "%s denied our handshake (a different cluster_secret?)", c->name);
		}
		conn_close(c, -EACCES);
		return;
	}
	conn_close(c, err);
}

static int
conn_read(struct pc_rpc_conn *c)
{
	struct pc_rpc *r = c->rpc;
	int work = 0;

	for (int i = 0; i < RPC_READS_PER_EVENT && c->state != CONN_CLOSED; i++) {
		ssize_t n;

		/*
		 * Back-pressure: read again once the replies drain. A peer that
		 * hung up meanwhile is found by the write that fails.
		 */
		if (conn_backpressured(c)) {
			conn_update_events(c);
			break;
		}
		if (c->stash != NULL) {
			conn_unstash(c);
			work++;
			continue;
		}
		n = recv(c->fd, r->rx, RPC_RX_SIZE, MSG_DONTWAIT);
		if (n > 0) {
			work++;
			r->stats.bytes_in += (uint64_t)n;
			conn_consume(c, r->rx, (size_t)n);
			if ((size_t)n < RPC_RX_SIZE) {
				break;
			}
			continue;
		}
		if (n == 0) {
			conn_eof(c, -ECONNRESET);
			return work + 1;
		}
		if (errno == EINTR) {
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			break;
		}
		conn_eof(c, errno == ECONNRESET ? -ECONNRESET : -errno);
		return work + 1;
	}
	return work;
}

static int
conn_write(struct pc_rpc_conn *c)
{
	struct pc_rpc *r = c->rpc;
	bool progress = false;

	while (out_pending(c) > 0) {
		ssize_t n = send(c->fd, c->out + c->out_off, out_pending(c),
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			c->out_off += (size_t)n;
			r->stats.bytes_out += (uint64_t)n;
			progress = true;
			continue;
		}
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->wblocked = true;
			if (progress || c->wdeadline_ns == 0) {
				c->wdeadline_ns = r->now_ns + r->read_timeout_ns;
				rpc_arm(r, c->wdeadline_ns);
			}
			conn_update_events(c);
			if (c->stash != NULL && !conn_backpressured(c)) {
				conn_unstash(c);
			}
			return progress;
		}
		conn_eof(c, -ECONNRESET);
		return 1;
	}
	c->out_off = 0;
	c->out_len = 0;
	c->wdeadline_ns = 0;
	c->wblocked = false;
	/* Idle connections hold no buffer: memory stays flat with many of them. */
	buf_account(r, c->out_size, 0);
	free(c->out);
	c->out = NULL;
	c->out_size = 0;
	conn_update_events(c);
	if (c->stash != NULL) {
		conn_unstash(c);
	}
	if (!c->server && c->peer != NULL && c->state == CONN_READY &&
	    !TAILQ_EMPTY(&c->peer->queue)) {
		peer_send_queued(c->peer); /* they waited for room */
	}
	return progress;
}

static void
conn_connect_done(struct pc_rpc_conn *c)
{
	struct pc_rpc *r = c->rpc;
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
		err = errno;
	}
	if (err != 0) {
		if (rpc_log_ok(r)) {
			PC_LOG(WARNING, control, "connect to %s: %s", c->name, strerror(err));
		}
		conn_close(c, -err);
		return;
	}
	c->state = CONN_AUTH;
	c->deadline_ns = r->now_ns + r->auth_timeout_ns;
	rpc_arm(r, c->deadline_ns);
	conn_update_events(c);
}

static int
conn_event(struct pc_rpc_conn *c, uint32_t ev)
{
	int work = 0;

	if (c->state == CONN_CLOSED) {
		return 0;
	}
	if (c->state == CONN_CONNECTING) {
		if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
			conn_connect_done(c);
			return 1;
		}
		return 0;
	}
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		work += conn_read(c);
	}
	if (c->state != CONN_CLOSED && (ev & EPOLLOUT)) {
		work += conn_write(c);
	}
	return work;
}

/* --------------------------------------------------------------- accept */

static int
rpc_accept(struct pc_rpc *r, struct rpc_listener *l)
{
	int work = 0;

	for (int i = 0; i < RPC_ACCEPTS_PER_POLL; i++) {
		struct sockaddr_storage ss = {0};
		socklen_t len = sizeof(ss);
		uint8_t challenge[PC_AUTH_CHALLENGE_LEN];
		struct pc_rpc_conn *c;
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED) {
				continue;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK && rpc_log_ok(r)) {
				PC_LOG(WARNING, control, "accept: %s", strerror(errno));
			}
			break;
		}
		work++;
		if (r->stats.conns_open >= r->max_conns) {
			r->stats.rejected++;
			if (rpc_log_ok(r)) {
				PC_LOG(WARNING, control,
				       "%u connections open (max_conns): refusing one more",
				       r->max_conns);
			}
			close(fd);
			continue;
		}
		c = conn_new(r, fd, true, CONN_AUTH, EPOLLIN | EPOLLRDHUP);
		if (c == NULL) {
			PC_LOG(ERR, control, "accept: out of memory for a connection");
			close(fd);
			continue;
		}
		r->stats.accepted++;
		r->stats.conns_open++;
		addr_name((const struct sockaddr *)&ss, len, c->name, sizeof(c->name));
		c->deadline_ns = r->now_ns + r->auth_timeout_ns;
		rpc_arm(r, c->deadline_ns);
		if (pc_auth_server_start(&c->auth, r->secret, r->secret_len, challenge) != 0 ||
		    out_append(c, challenge, sizeof(challenge), NULL, 0) != 0) {
			PC_LOG(ERR, control, "%s: cannot start the handshake: %s", c->name,
			       pc_auth_error(&c->auth));
			conn_close(c, 0);
		}
	}
	return work;
}

/* ---------------------------------------------------------------- timers */

static int
peer_timers(struct pc_rpc_peer *p, uint64_t *next)
{
	struct pc_rpc *r = p->rpc;
	struct rpc_call *call;
	struct rpc_call *tmp;
	int n = 0;

	for (call = TAILQ_FIRST(&p->inflight); call != NULL; call = tmp) {
		tmp = TAILQ_NEXT(call, link);
		if (r->now_ns >= call->deadline_ns) {
			call_end(p, call, true, -ETIMEDOUT);
			n++;
		} else {
			*next = PC_MIN(*next, call->deadline_ns);
		}
	}
	for (call = TAILQ_FIRST(&p->queue); call != NULL; call = tmp) {
		tmp = TAILQ_NEXT(call, link);
		if (r->now_ns >= call->deadline_ns) {
			call_end(p, call, false, -ETIMEDOUT);
			n++;
		} else {
			*next = PC_MIN(*next, call->deadline_ns);
		}
	}
	return n;
}

static int
rpc_timers(struct pc_rpc *r)
{
	uint64_t now = r->now_ns;
	uint64_t next = UINT64_MAX;
	struct pc_rpc_conn *c;
	struct pc_rpc_conn *tmp;
	struct pc_rpc_peer *p;
	int n = 0;

	for (c = TAILQ_FIRST(&r->conns); c != NULL; c = tmp) {
		tmp = TAILQ_NEXT(c, link);
		if (c->deadline_ns != 0 && now >= c->deadline_ns) {
			n++;
			if (c->state == CONN_READY) {
				r->stats.slow_closed++;
				if (rpc_log_ok(r)) {
					PC_LOG(WARNING, control,
					       "%s: a frame incomplete for too long: closing",
					       c->name);
				}
				conn_close(c, -ETIMEDOUT);
			} else {
				if (rpc_log_ok(r)) {
					PC_LOG(WARNING, control, "%s: %s timed out", c->name,
					       c->state == CONN_CONNECTING ? "connect"
									   : "handshake");
				}
				conn_close(c, -ETIMEDOUT);
			}
			continue;
		}
		if (c->wdeadline_ns != 0 && now >= c->wdeadline_ns) {
			n++;
			r->stats.slow_closed++;
			if (rpc_log_ok(r)) {
				PC_LOG(WARNING, control, "%s: not reading what we send: closing",
				       c->name);
			}
			conn_close(c, -ETIMEDOUT);
			continue;
		}
		if (c->deadline_ns != 0) {
			next = PC_MIN(next, c->deadline_ns);
		}
		if (c->wdeadline_ns != 0) {
			next = PC_MIN(next, c->wdeadline_ns);
		}
	}
	for (p = TAILQ_FIRST(&r->peers); p != NULL; p = TAILQ_NEXT(p, link)) {
		n += peer_timers(p, &next);
	}
	/* Deadlines armed by the closes above (none) or later lower it again. */
	r->next_timer_ns = next;
	return n;
}

/* Connect peers that have queued calls and no connection; feed connected ones. */
static int
rpc_kick(struct pc_rpc *r)
{
	struct pc_rpc_peer *p;
	int n = 0;

	for (p = TAILQ_FIRST(&r->peers); p != NULL; p = TAILQ_NEXT(p, link)) {
		if (TAILQ_EMPTY(&p->queue)) {
			continue;
		}
		if (p->conn == NULL) {
			if (r->now_ns >= p->retry_at_ns) {
				peer_connect(p);
				n++;
			}
		} else if (p->conn->state == CONN_READY) {
			n += peer_send_queued(p);
		}
	}
	return n;
}

static int
rpc_flush(struct pc_rpc *r)
{
	struct pc_rpc_conn *c;
	int n = 0;

	while ((c = TAILQ_FIRST(&r->flush)) != NULL) {
		TAILQ_REMOVE(&r->flush, c, flush_link);
		c->on_flush = false;
		if (c->state != CONN_CLOSED && c->state != CONN_CONNECTING && !c->wblocked) {
			n += conn_write(c);
		}
	}
	return n;
}

static void
peer_free(struct pc_rpc_peer *p)
{
	free(p->table);
	free(p);
}

static void
rpc_reap(struct pc_rpc *r)
{
	struct pc_rpc_conn *c;
	struct pc_rpc_conn *ctmp;
	struct pc_rpc_peer *p;
	struct pc_rpc_peer *ptmp;

	for (c = TAILQ_FIRST(&r->dead); c != NULL; c = ctmp) {
		ctmp = TAILQ_NEXT(c, link);
		if (c->refs == 0) {
			TAILQ_REMOVE(&r->dead, c, link);
			conn_free(c);
		}
	}
	for (p = TAILQ_FIRST(&r->dying); p != NULL; p = ptmp) {
		ptmp = TAILQ_NEXT(p, link);
		assert(p->conn == NULL && p->n_calls == 0);
		peer_free(p);
	}
	TAILQ_INIT(&r->dying);
}

/* ------------------------------------------------------------- public API */

struct pc_rpc *
pc_rpc_create(const struct pc_rpc_opts *o)
{
	struct pc_rpc *r;

#define RPC_OPT(field, def) ((o)->field != 0 ? (o)->field : (def))
	if (o == NULL ||
	    (o->secret_len != 0 && (o->secret == NULL || o->secret_len < PC_AUTH_SECRET_MIN ||
				    o->secret_len > PC_AUTH_SECRET_MAX))) {
		PC_LOG(ERR, control, "rpc: no options, or a cluster secret of a bad length");
		errno = EINVAL;
		return NULL;
	}
	if (sodium_init() < 0) {
		PC_LOG(ERR, control, "rpc: libsodium failed to initialize");
		errno = EIO;
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	r->epfd = -1;
	TAILQ_INIT(&r->listeners);
	TAILQ_INIT(&r->conns);
	TAILQ_INIT(&r->dead);
	TAILQ_INIT(&r->flush);
	TAILQ_INIT(&r->peers);
	TAILQ_INIT(&r->dying);
	TAILQ_INIT(&r->done);
	r->next_timer_ns = UINT64_MAX;
	if (o->secret_len != 0) {
		memcpy(r->secret, o->secret, o->secret_len);
	}
	r->secret_len = o->secret_len;
	r->on_request = o->on_request;
	r->arg = o->arg;
	r->max_conns = RPC_OPT(max_conns, PC_RPC_MAX_CONNS_DEFAULT);
	r->max_inflight = RPC_OPT(max_inflight, PC_RPC_MAX_INFLIGHT_DEFAULT);
	r->out_cap = RPC_OPT(out_cap, PC_RPC_OUT_CAP_DEFAULT);
	r->read_timeout_ns = RPC_OPT(read_timeout_ns, PC_RPC_READ_TIMEOUT_DEFAULT);
	r->auth_timeout_ns = RPC_OPT(auth_timeout_ns, PC_RPC_AUTH_TIMEOUT_DEFAULT);
	r->connect_timeout_ns = RPC_OPT(connect_timeout_ns, PC_RPC_CONNECT_TIMEOUT_DEFAULT);
	r->backoff_min_ns = RPC_OPT(backoff_min_ns, PC_RPC_BACKOFF_MIN_DEFAULT);
	r->backoff_max_ns = RPC_OPT(backoff_max_ns, PC_RPC_BACKOFF_MAX_DEFAULT);
#undef RPC_OPT
	if (r->max_conns > PC_RPC_MAX_CONNS_MAX || r->max_inflight > PC_RPC_MAX_INFLIGHT_MAX ||
	    r->out_cap < PC_RPC_OUT_CAP_MIN || r->out_cap > PC_RPC_OUT_CAP_MAX ||
	    r->read_timeout_ns > RPC_TIMEOUT_MAX || r->auth_timeout_ns > RPC_TIMEOUT_MAX ||
	    r->connect_timeout_ns > RPC_TIMEOUT_MAX || r->backoff_max_ns > RPC_BACKOFF_MAX_MAX ||
	    r->backoff_min_ns > r->backoff_max_ns) {
		PC_LOG(ERR, control, "rpc: an option out of bounds");
		errno = EINVAL;
		goto err_free;
	}
	r->rx = malloc(RPC_RX_SIZE);
	if (r->rx == NULL) {
		errno = ENOMEM;
		goto err_free;
	}
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0) {
		PC_LOG(ERR, control, "rpc: epoll_create1: %s", strerror(errno));
		goto err_free_rx;
	}
	return r;

err_free_rx:
	free(r->rx);
err_free:
	sodium_memzero(r->secret, sizeof(r->secret));
	free(r);
	return NULL;
}

void
pc_rpc_destroy(struct pc_rpc *r)
{
	struct rpc_listener *l;
	struct rpc_listener *ltmp;
	struct pc_rpc_conn *c;
	struct pc_rpc_conn *ctmp;
	struct pc_rpc_peer *p;
	struct pc_rpc_peer *ptmp;

	if (r == NULL) {
		return;
	}
	rpc_assert_owner(r);
	assert(!r->in_poll); /* not from a callback */
	r->destroying = true;
	for (l = TAILQ_FIRST(&r->listeners); l != NULL; l = ltmp) {
		ltmp = TAILQ_NEXT(l, link);
		close(l->fd);
		free(l);
	}
	TAILQ_INIT(&r->listeners);
	for (p = TAILQ_FIRST(&r->peers); p != NULL; p = TAILQ_NEXT(p, link)) {
		peer_fail_list(p, true, -ECANCELED);
		peer_fail_list(p, false, -ECANCELED);
	}
	for (c = TAILQ_FIRST(&r->conns); c != NULL; c = ctmp) {
		ctmp = TAILQ_NEXT(c, link);
		conn_close(c, -ECANCELED); /* onto r->dead */
	}
	rpc_drain(r);
	for (c = TAILQ_FIRST(&r->dead); c != NULL; c = ctmp) {
		ctmp = TAILQ_NEXT(c, link);
		if (c->refs != 0) {
			PC_LOG(ERR, control, "rpc destroy: %s still held %d times", c->name,
			       c->refs);
		}
		conn_free(c);
	}
	for (p = TAILQ_FIRST(&r->peers); p != NULL; p = ptmp) {
		ptmp = TAILQ_NEXT(p, link);
		peer_free(p);
	}
	for (p = TAILQ_FIRST(&r->dying); p != NULL; p = ptmp) {
		ptmp = TAILQ_NEXT(p, link);
		peer_free(p);
	}
	if (r->epfd >= 0) {
		close(r->epfd);
	}
	free(r->rx);
	sodium_memzero(r->secret, sizeof(r->secret));
	free(r);
}

int
pc_rpc_listen(struct pc_rpc *r, const char *host, uint16_t port, uint16_t *bound_port)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	struct addrinfo *res = NULL;
	struct rpc_listener *l;
	char serv[8];
	int rc = -EADDRNOTAVAIL;
	int gai;

	rpc_assert_owner(r);
	if (r->on_request == NULL) {
		PC_LOG(ERR, control, "rpc listen: no on_request handler");
		return -EINVAL;
	}
	snprintf(serv, sizeof(serv), "%u", port);
	gai = getaddrinfo(host != NULL && host[0] != '\0' ? host : NULL, serv, &hints, &res);
	if (gai != 0) {
		PC_LOG(ERR, control, "rpc listen: %s: %s", host, gai_strerror(gai));
		return gai == EAI_SYSTEM ? -errno : gai == EAI_MEMORY ? -ENOMEM : -EINVAL;
	}
	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		freeaddrinfo(res);
		return -ENOMEM;
	}
	l->kind = RPC_KIND_LISTENER;
	l->fd = -1;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		struct sockaddr_storage ss = {0};
		socklen_t len = sizeof(ss);
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
		uint16_t bound;
		int one = 1;
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (fd < 0) {
			rc = -errno;
			continue;
		}
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
		    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0 ||
		    getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
		    epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
			rc = -errno;
			close(fd);
			continue;
		}
		l->fd = fd;
		bound = sockaddr_port(&ss);
		if (bound_port != NULL) {
			*bound_port = bound;
		}
		PC_LOG(INFO, control, "rpc: listening on %s port %u%s",
		       host != NULL && host[0] != '\0' ? host : "*", bound,
		       r->secret_len != 0 ? "" : " (no cluster_secret: open mode)");
		break;
	}
	freeaddrinfo(res);
	if (l->fd < 0) {
		PC_LOG(ERR, control, "rpc listen on %s port %u: %s", host != NULL ? host : "*",
		       port, strerror(-rc));
		free(l);
		return rc;
	}
	TAILQ_INSERT_TAIL(&r->listeners, l, link);
	return 0;
}

int
pc_rpc_wait_fd(const struct pc_rpc *r)
{
	return r->epfd;
}

int
pc_rpc_poll(struct pc_rpc *r, uint64_t now_ns)
{
	struct epoll_event evs[RPC_EPOLL_EVENTS];
	int work = 0;
	int n;

	if (!r->owner_set) {
		r->owner = pthread_self();
		r->owner_set = true;
	}
	rpc_assert_owner(r);
	assert(!r->in_poll);
	r->in_poll = true;
	r->now_ns = now_ns;
	n = epoll_wait(r->epfd, evs, RPC_EPOLL_EVENTS, 0);
	for (int i = 0; i < n; i++) {
		if (*(const uint8_t *)evs[i].data.ptr == RPC_KIND_LISTENER) {
			work += rpc_accept(r, evs[i].data.ptr);
		} else {
			work += conn_event(evs[i].data.ptr, evs[i].events);
		}
	}
	work += rpc_drain(r);
	if (now_ns >= r->next_timer_ns) {
		work += rpc_timers(r);
		work += rpc_drain(r);
	}
	if (r->n_queued > 0) {
		work += rpc_kick(r);
	}
	work += rpc_flush(r);
	work += rpc_drain(r);
	rpc_reap(r);
	r->in_poll = false;
	return work;
}

void
pc_rpc_get_stats(const struct pc_rpc *r, struct pc_rpc_stats *st)
{
	*st = r->stats;
}

int
pc_rpc_reply(struct pc_rpc_conn *c, const struct pc_frame_hdr *req, uint16_t flags,
	     const void *body, uint32_t len)
{
	struct pc_rpc *r;
	struct pc_frame_hdr h;
	uint8_t raw[PC_FRAME_HDR_SIZE];
	int rc;

	if (c == NULL || req == NULL || !c->server || (flags & ~PC_FRAME_F_KNOWN) != 0 ||
	    (body == NULL && len != 0)) {
		return -EINVAL;
	}
	r = c->rpc;
	rpc_assert_owner(r);
	if (c->state != CONN_READY) {
		return -ENOTCONN;
	}
	h = (struct pc_frame_hdr){
		.version = PC_FRAME_VERSION,
		.type = req->type,
		.flags = (uint16_t)(PC_FRAME_F_REPLY | flags),
		.request_id = req->request_id,
		.body_len = len,
	};
	if (len > pc_frame_body_cap(h.type, h.flags)) {
		return -EMSGSIZE;
	}
	pc_frame_hdr_encode(raw, &h);
	rc = out_append(c, raw, sizeof(raw), body, len);
	if (rc == -ENOBUFS) {
		r->stats.out_overflow++;
		if (rpc_log_ok(r)) {
			PC_LOG(WARNING, control,
			       "%s: replies not read, over %u bytes queued: closing", c->name,
			       r->out_cap);
		}
		conn_close(c, -ENOBUFS);
		return rc;
	}
	if (rc == 0) {
		r->stats.replies_sent++;
		conn_update_events(c); /* may stop reading: back-pressure */
	}
	return rc;
}

int
pc_rpc_reply_error(struct pc_rpc_conn *c, const struct pc_frame_hdr *req, int err, const char *msg)
{
	uint8_t body[PC_FRAME_ERROR_BODY_MAX];
	int len;

	if (err >= 0 || err < -PC_FRAME_ERRNO_MAX) {
		return -EINVAL;
	}
	len = pc_frame_enc_error(body, sizeof(body), err, msg);
	if (len < 0) {
		return len;
	}
	return pc_rpc_reply(c, req, PC_FRAME_F_ERROR, body, (uint32_t)len);
}

void
pc_rpc_conn_malformed(struct pc_rpc_conn *c, const char *why)
{
	rpc_assert_owner(c->rpc);
	conn_malformed(c, why);
}

void
pc_rpc_conn_hold(struct pc_rpc_conn *c)
{
	rpc_assert_owner(c->rpc);
	c->refs++;
}

void
pc_rpc_conn_release(struct pc_rpc_conn *c)
{
	rpc_assert_owner(c->rpc);
	assert(c->refs > 0);
	c->refs--; /* a closed one is freed by the next poll's reap */
}

bool
pc_rpc_conn_is_open(const struct pc_rpc_conn *c)
{
	return c->state != CONN_CLOSED;
}

const char *
pc_rpc_conn_name(const struct pc_rpc_conn *c)
{
	return c->name;
}

struct pc_rpc_peer *
pc_rpc_peer_get(struct pc_rpc *r, const char *host, uint16_t port)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
	};
	struct addrinfo *res = NULL;
	struct pc_rpc_peer *p;
	uint32_t nb = 16;
	char serv[8];

	rpc_assert_owner(r);
	if (host == NULL || port == 0 || r->destroying) {
		errno = EINVAL;
		return NULL;
	}
	snprintf(serv, sizeof(serv), "%u", port);
	if (getaddrinfo(host, serv, &hints, &res) != 0 || res == NULL) {
		PC_LOG(ERR, control, "rpc peer %s: not an IP address literal", host);
		errno = EINVAL;
		return NULL;
	}
	for (p = TAILQ_FIRST(&r->peers); p != NULL; p = TAILQ_NEXT(p, link)) {
		if (p->addr_len == res->ai_addrlen &&
		    memcmp(&p->addr, res->ai_addr, p->addr_len) == 0) {
			freeaddrinfo(res);
			p->refs++;
			return p;
		}
	}
	while (nb < r->max_inflight) {
		nb *= 2;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL || (p->table = calloc(nb, sizeof(*p->table))) == NULL) {
		free(p);
		freeaddrinfo(res);
		errno = ENOMEM;
		return NULL;
	}
	p->rpc = r;
	memcpy(&p->addr, res->ai_addr, res->ai_addrlen);
	p->addr_len = res->ai_addrlen;
	freeaddrinfo(res);
	p->refs = 1;
	p->hmask = nb - 1;
	p->next_id = 1;
	p->backoff_ns = r->backoff_min_ns;
	TAILQ_INIT(&p->queue);
	TAILQ_INIT(&p->inflight);
	addr_name((const struct sockaddr *)&p->addr, p->addr_len, p->name, sizeof(p->name));
	TAILQ_INSERT_TAIL(&r->peers, p, link);
	return p;
}

void
pc_rpc_peer_put(struct pc_rpc_peer *p)
{
	struct pc_rpc *r;

	if (p == NULL) {
		return;
	}
	r = p->rpc;
	rpc_assert_owner(r);
	assert(p->refs > 0);
	if (p->refs <= 0 || --p->refs > 0) {
		return;
	}
	p->dying = true;
	TAILQ_REMOVE(&r->peers, p, link);
	TAILQ_INSERT_TAIL(&r->dying, p, link);
	peer_fail_list(p, true, -ECANCELED);
	peer_fail_list(p, false, -ECANCELED);
	if (p->conn != NULL) {
		struct pc_rpc_conn *c = p->conn;

		c->peer = NULL;
		p->conn = NULL;
		conn_close(c, -ECANCELED);
	}
	if (!r->in_poll && !r->destroying) {
		rpc_drain(r);
		rpc_reap(r);
	}
}

const char *
pc_rpc_peer_name(const struct pc_rpc_peer *p)
{
	return p->name;
}

int
pc_rpc_call(struct pc_rpc_peer *p, uint8_t type, const void *body, uint32_t len,
	    uint64_t deadline_ns, pc_rpc_reply_fn cb, void *arg)
{
	struct pc_rpc *r;
	struct rpc_call *call;

	if (p == NULL || cb == NULL || deadline_ns == 0 || type == 0 ||
	    type >= PC_FRAME_TYPE__MAX || (body == NULL && len != 0)) {
		return -EINVAL;
	}
	r = p->rpc;
	rpc_assert_owner(r);
	if (p->dying || r->destroying) {
		return -ESHUTDOWN;
	}
	if (len > pc_frame_body_cap(type, 0)) {
		return -EMSGSIZE;
	}
	if (p->n_calls >= r->max_inflight) {
		return -EBUSY;
	}
	call = calloc(1, sizeof(*call));
	if (call == NULL) {
		return -ENOMEM;
	}
	if (len > 0) {
		call->body = malloc(len);
		if (call->body == NULL) {
			free(call);
			return -ENOMEM;
		}
		memcpy(call->body, body, len);
	}
	call->type = type;
	call->len = len;
	call->deadline_ns = deadline_ns;
	call->cb = cb;
	call->arg = arg;
	TAILQ_INSERT_TAIL(&p->queue, call, link);
	p->n_calls++;
	r->n_queued++;
	r->stats.calls++;
	rpc_arm(r, deadline_ns);
	return 0;
}
