/* The clock and the random source, passed into sans-I/O code so that tests can replace them. */
#ifndef CORVID_COMMON_ENV_H
#define CORVID_COMMON_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* A time (seconds since the epoch) in .NET's round-trip format, as RavenDB writes dates:
 * "2026-12-02T15:04:05.0000000Z". */
#define CMN_DATE_SIZE 40
void cmn_iso_date(int64_t secs, char out[CMN_DATE_SIZE]);

/* Wall-clock time in milliseconds since the Unix epoch. */
struct cmn_clock {
    int64_t (*now_ms)(void *ctx);
    void *ctx;
};

/* Fills buf with n random bytes; 0 or a CMN_E* code. */
struct cmn_rng {
    int (*fill)(void *ctx, void *buf, size_t n);
    void *ctx;
};

extern const struct cmn_clock cmn_clock_system; /* CLOCK_REALTIME */
extern const struct cmn_rng cmn_rng_system;     /* getrandom(2) */

static inline int64_t cmn_now_ms(const struct cmn_clock *c)
{
    return c->now_ms(c->ctx);
}
static inline int cmn_random(const struct cmn_rng *r, void *buf, size_t n)
{
    return r->fill(r->ctx, buf, n);
}

/* mkdir -p with the given mode for every directory it creates; 0 or -1 with errno. */
int cmn_mkdir_p(const char *dir, unsigned mode);

/* A deterministic generator for tests and fuzzing (splitmix64 over *state). */
int cmn_rng_counter_fill(void *state_u64, void *buf, size_t n);

#endif
