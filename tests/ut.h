/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared scaffolding for the CUnit binaries: suites as tables, and an EAL
 * start-up that every test binary can use (--no-huge --no-shconf, which is
 * --in-memory for a no-huge EAL; its own file prefix, no PCI scan, no
 * telemetry socket).
 */
#ifndef PC_UT_H
#define PC_UT_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "pc_common.h"

struct pc_ut_test {
	const char *name;
	CU_TestFunc fn;
};

struct pc_ut_suite {
	const char *name;
	CU_InitializeFunc init;
	CU_CleanupFunc cleanup;
	const struct pc_ut_test *tests; /* ends with {NULL, NULL} */
};

/* Register and run the suites; returns the process exit code (0 = all passed). */
static inline int
pc_ut_run(const struct pc_ut_suite *suites, size_t n_suites)
{
	unsigned int failures;

	if (CU_initialize_registry() != CUE_SUCCESS) {
		fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
		return 1;
	}
	for (size_t i = 0; i < n_suites; i++) {
		CU_pSuite s = CU_add_suite(suites[i].name, suites[i].init, suites[i].cleanup);

		if (s == NULL) {
			fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
			CU_cleanup_registry();
			return 1;
		}
		for (const struct pc_ut_test *t = suites[i].tests; t->name != NULL; t++) {
			if (CU_add_test(s, t->name, t->fn) == NULL) {
				fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
				CU_cleanup_registry();
				return 1;
			}
		}
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed() +
		   CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return failures == 0 ? 0 : 1;
}

#ifdef PC_UT_WITH_EAL
#include <rte_eal.h>
#include <rte_errno.h>

/*
 * Start EAL on `lcores` (an -l list) for the test binary `name`. Returns 0,
 * or -1 after printing why.
 */
static inline int
pc_ut_eal_init(const char *name, const char *lcores)
{
	char prefix[64];
	char *argv[] = {
		(char *)name,
		"-l",
		(char *)lcores,
		"--no-huge",
		"-m",
		"256",
		"--no-shconf",
		prefix,
		"--no-pci",
		"--no-telemetry",
		"--log-level=lib.*:error",
		"--log-level=peercache.*:warning",
		NULL,
	};

	snprintf(prefix, sizeof(prefix), "--file-prefix=ut_%s_%d", name, (int)getpid());
	if (rte_eal_init((int)(sizeof(argv) / sizeof(argv[0])) - 1, argv) < 0) {
		fprintf(stderr, "%s: EAL init failed: %s\n", name, rte_strerror(rte_errno));
		return -1;
	}
	return 0;
}
#endif

#endif /* PC_UT_H */
