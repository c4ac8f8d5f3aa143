/* The API's CSRF rule (node/api.c, api_same_site): a state-changing request a browser sent from
 * another site's page is refused; the Studio's own requests, another node's Studio and clients
 * that are no browser go through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <http_parser.h>

#include "node/resource.h"

static const char *const urls[] = {"https://10.0.0.1:8080", "https://node-b.example:443"};

/* ok(method, host, origin, fetch_site): api_same_site's word on such a request. */
static bool ok(int method, const char *host, const char *origin, const char *fetch_site)
{
    struct http_request req;
    memset(&req, 0, sizeof req);
    req.method = method;
    snprintf(req.host, sizeof req.host, "%s", host);
    snprintf(req.origin, sizeof req.origin, "%s", origin);
    snprintf(req.fetch_site, sizeof req.fetch_site, "%s", fetch_site);
    return api_same_site(&req, urls, 2);
}

static void reads_are_never_refused(void **state)
{
    assert_true(ok(HTTP_GET, "127.0.0.1:8081", "https://evil.example", "cross-site"));
    assert_true(ok(HTTP_HEAD, "127.0.0.1:8081", "null", "cross-site"));
    assert_true(ok(HTTP_OPTIONS, "127.0.0.1:8081", "https://evil.example", ""));
}

static void the_studio_of_this_node_goes_through(void **state)
{
    /* as the browser reached it, whatever name it used */
    assert_true(ok(HTTP_POST, "127.0.0.1:8081", "https://127.0.0.1:8081", "same-origin"));
    assert_true(ok(HTTP_DELETE, "localhost:8081", "https://localhost:8081", "same-origin"));
    assert_true(ok(HTTP_PUT, "LOCALHOST:8081", "https://localhost:8081", ""));
    /* its configured URLs, and another node's (a default port left out, as browsers do) */
    assert_true(ok(HTTP_POST, "proxy.example", "https://10.0.0.1:8080", "same-site"));
    assert_true(ok(HTTP_POST, "127.0.0.1:8081", "https://node-b.example", "cross-site"));
}

static void clients_that_are_no_browser_go_through(void **state)
{
    assert_true(ok(HTTP_POST, "127.0.0.1:8081", "", ""));
    assert_true(ok(HTTP_DELETE, "", "", ""));
    assert_true(ok(HTTP_POST, "127.0.0.1:8081", "", "none")); /* typed by the user */
}

static void another_site_is_refused(void **state)
{
    assert_false(ok(HTTP_POST, "127.0.0.1:8081", "https://evil.example", "cross-site"));
    assert_false(ok(HTTP_DELETE, "127.0.0.1:8081", "http://127.0.0.1:8081", "cross-site"));
    assert_false(ok(HTTP_POST, "127.0.0.1:8081", "https://127.0.0.1:8082", "same-site"));
    assert_false(ok(HTTP_POST, "127.0.0.1:8081", "https://127.0.0.1", "same-site"));
    assert_false(ok(HTTP_POST, "127.0.0.1:8081", "https://127.0.0.1:8081.evil.example", ""));
    assert_false(ok(HTTP_POST, "127.0.0.1:8081", "https://10.0.0.1:8080@evil.example", ""));
    assert_false(ok(HTTP_PATCH, "127.0.0.1:8081", "https://evil.example", ""));
    /* a sandboxed frame, a file:// page, a data: URL */
    assert_false(ok(HTTP_POST, "127.0.0.1:8081", "null", "cross-site"));
    assert_false(ok(HTTP_POST, "", "null", ""));
    /* no Origin, but the browser says where it came from */
    assert_false(ok(HTTP_POST, "127.0.0.1:8081", "", "cross-site"));
    assert_false(ok(HTTP_PUT, "127.0.0.1:8081", "", "same-site"));
    /* a request without Host cannot be this node's own page */
    assert_false(ok(HTTP_POST, "", "https://127.0.0.1:8081", ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_are_never_refused),
        cmocka_unit_test(the_studio_of_this_node_goes_through),
        cmocka_unit_test(clients_that_are_no_browser_go_through),
        cmocka_unit_test(another_site_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
