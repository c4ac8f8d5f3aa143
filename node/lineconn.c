/* The admin channel's line transport: bounded line reading, one command at a time, answers. */
#include "node/lineconn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wreq {
    uv_write_t req;
    struct node_lineconn *lc;
    char data[];
};

static void process(struct node_lineconn *lc);

static size_t queued(struct node_lineconn *lc)
{
    return uv_stream_get_write_queue_size((uv_stream_t *)&lc->pipe);
}

static void write_cb(uv_write_t *req, int status)
{
    /* A failed write shows up as a read error or EOF too. Writes cancelled by a close still
     * arrive here before the close callback, so lc is valid. */
    struct node_lineconn *lc = ((struct wreq *)req)->lc;
    free(req);
    if (status == 0 && lc->tx_full && !lc->closed && queued(lc) <= NODE_LINECONN_TX_MAX / 2) {
        lc->tx_full = false;
        process(lc);
    }
}

/* Fires on_close once nothing can use lc any more. */
static void finish_close(struct node_lineconn *lc)
{
    if (!lc->handle_closed || lc->busy || lc->on_close == NULL)
        return;
    node_lineconn_cb cb = lc->on_close;
    lc->on_close = NULL;
    cmn_buf_fini(&lc->rx);
    cb(lc);
}

static void closed_cb(uv_handle_t *h)
{
    struct node_lineconn *lc = h->data;
    lc->handle_closed = true;
    finish_close(lc);
}

void node_lineconn_close(struct node_lineconn *lc)
{
    lc->closed = true;
    if (!uv_is_closing((uv_handle_t *)&lc->pipe))
        uv_close((uv_handle_t *)&lc->pipe, closed_cb);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    (void)status; /* written or not, the connection is over */
    node_lineconn_close(req->data);
}

/* Closes after what was written has reached the socket: a close at once could cancel the
 * queued answer that says why the connection ends. */
static void end_gracefully(struct node_lineconn *lc)
{
    if (lc->closed)
        return;
    lc->closed = true;
    uv_read_stop((uv_stream_t *)&lc->pipe);
    lc->shutdown_req.data = lc;
    if (uv_shutdown(&lc->shutdown_req, (uv_stream_t *)&lc->pipe, shutdown_cb) != 0)
        node_lineconn_close(lc);
}

static void send_bytes(struct node_lineconn *lc, const void *p, size_t len)
{
    struct wreq *w = malloc(sizeof *w + len);
    if (w == NULL) {
        node_lineconn_close(lc); /* a lost answer would leave the client waiting forever */
        return;
    }
    w->lc = lc;
    memcpy(w->data, p, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&lc->pipe, &b, 1, write_cb) != 0) {
        free(w);
        node_lineconn_close(lc);
    }
}

/* Writes one answer: the text's lines dot-stuffed, then ".code". */
static void say_v(struct node_lineconn *lc, int code, const char *fmt, va_list ap) CMN_PRINTF(3, 0);
static void say_v(struct node_lineconn *lc, int code, const char *fmt, va_list ap)
{
    if (lc->closed)
        return;
    char *text = NULL;
    int rv = 0;
    if (fmt != NULL && vasprintf(&text, fmt, ap) < 0) {
        text = NULL;
        rv = CMN_ENOMEM;
    }
    struct cmn_buf out;
    cmn_buf_init(&out, false);
    const char *p = text ? text : "";
    while (rv == 0 && *p) {
        size_t n = strcspn(p, "\n");
        if (*p == '.')
            rv = cmn_buf_append(&out, ".", 1);
        if (rv == 0)
            rv = cmn_buf_append(&out, p, n);
        if (rv == 0)
            rv = cmn_buf_append(&out, "\n", 1);
        p += n;
        if (*p == '\n')
            p++;
    }
    if (rv == 0)
        rv = cmn_buf_printf(&out, ".%d\n", code);
    free(text);
    if (rv == 0)
        send_bytes(lc, out.data, out.len);
    else
        node_lineconn_close(lc); /* half an answer would desynchronise the client */
    cmn_buf_fini(&out);
}

static void say(struct node_lineconn *lc, int code, const char *fmt, ...) CMN_PRINTF(3, 4);
static void say(struct node_lineconn *lc, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say_v(lc, code, fmt, ap);
    va_end(ap);
}

void node_lineconn_vanswer(struct node_lineconn *lc, int code, const char *fmt, va_list ap)
{
    say_v(lc, code, fmt, ap);
    lc->busy = false;
    if (lc->closed)
        finish_close(lc); /* may free lc */
    else
        process(lc); /* a line that arrived while this command ran */
}

void node_lineconn_answer(struct node_lineconn *lc, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    node_lineconn_vanswer(lc, code, fmt, ap);
    va_end(ap);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    /* One loop thread, and read_cb copies out (and wipes) before the next read. */
    static char slab[16384];
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(slab, sizeof slab);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void resume_reading(struct node_lineconn *lc)
{
    lc->paused = false;
    if (uv_read_start((uv_stream_t *)&lc->pipe, alloc_cb, read_cb) != 0)
        node_lineconn_close(lc);
}

/* Runs the waiting lines, one after the other in this loop: a synchronous answer returns here
 * instead of recursing, so thousands of buffered lines cost no stack. */
static void process(struct node_lineconn *lc)
{
    if (lc->processing)
        return;
    lc->processing = true;
    struct cmn_cur cur;
    cmn_cur_init(&cur, lc->rx.data, lc->rx.len);
    while (!lc->busy && !lc->closed) {
        if (queued(lc) > NODE_LINECONN_TX_MAX) {
            lc->tx_full = true; /* the client is not reading: write_cb resumes */
            break;
        }
        const uint8_t *p;
        size_t n;
        int rv = cmn_cur_line(&cur, NODE_LINECONN_LINE_MAX, &p, &n);
        if (rv == CMN_ETRUNCATED)
            break;
        if (rv != 0) {
            say(lc, 2, "error: a command line is longer than %d bytes: closing the connection",
                NODE_LINECONN_LINE_MAX);
            end_gracefully(lc);
            break;
        }
        /* The line lies in rx, which is ours: terminate it in place (over its '\r' or '\n'). */
        char *line = (char *)lc->rx.data + (p - lc->rx.data);
        line[n] = '\0';
        if (memchr(line, '\0', n) != NULL) {
            say(lc, 2, "error: the command line holds a NUL byte");
            continue;
        }
        lc->busy = true;
        lc->on_line(lc, line);
    }
    /* Drop the lines taken, wiping their bytes: they may have held a password. */
    size_t used = cur.off, rest = lc->rx.len - used;
    if (used > 0) {
        memmove(lc->rx.data, lc->rx.data + used, rest);
        cmn_cleanse(lc->rx.data + rest, used);
        lc->rx.len = rest;
    }
    if (!lc->closed && !lc->busy && !lc->tx_full && lc->eof)
        end_gracefully(lc); /* a last line without its '\n' is dropped, not run */
    else if (!lc->closed && lc->paused && lc->rx.len <= NODE_LINECONN_RX_MAX / 2)
        resume_reading(lc);
    lc->processing = false;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct node_lineconn *lc = s->data;
    if (nread == UV_EOF) {
        lc->eof = true;
        uv_read_stop(s);
        process(lc);
        return;
    }
    if (nread < 0) {
        node_lineconn_close(lc);
        return;
    }
    if (nread == 0)
        return;
    int rv = cmn_buf_append(&lc->rx, buf->base, (size_t)nread);
    cmn_cleanse(buf->base, (size_t)nread);
    if (rv != 0) {
        node_lineconn_close(lc);
        return;
    }
    process(lc);
    if (!lc->closed && !lc->paused && lc->rx.len > NODE_LINECONN_RX_MAX) {
        lc->paused = true; /* a command runs and the sender is ahead: let the socket fill */
        uv_read_stop(s);
    }
}

int node_lineconn_init(struct node_lineconn *lc, uv_loop_t *loop, node_line_cb on_line,
                       node_lineconn_cb on_close)
{
    memset(lc, 0, sizeof *lc);
    int rv = uv_pipe_init(loop, &lc->pipe, 0);
    if (rv != 0)
        return CMN_EIO;
    lc->pipe.data = lc;
    cmn_buf_init(&lc->rx, true);
    lc->on_line = on_line;
    lc->on_close = on_close;
    return 0;
}

int node_lineconn_start(struct node_lineconn *lc)
{
    if (uv_read_start((uv_stream_t *)&lc->pipe, alloc_cb, read_cb) != 0) {
        node_lineconn_close(lc);
        return CMN_EIO;
    }
    return 0;
}
