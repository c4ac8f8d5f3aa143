/* node/lineconn.c (the admin channel's line transport) over a real socketpair and a real loop:
 * over-long lines, NUL bytes, binary junk, floods of newlines, a sender far ahead of a slow
 * command, EOF in the middle of a line, and closing while a command runs. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "node/lineconn.h"

struct fx {
    uv_loop_t loop;
    uv_timer_t slow; /* answers a "slow" command later */
    struct node_lineconn lc;
    int peer;           /* the client's end, non-blocking */
    struct cmn_buf got; /* what the client read */
    bool peer_eof;
    bool gone; /* on_close fired */
    int lines; /* commands seen */
    char slow_line[64];
    bool saw_paused;
    bool deaf;         /* the client does not read */
    size_t max_queued; /* the most answer bytes the node ever held */
    size_t longest;    /* the longest command line seen */
};

static void on_slow(uv_timer_t *t)
{
    struct fx *f = t->data;
    node_lineconn_answer(&f->lc, 0, "done:%s", f->slow_line);
}

static void on_line(struct node_lineconn *lc, char *line)
{
    struct fx *f = lc->data;
    f->lines++;
    size_t n = strlen(line);
    if (n > f->longest)
        f->longest = n;
    if (strncmp(line, "slow", 4) == 0) {
        snprintf(f->slow_line, sizeof f->slow_line, "%s", line);
        uv_timer_start(&f->slow, on_slow, 20, 0);
    } else if (n == 0) {
        node_lineconn_answer(lc, 0, NULL);
    } else if (strcmp(line, "long") == 0) {
        node_lineconn_answer(lc, 0, "%01000d", 7); /* 1000 bytes for 5 */
    } else if (strcmp(line, "dots") == 0) {
        node_lineconn_answer(lc, 0, ".hidden\nplain\n..two");
    } else {
        node_lineconn_answer(lc, 0, "echo:%.32s", line);
    }
}

static void on_close(struct node_lineconn *lc)
{
    struct fx *f = lc->data;
    assert_false(f->gone); /* exactly once */
    f->gone = true;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(uv_timer_init(&f->loop, &f->slow), 0);
    f->slow.data = f;
    assert_int_equal(node_lineconn_init(&f->lc, &f->loop, on_line, on_close), 0);
    f->lc.data = f;
    assert_int_equal(uv_pipe_open(&f->lc.pipe, sv[0]), 0);
    assert_int_equal(node_lineconn_start(&f->lc), 0);
    f->peer = sv[1];
    assert_int_equal(fcntl(f->peer, F_SETFL, fcntl(f->peer, F_GETFL) | O_NONBLOCK), 0);
    cmn_buf_init(&f->got, false);
    *state = f;
    return 0;
}

/* One turn: the loop runs what is ready, the client reads what arrived. */
static void turn(struct fx *f)
{
    uv_run(&f->loop, UV_RUN_NOWAIT);
    if (f->lc.paused)
        f->saw_paused = true;
    size_t q = uv_stream_get_write_queue_size((uv_stream_t *)&f->lc.pipe);
    if (q > f->max_queued)
        f->max_queued = q;
    char buf[65536];
    for (; !f->deaf;) {
        ssize_t n = read(f->peer, buf, sizeof buf);
        if (n > 0) {
            assert_int_equal(cmn_buf_append(&f->got, buf, (size_t)n), 0);
            continue;
        }
        if (n == 0)
            f->peer_eof = true;
        break;
    }
    /* Sleep until the client or the loop (its epoll descriptor) has something to do. */
    struct pollfd p[2] = {{.fd = f->peer, .events = POLLIN},
                          {.fd = uv_backend_fd(&f->loop), .events = POLLIN}};
    CMN_IGNORE(poll(p, 2, 1));
}

typedef bool (*cond_fn)(struct fx *f, const void *arg);

/* Turns until cond holds; a test that waits more than 20 s has failed. */
static void pump_until(struct fx *f, cond_fn cond, const void *arg)
{
    time_t end = time(NULL) + 20;
    while (!cond(f, arg)) {
        assert_true(time(NULL) < end);
        turn(f);
    }
}

static bool got_len(struct fx *f, const void *arg)
{
    return f->got.len >= *(const size_t *)arg;
}
static bool is_gone(struct fx *f, const void *arg)
{
    (void)arg;
    return f->gone && f->peer_eof;
}
static bool got_has(struct fx *f, const void *arg)
{
    return f->got.len && strstr((const char *)f->got.data, arg) != NULL;
}

/* Writes everything, letting the loop run whenever the socket is full. Once the node has
 * closed, the rest is not sent (as a real client would find). */
static void send_all(struct fx *f, const void *data, size_t len)
{
    const char *p = data;
    time_t end = time(NULL) + 20;
    while (len > 0) {
        ssize_t n = send(f->peer, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
            assert_true(f->lc.closed);
            return;
        }
        assert_true(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
        assert_true(time(NULL) < end);
        turn(f);
    }
}
static void send_str(struct fx *f, const char *s)
{
    send_all(f, s, strlen(s));
}

static void expect_got(struct fx *f, const char *want)
{
    size_t n = strlen(want);
    pump_until(f, got_len, &n);
    assert_int_equal(f->got.len, n);
    assert_memory_equal(f->got.data, want, n);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (!f->gone) {
        node_lineconn_close(&f->lc);
        time_t end = time(NULL) + 20;
        while (!f->gone) {
            assert_true(time(NULL) < end);
            turn(f);
        }
    }
    uv_close((uv_handle_t *)&f->slow, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0); /* a leaked handle is a failed test */
    close(f->peer);
    cmn_buf_fini(&f->got);
    free(f);
    return 0;
}

static void commands_are_answered_in_order(void **state)
{
    struct fx *f = *state;
    send_str(f, "a\r\ndots\n\nb\n");
    expect_got(f, "echo:a\n.0\n"
                  "..hidden\nplain\n...two\n.0\n"
                  ".0\n"
                  "echo:b\n.0\n");
    assert_int_equal(f->lines, 4);
    assert_false(f->lc.closed);
}

static void taken_lines_are_wiped(void **state)
{
    struct fx *f = *state;
    send_str(f, "trust n f hunter2-secret\nhalf a");
    expect_got(f, "echo:trust n f hunter2-secret\n.0\n");
    /* What is left is the unfinished line, and nothing of the one taken. */
    assert_int_equal(f->lc.rx.len, 6);
    assert_memory_equal(f->lc.rx.data, "half a", 6);
    assert_null(memmem(f->lc.rx.data, f->lc.rx.cap, "hunter2", 7));
    assert_true(f->lc.rx.secret);
}

static void floods_of_newlines_run_iteratively(void **state)
{
    struct fx *f = *state;
    enum { LINES = 50000 }; /* the old reader recursed once per line, 8 KiB a frame */
    static char nl[LINES];
    memset(nl, '\n', sizeof nl);
    send_all(f, nl, sizeof nl);
    size_t want = 3 * LINES;
    pump_until(f, got_len, &want);
    assert_int_equal(f->got.len, want);
    assert_int_equal(f->lines, LINES);
    send_str(f, "still\n");
    want += strlen("echo:still\n.0\n");
    pump_until(f, got_len, &want);
    assert_false(f->lc.closed);
}

static const char too_long[] =
    "error: a command line is longer than 8192 bytes: closing the connection\n.2\n";

static void an_over_long_line_is_refused_and_closes(void **state)
{
    struct fx *f = *state;
    static char big[9 * 1024 + 1];
    memset(big, 'x', sizeof big);
    big[sizeof big - 1] = '\n';
    send_str(f, "first\n");
    send_all(f, big, sizeof big);
    send_str(f, "after\n"); /* nothing after an over-long line is trusted */
    pump_until(f, is_gone, NULL);
    size_t n = strlen("echo:first\n.0\n");
    assert_int_equal(f->got.len, n + strlen(too_long));
    assert_memory_equal(f->got.data + n, too_long, strlen(too_long));
    assert_int_equal(f->lines, 1);
}

static void an_endless_line_is_refused_without_its_end(void **state)
{
    struct fx *f = *state;
    static char big[9 * 1024];
    memset(big, 'y', sizeof big);
    send_all(f, big, sizeof big); /* no '\n' ever */
    pump_until(f, is_gone, NULL);
    assert_int_equal(f->got.len, strlen(too_long));
    assert_memory_equal(f->got.data, too_long, strlen(too_long));
    assert_int_equal(f->lines, 0);
}

static void a_line_of_exactly_the_limit_is_taken(void **state)
{
    struct fx *f = *state;
    static char big[NODE_LINECONN_LINE_MAX + 2];
    memset(big, 'z', sizeof big);
    big[NODE_LINECONN_LINE_MAX] = '\r'; /* dropped, but it counts against the limit */
    big[NODE_LINECONN_LINE_MAX + 1] = '\n';
    const size_t answer = strlen("echo:\n.0\n") + 32; /* the command echoes 32 bytes */
    send_all(f, big + 1, sizeof big - 1);
    pump_until(f, got_len, &answer);
    assert_int_equal(f->longest, NODE_LINECONN_LINE_MAX - 1);
    send_all(f, big, sizeof big - 2);
    send_str(f, "\n");
    const size_t two = 2 * answer;
    pump_until(f, got_len, &two);
    assert_int_equal(f->longest, NODE_LINECONN_LINE_MAX);
    assert_int_equal(f->got.len, two);
    assert_false(f->lc.closed);
}

static void nul_bytes_and_junk_never_reach_the_command(void **state)
{
    struct fx *f = *state;
    send_all(f, "a\0b\nafter\n", 10);
    expect_got(f, "error: the command line holds a NUL byte\n.2\necho:after\n.0\n");
    assert_int_equal(f->lines, 1);
    /* Every byte value, in lines of pseudo-random length: the count of answers must match. */
    static uint8_t junk[64 * 1024];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof junk; i++) {
        x = x * 1103515245u + 12345u;
        junk[i] = (uint8_t)(x >> 16);
    }
    junk[sizeof junk - 1] = '\n';
    int nl = 0, nul_lines = 0;
    bool has_nul = false;
    for (size_t i = 0; i < sizeof junk; i++) {
        if (junk[i] == 0)
            has_nul = true;
        if (junk[i] == '\n') {
            nl++;
            nul_lines += has_nul;
            has_nul = false;
        }
    }
    cmn_buf_fini(&f->got);
    int before = f->lines;
    send_all(f, junk, sizeof junk);
    send_str(f, "end\n");
    pump_until(f, got_has, "echo:end\n.0\n");
    assert_int_equal(f->lines - before, nl - nul_lines + 1);
    assert_false(f->lc.closed);
}

static void eof_runs_whole_lines_and_drops_a_partial_one(void **state)
{
    struct fx *f = *state;
    send_str(f, "one\ntwo");
    assert_int_equal(shutdown(f->peer, SHUT_WR), 0);
    pump_until(f, is_gone, NULL);
    assert_int_equal(f->got.len, strlen("echo:one\n.0\n"));
    assert_memory_equal(f->got.data, "echo:one\n.0\n", f->got.len);
    assert_int_equal(f->lines, 1);
}

static void lines_wait_for_a_slow_command(void **state)
{
    struct fx *f = *state;
    send_str(f, "slow 1\nquick\n\n");
    expect_got(f, "done:slow 1\n.0\necho:quick\n.0\n.0\n");
    /* and at EOF while a command runs, the command still answers, then the connection ends */
    cmn_buf_fini(&f->got);
    send_str(f, "slow 2\nquick\n");
    assert_int_equal(shutdown(f->peer, SHUT_WR), 0);
    pump_until(f, is_gone, NULL);
    assert_string_equal((const char *)f->got.data, "done:slow 2\n.0\necho:quick\n.0\n");
}

static void a_sender_far_ahead_is_paused_not_dropped(void **state)
{
    struct fx *f = *state;
    enum { LINES = 200000 }; /* 400 KB while one command runs: far above the pause mark */
    send_str(f, "slow\n");
    static char many[2 * LINES];
    for (size_t i = 0; i < LINES; i++)
        memcpy(many + 2 * i, "x\n", 2);
    send_all(f, many, sizeof many);
    size_t want = strlen("done:slow\n.0\n") + (size_t)LINES * strlen("echo:x\n.0\n");
    pump_until(f, got_len, &want);
    assert_int_equal(f->got.len, want);
    assert_true(f->saw_paused);
    assert_false(f->lc.closed);
    assert_true(f->lc.rx.cap <= 4 * NODE_LINECONN_RX_MAX); /* bounded, however far ahead */
}

static void a_client_that_never_reads_costs_bounded_memory(void **state)
{
    struct fx *f = *state;
    f->deaf = true;
    /* Send "long" lines until the node stops taking them for a while (each answer is 200
     * times its line: unbounded, the queue would reach hundreds of MB). */
    size_t sent = 0;
    int idle = 0;
    time_t end = time(NULL) + 20;
    while (idle < 300) {
        assert_true(time(NULL) < end);
        static char burst[4096 * 5];
        for (size_t i = 0; i < sizeof burst; i += 5)
            memcpy(burst + i, "long\n", 5);
        ssize_t n = send(f->peer, burst + sent % 5, sizeof burst - sent % 5, MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t)n;
            idle = 0;
        } else {
            assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
            idle++;
        }
        turn(f);
    }
    assert_true(f->lc.tx_full);
    assert_true(f->lc.paused);
    assert_true(f->max_queued <= NODE_LINECONN_TX_MAX + 1100);
    assert_true(f->lc.rx.cap <= 4 * NODE_LINECONN_RX_MAX);
    /* Once the client reads, every command it sent is answered. */
    f->deaf = false;
    size_t want = sent / 5 * (1000 + 4);
    pump_until(f, got_len, &want);
    assert_int_equal(f->got.len, want);
    assert_int_equal(f->lines, (int)(sent / 5));
    assert_false(f->lc.closed);
}

static void closing_waits_for_the_running_command(void **state)
{
    struct fx *f = *state;
    send_str(f, "slow\n");
    time_t end = time(NULL) + 20;
    while (!f->lc.busy) {
        assert_true(time(NULL) < end);
        turn(f);
    }
    node_lineconn_close(&f->lc);
    node_lineconn_close(&f->lc); /* twice is harmless */
    for (int i = 0; i < 5; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_false(f->gone); /* the command still holds the connection */
    pump_until(f, is_gone, NULL);
    assert_int_equal(f->got.len, 0); /* its answer had nowhere to go */
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(commands_are_answered_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(taken_lines_are_wiped, setup, teardown),
        cmocka_unit_test_setup_teardown(floods_of_newlines_run_iteratively, setup, teardown),
        cmocka_unit_test_setup_teardown(an_over_long_line_is_refused_and_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(an_endless_line_is_refused_without_its_end, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_line_of_exactly_the_limit_is_taken, setup, teardown),
        cmocka_unit_test_setup_teardown(nul_bytes_and_junk_never_reach_the_command, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(eof_runs_whole_lines_and_drops_a_partial_one, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(lines_wait_for_a_slow_command, setup, teardown),
        cmocka_unit_test_setup_teardown(a_sender_far_ahead_is_paused_not_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(a_client_that_never_reads_costs_bounded_memory, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(closing_waits_for_the_running_command, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
