/* Key types, their names, and key generation with OpenSSL's DRBG. */
#include "ca/key.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>

#include "ca/internal.h"

static const struct {
    enum ca_key_type type;
    const char *name;
    bool rsa;
    int bits;          /* RSA modulus size */
    const char *curve; /* EC group name */
} key_types[] = {
    {CA_KEY_EC_P256, "EC-P256", false, 0, "P-256"},
    {CA_KEY_EC_P384, "EC-P384", false, 0, "P-384"},
    {CA_KEY_RSA_2048, "RSA-2048", true, 2048, NULL},
    {CA_KEY_RSA_3072, "RSA-3072", true, 3072, NULL},
    {CA_KEY_RSA_4096, "RSA-4096", true, 4096, NULL},
};
#define N_KEY_TYPES (sizeof key_types / sizeof key_types[0])

const char *ca_key_type_name(enum ca_key_type t)
{
    for (size_t i = 0; i < N_KEY_TYPES; i++)
        if (key_types[i].type == t)
            return key_types[i].name;
    return "unknown";
}

int ca_key_type_parse(const char *s, enum ca_key_type *out, char *errmsg)
{
    if (s != NULL)
        for (size_t i = 0; i < N_KEY_TYPES; i++)
            if (strcasecmp(s, key_types[i].name) == 0) {
                *out = key_types[i].type;
                return 0;
            }
    return cmn_fail(errmsg, CMN_EINVALID,
                    "unknown key type '%.40s' (expected EC-P256, EC-P384, RSA-2048, RSA-3072 or "
                    "RSA-4096)",
                    s ? s : "(null)");
}

int ca_key_generate(enum ca_key_type t, EVP_PKEY **out, char *errmsg)
{
    *out = NULL;
    for (size_t i = 0; i < N_KEY_TYPES; i++) {
        if (key_types[i].type != t)
            continue;
        EVP_PKEY *k;
        if (key_types[i].rsa)
            k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)key_types[i].bits);
        else
            k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", key_types[i].curve);
        if (k == NULL)
            return ca__ossl_fail(errmsg, CMN_ECRYPTO, "generating %s key failed",
                                 key_types[i].name);
        *out = k;
        return 0;
    }
    return cmn_fail(errmsg, CMN_EINVALID, "unknown key type %d", (int)t);
}

/* The NID of an EC key's named curve (NID_undef for one OpenSSL does not know), or
 * CMN_ECRYPTO when the key's group could not be read (an allocation failed): that must not read
 * as an unsupported curve. */
static int ec_curve_nid(const EVP_PKEY *key, int *nid)
{
    char group[64];
    size_t len = 0;
    if (!EVP_PKEY_get_group_name(key, group, sizeof group, &len)) {
        ERR_clear_error();
        return CMN_ECRYPTO;
    }
    *nid = OBJ_sn2nid(group);
    if (*nid == NID_undef)
        *nid = EC_curve_nist2nid(group);
    return 0;
}

int ca_key_type_of(const EVP_PKEY *key, enum ca_key_type *out)
{
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
        switch (EVP_PKEY_get_bits(key)) {
        case 2048:
            *out = CA_KEY_RSA_2048;
            return 0;
        case 3072:
            *out = CA_KEY_RSA_3072;
            return 0;
        case 4096:
            *out = CA_KEY_RSA_4096;
            return 0;
        }
        return CMN_EUNSUPPORTED;
    case EVP_PKEY_EC: {
        int nid = NID_undef;
        if (ec_curve_nid(key, &nid) != 0)
            return CMN_ECRYPTO;
        switch (nid) {
        case NID_X9_62_prime256v1:
            *out = CA_KEY_EC_P256;
            return 0;
        case NID_secp384r1:
            *out = CA_KEY_EC_P384;
            return 0;
        }
        return CMN_EUNSUPPORTED;
    }
    }
    return CMN_EUNSUPPORTED;
}

void ca_key_describe(const EVP_PKEY *key, char *out, size_t n)
{
    if (n == 0)
        return;
    if (key == NULL) {
        snprintf(out, n, "none");
        return;
    }
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
        snprintf(out, n, "RSA-%d", EVP_PKEY_get_bits(key));
        return;
    case EVP_PKEY_EC: {
        int nid = NID_undef;
        CMN_IGNORE(ec_curve_nid(key, &nid));
        const char *nist = nid == NID_undef ? NULL : EC_curve_nid2nist(nid);
        if (nist != NULL && strncmp(nist, "P-", 2) == 0)
            snprintf(out, n, "EC-P%s", nist + 2);
        else
            snprintf(out, n, "EC-%s", nid == NID_undef ? "unknown-curve" : OBJ_nid2sn(nid));
        return;
    }
    }
    const char *name = EVP_PKEY_get0_type_name(key);
    snprintf(out, n, "%s", name ? name : "unknown");
    for (char *p = out; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
}

int ca_key_check(const EVP_PKEY *key, char *errmsg)
{
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA: {
        int bits = EVP_PKEY_get_bits(key);
        return bits >= 2048 && bits <= 16384 ? 0 : CMN_EUNSUPPORTED;
    }
    case EVP_PKEY_EC: {
        int nid = NID_undef;
        if (ec_curve_nid(key, &nid) != 0)
            return cmn_fail(errmsg, CMN_ECRYPTO, "cannot read the EC key's curve");
        return nid == NID_X9_62_prime256v1 || nid == NID_secp384r1 || nid == NID_secp521r1
                   ? 0
                   : CMN_EUNSUPPORTED;
    }
    }
    return CMN_EUNSUPPORTED;
}

bool ca_key_acceptable(const EVP_PKEY *key)
{
    return ca_key_check(key, NULL) == 0;
}

bool ca_key_is_rsa(const EVP_PKEY *key)
{
    return EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA;
}
