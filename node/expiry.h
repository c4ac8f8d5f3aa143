/* Certificates that must not expire unnoticed: this node's, the issuing CA's, and the client
 * certificates of the trust state. Levels as RavenDB's (a warning 20 days before, an error 3
 * days before), checked by the core at start and then every hour: log lines when a level is
 * reached, and a report the API and the admin channel show. */
#ifndef CORVID_NODE_EXPIRY_H
#define CORVID_NODE_EXPIRY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define NODE_EXPIRY_WARN_DAYS  20
#define NODE_EXPIRY_ERROR_DAYS 3

enum node_expiry { NODE_EXPIRY_OK, NODE_EXPIRY_WARNING, NODE_EXPIRY_ERROR, NODE_EXPIRY_EXPIRED };

/* The level of a certificate valid until not_after (seconds) at now. */
enum node_expiry node_expiry_level(int64_t not_after, int64_t now);
/* "Ok", "Warning", "Error", "Expired". */
const char *node_expiry_name(enum node_expiry level);

struct node;

/* Starts a check when one is due (the first call, then every hour): the core's duty timer
 * calls it. The report is there once the check ran in the threadpool. */
void node_expiry_check(struct node *n);

/* What the last check found (zeroes before the first). */
struct node_expiry_report {
    int64_t node_not_after, ca_not_after; /* seconds; 0 when unknown (no issuing CA yet) */
    size_t clients_warning, clients_error, clients_expired; /* registrations at each level */
    int64_t checked_ms;                                     /* 0: not checked yet */
};
void node_expiry_get(struct node *n, struct node_expiry_report *out);
/* The report as JSON, levels included, at now (seconds). */
json_t *node_expiry_json(const struct node_expiry_report *r, int64_t now);

#endif
