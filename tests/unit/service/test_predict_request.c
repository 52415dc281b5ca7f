/* Unit tests for service/stream/predict_request: the JSON body of a predict request read into
 * pipeline rows (values, category codes, keys), and the reason given for every body a client is
 * told is bad. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "models/pipeline.h"
#include "service/base/error.h"
#include "service/stream/predict_request.h"
#include "tests/support/support.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Two numeric inputs x1, x2 and a categorical one, mode (categories H and L); imputing or not. */
static struct pipeline *make_pipeline(bool impute)
{
    char x1[] = "x1", x2[] = "x2", mode[] = "mode", h[] = "H", l[] = "L";
    char *numeric[] = {x1, x2}, *categorical[] = {mode}, *modes[] = {h, l};
    char **categories[] = {modes};
    size_t ncategories[] = {2};
    double fill[] = {impute ? 1.0 : NAN, impute ? 2.0 : NAN};
    bool indicator[] = {false, false};
    double offset[] = {0.0, 0.0}, factor[] = {1.0, 1.0};
    struct pipeline_spec spec = {.nnumeric = 2,
                                 .numeric = numeric,
                                 .ncategorical = 1,
                                 .categorical = categorical,
                                 .ncategories = ncategories,
                                 .categories = categories,
                                 .impute = impute ? PIPELINE_IMPUTE_MEAN : PIPELINE_IMPUTE_NONE,
                                 .fill = fill,
                                 .indicator = indicator,
                                 .scale = PIPELINE_SCALE_NONE,
                                 .nscaled = 2,
                                 .offset = offset,
                                 .factor = factor};
    char err[512] = "";
    struct pipeline *pipeline = pipeline_new(&spec, err, sizeof err);
    if (!pipeline)
        fail_msg("pipeline_new: %s", err);
    return pipeline;
}

/* One body and what must come of it: rows (3 inputs each, NAN written as such) and keys, or
 * TB_PARSE with a message (or, for jansson's words, which vary between its versions, the start
 * of one). */
struct body_case {
    const char *name;
    const char *body;
    bool impute;
    size_t nrows; /* 0: refused with `message` */
    double values[3 * 3];
    const char *keys[3];
    const char *message;
    bool message_prefix;
};

static void test_body(void **state)
{
    const struct body_case *c = *state;
    struct pipeline *pipeline = make_pipeline(c->impute);
    struct predict_request *request = NULL;
    char err[512] = "";
    int rc = predict_request_parse(pipeline, c->body, strlen(c->body), &request, err, sizeof err);
    if (c->nrows == 0) {
        assert_int_equal(rc, TB_PARSE);
        assert_null(request);
        if (c->message_prefix)
            assert_true(strncmp(err, c->message, strlen(c->message)) == 0);
        else
            assert_string_equal(err, c->message);
    } else {
        if (rc != TB_OK)
            fail_msg("refused: %s", err);
        const struct pipeline_rows *rows = predict_request_rows(request);
        assert_int_equal(rows->nrows, c->nrows);
        for (size_t i = 0; i < 3 * c->nrows; i++) {
            if (isnan(c->values[i]))
                assert_true(isnan(rows->values[i]));
            else
                assert_true(rows->values[i] == c->values[i]);
        }
        for (size_t i = 0; i < c->nrows; i++) {
            assert_int_equal(rows->key_lens[i], strlen(c->keys[i]));
            assert_memory_equal(rows->keys[i], c->keys[i], rows->key_lens[i]);
        }
    }
    predict_request_destroy(request);
    pipeline_destroy(pipeline);
}

static const struct body_case cases[] = {
    {.name = "two instances: values, unknown category -1, missing key \"\", other members ignored",
     .body = "{\"instances\": [{\"x1\": 1.5, \"x2\": -2, \"mode\": \"L\", \"key\": \"m-1\"},"
             " {\"x1\": 0, \"x2\": 1e3, \"mode\": \"Q\", \"other\": [1]}]}",
     .nrows = 2,
     .values = {1.5, -2, 1, 0, 1e3, -1},
     .keys = {"m-1", ""}},
    {.name = "one instance object on its own",
     .body = "{\"x1\": 3, \"x2\": 4}",
     .nrows = 1,
     .values = {3, 4, NAN},
     .keys = {""}},
    {.name = "a key with a NUL is malformed JSON (jansson refuses \\u0000)",
     .body = "{\"instances\": [{\"x1\": null, \"mode\": null, \"key\": \"a\\u0000b\"}]}",
     .message = "malformed JSON at line 1: \\u0000 is not allowed",
     .message_prefix = true},
    {.name = "null and absent inputs are NAN when the pipeline imputes",
     .body = "{\"instances\": [{\"x1\": null, \"mode\": null, \"key\": \"k\"}]}",
     .impute = true,
     .nrows = 1,
     .values = {NAN, NAN, NAN},
     .keys = {"k"}},
    {.name = "truncated JSON",
     .body = "{\"instances\": [{\"x1\": 1,",
     .message = "malformed JSON at line 1: ",
     .message_prefix = true},
    {.name = "an empty body",
     .body = "",
     .message = "malformed JSON at line 1: ",
     .message_prefix = true},
    {.name = "no instances",
     .body = "{\"instances\": []}",
     .message = "\"instances\" must be an array of 1 to 10000 instance objects"},
    {.name = "instances not an array",
     .body = "{\"instances\": {\"x1\": 1}}",
     .message = "\"instances\" must be an array of 1 to 10000 instance objects"},
    {.name = "a bare array is one instance that is not an object",
     .body = "[{\"x1\": 1, \"x2\": 2}]",
     .message = "instance 0 is not a JSON object of input fields"},
    {.name = "an instance that is not an object",
     .body = "{\"instances\": [{\"x1\": 1, \"x2\": 2}, 7]}",
     .message = "instance 1 is not a JSON object of input fields"},
    {.name = "a key that is not a string",
     .body = "{\"x1\": 1, \"x2\": 2, \"key\": 5}",
     .message = "instance 0 key is not a string"},
    {.name = "a missing numeric input without imputation",
     .body = "{\"x1\": 1}",
     .message = "instance 0 input 'x2' is missing; the model needs a number"},
    {.name = "a null numeric input without imputation",
     .body = "{\"x1\": 1, \"x2\": null}",
     .message = "instance 0 input 'x2' is not a number; the model needs a number"},
    {.name = "a numeric input given as a string",
     .body = "{\"x1\": \"1\", \"x2\": 2}",
     .impute = true,
     .message = "instance 0 input 'x1' is not a number; the model needs a number"},
    {.name = "a categorical input given as a number",
     .body = "{\"x1\": 1, \"x2\": 2, \"mode\": 1}",
     .message = "instance 0 input 'mode' is not a string"},
};

int main(void)
{
    struct CMUnitTest tests[sizeof cases / sizeof cases[0]];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        tests[i] = (struct CMUnitTest)NAMED_CASE(cases[i].name, test_body, (void *)&cases[i]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
