/* OpenSSL 3 renamed SSL_get_peer_certificate to SSL_get1_peer_certificate and
 * kept the old name only as a macro; civetweb 1.15 looks the old name up with
 * dlsym and crashes when it is missing. This library provides it. */
#include <openssl/ssl.h>

/* Without this the macro would rename our definition to
 * SSL_get1_peer_certificate and make it call itself. */
#undef SSL_get_peer_certificate

X509 *SSL_get_peer_certificate(const SSL *s);
X509 *SSL_get_peer_certificate(const SSL *s)
{
    return SSL_get1_peer_certificate(s);
}
