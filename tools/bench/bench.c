/* corvid-bench: throughput of Corvid's hot paths, printed beside reference figures from the same
 * run (`openssl speed` for the primitives underneath). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/ca.h"
#include "common/env.h"
#include "tools/bench/bench.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct stage_times {
    double keygen, issue, pfx;
    long n;
};

/* One generated client certificate: fresh key, certificate signed by the issuing CA, PKCS#12
 * with or without a password (what POST /admin/certificates does before zipping). */
static int one(enum ca_key_type kt, const char *password, const struct ca_signer *iss,
               const struct ca_cert_list *chain, int64_t nb, int64_t na, struct stage_times *t)
{
    char errmsg[CMN_ERRMSG_SIZE];
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    struct cmn_buf pfx;
    cmn_buf_init(&pfx, true);
    double t0 = now_s();
    int rv = ca_key_generate(kt, &key, errmsg);
    double t1 = now_s();
    struct ca_cert_req req = {.profile = CA_PROFILE_CLIENT,
                              .cn = "bench client",
                              .not_before = nb,
                              .not_after = na,
                              .subject_key = key};
    if (rv == 0)
        rv = ca_cert_issue(&req, iss, &cmn_rng_system, &cert, errmsg);
    double t2 = now_s();
    struct ca_pfx_opts opts = {CA_PFX_MODERN, "bench client", 0};
    if (rv == 0)
        rv = ca_pfx_build(key, cert, chain, password, &opts, &pfx, errmsg);
    double t3 = now_s();
    if (rv != 0)
        fprintf(stderr, "corvid-bench: %s\n", errmsg);
    t->keygen += t1 - t0;
    t->issue += t2 - t1;
    t->pfx += t3 - t2;
    t->n++;
    X509_free(cert);
    EVP_PKEY_free(key);
    cmn_buf_fini(&pfx);
    return rv;
}

static void openssl_speed(void)
{
    printf("\nSame run, `openssl speed -seconds 2 ecdhp256 ecdsap256 rsa2048` (one core):\n");
    fflush(stdout);
    FILE *p = popen("openssl speed -seconds 2 ecdhp256 ecdsap256 rsa2048 2>/dev/null", "r");
    if (p == NULL) {
        printf("  (could not run openssl)\n");
        return;
    }
    char line[512];
    int shown = 0;
    while (fgets(line, sizeof line, p) != NULL) {
        if (strstr(line, "sign/s") || strstr(line, "op/s") || strstr(line, " bits ")) {
            printf("  %s", line);
            shown++;
        }
    }
    int status = pclose(p);
    if (shown == 0)
        printf("  (openssl command-line tool not found or printed nothing; exit status %d)\n",
               status);
}

static int bench_ca(double seconds)
{
    char errmsg[CMN_ERRMSG_SIZE];
    int64_t now = cmn_now_ms(&cmn_clock_system) / 1000, nb, na;
    EVP_PKEY *root_key = NULL, *iss_key = NULL;
    X509 *root = NULL, *iss = NULL;
    struct ca_cert_list chain;
    ca_cert_list_init(&chain);
    int rv = 1;
    if (ca_key_generate(CA_KEY_EC_P256, &root_key, errmsg) != 0 ||
        ca_key_generate(CA_KEY_EC_P256, &iss_key, errmsg) != 0)
        goto out;
    ca_validity_days(now, 3650 * 2, &nb, &na);
    struct ca_cert_req rr = {.profile = CA_PROFILE_ROOT,
                             .cn = "bench root",
                             .not_before = nb,
                             .not_after = na,
                             .subject_key = root_key};
    if (ca_cert_issue(&rr, NULL, &cmn_rng_system, &root, errmsg) != 0)
        goto out;
    struct ca_signer rs = {root, root_key};
    struct ca_cert_req ir = {.profile = CA_PROFILE_ISSUING,
                             .cn = "bench issuing",
                             .not_before = nb,
                             .not_after = na - CA_DAY_SECS,
                             .subject_key = iss_key};
    if (ca_cert_issue(&ir, &rs, &cmn_rng_system, &iss, errmsg) != 0)
        goto out;
    if (ca_cert_list_add(&chain, iss) != 0)
        goto out;
    struct ca_signer is = {iss, iss_key};
    ca_client_default_validity(now, &nb, &na);

    printf("corvid-bench ca: fresh key + client certificate (SHA-256, signed by an EC-P256\n"
           "issuing CA) + PKCS#12 (AES-256-CBC, PBKDF2-HMAC-SHA256, SHA-256 MAC; %d iterations\n"
           "with a password, 1 without), one thread, %.1f s per row\n\n",
           CA_PFX_DEFAULT_ITER, seconds);
    printf("%-10s %-9s %10s %11s %11s %11s\n", "key type", "password", "certs/s", "keygen ms",
           "issue ms", "pfx ms");
    enum ca_key_type types[] = {CA_KEY_EC_P256, CA_KEY_RSA_2048};
    const char *passwords[] = {"bench-password", NULL};
    for (size_t i = 0; i < 2; i++) {
        for (size_t j = 0; j < 2; j++) {
            struct stage_times t = {0, 0, 0, 0};
            double start = now_s();
            while (now_s() - start < seconds)
                if (one(types[i], passwords[j], &is, &chain, nb, na, &t) != 0)
                    goto out;
            double total = now_s() - start;
            printf("%-10s %-9s %10.1f %11.3f %11.3f %11.3f\n", ca_key_type_name(types[i]),
                   passwords[j] ? "yes" : "no", (double)t.n / total, 1e3 * t.keygen / (double)t.n,
                   1e3 * t.issue / (double)t.n, 1e3 * t.pfx / (double)t.n);
            fflush(stdout);
        }
    }
    openssl_speed();
    rv = 0;
out:
    if (rv != 0)
        fprintf(stderr, "corvid-bench: setup failed: %s\n", errmsg);
    ca_cert_list_fini(&chain);
    X509_free(root);
    X509_free(iss);
    EVP_PKEY_free(root_key);
    EVP_PKEY_free(iss_key);
    return rv;
}

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: corvid-bench ca [--seconds N]\n"
        "       corvid-bench raft --socket PATH [...] [--clients C] ...\n"
        "       corvid-bench etcd --endpoint HOST:PORT [...] --cacert F --cert F --key F ...\n"
        "       corvid-bench http-whoami|http-register|http-generate --url URL ... [...]\n"
        "       corvid-bench revoke --url URL --url URL ... --cert PEM [...]\n\n"
        "  ca   generated client certificates per second (EC-P256, RSA-2048): key\n"
        "       generation + issuance + PKCS#12, with `openssl speed` beside it\n"
        "       --seconds N   measuring time per row (default 3)\n"
        "  raft registrations committed per second on a running Corvid cluster, through\n"
        "       the nodes' admin channels (corvid-bench raft --help)\n"
        "  etcd the same shape of load on etcd v3 with mutual TLS, as the reference\n"
        "       (corvid-bench etcd --help)\n"
        "  http-whoami    authenticated GET /certificates/whoami per second on keep-alive\n"
        "                 HTTPS connections (corvid-bench http-whoami --help)\n"
        "  http-register  PUT /admin/certificates registrations per second, or a bulk load\n"
        "  http-generate  POST /admin/certificates: certificates generated end to end per second\n"
        "  revoke         time from DELETE /admin/certificates returning until every node\n"
        "                 refuses the certificate\n");
}

int main(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "raft") == 0)
        return bench_raft_main(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "etcd") == 0)
        return bench_etcd_main(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "http-whoami") == 0)
        return bench_http_whoami_main(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "http-register") == 0)
        return bench_http_register_main(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "http-generate") == 0)
        return bench_http_generate_main(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "revoke") == 0)
        return bench_revoke_main(argc, argv);
    if (argc < 2 || strcmp(argv[1], "ca") != 0) {
        usage(stderr);
        return 2;
    }
    double seconds = 3;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            char *end;
            seconds = strtod(argv[++i], &end);
            if (*end != '\0' || seconds <= 0 || seconds > 3600) {
                fprintf(stderr, "corvid-bench: --seconds must be a number in (0, 3600]\n");
                return 2;
            }
        } else {
            usage(stderr);
            return 2;
        }
    }
    return bench_ca(seconds) == 0 ? 0 : 1;
}
