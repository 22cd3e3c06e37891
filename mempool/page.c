/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Published KV pages: the 64-byte header that makes every read of a page
 * self-checking (see page.h for the layout and the ordering contract).
 *
 * No EAL, no logging: publish and retire are a few stores, check works on
 * a snapshot of whatever bytes it is given, so the same code serves a local
 * slot, a remote READ and a disk read, and can be fuzzed on its own.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <rte_hash_crc.h>
#include <sodium.h>

#include "page.h"

#define PAGE_HDR_CRC_OFF 4 /* header_crc covers [4, 60): all but magic and itself */
#define PAGE_HDR_CRC_END 60

_Static_assert(offsetof(struct pc_page_hdr, magic) == 0, "magic at 0");
_Static_assert(offsetof(struct pc_page_hdr, version) == 4, "version at 4");
_Static_assert(offsetof(struct pc_page_hdr, flags) == 6, "flags at 6");
_Static_assert(offsetof(struct pc_page_hdr, digest) == 8, "digest at 8");
_Static_assert(offsetof(struct pc_page_hdr, generation) == 24, "generation at 24");
_Static_assert(offsetof(struct pc_page_hdr, payload_len) == 32, "payload_len at 32");
_Static_assert(offsetof(struct pc_page_hdr, payload_crc) == 36, "payload_crc at 36");
_Static_assert(offsetof(struct pc_page_hdr, reserved) == 40, "reserved at 40");
_Static_assert(offsetof(struct pc_page_hdr, header_crc) == PAGE_HDR_CRC_END, "header_crc at 60");
_Static_assert(_Alignof(struct pc_page_hdr) == 64, "page header is 64-byte aligned");

static atomic_bool g_sodium_ready;

void
pc_page_digest(const void *key, size_t key_len, uint8_t digest[PC_PAGE_DIGEST_LEN])
{
	/*
	 * BLAKE2b itself needs no initialization; sodium_init only picks the
	 * fastest implementation. It is idempotent, so a race here only calls
	 * it twice, and its failure (no randomness source) does not matter.
	 */
	if (!atomic_load_explicit(&g_sodium_ready, memory_order_acquire)) {
		int rc = sodium_init();

		(void)rc;
		atomic_store_explicit(&g_sodium_ready, true, memory_order_release);
	}
	crypto_generichash(digest, PC_PAGE_DIGEST_LEN, key, key_len, NULL, 0);
}

/*
 * rte_hash_crc() is the CRC32C polynomial without the conditioning: it
 * takes the register's starting value as init_val and returns the raw
 * register, no final xor. The standard CRC32C is therefore
 * ~crc(data, init 0xFFFFFFFF). rte_hash_crc() also dereferences its input
 * as uint64_t, which is undefined for an unaligned buffer (the header CRC
 * starts at offset 4, a fuzzer's bytes anywhere), so the loop here feeds
 * rte_hash_crc_8byte() from memcpy'd words instead: same instruction.
 */
uint32_t
pc_page_crc32c(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t crc = 0xFFFFFFFFu;
	uint64_t w;

	for (; len >= sizeof(w); p += sizeof(w), len -= sizeof(w)) {
		memcpy(&w, p, sizeof(w));
		crc = rte_hash_crc_8byte(w, crc);
	}
	for (; len > 0; p++, len--) {
		crc = rte_hash_crc_1byte(*p, crc);
	}
	return ~crc;
}

static uint32_t
page_header_crc(const struct pc_page_hdr *h)
{
	return pc_page_crc32c((const uint8_t *)h + PAGE_HDR_CRC_OFF,
			      PAGE_HDR_CRC_END - PAGE_HDR_CRC_OFF);
}

static bool
page_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++) {
		acc |= p[i];
	}
	return acc == 0;
}

int
pc_page_publish(struct pc_page_hdr *hdr, const uint8_t digest[PC_PAGE_DIGEST_LEN],
		uint64_t generation, uint32_t payload_len, bool with_crc)
{
	if (hdr == NULL || digest == NULL || payload_len > PC_PAGE_PAYLOAD_MAX) {
		return -EINVAL;
	}
	/* A page being re-published must look invalid until it is complete. */
	__atomic_store_n(&hdr->magic, 0, __ATOMIC_RELAXED);
	atomic_thread_fence(memory_order_release);

	hdr->version = PC_PAGE_FORMAT_VERSION;
	hdr->flags = with_crc ? PC_PAGE_F_CRC : 0;
	memcpy(hdr->digest, digest, PC_PAGE_DIGEST_LEN);
	hdr->generation = generation;
	hdr->payload_len = payload_len;
	hdr->payload_crc = with_crc ? pc_page_crc32c(hdr + 1, payload_len) : 0;
	memset(hdr->reserved, 0, sizeof(hdr->reserved));
	hdr->header_crc = page_header_crc(hdr);

	/* Everything above, payload included, is visible before the magic is. */
	atomic_thread_fence(memory_order_release);
	__atomic_store_n(&hdr->magic, PC_PAGE_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

void
pc_page_retire(struct pc_page_hdr *hdr)
{
	/* Invalid first: a reader racing the reuse sees no magic, or the old generation. */
	__atomic_store_n(&hdr->magic, 0, __ATOMIC_RELAXED);
	atomic_thread_fence(memory_order_release);
	__atomic_store_n(&hdr->generation, hdr->generation + 1, __ATOMIC_RELAXED);
	atomic_thread_fence(memory_order_release);
}

int
pc_page_check(const struct pc_page_hdr *hdr, const void *payload, size_t avail,
	      const uint8_t digest[PC_PAGE_DIGEST_LEN], uint64_t generation, uint32_t expect_len,
	      bool verify_crc)
{
	struct pc_page_hdr h;

	if (hdr == NULL || digest == NULL || (payload == NULL && avail != 0)) {
		return -EINVAL;
	}
	/* One snapshot, magic first: every decision below is about the same bytes. */
	h.magic = __atomic_load_n(&hdr->magic, __ATOMIC_ACQUIRE);
	if (h.magic != PC_PAGE_MAGIC) {
		return -EBADMSG;
	}
	memcpy((uint8_t *)&h + sizeof(h.magic), (const uint8_t *)hdr + sizeof(h.magic),
	       sizeof(h) - sizeof(h.magic));
	if (page_header_crc(&h) != h.header_crc) {
		return -EBADMSG;
	}
	if (h.version != PC_PAGE_FORMAT_VERSION || (h.flags & ~PC_PAGE_F_KNOWN) != 0 ||
	    !page_zero(h.reserved, sizeof(h.reserved))) {
		return -EBADMSG;
	}
	if (h.generation != generation) {
		return -ESTALE;
	}
	if (memcmp(h.digest, digest, PC_PAGE_DIGEST_LEN) != 0) {
		return -ENOKEY;
	}
	if (h.payload_len != expect_len || h.payload_len > avail ||
	    h.payload_len > PC_PAGE_PAYLOAD_MAX) {
		return -EMSGSIZE;
	}
	if (verify_crc && (h.flags & PC_PAGE_F_CRC) != 0 &&
	    pc_page_crc32c(payload, h.payload_len) != h.payload_crc) {
		return -EBADMSG;
	}
	return 0;
}

const char *
pc_page_check_reason(int rc)
{
	switch (rc) {
	case 0:
		return "valid";
	case -EBADMSG:
		return "bad page (magic, version, flags or crc)";
	case -ESTALE:
		return "stale generation";
	case -ENOKEY:
		return "digest mismatch";
	case -EMSGSIZE:
		return "length mismatch";
	case -EINVAL:
		return "invalid argument";
	default:
		return "unknown";
	}
}
