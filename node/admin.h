/* The admin channel (node/admin.c): a Unix socket in DataDir, owner only, for the commands of
 * `corvid admin` (RavenDB's rvn admin-channel), a room of the core. */
#ifndef CORVID_NODE_ADMIN_H
#define CORVID_NODE_ADMIN_H

#include "node/node.h"

/* Listens on DataDir/admin.sock and adds the channel to the node's rooms: it is closed when
 * the node stops (and frees itself once its connections are gone). */
int node_admin_start(struct node *n, char *errmsg) CMN_MUST_CHECK;

#endif
