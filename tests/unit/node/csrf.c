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

/* this node's configured URL, and another node's (its default port left out, as browsers do) */
static const char *const urls[] = {"https://10.0.0.1:8080", "https://node-b.example:443"};

static const struct {
    int method;
    const char *host, *origin, *fetch_site;
    bool ok;
    const char *what;
} cases[] = {
    {HTTP_GET, "127.0.0.1:8081", "https://evil.example", "cross-site", true, "a read"},
    {HTTP_HEAD, "127.0.0.1:8081", "null", "cross-site", true, "a HEAD"},
    {HTTP_OPTIONS, "127.0.0.1:8081", "https://evil.example", "", true, "an OPTIONS"},
    {HTTP_POST, "127.0.0.1:8081", "https://127.0.0.1:8081", "same-origin", true, "its Studio"},
    {HTTP_DELETE, "localhost:8081", "https://localhost:8081", "same-origin", true, "by a name"},
    {HTTP_PUT, "LOCALHOST:8081", "https://localhost:8081", "", true, "a Host in capitals"},
    {HTTP_POST, "proxy.example", "https://10.0.0.1:8080", "same-site", true, "its URL"},
    {HTTP_POST, "127.0.0.1:8081", "https://node-b.example", "cross-site", true, "node B"},
    {HTTP_POST, "127.0.0.1:8081", "", "", true, "curl"},
    {HTTP_DELETE, "", "", "", true, "a client without Host"},
    {HTTP_POST, "127.0.0.1:8081", "", "none", true, "typed by the user"},
    {HTTP_POST, "127.0.0.1:8081", "https://evil.example", "cross-site", false, "another site"},
    {HTTP_DELETE, "127.0.0.1:8081", "http://127.0.0.1:8081", "cross-site", false, "plain http"},
    {HTTP_POST, "127.0.0.1:8081", "https://127.0.0.1:8082", "same-site", false, "another port"},
    {HTTP_POST, "127.0.0.1:8081", "https://127.0.0.1", "same-site", false, "the default port"},
    {HTTP_POST, "127.0.0.1:8081", "https://127.0.0.1:8081.evil.example", "", false, "a prefix"},
    {HTTP_POST, "127.0.0.1:8081", "https://10.0.0.1:8080@evil.example", "", false, "userinfo"},
    {HTTP_PATCH, "127.0.0.1:8081", "https://evil.example", "", false, "a PATCH"},
    {HTTP_POST, "127.0.0.1:8081", "null", "cross-site", false, "a sandboxed or file:// page"},
    {HTTP_POST, "", "null", "", false, "null without Host"},
    {HTTP_POST, "127.0.0.1:8081", "", "cross-site", false, "cross-site without Origin"},
    {HTTP_PUT, "127.0.0.1:8081", "", "same-site", false, "same-site without Origin"},
    {HTTP_POST, "", "https://127.0.0.1:8081", "", false, "an Origin without Host"},
};

static void each_request_as_the_rule_says(void **state)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct http_request req;
        memset(&req, 0, sizeof req);
        req.method = cases[i].method;
        snprintf(req.host, sizeof req.host, "%s", cases[i].host);
        snprintf(req.origin, sizeof req.origin, "%s", cases[i].origin);
        snprintf(req.fetch_site, sizeof req.fetch_site, "%s", cases[i].fetch_site);
        if (api_same_site(&req, urls, 2) != cases[i].ok)
            fail_msg("%s (%s to %s from '%s', Sec-Fetch-Site '%s'): %s, want %s", cases[i].what,
                     http_method_str(cases[i].method), cases[i].host, cases[i].origin,
                     cases[i].fetch_site, cases[i].ok ? "refused" : "let through",
                     cases[i].ok ? "let through" : "refused");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(each_request_as_the_rule_says)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
