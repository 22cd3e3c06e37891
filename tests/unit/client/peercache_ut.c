/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * client/peercache.c against a fake engine: a pthread in this binary that
 * serves the engine side of common/pc_session_proto.h over a real
 * SOCK_SEQPACKET socket in a temp dir, with a memfd segment, memfd session
 * regions whose submission ring is made by rte_ring_init() (no EAL in this
 * binary: the client must not need it, and ring set-up does not either),
 * completions written into the slots (done_seq) with the cq_futex wake-up,
 * a key -> page map, and page headers written the way mempool/page.h
 * publishes them. Its modes make it refuse, lie in its hello reply, stay
 * silent, answer late, hang up mid-call or hand out a stale generation, so
 * every failure the client must survive is a few lines.
 */
#include <dirent.h>
#include <sys/wait.h>

#include "../../../client/peercache.c"
#include "ut.h"
#include "helpers.h"

#define FE_STRIDE   (256u << 10) /* bytes per page, header included */
#define FE_NPAGES   1024u
#define FE_MAP_MAX  2048u
#define FE_SESSIONS 6
#define FE_RING     64u /* rte_ring_init count: capacity 63 */
#define FE_SPIN_US  20

enum fe_mode {
	FE_NORMAL = 0,
	FE_REFUSE,  /* hello refused with a message */
	FE_MUTE,    /* hello never answered */
	FE_SILENT,  /* requests never completed */
	FE_HANGUP,  /* after hangup_after requests, one closes the session's socket */
	FE_CLOSING, /* the first request sets hdr->closing, never completes */
	FE_DELAY,   /* completions posted delay_ms late */
	FE_BAD_GEN, /* GET answers a generation the page does not have */
};

enum fe_hostile {
	H_NONE = 0,
	H_BAD_MAGIC,
	H_BAD_VERSION,
	H_STATUS_POSITIVE,
	H_SQ_OFF_OUT,
	H_SLOTS_OVERFLOW,
	H_NSLOTS_BIG,
	H_NSLOTS_ZERO,
	H_SLOT_SIZE_SMALL,
	H_MISALIGNED,
	H_SEG_TOO_BIG,
	H_REGION_TOO_BIG,
	H_RING_MASK,
	H_RING_HUGE,
	H_OVERLAP,
	H_HDR_MAGIC,
	H_SP_SQ,
	H_NO_FDS,
	H_ONE_FD,
	H_SHORT_REPLY,
	H_COUNT
};

struct fe_entry {
	bool used;
	char key[PC_KEY_MAX];
	uint16_t klen;
	uint32_t page;
	uint32_t len;
};

struct fe_held {
	uint32_t slot;
	uint32_t page;
	uint32_t entry; /* SET_ALLOC: request key index; GET: map entry */
};

struct fe_sess {
	int fd; /* -1: unused */
	bool mute;
	uint8_t *region;
	size_t region_size;
	struct pc_session_hdr *hdr;
	struct rte_ring *sq;
	uint32_t nslots;
	uint32_t slots_off;
	/* per slot: pages allocated by SET_ALLOC, pinned by GET */
	uint32_t nalloc[PC_SESSION_SLOTS_MAX];
	struct fe_held alloc[PC_SESSION_SLOTS_MAX][PC_REQ_MAX_KEYS];
	uint32_t npin[PC_SESSION_SLOTS_MAX];
	uint32_t pin[PC_SESSION_SLOTS_MAX][PC_REQ_MAX_KEYS];
	/* FE_DELAY */
	struct pc_ring_elem late[FE_RING];
	uint64_t due[FE_RING];
	unsigned int nlate;
};

struct fake_engine {
	char dir[64];
	char path[108];
	int lfd;
	pthread_t thr;
	int stop;
	int mode;    /* atomic */
	int hostile; /* atomic */
	uint32_t nslots;
	unsigned int delay_ms;
	unsigned int hangup_after; /* FE_HANGUP: requests served first */
	int segfd;
	uint8_t *seg;
	size_t seg_size;
	uint32_t next_session;

	pthread_mutex_t mu; /* everything below, and the map */
	struct fe_entry map[FE_MAP_MAX];
	bool page_used[FE_NPAGES];
	uint32_t pages_used;
	uint64_t ops[PC_OP__COUNT];
	uint64_t max_nkeys;
	uint64_t alloc_depths[64];
	uint64_t nalloc_reqs;
	uint64_t pinned_now;
	uint64_t allocated_now;
	uint64_t hangups;
	uint64_t sets;
	uint64_t aborted;
	struct fe_sess sess[FE_SESSIONS];
};

/* ---- the fake engine ---- */

static struct pc_req_slot *
fe_slot(struct fe_sess *ss, uint32_t s)
{
	return (struct pc_req_slot *)(ss->region + ss->slots_off +
				      (size_t)s * sizeof(struct pc_req_slot));
}

static struct pc_page_hdr *
fe_page(struct fake_engine *fe, uint32_t page)
{
	return (struct pc_page_hdr *)(fe->seg + (size_t)page * FE_STRIDE);
}

static int
fe_lookup(struct fake_engine *fe, const char *key, uint16_t klen)
{
	for (uint32_t e = 0; e < FE_MAP_MAX; e++) {
		if (fe->map[e].used && fe->map[e].klen == klen &&
		    memcmp(fe->map[e].key, key, klen) == 0) {
			return (int)e;
		}
	}
	return -1;
}

static int
fe_page_alloc(struct fake_engine *fe)
{
	for (uint32_t p = 0; p < FE_NPAGES; p++) {
		if (!fe->page_used[p]) {
			fe->page_used[p] = true;
			fe->pages_used++;
			return (int)p;
		}
	}
	return -1;
}

static void
fe_page_free(struct fake_engine *fe, uint32_t page)
{
	struct pc_page_hdr *h = fe_page(fe, page);

	/* retire: magic first, then the generation */
	__atomic_store_n(&h->magic, 0, __ATOMIC_RELEASE);
	__atomic_fetch_add(&h->generation, 1, __ATOMIC_RELEASE);
	fe->page_used[page] = false;
	fe->pages_used--;
}

static void
fe_unpublish(struct fake_engine *fe, uint32_t e)
{
	fe_page_free(fe, fe->map[e].page);
	fe->map[e].used = false;
}

/* Release what slot s holds (allocations dropped, pins released). Under mu. */
static void
fe_slot_release(struct fake_engine *fe, struct fe_sess *ss, uint32_t s)
{
	for (uint32_t a = 0; a < ss->nalloc[s]; a++) {
		fe_page_free(fe, ss->alloc[s][a].page);
		fe->aborted++;
	}
	fe->allocated_now -= ss->nalloc[s];
	ss->nalloc[s] = 0;
	fe->pinned_now -= ss->npin[s];
	ss->npin[s] = 0;
}

/* Key j of the request, bounds-checked like an engine must; NULL if bad. */
static const char *
fe_key(struct pc_req_slot *rs, uint32_t j, uint16_t *klen)
{
	uint32_t off = rs->keys[j].key_off;

	*klen = rs->keys[j].key_len;
	if (*klen == 0 || *klen > PC_KEY_MAX || off > PC_REQ_ARENA_SIZE ||
	    PC_REQ_ARENA_SIZE - off < *klen) {
		return NULL;
	}
	return (const char *)&rs->arena[off];
}

static void
fe_post(struct fe_sess *ss, struct pc_ring_elem e)
{
	__atomic_store_n(&fe_slot(ss, e.slot)->done_seq, e.seq, __ATOMIC_RELEASE);
	__atomic_fetch_add(&ss->hdr->cq_futex, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&ss->hdr->cq_waiters, __ATOMIC_SEQ_CST) != 0) {
		syscall(SYS_futex, &ss->hdr->cq_futex, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
	}
}

static void
fe_do_request(struct fake_engine *fe, struct fe_sess *ss, uint32_t s)
{
	struct pc_req_slot *rs = fe_slot(ss, s);
	uint32_t op = rs->op;
	uint32_t n = rs->nkeys;
	uint32_t count = 0;

	rs->status = 0;
	if (op >= PC_OP__COUNT || n > PC_REQ_MAX_KEYS) {
		rs->status = -EINVAL;
		return;
	}
	fe->ops[op]++;
	fe->max_nkeys = PC_MAX(fe->max_nkeys, (uint64_t)n);
	if (op != PC_OP_SET_COMMIT && op != PC_OP_GET_DONE) {
		fe_slot_release(fe, ss, s);
	}
	switch (op) {
	case PC_OP_SET_ALLOC:
		if (fe->nalloc_reqs < PC_ARRAY_SIZE(fe->alloc_depths)) {
			fe->alloc_depths[fe->nalloc_reqs] = rs->prefix_depth;
		}
		fe->nalloc_reqs++;
		for (uint32_t j = 0; j < n; j++) {
			uint16_t klen;
			const char *key = fe_key(rs, j, &klen);
			uint32_t len = rs->keys[j].len;
			int page;

			if (key == NULL) {
				rs->keys[j].result = -EINVAL;
			} else if (len == 0 || len > FE_STRIDE - PC_PAGE_HDR_SIZE) {
				rs->keys[j].result = -EMSGSIZE;
			} else if (fe_lookup(fe, key, klen) >= 0) {
				rs->keys[j].result = PC_R_DEDUP;
			} else if ((page = fe_page_alloc(fe)) < 0) {
				rs->keys[j].result = -ENOSPC;
			} else {
				ss->alloc[s][ss->nalloc[s]++] =
					(struct fe_held){s, (uint32_t)page, j};
				fe->allocated_now++;
				rs->keys[j].result = 0;
				rs->keys[j].page_off = (uint64_t)page * FE_STRIDE;
				count++;
			}
		}
		break;
	case PC_OP_SET_COMMIT:
		for (uint32_t a = 0; a < ss->nalloc[s]; a++) {
			struct fe_held *h = &ss->alloc[s][a];
			struct pc_req_key *rk = &rs->keys[h->entry];
			struct pc_page_hdr *ph = fe_page(fe, h->page);
			uint16_t klen;
			const char *key = fe_key(rs, h->entry, &klen);
			uint32_t e;

			fe->allocated_now--;
			if (rk->result != 0 || key == NULL) {
				fe_page_free(fe, h->page);
				fe->aborted++;
				continue;
			}
			if (fe_lookup(fe, key, klen) >= 0) {
				fe_page_free(fe, h->page);
				rk->result = PC_R_DEDUP;
				continue;
			}
			for (e = 0; e < FE_MAP_MAX && fe->map[e].used; e++) {
			}
			if (e == FE_MAP_MAX) {
				fe_page_free(fe, h->page);
				rk->result = -ENOSPC;
				continue;
			}
			fe->map[e] = (struct fe_entry){.used = true, .klen = klen, .page = h->page};
			memcpy(fe->map[e].key, key, klen);
			/* ALLOC's length, from engine memory in a real engine; the slot's here */
			fe->map[e].len = rk->len;
			ph->payload_len = rk->len;
			ph->version = PC_PAGE_FORMAT_VERSION;
			__atomic_store_n(&ph->magic, PC_PAGE_MAGIC, __ATOMIC_RELEASE);
			fe->sets++;
			rk->result = 0;
			count++;
		}
		ss->nalloc[s] = 0;
		break;
	case PC_OP_GET:
		for (uint32_t j = 0; j < n; j++) {
			uint16_t klen;
			const char *key = fe_key(rs, j, &klen);
			int e = key != NULL ? fe_lookup(fe, key, klen) : -1;
			struct pc_page_hdr *ph;

			if (key == NULL) {
				rs->keys[j].result = -EINVAL;
				continue;
			}
			if (e < 0) {
				rs->keys[j].result = -ENOENT;
				continue;
			}
			ph = fe_page(fe, fe->map[e].page);
			ss->pin[s][ss->npin[s]++] = fe->map[e].page;
			fe->pinned_now++;
			rs->keys[j].result = 0;
			rs->keys[j].page_off = (uint64_t)fe->map[e].page * FE_STRIDE;
			rs->keys[j].len = fe->map[e].len;
			rs->keys[j].generation =
				ph->generation +
				(__atomic_load_n(&fe->mode, __ATOMIC_RELAXED) == FE_BAD_GEN ? 1
											    : 0);
			count++;
		}
		break;
	case PC_OP_GET_DONE:
		fe->pinned_now -= ss->npin[s];
		ss->npin[s] = 0;
		break;
	case PC_OP_EXISTS: {
		bool lead = true;

		memset(rs->present, 0, sizeof(rs->present));
		for (uint32_t j = 0; j < n; j++) {
			uint16_t klen;
			const char *key = fe_key(rs, j, &klen);
			bool hit = key != NULL && fe_lookup(fe, key, klen) >= 0;

			if (hit) {
				rs->present[j / 64] |= 1ull << (j % 64);
			}
			lead &= hit;
			count += lead;
		}
		break;
	}
	case PC_OP_DELETE:
		for (uint32_t j = 0; j < n; j++) {
			uint16_t klen;
			const char *key = fe_key(rs, j, &klen);
			int e = key != NULL ? fe_lookup(fe, key, klen) : -1;

			if (e < 0) {
				rs->keys[j].result = -ENOENT;
				continue;
			}
			fe_unpublish(fe, (uint32_t)e);
			rs->keys[j].result = 0;
			count++;
		}
		break;
	case PC_OP_CLEAR:
		for (uint32_t e = 0; e < FE_MAP_MAX; e++) {
			if (fe->map[e].used) {
				fe_unpublish(fe, e);
				count++;
			}
		}
		break;
	case PC_OP_STATS: {
		struct pc_engine_stats st = {
			.segment_size = fe->seg_size,
			.pages = 0,
			.sets = fe->sets,
			.set_aborted = fe->aborted,
			.pinned = fe->pinned_now,
		};

		for (uint32_t e = 0; e < FE_MAP_MAX; e++) {
			if (fe->map[e].used) {
				st.pages++;
				st.bytes_used += fe->map[e].len;
			}
		}
		memcpy(rs->arena, &st, sizeof(st));
		break;
	}
	default:
		break;
	}
	rs->count = count;
}

static void
fe_sess_close(struct fake_engine *fe, struct fe_sess *ss)
{
	if (ss->fd < 0) {
		return;
	}
	if (ss->region != NULL) {
		pthread_mutex_lock(&fe->mu);
		for (uint32_t s = 0; s < ss->nslots; s++) {
			fe_slot_release(fe, ss, s);
		}
		pthread_mutex_unlock(&fe->mu);
		munmap(ss->region, ss->region_size);
	}
	close(ss->fd);
	memset(ss, 0, sizeof(*ss));
	ss->fd = -1;
}

/* Serve one session's submissions; returns whether it did anything. */
static bool
fe_sess_poll(struct fake_engine *fe, struct fe_sess *ss)
{
	struct pollfd pfd = {.fd = ss->fd, .events = POLLIN | POLLRDHUP};
	struct pc_ring_elem e[16];
	uint64_t now = now_ns();
	unsigned int n;
	bool did = false;

	if (poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLHUP | POLLRDHUP | POLLERR))) {
		fe_sess_close(fe, ss);
		pthread_mutex_lock(&fe->mu);
		fe->hangups++;
		pthread_mutex_unlock(&fe->mu);
		return true;
	}
	if (ss->mute) {
		return false;
	}
	for (unsigned int i = 0; i < ss->nlate; i++) {
		if (ss->due[i] <= now) {
			fe_post(ss, ss->late[i]);
			ss->late[i] = ss->late[ss->nlate - 1];
			ss->due[i] = ss->due[ss->nlate - 1];
			ss->nlate--;
			i--;
			did = true;
		}
	}
	n = rte_ring_dequeue_burst_elem(ss->sq, e, sizeof(e[0]), PC_ARRAY_SIZE(e), NULL);
	for (unsigned int i = 0; i < n; i++) {
		int mode = __atomic_load_n(&fe->mode, __ATOMIC_ACQUIRE);

		did = true;
		if (e[i].slot >= ss->nslots) {
			continue;
		}
		if (mode == FE_HANGUP && fe->hangup_after > 0) {
			fe->hangup_after--;
		} else if (mode == FE_HANGUP) {
			fe_sess_close(fe, ss);
			return true;
		}
		if (mode == FE_CLOSING) {
			__atomic_store_n(&ss->hdr->closing, 1, __ATOMIC_RELEASE);
			continue;
		}
		if (mode == FE_SILENT) {
			continue;
		}
		pthread_mutex_lock(&fe->mu);
		fe_do_request(fe, ss, e[i].slot);
		pthread_mutex_unlock(&fe->mu);
		if (mode == FE_DELAY && ss->nlate < FE_RING) {
			ss->late[ss->nlate] = e[i];
			ss->due[ss->nlate++] = now + (uint64_t)fe->delay_ms * PC_NS_PER_MS;
			continue;
		}
		fe_post(ss, e[i]);
	}
	return did;
}

static void
fe_hostile_reply(struct fake_engine *fe, struct fe_sess *ss, struct pc_hello_reply *r)
{
	struct rte_ring *sq = ss->sq;

	switch (__atomic_load_n(&fe->hostile, __ATOMIC_RELAXED)) {
	case H_BAD_MAGIC:
		r->magic ^= 1;
		break;
	case H_BAD_VERSION:
		r->version = 99;
		break;
	case H_STATUS_POSITIVE:
		r->status = 5;
		break;
	case H_SQ_OFF_OUT:
		r->sq_off = (uint32_t)r->region_size;
		break;
	case H_SLOTS_OVERFLOW:
		r->slots_off = 0xffffffc0u;
		break;
	case H_NSLOTS_BIG:
		r->nslots = PC_SESSION_SLOTS_MAX + 1;
		break;
	case H_NSLOTS_ZERO:
		r->nslots = 0;
		break;
	case H_SLOT_SIZE_SMALL:
		r->slot_size = 64;
		break;
	case H_MISALIGNED:
		r->sq_off += 8;
		break;
	case H_SEG_TOO_BIG:
		r->segment_size *= 2;
		break;
	case H_REGION_TOO_BIG:
		r->region_size += 1u << 20;
		break;
	case H_RING_MASK:
		sq->mask = 0xffff;
		break;
	case H_RING_HUGE:
		sq->size = 1u << 15;
		sq->mask = sq->size - 1;
		sq->capacity = sq->mask;
		r->ring_size = sq->size;
		break;
	case H_OVERLAP:
		r->slots_off = r->sq_off;
		break;
	case H_HDR_MAGIC:
		ss->hdr->magic = 0;
		break;
	default:
		break;
	}
}

static void
fe_hello(struct fake_engine *fe, int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	struct pc_hello hello;
	struct pc_hello_reply reply = {
		.magic = PC_HELLO_REPLY_MAGIC,
		.version = PC_PROTO_VERSION,
		.engine_incarnation = 0x1234,
	};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(2 * sizeof(int))];
	} cbuf;
	struct iovec iov = {.iov_base = &reply, .iov_len = sizeof(reply)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	struct fe_sess *ss = NULL;
	int fds[2];
	int nfds = 2;
	int regfd = -1;
	size_t ring_mem, off;

	if (poll(&pfd, 1, 1000) != 1 || recv(fd, &hello, sizeof(hello), 0) != sizeof(hello) ||
	    hello.magic != PC_HELLO_MAGIC || hello.ns_len > PC_NS_MAX) {
		close(fd);
		return;
	}
	for (int i = 0; i < FE_SESSIONS && ss == NULL; i++) {
		if (fe->sess[i].fd < 0) {
			ss = &fe->sess[i];
		}
	}
	if (ss == NULL) {
		close(fd);
		return;
	}
	ss->fd = fd;
	if (__atomic_load_n(&fe->mode, __ATOMIC_RELAXED) == FE_MUTE) {
		ss->mute = true;
		return;
	}
	if (__atomic_load_n(&fe->mode, __ATOMIC_RELAXED) == FE_REFUSE ||
	    hello.version != PC_PROTO_VERSION) {
		reply.status = -EPERM;
		snprintf(reply.msg, sizeof(reply.msg), "namespace '%.*s' is not served here",
			 (int)hello.ns_len, hello.ns);
		send(fd, &reply, sizeof(reply), MSG_NOSIGNAL);
		close(fd);
		ss->fd = -1;
		return;
	}
	ss->nslots = fe->nslots != 0 ? fe->nslots : PC_SESSION_SLOTS;
	ring_mem = rte_ring_get_memsize_elem(PC_RING_ELEM_SIZE, FE_RING);
	CU_ASSERT_FATAL(ring_mem > 0 && ring_mem % 64 == 0);
	reply.sq_off = 256;
	reply.slots_off = reply.sq_off + (uint32_t)ring_mem;
	reply.nslots = ss->nslots;
	reply.slot_size = sizeof(struct pc_req_slot);
	reply.ring_size = FE_RING;
	off = reply.slots_off + (size_t)ss->nslots * sizeof(struct pc_req_slot);
	ss->region_size = (off + 4095) & ~(size_t)4095;
	ss->slots_off = reply.slots_off;
	reply.region_size = ss->region_size;
	reply.segment_size = fe->seg_size;
	reply.session_id = ++fe->next_session;
	regfd = memfd_create("fe_region", MFD_CLOEXEC);
	CU_ASSERT_FATAL(regfd >= 0);
	CU_ASSERT_FATAL(ftruncate(regfd, (off_t)ss->region_size) == 0);
	ss->region = mmap(NULL, ss->region_size, PROT_READ | PROT_WRITE, MAP_SHARED, regfd, 0);
	CU_ASSERT_FATAL(ss->region != MAP_FAILED);
	ss->hdr = (struct pc_session_hdr *)ss->region;
	ss->hdr->magic = PC_SESSION_MAGIC;
	ss->hdr->version = PC_PROTO_VERSION;
	ss->hdr->session_id = reply.session_id;
	ss->hdr->nslots = ss->nslots;
	ss->hdr->engine_incarnation = reply.engine_incarnation;
	ss->sq = (struct rte_ring *)(ss->region + reply.sq_off);
	CU_ASSERT_FATAL(rte_ring_init(ss->sq, "fe_sq", FE_RING,
				      __atomic_load_n(&fe->hostile, __ATOMIC_RELAXED) == H_SP_SQ
					      ? RING_F_SP_ENQ | RING_F_SC_DEQ
					      : RING_F_MP_RTS_ENQ | RING_F_SC_DEQ) == 0);
	fe_hostile_reply(fe, ss, &reply);
	fds[0] = fe->segfd;
	fds[1] = regfd;
	if (__atomic_load_n(&fe->hostile, __ATOMIC_RELAXED) == H_ONE_FD) {
		nfds = 1;
	}
	if (__atomic_load_n(&fe->hostile, __ATOMIC_RELAXED) != H_NO_FDS) {
		msg.msg_control = cbuf.buf;
		msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	}
	if (__atomic_load_n(&fe->hostile, __ATOMIC_RELAXED) == H_SHORT_REPLY) {
		iov.iov_len -= 8;
	}
	sendmsg(fd, &msg, MSG_NOSIGNAL);
	close(regfd);
}

static void *
fe_main(void *arg)
{
	struct fake_engine *fe = arg;

	while (!__atomic_load_n(&fe->stop, __ATOMIC_ACQUIRE)) {
		int fd = accept4(fe->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		bool did = fd >= 0;

		if (fd >= 0) {
			fe_hello(fe, fd);
		}
		for (int i = 0; i < FE_SESSIONS; i++) {
			if (fe->sess[i].fd >= 0) {
				did |= fe_sess_poll(fe, &fe->sess[i]);
			}
		}
		if (!did) {
			usleep(FE_SPIN_US);
		}
	}
	return NULL;
}

/* Start a fake engine at path (NULL: a new temp dir). */
static struct fake_engine *
fe_start_at(const char *path, int mode, uint32_t nslots)
{
	struct fake_engine *fe = calloc(1, sizeof(*fe));
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	CU_ASSERT_PTR_NOT_NULL_FATAL(fe);
	if (path == NULL) {
		snprintf(fe->dir, sizeof(fe->dir), "/tmp/pc_client_ut_XXXXXX");
		CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(fe->dir));
		snprintf(fe->path, sizeof(fe->path), "%s/engine.sock", fe->dir);
	} else {
		snprintf(fe->path, sizeof(fe->path), "%s", path);
	}
	fe->mode = mode;
	fe->nslots = nslots;
	pthread_mutex_init(&fe->mu, NULL);
	for (int i = 0; i < FE_SESSIONS; i++) {
		fe->sess[i].fd = -1;
	}
	fe->seg_size = (size_t)FE_NPAGES * FE_STRIDE;
	fe->segfd = memfd_create("fe_segment", MFD_CLOEXEC);
	CU_ASSERT_FATAL(fe->segfd >= 0);
	CU_ASSERT_FATAL(ftruncate(fe->segfd, (off_t)fe->seg_size) == 0);
	fe->seg = mmap(NULL, fe->seg_size, PROT_READ | PROT_WRITE, MAP_SHARED, fe->segfd, 0);
	CU_ASSERT_FATAL(fe->seg != MAP_FAILED);
	for (uint32_t p = 0; p < FE_NPAGES; p++) {
		fe_page(fe, p)->generation = 100 + p;
	}
	fe->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	CU_ASSERT_FATAL(fe->lfd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fe->path);
	unlink(fe->path);
	CU_ASSERT_FATAL(bind(fe->lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CU_ASSERT_FATAL(listen(fe->lfd, 16) == 0);
	CU_ASSERT_FATAL(pthread_create(&fe->thr, NULL, fe_main, fe) == 0);
	return fe;
}

static struct fake_engine *
fe_start(int mode, uint32_t nslots)
{
	return fe_start_at(NULL, mode, nslots);
}

static void
fe_stop(struct fake_engine *fe, bool remove_dir)
{
	if (fe == NULL) {
		return;
	}
	__atomic_store_n(&fe->stop, 1, __ATOMIC_RELEASE);
	pthread_join(fe->thr, NULL);
	for (int i = 0; i < FE_SESSIONS; i++) {
		fe_sess_close(fe, &fe->sess[i]);
	}
	close(fe->lfd);
	unlink(fe->path);
	if (remove_dir && fe->dir[0] != '\0') {
		rmdir(fe->dir);
	}
	munmap(fe->seg, fe->seg_size);
	close(fe->segfd);
	pthread_mutex_destroy(&fe->mu);
	free(fe);
}

static void
fe_set_mode(struct fake_engine *fe, int mode)
{
	__atomic_store_n(&fe->mode, mode, __ATOMIC_RELEASE);
}

static uint64_t
fe_read(struct fake_engine *fe, const uint64_t *field)
{
	uint64_t v;

	pthread_mutex_lock(&fe->mu);
	v = *field;
	pthread_mutex_unlock(&fe->mu);
	return v;
}

/* Wait (2 s at most) until the engine saw `want` hang-ups. */
static bool
fe_wait_hangups(struct fake_engine *fe, uint64_t want)
{
	for (int i = 0; i < 2000; i++) {
		if (fe_read(fe, &fe->hangups) >= want) {
			return true;
		}
		usleep(1000);
	}
	return false;
}

/* ---- test data ---- */

/* Page payloads: an xorshift stream per (seed, byte offset). */
static void
fill(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;

	for (size_t i = 0; i < len; i++) {
		if (i % 8 == 0) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
		}
		p[i] = (uint8_t)(x >> (8 * (i % 8)));
	}
}

/* n pages of nseg segments each, segment sizes varying; buffers owned here. */
struct pages {
	unsigned int n;
	unsigned int nseg;
	char **keys;
	struct pc_iov *iov;
	unsigned int *niov;
	int *results;
	uint8_t *mem;
	size_t total;
};

static void
pages_init(struct pages *pg, unsigned int n, unsigned int nseg, size_t seg_len, const char *tag)
{
	size_t at = 0;

	memset(pg, 0, sizeof(*pg));
	pg->n = n;
	pg->nseg = nseg;
	pg->keys = calloc(n, sizeof(char *));
	pg->iov = calloc((size_t)n * nseg, sizeof(struct pc_iov));
	pg->niov = calloc(n, sizeof(unsigned int));
	pg->results = calloc(n, sizeof(int));
	for (unsigned int i = 0; i < n; i++) {
		for (unsigned int s = 0; s < nseg; s++) {
			pg->total += seg_len + (i + s) % 7 * 8;
		}
	}
	pg->mem = malloc(pg->total);
	CU_ASSERT_FATAL(pg->keys && pg->iov && pg->niov && pg->results && pg->mem);
	for (unsigned int i = 0; i < n; i++) {
		char key[160];

		snprintf(key, sizeof(key), "%s-%u", tag, i);
		pg->keys[i] = strdup(key);
		pg->niov[i] = nseg;
		for (unsigned int s = 0; s < nseg; s++) {
			struct pc_iov *v = &pg->iov[(size_t)i * nseg + s];

			v->base = pg->mem + at;
			v->len = seg_len + (i + s) % 7 * 8;
			at += v->len;
		}
	}
}

static void
pages_fill(struct pages *pg, uint64_t seed)
{
	fill(pg->mem, pg->total, seed);
}

static void
pages_free(struct pages *pg)
{
	for (unsigned int i = 0; i < pg->n; i++) {
		free(pg->keys[i]);
	}
	free(pg->keys);
	free(pg->iov);
	free(pg->niov);
	free(pg->results);
	free(pg->mem);
}

static int
pages_set(struct pc_client *c, struct pages *pg, uint32_t depth)
{
	return pc_client_batch_set(c, pg->n, (const char *const *)pg->keys, pg->iov, pg->niov,
				   depth, pg->results);
}

static int
pages_get(struct pc_client *c, struct pages *pg)
{
	return pc_client_batch_get(c, pg->n, (const char *const *)pg->keys, pg->iov, pg->niov,
				   pg->results);
}

static struct pc_client *
connect_ok(struct fake_engine *fe, const char *ns, unsigned int timeout_ms)
{
	int err = 1;
	struct pc_client *c = pc_client_connect(fe->path, ns, timeout_ms, &err);

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(err, 1); /* untouched on success */
	return c;
}

static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (d == NULL) {
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		n += de->d_name[0] != '.';
	}
	closedir(d);
	return n;
}

/* ---- tests ---- */

static void
test_connect_ping_stats(void)
{
	struct fake_engine *fe = fe_start(FE_NORMAL, 0);
	struct pc_client *c = connect_ok(fe, "model-a", 2000);
	struct pc_client_stats st;

	CU_ASSERT_EQUAL(pc_client_ping(c), 0);
	CU_ASSERT_EQUAL(fe_read(fe, &fe->ops[PC_OP_NOP]), 1);
	CU_ASSERT_EQUAL(pc_client_stats(c, &st), 0);
	CU_ASSERT_EQUAL(st.segment_size, fe->seg_size);
	CU_ASSERT_EQUAL(st.reconnects, 0);
	CU_ASSERT_EQUAL(st.timeouts, 0);
	CU_ASSERT_EQUAL(c->conn->nslots, PC_SESSION_SLOTS);
	CU_ASSERT_STRING_EQUAL(pc_client_version(), PC_VERSION);
	pc_client_close(c);
	CU_ASSERT_TRUE(fe_wait_hangups(fe, 1));
	fe_stop(fe, true);
}

static void
test_connect_errors(void)
{
	char long_path[200], long_ns[PC_CLIENT_NS_MAX + 2], dead[sizeof(long_path)];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct fake_engine *fe;
	struct pc_client *c;
	int err = 0;
	int fd;

	/* no engine: no socket file, then a socket file nobody listens on */
	c = pc_client_connect("/tmp/pc_client_ut_does_not_exist/engine.sock", NULL, 500, &err);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_EQUAL(err, -ENOENT);
	fe = fe_start(FE_NORMAL, 0);
	snprintf(dead, sizeof(dead), "%s.dead", fe->path);
	CU_ASSERT_FATAL(strlen(dead) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, dead, strlen(dead) + 1);
	fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	c = pc_client_connect(sa.sun_path, NULL, 500, &err);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_EQUAL(err, -ECONNREFUSED);
	close(fd);
	unlink(sa.sun_path);

	/* names too long */
	memset(long_path, 'p', sizeof(long_path) - 1);
	long_path[sizeof(long_path) - 1] = '\0';
	c = pc_client_connect(long_path, NULL, 500, &err);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_EQUAL(err, -ENAMETOOLONG);
	memset(long_ns, 'n', sizeof(long_ns) - 1);
	long_ns[sizeof(long_ns) - 1] = '\0';
	c = pc_client_connect(fe->path, long_ns, 500, &err);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_EQUAL(err, -ENAMETOOLONG);
	long_ns[PC_CLIENT_NS_MAX] = '\0'; /* exactly the maximum is fine */
	c = pc_client_connect(fe->path, long_ns, 500, &err);
	CU_ASSERT_PTR_NOT_NULL(c);
	pc_client_close(c);

	/* $PEERCACHE_SOCKET when no path is given; NULL err pointer is fine */
	setenv("PEERCACHE_SOCKET", fe->path, 1);
	c = pc_client_connect(NULL, NULL, 500, NULL);
	unsetenv("PEERCACHE_SOCKET");
	CU_ASSERT_PTR_NOT_NULL(c);
	CU_ASSERT_EQUAL(pc_client_ping(c), 0);
	pc_client_close(c);

	/* refused hello: a clear error, nothing mapped */
	fe_set_mode(fe, FE_REFUSE);
	c = pc_client_connect(fe->path, "other-model", 500, &err);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_EQUAL(err, -EPROTO);

	/* an engine that never answers the hello */
	fe_set_mode(fe, FE_MUTE);
	uint64_t t0 = now_ns();

	c = pc_client_connect(fe->path, NULL, 300, &err);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_EQUAL(err, -ETIMEDOUT);
	CU_ASSERT(now_ns() - t0 < 300 * PC_NS_PER_MS + PC_NS_PER_S);
	fe_stop(fe, true);
}

static void
test_hostile_hello(void)
{
	struct fake_engine *fe = fe_start(FE_NORMAL, 0);
	int before = count_fds();

	for (int h = H_BAD_MAGIC; h < H_COUNT; h++) {
		struct pc_client *c;
		int err = 0;

		__atomic_store_n(&fe->hostile, h, __ATOMIC_RELAXED);
		c = pc_client_connect(fe->path, NULL, 500, &err);
		CU_ASSERT_PTR_NULL(c);
		CU_ASSERT_EQUAL(err, -EPROTO);
		if (c != NULL || err != -EPROTO) {
			fprintf(stderr, "hostile reply %d: err %d\n", h, err);
			pc_client_close(c);
		}
	}
	/* the engine closes its side once it sees our hang-up; then compare */
	__atomic_store_n(&fe->hostile, H_NONE, __ATOMIC_RELAXED);
	for (int i = 0; i < 200 && count_fds() != before; i++) {
		usleep(5000);
	}
	CU_ASSERT_EQUAL(count_fds(), before); /* no descriptor or mapping leaked */
	fe_stop(fe, true);
}

static void
test_set_get_scatter(void)
{
	struct fake_engine *fe = fe_start(FE_NORMAL, 0);
	struct pc_client *c = connect_ok(fe, "ns", 2000);
	const unsigned int L = 4;
	struct pages a, b;
	struct pc_client_stats st;

	/* 2 segments per page (MHA page_first) and 2*L (layer_first) */
	pages_init(&a, 20, 2, 4096, "two");
	pages_init(&b, 12, 2 * L, 1000, "layer");
	pages_fill(&a, 1);
	pages_fill(&b, 2);
	CU_ASSERT_EQUAL(pages_set(c, &a, 0), 20);
	CU_ASSERT_EQUAL(pages_set(c, &b, 0), 12);
	for (unsigned int i = 0; i < 20; i++) {
		CU_ASSERT_EQUAL(a.results[i], 0);
	}
	memset(a.mem, 0, a.total);
	memset(b.mem, 0, b.total);
	CU_ASSERT_EQUAL(pages_get(c, &a), 20);
	CU_ASSERT_EQUAL(pages_get(c, &b), 12);
	{
		uint8_t *want = malloc(PC_MAX(a.total, b.total));

		fill(want, a.total, 1);
		CU_ASSERT_EQUAL(memcmp(want, a.mem, a.total), 0);
		fill(want, b.total, 2);
		CU_ASSERT_EQUAL(memcmp(want, b.mem, b.total), 0);
		free(want);
	}
	for (unsigned int i = 0; i < 12; i++) {
		CU_ASSERT_EQUAL(b.results[i], 0);
	}
	/* GET_DONE was sent without waiting; the next call drains it and pins go */
	CU_ASSERT_EQUAL(pc_client_ping(c), 0);
	CU_ASSERT_EQUAL(pc_client_stats(c, &st), 0);
	CU_ASSERT_EQUAL(st.pages, 32);
	CU_ASSERT_EQUAL(st.pinned, 0);
	CU_ASSERT_EQUAL(fe_read(fe, &fe->ops[PC_OP_GET_DONE]), 2);
	CU_ASSERT_EQUAL(fe_read(fe, &fe->allocated_now), 0);
	/* the namespace is the session's: another namespace is not refused here
	 * (the fake engine shares one map), but the payload bytes stayed intact */
	pages_free(&a);
	pages_free(&b);
	pc_client_close(c);
	fe_stop(fe, true);
}

static void
test_dedup_and_errors(void)
{
	struct fake_engine *fe = fe_start(FE_NORMAL, 0);
	struct pc_client *c = connect_ok(fe, NULL, 2000);
	struct pages a;
	const char *keys[6];
	struct pc_iov iov[6];
	unsigned int niov[6] = {1, 1, 1, 1, 1, 1};
	int res[6];
	uint8_t small[64], out[64], want[64];
	uint8_t *big = calloc(1, FE_STRIDE);
	char long_key[PC_CLIENT_KEY_MAX + 2];

	fill(small, sizeof(small), 42);
	memcpy(want, small, sizeof(want));
	pages_init(&a, 8, 2, 2048, "dup");
	pages_fill(&a, 3);
	CU_ASSERT_EQUAL(pages_set(c, &a, 5), 8);
	CU_ASSERT_EQUAL(pages_set(c, &a, 5), 8); /* already there: a success */
	for (unsigned int i = 0; i < 8; i++) {
		CU_ASSERT_EQUAL(a.results[i], PC_CLIENT_DEDUP);
	}
	CU_ASSERT_EQUAL(fe_read(fe, &fe->sets), 8);

	/* bad keys and sizes fail alone; the valid keys around them are stored */
	memset(long_key, 'k', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = '\0';
	for (int i = 0; i < 6; i++) {
		iov[i] = (struct pc_iov){small, sizeof(small)};
	}
	keys[0] = "ok-0";
	keys[1] = NULL;
	keys[2] = "";
	keys[3] = long_key;
	keys[4] = "empty-payload";
	iov[4].len = 0;
	keys[5] = "ok-5";
	pthread_mutex_lock(&fe->mu);
	fe->nalloc_reqs = 0;
	pthread_mutex_unlock(&fe->mu);
	CU_ASSERT_EQUAL(pc_client_batch_set(c, 6, keys, iov, niov, 10, res), 2);
	CU_ASSERT_EQUAL(res[0], 0);
	CU_ASSERT_EQUAL(res[1], -EINVAL);
	CU_ASSERT_EQUAL(res[2], -EINVAL);
	CU_ASSERT_EQUAL(res[3], -EINVAL);
	CU_ASSERT_EQUAL(res[4], -EMSGSIZE);
	CU_ASSERT_EQUAL(res[5], 0);
	/* each key keeps its chain depth: ok-5 went alone, at depth 10 + 5 */
	CU_ASSERT_EQUAL(fe_read(fe, &fe->nalloc_reqs), 2);
	CU_ASSERT_EQUAL(fe_read(fe, &fe->alloc_depths[0]), 10);
	CU_ASSERT_EQUAL(fe_read(fe, &fe->alloc_depths[1]), 15);

	/* a payload over 64 MiB is refused before anything is read */
	iov[0] = (struct pc_iov){small, (size_t)PC_PAGE_PAYLOAD_MAX + 1};
	keys[0] = "huge";
	CU_ASSERT_EQUAL(pc_client_batch_set(c, 1, keys, iov, niov, 0, res), 0);
	CU_ASSERT_EQUAL(res[0], -EMSGSIZE);
	/* the engine's own refusal comes back per key */
	iov[0] = (struct pc_iov){big, FE_STRIDE};
	CU_ASSERT_EQUAL(pc_client_batch_set(c, 1, keys, iov, niov, 0, res), 0);
	CU_ASSERT_EQUAL(res[0], -EMSGSIZE);

	/* GET: a length that is not the page's is -EMSGSIZE; a miss is -ENOENT */
	keys[0] = "ok-0";
	keys[1] = "never-stored";
	keys[2] = "ok-5";
	iov[0] = (struct pc_iov){big, sizeof(small) - 1};
	iov[1] = (struct pc_iov){big, sizeof(small)};
	iov[2] = (struct pc_iov){out, sizeof(out)};
	memset(out, 0, sizeof(out));
	CU_ASSERT_EQUAL(pc_client_batch_get(c, 3, keys, iov, niov, res), 1);
	CU_ASSERT_EQUAL(res[0], -EMSGSIZE);
	CU_ASSERT_EQUAL(res[1], -ENOENT);
	CU_ASSERT_EQUAL(res[2], 0);
	CU_ASSERT_EQUAL(memcmp(out, want, sizeof(out)), 0);
	/* pins of the rejected hit were released too */
	CU_ASSERT_EQUAL(pc_client_ping(c), 0);
	CU_ASSERT_EQUAL(fe_read(fe, &fe->pinned_now), 0);

	/* a generation that does not match the page's header: -EBADMSG, not data */
	fe_set_mode(fe, FE_BAD_GEN);
	CU_ASSERT_EQUAL(pc_client_batch_get(c, 1, &keys[2], &iov[2], niov, res), 0);
	CU_ASSERT_EQUAL(res[0], -EBADMSG);
	fe_set_mode(fe, FE_NORMAL);

	/* whole-call argument errors */
	CU_ASSERT_EQUAL(pc_client_batch_set(NULL, 1, keys, iov, niov, 0, res), -EINVAL);
	CU_ASSERT_EQUAL(res[0], -EINVAL);
	CU_ASSERT_EQUAL(pc_client_batch_get(c, 1, keys, NULL, niov, res), -EINVAL);
	CU_ASSERT_EQUAL(pc_client_batch_set(c, 0, keys, iov, niov, 0, res), 0);
	free(big);
	pages_free(&a);
	pc_client_close(c);
	fe_stop(fe, true);
}

static void
test_split_and_exists(void)
{
	struct fake_engine *fe = fe_start(FE_NORMAL, 0);
	struct pc_client *c = connect_ok(fe, NULL, 2000);
	struct pages a;
	uint8_t present[300];
	const char *keys[300];
	int res[300];
	uint8_t *want;

	pages_init(&a, 300, 2, 512, "split");
	pages_fill(&a, 4);
	want = malloc(a.total);
	fill(want, a.total, 4);
	/* 300 keys: three requests of <= 128 keys, depths 7, 135, 263 */
	CU_ASSERT_EQUAL(pages_set(c, &a, 7), 300);
	CU_ASSERT_EQUAL(fe_read(fe, &fe->nalloc_reqs), 3);
	CU_ASSERT_EQUAL(fe_read(fe, &fe->alloc_depths[0]), 7);
	CU_ASSERT_EQUAL(fe_read(fe, &fe->alloc_depths[1]), 7 + 128);
	CU_ASSERT_EQUAL(fe_read(fe, &fe->alloc_depths[2]), 7 + 256);
	CU_ASSERT_EQUAL(fe_read(fe, &fe->max_nkeys), PC_REQ_MAX_KEYS);
	memset(a.mem, 0, a.total);
	CU_ASSERT_EQUAL(pages_get(c, &a), 300);
	CU_ASSERT_EQUAL(memcmp(want, a.mem, a.total), 0);

	/* all present */
	for (int i = 0; i < 300; i++) {
		keys[i] = a.keys[i];
	}
	CU_ASSERT_EQUAL(pc_client_batch_exists(c, 300, keys, present), 300);
	CU_ASSERT_EQUAL(pc_client_batch_exists(c, 300, keys, NULL), 300);
	/* delete key 200: the prefix is 200, the third request is never sent */
	CU_ASSERT_EQUAL(pc_client_delete(c, 1, &keys[200], res), 1);
	CU_ASSERT_EQUAL(res[0], 0);
	uint64_t ex0 = fe_read(fe, &fe->ops[PC_OP_EXISTS]);

	CU_ASSERT_EQUAL(pc_client_batch_exists(c, 300, keys, present), 200);
	CU_ASSERT_EQUAL(fe_read(fe, &fe->ops[PC_OP_EXISTS]) - ex0, 2);
	CU_ASSERT_EQUAL(present[199], 1);
	CU_ASSERT_EQUAL(present[200], 0);
	CU_ASSERT_EQUAL(present[201], 1); /* in the request that ended the prefix */
	CU_ASSERT_EQUAL(present[299], 0); /* never asked */
	/* a miss in the first request stops there */
	ex0 = fe_read(fe, &fe->ops[PC_OP_EXISTS]);
	keys[10] = "missing";
	CU_ASSERT_EQUAL(pc_client_batch_exists(c, 300, keys, present), 10);
	CU_ASSERT_EQUAL(fe_read(fe, &fe->ops[PC_OP_EXISTS]) - ex0, 1);
	/* a prefix that ends exactly at a request boundary */
	keys[10] = a.keys[10];
	keys[128] = "missing";
	CU_ASSERT_EQUAL(pc_client_batch_exists(c, 300, keys, present), 128);
	keys[128] = a.keys[128];
	/* a bad key ends the prefix like a miss */
	keys[5] = NULL;
	CU_ASSERT_EQUAL(pc_client_batch_exists(c, 300, keys, present), 5);
	CU_ASSERT_EQUAL(present[5], 0);
	keys[5] = a.keys[5];

	/* delete: per-key results, a missing key is -ENOENT */
	CU_ASSERT_EQUAL(pc_client_delete(c, 3, &keys[199], res), 2);
	CU_ASSERT_EQUAL(res[0], 0);
	CU_ASSERT_EQUAL(res[1], -ENOENT);
	CU_ASSERT_EQUAL(res[2], 0);
	CU_ASSERT_EQUAL(pc_client_delete(c, 2, &keys[0], NULL), 2);
	/* clear: everything left */
	CU_ASSERT_EQUAL(pc_client_clear(c), 300 - 5);
	CU_ASSERT_EQUAL(pc_client_batch_exists(c, 300, keys, present), 0);
	CU_ASSERT_EQUAL(pc_client_clear(c), 0);
	free(want);
	pages_free(&a);
	pc_client_close(c);
	fe_stop(fe, true);
}

/*
 * A GET of 8 MiB or more goes in parts on free slots, each copied out as it
 * completes: 40 pages of 240 KiB (9600 KiB) are two parts of 20 keys, the
 * bytes right, a miss in the second part reported for its key only; a GET
 * under 4 MiB is one request.
 */
static void
test_get_in_parts(void)
{
	struct fake_engine *fe = fe_start(FE_NORMAL, 0);
	struct pc_client *c = connect_ok(fe, NULL, 2000);
	const size_t seg = 120u << 10;
	struct pages a;
	uint8_t *want;
	uint64_t g0;

	pages_init(&a, 40, 2, seg, "parts");
	pages_fill(&a, 9);
	want = malloc(a.total);
	memcpy(want, a.mem, a.total);
	CU_ASSERT_EQUAL(pages_set(c, &a, 0), 40);
	memset(a.mem, 0, a.total);
	g0 = fe_read(fe, &fe->ops[PC_OP_GET]);
	CU_ASSERT_EQUAL(pages_get(c, &a), 40);
	CU_ASSERT_EQUAL(fe_read(fe, &fe->ops[PC_OP_GET]) - g0, 2);
	CU_ASSERT_EQUAL(memcmp(want, a.mem, a.total), 0);
	/* A key missing in the second part: only it misses. */
	CU_ASSERT_EQUAL(pc_client_delete(c, 1, (const char *const *)&a.keys[30], NULL), 1);
	memset(a.mem, 0, a.total);
	CU_ASSERT_EQUAL(pages_get(c, &a), 39);
	CU_ASSERT_EQUAL(a.results[30], -ENOENT);
	CU_ASSERT_EQUAL(a.results[29], 0);
	CU_ASSERT_EQUAL(a.results[31], 0);
	CU_ASSERT_EQUAL(memcmp(want, a.mem, a.total / 2), 0);
	/* Under 4 MiB: one request. */
	g0 = fe_read(fe, &fe->ops[PC_OP_GET]);
	CU_ASSERT_EQUAL(
		pc_client_batch_get(c, 8, (const char *const *)a.keys, a.iov, a.niov, a.results),
		8);
	CU_ASSERT_EQUAL(fe_read(fe, &fe->ops[PC_OP_GET]) - g0, 1);
	free(want);
	pages_free(&a);
	pc_client_close(c);
	fe_stop(fe, true);
}

static void
test_timeout_and_cancelled_slot(void)
{
	struct fake_engine *fe = fe_start(FE_SILENT, 2);
	struct pc_client *c = connect_ok(fe, NULL, 200);
	struct pc_conn *k = c->conn;
	struct pages a;
	uint64_t t0;
	int rc;

	pages_init(&a, 4, 2, 1024, "late");
	pages_fill(&a, 5);
	t0 = now_ns();
	rc = pages_set(c, &a, 0);
	CU_ASSERT_EQUAL(rc, -ETIMEDOUT);
	CU_ASSERT(now_ns() - t0 < 200 * PC_NS_PER_MS + PC_NS_PER_S);
	for (unsigned int i = 0; i < 4; i++) {
		CU_ASSERT_EQUAL(a.results[i], -ETIMEDOUT);
	}
	CU_ASSERT_EQUAL(__atomic_load_n(&c->timeouts, __ATOMIC_RELAXED), 1);
	/* the slot is not free: the engine may still read it */
	CU_ASSERT_EQUAL(k->ctl[0].state, PC_SLOT_CANCELLED);
	CU_ASSERT_EQUAL(k->free_mask, 0x2);
	CU_ASSERT_EQUAL(pc_client_ping(c), -ETIMEDOUT);
	CU_ASSERT_EQUAL(k->free_mask, 0);
	/* every slot lost: the next call times out waiting for one, and the
	 * session is given up (a silent engine must not wedge the client) */
	CU_ASSERT_EQUAL(pc_client_ping(c), -ETIMEDOUT);
	CU_ASSERT_TRUE(conn_is_broken(k));
	CU_ASSERT_EQUAL(__atomic_load_n(&c->timeouts, __ATOMIC_RELAXED), 3);
	/* the next call opens a new session */
	fe_set_mode(fe, FE_NORMAL);
	CU_ASSERT_EQUAL(pc_client_ping(c), 0);
	CU_ASSERT_EQUAL(__atomic_load_n(&c->reconnects, __ATOMIC_RELAXED), 1);
	pc_client_close(c);

	/* late answers: a timed-out slot frees itself when its completion lands */
	fe->delay_ms = 300;
	fe_set_mode(fe, FE_DELAY);
	c = connect_ok(fe, NULL, 100);
	k = c->conn;
	CU_ASSERT_EQUAL(pc_client_ping(c), -ETIMEDOUT);
	CU_ASSERT_EQUAL(k->ctl[0].state, PC_SLOT_CANCELLED);
	fe_set_mode(fe, FE_NORMAL);
	usleep(400 * 1000);
	CU_ASSERT_EQUAL(pc_client_ping(c), 0); /* on slot 1; drains slot 0's late completion */
	CU_ASSERT_EQUAL(k->ctl[0].state, PC_SLOT_FREE);
	CU_ASSERT_EQUAL(k->free_mask, 0x3);
	CU_ASSERT_EQUAL(k->busy_mask, 0); /* nothing left awaiting a completion */
	CU_ASSERT_FALSE(conn_is_broken(k));
	CU_ASSERT_EQUAL(pages_set(c, &a, 0), 4);
	pages_free(&a);
	pc_client_close(c);
	fe_stop(fe, true);
}

struct hup_arg {
	struct pc_client *c;
	int rc;
	uint64_t ns;
};

static void *
hup_thread(void *arg)
{
	struct hup_arg *h = arg;
	uint64_t t0 = now_ns();

	h->rc = pc_client_ping(h->c);
	h->ns = now_ns() - t0;
	return NULL;
}

static void
test_engine_death_reconnect(void)
{
	struct fake_engine *fe = fe_start(FE_NORMAL, 0);
	char path[108];
	struct pc_client *c = connect_ok(fe, NULL, 3000);
	struct pc_client_stats st;
	struct hup_arg h[3];
	pthread_t t[3];
	struct pages a;
	uint64_t base;

	snprintf(path, sizeof(path), "%s", fe->path);
	pages_init(&a, 10, 2, 4096, "revive");
	pages_fill(&a, 6);
	CU_ASSERT_EQUAL(pages_set(c, &a, 0), 10);

	/* the engine hangs up while three calls wait: all see -ENOTCONN, fast */
	fe_set_mode(fe, FE_HANGUP);
	for (int i = 0; i < 3; i++) {
		h[i].c = c;
		pthread_create(&t[i], NULL, hup_thread, &h[i]);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		CU_ASSERT_EQUAL(h[i].rc, -ENOTCONN);
		CU_ASSERT(h[i].ns < 3000 * PC_NS_PER_MS); /* well before the timeout */
	}
	/* a thread that started after the hang-up may have reconnected (and
	 * been hung up on again): count from here */
	base = __atomic_load_n(&c->reconnects, __ATOMIC_RELAXED);
	/* no engine at all: calls fail cleanly */
	fe_stop(fe, false);
	CU_ASSERT_EQUAL(pc_client_ping(c), -ENOTCONN);
	CU_ASSERT_EQUAL(pages_get(c, &a), -ENOTCONN);
	CU_ASSERT_EQUAL(a.results[0], -ENOTCONN);
	CU_ASSERT_EQUAL(pc_client_stats(c, &st), -ENOTCONN);

	/* a partial call: the first request is answered, then the engine dies */
	fe = fe_start_at(path, FE_NORMAL, 0);
	{
		struct pages big;

		pages_init(&big, 200, 2, 512, "partial");
		fe->hangup_after = 2; /* SET_ALLOC + SET_COMMIT of keys 0..127 */
		fe_set_mode(fe, FE_HANGUP);
		CU_ASSERT_EQUAL(pages_set(c, &big, 0), 128);
		CU_ASSERT_EQUAL(big.results[0], 0);
		CU_ASSERT_EQUAL(big.results[127], 0);
		CU_ASSERT_EQUAL(big.results[128], -ENOTCONN);
		CU_ASSERT_EQUAL(big.results[199], -ENOTCONN);
		pages_free(&big);
	}
	fe_stop(fe, false);

	/* a new engine on the same path: the next call reconnects */
	fe = fe_start_at(path, FE_NORMAL, 0);
	snprintf(fe->dir, sizeof(fe->dir), "%.*s", (int)(strrchr(path, '/') - path), path);
	CU_ASSERT_EQUAL(pc_client_ping(c), 0);
	CU_ASSERT_EQUAL(pc_client_stats(c, &st), 0);
	CU_ASSERT_EQUAL(st.reconnects, base + 2);
	CU_ASSERT_EQUAL(pages_set(c, &a, 0), 10); /* the new engine's store is empty */
	CU_ASSERT_EQUAL(a.results[0], 0);
	memset(a.mem, 0, a.total);
	CU_ASSERT_EQUAL(pages_get(c, &a), 10);
	{
		uint8_t *want = malloc(a.total);

		fill(want, a.total, 6);
		CU_ASSERT_EQUAL(memcmp(want, a.mem, a.total), 0);
		free(want);
	}

	/* an engine going away says so in the header: -ENOTCONN, then reconnect */
	fe_set_mode(fe, FE_CLOSING);
	CU_ASSERT_EQUAL(pc_client_ping(c), -ENOTCONN);
	fe_set_mode(fe, FE_NORMAL);
	CU_ASSERT_EQUAL(pc_client_ping(c), 0);
	CU_ASSERT_EQUAL(__atomic_load_n(&c->reconnects, __ATOMIC_RELAXED), base + 3);
	pages_free(&a);
	pc_client_close(c);
	fe_stop(fe, true);
}

struct worker {
	struct pc_client *c;
	unsigned int id;
	unsigned int iters;
	unsigned int failures;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	for (unsigned int it = 0; it < w->iters; it++) {
		char tag[32];
		struct pages a;
		uint64_t seed = (uint64_t)w->id << 32 | it;
		uint8_t *want;
		uint8_t present[16];

		snprintf(tag, sizeof(tag), "t%u-%u", w->id, it);
		pages_init(&a, 16, 2 + it % 3, 3000 + 64 * w->id, tag);
		pages_fill(&a, seed);
		want = malloc(a.total);
		memcpy(want, a.mem, a.total);
		w->failures += pages_set(w->c, &a, it) != 16;
		memset(a.mem, 0xee, a.total);
		w->failures += pages_get(w->c, &a) != 16;
		w->failures += memcmp(want, a.mem, a.total) != 0;
		w->failures += pc_client_batch_exists(w->c, 16, (const char *const *)a.keys,
						      present) != 16;
		w->failures += pc_client_delete(w->c, 16, (const char *const *)a.keys, NULL) != 16;
		free(want);
		pages_free(&a);
	}
	return NULL;
}

static void
run_workers(uint32_t nslots)
{
	struct fake_engine *fe = fe_start(FE_NORMAL, nslots);
	struct pc_client *c = connect_ok(fe, NULL, 5000);
	struct worker w[3];
	pthread_t t[3];

	for (unsigned int i = 0; i < 3; i++) {
		w[i] = (struct worker){.c = c, .id = i, .iters = 60};
		CU_ASSERT_FATAL(pthread_create(&t[i], NULL, worker_main, &w[i]) == 0);
	}
	for (unsigned int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		CU_ASSERT_EQUAL(w[i].failures, 0);
	}
	CU_ASSERT_EQUAL(pc_client_ping(c), 0);
	CU_ASSERT_EQUAL(fe_read(fe, &fe->pinned_now), 0);
	CU_ASSERT_EQUAL(fe_read(fe, &fe->allocated_now), 0);
	CU_ASSERT_EQUAL(c->conn->busy_mask, 0);
	CU_ASSERT_EQUAL(__atomic_load_n(&c->timeouts, __ATOMIC_RELAXED), 0);
	pc_client_close(c);
	fe_stop(fe, true);
}

static void
test_three_threads(void)
{
	run_workers(0); /* the default 8 slots */
}

static void
test_three_threads_two_slots(void)
{
	run_workers(2); /* threads queue for slots */
}

/* In a child: connect with the failpoint set and run op; returns the child's status. */
static int
failpoint_child(struct fake_engine *fe, const char *fp, bool get)
{
	pid_t pid = fork();
	int status = 0;

	if (pid == 0) {
		struct pc_client *c;
		struct pages a;

		setenv("PEERCACHE_FAILPOINT", fp, 1);
		c = pc_client_connect(fe->path, NULL, 2000, NULL);
		if (c == NULL) {
			_exit(2);
		}
		pages_init(&a, 4, 2, 1024, get ? "fp-get" : "fp-set");
		if (get) {
			pages_get(c, &a);
		} else {
			pages_set(c, &a, 0);
		}
		_exit(0);
	}
	CU_ASSERT_FATAL(pid > 0);
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	return status;
}

static void
test_failpoints(void)
{
	struct fake_engine *fe = fe_start(FE_NORMAL, 0);
	struct pc_client *c = connect_ok(fe, NULL, 2000);
	const char *keys[4] = {"fp-set-0", "fp-set-1", "fp-set-2", "fp-set-3"};
	struct pages a;
	int status;

	CU_ASSERT_EQUAL(failpoint_parse(NULL), PC_FP_NONE);
	CU_ASSERT_EQUAL(failpoint_parse(""), PC_FP_NONE);
	CU_ASSERT_EQUAL(failpoint_parse("before_commit"), PC_FP_BEFORE_COMMIT);
	CU_ASSERT_EQUAL(failpoint_parse("mid_get"), PC_FP_MID_GET);
	CU_ASSERT_EQUAL(failpoint_parse("before_commit "), PC_FP_NONE);
	CU_ASSERT_EQUAL(failpoint_parse("bogus"), PC_FP_NONE);
	CU_ASSERT_EQUAL(c->failpoint, PC_FP_NONE);

	/* killed between the copies and SET_COMMIT: nothing published */
	status = failpoint_child(fe, "before_commit", false);
	CU_ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	CU_ASSERT_TRUE(fe_wait_hangups(fe, 1));
	CU_ASSERT_EQUAL(pc_client_batch_exists(c, 4, keys, NULL), 0);
	CU_ASSERT_EQUAL(fe_read(fe, &fe->allocated_now), 0);
	CU_ASSERT_EQUAL(fe_read(fe, &fe->aborted), 4);

	/* killed holding pins: the engine's hang-up releases them */
	pages_init(&a, 4, 2, 1024, "fp-get");
	CU_ASSERT_EQUAL(pages_set(c, &a, 0), 4);
	status = failpoint_child(fe, "mid_get", true);
	CU_ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	CU_ASSERT_TRUE(fe_wait_hangups(fe, 2));
	CU_ASSERT_EQUAL(fe_read(fe, &fe->pinned_now), 0);
	CU_ASSERT_EQUAL(fe_read(fe, &fe->ops[PC_OP_GET_DONE]), 0);
	/* without the failpoint the same child runs to the end */
	status = failpoint_child(fe, "", true);
	CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	pages_free(&a);
	pc_client_close(c);
	fe_stop(fe, true);
}

/*
 * build/peercache-demo-client links build/libpeercache.so and never starts
 * EAL: run it against the fake engine (client.mk builds it before this test).
 */
static void
test_demo_client(void)
{
	struct fake_engine *fe = fe_start(FE_NORMAL, 0);
	char exe[PATH_MAX], demo[PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;
	int status = -1;
	pid_t pid;

	CU_ASSERT_FATAL(n > 0);
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	CU_ASSERT_FATAL(slash != NULL);
	*slash = '\0'; /* build/tests/client */
	snprintf(demo, sizeof(demo), "%s/../../peercache-demo-client", exe);
	CU_ASSERT_FATAL(access(demo, X_OK) == 0);
	pid = fork();
	if (pid == 0) {
		char *argv[] = {demo,     "--socket", fe->path, "--pages", "100",     "--page-size",
				"131072", "--batch",  "32",     "--ns",    "demo-ut", NULL};
		int null = open("/dev/null", O_WRONLY);

		dup2(null, STDOUT_FILENO);
		execv(demo, argv);
		_exit(127);
	}
	CU_ASSERT_FATAL(pid > 0);
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CU_ASSERT_EQUAL(fe_read(fe, &fe->sets), 100);
	CU_ASSERT_EQUAL(fe_read(fe, &fe->pinned_now), 0);
	fe_stop(fe, true);
}

static const struct pc_ut_test connect_tests[] = {
	{"connect, ping, stats", test_connect_ping_stats},
	{"no engine, long names, refused or mute hello", test_connect_errors},
	{"hostile hello replies fail cleanly", test_hostile_hello},
	{NULL, NULL},
};

static const struct pc_ut_test data_tests[] = {
	{"set/get with 2 and 2*L segments", test_set_get_scatter},
	{"dedup, bad keys and sizes, -EMSGSIZE, -EBADMSG", test_dedup_and_errors},
	{"split over 128 keys, exists prefix, delete, clear", test_split_and_exists},
	{"a large GET goes in parts, copied out as each completes", test_get_in_parts},
	{NULL, NULL},
};

static const struct pc_ut_test failure_tests[] = {
	{"timeouts; a cancelled slot waits for its completion", test_timeout_and_cancelled_slot},
	{"engine death, -ENOTCONN, reconnect", test_engine_death_reconnect},
	{"failpoints kill the client where asked", test_failpoints},
	{NULL, NULL},
};

static const struct pc_ut_test thread_tests[] = {
	{"three threads, 8 slots", test_three_threads},
	{"three threads, 2 slots", test_three_threads_two_slots},
	{NULL, NULL},
};

static const struct pc_ut_test demo_tests[] = {
	{"the demo client (shared library, no EAL) round-trips", test_demo_client},
	{NULL, NULL},
};

static const struct pc_ut_suite suites[] = {
	{"client_connect", NULL, NULL, connect_tests},
	{"client_data", NULL, NULL, data_tests},
	{"client_failures", NULL, NULL, failure_tests},
	{"client_threads", NULL, NULL, thread_tests},
	{"client_demo", NULL, NULL, demo_tests},
};

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return pc_ut_run(suites, PC_ARRAY_SIZE(suites));
}
