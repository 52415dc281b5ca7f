/* libFuzzer target for the artefact reader: arbitrary bytes as a model artefact file, through
 * artefact_decode as artefact_read and the models topic use it. An artefact it accepts must be
 * usable: described, encoded and decoded again, and able to score a row. */
#include "models/linear.h"
#include "models/pipeline.h"
#include "service/base/mem.h"
#include "service/registry/artefact.h"
#include "tests/fuzz/harness.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Length of "crc32:" and 8 hex digits. */
#define CHECKSUM_LEN 14

/* Scores one row of inputs (numeric ones 1, categorical ones the first category, or an unknown
 * one) through the artefact's pipeline and model, as serve would. */
static void fuzz_score(const struct artefact *a)
{
    const struct pipeline *pipeline = artefact_pipeline(a);
    const struct pipeline_spec *spec = pipeline_spec(pipeline);
    const struct linear_model *model = artefact_model(a);
    size_t q = pipeline_ninputs(pipeline), p = pipeline_nfeatures(pipeline);
    HARNESS_ASSERT(q == spec->nnumeric + spec->ncategorical);
    HARNESS_ASSERT(p == artefact_nfeatures(a) && model->nfeatures == p);
    double *row = mem_alloc((q ? q : 1) * sizeof *row);
    double *features = mem_alloc(p * sizeof *features);
    double *outputs = mem_alloc(linear_width(model) * sizeof *outputs);
    double decided;
    for (size_t j = 0; j < spec->nnumeric; j++)
        row[j] = 1.0;
    for (size_t j = 0; j < spec->ncategorical; j++)
        row[spec->nnumeric + j] = spec->ncategories[j] ? 0.0 : -1.0;
    const char *key = "m-1";
    size_t key_len = 3;
    struct pipeline_rows rows = {.nrows = 1, .values = row, .keys = &key, .key_lens = &key_len};
    struct pipeline_state *state = pipeline_state_new(pipeline);
    pipeline_transform(pipeline, state, &rows, features);
    pipeline_transform(pipeline, state, &rows, features);
    linear_predict(model, features, 1, outputs);
    linear_decide(model, outputs, 1, &decided);
    pipeline_state_destroy(state);
    free(outputs);
    free(features);
    free(row);
}

/* Checks what an accepted artefact promises: a manifest that renders as JSON, and an encoding
 * that decodes to an artefact with the same checksum and shape. */
static void fuzz_check_accepted(const struct artefact *a)
{
    char *json = NULL;
    HARNESS_ASSERT(artefact_manifest_json(a, &json) == 0 && json);
    json_t *doc = json_loads(json, 0, NULL);
    HARNESS_ASSERT(doc);
    json_decref(doc);
    free(json);

    unsigned char *bytes = NULL;
    size_t len = 0;
    char err[1024] = "";
    HARNESS_ASSERT(artefact_encode(a, &bytes, &len, err, sizeof err) == 0);
    struct artefact *again = artefact_decode(bytes, len, "re-encoded", err, sizeof err);
    if (!again) {
        fprintf(stderr, "fuzz_artefact: an accepted artefact does not decode again: %s\n", err);
        HARNESS_ASSERT(again);
    }
    HARNESS_ASSERT(strcmp(artefact_checksum(a), artefact_checksum(again)) == 0);
    HARNESS_ASSERT(artefact_nfeatures(a) == artefact_nfeatures(again));
    artefact_destroy(again);
    free(bytes);
    fuzz_score(a);
}

/* Decodes data; returns whether it was accepted. A refusal must say why. */
static bool fuzz_decode(const uint8_t *data, size_t size, char *err, size_t errsz)
{
    err[0] = '\0';
    struct artefact *a = artefact_decode(data, size, "fuzz", err, errsz);
    if (!a) {
        HARNESS_ASSERT(err[0] != '\0');
        return false;
    }
    fuzz_check_accepted(a);
    artefact_destroy(a);
    return true;
}

/* Almost every mutation of a valid artefact changes the pipeline or model records, which the
 * checksum then refuses before the pipeline and model are checked. When the checksum is the only
 * fault, this writes the content's checksum (which the message gives) over the manifest's and
 * decodes again, so that those checks see mutated records too. The checksum covers neither the
 * manifest nor the framing, so the copy differs in nothing else. */
static void fuzz_decode_with_checksum_fixed(const uint8_t *data, size_t size, const char *err)
{
    const char *manifest = strstr(err, "checksum mismatch (manifest crc32:");
    const char *content = manifest ? strstr(manifest, ", content crc32:") : NULL;
    if (!content)
        return;
    manifest += strlen("checksum mismatch (manifest ");
    content += strlen(", content ");
    if (strlen(content) < CHECKSUM_LEN)
        return;
    unsigned char *copy = mem_alloc(size);
    memcpy(copy, data, size);
    unsigned char *at = memmem(copy, size, manifest, CHECKSUM_LEN);
    if (at) {
        memcpy(at, content, CHECKSUM_LEN);
        char again[1024];
        fuzz_decode(copy, size, again, sizeof again);
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    if (!fuzz_decode(data, size, err, sizeof err))
        fuzz_decode_with_checksum_fixed(data, size, err);
    return 0;
}

#ifdef FUZZ_REPLAY_MAIN
int main(int argc, char **argv)
{
    return harness_replay_main(argc, argv, "artefact", LLVMFuzzerTestOneInput);
}
#endif
