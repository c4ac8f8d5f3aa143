/* corvid-bench revoke: how long after DELETE /admin/certificates?thumbprint=X returns every node
 * refuses X. For each of N registered certificates:
 *   1. a fresh connection per node presents X and is served (200), so every node knows it;
 *   2. per node, --spares new TLS connections presenting X finish their handshakes and send
 *      nothing (a node authenticates a connection at its first request, and closes connections
 *      of a revoked certificate only once they have been authenticated, so these stay open);
 *   3. DELETE via one node, on a keep-alive connection of the caller; its 204 is t = 0;
 *   4. at once, on every node, the first request of one of those connections
 *      (GET /cluster/topology, which needs a registered certificate): a 403 saying "was
 *      revoked" ends that node's probe; a 200 means it still served X: that connection is
 *      dropped, the next one probes at once, and a new one is opened to keep the spares up.
 * A node's time is when its 403 arrived, so it includes one request's round trip. Reported:
 * percentiles over the revocations of the slowest node's time, of each node's, and the number
 * of requests served with X after the DELETE returned. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "tools/bench/bench.h"

#define MAX_NODES  8
#define MAX_SPARES 8

struct probe_node {
    const char *url;
    struct sockaddr_in sa;
    struct hc conns[MAX_SPARES];
    int active;      /* index of the connection with the probe in flight, or -1 */
    bool done;       /* refused */
    double refused;  /* when */
    long served;     /* 200s after the DELETE returned, this revocation */
    long served_all; /* and over all of them */
    double *lat;     /* per revocation, seconds */
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *sorted, long n, double p)
{
    if (n == 0)
        return 0;
    long rank = (long)(p / 100.0 * (double)n + 0.999999);
    rank = rank < 1 ? 1 : rank > n ? n : rank;
    return sorted[rank - 1];
}

static void summary(const char *label, double *v, long n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    printf("  %-34s p50 %7.3f  p90 %7.3f  p99 %7.3f  max %7.3f ms\n", label, 1e3 * pct(v, n, 50),
           1e3 * pct(v, n, 90), 1e3 * pct(v, n, 99), n ? 1e3 * v[n - 1] : 0.0);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: corvid-bench revoke --url URL --url URL ... --cert PEM [options]\n\n"
            "Time from DELETE /admin/certificates?thumbprint=X returning (204) until every node\n"
            "given with --url refuses X on a new connection (403 \"was revoked\"), over --count\n"
            "revocations of freshly registered certificates. --cert is the caller (Operator or\n"
            "above, e.g. a node's .pem).\n\n"
            "  --url URL         a node to probe (repeat for every node)\n"
            "  --delete-url URL  the node that gets the DELETE (default: the first --url)\n"
            "  --cacert FILE     verify the nodes against these CA certificates\n"
            "  --cert/--key PEM  the caller's certificate\n"
            "  --count N         revocations (default 1000)\n"
            "  --spares K        connections opened beforehand per node and revocation (default\n"
            "                    3, at most %d)\n"
            "  --issuer PFX      sign the certificates with this CA (default: a throwaway CA)\n"
            "  --timeout S       per revocation (default 5)\n"
            "  --target LABEL    the result line's target= (default revoke)\n",
            MAX_SPARES);
}

static char *make_request(const char *method, const char *path, const char *body)
{
    struct cmn_buf b;
    cmn_buf_init(&b, false);
    int rv = body ? cmn_buf_printf(&b,
                                   "%s %s HTTP/1.1\r\nHost: corvid\r\nContent-Type: "
                                   "application/json\r\nContent-Length: %zu\r\n\r\n%s",
                                   method, path, strlen(body), body)
                  : cmn_buf_printf(&b, "%s %s HTTP/1.1\r\nHost: corvid\r\n\r\n", method, path);
    if (rv != 0 || cmn_buf_append(&b, "", 1) != 0) {
        cmn_buf_fini(&b);
        return NULL;
    }
    return (char *)b.data;
}

static const char PROBE[] = "GET /cluster/topology HTTP/1.1\r\nHost: corvid\r\n\r\n";

/* Drives every connection that is connecting or handshaking until it is open. A connection
 * the node refuses during the handshake is opened again (at most 3 times per call; *refused
 * counts them). Connections are never abandoned halfway: a node counts the handshakes in
 * progress, and one closed by its client halfway is not always taken off that count. */
static int settle(struct probe_node *nodes, int n_nodes, int spares, SSL_CTX *tls, X509 *cert,
                  EVP_PKEY *key, double timeout, long *refused)
{
    struct pollfd pfd[MAX_NODES * MAX_SPARES];
    int retries = 0;
    double deadline = bench_now() + timeout;
    for (;;) {
        int np = 0;
        for (int k = 0; k < n_nodes; k++) {
            for (int s = 0; s < spares; s++) {
                struct hc *c = &nodes[k].conns[s];
                if (c->st != HC_CONNECTING && c->st != HC_HANDSHAKE)
                    continue;
                int e = hc_io(c);
                if (e == HC_FAILED) {
                    if (++retries > 3) {
                        fprintf(stderr, "corvid-bench: %s: %s\n", nodes[k].url, c->err);
                        return -1;
                    }
                    (*refused)++;
                    if (hc_open(c, tls, &nodes[k].sa, cert, key) != 0)
                        return -1;
                    e = HC_AGAIN;
                }
                if (e == HC_AGAIN) {
                    pfd[np].fd = c->fd;
                    pfd[np++].events = c->want;
                }
            }
        }
        if (np == 0)
            return 0;
        double left = deadline - bench_now();
        if (left <= 0) {
            fprintf(stderr, "corvid-bench: handshakes did not finish in %.0f s\n", timeout);
            return -1;
        }
        if (poll(pfd, (nfds_t)np, (int)(left * 1000) + 1) < 0 && errno != EINTR)
            return -1;
    }
}

static int open_spares(struct probe_node *nodes, int n_nodes, int spares, SSL_CTX *tls, X509 *cert,
                       EVP_PKEY *key, double timeout, long *refused)
{
    for (int k = 0; k < n_nodes; k++) {
        for (int s = 0; s < spares; s++) {
            if (hc_open(&nodes[k].conns[s], tls, &nodes[k].sa, cert, key) != 0) {
                fprintf(stderr, "corvid-bench: %s: %s\n", nodes[k].url, nodes[k].conns[s].err);
                return -1;
            }
        }
    }
    return settle(nodes, n_nodes, spares, tls, cert, key, timeout, refused);
}

/* Starts the probe of node k on its next open connection, if there is one. */
static void probe_next(struct probe_node *p, int spares)
{
    p->active = -1;
    for (int s = 0; s < spares; s++) {
        if (p->conns[s].st == HC_OPEN) {
            p->active = s;
            hc_send(&p->conns[s], PROBE, sizeof PROBE - 1);
            return;
        }
    }
}

int bench_revoke_main(int argc, char **argv)
{
    struct probe_node nodes[MAX_NODES];
    memset(nodes, 0, sizeof nodes);
    int n_nodes = 0;
    const char *delete_url = NULL, *cacert = NULL, *cert = NULL, *key = NULL, *issuer = NULL;
    const char *target = "revoke";
    long count = 1000, spares = 3;
    double timeout = 5;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--url") == 0 && has) {
            if (n_nodes == MAX_NODES) {
                fprintf(stderr, "corvid-bench: at most %d nodes\n", MAX_NODES);
                return 2;
            }
            nodes[n_nodes].url = argv[++i];
            if (hc_parse_url(nodes[n_nodes].url, &nodes[n_nodes].sa) != 0) {
                fprintf(stderr, "corvid-bench: --url wants https://IPv4:PORT\n");
                return 2;
            }
            n_nodes++;
        } else if (strcmp(a, "--delete-url") == 0 && has) {
            delete_url = argv[++i];
        } else if (strcmp(a, "--cacert") == 0 && has) {
            cacert = argv[++i];
        } else if (strcmp(a, "--cert") == 0 && has) {
            cert = argv[++i];
        } else if (strcmp(a, "--key") == 0 && has) {
            key = argv[++i];
        } else if (strcmp(a, "--issuer") == 0 && has) {
            issuer = argv[++i];
        } else if (strcmp(a, "--target") == 0 && has) {
            target = argv[++i];
        } else if (strcmp(a, "--count") == 0 && has) {
            if (bench_arg_long(a, argv[++i], 1, 1000000, &count) != 0)
                return 2;
        } else if (strcmp(a, "--spares") == 0 && has) {
            if (bench_arg_long(a, argv[++i], 1, MAX_SPARES, &spares) != 0)
                return 2;
        } else if (strcmp(a, "--timeout") == 0 && has) {
            if (bench_arg_double(a, argv[++i], 0.1, 600, &timeout) != 0)
                return 2;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (n_nodes == 0 || cert == NULL) {
        usage(stderr);
        return 2;
    }
    if (delete_url == NULL)
        delete_url = nodes[0].url;
    struct sockaddr_in del_sa;
    if (hc_parse_url(delete_url, &del_sa) != 0) {
        fprintf(stderr, "corvid-bench: --delete-url wants https://IPv4:PORT\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    int rv = 1;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    unsigned tag = 0;
    struct ca_signer signer = {NULL, NULL};
    SSL_CTX *admin_tls = hc_ctx_new(cacert, cert, key);
    SSL_CTX *probe_tls = hc_ctx_new(cacert, NULL, NULL);
    X509 **certs = calloc((size_t)count, sizeof *certs);
    EVP_PKEY **keys = calloc((size_t)count, sizeof *keys);
    char(*thumbs)[CA_THUMBPRINT_SIZE] = calloc((size_t)count, sizeof *thumbs);
    double *slowest = calloc((size_t)count, sizeof *slowest);
    double *del_lat = calloc((size_t)count, sizeof *del_lat);
    struct hc admin;
    memset(&admin, 0, sizeof admin);
    admin.fd = -1;
    for (int k = 0; k < n_nodes; k++)
        nodes[k].lat = calloc((size_t)count, sizeof *nodes[k].lat);
    if (admin_tls == NULL || probe_tls == NULL || certs == NULL || keys == NULL || thumbs == NULL ||
        slowest == NULL || del_lat == NULL)
        goto out;
    for (int k = 0; k < n_nodes; k++)
        if (nodes[k].lat == NULL)
            goto out;
    if (cmn_random(&cmn_rng_system, &tag, sizeof tag) != 0 ||
        bench_signer(issuer, &signer, errmsg) != 0) {
        fprintf(stderr, "corvid-bench: signing CA: %s\n", errmsg);
        goto out;
    }

    /* Register the certificates, one PUT each on one keep-alive connection. */
    double t = bench_now();
    if (hc_open_wait(&admin, admin_tls, &del_sa, NULL, NULL, 10) != 0) {
        fprintf(stderr, "corvid-bench: %s: %s\n", delete_url, admin.err);
        goto out;
    }
    for (long i = 0; i < count; i++) {
        char cn[64];
        snprintf(cn, sizeof cn, "revoke-%08x-%ld", tag, i);
        struct cmn_buf der, b64, body;
        cmn_buf_init(&der, false);
        cmn_buf_init(&b64, false);
        cmn_buf_init(&body, false);
        X509 *made = NULL;
        /* Parsed back from DER: the certificate as made lacks the decoded public key TLS
         * wants (bench_client_cert sets only the encoded one). */
        if (bench_client_cert(&signer, cn, 7, &made, &keys[i], errmsg) != 0 ||
            ca_cert_to_der(made, &der) != 0 ||
            ca_cert_from_der(der.data, der.len, &certs[i], errmsg) != 0 ||
            ca_thumbprint(certs[i], thumbs[i]) != 0) {
            fprintf(stderr, "corvid-bench: %s\n", errmsg[0] ? errmsg : "making a certificate");
            X509_free(made);
            cmn_buf_fini(&der);
            goto out;
        }
        X509_free(made);
        int r = ca_b64_encode(der.data, der.len, &b64) ||
                cmn_buf_printf(&body, "{\"Name\":\"%s\",\"Certificate\":\"%.*s\",", cn,
                               (int)b64.len, (const char *)b64.data) ||
                cmn_buf_append_str(&body, "\"SecurityClearance\":\"ValidUser\","
                                          "\"Permissions\":{}}") ||
                cmn_buf_append(&body, "", 1);
        char *req =
            r == 0 ? make_request("PUT", "/admin/certificates", (const char *)body.data) : NULL;
        cmn_buf_fini(&der);
        cmn_buf_fini(&b64);
        cmn_buf_fini(&body);
        if (req == NULL)
            goto out;
        int e = hc_roundtrip(&admin, req, strlen(req), 30);
        free(req);
        if (e != HC_RESPONSE || admin.status != 201) {
            fprintf(stderr, "corvid-bench: registering %s: %s\n", cn,
                    e != HC_RESPONSE ? admin.err : hc_body(&admin));
            goto out;
        }
    }
    printf("registered %ld certificates through %s in %.2f s\n", count, delete_url,
           bench_now() - t);
    fflush(stdout);

    long served_total = 0, failures = 0, measured = 0, hs_refused = 0;
    double begin = bench_now();
    for (long i = 0; i < count; i++) {
        /* 1. every node serves the certificate */
        for (int k = 0; k < n_nodes; k++) {
            struct hc c;
            memset(&c, 0, sizeof c);
            int ok = -1;
            for (int attempt = 0; attempt < 50 && ok != 0; attempt++) {
                if (hc_open_wait(&c, probe_tls, &nodes[k].sa, certs[i], keys[i], 10) != 0) {
                    fprintf(stderr, "corvid-bench: %s: %s\n", nodes[k].url, c.err);
                    break;
                }
                int e = hc_roundtrip(&c, PROBE, sizeof PROBE - 1, 10);
                ok = e == HC_RESPONSE && c.status == 200 ? 0 : -1;
                hc_close(&c);
                if (ok != 0) /* not applied there yet */
                    nanosleep(&(struct timespec){0, 20000000}, NULL);
            }
            if (ok != 0) {
                fprintf(stderr, "corvid-bench: %s never served certificate %ld\n", nodes[k].url, i);
                goto out;
            }
        }
        /* 2. connections ready on every node */
        for (int k = 0; k < n_nodes; k++) {
            nodes[k].done = false;
            nodes[k].served = 0;
            nodes[k].active = -1;
        }
        if (open_spares(nodes, n_nodes, (int)spares, probe_tls, certs[i], keys[i], 10,
                        &hs_refused) != 0)
            goto out;
        /* 3. the DELETE */
        char path[128];
        snprintf(path, sizeof path, "/admin/certificates?thumbprint=%s", thumbs[i]);
        char *req = make_request("DELETE", path, NULL);
        if (req == NULL)
            goto out;
        double sent = bench_now();
        int e = hc_roundtrip(&admin, req, strlen(req), 30);
        free(req);
        double t0 = bench_now();
        if (e != HC_RESPONSE || admin.status != 204) {
            fprintf(stderr, "corvid-bench: DELETE %s: %s\n", thumbs[i],
                    e != HC_RESPONSE ? admin.err : hc_body(&admin));
            goto out;
        }
        del_lat[i] = t0 - sent;
        /* 4. probe every node until it refuses */
        for (int k = 0; k < n_nodes; k++)
            probe_next(&nodes[k], (int)spares);
        bool failed = false;
        for (;;) {
            struct pollfd pfd[MAX_NODES * MAX_SPARES];
            int who_node[MAX_NODES * MAX_SPARES], who_conn[MAX_NODES * MAX_SPARES];
            int np = 0, pending = 0;
            for (int k = 0; k < n_nodes; k++) {
                if (nodes[k].done)
                    continue;
                pending++;
                for (int s = 0; s < spares; s++) {
                    struct hc *c = &nodes[k].conns[s];
                    bool moving =
                        s == nodes[k].active || c->st == HC_CONNECTING || c->st == HC_HANDSHAKE;
                    if (!moving)
                        continue;
                    pfd[np].fd = c->fd;
                    pfd[np].events = c->want;
                    pfd[np].revents = 0;
                    who_node[np] = k;
                    who_conn[np++] = s;
                }
            }
            if (pending == 0)
                break;
            double left = t0 + timeout - bench_now();
            if (left <= 0) {
                fprintf(stderr, "corvid-bench: revocation %ld: a node still served after %.1f s\n",
                        i, timeout);
                failed = true;
                break;
            }
            if (poll(pfd, (nfds_t)np, (int)(left * 1000) + 1) < 0 && errno != EINTR)
                goto out;
            for (int j = 0; j < np; j++) {
                if (pfd[j].revents == 0)
                    continue;
                struct probe_node *p = &nodes[who_node[j]];
                int s = who_conn[j];
                struct hc *c = &p->conns[s];
                if (p->done)
                    continue;
                int r = hc_io(c);
                if (r == HC_AGAIN)
                    continue;
                double now = bench_now();
                if (r == HC_OPENED) { /* a replacement is ready */
                    if (p->active < 0)
                        probe_next(p, (int)spares);
                } else if (r == HC_RESPONSE && s == p->active && c->status == 403 &&
                           strstr(hc_body(c), "was revoked") != NULL) {
                    p->done = true;
                    p->refused = now;
                } else if (r == HC_RESPONSE && s == p->active && c->status == 200) {
                    p->served++;
                    hc_close(c);
                    probe_next(p, (int)spares);
                    if (hc_open(c, probe_tls, &p->sa, certs[i], keys[i]) != 0)
                        goto out;
                } else if (r == HC_RESPONSE) {
                    fprintf(stderr, "corvid-bench: %s answered %d: %.200s\n", p->url, c->status,
                            hc_body(c));
                    failed = true;
                } else if (s != p->active && hs_refused < 1000) {
                    /* a replacement the node refused during its handshake: again */
                    hs_refused++;
                    if (hc_open(c, probe_tls, &p->sa, certs[i], keys[i]) != 0)
                        goto out;
                } else { /* failed */
                    fprintf(stderr, "corvid-bench: %s: %s\n", p->url, c->err);
                    failed = true;
                }
                if (failed)
                    break;
            }
            if (failed)
                break;
        }
        /* replacements still handshaking finish before everything is closed */
        if (settle(nodes, n_nodes, (int)spares, probe_tls, certs[i], keys[i], 10, &hs_refused) != 0)
            goto out;
        for (int k = 0; k < n_nodes; k++)
            for (int s = 0; s < spares; s++)
                hc_close(&nodes[k].conns[s]);
        if (failed) {
            failures++;
            continue;
        }
        double worst = 0;
        for (int k = 0; k < n_nodes; k++) {
            nodes[k].lat[measured] = nodes[k].refused - t0;
            if (nodes[k].refused - t0 > worst)
                worst = nodes[k].refused - t0;
            served_total += nodes[k].served;
            nodes[k].served_all += nodes[k].served;
        }
        slowest[measured] = worst;
        del_lat[measured] = del_lat[i];
        measured++;
    }
    double secs = bench_now() - begin;
    printf("corvid-bench revoke: %ld revocations via %s (%.1f s), %ld failed; ms after the DELETE "
           "returned until a new connection is refused (403 \"was revoked\"):\n",
           measured, delete_url, secs, failures);
    summary("DELETE itself (sent -> 204)", del_lat, measured);
    for (int k = 0; k < n_nodes; k++) {
        char label[128];
        snprintf(label, sizeof label, "refused on %s", nodes[k].url);
        summary(label, nodes[k].lat, measured);
        if (nodes[k].served_all)
            printf("  %-34s %ld requests served after the DELETE returned\n", "",
                   nodes[k].served_all);
    }
    summary("refused on every node (slowest)", slowest, measured);
    printf("  requests served with the revoked certificate after the DELETE returned: %ld\n",
           served_total);
    if (hs_refused)
        printf("  handshakes the nodes refused (opened again): %ld\n", hs_refused);
    printf("REVOKE target=%s count=%ld failed=%ld served_after=%ld hs_refused=%ld del_p50=%.3f "
           "del_p99=%.3f p50=%.3f p90=%.3f p99=%.3f max=%.3f\n",
           target, measured, failures, served_total, hs_refused, 1e3 * pct(del_lat, measured, 50),
           1e3 * pct(del_lat, measured, 99), 1e3 * pct(slowest, measured, 50),
           1e3 * pct(slowest, measured, 90), 1e3 * pct(slowest, measured, 99),
           measured ? 1e3 * slowest[measured - 1] : 0.0);
    fflush(stdout);
    rv = failures ? 1 : 0;
out:
    hc_close(&admin);
    for (int k = 0; k < n_nodes; k++) {
        for (int s = 0; s < MAX_SPARES; s++)
            if (nodes[k].conns[s].ssl)
                hc_close(&nodes[k].conns[s]);
        free(nodes[k].lat);
    }
    for (long i = 0; certs && i < count; i++) {
        X509_free(certs[i]);
        EVP_PKEY_free(keys ? keys[i] : NULL);
    }
    free(certs);
    free(keys);
    free(thumbs);
    free(slowest);
    free(del_lat);
    bench_signer_fini(&signer);
    SSL_CTX_free(admin_tls);
    SSL_CTX_free(probe_tls);
    return rv;
}
