/* Configuration: one table of keys drives defaults, YAML loading, environment
 * overrides, --set, --help and the example file. */
#include "service/config/config.h"

#include "connectors/kafka/kafka_conf.h"
#include "service/base/error.h"
#include "service/base/mem.h"
#include "service/config/yaml_file.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define CONFIG_ENV_PREFIX "TRIBUTARY_"
/* Nesting under kafka: deeper than any librdkafka property; also stops a YAML
 * alias that refers to its own ancestor from recursing for ever. */
#define CONFIG_KAFKA_DEPTH_MAX 16
/* The longest kafka property name config_write writes as an implicit YAML key. */
#define CONFIG_IMPLICIT_KEY_BYTES 250

enum config_type {
    CONFIG_STRING,    /* char *, any text */
    CONFIG_CHOICE,    /* char *, one of the '|'-separated words of choices */
    CONFIG_DELIMITER, /* char *, one character or the word "whitespace" */
    CONFIG_INT,       /* int */
    CONFIG_INT64,     /* long long */
    CONFIG_DOUBLE,    /* double, finite */
    CONFIG_BOOL,      /* int, 0 or 1 */
    CONFIG_LIST,      /* char ** with its size_t count at count_offset */
    CONFIG_KAFKA,     /* struct config_kv * with its size_t count at count_offset */
};

struct config_field {
    const char *path; /* "section.key"; the kafka row is "kafka" */
    enum config_type type;
    size_t offset;       /* of the value in struct config */
    size_t count_offset; /* of the item count, for CONFIG_LIST and CONFIG_KAFKA */
    const char *default_text;
    const char *min; /* bounds as text, parsed like values; NULL = unbounded */
    const char *max;
    bool min_exclusive;
    const char *choices; /* CONFIG_CHOICE: "a|b|c" */
    const char *doc;
};

/* clang-format off */
#define OFF(member) offsetof(struct config, member)
/* One row per kind of key: path, member, default, [bounds or choices], doc. */
#define STRING(p, m, def, doc)            {p, CONFIG_STRING, OFF(m), 0, def, NULL, NULL, false, NULL, doc}
#define CHOICE(p, m, def, choices, doc)   {p, CONFIG_CHOICE, OFF(m), 0, def, NULL, NULL, false, choices, doc}
#define DELIMITER(p, m, def, doc)         {p, CONFIG_DELIMITER, OFF(m), 0, def, NULL, NULL, false, NULL, doc}
#define INT(p, m, def, min, max, doc)     {p, CONFIG_INT, OFF(m), 0, def, min, max, false, NULL, doc}
#define INT64(p, m, def, min, max, doc)   {p, CONFIG_INT64, OFF(m), 0, def, min, max, false, NULL, doc}
#define DOUBLE(p, m, def, min, max, doc)  {p, CONFIG_DOUBLE, OFF(m), 0, def, min, max, false, NULL, doc}
#define DOUBLE_ABOVE(p, m, def, min, doc) {p, CONFIG_DOUBLE, OFF(m), 0, def, min, NULL, true, NULL, doc}
#define FRACTION(p, m, def, doc)          {p, CONFIG_DOUBLE, OFF(m), 0, def, "0", "1", true, NULL, doc}
#define BOOL(p, m, def, doc)              {p, CONFIG_BOOL, OFF(m), 0, def, NULL, NULL, false, NULL, doc}
#define LIST(p, m, count, def, doc)       {p, CONFIG_LIST, OFF(m), OFF(count), def, NULL, NULL, false, NULL, doc}
#define KAFKA(p, m, count, doc)           {p, CONFIG_KAFKA, OFF(m), OFF(count), "", NULL, NULL, false, NULL, doc}

static const struct config_field config_fields[] = {
    CHOICE("log.level", log_level, "info", "debug|info|warn|error", "Lowest level of log lines printed"),
    KAFKA("kafka", kafka, nkafka, "librdkafka properties passed through as-is, nested keys joined with '.'; without bootstrap.servers, serve and demo start the embedded broker"),
    STRING("input.topic", input.topic, "telemetry", "Topic the telemetry is consumed from"),
    STRING("input.schema", input.schema, "config/schemas/telemetry.avsc", "Avro schema (.avsc) of the input records"),
    LIST("input.features", input.features, input.nfeatures, "", "Numeric input fields the pipeline reads, in order"),
    LIST("input.categorical", input.categorical, input.ncategorical, "", "String or enum input fields, one-hot encoded"),
    STRING("input.label", input.label, "", "Input field holding the label to learn from; empty: none"),
    STRING("input.key", input.key, "", "Field naming the machine in files (per-key windows and grouped splits offline; serve uses the Kafka key)"),
    STRING("input.time", input.time, "", "Field ordering a machine's records in files, for time splits"),
    CHOICE("pipeline.impute", pipeline.impute, "none", "none|mean|constant", "Missing numeric inputs: none (train skips the row, serve dead-letters the record), the training mean, or impute_value"),
    DOUBLE("pipeline.impute_value", pipeline.impute_value, "0", NULL, NULL, "The constant of pipeline.impute: constant"),
    BOOL("pipeline.impute_indicator", pipeline.impute_indicator, "false", "Add a 0/1 <name>_missing feature for inputs that had missing values in training"),
    INT("pipeline.window", pipeline.window, "0", "0", "100000", "Rolling window per key, in records (this one included); 0: no window features"),
    LIST("pipeline.window_stats", pipeline.window_stats, pipeline.nwindow_stats, "mean,std", "Window statistics: mean, std, min, max, slope, last, count"),
    LIST("pipeline.window_columns", pipeline.window_columns, pipeline.nwindow_columns, "", "Numeric inputs the window covers; empty: all of them"),
    CHOICE("pipeline.scale", pipeline.scale, "none", "none|standard|minmax", "Scaling of the features before the one-hot ones, fitted on the training rows"),
    STRING("output.topic", output.topic, "predictions", "Topic predictions are produced to"),
    STRING("output.dead_letter_topic", output.dead_letter_topic, "telemetry.dlq", "Topic records that cannot be processed go to, with the reason"),
    INT("serve.workers", serve.workers, "2", "1", "64", "Worker threads, each with its own consumer in the group"),
    STRING("serve.group_id", serve.group_id, "tributary", "Kafka consumer group; instances in one group share the partitions"),
    INT("serve.batch_max_records", serve.batch_max_records, "5000", "1", "1000000", "Largest micro-batch, in records"),
    INT("serve.batch_max_wait_ms", serve.batch_max_wait_ms, "50", "0", "60000", "Longest wait for a micro-batch to fill, in milliseconds"),
    INT("serve.commit_interval_ms", serve.commit_interval_ms, "1000", "100", "600000", "Interval between offset commits, in milliseconds"),
    STRING("serve.model", serve.model, "", "Model artefact to start serving; empty: the latest version of train.model_name in registry.directory"),
    INT("serve.statistics_interval_ms", serve.statistics_interval_ms, "5000", "0", "600000", "Interval of librdkafka statistics, the source of the consumer lag metric; 0: off"),
    INT("serve.drain_timeout_ms", serve.drain_timeout_ms, "10000", "100", "600000", "Time allowed at shutdown to finish in-flight batches, in milliseconds"),
    STRING("http.address", http.address, "127.0.0.1:8080", "Address of serve's HTTP endpoint (health, readiness, metrics, models), host:port (port 0: any free one); empty: none"),
    INT("http.max_body_bytes", http.max_body_bytes, "1048576", "1", "1073741824", "Longest request body accepted (413 beyond)"),
    INT("http.header_timeout_ms", http.header_timeout_ms, "10000", "100", "600000", "A client that sends nothing for this long while connecting or mid-request is dropped"),
    INT("http.idle_timeout_ms", http.idle_timeout_ms, "60000", "100", "3600000", "A kept-alive connection idle this long is closed"),
    STRING("http.token", http.token, "", "Bearer token that POST /v1/models/{name}/reload requires (TRIBUTARY_HTTP_TOKEN); empty: none"),
    STRING("http.token_file", http.token_file, "", "A file holding that token (its first line), instead of http.token"),
    INT("http.max_connections", http.max_connections, "256", "1", "100000", "Open HTTP connections; more are answered 503"),
    CHOICE("online.model", online.model, "none", "none|rls|ftrl|ftrl_logistic|anomaly|holt", "Per-key online model serve keeps for every machine: recursive least squares, FTRL linear or logistic regression, a per-feature anomaly score, or Holt's trend RUL estimate; none: the registry model alone"),
    BOOL("online.residual", online.residual, "true", "rls, ftrl, ftrl_logistic: start from the registry model and learn each machine's residual (its value, or its logit, as offset); false: stand alone"),
    FRACTION("online.forgetting", online.forgetting, "1", "rls: forgetting factor in (0, 1]; 1 remembers everything (ridge on the whole stream)"),
    DOUBLE_ABOVE("online.delta", online.delta, "1", "0", "rls: initial precision, the ridge penalty of the whole stream"),
    DOUBLE_ABOVE("online.alpha", online.alpha, "0.1", "0", "ftrl: learning rate alpha of alpha / (beta + sqrt(sum of squared gradients))"),
    DOUBLE("online.beta", online.beta, "1", "0", NULL, "ftrl: learning rate beta"),
    DOUBLE("online.l1", online.l1, "0", "0", NULL, "ftrl: L1 penalty (FTRL-Proximal's, exact zeros)"),
    DOUBLE("online.l2", online.l2, "0", "0", NULL, "ftrl: L2 penalty per record learned"),
    CHOICE("online.stat", online.stat, "welford", "welford|ewma", "anomaly: mean and variance of all records (welford) or exponentially weighted (ewma)"),
    FRACTION("online.ewma_alpha", online.ewma_alpha, "0.05", "anomaly: weight of the newest record with stat ewma, in (0, 1]"),
    CHOICE("online.score", online.score, "mahalanobis", "zmax|mahalanobis", "anomaly: the largest |z| of the features, or the root of the sum of z squared (diagonal Mahalanobis)"),
    INT("online.warmup", online.warmup, "10", "0", NULL, "anomaly, holt: records a machine must have shown before it is scored (score 0, RUL online.horizon until then)"),
    STRING("online.indicator", online.indicator, "", "holt: the pipeline feature (an input or window column name) that is the health indicator"),
    FRACTION("online.level_alpha", online.level_alpha, "0.3", "holt: level smoothing, in (0, 1]"),
    FRACTION("online.trend_beta", online.trend_beta, "0.1", "holt: trend smoothing, in (0, 1]"),
    DOUBLE("online.threshold", online.threshold, "0", NULL, NULL, "holt: the indicator's failure level"),
    CHOICE("online.direction", online.direction, "up", "up|down", "holt: whether the indicator rises or falls to the threshold"),
    DOUBLE_ABOVE("online.horizon", online.horizon, "1000", "0", "holt: the longest remaining useful life reported, in records"),
    STRING("state.changelog_topic", state.changelog_topic, "", "Compacted topic per-key state is checkpointed to, with the input's partition count; empty: state is not checkpointed and a rebalance or crash loses it"),
    INT("state.checkpoint_interval_ms", state.checkpoint_interval_ms, "1000", "10", "600000", "How often changed keys are checkpointed; input offsets are committed only up to a checkpoint"),
    INT64("state.max_bytes", state.max_bytes, "0", "0", NULL, "Memory for per-key state per worker; beyond it the least recently seen machines move to a spill file and come back on their next record; 0: no limit"),
    STRING("state.spill_directory", state.spill_directory, "", "Directory of the spill files of state.max_bytes; empty: $TMPDIR or /tmp"),
    INT("state.restore_timeout_ms", state.restore_timeout_ms, "60000", "100", NULL, "Longest wait for reading a partition's state back from the changelog"),
    INT("broker.brokers", broker.brokers, "3", "1", "16", "Brokers in the embedded cluster"),
    INT("broker.partitions", broker.partitions, "8", "1", "1024", "Partitions per topic in the embedded cluster"),
    STRING("train.input", train.input, "", "Training data file (CSV or Avro container)"),
    CHOICE("train.format", train.format, "auto", "auto|csv|avro", "Format of train.input; auto: decided from the file"),
    DELIMITER("train.csv_delimiter", train.csv_delimiter, ",", "CSV field separator: one character, or whitespace for runs of blanks"),
    BOOL("train.csv_header", train.csv_header, "true", "Whether the CSV file's first line names the columns"),
    LIST("train.csv_columns", train.csv_columns, train.ncsv_columns, "", "Column names of a CSV file without a header line"),
    STRING("train.rul_key", train.rul_key, "", "With rul_time: derive the label as remaining useful life per value of this column"),
    STRING("train.rul_time", train.rul_time, "", "With rul_key: time column; label = max(rul_time within rul_key) - rul_time"),
    LIST("train.label_flags", train.label_flags, train.nlabel_flags, "", "0/1 columns (e.g. failure modes): the label is 1 + the index of the first one set, 0 when none"),
    DOUBLE("train.rul_cap", train.rul_cap, "0", "0", NULL, "Upper limit of the derived remaining useful life; 0: no cap"),
    DOUBLE("train.l2", train.l2, "1.0", "0", NULL, "L2 penalty on the coefficients (not the intercepts): scikit-learn's Ridge(alpha=l2) and LogisticRegression(C=1/l2)"),
    CHOICE("train.model", train.model, "ridge", "ridge|logistic|softmax", "Model: ridge regression, binary logistic or multinomial softmax regression"),
    INT("train.max_iter", train.max_iter, "1000", "1", "1000000", "Iteration limit of the logistic and softmax solvers"),
    DOUBLE_ABOVE("train.tol", train.tol, "1e-8", "0", "Gradient tolerance of the logistic and softmax solvers"),
    CHOICE("train.split", train.split, "none", "none|random|group|time", "Hold out test rows: at random, by whole machines (input.key), or the latest (input.time)"),
    DOUBLE_ABOVE("train.test_fraction", train.test_fraction, "0.2", "0", "Fraction of rows held out by train.split (below 1)"),
    INT("train.folds", train.folds, "0", "0", "100", "With 2 or more: also cross-validate over this many folds, split as train.split says"),
    INT64("train.seed", train.seed, "1", NULL, NULL, "Seed of random and grouped splits"),
    STRING("train.test_input", train.test_input, "", "A separate test file, read like train.input; empty: none"),
    STRING("train.test_labels", train.test_labels, "", "One true label per line for the last record of each key of test_input, in key order (C-MAPSS RUL files)"),
    STRING("train.model_name", train.model_name, "model", "Model name written into the artefact's manifest"),
    INT("train.model_version", train.model_version, "1", "1", NULL, "Model version written into the artefact's manifest"),
    STRING("train.output", train.output, "", "Artefact file to write; empty: only publish"),
    STRING("tune.space", tune.space, "", "Search space file of tributary tune (config keys to Hyperopt-style distributions; see config/spaces/fd001.yaml)"),
    CHOICE("tune.algorithm", tune.algorithm, "tpe", "tpe|random", "Search algorithm: TPE (as Hyperopt) or random search"),
    INT("tune.trials", tune.trials, "50", "1", "100000", "Trials in all, those of a resumed log included"),
    INT("tune.parallelism", tune.parallelism, "2", "1", "256", "Trials run at once, each a train process; OpenBLAS threads are shared out among them"),
    INT64("tune.seed", tune.seed, "1", NULL, NULL, "Seed: one seed and parallelism give the same trials"),
    INT("tune.startup_trials", tune.startup_trials, "20", "1", "100000", "Trials drawn from the prior before TPE models the results"),
    STRING("tune.loss", tune.loss, "cv_rmse", "The manifest metric to minimise (cv_rmse, holdout_log_loss, ...); 1-<metric> to maximise one (1-cv_f1)"),
    INT("tune.early_stop_trials", tune.early_stop_trials, "0", "0", NULL, "Stop after this many finished trials without a better loss; 0: never"),
    STRING("tune.loss_threshold", tune.loss_threshold, "", "Stop once the best loss is at or below this; empty: never"),
    DOUBLE_ABOVE("tune.trial_timeout_s", tune.trial_timeout_s, "600", "0", "A trial still running after this many seconds is stopped and recorded as failed"),
    STRING("tune.directory", tune.directory, "build/tune", "Where tune writes <name>-trials.jsonl, <name>-report.html, <name>-best.yaml and the best artefact"),
    BOOL("tune.resume", tune.resume, "true", "Continue the trials log of an earlier run with the same name, instead of starting afresh"),
    BOOL("tune.publish", tune.publish, "true", "Publish the refitted best model to registry.directory (and registry.topic) when they are set"),
    STRING("registry.directory", registry.directory, "", "Model registry: train --publish writes the next version here, serve watches it; empty: none"),
    STRING("registry.topic", registry.topic, "models", "Compacted topic that train --publish produces models to and serve watches; empty: none"),
    INT("registry.poll_ms", registry.poll_ms, "1000", "50", "600000", "How often serve looks for a new model version in registry.directory, in milliseconds"),
    INT("simulate.machines", simulate.machines, "20", "1", "1000000", "Machines in the simulated fleet"),
    DOUBLE("simulate.rate", simulate.rate, "0", "0", NULL, "Records per second; 0: as fast as possible"),
    INT64("simulate.count", simulate.count, "0", "0", NULL, "Records to produce; 0: unbounded"),
    DOUBLE("simulate.seconds", simulate.seconds, "0", "0", NULL, "Seconds to run; 0: unbounded"),
    INT64("simulate.seed", simulate.seed, "1", NULL, NULL, "Random seed; one seed always gives the same fleet"),
    DOUBLE("simulate.bad_ratio", simulate.bad_ratio, "0", "0", "1", "Fraction of deliberately corrupt records, for dead-letter demos"),
    STRING("simulate.history_output", simulate.history_output, "", "Write simulate.count records to this Avro container file instead of input.topic; empty: produce to Kafka"),
    INT64("simulate.history_count", simulate.history_count, "0", "0", NULL, "Records of history the demo simulates to train.input and trains on"),
    DOUBLE_ABOVE("demo.seconds", demo.seconds, "30", "0", "How long the demo runs, in seconds"),
};
/* clang-format on */

#define CONFIG_NFIELDS (sizeof config_fields / sizeof config_fields[0])

/* Variables with the TRIBUTARY_ prefix that are not configuration: the path
 * of the binary for the end-to-end tests and the data directory of the demo
 * scripts. */
static const char *const config_env_ignored[] = {"TRIBUTARY_BIN", "TRIBUTARY_DATA"};

/* Where a value came from, for messages: "file:line: path: ..." when file is
 * set, otherwise "source name: ..." ("environment TRIBUTARY_X", "--set x"). */
struct config_origin {
    const char *file;
    size_t line;
    const char *source;
    const char *name;
};

/* Formats "<origin>: <message>" into err and returns TB_CONFIG. */
static int config_origin_fail(const struct config_origin *origin, char *err, size_t errsz,
                              const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int config_origin_fail(const struct config_origin *origin, char *err, size_t errsz,
                              const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (origin->file)
        return tb_fail(err, errsz, TB_CONFIG, "%s:%zu: %s: %s", origin->file, origin->line,
                       origin->name, message);
    return tb_fail(err, errsz, TB_CONFIG, "%s %s: %s", origin->source, origin->name, message);
}

/* Decodes the UTF-8 sequence at s into *cp and returns its length in bytes, or 0 when s does not
 * start with one (a stray or missing continuation byte, an overlong form, a surrogate, a code
 * point above U+10FFFF): what the YAML reader refuses in a file. */
static size_t config_utf8_decode(const char *s, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n;
    uint32_t v, min;
    if (u[0] < 0x80) {
        *cp = u[0];
        return 1;
    }
    if ((u[0] & 0xe0) == 0xc0) {
        n = 2, v = u[0] & 0x1fu, min = 0x80;
    } else if ((u[0] & 0xf0) == 0xe0) {
        n = 3, v = u[0] & 0x0fu, min = 0x800;
    } else if ((u[0] & 0xf8) == 0xf0) {
        n = 4, v = u[0] & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((u[i] & 0xc0) != 0x80) /* the terminating NUL included */
            return 0;
        v = v << 6 | (u[i] & 0x3fu);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

/* Whether s is UTF-8 text. Every string of a configuration is, as a YAML file can hold nothing
 * else: config_write could not write it otherwise. */
static bool config_is_utf8(const char *s)
{
    uint32_t cp;
    for (size_t n; *s; s += n)
        if ((n = config_utf8_decode(s, &cp)) == 0)
            return false;
    return true;
}

static void *config_slot(struct config *cfg, size_t offset)
{
    return (char *)cfg + offset;
}

static const void *config_slot_const(const struct config *cfg, size_t offset)
{
    return (const char *)cfg + offset;
}

/* The field at path (not the kafka row), or NULL. */
static const struct config_field *config_find_field(const char *path)
{
    for (size_t i = 0; i < CONFIG_NFIELDS; i++)
        if (config_fields[i].type != CONFIG_KAFKA && strcmp(config_fields[i].path, path) == 0)
            return &config_fields[i];
    return NULL;
}

/* Whether path names a section: some key's path starts with path + '.'. */
static bool config_is_section(const char *path)
{
    size_t len = strlen(path);
    for (size_t i = 0; i < CONFIG_NFIELDS; i++)
        if (strncmp(config_fields[i].path, path, len) == 0 && config_fields[i].path[len] == '.')
            return true;
    return false;
}

/* Whether name (after TRIBUTARY_) is path in capitals with '.' as '_'. */
static bool config_env_name_matches(const char *path, const char *name)
{
    for (; *path; path++, name++) {
        char want = *path == '.' ? '_' : (char)toupper((unsigned char)*path);
        if (*name != want)
            return false;
    }
    return *name == '\0';
}

static const struct config_field *config_find_env_field(const char *name)
{
    for (size_t i = 0; i < CONFIG_NFIELDS; i++)
        if (config_fields[i].type != CONFIG_KAFKA &&
            config_env_name_matches(config_fields[i].path, name))
            return &config_fields[i];
    return NULL;
}

enum config_integer_result { CONFIG_INTEGER_OK, CONFIG_NOT_INTEGER, CONFIG_INTEGER_OVERFLOW };

/* Parses a whole decimal integer with an optional sign: no blanks, no junk. */
static enum config_integer_result config_parse_integer(const char *text, long long *out)
{
    if (!*text || isspace((unsigned char)*text))
        return CONFIG_NOT_INTEGER;
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (end == text || *end != '\0')
        return CONFIG_NOT_INTEGER;
    if (errno == ERANGE)
        return CONFIG_INTEGER_OVERFLOW;
    *out = value;
    return CONFIG_INTEGER_OK;
}

/* Parses a whole finite decimal number: no blanks, no junk, no inf or nan. */
static bool config_parse_double(const char *text, double *out)
{
    if (!*text || isspace((unsigned char)*text))
        return false;
    char *end = NULL;
    double value = strtod(text, &end);
    if (end == text || *end != '\0' || !isfinite(value))
        return false;
    *out = value;
    return true;
}

static bool config_parse_bool(const char *text, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = 1;
            return true;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = 0;
            return true;
        }
    }
    return false;
}

static bool config_choice_matches(const char *choices, const char *text)
{
    size_t len = strlen(text);
    for (const char *c = choices; *c;) {
        size_t word = strcspn(c, "|");
        if (word == len && strncmp(c, text, len) == 0)
            return true;
        c += word;
        if (*c == '|')
            c++;
    }
    return false;
}

/* Writes the bounds of f as help and messages show them ("1..64", ">= 0",
 * "> 0", "debug|info|warn|error"); "" when the key has none. */
static void config_bounds_text(const struct config_field *f, char *buf, size_t bufsz)
{
    if (f->type == CONFIG_CHOICE)
        snprintf(buf, bufsz, "%s", f->choices);
    else if (f->type == CONFIG_DELIMITER)
        snprintf(buf, bufsz, "one char|whitespace");
    else if (f->min && f->max)
        snprintf(buf, bufsz, "%s..%s", f->min, f->max);
    else if (f->min)
        snprintf(buf, bufsz, "%s %s", f->min_exclusive ? ">" : ">=", f->min);
    else if (f->max)
        snprintf(buf, bufsz, "<= %s", f->max);
    else
        snprintf(buf, bufsz, "%s", "");
}

static bool config_integer_in_bounds(const struct config_field *f, long long value)
{
    long long bound = 0;
    if (f->min) {
        enum config_integer_result r = config_parse_integer(f->min, &bound);
        assert(r == CONFIG_INTEGER_OK);
        (void)r;
        if (value < bound || (f->min_exclusive && value == bound))
            return false;
    }
    if (f->max) {
        enum config_integer_result r = config_parse_integer(f->max, &bound);
        assert(r == CONFIG_INTEGER_OK);
        (void)r;
        if (value > bound)
            return false;
    }
    return true;
}

static bool config_double_in_bounds(const struct config_field *f, double value)
{
    double bound = 0;
    if (f->min) {
        bool ok = config_parse_double(f->min, &bound);
        assert(ok);
        (void)ok;
        if (value < bound || (f->min_exclusive && value == bound))
            return false;
    }
    if (f->max) {
        bool ok = config_parse_double(f->max, &bound);
        assert(ok);
        (void)ok;
        if (value > bound)
            return false;
    }
    return true;
}

static void config_free_list(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

/* Replaces the list of f with items[0..n) and takes items over. */
static void config_store_list(struct config *cfg, const struct config_field *f, char **items,
                              size_t n)
{
    char ***slot = config_slot(cfg, f->offset);
    size_t *count = config_slot(cfg, f->count_offset);
    config_free_list(*slot, *count);
    *slot = items;
    *count = n;
}

static void config_store_string(struct config *cfg, const struct config_field *f, const char *text)
{
    char **slot = config_slot(cfg, f->offset);
    free(*slot);
    *slot = mem_strdup(text);
}

/* Splits comma-separated text into trimmed items ("" is the empty list). On
 * success *items_out (NULL when empty) belongs to the caller. Returns TB_OK, or
 * TB_CONFIG for an empty item. */
static int config_split_list(const char *text, const struct config_origin *origin,
                             char ***items_out, size_t *n_out, char *err, size_t errsz)
{
    char **items = NULL;
    size_t n = 0, cap = 0;
    int rc = TB_OK;
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '\0')
        goto done;
    for (;;) {
        size_t len = strcspn(p, ",");
        const char *start = p, *end = p + len;
        while (start < end && isspace((unsigned char)*start))
            start++;
        while (end > start && isspace((unsigned char)end[-1]))
            end--;
        if (start == end) {
            rc = config_origin_fail(origin, err, errsz, "'%s' has an empty item", text);
            goto done;
        }
        mem_grow((void **)&items, &cap, n + 1, sizeof *items);
        items[n++] = mem_strndup(start, (size_t)(end - start));
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
done:
    if (rc != TB_OK) {
        config_free_list(items, n);
        return rc;
    }
    *items_out = items;
    *n_out = n;
    return TB_OK;
}

/* Parses text as the value of f, checks its bounds and stores it. Returns
 * TB_OK, or TB_CONFIG with cfg unchanged and a message prefixed by origin. */
static int config_set_text(struct config *cfg, const struct config_field *f, const char *text,
                           const struct config_origin *origin, char *err, size_t errsz)
{
    char bounds[128];
    config_bounds_text(f, bounds, sizeof bounds);
    switch (f->type) {
    case CONFIG_STRING:
        config_store_string(cfg, f, text);
        return TB_OK;
    case CONFIG_CHOICE:
        if (!config_choice_matches(f->choices, text))
            return config_origin_fail(origin, err, errsz, "'%s' is not one of %s", text,
                                      f->choices);
        config_store_string(cfg, f, text);
        return TB_OK;
    case CONFIG_DELIMITER:
        if (strlen(text) != 1 && strcmp(text, "whitespace") != 0)
            return config_origin_fail(origin, err, errsz,
                                      "'%s' is not a single character or 'whitespace'", text);
        config_store_string(cfg, f, text);
        return TB_OK;
    case CONFIG_INT:
    case CONFIG_INT64: {
        long long value = 0;
        int bits = f->type == CONFIG_INT ? (int)(sizeof(int) * CHAR_BIT)
                                         : (int)(sizeof(long long) * CHAR_BIT);
        enum config_integer_result r = config_parse_integer(text, &value);
        if (r == CONFIG_NOT_INTEGER)
            return config_origin_fail(origin, err, errsz, "'%s' is not an integer", text);
        if (r == CONFIG_INTEGER_OVERFLOW)
            return config_origin_fail(origin, err, errsz,
                                      "'%s' is out of range for a %d-bit integer", text, bits);
        if (!config_integer_in_bounds(f, value))
            return config_origin_fail(origin, err, errsz, "%s is out of range (%s)", text, bounds);
        if (f->type == CONFIG_INT && (value < INT_MIN || value > INT_MAX))
            return config_origin_fail(origin, err, errsz,
                                      "'%s' is out of range for a %d-bit integer", text, bits);
        if (f->type == CONFIG_INT)
            *(int *)config_slot(cfg, f->offset) = (int)value;
        else
            *(long long *)config_slot(cfg, f->offset) = value;
        return TB_OK;
    }
    case CONFIG_DOUBLE: {
        double value = 0;
        if (!config_parse_double(text, &value))
            return config_origin_fail(origin, err, errsz, "'%s' is not a number", text);
        if (!config_double_in_bounds(f, value))
            return config_origin_fail(origin, err, errsz, "%s is out of range (%s)", text, bounds);
        *(double *)config_slot(cfg, f->offset) = value;
        return TB_OK;
    }
    case CONFIG_BOOL: {
        int value = 0;
        if (!config_parse_bool(text, &value))
            return config_origin_fail(origin, err, errsz,
                                      "'%s' is not a boolean (true/false, yes/no, on/off, 1/0)",
                                      text);
        *(int *)config_slot(cfg, f->offset) = value;
        return TB_OK;
    }
    case CONFIG_LIST: {
        char **items = NULL;
        size_t n = 0;
        int rc = config_split_list(text, origin, &items, &n, err, errsz);
        if (rc != TB_OK)
            return rc;
        config_store_list(cfg, f, items, n);
        return TB_OK;
    }
    case CONFIG_KAFKA:
        break;
    }
    return config_origin_fail(origin, err, errsz, "is not a single value");
}

/* Frees every string, list and kafka property of cfg, not cfg itself. */
static void config_free_fields(struct config *cfg)
{
    for (size_t i = 0; i < CONFIG_NFIELDS; i++) {
        const struct config_field *f = &config_fields[i];
        switch (f->type) {
        case CONFIG_STRING:
        case CONFIG_CHOICE:
        case CONFIG_DELIMITER:
            free(*(char **)config_slot(cfg, f->offset));
            break;
        case CONFIG_LIST:
            config_free_list(*(char ***)config_slot(cfg, f->offset),
                             *(size_t *)config_slot(cfg, f->count_offset));
            break;
        case CONFIG_KAFKA: /* one set of properties, not one per row: freed below */
        case CONFIG_INT:
        case CONFIG_INT64:
        case CONFIG_DOUBLE:
        case CONFIG_BOOL:
            break;
        }
    }
    for (size_t k = 0; k < cfg->nkafka; k++) {
        free(cfg->kafka[k].key);
        free(cfg->kafka[k].value);
    }
    free(cfg->kafka);
}

/* Returns a deep copy of src, freed with config_destroy. */
static struct config *config_clone(const struct config *src)
{
    struct config *dst = mem_alloc(sizeof *dst);
    *dst = *src;
    for (size_t i = 0; i < CONFIG_NFIELDS; i++) {
        const struct config_field *f = &config_fields[i];
        switch (f->type) {
        case CONFIG_STRING:
        case CONFIG_CHOICE:
        case CONFIG_DELIMITER: {
            char *const *from = config_slot_const(src, f->offset);
            *(char **)config_slot(dst, f->offset) = mem_strdup(*from);
            break;
        }
        case CONFIG_LIST: {
            char **const *from = config_slot_const(src, f->offset);
            size_t n = *(const size_t *)config_slot_const(src, f->count_offset);
            char **items = n ? mem_alloc(n * sizeof *items) : NULL;
            for (size_t k = 0; k < n; k++)
                items[k] = mem_strdup((*from)[k]);
            *(char ***)config_slot(dst, f->offset) = items;
            break;
        }
        case CONFIG_KAFKA: /* one set of properties, not one per row: copied below */
        case CONFIG_INT:
        case CONFIG_INT64:
        case CONFIG_DOUBLE:
        case CONFIG_BOOL:
            break;
        }
    }
    dst->kafka = src->nkafka ? mem_alloc(src->nkafka * sizeof *dst->kafka) : NULL;
    for (size_t k = 0; k < src->nkafka; k++) {
        dst->kafka[k].key = mem_strdup(src->kafka[k].key);
        dst->kafka[k].value = mem_strdup(src->kafka[k].value);
    }
    return dst;
}

/* Moves the contents of work into cfg and frees work with cfg's old contents. */
static void config_commit(struct config *cfg, struct config *work)
{
    struct config old = *cfg;
    *cfg = *work;
    *work = old;
    config_destroy(work);
}

struct config *config_new(void)
{
    struct config *cfg = mem_calloc(1, sizeof *cfg);
    for (size_t i = 0; i < CONFIG_NFIELDS; i++) {
        const struct config_field *f = &config_fields[i];
        if (f->type == CONFIG_KAFKA)
            continue;
        struct config_origin origin = {NULL, 0, "default of", f->path};
        char err[256];
        int rc = config_set_text(cfg, f, f->default_text, &origin, err, sizeof err);
        assert(rc == TB_OK && "a default in the configuration table is invalid");
        (void)rc;
    }
    return cfg;
}

void config_destroy(struct config *cfg)
{
    if (!cfg)
        return;
    config_free_fields(cfg);
    free(cfg);
}

const char *config_kafka_get(const struct config *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->nkafka; i++)
        if (strcmp(cfg->kafka[i].key, key) == 0)
            return cfg->kafka[i].value;
    return NULL;
}

void config_kafka_set(struct config *cfg, const char *key, const char *value)
{
    for (size_t i = 0; i < cfg->nkafka; i++) {
        if (strcmp(cfg->kafka[i].key, key) != 0)
            continue;
        if (value) {
            free(cfg->kafka[i].value);
            cfg->kafka[i].value = mem_strdup(value);
            return;
        }
        free(cfg->kafka[i].key);
        free(cfg->kafka[i].value);
        memmove(&cfg->kafka[i], &cfg->kafka[i + 1], (cfg->nkafka - i - 1) * sizeof *cfg->kafka);
        cfg->nkafka--;
        return;
    }
    if (!value)
        return;
    cfg->kafka = mem_realloc(cfg->kafka, (cfg->nkafka + 1) * sizeof *cfg->kafka);
    cfg->kafka[cfg->nkafka].key = mem_strdup(key);
    cfg->kafka[cfg->nkafka].value = mem_strdup(value);
    cfg->nkafka++;
}

int config_set(struct config *cfg, const char *key, const char *value, const char *origin,
               char *err, size_t errsz)
{
    assert(key && value);
    struct config_origin where = {NULL, 0, origin ? origin : "set", key};
    if (!config_is_utf8(key) || !config_is_utf8(value))
        return config_origin_fail(&where, err, errsz, "not UTF-8 text");
    if (strncmp(key, "kafka.", 6) == 0 && key[6] != '\0') {
        config_kafka_set(cfg, key + 6, value);
        return TB_OK;
    }
    const struct config_field *f = config_find_field(key);
    if (!f)
        return config_origin_fail(&where, err, errsz, "unknown key");
    return config_set_text(cfg, f, value, &where, err, errsz);
}

int config_apply_env(struct config *cfg, char *const *envp, char *err, size_t errsz)
{
    const size_t prefix_len = strlen(CONFIG_ENV_PREFIX);
    struct config *work = config_clone(cfg);
    char *name = NULL;
    char *kafka_key = NULL;
    int rc = TB_OK;

    for (char *const *e = envp; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (strncmp(*e, CONFIG_ENV_PREFIX, prefix_len) != 0 || !eq)
            continue;
        free(name);
        name = mem_strndup(*e, (size_t)(eq - *e));
        const char *value = eq + 1;
        const char *rest = name + prefix_len;
        bool ignored = false;
        for (size_t i = 0; i < sizeof config_env_ignored / sizeof config_env_ignored[0]; i++)
            ignored = ignored || strcmp(name, config_env_ignored[i]) == 0;
        if (ignored)
            continue;
        struct config_origin origin = {NULL, 0, "environment", name};
        if (!config_is_utf8(name) || !config_is_utf8(value)) {
            rc = config_origin_fail(&origin, err, errsz, "not UTF-8 text");
            goto done;
        }
        if (strncmp(rest, "KAFKA_", 6) == 0 && rest[6] != '\0') {
            free(kafka_key);
            kafka_key = mem_strdup(rest + 6);
            for (char *c = kafka_key; *c; c++)
                *c = *c == '_' ? '.' : (char)tolower((unsigned char)*c);
            config_kafka_set(work, kafka_key, value);
            continue;
        }
        const struct config_field *f = config_find_env_field(rest);
        if (!f) {
            rc = config_origin_fail(&origin, err, errsz, "unknown key");
            goto done;
        }
        rc = config_set_text(work, f, value, &origin, err, errsz);
        if (rc != TB_OK)
            goto done;
    }
    config_commit(cfg, work);
    work = NULL;
done:
    free(kafka_key);
    free(name);
    config_destroy(work);
    return rc;
}

const char *config_key_path(size_t index)
{
    for (size_t i = 0; i < CONFIG_NFIELDS; i++) {
        if (config_fields[i].type == CONFIG_KAFKA)
            continue;
        if (index-- == 0)
            return config_fields[i].path;
    }
    return NULL;
}

/* ---- YAML loading ---------------------------------------------------- */

/* State of one config_load_file: the document being walked, the copy of the
 * configuration it is applied to, and every key path seen so far (to refuse
 * duplicates, including a flat `kafka: {a.b: 1}` against a nested
 * `kafka: {a: {b: 1}}`). */
struct config_loader {
    struct config *work;
    const char *file;
    yaml_document_t *doc;
    char **seen;
    size_t nseen;
    size_t seen_cap;
    char *err;
    size_t errsz;
};

static const char *config_expected(const struct config_field *f)
{
    switch (f->type) {
    case CONFIG_STRING:
        return "a string";
    case CONFIG_CHOICE:
        return "one of its choices";
    case CONFIG_DELIMITER:
        return "a single character or 'whitespace'";
    case CONFIG_INT:
    case CONFIG_INT64:
        return "an integer";
    case CONFIG_DOUBLE:
        return "a number";
    case CONFIG_BOOL:
        return "a boolean";
    case CONFIG_LIST:
        return "a list of strings";
    case CONFIG_KAFKA:
        break;
    }
    return "a mapping";
}

/* The text of a scalar node, refusing one with an embedded NUL ("\0"). */
static int config_scalar_text(struct config_loader *l, const yaml_node_t *node, const char *path,
                              const char **text)
{
    const char *value = (const char *)node->data.scalar.value;
    if (strlen(value) != node->data.scalar.length)
        return tb_fail(l->err, l->errsz, TB_CONFIG, "%s:%zu: %s: contains a NUL character", l->file,
                       yaml_file_line(node), path);
    *text = value;
    return TB_OK;
}

/* Sets the key f from a YAML node: a sequence of scalars for a list, a scalar
 * otherwise. */
static int config_load_field(struct config_loader *l, const struct config_field *f,
                             const yaml_node_t *value)
{
    struct config_origin origin = {l->file, yaml_file_line(value), NULL, f->path};
    const char *text = NULL;
    int rc = TB_OK;
    if (f->type == CONFIG_LIST) {
        if (yaml_file_is_null(value)) {
            config_store_list(l->work, f, NULL, 0);
            return TB_OK;
        }
        if (value->type != YAML_SEQUENCE_NODE)
            return config_origin_fail(&origin, l->err, l->errsz, "expected a list of strings");
        char **items = NULL;
        size_t n = 0;
        for (yaml_node_item_t *it = value->data.sequence.items.start;
             it < value->data.sequence.items.top; it++) {
            const yaml_node_t *item = yaml_document_get_node(l->doc, *it);
            if (item->type != YAML_SCALAR_NODE) {
                origin.line = yaml_file_line(item);
                rc = config_origin_fail(&origin, l->err, l->errsz, "expected a list of strings");
                break;
            }
            rc = config_scalar_text(l, item, f->path, &text);
            if (rc != TB_OK)
                break;
            items = mem_realloc(items, (n + 1) * sizeof *items);
            items[n++] = mem_strdup(text);
        }
        if (rc != TB_OK) {
            config_free_list(items, n);
            return rc;
        }
        config_store_list(l->work, f, items, n);
        return TB_OK;
    }
    if (value->type != YAML_SCALAR_NODE) {
        if (f->type == CONFIG_CHOICE)
            return config_origin_fail(&origin, l->err, l->errsz, "expected one of %s", f->choices);
        return config_origin_fail(&origin, l->err, l->errsz, "expected %s", config_expected(f));
    }
    if (f->type == CONFIG_STRING && yaml_file_is_null(value))
        return config_set_text(l->work, f, "", &origin, l->err, l->errsz);
    rc = config_scalar_text(l, value, f->path, &text);
    if (rc != TB_OK)
        return rc;
    return config_set_text(l->work, f, text, &origin, l->err, l->errsz);
}

static int config_load_mapping(struct config_loader *l, const yaml_node_t *map, const char *prefix,
                               int depth);

/* Applies the value of the key at path (whose key node is key): a kafka
 * property, a key of the table, or a section to walk into. */
static int config_load_entry(struct config_loader *l, const char *path, const yaml_node_t *key,
                             const yaml_node_t *value, int depth)
{
    struct config_origin origin = {l->file, yaml_file_line(value), NULL, path};
    bool is_kafka = strcmp(path, "kafka") == 0 || strncmp(path, "kafka.", 6) == 0;
    if (is_kafka) {
        if (value->type == YAML_MAPPING_NODE) {
            if (depth >= CONFIG_KAFKA_DEPTH_MAX)
                return config_origin_fail(&origin, l->err, l->errsz, "nested too deeply");
            return config_load_mapping(l, value, path, depth + 1);
        }
        if (strcmp(path, "kafka") == 0) {
            if (yaml_file_is_null(value))
                return TB_OK;
            return config_origin_fail(&origin, l->err, l->errsz, "expected a mapping");
        }
        if (value->type != YAML_SCALAR_NODE)
            return config_origin_fail(&origin, l->err, l->errsz, "expected a string or a mapping");
        const char *text = NULL;
        int rc = config_scalar_text(l, value, path, &text);
        if (rc != TB_OK)
            return rc;
        config_kafka_set(l->work, path + 6, text);
        return TB_OK;
    }
    const struct config_field *f = config_find_field(path);
    if (f)
        return config_load_field(l, f, value);
    if (!config_is_section(path))
        return tb_fail(l->err, l->errsz, TB_CONFIG, "%s:%zu: unknown key '%s'", l->file,
                       yaml_file_line(key), path);
    if (yaml_file_is_null(value))
        return TB_OK;
    if (value->type != YAML_MAPPING_NODE)
        return config_origin_fail(&origin, l->err, l->errsz, "expected a mapping");
    return config_load_mapping(l, value, path, depth + 1);
}

/* Walks the pairs of a mapping whose keys extend prefix ("" at the top). */
static int config_load_mapping(struct config_loader *l, const yaml_node_t *map, const char *prefix,
                               int depth)
{
    for (yaml_node_pair_t *pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top;
         pair++) {
        const yaml_node_t *key = yaml_document_get_node(l->doc, pair->key);
        const yaml_node_t *value = yaml_document_get_node(l->doc, pair->value);
        if (key->type != YAML_SCALAR_NODE)
            return tb_fail(l->err, l->errsz, TB_CONFIG, "%s:%zu: expected a string as the key",
                           l->file, yaml_file_line(key));
        const char *name = (const char *)key->data.scalar.value;
        size_t len = strlen(prefix) + 1 + strlen(name) + 1;
        char *path = mem_alloc(len);
        snprintf(path, len, "%s%s%s", prefix, *prefix ? "." : "", name);
        for (size_t i = 0; i < l->nseen; i++) {
            if (strcmp(l->seen[i], path) == 0) {
                int rc = tb_fail(l->err, l->errsz, TB_CONFIG, "%s:%zu: duplicate key '%s'", l->file,
                                 yaml_file_line(key), path);
                free(path);
                return rc;
            }
        }
        mem_grow((void **)&l->seen, &l->seen_cap, l->nseen + 1, sizeof *l->seen);
        l->seen[l->nseen++] = path; /* the loader owns it from here */
        int rc = config_load_entry(l, path, key, value, depth);
        if (rc != TB_OK)
            return rc;
    }
    return TB_OK;
}

int config_load_file(struct config *cfg, const char *path, char *err, size_t errsz)
{
    yaml_document_t doc;
    struct config_loader loader = {.file = path, .doc = &doc, .err = err, .errsz = errsz};
    int rc = yaml_file_load(path, &doc, err, errsz);
    if (rc != TB_OK)
        return rc;
    const yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || yaml_file_is_null(root)) /* no document, or an empty one: nothing changes */
        goto done;
    if (root->type != YAML_MAPPING_NODE) {
        rc = tb_fail(err, errsz, TB_CONFIG, "%s:%zu: expected a mapping at the top", path,
                     yaml_file_line(root));
        goto done;
    }
    loader.work = config_clone(cfg);
    rc = config_load_mapping(&loader, root, "", 0);
    if (rc != TB_OK)
        goto done;
    config_commit(cfg, loader.work);
    loader.work = NULL;
done:
    config_free_list(loader.seen, loader.nseen);
    config_destroy(loader.work);
    yaml_document_delete(&doc);
    return rc;
}

/* ---- help and example ------------------------------------------------ */

static const char *config_type_name(enum config_type type)
{
    switch (type) {
    case CONFIG_STRING:
        return "string";
    case CONFIG_CHOICE:
        return "enum";
    case CONFIG_DELIMITER:
        return "char";
    case CONFIG_INT:
        return "int";
    case CONFIG_INT64:
        return "int64";
    case CONFIG_DOUBLE:
        return "number";
    case CONFIG_BOOL:
        return "bool";
    case CONFIG_LIST:
        return "list";
    case CONFIG_KAFKA:
        return "map";
    }
    return "?";
}

/* Writes s (UTF-8) as a YAML double-quoted scalar that reads back as s: escaped are the quote,
 * the backslash and every character that YAML does not keep as it is between quotes, namely the
 * C0 and C1 controls and DEL, which it refuses, the line breaks NEL, LS and PS, which it folds,
 * and the non-characters U+FFFE and U+FFFF, which it refuses. */
static void config_write_quoted(FILE *out, const char *s)
{
    fputc('"', out);
    while (*s) {
        uint32_t cp = 0;
        size_t n = config_utf8_decode(s, &cp);
        if (n == 0) /* not UTF-8: config_set and the YAML reader let none in */
            cp = (unsigned char)*s, n = 1;
        if (cp == '"' || cp == '\\')
            fprintf(out, "\\%c", (char)cp);
        else if (cp == '\t')
            fputs("\\t", out);
        else if (cp == '\n')
            fputs("\\n", out);
        else if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
            fprintf(out, "\\x%02x", (unsigned)cp);
        else if (cp == 0x2028 || cp == 0x2029 || cp == 0xfffe || cp == 0xffff)
            fprintf(out, "\\u%04x", (unsigned)cp);
        else
            fwrite(s, 1, n, out);
        s += n;
    }
    fputc('"', out);
}

/* Writes the default of f as a YAML value: quoted strings, [..] lists. */
static void config_write_default(FILE *out, const struct config_field *f)
{
    switch (f->type) {
    case CONFIG_STRING:
    case CONFIG_DELIMITER:
        config_write_quoted(out, f->default_text);
        return;
    case CONFIG_LIST: {
        char **items = NULL;
        size_t n = 0;
        struct config_origin origin = {NULL, 0, "default of", f->path};
        int rc = config_split_list(f->default_text, &origin, &items, &n, NULL, 0);
        assert(rc == TB_OK);
        (void)rc;
        fputc('[', out);
        for (size_t i = 0; i < n; i++) {
            fputs(i ? ", " : "", out);
            config_write_quoted(out, items[i]);
        }
        fputc(']', out);
        config_free_list(items, n);
        return;
    }
    case CONFIG_KAFKA:
        fputs("{}", out);
        return;
    case CONFIG_CHOICE:
    case CONFIG_INT:
    case CONFIG_INT64:
    case CONFIG_DOUBLE:
    case CONFIG_BOOL:
        fputs(f->default_text, out);
        return;
    }
}

/* Writes the default of f for help: like the example, into a buffer. */
static void config_default_text(const struct config_field *f, char *buf, size_t bufsz)
{
    FILE *mem = fmemopen(buf, bufsz, "w");
    if (!mem) {
        snprintf(buf, bufsz, "%s", f->default_text);
        return;
    }
    config_write_default(mem, f);
    fclose(mem);
}

void config_print_help(FILE *out)
{
    int path_w = (int)strlen("KEY"), type_w = (int)strlen("TYPE");
    int default_w = (int)strlen("DEFAULT"), bounds_w = (int)strlen("BOUNDS");
    char text[256];
    for (size_t i = 0; i < CONFIG_NFIELDS; i++) {
        const struct config_field *f = &config_fields[i];
        int path_len = (int)strlen(f->path) + (f->type == CONFIG_KAFKA ? 2 : 0);
        path_w = path_len > path_w ? path_len : path_w;
        int type_len = (int)strlen(config_type_name(f->type));
        type_w = type_len > type_w ? type_len : type_w;
        config_default_text(f, text, sizeof text);
        default_w = (int)strlen(text) > default_w ? (int)strlen(text) : default_w;
        config_bounds_text(f, text, sizeof text);
        bounds_w = (int)strlen(text) > bounds_w ? (int)strlen(text) : bounds_w;
    }
    fprintf(out, "%-*s  %-*s  %-*s  %-*s  %s\n", path_w, "KEY", type_w, "TYPE", default_w,
            "DEFAULT", bounds_w, "BOUNDS", "DESCRIPTION");
    for (size_t i = 0; i < CONFIG_NFIELDS; i++) {
        const struct config_field *f = &config_fields[i];
        char path[128], bounds[128];
        snprintf(path, sizeof path, "%s%s", f->path, f->type == CONFIG_KAFKA ? ".*" : "");
        config_default_text(f, text, sizeof text);
        config_bounds_text(f, bounds, sizeof bounds);
        fprintf(out, "%-*s  %-*s  %-*s  %-*s  %s\n", path_w, path, type_w,
                config_type_name(f->type), default_w, text, bounds_w, *bounds ? bounds : "-",
                f->doc);
    }
    fprintf(out,
            "Every key is also the environment variable TRIBUTARY_<KEY> in capitals with '.' "
            "as '_' (lists comma-separated); kafka.<property> is TRIBUTARY_KAFKA_<PROPERTY>.\n");
}

/* Writes text as "# " comment lines of at most 80 columns, indented, breaking
 * between words. */
static void config_write_comment(FILE *out, const char *indent, const char *text)
{
    const int width = 80 - (int)strlen(indent) - 2;
    while (*text) {
        int len = (int)strlen(text);
        if (len > width) {
            len = width;
            while (len > 0 && text[len] != ' ')
                len--;
            if (len == 0) /* one word longer than a line */
                len = (int)strcspn(text, " ");
        }
        fprintf(out, "%s# %.*s\n", indent, len, text);
        text += len;
        while (*text == ' ')
            text++;
    }
}

void config_write_example(FILE *out)
{
    fputs("# tributary configuration: every key at its default, with what it does.\n"
          "# Printed by `tributary config --example` from the table in service/config/config.c.\n"
          "#\n"
          "# Any key can also be set from the environment: TRIBUTARY_ and its path in\n"
          "# capitals with '.' as '_' (serve.workers: TRIBUTARY_SERVE_WORKERS=4); lists\n"
          "# are comma-separated there (TRIBUTARY_INPUT_FEATURES=a,b,c), and\n"
          "# kafka.<property> is TRIBUTARY_KAFKA_<PROPERTY>\n"
          "# (TRIBUTARY_KAFKA_BOOTSTRAP_SERVERS=broker:9092).\n",
          out);
    const char *section = "";
    size_t section_len = 0;
    for (size_t i = 0; i < CONFIG_NFIELDS; i++) {
        const struct config_field *f = &config_fields[i];
        char bounds[128], comment[512];
        config_bounds_text(f, bounds, sizeof bounds);
        if (*bounds && f->type != CONFIG_DELIMITER) /* its doc already says it */
            snprintf(comment, sizeof comment, "%s (%s).", f->doc, bounds);
        else
            snprintf(comment, sizeof comment, "%s.", f->doc);
        if (f->type == CONFIG_KAFKA) {
            fputc('\n', out);
            config_write_comment(out, "", comment);
            fprintf(out, "%s: ", f->path);
            config_write_default(out, f);
            fputc('\n', out);
            section = "";
            section_len = 0;
            continue;
        }
        const char *dot = strchr(f->path, '.');
        assert(dot && "every key is section.name");
        size_t len = (size_t)(dot - f->path);
        if (len != section_len || strncmp(f->path, section, len) != 0) {
            fprintf(out, "\n%.*s:\n", (int)len, f->path);
            section = f->path;
            section_len = len;
        }
        config_write_comment(out, "  ", comment);
        fprintf(out, "  %s: ", dot + 1);
        config_write_default(out, f);
        fputc('\n', out);
    }
}

/* Writes f's value in cfg as a YAML value. */
static void config_write_value(FILE *out, const struct config *cfg, const struct config_field *f)
{
    const char *base = (const char *)cfg + f->offset;
    switch (f->type) {
    case CONFIG_STRING:
    case CONFIG_DELIMITER:
    case CONFIG_CHOICE:
        config_write_quoted(out, *(char *const *)(const void *)base);
        return;
    case CONFIG_INT:
    case CONFIG_BOOL:
        if (f->type == CONFIG_BOOL)
            fputs(*(const int *)(const void *)base ? "true" : "false", out);
        else
            fprintf(out, "%d", *(const int *)(const void *)base);
        return;
    case CONFIG_INT64:
        fprintf(out, "%lld", *(const long long *)(const void *)base);
        return;
    case CONFIG_DOUBLE:
        fprintf(out, "%.17g", *(const double *)(const void *)base);
        return;
    case CONFIG_LIST: {
        char *const *items = *(char *const *const *)(const void *)base;
        size_t n = *(const size_t *)(const void *)((const char *)cfg + f->count_offset);
        fputc('[', out);
        for (size_t i = 0; i < n; i++) {
            fputs(i ? ", " : "", out);
            config_write_quoted(out, items[i]);
        }
        fputc(']', out);
        return;
    }
    case CONFIG_KAFKA:
        fputc('{', out);
        for (size_t i = 0; i < cfg->nkafka; i++) {
            fputs(i ? ", " : "", out);
            /* YAML reads an implicit key of at most 1024 characters, and escapes make a key up
             * to four times as long: a longer one is written as an explicit key. */
            if (strlen(cfg->kafka[i].key) > CONFIG_IMPLICIT_KEY_BYTES)
                fputs("? ", out);
            config_write_quoted(out, cfg->kafka[i].key);
            fputs(": ", out);
            config_write_quoted(out, cfg->kafka[i].value);
        }
        fputc('}', out);
        return;
    }
}

void config_write(const struct config *cfg, FILE *out)
{
    fputs("# tributary configuration, every key as it was in effect.\n", out);
    for (size_t i = 0; i < CONFIG_NFIELDS; i++) {
        fprintf(out, "%s: ", config_fields[i].path);
        config_write_value(out, cfg, &config_fields[i]);
        fputc('\n', out);
    }
}

struct kafka_prop *config_kafka_props(const struct config *cfg, size_t *nprops)
{
    struct kafka_prop *props = mem_calloc(cfg->nkafka + 1, sizeof *props);
    for (size_t i = 0; i < cfg->nkafka; i++) {
        props[i].key = cfg->kafka[i].key;
        props[i].value = cfg->kafka[i].value;
    }
    *nprops = cfg->nkafka;
    return props;
}
