/* Helpers shared by the storage tests: records with real SHA-1 thumbprints, command builders,
 * temporary store directories. */
#ifndef CORVID_TESTS_STORAGE_FIXTURE_H
#define CORVID_TESTS_STORAGE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "storage/cmd.h"
#include "storage/kv.h"

/* A certificate record whose "DER" is seed-derived bytes and whose thumbprint is its SHA-1. */
static inline void fx_cert(struct kv_cert *c, unsigned seed, const char *name, enum kv_clearance cl)
{
    memset(c, 0, sizeof *c);
    c->der_len = 64 + seed % 32;
    c->der = malloc(c->der_len);
    for (size_t i = 0; i < c->der_len; i++)
        c->der[i] = (uint8_t)(seed * 31 + i * 7);
    uint8_t md[20];
    unsigned n;
    EVP_Digest(c->der, c->der_len, md, &n, EVP_sha1(), NULL);
    cmn_hex_lower(md, 20, c->thumbprint);
    c->name = strdup(name);
    c->clearance = cl;
    snprintf(c->pkph, sizeof c->pkph, "pkph%08uAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", seed);
    snprintf(c->serial, sizeof c->serial, "%08X00112233445566778899AA", seed);
    c->not_before = 1700000000;
    c->not_after = 1900000000;
    c->ca_issued = true;
    c->registered_ms = 1700000000000;
}

static inline void fx_perm(struct kv_cert *c, const char *db, enum kv_access acc)
{
    c->perms = realloc(c->perms, (c->n_perms + 1) * sizeof *c->perms);
    c->perms[c->n_perms].db = strdup(db);
    c->perms[c->n_perms].access = acc;
    c->n_perms++;
}

static inline void fx_perm_edit(struct kv_cmd *c, const char *db, enum kv_access acc)
{
    c->u.edit.perms = realloc(c->u.edit.perms, (c->u.edit.n_perms + 1) * sizeof *c->u.edit.perms);
    c->u.edit.perms[c->u.edit.n_perms].db = strdup(db);
    c->u.edit.perms[c->u.edit.n_perms].access = acc;
    c->u.edit.n_perms++;
}

/* Fills the command header as an actor with a clearance would. */
static inline void fx_actor(struct kv_cmd *c, const char *thumb, enum kv_clearance cl)
{
    snprintf(c->actor, sizeof c->actor, "%s", thumb ? thumb : "");
    c->actor_clearance = cl;
    c->time_ms = 1750000000000;
}

/* PUT_CERTS of one certificate (takes ownership of *cert). */
static inline void fx_put(struct kv_cmd *c, struct kv_cert *cert, enum kv_clearance actor_cl)
{
    kv_cmd_init(c, KV_CMD_PUT_CERTS);
    fx_actor(c, NULL, actor_cl);
    c->u.put.certs = malloc(sizeof *cert);
    c->u.put.certs[0] = *cert;
    c->u.put.n = 1;
    memset(cert, 0, sizeof *cert);
}

static inline void fx_delete(struct kv_cmd *c, const char *thumb, const char *actor,
                             enum kv_clearance actor_cl)
{
    kv_cmd_init(c, KV_CMD_DELETE_CERTS);
    fx_actor(c, actor, actor_cl);
    c->u.del.thumbprints = calloc(1, sizeof *c->u.del.thumbprints);
    snprintf(c->u.del.thumbprints[0], sizeof c->u.del.thumbprints[0], "%s", thumb);
    c->u.del.n = 1;
}

/* Encodes and frees a command. */
static inline void fx_encode(struct kv_cmd *c, struct cmn_buf *out)
{
    char err[CMN_ERRMSG_SIZE] = "";
    cmn_buf_init(out, false);
    if (kv_cmd_encode(c, out, err) != 0) {
        fprintf(stderr, "encode: %s\n", err);
        abort();
    }
    kv_cmd_fini(c);
}

/* Encodes, applies at index and frees; returns kv_apply's code. */
static inline int fx_apply(struct kv *kv, uint64_t index, struct kv_cmd *c, struct kv_result *res)
{
    struct cmn_buf b;
    char err[CMN_ERRMSG_SIZE] = "";
    fx_encode(c, &b);
    /* What the previous result owned: tests read a result before their next apply. */
    static char(*kept)[KV_THUMB_LEN + 1];
    free(kept);
    int rv = kv_apply(kv, index, b.data, b.len, res, err);
    kept = res->removed;
    cmn_buf_fini(&b);
    return rv;
}

static inline char *fx_tmpdir(void)
{
    char tmpl[] = "/tmp/corvid-kv-XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static inline void fx_rmrf(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

#endif
