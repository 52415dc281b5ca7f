/* Unit tests of the configuration module: defaults, YAML loading, error
 * messages, environment overrides, kafka passthrough, help and the example. */
#include "service/base/error.h"
#include "service/config/config.h"

#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* cmocka needs the headers above first */
#include <cmocka.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Each test gets a fresh directory for its YAML file and a fresh config. */
struct fixture {
    const void *data; /* the test's case, for table-driven tests */
    char dir[64];
    char path[128]; /* dir/x.yaml */
    struct config *cfg;
    char err[512];
};

static int fixture_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->data = *state;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/test_config.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof fx->path, "%s/x.yaml", fx->dir);
    fx->cfg = config_new();
    *state = fx;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *fx = *state;
    config_destroy(fx->cfg);
    unlink(fx->path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Loads text as fx->path into fx->cfg; returns the status. */
static int load_text(struct fixture *fx, const char *text)
{
    write_file(fx->path, text);
    fx->err[0] = '\0';
    return config_load_file(fx->cfg, fx->path, fx->err, sizeof fx->err);
}

/* Returns what print(cfg-less writer) writes, as a malloc'd string. */
static char *capture(void (*print)(FILE *))
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    assert_non_null(mem);
    print(mem);
    assert_int_equal(fclose(mem), 0);
    return buf;
}

static char *read_whole_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s (run the test from the repository root)", path);
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    assert_non_null(mem);
    int c;
    while ((c = fgetc(f)) != EOF)
        fputc(c, mem);
    fclose(f);
    assert_int_equal(fclose(mem), 0);
    return buf;
}

static void assert_list(char **items, size_t n, const char *const *want, size_t nwant)
{
    assert_int_equal(n, nwant);
    for (size_t i = 0; i < nwant; i++)
        assert_string_equal(items[i], want[i]);
}

/* The values the brief and the help document, written out by hand. */
static void assert_documented_defaults(const struct config *c)
{
    assert_string_equal(c->log_level, "info");
    assert_int_equal(c->nkafka, 0);
    assert_string_equal(c->input.topic, "telemetry");
    assert_string_equal(c->input.schema, "config/schemas/telemetry.avsc");
    assert_int_equal(c->input.nfeatures, 0);
    assert_int_equal(c->input.ncategorical, 0);
    assert_string_equal(c->input.label, "");
    assert_string_equal(c->input.key, "");
    assert_string_equal(c->input.time, "");
    assert_string_equal(c->pipeline.impute, "none");
    assert_true(c->pipeline.impute_value == 0.0);
    assert_int_equal(c->pipeline.impute_indicator, 0);
    assert_int_equal(c->pipeline.window, 0);
    const char *const stats[] = {"mean", "std"};
    assert_list(c->pipeline.window_stats, c->pipeline.nwindow_stats, stats, 2);
    assert_int_equal(c->pipeline.nwindow_columns, 0);
    assert_string_equal(c->pipeline.scale, "none");
    assert_string_equal(c->output.topic, "predictions");
    assert_string_equal(c->output.dead_letter_topic, "telemetry.dlq");
    assert_int_equal(c->serve.workers, 2);
    assert_string_equal(c->serve.group_id, "tributary");
    assert_int_equal(c->serve.batch_max_records, 5000);
    assert_int_equal(c->serve.batch_max_wait_ms, 50);
    assert_int_equal(c->serve.commit_interval_ms, 1000);
    assert_string_equal(c->serve.model, "");
    assert_int_equal(c->serve.drain_timeout_ms, 10000);
    assert_string_equal(c->http.address, "127.0.0.1:8080");
    assert_int_equal(c->http.max_body_bytes, 1048576);
    assert_int_equal(c->http.header_timeout_ms, 10000);
    assert_int_equal(c->http.idle_timeout_ms, 60000);
    assert_int_equal(c->http.max_connections, 256);
    assert_string_equal(c->http.token, "");
    assert_string_equal(c->http.token_file, "");
    assert_int_equal(c->broker.brokers, 3);
    assert_int_equal(c->broker.partitions, 8);
    assert_string_equal(c->train.input, "");
    assert_string_equal(c->train.format, "auto");
    assert_string_equal(c->train.csv_delimiter, ",");
    assert_int_equal(c->train.csv_header, 1);
    assert_int_equal(c->train.ncsv_columns, 0);
    assert_string_equal(c->train.rul_key, "");
    assert_string_equal(c->train.rul_time, "");
    assert_true(c->train.rul_cap == 0.0);
    assert_true(c->train.l2 == 1.0);
    assert_string_equal(c->train.model, "ridge");
    assert_int_equal(c->train.max_iter, 1000);
    assert_true(c->train.tol == 1e-8);
    assert_string_equal(c->train.split, "none");
    assert_true(c->train.test_fraction == 0.2);
    assert_int_equal(c->train.folds, 0);
    assert_int_equal(c->train.seed, 1);
    assert_string_equal(c->train.test_input, "");
    assert_string_equal(c->train.test_labels, "");
    assert_string_equal(c->train.model_name, "model");
    assert_int_equal(c->train.model_version, 1);
    assert_string_equal(c->train.output, "");
    assert_string_equal(c->registry.directory, "");
    assert_string_equal(c->registry.topic, "models");
    assert_int_equal(c->registry.poll_ms, 1000);
    assert_int_equal(c->simulate.machines, 20);
    assert_true(c->simulate.rate == 0.0);
    assert_true(c->simulate.count == 0);
    assert_true(c->simulate.seconds == 0.0);
    assert_true(c->simulate.seed == 1);
    assert_true(c->simulate.bad_ratio == 0.0);
    assert_string_equal(c->simulate.history_output, "");
    assert_true(c->simulate.history_count == 0);
    assert_true(c->demo.seconds == 30.0);
}

static void test_defaults_match_documentation(void **state)
{
    struct fixture *fx = *state;
    assert_documented_defaults(fx->cfg);
}

static void test_full_file_sets_every_key(void **state)
{
    struct fixture *fx = *state;
    static const char yaml[] = "log:\n"
                               "  level: debug\n"
                               "kafka:\n"
                               "  bootstrap.servers: \"k1:9092,k2:9092\"\n"
                               "input:\n"
                               "  topic: \"sensors\"\n"
                               "  schema: config/schemas/other.avsc\n"
                               "  features: [temp, \"vibration\", 'pressure']\n"
                               "  label: rul\n"
                               "output:\n"
                               "  topic: scores\n"
                               "  dead_letter_topic: 'scores.dlq'\n"
                               "serve:\n"
                               "  workers: 64\n"
                               "  group_id: \"group: one\"\n"
                               "  batch_max_records: 1000000\n"
                               "  batch_max_wait_ms: 0\n"
                               "  commit_interval_ms: 600000\n"
                               "  model: models/m.tba\n"
                               "  drain_timeout_ms: 100\n"
                               "broker:\n"
                               "  brokers: 16\n"
                               "  partitions: 1024\n"
                               "train:\n"
                               "  input: data/train_FD001.txt\n"
                               "  format: csv\n"
                               "  csv_delimiter: whitespace\n"
                               "  csv_header: no\n"
                               "  csv_columns:\n"
                               "    - unit\n"
                               "    - cycle\n"
                               "  rul_key: unit\n"
                               "  rul_time: cycle\n"
                               "  rul_cap: 125\n"
                               "  l2: 0.25\n"
                               "  model_name: cmapss\n"
                               "  model_version: 7\n"
                               "  output: models/cmapss.tba\n"
                               "simulate:\n"
                               "  machines: 1000000\n"
                               "  rate: 2500.5\n"
                               "  count: 9007199254740993\n"
                               "  seconds: 1e3\n"
                               "  seed: -42\n"
                               "  bad_ratio: 1\n"
                               "  history_output: hist.avro\n"
                               "  history_count: 123456789012\n"
                               "demo:\n"
                               "  seconds: 0.5\n";
    assert_int_equal(load_text(fx, yaml), TB_OK);
    const struct config *c = fx->cfg;
    assert_string_equal(c->log_level, "debug");
    assert_int_equal(c->nkafka, 1);
    assert_string_equal(config_kafka_get(c, "bootstrap.servers"), "k1:9092,k2:9092");
    assert_string_equal(c->input.topic, "sensors");
    assert_string_equal(c->input.schema, "config/schemas/other.avsc");
    static const char *const features[] = {"temp", "vibration", "pressure"};
    assert_list(c->input.features, c->input.nfeatures, features, ARRAY_LEN(features));
    assert_string_equal(c->input.label, "rul");
    assert_string_equal(c->output.topic, "scores");
    assert_string_equal(c->output.dead_letter_topic, "scores.dlq");
    assert_int_equal(c->serve.workers, 64);
    assert_string_equal(c->serve.group_id, "group: one");
    assert_int_equal(c->serve.batch_max_records, 1000000);
    assert_int_equal(c->serve.batch_max_wait_ms, 0);
    assert_int_equal(c->serve.commit_interval_ms, 600000);
    assert_string_equal(c->serve.model, "models/m.tba");
    assert_int_equal(c->serve.drain_timeout_ms, 100);
    assert_int_equal(c->broker.brokers, 16);
    assert_int_equal(c->broker.partitions, 1024);
    assert_string_equal(c->train.input, "data/train_FD001.txt");
    assert_string_equal(c->train.format, "csv");
    assert_string_equal(c->train.csv_delimiter, "whitespace");
    assert_int_equal(c->train.csv_header, 0);
    static const char *const columns[] = {"unit", "cycle"};
    assert_list(c->train.csv_columns, c->train.ncsv_columns, columns, ARRAY_LEN(columns));
    assert_string_equal(c->train.rul_key, "unit");
    assert_string_equal(c->train.rul_time, "cycle");
    assert_true(c->train.rul_cap == 125.0);
    assert_true(c->train.l2 == 0.25);
    assert_string_equal(c->train.model_name, "cmapss");
    assert_int_equal(c->train.model_version, 7);
    assert_string_equal(c->train.output, "models/cmapss.tba");
    assert_int_equal(c->simulate.machines, 1000000);
    assert_true(c->simulate.rate == 2500.5);
    /* 2^53 + 1: exact only if the value never passes through a double */
    assert_true(c->simulate.count == 9007199254740993LL);
    assert_true(c->simulate.seconds == 1000.0);
    assert_true(c->simulate.seed == -42);
    assert_true(c->simulate.bad_ratio == 1.0);
    assert_string_equal(c->simulate.history_output, "hist.avro");
    assert_true(c->simulate.history_count == 123456789012LL);
    assert_true(c->demo.seconds == 0.5);
}

static void test_dotted_keys_nulls_and_escapes(void **state)
{
    struct fixture *fx = *state;
    static const char yaml[] = "serve.workers: 5\n" /* a flat dotted key at the top */
                               "input:\n"
                               "  features:\n" /* empty: the empty list */
                               "  label: ~\n"  /* null: "" */
                               "output:\n"     /* an empty section */
                               "train:\n"
                               "  csv_delimiter: \"\\t\"\n"
                               "  csv_columns: [\"a, b\", c]\n";
    assert_int_equal(config_set(fx->cfg, "input.features", "x,y", "--set", fx->err, sizeof fx->err),
                     TB_OK);
    assert_int_equal(config_set(fx->cfg, "input.label", "y", "--set", fx->err, sizeof fx->err),
                     TB_OK);
    assert_int_equal(load_text(fx, yaml), TB_OK);
    assert_int_equal(fx->cfg->serve.workers, 5);
    assert_int_equal(fx->cfg->input.nfeatures, 0);
    assert_string_equal(fx->cfg->input.label, "");
    assert_string_equal(fx->cfg->output.topic, "predictions");
    assert_string_equal(fx->cfg->train.csv_delimiter, "\t");
    static const char *const columns[] = {"a, b", "c"};
    assert_list(fx->cfg->train.csv_columns, fx->cfg->train.ncsv_columns, columns,
                ARRAY_LEN(columns));
}

static void test_empty_file_keeps_defaults(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(load_text(fx, ""), TB_OK);
    assert_documented_defaults(fx->cfg);
    assert_int_equal(load_text(fx, "# only a comment\n"), TB_OK);
    assert_documented_defaults(fx->cfg);
}

static void test_failed_load_leaves_config_unchanged(void **state)
{
    struct fixture *fx = *state;
    static const char yaml[] = "serve:\n"
                               "  workers: 7\n"
                               "kafka:\n"
                               "  client.id: x\n"
                               "input:\n"
                               "  features: [a]\n"
                               "  topik: t\n";
    assert_int_equal(load_text(fx, yaml), TB_CONFIG);
    assert_documented_defaults(fx->cfg);
}

struct load_error_case {
    const char *name;
    const char *yaml;     /* NULL: no file is written */
    const char *expected; /* the message after the file's path */
};

static const struct load_error_case load_error_cases[] = {
    {"load error: unknown key names file, line and key",
     "log:\n  level: info\ninput:\n  topic: telemetry\n  features: [a, b]\noutput:\n"
     "  topic: predictions\nserve:\n  workers: 2\n  group_id: tributary\n"
     "  batch_max_records: 100\n  wrokers: 3\n",
     ":12: unknown key 'serve.wrokers'"},
    {"load error: unknown section", "log:\n  level: info\nservee:\n  workers: 2\n",
     ":3: unknown key 'servee'"},
    {"load error: not an integer",
     "log:\n  level: info\noutput:\n  topic: p\nbroker:\n  brokers: 1\nserve.workers: abc\n",
     ":7: serve.workers: 'abc' is not an integer"},
    {"load error: integer with trailing junk", "serve:\n  workers: 12abc\n",
     ":2: serve.workers: '12abc' is not an integer"},
    {"load error: integer out of range",
     "log:\n  level: info\noutput:\n  topic: p\nbroker:\n  brokers: 1\nserve.workers: 100\n",
     ":7: serve.workers: 100 is out of range (1..64)"},
    {"load error: integer below range", "serve:\n  commit_interval_ms: 99\n",
     ":2: serve.commit_interval_ms: 99 is out of range (100..600000)"},
    {"load error: 64-bit overflow", "simulate:\n  count: 99999999999999999999\n",
     ":2: simulate.count: '99999999999999999999' is out of range for a 64-bit integer"},
    {"load error: 32-bit overflow", "train:\n  model_version: 3000000000\n",
     ":2: train.model_version: '3000000000' is out of range for a 32-bit integer"},
    {"load error: list given a scalar", "input:\n  topic: t\n  features: abc\n",
     ":3: input.features: expected a list of strings"},
    {"load error: list item that is a mapping", "input:\n  features:\n    - a\n    - {b: 1}\n",
     ":4: input.features: expected a list of strings"},
    {"load error: section given a scalar",
     "log:\n  level: info\ninput:\n  topic: t\noutput:\n  topic: p\nbroker:\n  brokers: 1\n"
     "serve: 4\n",
     ":9: serve: expected a mapping"},
    {"load error: key given a mapping", "serve:\n  workers: {a: 1}\n",
     ":2: serve.workers: expected an integer"},
    {"load error: YAML syntax error", "log:\n  level: info\nserve:\n\tworkers: 2\n",
     ":4: YAML syntax error: found character that cannot start any token while scanning for "
     "the next token"},
    {"load error: missing file", NULL, ": No such file or directory"},
    {"load error: duplicated key", "serve:\n  workers: 2\n  workers: 3\n",
     ":3: duplicate key 'serve.workers'"},
    {"load error: duplicated section", "serve:\n  workers: 2\nlog:\n  level: info\nserve:\n",
     ":5: duplicate key 'serve'"},
    {"load error: dotted key duplicating a nested one", "serve:\n  workers: 2\nserve.workers: 3\n",
     ":3: duplicate key 'serve.workers'"},
    {"load error: kafka key flat and nested",
     "kafka:\n  bootstrap.servers: a:9092\n  bootstrap:\n    servers: b:9092\n",
     ":4: duplicate key 'kafka.bootstrap.servers'"},
    {"load error: kafka value that is a list", "kafka:\n  bootstrap.servers: [a, b]\n",
     ":2: kafka.bootstrap.servers: expected a string or a mapping"},
    {"load error: kafka given a scalar", "kafka: localhost:9092\n",
     ":1: kafka: expected a mapping"},
    {"load error: boolean", "train:\n  csv_header: maybe\n",
     ":2: train.csv_header: 'maybe' is not a boolean (true/false, yes/no, on/off, 1/0)"},
    {"load error: choice", "log:\n  level: verbose\n",
     ":2: log.level: 'verbose' is not one of debug|info|warn|error"},
    {"load error: delimiter", "train:\n  csv_delimiter: ';;'\n",
     ":2: train.csv_delimiter: ';;' is not a single character or 'whitespace'"},
    {"load error: not a number", "simulate:\n  rate: fast\n",
     ":2: simulate.rate: 'fast' is not a number"},
    {"load error: infinity is not a number", "simulate:\n  rate: inf\n",
     ":2: simulate.rate: 'inf' is not a number"},
    {"load error: number out of range", "simulate:\n  bad_ratio: 1.5\n",
     ":2: simulate.bad_ratio: 1.5 is out of range (0..1)"},
    {"load error: negative number", "train:\n  l2: -0.1\n",
     ":2: train.l2: -0.1 is out of range (>= 0)"},
    {"load error: exclusive lower bound", "demo:\n  seconds: 0\n",
     ":2: demo.seconds: 0 is out of range (> 0)"},
    {"load error: top is not a mapping", "- a\n- b\n", ":1: expected a mapping at the top"},
    {"load error: two documents", "log:\n  level: info\n---\nlog:\n  level: warn\n",
     ":3: expected one YAML document, found another"},
};

static void test_load_error(void **state)
{
    struct fixture *fx = *state;
    const struct load_error_case *c = fx->data;
    char expected[512];
    snprintf(expected, sizeof expected, "%s%s", fx->path, c->expected);
    if (c->yaml)
        assert_int_equal(load_text(fx, c->yaml), TB_CONFIG);
    else
        assert_int_equal(config_load_file(fx->cfg, fx->path, fx->err, sizeof fx->err), TB_CONFIG);
    assert_string_equal(fx->err, expected);
    assert_documented_defaults(fx->cfg);
}

static void test_env_overrides_file(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(load_text(fx, "serve:\n  workers: 3\n  group_id: from-file\n"), TB_OK);
    char *env[] = {"HOME=/root", "TRIBUTARY_SERVE_WORKERS=4", NULL};
    assert_int_equal(config_apply_env(fx->cfg, env, fx->err, sizeof fx->err), TB_OK);
    assert_int_equal(fx->cfg->serve.workers, 4);
    assert_string_equal(fx->cfg->serve.group_id, "from-file");
}

static void test_env_lists_bools_and_kafka(void **state)
{
    struct fixture *fx = *state;
    char *env[] = {"TRIBUTARY_INPUT_FEATURES=a,b,c",
                   "TRIBUTARY_TRAIN_CSV_COLUMNS= unit , cycle ",
                   "TRIBUTARY_TRAIN_CSV_HEADER=false",
                   "TRIBUTARY_KAFKA_BOOTSTRAP_SERVERS=broker:9092",
                   "TRIBUTARY_SIMULATE_BAD_RATIO=0.125",
                   "TRIBUTARY_TRAIN_CSV_DELIMITER=;",
                   NULL};
    assert_int_equal(config_apply_env(fx->cfg, env, fx->err, sizeof fx->err), TB_OK);
    static const char *const features[] = {"a", "b", "c"};
    assert_list(fx->cfg->input.features, fx->cfg->input.nfeatures, features, ARRAY_LEN(features));
    static const char *const columns[] = {"unit", "cycle"};
    assert_list(fx->cfg->train.csv_columns, fx->cfg->train.ncsv_columns, columns,
                ARRAY_LEN(columns));
    assert_int_equal(fx->cfg->train.csv_header, 0);
    assert_string_equal(config_kafka_get(fx->cfg, "bootstrap.servers"), "broker:9092");
    assert_true(fx->cfg->simulate.bad_ratio == 0.125);
    assert_string_equal(fx->cfg->train.csv_delimiter, ";");

    char *empty[] = {"TRIBUTARY_INPUT_FEATURES=", NULL};
    assert_int_equal(config_apply_env(fx->cfg, empty, fx->err, sizeof fx->err), TB_OK);
    assert_int_equal(fx->cfg->input.nfeatures, 0);
}

static void test_env_unknown_variable(void **state)
{
    struct fixture *fx = *state;
    char *env[] = {"TRIBUTARY_SERVE_WORKERS=4", "TRIBUTARY_SERVE_WORKRS=4", NULL};
    assert_int_equal(config_apply_env(fx->cfg, env, fx->err, sizeof fx->err), TB_CONFIG);
    assert_string_equal(fx->err, "environment TRIBUTARY_SERVE_WORKRS: unknown key");
    assert_documented_defaults(fx->cfg); /* the first variable is not applied either */

    char *bare_kafka[] = {"TRIBUTARY_KAFKA_=x", NULL};
    assert_int_equal(config_apply_env(fx->cfg, bare_kafka, fx->err, sizeof fx->err), TB_CONFIG);
    assert_string_equal(fx->err, "environment TRIBUTARY_KAFKA_: unknown key");
}

static void test_env_bad_values(void **state)
{
    struct fixture *fx = *state;
    static const struct {
        const char *var;
        const char *expected;
    } cases[] = {
        {"TRIBUTARY_SERVE_WORKERS=x", "environment TRIBUTARY_SERVE_WORKERS: 'x' is not an integer"},
        {"TRIBUTARY_SERVE_WORKERS=0",
         "environment TRIBUTARY_SERVE_WORKERS: 0 is out of range (1..64)"},
        {"TRIBUTARY_SERVE_WORKERS= 4",
         "environment TRIBUTARY_SERVE_WORKERS: ' 4' is not an integer"},
        {"TRIBUTARY_INPUT_FEATURES=a,,b",
         "environment TRIBUTARY_INPUT_FEATURES: 'a,,b' has an empty item"},
        {"TRIBUTARY_TRAIN_CSV_HEADER=nope",
         "environment TRIBUTARY_TRAIN_CSV_HEADER: 'nope' is not a boolean (true/false, yes/no, "
         "on/off, 1/0)"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char var[128];
        snprintf(var, sizeof var, "%s", cases[i].var);
        char *env[] = {var, NULL};
        assert_int_equal(config_apply_env(fx->cfg, env, fx->err, sizeof fx->err), TB_CONFIG);
        assert_string_equal(fx->err, cases[i].expected);
    }
    assert_documented_defaults(fx->cfg);
}

static void test_env_ignores_other_variables(void **state)
{
    struct fixture *fx = *state;
    char *env[] = {"TRIBUTARY_BIN=/usr/bin/tributary",
                   "TRIBUTARY_DATA=/data",
                   "PATH=/usr/bin",
                   "SERVE_WORKERS=9",
                   "TRIBUTARYX=1",
                   "NOEQUALS",
                   NULL};
    assert_int_equal(config_apply_env(fx->cfg, env, fx->err, sizeof fx->err), TB_OK);
    assert_documented_defaults(fx->cfg);
}

/* Table-driven: every key of the table is reachable as TRIBUTARY_<KEY> and
 * behaves there exactly as through config_set (same status, same message). */
static void test_env_reaches_every_key(void **state)
{
    (void)state;
    size_t nkeys = 0;
    for (const char *path; (path = config_key_path(nkeys)) != NULL; nkeys++) {
        char var[160], env_err[512], set_err[512];
        int n = snprintf(var, sizeof var, "TRIBUTARY_");
        for (const char *p = path; *p; p++)
            var[n++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
        var[n] = '\0';
        size_t name_len = (size_t)n;
        snprintf(var + n, sizeof var - (size_t)n, "=7");
        char *env[] = {var, NULL};
        struct config *via_env = config_new(), *via_set = config_new();
        env_err[0] = set_err[0] = '\0';
        int env_rc = config_apply_env(via_env, env, env_err, sizeof env_err);
        int set_rc = config_set(via_set, path, "7", "--set", set_err, sizeof set_err);
        assert_int_equal(env_rc, set_rc);
        if (env_rc != TB_OK) {
            /* "environment NAME: msg" versus "--set path: msg" */
            char want[600];
            snprintf(want, sizeof want, "environment %.*s%s", (int)name_len, var,
                     set_err + strlen("--set ") + strlen(path));
            assert_string_equal(env_err, want);
        }
        config_destroy(via_env);
        config_destroy(via_set);
    }
    assert_int_equal(nkeys, 104); /* the keys the table documents */
}

static void test_env_names_are_unique(void **state)
{
    (void)state;
    for (size_t i = 0; config_key_path(i); i++) {
        for (size_t j = i + 1; config_key_path(j); j++) {
            char a[128], b[128];
            snprintf(a, sizeof a, "%s", config_key_path(i));
            snprintf(b, sizeof b, "%s", config_key_path(j));
            for (char *p = a; *p; p++)
                *p = *p == '.' ? '_' : *p;
            for (char *p = b; *p; p++)
                *p = *p == '.' ? '_' : *p;
            if (strcasecmp(a, b) == 0)
                fail_msg("%s and %s share an environment variable", config_key_path(i),
                         config_key_path(j));
        }
    }
}

static void test_kafka_passthrough_flat_and_nested(void **state)
{
    struct fixture *fx = *state;
    static const char yaml[] = "kafka:\n"
                               "  bootstrap.servers: \"h:9092\"\n"
                               "  security:\n"
                               "    protocol: SASL_SSL\n"
                               "  sasl: {mechanisms: PLAIN, username: u}\n"
                               "  ssl:\n"
                               "    key:\n"
                               "      password: 's3cret'\n"
                               "kafka.client.id: tributary-1\n";
    assert_int_equal(load_text(fx, yaml), TB_OK);
    assert_int_equal(fx->cfg->nkafka, 6);
    assert_string_equal(config_kafka_get(fx->cfg, "bootstrap.servers"), "h:9092");
    assert_string_equal(config_kafka_get(fx->cfg, "security.protocol"), "SASL_SSL");
    assert_string_equal(config_kafka_get(fx->cfg, "sasl.mechanisms"), "PLAIN");
    assert_string_equal(config_kafka_get(fx->cfg, "sasl.username"), "u");
    assert_string_equal(config_kafka_get(fx->cfg, "ssl.key.password"), "s3cret");
    assert_string_equal(config_kafka_get(fx->cfg, "client.id"), "tributary-1");
    assert_null(config_kafka_get(fx->cfg, "sasl"));

    assert_int_equal(load_text(fx, "kafka: {bootstrap: {servers: \"n:9092\"}}\n"), TB_OK);
    assert_string_equal(config_kafka_get(fx->cfg, "bootstrap.servers"), "n:9092");
    assert_int_equal(fx->cfg->nkafka, 6); /* replaced, not added */
}

static void test_kafka_get_set_remove(void **state)
{
    struct fixture *fx = *state;
    assert_null(config_kafka_get(fx->cfg, "acks"));
    config_kafka_set(fx->cfg, "acks", "all");
    config_kafka_set(fx->cfg, "linger.ms", "5");
    config_kafka_set(fx->cfg, "acks", "1");
    assert_int_equal(fx->cfg->nkafka, 2);
    assert_string_equal(config_kafka_get(fx->cfg, "acks"), "1");
    config_kafka_set(fx->cfg, "acks", NULL);
    assert_null(config_kafka_get(fx->cfg, "acks"));
    assert_string_equal(config_kafka_get(fx->cfg, "linger.ms"), "5");
    assert_int_equal(fx->cfg->nkafka, 1);
    config_kafka_set(fx->cfg, "never.set", NULL);
    assert_int_equal(fx->cfg->nkafka, 1);
}

static void test_config_set(void **state)
{
    struct fixture *fx = *state;
    char *err = fx->err;
    size_t errsz = sizeof fx->err;
    assert_int_equal(config_set(fx->cfg, "kafka.bootstrap.servers", "b:9092", "--set", err, errsz),
                     TB_OK);
    assert_string_equal(config_kafka_get(fx->cfg, "bootstrap.servers"), "b:9092");
    assert_int_equal(config_set(fx->cfg, "serve.workers", "8", "--set", err, errsz), TB_OK);
    assert_int_equal(fx->cfg->serve.workers, 8);
    assert_int_equal(config_set(fx->cfg, "serve.group_id", "g2", "--set", err, errsz), TB_OK);
    assert_string_equal(fx->cfg->serve.group_id, "g2");

    assert_int_equal(config_set(fx->cfg, "serve.wrokers", "8", "--set", err, errsz), TB_CONFIG);
    assert_string_equal(err, "--set serve.wrokers: unknown key");
    assert_int_equal(config_set(fx->cfg, "serve.workers", "x", "--set", err, errsz), TB_CONFIG);
    assert_string_equal(err, "--set serve.workers: 'x' is not an integer");
    assert_int_equal(fx->cfg->serve.workers, 8);
    assert_int_equal(config_set(fx->cfg, "kafka.", "x", NULL, err, errsz), TB_CONFIG);
    assert_string_equal(err, "set kafka.: unknown key");
    assert_int_equal(config_set(fx->cfg, "serve", "x", "--set", err, errsz), TB_CONFIG);
    assert_string_equal(err, "--set serve: unknown key");
}

/* A value that is not UTF-8 has no YAML spelling, so config_write could not write it for tune's
 * trial configurations; --set and the environment refuse it as a file does. */
static void test_set_and_env_refuse_non_utf8(void **state)
{
    struct fixture *fx = *state;
    static const struct {
        const char *key, *value, *expected;
    } cases[] = {
        {"input.topic", "caf\xe9", "--set input.topic: not UTF-8 text"},
        {"input.features", "a,\xc0\xaf", "--set input.features: not UTF-8 text"}, /* overlong */
        {"train.output", "\xed\xa0\x80", "--set train.output: not UTF-8 text"},   /* surrogate */
        {"kafka.client.id", "x\xf4\x90\x80\x80", "--set kafka.client.id: not UTF-8 text"},
        {"kafka.bo\xd8tstrap.servers", "b:9092",
         "--set kafka.bo\xd8tstrap.servers: not UTF-8 text"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        assert_int_equal(
            config_set(fx->cfg, cases[i].key, cases[i].value, "--set", fx->err, sizeof fx->err),
            TB_CONFIG);
        assert_string_equal(fx->err, cases[i].expected);
    }
    char var[] = "TRIBUTARY_INPUT_TOPIC=caf\xe9", kafka[] = "TRIBUTARY_KAFKA_CLIENT_ID=\xff";
    char *env[] = {var, NULL}, *kafka_env[] = {kafka, NULL};
    assert_int_equal(config_apply_env(fx->cfg, env, fx->err, sizeof fx->err), TB_CONFIG);
    assert_string_equal(fx->err, "environment TRIBUTARY_INPUT_TOPIC: not UTF-8 text");
    assert_int_equal(config_apply_env(fx->cfg, kafka_env, fx->err, sizeof fx->err), TB_CONFIG);
    assert_string_equal(fx->err, "environment TRIBUTARY_KAFKA_CLIENT_ID: not UTF-8 text");
    assert_documented_defaults(fx->cfg);
    assert_null(config_kafka_get(fx->cfg, "client.id"));

    assert_int_equal(
        config_set(fx->cfg, "input.topic", "caf\xc3\xa9", "--set", fx->err, sizeof fx->err), TB_OK);
    assert_string_equal(fx->cfg->input.topic, "caf\xc3\xa9");
}

/* config_write escapes what YAML would refuse or fold between quotes (C0 and C1 controls, NEL,
 * LS, PS, U+FFFE), so that every value reads back as it was. */
static void test_write_reads_back_every_character(void **state)
{
    struct fixture *fx = *state;
    static const char yaml[] =
        "input:\n"
        "  topic: \"a\\x80b\\x9fc\"\n"
        "  label: \"line\\x85next\\u2028sep\\u2029para\"\n"
        "  features: [\"\\uFFFE\", \"\\uFFFF\", \"tab\\there\", \"\\x01\\x7f\", \"caf\\xe9\"]\n"
        "kafka: {\"client\\x85id\": \"q\\\"\\\\\"}\n";
    assert_int_equal(load_text(fx, yaml), TB_OK);
    char *written = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&written, &len);
    assert_non_null(mem);
    config_write(fx->cfg, mem);
    assert_int_equal(fclose(mem), 0);

    struct config *again = config_new();
    write_file(fx->path, written);
    assert_int_equal(config_load_file(again, fx->path, fx->err, sizeof fx->err), TB_OK);
    assert_string_equal(again->input.topic, "a\xc2\x80"
                                            "b\xc2\x9f"
                                            "c");
    assert_string_equal(again->input.label, "line\xc2\x85next\xe2\x80\xa8sep\xe2\x80\xa9para");
    static const char *const features[] = {"\xef\xbf\xbe", "\xef\xbf\xbf", "tab\there", "\x01\x7f",
                                           "caf\xc3\xa9"};
    assert_list(again->input.features, again->input.nfeatures, features, ARRAY_LEN(features));
    assert_string_equal(config_kafka_get(again, "client\xc2\x85id"), "q\"\\");
    config_destroy(again);
    free(written);
}

/* YAML reads an implicit key of at most 1024 characters; config_write writes a longer kafka
 * property name (here 600 bytes that escape to 1800 characters) as an explicit key. */
static void test_write_reads_back_long_kafka_key(void **state)
{
    struct fixture *fx = *state;
    char key[6 + 600 + 1] = "kafka.";
    for (size_t i = 0; i < 600; i++)
        key[6 + i] = i % 2 ? '"' : '\t';
    key[6 + 600] = '\0';
    assert_int_equal(config_set(fx->cfg, key, "v", "--set", fx->err, sizeof fx->err), TB_OK);
    assert_int_equal(config_set(fx->cfg, "kafka.acks", "all", "--set", fx->err, sizeof fx->err),
                     TB_OK);
    char *written = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&written, &len);
    assert_non_null(mem);
    config_write(fx->cfg, mem);
    assert_int_equal(fclose(mem), 0);
    assert_non_null(strstr(written, "kafka: {? \"\\t\\\"\\t"));
    assert_non_null(strstr(written, ", \"acks\": \"all\"}"));

    struct config *again = config_new();
    write_file(fx->path, written);
    if (config_load_file(again, fx->path, fx->err, sizeof fx->err) != TB_OK)
        fail_msg("config_write's output does not load: %s", fx->err);
    assert_string_equal(config_kafka_get(again, key + 6), "v");
    assert_string_equal(config_kafka_get(again, "acks"), "all");
    config_destroy(again);
    free(written);
}

static void test_bool_spellings(void **state)
{
    struct fixture *fx = *state;
    static const struct {
        const char *text;
        int value;
    } cases[] = {{"true", 1}, {"false", 0}, {"yes", 1}, {"no", 0},   {"on", 1},
                 {"off", 0},  {"1", 1},     {"0", 0},   {"TRUE", 1}, {"No", 0}};
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        fx->cfg->train.csv_header = !cases[i].value;
        assert_int_equal(config_set(fx->cfg, "train.csv_header", cases[i].text, "--set", fx->err,
                                    sizeof fx->err),
                         TB_OK);
        assert_int_equal(fx->cfg->train.csv_header, cases[i].value);
    }
    static const char *const bad[] = {"", "2", "y", "truee", "yes "};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        assert_int_equal(
            config_set(fx->cfg, "train.csv_header", bad[i], "--set", fx->err, sizeof fx->err),
            TB_CONFIG);
}

static void test_integer_and_number_syntax(void **state)
{
    struct fixture *fx = *state;
    static const struct {
        const char *key, *text;
        int ok;
    } cases[] = {
        {"serve.workers", "+5", 1},
        {"serve.workers", "05", 1},
        {"serve.workers", "5.0", 0},
        {"serve.workers", "0x10", 0},
        {"serve.workers", "", 0},
        {"serve.workers", "5 ", 0},
        {"simulate.seed", "-9223372036854775808", 1},
        {"simulate.seed", "9223372036854775808", 0},
        {"simulate.rate", "1e-3", 1},
        {"simulate.rate", "nan", 0},
        {"simulate.rate", "1,5", 0},
        {"simulate.rate", "", 0},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        int rc = config_set(fx->cfg, cases[i].key, cases[i].text, "--set", fx->err, sizeof fx->err);
        if (cases[i].ok != (rc == TB_OK))
            fail_msg("%s = '%s': expected %s, got %d (%s)", cases[i].key, cases[i].text,
                     cases[i].ok ? "success" : "an error", rc, fx->err);
    }
    assert_int_equal(fx->cfg->serve.workers, 5);
    assert_true(fx->cfg->simulate.seed == -9223372036854775807LL - 1);
    assert_true(fx->cfg->simulate.rate == 1e-3);
}

static void test_shipped_example_is_current(void **state)
{
    (void)state;
    char *printed = capture(config_write_example);
    char *shipped = read_whole_file("config/tributary.example.yaml");
    if (strcmp(printed, shipped) != 0)
        fail_msg("config/tributary.example.yaml differs from config_write_example(); "
                 "regenerate it: tributary config --example > config/tributary.example.yaml");
    free(shipped);
    free(printed);
}

static void test_example_loads_to_defaults(void **state)
{
    struct fixture *fx = *state;
    char *printed = capture(config_write_example);
    /* start from non-defaults so that loading must set every key */
    char *env[] = {"TRIBUTARY_SERVE_WORKERS=9", "TRIBUTARY_INPUT_FEATURES=a,b",
                   "TRIBUTARY_DEMO_SECONDS=1", NULL};
    assert_int_equal(config_apply_env(fx->cfg, env, fx->err, sizeof fx->err), TB_OK);
    assert_int_equal(load_text(fx, printed), TB_OK);
    assert_documented_defaults(fx->cfg);
    assert_int_equal(
        config_load_file(fx->cfg, "config/tributary.example.yaml", fx->err, sizeof fx->err), TB_OK);
    assert_documented_defaults(fx->cfg);
    free(printed);
}

/* Whether text has a line that starts with word followed by a blank. */
static int has_line_starting(const char *text, const char *word)
{
    size_t len = strlen(word);
    for (const char *line = text; *line;) {
        if (strncmp(line, word, len) == 0 && (line[len] == ' ' || line[len] == '\n'))
            return 1;
        const char *newline = strchr(line, '\n');
        if (!newline)
            break;
        line = newline + 1;
    }
    return 0;
}

static void test_help_and_example_list_every_key(void **state)
{
    (void)state;
    char *help = capture(config_print_help);
    char *example = capture(config_write_example);
    assert_true(has_line_starting(help, "KEY"));
    assert_true(has_line_starting(help, "kafka.*"));
    assert_true(has_line_starting(example, "kafka:"));
    size_t nkeys = 0;
    for (const char *path; (path = config_key_path(nkeys)) != NULL; nkeys++) {
        if (!has_line_starting(help, path))
            fail_msg("--help has no line for %s", path);
        const char *dot = strchr(path, '.');
        assert_non_null(dot);
        char section[64], key[96];
        snprintf(section, sizeof section, "%.*s:", (int)(dot - path), path);
        snprintf(key, sizeof key, "  %s:", dot + 1);
        const char *at = strstr(example, section);
        if (!at || !has_line_starting(at, key))
            fail_msg("the example has no %s under %s", key, section);
    }
    /* header + one line per key + kafka.* + the environment note */
    size_t lines = 0;
    for (const char *p = help; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, nkeys + 3);
    /* columns: key, type, default, bounds, description */
    char key[64], type[16], def[64], bounds[64];
    const char *line = strstr(help, "\nserve.workers ");
    assert_non_null(line);
    assert_int_equal(sscanf(line, "%63s %15s %63s %63s", key, type, def, bounds), 4);
    assert_string_equal(type, "int");
    assert_string_equal(def, "2");
    assert_string_equal(bounds, "1..64");
    line = strstr(help, "\ninput.topic ");
    assert_non_null(line);
    assert_int_equal(sscanf(line, "%63s %15s %63s %63s", key, type, def, bounds), 4);
    assert_string_equal(type, "string");
    assert_string_equal(def, "\"telemetry\"");
    assert_string_equal(bounds, "-");
    free(example);
    free(help);
}

int main(void)
{
    static const struct CMUnitTest named[] = {
        cmocka_unit_test_setup_teardown(test_defaults_match_documentation, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_full_file_sets_every_key, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_dotted_keys_nulls_and_escapes, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_empty_file_keeps_defaults, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_failed_load_leaves_config_unchanged, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_env_overrides_file, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_env_lists_bools_and_kafka, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_env_unknown_variable, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_env_bad_values, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_env_ignores_other_variables, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test(test_env_reaches_every_key),
        cmocka_unit_test(test_env_names_are_unique),
        cmocka_unit_test_setup_teardown(test_kafka_passthrough_flat_and_nested, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_get_set_remove, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_config_set, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_set_and_env_refuse_non_utf8, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_write_reads_back_every_character, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_write_reads_back_long_kafka_key, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_bool_spellings, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_integer_and_number_syntax, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test(test_shipped_example_is_current),
        cmocka_unit_test_setup_teardown(test_example_loads_to_defaults, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test(test_help_and_example_list_every_key),
    };
    /* the named tests, then one test per load error case, named by the case */
    struct CMUnitTest tests[ARRAY_LEN(named) + ARRAY_LEN(load_error_cases)];
    memcpy(tests, named, sizeof named);
    for (size_t i = 0; i < ARRAY_LEN(load_error_cases); i++) {
        tests[ARRAY_LEN(named) + i] = (struct CMUnitTest){
            .name = load_error_cases[i].name,
            .test_func = test_load_error,
            .setup_func = fixture_setup,
            .teardown_func = fixture_teardown,
            .initial_state = (void *)&load_error_cases[i],
        };
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
