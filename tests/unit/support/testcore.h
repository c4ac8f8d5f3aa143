/* A test core for node/'s unit tests: node A of a two-node cluster made by `corvid pki
 * init-cluster`, started with node_new (its store on disk, Raft started, a cluster of A alone
 * in its bootstrap), and the cluster CA to issue client certificates. The trust state is set
 * by applying commands to the store the way Raft would. */
#ifndef CORVID_TESTS_UNIT_SUPPORT_TESTCORE_H
#define CORVID_TESTS_UNIT_SUPPORT_TESTCORE_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "ca/certfile.h"
#include "node/node.h"
#include "storage/cmd.h"
#include "storage/model.h"

#define TC_NOW 1800000000 /* 2027-01-15: the time commands are applied at */

struct tc_core {
    char dir[64];
    struct node *n;
    struct ca_certfile issuing; /* the cluster CA */
};

/* Makes the cluster under a new /tmp/<prefix>-XXXXXX and starts node A: 0, or -1 with the
 * reason on stderr. */
int tc_start(struct tc_core *t, const char *prefix);
/* Removes the directory. The node is not freed: its handles are on a loop that need not have
 * run to its end, as after a failed start; the process ends with the test. */
int tc_stop(struct tc_core *t);

/* A client certificate for key (a new EC key when *key is NULL), valid from nb to na, signed
 * by the cluster CA or, with self_signed, by nobody. Fails the test on error. */
X509 *tc_client_cert(struct tc_core *t, EVP_PKEY **key, const char *cn, int64_t nb, int64_t na,
                     bool self_signed);
/* Applies c (consumed) to the store at TC_NOW, as the node itself unless c names its actor;
 * fails the test if refused. */
void tc_apply(struct tc_core *t, struct kv_cmd *c);
/* Registers x with name and clearance (and a TOTP key, or NULL). */
void tc_register(struct tc_core *t, X509 *x, const char *name, enum kv_clearance cl,
                 const char *totp);
/* Revokes x. */
void tc_revoke(struct tc_core *t, X509 *x);

#endif
