/* A simulated fleet of machines whose sensors drift as they wear, until they
 * fail and are replaced: the telemetry source for the demo, tests and load.
 *
 * Each machine lives L cycles (drawn per life, 120..400), its damage grows as
 * (cycle / L)^p (p drawn per life, 1.5..3), and every sensor is a baseline,
 * an operating-condition effect, a damage effect and Gaussian noise, with
 * per-machine offsets. The remaining useful life (L - cycle) is carried as the
 * label. Deterministic for a seed. */
#ifndef TRIBUTARY_FLEET_H
#define TRIBUTARY_FLEET_H

#include "connectors/avro/avro_wire.h"

#include <stddef.h>
#include <stdint.h>

struct fleet;

struct fleet_reading {
    char machine_id[16]; /* "m-000042" */
    int64_t ts_ms;
    int32_t cycle;
    double load, ambient_temp; /* operating settings */
    double inlet_temp, outlet_temp, pressure, vibration, rpm, oil_temp, current, flow;
    double rul; /* cycles to failure; 0 on the last reading of a life */
};

/* Creates `machines` (>= 1) machines, each at a random point of its first life.
 * Returns the fleet; free with fleet_destroy. */
struct fleet *fleet_new(int machines, uint64_t seed);

/* Advances the next machine (round robin) by one cycle and describes its
 * reading, stamped ts_ms. A machine whose life ended is replaced first. */
void fleet_next(struct fleet *fleet, int64_t ts_ms, struct fleet_reading *out);

/* Appends the Avro binary encoding of a reading (schema
 * config/schemas/telemetry.avsc) to buf. */
void fleet_encode(const struct fleet_reading *reading, struct avro_wire_buf *buf);

/* Damages an encoded reading the way broken senders do: cuts it short, sets a
 * sensor to NaN, or replaces it with bytes that are not Avro. */
void fleet_corrupt(struct fleet *fleet, struct avro_wire_buf *buf);

/* Frees the fleet; accepts NULL. */
void fleet_destroy(struct fleet *fleet);

#endif
