/* The emulated directory: identities (app registrations and managed
 * identities), their role assignments, and the access tokens the emulated
 * Entra ID issues. Every service verifies bearer tokens and checks roles
 * through this interface. */
#ifndef EMU_IDENTITY_H
#define EMU_IDENTITY_H

#include <stdint.h>
#include "core/err.h"

struct emu;
struct emu_req;

/* Roles are a bitmask; "admin" holds every role and the control API. */
enum emu_role {
    EMU_ROLE_KV_CERTIFICATES_OFFICER = 1u << 0,
    EMU_ROLE_KV_SECRETS_USER = 1u << 1,
    EMU_ROLE_KV_READER = 1u << 2,
    EMU_ROLE_QUEUE_DATA_CONTRIBUTOR = 1u << 3,
    EMU_ROLE_MONITORING_METRICS_PUBLISHER = 1u << 4,
    EMU_ROLE_DNS_ZONE_CONTRIBUTOR = 1u << 5,
    EMU_ROLE_BLOB_DATA_CONTRIBUTOR = 1u << 6,
    EMU_ROLE_EVENTGRID_DATA_SENDER = 1u << 7,
    EMU_ROLE_LOG_ANALYTICS_READER = 1u << 8,
    EMU_ROLE_KV_SECRETS_OFFICER = 1u << 9,
    EMU_ROLE_ADMIN = 1u << 31
};

/* Azure's role names ("Key Vault Certificates Officer", ...) and "admin". */
const char *emu_role_name(unsigned role);
/* One role name to its bit; 0 when unknown. */
unsigned emu_role_parse(const char *name);

struct emu_principal {
    char name[64];      /* identity name in the emulator config ("renewer") */
    char client_id[40]; /* appid */
    char object_id[40]; /* oid */
    unsigned roles;
};

/* 1 when p holds any of the roles in mask (admin holds all). */
int emu_principal_has(const struct emu_principal *p, unsigned mask);

/* Verifies the request's "Authorization: Bearer" token: RS256 signature by
 * the emulator's token key, issuer, audience equal to `audience` (with or
 * without a trailing "/"), nbf/exp by the emulator clock. CLC_ERR_AUTH with a
 * reason in ei when missing or invalid; the caller answers in its service's
 * shape (Key Vault adds its challenge). */
enum clc_err emu_auth_verify(struct emu *e, const struct emu_req *r, const char *audience,
                             struct emu_principal *out, struct clc_errinfo *ei);

#endif
