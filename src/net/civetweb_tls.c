/* Loads the OpenSSL 3 compatibility library Debian's civetweb needs before it
 * can serve HTTPS, and starts civetweb's library with TLS. Shared by every
 * certlc server (the webhook) and by the emulator. */
#include <civetweb.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "net/civetweb_tls.h"

#ifndef CLC_COMPAT_LIB_BUILD
#define CLC_COMPAT_LIB_BUILD ""
#endif
#ifndef CLC_COMPAT_LIB_INSTALLED
#define CLC_COMPAT_LIB_INSTALLED ""
#endif

#define TRIED_MAX (6 * PATH_MAX)

static void tried_add(char *tried, const char *path)
{
    size_t used = strlen(tried);

    if (used + 3 < TRIED_MAX)
        snprintf(tried + used, TRIED_MAX - used, "%s%s", used ? ", " : "", path);
}

/* The executable's directory, from /proc (argv[0] may be relative or a name
 * found on PATH). */
static int exe_dir(char *out, size_t n)
{
    ssize_t len = readlink("/proc/self/exe", out, n - 1);
    char *slash;

    if (len <= 0)
        return 0;
    out[len] = '\0';
    slash = strrchr(out, '/');
    if (slash == NULL)
        return 0;
    *slash = '\0';
    return 1;
}

static int try_path(const char *path, char *found, size_t n, char *tried)
{
    if (path[0] == '\0')
        return 0;
    /* A path that does not fit the caller's buffer cannot be used. */
    if (access(path, R_OK) == 0 && (size_t)snprintf(found, n, "%s", path) < n)
        return 1;
    tried_add(tried, path);
    return 0;
}

/* Next to the executable first (build tree: the emulator's compat/ dir is
 * not next to certlc, so the build path comes next; installed: bin/ and
 * lib/certlc/), then the install prefix. */
static int find_compat(char *found, size_t n, char *tried)
{
    static const char *const rel[] = {"/compat/libssl.so", "/../lib/certlc/libssl.so"};
    char dir[PATH_MAX], path[PATH_MAX + 64];

    if (exe_dir(dir, sizeof dir)) {
        for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
            snprintf(path, sizeof path, "%s%s", dir, rel[i]);
            if (try_path(path, found, n, tried))
                return 1;
        }
    }
    return try_path(CLC_COMPAT_LIB_BUILD, found, n, tried) ||
           try_path(CLC_COMPAT_LIB_INSTALLED, found, n, tried);
}

static enum clc_err load_compat(const char *compat_lib, struct clc_errinfo *ei)
{
    char found[PATH_MAX], tried[TRIED_MAX] = "";
    const char *path = compat_lib;
    void *h, *again;

    /* No probing by the name "libssl.so" first: with libssl-dev installed
     * that name resolves to the real libssl.so.3 and stays bound to it. A
     * second load of the same path just returns the same handle. */
    if (path == NULL || path[0] == '\0') {
        if (!find_compat(found, sizeof found, tried))
            return clc_errf(
                ei, CLC_ERR_CONFIG,
                "the civetweb OpenSSL 3 compatibility library (libssl.so, built by the "
                "clc_sslcompat target, installed in lib/certlc/) was not found; looked "
                "in: %s. Build or install it, or give its path (webhook.tls_compat_library)",
                tried[0] ? tried : "(nowhere)");
        path = found;
    }
    /* RTLD_GLOBAL and the soname "libssl.so": civetweb's own
     * dlopen("libssl.so") then finds this object instead of failing. The
     * handle is kept for the life of the process (civetweb may look again). */
    h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (h == NULL)
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "cannot load the civetweb OpenSSL 3 compatibility library %s (%s); build "
                        "the clc_sslcompat target or give the right path. Without it civetweb "
                        "crashes on the first HTTPS connection",
                        path, dlerror());
    if (dlsym(h, "SSL_get_peer_certificate") == NULL)
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "%s does not define SSL_get_peer_certificate: it is not the civetweb "
                        "compatibility library built by clc_sslcompat",
                        path);
    again = dlopen("libssl.so", RTLD_NOW | RTLD_NOLOAD);
    if (again != NULL)
        dlclose(again);
    if (again != h)
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "%s was loaded but civetweb's dlopen(\"libssl.so\") would not find it "
                        "(its soname must be libssl.so)",
                        path);
    clc_log(CLC_LOG_DEBUG, "tls.compat_loaded", CLC_LS("path", path));
    return CLC_OK;
}

enum clc_err clc_civetweb_tls_init(const char *compat_lib, struct clc_errinfo *ei)
{
    enum clc_err rc = load_compat(compat_lib, ei);
    unsigned got;

    if (rc != CLC_OK)
        return rc;
    if (!mg_check_feature(MG_FEATURES_TLS))
        return clc_errf(ei, CLC_ERR_CONFIG, "this civetweb was built without TLS support");
    got = mg_init_library(MG_FEATURES_TLS);
    if (!(got & MG_FEATURES_TLS)) {
        mg_exit_library();
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "civetweb could not initialise TLS: it needs libssl.so (the compatibility "
                        "library, linked to libssl.so.3) and libcrypto.so (package libssl-dev)");
    }
    return CLC_OK;
}

void clc_civetweb_tls_exit(void)
{
    mg_exit_library();
}
