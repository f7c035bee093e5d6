/* Inside the HTTP client: the credential rules (http_rules.c) that
 * clc_http_do applies before anything is sent. */
#ifndef CLC_HTTP_INT_H
#define CLC_HTTP_INT_H

#include "core/err.h"
#include "net/http.h"

/* Refuses credentials that would travel in clear text: a bearer token or
 * authorization value to anything but https or a managed identity
 * endpoint, libcurl's HTTP authentication to anything but https, and
 * malformed or conflicting credentials. Sets *plain when a credential goes
 * over plain http (the request must then bypass any proxy). */
enum clc_err clc_http_check_credentials(const struct clc_http_req *req, int *plain,
                                        struct clc_errinfo *ei);

#endif
