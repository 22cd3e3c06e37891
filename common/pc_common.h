/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Small helpers shared by every PeerCache module. Nothing here depends on
 * DPDK, so code that must build without it (the config decoder and its
 * fuzz target) can include this header too.
 */
#ifndef PC_COMMON_H
#define PC_COMMON_H

#include <stddef.h>

#define PC_CACHE_LINE    64
#define PC_CACHE_ALIGNED __attribute__((aligned(PC_CACHE_LINE)))

#define PC_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define PC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define PC_MAX(a, b) ((a) > (b) ? (a) : (b))

#define PC_LIKELY(x)   __builtin_expect(!!(x), 1)
#define PC_UNLIKELY(x) __builtin_expect(!!(x), 0)

#define PC_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))

#endif /* PC_COMMON_H */
