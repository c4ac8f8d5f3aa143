/* When each certificate was last used on this node: a chained hash table by thumbprint. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ident.h"
#include "node/lastused.h"

#define BUCKETS 4096

struct entry {
    char thumb[CA_THUMBPRINT_SIZE];
    int64_t when_ms;
    struct entry *next;
};

struct lastused {
    struct entry *buckets[BUCKETS];
};

/* FNV-1a */
static unsigned bucket(const char *t)
{
    unsigned h = 2166136261u;
    for (; *t; t++)
        h = (h ^ (unsigned char)*t) * 16777619u;
    return h % BUCKETS;
}

struct lastused *lastused_new(void)
{
    return calloc(1, sizeof(struct lastused));
}

void lastused_free(struct lastused *lu)
{
    if (lu == NULL)
        return;
    for (size_t i = 0; i < BUCKETS; i++) {
        for (struct entry *e = lu->buckets[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(lu);
}

void lastused_touch(struct lastused *lu, const char *thumb, int64_t now_ms)
{
    struct entry **b = &lu->buckets[bucket(thumb)];
    for (struct entry *e = *b; e; e = e->next) {
        if (strcmp(e->thumb, thumb) == 0) {
            if (now_ms - e->when_ms >= LASTUSED_EVERY_MS)
                e->when_ms = now_ms;
            return;
        }
    }
    struct entry *e = calloc(1, sizeof *e);
    if (e == NULL)
        return;
    snprintf(e->thumb, sizeof e->thumb, "%s", thumb);
    e->when_ms = now_ms;
    e->next = *b;
    *b = e;
}

void lastused_forget(struct lastused *lu, const char *thumb)
{
    for (struct entry **p = &lu->buckets[bucket(thumb)]; *p; p = &(*p)->next) {
        if (strcmp((*p)->thumb, thumb) == 0) {
            struct entry *e = *p;
            *p = e->next;
            free(e);
            return;
        }
    }
}

void lastused_each(const struct lastused *lu, lastused_fn fn, void *ctx)
{
    for (size_t i = 0; i < BUCKETS; i++)
        for (const struct entry *e = lu->buckets[i]; e; e = e->next)
            fn(ctx, e->thumb, e->when_ms);
}
