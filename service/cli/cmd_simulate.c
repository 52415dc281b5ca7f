/* `tributary simulate`: telemetry from a simulated fleet, to a Kafka topic or
 * to an Avro container file of history. */
#include "service/base/error.h"
#include "service/base/signals.h"
#include "service/cli/cli.h"
#include "service/cli/commands.h"
#include "service/sim/simulator.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static const struct cli_option simulate_options[] = {
    {"machines", "N", "simulate.machines", "machines in the fleet"},
    {"rate", "R", "simulate.rate", "records per second, 0 for as fast as possible"},
    {"count", "N", "simulate.count", "stop after N records (0: no limit)"},
    {"seconds", "S", "simulate.seconds", "stop after S seconds (0: no limit)"},
    {"seed", "N", "simulate.seed", "random seed; the same seed gives the same fleet"},
    {"bad-ratio", "F", "simulate.bad_ratio", "fraction of records deliberately corrupted"},
    {"topic", "NAME", "input.topic", "topic to produce to"},
    {"output", "FILE", "simulate.history_output", "write an Avro container file instead"},
    {"bootstrap", "HOST:PORT", "kafka.bootstrap.servers", "Kafka bootstrap servers"},
};

static const struct cli_command simulate_command = {
    "simulate",
    "tributary simulate [-c FILE] [OPTIONS]",
    "Simulates a fleet of machines whose sensors drift as they wear, fail and are\n"
    "replaced, and produces their telemetry (config/schemas/telemetry.avsc, with the\n"
    "remaining useful life as the label `rul`) keyed by machine id, to a Kafka topic\n"
    "or, with --output, to an Avro container file for training. Stops after --count\n"
    "records or --seconds, or on SIGINT/SIGTERM.",
    simulate_options,
    sizeof simulate_options / sizeof simulate_options[0],
    0,
    0,
};

static atomic_int simulate_stop;

static void *simulate_watch_signals(void *arg)
{
    (void)arg;
    while (!signals_sleep_ms(100) && !atomic_load(&simulate_stop))
        ;
    atomic_store(&simulate_stop, 1);
    return NULL;
}

int cmd_simulate(int argc, char **argv)
{
    int first_arg, exit_code; /* no positional arguments */
    struct config *cfg = cli_start(argc, argv, &simulate_command, &first_arg, &exit_code);
    if (!cfg)
        return exit_code;
    char err[1024];
    int status = 0;
    struct kafka_prop *props = NULL;
    const char *output = cfg->simulate.history_output[0] ? cfg->simulate.history_output : NULL;
    if (!output && !config_kafka_get(cfg, "bootstrap.servers")) {
        fprintf(stderr, "tributary simulate: no Kafka to produce to: set kafka.bootstrap.servers "
                        "(or --bootstrap), e.g. to the address `tributary broker` prints, or "
                        "write a file with --output\n");
        status = 2;
        goto done;
    }

    signals_install();
    pthread_t watcher;
    if (pthread_create(&watcher, NULL, simulate_watch_signals, NULL) != 0) {
        fprintf(stderr, "tributary simulate: could not start a thread\n");
        status = 1;
        goto done;
    }
    size_t nprops;
    props = config_kafka_props(cfg, &nprops);
    struct simulator_report report = {0};
    int rc = simulator_run(cfg, output, props, nprops, &simulate_stop, &report, err, sizeof err);
    atomic_store(&simulate_stop, 1);
    pthread_join(watcher, NULL);

    if (rc != TB_OK) {
        fprintf(stderr, "tributary simulate: %s\n", err);
        status = rc == TB_CONFIG ? 2 : 1;
    } else {
        long long produced = atomic_load(&report.produced);
        printf("simulate: %lld records (%lld corrupted) from %d machines to %s '%s' in %.1f s "
               "(%.0f records/s)\n",
               produced, atomic_load(&report.corrupted), cfg->simulate.machines,
               output ? "file" : "topic", output ? output : cfg->input.topic, report.seconds,
               report.seconds > 0 ? (double)produced / report.seconds : 0.0);
        if (atomic_load(&report.refused) > 0) {
            fprintf(stderr, "tributary simulate: %lld records were refused by the broker\n",
                    atomic_load(&report.refused));
            status = 1;
        }
    }
done:
    free(props);
    config_destroy(cfg);
    return status;
}
