/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * control/rpc.c: the control RPC connection layer, over real loopback
 * sockets with both ends in this process. Each side is a struct pc_rpc
 * stepped by hand with pc_rpc_poll() on a fake clock (g_now) that the tests
 * advance; sockets still need real time to move bytes, so the PUMP() loops
 * poll until a condition holds, giving up after 5 real seconds (a failure,
 * never a pass). Hostile peers are raw sockets that speak as much of the
 * protocol as the case needs, with the auth functions doing the crypto.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../../control/rpc.c"
#include "ut.h"
#include "helpers.h"

#define MS 1000000ull
#define S  1000000000ull

static const uint8_t g_secret[] = "correct horse battery staple, cluster A";
static const uint8_t g_other[] = "correct horse battery staple, cluster B";
#define SECRET_LEN (sizeof(g_secret) - 1)
#define OTHER_LEN  (sizeof(g_other) - 1)

static uint64_t g_now = 1000 * S; /* the fake monotonic clock every poll gets */

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * S + (uint64_t)ts.tv_nsec;
}

static struct pc_rpc_stats
stats_of(const struct pc_rpc *r)
{
	struct pc_rpc_stats st;

	pc_rpc_get_stats(r, &st);
	return st;
}

/*
 * Poll a and b (either may be NULL) at g_now until `cond` holds; false if it
 * still does not after 5 s of real time.
 */
#define PUMP(a, b, cond)                                                                           \
	({                                                                                         \
		uint64_t end_ = mono_ns() + 5 * S;                                                 \
		bool ok_ = true;                                                                   \
		while (!(cond)) {                                                                  \
			int w_ = 0;                                                                \
			if (mono_ns() > end_) {                                                    \
				ok_ = false;                                                       \
				break;                                                             \
			}                                                                          \
			if ((a) != NULL) {                                                         \
				w_ += pc_rpc_poll((a), g_now);                                     \
			}                                                                          \
			if ((b) != NULL) {                                                         \
				w_ += pc_rpc_poll((b), g_now);                                     \
			}                                                                          \
			if (w_ == 0) {                                                             \
				usleep(50);                                                        \
			}                                                                          \
		}                                                                                  \
		ok_;                                                                               \
	})

/* Poll a and b for `ms` of real time, whatever happens (to show that nothing does). */
static void
settle(struct pc_rpc *a, struct pc_rpc *b, unsigned int ms)
{
	uint64_t end = mono_ns() + ms * MS;

	while (mono_ns() < end) {
		if (a != NULL) {
			pc_rpc_poll(a, g_now);
		}
		if (b != NULL) {
			pc_rpc_poll(b, g_now);
		}
		usleep(100);
	}
}

/* ------------------------------------------------------------ the server */

enum srv_mode {
	SRV_ECHO,    /* reply with the request body (cut to the reply cap) */
	SRV_ERROR,   /* an error reply: -ENOENT */
	SRV_HOLD,    /* hold the first connection and request, reply later by hand */
	SRV_DROP,    /* never reply */
	SRV_BIG,     /* reply with a body of the reply cap */
	SRV_BADBODY, /* the body "does not decode": pc_rpc_conn_malformed() */
};

struct srv {
	struct pc_rpc *r;
	uint16_t port;
	int mode;
	uint32_t n_req;
	struct pc_rpc_conn *held;
	struct pc_frame_hdr held_hdr;
	uint8_t *big;
};

static void
srv_on_request(void *arg, struct pc_rpc_conn *c, const struct pc_frame_hdr *h, const uint8_t *body,
	       uint32_t len)
{
	struct srv *s = arg;
	uint32_t cap = pc_frame_body_cap(h->type, PC_FRAME_F_REPLY);

	s->n_req++;
	CU_ASSERT_EQUAL(h->body_len, len);
	CU_ASSERT_EQUAL(h->flags, 0);
	switch (s->mode) {
	case SRV_ECHO:
		CU_ASSERT_EQUAL(pc_rpc_reply(c, h, 0, body, PC_MIN(len, cap)), 0);
		break;
	case SRV_ERROR:
		CU_ASSERT_EQUAL(pc_rpc_reply_error(c, h, -ENOENT, "no such key"), 0);
		break;
	case SRV_HOLD:
		if (s->held == NULL) {
			pc_rpc_conn_hold(c);
			s->held = c;
			s->held_hdr = *h;
		}
		break;
	case SRV_BIG:
		pc_rpc_reply(c, h, 0, s->big, cap); /* may close on out_cap: that is tested */
		break;
	case SRV_BADBODY:
		pc_rpc_conn_malformed(c, "test: body refused");
		CU_ASSERT_FALSE(pc_rpc_conn_is_open(c));
		break;
	default:
		break;
	}
}

/* Start a server on 127.0.0.1 (port 0: any); opts may be NULL. */
static void
srv_start(struct srv *s, const uint8_t *secret, size_t secret_len, uint16_t port,
	  const struct pc_rpc_opts *base)
{
	struct pc_rpc_opts o = {0};

	if (base != NULL) {
		o = *base;
	}
	memset(s, 0, sizeof(*s));
	o.secret = secret;
	o.secret_len = secret_len;
	o.on_request = srv_on_request;
	o.arg = s;
	s->r = pc_rpc_create(&o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s->r);
	CU_ASSERT_EQUAL_FATAL(pc_rpc_listen(s->r, "127.0.0.1", port, &s->port), 0);
	CU_ASSERT_NOT_EQUAL(s->port, 0);
}

static void
srv_stop(struct srv *s)
{
	if (s->held != NULL) {
		pc_rpc_conn_release(s->held);
		s->held = NULL;
	}
	pc_rpc_destroy(s->r);
	s->r = NULL;
	free(s->big);
	s->big = NULL;
}

static struct pc_rpc *
client_new(const uint8_t *secret, size_t secret_len, const struct pc_rpc_opts *base)
{
	struct pc_rpc_opts o = {0};
	struct pc_rpc *r;

	if (base != NULL) {
		o = *base;
	}
	o.secret = secret;
	o.secret_len = secret_len;
	r = pc_rpc_create(&o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	return r;
}

/* ---------------------------------------------------------- reply records */

struct rec {
	int n; /* callbacks so far: must end at exactly 1 */
	int status;
	uint16_t flags;
	uint64_t id;
	uint32_t len;
	uint8_t body[256];
};

static void
rec_cb(void *arg, int status, const struct pc_frame_hdr *h, const uint8_t *body, uint32_t len)
{
	struct rec *rc = arg;

	rc->n++;
	rc->status = status;
	if (status == 0) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(h);
		CU_ASSERT_EQUAL(h->body_len, len);
		rc->flags = h->flags;
		rc->id = h->request_id;
		rc->len = len;
		memcpy(rc->body, body, PC_MIN(len, (uint32_t)sizeof(rc->body)));
	} else {
		CU_ASSERT_PTR_NULL(h);
		CU_ASSERT_PTR_NULL(body);
		CU_ASSERT_EQUAL(len, 0);
	}
}

/* ------------------------------------------------------------ raw sockets */

static int
raw_connect(uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	CU_ASSERT_FATAL(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* The kernel completes it from the backlog, before any accept(). */
	CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void
raw_send(int fd, const void *buf, size_t len)
{
	CU_ASSERT_EQUAL_FATAL(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

/*
 * Read up to `want` bytes from fd while polling r. Returns the bytes read;
 * *eof (may be NULL) tells whether the peer closed.
 */
static size_t
raw_read(struct pc_rpc *r, int fd, uint8_t *buf, size_t want, bool *eof)
{
	uint64_t end = mono_ns() + 5 * S;
	size_t have = 0;
	bool closed = false;

	while (have < want && !closed && mono_ns() < end) {
		ssize_t n = recv(fd, buf + have, want - have, MSG_DONTWAIT);

		if (n > 0) {
			have += (size_t)n;
		} else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			closed = true;
		} else if (r == NULL || pc_rpc_poll(r, g_now) == 0) {
			usleep(50);
		}
	}
	if (eof != NULL) {
		*eof = closed;
	}
	return have;
}

/* Poll r until fd sees the peer close (bytes before it are dropped). */
static bool
raw_wait_eof(struct pc_rpc *r, int fd)
{
	uint8_t sink[4096];
	bool eof = false;
	uint64_t end = mono_ns() + 5 * S;

	while (!eof && mono_ns() < end) {
		raw_read(r, fd, sink, sizeof(sink), &eof);
	}
	return eof;
}

/* Run the client side of the handshake by hand; the RESPONSE sent goes to resp (may be NULL). */
static int
raw_auth(struct pc_rpc *srv, int fd, const uint8_t *secret, size_t len,
	 uint8_t resp[PC_AUTH_RESPONSE_LEN])
{
	uint8_t challenge[PC_AUTH_CHALLENGE_LEN];
	uint8_t response[PC_AUTH_RESPONSE_LEN];
	uint8_t confirm[PC_AUTH_CONFIRM_LEN];
	struct pc_auth a;
	int rc;

	if (raw_read(srv, fd, challenge, sizeof(challenge), NULL) != sizeof(challenge)) {
		return -EIO;
	}
	rc = pc_auth_client_respond(&a, secret, len, challenge, sizeof(challenge), response);
	if (rc != 0) {
		return rc;
	}
	if (resp != NULL) {
		memcpy(resp, response, sizeof(response));
	}
	raw_send(fd, response, sizeof(response));
	if (raw_read(srv, fd, confirm, sizeof(confirm), NULL) != sizeof(confirm)) {
		return -ECONNRESET;
	}
	return pc_auth_client_finish(&a, confirm, sizeof(confirm));
}

static void
put_hdr(uint8_t raw[PC_FRAME_HDR_SIZE], uint8_t type, uint16_t flags, uint64_t id, uint32_t len)
{
	struct pc_frame_hdr h = {
		.version = PC_FRAME_VERSION,
		.type = type,
		.flags = flags,
		.request_id = id,
		.body_len = len,
	};

	pc_frame_hdr_encode(raw, &h);
}

static long
rss_kib(void)
{
	long pages = 0;
	long rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL) {
		return -1;
	}
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2) {
		rss = -1;
	}
	fclose(f);
	return rss < 0 ? -1 : rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* ------------------------------------------------------------------ tests */

static void
round_trip(const uint8_t *secret, size_t len)
{
	struct srv s;
	struct pc_rpc *cli = client_new(secret, len, NULL);
	struct pc_rpc_peer *p;
	struct pc_rpc_peer *again;
	struct rec rc = {0};
	struct rec rc2 = {0};
	uint8_t body[100];

	srv_start(&s, secret, len, 0, NULL);
	for (size_t i = 0; i < sizeof(body); i++) {
		body[i] = (uint8_t)(i * 7 + 1);
	}
	p = pc_rpc_peer_get(cli, "127.0.0.1", s.port);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	again = pc_rpc_peer_get(cli, "127.0.0.1", s.port);
	CU_ASSERT_PTR_EQUAL(again, p); /* one peer per endpoint */
	pc_rpc_peer_put(again);

	CU_ASSERT_EQUAL(
		pc_rpc_call(p, PC_FRAME_DIR_EXISTS, body, sizeof(body), g_now + 2 * S, rec_cb, &rc),
		0);
	CU_ASSERT_EQUAL(rc.n, 0); /* never from inside pc_rpc_call */
	CU_ASSERT_TRUE(PUMP(cli, s.r, rc.n == 1));
	CU_ASSERT_EQUAL(rc.status, 0);
	CU_ASSERT_EQUAL(rc.flags, PC_FRAME_F_REPLY);
	CU_ASSERT_EQUAL(rc.len, sizeof(body));
	CU_ASSERT_EQUAL(memcmp(rc.body, body, sizeof(body)), 0);
	CU_ASSERT_EQUAL(s.n_req, 1);

	/* A second call reuses the connection. */
	CU_ASSERT_EQUAL(pc_rpc_call(p, PC_FRAME_PING, NULL, 0, g_now + 2 * S, rec_cb, &rc2), 0);
	CU_ASSERT_TRUE(PUMP(cli, s.r, rc2.n == 1));
	CU_ASSERT_EQUAL(rc2.status, 0);
	CU_ASSERT_EQUAL(rc2.len, 0);
	CU_ASSERT_NOT_EQUAL(rc2.id, rc.id);
	CU_ASSERT_EQUAL(stats_of(cli).connects, 1);
	CU_ASSERT_EQUAL(stats_of(s.r).accepted, 1);
	CU_ASSERT_EQUAL(stats_of(s.r).auth_failed, 0);
	CU_ASSERT_EQUAL(stats_of(cli).replies, 2);
	settle(cli, s.r, 20);
	CU_ASSERT_EQUAL(rc.n, 1);
	CU_ASSERT_EQUAL(rc2.n, 1);

	pc_rpc_peer_put(p);
	pc_rpc_destroy(cli);
	srv_stop(&s);
}

static void
test_round_trip_open(void)
{
	round_trip(NULL, 0);
}

static void
test_round_trip_secret(void)
{
	round_trip(g_secret, SECRET_LEN);
}

static void
test_round_trip_ipv6(void)
{
	struct pc_rpc_opts o = {.on_request = srv_on_request};
	struct srv s = {0};
	struct pc_rpc *cli;
	struct pc_rpc_peer *p;
	struct rec rc = {0};
	int ret;

	o.arg = &s;
	s.r = pc_rpc_create(&o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s.r);
	ret = pc_rpc_listen(s.r, "::1", 0, &s.port);
	if (ret == -EADDRNOTAVAIL || ret == -EAFNOSUPPORT) {
		printf("skipped: no IPv6 loopback here ... ");
		pc_rpc_destroy(s.r);
		return;
	}
	CU_ASSERT_EQUAL_FATAL(ret, 0);
	cli = client_new(NULL, 0, NULL);
	p = pc_rpc_peer_get(cli, "::1", s.port);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(strncmp(pc_rpc_peer_name(p), "[::1]:", 6), 0);
	CU_ASSERT_EQUAL(pc_rpc_call(p, PC_FRAME_PING, NULL, 0, g_now + S, rec_cb, &rc), 0);
	CU_ASSERT_TRUE(PUMP(cli, s.r, rc.n == 1));
	CU_ASSERT_EQUAL(rc.status, 0);
	pc_rpc_peer_put(p);
	pc_rpc_destroy(cli);
	pc_rpc_destroy(s.r);
}

static void
test_bad_arguments(void)
{
	struct pc_rpc_opts o = {.secret = g_secret, .secret_len = 3};
	struct pc_rpc *cli;
	struct pc_rpc_peer *p;
	struct rec rc = {0};
	uint8_t big[64];

	errno = 0;
	CU_ASSERT_PTR_NULL(pc_rpc_create(&o));
	CU_ASSERT_EQUAL(errno, EINVAL);
	o = (struct pc_rpc_opts){.backoff_min_ns = 2 * S, .backoff_max_ns = S};
	CU_ASSERT_PTR_NULL(pc_rpc_create(&o));
	o = (struct pc_rpc_opts){.out_cap = 1000};
	CU_ASSERT_PTR_NULL(pc_rpc_create(&o));

	cli = client_new(NULL, 0, NULL);
	CU_ASSERT_EQUAL(pc_rpc_listen(cli, "127.0.0.1", 0, NULL), -EINVAL); /* no handler */
	errno = 0;
	CU_ASSERT_PTR_NULL(pc_rpc_peer_get(cli, "localhost", 1234)); /* no DNS on the lcore */
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT_PTR_NULL(pc_rpc_peer_get(cli, "127.0.0.1", 0));
	p = pc_rpc_peer_get(cli, "127.0.0.1", 9);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	memset(big, 0, sizeof(big));
	CU_ASSERT_EQUAL(pc_rpc_call(p, 0, NULL, 0, g_now + S, rec_cb, &rc), -EINVAL);
	CU_ASSERT_EQUAL(pc_rpc_call(p, PC_FRAME_TYPE__MAX, NULL, 0, g_now + S, rec_cb, &rc),
			-EINVAL);
	CU_ASSERT_EQUAL(pc_rpc_call(p, PC_FRAME_PING, NULL, 0, 0, rec_cb, &rc), -EINVAL);
	CU_ASSERT_EQUAL(pc_rpc_call(p, PC_FRAME_PING, NULL, 0, g_now + S, NULL, &rc), -EINVAL);
	CU_ASSERT_EQUAL(pc_rpc_call(p, PC_FRAME_PING, NULL, 4, g_now + S, rec_cb, &rc), -EINVAL);
	/* PING's request body is empty: its cap is 0. */
	CU_ASSERT_EQUAL(pc_rpc_call(p, PC_FRAME_PING, big, 1, g_now + S, rec_cb, &rc), -EMSGSIZE);
	CU_ASSERT_EQUAL(stats_of(cli).calls, 0);
	pc_rpc_peer_put(p);
	pc_rpc_destroy(cli);
	CU_ASSERT_EQUAL(rc.n, 0);
}

/* 1000 calls in flight on one connection, each answered with its own body. */
#define MANY 1000

struct slot {
	int n;
	int status;
	uint32_t want;
	uint32_t got;
	uint64_t id;
};

static void
slot_cb(void *arg, int status, const struct pc_frame_hdr *h, const uint8_t *body, uint32_t len)
{
	struct slot *sl = arg;

	sl->n++;
	sl->status = status;
	if (status == 0 && len == sizeof(sl->got)) {
		memcpy(&sl->got, body, sizeof(sl->got));
		sl->id = h->request_id;
	}
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a;
	uint64_t y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
test_many_in_flight(void)
{
	struct srv s;
	struct pc_rpc *cli = client_new(g_secret, SECRET_LEN, NULL);
	struct pc_rpc_peer *p;
	struct slot *slots = calloc(MANY, sizeof(*slots));
	uint64_t *ids = calloc(MANY, sizeof(*ids));
	struct rec extra = {0};
	int done = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(slots);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ids);
	srv_start(&s, g_secret, SECRET_LEN, 0, NULL);
	p = pc_rpc_peer_get(cli, "127.0.0.1", s.port);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	for (uint32_t i = 0; i < MANY; i++) {
		slots[i].want = i * 2654435761u;
		CU_ASSERT_EQUAL_FATAL(pc_rpc_call(p, PC_FRAME_DIR_LOOKUP, &slots[i].want,
						  sizeof(slots[i].want), g_now + 10 * S, slot_cb,
						  &slots[i]),
				      0);
	}
	CU_ASSERT_TRUE(PUMP(cli, s.r, stats_of(cli).replies + stats_of(cli).call_failed == MANY));
	for (uint32_t i = 0; i < MANY; i++) {
		done += slots[i].n == 1 && slots[i].status == 0 && slots[i].got == slots[i].want;
		ids[i] = slots[i].id;
	}
	CU_ASSERT_EQUAL(done, MANY);
	qsort(ids, MANY, sizeof(*ids), cmp_u64);
	for (uint32_t i = 1; i < MANY; i++) {
		CU_ASSERT_FATAL(ids[i] != ids[i - 1]);
	}
	CU_ASSERT_EQUAL(s.n_req, MANY);
	CU_ASSERT_EQUAL(stats_of(cli).connects, 1);
	CU_ASSERT_EQUAL(stats_of(cli).replies, MANY);
	CU_ASSERT_EQUAL(stats_of(s.r).replies_sent, MANY);

	/* max_inflight (1024) bounds what one peer may have pending. */
	for (uint32_t i = 0; i < PC_RPC_MAX_INFLIGHT_DEFAULT; i++) {
		CU_ASSERT_EQUAL_FATAL(pc_rpc_call(p, PC_FRAME_PING, NULL, 0, g_now + 10 * S,
						  slot_cb, &slots[i % MANY]),
				      0);
	}
	CU_ASSERT_EQUAL(pc_rpc_call(p, PC_FRAME_PING, NULL, 0, g_now + S, rec_cb, &extra), -EBUSY);
	CU_ASSERT_TRUE(PUMP(cli, s.r, stats_of(cli).replies == MANY + PC_RPC_MAX_INFLIGHT_DEFAULT));
	CU_ASSERT_EQUAL(pc_rpc_call(p, PC_FRAME_PING, NULL, 0, g_now + S, rec_cb, &extra), 0);
	CU_ASSERT_TRUE(PUMP(cli, s.r, extra.n == 1));
	CU_ASSERT_EQUAL(extra.status, 0);

	pc_rpc_peer_put(p);
	pc_rpc_destroy(cli);
	srv_stop(&s);
	free(slots);
	free(ids);
}

static void
auth_mismatch(const uint8_t *srv_secret, size_t srv_len, const uint8_t *cli_secret, size_t cli_len)
{
	struct srv s;
	struct pc_rpc *cli = client_new(cli_secret, cli_len, NULL);
	struct pc_rpc_peer *p;
	struct rec rc = {0};

	srv_start(&s, srv_secret, srv_len, 0, NULL);
	p = pc_rpc_peer_get(cli, "127.0.0.1", s.port);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(pc_rpc_call(p, PC_FRAME_PING, NULL, 0, g_now + 2 * S, rec_cb, &rc), 0);
	CU_ASSERT_TRUE(PUMP(cli, s.r, rc.n == 1 && stats_of(s.r).auth_failed == 1));
	CU_ASSERT_EQUAL(rc.status, -EACCES);
	CU_ASSERT_EQUAL(s.n_req, 0);
	CU_ASSERT_EQUAL(stats_of(s.r).requests, 0);
	CU_ASSERT_EQUAL(stats_of(s.r).conns_open, 0);
	CU_ASSERT_EQUAL(stats_of(cli).connect_failed, 1);
	settle(cli, s.r, 20);
	CU_ASSERT_EQUAL(rc.n, 1);
	pc_rpc_peer_put(p);
	pc_rpc_destroy(cli);
	srv_stop(&s);
}

static void
test_auth_wrong_secret(void)
{
	auth_mismatch(g_secret, SECRET_LEN, g_other, OTHER_LEN);
}

static void
test_auth_secret_server_only(void)
{
	auth_mismatch(g_secret, SECRET_LEN, NULL, 0);
}

static void
test_auth_secret_client_only(void)
{
	auth_mismatch(NULL, 0, g_secret, SECRET_LEN);
}

/* Garbage, HTTP, a frame before auth, a bad MAC and a replayed RESPONSE: closed, counted. */
static void
test_hostile_handshakes(void)
{
	static const char post[] = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd";
	uint8_t challenge[PC_AUTH_CHALLENGE_LEN];
	uint8_t resp[PC_AUTH_RESPONSE_LEN];
	uint8_t garbage[64];
	uint8_t frame[PC_FRAME_HDR_SIZE];
	uint8_t got[PC_AUTH_CONFIRM_LEN];
	struct srv s;
	bool eof;
	int fd;

	srv_start(&s, g_secret, SECRET_LEN, 0, NULL);
	randombytes_buf(garbage, sizeof(garbage));
	garbage[0] = 'G'; /* not the auth magic's first byte */

	/* Random bytes. */
	fd = raw_connect(s.port);
	raw_send(fd, garbage, sizeof(garbage));
	CU_ASSERT_TRUE(raw_wait_eof(s.r, fd));
	close(fd);
	CU_ASSERT_EQUAL(stats_of(s.r).auth_failed, 1);

	/* HTTP: closed on its first bytes, not after the auth deadline. */
	fd = raw_connect(s.port);
	raw_send(fd, post, sizeof(post) - 1);
	CU_ASSERT_TRUE(raw_wait_eof(s.r, fd));
	close(fd);
	CU_ASSERT_EQUAL(stats_of(s.r).auth_failed, 2);

	/* A well-formed frame instead of the RESPONSE. */
	fd = raw_connect(s.port);
	put_hdr(frame, PC_FRAME_PING, 0, 1, 0);
	raw_send(fd, frame, sizeof(frame));
	CU_ASSERT_TRUE(raw_wait_eof(s.r, fd));
	close(fd);
	CU_ASSERT_EQUAL(stats_of(s.r).auth_failed, 3);

	/* A good handshake, keeping its RESPONSE. */
	fd = raw_connect(s.port);
	CU_ASSERT_EQUAL(raw_auth(s.r, fd, g_secret, SECRET_LEN, resp), 0);
	close(fd);

	/* That RESPONSE replayed on a new connection: no CONFIRM, closed. */
	fd = raw_connect(s.port);
	CU_ASSERT_EQUAL(raw_read(s.r, fd, challenge, sizeof(challenge), NULL), sizeof(challenge));
	raw_send(fd, resp, sizeof(resp));
	CU_ASSERT_EQUAL(raw_read(s.r, fd, got, sizeof(got), &eof), 0);
	CU_ASSERT_TRUE(eof);
	close(fd);
	CU_ASSERT_TRUE(PUMP(s.r, NULL, stats_of(s.r).auth_failed == 4));

	/* A flipped MAC bit. */
	fd = raw_connect(s.port);
	CU_ASSERT_EQUAL(raw_read(s.r, fd, challenge, sizeof(challenge), NULL), sizeof(challenge));
	{
		struct pc_auth a;

		CU_ASSERT_EQUAL(pc_auth_client_respond(&a, g_secret, SECRET_LEN, challenge,
						       sizeof(challenge), resp),
				0);
	}
	resp[PC_AUTH_RESPONSE_LEN - 1] ^= 1;
	raw_send(fd, resp, sizeof(resp));
	CU_ASSERT_EQUAL(raw_read(s.r, fd, got, sizeof(got), &eof), 0);
	CU_ASSERT_TRUE(eof);
	close(fd);
	CU_ASSERT_TRUE(PUMP(s.r, NULL, stats_of(s.r).auth_failed == 5));

	/* Connected, then silent: closed at the auth deadline (fake clock), not before. */
	fd = raw_connect(s.port);
	CU_ASSERT_EQUAL(raw_read(s.r, fd, challenge, sizeof(challenge), NULL), sizeof(challenge));
	g_now += PC_RPC_AUTH_TIMEOUT_DEFAULT - 1;
	settle(s.r, NULL, 10);
	CU_ASSERT_EQUAL(stats_of(s.r).conns_open, 1);
	g_now += 1;
	CU_ASSERT_TRUE(raw_wait_eof(s.r, fd));
	close(fd);
	CU_ASSERT_EQUAL(stats_of(s.r).auth_failed, 6);

	CU_ASSERT_EQUAL(s.n_req, 0);
	CU_ASSERT_EQUAL(stats_of(s.r).requests, 0);
	CU_ASSERT_EQUAL(stats_of(s.r).accepted, 7);
	CU_ASSERT_EQUAL(stats_of(s.r).conns_open, 0);
	srv_stop(&s);
}

/* After auth, a header declaring 4 GiB: closed before anything is sized by it, x200. */
static void
test_huge_length(void)
{
	struct srv s;
	uint8_t raw[PC_FRAME_HDR_SIZE];
	long rss0;
	long rss1;

	srv_start(&s, g_secret, SECRET_LEN, 0, NULL);
	/* Warm up: the first connection's allocations (libc, sodium) are not the point. */
	for (int i = 0; i < 2; i++) {
		int fd = raw_connect(s.port);

		CU_ASSERT_EQUAL(raw_auth(s.r, fd, g_secret, SECRET_LEN, NULL), 0);
		close(fd);
	}
	CU_ASSERT_TRUE(PUMP(s.r, NULL, stats_of(s.r).conns_open == 0));
	rss0 = rss_kib();
	for (int i = 0; i < 200; i++) {
		int fd = raw_connect(s.port);

		CU_ASSERT_EQUAL_FATAL(raw_auth(s.r, fd, g_secret, SECRET_LEN, NULL), 0);
		put_hdr(raw, PC_FRAME_DIR_PUT, 0, 1, 0);
		memset(raw + 16, 0xff, 4); /* body_len 0xFFFFFFFF */
		raw_send(fd, raw, sizeof(raw));
		raw_send(fd, "0123456789", 10);
		CU_ASSERT_TRUE(raw_wait_eof(s.r, fd));
		close(fd);
	}
	rss1 = rss_kib();
	CU_ASSERT_EQUAL(stats_of(s.r).malformed, 200);
	CU_ASSERT_EQUAL(stats_of(s.r).requests, 0);
	/* The handshake's 40-byte output buffers are the most any of them got. */
	CU_ASSERT(stats_of(s.r).buf_bytes_peak <= 4096);
	printf("(rss %ld -> %ld KiB, buffers peak %llu B) ", rss0, rss1,
	       (unsigned long long)stats_of(s.r).buf_bytes_peak);
#ifdef __SANITIZE_ADDRESS__
	/* ASan's quarantine keeps the freed connection structs resident for a while. */
	CU_ASSERT(rss0 > 0 && rss1 - rss0 < 4096);
#else
	CU_ASSERT(rss0 > 0 && rss1 - rss0 < 1024);
#endif
	srv_stop(&s);
}

/*
 * The largest request body a type allows, declared, with 10 bytes sent:
 * the buffer is what arrived (rounded up to 4 KiB), and the frame is
 * closed at the read deadline. Then slowloris proper: one header byte.
 */
static void
test_slow_frames(void)
{
	uint32_t cap = pc_frame_body_cap(PC_FRAME_DIR_PUT, 0);
	uint8_t raw[PC_FRAME_HDR_SIZE];
	uint64_t in0;
	struct srv s;
	int fd;

	CU_ASSERT_FATAL(cap > 2 * RPC_BODY_MIN);
	srv_start(&s, g_secret, SECRET_LEN, 0, NULL);
	fd = raw_connect(s.port);
	CU_ASSERT_EQUAL_FATAL(raw_auth(s.r, fd, g_secret, SECRET_LEN, NULL), 0);
	CU_ASSERT_TRUE(PUMP(s.r, NULL, stats_of(s.r).buf_bytes == 0));
	in0 = stats_of(s.r).bytes_in;
	put_hdr(raw, PC_FRAME_DIR_PUT, 0, 1, cap);
	raw_send(fd, raw, sizeof(raw));
	raw_send(fd, "0123456789", 10);
	CU_ASSERT_TRUE(PUMP(s.r, NULL, stats_of(s.r).bytes_in == in0 + sizeof(raw) + 10));
	CU_ASSERT(stats_of(s.r).buf_bytes <= RPC_BODY_MIN);
	CU_ASSERT(stats_of(s.r).buf_bytes > 0);
	g_now += PC_RPC_READ_TIMEOUT_DEFAULT - 1;
	settle(s.r, NULL, 10);
	CU_ASSERT_EQUAL(stats_of(s.r).conns_open, 1);
	g_now += 1;
	CU_ASSERT_TRUE(raw_wait_eof(s.r, fd));
	close(fd);
	CU_ASSERT_EQUAL(stats_of(s.r).slow_closed, 1);
	CU_ASSERT_EQUAL(stats_of(s.r).requests, 0);

	/* One byte of a header, then nothing. */
	fd = raw_connect(s.port);
	CU_ASSERT_EQUAL_FATAL(raw_auth(s.r, fd, g_secret, SECRET_LEN, NULL), 0);
	in0 = stats_of(s.r).bytes_in;
	put_hdr(raw, PC_FRAME_PING, 0, 1, 0);
	raw_send(fd, raw, 1);
	CU_ASSERT_TRUE(PUMP(s.r, NULL, stats_of(s.r).bytes_in == in0 + 1));
	g_now += PC_RPC_READ_TIMEOUT_DEFAULT / 2;
	raw_send(fd, raw + 1, 1); /* a byte now and then does not extend the deadline */
	CU_ASSERT_TRUE(PUMP(s.r, NULL, stats_of(s.r).bytes_in == in0 + 2));
	g_now += PC_RPC_READ_TIMEOUT_DEFAULT / 2 - 1;
	settle(s.r, NULL, 10);
	CU_ASSERT_EQUAL(stats_of(s.r).conns_open, 1);
	g_now += 1;
	CU_ASSERT_TRUE(raw_wait_eof(s.r, fd));
	close(fd);
	CU_ASSERT_EQUAL(stats_of(s.r).slow_closed, 2);
	CU_ASSERT_EQUAL(stats_of(s.r).conns_open, 0);

	/* A whole frame sent a byte at a time within the deadline is served. */
	fd = raw_connect(s.port);
	CU_ASSERT_EQUAL_FATAL(raw_auth(s.r, fd, g_secret, SECRET_LEN, NULL), 0);
	put_hdr(raw, PC_FRAME_PING, 0, 7, 0);
	for (size_t i = 0; i < sizeof(raw); i++) {
		in0 = stats_of(s.r).bytes_in;
		raw_send(fd, raw + i, 1);
		CU_ASSERT_TRUE(PUMP(s.r, NULL, stats_of(s.r).bytes_in == in0 + 1));
	}
	CU_ASSERT_EQUAL(raw_read(s.r, fd, raw, sizeof(raw), NULL), sizeof(raw));
	{
		struct pc_frame_hdr h;

		CU_ASSERT_EQUAL(pc_frame_hdr_decode(raw, sizeof(raw), &h), 0);
		CU_ASSERT_EQUAL(h.request_id, 7);
		CU_ASSERT_EQUAL(h.flags, PC_FRAME_F_REPLY);
	}
	close(fd);
	CU_ASSERT_EQUAL(s.n_req, 1);
	srv_stop(&s);
}

/* A call the server never answers ends at its deadline, exactly; a late reply is dropped. */
static void
test_call_timeout(void)
{
	struct srv s;
	struct pc_rpc *cli = client_new(NULL, 0, NULL);
	struct pc_rpc_peer *p;
	struct rec rc = {0};
	struct rec rc2 = {0};
	uint64_t deadline = g_now + 2 * S;

	srv_start(&s, NULL, 0, 0, NULL);
	s.mode = SRV_HOLD;
	p = pc_rpc_peer_get(cli, "127.0.0.1", s.port);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(pc_rpc_call(p, PC_FRAME_PING, NULL, 0, deadline, rec_cb, &rc), 0);
	CU_ASSERT_TRUE(PUMP(cli, s.r, s.n_req == 1));
	g_now = deadline - 1;
	settle(cli, s.r, 10);
	CU_ASSERT_EQUAL(rc.n, 0);
	g_now = deadline;
	pc_rpc_poll(cli, g_now);
	CU_ASSERT_EQUAL(rc.n, 1);
	CU_ASSERT_EQUAL(rc.status, -ETIMEDOUT);
	CU_ASSERT_EQUAL(stats_of(cli).timeouts, 1);

	/* The reply comes after all: dropped, counted, and the connection stays. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(s.held);
	CU_ASSERT_EQUAL(pc_rpc_reply(s.held, &s.held_hdr, 0, NULL, 0), 0);
	CU_ASSERT_TRUE(PUMP(cli, s.r, stats_of(cli).late_replies == 1));
	s.mode = SRV_ECHO;
	CU_ASSERT_EQUAL(pc_rpc_call(p, PC_FRAME_PING, NULL, 0, g_now + S, rec_cb, &rc2), 0);
	CU_ASSERT_TRUE(PUMP(cli, s.r, rc2.n == 1));
	CU_ASSERT_EQUAL(rc2.status, 0);
	CU_ASSERT_EQUAL(rc.n, 1);
	CU_ASSERT_EQUAL(stats_of(cli).connects, 1);
	CU_ASSERT_EQUAL(stats_of(cli).malformed, 0);

	pc_rpc_peer_put(p);
	pc_rpc_destroy(cli);
	srv_stop(&s);
}

/* An error reply: status 0, PC_FRAME_F_ERROR, and the body decodes. */
static void
test_error_reply(void)
{
	struct srv s;
	struct pc_rpc *cli = client_new(NULL, 0, NULL);
	struct pc_rpc_peer *p;
	struct pc_frame_error e;
	struct rec rc = {0};
	uint8_t key[3] = {0, 1, 'k'};

	srv_start(&s, NULL, 0, 0, NULL);
	s.mode = SRV_ERROR;
	p = pc_rpc_peer_get(cli, "127.0.0.1", s.port);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(
		pc_rpc_call(p, PC_FRAME_DIR_EXISTS, key, sizeof(key), g_now + S, rec_cb, &rc), 0);
	CU_ASSERT_TRUE(PUMP(cli, s.r, rc.n == 1));
	CU_ASSERT_EQUAL(rc.status, 0);
	CU_ASSERT_EQUAL(rc.flags, PC_FRAME_F_REPLY | PC_FRAME_F_ERROR);
	CU_ASSERT_EQUAL(pc_frame_dec_error(rc.body, rc.len, &e), 0);
	CU_ASSERT_EQUAL(e.status, -ENOENT);
	CU_ASSERT_STRING_EQUAL(e.msg, "no such key");
	pc_rpc_peer_put(p);
	pc_rpc_destroy(cli);
	srv_stop(&s);
}

/* A body the handler refuses closes that connection only; the peer reconnects for the next call. */
static void
test_request_body_malformed(void)
{
	struct pc_rpc_opts co = {.backoff_min_ns = 1 * MS, .backoff_max_ns = 2 * MS};
	struct pc_rpc *cli = client_new(NULL, 0, &co);
	struct pc_rpc_peer *p;
	struct rec bad[2] = {{0}};
	struct rec good = {0};
	uint8_t key[3] = {1, 0, 'k'};
	struct srv s;

	srv_start(&s, NULL, 0, 0, NULL);
	s.mode = SRV_BADBODY;
	p = pc_rpc_peer_get(cli, "127.0.0.1", s.port);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	/* Two calls pipelined: the second is never dispatched once the first closed it. */
	CU_ASSERT_EQUAL(
		pc_rpc_call(p, PC_FRAME_DIR_EXISTS, key, sizeof(key), g_now + S, rec_cb, &bad[0]),
		0);
	CU_ASSERT_EQUAL(
		pc_rpc_call(p, PC_FRAME_DIR_EXISTS, key, sizeof(key), g_now + S, rec_cb, &bad[1]),
		0);
	CU_ASSERT_TRUE(PUMP(cli, s.r, bad[0].n == 1 && bad[1].n == 1));
	CU_ASSERT_EQUAL(bad[0].status, -ECONNRESET);
	CU_ASSERT_EQUAL(bad[1].status, -ECONNRESET);
	CU_ASSERT_EQUAL(s.n_req, 1);
	CU_ASSERT_EQUAL(stats_of(s.r).malformed, 1);
	CU_ASSERT_TRUE(PUMP(cli, s.r, stats_of(s.r).conns_open == 0));
	s.mode = SRV_ECHO;
	CU_ASSERT_EQUAL(
		pc_rpc_call(p, PC_FRAME_DIR_EXISTS, key, sizeof(key), g_now + S, rec_cb, &good), 0);
	g_now += 10 * MS; /* past the reconnect backoff */
	CU_ASSERT_TRUE(PUMP(cli, s.r, good.n == 1));
	CU_ASSERT_EQUAL(good.status, 0);
	CU_ASSERT_EQUAL(good.len, sizeof(key));
	pc_rpc_peer_put(p);
	pc_rpc_destroy(cli);
	srv_stop(&s);
}

/* The server goes away: in-flight calls fail at once; later calls go through after backoff. */
static void
test_server_restart(void)
{
	struct pc_rpc_opts co = {.backoff_min_ns = 50 * MS, .backoff_max_ns = 400 * MS};
	struct pc_rpc *cli = client_new(g_secret, SECRET_LEN, &co);
	struct pc_rpc_peer *p;
	struct rec rc[3] = {{0}};
	struct rec after = {0};
	struct rec refused = {0};
	struct rec refused2 = {0};
	struct srv s;
	uint16_t port;

	srv_start(&s, g_secret, SECRET_LEN, 0, NULL);
	s.mode = SRV_DROP;
	port = s.port;
	p = pc_rpc_peer_get(cli, "127.0.0.1", port);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(
			pc_rpc_call(p, PC_FRAME_PING, NULL, 0, g_now + 30 * S, rec_cb, &rc[i]), 0);
	}
	CU_ASSERT_TRUE(PUMP(cli, s.r, s.n_req == 3));
	srv_stop(&s);
	CU_ASSERT_TRUE(PUMP(cli, NULL, rc[0].n + rc[1].n + rc[2].n == 3));
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(rc[i].n, 1);
		CU_ASSERT_EQUAL(rc[i].status, -ECONNRESET);
	}

	/* Nobody listens: the next attempt is refused, after [25, 50] ms. */
	CU_ASSERT_EQUAL(pc_rpc_call(p, PC_FRAME_PING, NULL, 0, g_now + 30 * S, rec_cb, &refused),
			0);
	settle(cli, NULL, 30);
	CU_ASSERT_EQUAL(stats_of(cli).connects, 1); /* still backing off: the clock has not moved */
	g_now += 50 * MS;
	CU_ASSERT_TRUE(PUMP(cli, NULL, refused.n == 1));
	CU_ASSERT_EQUAL(refused.status, -ECONNREFUSED);
	CU_ASSERT_EQUAL(stats_of(cli).connects, 2);
	/* A failed attempt doubles the backoff: the next one waits [25, 50] ms, then [50, 100]. */
	CU_ASSERT_EQUAL(pc_rpc_call(p, PC_FRAME_PING, NULL, 0, g_now + 30 * S, rec_cb, &refused2),
			0);
	g_now += 24 * MS;
	settle(cli, NULL, 20);
	CU_ASSERT_EQUAL(stats_of(cli).connects, 2);
	g_now += 26 * MS;
	CU_ASSERT_TRUE(PUMP(cli, NULL, refused2.n == 1));
	CU_ASSERT_EQUAL(refused2.status, -ECONNREFUSED);
	CU_ASSERT_EQUAL(stats_of(cli).connects, 3);

	/* The server is back on the same port. */
	srv_start(&s, g_secret, SECRET_LEN, port, NULL);
	CU_ASSERT_EQUAL(pc_rpc_call(p, PC_FRAME_PING, NULL, 0, g_now + 30 * S, rec_cb, &after), 0);
	settle(cli, s.r, 30);
	CU_ASSERT_EQUAL(after.n, 0);
	CU_ASSERT_EQUAL(stats_of(s.r).accepted, 0); /* backoff [50, 100] ms: not yet */
	g_now += 100 * MS;
	CU_ASSERT_TRUE(PUMP(cli, s.r, after.n == 1));
	CU_ASSERT_EQUAL(after.status, 0);
	CU_ASSERT_EQUAL(stats_of(cli).reconnects, 3);
	CU_ASSERT_EQUAL(stats_of(cli).connect_failed, 2);
	pc_rpc_peer_put(p);
	pc_rpc_destroy(cli);
	srv_stop(&s);
}

static void
test_max_conns(void)
{
	struct pc_rpc_opts o = {.max_conns = 4};
	uint8_t buf[PC_AUTH_CHALLENGE_LEN];
	int fds[6];
	int greeted = 0;
	int refused = 0;
	struct srv s;
	int fd;

	srv_start(&s, NULL, 0, 0, &o);
	for (int i = 0; i < 6; i++) {
		fds[i] = raw_connect(s.port);
	}
	CU_ASSERT_TRUE(PUMP(s.r, NULL, stats_of(s.r).accepted + stats_of(s.r).rejected == 6));
	CU_ASSERT_EQUAL(stats_of(s.r).accepted, 4);
	CU_ASSERT_EQUAL(stats_of(s.r).rejected, 2);
	CU_ASSERT_EQUAL(stats_of(s.r).conns_open, 4);
	for (int i = 0; i < 6; i++) {
		bool eof;
		size_t n = raw_read(s.r, fds[i], buf, sizeof(buf), &eof);

		greeted += n == sizeof(buf);
		refused += n == 0 && eof;
	}
	CU_ASSERT_EQUAL(greeted, 4);
	CU_ASSERT_EQUAL(refused, 2);
	for (int i = 0; i < 6; i++) {
		close(fds[i]);
	}
	/* Room again once they are gone. */
	CU_ASSERT_TRUE(PUMP(s.r, NULL, stats_of(s.r).conns_open == 0));
	fd = raw_connect(s.port);
	CU_ASSERT_EQUAL(raw_read(s.r, fd, buf, sizeof(buf), NULL), sizeof(buf));
	close(fd);
	srv_stop(&s);
}

/* Replies queued on a connection that is not read: out_cap closes it; nothing grows past it. */
static void
test_out_cap(void)
{
	struct srv s;
	struct pc_rpc *cli = client_new(NULL, 0, NULL);
	struct pc_rpc_peer *p;
	struct rec rc = {0};
	uint32_t cap = pc_frame_body_cap(PC_FRAME_MEMBERS, PC_FRAME_F_REPLY);
	uint8_t *big = calloc(1, cap);
	int rcode = 0;
	int n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	srv_start(&s, NULL, 0, 0, NULL);
	s.mode = SRV_HOLD;
	p = pc_rpc_peer_get(cli, "127.0.0.1", s.port);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(pc_rpc_call(p, PC_FRAME_MEMBERS, NULL, 0, g_now + 5 * S, rec_cb, &rc), 0);
	CU_ASSERT_TRUE(PUMP(cli, s.r, s.held != NULL));
	/* Over the cap of the type: refused, the connection stays. */
	CU_ASSERT_EQUAL(pc_rpc_reply(s.held, &s.held_hdr, 0, big, cap + 1), -EMSGSIZE);
	CU_ASSERT_TRUE(pc_rpc_conn_is_open(s.held));
	CU_ASSERT_EQUAL(pc_rpc_reply(s.held, &s.held_hdr, 0x80, NULL, 0), -EINVAL);
	for (n = 0; n < 100; n++) {
		rcode = pc_rpc_reply(s.held, &s.held_hdr, 0, big, cap);
		if (rcode != 0) {
			break;
		}
	}
	CU_ASSERT_EQUAL(rcode, -ENOBUFS);
	CU_ASSERT_EQUAL(n, PC_RPC_OUT_CAP_DEFAULT / (cap + PC_FRAME_HDR_SIZE));
	CU_ASSERT_EQUAL(stats_of(s.r).out_overflow, 1);
	CU_ASSERT_FALSE(pc_rpc_conn_is_open(s.held));
	CU_ASSERT_EQUAL(pc_rpc_reply(s.held, &s.held_hdr, 0, NULL, 0), -ENOTCONN);
	CU_ASSERT(stats_of(s.r).buf_bytes_peak <= PC_RPC_OUT_CAP_DEFAULT);
	/* The client sees its connection go: the call fails at once, not at its deadline. */
	CU_ASSERT_TRUE(PUMP(cli, s.r, rc.n == 1));
	CU_ASSERT_EQUAL(rc.status, -ECONNRESET);
	pc_rpc_peer_put(p);
	pc_rpc_destroy(cli);
	srv_stop(&s);
	free(big);
}

/*
 * Many calls with the largest replies, pipelined: the server reads them in
 * one go, stops dispatching while its output is over out_cap / 2, goes on
 * as it drains; every call is answered and nothing is closed.
 */
#define PIPELINED 64

static void
test_pipelined_large_replies(void)
{
	struct srv s;
	struct pc_rpc *cli = client_new(NULL, 0, NULL);
	struct pc_rpc_peer *p;
	struct rec *rc = calloc(PIPELINED, sizeof(*rc));
	uint32_t cap = pc_frame_body_cap(PC_FRAME_MEMBERS, PC_FRAME_F_REPLY);
	int ok = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(rc);
	srv_start(&s, NULL, 0, 0, NULL);
	s.mode = SRV_BIG;
	s.big = calloc(1, cap);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s.big);
	memset(s.big, 0x5a, cap);
	p = pc_rpc_peer_get(cli, "127.0.0.1", s.port);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	for (int i = 0; i < PIPELINED; i++) {
		CU_ASSERT_EQUAL_FATAL(
			pc_rpc_call(p, PC_FRAME_MEMBERS, NULL, 0, g_now + 30 * S, rec_cb, &rc[i]),
			0);
	}
	CU_ASSERT_TRUE(
		PUMP(cli, s.r, stats_of(cli).replies + stats_of(cli).call_failed == PIPELINED));
	for (int i = 0; i < PIPELINED; i++) {
		ok += rc[i].n == 1 && rc[i].status == 0 && rc[i].len == cap &&
		      rc[i].body[0] == 0x5a;
	}
	CU_ASSERT_EQUAL(ok, PIPELINED);
	CU_ASSERT_EQUAL(stats_of(s.r).out_overflow, 0);
	CU_ASSERT_EQUAL(stats_of(s.r).replies_sent, PIPELINED);
	CU_ASSERT(stats_of(s.r).buf_bytes_peak <= PC_RPC_OUT_CAP_DEFAULT + RPC_RX_SIZE);
	CU_ASSERT_EQUAL(stats_of(cli).connects, 1);
	printf("(server buffers peak %llu KiB) ",
	       (unsigned long long)stats_of(s.r).buf_bytes_peak / 1024);
	pc_rpc_peer_put(p);
	pc_rpc_destroy(cli);
	srv_stop(&s);
	free(rc);
}

/*
 * A client that sends requests one at a time and never reads the large
 * replies: the server stops reading it, and closes it when its output has
 * made no progress for read_timeout.
 */
static void
test_slow_reader(void)
{
	uint8_t raw[PC_FRAME_HDR_SIZE];
	struct srv s;
	uint32_t stalled;
	int rcvbuf = 4096;
	int fd;

	srv_start(&s, NULL, 0, 0, NULL);
	s.mode = SRV_BIG;
	s.big = calloc(1, pc_frame_body_cap(PC_FRAME_MEMBERS, PC_FRAME_F_REPLY));
	CU_ASSERT_PTR_NOT_NULL_FATAL(s.big);
	fd = raw_connect(s.port);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	CU_ASSERT_EQUAL_FATAL(raw_auth(s.r, fd, NULL, 0, NULL), 0);
	for (uint64_t id = 1; id <= 64; id++) {
		put_hdr(raw, PC_FRAME_MEMBERS, 0, id, 0);
		raw_send(fd, raw, sizeof(raw));
		settle(s.r, NULL, 2);
	}
	settle(s.r, NULL, 50);
	stalled = s.n_req;
	CU_ASSERT(stalled < 64);                        /* it stopped reading */
	CU_ASSERT_EQUAL(stats_of(s.r).out_overflow, 0); /* before the cap */
	CU_ASSERT_EQUAL(stats_of(s.r).conns_open, 1);
	CU_ASSERT(stats_of(s.r).buf_bytes_peak <= PC_RPC_OUT_CAP_DEFAULT);
	g_now += PC_RPC_READ_TIMEOUT_DEFAULT;
	CU_ASSERT_TRUE(raw_wait_eof(s.r, fd));
	CU_ASSERT_EQUAL(stats_of(s.r).slow_closed, 1);
	CU_ASSERT_EQUAL(s.n_req, stalled);
	close(fd);
	srv_stop(&s);
}

/*
 * A fake server that completes the handshake by hand and then answers
 * wrongly: an unknown request id, a malformed header. The client closes,
 * counts, and the calls on that connection get -EBADMSG.
 */
static int
fake_server_accept(struct pc_rpc *cli, int lfd, struct pc_auth *a)
{
	uint8_t challenge[PC_AUTH_CHALLENGE_LEN];
	uint8_t response[PC_AUTH_RESPONSE_LEN];
	uint8_t confirm[PC_AUTH_CONFIRM_LEN];
	uint64_t end = mono_ns() + 5 * S;
	int fd = -1;

	while (fd < 0 && mono_ns() < end) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			pc_rpc_poll(cli, g_now);
			usleep(50);
		}
	}
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL_FATAL(pc_auth_server_start(a, NULL, 0, challenge), 0);
	raw_send(fd, challenge, sizeof(challenge));
	CU_ASSERT_EQUAL_FATAL(raw_read(cli, fd, response, sizeof(response), NULL),
			      sizeof(response));
	CU_ASSERT_EQUAL_FATAL(pc_auth_server_verify(a, response, sizeof(response), confirm), 0);
	raw_send(fd, confirm, sizeof(confirm));
	return fd;
}

static void
bad_reply(bool unknown_id)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	struct pc_rpc *cli = client_new(NULL, 0, NULL);
	struct pc_rpc_peer *p;
	struct pc_frame_hdr h;
	struct pc_auth a;
	struct rec rc[2] = {{0}};
	uint8_t raw[2 * PC_FRAME_HDR_SIZE];
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int fd;

	CU_ASSERT_FATAL(lfd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CU_ASSERT_EQUAL_FATAL(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	CU_ASSERT_EQUAL_FATAL(listen(lfd, 4), 0);
	CU_ASSERT_EQUAL_FATAL(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
	p = pc_rpc_peer_get(cli, "127.0.0.1", ntohs(sa.sin_port));
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	for (int i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(
			pc_rpc_call(p, PC_FRAME_PING, NULL, 0, g_now + 5 * S, rec_cb, &rc[i]), 0);
	}
	fd = fake_server_accept(cli, lfd, &a);
	CU_ASSERT_EQUAL_FATAL(raw_read(cli, fd, raw, sizeof(raw), NULL), sizeof(raw));
	CU_ASSERT_EQUAL(pc_frame_hdr_decode(raw, PC_FRAME_HDR_SIZE, &h), 0);
	if (unknown_id) {
		put_hdr(raw, PC_FRAME_PING, PC_FRAME_F_REPLY, h.request_id + 1000, 0);
	} else {
		memset(raw, 0x41, PC_FRAME_HDR_SIZE);
	}
	raw_send(fd, raw, PC_FRAME_HDR_SIZE);
	CU_ASSERT_TRUE(PUMP(cli, NULL, rc[0].n + rc[1].n == 2));
	CU_ASSERT_EQUAL(rc[0].status, -EBADMSG);
	CU_ASSERT_EQUAL(rc[1].status, -EBADMSG);
	CU_ASSERT_EQUAL(stats_of(cli).malformed, 1);
	CU_ASSERT_TRUE(raw_wait_eof(cli, fd));
	close(fd);
	close(lfd);
	pc_rpc_peer_put(p);
	pc_rpc_destroy(cli);
}

static void
test_reply_unknown_id(void)
{
	bad_reply(true);
}

static void
test_reply_malformed(void)
{
	bad_reply(false);
}

/* Destroy with calls in flight and queued: each callback once, -ECANCELED. */
static void
test_destroy_pending(void)
{
	struct srv s;
	struct pc_rpc *cli = client_new(NULL, 0, NULL);
	struct pc_rpc_peer *p;
	struct pc_rpc_peer *q;
	struct rec rc[7] = {{0}};

	srv_start(&s, NULL, 0, 0, NULL);
	s.mode = SRV_DROP;
	p = pc_rpc_peer_get(cli, "127.0.0.1", s.port);
	q = pc_rpc_peer_get(cli, "127.0.0.1", 9); /* discard: never polled, so never connected */
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(q);
	for (int i = 0; i < 5; i++) {
		CU_ASSERT_EQUAL(
			pc_rpc_call(p, PC_FRAME_PING, NULL, 0, g_now + 5 * S, rec_cb, &rc[i]), 0);
	}
	CU_ASSERT_TRUE(PUMP(cli, s.r, s.n_req == 5));
	for (int i = 5; i < 7; i++) {
		CU_ASSERT_EQUAL(
			pc_rpc_call(q, PC_FRAME_PING, NULL, 0, g_now + 5 * S, rec_cb, &rc[i]), 0);
	}
	pc_rpc_destroy(cli);
	for (int i = 0; i < 7; i++) {
		CU_ASSERT_EQUAL(rc[i].n, 1);
		CU_ASSERT_EQUAL(rc[i].status, -ECANCELED);
	}
	srv_stop(&s);
}

/* The last put of a peer cancels its calls before it returns. */
static void
test_peer_put_cancels(void)
{
	struct srv s;
	struct pc_rpc *cli = client_new(NULL, 0, NULL);
	struct pc_rpc_peer *p;
	struct rec rc[2] = {{0}};

	srv_start(&s, NULL, 0, 0, NULL);
	s.mode = SRV_DROP;
	p = pc_rpc_peer_get(cli, "127.0.0.1", s.port);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(pc_rpc_call(p, PC_FRAME_PING, NULL, 0, g_now + 5 * S, rec_cb, &rc[0]), 0);
	CU_ASSERT_TRUE(PUMP(cli, s.r, s.n_req == 1));
	CU_ASSERT_EQUAL(pc_rpc_call(p, PC_FRAME_PING, NULL, 0, g_now + 5 * S, rec_cb, &rc[1]), 0);
	pc_rpc_peer_put(p);
	CU_ASSERT_EQUAL(rc[0].n, 1);
	CU_ASSERT_EQUAL(rc[0].status, -ECANCELED);
	CU_ASSERT_EQUAL(rc[1].n, 1);
	CU_ASSERT_EQUAL(rc[1].status, -ECANCELED);
	/* The server sees the connection close. */
	CU_ASSERT_TRUE(PUMP(cli, s.r, stats_of(s.r).conns_open == 0));
	pc_rpc_destroy(cli);
	srv_stop(&s);
}

static const struct pc_ut_test rpc_tests[] = {
	{"round trip, open mode", test_round_trip_open},
	{"round trip, cluster secret", test_round_trip_secret},
	{"round trip over IPv6 loopback", test_round_trip_ipv6},
	{"bad arguments refused", test_bad_arguments},
	{"1000 calls in flight, ids matched; max_inflight", test_many_in_flight},
	{"wrong secret: -EACCES, nothing dispatched", test_auth_wrong_secret},
	{"secret on the server only", test_auth_secret_server_only},
	{"secret on the client only", test_auth_secret_client_only},
	{"garbage, HTTP, early frame, bad MAC, replay, silence", test_hostile_handshakes},
	{"4 GiB body_len x200: closed, memory flat", test_huge_length},
	{"slowloris: partial body and header, read deadline", test_slow_frames},
	{"call timeout at its deadline; late reply dropped", test_call_timeout},
	{"error reply", test_error_reply},
	{"request body refused: that connection closes", test_request_body_malformed},
	{"server restart: reset, refused, backoff, reconnect", test_server_restart},
	{"max_conns", test_max_conns},
	{"out_cap closes an unread connection", test_out_cap},
	{"pipelined calls with the largest replies", test_pipelined_large_replies},
	{"slow reader: back-pressure then write deadline", test_slow_reader},
	{"reply with an unknown id", test_reply_unknown_id},
	{"malformed reply header", test_reply_malformed},
	{"destroy cancels pending calls", test_destroy_pending},
	{"last peer put cancels its calls", test_peer_put_cancels},
	{NULL, NULL},
};

static const struct pc_ut_suite suites[] = {
	{"control rpc", NULL, NULL, rpc_tests},
};

int
main(void)
{
	/* Hostile-peer warnings are expected here; keep the output to the results. */
	rte_log_set_level(pc_logtype_control, RTE_LOG_ERR);
	return pc_ut_run(suites, PC_ARRAY_SIZE(suites));
}
