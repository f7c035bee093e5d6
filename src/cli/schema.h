/* The certlc binary's configuration schema (all modules' keys together). */
#ifndef CLC_CLI_SCHEMA_H
#define CLC_CLI_SCHEMA_H

#include <stddef.h>
#include "core/config.h"

/* Borrowed; valid until clc_cli_schema_free. */
enum clc_err clc_cli_schema(const struct clc_config_key **out, size_t *n);
void clc_cli_schema_free(void);

#endif
