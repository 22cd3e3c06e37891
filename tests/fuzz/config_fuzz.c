/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target for the config decoder (config/config.c).
 *
 * The input is a config file: it is loaded, finalized and printed. Whatever
 * loads must also survive the trip through --print-config: the printed text
 * loads back (and finalizes, if the original did) and prints the same
 * values again. The same bytes are then given to --set as one assignment.
 * Every refusal must come with a message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/*
 * libconfig 1.5's parser has no %destructor: when the token that makes a
 * syntax error is a string ("b \"y\"", or an empty "" from its scanner),
 * the scanner's buffer for it leaks. Not ours to fix; only the scanner's
 * token buffers are excused, so a config_t we forgot to destroy (settings,
 * names) is still reported.
 */
const char *
__lsan_default_suppressions(void)
{
	return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

static FILE *g_null;

static char *
print_to_string(const struct pc_config *cfg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);

	if (mem == NULL) {
		abort();
	}
	if (pc_config_print(cfg, mem) != 0) {
		__builtin_trap();
	}
	fclose(mem);
	return text;
}

/*
 * The values of a printed config: comment lines dropped, and each
 * `key = value;  # origin` cut after its last ';', since the origins
 * (fuzz.cfg:3 vs rt.cfg:17) differ by design.
 */
static void
strip_origins(char *text)
{
	char *in = text;
	char *out = text;

	while (*in != '\0') {
		char *eol = strchr(in, '\n');
		size_t len = eol != NULL ? (size_t)(eol - in) : strlen(in);
		char *semi = NULL;

		for (size_t i = 0; i < len; i++) {
			if (in[i] == ';') {
				semi = in + i;
			}
		}
		if (in[0] != '#' && semi != NULL) {
			size_t keep = (size_t)(semi - in) + 1;

			memmove(out, in, keep);
			out += keep;
			*out++ = '\n';
		}
		in += len + (eol != NULL);
	}
	*out = '\0';
}

static void
fail_round_trip(const char *what, const char *first, const char *second, const char *err)
{
	fprintf(stderr, "round trip: %s\n%s\n--- first ---\n%s\n--- second ---\n%s\n", what,
		err != NULL ? err : "", first, second != NULL ? second : "");
	__builtin_trap();
}

static void
round_trip(const struct pc_config *cfg, bool finalized)
{
	struct pc_config back;
	struct pc_config again;
	char err[PC_CONFIG_ERR_MAX] = "";
	char *first = print_to_string(cfg);
	char *second;
	char *third;

	pc_config_defaults(&back);
	if (pc_config_load_string(&back, "rt.cfg", first, err, sizeof(err)) != 0) {
		fail_round_trip("the printed config does not load", first, NULL, err);
	}
	if (finalized && pc_config_finalize(&back, err, sizeof(err)) != 0) {
		fail_round_trip("the printed config does not finalize", first, NULL, err);
	}
	second = print_to_string(&back);

	/* Printed from the same layout under the same name: equal to the byte. */
	pc_config_defaults(&again);
	if (pc_config_load_string(&again, "rt.cfg", second, err, sizeof(err)) != 0) {
		fail_round_trip("the reprinted config does not load", second, NULL, err);
	}
	if (finalized && pc_config_finalize(&again, err, sizeof(err)) != 0) {
		fail_round_trip("the reprinted config does not finalize", second, NULL, err);
	}
	third = print_to_string(&again);
	if (strcmp(second, third) != 0) {
		fail_round_trip("second and third prints differ", second, third, NULL);
	}

	strip_origins(first);
	strip_origins(second);
	if (strcmp(first, second) != 0) {
		fail_round_trip("values changed", first, second, NULL);
	}
	free(first);
	free(second);
	free(third);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pc_config cfg;
	char err[PC_CONFIG_ERR_MAX];
	char *text;
	bool finalized;

	if (g_null == NULL) {
		g_null = fopen("/dev/null", "w");
		if (g_null == NULL) {
			abort();
		}
	}
	text = malloc(size + 1);
	if (text == NULL) {
		return 0;
	}
	memcpy(text, data, size);
	text[size] = '\0';

	err[0] = '\0';
	pc_config_defaults(&cfg);
	if (pc_config_load_string(&cfg, "fuzz.cfg", text, err, sizeof(err)) == 0) {
		finalized = pc_config_finalize(&cfg, err, sizeof(err)) == 0;
		if (!finalized && err[0] == '\0') {
			__builtin_trap();
		}
		pc_config_print(&cfg, g_null);
		/* The secret is never printed, so a config with one cannot come back whole. */
		if (cfg.cluster_secret[0] == '\0') {
			round_trip(&cfg, finalized);
		}
	} else if (strncmp(err, "fuzz.cfg", 8) != 0) {
		/* Every refusal names the file. */
		__builtin_trap();
	}

	err[0] = '\0';
	pc_config_defaults(&cfg);
	if (pc_config_set(&cfg, text, err, sizeof(err)) == 0) {
		pc_config_print(&cfg, g_null);
		if (cfg.cluster_secret[0] == '\0') {
			round_trip(&cfg, false);
		}
	} else if (strncmp(err, "--set: ", 7) != 0) {
		__builtin_trap();
	}
	free(text);
	return 0;
}
