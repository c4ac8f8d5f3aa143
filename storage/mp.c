/* Strict msgpack field decoding and packing shortcuts for storage/ records and commands. */
#include "storage/mp.h"

#include <stdlib.h>
#include <string.h>

#include "storage/model.h"

int kv__field(const msgpack_object *k, const char *const *names, int n)
{
    if (k->type != MSGPACK_OBJECT_STR)
        return -1;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (k->via.str.size == len && memcmp(k->via.str.ptr, names[i], len) == 0)
            return i;
    }
    return -1;
}

int kv__walk_map(const msgpack_object *o, const char *what, const char *const *names, int n,
                 uint64_t required, kv__field_cb fn, void *ctx, char *errmsg)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return cmn_fail(errmsg, CMN_EMALFORMED, "%s: expected a map", what);
    uint64_t seen = 0;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        int f = kv__field(&kv->key, names, n);
        if (f < 0)
            return cmn_fail(errmsg, CMN_EMALFORMED, "%s: unknown field", what);
        if (seen & (1ull << f))
            return cmn_fail(errmsg, CMN_EMALFORMED, "%s: field '%s' given twice", what, names[f]);
        seen |= 1ull << f;
        int rv = fn(ctx, f, &kv->val, errmsg);
        if (rv != 0) {
            cmn_errctx(errmsg, "%s", what);
            return rv;
        }
    }
    uint64_t missing = required & ~seen;
    if (missing) {
        int f = __builtin_ctzll(missing);
        return cmn_fail(errmsg, CMN_EMALFORMED, "%s: missing field '%s'", what, names[f]);
    }
    return 0;
}

static int type_error(char *errmsg, const char *field, const char *want)
{
    return cmn_fail(errmsg, CMN_EMALFORMED, "field '%s': expected %s", field, want);
}

int kv__get_str(const msgpack_object *o, const char *field, size_t max, char **out, char *errmsg)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return type_error(errmsg, field, "a string");
    size_t n = o->via.str.size;
    if (n > max)
        return cmn_fail(errmsg, CMN_ETOOBIG, "field '%s': longer than %zu bytes", field, max);
    if (memchr(o->via.str.ptr, '\0', n) != NULL)
        return cmn_fail(errmsg, CMN_EMALFORMED, "field '%s': contains a NUL byte", field);
    char *s = malloc(n + 1);
    if (s == NULL)
        return CMN_ENOMEM;
    memcpy(s, o->via.str.ptr, n);
    s[n] = '\0';
    free(*out);
    *out = s;
    return 0;
}

int kv__get_strbuf(const msgpack_object *o, const char *field, char *out, size_t cap, char *errmsg)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return type_error(errmsg, field, "a string");
    size_t n = o->via.str.size;
    if (n >= cap)
        return cmn_fail(errmsg, CMN_ETOOBIG, "field '%s': longer than %zu bytes", field, cap - 1);
    if (memchr(o->via.str.ptr, '\0', n) != NULL)
        return cmn_fail(errmsg, CMN_EMALFORMED, "field '%s': contains a NUL byte", field);
    memcpy(out, o->via.str.ptr, n);
    out[n] = '\0';
    return 0;
}

int kv__get_binbuf(const msgpack_object *o, const char *field, uint8_t *out, size_t size,
                   char *errmsg)
{
    if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != size)
        return cmn_fail(errmsg, CMN_EMALFORMED, "field '%s': expected %zu bytes", field, size);
    memcpy(out, o->via.bin.ptr, size);
    return 0;
}

int kv__get_bin(const msgpack_object *o, const char *field, size_t max, uint8_t **out, size_t *len,
                char *errmsg)
{
    if (o->type != MSGPACK_OBJECT_BIN)
        return type_error(errmsg, field, "bytes");
    size_t n = o->via.bin.size;
    if (n > max)
        return cmn_fail(errmsg, CMN_ETOOBIG, "field '%s': longer than %zu bytes", field, max);
    uint8_t *p = malloc(n ? n : 1);
    if (p == NULL)
        return CMN_ENOMEM;
    if (n)
        memcpy(p, o->via.bin.ptr, n);
    free(*out);
    *out = p;
    *len = n;
    return 0;
}

int kv__get_i64(const msgpack_object *o, const char *field, int64_t *out, char *errmsg)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *out = (int64_t)o->via.u64;
        return 0;
    }
    return type_error(errmsg, field, "a 64-bit integer");
}

int kv__get_u64(const msgpack_object *o, const char *field, uint64_t *out, char *errmsg)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return type_error(errmsg, field, "an unsigned integer");
    *out = o->via.u64;
    return 0;
}

int kv__get_bool(const msgpack_object *o, const char *field, bool *out, char *errmsg)
{
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return type_error(errmsg, field, "a boolean");
    *out = o->via.boolean;
    return 0;
}

int kv__get_array(const msgpack_object *o, const char *field, size_t max,
                  const msgpack_object_array **out, char *errmsg)
{
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return type_error(errmsg, field, "an array");
    if (o->via.array.size > max)
        return cmn_fail(errmsg, CMN_ETOOBIG, "field '%s': more than %zu items", field, max);
    *out = &o->via.array;
    return 0;
}

int kv__get_strarray(const msgpack_object *o, const char *field, size_t max_n, size_t cap,
                     void *outp, size_t *n, char *errmsg)
{
    const msgpack_object_array *a = NULL;
    int rv = kv__get_array(o, field, max_n, &a, errmsg);
    if (rv != 0)
        return rv;
    char *items = calloc(a->size ? a->size : 1, cap);
    if (items == NULL)
        return CMN_ENOMEM;
    for (uint32_t i = 0; i < a->size; i++) {
        rv = kv__get_strbuf(&a->ptr[i], field, items + i * cap, cap, errmsg);
        if (rv != 0) {
            free(items);
            return rv;
        }
    }
    char *old;
    memcpy(&old, outp, sizeof old);
    free(old);
    memcpy(outp, &items, sizeof items);
    *n = a->size;
    return 0;
}

#define PK(expr)                                                                                   \
    do {                                                                                           \
        if ((expr) != 0)                                                                           \
            return CMN_ENOMEM;                                                                     \
    } while (0)

int kv__pk_key(msgpack_packer *pk, const char *k)
{
    PK(msgpack_pack_str_with_body(pk, k, strlen(k)));
    return 0;
}

int kv__pk_str(msgpack_packer *pk, const char *k, const char *v)
{
    PK(kv__pk_key(pk, k));
    PK(msgpack_pack_str_with_body(pk, v, strlen(v)));
    return 0;
}

int kv__pk_bin(msgpack_packer *pk, const char *k, const void *v, size_t n)
{
    PK(kv__pk_key(pk, k));
    PK(msgpack_pack_bin_with_body(pk, v, n));
    return 0;
}

int kv__pk_i64(msgpack_packer *pk, const char *k, int64_t v)
{
    PK(kv__pk_key(pk, k));
    PK(msgpack_pack_int64(pk, v));
    return 0;
}

int kv__pk_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
    PK(kv__pk_key(pk, k));
    PK(msgpack_pack_uint64(pk, v));
    return 0;
}

int kv__pk_bool(msgpack_packer *pk, const char *k, bool v)
{
    PK(kv__pk_key(pk, k));
    PK(v ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
    return 0;
}

int kv__pk_strarray(msgpack_packer *pk, const char *k, const char *first, size_t n, size_t stride)
{
    PK(kv__pk_key(pk, k));
    PK(msgpack_pack_array(pk, n));
    for (size_t i = 0; i < n; i++) {
        const char *s = first + i * stride;
        PK(msgpack_pack_str_with_body(pk, s, strlen(s)));
    }
    return 0;
}

static int buf_write(void *data, const char *p, size_t n)
{
    return cmn_buf_append(data, p, n) == 0 ? 0 : -1;
}

void kv_packer_init(msgpack_packer *pk, struct cmn_buf *out)
{
    msgpack_packer_init(pk, out, buf_write);
}

/* Reads a big-endian unsigned of n bytes at p. */
static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

int kv_mp_precheck(const uint8_t *p, size_t len, int max_depth, size_t *used)
{
    /* pending[d] = values still to read at depth d. Sizes are checked against what is left so
     * that no declared length can make msgpack-c allocate more than the input could fill. */
    uint64_t pending[33];
    if (max_depth < 1 || max_depth > 32)
        return CMN_EINVALID;
    int depth = 0;
    pending[0] = 1;
    size_t off = 0;
    while (depth >= 0) {
        if (pending[depth] == 0) {
            depth--;
            continue;
        }
        pending[depth]--;
        if (off >= len)
            return CMN_ETRUNCATED;
        uint8_t t = p[off++];
        uint64_t body = 0, items = 0;
        int hdr = 0;
        if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
            /* fixint, nil, bool */
        } else if (t >= 0x80 && t <= 0x8f) {
            items = 2ull * (t & 0x0f);
        } else if (t >= 0x90 && t <= 0x9f) {
            items = t & 0x0f;
        } else if (t >= 0xa0 && t <= 0xbf) {
            body = t & 0x1f;
        } else {
            switch (t) {
            case 0xc4:
            case 0xd9:
                hdr = 1;
                break; /* bin8, str8 */
            case 0xc5:
            case 0xda:
                hdr = 2;
                break; /* bin16, str16 */
            case 0xc6:
            case 0xdb:
                hdr = 4;
                break; /* bin32, str32 */
            case 0xc7:
                hdr = 1;
                body = 1;
                break; /* ext8: len + type */
            case 0xc8:
                hdr = 2;
                body = 1;
                break;
            case 0xc9:
                hdr = 4;
                body = 1;
                break;
            case 0xca:
            case 0xce:
            case 0xd2:
                body = 4;
                break;
            case 0xcb:
            case 0xcf:
            case 0xd3:
                body = 8;
                break;
            case 0xcc:
            case 0xd0:
                body = 1;
                break;
            case 0xcd:
            case 0xd1:
                body = 2;
                break;
            case 0xd4:
                body = 2;
                break; /* fixext */
            case 0xd5:
                body = 3;
                break;
            case 0xd6:
                body = 5;
                break;
            case 0xd7:
                body = 9;
                break;
            case 0xd8:
                body = 17;
                break;
            case 0xdc:
                hdr = 2;
                items = 1;
                break; /* array16/32, map16/32: count follows */
            case 0xdd:
                hdr = 4;
                items = 1;
                break;
            case 0xde:
                hdr = 2;
                items = 2;
                break;
            case 0xdf:
                hdr = 4;
                items = 2;
                break;
            default:
                return CMN_EMALFORMED; /* 0xc1 is never used */
            }
            if (hdr) {
                if (len - off < (size_t)hdr)
                    return CMN_ETRUNCATED;
                uint64_t n = be(p + off, hdr);
                off += (size_t)hdr;
                if (items)
                    items *= n;
                else
                    body += n;
            }
        }
        if (body > len - off)
            return CMN_ETRUNCATED;
        off += (size_t)body;
        if (items) {
            if (items > len - off)
                return CMN_ETRUNCATED; /* every item takes at least one byte */
            if (depth + 1 >= max_depth)
                return CMN_EMALFORMED;
            pending[++depth] = items;
        }
    }
    *used = off;
    return 0;
}

int kv_mp_unpack(const void *p, size_t len, msgpack_unpacked *out, char *errmsg)
{
    size_t used = 0;
    int rv = kv_mp_precheck(p, len, 8, &used);
    if (rv != 0)
        return cmn_fail(errmsg, rv, "msgpack: %s", cmn_strerror(rv));
    if (used != len)
        return cmn_fail(errmsg, CMN_EMALFORMED, "msgpack: %zu trailing bytes", len - used);
    msgpack_unpacked_init(out);
    size_t off = 0;
    msgpack_unpack_return r = msgpack_unpack_next(out, p, len, &off);
    if (r != MSGPACK_UNPACK_SUCCESS || off != len) {
        msgpack_unpacked_destroy(out);
        return cmn_fail(errmsg, r == MSGPACK_UNPACK_NOMEM_ERROR ? CMN_ENOMEM : CMN_EMALFORMED,
                        "msgpack: cannot decode");
    }
    return 0;
}
