/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Logging through rte_log with one registered type per subsystem, so that
 * `--log-level=peercache.*:debug` (or `peercache.verbs:debug`) works from the
 * EAL command line. The types are registered by constructors in log.c, before
 * rte_eal_init() parses --log-level, so the levels given there apply.
 */
#ifndef PC_LOG_H
#define PC_LOG_H

#include <rte_log.h>

extern int pc_logtype_engine;
extern int pc_logtype_config;
extern int pc_logtype_control;
extern int pc_logtype_verbs;
extern int pc_logtype_mempool;
extern int pc_logtype_lcore;

/* PC_LOG(ERR, engine, "bad %d", x): one line, newline added. */
#define PC_LOG(level, type, fmt, ...)                                                              \
	rte_log(RTE_LOG_##level, pc_logtype_##type, "peercache." #type ": " fmt "\n", ##__VA_ARGS__)

#endif /* PC_LOG_H */
