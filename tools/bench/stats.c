/* Latency bookkeeping and the result line shared by corvid-bench's load generators. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/bench/bench.h"

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int bench_run_init(struct bench_run *r, size_t expected)
{
    memset(r, 0, sizeof *r);
    r->cap = expected > 1024 ? expected : 1024;
    r->lat = malloc(r->cap * sizeof *r->lat);
    return r->lat ? 0 : -1;
}

void bench_run_fini(struct bench_run *r)
{
    free(r->lat);
    r->lat = NULL;
}

void bench_run_record(struct bench_run *r, double start, double done, bool ok, const char *err)
{
    if (!ok) {
        /* Errors are counted wherever they fall: a failing run must not look clean because the
         * failures happened during the warm-up. */
        if (r->errors++ == 0)
            snprintf(r->first_error, sizeof r->first_error, "%s", err ? err : "error");
        return;
    }
    if (start < r->t0 || start >= r->t1)
        return;
    if (r->n == r->cap) {
        size_t cap = r->cap * 2;
        double *p = realloc(r->lat, cap * sizeof *p);
        if (p == NULL)
            return; /* the statistics lose a sample, nothing worse */
        r->lat = p;
        r->cap = cap;
    }
    r->lat[r->n++] = done - start;
    if (done > r->last_done)
        r->last_done = done;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

void bench_run_report(struct bench_run *r, const char *system, const char *target, int clients)
{
    qsort(r->lat, r->n, sizeof *r->lat, cmp_double);
    double secs = r->last_done > r->t0 ? r->last_done - r->t0 : 0;
    double rate = secs > 0 ? (double)r->n / secs : 0;
    double p50 = 1e3 * pct(r->lat, r->n, 50), p90 = 1e3 * pct(r->lat, r->n, 90),
           p99 = 1e3 * pct(r->lat, r->n, 99), max = r->n ? 1e3 * r->lat[r->n - 1] : 0;
    printf("%s (%s), %d in flight: %zu ops in %.2f s = %.0f/s; latency ms p50 %.2f, p90 %.2f, "
           "p99 %.2f, max %.2f; %ld errors\n",
           system, target, clients, r->n, secs, rate, p50, p90, p99, max, r->errors);
    if (r->errors)
        printf("  first error: %s\n", r->first_error);
    printf("RESULT system=%s target=%s clients=%d ops=%zu errors=%ld secs=%.3f rate=%.1f "
           "p50=%.3f p90=%.3f p99=%.3f max=%.3f\n",
           system, target, clients, r->n, r->errors, secs, rate, p50, p90, p99, max);
    fflush(stdout);
}

int bench_arg_double(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "corvid-bench: %s must be a number in [%g, %g]\n", opt, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int bench_arg_long(const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "corvid-bench: %s must be an integer in [%ld, %ld]\n", opt, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}
