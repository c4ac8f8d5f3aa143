/* `corvid cluster`: the cluster's topology and membership over the HTTPS API — status (every
 * node asked), topology, add-node, remove-node. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/env.h"
#include "tools/corvid/cli.h"
#include "tools/corvid/remote.h"

const char cluster_summary[] = "a running cluster's nodes: status, topology, add and remove nodes";

static int usage_error(const char *cmd)
{
    fprintf(stderr, "Run 'corvid cluster %s --help' for its options.\n", cmd);
    return CLI_USAGE;
}

/* "Member", "Promotable" or "Watcher" for a tag of the topology object. */
static const char *role_of(json_t *topo, const char *tag)
{
    if (json_object_get(json_object_get(topo, "Members"), tag))
        return "Member";
    if (json_object_get(json_object_get(topo, "Promotables"), tag))
        return "Promotable";
    if (json_object_get(json_object_get(topo, "Watchers"), tag))
        return "Watcher";
    return "?";
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------- status */

/* One line for a certificate of a node's CertificateExpiry whose level is not Ok. */
static bool expiry_line(const char *what, json_t *e)
{
    const char *level = cli_str(e, "Level");
    if (e == NULL || !level[0] || strcmp(level, "Ok") == 0)
        return false;
    json_int_t days = json_integer_value(json_object_get(e, "DaysLeft"));
    printf("%s: %s: %s %.10s (%lld days)\n", level, what,
           strcmp(level, "Expired") == 0 ? "expired on" : "expires on", cli_str(e, "NotAfter"),
           (long long)days);
    return true;
}

/* Expiry warnings (RavenDB's levels: Warning 20 days before, Error 3 days before): each node's
 * certificate, then the issuing CA and the client certificates, cluster-wide, once, from the
 * node that counted them last (each counts every hour, and a minute after a change). */
static void print_expiry(json_t *nodes)
{
    size_t i;
    json_t *e, *shared = NULL;
    bool any = false;
    json_array_foreach(nodes, i, e)
    {
        json_t *ex = json_object_get(e, "CertificateExpiry");
        char what[64];
        snprintf(what, sizeof what, "node %s's certificate", cli_str(e, "Tag"));
        any |= expiry_line(what, json_object_get(ex, "NodeCertificate"));
        if (json_is_object(ex) &&
            (shared == NULL || strcmp(cli_str(ex, "CheckedAt"), cli_str(shared, "CheckedAt")) > 0))
            shared = ex; /* the latest count */
    }
    if (shared == NULL)
        return;
    any |= expiry_line("the issuing CA", json_object_get(shared, "IssuingCA"));
    json_t *cl = json_object_get(shared, "ClientCertificates");
    json_int_t w = json_integer_value(json_object_get(cl, "Warning")),
               er = json_integer_value(json_object_get(cl, "Error")),
               x = json_integer_value(json_object_get(cl, "Expired"));
    if (w + er + x > 0) {
        printf("%s: client certificates: %lld expire within %lld days, %lld within %lld days, "
               "%lld expired (corvid certs expiring)\n",
               er + x ? "Error" : "Warning", (long long)w,
               (long long)json_integer_value(json_object_get(shared, "WarningDays")), (long long)er,
               (long long)json_integer_value(json_object_get(shared, "ErrorDays")), (long long)x);
        any = true;
    }
    if (!any)
        printf("\nNo certificate expires within %lld days.\n",
               (long long)json_integer_value(json_object_get(shared, "WarningDays")));
}

static const char status_help[] =
    "usage: corvid cluster status [global options]\n"
    "\n"
    "Asks every node of the topology how it sees the cluster: its role, Raft state, term, the\n"
    "leader it follows and its commit index (Etag). A node that cannot be reached is shown as\n"
    "such; the command still exits 0 when one node answered (check \"Healthy\" with --json).\n"
    "\n"
    "Then the certificates that expire soon: each node's, the issuing CA and the client\n"
    "certificates (a warning 20 days before, an error 3 days before).\n"
    "\n"
    "With --json: {\"Leader\", \"Term\", \"Healthy\", \"Nodes\": [{\"Tag\", \"Url\", \"Role\",\n"
    "\"Reachable\", \"State\", \"Term\", \"Leader\", \"Etag\", \"Error\",\n"
    "\"CertificateExpiry\"}...]}.\n"
    "\n"
    "Examples:\n"
    "  corvid cluster status\n"
    "  corvid cluster status --json\n";

static int cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {CLI_GLOBAL_OPTIONS, {NULL, 0, NULL, 0}};
    struct cli c;
    cli_init(&c);
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        CLI_PARSE_GLOBAL(c, o, usage_error("status"));
        cli_fini(&c);
        return usage_error("status");
    }
    if (optind != argc && !c.help) {
        fprintf(stderr, "corvid: cluster status takes no arguments\n");
        cli_fini(&c);
        return usage_error("status");
    }
    CLI_START(c, status_help);
    int rv = CLI_OK;
    json_t *first;
    if ((rv = cli_get_json(&c, "/cluster/topology", 0, &first)) != CLI_OK) {
        cli_fini(&c);
        return rv;
    }
    json_t *topo = json_object_get(first, "Topology");
    json_t *nodes = json_array();
    const char *tag;
    json_t *url;
    bool healthy = true;
    const char *leader = NULL;
    json_int_t term = -1;
    json_object_foreach(json_object_get(topo, "AllNodes"), tag, url)
    {
        json_t *n = json_pack("{s:s, s:s, s:s}", "Tag", tag, "Url",
                              json_string_value(url) ? json_string_value(url) : "", "Role",
                              role_of(topo, tag));
        char errmsg[CMN_ERRMSG_SIZE] = "";
        json_t *seen = NULL;
        int r =
            json_string_length(url) > 0
                ? cli_get_json_at(&c, json_string_value(url), "/cluster/topology", &seen, errmsg)
                : (snprintf(errmsg, sizeof errmsg, "no URL in the topology"), CLI_FAILURE);
        json_object_set_new(n, "Reachable", json_boolean(r == CLI_OK));
        if (r == CLI_OK) {
            json_object_set(n, "State", json_object_get(seen, "CurrentState"));
            json_object_set(n, "Term", json_object_get(seen, "CurrentTerm"));
            json_object_set(n, "Leader", json_object_get(seen, "Leader"));
            json_object_set(n, "Etag", json_object_get(json_object_get(seen, "Topology"), "Etag"));
            json_object_set_new(n, "Error", json_null());
            const char *l = json_string_value(json_object_get(seen, "Leader"));
            json_int_t t = json_integer_value(json_object_get(seen, "CurrentTerm"));
            if (l == NULL || (leader && strcmp(l, leader) != 0))
                healthy = false;
            if (t > term) {
                term = t;
                leader = json_string_value(json_object_get(n, "Leader"));
            }
            if (leader == NULL)
                leader = json_string_value(json_object_get(n, "Leader"));
            if (strcmp(cli_str(seen, "NodeTag"), tag) != 0) {
                json_object_set_new(
                    n, "Error",
                    json_sprintf("the URL answers as node %s", cli_str(seen, "NodeTag")));
                healthy = false;
            }
            json_t *info = NULL;
            char ierr[CMN_ERRMSG_SIZE];
            if (cli_get_json_at(&c, json_string_value(url), "/cluster/node-info", &info, ierr) ==
                CLI_OK)
                json_object_set(n, "CertificateExpiry", json_object_get(info, "CertificateExpiry"));
            json_decref(info);
        } else {
            healthy = false;
            json_object_set_new(n, "Error", json_string(errmsg));
        }
        json_decref(seen);
        json_array_append_new(nodes, n);
    }
    if (json_array_size(nodes) == 0)
        healthy = false;
    if (c.json) {
        json_t *out =
            json_pack("{s:s?, s:I, s:b, s:O}", "Leader", leader, "Term",
                      term < 0 ? (json_int_t)0 : term, "Healthy", healthy, "Nodes", nodes);
        cli_print_json(out);
        json_decref(out);
    } else {
        size_t n = json_array_size(nodes);
        printf("Cluster: %zu node%s, leader %s, term %lld%s\n\n", n, n == 1 ? "" : "s",
               leader ? leader : "(none)", (long long)(term < 0 ? 0 : term),
               healthy ? "" : "  (not every node agrees or answers)");
        static const char *const head[] = {"TAG",  "URL",    "ROLE", "STATE",
                                           "TERM", "LEADER", "INDEX"};
        struct cli_table t;
        cli_table_init(&t, 7, head);
        size_t i;
        json_t *e;
        json_array_foreach(nodes, i, e)
        {
            char termb[32] = "", idx[32] = "", state[CMN_ERRMSG_SIZE + 16];
            bool up = json_is_true(json_object_get(e, "Reachable"));
            if (up) {
                snprintf(termb, sizeof termb, "%lld",
                         (long long)json_integer_value(json_object_get(e, "Term")));
                snprintf(idx, sizeof idx, "%lld",
                         (long long)json_integer_value(json_object_get(e, "Etag")));
                snprintf(state, sizeof state, "%s", cli_str(e, "State"));
            } else {
                snprintf(state, sizeof state, "unreachable");
            }
            const char *row[] = {cli_str(e, "Tag"),
                                 cli_str(e, "Url"),
                                 cli_str(e, "Role"),
                                 state,
                                 termb,
                                 up ? (cli_str(e, "Leader")[0] ? cli_str(e, "Leader") : "(none)")
                                    : "",
                                 idx};
            if (cli_table_add(&t, row) != 0)
                break;
            if (!up)
                cli_table_color(&t, i, 3, CLI_RED);
            else if (strcmp(cli_str(e, "State"), "Leader") == 0)
                cli_table_color(&t, i, 3, CLI_GREEN);
        }
        cli_table_print(&t, stdout, c.color);
        cli_table_fini(&t);
        json_array_foreach(nodes, i, e)
        {
            if (!json_is_null(json_object_get(e, "Error"))) {
                char safe[CMN_ERRMSG_SIZE];
                cli_safe_text(cli_str(e, "Error"), safe, sizeof safe);
                printf("\nnode %s: %s", cli_str(e, "Tag"), safe);
            }
        }
        if (!healthy)
            printf("\n");
        print_expiry(nodes);
    }
    json_decref(nodes);
    json_decref(first);
    cli_fini(&c);
    return CLI_OK;
}

/* ---------------------------------------------------------------- topology */

static const char topology_help[] =
    "usage: corvid cluster topology [global options]\n"
    "\n"
    "Shows the cluster's topology as one node sees it (GET /cluster/topology): the leader,\n"
    "the term, and each node with its URL and role (Member votes; Promotable is catching up;\n"
    "Watcher does not vote).\n"
    "\n"
    "With --json: the node's answer ({\"Topology\": {\"Members\", \"Promotables\", \"Watchers\",\n"
    "\"AllNodes\", \"TopologyId\", \"Etag\"}, \"Leader\", \"NodeTag\", \"CurrentState\",\n"
    "\"CurrentTerm\"}).\n"
    "\n"
    "Examples:\n"
    "  corvid cluster topology\n"
    "  corvid cluster topology --url https://127.0.0.1:8082 --json\n";

static int cmd_topology(int argc, char **argv)
{
    static const struct option opts[] = {CLI_GLOBAL_OPTIONS, {NULL, 0, NULL, 0}};
    struct cli c;
    cli_init(&c);
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        CLI_PARSE_GLOBAL(c, o, usage_error("topology"));
        cli_fini(&c);
        return usage_error("topology");
    }
    if (optind != argc && !c.help) {
        fprintf(stderr, "corvid: cluster topology takes no arguments\n");
        cli_fini(&c);
        return usage_error("topology");
    }
    CLI_START(c, topology_help);
    int rv = CLI_OK;
    json_t *t;
    if ((rv = cli_get_json(&c, "/cluster/topology", 0, &t)) != CLI_OK) {
        cli_fini(&c);
        return rv;
    }
    if (c.json) {
        cli_print_json(t);
    } else {
        json_t *topo = json_object_get(t, "Topology");
        const char *leader = json_string_value(json_object_get(t, "Leader"));
        printf("Leader %s, term %lld (as seen by node %s, %s)\n\n", leader ? leader : "(none)",
               (long long)json_integer_value(json_object_get(t, "CurrentTerm")),
               cli_str(t, "NodeTag"), cli_str(t, "CurrentState"));
        static const char *const head[] = {"TAG", "URL", "ROLE"};
        struct cli_table tb;
        cli_table_init(&tb, 3, head);
        const char *tag;
        json_t *url;
        json_object_foreach(json_object_get(topo, "AllNodes"), tag, url)
        {
            char role[48];
            snprintf(role, sizeof role, "%s%s", role_of(topo, tag),
                     leader && strcmp(leader, tag) == 0 ? " (leader)" : "");
            const char *row[] = {tag, json_string_value(url) ? json_string_value(url) : "", role};
            if (cli_table_add(&tb, row) != 0)
                break;
        }
        cli_table_print(&tb, stdout, c.color);
        cli_table_fini(&tb);
        printf("\nTopology etag (commit index): %lld\n",
               (long long)json_integer_value(json_object_get(topo, "Etag")));
    }
    json_decref(t);
    cli_fini(&c);
    return CLI_OK;
}

/* ---------------------------------------------------------------- add / remove */

/* Polls the topology until done(topology, arg) or the deadline; a spinner on a terminal. */
static int wait_topology(struct cli *c, int seconds, const char *label,
                         bool (*done)(json_t *t, const char *arg), const char *arg)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    static const char frames[] = "|/-\\";
    for (int i = 0;; i++) {
        json_t *t;
        struct hc_response r;
        int rv = cli_request(c, "GET", "/cluster/topology", NULL, 0, NULL, &r);
        if (rv != CLI_OK)
            return rv;
        t = json_loadb((const char *)r.body.data, r.body.len, 0, NULL);
        hc_response_fini(&r);
        bool ok = t && done(json_object_get(t, "Topology"), arg);
        json_decref(t);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long waited = (long)(now.tv_sec - t0.tv_sec);
        if (ok) {
            if (c->progress && i > 0)
                fprintf(stderr, "\r\033[K");
            return CLI_OK;
        }
        if (waited >= seconds) {
            if (c->progress && i > 0)
                fprintf(stderr, "\r\033[K");
            fprintf(stderr, "corvid: still not done after %d s: %s\n", seconds, label);
            return CLI_FAILURE;
        }
        if (c->progress) {
            fprintf(stderr, "\r%c %s… %lds", frames[i % 4], label, waited);
            fflush(stderr);
        }
        sleep_ms(500);
    }
}

static bool is_member(json_t *topo, const char *tag)
{
    return json_object_get(json_object_get(topo, "Members"), tag) != NULL;
}

static bool is_gone(json_t *topo, const char *tag)
{
    return json_is_object(json_object_get(topo, "AllNodes")) &&
           json_object_get(json_object_get(topo, "AllNodes"), tag) == NULL;
}

static const char add_help[] =
    "usage: corvid cluster add-node URL [--tag TAG] [--thumbprint T] [--no-wait]\n"
    "                               [--wait SECONDS] [global options]\n"
    "\n"
    "Adds the node serving URL to the cluster (PUT /admin/cluster/node, followed to the\n"
    "leader): the leader checks the node's certificate, registers it, adds the node to Raft,\n"
    "catches it up and promotes it. The new node must be running, passive (no\n"
    "Cluster.Bootstrap) and trust the cluster's node certificates\n"
    "(Cluster.TrustedNodeCertificates.Path: see `corvid certs export`). Then waits, with\n"
    "progress on a terminal, until the node is a voting member. Needs ClusterAdmin.\n"
    "\n"
    "Options:\n"
    "  --tag TAG         the new node's tag (default: the one it reports at /cluster/node-info)\n"
    "  --thumbprint T    its certificate's expected thumbprint (default: the one it reports;\n"
    "                    the leader refuses the node if it sees another certificate)\n"
    "  --no-wait         return once the leader has accepted the node\n"
    "  --wait SECONDS    how long to wait for the promotion (default 120)\n"
    "\n"
    "With --json: {\"Tag\", \"Url\", \"Member\"}.\n"
    "\n"
    "Examples:\n"
    "  corvid certs export --out var/local/pki/ServerCertificatesCollection.pfx --force\n"
    "  corvid cluster add-node https://127.0.0.1:8084 --tag D\n";

static int cmd_add(int argc, char **argv)
{
    enum { O_TAG = OPT_LOCAL_BASE, O_NO_WAIT, O_WAIT, O_THUMB };
    static const struct option opts[] = {
        {"tag", required_argument, NULL, O_TAG},
        {"thumbprint", required_argument, NULL, O_THUMB},
        {"no-wait", no_argument, NULL, O_NO_WAIT},
        {"wait", required_argument, NULL, O_WAIT},
        CLI_GLOBAL_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct cli c;
    cli_init(&c);
    const char *tag_arg = NULL, *thumb_arg = NULL;
    bool wait = true;
    long wait_s = 120;
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        CLI_PARSE_GLOBAL(c, o, usage_error("add-node"));
        if (o == O_TAG && ca_node_tag_valid(optarg)) {
            tag_arg = optarg;
            continue;
        }
        if (o == O_NO_WAIT) {
            wait = false;
            continue;
        }
        if (o == O_THUMB && strlen(optarg) == 40 && cmn_is_hex(optarg, 40)) {
            thumb_arg = optarg;
            continue;
        }
        if (o == O_THUMB)
            fprintf(stderr, "corvid: --thumbprint: 40 hex digits (SHA-1 of the certificate)\n");
        if (o == O_WAIT) {
            char *end;
            wait_s = strtol(optarg, &end, 10);
            if (*end == '\0' && end != optarg && wait_s >= 1 && wait_s <= 3600)
                continue;
            fprintf(stderr, "corvid: --wait expects seconds from 1 to 3600\n");
        }
        if (o == O_TAG)
            fprintf(stderr, "corvid: --tag: 1 to 4 upper-case letters\n");
        cli_fini(&c);
        return usage_error("add-node");
    }
    struct hc_url u;
    char err[CMN_ERRMSG_SIZE];
    if (!c.help && (optind != argc - 1 || hc_url_parse(argv[optind], &u, err) != 0)) {
        if (optind == argc - 1)
            fprintf(stderr, "corvid: %s\n", err);
        else
            fprintf(stderr, "corvid: cluster add-node needs the new node's URL\n");
        cli_fini(&c);
        return usage_error("add-node");
    }
    CLI_START(c, add_help);
    int rv = CLI_OK;
    char tag[8] = "", thumb[48] = "";
    if (tag_arg)
        snprintf(tag, sizeof tag, "%s", tag_arg);
    if (thumb_arg)
        snprintf(thumb, sizeof thumb, "%s", thumb_arg);
    /* What the new node says about itself (anyone may ask), over TLS verified like every call:
     * shown, its tag when none is given, and its certificate's thumbprint, which the leader
     * then checks it sees too. Not fatal: the leader may reach it where this machine cannot. */
    json_t *info = NULL;
    if (cli_get_json_at(&c, u.base, "/cluster/node-info", &info, err) == CLI_OK) {
        const char *t = cli_str(info, "NodeTag"), *tp = cli_str(info, "Thumbprint");
        if (tag[0] && t[0] && strcmp(t, tag) != 0) {
            fprintf(stderr, "corvid: %s says it is node %s, not %s\n", u.base, t, tag);
            json_decref(info);
            cli_fini(&c);
            return CLI_USAGE;
        }
        if (thumb[0] && tp[0] && strcasecmp(tp, thumb) != 0) {
            fprintf(stderr, "corvid: %s has the certificate %s, not %s\n", u.base, tp, thumb);
            json_decref(info);
            cli_fini(&c);
            return CLI_USAGE;
        }
        if (!tag[0] && ca_node_tag_valid(t))
            snprintf(tag, sizeof tag, "%s", t);
        if (!thumb[0] && strlen(tp) == 40 && cmn_is_hex(tp, 40))
            snprintf(thumb, sizeof thumb, "%s", tp);
        if (!c.json)
            printf("Adding node %s at %s (certificate %s)\n", tag[0] ? tag : "?", u.base,
                   thumb[0] ? thumb : "?");
        json_decref(info);
    } else {
        fprintf(stderr, "corvid: note: cannot ask the new node about itself: %s\n", err);
    }
    if (!tag[0]) {
        fprintf(stderr, "corvid: the new node's tag is unknown: give --tag\n");
        cli_fini(&c);
        return CLI_USAGE;
    }
    struct cmn_buf path;
    cmn_buf_init(&path, false);
    if (cmn_buf_append_str(&path, "/admin/cluster/node?url=") != 0 ||
        hc_query_escape(u.base, &path) != 0 || cmn_buf_printf(&path, "&tag=%s", tag) != 0 ||
        (thumb[0] && cmn_buf_printf(&path, "&expectedThumbprint=%s", thumb) != 0)) {
        cmn_buf_fini(&path);
        cli_fini(&c);
        return CLI_FAILURE;
    }
    char label[64];
    snprintf(label, sizeof label, "the leader is adding node %s", tag);
    struct hc_response r;
    rv = cli_request(&c, "PUT", (const char *)path.data, NULL, 0, label, &r);
    cmn_buf_fini(&path);
    if (rv != CLI_OK) {
        cli_fini(&c);
        return rv;
    }
    hc_response_fini(&r);
    bool member = false;
    if (wait) {
        char what[64];
        snprintf(what, sizeof what, "node %s catching up to become a member", tag);
        rv = wait_topology(&c, (int)wait_s, what, is_member, tag);
        member = rv == CLI_OK;
    }
    if (c.json) {
        json_t *out = json_pack("{s:s, s:s, s:b}", "Tag", tag, "Url", u.base, "Member", member);
        cli_print_json(out);
        json_decref(out);
    } else if (rv == CLI_OK) {
        printf(member ? "Node %s (%s) is a member of the cluster.\n"
                      : "The leader accepted node %s (%s); it becomes a member once caught up "
                        "(see `corvid cluster status`).\n",
               tag[0] ? tag : "?", u.base);
    }
    cli_fini(&c);
    return rv;
}

static const char remove_help[] =
    "usage: corvid cluster remove-node TAG [--yes] [--no-wait] [global options]\n"
    "\n"
    "Removes node TAG from the cluster (DELETE /admin/cluster/node?nodeTag=TAG), after asking\n"
    "on a terminal unless --yes, then waits until it has left the topology. Needs\n"
    "ClusterAdmin.\n"
    "\n"
    "Options:\n"
    "  --yes       do not ask\n"
    "  --no-wait   return once the leader has accepted the removal\n"
    "\n"
    "With --json: {\"Tag\", \"Removed\"}.\n"
    "\n"
    "Examples:\n"
    "  corvid cluster remove-node D\n"
    "  corvid cluster remove-node D --yes --json\n";

static int cmd_remove(int argc, char **argv)
{
    enum { O_YES = OPT_LOCAL_BASE, O_NO_WAIT };
    static const struct option opts[] = {
        {"yes", no_argument, NULL, O_YES},
        {"no-wait", no_argument, NULL, O_NO_WAIT},
        CLI_GLOBAL_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct cli c;
    cli_init(&c);
    bool yes = false, wait = true;
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "hy", opts, NULL)) != -1) {
        CLI_PARSE_GLOBAL(c, o, usage_error("remove-node"));
        if (o == O_YES || o == 'y') {
            yes = true;
            continue;
        }
        if (o == O_NO_WAIT) {
            wait = false;
            continue;
        }
        cli_fini(&c);
        return usage_error("remove-node");
    }
    if (!c.help && (optind != argc - 1 || !ca_node_tag_valid(argv[optind]))) {
        fprintf(stderr, "corvid: cluster remove-node needs one node TAG (1 to 4 upper-case "
                        "letters)\n");
        cli_fini(&c);
        return usage_error("remove-node");
    }
    CLI_START(c, remove_help);
    int rv = CLI_OK;
    const char *tag = argv[optind];
    if (!yes && isatty(STDIN_FILENO)) {
        FILE *tty = fopen("/dev/tty", "r+");
        if (tty) {
            fprintf(tty, "Remove node %s from the cluster? [y/N] ", tag);
            fflush(tty);
            char line[16] = "";
            bool ok = fgets(line, sizeof line, tty) != NULL && (line[0] == 'y' || line[0] == 'Y');
            fclose(tty);
            if (!ok) {
                fprintf(stderr, "corvid: node %s left in the cluster\n", tag);
                cli_fini(&c);
                return CLI_FAILURE;
            }
        }
    }
    char path[64], label[64];
    snprintf(path, sizeof path, "/admin/cluster/node?nodeTag=%s", tag);
    snprintf(label, sizeof label, "the leader is removing node %s", tag);
    struct hc_response r;
    rv = cli_request(&c, "DELETE", path, NULL, 0, label, &r);
    if (rv != CLI_OK) {
        cli_fini(&c);
        return rv;
    }
    hc_response_fini(&r);
    char what[64];
    snprintf(what, sizeof what, "node %s leaving the topology", tag);
    if (wait)
        rv = wait_topology(&c, 60, what, is_gone, tag);
    if (c.json) {
        json_t *out = json_pack("{s:s, s:b}", "Tag", tag, "Removed", rv == CLI_OK);
        cli_print_json(out);
        json_decref(out);
    } else if (rv == CLI_OK) {
        printf(wait ? "Node %s is no longer part of the cluster.\n"
                    : "The leader accepted the removal of node %s.\n",
               tag);
    }
    cli_fini(&c);
    return rv;
}

/* ---------------------------------------------------------------- rotate-node-cert */

static const char rotate_help[] =
    "usage: corvid cluster rotate-node-cert TAG [--pfx FILE [--pfx-password-file F]]\n"
    "                                       [global options]\n"
    "\n"
    "Rotates node TAG's certificate with no downtime (POST\n"
    "/admin/certificates/replace-node-cert?nodeTag=TAG, followed to that node). Without\n"
    "--pfx, node TAG makes a new key itself (it never leaves the node) and has it certified by\n"
    "the cluster CA, for the same host and as long as the current certificate. The node\n"
    "registers the new certificate beside the old one, writes it to its\n"
    "Security.Certificate.Path, presents it on new connections (open ones finish on the old\n"
    "one), then the old one is revoked everywhere. Needs ClusterAdmin.\n"
    "\n"
    "Options:\n"
    "  --pfx FILE               the new certificate with its key (serverAuth and clientAuth\n"
    "                           usages, naming the node: URI:urn:corvid:node:TAG)\n"
    "  --pfx-password-file F    the .pfx's password, first line of F\n"
    "\n"
    "With --json: {\"Node\", \"OldThumbprint\", \"Thumbprint\", \"NotAfter\", \"Changed\"}.\n"
    "\n"
    "Examples:\n"
    "  corvid cluster rotate-node-cert B\n"
    "  corvid cluster rotate-node-cert B --pfx new-b.pfx --pfx-password-file b.pass\n";

static int cmd_rotate(int argc, char **argv)
{
    enum { O_PFX = OPT_LOCAL_BASE, O_PFX_PW };
    static const struct option opts[] = {
        {"pfx", required_argument, NULL, O_PFX},
        {"pfx-password-file", required_argument, NULL, O_PFX_PW},
        CLI_GLOBAL_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct cli c;
    cli_init(&c);
    const char *pfx = NULL, *pw_file = NULL;
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        CLI_PARSE_GLOBAL(c, o, usage_error("rotate-node-cert"));
        if (o == O_PFX) {
            pfx = optarg;
            continue;
        }
        if (o == O_PFX_PW) {
            pw_file = optarg;
            continue;
        }
        cli_fini(&c);
        return usage_error("rotate-node-cert");
    }
    if (!c.help && (optind != argc - 1 || !ca_node_tag_valid(argv[optind]))) {
        fprintf(stderr, "corvid: cluster rotate-node-cert needs one node TAG (1 to 4 upper-case "
                        "letters)\n");
        cli_fini(&c);
        return usage_error("rotate-node-cert");
    }
    CLI_START(c, rotate_help);
    const char *tag = argv[optind];
    json_t *body = NULL;
    int rv = CLI_OK;
    if (pfx != NULL)
        rv = cli_pfx_body(pfx, pw_file, &body);
    char path[96], label[96];
    snprintf(path, sizeof path, "/admin/certificates/replace-node-cert?nodeTag=%s", tag);
    snprintf(label, sizeof label, "node %s is putting its new certificate in place", tag);
    struct hc_response r;
    if (rv == CLI_OK)
        rv = cli_request(&c, "POST", path, body, CLI_NO_RESEND, label, &r);
    json_decref(body);
    if (rv != CLI_OK) {
        cli_fini(&c);
        return rv;
    }
    json_t *res = json_loadb(r.body.data ? (const char *)r.body.data : "", r.body.len, 0, NULL);
    hc_response_fini(&r);
    const char *old = json_string_value(json_object_get(res, "OldThumbprint"));
    const char *now = json_string_value(json_object_get(res, "Thumbprint"));
    const char *until = json_string_value(json_object_get(res, "NotAfter"));
    if (c.json) {
        cli_print_json(res);
    } else if (!json_is_true(json_object_get(res, "Changed"))) {
        printf("Node %s already uses certificate %s: nothing to do.\n", tag, now ? now : "?");
    } else {
        printf("Node %s now presents certificate %s (valid until %s).\n"
               "Its previous certificate %s is revoked on every node.\n",
               tag, now ? now : "?", until ? until : "?", old ? old : "?");
    }
    json_decref(res);
    cli_fini(&c);
    return CLI_OK;
}

/* ---------------------------------------------------------------- dispatch */

static const struct cli_cmd cluster_cmds[] = {
    {"status", cmd_status, "every node asked: role, state, term, leader, index"},
    {"topology", cmd_topology, "the topology as one node sees it"},
    {"add-node", cmd_add, "add a running passive node, wait until it is a member"},
    {"remove-node", cmd_remove, "remove a node from the cluster"},
    {"rotate-node-cert", cmd_rotate, "give a node a new certificate, with no downtime"},
};

int cluster_main(int argc, char **argv)
{
    static const struct cli_group g = {
        .name = "cluster",
        .about = "A running cluster's nodes, over its HTTPS API.",
        .examples = "  corvid cluster status\n"
                    "  corvid cluster add-node https://127.0.0.1:8084 --tag D\n",
        .cmds = cluster_cmds,
        .n = sizeof cluster_cmds / sizeof cluster_cmds[0],
    };
    return cli_group_main(&g, argc, argv);
}
