/* Whole small files: read into memory (schemas, configs), written atomically (artefacts,
 * reports). */
#ifndef TRIBUTARY_TEXTFILE_H
#define TRIBUTARY_TEXTFILE_H

#include <stddef.h>

/* Reads path into a NUL-terminated string; *len (if not NULL) gets its length.
 * Returns the text (caller frees) or NULL with err naming the file. */
char *textfile_read(const char *path, size_t *len, char *err, size_t errsz);

/* Writes data[0..len) to path atomically: to "path.tmp.<pid>", fsynced, renamed over path, and
 * the directory fsynced, so that readers see the old file or the whole new one. Returns TB_OK, or
 * TB_IO with err naming the path and the step that failed ("cannot create", "cannot write",
 * "cannot fsync", "cannot rename ... over it"); the temporary is removed then. */
int textfile_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errsz);

#endif
