/* net/http.c: the response reader on whole, split, chunked, oversized and hostile answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "net/http.h"

struct t_resp {
    struct net_http_resp r;
    struct cmn_buf body;
    char ctype[32], location[16];
    struct net_http_header h[2];
};

static void t_init(struct t_resp *t, size_t max_head, size_t max_body)
{
    memset(t, 0, sizeof *t);
    cmn_buf_init(&t->body, false);
    t->h[0] = (struct net_http_header){"Content-Type", t->ctype, sizeof t->ctype};
    t->h[1] = (struct net_http_header){"Location", t->location, sizeof t->location};
    t->r.max_head = max_head;
    t->r.max_body = max_body;
    t->r.body = &t->body;
    t->r.headers = t->h;
    t->r.n_headers = 2;
    net_http_resp_start(&t->r);
}

/* Feeds s in pieces of step bytes; the code of the first failure, or 0. *used_total counts the
 * bytes taken. */
static int t_feed(struct t_resp *t, const char *s, size_t n, size_t step, size_t *used_total)
{
    char errmsg[CMN_ERRMSG_SIZE] = "";
    *used_total = 0;
    for (size_t off = 0; off < n && !t->r.complete; off += step) {
        size_t k = n - off < step ? n - off : step, used;
        int rv = net_http_resp_feed(&t->r, s + off, k, &used, errmsg);
        *used_total += used;
        if (rv != 0)
            return rv;
        if (used < k)
            break;
    }
    return 0;
}

static const char ok_cl[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            "Content-Length: 11\r\nX-Other: 1\r\n\r\n{\"a\":\"xyz\"}";

static void content_length_in_any_pieces(void **state)
{
    for (size_t step = 1; step <= sizeof ok_cl; step++) {
        struct t_resp t;
        t_init(&t, 4096, 1024);
        size_t used;
        assert_int_equal(t_feed(&t, ok_cl, sizeof ok_cl - 1, step, &used), 0);
        assert_true(t.r.complete);
        assert_int_equal(used, sizeof ok_cl - 1);
        assert_int_equal(t.r.status, 200);
        assert_true(t.r.keep_alive);
        assert_int_equal(t.body.len, 11);
        assert_int_equal(t.r.body_len, 11);
        assert_string_equal((const char *)t.body.data, "{\"a\":\"xyz\"}"); /* NUL-terminated */
        assert_string_equal(t.ctype, "application/json");
        assert_string_equal(t.location, "");
        cmn_buf_fini(&t.body);
    }
}

static void chunked_and_close(void **state)
{
    static const char s[] = "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n"
                            "Connection: close\r\n\r\n"
                            "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\n";
    for (size_t step = 1; step <= sizeof s; step += 3) {
        struct t_resp t;
        t_init(&t, 4096, 1024);
        size_t used;
        assert_int_equal(t_feed(&t, s, sizeof s - 1, step, &used), 0);
        assert_true(t.r.complete);
        assert_int_equal(t.r.status, 201);
        assert_false(t.r.keep_alive);
        assert_string_equal((const char *)t.body.data, "hello, world");
        cmn_buf_fini(&t.body);
    }
}

static void interim_answers_and_pipelining(void **state)
{
    /* A 100 Continue first, then the answer, then the start of the next one. */
    static const char s[] = "HTTP/1.1 100 Continue\r\nLocation: /no\r\n\r\n"
                            "HTTP/1.1 204 No Content\r\n\r\n"
                            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
    struct t_resp t;
    t_init(&t, 4096, 1024);
    size_t used;
    assert_int_equal(t_feed(&t, s, sizeof s - 1, sizeof s, &used), 0);
    assert_true(t.r.complete);
    assert_int_equal(t.r.status, 204);
    assert_string_equal(t.location, ""); /* the interim answer's headers are not kept */
    assert_int_equal(t.body.len, 0);
    const char *next = strstr(s, "HTTP/1.1 200");
    assert_int_equal(used, (size_t)(next - s));
    /* The same reader and buffer for the next answer: the capacity is kept. */
    assert_int_equal(cmn_buf_reserve(&t.body, 64), 0);
    const uint8_t *data = t.body.data;
    net_http_resp_start(&t.r);
    assert_int_equal(t_feed(&t, next, strlen(next), 7, &used), 0);
    assert_true(t.r.complete);
    assert_int_equal(t.r.status, 200);
    assert_string_equal((const char *)t.body.data, "hi");
    assert_ptr_equal(t.body.data, data);
    cmn_buf_fini(&t.body);
}

static void kept_headers_never_cut(void **state)
{
    static const char s[] = "HTTP/1.1 307 Temporary Redirect\r\n"
                            "location: https://a-host-name-too-long:1/x\r\n"
                            "Content-Length: 0\r\n\r\n";
    struct t_resp t;
    t_init(&t, 4096, 1024);
    size_t used;
    assert_int_equal(t_feed(&t, s, sizeof s - 1, 5, &used), 0);
    assert_true(t.r.complete);
    assert_int_equal(t.r.status, 307);
    assert_string_equal(t.location, "");
    static const char s2[] = "HTTP/1.1 307 Temporary Redirect\r\nLOCATION: https://h:1/x\r\n"
                             "A-Header-Name-Longer-Than-The-Field-Buffer-Of-Thirty-Two: 1\r\n"
                             "Content-Length: 0\r\n\r\n";
    net_http_resp_start(&t.r);
    assert_int_equal(t_feed(&t, s2, sizeof s2 - 1, 3, &used), 0);
    assert_string_equal(t.location, "https://h:1/x");
    cmn_buf_fini(&t.body);
}

static void limits(void **state)
{
    struct t_resp t;
    size_t used;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    /* The body: one byte over the limit, whole or in pieces, by length or chunked. */
    t_init(&t, 4096, 10);
    assert_int_equal(t_feed(&t, ok_cl, sizeof ok_cl - 1, 4, &used), CMN_ETOOBIG);
    assert_true(t.r.headers_done);
    assert_false(t.r.complete);
    cmn_buf_fini(&t.body);
    t_init(&t, 4096, 11);
    assert_int_equal(t_feed(&t, ok_cl, sizeof ok_cl - 1, 4, &used), 0);
    assert_true(t.r.complete);
    cmn_buf_fini(&t.body);
    static const char ch[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n";
    t_init(&t, 4096, 15);
    assert_int_equal(t_feed(&t, ch, sizeof ch - 1, sizeof ch, &used), CMN_ETOOBIG);
    cmn_buf_fini(&t.body);
    /* The head: refused before it is all in. */
    t_init(&t, 40, 1024);
    char big[256];
    int n = snprintf(big, sizeof big, "HTTP/1.1 200 OK\r\nX-Padding: %0100d\r\n", 0);
    assert_int_equal(net_http_resp_feed(&t.r, big, (size_t)n, &used, errmsg), CMN_ETOOBIG);
    assert_false(t.r.headers_done);
    assert_non_null(strstr(errmsg, "head"));
    cmn_buf_fini(&t.body);
    /* http_parser's own limit still applies past ours. */
    t_init(&t, SIZE_MAX, 1024);
    assert_int_equal(net_http_resp_feed(&t.r, "HTTP/1.1 200 OK\r\nX: ", 20, &used, errmsg), 0);
    static char pad[100 * 1024];
    memset(pad, 'a', sizeof pad);
    assert_int_equal(net_http_resp_feed(&t.r, pad, sizeof pad, &used, errmsg), CMN_ETOOBIG);
    cmn_buf_fini(&t.body);
    /* Without a buffer the body is counted, and limited, all the same. */
    t_init(&t, 4096, 11);
    t.r.body = NULL;
    assert_int_equal(t_feed(&t, ok_cl, sizeof ok_cl - 1, 1, &used), 0);
    assert_true(t.r.complete);
    assert_int_equal(t.r.body_len, 11);
}

static void garbage(void **state)
{
    static const char *const bad[] = {
        "SSH-2.0-OpenSSH_9.2\r\n",
        "GET / HTTP/1.1\r\n\r\n", /* a request, not an answer */
        "HTTP/1.1 abc OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", /* a TLS ClientHello */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct t_resp t;
        t_init(&t, 4096, 1024);
        size_t used;
        int rv = t_feed(&t, bad[i], strlen(bad[i]), 1, &used);
        if (rv != CMN_EMALFORMED)
            fail_msg("answer %zu: %d", i, rv);
        assert_false(t.r.complete);
        cmn_buf_fini(&t.body);
    }
}

static void end_of_connection(void **state)
{
    char errmsg[CMN_ERRMSG_SIZE] = "";
    struct t_resp t;
    size_t used;
    /* An answer framed by the connection's end completes at EOF. */
    static const char eof_framed[] = "HTTP/1.1 200 OK\r\n\r\nall of it";
    t_init(&t, 4096, 1024);
    assert_int_equal(t_feed(&t, eof_framed, sizeof eof_framed - 1, 4, &used), 0);
    assert_false(t.r.complete);
    assert_int_equal(net_http_resp_eof(&t.r, errmsg), 0);
    assert_true(t.r.complete);
    assert_false(t.r.keep_alive);
    assert_string_equal((const char *)t.body.data, "all of it");
    /* One cut short is truncated, and says so. */
    net_http_resp_start(&t.r);
    assert_int_equal(t_feed(&t, ok_cl, sizeof ok_cl - 5, 8, &used), 0);
    assert_int_equal(net_http_resp_eof(&t.r, errmsg), CMN_ETRUNCATED);
    assert_non_null(strstr(errmsg, "in the middle"));
    net_http_resp_start(&t.r);
    assert_int_equal(net_http_resp_eof(&t.r, errmsg), CMN_ETRUNCATED);
    assert_non_null(strstr(errmsg, "before an answer"));
    cmn_buf_fini(&t.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(content_length_in_any_pieces),
        cmocka_unit_test(chunked_and_close),
        cmocka_unit_test(interim_answers_and_pipelining),
        cmocka_unit_test(kept_headers_never_cut),
        cmocka_unit_test(limits),
        cmocka_unit_test(garbage),
        cmocka_unit_test(end_of_connection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
