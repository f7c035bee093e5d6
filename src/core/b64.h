/* Base64 (RFC 4648 §4, padded) and base64url (§5, unpadded on output,
 * padding optional on input). Decoders are strict: any character outside the
 * alphabet, bad padding or non-zero trailing bits is CLC_ERR_PARSE. */
#ifndef CLC_B64_H
#define CLC_B64_H

#include <stddef.h>
#include "core/err.h"

/* Output is malloc'd and NUL-terminated; *out_len (optional) excludes the NUL. */
enum clc_err clc_b64_encode(const void *in, size_t n, char **out, size_t *out_len);
enum clc_err clc_b64url_encode(const void *in, size_t n, char **out, size_t *out_len);

/* Output is malloc'd with a NUL appended (so text can be used directly). The
 * standard decoder skips ASCII whitespace (PEM bodies, folded headers). */
enum clc_err clc_b64_decode(const char *in, size_t n, unsigned char **out, size_t *out_len);
enum clc_err clc_b64url_decode(const char *in, size_t n, unsigned char **out, size_t *out_len);

#endif
