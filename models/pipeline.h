/* Featurizers: the pipeline that turns input records into the feature rows a model predicts
 * from (imputation, per-key rolling windows, one-hot encoding, scaling). The same code fits it
 * offline and applies it both offline (train, score) and online (serve), so training and
 * serving cannot disagree.
 *
 * Input rows. A pipeline reads nnumeric numeric inputs and then ncategorical categorical inputs,
 * as one row of doubles per record (row-major, ninputs = nnumeric + ncategorical columns):
 *   - a numeric input is its value, NAN when missing;
 *   - a categorical input is a category code: when fitting, an index into that column's
 *     dictionary (see pipeline_fit); when transforming, an index into the pipeline's sorted
 *     categories of that column (pipeline_category_index), -1 for a value the pipeline does
 *     not know, NAN when missing.
 * Each row may have a key (the Kafka record key, or a key column offline), as bytes. A NULL key
 * (keys NULL, or keys[i] NULL) is the empty key: all such rows share one history.
 *
 * Stages, always in this order:
 *   1. impute (numeric inputs): none, mean (of the training rows), or a constant; with
 *      indicator, a 0/1 column "<name>_missing" is added for each numeric input that had
 *      missing values in the training rows (scikit-learn's add_indicator, "missing-only").
 *      Without imputation a missing numeric input leaves NAN features (train skips such
 *      rows; serve dead-letters the record before it gets here).
 *   2. window (per key): over the last `window` records of the same key, this record
 *      included (fewer at the start of a key), for each window column (a subset of the
 *      numeric inputs, imputed) the chosen statistics: mean, std (population, ddof 0; 0 for
 *      one record), min, max, slope (least-squares slope against the record's position
 *      0, 1, ... in the window; 0 for one record), last; and once per row, count (records in
 *      the window). Columns are named "<name>_<stat>_<window>" and "window_count_<window>".
 *      A value that stays NAN (no imputation) makes mean, std, min, max and slope NAN while
 *      its record is in the window; last is NAN only while that record is the newest.
 *   3. one-hot (categorical inputs): one 0/1 column "<name>=<category>" per category seen in
 *      training, categories in byte order; an unknown or missing value sets none of them
 *      (scikit-learn's handle_unknown="ignore").
 *   4. scale (every column before the one-hot ones): none, standard ((x - mean) / std, the
 *      population std of the training rows, 1 when it is 0) or minmax ((x - min) / (max -
 *      min), 1 when max = min), as scikit-learn's StandardScaler and MinMaxScaler, including
 *      their idea of 0: a variance var <= n eps var + (n mean eps)^2, a range below 10 eps.
 *      The scaler is fitted on the training rows whose features before the one-hot ones are
 *      all finite (a row with a NAN feature is left out whole, as train leaves it out).
 * Output columns, in order: the numeric inputs (imputed), the missing indicators, the window
 * columns (for each window column in order, its statistics in the order of enum
 * pipeline_stat; count last), the one-hot columns; then scaled as above. */
#ifndef TRIBUTARY_PIPELINE_H
#define TRIBUTARY_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>

/* Largest window, in records. */
#define PIPELINE_MAX_WINDOW 100000

enum pipeline_impute { PIPELINE_IMPUTE_NONE, PIPELINE_IMPUTE_MEAN, PIPELINE_IMPUTE_CONSTANT };
enum pipeline_scale { PIPELINE_SCALE_NONE, PIPELINE_SCALE_STANDARD, PIPELINE_SCALE_MINMAX };

/* Window statistics, as bits of a mask; the order of the bits is the order of the columns. */
enum pipeline_stat {
    PIPELINE_STAT_MEAN = 1 << 0,
    PIPELINE_STAT_STD = 1 << 1,
    PIPELINE_STAT_MIN = 1 << 2,
    PIPELINE_STAT_MAX = 1 << 3,
    PIPELINE_STAT_SLOPE = 1 << 4,
    PIPELINE_STAT_LAST = 1 << 5,
    PIPELINE_STAT_COUNT = 1 << 6,
};
#define PIPELINE_STAT_ALL 0x7f

/* A fitted pipeline as plain data: what the artefact stores and pipeline_new builds from.
 * Every array has the length given beside it. */
struct pipeline_spec {
    size_t nnumeric;
    char **numeric; /* numeric input names */
    size_t ncategorical;
    char **categorical;  /* categorical input names */
    size_t *ncategories; /* per categorical input */
    char ***categories;  /* per categorical input: its categories, strictly ascending (strcmp) */

    enum pipeline_impute impute;
    double impute_value; /* the constant, for PIPELINE_IMPUTE_CONSTANT */
    double *fill;        /* nnumeric: what replaces a missing value (the mean or the constant;
                            NAN with PIPELINE_IMPUTE_NONE) */
    bool *indicator;     /* nnumeric: whether "<name>_missing" is output */

    size_t window;          /* records; 0: no window columns */
    unsigned window_stats;  /* mask of enum pipeline_stat; not 0 when window > 0 */
    size_t nwindow_columns; /* window columns, as indices into numeric, ascending */
    size_t *window_columns;

    enum pipeline_scale scale;
    size_t nscaled; /* columns before the one-hot ones */
    double *offset; /* nscaled: x' = (x - offset) * factor; 0 and 1 with PIPELINE_SCALE_NONE */
    double *factor;
};

/* What to fit: the configuration's choices. Names are not kept. */
struct pipeline_options {
    const char *const *numeric;
    size_t nnumeric;
    const char *const *categorical;
    size_t ncategorical;
    enum pipeline_impute impute;
    double impute_value;
    bool impute_indicator;
    size_t window; /* 0: none */
    unsigned window_stats;
    const char *const *window_columns; /* numeric input names; none means every numeric input */
    size_t nwindow_columns;
    enum pipeline_scale scale;
};

/* A batch of input rows. */
struct pipeline_rows {
    size_t nrows;
    const double *values;    /* nrows x (nnumeric + ncategorical), row-major */
    const char *const *keys; /* nrows keys, key_lens[i] bytes each (need not be
                                NUL-terminated); NULL: every row has the same key */
    const size_t *key_lens;
};

struct pipeline;       /* immutable once built; share it between threads freely */
struct pipeline_state; /* per-key window history; one thread at a time */

/* Fits a pipeline to rows: fills, indicators and categories from the rows whose train_mask
 * entry is non-zero (NULL: every row); the scaler from those rows' features after the window
 * stage, computing windows over all rows in order (so a time-ordered file gives the windows
 * it would give online). dictionaries[j][code] is the string of code `code` of categorical
 * input j, ndictionary[j] its size (both NULL when there are no categorical inputs).
 * Returns the pipeline (free with pipeline_destroy), or NULL with err naming the option or
 * column, e.g. "window column 'x' is not a numeric input", "impute: input 's3' has no value
 * in the training rows", "no training rows".
 * Also refused: a window column listed twice, an infinite numeric value in a training row, a
 * categorical code that is neither NAN nor an integer index into its dictionary (in any row),
 * and (with a scaler) training rows none of which has finite features. With window 0 the
 * window statistics and columns are ignored (the spec then has none); window columns are
 * kept in the order of the numeric inputs, whatever order the options name them in. */
struct pipeline *pipeline_fit(const struct pipeline_options *options,
                              const struct pipeline_rows *rows, const unsigned char *train_mask,
                              const char *const *const *dictionaries, const size_t *ndictionary,
                              char *err, size_t errsz);

/* Builds a pipeline from a fitted spec (deep-copied), as read from an artefact. Returns NULL
 * with err when the spec is inconsistent (a window column out of range, categories not
 * ascending, nscaled not matching the columns, a non-finite offset or factor, ...). Beyond
 * the comments in struct pipeline_spec it requires: input names non-empty and unique across
 * numeric and categorical inputs, and feature names unique; with PIPELINE_IMPUTE_NONE no
 * indicators; with PIPELINE_IMPUTE_CONSTANT every fill equal to impute_value (which is not
 * used otherwise); with window 0, window_stats 0 and no window columns (as pipeline_fit
 * writes it); factors > 0 when scaling. */
struct pipeline *pipeline_new(const struct pipeline_spec *spec, char *err, size_t errsz);

/* The fitted spec; owned by the pipeline. */
const struct pipeline_spec *pipeline_spec(const struct pipeline *pipeline);

/* Input columns per row (nnumeric + ncategorical), output features per row, and the name of
 * output feature i (owned by the pipeline). */
size_t pipeline_ninputs(const struct pipeline *pipeline);
size_t pipeline_nfeatures(const struct pipeline *pipeline);
const char *pipeline_feature_name(const struct pipeline *pipeline, size_t i);

/* The code of category bytes[0..len) of categorical input j: its index in the sorted
 * categories, or -1 when the pipeline does not know it. */
long pipeline_category_index(const struct pipeline *pipeline, size_t j, const char *bytes,
                             size_t len);

/* Returns an empty window history for pipelines with this one's numeric inputs and window
 * (never NULL); free with pipeline_state_destroy. */
struct pipeline_state *pipeline_state_new(const struct pipeline *pipeline);

/* Whether state can serve `pipeline` (same numeric inputs, in order, and same window), so
 * that a new version of a model keeps the history its predecessor built. */
bool pipeline_state_fits(const struct pipeline_state *state, const struct pipeline *pipeline);

/* Whether state holds a history for the key bytes key[0..len). Only reads state. */
bool pipeline_state_has(const struct pipeline_state *state, const char *key, size_t len);

/* Keys with history, and the bytes the history holds (for memory accounting). */
size_t pipeline_state_keys(const struct pipeline_state *state);
size_t pipeline_state_bytes(const struct pipeline_state *state);

/* Checkpoint, eviction and restore of one key's history, e.g. to a changelog topic when the
 * partition that owns the key is revoked and back when it is assigned. A history is a list of
 * records, oldest first, each pipeline_state_width doubles: the record's raw numeric inputs in
 * the order of the pipeline's numeric inputs, as they went into pipeline_transform (NAN for a
 * missing value; fills are applied only when features are computed, so a history serves every
 * pipeline the state fits). Keys are bytes, as for pipeline_state_has: a NULL key with len 0 is
 * the empty key. */

/* Doubles per record of a history: the number of numeric inputs, 0 when the state has no
 * window (it then holds no history). */
size_t pipeline_state_width(const struct pipeline_state *state);

/* Copies the history of key[0..len) into out, records oldest first, width doubles each (at
 * most window x width doubles: the caller sizes out for a full window), bit for bit as the
 * inputs went in. Returns the number of records, at most window; 0 when state holds no history
 * for the key (out is then left untouched), and 0 for a key held with no records. Only reads
 * state. */
size_t pipeline_state_get(const struct pipeline_state *state, const char *key, size_t len,
                          double *out);

/* Replaces the history of key[0..len) with records[0..count x width) (oldest first, width
 * doubles each; records may be NULL when count or width is 0), creating the key when state
 * does not hold it. When count exceeds the window only the newest `window` records are kept.
 * Count 0 leaves the key held with an empty history (pipeline_state_has is true, its next
 * record starts a window of one). Transforming after a put gives the features the state that
 * produced the records would give. A state with window 0 ignores the call. Never fails;
 * allocates only for a key that state does not hold (as pipeline_transform). Nothing of
 * records is kept. */
void pipeline_state_put(struct pipeline_state *state, const char *key, size_t len,
                        const double *records, size_t count);

/* Removes the history of key[0..len) and frees it: pipeline_state_keys drops by one and
 * pipeline_state_bytes by the bytes the history held (the key table itself keeps its size).
 * A key that state does not hold is ignored. The other keys and their histories are left as
 * they were. */
void pipeline_state_drop(struct pipeline_state *state, const char *key, size_t len);

/* Transforms rows in order into out (rows->nrows x pipeline_nfeatures, row-major): each
 * row's record first joins its key's window in state (state may be NULL when the pipeline
 * has no window), then its features are computed. Never fails; allocates only when a key is
 * seen for the first time. A window pipeline needs a state that fits it (asserted). Keys
 * with key_lens NULL are NUL-terminated strings. */
void pipeline_transform(const struct pipeline *pipeline, struct pipeline_state *state,
                        const struct pipeline_rows *rows, double *out);

/* Computes into out the features rows would get from pipeline_transform, each row joining its
 * key's window in order (rows of one key within the call see each other), but leaves state
 * exactly as it was: for real-time requests that score a record without it becoming part of
 * the stream's history. state may be NULL when the pipeline has no window; a window pipeline
 * needs a state that fits it (asserted). Only reads state, so threads that share it may peek at
 * once while none transforms (the caller holds a lock). Needs no scratch from the caller; may
 * allocate (copies of the touched keys' histories, freed before it returns: it is not on the
 * stream's record path). Never fails. */
void pipeline_peek(const struct pipeline *pipeline, const struct pipeline_state *state,
                   const struct pipeline_rows *rows, double *out);

/* Free a window state and a pipeline; NULL is a no-op. */
void pipeline_state_destroy(struct pipeline_state *state);
void pipeline_destroy(struct pipeline *pipeline);

/* Parses a statistic name ("mean", "std", "min", "max", "slope", "last", "count") into its
 * bit; 0 for an unknown name. pipeline_stat_name is the reverse (NULL for a non-single bit). */
unsigned pipeline_stat_parse(const char *name);
const char *pipeline_stat_name(unsigned stat);

#endif
