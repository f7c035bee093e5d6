/* Access tokens of the emulated Entra ID: minting (RS256 JWTs with Entra's
 * claims, and federated tokens of the emulator's own OIDC issuer), the
 * JWKS, and the bearer check every emulated service runs (emu_auth_verify). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "core/b64.h"
#include "core/json.h"
#include "core/rand.h"
#include "crypto/jwt.h"
#include "crypto/signer.h"
#include "emulator/directory.h"
#include "emulator/token_cache.h"
#include "emulator/identity.h"
#include "emulator/server.h"
#include "emulator/services.h"
#include "emulator/state.h"

static enum clc_err sign_claims(struct emu_directory *d, const cJSON *claims, char **jwt,
                                struct clc_errinfo *ei)
{
    cJSON *hdr = cJSON_CreateObject();
    enum clc_err err;
    if (!hdr || clc_json_add_str(hdr, "kid", emu_directory_kid(d)))
        err = clc_errf(ei, CLC_ERR_NOMEM, "token header");
    else
        err = clc_jwt_sign(emu_directory_key(d), hdr, claims, jwt, ei);
    cJSON_Delete(hdr);
    return err;
}

enum clc_err emu_directory_mint(struct emu_directory *d, const struct emu_principal *p,
                                const char *aud, char **jwt, int64_t *iat, int64_t *exp,
                                struct clc_errinfo *ei)
{
    enum clc_err err = CLC_ERR_NOMEM;
    int64_t now = emu_now(emu_directory_emu(d));
    unsigned char raw[16];
    char *uti = NULL;
    *jwt = NULL;

    cJSON *c = cJSON_CreateObject();
    cJSON *roles = c ? cJSON_AddArrayToObject(c, "roles") : NULL;
    if (!roles || clc_rand_bytes(raw, sizeof raw) ||
        clc_b64url_encode(raw, sizeof raw, &uti, NULL) || clc_json_add_str(c, "aud", aud) ||
        clc_json_add_str(c, "iss", emu_directory_issuer(d)) || clc_json_add_int(c, "iat", now) ||
        clc_json_add_int(c, "nbf", now) || clc_json_add_int(c, "exp", now + EMU_TOKEN_LIFETIME_S) ||
        clc_json_add_str(c, "appid", p->client_id) ||
        clc_json_add_str(c, "idp", emu_directory_issuer(d)) ||
        clc_json_add_str(c, "oid", p->object_id) || clc_json_add_str(c, "sub", p->object_id) ||
        clc_json_add_str(c, "tid", emu_directory_tenant(d)) || clc_json_add_str(c, "uti", uti) ||
        clc_json_add_str(c, "ver", "1.0")) {
        err = clc_errf(ei, CLC_ERR_NOMEM, "building token claims");
        goto out;
    }
    for (unsigned i = 0; i < 32; i++) {
        unsigned bit = 1u << i;
        if ((p->roles & bit) &&
            !cJSON_AddItemToArray(roles, cJSON_CreateString(emu_role_name(bit)))) {
            err = clc_errf(ei, CLC_ERR_NOMEM, "building token claims");
            goto out;
        }
    }
    err = sign_claims(d, c, jwt, ei);
    if (!err && iat)
        *iat = now;
    if (!err && exp)
        *exp = now + EMU_TOKEN_LIFETIME_S;
out:
    cJSON_Delete(c);
    free(uti);
    return err;
}

enum clc_err emu_directory_mint_federated(struct emu_directory *d, const struct emu_principal *p,
                                          const char *issuer, char **jwt, struct clc_errinfo *ei)
{
    char sub[256];
    char jti[37];
    int64_t now = emu_now(emu_directory_emu(d));
    enum clc_err err;
    *jwt = NULL;
    if (!emu_directory_fed_subject(d, p->client_id, sub, sizeof sub))
        return clc_errf(ei, CLC_ERR_NOT_FOUND, "identity '%s' has no federated credential",
                        p->name);
    clc_rand_uuid(jti);
    cJSON *c = cJSON_CreateObject();
    if (!c || clc_json_add_str(c, "iss", issuer) || clc_json_add_str(c, "sub", sub) ||
        clc_json_add_str(c, "aud", EMU_FEDERATION_AUDIENCE) || clc_json_add_int(c, "iat", now) ||
        clc_json_add_int(c, "nbf", now) || clc_json_add_int(c, "exp", now + 3600) ||
        clc_json_add_str(c, "jti", jti))
        err = clc_errf(ei, CLC_ERR_NOMEM, "building federated token");
    else
        err = sign_claims(d, c, jwt, ei);
    cJSON_Delete(c);
    return err;
}

enum clc_err emu_directory_verify_sig(struct emu_directory *d, const char *jwt, cJSON **header,
                                      cJSON **claims, struct clc_errinfo *ei)
{
    return clc_jwt_verify(jwt, clc_signer_pkey(emu_directory_key(d)), "RS256", header, claims, ei);
}

static int aud_equal(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na && a[na - 1] == '/')
        na--;
    if (nb && b[nb - 1] == '/')
        nb--;
    return na == nb && strncmp(a, b, na) == 0;
}

/* The checks every use makes, cached or not: audience, times, identity. */
static enum clc_err check_facts(struct emu_directory *d, const struct emu_token_facts *f,
                                const char *audience, struct emu_principal *out,
                                struct clc_errinfo *ei)
{
    int64_t now = emu_now(emu_directory_emu(d));

    if (!aud_equal(f->aud, audience))
        return clc_errf(ei, CLC_ERR_AUTH, "invalid token: audience is not %s", audience);
    if (now >= f->exp)
        return clc_errf(ei, CLC_ERR_AUTH, "invalid token: expired");
    if (f->nbf != 0 && now < f->nbf)
        return clc_errf(ei, CLC_ERR_AUTH, "invalid token: not yet valid");
    if (!emu_directory_find(d, f->appid, out))
        return clc_errf(ei, CLC_ERR_AUTH, "invalid token: unknown application");
    return CLC_OK;
}

enum clc_err emu_directory_verify_token(struct emu_directory *d, const char *jwt,
                                        const char *audience, struct emu_principal *out,
                                        struct clc_errinfo *ei)
{
    enum clc_err err;
    cJSON *hdr = NULL, *claims = NULL;
    const char *iss, *aud, *appid, *tid;
    struct emu_token_facts f;
    int64_t nbf = 0;
    memset(out, 0, sizeof *out);

    if (emu_token_cache_get(emu_directory_token_cache(d), jwt, &f))
        return check_facts(d, &f, audience, out, ei);
    err = emu_directory_verify_sig(d, jwt, &hdr, &claims, ei);
    if (err) {
        err = clc_err_wrap(ei, CLC_ERR_AUTH, "invalid token");
        goto out;
    }
    if (clc_json_str(claims, "iss", &iss, NULL) || strcmp(iss, emu_directory_issuer(d)) != 0) {
        err =
            clc_errf(ei, CLC_ERR_AUTH, "invalid token: issuer is not %s", emu_directory_issuer(d));
        goto out;
    }
    if (clc_json_str(claims, "aud", &aud, NULL) || !aud_equal(aud, audience)) {
        err = clc_errf(ei, CLC_ERR_AUTH, "invalid token: audience is not %s", audience);
        goto out;
    }
    if (clc_json_str(claims, "tid", &tid, NULL) || strcmp(tid, emu_directory_tenant(d)) != 0) {
        err =
            clc_errf(ei, CLC_ERR_AUTH, "invalid token: tenant is not %s", emu_directory_tenant(d));
        goto out;
    }
    err = clc_jwt_check_times(claims, emu_now(emu_directory_emu(d)), 0, ei);
    if (err) {
        err = clc_err_wrap(ei, CLC_ERR_AUTH, "invalid token");
        goto out;
    }
    if (clc_json_str(claims, "appid", &appid, NULL) || !emu_directory_find(d, appid, out)) {
        err = clc_errf(ei, CLC_ERR_AUTH, "invalid token: unknown application");
        goto out;
    }
    /* Signed by us, issuer and tenant ours: remember it for later requests. */
    memset(&f, 0, sizeof f);
    clc_json_int_opt(claims, "nbf", 0, &nbf, NULL);
    if (strlen(aud) < sizeof f.aud && strlen(appid) < sizeof f.appid &&
        clc_json_int(claims, "exp", &f.exp, NULL) == CLC_OK) {
        snprintf(f.aud, sizeof f.aud, "%s", aud);
        snprintf(f.appid, sizeof f.appid, "%s", appid);
        f.nbf = nbf;
        emu_token_cache_put(emu_directory_token_cache(d), jwt, &f);
    }
out:
    cJSON_Delete(hdr);
    cJSON_Delete(claims);
    return err;
}

enum clc_err emu_auth_verify(struct emu *e, const struct emu_req *r, const char *audience,
                             struct emu_principal *out, struct clc_errinfo *ei)
{
    memset(out, 0, sizeof *out);
    struct emu_directory *d = emu_directory_of(e);
    const char *h = emu_req_header(r, "Authorization");
    if (!d)
        return clc_errf(ei, CLC_ERR_INTERNAL, "no directory");
    if (!h || !*h)
        return clc_errf(ei, CLC_ERR_AUTH, "missing Authorization header");
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return clc_errf(ei, CLC_ERR_AUTH, "Authorization is not a Bearer token");
    h += 7;
    while (*h == ' ')
        h++;
    size_t n = strlen(h);
    while (n && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    if (n == 0)
        return clc_errf(ei, CLC_ERR_AUTH, "empty Bearer token");
    if (n > CLC_JWT_MAX_BYTES)
        return clc_errf(ei, CLC_ERR_AUTH, "Bearer token over %d bytes", CLC_JWT_MAX_BYTES);
    char *tok = malloc(n + 1);
    if (!tok)
        return clc_errf(ei, CLC_ERR_NOMEM, "token copy");
    memcpy(tok, h, n);
    tok[n] = '\0';
    enum clc_err err = emu_directory_verify_token(d, tok, audience, out, ei);
    free(tok);
    return err;
}

cJSON *emu_directory_jwks(struct emu_directory *d)
{
    cJSON *jwk = NULL;
    cJSON *doc = cJSON_CreateObject();
    cJSON *keys = doc ? cJSON_AddArrayToObject(doc, "keys") : NULL;
    if (!keys || clc_signer_public_jwk(emu_directory_key(d), &jwk, NULL))
        goto fail;
    cJSON_AddItemToArray(keys, jwk);
    if (clc_json_add_str(jwk, "kid", emu_directory_kid(d)) || clc_json_add_str(jwk, "use", "sig") ||
        clc_json_add_str(jwk, "alg", "RS256") ||
        clc_json_add_str(jwk, "issuer", emu_directory_issuer(d)))
        goto fail;
    return doc;
fail:
    cJSON_Delete(doc);
    return NULL;
}
