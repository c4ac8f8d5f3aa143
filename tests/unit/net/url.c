/* net/url.c: the one URL parser, on good and hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sys/socket.h>

#include "net/url.h"

static struct net_url parse_ok(const char *s, unsigned flags)
{
    struct net_url u;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    int rv = net_url_parse(s, flags, &u, errmsg);
    if (rv != 0)
        fail_msg("%s: %d %s", s, rv, errmsg);
    return u;
}

static void parse_bad(const char *s, unsigned flags, const char *why)
{
    struct net_url u;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(net_url_parse(s, flags, &u, errmsg), CMN_EINVALID);
    if (strstr(errmsg, why) == NULL)
        fail_msg("%s: '%s' does not say '%s'", s, errmsg, why);
}

static void https_names_and_ports(void **state)
{
    struct net_url u = parse_ok("https://node-a.example.com:8443", 0);
    assert_string_equal(u.scheme, "https");
    assert_string_equal(u.host, "node-a.example.com");
    assert_int_equal(u.family, AF_UNSPEC);
    assert_int_equal(u.port, 8443);
    assert_true(u.has_port);
    assert_string_equal(u.hostport, "node-a.example.com:8443");
    assert_string_equal(u.authority, "node-a.example.com:8443");
    assert_string_equal(u.origin, "https://node-a.example.com:8443");
    assert_string_equal(u.path, "");

    u = parse_ok("HTTPS://Node_1.local/", NET_URL_NO_PATH);
    assert_string_equal(u.scheme, "https");
    assert_string_equal(u.host, "Node_1.local");
    assert_int_equal(u.port, 443);
    assert_false(u.has_port);
    assert_string_equal(u.authority, "Node_1.local"); /* the default port left out */
    assert_string_equal(u.hostport, "Node_1.local:443");
    assert_string_equal(u.origin, "https://Node_1.local");
    assert_string_equal(u.path, "/");

    u = parse_ok("https://127.0.0.1:443", 0); /* a default port given is still the default */
    assert_int_equal(u.family, AF_INET);
    assert_string_equal(u.authority, "127.0.0.1");

    u = parse_ok("http://10.0.0.1", 0); /* the scheme is the caller's to judge */
    assert_string_equal(u.scheme, "http");
    assert_int_equal(u.port, 80);
    u = parse_ok("tls://10.0.0.1:9081", NET_URL_PORT | NET_URL_IP);
    assert_string_equal(u.hostport, "10.0.0.1:9081");
    assert_string_equal(u.authority, "10.0.0.1:9081");
    u = parse_ok("https://1.2.3.4:65535", 0);
    assert_int_equal(u.port, 65535);
    u = parse_ok("https://1.2.3.4:1", 0);
    assert_int_equal(u.port, 1);
}

static void ipv6_literals(void **state)
{
    struct net_url u = parse_ok("https://[::1]:8080/", 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.family, AF_INET6);
    assert_string_equal(u.hostport, "[::1]:8080");
    assert_string_equal(u.origin, "https://[::1]:8080");
    u = parse_ok("https://[2001:db8::a:1]", 0);
    assert_string_equal(u.authority, "[2001:db8::a:1]");
    assert_string_equal(u.hostport, "[2001:db8::a:1]:443");
    u = parse_ok("[fe80::1]:9081", NET_URL_BARE | NET_URL_IP);
    assert_string_equal(u.host, "fe80::1");
    assert_int_equal(u.port, 9081);
    assert_string_equal(u.scheme, "");
    assert_string_equal(u.origin, "");

    parse_bad("https://[::1:8080", 0, "unterminated [IPv6 address]");
    parse_bad("https://[]:8080", 0, "");
    parse_bad("https://[1:2:3:4:5:6:7:8:9]:1", 0, "bad IPv6 address");
    parse_bad("https://[fe80::1%25eth0]:1", 0, "bad IPv6 address"); /* zone ids: not here */
    parse_bad("https://::1:8080", 0, "not a valid URL");            /* IPv6 needs its brackets */
}

static void paths_and_queries(void **state)
{
    struct net_url u = parse_ok("https://h:1/cluster/node-info?x=1&y=%2F", 0);
    assert_string_equal(u.path, "/cluster/node-info?x=1&y=%2F");
    u = parse_ok("https://h:1?only=query", 0);
    assert_string_equal(u.path, "?only=query");
    parse_bad("https://h:1/a/b", NET_URL_NO_PATH, "a path is not allowed");
    parse_bad("https://h:1?q", NET_URL_NO_PATH, "a query is not allowed");
    parse_bad("https://h:1/#frag", 0, "a fragment");
}

static void bare_host_port(void **state)
{
    struct net_url u = parse_ok("127.0.0.1:9081", NET_URL_BARE);
    assert_string_equal(u.hostport, "127.0.0.1:9081");
    assert_true(u.has_port);
    parse_bad("127.0.0.1:9081", 0, "not a URL");
    parse_bad("127.0.0.1", NET_URL_BARE, "not HOST:PORT"); /* no port */
    parse_bad("127.0.0.1:9081/x", NET_URL_BARE, "not HOST:PORT");
    parse_bad("localhost:9081", NET_URL_BARE | NET_URL_IP, "must be an IP address");
}

static void hostile_input(void **state)
{
    parse_bad("", NET_URL_BARE, "");
    parse_bad("https://", 0, "");
    parse_bad("https://:443", 0, "");
    parse_bad("https://user:pw@h:1", 0, "user information");
    parse_bad("https://user@h", 0, "user information");
    parse_bad("https://h:0", 0, "bad port");
    parse_bad("https://h:65536", 0, "bad port");
    parse_bad("https://h:99999999999999999999/x", 0, "bad port");
    parse_bad("1.2.3.4:70000", NET_URL_BARE, "bad port");
    parse_bad("https://h:-1", 0, "not a valid URL");
    parse_bad("https://h:12ab", 0, "not a valid URL");
    parse_bad("https://h", NET_URL_PORT, "no port");
    parse_bad("https://h st", 0, "not a valid URL");
    parse_bad("https://h\r\nHost: evil", 0, "not a valid URL");
    parse_bad("https://h\"x", 0, "not a valid URL");
    parse_bad("https://h/a b", 0, "not a valid URL");
    parse_bad("https://h/\x01", 0, "not a valid URL");
    parse_bad("https://localhost:80", NET_URL_IP, "must be an IP address");
    parse_bad("averyveryverylongschemename://h:1", 0, "unknown scheme");
    /* Over-long: a host past NET_URL_HOST_MAX, a URL past NET_URL_MAX. */
    char s[NET_URL_MAX + 64];
    memcpy(s, "https://", 8);
    memset(s + 8, 'a', 300);
    strcpy(s + 308, ":1");
    parse_bad(s, 0, "host name too long");
    memset(s + 8, 'a', sizeof s - 9);
    s[sizeof s - 1] = '\0';
    parse_bad(s, 0, "URL too long");
    /* The message quotes at most 200 bytes of the input. */
    struct net_url u;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(net_url_parse(s, 0, &u, errmsg), CMN_EINVALID);
    assert_true(strlen(errmsg) < 240);
    /* Exactly NET_URL_MAX is fine. */
    strcpy(s, "https://h:1/");
    memset(s + 12, 'p', NET_URL_MAX - 12);
    s[NET_URL_MAX] = '\0';
    u = parse_ok(s, 0);
    assert_int_equal(strlen(u.path), NET_URL_MAX - 11);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(https_names_and_ports), cmocka_unit_test(ipv6_literals),
        cmocka_unit_test(paths_and_queries),     cmocka_unit_test(bare_host_port),
        cmocka_unit_test(hostile_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
