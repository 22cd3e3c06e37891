/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A hostile local client for the engine's integration tests: it speaks the
 * session protocol (common/pc_session_proto.h) by hand and breaks it on
 * purpose. Every mode checks what the engine answered and exits 0 only if
 * each malformed request failed alone with the expected error.
 *
 *   hostile_client SOCKET bad-hello      wrong magic, version, size, namespace, slots
 *   hostile_client SOCKET bad-requests   bad slot indices, ops, counts, key bounds,
 *                                        sizes, phases, deadlines
 *   hostile_client SOCKET scribble SEED  random bytes over the whole session region
 *                                        (rings included), then random submissions
 *   hostile_client SOCKET hold-pins      GET a page then exit without GET_DONE
 *                                        (the caller kills it or lets it exit)
 *   hostile_client SOCKET slow-writer MS allocate pages, stall MS ms (past the engine's
 *                                        request_timeout), then fill and commit them
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "pc_session_proto.h"

struct conn {
	int sock;
	struct pc_hello_reply reply;
	uint8_t *region;
	uint8_t *segment;
	struct rte_ring *sq;
	uint32_t seq;
};

static int g_failures;

static void
check(const char *what, long got, long want)
{
	if (got != want) {
		printf("FAIL %s: got %ld, want %ld\n", what, got, want);
		g_failures++;
	} else {
		printf("ok   %s: %ld\n", what, got);
	}
}

static int
dial(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("connect");
		exit(2);
	}
	return fd;
}

/* Send raw hello bytes; receive the reply and up to two fds. Returns the reply size. */
static ssize_t
hello_raw(int fd, const void *buf, size_t len, struct pc_hello_reply *r, int fds[2])
{
	union {
		char b[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = r, .iov_len = sizeof(*r)};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.b,
			     .msg_controllen = sizeof(u.b)};
	struct pollfd p = {.fd = fd, .events = POLLIN};
	struct cmsghdr *c;
	ssize_t n;

	fds[0] = fds[1] = -1;
	if (send(fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len) {
		return -1;
	}
	if (poll(&p, 1, 5000) != 1) {
		return -1;
	}
	memset(r, 0, sizeof(*r));
	n = recvmsg(fd, &msg, 0);
	for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			memcpy(fds, CMSG_DATA(c), 2 * sizeof(int));
		}
	}
	return n;
}

static void
conn_open(struct conn *c, const char *path, const char *ns)
{
	struct pc_hello h = {
		.magic = PC_HELLO_MAGIC, .version = PC_PROTO_VERSION, .pid = (uint32_t)getpid()};
	int fds[2];

	memset(c, 0, sizeof(*c));
	h.ns_len = (uint16_t)strlen(ns);
	memcpy(h.ns, ns, h.ns_len);
	c->sock = dial(path);
	if (hello_raw(c->sock, &h, sizeof(h), &c->reply, fds) != sizeof(c->reply) ||
	    c->reply.status != 0 || fds[0] < 0 || fds[1] < 0) {
		printf("FAIL hello refused: %d %s\n", c->reply.status, c->reply.msg);
		exit(1);
	}
	c->segment =
		mmap(NULL, c->reply.segment_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	c->region = mmap(NULL, c->reply.region_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0);
	if (c->segment == MAP_FAILED || c->region == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	close(fds[0]);
	close(fds[1]);
	c->sq = (struct rte_ring *)(c->region + c->reply.sq_off);
}

static struct pc_req_slot *
slot_of(struct conn *c, uint32_t i)
{
	return (struct pc_req_slot *)(c->region + c->reply.slots_off +
				      (size_t)i * c->reply.slot_size);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void
submit(struct conn *c, uint32_t slot, uint32_t seq)
{
	struct pc_ring_elem e = {.slot = slot, .seq = seq};

	while (rte_ring_enqueue_elem(c->sq, &e, sizeof(e)) != 0) {
		usleep(100);
	}
}

/* Wait for the completion of {slot, seq} (its done_seq); returns 0, or -ETIMEDOUT after 3 s. */
static int
wait_done(struct conn *c, uint32_t slot, uint32_t seq)
{
	uint64_t end = now_ns() + 3000000000ull;

	while (now_ns() < end) {
		if (__atomic_load_n(&slot_of(c, slot)->done_seq, __ATOMIC_ACQUIRE) == seq) {
			return 0;
		}
		usleep(50);
	}
	return -ETIMEDOUT;
}

/* Fill a request in slot 0 with n keys "k<i>", run it, return its status. */
static int32_t
run_req(struct conn *c, uint32_t op, uint32_t nkeys, uint32_t len)
{
	struct pc_req_slot *rs = slot_of(c, 0);
	uint32_t off = 0;
	uint32_t i;

	rs->op = op;
	rs->nkeys = nkeys;
	rs->deadline_ns = 0;
	rs->prefix_depth = 0;
	for (i = 0; i < nkeys && i < PC_REQ_MAX_KEYS; i++) {
		int w = snprintf((char *)rs->arena + off, 16, "hostile-%u", i);

		rs->keys[i].key_off = off;
		rs->keys[i].key_len = (uint16_t)w;
		rs->keys[i].len = len;
		rs->keys[i].result = 0;
		off += (uint32_t)w;
	}
	c->seq++;
	submit(c, 0, c->seq);
	if (wait_done(c, 0, c->seq) != 0) {
		return -ETIMEDOUT;
	}
	return rs->status;
}

static void
mode_bad_hello(const char *path)
{
	struct pc_hello h = {.magic = PC_HELLO_MAGIC, .version = PC_PROTO_VERSION};
	struct pc_hello_reply r;
	char junk[37];
	int fds[2];
	int fd;

	fd = dial(path);
	h.version = PC_PROTO_VERSION + 7;
	hello_raw(fd, &h, sizeof(h), &r, fds);
	check("wrong version refused", r.status, -EPROTO);
	check("wrong version: no fds", fds[0], -1);
	printf("     engine said: %s\n", r.msg);
	close(fd);

	fd = dial(path);
	h.version = PC_PROTO_VERSION;
	h.ns_len = PC_NS_MAX + 1;
	hello_raw(fd, &h, sizeof(h), &r, fds);
	check("namespace too long refused", r.status, -ENAMETOOLONG);
	close(fd);

	fd = dial(path);
	h.ns_len = 0;
	h.nslots = PC_SESSION_SLOTS_MAX + 1;
	hello_raw(fd, &h, sizeof(h), &r, fds);
	check("too many slots refused", r.status, -EINVAL);
	close(fd);

	fd = dial(path);
	h.nslots = 0;
	hello_raw(fd, &h, sizeof(h) - 4, &r, fds);
	check("short hello refused", r.status, -EPROTO);
	close(fd);

	fd = dial(path);
	memset(junk, 0x5a, sizeof(junk));
	hello_raw(fd, junk, sizeof(junk), &r, fds);
	check("garbage refused", r.status, -EPROTO);
	close(fd);
}

static void
mode_bad_requests(const char *path)
{
	struct conn c;
	struct pc_req_slot *rs;

	conn_open(&c, path, "hostile");
	rs = slot_of(&c, 0);

	/* A slot index past the end gets no completion (there is no slot to answer in)... */
	submit(&c, c.reply.nslots + 5, 77);
	submit(&c, UINT32_MAX, 78);
	/* ...and the session keeps working. */
	check("NOP after bad slot indices", run_req(&c, PC_OP_NOP, 0, 0), 0);
	check("unknown op", run_req(&c, 999, 0, 0), -EINVAL);
	check("too many keys", run_req(&c, PC_OP_EXISTS, PC_REQ_MAX_KEYS + 1, 0), -EINVAL);

	rs->op = PC_OP_EXISTS;
	rs->nkeys = 1;
	rs->keys[0].key_off = PC_REQ_ARENA_SIZE - 2;
	rs->keys[0].key_len = 10;
	c.seq++;
	submit(&c, 0, c.seq);
	wait_done(&c, 0, c.seq);
	check("key past the arena", rs->status, -EINVAL);

	rs->keys[0].key_off = UINT32_MAX - 3;
	rs->keys[0].key_len = 8;
	c.seq++;
	submit(&c, 0, c.seq);
	wait_done(&c, 0, c.seq);
	check("key offset overflowing", rs->status, -EINVAL);

	rs->keys[0].key_off = 0;
	rs->keys[0].key_len = 0;
	c.seq++;
	submit(&c, 0, c.seq);
	wait_done(&c, 0, c.seq);
	check("empty key", rs->status, -EINVAL);

	rs->keys[0].key_len = PC_KEY_MAX + 1;
	c.seq++;
	submit(&c, 0, c.seq);
	wait_done(&c, 0, c.seq);
	check("key too long", rs->status, -EINVAL);

	check("SET_ALLOC len 0: request ok", run_req(&c, PC_OP_SET_ALLOC, 1, 0), 0);
	check("SET_ALLOC len 0: key refused", rs->keys[0].result, -EMSGSIZE);
	check("SET_ALLOC len over 64 MiB: request ok",
	      run_req(&c, PC_OP_SET_ALLOC, 1, (64u << 20) + 1), 0);
	check("SET_ALLOC len over 64 MiB: key refused", rs->keys[0].result, -EMSGSIZE);
	check("SET_ALLOC len 4 GiB-1: request ok", run_req(&c, PC_OP_SET_ALLOC, 1, UINT32_MAX), 0);
	check("SET_ALLOC len 4 GiB-1: key refused", rs->keys[0].result, -EMSGSIZE);
	check("SET_COMMIT with nothing allocated", run_req(&c, PC_OP_SET_COMMIT, 1, 0), -ETIMEDOUT);
	check("GET_DONE with nothing pinned", run_req(&c, PC_OP_GET_DONE, 0, 0), 0);

	rs->op = PC_OP_NOP;
	rs->nkeys = 0;
	rs->deadline_ns = now_ns() - 1000000;
	c.seq++;
	submit(&c, 0, c.seq);
	wait_done(&c, 0, c.seq);
	check("deadline already past", rs->status, -ETIMEDOUT);

	/* A real SET, then a commit where the client lies about offsets: the engine ignores them.
	 */
	check("SET_ALLOC 4 KiB", run_req(&c, PC_OP_SET_ALLOC, 2, 4096), 0);
	check("SET_ALLOC key 0", rs->keys[0].result, 0);
	memset(c.segment + rs->keys[0].page_off + 64, 0xab, 4096);
	memset(c.segment + rs->keys[1].page_off + 64, 0xcd, 4096);
	rs->keys[0].page_off = UINT64_MAX - 100;
	rs->keys[1].page_off = 12345;
	rs->op = PC_OP_SET_COMMIT;
	rs->keys[0].result = 0;
	rs->keys[1].result = 0;
	c.seq++;
	submit(&c, 0, c.seq);
	wait_done(&c, 0, c.seq);
	check("SET_COMMIT with scribbled offsets", rs->status, 0);
	check("SET_COMMIT published", rs->count, 2);
	check("GET back", run_req(&c, PC_OP_GET, 2, 0), 0);
	check("GET hits", rs->count, 2);
	check("GET bytes", c.segment[rs->keys[1].page_off + 64 + 4095], 0xcd);
	check("GET_DONE", run_req(&c, PC_OP_GET_DONE, 0, 0), 0);
	check("DELETE", run_req(&c, PC_OP_DELETE, 2, 0), 0);
	check("DELETE count", rs->count, 2);
}

static uint64_t g_rng;

static uint64_t
rnd(void)
{
	g_rng ^= g_rng << 13;
	g_rng ^= g_rng >> 7;
	g_rng ^= g_rng << 17;
	return g_rng;
}

static void
mode_scribble(const char *path, uint64_t seed)
{
	struct conn c;
	size_t i;
	int round;

	g_rng = seed | 1;
	conn_open(&c, path, "scribbler");
	for (round = 0; round < 50; round++) {
		/* Random words all over the region, ring headers and slots included. */
		for (i = 0; i + 8 <= c.reply.region_size; i += 8) {
			if ((rnd() & 7) == 0) {
				uint64_t v = rnd();

				memcpy(c.region + i, &v, 8);
			}
		}
		/* And plausible-looking requests with random fields. */
		for (i = 0; i < c.reply.nslots; i++) {
			struct pc_req_slot *rs = slot_of(&c, (uint32_t)i);

			rs->op = (uint32_t)(rnd() % (PC_OP__COUNT + 2));
			rs->nkeys = (uint32_t)(rnd() % (PC_REQ_MAX_KEYS + 4));
		}
		usleep(2000);
	}
	printf("ok   scribbled %zu bytes for 50 rounds\n", c.reply.region_size);
}

static void
mode_hold_pins(const char *path)
{
	struct conn c;
	struct pc_req_slot *rs;

	conn_open(&c, path, "holder");
	rs = slot_of(&c, 0);
	check("SET_ALLOC", run_req(&c, PC_OP_SET_ALLOC, 4, 65536), 0);
	rs->op = PC_OP_SET_COMMIT;
	for (int i = 0; i < 4; i++) {
		rs->keys[i].result = 0;
	}
	c.seq++;
	submit(&c, 0, c.seq);
	wait_done(&c, 0, c.seq);
	check("GET pins", run_req(&c, PC_OP_GET, 4, 0), 0);
	check("GET hits", rs->count, 4);
	printf("holding\n");
	fflush(stdout);
	pause();
}

/* A writer stalled past the engine's request_timeout still owns its pages. */
static void
mode_slow_writer(const char *path, unsigned int stall_ms)
{
	struct conn c;
	struct conn other;
	struct pc_req_slot *rs;
	struct pc_req_slot *ors;
	uint64_t off[2];

	conn_open(&c, path, "slow");
	conn_open(&other, path, "other");
	rs = slot_of(&c, 0);
	ors = slot_of(&other, 0);
	check("SET_ALLOC", run_req(&c, PC_OP_SET_ALLOC, 2, 65536), 0);
	check("SET_ALLOC key 0", rs->keys[0].result, 0);
	off[0] = rs->keys[0].page_off;
	off[1] = rs->keys[1].page_off;
	usleep(stall_ms * 1000u);
	/* Meanwhile another session's pages must not land on ours. */
	check("other SET_ALLOC", run_req(&other, PC_OP_SET_ALLOC, 8, 65536), 0);
	for (int i = 0; i < 8; i++) {
		if (ors->keys[i].page_off == off[0] || ors->keys[i].page_off == off[1]) {
			check("other session got a page still being written", 1, 0);
		}
	}
	memset(c.segment + off[0] + 64, 0x11, 65536);
	memset(c.segment + off[1] + 64, 0x22, 65536);
	rs->op = PC_OP_SET_COMMIT;
	rs->keys[0].result = 0;
	rs->keys[1].result = 0;
	c.seq++;
	submit(&c, 0, c.seq);
	wait_done(&c, 0, c.seq);
	check("late SET_COMMIT", rs->status, 0);
	check("late SET_COMMIT published", rs->count, 2);
	check("GET back", run_req(&c, PC_OP_GET, 2, 0), 0);
	check("GET hits", rs->count, 2);
	check("GET bytes", c.segment[rs->keys[1].page_off + 64 + 100], 0x22);
}

int
main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s SOCKET bad-hello|bad-requests|scribble SEED|hold-pins\n",
			argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(argv[2], "bad-hello") == 0) {
		mode_bad_hello(argv[1]);
	} else if (strcmp(argv[2], "bad-requests") == 0) {
		mode_bad_requests(argv[1]);
	} else if (strcmp(argv[2], "scribble") == 0) {
		mode_scribble(argv[1], argc > 3 ? strtoull(argv[3], NULL, 0) : 1);
	} else if (strcmp(argv[2], "slow-writer") == 0) {
		mode_slow_writer(argv[1],
				 argc > 3 ? (unsigned int)strtoul(argv[3], NULL, 0) : 3000);
	} else if (strcmp(argv[2], "hold-pins") == 0) {
		mode_hold_pins(argv[1]);
	} else {
		fprintf(stderr, "unknown mode %s\n", argv[2]);
		return 2;
	}
	return g_failures == 0 ? 0 : 1;
}
