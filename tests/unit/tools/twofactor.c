/* The corvid CLI's two-factor pieces (tools/corvid/twofactor.c): the code line of `corvid
 * login` (six digits, blanks around them dropped, anything else refused without repeating it),
 * reading exactly one line, --duration, the check of a node's generated key, and how that key is
 * shown (the QR code only when asked for). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/qr.h"
#include "tools/corvid/twofactor.h"

#define KEY "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
#define URI "otpauth://totp/Corvid:alice?secret=" KEY "&issuer=Corvid"

static int parse(const char *line, char code[TF_CODE_DIGITS + 1], char *err)
{
    return tf_code_parse(line, strlen(line), code, err);
}

static void code_accepted(void **state)
{
    (void)state;
    static const char *const good[] = {"123456",         " 123456",  "123456\n",
                                       "\t 012345 \r\n", "999999\r", "\f000000\v"};
    static const char *const want[] = {"123456", "123456", "123456", "012345", "999999", "000000"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        char code[TF_CODE_DIGITS + 1] = "x", err[CMN_ERRMSG_SIZE] = "";
        assert_int_equal(parse(good[i], code, err), 0);
        assert_string_equal(code, want[i]);
    }
    /* the length is the caller's: bytes after it are not looked at */
    char code[TF_CODE_DIGITS + 1], err[CMN_ERRMSG_SIZE];
    assert_int_equal(tf_code_parse("654321xyz", 6, code, err), 0);
    assert_string_equal(code, "654321");
}

static void code_refused(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        size_t len;
        const char *msg;
    } bad[] = {
        {"", 0, "no code given: 6 digits expected"},
        {" \t\r\n", 4, "no code given: 6 digits expected"},
        {"12345", 5, "a code has 6 digits, this one has 5"},
        {"1234567", 7, "a code has 6 digits, this one has 7"},
        {"0123456789", 10, "a code has 6 digits, this one has 10"},
        {"123 456", 7, "a code is 6 digits (0-9), without spaces or anything else"},
        {"12a456", 6, "a code is 6 digits (0-9), without spaces or anything else"},
        {"-12345", 6, "a code is 6 digits (0-9), without spaces or anything else"},
        {"+123456", 7, "a code is 6 digits (0-9), without spaces or anything else"},
        {"１２３４５６", 18, "a code is 6 digits (0-9), without spaces or anything else"},
        {"123\0"
         "456",
         7, "a code is 6 digits (0-9), without spaces or anything else"},
        {KEY, sizeof KEY - 1, "a code is 6 digits (0-9), without spaces or anything else"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char code[TF_CODE_DIGITS + 1] = "x", err[CMN_ERRMSG_SIZE] = "";
        assert_int_equal(tf_code_parse(bad[i].line, bad[i].len, code, err), CMN_EINVALID);
        assert_string_equal(err, bad[i].msg);
        assert_string_equal(code, "");
    }
}

/* A pipe holding text, its write end closed when close_write. */
static int pipe_with(const char *text, bool close_write, int *wfd)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    size_t n = strlen(text);
    assert_int_equal(write(p[1], text, n), (ssize_t)n);
    if (close_write) {
        close(p[1]);
        p[1] = -1;
    }
    if (wfd)
        *wfd = p[1];
    return p[0];
}

static void read_one_line(void **state)
{
    (void)state;
    char code[TF_CODE_DIGITS + 1], err[CMN_ERRMSG_SIZE], rest[32] = "";
    /* a script's next lines stay unread, even with the writer still open */
    int w;
    int fd = pipe_with(" 123456 \nnext line\n", false, &w);
    assert_int_equal(tf_code_read(fd, code, err), 0);
    assert_string_equal(code, "123456");
    assert_int_equal(read(fd, rest, sizeof rest - 1), 10);
    assert_string_equal(rest, "next line\n");
    close(w);
    close(fd);

    /* the end of input ends the line (oathtool's output without its newline) */
    fd = pipe_with("777777", true, NULL);
    assert_int_equal(tf_code_read(fd, code, err), 0);
    assert_string_equal(code, "777777");
    close(fd);

    fd = pipe_with("", true, NULL);
    assert_int_equal(tf_code_read(fd, code, err), CMN_EINVALID);
    assert_string_equal(err, "no code given: 6 digits expected");
    close(fd);

    fd = pipe_with("12345\n654321\n", true, NULL);
    assert_int_equal(tf_code_read(fd, code, err), CMN_EINVALID);
    assert_string_equal(err, "a code has 6 digits, this one has 5");
    close(fd);

    /* a long line is refused once it passes the limit: exactly TF_LINE_MAX bytes still parse */
    char line[TF_LINE_MAX + 3];
    memset(line, ' ', sizeof line);
    memcpy(line + TF_LINE_MAX - 6, "135791", 6);
    line[TF_LINE_MAX] = '\n';
    line[TF_LINE_MAX + 1] = '\0';
    fd = pipe_with(line, true, NULL);
    assert_int_equal(tf_code_read(fd, code, err), 0);
    assert_string_equal(code, "135791");
    close(fd);
    memcpy(line + TF_LINE_MAX - 6, " 13579", 6);
    line[TF_LINE_MAX] = '1';
    line[TF_LINE_MAX + 1] = '\n';
    line[TF_LINE_MAX + 2] = '\0';
    fd = pipe_with(line, true, NULL);
    assert_int_equal(tf_code_read(fd, code, err), CMN_ETOOBIG);
    assert_string_equal(err, "the line is longer than 64 characters: not a code");
    close(fd);

    assert_int_equal(tf_code_read(-1, code, err), CMN_EIO);
    assert_string_equal(err, "cannot read the code: Bad file descriptor");
}

static void duration(void **state)
{
    (void)state;
    long v = 0;
    char err[CMN_ERRMSG_SIZE];
    assert_int_equal(tf_duration_parse("1", 1440, &v, err), 0);
    assert_int_equal(v, 1);
    assert_int_equal(tf_duration_parse("1440", 1440, &v, err), 0);
    assert_int_equal(v, 1440);
    static const char *const bad[] = {
        "0", "1441", "-5", "+5", " 5", "5 ", "5m", "", "abc", "1e3", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        v = 7;
        assert_int_equal(tf_duration_parse(bad[i], 1440, &v, err), CMN_EINVALID);
        assert_string_equal(err, "--duration: a whole number of minutes from 1 to 1440 (the "
                                 "cluster's maximum)");
        assert_int_equal(v, 7);
    }
}

static json_t *answer(const char *secret, const char *uri)
{
    json_t *o =
        json_pack("{s:s?, s:s?, s:s}", "Secret", secret, "QrCodeUri", uri, "QrCodeSvg", "<svg/>");
    assert_non_null(o);
    return o;
}

static void key_accepted(void **state)
{
    (void)state;
    static const char *const uris[] = {
        URI,
        "otpauth://totp/Corvid%3Aalice?issuer=Corvid&secret=" KEY,
        "OTPAUTH://TOTP/x?algorithm=SHA1&secret=" KEY "&digits=6&period=30",
        "otpauth://totp/x?secret=" KEY "#frag",
    };
    for (size_t i = 0; i < sizeof uris / sizeof *uris; i++) {
        json_t *o = answer(KEY, uris[i]);
        const char *s = NULL, *u = NULL;
        char err[CMN_ERRMSG_SIZE] = "";
        assert_int_equal(tf_key_check(o, &s, &u, err), 0);
        assert_string_equal(s, KEY);
        assert_string_equal(u, uris[i]);
        json_decref(o);
    }
}

static void key_refused(void **state)
{
    (void)state;
    char long_uri[TF_URI_MAX + 64];
    snprintf(long_uri, sizeof long_uri, "otpauth://totp/x?secret=%s&issuer=", KEY);
    size_t l = strlen(long_uri);
    memset(long_uri + l, 'a', TF_URI_MAX + 1 - l);
    long_uri[TF_URI_MAX + 1] = '\0';
    static const char lacks[] = "the answer lacks Secret or QrCodeUri";
    static const char not_b32[] = "its Secret is not a base32 key (16 to 128 of A-Z and 2-7)";
    static const char not_uri[] = "its QrCodeUri is not an otpauth://totp/ URI";
    static const char ctl[] = "its QrCodeUri holds a blank, a control or a non-ASCII character";
    static const char too_long[] = "its QrCodeUri is longer than 2048 bytes";
    static const char other[] = "its QrCodeUri holds another key than its Secret";
    const struct {
        const char *secret, *uri, *msg;
    } bad[] = {
        {NULL, URI, lacks},
        {KEY, NULL, lacks},
        {"gezdgnbvgy3tqojqgezdgnbvgy3tqojq", URI, not_b32},
        {"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJ1", URI, not_b32},
        {"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQO==", URI, not_b32},
        {"GEZDGNBVGY3TQOJ", URI, not_b32},
        {KEY, "otpauth://hotp/x?secret=" KEY, not_uri},
        {KEY, "https://example.com/?secret=" KEY, not_uri},
        {KEY, long_uri, too_long},
        {KEY, "otpauth://totp/a b?secret=" KEY, ctl},
        {KEY, "otpauth://totp/x?secret=" KEY "\n", ctl},
        {KEY, "otpauth://totp/\xc3\xa9?secret=" KEY, ctl},
        {KEY, "otpauth://totp/x?issuer=Corvid", other},
        {KEY, "otpauth://totp/x?secret=" KEY "A", other},
        {KEY, "otpauth://totp/x?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", other},
        {KEY, "otpauth://totp/x?notsecret=" KEY, other},
        {KEY, "otpauth://totp/secret=" KEY, other},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *o = answer(bad[i].secret, bad[i].uri);
        const char *s = "x", *u = "x";
        char err[CMN_ERRMSG_SIZE] = "";
        assert_int_equal(tf_key_check(o, &s, &u, err), CMN_EMALFORMED);
        assert_string_equal(err, bad[i].msg);
        assert_null(s);
        assert_null(u);
        assert_null(strstr(err, KEY));
        json_decref(o);
    }
    const char *s, *u;
    char err[CMN_ERRMSG_SIZE];
    assert_int_equal(tf_key_check(NULL, &s, &u, err), CMN_EMALFORMED);
}

static char *printed(bool qr, int *rv)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    char err[CMN_ERRMSG_SIZE] = "";
    *rv = tf_key_print(f, KEY, URI, qr, err);
    fclose(f);
    return text;
}

static void key_shown(void **state)
{
    (void)state;
    int rv;
    char *plain = printed(false, &rv);
    assert_int_equal(rv, 0);
    assert_non_null(strstr(plain, "shown this once"));
    assert_non_null(strstr(plain, "authenticator app now"));
    assert_non_null(strstr(plain, "  Key:         " KEY "\n"));
    assert_non_null(strstr(plain, "  URI:         " URI "\n"));
    assert_non_null(strstr(plain, "`corvid login`"));
    assert_null(strstr(plain, "\u2588")); /* no QR code */

    char *with_qr = printed(true, &rv);
    assert_int_equal(rv, 0);
    struct cmn_buf qr;
    cmn_buf_init(&qr, false);
    char err[CMN_ERRMSG_SIZE];
    assert_int_equal(cmn_qr_utf8(URI, &qr, err), 0);
    assert_int_equal(cmn_buf_append(&qr, "", 1), 0);
    /* the same text with the QR code after the URI's line */
    const char *at = strstr(with_qr, (const char *)qr.data);
    assert_non_null(at);
    assert_int_equal(strlen(with_qr), strlen(plain) + qr.len - 1);
    assert_memory_equal(with_qr, plain, (size_t)(at - with_qr));
    assert_string_equal(at + qr.len - 1, plain + (at - with_qr));
    assert_memory_equal(at - strlen(URI "\n"), URI "\n", strlen(URI "\n"));
    cmn_buf_fini(&qr);
    free(plain);
    free(with_qr);
}

static void key_qr_too_long(void **state)
{
    (void)state;
    /* a URI that passed tf_key_check always fits; this one does not, and the rest is printed */
    char *uri = malloc(4000);
    assert_non_null(uri);
    memset(uri, 'a', 3999);
    uri[3999] = '\0';
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    char err[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(tf_key_print(f, KEY, uri, true, err), CMN_ETOOBIG);
    fclose(f);
    assert_string_equal(err, "the text is too long for a QR code");
    assert_non_null(strstr(text, "  Key:         " KEY "\n"));
    assert_non_null(strstr(text, "`corvid login`"));
    free(text);
    free(uri);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(code_accepted), cmocka_unit_test(code_refused),
        cmocka_unit_test(read_one_line), cmocka_unit_test(duration),
        cmocka_unit_test(key_accepted),  cmocka_unit_test(key_refused),
        cmocka_unit_test(key_shown),     cmocka_unit_test(key_qr_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
