/* SPDX-License-Identifier: BSD-3-Clause */
#include "pc_log.h"

RTE_LOG_REGISTER(pc_logtype_engine, peercache.engine, INFO);
RTE_LOG_REGISTER(pc_logtype_config, peercache.config, INFO);
RTE_LOG_REGISTER(pc_logtype_control, peercache.control, INFO);
RTE_LOG_REGISTER(pc_logtype_verbs, peercache.verbs, INFO);
RTE_LOG_REGISTER(pc_logtype_mempool, peercache.mempool, INFO);
RTE_LOG_REGISTER(pc_logtype_lcore, peercache.lcore, INFO);
