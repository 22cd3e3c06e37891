/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * peercache-demo-client: store pages in the node's engine through
 * libpeercache, read them back and check every byte.
 *
 *   peercache-demo-client [--socket PATH] [--ns NAME] [--pages N]
 *                         [--page-size BYTES] [--batch N] [--timeout MS]
 *   peercache-demo-client PATH        (the same as --socket PATH)
 *
 * The socket defaults to $PEERCACHE_SOCKET, else /tmp/peercache/engine.sock.
 * It sets N pages (default 1000) of --page-size bytes (default 1 MiB) in
 * batches of --batch (default 32) with prefix_depth = the index of the
 * batch's first page, each page given as two segments (its K and V halves,
 * as SGLang's page_first layout hands them over) and filled with an xorshift
 * stream keyed by the page index; then reads them back in batches into
 * poisoned buffers and compares every byte; then checks batch_exists prefix
 * counts (the first 64 keys: 64; keys 0..9, a missing key, keys 11..20: 10).
 * It prints pages/s and GB/s for SET and GET (the time spent inside the
 * library calls only) and the engine's counters.
 *
 * Keys are "demo-<page size>-<index>" in namespace --ns (default "demo"), so
 * a second run finds its pages already stored (SET answers "already
 * stored", a success) and still checks every byte it reads back.
 *
 * Exit status: 0 all pages stored, read back and identical; 1 a SET or GET
 * failure, a miss, a mismatch or a wrong EXISTS count; 2 bad arguments or no
 * engine.
 *
 * Build: `make` builds build/peercache-demo-client (rpath $ORIGIN to
 * build/libpeercache.so). Against an installed library:
 *   cc demo_client.c $(pkg-config --cflags --libs peercache)
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "peercache.h"

struct demo_opts {
	const char *socket;
	const char *ns;
	unsigned long pages;
	unsigned long page_size;
	unsigned long batch;
	unsigned long timeout_ms;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* xorshift64 state for page idx: distinct, deterministic, never zero. */
static uint64_t
page_seed(unsigned long idx)
{
	return ((uint64_t)idx + 1) * 0x9E3779B97F4A7C15ull | 1;
}

static uint64_t
xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void
page_fill(uint8_t *p, size_t len, unsigned long idx)
{
	uint64_t x = page_seed(idx);
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w = xorshift(&x);

		memcpy(p + i, &w, 8);
	}
	if (i < len) {
		uint64_t w = xorshift(&x);

		memcpy(p + i, &w, len - i);
	}
}

/* The first byte of page idx that differs from its pattern, or -1. */
static long
page_check(const uint8_t *p, size_t len, unsigned long idx)
{
	uint64_t x = page_seed(idx);
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w = xorshift(&x);

		if (memcmp(p + i, &w, 8) != 0) {
			for (size_t b = 0; b < 8; b++) {
				if (p[i + b] != (uint8_t)(w >> (8 * b))) {
					return (long)(i + b);
				}
			}
		}
	}
	if (i < len) {
		uint64_t w = xorshift(&x);

		for (size_t b = 0; i + b < len; b++) {
			if (p[i + b] != (uint8_t)(w >> (8 * b))) {
				return (long)(i + b);
			}
		}
	}
	return -1;
}

static void
usage(FILE *f, const char *argv0)
{
	fprintf(f,
		"usage: %s [--socket PATH] [--ns NAME] [--pages N] [--page-size BYTES]\n"
		"          [--batch N] [--timeout MS] [PATH]\n",
		argv0);
}

static bool
parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		return false;
	}
	*out = v;
	return true;
}

static int
parse_args(int argc, char **argv, struct demo_opts *o)
{
	static const struct option longopts[] = {
		{"socket", required_argument, NULL, 's'},
		{"ns", required_argument, NULL, 'n'},
		{"pages", required_argument, NULL, 'p'},
		{"page-size", required_argument, NULL, 'z'},
		{"batch", required_argument, NULL, 'b'},
		{"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int opt;

	*o = (struct demo_opts){
		.ns = "demo",
		.pages = 1000,
		.page_size = 1ul << 20,
		.batch = 32,
		.timeout_ms = 5000,
	};
	while ((opt = getopt_long(argc, argv, "s:n:p:z:b:t:h", longopts, NULL)) != -1) {
		bool ok = true;

		switch (opt) {
		case 's':
			o->socket = optarg;
			break;
		case 'n':
			o->ns = optarg;
			break;
		case 'p':
			ok = parse_ulong(optarg, 1, 10000000, &o->pages);
			break;
		case 'z':
			ok = parse_ulong(optarg, 2, 64ul << 20, &o->page_size);
			break;
		case 'b':
			ok = parse_ulong(optarg, 1, 1024, &o->batch);
			break;
		case 't':
			ok = parse_ulong(optarg, 1, 3600000, &o->timeout_ms);
			break;
		case 'h':
			usage(stdout, argv[0]);
			exit(0);
		default:
			ok = false;
			break;
		}
		if (!ok) {
			fprintf(stderr, "%s: bad value for option -%c\n", argv[0], opt);
			usage(stderr, argv[0]);
			return -1;
		}
	}
	if (optind < argc) {
		o->socket = argv[optind++];
	}
	if (optind < argc) {
		usage(stderr, argv[0]);
		return -1;
	}
	return 0;
}

/* The batch's keys and its two segments per page. */
struct demo_batch {
	char (*names)[64];
	const char **keys;
	struct pc_iov *iov;
	unsigned int *niov;
	int *results;
	uint8_t *mem;
};

static void
batch_prepare(struct demo_batch *b, const struct demo_opts *o, unsigned long first, unsigned int n)
{
	size_t k_len = o->page_size / 2;

	for (unsigned int j = 0; j < n; j++) {
		uint8_t *page = b->mem + (size_t)j * o->page_size;

		snprintf(b->names[j], sizeof(b->names[j]), "demo-%lu-%lu", o->page_size, first + j);
		b->keys[j] = b->names[j];
		b->niov[j] = 2;
		b->iov[2 * (size_t)j] = (struct pc_iov){page, k_len};
		b->iov[2 * (size_t)j + 1] = (struct pc_iov){page + k_len, o->page_size - k_len};
	}
}

static void
print_rate(const char *what, unsigned long pages, size_t page_size, double secs)
{
	double bytes = (double)pages * (double)page_size;

	if (secs <= 0) {
		secs = 1e-9;
	}
	printf("%-4s %lu pages in %.3f s: %.0f pages/s, %.2f GB/s\n", what, pages, secs,
	       (double)pages / secs, bytes / secs / 1e9);
}

int
main(int argc, char **argv)
{
	struct demo_opts o;
	struct demo_batch b;
	struct pc_client *c;
	struct pc_client_stats st;
	unsigned long stored = 0, dedup = 0, hits = 0, bad = 0;
	double t_set = 0, t_get = 0;
	const char *ex_keys[21];
	char missing[64];
	int err = 0;
	int status = 0;

	if (parse_args(argc, argv, &o) != 0) {
		return 2;
	}
	c = pc_client_connect(o.socket, o.ns, (unsigned int)o.timeout_ms, &err);
	if (c == NULL) {
		fprintf(stderr, "peercache-demo-client: cannot connect to %s: %s\n",
			o.socket != NULL ? o.socket : "the default engine socket", strerror(-err));
		return 2;
	}
	b.names = calloc(o.batch, sizeof(*b.names));
	b.keys = calloc(o.batch, sizeof(*b.keys));
	b.iov = calloc(2 * o.batch, sizeof(*b.iov));
	b.niov = calloc(o.batch, sizeof(*b.niov));
	b.results = calloc(o.batch, sizeof(*b.results));
	b.mem = malloc(o.batch * o.page_size);
	if (!b.names || !b.keys || !b.iov || !b.niov || !b.results || !b.mem) {
		fprintf(stderr, "peercache-demo-client: out of memory\n");
		status = 2;
		goto out;
	}
	printf("peercache-demo-client: libpeercache %s, namespace \"%s\", %lu pages of %lu "
	       "bytes, batches of %lu\n",
	       pc_client_version(), o.ns, o.pages, o.page_size, o.batch);

	for (unsigned long first = 0; first < o.pages; first += o.batch) {
		unsigned int n =
			(unsigned int)(o.pages - first < o.batch ? o.pages - first : o.batch);
		double t0;
		int rc;

		batch_prepare(&b, &o, first, n);
		for (unsigned int j = 0; j < n; j++) {
			page_fill(b.mem + (size_t)j * o.page_size, o.page_size, first + j);
		}
		t0 = now_s();
		rc = pc_client_batch_set(c, n, b.keys, b.iov, b.niov, (uint32_t)first, b.results);
		t_set += now_s() - t0;
		if (rc < 0) {
			fprintf(stderr, "SET pages %lu..%lu failed: %s\n", first, first + n - 1,
				strerror(-rc));
			status = 1;
			goto out;
		}
		for (unsigned int j = 0; j < n; j++) {
			if (b.results[j] == 0) {
				stored++;
			} else if (b.results[j] == PC_CLIENT_DEDUP) {
				dedup++;
			} else {
				fprintf(stderr, "SET %s: %s\n", b.keys[j], strerror(-b.results[j]));
				status = 1;
			}
		}
	}
	print_rate("SET", o.pages, o.page_size, t_set);
	printf("     %lu stored, %lu already stored\n", stored, dedup);

	for (unsigned long first = 0; first < o.pages; first += o.batch) {
		unsigned int n =
			(unsigned int)(o.pages - first < o.batch ? o.pages - first : o.batch);
		double t0;
		int rc;

		batch_prepare(&b, &o, first, n);
		memset(b.mem, 0xa5, (size_t)n * o.page_size);
		t0 = now_s();
		rc = pc_client_batch_get(c, n, b.keys, b.iov, b.niov, b.results);
		t_get += now_s() - t0;
		if (rc < 0) {
			fprintf(stderr, "GET pages %lu..%lu failed: %s\n", first, first + n - 1,
				strerror(-rc));
			status = 1;
			goto out;
		}
		for (unsigned int j = 0; j < n; j++) {
			long at;

			if (b.results[j] != 0) {
				fprintf(stderr, "GET %s: %s\n", b.keys[j], strerror(-b.results[j]));
				status = 1;
				continue;
			}
			hits++;
			at = page_check(b.mem + (size_t)j * o.page_size, o.page_size, first + j);
			if (at >= 0) {
				fprintf(stderr, "GET %s: byte %ld differs\n", b.keys[j], at);
				bad++;
				status = 1;
			}
		}
	}
	print_rate("GET", o.pages, o.page_size, t_get);
	printf("     %lu hits, %lu pages differ\n", hits, bad);

	/* EXISTS counts the leading keys present. */
	{
		unsigned int n = (unsigned int)(o.pages < 64 ? o.pages : 64);
		const char **keys = calloc(n, sizeof(*keys));
		char(*names)[64] = calloc(n, sizeof(*names));
		int rc;

		for (unsigned int j = 0; j < n && keys && names; j++) {
			snprintf(names[j], sizeof(names[j]), "demo-%lu-%u", o.page_size, j);
			keys[j] = names[j];
		}
		rc = keys && names ? pc_client_batch_exists(c, n, keys, NULL) : -ENOMEM;
		printf("EXISTS first %u keys: %d%s\n", n, rc, rc == (int)n ? "" : " (WRONG)");
		if (rc != (int)n) {
			status = 1;
		}
		if (n >= 21) {
			snprintf(missing, sizeof(missing), "demo-missing-%lu", o.page_size);
			for (unsigned int j = 0; j < 21; j++) {
				ex_keys[j] = j == 10 ? missing : keys[j];
			}
			rc = pc_client_batch_exists(c, 21, ex_keys, NULL);
			printf("EXISTS keys 0..9, a missing key, 11..20: %d%s\n", rc,
			       rc == 10 ? "" : " (WRONG)");
			if (rc != 10) {
				status = 1;
			}
		}
		free(keys);
		free(names);
	}

	if (pc_client_stats(c, &st) == 0) {
		printf("engine: %" PRIu64 " pages, %" PRIu64 " bytes used of %" PRIu64 ", %" PRIu64
		       " sets, %" PRIu64 " dedup, %" PRIu64 " gets (%" PRIu64 " hits), %" PRIu64
		       " evictions; client: %" PRIu64 " reconnects, %" PRIu64 " timeouts\n",
		       st.pages, st.bytes_used, st.segment_size, st.sets, st.set_dedup, st.gets,
		       st.get_hits, st.evictions, st.reconnects, st.timeouts);
	}
out:
	if (status != 2) {
		printf("%s\n", status == 0 ? "demo: OK, every byte matched" : "demo: FAILED");
	}
	pc_client_close(c);
	free(b.names);
	free(b.keys);
	free(b.iov);
	free(b.niov);
	free(b.results);
	free(b.mem);
	return status;
}
