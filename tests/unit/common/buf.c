/* common/: buffers, the bounds-checked cursor, hex, error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/env.h"
#include "common/err.h"

static void buffer_grows_and_pads(void **state)
{
    struct cmn_buf b;
    cmn_buf_init(&b, true);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(cmn_buf_append(&b, "abc", 3), 0);
    assert_int_equal(b.len, 3000);
    assert_int_equal(cmn_buf_printf(&b, "%d", 42), 0);
    assert_int_equal(b.len, 3002);
    assert_int_equal(cmn_buf_pad(&b, 8), 0);
    assert_int_equal(b.len % 8, 0);
    assert_int_equal(b.data[3002], 0);
    size_t len;
    uint8_t *p = cmn_buf_release(&b, &len);
    assert_int_equal(len, 3008);
    assert_null(b.data);
    free(p);
    cmn_buf_fini(&b);
}

static void cursor_never_overreads(void **state)
{
    static const uint8_t bytes[] = {1, 0, 0, 0, 0, 0, 0, 0, 2, 9};
    struct cmn_cur c;
    cmn_cur_init(&c, bytes, sizeof bytes);
    uint8_t u8;
    uint64_t u64;
    const uint8_t *p;
    assert_int_equal(cmn_cur_u8(&c, &u8), 0);
    assert_int_equal(u8, 1);
    assert_int_equal(cmn_cur_be64(&c, &u64), 0);
    assert_int_equal(u64, 2);
    assert_int_equal(cmn_cur_take(&c, 2, &p), CMN_ETRUNCATED); /* one byte left */
    assert_int_equal(cmn_cur_left(&c), 1);                     /* unmoved after a failure */
    assert_int_equal(cmn_cur_be64(&c, &u64), CMN_ETRUNCATED);
    assert_int_equal(cmn_cur_take(&c, 1, &p), 0);
    assert_int_equal(*p, 9);
    assert_int_equal(cmn_cur_u8(&c, &u8), CMN_ETRUNCATED);
}

/* Takes every line of s with max, expecting the lines in want (NULL-ended) and then code. */
static void expect_lines(const char *s, size_t len, size_t max, const char *const *want, int code)
{
    struct cmn_cur c;
    cmn_cur_init(&c, s, len);
    const uint8_t *line;
    size_t n;
    for (; *want; want++) {
        assert_int_equal(cmn_cur_line(&c, max, &line, &n), 0);
        assert_int_equal(n, strlen(*want));
        assert_memory_equal(line, *want, n);
    }
    size_t off = c.off;
    assert_int_equal(cmn_cur_line(&c, max, &line, &n), code);
    assert_int_equal(c.off, off); /* a failure never moves the cursor */
}

#define EXPECT_LINES(lit, max, want, code) expect_lines(lit, sizeof lit - 1, max, want, code)

static void lines_are_split_within_bounds(void **state)
{
    static const char *const plain[] = {"info", "", "help x", "", NULL};
    EXPECT_LINES("info\n\nhelp x\r\n\r\n", 100, plain, CMN_ETRUNCATED);
    static const char *const none[] = {NULL};
    EXPECT_LINES("", 100, none, CMN_ETRUNCATED);
    EXPECT_LINES("partial", 100, none, CMN_ETRUNCATED);   /* may still end */
    static const char *const cr[] = {"a\rb", "\r", NULL}; /* one '\r' before '\n' only */
    EXPECT_LINES("a\rb\n\r\r\n", 100, cr, CMN_ETRUNCATED);
    /* Bytes are bytes: a NUL inside a line is the caller's to judge. */
    struct cmn_cur c;
    const uint8_t *line;
    size_t n;
    cmn_cur_init(&c, "a\0b\nrest", 8);
    assert_int_equal(cmn_cur_line(&c, 100, &line, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(line, "a\0b", 3);
    assert_int_equal(cmn_cur_left(&c), 4);
    /* A NULL cursor over nothing is just empty. */
    cmn_cur_init(&c, NULL, 0);
    assert_int_equal(cmn_cur_line(&c, 100, &line, &n), CMN_ETRUNCATED);
}

static void over_long_lines_are_refused(void **state)
{
    enum { MAX = 8192 };
    static char big[MAX + 2];
    const uint8_t *line;
    size_t n;
    struct cmn_cur c;
    memset(big, 'x', sizeof big);
    /* Exactly max bytes before the '\n': taken. */
    big[MAX] = '\n';
    cmn_cur_init(&c, big, MAX + 1);
    assert_int_equal(cmn_cur_line(&c, MAX, &line, &n), 0);
    assert_int_equal(n, MAX);
    /* max bytes and no '\n' yet: the next byte may be the '\n'. */
    cmn_cur_init(&c, big, MAX);
    assert_int_equal(cmn_cur_line(&c, MAX, &line, &n), CMN_ETRUNCATED);
    /* One more, with or without its '\n': too long, and the cursor stays. */
    big[MAX] = 'x';
    big[MAX + 1] = '\n';
    cmn_cur_init(&c, big, MAX + 2);
    assert_int_equal(cmn_cur_line(&c, MAX, &line, &n), CMN_ETOOBIG);
    assert_int_equal(c.off, 0);
    cmn_cur_init(&c, big, MAX + 1);
    assert_int_equal(cmn_cur_line(&c, MAX, &line, &n), CMN_ETOOBIG);
    /* A '\r' counts: it came before the '\n'. */
    big[MAX - 1] = 'x';
    big[MAX] = '\r';
    cmn_cur_init(&c, big, MAX + 2);
    assert_int_equal(cmn_cur_line(&c, MAX, &line, &n), CMN_ETOOBIG);
    /* max 0 takes empty lines only. */
    cmn_cur_init(&c, "\nx\n", 3);
    assert_int_equal(cmn_cur_line(&c, 0, &line, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(cmn_cur_line(&c, 0, &line, &n), CMN_ETOOBIG);
    /* A too-long line after good ones: the good ones first. */
    static char mixed[3 + MAX + 2];
    memcpy(mixed, "ok\n", 3);
    memset(mixed + 3, 'y', MAX + 1);
    mixed[3 + MAX + 1] = '\n';
    static const char *const ok[] = {"ok", NULL};
    expect_lines(mixed, sizeof mixed, MAX, ok, CMN_ETOOBIG);
}

static void thousands_of_lines_iterate(void **state)
{
    enum { LINES = 4000 };
    static char nl[LINES];
    memset(nl, '\n', sizeof nl);
    struct cmn_cur c;
    cmn_cur_init(&c, nl, sizeof nl);
    const uint8_t *line;
    size_t n;
    int count = 0;
    while (cmn_cur_line(&c, 8192, &line, &n) == 0) {
        assert_int_equal(n, 0);
        count++;
    }
    assert_int_equal(count, LINES);
    assert_int_equal(cmn_cur_left(&c), 0);
}

static void heap_blocks_are_wiped_whole(void **state)
{
    uint8_t *p = malloc(100);
    assert_non_null(p);
    memset(p, 0xa5, 100);
    size_t n = cmn_cleanse_alloc(p);
    assert_true(n >= 100); /* the whole block, not only what the caller remembers */
    for (size_t i = 0; i < n; i++)
        assert_int_equal(p[i], 0);
    free(p);
    char *s = strdup("hunter2");
    assert_non_null(s);
    assert_true(cmn_cleanse_alloc(s) >= 8);
    assert_int_equal(memcmp(s, "\0\0\0\0\0\0\0\0", 8), 0);
    cmn_free_wiped(s); /* and a plain free after it */
    assert_int_equal(cmn_cleanse_alloc(NULL), 0);
    cmn_free_wiped(NULL);
    /* A secret cmn_buf holds its bytes until cmn_buf_fini, which wipes and frees. */
    struct cmn_buf b;
    cmn_buf_init(&b, true);
    assert_true(b.secret);
    assert_int_equal(cmn_buf_append_str(&b, "Password"), 0);
    cmn_buf_fini(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

static void hex_and_case(void **state)
{
    static const uint8_t b[] = {0x00, 0xab, 0xff};
    char out[7];
    cmn_hex_upper(b, 3, out);
    assert_string_equal(out, "00ABFF");
    cmn_hex_lower(b, 3, out);
    assert_string_equal(out, "00abff");
    assert_true(cmn_is_hex("00abFF", 6));
    assert_false(cmn_is_hex("00abFF", 5));
    assert_false(cmn_is_hex("00abFG", 6));
    char s[] = "AbC";
    cmn_ascii_lower(s);
    assert_string_equal(s, "abc");
    uint8_t be[8];
    cmn_be64_put(be, 0x0102030405060708ull);
    assert_int_equal(be[0], 1);
    assert_true(cmn_be64_get(be) == 0x0102030405060708ull);
}

static void error_messages_gain_context(void **state)
{
    char msg[CMN_ERRMSG_SIZE];
    assert_int_equal(cmn_fail(msg, CMN_EIO, "disk %s", "full"), CMN_EIO);
    cmn_errctx(msg, "storage: put %s", "1F3A");
    assert_string_equal(msg, "storage: put 1F3A: disk full");
    char longer[400];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    cmn_errctx(msg, "%s", longer); /* truncated, never overflowing */
    assert_int_equal(strlen(msg), CMN_ERRMSG_SIZE - 1);
    assert_string_equal(cmn_strerror(CMN_EBADPASSWORD), "wrong password");
    assert_string_equal(cmn_strerror(12345), "unknown error");
}

static void counter_rng_is_deterministic(void **state)
{
    uint64_t s1 = 7, s2 = 7;
    uint8_t a[33], b[33];
    assert_int_equal(cmn_rng_counter_fill(&s1, a, sizeof a), 0);
    assert_int_equal(cmn_rng_counter_fill(&s2, b, sizeof b), 0);
    assert_memory_equal(a, b, sizeof a);
    assert_int_equal(cmn_random(&cmn_rng_system, a, sizeof a), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buffer_grows_and_pads),
        cmocka_unit_test(cursor_never_overreads),
        cmocka_unit_test(hex_and_case),
        cmocka_unit_test(error_messages_gain_context),
        cmocka_unit_test(counter_rng_is_deterministic),
        cmocka_unit_test(lines_are_split_within_bounds),
        cmocka_unit_test(over_long_lines_are_refused),
        cmocka_unit_test(thousands_of_lines_iterate),
        cmocka_unit_test(heap_blocks_are_wiped_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
