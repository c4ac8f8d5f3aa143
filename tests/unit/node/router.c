/* The HTTPS API's routing table (node/api.c, api_route_find): every endpoint of RavenDB's and
 * Corvid's API is routed, with the clearance RavenDB gives it; 404 and 405 are told apart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <http_parser.h>

#include "node/resource.h"

static const struct {
    int method;
    const char *path;
    enum route_need need;
    bool early;
    bool body;
} expected[] = {
    {HTTP_GET, "/certificates/whoami", NEED_NONE, false, false},
    {HTTP_GET, "/admin/certificates", NEED_OPERATOR, false, false},
    {HTTP_PUT, "/admin/certificates", NEED_OPERATOR, false, true},
    {HTTP_POST, "/admin/certificates", NEED_OPERATOR, false, true},
    {HTTP_DELETE, "/admin/certificates", NEED_OPERATOR, false, false},
    {HTTP_POST, "/admin/certificates/edit", NEED_OPERATOR, false, true},
    {HTTP_DELETE, "/admin/certificates/purge", NEED_OPERATOR, false, false},
    {HTTP_GET, "/admin/certificates/export", NEED_OPERATOR, false, false},
    {HTTP_GET, "/admin/stats", NEED_OPERATOR, false, false},
    {HTTP_GET, "/cluster/topology", NEED_VALID_USER, false, false},
    {HTTP_GET, "/cluster/node-info", NEED_NONE, true, false},
    {HTTP_GET, "/info/tcp", NEED_VALID_USER, false, false}, /* RavenDB clients' health check */
    {HTTP_PUT, "/admin/cluster/node", NEED_CLUSTER_ADMIN, false, false},
    {HTTP_DELETE, "/admin/cluster/node", NEED_CLUSTER_ADMIN, false, false},
    {HTTP_GET, "/ca/certificate", NEED_NONE, true, false},
    {HTTP_GET, "/ca/crl", NEED_NONE, false, false},
    {HTTP_GET, "/admin/certificates/2fa/generate", NEED_OPERATOR, false, false},
    {HTTP_GET, "/authentication/2fa/configuration", NEED_NONE, true, false},
    {HTTP_POST, "/authentication/2fa", NEED_NONE, false, true},
    {HTTP_DELETE, "/authentication/2fa", NEED_NONE, false, false},
    {HTTP_GET, "/", NEED_NONE, true, false},
    {HTTP_GET, "/studio", NEED_NONE, true, false},
    {HTTP_GET, "/studio/*", NEED_NONE, true, false},
};
#define N_EXPECTED (sizeof expected / sizeof expected[0])

static void every_endpoint_routed_with_its_clearance(void **state)
{
    for (size_t i = 0; i < N_EXPECTED; i++) {
        bool known = false;
        const struct api_route *r = api_route_find(expected[i].method, expected[i].path, &known);
        if (r == NULL)
            fail_msg("%s %s is not routed", http_method_str(expected[i].method), expected[i].path);
        assert_true(known);
        assert_string_equal(r->path, expected[i].path);
        assert_int_equal(r->method, expected[i].method);
        assert_int_equal(r->need, expected[i].need);
        assert_int_equal(r->early, expected[i].early);
        assert_int_equal(r->max_body, expected[i].body ? API_BODY : API_NO_BODY);
        assert_non_null(r->fn);
    }
}

/* Nothing is routed that the list above does not name: a new endpoint comes with its line. */
static void no_unlisted_route(void **state)
{
    const struct api_routes *tables[] = {&api_cert_routes, &api_cluster_routes, &api_pki_routes,
                                         &api_twofa_routes, &api_studio_routes};
    size_t total = 0;
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        for (size_t i = 0; i < tables[t]->n; i++, total++) {
            const struct api_route *r = &tables[t]->v[i];
            bool listed = false;
            for (size_t k = 0; k < N_EXPECTED; k++)
                listed |= r->method == expected[k].method && strcmp(r->path, expected[k].path) == 0;
            if (!listed)
                fail_msg("%s %s is routed but not listed", http_method_str(r->method), r->path);
        }
    }
    assert_int_equal(total, N_EXPECTED);
}

static void unknown_paths_and_methods(void **state)
{
    bool known = true;
    assert_null(api_route_find(HTTP_GET, "/admin/certificatez", &known));
    assert_false(known); /* 404 */
    assert_null(api_route_find(HTTP_GET, "/admin/certificates/", &known));
    assert_false(known); /* the router strips trailing slashes before asking */
    assert_null(api_route_find(HTTP_GET, "/ADMIN/CERTIFICATES", &known));
    assert_false(known); /* paths are case-sensitive */
    assert_null(api_route_find(HTTP_GET, "", &known));
    assert_false(known);
    assert_null(api_route_find(HTTP_PATCH, "/admin/certificates", &known));
    assert_true(known); /* 405 */
    assert_null(api_route_find(HTTP_POST, "/certificates/whoami", &known));
    assert_true(known);
}

/* The Studio's files are one route for every path under /studio/, and nothing else. */
static void studio_files_under_one_route(void **state)
{
    bool known = false;
    const struct api_route *r = api_route_find(HTTP_GET, "/studio/studio.js", &known);
    assert_non_null(r);
    assert_string_equal(r->path, "/studio/*");
    assert_int_equal(r->need, NEED_NONE);
    assert_non_null(api_route_find(HTTP_GET, "/studio/no-such-file.js", &known));
    assert_null(api_route_find(HTTP_GET, "/studiox", &known));
    assert_false(known);
    assert_null(api_route_find(HTTP_GET, "/studio*", &known));
    assert_false(known);
    assert_null(api_route_find(HTTP_POST, "/studio/studio.js", &known));
    assert_true(known); /* 405: the Studio's files are only read */
    r = api_route_find(HTTP_GET, "/studio", &known);
    assert_non_null(r);
    assert_string_equal(r->path, "/studio");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_endpoint_routed_with_its_clearance),
        cmocka_unit_test(no_unlisted_route),
        cmocka_unit_test(unknown_paths_and_methods),
        cmocka_unit_test(studio_files_under_one_route),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
