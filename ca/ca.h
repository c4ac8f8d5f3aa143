/* The whole ca/ API in one include: X.509 and PKCS#12 work, sans I/O. */
#ifndef CORVID_CA_CA_H
#define CORVID_CA_CA_H

#include "ca/bundle.h"
#include "ca/cert.h"
#include "ca/crl.h"
#include "ca/csr.h"
#include "ca/encode.h"
#include "ca/ident.h"
#include "ca/key.h"
#include "ca/pfx.h"
#include "ca/seal.h"

#endif
