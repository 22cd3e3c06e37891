/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "args.h"

/* `--opt VALUE` or `--opt=VALUE`: returns the value and advances *i, or NULL. */
static const char *
option_value(int argc, char **argv, int *i, const char *opt, bool *matched)
{
	size_t len = strlen(opt);
	const char *arg = argv[*i];

	*matched = false;
	if (strncmp(arg, opt, len) != 0) {
		return NULL;
	}
	if (arg[len] == '=') {
		*matched = true;
		return arg + len + 1;
	}
	if (arg[len] != '\0') {
		return NULL;
	}
	*matched = true;
	if (*i + 1 >= argc) {
		return NULL;
	}
	return argv[++*i];
}

static int
parse_app(int argc, char **argv, int first, struct pc_args *args, char *err, size_t errlen)
{
	for (int i = first; i < argc; i++) {
		const char *arg = argv[i];
		const char *val;
		bool matched;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			args->help = true;
			continue;
		}
		if (strcmp(arg, "--version") == 0) {
			args->version = true;
			continue;
		}
		if (strcmp(arg, "--check-config") == 0) {
			args->check_config = true;
			continue;
		}
		if (strcmp(arg, "--print-config") == 0) {
			args->print_config = true;
			continue;
		}
		val = option_value(argc, argv, &i, "--config", &matched);
		if (matched) {
			if (val == NULL || *val == '\0') {
				snprintf(err, errlen, "--config: expected a file name");
				return -EINVAL;
			}
			if (args->config_path != NULL) {
				snprintf(err, errlen, "--config: given twice (\"%s\", \"%s\")",
					 args->config_path, val);
				return -EINVAL;
			}
			args->config_path = val;
			continue;
		}
		val = option_value(argc, argv, &i, "--set", &matched);
		if (matched) {
			if (val == NULL) {
				snprintf(err, errlen, "--set: expected key=value");
				return -EINVAL;
			}
			if (args->n_sets == PC_ARGS_MAX_SETS) {
				snprintf(err, errlen, "--set: more than %d overrides",
					 PC_ARGS_MAX_SETS);
				return -EINVAL;
			}
			args->sets[args->n_sets++] = val;
			continue;
		}
		snprintf(err, errlen, "unknown option \"%s\" (EAL options go before \"--\")", arg);
		return -EINVAL;
	}
	return 0;
}

/* EAL options that choose PCI devices: with any of them, the scan stays on. */
static bool
is_pci_option(const char *arg)
{
	static const char *const opts[] = {
		"-a", "-b", "--allow", "--block", "--no-pci", "--pci-whitelist", "--pci-blacklist",
		"-w"};

	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		size_t len = strlen(opts[i]);

		if (strncmp(arg, opts[i], len) == 0 && (arg[len] == '\0' || arg[len] == '=' ||
							(opts[i][1] != '-' && arg[len] != '\0'))) {
			return true;
		}
	}
	return false;
}

/* EAL options that size its memory: with any of them, the operator chose. */
static bool
is_mem_option(const char *arg)
{
	return strcmp(arg, "-m") == 0 ||
	       (strncmp(arg, "-m", 2) == 0 && arg[2] >= '0' && arg[2] <= '9') ||
	       strncmp(arg, "--socket-mem", 12) == 0;
}

static int
copy_eal(char **argv, int n, struct pc_args *args, char *err, size_t errlen)
{
	bool no_huge = false;
	bool pci_named = false;

	if (n > PC_ARGS_MAX_EAL) {
		snprintf(err, errlen, "more than %d EAL arguments", PC_ARGS_MAX_EAL);
		return -EINVAL;
	}
	for (int i = 0; i < n; i++) {
		args->eal_argv[i] = argv[i];
		if (i > 0) {
			no_huge = no_huge || strcmp(argv[i], "--no-huge") == 0;
			pci_named = pci_named || is_pci_option(argv[i]);
			args->eal_mem_given = args->eal_mem_given || is_mem_option(argv[i]);
		}
	}
	args->eal_no_huge = no_huge;
	args->eal_argc = n;
	/*
	 * NICs are driven through rdma-core, never through DPDK's PMDs, so EAL's
	 * PCI scan would only probe (and might grab) devices it has no business
	 * with. Off unless the operator names PCI devices.
	 */
	if (!pci_named) {
		args->eal_argv[args->eal_argc++] = (char *)"--no-pci";
		args->eal_no_pci_added = true;
	}
	args->eal_argv[args->eal_argc] = NULL;
	if (!no_huge) {
		return 0;
	}
	for (int i = 1; i < n; i++) {
		if (strcmp(args->eal_argv[i], "--in-memory") == 0) {
			args->eal_argv[i] = (char *)"--no-shconf";
			args->eal_in_memory_rewritten = true;
		}
	}
	return 0;
}

void
pc_args_size_memory(struct pc_args *args, const struct pc_config *cfg)
{
	unsigned long mib;

	if (!args->eal_no_huge || args->eal_mem_given || args->eal_argc == 0) {
		return;
	}
	mib = 64ul + (unsigned long)((cfg->global_segment_size / 32 + (1ull << 20) - 1) >> 20);
	snprintf(args->eal_mem, sizeof(args->eal_mem), "%lu", mib);
	args->eal_argv[args->eal_argc++] = (char *)"-m";
	args->eal_argv[args->eal_argc++] = args->eal_mem;
	args->eal_argv[args->eal_argc] = NULL;
	args->eal_mem_added = mib;
}

int
pc_args_parse(int argc, char **argv, struct pc_args *args, char *err, size_t errlen)
{
	int sep = -1;

	memset(args, 0, sizeof(*args));
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			sep = i;
			break;
		}
	}
	if (sep < 0) {
		/* `peercache --help` and `peercache --version` are the app's, as users expect. */
		if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
				  strcmp(argv[1], "--version") == 0)) {
			copy_eal(argv, 1, args, err, errlen);
			return parse_app(argc, argv, 1, args, err, errlen);
		}
		return copy_eal(argv, argc, args, err, errlen);
	}
	if (copy_eal(argv, sep, args, err, errlen) != 0) {
		return -EINVAL;
	}
	return parse_app(argc, argv, sep + 1, args, err, errlen);
}

int
pc_args_load_config(const struct pc_args *args, struct pc_config *cfg, char *err, size_t errlen)
{
	int rc;

	pc_config_defaults(cfg);
	if (args->config_path != NULL) {
		rc = pc_config_load_file(cfg, args->config_path, err, errlen);
	} else {
		rc = pc_config_load_embedded(cfg, err, errlen);
	}
	if (rc != 0) {
		return rc;
	}
	for (int i = 0; i < args->n_sets; i++) {
		rc = pc_config_set(cfg, args->sets[i], err, errlen);
		if (rc != 0) {
			return rc;
		}
	}
	return pc_config_finalize(cfg, err, errlen);
}

void
pc_args_usage(FILE *out, const char *prog)
{
	fprintf(out,
		"Usage: %s [EAL options] -- [options]\n"
		"\n"
		"PeerCache engine: one per node; publishes KV pages and serves them to peers.\n"
		"\n"
		"Options (after \"--\"):\n"
		"  --config FILE      load a libconfig file (default: the embedded single-node\n"
		"                     config: its own discovery head on 127.0.0.1, TCP, no disk)\n"
		"  --set KEY=VALUE    override one key after the file; repeatable, applied in\n"
		"                     order (KEY flat as in the seed, e.g. disk_enabled, or\n"
		"                     dotted, e.g. disk.enabled)\n"
		"  --check-config     validate the config and exit: 0 valid, 2 invalid\n"
		"  --print-config     print the effective config (every key) and exit\n"
		"  --help             this text\n"
		"  --version          print the version and exit\n"
		"\n"
		"EAL options (before \"--\") go to DPDK untouched, for example:\n"
		"  -l 0-3             lcores: the first is the control lcore, the rest workers\n"
		"  --no-huge          plain pages instead of hugepages\n"
		"  --in-memory        no files under /var/run/dpdk\n"
		"  --file-prefix P    run several engines on one host\n"
		"  --log-level=peercache.*:debug\n"
		"\n"
		"Examples:\n"
		"  %s -l 0-3 -- --config /etc/peercache/node.cfg\n"
		"  %s -l 0-1 --no-huge --in-memory -- --set protocol=tcp\n"
		"\n"
		"Exit codes: 0 clean stop (SIGINT/SIGTERM), 1 start-up failure, 2 bad\n"
		"command line or config (`FILE:LINE: key: what was expected` on stderr).\n",
		prog, prog, prog);
}
