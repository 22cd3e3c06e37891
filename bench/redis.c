/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * peercache-bench redis: the same pages as local and remote, stored in and
 * fetched from a real redis-server on loopback TCP through hiredis, the
 * remote backend many KV-cache deployments use today.
 *
 * The server is started here (redis-server from $PATH, 127.0.0.1, a free
 * port, no persistence, protected mode, its own mkdtemp directory) and stopped
 * with SIGTERM at the end, on error and on SIGINT/SIGTERM too. A batch is one
 * pipeline: n SETs (or GETs) appended with redisAppendCommandArgv, then n
 * redisGetReply; the time is from the first append to the last reply. The
 * replies are checked (every GET's bytes against what was set) and freed
 * after the clock stops, so redis is not charged for copying a page out of
 * hiredis's reply into the caller's buffer, which the engine's GET includes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "bench.h"

#define REDIS_KEY_LEN      64
#define REDIS_READY_NS     20000000000ULL /* redis-server must answer PING within this */
#define REDIS_STOP_NS      10000000000ULL /* then SIGKILL */
#define REDIS_IO_TIMEOUT_S 60             /* any one reply */
/*
 * redis-server's jemalloc keeps the pages it frees instead of handing them
 * back to the kernel within the second: otherwise every repetition's values
 * land on fresh pages, and on a VM, where a page fault costs microseconds,
 * redis ran 4-8x slower (1 MiB SET 0.36 vs 2.9 GB/s on the 2-vCPU VM). A
 * long-running server under steady churn reuses its memory; this choice
 * favours redis. MALLOC_CONF set by the caller wins.
 */
#define REDIS_MALLOC_CONF "dirty_decay_ms:-1,muzzy_decay_ms:-1"

struct redis_proc g_redis = {.pid = -1};

void
redis_check(char *why, size_t len)
{
	char bin[PATH_MAX];

	why[0] = 0;
	if (find_in_path("redis-server", bin, sizeof(bin)) != 0) {
		snprintf(why, len,
			 "redis-server is not installed; scripts/install-deps.sh --bench "
			 "installs it");
	}
}

void
redis_stop(void)
{
	if (g_redis.pid > 0) {
		uint64_t deadline = now_ns() + REDIS_STOP_NS;
		int st = 0;

		kill(g_redis.pid, SIGTERM);
		while (waitpid(g_redis.pid, &st, WNOHANG) == 0) {
			if (now_ns() > deadline) {
				fprintf(stderr,
					"peercache-bench: redis-server ignored SIGTERM; SIGKILL\n");
				kill(g_redis.pid, SIGKILL);
				waitpid(g_redis.pid, &st, 0);
				break;
			}
			usleep(10000);
		}
		g_redis.pid = -1;
	}
	if (g_redis.dir[0]) {
		char cmd[PATH_MAX + 16];

		unlink(g_redis.log);
		if (rmdir(g_redis.dir) != 0) {
			/* Something more than the log (a dump the server should not write). */
			snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_redis.dir);
			if (system(cmd) != 0) {
				fprintf(stderr, "peercache-bench: could not remove %s\n",
					g_redis.dir);
			}
		}
		g_redis.dir[0] = 0;
	}
}

static void
redis_dump_log(void)
{
	char cmd[PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "tail -n 20 '%s' >&2", g_redis.log);
	if (system(cmd) != 0) {
		fprintf(stderr, "(no log at %s)\n", g_redis.log);
	}
}

/* A connection whose every reply has a deadline; NULL (and *err set) if none yet. */
static redisContext *
redis_connect(int port, char *err, size_t len)
{
	struct timeval ctv = {.tv_sec = 0, .tv_usec = 500000};
	struct timeval iotv = {.tv_sec = REDIS_IO_TIMEOUT_S, .tv_usec = 0};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, ctv);

	if (c == NULL || c->err) {
		snprintf(err, len, "%s", c ? c->errstr : "out of memory");
		redisFree(c);
		return NULL;
	}
	if (redisSetTimeout(c, iotv) != REDIS_OK) {
		snprintf(err, len, "cannot set the socket timeout: %s", c->errstr);
		redisFree(c);
		return NULL;
	}
	return c;
}

/* Start redis-server with maxmemory bytes and wait for PING (REDIS_READY_NS). */
static redisContext *
redis_start(unsigned long long maxmemory)
{
	char bin[PATH_MAX], port_s[16], maxmem_s[32], err[256] = "";
	const char *argv[32];
	int argc = 0, port = free_port();
	uint64_t deadline;

	if (find_in_path("redis-server", bin, sizeof(bin)) != 0) {
		die("redis-server is not installed; scripts/install-deps.sh --bench installs it");
	}
	snprintf(g_redis.dir, sizeof(g_redis.dir), "/tmp/peercache-bench-redis.XXXXXX");
	if (mkdtemp(g_redis.dir) == NULL) {
		g_redis.dir[0] = 0;
		die("mkdtemp: %s", strerror(errno));
	}
	snprintf(g_redis.log, sizeof(g_redis.log), "%s/redis.log", g_redis.dir);
	snprintf(port_s, sizeof(port_s), "%d", port);
	snprintf(maxmem_s, sizeof(maxmem_s), "%llu", maxmemory);
	argv[argc++] = bin;
	argv[argc++] = "--port";
	argv[argc++] = port_s;
	argv[argc++] = "--bind";
	argv[argc++] = "127.0.0.1";
	argv[argc++] = "--protected-mode";
	argv[argc++] = "yes";
	argv[argc++] = "--save";
	argv[argc++] = "";
	argv[argc++] = "--appendonly";
	argv[argc++] = "no";
	argv[argc++] = "--dir";
	argv[argc++] = g_redis.dir;
	argv[argc++] = "--daemonize";
	argv[argc++] = "no";
	argv[argc++] = "--logfile";
	argv[argc++] = "";
	/* A run that outgrows this fails with redis's OOM error instead of losing pages. */
	argv[argc++] = "--maxmemory";
	argv[argc++] = maxmem_s;
	argv[argc++] = "--maxmemory-policy";
	argv[argc++] = "noeviction";
	argv[argc] = NULL;

	g_redis.pid = fork();
	if (g_redis.pid < 0) {
		die("fork: %s", strerror(errno));
	}
	if (g_redis.pid == 0) {
		int fd = open(g_redis.log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		pin(g_place.peer_cpu);
		if (getenv("MALLOC_CONF") == NULL) {
			setenv("MALLOC_CONF", REDIS_MALLOC_CONF, 1);
		}
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	deadline = now_ns() + REDIS_READY_NS;
	for (;;) {
		redisContext *c = redis_connect(port, err, sizeof(err));
		int st;

		if (c != NULL) {
			redisReply *r = redisCommand(c, "PING");
			int pong = r != NULL && r->type == REDIS_REPLY_STATUS &&
				   strcmp(r->str, "PONG") == 0;

			if (r != NULL) {
				freeReplyObject(r);
			}
			if (pong) {
				const char *mc = getenv("MALLOC_CONF");

				printf("redis-server: %s on 127.0.0.1:%d, maxmemory %llu MiB, "
				       "MALLOC_CONF=%s, %s\n",
				       bin, port, maxmemory >> 20, mc ? mc : REDIS_MALLOC_CONF,
				       g_place.peer_cpu >= 0 ? "pinned to the peer cpu"
							     : "not pinned");
				return c;
			}
			snprintf(err, sizeof(err), "PING: %s", r == NULL ? c->errstr : "no PONG");
			redisFree(c);
		}
		if (waitpid(g_redis.pid, &st, WNOHANG) == g_redis.pid) {
			g_redis.pid = -1;
			redis_dump_log();
			die("redis-server exited before it answered PING");
		}
		if (now_ns() > deadline) {
			redis_dump_log();
			die("redis-server not ready within %llu s: %s",
			    REDIS_READY_NS / 1000000000ULL, err);
		}
		usleep(20000);
	}
}

/* One pipelined batch; replies[] are left for the caller to check and free. */
static uint64_t
redis_pipeline(redisContext *c, unsigned int n, const char *cmd, char (*keys)[REDIS_KEY_LEN],
	       const unsigned char *vals, size_t size, redisReply **replies)
{
	uint64_t t0 = ticks();
	unsigned int i;

	for (i = 0; i < n; i++) {
		const char *argv[3] = {cmd, keys[i],
				       vals ? (const char *)vals + (size_t)i * size : NULL};
		size_t lens[3] = {strlen(cmd), strlen(keys[i]), size};

		if (redisAppendCommandArgv(c, vals ? 3 : 2, argv, lens) != REDIS_OK) {
			die("redis %s: %s", cmd, c->errstr);
		}
	}
	for (i = 0; i < n; i++) {
		void *r = NULL;

		if (redisGetReply(c, &r) != REDIS_OK || r == NULL) {
			die("redis %s: %s", cmd, c->errstr);
		}
		replies[i] = r;
	}
	return ticks() - t0;
}

/*
 * One point: per repetition (rep 0: warm-up, not recorded) SET `pages` fresh
 * keys, GET them back and check every byte, then DEL them (not timed). DEL,
 * not FLUSHALL: FLUSHALL hands redis's memory back to the kernel (jemalloc
 * purge), and every repetition would then pay page faults for its values, which
 * a long-running server reusing freed memory does not.
 */
static void
redis_point(redisContext *c, size_t size, unsigned int batch, unsigned int pages, unsigned int reps,
	    int sweep)
{
	unsigned char *src = buf_alloc(size * batch);
	char(*keys)[REDIS_KEY_LEN] = calloc(pages, REDIS_KEY_LEN);
	redisReply **replies = calloc(batch, sizeof(redisReply *));
	struct series set = {0}, get = {0};
	unsigned int r, first, i;

	if (keys == NULL || replies == NULL) {
		die("out of memory");
	}
	if (pages < batch) {
		pages = batch;
	}
	fill_pattern(src, size * batch, 0x5eed);
	for (r = 0; r <= reps; r++) {
		uint64_t tset = 0, tget = 0;

		for (i = 0; i < pages; i++) {
			snprintf(keys[i], REDIS_KEY_LEN, "bench-redis-%zu-%u-%u", size, r, i);
		}
		for (first = 0; first < pages; first += batch) {
			unsigned int n = pages - first < batch ? pages - first : batch;
			uint64_t t = redis_pipeline(c, n, "SET", keys + first, src, size, replies);

			for (i = 0; i < n; i++) {
				if (replies[i]->type != REDIS_REPLY_STATUS) {
					die("redis SET %s: %.*s", keys[first + i],
					    replies[i]->str ? (int)replies[i]->len : 0,
					    replies[i]->str ? replies[i]->str : "unexpected reply");
				}
				freeReplyObject(replies[i]);
			}
			series_time(&set, r, t, &tset);
		}
		for (first = 0; first < pages; first += batch) {
			unsigned int n = pages - first < batch ? pages - first : batch;
			uint64_t t = redis_pipeline(c, n, "GET", keys + first, NULL, 0, replies);

			for (i = 0; i < n; i++) {
				const redisReply *rr = replies[i];

				if (rr->type != REDIS_REPLY_STRING || rr->len != size ||
				    memcmp(rr->str, src + (size_t)i * size, size) != 0) {
					die("redis GET %s: %s", keys[first + i],
					    rr->type == REDIS_REPLY_STRING ? "bytes differ"
									   : "no such key");
				}
				freeReplyObject(replies[i]);
			}
			series_time(&get, r, t, &tget);
		}
		if (r > 0) {
			series_rep(&set, (double)pages * (double)size / ticks_to_ns(tset));
			series_rep(&get, (double)pages * (double)size / ticks_to_ns(tget));
		}
		for (first = 0; first < pages; first += batch) {
			unsigned int n = pages - first < batch ? pages - first : batch;

			(void)redis_pipeline(c, n, "DEL", keys + first, NULL, 0, replies);
			for (i = 0; i < n; i++) {
				if (replies[i]->type != REDIS_REPLY_INTEGER ||
				    replies[i]->integer != 1) {
					die("redis DEL %s: not deleted", keys[first + i]);
				}
				freeReplyObject(replies[i]);
			}
		}
	}
	table_row("redis.set", "SET (redis-server, hiredis)", size, batch, sweep, &set);
	table_row("redis.get", "GET (redis-server, hiredis)", size, batch, sweep, &get);
	if (!sweep) {
		json_num("redis.page_size", (double)size);
		json_num("redis.batch", batch);
		json_num("redis.get_gbps", rate_median(&get));
		json_num("redis.set_gbps", rate_median(&set));
		json_num("redis.get_lat_us_avg", mean(get.ns, get.n) / 1000.0);
		json_num("redis.get_lat_us_p99", pct(get.ns, get.n, 99.0) / 1000.0);
		json_num("redis.set_lat_us_avg", mean(set.ns, set.n) / 1000.0);
		json_num("redis.set_lat_us_p99", pct(set.ns, set.n, 99.0) / 1000.0);
	}
	series_free(&set);
	series_free(&get);
	free(keys);
	free(replies);
	buf_free(src, size * batch);
}

/* Print and record engine / redis for one figure measured earlier in this run. */
static void
redis_ratio(const char *key, const char *engine_key, const char *redis_key, const char *text)
{
	double e, r;

	if (result_get(engine_key, &e) && result_get(redis_key, &r) && r > 0.0) {
		printf("%-10s %6s ratio %s %.2f (issue 7 target: >= 1.0)\n", "", "", text, e / r);
		json_num(key, e / r);
	}
}

void
run_redis(const struct opts *o)
{
	unsigned long long need =
		(unsigned long long)o->pages * o->page_size + 2ULL * o->batch * o->page_size;
	redisContext *c;

	if (o->sweep) {
		size_t size;
		unsigned int batch, idx;

		for (idx = 0; sweep_point(idx, &size, &batch) == 0; idx++) {
			unsigned long long n = (unsigned long long)sweep_pages(
						       size, batch, SWEEP_BYTES, SWEEP_MAX_PAGES) *
						       size +
					       2ULL * batch * size;

			need = n > need ? n : need;
		}
	}
	/*
	 * The client keeps what it frees (no mmap'd chunks, no trimming): hiredis
	 * allocates every reply and its output buffer anew, and on a VM each page
	 * fault on fresh memory costs more than copying the page; a client with a
	 * warm allocator does not pay that per batch. The engine's GET writes into
	 * the caller's buffers, which are touched once at the start as well.
	 */
	(void)mallopt(M_MMAP_MAX, 0);
	(void)mallopt(M_TRIM_THRESHOLD, INT_MAX);
	/* Room for jemalloc's size classes and per-key overhead, and the pipelines' buffers. */
	c = redis_start(2 * need + (512ULL << 20));
	table_head("redis: SET and GET through hiredis, redis-server on loopback TCP");
	redis_point(c, o->page_size, o->batch, o->pages, o->reps, 0);
	redis_ratio("remote.ratio_get_redis", "remote.get_gbps", "redis.get_gbps",
		    "remote GET/redis GET");
	redis_ratio("local.ratio_get_redis", "local.get_gbps", "redis.get_gbps",
		    "local GET/redis GET");
	redis_ratio("local.ratio_set_redis", "local.set_gbps", "redis.set_gbps",
		    "local SET/redis SET");
	if (o->sweep) {
		size_t size;
		unsigned int batch, idx;

		table_head("redis sweep");
		for (idx = 0; sweep_point(idx, &size, &batch) == 0; idx++) {
			redis_point(c, size, batch,
				    sweep_pages(size, batch, SWEEP_BYTES, SWEEP_MAX_PAGES),
				    SWEEP_REPS, 1);
		}
	}
	redisFree(c);
	redis_stop();
}
