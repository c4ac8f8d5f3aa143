/* Internal msgpack helpers of storage/ (strict field decoding, packing shortcuts). */
#ifndef CORVID_STORAGE_MP_H
#define CORVID_STORAGE_MP_H

#include <stdbool.h>
#include <stdint.h>

#include <msgpack.h>

#include "common/buf.h"
#include "common/err.h"

/* Returns from the enclosing function when expr fails. */
#define TRY(expr)                                                                                  \
    do {                                                                                           \
        int rv_ = (expr);                                                                          \
        if (rv_ != 0)                                                                              \
            return rv_;                                                                            \
    } while (0)

/* Index of key k in names[0..n), or -1. */
int kv__field(const msgpack_object *k, const char *const *names, int n);
/* Walks a map strictly: each key must be in names, none twice. For each pair calls
 * fn(ctx, field_index, value, errmsg). All fields whose bit is set in `required` must appear. */
typedef int (*kv__field_cb)(void *ctx, int field, const msgpack_object *v, char *errmsg);
int kv__walk_map(const msgpack_object *o, const char *what, const char *const *names, int n,
                 uint64_t required, kv__field_cb fn, void *ctx, char *errmsg) CMN_MUST_CHECK;

int kv__get_str(const msgpack_object *o, const char *field, size_t max, char **out,
                char *errmsg) CMN_MUST_CHECK;
int kv__get_strbuf(const msgpack_object *o, const char *field, char *out, size_t cap,
                   char *errmsg) CMN_MUST_CHECK;
/* Exactly size bytes into out (a digest); CMN_EMALFORMED for any other length or type. */
int kv__get_binbuf(const msgpack_object *o, const char *field, uint8_t *out, size_t size,
                   char *errmsg) CMN_MUST_CHECK;
int kv__get_bin(const msgpack_object *o, const char *field, size_t max, uint8_t **out, size_t *len,
                char *errmsg) CMN_MUST_CHECK;
int kv__get_i64(const msgpack_object *o, const char *field, int64_t *out,
                char *errmsg) CMN_MUST_CHECK;
int kv__get_u64(const msgpack_object *o, const char *field, uint64_t *out,
                char *errmsg) CMN_MUST_CHECK;
int kv__get_bool(const msgpack_object *o, const char *field, bool *out,
                 char *errmsg) CMN_MUST_CHECK;
int kv__get_array(const msgpack_object *o, const char *field, size_t max,
                  const msgpack_object_array **out, char *errmsg) CMN_MUST_CHECK;
/* An array of fixed-size strings (thumbprints, tags): allocates n entries of `cap` bytes and
 * stores the pointer in the pointer variable at outp (any `char (*)[cap]`), freeing its old value.
 */
int kv__get_strarray(const msgpack_object *o, const char *field, size_t max_n, size_t cap,
                     void *outp, size_t *n, char *errmsg) CMN_MUST_CHECK;

/* Packing: each returns 0 or CMN_ENOMEM. */
int kv__pk_key(msgpack_packer *pk, const char *k) CMN_MUST_CHECK;
int kv__pk_str(msgpack_packer *pk, const char *k, const char *v) CMN_MUST_CHECK;
int kv__pk_bin(msgpack_packer *pk, const char *k, const void *v, size_t n) CMN_MUST_CHECK;
int kv__pk_i64(msgpack_packer *pk, const char *k, int64_t v) CMN_MUST_CHECK;
int kv__pk_u64(msgpack_packer *pk, const char *k, uint64_t v) CMN_MUST_CHECK;
int kv__pk_bool(msgpack_packer *pk, const char *k, bool v) CMN_MUST_CHECK;
/* Packs n fixed-size strings laid out `stride` bytes apart as an array under key k. */
int kv__pk_strarray(msgpack_packer *pk, const char *k, const char *first, size_t n,
                    size_t stride) CMN_MUST_CHECK;

/* Permissions as an array of [db, access] pairs under key "perms". */
struct kv_perm;
int kv__perms_pack(msgpack_packer *pk, const struct kv_perm *perms, size_t n) CMN_MUST_CHECK;
int kv__perms_unpack(const msgpack_object *v, struct kv_perm **perms, size_t *n,
                     char *errmsg) CMN_MUST_CHECK;

#endif
