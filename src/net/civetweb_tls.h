/* Starts civetweb's library with TLS under OpenSSL 3. Debian's civetweb 1.15
 * dlopens "libssl.so" and looks up OpenSSL 1.1 names; the compatibility
 * library (target clc_sslcompat, DESIGN.md §4) must be loaded first. */
#ifndef CLC_CIVETWEB_TLS_H
#define CLC_CIVETWEB_TLS_H

#include "core/err.h"

/* Loads the compatibility library (path, or NULL to search: next to the
 * executable in compat/ and ../lib/certlc/, the build tree, the install
 * prefix) and calls mg_init_library(MG_FEATURES_TLS). Every successful call
 * must be paired with clc_civetweb_tls_exit. CLC_ERR_CONFIG with the places
 * searched when the library is missing or not the right one. */
enum clc_err clc_civetweb_tls_init(const char *compat_lib, struct clc_errinfo *ei);
void clc_civetweb_tls_exit(void);

#endif
