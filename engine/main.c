/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * peercache: the per-node engine.
 *
 *   peercache [EAL options] -- [--config FILE] [--set key=value]... \
 *             [--check-config] [--print-config] [--help] [--version]
 *
 * Order of start-up: app options and config first (a bad config exits 2
 * before EAL or any lcore starts), then EAL, then the engine. Tear-down runs
 * in reverse.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>

#include "args.h"
#include "config.h"
#include "engine.h"
#include "pc_log.h"

static void
on_stop_signal(int signo)
{
	pc_engine_request_stop(signo);
}

static int
install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0) {
		return -errno;
	}
	/* A peer closing a socket must fail that write, not kill the engine. */
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, NULL) != 0) {
		return -errno;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static struct pc_config cfg; /* large (secret buffer); lives as long as the process */
	struct pc_args args;
	struct pc_engine *engine;
	char err[PC_CONFIG_ERR_MAX];
	int rc;

	if (pc_args_parse(argc, argv, &args, err, sizeof(err)) != 0) {
		fprintf(stderr, "peercache: %s\nTry '%s -- --help'.\n", err, argv[0]);
		return PC_EXIT_USAGE;
	}
	if (args.help) {
		pc_args_usage(stdout, argv[0]);
		return PC_EXIT_OK;
	}
	if (args.version) {
		printf("peercache %s (%s)\n", PC_VERSION, PC_GIT_REV);
		return PC_EXIT_OK;
	}
	if (pc_args_load_config(&args, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "peercache: %s\n", err);
		return PC_EXIT_USAGE;
	}
	if (args.check_config) {
		printf("%s: configuration ok\n", cfg.source);
		return PC_EXIT_OK;
	}
	if (args.print_config) {
		return pc_config_print(&cfg, stdout) == 0 ? PC_EXIT_OK : PC_EXIT_FAILURE;
	}

	pc_args_size_memory(&args, &cfg);
	/* Logged after EAL is up; decided here, before rte_eal_init consumes argv. */
	rc = rte_eal_init(args.eal_argc, args.eal_argv);
	if (rc < 0) {
		fprintf(stderr, "peercache: EAL initialisation failed: %s\n%s",
			rte_strerror(rte_errno),
			"  (no hugepages? add --no-huge; several engines on one host? give each "
			"a --file-prefix, or use --in-memory)\n");
		return PC_EXIT_FAILURE;
	}
	rc = install_signals();
	if (rc != 0) {
		PC_LOG(ERR, engine, "cannot install signal handlers: %s", strerror(-rc));
		goto err_eal_cleanup;
	}
	PC_LOG(INFO, engine, "peercache %s (%s) starting, config %s", PC_VERSION, PC_GIT_REV,
	       cfg.source);
	if (args.eal_in_memory_rewritten) {
		PC_LOG(INFO, engine, "--in-memory with --no-huge: passed to EAL as --no-shconf");
	}
	if (args.eal_mem_added != 0) {
		PC_LOG(INFO, engine,
		       "--no-huge without -m: EAL memory sized for the segment's index, -m %lu",
		       args.eal_mem_added);
	}
	if (args.eal_no_pci_added) {
		PC_LOG(DEBUG, engine, "no PCI device named: EAL's PCI scan is off (--no-pci)");
	}
	engine = pc_engine_create(&cfg);
	if (engine == NULL) {
		goto err_eal_cleanup;
	}
	rc = pc_engine_run(engine);
	pc_engine_destroy(engine);
	rte_eal_cleanup();
	return rc == 0 ? PC_EXIT_OK : PC_EXIT_FAILURE;

err_eal_cleanup:
	rte_eal_cleanup();
	return PC_EXIT_FAILURE;
}
