/* Files: bounded reads, and atomic writes (O_EXCL temp file in the same
 * directory, fsync, rename, fsync the directory) so that a crash leaves the
 * old content or the new, never a torn file. */
#ifndef CLC_FILE_H
#define CLC_FILE_H

#include <stddef.h>
#include <sys/types.h>
#include "core/err.h"

/* Reads the whole file, refusing more than max bytes. *out is malloc'd with a
 * NUL appended. Errors name the path and the reason (errno text). */
enum clc_err clc_file_read(const char *path, size_t max, char **out, size_t *len,
                           struct clc_errinfo *ei);
/* Replaces path with data, created with mode (e.g. 0600). */
enum clc_err clc_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                                   struct clc_errinfo *ei);
/* mkdir -p with mode for the directories it creates. */
enum clc_err clc_file_mkdirs(const char *path, mode_t mode, struct clc_errinfo *ei);

#endif
