/* HTTP/1.1 answers through http_parser callbacks into the caller's buffers. */
#include "net/http.h"

#include <string.h>
#include <strings.h>

static struct net_http_resp *resp_of(http_parser *p)
{
    return p->data;
}

/* The head's size, checked as it arrives: an endless head is refused before it is all in. */
static int head_bytes(struct net_http_resp *r, size_t len)
{
    r->head_bytes += len;
    if (r->head_bytes > r->max_head) {
        r->err = CMN_ETOOBIG;
        return 1;
    }
    return 0;
}

static void clear_headers(struct net_http_resp *r)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (r->headers[i].cap > 0)
            r->headers[i].value[0] = '\0';
    r->cur = NULL;
    r->in_value = false;
    r->flen = 0;
    r->field_long = false;
}

static int on_status(http_parser *p, const char *at, size_t len)
{
    return head_bytes(resp_of(p), len);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct net_http_resp *r = resp_of(p);
    if (r->in_value) { /* a new header begins */
        r->in_value = false;
        r->cur = NULL;
        r->flen = 0;
        r->field_long = false;
    }
    if (r->flen + len >= sizeof r->field) {
        r->field_long = true; /* longer than any name kept: matches none */
    } else {
        memcpy(r->field + r->flen, at, len);
        r->flen += len;
        r->field[r->flen] = '\0';
    }
    return head_bytes(r, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct net_http_resp *r = resp_of(p);
    if (!r->in_value) {
        r->in_value = true;
        r->vlen = 0;
        r->cur = NULL;
        for (size_t i = 0; i < r->n_headers; i++)
            if (!r->field_long && strcasecmp(r->field, r->headers[i].name) == 0 &&
                r->headers[i].cap > 0) {
                r->cur = &r->headers[i];
                break;
            }
    }
    struct net_http_header *h = r->cur;
    if (h != NULL) {
        if (r->vlen + len >= h->cap) {
            h->value[0] = '\0'; /* too long for the buffer: kept as absent, never cut */
            r->cur = NULL;
        } else {
            memcpy(h->value + r->vlen, at, len);
            r->vlen += len;
            h->value[r->vlen] = '\0';
        }
    }
    return head_bytes(r, len);
}

static int on_headers_complete(http_parser *p)
{
    struct net_http_resp *r = resp_of(p);
    r->status = (int)p->status_code;
    r->headers_done = true;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct net_http_resp *r = resp_of(p);
    if (r->body_len + len > r->max_body) {
        r->err = CMN_ETOOBIG;
        return 1;
    }
    if (r->body != NULL && cmn_buf_append(r->body, at, len) != 0) {
        r->err = CMN_ENOMEM;
        return 1;
    }
    r->body_len += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct net_http_resp *r = resp_of(p);
    if (p->status_code >= 100 && p->status_code < 200 && p->status_code != 101) {
        /* An interim answer (100 Continue): the final one follows on the same parser. */
        r->headers_done = false;
        r->status = 0;
        r->head_bytes = 0;
        clear_headers(r);
        return 0;
    }
    r->complete = true;
    r->keep_alive = http_should_keep_alive(p) != 0;
    http_parser_pause(p, 1); /* what follows belongs to the next answer */
    return 0;
}

static const http_parser_settings settings = {
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void net_http_resp_start(struct net_http_resp *r)
{
    http_parser_init(&r->parser, HTTP_RESPONSE);
    r->parser.data = r;
    r->status = 0;
    r->headers_done = false;
    r->complete = false;
    r->keep_alive = false;
    r->body_len = 0;
    r->head_bytes = 0;
    r->err = 0;
    r->fed = false;
    if (r->body != NULL)
        r->body->len = 0;
    clear_headers(r);
}

static int finish(struct net_http_resp *r, char *errmsg)
{
    if (r->body == NULL)
        return 0;
    if (cmn_buf_reserve(r->body, 1) != 0)
        return cmn_fail(errmsg, CMN_ENOMEM, "out of memory for the answer");
    r->body->data[r->body->len] = '\0';
    return 0;
}

int net_http_resp_feed(struct net_http_resp *r, const void *p, size_t n, size_t *used, char *errmsg)
{
    *used = 0;
    if (r->complete || n == 0)
        return 0;
    r->fed = true;
    *used = http_parser_execute(&r->parser, &settings, p, n);
    enum http_errno he = HTTP_PARSER_ERRNO(&r->parser);
    if (r->err == CMN_ETOOBIG)
        return cmn_fail(errmsg, CMN_ETOOBIG, "the answer's %s is larger than %zu bytes",
                        r->headers_done ? "body" : "head",
                        r->headers_done ? r->max_body : r->max_head);
    if (r->err == CMN_ENOMEM)
        return cmn_fail(errmsg, CMN_ENOMEM, "out of memory for the answer");
    if (he == HPE_HEADER_OVERFLOW)
        return cmn_fail(errmsg, CMN_ETOOBIG, "the answer's head is too large");
    if (he == HPE_PAUSED && r->complete) {
        http_parser_pause(&r->parser, 0);
        return finish(r, errmsg);
    }
    if (he != HPE_OK || *used != n)
        return cmn_fail(errmsg, CMN_EMALFORMED, "not an HTTP answer (%s)",
                        http_errno_description(he));
    return 0;
}

int net_http_resp_eof(struct net_http_resp *r, char *errmsg)
{
    if (r->complete)
        return 0;
    http_parser_execute(&r->parser, &settings, NULL, 0);
    if (r->complete) {
        http_parser_pause(&r->parser, 0);
        return finish(r, errmsg);
    }
    return cmn_fail(errmsg, CMN_ETRUNCATED, "the connection closed %s",
                    r->fed ? "in the middle of the answer" : "before an answer");
}
