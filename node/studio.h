/* The Studio's files (node/studio/), embedded in corvid-node at build time by
 * node/studio_embed.cmake: the node serves them itself, nothing is read from disk. */
#ifndef CORVID_NODE_STUDIO_H
#define CORVID_NODE_STUDIO_H

#include <stddef.h>
#include <stdint.h>

struct studio_asset {
    const char *path; /* "/studio/studio.js" */
    const char *content_type;
    const uint8_t *data;
    size_t len;
};

/* Generated (studio_assets.c in the build directory); static data, never freed. */
extern const struct studio_asset studio_assets[];
extern const size_t studio_n_assets;

#endif
