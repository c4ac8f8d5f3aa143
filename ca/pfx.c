/* PKCS#12 building and parsing, with bounded work and precise errors for hostile input. */
#include "ca/pfx.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>

#include "ca/encode.h"
#include "ca/internal.h"

/* ---- building ---- */

static int p12_to_buf(PKCS12 *p12, struct cmn_buf *out, char *errmsg)
{
    unsigned char *der = NULL;
    int len = i2d_PKCS12(p12, &der);
    if (len <= 0)
        return ca__ossl_fail(errmsg, CMN_ECRYPTO, "encoding the PFX failed");
    int rv = cmn_buf_append(out, der, (size_t)len);
    OPENSSL_clear_free(der, (size_t)len);
    return rv ? cmn_fail(errmsg, rv, "out of memory") : 0;
}

int ca_pfx_build(EVP_PKEY *key, X509 *cert, const struct ca_cert_list *chain, const char *password,
                 const struct ca_pfx_opts *opts, struct cmn_buf *out, char *errmsg)
{
    static const struct ca_pfx_opts defaults = {CA_PFX_MODERN, NULL, 0};
    if (opts == NULL)
        opts = &defaults;
    if (key == NULL || cert == NULL)
        return cmn_fail(errmsg, CMN_EINVALID, "a PFX needs a key and a certificate");
    if (X509_check_private_key(cert, key) != 1)
        return ca__ossl_fail(errmsg, CMN_EINVALID, "the key does not match the certificate");
    bool no_password = password == NULL || password[0] == '\0';
    int iter = opts->iterations ? opts->iterations : no_password ? 1 : CA_PFX_DEFAULT_ITER;
    if (iter < 1 || iter > CA_PFX_MAX_WORK / 4)
        return cmn_fail(errmsg, CMN_EINVALID, "PFX iterations must be 1..%d", CA_PFX_MAX_WORK / 4);
    int nid_key, nid_cert;
    const EVP_MD *mac_md;
    switch (opts->scheme) {
    case CA_PFX_MODERN:
        nid_key = nid_cert = NID_aes_256_cbc; /* PBES2, PBKDF2-HMAC-SHA256 */
        mac_md = EVP_sha256();
        break;
    case CA_PFX_LEGACY:
        nid_key = nid_cert = NID_pbe_WithSHA1And3_Key_TripleDES_CBC;
        mac_md = EVP_sha1();
        break;
    default:
        return cmn_fail(errmsg, CMN_EINVALID, "unknown PFX scheme %d", (int)opts->scheme);
    }
    const char *pass = password != NULL ? password : "";
    STACK_OF(X509) *ca = ca__list_to_stack(chain);
    if (ca == NULL)
        return cmn_fail(errmsg, CMN_ENOMEM, "out of memory");
    out->secret = true;
    int rv = 0;
    /* OpenSSL 3.0's PKCS12_create leaves a bag out when adding it fails (out of memory) and
     * still returns a PFX, without the leaf: only its error queue tells. */
    ERR_clear_error();
    PKCS12 *p12 = PKCS12_create_ex(pass, opts->friendly_name, key, cert, ca, nid_key, nid_cert,
                                   iter, -1, 0, NULL, NULL);
    if (p12 == NULL || ERR_peek_error() != 0) {
        rv = ca__ossl_fail(errmsg, CMN_ECRYPTO, "building the PFX failed");
        goto out;
    }
    if (!PKCS12_set_mac(p12, pass, -1, NULL, 0, iter, mac_md)) {
        rv = ca__ossl_fail(errmsg, CMN_ECRYPTO, "computing the PFX MAC failed");
        goto out;
    }
    rv = p12_to_buf(p12, out, errmsg);
out:
    PKCS12_free(p12);
    sk_X509_pop_free(ca, X509_free);
    return rv;
}

int ca_pfx_build_collection(const struct ca_cert_list *certs, struct cmn_buf *out, char *errmsg)
{
    if (certs == NULL || certs->n == 0)
        return cmn_fail(errmsg, CMN_EINVALID, "a certificate collection needs a certificate");
    STACK_OF(X509) *ca = ca__list_to_stack(certs);
    if (ca == NULL)
        return cmn_fail(errmsg, CMN_ENOMEM, "out of memory");
    int rv = 0;
    ERR_clear_error(); /* see ca_pfx_build */
    PKCS12 *p12 = PKCS12_create_ex("", NULL, NULL, NULL, ca, -1, -1, 1, -1, 0, NULL, NULL);
    if (p12 == NULL || ERR_peek_error() != 0) {
        rv = ca__ossl_fail(errmsg, CMN_ECRYPTO, "building the PFX collection failed");
        goto out;
    }
    if (!PKCS12_set_mac(p12, "", -1, NULL, 0, 1, EVP_sha256())) {
        rv = ca__ossl_fail(errmsg, CMN_ECRYPTO, "computing the PFX MAC failed");
        goto out;
    }
    rv = p12_to_buf(p12, out, errmsg);
out:
    PKCS12_free(p12);
    sk_X509_pop_free(ca, X509_free);
    return rv;
}

/* ---- parsing ---- */

/* A library context with the default and legacy providers, for decrypting old PFX files
 * (RC2-40, RC4, DES) without loading the legacy provider into the process-wide default. NULL
 * when the legacy provider is not installed. Created once, kept for the process lifetime. */
static OSSL_LIB_CTX *legacy_ctx;
static CRYPTO_ONCE legacy_once = CRYPTO_ONCE_STATIC_INIT;

static void legacy_init(void)
{
    OSSL_LIB_CTX *c = OSSL_LIB_CTX_new();
    if (c != NULL && OSSL_PROVIDER_load(c, "default") != NULL &&
        OSSL_PROVIDER_load(c, "legacy") != NULL) {
        legacy_ctx = c;
    } else {
        OSSL_LIB_CTX_free(c);
    }
    ERR_clear_error();
}

struct pstate {
    OSSL_LIB_CTX *libctx;    /* for decryption; NULL = default */
    const char *legacy_note; /* why the legacy provider is not in libctx */
    const char *pass;        /* the password in force once known */
    bool pass_fixed;         /* false: try NULL then "" */
    bool mac_verified;
    long work; /* KDF/MAC iterations charged so far */
    struct ca_pfx *out;
    char *errmsg;
};

/* True when OpenSSL's error queue says an algorithm is missing rather than data being bad.
 * Empties the queue. */
/* Set when a failure this thread's parse looked at was an allocation: the input is then not to
 * blame, whatever the failing step would say of it (ca_pfx_parse answers CMN_ENOMEM). */
static _Thread_local bool parse_oom;

static bool err_unsupported(void)
{
    bool unsupported = false;
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        int lib = ERR_GET_LIB(e), reason = ERR_GET_REASON(e);
        if (reason == ERR_R_MALLOC_FAILURE)
            parse_oom = true;
        if (reason == ERR_R_UNSUPPORTED || reason == ERR_R_FETCH_FAILED ||
            (lib == ERR_LIB_EVP &&
             (reason == EVP_R_UNSUPPORTED_CIPHER || reason == EVP_R_UNSUPPORTED_ALGORITHM ||
              reason == EVP_R_UNKNOWN_PBE_ALGORITHM ||
              reason == EVP_R_UNSUPPORTED_KEY_DERIVATION_FUNCTION ||
              reason == EVP_R_UNSUPPORTED_PRF || reason == EVP_R_UNSUPPORTED_KEYLENGTH ||
              reason == EVP_R_UNKNOWN_CIPHER || reason == EVP_R_UNKNOWN_DIGEST ||
              reason == EVP_R_UNSUPPORTED_PRIVATE_KEY_ALGORITHM)) ||
            (lib == ERR_LIB_PKCS12 && (reason == PKCS12_R_UNKNOWN_DIGEST_ALGORITHM ||
                                       reason == PKCS12_R_UNSUPPORTED_PKCS12_MODE ||
                                       reason == PKCS12_R_CONTENT_TYPE_NOT_DATA)))
            unsupported = true;
    }
    return unsupported;
}

static int charge(struct pstate *st, long iter)
{
    if (iter <= 0)
        return cmn_fail(st->errmsg, CMN_EMALFORMED, "PFX: invalid iteration count");
    if (iter > CA_PFX_MAX_WORK - st->work)
        return cmn_fail(st->errmsg, CMN_EUNSUPPORTED,
                        "PFX: key derivation needs more than %d iterations in total",
                        CA_PFX_MAX_WORK);
    st->work += iter;
    return 0;
}

static int cipher_available(struct pstate *st, int cipher_nid, const char *what)
{
    const char *name = OBJ_nid2sn(cipher_nid);
    EVP_CIPHER *c = cipher_nid == NID_undef ? NULL : EVP_CIPHER_fetch(st->libctx, name, NULL);
    if (c != NULL) {
        EVP_CIPHER_free(c);
        return 0;
    }
    ERR_clear_error();
    bool legacy_only = cipher_nid == NID_rc2_40_cbc || cipher_nid == NID_rc2_64_cbc ||
                       cipher_nid == NID_rc2_cbc || cipher_nid == NID_rc4 ||
                       cipher_nid == NID_rc4_40 || cipher_nid == NID_des_cbc;
    if (legacy_only)
        return cmn_fail(st->errmsg, CMN_EUNSUPPORTED,
                        "PFX: %s uses %s, which needs OpenSSL's legacy provider (%s); re-export "
                        "it with AES-256 or 3DES",
                        what, cipher_nid == NID_undef ? "an unknown cipher" : name,
                        st->legacy_note ? st->legacy_note : "not usable");
    return cmn_fail(st->errmsg, CMN_EUNSUPPORTED, "PFX: %s uses an unsupported cipher (%s)", what,
                    cipher_nid == NID_undef ? "unknown" : name);
}

/* Checks that the password-based encryption alg is usable and charges its iterations. Returns
 * the iteration count through *iter for charging again on a second password attempt. */
static int check_pbe(struct pstate *st, const X509_ALGOR *alg, const char *what, long *iter)
{
    if (alg == NULL || alg->algorithm == NULL)
        return cmn_fail(st->errmsg, CMN_EMALFORMED, "PFX: %s has no algorithm", what);
    int nid = OBJ_obj2nid(alg->algorithm);
    int rv = 0;
    if (nid == NID_pbes2) {
        PBE2PARAM *p2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter);
        PBKDF2PARAM *kdf = NULL;
        if (p2 == NULL || p2->keyfunc == NULL || p2->encryption == NULL) {
            rv = cmn_fail(st->errmsg, CMN_EMALFORMED, "PFX: %s has bad PBES2 parameters", what);
            goto pbes2_out;
        }
        int kdf_nid = OBJ_obj2nid(p2->keyfunc->algorithm);
        if (kdf_nid != NID_id_pbkdf2) {
            rv = cmn_fail(st->errmsg, CMN_EUNSUPPORTED,
                          "PFX: %s uses key derivation %s (only PBKDF2 is supported)", what,
                          kdf_nid == NID_undef ? "unknown" : OBJ_nid2sn(kdf_nid));
            goto pbes2_out;
        }
        kdf = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), p2->keyfunc->parameter);
        if (kdf == NULL || kdf->iter == NULL) {
            rv = cmn_fail(st->errmsg, CMN_EMALFORMED, "PFX: %s has bad PBKDF2 parameters", what);
            goto pbes2_out;
        }
        *iter = ASN1_INTEGER_get(kdf->iter);
        int prf_nid = kdf->prf ? OBJ_obj2nid(kdf->prf->algorithm) : NID_hmacWithSHA1;
        int md_nid = NID_undef;
        if (!EVP_PBE_find_ex(EVP_PBE_TYPE_PRF, prf_nid, NULL, &md_nid, NULL, NULL)) {
            rv = cmn_fail(st->errmsg, CMN_EUNSUPPORTED, "PFX: %s uses an unsupported PRF (%s)",
                          what, prf_nid == NID_undef ? "unknown" : OBJ_nid2sn(prf_nid));
            goto pbes2_out;
        }
        rv = cipher_available(st, OBJ_obj2nid(p2->encryption->algorithm), what);
    pbes2_out:
        PBKDF2PARAM_free(kdf);
        PBE2PARAM_free(p2);
    } else {
        int cipher_nid = NID_undef, md_nid = NID_undef;
        if (!EVP_PBE_find_ex(EVP_PBE_TYPE_OUTER, nid, &cipher_nid, &md_nid, NULL, NULL)) {
            ERR_clear_error();
            return cmn_fail(st->errmsg, CMN_EUNSUPPORTED,
                            "PFX: %s uses an unsupported encryption algorithm (%s)", what,
                            nid == NID_undef ? "unknown" : OBJ_nid2ln(nid));
        }
        PBEPARAM *pp = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBEPARAM), alg->parameter);
        if (pp == NULL || pp->iter == NULL) {
            PBEPARAM_free(pp);
            return cmn_fail(st->errmsg, CMN_EMALFORMED, "PFX: %s has bad PBE parameters", what);
        }
        *iter = ASN1_INTEGER_get(pp->iter);
        PBEPARAM_free(pp);
        rv = cipher_available(st, cipher_nid, what);
    }
    ERR_clear_error();
    return rv;
}

typedef void *(*decrypt_fn)(const void *arg, const char *pass, OSSL_LIB_CTX *libctx);

static void *decrypt_safe(const void *arg, const char *pass, OSSL_LIB_CTX *libctx)
{
    const PKCS7_ENC_CONTENT *ec = arg;
    return PKCS12_item_decrypt_d2i_ex(ec->algorithm, ASN1_ITEM_rptr(PKCS12_SAFEBAGS), pass, -1,
                                      ec->enc_data, 1, libctx, NULL);
}

static void *decrypt_key(const void *arg, const char *pass, OSSL_LIB_CTX *libctx)
{
    return PKCS12_decrypt_skey_ex(arg, pass, -1, libctx, NULL);
}

/* Decrypts with the known password, or when none is known yet (no MAC and none given) with the
 * NULL then the empty password, fixing whichever works. *res is NULL on failure (st->errmsg set).
 */
static int decrypt_with(struct pstate *st, decrypt_fn fn, const void *arg, const X509_ALGOR *alg,
                        const char *what, void **res)
{
    *res = NULL;
    long iter = 0;
    int rv = check_pbe(st, alg, what, &iter);
    if (rv != 0)
        return rv;
    const char *cands[2] = {st->pass, ""};
    int ncands = st->pass_fixed ? 1 : 2;
    for (int i = 0; i < ncands; i++) {
        if ((rv = charge(st, iter)) != 0)
            return rv;
        ERR_clear_error();
        *res = fn(arg, cands[i], st->libctx);
        if (*res != NULL) {
            st->pass = cands[i];
            st->pass_fixed = true;
            ERR_clear_error();
            return 0;
        }
        if (err_unsupported())
            return cmn_fail(st->errmsg, CMN_EUNSUPPORTED,
                            "PFX: %s uses an algorithm OpenSSL cannot use here", what);
    }
    if (!st->mac_verified)
        return cmn_fail(st->errmsg, CMN_EBADPASSWORD,
                        "PFX: cannot decrypt the %s: wrong or missing password (the file has no "
                        "MAC to check the password first)",
                        what);
    return cmn_fail(st->errmsg, CMN_EMALFORMED, "PFX: the %s does not decrypt (corrupt file)",
                    what);
}

static int take_key(struct pstate *st, PKCS8_PRIV_KEY_INFO *p8, PKCS12_SAFEBAG *bag)
{
    ERR_clear_error();
    EVP_PKEY *k = EVP_PKCS82PKEY(p8);
    if (k == NULL)
        return err_unsupported()
                   ? cmn_fail(st->errmsg, CMN_EUNSUPPORTED,
                              "PFX: the private key is of an unsupported type")
                   : cmn_fail(st->errmsg, CMN_EMALFORMED, "PFX: the private key does not decode");
    st->out->key = k;
    char *name = PKCS12_get_friendlyname(bag);
    if (name != NULL) {
        OPENSSL_free(st->out->friendly_name);
        st->out->friendly_name = name;
    }
    ERR_clear_error();
    return 0;
}

static int walk_bags(struct pstate *st, const STACK_OF(PKCS12_SAFEBAG) * bags, int depth)
{
    if (depth > 3)
        return cmn_fail(st->errmsg, CMN_EUNSUPPORTED, "PFX: safe contents nested too deeply");
    for (int i = 0; i < sk_PKCS12_SAFEBAG_num(bags); i++) {
        PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, i);
        int rv = 0;
        switch (PKCS12_SAFEBAG_get_nid(bag)) {
        case NID_keyBag: {
            if (st->out->key != NULL)
                break; /* only the first key is used */
            const PKCS8_PRIV_KEY_INFO *p8 = PKCS12_SAFEBAG_get0_p8inf(bag);
            rv = p8 ? take_key(st, (PKCS8_PRIV_KEY_INFO *)p8, bag)
                    : cmn_fail(st->errmsg, CMN_EMALFORMED, "PFX: empty key bag");
            break;
        }
        case NID_pkcs8ShroudedKeyBag: {
            if (st->out->key != NULL)
                break;
            const X509_SIG *sig = PKCS12_SAFEBAG_get0_pkcs8(bag);
            const X509_ALGOR *alg = NULL;
            if (sig == NULL)
                return cmn_fail(st->errmsg, CMN_EMALFORMED, "PFX: empty shrouded key bag");
            X509_SIG_get0(sig, &alg, NULL);
            void *p8 = NULL;
            rv = decrypt_with(st, decrypt_key, bag, alg, "private key", &p8);
            if (rv == 0) {
                rv = take_key(st, p8, bag);
                PKCS8_PRIV_KEY_INFO_free(p8);
            }
            break;
        }
        case NID_certBag: {
            if (PKCS12_SAFEBAG_get_bag_nid(bag) != NID_x509Certificate)
                break; /* SDSI certificates: skip */
            X509 *x = PKCS12_SAFEBAG_get1_cert(bag);
            if (x == NULL) {
                ERR_clear_error();
                return cmn_fail(st->errmsg, CMN_EMALFORMED, "PFX: certificate #%zu does not decode",
                                st->out->certs.n + 1);
            }
            if (st->out->friendly_name == NULL)
                st->out->friendly_name = PKCS12_get_friendlyname(bag);
            if (ca_cert_list_push(&st->out->certs, x) != 0)
                return cmn_fail(st->errmsg, CMN_ENOMEM, "out of memory");
            break;
        }
        case NID_safeContentsBag:
            rv = walk_bags(st, PKCS12_SAFEBAG_get0_safes(bag), depth + 1);
            break;
        default: /* CRL and secret bags */
            break;
        }
        ERR_clear_error();
        if (rv != 0)
            return rv;
    }
    return 0;
}

static int walk_authsafe(struct pstate *st, PKCS7 *p7)
{
    STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
    int rv = 0;
    switch (OBJ_obj2nid(p7->type)) {
    case NID_pkcs7_data:
        bags = PKCS12_unpack_p7data(p7);
        if (bags == NULL)
            return ca__ossl_fail(st->errmsg, CMN_EMALFORMED, "PFX: safe contents do not decode");
        break;
    case NID_pkcs7_encrypted: {
        PKCS7_ENC_CONTENT *ec = p7->d.encrypted ? p7->d.encrypted->enc_data : NULL;
        if (ec == NULL || ec->algorithm == NULL || ec->enc_data == NULL)
            return cmn_fail(st->errmsg, CMN_EMALFORMED, "PFX: empty encrypted safe contents");
        void *res = NULL;
        rv = decrypt_with(st, decrypt_safe, ec, ec->algorithm, "certificate safe", &res);
        if (rv != 0)
            return rv;
        bags = res;
        break;
    }
    default:
        return cmn_fail(st->errmsg, CMN_EUNSUPPORTED,
                        "PFX: safe contents of type %s are not supported (public-key privacy "
                        "mode)",
                        OBJ_nid2sn(OBJ_obj2nid(p7->type)));
    }
    rv = walk_bags(st, bags, 0);
    sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    return rv;
}

/* Verifies the MAC and fixes the password. */
static int check_mac(struct pstate *st, PKCS12 *p12, const char *user_pass)
{
    if (!PKCS12_mac_present(p12))
        return 0;
    const ASN1_INTEGER *iter_asn = NULL;
    PKCS12_get0_mac(NULL, NULL, NULL, &iter_asn, p12);
    long iter = iter_asn ? ASN1_INTEGER_get(iter_asn) : 1;
    const char *cands[2] = {NULL, ""};
    int ncands = 2;
    if (user_pass != NULL && user_pass[0] != '\0') {
        cands[0] = user_pass;
        ncands = 1;
    }
    for (int i = 0; i < ncands; i++) {
        int rv = charge(st, iter);
        if (rv != 0)
            return rv;
        ERR_clear_error();
        if (PKCS12_verify_mac(p12, cands[i], -1)) {
            st->pass = cands[i];
            st->pass_fixed = true;
            st->mac_verified = true;
            return 0;
        }
        if (ERR_peek_error() != 0) /* not a mismatch: the MAC could not be computed */
            return err_unsupported()
                       ? cmn_fail(st->errmsg, CMN_EUNSUPPORTED,
                                  "PFX: the MAC uses an unsupported digest")
                       : cmn_fail(st->errmsg, CMN_EMALFORMED, "PFX: the MAC is corrupt");
    }
    if (ncands == 1)
        return cmn_fail(st->errmsg, CMN_EBADPASSWORD,
                        "PFX: wrong password (MAC verification failed)");
    return cmn_fail(st->errmsg, CMN_EBADPASSWORD,
                    "PFX: a password is required (MAC verification without one failed)");
}

void ca_pfx_fini(struct ca_pfx *pfx)
{
    EVP_PKEY_free(pfx->key);
    ca_cert_list_fini(&pfx->certs);
    OPENSSL_free(pfx->friendly_name);
    memset(pfx, 0, sizeof *pfx);
    pfx->leaf = -1;
}

X509 *ca_pfx_leaf(const struct ca_pfx *pfx)
{
    if (pfx->certs.n == 0)
        return NULL;
    return pfx->certs.v[pfx->leaf >= 0 ? (size_t)pfx->leaf : 0];
}

static PKCS12 *decode(const void *p, size_t n)
{
    if (n == 0 || n > CA_INPUT_MAX)
        return NULL;
    const unsigned char *q = p;
    PKCS12 *p12 = d2i_PKCS12(NULL, &q, (long)n);
    if (p12 != NULL && (size_t)(q - (const unsigned char *)p) != n) {
        PKCS12_free(p12);
        p12 = NULL;
    }
    if (p12 != NULL)
        ERR_clear_error(); /* on failure the caller looks at why first */
    return p12;
}

bool ca_pfx_sniff(const void *p, size_t n)
{
    PKCS12 *p12 = decode(p, n);
    PKCS12_free(p12);
    ERR_clear_error();
    return p12 != NULL;
}

int ca_pfx_parse(const void *p, size_t n, const char *password, unsigned flags, struct ca_pfx *out,
                 char *errmsg)
{
    memset(out, 0, sizeof *out);
    out->leaf = -1;
    if (n > CA_INPUT_MAX)
        return cmn_fail(errmsg, CMN_ETOOBIG, "PFX larger than %u bytes", CA_INPUT_MAX);
    PKCS12 *p12 = decode(p, n);
    if (p12 == NULL) {
        int rv = ca__ossl_oom(errmsg, "reading the PFX");
        if (rv != 0)
            return rv;
        ERR_clear_error();
        return cmn_fail(errmsg, CMN_EMALFORMED, "not a PKCS#12 file (corrupt or truncated)");
    }

    struct ca_pfx res;
    memset(&res, 0, sizeof res);
    res.leaf = -1;
    parse_oom = false;
    struct pstate st = {.out = &res, .errmsg = errmsg};
    if (!(flags & CA_PFX_NO_LEGACY)) {
        if (!CRYPTO_THREAD_run_once(&legacy_once, legacy_init))
            ERR_clear_error();
        st.libctx = legacy_ctx;
        st.legacy_note = legacy_ctx == NULL ? "not installed" : NULL;
    } else {
        st.legacy_note = "disabled for this input";
    }
    if (password != NULL && password[0] != '\0') {
        st.pass = password;
        st.pass_fixed = true;
    }
    STACK_OF(PKCS7) *safes = NULL;
    int rv = check_mac(&st, p12, password);
    if (rv != 0)
        goto out;
    ERR_clear_error();
    safes = PKCS12_unpack_authsafes(p12);
    if (safes == NULL) {
        rv = err_unsupported() ? cmn_fail(errmsg, CMN_EUNSUPPORTED,
                                          "PFX: public-key integrity mode is not supported")
                               : cmn_fail(errmsg, CMN_EMALFORMED, "PFX: contents do not decode");
        goto out;
    }
    for (int i = 0; rv == 0 && i < sk_PKCS7_num(safes); i++)
        rv = walk_authsafe(&st, sk_PKCS7_value(safes, i));
    if (rv != 0)
        goto out;
    if (res.certs.n == 0) {
        rv = cmn_fail(errmsg, CMN_EINVALID, "PFX contains no certificate%s",
                      res.key ? " (only a private key)" : "");
        goto out;
    }
    if (res.key != NULL) {
        for (size_t i = 0; i < res.certs.n && res.leaf < 0; i++)
            if (X509_check_private_key(res.certs.v[i], res.key) == 1)
                res.leaf = (long)i;
        if (res.leaf < 0 && (rv = ca__ossl_oom(errmsg, "PFX: matching the key")) != 0)
            goto out;
        ERR_clear_error();
        if (res.leaf < 0) {
            rv = cmn_fail(errmsg, CMN_EINVALID,
                          "PFX: the private key matches none of its certificates");
            goto out;
        }
    }
    *out = res;
    memset(&res, 0, sizeof res);
out:
    if (rv != 0 && rv != CMN_ENOMEM) {
        int oom = ca__ossl_oom(errmsg, "PFX");
        if (oom == 0 && parse_oom)
            oom = cmn_fail(errmsg, CMN_ENOMEM, "PFX: out of memory");
        rv = oom ? oom : rv;
    }
    ca_pfx_fini(&res);
    sk_PKCS7_pop_free(safes, PKCS7_free);
    PKCS12_free(p12);
    ERR_clear_error();
    return rv;
}
