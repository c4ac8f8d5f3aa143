/* Fuzz target: the HTTP request path (the parser the node feeds from TLS, with its stop at the
 * headers for the body decision, and the query-string reader the handlers use), in chunks of
 * varying size as a socket delivers them. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "node/http.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = (size_t)(data[0] % 64) + 1;
    /* the head decision, as a route makes it: keep the body, or skip it (a small limit) */
    bool keep = (data[0] & 64) == 0;
    size_t max = keep ? HTTP_MAX_BODY_BYTES : 16;
    data++;
    size--;
    struct http_reqparser rp;
    http_reqparser_init(&rp);
    while (size > 0) {
        size_t n = size < chunk ? size : chunk, used = 0;
        int status = http_reqparser_feed(&rp, data, n, &used);
        if (status != 0) {
            if (status < 400 || status > 599 || rp.error == NULL)
                __builtin_trap(); /* a refusal always carries a 4xx/5xx and a reason */
            break;
        }
        if (used > n)
            __builtin_trap();
        data += used;
        size -= used;
        if (rp.head) {
            if (rp.complete || rp.body_seen != 0 || rp.req.body.len != 0)
                __builtin_trap(); /* the head comes before any of the body */
            status = http_reqparser_body(&rp, max, keep);
            if (status != 0) {
                if (status < 400 || status > 599 || rp.error == NULL)
                    __builtin_trap();
                break;
            }
            if (rp.head)
                __builtin_trap();
            continue;
        }
        if (rp.body_seen > rp.body_max || (!keep && rp.req.body.len != 0))
            __builtin_trap(); /* the decision holds */
        if (rp.complete) {
            char v[256];
            int count;
            (void)http_query(&rp.req, "thumbprint", v, sizeof v, &count);
            (void)http_query(&rp.req, "raft-request-id", v, sizeof v, NULL);
            (void)http_query_bool(&rp.req, "metadataOnly", false);
            http_reqparser_next(&rp);
        } else if (used < n) {
            break; /* paused without a complete request cannot happen; stop to be safe */
        }
    }
    http_reqparser_fini(&rp);
    return 0;
}
