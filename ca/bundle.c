/* In-memory zip of a generated certificate (.pfx, .crt, .key) built with libzip. */
#include "ca/bundle.h"

#include <stdio.h>
#include <string.h>

#include <zip.h>

#include "ca/encode.h"

/* Regular file, rw------- (st_mode in the high 16 bits of the external attributes). */
#define ZIP_MODE_0600 (0100600u << 16)

void ca_bundle_safe_name(const char *name, char *out)
{
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)(name ? name : "");
    while (*p == '.' || *p == ' ')
        p++;
    for (; *p && o < CA_BUNDLE_NAME_MAX; p++) {
        unsigned char c = *p;
        if (c < 0x20 || c == 0x7f || strchr("/\\:*?\"<>|", c) != NULL)
            c = '_';
        out[o++] = (char)c;
    }
    /* Do not end inside a multi-byte UTF-8 sequence: drop a trailing partial one. */
    if (*p && o > 0) {
        size_t start = o;
        while (start > 0 && ((unsigned char)out[start - 1] & 0xC0) == 0x80)
            start--;
        if (start > 0 && ((unsigned char)out[start - 1] & 0xC0) == 0xC0) {
            unsigned char lead = (unsigned char)out[start - 1];
            size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
            if (o - (start - 1) < need)
                o = start - 1;
        }
    }
    while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '.'))
        o--; /* Windows drops trailing dots and spaces */
    out[o] = '\0';
    if (o == 0)
        strcpy(out, "certificate");
}

static int add_entry(zip_t *za, const char *name, const struct cmn_buf *b, int64_t mtime,
                     char *errmsg)
{
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(b->data, b->len, 0, &ze);
    if (src == NULL) {
        int rv = cmn_fail(errmsg, CMN_ENOMEM, "zip: %s", zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return rv;
    }
    zip_error_fini(&ze);
    zip_int64_t idx = zip_file_add(za, name, src, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE);
    if (idx < 0) {
        zip_source_free(src);
        return cmn_fail(errmsg, CMN_ECRYPTO, "zip: adding %s failed: %s", name, zip_strerror(za));
    }
    if (zip_file_set_external_attributes(za, (zip_uint64_t)idx, 0, ZIP_OPSYS_UNIX, ZIP_MODE_0600) !=
            0 ||
        zip_file_set_mtime(za, (zip_uint64_t)idx, (time_t)mtime, 0) != 0)
        return cmn_fail(errmsg, CMN_ECRYPTO, "zip: setting attributes of %s failed: %s", name,
                        zip_strerror(za));
    return 0;
}

/* Copies the finished archive out of the buffer source. */
static int read_source(zip_source_t *src, struct cmn_buf *out, char *errmsg)
{
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_source_stat(src, &st) != 0 || !(st.valid & ZIP_STAT_SIZE) || zip_source_open(src) != 0)
        return cmn_fail(errmsg, CMN_ECRYPTO, "zip: cannot read the archive back");
    int rv = cmn_buf_reserve(out, (size_t)st.size + 1);
    if (rv == 0) {
        zip_int64_t got = zip_source_read(src, out->data + out->len, st.size);
        if (got < 0 || (zip_uint64_t)got != st.size)
            rv = cmn_fail(errmsg, CMN_ECRYPTO, "zip: short read of the archive");
        else {
            out->len += (size_t)got;
            out->data[out->len] = 0;
        }
    } else {
        rv = cmn_fail(errmsg, rv, "out of memory");
    }
    zip_source_close(src);
    return rv;
}

int ca_bundle_zip(const struct ca_bundle_in *in, struct cmn_buf *out, char *errmsg)
{
    if (in->cert == NULL || in->key == NULL)
        return cmn_fail(errmsg, CMN_EINVALID, "a bundle needs a certificate and a key");
    out->secret = true;
    char stem[CA_BUNDLE_NAME_MAX + 1];
    ca_bundle_safe_name(in->name, stem);

    struct ca_pfx_opts opts = {CA_PFX_MODERN, in->name, 0};
    if (in->pfx != NULL)
        opts = *in->pfx;
    struct cmn_buf pfx, crt, key;
    cmn_buf_init(&pfx, true);
    cmn_buf_init(&crt, false);
    cmn_buf_init(&key, true);
    zip_source_t *src = NULL;
    zip_t *za = NULL;
    int rv = ca_pfx_build(in->key, in->cert, in->chain, in->password, &opts, &pfx, errmsg);
    if (rv != 0)
        goto out;
    if ((rv = ca_cert_to_pem(in->cert, &crt)) != 0) {
        rv = cmn_fail(errmsg, rv, "encoding the certificate failed");
        goto out;
    }
    if ((rv = ca_key_to_pem(in->key, in->password, &key, errmsg)) != 0)
        goto out;

    zip_error_t ze;
    zip_error_init(&ze);
    src = zip_source_buffer_create(NULL, 0, 0, &ze);
    if (src != NULL) {
        zip_source_keep(src); /* outlives zip_close, which writes the archive into it */
        za = zip_open_from_source(src, ZIP_TRUNCATE, &ze);
    }
    if (za == NULL) {
        rv = cmn_fail(errmsg, CMN_ENOMEM, "zip: %s", zip_error_strerror(&ze));
        zip_error_fini(&ze);
        goto out;
    }
    zip_error_fini(&ze);
    char entry[CA_BUNDLE_NAME_MAX + 8];
    snprintf(entry, sizeof entry, "%s.pfx", stem);
    if ((rv = add_entry(za, entry, &pfx, in->mtime, errmsg)) != 0)
        goto out;
    snprintf(entry, sizeof entry, "%s.crt", stem);
    if ((rv = add_entry(za, entry, &crt, in->mtime, errmsg)) != 0)
        goto out;
    snprintf(entry, sizeof entry, "%s.key", stem);
    if ((rv = add_entry(za, entry, &key, in->mtime, errmsg)) != 0)
        goto out;
    if (zip_close(za) != 0) {
        rv = cmn_fail(errmsg, CMN_ECRYPTO, "zip: writing the archive failed: %s", zip_strerror(za));
        goto out;
    }
    za = NULL;
    rv = read_source(src, out, errmsg);
out:
    if (za != NULL)
        zip_discard(za);
    if (src != NULL)
        zip_source_free(src);
    cmn_buf_fini(&pfx);
    cmn_buf_fini(&crt);
    cmn_buf_fini(&key);
    return rv;
}
