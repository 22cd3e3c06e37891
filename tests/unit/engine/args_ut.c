/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * engine/args.c: the split between EAL and app options, each app option,
 * the --in-memory/--no-huge rewrite, and how the config is assembled
 * (embedded default or file, then --set in order, then the checks).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../../engine/args.c"
#include "ut.h"

/* argv as the shell would pass it: "peercache", the words given, NULL. */
#define ARGV(...) ((char *[]){"peercache", __VA_ARGS__, NULL})

static struct pc_args g_args;
static char g_err[PC_CONFIG_ERR_MAX];

static int
parse(char **argv)
{
	int argc = 0;

	while (argv[argc] != NULL) {
		argc++;
	}
	g_err[0] = '\0';
	return pc_args_parse(argc, argv, &g_args, g_err, sizeof(g_err));
}

static void
test_split_eal_and_app(void)
{
	char **argv = ARGV("-l", "0-3", "--file-prefix", "n1", "--", "--config", "node.cfg",
			   "--set", "vnodes=10", "--set=protocol=tcp", "--check-config");

	CU_ASSERT_EQUAL_FATAL(parse(argv), 0);
	CU_ASSERT_EQUAL(g_args.eal_argc, 6);
	CU_ASSERT_STRING_EQUAL(g_args.eal_argv[0], "peercache");
	CU_ASSERT_STRING_EQUAL(g_args.eal_argv[1], "-l");
	CU_ASSERT_STRING_EQUAL(g_args.eal_argv[4], "n1");
	CU_ASSERT_STRING_EQUAL(g_args.eal_argv[5], "--no-pci");
	CU_ASSERT_TRUE(g_args.eal_no_pci_added);
	CU_ASSERT_PTR_NULL(g_args.eal_argv[6]);
	CU_ASSERT_STRING_EQUAL(g_args.config_path, "node.cfg");
	CU_ASSERT_EQUAL(g_args.n_sets, 2);
	CU_ASSERT_STRING_EQUAL(g_args.sets[0], "vnodes=10");
	CU_ASSERT_STRING_EQUAL(g_args.sets[1], "protocol=tcp");
	CU_ASSERT_TRUE(g_args.check_config);
	CU_ASSERT_FALSE(g_args.print_config);
	CU_ASSERT_FALSE(g_args.help);
}

static void
test_no_separator_all_eal(void)
{
	char **argv = ARGV("-l", "0-1", "--no-huge", "--log-level=peercache.*:debug");

	CU_ASSERT_EQUAL_FATAL(parse(argv), 0);
	CU_ASSERT_EQUAL(g_args.eal_argc, 6); /* and --no-pci */
	CU_ASSERT_PTR_NULL(g_args.config_path);
	CU_ASSERT_EQUAL(g_args.n_sets, 0);
	CU_ASSERT_STRING_EQUAL(g_args.eal_argv[4], "--log-level=peercache.*:debug");
}

static void
test_lone_help_and_version(void)
{
	CU_ASSERT_EQUAL(parse(ARGV("--help")), 0);
	CU_ASSERT_TRUE(g_args.help);
	CU_ASSERT_EQUAL(g_args.eal_argc, 2); /* argv[0] and the added --no-pci */
	CU_ASSERT_STRING_EQUAL(g_args.eal_argv[1], "--no-pci");
	CU_ASSERT_EQUAL(parse(ARGV("-h")), 0);
	CU_ASSERT_TRUE(g_args.help);
	CU_ASSERT_EQUAL(parse(ARGV("--version")), 0);
	CU_ASSERT_TRUE(g_args.version);
	/* With other EAL options, --help is EAL's (it prints EAL's usage). */
	CU_ASSERT_EQUAL(parse(ARGV("-l", "--help")), 0);
	CU_ASSERT_FALSE(g_args.help);
}

static void
test_print_config_flag(void)
{
	CU_ASSERT_EQUAL_FATAL(parse(ARGV("-l", "0", "--", "--print-config")), 0);
	CU_ASSERT_TRUE(g_args.print_config);
	CU_ASSERT_FALSE(g_args.check_config);
	CU_ASSERT_EQUAL(g_args.eal_argc, 4);
}

static void
test_in_memory_rewrite(void)
{
	char **both = ARGV("-l", "0-1", "--no-huge", "--in-memory", "--");
	char **huge = ARGV("-l", "0-1", "--in-memory", "--");

	CU_ASSERT_EQUAL_FATAL(parse(both), 0);
	CU_ASSERT_TRUE(g_args.eal_in_memory_rewritten);
	CU_ASSERT_STRING_EQUAL(g_args.eal_argv[4], "--no-shconf");
	CU_ASSERT_STRING_EQUAL(g_args.eal_argv[3], "--no-huge");
	/* With hugepages, --in-memory is DPDK's own and passes untouched. */
	CU_ASSERT_EQUAL_FATAL(parse(huge), 0);
	CU_ASSERT_FALSE(g_args.eal_in_memory_rewritten);
	CU_ASSERT_STRING_EQUAL(g_args.eal_argv[3], "--in-memory");
	/* An app option that happens to read --in-memory is not an EAL option. */
	CU_ASSERT_EQUAL(parse(ARGV("--no-huge", "--", "--set", "node_id=--in-memory")), 0);
	CU_ASSERT_STRING_EQUAL(g_args.sets[0], "node_id=--in-memory");
}

/* --no-huge without -m: EAL gets memory for the segment's index (64 MiB + segment/32). */
static void
test_no_huge_memory(void)
{
	struct pc_config cfg;

	pc_config_defaults(&cfg);
	cfg.global_segment_size = 8ull << 30;
	CU_ASSERT_EQUAL_FATAL(parse(ARGV("-l", "0", "--no-huge", "--")), 0);
	pc_args_size_memory(&g_args, &cfg);
	CU_ASSERT_EQUAL(g_args.eal_mem_added, 64 + 256);
	CU_ASSERT_EQUAL_FATAL(g_args.eal_argc, 7); /* peercache -l 0 --no-huge --no-pci -m 320 */
	CU_ASSERT_STRING_EQUAL(g_args.eal_argv[5], "-m");
	CU_ASSERT_STRING_EQUAL(g_args.eal_argv[6], "320");
	CU_ASSERT_PTR_NULL(g_args.eal_argv[7]);
	/* A part MiB rounds up. */
	cfg.global_segment_size = (2ull << 30) + (1ull << 20); /* /32: 64 MiB + 32 KiB */
	CU_ASSERT_EQUAL_FATAL(parse(ARGV("--no-huge", "--")), 0);
	pc_args_size_memory(&g_args, &cfg);
	CU_ASSERT_EQUAL(g_args.eal_mem_added, 64 + 65);
	/* The operator's own size wins, in any spelling; with hugepages nothing is added. */
	{
		const char *given[] = {"-m", "-m512", "--socket-mem=512", "--socket-mem"};

		for (size_t i = 0; i < PC_ARRAY_SIZE(given); i++) {
			char *argv[] = {"peercache", "--no-huge", (char *)given[i], "512", NULL};
			int argc_before;

			CU_ASSERT_EQUAL_FATAL(parse(argv), 0);
			argc_before = g_args.eal_argc;
			pc_args_size_memory(&g_args, &cfg);
			CU_ASSERT_EQUAL(g_args.eal_mem_added, 0);
			CU_ASSERT_EQUAL(g_args.eal_argc, argc_before);
		}
	}
	CU_ASSERT_EQUAL_FATAL(parse(ARGV("-l", "0", "--")), 0);
	pc_args_size_memory(&g_args, &cfg);
	CU_ASSERT_EQUAL(g_args.eal_mem_added, 0);
	/* Look-alikes are not memory options. */
	CU_ASSERT_EQUAL_FATAL(parse(ARGV("--no-huge", "--match-allocations", "--")), 0);
	pc_args_size_memory(&g_args, &cfg);
	CU_ASSERT_NOT_EQUAL(g_args.eal_mem_added, 0);
}

static void
test_pci_scan(void)
{
	/* Named devices keep EAL's PCI scan; nothing is added. */
	const char *named[] = {"-a", "-a0000:3b:00.0", "--allow=0000:3b:00.0",
			       "-b", "--block",        "--no-pci"};

	for (size_t i = 0; i < PC_ARRAY_SIZE(named); i++) {
		char *argv[] = {"peercache", "-l", "0", (char *)named[i], NULL};

		CU_ASSERT_EQUAL_FATAL(parse(argv), 0);
		CU_ASSERT_FALSE(g_args.eal_no_pci_added);
		CU_ASSERT_EQUAL(g_args.eal_argc, 4);
	}
	/* Look-alikes are not PCI options. */
	CU_ASSERT_EQUAL_FATAL(parse(ARGV("--allow-everything", "--")), 0);
	CU_ASSERT_TRUE(g_args.eal_no_pci_added);
	/* App options never count. */
	CU_ASSERT_EQUAL_FATAL(parse(ARGV("-l", "0", "--", "--set", "device_name=-a")), 0);
	CU_ASSERT_TRUE(g_args.eal_no_pci_added);
	CU_ASSERT_STRING_EQUAL(g_args.eal_argv[g_args.eal_argc - 1], "--no-pci");
}

static void
test_bad_options(void)
{
	CU_ASSERT_EQUAL(parse(ARGV("--", "--frobnicate")), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "--frobnicate"));
	CU_ASSERT_EQUAL(parse(ARGV("--", "--config")), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "--config"));
	CU_ASSERT_EQUAL(parse(ARGV("--", "--config=")), -EINVAL);
	CU_ASSERT_EQUAL(parse(ARGV("--", "--set")), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "key=value"));
	CU_ASSERT_EQUAL(parse(ARGV("--", "--config", "a.cfg", "--config", "b.cfg")), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "twice"));
	/* --configx is not --config. */
	CU_ASSERT_EQUAL(parse(ARGV("--", "--configx", "a")), -EINVAL);
}

static void
test_too_many_sets(void)
{
	char *argv[2 + 2 * (PC_ARGS_MAX_SETS + 1) + 1];
	int n = 0;

	argv[n++] = "peercache";
	argv[n++] = "--";
	for (int i = 0; i <= PC_ARGS_MAX_SETS; i++) {
		argv[n++] = "--set";
		argv[n++] = "vnodes=1";
	}
	argv[n] = NULL;
	CU_ASSERT_EQUAL(parse(argv), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "overrides"));
}

/* ---- pc_args_load_config ---- */

static struct pc_config g_cfg;

static int
load(char **argv)
{
	if (parse(argv) != 0) {
		return -100;
	}
	return pc_args_load_config(&g_args, &g_cfg, g_err, sizeof(g_err));
}

static void
test_load_embedded(void)
{
	CU_ASSERT_EQUAL_FATAL(load((char *[]){"peercache", NULL}), 0);
	CU_ASSERT_STRING_EQUAL(g_cfg.source, "<embedded>");
	CU_ASSERT_STRING_EQUAL(g_cfg.discovery_addr, "127.0.0.1:31998");
	CU_ASSERT_EQUAL(g_cfg.protocol, PC_PROTO_TCP);
	CU_ASSERT_FALSE(g_cfg.disk_enabled);
	CU_ASSERT_EQUAL(g_cfg.idle_policy, PC_IDLE_ADAPTIVE);
}

static void
test_load_sets_in_order(void)
{
	CU_ASSERT_EQUAL_FATAL(load(ARGV("--", "--set", "vnodes=7", "--set", "disk.size=2gb",
					"--set", "vnodes=9")),
			      0);
	CU_ASSERT_EQUAL(g_cfg.vnodes, 9);
	CU_ASSERT_EQUAL(g_cfg.disk_size, 2ULL << 30);
	/* The rest is still the embedded default. */
	CU_ASSERT_EQUAL(g_cfg.protocol, PC_PROTO_TCP);
}

static void
test_load_file_then_set(void)
{
	char path[] = "/tmp/pc_args_ut_XXXXXX";
	int fd = mkstemp(path);
	const char *text =
		"discovery_addr = \"127.0.0.1:4000\";\nvnodes = 5;\nprotocol = \"tcp\";\n";

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL_FATAL(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	CU_ASSERT_EQUAL(load(ARGV("--", "--config", path, "--set", "vnodes=6")), 0);
	CU_ASSERT_EQUAL(g_cfg.vnodes, 6);
	CU_ASSERT_STRING_EQUAL(g_cfg.discovery_addr, "127.0.0.1:4000");
	CU_ASSERT_STRING_EQUAL(g_cfg.source, path);
	/* A file is over the seed's defaults, not the embedded ones. */
	CU_ASSERT_TRUE(g_cfg.disk_enabled);
	CU_ASSERT_EQUAL(g_cfg.idle_policy, PC_IDLE_BUSY);
	unlink(path);
}

static void
test_load_errors(void)
{
	CU_ASSERT_EQUAL(load(ARGV("--", "--set", "protocol=udp")), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "protocol"));
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "\"tcp\""));
	CU_ASSERT_NOT_EQUAL(load(ARGV("--", "--config", "/nonexistent/pc.cfg")), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "/nonexistent/pc.cfg"));
	/* Cross-key checks run after every --set. */
	CU_ASSERT_EQUAL(load(ARGV("--", "--set", "heartbeat_interval=5", "--set", "member_ttl=4")),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "member_ttl"));
}

static void
test_usage_mentions_options(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	pc_args_usage(f, "peercache");
	fclose(f);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "--config FILE"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "--set KEY=VALUE"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "--check-config"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "--print-config"));
	free(buf);
}

static const struct pc_ut_test parse_tests[] = {
	{"EAL options before --, app options after", test_split_eal_and_app},
	{"no -- means all EAL", test_no_separator_all_eal},
	{"lone --help / --version are the app's", test_lone_help_and_version},
	{"--print-config", test_print_config_flag},
	{"--in-memory with --no-huge becomes --no-shconf", test_in_memory_rewrite},
	{"--no-pci added unless PCI devices are named", test_pci_scan},
	{"--no-huge without -m: EAL memory for the segment", test_no_huge_memory},
	{"bad options name themselves", test_bad_options},
	{"too many --set", test_too_many_sets},
	{"usage text", test_usage_mentions_options},
	{NULL, NULL},
};

static const struct pc_ut_test load_tests[] = {
	{"no --config: the embedded default", test_load_embedded},
	{"--set applied in order", test_load_sets_in_order},
	{"file, then --set", test_load_file_then_set},
	{"errors: bad value, missing file, cross-key", test_load_errors},
	{NULL, NULL},
};

static const struct pc_ut_suite suites[] = {
	{"args parse", NULL, NULL, parse_tests},
	{"args config", NULL, NULL, load_tests},
};

int
main(void)
{
	return pc_ut_run(suites, PC_ARRAY_SIZE(suites));
}
