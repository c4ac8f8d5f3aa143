/* The API's handlers (node/certs.c, node/cluster.c) against a test core
 * (tests/unit/support/testcore.h) that leads a one-node cluster: every validation refusal with
 * its status and message, the trust state unchanged after each; clearance refusals; and a
 * registration, a read and a revocation through Raft. Requests are made in memory and their
 * answers taken by an http_sink: the server and authorization (tested elsewhere) are skipped,
 * the caller's verdict passed in. Last, what RavenDB's Node.js client needs of the answers
 * (tests/compat runs the client itself). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <http_parser.h>

#include "ca/ca.h"
#include "ca/encode.h"
#include "node/auth.h"
#include "node/resource.h"
#include "raft/rft.h"
#include "tests/unit/support/testcore.h"

/* A thumbprint nobody has. */
#define ZERO_THUMB "0000000000000000000000000000000000000000"

static struct tc_core T;
static struct api API;
static struct node_auth ADMIN, OPERATOR;
static X509 *ADMIN_CERT; /* a registered ClusterAdmin client */

struct answer {
    bool done;
    int status;
    char body[8192];
};

static void sink_fn(void *ctx, struct http_request *req, int status, const char *content_type,
                    const void *body, size_t len, const char *extra_headers)
{
    struct answer *a = ctx;
    assert_false(a->done); /* answered once */
    a->done = true;
    a->status = status;
    size_t n = len < sizeof a->body - 1 ? len : sizeof a->body - 1;
    if (n)
        memcpy(a->body, body, n);
    a->body[n] = '\0';
    (void)req, (void)content_type, (void)extra_headers;
}

/* Runs the handler of method path for caller a, with query and body (either NULL), and the
 * loop until it answered; the status. */
static int call(int method, const char *path, const char *query, const char *body,
                struct node_auth *a, struct answer *ans)
{
    bool known;
    const struct api_route *r = api_route_find(method, path, &known);
    assert_non_null(r);
    struct http_request *req = calloc(1, sizeof *req);
    assert_non_null(req);
    struct http_sink sink = {sink_fn, ans};
    memset(ans, 0, sizeof *ans);
    req->sink = &sink;
    req->method = method;
    req->method_name = http_method_str(method);
    snprintf(req->path, sizeof req->path, "%s", path);
    snprintf(req->query, sizeof req->query, "%s", query ? query : "");
    snprintf(req->content_type, sizeof req->content_type, "application/json");
    cmn_buf_init(&req->body, true);
    if (body)
        assert_int_equal(cmn_buf_append(&req->body, body, strlen(body)), 0);
    req->route = r;
    r->fn(&API, req, a);
    while (!ans->done)
        uv_run(node_loop(T.n), UV_RUN_ONCE);
    cmn_buf_fini(&req->body);
    free(req);
    return ans->status;
}

/* call(), and the answer's status and message (a substring) checked, with the trust state the
 * same afterwards. */
static void refused(int method, const char *path, const char *query, const char *body,
                    struct node_auth *a, int status, const char *message)
{
    uint8_t before[32], after[32];
    assert_int_equal(kv_state_hash(node_kv(T.n), before, NULL), 0);
    struct answer ans;
    int got = call(method, path, query, body, a, &ans);
    if (got != status || strstr(ans.body, message) == NULL)
        fail_msg("%s %s?%s %s: got %d %s, expected %d with \"%s\"", http_method_str(method), path,
                 query ? query : "", body ? body : "", got, ans.body, status, message);
    assert_int_equal(kv_state_hash(node_kv(T.n), after, NULL), 0);
    assert_memory_equal(before, after, 32);
}

static char *b64_der(X509 *x)
{
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    assert_true(len > 0);
    struct cmn_buf b;
    cmn_buf_init(&b, false);
    assert_int_equal(ca_b64_encode(der, (size_t)len, &b), 0);
    OPENSSL_free(der);
    assert_int_equal(cmn_buf_append(&b, "", 1), 0);
    size_t n;
    return (char *)cmn_buf_release(&b, &n);
}

static int setup(void **state)
{
    if (tc_start(&T, "corvid-handlers") != 0)
        return -1;
    API.n = T.n;
    struct rft_status st;
    for (rft_status(node_rft(T.n), &st); !st.ready; rft_status(node_rft(T.n), &st))
        uv_run(node_loop(T.n), UV_RUN_ONCE); /* until A leads its one-node cluster */
    int64_t now = time(NULL);
    EVP_PKEY *k1 = NULL, *k2 = NULL;
    ADMIN_CERT = tc_client_cert(&T, &k1, "admin", now - 3600, now + 86400 * 30, false);
    X509 *op = tc_client_cert(&T, &k2, "operator", now - 3600, now + 86400 * 30, false);
    tc_register(&T, ADMIN_CERT, "admin", KV_CL_CLUSTER_ADMIN, NULL);
    tc_register(&T, op, "operator", KV_CL_OPERATOR, NULL);
    node_auth_compute(T.n, ADMIN_CERT, now, &ADMIN);
    node_auth_compute(T.n, op, now, &OPERATOR);
    X509_free(op);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    if (ADMIN.status != AUTH_CLUSTER_ADMIN || OPERATOR.status != AUTH_OPERATOR)
        return -1;
    *state = &T;
    return 0;
}

static int teardown(void **state)
{
    kv_cert_fini(&ADMIN.def);
    kv_cert_fini(&OPERATOR.def);
    X509_free(ADMIN_CERT);
    return tc_stop(&T);
}

/* PUT, POST and edit read a JSON object. */
static void bodies_must_be_json_objects(void **state)
{
    static const char *paths[] = {"/admin/certificates", "/admin/certificates",
                                  "/admin/certificates/edit"};
    static const int methods[] = {HTTP_PUT, HTTP_POST, HTTP_POST};
    for (size_t i = 0; i < 3; i++) {
        refused(methods[i], paths[i], NULL, NULL, &ADMIN, 400, "The request needs a JSON body");
        refused(methods[i], paths[i], NULL, "{\"Name\":", &ADMIN, 400, "Invalid JSON body");
        refused(methods[i], paths[i], NULL, "[1]", &ADMIN, 400, "Invalid JSON body");
    }
}

static void registration_refusals(void **state)
{
    static const struct {
        const char *body;
        int status;
        const char *message;
    } cases[] = {
        {"{}", 400, "Name is a required field in the certificate definition"},
        {"{\"Name\":\"\"}", 400, "Name is a required field"},
        {"{\"Name\":7}", 400, "Name is a required field"},
        {"{\"Name\":\"x\"}", 400,
         "Certificate is a mandatory property when registering a certificate"},
        {"{\"Name\":\"x\",\"Certificate\":\"AAAA\",\"Password\":1,\"Permissions\":{}}", 400,
         "Password must be a string"},
        {"{\"Name\":\"x\",\"Certificate\":\"AAAA\",\"SecurityClearance\":\"Boss\","
         "\"Permissions\":{}}",
         400, "SecurityClearance must be ClusterAdmin, ClusterNode, Operator or ValidUser"},
        {"{\"Name\":\"x\",\"Certificate\":\"AAAA\",\"SecurityClearance\":"
         "\"UnauthenticatedClients\",\"Permissions\":{}}",
         400, "SecurityClearance must be"},
        {"{\"Name\":\"x\",\"Certificate\":\"AAAA\"}", 400,
         "Permissions is a required field in the certificate definition"},
        {"{\"Name\":\"x\",\"Certificate\":\"AAAA\",\"Permissions\":[]}", 400,
         "Permissions must be an object of database name to access"},
        {"{\"Name\":\"x\",\"Certificate\":\"AAAA\",\"Permissions\":{\"a/b\":\"Read\"}}", 400,
         "Permissions: invalid database name"},
        {"{\"Name\":\"x\",\"Certificate\":\"AAAA\",\"Permissions\":{\"db\":\"Write\"}}", 400,
         "Permissions: access must be ReadWrite, Admin or Read"},
        {"{\"Name\":\"x\",\"Certificate\":\"!!not base64!!\",\"Permissions\":{}}", 400,
         "Unable to parse the Certificate property, expected a Base64 value"},
        {"{\"Name\":\"x\",\"Certificate\":\"AAAA\",\"Permissions\":{}}", 400,
         "Unable to load the provided certificate."},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        refused(HTTP_PUT, "/admin/certificates", NULL, cases[i].body, &ADMIN, cases[i].status,
                cases[i].message);

    /* The node's own certificate, and a clearance above the caller's. */
    char *own = b64_der(node_cert(T.n));
    char body[8192];
    snprintf(body, sizeof body, "{\"Name\":\"me\",\"Certificate\":\"%s\",\"Permissions\":{}}", own);
    refused(HTTP_PUT, "/admin/certificates", NULL, body, &ADMIN, 400,
            "You are trying to import the same server certificate");
    snprintf(body, sizeof body,
             "{\"Name\":\"up\",\"Certificate\":\"%s\",\"SecurityClearance\":\"ClusterAdmin\","
             "\"Permissions\":{}}",
             own);
    refused(HTTP_PUT, "/admin/certificates", NULL, body, &OPERATOR, 403,
            "Cannot register the certificate 'up' with 'ClusterAdmin' security clearance because "
            "the current client certificate being used has a lower clearance: Operator");
    free(own);
}

static void generation_refusals(void **state)
{
    char long_name[80], body[512];
    memset(long_name, 'n', 65);
    long_name[65] = '\0';
    snprintf(body, sizeof body, "{\"Name\":\"%s\"}", long_name);
    refused(HTTP_POST, "/admin/certificates", NULL, body, &ADMIN, 400,
            "Name is longer than 64 characters");
    refused(HTTP_POST, "/admin/certificates", NULL, "{}", &ADMIN, 400,
            "Name is a required field in the certificate definition");
    refused(HTTP_POST, "/admin/certificates", NULL, "{\"Name\":\"g\",\"KeyType\":\"DSA\"}", &ADMIN,
            400, "KeyType must be EC-P256, EC-P384, RSA-2048, RSA-3072 or RSA-4096");
    refused(HTTP_POST, "/admin/certificates", NULL, "{\"Name\":\"g\",\"NotAfter\":\"tomorrow\"}",
            &ADMIN, 400, "NotAfter must be a date (YYYY-MM-DD");
    refused(HTTP_POST, "/admin/certificates", NULL, "{\"Name\":\"g\",\"NotAfter\":\"2001-01-01\"}",
            &ADMIN, 400, "The certificate expiration date must be in the future.");
    refused(HTTP_POST, "/admin/certificates", NULL,
            "{\"Name\":\"g\",\"Permissions\":{\"db\":\"All\"}}", &ADMIN, 400,
            "Permissions: access must be");
    refused(HTTP_POST, "/admin/certificates", NULL,
            "{\"Name\":\"g\",\"SecurityClearance\":\"ClusterNode\"}", &OPERATOR, 403,
            "Cannot generate the certificate 'g' with 'ClusterNode' security clearance");
}

static void revocation_and_edit_refusals(void **state)
{
    refused(HTTP_DELETE, "/admin/certificates", NULL, NULL, &ADMIN, 400,
            "Query string value 'thumbprint' must appear exactly once");
    refused(HTTP_DELETE, "/admin/certificates", "thumbprint=a&thumbprint=b", NULL, &ADMIN, 400,
            "must appear exactly once");
    refused(HTTP_DELETE, "/admin/certificates", "thumbprint=" ZERO_THUMB, NULL, &ADMIN, 404,
            "doesn't exist in the cluster");
    char q[128];
    snprintf(q, sizeof q, "thumbprint=%s", ADMIN.thumb);
    refused(HTTP_DELETE, "/admin/certificates", q, NULL, &ADMIN, 403,
            "Cannot delete admin because it's the current client certificate being used");
    refused(HTTP_DELETE, "/admin/certificates", q, NULL, &OPERATOR, 403,
            "Cannot delete the certificate 'admin' with 'ClusterAdmin' security clearance");

    refused(HTTP_POST, "/admin/certificates/edit", NULL, "{\"Thumbprint\":\"xyz\"}", &ADMIN, 400,
            "Thumbprint is a required field (40 hex digits)");
    refused(HTTP_POST, "/admin/certificates/edit", NULL,
            "{\"Thumbprint\":\"" ZERO_THUMB "\",\"Name\":\"e\",\"Permissions\":{}}", &ADMIN, 404,
            "Cannot edit permissions for certificate with thumbprint '" ZERO_THUMB
            "'. It doesn't exist in the cluster.");
    char body[256];
    snprintf(body, sizeof body,
             "{\"Thumbprint\":\"%s\",\"Name\":\"admin\",\"SecurityClearance\":\"Operator\","
             "\"Permissions\":{}}",
             ADMIN.thumb);
    refused(HTTP_POST, "/admin/certificates/edit", NULL, body, &OPERATOR, 403,
            "Cannot edit the certificate 'admin' with 'ClusterAdmin' security clearance");
}

static void listing_refusals(void **state)
{
    refused(HTTP_GET, "/admin/certificates", "start=-1", NULL, &OPERATOR, 400,
            "'start' must be a number from 0 to");
    refused(HTTP_GET, "/admin/certificates", "pageSize=ten", NULL, &OPERATOR, 400,
            "'pageSize' must be a number from 0 to 1000000");
    refused(HTTP_GET, "/admin/certificates", "expiringWithinDays=99999", NULL, &OPERATOR, 400,
            "'expiringWithinDays' must be a number of days from 0 to 36500");
    refused(HTTP_GET, "/admin/certificates", "thumbprint=" ZERO_THUMB, NULL, &OPERATOR, 404,
            "Certificate " ZERO_THUMB " was not found");
}

static void membership_refusals(void **state)
{
    refused(HTTP_PUT, "/admin/cluster/node", NULL, NULL, &ADMIN, 400,
            "PUT /admin/cluster/node needs ?url=https://HOST:PORT[&tag=TAG]");
    refused(HTTP_PUT, "/admin/cluster/node", "url=https://127.0.0.1:1&tag=a1", NULL, &ADMIN, 400,
            "'a1' is not a node tag (1 to 4 letters A-Z)");
    refused(HTTP_PUT, "/admin/cluster/node", "url=https://127.0.0.1:1&tag=A", NULL, &ADMIN, 409,
            "Node tag A is already in use");
    refused(HTTP_DELETE, "/admin/cluster/node", NULL, NULL, &ADMIN, 400,
            "DELETE /admin/cluster/node needs ?nodeTag=TAG");
}

/* Every read-only endpoint with the Nth read of the trust state failing, N = 1, 2, … until
 * the request runs clean: a failed read is answered 500 with its reason, never a 200 that
 * leaves out what could not be read. */
static void read_failures_answer_500(void **state)
{
    char admin_q[128];
    snprintf(admin_q, sizeof admin_q, "thumbprint=%s", ADMIN.thumb);
    static const struct {
        int method;
        const char *path;
        int clean; /* the status when nothing fails */
    } reqs[] = {
        {HTTP_GET, "/admin/certificates", 200},        {HTTP_GET, "/admin/certificates", 200},
        {HTTP_GET, "/admin/certificates/export", 200}, {HTTP_GET, "/cluster/topology", 200},
        {HTTP_GET, "/certificates/whoami", 200},
    };
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        const char *query = i == 1 ? admin_q : NULL;
        unsigned nth = 1;
        for (;; nth++) {
            struct answer ans;
            kv_fail_read_at(node_kv(T.n), nth);
            int got = call(reqs[i].method, reqs[i].path, query, NULL, &OPERATOR, &ans);
            bool fired = kv_fail_read_at(node_kv(T.n), 0) == 0;
            if (!fired) {
                assert_int_equal(got, reqs[i].clean);
                break;
            }
            if (got != 500 || strstr(ans.body, "storage") == NULL)
                fail_msg("%s %s?%s with read %u failing: %d %s", http_method_str(reqs[i].method),
                         reqs[i].path, query ? query : "", nth, got, ans.body);
        }
        if (reqs[i].method == HTTP_GET && strcmp(reqs[i].path, "/certificates/whoami") != 0)
            assert_true(nth > 1); /* it reads the state: the sweep did fail something */
    }
}

/* A registration, its read and its revocation, each through Raft. */
static void register_read_revoke(void **state)
{
    int64_t now = time(NULL);
    EVP_PKEY *k = NULL;
    X509 *x = tc_client_cert(&T, &k, "reader", now - 60, now + 86400, false);
    char *der = b64_der(x);
    char tp[CA_THUMBPRINT_SIZE];
    assert_int_equal(ca_thumbprint(x, tp), 0);
    char body[8192], q[128];
    snprintf(body, sizeof body,
             "{\"Name\":\"reader\",\"Certificate\":\"%s\",\"Permissions\":{\"db1\":\"Read\"}}",
             der);
    struct answer ans;
    assert_int_equal(call(HTTP_PUT, "/admin/certificates", NULL, body, &OPERATOR, &ans), 201);
    snprintf(q, sizeof q, "thumbprint=%s", tp);
    assert_int_equal(call(HTTP_GET, "/admin/certificates", q, NULL, &OPERATOR, &ans), 200);
    assert_non_null(strstr(ans.body, "\"Name\":\"reader\""));
    assert_non_null(strstr(ans.body, "\"SecurityClearance\":\"ValidUser\""));
    assert_non_null(strstr(ans.body, "\"db1\":\"Read\""));
    assert_int_equal(call(HTTP_DELETE, "/admin/certificates", q, NULL, &OPERATOR, &ans), 204);
    refused(HTTP_GET, "/admin/certificates", q, NULL, &OPERATOR, 404, "was not found");
    struct node_auth a = {0};
    node_auth_compute(T.n, x, now, &a);
    assert_int_equal(a.status, AUTH_REVOKED);
    kv_cert_fini(&a.def);
    free(der);
    X509_free(x);
    EVP_PKEY_free(k);
}

/* ---- what RavenDB's Node.js client needs of the answers ---- */

static json_t *body_json(const struct answer *ans)
{
    json_error_t e;
    json_t *o = json_loads(ans->body, 0, &e);
    if (!json_is_object(o))
        fail_msg("not a JSON object (%s): %s", e.text, ans->body);
    return o;
}

static const char *str_at(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    if (v == NULL)
        fail_msg("no string %s in %s", key, json_dumps(o, JSON_COMPACT));
    return v;
}

/* The client shows an error's Error field (Message alone surfaces as an empty error). */
static void errors_carry_ravendb_envelope(void **state)
{
    struct answer ans;
    assert_int_equal(
        call(HTTP_GET, "/admin/certificates", "thumbprint=" ZERO_THUMB, NULL, &OPERATOR, &ans),
        404);
    json_t *o = body_json(&ans);
    assert_string_equal(str_at(o, "Type"), "NotFound");
    assert_string_equal(str_at(o, "Message"), "Certificate " ZERO_THUMB " was not found");
    assert_string_equal(str_at(o, "Error"), str_at(o, "Message"));
    assert_string_equal(str_at(o, "Url"), "/admin/certificates");
    json_decref(o);
}

/* GetCertificatesOperation() without arguments sends start=undefined&pageSize=undefined. */
static void listing_takes_undefined_as_the_default(void **state)
{
    static const char *pairs[][2] = {
        {"metadataOnly=true", "metadataOnly=true&start=undefined&pageSize=undefined"},
        {"metadataOnly=true&start=1", "metadataOnly=true&start=1&pageSize=undefined"},
        {"metadataOnly=true&pageSize=1", "metadataOnly=true&start=undefined&pageSize=1"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        struct answer plain, undef;
        assert_int_equal(
            call(HTTP_GET, "/admin/certificates", pairs[i][0], NULL, &OPERATOR, &plain), 200);
        assert_int_equal(
            call(HTTP_GET, "/admin/certificates", pairs[i][1], NULL, &OPERATOR, &undef), 200);
        assert_string_equal(undef.body, plain.body);
        assert_non_null(strstr(plain.body, "\"Results\":[{"));
    }
    refused(HTTP_GET, "/admin/certificates", "start=undefinedx", NULL, &OPERATOR, 400,
            "'start' must be a number from 0 to");
    refused(HTTP_GET, "/admin/certificates", "pageSize=null", NULL, &OPERATOR, 400,
            "'pageSize' must be a number from 0 to 1000000");
}

static void apply_node_record(bool put)
{
    struct kv_cmd c;
    kv_cmd_init(&c, put ? KV_CMD_PUT_NODE : KV_CMD_REMOVE_NODE);
    snprintf(c.u.node.tag, sizeof c.u.node.tag, "A");
    if (put) {
        assert_non_null(c.u.node.server_url = strdup(node_config(T.n)->public_url));
        assert_non_null(c.u.node.tcp_url = strdup(node_config(T.n)->tcp_url));
        memcpy(c.u.node.thumbprint, node_thumb(T.n), sizeof c.u.node.thumbprint);
    }
    tc_apply(&T, &c);
}

/* The topology's top-level Status (an object) and Etag (a number that grows with every
 * committed change), and the members listed where the client sends requests only with a URL. */
static void topology_for_ravendb_clients(void **state)
{
    struct answer ans;
    apply_node_record(true);
    assert_int_equal(call(HTTP_GET, "/cluster/topology", NULL, NULL, &OPERATOR, &ans), 200);
    json_t *o = body_json(&ans);
    assert_true(json_is_object(json_object_get(o, "Status")));
    assert_true(json_is_integer(json_object_get(o, "Etag")));
    json_int_t etag = json_integer_value(json_object_get(o, "Etag"));
    assert_true(etag > 0);
    json_t *topo = json_object_get(o, "Topology");
    assert_string_equal(str_at(json_object_get(topo, "Members"), "A"),
                        node_config(T.n)->public_url);
    assert_true(json_is_object(json_object_get(topo, "Watchers")));
    assert_string_equal(str_at(o, "NodeTag"), "A");
    json_decref(o);

    apply_node_record(false); /* a voter without its record: no URL to send requests to */
    assert_int_equal(call(HTTP_GET, "/cluster/topology", NULL, NULL, &OPERATOR, &ans), 200);
    o = body_json(&ans);
    topo = json_object_get(o, "Topology");
    assert_int_equal(json_object_size(json_object_get(topo, "Members")), 0);
    assert_string_equal(str_at(json_object_get(topo, "AllNodes"), "A"), "");
    json_int_t later = json_integer_value(json_object_get(o, "Etag"));
    assert_true(later > etag);
    json_decref(o);
    apply_node_record(true);
}

/* The health check of a node the client saw fail: any JSON object with 200 takes it back. */
static void tcp_info_answers_the_health_check(void **state)
{
    struct answer ans;
    assert_int_equal(call(HTTP_GET, "/info/tcp", "tcp=health-check", NULL, &OPERATOR, &ans), 200);
    json_t *o = body_json(&ans);
    assert_string_equal(str_at(o, "NodeTag"), "A");
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bodies_must_be_json_objects),
        cmocka_unit_test(registration_refusals),
        cmocka_unit_test(generation_refusals),
        cmocka_unit_test(revocation_and_edit_refusals),
        cmocka_unit_test(listing_refusals),
        cmocka_unit_test(membership_refusals),
        cmocka_unit_test(read_failures_answer_500),
        cmocka_unit_test(register_read_revoke),
        cmocka_unit_test(errors_carry_ravendb_envelope),
        cmocka_unit_test(listing_takes_undefined_as_the_default),
        cmocka_unit_test(topology_for_ravendb_clients),
        cmocka_unit_test(tcp_info_answers_the_health_check),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
