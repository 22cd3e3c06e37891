/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Control RPC connections: the non-blocking TCP layer under the engines'
 * control and discovery traffic. Frames are control/frame.h's; every
 * connection opens with control/auth.h's handshake, and no frame is read or
 * sent before it has succeeded.
 *
 * One struct pc_rpc per engine, owned by the control lcore: a listener side
 * (accepted connections, whose requests go to the on_request callback) and a
 * client side (one struct pc_rpc_peer per remote endpoint, with calls that
 * each end in exactly one reply callback). Nothing blocks: pc_rpc_poll() does
 * all the I/O (epoll_wait with a zero timeout inside), and time is passed in
 * as monotonic nanoseconds, so tests drive it with a fake clock.
 *
 * Hostile peers. A connection gets no buffer sized by the peer before it has
 * authenticated: the handshake messages are fixed-size and read into the
 * connection struct, and the first bytes that are not the auth magic close it
 * at once (an HTTP "POST /", random garbage). After auth, a frame header is
 * decoded and its body_len checked against the type's cap before any body
 * byte is read, and the body buffer grows only as real bytes arrive (at most
 * twice what arrived, plus 4 KiB). Deadlines: the handshake (auth_timeout),
 * a frame that has started arriving (read_timeout, from its first byte, not
 * refreshed: slowloris), output that makes no progress (read_timeout), a
 * connect (connect_timeout), every call (its own deadline). Caps: accepted
 * connections (max_conns: over it, accepted and closed at once), calls per
 * peer (max_inflight), output bytes per connection (out_cap: once a server
 * connection has out_cap / 2 of replies queued it stops reading and
 * dispatching, between two frames, holding what it already read (at most one
 * 64 KiB read) until the replies drain; a reply that would pass out_cap, which
 * only a reply sent later from a held connection can do, closes it).
 * Authenticated connections that are idle stay open (peers keep their
 * connections); max_conns bounds them. Everything is counted
 * (struct pc_rpc_stats); hostile peers are logged at most once a second.
 *
 * Callbacks (on_request, reply callbacks) run inside pc_rpc_poll(),
 * pc_rpc_destroy() and pc_rpc_peer_put() only, never inside pc_rpc_call() or
 * pc_rpc_reply(); from a callback, the functions that queue work
 * (pc_rpc_call, pc_rpc_reply, pc_rpc_reply_error, pc_rpc_peer_get/put,
 * pc_rpc_conn_hold/release) may be called, pc_rpc_poll() and
 * pc_rpc_destroy() may not. Sends are queued and go out at the end of the
 * pc_rpc_poll() pass.
 *
 * Threads: every function here is for the lcore that owns the struct pc_rpc
 * (the thread of its first pc_rpc_poll(); debug builds assert it). No DPDK
 * is needed beyond rte_log.
 */
#ifndef PC_RPC_H
#define PC_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

struct pc_rpc;
struct pc_rpc_conn; /* an accepted connection, as seen by on_request */
struct pc_rpc_peer; /* a remote endpoint we call */

/* Defaults, used where struct pc_rpc_opts has 0. */
#define PC_RPC_MAX_CONNS_DEFAULT       1024
#define PC_RPC_MAX_INFLIGHT_DEFAULT    1024
#define PC_RPC_READ_TIMEOUT_DEFAULT    (10ull * 1000000000ull) /* 10 s */
#define PC_RPC_AUTH_TIMEOUT_DEFAULT    (5ull * 1000000000ull)  /* 5 s */
#define PC_RPC_CONNECT_TIMEOUT_DEFAULT (3ull * 1000000000ull)  /* 3 s */
#define PC_RPC_BACKOFF_MIN_DEFAULT     (50ull * 1000000ull)    /* 50 ms */
#define PC_RPC_BACKOFF_MAX_DEFAULT     (5ull * 1000000000ull)  /* 5 s */
#define PC_RPC_OUT_CAP_DEFAULT         (2u * (PC_FRAME_HDR_SIZE + PC_FRAME_BODY_MAX))
/* Bounds on the options (pc_rpc_create refuses values outside them). */
#define PC_RPC_MAX_CONNS_MAX    65536
#define PC_RPC_MAX_INFLIGHT_MAX 65536
#define PC_RPC_OUT_CAP_MIN      (PC_FRAME_HDR_SIZE + PC_FRAME_BODY_MAX)
#define PC_RPC_OUT_CAP_MAX      (1u << 30)

/*
 * A request arrived on an accepted connection. `c` is valid during the call;
 * to reply later, pc_rpc_conn_hold() it first. `body` (h->body_len bytes,
 * == len) is valid during the call only.
 */
typedef void (*pc_rpc_request_fn)(void *arg, struct pc_rpc_conn *c, const struct pc_frame_hdr *h,
				  const uint8_t *body, uint32_t len);

/*
 * A call ended. status 0: the reply is h (PC_FRAME_F_REPLY set; with
 * PC_FRAME_F_ERROR the body is an error body, pc_frame_dec_error()) and
 * body/len, valid during the call only. Otherwise h is NULL, body NULL,
 * len 0, and status is:
 *   -ETIMEDOUT     the call's deadline passed (a later reply is dropped);
 *                  also when a reply frame stayed incomplete for read_timeout
 *                  (the connection is closed)
 *   -ECONNRESET    the connection broke while the call was sent
 *   -EBADMSG       the peer broke the protocol on that connection (a
 *                  malformed frame, a reply to an unknown id, a reply of
 *                  another type); the connection was closed
 *   -EACCES        the handshake failed: a secret on one side only or a
 *                  different secret (the server closes without a word)
 *   -EPROTO        the handshake failed: the peer is not a PeerCache engine
 *   -ECONNREFUSED and other connect errors (-EHOSTUNREACH ...), -ETIMEDOUT
 *                  for a connect or handshake that timed out: the connection
 *                  attempt this call waited for failed
 *   -ECANCELED     pc_rpc_destroy(), or the last pc_rpc_peer_put()
 */
typedef void (*pc_rpc_reply_fn)(void *arg, int status, const struct pc_frame_hdr *h,
				const uint8_t *body, uint32_t len);

struct pc_rpc_opts {
	/* Cluster secret (copied), PC_AUTH_SECRET_MIN..MAX bytes; len 0: open mode. */
	const uint8_t *secret;
	size_t secret_len;
	/* Requests on accepted connections; required for pc_rpc_listen(). */
	pc_rpc_request_fn on_request;
	void *arg;
	/* Limits; 0 takes the default above. Times in ns. */
	uint32_t max_conns;          /* accepted connections open at once */
	uint32_t max_inflight;       /* calls per peer, queued and sent */
	uint32_t out_cap;            /* output bytes queued per connection */
	uint64_t read_timeout_ns;    /* a started frame, and stalled output */
	uint64_t auth_timeout_ns;    /* accept or connect to the end of the handshake */
	uint64_t connect_timeout_ns; /* TCP connect */
	uint64_t backoff_min_ns;     /* first reconnect delay after a failed attempt */
	uint64_t backoff_max_ns;     /* doubling stops here; each delay jittered to [d/2, d] */
};

struct pc_rpc_stats {
	uint64_t conns_open;     /* accepted connections open now */
	uint64_t accepted;       /* accepted connections, all time (not those over max_conns) */
	uint64_t rejected;       /* closed at once: over max_conns */
	uint64_t auth_failed;    /* accepted connections closed before auth succeeded */
	uint64_t malformed;      /* connections closed for a malformed frame (either side) */
	uint64_t slow_closed;    /* closed by the read deadline or stalled output */
	uint64_t out_overflow;   /* closed: a reply passed out_cap */
	uint64_t requests;       /* requests given to on_request */
	uint64_t replies_sent;   /* replies queued by pc_rpc_reply */
	uint64_t calls;          /* calls accepted by pc_rpc_call */
	uint64_t replies;        /* calls ended with a reply */
	uint64_t timeouts;       /* calls ended with -ETIMEDOUT at their deadline */
	uint64_t call_failed;    /* calls ended with any other error */
	uint64_t late_replies;   /* replies to calls that had already timed out: dropped */
	uint64_t connects;       /* outgoing connection attempts */
	uint64_t reconnects;     /* of those, after a previous connection or attempt */
	uint64_t connect_failed; /* attempts that failed before the handshake succeeded */
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t buf_bytes;      /* connection buffers (bodies and output) allocated now */
	uint64_t buf_bytes_peak; /* the most they ever were */
};

/*
 * Create an RPC endpoint (no socket yet). Returns NULL with errno set:
 * EINVAL (a secret of a bad length, an option out of bounds, backoff_min >
 * backoff_max), ENOMEM, EMFILE/ENFILE (epoll).
 */
struct pc_rpc *pc_rpc_create(const struct pc_rpc_opts *o);

/*
 * Close everything: listeners, connections; every pending call's callback
 * runs with -ECANCELED. Holds on connections must have been released.
 * Accepts NULL.
 */
void pc_rpc_destroy(struct pc_rpc *r);

/*
 * Listen on host:port (host: an IPv4 or IPv6 literal, or a name resolved
 * now with getaddrinfo, which may block: start-up only; NULL or "" = any
 * address: the first address getaddrinfo gives that binds). port 0 picks
 * an ephemeral port; the bound port is written to *bound_port (may be
 * NULL). SO_REUSEADDR. May be called more than once (control and discovery
 * ports). Returns 0; -EINVAL (no on_request, or a name that does not
 * resolve); -ENOMEM; or the -errno of socket, bind or listen (-EADDRINUSE
 * ...).
 */
int pc_rpc_listen(struct pc_rpc *r, const char *host, uint16_t port, uint16_t *bound_port);

/*
 * Do everything that is ready: accept, read, handshakes, dispatch requests
 * and replies, deadlines and backoff timers (all against now_ns, monotonic),
 * connect peers that have calls, send what was queued. Returns the number
 * of things done (0: idle).
 */
int pc_rpc_poll(struct pc_rpc *r, uint64_t now_ns);

/* The epoll set pc_rpc_poll() waits on: readable when it has I/O to do. */
int pc_rpc_wait_fd(const struct pc_rpc *r);

/* Counters (struct pc_rpc_stats) into *st. */
void pc_rpc_get_stats(const struct pc_rpc *r, struct pc_rpc_stats *st);

/*
 * Queue a reply to request `req` on `c`: type and request id from req,
 * flags = PC_FRAME_F_REPLY | `flags` (0 or PC_FRAME_F_ERROR). Sent at the
 * end of the poll pass. Returns 0; -EINVAL (unknown flags, body NULL with a
 * length); -EMSGSIZE (len over the reply's cap for that type: nothing is
 * queued, the connection stays); -ENOTCONN (the connection has closed: a
 * held one); -ENOBUFS (out_cap would be passed: the connection is closed
 * and counted); -ENOMEM.
 */
int pc_rpc_reply(struct pc_rpc_conn *c, const struct pc_frame_hdr *req, uint16_t flags,
		 const void *body, uint32_t len);

/*
 * Queue an error reply (pc_frame_enc_error: `err` -1..-4095, msg cut to
 * PC_FRAME_ERRMSG_MAX printable bytes, NULL = empty). Returns as
 * pc_rpc_reply(), and -EINVAL for err out of range.
 */
int pc_rpc_reply_error(struct pc_rpc_conn *c, const struct pc_frame_hdr *req, int err,
		       const char *msg);

/*
 * A request's body on `c` did not decode (the header was fine, the body
 * broke its type's rules): close the connection now, count it in
 * `malformed`, and log `why` (rate-limited). Nothing more is read from it;
 * calls from on_request only. A held `c` stays valid until released.
 */
void pc_rpc_conn_malformed(struct pc_rpc_conn *c, const char *why);

/* Keep `c` valid past on_request (for a later reply); every hold needs a release. */
void pc_rpc_conn_hold(struct pc_rpc_conn *c);
void pc_rpc_conn_release(struct pc_rpc_conn *c);

/* Whether `c` is still open (a held connection may have closed meanwhile). */
bool pc_rpc_conn_is_open(const struct pc_rpc_conn *c);

/* The peer's address, "1.2.3.4:5678" or "[::1]:5678", for log lines. */
const char *pc_rpc_conn_name(const struct pc_rpc_conn *c);

/*
 * The peer for host:port, created on first use and shared after (a
 * reference each; pc_rpc_peer_put() each). host must be an IPv4 or IPv6
 * literal: nothing here may block on DNS. Does not connect: the first call
 * does. Returns NULL with errno EINVAL (not a literal, port 0) or ENOMEM.
 */
struct pc_rpc_peer *pc_rpc_peer_get(struct pc_rpc *r, const char *host, uint16_t port);

/*
 * Drop a reference. At the last one the peer is closed: its connection at
 * once, and its pending calls end with -ECANCELED (their callbacks run
 * before this returns, or, when called from a callback inside
 * pc_rpc_poll(), later in that poll). A later pc_rpc_peer_get() of the
 * endpoint makes a new peer. Accepts NULL.
 */
void pc_rpc_peer_put(struct pc_rpc_peer *p);

/* "host:port" of the peer, for log lines. */
const char *pc_rpc_peer_name(const struct pc_rpc_peer *p);

/*
 * Call `type` on the peer with body/len (len <= pc_frame_body_cap(type, 0)).
 * The request is queued, given the next request id of the peer, and sent
 * once a connection is up and authenticated (connecting if there is none,
 * after the backoff delay if the last attempt failed). `cb(arg, ...)` runs
 * exactly once, from pc_rpc_poll() (or destroy / the last peer put), never
 * from here; `deadline_ns` is absolute on the pc_rpc_poll() clock. Returns 0;
 * -EINVAL (unknown type, cb NULL, deadline 0, body NULL with a length);
 * -EMSGSIZE (len over the request cap of the type); -EBUSY (max_inflight
 * calls pending on this peer); -ESHUTDOWN (the peer was put for the last
 * time); -ENOMEM. On error cb is not called.
 */
int pc_rpc_call(struct pc_rpc_peer *p, uint8_t type, const void *body, uint32_t len,
		uint64_t deadline_ns, pc_rpc_reply_fn cb, void *arg);

#endif /* PC_RPC_H */
