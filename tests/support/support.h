/* Helpers every cmocka test shares: named cases, Python references, shared data, temporary
 * files, close comparisons and random numbers. Needs only models/ and service/base/, so that the
 * tests of models/ link against nothing else. */
#ifndef TRIBUTARY_TESTS_SUPPORT_SUPPORT_H
#define TRIBUTARY_TESTS_SUPPORT_SUPPORT_H

#include "models/linear.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A cmocka case with a name of its own (cmocka's macros name a case after its function), so that
 * one function can run several table entries; state is the case's *state. */
#define NAMED_CASE(name, fn, state)                                                                \
    {                                                                                              \
        (name), (fn), NULL, NULL, (state)                                                          \
    }

/* A named cmocka case that runs in a new empty directory of its own: *state is its path (see
 * support_setup_temp_dir), removed with everything in it after the case. */
#define TEMP_DIR_CASE(name, fn)                                                                    \
    {                                                                                              \
        (name), (fn), support_setup_temp_dir, support_teardown_temp_dir, NULL                      \
    }

/* Runs /usr/bin/python3 with the NULL-terminated arguments, given as python3 takes them ("-c",
 * code, args... or a script path, args...), and returns its standard output, NUL-terminated; the
 * caller frees it. Its standard error goes on to ours. Fails the running test, quoting the exit
 * status, standard output and standard error, unless Python exits 0. */
char *support_python(const char *arg, ...) __attribute__((sentinel));

/* As support_python, but a non-zero exit does not fail the test: the exit status (128 + the signal
 * number when a signal ended Python) is stored in *exit_status and the output is returned. */
char *support_python_status(int *exit_status, const char *arg, ...) __attribute__((sentinel));

/* Runs python3 -c code path args[0] ... args[nargs - 1] (a decoder, say, given a schema file and
 * encoded records) and returns what it printed as a JSON array of one element per line, each line
 * parsed as JSON; the caller frees it with json_decref. Fails the running test unless Python exits
 * 0 and prints exactly nargs lines, each a JSON value. */
json_t *support_python_json_lines(const char *code, const char *path, char *const *args,
                                  size_t nargs);

/* Runs python3 -c code path arg (an encoder, say, given a schema file and a record) and returns
 * the bytes that the first line it prints spells in hex, *len of them; the caller frees them.
 * Fails the running test unless Python exits 0 and that line is hex. */
uint8_t *support_python_hex(const char *code, const char *path, const char *arg, size_t *len);

/* Returns bytes[0..len) in lower-case hex, NUL-terminated; the caller frees it. */
char *support_to_hex(const void *bytes, size_t len);

/* Returns the bytes an even number of hex digits spell, *len of them (followed by one spare
 * byte); the caller frees them. Fails the running test when hex is not that. */
uint8_t *support_from_hex(const char *hex, size_t *len);

/* Returns the line that starts at *cursor, its newline replaced by a NUL, and moves *cursor past
 * it; NULL when *cursor is at the end of the text. The last line need not end in a newline. */
char *support_next_line(char **cursor);

/* Puts the path of a shared data file, $TRIBUTARY_DATA/relative or (without TRIBUTARY_DATA)
 * ../shared/data/relative from the repository root, into buf and returns buf. Fails the running
 * test when the file is not readable. */
const char *support_data_path(const char *relative, char *buf, size_t bufsz);

/* The columns of C-MAPSS train_FD001.txt: unit, cycle, settings 1 to 3, sensors 1 to 21. */
#define SUPPORT_FD001_COLS 26

/* Reads the shared data file cmapss/train_FD001.txt (see support_data_path) and returns its *n
 * rows of SUPPORT_FD001_COLS numbers, row-major; the caller frees them. When rul is not NULL,
 * *rul receives n labels, each the last cycle of the row's unit less the row's cycle (the
 * remaining useful life), which the caller frees too. Fails the running test when the file cannot
 * be read or a line holds other than SUPPORT_FD001_COLS numbers. */
double *support_read_fd001(size_t *n, double **rul);

/* Creates a new empty directory $TMPDIR/name-XXXXXX (/tmp when TMPDIR is not set) and returns
 * its path, which the caller frees; NULL (errno set) when it cannot. Does not fail the test, so
 * that a setup function can return its own status. */
char *support_mkdtemp(const char *name);

/* A cmocka setup function: creates a new empty directory $TMPDIR/tributary_PROGRAM-XXXXXX
 * (/tmp when TMPDIR is not set; PROGRAM is the test program's name) and makes its path, a heap
 * string, the case's *state. Returns 0, or -1 when it cannot (cmocka then fails the case). */
int support_setup_temp_dir(void **state);

/* The cmocka teardown function that goes with support_setup_temp_dir: removes the directory and
 * everything under it and frees *state. Returns 0. */
int support_teardown_temp_dir(void **state);

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

/* Fails the running test, naming what, unless |got - want| <= max(rel * max(|got|, |want|),
 * floor): relative, except that values near zero need only agree to the absolute floor. */
void support_assert_close_floor(double got, double want, double rel, double floor,
                                const char *what);

/* Fails the running test unless a fit, named fit_name in messages, failed as expected: it
 * returned rc == want_rc, left *model (which it was given set to {.nfeatures = 99}) untouched, and
 * wrote a message err containing every one of the NULL-terminated fragments. */
void support_expect_fit_error(const char *fit_name, int rc, const char *err,
                              const struct linear_model *model, int want_rc,
                              const char *const *fragments);

/* --- random numbers --------------------------------------------------------------------------- */

/* Restarts the generator behind support_rng_uniform and support_rng_normal (splitmix64, one
 * state for the whole program): the same seed gives the same numbers on every run and machine. */
void support_rng_seed(uint64_t seed);

/* Returns the next number of the generator, uniform in [0, 1) with 53 random bits. */
double support_rng_uniform(void);

/* Returns a standard normal number, by Box-Muller from the next two uniform numbers. */
double support_rng_normal(void);

/* --- scikit-learn references for the classifiers ---------------------------------------------- */

/* One scikit-learn comparison of a classifier: a table entry of its test. */
struct support_classifier_case {
    const char *dataset; /* a scikit-learn data set, or NULL for AI4I 2020 */
    double l2;
};

/* What tests/unit/models/classifier_reference.py wrote: the (standardised) data and one fit. */
struct support_classifier_reference {
    size_t n, p;
    double *x, *y;      /* n x p row-major, and n labels */
    double grad_over_n; /* max |gradient| / n at scikit-learn's solution */
    size_t nclasses, noutputs;
    double *classes;   /* nclasses */
    double *intercept; /* noutputs */
    double *coef;      /* noutputs x p */
    double *prob;      /* n x nclasses predicted probabilities */
};

/* Runs tests/unit/models/classifier_reference.py (from the repository root) for model ("logistic"
 * or "softmax") and the data set and l2 of c in a temporary directory, reads the data and the fit
 * it wrote into *ref and removes the directory. Fails the running test when the script or the
 * data cannot be found, Python fails, a number is missing, or scikit-learn stopped away from the
 * optimum: its max |gradient| / n above max_grad_over_n. The caller releases ref with
 * support_classifier_reference_free. */
void support_classifier_reference(const char *model, const struct support_classifier_case *c,
                                  double max_grad_over_n, struct support_classifier_reference *ref);

/* Frees the arrays of a reference that support_classifier_reference filled. */
void support_classifier_reference_free(struct support_classifier_reference *ref);

#endif
