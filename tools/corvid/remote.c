/* The shared side of the corvid CLI's remote commands: global options, credentials, calls with
 * their failures turned into exit codes, input files, and human output. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include <http_parser.h>
#include <openssl/err.h>

#include "ca/encode.h"
#include "common/env.h"
#include "tools/corvid/cli.h"
#include "tools/corvid/remote.h"

const char cli_global_help[] =
    "Global options (also accepted before the command, e.g. `corvid --json certs list`):\n"
    "  --url URL            a node's HTTPS URL; repeat it for failover: the URLs are tried in\n"
    "                       order and a node that cannot be reached is skipped\n"
    "                       (default: $CORVID_URL, URLs separated by commas or spaces)\n"
    "  --cert FILE          client certificate: .pfx, or .pem with the key (default:\n"
    "                       $CORVID_CERT); without one the nodes treat you as anonymous\n"
    "  --key FILE           the private key, when it is not in the --cert file\n"
    "  --password-file F    password of the --cert file (its first line); else\n"
    "                       $CORVID_CERT_PASSWORD, else asked on a terminal when needed\n"
    "  --ca-file FILE       CA certificates (PEM) that verify the nodes, e.g. the cluster's\n"
    "                       var/local/pki/ca-chain.crt (default: $CORVID_CA_FILE, else the\n"
    "                       system's trust store)\n"
    "  --insecure           do not verify the nodes' certificates at all (testing only)\n"
    "  --json               machine-readable output on stdout\n"
    "  --timeout SECONDS    how long to wait for an answer (default 60)\n"
    "  --verbose            show each request and its status on stderr\n"
    "\n"
    "Exit status: 0 ok; 1 refused by the server (or not found); 2 usage error or unusable\n"
    "input file; 3 cannot connect to any node; 4 TLS or certificate problem (the node's\n"
    "certificate does not verify, or the client certificate cannot be used).\n";

void cli_init(struct cli *c)
{
    memset(c, 0, sizeof *c);
    ca_cert_list_init(&c->chain);
    c->timeout_s = 60;
}

int cli_global_opt(struct cli *c, int opt, const char *arg)
{
    switch (opt) {
    case OPT_URL:
        if (c->n_urls == HC_MAX_URLS) {
            fprintf(stderr, "corvid: at most %d --url options\n", HC_MAX_URLS);
            return -1;
        }
        c->urls[c->n_urls++] = arg;
        return 1;
    case OPT_CERT:
        c->cert_path = arg;
        return 1;
    case OPT_KEY:
        c->key_path = arg;
        return 1;
    case OPT_PASSWORD_FILE:
        c->password_file = arg;
        return 1;
    case OPT_CA_FILE:
        c->ca_file = arg;
        return 1;
    case OPT_INSECURE:
        c->insecure = true;
        return 1;
    case OPT_JSON:
        c->json = true;
        return 1;
    case OPT_VERBOSE:
        c->verbose = true;
        return 1;
    case OPT_HELP:
    case 'h':
        c->help = true;
        return 1;
    case OPT_TIMEOUT: {
        char *end;
        long v = strtol(arg, &end, 10);
        if (*end != '\0' || end == arg || v < 1 || v > 3600) {
            fprintf(stderr, "corvid: --timeout: a number of seconds from 1 to 3600\n");
            return -1;
        }
        c->timeout_s = (int)v;
        return 1;
    }
    default:
        return 0;
    }
}

static void note_cb(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "corvid: note: %s\n", msg);
}

static bool env_set(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0';
}

int cli_open_or_help(struct cli *c, const char *help)
{
    if (c->help) {
        cli_print_help(help);
        return -1;
    }
    return cli_open(c);
}

const char *cli_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

int cli_open(struct cli *c)
{
    char errmsg[CMN_ERRMSG_SIZE] = "";
    /* A node that closes mid-write must give an error, not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    c->color = isatty(STDOUT_FILENO) && !env_set("NO_COLOR") &&
               !(getenv("TERM") && strcmp(getenv("TERM"), "dumb") == 0);
    c->progress = isatty(STDERR_FILENO);
    if (c->n_urls == 0 && env_set("CORVID_URL")) {
        c->env_urls = strdup(getenv("CORVID_URL"));
        if (c->env_urls == NULL) {
            fprintf(stderr, "corvid: out of memory\n");
            return CLI_FAILURE;
        }
        char *save = NULL;
        for (char *t = strtok_r(c->env_urls, ", \t\n", &save); t;
             t = strtok_r(NULL, ", \t\n", &save)) {
            if (c->n_urls == HC_MAX_URLS) {
                fprintf(stderr, "corvid: CORVID_URL: at most %d URLs\n", HC_MAX_URLS);
                return CLI_USAGE;
            }
            c->urls[c->n_urls++] = t;
        }
    }
    if (c->n_urls == 0) {
        fprintf(stderr, "corvid: no node to talk to: give --url https://HOST:PORT or set "
                        "CORVID_URL\n");
        return CLI_USAGE;
    }
    if (c->cert_path == NULL && env_set("CORVID_CERT"))
        c->cert_path = getenv("CORVID_CERT");
    if (c->ca_file == NULL && env_set("CORVID_CA_FILE"))
        c->ca_file = getenv("CORVID_CA_FILE");
    if (c->insecure && c->ca_file != NULL && c->verbose)
        fprintf(stderr, "corvid: note: --insecure: the CA file is not used\n");
    if (c->insecure)
        fprintf(stderr, "corvid: warning: --insecure: the nodes' certificates are not verified\n");
    if (c->key_path != NULL && c->cert_path == NULL) {
        fprintf(stderr, "corvid: --key needs --cert\n");
        return CLI_USAGE;
    }
    if (c->ca_file != NULL && !c->insecure && access(c->ca_file, R_OK) != 0) {
        fprintf(stderr, "corvid: cannot read the CA file %s: %s\n", c->ca_file, strerror(errno));
        return CLI_USAGE;
    }

    if (c->cert_path != NULL) {
        struct cmn_buf pw;
        cmn_buf_init(&pw, true);
        const char *password = NULL;
        if (c->password_file != NULL) {
            if (cli_read_password_file(c->password_file, &pw) != 0)
                return CLI_USAGE;
            password = (const char *)pw.data;
        } else if (env_set("CORVID_CERT_PASSWORD")) {
            password = getenv("CORVID_CERT_PASSWORD");
        }
        struct ca_certfile f;
        int rv = cli_certfile_load(&f, c->cert_path, c->key_path, password, true, "--cert",
                                   "give --password-file or CORVID_CERT_PASSWORD, or run on a "
                                   "terminal to be asked",
                                   CLI_TLS);
        cmn_buf_fini(&pw);
        if (rv != CLI_OK)
            return rv;
        c->key = f.key;
        f.key = NULL;
        c->cert = f.leaf;
        X509_up_ref(c->cert);
        for (size_t i = 0; i < f.certs.n; i++) {
            if (f.certs.v[i] == c->cert)
                continue;
            if (ca_cert_list_add(&c->chain, f.certs.v[i]) != 0) {
                ca_certfile_fini(&f);
                fprintf(stderr, "corvid: out of memory\n");
                return CLI_FAILURE;
            }
        }
        ca_certfile_fini(&f);
    } else if (c->password_file != NULL) {
        fprintf(stderr, "corvid: --password-file is the password of --cert, and no --cert "
                        "(or CORVID_CERT) is given\n");
        return CLI_USAGE;
    }

    struct hc_tls_opts tls = {
        .ca_file = c->ca_file,
        .insecure = c->insecure,
        .cert = c->cert,
        .key = c->key,
        .chain = &c->chain,
    };
    if (hc_client_init(&c->hc, &tls, errmsg) != 0) {
        fprintf(stderr, "corvid: %s\n", errmsg);
        return CLI_TLS;
    }
    c->open = true;
    c->hc.timeout_ms = c->timeout_s * 1000;
    c->hc.note = note_cb;
    for (size_t i = 0; i < c->n_urls; i++) {
        if (hc_client_add_url(&c->hc, c->urls[i], errmsg) != 0) {
            fprintf(stderr, "corvid: --url %s\n", errmsg);
            return CLI_USAGE;
        }
    }
    return CLI_OK;
}

void cli_fini(struct cli *c)
{
    if (c->open)
        hc_client_fini(&c->hc);
    X509_free(c->cert);
    EVP_PKEY_free(c->key);
    ca_cert_list_fini(&c->chain);
    free(c->env_urls);
    memset(c, 0, sizeof *c);
}

int cli_exit_for(int hc_error)
{
    switch (hc_error) {
    case 0:
        return CLI_OK;
    case CMN_ECRYPTO:
        return CLI_TLS;
    case CMN_EINVALID:
        return CLI_USAGE;
    case CMN_EIO:
    case CMN_EMALFORMED:
    case CMN_ETOOBIG:
        return CLI_NOCONNECT;
    default:
        return CLI_FAILURE;
    }
}

/* ---------------------------------------------------------------- calls */

struct spinner {
    const char *label;
    bool shown;
};

static void spin(void *ctx, int64_t waited_ms)
{
    struct spinner *s = ctx;
    if (waited_ms < 700)
        return;
    static const char frames[] = "|/-\\";
    fprintf(stderr, "\r%c %s… %llds", frames[(waited_ms / 250) % 4], s->label,
            (long long)(waited_ms / 1000));
    fflush(stderr);
    s->shown = true;
}

/* http_parser's reason phrase for a status, "" for one it does not name. */
static const char *reason_phrase(int status)
{
    const char *s = http_status_str((enum http_status)status);
    return strcmp(s, "<unknown>") == 0 ? "" : s;
}

/* The server's explanation in an error answer (borrowed from o): RavenDB's "Message", or the
 * "Error" of its two-factor endpoints; NULL when there is neither. */
static const char *server_message(json_t *o)
{
    const char *m = json_string_value(json_object_get(o, "Message"));
    return m ? m : json_string_value(json_object_get(o, "Error"));
}

/* Prints a non-2xx answer: status, the server's Type and message, and the node; for a 429 how
 * long to wait, for a 428 how to open the two-factor session the certificate needs. */
static void print_refusal(const struct hc_response *r)
{
    json_t *o = json_loadb((const char *)r->body.data, r->body.len, 0, NULL);
    const char *msg = server_message(o);
    const char *type = json_string_value(json_object_get(o, "Type"));
    char safe[1200], wait[64] = "";
    if (msg != NULL)
        cli_safe_text(msg, safe, sizeof safe);
    else
        cli_safe_text(r->body.len ? (const char *)r->body.data : "(no message)", safe, 300);
    if (r->status == 429 && r->retry_after[0] != '\0') {
        char ra[sizeof r->retry_after];
        cli_safe_text(r->retry_after, ra, sizeof ra);
        bool seconds = strspn(ra, "0123456789") == strlen(ra);
        snprintf(wait, sizeof wait, " (try again %s %s%s)", seconds ? "in" : "after", ra,
                 seconds ? " s" : "");
    }
    fprintf(stderr, "corvid: %d %s%s%s%s from %s: %s%s\n", r->status, reason_phrase(r->status),
            type ? " (" : "", type ? type : "", type ? ")" : "", r->url, safe, wait);
    if (r->status == 428)
        fprintf(stderr, "corvid: hint: this certificate needs a two-factor session: run `corvid "
                        "login` (with the same --cert) and enter the code of your authenticator "
                        "app\n");
    json_decref(o);
}

static bool not_ready(const struct hc_response *r)
{
    json_t *o = json_loadb((const char *)r->body.data, r->body.len, 0, NULL);
    const char *type = json_string_value(json_object_get(o, "Type"));
    bool yes = type != NULL && strcmp(type, "NotReady") == 0;
    json_decref(o);
    return yes;
}

int cli_request(struct cli *c, const char *method, const char *path, json_t *body, unsigned flags,
                const char *label, struct hc_response *out)
{
    char errmsg[CMN_ERRMSG_SIZE] = "";
    bool write = strcmp(method, "GET") != 0;
    struct cmn_buf full, text;
    cmn_buf_init(&full, false);
    cmn_buf_init(&text, true); /* bodies may hold a password */
    int rv = cmn_buf_append_str(&full, path);
    if (rv == 0 && write) {
        /* Writes carry a request id: sent again after a broken connection, the cluster applies
         * them once. */
        unsigned char id[16];
        char hex[33];
        rv = cmn_random(&cmn_rng_system, id, sizeof id);
        cmn_hex_lower(id, sizeof id, hex);
        if (rv == 0)
            rv = cmn_buf_printf(&full, "%sraft-request-id=cli-%s", strchr(path, '?') ? "&" : "?",
                                hex);
    }
    if (rv == 0 && body != NULL) {
        char *s = json_dumps(body, JSON_COMPACT);
        rv = s ? cmn_buf_append_str(&text, s) : CMN_ENOMEM;
        if (s) {
            cmn_cleanse(s, strlen(s));
            free(s);
        }
    }
    if (rv != 0) {
        cmn_buf_fini(&full);
        cmn_buf_fini(&text);
        fprintf(stderr, "corvid: out of memory\n");
        return CLI_FAILURE;
    }
    struct spinner sp = {label, false};
    struct hc_request req = {
        .method = method,
        .path = (const char *)full.data,
        .content_type = body ? "application/json; charset=utf-8" : NULL,
        .body = body ? text.data : NULL,
        .body_len = body ? text.len : 0,
        .resend_ok = !(flags & CLI_NO_RESEND),
        .secret_answer = (flags & CLI_SECRET) != 0,
        .progress = label && c->progress ? spin : NULL,
        .progress_ctx = &sp,
    };
    hc_response_init(out);
    rv = hc_call(&c->hc, &req, out, errmsg);
    /* A node that is still catching up (just restarted) answers 503 NotReady without acting:
     * the next URLs may serve at once. */
    bool retrying = false;
    for (size_t k = 1; k < c->hc.n_urls; k++) {
        bool busy = rv == 0 && out->status == 503 && not_ready(out);
        if (!busy && !(retrying && rv == CMN_EIO && req.resend_ok))
            break;
        size_t at = (c->hc.current + 1) % c->hc.n_urls;
        char msg[2 * CMN_ERRMSG_SIZE + HC_URL_MAX];
        if (busy)
            snprintf(msg, sizeof msg, "%.200s is catching up (503 NotReady); trying %.200s",
                     out->url, c->hc.urls[at].base);
        else
            snprintf(msg, sizeof msg, "%s; trying %s", errmsg, c->hc.urls[at].base);
        note_cb(NULL, msg);
        hc_response_fini(out);
        hc_response_init(out);
        c->hc.current = at;
        retrying = true;
        rv = hc_call_url(&c->hc, c->hc.urls[at].base, &req, out, errmsg);
    }
    /* Membership changes run on the leader: other nodes answer 307 with its URL. The request
     * was not carried out, so it is sent again there. */
    for (int hop = 0; rv == 0 && hop < 3 && (out->status == 307 || out->status == 308) &&
                      out->location[0] != '\0';
         hop++) {
        char loc[sizeof out->location];
        snprintf(loc, sizeof loc, "%s", out->location);
        if (c->verbose)
            fprintf(stderr, "corvid: %s %s%s -> %d, to %s\n", method, out->url, path, out->status,
                    loc);
        hc_response_fini(out);
        hc_response_init(out);
        rv = hc_call_location(&c->hc, loc, &req, out, errmsg);
    }
    if (sp.shown)
        fprintf(stderr, "\r\033[K");
    if (c->verbose)
        fprintf(stderr, "corvid: %s %s%s -> %d\n", method, out->url[0] ? out->url : "", path,
                rv == 0 ? out->status : 0);
    cmn_buf_fini(&full);
    cmn_buf_fini(&text);
    if (rv != 0) {
        fprintf(stderr, "corvid: %s\n", errmsg);
        if (rv == CMN_EIO && write && out->maybe_sent)
            fprintf(stderr, "corvid: the request had reached the node: the cluster may have "
                            "carried it out\n");
        hc_response_fini(out);
        return cli_exit_for(rv);
    }
    if (out->status >= 200 && out->status < 300)
        return CLI_OK;
    if (!(out->status == 404 && (flags & CLI_QUIET_404)))
        print_refusal(out);
    hc_response_fini(out);
    return CLI_FAILURE;
}

int cli_get_json(struct cli *c, const char *path, unsigned flags, json_t **out)
{
    struct hc_response r;
    int rv = cli_request(c, "GET", path, NULL, flags, NULL, &r);
    if (rv != CLI_OK)
        return rv;
    json_error_t err;
    *out = json_loadb((const char *)r.body.data, r.body.len, 0, &err);
    if (*out == NULL || !json_is_object(*out)) {
        fprintf(stderr, "corvid: %s answered %s with something that is not a JSON object%s%s\n",
                r.url, path, *out ? "" : ": ", *out ? "" : err.text);
        json_decref(*out);
        *out = NULL;
        hc_response_fini(&r);
        return CLI_NOCONNECT;
    }
    hc_response_fini(&r);
    return CLI_OK;
}

int cli_get_json_at(struct cli *c, const char *url, const char *path, json_t **out, char *errmsg)
{
    struct hc_request req = {.method = "GET", .path = path, .resend_ok = true};
    struct hc_response r;
    hc_response_init(&r);
    *out = NULL;
    int rv = hc_call_url(&c->hc, url, &req, &r, errmsg);
    if (c->verbose)
        fprintf(stderr, "corvid: GET %s%s -> %d\n", url, path, rv == 0 ? r.status : 0);
    if (rv != 0) {
        hc_response_fini(&r);
        return cli_exit_for(rv);
    }
    if (r.status != 200) {
        json_t *o = json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
        const char *m = server_message(o);
        char safe[200];
        cli_safe_text(m ? m : "", safe, sizeof safe);
        snprintf(errmsg, CMN_ERRMSG_SIZE, "%s: %d %s%s%s", url, r.status, reason_phrase(r.status),
                 m ? ": " : "", safe);
        json_decref(o);
        hc_response_fini(&r);
        return CLI_FAILURE;
    }
    *out = json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
    hc_response_fini(&r);
    if (*out == NULL || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        snprintf(errmsg, CMN_ERRMSG_SIZE, "%s: the answer is not a JSON object", url);
        return CLI_NOCONNECT;
    }
    return CLI_OK;
}

void cli_print_json(json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
    if (s != NULL) {
        fputs(s, stdout);
        fputc('\n', stdout);
        cmn_free_wiped(s); /* it may show a two-factor key */
    }
}

/* ---------------------------------------------------------------- files */

int cli_read_file(const char *path, size_t max, struct cmn_buf *out)
{
    out->len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "corvid: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "corvid: %s is a directory, not a file\n", path);
        close(fd);
        return -1;
    }
    for (;;) {
        if (out->len > max) {
            fprintf(stderr, "corvid: %s is larger than %zu bytes\n", path, max);
            close(fd);
            return -1;
        }
        if (cmn_buf_reserve(out, 4096) != 0) {
            fprintf(stderr, "corvid: out of memory\n");
            close(fd);
            return -1;
        }
        ssize_t got = read(fd, out->data + out->len, out->cap - out->len - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            fprintf(stderr, "corvid: cannot read %s: %s\n", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (got == 0)
            break;
        out->len += (size_t)got;
    }
    out->data[out->len] = '\0';
    close(fd);
    return 0;
}

int cli_pfx_body(const char *path, const char *pw_file, json_t **out)
{
    struct cmn_buf raw, b64, pw;
    cmn_buf_init(&raw, true);
    cmn_buf_init(&b64, true);
    cmn_buf_init(&pw, true);
    *out = NULL;
    int rv = cli_read_file(path, CA_INPUT_MAX, &raw) != 0 ||
                     (pw_file && cli_read_password_file(pw_file, &pw) != 0)
                 ? CLI_USAGE
                 : CLI_OK;
    if (rv == CLI_OK && (ca_b64_encode(raw.data, raw.len, &b64) != 0 ||
                         cmn_buf_append(&b64, "", 1) != 0 || cmn_buf_append(&pw, "", 1) != 0 ||
                         (*out = json_pack("{s:s, s:s}", "Certificate", (char *)b64.data,
                                           "Password", (char *)pw.data)) == NULL)) {
        fprintf(stderr, "corvid: out of memory\n");
        rv = CLI_FAILURE;
    }
    cmn_buf_fini(&raw);
    cmn_buf_fini(&b64);
    cmn_buf_fini(&pw);
    return rv;
}

int cli_read_password_file(const char *path, struct cmn_buf *out)
{
    cmn_buf_init(out, true);
    if (cli_read_file(path, 4096, out) != 0)
        return -1;
    size_t n = 0;
    while (n < out->len && out->data[n] != '\n' && out->data[n] != '\r')
        n++;
    cmn_cleanse(out->data + n, out->len - n);
    out->len = n;
    if (n == 0 || memchr(out->data, '\0', n) != NULL) {
        fprintf(stderr, "corvid: the password file %s is empty or holds a NUL byte\n", path);
        return -1;
    }
    return 0;
}

bool cli_prompt_password(const char *prompt, struct cmn_buf *out)
{
    cmn_buf_init(out, true);
    if (!isatty(STDIN_FILENO))
        return false;
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct termios old, quiet;
    bool restore = tcgetattr(fd, &old) == 0;
    if (restore) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    CMN_IGNORE(write(fd, prompt, strlen(prompt)));
    bool ok = cmn_buf_reserve(out, 1024) == 0;
    size_t n = 0;
    while (ok) {
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || ch == '\n' || ch == '\r')
            break;
        if (n + 1 < out->cap)
            out->data[n++] = (uint8_t)ch;
    }
    if (restore)
        tcsetattr(fd, TCSAFLUSH, &old);
    CMN_IGNORE(write(fd, "\n", 1));
    close(fd);
    if (!ok)
        return false;
    out->data[n] = '\0';
    out->len = n;
    return n > 0;
}

int cli_certfile_load(struct ca_certfile *f, const char *path, const char *key_path,
                      const char *password, bool want_key, const char *what, const char *pw_hint,
                      int fail_code)
{
    memset(f, 0, sizeof *f);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    struct cmn_buf file, keyfile, asked;
    cmn_buf_init(&file, true);
    cmn_buf_init(&keyfile, true);
    cmn_buf_init(&asked, true);
    int rv = fail_code, e;
    if (cli_read_file(path, CA_INPUT_MAX, &file) != 0)
        goto out;
    /* A separate key file only goes with certificates in PEM, DER or base64. */
    bool pfx = ca_pfx_sniff(file.data, file.len);
    if (!pfx && key_path != NULL && cli_read_file(key_path, CA_INPUT_MAX, &keyfile) != 0)
        goto out;
    const void *kp = !pfx && key_path ? keyfile.data : NULL;
    const char *kpath = !pfx && key_path ? key_path : path;
    unsigned flags = want_key ? CA_CERTFILE_KEY : 0;
    enum ca_certfile_step step = CA_CERTFILE_READ;
    const char *pw = password;
    for (;;) {
        e = ca_certfile_parse(file.data, file.len, kp, keyfile.len, pw, flags, f, &step, errmsg);
        if (e != CMN_EBADPASSWORD || pw != password)
            break;
        char prompt[PATH_MAX + 32];
        snprintf(prompt, sizeof prompt,
                 "Password for %s: ", step == CA_CERTFILE_PKCS12 ? path : kpath);
        if (!cli_prompt_password(prompt, &asked))
            break;
        pw = (const char *)asked.data;
    }
    bool hint = e == CMN_EBADPASSWORD && password == NULL && asked.len == 0;
    const char *why = errmsg[0] ? errmsg : cmn_strerror(e);
    if (e == 0)
        rv = CLI_OK;
    else if (step == CA_CERTFILE_PKCS12)
        fprintf(stderr, "corvid: %s %s: %s%s%s\n", what, path, why, hint ? "; " : "",
                hint ? pw_hint : "");
    else if (step == CA_CERTFILE_CERTS)
        fprintf(stderr, "corvid: %s %s: not a certificate (.pfx, .pem, .crt or .cer): %s\n", what,
                path, why);
    else if (step == CA_CERTFILE_NOKEY)
        fprintf(stderr, "corvid: %s %s holds no private key%s\n", what, kpath,
                pfx || key_path ? "" : " (give it with --key, or use the .pfx)");
    else if (step == CA_CERTFILE_MISMATCH)
        fprintf(stderr, "corvid: %s %s: the private key matches none of the certificates\n", what,
                kpath);
    else
        fprintf(stderr, "corvid: %s %s: the private key cannot be read: %s%s%s\n", what, kpath, why,
                hint ? "; " : "", hint ? pw_hint : "");
out:
    cmn_buf_fini(&file);
    cmn_buf_fini(&keyfile);
    cmn_buf_fini(&asked);
    return rv;
}

int cli_write_file(const char *path, const void *data, size_t len, int mode, bool force)
{
    int fd;
    char tmp[PATH_MAX];
    bool to_stdout = strcmp(path, "-") == 0;
    if (to_stdout) {
        fd = STDOUT_FILENO;
    } else {
        if (snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid()) >= (int)sizeof tmp) {
            fprintf(stderr, "corvid: path too long: %s\n", path);
            return -1;
        }
        if (!force && access(path, F_OK) == 0) {
            fprintf(stderr, "corvid: %s already exists; refusing to overwrite (use --force)\n",
                    path);
            return -1;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
        if (fd < 0) {
            fprintf(stderr, "corvid: cannot create %s: %s\n", path, strerror(errno));
            return -1;
        }
    }
    const uint8_t *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            fprintf(stderr, "corvid: cannot write %s: %s\n", to_stdout ? "to stdout" : path,
                    strerror(errno));
            goto err;
        }
        p += w;
        left -= (size_t)w;
    }
    if (to_stdout)
        return 0;
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        fprintf(stderr, "corvid: cannot write %s: %s\n", path, strerror(errno));
        goto err;
    }
    fd = -1;
    /* link() refuses to replace a file created meanwhile; rename() replaces on purpose. */
    if (force ? rename(tmp, path) != 0 : link(tmp, path) != 0) {
        fprintf(stderr, "corvid: cannot create %s: %s\n", path, strerror(errno));
        goto err;
    }
    if (!force)
        unlink(tmp);
    return 0;
err:
    if (!to_stdout) {
        if (fd >= 0)
            close(fd);
        unlink(tmp);
    }
    return -1;
}

int cli_make_dirs(const char *dir)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) {
        fprintf(stderr, "corvid: path too long: %s\n", dir);
        return -1;
    }
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char ch = *p;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "corvid: cannot create the directory %s: %s\n", buf, strerror(errno));
            return -1;
        }
        *p = ch;
        if (ch == '\0')
            break;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "corvid: %s is not a directory\n", dir);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- output */

bool cli_parse_time(const char *s, int64_t *out)
{
    if (s == NULL)
        return false;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL)
        return false;
    if (*end == '.')
        for (end++; *end >= '0' && *end <= '9'; end++) {
        }
    if (*end != 'Z' && *end != '\0')
        return false;
    *out = (int64_t)timegm(&tm);
    return true;
}

void cli_fmt_local(int64_t t, char *out, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (localtime_r(&tt, &tm) == NULL || strftime(out, n, "%Y-%m-%d %H:%M %Z", &tm) == 0)
        snprintf(out, n, "%lld", (long long)t);
}

void cli_fmt_relative(int64_t t, int64_t now, char *out, size_t n)
{
    int64_t d = t - now, a = d < 0 ? -d : d;
    const char *unit;
    int64_t v;
    if (a < 120) {
        snprintf(out, n, "%s", d < 0 ? "just now" : "in a minute");
        return;
    } else if (a < 7200) {
        v = a / 60;
        unit = "minutes";
    } else if (a < 2 * 86400) {
        v = a / 3600;
        unit = "hours";
    } else {
        v = a / 86400;
        unit = "days";
    }
    snprintf(out, n, d < 0 ? "%lld %s ago" : "in %lld %s", (long long)v, unit);
}

void cli_safe_text(const char *s, char *out, size_t n)
{
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    if (n == 0)
        return;
    while (*p && o + 1 < n) {
        if (*p < 0x20 || *p == 0x7f) {
            out[o++] = '?';
            p++;
        } else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) { /* C1 controls */
            out[o++] = '?';
            p += 2;
        } else {
            /* copy a whole UTF-8 sequence, or nothing of it */
            size_t len = *p < 0x80 ? 1 : *p < 0xe0 ? 2 : *p < 0xf0 ? 3 : 4;
            if (o + len >= n)
                break;
            size_t k = 0;
            while (k < len && p[k])
                k++;
            memcpy(out + o, p, k);
            o += k;
            p += k;
        }
    }
    out[o] = '\0';
}

void cli_fmt_perms(json_t *perms, char *out, size_t n)
{
    size_t o = 0;
    out[0] = '\0';
    const char *db;
    json_t *acc;
    json_object_foreach(perms, db, acc)
    {
        int w = snprintf(out + o, n - o, "%s%s: %s", o ? ", " : "", db,
                         json_is_string(acc) ? json_string_value(acc) : "?");
        if (w < 0 || (size_t)w >= n - o) {
            if (n > 4)
                memcpy(out + n - 4, "...", 4);
            return;
        }
        o += (size_t)w;
    }
}

void cli_table_init(struct cli_table *t, size_t ncol, const char *const *head)
{
    memset(t, 0, sizeof *t);
    t->ncol = ncol;
    t->head = head;
}

int cli_table_add(struct cli_table *t, const char *const *cells)
{
    char **nc = realloc(t->cell, (t->nrow + 1) * t->ncol * sizeof *nc);
    if (nc == NULL)
        return CMN_ENOMEM;
    t->cell = nc;
    const char **ncol = realloc(t->color, (t->nrow + 1) * t->ncol * sizeof *ncol);
    if (ncol == NULL)
        return CMN_ENOMEM;
    t->color = ncol;
    for (size_t i = 0; i < t->ncol; i++) {
        const char *s = cells[i] ? cells[i] : "";
        size_t cap = strlen(s) + 1;
        char *copy = malloc(cap);
        if (copy == NULL) {
            for (size_t k = 0; k < i; k++)
                free(t->cell[t->nrow * t->ncol + k]);
            return CMN_ENOMEM;
        }
        cli_safe_text(s, copy, cap);
        t->cell[t->nrow * t->ncol + i] = copy;
        t->color[t->nrow * t->ncol + i] = NULL;
    }
    t->nrow++;
    return 0;
}

void cli_table_color(struct cli_table *t, size_t row, size_t col, const char *ansi)
{
    if (row < t->nrow && col < t->ncol)
        t->color[row * t->ncol + col] = ansi;
}

/* Columns a string takes on a terminal (UTF-8 aware when the locale is). */
static size_t display_width(const char *s)
{
    mbstate_t st;
    memset(&st, 0, sizeof st);
    size_t w = 0;
    const char *p = s;
    size_t left = strlen(s);
    while (left > 0) {
        wchar_t wc;
        size_t k = mbrtowc(&wc, p, left, &st);
        if (k == (size_t)-1 || k == (size_t)-2) { /* not valid in this locale: count bytes */
            memset(&st, 0, sizeof st);
            w++;
            p++;
            left--;
            continue;
        }
        if (k == 0)
            break;
        int cw = wcwidth(wc);
        w += cw > 0 ? (size_t)cw : 0;
        p += k;
        left -= k;
    }
    return w;
}

void cli_table_print(const struct cli_table *t, FILE *out, bool color)
{
    size_t *width = calloc(t->ncol, sizeof *width);
    if (width == NULL)
        return;
    for (size_t c = 0; c < t->ncol; c++) {
        width[c] = display_width(t->head[c]);
        for (size_t r = 0; r < t->nrow; r++) {
            size_t w = display_width(t->cell[r * t->ncol + c]);
            if (w > width[c])
                width[c] = w;
        }
    }
    for (size_t r = 0; r <= t->nrow; r++) {
        size_t ncol = t->ncol; /* no padding after the last non-empty cell */
        while (r > 0 && ncol > 1 && t->cell[(r - 1) * t->ncol + ncol - 1][0] == '\0')
            ncol--;
        for (size_t c = 0; c < ncol; c++) {
            const char *s = r == 0 ? t->head[c] : t->cell[(r - 1) * t->ncol + c];
            const char *ansi = r == 0 ? CLI_BOLD : t->color[(r - 1) * t->ncol + c];
            bool last = c + 1 == ncol;
            if (color && ansi)
                fputs(ansi, out);
            fputs(s, out);
            if (color && ansi)
                fputs(CLI_RESET, out);
            if (!last)
                for (size_t k = display_width(s); k < width[c] + 2; k++)
                    fputc(' ', out);
        }
        fputc('\n', out);
    }
    free(width);
}

void cli_table_fini(struct cli_table *t)
{
    for (size_t i = 0; i < t->nrow * t->ncol; i++)
        free(t->cell[i]);
    free(t->cell);
    free(t->color);
    memset(t, 0, sizeof *t);
}

/* ---------------------------------------------------------------- argv */

char **cli_hoist_globals(int argc, char **argv)
{
    static const struct option globals[] = {CLI_GLOBAL_OPTIONS, {NULL, 0, NULL, 0}};
    int i = 1;
    while (i < argc && strncmp(argv[i], "--", 2) == 0 && argv[i][2] != '\0') {
        const char *name = argv[i] + 2;
        size_t len = strcspn(name, "=");
        const struct option *o = NULL;
        for (const struct option *g = globals; g->name; g++)
            if (strlen(g->name) == len && strncmp(g->name, name, len) == 0)
                o = g;
        if (o == NULL || o->val == OPT_HELP)
            break;
        i += (o->has_arg == required_argument && name[len] != '=') ? 2 : 1;
    }
    if (i == 1 || i >= argc)
        return argv;
    char **n = calloc((size_t)argc + 1, sizeof *n);
    if (n == NULL)
        return argv;
    int k = 0;
    n[k++] = argv[0];
    for (int j = i; j < argc; j++)
        n[k++] = argv[j];
    for (int j = 1; j < i; j++)
        n[k++] = argv[j];
    n[k] = NULL;
    return n;
}

const char cli_env_example[] =
    "The examples assume the local cluster (tools/local-cluster up) and:\n"
    "  export CORVID_URL=https://127.0.0.1:8081,https://127.0.0.1:8082,https://127.0.0.1:8083\n"
    "  export CORVID_CERT=var/local/admin/admin.client.certificate.pfx\n"
    "  export CORVID_CA_FILE=var/local/pki/ca-chain.crt\n";

void cli_print_help(const char *help)
{
    fputs(help, stdout);
    fputc('\n', stdout);
    fputs(cli_env_example, stdout);
    fputc('\n', stdout);
    fputs(cli_global_help, stdout);
}

static void group_usage(const struct cli_group *g, FILE *out)
{
    fprintf(out, "usage: corvid %s <command> [<args>] [global options]\n\n%s\n\nCommands:\n",
            g->name, g->about);
    for (size_t i = 0; i < g->n; i++)
        fprintf(out, "  %-12s %s\n", g->cmds[i].name, g->cmds[i].summary);
    fprintf(out,
            "\n%s\nExamples:\n%s\nRun 'corvid %s <command> --help' for a command's "
            "options.\n\n%s",
            cli_env_example, g->examples, g->name, cli_global_help);
}

int cli_group_main(const struct cli_group *g, int argc, char **argv)
{
    if (argc < 2) {
        group_usage(g, stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        group_usage(g, stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < g->n; i++) {
        if (strcmp(cmd, g->cmds[i].name) == 0) {
            int rv = g->cmds[i].run(argc - 1, argv + 1);
            fflush(stdout);
            return rv;
        }
    }
    fprintf(stderr, "corvid: unknown %s command '%s'\n\n", g->name, cmd);
    group_usage(g, stderr);
    return CLI_USAGE;
}
