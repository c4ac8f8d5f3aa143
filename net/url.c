/* URLs through http_parser_parse_url, checked further and split into copies. */
#include "net/url.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <http_parser.h>

static int bad(char *errmsg, const char *s, const char *why)
{
    return cmn_fail(errmsg, CMN_EINVALID, "%.200s: %s", s, why);
}

static uint16_t default_port(const char *scheme)
{
    if (strcmp(scheme, "https") == 0)
        return 443;
    if (strcmp(scheme, "http") == 0)
        return 80;
    return 0;
}

/* Copies field f of u (from s) into out (cap bytes); false when it does not fit. */
static bool field(const char *s, const struct http_parser_url *u, int f, char *out, size_t cap)
{
    out[0] = '\0';
    if (!(u->field_set & (1u << f)))
        return true;
    size_t n = u->field_data[f].len;
    if (n >= cap)
        return false;
    memcpy(out, s + u->field_data[f].off, n);
    out[n] = '\0';
    return true;
}

int net_url_parse(const char *s, unsigned flags, struct net_url *out, char *errmsg)
{
    memset(out, 0, sizeof *out);
    size_t len = strnlen(s, NET_URL_MAX + 1);
    if (len > NET_URL_MAX)
        return bad(errmsg, s, "URL too long");
    /* Without "://" the input can only be an authority (HOST:PORT): http_parser's CONNECT
     * form, which requires the port. */
    bool bare = strstr(s, "://") == NULL;
    if (bare && !(flags & NET_URL_BARE))
        return bad(errmsg, s, "not a URL (scheme://host:port)");
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (len == 0 || http_parser_parse_url(s, len, bare, &u) != 0) {
        /* http_parser says no more than "invalid": name the two usual mistakes. */
        const char *open = strchr(s, '[');
        if (open && strchr(open, ']') == NULL)
            return bad(errmsg, s, "unterminated [IPv6 address]");
        const char *auth = bare ? s : strstr(s, "://") + 3;
        size_t alen = strcspn(auth, "/?#");
        const char *colon = memrchr(auth, ':', alen);
        size_t digits = colon ? strspn(colon + 1, "0123456789") : 0;
        if (colon && digits > 0 && colon + 1 + digits == auth + alen &&
            (digits > 5 || strtol(colon + 1, NULL, 10) > 65535))
            return bad(errmsg, s, "bad port");
        return bad(errmsg, s, bare ? "not HOST:PORT" : "not a valid URL");
    }
    if (u.field_set & (1u << UF_USERINFO))
        return bad(errmsg, s, "user information (user@) is not allowed");
    if (u.field_set & (1u << UF_FRAGMENT))
        return bad(errmsg, s, "a fragment (#) is not allowed");
    if (!field(s, &u, UF_SCHEMA, out->scheme, sizeof out->scheme))
        return bad(errmsg, s, "unknown scheme");
    for (char *p = out->scheme; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    if (!(u.field_set & (1u << UF_HOST)) || u.field_data[UF_HOST].len == 0)
        return bad(errmsg, s, "no host");
    if (!field(s, &u, UF_HOST, out->host, sizeof out->host))
        return bad(errmsg, s, "host name too long");
    uint16_t hoff = u.field_data[UF_HOST].off;
    bool bracketed = hoff > 0 && s[hoff - 1] == '[';
    struct in6_addr a6;
    struct in_addr a4;
    if (bracketed) {
        if (inet_pton(AF_INET6, out->host, &a6) != 1)
            return bad(errmsg, s, "bad IPv6 address");
        out->family = AF_INET6;
    } else {
        out->family = inet_pton(AF_INET, out->host, &a4) == 1 ? AF_INET : AF_UNSPEC;
    }
    if ((flags & NET_URL_IP) && out->family == AF_UNSPEC)
        return bad(errmsg, s, "the host must be an IP address");
    out->has_port = (u.field_set & (1u << UF_PORT)) != 0;
    if (out->has_port && (u.field_data[UF_PORT].len == 0 || u.port == 0))
        return bad(errmsg, s, "bad port");
    if ((flags & NET_URL_PORT) && !out->has_port)
        return bad(errmsg, s, "no port");
    uint16_t dflt = default_port(out->scheme);
    out->port = out->has_port ? u.port : dflt;
    /* The path runs to the end: the query stays with it, and fragments were refused. */
    if (u.field_set & (1u << UF_PATH)) {
        const char *p = s + u.field_data[UF_PATH].off;
        if ((flags & NET_URL_NO_PATH) && strcmp(p, "/") != 0)
            return bad(errmsg, s, "a path is not allowed here");
        snprintf(out->path, sizeof out->path, "%s", p);
    } else if (u.field_set & (1u << UF_QUERY)) {
        if (flags & NET_URL_NO_PATH)
            return bad(errmsg, s, "a query is not allowed here");
        snprintf(out->path, sizeof out->path, "%s", s + u.field_data[UF_QUERY].off - 1);
    }
    const char *lb = out->family == AF_INET6 ? "[" : "", *rb = out->family == AF_INET6 ? "]" : "";
    snprintf(out->hostport, sizeof out->hostport, "%s%s%s:%u", lb, out->host, rb, out->port);
    if (out->port == dflt && dflt != 0)
        snprintf(out->authority, sizeof out->authority, "%s%s%s", lb, out->host, rb);
    else
        snprintf(out->authority, sizeof out->authority, "%s", out->hostport);
    if (out->scheme[0])
        snprintf(out->origin, sizeof out->origin, "%s://%s", out->scheme, out->authority);
    return 0;
}
