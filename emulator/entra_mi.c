/* The emulated managed identity endpoints, plain http as on Azure: IMDS
 * ("imds": /metadata/identity/oauth2/token, and the App Service style
 * /msi/token guarded by the identity header) and Azure Arc's HIMDS ("arc"),
 * whose challenge writes a single-use key file the caller must read. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include "core/file.h"
#include "core/json.h"
#include "core/rand.h"
#include "emulator/directory.h"
#include "emulator/emu.h"
#include "emulator/identity.h"
#include "emulator/server.h"
#include "emulator/services.h"
#include "emulator/state.h"

#define ARC_MAX_PENDING 32
#define ARC_KEY_HEX 64
#define MI_PATH_MAX 4096
#define RESOURCE_MAX 512

struct arc_pending {
    char path[MI_PATH_MAX];
    char key[ARC_KEY_HEX + 1];
};

struct emu_arc {
    pthread_mutex_t mu;
    char dir[MI_PATH_MAX - 64]; /* room for "/<uuid>.key" in a pending path */
    char tmp_root[MI_PATH_MAX]; /* private temp dir we made (removed at free), or "" */
    struct arc_pending pend[ARC_MAX_PENDING];
    size_t n;
};

/* ---- Arc key files ---- */

enum clc_err emu_arc_new(struct emu *e, struct emu_arc **out, struct clc_errinfo *ei)
{
    enum clc_err err = CLC_OK;
    *out = NULL;
    struct emu_arc *a = calloc(1, sizeof *a);
    if (!a)
        return clc_errf(ei, CLC_ERR_NOMEM, "arc state");
    pthread_mutex_init(&a->mu, NULL);

    const cJSON *cfg = emu_config(e);
    const cJSON *v = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "arc_key_dir") : NULL;
    const char *data = emu_data_dir(e);
    char want[MI_PATH_MAX];
    int n;
    if (cJSON_IsString(v) && v->valuestring[0]) {
        n = snprintf(want, sizeof want, "%s", v->valuestring);
    } else if (data) {
        n = snprintf(want, sizeof want, "%s/arc-tokens", data);
    } else {
        snprintf(a->tmp_root, sizeof a->tmp_root, "/tmp/certlc-emu-arc-XXXXXX");
        if (!mkdtemp(a->tmp_root)) {
            a->tmp_root[0] = '\0';
            err = clc_errf(ei, CLC_ERR_IO, "arc: cannot make a temp dir");
            goto out;
        }
        n = snprintf(want, sizeof want, "%s/arc-tokens", a->tmp_root);
    }
    if (n < 0 || (size_t)n >= sizeof want - 64) {
        err = clc_errf(ei, CLC_ERR_LIMIT, "arc_key_dir: path too long");
        goto out;
    }
    err = clc_file_mkdirs(want, 0700, ei);
    if (err)
        goto out;
    /* The realm names the canonical path: clients compare after realpath. */
    char *real = realpath(want, NULL);
    if (!real || strlen(real) >= sizeof a->dir) {
        free(real);
        err = clc_errf(ei, CLC_ERR_IO, "arc_key_dir %s: cannot resolve", want);
        goto out;
    }
    memcpy(a->dir, real, strlen(real) + 1);
    free(real);
    *out = a;
    a = NULL;
out:
    emu_arc_free(a);
    return err;
}

void emu_arc_free(struct emu_arc *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++)
        unlink(a->pend[i].path);
    if (a->tmp_root[0]) {
        rmdir(a->dir);
        rmdir(a->tmp_root);
    }
    OPENSSL_cleanse(a->pend, sizeof a->pend);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

const char *emu_arc_key_dir(const struct emu_arc *a)
{
    return a ? a->dir : NULL;
}

static void arc_drop(struct emu_arc *a, size_t i)
{
    unlink(a->pend[i].path);
    memmove(&a->pend[i], &a->pend[i + 1], (a->n - i - 1) * sizeof a->pend[0]);
    a->n--;
    OPENSSL_cleanse(&a->pend[a->n], sizeof a->pend[0]);
}

enum clc_err emu_arc_challenge(struct emu_arc *a, char *path, size_t pathlen,
                               struct clc_errinfo *ei)
{
    char uuid[37];
    enum clc_err err;
    struct arc_pending p;
    clc_rand_uuid(uuid);
    snprintf(p.path, sizeof p.path, "%s/%s.key", a->dir, uuid);
    clc_rand_hex(p.key, ARC_KEY_HEX / 2);
    if (strlen(p.path) >= pathlen)
        return clc_errf(ei, CLC_ERR_LIMIT, "arc: realm path too long");
    pthread_mutex_lock(&a->mu);
    /* Unredeemed challenges are bounded: the oldest goes first. */
    if (a->n == ARC_MAX_PENDING)
        arc_drop(a, 0);
    err = clc_file_write_atomic(p.path, p.key, ARC_KEY_HEX, 0600, ei);
    if (!err) {
        a->pend[a->n++] = p;
        memcpy(path, p.path, strlen(p.path) + 1);
    }
    pthread_mutex_unlock(&a->mu);
    OPENSSL_cleanse(&p, sizeof p);
    return err;
}

int emu_arc_redeem(struct emu_arc *a, const char *key, size_t len)
{
    int ok = 0;
    if (len != ARC_KEY_HEX)
        return 0;
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < a->n && !ok; i++) {
        if (CRYPTO_memcmp(a->pend[i].key, key, ARC_KEY_HEX) == 0) {
            arc_drop(a, i);
            ok = 1;
        }
    }
    pthread_mutex_unlock(&a->mu);
    return ok;
}

/* ---- replies ---- */

static void mi_error(struct emu_req *r, int status, const char *error, const char *desc,
                     const char *const *hdrs)
{
    cJSON *b = cJSON_CreateObject();
    if (!b || clc_json_add_str(b, "error", error) || clc_json_add_str(b, "error_description", desc))
        emu_reply(r, 500, "text/plain", "out of memory", 13, NULL);
    else
        emu_reply_json(r, status, b, hdrs);
    cJSON_Delete(b);
}

static void mi_route_error(struct emu_req *r, int status, const char *code, const char *message)
{
    (void)code;
    mi_error(r, status, status == 404 ? "not_found" : "invalid_request",
             message ? message : "request refused", NULL);
}

enum mi_shape { SHAPE_IMDS, SHAPE_APP_SERVICE };

static void mi_token(struct emu_req *r, const struct emu_principal *p, const char *resource,
                     enum mi_shape shape)
{
    struct emu_directory *d = r->svc_ctx;
    char *jwt = NULL;
    int64_t iat = 0, exp = 0;
    char s_exp[24], s_in[24], s_nbf[24];
    struct clc_errinfo ei = {0};
    if (emu_directory_mint(d, p, resource, &jwt, &iat, &exp, &ei)) {
        mi_error(r, 500, "internal_error", "token signing failed", NULL);
        return;
    }
    snprintf(s_exp, sizeof s_exp, "%lld", (long long)exp);
    snprintf(s_in, sizeof s_in, "%lld", (long long)(exp - iat - 1));
    snprintf(s_nbf, sizeof s_nbf, "%lld", (long long)iat);
    cJSON *b = cJSON_CreateObject();
    int bad = !b || clc_json_add_str(b, "access_token", jwt) ||
              clc_json_add_str(b, "expires_on", s_exp) ||
              clc_json_add_str(b, "resource", resource) ||
              clc_json_add_str(b, "token_type", "Bearer") ||
              clc_json_add_str(b, "client_id", p->client_id);
    /* IMDS sends every number as a string. */
    if (shape == SHAPE_IMDS)
        bad = bad || clc_json_add_str(b, "refresh_token", "") ||
              clc_json_add_str(b, "expires_in", s_in) ||
              clc_json_add_str(b, "ext_expires_in", s_in) ||
              clc_json_add_str(b, "not_before", s_nbf);
    if (bad)
        emu_reply(r, 500, "text/plain", "out of memory", 13, NULL);
    else
        emu_reply_json(r, 200, b, NULL);
    cJSON_Delete(b);
    free(jwt);
}

static int metadata_ok(struct emu_req *r)
{
    const char *m = emu_req_header(r, "Metadata");
    if (m && strcasecmp(m, "true") == 0)
        return 1;
    mi_error(r, 400, "invalid_request", "Required metadata header not specified", NULL);
    return 0;
}

/* resource (required) and api-version (one of allowed); replies on error. */
static int common_params(struct emu_req *r, const char *const *versions, char *resource)
{
    char ver[32], msg[160];
    if (!emu_req_query(r, "api-version", ver, sizeof ver)) {
        mi_error(r, 400, "invalid_request", "Required query variable 'api-version' is missing",
                 NULL);
        return 0;
    }
    int known = 0;
    for (size_t i = 0; versions[i]; i++)
        known = known || strcmp(ver, versions[i]) == 0;
    if (!known) {
        snprintf(msg, sizeof msg, "Invalid value for query variable 'api-version': '%.20s'", ver);
        mi_error(r, 400, "invalid_request", msg, NULL);
        return 0;
    }
    if (!emu_req_query(r, "resource", resource, RESOURCE_MAX) || !resource[0]) {
        mi_error(r, 400, "invalid_request", "Required query variable 'resource' is missing", NULL);
        return 0;
    }
    return 1;
}

/* User-assigned selection: at most one of the three selectors. */
static int select_identity(struct emu_req *r, const char *cid_name, const char *oid_name,
                           const char *res_name, struct emu_principal *p)
{
    char cid[64], oid[64], res[RESOURCE_MAX];
    int has_c = emu_req_query(r, cid_name, cid, sizeof cid);
    int has_o = emu_req_query(r, oid_name, oid, sizeof oid);
    int has_r = emu_req_query(r, res_name, res, sizeof res);
    if (has_c + has_o + has_r > 1) {
        mi_error(r, 400, "invalid_request",
                 "Only one of client_id, object_id and msi_res_id may be given", NULL);
        return 0;
    }
    if (!emu_directory_find_mi(r->svc_ctx, has_c ? cid : NULL, has_o ? oid : NULL,
                               has_r ? res : NULL, p)) {
        mi_error(r, 400, "invalid_request", "Identity not found", NULL);
        return 0;
    }
    return 1;
}

/* GET /metadata/identity/oauth2/token (Azure VM IMDS) */
static void h_imds(struct emu_req *r)
{
    static const char *const versions[] = {"2018-02-01", "2019-08-01", "2019-11-01",
                                           "2020-06-01", "2021-02-01", NULL};
    char resource[RESOURCE_MAX];
    struct emu_principal p;
    if (!metadata_ok(r) || !common_params(r, versions, resource) ||
        !select_identity(r, "client_id", "object_id", "msi_res_id", &p))
        return;
    mi_token(r, &p, resource, SHAPE_IMDS);
}

/* GET /msi/token (App Service / Functions / Automation sandbox) */
static void h_app_service(struct emu_req *r)
{
    static const char *const versions[] = {"2019-08-01", NULL};
    struct emu_directory *d = r->svc_ctx;
    char resource[RESOURCE_MAX];
    struct emu_principal p;
    const char *want = emu_directory_identity_header(d);
    const char *got = emu_req_header(r, "X-IDENTITY-HEADER");
    if (!got || strlen(got) != strlen(want) || CRYPTO_memcmp(got, want, strlen(want)) != 0) {
        mi_error(r, 401, "unauthorized_client", "X-IDENTITY-HEADER is missing or not valid", NULL);
        return;
    }
    if (!common_params(r, versions, resource) ||
        !select_identity(r, "client_id", "principal_id", "mi_res_id", &p))
        return;
    mi_token(r, &p, resource, SHAPE_APP_SERVICE);
}

static void arc_challenge(struct emu_req *r, const char *why)
{
    char path[MI_PATH_MAX], hdr[MI_PATH_MAX + 40];
    struct clc_errinfo ei = {0};
    struct emu_arc *a = emu_directory_arc(r->svc_ctx);
    if (emu_arc_challenge(a, path, sizeof path, &ei)) {
        mi_error(r, 500, "internal_error", "cannot write the challenge key file", NULL);
        return;
    }
    snprintf(hdr, sizeof hdr, "WWW-Authenticate: Basic realm=%s", path);
    const char *const hdrs[] = {hdr, NULL};
    mi_error(r, 401, "unauthorized_client", why, hdrs);
}

/* GET /metadata/identity/oauth2/token (Azure Arc HIMDS) */
static void h_arc(struct emu_req *r)
{
    static const char *const versions[] = {"2019-11-01", "2020-06-01", NULL};
    char resource[RESOURCE_MAX];
    struct emu_principal p;
    if (!metadata_ok(r) || !common_params(r, versions, resource))
        return;
    const char *auth = emu_req_header(r, "Authorization");
    if (!auth || !*auth) {
        arc_challenge(r, "Authorization header missing: read the key file named by the realm");
        return;
    }
    if (strncasecmp(auth, "Basic ", 6) != 0 ||
        !emu_arc_redeem(emu_directory_arc(r->svc_ctx), auth + 6, strlen(auth + 6))) {
        arc_challenge(r, "Authorization key is not valid or was already used");
        return;
    }
    if (!select_identity(r, "client_id", "object_id", "msi_res_id", &p))
        return;
    mi_token(r, &p, resource, SHAPE_IMDS);
}

static const struct emu_route imds_routes[] = {
    {"GET", "/metadata/identity/oauth2/token", h_imds},
    {"GET", "/msi/token", h_app_service},
};

static const struct emu_service_def imds_def = {
    .name = "imds",
    .routes = imds_routes,
    .nroutes = sizeof imds_routes / sizeof imds_routes[0],
    .plain_http = 1,
    .error = mi_route_error,
};

static const struct emu_route arc_routes[] = {
    {"GET", "/metadata/identity/oauth2/token", h_arc},
};

static const struct emu_service_def arc_def = {
    .name = "arc",
    .routes = arc_routes,
    .nroutes = sizeof arc_routes / sizeof arc_routes[0],
    .plain_http = 1,
    .error = mi_route_error,
};

enum clc_err emu_entra_mi_mount(struct emu *e, struct emu_directory *d, struct clc_errinfo *ei)
{
    enum clc_err err = emu_service_add(e, "imds", &imds_def, emu_config_port(e, "imds"), d, ei);
    if (!err)
        err = emu_service_add(e, "arc", &arc_def, emu_config_port(e, "arc"), d, ei);
    return err;
}
