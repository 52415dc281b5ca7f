/* Simulated fleet: wear, failure and replacement of machines, and the Avro
 * encoding of their telemetry. */
#include "service/sim/fleet.h"

#include "service/base/mem.h"
#include "service/base/rng.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* One machine's current life. */
struct fleet_machine {
    int32_t cycle;
    int32_t life; /* the cycle at which it fails */
    double wear_exponent;
    double phase;     /* of its load cycle */
    double offset[8]; /* manufacturing variation of each sensor */
};

struct fleet {
    struct rng rng;
    int nmachines;
    int next; /* round-robin cursor */
    struct fleet_machine *machines;
};

/* Standard normal (Box-Muller; one of the pair is enough here). */
static double fleet_normal(struct fleet *f)
{
    double u = rng_uniform(&f->rng);
    double v = rng_uniform(&f->rng);
    return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

/* Sensor noise levels, also the scale of per-machine offsets. */
static const double fleet_noise[8] = {0.8, 1.0, 0.05, 0.3, 3.0, 0.7, 0.5, 0.6};

static void fleet_new_life(struct fleet *f, struct fleet_machine *m)
{
    m->cycle = 0;
    m->life = 120 + (int32_t)(280.0 * pow(rng_uniform(&f->rng), 1.5));
    m->wear_exponent = 1.5 + 1.5 * rng_uniform(&f->rng);
    m->phase = 2.0 * M_PI * rng_uniform(&f->rng);
    for (int k = 0; k < 8; k++)
        m->offset[k] = 1.5 * fleet_noise[k] * fleet_normal(f);
}

struct fleet *fleet_new(int machines, uint64_t seed)
{
    struct fleet *f = mem_calloc(1, sizeof *f);
    rng_seed(&f->rng, seed);
    f->nmachines = machines < 1 ? 1 : machines;
    f->machines = mem_calloc((size_t)f->nmachines, sizeof *f->machines);
    for (int i = 0; i < f->nmachines; i++) {
        fleet_new_life(f, &f->machines[i]);
        f->machines[i].cycle = (int32_t)(rng_uniform(&f->rng) * f->machines[i].life * 0.8);
    }
    return f;
}

void fleet_next(struct fleet *f, int64_t ts_ms, struct fleet_reading *out)
{
    int id = f->next;
    f->next = (f->next + 1) % f->nmachines;
    struct fleet_machine *m = &f->machines[id];
    if (m->cycle >= m->life)
        fleet_new_life(f, m);
    m->cycle++;

    double d = pow((double)m->cycle / m->life, m->wear_exponent);
    double load = 0.75 + 0.2 * sin(m->cycle / 17.0 + m->phase) + 0.02 * fleet_normal(f);
    double ambient = 20.0 + 8.0 * sin((double)ts_ms / 3.6e6 + m->phase) + 0.5 * fleet_normal(f);
    const double *o = m->offset;
    const double *s = fleet_noise;

    memset(out, 0, sizeof *out);
    snprintf(out->machine_id, sizeof out->machine_id, "m-%06d", id);
    out->ts_ms = ts_ms;
    out->cycle = m->cycle;
    out->load = load;
    out->ambient_temp = ambient;
    out->inlet_temp = 60.0 + 15.0 * load + 0.3 * ambient + 12.0 * d + o[0] + s[0] * fleet_normal(f);
    out->outlet_temp =
        out->inlet_temp + 25.0 + 10.0 * load + 18.0 * d + o[1] + s[1] * fleet_normal(f);
    out->pressure = 6.0 + 0.5 * load - 0.8 * d + o[2] + s[2] * fleet_normal(f);
    out->vibration = 2.0 + 0.5 * load + 6.0 * d * d + o[3] + s[3] * fleet_normal(f);
    out->rpm = 1480.0 - 30.0 * load - 25.0 * d + o[4] + s[4] * fleet_normal(f);
    out->oil_temp = 55.0 + 0.5 * ambient + 10.0 * load + 15.0 * d + o[5] + s[5] * fleet_normal(f);
    out->current = 30.0 + 12.0 * load + 5.0 * d + o[6] + s[6] * fleet_normal(f);
    out->flow = 40.0 - 8.0 * d + o[7] + s[7] * fleet_normal(f);
    out->rul = (double)(m->life - m->cycle);
}

void fleet_encode(const struct fleet_reading *r, struct avro_wire_buf *buf)
{
    avro_wire_put_string(buf, r->machine_id, strlen(r->machine_id));
    avro_wire_put_long(buf, r->ts_ms);
    avro_wire_put_long(buf, r->cycle);
    const double values[] = {r->load,     r->ambient_temp, r->inlet_temp, r->outlet_temp,
                             r->pressure, r->vibration,    r->rpm,        r->oil_temp,
                             r->current,  r->flow};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        avro_wire_put_double(buf, values[i]);
    avro_wire_put_union_index(buf, 1); /* ["null", "double"]: the double */
    avro_wire_put_double(buf, r->rul);
}

void fleet_corrupt(struct fleet *f, struct avro_wire_buf *buf)
{
    double u = rng_uniform(&f->rng);
    if (u < 1.0 / 3 && buf->len > 2) {
        buf->len = 1 + (size_t)(rng_uniform(&f->rng) * (double)(buf->len - 2));
        return;
    }
    if (u < 2.0 / 3 && buf->len >= 8 + 8 + 1) {
        /* The last sensor (flow) sits just before the rul union (1 + 8 bytes). */
        double nan = NAN;
        memcpy(buf->data + buf->len - 9 - 8, &nan, sizeof nan);
        return;
    }
    for (size_t i = 0; i < buf->len; i++)
        buf->data[i] = (uint8_t)(rng_next(&f->rng) | 0x80); /* every byte a varint continuation */
}

void fleet_destroy(struct fleet *fleet)
{
    if (!fleet)
        return;
    free(fleet->machines);
    free(fleet);
}
