/* QR codes on libqrencode (common/qr.h). */
#include "common/qr.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <qrencode.h>

static int encode(const char *text, QRcode **out, char *errmsg)
{
    errno = 0;
    *out = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (*out != NULL)
        return 0;
    if (errno == ERANGE)
        return cmn_fail(errmsg, CMN_ETOOBIG, "the text is too long for a QR code");
    return cmn_fail(errmsg, CMN_ENOMEM, "cannot make the QR code");
}

/* Whether module (x, y) of the symbol with its quiet zone is dark. */
static bool dark(const QRcode *q, int x, int y)
{
    x -= CMN_QR_QUIET;
    y -= CMN_QR_QUIET;
    return x >= 0 && y >= 0 && x < q->width && y < q->width && (q->data[y * q->width + x] & 1);
}

int cmn_qr_svg(const char *text, struct cmn_buf *out, char *errmsg)
{
    QRcode *q;
    int rv = encode(text, &q, errmsg);
    if (rv != 0)
        return rv;
    int size = q->width + 2 * CMN_QR_QUIET;
    rv = cmn_buf_printf(out,
                        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
                        "shape-rendering=\"crispEdges\"><rect width=\"%d\" height=\"%d\" "
                        "fill=\"#fff\"/><path fill=\"#000\" d=\"",
                        size, size, size, size);
    for (int y = 0; rv == 0 && y < size; y++)
        for (int x = 0; rv == 0 && x < size; x++)
            if (dark(q, x, y))
                rv = cmn_buf_printf(out, "M%d %dh1v1h-1z", x, y);
    if (rv == 0)
        rv = cmn_buf_printf(out, "\"/></svg>\n");
    QRcode_free(q);
    return rv == 0 ? 0 : cmn_fail(errmsg, rv, "out of memory");
}

int cmn_qr_utf8(const char *text, struct cmn_buf *out, char *errmsg)
{
    /* Upper and lower half of a line: both light, upper light only, lower light only, none. */
    static const char *const glyph[4] = {"\u2588", "\u2580", "\u2584", " "};
    QRcode *q;
    int rv = encode(text, &q, errmsg);
    if (rv != 0)
        return rv;
    int size = q->width + 2 * CMN_QR_QUIET;
    for (int y = 0; rv == 0 && y < size; y += 2) {
        for (int x = 0; rv == 0 && x < size; x++) {
            bool top = dark(q, x, y), bottom = y + 1 < size ? dark(q, x, y + 1) : false;
            rv = cmn_buf_append_str(out, glyph[(top ? 2 : 0) + (bottom ? 1 : 0)]);
        }
        if (rv == 0)
            rv = cmn_buf_append_str(out, "\n");
    }
    QRcode_free(q);
    return rv == 0 ? 0 : cmn_fail(errmsg, rv, "out of memory");
}
