/* The corvid CLI's two-factor pieces that need no node (tools/corvid/twofactor.h). */
#include "tools/corvid/twofactor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/qr.h"

static bool blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\v' || ch == '\f';
}

int tf_code_parse(const char *line, size_t len, char code[TF_CODE_DIGITS + 1], char *errmsg)
{
    code[0] = '\0';
    while (len > 0 && blank(line[0])) {
        line++;
        len--;
    }
    while (len > 0 && blank(line[len - 1]))
        len--;
    if (len == 0)
        return cmn_fail(errmsg, CMN_EINVALID, "no code given: %d digits expected", TF_CODE_DIGITS);
    for (size_t i = 0; i < len; i++)
        if (line[i] < '0' || line[i] > '9')
            return cmn_fail(errmsg, CMN_EINVALID,
                            "a code is %d digits (0-9), without spaces or anything else",
                            TF_CODE_DIGITS);
    if (len != TF_CODE_DIGITS)
        return cmn_fail(errmsg, CMN_EINVALID, "a code has %d digits, this one has %zu",
                        TF_CODE_DIGITS, len);
    memcpy(code, line, TF_CODE_DIGITS);
    code[TF_CODE_DIGITS] = '\0';
    return 0;
}

int tf_code_read(int fd, char code[TF_CODE_DIGITS + 1], char *errmsg)
{
    char line[TF_LINE_MAX];
    size_t n = 0;
    int rv = 0;
    code[0] = '\0';
    for (;;) {
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rv = cmn_fail(errmsg, CMN_EIO, "cannot read the code: %s", strerror(errno));
            break;
        }
        if (r == 0 || ch == '\n')
            break;
        if (n == sizeof line) {
            rv = cmn_fail(errmsg, CMN_ETOOBIG, "the line is longer than %d characters: not a code",
                          TF_LINE_MAX);
            break;
        }
        line[n++] = ch;
    }
    if (rv == 0)
        rv = tf_code_parse(line, n, code, errmsg);
    cmn_cleanse(line, sizeof line);
    return rv;
}

int tf_duration_parse(const char *arg, long max, long *out, char *errmsg)
{
    char *end = NULL;
    long v = 0;
    errno = 0;
    if (arg[0] >= '0' && arg[0] <= '9') /* strtol would take blanks and signs too */
        v = strtol(arg, &end, 10);
    if (end == NULL || *end != '\0' || errno != 0 || v < 1 || v > max)
        return cmn_fail(errmsg, CMN_EINVALID,
                        "--duration: a whole number of minutes from 1 to %ld (the cluster's "
                        "maximum)",
                        max);
    *out = v;
    return 0;
}

static bool base32(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '2' && s[i] <= '7')))
            return false;
    return true;
}

/* The value of the query parameter `name` in uri (borrowed, *n bytes long), or NULL. */
static const char *query_param(const char *uri, const char *name, size_t *n)
{
    const char *p = strchr(uri, '?');
    size_t nl = strlen(name);
    while (p != NULL) {
        p++;
        size_t len = strcspn(p, "&#");
        if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            *n = len - nl - 1;
            return p + nl + 1;
        }
        p = p[len] == '&' ? p + len : NULL;
    }
    return NULL;
}

int tf_key_check(json_t *answer, const char **secret, const char **uri, char *errmsg)
{
    static const char scheme[] = "otpauth://totp/";
    const char *s = json_string_value(json_object_get(answer, "Secret"));
    const char *u = json_string_value(json_object_get(answer, "QrCodeUri"));
    *secret = *uri = NULL;
    if (s == NULL || u == NULL)
        return cmn_fail(errmsg, CMN_EMALFORMED, "the answer lacks Secret or QrCodeUri");
    size_t sl = strlen(s), ul = strlen(u);
    if (sl < TF_SECRET_MIN || sl > TF_SECRET_MAX || !base32(s, sl))
        return cmn_fail(errmsg, CMN_EMALFORMED,
                        "its Secret is not a base32 key (%d to %d of A-Z and 2-7)", TF_SECRET_MIN,
                        TF_SECRET_MAX);
    if (strncasecmp(u, scheme, sizeof scheme - 1) != 0)
        return cmn_fail(errmsg, CMN_EMALFORMED, "its QrCodeUri is not an %s URI", scheme);
    if (ul > TF_URI_MAX)
        return cmn_fail(errmsg, CMN_EMALFORMED, "its QrCodeUri is longer than %d bytes",
                        TF_URI_MAX);
    /* It is printed as it is: nothing that a terminal would act on, nothing invisible. */
    for (size_t i = 0; i < ul; i++)
        if (u[i] <= ' ' || u[i] >= 0x7f)
            return cmn_fail(errmsg, CMN_EMALFORMED,
                            "its QrCodeUri holds a blank, a control or a non-ASCII character");
    size_t vl;
    const char *v = query_param(u, "secret", &vl);
    if (v == NULL || vl != sl || strncasecmp(v, s, sl) != 0)
        return cmn_fail(errmsg, CMN_EMALFORMED, "its QrCodeUri holds another key than its Secret");
    *secret = s;
    *uri = u;
    return 0;
}

int tf_key_print(FILE *out, const char *secret, const char *uri, bool qr, char *errmsg)
{
    fprintf(out, "Two-factor authentication is on. The key is shown this once and the cluster\n"
                 "never shows it again: add it to an authenticator app now (scan the QR code,\n"
                 "or type the key).\n");
    fprintf(out, "  Key:         %s\n", secret);
    fprintf(out, "  URI:         %s\n", uri);
    int rv = 0;
    if (qr) {
        struct cmn_buf text;
        cmn_buf_init(&text, true); /* the code holds the key */
        rv = cmn_qr_utf8(uri, &text, errmsg);
        if (rv == 0)
            fwrite(text.data, 1, text.len, out);
        cmn_buf_fini(&text);
    }
    fprintf(out, "Every request with this certificate needs a two-factor session now: run\n"
                 "`corvid login` with it and a code from the app.\n");
    return rv;
}
