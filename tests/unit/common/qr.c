/* QR codes (common/qr.c): the SVG and terminal forms have the symbol's size with its quiet
 * zone, and what does not fit a QR code is refused. (tests/cluster/twofa.sh decodes the SVG
 * with zbarimg.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/qr.h"

#define URI "otpauth://totp/Corvid:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Corvid"

static void svg(void **state)
{
    struct cmn_buf b;
    cmn_buf_init(&b, false);
    char err[CMN_ERRMSG_SIZE];
    assert_int_equal(cmn_qr_svg(URI, &b, err), 0);
    const char *s = (const char *)b.data;
    assert_true(strncmp(s, "<svg xmlns=\"http://www.w3.org/2000/svg\"", 39) == 0);
    int w = 0, h = 0;
    assert_int_equal(sscanf(strstr(s, "viewBox"), "viewBox=\"0 0 %d %d\"", &w, &h), 2);
    /* versions 1-40 are 21 + 4v modules wide */
    assert_int_equal(w, h);
    assert_int_equal((w - 2 * CMN_QR_QUIET - 17) % 4, 0);
    assert_non_null(strstr(s, "M4 4h1v1h-1z")); /* a finder pattern's corner */
    assert_non_null(strstr(s, "</svg>"));
    cmn_buf_fini(&b);
}

static void terminal(void **state)
{
    struct cmn_buf b;
    cmn_buf_init(&b, false);
    char err[CMN_ERRMSG_SIZE];
    assert_int_equal(cmn_qr_utf8(URI, &b, err), 0);
    const char *s = (const char *)b.data;
    size_t lines = 0;
    for (const char *p = s; *p; p++)
        lines += *p == '\n';
    const char *nl = strchr(s, '\n');
    assert_non_null(nl);
    /* the first line is the quiet zone: all light (full blocks, 3 bytes each) */
    size_t width = (size_t)(nl - s) / 3;
    assert_int_equal(lines, (width + 1) / 2);
    for (size_t i = 0; i < width; i++)
        assert_memory_equal(s + 3 * i, "\u2588", 3);
    cmn_buf_fini(&b);
}

static void too_long(void **state)
{
    char *big = malloc(8000);
    assert_non_null(big);
    memset(big, 'x', 7999);
    big[7999] = '\0';
    struct cmn_buf b;
    cmn_buf_init(&b, false);
    char err[CMN_ERRMSG_SIZE];
    assert_int_equal(cmn_qr_svg(big, &b, err), CMN_ETOOBIG);
    assert_non_null(strstr(err, "too long"));
    cmn_buf_fini(&b);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(svg),
        cmocka_unit_test(terminal),
        cmocka_unit_test(too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
