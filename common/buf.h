/* Growable byte buffers and the one bounds-checked cursor used for parsing hostile bytes. */
#ifndef CORVID_COMMON_BUF_H
#define CORVID_COMMON_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* A heap buffer the struct owns. Zero-initialised is a valid empty buffer. When `secret` is set
 * the bytes are wiped before every free or move (private keys, TOTP secrets). */
struct cmn_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool secret;
};

void cmn_buf_init(struct cmn_buf *b, bool secret);
/* Frees the storage (wiping it first for secrets); the buffer is empty and reusable after. */
void cmn_buf_fini(struct cmn_buf *b);
int cmn_buf_reserve(struct cmn_buf *b, size_t extra) CMN_MUST_CHECK;
int cmn_buf_append(struct cmn_buf *b, const void *p, size_t n) CMN_MUST_CHECK;
int cmn_buf_append_str(struct cmn_buf *b, const char *s) CMN_MUST_CHECK;
int cmn_buf_printf(struct cmn_buf *b, const char *fmt, ...) CMN_PRINTF(2, 3) CMN_MUST_CHECK;
/* Appends zero bytes until len is a multiple of `align` (a power of two). */
int cmn_buf_pad(struct cmn_buf *b, size_t align) CMN_MUST_CHECK;
/* Hands the storage to the caller (free() it; wipe first if secret) and empties the buffer. */
uint8_t *cmn_buf_release(struct cmn_buf *b, size_t *len);

/* Wipes memory in a way the compiler may not elide. */
void cmn_cleanse(void *p, size_t n);
/* Wipes the whole heap block p (from malloc, calloc, realloc or strdup; NULL is a no-op) and
 * returns its usable size. The allocator knows the size, so that a free hook (jansson's, which
 * is never told the size) can wipe what it frees. */
size_t cmn_cleanse_alloc(void *p);
/* cmn_cleanse_alloc, then free: a drop-in for free() where the block may hold a secret. */
void cmn_free_wiped(void *p);

/* Read-only cursor over borrowed bytes. Every read checks bounds; a failed read returns
 * CMN_ETRUNCATED and leaves the cursor where it was. */
struct cmn_cur {
    const uint8_t *p;
    size_t len;
    size_t off;
};

static inline void cmn_cur_init(struct cmn_cur *c, const void *p, size_t len)
{
    c->p = p;
    c->len = len;
    c->off = 0;
}
static inline size_t cmn_cur_left(const struct cmn_cur *c)
{
    return c->len - c->off;
}
int cmn_cur_u8(struct cmn_cur *c, uint8_t *out) CMN_MUST_CHECK;
int cmn_cur_be64(struct cmn_cur *c, uint64_t *out) CMN_MUST_CHECK;
/* Points *out at the next n bytes (borrowed from the cursor's input). */
int cmn_cur_take(struct cmn_cur *c, size_t n, const uint8_t **out) CMN_MUST_CHECK;
/* Takes the next '\n'-terminated line: *line points at its bytes (borrowed), *n is its length
 * without the '\n' and without one '\r' before it. At most max bytes may come before the '\n'.
 * CMN_ETRUNCATED: no whole line yet, and what is there could still become one (read more).
 * CMN_ETOOBIG: the line is longer than max, whether or not its end has arrived; the cursor
 * cannot step over it, so the caller gives up on the input (or skips it itself). */
int cmn_cur_line(struct cmn_cur *c, size_t max, const uint8_t **line, size_t *n) CMN_MUST_CHECK;

/* Big-endian u64, used for ordered RocksDB keys. */
void cmn_be64_put(uint8_t out[8], uint64_t v);
uint64_t cmn_be64_get(const uint8_t in[8]);

/* Hex: out must hold 2*n+1 bytes. */
void cmn_hex_upper(const uint8_t *p, size_t n, char *out);
void cmn_hex_lower(const uint8_t *p, size_t n, char *out);
/* Lower-cases ASCII in place. */
void cmn_ascii_lower(char *s);
/* True when s is exactly n hex digits (either case). */
bool cmn_is_hex(const char *s, size_t n);

#endif
