/* The model registry: a directory of numbered artefact files, one subdirectory per model. */
#ifndef TRIBUTARY_REGISTRY_H
#define TRIBUTARY_REGISTRY_H

#include "service/registry/artefact.h"

#include <stddef.h>
#include <stdint.h>

/* Longest model name, in bytes. */
#define REGISTRY_MAX_NAME 128

/* Layout: REGISTRY/<model name>/v<version>.avro, the version a positive decimal number with no
 * leading zeros. Anything else in a model's directory (publishers' temporaries, which start
 * with '.', or files put there by hand) is ignored. A file appears under its final name only
 * when it is complete (it is linked there after being written and fsynced), so a reader never
 * sees a partial artefact. Publishers in several threads or processes may share a registry. */

/* Checks a model name: 1 to REGISTRY_MAX_NAME bytes of [A-Za-z0-9._-], not starting with '.'.
 * Returns TB_OK, or TB_USAGE with a message in err saying what is wrong. */
int registry_check_name(const char *name, char *err, size_t errsz);

/* Publishes artefact as the next version of its model (artefact_name): creates dir (with its
 * parents) and dir/<name> if needed (mode 0755 less the umask; the file gets 0644), takes
 * version N = 1 + the highest present
 * (1 for none), sets it with artefact_set_version, and links the encoded artefact, written to a
 * temporary file and fsynced, to dir/<name>/vN.avro; when a concurrent publisher took N first,
 * tries N + 1, and so on. The temporary is removed and the directory fsynced.
 * Returns TB_OK with *version = N (the artefact keeps it), or TB_USAGE (bad name), TB_IO or
 * TB_ARTEFACT with a message in err; on failure the artefact's version is what it was before,
 * and no file is left behind. */
int registry_publish(const char *dir, struct artefact *artefact, int32_t *version, char *err,
                     size_t errsz);

/* Finds the highest version of model `name` in dir. Returns TB_OK with *version (if not NULL)
 * and the file's path in path (if not NULL; pathsz bytes), TB_NOTFOUND with a message when the
 * model has no version (or dir does not exist), TB_USAGE for a bad name or a path that does not
 * fit, or TB_IO. */
int registry_latest(const char *dir, const char *name, int32_t *version, char *path, size_t pathsz,
                    char *err, size_t errsz);

/* Lists the versions of model `name` in dir, ascending, into *versions (the caller frees it
 * with free; NULL when there are none) and *count. A missing directory has no versions. Returns
 * TB_OK, TB_USAGE for a bad name, or TB_IO with a message in err (then *versions is NULL and
 * *count 0). */
int registry_versions(const char *dir, const char *name, int32_t **versions, size_t *count,
                      char *err, size_t errsz);

#endif
