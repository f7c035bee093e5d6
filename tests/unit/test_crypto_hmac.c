/* clc_hmac_sha256 against RFC 4231's test vectors: a short key, a key below
 * the block size, and a key longer than the block (hashed first). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "crypto/hmac.h"

static void hex(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static void check(const void *key, size_t keylen, const char *data, const char *want)
{
    unsigned char mac[CLC_HMAC_SHA256_LEN];
    char got[2 * CLC_HMAC_SHA256_LEN + 1];

    assert_int_equal(clc_hmac_sha256(key, keylen, data, strlen(data), mac), CLC_OK);
    hex(mac, sizeof mac, got);
    assert_string_equal(got, want);
}

static void test_rfc4231(void **state)
{
    unsigned char k1[20], k6[131];

    (void)state;
    memset(k1, 0x0b, sizeof k1);
    check(k1, sizeof k1, "Hi There",
          "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    check("Jefe", 4, "what do ya want for nothing?",
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    memset(k6, 0xaa, sizeof k6);
    check(k6, sizeof k6, "Test Using Larger Than Block-Size Key - Hash Key First",
          "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_rfc4231)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
