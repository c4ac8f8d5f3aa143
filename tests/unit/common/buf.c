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
        cmocka_unit_test(buffer_grows_and_pads),       cmocka_unit_test(cursor_never_overreads),
        cmocka_unit_test(hex_and_case),                cmocka_unit_test(error_messages_gain_context),
        cmocka_unit_test(counter_rng_is_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
