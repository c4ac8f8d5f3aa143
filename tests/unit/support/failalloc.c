/* Allocation-failure injection (see failalloc.h). */
#include "failalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

/* FA_TRACE=1 in the environment prints where each injected failure happens (ASan builds). */
static bool trace;
void __sanitizer_print_stack_trace(void) __attribute__((weak));

static void trace_here(unsigned long k)
{
    fprintf(stderr, "failalloc: failing allocation %lu here:\n", k);
    if (__sanitizer_print_stack_trace)
        __sanitizer_print_stack_trace();
}

/* Counted with atomics: RocksDB's and libuv's threads may call into OpenSSL or corvid code. */
static unsigned long armed, seen;
static int fired;

/* Whether this allocation is the one to fail. */
static bool should_fail(void)
{
    if (__atomic_load_n(&armed, __ATOMIC_SEQ_CST) == 0)
        return false;
    unsigned long k = __atomic_add_fetch(&seen, 1, __ATOMIC_SEQ_CST);
    if (k != __atomic_load_n(&armed, __ATOMIC_SEQ_CST))
        return false;
    __atomic_store_n(&fired, 1, __ATOMIC_SEQ_CST);
    if (trace)
        trace_here(k);
    return true;
}

void *__wrap_malloc(size_t n)
{
    return should_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return should_fail() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return should_fail() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return should_fail() ? NULL : __real_strndup(s, n);
}

static void *ossl_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return should_fail() ? NULL : __real_malloc(n);
}

static void *ossl_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return should_fail() ? NULL : __real_realloc(p, n);
}

static void ossl_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    free(p);
}

bool fa_init(void)
{
    trace = getenv("FA_TRACE") != NULL;
    return CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free) == 1;
}

void fa_arm(unsigned long nth)
{
    __atomic_store_n(&armed, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&seen, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&fired, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&armed, nth, __ATOMIC_SEQ_CST);
}

bool fa_disarm(void)
{
    __atomic_store_n(&armed, 0, __ATOMIC_SEQ_CST);
    return __atomic_load_n(&fired, __ATOMIC_SEQ_CST) != 0;
}

unsigned long fa_count(void)
{
    return __atomic_load_n(&seen, __ATOMIC_SEQ_CST);
}

unsigned long fa_sweep(int (*op)(void *ctx),
                       void (*check)(void *ctx, unsigned long n, int rv, bool fired), void *ctx,
                       unsigned long max)
{
    /* A clean run first: OpenSSL's one-time initialisation (providers, error strings) happens
     * on first use, and a failure there sticks for the life of the process, which no caller
     * of a long-running node meets twice. */
    fa_disarm();
    check(ctx, 0, op(ctx), false);
    for (unsigned long n = 1; n <= max; n++) {
        fa_arm(n);
        int rv = op(ctx);
        bool f = fa_disarm();
        check(ctx, n, rv, f);
        if (!f) {
            if (trace || getenv("FA_COUNT"))
                fprintf(stderr, "failalloc: clean after %lu runs\n", n);
            return n;
        }
    }
    fprintf(stderr, "failalloc: still failing after %lu runs\n", max);
    abort();
}
