/* Item 12 of issue 11, what a unit test can observe: request bodies live in buffers marked to be
 * wiped on free at every stage of a connection, and jansson's wiping free (node/main.c) stays
 * interchangeable with free() for what jansson returns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/buf.h"
#include "node/http.h"

static const char two_posts[] =
    "POST /admin/certificates HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
    "Content-Length: 27\r\n\r\n{\"Password\":\"hunter2-abc\"}\n"
    "PUT /admin/certificates HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\npw!!";

/* Feeds everything, in chunks of n bytes; returns how many requests completed. */
static int feed_all(struct http_reqparser *rp, const char *s, size_t len, size_t chunk)
{
    int done = 0;
    while (len > 0) {
        size_t n = len < chunk ? len : chunk, used = 0;
        assert_int_equal(http_reqparser_feed(rp, (const uint8_t *)s, n, &used), 0);
        assert_true(rp->req.body.secret); /* while the body arrives, too */
        s += used;
        len -= used;
        if (rp->head) /* the route takes the body: kept, up to the usual limit */
            assert_int_equal(http_reqparser_body(rp, HTTP_MAX_BODY_BYTES, true), 0);
        if (rp->complete) {
            done++;
            assert_true(rp->req.body.secret);
            assert_true(rp->req.body.len == 27 || rp->req.body.len == 4);
            http_reqparser_next(rp);
            assert_true(rp->req.body.secret); /* and for the next request */
        }
    }
    return done;
}

static void request_bodies_are_secret(void **state)
{
    for (size_t chunk = 1; chunk <= sizeof two_posts; chunk += 7) {
        struct http_reqparser rp;
        http_reqparser_init(&rp);
        assert_true(rp.req.body.secret);
        assert_int_equal(feed_all(&rp, two_posts, sizeof two_posts - 1, chunk), 2);
        http_reqparser_fini(&rp);
    }
}

static void jansson_with_a_wiping_free(void **state)
{
    json_set_alloc_funcs(malloc, cmn_free_wiped);
    json_error_t err;
    json_t *o =
        json_loads("{\"Name\":\"n\",\"Password\":\"hunter2\"}", JSON_REJECT_DUPLICATES, &err);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "Password")), "hunter2");
    /* json_dumps' result is freed with free() all over the node: that must stay right. */
    char *text = json_dumps(o, JSON_COMPACT);
    assert_non_null(text);
    assert_non_null(strstr(text, "hunter2"));
    free(text);
    text = json_dumps(o, JSON_COMPACT);
    cmn_free_wiped(text);
    json_decref(o);
    json_set_alloc_funcs(malloc, free);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_bodies_are_secret),
        cmocka_unit_test(jansson_with_a_wiping_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
