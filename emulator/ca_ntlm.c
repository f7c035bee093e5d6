/* NTLM for the emulated CA's Web Enrollment pages, as IIS's Windows
 * authentication offers it (MS-NLMP, server side, NTLMv2 only): NEGOTIATE ->
 * CHALLENGE -> AUTHENTICATE on one TCP connection, which then stays
 * authenticated. MD4 is written here (RFC 1320) as OpenSSL 3 keeps it in the
 * legacy provider. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/b64.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/rand.h"
#include "emulator/ca.h"
#include "emulator/emu.h"
#include "emulator/emu_ext.h"
#include "emulator/state.h"

/* MS-NLMP 2.2.2.5 NegotiateFlags used here. */
#define NF_UNICODE 0x00000001u
#define NF_OEM 0x00000002u
#define NF_REQUEST_TARGET 0x00000004u
#define NF_NTLM 0x00000200u
#define NF_ALWAYS_SIGN 0x00008000u
#define NF_TARGET_TYPE_DOMAIN 0x00010000u
#define NF_EXTENDED_SESSIONSECURITY 0x00080000u
#define NF_TARGET_INFO 0x00800000u
#define NF_VERSION 0x02000000u
#define NF_KEY_EXCH 0x40000000u

/* MS-NLMP 2.2.2.1 AV_PAIR ids. */
#define AV_EOL 0
#define AV_NB_COMPUTER 1
#define AV_NB_DOMAIN 2
#define AV_DNS_COMPUTER 3
#define AV_DNS_DOMAIN 4
#define AV_FLAGS 6
#define AV_TIMESTAMP 7
#define AV_FLAG_MIC 0x00000002u

#define MSG_MAX 2048 /* a decoded NTLM message; real ones are a few hundred bytes */
#define TOKEN_MAX ((MSG_MAX + 2) / 3 * 4 + 8)
#define NEGO_MAX 256   /* a NEGOTIATE_MESSAGE with names is under 100 bytes */
#define CHAL_MAX 512   /* ours, with the longest configured names: under 470 */
#define AUTH_HEAD 64   /* fixed part of AUTHENTICATE_MESSAGE before Version/MIC */
#define MIC_OFFSET 72  /* after the 8-byte Version */
#define TEMP_FIXED 28  /* RespType .. Reserved3 of NTLMv2_CLIENT_CHALLENGE */
#define CONNS 256      /* connections with handshake state, at most */
#define IDLE_MS 300000 /* state of a connection unused this long is gone */
#define NAME_MAX_ 64
/* Seconds from 1601-01-01 (FILETIME) to 1970-01-01. */
#define FILETIME_UNIX_OFFSET 11644473600LL

static const unsigned char signature[8] = {'N', 'T', 'L', 'M', 'S', 'S', 'P', 0};

struct ntlm_conn {
    uint64_t id; /* emu_req_conn_id; 0 = free */
    int64_t seen_ms;
    int authenticated;
    size_t account; /* index into ca->acct once authenticated */
    unsigned char challenge[8];
    uint32_t flags; /* what our CHALLENGE_MESSAGE said */
    /* Both messages as sent, for the MIC (MS-NLMP 3.1.5.1.2). */
    unsigned char nego[NEGO_MAX], chal[CHAL_MAX];
    size_t nego_len, chal_len;
};

struct ca_ntlm {
    pthread_mutex_t mu;
    char domain[16];                /* NetBIOS domain (target name) */
    char dns_domain[NAME_MAX_];     /* DNS domain */
    char server[16];                /* NetBIOS computer name */
    char dns_server[NAME_MAX_ * 2]; /* <server>.<dns_domain>, lower case */
    struct ntlm_conn conn[CONNS];
};

/* ---- MD4 (RFC 1320) ---- */

static uint32_t rotl32(uint32_t x, unsigned s)
{
    return (x << s) | (x >> (32 - s));
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static void put_le16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* One 64-byte block: three rounds of sixteen steps (RFC 1320 3.4). Each
 * step updates one register from the other three; rotating the four after
 * every step gives the [ABCD] [DABC] [CDAB] [BCDA] order. */
static void md4_block(uint32_t st[4], const unsigned char *blk)
{
    static const unsigned char s1[4] = {3, 7, 11, 19}, s2[4] = {3, 5, 9, 13},
                               s3[4] = {3, 9, 11, 15};
    static const unsigned char k3[16] = {0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15};
    uint32_t x[16], a = st[0], b = st[1], c = st[2], d = st[3], t;

    for (int i = 0; i < 16; i++)
        x[i] = le32(blk + 4 * i);
    for (int i = 0; i < 48; i++) {
        int round = i / 16, j = i % 16;
        if (round == 0) {
            t = a + ((b & c) | (~b & d)) + x[j];
            t = rotl32(t, s1[j % 4]);
        } else if (round == 1) {
            t = a + ((b & c) | (b & d) | (c & d)) + x[(j % 4) * 4 + j / 4] + 0x5A827999u;
            t = rotl32(t, s2[j % 4]);
        } else {
            t = a + (b ^ c ^ d) + x[k3[j]] + 0x6ED9EBA1u;
            t = rotl32(t, s3[j % 4]);
        }
        a = d;
        d = c;
        c = b;
        b = t;
    }
    st[0] += a;
    st[1] += b;
    st[2] += c;
    st[3] += d;
    OPENSSL_cleanse(x, sizeof x);
}

void ca_ntlm_md4(const void *data, size_t len, unsigned char out[16])
{
    uint32_t st[4] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u};
    const unsigned char *p = data;
    unsigned char tail[128];
    size_t full = len / 64 * 64, rest = len - full, tlen;
    uint64_t bits = (uint64_t)len * 8;

    for (size_t off = 0; off < full; off += 64)
        md4_block(st, p + off);
    /* Padding: 0x80, zeros to 56 mod 64, then the bit length (little endian). */
    memset(tail, 0, sizeof tail);
    if (rest > 0)
        memcpy(tail, p + full, rest);
    tail[rest] = 0x80;
    tlen = rest < 56 ? 64 : 128;
    for (int i = 0; i < 8; i++)
        tail[tlen - 8 + (size_t)i] = (unsigned char)(bits >> (8 * i));
    md4_block(st, tail);
    if (tlen == 128)
        md4_block(st, tail + 64);
    for (int i = 0; i < 4; i++)
        put_le32(out + 4 * i, st[i]);
    OPENSSL_cleanse(tail, sizeof tail);
    OPENSSL_cleanse(st, sizeof st);
}

/* ---- NTOWFv2 and NTProofStr (MS-NLMP 3.3.2) ---- */

/* UTF-8 to UTF-16LE; -1 on invalid UTF-8 or when out is too small. */
static long utf8_to_utf16le(const char *in, unsigned char *out, size_t max)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0;

    while (*s) {
        uint32_t cp;
        int extra;
        if (*s < 0x80) {
            cp = *s;
            extra = 0;
        } else if ((*s & 0xe0) == 0xc0) {
            cp = *s & 0x1fu;
            extra = 1;
        } else if ((*s & 0xf0) == 0xe0) {
            cp = *s & 0x0fu;
            extra = 2;
        } else if ((*s & 0xf8) == 0xf0) {
            cp = *s & 0x07u;
            extra = 3;
        } else {
            return -1;
        }
        s++;
        for (int i = 0; i < extra; i++, s++) {
            if ((*s & 0xc0) != 0x80)
                return -1;
            cp = cp << 6 | (*s & 0x3fu);
        }
        /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
        if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) ||
            (extra == 3 && cp < 0x10000) || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return -1;
        if (cp >= 0x10000) {
            if (o + 4 > max)
                return -1;
            cp -= 0x10000;
            put_le16(out + o, (uint16_t)(0xd800 | (cp >> 10)));
            put_le16(out + o + 2, (uint16_t)(0xdc00 | (cp & 0x3ff)));
            o += 4;
        } else {
            if (o + 2 > max)
                return -1;
            put_le16(out + o, (uint16_t)cp);
            o += 2;
        }
    }
    return (long)o;
}

static int hmac_md5(const unsigned char *key, size_t klen, const unsigned char *a, size_t alen,
                    const unsigned char *b, size_t blen, unsigned char out[16])
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[2];
    size_t olen = 0;
    int ok;

    params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *)"MD5", 0);
    params[1] = OSSL_PARAM_construct_end();
    ok = ctx != NULL && EVP_MAC_init(ctx, key, klen, params) == 1 &&
         EVP_MAC_update(ctx, a, alen) == 1 && (blen == 0 || EVP_MAC_update(ctx, b, blen) == 1) &&
         EVP_MAC_final(ctx, out, &olen, 16) == 1 && olen == 16;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ok ? 0 : -1;
}

int ca_ntlm_ntowfv2(const char *password, const char *user, const unsigned char *dom16,
                    size_t dom16_len, unsigned char out[16])
{
    unsigned char pw16[1024], nt[16], who[2 * NAME_MAX_ + 512];
    size_t ulen = strlen(user), o = 0;
    long n = utf8_to_utf16le(password, pw16, sizeof pw16);
    int rc = -1;

    if (n < 0 || ulen >= NAME_MAX_ || 2 * ulen + dom16_len > sizeof who)
        goto out;
    ca_ntlm_md4(pw16, (size_t)n, nt);
    /* UNICODE(Uppercase(User) || UserDom): the user is folded, the domain not. */
    for (size_t i = 0; i < ulen; i++) {
        unsigned char ch = (unsigned char)user[i];
        if (ch >= 0x80)
            goto out;
        put_le16(who + o, (uint16_t)(ch >= 'a' && ch <= 'z' ? ch - 32 : ch));
        o += 2;
    }
    if (dom16_len > 0)
        memcpy(who + o, dom16, dom16_len);
    o += dom16_len;
    rc = hmac_md5(nt, sizeof nt, who, o, NULL, 0, out);
out:
    OPENSSL_cleanse(pw16, sizeof pw16);
    OPENSSL_cleanse(nt, sizeof nt);
    return rc;
}

int ca_ntlm_proof(const unsigned char key[16], const unsigned char challenge[8],
                  const unsigned char *temp, size_t temp_len, unsigned char out[16])
{
    return hmac_md5(key, 16, challenge, 8, temp, temp_len, out);
}

/* ---- configuration ---- */

static int netbios_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 15)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

static int dns_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n >= NAME_MAX_ || s[0] == '.' || s[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
              s[i] == '.'))
            return 0;
    return 1;
}

enum clc_err ca_ntlm_config(struct emu_ca *ca, const cJSON *cfg, struct clc_errinfo *ei)
{
    const cJSON *o = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "ntlm") : NULL;
    const char *dom = "CERTLC", *dns = "certlc.test", *srv = "CA01";
    struct ca_ntlm *n;
    const cJSON *it;
    int any = 0;

    for (size_t i = 0; i < ca->nacct; i++)
        any |= ca->acct[i].ntlm;
    if (o != NULL) {
        if (!cJSON_IsObject(o))
            return clc_errf(ei, CLC_ERR_CONFIG, "ca.ntlm must be an object");
        cJSON_ArrayForEach(it, o)
        {
            if (strcmp(it->string, "domain") != 0 && strcmp(it->string, "dns_domain") != 0 &&
                strcmp(it->string, "server") != 0)
                return clc_errf(ei, CLC_ERR_CONFIG, "ca.ntlm: unknown key '%.64s'", it->string);
        }
        if (clc_json_str_opt(o, "domain", dom, &dom, ei) != CLC_OK || !netbios_ok(dom))
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "ca.ntlm.domain: a NetBIOS name of 1-15 of [A-Z0-9-]");
        if (clc_json_str_opt(o, "server", srv, &srv, ei) != CLC_OK || !netbios_ok(srv))
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "ca.ntlm.server: a NetBIOS name of 1-15 of [A-Z0-9-]");
        if (clc_json_str_opt(o, "dns_domain", dns, &dns, ei) != CLC_OK || !dns_ok(dns))
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "ca.ntlm.dns_domain: a lower-case DNS name under 64 characters");
    }
    if (!any)
        return CLC_OK; /* no account may use NTLM: it is not offered */
    n = calloc(1, sizeof *n);
    if (n == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&n->mu, NULL);
    snprintf(n->domain, sizeof n->domain, "%s", dom);
    snprintf(n->server, sizeof n->server, "%s", srv);
    snprintf(n->dns_domain, sizeof n->dns_domain, "%s", dns);
    snprintf(n->dns_server, sizeof n->dns_server, "%s.%s", srv, dns);
    for (char *p = n->dns_server; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + 32);
    ca->ntlm = n;
    return CLC_OK;
}

void ca_ntlm_cleanup(struct emu_ca *ca)
{
    if (ca->ntlm == NULL)
        return;
    pthread_mutex_destroy(&ca->ntlm->mu);
    OPENSSL_cleanse(ca->ntlm, sizeof *ca->ntlm);
    free(ca->ntlm);
    ca->ntlm = NULL;
}

/* ---- connection state (under n->mu) ---- */

/* The live state of connection id, or NULL; forgets it once idle too long. */
static struct ntlm_conn *conn_find(struct ca_ntlm *n, uint64_t id, int64_t now)
{
    for (size_t i = 0; i < CONNS; i++) {
        struct ntlm_conn *c = &n->conn[i];
        if (c->id != id)
            continue;
        if (now - c->seen_ms > IDLE_MS) {
            memset(c, 0, sizeof *c);
            return NULL;
        }
        c->seen_ms = now;
        return c;
    }
    return NULL;
}

/* A slot for connection id: its own, a free or expired one, else the one
 * unused longest (the table is bounded; a flood only costs handshakes). */
static struct ntlm_conn *conn_take(struct ca_ntlm *n, uint64_t id, int64_t now)
{
    struct ntlm_conn *c = conn_find(n, id, now), *old = &n->conn[0];

    for (size_t i = 0; c == NULL && i < CONNS; i++) {
        if (n->conn[i].id == 0 || now - n->conn[i].seen_ms > IDLE_MS)
            c = &n->conn[i];
        else if (n->conn[i].seen_ms < old->seen_ms)
            old = &n->conn[i];
    }
    if (c == NULL)
        c = old;
    memset(c, 0, sizeof *c);
    c->id = id;
    c->seen_ms = now;
    return c;
}

const struct ca_account *ca_ntlm_conn_account(struct emu_ca *ca, struct emu_req *r)
{
    struct ca_ntlm *n = ca->ntlm;
    const struct ca_account *a = NULL;
    struct ntlm_conn *c;

    if (n == NULL || emu_req_conn_id(r) == 0)
        return NULL;
    pthread_mutex_lock(&n->mu);
    c = conn_find(n, emu_req_conn_id(r), clc_mono_ms());
    if (c != NULL && c->authenticated && c->account < ca->nacct)
        a = &ca->acct[c->account];
    pthread_mutex_unlock(&n->mu);
    return a;
}

/* ---- messages ---- */

struct field {
    size_t len, off;
};

/* A security buffer (Len, MaxLen, Offset) at p: its payload must lie inside
 * the message, after the fixed header. */
static int field_at(const unsigned char *msg, size_t len, size_t at, size_t head, struct field *f)
{
    f->len = le16(msg + at);
    f->off = le32(msg + at + 4);
    if (f->len == 0)
        return 1;
    return f->off >= head && f->off <= len && f->len <= len - f->off;
}

/* ASCII from a message string (UTF-16LE or OEM); 0 when it is not printable
 * ASCII or too long. */
static int text_of(const unsigned char *p, size_t n, int unicode, char *out, size_t max)
{
    size_t o = 0, step = unicode ? 2 : 1;

    if (unicode && n % 2 != 0)
        return 0;
    for (size_t i = 0; i < n; i += step) {
        unsigned ch = unicode ? le16(p + i) : p[i];
        if (ch < 0x20 || ch > 0x7e || o + 1 >= max)
            return 0;
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return 1;
}

static size_t put_av(unsigned char *p, uint16_t id, const char *ascii)
{
    size_t n = strlen(ascii);

    put_le16(p, id);
    put_le16(p + 2, (uint16_t)(2 * n));
    for (size_t i = 0; i < n; i++)
        put_le16(p + 4 + 2 * i, (uint16_t)(unsigned char)ascii[i]);
    return 4 + 2 * n;
}

/* CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2) into c->chal. */
static int build_challenge(const struct ca_ntlm *n, struct ntlm_conn *c, uint32_t asked,
                           int64_t now_s)
{
    unsigned char *m = c->chal, ti[512];
    size_t tlen = 0, name_len, off = 56;
    uint64_t ft = (uint64_t)(now_s + FILETIME_UNIX_OFFSET) * 10000000u;
    int unicode = (asked & NF_UNICODE) != 0;

    if (clc_rand_bytes(c->challenge, sizeof c->challenge) != CLC_OK)
        return -1;
    c->flags = (unicode ? NF_UNICODE : NF_OEM) | NF_REQUEST_TARGET | NF_NTLM |
               (asked & NF_ALWAYS_SIGN) | NF_TARGET_TYPE_DOMAIN |
               (asked & NF_EXTENDED_SESSIONSECURITY) | NF_TARGET_INFO | NF_VERSION;
    tlen += put_av(ti + tlen, AV_NB_DOMAIN, n->domain);
    tlen += put_av(ti + tlen, AV_NB_COMPUTER, n->server);
    tlen += put_av(ti + tlen, AV_DNS_DOMAIN, n->dns_domain);
    tlen += put_av(ti + tlen, AV_DNS_COMPUTER, n->dns_server);
    put_le16(ti + tlen, AV_TIMESTAMP);
    put_le16(ti + tlen + 2, 8);
    put_le32(ti + tlen + 4, (uint32_t)ft);
    put_le32(ti + tlen + 8, (uint32_t)(ft >> 32));
    tlen += 12;
    put_le32(ti + tlen, 0); /* MsvAvEOL */
    tlen += 4;

    name_len = strlen(n->domain) * (unicode ? 2 : 1);
    memset(m, 0, off);
    memcpy(m, signature, 8);
    put_le32(m + 8, 2);
    put_le16(m + 12, (uint16_t)name_len);
    put_le16(m + 14, (uint16_t)name_len);
    put_le32(m + 16, (uint32_t)off);
    put_le32(m + 20, c->flags);
    memcpy(m + 24, c->challenge, 8);
    put_le16(m + 40, (uint16_t)tlen);
    put_le16(m + 42, (uint16_t)tlen);
    put_le32(m + 44, (uint32_t)(off + name_len));
    /* Version: 10.0 build 20348, NTLMSSP_REVISION_W2K3. */
    m[48] = 10;
    m[49] = 0;
    put_le16(m + 50, 20348);
    m[55] = 0x0f;
    for (size_t i = 0; i < strlen(n->domain); i++) {
        if (unicode)
            put_le16(m + off + 2 * i, (uint16_t)(unsigned char)n->domain[i]);
        else
            m[off + i] = (unsigned char)n->domain[i];
    }
    memcpy(m + off + name_len, ti, tlen);
    c->chal_len = off + name_len + tlen;
    return 0;
}

static enum ca_winauth say(enum ca_winauth v, char *line, size_t n, const char *why)
{
    snprintf(line, n, "%s", why);
    return v;
}

/* Leg 1: NEGOTIATE_MESSAGE in, CHALLENGE_MESSAGE out. */
static enum ca_winauth negotiate_leg(struct emu_ca *ca, struct emu_req *r, const unsigned char *msg,
                                     size_t len, char *line, size_t n)
{
    struct ca_ntlm *nt = ca->ntlm;
    struct ntlm_conn *c;
    struct field f1, f2;
    uint32_t flags;
    char *b64 = NULL;
    enum ca_winauth v;

    if (len < 16)
        return say(CA_WINAUTH_MALFORMED, line, n, "NTLM NEGOTIATE_MESSAGE too short");
    if (len > NEGO_MAX)
        return say(CA_WINAUTH_MALFORMED, line, n, "NTLM NEGOTIATE_MESSAGE too large");
    flags = le32(msg + 12);
    if (len >= 32 && (!field_at(msg, len, 16, 32, &f1) || !field_at(msg, len, 24, 32, &f2)))
        return say(CA_WINAUTH_MALFORMED, line, n,
                   "NTLM NEGOTIATE_MESSAGE field points outside the message");
    if (!(flags & (NF_UNICODE | NF_OEM)))
        return say(CA_WINAUTH_MALFORMED, line, n, "NTLM NEGOTIATE_MESSAGE names no character set");
    if (!(flags & NF_NTLM))
        return say(CA_WINAUTH_REFUSED, line, n, "the client does not offer NTLM");
    /* Without a connection identity the state could not be kept apart. */
    if (emu_req_conn_id(r) == 0)
        return say(CA_WINAUTH_REFUSED, line, n, "no connection identity for NTLM");
    pthread_mutex_lock(&nt->mu);
    /* A new handshake on a connection starts it over, authenticated or not. */
    c = conn_take(nt, emu_req_conn_id(r), clc_mono_ms());
    memcpy(c->nego, msg, len);
    c->nego_len = len;
    if (build_challenge(nt, c, flags, emu_now(ca->e)) != 0 ||
        clc_b64_encode(c->chal, c->chal_len, &b64, NULL) != CLC_OK) {
        memset(c, 0, sizeof *c);
        v = say(CA_WINAUTH_REFUSED, line, n, "could not make an NTLM challenge");
    } else {
        snprintf(line, n, "WWW-Authenticate: NTLM %s", b64);
        v = CA_WINAUTH_CHALLENGE;
    }
    pthread_mutex_unlock(&nt->mu);
    free(b64);
    return v;
}

/* Walks the AV pairs of an NTLMv2 temp from its fixed part on: 1 when they
 * are well formed and end with MsvAvEOL; *mic when MsvAvFlags says the
 * message carries a MIC. */
static int temp_avpairs(const unsigned char *t, size_t len, int *mic)
{
    size_t p = TEMP_FIXED;

    *mic = 0;
    while (p + 4 <= len) {
        uint16_t id = le16(t + p), n = le16(t + p + 2);
        if (n > len - p - 4)
            return 0;
        if (id == AV_EOL)
            return n == 0;
        if (id == AV_FLAGS && n == 4 && (le32(t + p + 4) & AV_FLAG_MIC))
            *mic = 1;
        p += 4 + (size_t)n;
    }
    return 0;
}

/* The MIC: HMAC-MD5(session base key, NEGOTIATE || CHALLENGE || AUTHENTICATE
 * with the MIC zeroed). With no key exchange, ExportedSessionKey is the
 * NTLMv2 session base key. */
static int mic_ok(const struct ntlm_conn *c, const unsigned char *msg, size_t len,
                  const unsigned char key[16], const unsigned char proof[16])
{
    unsigned char sbk[16], mic[16], zero[MSG_MAX];
    EVP_MAC *mac = NULL;
    EVP_MAC_CTX *ctx = NULL;
    OSSL_PARAM params[2];
    size_t olen = 0;
    int ok = 0;

    if (len < MIC_OFFSET + 16 || hmac_md5(key, 16, proof, 16, NULL, 0, sbk) != 0)
        goto out;
    memcpy(zero, msg, len);
    memset(zero + MIC_OFFSET, 0, 16);
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *)"MD5", 0);
    params[1] = OSSL_PARAM_construct_end();
    ok = ctx != NULL && EVP_MAC_init(ctx, sbk, 16, params) == 1 &&
         EVP_MAC_update(ctx, c->nego, c->nego_len) == 1 &&
         EVP_MAC_update(ctx, c->chal, c->chal_len) == 1 && EVP_MAC_update(ctx, zero, len) == 1 &&
         EVP_MAC_final(ctx, mic, &olen, 16) == 1 && olen == 16 &&
         CRYPTO_memcmp(mic, msg + MIC_OFFSET, 16) == 0;
out:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    OPENSSL_cleanse(sbk, sizeof sbk);
    return ok;
}

/* Checks an AUTHENTICATE_MESSAGE against connection state c (challenged). */
static enum ca_winauth check_authenticate(struct emu_ca *ca, struct ntlm_conn *c,
                                          const unsigned char *msg, size_t len,
                                          const struct ca_account **account, char *line, size_t n)
{
    struct ca_ntlm *nt = ca->ntlm;
    struct field lm, ntr, dom, usr, ws, key;
    int unicode = (c->flags & NF_UNICODE) != 0, mic = 0;
    char user[CA_NAME_MAX], domain[NAME_MAX_];
    unsigned char dom16[2 * NAME_MAX_], rkey[16], proof[16];
    const unsigned char *temp;
    const struct ca_account *a;
    size_t temp_len, dlen;
    enum ca_winauth v = CA_WINAUTH_REFUSED;

    if (!field_at(msg, len, 12, AUTH_HEAD, &lm) || !field_at(msg, len, 20, AUTH_HEAD, &ntr) ||
        !field_at(msg, len, 28, AUTH_HEAD, &dom) || !field_at(msg, len, 36, AUTH_HEAD, &usr) ||
        !field_at(msg, len, 44, AUTH_HEAD, &ws) || !field_at(msg, len, 52, AUTH_HEAD, &key))
        return say(CA_WINAUTH_MALFORMED, line, n,
                   "NTLM AUTHENTICATE_MESSAGE field points outside the message");
    (void)lm;
    (void)ws;
    (void)key;
    if (ntr.len == 0)
        return say(CA_WINAUTH_REFUSED, line, n, "anonymous or LM-only NTLM is refused");
    if (ntr.len == 24)
        return say(CA_WINAUTH_REFUSED, line, n, "NTLMv1 is refused: only NTLMv2 is accepted");
    if (ntr.len < 16 + TEMP_FIXED + 4)
        return say(CA_WINAUTH_MALFORMED, line, n, "NTLMv2 response too short");
    temp = msg + ntr.off + 16;
    temp_len = ntr.len - 16;
    if (temp[0] != 1 || temp[1] != 1 || !temp_avpairs(temp, temp_len, &mic))
        return say(CA_WINAUTH_MALFORMED, line, n, "not a well-formed NTLMv2 response");
    if (le32(msg + 60) & NF_KEY_EXCH & ~c->flags)
        return say(CA_WINAUTH_REFUSED, line, n, "NTLM key exchange was not offered");
    if (usr.len == 0 || !text_of(msg + usr.off, usr.len, unicode, user, sizeof user))
        return say(CA_WINAUTH_REFUSED, line, n, "no NTLM user name, or not one of an account");
    if (!text_of(msg + dom.off, dom.len, unicode, domain, sizeof domain))
        return say(CA_WINAUTH_REFUSED, line, n, "NTLM domain name is not one of this CA's");
    if (domain[0] != '\0' && strcasecmp(domain, nt->domain) != 0 &&
        strcasecmp(domain, nt->dns_domain) != 0)
        return say(CA_WINAUTH_REFUSED, line, n, "NTLM domain name is not one of this CA's");
    a = ca_account_find(ca, user);
    if (a == NULL || !a->ntlm)
        return say(CA_WINAUTH_REFUSED, line, n, "no account of that name may use NTLM");
    /* The hash covers the domain exactly as the client sent it. */
    dlen = strlen(domain);
    for (size_t i = 0; i < dlen; i++)
        put_le16(dom16 + 2 * i, (uint16_t)(unsigned char)domain[i]);
    if (ca_ntlm_ntowfv2(clc_secret_reveal(a->password), user, dom16, 2 * dlen, rkey) != 0 ||
        ca_ntlm_proof(rkey, c->challenge, temp, temp_len, proof) != 0) {
        v = say(CA_WINAUTH_REFUSED, line, n, "NTLM check failed");
    } else if (CRYPTO_memcmp(proof, msg + ntr.off, 16) != 0) {
        v = say(CA_WINAUTH_REFUSED, line, n, "NTLMv2 response does not match (wrong password)");
    } else if (mic && !mic_ok(c, msg, len, rkey, proof)) {
        v = say(CA_WINAUTH_REFUSED, line, n, "NTLM message integrity code does not match");
    } else {
        *account = a;
        v = CA_WINAUTH_OK;
    }
    OPENSSL_cleanse(rkey, sizeof rkey);
    OPENSSL_cleanse(proof, sizeof proof);
    return v;
}

/* Leg 3: the AUTHENTICATE_MESSAGE answers this connection's challenge,
 * which is used once whatever the outcome. */
static enum ca_winauth authenticate_leg(struct emu_ca *ca, struct emu_req *r,
                                        const unsigned char *msg, size_t len,
                                        const struct ca_account **account, char *line, size_t n)
{
    struct ca_ntlm *nt = ca->ntlm;
    struct ntlm_conn *c;
    enum ca_winauth v;

    if (len < AUTH_HEAD)
        return say(CA_WINAUTH_MALFORMED, line, n, "NTLM AUTHENTICATE_MESSAGE too short");
    pthread_mutex_lock(&nt->mu);
    c = conn_find(nt, emu_req_conn_id(r), clc_mono_ms());
    if (c == NULL || c->authenticated || c->chal_len == 0) {
        v = say(CA_WINAUTH_REFUSED, line, n,
                "NTLM AUTHENTICATE_MESSAGE without a challenge on this connection");
    } else {
        v = check_authenticate(ca, c, msg, len, account, line, n);
    }
    if (c != NULL && v == CA_WINAUTH_OK) {
        c->authenticated = 1;
        c->account = (size_t)(*account - ca->acct);
        memset(c->challenge, 0, sizeof c->challenge);
        c->chal_len = c->nego_len = 0;
    } else if (c != NULL) {
        memset(c, 0, sizeof *c);
    }
    pthread_mutex_unlock(&nt->mu);
    return v;
}

enum ca_winauth ca_ntlm_step(struct emu_ca *ca, struct emu_req *r, const char *token,
                             const struct ca_account **account, char *line, size_t n)
{
    unsigned char *msg = NULL;
    size_t len = 0, tl;
    enum ca_winauth v;

    *account = NULL;
    if (ca->ntlm == NULL)
        return say(CA_WINAUTH_REFUSED, line, n, "NTLM is not offered");
    while (*token == ' ')
        token++;
    tl = strlen(token);
    while (tl > 0 && token[tl - 1] == ' ')
        tl--;
    if (tl > TOKEN_MAX)
        return say(CA_WINAUTH_MALFORMED, line, n, "NTLM token too large");
    if (tl == 0 || clc_b64_decode(token, tl, &msg, &len) != CLC_OK)
        return say(CA_WINAUTH_MALFORMED, line, n, "NTLM token is not base64");
    if (len > MSG_MAX) {
        v = say(CA_WINAUTH_MALFORMED, line, n, "NTLM token too large");
    } else if (len < 12 || memcmp(msg, signature, 8) != 0) {
        v = say(CA_WINAUTH_MALFORMED, line, n, "not an NTLMSSP message");
    } else if (le32(msg + 8) == 1) {
        v = negotiate_leg(ca, r, msg, len, line, n);
    } else if (le32(msg + 8) == 3) {
        v = authenticate_leg(ca, r, msg, len, account, line, n);
    } else {
        v = say(CA_WINAUTH_MALFORMED, line, n, "unexpected NTLM message type");
    }
    OPENSSL_cleanse(msg, len);
    free(msg);
    return v;
}
