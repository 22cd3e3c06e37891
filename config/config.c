/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * PeerCache engine configuration: the schema table, the libconfig decoder,
 * --set overrides, the cross-key checks and --print-config.
 *
 * Everything is driven by g_keys[]: one row per key with its type, where it
 * lives in struct pc_config, its range or allowed names and its default. A
 * value from a file and a value from --set are both turned into a struct
 * pc_cfg_val and go through the same apply_value(), so both sources accept
 * and reject exactly the same things and say so in the same words.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libconfig.h>

#include "config.h"
#include "pc_common.h"

/* Longest key name we ever look up; longer names are unknown by definition. */
#define PC_CFG_NAME_MAX 64
/* A config file larger than this is a mistake (the full schema prints in ~4 KiB). */
#define PC_CFG_TEXT_MAX ((size_t)1 << 20)
/* Room for one formatted value: a 255-byte string with every byte escaped as \xNN. */
#define PC_CFG_VALUE_MAX (4 * PC_CONFIG_SECRET_MAX + 8)
/* A secret shorter than this is guessable; the HMAC handshake needs real entropy. */
#define PC_CFG_SECRET_MIN 16
/* sun_path holds 108 bytes including the terminating NUL. */
#define PC_CFG_SOCKET_PATH_MAX 107
/* Longest node_id: it names a directory under disk_path and appears in metrics. */
#define PC_CFG_NODE_ID_MAX 63
/* Unknown keys this close to a real one get a "did you mean". */
#define PC_CFG_SUGGEST_DISTANCE 2

#define PC_CFG_SIZE_MSG "a size (an integer, or a string like \"8gb\" or \"512mb\")"

#define PC_KIB (1ULL << 10)
#define PC_MIB (1ULL << 20)
#define PC_GIB (1ULL << 30)
#define PC_TIB (1ULL << 40)
#define PC_PIB (1ULL << 50)

enum pc_cfg_type {
	PC_CFG_BOOL,
	PC_CFG_INT,     /* int field, [min, max] */
	PC_CFG_DECIMAL, /* double field, [dmin, dmax]; integers accepted */
	PC_CFG_SIZE,    /* uint64_t bytes, [min, max]; an integer or "8gb" */
	PC_CFG_ENUM,    /* C enum field holding the index into names[] */
	PC_CFG_WORD,    /* char array restricted to names[] (the SGLang factory keys) */
	PC_CFG_STRING,  /* char array, at most max characters, then check() */
	PC_CFG_LIST,    /* as STRING, but a file may also give a list of strings, joined by ',' */
};

/* The integer key also takes true/false (interface_v1: SGLang reads it as a truthy value). */
#define PC_CFG_F_BOOL_OK 0x1u
/* "auto" (or "") is stored as "" and printed as "auto". */
#define PC_CFG_F_AUTO 0x2u
/* Never echo the value: not in messages, not in --print-config. */
#define PC_CFG_F_SECRET 0x4u

struct pc_cfg_key {
	const char *name;
	enum pc_cfg_type type;
	size_t offset;
	size_t size;                      /* of the field: bounds every string copy */
	long long min;                    /* INT, SIZE; STRING/LIST: unused */
	long long max;                    /* INT, SIZE; STRING/LIST: most characters */
	double dmin;                      /* DECIMAL */
	double dmax;                      /* DECIMAL */
	const char *const *names;         /* ENUM, WORD: allowed values, NULL-terminated */
	bool (*check)(const char *value); /* STRING, LIST: true when well-formed */
	const char *expect;               /* STRING, LIST: what check() wants, for messages */
	unsigned int flags;               /* PC_CFG_F_* */
	long long def_int;                /* BOOL, INT, SIZE, ENUM */
	double def_dec;                   /* DECIMAL */
	const char *def_str;              /* WORD, STRING, LIST */
	const char *section;              /* comment printed before this key, or NULL */
	const char *help;                 /* one line: what the key means */
};

/*
 * One value to apply, whatever it came from: a libconfig setting (type is
 * the CONFIG_TYPE_* it had) or a --set text (typed by the key it targets).
 * Integers of either width are CONFIG_TYPE_INT64.
 */
struct pc_cfg_val {
	int type;
	long long i;   /* BOOL (0/1), INT64 */
	double d;      /* FLOAT */
	const char *s; /* STRING */
};

static const char *const g_backend_names[] = {"peercache", NULL};
static const char *const g_module_names[] = {"peercache.store", NULL};
static const char *const g_class_names[] = {"PeerCacheStore", NULL};
static const char *const g_mode_names[] = {"p2p", "hybrid", "centralized", NULL};
static const char *const g_write_policy_names[] = {"local", "storage", "both", NULL};
static const char *const g_role_names[] = {"auto", "inference", "storage", "meta", NULL};
static const char *const g_protocol_names[] = {"rdma", "tcp", NULL};
static const char *const g_idle_policy_names[] = {"busy", "adaptive", NULL};

/* ENUM fields are written through an int: make sure that is what they are. */
_Static_assert(sizeof(enum pc_mode) == sizeof(int), "enum pc_mode is not int-sized");
_Static_assert(sizeof(enum pc_write_policy) == sizeof(int), "enum pc_write_policy size");
_Static_assert(sizeof(enum pc_role) == sizeof(int), "enum pc_role is not int-sized");
_Static_assert(sizeof(enum pc_protocol) == sizeof(int), "enum pc_protocol is not int-sized");
_Static_assert(sizeof(enum pc_idle_policy) == sizeof(int), "enum pc_idle_policy size");

static bool check_nonempty(const char *value);
static bool check_host(const char *value);
static bool check_seeds(const char *value);
static bool check_devices(const char *value);
static bool check_node_id(const char *value);
static bool check_secret(const char *value);

#define PC_FIELD(f)                                                                                \
	.offset = offsetof(struct pc_config, f), .size = sizeof(((struct pc_config *)0)->f)

#define PC_HOST_EXPECT "a host name or IP address ([A-Za-z0-9.:_-], IPv6 may be in brackets)"

/* One key per paragraph reads better than one field per line. */
/* clang-format off */
static const struct pc_cfg_key g_keys[] = {
	{.name = "backend_name", .type = PC_CFG_WORD, PC_FIELD(backend_name),
	 .names = g_backend_names, .def_str = "peercache",
	 .section = "SGLang dynamic-backend factory keys (accepted so an extra_config loads as is)",
	 .help = "SGLang dynamic backend name; must be peercache"},
	{.name = "module_path", .type = PC_CFG_WORD, PC_FIELD(module_path),
	 .names = g_module_names, .def_str = "peercache.store",
	 .help = "Python module SGLang imports the backend from"},
	{.name = "class_name", .type = PC_CFG_WORD, PC_FIELD(class_name), .names = g_class_names,
	 .def_str = "PeerCacheStore", .help = "backend class SGLang instantiates"},
	{.name = "interface_v1", .type = PC_CFG_INT, PC_FIELD(interface_v1), .min = 0, .max = 1,
	 .flags = PC_CFG_F_BOOL_OK, .def_int = 0,
	 .help = "1 = SGLang uses the zero-copy v1 page interface (read by the SGLang backend)"},
	{.name = "autostart", .type = PC_CFG_BOOL, PC_FIELD(autostart), .def_int = 1,
	 .help = "the SGLang backend starts a local engine when none is running"},
	{.name = "discovery_addr", .type = PC_CFG_LIST, PC_FIELD(discovery_addr),
	 .max = PC_CONFIG_STR_MAX - 1, .check = check_seeds,
	 .expect = "host:port or a comma-separated list of them (IPv6 in brackets, port 1-65535)",
	 .def_str = "", .section = "Discovery",
	 .help = "bootstrap head host:port (or a comma-separated seed list); same on all nodes"},
	{.name = "mode", .type = PC_CFG_ENUM, PC_FIELD(mode), .names = g_mode_names,
	 .def_int = PC_MODE_P2P, .section = "Deployment mode",
	 .help = "p2p, hybrid (P2P + storage servers) or centralized (storage servers only)"},
	{.name = "write_policy", .type = PC_CFG_ENUM, PC_FIELD(write_policy),
	 .names = g_write_policy_names, .def_int = PC_WRITE_LOCAL,
	 .help = "hybrid only: local, storage (RDMA WRITE to storage) or both"},
	{.name = "role", .type = PC_CFG_ENUM, PC_FIELD(role), .names = g_role_names,
	 .def_int = PC_ROLE_AUTO, .help = "inference, storage, meta (discovery only), or auto (inference)"},
	{.name = "protocol", .type = PC_CFG_ENUM, PC_FIELD(protocol), .names = g_protocol_names,
	 .def_int = PC_PROTO_RDMA, .section = "RDMA / transport",
	 .help = "rdma (production) or tcp (fallback for testing)"},
	{.name = "device_name", .type = PC_CFG_STRING, PC_FIELD(device_name),
	 .max = PC_CONFIG_STR_MAX - 1, .def_str = "",
	 .help = "RDMA device, e.g. mlx5_0; empty = first active device"},
	{.name = "device_names", .type = PC_CFG_LIST, PC_FIELD(device_names),
	 .max = PC_CONFIG_STR_MAX - 1, .check = check_devices,
	 .expect = "a comma-separated list of distinct device names ([A-Za-z0-9._-])",
	 .def_str = "", .help = "comma-separated RDMA rails; overrides device_name"},
	{.name = "ib_port", .type = PC_CFG_INT, PC_FIELD(ib_port), .min = 1, .max = 255,
	 .def_int = 1, .help = "HCA port"},
	{.name = "gid_index", .type = PC_CFG_INT, PC_FIELD(gid_index), .min = -1, .max = 255,
	 .def_int = 3, .help = "GID index (RoCE v2 is typically 3; -1 = no GRH, InfiniBand)"},
	{.name = "max_channels_per_peer", .type = PC_CFG_INT, PC_FIELD(max_channels_per_peer),
	 .min = 1, .max = 1024, .def_int = 16,
	 .help = "concurrent data-plane channels (QP+CQ or sockets) per peer"},
	{.name = "tcp_zerocopy", .type = PC_CFG_BOOL, PC_FIELD(tcp_zerocopy), .def_int = 1,
	 .help = "tcp: serve pages with MSG_ZEROCOPY (no send copy where the NIC can)"},
	{.name = "global_segment_size", .type = PC_CFG_SIZE, PC_FIELD(global_segment_size),
	 .min = (long long)PC_MIB, .max = (long long)(16 * PC_TIB), .def_int = (long long)(4 * PC_GIB),
	 .section = "Capacity / placement",
	 .help = "published pool (memory) per node, shared by all its SGLang ranks"},
	{.name = "vnodes", .type = PC_CFG_INT, PC_FIELD(vnodes), .min = 1, .max = 4096,
	 .def_int = 160, .help = "virtual nodes per node on the consistent-hash ring"},
	{.name = "directory_replicas", .type = PC_CFG_INT, PC_FIELD(directory_replicas), .min = 1,
	 .max = 8, .def_int = 2, .help = "owners each directory entry is replicated to"},
	{.name = "directory_read_cache_ttl", .type = PC_CFG_DECIMAL,
	 PC_FIELD(directory_read_cache_ttl), .dmin = 0.0, .dmax = 86400.0, .def_dec = 0.0,
	 .help = "seconds to cache resolved read locations (0 = off)"},
	{.name = "max_masters", .type = PC_CFG_INT, PC_FIELD(max_masters), .min = 1, .max = 64,
	 .def_int = 3, .help = "discovery masters: the head plus the next hosts in hostname order"},
	{.name = "disk_enabled", .type = PC_CFG_BOOL, PC_FIELD(disk_enabled), .def_int = 1,
	 .section = "Disk persistence tier (L4)",
	 .help = "spill evicted pages to disk and promote them back on read"},
	{.name = "disk_path", .type = PC_CFG_STRING, PC_FIELD(disk_path),
	 .max = PC_CONFIG_STR_MAX - 1, .check = check_nonempty, .expect = "a non-empty path",
	 .def_str = "/data/peercache/", .help = "data directory (each node uses a node_id subdir)"},
	{.name = "disk_size", .type = PC_CFG_SIZE, PC_FIELD(disk_size), .min = (long long)PC_MIB,
	 .max = (long long)PC_PIB, .def_int = (long long)(100 * PC_GIB),
	 .help = "disk capacity per node (LRU-bounded)"},
	{.name = "metrics_enabled", .type = PC_CFG_BOOL, PC_FIELD(metrics_enabled), .def_int = 1,
	 .section = "Monitoring (metrics + dashboard)",
	 .help = "run the metrics server (Prometheus /metrics + dashboard)"},
	{.name = "metrics_port", .type = PC_CFG_INT, PC_FIELD(metrics_port), .min = 0,
	 .max = 65535, .def_int = 31997, .help = "metrics/dashboard HTTP port (0 = ephemeral)"},
	{.name = "metrics_bind_host", .type = PC_CFG_STRING, PC_FIELD(metrics_bind_host),
	 .max = PC_CONFIG_STR_MAX - 1, .check = check_host, .expect = PC_HOST_EXPECT,
	 .def_str = "0.0.0.0", .help = "metrics server bind interface"},
	{.name = "metrics_dashboard", .type = PC_CFG_BOOL, PC_FIELD(metrics_dashboard),
	 .def_int = 1, .help = "also serve the built-in HTML dashboard at /"},
	{.name = "meta_bind_host", .type = PC_CFG_STRING, PC_FIELD(meta_bind_host),
	 .max = PC_CONFIG_STR_MAX - 1, .check = check_host, .expect = PC_HOST_EXPECT,
	 .def_str = "0.0.0.0", .section = "Networking / identity",
	 .help = "interface the embedded discovery master binds"},
	{.name = "local_hostname", .type = PC_CFG_STRING, PC_FIELD(local_hostname),
	 .max = PC_CONFIG_STR_MAX - 1, .check = check_host,
	 .expect = "\"auto\" or " PC_HOST_EXPECT, .flags = PC_CFG_F_AUTO, .def_str = "",
	 .help = "IP advertised to peers; auto = the local IP that reaches discovery_addr"},
	{.name = "rdma_bind_host", .type = PC_CFG_STRING, PC_FIELD(rdma_bind_host),
	 .max = PC_CONFIG_STR_MAX - 1, .check = check_host, .expect = PC_HOST_EXPECT,
	 .def_str = "0.0.0.0", .help = "bind interface for the data plane"},
	{.name = "rdma_port", .type = PC_CFG_INT, PC_FIELD(rdma_port), .min = 0, .max = 65535,
	 .def_int = 0, .help = "RDMA bootstrap port (0 = ephemeral)"},
	{.name = "control_bind_host", .type = PC_CFG_STRING, PC_FIELD(control_bind_host),
	 .max = PC_CONFIG_STR_MAX - 1, .check = check_host, .expect = PC_HOST_EXPECT,
	 .def_str = "0.0.0.0", .help = "bind interface for the control RPC server"},
	{.name = "control_port", .type = PC_CFG_INT, PC_FIELD(control_port), .min = 0,
	 .max = 65535, .def_int = 0, .help = "control RPC port (0 = ephemeral)"},
	{.name = "node_id", .type = PC_CFG_STRING, PC_FIELD(node_id), .max = PC_CFG_NODE_ID_MAX,
	 .check = check_node_id,
	 .expect = "\"auto\" or 1 to 63 characters of [A-Za-z0-9._-], not \".\" or \"..\"",
	 .flags = PC_CFG_F_AUTO, .def_str = "",
	 .help = "stable node identifier (names the disk subdirectory); auto = generated"},
	{.name = "heartbeat_interval", .type = PC_CFG_DECIMAL, PC_FIELD(heartbeat_interval),
	 .dmin = 0.01, .dmax = 3600.0, .def_dec = 2.0,
	 .help = "seconds between membership heartbeats"},
	{.name = "member_ttl", .type = PC_CFG_DECIMAL, PC_FIELD(member_ttl), .dmin = 0.05,
	 .dmax = 86400.0, .def_dec = 6.0,
	 .help = "seconds before a silent node is pruned; more than heartbeat_interval"},
	{.name = "engine_socket", .type = PC_CFG_STRING, PC_FIELD(engine_socket),
	 .max = PC_CFG_SOCKET_PATH_MAX, .check = check_nonempty,
	 .expect = "a Unix socket path of 1 to 107 characters",
	 .def_str = "/run/peercache/engine.sock", .section = "Engine",
	 .help = "Unix socket SGLang processes connect to"},
	{.name = "idle_policy", .type = PC_CFG_ENUM, PC_FIELD(idle_policy),
	 .names = g_idle_policy_names, .def_int = PC_IDLE_BUSY,
	 .help = "busy (never sleep) or adaptive (back off when idle)"},
	{.name = "max_sessions", .type = PC_CFG_INT, PC_FIELD(max_sessions), .min = 1,
	 .max = 4096, .def_int = 256, .help = "client sessions open at once"},
	{.name = "request_timeout", .type = PC_CFG_DECIMAL, PC_FIELD(request_timeout),
	 .dmin = 0.001, .dmax = 3600.0, .def_dec = 5.0,
	 .help = "seconds a client request may take; also how long an unacknowledged GET keeps "
		 "its pages pinned"},
	{.name = "page_quarantine", .type = PC_CFG_DECIMAL, PC_FIELD(page_quarantine),
	 .dmin = 0.0, .dmax = 3600.0, .def_dec = 1.0,
	 .help = "seconds a freed page slot waits before reuse, so that a remote READ still in "
		 "flight reads an invalid header, never new bytes; longer than any transfer deadline"},
	{.name = "page_crc", .type = PC_CFG_BOOL, PC_FIELD(page_crc), .def_int = 0,
	 .help = "compute a CRC32C of every payload at commit and check it on every read"},
	{.name = "cluster_secret", .type = PC_CFG_STRING, PC_FIELD(cluster_secret),
	 .max = PC_CONFIG_SECRET_MAX - 1, .check = check_secret,
	 .expect = "\"\" or a secret of at least 16 characters", .flags = PC_CFG_F_SECRET,
	 .def_str = "", .help = "shared secret for the HMAC handshake (never printed)"},
	{.name = "cluster_secret_file", .type = PC_CFG_STRING, PC_FIELD(cluster_secret_file),
	 .max = PC_CONFIG_STR_MAX - 1, .def_str = "",
	 .help = "file holding the cluster secret (excludes cluster_secret)"},
	{.name = "config_version", .type = PC_CFG_INT, PC_FIELD(config_version),
	 .min = PC_CONFIG_VERSION, .max = PC_CONFIG_VERSION, .def_int = PC_CONFIG_VERSION,
	 .help = "schema version of this file"},
};
/* clang-format on */

#define PC_CFG_NKEYS ((int)PC_ARRAY_SIZE(g_keys))

_Static_assert(PC_ARRAY_SIZE(g_keys) <= PC_CONFIG_MAX_KEYS, "key_line[] is too small for g_keys");

/*
 * The single-node default used without --config: its own discovery head,
 * every socket on loopback so nothing is exposed, TCP so no NIC is needed,
 * no disk tier so nothing is written outside /tmp, and the adaptive idle
 * policy so that it shares a laptop's or CI runner's cores.
 */
static const char g_embedded_text[] =
	"# PeerCache embedded single-node default (used when no --config is given).\n"
	"config_version = 1;\n"
	"discovery_addr = \"127.0.0.1:31998\";\n"
	"local_hostname = \"127.0.0.1\";\n"
	"meta_bind_host = \"127.0.0.1\";\n"
	"control_bind_host = \"127.0.0.1\";\n"
	"rdma_bind_host = \"127.0.0.1\";\n"
	"metrics_bind_host = \"127.0.0.1\";\n"
	"metrics_port = 0;\n"
	"protocol = \"tcp\";\n"
	"disk_enabled = false;\n"
	"idle_policy = \"adaptive\";\n"
	"global_segment_size = \"2gb\";\n"
	"engine_socket = \"/tmp/peercache/engine.sock\";\n";

static void set_err(char *err, size_t errlen, const char *fmt, ...) PC_PRINTF(3, 4);

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Copy a validated string into its field, zero-filling the rest so copies compare equal. */
static void
store_string(char *dst, size_t size, const char *src)
{
	size_t len = PC_MIN(strlen(src), size - 1);

	memset(dst, 0, size);
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static void *
field_of(struct pc_config *cfg, const struct pc_cfg_key *k)
{
	return (char *)cfg + k->offset;
}

static const void *
cfield_of(const struct pc_config *cfg, const struct pc_cfg_key *k)
{
	return (const char *)cfg + k->offset;
}

static const struct pc_cfg_key *
find_key(const char *name)
{
	for (int i = 0; i < PC_CFG_NKEYS; i++) {
		if (strcmp(g_keys[i].name, name) == 0) {
			return &g_keys[i];
		}
	}
	return NULL;
}

static int
key_index(const struct pc_cfg_key *k)
{
	return (int)(k - g_keys);
}

/* Key names are ASCII; no locale table lookup needed. */
static char
ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Levenshtein distance, capped: names longer than any key are never suggested from. */
static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a);
	size_t lb = strlen(b);
	size_t row[PC_CFG_NAME_MAX + 1] = {0};

	if (la > PC_CFG_NAME_MAX || lb > PC_CFG_NAME_MAX) {
		return SIZE_MAX;
	}
	for (size_t j = 0; j <= lb; j++) {
		row[j] = j;
	}
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (ascii_lower(a[i - 1]) != ascii_lower(b[j - 1]));

			best = PC_MIN(best, up + 1);
			best = PC_MIN(best, row[j - 1] + 1);
			diag = up;
			row[j] = best;
		}
	}
	return row[lb];
}

/* Writes `unknown key` plus a suggestion when a key is within a typo or two of `name`. */
static void
unknown_key(char *err, size_t errlen, const char *where, const char *name)
{
	const struct pc_cfg_key *best = NULL;
	size_t best_d = SIZE_MAX;
	char flat[PC_CFG_NAME_MAX + 1] = "";
	size_t i;

	/* --set accepts dotted names: compare them in their flat form. */
	for (i = 0; i < PC_CFG_NAME_MAX && name[i] != '\0'; i++) {
		flat[i] = name[i] == '.' ? '_' : name[i];
	}
	flat[i] = '\0';
	for (int k = 0; k < PC_CFG_NKEYS && name[i] == '\0'; k++) {
		size_t d = edit_distance(flat, g_keys[k].name);

		if (d < best_d) {
			best_d = d;
			best = &g_keys[k];
		}
	}
	if (best != NULL && best_d <= PC_CFG_SUGGEST_DISTANCE && best_d < strlen(best->name)) {
		set_err(err, errlen, "%s%.64s: unknown key (did you mean \"%s\"?)", where, name,
			best->name);
	} else {
		set_err(err, errlen, "%s%.64s: unknown key", where, name);
	}
}

/*
 * Quote a value for a message, escaping what would garble a terminal and
 * cutting it short: messages must fit PC_CONFIG_ERR_MAX with room to spare.
 */
static const char *
quote(char *buf, size_t len, const char *s)
{
	size_t o = 0;
	size_t i;

	buf[o++] = '"';
	for (i = 0; s[i] != '\0' && o + 8 < len && i < 80; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
		} else {
			buf[o++] = (char)c;
		}
	}
	buf[o++] = '"';
	if (s[i] != '\0') {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

/*
 * Shortest "%.Ng" that reads back to the same double, always with a '.'
 * or an exponent so that libconfig reads it as a float, not an integer.
 */
static void
format_decimal(double d, char *buf, size_t len)
{
	const char *e;

	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, d);
		if (strtod(buf, NULL) == d) {
			break;
		}
	}
	/* "%g" writes 10 as "1e+01"; people write seconds as 10.0. */
	e = strchr(buf, 'e');
	if (e != NULL && e[1] == '+' && atoi(e + 2) < 16) {
		char plain[32];

		snprintf(plain, sizeof(plain), "%.0f", d);
		if (strtod(plain, NULL) == d) {
			snprintf(buf, len, "%s", plain);
		}
	}
	if (strpbrk(buf, ".eEn") == NULL) {
		size_t n = strlen(buf);

		snprintf(buf + n, len - n, ".0");
	}
}

int
pc_config_format_size(uint64_t bytes, char *buf, size_t len)
{
	static const struct {
		unsigned int shift;
		const char *unit;
	} units[] = {{40, "tb"}, {30, "gb"}, {20, "mb"}, {10, "kb"}};
	int n = -1;

	if (buf == NULL || len == 0) {
		return -EINVAL;
	}
	for (size_t i = 0; i < PC_ARRAY_SIZE(units) && bytes != 0; i++) {
		uint64_t unit = 1ULL << units[i].shift;

		if (bytes % unit == 0) {
			n = snprintf(buf, len, "%llu%s", (unsigned long long)(bytes / unit),
				     units[i].unit);
			break;
		}
	}
	if (n < 0) {
		n = snprintf(buf, len, "%llu", (unsigned long long)bytes);
	}
	return (size_t)n < len ? 0 : -ENOSPC;
}

/* What a value was, for the `got ...` half of a message. */
static const char *
describe_val(char *buf, size_t len, const struct pc_cfg_val *v, const struct pc_cfg_key *k)
{
	switch (v->type) {
	case CONFIG_TYPE_BOOL:
		snprintf(buf, len, "%s", v->i ? "true" : "false");
		break;
	case CONFIG_TYPE_INT64:
		snprintf(buf, len, "%lld", v->i);
		break;
	case CONFIG_TYPE_FLOAT:
		format_decimal(v->d, buf, len);
		break;
	case CONFIG_TYPE_STRING:
		if (k->flags & PC_CFG_F_SECRET) {
			snprintf(buf, len, "%zu characters", strlen(v->s));
		} else {
			quote(buf, len, v->s);
		}
		break;
	case CONFIG_TYPE_GROUP:
		snprintf(buf, len, "a group");
		break;
	case CONFIG_TYPE_ARRAY:
		snprintf(buf, len, "an array");
		break;
	case CONFIG_TYPE_LIST:
		snprintf(buf, len, "a list");
		break;
	default:
		snprintf(buf, len, "nothing");
		break;
	}
	return buf;
}

/* The `expected ...` half of a message for key k (sizes say the range). */
static const char *
describe_key(char *buf, size_t len, const struct pc_cfg_key *k)
{
	char lo[32];
	char hi[32];
	size_t o;

	switch (k->type) {
	case PC_CFG_BOOL:
		snprintf(buf, len, "a boolean (true or false)");
		break;
	case PC_CFG_INT:
		snprintf(buf, len, "an integer in [%lld, %lld]%s", k->min, k->max,
			 (k->flags & PC_CFG_F_BOOL_OK) ? " or a boolean" : "");
		break;
	case PC_CFG_DECIMAL:
		format_decimal(k->dmin, lo, sizeof(lo));
		format_decimal(k->dmax, hi, sizeof(hi));
		snprintf(buf, len, "a number of seconds in [%s, %s]", lo, hi);
		break;
	case PC_CFG_SIZE:
		pc_config_format_size((uint64_t)k->min, lo, sizeof(lo));
		pc_config_format_size((uint64_t)k->max, hi, sizeof(hi));
		snprintf(buf, len, "a size in [%s, %s]", lo, hi);
		break;
	case PC_CFG_ENUM:
	case PC_CFG_WORD:
		o = (size_t)snprintf(buf, len, "one of");
		for (int i = 0; k->names[i] != NULL && o < len; i++) {
			o += (size_t)snprintf(buf + o, len - o, "%s \"%s\"", i == 0 ? "" : ",",
					      k->names[i]);
		}
		break;
	case PC_CFG_STRING:
	case PC_CFG_LIST:
		if (k->expect != NULL) {
			snprintf(buf, len, "%s", k->expect);
		} else {
			snprintf(buf, len, "a string of at most %lld characters", k->max);
		}
		break;
	}
	return buf;
}

/* `why` = "expected <what k takes>, got <v>". */
static int
mismatch(char *why, size_t whylen, const struct pc_cfg_key *k, const struct pc_cfg_val *v)
{
	char want[256];
	char got[256];

	set_err(why, whylen, "expected %s, got %s", describe_key(want, sizeof(want), k),
		describe_val(got, sizeof(got), v, k));
	return -EINVAL;
}

static int
find_name(const char *const *names, const char *s)
{
	for (int i = 0; names[i] != NULL; i++) {
		if (strcmp(names[i], s) == 0) {
			return i;
		}
	}
	return -1;
}

static int
apply_size(struct pc_config *cfg, const struct pc_cfg_key *k, const struct pc_cfg_val *v, char *why,
	   size_t whylen)
{
	char got[256];
	uint64_t bytes;
	int rc;

	if (v->type == CONFIG_TYPE_INT64) {
		if (v->i < 0) {
			return mismatch(why, whylen, k, v);
		}
		bytes = (uint64_t)v->i;
	} else if (v->type == CONFIG_TYPE_STRING) {
		rc = pc_config_parse_size(v->s, &bytes);
		if (rc == -ERANGE) {
			return mismatch(why, whylen, k, v);
		}
		if (rc != 0) {
			set_err(why, whylen, "expected " PC_CFG_SIZE_MSG ", got %s",
				describe_val(got, sizeof(got), v, k));
			return -EINVAL;
		}
	} else {
		set_err(why, whylen, "expected " PC_CFG_SIZE_MSG ", got %s",
			describe_val(got, sizeof(got), v, k));
		return -EINVAL;
	}
	if (bytes < (uint64_t)k->min || bytes > (uint64_t)k->max) {
		return mismatch(why, whylen, k, v);
	}
	*(uint64_t *)field_of(cfg, k) = bytes;
	return 0;
}

static int
apply_string(struct pc_config *cfg, const struct pc_cfg_key *k, const struct pc_cfg_val *v,
	     char *why, size_t whylen)
{
	const char *s;
	size_t len;

	if (v->type != CONFIG_TYPE_STRING) {
		return mismatch(why, whylen, k, v);
	}
	s = v->s;
	len = strlen(s);
	if (len > (size_t)k->max || len >= k->size) {
		/* Truncating would silently change a path or a host: refuse instead. */
		set_err(why, whylen, "expected at most %lld characters, got %zu", k->max, len);
		return -EINVAL;
	}
	if ((k->flags & PC_CFG_F_AUTO) && (strcmp(s, "auto") == 0 || *s == '\0')) {
		s = "";
	} else if (k->check != NULL && !k->check(s)) {
		return mismatch(why, whylen, k, v);
	}
	store_string(field_of(cfg, k), k->size, s);
	return 0;
}

/*
 * Check v against k and store it in cfg. Returns 0, or -EINVAL with `why`
 * holding "expected ..., got ..." (the caller prefixes where and which key).
 */
static int
apply_value(struct pc_config *cfg, const struct pc_cfg_key *k, const struct pc_cfg_val *v,
	    char *why, size_t whylen)
{
	long long n;
	double d;
	int idx;

	switch (k->type) {
	case PC_CFG_BOOL:
		if (v->type != CONFIG_TYPE_BOOL) {
			return mismatch(why, whylen, k, v);
		}
		*(bool *)field_of(cfg, k) = v->i != 0;
		return 0;
	case PC_CFG_INT:
		if (v->type == CONFIG_TYPE_INT64 ||
		    (v->type == CONFIG_TYPE_BOOL && (k->flags & PC_CFG_F_BOOL_OK))) {
			n = v->i;
		} else {
			return mismatch(why, whylen, k, v);
		}
		/* Range-check the long long before narrowing it to the int field. */
		if (n < k->min || n > k->max) {
			return mismatch(why, whylen, k, v);
		}
		*(int *)field_of(cfg, k) = (int)n;
		return 0;
	case PC_CFG_DECIMAL:
		if (v->type == CONFIG_TYPE_INT64) {
			d = (double)v->i;
		} else if (v->type == CONFIG_TYPE_FLOAT) {
			d = v->d;
		} else {
			return mismatch(why, whylen, k, v);
		}
		/* Written so that NaN fails too. */
		if (!(d >= k->dmin && d <= k->dmax)) {
			return mismatch(why, whylen, k, v);
		}
		*(double *)field_of(cfg, k) = d;
		return 0;
	case PC_CFG_SIZE:
		return apply_size(cfg, k, v, why, whylen);
	case PC_CFG_ENUM:
	case PC_CFG_WORD:
		idx = v->type == CONFIG_TYPE_STRING ? find_name(k->names, v->s) : -1;
		if (idx < 0) {
			return mismatch(why, whylen, k, v);
		}
		if (k->type == PC_CFG_ENUM) {
			*(int *)field_of(cfg, k) = idx;
		} else {
			store_string(field_of(cfg, k), k->size, k->names[idx]);
		}
		return 0;
	case PC_CFG_STRING:
	case PC_CFG_LIST:
		return apply_string(cfg, k, v, why, whylen);
	}
	return mismatch(why, whylen, k, v);
}

static void
store_default(struct pc_config *cfg, const struct pc_cfg_key *k)
{
	void *field = field_of(cfg, k);

	switch (k->type) {
	case PC_CFG_BOOL:
		*(bool *)field = k->def_int != 0;
		break;
	case PC_CFG_INT:
	case PC_CFG_ENUM:
		*(int *)field = (int)k->def_int;
		break;
	case PC_CFG_DECIMAL:
		*(double *)field = k->def_dec;
		break;
	case PC_CFG_SIZE:
		*(uint64_t *)field = (uint64_t)k->def_int;
		break;
	case PC_CFG_WORD:
	case PC_CFG_STRING:
	case PC_CFG_LIST:
		store_string(field, k->size, k->def_str);
		break;
	}
}

void
pc_config_defaults(struct pc_config *cfg)
{
	/* Zeroing first makes two configs with equal values byte-for-byte equal. */
	memset(cfg, 0, sizeof(*cfg));
	for (int i = 0; i < PC_CFG_NKEYS; i++) {
		store_default(cfg, &g_keys[i]);
	}
	store_string(cfg->source, sizeof(cfg->source), "<defaults>");
}

const char *
pc_config_embedded_text(void)
{
	return g_embedded_text;
}

/* ---- Host, seed and name syntax ---- */

static bool
is_host_char(char c)
{
	return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
}

/* The inside of "[...]": hex digits, ':' and '.', at least one ':', an optional %zone. */
static bool
is_ipv6_literal(const char *s, size_t len)
{
	bool colon = false;
	size_t i;

	for (i = 0; i < len && s[i] != '%'; i++) {
		if (s[i] == ':') {
			colon = true;
		} else if (!isxdigit((unsigned char)s[i]) && s[i] != '.') {
			return false;
		}
	}
	if (i < len) {
		/* A zone: "fe80::1%eth0". */
		if (i + 1 == len) {
			return false;
		}
		for (i++; i < len; i++) {
			if (!is_host_char(s[i])) {
				return false;
			}
		}
	}
	return colon;
}

static bool
check_host(const char *s)
{
	size_t len = strlen(s);

	if (len == 0) {
		return false;
	}
	if (s[0] == '[') {
		return len > 2 && s[len - 1] == ']' && is_ipv6_literal(s + 1, len - 2);
	}
	for (size_t i = 0; i < len; i++) {
		if (!is_host_char(s[i]) && s[i] != ':') {
			return false;
		}
	}
	return true;
}

static bool
check_nonempty(const char *s)
{
	return *s != '\0';
}

static bool
check_secret(const char *s)
{
	return *s == '\0' || strlen(s) >= PC_CFG_SECRET_MIN;
}

static bool
check_node_id(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > PC_CFG_NODE_ID_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		if (!is_host_char(s[i])) {
			return false;
		}
	}
	return true;
}

/* "" is "not set", as in the defaults: finalize reports it as required, at its line. */
static bool
check_seeds(const char *s)
{
	return pc_config_parse_seeds(s, NULL, 0) >= 0;
}

/* Non-empty names of [A-Za-z0-9._-], none twice: one rail per device. */
static bool
check_devices(const char *s)
{
	const char *entry = s;

	if (*s == '\0') {
		return true;
	}
	for (;;) {
		size_t len = strcspn(entry, ",");
		const char *prev = s;

		if (len == 0) {
			return false;
		}
		for (size_t i = 0; i < len; i++) {
			if (!is_host_char(entry[i])) {
				return false;
			}
		}
		while (prev < entry) {
			size_t plen = strcspn(prev, ",");

			if (plen == len && memcmp(prev, entry, len) == 0) {
				return false;
			}
			prev += plen + 1;
		}
		if (entry[len] == '\0') {
			return true;
		}
		entry += len + 1;
	}
}

/* One "host:port" entry, blanks around it already trimmed. */
static int
parse_seed(const char *s, size_t len, struct pc_config_hostport *out)
{
	const char *host = s;
	size_t host_len;
	const char *port;
	size_t port_len;
	unsigned long value = 0;

	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (close == NULL || close + 1 >= s + len || close[1] != ':') {
			return -EINVAL;
		}
		host = s + 1;
		host_len = (size_t)(close - host);
		if (!is_ipv6_literal(host, host_len)) {
			return -EINVAL;
		}
		port = close + 2;
	} else {
		const char *colon = NULL;

		for (size_t i = 0; i < len; i++) {
			if (s[i] == ':') {
				colon = s + i;
			}
		}
		if (colon == NULL) {
			return -EINVAL;
		}
		host_len = (size_t)(colon - s);
		/* An unbracketed IPv6 address cannot be told from its port. */
		for (size_t i = 0; i < host_len; i++) {
			if (!is_host_char(s[i])) {
				return -EINVAL;
			}
		}
		port = colon + 1;
	}
	port_len = (size_t)(s + len - port);
	if (host_len == 0 || host_len >= PC_CONFIG_STR_MAX || port_len == 0 || port_len > 5) {
		return -EINVAL;
	}
	for (size_t i = 0; i < port_len; i++) {
		if (!isdigit((unsigned char)port[i])) {
			return -EINVAL;
		}
		value = value * 10 + (unsigned long)(port[i] - '0');
	}
	if (value < 1 || value > 65535) {
		return -EINVAL;
	}
	if (out != NULL) {
		memcpy(out->host, host, host_len);
		out->host[host_len] = '\0';
		out->port = (uint16_t)value;
	}
	return 0;
}

int
pc_config_parse_seeds(const char *list, struct pc_config_hostport *seeds, int max)
{
	const char *entry = list;
	int count = 0;

	if (list == NULL) {
		return -EINVAL;
	}
	if (*list == '\0') {
		return 0;
	}
	for (;;) {
		size_t len = strcspn(entry, ",");
		const char *s = entry;
		size_t n = len;
		int rc;

		/* "a:1, b:2" is how people write lists: allow blanks around entries. */
		while (n > 0 && (*s == ' ' || *s == '\t')) {
			s++;
			n--;
		}
		while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
			n--;
		}
		rc = parse_seed(s, n, seeds != NULL && count < max ? &seeds[count] : NULL);
		if (rc != 0) {
			return rc;
		}
		if (count == INT_MAX) {
			return -EINVAL;
		}
		count++;
		if (entry[len] == '\0') {
			return count;
		}
		entry += len + 1;
	}
}

/* ---- Sizes ---- */

static int
size_unit_shift(const char *unit, size_t len)
{
	static const struct {
		const char *name;
		int shift;
	} units[] = {
		{"b", 0},   {"k", 10},   {"kb", 10},  {"kib", 10}, {"m", 20},
		{"mb", 20}, {"mib", 20}, {"g", 30},   {"gb", 30},  {"gib", 30},
		{"t", 40},  {"tb", 40},  {"tib", 40},
	};

	for (size_t i = 0; i < PC_ARRAY_SIZE(units); i++) {
		if (strlen(units[i].name) == len && strncasecmp(units[i].name, unit, len) == 0) {
			return units[i].shift;
		}
	}
	return -1;
}

/*
 * Integer arithmetic only: "1.5g" must be exactly 1610612736 and "0.1k"
 * (102.4 bytes) must be refused, which doubles cannot promise. A fraction
 * times 2^shift is whole only if it has at most `shift` decimal digits, so
 * the fraction is multiplied by two `shift` times as a decimal digit string,
 * collecting the whole part that carries out of it.
 */
int
pc_config_parse_size(const char *text, uint64_t *bytes)
{
	const char *p = text;
	const char *int_start;
	size_t int_len;
	const char *frac = NULL;
	size_t frac_len = 0;
	const char *unit;
	int shift = 0;
	uint64_t whole = 0;
	uint64_t frac_bytes = 0;
	char digits[64];

	if (text == NULL || bytes == NULL) {
		return -EINVAL;
	}
	int_start = p;
	while (isdigit((unsigned char)*p)) {
		p++;
	}
	int_len = (size_t)(p - int_start);
	if (int_len == 0) {
		return -EINVAL;
	}
	if (*p == '.') {
		frac = ++p;
		while (isdigit((unsigned char)*p)) {
			p++;
		}
		frac_len = (size_t)(p - frac);
		if (frac_len == 0) {
			return -EINVAL;
		}
	}
	if (*p == ' ') {
		p++;
		if (*p == '\0') {
			return -EINVAL;
		}
	}
	unit = p;
	if (*unit != '\0') {
		shift = size_unit_shift(unit, strlen(unit));
		if (shift < 0) {
			return -EINVAL;
		}
	} else if (frac != NULL || p != int_start + int_len) {
		/* No unit: plain bytes, so neither a fraction nor a dangling space. */
		return -EINVAL;
	}

	/* Trailing zeros of the fraction change nothing: "1.50g" is "1.5g". */
	while (frac_len > 0 && frac[frac_len - 1] == '0') {
		frac_len--;
	}
	if (frac_len > (size_t)shift) {
		return -EINVAL;
	}

	for (size_t i = 0; i < int_len; i++) {
		unsigned int digit = (unsigned int)(int_start[i] - '0');

		if (whole > (UINT64_MAX - digit) / 10) {
			return -ERANGE;
		}
		whole = whole * 10 + digit;
	}
	if (shift > 0 && whole > (UINT64_MAX >> shift)) {
		return -ERANGE;
	}
	whole <<= shift;

	if (frac_len > 0) {
		memcpy(digits, frac, frac_len);
		for (int s = 0; s < shift; s++) {
			unsigned int carry = 0;

			for (size_t i = frac_len; i-- > 0;) {
				unsigned int d = (unsigned int)(digits[i] - '0') * 2 + carry;

				digits[i] = (char)('0' + d % 10);
				carry = d / 10;
			}
			frac_bytes = frac_bytes * 2 + carry;
		}
		for (size_t i = 0; i < frac_len; i++) {
			if (digits[i] != '0') {
				return -EINVAL; /* not a whole number of bytes */
			}
		}
		if (frac_bytes > UINT64_MAX - whole) {
			return -ERANGE;
		}
	}
	*bytes = whole + frac_bytes;
	return 0;
}

/* ---- Loading libconfig text ---- */

/* A float token (libconfig: digits, '.', digits, exponent), from p, which is past any sign. */
static const char *
skip_float(const char *p, const char *end)
{
	const char *e;

	while (p < end && isdigit((unsigned char)*p)) {
		p++;
	}
	if (p < end && *p == '.') {
		for (p++; p < end && isdigit((unsigned char)*p); p++) {
		}
	}
	if (p + 1 < end && (*p == 'e' || *p == 'E')) {
		e = p + 1;
		if (*e == '+' || *e == '-') {
			e++;
		}
		if (e < end && isdigit((unsigned char)*e)) {
			for (p = e; p < end && isdigit((unsigned char)*p); p++) {
			}
		}
	}
	return p;
}

/*
 * Copy the number token at p to *o (p is at a digit, '.', or a sign before
 * one) and set *next past it. Integers that libconfig 1.5 would truncate
 * to 32 bits get an 'L'. Returns 0, or -ERANGE for an integer beyond 64
 * bits (nothing copied).
 */
static int
copy_number(const char *p, const char *end, char **o, const char **next)
{
	const char *start = p;
	bool neg = *p == '-';
	bool sign = *p == '+' || *p == '-';
	bool over = false;
	uint64_t mag = 0;
	uint64_t limit;
	size_t suffix = 0;
	const char *q = p + sign;

	if (!sign && q + 2 < end && q[0] == '0' && (q[1] == 'x' || q[1] == 'X') &&
	    isxdigit((unsigned char)q[2])) {
		for (q += 2; q < end && isxdigit((unsigned char)*q); q++) {
			unsigned int dv =
				isdigit((unsigned char)*q)
					? (unsigned int)(*q - '0')
					: (unsigned int)(tolower((unsigned char)*q) - 'a' + 10);

			over |= mag > (UINT64_MAX >> 4);
			mag = (mag << 4) | dv;
		}
	} else {
		const char *f = skip_float(q, end);

		for (; q < end && isdigit((unsigned char)*q); q++) {
			unsigned int dv = (unsigned int)(*q - '0');

			over |= mag > (UINT64_MAX - dv) / 10;
			mag = mag * 10 + dv;
		}
		if (f != q) {
			/* A float: its digits are not an integer's. */
			memcpy(*o, start, (size_t)(f - start));
			*o += f - start;
			*next = f;
			return 0;
		}
	}
	while (suffix < 2 && q + suffix < end && q[suffix] == 'L') {
		suffix++;
	}
	limit = neg ? (uint64_t)LLONG_MAX + 1 : (uint64_t)LLONG_MAX;
	*next = q + suffix;
	if (over || mag > limit) {
		return -ERANGE;
	}
	memcpy(*o, start, (size_t)(q - start));
	*o += q - start;
	if (suffix == 0 && mag > (neg ? (uint64_t)INT_MAX + 1 : (uint64_t)INT_MAX)) {
		*(*o)++ = 'L';
	}
	memcpy(*o, q, suffix);
	*o += suffix;
	return 0;
}

/*
 * libconfig 1.5 reads a decimal literal that does not fit in 32 bits as a
 * truncated int (4294967296 reads as 0), and a hex one likewise, instead of
 * promoting it to int64 as later versions do. So before parsing, walk the
 * text the way its scanner does (strings, comments, names, floats) and
 * append 'L' to those literals; a literal beyond 64 bits, which it would
 * saturate silently, is refused. '@include' is refused too: it would read
 * another file, whose lines our messages could not name. `out` has room
 * for twice `len` bytes plus one.
 */
static int
prepare_text(const char *text, size_t len, char *out, int *bad_line, char *why, size_t whylen)
{
	const char *p = text;
	const char *end = text + len;
	char *o = out;
	int line = 1;

	while (p < end) {
		const char *q = p + (*p == '+' || *p == '-');
		char c = *p;

		if (c == '\n') {
			line++;
			*o++ = *p++;
		} else if (c == '#' || (c == '/' && p + 1 < end && p[1] == '/')) {
			while (p < end && *p != '\n') {
				*o++ = *p++;
			}
		} else if (c == '/' && p + 1 < end && p[1] == '*') {
			int first = line;

			*o++ = *p++;
			*o++ = *p++;
			while (p < end && !(p[0] == '*' && p + 1 < end && p[1] == '/')) {
				line += *p == '\n';
				*o++ = *p++;
			}
			if (p == end) {
				/* libconfig would silently take the rest as a comment. */
				*bad_line = first;
				set_err(why, whylen, "unterminated comment");
				return -EINVAL;
			}
			*o++ = *p++;
			*o++ = *p++;
		} else if (c == '"') {
			int first = line;

			*o++ = *p++;
			while (p < end && *p != '"') {
				/* Only \" and \\ can hide a quote; other escapes are one char. */
				if (*p == '\\' && p + 1 < end && (p[1] == '"' || p[1] == '\\')) {
					*o++ = *p++;
				}
				line += *p == '\n';
				*o++ = *p++;
			}
			if (p == end) {
				/*
				 * libconfig 1.5 may drop an unterminated string at the end
				 * of the text without a word, and leaks its buffer.
				 */
				*bad_line = first;
				set_err(why, whylen, "unterminated string");
				return -EINVAL;
			}
			*o++ = *p++;
		} else if (c == '@' && (size_t)(end - p) >= 8 && memcmp(p, "@include", 8) == 0) {
			*bad_line = line;
			set_err(why, whylen,
				"@include is not supported (keep the config in one file)");
			return -EINVAL;
		} else if (isalpha((unsigned char)c) || c == '*') {
			/* A name: digits inside it are not numbers. */
			while (p < end && (isalnum((unsigned char)*p) || *p == '-' || *p == '_' ||
					   *p == '*')) {
				*o++ = *p++;
			}
		} else if (q < end && (isdigit((unsigned char)*q) || *q == '.')) {
			const char *next;

			if (copy_number(p, end, &o, &next) != 0) {
				*bad_line = line;
				set_err(why, whylen, "integer %.*s does not fit in 64 bits",
					(int)PC_MIN(next - p, 40), p);
				return -EINVAL;
			}
			p = next;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	return 0;
}

struct pc_cfg_loader {
	struct pc_config *cfg;
	const char *name;
	int32_t seen[PC_CONFIG_MAX_KEYS]; /* line each key was set at in this file, 0 = not yet */
	char *err;
	size_t errlen;
};

static int
setting_line(const config_setting_t *s)
{
	unsigned int line = config_setting_source_line(s);

	return line > INT32_MAX ? INT32_MAX : (int)line;
}

/* True when `prefix` + "_" starts some key: an empty group of that name is harmless. */
static bool
is_group_prefix(const char *prefix)
{
	size_t len = strlen(prefix);

	for (int i = 0; i < PC_CFG_NKEYS; i++) {
		if (strncmp(g_keys[i].name, prefix, len) == 0 && g_keys[i].name[len] == '_') {
			return true;
		}
	}
	return false;
}

/* Join a list or array of strings with ',' (discovery_addr, device_names). */
static int
join_list(struct pc_cfg_loader *ld, const struct pc_cfg_key *k, const config_setting_t *s,
	  char *buf, size_t len, int line)
{
	int n = config_setting_length(s);
	size_t o = 0;

	buf[0] = '\0';
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned int)i);
		struct pc_cfg_val v = {.type = config_setting_type(e)};
		char got[256];
		const char *str;
		size_t slen;

		if (v.type != CONFIG_TYPE_STRING) {
			if (v.type == CONFIG_TYPE_INT || v.type == CONFIG_TYPE_INT64) {
				v.type = CONFIG_TYPE_INT64;
				v.i = config_setting_get_int64(e);
			} else if (v.type == CONFIG_TYPE_FLOAT) {
				v.d = config_setting_get_float(e);
			} else if (v.type == CONFIG_TYPE_BOOL) {
				v.i = config_setting_get_bool(e);
			}
			set_err(ld->err, ld->errlen,
				"%s:%d: %s: expected a list of strings, got %s", ld->name, line,
				k->name, describe_val(got, sizeof(got), &v, k));
			return -EINVAL;
		}
		str = config_setting_get_string(e);
		slen = strlen(str);
		if (o + (i > 0) + slen >= len) {
			set_err(ld->err, ld->errlen,
				"%s:%d: %s: expected at most %lld characters, got more", ld->name,
				line, k->name, k->max);
			return -EINVAL;
		}
		if (i > 0) {
			buf[o++] = ',';
		}
		memcpy(buf + o, str, slen + 1);
		o += slen;
	}
	return 0;
}

static int load_setting(struct pc_cfg_loader *ld, const config_setting_t *s, const char *prefix);

static int
load_group(struct pc_cfg_loader *ld, const config_setting_t *g, const char *flat, int line)
{
	int n = config_setting_length(g);

	if (n == 0 && !is_group_prefix(flat)) {
		char where[PC_CONFIG_ERR_MAX];

		snprintf(where, sizeof(where), "%s:%d: ", ld->name, line);
		unknown_key(ld->err, ld->errlen, where, flat);
		return -EINVAL;
	}
	for (int i = 0; i < n; i++) {
		int rc = load_setting(ld, config_setting_get_elem(g, (unsigned int)i), flat);

		if (rc != 0) {
			return rc;
		}
	}
	return 0;
}

/*
 * Decode one setting. A group contributes its name as a prefix: `disk = {
 * enabled = true; }` is the key disk_enabled, at any depth.
 */
static int
load_setting(struct pc_cfg_loader *ld, const config_setting_t *s, const char *prefix)
{
	const char *name = config_setting_name(s);
	int line = setting_line(s);
	char flat[PC_CFG_NAME_MAX + 2];
	char joined[PC_CONFIG_STR_MAX];
	char why[PC_CONFIG_ERR_MAX];
	const struct pc_cfg_key *k;
	struct pc_cfg_val v = {.type = config_setting_type(s)};
	int n;
	int idx;

	if (name == NULL) {
		name = "";
	}
	if (prefix != NULL) {
		n = snprintf(flat, sizeof(flat), "%s_%s", prefix, name);
	} else {
		n = snprintf(flat, sizeof(flat), "%s", name);
	}
	k = (size_t)n < sizeof(flat) ? find_key(flat) : NULL;

	/*
	 * A group is a prefix unless it names a key that nothing extends:
	 * `cluster_secret = { file = ...; }` is cluster_secret_file, but
	 * `vnodes = { ... }` is a group where an integer belongs.
	 */
	if (v.type == CONFIG_TYPE_GROUP && (size_t)n < sizeof(flat) - 1 &&
	    (k == NULL || is_group_prefix(flat))) {
		return load_group(ld, s, flat, line);
	}
	if (k == NULL) {
		char where[PC_CONFIG_ERR_MAX];

		snprintf(where, sizeof(where), "%s:%d: ", ld->name, line);
		unknown_key(ld->err, ld->errlen, where, flat);
		return -EINVAL;
	}
	idx = key_index(k);
	if (ld->seen[idx] != 0) {
		set_err(ld->err, ld->errlen, "%s:%d: %s: set twice (first at line %d)", ld->name,
			line, k->name, (int)ld->seen[idx]);
		return -EINVAL;
	}

	switch (v.type) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		v.type = CONFIG_TYPE_INT64;
		v.i = config_setting_get_int64(s);
		break;
	case CONFIG_TYPE_FLOAT:
		v.d = config_setting_get_float(s);
		break;
	case CONFIG_TYPE_BOOL:
		v.i = config_setting_get_bool(s);
		break;
	case CONFIG_TYPE_STRING:
		v.s = config_setting_get_string(s);
		break;
	case CONFIG_TYPE_LIST:
	case CONFIG_TYPE_ARRAY:
		if (k->type == PC_CFG_LIST) {
			if (join_list(ld, k, s, joined, sizeof(joined), line) != 0) {
				return -EINVAL;
			}
			v.type = CONFIG_TYPE_STRING;
			v.s = joined;
		}
		break;
	default:
		break;
	}
	if (apply_value(ld->cfg, k, &v, why, sizeof(why)) != 0) {
		set_err(ld->err, ld->errlen, "%s:%d: %s: %s", ld->name, line, k->name, why);
		return -EINVAL;
	}
	ld->seen[idx] = line;
	ld->cfg->key_line[idx] = line;
	return 0;
}

static int
load_text(struct pc_config *cfg, const char *name, const char *text, size_t len, char *err,
	  size_t errlen)
{
	struct pc_config tmp;
	struct pc_cfg_loader ld;
	const config_setting_t *root;
	config_t lc;
	char why[PC_CONFIG_ERR_MAX];
	char *buf;
	int bad_line = 0;
	int rc;

	if (len > PC_CFG_TEXT_MAX) {
		set_err(err, errlen, "%s: cannot read: larger than %zu bytes", name,
			PC_CFG_TEXT_MAX);
		return -EFBIG;
	}
	buf = malloc(2 * len + 1);
	if (buf == NULL) {
		set_err(err, errlen, "%s: cannot read: %s", name, strerror(ENOMEM));
		return -ENOMEM;
	}
	rc = prepare_text(text, len, buf, &bad_line, why, sizeof(why));
	if (rc != 0) {
		set_err(err, errlen, "%s:%d: syntax error: %s", name, bad_line, why);
		goto err_free;
	}

	config_init(&lc);
	if (config_read_string(&lc, buf) != CONFIG_TRUE) {
		const char *text_err = config_error_text(&lc);

		/* libconfig's own text is mostly a bare "syntax error": say what is expected. */
		if (text_err == NULL || strcmp(text_err, "syntax error") == 0) {
			text_err = "expected `key = value;` (strings in double quotes, groups as "
				   "`name = { ... };`)";
		}
		set_err(err, errlen, "%s:%d: syntax error: %s", name, config_error_line(&lc),
			text_err);
		rc = -EINVAL;
		goto err_destroy;
	}

	pc_config_defaults(&tmp);
	store_string(tmp.source, sizeof(tmp.source), name);
	memset(&ld, 0, sizeof(ld));
	ld.cfg = &tmp;
	ld.name = name;
	ld.err = err;
	ld.errlen = errlen;
	root = config_root_setting(&lc);
	for (int i = 0; i < config_setting_length(root); i++) {
		rc = load_setting(&ld, config_setting_get_elem(root, (unsigned int)i), NULL);
		if (rc != 0) {
			goto err_destroy;
		}
	}
	/* Only a fully valid file replaces what the caller had. */
	*cfg = tmp;
	rc = 0;

err_destroy:
	config_destroy(&lc);
err_free:
	free(buf);
	return rc;
}

int
pc_config_load_string(struct pc_config *cfg, const char *name, const char *text, char *err,
		      size_t errlen)
{
	if (name == NULL) {
		name = "<string>";
	}
	if (text == NULL) {
		set_err(err, errlen, "%s: cannot read: no text", name);
		return -EINVAL;
	}
	return load_text(cfg, name, text, strlen(text), err, errlen);
}

int
pc_config_load_embedded(struct pc_config *cfg, char *err, size_t errlen)
{
	return load_text(cfg, "<embedded>", g_embedded_text, strlen(g_embedded_text), err, errlen);
}

int
pc_config_load_file(struct pc_config *cfg, const char *path, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	size_t cap = 0;
	FILE *f;
	int rc;

	if (path == NULL) {
		set_err(err, errlen, "(null): cannot read: %s", strerror(EINVAL));
		return -EINVAL;
	}
	f = fopen(path, "re");
	if (f == NULL) {
		rc = -errno;
		set_err(err, errlen, "%s: cannot read: %s", path, strerror(-rc));
		return rc;
	}
	for (;;) {
		size_t got;

		if (len == cap) {
			char *grown;

			/* One byte more than the cap tells "too large" from "exactly full". */
			if (cap > PC_CFG_TEXT_MAX) {
				set_err(err, errlen, "%s: cannot read: larger than %zu bytes", path,
					PC_CFG_TEXT_MAX);
				rc = -EFBIG;
				goto err_close;
			}
			cap = cap == 0 ? 4096 : cap * 2;
			grown = realloc(text, cap + 1);
			if (grown == NULL) {
				set_err(err, errlen, "%s: cannot read: %s", path, strerror(ENOMEM));
				rc = -ENOMEM;
				goto err_close;
			}
			text = grown;
		}
		got = fread(text + len, 1, cap - len, f);
		len += got;
		if (got == 0) {
			break;
		}
	}
	if (ferror(f)) {
		rc = errno != 0 ? -errno : -EIO;
		set_err(err, errlen, "%s: cannot read: %s", path, strerror(-rc));
		goto err_close;
	}
	text[len] = '\0';
	if (memchr(text, '\0', len) != NULL) {
		/* libconfig would stop at the NUL and silently ignore the rest of the file. */
		const char *nul = memchr(text, '\0', len);
		int line = 1;

		for (const char *c = text; c < nul; c++) {
			line += *c == '\n';
		}
		set_err(err, errlen, "%s:%d: syntax error: NUL byte in the file", path, line);
		rc = -EINVAL;
		goto err_close;
	}
	rc = load_text(cfg, path, text, len, err, errlen);

err_close:
	fclose(f);
	free(text);
	return rc;
}

/* ---- --set ---- */

static bool
parse_bool_word(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < PC_ARRAY_SIZE(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

static bool
parse_ll(const char *s, long long *out)
{
	const char *digits = s;
	char *end;
	int base = 10;

	if (*digits == '+' || *digits == '-') {
		digits++;
	}
	if (!isdigit((unsigned char)*digits)) {
		return false;
	}
	if (digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
		base = 16;
	}
	errno = 0;
	*out = strtoll(s, &end, base);
	return errno == 0 && *end == '\0' && end != s;
}

static bool
parse_double(const char *s, double *out)
{
	char *end;

	if (*s == '\0' || isspace((unsigned char)*s)) {
		return false;
	}
	errno = 0;
	*out = strtod(s, &end);
	/* Written so that NaN and the infinities are refused. */
	return *end == '\0' && end != s && *out - *out == 0.0;
}

/* Blanks around a --set key or a non-string value are the shell's, not the user's. */
static char *
trim(char *s)
{
	size_t len;

	while (isspace((unsigned char)*s)) {
		s++;
	}
	len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1])) {
		s[--len] = '\0';
	}
	return s;
}

static char *
unquote(char *s)
{
	size_t len = strlen(s);

	if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
		s[len - 1] = '\0';
		return s + 1;
	}
	return s;
}

/* Type a --set value by the key it targets, as a file's literal would have been typed. */
static void
typed_value(const struct pc_cfg_key *k, char *raw, struct pc_cfg_val *v)
{
	char *t;
	bool b;

	v->type = CONFIG_TYPE_STRING;
	switch (k->type) {
	case PC_CFG_BOOL:
		t = trim(raw);
		v->s = t;
		if (parse_bool_word(t, &b)) {
			v->type = CONFIG_TYPE_BOOL;
			v->i = b;
		}
		return;
	case PC_CFG_INT:
		t = trim(raw);
		v->s = t;
		if (parse_ll(t, &v->i)) {
			v->type = CONFIG_TYPE_INT64;
		} else if ((k->flags & PC_CFG_F_BOOL_OK) && parse_bool_word(t, &b)) {
			v->type = CONFIG_TYPE_BOOL;
			v->i = b;
		} else if (parse_double(t, &v->d)) {
			v->type = CONFIG_TYPE_FLOAT;
		}
		return;
	case PC_CFG_DECIMAL:
		t = trim(raw);
		v->s = t;
		if (parse_double(t, &v->d)) {
			v->type = CONFIG_TYPE_FLOAT;
		}
		return;
	case PC_CFG_SIZE:
	case PC_CFG_ENUM:
	case PC_CFG_WORD:
		v->s = unquote(trim(raw));
		return;
	case PC_CFG_STRING:
	case PC_CFG_LIST:
		/* Verbatim: a path or a secret may well start or end with a blank. */
		v->s = unquote(raw);
		return;
	}
}

int
pc_config_set(struct pc_config *cfg, const char *assignment, char *err, size_t errlen)
{
	const struct pc_cfg_key *k;
	struct pc_cfg_val v;
	char why[PC_CONFIG_ERR_MAX];
	char shown[128];
	char flat[PC_CFG_NAME_MAX + 1] = "";
	const char *eq;
	char *copy;
	char *key;
	size_t i;
	int rc;

	if (assignment == NULL) {
		set_err(err, errlen, "--set: expected key=value, got nothing");
		return -EINVAL;
	}
	eq = strchr(assignment, '=');
	copy = strdup(assignment);
	if (copy == NULL) {
		set_err(err, errlen, "--set: %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	key = copy;
	if (eq != NULL) {
		copy[eq - assignment] = '\0';
		key = trim(copy);
	}
	if (eq == NULL || *key == '\0') {
		set_err(err, errlen, "--set: expected key=value, got %s",
			quote(shown, sizeof(shown), assignment));
		rc = -EINVAL;
		goto out;
	}
	for (i = 0; i < PC_CFG_NAME_MAX && key[i] != '\0'; i++) {
		flat[i] = key[i] == '.' ? '_' : key[i];
	}
	flat[i] = '\0';
	k = key[i] == '\0' ? find_key(flat) : NULL;
	if (k == NULL) {
		unknown_key(err, errlen, "--set: ", key);
		rc = -EINVAL;
		goto out;
	}
	typed_value(k, copy + (eq - assignment) + 1, &v);
	rc = apply_value(cfg, k, &v, why, sizeof(why));
	if (rc != 0) {
		set_err(err, errlen, "--set: %s: %s", k->name, why);
		goto out;
	}
	cfg->key_line[key_index(k)] = -1;

out:
	if (copy != NULL) {
		/* It may hold the cluster secret. */
		explicit_bzero(copy, strlen(assignment));
	}
	free(copy);
	return rc;
}

/* ---- Finalize ---- */

/* "FILE:LINE: key: ", "--set: key: " or "FILE: key: " for a default. */
static const char *
where_of(char *buf, size_t len, const struct pc_config *cfg, const struct pc_cfg_key *k)
{
	int line = cfg->key_line[key_index(k)];

	if (line > 0) {
		snprintf(buf, len, "%s:%d: %s: ", cfg->source, line, k->name);
	} else if (line < 0) {
		snprintf(buf, len, "--set: %s: ", k->name);
	} else {
		snprintf(buf, len, "%s: %s: ", cfg->source, k->name);
	}
	return buf;
}

/*
 * Read the secret file: a regular file (a FIFO or a tty would block the
 * engine's start), at most PC_CONFIG_SECRET_MAX - 1 bytes, trailing
 * newlines dropped (editors add one), no NUL, at least 16 bytes.
 */
static int
read_secret(const char *path, char *out, size_t outlen, char *why, size_t whylen)
{
	char buf[PC_CONFIG_SECRET_MAX + 1];
	char shown[128];
	struct stat st;
	size_t len = 0;
	ssize_t n;
	int fd;
	int rc = 0;

	quote(shown, sizeof(shown), path);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		set_err(why, whylen, "cannot read %s: %s", shown, strerror(-rc));
		return -EINVAL;
	}
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		set_err(why, whylen, "cannot read %s: %s", shown, strerror(-rc));
		goto err_close;
	}
	if (!S_ISREG(st.st_mode)) {
		set_err(why, whylen, "expected a regular file, got %s", shown);
		rc = -EINVAL;
		goto err_close;
	}
	while (len < sizeof(buf)) {
		n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			rc = -errno;
			set_err(why, whylen, "cannot read %s: %s", shown, strerror(-rc));
			goto err_wipe;
		}
		if (n == 0) {
			break;
		}
		len += (size_t)n;
	}
	if (len >= outlen) {
		set_err(why, whylen, "expected a secret of at most %zu bytes in %s, got more",
			outlen - 1, shown);
		rc = -EINVAL;
		goto err_wipe;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) {
		len--;
	}
	if (memchr(buf, '\0', len) != NULL) {
		set_err(why, whylen, "expected a secret without NUL bytes in %s", shown);
		rc = -EINVAL;
		goto err_wipe;
	}
	if (len < PC_CFG_SECRET_MIN) {
		set_err(why, whylen, "expected a secret of at least %d bytes in %s, got %zu",
			PC_CFG_SECRET_MIN, shown, len);
		rc = -EINVAL;
		goto err_wipe;
	}
	memcpy(out, buf, len);
	memset(out + len, 0, outlen - len);

err_wipe:
	explicit_bzero(buf, sizeof(buf));
err_close:
	close(fd);
	return rc != 0 ? -EINVAL : 0;
}

int
pc_config_finalize(struct pc_config *cfg, char *err, size_t errlen)
{
	const struct pc_cfg_key *addr = find_key("discovery_addr");
	const struct pc_cfg_key *devs = find_key("device_names");
	const struct pc_cfg_key *hb = find_key("heartbeat_interval");
	const struct pc_cfg_key *ttl = find_key("member_ttl");
	const struct pc_cfg_key *secret = find_key("cluster_secret");
	const struct pc_cfg_key *secret_file = find_key("cluster_secret_file");
	char where[PC_CONFIG_STR_MAX + PC_CFG_NAME_MAX + 16];
	char why[PC_CONFIG_ERR_MAX];
	char a[64];
	char b[64];
	bool inline_secret;

	if (cfg->discovery_addr[0] == '\0') {
		set_err(err, errlen,
			"%srequired: the bootstrap head host:port (or a comma-separated seed list)",
			where_of(where, sizeof(where), cfg, addr));
		return -EINVAL;
	}
	if (!check_seeds(cfg->discovery_addr)) {
		struct pc_cfg_val v = {.type = CONFIG_TYPE_STRING, .s = cfg->discovery_addr};

		mismatch(why, sizeof(why), addr, &v);
		set_err(err, errlen, "%s%s", where_of(where, sizeof(where), cfg, addr), why);
		return -EINVAL;
	}
	if (!check_devices(cfg->device_names)) {
		struct pc_cfg_val v = {.type = CONFIG_TYPE_STRING, .s = cfg->device_names};

		mismatch(why, sizeof(why), devs, &v);
		set_err(err, errlen, "%s%s", where_of(where, sizeof(where), cfg, devs), why);
		return -EINVAL;
	}
	if (!(cfg->member_ttl > cfg->heartbeat_interval)) {
		format_decimal(cfg->heartbeat_interval, a, sizeof(a));
		format_decimal(cfg->member_ttl, b, sizeof(b));
		/* Blame the key the user set: a default member_ttl was not their choice. */
		if (cfg->key_line[key_index(ttl)] == 0 && cfg->key_line[key_index(hb)] != 0) {
			set_err(err, errlen, "%sexpected less than member_ttl (%s), got %s",
				where_of(where, sizeof(where), cfg, hb), b, a);
		} else {
			set_err(err, errlen, "%sexpected more than heartbeat_interval (%s), got %s",
				where_of(where, sizeof(where), cfg, ttl), a, b);
		}
		return -EINVAL;
	}

	/*
	 * A secret resolved from the file by an earlier finalize keeps key_line
	 * 0, so finalizing twice re-reads the file instead of calling it inline.
	 */
	inline_secret = cfg->cluster_secret[0] != '\0' && cfg->key_line[key_index(secret)] != 0;
	if (inline_secret && cfg->cluster_secret_file[0] != '\0') {
		set_err(err, errlen,
			"%sexpected either cluster_secret or cluster_secret_file, got both",
			where_of(where, sizeof(where), cfg, secret_file));
		return -EINVAL;
	}
	if (cfg->cluster_secret_file[0] != '\0') {
		if (read_secret(cfg->cluster_secret_file, cfg->cluster_secret,
				sizeof(cfg->cluster_secret), why, sizeof(why)) != 0) {
			set_err(err, errlen, "%s%s",
				where_of(where, sizeof(where), cfg, secret_file), why);
			return -EINVAL;
		}
	} else if (!check_secret(cfg->cluster_secret)) {
		set_err(err, errlen, "%sexpected a secret of at least %d characters, got %zu",
			where_of(where, sizeof(where), cfg, secret), PC_CFG_SECRET_MIN,
			strlen(cfg->cluster_secret));
		return -EINVAL;
	}
	return 0;
}

/* ---- Printing ---- */

/* A libconfig string literal: quotes and backslashes escaped, control bytes as \xNN. */
static void
format_string(const char *s, char *buf, size_t len)
{
	size_t o = 0;

	buf[o++] = '"';
	for (; *s != '\0' && o + 6 < len; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
		} else {
			buf[o++] = (char)c;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
}

static void
format_value(const struct pc_config *cfg, const struct pc_cfg_key *k, char *buf, size_t len)
{
	const void *field = cfield_of(cfg, k);
	char size[32];

	switch (k->type) {
	case PC_CFG_BOOL:
		snprintf(buf, len, "%s", *(const bool *)field ? "true" : "false");
		break;
	case PC_CFG_INT:
		snprintf(buf, len, "%d", *(const int *)field);
		break;
	case PC_CFG_DECIMAL:
		format_decimal(*(const double *)field, buf, len);
		break;
	case PC_CFG_SIZE:
		pc_config_format_size(*(const uint64_t *)field, size, sizeof(size));
		snprintf(buf, len, "\"%s\"", size);
		break;
	case PC_CFG_ENUM: {
		int idx = *(const int *)field;
		int n = 0;

		while (k->names[n] != NULL) {
			n++;
		}
		snprintf(buf, len, "\"%s\"", idx >= 0 && idx < n ? k->names[idx] : "?");
		break;
	}
	case PC_CFG_WORD:
	case PC_CFG_STRING:
	case PC_CFG_LIST:
		if ((k->flags & PC_CFG_F_AUTO) && *(const char *)field == '\0') {
			snprintf(buf, len, "\"auto\"");
		} else {
			format_string(field, buf, len);
		}
		break;
	}
}

/* Where a value came from, for the comment after it; control bytes in a path are masked. */
static void
format_origin(const struct pc_config *cfg, int idx, char *buf, size_t len)
{
	int line = cfg->key_line[idx];

	if (line < 0) {
		snprintf(buf, len, "--set");
	} else if (line == 0) {
		snprintf(buf, len, "default");
	} else {
		snprintf(buf, len, "%s:%d", cfg->source, line);
	}
	for (char *c = buf; *c != '\0'; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f) {
			*c = '?';
		}
	}
}

int
pc_config_print(const struct pc_config *cfg, FILE *out)
{
	char value[PC_CFG_VALUE_MAX];
	char line[PC_CFG_VALUE_MAX + PC_CFG_NAME_MAX + 8];
	char origin[PC_CONFIG_STR_MAX + 16];
	char source[PC_CONFIG_STR_MAX];

	if (cfg == NULL || out == NULL) {
		return -EINVAL;
	}
	store_string(source, sizeof(source), cfg->source);
	for (char *c = source; *c != '\0'; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f) {
			*c = '?';
		}
	}
	fprintf(out, "# PeerCache effective configuration (source: %s).\n", source);
	fprintf(out,
		"# Every key in schema order; the comment after a value says where it came\n"
		"# from: default, --set, or FILE:LINE. This text loads back as a config file.\n");
	for (int i = 0; i < PC_CFG_NKEYS; i++) {
		const struct pc_cfg_key *k = &g_keys[i];

		if (k->section != NULL) {
			fprintf(out, "\n# %s\n", k->section);
		}
		format_origin(cfg, i, origin, sizeof(origin));
		if (k->flags & PC_CFG_F_SECRET) {
			/* Never the secret itself: this output ends up in logs and tickets. */
			if (cfg->cluster_secret[0] != '\0') {
				fprintf(out, "%-47s # %s\n", "# cluster_secret: set (hidden)",
					cfg->key_line[i] != 0 || cfg->cluster_secret_file[0] == '\0'
						? origin
						: "cluster_secret_file");
			} else {
				fprintf(out, "# cluster_secret: not set\n");
			}
			continue;
		}
		format_value(cfg, k, value, sizeof(value));
		snprintf(line, sizeof(line), "%s = %s;", k->name, value);
		fprintf(out, "%-47s # %s\n", line, origin);
	}
	if (fflush(out) != 0 || ferror(out)) {
		return -EIO;
	}
	return 0;
}

/* ---- Names ---- */

static const char *
enum_name(const char *const *names, int n, int value)
{
	return value >= 0 && value < n ? names[value] : "unknown";
}

const char *
pc_config_mode_name(enum pc_mode mode)
{
	return enum_name(g_mode_names, (int)PC_ARRAY_SIZE(g_mode_names) - 1, (int)mode);
}

const char *
pc_config_write_policy_name(enum pc_write_policy policy)
{
	return enum_name(g_write_policy_names, (int)PC_ARRAY_SIZE(g_write_policy_names) - 1,
			 (int)policy);
}

const char *
pc_config_role_name(enum pc_role role)
{
	return enum_name(g_role_names, (int)PC_ARRAY_SIZE(g_role_names) - 1, (int)role);
}

const char *
pc_config_protocol_name(enum pc_protocol protocol)
{
	return enum_name(g_protocol_names, (int)PC_ARRAY_SIZE(g_protocol_names) - 1, (int)protocol);
}

const char *
pc_config_idle_policy_name(enum pc_idle_policy policy)
{
	return enum_name(g_idle_policy_names, (int)PC_ARRAY_SIZE(g_idle_policy_names) - 1,
			 (int)policy);
}
