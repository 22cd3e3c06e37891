/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mempool/page.c: the self-checking page header. What a reader would
 * notice: a published page reads back intact; any damage to the header,
 * a damaged payload (with CRC), a retired or reused slot, another key's
 * page or a wrong length is a miss with its own reason, never data; the
 * checker reads nothing past the bytes it was given (payloads under test sit
 * at the very end of an exact malloc, so ASan catches a byte too far). CRC32C and
 * the digest are checked against published vectors and a bitwise reference
 * written here, not against the module's own helpers. A two-thread test
 * races a reader copying the page against its owner retiring and
 * re-publishing it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../../mempool/page.c"
#include "ut.h"
#include "helpers.h"

#define PAYLOAD_LEN 1000 /* not a multiple of 8: the CRC's byte tail runs too */

static const uint8_t g_digest[PC_PAGE_DIGEST_LEN] = {
	0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
	0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
};

/* A 64-byte aligned header with its payload in place after it, as in the segment. */
struct page_buf {
	void *mem;
	struct pc_page_hdr *hdr;
	uint8_t *payload;
	size_t len;
};

static void
page_alloc(struct page_buf *b, size_t len)
{
	size_t total = PC_PAGE_HDR_SIZE + len;

	b->mem = aligned_alloc(64, (total + 63) & ~(size_t)63);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b->mem);
	b->hdr = b->mem;
	b->payload = (uint8_t *)(b->hdr + 1);
	b->len = len;
}

/*
 * The payload as a remote READ leaves it: a malloc of exactly `len` bytes,
 * so that ASan reports a read of one byte past it.
 */
static uint8_t *
exact_copy(const uint8_t *p, size_t len)
{
	uint8_t *c = malloc(len == 0 ? 1 : len);

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	if (c != NULL && len > 0) {
		memcpy(c, p, len);
	}
	return c;
}

static void
page_free(struct page_buf *b)
{
	free(b->mem);
	memset(b, 0, sizeof(*b));
}

static void
fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++) {
		p[i] = (uint8_t)(seed + i * 31);
	}
}

/* Rewrite header_crc after a deliberate edit, so only the edited field is wrong. */
static void
reseal(struct pc_page_hdr *h)
{
	h->header_crc = ref_crc32c((const uint8_t *)h + 4, 56);
}

static int
check(const struct page_buf *b, uint64_t gen, bool crc)
{
	return pc_page_check(b->hdr, b->payload, b->len, g_digest, gen, (uint32_t)b->len, crc);
}

static void
test_crc32c_vectors(void)
{
	static const uint8_t zeros[32];
	uint8_t ones[32];
	uint8_t *big = malloc(65536 + 8);

	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	CU_ASSERT_EQUAL(pc_page_crc32c("123456789", 9), 0xE3069283u);
	CU_ASSERT_EQUAL(ref_crc32c((const uint8_t *)"123456789", 9), 0xE3069283u);
	CU_ASSERT_EQUAL(pc_page_crc32c(NULL, 0), 0u);
	CU_ASSERT_EQUAL(pc_page_crc32c("", 0), 0u);
	/* RFC 3720 B.4: 32 bytes of 0x00 and of 0xFF. */
	memset(ones, 0xFF, sizeof(ones));
	CU_ASSERT_EQUAL(pc_page_crc32c(zeros, sizeof(zeros)), 0x8A9136AAu);
	CU_ASSERT_EQUAL(pc_page_crc32c(ones, sizeof(ones)), 0x62A8AB43u);

	/* 64 KiB, at every alignment and with every tail length. */
	fill(big, 65536 + 8, 7);
	for (size_t off = 0; off < 8; off++) {
		CU_ASSERT_EQUAL(pc_page_crc32c(big + off, 65536), ref_crc32c(big + off, 65536));
		CU_ASSERT_EQUAL(pc_page_crc32c(big + off, 65536 - off),
				ref_crc32c(big + off, 65536 - off));
	}
	for (size_t n = 0; n < 40; n++) {
		CU_ASSERT_EQUAL(pc_page_crc32c(big + 3, n), ref_crc32c(big + 3, n));
	}
	free(big);
}

static void
test_digest_kat(void)
{
	/* python3: hashlib.blake2b(b'abc', digest_size=16), and of b''. */
	static const uint8_t abc[16] = {0xcf, 0x4a, 0xb7, 0x91, 0xc6, 0x2b, 0x8d, 0x2b,
					0x21, 0x09, 0xc9, 0x02, 0x75, 0x28, 0x78, 0x16};
	static const uint8_t empty[16] = {0xca, 0xe6, 0x69, 0x41, 0xd9, 0xef, 0xbd, 0x40,
					  0x4e, 0x4d, 0x88, 0x75, 0x8e, 0xa6, 0x76, 0x70};
	uint8_t d[16];
	uint8_t d2[16];

	pc_page_digest("abc", 3, d);
	CU_ASSERT_EQUAL(memcmp(d, abc, 16), 0);
	pc_page_digest(NULL, 0, d);
	CU_ASSERT_EQUAL(memcmp(d, empty, 16), 0);
	/* Keys differing in one byte, or by a trailing NUL, are different keys. */
	pc_page_digest("abd", 3, d2);
	CU_ASSERT_NOT_EQUAL(memcmp(d2, abc, 16), 0);
	pc_page_digest("abc", 4, d2);
	CU_ASSERT_NOT_EQUAL(memcmp(d2, abc, 16), 0);
}

static void
test_layout(void)
{
	struct page_buf b;
	const uint8_t *w;
	uint8_t want[PC_PAGE_HDR_SIZE] = {'P', 'C', 'P', 'G', 1, 0, 1, 0};
	uint32_t crc;

	CU_ASSERT_EQUAL(sizeof(struct pc_page_hdr), 64);
	CU_ASSERT_EQUAL(_Alignof(struct pc_page_hdr), 64);
	CU_ASSERT_EQUAL(offsetof(struct pc_page_hdr, magic), 0);
	CU_ASSERT_EQUAL(offsetof(struct pc_page_hdr, version), 4);
	CU_ASSERT_EQUAL(offsetof(struct pc_page_hdr, flags), 6);
	CU_ASSERT_EQUAL(offsetof(struct pc_page_hdr, digest), 8);
	CU_ASSERT_EQUAL(offsetof(struct pc_page_hdr, generation), 24);
	CU_ASSERT_EQUAL(offsetof(struct pc_page_hdr, payload_len), 32);
	CU_ASSERT_EQUAL(offsetof(struct pc_page_hdr, payload_crc), 36);
	CU_ASSERT_EQUAL(offsetof(struct pc_page_hdr, reserved), 40);
	CU_ASSERT_EQUAL(offsetof(struct pc_page_hdr, header_crc), 60);

	/* The bytes a remote reader parses, built by hand from the documented layout. */
	page_alloc(&b, PAYLOAD_LEN);
	fill(b.payload, PAYLOAD_LEN, 1);
	memset(b.hdr, 0xA5, sizeof(*b.hdr)); /* stale junk: publish must overwrite all of it */
	CU_ASSERT_EQUAL_FATAL(
		pc_page_publish(b.hdr, g_digest, 0x1122334455667788ull, PAYLOAD_LEN, true), 0);
	memcpy(want + 8, g_digest, 16);
	for (int i = 0; i < 8; i++) {
		want[24 + i] = (uint8_t)(0x1122334455667788ull >> (8 * i));
	}
	want[32] = PAYLOAD_LEN & 0xFF;
	want[33] = PAYLOAD_LEN >> 8;
	crc = ref_crc32c(b.payload, PAYLOAD_LEN);
	for (int i = 0; i < 4; i++) {
		want[36 + i] = (uint8_t)(crc >> (8 * i));
	}
	crc = ref_crc32c(want + 4, 56);
	for (int i = 0; i < 4; i++) {
		want[60 + i] = (uint8_t)(crc >> (8 * i));
	}
	w = (const uint8_t *)b.hdr;
	CU_ASSERT_EQUAL(memcmp(w, want, sizeof(want)), 0);

	/* Without CRC: flags 0, payload_crc 0. */
	CU_ASSERT_EQUAL(pc_page_publish(b.hdr, g_digest, 5, PAYLOAD_LEN, false), 0);
	CU_ASSERT_EQUAL(b.hdr->flags, 0);
	CU_ASSERT_EQUAL(b.hdr->payload_crc, 0);
	CU_ASSERT_EQUAL(check(&b, 5, true), 0);
	page_free(&b);
}

static void
test_round_trip(void)
{
	struct page_buf b;
	uint8_t copy[PAYLOAD_LEN];

	page_alloc(&b, PAYLOAD_LEN);
	fill(b.payload, PAYLOAD_LEN, 9);
	memcpy(copy, b.payload, PAYLOAD_LEN);
	CU_ASSERT_EQUAL_FATAL(pc_page_publish(b.hdr, g_digest, 42, PAYLOAD_LEN, true), 0);
	CU_ASSERT_EQUAL(check(&b, 42, true), 0);
	CU_ASSERT_EQUAL(check(&b, 42, false), 0);
	CU_ASSERT_EQUAL(memcmp(b.payload, copy, PAYLOAD_LEN), 0);
	CU_ASSERT_EQUAL(b.hdr->magic, PC_PAGE_MAGIC);
	CU_ASSERT_EQUAL(b.hdr->generation, 42);

	/* An empty payload is a page too, with no payload bytes at all. */
	CU_ASSERT_EQUAL(pc_page_publish(b.hdr, g_digest, 43, 0, true), 0);
	CU_ASSERT_EQUAL(pc_page_check(b.hdr, NULL, 0, g_digest, 43, 0, true), 0);
	page_free(&b);
}

static void
test_header_bit_flips(void)
{
	struct page_buf b;
	uint8_t *h;
	int passed = 0;

	page_alloc(&b, PAYLOAD_LEN);
	h = (uint8_t *)b.hdr;
	fill(b.payload, PAYLOAD_LEN, 3);
	CU_ASSERT_EQUAL_FATAL(pc_page_publish(b.hdr, g_digest, 7, PAYLOAD_LEN, true), 0);
	for (int bit = 0; bit < PC_PAGE_HDR_SIZE * 8; bit++) {
		h[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		for (int crc = 0; crc < 2; crc++) {
			int rc = check(&b, 7, crc != 0);

			if (rc != -EBADMSG) {
				fprintf(stderr, "bit %d (crc %d): %d\n", bit, crc, rc);
				passed++;
			}
		}
		h[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		CU_ASSERT_EQUAL(check(&b, 7, true), 0);
	}
	/* Every single flip is a bad page, whichever field it hit (header_crc catches them). */
	CU_ASSERT_EQUAL(passed, 0);
	page_free(&b);
}

static void
test_resealed_fields(void)
{
	struct page_buf b;
	struct pc_page_hdr good;

	page_alloc(&b, PAYLOAD_LEN);
	fill(b.payload, PAYLOAD_LEN, 4);
	CU_ASSERT_EQUAL_FATAL(pc_page_publish(b.hdr, g_digest, 7, PAYLOAD_LEN, true), 0);
	good = *b.hdr;

	/* Consistent headers (header_crc recomputed) with one wrong field each. */
	b.hdr->version = 2;
	reseal(b.hdr);
	CU_ASSERT_EQUAL(check(&b, 7, true), -EBADMSG);
	*b.hdr = good;
	for (int bit = 1; bit < 16; bit++) {
		b.hdr->flags = (uint16_t)(PC_PAGE_F_CRC | (1u << bit));
		reseal(b.hdr);
		CU_ASSERT_EQUAL(check(&b, 7, true), -EBADMSG);
	}
	*b.hdr = good;
	for (size_t i = 0; i < sizeof(good.reserved); i++) {
		b.hdr->reserved[i] = 0x80;
		reseal(b.hdr);
		CU_ASSERT_EQUAL(check(&b, 7, true), -EBADMSG);
		b.hdr->reserved[i] = 0;
	}
	*b.hdr = good;
	b.hdr->payload_crc ^= 1;
	reseal(b.hdr);
	CU_ASSERT_EQUAL(check(&b, 7, true), -EBADMSG);
	CU_ASSERT_EQUAL(check(&b, 7, false), 0);

	/* A resealed generation or digest is what a reused slot looks like: stale, or not ours. */
	*b.hdr = good;
	b.hdr->generation = 8;
	reseal(b.hdr);
	CU_ASSERT_EQUAL(check(&b, 7, true), -ESTALE);
	*b.hdr = good;
	b.hdr->digest[15] ^= 0x40;
	reseal(b.hdr);
	CU_ASSERT_EQUAL(check(&b, 7, true), -ENOKEY);

	/* A length over the maximum, even one the reader asked for, never gets to the payload. */
	*b.hdr = good;
	b.hdr->payload_len = PC_PAGE_PAYLOAD_MAX + 1;
	reseal(b.hdr);
	CU_ASSERT_EQUAL(pc_page_check(b.hdr, b.payload, SIZE_MAX, g_digest, 7,
				      PC_PAGE_PAYLOAD_MAX + 1, true),
			-EMSGSIZE);

	/* The magic is not under header_crc, but it has one right value. */
	*b.hdr = good;
	b.hdr->magic = 0;
	CU_ASSERT_EQUAL(check(&b, 7, true), -EBADMSG);
	*b.hdr = good;
	CU_ASSERT_EQUAL(check(&b, 7, true), 0);
	page_free(&b);
}

static void
test_payload_flip(void)
{
	struct page_buf b;

	page_alloc(&b, PAYLOAD_LEN);
	fill(b.payload, PAYLOAD_LEN, 5);
	CU_ASSERT_EQUAL_FATAL(pc_page_publish(b.hdr, g_digest, 1, PAYLOAD_LEN, true), 0);
	for (size_t i = 0; i < PAYLOAD_LEN; i += 37) {
		b.payload[i] ^= 0x10;
		CU_ASSERT_EQUAL(check(&b, 1, true), -EBADMSG);
		/* A reader that skips the CRC (trusting its transport) still gets the bytes. */
		CU_ASSERT_EQUAL(check(&b, 1, false), 0);
		b.payload[i] ^= 0x10;
	}
	b.payload[PAYLOAD_LEN - 1] ^= 0x01;
	CU_ASSERT_EQUAL(check(&b, 1, true), -EBADMSG);
	b.payload[PAYLOAD_LEN - 1] ^= 0x01;
	CU_ASSERT_EQUAL(check(&b, 1, true), 0);

	/* A page published without a CRC has none to check: verify_crc cannot catch a flip. */
	CU_ASSERT_EQUAL_FATAL(pc_page_publish(b.hdr, g_digest, 1, PAYLOAD_LEN, false), 0);
	b.payload[10] ^= 0x10;
	CU_ASSERT_EQUAL(check(&b, 1, true), 0);
	page_free(&b);
}

static void
test_retire_and_reuse(void)
{
	struct page_buf b;
	uint8_t other[PC_PAGE_DIGEST_LEN];
	uint64_t old_gen = 100;
	uint64_t new_gen;

	page_alloc(&b, PAYLOAD_LEN);
	fill(b.payload, PAYLOAD_LEN, 6);
	CU_ASSERT_EQUAL_FATAL(pc_page_publish(b.hdr, g_digest, old_gen, PAYLOAD_LEN, true), 0);
	CU_ASSERT_EQUAL(check(&b, old_gen, true), 0);

	pc_page_retire(b.hdr);
	CU_ASSERT_EQUAL(b.hdr->magic, 0);
	CU_ASSERT_EQUAL(b.hdr->generation, old_gen + 1);
	CU_ASSERT_EQUAL(check(&b, old_gen, true), -EBADMSG);
	CU_ASSERT_EQUAL(check(&b, old_gen + 1, false), -EBADMSG);

	/*
	 * The original system's bug: the slot is reused for another key, and a
	 * reader still holding the old location READs it. It gets -ESTALE, not
	 * the new page's bytes.
	 */
	new_gen = b.hdr->generation;
	pc_page_digest("another key", 11, other);
	fill(b.payload, PAYLOAD_LEN, 0x77);
	CU_ASSERT_EQUAL_FATAL(pc_page_publish(b.hdr, other, new_gen, PAYLOAD_LEN, true), 0);
	CU_ASSERT_EQUAL(check(&b, old_gen, true), -ESTALE);
	CU_ASSERT_EQUAL(check(&b, old_gen, false), -ESTALE);
	CU_ASSERT_EQUAL(
		pc_page_check(b.hdr, b.payload, PAYLOAD_LEN, other, new_gen, PAYLOAD_LEN, true), 0);
	/* Same key re-published at the new generation: the old location is still stale. */
	pc_page_retire(b.hdr);
	CU_ASSERT_EQUAL(pc_page_publish(b.hdr, g_digest, b.hdr->generation, PAYLOAD_LEN, true), 0);
	CU_ASSERT_EQUAL(check(&b, old_gen, true), -ESTALE);
	CU_ASSERT_EQUAL(check(&b, old_gen + 2, true), 0);

	/* Retiring twice keeps it invalid and bumps again. */
	pc_page_retire(b.hdr);
	pc_page_retire(b.hdr);
	CU_ASSERT_EQUAL(b.hdr->generation, old_gen + 4);
	CU_ASSERT_EQUAL(check(&b, old_gen + 4, true), -EBADMSG);
	page_free(&b);
}

static void
test_wrong_digest(void)
{
	struct page_buf b;
	uint8_t d[PC_PAGE_DIGEST_LEN];

	page_alloc(&b, PAYLOAD_LEN);
	fill(b.payload, PAYLOAD_LEN, 8);
	CU_ASSERT_EQUAL_FATAL(pc_page_publish(b.hdr, g_digest, 3, PAYLOAD_LEN, true), 0);
	for (int i = 0; i < PC_PAGE_DIGEST_LEN; i++) {
		memcpy(d, g_digest, sizeof(d));
		d[i] ^= 0x01;
		CU_ASSERT_EQUAL(
			pc_page_check(b.hdr, b.payload, PAYLOAD_LEN, d, 3, PAYLOAD_LEN, true),
			-ENOKEY);
	}
	page_free(&b);
}

static void
test_lengths(void)
{
	struct page_buf b;
	uint8_t *tail;

	page_alloc(&b, PAYLOAD_LEN);
	fill(b.payload, PAYLOAD_LEN, 2);
	CU_ASSERT_EQUAL_FATAL(pc_page_publish(b.hdr, g_digest, 9, PAYLOAD_LEN, true), 0);

	/* The reader expected another length. */
	CU_ASSERT_EQUAL(
		pc_page_check(b.hdr, b.payload, PAYLOAD_LEN, g_digest, 9, PAYLOAD_LEN - 1, true),
		-EMSGSIZE);
	CU_ASSERT_EQUAL(
		pc_page_check(b.hdr, b.payload, PAYLOAD_LEN, g_digest, 9, PAYLOAD_LEN + 1, true),
		-EMSGSIZE);
	/*
	 * A short read: fewer bytes than the header claims, at the very end of
	 * their allocation. Nothing past avail is read (ASan would say so).
	 */
	for (size_t avail = 0; avail < PAYLOAD_LEN; avail += 99) {
		uint8_t *c = exact_copy(b.payload, avail);

		CU_ASSERT_EQUAL(pc_page_check(b.hdr, c, avail, g_digest, 9, PAYLOAD_LEN, true),
				-EMSGSIZE);
		free(c);
	}
	CU_ASSERT_EQUAL(pc_page_check(b.hdr, NULL, 0, g_digest, 9, PAYLOAD_LEN, true), -EMSGSIZE);
	/* Exactly enough, up to the last byte of the allocation. */
	tail = exact_copy(b.payload, PAYLOAD_LEN);
	CU_ASSERT_EQUAL(pc_page_check(b.hdr, tail, PAYLOAD_LEN, g_digest, 9, PAYLOAD_LEN, true), 0);
	tail[PAYLOAD_LEN - 1] ^= 0x80;
	CU_ASSERT_EQUAL(pc_page_check(b.hdr, tail, PAYLOAD_LEN, g_digest, 9, PAYLOAD_LEN, true),
			-EBADMSG);
	free(tail);

	/* Publish refuses what no reader would accept. */
	CU_ASSERT_EQUAL(pc_page_publish(b.hdr, g_digest, 10, PC_PAGE_PAYLOAD_MAX + 1, true),
			-EINVAL);
	CU_ASSERT_EQUAL(pc_page_publish(b.hdr, g_digest, 10, UINT32_MAX, false), -EINVAL);
	/* ... and wrote nothing: the page is still the old one. */
	CU_ASSERT_EQUAL(check(&b, 9, true), 0);
	page_free(&b);
}

static void
test_check_order(void)
{
	struct page_buf b;
	uint8_t d[PC_PAGE_DIGEST_LEN];

	page_alloc(&b, PAYLOAD_LEN);
	fill(b.payload, PAYLOAD_LEN, 11);
	CU_ASSERT_EQUAL_FATAL(pc_page_publish(b.hdr, g_digest, 20, PAYLOAD_LEN, true), 0);
	memcpy(d, g_digest, sizeof(d));
	d[0] ^= 0xFF;
	b.payload[0] ^= 1;
	/* Everything wrong at once: generation comes first among the reader's expectations. */
	CU_ASSERT_EQUAL(pc_page_check(b.hdr, b.payload, 1, d, 21, 1, true), -ESTALE);
	CU_ASSERT_EQUAL(pc_page_check(b.hdr, b.payload, 1, d, 20, 1, true), -ENOKEY);
	CU_ASSERT_EQUAL(pc_page_check(b.hdr, b.payload, 1, g_digest, 20, 1, true), -EMSGSIZE);
	CU_ASSERT_EQUAL(check(&b, 20, true), -EBADMSG);
	b.payload[0] ^= 1;
	CU_ASSERT_EQUAL(check(&b, 20, true), 0);

	/* Bad arguments. */
	CU_ASSERT_EQUAL(pc_page_check(NULL, b.payload, 1, g_digest, 20, 1, true), -EINVAL);
	CU_ASSERT_EQUAL(pc_page_check(b.hdr, b.payload, 1, NULL, 20, 1, true), -EINVAL);
	CU_ASSERT_EQUAL(pc_page_check(b.hdr, NULL, 1, g_digest, 20, 1, true), -EINVAL);
	CU_ASSERT_EQUAL(pc_page_publish(NULL, g_digest, 1, 1, true), -EINVAL);
	CU_ASSERT_EQUAL(pc_page_publish(b.hdr, NULL, 1, 1, true), -EINVAL);
	page_free(&b);
}

static void
test_reasons(void)
{
	static const int rcs[] = {0, -EBADMSG, -ESTALE, -ENOKEY, -EMSGSIZE, -EINVAL};

	for (size_t i = 0; i < PC_ARRAY_SIZE(rcs); i++) {
		CU_ASSERT_PTR_NOT_NULL(pc_page_check_reason(rcs[i]));
		for (size_t j = 0; j < i; j++) {
			CU_ASSERT_STRING_NOT_EQUAL(pc_page_check_reason(rcs[i]),
						   pc_page_check_reason(rcs[j]));
		}
	}
	CU_ASSERT_STRING_EQUAL(pc_page_check_reason(-ENOMEM), "unknown");
}

/* The race: the owner retires and re-publishes one slot as fast as it can. */
#define RACE_LEN       256
#define RACE_ITERS     200000
#define RACE_BUDGET_NS 2500000000ll /* stop early on a slow machine: this is not a speed test */

struct race_page {
	struct pc_page_hdr hdr;
	uint8_t payload[RACE_LEN];
};

struct race {
	struct race_page *page;
	atomic_bool stop;
	atomic_ulong cycles;
};

static void *
race_owner(void *arg)
{
	struct race *r = arg;
	struct pc_page_hdr *h = &r->page->hdr;

	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		uint64_t gen;

		pc_page_retire(h);
		gen = h->generation;
		/* The reuse writes the payload while readers may still be copying it. */
		for (size_t i = 0; i < RACE_LEN; i++) {
			__atomic_store_n(&r->page->payload[i], (uint8_t)gen, __ATOMIC_RELAXED);
		}
		if (pc_page_publish(h, g_digest, gen, RACE_LEN, true) != 0) {
			break;
		}
		atomic_fetch_add_explicit(&r->cycles, 1, memory_order_relaxed);
	}
	return NULL;
}

static long long
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* Copy the shared page as a remote READ does: no lock, while the owner keeps writing it. */
static void
race_copy(const struct race_page *src, struct race_page *dst)
{
	const uint8_t *s = (const uint8_t *)src;
	uint8_t *d = (uint8_t *)dst;

	for (size_t i = 0; i < sizeof(*src); i++) {
		d[i] = __atomic_load_n(&s[i], __ATOMIC_RELAXED);
	}
}

static bool
uniform(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != v) {
			return false;
		}
	}
	return true;
}

/* Counters by result: valid, bad page, stale, size, anything else. */
static size_t
race_slot(int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case -EBADMSG:
		return 1;
	case -ESTALE:
		return 2;
	case -EMSGSIZE:
		return 3;
	default:
		return 4;
	}
}

static void
test_race(void)
{
	struct race r = {0};
	struct race_page copy;
	pthread_t owner;
	long long start;
	long long deadline;
	unsigned long iters = 0;
	unsigned long torn = 0;
	unsigned long torn_no_crc_pass = 0;
	unsigned long bad = 0;
	unsigned long by_rc[5] = {0};

	r.page = aligned_alloc(64, sizeof(*r.page));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r.page);
	if (r.page == NULL) {
		return;
	}
	memset(r.page->payload, 1, RACE_LEN);
	CU_ASSERT_EQUAL_FATAL(pc_page_publish(&r.page->hdr, g_digest, 1, RACE_LEN, true), 0);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&owner, NULL, race_owner, &r), 0);

	/* Only race once the owner is running (on two cores it may start late). */
	start = now_ns();
	deadline = start + RACE_BUDGET_NS;
	while (atomic_load_explicit(&r.cycles, memory_order_relaxed) == 0 && now_ns() < deadline) {
		sched_yield();
	}
	for (; iters < RACE_ITERS && ((iters & 1023) != 0 || now_ns() < deadline); iters++) {
		uint64_t gen;
		int rc;
		bool ok;

		race_copy(r.page, &copy);
		/* The reader believes the generation it read: the strongest claim a torn copy can
		 * make. */
		gen = copy.hdr.generation;
		rc = pc_page_check(&copy.hdr, copy.payload, RACE_LEN, g_digest, gen, RACE_LEN,
				   true);
		ok = copy.hdr.payload_len == RACE_LEN &&
		     uniform(copy.payload, RACE_LEN, (uint8_t)gen);
		if (!ok) {
			torn++;
			if (pc_page_check(&copy.hdr, copy.payload, RACE_LEN, g_digest, gen,
					  RACE_LEN, false) == 0) {
				torn_no_crc_pass++;
			}
		}
		if (rc == 0 && !ok) {
			bad++;
		}
		by_rc[race_slot(rc)]++;
	}
	atomic_store_explicit(&r.stop, true, memory_order_relaxed);
	pthread_join(owner, NULL);

	printf("\n    race: %lu reads in %.2f s against %lu re-publishes: %lu valid, "
	       "%lu bad page, %lu stale, %lu size, %lu other; %lu torn copies, all rejected "
	       "(%lu of them would pass without the payload crc)\n    ",
	       iters, (double)(now_ns() - start) / 1e9, (unsigned long)atomic_load(&r.cycles),
	       by_rc[0], by_rc[1], by_rc[2], by_rc[3], by_rc[4], torn, torn_no_crc_pass);
	CU_ASSERT(iters > 0);
	/* The property: a check that passes means the payload is that generation's, whole. */
	CU_ASSERT_EQUAL(bad, 0);
	/* Nothing but torn-read reasons: a consistent copy always passes. */
	CU_ASSERT_EQUAL(by_rc[4], 0);
	/* After the race the page is whole again and checks at its final generation. */
	CU_ASSERT_EQUAL(pc_page_check(&r.page->hdr, r.page->payload, RACE_LEN, g_digest,
				      r.page->hdr.generation, RACE_LEN, true),
			0);
	free(r.page);
}

static const struct pc_ut_test format_tests[] = {
	{"crc32c: published vectors, any alignment, vs bitwise", test_crc32c_vectors},
	{"digest: BLAKE2b-128 known answers", test_digest_kat},
	{"header layout: offsets and bytes pinned", test_layout},
	{NULL, NULL},
};

static const struct pc_ut_test check_tests[] = {
	{"publish then check: valid, payload intact", test_round_trip},
	{"every header bit flip is a bad page", test_header_bit_flips},
	{"consistent headers with one wrong field", test_resealed_fields},
	{"payload flip: caught with crc, not without", test_payload_flip},
	{"retire and reuse: old location is stale", test_retire_and_reuse},
	{"another key's page: digest mismatch", test_wrong_digest},
	{"lengths: expected, available, maximum", test_lengths},
	{"order of checks, bad arguments", test_check_order},
	{"reason strings are distinct", test_reasons},
	{NULL, NULL},
};

static const struct pc_ut_test race_tests[] = {
	{"reader copying vs owner reusing: no torn page passes", test_race},
	{NULL, NULL},
};

static const struct pc_ut_suite suites[] = {
	{"page format", NULL, NULL, format_tests},
	{"page check", NULL, NULL, check_tests},
	{"page race", NULL, NULL, race_tests},
};

int
main(void)
{
	return pc_ut_run(suites, PC_ARRAY_SIZE(suites));
}
