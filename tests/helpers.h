/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Reference helpers shared by the unit tests and the fuzz targets. Header-only
 * and dependency-free, so clang fuzz builds and gcc test builds both use it.
 */
#ifndef PC_TEST_HELPERS_H
#define PC_TEST_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Reference CRC32C, bit by bit: reflected polynomial 0x82F63B78, init and final xor ~0. */
static inline uint32_t
ref_crc32c(const uint8_t *p, size_t n)
{
	uint32_t crc = 0xFFFFFFFFu;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++) {
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
		}
	}
	return ~crc;
}

/* Whether n bytes at p are all zero. */
static inline bool
all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		if (b[i] != 0) {
			return false;
		}
	}
	return true;
}

#endif /* PC_TEST_HELPERS_H */
