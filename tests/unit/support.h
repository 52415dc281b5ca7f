/* Helpers the cmocka unit tests share: Python references, shared data, temporary files. */
#ifndef TRIBUTARY_TESTS_UNIT_SUPPORT_H
#define TRIBUTARY_TESTS_UNIT_SUPPORT_H

#include <stddef.h>
#include <stdio.h>

/* Runs /usr/bin/python3 with the NULL-terminated arguments, given as python3 takes them ("-c",
 * code, args... or a script path, args...), and returns its standard output, NUL-terminated; the
 * caller frees it. Its standard error goes on to ours. Fails the running test, quoting the exit
 * status, standard output and standard error, unless Python exits 0. */
char *support_python(const char *arg, ...) __attribute__((sentinel));

/* As support_python, but a non-zero exit does not fail the test: the exit status (128 + the signal
 * number when a signal ended Python) is stored in *exit_status and the output is returned. */
char *support_python_status(int *exit_status, const char *arg, ...) __attribute__((sentinel));

/* Returns the line that starts at *cursor, its newline replaced by a NUL, and moves *cursor past
 * it; NULL when *cursor is at the end of the text. The last line need not end in a newline. */
char *support_next_line(char **cursor);

/* Puts the path of a shared data file, $TRIBUTARY_DATA/relative or (without TRIBUTARY_DATA)
 * ../shared/data/relative from the repository root, into buf and returns buf. Fails the running
 * test when the file is not readable. */
const char *support_data_path(const char *relative, char *buf, size_t bufsz);

/* Creates a new empty directory $TMPDIR/name-XXXXXX (/tmp when TMPDIR is not set) and returns
 * its path, which the caller frees; NULL (errno set) when it cannot. Does not fail the test, so
 * that a setup function can return its own status. */
char *support_mkdtemp(const char *name);

/* Removes dir and everything under it, without following links. Returns 0, or -1 (errno set)
 * when something could not be removed. */
int support_rmtree(const char *dir);

/* Creates a new file $TMPDIR/name-XXXXXX (/tmp when TMPDIR is not set) and returns it open for
 * writing; *path receives its path, which the caller unlinks and frees. Fails the running test
 * when it cannot. */
FILE *support_temp_file(const char *name, char **path);

/* Writes len bytes to path, creating or replacing the file. Fails the running test when it
 * cannot. */
void support_write_file(const char *path, const void *bytes, size_t len);

/* Reads the whole of path and returns its bytes followed by a NUL that *len does not count; the
 * caller frees them. Fails the running test when the file cannot be read. */
void *support_read_file(const char *path, size_t *len);

/* Fails the running test, naming what, unless |got - want| <= rel * max(|got|, |want|). */
void support_assert_close(double got, double want, double rel, const char *what);

#endif
