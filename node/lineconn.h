/* A line-command connection over a libuv pipe: the admin channel's transport, apart from its
 * commands so that it can be fed hostile input in tests without a node.
 *
 * Protocol: the peer sends one command per '\n'-terminated line (a '\r' before the '\n' is
 * dropped). Each answer is text lines, a line that starts with '.' escaped as '..', ended by
 * ".<code>\n". One command runs at a time; lines that arrive meanwhile wait, and reading pauses
 * while more than NODE_LINECONN_RX_MAX bytes wait, so a fast sender is slowed, never dropped.
 * Likewise no command starts while more than NODE_LINECONN_TX_MAX bytes of answers are queued
 * (a client that sends and never reads costs bounded memory).
 *
 * Bad input never reaches the command callback:
 * - a line longer than NODE_LINECONN_LINE_MAX bytes is answered "error: ..." with code 2, and
 *   the connection is closed once that answer is written (the rest of an over-long line cannot
 *   be told from the next command, so nothing after it is trusted);
 * - a line holding a NUL byte is answered "error: ..." with code 2, and the next line is read;
 * - at the peer's EOF, waiting whole lines still run, a last line without its '\n' is dropped
 *   (a command cut short is not run), and the connection closes after the last answer.
 * Received bytes are wiped once used: commands may carry passwords. */
#ifndef CORVID_NODE_LINECONN_H
#define CORVID_NODE_LINECONN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "common/buf.h"
#include "common/err.h"

#define NODE_LINECONN_LINE_MAX 8192          /* bytes before the '\n' */
#define NODE_LINECONN_RX_MAX   (64u * 1024u) /* waiting bytes above which reading pauses */
#define NODE_LINECONN_TX_MAX   (1u << 20)    /* queued answer bytes above which commands wait */

struct node_lineconn;

/* A command line: NUL-terminated, writable (split it in place), valid only for the call and
 * wiped after it; copy what an asynchronous command keeps. The callback must call
 * node_lineconn_answer exactly once, during the call or later. */
typedef void (*node_line_cb)(struct node_lineconn *lc, char *line);
/* The handle is closed and no command is running: lc may be freed now. Fires exactly once. */
typedef void (*node_lineconn_cb)(struct node_lineconn *lc);

/* Caller-allocated; valid until on_close. Fields are private except data. */
struct node_lineconn {
    uv_pipe_t pipe;
    uv_shutdown_t shutdown_req;
    struct cmn_buf rx; /* received bytes not yet taken as lines (secret: may hold passwords) */
    node_line_cb on_line;
    node_lineconn_cb on_close;
    void *data;      /* the owner's */
    bool busy;       /* a command runs: between on_line and its answer */
    bool processing; /* the line loop is on the stack (an answer inside it must not recurse) */
    bool paused;     /* reading stopped for backpressure */
    bool tx_full;    /* commands wait for queued answers to drain */
    bool eof;        /* the peer sent everything it will */
    bool closed;     /* closing: no more lines are taken */
    bool handle_closed;
};

/* Prepares lc on loop (uv_pipe_init). Then uv_accept or uv_pipe_open into &lc->pipe, and
 * node_lineconn_start. After a successful init, the connection ends only through on_close. */
int node_lineconn_init(struct node_lineconn *lc, uv_loop_t *loop, node_line_cb on_line,
                       node_lineconn_cb on_close) CMN_MUST_CHECK;
/* Starts reading. On failure the connection is closing (on_close follows). */
int node_lineconn_start(struct node_lineconn *lc) CMN_MUST_CHECK;
/* Answers the running command: the text (may be NULL: no lines) dot-stuffed, then ".code".
 * Then the next waiting line runs, or on_close fires if the connection is closed: the caller
 * must not touch lc after this call. */
void node_lineconn_answer(struct node_lineconn *lc, int code, const char *fmt, ...)
    CMN_PRINTF(3, 4);
void node_lineconn_vanswer(struct node_lineconn *lc, int code, const char *fmt, va_list ap)
    CMN_PRINTF(3, 0);
/* Closes now (what is not yet written may be lost); on_close fires once the handle is closed
 * and any running command has answered. Safe to call more than once. */
void node_lineconn_close(struct node_lineconn *lc);

#endif
