/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mempool/store.c: the page store. What a user would notice: a page set is
 * read back byte for byte through the segment mapping (the engine's and a
 * client's own mmap of the memfd); a key is stored once (first writer wins,
 * the loser's memory comes back); an aborted SET is never visible; any
 * damage to a page is a miss, never data; a deleted or evicted slot is not
 * reused before its quarantine, nor while a reader holds it; eviction keeps
 * recently read pages and drops deep prefix pages first; probes do not keep
 * pages alive; a full segment recovers through eviction, also for another
 * page size; clearing a namespace touches no other; and two worker threads
 * racing sets, gets, deletes and the evictor never see wrong bytes. A
 * landing slot for a remote GET (stage) is never seen by a GET, an EXISTS,
 * a remote pin or the directory, is never deduped or evicted, and unstage
 * clears its header and gives the memory back, once.
 *
 * Time is driven by hand (pc_store_poll / pc_store_evict_poll get now_tsc
 * from the test), except in the thread test, which runs on the TSC.
 */
#define PC_UT_WITH_EAL
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <rte_cycles.h>
#include <rte_lcore.h>

#include "../../../mempool/store.c"
#include "ut.h"

#define SEG_SIZE    (16ull << 20)
#define NB_CACHES   3
#define CI_W0       0
#define CI_W1       1
#define CI_CTRL     2
#define Q_US        1000
#define T0          1000000ull
#define MAX_PAGES   8192
#define BIG_PAYLOAD (1u << 20)

static unsigned int g_store_seq;

static struct pc_store *
store_new(bool crc)
{
	struct pc_store_opts o = {
		.segment_size = SEG_SIZE,
		.hugepages = false,
		.nb_caches = NB_CACHES,
		.quarantine_us = Q_US,
		.page_crc = crc,
	};
	char name[16];
	struct pc_store *st;

	snprintf(name, sizeof(name), "st%u", g_store_seq++);
	o.name = name;
	st = pc_store_create(&o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_EQUAL(pc_store_reader_register(st, CI_W0), 0);
	CU_ASSERT_EQUAL(pc_store_reader_register(st, CI_CTRL), 0);
	return st;
}

static uint64_t
qtsc(void)
{
	return pc_us_to_tsc(Q_US);
}

/*
 * Content is a function of the key id and length only: any writer of a key
 * writes the same bytes, another key's page always differs. Word j of the
 * pattern is splitmix64 of (id, len, j).
 */
static void
pattern_word(uint8_t w[8], uint32_t j, uint32_t len, uint32_t id)
{
	uint64_t z = (((uint64_t)id << 32) ^ len ^ 0x9E3779B97F4A7C15ull) +
		     (uint64_t)(j + 1) * 0x9E3779B97F4A7C15ull;

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	z ^= z >> 31;
	memcpy(w, &z, 8);
}

static void
pattern(uint8_t *p, uint32_t len, uint32_t id)
{
	uint8_t w[8];

	for (uint32_t i = 0; i < len; i += 8) {
		pattern_word(w, i / 8, len, id);
		memcpy(p + i, w, PC_MIN(8u, len - i));
	}
}

static bool
pattern_ok(const uint8_t *p, uint32_t len, uint32_t id)
{
	uint8_t w[8];

	for (uint32_t i = 0; i < len; i += 8) {
		uint32_t n = PC_MIN(8u, len - i);

		/* The pattern's word i/8, regenerated: pattern() is a counter-based generator. */
		pattern_word(w, i / 8, len, id);
		if (memcmp(w, p + i, n) != 0) {
			return false;
		}
	}
	return true;
}

static void
mkkey(struct pc_store_key *k, const char *ns, uint32_t id)
{
	char key[32];
	int n = snprintf(key, sizeof(key), "page-%u", id);

	CU_ASSERT_EQUAL_FATAL(pc_store_key_init(k, ns, strlen(ns), key, (size_t)n), 0);
}

static uint8_t *
seg_payload(struct pc_store *st, uint64_t off)
{
	return (uint8_t *)pc_store_segment_base(st) + off + PC_PAGE_HDR_SIZE;
}

static struct pc_page_hdr *
seg_hdr(struct pc_store *st, uint64_t off)
{
	return (struct pc_page_hdr *)((uint8_t *)pc_store_segment_base(st) + off);
}

/* SET: alloc, copy, commit. Returns alloc's or commit's answer. */
static int
set_page(struct pc_store *st, unsigned int ci, const struct pc_store_key *k, uint32_t id,
	 uint32_t len, uint32_t depth, uint64_t *off)
{
	struct pc_store_loc loc;
	int rc = pc_store_alloc(st, ci, k, len, depth, &loc);

	if (rc != 0) {
		return rc;
	}
	if (off != NULL) {
		*off = loc.off;
	}
	pattern(seg_payload(st, loc.off), len, id);
	return pc_store_commit(st, ci, &loc);
}

/* GET one key: 0 and bytes checked, or the miss code. */
static int
get_page(struct pc_store *st, unsigned int ci, const struct pc_store_key *k, uint32_t id,
	 uint32_t len)
{
	const struct pc_store_key *keys[1] = {k};
	struct pc_store_loc loc;
	int rc = -1;

	if (pc_store_lookup_pin_burst(st, ci, keys, 1, &loc, &rc) == 1) {
		CU_ASSERT_EQUAL(rc, 0);
		CU_ASSERT_EQUAL(loc.len, len);
		CU_ASSERT(pattern_ok(seg_payload(st, loc.off), len, id));
		pc_store_unpin_bulk(st, ci, &loc, 1);
	} else {
		CU_ASSERT_PTR_NULL(loc.slot);
		CU_ASSERT(rc == -ENOENT || rc == -EBADMSG);
	}
	return rc;
}

static bool
exists1(struct pc_store *st, const struct pc_store_key *k)
{
	const struct pc_store_key *keys[1] = {k};
	bool p = false;

	pc_store_exists_burst(st, keys, 1, &p);
	return p;
}

static void
poll_all(struct pc_store *st, uint64_t now)
{
	for (unsigned int ci = 0; ci < NB_CACHES; ci++) {
		pc_store_poll(st, ci, now);
	}
}

static struct pc_slot *
slot_of(struct pc_store *st, const struct pc_store_key *k)
{
	void *data = NULL;

	if (rte_hash_lookup_data(st->index, k->digest, &data) < 0) {
		return NULL;
	}
	return data;
}

/* ---- round trip, keys, errors ---- */

static void
test_round_trip(void)
{
	static const uint32_t lens[] = {1, 100, 4096, 4097, 65536, 100000, BIG_PAYLOAD};
	struct pc_store *st = store_new(true);
	struct pc_store_stats s;
	struct pc_store_key k;
	uint64_t offs[PC_ARRAY_SIZE(lens)];
	uint64_t total = 0;
	uint8_t *client;
	int fd;

	for (uint32_t i = 0; i < PC_ARRAY_SIZE(lens); i++) {
		mkkey(&k, "model-a", i);
		CU_ASSERT_EQUAL(set_page(st, CI_W0, &k, i, lens[i], i, &offs[i]), 0);
		total += lens[i];
	}
	/* A client's own mapping of the memfd sees the same bytes, header included. */
	fd = pc_store_segment_fd(st);
	CU_ASSERT(fd >= 0);
	client = mmap(NULL, pc_store_segment_size(st), PROT_READ, MAP_SHARED, fd, 0);
	CU_ASSERT_FATAL(client != MAP_FAILED);
	for (uint32_t i = 0; i < PC_ARRAY_SIZE(lens); i++) {
		const struct pc_store_key *keys[1] = {&k};
		const struct pc_page_hdr *h = (const void *)(client + offs[i]);
		struct pc_store_loc loc;
		int rc = -1;

		mkkey(&k, "model-a", i);
		CU_ASSERT_EQUAL_FATAL(pc_store_lookup_pin_burst(st, CI_W1, keys, 1, &loc, &rc), 1);
		CU_ASSERT_EQUAL(rc, 0);
		CU_ASSERT_EQUAL(loc.off, offs[i]);
		CU_ASSERT_EQUAL(loc.len, lens[i]);
		CU_ASSERT(pattern_ok(client + loc.off + PC_PAGE_HDR_SIZE, lens[i], i));
		CU_ASSERT_EQUAL(pc_page_check(h, client + loc.off + PC_PAGE_HDR_SIZE, lens[i],
					      k.digest, loc.generation, lens[i], true),
				0);
		pc_store_unpin_bulk(st, CI_W1, &loc, 1);
		CU_ASSERT_PTR_NULL(loc.slot);
	}
	munmap(client, pc_store_segment_size(st));

	/* Another namespace, same key: a different page (a miss). */
	mkkey(&k, "model-b", 0);
	CU_ASSERT_EQUAL(get_page(st, CI_W0, &k, 0, lens[0]), -ENOENT);
	CU_ASSERT_FALSE(exists1(st, &k));

	pc_store_get_stats(st, &s);
	CU_ASSERT_EQUAL(s.sets, PC_ARRAY_SIZE(lens));
	CU_ASSERT_EQUAL(s.pages, PC_ARRAY_SIZE(lens));
	CU_ASSERT_EQUAL(s.bytes_used, total);
	CU_ASSERT_EQUAL(s.gets, PC_ARRAY_SIZE(lens) + 1);
	CU_ASSERT_EQUAL(s.get_hits, PC_ARRAY_SIZE(lens));
	CU_ASSERT_EQUAL(s.get_misses, 1);
	CU_ASSERT_EQUAL(s.pinned, 0);
	CU_ASSERT(s.bytes_free < s.segment_size - total);
	CU_ASSERT(s.classes >= 5);
	CU_ASSERT_EQUAL(s.segment_size, SEG_SIZE);
	pc_store_destroy(st);
}

static void
test_keys_and_errors(void)
{
	struct pc_store *st = store_new(false);
	struct pc_store_key k, k2;
	struct pc_store_loc loc;
	char big[PC_KEY_MAX + 2];
	uint8_t d[PC_PAGE_DIGEST_LEN];

	memset(big, 'x', sizeof(big));
	CU_ASSERT_EQUAL(pc_store_key_init(&k, "ns", 2, big, PC_KEY_MAX + 1), -ENAMETOOLONG);
	CU_ASSERT_EQUAL(pc_store_key_init(&k, big, PC_NS_MAX + 1, "k", 1), -ENAMETOOLONG);
	CU_ASSERT_EQUAL(pc_store_key_init(&k, "ns", 2, "k", 0), -EINVAL);
	CU_ASSERT_EQUAL(pc_store_key_init(&k, big, PC_NS_MAX, big, PC_KEY_MAX), 0);
	CU_ASSERT_EQUAL(k.len, PC_STORE_KEY_MAX);
	/* The digest is BLAKE2b-128 of ns '\0' key. */
	CU_ASSERT_EQUAL(pc_store_key_init(&k, "ab", 2, "c", 1), 0);
	CU_ASSERT_EQUAL(k.len, 4);
	CU_ASSERT_EQUAL(memcmp(k.bytes, "ab\0c", 4), 0);
	pc_page_digest("ab\0c", 4, d);
	CU_ASSERT_EQUAL(memcmp(d, k.digest, sizeof(d)), 0);
	/* "a" + "bc" is not "ab" + "c". */
	CU_ASSERT_EQUAL(pc_store_key_init(&k2, "a", 1, "bc", 2), 0);
	CU_ASSERT_NOT_EQUAL(memcmp(k.digest, k2.digest, sizeof(d)), 0);

	CU_ASSERT_EQUAL(pc_store_alloc(st, CI_W0, &k, 0, 0, &loc), -EMSGSIZE);
	CU_ASSERT_EQUAL(pc_store_alloc(st, CI_W0, &k, PC_PAGE_PAYLOAD_MAX + 1, 0, &loc), -EMSGSIZE);
	CU_ASSERT_EQUAL(pc_store_alloc(st, NB_CACHES, &k, 10, 0, &loc), -EINVAL);
	/* Bigger than the segment: no room now, never a crash. */
	CU_ASSERT_EQUAL(pc_store_alloc(st, CI_W0, &k, PC_PAGE_PAYLOAD_MAX, 0, &loc), -ENOSPC);
	CU_ASSERT_EQUAL(pc_store_delete(st, CI_W0, &k), -ENOENT);
	CU_ASSERT_EQUAL(pc_store_reader_register(st, CI_W0), -EBUSY);
	CU_ASSERT_EQUAL(pc_store_reader_register(st, NB_CACHES), -EINVAL);
	pc_store_destroy(st);
	pc_store_destroy(NULL);
}

/* ---- SET semantics ---- */

static void
test_dedup(void)
{
	struct pc_store *st = store_new(false);
	struct pc_store_loc a, b;
	struct pc_store_stats s0, s1;
	struct pc_store_key k;
	uint64_t loser;

	mkkey(&k, "ns", 1);
	CU_ASSERT_EQUAL(set_page(st, CI_W0, &k, 1, 5000, 0, NULL), 0);
	CU_ASSERT_EQUAL(pc_store_alloc(st, CI_W1, &k, 5000, 0, &a), PC_STORE_DEDUP);

	/* Two writers of one key race: both allocate, the first commit wins. */
	mkkey(&k, "ns", 2);
	CU_ASSERT_EQUAL(pc_store_alloc(st, CI_W0, &k, 7000, 0, &a), 0);
	pattern(seg_payload(st, a.off), 7000, 2);
	pc_store_get_stats(st, &s0);
	CU_ASSERT_EQUAL(pc_store_alloc(st, CI_W1, &k, 7000, 0, &b), 0);
	CU_ASSERT_NOT_EQUAL(a.off, b.off);
	loser = b.off;
	/* The loser's bytes differ: if its page were ever visible, the read would fail. */
	memset(seg_payload(st, b.off), 0xEE, 7000);
	CU_ASSERT_EQUAL(pc_store_commit(st, CI_W0, &a), 0);
	CU_ASSERT_EQUAL(pc_store_commit(st, CI_W1, &b), PC_STORE_DEDUP);
	CU_ASSERT_PTR_NULL(b.slot);
	CU_ASSERT_EQUAL(get_page(st, CI_W0, &k, 2, 7000), 0);
	/* The loser's page is retired and its slot back at once. */
	CU_ASSERT_NOT_EQUAL(seg_hdr(st, loser)->magic, PC_PAGE_MAGIC);
	pc_store_get_stats(st, &s1);
	CU_ASSERT_EQUAL(s1.bytes_free, s0.bytes_free);
	CU_ASSERT_EQUAL(s1.set_dedup, 2);
	CU_ASSERT_EQUAL(s1.sets, 2);
	CU_ASSERT_EQUAL(s1.pages, 2);
	CU_ASSERT_EQUAL(s1.quarantined, 0);
	/* ... and handed out again by the next allocation of its class on that lcore. */
	mkkey(&k, "ns", 3);
	CU_ASSERT_EQUAL(pc_store_alloc(st, CI_W1, &k, 7000, 0, &b), 0);
	CU_ASSERT_EQUAL(b.off, loser);
	pc_store_abort(st, CI_W1, &b);
	pc_store_destroy(st);
}

static void
test_abort(void)
{
	struct pc_store *st = store_new(false);
	struct pc_store_stats s0, s1;
	struct pc_store_key k;
	struct pc_store_loc loc, again;
	uint64_t off;

	mkkey(&k, "ns", 7);
	pc_store_get_stats(st, &s0);
	CU_ASSERT_EQUAL(pc_store_alloc(st, CI_W0, &k, 9000, 3, &loc), 0);
	off = loc.off;
	pattern(seg_payload(st, loc.off), 9000, 7);
	CU_ASSERT_FALSE(exists1(st, &k));
	CU_ASSERT_EQUAL(get_page(st, CI_W0, &k, 7, 9000), -ENOENT);
	pc_store_abort(st, CI_W0, &loc);
	CU_ASSERT_PTR_NULL(loc.slot);
	/* A consumed location cannot be committed. */
	CU_ASSERT_EQUAL(pc_store_commit(st, CI_W0, &loc), -EINVAL);
	CU_ASSERT_FALSE(exists1(st, &k));
	CU_ASSERT_EQUAL(get_page(st, CI_W0, &k, 7, 9000), -ENOENT);
	CU_ASSERT_NOT_EQUAL(seg_hdr(st, off)->magic, PC_PAGE_MAGIC);
	pc_store_get_stats(st, &s1);
	CU_ASSERT_EQUAL(s1.set_aborted, 1);
	CU_ASSERT_EQUAL(s1.pages, 0);
	CU_ASSERT_EQUAL(s1.bytes_free, s0.bytes_free);
	/* Never published, so no quarantine: the slot is the next one handed out. */
	CU_ASSERT_EQUAL(pc_store_alloc(st, CI_W0, &k, 9000, 3, &again), 0);
	CU_ASSERT_EQUAL(again.off, off);
	pattern(seg_payload(st, again.off), 9000, 7);
	CU_ASSERT_EQUAL(pc_store_commit(st, CI_W0, &again), 0);
	CU_ASSERT_EQUAL(get_page(st, CI_W0, &k, 7, 9000), 0);
	pc_store_destroy(st);
}

/* ---- damaged pages ---- */

enum damage {
	DMG_MAGIC,
	DMG_VERSION,
	DMG_FLAGS,
	DMG_DIGEST,
	DMG_GENERATION,
	DMG_LEN,
	DMG_CRC,
	DMG_RESERVED,
	DMG_HDR_CRC,
	DMG_KEY_TAIL,
	DMG_PAYLOAD,
	DMG_COUNT,
};

static void
test_damaged_pages(void)
{
	struct pc_store *st = store_new(true);
	struct pc_store_stats s;
	struct pc_store_key k;
	const uint32_t len = 6000;

	for (int d = 0; d < DMG_COUNT; d++) {
		const struct pc_store_key *keys[1] = {&k};
		struct pc_store_loc loc;
		struct pc_page_hdr *h;
		struct pc_slot *slot;
		uint64_t off;
		int rc = 0;

		mkkey(&k, "dmg", (uint32_t)d);
		CU_ASSERT_EQUAL_FATAL(set_page(st, CI_W0, &k, (uint32_t)d, len, 0, &off), 0);
		h = seg_hdr(st, off);
		slot = slot_of(st, &k);
		CU_ASSERT_PTR_NOT_NULL_FATAL(slot);
		switch (d) {
		case DMG_MAGIC:
			((uint8_t *)&h->magic)[1] ^= 1;
			break;
		case DMG_VERSION:
			h->version ^= 2;
			break;
		case DMG_FLAGS:
			h->flags ^= 0x100;
			break;
		case DMG_DIGEST:
			h->digest[5] ^= 0x40;
			break;
		case DMG_GENERATION:
			h->generation ^= 1ull << 33;
			break;
		case DMG_LEN:
			h->payload_len -= 1;
			break;
		case DMG_CRC:
			h->payload_crc ^= 1;
			break;
		case DMG_RESERVED:
			h->reserved[7] = 1;
			break;
		case DMG_HDR_CRC:
			h->header_crc ^= 0x80000000u;
			break;
		case DMG_KEY_TAIL:
			pc_slab_key_tail(st->slab, slot)[k.len - 1] ^= 1;
			break;
		case DMG_PAYLOAD:
			seg_payload(st, off)[len / 2] ^= 0x10;
			break;
		}
		CU_ASSERT_EQUAL(pc_store_lookup_pin_burst(st, CI_W1, keys, 1, &loc, &rc), 0);
		CU_ASSERT_PTR_NULL(loc.slot);
		CU_ASSERT_EQUAL(rc, d == DMG_KEY_TAIL ? -ENOENT : -EBADMSG);
		pc_store_get_stats(st, &s);
		CU_ASSERT_EQUAL(s.get_bad_header, (uint64_t)d + 1);
		/* The damaged page is unpublished and retired, and the key can be set again. */
		CU_ASSERT_FALSE(exists1(st, &k));
		CU_ASSERT_EQUAL(s.quarantined, (uint64_t)d + 1);
		CU_ASSERT_NOT_EQUAL(__atomic_load_n(&h->magic, __ATOMIC_RELAXED), PC_PAGE_MAGIC);
		CU_ASSERT_EQUAL(set_page(st, CI_W0, &k, (uint32_t)d, len, 0, NULL), 0);
		CU_ASSERT_EQUAL(get_page(st, CI_W0, &k, (uint32_t)d, len), 0);
	}
	pc_store_get_stats(st, &s);
	CU_ASSERT_EQUAL(s.pages, DMG_COUNT);
	pc_store_destroy(st);
}

/* ---- quarantine and pins ---- */

/* Allocate pages of len on ci until the segment says no; their offsets into offs. */
static unsigned int
alloc_all(struct pc_store *st, unsigned int ci, uint32_t len, uint32_t id0,
	  struct pc_store_loc *locs, unsigned int max)
{
	struct pc_store_key k;
	unsigned int n = 0;

	while (n < max) {
		mkkey(&k, "fill", id0 + n);
		if (pc_store_alloc(st, ci, &k, len, 0, &locs[n]) != 0) {
			break;
		}
		n++;
	}
	return n;
}

static bool
has_off(const struct pc_store_loc *locs, unsigned int n, uint64_t off)
{
	for (unsigned int i = 0; i < n; i++) {
		if (locs[i].off == off) {
			return true;
		}
	}
	return false;
}

static void
abort_all(struct pc_store *st, unsigned int ci, struct pc_store_loc *locs, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		pc_store_abort(st, ci, &locs[i]);
	}
}

/* Page events: what the directory is told, and from which lcore. */
struct ev_rec {
	unsigned int n;
	unsigned int ci[8];
	bool published[8];
	char key[8][64];
	uint32_t key_len[8];
	uint32_t len[8];
	uint64_t off[8];
	uint64_t gen[8];
};

static void
ev_cb(void *arg, unsigned int ci, bool published, const struct pc_store_event *ev)
{
	struct ev_rec *r = arg;
	unsigned int i = r->n++;

	CU_ASSERT_FATAL(i < 8 && ev->key_len <= sizeof(r->key[0]));
	r->ci[i] = ci;
	r->published[i] = published;
	memcpy(r->key[i], ev->key, ev->key_len);
	r->key_len[i] = ev->key_len;
	r->len[i] = ev->len;
	r->off[i] = ev->off;
	r->gen[i] = ev->generation;
}

static void
test_events(void)
{
	struct pc_store *st = store_new(false);
	struct ev_rec r = {0};
	struct pc_store_key k1;
	struct pc_store_key k2;
	uint64_t off1, off2;

	pc_store_set_event_cb(st, ev_cb, &r);
	mkkey(&k1, "ev", 1);
	mkkey(&k2, "ev", 2);
	CU_ASSERT_EQUAL(set_page(st, CI_W0, &k1, 1, 5000, 0, &off1), 0);
	CU_ASSERT_EQUAL(set_page(st, CI_CTRL, &k2, 2, 70000, 1, &off2), 0);
	/* A duplicate, an abort and a miss tell nothing. */
	CU_ASSERT_EQUAL(set_page(st, CI_W0, &k1, 1, 5000, 0, NULL), PC_STORE_DEDUP);
	CU_ASSERT_EQUAL(pc_store_delete(st, CI_W0, &k2), 0);
	CU_ASSERT_EQUAL(pc_store_delete(st, CI_W0, &k2), -ENOENT);
	CU_ASSERT_EQUAL_FATAL(r.n, 3);
	CU_ASSERT(r.published[0] && r.published[1] && !r.published[2]);
	CU_ASSERT_EQUAL(r.ci[0], CI_W0);
	CU_ASSERT_EQUAL(r.ci[1], CI_CTRL);
	CU_ASSERT_EQUAL(r.ci[2], CI_W0);
	CU_ASSERT_EQUAL(r.key_len[0], k1.len);
	CU_ASSERT_EQUAL(memcmp(r.key[0], k1.bytes, k1.len), 0);
	CU_ASSERT_EQUAL(memcmp(r.key[2], k2.bytes, k2.len), 0);
	CU_ASSERT_EQUAL(r.off[0], off1);
	CU_ASSERT_EQUAL(r.off[1], off2);
	CU_ASSERT_EQUAL(r.off[2], off2);
	CU_ASSERT_EQUAL(r.len[0], 5000);
	CU_ASSERT_EQUAL(r.len[1], 70000);
	CU_ASSERT_EQUAL(r.gen[0], seg_hdr(st, off1)->generation);
	CU_ASSERT_EQUAL(r.gen[2], r.gen[1]);
	/* clear_ns unpublishes through the same path. */
	CU_ASSERT_EQUAL(pc_store_clear_ns(st, CI_CTRL, "ev", 2), 1);
	CU_ASSERT_EQUAL(r.n, 4);
	CU_ASSERT_FALSE(r.published[3]);
	CU_ASSERT_EQUAL(r.off[3], off1);
	pc_store_destroy(st);
}

/* Offsets announced, for test_announce. */
struct ann_rec {
	unsigned int n;
	uint64_t off[1024];
	bool ok; /* every event was a published one with the right key */
	struct pc_store *st;
};

static void
ann_cb(void *arg, unsigned int ci, bool published, const struct pc_store_event *ev)
{
	struct ann_rec *r = arg;
	const struct pc_page_hdr *h = seg_hdr(r->st, ev->off);

	(void)ci;
	r->ok &= published && r->n < PC_ARRAY_SIZE(r->off) && h->generation == ev->generation &&
		 ev->key_len > 3 && memcmp(ev->key, "ann", 4) == 0;
	if (r->n < PC_ARRAY_SIZE(r->off)) {
		r->off[r->n] = ev->off;
	}
	r->n++;
}

/* A walk in small steps announces every published page once, and nothing else. */
static void
test_announce(void)
{
	struct pc_store *st = store_new(false);
	struct ann_rec r = {.ok = true, .st = st};
	struct pc_store_walk w = {0};
	static uint64_t offs[300];
	unsigned int steps = 0;
	unsigned int sent = 0;
	unsigned int matched = 0;

	for (uint32_t id = 0; id < 300; id++) {
		struct pc_store_key k;

		mkkey(&k, "ann", id);
		/* Two page sizes: two classes to walk. */
		CU_ASSERT_EQUAL_FATAL(
			set_page(st, CI_CTRL, &k, id, id % 2 ? 3000 : 20000, 0, &offs[id]), 0);
	}
	for (uint32_t id = 0; id < 300; id += 3) {
		struct pc_store_key k;

		mkkey(&k, "ann", id);
		CU_ASSERT_EQUAL(pc_store_delete(st, CI_CTRL, &k), 0);
	}
	pc_store_set_event_cb(st, ann_cb, &r);
	while (!w.done && steps++ < 1000) {
		unsigned int n = pc_store_announce(st, CI_CTRL, &w, 7);

		CU_ASSERT(n <= 7);
		sent += n;
	}
	CU_ASSERT_TRUE(w.done);
	CU_ASSERT_TRUE(r.ok);
	CU_ASSERT_EQUAL(sent, 200);
	CU_ASSERT_EQUAL(r.n, 200);
	for (uint32_t id = 0; id < 300; id++) {
		unsigned int hits = 0;

		for (unsigned int i = 0; i < r.n && i < PC_ARRAY_SIZE(r.off); i++) {
			hits += r.off[i] == offs[id];
		}
		CU_ASSERT_EQUAL(hits, id % 3 == 0 ? 0u : 1u);
		matched += hits;
	}
	CU_ASSERT_EQUAL(matched, 200);
	/* A finished walk stays finished. */
	CU_ASSERT_EQUAL(pc_store_announce(st, CI_CTRL, &w, 7), 0);
	pc_store_destroy(st);
}

/* The serving side of a remote read: by offset and generation, never trusting either. */
static void
test_pin_at(void)
{
	struct pc_store *st = store_new(false);
	struct pc_store_loc loc, loc2;
	struct pc_store_stats s;
	struct pc_store_key k;
	uint64_t off, gen;

	mkkey(&k, "pin", 1);
	CU_ASSERT_EQUAL_FATAL(set_page(st, CI_W0, &k, 1, 9000, 0, &off), 0);
	gen = seg_hdr(st, off)->generation;
	CU_ASSERT_EQUAL(pc_store_pin_at(st, CI_W0, off, gen, &loc), 0);
	CU_ASSERT_EQUAL(loc.off, off);
	CU_ASSERT_EQUAL(loc.len, 9000);
	CU_ASSERT_EQUAL(loc.generation, gen);
	CU_ASSERT_EQUAL(pc_store_pin_at(st, CI_W0, off, gen, &loc2), 0); /* two readers */
	pc_store_get_stats(st, &s);
	CU_ASSERT_EQUAL(s.pinned, 2);
	/* Wrong generation, an offset inside the page, past the segment, never a slot. */
	CU_ASSERT_EQUAL(pc_store_pin_at(st, CI_W0, off, gen + 1, &loc2), -ESTALE);
	CU_ASSERT_PTR_NULL(loc2.slot);
	CU_ASSERT_EQUAL(pc_store_pin_at(st, CI_W0, off + 64, gen, &loc2), -EINVAL);
	CU_ASSERT_EQUAL(pc_store_pin_at(st, CI_W0, UINT64_MAX - 3, gen, &loc2), -EINVAL);
	CU_ASSERT_EQUAL(pc_store_pin_at(st, CI_W0, pc_store_segment_size(st), gen, &loc2), -EINVAL);
	CU_ASSERT_EQUAL(pc_store_pin_at(st, 99, off, gen, &loc2), -EINVAL);
	/* Deleted while pinned: still readable by the pin holders, not pinnable again. */
	CU_ASSERT_EQUAL(pc_store_delete(st, CI_W0, &k), 0);
	CU_ASSERT_EQUAL(pc_store_pin_at(st, CI_W0, off, gen, &loc2), -ENOENT);
	CU_ASSERT_EQUAL(pc_page_check(seg_hdr(st, off), seg_payload(st, off), 9000, k.digest, gen,
				      9000, false),
			0);
	pc_store_unpin_bulk(st, CI_W0, &loc, 1);
	{
		struct pc_store_loc again;

		CU_ASSERT_EQUAL(pc_store_pin_at(st, CI_W0, off, gen, &again), -ENOENT);
	}
	pc_store_get_stats(st, &s);
	CU_ASSERT_EQUAL(s.pinned, 1);
	pc_store_destroy(st);
}

static void
test_quarantine(void)
{
	struct pc_store *st = store_new(false);
	struct pc_store_loc *locs = calloc(MAX_PAGES, sizeof(*locs));
	const uint32_t len = 60000;
	struct pc_store_stats s;
	struct pc_store_key k;
	uint64_t off, gen;
	unsigned int n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(locs);
	mkkey(&k, "q", 1);
	CU_ASSERT_EQUAL(set_page(st, CI_W0, &k, 1, len, 0, &off), 0);
	gen = seg_hdr(st, off)->generation;
	CU_ASSERT_EQUAL(pc_store_delete(st, CI_W0, &k), 0);
	CU_ASSERT_EQUAL(pc_store_delete(st, CI_W0, &k), -ENOENT);
	CU_ASSERT_EQUAL(get_page(st, CI_W0, &k, 1, len), -ENOENT);
	/* A reader holding the old location sees an invalid page, never another. */
	CU_ASSERT_NOT_EQUAL(pc_page_check(seg_hdr(st, off), seg_payload(st, off), len, k.digest,
					  gen, len, false),
			    0);
	pc_store_poll(st, CI_W0, T0); /* stamps the quarantine */
	pc_store_get_stats(st, &s);
	CU_ASSERT_EQUAL(s.quarantined, 1);
	CU_ASSERT_EQUAL(s.deletes, 1);

	/* Every other slot of the segment goes before this one. */
	n = alloc_all(st, CI_W0, len, 100, locs, MAX_PAGES);
	CU_ASSERT(n > 100);
	CU_ASSERT_FALSE(has_off(locs, n, off));
	abort_all(st, CI_W0, locs, n);
	pc_store_poll(st, CI_W0, T0 + qtsc() - 1);
	pc_store_get_stats(st, &s);
	CU_ASSERT_EQUAL(s.quarantined, 1);
	n = alloc_all(st, CI_W0, len, 100, locs, MAX_PAGES);
	CU_ASSERT_FALSE(has_off(locs, n, off));
	abort_all(st, CI_W0, locs, n);

	/* Time is up: the slot is back. */
	pc_store_poll(st, CI_W0, T0 + qtsc());
	pc_store_get_stats(st, &s);
	CU_ASSERT_EQUAL(s.quarantined, 0);
	n = alloc_all(st, CI_W0, len, 100, locs, MAX_PAGES);
	CU_ASSERT(has_off(locs, n, off));
	abort_all(st, CI_W0, locs, n);
	free(locs);
	pc_store_destroy(st);
}

static void
test_pinned_survives(void)
{
	struct pc_store *st = store_new(true);
	struct pc_store_loc *locs = calloc(MAX_PAGES, sizeof(*locs));
	const struct pc_store_key *keys[1];
	const uint32_t len = 60000;
	struct pc_store_stats s;
	struct pc_store_key k, kp;
	struct pc_store_loc pin;
	unsigned int n;
	int rc = -1;

	CU_ASSERT_PTR_NOT_NULL_FATAL(locs);
	/* Deleted while pinned: unpublished at once, bytes intact until the unpin. */
	mkkey(&k, "pin", 1);
	CU_ASSERT_EQUAL(set_page(st, CI_W0, &k, 1, len, 0, NULL), 0);
	keys[0] = &k;
	CU_ASSERT_EQUAL_FATAL(pc_store_lookup_pin_burst(st, CI_W1, keys, 1, &pin, &rc), 1);
	CU_ASSERT_EQUAL(pc_store_delete(st, CI_W0, &k), 0);
	CU_ASSERT_FALSE(exists1(st, &k));
	CU_ASSERT_EQUAL(get_page(st, CI_W0, &k, 1, len), -ENOENT);
	pc_store_get_stats(st, &s);
	CU_ASSERT_EQUAL(s.pinned, 1);
	CU_ASSERT_EQUAL(s.quarantined, 0);
	poll_all(st, T0);
	poll_all(st, T0 + 100 * qtsc());
	n = alloc_all(st, CI_W0, len, 100, locs, MAX_PAGES);
	CU_ASSERT(n > 100);
	CU_ASSERT_FALSE(has_off(locs, n, pin.off));
	abort_all(st, CI_W0, locs, n);
	CU_ASSERT_EQUAL(pc_page_check(seg_hdr(st, pin.off), seg_payload(st, pin.off), len, k.digest,
				      pin.generation, len, true),
			0);
	CU_ASSERT(pattern_ok(seg_payload(st, pin.off), len, 1));
	pc_store_unpin_bulk(st, CI_W1, &pin, 1);
	pc_store_get_stats(st, &s);
	CU_ASSERT_EQUAL(s.pinned, 0);
	CU_ASSERT_EQUAL(s.quarantined, 1); /* retired by the last unpin, on its lcore */
	CU_ASSERT_NOT_EQUAL(seg_hdr(st, pin.off)->magic, PC_PAGE_MAGIC);

	/* Pinned through a full segment and many evictions: never evicted. */
	mkkey(&kp, "pin", 2);
	CU_ASSERT_EQUAL(set_page(st, CI_W0, &kp, 2, len, 0, NULL), 0);
	keys[0] = &kp;
	CU_ASSERT_EQUAL_FATAL(pc_store_lookup_pin_burst(st, CI_W1, keys, 1, &pin, &rc), 1);
	for (unsigned int round = 0; round < 6; round++) {
		uint64_t now = T0 + (round + 1) * 10 * qtsc();
		struct pc_store_key kf;

		for (uint32_t i = 0; i < 400; i++) {
			mkkey(&kf, "fill", round * 1000 + i);
			if (set_page(st, CI_W0, &kf, round * 1000 + i, len, 5, NULL) == -ENOSPC) {
				break;
			}
		}
		pc_store_evict_poll(st, CI_CTRL, now);
		poll_all(st, now);
		poll_all(st, now + 2 * qtsc());
	}
	pc_store_get_stats(st, &s);
	CU_ASSERT(s.evictions > 0);
	CU_ASSERT(exists1(st, &kp));
	CU_ASSERT(pattern_ok(seg_payload(st, pin.off), len, 2));
	pc_store_unpin_bulk(st, CI_W1, &pin, 1);
	CU_ASSERT_EQUAL(get_page(st, CI_W0, &kp, 2, len), 0);
	free(locs);
	pc_store_destroy(st);
}

/* ---- CLOCK ---- */

/* Fill the segment with pages of len; returns the count, keys in ks (ids 0..n-1), depth(i). */
static unsigned int
fill_segment(struct pc_store *st, struct pc_store_key *ks, unsigned int max, uint32_t len,
	     uint32_t (*depth)(uint32_t))
{
	unsigned int n = 0;

	while (n < max) {
		mkkey(&ks[n], "clock", n);
		if (set_page(st, CI_W0, &ks[n], n, len, depth(n), NULL) != 0) {
			break;
		}
		n++;
	}
	return n;
}

static uint32_t
depth_scrambled(uint32_t i)
{
	return (i * 7u) % 31u;
}

static void
test_clock_order(void)
{
	struct pc_store *st = store_new(false);
	struct pc_store_key ks[64];
	const uint32_t len = 500000; /* ~30 pages in 16 MiB: one sweep sees them all */
	bool hot[64], gone[64];
	uint32_t min_gone = UINT32_MAX, max_kept_cold = 0;
	unsigned int n, ngone = 0, nhot = 0;

	n = fill_segment(st, ks, PC_ARRAY_SIZE(ks), len, depth_scrambled);
	CU_ASSERT_FATAL(n >= 20 && n < PC_ARRAY_SIZE(ks));
	for (unsigned int i = 0; i < n; i++) {
		hot[i] = i % 4 == 0;
		if (hot[i]) {
			CU_ASSERT_EQUAL(get_page(st, CI_W1, &ks[i], i, len), 0);
			nhot++;
		}
	}
	CU_ASSERT(pc_store_evict_poll(st, CI_CTRL, T0) > 0);
	for (unsigned int i = 0; i < n; i++) {
		gone[i] = !exists1(st, &ks[i]);
		ngone += gone[i];
		if (gone[i]) {
			CU_ASSERT_FALSE(hot[i]);
			min_gone = PC_MIN(min_gone, depth_scrambled(i));
		} else if (!hot[i]) {
			max_kept_cold = PC_MAX(max_kept_cold, depth_scrambled(i));
		}
	}
	CU_ASSERT(ngone > 0);
	CU_ASSERT(ngone <= n - nhot);
	if (ngone < n - nhot) {
		CU_ASSERT(min_gone >= max_kept_cold);
	}
	/* Evicted keys are misses, survivors read back intact. */
	for (unsigned int i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(get_page(st, CI_W1, &ks[i], i, len), gone[i] ? -ENOENT : 0);
	}
	pc_store_destroy(st);
}

static uint32_t
depth_zero(uint32_t i)
{
	(void)i;
	return 0;
}

static void
test_exists_no_ref(void)
{
	struct pc_store *st = store_new(false);
	struct pc_store_key ks[64];
	const struct pc_store_key *keys[64];
	bool present[64];
	const uint32_t len = 500000;
	struct pc_store_stats s;
	unsigned int n, lost_got = 0, lost_probed = 0;

	n = fill_segment(st, ks, PC_ARRAY_SIZE(ks), len, depth_zero);
	CU_ASSERT_FATAL(n >= 20);
	for (unsigned int i = 0; i < n; i++) {
		keys[i] = &ks[i];
	}
	for (int r = 0; r < 5; r++) {
		CU_ASSERT_EQUAL(pc_store_exists_burst(st, keys, n, present), n);
	}
	for (unsigned int i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(__atomic_load_n(&slot_of(st, &ks[i])->clock_ref, __ATOMIC_RELAXED),
				0);
	}
	/* Read the even pages; only those are referenced. */
	for (unsigned int i = 0; i < n; i += 2) {
		CU_ASSERT_EQUAL(get_page(st, CI_W1, &ks[i], i, len), 0);
		CU_ASSERT_EQUAL(slot_of(st, &ks[i])->clock_ref, 1);
	}
	CU_ASSERT(pc_store_evict_poll(st, CI_CTRL, T0) > 0);
	CU_ASSERT_EQUAL(pc_store_exists_burst(st, keys, n, present) < n, true);
	for (unsigned int i = 0; i < n; i++) {
		if (!present[i]) {
			if (i % 2 == 0) {
				lost_got++;
			} else {
				lost_probed++;
			}
		}
	}
	CU_ASSERT_EQUAL(lost_got, 0);
	CU_ASSERT(lost_probed > 0);
	pc_store_get_stats(st, &s);
	CU_ASSERT_EQUAL(s.exists_keys, 6ull * n);
	CU_ASSERT_EQUAL(s.evictions, lost_probed);
	pc_store_destroy(st);
}

/* ---- full segment ---- */

/* One control pass after a failed SET: evict, then let the quarantine run out. */
static void
recover(struct pc_store *st, uint64_t *now)
{
	pc_store_evict_poll(st, CI_CTRL, *now);
	poll_all(st, *now);
	*now += 2 * qtsc();
	poll_all(st, *now);
}

static void
test_full_segment(void)
{
	struct pc_store *st = store_new(true);
	const uint32_t len = 65536;
	const uint32_t total = 1200; /* about 5 segments' worth */
	struct pc_store_stats s;
	struct pc_store_key k;
	uint64_t now = T0;
	unsigned int hits = 0, misses = 0, failed_rounds = 0;

	for (uint32_t i = 0; i < total; i++) {
		int rc;

		mkkey(&k, "full", i);
		rc = set_page(st, CI_W0, &k, i, len, i % 4, NULL);
		for (int tries = 0; rc == -ENOSPC && tries < 8; tries++) {
			recover(st, &now);
			rc = set_page(st, CI_W0, &k, i, len, i % 4, NULL);
		}
		CU_ASSERT_EQUAL(rc, 0);
		if (rc != 0) {
			failed_rounds++;
		}
		/* The control lcore's regular passes. */
		/*
		 * The control lcore's regular passes; a quarantine period is 4
		 * SETs here, less than the low watermark: see pc_store_evict_poll.
		 */
		pc_store_evict_poll(st, CI_CTRL, now);
		now += qtsc() / 4;
		poll_all(st, now);
	}
	CU_ASSERT_EQUAL(failed_rounds, 0);
	for (uint32_t i = 0; i < total; i++) {
		int rc;

		mkkey(&k, "full", i);
		rc = get_page(st, CI_W1, &k, i, len);
		hits += rc == 0;
		misses += rc == -ENOENT;
	}
	pc_store_get_stats(st, &s);
	CU_ASSERT(hits > 100);
	CU_ASSERT(misses > 0);
	CU_ASSERT_EQUAL(hits + misses, total);
	CU_ASSERT(s.evictions >= misses);
	/* The watermark evicts ahead: failures only while the store learns its waste. */
	CU_ASSERT(s.set_nospace <= 2);
	CU_ASSERT_EQUAL(s.get_bad_header, 0);
	CU_ASSERT_EQUAL(s.pages, hits);
	pc_store_destroy(st);
}

static void
test_new_size_after_full(void)
{
	struct pc_store *st = store_new(false);
	struct pc_store_key k;
	struct pc_store_stats s;
	const uint32_t small = 65536;
	const uint32_t nbig = 40; /* 40 MiB through a 16 MiB segment */
	uint64_t now = T0;
	unsigned int nsmall = 0, big_ok = 0, big_hits = 0, small_hits = 0;

	while (nsmall < MAX_PAGES) {
		mkkey(&k, "small", nsmall);
		if (set_page(st, CI_W0, &k, nsmall, small, 0, NULL) != 0) {
			break;
		}
		nsmall++;
	}
	CU_ASSERT_FATAL(nsmall > 100);

	/*
	 * The workload moves to a new, bigger size: its class has no span and
	 * every chunk is taken. Failed SETs make the control lcore move memory
	 * to it; a SET retried after a control pass or a few succeeds.
	 */
	for (uint32_t i = 0; i < nbig; i++) {
		int rc;

		mkkey(&k, "big", i);
		rc = set_page(st, CI_W1, &k, 100000 + i, BIG_PAYLOAD, 0, NULL);
		for (int tries = 0; rc == -ENOSPC && tries < 8; tries++) {
			recover(st, &now);
			rc = set_page(st, CI_W1, &k, 100000 + i, BIG_PAYLOAD, 0, NULL);
		}
		CU_ASSERT_EQUAL(rc, 0);
		big_ok += rc == 0;
		CU_ASSERT_EQUAL(get_page(st, CI_W0, &k, 100000 + i, BIG_PAYLOAD), 0);
	}
	CU_ASSERT_EQUAL(big_ok, nbig);
	for (uint32_t i = 0; i < nbig; i++) {
		int rc;

		mkkey(&k, "big", i);
		rc = get_page(st, CI_W0, &k, 100000 + i, BIG_PAYLOAD);
		big_hits += rc == 0;
	}
	for (uint32_t i = 0; i < nsmall; i++) {
		mkkey(&k, "small", i);
		small_hits += get_page(st, CI_W0, &k, i, small) == 0;
	}
	/* The new size got a real share of the segment, at the old size's expense. */
	CU_ASSERT(big_hits >= 4);
	CU_ASSERT(small_hits < nsmall - 4 * 16);
	pc_store_get_stats(st, &s);
	CU_ASSERT_EQUAL(s.pages, small_hits + big_hits);
	CU_ASSERT_EQUAL(s.get_bad_header, 0);
	printf("\n    new size: %u of %u big pages, %u of %u small pages left ", big_hits, nbig,
	       small_hits, nsmall);
	pc_store_destroy(st);
}

/* ---- namespaces ---- */

static void
test_clear_ns(void)
{
	static const char *const nss[] = {"a", "ab", "b", ""};
	struct pc_store *st = store_new(false);
	const struct pc_store_key *keys[1];
	struct pc_store_key k;
	struct pc_store_loc pin;
	int rc;

	for (unsigned int n = 0; n < PC_ARRAY_SIZE(nss); n++) {
		for (uint32_t i = 0; i < 10; i++) {
			mkkey(&k, nss[n], i);
			CU_ASSERT_EQUAL(
				set_page(st, CI_W0, &k, n * 100 + i, 3000 + i * 5000, 0, NULL), 0);
		}
	}
	mkkey(&k, "a", 3);
	keys[0] = &k;
	CU_ASSERT_EQUAL_FATAL(pc_store_lookup_pin_burst(st, CI_W1, keys, 1, &pin, &rc), 1);

	CU_ASSERT_EQUAL(pc_store_clear_ns(st, CI_CTRL, "a", 1), 10);
	CU_ASSERT_EQUAL(pc_store_clear_ns(st, CI_CTRL, "a", 1), 0);
	for (unsigned int n = 0; n < PC_ARRAY_SIZE(nss); n++) {
		for (uint32_t i = 0; i < 10; i++) {
			mkkey(&k, nss[n], i);
			CU_ASSERT_EQUAL(exists1(st, &k), n != 0);
			CU_ASSERT_EQUAL(get_page(st, CI_W0, &k, n * 100 + i, 3000 + i * 5000),
					n != 0 ? 0 : -ENOENT);
		}
	}
	/* The pinned page of "a" is gone from the index but intact for its reader. */
	CU_ASSERT(pattern_ok(seg_payload(st, pin.off), 3000 + 3 * 5000, 3));
	pc_store_unpin_bulk(st, CI_W1, &pin, 1);
	CU_ASSERT_EQUAL(pc_store_clear_ns(st, CI_CTRL, "", 0), 10);
	mkkey(&k, "b", 0);
	CU_ASSERT(exists1(st, &k));
	pc_store_destroy(st);
}

/* ---- two workers and the evictor ---- */

#define RACE_KEYS 600
#define RACE_OPS  20000
#define RACE_Q_US 50

struct race {
	struct pc_store *st;
	atomic_uint done;
	atomic_ulong wrong;
	atomic_ulong hits;
	atomic_ulong sets;
	atomic_ulong fails;
};

struct race_arg {
	struct race *r;
	unsigned int ci;
};

static uint32_t
race_len(uint32_t id)
{
	static const uint32_t lens[] = {3000, 4096, 20000, 65536, 150000};

	return lens[id % PC_ARRAY_SIZE(lens)];
}

static void *
race_worker(void *arg)
{
	struct race_arg *a = arg;
	struct race *r = a->r;
	struct pc_store *st = r->st;
	uint64_t seed = 0x1234567ull + a->ci * 977;
	unsigned long wrong = 0, hits = 0, sets = 0;

	if (rte_thread_register() != 0 || pc_store_reader_register(st, a->ci) != 0) {
		r->fails++;
		r->done++;
		return NULL;
	}
	for (unsigned int op = 0; op < RACE_OPS; op++) {
		struct pc_store_key ks[4];
		const struct pc_store_key *keys[4];
		struct pc_store_loc locs[4];
		bool present[4];
		int rcs[4];
		uint32_t id, len;
		unsigned int got, what;

		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		id = (uint32_t)(seed >> 33) % RACE_KEYS;
		what = (uint32_t)(seed >> 20) % 10;
		len = race_len(id);
		for (int i = 0; i < 4; i++) {
			char key[16];
			int kl = snprintf(key, sizeof(key), "k%u", (id + (uint32_t)i) % RACE_KEYS);

			pc_store_key_init(&ks[i], "race", 4, key, (size_t)kl);
			keys[i] = &ks[i];
		}
		if (what < 4) {
			struct pc_store_loc loc;
			int rc = pc_store_alloc(st, a->ci, &ks[0], len, id % 8, &loc);

			if (rc == 0) {
				pattern(seg_payload(st, loc.off), len, id);
				if ((seed & 0xF00) == 0) {
					pc_store_abort(st, a->ci, &loc);
				} else {
					rc = pc_store_commit(st, a->ci, &loc);
					sets += rc == 0;
				}
			}
		} else if (what < 8) {
			got = pc_store_lookup_pin_burst(st, a->ci, keys, 4, locs, rcs);
			for (int i = 0; i < 4; i++) {
				uint32_t kid = (id + (uint32_t)i) % RACE_KEYS;

				if (rcs[i] != 0) {
					continue;
				}
				hits++;
				if (locs[i].len != race_len(kid) ||
				    pc_page_check(seg_hdr(st, locs[i].off),
						  seg_payload(st, locs[i].off), locs[i].len,
						  ks[i].digest, locs[i].generation, locs[i].len,
						  false) != 0 ||
				    !pattern_ok(seg_payload(st, locs[i].off), locs[i].len, kid)) {
					wrong++;
				}
			}
			(void)got;
			pc_store_unpin_bulk(st, a->ci, locs, 4);
		} else if (what == 8) {
			pc_store_exists_burst(st, keys, 4, present);
		} else {
			pc_store_delete(st, a->ci, &ks[0]);
		}
		pc_store_poll(st, a->ci, rte_rdtsc());
	}
	r->wrong += wrong;
	r->hits += hits;
	r->sets += sets;
	pc_store_reader_unregister(st, a->ci);
	rte_thread_unregister();
	r->done++;
	return NULL;
}

static void
test_two_workers(void)
{
	struct pc_store_opts o = {
		.name = "race",
		.segment_size = SEG_SIZE,
		.nb_caches = NB_CACHES,
		.quarantine_us = RACE_Q_US,
		.page_crc = true,
	};
	struct race r = {0};
	struct race_arg args[2] = {{&r, CI_W0}, {&r, CI_W1}};
	pthread_t th[2];
	struct pc_store_stats s;
	unsigned long passes = 0;

	r.st = pc_store_create(&o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r.st);
	CU_ASSERT_EQUAL_FATAL(pc_store_reader_register(r.st, CI_CTRL), 0);
	for (int i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, race_worker, &args[i]), 0);
	}
	while (atomic_load(&r.done) < 2) {
		uint64_t now = rte_rdtsc();

		pc_store_evict_poll(r.st, CI_CTRL, now);
		pc_store_poll(r.st, CI_CTRL, now);
		passes++;
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
	}
	pc_store_get_stats(r.st, &s);
	CU_ASSERT_EQUAL(atomic_load(&r.fails), 0);
	CU_ASSERT_EQUAL(atomic_load(&r.wrong), 0);
	CU_ASSERT(atomic_load(&r.hits) > 0);
	CU_ASSERT(atomic_load(&r.sets) > 0);
	CU_ASSERT_EQUAL(s.get_bad_header, 0);
	CU_ASSERT_EQUAL(s.pinned, 0);
	CU_ASSERT(passes > 0);
	printf("\n    race: %lu hits, %lu sets, %" PRIu64 " evictions, %" PRIu64
	       " deletes, %" PRIu64 " dedup, %" PRIu64 " nospace ",
	       atomic_load(&r.hits), atomic_load(&r.sets), s.evictions, s.deletes, s.set_dedup,
	       s.set_nospace);
	pc_store_destroy(r.st);
}

/* ---- landing slots for remote GETs ---- */

/* Write a page of key k, payload pattern(id), generation gen into the slot at off: a landed READ.
 */
static void
land(struct pc_store *st, uint64_t off, const struct pc_store_key *k, uint32_t id, uint32_t len,
     uint64_t gen)
{
	pattern(seg_payload(st, off), len, id);
	CU_ASSERT_EQUAL_FATAL(pc_page_publish(seg_hdr(st, off), k->digest, gen, len, true), 0);
	CU_ASSERT_EQUAL_FATAL(pc_page_check(seg_hdr(st, off), seg_payload(st, off), len, k->digest,
					    gen, len, true),
			      0);
}

/* Events and announced offsets, for the staging tests. */
struct stage_ev {
	unsigned int n;
	uint64_t off[8];
};

static void
stage_ev_cb(void *arg, unsigned int ci, bool published, const struct pc_store_event *ev)
{
	struct stage_ev *r = arg;

	(void)ci;
	(void)published;
	if (r->n < PC_ARRAY_SIZE(r->off)) {
		r->off[r->n] = ev->off;
	}
	r->n++;
}

/*
 * A landing slot is nobody's page: a GET, an EXISTS, a remote pin_at, the
 * directory's events and an announce walk never see it, even holding a
 * valid page; it is counted, and unstage gives the memory back.
 */
static void
test_stage_invisible(void)
{
	struct pc_store *st = store_new(true);
	struct stage_ev ev = {0};
	struct pc_store_walk w = {0};
	struct pc_store_stats s0, s;
	struct pc_store_key k;
	struct pc_store_loc loc, pin;
	uint64_t off_pub;
	unsigned int steps = 0;

	pc_store_set_event_cb(st, stage_ev_cb, &ev);
	mkkey(&k, "stg", 1);
	CU_ASSERT_EQUAL_FATAL(set_page(st, CI_W0, &k, 1, 5000, 0, &off_pub), 0);
	CU_ASSERT_EQUAL(ev.n, 1);
	mkkey(&k, "stg", 2);
	pc_store_get_stats(st, &s0);
	CU_ASSERT_EQUAL(s0.staged, 0);
	CU_ASSERT_EQUAL(s0.staged_now, 0);

	CU_ASSERT_EQUAL_FATAL(pc_store_stage(st, CI_W1, &k, 8000, &loc), 0);
	CU_ASSERT_PTR_NOT_NULL(loc.slot);
	CU_ASSERT_EQUAL(loc.len, 8000);
	CU_ASSERT_NOT_EQUAL(loc.off, off_pub);
	/* The owner's page lands: a valid header for k, another node's generation. */
	land(st, loc.off, &k, 2, 8000, 4242);
	CU_ASSERT_EQUAL(get_page(st, CI_W0, &k, 2, 8000), -ENOENT);
	CU_ASSERT_FALSE(exists1(st, &k));
	CU_ASSERT_EQUAL(pc_store_pin_at(st, CI_W0, loc.off, loc.generation, &pin), -ENOENT);
	CU_ASSERT_EQUAL(pc_store_pin_at(st, CI_W0, loc.off, 4242, &pin), -ENOENT);
	CU_ASSERT_PTR_NULL(pin.slot);
	CU_ASSERT_EQUAL(ev.n, 1); /* no event for a landing slot */
	while (!w.done && steps++ < 1000) {
		pc_store_announce(st, CI_CTRL, &w, 16);
	}
	CU_ASSERT_TRUE(w.done);
	CU_ASSERT_EQUAL_FATAL(ev.n, 2); /* the published page, announced once; not the slot */
	CU_ASSERT_EQUAL(ev.off[1], off_pub);

	pc_store_get_stats(st, &s);
	CU_ASSERT_EQUAL(s.staged, 1);
	CU_ASSERT_EQUAL(s.staged_now, 1);
	CU_ASSERT_EQUAL(s.pages, 1);
	CU_ASSERT_EQUAL(s.sets, 1);
	CU_ASSERT_EQUAL(s.bytes_used, s0.bytes_used);
	CU_ASSERT(s.bytes_free < s0.bytes_free);

	/* Given back: the header that was valid is gone, the memory is free again. */
	pc_store_unstage(st, CI_W1, &loc);
	CU_ASSERT_PTR_NULL(loc.slot);
	CU_ASSERT_NOT_EQUAL(seg_hdr(st, loc.off)->magic, PC_PAGE_MAGIC);
	CU_ASSERT_NOT_EQUAL(pc_page_check(seg_hdr(st, loc.off), seg_payload(st, loc.off), 8000,
					  k.digest, 4242, 8000, false),
			    0);
	pc_store_get_stats(st, &s);
	CU_ASSERT_EQUAL(s.staged, 1);
	CU_ASSERT_EQUAL(s.staged_now, 0);
	CU_ASSERT_EQUAL(s.bytes_free, s0.bytes_free);
	CU_ASSERT_EQUAL(s.set_aborted, 0);
	CU_ASSERT_EQUAL(s.quarantined, 0);
	CU_ASSERT_EQUAL(get_page(st, CI_W0, &k, 2, 8000), -ENOENT);
	pc_store_destroy(st);
}

/* A landing slot for a key published here meanwhile: no dedup, the published page untouched. */
static void
test_stage_published_key(void)
{
	struct pc_store *st = store_new(true);
	struct pc_store_stats s;
	struct pc_store_key k;
	struct pc_store_loc a, b;
	uint64_t off_pub;

	mkkey(&k, "stg", 7);
	CU_ASSERT_EQUAL_FATAL(set_page(st, CI_W0, &k, 7, 5000, 0, &off_pub), 0);
	CU_ASSERT_EQUAL_FATAL(pc_store_stage(st, CI_W0, &k, 5000, &a), 0);
	CU_ASSERT_NOT_EQUAL(a.off, off_pub);
	/* Twice, even: two reads of one key in flight. */
	CU_ASSERT_EQUAL_FATAL(pc_store_stage(st, CI_W1, &k, 5000, &b), 0);
	CU_ASSERT_NOT_EQUAL(b.off, a.off);
	CU_ASSERT_NOT_EQUAL(b.off, off_pub);
	/* Different bytes land in one: the published page still reads as itself. */
	land(st, a.off, &k, 99, 5000, 1234);
	CU_ASSERT_EQUAL(get_page(st, CI_W0, &k, 7, 5000), 0);
	pc_store_get_stats(st, &s);
	CU_ASSERT_EQUAL(s.set_dedup, 0);
	CU_ASSERT_EQUAL(s.staged, 2);
	CU_ASSERT_EQUAL(s.staged_now, 2);
	CU_ASSERT_EQUAL(s.pages, 1);
	pc_store_unstage(st, CI_W0, &a);
	pc_store_unstage(st, CI_W1, &b);
	CU_ASSERT_EQUAL(get_page(st, CI_W0, &k, 7, 5000), 0);
	/* Deleting the published key leaves nothing behind: the slots were never indexed. */
	CU_ASSERT_EQUAL(pc_store_delete(st, CI_W0, &k), 0);
	CU_ASSERT_EQUAL(pc_store_delete(st, CI_W0, &k), -ENOENT);
	pc_store_get_stats(st, &s);
	CU_ASSERT_EQUAL(s.staged_now, 0);
	CU_ASSERT_EQUAL(s.pages, 0);
	pc_store_destroy(st);
}

/* Unstage of a consumed location, or a stale copy of one whose slot was handed out again: a no-op.
 */
static void
test_unstage_consumed(void)
{
	struct pc_store *st = store_new(false);
	struct pc_store_stats s0, s;
	struct pc_store_key k;
	struct pc_store_loc loc, copy, again;

	mkkey(&k, "stg", 3);
	pc_store_get_stats(st, &s0);
	CU_ASSERT_EQUAL_FATAL(pc_store_stage(st, CI_W0, &k, 9000, &loc), 0);
	copy = loc;
	pc_store_unstage(st, CI_W0, &loc);
	pc_store_unstage(st, CI_W0, &loc); /* consumed: slot NULL */
	pc_store_get_stats(st, &s);
	CU_ASSERT_EQUAL(s.staged_now, 0);
	CU_ASSERT_EQUAL(s.bytes_free, s0.bytes_free);
	/* Not quarantined: the slot is the next one handed out on this lcore. */
	CU_ASSERT_EQUAL_FATAL(pc_store_stage(st, CI_W0, &k, 9000, &again), 0);
	CU_ASSERT_EQUAL_FATAL(again.off, copy.off); /* the test means a reused slot */
	CU_ASSERT_NOT_EQUAL(again.generation, copy.generation);
	land(st, again.off, &k, 3, 9000, 77);
	pc_store_unstage(st, CI_W0, &copy); /* the old copy must not free the new landing */
	pc_store_get_stats(st, &s);
	CU_ASSERT_EQUAL(s.staged_now, 1);
	CU_ASSERT(s.bytes_free < s0.bytes_free);
	CU_ASSERT_EQUAL(seg_hdr(st, again.off)->magic, PC_PAGE_MAGIC);
	CU_ASSERT(pattern_ok(seg_payload(st, again.off), 9000, 3));
	/* A SET's allocation does not take it either. */
	{
		struct pc_store_key k2;
		struct pc_store_loc other;

		mkkey(&k2, "stg", 4);
		CU_ASSERT_EQUAL_FATAL(pc_store_alloc(st, CI_W0, &k2, 9000, 0, &other), 0);
		CU_ASSERT_NOT_EQUAL(other.off, again.off);
		pc_store_abort(st, CI_W0, &other);
	}
	pc_store_unstage(st, CI_W0, &again);
	pc_store_get_stats(st, &s);
	CU_ASSERT_EQUAL(s.staged, 2);
	CU_ASSERT_EQUAL(s.staged_now, 0);
	CU_ASSERT_EQUAL(s.bytes_free, s0.bytes_free);
	/* Bad arguments: nothing happens. */
	pc_store_unstage(NULL, CI_W0, &again);
	pc_store_unstage(st, NB_CACHES, &again);
	pc_store_unstage(st, CI_W0, NULL);
	pc_store_destroy(st);
}

/* Landing slots and SET allocations are not mixed up: commit, abort and unstage keep apart. */
static void
test_stage_vs_set_calls(void)
{
	struct pc_store *st = store_new(false);
	struct pc_store_stats s0, s;
	struct pc_store_key k, k2;
	struct pc_store_loc landing, set, keep;

	mkkey(&k, "stg", 11);
	mkkey(&k2, "stg", 12);
	pc_store_get_stats(st, &s0);
	CU_ASSERT_EQUAL_FATAL(pc_store_stage(st, CI_W0, &k, 6000, &landing), 0);
	land(st, landing.off, &k, 11, 6000, 5);
	keep = landing;
	/* Never published, even holding a valid header: */
	CU_ASSERT_EQUAL(pc_store_commit(st, CI_W0, &landing), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(landing.slot); /* refused, not consumed */
	CU_ASSERT_EQUAL(get_page(st, CI_W0, &k, 11, 6000), -ENOENT);
	/* abort of a landing slot gives it back as one (not a SET aborted). */
	pc_store_abort(st, CI_W0, &landing);
	CU_ASSERT_PTR_NULL(landing.slot);
	pc_store_get_stats(st, &s);
	CU_ASSERT_EQUAL(s.staged_now, 0);
	CU_ASSERT_EQUAL(s.set_aborted, s0.set_aborted);
	CU_ASSERT_EQUAL(s.bytes_free, s0.bytes_free);
	CU_ASSERT_NOT_EQUAL(seg_hdr(st, keep.off)->magic, PC_PAGE_MAGIC);
	/* unstage of a SET's allocation leaves it: the SET still commits. */
	CU_ASSERT_EQUAL_FATAL(pc_store_alloc(st, CI_W0, &k2, 6000, 3, &set), 0);
	pc_store_unstage(st, CI_W0, &set);
	CU_ASSERT_PTR_NOT_NULL_FATAL(set.slot);
	pc_store_get_stats(st, &s);
	CU_ASSERT_EQUAL(s.staged_now, 0);
	pattern(seg_payload(st, set.off), 6000, 12);
	CU_ASSERT_EQUAL(pc_store_commit(st, CI_W0, &set), 0);
	CU_ASSERT_EQUAL(get_page(st, CI_W0, &k2, 12, 6000), 0);
	pc_store_destroy(st);
}

static void
test_stage_errors(void)
{
	struct pc_store *st = store_new(false);
	struct pc_store_key k;
	struct pc_store_key empty = {.len = 0};
	struct pc_store_loc loc;
	struct pc_store_stats s;

	mkkey(&k, "stg", 5);
	CU_ASSERT_EQUAL(pc_store_stage(st, CI_W0, &k, 0, &loc), -EMSGSIZE);
	CU_ASSERT_EQUAL(pc_store_stage(st, CI_W0, &k, PC_PAGE_PAYLOAD_MAX + 1, &loc), -EMSGSIZE);
	CU_ASSERT_EQUAL(pc_store_stage(st, NB_CACHES, &k, 10, &loc), -EINVAL);
	CU_ASSERT_EQUAL(pc_store_stage(st, CI_W0, &empty, 10, &loc), -EINVAL);
	CU_ASSERT_EQUAL(pc_store_stage(st, CI_W0, NULL, 10, &loc), -EINVAL);
	CU_ASSERT_EQUAL(pc_store_stage(NULL, CI_W0, &k, 10, &loc), -EINVAL);
	/* Bigger than the segment: no room, never a crash. */
	CU_ASSERT_EQUAL(pc_store_stage(st, CI_W0, &k, PC_PAGE_PAYLOAD_MAX, &loc), -ENOSPC);
	pc_store_get_stats(st, &s);
	CU_ASSERT_EQUAL(s.staged, 0);
	CU_ASSERT_EQUAL(s.staged_now, 0);
	pc_store_destroy(st);
}

/* Under memory pressure the evictor never takes a landing slot: a READ may be landing in it. */
static void
test_stage_survives_eviction(void)
{
	struct pc_store *st = store_new(true);
	const uint32_t len = 65536;
	struct pc_store_stats s;
	struct pc_store_key k, ks;
	struct pc_store_loc loc;
	uint64_t now = T0;
	unsigned int failed = 0;

	mkkey(&ks, "landing", 1);
	CU_ASSERT_EQUAL_FATAL(pc_store_stage(st, CI_W1, &ks, len, &loc), 0);
	land(st, loc.off, &ks, 1000000, len, 31337);
	for (uint32_t i = 0; i < 700; i++) { /* about 3 segments' worth */
		int rc;

		mkkey(&k, "press", i);
		rc = set_page(st, CI_W0, &k, i, len, 0, NULL);
		for (int tries = 0; rc == -ENOSPC && tries < 8; tries++) {
			recover(st, &now);
			rc = set_page(st, CI_W0, &k, i, len, 0, NULL);
		}
		failed += rc != 0;
		pc_store_evict_poll(st, CI_CTRL, now);
		now += qtsc() / 4;
		poll_all(st, now);
	}
	pc_store_get_stats(st, &s);
	CU_ASSERT(s.evictions > 0); /* the test means pressure */
	CU_ASSERT_EQUAL(failed, 0);
	CU_ASSERT_EQUAL(s.staged_now, 1);
	CU_ASSERT_EQUAL(pc_page_check(seg_hdr(st, loc.off), seg_payload(st, loc.off), len,
				      ks.digest, 31337, len, true),
			0);
	CU_ASSERT(pattern_ok(seg_payload(st, loc.off), len, 1000000));
	pc_store_unstage(st, CI_W1, &loc);
	pc_store_get_stats(st, &s);
	CU_ASSERT_EQUAL(s.staged_now, 0);
	pc_store_destroy(st);
}

static const struct pc_ut_test basic_tests[] = {
	{"set/get round trip through both mappings", test_round_trip},
	{"keys, sizes and bad arguments", test_keys_and_errors},
	{"dedup: first writer wins, loser reclaimed", test_dedup},
	{"abort: never visible, slot back", test_abort},
	{"damaged header, key tail or payload: a miss", test_damaged_pages},
	{NULL, NULL},
};

static const struct pc_ut_test reuse_tests[] = {
	{"deleted slot waits out the quarantine", test_quarantine},
	{"page events: publish, delete, clear", test_events},
	{"announce walks every published page once", test_announce},
	{"pin_at: by offset and generation only", test_pin_at},
	{"pinned page survives delete and eviction", test_pinned_survives},
	{"clear_ns removes only its namespace", test_clear_ns},
	{NULL, NULL},
};

static const struct pc_ut_test evict_tests[] = {
	{"CLOCK: referenced survive, deepest cold first", test_clock_order},
	{"EXISTS does not keep pages alive", test_exists_no_ref},
	{"full segment: eviction makes room, evicted keys miss", test_full_segment},
	{"another page size after filling with one", test_new_size_after_full},
	{NULL, NULL},
};

static const struct pc_ut_test stage_tests[] = {
	{"stage: invisible to GET, EXISTS, pin_at, events", test_stage_invisible},
	{"stage: no dedup against a published key", test_stage_published_key},
	{"unstage: consumed or stale copy is a no-op", test_unstage_consumed},
	{"stage vs SET: commit refuses, abort and unstage keep apart", test_stage_vs_set_calls},
	{"stage: bad arguments, no room", test_stage_errors},
	{"stage: the evictor never takes a landing slot", test_stage_survives_eviction},
	{NULL, NULL},
};

static const struct pc_ut_test race_tests[] = {
	{"two workers and the evictor: never wrong bytes", test_two_workers},
	{NULL, NULL},
};

static const struct pc_ut_suite suites[] = {
	{"store basics", NULL, NULL, basic_tests},   {"store reuse", NULL, NULL, reuse_tests},
	{"store eviction", NULL, NULL, evict_tests}, {"store staging", NULL, NULL, stage_tests},
	{"store race", NULL, NULL, race_tests},
};

int
main(void)
{
	if (pc_ut_eal_init("store_ut", "0") != 0) {
		return 1;
	}
	return pc_ut_run(suites, PC_ARRAY_SIZE(suites));
}
