/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What peercache-bench's source files share: timing and statistics, the
 * results (flat keys and table rows, written as JSON, markdown and charts at
 * the end), the sweep grid, CPU placement and the child processes the bench
 * starts. A program's own header, not a library: no pc_ prefix.
 */
#ifndef PEERCACHE_BENCH_H
#define PEERCACHE_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define SWEEP_CAP       (256ULL << 20)  /* bytes: a sweep point's batch is at most half of this */
#define SWEEP_BYTES     (SWEEP_CAP / 4) /* moved per repetition by a local or redis point */
#define SWEEP_MAX_PAGES 4096U
#define SWEEP_REPS      3U

struct opts {
	const char *json;
	const char *markdown;
	const char *plot;
	const char *socket;
	const char *engine_lcores;
	unsigned int pages;
	size_t page_size;
	unsigned int batch;
	unsigned int reps;
	int sweep;
	int reserve_huge; /* --reserve-hugepages: raise nr_hugepages for the run, restore after */
	const char *rdma_device; /* --rdma-device: NULL = the first with port 1 ACTIVE */
	int gid_index;           /* --gid-index: RDMA_GID_AUTO, -1 (no GRH) or 0..255 */
};

/*
 * Where the processes run. cpu -1: not pinned. On machines with fewer than 6
 * usable CPUs everything shares them as before (engines on 0-1, client not
 * pinned, ring baselines on 0 and 1).
 */
struct placement {
	char eng[2][64]; /* EAL -l list of engine A and engine B */
	int client_cpu;  /* this process: client calls, memcpy, hiredis */
	int peer_cpu;    /* raw TCP server, redis-server */
	int ring_cpu[2]; /* the ring baselines' two processes */
	char text[512];  /* as printed and written to machine.placement */
};

/* One measured series: per-operation samples in ns, plus per-rep throughput. */
struct series {
	double *ns;
	size_t n, cap;
	double rep_rate[64];
	unsigned int nrep;
};

extern double g_tsc_ghz;
extern struct placement g_place;

/* ---------------------------------------------------------------- time */

uint64_t now_ns(void);
double ticks_to_ns(uint64_t t);

static inline uint64_t
ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __builtin_ia32_rdtsc();
#else
	return now_ns();
#endif
}

/* ---------------------------------------------------------------- stats */

void series_add(struct series *s, double ns);
void series_rep(struct series *s, double rate);
void series_time(struct series *s, unsigned int r, uint64_t t, uint64_t *total);
void series_free(struct series *s);
/* p-th percentile of v (sorts v in place). */
double pct(double *v, size_t n, double p);
double mean(const double *v, size_t n);
double rate_median(struct series *s);

/* ---------------------------------------------------------------- helpers */

void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* Pin the calling process to cpu (-1, or a CPU it may not use: every CPU it started with). */
void pin(int cpu);
/* Pin the calling process where the client belongs (g_place.client_cpu). */
void pin_client(void);
void *buf_alloc(size_t len);
void buf_free(void *p, size_t len);
void fill_pattern(unsigned char *p, size_t len, uint64_t seed);
void fmt_size(char *out, size_t len, size_t b);
int free_port(void);
/* Full path of an executable found in $PATH into out; 0 or -ENOENT. */
int find_in_path(const char *name, char *out, size_t len);

/*
 * The idx-th point of the sweep grid (page sizes 4 KiB..8 MiB x batch
 * 1..128, points whose batch exceeds SWEEP_CAP / 2 left out). Returns 0, or
 * -1 past the last point.
 */
int sweep_point(unsigned int idx, size_t *size, unsigned int *batch);
/* Pages a sweep point moves per repetition: `bytes` worth, at most max_pages, at least batch. */
unsigned int sweep_pages(size_t size, unsigned int batch, size_t bytes, unsigned int max_pages);

/* ---------------------------------------------------------------- tables */

void table_head(const char *title);
/* Print a tebench-style row and record it (name e.g. "local.get") for JSON/markdown/plots. */
void table_row(const char *name, const char *what, size_t blk, unsigned int batch, int sweep,
	       struct series *s);

/* ---------------------------------------------------------------- results (report.c) */

/* A flat result, kept in memory and written by report_json. */
void json_num(const char *key, double v);
void json_str(const char *key, const char *v);
/* A string in an object: json_note("rdma", "skipped", why) is written "rdma": {"skipped": why}. */
void json_note(const char *obj, const char *key, const char *v);
/* The value of a numeric key; 0 if it was not recorded. */
int result_get(const char *key, double *v);
void row_add(const char *name, size_t size, unsigned int batch, int sweep, double gbps,
	     double lat_avg_us, double lat_p99_us, size_t ops);
/* Print issue 7's ratio targets that this run can compute. */
void report_targets(void);
/* Write everything recorded: flat keys, then the sweep rows under "sweep". 0 or -errno. */
int report_json(const char *path);
/* docs/benchmarks.md-ready tables. 0 or -errno. */
int report_markdown(const char *path, const char *title);
/* .dat files and a gnuplot script into dir, then gnuplot. 0, or -errno (-ENOENT: no gnuplot). */
int report_plot(const char *dir, unsigned int default_batch);
/* Whether any sweep row was recorded. */
int report_has_sweep(void);

/* ---------------------------------------------------------------- rdma (rdma.c) */

#define RDMA_GID_AUTO (-100) /* --gid-index not given: RoCE v2 for RoCE, none for InfiniBand */

/* The device, port and GID the rdma half of `remote` uses; the engines get the same. */
struct rdma_where {
	char dev[64];
	int port;
	int gid_index; /* -1: no GRH (InfiniBand) */
	int roce;      /* the port's link layer is Ethernet */
	char text[192];
};

/*
 * Pick the device: `name`, or (NULL or "") the first whose `port` is
 * ACTIVE; and its GID index: gid_index, or with RDMA_GID_AUTO a RoCE v2
 * one (IPv4-mapped first) on RoCE and none on InfiniBand. 0, or -ENODEV
 * (-EINVAL: bad arguments, a RoCE port without a GID index) with why: the
 * line the bench prints when it skips RDMA.
 */
int rdma_where_pick(const char *name, int port, int gid_index, struct rdma_where *w, char *why,
		    size_t len);
/* The bytes the serving process registers for a point of pages x size (both sides use it). */
size_t rdma_remote_len(size_t size, unsigned int pages);
/*
 * The raw verbs READ baseline's two processes, joined by a connected
 * stream socket (sock). rdma_serve: register len bytes of a pattern for
 * remote READ, connect, wait for the reader. rdma_read_bench: connect, then
 * reps + 1 repetitions (0: warm-up) of `pages` READs of size with `batch`
 * in flight, the bytes checked after each; samples and per-rep GB/s into s.
 * Each returns 0 or -errno with why (the other's failure too).
 */
int rdma_serve(int sock, const struct rdma_where *w, size_t len, char *why, size_t wlen);
int rdma_read_bench(int sock, const struct rdma_where *w, size_t size, unsigned int batch,
		    unsigned int pages, unsigned int reps, struct series *s, char *why,
		    size_t wlen);

/* ---------------------------------------------------------------- redis (redis.c) */

/* Why the redis subcommand cannot run here (empty string: it can). */
void redis_check(char *why, size_t len);
/* The redis subcommand: start redis-server, SET/GET the pages, stop it. */
void run_redis(const struct opts *o);
/* Stop redis-server if running and remove its directory (atexit path). */
void redis_stop(void);

/* redis-server while it runs (pid > 0): the signal handler stops it from these. */
struct redis_proc {
	pid_t pid;
	char dir[128];
	char log[192];
};
extern struct redis_proc g_redis;

#endif
