/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for pc_config_parse_size and pc_config_parse_seeds.
 *
 * Properties: a parsed size formats back to text that parses to the same
 * number; digits alone parse to what strtoull says (or -ERANGE); units
 * scale exactly and ignore case. A parsed seed list, written out again from
 * its hosts and ports, parses to the same seeds.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define FUZZ_SEEDS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_size(const char *text, size_t len)
{
	uint64_t bytes = 0;
	uint64_t back = 0;
	char buf[32];
	char *scaled;
	int rc = pc_config_parse_size(text, &bytes);
	bool digits = len > 0;

	if (rc != 0 && rc != -EINVAL && rc != -ERANGE) {
		__builtin_trap();
	}
	if (rc == 0) {
		if (pc_config_format_size(bytes, buf, sizeof(buf)) != 0) {
			__builtin_trap();
		}
		if (pc_config_parse_size(buf, &back) != 0 || back != bytes) {
			__builtin_trap();
		}
	}

	for (size_t i = 0; i < len; i++) {
		digits &= isdigit((unsigned char)text[i]) != 0;
	}
	if (!digits) {
		return;
	}
	errno = 0;
	back = strtoull(text, NULL, 10);
	if (errno == ERANGE ? rc != -ERANGE : (rc != 0 || bytes != back)) {
		__builtin_trap();
	}
	if (rc != 0 || bytes > (UINT64_MAX >> 10)) {
		return;
	}
	/* "<n>k" and "<n> KiB" are n * 1024, exactly. */
	scaled = malloc(len + 8);
	if (scaled == NULL) {
		return;
	}
	snprintf(scaled, len + 8, "%sk", text);
	if (pc_config_parse_size(scaled, &back) != 0 || back != bytes << 10) {
		__builtin_trap();
	}
	snprintf(scaled, len + 8, "%s KiB", text);
	if (pc_config_parse_size(scaled, &back) != 0 || back != bytes << 10) {
		__builtin_trap();
	}
	free(scaled);
}

static void
check_seeds(const char *text)
{
	static struct pc_config_hostport seeds[FUZZ_SEEDS];
	static struct pc_config_hostport again[FUZZ_SEEDS];
	static char list[FUZZ_SEEDS * (PC_CONFIG_STR_MAX + 16)];
	int n = pc_config_parse_seeds(text, seeds, FUZZ_SEEDS);
	size_t o = 0;

	if (n < 0) {
		if (n != -EINVAL) {
			__builtin_trap();
		}
		return;
	}
	if (n > FUZZ_SEEDS) {
		return;
	}
	list[0] = '\0';
	for (int i = 0; i < n; i++) {
		const char *host = seeds[i].host;
		bool v6 = strchr(host, ':') != NULL;

		if (host[0] == '\0' || seeds[i].port == 0) {
			__builtin_trap();
		}
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s%s%s:%u", i > 0 ? "," : "",
				      v6 ? "[" : "", host, v6 ? "]" : "", seeds[i].port);
	}
	if (pc_config_parse_seeds(list, again, FUZZ_SEEDS) != n) {
		__builtin_trap();
	}
	for (int i = 0; i < n; i++) {
		if (strcmp(seeds[i].host, again[i].host) != 0 || seeds[i].port != again[i].port) {
			__builtin_trap();
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);

	if (text == NULL) {
		return 0;
	}
	memcpy(text, data, size);
	text[size] = '\0';
	check_size(text, strlen(text));
	check_seeds(text);
	free(text);
	return 0;
}
