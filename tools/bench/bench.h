/* corvid-bench internals shared by its subcommands: the clock, latency statistics over a
 * measuring window, and the result line every load generator prints. */
#ifndef CORVID_TOOLS_BENCH_BENCH_H
#define CORVID_TOOLS_BENCH_BENCH_H

#include <stdbool.h>
#include <stddef.h>

double bench_now(void); /* CLOCK_MONOTONIC, seconds */

/* Per-operation latencies of one run. An operation counts when it started inside the
 * measuring window [t0, t1) (after the warm-up, before the deadline); the rate is the number
 * of counted operations over the time from t0 to the last counted completion. */
struct bench_run {
    double t0, t1;
    double *lat; /* seconds, one per counted operation; owned */
    size_t n, cap;
    double last_done;
    long errors;
    char first_error[512];
};

int bench_run_init(struct bench_run *r, size_t expected);
void bench_run_fini(struct bench_run *r);
/* An operation that started at `start` finished now at `done`, successfully or not. */
void bench_run_record(struct bench_run *r, double start, double done, bool ok, const char *err);

/* Prints the human-readable summary and one machine line for scripts:
 *   RESULT system=S target=T clients=C ops=N errors=E secs=D rate=R p50=.. p90=.. p99=.. max=..
 * (latencies in milliseconds). Sorts r->lat. */
void bench_run_report(struct bench_run *r, const char *system, const char *target, int clients);

/* Shared command-line numbers. 0 or -1 with a message on stderr. */
int bench_arg_double(const char *opt, const char *s, double lo, double hi, double *out);
int bench_arg_long(const char *opt, const char *s, long lo, long hi, long *out);

int bench_raft_main(int argc, char **argv);
int bench_etcd_main(int argc, char **argv);

#endif
