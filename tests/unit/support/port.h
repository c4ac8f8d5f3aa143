/* A loopback TCP port free at the time of asking (the kernel's choice for port 0), for unit
 * tests that listen: another process may take it before the test binds, which then fails
 * with an error that says so. */
#ifndef CORVID_TESTS_UNIT_SUPPORT_PORT_H
#define CORVID_TESTS_UNIT_SUPPORT_PORT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* The port, or -1 when no socket could be bound. */
static inline int ts_free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (s >= 0)
        close(s);
    return port;
}

#endif
