/* The emulated CA's NTLM (MS-NLMP, server side): MD4 against RFC 1320 A.5,
 * NTOWFv2 and NTProofStr against MS-NLMP 4.2.4; then hand-built messages
 * over one libcurl connection: a good handshake (with and without a MIC)
 * authenticates the connection and only it, wrong passwords, NTLMv1,
 * LM-only, replayed and unchallenged AUTHENTICATE messages are 401, and
 * malformed messages (bad base64, signature, type, truncation, offsets and
 * lengths outside the message, oversized tokens, bad AV pairs) are 400. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/b64.h"
#include "core/log.h"
#include "emulator/ca.h"
#include "test_emu_ca_fixture.h"

#define PW "Renewer-pass-1"

static const char config[] =
    "{\"ca\":{\"ntlm\":{\"domain\":\"CERTLC\",\"dns_domain\":\"certlc.test\",\"server\":\"CA01\"},"
    "\"accounts\":[{\"name\":\"renewer\",\"password\":\"" PW "\",\"ntlm\":true},"
    "{\"name\":\"basiconly\",\"password\":\"Basic-only-pass\"}]}}";

static void hex(const char *h, unsigned char *out)
{
    for (size_t i = 0; h[2 * i]; i++) {
        unsigned v = 0;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (unsigned char)v;
    }
}

static void md4_is(const char *in, const char *want)
{
    unsigned char got[16], w[16];

    ca_ntlm_md4(in, strlen(in), got);
    hex(want, w);
    assert_memory_equal(got, w, 16);
}

static void test_md4_rfc1320(void **state)
{
    (void)state;
    md4_is("", "31d6cfe0d16ae931b73c59d7e0c089c0");
    md4_is("a", "bde52cb31de33e46245e05fbdbd6fb24");
    md4_is("abc", "a448017aaf21d8525fc10ae87aa6729d");
    md4_is("message digest", "d9130a8164549fe818874806e1c7014b");
    md4_is("abcdefghijklmnopqrstuvwxyz", "d79e1c308aa5bbcdeea8ed63df412da9");
    md4_is("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
           "043f8582f241db351ce627e153e7f0e4");
    md4_is("1234567890123456789012345678901234567890123456789012345678901234567890123456"
           "7890",
           "e33b4ddc9c38f2199c3e7b164fcc0536");
    /* NT hash of "Password" (MS-NLMP 4.2.2.1.2): MD4 of its UTF-16LE form. */
    unsigned char got[16], w[16];
    ca_ntlm_md4("P\0a\0s\0s\0w\0o\0r\0d\0", 16, got);
    hex("a4f49c406510bdcab6824ee7c30fd852", w);
    assert_memory_equal(got, w, 16);
}

/* MS-NLMP 4.2.4: User "User", UserDom "Domain", Password "Password". */
static void test_ntlmv2_vectors(void **state)
{
    static const unsigned char dom16[] = {'D', 0, 'o', 0, 'm', 0, 'a', 0, 'i', 0, 'n', 0};
    unsigned char key[16], w[16], chal[8], temp[68], proof[16];
    (void)state;

    assert_int_equal(ca_ntlm_ntowfv2("Password", "User", dom16, sizeof dom16, key), 0);
    hex("0c868a403bfd7a93a3001ef22ef02e3f", w);
    assert_memory_equal(key, w, 16);
    /* The user name is folded to upper case, so "user" gives the same key. */
    assert_int_equal(ca_ntlm_ntowfv2("Password", "user", dom16, sizeof dom16, w), 0);
    assert_memory_equal(key, w, 16);
    hex("0123456789abcdef", chal);
    hex("01010000000000000000000000000000aaaaaaaaaaaaaaaa00000000"
        "02000c0044006f006d00610069006e0001000c005300650072007600650072000000000000000000",
        temp);
    assert_int_equal(ca_ntlm_proof(key, chal, temp, sizeof temp, proof), 0);
    hex("68cd0ab851e51c96aabc927bebef6a1c", w);
    assert_memory_equal(proof, w, 16);
    /* A password that is not UTF-8 is refused, not hashed as bytes. */
    assert_int_not_equal(ca_ntlm_ntowfv2("\xff\xfe", "User", dom16, sizeof dom16, key), 0);
}

/* ---- the wire ---- */

struct conn {
    CURL *h;
    char www[2048]; /* the NTLM challenge of the last answer, if any */
    long status;
};

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    struct conn *c = ud;
    size_t len = sz * n;

    if (len > 22 && strncasecmp(p, "WWW-Authenticate: NTLM ", 23) == 0) {
        size_t k = len - 23;
        while (k > 0 && (p[23 + k - 1] == '\r' || p[23 + k - 1] == '\n'))
            k--;
        if (k < sizeof c->www) {
            memcpy(c->www, p + 23, k);
            c->www[k] = '\0';
        }
    }
    return len;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return sz * n;
}

static void conn_open(struct conn *c)
{
    memset(c, 0, sizeof *c);
    c->h = curl_easy_init();
    assert_non_null(c->h);
    curl_easy_setopt(c->h, CURLOPT_CAINFO, emu_ca_bundle(cafx.e));
    curl_easy_setopt(c->h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c->h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c->h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
}

static void conn_close(struct conn *c)
{
    curl_easy_cleanup(c->h);
    c->h = NULL;
}

/* GET /certsrv/ with "Authorization: <auth>" (NULL = none); the status.
 * *reused says whether the connection was the previous one. */
static long get(struct conn *c, const char *auth, int *reused)
{
    struct curl_slist *hl = NULL;
    char url[256], line[16384];
    long connects = -1;

    snprintf(url, sizeof url, "%s/certsrv/", cafx_url());
    if (auth != NULL) {
        snprintf(line, sizeof line, "Authorization: %s", auth);
        hl = curl_slist_append(NULL, line);
    }
    c->www[0] = '\0';
    curl_easy_setopt(c->h, CURLOPT_URL, url);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, hl);
    c->status = 0;
    if (curl_easy_perform(c->h) == CURLE_OK)
        curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &c->status);
    curl_easy_getinfo(c->h, CURLINFO_NUM_CONNECTS, &connects);
    if (reused != NULL)
        *reused = connects == 0;
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hl);
    return c->status;
}

/* "NTLM <base64 of msg>" (malloc'd). */
static char *ntlm_header(const unsigned char *msg, size_t len)
{
    char *b64 = NULL, *out;

    assert_int_equal(clc_b64_encode(msg, len, &b64, NULL), CLC_OK);
    out = malloc(strlen(b64) + 6);
    assert_non_null(out);
    sprintf(out, "NTLM %s", b64);
    free(b64);
    return out;
}

static void put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static unsigned rd16(const unsigned char *p)
{
    return (unsigned)(p[0] | p[1] << 8);
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* NEGOTIATE: Unicode, NTLM, request target, extended session security. */
static size_t negotiate_msg(unsigned char m[32])
{
    memset(m, 0, 32);
    memcpy(m, "NTLMSSP", 8);
    put32(m + 8, 1);
    put32(m + 12, 0x00000001u | 0x00000004u | 0x00000200u | 0x00008000u | 0x00080000u);
    return 32;
}

struct hs {
    unsigned char nego[32], chal[1024];
    size_t nego_len, chal_len;
};

/* Leg 1 on c: 401 with a challenge, kept in hs. */
static void leg1(struct conn *c, struct hs *hs)
{
    unsigned char *dec = NULL;
    char *auth;

    hs->nego_len = negotiate_msg(hs->nego);
    auth = ntlm_header(hs->nego, hs->nego_len);
    assert_int_equal(get(c, auth, NULL), 401);
    free(auth);
    assert_true(c->www[0] != '\0');
    assert_int_equal(clc_b64_decode(c->www, strlen(c->www), &dec, &hs->chal_len), CLC_OK);
    assert_true(hs->chal_len >= 56 && hs->chal_len <= sizeof hs->chal);
    memcpy(hs->chal, dec, hs->chal_len);
    free(dec);
    assert_memory_equal(hs->chal, "NTLMSSP", 8);
    assert_int_equal(rd32(hs->chal + 8), 2);
    assert_true(rd32(hs->chal + 20) & 0x00000001u);  /* Unicode chosen */
    assert_true(rd32(hs->chal + 20) & 0x00800000u);  /* target info: NTLMv2 */
    assert_false(rd32(hs->chal + 20) & 0x40000000u); /* no key exchange */
}

struct auth_opts {
    const char *user, *domain, *password;
    int mic;         /* 1 = a valid MIC, 2 = a wrong one */
    int v1;          /* NTLMv1-sized (24-byte) NT response */
    int lm_only;     /* no NT response */
    int bad_avpairs; /* an AV pair running past the response */
};

static size_t put_u16s(unsigned char *p, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        put16(p + 2 * i, (unsigned char)s[i]);
    return 2 * n;
}

/* AUTHENTICATE (Unicode, with Version and MIC fields) answering hs. */
static size_t authenticate_msg(const struct hs *hs, const struct auth_opts *o, unsigned char *m,
                               size_t max)
{
    unsigned char temp[1024], key[16], proof[16], dom16[128], sbk[16], mic[16];
    const unsigned char *ti = hs->chal + rd32(hs->chal + 44);
    size_t tilen = rd16(hs->chal + 40), t = 0, off = 88, ntlen, dlen;
    unsigned int ml = 0;

    assert_true(tilen >= 4 && tilen + 64 < sizeof temp);
    memset(temp, 0, 28);
    temp[0] = temp[1] = 1;
    memset(temp + 16, 0xaa, 8); /* client challenge */
    t = 28;
    memcpy(temp + t, ti, tilen - 4); /* the server's pairs without MsvAvEOL */
    t += tilen - 4;
    if (o->mic) {
        put16(temp + t, 6);
        put16(temp + t + 2, 4);
        put32(temp + t + 4, 2);
        t += 8;
    }
    if (o->bad_avpairs) {
        put16(temp + t, 9);
        put16(temp + t + 2, 0x400);
        t += 4;
    } else {
        memset(temp + t, 0, 8); /* MsvAvEOL, then 4 zero bytes */
        t += 8;
    }
    dlen = put_u16s(dom16, o->domain);
    assert_int_equal(ca_ntlm_ntowfv2(o->password, o->user, dom16, dlen, key), 0);
    assert_int_equal(ca_ntlm_proof(key, hs->chal + 24, temp, t, proof), 0);

    memset(m, 0, max);
    memcpy(m, "NTLMSSP", 8);
    put32(m + 8, 3);
    /* LM response: 24 zero bytes. */
    put16(m + 12, 24);
    put16(m + 14, 24);
    put32(m + 16, (uint32_t)off);
    off += 24;
    ntlen = o->lm_only ? 0 : o->v1 ? 24 : 16 + t;
    put16(m + 20, (unsigned)ntlen);
    put16(m + 22, (unsigned)ntlen);
    put32(m + 24, (uint32_t)off);
    if (ntlen >= 16) {
        memcpy(m + off, proof, 16);
        memcpy(m + off + 16, temp, ntlen - 16);
    }
    off += ntlen;
    put16(m + 28, (unsigned)dlen);
    put16(m + 30, (unsigned)dlen);
    put32(m + 32, (uint32_t)off);
    memcpy(m + off, dom16, dlen);
    off += dlen;
    size_t ul = put_u16s(m + off, o->user);
    put16(m + 36, (unsigned)ul);
    put16(m + 38, (unsigned)ul);
    put32(m + 40, (uint32_t)off);
    off += ul;
    size_t wl = put_u16s(m + off, "WS1");
    put16(m + 44, (unsigned)wl);
    put16(m + 46, (unsigned)wl);
    put32(m + 48, (uint32_t)off);
    off += wl;
    put32(m + 56, (uint32_t)off); /* empty session key */
    put32(m + 60, rd32(hs->chal + 20));
    m[64] = 10;
    m[71] = 0x0f;
    if (o->mic) {
        /* ExportedSessionKey = SessionBaseKey (no key exchange). */
        assert_non_null(HMAC(EVP_md5(), key, 16, proof, 16, sbk, &ml));
        unsigned char all[4096];
        size_t al = 0;
        memcpy(all, hs->nego, hs->nego_len);
        al += hs->nego_len;
        memcpy(all + al, hs->chal, hs->chal_len);
        al += hs->chal_len;
        memcpy(all + al, m, off);
        al += off;
        assert_non_null(HMAC(EVP_md5(), sbk, 16, all, al, mic, &ml));
        if (o->mic == 2)
            mic[0] ^= 1;
        memcpy(m + 72, mic, 16);
    }
    return off;
}

static const struct auth_opts good = {"renewer", "CERTLC", PW, 0, 0, 0, 0};

/* Leg 1 then leg 3 on c; the status of leg 3. */
static long handshake(struct conn *c, const struct auth_opts *o)
{
    unsigned char m[2048];
    struct hs hs;
    char *auth;
    long st;
    int reused = 0;

    leg1(c, &hs);
    auth = ntlm_header(m, authenticate_msg(&hs, o, m, sizeof m));
    st = get(c, auth, &reused);
    free(auth);
    assert_true(reused); /* the challenge belongs to this connection */
    return st;
}

static void test_handshake_binds_connection(void **state)
{
    struct conn c, other;
    int reused = 0;
    (void)state;

    conn_open(&c);
    assert_int_equal(get(&c, NULL, NULL), 401);
    assert_int_equal(handshake(&c, &good), 200);
    /* Later requests on the connection need no header... */
    assert_int_equal(get(&c, NULL, &reused), 200);
    assert_true(reused);
    /* ...but another connection does. */
    conn_open(&other);
    assert_int_equal(get(&other, NULL, NULL), 401);
    conn_close(&other);
    /* A new handshake on the connection starts over: unauthenticated
     * until its third leg. */
    struct hs hs;
    leg1(&c, &hs);
    assert_int_equal(get(&c, NULL, NULL), 401);
    conn_close(&c);

    /* The DNS domain, and no domain at all, name the CA's domain too. */
    struct auth_opts o = good;
    conn_open(&c);
    o.domain = "certlc.test";
    assert_int_equal(handshake(&c, &o), 200);
    o.domain = "";
    assert_int_equal(handshake(&c, &o), 200);
    o.mic = 1;
    assert_int_equal(handshake(&c, &o), 200);
    conn_close(&c);
}

static void test_refusals(void **state)
{
    struct auth_opts o;
    unsigned char m[2048];
    struct conn c;
    struct hs hs;
    char *auth;
    (void)state;

    conn_open(&c);
    o = good;
    o.password = "not-the-password";
    assert_int_equal(handshake(&c, &o), 401);
    o = good;
    o.mic = 2;
    assert_int_equal(handshake(&c, &o), 401);
    o = good;
    o.v1 = 1;
    assert_int_equal(handshake(&c, &o), 401);
    o = good;
    o.lm_only = 1;
    assert_int_equal(handshake(&c, &o), 401);
    o = good;
    o.domain = "OTHERDOM";
    assert_int_equal(handshake(&c, &o), 401);
    o = good;
    o.user = "basiconly"; /* exists, but not for NTLM */
    o.password = "Basic-only-pass";
    assert_int_equal(handshake(&c, &o), 401);
    o = good;
    o.user = "nobody";
    assert_int_equal(handshake(&c, &o), 401);

    /* The challenge is used once: the same AUTHENTICATE again is refused,
     * even after it succeeded. */
    leg1(&c, &hs);
    auth = ntlm_header(m, authenticate_msg(&hs, &good, m, sizeof m));
    assert_int_equal(get(&c, auth, NULL), 200);
    assert_int_equal(get(&c, auth, NULL), 401);
    /* Nor is it accepted on a connection that never had the challenge. */
    struct conn other;
    conn_open(&other);
    assert_int_equal(get(&other, auth, NULL), 401);
    conn_close(&other);
    free(auth);
    conn_close(&c);
}

static void expect_400(struct conn *c, const unsigned char *msg, size_t len)
{
    char *auth = ntlm_header(msg, len);
    assert_int_equal(get(c, auth, NULL), 400);
    free(auth);
}

static void test_malformed(void **state)
{
    unsigned char m[2048], n[32];
    struct conn c;
    struct hs hs;
    size_t len;
    struct auth_opts o = good;
    (void)state;

    conn_open(&c);
    assert_int_equal(get(&c, "NTLM !!not-base64!!", NULL), 400);
    assert_int_equal(get(&c, "NTLM ", NULL), 400);
    /* Wrong signature; unknown and server-side message types. */
    negotiate_msg(n);
    n[0] = 'X';
    expect_400(&c, n, sizeof n);
    negotiate_msg(n);
    put32(n + 8, 2);
    expect_400(&c, n, sizeof n);
    put32(n + 8, 7);
    expect_400(&c, n, sizeof n);
    /* Truncated: a signature alone; a NEGOTIATE of 14 bytes. */
    negotiate_msg(n);
    expect_400(&c, n, 8);
    expect_400(&c, n, 14);
    /* NEGOTIATE whose domain field points past the end. */
    put16(n + 16, 8);
    put32(n + 20, 0xfffffff0u);
    expect_400(&c, n, sizeof n);
    /* NEGOTIATE naming neither character set. */
    negotiate_msg(n);
    put32(n + 12, 0x00000200u);
    expect_400(&c, n, sizeof n);

    /* AUTHENTICATE damaged in each way, each after a fresh challenge. */
    leg1(&c, &hs);
    authenticate_msg(&hs, &good, m, sizeof m);
    expect_400(&c, m, 40); /* truncated inside the fixed header */
    leg1(&c, &hs);
    len = authenticate_msg(&hs, &good, m, sizeof m);
    put32(m + 40, (uint32_t)len - 2); /* user name runs past the end */
    expect_400(&c, m, len);
    leg1(&c, &hs);
    len = authenticate_msg(&hs, &good, m, sizeof m);
    put16(m + 20, 0xffff); /* NT response length beyond the message */
    expect_400(&c, m, len);
    leg1(&c, &hs);
    len = authenticate_msg(&hs, &good, m, sizeof m);
    put32(m + 24, 8); /* NT response inside the fixed header */
    expect_400(&c, m, len);
    leg1(&c, &hs);
    o.bad_avpairs = 1;
    len = authenticate_msg(&hs, &o, m, sizeof m);
    expect_400(&c, m, len);
    leg1(&c, &hs);
    len = authenticate_msg(&hs, &good, m, sizeof m);
    m[rd32(m + 24) + 16] = 2; /* not NTLMv2's response type */
    expect_400(&c, m, len);

    /* Oversized: a token far past any real message, and a decoded message
     * just over the limit. */
    char *big = malloc(12001);
    assert_non_null(big);
    memcpy(big, "NTLM ", 5);
    memset(big + 5, 'A', 11995);
    big[12000] = '\0';
    assert_int_equal(get(&c, big, NULL), 400);
    free(big);
    unsigned char *huge = calloc(1, 2100);
    assert_non_null(huge);
    memcpy(huge, "NTLMSSP", 8);
    put32(huge + 8, 3);
    expect_400(&c, huge, 2100);
    free(huge);

    /* After all that the server still answers a proper handshake. */
    assert_int_equal(handshake(&c, &good), 200);
    conn_close(&c);
}

static int setup(void **state)
{
    (void)state;
    clc_log_setup(CLC_LOG_WARN, CLC_LOG_TEXT, stderr);
    return cafx_setup(config);
}

static int teardown(void **state)
{
    (void)state;
    cafx_teardown();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_md4_rfc1320),
        cmocka_unit_test(test_ntlmv2_vectors),
        cmocka_unit_test(test_handshake_binds_connection),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
