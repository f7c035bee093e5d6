/* Negotiate (SPNEGO/Kerberos, RFC 4559) for the emulated CA's Web Enrollment
 * pages, as IIS's Windows authentication offers it: the token is accepted
 * with MIT krb5's GSS-API and a keytab from the configuration, the client
 * principal is mapped to a CA account, and the mutual-authentication token
 * goes back in WWW-Authenticate on the reply. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <openssl/crypto.h>

#include "core/b64.h"
#include "core/json.h"
#include "core/log.h"
#include "emulator/ca.h"
#include "emulator/emu_ext.h"

/* A ticket with a Windows PAC can be several KiB; civetweb's request head
 * limit (16 KiB) bounds it anyway. */
#define TOKEN_MAX 12288
#define PATH_MAX_ 4096
#define SERVICE_MAX 64

struct ca_negotiate {
    char keytab[PATH_MAX_];
    char rcache[PATH_MAX_ + 32]; /* replay cache in the CA's directory */
    char service[SERVICE_MAX];   /* first component of the ticket's server principal */
};

/* "major: minor" text of a GSS-API status, for logs and the 401 body. */
static void gss_text(OM_uint32 major, OM_uint32 minor, char *out, size_t n)
{
    OM_uint32 ctx = 0, min2 = 0;
    gss_buffer_desc b = GSS_C_EMPTY_BUFFER;
    size_t o = 0;

    out[0] = '\0';
    for (int pass = 0; pass < 2; pass++) {
        int type = pass == 0 ? GSS_C_GSS_CODE : GSS_C_MECH_CODE;
        OM_uint32 code = pass == 0 ? major : minor;
        if (pass == 1 && minor == 0)
            break;
        ctx = 0;
        do {
            if (gss_display_status(&min2, code, type, GSS_C_NO_OID, &ctx, &b) != GSS_S_COMPLETE)
                break;
            int w = snprintf(out + o, n - o, "%s%.*s", o ? "; " : "", (int)b.length,
                             (const char *)b.value);
            gss_release_buffer(&min2, &b);
            if (w < 0 || (size_t)w >= n - o)
                return;
            o += (size_t)w;
        } while (ctx != 0);
    }
}

static enum clc_err acquire(const struct ca_negotiate *ng, gss_cred_id_t *cred, char *why, size_t n)
{
    gss_key_value_element_desc el[2] = {{"keytab", ng->keytab}, {"rcache", ng->rcache}};
    gss_key_value_set_desc store = {2, el};
    OM_uint32 major, minor = 0;

    major = gss_acquire_cred_from(&minor, GSS_C_NO_NAME, GSS_C_INDEFINITE, GSS_C_NO_OID_SET,
                                  GSS_C_ACCEPT, &store, cred, NULL, NULL);
    if (GSS_ERROR(major)) {
        gss_text(major, minor, why, n);
        *cred = GSS_C_NO_CREDENTIAL;
        return CLC_ERR_CONFIG;
    }
    return CLC_OK;
}

enum clc_err ca_negotiate_config(struct emu_ca *ca, const cJSON *cfg, struct clc_errinfo *ei)
{
    const cJSON *o = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "kerberos") : NULL;
    const char *kt = NULL, *svc = "HTTP";
    struct ca_negotiate *ng;
    gss_cred_id_t cred = GSS_C_NO_CREDENTIAL;
    OM_uint32 minor;
    const cJSON *it;
    char why[512];

    if (o == NULL)
        return CLC_OK; /* no keytab: Negotiate is not offered */
    if (!cJSON_IsObject(o))
        return clc_errf(ei, CLC_ERR_CONFIG, "ca.kerberos must be an object");
    cJSON_ArrayForEach(it, o)
    {
        if (strcmp(it->string, "keytab") != 0 && strcmp(it->string, "service") != 0)
            return clc_errf(ei, CLC_ERR_CONFIG, "ca.kerberos: unknown key '%.64s'", it->string);
    }
    if (clc_json_str(o, "keytab", &kt, ei) != CLC_OK || kt[0] != '/' || strlen(kt) >= PATH_MAX_)
        return clc_errf(ei, CLC_ERR_CONFIG, "ca.kerberos.keytab: the absolute path of a keytab");
    if (access(kt, R_OK) != 0)
        return clc_errf(ei, CLC_ERR_CONFIG, "ca.kerberos.keytab: %s is not readable", kt);
    if (clc_json_str_opt(o, "service", svc, &svc, ei) != CLC_OK || svc[0] == '\0' ||
        strlen(svc) >= SERVICE_MAX || strpbrk(svc, "/@") != NULL)
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "ca.kerberos.service: a service name such as \"HTTP\" (no '/' or '@')");
    ng = calloc(1, sizeof *ng);
    if (ng == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    snprintf(ng->keytab, sizeof ng->keytab, "%s", kt);
    snprintf(ng->service, sizeof ng->service, "%s", svc);
    snprintf(ng->rcache, sizeof ng->rcache, "file2:%s/negotiate.rcache2", ca->dir);
    ca->negotiate = ng;
    /* Fail at start, not at the first client, when the keytab is unusable. */
    if (acquire(ng, &cred, why, sizeof why) != CLC_OK)
        return clc_errf(ei, CLC_ERR_CONFIG, "ca.kerberos.keytab %s: %s", kt, why);
    gss_release_cred(&minor, &cred);
    return CLC_OK;
}

void ca_negotiate_cleanup(struct emu_ca *ca)
{
    free(ca->negotiate);
    ca->negotiate = NULL;
}

static enum ca_winauth say(enum ca_winauth v, char *why, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum ca_winauth say(enum ca_winauth v, char *why, size_t n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return v;
}

/* The display form of a GSS name ("user@REALM"); 0 when it does not fit. */
static int name_text(gss_name_t name, char *out, size_t n)
{
    gss_buffer_desc b = GSS_C_EMPTY_BUFFER;
    OM_uint32 minor;
    int ok;

    if (gss_display_name(&minor, name, &b, NULL) != GSS_S_COMPLETE)
        return 0;
    ok = b.length < n && memchr(b.value, 0, b.length) == NULL;
    if (ok) {
        memcpy(out, b.value, b.length);
        out[b.length] = '\0';
    }
    gss_release_buffer(&minor, &b);
    return ok;
}

/* Maps the accepted context to an account: the ticket was for our service,
 * and the client principal is one an account names. */
static enum ca_winauth map_context(struct emu_ca *ca, gss_ctx_id_t ctx, gss_name_t src,
                                   const struct ca_account **account, char *why, size_t n)
{
    const struct ca_negotiate *ng = ca->negotiate;
    gss_name_t targ = GSS_C_NO_NAME;
    char client[CA_PRINCIPAL_MAX], server[CA_PRINCIPAL_MAX];
    size_t sl = strlen(ng->service);
    OM_uint32 minor;
    int ok;

    ok = gss_inquire_context(&minor, ctx, NULL, &targ, NULL, NULL, NULL, NULL, NULL) ==
             GSS_S_COMPLETE &&
         name_text(targ, server, sizeof server);
    gss_release_name(&minor, &targ);
    if (!ok)
        return say(CA_WINAUTH_REFUSED, why, n, "%s", "the ticket names no server principal");
    if (strncmp(server, ng->service, sl) != 0 || server[sl] != '/')
        return say(CA_WINAUTH_REFUSED, why, n, "the ticket is for %s, not this service", server);
    if (!name_text(src, client, sizeof client))
        return say(CA_WINAUTH_REFUSED, why, n, "%s", "the client principal is too long");
    for (size_t i = 0; i < ca->nacct; i++) {
        if (ca->acct[i].kerberos[0] != '\0' && strcmp(ca->acct[i].kerberos, client) == 0) {
            *account = &ca->acct[i];
            return CA_WINAUTH_OK;
        }
    }
    return say(CA_WINAUTH_REFUSED, why, n, "Kerberos principal %s is not mapped to a CA account",
               client);
}

/* Sends the acceptor's token back with the reply that follows. */
static void reply_token(struct emu_req *r, const gss_buffer_desc *out)
{
    char line[EMU_REPLY_HEADER_MAX];
    char *b64 = NULL;
    size_t bl = 0;

    if (out->length == 0)
        return;
    if (clc_b64_encode(out->value, out->length, &b64, &bl) != CLC_OK || bl + 30 >= sizeof line) {
        clc_log(CLC_LOG_WARN, "emu.ca.negotiate_token_dropped", CLC_LS("request_id", r->request_id),
                CLC_LI("length", (int64_t)out->length));
    } else {
        snprintf(line, sizeof line, "WWW-Authenticate: Negotiate %s", b64);
        emu_req_add_reply_header(r, line);
    }
    free(b64);
}

enum ca_winauth ca_negotiate_step(struct emu_ca *ca, struct emu_req *r, const char *token,
                                  const struct ca_account **account, char *why, size_t n)
{
    gss_cred_id_t cred = GSS_C_NO_CREDENTIAL;
    gss_ctx_id_t ctx = GSS_C_NO_CONTEXT;
    gss_name_t src = GSS_C_NO_NAME;
    gss_buffer_desc in = GSS_C_EMPTY_BUFFER, out = GSS_C_EMPTY_BUFFER;
    OM_uint32 major, minor = 0, m2;
    unsigned char *tok = NULL;
    size_t tl, len = 0;
    enum ca_winauth v;
    char text[384];

    *account = NULL;
    if (ca->negotiate == NULL)
        return say(CA_WINAUTH_REFUSED, why, n, "%s", "Negotiate is not offered");
    while (*token == ' ')
        token++;
    tl = strlen(token);
    while (tl > 0 && token[tl - 1] == ' ')
        tl--;
    if (tl > TOKEN_MAX)
        return say(CA_WINAUTH_MALFORMED, why, n, "%s", "Negotiate token too large");
    if (tl == 0 || clc_b64_decode(token, tl, &tok, &len) != CLC_OK || len == 0) {
        free(tok);
        return say(CA_WINAUTH_MALFORMED, why, n, "%s", "Negotiate token is not base64");
    }
    if (acquire(ca->negotiate, &cred, text, sizeof text) != CLC_OK) {
        v = say(CA_WINAUTH_REFUSED, why, n, "acceptor credentials: %s", text);
        goto out;
    }
    in.value = tok;
    in.length = len;
    major = gss_accept_sec_context(&minor, &ctx, cred, &in, GSS_C_NO_CHANNEL_BINDINGS, &src, NULL,
                                   &out, NULL, NULL, NULL);
    if (major == GSS_S_COMPLETE) {
        v = map_context(ca, ctx, src, account, why, n);
        if (v == CA_WINAUTH_OK)
            reply_token(r, &out);
    } else if (major == GSS_S_CONTINUE_NEEDED) {
        /* One round trip is enough for Kerberos inside SPNEGO; a client that
         * led with another mechanism would need state per connection. */
        v = say(CA_WINAUTH_REFUSED, why, n, "%s",
                "Negotiate needs Kerberos as the client's first mechanism");
    } else {
        gss_text(major, minor, text, sizeof text);
        v = say(CA_WINAUTH_REFUSED, why, n, "Negotiate token refused: %s", text);
    }
out:
    gss_release_buffer(&m2, &out);
    gss_release_name(&m2, &src);
    if (ctx != GSS_C_NO_CONTEXT)
        gss_delete_sec_context(&m2, &ctx, GSS_C_NO_BUFFER);
    gss_release_cred(&m2, &cred);
    OPENSSL_cleanse(tok, len);
    free(tok);
    return v;
}
