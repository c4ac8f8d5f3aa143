/* Two-factor authentication, RavenDB's endpoints (reference section 7) with the session
 * replicated through Raft: one login holds on every node and across restarts, a logout ends it
 * everywhere, a code is taken once on any node, and five wrong codes a minute lock the
 * certificate for the rest of that minute. The node that checks the code proposes the outcome;
 * apply (storage/apply.c) decides replay and the limit, the same on every node. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "ca/totp.h"
#include "common/env.h"
#include "common/log.h"
#include "common/qr.h"
#include "net/url.h"
#include "node/config.h"
#include "node/resource.h"

#define COOKIE_BYTES 32 /* the cookie: 256 random bits, hex */
#define MIN_MS       60000

#define TYPE "TwoFactorAuthentication"

/* The issuer shown by authenticator apps: the ServerUrl's host without its first label, as
 * RavenDB names it (a.cluster.example.com: cluster.example.com); "Corvid" for an IP address or
 * a one-label name. */
static void issuer_name(struct node *n, char *out, size_t cap)
{
    struct net_url u;
    const char *dot;
    snprintf(out, cap, "Corvid");
    if (net_url_parse(node_config(n)->public_url, 0, &u, NULL) == 0 && u.family == AF_UNSPEC &&
        (dot = strchr(u.host, '.')) != NULL && dot[1] != '\0')
        snprintf(out, cap, "%s", dot + 1);
}

/* GET /admin/certificates/2fa/generate[?name=NAME][&format=svg]: a new key (stored nowhere:
 * it is sent back as TwoFactorAuthenticationKey), its otpauth:// URI and the URI's QR code. */
static void h_generate(struct api *api, struct http_request *req, struct node_auth *a)
{
    char secret[CA_TOTP_SECRET_B32 + 1], name[KV_NAME_MAX + 1] = "", issuer[256], errmsg[256];
    char ename[3 * sizeof name], eissuer[3 * sizeof issuer], fmt[16] = "";
    if (http_query(req, "name", name, sizeof name, NULL) < 0 ||
        http_query(req, "format", fmt, sizeof fmt, NULL) < 0) {
        http_respond_error(req, 400, "BadRequest", "bad query string");
        return;
    }
    if (ca_totp_secret_new(&cmn_rng_system, secret, errmsg) != 0) {
        http_respond_error(req, 500, "InternalError", "%s", errmsg);
        return;
    }
    issuer_name(api->n, issuer, sizeof issuer);
    http_urlencode(name[0] ? name : "client", ename, sizeof ename);
    http_urlencode(issuer, eissuer, sizeof eissuer);
    struct cmn_buf uri, svg;
    cmn_buf_init(&uri, true);
    cmn_buf_init(&svg, false);
    int rv = cmn_buf_printf(&uri, "otpauth://totp/%s:%s?secret=%s&issuer=%s", eissuer, ename,
                            secret, eissuer);
    if (rv == 0)
        rv = cmn_qr_svg((const char *)uri.data, &svg, errmsg);
    if (rv != 0) {
        http_respond_error(req, 500, "InternalError", "cannot make the QR code");
    } else if (strcasecmp(fmt, "svg") == 0) {
        http_respond(req, 200, "image/svg+xml", svg.data, svg.len, "Cache-Control: no-store\r\n");
    } else {
        api_respond_json(req, 200,
                         json_pack("{s:s, s:s, s:s}", "Secret", secret, "QrCodeUri",
                                   (const char *)uri.data, "QrCodeSvg", (const char *)svg.data));
    }
    OPENSSL_cleanse(secret, sizeof secret);
    cmn_buf_fini(&uri);
    cmn_buf_fini(&svg);
    (void)a;
}

/* GET /authentication/2fa/configuration */
static void h_configuration(struct api *api, struct http_request *req, struct node_auth *a)
{
    const struct node_config *cfg = node_config(api->n);
    api_respond_json(req, 200,
                     json_pack("{s:i, s:i}", "DefaultTwoFactorSessionDurationInMin",
                               cfg->twofa_default_min, "MaxTwoFactorSessionDurationInMin",
                               cfg->twofa_max_min));
    (void)a;
}

/* The caller, registered with a key: true, or answered with 400. */
static bool has_key(struct http_request *req, const struct node_auth *a)
{
    if (a->status == AUTH_NO_CERT)
        http_respond_error_h(req, 400, NULL, TYPE, "This endpoint needs a client certificate");
    else if (!a->registered)
        http_respond_error_h(req, 400, NULL, TYPE, "The client certificate '%s' is not registered",
                             a->label);
    else if (a->def.twofa_key == NULL)
        http_respond_error_h(req, 400, NULL, TYPE,
                             "The client certificate '%s' does not use two-factor authentication",
                             a->label);
    else
        return true;
    return false;
}

/* 429 with how long the certificate is locked. */
static void locked(struct http_request *req, const char *label, int64_t ms)
{
    long long secs = (ms + 999) / 1000;
    char extra[64];
    snprintf(extra, sizeof extra, "Retry-After: %lld\r\n", secs);
    http_respond_error_h(req, 429, extra, TYPE,
                         "Too many wrong codes for the certificate '%s': try again in %lld seconds",
                         label, secs);
}

struct login {
    struct http_request *req;
    struct node *n;
    char thumb[CA_THUMBPRINT_SIZE]; /* the caller's, lower case */
    char label[300];
    bool wrong;      /* proposed as a wrong code */
    int minutes;     /* the session */
    bool has_limits; /* and its cookie: */
    char cookie[2 * COOKIE_BYTES + 1];
};

static void login_free(struct login *l)
{
    OPENSSL_cleanse(l->cookie, sizeof l->cookie);
    free(l);
}

static void login_done(void *ctx, int status, const struct kv_result *res, const char *errmsg)
{
    struct login *l = ctx;
    struct http_request *req = l->req;
    if (l->wrong) {
        /* Counted (or not, when the write failed): either way the code was wrong. */
        if (status != 0)
            CMN_WARN("HTTP-2FA", "a wrong code not counted: %s", errmsg);
        http_respond_error_h(req, 406, NULL, TYPE, "Wrong token provided for %s", l->label);
    } else if (status == CMN_EBUSY) {
        http_respond_error_h(req, 503, NULL, TYPE, "%s", errmsg);
    } else if (status != 0) {
        http_respond_error_h(req, 500, NULL, TYPE, "%s", errmsg);
    } else if (res->rejected && res->code == KV_REJ_LIMIT) {
        struct kv_twofa t;
        int64_t ms = kv_twofa_get(node_kv(l->n), l->thumb, &t, NULL) == 0
                         ? kv_twofa_locked_ms(&t, cmn_now_ms(&cmn_clock_system))
                         : 0;
        locked(req, l->label, ms > 0 ? ms : 1000);
    } else if (res->rejected) {
        http_respond_error_h(req, res->code == KV_REJ_CONFLICT ? 406 : 400, NULL, TYPE, "%s",
                             res->reason);
    } else {
        char extra[512] = "";
        if (l->has_limits)
            snprintf(extra, sizeof extra,
                     "Set-Cookie: " AUTH_2FA_COOKIE "=%s; Path=/; Max-Age=%d; HttpOnly; Secure; "
                     "SameSite=Strict\r\n",
                     l->cookie, l->minutes * 60);
        http_respond(req, 202, NULL, NULL, 0, extra[0] ? extra : NULL);
        OPENSSL_cleanse(extra, sizeof extra);
    }
    login_free(l);
}

/* The code of the body's Token: a string or a number (RavenDB's clients send either). */
static bool token_of(json_t *body, char out[CA_TOTP_DIGITS + 1])
{
    json_t *v = json_object_get(body, "Token");
    const char *s = json_string_value(v);
    if (s && ca_totp_code_form(s)) {
        memcpy(out, s, CA_TOTP_DIGITS + 1);
        return true;
    }
    if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) < 1000000) {
        snprintf(out, CA_TOTP_DIGITS + 1, "%06lld", (long long)json_integer_value(v));
        return true;
    }
    return false;
}

/* POST /authentication/2fa?hasLimits=&sessionDurationInMin= {"Token": …} */
static void h_login(struct api *api, struct http_request *req, struct node_auth *a)
{
    struct node *n = api->n;
    const struct node_config *cfg = node_config(n);
    if (!has_key(req, a))
        return;
    char dur[16];
    int minutes = cfg->twofa_default_min,
        rc = http_query(req, "sessionDurationInMin", dur, sizeof dur, NULL);
    if (rc == 1) {
        char *end;
        long v = strtol(dur, &end, 10);
        minutes = *end || v < 1 ? -1 : v > cfg->twofa_max_min ? 0 : (int)v;
    }
    if (rc < 0 || minutes < 0) {
        http_respond_error_h(req, 400, NULL, TYPE,
                             "sessionDurationInMin must be a number of minutes from 1 to %d",
                             cfg->twofa_max_min);
        return;
    }
    if (minutes == 0) {
        http_respond_error_h(
            req, 400, NULL, TYPE,
            "The requested session duration is longer than the maximum of %d minutes "
            "(Security.TwoFactor.MaxSessionDurationInMin)",
            cfg->twofa_max_min);
        return;
    }
    json_t *body;
    if (!api_body_json(req, &body))
        return;
    char code[CA_TOTP_DIGITS + 1];
    bool have_code = token_of(body, code);
    json_decref(body);
    if (!have_code) {
        http_respond_error_h(req, 400, NULL, TYPE,
                             "Token must be the %d-digit code of the authenticator app",
                             CA_TOTP_DIGITS);
        return;
    }
    int64_t now = cmn_now_ms(&cmn_clock_system);
    struct kv_twofa t;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    int rv = kv_twofa_get(node_kv(n), a->thumb, &t, errmsg);
    if (rv != 0 && rv != CMN_ENOTFOUND) {
        http_respond_error_h(req, 500, NULL, TYPE, "%s", errmsg);
        return;
    }
    int64_t lock = kv_twofa_locked_ms(&t, now);
    if (lock > 0) { /* refused before the code is even looked at */
        locked(req, a->label, lock);
        return;
    }
    char key[CA_TOTP_MAX_B32 + 1];
    uint64_t step = 0;
    rv = node_totp_open(n, a->def.twofa_key, key, sizeof key, errmsg);
    if (rv != 0) {
        CMN_ERROR("HTTP-2FA", "%s: %s", a->thumb_upper, errmsg);
        http_respond_error_h(req, 500, NULL, TYPE,
                             "The two-factor key of this certificate cannot be opened here");
        return;
    }
    rv = ca_totp_verify(key, now / 1000, code, &step, errmsg);
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(code, sizeof code);
    if (rv == CMN_EINVALID) { /* the code is checked above: the stored key is not base32 */
        CMN_ERROR("HTTP-2FA", "%s: %s", a->thumb_upper, errmsg);
        http_respond_error_h(req, 500, NULL, TYPE,
                             "The two-factor key of this certificate is not usable");
        return;
    }
    struct login *l = calloc(1, sizeof *l);
    if (l == NULL) {
        http_respond_error_h(req, 500, NULL, TYPE, "out of memory");
        return;
    }
    l->req = req;
    l->n = n;
    memcpy(l->thumb, a->thumb, sizeof l->thumb);
    snprintf(l->label, sizeof l->label, "%s", a->label);
    l->wrong = rv != 0;
    l->minutes = minutes;
    l->has_limits = http_query_bool(req, "hasLimits", true);
    struct kv_cmd cmd;
    kv_cmd_init(&cmd, l->wrong ? KV_CMD_TWOFA_FAIL : KV_CMD_TWOFA_LOGIN);
    memcpy(cmd.u.twofa.thumbprint, a->thumb, sizeof cmd.u.twofa.thumbprint);
    cmd.u.twofa.step = step;
    cmd.u.twofa.expires_ms = now + (int64_t)minutes * MIN_MS;
    cmd.u.twofa.has_limits = l->has_limits;
    if (l->has_limits) {
        uint8_t raw[COOKIE_BYTES];
        if (cmn_random(&cmn_rng_system, raw, sizeof raw) != 0 ||
            (cmn_hex_lower(raw, sizeof raw, l->cookie),
             node_auth_cookie_hash(l->cookie, cmd.u.twofa.cookie_hash) != 0)) {
            kv_cmd_fini(&cmd);
            login_free(l);
            http_respond_error_h(req, 500, NULL, TYPE, "no randomness for the session cookie");
            return;
        }
        OPENSSL_cleanse(raw, sizeof raw);
    }
    memcpy(cmd.actor, a->thumb, sizeof cmd.actor);
    cmd.actor_clearance = a->def.clearance;
    cmd.actor_registered = true;
    if (node_propose(n, &cmd, login_done, l, errmsg) != 0) {
        login_free(l);
        http_respond_error_h(req, 503, NULL, TYPE, "%s", errmsg);
    }
}

static void logout_done(void *ctx, int status, const struct kv_result *res, const char *errmsg)
{
    struct http_request *req = ctx;
    if (status != 0)
        http_respond_error_h(req, status == CMN_EBUSY ? 503 : 500, NULL, TYPE, "%s", errmsg);
    else if (res->rejected)
        http_respond_error_h(req, 400, NULL, TYPE, "%s", res->reason);
    else
        http_respond(req, 204, NULL, NULL, 0,
                     "Set-Cookie: " AUTH_2FA_COOKIE "=; Path=/; Max-Age=0; HttpOnly; Secure; "
                     "SameSite=Strict\r\n");
}

/* DELETE /authentication/2fa: ends the caller's session on every node. */
static void h_logout(struct api *api, struct http_request *req, struct node_auth *a)
{
    if (!has_key(req, a))
        return;
    struct kv_cmd cmd;
    kv_cmd_init(&cmd, KV_CMD_TWOFA_LOGOUT);
    memcpy(cmd.u.twofa.thumbprint, a->thumb, sizeof cmd.u.twofa.thumbprint);
    memcpy(cmd.actor, a->thumb, sizeof cmd.actor);
    cmd.actor_clearance = a->def.clearance;
    cmd.actor_registered = true;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (node_propose(api->n, &cmd, logout_done, req, errmsg) != 0)
        http_respond_error_h(req, 503, NULL, TYPE, "%s", errmsg);
}

static const struct api_route routes[] = {
    {HTTP_GET, "/admin/certificates/2fa/generate", NEED_OPERATOR, h_generate, false, API_NO_BODY},
    {HTTP_GET, "/authentication/2fa/configuration", NEED_NONE, h_configuration, true, API_NO_BODY},
    {HTTP_POST, "/authentication/2fa", NEED_NONE, h_login, false, API_BODY},
    {HTTP_DELETE, "/authentication/2fa", NEED_NONE, h_logout, false, API_NO_BODY},
};
const struct api_routes api_twofa_routes = {routes, sizeof routes / sizeof routes[0]};
