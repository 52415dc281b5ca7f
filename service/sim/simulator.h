/* The fleet simulation loop shared by `simulate` and `demo`: paces records at
 * a rate and writes them to a topic (corrupting a fraction on request, for
 * dead-letter demonstrations) or to an Avro container file of clean history. */
#ifndef TRIBUTARY_SIMULATOR_H
#define TRIBUTARY_SIMULATOR_H

#include "service/config/config.h"

#include <stdatomic.h>
#include <stddef.h>

struct kafka_prop; /* connectors/kafka/kafka_conf.h */

struct simulator_report {
    atomic_llong produced;  /* records written, or queued to the producer */
    atomic_llong corrupted; /* of which deliberately damaged */
    atomic_llong refused;   /* of the queued, those the broker refused */
    double seconds;
};

/* Runs cfg->simulate: to the file `output` when it is not NULL (count must be
 * set; timestamps are one minute per fleet round, ending now), otherwise to
 * cfg->input.topic through a producer with `props` (timestamps are the wall
 * clock). Stops after simulate.count records, simulate.seconds, or when *stop
 * becomes true. Progress is readable in *report while it runs.
 * Returns TB_OK, or an error with err. */
int simulator_run(const struct config *cfg, const char *output, const struct kafka_prop *props,
                  size_t nprops, const atomic_int *stop, struct simulator_report *report, char *err,
                  size_t errsz);

#endif
