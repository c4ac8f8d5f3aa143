/* Fuzz target: hostile bytes into the PKCS#12 parser and the certificate loader. The first byte
 * chooses the password (bit 0: "pw", else bit 1: "", else none) and bit 2 forbids the legacy
 * provider; the rest is the file. */
#include <stddef.h>
#include <stdint.h>

#include "ca/ca.h"
#include "tests/fuzz/fuzz.h"

static void poke(X509 *x)
{
    struct ca_ident id;
    struct ca_strlist sans;
    struct cmn_buf s;
    cmn_buf_init(&s, false);
    if (ca_ident_get(x, &id, NULL) == 0 && ca_sans(x, &sans, NULL) == 0)
        ca_strlist_fini(&sans);
    if (ca_subject_str(x, &s) != 0 || ca_issuer_str(x, &s) != 0)
        s.len = 0;
    cmn_buf_fini(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t sel = data[0];
    data++;
    size--;
    const char *pw = (sel & 1) ? "pw" : (sel & 2) ? "" : NULL;
    unsigned flags = (sel & 4) ? CA_PFX_NO_LEGACY : 0;
    char errmsg[CMN_ERRMSG_SIZE];

    struct ca_pfx pfx;
    if (ca_pfx_parse(data, size, pw, flags, &pfx, errmsg) == 0) {
        for (size_t i = 0; i < pfx.certs.n; i++)
            poke(pfx.certs.v[i]);
        ca_pfx_fini(&pfx);
    }
    (void)ca_pfx_sniff(data, size);

    struct ca_cert_list l;
    ca_cert_list_init(&l);
    if (ca_certs_from_bytes(data, size, &l, errmsg) == 0)
        for (size_t i = 0; i < l.n; i++)
            poke(l.v[i]);
    ca_cert_list_fini(&l);
    return 0;
}
