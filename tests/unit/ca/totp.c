/* TOTP (ca/totp.c) against RFC 6238's test vectors (appendix B, SHA-1, truncated to 6 digits)
 * and the rules of RavenDB's two-factor authentication: 2 steps either side, malformed secrets
 * and codes refused with a reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ca/totp.h"

/* "12345678901234567890", RFC 6238's SHA-1 seed, in base32. */
#define RFC_SECRET "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

static void rfc6238_vectors(void **state)
{
    static const struct {
        int64_t t;
        const char *code; /* the last 6 of the RFC's 8 digits */
    } v[] = {{59, "287082"},         {1111111109, "081804"}, {1111111111, "050471"},
             {1234567890, "005924"}, {2000000000, "279037"}, {20000000000, "353130"}};
    char err[CMN_ERRMSG_SIZE];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char code[CA_TOTP_DIGITS + 1];
        assert_int_equal(ca_totp_code(RFC_SECRET, v[i].t, code, err), 0);
        assert_string_equal(code, v[i].code);
        uint64_t step = 0;
        assert_int_equal(ca_totp_verify(RFC_SECRET, v[i].t, v[i].code, &step, err), 0);
        assert_int_equal(step, (uint64_t)(v[i].t / CA_TOTP_STEP_SECS));
    }
}

static void window_of_two_steps(void **state)
{
    char err[CMN_ERRMSG_SIZE], code[CA_TOTP_DIGITS + 1];
    const int64_t t = 1234567890;
    assert_int_equal(ca_totp_code(RFC_SECRET, t, code, err), 0);
    uint64_t step;
    for (int d = -2; d <= 2; d++) {
        assert_int_equal(ca_totp_verify(RFC_SECRET, t + d * CA_TOTP_STEP_SECS, code, &step, err),
                         0);
        assert_int_equal(step, (uint64_t)(t / CA_TOTP_STEP_SECS));
    }
    assert_int_equal(ca_totp_verify(RFC_SECRET, t + 3 * CA_TOTP_STEP_SECS, code, &step, err),
                     CMN_EDENIED);
    assert_int_equal(ca_totp_verify(RFC_SECRET, t - 3 * CA_TOTP_STEP_SECS, code, &step, err),
                     CMN_EDENIED);
}

static void bad_codes_and_secrets(void **state)
{
    char err[CMN_ERRMSG_SIZE];
    uint64_t step;
    static const char *codes[] = {"", "12345", "1234567", "12a456", " 12345"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        assert_int_equal(ca_totp_verify(RFC_SECRET, 59, codes[i], &step, err), CMN_EINVALID);
        assert_non_null(strstr(err, "6 digits"));
    }
    assert_int_equal(ca_totp_secret_check("not base32!", err), CMN_EINVALID);
    assert_non_null(strstr(err, "base32"));
    assert_int_equal(ca_totp_secret_check("GEZDGNBV", err), CMN_EINVALID); /* 5 bytes */
    assert_non_null(strstr(err, "too short"));
    assert_int_equal(ca_totp_secret_check("", err), CMN_EINVALID);
    assert_int_equal(ca_totp_secret_check(RFC_SECRET, err), 0);
    assert_int_equal(ca_totp_verify("not base32!", 59, "287082", &step, err), CMN_EINVALID);
}

static void new_secrets(void **state)
{
    char a[CA_TOTP_SECRET_B32 + 1], b[CA_TOTP_SECRET_B32 + 1], err[CMN_ERRMSG_SIZE];
    assert_int_equal(ca_totp_secret_new(&cmn_rng_system, a, err), 0);
    assert_int_equal(ca_totp_secret_new(&cmn_rng_system, b, err), 0);
    assert_int_equal(strlen(a), CA_TOTP_SECRET_B32);
    assert_int_equal(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), CA_TOTP_SECRET_B32);
    assert_string_not_equal(a, b);
    assert_int_equal(ca_totp_secret_check(a, err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc6238_vectors),
        cmocka_unit_test(window_of_two_steps),
        cmocka_unit_test(bad_codes_and_secrets),
        cmocka_unit_test(new_secrets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
