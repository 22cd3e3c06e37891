/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The client session protocol: how a local client (libpeercache, used by
 * SGLang) talks to its node's engine. Shared by the engine (engine/session.c)
 * and the client library (client/peercache.c); nothing here needs EAL.
 *
 * 1. Hello. The client connects a SOCK_SEQPACKET Unix socket at the
 *    engine's `engine_socket` and sends one struct pc_hello. The engine
 *    answers with one struct pc_hello_reply. On success the reply carries
 *    two file descriptors (SCM_RIGHTS): [0] the published segment (a memfd
 *    the client maps read-write: it copies SET payloads into it and GET
 *    payloads out of it), [1] the session region (a memfd laid out below),
 *    and a third, [2] the doorbell, when the hello asked for it with
 *    PC_HELLO_F_DOORBELL (the reply's flags then carry it too).
 *    On failure the reply has status < 0, a message, and no descriptor, and
 *    the engine closes the socket.
 *
 * 2. The session region (all offsets from its start, every part 64-byte
 *    aligned): struct pc_session_hdr at 0; the submission ring at sq_off,
 *    an rte_ring made by the engine with rte_ring_init() and
 *    PC_RING_ELEM_SIZE-byte elements (struct pc_ring_elem), multi-producer
 *    (RTS; the client's threads) and single-consumer (the engine worker
 *    that owns the session); then nslots request slots (struct
 *    pc_req_slot) at slots_off, slot_size bytes apart.
 *
 * 3. A request. The client owns a free slot, fills its request part (op,
 *    keys in the arena, lengths, deadline), and enqueues {slot, seq} on the
 *    submission ring. The engine worker copies and validates what it needs
 *    from the slot (everything in the region is untrusted: a bad index,
 *    count, length or offset fails that request with -EINVAL and nothing
 *    else), does the work, writes the response part, and completes the
 *    request by storing seq into the slot's done_seq (a release store after
 *    the response: done_seq, status and count share the slot's first cache
 *    line, so a waiting client reads one line). It then bumps cq_futex and,
 *    if cq_waiters is non-zero, FUTEX_WAKEs it (a shared futex). Clients
 *    spin on the done_seq of the slots they have in flight, then sleep on
 *    cq_futex with a timeout. There is no completion ring (version 1 had
 *    one): a completion costs the client one cache line, not a ring's tail,
 *    entry and consumer tail. The doorbell: a worker about to sleep
 *    (idle_policy adaptive) sets sq_doze, then looks at the submission ring
 *    once more; a client that finds sq_doze set after enqueuing (a full
 *    fence between the two) writes an 8-byte 1 to the doorbell, an eventfd
 *    that wakes the worker. Without a doorbell a request waits out the
 *    worker's sleep (at most 1 ms).
 *
 * 4. Two-phase operations. SET: PC_OP_SET_ALLOC reserves one page per key
 *    (keys already published answer PC_R_DEDUP and get no page), returns
 *    each page's segment offset; the client copies each payload to
 *    page_off + PC_PAGE_HDR_SIZE, sets keys[i].result = 0 for each page it
 *    filled (anything else abandons that page), and sends PC_OP_SET_COMMIT
 *    on the same slot; only then are the pages published. GET: PC_OP_GET
 *    locates and pins each page and returns offset, length and generation;
 *    the client copies out, compares the page header's magic and generation
 *    after its copy, and sends PC_OP_GET_DONE on the same slot to unpin. The
 *    engine keeps each phase's pages in its own memory, never trusting an
 *    offset the client writes. Any other op on a slot that still holds
 *    allocated or pinned pages first releases them (allocations are
 *    dropped, never published). Closing the socket releases everything.
 *    Pins expire after the engine's request_timeout; allocations do not
 *    (the client may still be writing them).
 *
 * Byte order: host (both ends are on one machine). Sizes are fixed-width.
 */
#ifndef PC_SESSION_PROTO_H
#define PC_SESSION_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PC_PROTO_VERSION 2

#define PC_HELLO_MAGIC       0x4c484350u /* "PCHL" */
#define PC_HELLO_REPLY_MAGIC 0x52484350u /* "PCHR" */
#define PC_SESSION_MAGIC     0x53534350u /* "PCSS" */

#define PC_NS_MAX            128   /* key namespace bytes (no NUL) */
#define PC_KEY_MAX           128   /* bytes of one key, namespace excluded (no NUL) */
#define PC_REQ_MAX_KEYS      128   /* keys per request (SGLang's batch) */
#define PC_REQ_ARENA_SIZE    16384 /* key bytes per request; also the STATS reply */
#define PC_SESSION_SLOTS     8     /* default request slots per session */
#define PC_SESSION_SLOTS_MAX 32
#define PC_HELLO_MSG_MAX     128 /* error text in a refused hello */

/* pc_hello.flags and pc_hello_reply.flags */
#define PC_HELLO_F_DOORBELL 0x1u /* a third descriptor: the worker's doorbell */

/* Operations (pc_req_slot.op). */
enum pc_op {
	PC_OP_NOP = 0,        /* round trip only (benchmarks, liveness) */
	PC_OP_SET_ALLOC = 1,  /* reserve pages: keys[i].len in, page_off out */
	PC_OP_SET_COMMIT = 2, /* publish the pages filled (keys[i].result == 0 in) */
	PC_OP_GET = 3,        /* locate + pin: page_off, len, generation out */
	PC_OP_GET_DONE = 4,   /* unpin this slot's pages */
	PC_OP_EXISTS = 5,     /* count = leading keys present; present bits */
	PC_OP_DELETE = 6,     /* unpublish keys */
	PC_OP_STATS = 7,      /* struct pc_engine_stats into the arena */
	PC_OP_CLEAR = 8,      /* delete every page of this session's namespace */
	PC_OP__COUNT
};

/* Per-key results besides 0 (ok, hit) and -errno. */
#define PC_R_DEDUP 1 /* SET: the key was already published; nothing written */

/* One submission ring element. */
struct pc_ring_elem {
	uint32_t slot; /* index into the request slots */
	uint32_t seq;  /* the client's sequence number for this use of the slot */
};
#define PC_RING_ELEM_SIZE 8
_Static_assert(sizeof(struct pc_ring_elem) == PC_RING_ELEM_SIZE, "ring element size");

struct pc_hello {
	uint32_t magic;   /* PC_HELLO_MAGIC */
	uint16_t version; /* PC_PROTO_VERSION */
	uint16_t nslots;  /* request slots wanted, 0 = PC_SESSION_SLOTS */
	uint32_t pid;
	uint16_t ns_len; /* <= PC_NS_MAX */
	uint16_t flags;  /* PC_HELLO_F_*; others are refused */
	char ns[PC_NS_MAX];
};

struct pc_hello_reply {
	uint32_t magic;   /* PC_HELLO_REPLY_MAGIC */
	uint16_t version; /* the engine's PC_PROTO_VERSION */
	uint16_t flags;   /* PC_HELLO_F_* granted */
	int32_t status;   /* 0, or -errno: the hello was refused */
	uint32_t session_id;
	uint64_t engine_incarnation; /* new each engine start */
	uint64_t segment_size;
	uint64_t region_size;
	uint32_t nslots;
	uint32_t slot_size;
	uint32_t sq_off;
	uint32_t slots_off;
	uint32_t ring_size;         /* elements in the submission ring */
	char msg[PC_HELLO_MSG_MAX]; /* why it was refused; NUL-terminated */
};

/* At offset 0 of the session region. */
struct pc_session_hdr {
	uint32_t magic; /* PC_SESSION_MAGIC */
	uint16_t version;
	uint16_t pad0;
	uint32_t session_id;
	uint32_t nslots;
	uint64_t engine_incarnation;
	uint8_t pad1[40];
	/*
	 * Written by the engine on every completion, read by clients only
	 * before they sleep: a line of its own, so that the words clients
	 * read on every request (below) do not move with it.
	 */
	uint32_t cq_futex; /* bumped after completions are posted */
	uint8_t pad2[60];
	/* Written by the engine now and then, read by clients on every request. */
	uint32_t closing; /* non-zero: the engine is going away */
	uint32_t sq_doze; /* non-zero: the worker may sleep; ring the doorbell */
	uint8_t pad3[56];
	/* Written by clients, read by the engine. */
	uint32_t cq_waiters; /* client threads sleeping on cq_futex */
	uint8_t pad4[60];
} __attribute__((aligned(64)));
_Static_assert(sizeof(struct pc_session_hdr) == 256, "session header layout");

/* One key of a request. */
struct pc_req_key {
	uint32_t key_off; /* in: key bytes at arena[key_off] */
	uint16_t key_len; /* in: 1..PC_KEY_MAX */
	uint16_t pad;
	uint32_t len;        /* SET_ALLOC in: payload bytes; GET out: payload bytes */
	int32_t result;      /* out: 0, PC_R_DEDUP or -errno; SET_COMMIT in: 0 = filled */
	uint64_t page_off;   /* out: segment offset of the page header */
	uint64_t generation; /* out (GET): the page's generation */
};
_Static_assert(sizeof(struct pc_req_key) == 32, "request key layout");

struct pc_req_slot {
	/* Request: written by the client before submitting. */
	uint32_t op;           /* enum pc_op */
	uint32_t nkeys;        /* 0..PC_REQ_MAX_KEYS */
	uint32_t seq;          /* echoed in the completion */
	uint32_t flags;        /* 0 */
	uint64_t deadline_ns;  /* CLOCK_MONOTONIC; 0 = the engine's default */
	uint32_t prefix_depth; /* pages in the chain before keys[0] (SGLang prefix_keys) */
	/* Response: written by the engine; done_seq last (release), = seq. */
	uint32_t done_seq;
	int32_t status; /* 0, or -errno for the whole request */
	uint32_t count; /* EXISTS: leading keys present; else keys that succeeded */
	uint64_t present[PC_REQ_MAX_KEYS / 64]; /* EXISTS: bit i = keys[i] present */
	uint8_t pad1[16];
	struct pc_req_key keys[PC_REQ_MAX_KEYS];
	uint8_t arena[PC_REQ_ARENA_SIZE];
} __attribute__((aligned(64)));
_Static_assert(sizeof(struct pc_req_slot) % 64 == 0, "request slot alignment");
_Static_assert(offsetof(struct pc_req_slot, count) < 64, "a completion is one cache line");

/* PC_OP_STATS reply, written at the start of the arena. */
struct pc_engine_stats {
	uint64_t segment_size;
	uint64_t bytes_used;     /* payload bytes of published pages */
	uint64_t pages;          /* published pages */
	uint64_t sets;           /* pages published */
	uint64_t set_dedup;      /* SETs of a key already published */
	uint64_t set_nospace;    /* SET pages refused for lack of memory */
	uint64_t set_aborted;    /* pages allocated, never committed */
	uint64_t gets;           /* GET keys */
	uint64_t get_hits;       /* found here or on another node */
	uint64_t get_misses;     /* found nowhere */
	uint64_t get_bad_header; /* pages whose header check failed: counted as misses */
	uint64_t exists_keys;
	uint64_t deletes;
	uint64_t evictions;
	uint64_t quarantined;  /* slots waiting out the quarantine now */
	uint64_t pinned;       /* pages pinned now */
	uint64_t sessions;     /* sessions open now */
	uint64_t bad_requests; /* requests failed as malformed */
	uint64_t remote_hits;  /* of get_hits: pages read from other nodes */
	uint64_t remote_bytes; /* their payload bytes */
	uint64_t reserved[12];
};
_Static_assert(sizeof(struct pc_engine_stats) == 256, "engine stats layout");

#endif /* PC_SESSION_PROTO_H */
