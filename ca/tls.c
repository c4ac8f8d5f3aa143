/* The shared TLS policy: versions, cipher suites and groups. */
#include "ca/tls.h"

#include <openssl/err.h>

int ca_tls_policy(SSL_CTX *ctx, char *errmsg)
{
    const char *what = NULL;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
        what = "the lowest version";
    else if (SSL_CTX_set_cipher_list(ctx, CA_TLS12_SUITES) != 1)
        what = "the TLS 1.2 cipher suites";
    else if (SSL_CTX_set_ciphersuites(ctx, CA_TLS13_SUITES) != 1)
        what = "the TLS 1.3 cipher suites";
    else if (SSL_CTX_set1_groups_list(ctx, CA_TLS_GROUPS) != 1)
        what = "the key-exchange groups";
    if (what == NULL)
        return 0;
    char reason[160] = "refused";
    unsigned long e = ERR_peek_last_error();
    if (e != 0)
        ERR_error_string_n(e, reason, sizeof reason);
    ERR_clear_error();
    return cmn_fail(errmsg, CMN_ECRYPTO, "TLS policy: cannot set %s: %s", what, reason);
}
