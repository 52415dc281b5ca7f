/* Fleet simulation loop: pacing, corruption, and the two destinations. */
#include "service/sim/simulator.h"

#include "connectors/kafka/kafka_conf.h"
#include "connectors/kafka/kafka_sink.h"
#include "service/base/clock.h"
#include "service/base/error.h"
#include "service/base/log.h"
#include "service/base/textfile.h"
#include "service/sim/fleet.h"

#include <avro.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Where records go: a producer or a container file. */
struct simulator_target {
    struct kafka_sink *sink;
    rd_kafka_topic_t *topic;
    avro_file_writer_t file;
    struct simulator_report *report;
};

static void simulator_on_delivery(void *opaque, uintptr_t tag, rd_kafka_resp_err_t status)
{
    (void)tag;
    struct simulator_target *target = opaque;
    if (status != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (atomic_fetch_add(&target->report->refused, 1) == 0)
            log_error("simulate: delivery failed: %s", rd_kafka_err2str(status));
    }
}

static int simulator_open_file(struct simulator_target *target, const char *path,
                               const char *schema_path, char *err, size_t errsz)
{
    size_t len;
    char *text = textfile_read(schema_path, &len, err, errsz);
    if (!text)
        return TB_IO;
    avro_schema_t schema;
    int parsed = avro_schema_from_json_length(text, len, &schema);
    free(text);
    if (parsed != 0)
        return tb_fail(err, errsz, TB_SCHEMA, "%s: %s", schema_path, avro_strerror());
    remove(path);
    int rc = avro_file_writer_create_with_codec(path, schema, &target->file, "deflate",
                                                (size_t)64 * 1024);
    avro_schema_decref(schema);
    if (rc != 0)
        return tb_fail(err, errsz, TB_IO, "%s: %s", path, avro_strerror());
    return TB_OK;
}

int simulator_run(const struct config *cfg, const char *output, const struct kafka_prop *props,
                  size_t nprops, const atomic_int *stop, struct simulator_report *report, char *err,
                  size_t errsz)
{
    int status = TB_OK;
    struct simulator_target target = {.report = report};
    struct fleet *fleet = NULL;
    struct avro_wire_buf buf = {0};
    int machines = cfg->simulate.machines;
    long long count = cfg->simulate.count;
    double rate = cfg->simulate.rate, seconds = cfg->simulate.seconds;

    if (output) {
        if (count <= 0)
            return tb_fail(err, errsz, TB_CONFIG, "simulate.count must be set to write a file");
        status = simulator_open_file(&target, output, cfg->input.schema, err, errsz);
    } else {
        struct kafka_sink_options sink_options = {
            .on_delivery = simulator_on_delivery,
            .opaque = &target,
            .stop = stop,
            .drain_timeout_ms = 5000,
        };
        target.sink = kafka_sink_new(props, nprops, &sink_options, err, errsz);
        status = target.sink ? TB_OK : TB_CONFIG;
    }
    if (status != TB_OK)
        goto done;
    if (target.sink &&
        !(target.topic = kafka_sink_topic(target.sink, cfg->input.topic, err, errsz))) {
        status = TB_KAFKA;
        goto done;
    }

    fleet = fleet_new(machines, (uint64_t)cfg->simulate.seed);
    int64_t history_ms = clock_wall_ms() - (count / machines + 1) * 60000;
    long long produced = 0, corrupted = 0;
    double start = clock_monotonic_s();
    double next_report_s = 5.0;

    while (!atomic_load(stop) && (count == 0 || produced < count)) {
        double elapsed = clock_monotonic_s() - start;
        if (seconds > 0 && elapsed >= seconds)
            break;
        if (rate > 0 && (double)produced >= rate * elapsed) {
            /* Ahead of schedule: sleep a little, serving delivery reports. */
            struct timespec nap = {0, 2000000};
            nanosleep(&nap, NULL);
            if (target.sink)
                rd_kafka_poll(kafka_sink_handle(target.sink), 0);
            continue;
        }
        struct fleet_reading reading;
        int64_t ts = output ? history_ms + (produced / machines) * 60000 : clock_wall_ms();
        fleet_next(fleet, ts, &reading);
        avro_wire_buf_reset(&buf);
        fleet_encode(&reading, &buf);
        if (output) {
            if (avro_file_writer_append_encoded(target.file, buf.data, (int64_t)buf.len) != 0) {
                status = tb_fail(err, errsz, TB_IO, "%s: %s", output, avro_strerror());
                goto done;
            }
        } else {
            if (cfg->simulate.bad_ratio > 0 &&
                (double)(corrupted + 1) <= cfg->simulate.bad_ratio * (double)(produced + 1)) {
                fleet_corrupt(fleet, &buf);
                corrupted++;
                atomic_store(&report->corrupted, corrupted);
            }
            status = kafka_sink_produce(target.sink, target.topic, reading.machine_id,
                                        strlen(reading.machine_id), buf.data, buf.len, NULL, ts, 0,
                                        err, errsz);
            if (status != TB_OK)
                goto done;
            rd_kafka_poll(kafka_sink_handle(target.sink), 0);
        }
        atomic_store(&report->produced, ++produced);
        if (elapsed >= next_report_s) {
            log_info("simulate: %lld records, %.0f records/s", produced,
                     (double)produced / elapsed);
            next_report_s += 5.0;
        }
    }
    if (target.sink && kafka_sink_wait(target.sink, -1) != TB_OK)
        status = tb_fail(err, errsz, TB_TIMEOUT, "stopped with records not acknowledged");
    report->seconds = clock_monotonic_s() - start;

done:
    /* Closing writes the last block: a failure here is a short file. */
    if (target.file && avro_file_writer_close(target.file) != 0 && status == TB_OK)
        status = tb_fail(err, errsz, TB_IO, "%s: %s", output, avro_strerror());
    kafka_sink_destroy(target.sink);
    avro_wire_buf_free(&buf);
    fleet_destroy(fleet);
    return status;
}
