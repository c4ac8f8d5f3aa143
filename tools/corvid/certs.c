/* `corvid certs`: the cluster's client certificates over the HTTPS API — list, show, generate,
 * upload, edit, clone, delete, purge, export, whoami, expiring. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zip.h>

#include "common/env.h"
#include "tools/corvid/cli.h"
#include "tools/corvid/remote.h"
#include "tools/corvid/twofactor.h"

const char certs_summary[] = "client certificates on a running cluster: list, generate, revoke…";

#define MAX_PERMS 256
#define PAGE_SIZE 1000

/* ---------------------------------------------------------------- shared */

static int usage_error(const char *cmd)
{
    fprintf(stderr, "Run 'corvid certs %s --help' for its options.\n", cmd);
    return CLI_USAGE;
}

static const char *const clearances[] = {"ClusterAdmin", "ClusterNode", "Operator", "ValidUser"};
static const char *const accesses[] = {"Admin", "ReadWrite", "Read"};

static const char *canonical(const char *s, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(s, names[i]) == 0)
            return names[i];
    return NULL;
}

static const char *parse_clearance(const char *s)
{
    const char *c = canonical(s, clearances, 4);
    if (c == NULL)
        fprintf(stderr,
                "corvid: --clearance must be ClusterAdmin, ClusterNode, Operator or "
                "ValidUser, not '%s'\n",
                s);
    return c;
}

/* A --perm DB=ACCESS into perms (replacing an earlier one for the same database). */
static int add_perm(json_t *perms, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (eq == NULL || eq == arg) {
        fprintf(stderr,
                "corvid: --perm expects DATABASE=ACCESS (Admin, ReadWrite or Read), got "
                "'%s'\n",
                arg);
        return -1;
    }
    const char *acc = canonical(eq + 1, accesses, 3);
    if (acc == NULL) {
        fprintf(stderr, "corvid: --perm %s: the access must be Admin, ReadWrite or Read\n", arg);
        return -1;
    }
    if (json_object_size(perms) >= MAX_PERMS) {
        fprintf(stderr, "corvid: at most %d --perm options\n", MAX_PERMS);
        return -1;
    }
    char db[256];
    size_t len = (size_t)(eq - arg);
    if (len >= sizeof db) {
        fprintf(stderr, "corvid: --perm: database name too long\n");
        return -1;
    }
    memcpy(db, arg, len);
    db[len] = '\0';
    if (json_object_set_new(perms, db, json_string(acc)) != 0) {
        fprintf(stderr, "corvid: --perm: the database name is not valid UTF-8\n");
        return -1;
    }
    return 0;
}

static bool is_thumbprint(const char *s)
{
    return strlen(s) == 40 && cmn_is_hex(s, 40);
}

static void upper_copy(const char *in, char *out, size_t n)
{
    size_t i = 0;
    for (; in[i] && i + 1 < n; i++)
        out[i] = (char)(in[i] >= 'a' && in[i] <= 'z' ? in[i] - 32 : in[i]);
    out[i] = '\0';
}

/* GET /admin/certificates with query (already escaped), paging through every result. Returns
 * the first answer's object with Results holding them all. */
static int fetch_certs(struct cli *c, const char *query, json_t **out)
{
    *out = NULL;
    json_t *all = NULL;
    for (size_t start = 0;;) {
        char path[2048];
        snprintf(path, sizeof path, "/admin/certificates?metadataOnly=true&start=%zu&pageSize=%d%s",
                 start, PAGE_SIZE, query);
        json_t *page;
        int rv = cli_get_json(c, path, 0, &page);
        if (rv != CLI_OK) {
            json_decref(all);
            return rv;
        }
        json_t *res = json_object_get(page, "Results");
        if (!json_is_array(res)) {
            fprintf(stderr, "corvid: the answer to GET /admin/certificates has no Results\n");
            json_decref(page);
            json_decref(all);
            return CLI_NOCONNECT;
        }
        /* The node's own certificate comes first on an unfiltered first page, outside the
         * count. */
        size_t n = json_array_size(res), records = n;
        const char *own = json_string_value(json_object_get(page, "LoadedServerCert"));
        if (start == 0 && n > 0 && own &&
            strcasecmp(cli_str(json_array_get(res, 0), "Thumbprint"), own) == 0 &&
            strcmp(cli_str(json_array_get(res, 0), "Name"), "Server Certificate") == 0)
            records--;
        if (all == NULL) {
            all = page;
        } else {
            json_array_extend(json_object_get(all, "Results"), res);
            json_decref(page);
        }
        if (records < PAGE_SIZE)
            break;
        start += records;
    }
    *out = all;
    return CLI_OK;
}

/* Finds a certificate by thumbprint or by exact name. With full, the definition includes the
 * certificate itself. */
static int resolve(struct cli *c, const char *ref, bool full, json_t **def)
{
    *def = NULL;
    char path[2048];
    json_t *o;
    int rv;
    if (is_thumbprint(ref)) {
        snprintf(path, sizeof path, "/admin/certificates?thumbprint=%s%s", ref,
                 full ? "" : "&metadataOnly=true");
        if ((rv = cli_get_json(c, path, 0, &o)) != CLI_OK)
            return rv;
    } else {
        struct cmn_buf q;
        cmn_buf_init(&q, false);
        if (cmn_buf_append_str(&q, "&name=") != 0 || hc_query_escape(ref, &q) != 0) {
            cmn_buf_fini(&q);
            fprintf(stderr, "corvid: out of memory\n");
            return CLI_FAILURE;
        }
        rv = fetch_certs(c, (const char *)q.data, &o);
        cmn_buf_fini(&q);
        if (rv != CLI_OK)
            return rv;
        json_t *res = json_object_get(o, "Results");
        size_t n = json_array_size(res);
        char safe[300];
        cli_safe_text(ref, safe, sizeof safe);
        if (n == 0) {
            fprintf(stderr,
                    "corvid: no certificate is named '%s' (names are exact; give the "
                    "thumbprint, see `corvid certs list`)\n",
                    safe);
            json_decref(o);
            return CLI_FAILURE;
        }
        if (n > 1) {
            fprintf(stderr, "corvid: %zu certificates are named '%s'; give the thumbprint:\n", n,
                    safe);
            for (size_t i = 0; i < n; i++)
                fprintf(stderr, "  %s  %s\n", cli_str(json_array_get(res, i), "Thumbprint"),
                        cli_str(json_array_get(res, i), "SecurityClearance"));
            json_decref(o);
            return CLI_FAILURE;
        }
        if (full) {
            char tp[64];
            snprintf(tp, sizeof tp, "%s", cli_str(json_array_get(res, 0), "Thumbprint"));
            json_decref(o);
            if (!is_thumbprint(tp)) {
                fprintf(stderr, "corvid: the node answered a certificate without a thumbprint\n");
                return CLI_NOCONNECT;
            }
            return resolve(c, tp, true, def);
        }
    }
    json_t *first = json_array_get(json_object_get(o, "Results"), 0);
    if (!json_is_object(first)) {
        fprintf(stderr, "corvid: certificate %s: the node answered no result\n", ref);
        json_decref(o);
        return CLI_FAILURE;
    }
    *def = json_incref(first);
    json_decref(o);
    return CLI_OK;
}

/* ---------------------------------------------------------------- two-factor keys */

/* A new two-factor key from the cluster for the certificate that body registers or edits
 * (GET /admin/certificates/2fa/generate?name=, body's "Name"), checked with tf_key_check and set
 * in body as TwoFactorAuthenticationKey. *key (the caller's) holds "Secret" and "QrCodeUri",
 * for totp_report once the write succeeded. */
static int totp_attach(struct cli *c, json_t *body, json_t **key)
{
    *key = NULL;
    struct cmn_buf path;
    cmn_buf_init(&path, false);
    if (cmn_buf_append_str(&path, "/admin/certificates/2fa/generate?name=") != 0 ||
        hc_query_escape(cli_str(body, "Name"), &path) != 0) {
        cmn_buf_fini(&path);
        fprintf(stderr, "corvid: out of memory\n");
        return CLI_FAILURE;
    }
    json_t *o;
    int rv = cli_get_json(c, (const char *)path.data, CLI_SECRET, &o);
    cmn_buf_fini(&path);
    if (rv != CLI_OK)
        return rv;
    const char *secret, *uri;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (tf_key_check(o, &secret, &uri, errmsg) != 0) {
        fprintf(stderr, "corvid: %s answered no usable two-factor key: %s\n",
                c->hc.urls[c->hc.current].base, errmsg);
        json_decref(o);
        return CLI_NOCONNECT;
    }
    if (json_object_set(body, "TwoFactorAuthenticationKey", json_object_get(o, "Secret")) != 0) {
        fprintf(stderr, "corvid: out of memory\n");
        json_decref(o);
        return CLI_FAILURE;
    }
    *key = o;
    return CLI_OK;
}

/* Once the cluster took the key: with --json adds it and its URI to out (before out is
 * printed), else prints both for people, with the QR code when stdout is a terminal. */
static void totp_report(struct cli *c, json_t *key, json_t *out)
{
    const char *secret = cli_str(key, "Secret"), *uri = cli_str(key, "QrCodeUri");
    if (c->json) {
        json_object_set(out, "TwoFactorAuthenticationKey", json_object_get(key, "Secret"));
        json_object_set(out, "QrCodeUri", json_object_get(key, "QrCodeUri"));
        fprintf(stderr, "corvid: note: the two-factor key (TwoFactorAuthenticationKey) is shown "
                        "this once: add it to an authenticator app now\n");
        return;
    }
    char errmsg[CMN_ERRMSG_SIZE] = "";
    putchar('\n');
    if (tf_key_print(stdout, secret, uri, isatty(STDOUT_FILENO), errmsg) != 0)
        fprintf(stderr, "corvid: no QR code (%s): type the key into the app\n", errmsg);
}

#define TWO_FACTOR_HELP                                                                            \
    "  --two-factor              require a two-factor session: the cluster makes a TOTP key,\n"    \
    "                            shown once here (with a QR code on a terminal) to add to an\n"    \
    "                            authenticator app; the certificate then needs `corvid login`\n"

/* ---------------------------------------------------------------- last used */

/* Thumbprint -> latest "last used" time over every node (RavenDB keeps it per node). Nodes come
 * from the topology (else the --url list); those that cannot be asked are named on stderr. */
static json_t *last_used_everywhere(struct cli *c)
{
    json_t *latest = json_object();
    json_t *topo = NULL, *urls = json_array();
    char errmsg[CMN_ERRMSG_SIZE] = "";
    /* the topology is only readable by valid users: quietly fall back on the given URLs */
    struct hc_response r;
    if (cli_request(c, "GET", "/cluster/topology", NULL, CLI_QUIET_404, NULL, &r) == CLI_OK) {
        topo = json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
        hc_response_fini(&r);
    }
    json_t *all = json_object_get(json_object_get(topo, "Topology"), "AllNodes");
    const char *tag;
    json_t *u;
    json_object_foreach(all, tag, u)
    {
        if (json_string_length(u) > 0)
            json_array_append(urls, u);
        else
            fprintf(stderr,
                    "corvid: note: node %s has no URL in the topology; its last-used "
                    "times are not included\n",
                    tag);
    }
    if (json_array_size(urls) == 0)
        for (size_t i = 0; i < c->hc.n_urls; i++)
            json_array_append_new(urls, json_string(c->hc.urls[i].base));
    size_t i;
    json_array_foreach(urls, i, u)
    {
        json_t *stats;
        if (cli_get_json_at(c, json_string_value(u), "/admin/stats", &stats, errmsg) != CLI_OK) {
            fprintf(stderr, "corvid: note: last-used times lack a node: %s\n", errmsg);
            continue;
        }
        const char *tp;
        json_t *when;
        json_object_foreach(json_object_get(stats, "LastRequestTimePerCertificate"), tp, when)
        {
            int64_t t, prev;
            if (!cli_parse_time(json_string_value(when), &t))
                continue;
            char key[64];
            upper_copy(tp, key, sizeof key);
            json_t *have = json_object_get(latest, key);
            if (have == NULL || !cli_parse_time(json_string_value(have), &prev) || t > prev)
                json_object_set(latest, key, when);
        }
        json_decref(stats);
    }
    json_decref(urls);
    json_decref(topo);
    return latest;
}

static void attach_last_used(json_t *results, json_t *latest)
{
    size_t i;
    json_t *d;
    json_array_foreach(results, i, d)
    {
        char key[64];
        upper_copy(cli_str(d, "Thumbprint"), key, sizeof key);
        json_t *w = json_object_get(latest, key);
        json_object_set(d, "LastUsed", w ? w : json_null());
    }
}

/* ---------------------------------------------------------------- tables */

static void fmt_date(json_t *d, const char *key, char *out, size_t n, int64_t *t)
{
    int64_t v;
    if (cli_parse_time(json_string_value(json_object_get(d, key)), &v)) {
        cli_fmt_local(v, out, n);
        if (t)
            *t = v;
    } else {
        snprintf(out, n, "%s", json_is_null(json_object_get(d, key)) ? "never" : "-");
        if (t)
            *t = 0;
    }
}

static const char *expiry_color(int64_t na, int64_t now)
{
    if (na - now <= 7 * 86400)
        return CLI_RED;
    if (na - now <= 30 * 86400)
        return CLI_YELLOW;
    return NULL;
}

static void perms_text(json_t *d, char *out, size_t n)
{
    const char *cl = cli_str(d, "SecurityClearance");
    cli_fmt_perms(json_object_get(d, "Permissions"), out, n);
    if (out[0] == '\0')
        snprintf(out, n, "%s",
                 strcmp(cl, "ClusterAdmin") == 0 || strcmp(cl, "ClusterNode") == 0 ||
                         strcmp(cl, "Operator") == 0
                     ? "(all databases)"
                     : "(none)");
}

static int by_name(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int r = strcasecmp(cli_str(x, "Name"), cli_str(y, "Name"));
    return r ? r : strcmp(cli_str(x, "Thumbprint"), cli_str(y, "Thumbprint"));
}

static int by_expiry(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int64_t tx = 0, ty = 0;
    CMN_IGNORE(cli_parse_time(cli_str(x, "NotAfter"), &tx));
    CMN_IGNORE(cli_parse_time(cli_str(y, "NotAfter"), &ty));
    return tx < ty ? -1 : tx > ty;
}

/* Prints definitions as the Studio's list: name, thumbprint, clearance, valid from, expiration,
 * last used, permissions. The node's own certificate (when first) stays first. */
static int print_cert_table(struct cli *c, json_t *results, const char *own, bool sort_expiry)
{
    size_t n = json_array_size(results), skip = 0;
    json_t **v = calloc(n ? n : 1, sizeof *v);
    if (v == NULL)
        return CLI_FAILURE;
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(results, i);
    if (n > 0 && own && strcasecmp(cli_str(v[0], "Thumbprint"), own) == 0)
        skip = 1;
    /* The node's own certificate is listed first ("Server Certificate") even when it is also
     * registered ("Server Certificate for Node A"): one row is enough. */
    for (size_t i = 1; skip && i < n; i++)
        if (strcasecmp(cli_str(v[i], "Thumbprint"), own) == 0) {
            memmove(v, v + 1, (n - 1) * sizeof *v);
            n--;
            skip = 0;
        }
    qsort(v + skip, n - skip, sizeof *v, sort_expiry ? by_expiry : by_name);
    static const char *const head[] = {"NAME",    "THUMBPRINT", "CLEARANCE",  "VALID FROM",
                                       "EXPIRES", "LAST USED",  "PERMISSIONS"};
    struct cli_table t;
    cli_table_init(&t, 7, head);
    int64_t now = cmn_now_ms(&cmn_clock_system) / 1000;
    int rv = CLI_OK;
    for (size_t i = 0; i < n; i++) {
        char name[300], nb[64], na[80], lu[64], perms[1024];
        int64_t na_t;
        size_t sec = json_array_size(json_object_get(v[i], "CollectionSecondaryKeys"));
        if (sec)
            snprintf(name, sizeof name, "%.256s (+%zu)", cli_str(v[i], "Name"), sec);
        else
            snprintf(name, sizeof name, "%s", cli_str(v[i], "Name"));
        fmt_date(v[i], "NotBefore", nb, sizeof nb, NULL);
        fmt_date(v[i], "NotAfter", na, sizeof na, &na_t);
        if (na_t && na_t <= now)
            snprintf(na + strlen(na), sizeof na - strlen(na), " (expired)");
        if (json_object_get(v[i], "LastUsed"))
            fmt_date(v[i], "LastUsed", lu, sizeof lu, NULL);
        else
            snprintf(lu, sizeof lu, "-");
        perms_text(v[i], perms, sizeof perms);
        const char *row[] = {
            name, cli_str(v[i], "Thumbprint"), cli_str(v[i], "SecurityClearance"), nb, na, lu,
            perms};
        if (cli_table_add(&t, row) != 0) {
            rv = CLI_FAILURE;
            break;
        }
        if (na_t)
            cli_table_color(&t, i, 4, expiry_color(na_t, now));
        if (i < skip)
            cli_table_color(&t, i, 0, CLI_DIM);
    }
    if (rv == CLI_OK)
        cli_table_print(&t, stdout, c->color);
    cli_table_fini(&t);
    free(v);
    return rv;
}

/* ---------------------------------------------------------------- list */

static const char list_help[] =
    "usage: corvid certs list [--name NAME] [--secondary] [--no-last-used] [global options]\n"
    "\n"
    "Lists the certificates registered in the cluster, as the Studio does: name, thumbprint,\n"
    "security clearance, validity, last use (the latest over every node) and permissions. The\n"
    "answering node's own server certificate comes first. Expiration is red within 7 days and\n"
    "yellow within 30 on a terminal. Dates are local, with the zone.\n"
    "\n"
    "Options:\n"
    "  --name NAME      only the certificates with exactly this name\n"
    "  --secondary      also the secondary certificates of collections (uploaded .pfx files\n"
    "                   holding several certificates)\n"
    "  --no-last-used   do not ask every node when each certificate was last used\n"
    "\n"
    "With --json: the node's answer ({\"Results\": [...], \"LoadedServerCert\": ...}), every\n"
    "result with \"LastUsed\" (ISO 8601 UTC, or null).\n"
    "\n"
    "Examples:\n"
    "  corvid certs list\n"
    "  corvid certs list --name ops --json\n"
    "  corvid certs list --url https://127.0.0.1:8081 --cert "
    "var/local/admin/admin.client.certificate.pfx \\\n"
    "      --ca-file var/local/pki/ca-chain.crt\n";

static int cmd_list(int argc, char **argv)
{
    enum { O_NAME = OPT_LOCAL_BASE, O_SECONDARY, O_NO_LU };
    static const struct option opts[] = {
        {"name", required_argument, NULL, O_NAME},
        {"secondary", no_argument, NULL, O_SECONDARY},
        {"no-last-used", no_argument, NULL, O_NO_LU},
        CLI_GLOBAL_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct cli c;
    cli_init(&c);
    const char *name = NULL;
    bool secondary = false, last_used = true;
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        CLI_PARSE_GLOBAL(c, o, usage_error("list"));
        switch (o) {
        case O_NAME:
            name = optarg;
            break;
        case O_SECONDARY:
            secondary = true;
            break;
        case O_NO_LU:
            last_used = false;
            break;
        default:
            cli_fini(&c);
            return usage_error("list");
        }
    }
    if (optind != argc && !c.help) {
        fprintf(stderr, "corvid: certs list takes no arguments (use --name NAME)\n");
        cli_fini(&c);
        return usage_error("list");
    }
    CLI_START(c, list_help);
    struct cmn_buf q;
    cmn_buf_init(&q, false);
    int rv = CLI_FAILURE;
    json_t *all = NULL;
    if ((secondary && cmn_buf_append_str(&q, "&secondary=true") != 0) ||
        (name && (cmn_buf_append_str(&q, "&name=") != 0 || hc_query_escape(name, &q) != 0)) ||
        cmn_buf_append_str(&q, "") != 0) {
        fprintf(stderr, "corvid: out of memory\n");
        goto out;
    }
    if ((rv = fetch_certs(&c, (const char *)q.data, &all)) != CLI_OK)
        goto out;
    json_t *results = json_object_get(all, "Results");
    if (last_used) {
        json_t *lu = last_used_everywhere(&c);
        attach_last_used(results, lu);
        json_decref(lu);
    }
    if (c.json) {
        cli_print_json(all);
    } else if (json_array_size(results) == 0) {
        printf(name ? "No certificate is named so.\n" : "No certificates.\n");
    } else {
        rv = print_cert_table(&c, results,
                              json_string_value(json_object_get(all, "LoadedServerCert")), false);
    }
out:
    json_decref(all);
    cmn_buf_fini(&q);
    cli_fini(&c);
    return rv;
}

/* ---------------------------------------------------------------- show / whoami */

#define ROW "  %-20s %s\n"

/* Whether d needs two-factor sessions and, in whoami's answer (which has
 * "TwoFactorExpirationDate"), until when the current one lasts. */
static void print_two_factor(json_t *d, int64_t now)
{
    char line[200], date[80], rel[64];
    json_t *until = json_object_get(d, "TwoFactorExpirationDate");
    int64_t t;
    if (!json_is_true(json_object_get(d, "HasTwoFactor")))
        snprintf(line, sizeof line, "not required");
    else if (until == NULL)
        snprintf(line, sizeof line, "required");
    else if (!cli_parse_time(json_string_value(until), &t))
        snprintf(line, sizeof line, "required, no session: run `corvid login`");
    else {
        cli_fmt_local(t, date, sizeof date);
        cli_fmt_relative(t, now, rel, sizeof rel);
        snprintf(line, sizeof line,
                 t > now ? "required, session until %s (%s)"
                         : "required, the session ended %s (%s): run "
                           "`corvid login`",
                 date, rel);
    }
    printf(ROW, "Two-factor:", line);
}

static void print_definition(struct cli *c, json_t *d)
{
    char buf[1200], date[80];
    int64_t now = cmn_now_ms(&cmn_clock_system) / 1000, t;
    cli_safe_text(cli_str(d, "Name"), buf, sizeof buf);
    printf(ROW, "Name:", buf);
    printf(ROW, "Thumbprint:", cli_str(d, "Thumbprint"));
    printf(ROW, "Security clearance:", cli_str(d, "SecurityClearance"));
    perms_text(d, buf, sizeof buf);
    char safe[1200];
    cli_safe_text(buf, safe, sizeof safe);
    printf(ROW, "Permissions:", safe);
    fmt_date(d, "NotBefore", date, sizeof date, &t);
    printf(ROW, "Valid from:", date);
    fmt_date(d, "NotAfter", date, sizeof date, &t);
    if (t) {
        char rel[64];
        cli_fmt_relative(t, now, rel, sizeof rel);
        const char *col = c->color ? expiry_color(t, now) : NULL;
        printf("  %-20s %s%s (%s%s)%s\n", "Expires:", col ? col : "", date,
               t <= now ? "expired " : "", rel, col ? CLI_RESET : "");
    }
    if (json_object_get(d, "LastUsed")) {
        fmt_date(d, "LastUsed", date, sizeof date, NULL);
        printf(ROW, "Last used:", date);
    }
    print_two_factor(d, now);
    if (cli_str(d, "PublicKeyPinningHash")[0])
        printf(ROW, "Pinning hash:", cli_str(d, "PublicKeyPinningHash"));
    json_t *sec = json_object_get(d, "CollectionSecondaryKeys");
    if (json_array_size(sec) > 0) {
        size_t i;
        json_t *s;
        json_array_foreach(sec, i, s) printf(ROW, i == 0 ? "Secondary keys:" : "",
                                             json_string_value(s) ? json_string_value(s) : "?");
    }
    if (cli_str(d, "CollectionPrimaryKey")[0])
        printf(ROW, "Primary key:", cli_str(d, "CollectionPrimaryKey"));

    const char *b64 = json_string_value(json_object_get(d, "Certificate"));
    if (b64 == NULL)
        return;
    struct cmn_buf der, subj, iss;
    cmn_buf_init(&der, false);
    cmn_buf_init(&subj, false);
    cmn_buf_init(&iss, false);
    X509 *x = NULL;
    struct ca_ident id;
    struct ca_strlist sans = {NULL, 0};
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (ca_b64_decode(b64, strlen(b64), &der, errmsg) == 0 &&
        ca_cert_from_der(der.data, der.len, &x, errmsg) == 0 && ca_ident_get(x, &id, errmsg) == 0 &&
        ca_subject_str(x, &subj) == 0 && ca_issuer_str(x, &iss) == 0 &&
        ca_sans(x, &sans, errmsg) == 0) {
        char kdesc[32];
        ca_key_describe(X509_get0_pubkey(x), kdesc, sizeof kdesc);
        cli_safe_text((const char *)subj.data, buf, sizeof buf);
        printf(ROW, "Subject:", buf);
        cli_safe_text((const char *)iss.data, buf, sizeof buf);
        printf(ROW, "Issuer:", buf);
        printf(ROW, "Serial:", id.serial);
        printf(ROW, "Key:", kdesc);
        printf(ROW, "Usage:",
               (id.eku & CA_EKU_ANY)                                  ? "(unrestricted)"
               : (id.eku & CA_EKU_SERVER) && (id.eku & CA_EKU_CLIENT) ? "serverAuth, clientAuth"
               : (id.eku & CA_EKU_CLIENT)                             ? "clientAuth"
               : (id.eku & CA_EKU_SERVER)                             ? "serverAuth"
                                                                      : "(none for TLS)");
        for (size_t i = 0; i < sans.n; i++) {
            cli_safe_text(sans.v[i], buf, sizeof buf);
            printf(ROW, i == 0 ? "Alternative names:" : "", buf);
        }
        printf(ROW, "SHA-256:", id.sha256);
    } else {
        printf(ROW, "Certificate:", errmsg[0] ? errmsg : "cannot be decoded");
    }
    ca_strlist_fini(&sans);
    X509_free(x);
    cmn_buf_fini(&der);
    cmn_buf_fini(&subj);
    cmn_buf_fini(&iss);
}

static int print_pem(json_t *d)
{
    const char *b64 = json_string_value(json_object_get(d, "Certificate"));
    struct cmn_buf der, pem;
    cmn_buf_init(&der, false);
    cmn_buf_init(&pem, false);
    X509 *x = NULL;
    int rv = b64 && ca_b64_decode(b64, strlen(b64), &der, NULL) == 0 &&
                     ca_cert_from_der(der.data, der.len, &x, NULL) == 0 &&
                     ca_cert_to_pem(x, &pem) == 0
                 ? CLI_OK
                 : CLI_FAILURE;
    if (rv == CLI_OK)
        fwrite(pem.data, 1, pem.len, stdout);
    else
        fprintf(stderr, "corvid: the answer holds no readable certificate\n");
    X509_free(x);
    cmn_buf_fini(&der);
    cmn_buf_fini(&pem);
    return rv;
}

static const char show_help[] =
    "usage: corvid certs show THUMBPRINT|NAME [--pem] [--no-last-used] [global options]\n"
    "\n"
    "Shows one certificate: its registration (clearance, permissions, validity, last use over\n"
    "every node, two-factor, collection) and what the certificate itself says (subject, issuer,\n"
    "serial, key, usage, alternative names, fingerprints). NAME must match exactly one\n"
    "certificate.\n"
    "\n"
    "Options:\n"
    "  --pem            print only the certificate, PEM-encoded (e.g. to save it as .crt)\n"
    "  --no-last-used   do not ask every node when it was last used\n"
    "\n"
    "With --json: the certificate's definition as the node gives it (Certificate is base64 DER),\n"
    "with \"LastUsed\".\n"
    "\n"
    "Examples:\n"
    "  corvid certs show admin\n"
    "  corvid certs show 6F3A0C2B7D1E4F5A6B7C8D9E0F1A2B3C4D5E6F70 --json\n"
    "  corvid certs show ops --pem > ops.crt\n";

static int cmd_show(int argc, char **argv)
{
    enum { O_PEM = OPT_LOCAL_BASE, O_NO_LU };
    static const struct option opts[] = {
        {"pem", no_argument, NULL, O_PEM},
        {"no-last-used", no_argument, NULL, O_NO_LU},
        CLI_GLOBAL_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct cli c;
    cli_init(&c);
    bool pem = false, last_used = true;
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        CLI_PARSE_GLOBAL(c, o, usage_error("show"));
        switch (o) {
        case O_PEM:
            pem = true;
            break;
        case O_NO_LU:
            last_used = false;
            break;
        default:
            cli_fini(&c);
            return usage_error("show");
        }
    }
    if (optind != argc - 1 && !c.help) {
        fprintf(stderr, "corvid: certs show needs one THUMBPRINT or NAME\n");
        cli_fini(&c);
        return usage_error("show");
    }
    CLI_START(c, show_help);
    json_t *d;
    int rv = resolve(&c, argv[optind], true, &d);
    if (rv != CLI_OK) {
        cli_fini(&c);
        return rv;
    }
    if (pem) {
        rv = print_pem(d);
    } else {
        if (last_used) {
            json_t *lu = last_used_everywhere(&c);
            json_t *arr = json_pack("[O]", d);
            attach_last_used(arr, lu);
            json_decref(arr);
            json_decref(lu);
        }
        if (c.json)
            cli_print_json(d);
        else
            print_definition(&c, d);
    }
    json_decref(d);
    cli_fini(&c);
    return rv;
}

static const char whoami_help[] =
    "usage: corvid certs whoami [global options]\n"
    "\n"
    "Shows how the cluster sees the client certificate given with --cert (or CORVID_CERT): its\n"
    "name, clearance and permissions. Exits 1 when the cluster does not know it (or no\n"
    "certificate was given).\n"
    "\n"
    "With --json: the definition, or null when the certificate is not known.\n"
    "\n"
    "Examples:\n"
    "  corvid certs whoami\n"
    "  corvid certs whoami --cert ops.pfx --password-file ops.pass\n";

static int cmd_whoami(int argc, char **argv)
{
    static const struct option opts[] = {CLI_GLOBAL_OPTIONS, {NULL, 0, NULL, 0}};
    struct cli c;
    cli_init(&c);
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        CLI_PARSE_GLOBAL(c, o, usage_error("whoami"));
        cli_fini(&c);
        return usage_error("whoami");
    }
    if (optind != argc && !c.help) {
        fprintf(stderr, "corvid: certs whoami takes no arguments\n");
        cli_fini(&c);
        return usage_error("whoami");
    }
    CLI_START(c, whoami_help);
    struct hc_response r;
    int rv = cli_request(&c, "GET", "/certificates/whoami", NULL, 0, NULL, &r);
    if (rv != CLI_OK) {
        cli_fini(&c);
        return rv;
    }
    json_t *d = NULL;
    if (r.status == 200) {
        d = json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
        if (!json_is_object(d)) {
            fprintf(stderr, "corvid: %s answered whoami with something that is not JSON\n", r.url);
            rv = CLI_NOCONNECT;
        }
    } else {
        rv = CLI_FAILURE;
        if (c.json)
            puts("null");
        fprintf(stderr, "corvid: %s does not know %s (%d: not registered in the cluster)\n", r.url,
                c.cert ? "this client certificate" : "you: no client certificate was given",
                r.status);
    }
    if (rv == CLI_OK) {
        if (c.json)
            cli_print_json(d);
        else
            print_definition(&c, d);
    }
    json_decref(d);
    hc_response_fini(&r);
    cli_fini(&c);
    return rv;
}

/* ---------------------------------------------------------------- generate / clone */

struct gen_opts {
    const char *name;
    const char *clearance;
    json_t *perms; /* owned */
    const char *key_type;
    char not_after[16];
    const char *pfx_password_file;
    const char *out;
    bool force;
    bool two_factor;
};

static int parse_date_arg(const char *arg, char out[16])
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(arg, "%Y-%m-%d", &tm);
    if (end == NULL || *end != '\0') {
        fprintf(stderr, "corvid: --not-after expects a date YYYY-MM-DD, not '%s'\n", arg);
        return -1;
    }
    strftime(out, 16, "%Y-%m-%d", &tm);
    return 0;
}

static int parse_days_arg(const char *arg, char out[16])
{
    char *end;
    long d = strtol(arg, &end, 10);
    if (*end != '\0' || end == arg || d < 1 || d > 36500) {
        fprintf(stderr, "corvid: --days expects a number of days from 1 to 36500\n");
        return -1;
    }
    time_t t = (time_t)(cmn_now_ms(&cmn_clock_system) / 1000 + (int64_t)d * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y-%m-%d", &tm);
    return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

/* A zip entry name the node may legitimately send: a plain file name. */
static bool safe_entry(const char *n)
{
    if (n == NULL || n[0] == '\0' || n[0] == '.' || strlen(n) > 255)
        return false;
    for (const unsigned char *p = (const unsigned char *)n; *p; p++)
        if (*p < 0x20 || *p == '/' || *p == '\\' || *p == 0x7f)
            return false;
    return true;
}

struct zip_file_out {
    char name[256];
    struct cmn_buf data; /* secret */
};

/* Reads every entry of the zip the node answered (in memory). */
static int read_zip(const struct cmn_buf *zipb, struct zip_file_out *files, size_t max, size_t *n)
{
    *n = 0;
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(zipb->data, zipb->len, 0, &ze);
    zip_t *za = src ? zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze) : NULL;
    if (za == NULL) {
        fprintf(stderr, "corvid: the node's answer is not a readable zip: %s\n",
                zip_error_strerror(&ze));
        if (src)
            zip_source_free(src);
        zip_error_fini(&ze);
        return -1;
    }
    zip_error_fini(&ze);
    int rv = 0;
    zip_int64_t count = zip_get_num_entries(za, 0);
    if (count < 1 || (size_t)count > max) {
        fprintf(stderr, "corvid: the zip holds %lld entries, expected .pfx, .crt and .key\n",
                (long long)count);
        rv = -1;
    }
    for (zip_int64_t i = 0; rv == 0 && i < count; i++) {
        const char *name = zip_get_name(za, (zip_uint64_t)i, ZIP_FL_ENC_GUESS);
        zip_stat_t st;
        if (!safe_entry(name) || zip_stat_index(za, (zip_uint64_t)i, 0, &st) != 0 ||
            !(st.valid & ZIP_STAT_SIZE) || st.size > CA_INPUT_MAX) {
            fprintf(stderr, "corvid: the zip holds an unexpected entry; nothing written\n");
            rv = -1;
            break;
        }
        struct zip_file_out *f = &files[(*n)++];
        snprintf(f->name, sizeof f->name, "%s", name);
        cmn_buf_init(&f->data, true);
        zip_file_t *zf = zip_fopen_index(za, (zip_uint64_t)i, 0);
        if (zf == NULL || cmn_buf_reserve(&f->data, (size_t)st.size + 1) != 0) {
            if (zf)
                zip_fclose(zf);
            fprintf(stderr, "corvid: cannot read %s from the zip\n", name);
            rv = -1;
            break;
        }
        zip_int64_t got = zip_fread(zf, f->data.data, st.size);
        zip_fclose(zf);
        if (got < 0 || (zip_uint64_t)got != st.size) {
            fprintf(stderr, "corvid: cannot read %s from the zip\n", name);
            rv = -1;
            break;
        }
        f->data.len = (size_t)got;
        f->data.data[f->data.len] = '\0';
    }
    zip_discard(za);
    return rv;
}

static int generate_core(struct cli *c, struct gen_opts *g, const char *what)
{
    int rv = CLI_FAILURE;
    struct cmn_buf pw;
    cmn_buf_init(&pw, true);
    char safe[CA_BUNDLE_NAME_MAX + 1];
    ca_bundle_safe_name(g->name, safe);
    char zip_path[PATH_MAX] = "", dir[PATH_MAX] = "";
    bool unpack;
    if (g->out == NULL) {
        snprintf(zip_path, sizeof zip_path, "%s.zip", safe);
        unpack = false;
    } else if (ends_with(g->out, ".zip")) {
        snprintf(zip_path, sizeof zip_path, "%s", g->out);
        unpack = false;
    } else {
        snprintf(dir, sizeof dir, "%s", g->out);
        unpack = true;
    }
    /* Refuse before the cluster issues anything: a registered certificate whose key cannot be
     * written would be lost. */
    if (unpack) {
        static const char *const ext[] = {".pfx", ".crt", ".key"};
        if (cli_make_dirs(dir) != 0)
            return CLI_USAGE;
        for (size_t i = 0; i < 3 && !g->force; i++) {
            char p[PATH_MAX];
            if (snprintf(p, sizeof p, "%s/%s%s", dir, safe, ext[i]) >= (int)sizeof p) {
                fprintf(stderr, "corvid: the path %s is too long\n", dir);
                return CLI_USAGE;
            }
            if (access(p, F_OK) == 0) {
                fprintf(stderr, "corvid: %s already exists; refusing to overwrite (use --force)\n",
                        p);
                return CLI_USAGE;
            }
        }
    } else if (!g->force && access(zip_path, F_OK) == 0) {
        fprintf(stderr, "corvid: %s already exists; refusing to overwrite (use --force)\n",
                zip_path);
        return CLI_USAGE;
    }
    if (g->pfx_password_file && cli_read_password_file(g->pfx_password_file, &pw) != 0)
        return CLI_USAGE;

    json_t *totp = NULL;
    json_t *body = json_pack("{s:s, s:s, s:O}", "Name", g->name, "SecurityClearance", g->clearance,
                             "Permissions", g->perms);
    if (body && g->key_type)
        json_object_set_new(body, "KeyType", json_string(g->key_type));
    if (body && g->not_after[0])
        json_object_set_new(body, "NotAfter", json_string(g->not_after));
    if (body && pw.len)
        json_object_set_new(body, "Password", json_string((const char *)pw.data));
    char label[128];
    snprintf(label, sizeof label, "the cluster is generating an %s key and certificate",
             g->key_type ? g->key_type : "EC-P256");
    struct hc_response r;
    struct zip_file_out files[8];
    size_t nfiles = 0;
    X509 *x = NULL;
    json_t *written = json_array();
    if (body == NULL) {
        fprintf(stderr, "corvid: the name is not valid UTF-8\n");
        rv = CLI_USAGE;
        goto out;
    }
    if (g->two_factor && (rv = totp_attach(c, body, &totp)) != CLI_OK)
        goto out;
    /* the private key is in the answer */
    rv = cli_request(c, "POST", "/admin/certificates", body, CLI_NO_RESEND | CLI_SECRET, label, &r);
    if (rv != CLI_OK)
        goto out;
    rv = CLI_FAILURE;
    if (read_zip(&r.body, files, 8, &nfiles) != 0)
        goto out_resp;
    for (size_t i = 0; i < nfiles && x == NULL; i++)
        if (ends_with(files[i].name, ".crt"))
            CMN_IGNORE(ca_cert_from_bytes(files[i].data.data, files[i].data.len, &x, NULL));
    if (unpack) {
        for (size_t i = 0; i < nfiles; i++) {
            char p[PATH_MAX];
            if (snprintf(p, sizeof p, "%s/%s", dir, files[i].name) >= (int)sizeof p)
                goto out_resp;
            if (cli_write_file(p, files[i].data.data, files[i].data.len, 0600, g->force) != 0)
                goto out_resp;
            json_array_append_new(written, json_string(p));
        }
    } else {
        if (cli_write_file(zip_path, r.body.data, r.body.len, 0600, g->force) != 0)
            goto out_resp;
        json_array_append_new(written, json_string(zip_path));
    }
    struct ca_ident id;
    memset(&id, 0, sizeof id);
    if (x == NULL || ca_ident_get(x, &id, NULL) != 0)
        fprintf(stderr, "corvid: note: the zip holds no readable .crt\n");
    if (c->json) {
        char nb[40] = "", na[40] = "";
        time_t t1 = (time_t)id.not_before, t2 = (time_t)id.not_after;
        struct tm tm;
        if (x && gmtime_r(&t1, &tm))
            strftime(nb, sizeof nb, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (x && gmtime_r(&t2, &tm))
            strftime(na, sizeof na, "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_t *o = json_pack("{s:s, s:s, s:s, s:O, s:s, s:s, s:O}", "Name", g->name, "Thumbprint",
                              id.thumbprint, "SecurityClearance", g->clearance, "Permissions",
                              g->perms, "NotBefore", nb, "NotAfter", na, "Files", written);
        if (totp)
            totp_report(c, totp, o);
        cli_print_json(o);
        json_decref(o);
    } else {
        char sname[300], perms[1024], date[64] = "";
        cli_safe_text(g->name, sname, sizeof sname);
        cli_fmt_perms(g->perms, perms, sizeof perms);
        if (x)
            cli_fmt_local(id.not_after, date, sizeof date);
        printf("%s '%s' (%s%s%s)\n", what, sname, g->clearance, perms[0] ? "; " : "", perms);
        printf("  Thumbprint:  %s\n", id.thumbprint);
        printf("  Expires:     %s\n", date);
        size_t i;
        json_t *p;
        json_array_foreach(written, i, p)
        {
            const char *f = json_string_value(p);
            printf("  Wrote:       %s%s\n", f,
                   ends_with(f, ".pfx")
                       ? pw.len ? "  (key, certificate and CA chain; password protected)"
                                : "  (key, certificate and CA chain; no password)"
                   : ends_with(f, ".key")
                       ? pw.len ? "  (private key, encrypted)" : "  (private key)"
                   : ends_with(f, ".crt") ? "  (certificate)"
                   : ends_with(f, ".zip") ? "  (.pfx, .crt and .key; mode 0600)"
                                          : "");
        }
        printf("The private key exists only in these files: the cluster does not keep it.\n");
        if (totp)
            totp_report(c, totp, NULL);
    }
    rv = CLI_OK;
out_resp:
    hc_response_fini(&r);
out:
    for (size_t i = 0; i < nfiles; i++)
        cmn_buf_fini(&files[i].data);
    X509_free(x);
    json_decref(written);
    json_decref(body);
    json_decref(totp);
    cmn_buf_fini(&pw);
    return rv;
}

#define GEN_OPTION_HELP                                                                            \
    "  --key-type TYPE           EC-P256 (default), EC-P384, RSA-2048, RSA-3072 or RSA-4096\n"     \
    "  --not-after YYYY-MM-DD    expiration date (default: 5 years)\n"                             \
    "  --days N                  expiration N days from now, instead of --not-after\n"             \
    "  --pfx-password-file F     protect the .pfx and the .key with the first line of F\n"         \
    "                            (default: no password)\n"                                         \
    "  --out PATH                PATH ending in .zip: write the zip the cluster answers;\n"        \
    "                            otherwise a directory (created, mode 0700) where the .pfx,\n"     \
    "                            .crt and .key are unpacked (default: NAME.zip here)\n"            \
    "  --force                   overwrite existing files\n" TWO_FACTOR_HELP

static const char generate_help[] =
    "usage: corvid certs generate NAME [--clearance C] [--perm DB=ACCESS]... [--key-type T]\n"
    "                             [--not-after DATE | --days N] [--pfx-password-file F]\n"
    "                             [--out PATH] [--force] [global options]\n"
    "\n"
    "Has the cluster create a client certificate from its CA and register it (POST\n"
    "/admin/certificates). The private key is generated on the node, returned once and never\n"
    "stored: it is only in the files written here (mode 0600). Nothing is requested when the\n"
    "files exist already. A spinner shows the wait on a terminal (RSA-4096 takes a while).\n"
    "\n"
    "Options:\n"
    "  --clearance C             ClusterAdmin, Operator or ValidUser (default ValidUser)\n"
    "  --perm DB=ACCESS          database access: Admin, ReadWrite or Read; repeat "
    "it\n" GEN_OPTION_HELP "\n"
    "With --json: {\"Name\", \"Thumbprint\", \"SecurityClearance\", \"Permissions\", "
    "\"NotBefore\",\n"
    "\"NotAfter\", \"Files\"}, with --two-factor also \"TwoFactorAuthenticationKey\" and\n"
    "\"QrCodeUri\" (and no QR code).\n"
    "\n"
    "Examples:\n"
    "  corvid certs generate ops --clearance Operator --out var/local/ops\n"
    "  corvid certs generate alice --clearance Operator --two-factor --out var/local/alice\n"
    "  corvid certs generate app1 --perm orders=ReadWrite --perm stats=Read --days 90\n"
    "  corvid certs generate bi --perm stats=Read --key-type RSA-4096 \\\n"
    "      --pfx-password-file bi.pass --out bi.zip\n";

static const char clone_help[] =
    "usage: corvid certs clone SOURCE --name NAME [--key-type T] [--not-after DATE | --days N]\n"
    "                          [--pfx-password-file F] [--out PATH] [--force] [global options]\n"
    "\n"
    "Generates a new certificate (as `corvid certs generate`) with the security clearance and\n"
    "permissions of SOURCE (a thumbprint or a name): e.g. a second certificate for the same\n"
    "application, or the replacement of one about to expire.\n"
    "\n"
    "Options:\n"
    "  --name NAME               the new certificate's name\n" GEN_OPTION_HELP "\n"
    "Examples:\n"
    "  corvid certs clone app1 --name app1-2026 --out var/local/app1-2026\n"
    "  corvid certs clone alice --name alice-laptop --two-factor --out var/local/alice-laptop\n"
    "  corvid certs clone 6F3A0C2B7D1E4F5A6B7C8D9E0F1A2B3C4D5E6F70 --name app1-b --days 365\n";

enum {
    O_CLEARANCE = OPT_LOCAL_BASE,
    O_PERM,
    O_KEY_TYPE,
    O_NOT_AFTER,
    O_DAYS,
    O_PFX_PW,
    O_OUT,
    O_FORCE,
    O_NAME,
    O_REMOVE_PERM,
    O_CLEAR_PERMS,
    O_YES,
    O_TWO_FACTOR,
    O_NO_TWO_FACTOR,
};

#define GEN_OPTIONS                                                                                \
    {"key-type", required_argument, NULL, O_KEY_TYPE},                                             \
        {"not-after", required_argument, NULL, O_NOT_AFTER},                                       \
        {"days", required_argument, NULL, O_DAYS},                                                 \
        {"pfx-password-file", required_argument, NULL, O_PFX_PW},                                  \
        {"out", required_argument, NULL, O_OUT}, {"force", no_argument, NULL, O_FORCE},            \
    {                                                                                              \
        "two-factor", no_argument, NULL, O_TWO_FACTOR                                              \
    }

/* Options shared by generate and clone; 1 when taken, -1 on a bad value, 0 when not one. */
static int gen_opt(struct gen_opts *g, int o, const char *arg, bool *have_date)
{
    char err[CMN_ERRMSG_SIZE];
    enum ca_key_type kt;
    switch (o) {
    case O_KEY_TYPE:
        if (ca_key_type_parse(arg, &kt, err) != 0) {
            fprintf(stderr, "corvid: --key-type must be EC-P256, EC-P384, RSA-2048, RSA-3072 or "
                            "RSA-4096\n");
            return -1;
        }
        g->key_type = ca_key_type_name(kt);
        return 1;
    case O_NOT_AFTER:
    case O_DAYS:
        if (*have_date) {
            fprintf(stderr, "corvid: give --not-after or --days, once\n");
            return -1;
        }
        *have_date = true;
        return (o == O_DAYS ? parse_days_arg(arg, g->not_after)
                            : parse_date_arg(arg, g->not_after)) == 0
                   ? 1
                   : -1;
    case O_PFX_PW:
        g->pfx_password_file = arg;
        return 1;
    case O_OUT:
        g->out = arg;
        return 1;
    case O_FORCE:
        g->force = true;
        return 1;
    case O_TWO_FACTOR:
        g->two_factor = true;
        return 1;
    default:
        return 0;
    }
}

static int cmd_generate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"clearance", required_argument, NULL, O_CLEARANCE},
        {"perm", required_argument, NULL, O_PERM},
        GEN_OPTIONS,
        CLI_GLOBAL_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct cli c;
    cli_init(&c);
    struct gen_opts g;
    memset(&g, 0, sizeof g);
    g.clearance = "ValidUser";
    g.perms = json_object();
    bool have_date = false;
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int g_ = cli_global_opt(&c, o, optarg);
        if (g_ == 0)
            g_ = gen_opt(&g, o, optarg, &have_date);
        if (g_ == 0 && o == O_CLEARANCE)
            g_ = (g.clearance = parse_clearance(optarg)) ? 1 : -1;
        if (g_ == 0 && o == O_PERM)
            g_ = add_perm(g.perms, optarg) == 0 ? 1 : -1;
        if (g_ <= 0) {
            json_decref(g.perms);
            cli_fini(&c);
            return usage_error("generate");
        }
    }
    if (optind != argc - 1 && !c.help) {
        fprintf(stderr, "corvid: certs generate needs one NAME\n");
        json_decref(g.perms);
        cli_fini(&c);
        return usage_error("generate");
    }
    g.name = argv[optind];
    int rv = cli_open_or_help(&c, generate_help);
    if (rv == CLI_OK)
        rv = generate_core(&c, &g, "Generated");
    json_decref(g.perms);
    cli_fini(&c);
    return rv < 0 ? CLI_OK : rv;
}

static int cmd_clone(int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, O_NAME},
        GEN_OPTIONS,
        CLI_GLOBAL_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct cli c;
    cli_init(&c);
    struct gen_opts g;
    memset(&g, 0, sizeof g);
    bool have_date = false;
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int g_ = cli_global_opt(&c, o, optarg);
        if (g_ == 0)
            g_ = gen_opt(&g, o, optarg, &have_date);
        if (g_ == 0 && o == O_NAME) {
            g.name = optarg;
            g_ = 1;
        }
        if (g_ <= 0) {
            cli_fini(&c);
            return usage_error("clone");
        }
    }
    if ((optind != argc - 1 || g.name == NULL) && !c.help) {
        fprintf(stderr, "corvid: certs clone needs one SOURCE and --name NAME\n");
        cli_fini(&c);
        return usage_error("clone");
    }
    CLI_START(c, clone_help);
    json_t *src;
    int rv = resolve(&c, argv[optind], false, &src);
    if (rv == CLI_OK) {
        char cl[32];
        snprintf(cl, sizeof cl, "%s", cli_str(src, "SecurityClearance"));
        g.clearance = cl;
        g.perms = json_incref(json_object_get(src, "Permissions"));
        if (g.perms == NULL)
            g.perms = json_object();
        char from[400], sname[300];
        cli_safe_text(cli_str(src, "Name"), sname, sizeof sname);
        snprintf(from, sizeof from, "Cloned from '%.250s' (%s) as", sname,
                 cli_str(src, "Thumbprint"));
        rv = generate_core(&c, &g, from);
        json_decref(g.perms);
        json_decref(src);
    }
    cli_fini(&c);
    return rv;
}

/* ---------------------------------------------------------------- upload */

static const char upload_help[] =
    "usage: corvid certs upload FILE [--name NAME] [--clearance C] [--perm DB=ACCESS]...\n"
    "                           [--pfx-password-file F] [--two-factor] [global options]\n"
    "\n"
    "Registers an existing certificate (PUT /admin/certificates): FILE is a .pfx/.p12, or a\n"
    "certificate in PEM (.pem, .crt) or DER (.cer). Only the certificates are sent: a private\n"
    "key in FILE never leaves this machine. A file holding several certificates registers them\n"
    "together, as a collection (the first is the primary).\n"
    "\n"
    "Options:\n"
    "  --name NAME             the name to register (default: the certificate's common name)\n"
    "  --clearance C           ClusterAdmin, ClusterNode, Operator or ValidUser (default\n"
    "                          ValidUser)\n"
    "  --perm DB=ACCESS        database access: Admin, ReadWrite or Read; repeat it\n"
    "  --pfx-password-file F   password of a .pfx FILE (else asked on a terminal when needed)\n"
    "  --two-factor            require a two-factor session: the cluster makes a TOTP key,\n"
    "                          shown once here (with a QR code on a terminal) to add to an\n"
    "                          authenticator app; the certificate then needs `corvid login`\n"
    "\n"
    "With --json: {\"Name\", \"SecurityClearance\", \"Permissions\", \"Thumbprints\"}, with\n"
    "--two-factor also \"TwoFactorAuthenticationKey\" and \"QrCodeUri\" (and no QR code).\n"
    "\n"
    "Examples:\n"
    "  corvid certs upload partner.crt --name partner --perm orders=Read\n"
    "  corvid certs upload bob.crt --clearance Operator --two-factor\n"
    "  corvid certs upload team.pfx --pfx-password-file team.pass --clearance Operator\n";

static int cmd_upload(int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, O_NAME},
        {"clearance", required_argument, NULL, O_CLEARANCE},
        {"perm", required_argument, NULL, O_PERM},
        {"pfx-password-file", required_argument, NULL, O_PFX_PW},
        {"two-factor", no_argument, NULL, O_TWO_FACTOR},
        CLI_GLOBAL_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct cli c;
    cli_init(&c);
    const char *name = NULL, *clearance = "ValidUser", *pw_file = NULL;
    bool two_factor = false;
    json_t *perms = json_object();
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int g_ = cli_global_opt(&c, o, optarg);
        if (g_ == 0 && o == O_NAME) {
            name = optarg;
            g_ = 1;
        } else if (g_ == 0 && o == O_CLEARANCE) {
            g_ = (clearance = parse_clearance(optarg)) ? 1 : -1;
        } else if (g_ == 0 && o == O_PERM) {
            g_ = add_perm(perms, optarg) == 0 ? 1 : -1;
        } else if (g_ == 0 && o == O_PFX_PW) {
            pw_file = optarg;
            g_ = 1;
        } else if (g_ == 0 && o == O_TWO_FACTOR) {
            two_factor = true;
            g_ = 1;
        }
        if (g_ <= 0) {
            json_decref(perms);
            cli_fini(&c);
            return usage_error("upload");
        }
    }
    if (optind != argc - 1 && !c.help) {
        fprintf(stderr, "corvid: certs upload needs one FILE\n");
        json_decref(perms);
        cli_fini(&c);
        return usage_error("upload");
    }
    int rv = cli_open_or_help(&c, upload_help);
    if (rv != CLI_OK) {
        json_decref(perms);
        cli_fini(&c);
        return rv < 0 ? CLI_OK : rv;
    }
    const char *path = argv[optind];
    struct cmn_buf pw, text, cn;
    cmn_buf_init(&pw, true);
    cmn_buf_init(&text, false);
    cmn_buf_init(&cn, false);
    struct ca_certfile f;
    memset(&f, 0, sizeof f);
    struct ca_cert_list send;
    ca_cert_list_init(&send);
    json_t *body = NULL, *thumbs = json_array(), *totp = NULL;
    rv = CLI_USAGE;
    if (pw_file && cli_read_password_file(pw_file, &pw) != 0)
        goto out;
    if (cli_certfile_load(&f, path, NULL, pw.len ? (const char *)pw.data : NULL, false, "upload",
                          "give --pfx-password-file, or run on a terminal to be asked",
                          CLI_USAGE) != CLI_OK)
        goto out;
    /* What the node would keep: with several certificates, CA certificates are chain, not
     * registrations. The primary goes first: the one holding the key, else the first that is
     * not a CA. */
    X509 *primary = f.certs.n == 1 ? f.leaf : NULL;
    if (primary == NULL && f.key != NULL && !ca_is_ca(f.leaf))
        primary = f.leaf;
    for (size_t i = 0; primary == NULL && i < f.certs.n; i++)
        if (!ca_is_ca(f.certs.v[i]))
            primary = f.certs.v[i];
    if (primary == NULL) {
        fprintf(stderr, "corvid: %s holds only CA certificates\n", path);
        goto out;
    }
    if (ca_cert_list_add(&send, primary) != 0)
        goto oom;
    for (size_t i = 0; f.certs.n > 1 && i < f.certs.n; i++) {
        X509 *x = f.certs.v[i];
        if (x == primary || ca_is_ca(x))
            continue;
        if (ca_cert_list_add(&send, x) != 0)
            goto oom;
    }
    if (name == NULL) {
        if (ca_subject_cn(primary, &cn) != 0 || cn.len == 0 || cmn_buf_append(&cn, "", 1) != 0) {
            fprintf(stderr, "corvid: %s: the certificate has no common name; give --name\n", path);
            goto out;
        }
        name = (const char *)cn.data;
    }
    int e = 0;
    if (send.n == 1) {
        struct cmn_buf der;
        cmn_buf_init(&der, false);
        e = ca_cert_to_der(send.v[0], &der);
        if (e == 0)
            e = ca_b64_encode(der.data, der.len, &text);
        cmn_buf_fini(&der);
    } else {
        e = ca_certs_to_pem(&send, &text);
    }
    if (e != 0)
        goto oom;
    for (size_t i = 0; i < send.n; i++) {
        char tp[CA_THUMBPRINT_SIZE];
        if (ca_thumbprint(send.v[i], tp) != 0)
            goto oom;
        json_array_append_new(thumbs, json_string(tp));
    }
    body = json_pack("{s:s, s:s, s:s, s:O}", "Name", name, "Certificate", (const char *)text.data,
                     "SecurityClearance", clearance, "Permissions", perms);
    if (body == NULL) {
        fprintf(stderr, "corvid: the name is not valid UTF-8\n");
        goto out;
    }
    if (two_factor && (rv = totp_attach(&c, body, &totp)) != CLI_OK)
        goto out;
    struct hc_response r;
    rv = cli_request(&c, "PUT", "/admin/certificates", body, 0, NULL, &r);
    if (rv != CLI_OK)
        goto out;
    hc_response_fini(&r);
    if (c.json) {
        json_t *res = json_pack("{s:s, s:s, s:O, s:O}", "Name", name, "SecurityClearance",
                                clearance, "Permissions", perms, "Thumbprints", thumbs);
        if (totp)
            totp_report(&c, totp, res);
        cli_print_json(res);
        json_decref(res);
    } else {
        char sname[300], p[1024];
        cli_safe_text(name, sname, sizeof sname);
        cli_fmt_perms(perms, p, sizeof p);
        printf("Registered '%s' (%s%s%s) on every node\n", sname, clearance, p[0] ? "; " : "", p);
        size_t i;
        json_t *t;
        json_array_foreach(thumbs, i, t)
            printf("  %-12s %s\n", i == 0 ? "Thumbprint:" : "Secondary:", json_string_value(t));
        if (totp)
            totp_report(&c, totp, NULL);
    }
    rv = CLI_OK;
    goto out;
oom:
    fprintf(stderr, "corvid: out of memory\n");
    rv = CLI_FAILURE;
out:
    json_decref(body);
    json_decref(thumbs);
    json_decref(totp);
    json_decref(perms);
    ca_cert_list_fini(&send);
    ca_certfile_fini(&f);
    cmn_buf_fini(&pw);
    cmn_buf_fini(&text);
    cmn_buf_fini(&cn);
    cli_fini(&c);
    return rv;
}

/* ---------------------------------------------------------------- edit */

static const char edit_help[] =
    "usage: corvid certs edit THUMBPRINT|NAME [--name NEW] [--clearance C] [--perm DB=ACCESS]...\n"
    "                         [--remove-perm DB]... [--clear-perms]\n"
    "                         [--two-factor | --no-two-factor] [global options]\n"
    "\n"
    "Changes a registration's name, security clearance, permissions or two-factor key (POST\n"
    "/admin/certificates/edit). What is not given stays as it is; --perm adds or changes one\n"
    "database, --remove-perm takes one away, --clear-perms starts from none.\n"
    "\n"
    "Options:\n"
    "  --name NEW          a new name\n"
    "  --clearance C       ClusterAdmin, ClusterNode, Operator or ValidUser\n"
    "  --perm DB=ACCESS    Admin, ReadWrite or Read for database DB; repeat it\n"
    "  --remove-perm DB    no access to DB any more; repeat it\n"
    "  --clear-perms       remove every permission first\n"
    "  --two-factor        require a two-factor session: the cluster makes a new TOTP key\n"
    "                      (replacing any it had), shown once here (with a QR code on a\n"
    "                      terminal) to add to an authenticator app; the certificate then\n"
    "                      needs `corvid login`\n"
    "  --no-two-factor     remove its two-factor key: no session needed any more\n"
    "\n"
    "With --json: the definition as sent ({\"Thumbprint\", \"Name\", \"SecurityClearance\",\n"
    "\"Permissions\"}), with --two-factor also \"TwoFactorAuthenticationKey\" and \"QrCodeUri\"\n"
    "(and no QR code), with --no-two-factor \"DeleteTwoFactorConfiguration\": true.\n"
    "\n"
    "Examples:\n"
    "  corvid certs edit app1 --perm orders=Read --remove-perm stats\n"
    "  corvid certs edit ops --clearance ValidUser --clear-perms --perm logs=Read\n"
    "  corvid certs edit app1 --name app1-old\n"
    "  corvid certs edit alice --two-factor       # a new key, e.g. after a lost phone\n"
    "  corvid certs edit alice --no-two-factor\n";

static int cmd_edit(int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, O_NAME},
        {"clearance", required_argument, NULL, O_CLEARANCE},
        {"perm", required_argument, NULL, O_PERM},
        {"remove-perm", required_argument, NULL, O_REMOVE_PERM},
        {"clear-perms", no_argument, NULL, O_CLEAR_PERMS},
        {"two-factor", no_argument, NULL, O_TWO_FACTOR},
        {"no-two-factor", no_argument, NULL, O_NO_TWO_FACTOR},
        CLI_GLOBAL_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct cli c;
    cli_init(&c);
    const char *name = NULL, *clearance = NULL;
    json_t *add = json_object(), *remove = json_array(), *totp = NULL;
    bool clear = false, two_factor = false, no_two_factor = false;
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int g_ = cli_global_opt(&c, o, optarg);
        if (g_ == 0 && o == O_NAME) {
            name = optarg;
            g_ = name[0] ? 1 : -1;
        } else if (g_ == 0 && o == O_CLEARANCE) {
            g_ = (clearance = parse_clearance(optarg)) ? 1 : -1;
        } else if (g_ == 0 && o == O_PERM) {
            g_ = add_perm(add, optarg) == 0 ? 1 : -1;
        } else if (g_ == 0 && o == O_REMOVE_PERM) {
            json_array_append_new(remove, json_string(optarg));
            g_ = 1;
        } else if (g_ == 0 && o == O_CLEAR_PERMS) {
            clear = true;
            g_ = 1;
        } else if (g_ == 0 && (o == O_TWO_FACTOR || o == O_NO_TWO_FACTOR)) {
            *(o == O_TWO_FACTOR ? &two_factor : &no_two_factor) = true;
            g_ = 1;
        }
        if (g_ <= 0) {
            json_decref(add);
            json_decref(remove);
            cli_fini(&c);
            return usage_error("edit");
        }
    }
    int rv = CLI_USAGE;
    if (!c.help && optind != argc - 1) {
        fprintf(stderr, "corvid: certs edit needs one THUMBPRINT or NAME\n");
        goto out_usage;
    }
    if (!c.help && !name && !clearance && json_object_size(add) == 0 &&
        json_array_size(remove) == 0 && !clear && !two_factor && !no_two_factor) {
        fprintf(stderr, "corvid: nothing to change: give --name, --clearance, --perm, "
                        "--remove-perm, --clear-perms, --two-factor or --no-two-factor\n");
        goto out_usage;
    }
    if (!c.help && two_factor && no_two_factor) {
        fprintf(stderr, "corvid: give --two-factor or --no-two-factor, not both\n");
        goto out_usage;
    }
    rv = cli_open_or_help(&c, edit_help);
    if (rv != CLI_OK)
        goto out;
    json_t *d;
    if ((rv = resolve(&c, argv[optind], false, &d)) != CLI_OK)
        goto out;
    json_t *perms = clear ? json_object() : json_deep_copy(json_object_get(d, "Permissions"));
    if (!json_is_object(perms)) {
        json_decref(perms);
        perms = json_object();
    }
    size_t i;
    json_t *db;
    json_array_foreach(remove, i, db)
    {
        if (json_object_del(perms, json_string_value(db)) != 0 && !clear) {
            char safe[300];
            cli_safe_text(json_string_value(db), safe, sizeof safe);
            fprintf(stderr, "corvid: note: it had no permission on '%s'\n", safe);
        }
    }
    json_object_update(perms, add);
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:o}", "Thumbprint", cli_str(d, "Thumbprint"), "Name",
                  name ? name : cli_str(d, "Name"), "SecurityClearance",
                  clearance ? clearance : cli_str(d, "SecurityClearance"), "Permissions", perms);
    json_decref(d);
    if (body == NULL) {
        fprintf(stderr, "corvid: the name is not valid UTF-8\n");
        rv = CLI_USAGE;
        goto out;
    }
    if (two_factor && (rv = totp_attach(&c, body, &totp)) != CLI_OK) {
        json_decref(body);
        goto out;
    }
    struct hc_response r;
    rv = cli_request(&c, "POST",
                     no_two_factor ? "/admin/certificates/edit?deleteTwoFactorConfiguration=true"
                                   : "/admin/certificates/edit",
                     body, 0, NULL, &r);
    if (rv == CLI_OK) {
        hc_response_fini(&r);
        if (no_two_factor)
            json_object_set_new(body, "DeleteTwoFactorConfiguration", json_true());
        if (c.json) {
            if (totp)
                totp_report(&c, totp, body);
            cli_print_json(body);
        } else {
            char sname[300], p[1024];
            cli_safe_text(cli_str(body, "Name"), sname, sizeof sname);
            perms_text(body, p, sizeof p);
            printf(
                "Updated '%s' (%s) on every node\n  Security clearance: %s\n  Permissions:        "
                "%s\n",
                sname, cli_str(body, "Thumbprint"), cli_str(body, "SecurityClearance"), p);
            if (no_two_factor)
                printf("  Two-factor:         removed (no session needed any more)\n");
            if (totp)
                totp_report(&c, totp, NULL);
        }
    }
    json_decref(body);
    goto out;
out_usage:
    rv = usage_error("edit");
out:
    json_decref(add);
    json_decref(remove);
    json_decref(totp);
    cli_fini(&c);
    return rv < 0 ? CLI_OK : rv;
}

/* ---------------------------------------------------------------- delete / purge */

/* Asks "[y/N]" on a terminal; true without asking when stdin is not one (scripts). */
static bool confirm(const char *question)
{
    if (!isatty(STDIN_FILENO))
        return true;
    FILE *tty = fopen("/dev/tty", "r+");
    if (tty == NULL)
        return true;
    fprintf(tty, "%s [y/N] ", question);
    fflush(tty);
    char line[16] = "";
    bool yes = fgets(line, sizeof line, tty) != NULL && (line[0] == 'y' || line[0] == 'Y');
    fclose(tty);
    return yes;
}

static const char delete_help[] =
    "usage: corvid certs delete THUMBPRINT|NAME... [--yes] [global options]\n"
    "\n"
    "Revokes certificates cluster-wide (DELETE /admin/certificates): once committed every node\n"
    "refuses them, on open connections too, and the CRL lists the ones the cluster CA issued.\n"
    "On a terminal each one is confirmed first unless --yes. Nobody can delete the certificate\n"
    "they are using.\n"
    "\n"
    "Options:\n"
    "  --yes   do not ask\n"
    "\n"
    "With --json: {\"Deleted\": [{\"Name\", \"Thumbprint\"}...]}.\n"
    "\n"
    "Examples:\n"
    "  corvid certs delete app1-old\n"
    "  corvid certs delete 6F3A0C2B7D1E4F5A6B7C8D9E0F1A2B3C4D5E6F70 --yes\n";

static int cmd_delete(int argc, char **argv)
{
    static const struct option opts[] = {
        {"yes", no_argument, NULL, O_YES},
        CLI_GLOBAL_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct cli c;
    cli_init(&c);
    bool yes = false;
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "hy", opts, NULL)) != -1) {
        CLI_PARSE_GLOBAL(c, o, usage_error("delete"));
        if (o == O_YES || o == 'y') {
            yes = true;
            continue;
        }
        cli_fini(&c);
        return usage_error("delete");
    }
    if (optind >= argc && !c.help) {
        fprintf(stderr, "corvid: certs delete needs a THUMBPRINT or NAME\n");
        cli_fini(&c);
        return usage_error("delete");
    }
    CLI_START(c, delete_help);
    json_t *done = json_array();
    int rv = CLI_OK;
    for (int i = optind; i < argc && rv == CLI_OK; i++) {
        json_t *d;
        if ((rv = resolve(&c, argv[i], false, &d)) != CLI_OK)
            break;
        char sname[300], q[600], path[128];
        cli_safe_text(cli_str(d, "Name"), sname, sizeof sname);
        snprintf(q, sizeof q, "Revoke '%.250s' (%s, %s) on every node? This cannot be undone.",
                 sname, cli_str(d, "Thumbprint"), cli_str(d, "SecurityClearance"));
        if (!yes && !confirm(q)) {
            fprintf(stderr, "corvid: '%s' left as it is\n", sname);
            json_decref(d);
            rv = CLI_FAILURE;
            break;
        }
        snprintf(path, sizeof path, "/admin/certificates?thumbprint=%.40s",
                 cli_str(d, "Thumbprint"));
        struct hc_response r;
        rv = cli_request(&c, "DELETE", path, NULL, 0, NULL, &r);
        if (rv == CLI_OK) {
            hc_response_fini(&r);
            json_array_append_new(done, json_pack("{s:s, s:s}", "Name", cli_str(d, "Name"),
                                                  "Thumbprint", cli_str(d, "Thumbprint")));
            if (!c.json)
                printf("Revoked '%s' (%s) on every node\n", sname, cli_str(d, "Thumbprint"));
        }
        json_decref(d);
    }
    if (c.json) {
        json_t *res = json_pack("{s:O}", "Deleted", done);
        cli_print_json(res);
        json_decref(res);
    }
    json_decref(done);
    cli_fini(&c);
    return rv;
}

static const char purge_help[] =
    "usage: corvid certs purge [--yes] [global options]\n"
    "\n"
    "Removes every expired certificate from the cluster (DELETE /admin/certificates/purge),\n"
    "after listing them. On a terminal it asks first unless --yes.\n"
    "\n"
    "With --json: {\"Purged\": [{\"Name\", \"Thumbprint\", \"NotAfter\"}...]} (those expired\n"
    "when the command started).\n"
    "\n"
    "Examples:\n"
    "  corvid certs purge\n"
    "  corvid certs purge --yes --json\n";

static int cmd_purge(int argc, char **argv)
{
    static const struct option opts[] = {
        {"yes", no_argument, NULL, O_YES},
        CLI_GLOBAL_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct cli c;
    cli_init(&c);
    bool yes = false;
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "hy", opts, NULL)) != -1) {
        CLI_PARSE_GLOBAL(c, o, usage_error("purge"));
        if (o == O_YES || o == 'y') {
            yes = true;
            continue;
        }
        cli_fini(&c);
        return usage_error("purge");
    }
    if (optind != argc && !c.help) {
        fprintf(stderr, "corvid: certs purge takes no arguments\n");
        cli_fini(&c);
        return usage_error("purge");
    }
    CLI_START(c, purge_help);
    json_t *expired;
    int rv = fetch_certs(&c, "&expiringWithinDays=0", &expired);
    if (rv != CLI_OK) {
        cli_fini(&c);
        return rv;
    }
    json_t *res = json_object_get(expired, "Results");
    size_t n = json_array_size(res);
    char q[128];
    snprintf(q, sizeof q, "Remove %zu expired certificate%s from the cluster?", n,
             n == 1 ? "" : "s");
    if (n > 0 && !c.json) {
        printf("Expired:\n");
        print_cert_table(&c, res, NULL, true);
    }
    if (n > 0 && !yes && !confirm(q)) {
        fprintf(stderr, "corvid: nothing purged\n");
        json_decref(expired);
        cli_fini(&c);
        return CLI_FAILURE;
    }
    struct hc_response r;
    rv = cli_request(&c, "DELETE", "/admin/certificates/purge", NULL, 0, NULL, &r);
    if (rv == CLI_OK) {
        hc_response_fini(&r);
        if (c.json) {
            json_t *list = json_array();
            size_t i;
            json_t *d;
            json_array_foreach(res, i, d) json_array_append_new(
                list, json_pack("{s:s, s:s, s:s}", "Name", cli_str(d, "Name"), "Thumbprint",
                                cli_str(d, "Thumbprint"), "NotAfter", cli_str(d, "NotAfter")));
            json_t *out = json_pack("{s:o}", "Purged", list);
            cli_print_json(out);
            json_decref(out);
        } else {
            printf("Purged %zu expired certificate%s.\n", n, n == 1 ? "" : "s");
        }
    }
    json_decref(expired);
    cli_fini(&c);
    return rv;
}

/* ---------------------------------------------------------------- export */

static const char export_help[] =
    "usage: corvid certs export [--out FILE] [--force] [global options]\n"
    "\n"
    "Downloads the cluster's node certificates (public, no keys) as one .pfx collection\n"
    "(GET /admin/certificates/export): what a new node trusts before it joins\n"
    "(Cluster.TrustedNodeCertificates.Path).\n"
    "\n"
    "Options:\n"
    "  --out FILE   where to write it (default ServerCertificatesCollection.pfx; - for stdout)\n"
    "  --force      overwrite FILE\n"
    "\n"
    "With --json: {\"File\", \"Certificates\": [{\"Thumbprint\", \"Subject\", \"NodeTag\"}...]}.\n"
    "\n"
    "Examples:\n"
    "  corvid certs export --out var/local/pki/ServerCertificatesCollection.pfx --force\n"
    "  corvid certs export --out - | openssl pkcs12 -nokeys -passin pass:\n";

static int cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, O_OUT},
        {"force", no_argument, NULL, O_FORCE},
        CLI_GLOBAL_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct cli c;
    cli_init(&c);
    const char *out = "ServerCertificatesCollection.pfx";
    bool force = false;
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        CLI_PARSE_GLOBAL(c, o, usage_error("export"));
        if (o == O_OUT) {
            out = optarg;
            continue;
        }
        if (o == O_FORCE) {
            force = true;
            continue;
        }
        cli_fini(&c);
        return usage_error("export");
    }
    if (optind != argc && !c.help) {
        fprintf(stderr, "corvid: certs export takes no arguments (use --out FILE)\n");
        cli_fini(&c);
        return usage_error("export");
    }
    bool to_stdout = strcmp(out, "-") == 0;
    if (to_stdout && isatty(STDOUT_FILENO) && !c.help) {
        fprintf(stderr, "corvid: not writing a binary .pfx to a terminal; redirect it\n");
        cli_fini(&c);
        return CLI_USAGE;
    }
    if (!to_stdout && !force && access(out, F_OK) == 0 && !c.help) {
        fprintf(stderr, "corvid: %s already exists; refusing to overwrite (use --force)\n", out);
        cli_fini(&c);
        return CLI_USAGE;
    }
    CLI_START(c, export_help);
    struct hc_response r;
    int rv = cli_request(&c, "GET", "/admin/certificates/export", NULL, 0, NULL, &r);
    if (rv != CLI_OK) {
        cli_fini(&c);
        return rv;
    }
    struct ca_pfx pfx;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (ca_pfx_parse(r.body.data, r.body.len, NULL, 0, &pfx, errmsg) != 0) {
        fprintf(stderr, "corvid: %s answered something that is not a .pfx: %s\n", r.url, errmsg);
        hc_response_fini(&r);
        cli_fini(&c);
        return CLI_NOCONNECT;
    }
    rv = cli_write_file(out, r.body.data, r.body.len, 0644, force) == 0 ? CLI_OK : CLI_FAILURE;
    json_t *list = json_array();
    for (size_t i = 0; i < pfx.certs.n; i++) {
        char tp[CA_THUMBPRINT_SIZE] = "", tag[CA_NODE_TAG_SIZE] = "";
        struct cmn_buf subj;
        cmn_buf_init(&subj, false);
        CMN_IGNORE(ca_thumbprint(pfx.certs.v[i], tp));
        CMN_IGNORE(ca_node_tag(pfx.certs.v[i], tag));
        CMN_IGNORE(ca_subject_str(pfx.certs.v[i], &subj));
        json_array_append_new(list, json_pack("{s:s, s:s, s:s?}", "Thumbprint", tp, "Subject",
                                              subj.data ? (const char *)subj.data : "", "NodeTag",
                                              tag[0] ? tag : NULL));
        cmn_buf_fini(&subj);
    }
    if (rv == CLI_OK) {
        FILE *info = to_stdout ? stderr : stdout;
        if (c.json && !to_stdout) {
            json_t *res = json_pack("{s:s, s:O}", "File", out, "Certificates", list);
            cli_print_json(res);
            json_decref(res);
        } else {
            fprintf(info, "Wrote %s: %zu node certificate%s (public, no keys)\n",
                    to_stdout ? "the collection to stdout" : out, pfx.certs.n,
                    pfx.certs.n == 1 ? "" : "s");
            size_t i;
            json_t *e;
            json_array_foreach(list, i, e)
            {
                char safe[600];
                cli_safe_text(cli_str(e, "Subject"), safe, sizeof safe);
                fprintf(info, "  %s  %-4s  %s\n", cli_str(e, "Thumbprint"), cli_str(e, "NodeTag"),
                        safe);
            }
        }
    }
    json_decref(list);
    ca_pfx_fini(&pfx);
    hc_response_fini(&r);
    cli_fini(&c);
    return rv;
}

/* ---------------------------------------------------------------- expiring */

static const char expiring_help[] =
    "usage: corvid certs expiring [--days N] [global options]\n"
    "\n"
    "Lists the certificates that expire within N days (default 30), soonest first, including\n"
    "those already expired (GET /admin/certificates?expiringWithinDays=N).\n"
    "\n"
    "Options:\n"
    "  --days N   the horizon in days (0..36500)\n"
    "\n"
    "With --json: the node's answer ({\"Results\": [...]}).\n"
    "\n"
    "Examples:\n"
    "  corvid certs expiring\n"
    "  corvid certs expiring --days 90 --json\n";

static int cmd_expiring(int argc, char **argv)
{
    static const struct option opts[] = {
        {"days", required_argument, NULL, O_DAYS},
        CLI_GLOBAL_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct cli c;
    cli_init(&c);
    long days = 30;
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        CLI_PARSE_GLOBAL(c, o, usage_error("expiring"));
        if (o == O_DAYS) {
            char *end;
            days = strtol(optarg, &end, 10);
            if (*end == '\0' && end != optarg && days >= 0 && days <= 36500)
                continue;
            fprintf(stderr, "corvid: --days expects a number of days from 0 to 36500\n");
        }
        cli_fini(&c);
        return usage_error("expiring");
    }
    if (optind != argc && !c.help) {
        fprintf(stderr, "corvid: certs expiring takes no arguments (use --days N)\n");
        cli_fini(&c);
        return usage_error("expiring");
    }
    CLI_START(c, expiring_help);
    char q[64];
    snprintf(q, sizeof q, "&expiringWithinDays=%ld", days);
    json_t *all;
    int rv = fetch_certs(&c, q, &all);
    if (rv == CLI_OK) {
        json_t *res = json_object_get(all, "Results");
        if (c.json)
            cli_print_json(all);
        else if (json_array_size(res) == 0)
            printf("No certificate expires within %ld days.\n", days);
        else
            rv = print_cert_table(&c, res, NULL, true);
        json_decref(all);
    }
    cli_fini(&c);
    return rv;
}

/* ---------------------------------------------------------------- dispatch */

/* ---------------------------------------------------------------- replace-server */

static const char replace_help[] =
    "usage: corvid certs replace-server FILE [--pfx-password-file F] [--replace-immediately]\n"
    "                                  [--no-wait] [--wait SECONDS] [global options]\n"
    "\n"
    "Replaces the server certificate of every node with the one in FILE, a .pfx with its key\n"
    "that names every node (URI:urn:corvid:node:TAG for each) with both the serverAuth and\n"
    "clientAuth usages (POST /admin/certificates/replace-cluster-cert, followed to the\n"
    "leader). The leader registers it as ClusterNode and commits it; every node switches to it\n"
    "as soon as it has it, with no restart, and its old certificate is revoked. Then waits, with\n"
    "each node's progress on a terminal, until every node has switched; a node that is down\n"
    "switches when it comes back (GET /admin/certificates/replacement/status says which has\n"
    "not, and why). Needs ClusterAdmin.\n"
    "\n"
    "Options:\n"
    "  --pfx-password-file F     FILE's password, first line of F\n"
    "  --replace-immediately     RavenDB's flag; Corvid's nodes never wait for each other\n"
    "  --no-wait                 return once the replacement is committed\n"
    "  --wait SECONDS            how long to wait for every node (default 120)\n"
    "\n"
    "Examples:\n"
    "  corvid certs replace-server cluster.pfx --pfx-password-file cluster.pass\n";

/* Whether every node of the topology says it has certificate tp (its /cluster/node-info). */
static bool all_switched(struct cli *c, const char *tp)
{
    json_t *topo = NULL;
    if (cli_get_json(c, "/cluster/topology", CLI_QUIET_404, &topo) != CLI_OK)
        return false;
    bool all = true;
    const char *tag;
    json_t *v;
    json_object_foreach(json_object_get(json_object_get(topo, "Topology"), "AllNodes"), tag, v)
    {
        json_t *info = NULL;
        char why[CMN_ERRMSG_SIZE];
        const char *url = json_string_value(v);
        const char *has = url && cli_get_json_at(c, url, "/cluster/node-info", &info, why) == 0
                              ? json_string_value(json_object_get(info, "Thumbprint"))
                              : NULL;
        all = all && has && strcasecmp(has, tp) == 0;
        json_decref(info);
    }
    json_decref(topo);
    return all;
}

/* Prints each node's state as it changes; CLI_OK once every node presents tp. */
static int wait_replaced(struct cli *c, int seconds, const char *tp)
{
    char seen[64][48];
    size_t n_seen = 0;
    time_t t0 = time(NULL);
    for (;;) {
        struct hc_response r;
        int rv = cli_request(c, "GET", "/admin/certificates/replacement/status", NULL,
                             CLI_QUIET_404, NULL, &r);
        if (rv != CLI_OK && rv != CLI_FAILURE)
            return rv;
        /* 404 (CLI_FAILURE): none in progress where asked; over once every node says so */
        if (rv == CLI_FAILURE && all_switched(c, tp))
            return CLI_OK;
        json_t *st =
            rv == CLI_OK ? json_loadb((const char *)r.body.data, r.body.len, 0, NULL) : NULL;
        if (rv == CLI_OK)
            hc_response_fini(&r);
        json_t *v;
        size_t i;
        bool late = time(NULL) - t0 >= seconds;
        json_array_foreach(json_object_get(st, "Nodes"), i, v)
        {
            const char *tag = json_string_value(json_object_get(v, "Tag"));
            const char *state = json_string_value(json_object_get(v, "State"));
            const char *note = json_string_value(json_object_get(v, "Note"));
            char line[48];
            snprintf(line, sizeof line, "%s %s", tag ? tag : "?", state ? state : "?");
            bool known = false;
            for (size_t k = 0; k < n_seen; k++)
                known |= strcmp(seen[k], line) == 0;
            if ((!known || late) && !c->json) {
                fprintf(stderr, "  node %s: %s%s%s\n", tag ? tag : "?",
                        state && strcmp(state, "Replaced") == 0 ? "switched" : "not switched yet",
                        note ? ": " : "", note ? note : "");
                if (!known && n_seen < 64)
                    snprintf(seen[n_seen++], sizeof seen[0], "%s", line);
            }
        }
        json_decref(st);
        if (late) {
            fprintf(stderr,
                    "corvid: not every node switched within %d s; they do when they come "
                    "back (corvid certs replace-server --help)\n",
                    seconds);
            return CLI_FAILURE;
        }
        struct timespec ts = {0, 300 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static int cmd_replace_server(int argc, char **argv)
{
    enum { O_IMM = O_NO_TWO_FACTOR + 1, O_NO_WAIT, O_WAIT };
    static const struct option opts[] = {
        {"pfx-password-file", required_argument, NULL, O_PFX_PW},
        {"replace-immediately", no_argument, NULL, O_IMM},
        {"no-wait", no_argument, NULL, O_NO_WAIT},
        {"wait", required_argument, NULL, O_WAIT},
        CLI_GLOBAL_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct cli c;
    cli_init(&c);
    const char *pw_file = NULL;
    bool imm = false, wait = true;
    int seconds = 120, o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        CLI_PARSE_GLOBAL(c, o, usage_error("replace-server"));
        if (o == O_PFX_PW)
            pw_file = optarg;
        else if (o == O_IMM)
            imm = true;
        else if (o == O_NO_WAIT)
            wait = false;
        else if (o == O_WAIT && (seconds = atoi(optarg)) > 0)
            ;
        else {
            if (o == O_WAIT)
                fprintf(stderr, "corvid: --wait needs a number of seconds\n");
            cli_fini(&c);
            return usage_error("replace-server");
        }
    }
    if (!c.help && optind != argc - 1) {
        fprintf(stderr, "corvid: certs replace-server needs one FILE\n");
        cli_fini(&c);
        return usage_error("replace-server");
    }
    CLI_START(c, replace_help);
    json_t *body = NULL;
    struct cmn_buf pw;
    cmn_buf_init(&pw, true);
    struct ca_certfile f;
    char tp[CA_THUMBPRINT_SIZE] = "";
    /* the thumbprint to wait for (the node answers 201 without a body, as RavenDB does) */
    int rv = pw_file && cli_read_password_file(pw_file, &pw) != 0 ? CLI_USAGE : CLI_OK;
    if (rv == CLI_OK)
        rv = cli_certfile_load(&f, argv[optind], NULL, pw.len ? (const char *)pw.data : NULL, false,
                               "replace-server", "give --pfx-password-file", CLI_USAGE);
    cmn_buf_fini(&pw);
    if (rv == CLI_OK) {
        if (ca_thumbprint(f.leaf, tp) != 0)
            rv = CLI_FAILURE;
        ca_certfile_fini(&f);
    }
    if (rv == CLI_OK)
        rv = cli_pfx_body(argv[optind], pw_file, &body);
    struct hc_response r;
    char path[96];
    snprintf(path, sizeof path, "/admin/certificates/replace-cluster-cert?replaceImmediately=%s",
             imm ? "true" : "false");
    if (rv == CLI_OK)
        rv = cli_request(&c, "POST", path, body, CLI_NO_RESEND,
                         "the leader is installing the new certificate", &r);
    json_decref(body);
    if (rv != CLI_OK) {
        cli_fini(&c);
        return rv;
    }
    hc_response_fini(&r);
    if (!c.json)
        fprintf(stderr, "The new server certificate %s is committed; the nodes switch to it:\n",
                tp);
    if (wait)
        rv = wait_replaced(&c, seconds, tp);
    if (c.json) {
        json_t *out = json_pack("{s:s, s:b}", "Thumbprint", tp, "Done", rv == CLI_OK && wait);
        cli_print_json(out);
        json_decref(out);
    } else if (rv == CLI_OK) {
        printf(wait ? "The server certificate %s is in use on every node.\n"
                    : "The replacement with %s is committed; corvid certs replace-server waits for "
                      "it without --no-wait.\n",
               tp);
    }
    cli_fini(&c);
    return rv;
}

static const struct cli_cmd certs_cmds[] = {
    {"list", cmd_list, "the registered certificates, as a table"},
    {"show", cmd_show, "one certificate in detail"},
    {"generate", cmd_generate, "a new client certificate from the cluster CA (.zip or files)"},
    {"upload", cmd_upload, "register an existing certificate (.pfx, .pem, .crt, .cer)"},
    {"edit", cmd_edit, "change a name, clearance or permissions"},
    {"clone", cmd_clone, "a new certificate with another's clearance and permissions"},
    {"delete", cmd_delete, "revoke certificates cluster-wide"},
    {"purge", cmd_purge, "remove every expired certificate"},
    {"export", cmd_export, "the node certificates as a .pfx collection"},
    {"whoami", cmd_whoami, "how the cluster sees your client certificate"},
    {"expiring", cmd_expiring, "the certificates that expire soon"},
    {"replace-server", cmd_replace_server, "one new server certificate for every node"},
};

int certs_main(int argc, char **argv)
{
    static const struct cli_group g = {
        .name = "certs",
        .about = "Client certificates on a running cluster, over its HTTPS API with a client\n"
                 "certificate (an Operator or ClusterAdmin one for most commands).",
        .examples = "  corvid certs list\n"
                    "  corvid certs generate ops --clearance Operator --out var/local/ops\n"
                    "  corvid certs whoami --cert var/local/ops/ops.pfx\n"
                    "  corvid certs delete ops\n",
        .cmds = certs_cmds,
        .n = sizeof certs_cmds / sizeof certs_cmds[0],
    };
    return cli_group_main(&g, argc, argv);
}
