/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * verbs/tcp.c: the tcp transport, two "nodes" in one process (two stores,
 * two or more pc_xport on 127.0.0.1, every one polled by hand from this
 * thread). What a user would notice: a page set on A is read by B into its
 * own segment byte for byte (pc_page_check passes), 4 KiB to 8 MiB, 128 in
 * flight; a stale generation, a range the owner refuses, a page deleted and
 * its slot reused all answer a clear error and never other bytes, and the
 * server stays up; a server that dies or never answers fails every READ by
 * its deadline and the channel is replaced; channels are capped per peer
 * and posts push back when they are full; a cluster secret is enforced; a
 * hostile peer (garbage, a huge len, one byte at a time, never reading the
 * replies) is closed without touching anyone else, and its pins come back.
 * Zero-copy serving moves the same bytes, holds each page until the kernel
 * reports its send done, goes back to copies where the kernel copies
 * anyway (loopback does), and gives every pin back when the reader stalls.
 *
 * Time is virtual (g_now, stepped by every pump); the sockets are real.
 */
#define PC_UT_WITH_EAL
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rte_cycles.h>

#include "auth.h"
#include "data_proto.h"
#include "lcore.h"
#include "store.h"
#include "tcp.h"
#include "ut.h"

#define SEG_SIZE   (48ull << 20)
#define NB_CACHES  2
#define CI         0
#define Q_US       1000
#define STEP_NS    10000ull               /* virtual time per pump pass */
#define TIMEOUT_NS (2ull * 1000000000ull) /* op_timeout_ns of the test xports */
#define PUMP_MAX   400000                 /* passes: far past every deadline */
#define MAX_RD     8
#define CQ_MAX     512

static const struct pc_xport_ops *const T = &pc_xport_tcp;
static const uint8_t g_secret1[] = "a cluster secret, long enough";
static const uint8_t g_secret2[] = "another cluster secret, as long";

static struct pc_store *g_a; /* the owner */
static struct pc_store *g_b; /* the reader's node: staging slots */
static uint64_t g_now = 1000000000000ull;
static uint32_t g_key_seq;
static bool g_zc; /* xp_new: tcp_zerocopy */

struct rd {
	struct pc_xport *x;
	struct pc_xport_cqe cq[CQ_MAX];
	unsigned int n;
};

/* A page set on A (or a staging slot on B). */
struct page {
	struct pc_store_key k;
	uint64_t off;
	uint64_t gen;
	uint32_t len; /* payload */
};

/* ---------------------------------------------------------------- helpers */

static struct pc_store *
store_new(const char *name)
{
	struct pc_store_opts o = {
		.name = name,
		.segment_size = SEG_SIZE,
		.nb_caches = NB_CACHES,
		.quarantine_us = Q_US,
		.page_crc = true,
	};
	struct pc_store *st = pc_store_create(&o);

	if (st != NULL && pc_store_reader_register(st, CI) != 0) {
		pc_store_destroy(st);
		return NULL;
	}
	return st;
}

static int
suite_init(void)
{
	g_a = store_new("tcpA");
	g_b = store_new("tcpB");
	return g_a != NULL && g_b != NULL ? 0 : -1;
}

static int
suite_cleanup(void)
{
	pc_store_destroy(g_a);
	pc_store_destroy(g_b);
	return 0;
}

static void
fill(uint8_t *p, uint32_t len, uint32_t seed)
{
	uint64_t s = 0x9e3779b97f4a7c15ull * (seed + 1);

	for (uint32_t i = 0; i < len; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		p[i] = (uint8_t)s;
	}
}

static uint8_t *
seg(struct pc_store *st, uint64_t off)
{
	return (uint8_t *)pc_store_segment_base(st) + off;
}

static void
mkkey(struct pc_store_key *k, const char *ns, uint32_t id)
{
	char key[32];
	int n = snprintf(key, sizeof(key), "k-%u", id);

	CU_ASSERT_EQUAL_FATAL(pc_store_key_init(k, ns, strlen(ns), key, (size_t)n), 0);
}

/* SET a page of len payload bytes on A; fills pg (offset and generation as a GET names them). */
static void
page_set(struct page *pg, uint32_t len)
{
	const struct pc_store_key *keys[1] = {&pg->k};
	struct pc_store_loc loc;
	int rc = -1;

	mkkey(&pg->k, "t", g_key_seq++);
	pg->len = len;
	CU_ASSERT_EQUAL_FATAL(pc_store_alloc(g_a, CI, &pg->k, len, 0, &loc), 0);
	fill(seg(g_a, loc.off) + PC_PAGE_HDR_SIZE, len, g_key_seq);
	CU_ASSERT_EQUAL_FATAL(pc_store_commit(g_a, CI, &loc), 0);
	CU_ASSERT_EQUAL_FATAL(pc_store_lookup_pin_burst(g_a, CI, keys, 1, &loc, &rc), 1);
	pg->off = loc.off;
	pg->gen = loc.generation;
	pc_store_unpin_bulk(g_a, CI, &loc, 1);
}

static void
page_del(struct page *pg)
{
	CU_ASSERT_EQUAL(pc_store_delete(g_a, CI, &pg->k), 0);
}

/* A staging slot on B with room for a page of len payload bytes. */
static struct pc_store_loc
stage(uint32_t len)
{
	struct pc_store_key k;
	struct pc_store_loc loc;

	mkkey(&k, "stage", g_key_seq++);
	CU_ASSERT_EQUAL_FATAL(pc_store_alloc(g_b, CI, &k, len, 0, &loc), 0);
	memset(seg(g_b, loc.off), 0, (size_t)PC_PAGE_HDR_SIZE + len);
	return loc;
}

static void
unstage(struct pc_store_loc *loc)
{
	pc_store_abort(g_b, CI, loc);
}

/* The READ landed whole: the header checks and every byte is the owner's. */
static bool
landed_ok(const struct page *pg, uint64_t local_off)
{
	const struct pc_page_hdr *h = (const void *)seg(g_b, local_off);

	return pc_page_check(h, (const uint8_t *)h + PC_PAGE_HDR_SIZE, pg->len, pg->k.digest,
			     pg->gen, pg->len, true) == 0 &&
	       memcmp(h, seg(g_a, pg->off), (size_t)PC_PAGE_HDR_SIZE + pg->len) == 0;
}

static struct pc_xport *
xp_new(struct pc_store *st, const uint8_t *secret, unsigned int max_ch, uint16_t port)
{
	struct pc_xport_opts o = {
		.store = st,
		.ci = CI,
		.seg_base = pc_store_segment_base(st != NULL ? st : g_b),
		.seg_size = SEG_SIZE,
		.bind_host = "127.0.0.1",
		.port = port,
		.secret = secret,
		.secret_len = secret != NULL ? strlen((const char *)secret) : 0,
		.max_channels_per_peer = max_ch,
		.op_timeout_ns = TIMEOUT_NS,
		.tcp_zerocopy = g_zc,
	};
	struct pc_xport *x = T->create(&o);

	CU_ASSERT_PTR_NOT_NULL_FATAL(x);
	return x;
}

static struct pc_xport_peer
peer_of(uint16_t port, uint64_t incarnation)
{
	struct pc_xport_peer p = {
		.node_id = "nodeA",
		.incarnation = incarnation,
		.host = "127.0.0.1",
		.port = port,
	};

	return p;
}

static struct pc_xport_stats
stats(const struct pc_xport *x)
{
	struct pc_xport_stats s;

	T->get_stats(x, &s);
	return s;
}

/*
 * Poll the servers and the readers until every reader holds want
 * completions (or PUMP_MAX passes: then the assertion in the caller fails).
 * Servers must complete nothing. Returns the passes it took.
 */
static unsigned long
pump(struct pc_xport *const *srv, unsigned int ns, struct rd *rds, unsigned int nr,
     unsigned int want)
{
	unsigned long i;

	for (i = 0; i < PUMP_MAX; i++) {
		bool all = true;

		g_now += STEP_NS;
		for (unsigned int s = 0; s < ns; s++) {
			struct pc_xport_cqe none[4];

			if (srv[s] != NULL) {
				CU_ASSERT_EQUAL(T->poll(srv[s], g_now, none, 4), 0);
			}
		}
		for (unsigned int r = 0; r < nr; r++) {
			int n = T->poll(rds[r].x, g_now, rds[r].cq + rds[r].n, CQ_MAX - rds[r].n);

			CU_ASSERT(n >= 0);
			rds[r].n += (unsigned int)n;
			all = all && rds[r].n >= want;
		}
		if (all) {
			break;
		}
	}
	return i;
}

/* Read pages[0..n) from A (port) into staging slots; returns the statuses by cookie. */
static void
read_pages(struct pc_xport *a, struct pc_xport *b, uint16_t port, const struct page *pg,
	   const uint32_t *len, unsigned int n, int *status, bool check)
{
	struct pc_xport_peer peer = peer_of(port, 1);
	struct pc_xport_read r[CQ_MAX];
	struct pc_store_loc st[CQ_MAX];
	struct rd rd = {.x = b};
	int taken;

	CU_ASSERT_FATAL(n <= CQ_MAX);
	for (unsigned int i = 0; i < n; i++) {
		st[i] = stage(pg[i].len);
		r[i] = (struct pc_xport_read){
			.remote_off = pg[i].off,
			.generation = pg[i].gen,
			.len = len != NULL ? len[i] : PC_PAGE_HDR_SIZE + pg[i].len,
			.local_off = st[i].off,
			.cookie = 1000 + i,
		};
	}
	taken = T->post_reads(b, &peer, r, n, 0, g_now);
	CU_ASSERT_EQUAL(taken, (int)n);
	pump(&a, 1, &rd, 1, n);
	CU_ASSERT_EQUAL(rd.n, n);
	for (unsigned int i = 0; i < n; i++) {
		status[i] = 1; /* never completed */
	}
	for (unsigned int i = 0; i < rd.n; i++) {
		uint64_t c = rd.cq[i].cookie;

		CU_ASSERT_FATAL(c >= 1000 && c < 1000 + n);
		CU_ASSERT_EQUAL(status[c - 1000], 1); /* exactly once */
		status[c - 1000] = rd.cq[i].status;
	}
	for (unsigned int i = 0; i < n; i++) {
		if (check && status[i] == 0) {
			CU_ASSERT(landed_ok(&pg[i], st[i].off));
		}
		unstage(&st[i]);
	}
}

/* ------------------------------------------------------- raw test sockets */

/* rcvbuf: SO_RCVBUF before the connect (the window the server sees), or 0. */
static int
raw_connect(uint16_t port, int rcvbuf)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	CU_ASSERT_FATAL(fd >= 0);
	if (rcvbuf > 0) {
		CU_ASSERT_EQUAL(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
	}
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		CU_ASSERT_EQUAL(errno, EINPROGRESS);
	}
	return fd;
}

/* Receive exactly n bytes while polling the server (bounded). */
static bool
raw_recv(int fd, struct pc_xport *srv, uint8_t *buf, size_t n)
{
	size_t have = 0;

	for (int i = 0; i < 100000 && have < n; i++) {
		struct pc_xport_cqe none[1];
		ssize_t k;

		g_now += STEP_NS;
		T->poll(srv, g_now, none, 1);
		k = recv(fd, buf + have, n - have, MSG_DONTWAIT);
		if (k > 0) {
			have += (size_t)k;
		} else if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			return false;
		}
	}
	return have == n;
}

/* The handshake, open mode, as a client would run it. */
static int
raw_auth(uint16_t port, struct pc_xport *srv, int rcvbuf)
{
	int fd = raw_connect(port, rcvbuf);
	uint8_t ch[PC_AUTH_CHALLENGE_LEN];
	uint8_t resp[PC_AUTH_RESPONSE_LEN];
	uint8_t conf[PC_AUTH_CONFIRM_LEN];
	struct pc_auth a;

	CU_ASSERT_FATAL(raw_recv(fd, srv, ch, sizeof(ch)));
	CU_ASSERT_EQUAL_FATAL(pc_auth_client_respond(&a, NULL, 0, ch, sizeof(ch), resp), 0);
	CU_ASSERT_EQUAL_FATAL(send(fd, resp, sizeof(resp), 0), (ssize_t)sizeof(resp));
	CU_ASSERT_FATAL(raw_recv(fd, srv, conf, sizeof(conf)));
	CU_ASSERT_EQUAL_FATAL(pc_auth_client_finish(&a, conf, sizeof(conf)), 0);
	return fd;
}

/*
 * Whether the server closes fd within `passes` polls, time moving step_ns
 * a pass; whatever it sends meanwhile is drained when drain.
 */
static bool
raw_closed(int fd, struct pc_xport *srv, unsigned int passes, uint64_t step_ns, bool drain)
{
	uint8_t buf[4096];

	for (unsigned int i = 0; i < passes; i++) {
		struct pc_xport_cqe none[1];
		ssize_t k;

		g_now += step_ns;
		T->poll(srv, g_now, none, 1);
		if (!drain) {
			continue;
		}
		k = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
			return true;
		}
	}
	if (!drain) {
		/* Not reading: the closed socket shows as an error or EOF after the unread bytes.
		 */
		for (int i = 0; i < 100000; i++) {
			ssize_t k = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

			if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
				return true;
			}
			if (k < 0) {
				return false;
			}
		}
	}
	return false;
}

/* ---------------------------------------------------- a hostile data server */

static int
fake_listen(uint16_t *port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sin);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	CU_ASSERT_FATAL(lfd >= 0);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	CU_ASSERT_EQUAL_FATAL(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	CU_ASSERT_EQUAL_FATAL(listen(lfd, 8), 0);
	CU_ASSERT_EQUAL_FATAL(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
	*port = ntohs(sin.sin_port);
	return lfd;
}

static void
rd_poll(struct rd *rd)
{
	g_now += STEP_NS;
	rd->n += (unsigned int)T->poll(rd->x, g_now, rd->cq + rd->n, CQ_MAX - rd->n);
}

/* Accept the reader's channel, polling the reader meanwhile. */
static int
fake_accept(int lfd, struct rd *rd)
{
	for (int i = 0; i < 100000; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);

		if (fd >= 0) {
			return fd;
		}
		rd_poll(rd);
	}
	CU_FAIL_FATAL("the reader never connected");
	return -1;
}

static bool
fake_recv(int fd, struct rd *rd, uint8_t *buf, size_t n)
{
	size_t have = 0;

	for (int i = 0; i < 100000 && have < n; i++) {
		ssize_t k = recv(fd, buf + have, n - have, MSG_DONTWAIT);

		if (k > 0) {
			have += (size_t)k;
			continue;
		}
		if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			return false;
		}
		rd_poll(rd);
	}
	return have == n;
}

/* The server's half of the handshake, open mode; then the reader's first request. */
static void
fake_auth(int fd, struct rd *rd, struct pc_data_req *req)
{
	uint8_t ch[PC_AUTH_CHALLENGE_LEN];
	uint8_t resp[PC_AUTH_RESPONSE_LEN];
	uint8_t conf[PC_AUTH_CONFIRM_LEN];
	uint8_t raw[PC_DATA_REQ_SIZE];
	struct pc_auth a;

	CU_ASSERT_EQUAL_FATAL(pc_auth_server_start(&a, NULL, 0, ch), 0);
	CU_ASSERT_EQUAL_FATAL(send(fd, ch, sizeof(ch), 0), (ssize_t)sizeof(ch));
	CU_ASSERT_FATAL(fake_recv(fd, rd, resp, sizeof(resp)));
	CU_ASSERT_EQUAL_FATAL(pc_auth_server_verify(&a, resp, sizeof(resp), conf), 0);
	CU_ASSERT_EQUAL_FATAL(send(fd, conf, sizeof(conf), 0), (ssize_t)sizeof(conf));
	CU_ASSERT_FATAL(fake_recv(fd, rd, raw, sizeof(raw)));
	CU_ASSERT_EQUAL_FATAL(pc_data_req_decode(raw, sizeof(raw), req), 0);
}

enum fake_case {
	FAKE_BAD_MAGIC,   /* not a PeerCache port: "HTTP/" instead of a CHALLENGE */
	FAKE_WRONG_ID,    /* a reply to another request */
	FAKE_WRONG_LEN,   /* a page of another length than asked */
	FAKE_GARBAGE,     /* bytes that are no reply header */
	FAKE_BAD_STATUS,  /* a status the wire does not allow */
	FAKE_STALE,       /* a well-formed refusal: the fake server works */
	FAKE_UNSOLICITED, /* a second reply nobody asked for */
};

static int
fake_case(enum fake_case what)
{
	uint16_t port;
	int lfd = fake_listen(&port);
	struct pc_xport *b = xp_new(g_b, NULL, 1, 0);
	struct pc_xport_peer peer = peer_of(port, 1);
	struct pc_xport_read r = {.remote_off = 0, .generation = 1, .len = 4096, .cookie = 42};
	struct rd rd = {.x = b};
	struct pc_data_req req;
	struct pc_data_rep rep;
	uint8_t raw[PC_DATA_REP_SIZE];
	struct pc_xport_stats s;
	int status;
	int fd;

	CU_ASSERT_EQUAL(T->post_reads(b, &peer, &r, 1, 0, g_now), 1);
	fd = fake_accept(lfd, &rd);
	if (what == FAKE_BAD_MAGIC) {
		CU_ASSERT_EQUAL(send(fd, "HTTP/", 5, 0), 5);
	} else {
		fake_auth(fd, &rd, &req);
		CU_ASSERT_EQUAL(req.len, r.len);
		CU_ASSERT_EQUAL(req.generation, r.generation);
		rep = (struct pc_data_rep){.id = req.id, .status = -ESTALE, .len = 0};
		CU_ASSERT_EQUAL(pc_data_rep_encode(raw, &rep), 0);
		if (what == FAKE_WRONG_ID) {
			raw[8] ^= 1;
		} else if (what == FAKE_WRONG_LEN) {
			rep = (struct pc_data_rep){.id = req.id, .status = 0, .len = r.len - 1};
			CU_ASSERT_EQUAL(pc_data_rep_encode(raw, &rep), 0);
		} else if (what == FAKE_GARBAGE) {
			memset(raw, 0x41, sizeof(raw));
		} else if (what == FAKE_BAD_STATUS) {
			raw[16] = 0xfe; /* -2, -ENOENT: not on the wire */
		}
		CU_ASSERT_EQUAL(send(fd, raw, sizeof(raw), 0), (ssize_t)sizeof(raw));
	}
	for (int i = 0; i < 100000 && rd.n == 0; i++) {
		rd_poll(&rd);
	}
	CU_ASSERT_EQUAL_FATAL(rd.n, 1);
	CU_ASSERT_EQUAL(rd.cq[0].cookie, 42);
	status = rd.cq[0].status;
	if (what == FAKE_UNSOLICITED) {
		CU_ASSERT_EQUAL(status, -ESTALE);
		CU_ASSERT_EQUAL(stats(b).channels_open, 1);
		CU_ASSERT_EQUAL(send(fd, raw, sizeof(raw), 0), (ssize_t)sizeof(raw));
		for (int i = 0; i < 100000 && stats(b).channels_open > 0; i++) {
			rd_poll(&rd);
		}
		status = -EPROTO; /* what an idle channel can show: it was closed */
		CU_ASSERT_EQUAL(rd.n, 1);
	}
	s = stats(b);
	if (status != -ESTALE) {
		CU_ASSERT_EQUAL(s.channels_destroyed, 1);
		CU_ASSERT_EQUAL(s.channels_open, 0);
	}
	close(fd);
	close(lfd);
	T->destroy(b);
	return status;
}

/* A data server that breaks the protocol: the READ fails -EPROTO, at once, the channel goes. */
static void
test_hostile_server(void)
{
	uint64_t t0 = g_now;

	CU_ASSERT_EQUAL(fake_case(FAKE_STALE), -ESTALE);
	CU_ASSERT_EQUAL(fake_case(FAKE_BAD_MAGIC), -EPROTO);
	CU_ASSERT_EQUAL(fake_case(FAKE_WRONG_ID), -EPROTO);
	CU_ASSERT_EQUAL(fake_case(FAKE_WRONG_LEN), -EPROTO);
	CU_ASSERT_EQUAL(fake_case(FAKE_GARBAGE), -EPROTO);
	CU_ASSERT_EQUAL(fake_case(FAKE_BAD_STATUS), -EPROTO);
	CU_ASSERT_EQUAL(fake_case(FAKE_UNSOLICITED), -EPROTO);
	CU_ASSERT(g_now - t0 < TIMEOUT_NS); /* found by the bytes, not by a deadline */
}

/* ------------------------------------------------------------------ tests */

static void
test_roundtrip_sizes(void)
{
	static const uint32_t lens[] = {1,       4096 - PC_PAGE_HDR_SIZE, 4096, 65536, 1u << 20,
					8u << 20};
	struct pc_xport *a = xp_new(g_a, NULL, 0, 0);
	struct pc_xport *b = xp_new(g_b, NULL, 0, 0);
	struct page pg[PC_ARRAY_SIZE(lens)];
	int status[PC_ARRAY_SIZE(lens)];
	struct pc_xport_stats s;

	CU_ASSERT(T->port(a) != 0);
	CU_ASSERT(T->port(b) != 0 && T->port(b) != T->port(a));
	for (size_t i = 0; i < PC_ARRAY_SIZE(lens); i++) {
		page_set(&pg[i], lens[i]);
	}
	/* One at a time, then all at once on the same channels. */
	for (size_t i = 0; i < PC_ARRAY_SIZE(lens); i++) {
		read_pages(a, b, T->port(a), &pg[i], NULL, 1, &status[i], true);
		CU_ASSERT_EQUAL(status[i], 0);
	}
	read_pages(a, b, T->port(a), pg, NULL, PC_ARRAY_SIZE(lens), status, true);
	for (size_t i = 0; i < PC_ARRAY_SIZE(lens); i++) {
		CU_ASSERT_EQUAL(status[i], 0);
	}
	s = stats(b);
	CU_ASSERT_EQUAL(s.reads_posted, 2 * PC_ARRAY_SIZE(lens));
	CU_ASSERT_EQUAL(s.reads_ok, 2 * PC_ARRAY_SIZE(lens));
	CU_ASSERT_EQUAL(s.reads_failed, 0);
	CU_ASSERT_EQUAL(s.channels_destroyed, 0);
	CU_ASSERT(s.channels_open >= 1 && s.channels_open <= PC_XPORT_CHANNELS_DEFAULT);
	s = stats(a);
	CU_ASSERT_EQUAL(s.serve_requests, 2 * PC_ARRAY_SIZE(lens));
	CU_ASSERT_EQUAL(s.serve_refused, 0);
	CU_ASSERT_EQUAL(s.serve_malformed, 0);
	T->destroy(b);
	T->destroy(a);
	for (size_t i = 0; i < PC_ARRAY_SIZE(lens); i++) {
		page_del(&pg[i]);
	}
	{
		struct pc_store_stats ss;

		pc_store_get_stats(g_a, &ss);
		CU_ASSERT_EQUAL(ss.pinned, 0);
	}
}

static void
test_batch_128(void)
{
	struct pc_xport *a = xp_new(g_a, NULL, 0, 0);
	struct pc_xport *b = xp_new(g_b, NULL, 0, 0);
	static struct page pg[128];
	int status[128];
	struct pc_xport_stats s;

	for (unsigned int i = 0; i < 128; i++) {
		page_set(&pg[i], 4096 - PC_PAGE_HDR_SIZE + (i % 3) * 1000);
	}
	read_pages(a, b, T->port(a), pg, NULL, 128, status, true);
	for (unsigned int i = 0; i < 128; i++) {
		CU_ASSERT_EQUAL(status[i], 0);
	}
	s = stats(b);
	CU_ASSERT_EQUAL(s.reads_ok, 128);
	CU_ASSERT(s.channels_opened > 1); /* spread over channels */
	CU_ASSERT(s.channels_opened <= PC_XPORT_CHANNELS_DEFAULT);
	CU_ASSERT_EQUAL(s.bytes_read, 128ull * 4096 + 1000ull * (43 * 1 + 42 * 2));
	T->destroy(b);
	T->destroy(a);
	for (unsigned int i = 0; i < 128; i++) {
		page_del(&pg[i]);
	}
}

/* Refusals answer on the same channel, in order with good reads; the server stays up. */
static void
test_refusals(void)
{
	struct pc_xport *a = xp_new(g_a, NULL, 0, 0);
	struct pc_xport *b = xp_new(g_b, NULL, 1, 0);
	struct page pg[7];
	uint32_t len[7];
	int status[7];
	struct pc_xport_stats s;

	page_set(&pg[0], 10000);
	for (int i = 0; i < 7; i++) {
		pg[i] = pg[0];
		len[i] = PC_PAGE_HDR_SIZE + pg[0].len;
	}
	pg[1].gen += 1;                          /* another generation */
	pg[2].off += PC_PAGE_HDR_SIZE;           /* inside the page: not a slot start */
	pg[3].off = SEG_SIZE + 4096;             /* outside the segment */
	len[4] += 1;                             /* longer than the page */
	len[5] -= 1;                             /* shorter */
	pg[6].off = SEG_SIZE - PC_PAGE_HDR_SIZE; /* the segment's last bytes */
	read_pages(a, b, T->port(a), pg, len, 7, status, true);
	CU_ASSERT_EQUAL(status[0], 0);
	CU_ASSERT_EQUAL(status[1], -ESTALE);
	CU_ASSERT_EQUAL(status[2], -EINVAL);
	CU_ASSERT_EQUAL(status[3], -EINVAL);
	CU_ASSERT_EQUAL(status[4], -EINVAL);
	CU_ASSERT_EQUAL(status[5], -EINVAL);
	CU_ASSERT(status[6] == -EINVAL || status[6] == -ESTALE);
	/* The same channel still serves. */
	read_pages(a, b, T->port(a), pg, NULL, 1, status, true);
	CU_ASSERT_EQUAL(status[0], 0);
	s = stats(b);
	CU_ASSERT_EQUAL(s.reads_stale, 1 + (status[6] == -ESTALE));
	CU_ASSERT_EQUAL(s.channels_opened, 1);
	CU_ASSERT_EQUAL(s.channels_destroyed, 0);
	s = stats(a);
	CU_ASSERT_EQUAL(s.serve_refused, 6);
	CU_ASSERT_EQUAL(s.serve_malformed, 0);
	T->destroy(b);
	T->destroy(a);
	page_del(&pg[0]);
}

/* Post-time checks: nothing taken, nothing sent. */
static void
test_post_checks(void)
{
	struct pc_xport *b = xp_new(NULL, NULL, 0, 0);
	struct pc_xport_peer peer = peer_of(1, 1);
	struct pc_xport_read r = {.remote_off = 0, .generation = 1, .len = 4096, .local_off = 0};
	struct pc_xport_stats s;

	CU_ASSERT_EQUAL(T->port(b), 0); /* no store: no serving */
	r.local_off = SEG_SIZE - 4095;
	CU_ASSERT_EQUAL(T->post_reads(b, &peer, &r, 1, 0, g_now), -EINVAL);
	r.local_off = UINT64_MAX - 100;
	CU_ASSERT_EQUAL(T->post_reads(b, &peer, &r, 1, 0, g_now), -EINVAL);
	r.local_off = 0;
	r.len = PC_PAGE_HDR_SIZE - 1;
	CU_ASSERT_EQUAL(T->post_reads(b, &peer, &r, 1, 0, g_now), -EINVAL);
	r.len = PC_DATA_LEN_MAX + 1;
	CU_ASSERT_EQUAL(T->post_reads(b, &peer, &r, 1, 0, g_now), -EINVAL);
	r.len = 4096;
	peer.host = "localhost"; /* not an IP literal */
	CU_ASSERT_EQUAL(T->post_reads(b, &peer, &r, 1, 0, g_now), -EINVAL);
	peer.host = "127.0.0.1";
	peer.port = 0;
	CU_ASSERT_EQUAL(T->post_reads(b, &peer, &r, 1, 0, g_now), -EINVAL);
	s = stats(b);
	CU_ASSERT_EQUAL(s.reads_posted, 0);
	CU_ASSERT_EQUAL(s.channels_opened, 0);
	T->destroy(b);
}

/* A location held across a delete and a reuse of its slot: -ESTALE, never the new page. */
static void
test_reused_slot(void)
{
	struct pc_xport *a = xp_new(g_a, NULL, 0, 0);
	struct pc_xport *b = xp_new(g_b, NULL, 0, 0);
	struct page old;
	struct page neu;
	struct page held;
	int status;
	bool reused = false;

	page_set(&old, 20000);
	held = old;
	page_del(&old);
	read_pages(a, b, T->port(a), &held, NULL, 1, &status, false);
	CU_ASSERT_EQUAL(status, -ESTALE); /* deleted, not reused yet */
	/* Past the quarantine, the slot goes back to the slab, and the next SET may take it. */
	for (int i = 0; i < 20; i++) {
		pc_store_poll(g_a, CI, rte_rdtsc() + (uint64_t)(i + 1) * pc_us_to_tsc(10 * Q_US));
	}
	for (int i = 0; i < 64 && !reused; i++) {
		page_set(&neu, 20000);
		reused = neu.off == held.off;
	}
	CU_ASSERT_FATAL(reused); /* the test means a reused slot */
	CU_ASSERT(neu.gen != held.gen);
	read_pages(a, b, T->port(a), &held, NULL, 1, &status, false);
	CU_ASSERT_EQUAL(status, -ESTALE);
	read_pages(a, b, T->port(a), &neu, NULL, 1, &status, true);
	CU_ASSERT_EQUAL(status, 0);
	T->destroy(b);
	T->destroy(a);
}

/* The server goes away with 128 READs of 1 MiB in flight: each completes, with an error. */
static void
test_server_dies(void)
{
	struct pc_xport *a = xp_new(g_a, NULL, 4, 0);
	struct pc_xport *b = xp_new(g_b, NULL, 4, 0);
	struct pc_xport_peer peer = peer_of(T->port(a), 1);
	struct pc_xport_read r[128];
	struct pc_store_loc st;
	struct page pg;
	struct rd rd = {.x = b};
	struct pc_store_stats ss;
	unsigned int ok = 0;
	unsigned int failed = 0;

	page_set(&pg, 1u << 20);
	st = stage(pg.len);
	for (unsigned int i = 0; i < 128; i++) {
		r[i] = (struct pc_xport_read){
			.remote_off = pg.off,
			.generation = pg.gen,
			.len = PC_PAGE_HDR_SIZE + pg.len,
			.local_off = st.off,
			.cookie = i,
		};
	}
	CU_ASSERT_EQUAL(T->post_reads(b, &peer, r, 128, 0, g_now), 128);
	pump(&a, 1, &rd, 1, 3); /* a few through */
	pc_store_get_stats(g_a, &ss);
	CU_ASSERT(ss.pinned > 0); /* pages queued on the server, pinned */
	T->destroy(a);
	pc_store_get_stats(g_a, &ss);
	CU_ASSERT_EQUAL(ss.pinned, 0); /* and let go */
	pump(NULL, 0, &rd, 1, 128);
	CU_ASSERT_EQUAL(rd.n, 128);
	for (unsigned int i = 0; i < rd.n; i++) {
		if (rd.cq[i].status == 0) {
			ok++;
		} else {
			failed++;
			CU_ASSERT(rd.cq[i].status == -ECONNRESET || rd.cq[i].status == -ETIMEDOUT);
		}
	}
	CU_ASSERT(ok >= 3);
	CU_ASSERT(failed > 0);
	CU_ASSERT_EQUAL(stats(b).channels_open, 0);
	CU_ASSERT_EQUAL(stats(b).reads_failed, failed);
	/* Nobody listens there now: a later READ fails at once, refused. */
	rd.n = 0;
	CU_ASSERT_EQUAL(T->post_reads(b, &peer, r, 1, 0, g_now), 1);
	pump(NULL, 0, &rd, 1, 1);
	CU_ASSERT_EQUAL_FATAL(rd.n, 1);
	CU_ASSERT_EQUAL(rd.cq[0].status, -ECONNREFUSED);
	T->destroy(b);
	unstage(&st);
	page_del(&pg);
}

/* A peer that accepts and reads but never answers: -ETIMEDOUT, the channel replaced. */
static void
test_never_answers(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sin);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct pc_xport *b = xp_new(g_b, NULL, 0, 0);
	struct pc_xport_peer peer;
	struct pc_xport_read r = {.len = 4096, .local_off = 0, .cookie = 7};
	struct rd rd = {.x = b};
	int cfd[2] = {-1, -1};
	struct pc_xport_stats s;
	uint8_t junk[256];

	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	CU_ASSERT_EQUAL_FATAL(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	CU_ASSERT_EQUAL_FATAL(listen(lfd, 8), 0);
	CU_ASSERT_EQUAL_FATAL(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
	peer = peer_of(ntohs(sin.sin_port), 1);
	for (int round = 0; round < 2; round++) {
		uint64_t t0 = g_now;

		rd.n = 0;
		CU_ASSERT_EQUAL(T->post_reads(b, &peer, &r, 1, g_now + 100000000ull, g_now), 1);
		for (int i = 0; i < PUMP_MAX && rd.n == 0; i++) {
			int fd = accept(lfd, NULL, NULL);

			if (fd >= 0) {
				cfd[round] = fd;
			}
			if (cfd[round] >= 0) {
				(void)recv(cfd[round], junk, sizeof(junk), MSG_DONTWAIT);
			}
			g_now += STEP_NS;
			rd.n += (unsigned int)T->poll(b, g_now, rd.cq + rd.n, CQ_MAX - rd.n);
		}
		CU_ASSERT_EQUAL_FATAL(rd.n, 1);
		CU_ASSERT_EQUAL(rd.cq[0].cookie, 7);
		CU_ASSERT_EQUAL(rd.cq[0].status, -ETIMEDOUT);
		CU_ASSERT(g_now >= t0 + 100000000ull);          /* not before the deadline */
		CU_ASSERT(g_now < t0 + 100000000ull + 1000000); /* nor long after */
		CU_ASSERT(cfd[round] >= 0);
		s = stats(b);
		CU_ASSERT_EQUAL(s.timeouts, (uint64_t)round + 1);
		CU_ASSERT_EQUAL(s.channels_opened, (uint64_t)round + 1); /* a new one each time */
		CU_ASSERT_EQUAL(s.channels_destroyed, (uint64_t)round + 1);
		CU_ASSERT_EQUAL(s.channels_open, 0);
	}
	/* The reader closed its end: the raw server sees EOF. */
	CU_ASSERT_EQUAL(recv(cfd[0], junk, sizeof(junk), MSG_DONTWAIT), 0);
	close(cfd[0]);
	close(cfd[1]);
	close(lfd);
	T->destroy(b);
}

/* 8 readers, 2 channels each: everything read, channels capped, posts pushed back. */
static void
test_many_readers(void)
{
	struct pc_xport *a = xp_new(g_a, NULL, 0, 0);
	static struct rd rds[MAX_RD];
	static struct page pg[16];
	static struct pc_xport_read r[MAX_RD][200];
	struct pc_xport_peer peer = peer_of(T->port(a), 1);
	static struct pc_store_loc st[MAX_RD][16]; /* per reader, one staging slot per page */
	unsigned int posted[MAX_RD] = {0};
	struct pc_xport_stats s;

	for (unsigned int i = 0; i < PC_ARRAY_SIZE(pg); i++) {
		page_set(&pg[i], 4096 - PC_PAGE_HDR_SIZE);
	}
	for (unsigned int k = 0; k < MAX_RD; k++) {
		rds[k].x = xp_new(NULL, NULL, 2, 0);
		rds[k].n = 0;
		for (unsigned int i = 0; i < 16; i++) {
			st[k][i] = stage(4096 - PC_PAGE_HDR_SIZE);
		}
		for (unsigned int i = 0; i < 200; i++) {
			r[k][i] = (struct pc_xport_read){
				.remote_off = pg[i % 16].off,
				.generation = pg[i % 16].gen,
				.len = 4096,
				.local_off = st[k][i % 16].off,
				.cookie = i,
			};
		}
		/* 2 channels of PC_TCP_CHAN_DEPTH: the rest is pushed back. */
		posted[k] = (unsigned int)T->post_reads(rds[k].x, &peer, r[k], 200, 0, g_now);
		CU_ASSERT_EQUAL(posted[k], 2 * PC_TCP_CHAN_DEPTH);
		CU_ASSERT_EQUAL(T->post_reads(rds[k].x, &peer, r[k] + posted[k], 1, 0, g_now), 0);
	}
	for (int round = 0; round < PUMP_MAX; round++) {
		bool done = true;

		pump(&a, 1, rds, MAX_RD, 0);
		for (unsigned int k = 0; k < MAX_RD; k++) {
			if (posted[k] < 200) {
				int n = T->post_reads(rds[k].x, &peer, r[k] + posted[k],
						      200 - posted[k], 0, g_now);

				CU_ASSERT(n >= 0);
				posted[k] += (unsigned int)n;
			}
			done = done && rds[k].n == 200;
		}
		if (done) {
			break;
		}
	}
	for (unsigned int k = 0; k < MAX_RD; k++) {
		CU_ASSERT_EQUAL(rds[k].n, 200);
		for (unsigned int i = 0; i < rds[k].n; i++) {
			CU_ASSERT_EQUAL(rds[k].cq[i].status, 0);
		}
		for (unsigned int i = 0; i < 16; i++) {
			CU_ASSERT(landed_ok(&pg[i], st[k][i].off));
		}
		s = stats(rds[k].x);
		CU_ASSERT_EQUAL(s.reads_ok, 200);
		CU_ASSERT_EQUAL(s.channels_opened, 2);
		CU_ASSERT_EQUAL(s.channels_open, 2);
	}
	s = stats(a);
	CU_ASSERT_EQUAL(s.serve_conns_open, 2 * MAX_RD);
	CU_ASSERT_EQUAL(s.serve_requests, 200 * MAX_RD);
	for (unsigned int k = 0; k < MAX_RD; k++) {
		T->destroy(rds[k].x);
		for (unsigned int i = 0; i < 16; i++) {
			unstage(&st[k][i]);
		}
	}
	for (int i = 0; i < 1000 && stats(a).serve_conns_open > 0; i++) {
		pump(&a, 1, NULL, 0, 0);
	}
	CU_ASSERT_EQUAL(stats(a).serve_conns_open, 0); /* the readers' closes were seen */
	T->destroy(a);
	for (unsigned int i = 0; i < PC_ARRAY_SIZE(pg); i++) {
		page_del(&pg[i]);
	}
}

static int
secret_case(const uint8_t *srv_secret, const uint8_t *rd_secret)
{
	struct pc_xport *a = xp_new(g_a, srv_secret, 0, 0);
	struct pc_xport *b = xp_new(g_b, rd_secret, 0, 0);
	struct page pg;
	int status;

	page_set(&pg, 3000);
	read_pages(a, b, T->port(a), &pg, NULL, 1, &status, true);
	if (status != 0) {
		CU_ASSERT_EQUAL(stats(b).channels_open, 0);
	}
	T->destroy(b);
	T->destroy(a);
	page_del(&pg);
	return status;
}

static void
test_secrets(void)
{
	CU_ASSERT_EQUAL(secret_case(g_secret1, g_secret1), 0);
	CU_ASSERT_EQUAL(secret_case(g_secret1, g_secret2), -EACCES);
	CU_ASSERT_EQUAL(secret_case(g_secret1, NULL), -EACCES);
	CU_ASSERT_EQUAL(secret_case(NULL, g_secret1), -EACCES);
	CU_ASSERT_EQUAL(secret_case(NULL, NULL), 0);
}

/* Hostile peers are closed one by one; a normal reader is served throughout. */
static void
test_hostile(void)
{
	struct pc_xport *a = xp_new(g_a, NULL, 0, 0);
	struct pc_xport *b = xp_new(g_b, NULL, 0, 0);
	uint16_t port = T->port(a);
	struct pc_data_req req = {.id = 1, .remote_off = 0, .generation = 1, .len = 64};
	uint8_t raw[PC_DATA_REQ_SIZE];
	struct page pg;
	int status;
	int fd;

	page_set(&pg, 5000);
	/* Garbage instead of a handshake. */
	fd = raw_connect(port, 0);
	CU_ASSERT_FATAL(raw_recv(fd, a, raw, PC_AUTH_CHALLENGE_LEN));
	CU_ASSERT_EQUAL(send(fd, "GET / HTTP/1.0\r\n\r\n", 18, 0), 18);
	CU_ASSERT(raw_closed(fd, a, 1000, STEP_NS, true));
	close(fd);
	CU_ASSERT_EQUAL(stats(a).serve_malformed, 1);
	/* Garbage after the handshake. */
	fd = raw_auth(port, a, 0);
	memset(raw, 0x41, sizeof(raw));
	CU_ASSERT_EQUAL(send(fd, raw, sizeof(raw), 0), (ssize_t)sizeof(raw));
	CU_ASSERT(raw_closed(fd, a, 1000, STEP_NS, true));
	close(fd);
	CU_ASSERT_EQUAL(stats(a).serve_malformed, 2);
	/* A huge len. */
	fd = raw_auth(port, a, 0);
	CU_ASSERT_EQUAL(pc_data_req_encode(raw, &req), 0);
	raw[32] = 0xff;
	raw[33] = 0xff;
	raw[34] = 0xff;
	raw[35] = 0xff;
	CU_ASSERT_EQUAL(send(fd, raw, sizeof(raw), 0), (ssize_t)sizeof(raw));
	CU_ASSERT(raw_closed(fd, a, 1000, STEP_NS, true));
	close(fd);
	CU_ASSERT_EQUAL(stats(a).serve_malformed, 3);
	/* One byte a second: closed once the request is TIMEOUT_NS old. */
	fd = raw_auth(port, a, 0);
	CU_ASSERT_EQUAL(pc_data_req_encode(raw, &req), 0);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(send(fd, raw + i, 1, 0), 1);
		CU_ASSERT_FALSE(raw_closed(fd, a, 1, 500000000ull, true));
	}
	CU_ASSERT(raw_closed(fd, a, 3, 500000000ull, true));
	close(fd);
	/* Silent after connecting: the handshake times out. */
	fd = raw_connect(port, 0);
	CU_ASSERT_FALSE(raw_closed(fd, a, 10, STEP_NS, true));
	CU_ASSERT(raw_closed(fd, a, 3, TIMEOUT_NS, true));
	close(fd);
	CU_ASSERT_EQUAL(stats(a).serve_conns_open, 0);
	/* None of it touched a real reader. */
	read_pages(a, b, port, &pg, NULL, 1, &status, true);
	CU_ASSERT_EQUAL(status, 0);
	CU_ASSERT_EQUAL(stats(a).serve_malformed, 3);
	T->destroy(b);
	T->destroy(a);
	page_del(&pg);
}

/* A reader that asks and never reads: requests stop being read, then it is closed, pins back. */
static void
test_backpressure(void)
{
	struct pc_xport *a = xp_new(g_a, NULL, 0, 0);
	struct pc_data_req req = {.id = 1, .generation = 0, .len = 0};
	uint8_t raw[PC_DATA_REQ_SIZE];
	struct pc_store_stats ss;
	struct page pg;
	size_t sent = 0;
	int fd;

	page_set(&pg, 1u << 20);
	req.remote_off = pg.off;
	req.generation = pg.gen;
	req.len = PC_PAGE_HDR_SIZE + pg.len;
	/*
	 * A live reader 200 requests ahead: the server holds them back past its
	 * caps and answers every one, in order, as the replies are read.
	 */
	fd = raw_auth(T->port(a), a, 0);
	for (int i = 0; i < 200; i++) {
		req.id = (uint64_t)i + 1;
		CU_ASSERT_EQUAL(pc_data_req_encode(raw, &req), 0);
		CU_ASSERT_EQUAL(send(fd, raw, sizeof(raw), 0), (ssize_t)sizeof(raw));
	}
	for (uint64_t id = 1; id <= 200; id++) {
		static uint8_t body[PC_PAGE_HDR_SIZE + (1u << 20)];
		uint8_t hdr[PC_DATA_REP_SIZE];
		struct pc_data_rep rep;

		CU_ASSERT_FATAL(raw_recv(fd, a, hdr, sizeof(hdr)));
		CU_ASSERT_EQUAL_FATAL(pc_data_rep_decode(hdr, sizeof(hdr), &rep), 0);
		CU_ASSERT_EQUAL_FATAL(rep.id, id);
		CU_ASSERT_EQUAL_FATAL(rep.status, 0);
		CU_ASSERT_EQUAL_FATAL(rep.len, req.len);
		CU_ASSERT_FATAL(raw_recv(fd, a, body, rep.len));
		CU_ASSERT(memcmp(body, seg(g_a, pg.off), rep.len) == 0);
		pc_store_get_stats(g_a, &ss);
		CU_ASSERT(ss.pinned <= PC_TCP_SERVE_OUT_CAP / pg.len + 1);
	}
	close(fd);
	fd = raw_auth(T->port(a), a, 0);
	/* 1000 requests for 1 MiB each: 1 GiB if the server answered them all at once. */
	for (int i = 0; i < 1000; i++) {
		struct pc_xport_cqe none[1];

		req.id = (uint64_t)i + 1;
		CU_ASSERT_EQUAL(pc_data_req_encode(raw, &req), 0);
		if (send(fd, raw, sizeof(raw), MSG_DONTWAIT) == (ssize_t)sizeof(raw)) {
			sent++;
		}
		g_now += STEP_NS;
		T->poll(a, g_now, none, 1);
		pc_store_get_stats(g_a, &ss);
		/* The byte cap is soft by one page: what is pending when it is crossed. */
		CU_ASSERT(ss.pinned <= PC_TCP_SERVE_OUT_CAP / pg.len + 1);
	}
	CU_ASSERT_EQUAL(sent, 1000); /* small requests: the socket buffers hold them */
	pc_store_get_stats(g_a, &ss);
	CU_ASSERT(ss.pinned > 0);
	CU_ASSERT(stats(a).serve_requests < 1000);
	/* Output stuck: closed after the timeout, every pin released. */
	CU_ASSERT(raw_closed(fd, a, 4, TIMEOUT_NS, false));
	pc_store_get_stats(g_a, &ss);
	CU_ASSERT_EQUAL(ss.pinned, 0);
	CU_ASSERT_EQUAL(stats(a).serve_conns_open, 0);
	close(fd);
	T->destroy(a);
	page_del(&pg);
}

/* A new incarnation of the peer: the old channels go, reads go on over new ones. */
static void
test_incarnation(void)
{
	struct pc_xport *a = xp_new(g_a, NULL, 0, 0);
	struct pc_xport *b = xp_new(g_b, NULL, 1, 0);
	struct pc_xport_peer peer = peer_of(T->port(a), 1);
	struct pc_store_loc st;
	struct pc_xport_read r;
	struct rd rd = {.x = b};
	struct page pg;

	page_set(&pg, 7000);
	st = stage(pg.len);
	r = (struct pc_xport_read){.remote_off = pg.off,
				   .generation = pg.gen,
				   .len = PC_PAGE_HDR_SIZE + pg.len,
				   .local_off = st.off};
	for (uint64_t inc = 1; inc <= 3; inc++) {
		peer.incarnation = inc;
		rd.n = 0;
		r.cookie = inc;
		CU_ASSERT_EQUAL(T->post_reads(b, &peer, &r, 1, 0, g_now), 1);
		pump(&a, 1, &rd, 1, 1);
		CU_ASSERT_EQUAL(rd.n, 1);
		CU_ASSERT_EQUAL(rd.cq[0].status, 0);
		CU_ASSERT(landed_ok(&pg, st.off));
		CU_ASSERT_EQUAL(stats(b).channels_opened, inc);
		CU_ASSERT_EQUAL(stats(b).channels_open, 1);
	}
	CU_ASSERT_EQUAL(stats(b).channels_destroyed, 2);
	/* Destroyed with a READ in flight: no completion is owed, nothing leaks. */
	CU_ASSERT_EQUAL(T->post_reads(b, &peer, &r, 1, 0, g_now), 1);
	T->destroy(b);
	T->destroy(a);
	unstage(&st);
	page_del(&pg);
}

/* SO_REUSEPORT: a second lcore's xport binds the first one's port and serves too. */
static void
test_reuseport(void)
{
	struct pc_xport *a0 = xp_new(g_a, NULL, 0, 0);
	struct pc_xport *a1 = xp_new(g_a, NULL, 0, T->port(a0));
	struct pc_xport *srv[2] = {a0, a1};
	struct pc_xport *b = xp_new(NULL, NULL, 16, 0);
	struct pc_xport_peer peer = peer_of(T->port(a0), 1);
	struct pc_xport_read r[64];
	struct rd rd = {.x = b};
	struct pc_store_loc st;
	struct page pg;

	CU_ASSERT_EQUAL(T->port(a1), T->port(a0));
	page_set(&pg, 4000);
	st = stage(pg.len);
	for (unsigned int i = 0; i < 64; i++) {
		r[i] = (struct pc_xport_read){.remote_off = pg.off,
					      .generation = pg.gen,
					      .len = PC_PAGE_HDR_SIZE + pg.len,
					      .local_off = st.off,
					      .cookie = i};
	}
	/* One at a time: each opens a new channel while the others are busy. */
	for (unsigned int i = 0; i < 64; i++) {
		CU_ASSERT_EQUAL(T->post_reads(b, &peer, &r[i], 1, 0, g_now), 1);
	}
	pump(srv, 2, &rd, 1, 64);
	CU_ASSERT_EQUAL(rd.n, 64);
	CU_ASSERT_EQUAL(stats(b).reads_ok, 64);
	CU_ASSERT_EQUAL(stats(a0).serve_requests + stats(a1).serve_requests, 64);
	CU_ASSERT_EQUAL(stats(a0).serve_conns_open + stats(a1).serve_conns_open,
			stats(b).channels_open);
	T->destroy(b);
	T->destroy(a1);
	T->destroy(a0);
	unstage(&st);
	page_del(&pg);
}

static uint64_t
pinned_now(void)
{
	struct pc_store_stats ss;

	pc_store_get_stats(g_a, &ss);
	return ss.pinned;
}

/* Poll the server until every zero-copy send it made is reported done (bounded). */
static bool
zc_settle(struct pc_xport *a)
{
	for (int i = 0; i < 100000; i++) {
		struct pc_xport_stats s = stats(a);
		struct pc_xport_cqe none[1];

		if (s.serve_zc_done == s.serve_zc_sends) {
			return true;
		}
		g_now += STEP_NS;
		T->poll(a, g_now, none, 1);
	}
	return false;
}

/*
 * Zero-copy serving: the bytes are the owner's, 4 KiB (copied: under the
 * threshold) to 8 MiB; over loopback the kernel reports each send copied,
 * and the connection goes back to plain sends.
 */
static void
test_zerocopy(void)
{
	static const uint32_t lens[] = {4096 - PC_PAGE_HDR_SIZE, 65536, 1u << 20, 8u << 20};
	struct pc_xport *a;
	struct pc_xport *b;
	struct page pg[PC_ARRAY_SIZE(lens)];
	int status[PC_ARRAY_SIZE(lens)];
	struct pc_xport_stats s;

	g_zc = true;
	a = xp_new(g_a, NULL, 0, 0);
	b = xp_new(g_b, NULL, 1, 0); /* one channel: one server connection */
	g_zc = false;
	for (size_t i = 0; i < PC_ARRAY_SIZE(lens); i++) {
		page_set(&pg[i], lens[i]);
	}
	read_pages(a, b, T->port(a), &pg[0], NULL, 1, &status[0], true);
	CU_ASSERT_EQUAL(status[0], 0);
	CU_ASSERT_EQUAL(stats(a).serve_zc_sends, 0); /* 4 KiB: copied */
	read_pages(a, b, T->port(a), &pg[1], NULL, 1, &status[1], true);
	CU_ASSERT_EQUAL(status[1], 0);
	s = stats(a);
	CU_ASSERT(s.serve_zc_sends >= 1);
	CU_ASSERT_FATAL(zc_settle(a));
	s = stats(a);
	CU_ASSERT_EQUAL(s.serve_zc_done, s.serve_zc_sends);
	/* Loopback hands the receiver copies: the kernel says so, and is believed. */
	CU_ASSERT(s.serve_zc_copied >= 1);
	CU_ASSERT_EQUAL(s.serve_zc_nobufs, 0);
	read_pages(a, b, T->port(a), pg, NULL, PC_ARRAY_SIZE(lens), status, true);
	for (size_t i = 0; i < PC_ARRAY_SIZE(lens); i++) {
		CU_ASSERT_EQUAL(status[i], 0);
	}
	CU_ASSERT_EQUAL(stats(a).serve_zc_sends, s.serve_zc_sends); /* plain sends now */
	CU_ASSERT_EQUAL(stats(b).channels_opened, 1);
	CU_ASSERT_EQUAL(pinned_now(), 0);
	T->destroy(b);
	T->destroy(a);
	for (size_t i = 0; i < PC_ARRAY_SIZE(lens); i++) {
		page_del(&pg[i]);
	}
}

/*
 * A page sent zero-copy stays pinned after its last byte is written, until
 * the kernel reports the send done; a reader that stops reading with sends
 * outstanding is reset after the timeout, and every pin comes back.
 */
static void
test_zerocopy_pins(void)
{
	struct pc_data_req req = {.id = 1};
	uint8_t raw[PC_DATA_REQ_SIZE];
	uint8_t hdr[PC_DATA_REP_SIZE];
	static uint8_t body[PC_PAGE_HDR_SIZE + (1u << 20)];
	struct pc_data_rep rep;
	struct pc_xport *a;
	struct page pg;
	struct page big;
	bool held = false;
	int fd;

	g_zc = true;
	a = xp_new(g_a, NULL, 0, 0);
	g_zc = false;
	page_set(&pg, 32u << 10); /* one sendmsg, one skb: one zero-copy id */
	req.remote_off = pg.off;
	req.generation = pg.gen;
	req.len = PC_PAGE_HDR_SIZE + pg.len;
	fd = raw_auth(T->port(a), a, 0);
	CU_ASSERT_EQUAL(pc_data_req_encode(raw, &req), 0);
	CU_ASSERT_EQUAL(send(fd, raw, sizeof(raw), 0), (ssize_t)sizeof(raw));
	for (int i = 0; i < 100000 && stats(a).serve_bytes < req.len; i++) {
		struct pc_xport_cqe none[1];

		g_now += STEP_NS;
		T->poll(a, g_now, none, 1);
	}
	{
		struct pc_xport_stats s = stats(a);

		/* Written, its send not reported done yet: still pinned. */
		CU_ASSERT_EQUAL_FATAL(s.serve_bytes, req.len);
		CU_ASSERT_EQUAL(s.serve_zc_sends, 1);
		held = s.serve_zc_done == 0 && pinned_now() == 1;
		CU_ASSERT(held);
	}
	CU_ASSERT_FATAL(raw_recv(fd, a, hdr, sizeof(hdr)));
	CU_ASSERT_EQUAL_FATAL(pc_data_rep_decode(hdr, sizeof(hdr), &rep), 0);
	CU_ASSERT_EQUAL(rep.status, 0);
	CU_ASSERT_FATAL(raw_recv(fd, a, body, req.len));
	CU_ASSERT(memcmp(body, seg(g_a, pg.off), req.len) == 0);
	CU_ASSERT_FATAL(zc_settle(a));
	CU_ASSERT_EQUAL(pinned_now(), 0); /* reported done: released */
	close(fd);

	/*
	 * A reader with a tiny receive buffer that never reads: the first
	 * zero-copy send cannot be delivered, so it is never reported done
	 * (nor copied). The output timeout resets the connection and unpins.
	 */
	page_set(&big, 1u << 20);
	req.remote_off = big.off;
	req.generation = big.gen;
	req.len = PC_PAGE_HDR_SIZE + big.len;
	fd = raw_auth(T->port(a), a, 4096);
	for (uint64_t id = 1; id <= 4; id++) {
		req.id = id;
		CU_ASSERT_EQUAL(pc_data_req_encode(raw, &req), 0);
		CU_ASSERT_EQUAL(send(fd, raw, sizeof(raw), 0), (ssize_t)sizeof(raw));
	}
	for (int i = 0; i < 2000; i++) {
		struct pc_xport_cqe none[1];

		g_now += STEP_NS;
		T->poll(a, g_now, none, 1);
	}
	{
		struct pc_xport_stats s = stats(a);

		CU_ASSERT(s.serve_zc_sends >= 1);
		CU_ASSERT(s.serve_zc_done < s.serve_zc_sends);
		CU_ASSERT(pinned_now() >= 1);
	}
	for (int i = 0; i < 4; i++) {
		struct pc_xport_cqe none[1];

		g_now += TIMEOUT_NS;
		T->poll(a, g_now, none, 1);
	}
	CU_ASSERT_EQUAL(pinned_now(), 0);
	CU_ASSERT_EQUAL(stats(a).serve_conns_open, 0);
	/*
	 * Reset, not closed: the kernel dropped what it still had to send
	 * from the unpinned pages (a FIN would have followed the whole
	 * queue). What was already delivered comes first, then the error.
	 */
	{
		uint64_t got = 0;
		int err = 0;

		for (int i = 0; i < 100000 && err == 0; i++) {
			ssize_t k = recv(fd, body, sizeof(body), MSG_DONTWAIT);

			if (k > 0) {
				got += (uint64_t)k;
			} else if (k == 0) {
				err = -1; /* EOF: a plain close */
			} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
				err = errno;
			}
		}
		CU_ASSERT_EQUAL(err, ECONNRESET);
		CU_ASSERT(got < req.len);
	}
	close(fd);
	T->destroy(a);
	page_del(&pg);
	page_del(&big);
}

static const struct pc_ut_test read_tests[] = {
	{"round trip 1 B to 8 MiB", test_roundtrip_sizes},
	{"128 in flight", test_batch_128},
	{"stale and refused ranges", test_refusals},
	{"post-time checks", test_post_checks},
	{"deleted and reused slot", test_reused_slot},
	{"incarnation", test_incarnation},
	{"SO_REUSEPORT lcores", test_reuseport},
	{"zero-copy serving", test_zerocopy},
	{NULL, NULL},
};

static const struct pc_ut_test fail_tests[] = {
	{"server dies mid-burst", test_server_dies},
	{"server never answers", test_never_answers},
	{"8 readers, 2 channels", test_many_readers},
	{"cluster secret", test_secrets},
	{"hostile peers", test_hostile},
	{"reader that never reads", test_backpressure},
	{"zero-copy pins, reader stalls", test_zerocopy_pins},
	{"hostile data server", test_hostile_server},
	{NULL, NULL},
};

static const struct pc_ut_suite suites[] = {
	{"tcp reads", suite_init, suite_cleanup, read_tests},
	{"tcp failures", suite_init, suite_cleanup, fail_tests},
};

int
main(void)
{
	if (pc_ut_eal_init("tcp_ut", "0") != 0) {
		return 1;
	}
	return pc_ut_run(suites, PC_ARRAY_SIZE(suites));
}
