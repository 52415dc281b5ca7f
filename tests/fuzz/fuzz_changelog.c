/* libFuzzer target for the changelog decoder: arbitrary bytes as the value of a changelog record,
 * through changelog_decode as a restore meets them. An accepted entry must keep the promises of
 * the decoder's contract and encode back to bytes that decode to the same entry. */
#include "connectors/avro/avro_wire.h"
#include "connectors/kafka/changelog.h"
#include "service/base/error.h"
#include "tests/fuzz/harness.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reused from input to input, as a restore reuses its scratch from record to record. */
static struct changelog_scratch fuzz_scratch, fuzz_scratch_again;

/* Whether two arrays of doubles hold the same bits (NANs included). */
static bool fuzz_same_doubles(const double *a, const double *b, size_t n)
{
    return n == 0 || memcmp(a, b, n * sizeof *a) == 0;
}

static void fuzz_check_accepted(const struct changelog_entry *e)
{
    HARNESS_ASSERT(!e->key && e->key_len == 0 && e->partition == -1 && !e->tombstone);
    HARNESS_ASSERT(e->offset >= -1 && e->records >= 0 && e->window_width <= INT32_MAX);
    HARNESS_ASSERT(e->nstate + e->nwindow + e->nmetrics <= CHANGELOG_MAX_DOUBLES);
    HARNESS_ASSERT(e->window_width == 0 ? e->nwindow == 0 : e->nwindow % e->window_width == 0);
    HARNESS_ASSERT((e->nstate == 0) == (e->state == NULL));
    HARNESS_ASSERT((e->nwindow == 0) == (e->window == NULL));
    HARNESS_ASSERT((e->nmetrics == 0) == (e->metrics == NULL));

    /* Encoding reads every double, so the sanitizers see any pointer past the scratch. */
    struct avro_wire_buf buf = {0};
    changelog_encode(e, &buf);
    struct changelog_entry again;
    char err[256] = "";
    int rc = changelog_decode(buf.data, buf.len, &again, &fuzz_scratch_again, err, sizeof err);
    if (rc != TB_OK)
        fprintf(stderr, "fuzz_changelog: an accepted entry does not decode again: %s\n", err);
    HARNESS_ASSERT(rc == TB_OK);
    HARNESS_ASSERT(again.offset == e->offset && again.records == e->records &&
                   again.window_width == e->window_width);
    HARNESS_ASSERT(again.model_len == e->model_len &&
                   (e->model_len == 0 || memcmp(again.model, e->model, e->model_len) == 0));
    HARNESS_ASSERT(again.nstate == e->nstate &&
                   fuzz_same_doubles(again.state, e->state, e->nstate));
    HARNESS_ASSERT(again.nwindow == e->nwindow &&
                   fuzz_same_doubles(again.window, e->window, e->nwindow));
    HARNESS_ASSERT(again.nmetrics == e->nmetrics &&
                   fuzz_same_doubles(again.metrics, e->metrics, e->nmetrics));
    avro_wire_buf_free(&buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct changelog_entry e;
    char err[256] = "";
    int rc = changelog_decode(data, size, &e, &fuzz_scratch, err, sizeof err);
    if (rc == TB_OK)
        fuzz_check_accepted(&e);
    else
        HARNESS_ASSERT(rc == TB_PARSE && err[0] != '\0');
    return 0;
}

#ifdef FUZZ_REPLAY_MAIN
int main(int argc, char **argv)
{
    int status = harness_replay_main(argc, argv, "changelog", LLVMFuzzerTestOneInput);
    changelog_scratch_free(&fuzz_scratch);
    changelog_scratch_free(&fuzz_scratch_again);
    return status;
}
#endif
