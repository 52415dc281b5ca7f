/* Whole small text files (schemas, configs) into memory. */
#ifndef TRIBUTARY_TEXTFILE_H
#define TRIBUTARY_TEXTFILE_H

#include <stddef.h>

/* Reads path into a NUL-terminated string; *len (if not NULL) gets its length.
 * Returns the text (caller frees) or NULL with err naming the file. */
char *textfile_read(const char *path, size_t *len, char *err, size_t errsz);

#endif
