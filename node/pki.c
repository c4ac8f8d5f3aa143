/* The CA resources: the issuing CA's chain and its CRL, signed once per CRL the trust state
 * defines and served from memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "node/resource.h"

static void h_ca_certificate(struct api *api, struct http_request *req, struct node_auth *a)
{
    struct node *n = api->n;
    struct node_issuer is;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (node_issuer_load(n, &is, errmsg) != 0) {
        http_respond_error(req, 503, "NoIssuer", "%s", errmsg);
        return;
    }
    struct cmn_buf pem;
    cmn_buf_init(&pem, false);
    int rv = ca_certs_to_pem(&is.chain, &pem);
    node_issuer_fini(&is);
    if (rv != 0)
        http_respond_error(req, 500, "InternalError", "cannot encode the chain");
    else
        http_respond(req, 200, "application/pem-certificate-chain", pem.data, pem.len, NULL);
    cmn_buf_fini(&pem);
    (void)a;
}

/* The CRL, signed once per CRL the trust state defines (kv_crl_state: a revocation, the
 * issuing CA, or the leader's hourly RefreshCRL) and served from memory: signing it per
 * request let anyone make the loop thread sign without end. */
struct api_crl {
    uint64_t index; /* kv_crl_state's: the entry whose CRL this is */
    struct cmn_buf der, pem;
};

void api_crl_forget(struct api *api)
{
    if (api->crl == NULL)
        return;
    cmn_buf_fini(&api->crl->der);
    cmn_buf_fini(&api->crl->pem);
    free(api->crl);
    api->crl = NULL;
}

/* Builds and signs the CRL from the trust state into out (DER and PEM). */
static int crl_build(struct node *n, const struct node_issuer *is, struct api_crl *out,
                     char *errmsg)
{
    struct kv_revoked *rev = NULL;
    size_t count = 0;
    int rv = kv_revoked_list(node_kv(n), &rev, &count, errmsg);
    struct ca_crl_entry *entries = calloc(count ? count : 1, sizeof *entries);
    for (size_t i = 0; rv == 0 && entries && i < count; i++) {
        entries[i].serial_hex = rev[i].serial;
        entries[i].revoked_at = rev[i].revoked_ms / 1000;
        entries[i].reason = rev[i].reason == 0 ? CA_CRL_REASON_NONE : rev[i].reason;
    }
    /* Number and dates from the committed state: every node signs the same CRL. */
    struct kv_crl_state crl = {0};
    if (rv == 0)
        rv = kv_crl_state_get(node_kv(n), &crl, errmsg);
    struct ca_crl_params p = {
        .entries = entries,
        .n = count,
        .this_update = crl.time_ms / 1000,
        .next_update = (crl.time_ms + NODE_CRL_VALID_MS) / 1000,
        .crl_number = crl.index,
    };
    struct ca_signer signer = {.cert = is->cert, .key = is->key};
    cmn_buf_init(&out->der, false);
    cmn_buf_init(&out->pem, false);
    if (rv == 0 && entries == NULL)
        rv = cmn_fail(errmsg, CMN_ENOMEM, "out of memory");
    if (rv == 0)
        rv = ca_crl_build(&p, &signer, &out->der, errmsg);
    if (rv == 0)
        rv = ca_crl_to_pem(out->der.data, out->der.len, &out->pem, errmsg);
    if (rv != 0) {
        cmn_buf_fini(&out->der);
        cmn_buf_fini(&out->pem);
    }
    out->index = crl.index;
    free(entries);
    free(rev);
    return rv;
}

static void h_ca_crl(struct api *api, struct http_request *req, struct node_auth *a)
{
    struct node *n = api->n;
    struct kv_crl_state state;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (node_revocations_pending(n) > 0) {
        /* A revocation the leader announced is in force here and not applied yet: the CRL of
         * the applied state would not list it (tools/chaos found one served so). */
        http_respond_error(req, 503, "NotReady",
                           "Node %s is applying a revocation: retry in a moment",
                           node_config(n)->tag);
        return;
    }
    if (kv_crl_state_get(node_kv(n), &state, errmsg) != 0) {
        http_respond_error(req, 503, "NoIssuer", "%s", errmsg);
        return;
    }
    if (api->crl && api->crl->index != state.index)
        api_crl_forget(api);
    struct api_crl fresh;
    struct api_crl *crl = api->crl;
    if (crl == NULL) {
        struct node_issuer is;
        if (node_issuer_load(n, &is, errmsg) != 0) {
            http_respond_error(req, 503, "NoIssuer", "%s", errmsg);
            return;
        }
        int rv = crl_build(n, &is, &fresh, errmsg);
        node_issuer_fini(&is);
        if (rv != 0) {
            http_respond_error(req, 500, "InternalError", "cannot build the CRL: %s", errmsg);
            return;
        }
        crl = &fresh;
        if (!node_stopping(n) && (api->crl = malloc(sizeof *api->crl)) != NULL) {
            *api->crl = fresh;
            crl = api->crl;
        }
    }
    char fmt[16] = "";
    bool want_pem =
        http_query(req, "format", fmt, sizeof fmt, NULL) == 1 && strcasecmp(fmt, "pem") == 0;
    if (want_pem)
        http_respond(req, 200, "application/x-pem-file", crl->pem.data, crl->pem.len, NULL);
    else
        http_respond(req, 200, "application/pkix-crl", crl->der.data, crl->der.len, NULL);
    if (crl == &fresh) {
        cmn_buf_fini(&fresh.der);
        cmn_buf_fini(&fresh.pem);
    }
    (void)a;
}

static const struct api_route routes[] = {
    {HTTP_GET, "/ca/certificate", NEED_NONE, h_ca_certificate, true, API_NO_BODY},
    {HTTP_GET, "/ca/crl", NEED_NONE, h_ca_crl, false, API_NO_BODY},
};
const struct api_routes api_pki_routes = {routes, sizeof routes / sizeof routes[0]};
