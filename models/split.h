/* Train/test and k-fold assignment of rows that keeps machines (keys) and the future apart. */
#ifndef TRIBUTARY_SPLIT_H
#define TRIBUTARY_SPLIT_H

#include <stddef.h>
#include <stdint.h>

/* RANDOM ignores keys and times; GROUP keeps every key's rows on one side (in one fold); TIME
 * orders the rows by time. */
enum split_method { SPLIT_RANDOM, SPLIT_GROUP, SPLIT_TIME };

/* Parses "random", "group" or "time" into *out; returns TB_OK, or TB_CONFIG (and leaves *out
 * alone) for NULL or any other name. */
int split_parse(const char *name, enum split_method *out);

/* Returns "random", "group" or "time" ("unknown" for a value outside the enum); never NULL. */
const char *split_name(enum split_method m);

/* Sets test[i] to 1 for the n rows that go to test and 0 for the rest.
 *
 * The randomness is a splitmix64 stream started at seed; a shuffle is Fisher-Yates from the last
 * item down, item i swapped with item r mod (i + 1), r drawn by rejection so that the choice is
 * unbiased. Only integer arithmetic is involved, so a seed gives the same split on every machine.
 * The target test size is t = ceil(n * test_fraction), as scikit-learn's train_test_split.
 *   RANDOM: the rows 0..n-1 are shuffled; the first t of the shuffled order are test.
 *   GROUP:  keys[i] names row i's group (compared with strcmp). The distinct keys, sorted by
 *           strcmp, are shuffled; whole keys are moved to test in that order until at least t
 *           rows are test. The test side can therefore exceed t by up to the size of the last
 *           key moved. No key is on both sides.
 *   TIME:   the rows are sorted by times[i] (ties by row number: a stable sort); the last t are
 *           test, so every test row is at least as late as every train row. Rows with the time
 *           at the cut can be on both sides. seed is not used.
 * keys (GROUP) or times (TIME) hold one entry per row; either may be NULL when the method does not
 * use it. Returns TB_OK, or TB_USAGE with a message in err when test_fraction is not in (0, 1),
 * GROUP has no keys (or a NULL key), TIME has no times (or a NaN time), or a side would be
 * empty; test is then unspecified. */
int split_holdout(enum split_method m, size_t n, const char *const *keys, const double *times,
                  double test_fraction, uint64_t seed, unsigned char *test, char *err,
                  size_t errsz);

/* Sets fold[i] in [0, k) for the n rows, for k-fold cross-validation; randomness and inputs as
 * split_holdout.
 *   RANDOM: the rows are shuffled and the shuffled order is cut into k consecutive folds, the
 *           first n mod k of which hold n / k + 1 rows and the rest n / k (scikit-learn's KFold
 *           with shuffle=True, fold sizes included).
 *   GROUP:  scikit-learn's GroupKFold: the keys are taken from the most rows to the fewest, each
 *           into the fold with the fewest rows so far (the lowest-numbered one on ties). The fold
 *           sizes are GroupKFold's; keys with equal row counts are taken in a seeded shuffled
 *           order, so the seed only changes which of those goes where. Every fold has a key.
 *   TIME:   the rows are sorted by time (stably, as split_holdout) and cut into k consecutive
 *           blocks with the sizes of RANDOM: fold j is the j-th block, so fold j's rows are no
 *           later than fold j + 1's. seed is not used.
 * Returns TB_OK, or TB_USAGE with a message in err when k is below 2 or above n (GROUP: above the
 * number of distinct keys), or for missing keys or times as split_holdout; fold is then
 * unspecified. */
int split_kfold(enum split_method m, size_t n, const char *const *keys, const double *times, int k,
                uint64_t seed, int *fold, char *err, size_t errsz);

#endif
