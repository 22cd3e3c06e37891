/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * PeerCache engine configuration.
 *
 * The schema is one table (config.c) of {key, type, offset, range, default}.
 * Keys carry the seed's flat extra_config names (`disk_enabled`); in a
 * libconfig file they may also be grouped, a group name joined to its member
 * by '_' (`disk = { enabled = true; }` is `disk_enabled`), so an SGLang
 * extra_config translates 1:1.
 *
 * Precedence: compiled-in defaults (the seed's), then either the embedded
 * single-node default (no --config) or the config file, then each --set in
 * order, then cross-key validation. Every error reads
 * `FILE:LINE: key: what was expected`.
 *
 * This module has no DPDK dependency: it is decoded before rte_eal_init()
 * and is fuzzed on its own. Nothing here logs; errors go to the caller's
 * buffer. All functions may be called from any thread on distinct objects;
 * after loading, workers only read a `const struct pc_config *`.
 */
#ifndef PC_CONFIG_H
#define PC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PC_CONFIG_STR_MAX    256  /* hosts, paths, names: longest accepted value + 1 */
#define PC_CONFIG_SECRET_MAX 1024 /* cluster secret, inline or from a file + 1 */
#define PC_CONFIG_ERR_MAX    512  /* room for one error message */
#define PC_CONFIG_VERSION    1    /* the only config_version this engine reads */
#define PC_CONFIG_MAX_KEYS   64   /* room in key_line[] for every schema key */

enum pc_mode {
	PC_MODE_P2P,
	PC_MODE_HYBRID,
	PC_MODE_CENTRALIZED,
};

enum pc_write_policy {
	PC_WRITE_LOCAL,
	PC_WRITE_STORAGE,
	PC_WRITE_BOTH,
};

enum pc_role {
	PC_ROLE_AUTO,
	PC_ROLE_INFERENCE,
	PC_ROLE_STORAGE,
	PC_ROLE_META, /* discovery only: no pool, no directory shard (peercache-meta) */
};

enum pc_protocol {
	PC_PROTO_RDMA,
	PC_PROTO_TCP,
};

enum pc_idle_policy {
	PC_IDLE_BUSY,     /* never sleep: production, dedicated cores */
	PC_IDLE_ADAPTIVE, /* back off when idle: tests, CI, laptops, shared cores */
};

/* The effective configuration. Field names are the flat key names. */
struct pc_config {
	/* SGLang dynamic-factory keys: accepted so an extra_config loads as is. */
	char backend_name[PC_CONFIG_STR_MAX];
	char module_path[PC_CONFIG_STR_MAX];
	char class_name[PC_CONFIG_STR_MAX];
	int interface_v1; /* read by the SGLang backend only */
	bool autostart;   /* read by the SGLang backend only */

	/* Discovery: "host:port" or a comma-separated seed list; first = head. */
	char discovery_addr[PC_CONFIG_STR_MAX];

	/* Deployment mode. */
	enum pc_mode mode;
	enum pc_write_policy write_policy;
	enum pc_role role;

	/* RDMA / transport. */
	enum pc_protocol protocol;
	char device_name[PC_CONFIG_STR_MAX];  /* "" = first active device */
	char device_names[PC_CONFIG_STR_MAX]; /* comma list of rails; overrides device_name */
	int ib_port;
	int gid_index; /* -1 = no GRH (InfiniBand) */
	int max_channels_per_peer;
	bool tcp_zerocopy; /* serve with MSG_ZEROCOPY */

	/* Capacity / placement. */
	uint64_t global_segment_size; /* bytes */
	int vnodes;
	int directory_replicas;
	double directory_read_cache_ttl; /* seconds, 0 = off */
	int max_masters;

	/* Disk tier (L4). */
	bool disk_enabled;
	char disk_path[PC_CONFIG_STR_MAX];
	uint64_t disk_size; /* bytes */

	/* Monitoring. */
	bool metrics_enabled;
	int metrics_port; /* 0 = ephemeral */
	char metrics_bind_host[PC_CONFIG_STR_MAX];
	bool metrics_dashboard;

	/* Networking / identity. */
	char meta_bind_host[PC_CONFIG_STR_MAX];
	char local_hostname[PC_CONFIG_STR_MAX]; /* "" = auto */
	char rdma_bind_host[PC_CONFIG_STR_MAX];
	int rdma_port; /* 0 = ephemeral */
	char control_bind_host[PC_CONFIG_STR_MAX];
	int control_port;                /* 0 = ephemeral */
	char node_id[PC_CONFIG_STR_MAX]; /* "" = auto */
	double heartbeat_interval;       /* seconds */
	double member_ttl;               /* seconds */

	/* The engine's own. */
	char engine_socket[PC_CONFIG_STR_MAX];
	enum pc_idle_policy idle_policy;
	int max_sessions;
	double request_timeout; /* seconds */
	double page_quarantine; /* seconds */
	bool page_crc;
	char cluster_secret[PC_CONFIG_SECRET_MAX]; /* resolved: inline or read from the file */
	char cluster_secret_file[PC_CONFIG_STR_MAX];
	int config_version;

	/* Provenance, for messages and --print-config. */
	char source[PC_CONFIG_STR_MAX];       /* file name, "<embedded>" or "<defaults>" */
	int32_t key_line[PC_CONFIG_MAX_KEYS]; /* per schema key: line in source, 0 = default,
					       * -1 = set by --set */
};

/*
 * Fill *cfg with the compiled-in defaults: the seed's documented defaults
 * plus the engine's own (idle_policy "busy", engine_socket under /run).
 * discovery_addr is left empty: a config file must set it.
 */
void pc_config_defaults(struct pc_config *cfg);

/*
 * Load the embedded single-node default over the compiled-in defaults: its
 * own discovery head on 127.0.0.1:31998, every bind on loopback, TCP, disk
 * tier off, adaptive idle policy. Returns 0, or -EINVAL with err filled if
 * the embedded text is broken (a build defect, caught by the unit tests).
 */
int pc_config_load_embedded(struct pc_config *cfg, char *err, size_t errlen);

/* The embedded default's libconfig text. */
const char *pc_config_embedded_text(void);

/*
 * Load a libconfig file over the compiled-in defaults. Returns 0, -ENOENT /
 * -EACCES / ... when the file cannot be read, or -EINVAL for a syntax
 * error, an unknown key, a wrong type, an out-of-range value, a malformed
 * size or a missing required key; err then holds `FILE:LINE: key: what was
 * expected`.
 *
 * Like pc_config_load_embedded and pc_config_load_string, it starts from
 * pc_config_defaults() itself and replaces *cfg only on success: on error
 * *cfg is left as it was. A file over 1 MiB is refused (-EFBIG); an
 * @include directive is a syntax error (one file holds the whole config).
 */
int pc_config_load_file(struct pc_config *cfg, const char *path, char *err, size_t errlen);

/*
 * As pc_config_load_file, on text in memory; `name` stands for the file
 * name in messages. Used by the fuzz target and the tests.
 */
int pc_config_load_string(struct pc_config *cfg, const char *name, const char *text, char *err,
			  size_t errlen);

/*
 * Apply one `key=value` override (the --set option). The key is flat
 * (`disk_enabled`) or dotted (`disk.enabled`); the value is read by the
 * key's type: strings verbatim (optional surrounding double quotes removed),
 * booleans true/false/yes/no/on/off/1/0, integers, decimals, sizes as for
 * the file. Returns 0 or -EINVAL with err as `--set: key: what was expected`.
 */
int pc_config_set(struct pc_config *cfg, const char *assignment, char *err, size_t errlen);

/*
 * Cross-key checks after all sources are applied (member_ttl greater than
 * heartbeat_interval, cluster_secret and cluster_secret_file exclusive, a
 * discovery_addr present and well-formed, ...) and resolution of
 * cluster_secret_file into cluster_secret. Messages name the source and the
 * line of the offending key (`FILE:LINE: key: ...`, or `--set: key: ...`).
 * Returns 0 or -EINVAL with err filled.
 */
int pc_config_finalize(struct pc_config *cfg, char *err, size_t errlen);

/*
 * Write the effective config to `out` in libconfig syntax, every key with
 * its value, defaults included, one `key = value;` per line in schema order
 * under section comments. The output loads back to the same config. The
 * cluster secret is never printed. Returns 0 or -EIO.
 */
int pc_config_print(const struct pc_config *cfg, FILE *out);

/*
 * Parse a size: a non-negative integer, or a decimal number followed by a
 * unit b, k/kb/kib, m/mb/mib, g/gb/gib, t/tb/tib (case-insensitive, base
 * 1024, optional space before the unit). Returns 0 with *bytes set, or
 * -EINVAL (malformed, negative, fractional byte count) / -ERANGE (over
 * UINT64_MAX).
 */
int pc_config_parse_size(const char *text, uint64_t *bytes);

/*
 * Write a size as --print-config does: the largest unit that divides it
 * exactly ("4gb", "512mb", "1536kb"), else plain digits. The text reads back
 * through pc_config_parse_size to the same value. Returns 0, -EINVAL (no
 * buffer) or -ENOSPC (buf too small; it then holds a truncated text).
 */
int pc_config_format_size(uint64_t bytes, char *buf, size_t len);

/* Name of an enum value as written in the config ("p2p", "tcp", ...); "unknown" if out of range. */
const char *pc_config_mode_name(enum pc_mode mode);
const char *pc_config_write_policy_name(enum pc_write_policy policy);
const char *pc_config_role_name(enum pc_role role);
const char *pc_config_protocol_name(enum pc_protocol protocol);
const char *pc_config_idle_policy_name(enum pc_idle_policy policy);

/*
 * Split discovery_addr into its seeds. Fills up to `max` {host, port} pairs
 * and returns how many there were (possibly more than max; 0 for ""), or
 * -EINVAL if an entry is malformed. IPv6 hosts are written in brackets
 * ("[::1]:31998"); host is stored without them, ready for getaddrinfo().
 * Blanks around an entry are ignored; a host without brackets is
 * [A-Za-z0-9._-]; the port is 1..65535. `seeds` may be NULL to only check.
 */
struct pc_config_hostport {
	char host[PC_CONFIG_STR_MAX];
	uint16_t port;
};
int pc_config_parse_seeds(const char *list, struct pc_config_hostport *seeds, int max);

#endif /* PC_CONFIG_H */
