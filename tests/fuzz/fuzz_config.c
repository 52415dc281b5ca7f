/* libFuzzer target for the configuration loader: arbitrary bytes as the YAML file of `-c FILE`
 * and, after the first NUL byte (which no YAML file holds), --set KEY=VALUE assignments, one per
 * line, through cli_config_load as every command builds its configuration. An accepted
 * configuration must survive config_write: what it writes loads back and writes the same text. */
#include "service/base/error.h"
#include "service/cli/cli.h"
#include "service/config/config.h"
#include "tests/fuzz/harness.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* config_write's text for cfg; the caller frees it. */
static char *fuzz_written(const struct config *cfg, size_t *len)
{
    char *text = NULL;
    FILE *out = open_memstream(&text, len);
    HARNESS_ASSERT(out);
    config_write(cfg, out);
    HARNESS_ASSERT(fclose(out) == 0);
    return text;
}

static void fuzz_check_round_trip(const struct config *cfg)
{
    size_t len = 0, len_again = 0;
    char *text = fuzz_written(cfg, &len);
    struct config *again = config_new();
    char err[1024] = "";
    int rc = config_load_file(again, harness_file(text, len), err, sizeof err);
    if (rc != TB_OK) {
        fprintf(stderr, "fuzz_config: config_write's output does not load: %s\n", err);
        HARNESS_ASSERT(false);
    }
    char *text_again = fuzz_written(again, &len_again);
    if (len != len_again || memcmp(text, text_again, len) != 0) {
        fprintf(stderr, "fuzz_config: config_write's output loads back different:\n%s\n---\n%s\n",
                text, text_again);
        HARNESS_ASSERT(false);
    }
    free(text_again);
    config_destroy(again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t yaml_len = nul ? (size_t)(nul - data) : size;

    /* Each line after the NUL is one --set argument, a C string as argv gives it. */
    char *sets_text = NULL;
    char **sets = NULL;
    size_t nsets = 0;
    if (nul) {
        size_t rest = size - yaml_len - 1;
        sets_text = malloc(rest + 1);
        HARNESS_ASSERT(sets_text);
        memcpy(sets_text, nul + 1, rest);
        sets_text[rest] = '\0';
        sets = calloc(rest + 1, sizeof *sets);
        HARNESS_ASSERT(sets);
        for (char *line = sets_text; line;) {
            char *next = strchr(line, '\n');
            if (next)
                *next++ = '\0';
            sets[nsets++] = line;
            line = next;
        }
    }

    char err[1024] = "";
    struct config *cfg =
        cli_config_load(harness_file(data, yaml_len), sets, nsets, err, sizeof err);
    if (cfg) {
        fuzz_check_round_trip(cfg);
        config_destroy(cfg);
    } else {
        HARNESS_ASSERT(err[0] != '\0');
    }
    free(sets);
    free(sets_text);
    return 0;
}

#ifdef FUZZ_REPLAY_MAIN
int main(int argc, char **argv)
{
    return harness_replay_main(argc, argv, "config", LLVMFuzzerTestOneInput);
}
#endif
