/* `tributary broker`: the embedded Kafka-protocol broker as a process. */
#include "connectors/kafka/embedded_broker.h"
#include "service/base/error.h"
#include "service/base/log.h"
#include "service/base/signals.h"
#include "service/cli/commands.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void broker_usage(FILE *out)
{
    fprintf(out, "usage: tributary broker [--brokers N] [--topic NAME:PARTITIONS]...\n"
                 "\n"
                 "Runs an embedded Kafka-protocol broker (librdkafka's mock cluster) on\n"
                 "127.0.0.1, prints its bootstrap address on the first line of standard\n"
                 "output, and serves any Kafka client until SIGINT or SIGTERM.\n"
                 "\n"
                 "  --brokers N              brokers in the cluster (1..16, default 3)\n"
                 "  --topic NAME:PARTITIONS  create a topic (repeatable); other topics are\n"
                 "                           created on first use with 4 partitions\n"
                 "\n"
                 "Limits, unlike Kafka: each partition keeps only about 5 MiB of record\n"
                 "batches and silently drops older ones (tributary's producers use lz4 to\n"
                 "stay inside it; keep consumers running rather than building backlogs);\n"
                 "consumer-group rebalances are slow (about 3 s for the first join, then\n"
                 "session.timeout.ms minus 1 s per join or leave); transactions are\n"
                 "accepted but not honoured; CreateTopics and other Admin requests time out;\n"
                 "ports are ephemeral, so the printed bootstrap is the only way to find it.\n");
}

/* Parses "NAME:PARTITIONS", cutting spec at the colon so that it becomes the
 * name; returns TB_OK or TB_USAGE with err. */
static int broker_parse_topic(char *spec, int *partitions, char *err, size_t errsz)
{
    char *colon = strrchr(spec, ':');
    char *end = NULL;
    long n = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || colon == spec || !end || *end != '\0' || end == colon + 1 || n < 1 || n > 1024)
        return tb_fail(err, errsz, TB_USAGE,
                       "--topic '%s': expected NAME:PARTITIONS with 1..1024 partitions", spec);
    *colon = '\0';
    *partitions = (int)n;
    return TB_OK;
}

/* More --topic options than a test or a demo needs, and few enough to live on the stack. */
#define BROKER_MAX_TOPICS 256

int cmd_broker(int argc, char **argv)
{
    static const struct option options[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int nbrokers = 3;
    char *topics[BROKER_MAX_TOPICS]; /* the --topic names */
    int partitions[BROKER_MAX_TOPICS];
    int ntopics = 0;
    char err[512];
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "b:t:h", options, NULL)) != -1) {
        switch (opt) {
        case 'b': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end != '\0' || n < 1 || n > 16) {
                fprintf(stderr, "tributary broker: --brokers '%s': expected 1..16\n", optarg);
                return 2;
            }
            nbrokers = (int)n;
            break;
        }
        case 't':
            if (ntopics == BROKER_MAX_TOPICS) {
                fprintf(stderr, "tributary broker: more than %d --topic options\n",
                        BROKER_MAX_TOPICS);
                return 2;
            }
            if (broker_parse_topic(optarg, &partitions[ntopics], err, sizeof err) != TB_OK) {
                fprintf(stderr, "tributary broker: %s\n", err);
                return 2;
            }
            topics[ntopics++] = optarg;
            break;
        case 'h':
            broker_usage(stdout);
            return 0;
        default:
            fprintf(stderr,
                    "tributary broker: unknown option or missing argument: '%s'\n"
                    "Try 'tributary broker --help'.\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tributary broker: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }

    signals_install();
    struct embedded_broker *broker = embedded_broker_new(nbrokers, err, sizeof err);
    if (!broker) {
        fprintf(stderr, "tributary broker: %s\n", err);
        return 1;
    }
    int status = 0;
    for (int i = 0; i < ntopics; i++) {
        if (embedded_broker_create_topic(broker, topics[i], partitions[i], err, sizeof err) !=
            TB_OK) {
            fprintf(stderr, "tributary broker: %s\n", err);
            status = 1;
            goto done;
        }
    }
    printf("%s\n", embedded_broker_bootstraps(broker));
    fflush(stdout);
    log_info("embedded broker: %d broker%s at %s; stop with SIGINT or SIGTERM", nbrokers,
             nbrokers == 1 ? "" : "s", embedded_broker_bootstraps(broker));
    while (!signals_sleep_ms(200))
        ;
    log_info("embedded broker: stopping");
done:
    embedded_broker_destroy(broker);
    return status;
}
