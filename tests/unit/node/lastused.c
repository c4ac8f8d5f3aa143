/* node/lastused.c: a use is recorded once per LASTUSED_EVERY_MS per certificate, forgotten
 * with its certificate, and listed whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "node/lastused.h"

struct seen {
    size_t n;
    char thumb[8][41];
    int64_t when[8];
};

static void collect(void *ctx, const char *thumb, int64_t when_ms)
{
    struct seen *s = ctx;
    assert_true(s->n < 8);
    snprintf(s->thumb[s->n], sizeof s->thumb[0], "%s", thumb);
    s->when[s->n++] = when_ms;
}

static int64_t when_of(struct lastused *lu, const char *thumb)
{
    struct seen s = {0};
    lastused_each(lu, collect, &s);
    for (size_t i = 0; i < s.n; i++)
        if (strcmp(s.thumb[i], thumb) == 0)
            return s.when[i];
    return -1;
}

static void throttled_forgotten_listed(void **state)
{
    const char *a = "0123456789abcdef0123456789abcdef01234567";
    const char *b = "fedcba9876543210fedcba9876543210fedcba98";
    struct lastused *lu = lastused_new();
    assert_non_null(lu);
    assert_int_equal(when_of(lu, a), -1);
    lastused_touch(lu, a, 1000000);
    lastused_touch(lu, a, 1000000 + LASTUSED_EVERY_MS - 1); /* too soon: kept */
    assert_int_equal(when_of(lu, a), 1000000);
    lastused_touch(lu, a, 1000000 + LASTUSED_EVERY_MS);
    assert_int_equal(when_of(lu, a), 1000000 + LASTUSED_EVERY_MS);
    lastused_touch(lu, b, 5);
    struct seen s = {0};
    lastused_each(lu, collect, &s);
    assert_int_equal(s.n, 2);
    lastused_forget(lu, a);
    assert_int_equal(when_of(lu, a), -1);
    assert_int_equal(when_of(lu, b), 5);
    lastused_forget(lu, a); /* twice is harmless */
    lastused_free(lu);
    lastused_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(throttled_forgotten_listed)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
