/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * peercache-bench's results: flat keys (json_num/json_str) and table rows
 * (one per measured series and point), kept in memory during the run and
 * written at the end as JSON (--json, the sweep under "sweep"), markdown
 * tables ready for docs/benchmarks.md (--markdown) and gnuplot charts of the
 * sweep (--plot: .dat files, plots.gp, then gnuplot draws the PNGs).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define KEY_MAX          64
#define GNUPLOT_DEADLINE 120000000000ULL /* ns */
#define MAX_AXIS         16              /* distinct sizes or batches per test */

struct kv {
	char key[KEY_MAX];
	char sub[KEY_MAX]; /* non-empty: str is key's object's member sub (json_note) */
	double num;
	char *str; /* NULL: a number */
};

struct row {
	char name[KEY_MAX]; /* "local.get": subcommand, then what */
	size_t size;
	unsigned int batch;
	int sweep;
	double gbps, lat_avg_us, lat_p99_us;
	size_t ops;
};

/* The series in the order tables and charts show them. */
static const struct test {
	const char *name;
	const char *label;
} g_tests[] = {
	{"local.get", "local GET"},
	{"local.set", "local SET"},
	{"local.memcpy", "memcpy (baseline)"},
	{"remote.get", "remote GET (B <- A)"},
	{"remote.raw_tcp", "raw TCP (baseline)"},
	{"remote.rdma_get", "remote GET over rdma (B <- A)"},
	{"remote.raw_verbs_read", "raw verbs READ (baseline)"},
	{"redis.get", "redis GET"},
	{"redis.set", "redis SET"},
};
#define N_TESTS (sizeof(g_tests) / sizeof(g_tests[0]))

/* Issue 7's targets: le = the ratio must be at most goal, else at least. */
static const struct target {
	const char *key;
	const char *text;
	int le;
	double goal;
} g_targets[] = {
	{"ring.ratio_rtt_pingpong", "ring: ping RTT / cache-line ping-pong (p50)", 1, 3.0},
	{"local.ratio_get_memcpy", "local GET / memcpy", 0, 0.85},
	{"local.ratio_set_memcpy", "local SET / memcpy", 0, 0.85},
	{"remote.ratio_get_raw_tcp", "remote GET / raw TCP", 0, 0.80},
	{"remote.ratio_get_redis", "remote GET / redis GET", 0, 1.0},
	{"local.ratio_set_redis", "local SET / redis SET", 0, 1.0},
};

static struct kv *g_kv;
static size_t g_nkv, g_kvcap;
static struct row *g_rows;
static size_t g_nrows, g_rowcap;

/* ---------------------------------------------------------------- recording */

static struct kv *
kv_slot(const char *key, const char *sub)
{
	size_t i;

	for (i = 0; i < g_nkv; i++) {
		if (strcmp(g_kv[i].key, key) == 0 && strcmp(g_kv[i].sub, sub) == 0) {
			free(g_kv[i].str);
			g_kv[i].str = NULL;
			return &g_kv[i];
		}
	}
	if (g_nkv == g_kvcap) {
		size_t cap = g_kvcap ? 2 * g_kvcap : 64;
		struct kv *p = realloc(g_kv, cap * sizeof(*p));

		if (p == NULL) {
			die("out of memory");
		}
		g_kv = p;
		g_kvcap = cap;
	}
	memset(&g_kv[g_nkv], 0, sizeof(g_kv[g_nkv]));
	snprintf(g_kv[g_nkv].key, sizeof(g_kv[g_nkv].key), "%s", key);
	snprintf(g_kv[g_nkv].sub, sizeof(g_kv[g_nkv].sub), "%s", sub);
	return &g_kv[g_nkv++];
}

void
json_num(const char *key, double v)
{
	kv_slot(key, "")->num = v;
}

static void
kv_set_str(struct kv *k, const char *v)
{
	k->str = strdup(v);
	if (k->str == NULL) {
		die("out of memory");
	}
}

void
json_str(const char *key, const char *v)
{
	kv_set_str(kv_slot(key, ""), v);
}

void
json_note(const char *obj, const char *key, const char *v)
{
	kv_set_str(kv_slot(obj, key), v);
}

int
result_get(const char *key, double *v)
{
	size_t i;

	for (i = 0; i < g_nkv; i++) {
		if (g_kv[i].str == NULL && g_kv[i].sub[0] == 0 && strcmp(g_kv[i].key, key) == 0) {
			*v = g_kv[i].num;
			return 1;
		}
	}
	return 0;
}

/* A string result: json_str's key (sub ""), or json_note's obj and key; "" if none. */
static const char *
result_note(const char *key, const char *sub)
{
	size_t i;

	for (i = 0; i < g_nkv; i++) {
		if (g_kv[i].str != NULL && strcmp(g_kv[i].key, key) == 0 &&
		    strcmp(g_kv[i].sub, sub) == 0) {
			return g_kv[i].str;
		}
	}
	return "";
}

static const char *
result_str(const char *key)
{
	return result_note(key, "");
}

void
row_add(const char *name, size_t size, unsigned int batch, int sweep, double gbps,
	double lat_avg_us, double lat_p99_us, size_t ops)
{
	struct row *r;

	if (g_nrows == g_rowcap) {
		size_t cap = g_rowcap ? 2 * g_rowcap : 128;
		struct row *p = realloc(g_rows, cap * sizeof(*p));

		if (p == NULL) {
			die("out of memory");
		}
		g_rows = p;
		g_rowcap = cap;
	}
	r = &g_rows[g_nrows++];
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->size = size;
	r->batch = batch;
	r->sweep = sweep;
	r->gbps = gbps;
	r->lat_avg_us = lat_avg_us;
	r->lat_p99_us = lat_p99_us;
	r->ops = ops;
}

int
report_has_sweep(void)
{
	size_t i;

	for (i = 0; i < g_nrows; i++) {
		if (g_rows[i].sweep) {
			return 1;
		}
	}
	return 0;
}

static const struct row *
sweep_row(const char *name, size_t size, unsigned int batch)
{
	size_t i;

	for (i = 0; i < g_nrows; i++) {
		const struct row *r = &g_rows[i];

		if (r->sweep && r->size == size && r->batch == batch &&
		    strcmp(r->name, name) == 0) {
			return r;
		}
	}
	return NULL;
}

static const char *
test_label(const char *name)
{
	size_t i;

	for (i = 0; i < N_TESTS; i++) {
		if (strcmp(g_tests[i].name, name) == 0) {
			return g_tests[i].label;
		}
	}
	return name;
}

/* ---------------------------------------------------------------- targets */

static int
target_met(const struct target *t, double v)
{
	return t->le ? v <= t->goal : v >= t->goal;
}

void
report_targets(void)
{
	size_t i;

	printf("\n== issue 7 targets (ratios measured in this run)\n");
	for (i = 0; i < sizeof(g_targets) / sizeof(g_targets[0]); i++) {
		const struct target *t = &g_targets[i];
		double v;

		if (!result_get(t->key, &v)) {
			printf("%-46s %8s   target %s %.2f   (not measured)\n", t->text, "-",
			       t->le ? "<=" : ">=", t->goal);
			continue;
		}
		printf("%-46s %8.3f   target %s %.2f   %s\n", t->text, v,
		       t->le ? "<=" : ">=", t->goal, target_met(t, v) ? "met" : "NOT met");
	}
}

/* ---------------------------------------------------------------- json */

static void
json_string(FILE *f, const char *v)
{
	const char *p;

	fputc('"', f);
	for (p = v; *p; p++) {
		if (*p == '"' || *p == '\\') {
			fputc('\\', f);
		}
		if ((unsigned char)*p >= 0x20) {
			fputc(*p, f);
		}
	}
	fputc('"', f);
}

static void
json_number(FILE *f, double v)
{
	if (isfinite(v) && v == floor(v) && fabs(v) < 1e15) {
		fprintf(f, "%.0f", v);
	} else if (isfinite(v)) {
		fprintf(f, "%.6g", v);
	} else {
		fputs("null", f);
	}
}

/* Open path.tmp for writing (into tmp); NULL with *err set. */
static FILE *
tmp_open(const char *path, char tmp[PATH_MAX], int *err)
{
	FILE *f;

	if (snprintf(tmp, PATH_MAX, "%s.tmp", path) >= PATH_MAX) {
		*err = -ENAMETOOLONG;
		return NULL;
	}
	f = fopen(tmp, "w");
	if (f == NULL) {
		*err = -errno;
	}
	return f;
}

/* Close f (written to tmp) and rename it over path: all of it, or nothing. */
static int
tmp_commit(FILE *f, const char *tmp, const char *path)
{
	int err = ferror(f);

	if (fclose(f) != 0 || err) {
		unlink(tmp);
		return -EIO;
	}
	if (rename(tmp, path) != 0) {
		err = -errno;
		unlink(tmp);
		return err;
	}
	return 0;
}

/* Whether an object member before g_kv[i] belongs to the same object (then it is written). */
static int
kv_obj_seen(size_t i)
{
	size_t j;

	for (j = 0; j < i; j++) {
		if (g_kv[j].sub[0] != 0 && strcmp(g_kv[j].key, g_kv[i].key) == 0) {
			return 1;
		}
	}
	return 0;
}

int
report_json(const char *path)
{
	char tmp[PATH_MAX];
	FILE *f;
	size_t i;
	int first = 1, err = 0;

	f = tmp_open(path, tmp, &err);
	if (f == NULL) {
		return err;
	}
	fputc('{', f);
	for (i = 0; i < g_nkv; i++) {
		size_t j;

		if (g_kv[i].sub[0] != 0 && kv_obj_seen(i)) {
			continue;
		}
		fprintf(f, "%s\n  ", first ? "" : ",");
		first = 0;
		json_string(f, g_kv[i].key);
		fputs(": ", f);
		if (g_kv[i].sub[0] != 0) {
			/* The object's members, all at the place of its first. */
			fputc('{', f);
			for (j = i; j < g_nkv; j++) {
				if (g_kv[j].sub[0] != 0 && strcmp(g_kv[j].key, g_kv[i].key) == 0) {
					fputs(j == i ? "" : ", ", f);
					json_string(f, g_kv[j].sub);
					fputs(": ", f);
					json_string(f, g_kv[j].str);
				}
			}
			fputc('}', f);
		} else if (g_kv[i].str) {
			json_string(f, g_kv[i].str);
		} else {
			json_number(f, g_kv[i].num);
		}
	}
	first = 1;
	if (report_has_sweep()) {
		fprintf(f, "%s\n  \"sweep\": [", g_nkv ? "," : "");
		for (i = 0; i < g_nrows; i++) {
			const struct row *r = &g_rows[i];

			if (!r->sweep) {
				continue;
			}
			fprintf(f, "%s\n    {\"test\": ", first ? "" : ",");
			json_string(f, r->name);
			fprintf(f, ", \"page_size\": %zu, \"batch\": %u, \"gbps\": ", r->size,
				r->batch);
			json_number(f, r->gbps);
			fputs(", \"lat_us_avg\": ", f);
			json_number(f, r->lat_avg_us);
			fputs(", \"lat_us_p99\": ", f);
			json_number(f, r->lat_p99_us);
			fprintf(f, ", \"ops\": %zu}", r->ops);
			first = 0;
		}
		fputs("\n  ]", f);
	}
	fputs("\n}\n", f);
	return tmp_commit(f, tmp, path);
}

/* ---------------------------------------------------------------- markdown */

static void
md_num_row(FILE *f, const char *text, const char *key, const char *fmt)
{
	double v;

	if (result_get(key, &v)) {
		fprintf(f, "| %s | ", text);
		fprintf(f, fmt, v);
		fputs(" |\n", f);
	}
}

/* What became of remote over RDMA: the device and the ratio, or why it was not measured. */
static void
md_rdma(FILE *f)
{
	static const char *const why[][2] = {
		{"skipped", "skipped"},
		{"fell_back", "not measured, the engines fell back"},
		{"failed", "failed"},
	};
	double ratio, get = 0.0, raw = 0.0;
	size_t i;

	for (i = 0; i < sizeof(why) / sizeof(why[0]); i++) {
		const char *text = result_note("rdma", why[i][0]);

		if (text[0] != 0) {
			fprintf(f, "\nRDMA: %s: %s.\n", why[i][1], text);
		}
	}
	if (result_get("remote.ratio_rdma_raw_verbs", &ratio)) {
		(void)result_get("remote.rdma_get_gbps", &get);
		(void)result_get("remote.raw_verbs_read_gbps", &raw);
		fprintf(f,
			"\nRDMA (%s): remote GET over rdma / raw verbs READ %.3f (%.3f / %.3f "
			"GB/s).\n",
			result_note("rdma", "device"), ratio, get, raw);
	}
}

/* The sweep of one subcommand ("local"): one row per (size, batch), one column group per series. */
static void
md_sweep(FILE *f, const char *group)
{
	const char *names[N_TESTS];
	size_t nn = 0, i, j, glen = strlen(group);

	for (i = 0; i < N_TESTS; i++) {
		if (strncmp(g_tests[i].name, group, glen) == 0 && g_tests[i].name[glen] == '.') {
			for (j = 0; j < g_nrows; j++) {
				if (g_rows[j].sweep &&
				    strcmp(g_rows[j].name, g_tests[i].name) == 0) {
					names[nn++] = g_tests[i].name;
					break;
				}
			}
		}
	}
	if (nn == 0) {
		return;
	}
	fprintf(f, "\n### Sweep: %s\n\n| Block | Batch |", group);
	for (i = 0; i < nn; i++) {
		fprintf(f, " %s GB/s |", test_label(names[i]));
	}
	for (i = 0; i < nn; i++) {
		fprintf(f, " %s avg / p99 (us) |", test_label(names[i]));
	}
	fputs("\n|---|---|", f);
	for (i = 0; i < 2 * nn; i++) {
		fputs("---|", f);
	}
	fputc('\n', f);
	for (j = 0; j < g_nrows; j++) {
		const struct row *r = &g_rows[j];
		char b[32];

		/* Each (size, batch) once: at the first series' row. */
		if (!r->sweep || strcmp(r->name, names[0]) != 0) {
			continue;
		}
		fmt_size(b, sizeof(b), r->size);
		fprintf(f, "| %s | %u |", b, r->batch);
		for (i = 0; i < nn; i++) {
			const struct row *o = sweep_row(names[i], r->size, r->batch);

			if (o) {
				fprintf(f, " %.2f |", o->gbps);
			} else {
				fputs(" |", f);
			}
		}
		for (i = 0; i < nn; i++) {
			const struct row *o = sweep_row(names[i], r->size, r->batch);

			if (o) {
				fprintf(f, " %.1f / %.1f |", o->lat_avg_us, o->lat_p99_us);
			} else {
				fputs(" |", f);
			}
		}
		fputc('\n', f);
	}
}

int
report_markdown(const char *path, const char *title)
{
	char tmp[PATH_MAX], day[32];
	time_t now = time(NULL);
	struct tm tm;
	double v;
	FILE *f;
	size_t i;
	int err = 0, targets = 0;

	f = tmp_open(path, tmp, &err);
	if (f == NULL) {
		return err;
	}
	strftime(day, sizeof(day), "%Y-%m-%d %H:%M", localtime_r(&now, &tm));
	fprintf(f, "## `%s`, %s\n\n", title, day);
	fprintf(f, "Machine: %s, %.0f CPUs online, TSC %.3f GHz, kernel %s.\n",
		result_str("machine.cpu"), result_get("machine.cores", &v) ? v : 0.0, g_tsc_ghz,
		result_str("machine.kernel"));
	fprintf(f, "Placement: %s.\n", result_str("machine.placement"));
	if (result_get("run.seconds", &v)) {
		fprintf(f, "Run time: %.0f s.\n", v);
	}

	fputs("\n### Default point\n\n| Series | BlkSize | Batch | GB/s (median) | avg / p99 per "
	      "batch (us) | batch calls |\n|---|---|---|---|---|---|\n",
	      f);
	for (i = 0; i < g_nrows; i++) {
		const struct row *r = &g_rows[i];
		char b[32];

		if (r->sweep) {
			continue;
		}
		fmt_size(b, sizeof(b), r->size);
		fprintf(f, "| %s | %s | %u | %.3f | %.1f / %.1f | %zu |\n", test_label(r->name), b,
			r->batch, r->gbps, r->lat_avg_us, r->lat_p99_us, r->ops);
	}

	md_rdma(f);
	if (result_get("ring.rtt_ns_p50", &v)) {
		fputs("\n### ring (ns per round trip, p50)\n\n| | p50 |\n|---|---|\n", f);
		md_num_row(f, "engine: `pc_client_ping` (empty)", "ring.rtt_ns_p50", "%.0f");
		md_num_row(f, "engine: 1-key EXISTS", "ring.exists1_ns_p50", "%.0f");
		md_num_row(f, "baseline: cache-line ping-pong", "ring.pingpong_ns_p50", "%.0f");
		md_num_row(f, "baseline: `rte_ring` SP/SC", "ring.rte_ring_ns_p50", "%.0f");
	}
	if (result_get("exists.keys_per_s", &v)) {
		fputs("\n### exists (128-key batches)\n\n| | keys/s |\n|---|---|\n", f);
		md_num_row(f, "local (on A)", "exists.keys_per_s", "%.0f");
		md_num_row(f, "cross-node (through B)", "exists.cross_keys_per_s", "%.0f");
	}
	if (result_get("engine.rss_overhead_mib", &v)) {
		fprintf(f, "\nEngine RSS with 64 sessions open, less segment pages: %.1f MiB.\n",
			v);
	}

	for (i = 0; i < sizeof(g_targets) / sizeof(g_targets[0]); i++) {
		const struct target *t = &g_targets[i];

		if (result_get(t->key, &v)) {
			if (!targets) {
				fputs("\n### Issue 7 targets\n\n| Ratio | This run | Target | Met? "
				      "|\n|---|---|---|---|\n",
				      f);
				targets = 1;
			}
			fprintf(f, "| %s | %.3f | %s %.2f | %s |\n", t->text, v,
				t->le ? "<=" : ">=", t->goal, target_met(t, v) ? "yes" : "no");
		}
	}
	md_sweep(f, "local");
	md_sweep(f, "remote");
	md_sweep(f, "redis");
	return tmp_commit(f, tmp, path);
}

/* ---------------------------------------------------------------- plots */

struct axis {
	size_t v[MAX_AXIS];
	unsigned int n;
};

static void
axis_add(struct axis *a, size_t v)
{
	unsigned int i, j;

	for (i = 0; i < a->n; i++) {
		if (a->v[i] == v) {
			return;
		}
	}
	if (a->n == MAX_AXIS) {
		return;
	}
	for (i = 0; i < a->n && a->v[i] < v; i++) {
	}
	for (j = a->n; j > i; j--) {
		a->v[j] = a->v[j - 1];
	}
	a->v[i] = v;
	a->n++;
}

/* The index of want in a, or of the largest value below it (the first if none). */
static unsigned int
axis_pick(const struct axis *a, size_t want)
{
	unsigned int i, best = 0;

	for (i = 0; i < a->n; i++) {
		if (a->v[i] <= want) {
			best = i;
		}
	}
	return best;
}

/* What was drawn for one series: its axes and the blocks the shared charts use. */
struct plotted {
	const struct test *t;
	struct axis sizes, batches;
	unsigned int at_batch; /* block of the default batch in .by_batch.dat */
	unsigned int at_size;  /* block of 1 MiB in .by_size.dat */
};

static int
mkdir_p(const char *dir)
{
	char buf[PATH_MAX];
	size_t i, n = strlen(dir);

	if (n == 0 || n >= sizeof(buf)) {
		return -EINVAL;
	}
	memcpy(buf, dir, n + 1);
	for (i = 1; i <= n; i++) {
		if (buf[i] == '/' || buf[i] == 0) {
			char c = buf[i];

			buf[i] = 0;
			if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
				return -errno;
			}
			buf[i] = c;
		}
	}
	return 0;
}

static FILE *
open_in(const char *dir, const char *name, const char *suffix)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/%s%s", dir, name, suffix) >= (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	return fopen(path, "w");
}

/* <name>.by_batch.dat: a block per batch, page size in KiB; <name>.by_size.dat: a block per size.
 */
static int
write_dat(const char *dir, struct plotted *p)
{
	FILE *fb = open_in(dir, p->t->name, ".by_batch.dat");
	FILE *fs = open_in(dir, p->t->name, ".by_size.dat");
	unsigned int i, j;
	int err = 0;

	if (fb == NULL || fs == NULL) {
		err = -errno;
		goto out;
	}
	for (i = 0; i < p->batches.n; i++) {
		fprintf(fb, "%s# %s, batch %zu\n# page_kib gbps lat_avg_us lat_p99_us\n",
			i ? "\n\n" : "", p->t->label, p->batches.v[i]);
		for (j = 0; j < p->sizes.n; j++) {
			const struct row *r =
				sweep_row(p->t->name, p->sizes.v[j], (unsigned int)p->batches.v[i]);

			if (r) {
				fprintf(fb, "%g %g %g %g\n", (double)r->size / 1024.0, r->gbps,
					r->lat_avg_us, r->lat_p99_us);
			}
		}
	}
	for (j = 0; j < p->sizes.n; j++) {
		fprintf(fs, "%s# %s, page size %zu B\n# batch gbps lat_avg_us lat_p99_us\n",
			j ? "\n\n" : "", p->t->label, p->sizes.v[j]);
		for (i = 0; i < p->batches.n; i++) {
			const struct row *r =
				sweep_row(p->t->name, p->sizes.v[j], (unsigned int)p->batches.v[i]);

			if (r) {
				fprintf(fs, "%u %g %g %g\n", r->batch, r->gbps, r->lat_avg_us,
					r->lat_p99_us);
			}
		}
	}
	if (ferror(fb) || ferror(fs)) {
		err = -EIO;
	}
out:
	if (fb && fclose(fb) != 0 && err == 0) {
		err = -EIO;
	}
	if (fs && fclose(fs) != 0 && err == 0) {
		err = -EIO;
	}
	return err;
}

/* One chart with a line per series: file, block picked per series, columns "x:y". */
static void
gp_shared(FILE *g, const struct plotted *p, unsigned int np, const char *png, const char *title,
	  int by_size, const char *cols)
{
	unsigned int i;

	fprintf(g, "set output '%s'\nset title '%s'\nplot ", png, title);
	for (i = 0; i < np; i++) {
		fprintf(g, "%s'%s.%s.dat' index %u using %s with linespoints title '%s'",
			i ? ", \\\n     " : "", p[i].t->name, by_size ? "by_size" : "by_batch",
			by_size ? p[i].at_size : p[i].at_batch, cols, p[i].t->label);
	}
	fputs("\n\n", g);
}

static int
write_gp(const char *dir, const struct plotted *p, unsigned int np, unsigned int batch, size_t size)
{
	FILE *g = open_in(dir, "plots", ".gp");
	char sz[32], title[128], png[128];
	unsigned int i, j;
	int err;

	if (g == NULL) {
		return -errno;
	}
	fmt_size(sz, sizeof(sz), size);
	fputs("# Written by peercache-bench --plot; run `gnuplot plots.gp` in this directory.\n"
	      "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
	      "    set terminal pngcairo size 1000,620 noenhanced\n"
	      "} else {\n"
	      "    set terminal png size 1000,620 noenhanced\n"
	      "}\n"
	      "set grid\nset key outside right top\nset logscale x 2\n\n",
	      g);

	fputs("set xlabel 'page size (KiB)'\nset ylabel 'GB/s (median over repetitions)'\n"
	      "unset logscale y\n",
	      g);
	snprintf(png, sizeof(png), "gbps_vs_size_batch%u.png", batch);
	snprintf(title, sizeof(title), "GB/s vs page size, batch %u", batch);
	gp_shared(g, p, np, png, title, 0, "1:2");
	for (i = 0; i < np; i++) {
		char stem[KEY_MAX];
		size_t k;

		snprintf(stem, sizeof(stem), "%s", p[i].t->name);
		for (k = 0; stem[k]; k++) {
			stem[k] = stem[k] == '.' ? '_' : stem[k];
		}
		fprintf(g,
			"set output 'gbps_vs_size_%s.png'\nset title '%s: GB/s vs page "
			"size'\nplot ",
			stem, p[i].t->label);
		for (j = 0; j < p[i].batches.n; j++) {
			fprintf(g,
				"%s'%s.by_batch.dat' index %u using 1:2 with linespoints title "
				"'batch %zu'",
				j ? ", \\\n     " : "", p[i].t->name, j, p[i].batches.v[j]);
		}
		fputs("\n\n", g);
	}

	fputs("set ylabel 'avg latency per batch call (us)'\nset logscale y 10\n", g);
	snprintf(png, sizeof(png), "latency_vs_size_batch%u.png", batch);
	snprintf(title, sizeof(title), "latency vs page size, batch %u", batch);
	gp_shared(g, p, np, png, title, 0, "1:3");

	fputs("set xlabel 'batch (pages per call)'\n", g);
	snprintf(png, sizeof(png), "latency_vs_batch_%zuk.png", size >> 10);
	snprintf(title, sizeof(title), "latency vs batch, %s pages", sz);
	gp_shared(g, p, np, png, title, 1, "1:3");

	fputs("set ylabel 'GB/s (median over repetitions)'\nunset logscale y\n", g);
	snprintf(png, sizeof(png), "gbps_vs_batch_%zuk.png", size >> 10);
	snprintf(title, sizeof(title), "GB/s vs batch, %s pages", sz);
	gp_shared(g, p, np, png, title, 1, "1:2");

	err = ferror(g) ? -EIO : 0;
	if (fclose(g) != 0 && err == 0) {
		err = -EIO;
	}
	return err;
}

static int
run_gnuplot(const char *dir)
{
	char bin[PATH_MAX];
	uint64_t deadline;
	pid_t pid;
	int st = 0;

	if (find_in_path("gnuplot", bin, sizeof(bin)) != 0) {
		return -ENOENT;
	}
	pid = fork();
	if (pid < 0) {
		return -errno;
	}
	if (pid == 0) {
		if (chdir(dir) != 0) {
			_exit(126);
		}
		execl(bin, "gnuplot", "plots.gp", (char *)NULL);
		_exit(127);
	}
	deadline = now_ns() + GNUPLOT_DEADLINE;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (now_ns() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -ETIMEDOUT;
		}
		usleep(20000);
	}
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

int
report_plot(const char *dir, unsigned int default_batch)
{
	struct plotted p[N_TESTS];
	unsigned int np = 0, i;
	size_t j;
	int rc;

	if (!report_has_sweep()) {
		return -ENODATA;
	}
	rc = mkdir_p(dir);
	if (rc != 0) {
		return rc;
	}
	for (i = 0; i < N_TESTS; i++) {
		struct plotted *q = &p[np];

		memset(q, 0, sizeof(*q));
		q->t = &g_tests[i];
		for (j = 0; j < g_nrows; j++) {
			if (g_rows[j].sweep && strcmp(g_rows[j].name, q->t->name) == 0) {
				axis_add(&q->sizes, g_rows[j].size);
				axis_add(&q->batches, g_rows[j].batch);
			}
		}
		if (q->sizes.n == 0) {
			continue;
		}
		q->at_batch = axis_pick(&q->batches, default_batch);
		q->at_size = axis_pick(&q->sizes, 1U << 20);
		rc = write_dat(dir, q);
		if (rc != 0) {
			return rc;
		}
		np++;
	}
	/* The shared charts use the first series' default batch and 1 MiB (or the nearest below).
	 */
	rc = write_gp(dir, p, np, (unsigned int)p[0].batches.v[p[0].at_batch],
		      p[0].sizes.v[p[0].at_size]);
	if (rc != 0) {
		return rc;
	}
	rc = run_gnuplot(dir);
	if (rc == 0) {
		printf("plots: %s/*.png (%u series; data in *.dat, script plots.gp)\n", dir, np);
	}
	return rc;
}
