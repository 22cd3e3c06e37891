/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The tcp transport (see tcp.h for the contract, data_proto.h for the wire).
 *
 * Shape. One level-triggered epoll set per pc_xport; epoll data points at a
 * struct that starts with a kind byte (the listener, a server connection, a
 * channel). Closing takes a socket out of the set and closes its fd at once,
 * but the memory waits on a dead list until the end of the poll, since an
 * event of the same batch may still point at it.
 *
 * Channels (reading side): READs are encoded into the channel's request
 * buffer when posted (room for PC_TCP_CHAN_DEPTH requests, so a post never
 * waits for room) and kept in send order; replies come in the same order,
 * so the head READ is the one the next reply answers. A reply header is
 * read into a 24-byte array; a successful reply's page is received straight
 * into the local segment, with the next reply header in the same readv.
 * Finished READs wait on x->done until a poll hands them out.
 *
 * Server connections: requests are read only while there is room to answer
 * them (free reply slots times the request size), so nothing read is ever
 * held back; each is answered at once into the reply ring (the page pinned)
 * and the ring is written with one sendmsg gathering headers and pages.
 *
 * Zero-copy serving (opts->tcp_zerocopy): a sendmsg carrying at least
 * TCP_ZC_MIN_BYTES of pages goes with MSG_ZEROCOPY, so the kernel sends
 * straight from the segment and reads the bytes later, when the NIC does.
 * Each such call gets the connection's next 32-bit id; a reply whose bytes
 * went in one is held (slot and pin) after its last byte is written, until
 * the error queue reports that id done (EPOLLERR). Held replies sit between
 * q_tail and q_head in the ring and are released in ring order. When a
 * notification says the kernel copied after all (loopback, or a device
 * without scatter-gather), the connection stops asking: the copy was paid
 * anyway, and pinning on top of it only costs.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
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
#include <sys/uio.h>
#include <unistd.h>

#include <linux/errqueue.h>
#include <sodium.h>

#include "auth.h"
#include "data_proto.h"
#include "pc_common.h"
#include "pc_log.h"
#include "store.h"
#include "tcp.h"

#define TCP_EPOLL_EVENTS 64
/*
 * After an epoll_wait that found nothing, the next one waits this long: a
 * syscall every pass would double an idle worker's pass time (and so the
 * latency of the session rings it also polls); a reply is seen at most this
 * much later. A sleeping lcore is woken by the epoll fd itself.
 */
#define TCP_EPOLL_IDLE_NS    4000
#define TCP_READS_PER_EVENT  8 /* fairness: then the next socket */
#define TCP_ACCEPTS_PER_POLL 64
#define TCP_IOV_MAX          64
#define TCP_LOG_INTERVAL_NS  1000000000ull /* hostile-peer warnings: one a second */
#define TCP_NAME_LEN         (INET6_ADDRSTRLEN + 16)
#define TCP_AUTH_MAGIC       "PCA1" /* auth.h's header magic: a first byte test */
#define TCP_AUTH_MAGIC_LEN   4
/*
 * Zero-copy sends: below about 10 KB the page pinning and the notification
 * cost more than the copy (the kernel's msg_zerocopy documentation); and at
 * most TCP_ZC_WINDOW sends per connection wait for their notification (a
 * bitmap of that many ids), past which sends are copied.
 */
#define TCP_ZC_MIN_BYTES (16u << 10)
#define TCP_ZC_WINDOW    256u
#define TCP_ERRQ_CTL     256 /* room for a sock_extended_err and its offender address */

_Static_assert(PC_AUTH_CHALLENGE_LEN == PC_AUTH_CONFIRM_LEN, "one handshake read size");

enum tcp_kind {
	TCP_KIND_LISTENER = 1,
	TCP_KIND_SCONN,
	TCP_KIND_CHAN,
};

enum tcp_state {
	ST_CONNECTING = 1, /* channel: non-blocking connect in progress */
	ST_AUTH,           /* the handshake */
	ST_READY,          /* authenticated: requests and replies */
	ST_CLOSED,         /* fd closed; memory waits for the reap */
};

struct tcp_op {
	TAILQ_ENTRY(tcp_op) link; /* its channel's ops, then x->done, then x->free_ops */
	uint64_t id;
	uint64_t cookie;
	uint64_t local_off;
	uint64_t deadline_ns;
	uint32_t len;
	int status;
};
TAILQ_HEAD(tcp_op_list, tcp_op);

/*
 * Server: one answer queued; head is a reply header or a handshake message.
 * Both head and data stay as they are until the reply is released: a
 * zero-copy send reads them after sendmsg returns.
 */
struct tcp_reply {
	uint8_t head[PC_AUTH_CHALLENGE_LEN];
	uint32_t head_len;
	uint32_t data_len; /* page bytes after head, from the segment */
	uint64_t sent;     /* of head_len + data_len */
	const uint8_t *data;
	struct pc_store_loc loc; /* pinned while loc.slot != NULL */
	uint32_t zc_id;          /* the last zero-copy send that carried its bytes */
	bool zc_wait;            /* one did: held until zc_id is reported done */
};

struct tcp_sconn {
	uint8_t kind; /* first: epoll data points here */
	uint8_t state;
	bool wblocked; /* the last send hit EAGAIN: EPOLLOUT armed */
	uint32_t events;
	int fd;
	struct pc_xport *x;
	TAILQ_ENTRY(tcp_sconn) link; /* x->sconns, then x->dead_sconns */
	uint64_t deadline_ns;        /* AUTH: the handshake's end; READY: a started request's */
	uint64_t wdeadline_ns;       /* output pending without progress until then (0: none) */
	uint32_t hs_have;
	uint32_t req_off; /* requests read: bytes [req_off, req_have) of req not answered yet */
	uint32_t req_have;
	/* The reply ring: q_zc held replies from q_tail, then q_n unsent from q_head. */
	uint32_t q_tail;
	uint32_t q_zc;
	uint32_t q_head;
	uint32_t q_n;
	uint64_t q_bytes; /* unsent bytes queued */
	bool zc;          /* SO_ZEROCOPY is on, and the kernel has not copied yet */
	uint32_t zc_next; /* the id the next zero-copy send gets */
	uint32_t zc_done; /* every id before this one is done */
	uint64_t zc_early[TCP_ZC_WINDOW / 64]; /* done out of order: bit id % TCP_ZC_WINDOW */
	uint8_t hs[PC_AUTH_RESPONSE_LEN];
	uint8_t req[PC_TCP_SERVE_QUEUE * PC_DATA_REQ_SIZE];
	struct tcp_reply q[PC_TCP_SERVE_QUEUE];
	struct pc_auth auth;
	char name[TCP_NAME_LEN];
};
TAILQ_HEAD(tcp_sconn_list, tcp_sconn);

struct tcp_peer;

struct tcp_chan {
	uint8_t kind; /* first: epoll data points here */
	uint8_t state;
	uint8_t hs_step; /* 0: waiting for the CHALLENGE, 1: for the CONFIRM */
	bool wblocked;
	bool has_hdr; /* the head READ's reply header is in: its page is arriving */
	bool on_flush;
	uint32_t events;
	int fd;
	struct pc_xport *x;
	struct tcp_peer *peer;
	TAILQ_ENTRY(tcp_chan) link; /* peer->chans, then x->dead_chans */
	TAILQ_ENTRY(tcp_chan) flush_link;
	struct tcp_op_list ops; /* in send order */
	uint32_t n_ops;
	uint64_t next_id;
	uint32_t hs_have;
	uint32_t hs_out_off;
	uint32_t hs_out_len;
	uint32_t hdr_have;
	uint32_t body_have;
	uint32_t out_off;
	uint32_t out_len;
	uint8_t hs[PC_AUTH_CHALLENGE_LEN];
	uint8_t hs_out[PC_AUTH_RESPONSE_LEN];
	uint8_t hdr[PC_DATA_REP_SIZE];
	uint8_t out[PC_TCP_CHAN_DEPTH * PC_DATA_REQ_SIZE];
	struct pc_auth auth;
};
TAILQ_HEAD(tcp_chan_list, tcp_chan);

struct tcp_peer {
	TAILQ_ENTRY(tcp_peer) link;
	struct tcp_chan_list chans;
	uint32_t n_chans;
	uint64_t incarnation;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char node_id[PC_TCP_NODE_ID_MAX + 1];
	char name[PC_TCP_NODE_ID_MAX + TCP_NAME_LEN + 2];
};
TAILQ_HEAD(tcp_peer_list, tcp_peer);

struct tcp_listener {
	uint8_t kind; /* first: epoll data points here */
	int fd;
};

struct pc_xport {
	int epfd;
	bool owner_set; /* the lcore that first posts or polls owns the xport */
	pthread_t owner;
	struct tcp_listener lst;
	uint16_t port;
	struct pc_store *store;
	unsigned int ci;
	uint8_t *seg_base;
	uint64_t seg_size;
	uint8_t *serve_base; /* the store's segment */
	uint64_t serve_size;
	uint32_t max_chans;
	bool zerocopy; /* serve with MSG_ZEROCOPY */
	uint64_t timeout_ns;
	uint64_t now_ns;
	uint64_t next_timer_ns; /* no deadline is earlier than this */
	uint64_t next_epoll_ns; /* the last epoll_wait found nothing: not before this */
	uint64_t log_next_ns;
	uint32_t n_sconns;
	uint8_t secret[PC_AUTH_SECRET_MAX];
	size_t secret_len;
	struct tcp_sconn_list sconns;
	struct tcp_sconn_list dead_sconns;
	struct tcp_peer_list peers;
	struct tcp_chan_list dead_chans;
	struct tcp_chan_list flush;
	struct tcp_op_list done;
	struct tcp_op_list free_ops;
	struct pc_xport_stats stats;
};

/* ---------------------------------------------------------------- helpers */

/* Created on the control lcore, then owned by the lcore that first uses it. */
static void
xp_assert_owner(struct pc_xport *x)
{
	if (!x->owner_set) {
		x->owner = pthread_self();
		x->owner_set = true;
	}
	assert(pthread_equal(x->owner, pthread_self()));
}

/* Hostile or failing peers can produce a line per connection: one a second. */
static bool
xp_log_ok(struct pc_xport *x)
{
	if (x->now_ns < x->log_next_ns) {
		return false;
	}
	x->log_next_ns = x->now_ns + TCP_LOG_INTERVAL_NS;
	return true;
}

static void
xp_arm(struct pc_xport *x, uint64_t deadline_ns)
{
	if (deadline_ns < x->next_timer_ns) {
		x->next_timer_ns = deadline_ns;
	}
}

static void
addr_name(const struct sockaddr_storage *ss, char *out, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";
	uint16_t port = 0;

	if (ss->ss_family == AF_INET6) {
		struct sockaddr_in6 sin6;

		memcpy(&sin6, ss, sizeof(sin6));
		inet_ntop(AF_INET6, &sin6.sin6_addr, host, sizeof(host));
		port = ntohs(sin6.sin6_port);
		snprintf(out, size, "[%s]:%u", host, port);
		return;
	}
	if (ss->ss_family == AF_INET) {
		struct sockaddr_in sin;

		memcpy(&sin, ss, sizeof(sin));
		inet_ntop(AF_INET, &sin.sin_addr, host, sizeof(host));
		port = ntohs(sin.sin_port);
	}
	snprintf(out, size, "%s:%u", host, port);
}

/* An IP literal (v4 or v6) and a port; NULL or "" with any_ok is the wildcard. */
static int
parse_addr(const char *host, uint16_t port, bool any_ok, struct sockaddr_storage *ss,
	   socklen_t *len)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};

	memset(ss, 0, sizeof(*ss));
	if (host == NULL || host[0] == '\0') {
		if (!any_ok) {
			return -EINVAL;
		}
		sin6.sin6_addr = in6addr_any;
		memcpy(ss, &sin6, sizeof(sin6));
		*len = sizeof(sin6);
		return 0;
	}
	if (inet_pton(AF_INET, host, &sin.sin_addr) == 1) {
		memcpy(ss, &sin, sizeof(sin));
		*len = sizeof(sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6.sin6_addr) == 1) {
		memcpy(ss, &sin6, sizeof(sin6));
		*len = sizeof(sin6);
		return 0;
	}
	return -EINVAL;
}

static int
epoll_set(struct pc_xport *x, int fd, int op, void *ptr, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = ptr};

	return epoll_ctl(x->epfd, op, fd, &ev) == 0 ? 0 : -errno;
}

/* ------------------------------------------------------------------ READs */

static struct tcp_op *
op_get(struct pc_xport *x)
{
	struct tcp_op *op = TAILQ_FIRST(&x->free_ops);

	if (op != NULL) {
		TAILQ_REMOVE(&x->free_ops, op, link);
		return op;
	}
	return malloc(sizeof(*op));
}

/* A READ is finished: counted, and queued for the next poll to hand out. */
static void
op_done(struct pc_xport *x, struct tcp_op *op, int status)
{
	op->status = status;
	if (status == 0) {
		x->stats.reads_ok++;
		x->stats.bytes_read += op->len;
	} else {
		x->stats.reads_failed++;
		if (status == -ESTALE) {
			x->stats.reads_stale++;
		} else if (status == -ETIMEDOUT) {
			x->stats.timeouts++;
		}
	}
	TAILQ_INSERT_TAIL(&x->done, op, link);
}

/* ---------------------------------------------------------------- channels */

static int
chan_update_events(struct tcp_chan *ch)
{
	uint32_t want;
	int rc;

	if (ch->state == ST_CLOSED) {
		return 0;
	}
	if (ch->state == ST_CONNECTING) {
		want = EPOLLOUT;
	} else {
		want = EPOLLIN | EPOLLRDHUP | (ch->wblocked ? EPOLLOUT : 0);
	}
	if (want == ch->events) {
		return 0;
	}
	rc = epoll_set(ch->x, ch->fd, EPOLL_CTL_MOD, ch, want);
	if (rc == 0) {
		ch->events = want;
	}
	return rc;
}

/*
 * Close a channel for good: out of epoll, fd closed, off its peer. Its READs
 * complete with err; with timed_out, those whose deadline passed complete
 * -ETIMEDOUT and the others -ECONNRESET. counted: an error or a timeout
 * (channels_destroyed), not the xport's own destroy.
 */
static void
chan_close(struct tcp_chan *ch, int err, bool timed_out, bool counted)
{
	struct pc_xport *x = ch->x;
	struct tcp_op *op;

	if (ch->state == ST_CLOSED) {
		return;
	}
	epoll_ctl(x->epfd, EPOLL_CTL_DEL, ch->fd, NULL);
	close(ch->fd);
	ch->fd = -1;
	ch->state = ST_CLOSED;
	pc_auth_wipe(&ch->auth);
	if (ch->on_flush) {
		TAILQ_REMOVE(&x->flush, ch, flush_link);
		ch->on_flush = false;
	}
	TAILQ_REMOVE(&ch->peer->chans, ch, link);
	ch->peer->n_chans--;
	TAILQ_INSERT_TAIL(&x->dead_chans, ch, link);
	x->stats.channels_open--;
	if (counted) {
		x->stats.channels_destroyed++;
	}
	while ((op = TAILQ_FIRST(&ch->ops)) != NULL) {
		TAILQ_REMOVE(&ch->ops, op, link);
		if (timed_out) {
			op_done(x, op, x->now_ns >= op->deadline_ns ? -ETIMEDOUT : -ECONNRESET);
		} else {
			op_done(x, op, err);
		}
	}
	ch->n_ops = 0;
}

static void
chan_fail(struct tcp_chan *ch, int err, const char *why)
{
	struct pc_xport *x = ch->x;

	if (xp_log_ok(x)) {
		PC_LOG(WARNING, verbs, "tcp: channel to %s: %s (%s): closing it", ch->peer->name,
		       why, strerror(-err));
	}
	chan_close(ch, err, false, true);
}

static void
chan_mark_flush(struct tcp_chan *ch)
{
	if (!ch->on_flush && ch->state != ST_CLOSED) {
		ch->on_flush = true;
		TAILQ_INSERT_TAIL(&ch->x->flush, ch, flush_link);
	}
}

/* Send what is pending: the handshake message, then (once ready) the requests. */
static int
chan_write(struct tcp_chan *ch)
{
	int work = 0;

	for (;;) {
		const uint8_t *p;
		size_t n;
		ssize_t sent;

		if (ch->hs_out_off < ch->hs_out_len) {
			p = ch->hs_out + ch->hs_out_off;
			n = ch->hs_out_len - ch->hs_out_off;
		} else if (ch->state == ST_READY && ch->out_off < ch->out_len) {
			p = ch->out + ch->out_off;
			n = ch->out_len - ch->out_off;
		} else {
			break;
		}
		sent = send(ch->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (sent > 0) {
			work = 1;
			if (ch->hs_out_off < ch->hs_out_len) {
				ch->hs_out_off += (uint32_t)sent;
			} else {
				ch->out_off += (uint32_t)sent;
				if (ch->out_off == ch->out_len) {
					ch->out_off = 0;
					ch->out_len = 0;
				}
			}
			continue;
		}
		if (sent < 0 && errno == EINTR) {
			continue;
		}
		if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ch->wblocked = true;
			chan_update_events(ch);
			return work;
		}
		chan_fail(ch, -ECONNRESET, "send failed");
		return 1;
	}
	if (ch->wblocked) {
		ch->wblocked = false;
		chan_update_events(ch);
	}
	return work;
}

static void
chan_auth_failed(struct tcp_chan *ch, int rc)
{
	struct pc_xport *x = ch->x;

	if (xp_log_ok(x)) {
		PC_LOG(WARNING, verbs, "tcp: channel to %s: authentication failed: %s",
		       ch->peer->name, pc_auth_error(&ch->auth));
	}
	chan_close(ch, rc, false, true);
}

/* A whole handshake message is in ch->hs. */
static void
chan_hs_step(struct tcp_chan *ch)
{
	struct pc_xport *x = ch->x;
	int rc;

	ch->hs_have = 0;
	if (ch->hs_step == 0) {
		rc = pc_auth_client_respond(&ch->auth, x->secret, x->secret_len, ch->hs,
					    PC_AUTH_CHALLENGE_LEN, ch->hs_out);
		if (rc != 0) {
			chan_auth_failed(ch, rc);
			return;
		}
		ch->hs_out_off = 0;
		ch->hs_out_len = PC_AUTH_RESPONSE_LEN;
		ch->hs_step = 1;
		chan_mark_flush(ch);
		return;
	}
	rc = pc_auth_client_finish(&ch->auth, ch->hs, PC_AUTH_CONFIRM_LEN);
	if (rc != 0) {
		chan_auth_failed(ch, rc);
		return;
	}
	ch->state = ST_READY;
	chan_mark_flush(ch); /* the requests posted meanwhile */
}

static void
chan_eof(struct tcp_chan *ch, int err)
{
	/* A server that denies our RESPONSE closes without a word: that is the answer. */
	if (ch->state == ST_AUTH && ch->hs_step == 1) {
		struct pc_xport *x = ch->x;

		if (xp_log_ok(x)) {
			PC_LOG(WARNING, verbs,
			       "tcp: %s denied our handshake (a different cluster_secret?)",
			       ch->peer->name);
		}
		chan_close(ch, -EACCES, false, true);
		return;
	}
	chan_fail(ch, err, "the peer closed the connection");
}

/* Handshake bytes: exactly what the message still needs, never more. */
static int
chan_read_hs(struct tcp_chan *ch)
{
	/* CHALLENGE and CONFIRM have the same size (auth.h): hs_step tells them apart. */
	uint32_t want = PC_AUTH_CHALLENGE_LEN;
	uint32_t check = ch->hs_have;
	ssize_t n = recv(ch->fd, ch->hs + ch->hs_have, want - ch->hs_have, MSG_DONTWAIT);

	if (n == 0) {
		chan_eof(ch, -ECONNRESET);
		return -1;
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
			return 0;
		}
		chan_eof(ch, errno == ECONNREFUSED ? -ECONNREFUSED : -ECONNRESET);
		return -1;
	}
	ch->hs_have += (uint32_t)n;
	for (; check < ch->hs_have && check < TCP_AUTH_MAGIC_LEN; check++) {
		if (ch->hs[check] != (uint8_t)TCP_AUTH_MAGIC[check]) {
			chan_fail(ch, -EPROTO, "not a PeerCache data port (bad handshake magic)");
			return -1;
		}
	}
	if (ch->hs_have == want) {
		chan_hs_step(ch);
	}
	return 1;
}

/* A whole reply header is in ch->hdr: match it with the head READ. */
static void
chan_reply_hdr(struct tcp_chan *ch)
{
	struct pc_xport *x = ch->x;
	struct tcp_op *op = TAILQ_FIRST(&ch->ops);
	struct pc_data_rep rep;

	ch->hdr_have = 0;
	if (pc_data_rep_decode(ch->hdr, sizeof(ch->hdr), &rep) != 0) {
		chan_fail(ch, -EPROTO, "malformed reply header");
		return;
	}
	if (op == NULL || rep.id != op->id) {
		chan_fail(ch, -EPROTO, "a reply out of order or to no request");
		return;
	}
	if (rep.status != 0) {
		TAILQ_REMOVE(&ch->ops, op, link);
		ch->n_ops--;
		op_done(x, op, rep.status);
		return;
	}
	if (rep.len != op->len) {
		chan_fail(ch, -EPROTO, "a reply of another length than asked");
		return;
	}
	ch->has_hdr = true;
	ch->body_have = 0;
}

/* Reply bytes: headers into ch->hdr, pages straight into the local segment. */
static int
chan_read_ready(struct tcp_chan *ch)
{
	struct pc_xport *x = ch->x;
	struct iovec iov[2];
	int niov;
	size_t asked;
	ssize_t n;
	size_t got;

	if (ch->has_hdr) {
		struct tcp_op *op = TAILQ_FIRST(&ch->ops);

		iov[0].iov_base = x->seg_base + op->local_off + ch->body_have;
		iov[0].iov_len = op->len - ch->body_have;
		iov[1].iov_base = ch->hdr; /* the next reply's header comes right after */
		iov[1].iov_len = sizeof(ch->hdr);
		niov = 2;
	} else {
		iov[0].iov_base = ch->hdr + ch->hdr_have;
		iov[0].iov_len = sizeof(ch->hdr) - ch->hdr_have;
		niov = 1;
	}
	asked = iov[0].iov_len + (niov == 2 ? iov[1].iov_len : 0);
	n = readv(ch->fd, iov, niov);
	if (n == 0) {
		chan_eof(ch, -ECONNRESET);
		return -1;
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
			return 0;
		}
		chan_eof(ch, -ECONNRESET);
		return -1;
	}
	got = (size_t)n;
	if (ch->has_hdr) {
		struct tcp_op *op = TAILQ_FIRST(&ch->ops);
		size_t take = PC_MIN(got, (size_t)(op->len - ch->body_have));

		ch->body_have += (uint32_t)take;
		got -= take;
		if (ch->body_have == op->len) {
			TAILQ_REMOVE(&ch->ops, op, link);
			ch->n_ops--;
			ch->has_hdr = false;
			op_done(x, op, 0);
		}
		ch->hdr_have = (uint32_t)got; /* 0 unless the page is whole */
	} else {
		ch->hdr_have += (uint32_t)got;
	}
	if (ch->hdr_have == sizeof(ch->hdr)) {
		chan_reply_hdr(ch);
	}
	return (size_t)n == asked ? 2 : 1; /* 2: there may be more */
}

static int
chan_read(struct tcp_chan *ch)
{
	int work = 0;

	for (int i = 0; i < TCP_READS_PER_EVENT && ch->state != ST_CLOSED; i++) {
		int rc = ch->state == ST_AUTH ? chan_read_hs(ch) : chan_read_ready(ch);

		if (rc < 0) {
			return work + 1;
		}
		if (rc == 0) {
			break;
		}
		work++;
		if (rc == 1 && ch->state == ST_READY) {
			break; /* drained */
		}
	}
	return work;
}

static void
chan_connect_done(struct tcp_chan *ch)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(ch->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
		err = errno;
	}
	if (err != 0) {
		chan_fail(ch,
			  err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH
				  ? -(err == ENETUNREACH ? EHOSTUNREACH : err)
				  : -ECONNRESET,
			  "connect failed");
		return;
	}
	ch->state = ST_AUTH;
	chan_update_events(ch);
}

static int
chan_event(struct tcp_chan *ch, uint32_t ev)
{
	int work = 0;

	if (ch->state == ST_CLOSED) {
		return 0;
	}
	if (ch->state == ST_CONNECTING) {
		if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
			chan_connect_done(ch);
			return 1;
		}
		return 0;
	}
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		work += chan_read(ch);
	}
	if (ch->state != ST_CLOSED && (ev & EPOLLOUT)) {
		work += chan_write(ch);
	}
	return work;
}

/* Open a channel to p (non-blocking connect). Returns it, or NULL with *err. */
static struct tcp_chan *
chan_open(struct pc_xport *x, struct tcp_peer *p, int *err)
{
	struct tcp_chan *ch = calloc(1, sizeof(*ch));
	int one = 1;
	int rc;

	if (ch == NULL) {
		*err = -ENOMEM;
		return NULL;
	}
	ch->kind = TCP_KIND_CHAN;
	ch->x = x;
	ch->peer = p;
	ch->next_id = 1;
	TAILQ_INIT(&ch->ops);
	ch->fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ch->fd < 0) {
		*err = -errno;
		goto err_free;
	}
	/* Small requests, pipelined: Nagle would hold them for a delayed ACK. */
	(void)setsockopt(ch->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(ch->fd, (const struct sockaddr *)&p->addr, p->addr_len) == 0) {
		ch->state = ST_AUTH;
		ch->events = EPOLLIN | EPOLLRDHUP;
	} else if (errno == EINPROGRESS) {
		ch->state = ST_CONNECTING;
		ch->events = EPOLLOUT;
	} else {
		rc = errno;
		*err = rc == ECONNREFUSED || rc == EHOSTUNREACH ? -rc
		       : rc == ENETUNREACH                      ? -EHOSTUNREACH
								: -ECONNRESET;
		goto err_close;
	}
	rc = epoll_set(x, ch->fd, EPOLL_CTL_ADD, ch, ch->events);
	if (rc != 0) {
		*err = rc;
		goto err_close;
	}
	TAILQ_INSERT_TAIL(&p->chans, ch, link);
	p->n_chans++;
	x->stats.channels_open++;
	x->stats.channels_opened++;
	return ch;

err_close:
	close(ch->fd);
err_free:
	free(ch);
	if (xp_log_ok(x)) {
		PC_LOG(WARNING, verbs, "tcp: cannot open a channel to %s: %s", p->name,
		       strerror(-*err));
	}
	return NULL;
}

/* ------------------------------------------------------------------ peers */

static void
peer_drop_chans(struct tcp_peer *p, int err)
{
	struct tcp_chan *ch;

	while ((ch = TAILQ_FIRST(&p->chans)) != NULL) {
		chan_close(ch, err, false, true);
	}
}

/* The peer record for pp: found, or made; a new incarnation or address drops old channels. */
static struct tcp_peer *
peer_get(struct pc_xport *x, const struct pc_xport_peer *pp, const struct sockaddr_storage *ss,
	 socklen_t ss_len)
{
	struct tcp_peer *p;
	char an[TCP_NAME_LEN];

	for (p = TAILQ_FIRST(&x->peers); p != NULL; p = TAILQ_NEXT(p, link)) {
		if (strcmp(p->node_id, pp->node_id) == 0) {
			break;
		}
	}
	if (p == NULL) {
		p = calloc(1, sizeof(*p));
		if (p == NULL) {
			return NULL;
		}
		TAILQ_INIT(&p->chans);
		snprintf(p->node_id, sizeof(p->node_id), "%s", pp->node_id);
		TAILQ_INSERT_TAIL(&x->peers, p, link);
	} else if (p->incarnation == pp->incarnation && p->addr_len == ss_len &&
		   memcmp(&p->addr, ss, ss_len) == 0) {
		return p;
	} else {
		PC_LOG(INFO, verbs,
		       "tcp: %s is a new incarnation (or moved): dropping its channels", p->name);
		peer_drop_chans(p, -ECONNRESET);
	}
	p->incarnation = pp->incarnation;
	memcpy(&p->addr, ss, ss_len);
	p->addr_len = ss_len;
	addr_name(ss, an, sizeof(an));
	snprintf(p->name, sizeof(p->name), "%s@%s", p->node_id, an);
	return p;
}

/*
 * The channel for the next READ: the least loaded with room; a new one while
 * every open one has work and the peer has fewer than max. NULL and *err 0:
 * all full; NULL and *err < 0: a channel could not be opened.
 */
static struct tcp_chan *
peer_pick(struct pc_xport *x, struct tcp_peer *p, int *err)
{
	struct tcp_chan *best = NULL;
	struct tcp_chan *ch;

	*err = 0;
	for (ch = TAILQ_FIRST(&p->chans); ch != NULL; ch = TAILQ_NEXT(ch, link)) {
		if (ch->n_ops < PC_TCP_CHAN_DEPTH && (best == NULL || ch->n_ops < best->n_ops)) {
			best = ch;
		}
	}
	if ((best == NULL || best->n_ops > 0) && p->n_chans < x->max_chans) {
		ch = chan_open(x, p, err);
		if (ch != NULL || best == NULL) {
			return ch;
		}
		*err = 0; /* an open channel will do */
	}
	return best;
}

/* ------------------------------------------------------- server connections */

/* No room to answer one more request now: the reply ring or the byte cap is full. */
static bool
sconn_backpressured(const struct tcp_sconn *c)
{
	return c->q_zc + c->q_n == PC_TCP_SERVE_QUEUE || c->q_bytes > PC_TCP_SERVE_OUT_CAP;
}

/* Requests wait unanswered: read no more until they are (the reader is pushed back). */
static bool
sconn_input_held(const struct tcp_sconn *c)
{
	return c->req_have - c->req_off >= PC_DATA_REQ_SIZE;
}

static int
sconn_update_events(struct tcp_sconn *c)
{
	uint32_t want = 0;
	int rc;

	if (c->state == ST_CLOSED) {
		return 0;
	}
	if (c->state == ST_AUTH || !sconn_input_held(c)) {
		want |= EPOLLIN | EPOLLRDHUP;
	}
	if (c->wblocked) {
		want |= EPOLLOUT;
	}
	if (want == c->events) {
		return 0;
	}
	rc = epoll_set(c->x, c->fd, EPOLL_CTL_MOD, c, want);
	if (rc == 0) {
		c->events = want;
	}
	return rc;
}

/* Release the held replies at the tail whose zero-copy sends are done, in ring order. */
static void
sconn_release(struct tcp_sconn *c)
{
	struct pc_xport *x = c->x;

	while (c->q_zc > 0) {
		struct tcp_reply *r = &c->q[c->q_tail];

		if (r->zc_wait && (int32_t)(r->zc_id - c->zc_done) >= 0) {
			break;
		}
		pc_store_unpin_bulk(x->store, x->ci, &r->loc, 1);
		c->q_tail = (c->q_tail + 1) % PC_TCP_SERVE_QUEUE;
		c->q_zc--;
	}
}

static void
sconn_unpin_all(struct tcp_sconn *c)
{
	struct pc_xport *x = c->x;

	for (c->q_n += c->q_zc; c->q_n > 0; c->q_n--) {
		struct tcp_reply *r = &c->q[c->q_tail];

		pc_store_unpin_bulk(x->store, x->ci, &r->loc, 1);
		c->q_tail = (c->q_tail + 1) % PC_TCP_SERVE_QUEUE;
	}
	c->q_head = c->q_tail;
	c->q_zc = 0;
	c->q_bytes = 0;
}

static void
sconn_close(struct tcp_sconn *c)
{
	struct pc_xport *x = c->x;

	if (c->state == ST_CLOSED) {
		return;
	}
	epoll_ctl(x->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->zc_next != c->zc_done) {
		/*
		 * Zero-copy sends are not reported done, and their pages are
		 * unpinned below: reset the connection, so that the kernel
		 * drops what it has not sent instead of reading it from the
		 * segment later. What a NIC is already reading is covered by
		 * the freed page's quarantine.
		 */
		struct linger lg = {.l_onoff = 1, .l_linger = 0};

		(void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(c->fd);
	c->fd = -1;
	c->state = ST_CLOSED;
	pc_auth_wipe(&c->auth);
	sconn_unpin_all(c);
	TAILQ_REMOVE(&x->sconns, c, link);
	TAILQ_INSERT_TAIL(&x->dead_sconns, c, link);
	x->n_sconns--;
	x->stats.serve_conns_open--;
}

/* The reader broke the protocol: counted, closed, nothing else. */
static void
sconn_malformed(struct tcp_sconn *c, const char *why)
{
	struct pc_xport *x = c->x;

	x->stats.serve_malformed++;
	x->stats.serve_refused++;
	if (xp_log_ok(x)) {
		PC_LOG(WARNING, verbs, "tcp: %s: %s: closing the connection", c->name, why);
	}
	sconn_close(c);
}

static struct tcp_reply *
sconn_push(struct tcp_sconn *c, const void *head, uint32_t head_len)
{
	struct tcp_reply *r = &c->q[(c->q_head + c->q_n) % PC_TCP_SERVE_QUEUE];

	assert(c->q_zc + c->q_n < PC_TCP_SERVE_QUEUE && head_len <= sizeof(r->head));
	memcpy(r->head, head, head_len);
	r->head_len = head_len;
	r->data = NULL;
	r->data_len = 0;
	r->sent = 0;
	r->loc.slot = NULL;
	r->zc_wait = false;
	c->q_n++;
	c->q_bytes += head_len;
	return r;
}

/* Answer one request: pin the page (the store judges offset and generation), queue it. */
static void
sconn_request(struct tcp_sconn *c, const struct pc_data_req *req)
{
	struct pc_xport *x = c->x;
	struct pc_data_rep rep = {.id = req->id};
	uint8_t raw[PC_DATA_REP_SIZE];
	struct pc_store_loc loc = {0};
	struct tcp_reply *r;
	int rc;

	x->stats.serve_requests++;
	rc = pc_store_pin_at(x->store, x->ci, req->remote_off, req->generation, &loc);
	if (rc == 0 && ((uint64_t)req->len != (uint64_t)PC_PAGE_HDR_SIZE + loc.len ||
			loc.off > x->serve_size || req->len > x->serve_size - loc.off)) {
		pc_store_unpin_bulk(x->store, x->ci, &loc, 1);
		rc = -EINVAL;
	}
	if (rc == -ENOENT) {
		rc = -ESTALE; /* nothing published there now: the reader's location is stale */
	} else if (rc != 0 && rc != -ESTALE && rc != -EINVAL) {
		rc = -EIO;
	}
	rep.status = rc;
	rep.len = rc == 0 ? req->len : 0;
	(void)pc_data_rep_encode(raw, &rep); /* valid by construction */
	r = sconn_push(c, raw, sizeof(raw));
	if (rc != 0) {
		x->stats.serve_refused++;
		return;
	}
	r->loc = loc;
	r->data = x->serve_base + loc.off;
	r->data_len = req->len;
	c->q_bytes += req->len;
}

/* Answer the whole requests read, while there is room; the rest waits for the output. */
static void
sconn_process(struct tcp_sconn *c)
{
	struct pc_xport *x = c->x;

	if (c->state != ST_READY) {
		return; /* the deadline is the handshake's */
	}
	while (c->state == ST_READY && sconn_input_held(c) && !sconn_backpressured(c)) {
		struct pc_data_req req;

		if (pc_data_req_decode(c->req + c->req_off, PC_DATA_REQ_SIZE, &req) != 0) {
			sconn_malformed(c, "malformed READ request");
			return;
		}
		c->req_off += PC_DATA_REQ_SIZE;
		sconn_request(c, &req);
	}
	if (c->req_off == c->req_have) {
		c->req_off = 0;
		c->req_have = 0;
	}
	/* A request that started arriving must be whole within the timeout (slowloris). */
	if (c->req_have == c->req_off || sconn_input_held(c)) {
		c->deadline_ns = 0; /* nothing partial, or whole requests waiting for the output */
	} else if (c->deadline_ns == 0) {
		c->deadline_ns = x->now_ns + x->timeout_ns;
		xp_arm(x, c->deadline_ns);
	}
}

static void
sconn_hs_input(struct tcp_sconn *c)
{
	struct pc_xport *x = c->x;
	uint8_t confirm[PC_AUTH_CONFIRM_LEN];
	int rc;

	rc = pc_auth_server_verify(&c->auth, c->hs, PC_AUTH_RESPONSE_LEN, confirm);
	if (rc != 0) {
		if (xp_log_ok(x)) {
			PC_LOG(WARNING, verbs, "tcp: %s: authentication failed: %s", c->name,
			       pc_auth_error(&c->auth));
		}
		x->stats.serve_refused++;
		sconn_close(c);
		return;
	}
	sconn_push(c, confirm, sizeof(confirm));
	c->state = ST_READY;
	c->deadline_ns = 0;
}

static int
sconn_read(struct tcp_sconn *c)
{
	int work = 0;

	for (int i = 0; i < TCP_READS_PER_EVENT && c->state != ST_CLOSED; i++) {
		uint8_t *buf;
		size_t room;
		ssize_t n;

		if (c->state == ST_AUTH) {
			buf = c->hs + c->hs_have;
			room = PC_AUTH_RESPONSE_LEN - c->hs_have;
		} else {
			/* Back-pressure: read nothing while requests wait to be answered. */
			if (sconn_input_held(c)) {
				sconn_update_events(c);
				break;
			}
			if (c->req_off > 0) {
				memmove(c->req, c->req + c->req_off, c->req_have - c->req_off);
				c->req_have -= c->req_off;
				c->req_off = 0;
			}
			buf = c->req + c->req_have;
			room = sizeof(c->req) - c->req_have;
		}
		n = recv(c->fd, buf, room, MSG_DONTWAIT);
		if (n == 0) {
			sconn_close(c);
			return work + 1;
		}
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				sconn_close(c);
				return work + 1;
			}
			break;
		}
		work++;
		if (c->state == ST_AUTH) {
			uint32_t check = c->hs_have;

			c->hs_have += (uint32_t)n;
			for (; check < c->hs_have && check < TCP_AUTH_MAGIC_LEN; check++) {
				if (c->hs[check] != (uint8_t)TCP_AUTH_MAGIC[check]) {
					sconn_malformed(
						c, "not a PeerCache peer (bad handshake magic)");
					return work;
				}
			}
			if (c->hs_have == PC_AUTH_RESPONSE_LEN) {
				sconn_hs_input(c);
			}
		} else {
			c->req_have += (uint32_t)n;
			sconn_process(c);
		}
		if ((size_t)n < room) {
			break;
		}
	}
	return work;
}

/*
 * Output is pending (unsent, or sent zero-copy and not reported done): it
 * must make progress within the timeout, or the reader is not reading.
 */
static void
sconn_arm_output(struct tcp_sconn *c, bool progress)
{
	struct pc_xport *x = c->x;

	if (c->q_n == 0 && c->q_zc == 0) {
		c->wdeadline_ns = 0;
	} else if (progress || c->wdeadline_ns == 0) {
		c->wdeadline_ns = x->now_ns + x->timeout_ns;
		xp_arm(x, c->wdeadline_ns);
	}
}

/* Zero-copy send ids lo..hi (inclusive, wrapping) are done: advance zc_done past them. */
static void
sconn_zc_done(struct tcp_sconn *c, uint32_t lo, uint32_t hi)
{
	uint32_t out = c->zc_next - c->zc_done; /* ids outstanding, < TCP_ZC_WINDOW */

	/* Only ids outstanding count: the kernel's range is clipped to them. */
	for (uint32_t i = 0; i < out; i++) {
		uint32_t id = c->zc_done + i;

		if ((int32_t)(id - lo) >= 0 && (int32_t)(hi - id) >= 0) {
			c->zc_early[(id % TCP_ZC_WINDOW) / 64] |= 1ull << (id % 64);
		}
	}
	while (c->zc_done != c->zc_next) {
		uint64_t *w = &c->zc_early[(c->zc_done % TCP_ZC_WINDOW) / 64];
		uint64_t bit = 1ull << (c->zc_done % 64);

		if ((*w & bit) == 0) {
			break;
		}
		*w &= ~bit;
		c->zc_done++;
	}
}

/*
 * Read the error queue: zero-copy notifications. Returns how many were
 * read; 0 when it held none (EPOLLERR then means a socket error).
 */
static int
sconn_errqueue(struct tcp_sconn *c)
{
	struct pc_xport *x = c->x;
	int got = 0;

	for (;;) {
		union {
			uint8_t buf[TCP_ERRQ_CTL];
			struct cmsghdr align;
		} ctl;
		struct msghdr msg = {.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf)};
		struct cmsghdr *cm;

		if (recvmsg(c->fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) {
			if (errno == EINTR) {
				continue;
			}
			return got; /* EAGAIN: drained */
		}
		for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
			struct sock_extended_err ee;

			if (!((cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR) ||
			      (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_RECVERR)) ||
			    cm->cmsg_len < CMSG_LEN(sizeof(ee))) {
				continue;
			}
			memcpy(&ee, CMSG_DATA(cm), sizeof(ee));
			if (ee.ee_origin != SO_EE_ORIGIN_ZEROCOPY || ee.ee_errno != 0) {
				continue;
			}
			got++;
			x->stats.serve_zc_done += ee.ee_data - ee.ee_info + 1u;
			if (ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED) {
				x->stats.serve_zc_copied += ee.ee_data - ee.ee_info + 1u;
				c->zc = false;
			}
			sconn_zc_done(c, ee.ee_info, ee.ee_data);
		}
	}
}

/* Write the reply ring: reply headers and pages gathered, pages unpinned once sent. */
static int
sconn_write(struct tcp_sconn *c)
{
	struct pc_xport *x = c->x;
	bool progress = false;
	bool copy = !c->zc;

	while (c->q_n > 0 && c->state != ST_CLOSED) {
		struct iovec iov[TCP_IOV_MAX];
		struct msghdr msg = {.msg_iov = iov};
		uint64_t data_bytes = 0;
		size_t niov = 0;
		bool zc;
		ssize_t n;

		for (uint32_t i = 0; i < c->q_n && niov + 2 <= TCP_IOV_MAX; i++) {
			struct tcp_reply *r = &c->q[(c->q_head + i) % PC_TCP_SERVE_QUEUE];

			if (r->sent < r->head_len) {
				iov[niov].iov_base = r->head + r->sent;
				iov[niov].iov_len = r->head_len - r->sent;
				niov++;
			}
			if (r->data_len > 0) {
				uint64_t d = r->sent > r->head_len ? r->sent - r->head_len : 0;

				iov[niov].iov_base = (void *)(r->data + d); /* only read */
				iov[niov].iov_len = r->data_len - d;
				data_bytes += iov[niov].iov_len;
				niov++;
			}
		}
		msg.msg_iovlen = niov;
		zc = !copy && c->zc && data_bytes >= TCP_ZC_MIN_BYTES &&
		     c->zc_next - c->zc_done < TCP_ZC_WINDOW;
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT | (zc ? MSG_ZEROCOPY : 0));
		if (n < 0 && zc && errno == ENOBUFS) {
			/*
			 * Over the locked-memory limit (RLIMIT_MEMLOCK without
			 * CAP_IPC_LOCK) or the socket's option memory (unread
			 * notifications): this send is copied. With none of
			 * ours outstanding the limit is the user's: stop asking.
			 */
			x->stats.serve_zc_nobufs++;
			if (c->zc_next == c->zc_done) {
				c->zc = false;
			}
			copy = true;
			continue;
		}
		if (n > 0) {
			uint64_t left = (uint64_t)n;

			progress = true;
			c->q_bytes -= left;
			if (zc) {
				x->stats.serve_zc_sends++;
				c->zc_next++;
			}
			while (left > 0) {
				struct tcp_reply *r = &c->q[c->q_head];
				uint64_t take = PC_MIN(left, r->head_len + r->data_len - r->sent);

				r->sent += take;
				left -= take;
				if (zc) {
					r->zc_id = c->zc_next - 1;
					r->zc_wait = true;
				}
				if (r->sent < r->head_len + r->data_len) {
					break;
				}
				x->stats.serve_bytes += r->data_len;
				c->q_head = (c->q_head + 1) % PC_TCP_SERVE_QUEUE;
				c->q_n--;
				c->q_zc++;
			}
			sconn_release(c);
			sconn_process(c); /* requests held back while the output was full */
			continue;
		}
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->wblocked = true;
			sconn_arm_output(c, progress);
			sconn_update_events(c);
			return progress;
		}
		sconn_close(c);
		return 1;
	}
	c->wblocked = false;
	sconn_arm_output(c, progress);
	sconn_update_events(c);
	return progress;
}

static int
sconn_event(struct tcp_sconn *c, uint32_t ev)
{
	int work = 0;

	if (c->state == ST_CLOSED) {
		return 0;
	}
	if (ev & EPOLLERR) {
		/* Zero-copy notifications; with none, a socket error. */
		int got = sconn_errqueue(c);

		if (got == 0) {
			sconn_close(c);
			return 1;
		}
		work += got;
		sconn_release(c);
		sconn_arm_output(c, true);
		sconn_process(c); /* requests held back while every slot was held */
		if (c->state != ST_CLOSED) {
			sconn_update_events(c);
		}
	}
	if (ev & EPOLLHUP) {
		sconn_close(c); /* the reader is gone: nothing left to answer */
		return work + 1;
	}
	if (c->state != ST_CLOSED && (ev & (EPOLLIN | EPOLLRDHUP))) {
		work += sconn_read(c);
	}
	/* Answer at once what was just read (and go on when the socket has room again). */
	if (c->state != ST_CLOSED && c->q_n > 0 && (!c->wblocked || (ev & EPOLLOUT))) {
		work += sconn_write(c);
	}
	return work;
}

static int
xp_accept(struct pc_xport *x)
{
	int work = 0;

	for (int i = 0; i < TCP_ACCEPTS_PER_POLL; i++) {
		struct sockaddr_storage ss = {0};
		socklen_t len = sizeof(ss);
		uint8_t challenge[PC_AUTH_CHALLENGE_LEN];
		struct tcp_sconn *c;
		int one = 1;
		int fd = accept4(x->lst.fd, (struct sockaddr *)&ss, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED) {
				continue;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK && xp_log_ok(x)) {
				PC_LOG(WARNING, verbs, "tcp: accept: %s", strerror(errno));
			}
			break;
		}
		work++;
		if (x->n_sconns >= PC_TCP_SERVE_CONNS_MAX) {
			x->stats.serve_refused++;
			if (xp_log_ok(x)) {
				PC_LOG(WARNING, verbs,
				       "tcp: %u data connections open: refusing one more",
				       x->n_sconns);
			}
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			PC_LOG(ERR, verbs, "tcp: accept: out of memory for a connection");
			close(fd);
			continue;
		}
		c->kind = TCP_KIND_SCONN;
		c->x = x;
		c->fd = fd;
		c->state = ST_AUTH;
		c->events = EPOLLIN | EPOLLRDHUP;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		/* A kernel without it (before 4.14) refuses the option: pages are copied. */
		c->zc = x->zerocopy &&
			setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)) == 0;
		if (epoll_set(x, fd, EPOLL_CTL_ADD, c, c->events) != 0) {
			close(fd);
			free(c);
			continue;
		}
		TAILQ_INSERT_TAIL(&x->sconns, c, link);
		x->n_sconns++;
		x->stats.serve_conns_open++;
		addr_name(&ss, c->name, sizeof(c->name));
		c->deadline_ns = x->now_ns + x->timeout_ns;
		xp_arm(x, c->deadline_ns);
		if (pc_auth_server_start(&c->auth, x->secret, x->secret_len, challenge) != 0) {
			PC_LOG(ERR, verbs, "tcp: %s: cannot start the handshake: %s", c->name,
			       pc_auth_error(&c->auth));
			sconn_close(c);
			continue;
		}
		sconn_push(c, challenge, sizeof(challenge));
		sconn_write(c);
	}
	return work;
}

/* ---------------------------------------------------------------- timers */

static void
timers_chans(struct pc_xport *x, uint64_t *next)
{
	struct tcp_peer *p;

	for (p = TAILQ_FIRST(&x->peers); p != NULL; p = TAILQ_NEXT(p, link)) {
		struct tcp_chan *ch;
		struct tcp_chan *ctmp;

		for (ch = TAILQ_FIRST(&p->chans); ch != NULL; ch = ctmp) {
			struct tcp_op *op;
			bool expired = false;

			ctmp = TAILQ_NEXT(ch, link);
			for (op = TAILQ_FIRST(&ch->ops); op != NULL; op = TAILQ_NEXT(op, link)) {
				if (x->now_ns >= op->deadline_ns) {
					expired = true;
					break;
				}
				*next = PC_MIN(*next, op->deadline_ns);
			}
			if (expired) {
				if (xp_log_ok(x)) {
					PC_LOG(WARNING, verbs,
					       "tcp: channel to %s: a READ timed out: resetting it",
					       p->name);
				}
				chan_close(ch, -ETIMEDOUT, true, true);
			}
		}
	}
}

static int
xp_timers(struct pc_xport *x)
{
	uint64_t next = UINT64_MAX;
	struct tcp_sconn *c;
	struct tcp_sconn *tmp;
	int n = 0;

	for (c = TAILQ_FIRST(&x->sconns); c != NULL; c = tmp) {
		tmp = TAILQ_NEXT(c, link);
		if ((c->deadline_ns != 0 && x->now_ns >= c->deadline_ns) ||
		    (c->wdeadline_ns != 0 && x->now_ns >= c->wdeadline_ns)) {
			n++;
			if (xp_log_ok(x)) {
				PC_LOG(WARNING, verbs, "tcp: %s: %s: closing", c->name,
				       c->state == ST_AUTH ? "handshake timed out"
				       : c->wdeadline_ns != 0 && x->now_ns >= c->wdeadline_ns
					       ? "not reading what we send"
					       : "a request incomplete for too long");
			}
			sconn_close(c);
			continue;
		}
		if (c->deadline_ns != 0) {
			next = PC_MIN(next, c->deadline_ns);
		}
		if (c->wdeadline_ns != 0) {
			next = PC_MIN(next, c->wdeadline_ns);
		}
	}
	timers_chans(x, &next);
	x->next_timer_ns = next;
	return n;
}

static int
xp_flush(struct pc_xport *x)
{
	struct tcp_chan *ch;
	int n = 0;

	while ((ch = TAILQ_FIRST(&x->flush)) != NULL) {
		TAILQ_REMOVE(&x->flush, ch, flush_link);
		ch->on_flush = false;
		if (ch->state != ST_CLOSED && ch->state != ST_CONNECTING && !ch->wblocked) {
			n += chan_write(ch);
		}
	}
	return n;
}

static void
xp_reap(struct pc_xport *x)
{
	struct tcp_chan *ch;
	struct tcp_sconn *c;

	while ((ch = TAILQ_FIRST(&x->dead_chans)) != NULL) {
		TAILQ_REMOVE(&x->dead_chans, ch, link);
		free(ch);
	}
	while ((c = TAILQ_FIRST(&x->dead_sconns)) != NULL) {
		TAILQ_REMOVE(&x->dead_sconns, c, link);
		free(c);
	}
}

/* ---------------------------------------------------------------- listener */

static int
xp_listen(struct pc_xport *x, const char *host, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1;
	int zero = 0;
	int rc;

	rc = parse_addr(host, port, true, &ss, &len);
	if (rc != 0) {
		PC_LOG(ERR, verbs, "tcp: bind_host \"%s\" is not an IP literal", host);
		return rc;
	}
	x->lst.kind = TCP_KIND_LISTENER;
	x->lst.fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (x->lst.fd < 0 && ss.ss_family == AF_INET6 && (host == NULL || host[0] == '\0')) {
		struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};

		memset(&ss, 0, sizeof(ss)); /* no IPv6 here: the IPv4 wildcard */
		memcpy(&ss, &sin, sizeof(sin));
		len = sizeof(sin);
		x->lst.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	}
	if (x->lst.fd < 0) {
		rc = -errno;
		PC_LOG(ERR, verbs, "tcp: socket: %s", strerror(errno));
		return rc;
	}
	if (ss.ss_family == AF_INET6) {
		(void)setsockopt(x->lst.fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	}
	if (setsockopt(x->lst.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(x->lst.fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    bind(x->lst.fd, (const struct sockaddr *)&ss, len) != 0 ||
	    listen(x->lst.fd, SOMAXCONN) != 0) {
		rc = -errno;
		PC_LOG(ERR, verbs, "tcp: listen on %s port %u: %s",
		       host != NULL && host[0] != '\0' ? host : "*", port, strerror(errno));
		return rc;
	}
	len = sizeof(ss);
	if (getsockname(x->lst.fd, (struct sockaddr *)&ss, &len) != 0) {
		return -errno;
	}
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 sin6;

		memcpy(&sin6, &ss, sizeof(sin6));
		x->port = ntohs(sin6.sin6_port);
	} else {
		struct sockaddr_in sin;

		memcpy(&sin, &ss, sizeof(sin));
		x->port = ntohs(sin.sin_port);
	}
	return epoll_set(x, x->lst.fd, EPOLL_CTL_ADD, &x->lst, EPOLLIN);
}

/* ------------------------------------------------------------- the ops */

static void tcp_destroy(struct pc_xport *x);

static struct pc_xport *
tcp_create(const struct pc_xport_opts *o)
{
	struct pc_xport *x;
	int rc;

	if (o == NULL || o->seg_base == NULL || o->seg_size == 0 ||
	    (o->secret_len != 0 && (o->secret == NULL || o->secret_len < PC_AUTH_SECRET_MIN ||
				    o->secret_len > PC_AUTH_SECRET_MAX)) ||
	    o->max_channels_per_peer > PC_TCP_CHANNELS_MAX ||
	    o->op_timeout_ns > PC_TCP_TIMEOUT_MAX) {
		PC_LOG(ERR, verbs,
		       "tcp: no options, no segment, a cluster secret of a bad length, "
		       "or an option out of bounds");
		errno = EINVAL;
		return NULL;
	}
	if (sodium_init() < 0) {
		PC_LOG(ERR, verbs, "tcp: libsodium failed to initialize");
		errno = EIO;
		return NULL;
	}
	x = calloc(1, sizeof(*x));
	if (x == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	x->epfd = -1;
	x->lst.fd = -1;
	TAILQ_INIT(&x->sconns);
	TAILQ_INIT(&x->dead_sconns);
	TAILQ_INIT(&x->peers);
	TAILQ_INIT(&x->dead_chans);
	TAILQ_INIT(&x->flush);
	TAILQ_INIT(&x->done);
	TAILQ_INIT(&x->free_ops);
	x->next_timer_ns = UINT64_MAX;
	x->store = o->store;
	x->ci = o->ci;
	x->seg_base = o->seg_base;
	x->seg_size = o->seg_size;
	x->max_chans = o->max_channels_per_peer != 0 ? o->max_channels_per_peer
						     : PC_XPORT_CHANNELS_DEFAULT;
	x->timeout_ns = o->op_timeout_ns != 0 ? o->op_timeout_ns : PC_XPORT_OP_TIMEOUT_DEFAULT;
	x->zerocopy = o->tcp_zerocopy;
	if (o->secret_len != 0) {
		memcpy(x->secret, o->secret, o->secret_len);
	}
	x->secret_len = o->secret_len;
	x->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (x->epfd < 0) {
		rc = errno;
		PC_LOG(ERR, verbs, "tcp: epoll_create1: %s", strerror(rc));
		goto err_destroy;
	}
	if (x->store != NULL) {
		x->serve_base = pc_store_segment_base(x->store);
		x->serve_size = pc_store_segment_size(x->store);
		rc = -xp_listen(x, o->bind_host, o->port);
		if (rc != 0) {
			goto err_destroy;
		}
	}
	return x;

err_destroy:
	tcp_destroy(x);
	errno = rc;
	return NULL;
}

static void
tcp_destroy(struct pc_xport *x)
{
	struct tcp_peer *p;
	struct tcp_sconn *c;
	struct tcp_op *op;

	if (x == NULL) {
		return;
	}
	while ((p = TAILQ_FIRST(&x->peers)) != NULL) {
		TAILQ_REMOVE(&x->peers, p, link);
		/* chan_close needs the peer: close first, free after. */
		while (!TAILQ_EMPTY(&p->chans)) {
			chan_close(TAILQ_FIRST(&p->chans), -ECANCELED, false, false);
		}
		free(p);
	}
	while ((c = TAILQ_FIRST(&x->sconns)) != NULL) {
		sconn_close(c);
	}
	xp_reap(x);
	while ((op = TAILQ_FIRST(&x->done)) != NULL) {
		TAILQ_REMOVE(&x->done, op, link);
		free(op);
	}
	while ((op = TAILQ_FIRST(&x->free_ops)) != NULL) {
		TAILQ_REMOVE(&x->free_ops, op, link);
		free(op);
	}
	if (x->lst.fd >= 0) {
		close(x->lst.fd);
	}
	if (x->epfd >= 0) {
		close(x->epfd);
	}
	sodium_memzero(x->secret, sizeof(x->secret));
	free(x);
}

static int
tcp_post_reads(struct pc_xport *x, const struct pc_xport_peer *pp,
	       const struct pc_xport_read *reads, unsigned int n, uint64_t deadline_ns,
	       uint64_t now_ns)
{
	struct sockaddr_storage ss;
	socklen_t ss_len;
	struct tcp_peer *p;
	unsigned int i;

	if (x == NULL || pp == NULL || (reads == NULL && n > 0) || pp->node_id == NULL ||
	    strlen(pp->node_id) > PC_TCP_NODE_ID_MAX ||
	    parse_addr(pp->host, pp->port, false, &ss, &ss_len) != 0 || pp->port == 0) {
		return -EINVAL;
	}
	xp_assert_owner(x);
	for (i = 0; i < n; i++) {
		const struct pc_xport_read *r = &reads[i];

		if (r->len < PC_DATA_LEN_MIN || r->len > PC_DATA_LEN_MAX ||
		    r->local_off > x->seg_size || r->len > x->seg_size - r->local_off) {
			return -EINVAL;
		}
	}
	if (n == 0) {
		return 0;
	}
	x->now_ns = now_ns;
	if (deadline_ns == 0) {
		deadline_ns = now_ns + x->timeout_ns;
	}
	p = peer_get(x, pp, &ss, ss_len);
	if (p == NULL) {
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		const struct pc_xport_read *r = &reads[i];
		struct pc_data_req req = {
			.remote_off = r->remote_off,
			.generation = r->generation,
			.len = r->len,
		};
		struct tcp_chan *ch;
		struct tcp_op *op;
		int err;

		ch = peer_pick(x, p, &err);
		if (ch == NULL && err == 0) {
			break; /* every channel is full: back-pressure */
		}
		op = op_get(x);
		if (op == NULL) {
			break;
		}
		op->cookie = r->cookie;
		op->local_off = r->local_off;
		op->len = r->len;
		op->deadline_ns = deadline_ns;
		x->stats.reads_posted++;
		if (ch == NULL) {
			op_done(x, op, err); /* no channel could open: say why at the next poll */
			continue;
		}
		op->id = ch->next_id++;
		req.id = op->id;
		if (ch->out_len + PC_DATA_REQ_SIZE > sizeof(ch->out)) {
			memmove(ch->out, ch->out + ch->out_off, ch->out_len - ch->out_off);
			ch->out_len -= ch->out_off;
			ch->out_off = 0;
		}
		/* Room by construction: at most PC_TCP_CHAN_DEPTH requests are unanswered. */
		(void)pc_data_req_encode(ch->out + ch->out_len, &req);
		ch->out_len += PC_DATA_REQ_SIZE;
		TAILQ_INSERT_TAIL(&ch->ops, op, link);
		ch->n_ops++;
		xp_arm(x, deadline_ns);
		if (ch->state == ST_READY) {
			chan_mark_flush(ch);
		}
	}
	xp_flush(x);
	return (int)i;
}

static int
tcp_poll(struct pc_xport *x, uint64_t now_ns, struct pc_xport_cqe *out, unsigned int max)
{
	struct epoll_event evs[TCP_EPOLL_EVENTS];
	struct tcp_op *op;
	unsigned int k = 0;
	int n;

	if (x == NULL) {
		return 0;
	}
	xp_assert_owner(x);
	x->now_ns = now_ns;
	n = 0;
	if (now_ns >= x->next_epoll_ns) {
		n = epoll_wait(x->epfd, evs, TCP_EPOLL_EVENTS, 0);
		x->next_epoll_ns = n > 0 ? 0 : now_ns + TCP_EPOLL_IDLE_NS;
	}
	for (int i = 0; i < n; i++) {
		uint8_t kind = *(const uint8_t *)evs[i].data.ptr;

		if (kind == TCP_KIND_LISTENER) {
			xp_accept(x);
		} else if (kind == TCP_KIND_SCONN) {
			sconn_event(evs[i].data.ptr, evs[i].events);
		} else {
			chan_event(evs[i].data.ptr, evs[i].events);
		}
	}
	if (now_ns >= x->next_timer_ns) {
		xp_timers(x);
	}
	xp_flush(x);
	xp_reap(x);
	while (k < max && (op = TAILQ_FIRST(&x->done)) != NULL) {
		TAILQ_REMOVE(&x->done, op, link);
		out[k].cookie = op->cookie;
		out[k].status = op->status;
		k++;
		TAILQ_INSERT_HEAD(&x->free_ops, op, link);
	}
	return (int)k;
}

static uint16_t
tcp_port(const struct pc_xport *x)
{
	return x != NULL ? x->port : 0;
}

static void
tcp_get_stats(const struct pc_xport *x, struct pc_xport_stats *st)
{
	if (x != NULL && st != NULL) {
		*st = x->stats;
	}
}

static int
tcp_wait_fd(const struct pc_xport *x)
{
	return x != NULL ? x->epfd : -1;
}

const struct pc_xport_ops pc_xport_tcp = {
	.name = "tcp",
	.create = tcp_create,
	.destroy = tcp_destroy,
	.post_reads = tcp_post_reads,
	.poll = tcp_poll,
	.port = tcp_port,
	.get_stats = tcp_get_stats,
	.wait_fd = tcp_wait_fd,
};
