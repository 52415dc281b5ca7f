/* tributary: subcommand dispatch. */
#include "service/cli/commands.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} main_commands[] = {
    {"serve", cmd_serve, "score a Kafka topic with a model, writing predictions to another"},
    {"train", cmd_train, "train a model from a CSV or Avro file and write an artefact"},
    {"tune", cmd_tune, "search hyperparameters (TPE) with parallel trials; publish the best"},
    {"score", cmd_score, "score a CSV or Avro file with an artefact, writing CSV"},
    {"simulate", cmd_simulate, "produce telemetry from a simulated fleet of wearing machines"},
    {"broker", cmd_broker, "run the embedded Kafka-protocol broker on loopback"},
    {"inspect", cmd_inspect, "print an artefact's manifest"},
    {"demo", cmd_demo, "the whole path on the embedded broker, shown live"},
    {"config", cmd_config, "print every configuration key, or an example file"},
};

static void main_usage(FILE *out)
{
    fprintf(out, "usage: tributary COMMAND [OPTIONS]\n\n"
                 "Trains and applies machine-learning models on Kafka topics.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof main_commands / sizeof main_commands[0]; i++)
        fprintf(out, "  %-10s %s\n", main_commands[i].name, main_commands[i].summary);
    fprintf(out, "\n`tributary COMMAND --help` describes a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        main_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof main_commands / sizeof main_commands[0]; i++) {
        if (strcmp(argv[1], main_commands[i].name) == 0)
            return main_commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "tributary: unknown command '%s'\n\n", argv[1]);
    main_usage(stderr);
    return 2;
}
