/* Byte buffers, the parsing cursor, hex and big-endian helpers. */
#include "common/buf.h"

#include <ctype.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cmn_cleanse(void *p, size_t n)
{
    if (p == NULL || n == 0)
        return;
    volatile uint8_t *v = p;
    while (n--)
        *v++ = 0;
}

size_t cmn_cleanse_alloc(void *p)
{
    if (p == NULL)
        return 0;
    /* glibc's (and ASan's) malloc_usable_size is at least what was asked for and all of it is
     * ours to write until the free. */
    size_t n = malloc_usable_size(p);
    cmn_cleanse(p, n);
    return n;
}

void cmn_free_wiped(void *p)
{
    cmn_cleanse_alloc(p);
    free(p);
}

void cmn_buf_init(struct cmn_buf *b, bool secret)
{
    memset(b, 0, sizeof *b);
    b->secret = secret;
}

void cmn_buf_fini(struct cmn_buf *b)
{
    if (b->secret)
        cmn_cleanse(b->data, b->cap);
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int cmn_buf_reserve(struct cmn_buf *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->len)
        return CMN_ETOOBIG;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    uint8_t *p = malloc(cap);
    if (p == NULL)
        return CMN_ENOMEM;
    if (b->len)
        memcpy(p, b->data, b->len);
    if (b->secret)
        cmn_cleanse(b->data, b->cap);
    free(b->data);
    b->data = p;
    b->cap = cap;
    return 0;
}

int cmn_buf_append(struct cmn_buf *b, const void *p, size_t n)
{
    int rv = cmn_buf_reserve(b, n + 1);
    if (rv != 0)
        return rv;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0; /* always NUL-terminated for text users */
    return 0;
}

int cmn_buf_append_str(struct cmn_buf *b, const char *s)
{
    return cmn_buf_append(b, s, strlen(s));
}

int cmn_buf_printf(struct cmn_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return CMN_EINVALID;
    int rv = cmn_buf_reserve(b, (size_t)n + 1);
    if (rv != 0)
        return rv;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int cmn_buf_pad(struct cmn_buf *b, size_t align)
{
    static const uint8_t zeros[64];
    size_t pad = (align - (b->len & (align - 1))) & (align - 1);
    return cmn_buf_append(b, zeros, pad);
}

uint8_t *cmn_buf_release(struct cmn_buf *b, size_t *len)
{
    uint8_t *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

int cmn_cur_u8(struct cmn_cur *c, uint8_t *out)
{
    if (cmn_cur_left(c) < 1)
        return CMN_ETRUNCATED;
    *out = c->p[c->off++];
    return 0;
}

int cmn_cur_be64(struct cmn_cur *c, uint64_t *out)
{
    if (cmn_cur_left(c) < 8)
        return CMN_ETRUNCATED;
    *out = cmn_be64_get(c->p + c->off);
    c->off += 8;
    return 0;
}

int cmn_cur_take(struct cmn_cur *c, size_t n, const uint8_t **out)
{
    if (cmn_cur_left(c) < n)
        return CMN_ETRUNCATED;
    *out = c->p + c->off;
    c->off += n;
    return 0;
}

int cmn_cur_line(struct cmn_cur *c, size_t max, const uint8_t **line, size_t *n)
{
    size_t left = cmn_cur_left(c);
    if (left == 0)
        return CMN_ETRUNCATED;
    /* The '\n' of an acceptable line is among the first max + 1 bytes: never scan further,
     * so that a flood without newlines costs no more than one bounded look. */
    size_t window = left <= max ? left : max + 1;
    const uint8_t *start = c->p + c->off;
    const uint8_t *nl = memchr(start, '\n', window);
    if (nl == NULL)
        return left > max ? CMN_ETOOBIG : CMN_ETRUNCATED;
    size_t len = (size_t)(nl - start);
    c->off += len + 1;
    if (len > 0 && start[len - 1] == '\r')
        len--;
    *line = start;
    *n = len;
    return 0;
}

void cmn_be64_put(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

uint64_t cmn_be64_get(const uint8_t in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

static void hex(const uint8_t *p, size_t n, char *out, const char *digits)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void cmn_hex_upper(const uint8_t *p, size_t n, char *out)
{
    hex(p, n, out, "0123456789ABCDEF");
}

void cmn_hex_lower(const uint8_t *p, size_t n, char *out)
{
    hex(p, n, out, "0123456789abcdef");
}

void cmn_ascii_lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

bool cmn_is_hex(const char *s, size_t n)
{
    size_t i = 0;
    for (; s[i]; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return i == n;
}
