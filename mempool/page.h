/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Published KV pages: every page in the node's segment is
 * [64-byte header][payload], and the header is what lets any reader (a local
 * GET, a peer's RDMA or TCP READ landing in a staging buffer, a page read
 * back from disk) tell a valid page from a stale, reused, torn or foreign
 * one. A mismatch of any kind is a miss, never data: a READ through a stale
 * location into a slot that now holds another page fails here instead of
 * returning that page's bytes.
 *
 * The header is a wire format (it crosses the network and lives on disk):
 * little-endian, exactly 64 bytes, no compiler padding, versioned.
 *
 *   offset size field
 *    0      4   magic        PC_PAGE_MAGIC ("PCPG"); written last on publish,
 *                            cleared first on retire
 *    4      2   version      PC_PAGE_FORMAT_VERSION (1)
 *    6      2   flags        PC_PAGE_F_CRC: payload_crc is valid; the other
 *                            bits are reserved and must be 0
 *    8     16   digest       128-bit key digest (BLAKE2b-128 of the key)
 *   24      8   generation   bumped on every retire; a reader holding a
 *                            location compares it
 *   32      4   payload_len  bytes after the header, <= PC_PAGE_PAYLOAD_MAX
 *   36      4   payload_crc  CRC32C of the payload when PC_PAGE_F_CRC, else 0
 *   40     20   reserved     0; a reader of this version rejects a page
 *                            that sets any of them
 *   60      4   header_crc   CRC32C of bytes [4, 60): everything but the magic
 *                            and itself; catches a torn or scribbled header
 *
 * CRC32C is the standard Castagnoli CRC (init 0xFFFFFFFF, reflected, final
 * xor 0xFFFFFFFF: "123456789" gives 0xE3069283).
 *
 * Ordering: publish fills every field but the magic, then a release fence,
 * then stores the magic; retire clears the magic, then a release fence, then
 * bumps the generation. A reader that copies the header and the payload in
 * any order, at any moment, either sees a consistent page or fails the
 * check (magic, header_crc, generation, or the payload CRC for a payload torn
 * by a reuse that the header does not show).
 *
 * Threads: publish and retire belong to the lcore that owns the page (the
 * one that allocated it). pc_page_check, pc_page_digest, pc_page_crc32c and
 * pc_page_check_reason may be called from any lcore or thread.
 */
#ifndef PC_PAGE_H
#define PC_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the page header is little-endian on the wire; big-endian hosts need encode/decode"
#endif

#define PC_PAGE_HDR_SIZE       64
#define PC_PAGE_PAYLOAD_MAX    (64u << 20)
#define PC_PAGE_MAGIC          0x47504350u /* "PCPG" in memory (little-endian) */
#define PC_PAGE_FORMAT_VERSION 1
#define PC_PAGE_DIGEST_LEN     16

#define PC_PAGE_F_CRC   0x0001u /* payload_crc is valid */
#define PC_PAGE_F_KNOWN PC_PAGE_F_CRC

/* The header, as laid out above. Fields are for reading; write it only through publish/retire. */
struct pc_page_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t flags;
	uint8_t digest[PC_PAGE_DIGEST_LEN];
	uint64_t generation;
	uint32_t payload_len;
	uint32_t payload_crc;
	uint8_t reserved[20];
	uint32_t header_crc;
} __attribute__((aligned(64)));

_Static_assert(sizeof(struct pc_page_hdr) == PC_PAGE_HDR_SIZE, "page header is 64 bytes");
_Static_assert(offsetof(struct pc_page_hdr, header_crc) == 60, "header_crc ends the header");

/*
 * The 128-bit digest of a key: BLAKE2b with a 16-byte output, unkeyed
 * (libsodium crypto_generichash). key may be NULL when key_len is 0. Any
 * thread.
 */
void pc_page_digest(const void *key, size_t key_len, uint8_t digest[PC_PAGE_DIGEST_LEN]);

/*
 * Standard CRC32C of len bytes at buf (any alignment), SSE4.2 where the CPU
 * has it; needs no EAL. Any thread.
 */
uint32_t pc_page_crc32c(const void *buf, size_t len);

/*
 * Publish the page at hdr: the payload_len bytes after the header are
 * already written by the caller. Fills every field, the payload CRC too
 * when with_crc, and stores the magic last, after a release fence: a reader
 * that sees the magic sees the rest. Owner lcore only. Returns 0; -EINVAL
 * for a NULL hdr or digest or a payload_len over PC_PAGE_PAYLOAD_MAX
 * (nothing written).
 */
int pc_page_publish(struct pc_page_hdr *hdr, const uint8_t digest[PC_PAGE_DIGEST_LEN],
		    uint64_t generation, uint32_t payload_len, bool with_crc);

/*
 * Retire the page at hdr before its slot is freed or reused: clear the
 * magic, a release fence, then bump the generation. Every later check
 * fails; one racing it sees either the whole old page or an invalid one.
 * The next publish of the slot should use the new hdr->generation. Owner
 * lcore only.
 */
void pc_page_retire(struct pc_page_hdr *hdr);

/*
 * Check a page from anywhere (a local slot, a remote READ's staging buffer,
 * a disk file) against what the reader expects: the key's digest, the
 * generation of the location it holds, and the payload length. hdr must be
 * aligned as struct pc_page_hdr (8 bytes at least); payload points to the
 * avail bytes that followed it (any alignment; NULL when avail is 0).
 * verify_crc checks the payload CRC of a page that carries one (a page
 * without PC_PAGE_F_CRC has none to check). Reads no byte of payload past
 * avail. Any thread.
 *
 * Checks in this order and returns the first failure: -EBADMSG (magic,
 * header_crc, version, reserved flag bits or bytes, payload CRC), -ESTALE
 * (generation differs), -ENOKEY (digest differs: another key's page),
 * -EMSGSIZE (payload_len differs from expect_len, exceeds avail or the
 * maximum); -EINVAL for NULL arguments. 0: the page is valid; anything
 * else is a miss.
 */
int pc_page_check(const struct pc_page_hdr *hdr, const void *payload, size_t avail,
		  const uint8_t digest[PC_PAGE_DIGEST_LEN], uint64_t generation,
		  uint32_t expect_len, bool verify_crc);

/* A short static string for pc_page_check's return value, for counters and logs; never NULL. */
const char *pc_page_check_reason(int rc);

#endif /* PC_PAGE_H */
