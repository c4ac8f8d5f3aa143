/* corvid-testcert: certificates for the tests' refusal cases (expired, not yet valid, issued by
 * a foreign or a well-known CA), issued with ca/ like every other certificate.
 *
 *   corvid-testcert OUT.pem CN FROM_DAYS TO_DAYS [ISSUER.pem|ca|self] [KEY.pem]
 *
 * writes the certificate and its key (PEM) valid from now+FROM_DAYS to now+TO_DAYS, signed by
 * ISSUER.pem (certificate and key) or self-signed ("self", the default); with ISSUER "ca" the
 * result is itself a CA. With KEY.pem the certificate is for that key instead of a new one (a
 * renewal with the same key pair). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "common/env.h"

static int read_file(const char *path, struct cmn_buf *out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (cmn_buf_append(out, chunk, got) != 0)
            break;
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 7) {
        fprintf(stderr, "usage: %s OUT.pem CN FROM_DAYS TO_DAYS [ISSUER.pem|ca|self] [KEY.pem]\n",
                argv[0]);
        return 2;
    }
    char errmsg[CMN_ERRMSG_SIZE] = "";
    int64_t now = cmn_now_ms(&cmn_clock_system) / 1000;
    const char *issuer = argc >= 6 ? argv[5] : "self";
    bool make_ca = strcmp(issuer, "ca") == 0;
    EVP_PKEY *key = NULL;
    struct ca_signer signer = {0};
    X509 *cert = NULL;
    int rv = 0;
    if (argc == 7) {
        struct cmn_buf b;
        cmn_buf_init(&b, true);
        rv = read_file(argv[6], &b) == 0 ? 0 : CMN_EIO;
        if (rv == 0)
            rv = ca_key_from_pem(b.data, b.len, NULL, &key, errmsg);
        cmn_buf_fini(&b);
    } else {
        rv = ca_key_generate(CA_KEY_EC_P256, &key, errmsg);
    }
    if (rv == 0 && !make_ca && strcmp(issuer, "self") != 0) {
        struct cmn_buf b;
        cmn_buf_init(&b, true);
        rv = read_file(issuer, &b) == 0 ? 0 : CMN_EIO;
        if (rv == 0)
            rv = ca_cert_from_bytes(b.data, b.len, &signer.cert, errmsg);
        if (rv == 0)
            rv = ca_key_from_pem(b.data, b.len, NULL, &signer.key, errmsg);
        cmn_buf_fini(&b);
    }
    struct ca_cert_req req = {
        .profile = make_ca ? CA_PROFILE_ROOT : CA_PROFILE_CLIENT,
        .cn = argv[2],
        .not_before = now + atoll(argv[3]) * 86400,
        .not_after = now + atoll(argv[4]) * 86400,
        .subject_key = key,
    };
    if (rv == 0 && !make_ca && signer.cert == NULL) {
        /* self-signed client certificate: sign as a root, with the client profile's usage */
        struct ca_cert_req self = req;
        self.profile = CA_PROFILE_ROOT;
        rv = ca_cert_issue(&self, NULL, &cmn_rng_system, &signer.cert, errmsg);
        signer.key = key;
        EVP_PKEY_up_ref(key);
    }
    if (rv == 0)
        rv = ca_cert_issue(&req, make_ca ? NULL : &signer, &cmn_rng_system, &cert, errmsg);
    struct cmn_buf pem;
    cmn_buf_init(&pem, true);
    if (rv == 0)
        rv = ca_cert_to_pem(cert, &pem);
    if (rv == 0)
        rv = ca_key_to_pem(key, NULL, &pem, errmsg);
    FILE *f = rv == 0 ? fopen(argv[1], "wb") : NULL;
    if (f) {
        fwrite(pem.data, 1, pem.len, f);
        fclose(f);
    }
    cmn_buf_fini(&pem);
    X509_free(cert);
    X509_free(signer.cert);
    EVP_PKEY_free(signer.key);
    EVP_PKEY_free(key);
    if (rv != 0 || f == NULL) {
        fprintf(stderr, "corvid-testcert: %s\n", errmsg[0] ? errmsg : "cannot write");
        return 1;
    }
    return 0;
}
