/* Configuration: the typed settings of every command, from defaults, a YAML
 * file, the environment and --set, all driven by one table of keys. */
#ifndef TRIBUTARY_CONFIG_H
#define TRIBUTARY_CONFIG_H

#include <stddef.h>
#include <stdio.h>

struct kafka_prop; /* connectors/kafka/kafka_conf.h */

/* One librdkafka property from under `kafka:`, passed to librdkafka as-is. */
struct config_kv {
    char *key;
    char *value;
};

/* Every setting. Commands read the fields directly. Strings and lists are owned
 * by the struct and strings are never NULL (an unset string is "", an empty list
 * is NULL with a count of 0); replace them only through config_set /
 * config_kafka_set so that ownership stays right.
 * `tributary config` (config_print_help) lists every key with its default,
 * bounds and meaning; the table in config.c is the one source of truth. */
struct config {
    char *log_level; /* log.level: debug|info|warn|error */
    struct config_kv *kafka;
    size_t nkafka; /* kafka.*: librdkafka properties, keys joined with '.' */
    struct {
        char *topic;
        char *schema;
        char **features; /* numeric input fields */
        size_t nfeatures;
        char **categorical; /* string or enum input fields, one-hot encoded */
        size_t ncategorical;
        char *label; /* "" = no label */
        char *key;   /* field naming the machine in files, "" = none */
        char *time;  /* field ordering a machine's records in files, "" = none */
    } input;
    struct {
        char *impute; /* none|mean|constant */
        double impute_value;
        int impute_indicator; /* bool */
        int window;           /* records per key, 0 = no window features */
        char **window_stats;
        size_t nwindow_stats;
        char **window_columns; /* empty = every numeric input */
        size_t nwindow_columns;
        char *scale; /* none|standard|minmax */
    } pipeline;
    struct {
        char *topic;
        char *dead_letter_topic;
    } output;
    struct {
        int workers;
        char *group_id;
        int batch_max_records;
        int batch_max_wait_ms;
        int commit_interval_ms;
        char *model; /* artefact path, "" = none */
        int drain_timeout_ms;
        int statistics_interval_ms; /* librdkafka statistics (consumer lag), 0 = off */
    } serve;
    struct {
        char *address; /* host:port, "" = no HTTP server */
        int max_body_bytes;
        int header_timeout_ms;
        int idle_timeout_ms;
        int max_connections;
        char *token;      /* bearer token for POST .../reload, "" = none */
        char *token_file; /* or a file holding it */
    } http;
    struct online_config {
        char *model;  /* none|rls|ftrl|ftrl_logistic|anomaly|holt */
        int residual; /* bool: learn what the registry model leaves (its value or logit as offset)
                       */
        double forgetting, delta;   /* rls */
        double alpha, beta, l1, l2; /* ftrl */
        char *stat;                 /* anomaly: welford|ewma */
        double ewma_alpha;
        char *score; /* anomaly: zmax|mahalanobis */
        int warmup;
        char *indicator; /* holt: the pipeline feature that is the health indicator */
        double level_alpha, trend_beta, threshold, horizon;
        char *direction; /* holt: up|down */
    } online;
    struct {
        char *changelog_topic; /* "" = per-key state is not checkpointed */
        int checkpoint_interval_ms;
        long long max_bytes; /* 0 = no limit */
        char *spill_directory;
        int restore_timeout_ms;
    } state;
    struct {
        int brokers;
        int partitions;
    } broker; /* the embedded broker */
    struct {
        char *input;
        char *format;        /* auto|csv|avro */
        char *csv_delimiter; /* one character, or "whitespace" */
        int csv_header;      /* bool */
        char **csv_columns;
        size_t ncsv_columns;
        char *rul_key; /* with rul_time: label = max(rul_time within rul_key) - rul_time */
        char *rul_time;
        double rul_cap;     /* 0 = no cap */
        char **label_flags; /* 0/1 columns: label = 1 + index of the first set, 0 for none */
        size_t nlabel_flags;
        double l2;
        char *model; /* ridge|logistic|softmax */
        int max_iter;
        double tol;
        char *split; /* none|random|group|time */
        double test_fraction;
        int folds; /* >= 2: k-fold cross-validation metrics too */
        long long seed;
        char *test_input;  /* a separate test file, "" = none */
        char *test_labels; /* one true label per key of test_input, for its last record */
        char *model_name;
        int model_version;
        char *output;
    } train;
    struct {
        char *space;     /* search space file */
        char *algorithm; /* tpe|random */
        int trials;
        int parallelism;
        long long seed;
        int startup_trials;
        char *loss;            /* a manifest metric, optionally "1-" before it */
        int early_stop_trials; /* 0 = never */
        char *loss_threshold;  /* "" = none */
        double trial_timeout_s;
        char *directory; /* trials log, report, trial configurations */
        int resume;      /* bool */
        int publish;     /* bool */
    } tune;
    struct {
        char *directory; /* train publishes into it, serve watches it; "" = none */
        char *topic;     /* compacted models topic, "" = none */
        int poll_ms;
    } registry;
    struct {
        int machines;
        double rate;     /* records per second, 0 = as fast as possible */
        long long count; /* 0 = unbounded */
        double seconds;  /* 0 = unbounded */
        long long seed;
        double bad_ratio; /* fraction of deliberately corrupt records */
        char *history_output;
        long long history_count;
    } simulate;
    struct {
        double seconds;
    } demo;
};

/* Returns a configuration with every key at its default (the table's default
 * strings, parsed by the same code as file values). Never NULL; the caller
 * frees it with config_destroy. */
struct config *config_new(void);

/* Frees cfg and everything it owns; cfg may be NULL. */
void config_destroy(struct config *cfg);

/* Loads the YAML file at path over cfg: a mapping at the top, a nested mapping
 * per section (or dotted keys such as `serve.workers: 4`), a block or flow
 * sequence for a list, any nesting under `kafka:` (keys joined with '.').
 * An empty value for a section or a list means "nothing"/"empty"; an empty
 * value for a string key is "". Returns TB_OK, or TB_CONFIG with a message
 * naming the file, the 1-based line and the key ("x.yaml:7: serve.workers: 'abc'
 * is not an integer"; unknown and duplicated keys, wrong shapes, values out of
 * bounds, YAML syntax errors, a file that cannot be read; TB_NOMEM only if
 * libyaml itself runs out of memory). On failure cfg is left exactly as it was. */
int config_load_file(struct config *cfg, const char *path, char *err, size_t errsz);

/* Applies the TRIBUTARY_* variables of envp (a NULL-terminated "NAME=value"
 * array such as environ) over cfg. A key's variable is TRIBUTARY_ followed by
 * its path in capitals with '.' as '_' (TRIBUTARY_SERVE_WORKERS=4); a list is
 * comma-separated ("a,b,c", "" is empty); TRIBUTARY_KAFKA_<REST> sets the
 * kafka property lower(REST) with '_' as '.' (TRIBUTARY_KAFKA_BOOTSTRAP_SERVERS
 * is bootstrap.servers). TRIBUTARY_BIN and TRIBUTARY_DATA belong to the test
 * and demo scripts, not to the configuration, and are ignored; any other
 * unknown TRIBUTARY_* variable is an error, and so is a name or value that is
 * not UTF-8 text (which no YAML file could hold). Other variables are ignored.
 * Returns TB_OK, or TB_CONFIG with a message naming the variable
 * ("environment TRIBUTARY_SERVE_WORKRS: unknown key"); on failure cfg is left
 * exactly as it was. */
int config_apply_env(struct config *cfg, char *const *envp, char *err, size_t errsz);

/* Sets the key at its dotted path (e.g. "serve.workers", "input.features" as
 * "a,b", "kafka.bootstrap.servers") from the string value, with the same
 * parsing and bounds as a file. origin names the source in messages ("--set";
 * NULL means "set"): "--set serve.workers: 'x' is not an integer". A key or
 * value that is not UTF-8 text is refused ("--set input.topic: not UTF-8
 * text"), as in a file. Returns TB_OK, or TB_CONFIG with cfg unchanged. value
 * is copied. */
int config_set(struct config *cfg, const char *key, const char *value, const char *origin,
               char *err, size_t errsz);

/* Returns the value of the kafka property key, or NULL when it is not set. The
 * string is owned by cfg and valid until the property is next changed. */
const char *config_kafka_get(const struct config *cfg, const char *key);

/* Sets the kafka property key to value (both copied), replacing an earlier
 * value; a NULL value removes the property. */
void config_kafka_set(struct config *cfg, const char *key, const char *value);

/* The kafka.* keys as librdkafka properties, in an array with room for one
 * more entry. The array is the caller's to free; its strings stay owned by cfg
 * (and valid until cfg changes). */
struct kafka_prop *config_kafka_props(const struct config *cfg, size_t *nprops);

/* Returns the dotted path of the index-th key of the table (0-based, table
 * order), or NULL past the last one. The kafka.* passthrough is not a key. */
const char *config_key_path(size_t index);

/* Prints one line per key to out: path, type, default, bounds, meaning; a
 * header line first and a line about environment variables last. */
void config_print_help(FILE *out);

/* Prints a complete, commented example YAML file to out: every key at its
 * default, sections in table order. The output loads back without error and
 * gives config_new()'s values; config/tributary.example.yaml is exactly it. */
void config_write_example(FILE *out);

/* Writes every key of cfg with its value, one dotted `key: value` line each, as YAML that
 * config_load_file reads back into the same values (doubles with 17 significant digits). */
void config_write(const struct config *cfg, FILE *out);

#endif
