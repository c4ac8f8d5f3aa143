/* Certificate files: PKCS#12 or PEM/DER/base64 with a PEM key, by content. */
#include "ca/certfile.h"

#include <string.h>

#include <openssl/err.h>

#include "ca/encode.h"
#include "ca/pfx.h"
#include "common/buf.h"
#include "common/file.h"

void ca_certfile_fini(struct ca_certfile *f)
{
    EVP_PKEY_free(f->key);
    ca_cert_list_fini(&f->certs);
    memset(f, 0, sizeof *f);
}

static int at(enum ca_certfile_step *step, enum ca_certfile_step s, int rv)
{
    if (step != NULL)
        *step = s;
    return rv;
}

static int from_pfx(const void *p, size_t n, const char *password, unsigned flags,
                    struct ca_certfile *out, enum ca_certfile_step *step, char *errmsg)
{
    struct ca_pfx pfx;
    int rv = ca_pfx_parse(p, n, password, 0, &pfx, errmsg);
    if (rv != 0)
        return at(step, CA_CERTFILE_PKCS12, rv);
    if ((flags & CA_CERTFILE_KEY) && pfx.key == NULL) {
        ca_pfx_fini(&pfx);
        return at(step, CA_CERTFILE_NOKEY,
                  cmn_fail(errmsg, CMN_ENOTFOUND, "the PKCS#12 file holds no private key"));
    }
    out->pfx = true;
    out->key = pfx.key;
    pfx.key = NULL;
    out->certs = pfx.certs;
    ca_cert_list_init(&pfx.certs);
    out->leaf = pfx.leaf >= 0 ? out->certs.v[pfx.leaf] : out->certs.v[0];
    ca_pfx_fini(&pfx);
    return 0;
}

static int from_pem(const void *p, size_t n, const void *key_p, size_t key_n, const char *password,
                    unsigned flags, struct ca_certfile *out, enum ca_certfile_step *step,
                    char *errmsg)
{
    int rv = ca_certs_from_bytes(p, n, &out->certs, errmsg);
    if (rv != 0)
        return at(step, CA_CERTFILE_CERTS, rv);
    out->leaf = out->certs.v[0];
    if (!(flags & CA_CERTFILE_KEY) && key_p == NULL)
        return 0;
    rv = key_p ? ca_key_from_pem(key_p, key_n, password, &out->key, errmsg)
               : ca_key_from_pem(p, n, password, &out->key, errmsg);
    if (rv == CMN_ENOTFOUND)
        return at(step, CA_CERTFILE_NOKEY, rv);
    if (rv != 0)
        return at(step, CA_CERTFILE_KEYREAD, rv);
    for (size_t i = 0; i < out->certs.n; i++)
        if (X509_check_private_key(out->certs.v[i], out->key) == 1) {
            out->leaf = out->certs.v[i];
            return 0;
        }
    ERR_clear_error();
    return at(step, CA_CERTFILE_MISMATCH,
              cmn_fail(errmsg, CMN_EINVALID, "the private key matches none of the certificates"));
}

int ca_certfile_parse(const void *p, size_t n, const void *key_p, size_t key_n,
                      const char *password, unsigned flags, struct ca_certfile *out,
                      enum ca_certfile_step *step, char *errmsg)
{
    struct ca_certfile f;
    memset(&f, 0, sizeof f);
    ca_cert_list_init(&f.certs);
    int rv;
    if ((flags & CA_CERTFILE_PFX) || ca_pfx_sniff(p, n))
        rv = from_pfx(p, n, password, flags, &f, step, errmsg);
    else
        rv = from_pem(p, n, key_p, key_n, password, flags, &f, step, errmsg);
    if (rv != 0) {
        ca_certfile_fini(&f);
        return rv;
    }
    *out = f;
    return 0;
}

int ca_certfile_load(const char *path, const char *key_path, const char *password, unsigned flags,
                     struct ca_certfile *out, enum ca_certfile_step *step, char *errmsg)
{
    struct cmn_buf b, k;
    cmn_buf_init(&b, true);
    cmn_buf_init(&k, true);
    int rv = cmn_read_file(path, CA_INPUT_MAX, &b, errmsg);
    if (rv == 0 && key_path != NULL)
        rv = cmn_read_file(key_path, CA_INPUT_MAX, &k, errmsg);
    if (rv != 0)
        rv = at(step, CA_CERTFILE_READ, rv);
    else
        rv = ca_certfile_parse(b.data, b.len, key_path ? k.data : NULL, k.len, password, flags, out,
                               step, errmsg);
    cmn_buf_fini(&b);
    cmn_buf_fini(&k);
    return rv;
}

int ca_certfile_chain(const struct ca_certfile *f, struct ca_cert_list *out)
{
    for (size_t i = 0; i < f->certs.n; i++)
        if (f->certs.v[i] != f->leaf && ca_cert_list_add(out, f->certs.v[i]) != 0)
            return CMN_ENOMEM;
    return 0;
}
