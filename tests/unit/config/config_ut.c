/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests for config/config.c. The .c is included so the tests can walk
 * the schema table (g_keys) and compare configs key by key.
 *
 * Run from the repository root: the example files are read as
 * config/examples/NAME.cfg.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../../config/config.c"
#include "../../ut.h"

static struct pc_config g_cfg;
static char g_err[PC_CONFIG_ERR_MAX];

/* Fails the test and shows both strings when `needle` is not in `hay`. */
#define ASSERT_HAS(hay, needle)                                                                    \
	do {                                                                                       \
		const char *hay_ = (hay);                                                          \
		const char *needle_ = (needle);                                                    \
		bool found_ = strstr(hay_, needle_) != NULL;                                       \
		if (!found_) {                                                                     \
			fprintf(stderr, "\n    %s:%d: \"%s\" lacks \"%s\"\n", __FILE__, __LINE__,  \
				hay_, needle_);                                                    \
		}                                                                                  \
		CU_ASSERT(found_);                                                                 \
	} while (0)

#define ASSERT_LACKS(hay, needle) CU_ASSERT(strstr((hay), (needle)) == NULL)

/* Shows the message of an unexpected failure. */
#define ASSERT_OK(expr)                                                                            \
	do {                                                                                       \
		int rc_ = (expr);                                                                  \
		if (rc_ != 0) {                                                                    \
			fprintf(stderr, "\n    %s:%d: rc %d: %s\n", __FILE__, __LINE__, rc_,       \
				g_err);                                                            \
		}                                                                                  \
		CU_ASSERT_EQUAL(rc_, 0);                                                           \
	} while (0)

static int
load(const char *text)
{
	g_err[0] = '\0';
	pc_config_defaults(&g_cfg);
	return pc_config_load_string(&g_cfg, "node.cfg", text, g_err, sizeof(g_err));
}

/* Load, then finalize if the load worked: the whole path the engine takes. */
static int
load_final(const char *text)
{
	int rc = load(text);

	if (rc != 0) {
		return rc;
	}
	return pc_config_finalize(&g_cfg, g_err, sizeof(g_err));
}

static int
set(const char *assignment)
{
	g_err[0] = '\0';
	return pc_config_set(&g_cfg, assignment, g_err, sizeof(g_err));
}

static int
line_of(const struct pc_config *cfg, const char *key)
{
	const struct pc_cfg_key *k = find_key(key);

	CU_ASSERT_PTR_NOT_NULL_FATAL(k);
	return cfg->key_line[key_index(k)];
}

static bool
same_key(const struct pc_cfg_key *k, const struct pc_config *a, const struct pc_config *b)
{
	const void *fa = cfield_of(a, k);
	const void *fb = cfield_of(b, k);

	switch (k->type) {
	case PC_CFG_BOOL:
		return *(const bool *)fa == *(const bool *)fb;
	case PC_CFG_INT:
	case PC_CFG_ENUM:
		return *(const int *)fa == *(const int *)fb;
	case PC_CFG_DECIMAL:
		return *(const double *)fa == *(const double *)fb;
	case PC_CFG_SIZE:
		return *(const uint64_t *)fa == *(const uint64_t *)fb;
	case PC_CFG_WORD:
	case PC_CFG_STRING:
	case PC_CFG_LIST:
		return strcmp(fa, fb) == 0;
	}
	return false;
}

/* Every key compared by its type; names the first that differs. */
static bool
same_values(const struct pc_config *a, const struct pc_config *b)
{
	for (int i = 0; i < PC_CFG_NKEYS; i++) {
		if (!same_key(&g_keys[i], a, b)) {
			fprintf(stderr, "\n    key %s differs\n", g_keys[i].name);
			return false;
		}
	}
	return true;
}

/* print → load → finalize, and the values must be the ones printed. */
static void
assert_round_trip(const struct pc_config *cfg)
{
	struct pc_config back;
	char *text = NULL;
	char *text2 = NULL;
	size_t len = 0;
	size_t len2 = 0;
	FILE *mem;

	mem = open_memstream(&text, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mem);
	CU_ASSERT_EQUAL(pc_config_print(cfg, mem), 0);
	fclose(mem);

	pc_config_defaults(&back);
	g_err[0] = '\0';
	ASSERT_OK(pc_config_load_string(&back, "printed.cfg", text, g_err, sizeof(g_err)));
	ASSERT_OK(pc_config_finalize(&back, g_err, sizeof(g_err)));
	CU_ASSERT(same_values(cfg, &back));

	/* Printing what was read back gives the same values, line for line. */
	mem = open_memstream(&text2, &len2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mem);
	CU_ASSERT_EQUAL(pc_config_print(&back, mem), 0);
	fclose(mem);
	for (int i = 0; i < PC_CFG_NKEYS; i++) {
		const struct pc_cfg_key *k = &g_keys[i];

		if (!(k->flags & PC_CFG_F_SECRET)) {
			CU_ASSERT(line_of(&back, k->name) > 0);
		}
	}
	free(text);
	free(text2);
}

static char *
print_to_string(const struct pc_config *cfg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);

	if (mem == NULL) {
		return NULL;
	}
	if (pc_config_print(cfg, mem) != 0) {
		fclose(mem);
		free(text);
		return NULL;
	}
	fclose(mem);
	return text;
}

/* A temporary file holding `content`; the caller unlinks it. */
static void
make_temp(char *path, size_t len, const char *content)
{
	int fd;

	snprintf(path, len, "/tmp/pc-config-ut-XXXXXX");
	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
}

/* ---- Schema and defaults ---- */

static void
test_table_integrity(void)
{
	size_t prev_end = 0;

	CU_ASSERT_EQUAL(PC_CFG_NKEYS, 46);
	CU_ASSERT(PC_CFG_NKEYS <= PC_CONFIG_MAX_KEYS);
	for (int i = 0; i < PC_CFG_NKEYS; i++) {
		const struct pc_cfg_key *k = &g_keys[i];

		CU_ASSERT(strlen(k->name) <= PC_CFG_NAME_MAX);
		CU_ASSERT_PTR_NOT_NULL(k->help);
		/* Keys follow the struct's field order, without overlapping. */
		CU_ASSERT(k->offset >= prev_end);
		prev_end = k->offset + k->size;
		CU_ASSERT(prev_end <= offsetof(struct pc_config, source));
		for (int j = 0; j < i; j++) {
			CU_ASSERT(strcmp(g_keys[j].name, k->name) != 0);
		}
		switch (k->type) {
		case PC_CFG_BOOL:
			CU_ASSERT_EQUAL(k->size, sizeof(bool));
			break;
		case PC_CFG_INT:
		case PC_CFG_ENUM:
			CU_ASSERT_EQUAL(k->size, sizeof(int));
			break;
		case PC_CFG_DECIMAL:
			CU_ASSERT_EQUAL(k->size, sizeof(double));
			break;
		case PC_CFG_SIZE:
			CU_ASSERT_EQUAL(k->size, sizeof(uint64_t));
			break;
		case PC_CFG_WORD:
			CU_ASSERT_PTR_NOT_NULL(k->names);
			break;
		case PC_CFG_STRING:
		case PC_CFG_LIST:
			CU_ASSERT((size_t)k->max < k->size);
			break;
		}
		if (k->type == PC_CFG_ENUM || k->type == PC_CFG_WORD) {
			CU_ASSERT_PTR_NOT_NULL(k->names);
		}
	}
}

static void
test_defaults(void)
{
	pc_config_defaults(&g_cfg);
	CU_ASSERT_STRING_EQUAL(g_cfg.source, "<defaults>");
	CU_ASSERT_STRING_EQUAL(g_cfg.backend_name, "peercache");
	CU_ASSERT_STRING_EQUAL(g_cfg.module_path, "peercache.store");
	CU_ASSERT_STRING_EQUAL(g_cfg.class_name, "PeerCacheStore");
	CU_ASSERT_EQUAL(g_cfg.interface_v1, 0);
	CU_ASSERT_TRUE(g_cfg.autostart);
	CU_ASSERT_STRING_EQUAL(g_cfg.discovery_addr, "");
	CU_ASSERT_EQUAL(g_cfg.mode, PC_MODE_P2P);
	CU_ASSERT_EQUAL(g_cfg.write_policy, PC_WRITE_LOCAL);
	CU_ASSERT_EQUAL(g_cfg.role, PC_ROLE_AUTO);
	CU_ASSERT_EQUAL(g_cfg.protocol, PC_PROTO_RDMA);
	CU_ASSERT_STRING_EQUAL(g_cfg.device_name, "");
	CU_ASSERT_STRING_EQUAL(g_cfg.device_names, "");
	CU_ASSERT_EQUAL(g_cfg.ib_port, 1);
	CU_ASSERT_EQUAL(g_cfg.gid_index, 3);
	CU_ASSERT_EQUAL(g_cfg.max_channels_per_peer, 16);
	CU_ASSERT_EQUAL(g_cfg.global_segment_size, 4ULL << 30);
	CU_ASSERT_EQUAL(g_cfg.vnodes, 160);
	CU_ASSERT_EQUAL(g_cfg.directory_replicas, 2);
	CU_ASSERT_DOUBLE_EQUAL(g_cfg.directory_read_cache_ttl, 0.0, 0.0);
	CU_ASSERT_EQUAL(g_cfg.max_masters, 3);
	CU_ASSERT_TRUE(g_cfg.disk_enabled);
	CU_ASSERT_STRING_EQUAL(g_cfg.disk_path, "/data/peercache/");
	CU_ASSERT_EQUAL(g_cfg.disk_size, 100ULL << 30);
	CU_ASSERT_TRUE(g_cfg.metrics_enabled);
	CU_ASSERT_EQUAL(g_cfg.metrics_port, 31997);
	CU_ASSERT_STRING_EQUAL(g_cfg.metrics_bind_host, "0.0.0.0");
	CU_ASSERT_TRUE(g_cfg.metrics_dashboard);
	CU_ASSERT_STRING_EQUAL(g_cfg.meta_bind_host, "0.0.0.0");
	CU_ASSERT_STRING_EQUAL(g_cfg.local_hostname, "");
	CU_ASSERT_STRING_EQUAL(g_cfg.rdma_bind_host, "0.0.0.0");
	CU_ASSERT_EQUAL(g_cfg.rdma_port, 0);
	CU_ASSERT_STRING_EQUAL(g_cfg.control_bind_host, "0.0.0.0");
	CU_ASSERT_EQUAL(g_cfg.control_port, 0);
	CU_ASSERT_STRING_EQUAL(g_cfg.node_id, "");
	CU_ASSERT_DOUBLE_EQUAL(g_cfg.heartbeat_interval, 2.0, 0.0);
	CU_ASSERT_DOUBLE_EQUAL(g_cfg.member_ttl, 6.0, 0.0);
	CU_ASSERT_STRING_EQUAL(g_cfg.engine_socket, "/run/peercache/engine.sock");
	CU_ASSERT_EQUAL(g_cfg.idle_policy, PC_IDLE_BUSY);
	CU_ASSERT_STRING_EQUAL(g_cfg.cluster_secret, "");
	CU_ASSERT_STRING_EQUAL(g_cfg.cluster_secret_file, "");
	CU_ASSERT_EQUAL(g_cfg.config_version, 1);
	for (int i = 0; i < PC_CONFIG_MAX_KEYS; i++) {
		CU_ASSERT_EQUAL(g_cfg.key_line[i], 0);
	}
}

static void
test_enum_names(void)
{
	CU_ASSERT_STRING_EQUAL(pc_config_mode_name(PC_MODE_P2P), "p2p");
	CU_ASSERT_STRING_EQUAL(pc_config_mode_name(PC_MODE_HYBRID), "hybrid");
	CU_ASSERT_STRING_EQUAL(pc_config_mode_name(PC_MODE_CENTRALIZED), "centralized");
	CU_ASSERT_STRING_EQUAL(pc_config_write_policy_name(PC_WRITE_BOTH), "both");
	CU_ASSERT_STRING_EQUAL(pc_config_role_name(PC_ROLE_STORAGE), "storage");
	CU_ASSERT_STRING_EQUAL(pc_config_protocol_name(PC_PROTO_RDMA), "rdma");
	CU_ASSERT_STRING_EQUAL(pc_config_protocol_name(PC_PROTO_TCP), "tcp");
	CU_ASSERT_STRING_EQUAL(pc_config_idle_policy_name(PC_IDLE_BUSY), "busy");
	CU_ASSERT_STRING_EQUAL(pc_config_idle_policy_name(PC_IDLE_ADAPTIVE), "adaptive");
	CU_ASSERT_STRING_EQUAL(pc_config_protocol_name((enum pc_protocol)7), "unknown");
}

static void
test_embedded(void)
{
	struct pc_config def;

	g_err[0] = '\0';
	pc_config_defaults(&g_cfg);
	ASSERT_OK(pc_config_load_embedded(&g_cfg, g_err, sizeof(g_err)));
	ASSERT_OK(pc_config_finalize(&g_cfg, g_err, sizeof(g_err)));
	CU_ASSERT_STRING_EQUAL(g_cfg.source, "<embedded>");
	CU_ASSERT_STRING_EQUAL(g_cfg.discovery_addr, "127.0.0.1:31998");
	CU_ASSERT_STRING_EQUAL(g_cfg.local_hostname, "127.0.0.1");
	CU_ASSERT_STRING_EQUAL(g_cfg.meta_bind_host, "127.0.0.1");
	CU_ASSERT_STRING_EQUAL(g_cfg.control_bind_host, "127.0.0.1");
	CU_ASSERT_STRING_EQUAL(g_cfg.rdma_bind_host, "127.0.0.1");
	CU_ASSERT_STRING_EQUAL(g_cfg.metrics_bind_host, "127.0.0.1");
	CU_ASSERT_EQUAL(g_cfg.protocol, PC_PROTO_TCP);
	CU_ASSERT_FALSE(g_cfg.disk_enabled);
	CU_ASSERT_EQUAL(g_cfg.idle_policy, PC_IDLE_ADAPTIVE);
	CU_ASSERT_EQUAL(g_cfg.global_segment_size, 2ULL << 30);
	CU_ASSERT_STRING_EQUAL(g_cfg.engine_socket, "/tmp/peercache/engine.sock");
	CU_ASSERT_EQUAL(g_cfg.metrics_port, 0);
	CU_ASSERT(line_of(&g_cfg, "discovery_addr") > 0);
	CU_ASSERT(line_of(&g_cfg, "protocol") > 0);
	/* Keys it does not name keep the compiled-in defaults. */
	pc_config_defaults(&def);
	CU_ASSERT_EQUAL(g_cfg.vnodes, def.vnodes);
	CU_ASSERT_EQUAL(g_cfg.mode, def.mode);
	CU_ASSERT_STRING_EQUAL(g_cfg.disk_path, def.disk_path);
	CU_ASSERT_EQUAL(line_of(&g_cfg, "vnodes"), 0);
	/* The text handed out is the text loaded. */
	ASSERT_HAS(pc_config_embedded_text(), "discovery_addr = \"127.0.0.1:31998\";");
	ASSERT_HAS(pc_config_embedded_text(), "idle_policy = \"adaptive\";");
}

/* ---- Each type, from a file ---- */

static void
test_type_bool(void)
{
	ASSERT_OK(load("disk_enabled = false;\nmetrics_dashboard = true;\nautostart = FALSE;"));
	CU_ASSERT_FALSE(g_cfg.disk_enabled);
	CU_ASSERT_TRUE(g_cfg.metrics_dashboard);
	CU_ASSERT_FALSE(g_cfg.autostart);

	CU_ASSERT_EQUAL(load("vnodes = 8;\ndisk_enabled = \"true\";"), -EINVAL);
	ASSERT_HAS(g_err,
		   "node.cfg:2: disk_enabled: expected a boolean (true or false), got \"true\"");
	CU_ASSERT_EQUAL(load("disk_enabled = 1;"), -EINVAL);
	ASSERT_HAS(g_err, "node.cfg:1: disk_enabled: expected a boolean (true or false), got 1");
}

static void
test_type_int(void)
{
	ASSERT_OK(load("vnodes = 4096;\nib_port = 0x10;\ngid_index = -1;\nmetrics_port = 0;"));
	CU_ASSERT_EQUAL(g_cfg.vnodes, 4096);
	CU_ASSERT_EQUAL(g_cfg.ib_port, 16);
	CU_ASSERT_EQUAL(g_cfg.gid_index, -1);
	CU_ASSERT_EQUAL(g_cfg.metrics_port, 0);

	CU_ASSERT_EQUAL(load("vnodes = 0;"), -EINVAL);
	ASSERT_HAS(g_err, "node.cfg:1: vnodes: expected an integer in [1, 4096], got 0");
	CU_ASSERT_EQUAL(load("\n\nvnodes = 4097;"), -EINVAL);
	ASSERT_HAS(g_err, "node.cfg:3: vnodes: expected an integer in [1, 4096], got 4097");
	CU_ASSERT_EQUAL(load("gid_index = -2;"), -EINVAL);
	ASSERT_HAS(g_err, "gid_index: expected an integer in [-1, 255], got -2");
	CU_ASSERT_EQUAL(load("vnodes = 1.5;"), -EINVAL);
	ASSERT_HAS(g_err, "vnodes: expected an integer in [1, 4096], got 1.5");
	CU_ASSERT_EQUAL(load("vnodes = \"12\";"), -EINVAL);
	ASSERT_HAS(g_err, "vnodes: expected an integer in [1, 4096], got \"12\"");
	CU_ASSERT_EQUAL(load("config_version = 2;"), -EINVAL);
	ASSERT_HAS(g_err, "config_version: expected an integer in [1, 1], got 2");

	/* libconfig 1.5 alone would read 4294967297 as 1 and accept it. */
	CU_ASSERT_EQUAL(load("vnodes = 4294967297;"), -EINVAL);
	ASSERT_HAS(g_err, "vnodes: expected an integer in [1, 4096], got 4294967297");
	CU_ASSERT_EQUAL(load("metrics_port = 0x100000050;"), -EINVAL);
	ASSERT_HAS(g_err, "got 4294967376");
	CU_ASSERT_EQUAL(load("vnodes = -4294967295;"), -EINVAL);
	ASSERT_HAS(g_err, "got -4294967295");
	CU_ASSERT_EQUAL(load("vnodes = 9223372036854775807L;"), -EINVAL);
	ASSERT_HAS(g_err, "got 9223372036854775807");

	/* interface_v1 takes SGLang's truthy values: 0/1 and booleans. */
	ASSERT_OK(load("interface_v1 = true;"));
	CU_ASSERT_EQUAL(g_cfg.interface_v1, 1);
	ASSERT_OK(load("interface_v1 = 1;"));
	CU_ASSERT_EQUAL(g_cfg.interface_v1, 1);
	CU_ASSERT_EQUAL(load("interface_v1 = 2;"), -EINVAL);
	ASSERT_HAS(g_err, "interface_v1: expected an integer in [0, 1] or a boolean, got 2");
}

static void
test_type_int64_and_size(void)
{
	ASSERT_OK(load("global_segment_size = 8589934592;\ndisk_size = 0x10000000000;"));
	CU_ASSERT_EQUAL(g_cfg.global_segment_size, 8ULL << 30);
	CU_ASSERT_EQUAL(g_cfg.disk_size, 1ULL << 40);
	ASSERT_OK(load("global_segment_size = 8589934592L;"));
	CU_ASSERT_EQUAL(g_cfg.global_segment_size, 8ULL << 30);
	ASSERT_OK(load("global_segment_size = 1048576;"));
	CU_ASSERT_EQUAL(g_cfg.global_segment_size, 1ULL << 20);
	ASSERT_OK(load("global_segment_size = \"1.5 GiB\";\ndisk_size = \"1024tb\";"));
	CU_ASSERT_EQUAL(g_cfg.global_segment_size, 1536ULL << 20);
	CU_ASSERT_EQUAL(g_cfg.disk_size, 1ULL << 50);
	ASSERT_OK(load("global_segment_size = \"16TB\";"));
	CU_ASSERT_EQUAL(g_cfg.global_segment_size, 16ULL << 40);

	CU_ASSERT_EQUAL(load("global_segment_size = 1048575;"), -EINVAL);
	ASSERT_HAS(g_err, "global_segment_size: expected a size in [1mb, 16tb], got 1048575");
	CU_ASSERT_EQUAL(load("global_segment_size = \"17tb\";"), -EINVAL);
	ASSERT_HAS(g_err, "global_segment_size: expected a size in [1mb, 16tb], got \"17tb\"");
	CU_ASSERT_EQUAL(load("disk_size = \"1025tb\";"), -EINVAL);
	ASSERT_HAS(g_err, "disk_size: expected a size in [1mb, 1024tb], got \"1025tb\"");
	CU_ASSERT_EQUAL(load("global_segment_size = -1;"), -EINVAL);
	ASSERT_HAS(g_err, "got -1");
	CU_ASSERT_EQUAL(load("disk_size = \"99999999999999999999b\";"), -EINVAL);
	ASSERT_HAS(g_err, "disk_size: expected a size in [1mb, 1024tb]");

	CU_ASSERT_EQUAL(load("vnodes = 8;\n\nglobal_segment_size = \"8 parsecs\";"), -EINVAL);
	ASSERT_HAS(g_err, "node.cfg:3: global_segment_size: expected a size (an integer, or a "
			  "string like \"8gb\" or \"512mb\"), got \"8 parsecs\"");
	CU_ASSERT_EQUAL(load("global_segment_size = 1.5;"), -EINVAL);
	ASSERT_HAS(g_err, "global_segment_size: expected a size (an integer, or a string like");
	ASSERT_HAS(g_err, "got 1.5");
	CU_ASSERT_EQUAL(load("global_segment_size = \"0.1k\";"), -EINVAL);
	ASSERT_HAS(g_err, "expected a size (an integer");
}

static void
test_type_decimal(void)
{
	ASSERT_OK(load("heartbeat_interval = 0.5;\nmember_ttl = 30;\n"
		       "directory_read_cache_ttl = 1e-3;"));
	CU_ASSERT_DOUBLE_EQUAL(g_cfg.heartbeat_interval, 0.5, 0.0);
	CU_ASSERT_DOUBLE_EQUAL(g_cfg.member_ttl, 30.0, 0.0);
	CU_ASSERT_DOUBLE_EQUAL(g_cfg.directory_read_cache_ttl, 0.001, 0.0);

	CU_ASSERT_EQUAL(load("heartbeat_interval = 0.001;"), -EINVAL);
	ASSERT_HAS(g_err, "heartbeat_interval: expected a number of seconds in [0.01, 3600.0], "
			  "got 0.001");
	CU_ASSERT_EQUAL(load("member_ttl = 86401;"), -EINVAL);
	ASSERT_HAS(g_err, "member_ttl: expected a number of seconds in [0.05, 86400.0], got 86401");
	CU_ASSERT_EQUAL(load("member_ttl = 1e999;"), -EINVAL);
	ASSERT_HAS(g_err, "got inf");
	CU_ASSERT_EQUAL(load("directory_read_cache_ttl = -0.5;"), -EINVAL);
	ASSERT_HAS(g_err, "got -0.5");
	CU_ASSERT_EQUAL(load("heartbeat_interval = \"2\";"), -EINVAL);
	ASSERT_HAS(g_err, "heartbeat_interval: expected a number of seconds");
	ASSERT_HAS(g_err, "got \"2\"");
}

static void
test_type_string(void)
{
	char text[512];
	char name[300];

	ASSERT_OK(load("disk_path = \"/mnt/nvme 0/pc\\t\";\ndevice_name = \"mlx5_0\";\n"
		       "cluster_secret_file = \"/etc/peercache/secret\";"));
	CU_ASSERT_STRING_EQUAL(g_cfg.disk_path, "/mnt/nvme 0/pc\t");
	CU_ASSERT_STRING_EQUAL(g_cfg.device_name, "mlx5_0");
	CU_ASSERT_STRING_EQUAL(g_cfg.cluster_secret_file, "/etc/peercache/secret");

	CU_ASSERT_EQUAL(load("disk_path = \"\";"), -EINVAL);
	ASSERT_HAS(g_err, "disk_path: expected a non-empty path, got \"\"");
	CU_ASSERT_EQUAL(load("device_name = 5;"), -EINVAL);
	ASSERT_HAS(g_err, "device_name: expected a string of at most 255 characters, got 5");

	/* 255 characters fit the field; 256 do not and are refused, not truncated. */
	memset(name, 'd', 255);
	name[255] = '\0';
	snprintf(text, sizeof(text), "device_name = \"%s\";", name);
	ASSERT_OK(load(text));
	CU_ASSERT_EQUAL(strlen(g_cfg.device_name), 255);
	memset(name, 'd', 256);
	name[256] = '\0';
	snprintf(text, sizeof(text), "device_name = \"%s\";", name);
	CU_ASSERT_EQUAL(load(text), -EINVAL);
	ASSERT_HAS(g_err, "node.cfg:1: device_name: expected at most 255 characters, got 256");
	CU_ASSERT_STRING_EQUAL(g_cfg.device_name, "");

	/* engine_socket must fit sun_path. */
	memset(name, 's', 107);
	name[0] = '/';
	name[107] = '\0';
	snprintf(text, sizeof(text), "engine_socket = \"%s\";", name);
	ASSERT_OK(load(text));
	CU_ASSERT_EQUAL(strlen(g_cfg.engine_socket), 107);
	memset(name, 's', 108);
	name[0] = '/';
	name[108] = '\0';
	snprintf(text, sizeof(text), "engine_socket = \"%s\";", name);
	CU_ASSERT_EQUAL(load(text), -EINVAL);
	ASSERT_HAS(g_err, "engine_socket: expected at most 107 characters, got 108");
}

static void
test_type_enum(void)
{
	ASSERT_OK(load("mode = \"hybrid\";\nwrite_policy = \"both\";\nrole = \"storage\";\n"
		       "protocol = \"tcp\";\nidle_policy = \"adaptive\";\n"
		       "backend_name = \"peercache\";\nmodule_path = \"peercache.store\";\n"
		       "class_name = \"PeerCacheStore\";"));
	CU_ASSERT_EQUAL(g_cfg.mode, PC_MODE_HYBRID);
	CU_ASSERT_EQUAL(g_cfg.write_policy, PC_WRITE_BOTH);
	CU_ASSERT_EQUAL(g_cfg.role, PC_ROLE_STORAGE);
	CU_ASSERT_EQUAL(g_cfg.protocol, PC_PROTO_TCP);
	CU_ASSERT_EQUAL(g_cfg.idle_policy, PC_IDLE_ADAPTIVE);
	ASSERT_OK(load("mode = \"centralized\";"));
	CU_ASSERT_EQUAL(g_cfg.mode, PC_MODE_CENTRALIZED);

	CU_ASSERT_EQUAL(load("vnodes = 8;\n\nprotocol = \"udp\";"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(g_err, "node.cfg:3: protocol: expected one of \"rdma\", \"tcp\", "
				      "got \"udp\"");
	CU_ASSERT_EQUAL(load("mode = 1;"), -EINVAL);
	ASSERT_HAS(g_err, "mode: expected one of \"p2p\", \"hybrid\", \"centralized\", got 1");
	CU_ASSERT_EQUAL(load("protocol = \"RDMA\";"), -EINVAL);
	CU_ASSERT_EQUAL(load("backend_name = \"mooncake\";"), -EINVAL);
	ASSERT_HAS(g_err, "backend_name: expected one of \"peercache\", got \"mooncake\"");
	CU_ASSERT_EQUAL(load("idle_policy = \"sleepy\";"), -EINVAL);
	ASSERT_HAS(g_err, "idle_policy: expected one of \"busy\", \"adaptive\"");
}

static void
test_type_host(void)
{
	ASSERT_OK(load("meta_bind_host = \"10.1.2.3\";\nrdma_bind_host = \"[fe80::1%eth0]\";\n"
		       "control_bind_host = \"::\";\nmetrics_bind_host = \"node-1.example.com\";\n"
		       "local_hostname = \"auto\";\nnode_id = \"auto\";"));
	CU_ASSERT_STRING_EQUAL(g_cfg.meta_bind_host, "10.1.2.3");
	CU_ASSERT_STRING_EQUAL(g_cfg.rdma_bind_host, "[fe80::1%eth0]");
	CU_ASSERT_STRING_EQUAL(g_cfg.control_bind_host, "::");
	CU_ASSERT_STRING_EQUAL(g_cfg.metrics_bind_host, "node-1.example.com");
	CU_ASSERT_STRING_EQUAL(g_cfg.local_hostname, "");
	CU_ASSERT_STRING_EQUAL(g_cfg.node_id, "");
	ASSERT_OK(load("local_hostname = \"10.0.0.5\";\nnode_id = \"node-1.rack_2\";"));
	CU_ASSERT_STRING_EQUAL(g_cfg.local_hostname, "10.0.0.5");
	CU_ASSERT_STRING_EQUAL(g_cfg.node_id, "node-1.rack_2");

	CU_ASSERT_EQUAL(load("meta_bind_host = \"\";"), -EINVAL);
	ASSERT_HAS(g_err, "meta_bind_host: expected a host name or IP address");
	CU_ASSERT_EQUAL(load("meta_bind_host = \"a b\";"), -EINVAL);
	ASSERT_HAS(g_err, "got \"a b\"");
	CU_ASSERT_EQUAL(load("control_bind_host = \"[::1\";"), -EINVAL);
	CU_ASSERT_EQUAL(load("metrics_bind_host = \"http://x\";"), -EINVAL);
	CU_ASSERT_EQUAL(load("metrics_bind_host = \"auto\";\n"), 0); /* a host name like any */
	CU_ASSERT_EQUAL(load("node_id = \"a/b\";"), -EINVAL);
	ASSERT_HAS(g_err, "node_id: expected \"auto\" or 1 to 63 characters of [A-Za-z0-9._-]");
	CU_ASSERT_EQUAL(load("node_id = \"..\";"), -EINVAL);
	CU_ASSERT_EQUAL(load("node_id = \".\";"), -EINVAL);
	CU_ASSERT_EQUAL(
		load("node_id = \"0123456789012345678901234567890123456789012345678901234567"
		     "890123\";"),
		-EINVAL);
	ASSERT_HAS(g_err, "node_id: expected at most 63 characters, got 64");
}

static void
test_type_host_list(void)
{
	struct pc_config_hostport seeds[4];

	ASSERT_OK(load("discovery_addr = \"10.0.0.1:31998,10.0.0.2:31998\";"));
	CU_ASSERT_STRING_EQUAL(g_cfg.discovery_addr, "10.0.0.1:31998,10.0.0.2:31998");
	CU_ASSERT_EQUAL(pc_config_parse_seeds(g_cfg.discovery_addr, seeds, 4), 2);

	/* The same as an array and as a list: joined with ','. */
	ASSERT_OK(load("discovery_addr = [\"10.0.0.1:31998\", \"[::1]:31998\"];"));
	CU_ASSERT_STRING_EQUAL(g_cfg.discovery_addr, "10.0.0.1:31998,[::1]:31998");
	CU_ASSERT_EQUAL(pc_config_parse_seeds(g_cfg.discovery_addr, seeds, 4), 2);
	CU_ASSERT_STRING_EQUAL(seeds[1].host, "::1");
	ASSERT_OK(load("discovery_addr = (\"a:1\", \"b:2\");"));
	CU_ASSERT_STRING_EQUAL(g_cfg.discovery_addr, "a:1,b:2");
	ASSERT_OK(load("device_names = [\"mlx5_0\", \"mlx5_1\"];"));
	CU_ASSERT_STRING_EQUAL(g_cfg.device_names, "mlx5_0,mlx5_1");

	CU_ASSERT_EQUAL(load("discovery_addr = \"10.0.0.1\";"), -EINVAL);
	ASSERT_HAS(g_err, "node.cfg:1: discovery_addr: expected host:port or a comma-separated "
			  "list of them");
	ASSERT_HAS(g_err, "got \"10.0.0.1\"");
	CU_ASSERT_EQUAL(load("discovery_addr = \"h:0\";"), -EINVAL);
	CU_ASSERT_EQUAL(load("discovery_addr = \"h:65536\";"), -EINVAL);
	/* Empty is "not set", as by default: finalize then asks for it, at its line. */
	CU_ASSERT_EQUAL(load_final("vnodes = 8;\ndiscovery_addr = [];"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(g_err, "node.cfg:2: discovery_addr: required: the bootstrap head "
				      "host:port (or a comma-separated seed list)");
	CU_ASSERT_EQUAL(load_final("discovery_addr = \"\";"), -EINVAL);
	ASSERT_HAS(g_err, "node.cfg:1: discovery_addr: required");
	CU_ASSERT_EQUAL(load_final("discovery_addr = \"a:1,\";"), -EINVAL);
	ASSERT_HAS(g_err, "node.cfg:1: discovery_addr: expected host:port");
	CU_ASSERT_EQUAL(load("discovery_addr = (\"a:1\", 5);"), -EINVAL);
	ASSERT_HAS(g_err, "discovery_addr: expected a list of strings, got 5");
	CU_ASSERT_EQUAL(load("device_names = \"mlx5_0,mlx5_0\";"), -EINVAL);
	ASSERT_HAS(g_err, "device_names: expected a comma-separated list of distinct device names");
	CU_ASSERT_EQUAL(load("device_names = \"mlx5_0,,mlx5_1\";"), -EINVAL);

	/* A list is only for the two list keys. */
	CU_ASSERT_EQUAL(load("vnodes = [1];"), -EINVAL);
	ASSERT_HAS(g_err, "vnodes: expected an integer in [1, 4096], got an array");
	CU_ASSERT_EQUAL(load("protocol = (\"tcp\");"), -EINVAL);
	ASSERT_HAS(g_err, "protocol: expected one of \"rdma\", \"tcp\", got a list");
}

/* ---- Error classes ---- */

static void
test_err_syntax(void)
{
	CU_ASSERT_EQUAL(load("vnodes = 5;\n\nprotocol = = \"tcp\";"), -EINVAL);
	ASSERT_HAS(g_err, "node.cfg:3: syntax error: ");
	CU_ASSERT_EQUAL(load("vnodes = 1;\nvnodes = 2;"), -EINVAL);
	ASSERT_HAS(g_err, "node.cfg:2: syntax error: duplicate setting name");
	CU_ASSERT_EQUAL(load("vnodes = 1;\ndisk_size = 99999999999999999999;"), -EINVAL);
	ASSERT_HAS(g_err, "node.cfg:2: syntax error: integer 99999999999999999999 does not fit in "
			  "64 bits");
	CU_ASSERT_EQUAL(load("disk_size = 0x1ffffffffffffffff;"), -EINVAL);
	ASSERT_HAS(g_err, "node.cfg:1: syntax error: integer 0x1ffffffffffffffff does not fit");
	CU_ASSERT_EQUAL(load("disk_size = 9223372036854775808L;"), -EINVAL);
	ASSERT_HAS(g_err, "integer 9223372036854775808L does not fit in 64 bits");
	/* The most negative int64 fits; the range check then speaks. */
	CU_ASSERT_EQUAL(load("gid_index = -9223372036854775808;"), -EINVAL);
	ASSERT_HAS(g_err, "gid_index: expected an integer in [-1, 255], got -9223372036854775808");
	CU_ASSERT_EQUAL(load("vnodes = 5;\ndisk_path = \"/x\" \"y;\n"), -EINVAL);
	ASSERT_HAS(g_err, "node.cfg:2: syntax error: unterminated string");
	CU_ASSERT_EQUAL(load("vnodes = 5;\n/* no end\n\n"), -EINVAL);
	ASSERT_HAS(g_err, "node.cfg:2: syntax error: unterminated comment");
	CU_ASSERT_EQUAL(load("# a comment\n@include \"/etc/passwd\"\n"), -EINVAL);
	ASSERT_HAS(g_err, "node.cfg:2: syntax error: @include is not supported");
	/* What looks like a literal inside a string or a comment is left alone. */
	ASSERT_OK(load("disk_path = \"/x/99999999999999999999 @include\"; # 99999999999999999999\n"
		       "/* 4294967296 */ vnodes = 7;"));
	CU_ASSERT_STRING_EQUAL(g_cfg.disk_path, "/x/99999999999999999999 @include");
	CU_ASSERT_EQUAL(g_cfg.vnodes, 7);
	ASSERT_OK(load("disk_path = \"a\\\"4294967296\\\\\"; vnodes = 9;"));
	CU_ASSERT_STRING_EQUAL(g_cfg.disk_path, "a\"4294967296\\");
	CU_ASSERT_EQUAL(g_cfg.vnodes, 9);
}

static void
test_err_unknown_key(void)
{
	CU_ASSERT_EQUAL(load("vnodes = 8;\nprotcol = \"tcp\";"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(g_err,
			       "node.cfg:2: protcol: unknown key (did you mean \"protocol\"?)");
	CU_ASSERT_EQUAL(load("disk = {\n  enabeld = true;\n};"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(g_err, "node.cfg:2: disk_enabeld: unknown key (did you mean "
				      "\"disk_enabled\"?)");
	CU_ASSERT_EQUAL(load("frobnicate = 1;"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(g_err, "node.cfg:1: frobnicate: unknown key");
	CU_ASSERT_EQUAL(load("bogus = {};"), -EINVAL);
	ASSERT_HAS(g_err, "node.cfg:1: bogus: unknown key");
	/* The SGLang prefetch keys are popped by SGLang and never reach us. */
	CU_ASSERT_EQUAL(load("prefetch_threshold = 256;"), -EINVAL);
	ASSERT_HAS(g_err, "prefetch_threshold: unknown key");
}

static void
test_err_duplicate(void)
{
	CU_ASSERT_EQUAL(load("disk_enabled = true;\ndisk = {\n  enabled = false;\n};"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(g_err, "node.cfg:3: disk_enabled: set twice (first at line 1)");
	CU_ASSERT_EQUAL(load("metrics = { port = 1; };\n\nmetrics_port = 2;"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(g_err, "node.cfg:3: metrics_port: set twice (first at line 1)");
}

static void
test_err_missing_discovery(void)
{
	ASSERT_OK(load("vnodes = 8;"));
	CU_ASSERT_EQUAL(pc_config_finalize(&g_cfg, g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_STRING_EQUAL(g_err, "node.cfg: discovery_addr: required: the bootstrap head "
				      "host:port (or a comma-separated seed list)");
	pc_config_defaults(&g_cfg);
	CU_ASSERT_EQUAL(pc_config_finalize(&g_cfg, g_err, sizeof(g_err)), -EINVAL);
	ASSERT_HAS(g_err, "<defaults>: discovery_addr: required");
}

static void
test_err_member_ttl(void)
{
	CU_ASSERT_EQUAL(load_final("discovery_addr = \"h:1\";\nheartbeat_interval = 2.0;\n"
				   "member_ttl = 1.5;"),
			-EINVAL);
	CU_ASSERT_STRING_EQUAL(g_err, "node.cfg:3: member_ttl: expected more than "
				      "heartbeat_interval (2.0), got 1.5");
	CU_ASSERT_EQUAL(load_final("discovery_addr = \"h:1\";\nmember_ttl = 2;"), -EINVAL);
	ASSERT_HAS(g_err, "node.cfg:2: member_ttl: expected more than heartbeat_interval (2.0), "
			  "got 2.0");
	/* With member_ttl left at its default, the key the user did set is named. */
	CU_ASSERT_EQUAL(load_final("discovery_addr = \"h:1\";\nheartbeat_interval = 10;"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(g_err, "node.cfg:2: heartbeat_interval: expected less than "
				      "member_ttl (6.0), got 10.0");
	ASSERT_OK(load_final("discovery_addr = \"h:1\";\nheartbeat_interval = 0.1;\n"
			     "member_ttl = 0.3;"));
}

static void
test_err_secret(void)
{
	char path[64];
	char text[256];
	char *printed;

	/* Too short inline, from a file and from --set; never echoed. */
	CU_ASSERT_EQUAL(load("discovery_addr = \"h:1\";\ncluster_secret = \"hunter2\";"), -EINVAL);
	ASSERT_HAS(g_err, "node.cfg:2: cluster_secret: expected \"\" or a secret of at least 16 "
			  "characters, got 7 characters");
	ASSERT_LACKS(g_err, "hunter2");
	ASSERT_OK(load("discovery_addr = \"h:1\";"));
	CU_ASSERT_EQUAL(set("cluster_secret=hunter2"), -EINVAL);
	ASSERT_HAS(g_err, "--set: cluster_secret: expected");
	ASSERT_LACKS(g_err, "hunter2");

	/* Inline and from a file: refuse to guess which one was meant. */
	CU_ASSERT_EQUAL(load_final("discovery_addr = \"h:1\";\n"
				   "cluster_secret = \"0123456789abcdef\";\n"
				   "cluster_secret_file = \"/etc/peercache/secret\";"),
			-EINVAL);
	ASSERT_HAS(g_err, "node.cfg:3: cluster_secret_file: expected either cluster_secret or "
			  "cluster_secret_file, got both");

	/* A missing file: the key, the path and the reason. */
	CU_ASSERT_EQUAL(load_final("discovery_addr = \"h:1\";\n"
				   "cluster_secret_file = \"/nonexistent/pc-secret\";"),
			-EINVAL);
	ASSERT_HAS(g_err,
		   "node.cfg:2: cluster_secret_file: cannot read \"/nonexistent/pc-secret\": "
		   "No such file or directory");

	/* A directory is not a secret. */
	CU_ASSERT_EQUAL(load_final("discovery_addr = \"h:1\";\ncluster_secret_file = \"/tmp\";"),
			-EINVAL);
	ASSERT_HAS(g_err, "cluster_secret_file: expected a regular file, got \"/tmp\"");

	/* A short file. */
	make_temp(path, sizeof(path), "abc\n");
	snprintf(text, sizeof(text), "discovery_addr = \"h:1\";\ncluster_secret_file = \"%s\";",
		 path);
	CU_ASSERT_EQUAL(load_final(text), -EINVAL);
	ASSERT_HAS(g_err, "cluster_secret_file: expected a secret of at least 16 bytes in");
	ASSERT_HAS(g_err, path);
	unlink(path);

	/* A good file: read, trailing newlines dropped, hidden when printed. */
	make_temp(path, sizeof(path), "0123456789abcdefXYZ\r\n\n");
	snprintf(text, sizeof(text), "discovery_addr = \"h:1\";\ncluster_secret_file = \"%s\";",
		 path);
	ASSERT_OK(load_final(text));
	CU_ASSERT_STRING_EQUAL(g_cfg.cluster_secret, "0123456789abcdefXYZ");
	/* Finalizing again re-reads the file instead of calling it "both". */
	ASSERT_OK(pc_config_finalize(&g_cfg, g_err, sizeof(g_err)));
	printed = print_to_string(&g_cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(printed);
	ASSERT_HAS(printed, "# cluster_secret: set (hidden)");
	ASSERT_LACKS(printed, "0123456789abcdef");
	ASSERT_HAS(printed, path);
	free(printed);
	unlink(path);

	/* Inline, long enough. */
	ASSERT_OK(load_final("discovery_addr = \"h:1\";\ncluster_secret = \"0123456789abcdef\";"));
	CU_ASSERT_STRING_EQUAL(g_cfg.cluster_secret, "0123456789abcdef");
	printed = print_to_string(&g_cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(printed);
	ASSERT_HAS(printed, "# cluster_secret: set (hidden)");
	ASSERT_LACKS(printed, "0123456789abcdef");
	free(printed);
}

static void
test_err_unreadable_file(void)
{
	pc_config_defaults(&g_cfg);
	CU_ASSERT_EQUAL(pc_config_load_file(&g_cfg, "/nonexistent/node.cfg", g_err, sizeof(g_err)),
			-ENOENT);
	CU_ASSERT_STRING_EQUAL(g_err, "/nonexistent/node.cfg: cannot read: No such file or "
				      "directory");
	CU_ASSERT_EQUAL(pc_config_load_file(&g_cfg, "/tmp", g_err, sizeof(g_err)), -EISDIR);
	ASSERT_HAS(g_err, "/tmp: cannot read: Is a directory");
}

static void
test_err_keeps_previous(void)
{
	ASSERT_OK(load("vnodes = 7;"));
	CU_ASSERT_EQUAL(pc_config_load_string(&g_cfg, "bad.cfg", "vnodes = 9;\nprotocol = \"udp\";",
					      g_err, sizeof(g_err)),
			-EINVAL);
	CU_ASSERT_EQUAL(g_cfg.vnodes, 7);
	CU_ASSERT_STRING_EQUAL(g_cfg.source, "node.cfg");
	CU_ASSERT_EQUAL(set("vnodes=0"), -EINVAL);
	CU_ASSERT_EQUAL(g_cfg.vnodes, 7);
	CU_ASSERT_EQUAL(line_of(&g_cfg, "vnodes"), 1);
}

/* ---- Sizes ---- */

static void
test_size_valid(void)
{
	static const struct {
		const char *text;
		uint64_t bytes;
	} cases[] = {
		{"0", 0},
		{"1", 1},
		{"1048576", 1ULL << 20},
		{"00012mb", 12ULL << 20},
		{"8gb", 8ULL << 30},
		{"512MB", 512ULL << 20},
		{"1.5g", 1536ULL << 20},
		{"1.50g", 1536ULL << 20},
		{"4 GiB", 4ULL << 30},
		{"1.5kb", 1536},
		{"1b", 1},
		{"1.0b", 1},
		{"2K", 2048},
		{"3kib", 3072},
		{"0.5m", 512ULL << 10},
		{"0.0009765625k", 1},
		{"16tb", 16ULL << 40},
		{"1.25 TiB", 1280ULL << 30},
		{"18446744073709551615", UINT64_MAX},
		{"16777215.5tb", UINT64_MAX - (1ULL << 39) + 1},
		{"16777215.9999999999990905052982270717620849609375tb", UINT64_MAX},
	};

	for (size_t i = 0; i < PC_ARRAY_SIZE(cases); i++) {
		uint64_t bytes = 12345;
		int rc = pc_config_parse_size(cases[i].text, &bytes);

		if (rc != 0 || bytes != cases[i].bytes) {
			fprintf(stderr, "\n    \"%s\": rc %d, %llu\n", cases[i].text, rc,
				(unsigned long long)bytes);
		}
		CU_ASSERT_EQUAL(rc, 0);
		CU_ASSERT_EQUAL(bytes, cases[i].bytes);
	}
}

static void
test_size_invalid(void)
{
	static const struct {
		const char *text;
		int rc;
	} cases[] = {
		{"", -EINVAL},
		{" 8gb", -EINVAL},
		{"8gb ", -EINVAL},
		{"8  gb", -EINVAL},
		{"8 ", -EINVAL},
		{"-1", -EINVAL},
		{"+1", -EINVAL},
		{"8 parsecs", -EINVAL},
		{"1.5b", -EINVAL},
		{"0.1k", -EINVAL},
		{"1.5", -EINVAL},
		{"1.", -EINVAL},
		{"1.g", -EINVAL},
		{".5g", -EINVAL},
		{"gb", -EINVAL},
		{"8g b", -EINVAL},
		{"8gbb", -EINVAL},
		{"1e3", -EINVAL},
		{"8pb", -EINVAL},
		{"1,5g", -EINVAL},
		{"0x10", -EINVAL},
		{"1.00000000000000000000000000000000000000001tb", -EINVAL},
		{"18446744073709551616", -ERANGE},
		{"16777216tb", -ERANGE},
		{"17179869184g", -ERANGE},
		{"99999999999999999999999999g", -ERANGE},
	};
	uint64_t bytes = 777;

	for (size_t i = 0; i < PC_ARRAY_SIZE(cases); i++) {
		int rc = pc_config_parse_size(cases[i].text, &bytes);

		if (rc != cases[i].rc) {
			fprintf(stderr, "\n    \"%s\": rc %d, wanted %d\n", cases[i].text, rc,
				cases[i].rc);
		}
		CU_ASSERT_EQUAL(rc, cases[i].rc);
	}
	CU_ASSERT_EQUAL(bytes, 777); /* untouched on error */
	CU_ASSERT_EQUAL(pc_config_parse_size(NULL, &bytes), -EINVAL);
}

static void
test_size_format(void)
{
	static const struct {
		uint64_t bytes;
		const char *text;
	} cases[] = {
		{0, "0"},
		{1, "1"},
		{1024, "1kb"},
		{1536, "1536"},
		{1536ULL << 10, "1536kb"},
		{512ULL << 20, "512mb"},
		{4ULL << 30, "4gb"},
		{16ULL << 40, "16tb"},
		{1ULL << 50, "1024tb"},
		{UINT64_MAX, "18446744073709551615"},
	};
	char buf[32];

	for (size_t i = 0; i < PC_ARRAY_SIZE(cases); i++) {
		uint64_t back = 0;

		CU_ASSERT_EQUAL(pc_config_format_size(cases[i].bytes, buf, sizeof(buf)), 0);
		CU_ASSERT_STRING_EQUAL(buf, cases[i].text);
		CU_ASSERT_EQUAL(pc_config_parse_size(buf, &back), 0);
		CU_ASSERT_EQUAL(back, cases[i].bytes);
	}
	CU_ASSERT_EQUAL(pc_config_format_size(4ULL << 30, buf, 3), -ENOSPC);
	CU_ASSERT_EQUAL(pc_config_format_size(1, NULL, 0), -EINVAL);
}

/* ---- Seeds ---- */

static void
test_seeds_valid(void)
{
	struct pc_config_hostport seeds[2];

	CU_ASSERT_EQUAL(pc_config_parse_seeds("127.0.0.1:31998,[::1]:31998", seeds, 2), 2);
	CU_ASSERT_STRING_EQUAL(seeds[0].host, "127.0.0.1");
	CU_ASSERT_EQUAL(seeds[0].port, 31998);
	CU_ASSERT_STRING_EQUAL(seeds[1].host, "::1");
	CU_ASSERT_EQUAL(seeds[1].port, 31998);
	CU_ASSERT_EQUAL(pc_config_parse_seeds(" a:1 , b.example.com:65535", seeds, 2), 2);
	CU_ASSERT_STRING_EQUAL(seeds[0].host, "a");
	CU_ASSERT_EQUAL(seeds[0].port, 1);
	CU_ASSERT_STRING_EQUAL(seeds[1].host, "b.example.com");
	CU_ASSERT_EQUAL(seeds[1].port, 65535);
	CU_ASSERT_EQUAL(pc_config_parse_seeds("[fe80::1%eth0]:31998", seeds, 2), 1);
	CU_ASSERT_STRING_EQUAL(seeds[0].host, "fe80::1%eth0");
	/* More seeds than room: the count of all, the first `max` filled. */
	memset(seeds, 0, sizeof(seeds));
	CU_ASSERT_EQUAL(pc_config_parse_seeds("a:1,b:2,c:3", seeds, 2), 3);
	CU_ASSERT_STRING_EQUAL(seeds[1].host, "b");
	CU_ASSERT_EQUAL(pc_config_parse_seeds("a:1,b:2,c:3", NULL, 0), 3);
	CU_ASSERT_EQUAL(pc_config_parse_seeds("", seeds, 2), 0);
}

static void
test_seeds_invalid(void)
{
	static const char *const cases[] = {
		"h",        "h:",     ":1",    "h:0",     "h:65536", "h:123456", "h:-1",
		"h:+1",     "::1:80", "[::1]", "[::1]80", "[zz]:1",  "a:1,",     ",a:1",
		"a:1,,b:2", "a b:1",  "[]:1",  "h:1x",    "h/x:1",   "[::1]:",   " ",
	};
	struct pc_config_hostport seeds[2];

	for (size_t i = 0; i < PC_ARRAY_SIZE(cases); i++) {
		int rc = pc_config_parse_seeds(cases[i], seeds, 2);

		if (rc != -EINVAL) {
			fprintf(stderr, "\n    \"%s\": %d\n", cases[i], rc);
		}
		CU_ASSERT_EQUAL(rc, -EINVAL);
	}
	CU_ASSERT_EQUAL(pc_config_parse_seeds(NULL, seeds, 2), -EINVAL);
}

/* ---- --set ---- */

static void
test_set_values(void)
{
	pc_config_defaults(&g_cfg);
	ASSERT_OK(set("vnodes=64"));
	CU_ASSERT_EQUAL(g_cfg.vnodes, 64);
	CU_ASSERT_EQUAL(line_of(&g_cfg, "vnodes"), -1);
	ASSERT_OK(set("disk.enabled=false"));
	CU_ASSERT_FALSE(g_cfg.disk_enabled);
	ASSERT_OK(set("metrics.bind_host=10.0.0.1"));
	CU_ASSERT_STRING_EQUAL(g_cfg.metrics_bind_host, "10.0.0.1");
	ASSERT_OK(set("disk_path=\"/mnt/x y\""));
	CU_ASSERT_STRING_EQUAL(g_cfg.disk_path, "/mnt/x y");
	ASSERT_OK(set("disk_path= /a "));
	CU_ASSERT_STRING_EQUAL(g_cfg.disk_path, " /a ");
	ASSERT_OK(set("protocol=\"tcp\""));
	CU_ASSERT_EQUAL(g_cfg.protocol, PC_PROTO_TCP);
	ASSERT_OK(set(" mode = hybrid "));
	CU_ASSERT_EQUAL(g_cfg.mode, PC_MODE_HYBRID);
	ASSERT_OK(set("heartbeat_interval=0.25"));
	CU_ASSERT_DOUBLE_EQUAL(g_cfg.heartbeat_interval, 0.25, 0.0);
	ASSERT_OK(set("member_ttl=3"));
	CU_ASSERT_DOUBLE_EQUAL(g_cfg.member_ttl, 3.0, 0.0);
	ASSERT_OK(set("global_segment_size=8gb"));
	CU_ASSERT_EQUAL(g_cfg.global_segment_size, 8ULL << 30);
	ASSERT_OK(set("disk_size=\"1.5 TiB\""));
	CU_ASSERT_EQUAL(g_cfg.disk_size, 1536ULL << 30);
	ASSERT_OK(set("disk_size=2199023255552"));
	CU_ASSERT_EQUAL(g_cfg.disk_size, 2ULL << 40);
	ASSERT_OK(set("discovery_addr=a:1,b:2"));
	CU_ASSERT_STRING_EQUAL(g_cfg.discovery_addr, "a:1,b:2");
	ASSERT_OK(set("interface_v1=true"));
	CU_ASSERT_EQUAL(g_cfg.interface_v1, 1);
	ASSERT_OK(set("gid_index=-1"));
	CU_ASSERT_EQUAL(g_cfg.gid_index, -1);
	ASSERT_OK(set("node_id=auto"));
	CU_ASSERT_STRING_EQUAL(g_cfg.node_id, "");

	static const struct {
		const char *text;
		bool value;
	} bools[] = {
		{"autostart=yes", true},  {"autostart=no", false},    {"autostart=on", true},
		{"autostart=off", false}, {"autostart=1", true},      {"autostart=0", false},
		{"autostart=TRUE", true}, {"autostart=False", false},
	};
	for (size_t i = 0; i < PC_ARRAY_SIZE(bools); i++) {
		ASSERT_OK(set(bools[i].text));
		CU_ASSERT_EQUAL(g_cfg.autostart, bools[i].value);
	}
}

static void
test_set_errors(void)
{
	pc_config_defaults(&g_cfg);
	CU_ASSERT_EQUAL(set("protocol=udp"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(g_err, "--set: protocol: expected one of \"rdma\", \"tcp\", got "
				      "\"udp\"");
	CU_ASSERT_EQUAL(set("vnodes=abc"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(g_err,
			       "--set: vnodes: expected an integer in [1, 4096], got \"abc\"");
	CU_ASSERT_EQUAL(set("vnodes=0"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(g_err, "--set: vnodes: expected an integer in [1, 4096], got 0");
	CU_ASSERT_EQUAL(set("vnodes=1.5"), -EINVAL);
	ASSERT_HAS(g_err, "got 1.5");
	CU_ASSERT_EQUAL(set("vnodes=99999999999999999999"), -EINVAL);
	ASSERT_HAS(g_err, "--set: vnodes: expected an integer");
	CU_ASSERT_EQUAL(set("disk_enabled=maybe"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(g_err,
			       "--set: disk_enabled: expected a boolean (true or false), got "
			       "\"maybe\"");
	CU_ASSERT_EQUAL(set("member_ttl=nan"), -EINVAL);
	ASSERT_HAS(g_err, "--set: member_ttl: expected a number of seconds");
	CU_ASSERT_EQUAL(set("member_ttl=inf"), -EINVAL);
	CU_ASSERT_EQUAL(set("member_ttl=1e999"), -EINVAL);
	CU_ASSERT_EQUAL(set("member_ttl=5s"), -EINVAL);
	CU_ASSERT_EQUAL(set("global_segment_size=8 parsecs"), -EINVAL);
	ASSERT_HAS(g_err, "--set: global_segment_size: expected a size (an integer, or a string "
			  "like \"8gb\" or \"512mb\"), got \"8 parsecs\"");
	CU_ASSERT_EQUAL(set("protcol=tcp"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(g_err, "--set: protcol: unknown key (did you mean \"protocol\"?)");
	CU_ASSERT_EQUAL(set("disk.enabeld=1"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(g_err, "--set: disk.enabeld: unknown key (did you mean "
				      "\"disk_enabled\"?)");
	CU_ASSERT_EQUAL(set("colour=blue"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(g_err, "--set: colour: unknown key");
	CU_ASSERT_EQUAL(set("vnodes"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(g_err, "--set: expected key=value, got \"vnodes\"");
	CU_ASSERT_EQUAL(set("=5"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(g_err, "--set: expected key=value, got \"=5\"");
	CU_ASSERT_EQUAL(set("discovery_addr=nohost"), -EINVAL);
	ASSERT_HAS(g_err, "--set: discovery_addr: expected host:port");
	/* Nothing above changed anything. */
	for (int i = 0; i < PC_CONFIG_MAX_KEYS; i++) {
		CU_ASSERT_EQUAL(g_cfg.key_line[i], 0);
	}
	CU_ASSERT_EQUAL(g_cfg.vnodes, 160);
}

static void
test_set_precedence(void)
{
	ASSERT_OK(load("discovery_addr = \"h:1\";\nvnodes = 10;"));
	CU_ASSERT_EQUAL(g_cfg.vnodes, 10);
	CU_ASSERT_EQUAL(line_of(&g_cfg, "vnodes"), 2);
	ASSERT_OK(set("vnodes=20"));
	CU_ASSERT_EQUAL(g_cfg.vnodes, 20);
	CU_ASSERT_EQUAL(line_of(&g_cfg, "vnodes"), -1);
	ASSERT_OK(set("vnodes=30"));
	CU_ASSERT_EQUAL(g_cfg.vnodes, 30);
	ASSERT_OK(pc_config_finalize(&g_cfg, g_err, sizeof(g_err)));
	CU_ASSERT_EQUAL(g_cfg.vnodes, 30);

	/* Finalize names --set as the place of a value that came from it. */
	ASSERT_OK(set("member_ttl=1"));
	CU_ASSERT_EQUAL(pc_config_finalize(&g_cfg, g_err, sizeof(g_err)), -EINVAL);
	CU_ASSERT_STRING_EQUAL(g_err, "--set: member_ttl: expected more than heartbeat_interval "
				      "(2.0), got 1.0");

	/* The engine's order: defaults, the embedded default, --set, finalize. */
	pc_config_defaults(&g_cfg);
	ASSERT_OK(pc_config_load_embedded(&g_cfg, g_err, sizeof(g_err)));
	ASSERT_OK(set("protocol=rdma"));
	ASSERT_OK(set("discovery_addr=10.0.0.1:31998"));
	ASSERT_OK(pc_config_finalize(&g_cfg, g_err, sizeof(g_err)));
	CU_ASSERT_EQUAL(g_cfg.protocol, PC_PROTO_RDMA);
	CU_ASSERT_STRING_EQUAL(g_cfg.discovery_addr, "10.0.0.1:31998");
	CU_ASSERT_EQUAL(g_cfg.idle_policy, PC_IDLE_ADAPTIVE);
}

/* ---- Grouping ---- */

static void
test_group_equals_flat(void)
{
	struct pc_config flat;

	ASSERT_OK(load("disk_enabled = false;\ndisk_path = \"/x\";\ndisk_size = \"1gb\";\n"
		       "metrics_port = 9100;\nmetrics_bind_host = \"10.0.0.9\";"));
	flat = g_cfg;
	ASSERT_OK(load("disk = {\n  enabled = false;\n  path = \"/x\";\n  size = \"1gb\";\n};\n"
		       "metrics = {\n  port = 9100;\n  bind = { host = \"10.0.0.9\"; };\n};"));
	CU_ASSERT(same_values(&flat, &g_cfg));
	CU_ASSERT_FALSE(g_cfg.disk_enabled);
	CU_ASSERT_EQUAL(g_cfg.disk_size, 1ULL << 30);
	CU_ASSERT_STRING_EQUAL(g_cfg.metrics_bind_host, "10.0.0.9");
	/* Lines are the members' own. */
	CU_ASSERT_EQUAL(line_of(&g_cfg, "disk_enabled"), 2);
	CU_ASSERT_EQUAL(line_of(&g_cfg, "disk_size"), 4);
	CU_ASSERT_EQUAL(line_of(&g_cfg, "metrics_bind_host"), 8);
}

static void
test_group_nested(void)
{
	char deep[1024] = "";
	size_t o = 0;

	for (int i = 0; i < 100; i++) {
		o += (size_t)snprintf(deep + o, sizeof(deep) - o, "a = { ");
	}
	o += (size_t)snprintf(deep + o, sizeof(deep) - o, "a = 1; ");
	for (int i = 0; i < 100; i++) {
		o += (size_t)snprintf(deep + o, sizeof(deep) - o, "}; ");
	}
	CU_ASSERT_FATAL(o < sizeof(deep));

	ASSERT_OK(load("directory = {\n  replicas = 3;\n  read = { cache = { ttl = 2.5; }; };\n};\n"
		       "cluster = { secret = { file = \"/etc/pc\"; }; };\n"
		       "max = { channels = { per = { peer = 32; }; }; };"));
	CU_ASSERT_EQUAL(g_cfg.directory_replicas, 3);
	CU_ASSERT_DOUBLE_EQUAL(g_cfg.directory_read_cache_ttl, 2.5, 0.0);
	CU_ASSERT_STRING_EQUAL(g_cfg.cluster_secret_file, "/etc/pc");
	CU_ASSERT_EQUAL(g_cfg.max_channels_per_peer, 32);
	CU_ASSERT_EQUAL(line_of(&g_cfg, "directory_read_cache_ttl"), 3);

	/* A group named like a key is a type error; an empty group on the way to keys is fine. */
	CU_ASSERT_EQUAL(load("vnodes = { a = 1; };"), -EINVAL);
	ASSERT_HAS(g_err, "node.cfg:1: vnodes: expected an integer in [1, 4096], got a group");
	ASSERT_OK(load("disk = {};"));
	CU_ASSERT_EQUAL(load("disk = { bogus = { x = 1; }; };"), -EINVAL);
	ASSERT_HAS(g_err, "disk_bogus_x: unknown key");
	/* Deep nesting ends in an unknown key, not in a crash. */
	CU_ASSERT_EQUAL(load(deep), -EINVAL);
	ASSERT_HAS(g_err, "unknown key");
}

/* ---- Files ---- */

static int
load_example(const char *path)
{
	int rc;

	g_err[0] = '\0';
	pc_config_defaults(&g_cfg);
	rc = pc_config_load_file(&g_cfg, path, g_err, sizeof(g_err));
	if (rc != 0) {
		return rc;
	}
	return pc_config_finalize(&g_cfg, g_err, sizeof(g_err));
}

static void
test_example_p2p_node(void)
{
	ASSERT_OK(load_example("config/examples/p2p-node.cfg"));
	CU_ASSERT_STRING_EQUAL(g_cfg.source, "config/examples/p2p-node.cfg");
	CU_ASSERT_EQUAL(g_cfg.protocol, PC_PROTO_RDMA);
	CU_ASSERT_STRING_EQUAL(g_cfg.device_name, "mlx5_0");
	CU_ASSERT_STRING_EQUAL(g_cfg.discovery_addr, "10.0.0.1:31998");
	CU_ASSERT_TRUE(g_cfg.disk_enabled);
	CU_ASSERT_EQUAL(g_cfg.idle_policy, PC_IDLE_BUSY);
	CU_ASSERT_EQUAL(g_cfg.mode, PC_MODE_P2P);
	CU_ASSERT(line_of(&g_cfg, "discovery_addr") > 0);
	assert_round_trip(&g_cfg);
}

static void
test_example_storage_server(void)
{
	ASSERT_OK(load_example("config/examples/storage-server.cfg"));
	CU_ASSERT_EQUAL(g_cfg.role, PC_ROLE_STORAGE);
	CU_ASSERT(g_cfg.global_segment_size >= (64ULL << 30));
	CU_ASSERT_TRUE(g_cfg.disk_enabled);
	/* Written grouped (disk = {...}), read as the flat keys. */
	CU_ASSERT(line_of(&g_cfg, "disk_enabled") > 0);
	CU_ASSERT(line_of(&g_cfg, "disk_path") > 0);
	CU_ASSERT(line_of(&g_cfg, "metrics_port") > 0);
	assert_round_trip(&g_cfg);
}

static void
test_example_laptop(void)
{
	ASSERT_OK(load_example("config/examples/laptop.cfg"));
	CU_ASSERT_EQUAL(g_cfg.protocol, PC_PROTO_TCP);
	CU_ASSERT_FALSE(g_cfg.disk_enabled);
	CU_ASSERT_EQUAL(g_cfg.idle_policy, PC_IDLE_ADAPTIVE);
	CU_ASSERT_EQUAL(g_cfg.global_segment_size, 256ULL << 20);
	CU_ASSERT_EQUAL(g_cfg.metrics_port, 0);
	CU_ASSERT_STRING_EQUAL(g_cfg.discovery_addr, "127.0.0.1:31998");
	CU_ASSERT_STRING_EQUAL(g_cfg.meta_bind_host, "127.0.0.1");
	CU_ASSERT_STRING_EQUAL(g_cfg.control_bind_host, "127.0.0.1");
	CU_ASSERT_STRING_EQUAL(g_cfg.rdma_bind_host, "127.0.0.1");
	CU_ASSERT_STRING_EQUAL(g_cfg.metrics_bind_host, "127.0.0.1");
	CU_ASSERT_STRING_EQUAL(g_cfg.local_hostname, "127.0.0.1");
	assert_round_trip(&g_cfg);
}

static void
test_file_key_lines(void)
{
	char path[64];

	make_temp(path, sizeof(path),
		  "# a node\n"
		  "discovery_addr = \"10.0.0.1:31998\";\n"
		  "\n"
		  "protocol = \"tcp\"; vnodes = 64;\n"
		  "disk = {\n"
		  "  size = \"2tb\";\n"
		  "};\n");
	pc_config_defaults(&g_cfg);
	ASSERT_OK(pc_config_load_file(&g_cfg, path, g_err, sizeof(g_err)));
	CU_ASSERT_STRING_EQUAL(g_cfg.source, path);
	CU_ASSERT_EQUAL(line_of(&g_cfg, "discovery_addr"), 2);
	CU_ASSERT_EQUAL(line_of(&g_cfg, "protocol"), 4);
	CU_ASSERT_EQUAL(line_of(&g_cfg, "vnodes"), 4);
	CU_ASSERT_EQUAL(line_of(&g_cfg, "disk_size"), 6);
	CU_ASSERT_EQUAL(line_of(&g_cfg, "disk_path"), 0);
	CU_ASSERT_EQUAL(line_of(&g_cfg, "mode"), 0);
	CU_ASSERT_EQUAL(g_cfg.disk_size, 2ULL << 40);
	ASSERT_OK(set("mode=hybrid"));
	CU_ASSERT_EQUAL(line_of(&g_cfg, "mode"), -1);
	unlink(path);
}

static void
test_file_nul_byte(void)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/pc-config-ut-nul-%d.cfg", (int)getpid());
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fwrite("vnodes = 5;\n\0protocol = \"udp\";\n", 1, 31, f);
	fclose(f);
	pc_config_defaults(&g_cfg);
	CU_ASSERT_EQUAL(pc_config_load_file(&g_cfg, path, g_err, sizeof(g_err)), -EINVAL);
	ASSERT_HAS(g_err, ":2: syntax error: NUL byte");
	unlink(path);
}

/* ---- Print ---- */

static void
test_print_format(void)
{
	char *text;

	ASSERT_OK(load("discovery_addr = \"h:1\";\n"
		       "disk_path = \"/a \\\"b\\\"\\\\c\\n\";\n"
		       "directory_read_cache_ttl = 0.1;\n"
		       "global_segment_size = \"1536kb\";\n"
		       "disk_size = 1099511627777;"));
	ASSERT_OK(set("vnodes=7"));
	text = print_to_string(&g_cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	ASSERT_HAS(text, "# Deployment mode\n");
	ASSERT_HAS(text, "# RDMA / transport\n");
	ASSERT_HAS(text, "discovery_addr = \"h:1\";");
	ASSERT_HAS(text, "# node.cfg:1\n");
	ASSERT_HAS(text, "vnodes = 7;");
	ASSERT_HAS(text, "# --set\n");
	ASSERT_HAS(text, "mode = \"p2p\";");
	ASSERT_HAS(text, "# default\n");
	ASSERT_HAS(text, "disk_path = \"/a \\\"b\\\"\\\\c\\x0a\";");
	ASSERT_HAS(text, "directory_read_cache_ttl = 0.1;");
	ASSERT_HAS(text, "heartbeat_interval = 2.0;");
	ASSERT_HAS(text, "global_segment_size = \"1536kb\";");
	ASSERT_HAS(text, "disk_size = \"1099511627777\";");
	ASSERT_HAS(text, "node_id = \"auto\";");
	ASSERT_HAS(text, "local_hostname = \"auto\";");
	ASSERT_HAS(text, "disk_enabled = true;");
	ASSERT_HAS(text, "interface_v1 = 0;");
	ASSERT_HAS(text, "# cluster_secret: not set\n");
	ASSERT_HAS(text, "cluster_secret_file = \"\";");
	ASSERT_HAS(text, "config_version = 1;");
	/* Every key but the secret, once. */
	for (int i = 0; i < PC_CFG_NKEYS; i++) {
		char needle[80];
		const char *hit;

		if (g_keys[i].flags & PC_CFG_F_SECRET) {
			continue;
		}
		snprintf(needle, sizeof(needle), "\n%s = ", g_keys[i].name);
		hit = strstr(text, needle);
		CU_ASSERT_PTR_NOT_NULL(hit);
		if (hit != NULL) {
			CU_ASSERT_PTR_NULL(strstr(hit + 1, needle));
		}
	}
	free(text);
}

static void
test_print_round_trip_defaults(void)
{
	pc_config_defaults(&g_cfg);
	ASSERT_OK(set("discovery_addr=127.0.0.1:31998"));
	ASSERT_OK(pc_config_finalize(&g_cfg, g_err, sizeof(g_err)));
	assert_round_trip(&g_cfg);
}

static void
test_print_round_trip_embedded(void)
{
	pc_config_defaults(&g_cfg);
	ASSERT_OK(pc_config_load_embedded(&g_cfg, g_err, sizeof(g_err)));
	ASSERT_OK(pc_config_finalize(&g_cfg, g_err, sizeof(g_err)));
	assert_round_trip(&g_cfg);
}

static void
test_print_round_trip_all_keys(void)
{
	struct pc_config def;
	char path[64];
	char text[2048];

	make_temp(path, sizeof(path), "a cluster secret of some length\n");
	snprintf(text, sizeof(text),
		 "interface_v1 = 1;\n"
		 "autostart = false;\n"
		 "discovery_addr = [\"10.0.0.1:31998\", \"[fd00::2]:31998\"];\n"
		 "mode = \"hybrid\";\n"
		 "write_policy = \"both\";\n"
		 "role = \"storage\";\n"
		 "protocol = \"tcp\";\n"
		 "device_name = \"mlx5_3\";\n"
		 "device_names = \"mlx5_bond_1,mlx5_bond_2\";\n"
		 "ib_port = 2;\n"
		 "gid_index = -1;\n"
		 "max_channels_per_peer = 64;\n"
		 "tcp_zerocopy = false;\n"
		 "global_segment_size = \"1.5 GiB\";\n"
		 "vnodes = 320;\n"
		 "directory_replicas = 3;\n"
		 "directory_read_cache_ttl = 0.1;\n"
		 "max_masters = 5;\n"
		 "disk_enabled = false;\n"
		 "disk_path = \"/mnt/nvme \\\"0\\\"\\\\pc\\t/\";\n"
		 "disk_size = 1099511627777;\n"
		 "metrics_enabled = false;\n"
		 "metrics_port = 9100;\n"
		 "metrics_bind_host = \"[::1]\";\n"
		 "metrics_dashboard = false;\n"
		 "meta_bind_host = \"10.0.0.2\";\n"
		 "local_hostname = \"node-2.example.com\";\n"
		 "rdma_bind_host = \"10.0.1.2\";\n"
		 "rdma_port = 40000;\n"
		 "control_bind_host = \"10.0.0.3\";\n"
		 "control_port = 40001;\n"
		 "node_id = \"node-2\";\n"
		 "heartbeat_interval = 0.3;\n"
		 "member_ttl = 1.7000000000000002;\n"
		 "engine_socket = \"/tmp/pc-ut/engine.sock\";\n"
		 "idle_policy = \"adaptive\";\n"
		 "max_sessions = 17;\n"
		 "request_timeout = 0.75;\n"
		 "page_quarantine = 2.5;\n"
		 "page_crc = true;\n"
		 "cluster_secret_file = \"%s\";\n"
		 "config_version = 1;\n",
		 path);
	ASSERT_OK(load_final(text));
	/* Every key that can differ from its default does. */
	pc_config_defaults(&def);
	for (int i = 0; i < PC_CFG_NKEYS; i++) {
		const struct pc_cfg_key *k = &g_keys[i];

		if (k->type == PC_CFG_WORD || strcmp(k->name, "config_version") == 0 ||
		    (k->flags & PC_CFG_F_SECRET)) {
			continue;
		}
		CU_ASSERT(line_of(&g_cfg, k->name) > 0);
	}
	for (int i = 0; i < PC_CFG_NKEYS; i++) {
		const struct pc_cfg_key *k = &g_keys[i];

		if (k->type != PC_CFG_WORD && strcmp(k->name, "config_version") != 0) {
			CU_ASSERT_FALSE(same_key(k, &g_cfg, &def));
		}
	}
	CU_ASSERT_DOUBLE_EQUAL(g_cfg.member_ttl, 1.7000000000000002, 0.0);
	CU_ASSERT_STRING_EQUAL(g_cfg.cluster_secret, "a cluster secret of some length");
	assert_round_trip(&g_cfg);
	unlink(path);
}

static void
test_print_io_error(void)
{
	FILE *full = fopen("/dev/full", "w");

	if (full == NULL) {
		return;
	}
	pc_config_defaults(&g_cfg);
	CU_ASSERT_EQUAL(pc_config_print(&g_cfg, full), -EIO);
	fclose(full);
}

static const struct pc_ut_test g_schema_tests[] = {
	{"table integrity", test_table_integrity},
	{"compiled-in defaults", test_defaults},
	{"enum names", test_enum_names},
	{"embedded default", test_embedded},
	{NULL, NULL},
};

static const struct pc_ut_test g_type_tests[] = {
	{"bool", test_type_bool},
	{"int", test_type_int},
	{"int64 and size", test_type_int64_and_size},
	{"decimal", test_type_decimal},
	{"string", test_type_string},
	{"enum", test_type_enum},
	{"host", test_type_host},
	{"host and device lists", test_type_host_list},
	{NULL, NULL},
};

static const struct pc_ut_test g_error_tests[] = {
	{"syntax", test_err_syntax},
	{"unknown key", test_err_unknown_key},
	{"flat and grouped duplicate", test_err_duplicate},
	{"missing discovery_addr", test_err_missing_discovery},
	{"member_ttl vs heartbeat_interval", test_err_member_ttl},
	{"cluster secret", test_err_secret},
	{"unreadable file", test_err_unreadable_file},
	{"failed load keeps the config", test_err_keeps_previous},
	{NULL, NULL},
};

static const struct pc_ut_test g_size_tests[] = {
	{"valid sizes", test_size_valid},
	{"invalid sizes", test_size_invalid},
	{"format and parse back", test_size_format},
	{NULL, NULL},
};

static const struct pc_ut_test g_seed_tests[] = {
	{"valid seeds", test_seeds_valid},
	{"invalid seeds", test_seeds_invalid},
	{NULL, NULL},
};

static const struct pc_ut_test g_set_tests[] = {
	{"values", test_set_values},
	{"errors", test_set_errors},
	{"precedence", test_set_precedence},
	{NULL, NULL},
};

static const struct pc_ut_test g_group_tests[] = {
	{"grouped equals flat", test_group_equals_flat},
	{"nested groups", test_group_nested},
	{NULL, NULL},
};

static const struct pc_ut_test g_file_tests[] = {
	{"example p2p-node.cfg", test_example_p2p_node},
	{"example storage-server.cfg", test_example_storage_server},
	{"example laptop.cfg", test_example_laptop},
	{"key lines from a file", test_file_key_lines},
	{"NUL byte", test_file_nul_byte},
	{NULL, NULL},
};

static const struct pc_ut_test g_print_tests[] = {
	{"format", test_print_format},
	{"round trip: defaults", test_print_round_trip_defaults},
	{"round trip: embedded", test_print_round_trip_embedded},
	{"round trip: every key", test_print_round_trip_all_keys},
	{"I/O error", test_print_io_error},
	{NULL, NULL},
};

static const struct pc_ut_suite g_suites[] = {
	{"config schema", NULL, NULL, g_schema_tests}, {"config types", NULL, NULL, g_type_tests},
	{"config errors", NULL, NULL, g_error_tests},  {"config sizes", NULL, NULL, g_size_tests},
	{"config seeds", NULL, NULL, g_seed_tests},    {"config --set", NULL, NULL, g_set_tests},
	{"config groups", NULL, NULL, g_group_tests},  {"config files", NULL, NULL, g_file_tests},
	{"config print", NULL, NULL, g_print_tests},
};

int
main(void)
{
	return pc_ut_run(g_suites, PC_ARRAY_SIZE(g_suites));
}
