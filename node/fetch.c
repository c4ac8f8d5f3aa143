/* A small HTTPS GET from the node to another node (PUT /admin/cluster/node reads the new node's
 * certificate from the handshake and its /cluster/node-info). Async on the loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/http.h"
#include "net/url.h"
#include "node/core.h"
#include "raft/tls.h"

#define FETCH_MS  10000
#define FETCH_MAX (256 * 1024)

struct fetch {
    struct tls_conn tls;
    uv_timer_t timer;
    unsigned open;
    struct net_http_resp resp;
    struct cmn_buf body;
    char request[512];
    X509 *peer;
    int http_status;
    bool done;
    node_fetch_cb cb;
    void *ctx;
};

static void fetch_down(struct fetch *f)
{
    if (--f->open > 0)
        return;
    cmn_buf_fini(&f->body);
    X509_free(f->peer);
    free(f);
}

static void tls_closed(struct tls_conn *t)
{
    fetch_down(t->data);
}

static void timer_closed(uv_handle_t *h)
{
    fetch_down(h->data);
}

static void finish(struct fetch *f, int status, const char *msg)
{
    if (f->done)
        return;
    f->done = true;
    f->cb(f->ctx, status, msg, f->peer, f->http_status, (const char *)f->body.data, f->body.len);
    uv_close((uv_handle_t *)&f->timer, timer_closed);
    tls_conn_close(&f->tls, tls_closed);
}

static void on_data(struct tls_conn *t, const uint8_t *data, size_t len)
{
    struct fetch *f = t->data;
    if (f->done)
        return;
    size_t used;
    char why[CMN_ERRMSG_SIZE];
    if (net_http_resp_feed(&f->resp, data, len, &used, why) != 0) {
        finish(f, CMN_EMALFORMED, "the node's answer is not valid HTTP");
        return;
    }
    if (f->resp.complete) {
        f->http_status = f->resp.status;
        finish(f, 0, "ok");
    }
}

static void on_event(struct tls_conn *t, int status)
{
    struct fetch *f = t->data;
    if (status != 0) {
        char msg[CMN_ERRMSG_SIZE];
        snprintf(msg, sizeof msg, "cannot reach the node: %.200s", t->errmsg);
        finish(f, CMN_EIO, msg);
        return;
    }
    f->peer = tls_conn_peer_cert(t);
    if (tls_conn_write(t, f->request, strlen(f->request)) != 0)
        finish(f, CMN_EIO, "cannot send the request");
}

static void timeout_cb(uv_timer_t *t)
{
    finish(t->data, CMN_EIO, "the node did not answer in time");
}

int node_fetch(struct node *n, const char *url, const char *path, node_fetch_cb cb, void *ctx,
               char *errmsg)
{
    struct net_url u;
    struct sockaddr_storage addr;
    char why[CMN_ERRMSG_SIZE] = "not https";
    if (strncmp(url, "https://", 8) != 0 || net_url_parse(url, NET_URL_PORT, &u, why) != 0)
        return cmn_fail(errmsg, CMN_EINVALID, "'%s' is not an https://HOST:PORT URL (%s)", url,
                        why);
    int rv = tls_parse_addr(u.hostport, &addr, errmsg);
    if (rv != 0)
        return rv;
    struct fetch *f = calloc(1, sizeof *f);
    if (f == NULL)
        return CMN_ENOMEM;
    SSL_CTX *ctx_ssl = n->fetch_ctx;
    if (tls_conn_init(&f->tls, &n->loop, ctx_ssl, false, on_data, on_event) != 0) {
        free(f);
        return CMN_ENOMEM;
    }
    f->tls.data = f;
    f->open = 2;
    f->cb = cb;
    f->ctx = ctx;
    cmn_buf_init(&f->body, false);
    f->resp.max_head = FETCH_MAX;
    f->resp.max_body = FETCH_MAX;
    f->resp.body = &f->body;
    net_http_resp_start(&f->resp);
    snprintf(f->request, sizeof f->request,
             "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
             path, u.hostport);
    uv_timer_init(&n->loop, &f->timer);
    f->timer.data = f;
    uv_timer_start(&f->timer, timeout_cb, FETCH_MS, 0);
    if (tls_conn_connect(&f->tls, (struct sockaddr *)&addr, FETCH_MS) != 0) {
        char msg[CMN_ERRMSG_SIZE];
        snprintf(msg, sizeof msg, "cannot reach the node: %.200s", f->tls.errmsg);
        f->done = true;
        uv_close((uv_handle_t *)&f->timer, timer_closed);
        tls_conn_close(&f->tls, tls_closed);
        return cmn_fail(errmsg, CMN_EIO, "%s", msg);
    }
    return 0;
}
