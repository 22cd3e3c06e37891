/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * peercache-bench: the perf lab (issue 7).
 *
 *   peercache-bench ring|local|remote|exists|redis|all [--json FILE] [--markdown FILE]
 *                   [--plot DIR] [--socket PATH] [--engine-lcores A[,B]] [--pages N]
 *                   [--page-size B] [--batch N] [--reps N] [--sweep | --no-sweep]
 *                   [--reserve-hugepages] [--rdma-device NAME] [--gid-index N]
 *
 * Every figure is printed next to a baseline measured in the same run on the
 * same machine, and the ratio between them; nothing here asserts a speed.
 * The engines it needs are started here (build/peercache next to this binary,
 * loopback, a free discovery port, sockets in a mkdtemp directory) and stopped
 * with SIGTERM at the end, on error too; --socket uses a running engine for
 * the single-engine subcommands instead. redis (redis.c) starts its own
 * redis-server the same way. `all` includes the sweep unless --no-sweep.
 * remote runs a second time over protocol rdma when an RDMA device exists
 * (rdma.c: the device, and the raw verbs READ baseline), else says why not.
 * report.c writes the results: JSON, markdown tables, gnuplot charts.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <rte_ring.h>

#include "peercache.h"
#include "bench.h"

#define MAX_ENGINES  2
#define KEY_LEN      64
#define RTT_ITERS    10000
#define RTT_ROUNDS   3
#define RTT_WARMUP   2000
#define EXISTS_BATCH 128U
#define FRESH_BYTES  (64ULL << 20) /* GET/memcpy destinations rotate over this much */
#define PLACE_CPUS   6             /* CPUs needed to give each process its own */

/*
 * The default point runs in rounds, each one the engine's repetitions then
 * the baseline's: a change in the host's load or vCPU placement during the
 * run then hits both sides alike instead of one (the sweep: one round).
 */
#define DEFAULT_ROUNDS 5

/* The remote sweep moves less than the local one: it runs at a tenth of the speed. */
#define REMOTE_SWEEP_BYTES (SWEEP_CAP / 8)
#define REMOTE_SWEEP_PAGES 2048U
#define REMOTE_SWEEP_REPS  3U

struct engine {
	pid_t pid;
	char sock[PATH_MAX];
	char log[PATH_MAX];
};

static struct engine g_eng[MAX_ENGINES];
static unsigned int g_neng;
static pid_t g_child = -1;
static char g_dir[128];
static int g_huge;
static cpu_set_t g_start_cpus; /* the affinity the bench was started with */
double g_tsc_ghz;
struct placement g_place;

/* ---------------------------------------------------------------- time */

uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

double
ticks_to_ns(uint64_t t)
{
	return (double)t / g_tsc_ghz;
}

static void
calibrate_tsc(void)
{
#if defined(__x86_64__) || defined(__i386__)
	uint64_t n0 = now_ns(), t0 = ticks(), n1, t1;

	do {
		n1 = now_ns();
	} while (n1 - n0 < 100000000ULL);
	t1 = ticks();
	g_tsc_ghz = (double)(t1 - t0) / (double)(n1 - n0);
#else
	g_tsc_ghz = 1.0;
#endif
}

/* ---------------------------------------------------------------- helpers */

void
die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	va_start(ap, fmt);
	fputs("peercache-bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

void
pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &g_start_cpus)) {
		(void)sched_setaffinity(0, sizeof(g_start_cpus), &g_start_cpus);
		return;
	}
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	(void)sched_setaffinity(0, sizeof(set), &set);
}

void
pin_client(void)
{
	pin(g_place.client_cpu);
}

static void *
shared_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		die("mmap %zu bytes: %s", len, strerror(errno));
	}
	return p;
}

void *
buf_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	size_t i;

	if (p == MAP_FAILED) {
		die("mmap %zu bytes: %s", len, strerror(errno));
	}
	for (i = 0; i < len; i += 4096) {
		((volatile char *)p)[i] = (char)i;
	}
	return p;
}

void
buf_free(void *p, size_t len)
{
	if (p != NULL) {
		munmap(p, len);
	}
}

int
find_in_path(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH");
	const char *p;

	if (path == NULL || *path == 0) {
		path = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";
	}
	for (p = path; *p;) {
		size_t dl = strcspn(p, ":");

		if (dl > 0 && (size_t)snprintf(out, len, "%.*s/%s", (int)dl, p, name) < len &&
		    access(out, X_OK) == 0) {
			return 0;
		}
		p += dl;
		if (*p == ':') {
			p++;
		}
	}
	out[0] = 0;
	return -ENOENT;
}

/* ---------------------------------------------------------------- sweep grid */

static const size_t g_sweep_sizes[] = {4096, 16384, 65536, 262144, 1 << 20, 4 << 20, 8 << 20};
static const unsigned int g_sweep_batches[] = {1, 4, 16, 32, 128};

int
sweep_point(unsigned int idx, size_t *size, unsigned int *batch)
{
	const size_t nb = sizeof(g_sweep_batches) / sizeof(g_sweep_batches[0]);
	const size_t ns = sizeof(g_sweep_sizes) / sizeof(g_sweep_sizes[0]);
	size_t k;
	unsigned int seen = 0;

	for (k = 0; k < ns * nb; k++) {
		size_t sz = g_sweep_sizes[k / nb];
		unsigned int b = g_sweep_batches[k % nb];

		if (sz * b > SWEEP_CAP / 2) {
			continue;
		}
		if (seen++ == idx) {
			*size = sz;
			*batch = b;
			return 0;
		}
	}
	return -1;
}

unsigned int
sweep_pages(size_t size, unsigned int batch, size_t bytes, unsigned int max_pages)
{
	size_t pages = bytes / size;

	if (pages > max_pages) {
		pages = max_pages;
	}
	if (pages < batch) {
		pages = batch;
	}
	return (unsigned int)pages;
}

void
fill_pattern(unsigned char *p, size_t len, uint64_t seed)
{
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		uint64_t v = seed ^ (i * 0x9E3779B97F4A7C15ULL);

		memcpy(p + i, &v, 8);
	}
}

void
fmt_size(char *out, size_t len, size_t b)
{
	if (b >= (1U << 20) && b % (1U << 20) == 0) {
		snprintf(out, len, "%zu MiB", b >> 20);
	} else if (b >= 1024 && b % 1024 == 0) {
		snprintf(out, len, "%zu KiB", b >> 10);
	} else {
		snprintf(out, len, "%zu B", b);
	}
}

/* ---------------------------------------------------------------- engines */

static void
stop_engines(void)
{
	unsigned int i;

	redis_stop();
	if (g_child > 0) {
		kill(g_child, SIGKILL);
		waitpid(g_child, NULL, 0);
		g_child = -1;
	}
	for (i = 0; i < g_neng; i++) {
		struct engine *e = &g_eng[i];
		uint64_t deadline = now_ns() + 10000000000ULL;
		int st = 0;

		if (e->pid <= 0) {
			continue;
		}
		kill(e->pid, SIGTERM);
		while (waitpid(e->pid, &st, WNOHANG) == 0) {
			if (now_ns() > deadline) {
				fprintf(stderr,
					"peercache-bench: engine %u ignored SIGTERM; SIGKILL\n", i);
				kill(e->pid, SIGKILL);
				waitpid(e->pid, &st, 0);
				break;
			}
			usleep(10000);
		}
		e->pid = 0;
	}
	g_neng = 0;
	if (g_dir[0]) {
		char cmd[PATH_MAX + 16];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
		if (system(cmd) != 0) {
			fprintf(stderr, "peercache-bench: could not remove %s\n", g_dir);
		}
		g_dir[0] = 0;
	}
}

/*
 * --reserve-hugepages: nr_hugepages before the run, as the text to write
 * back at exit, on error and on SIGINT/SIGTERM (empty: not changed).
 * Formatted when it is saved, so that putting it back is signal-safe.
 */
#define NR_HUGEPAGES "/proc/sys/vm/nr_hugepages"
static char g_huge_restore[32];

static void
huge_write(const char *text)
{
	int fd = open(NR_HUGEPAGES, O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		(void)!write(fd, text, strlen(text));
		close(fd);
	}
}

/* Async-signal-safe: open, write, close. */
static void
huge_restore(void)
{
	if (g_huge_restore[0] != 0) {
		huge_write(g_huge_restore);
		g_huge_restore[0] = 0;
	}
}

/*
 * Async-signal-safe: SIGTERM the engines, reap them, remove the files, then
 * die of the same signal. The handler is reset first, so a second Ctrl-C
 * ends the bench at once should an engine not stop.
 */
static void
on_signal(int sig)
{
	unsigned int i;

	signal(sig, SIG_DFL);
	if (g_child > 0) {
		kill(g_child, SIGKILL);
	}
	if (g_redis.pid > 0) {
		kill(g_redis.pid, SIGTERM);
		waitpid(g_redis.pid, NULL, 0);
	}
	if (g_redis.dir[0]) {
		unlink(g_redis.log);
		rmdir(g_redis.dir);
	}
	for (i = 0; i < g_neng; i++) {
		if (g_eng[i].pid > 0) {
			kill(g_eng[i].pid, SIGTERM);
		}
	}
	for (i = 0; i < g_neng; i++) {
		if (g_eng[i].pid <= 0) {
			continue;
		}
		waitpid(g_eng[i].pid, NULL, 0);
		unlink(g_eng[i].sock);
		unlink(g_eng[i].log);
	}
	if (g_dir[0]) {
		rmdir(g_dir);
	}
	huge_restore();
	raise(sig);
}

int
free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
		die("cannot find a free port: %s", strerror(errno));
	}
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static long
meminfo_kib(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	long v = -1;
	size_t kl = strlen(key);

	if (f == NULL) {
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			v = strtol(line + kl + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

/*
 * Make `need_mib` of hugepages free, as the engines' segments (plus EAL's
 * 256 MiB each) would have them on a production node: the fast path is
 * built on them, and without them every first touch of a 4 KiB page is a
 * page fault (about 20 us on the VM of docs/benchmarks.md). Root only; the
 * kernel may grant fewer (fragmented memory), and the engines then start
 * with --no-huge as before.
 */
static void
huge_reserve(long need_mib)
{
	long size_kib = meminfo_kib("Hugepagesize");
	long total = meminfo_kib("HugePages_Total");
	long free_pages = meminfo_kib("HugePages_Free");
	char raise_to[32];
	long want;

	if (size_kib <= 0 || total < 0 || free_pages < 0) {
		printf("hugepages: none on this kernel; engines use --no-huge\n");
		return;
	}
	want = (need_mib * 1024 + size_kib - 1) / size_kib;
	if (free_pages >= want) {
		return;
	}
	if (geteuid() != 0) {
		printf("hugepages: %ld free, %ld wanted; --reserve-hugepages needs root, engines "
		       "use --no-huge\n",
		       free_pages, want);
		return;
	}
	snprintf(g_huge_restore, sizeof(g_huge_restore), "%ld\n", total);
	atexit(huge_restore);
	snprintf(raise_to, sizeof(raise_to), "%ld\n", total + want - free_pages);
	huge_write(raise_to);
	printf("hugepages: nr_hugepages %ld -> %ld for this run (%ld free now); put back at "
	       "exit\n",
	       total, meminfo_kib("HugePages_Total"), meminfo_kib("HugePages_Free"));
}

/* Whether `need` MiB of hugepages are free. */
static int
huge_free(long need_mib)
{
	long free_pages = meminfo_kib("HugePages_Free"), size_kib = meminfo_kib("Hugepagesize");

	return free_pages > 0 && size_kib > 0 && free_pages * size_kib / 1024 >= need_mib;
}

static void
engine_binary(char *out, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0) {
		die("readlink /proc/self/exe: %s", strerror(errno));
	}
	self[n] = 0;
	slash = strrchr(self, '/');
	if (slash) {
		*slash = 0;
	}
	if (snprintf(out, len, "%s/peercache", self) >= (int)len) {
		die("path too long: %s", self);
	}
	if (access(out, X_OK) != 0) {
		die("%s not found (build it with make)", out);
	}
}

static int
log_has(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	int hit = 0;

	if (f == NULL) {
		return 0;
	}
	while (!hit && fgets(line, sizeof(line), f)) {
		hit = strstr(line, needle) != NULL;
	}
	fclose(f);
	return hit;
}

static void
dump_log(const char *path)
{
	char cmd[PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "tail -n 30 '%s' >&2", path);
	if (system(cmd) != 0) {
		fprintf(stderr, "(no log at %s)\n", path);
	}
}

/*
 * Start engine idx on host (127.0.0.1 is the discovery head) and wait for its
 * "ready" line (60 s). Its segment is seg_mib MiB. extra: more key=value
 * settings (NULL-terminated, at most ENGINE_EXTRA_MAX), or NULL.
 */
#define ENGINE_EXTRA_MAX 8
static struct engine *
start_engine(unsigned int idx, const char *host, int disc_port, unsigned int seg_mib,
	     char *const *extra)
{
	struct engine *e = &g_eng[idx];
	char bin[PATH_MAX], prefix[64], sets[9][PATH_MAX + 64];
	char *argv[40 + 2 * ENGINE_EXTRA_MAX];
	int argc = 0, i;
	uint64_t deadline;

	engine_binary(bin, sizeof(bin));
	if (g_dir[0] == 0) {
		snprintf(g_dir, sizeof(g_dir), "/tmp/peercache-bench.XXXXXX");
		if (mkdtemp(g_dir) == NULL) {
			die("mkdtemp: %s", strerror(errno));
		}
	}
	snprintf(e->sock, sizeof(e->sock), "%s/engine%u.sock", g_dir, idx);
	snprintf(e->log, sizeof(e->log), "%s/engine%u.log", g_dir, idx);
	snprintf(prefix, sizeof(prefix), "pc_bench_%d_%u", (int)getpid(), idx);
	snprintf(sets[0], sizeof(sets[0]), "discovery_addr=127.0.0.1:%d", disc_port);
	snprintf(sets[1], sizeof(sets[1]), "local_hostname=%s", host);
	snprintf(sets[2], sizeof(sets[2]), "meta_bind_host=%s", host);
	snprintf(sets[3], sizeof(sets[3]), "control_bind_host=%s", host);
	snprintf(sets[4], sizeof(sets[4]), "rdma_bind_host=%s", host);
	snprintf(sets[5], sizeof(sets[5]), "metrics_bind_host=%s", host);
	snprintf(sets[6], sizeof(sets[6]), "engine_socket=%s", e->sock);
	snprintf(sets[7], sizeof(sets[7]), "global_segment_size=%umb", seg_mib);
	snprintf(sets[8], sizeof(sets[8]), "node_id=bench-%u", idx);

	argv[argc++] = bin;
	argv[argc++] = (char *)"-l";
	argv[argc++] = g_place.eng[idx];
	if (!huge_free((long)seg_mib + 256)) {
		argv[argc++] = (char *)"--no-huge";
	} else {
		g_huge = 1;
	}
	argv[argc++] = (char *)"--in-memory";
	argv[argc++] = (char *)"--file-prefix";
	argv[argc++] = prefix;
	argv[argc++] = (char *)"--";
	for (i = 0; i < 9; i++) {
		argv[argc++] = (char *)"--set";
		argv[argc++] = sets[i];
	}
	argv[argc++] = (char *)"--set";
	argv[argc++] = (char *)"idle_policy=adaptive";
	argv[argc++] = (char *)"--set";
	argv[argc++] = (char *)"page_quarantine=0";
	for (i = 0; extra != NULL && extra[i] != NULL && i < ENGINE_EXTRA_MAX; i++) {
		argv[argc++] = (char *)"--set";
		argv[argc++] = extra[i];
	}
	argv[argc] = NULL;

	e->pid = fork();
	if (e->pid < 0) {
		die("fork: %s", strerror(errno));
	}
	if (e->pid == 0) {
		int fd = open(e->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		/* Not the client's CPU: EAL pins the lcores, its other threads stay free. */
		pin(-1);
		execv(bin, argv);
		_exit(127);
	}
	if (idx + 1 > g_neng) {
		g_neng = idx + 1;
	}
	deadline = now_ns() + 60000000000ULL;
	while (!log_has(e->log, "peercache.engine: ready:")) {
		int st;

		if (waitpid(e->pid, &st, WNOHANG) == e->pid) {
			e->pid = 0;
			dump_log(e->log);
			die("engine %u exited before it was ready", idx);
		}
		if (now_ns() > deadline) {
			dump_log(e->log);
			die("engine %u not ready within 60 s", idx);
		}
		usleep(20000);
	}
	return e;
}

static struct pc_client *
connect_or_die(const char *sock, const char *ns)
{
	int err = 0;
	struct pc_client *c = pc_client_connect(sock, ns, 30000, &err);

	if (c == NULL) {
		die("cannot connect to %s: %s", sock, strerror(-err));
	}
	return c;
}

static long
rss_kib(pid_t pid, long *segment_kib)
{
	char path[64], line[512];
	FILE *f;
	long rss = -1, seg = 0;
	int in_seg = 0;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = fopen(path, "r");
	if (f == NULL) {
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long a, b;

		if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, ':') != NULL &&
		    line[strlen(line) - 1] == '\n' && strstr(line, " rw") != NULL) {
			in_seg = strstr(line, "/memfd:pc ") != NULL;
			continue;
		}
		if (in_seg && strncmp(line, "Rss:", 4) == 0) {
			seg += strtol(line + 4, NULL, 10);
		}
	}
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			if (strncmp(line, "VmRSS:", 6) == 0) {
				rss = strtol(line + 6, NULL, 10);
			}
		}
		fclose(f);
	}
	*segment_kib = seg;
	return rss;
}

/* ---------------------------------------------------------------- table */

void
table_head(const char *title)
{
	printf("\n== %s\n", title);
	printf("%-10s %6s %10s %14s %12s %12s\n", "BlkSize", "Batch", "GB/s", "Avg Lat(us)",
	       "P99(us)", "ops");
}

void
table_row(const char *name, const char *what, size_t blk, unsigned int batch, int sweep,
	  struct series *s)
{
	char b[32];
	double gbps = rate_median(s), avg = mean(s->ns, s->n) / 1000.0;
	double p99 = pct(s->ns, s->n, 99.0) / 1000.0;

	fmt_size(b, sizeof(b), blk);
	printf("%-10s %6u %10.3f %14.2f %12.2f %12zu  %s\n", b, batch, gbps, avg, p99, s->n, what);
	row_add(name, blk, batch, sweep, gbps, avg, p99, s->n);
}

/* Fork the baselines' peer process (g_child), pinned to cpu in the child. Returns fork's value. */
static pid_t
fork_peer(int cpu)
{
	g_child = fork();
	if (g_child < 0) {
		die("fork: %s", strerror(errno));
	}
	if (g_child == 0) {
		pin(cpu);
	}
	return g_child;
}

/* ---------------------------------------------------------------- ring */

struct pingpong {
	volatile uint64_t req __attribute__((aligned(64)));
	volatile uint64_t resp __attribute__((aligned(64)));
	volatile uint64_t stop __attribute__((aligned(64)));
};

static void
baseline_pingpong(struct series *s)
{
	struct pingpong *pp = shared_alloc(sizeof(*pp));
	uint64_t i;

	if (fork_peer(g_place.ring_cpu[1]) == 0) {
		uint64_t seen = 0;

		while (!pp->stop) {
			uint64_t v = pp->req;

			if (v != seen) {
				seen = v;
				pp->resp = v;
			}
		}
		_exit(0);
	}
	pin(g_place.ring_cpu[0]);
	for (i = 1; i <= RTT_WARMUP + RTT_ITERS; i++) {
		uint64_t t0 = ticks();

		pp->req = i;
		while (pp->resp != i) {
			cpu_relax();
		}
		if (i > RTT_WARMUP) {
			series_add(s, ticks_to_ns(ticks() - t0));
		}
	}
	pp->stop = 1;
	waitpid(g_child, NULL, 0);
	g_child = -1;
	pin_client();
	munmap(pp, sizeof(*pp));
}

static void
baseline_rte_ring(struct series *s)
{
	ssize_t sz = rte_ring_get_memsize(1024);
	char *mem;
	struct rte_ring *req, *resp;
	volatile uint64_t *stop;
	uint64_t i;

	if (sz < 0) {
		die("rte_ring_get_memsize failed");
	}
	mem = shared_alloc(2 * (size_t)sz + 64);
	req = (struct rte_ring *)mem;
	resp = (struct rte_ring *)(mem + sz);
	stop = (volatile uint64_t *)(mem + 2 * sz);
	if (rte_ring_init(req, "bench_req", 1024, RING_F_SP_ENQ | RING_F_SC_DEQ) != 0 ||
	    rte_ring_init(resp, "bench_resp", 1024, RING_F_SP_ENQ | RING_F_SC_DEQ) != 0) {
		die("rte_ring_init failed");
	}
	if (fork_peer(g_place.ring_cpu[1]) == 0) {
		uint64_t obj = 0;

		while (!*stop) {
			if (rte_ring_sc_dequeue_elem(req, &obj, sizeof(obj)) == 0) {
				while (rte_ring_sp_enqueue_elem(resp, &obj, sizeof(obj)) != 0) {
				}
			}
		}
		_exit(0);
	}
	pin(g_place.ring_cpu[0]);
	for (i = 1; i <= RTT_WARMUP + RTT_ITERS; i++) {
		uint64_t t0 = ticks();
		uint64_t obj = 0;

		/* 8-byte elements: the same slots as rte_ring_enqueue's pointers. */
		while (rte_ring_sp_enqueue_elem(req, &i, sizeof(i)) != 0) {
		}
		while (rte_ring_sc_dequeue_elem(resp, &obj, sizeof(obj)) != 0) {
			cpu_relax();
		}
		if (obj != i) {
			die("rte_ring baseline: got %llu, expected %llu", (unsigned long long)obj,
			    (unsigned long long)i);
		}
		if (i > RTT_WARMUP) {
			series_add(s, ticks_to_ns(ticks() - t0));
		}
	}
	*stop = 1;
	waitpid(g_child, NULL, 0);
	g_child = -1;
	pin_client();
	munmap(mem, 2 * (size_t)sz + 64);
}

static void
engine_rtt(const char *sock, struct series *ping, struct series *exists1)
{
	struct pc_client *c = connect_or_die(sock, "bench-ring");
	const char *keys[1] = {"bench-ring-present"};
	static unsigned char page[4096];
	struct pc_iov iov = {.base = page, .len = sizeof(page)};
	unsigned int niov = 1, i;
	int res;

	if (pc_client_batch_set(c, 1, keys, &iov, &niov, 0, &res) != 1) {
		die("SET of the EXISTS key failed: %d", res);
	}

	for (i = 0; i < RTT_WARMUP + RTT_ITERS; i++) {
		uint64_t t0 = ticks();
		int rc = pc_client_ping(c);

		if (rc != 0) {
			die("pc_client_ping: %s", strerror(-rc));
		}
		if (i >= RTT_WARMUP) {
			series_add(ping, ticks_to_ns(ticks() - t0));
		}
	}
	for (i = 0; i < RTT_WARMUP + RTT_ITERS; i++) {
		uint64_t t0 = ticks();
		int rc = pc_client_batch_exists(c, 1, keys, NULL);

		if (rc < 0) {
			die("pc_client_batch_exists: %s", strerror(-rc));
		}
		if (i >= RTT_WARMUP) {
			series_add(exists1, ticks_to_ns(ticks() - t0));
		}
	}
	pc_client_close(c);
}

static void
rtt_row(const char *what, struct series *s)
{
	double p50 = pct(s->ns, s->n, 50.0), p99 = pct(s->ns, s->n, 99.0);

	printf("%-40s %10.0f %10.0f %10.0f %8zu\n", what, p50, mean(s->ns, s->n), p99, s->n);
}

static void
run_ring(const char *sock)
{
	struct series ping = {0}, ex1 = {0}, pp = {0}, rr = {0};
	double rtt, base, rte;

	unsigned int round;

	/* Interleaved rounds, so that a drift of the vCPUs' placement hits all three alike. */
	for (round = 0; round < RTT_ROUNDS; round++) {
		baseline_pingpong(&pp);
		baseline_rte_ring(&rr);
		engine_rtt(sock, &ping, &ex1);
	}

	printf("\n== ring: one round trip through the session rings (ns)\n");
	printf("%-40s %10s %10s %10s %8s\n", "", "p50", "avg", "p99", "ops");
	rtt_row("engine: pc_client_ping (empty)", &ping);
	rtt_row("engine: 1-key EXISTS (key present)", &ex1);
	rtt_row("baseline: cache-line ping-pong (fork)", &pp);
	rtt_row("baseline: rte_ring SP/SC req/resp (fork)", &rr);
	rtt = pct(ping.ns, ping.n, 50.0);
	base = pct(pp.ns, pp.n, 50.0);
	rte = pct(rr.ns, rr.n, 50.0);
	printf("ratio ping/pingpong p50: %.2fx   ping/rte_ring p50: %.2fx   (issue 7 target: "
	       "ping <= 3x pingpong)\n",
	       rtt / base, rtt / rte);
	json_num("ring.rtt_ns_p50", rtt);
	json_num("ring.rtt_ns_p99", pct(ping.ns, ping.n, 99.0));
	json_num("ring.exists1_ns_p50", pct(ex1.ns, ex1.n, 50.0));
	json_num("ring.pingpong_ns_p50", base);
	json_num("ring.pingpong_ns_p99", pct(pp.ns, pp.n, 99.0));
	json_num("ring.rte_ring_ns_p50", rte);
	json_num("ring.rte_ring_ns_p99", pct(rr.ns, rr.n, 99.0));
	json_num("ring.ratio_rtt_pingpong", rtt / base);
	json_num("ring.ratio_rtt_rte_ring", rtt / rte);
	series_free(&ping);
	series_free(&ex1);
	series_free(&pp);
	series_free(&rr);
}

/* ---------------------------------------------------------------- local */

struct keyset {
	char (*buf)[KEY_LEN];
	const char **ptr;
	unsigned int n;
};

static void
keys_make(struct keyset *k, unsigned int n, const char *prefix, size_t size, unsigned int base)
{
	unsigned int i;

	k->buf = calloc(n, KEY_LEN);
	k->ptr = calloc(n, sizeof(*k->ptr));
	if (k->buf == NULL || k->ptr == NULL) {
		die("out of memory");
	}
	k->n = n;
	for (i = 0; i < n; i++) {
		snprintf(k->buf[i], KEY_LEN, "%s-%zu-%u", prefix, size, base + i);
		k->ptr[i] = k->buf[i];
	}
}

static void
keys_free(struct keyset *k)
{
	free(k->buf);
	free(k->ptr);
	memset(k, 0, sizeof(*k));
}

struct xfer {
	size_t size;
	unsigned int batch;
	unsigned char *src; /* batch pages, the SET source */
	unsigned char *dst; /* FRESH_BYTES or more, rotated: not cache-resident */
	size_t dst_len;
	size_t dst_off;
	struct pc_iov *iov;
	unsigned int *niov;
	int *res;
};

static void
xfer_init(struct xfer *x, size_t size, unsigned int batch)
{
	size_t blen = size * batch;
	unsigned int i;

	x->size = size;
	x->batch = batch;
	x->src = buf_alloc(blen);
	fill_pattern(x->src, blen, 0x5eed);
	x->dst_len = blen > FRESH_BYTES ? 2 * blen : FRESH_BYTES;
	x->dst_len = x->dst_len / blen * blen;
	x->dst = buf_alloc(x->dst_len);
	x->dst_off = 0;
	x->iov = calloc(batch, sizeof(*x->iov));
	x->niov = calloc(batch, sizeof(*x->niov));
	x->res = calloc(batch, sizeof(*x->res));
	if (x->iov == NULL || x->niov == NULL || x->res == NULL) {
		die("out of memory");
	}
	for (i = 0; i < batch; i++) {
		x->niov[i] = 1;
	}
}

static void
xfer_free(struct xfer *x)
{
	munmap(x->src, x->size * x->batch);
	munmap(x->dst, x->dst_len);
	free(x->iov);
	free(x->niov);
	free(x->res);
}

/* The next batch-sized window of the rotating destination. */
static unsigned char *
xfer_next_dst(struct xfer *x)
{
	unsigned char *p = x->dst + x->dst_off;

	x->dst_off += x->size * x->batch;
	if (x->dst_off >= x->dst_len) {
		x->dst_off = 0;
	}
	return p;
}

static void
xfer_point_iov(struct xfer *x, unsigned char *base, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		x->iov[i].base = base + (size_t)i * x->size;
		x->iov[i].len = x->size;
	}
}

/* memcpy of the same sizes, batch by batch, from and into fresh (uncached) buffers. */
static void
baseline_memcpy(struct xfer *x, unsigned int pages, unsigned int reps, struct series *s)
{
	unsigned char *src = buf_alloc(x->dst_len);
	size_t src_off = 0, blen = x->size * x->batch;
	unsigned int r, first, i;

	/* The source rotates over its own large region too: DRAM to DRAM, neither side cached. */
	fill_pattern(src, x->dst_len, 0xc0de);
	for (r = 0; r <= reps; r++) {
		uint64_t total = 0;

		for (first = 0; first < pages; first += x->batch) {
			unsigned int n = pages - first < x->batch ? pages - first : x->batch;
			unsigned char *d = xfer_next_dst(x);
			const unsigned char *sp = src + src_off;
			uint64_t t0 = ticks(), t;

			src_off = src_off + blen >= x->dst_len ? 0 : src_off + blen;
			for (i = 0; i < n; i++) {
				memcpy(d + (size_t)i * x->size, sp + (size_t)i * x->size, x->size);
			}
			t = ticks() - t0;
			series_time(s, r, t, &total);
		}
		if (r > 0) {
			series_rep(s, (double)pages * (double)x->size / ticks_to_ns(total));
		}
	}
	munmap(src, x->dst_len);
}

/*
 * One rep: SET `pages` fresh keys, GET them back (checked), delete them. Rep 0
 * is the warm-up and is not recorded.
 */
static void
local_point(struct pc_client *c, struct xfer *x, unsigned int pages, unsigned int reps,
	    struct series *set, struct series *get)
{
	unsigned int r, first, i;

	for (r = 0; r <= reps; r++) {
		struct keyset k;
		uint64_t tset = 0, tget = 0;

		keys_make(&k, pages, "bench-local", x->size, r * pages);
		for (first = 0; first < pages; first += x->batch) {
			unsigned int n = pages - first < x->batch ? pages - first : x->batch;
			uint64_t t0, t;
			int rc;

			xfer_point_iov(x, x->src, n);
			t0 = ticks();
			rc = pc_client_batch_set(c, n, k.ptr + first, x->iov, x->niov, first,
						 x->res);
			t = ticks() - t0;
			if (rc < 0 || (unsigned int)rc != n) {
				die("SET %u pages of %zu B: %d (%s); results[0] %d", n, x->size, rc,
				    rc < 0 ? strerror(-rc) : "partial", x->res[0]);
			}
			series_time(set, r, t, &tset);
		}
		for (first = 0; first < pages; first += x->batch) {
			unsigned int n = pages - first < x->batch ? pages - first : x->batch;
			unsigned char *d = xfer_next_dst(x);
			uint64_t t0, t;
			int rc;

			xfer_point_iov(x, d, n);
			t0 = ticks();
			rc = pc_client_batch_get(c, n, k.ptr + first, x->iov, x->niov, x->res);
			t = ticks() - t0;
			if (rc < 0 || (unsigned int)rc != n) {
				die("GET %u pages of %zu B: %d", n, x->size, rc);
			}
			for (i = 0; i < n; i++) {
				if (memcmp(d + (size_t)i * x->size, x->src + (size_t)i * x->size,
					   x->size) != 0) {
					die("GET %s: bytes differ", k.ptr[first + i]);
				}
			}
			series_time(get, r, t, &tget);
		}
		if (r > 0) {
			series_rep(set, (double)pages * (double)x->size / ticks_to_ns(tset));
			series_rep(get, (double)pages * (double)x->size / ticks_to_ns(tget));
		}
		(void)pc_client_delete(c, pages, k.ptr, NULL);
		keys_free(&k);
	}
}

/* One point of local: SET/GET through the engine and the memcpy baseline (sweep 0: JSON too). */
static void
local_one(struct pc_client *c, size_t size, unsigned int batch, unsigned int pages,
	  unsigned int reps, int sweep)
{
	struct xfer x;
	struct series set = {0}, get = {0}, mc = {0};
	double sg, gg, mg;

	if (pages < batch) {
		pages = batch;
	}
	xfer_init(&x, size, batch);
	for (unsigned int round = 0; round < (sweep ? 1U : DEFAULT_ROUNDS); round++) {
		local_point(c, &x, pages, reps, &set, &get);
		baseline_memcpy(&x, pages, reps, &mc);
	}
	table_row("local.set", "SET (engine)", size, batch, sweep, &set);
	table_row("local.get", "GET (engine)", size, batch, sweep, &get);
	table_row("local.memcpy", "memcpy (baseline)", size, batch, sweep, &mc);
	sg = rate_median(&set);
	gg = rate_median(&get);
	mg = rate_median(&mc);
	printf("%-10s %6s ratio GET/memcpy %.2f, SET/memcpy %.2f (issue 7 target: >= 0.85)\n", "",
	       "", gg / mg, sg / mg);
	if (!sweep) {
		json_num("local.page_size", (double)size);
		json_num("local.batch", batch);
		json_num("local.get_gbps", gg);
		json_num("local.set_gbps", sg);
		json_num("local.memcpy_gbps", mg);
		json_num("local.get_lat_us_avg", mean(get.ns, get.n) / 1000.0);
		json_num("local.get_lat_us_p99", pct(get.ns, get.n, 99.0) / 1000.0);
		json_num("local.set_lat_us_avg", mean(set.ns, set.n) / 1000.0);
		json_num("local.set_lat_us_p99", pct(set.ns, set.n, 99.0) / 1000.0);
		json_num("local.ratio_get_memcpy", gg / mg);
		json_num("local.ratio_set_memcpy", sg / mg);
	}
	series_free(&set);
	series_free(&get);
	series_free(&mc);
	xfer_free(&x);
}

static void
run_local(const char *sock, const struct opts *o)
{
	struct pc_client *c = connect_or_die(sock, "bench-local");

	table_head("local: SET and GET through one engine vs single-threaded memcpy");
	local_one(c, o->page_size, o->batch, o->pages, o->reps, 0);
	if (o->sweep) {
		size_t size;
		unsigned int batch, idx;

		table_head("local sweep");
		for (idx = 0; sweep_point(idx, &size, &batch) == 0; idx++) {
			local_one(c, size, batch,
				  sweep_pages(size, batch, SWEEP_BYTES, SWEEP_MAX_PAGES),
				  SWEEP_REPS, 1);
		}
	}
	pc_client_close(c);
}

/* ---------------------------------------------------------------- remote */

static int
exists_count(struct pc_client *c, struct keyset *k)
{
	unsigned int first;
	int seen = 0;

	for (first = 0; first < k->n; first += EXISTS_BATCH) {
		unsigned int n = k->n - first < EXISTS_BATCH ? k->n - first : EXISTS_BATCH;
		int rc = pc_client_batch_exists(c, n, k->ptr + first, NULL);

		if (rc < 0) {
			return rc;
		}
		seen += rc;
		if ((unsigned int)rc != n) {
			break;
		}
	}
	return seen;
}

static void
store_all(struct pc_client *c, struct xfer *x, struct keyset *k)
{
	unsigned int first;

	xfer_point_iov(x, x->src, x->batch);
	for (first = 0; first < k->n; first += x->batch) {
		unsigned int n = k->n - first < x->batch ? k->n - first : x->batch;
		int rc = pc_client_batch_set(c, n, k->ptr + first, x->iov, x->niov, first, x->res);

		if (rc < 0 || (unsigned int)rc != n) {
			die("SET on A: %d", rc);
		}
	}
}

static void
wait_visible(struct pc_client *b, struct keyset *k)
{
	uint64_t deadline = now_ns() + 60000000000ULL;
	int seen;

	while ((seen = exists_count(b, k)) != (int)k->n) {
		if (now_ns() > deadline) {
			die("EXISTS through B counts %d of %u pages after 60 s", seen, k->n);
		}
		usleep(50000);
	}
}

/* The raw TCP baseline: a server child sends `len` bytes per request. */
static int
read_full(int fd, void *p, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(fd, (char *)p + got, len - got, 0);

		if (n <= 0) {
			return -1;
		}
		got += (size_t)n;
	}
	return 0;
}

static void
tcp_server(int lfd, unsigned int conns, size_t maxlen)
{
	int fds[64];
	struct pollfd pf[64];
	unsigned char *src = buf_alloc(maxlen);
	unsigned int i;

	fill_pattern(src, maxlen, 0xbeef);
	for (i = 0; i < conns; i++) {
		int one = 1;

		fds[i] = accept(lfd, NULL, NULL);
		if (fds[i] < 0) {
			_exit(1);
		}
		setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pf[i].fd = fds[i];
		pf[i].events = POLLIN;
	}
	for (;;) {
		if (poll(pf, conns, -1) < 0) {
			_exit(1);
		}
		for (i = 0; i < conns; i++) {
			uint64_t len;
			size_t off = 0;

			if (!(pf[i].revents & (POLLIN | POLLHUP))) {
				continue;
			}
			if (read_full(fds[i], &len, sizeof(len)) != 0) {
				_exit(0);
			}
			if (len > maxlen) {
				len = maxlen;
			}
			while (off < len) {
				ssize_t n = send(fds[i], src + off, len - off, 0);

				if (n <= 0) {
					_exit(1);
				}
				off += (size_t)n;
			}
		}
	}
}

static void
baseline_tcp(struct xfer *x, unsigned int pages, unsigned int reps, unsigned int conns,
	     struct series *s)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int lfd = socket(AF_INET, SOCK_STREAM, 0), fds[64];
	unsigned int i, r, first;
	size_t per_conn_max = x->size * ((x->batch + conns - 1) / conns);

	if (conns > 64) {
		conns = 64;
	}
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 64) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen) != 0) {
		die("raw TCP baseline: listen: %s", strerror(errno));
	}
	if (fork_peer(g_place.peer_cpu) == 0) {
		tcp_server(lfd, conns, per_conn_max);
		_exit(0);
	}
	close(lfd);
	for (i = 0; i < conns; i++) {
		int one = 1;

		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&a, sizeof(a)) != 0) {
			die("raw TCP baseline: connect: %s", strerror(errno));
		}
		setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	for (r = 0; r <= reps; r++) {
		uint64_t total = 0;

		for (first = 0; first < pages; first += x->batch) {
			unsigned int n = pages - first < x->batch ? pages - first : x->batch;
			unsigned char *d = xfer_next_dst(x);
			size_t want[64], got[64], left = 0;
			struct pollfd pf[64];
			uint64_t t0 = ticks(), t;

			/* Pages go round-robin over the connections, as a batch would. */
			for (i = 0; i < conns; i++) {
				unsigned int np = n / conns + (i < n % conns);

				want[i] = (size_t)np * x->size;
				got[i] = 0;
				left += want[i];
				if (want[i] && send(fds[i], &(uint64_t){want[i]}, 8, 0) != 8) {
					die("raw TCP baseline: send");
				}
				pf[i].fd = fds[i];
				pf[i].events = POLLIN;
			}
			while (left) {
				if (poll(pf, conns, -1) < 0) {
					die("raw TCP baseline: poll");
				}
				for (i = 0; i < conns; i++) {
					size_t base = 0;
					unsigned int j;
					ssize_t m;

					if (!(pf[i].revents & POLLIN) || got[i] == want[i]) {
						continue;
					}
					for (j = 0; j < i; j++) {
						base += want[j];
					}
					m = recv(fds[i], d + base + got[i], want[i] - got[i],
						 MSG_DONTWAIT);
					if (m == 0) {
						die("raw TCP baseline: server closed");
					}
					if (m > 0) {
						got[i] += (size_t)m;
						left -= (size_t)m;
					}
				}
			}
			t = ticks() - t0;
			series_time(s, r, t, &total);
		}
		if (r > 0) {
			series_rep(s, (double)pages * (double)x->size / ticks_to_ns(total));
		}
	}
	for (i = 0; i < conns; i++) {
		close(fds[i]);
	}
	waitpid(g_child, NULL, 0);
	g_child = -1;
}

/* `peercache-ctl --socket sock [--json] stats` into out (NUL-terminated). 0, or -1. */
static int
ctl_stats(const char *sock, int json, char *out, size_t len)
{
	char bin[PATH_MAX], cmd[2 * PATH_MAX];
	size_t n;
	FILE *p;
	char *slash;

	engine_binary(bin, sizeof(bin));
	slash = strrchr(bin, '/');
	if (slash) {
		*slash = 0;
	}
	if (snprintf(cmd, sizeof(cmd), "'%s/peercache-ctl' --socket '%s'%s stats 2>/dev/null", bin,
		     sock, json ? " --json" : "") >= (int)sizeof(cmd)) {
		return -1;
	}
	p = popen(cmd, "r");
	if (p == NULL) {
		return -1;
	}
	n = fread(out, 1, len - 1, p);
	out[n] = 0;
	pclose(p);
	return 0;
}

/* The first "key" of the engine's JSON stats as a number; 0 when it is not there. */
static unsigned long long
ctl_stat(const char *sock, const char *key)
{
	char out[65536], quoted[96];
	const char *at;

	snprintf(quoted, sizeof(quoted), "\"%s\"", key);
	if (ctl_stats(sock, 1, out, sizeof(out)) != 0) {
		return 0;
	}
	at = strstr(out, quoted);
	if (at == NULL || (at = strchr(at, ':')) == NULL) {
		return 0;
	}
	return strtoull(at + 1, NULL, 10);
}

static unsigned int
channels_open(const char *sock)
{
	return (unsigned int)ctl_stat(sock, "channels_open");
}

/*
 * The GET half of a remote point: store pages x (reps + 1) fresh pages on
 * A, wait until B sees them all, then GET each repetition's slice through B
 * (rep 0: warm-up), every page checked and read remotely; A's pages are
 * deleted at the end. Returns B's remote hits over the GETs.
 */
static double
remote_get(struct pc_client *a, struct pc_client *b, struct xfer *x, unsigned int pages,
	   unsigned int reps, struct series *get)
{
	struct keyset all;
	struct pc_client_stats st0, st1;
	unsigned int r, first, i;
	const size_t size = x->size;
	const unsigned int batch = x->batch;
	char prefix[32];

	snprintf(prefix, sizeof(prefix), "bench-remote-b%u", batch);
	keys_make(&all, pages * (reps + 1), prefix, size, 0);
	store_all(a, x, &all);
	wait_visible(b, &all);
	pc_client_stats(b, &st0);
	for (r = 0; r <= reps; r++) {
		uint64_t total = 0;

		for (first = 0; first < pages; first += batch) {
			unsigned int n = pages - first < batch ? pages - first : batch;
			unsigned char *d = xfer_next_dst(x);
			uint64_t t0, t;
			int rc;

			xfer_point_iov(x, d, n);
			t0 = ticks();
			rc = pc_client_batch_get(b, n, all.ptr + (size_t)r * pages + first, x->iov,
						 x->niov, x->res);
			t = ticks() - t0;
			if (rc < 0 || (unsigned int)rc != n) {
				die("remote GET: %d of %u (results[0] %d)", rc, n, x->res[0]);
			}
			for (i = 0; i < n; i++) {
				if (memcmp(d + (size_t)i * size, x->src + (size_t)i * size, size) !=
				    0) {
					die("remote GET %s: bytes differ",
					    all.ptr[(size_t)r * pages + first + i]);
				}
			}
			series_time(get, r, t, &total);
		}
		if (r > 0) {
			series_rep(get, (double)pages * (double)size / ticks_to_ns(total));
		}
	}
	pc_client_stats(b, &st1);
	/* Free A's segment for the next point (pages are reusable at once: no quarantine). */
	for (first = 0; first < all.n; first += PC_CLIENT_BATCH_MAX) {
		unsigned int n =
			all.n - first < PC_CLIENT_BATCH_MAX ? all.n - first : PC_CLIENT_BATCH_MAX;

		(void)pc_client_delete(a, n, all.ptr + first, NULL);
	}
	keys_free(&all);
	return (double)(st1.remote_hits - st0.remote_hits);
}

/*
 * One point of remote: remote_get, then the raw TCP baseline over as many
 * connections as B has data channels open.
 */
static void
remote_point(struct pc_client *a, struct pc_client *b, size_t size, unsigned int batch,
	     unsigned int pages, unsigned int reps, int sweep)
{
	struct xfer x;
	struct series get = {0}, raw = {0};
	unsigned int conns = 0, rounds = sweep ? 1U : DEFAULT_ROUNDS;
	double hits = 0;

	if (pages < batch) {
		pages = batch;
	}
	xfer_init(&x, size, batch);
	for (unsigned int round = 0; round < rounds; round++) {
		hits += remote_get(a, b, &x, pages, reps, &get);
		if (conns == 0) {
			conns = channels_open(g_eng[1].sock);
			conns = conns != 0 ? conns : 1;
		}
		baseline_tcp(&x, pages, reps, conns, &raw);
	}
	table_row("remote.get", "remote GET (engine B <- A)", size, batch, sweep, &get);
	table_row("remote.raw_tcp", "raw TCP (baseline)", size, batch, sweep, &raw);
	printf("%-10s %6s ratio GET/raw TCP %.2f (issue 7 target: >= 0.80); %.0f of %u pages "
	       "read remotely, %u connection(s)\n",
	       "", "", rate_median(&get) / rate_median(&raw), hits, pages * (reps + 1) * rounds,
	       conns);
	if (!sweep) {
		json_num("remote.page_size", (double)size);
		json_num("remote.batch", batch);
		json_num("remote.get_gbps", rate_median(&get));
		json_num("remote.get_lat_us_avg", mean(get.ns, get.n) / 1000.0);
		json_num("remote.get_lat_us_p99", pct(get.ns, get.n, 99.0) / 1000.0);
		json_num("remote.raw_tcp_gbps", rate_median(&raw));
		json_num("remote.raw_tcp_lat_us_avg", mean(raw.ns, raw.n) / 1000.0);
		json_num("remote.raw_tcp_lat_us_p99", pct(raw.ns, raw.n, 99.0) / 1000.0);
		json_num("remote.raw_tcp_connections", conns);
		json_num("remote.ratio_get_raw_tcp", rate_median(&get) / rate_median(&raw));
		json_num("remote.remote_hits", hits);
	}
	xfer_free(&x);
	series_free(&get);
	series_free(&raw);
}

/* ---------------------------------------------------------------- remote over rdma */

/*
 * The raw verbs READ baseline: a serving child (the baselines' peer CPU)
 * and this process, rdma.c's two halves joined by a socketpair. 0, or
 * -errno with why (either side's failure).
 */
static int
baseline_rdma(const struct rdma_where *w, size_t size, unsigned int batch, unsigned int pages,
	      unsigned int reps, struct series *s, char *why, size_t len)
{
	int sv[2], rc;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		die("raw verbs baseline: socketpair: %s", strerror(errno));
	}
	if (fork_peer(g_place.peer_cpu) == 0) {
		char cwhy[256];

		close(sv[0]);
		/* Its failure reaches the reader through the socket, which prints it. */
		_exit(rdma_serve(sv[1], w, rdma_remote_len(size, pages), cwhy, sizeof(cwhy)) == 0
			      ? 0
			      : 1);
	}
	close(sv[1]);
	rc = rdma_read_bench(sv[0], w, size, batch, pages, reps, s, why, len);
	/* Closing the socket ends the server's wait, if the reader failed before "done". */
	close(sv[0]);
	waitpid(g_child, NULL, 0);
	g_child = -1;
	return rc;
}

/* The first line of the log at path holding needle, newline cut, into out (empty: none). */
static void
log_line(const char *path, const char *needle, char *out, size_t len)
{
	FILE *f = fopen(path, "r");
	char line[1024];

	out[0] = 0;
	if (f == NULL) {
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, needle) != NULL) {
			line[strcspn(line, "\n")] = 0;
			snprintf(out, len, "%s", line);
			break;
		}
	}
	fclose(f);
}

/*
 * What engine e reads over: the name in its stats' "transport (NAME)"
 * title, else in its data plane's "reading over NAME" start-up line, else
 * "unknown".
 */
static void
engine_transport(const struct engine *e, char *out, size_t len)
{
	static char text[65536];
	char line[1024];
	const char *at;

	if (ctl_stats(e->sock, 0, text, sizeof(text)) == 0 &&
	    (at = strstr(text, "transport (")) != NULL) {
		at += strlen("transport (");
		snprintf(out, len, "%.*s", (int)strcspn(at, ")\n"), at);
		return;
	}
	log_line(e->log, "reading over ", line, sizeof(line));
	at = strstr(line, "reading over ");
	if (at != NULL) {
		at += strlen("reading over ");
		snprintf(out, len, "%.*s", (int)strcspn(at, " ,\n"), at);
		return;
	}
	snprintf(out, len, "unknown");
}

/*
 * One point of remote over rdma: remote_get through engines started with
 * protocol rdma, then the raw verbs READ baseline. B's transport counters
 * must show the GETs' READs (else it read some other way). 0, or -errno
 * with why.
 */
static int
rdma_point(struct pc_client *a, struct pc_client *b, const struct rdma_where *w, size_t size,
	   unsigned int batch, unsigned int pages, unsigned int reps, int sweep, char *why,
	   size_t len)
{
	struct xfer x;
	struct series get = {0}, raw = {0};
	unsigned long long reads0, reads1;
	double hits, gg, rg;
	int rc;

	if (pages < batch) {
		pages = batch;
	}
	xfer_init(&x, size, batch);
	reads0 = ctl_stat(g_eng[1].sock, "reads_ok");
	hits = remote_get(a, b, &x, pages, reps, &get);
	reads1 = ctl_stat(g_eng[1].sock, "reads_ok");
	rc = baseline_rdma(w, size, batch, pages, reps, &raw, why, len);
	if (rc == 0 && reads1 <= reads0) {
		snprintf(why, len, "engine B's transport counted no READ for %.0f remote hits",
			 hits);
		rc = -EPROTO;
	}
	if (rc == 0) {
		table_row("remote.rdma_get", "remote GET over rdma (engine B <- A)", size, batch,
			  sweep, &get);
		table_row("remote.raw_verbs_read", "raw verbs READ (baseline)", size, batch, sweep,
			  &raw);
		gg = rate_median(&get);
		rg = rate_median(&raw);
		printf("%-10s %6s ratio GET over rdma/raw verbs READ %.2f; %.0f of %u pages read "
		       "remotely, %llu READs on B, %u QP(s) on B, 1 QP raw\n",
		       "", "", gg / rg, hits, pages * (reps + 1), reads1 - reads0,
		       channels_open(g_eng[1].sock));
		if (!sweep) {
			json_num("remote.rdma_get_gbps", gg);
			json_num("remote.rdma_get_lat_us_avg", mean(get.ns, get.n) / 1000.0);
			json_num("remote.rdma_get_lat_us_p99", pct(get.ns, get.n, 99.0) / 1000.0);
			json_num("remote.raw_verbs_read_gbps", rg);
			json_num("remote.raw_verbs_read_lat_us_avg", mean(raw.ns, raw.n) / 1000.0);
			json_num("remote.raw_verbs_read_lat_us_p99",
				 pct(raw.ns, raw.n, 99.0) / 1000.0);
			json_num("remote.ratio_rdma_raw_verbs", gg / rg);
			json_num("remote.rdma_remote_hits", hits);
			json_num("remote.rdma_reads_ok", (double)(reads1 - reads0));
		}
	}
	xfer_free(&x);
	series_free(&get);
	series_free(&raw);
	return rc;
}

/* An RDMA line: printed, and "rdma": {what: text} in the JSON. */
static void
rdma_note(const char *what, const char *text)
{
	printf("\nrdma: %s: %s\n", what, text);
	json_note("rdma", what, text);
}

/*
 * remote over protocol rdma, when a device exists: both engines again, with
 * protocol rdma on the device, port and GID the raw baseline uses; the
 * default point and (with --sweep) the sweep. No device: one line, and
 * "rdma": {"skipped": why}. Engines that fell back to tcp are reported, not
 * measured.
 */
static void
run_remote_rdma(const struct opts *o)
{
	struct rdma_where w;
	struct pc_client *a, *b;
	char why[1024], ta[32], tb[32], line[512];
	char dev[128], gid[32];
	char *sets[] = {(char *)"protocol=rdma", dev, (char *)"ib_port=1", gid, NULL};
	int port, rc;

	if (rdma_where_pick(o->rdma_device, 1, o->gid_index, &w, why, sizeof(why)) != 0) {
		rdma_note("skipped", why);
		return;
	}
	snprintf(dev, sizeof(dev), "device_name=%s", w.dev);
	snprintf(gid, sizeof(gid), "gid_index=%d", w.gid_index);
	stop_engines();
	port = free_port();
	start_engine(0, "127.0.0.1", port, 2048, sets);
	start_engine(1, "127.0.0.2", port, 1024, sets);
	engine_transport(&g_eng[0], ta, sizeof(ta));
	engine_transport(&g_eng[1], tb, sizeof(tb));
	if (strcmp(ta, "rdma") != 0 || strcmp(tb, "rdma") != 0) {
		log_line(g_eng[strcmp(tb, "rdma") != 0 ? 1 : 0].log, "protocol rdma:", line,
			 sizeof(line));
		snprintf(why, sizeof(why),
			 "engines read over %s (A) and %s (B), not rdma, on %s%s%s", ta, tb, w.text,
			 line[0] ? ": " : "", line);
		rdma_note("fell_back", why);
		stop_engines();
		return;
	}
	json_note("rdma", "device", w.text);
	printf("\nrdma: %s; both engines read over rdma\n", w.text);
	a = connect_or_die(g_eng[0].sock, "bench-remote-rdma");
	b = connect_or_die(g_eng[1].sock, "bench-remote-rdma");
	table_head("remote over rdma: GET through B of pages stored on A (protocol rdma) vs raw "
		   "verbs READ (one RC QP, batch READs in flight)");
	rc = rdma_point(a, b, &w, o->page_size, o->batch, o->pages, o->reps, 0, why, sizeof(why));
	if (rc == 0 && o->sweep) {
		size_t size;
		unsigned int batch, idx;

		table_head("remote over rdma sweep");
		for (idx = 0; rc == 0 && sweep_point(idx, &size, &batch) == 0; idx++) {
			rc = rdma_point(
				a, b, &w, size, batch,
				sweep_pages(size, batch, REMOTE_SWEEP_BYTES, REMOTE_SWEEP_PAGES),
				REMOTE_SWEEP_REPS, 1, why, sizeof(why));
		}
	}
	if (rc != 0) {
		rdma_note("failed", why);
	}
	pc_client_close(a);
	pc_client_close(b);
	stop_engines();
}

/* EXISTS of EXISTS_BATCH 4 KiB pages stored on A: on A, and through B. */
static void
exists_bench(struct pc_client *a, struct pc_client *b, const struct opts *o)
{
	struct keyset lk;
	struct xfer x;
	struct series exl = {0}, exr = {0};
	unsigned int iters = 200, i, r;

	xfer_init(&x, 4096, EXISTS_BATCH);
	keys_make(&lk, EXISTS_BATCH, "bench-exists", 0, 0);
	xfer_point_iov(&x, x.src, EXISTS_BATCH);
	if (pc_client_batch_set(a, lk.n, lk.ptr, x.iov, x.niov, 0, x.res) != (int)lk.n) {
		die("SET for EXISTS failed");
	}
	wait_visible(b, &lk);
	for (r = 0; r <= o->reps; r++) {
		uint64_t tl = 0, tx = 0;

		for (i = 0; i < iters; i++) {
			uint64_t t0 = ticks(), t;
			int rc = pc_client_batch_exists(a, lk.n, lk.ptr, NULL);

			t = ticks() - t0;
			if (rc != (int)lk.n) {
				die("local EXISTS counted %d of %u", rc, lk.n);
			}
			series_time(&exl, r, t, &tl);
			t0 = ticks();
			rc = pc_client_batch_exists(b, lk.n, lk.ptr, NULL);
			t = ticks() - t0;
			if (rc != (int)lk.n) {
				die("cross-node EXISTS counted %d of %u", rc, lk.n);
			}
			series_time(&exr, r, t, &tx);
		}
		if (r > 0) {
			series_rep(&exl, (double)iters * lk.n / ticks_to_ns(tl) * 1e9);
			series_rep(&exr, (double)iters * lk.n / ticks_to_ns(tx) * 1e9);
		}
	}
	printf("\n== exists: EXISTS of %u-key batches (keys/s)\n", EXISTS_BATCH);
	printf("%-28s %14s %14s %12s\n", "", "keys/s", "avg lat (us)", "p99 (us)");
	printf("%-28s %14.0f %14.2f %12.2f\n", "local (on A)", rate_median(&exl),
	       mean(exl.ns, exl.n) / 1000.0, pct(exl.ns, exl.n, 99.0) / 1000.0);
	printf("%-28s %14.0f %14.2f %12.2f\n", "cross-node (through B)", rate_median(&exr),
	       mean(exr.ns, exr.n) / 1000.0, pct(exr.ns, exr.n, 99.0) / 1000.0);
	json_num("exists.keys_per_s", rate_median(&exl));
	json_num("exists.cross_keys_per_s", rate_median(&exr));
	json_num("exists.lat_us_avg", mean(exl.ns, exl.n) / 1000.0);
	json_num("exists.lat_us_p99", pct(exl.ns, exl.n, 99.0) / 1000.0);
	json_num("exists.cross_lat_us_p99", pct(exr.ns, exr.n, 99.0) / 1000.0);
	(void)pc_client_delete(a, lk.n, lk.ptr, NULL);
	keys_free(&lk);
	xfer_free(&x);
	series_free(&exl);
	series_free(&exr);
}

static void
run_remote_and_exists(const struct opts *o, int do_remote, int do_exists)
{
	struct pc_client *a, *b;
	int port = free_port();

	start_engine(0, "127.0.0.1", port, 2048, NULL);
	start_engine(1, "127.0.0.2", port, 1024, NULL);
	a = connect_or_die(g_eng[0].sock, "bench-remote");
	b = connect_or_die(g_eng[1].sock, "bench-remote");
	if (do_remote) {
		table_head("remote: GET through B of pages stored on A (TCP) vs raw TCP sockets");
		remote_point(a, b, o->page_size, o->batch, o->pages, o->reps, 0);
	}
	if (do_exists) {
		exists_bench(a, b, o);
	}
	if (do_remote && o->sweep) {
		size_t size;
		unsigned int batch, idx;

		table_head("remote sweep");
		for (idx = 0; sweep_point(idx, &size, &batch) == 0; idx++) {
			remote_point(
				a, b, size, batch,
				sweep_pages(size, batch, REMOTE_SWEEP_BYTES, REMOTE_SWEEP_PAGES),
				REMOTE_SWEEP_REPS, 1);
		}
	}
	pc_client_close(a);
	pc_client_close(b);
	if (do_remote) {
		run_remote_rdma(o);
	}
}

/* ---------------------------------------------------------------- rss */

static void
run_rss(const char *sock, pid_t pid)
{
	struct pc_client *c[64];
	long seg = 0, rss;
	unsigned int i;

	for (i = 0; i < 64; i++) {
		c[i] = connect_or_die(sock, "bench-rss");
		(void)pc_client_ping(c[i]);
	}
	rss = rss_kib(pid, &seg);
	if (rss >= 0) {
		printf("\n== engine RSS with 64 sessions open: VmRSS %.1f MiB, segment pages "
		       "touched "
		       "%.1f MiB, overhead %.1f MiB\n",
		       rss / 1024.0, seg / 1024.0, (rss - seg) / 1024.0);
		json_num("engine.rss_mib", rss / 1024.0);
		json_num("engine.segment_touched_mib", seg / 1024.0);
		json_num("engine.rss_overhead_mib", (rss - seg) / 1024.0);
	}
	for (i = 0; i < 64; i++) {
		pc_client_close(c[i]);
	}
}

/* ---------------------------------------------------------------- machine */

static void
machine(void)
{
	char model[256] = "unknown", line[512];
	struct utsname u;
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char *colon = strchr(line, ':');

			if (strncmp(line, "model name", 10) == 0 && colon) {
				snprintf(model, sizeof(model), "%s", colon + 2);
				model[strcspn(model, "\n")] = 0;
				break;
			}
		}
		fclose(f);
	}
	uname(&u);
	printf("machine: %s, %ld cores online, TSC %.3f GHz, kernel %s %s, hugepages free %ld\n",
	       model, sysconf(_SC_NPROCESSORS_ONLN), g_tsc_ghz, u.sysname, u.release,
	       meminfo_kib("HugePages_Free"));
	json_str("machine.cpu", model);
	json_num("machine.cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
	json_num("machine.tsc_ghz", g_tsc_ghz);
	json_str("machine.kernel", u.release);
}

/* ---------------------------------------------------------------- placement */

/* Add the CPUs of one EAL lcore list ("N", "N-M", or such items joined by ',') to set. */
static int
lcores_parse(const char *list, cpu_set_t *set)
{
	const char *p = list;

	while (*p) {
		char *end;
		unsigned long lo = strtoul(p, &end, 10), hi = lo, c;

		if (end == p) {
			return -EINVAL;
		}
		p = end;
		if (*p == '-') {
			hi = strtoul(p + 1, &end, 10);
			if (end == p + 1) {
				return -EINVAL;
			}
			p = end;
		}
		if (hi < lo || hi >= CPU_SETSIZE || (*p != 0 && *p != ',')) {
			return -EINVAL;
		}
		for (c = lo; c <= hi; c++) {
			CPU_SET((int)c, set);
		}
		if (*p == ',') {
			p++;
		}
	}
	return 0;
}

static void
fmt_pair(char *out, size_t len, int a, int b)
{
	snprintf(out, len, b == a + 1 ? "%d-%d" : "%d,%d", a, b);
}

/*
 * Where the engines, the client and the baselines' second process run. With
 * PLACE_CPUS usable CPUs or more each gets its own: client on the first,
 * engine A on the next two, engine B on the two after, the baselines' peer
 * (ring and raw TCP baselines, redis-server) on the sixth; the ring baselines'
 * two processes sit on the client's and the peer's CPUs as the client and an
 * engine worker do. With fewer, as before: both engines on 0-1, nothing else
 * pinned but the ring baselines (0 and 1). --engine-lcores "A" (both engines)
 * or "A,B" replaces the engines' lists; client and peer then take the first
 * CPUs the engines leave free.
 */
static void
placement_init(const char *engine_lcores)
{
	int cpus[CPU_SETSIZE], n = 0, i, big;
	char peer[32] = "not pinned", client[32] = "not pinned";
	cpu_set_t used;

	for (i = 0; i < CPU_SETSIZE; i++) {
		if (CPU_ISSET(i, &g_start_cpus)) {
			cpus[n++] = i;
		}
	}
	big = n >= PLACE_CPUS;
	g_place.client_cpu = -1;
	g_place.peer_cpu = -1;
	g_place.ring_cpu[0] = 0;
	g_place.ring_cpu[1] = 1;
	if (engine_lcores != NULL) {
		const char *comma = strchr(engine_lcores, ',');
		size_t la = comma ? (size_t)(comma - engine_lcores) : strlen(engine_lcores);

		if (la == 0 || la >= sizeof(g_place.eng[0]) ||
		    strlen(engine_lcores) >= sizeof(g_place.eng[0])) {
			die("--engine-lcores: expected A or A,B (e.g. 0-1 or 1-2,3-4), got \"%s\"",
			    engine_lcores);
		}
		snprintf(g_place.eng[0], sizeof(g_place.eng[0]), "%.*s", (int)la, engine_lcores);
		snprintf(g_place.eng[1], sizeof(g_place.eng[1]), "%s",
			 comma ? comma + 1 : g_place.eng[0]);
		if (strchr(g_place.eng[1], ',') != NULL) {
			die("--engine-lcores: expected A or A,B (e.g. 0-1 or 1-2,3-4), got \"%s\"",
			    engine_lcores);
		}
	} else if (big) {
		fmt_pair(g_place.eng[0], sizeof(g_place.eng[0]), cpus[1], cpus[2]);
		fmt_pair(g_place.eng[1], sizeof(g_place.eng[1]), cpus[3], cpus[4]);
	} else {
		snprintf(g_place.eng[0], sizeof(g_place.eng[0]), "0-1");
		snprintf(g_place.eng[1], sizeof(g_place.eng[1]), "0-1");
	}
	CPU_ZERO(&used);
	if (lcores_parse(g_place.eng[0], &used) != 0 || lcores_parse(g_place.eng[1], &used) != 0) {
		die("--engine-lcores: expected A or A,B (e.g. 0-1 or 1-2,3-4), got \"%s\"",
		    engine_lcores ? engine_lcores : "");
	}
	for (i = 0; big && i < n; i++) {
		if (CPU_ISSET(cpus[i], &used)) {
			continue;
		}
		if (g_place.client_cpu < 0) {
			g_place.client_cpu = cpus[i];
		} else if (g_place.peer_cpu < 0) {
			g_place.peer_cpu = cpus[i];
		}
	}
	if (g_place.client_cpu >= 0) {
		g_place.ring_cpu[0] = g_place.client_cpu;
		g_place.ring_cpu[1] = g_place.peer_cpu;
		snprintf(client, sizeof(client), "cpu %d", g_place.client_cpu);
	}
	if (g_place.peer_cpu >= 0) {
		snprintf(peer, sizeof(peer), "cpu %d", g_place.peer_cpu);
	}
	snprintf(g_place.text, sizeof(g_place.text),
		 "engine A lcores %s, engine B lcores %s, client %s, baselines' peer and "
		 "redis-server %s, ring baselines on cpus %d and %d (%s, %d usable CPUs)",
		 g_place.eng[0], g_place.eng[1], client, peer, g_place.ring_cpu[0],
		 g_place.ring_cpu[1], engine_lcores ? "--engine-lcores" : "auto", n);
	pin_client();
}

/* ---------------------------------------------------------------- main */

static void
usage(void)
{
	fputs("usage: peercache-bench ring|local|remote|exists|redis|all [--json FILE]\n"
	      "         [--markdown FILE] [--plot DIR] [--socket PATH] [--engine-lcores A[,B]]\n"
	      "         [--pages N] [--page-size B] [--batch N] [--reps N] [--sweep | --no-sweep]\n"
	      "         [--reserve-hugepages] [--rdma-device NAME] [--gid-index N]\n"
	      "  all includes the sweep unless --no-sweep; --plot needs the sweep\n"
	      "  remote also runs over RDMA when a device has port 1 ACTIVE (--rdma-device:\n"
	      "  that one; --gid-index: -1 for no GRH, else 0..255; default: RoCE v2)\n",
	      stderr);
	exit(2);
}

static unsigned long long
num_arg(const char *name, const char *v, unsigned long long min, unsigned long long max)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(v, &end, 0);
	if (errno || end == v || *end || n < min || n > max) {
		die("%s: expected %llu..%llu, got \"%s\"", name, min, max, v);
	}
	return n;
}

/* Fail now, not after minutes of measuring, if FILE cannot be written. */
static void
check_writable(const char *path)
{
	char *dup = strdup(path), *slash, tmp[PATH_MAX];
	FILE *f;

	if (dup == NULL) {
		die("out of memory");
	}
	slash = strrchr(dup, '/');
	if (slash && slash != dup) {
		*slash = 0;
		(void)mkdir(dup, 0755);
	}
	free(dup);
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		die("%s: path too long", path);
	}
	f = fopen(tmp, "w");
	if (f == NULL) {
		die("%s: %s", tmp, strerror(errno));
	}
	fclose(f);
	unlink(tmp);
}

int
main(int argc, char **argv)
{
	struct opts o = {.pages = 256,
			 .page_size = 1 << 20,
			 .batch = 32,
			 .reps = 5,
			 .gid_index = RDMA_GID_AUTO};
	const char *cmd, *sock;
	int i, ring, local, remote, exists, redis, all, no_sweep = 0;
	char redis_why[256] = "";
	uint64_t t_start = now_ns();
	double secs;

	if (argc < 2) {
		usage();
	}
	/* Progress shows as it happens under make, and in order with errors on stderr. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	cmd = argv[1];
	for (i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--sweep") == 0) {
			o.sweep = 1;
			continue;
		}
		if (strcmp(a, "--no-sweep") == 0) {
			no_sweep = 1;
			continue;
		}
		if (strcmp(a, "--reserve-hugepages") == 0) {
			o.reserve_huge = 1;
			continue;
		}
		if (v == NULL) {
			usage();
		}
		i++;
		if (strcmp(a, "--json") == 0) {
			o.json = v;
		} else if (strcmp(a, "--markdown") == 0) {
			o.markdown = v;
		} else if (strcmp(a, "--plot") == 0) {
			o.plot = v;
		} else if (strcmp(a, "--socket") == 0) {
			o.socket = v;
		} else if (strcmp(a, "--engine-lcores") == 0) {
			o.engine_lcores = v;
		} else if (strcmp(a, "--pages") == 0) {
			o.pages = (unsigned int)num_arg(a, v, 1, 1 << 20);
		} else if (strcmp(a, "--page-size") == 0) {
			o.page_size = (size_t)num_arg(a, v, 64, 64ULL << 20);
		} else if (strcmp(a, "--batch") == 0) {
			o.batch = (unsigned int)num_arg(a, v, 1, PC_CLIENT_BATCH_MAX);
		} else if (strcmp(a, "--reps") == 0) {
			o.reps = (unsigned int)num_arg(a, v, 1, 60);
		} else if (strcmp(a, "--rdma-device") == 0) {
			o.rdma_device = v;
		} else if (strcmp(a, "--gid-index") == 0) {
			o.gid_index = strcmp(v, "-1") == 0 ? -1 : (int)num_arg(a, v, 0, 255);
		} else {
			usage();
		}
	}
	all = strcmp(cmd, "all") == 0;
	ring = all || strcmp(cmd, "ring") == 0;
	local = all || strcmp(cmd, "local") == 0;
	remote = all || strcmp(cmd, "remote") == 0;
	exists = all || strcmp(cmd, "exists") == 0;
	redis = all || strcmp(cmd, "redis") == 0;
	if (!ring && !local && !remote && !exists && !redis) {
		usage();
	}
	if (all && !no_sweep) {
		o.sweep = 1;
	}
	if (no_sweep) {
		o.sweep = 0;
	}
	if (o.plot && !o.sweep) {
		die("--plot draws the sweep: add --sweep (all has it unless --no-sweep)");
	}
	if (o.plot && !local && !remote && !redis) {
		die("--plot: %s has no sweep (local, remote, redis and all have)", cmd);
	}
	if (redis) {
		redis_check(redis_why, sizeof(redis_why));
		if (redis_why[0] && !all) {
			die("redis: %s", redis_why);
		}
	}
	if (o.json) {
		check_writable(o.json);
	}
	if (o.markdown) {
		check_writable(o.markdown);
	}
	if (sched_getaffinity(0, sizeof(g_start_cpus), &g_start_cpus) != 0) {
		die("sched_getaffinity: %s", strerror(errno));
	}
	atexit(stop_engines);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	calibrate_tsc();
	machine();
	placement_init(o.engine_lcores);
	printf("placement: %s\n", g_place.text);
	if (o.reserve_huge && o.socket == NULL) {
		/* Engine A (2 GiB) and B (1 GiB), each with EAL's 256 MiB: the most at once. */
		huge_reserve(2048 + 256 + 1024 + 256);
	}
	json_str("machine.placement", g_place.text);

	sock = o.socket;
	if ((ring || local) && sock == NULL) {
		start_engine(0, "127.0.0.1", free_port(), 2048, NULL);
		sock = g_eng[0].sock;
	}
	if (sock && (ring || local)) {
		printf("engine: %s (%s)\n", sock,
		       o.socket ? "given" : (g_huge ? "started, hugepages" : "started, --no-huge"));
	}
	if (ring) {
		run_ring(sock);
	}
	if (local) {
		run_local(sock, &o);
	}
	if (all && g_neng > 0) {
		run_rss(sock, g_eng[0].pid);
	}
	if (remote || exists) {
		if (o.socket) {
			fputs("note: remote and exists start their own two engines; --socket is "
			      "not used for them\n",
			      stdout);
		}
		stop_engines();
		run_remote_and_exists(&o, remote, exists);
	}
	stop_engines();
	if (redis) {
		if (redis_why[0]) {
			printf("\nredis: skipped (%s)\n", redis_why);
		} else {
			run_redis(&o);
		}
	}
	json_num("machine.hugepages", g_huge);
	if (all) {
		report_targets();
	}
	secs = (double)(now_ns() - t_start) / 1e9;
	json_num("run.seconds", secs);
	if (o.json) {
		if (report_json(o.json) != 0) {
			die("cannot write %s", o.json);
		}
		printf("wrote %s\n", o.json);
	}
	if (o.markdown) {
		char title[128];

		snprintf(title, sizeof(title), "peercache-bench %s", cmd);
		if (report_markdown(o.markdown, title) != 0) {
			die("cannot write %s", o.markdown);
		}
		printf("wrote %s\n", o.markdown);
	}
	if (o.plot) {
		int rc = report_plot(o.plot, o.batch);

		if (rc == -ENOENT) {
			fflush(stdout);
			fprintf(stderr,
				"peercache-bench: gnuplot not found: no PNGs drawn; the data "
				"(.dat) "
				"and the script (plots.gp) are in %s (install gnuplot with "
				"scripts/install-deps.sh --bench, then run gnuplot plots.gp "
				"there)\n",
				o.plot);
		} else if (rc != 0) {
			die("--plot %s: %s", o.plot, strerror(-rc));
		}
	}
	printf("total time: %.1f s\n", (double)(now_ns() - t_start) / 1e9);
	return 0;
}
