/* QR codes on libqrencode, for the otpauth:// URI of a two-factor key: as SVG (the API and
 * the Studio) and as UTF-8 half blocks (a terminal). */
#ifndef CORVID_COMMON_QR_H
#define CORVID_COMMON_QR_H

#include "common/buf.h"
#include "common/err.h"

#define CMN_QR_QUIET 4 /* modules of white border, as ISO/IEC 18004 asks */

/* The QR code of text (error correction M) appended to out as a standalone SVG image, one
 * unit a module, black on white. CMN_ETOOBIG when text does not fit a QR code. */
int cmn_qr_svg(const char *text, struct cmn_buf *out, char *errmsg) CMN_MUST_CHECK;
/* The same as lines of UTF-8 half blocks (two rows of modules a line) for a terminal: dark
 * modules are spaces and light ones blocks, which reads right on a dark background. */
int cmn_qr_utf8(const char *text, struct cmn_buf *out, char *errmsg) CMN_MUST_CHECK;

#endif
