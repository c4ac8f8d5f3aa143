/* Allocation-failure injection for the unit tests (SQLite's sweep): fail the Nth allocation
 * after fa_arm(N), N = 1, 2, … until the operation runs clean.
 *
 * Two sources are counted: corvid's own calls of malloc, calloc, realloc, strdup and strndup
 * (the test binary is linked with -Wl,--wrap for each: only the static corvid libraries and the
 * test are redirected, and __real_malloc is whatever malloc the link has, ASan's included), and
 * OpenSSL's allocations (CRYPTO_set_mem_functions, installed by fa_init before any other
 * OpenSSL call). Allocations inside other shared libraries (RocksDB's C++ new, msgpack-c's
 * unpacker zones, libc's own) are not counted: they cannot be reached from here.
 *
 * Link with the corvid_failalloc library and the options of corvid_failalloc_link() in
 * tests/CMakeLists.txt. */
#ifndef CORVID_TESTS_UNIT_SUPPORT_FAILALLOC_H
#define CORVID_TESTS_UNIT_SUPPORT_FAILALLOC_H

#include <stdbool.h>
#include <stddef.h>

/* Installs OpenSSL's hooks; call first thing in main. False when OpenSSL allocated before. */
bool fa_init(void);
/* From now on the nth allocation (1-based) fails, and only that one; 0 turns injection off. */
void fa_arm(unsigned long nth);
/* Turns injection off; returns whether the armed failure was injected. */
bool fa_disarm(void);
/* Allocations seen since the last fa_arm. */
unsigned long fa_count(void);

/* The sweep: one clean run (n = 0, settling lazy initialisation), then for n = 1, 2, …: fa_arm(n);
 * rv = op(ctx); fired = fa_disarm(); check(ctx, n, rv, fired). Stops after the first run in which
 * nothing was injected (the clean run), and returns its n. Stops with a failure after max runs. */
unsigned long fa_sweep(int (*op)(void *ctx),
                       void (*check)(void *ctx, unsigned long n, int rv, bool fired), void *ctx,
                       unsigned long max);

#endif
