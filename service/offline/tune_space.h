/* The search space of `tributary tune`: a YAML file mapping configuration keys to Hyperopt-style
 * distributions, constants and conditional (nested) choices, turned into a TPE space and back
 * into configuration values.
 *
 * The file (tune.space) is a mapping. A key that is a configuration key (`tributary config`) takes
 * either a distribution, a one-pair mapping in Hyperopt's vocabulary with its arguments as a list:
 *     uniform: [low, high]           loguniform: [low, high]        (bounds are values, 0 < low)
 *     quniform: [low, high, q]       qloguniform: [low, high, q]    (q > 0)
 *     normal: [mu, sigma]            randint: [low, high]           (integers, high excluded)
 *     choice: [value, ...]           (values of the key: scalars, or lists for a list key)
 * or a constant (a scalar, or a list for a list key), which is set whenever its mapping is active.
 * Any other name must be a conditional choice, `name: {choice: [branch, ...]}`, whose options are
 * mappings of the same kind (keys to distributions, constants or further conditional choices)
 * that are active only when their option is chosen. A configuration key may be set at most once
 * on any path of active branches (in two options of one choice is fine).
 *
 * TPE parameter names: a top-level entry is named by its key ("train.l2", "family"); an entry in a
 * branch by the branch's path, "family=ridge/train.l2", nested as
 * "family=ridge/solver=x/train.tol". A branch's label is the value text of its first constant when
 * that is unique among the options of its choice, otherwise its index ("0", "1", ...); should
 * labels still clash (a constant "1" and branch 1 without one), every branch of that choice is
 * labelled by its index. The options of a choice on a configuration key are labelled with their
 * value text (a list as "mean,std").
 *
 * Load-time checks: every constant and every value of a choice is set with config_set on a scratch
 * configuration; a numeric distribution is probed the same way with its bounds (uniform kinds:
 * low and high; randint: low and high - 1; normal: mu) and, when it can give fractional values,
 * with one such value, so that a bound out of the key's range or a continuous distribution on an
 * integer key is refused at once. Values that quantisation rounds past a bound (quniform
 * [1, 100, 10] can give 0), or far normal draws, are refused later by tune_space_apply. */
#ifndef TRIBUTARY_TUNE_SPACE_H
#define TRIBUTARY_TUNE_SPACE_H

#include "models/tpe.h"
#include "service/config/config.h"

#include <jansson.h>
#include <stddef.h>

struct tune_space;

/* Reads and checks the space file at path. Returns the space, which the caller frees with
 * tune_space_destroy, or NULL with a message in err naming the file and, where there is one, the
 * 1-based line ("space.yaml:4: 'train.l3' is not a configuration key"): a file that cannot be
 * read, YAML syntax errors, unknown keys, wrong shapes, bad distribution arguments, values the
 * key refuses (with config_set's message), a key set twice on one path, no parameter at all. */
struct tune_space *tune_space_load(const char *path, char *err, size_t errsz);

/* Frees the space; NULL is a no-op. */
void tune_space_destroy(struct tune_space *space);

/* Returns the TPE space (for tpe_study_new, which copies it): one parameter per distribution and
 * per choice, in file order, each conditional one after its choice. Owned by space and valid as
 * long as it. */
const struct tpe_space *tune_space_tpe(const struct tune_space *space);

/* Applies a trial's values (tpe_space_size entries, as tpe_ask gives them: NAN for an inactive
 * parameter, an option index for a choice) to cfg with config_set: every active parameter on a
 * configuration key, and every constant of the top level and of every active branch. A number is
 * written as an integer when it is integral (so that an integer key takes it), otherwise as
 * "%.17g", which parses back to the same double. Returns TB_OK, or TB_CONFIG with cfg unchanged
 * and a message in err when a key refuses a value ("tune train.max_iter: 0 is out of range
 * (1..1000000)", e.g. a quniform value rounded below the key's lower bound: the tuner records the
 * trial as failed), an active parameter has no value (NAN) or a choice an index that is not one
 * of its options. */
int tune_space_apply(const struct tune_space *space, const double *values, struct config *cfg,
                     char *err, size_t errsz);

/* Returns a new JSON object (the caller owns the reference) of the trial's active parameters,
 * keyed by their TPE names in space order: a choice as its option's label ("family": "ridge",
 * "pipeline.window_stats": "mean,std"), a randint, or a quantised value that is integral, as a
 * JSON integer, any other number as a JSON real (which jansson writes so that it reads back
 * exactly). Inactive parameters (NAN) are left out. NULL only when jansson runs out of memory. */
json_t *tune_space_values_json(const struct tune_space *space, const double *values);

/* The reverse of tune_space_values_json, for resuming from a trials log: fills values[0 .. size)
 * (NAN for an inactive parameter) from object. Returns TB_OK; TB_USAGE when n is smaller than the
 * space; TB_PARSE with a message when object is not an object, a name is not a parameter, a
 * choice's value is not one of its labels, a numeric value is not a number, an active parameter
 * is missing or an inactive one is given. values is then unspecified. Whether a number lies in its
 * distribution's support is left to tpe_replay. */
int tune_space_values_from_json(const struct tune_space *space, const json_t *object,
                                double *values, size_t n, char *err, size_t errsz);

#endif
