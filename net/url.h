/* The one URL parser of Corvid (on http_parser_parse_url): node URLs given to the CLI and the
 * benchmarks, Location headers, node_fetch's targets and Raft peer addresses. No OpenSSL. */
#ifndef CORVID_NET_URL_H
#define CORVID_NET_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define NET_URL_MAX      2048 /* longest URL accepted, in bytes */
#define NET_URL_HOST_MAX 255  /* longest host (a DNS name is at most 253) */

/* A URL, split. Every field is a NUL-terminated copy: nothing points into the input. */
struct net_url {
    char scheme[16];                 /* lower case; "" when the input had none (NET_URL_BARE) */
    char host[NET_URL_HOST_MAX + 1]; /* without the brackets of an IPv6 literal */
    int family;    /* AF_INET or AF_INET6 for an IP literal, AF_UNSPEC for a name */
    uint16_t port; /* the port given, else the scheme's (https 443, http 80), else 0 */
    bool has_port; /* a port was given */
    char hostport[NET_URL_HOST_MAX + 10];  /* host:port, IPv6 in brackets: "[::1]:9081" */
    char authority[NET_URL_HOST_MAX + 10]; /* as in a Host header: host, and :port unless it
                                            * is the scheme's default */
    char origin[NET_URL_HOST_MAX + 30];    /* scheme://authority ("" without a scheme) */
    char path[NET_URL_MAX]; /* path and ?query as given (not decoded), "" when none */
};

/* Flags of net_url_parse. */
#define NET_URL_BARE    1u /* also accept HOST:PORT without a scheme (the port then required) */
#define NET_URL_PORT    2u /* a port must be given */
#define NET_URL_NO_PATH 4u /* nothing may follow the authority but one "/" */
#define NET_URL_IP      8u /* the host must be an IP literal (no name resolution) */

/* Parses s, "scheme://HOST[:PORT][/path][?query]" with HOST a DNS name, an IPv4 literal or an
 * [IPv6] literal, into *out (the caller's). Refused with CMN_EINVALID, the reason in errmsg
 * after the input (cut to 200 bytes): userinfo ("user@"), a fragment, port 0 or above 65535,
 * an unbalanced or invalid IPv6 literal, a host of characters other than letters, digits, '.',
 * '-' and '_', more than NET_URL_MAX bytes, or what the flags rule out. The scheme is not
 * checked: the caller knows which it wants. */
int net_url_parse(const char *s, unsigned flags, struct net_url *out, char *errmsg) CMN_MUST_CHECK;

#endif
