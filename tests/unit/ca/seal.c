/* Unit tests of ca/seal: sealing secrets under the master key, and every way opening must fail
 * closed (wrong key, altered or truncated blob, wrong purpose). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ca/seal.h"
#include "common/env.h"

static uint64_t rng_state = 7;
static const struct cmn_rng rng = {cmn_rng_counter_fill, &rng_state};

static int fixed_fill(void *ctx, void *buf, size_t n)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(0xa0 + i);
    (void)ctx;
    return 0;
}
static const struct cmn_rng fixed_rng = {fixed_fill, NULL};

static int failing_fill(void *ctx, void *buf, size_t n)
{
    (void)ctx;
    (void)buf;
    (void)n;
    return CMN_EIO;
}
static const struct cmn_rng failing_rng = {failing_fill, NULL};

static void key_of(uint8_t first, struct ca_master_key *mk)
{
    uint8_t b[CA_MASTER_KEY_SIZE];
    for (size_t i = 0; i < sizeof b; i++)
        b[i] = (uint8_t)(first + i);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(ca_master_key_init(mk, b, sizeof b, errmsg), 0);
}

static void seal(const struct ca_master_key *mk, const char *purpose, const void *p, size_t n,
                 struct cmn_buf *out)
{
    char errmsg[CMN_ERRMSG_SIZE] = "";
    cmn_buf_init(out, false);
    int rv = ca_seal(mk, purpose, &rng, p, n, out, errmsg);
    if (rv != 0)
        fail_msg("ca_seal: %d %s", rv, errmsg);
}

/* Opening must fail with `code`, leave out as it was, and say something. */
static void open_fails(const struct ca_master_key *mk, const char *purpose, const uint8_t *blob,
                       size_t len, int code)
{
    struct cmn_buf out;
    cmn_buf_init(&out, true);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    int rv = ca_seal_open(mk, purpose, blob, len, &out, errmsg);
    if (rv != code)
        fail_msg("ca_seal_open(len %zu): got %d (%s), want %d", len, rv, errmsg, code);
    assert_int_equal(out.len, 0);
    assert_true(errmsg[0] != '\0');
    cmn_buf_fini(&out);
}

static void round_trip(void **state)
{
    (void)state;
    struct ca_master_key mk;
    key_of(0, &mk);
    static const size_t sizes[] = {0, 1, 31, 121, 4096, CA_SEAL_MAX};
    static uint8_t plain[CA_SEAL_MAX];
    for (size_t i = 0; i < sizeof plain; i++)
        plain[i] = (uint8_t)(i * 31 + 7);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        struct cmn_buf a, b, out;
        seal(&mk, CA_SEAL_ISSUING_CA, plain, n, &a);
        seal(&mk, CA_SEAL_ISSUING_CA, plain, n, &b);
        assert_int_equal(a.len, n + CA_SEAL_OVERHEAD);
        /* a fresh nonce every time: the same secret never gives the same blob */
        assert_true(memcmp(a.data, b.data, a.len) != 0);
        if (n >= 16)
            assert_null(memmem(a.data, a.len, plain, 16)); /* no clear text in the blob */
        assert_true(ca_seal_sniff(a.data, a.len));
        uint8_t id[CA_SEAL_ID_SIZE];
        assert_int_equal(ca_seal_key_id(a.data, a.len, id), 0);
        assert_memory_equal(id, mk.id, sizeof id);

        cmn_buf_init(&out, true);
        assert_int_equal(cmn_buf_append(&out, "pre", 3), 0); /* appends */
        char errmsg[CMN_ERRMSG_SIZE] = "";
        int rv = ca_seal_open(&mk, CA_SEAL_ISSUING_CA, a.data, a.len, &out, errmsg);
        if (rv != 0)
            fail_msg("open %zu: %s", n, errmsg);
        assert_int_equal(out.len, 3 + n);
        assert_memory_equal(out.data, "pre", 3);
        if (n)
            assert_memory_equal(out.data + 3, plain, n);
        cmn_buf_fini(&out);
        cmn_buf_fini(&a);
        cmn_buf_fini(&b);
    }
    ca_master_key_fini(&mk);
}

/* The format is fixed: a blob made by an independent implementation of README's description
 * (Python's hmac and cryptography's AESGCM) opens, and sealing with the same nonce gives it. */
static void known_answer(void **state)
{
    (void)state;
    static const uint8_t want[] = {
        0x43, 0x56, 0x53, 0x4c, 0x01, 0xf9, 0x51, 0xdb, 0x49, 0xf3, 0x6b, 0x9e,
        0xec, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa,
        0xab, 0xc1, 0x9d, 0x71, 0x7f, 0x7c, 0x4e, 0xca, 0xa0, 0xb9, 0x54, 0x0e,
        0x3c, 0x8e, 0x77, 0x09, 0x56, 0x22, 0x7a, 0xdd, 0x63, 0x8a, 0xdb,
    };
    struct ca_master_key mk;
    key_of(0, &mk);
    char hex[CA_SEAL_ID_HEX];
    ca_master_key_id_hex(mk.id, hex);
    assert_string_equal(hex, "f951db49f36b9eec");
    struct cmn_buf out;
    cmn_buf_init(&out, false);
    assert_int_equal(ca_seal(&mk, CA_SEAL_ISSUING_CA, &fixed_rng, "corvid", 6, &out, NULL), 0);
    assert_int_equal(out.len, sizeof want);
    assert_memory_equal(out.data, want, sizeof want);
    cmn_buf_fini(&out);
    cmn_buf_init(&out, true);
    assert_int_equal(ca_seal_open(&mk, CA_SEAL_ISSUING_CA, want, sizeof want, &out, NULL), 0);
    assert_int_equal(out.len, 6);
    assert_memory_equal(out.data, "corvid", 6);
    cmn_buf_fini(&out);
    ca_master_key_fini(&mk);
}

static void wrong_key(void **state)
{
    (void)state;
    struct ca_master_key mk, other;
    key_of(0, &mk);
    key_of(1, &other);
    assert_true(memcmp(mk.id, other.id, CA_SEAL_ID_SIZE) != 0);
    struct cmn_buf a;
    seal(&mk, CA_SEAL_ISSUING_CA, "private key bytes", 17, &a);
    open_fails(&other, CA_SEAL_ISSUING_CA, a.data, a.len, CMN_EBADPASSWORD);
    /* the message names both keys, by identifier only */
    char errmsg[CMN_ERRMSG_SIZE] = "", h1[CA_SEAL_ID_HEX], h2[CA_SEAL_ID_HEX];
    struct cmn_buf out;
    cmn_buf_init(&out, true);
    assert_int_equal(ca_seal_open(&other, CA_SEAL_ISSUING_CA, a.data, a.len, &out, errmsg),
                     CMN_EBADPASSWORD);
    ca_master_key_id_hex(mk.id, h1);
    ca_master_key_id_hex(other.id, h2);
    assert_non_null(strstr(errmsg, h1));
    assert_non_null(strstr(errmsg, h2));
    cmn_buf_fini(&out);
    /* a header relabelled with the other key's identifier still does not open under it */
    memcpy(a.data + 5, other.id, CA_SEAL_ID_SIZE);
    open_fails(&other, CA_SEAL_ISSUING_CA, a.data, a.len, CMN_EBADSIG);
    /* nor under the right key any more: the identifier is authenticated */
    open_fails(&mk, CA_SEAL_ISSUING_CA, a.data, a.len, CMN_EBADPASSWORD);
    cmn_buf_fini(&a);
    ca_master_key_fini(&mk);
    ca_master_key_fini(&other);
}

/* Every single bit flipped anywhere in the blob is refused, with the code for that part. */
static void tampered(void **state)
{
    (void)state;
    struct ca_master_key mk;
    key_of(0, &mk);
    struct cmn_buf a;
    seal(&mk, CA_SEAL_ISSUING_CA, "0123456789abcdef0123456789abcdef", 32, &a);
    for (size_t i = 0; i < a.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            a.data[i] ^= (uint8_t)(1u << bit);
            int code = i < 4    ? CMN_EMALFORMED   /* magic */
                       : i == 4 ? CMN_EUNSUPPORTED /* version */
                       : i < 13 ? CMN_EBADPASSWORD /* key identifier */
                                : CMN_EBADSIG;     /* nonce, ciphertext, tag */
            open_fails(&mk, CA_SEAL_ISSUING_CA, a.data, a.len, code);
            a.data[i] ^= (uint8_t)(1u << bit);
        }
    }
    /* a byte added at the end is not ignored */
    assert_int_equal(cmn_buf_append(&a, "", 1), 0);
    open_fails(&mk, CA_SEAL_ISSUING_CA, a.data, a.len, CMN_EBADSIG);
    cmn_buf_fini(&a);
    ca_master_key_fini(&mk);
}

static void truncated(void **state)
{
    (void)state;
    struct ca_master_key mk;
    key_of(0, &mk);
    struct cmn_buf a;
    seal(&mk, CA_SEAL_ISSUING_CA, "0123456789abcdef0123456789abcdef", 32, &a);
    for (size_t len = 0; len < a.len; len++) {
        int code =
            len < CA_SEAL_OVERHEAD ? CMN_ETRUNCATED : CMN_EBADSIG; /* part of the ciphertext gone */
        open_fails(&mk, CA_SEAL_ISSUING_CA, a.data, len, code);
    }
    uint8_t id[CA_SEAL_ID_SIZE];
    assert_int_equal(ca_seal_key_id(a.data, 12, id), CMN_ETRUNCATED);
    assert_false(ca_seal_sniff(a.data, 4));
    cmn_buf_fini(&a);
    ca_master_key_fini(&mk);
}

static void wrong_purpose(void **state)
{
    (void)state;
    struct ca_master_key mk;
    key_of(0, &mk);
    struct cmn_buf a;
    seal(&mk, CA_SEAL_ISSUING_CA, "secret", 6, &a);
    open_fails(&mk, "corvid totp key v1", a.data, a.len, CMN_EBADSIG);
    open_fails(&mk, "corvid issuing-ca key v2", a.data, a.len, CMN_EBADSIG);
    open_fails(&mk, "corvid issuing-ca key v", a.data, a.len, CMN_EBADSIG);
    open_fails(&mk, "", a.data, a.len, CMN_EINVALID);
    open_fails(&mk, NULL, a.data, a.len, CMN_EINVALID);
    /* a plaintext secret never goes into a buffer that is not wiped */
    struct cmn_buf plain;
    cmn_buf_init(&plain, false);
    assert_int_equal(ca_seal_open(&mk, CA_SEAL_ISSUING_CA, a.data, a.len, &plain, NULL),
                     CMN_EINVALID);
    assert_int_equal(plain.len, 0);
    cmn_buf_fini(&plain);
    cmn_buf_fini(&a);
    ca_master_key_fini(&mk);
}

static void not_sealed(void **state)
{
    (void)state;
    struct ca_master_key mk;
    key_of(0, &mk);
    /* what the trust state held before sealing: a clear DER private key */
    static const uint8_t der[] = {
        0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
        0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
        0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66};
    assert_false(ca_seal_sniff(der, sizeof der));
    open_fails(&mk, CA_SEAL_ISSUING_CA, der, sizeof der, CMN_EMALFORMED);
    uint8_t id[CA_SEAL_ID_SIZE];
    assert_int_equal(ca_seal_key_id(der, sizeof der, id), CMN_EMALFORMED);
    ca_master_key_fini(&mk);
}

static void seal_errors(void **state)
{
    (void)state;
    struct ca_master_key mk;
    key_of(0, &mk);
    struct cmn_buf out;
    cmn_buf_init(&out, false);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(ca_seal(&mk, CA_SEAL_ISSUING_CA, &failing_rng, "x", 1, &out, errmsg), CMN_EIO);
    assert_int_equal(out.len, 0);
    static uint8_t big[CA_SEAL_MAX + 1];
    assert_int_equal(ca_seal(&mk, CA_SEAL_ISSUING_CA, &rng, big, sizeof big, &out, errmsg),
                     CMN_ETOOBIG);
    assert_int_equal(ca_seal(&mk, "", &rng, "x", 1, &out, errmsg), CMN_EINVALID);
    assert_int_equal(out.len, 0);
    cmn_buf_fini(&out);
    ca_master_key_fini(&mk);
}

static void key_file(void **state)
{
    (void)state;
    uint8_t bytes[3 * CA_MASTER_KEY_SIZE];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)i;
    struct ca_master_key keys[CA_MASTER_KEYS_MAX], one, two;
    size_t n = 99;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(ca_master_keys_parse(bytes, 32, keys, &n, errmsg), 0);
    assert_int_equal(n, 1);
    key_of(0, &one);
    key_of(32, &two);
    assert_memory_equal(keys[0].id, one.id, CA_SEAL_ID_SIZE);
    assert_memory_equal(keys[0].aead, one.aead, sizeof one.aead);
    ca_master_key_fini(&keys[0]);
    /* during a rotation: the current key first, then the previous one */
    assert_int_equal(ca_master_keys_parse(bytes, 64, keys, &n, errmsg), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(keys[0].id, one.id, CA_SEAL_ID_SIZE);
    assert_memory_equal(keys[1].id, two.id, CA_SEAL_ID_SIZE);
    ca_master_key_fini(&keys[0]);
    ca_master_key_fini(&keys[1]);
    /* the key bytes are not used as the AES key, and the identifier differs from both */
    assert_true(memcmp(one.aead, bytes, 32) != 0);
    assert_true(memcmp(one.id, bytes, CA_SEAL_ID_SIZE) != 0);
    static const size_t bad[] = {0, 1, 16, 31, 33, 63, 65, 96};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = 99;
        errmsg[0] = '\0';
        assert_int_equal(ca_master_keys_parse(bytes, bad[i], keys, &n, errmsg), CMN_EINVALID);
        assert_int_equal(n, 0);
        char want[32];
        snprintf(want, sizeof want, "holds %zu bytes", bad[i]);
        assert_non_null(strstr(errmsg, want));
    }
    uint8_t twice[64];
    memcpy(twice, bytes, 32);
    memcpy(twice + 32, bytes, 32);
    assert_int_equal(ca_master_keys_parse(twice, 64, keys, &n, errmsg), CMN_EINVALID);
    assert_int_equal(ca_master_key_init(&one, bytes, 31, errmsg), CMN_EINVALID);
    ca_master_key_fini(&one);
    ca_master_key_fini(&two);
}

/* A blob sealed under the previous key of a rotation opens with that key only. */
static void rotation(void **state)
{
    (void)state;
    uint8_t bytes[64];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)(200 - i);
    struct ca_master_key keys[CA_MASTER_KEYS_MAX];
    size_t n;
    assert_int_equal(ca_master_keys_parse(bytes + 32, 32, keys, &n, NULL), 0);
    struct cmn_buf old;
    seal(&keys[0], CA_SEAL_ISSUING_CA, "ca key", 6, &old);
    ca_master_key_fini(&keys[0]);
    assert_int_equal(ca_master_keys_parse(bytes, 64, keys, &n, NULL), 0);
    open_fails(&keys[0], CA_SEAL_ISSUING_CA, old.data, old.len, CMN_EBADPASSWORD);
    uint8_t id[CA_SEAL_ID_SIZE];
    assert_int_equal(ca_seal_key_id(old.data, old.len, id), 0);
    assert_memory_equal(id, keys[1].id, CA_SEAL_ID_SIZE);
    struct cmn_buf out;
    cmn_buf_init(&out, true);
    assert_int_equal(ca_seal_open(&keys[1], CA_SEAL_ISSUING_CA, old.data, old.len, &out, NULL), 0);
    assert_memory_equal(out.data, "ca key", 6);
    cmn_buf_fini(&out);
    cmn_buf_fini(&old);
    ca_master_key_fini(&keys[0]);
    ca_master_key_fini(&keys[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip), cmocka_unit_test(known_answer),
        cmocka_unit_test(wrong_key),  cmocka_unit_test(tampered),
        cmocka_unit_test(truncated),  cmocka_unit_test(wrong_purpose),
        cmocka_unit_test(not_sealed), cmocka_unit_test(seal_errors),
        cmocka_unit_test(key_file),   cmocka_unit_test(rotation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
