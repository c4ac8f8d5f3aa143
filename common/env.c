/* System clock and random source, and a deterministic generator for tests. */
#include "common/env.h"

#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

static int64_t system_now_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int system_fill(void *ctx, void *buf, size_t n)
{
    (void)ctx;
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return CMN_EIO;
        }
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

const struct cmn_clock cmn_clock_system = {system_now_ms, NULL};
const struct cmn_rng cmn_rng_system = {system_fill, NULL};

int cmn_rng_counter_fill(void *state_u64, void *buf, size_t n)
{
    uint64_t *s = state_u64;
    uint8_t *p = buf;
    while (n > 0) {
        uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        size_t k = n < 8 ? n : 8;
        memcpy(p, &z, k);
        p += k;
        n -= k;
    }
    return 0;
}

int cmn_mkdir_p(const char *dir, unsigned mode)
{
    char tmp[1024];
    if (snprintf(tmp, sizeof tmp, "%s", dir) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, (mode_t)mode) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, (mode_t)mode) != 0 && errno != EEXIST ? -1 : 0;
}

void cmn_iso_date(int64_t secs, char out[CMN_DATE_SIZE])
{
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, CMN_DATE_SIZE, "%Y-%m-%dT%H:%M:%S.0000000Z", &tm);
}
