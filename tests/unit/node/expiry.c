/* Expiry levels (node/expiry.c): RavenDB's warning 20 days before and error 3 days before, and
 * the core's count of the trust state's client certificates at each level, against a test
 * core (tests/unit/support/testcore.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ca/ca.h"
#include "node/expiry.h"
#include "tests/unit/support/testcore.h"

#define DAY CA_DAY_SECS

static void levels(void **state)
{
    const int64_t now = 1800000000;
    static const struct {
        int64_t left;
        enum node_expiry level;
    } v[] = {
        {365 * DAY, NODE_EXPIRY_OK},     {20 * DAY + 1, NODE_EXPIRY_OK},
        {20 * DAY, NODE_EXPIRY_WARNING}, {3 * DAY + 1, NODE_EXPIRY_WARNING},
        {3 * DAY, NODE_EXPIRY_ERROR},    {1, NODE_EXPIRY_ERROR},
        {0, NODE_EXPIRY_EXPIRED},        {-DAY, NODE_EXPIRY_EXPIRED},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        assert_int_equal(node_expiry_level(now + v[i].left, now), v[i].level);
    assert_string_equal(node_expiry_name(NODE_EXPIRY_WARNING), "Warning");
}

/* Client certificates at each level, counted by the core over a snapshot; node certificates
 * and a collection's secondaries are not counted as clients. */
static void report(void **state)
{
    struct tc_core t;
    assert_int_equal(tc_start(&t, "corvid-expiry"), 0);
    int64_t now = time(NULL);
    static const int64_t lefts[] = {300 * DAY, 10 * DAY, 15 * DAY, 2 * DAY};
    for (size_t i = 0; i < sizeof lefts / sizeof lefts[0]; i++) {
        EVP_PKEY *k = NULL;
        char name[16];
        snprintf(name, sizeof name, "c%zu", i);
        X509 *x = tc_client_cert(&t, &k, name, now - DAY, now + lefts[i], false);
        tc_register(&t, x, name, KV_CL_VALID_USER, NULL);
        X509_free(x);
        EVP_PKEY_free(k);
    }
    struct node_expiry_report r;
    node_expiry_get(t.n, &r);
    assert_int_equal(r.checked_ms, 0);
    node_expiry_check(t.n);
    for (node_expiry_get(t.n, &r); r.checked_ms == 0; node_expiry_get(t.n, &r))
        uv_run(node_loop(t.n), UV_RUN_ONCE);
    assert_int_equal(r.clients_warning, 2);
    assert_int_equal(r.clients_error, 1);
    assert_int_equal(r.clients_expired, 0);
    assert_true(r.node_not_after > now + 300 * DAY);
    json_t *o = node_expiry_json(&r, now);
    char *text = json_dumps(o, JSON_COMPACT);
    assert_non_null(
        strstr(text, "\"ClientCertificates\":{\"Warning\":2,\"Error\":1,\"Expired\":0}"));
    assert_non_null(strstr(text, "\"NodeCertificate\":{\"NotAfter\":\""));
    assert_non_null(strstr(text, "\"Level\":\"Ok\""));
    free(text);
    json_decref(o);
    assert_int_equal(tc_stop(&t), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(levels),
        cmocka_unit_test(report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
