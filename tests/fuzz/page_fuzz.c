/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the page header check (mempool/page.c).
 *
 * Input: a page as a remote READ or a disk read delivers it, the 64-byte
 * header then the payload. An input shorter than 64 bytes is a truncated
 * header, zero-filled (what a short read into a zeroed staging buffer
 * leaves). The payload is copied into a malloc of exactly its size, so a
 * read one byte past avail is an ASan report.
 *
 * The header is checked with several expectations: the ones it claims
 * itself (the most a forged page can ask for), each with the payload CRC
 * verified and not, then the wrong generation, the wrong digest and the
 * length of the bytes actually there.
 *
 * Properties: every result is 0 or one of the documented misses; a 0 means
 * every documented condition holds, computed here independently (a bitwise
 * CRC32C): the magic, header_crc over [4, 60), version 1, no reserved flag
 * or byte set, the expected generation, digest and length, a length within
 * avail and the maximum, and the payload CRC when it was to be verified.
 * Against its own claims, a page passes exactly when those conditions hold.
 * And the payload, published into a fresh aligned page, always checks.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "page.h"
#include "helpers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t
le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* The documented conditions on the header bytes alone, from the raw bytes (not the struct). */
static bool
header_sound(const uint8_t *h)
{
	uint16_t version = (uint16_t)(h[4] | h[5] << 8);
	uint16_t flags = (uint16_t)(h[6] | h[7] << 8);

	if (le32(h) != PC_PAGE_MAGIC || le32(h + 60) != ref_crc32c(h + 4, 56) || version != 1 ||
	    (flags & ~PC_PAGE_F_CRC) != 0) {
		return false;
	}
	for (int i = 40; i < 60; i++) {
		if (h[i] != 0) {
			return false;
		}
	}
	return true;
}

/* Run one check and trap on any result the documented contract does not allow. */
static int
fuzz_check(const struct pc_page_hdr *hdr, const uint8_t *payload, size_t avail,
	   const uint8_t *digest, uint64_t gen, uint32_t expect_len, bool verify)
{
	const uint8_t *h = (const uint8_t *)hdr;
	uint32_t len = le32(h + 32);
	int rc = pc_page_check(hdr, payload, avail, digest, gen, expect_len, verify);

	if (rc != 0 && rc != -EBADMSG && rc != -ESTALE && rc != -ENOKEY && rc != -EMSGSIZE) {
		__builtin_trap();
	}
	if (rc != 0) {
		return rc;
	}
	if (!header_sound(h) || le64(h + 24) != gen || memcmp(h + 8, digest, 16) != 0 ||
	    len != expect_len || len > avail || len > PC_PAGE_PAYLOAD_MAX) {
		__builtin_trap();
	}
	if (verify && (h[6] & PC_PAGE_F_CRC) != 0 && ref_crc32c(payload, len) != le32(h + 36)) {
		__builtin_trap();
	}
	return rc;
}

/* Publish `payload` into a fresh aligned page: it must check, against the same expectations. */
static void
fuzz_publish(const uint8_t *payload, size_t len, const uint8_t *digest, uint64_t gen, bool crc)
{
	size_t total = (PC_PAGE_HDR_SIZE + len + 63) & ~(size_t)63;
	struct pc_page_hdr *page = aligned_alloc(64, total);

	if (page == NULL) {
		return;
	}
	if (len > 0) {
		memcpy(page + 1, payload, len);
	}
	if (pc_page_publish(page, digest, gen, (uint32_t)len, crc) != 0 ||
	    fuzz_check(page, (const uint8_t *)(page + 1), len, digest, gen, (uint32_t)len, true) !=
		    0 ||
	    !header_sound((const uint8_t *)page)) {
		__builtin_trap();
	}
	pc_page_retire(page);
	if (pc_page_check(page, page + 1, len, digest, gen, (uint32_t)len, false) != -EBADMSG ||
	    page->generation != gen + 1) {
		__builtin_trap();
	}
	free(page);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pc_page_hdr hdr;
	const uint8_t *h = (const uint8_t *)&hdr;
	size_t avail = size > PC_PAGE_HDR_SIZE ? size - PC_PAGE_HDR_SIZE : 0;
	uint8_t *payload = NULL;
	uint8_t other[16];
	uint64_t gen;
	uint32_t len;
	int rc;

	memset(&hdr, 0, sizeof(hdr));
	memcpy(&hdr, data, size < PC_PAGE_HDR_SIZE ? size : PC_PAGE_HDR_SIZE);
	if (avail > 0) {
		payload = malloc(avail);
		if (payload == NULL) {
			return 0;
		}
		memcpy(payload, data + PC_PAGE_HDR_SIZE, avail);
	}
	gen = le64(h + 24);
	len = le32(h + 32);

	/* Its own claims: passes exactly when the documented conditions hold. */
	rc = fuzz_check(&hdr, payload, avail, h + 8, gen, len, true);
	if ((rc == 0) !=
	    (header_sound(h) && len <= avail &&
	     ((h[6] & PC_PAGE_F_CRC) == 0 || ref_crc32c(payload, len) == le32(h + 36)))) {
		__builtin_trap();
	}
	/* Skipping the payload CRC can only let more through, never less. */
	if (fuzz_check(&hdr, payload, avail, h + 8, gen, len, false) != 0 && rc == 0) {
		__builtin_trap();
	}
	/* A reader holding another generation or another key never gets data. */
	if (fuzz_check(&hdr, payload, avail, h + 8, gen + 1, len, true) == 0 ||
	    fuzz_check(&hdr, payload, avail, h + 8, gen - 1, len, false) == 0) {
		__builtin_trap();
	}
	memcpy(other, h + 8, sizeof(other));
	other[size % sizeof(other)] ^= 0x01;
	if (fuzz_check(&hdr, payload, avail, other, gen, len, false) == 0) {
		__builtin_trap();
	}
	/* The reader asks for what arrived, whatever the header says. */
	(void)fuzz_check(&hdr, payload, avail, h + 8, gen, (uint32_t)avail, true);

	fuzz_publish(payload, avail, h + 8, gen, (h[6] & PC_PAGE_F_CRC) != 0);
	free(payload);
	return 0;
}
