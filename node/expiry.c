/* Expiry of this node's, the issuing CA's and the client certificates (node/expiry.h): part
 * of the core, run from its duty timer. The client certificates are counted over a snapshot
 * of the trust state in the threadpool, so that a million registrations never hold the loop. */
#include "node/expiry.h"

#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "ca/ident.h"
#include "common/log.h"
#include "node/core.h"

#define CHECK_EVERY_MS (3600LL * 1000) /* levels are days apart: an hour is soon enough */
#define CHANGED_MS     (60LL * 1000)   /* after a trust change, again once it is a minute old */
#define RELOG_MS       (24LL * 3600 * 1000)

enum node_expiry node_expiry_level(int64_t not_after, int64_t now)
{
    if (not_after <= now)
        return NODE_EXPIRY_EXPIRED;
    if (not_after - now <= NODE_EXPIRY_ERROR_DAYS * CA_DAY_SECS)
        return NODE_EXPIRY_ERROR;
    if (not_after - now <= NODE_EXPIRY_WARN_DAYS * CA_DAY_SECS)
        return NODE_EXPIRY_WARNING;
    return NODE_EXPIRY_OK;
}

const char *node_expiry_name(enum node_expiry level)
{
    static const char *const names[] = {"Ok", "Warning", "Error", "Expired"};
    return names[level];
}

static int64_t not_after_of(X509 *x)
{
    struct ca_ident id;
    return x && ca_ident_get(x, &id, NULL) == 0 ? id.not_after : 0;
}

struct expiry_job {
    uv_work_t work;
    struct node *n;
    struct kv_snap *snap;
    int64_t now;
    struct node_expiry_report r;
    int rv;
    char errmsg[CMN_ERRMSG_SIZE];
};

static int count_client(void *ctx, const struct kv_cert *c)
{
    struct expiry_job *j = ctx;
    if (c->clearance == KV_CL_CLUSTER_NODE || c->primary[0])
        return 0; /* node certificates have their own line; a collection counts once */
    switch (node_expiry_level(c->not_after, j->now)) {
    case NODE_EXPIRY_WARNING:
        j->r.clients_warning++;
        break;
    case NODE_EXPIRY_ERROR:
        j->r.clients_error++;
        break;
    case NODE_EXPIRY_EXPIRED:
        j->r.clients_expired++;
        break;
    default:
        break;
    }
    return 0;
}

static void expiry_work(uv_work_t *w)
{
    struct expiry_job *j = w->data;
    j->rv = kv_snap_cert_each(j->snap, count_client, j, j->errmsg);
}

/* One log line for a certificate at a level other than Ok. */
static void log_level(const char *what, int64_t not_after, int64_t now, const char *todo)
{
    enum node_expiry lv = node_expiry_level(not_after, now);
    if (lv == NODE_EXPIRY_OK)
        return;
    char date[40];
    time_t t = (time_t)not_after;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", &tm);
    if (lv == NODE_EXPIRY_EXPIRED)
        CMN_ERROR("NODE-EXPIRY", "%s expired on %s: %s", what, date, todo);
    else
        cmn_log(lv == NODE_EXPIRY_ERROR ? CMN_LOG_ERROR : CMN_LOG_WARN, "NODE-EXPIRY",
                "%s expires on %s, in %lld days: %s", what, date,
                (long long)((not_after - now) / CA_DAY_SECS), todo);
}

static void expiry_after(uv_work_t *w, int status)
{
    struct expiry_job *j = w->data;
    struct node *n = j->n;
    kv_snap_end(j->snap);
    n->expiry_checking = false;
    if (status != 0 || j->rv != 0) {
        CMN_WARN("NODE-EXPIRY", "cannot count the expiring certificates: %s",
                 status != 0 ? "the work was cancelled" : j->errmsg);
        free(j);
        return;
    }
    struct node_expiry_report old = n->expiry;
    n->expiry = j->r;
    int64_t now_ms = j->r.checked_ms;
    bool worse =
        node_expiry_level(j->r.node_not_after, j->now) >
            node_expiry_level(old.node_not_after, j->now) ||
        j->r.clients_error + j->r.clients_expired > old.clients_error + old.clients_expired;
    if (worse || now_ms >= n->expiry_logged_ms + RELOG_MS) {
        n->expiry_logged_ms = now_ms;
        log_level("this node's certificate", j->r.node_not_after, j->now,
                  "replace it before then (its peers refuse it once it has expired)");
        if (j->r.ca_not_after)
            log_level("the cluster's issuing CA", j->r.ca_not_after, j->now,
                      "certificates it issued stop verifying then");
        if (j->r.clients_warning + j->r.clients_error + j->r.clients_expired)
            cmn_log(j->r.clients_error + j->r.clients_expired ? CMN_LOG_ERROR : CMN_LOG_WARN,
                    "NODE-EXPIRY",
                    "client certificates: %zu expire within %d days, %zu within %d days, %zu "
                    "expired (`corvid certs expiring` lists them)",
                    j->r.clients_warning, NODE_EXPIRY_WARN_DAYS, j->r.clients_error,
                    NODE_EXPIRY_ERROR_DAYS, j->r.clients_expired);
    }
    free(j);
}

void node_expiry_check(struct node *n)
{
    int64_t now_ms = cmn_now_ms(&cmn_clock_system);
    if (n->expiry_checking)
        return;
    /* Due every hour; sooner once the issuing CA is known (it is committed after the start),
     * and a minute after registrations changed. */
    bool due = now_ms >= n->expiry_next_ms ||
               (n->expiry.ca_not_after == 0 && node_issuing_cert(n) != NULL) ||
               (n->expiry_gen != node_trust_gen(n) && now_ms >= n->expiry.checked_ms + CHANGED_MS);
    if (!due)
        return;
    n->expiry_gen = node_trust_gen(n);
    struct expiry_job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return;
    j->n = n;
    j->work.data = j;
    j->now = now_ms / 1000;
    j->r.checked_ms = now_ms;
    j->r.node_not_after = not_after_of(n->cert);
    j->r.ca_not_after = not_after_of(node_issuing_cert(n));
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (node_snapshot_job(n, &j->snap, &j->work, expiry_work, expiry_after, errmsg) != 0) {
        CMN_WARN("NODE-EXPIRY", "cannot count the expiring certificates: %s", errmsg);
        free(j);
        return;
    }
    n->expiry_checking = true;
    n->expiry_next_ms = now_ms + CHECK_EVERY_MS;
}

void node_expiry_get(struct node *n, struct node_expiry_report *out)
{
    *out = n->expiry;
}

static json_t *one(int64_t not_after, int64_t now)
{
    char date[CMN_DATE_SIZE];
    cmn_iso_date(not_after, date);
    return json_pack("{s:s, s:s, s:I}", "NotAfter", date, "Level",
                     node_expiry_name(node_expiry_level(not_after, now)), "DaysLeft",
                     (json_int_t)((not_after - now) / CA_DAY_SECS));
}

json_t *node_expiry_json(const struct node_expiry_report *r, int64_t now)
{
    if (r->checked_ms == 0)
        return json_null();
    char checked[CMN_DATE_SIZE];
    cmn_iso_date(r->checked_ms / 1000, checked);
    return json_pack("{s:s, s:o, s:o, s:{s:I, s:I, s:I}, s:I, s:I}", "CheckedAt", checked,
                     "NodeCertificate", one(r->node_not_after, now), "IssuingCA",
                     r->ca_not_after ? one(r->ca_not_after, now) : json_null(),
                     "ClientCertificates", "Warning", (json_int_t)r->clients_warning, "Error",
                     (json_int_t)r->clients_error, "Expired", (json_int_t)r->clients_expired,
                     "WarningDays", (json_int_t)NODE_EXPIRY_WARN_DAYS, "ErrorDays",
                     (json_int_t)NODE_EXPIRY_ERROR_DAYS);
}
