/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * peercache-bench's series: the samples of one measurement (ns per timed
 * call) and its per-repetition rates, and the statistics over them. Apart
 * from peercache-bench.c (which holds main) so that the unit tests of the
 * bench's pieces link the same code.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

void
series_add(struct series *s, double ns)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		double *p = realloc(s->ns, cap * sizeof(*p));

		if (p == NULL) {
			return;
		}
		s->ns = p;
		s->cap = cap;
	}
	s->ns[s->n++] = ns;
}

/*
 * One timed call of repetition r (ticks t): it counts towards the
 * repetition's total, and past the warm-up repetition (r 0) it is a sample.
 */
void
series_time(struct series *s, unsigned int r, uint64_t t, uint64_t *total)
{
	*total += t;
	if (r > 0) {
		series_add(s, ticks_to_ns(t));
	}
}

void
series_rep(struct series *s, double rate)
{
	if (s->nrep < sizeof(s->rep_rate) / sizeof(s->rep_rate[0])) {
		s->rep_rate[s->nrep++] = rate;
	}
}

void
series_free(struct series *s)
{
	free(s->ns);
	memset(s, 0, sizeof(*s));
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double
pct(double *v, size_t n, double p)
{
	size_t i;

	if (n == 0) {
		return 0.0;
	}
	qsort(v, n, sizeof(*v), cmp_double);
	i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

double
mean(const double *v, size_t n)
{
	double s = 0.0;
	size_t i;

	for (i = 0; i < n; i++) {
		s += v[i];
	}
	return n ? s / (double)n : 0.0;
}

double
rate_median(struct series *s)
{
	return pct(s->rep_rate, s->nrep, 50.0);
}
