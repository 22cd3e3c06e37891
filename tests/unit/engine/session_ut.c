/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * engine/session.c: the engine's side of a session's shared region. The
 * engine dequeues what a client enqueued with the stock rte_ring API (multi-
 * producer RTS), in order, across wrap-around, and answers in the request's
 * slot (done_seq; there is no completion ring). A client that scribbles the
 * ring header (mask, capacity, head and tail words) can neither make the
 * engine read or write outside the ring (ASan would report it: the ring sits
 * at the very end of an exact allocation) nor hand it more entries than the
 * ring holds; an impossible tail is reported as -EBADMSG.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../../engine/session.c"
#include "ut.h"

#define COUNT 16

struct ring_mem {
	void *mem;
	struct rte_ring *r;
};

static struct ring_mem
ring_alloc(void)
{
	struct ring_mem m;
	size_t size = rte_ring_get_memsize_elem(PC_RING_ELEM_SIZE, COUNT);

	/* The ring ends exactly where the allocation does. */
	m.mem = aligned_alloc(64, RTE_ALIGN_CEIL(size, 64));
	m.r = m.mem;
	return m;
}

static void
test_client_to_engine(void)
{
	struct ring_mem m = ring_alloc();
	struct pc_sring sr = {0};
	struct pc_ring_elem in;
	struct pc_ring_elem out[COUNT];
	uint32_t next = 0;
	uint32_t sent = 0;
	int round;

	CU_ASSERT_EQUAL_FATAL(
		sring_init(&sr, m.mem, "t-sq", COUNT, RING_F_MP_RTS_ENQ | RING_F_SC_DEQ), 0);
	CU_ASSERT_EQUAL(sr.capacity, COUNT - 1);
	CU_ASSERT_EQUAL(sring_dequeue(&sr, out, COUNT), 0);
	/* Several laps around the ring, in uneven bursts. */
	for (round = 0; round < 40; round++) {
		int k = round % 7 + 1;
		int i;
		int n;

		for (i = 0; i < k; i++) {
			in.slot = sent;
			in.seq = sent * 3;
			CU_ASSERT_EQUAL(rte_ring_enqueue_elem(m.r, &in, sizeof(in)), 0);
			sent++;
		}
		n = sring_dequeue(&sr, out, COUNT);
		CU_ASSERT_EQUAL(n, k);
		for (i = 0; i < n; i++) {
			CU_ASSERT_EQUAL(out[i].slot, next);
			CU_ASSERT_EQUAL(out[i].seq, next * 3);
			next++;
		}
	}
	/* The client sees the room the engine freed: the ring fills to capacity again. */
	for (uint32_t i = 0; i < COUNT - 1; i++) {
		CU_ASSERT_EQUAL(rte_ring_enqueue_elem(m.r, &in, sizeof(in)), 0);
	}
	CU_ASSERT_EQUAL(rte_ring_enqueue_elem(m.r, &in, sizeof(in)), -ENOBUFS);
	CU_ASSERT_EQUAL(sring_dequeue(&sr, out, 4), 4);
	CU_ASSERT_EQUAL(rte_ring_enqueue_elem(m.r, &in, sizeof(in)), 0);
	free(m.mem);
}

/*
 * A completion is written into the request's slot: status and count, then
 * done_seq = the request's seq, all in the slot's first cache line; the
 * session is flagged for a cq_futex bump, which the pass's end makes.
 */
static void
test_completion_in_slot(void)
{
	struct pc_session_hdr hdr;
	struct pc_session *s = calloc(1, sizeof(struct pc_session));
	struct pc_req_slot *slots = aligned_alloc(64, 2 * sizeof(struct pc_req_slot));
	struct pc_sworker w = {0};

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(slots);
	memset(&hdr, 0, sizeof(hdr));
	memset(slots, 0, 2 * sizeof(struct pc_req_slot));
	s->hdr = &hdr;
	s->slots = (uint8_t *)slots;
	s->nslots = 2;
	slots[1].seq = 77;
	complete(&w, s, 1, 77, -ENOENT, 3);
	CU_ASSERT_EQUAL(slots[1].done_seq, 77);
	CU_ASSERT_EQUAL(slots[1].status, -ENOENT);
	CU_ASSERT_EQUAL(slots[1].count, 3);
	CU_ASSERT_EQUAL(slots[0].done_seq, 0); /* the other slot untouched */
	CU_ASSERT_TRUE(s->notify);
	CU_ASSERT_EQUAL(w.stats.requests, 1);
	CU_ASSERT_EQUAL(hdr.cq_futex, 0);
	notify_client(s);
	CU_ASSERT_FALSE(s->notify);
	CU_ASSERT_EQUAL(hdr.cq_futex, 1);
	/* The next use of the slot: a new seq, answered in the same place. */
	complete(&w, s, 1, 78, 0, 0);
	CU_ASSERT_EQUAL(slots[1].done_seq, 78);
	CU_ASSERT_EQUAL(slots[1].status, 0);
	CU_ASSERT_EQUAL(w.stats.requests, 2);
	free(slots);
	free(s);
}

static void
test_scribbled_headers(void)
{
	struct ring_mem m = ring_alloc();
	struct pc_sring sq = {0};
	struct pc_ring_elem out[COUNT];
	int n;

	CU_ASSERT_EQUAL_FATAL(
		sring_init(&sq, m.mem, "t-x", COUNT, RING_F_MP_RTS_ENQ | RING_F_SC_DEQ), 0);
	/* Geometry rewritten by the client: ignored, the engine keeps its own. */
	m.r->mask = UINT32_MAX;
	m.r->capacity = UINT32_MAX;
	m.r->size = UINT32_MAX;
	m.r->prod.tail = 5;
	n = sring_dequeue(&sq, out, COUNT);
	CU_ASSERT_EQUAL(n, 5);
	/* A tail claiming more entries than the ring holds. */
	m.r->prod.tail = sq.head + COUNT;
	CU_ASSERT_EQUAL(sring_dequeue(&sq, out, COUNT), -EBADMSG);
	m.r->prod.tail = sq.head - 1; /* behind the engine: "4 billion entries" */
	CU_ASSERT_EQUAL(sring_dequeue(&sq, out, COUNT), -EBADMSG);
	m.r->prod.tail = UINT32_MAX;
	CU_ASSERT_EQUAL(sring_dequeue(&sq, out, COUNT), -EBADMSG);
	free(m.mem);
}

/*
 * The doze hook: before the worker sleeps every session's header asks for
 * the doorbell, and a request already queued (by a client that read sq_doze
 * too early) vetoes the sleep; a broken session's ring does not; waking up
 * lowers every flag.
 */
static void
test_doze_hook(void)
{
	struct ring_mem m[2] = {ring_alloc(), ring_alloc()};
	struct pc_session_hdr hdr[2];
	struct pc_session *sess[2];
	struct pc_sworker w = {0};
	struct pc_ring_elem e = {.slot = 1, .seq = 7};

	memset(hdr, 0, sizeof(hdr));
	for (int i = 0; i < 2; i++) {
		sess[i] = calloc(1, sizeof(struct pc_session));
		CU_ASSERT_PTR_NOT_NULL_FATAL(sess[i]);
		sess[i]->hdr = &hdr[i];
		CU_ASSERT_EQUAL_FATAL(sring_init(&sess[i]->sq, m[i].mem, i ? "t-d1" : "t-d0", COUNT,
						 RING_F_MP_RTS_ENQ | RING_F_SC_DEQ),
				      0);
	}
	w.list = sess;
	w.nsess = 2;
	CU_ASSERT_TRUE(worker_doze(&w, true));
	CU_ASSERT_EQUAL(hdr[0].sq_doze, 1);
	CU_ASSERT_EQUAL(hdr[1].sq_doze, 1);
	CU_ASSERT_TRUE(worker_doze(&w, false));
	CU_ASSERT_EQUAL(hdr[0].sq_doze, 0);
	CU_ASSERT_EQUAL(hdr[1].sq_doze, 0);
	/* A request queued on the second session: no sleep. */
	CU_ASSERT_EQUAL(rte_ring_mp_enqueue_elem(m[1].r, &e, PC_RING_ELEM_SIZE), 0);
	CU_ASSERT_FALSE(worker_doze(&w, true));
	/* The same ring on a broken session is never served: it vetoes nothing. */
	sess[1]->broken = true;
	CU_ASSERT_TRUE(worker_doze(&w, true));
	CU_ASSERT_TRUE(worker_doze(&w, false));
	CU_ASSERT_EQUAL(hdr[1].sq_doze, 0);
	for (int i = 0; i < 2; i++) {
		free(sess[i]);
		free(m[i].mem);
	}
}

static const struct pc_ut_test ring_tests[] = {
	{"client enqueues, engine dequeues, in order across laps", test_client_to_engine},
	{"doze hook: doorbell flags up and down; a queued request vetoes", test_doze_hook},
	{"a completion: status, count, then done_seq in the slot; cq_futex bumped",
	 test_completion_in_slot},
	{"scribbled ring headers: no stray access, impossible tails refused",
	 test_scribbled_headers},
	{NULL, NULL},
};

static const struct pc_ut_suite suites[] = {
	{"session rings", NULL, NULL, ring_tests},
};

int
main(void)
{
	return pc_ut_run(suites, PC_ARRAY_SIZE(suites));
}
