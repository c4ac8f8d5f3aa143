/* The HTTPS API (node/api.c and the resources of node/resource.h), a room of the core. */
#ifndef CORVID_NODE_API_H
#define CORVID_NODE_API_H

#include "node/node.h"

/* Starts serving on ServerUrl and adds the API to the node's rooms: it is closed when the node
 * stops and freed with it (also after a failure here). */
int node_api_start(struct node *n, char *errmsg) CMN_MUST_CHECK;

#endif
