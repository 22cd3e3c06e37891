/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * common/log.c: the six peercache.* log types exist under their names before
 * EAL starts, so `--log-level=peercache.*:debug` (a pattern EAL applies to
 * the registered types) reaches all of them, and a single type can be set
 * on its own. rte_log works without EAL, which is the point: the types must
 * exist before rte_eal_init() parses --log-level.
 */
#include "../../../common/log.c"
#include "ut.h"

static int *const g_types[] = {&pc_logtype_engine, &pc_logtype_config,  &pc_logtype_control,
			       &pc_logtype_verbs,  &pc_logtype_mempool, &pc_logtype_lcore};
static const char *const g_names[] = {"peercache.engine", "peercache.config",  "peercache.control",
				      "peercache.verbs",  "peercache.mempool", "peercache.lcore"};

static void
test_registered_by_name(void)
{
	for (size_t i = 0; i < PC_ARRAY_SIZE(g_types); i++) {
		CU_ASSERT(*g_types[i] >= 0);
		/* Registering a known name returns its existing type. */
		CU_ASSERT_EQUAL(rte_log_register(g_names[i]), *g_types[i]);
		CU_ASSERT_EQUAL(rte_log_get_level(*g_types[i]), RTE_LOG_INFO);
	}
}

static void
test_pattern_reaches_every_type(void)
{
	CU_ASSERT_EQUAL_FATAL(rte_log_set_level_pattern("peercache.*", RTE_LOG_DEBUG), 0);
	for (size_t i = 0; i < PC_ARRAY_SIZE(g_types); i++) {
		CU_ASSERT_EQUAL(rte_log_get_level(*g_types[i]), RTE_LOG_DEBUG);
	}
	CU_ASSERT_EQUAL_FATAL(rte_log_set_level_pattern("peercache.verbs", RTE_LOG_ERR), 0);
	CU_ASSERT_EQUAL(rte_log_get_level(pc_logtype_verbs), RTE_LOG_ERR);
	CU_ASSERT_EQUAL(rte_log_get_level(pc_logtype_engine), RTE_LOG_DEBUG);
	CU_ASSERT_TRUE(rte_log_can_log(pc_logtype_engine, RTE_LOG_DEBUG));
	CU_ASSERT_FALSE(rte_log_can_log(pc_logtype_verbs, RTE_LOG_INFO));
}

static const struct pc_ut_test log_tests[] = {
	{"six types registered under their names", test_registered_by_name},
	{"peercache.* pattern and a single type", test_pattern_reaches_every_type},
	{NULL, NULL},
};

static const struct pc_ut_suite suites[] = {
	{"log types", NULL, NULL, log_tests},
};

int
main(void)
{
	for (size_t i = 0; i < PC_ARRAY_SIZE(g_types); i++) {
		if (*g_types[i] < 0) {
			fprintf(stderr, "log_ut: %s not registered before EAL\n", g_names[i]);
			return 1;
		}
	}
	return pc_ut_run(suites, PC_ARRAY_SIZE(suites));
}
