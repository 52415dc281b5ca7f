/* `tributary serve`: the long-running stream-scoring service. */
#include "service/base/clock.h"
#include "service/base/error.h"
#include "service/base/log.h"
#include "service/base/signals.h"
#include "service/cli/cli.h"
#include "service/cli/commands.h"
#include "service/stream/api.h"
#include "service/stream/serve.h"

#include <stdio.h>

static const struct cli_option serve_options[] = {
    {"model", "FILE", "serve.model", "model artefact to start with"},
    {"registry", "DIR", "registry.directory",
     "registry to start from (the latest version) and to watch for new ones"},
    {"workers", "N", "serve.workers", "worker threads, each a consumer in the group"},
    {"bootstrap", "HOST:PORT", "kafka.bootstrap.servers",
     "Kafka bootstrap servers (none: start the embedded broker)"},
};

static const struct cli_command serve_command = {
    "serve",
    "tributary serve -c FILE [OPTIONS]",
    "Consumes Avro telemetry from input.topic in micro-batches, scores each batch\n"
    "with the model artefact, and produces Avro predictions (config/schemas/\n"
    "prediction.avsc) to output.topic, keyed like the input; records that do not\n"
    "decode go to output.dead_letter_topic with the reason in a header. An input\n"
    "offset is committed only after its output is acknowledged. SIGINT or SIGTERM\n"
    "finishes the batch in hand, commits and exits 0. With no\n"
    "kafka.bootstrap.servers, an embedded broker is started in-process and its\n"
    "address printed on the first line of standard output. An HTTP endpoint on\n"
    "http.address serves /healthz, /readyz, /metrics (Prometheus) and /v1/models.",
    serve_options,
    sizeof serve_options / sizeof serve_options[0],
    0,
    0,
};

int cmd_serve(int argc, char **argv)
{
    int first_arg, exit_code; /* no positional arguments */
    struct config *cfg = cli_start(argc, argv, &serve_command, &first_arg, &exit_code);
    if (!cfg)
        return exit_code;
    char err[1024];
    signals_install();
    int rc = TB_OK, status = 0;
    struct api *api = NULL;
    struct serve *serve = serve_new(cfg, &rc, err, sizeof err);
    if (!serve) {
        fprintf(stderr, "tributary serve: %s\n", err);
        status = rc == TB_KAFKA || rc == TB_IO ? 1 : 2;
        goto done;
    }
    if (!config_kafka_get(cfg, "bootstrap.servers")) {
        printf("%s\n", serve_bootstraps(serve));
        fflush(stdout);
    }
    if (cfg->http.address[0]) {
        api = api_new(cfg, serve, &rc, err, sizeof err);
        if (!api) {
            fprintf(stderr, "tributary serve: http.address %s: %s\n", cfg->http.address, err);
            status = 2;
            goto done;
        }
    }
    if (serve_start(serve, err, sizeof err) != TB_OK ||
        (api && api_start(api, err, sizeof err) != TB_OK)) {
        fprintf(stderr, "tributary serve: %s\n", err);
        status = 1;
        goto done;
    }
    if (api)
        log_info("HTTP endpoint on port %d: /healthz /readyz /metrics /v1/models", api_port(api));
    const struct worker_stats *stats = serve_stats(serve);
    unsigned long long last_consumed = 0;
    double last = clock_monotonic_s();
    while (!signals_sleep_ms(200) && !serve_stopping(serve)) {
        double now = clock_monotonic_s();
        if (now - last < 5.0)
            continue;
        unsigned long long consumed = atomic_load(&stats->consumed);
        log_info("consumed %llu (%.0f/s), predicted %llu, dead-lettered %llu, partitions %d",
                 consumed, (double)(consumed - last_consumed) / (now - last),
                 atomic_load(&stats->predicted), atomic_load(&stats->dead_lettered),
                 serve_assigned(serve));
        last_consumed = consumed;
        last = now;
    }
    log_info("stopping: finishing batches in hand, committing, leaving the group");
    serve_stop(serve);
    status = serve_wait(serve) == TB_OK ? 0 : 1;
    log_info("stopped: consumed %llu, predicted %llu, dead-lettered %llu",
             atomic_load(&stats->consumed), atomic_load(&stats->predicted),
             atomic_load(&stats->dead_lettered));
done:
    api_destroy(api);
    serve_destroy(serve);
    config_destroy(cfg);
    return status;
}
