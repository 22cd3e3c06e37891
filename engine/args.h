/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The engine's command line: `peercache [EAL options] -- [app options]`.
 *
 * Everything before the first `--` goes to rte_eal_init() untouched; the app
 * options follow it. Parsed before EAL starts, so --help, --version,
 * --check-config and --print-config need no hugepages and no privileges, and
 * a bad config exits 2 before any lcore starts. Main thread only.
 */
#ifndef PC_ARGS_H
#define PC_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"

#define PC_ARGS_MAX_SETS 128
#define PC_ARGS_MAX_EAL  256

/* Exit codes of the engine. */
#define PC_EXIT_OK      0
#define PC_EXIT_FAILURE 1 /* EAL or a subsystem could not start */
#define PC_EXIT_USAGE   2 /* bad command line or bad config */

struct pc_args {
	int eal_argc;
	/* argv[0], the EAL options, maybe --no-pci, maybe -m SIZE, NULL */
	char *eal_argv[PC_ARGS_MAX_EAL + 4];
	bool eal_in_memory_rewritten; /* --in-memory became --no-shconf (see below) */
	bool eal_no_pci_added;        /* --no-pci was added (see below) */
	bool eal_no_huge;             /* --no-huge was given */
	bool eal_mem_given;           /* -m / --socket-mem was given */
	unsigned long eal_mem_added;  /* MiB of the -m pc_args_size_memory() added; 0 = none */
	char eal_mem[24];
	const char *config_path; /* NULL = the embedded default */
	const char *sets[PC_ARGS_MAX_SETS];
	int n_sets;
	bool check_config;
	bool print_config;
	bool help;
	bool version;
};

/*
 * Split argv into EAL and app options and parse the app options. Without a
 * `--`, every argument is EAL's, except a lone --help/-h or --version, which
 * the app answers. Returns 0, or -EINVAL with err naming the bad option.
 * The struct points into argv, which must outlive it.
 *
 * EAL options pass through untouched, with two adjustments. `--no-pci` is
 * added unless the operator names PCI devices (-a/-b/--allow/--block/
 * --no-pci): NICs are driven through rdma-core, never DPDK PMDs, so the
 * scan would only probe devices EAL has no business with. And DPDK 22.11 refuses
 * `--in-memory` together with `--no-huge` (no-huge implies legacy memory),
 * yet that pair is how one asks for "no hugepages and no files". With both
 * given, --in-memory is passed as --no-shconf, which with --no-huge has the
 * same effect: no shared config, no runtime files, no secondary processes.
 */
int pc_args_parse(int argc, char **argv, struct pc_args *args, char *err, size_t errlen);

/*
 * Build the effective config: the compiled-in defaults, then the file (or
 * the embedded default without --config), then every --set in order, then
 * the cross-key checks. Returns 0, or a negative errno with err holding
 * `FILE:LINE: key: what was expected`.
 */
int pc_args_load_config(const struct pc_args *args, struct pc_config *cfg, char *err,
			size_t errlen);

/*
 * With --no-huge and no -m/--socket-mem, give EAL memory for what the
 * config will allocate from it (the page index and the slot descriptors
 * grow with global_segment_size; the segment itself is a memfd, not EAL
 * memory): -m 64 MiB + segment/32, rounded up to MiB. EAL's own default
 * there is 64 MiB, too little past a few GiB of segment. With hugepages EAL
 * grows its memory on demand and nothing is added. After
 * pc_args_load_config(), before rte_eal_init().
 */
void pc_args_size_memory(struct pc_args *args, const struct pc_config *cfg);

/* Print the usage text. */
void pc_args_usage(FILE *out, const char *prog);

#endif /* PC_ARGS_H */
