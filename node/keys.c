/* Secrets at rest: the master key (Security.MasterKey.Path), the issuing CA key sealed under it
 * in the trust state, and owner-only permissions on everything under DataDir. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw's FTW_PHYS */
#endif
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "ca/encode.h"
#include "ca/totp.h"
#include "common/file.h"
#include "common/log.h"
#include "node/core.h"

#define KEY_MSG "Security.MasterKey.Path"

/* True when path lies inside dir (both resolved, symlinks followed). */
static bool inside(const char *path, const char *dir)
{
    char rp[PATH_MAX], rd[PATH_MAX];
    if (realpath(path, rp) == NULL || realpath(dir, rd) == NULL)
        return false;
    size_t n = strlen(rd);
    return strncmp(rp, rd, n) == 0 && (rp[n] == '/' || rp[n] == '\0' || strcmp(rd, "/") == 0);
}

int node_keys_load(struct node *n, char *errmsg)
{
    const char *path = n->cfg.master_key_path;
    /* A key stored with the data it protects protects nothing: copies and backups of the DataDir
     * are exactly what sealing is for. */
    if (inside(path, n->cfg.data_dir))
        return cmn_fail(errmsg, CMN_EINVALID,
                        KEY_MSG ": %s is inside DataDir %s: keep the master key outside it, so "
                                "that a copy of the DataDir does not carry the key that opens it",
                        path, n->cfg.data_dir);
    struct cmn_buf b;
    cmn_buf_init(&b, true);
    int rv = cmn_read_private_file(path, CA_MASTER_KEY_SIZE * CA_MASTER_KEYS_MAX + 64, &b, errmsg);
    if (rv == CMN_ENOTFOUND)
        cmn_fail(errmsg, rv,
                 KEY_MSG ": %s does not exist: `corvid pki init-cluster` writes master.key, and "
                         "every node of a cluster needs a copy of that same file",
                 path);
    else if (rv != 0)
        cmn_errctx(errmsg, KEY_MSG);
    if (rv == 0) {
        rv = ca_master_keys_parse(b.data, b.len, n->mkeys, &n->n_mkeys, errmsg);
        if (rv != 0)
            cmn_errctx(errmsg, KEY_MSG ": %s", path);
    }
    cmn_buf_fini(&b);
    if (rv != 0)
        return rv;
    char id0[CA_SEAL_ID_HEX], id1[CA_SEAL_ID_HEX] = "";
    ca_master_key_id_hex(n->mkeys[0].id, id0);
    if (n->n_mkeys > 1)
        ca_master_key_id_hex(n->mkeys[1].id, id1);
    CMN_INFO("NODE-KEYS", "master key %s%s%s%s from %s", id0,
             id1[0] ? " (and the previous key " : "", id1,
             id1[0] ? ", kept to open what it sealed: a rotation is in progress)" : "", path);
    return 0;
}

void node_keys_fini(struct node *n)
{
    for (size_t i = 0; i < CA_MASTER_KEYS_MAX; i++)
        ca_master_key_fini(&n->mkeys[i]);
    n->n_mkeys = 0;
}

static const struct ca_master_key *key_by_id(struct node *n, const uint8_t id[CA_SEAL_ID_SIZE])
{
    for (size_t i = 0; i < n->n_mkeys; i++)
        if (memcmp(n->mkeys[i].id, id, CA_SEAL_ID_SIZE) == 0)
            return &n->mkeys[i];
    return NULL;
}

int node_keys_seal(struct node *n, const char *purpose, const void *plain, size_t len,
                   struct cmn_buf *out, char *errmsg)
{
    return ca_seal(&n->mkeys[0], purpose, &cmn_rng_system, plain, len, out, errmsg);
}

int node_keys_open(struct node *n, const char *purpose, const struct cmn_buf *blob,
                   struct cmn_buf *out, char *errmsg)
{
    uint8_t id[CA_SEAL_ID_SIZE];
    char hex[CA_SEAL_ID_HEX], have[CA_SEAL_ID_HEX];
    if (ca_seal_key_id(blob->data, blob->len, id) != 0)
        return cmn_fail(errmsg, CMN_EMALFORMED, "not a sealed blob");
    const struct ca_master_key *mk = key_by_id(n, id);
    if (mk == NULL) {
        ca_master_key_id_hex(id, hex);
        ca_master_key_id_hex(n->mkeys[0].id, have);
        return cmn_fail(errmsg, CMN_EBADPASSWORD,
                        "sealed under master key %s, but this node's " KEY_MSG " (%s) holds key %s",
                        hex, n->cfg.master_key_path, have);
    }
    return ca_seal_open(mk, purpose, blob->data, blob->len, out, errmsg);
}

int node_keys_seal_issuing(struct node *n, EVP_PKEY *key, struct cmn_buf *out, char *errmsg)
{
    unsigned char *der = NULL;
    int len = i2d_PrivateKey(key, &der);
    if (len <= 0)
        return cmn_fail(errmsg, CMN_ECRYPTO, "cannot encode the issuing CA key");
    int rv =
        ca_seal(&n->mkeys[0], CA_SEAL_ISSUING_CA, &cmn_rng_system, der, (size_t)len, out, errmsg);
    OPENSSL_clear_free(der, (size_t)len);
    if (rv != 0)
        cmn_errctx(errmsg, "sealing the issuing CA key");
    return rv;
}

enum node_ca_seal node_keys_issuing_state(struct node *n, const struct cmn_buf *blob,
                                          char id[CA_SEAL_ID_HEX])
{
    uint8_t raw[CA_SEAL_ID_SIZE];
    id[0] = '\0';
    if (!ca_seal_sniff(blob->data, blob->len) || ca_seal_key_id(blob->data, blob->len, raw) != 0)
        return NODE_CA_CLEAR;
    ca_master_key_id_hex(raw, id);
    const struct ca_master_key *mk = key_by_id(n, raw);
    if (mk == NULL)
        return NODE_CA_FOREIGN;
    return mk == &n->mkeys[0] ? NODE_CA_CURRENT : NODE_CA_PREVIOUS;
}

int node_keys_open_issuing(struct node *n, const struct cmn_buf *blob, EVP_PKEY **out, char *errmsg)
{
    *out = NULL;
    char id[CA_SEAL_ID_HEX], have[CA_SEAL_ID_HEX];
    struct cmn_buf der;
    cmn_buf_init(&der, true);
    int rv = 0;
    switch (node_keys_issuing_state(n, blob, id)) {
    case NODE_CA_CLEAR:
        /* Committed by a Corvid that did not seal it yet: still usable, and the leader seals it
         * (node.c, reseal). */
        if (!n->ca_clear_warned)
            CMN_WARN("NODE-KEYS", "the issuing CA key in the trust state is not sealed (committed "
                                  "before encryption at rest): the leader re-seals it under the "
                                  "master key");
        n->ca_clear_warned = true;
        rv = cmn_buf_append(&der, blob->data, blob->len);
        break;
    case NODE_CA_FOREIGN:
        ca_master_key_id_hex(n->mkeys[0].id, have);
        cmn_buf_fini(&der);
        return cmn_fail(errmsg, CMN_EBADPASSWORD,
                        "the issuing CA key is sealed under master key %s, but this node's " KEY_MSG
                        " (%s) holds key %s: every node of a cluster needs the same master key "
                        "file",
                        id, n->cfg.master_key_path, have);
    case NODE_CA_CURRENT:
    case NODE_CA_PREVIOUS: {
        uint8_t raw[CA_SEAL_ID_SIZE];
        CMN_IGNORE(ca_seal_key_id(blob->data, blob->len, raw));
        rv = ca_seal_open(key_by_id(n, raw), CA_SEAL_ISSUING_CA, blob->data, blob->len, &der,
                          errmsg);
        if (rv != 0)
            cmn_errctx(errmsg, "the issuing CA key (" KEY_MSG " %s)", n->cfg.master_key_path);
        break;
    }
    }
    if (rv == 0) {
        const unsigned char *p = der.data;
        *out = d2i_AutoPrivateKey(NULL, &p, (long)der.len);
        if (*out == NULL)
            rv = cmn_fail(errmsg, CMN_EMALFORMED, "the issuing CA key does not decode");
    }
    cmn_buf_fini(&der);
    return rv;
}

#define TOTP_PREFIX "sealed:"

int node_totp_seal(struct node *n, const char *key, char out[NODE_TOTP_STORED_MAX], char *errmsg)
{
    struct cmn_buf blob, b64;
    cmn_buf_init(&blob, false);
    cmn_buf_init(&b64, false);
    int rv = ca_seal(&n->mkeys[0], CA_SEAL_TOTP, &cmn_rng_system, key, strlen(key), &blob, errmsg);
    if (rv == 0 && (rv = ca_b64_encode(blob.data, blob.len, &b64)) != 0)
        cmn_fail(errmsg, rv, "out of memory");
    if (rv == 0 && strlen(TOTP_PREFIX) + b64.len >= NODE_TOTP_STORED_MAX)
        rv = cmn_fail(errmsg, CMN_ETOOBIG, "the two-factor key is too long");
    if (rv == 0)
        snprintf(out, NODE_TOTP_STORED_MAX, TOTP_PREFIX "%s", (const char *)b64.data);
    else
        cmn_errctx(errmsg, "sealing the two-factor key");
    cmn_buf_fini(&blob);
    cmn_buf_fini(&b64);
    return rv;
}

/* The blob of a stored TOTP key (appended to blob) and the identifier of the master key that
 * sealed it: 0, CMN_ENOTFOUND for a key stored before sealing (no prefix), another error for
 * a prefix without a sealed blob behind it. */
static int totp_blob(const char *stored, struct cmn_buf *blob, uint8_t id[CA_SEAL_ID_SIZE],
                     char *errmsg)
{
    size_t plen = strlen(TOTP_PREFIX);
    if (strncmp(stored, TOTP_PREFIX, plen) != 0)
        return CMN_ENOTFOUND;
    int rv = ca_b64_decode(stored + plen, strlen(stored + plen), blob, errmsg);
    if (rv == 0 && (rv = ca_seal_key_id(blob->data, blob->len, id)) != 0)
        cmn_fail(errmsg, rv, "not a sealed key");
    return rv;
}

int node_totp_open(struct node *n, const char *stored, char *out, size_t cap, char *errmsg)
{
    struct cmn_buf blob, plain;
    cmn_buf_init(&blob, false);
    cmn_buf_init(&plain, true);
    uint8_t id[CA_SEAL_ID_SIZE];
    const struct ca_master_key *mk = NULL;
    int rv = totp_blob(stored, &blob, id, errmsg);
    if (rv == CMN_ENOTFOUND) { /* registered before keys were sealed */
        cmn_buf_fini(&blob);
        if (strlen(stored) >= cap)
            return cmn_fail(errmsg, CMN_ETOOBIG, "the two-factor key is too long");
        memcpy(out, stored, strlen(stored) + 1);
        return 0;
    }
    if (rv == 0 && (mk = key_by_id(n, id)) == NULL) {
        char have[CA_SEAL_ID_HEX], want[CA_SEAL_ID_HEX];
        ca_master_key_id_hex(n->mkeys[0].id, have);
        ca_master_key_id_hex(id, want);
        rv = cmn_fail(errmsg, CMN_EBADPASSWORD,
                      "sealed under master key %s, but this node's " KEY_MSG " holds key %s", want,
                      have);
    }
    if (rv == 0)
        rv = ca_seal_open(mk, CA_SEAL_TOTP, blob.data, blob.len, &plain, errmsg);
    if (rv == 0 && plain.len >= cap)
        rv = cmn_fail(errmsg, CMN_ETOOBIG, "the two-factor key is too long");
    if (rv == 0) {
        memcpy(out, plain.data, plain.len);
        out[plain.len] = '\0';
    } else {
        cmn_errctx(errmsg, "the two-factor key");
    }
    cmn_buf_fini(&blob);
    cmn_buf_fini(&plain);
    return rv;
}

/* ---- TOTP keys of a rotation ---- */

#define TOTP_BATCH     128   /* re-sealed per scan */
#define TOTP_RESCAN_MS 60000 /* between scans while a rotation is in progress */
#define TOTP_AGAIN_MS  1000  /* when the last scan found more than a batch */

/* Whether stored is sealed under the current master key. */
static bool totp_current(struct node *n, const char *stored)
{
    uint8_t id[CA_SEAL_ID_SIZE];
    struct cmn_buf blob;
    cmn_buf_init(&blob, false);
    bool cur =
        totp_blob(stored, &blob, id, NULL) == 0 && memcmp(id, n->mkeys[0].id, CA_SEAL_ID_SIZE) == 0;
    cmn_buf_fini(&blob);
    return cur;
}

struct totp_item {
    char thumb[KV_THUMB_LEN + 1];
    char *old_key, *new_key;
};

struct totp_job {
    uv_work_t work;
    struct node *n;
    struct kv_snap *snap;
    struct totp_item items[TOTP_BATCH];
    size_t n_items, pending;
    long older; /* all found, batched or not */
    int rv;
    char errmsg[CMN_ERRMSG_SIZE];
};

static int totp_item(void *ctx, const struct kv_cert *c)
{
    struct totp_job *j = ctx;
    if (c->twofa_key == NULL || totp_current(j->n, c->twofa_key))
        return 0;
    j->older++;
    if (j->n_items == TOTP_BATCH)
        return 0;
    char plain[CA_TOTP_MAX_B32 + 1], sealed[NODE_TOTP_STORED_MAX], err[CMN_ERRMSG_SIZE];
    /* Keys sealed under a master key this node lacks stay as they are (and fail closed). */
    if (node_totp_open(j->n, c->twofa_key, plain, sizeof plain, err) != 0)
        return 0;
    int rv = node_totp_seal(j->n, plain, sealed, err);
    OPENSSL_cleanse(plain, sizeof plain);
    if (rv != 0)
        return 0;
    struct totp_item *it = &j->items[j->n_items];
    memcpy(it->thumb, c->thumbprint, sizeof it->thumb);
    it->old_key = strdup(c->twofa_key);
    it->new_key = strdup(sealed);
    if (it->old_key == NULL || it->new_key == NULL) {
        free(it->old_key);
        free(it->new_key);
        return CMN_ENOMEM;
    }
    j->n_items++;
    return 0;
}

static void totp_work(uv_work_t *w)
{
    struct totp_job *j = w->data;
    j->rv = kv_snap_cert_each(j->snap, totp_item, j, j->errmsg);
}

static void totp_job_end(struct totp_job *j)
{
    struct node *n = j->n;
    n->totp_scanning = false;
    n->totp_scan_after_ms =
        cmn_now_ms(&cmn_clock_system) +
        ((size_t)j->older > j->n_items || j->rv != 0 ? TOTP_AGAIN_MS : TOTP_RESCAN_MS);
    for (size_t i = 0; i < j->n_items; i++) {
        free(j->items[i].old_key);
        free(j->items[i].new_key);
    }
    free(j);
}

static void totp_done(void *ctx, int status, const struct kv_result *res, const char *errmsg)
{
    struct totp_job *j = ctx;
    if (status != 0 || res->rejected)
        CMN_WARN("NODE-KEYS", "re-sealing a two-factor key: %s",
                 status != 0 ? errmsg : res->reason);
    if (--j->pending == 0)
        totp_job_end(j);
}

static void totp_after(uv_work_t *w, int status)
{
    struct totp_job *j = w->data;
    struct node *n = j->n;
    kv_snap_end(j->snap);
    if (status != 0 || j->rv != 0) {
        CMN_WARN("NODE-KEYS", "cannot scan the two-factor keys: %s",
                 status != 0 ? "the work was cancelled" : j->errmsg);
        totp_job_end(j);
        return;
    }
    n->totp_older = j->older;
    if (j->older > 0)
        CMN_INFO("NODE-KEYS",
                 "%ld two-factor keys sealed under an older master key: re-sealing %zu", j->older,
                 j->n_items);
    j->pending = 1; /* held until every proposal is made */
    for (size_t i = 0; i < j->n_items; i++) {
        struct kv_cmd cmd;
        char errmsg[CMN_ERRMSG_SIZE] = "";
        kv_cmd_init(&cmd, KV_CMD_RESEAL_TOTP);
        memcpy(cmd.u.reseal.thumbprint, j->items[i].thumb, sizeof cmd.u.reseal.thumbprint);
        cmd.u.reseal.old_key = j->items[i].old_key;
        cmd.u.reseal.new_key = j->items[i].new_key;
        j->items[i].old_key = j->items[i].new_key = NULL; /* the command's now */
        memcpy(cmd.actor, n->thumb, sizeof cmd.actor);
        cmd.actor_clearance = KV_CL_CLUSTER_NODE;
        j->pending++;
        if (node_propose(n, &cmd, totp_done, j, errmsg) != 0) {
            j->pending--;
            CMN_WARN("NODE-KEYS", "re-sealing a two-factor key: %s", errmsg);
        }
    }
    if (--j->pending == 0)
        totp_job_end(j);
}

void node_keys_reseal_totp(struct node *n)
{
    if (n->totp_scanning || (n->totp_scanned && n->n_mkeys < 2) ||
        cmn_now_ms(&cmn_clock_system) < n->totp_scan_after_ms)
        return;
    struct totp_job *j = calloc(1, sizeof *j);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (j == NULL)
        return;
    j->n = n;
    j->work.data = j;
    if (node_snapshot_job(n, &j->snap, &j->work, totp_work, totp_after, errmsg) != 0) {
        CMN_WARN("NODE-KEYS", "cannot scan the two-factor keys: %s", errmsg);
        free(j);
        return;
    }
    n->totp_scanning = true;
    n->totp_scanned = true;
}

void node_keys_totp_describe(struct node *n, char *out, size_t cap)
{
    if (n->totp_older < 0)
        snprintf(out, cap, "not checked here (the leader checks them)");
    else if (n->totp_older == 0)
        snprintf(out, cap, "all sealed under the current master key");
    else
        snprintf(out, cap, "%ld sealed under an older master key: being re-sealed", n->totp_older);
}

void node_keys_describe(struct node *n, const struct cmn_buf *blob, char *master, size_t mcap,
                        char *ca, size_t ccap)
{
    char id0[CA_SEAL_ID_HEX], id1[CA_SEAL_ID_HEX], id[CA_SEAL_ID_HEX];
    ca_master_key_id_hex(n->mkeys[0].id, id0);
    if (n->n_mkeys > 1) {
        ca_master_key_id_hex(n->mkeys[1].id, id1);
        snprintf(master, mcap, "%s (previous %s: a rotation is in progress)", id0, id1);
    } else {
        snprintf(master, mcap, "%s", id0);
    }
    if (blob == NULL) {
        snprintf(ca, ccap, "none");
        return;
    }
    switch (node_keys_issuing_state(n, blob, id)) {
    case NODE_CA_CLEAR:
        snprintf(ca, ccap, "not sealed (committed before encryption at rest)");
        break;
    case NODE_CA_CURRENT:
        snprintf(ca, ccap, "sealed under %s (this node's master key)", id);
        break;
    case NODE_CA_PREVIOUS:
        snprintf(ca, ccap, "sealed under %s (this node's previous master key)", id);
        break;
    case NODE_CA_FOREIGN:
        snprintf(ca, ccap, "sealed under %s (not a key of this node: it cannot issue)", id);
        break;
    }
}

/* ---- DataDir permissions ---- */

static int tighten_err;
static char tighten_path[PATH_MAX];

static int tighten_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag == FTW_SL || flag == FTW_SLN || (st->st_mode & 077) == 0)
        return 0;
    if (chmod(path, st->st_mode & 07700) != 0) {
        tighten_err = errno;
        snprintf(tighten_path, sizeof tighten_path, "%s", path);
        return 1;
    }
    return 0;
}

int node_keys_private_data_dir(const char *dir, char *errmsg)
{
    /* Files written before corvid-node set its umask (or by an older version, or restored from
     * a backup) are narrowed to owner-only on every start; from then on the umask keeps them so.
     * One loop thread at start: the static state is not shared. */
    tighten_err = 0;
    int rv = nftw(dir, tighten_one, 16, FTW_PHYS);
    if (rv != 0)
        return cmn_fail(errmsg, CMN_EIO, "DataDir: cannot make %s private to its owner: %s",
                        tighten_err ? tighten_path : dir,
                        strerror(tighten_err ? tighten_err : errno));
    return 0;
}
