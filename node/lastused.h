/* When each certificate was last used on this node, like RavenDB's "Last used" statistics:
 * node-local, in memory, and recorded at most once per LASTUSED_EVERY_MS per certificate. */
#ifndef CORVID_NODE_LASTUSED_H
#define CORVID_NODE_LASTUSED_H

#include <stdint.h>

#define LASTUSED_EVERY_MS 15000

struct lastused;

/* NULL when out of memory. */
struct lastused *lastused_new(void);
void lastused_free(struct lastused *lu);

/* Records that the certificate with this (lower-case) thumbprint was used at now_ms, unless
 * a use within LASTUSED_EVERY_MS is recorded. Out of memory loses the record: statistics,
 * never a decision. */
void lastused_touch(struct lastused *lu, const char *thumb, int64_t now_ms);
void lastused_forget(struct lastused *lu, const char *thumb);

/* Calls fn for every certificate recorded, in no order. */
typedef void (*lastused_fn)(void *ctx, const char *thumb, int64_t when_ms);
void lastused_each(const struct lastused *lu, lastused_fn fn, void *ctx);

#endif
