/* Prediction records to and from Avro binary. */
#include "connectors/avro/prediction.h"

#include "service/base/error.h"

#include <math.h>

/* config/schemas/prediction.avsc without its docs (test_prediction checks they parse equal). */
static const char prediction_schema_text[] =
    "{\"type\": \"record\", \"name\": \"Prediction\", \"namespace\": \"tributary\", \"fields\": [\n"
    "  {\"name\": \"key\", \"type\": \"string\"},\n"
    "  {\"name\": \"event_time\", \"type\": {\"type\": \"long\", \"logicalType\": "
    "\"timestamp-millis\"}},\n"
    "  {\"name\": \"prediction\", \"type\": \"double\"},\n"
    "  {\"name\": \"label\", \"type\": [\"null\", \"double\"], \"default\": null},\n"
    "  {\"name\": \"model\", \"type\": \"string\"},\n"
    "  {\"name\": \"model_version\", \"type\": \"int\"},\n"
    "  {\"name\": \"source_partition\", \"type\": \"int\"},\n"
    "  {\"name\": \"source_offset\", \"type\": \"long\"},\n"
    "  {\"name\": \"probabilities\", \"type\": {\"type\": \"array\", \"items\": \"double\"}, "
    "\"default\": []}\n"
    "]}\n";

const char *prediction_schema_json(void)
{
    return prediction_schema_text;
}

void prediction_encode(const struct prediction *p, struct avro_wire_buf *buf)
{
    avro_wire_put_string(buf, p->key, p->key_len);
    avro_wire_put_long(buf, p->event_time_ms);
    avro_wire_put_double(buf, p->value);
    if (isnan(p->label)) {
        avro_wire_put_union_index(buf, 0);
    } else {
        avro_wire_put_union_index(buf, 1);
        avro_wire_put_double(buf, p->label);
    }
    avro_wire_put_string(buf, p->model, p->model_len);
    avro_wire_put_int(buf, p->model_version);
    avro_wire_put_int(buf, p->source_partition);
    avro_wire_put_long(buf, p->source_offset);
    if (p->nprobabilities > 0) {
        avro_wire_put_long(buf, (int64_t)p->nprobabilities);
        for (size_t k = 0; k < p->nprobabilities; k++)
            avro_wire_put_double(buf, p->probabilities[k]);
    }
    avro_wire_put_long(buf, 0);
}

int prediction_decode(const void *buf, size_t len, struct prediction *out, double *probabilities,
                      size_t capacity)
{
    const uint8_t *pos = buf;
    const uint8_t *end = pos + len;
    int64_t branch;
    if (avro_wire_read_string(&pos, end, &out->key, &out->key_len) != 0 ||
        avro_wire_read_long(&pos, end, &out->event_time_ms) != 0 ||
        avro_wire_read_double(&pos, end, &out->value) != 0 ||
        avro_wire_read_long(&pos, end, &branch) != 0)
        return TB_PARSE;
    out->label = NAN;
    if (branch == 1) {
        if (avro_wire_read_double(&pos, end, &out->label) != 0)
            return TB_PARSE;
    } else if (branch != 0) {
        return TB_PARSE;
    }
    if (avro_wire_read_string(&pos, end, &out->model, &out->model_len) != 0 ||
        avro_wire_read_int(&pos, end, &out->model_version) != 0 ||
        avro_wire_read_int(&pos, end, &out->source_partition) != 0 ||
        avro_wire_read_long(&pos, end, &out->source_offset) != 0)
        return TB_PARSE;
    out->probabilities = probabilities;
    out->nprobabilities = 0;
    for (;;) {
        int64_t count, block_bytes;
        if (avro_wire_read_long(&pos, end, &count) != 0)
            return TB_PARSE;
        if (count == 0)
            break;
        if (count < 0) {
            if (count == INT64_MIN || avro_wire_read_long(&pos, end, &block_bytes) != 0)
                return TB_PARSE;
            count = -count;
        }
        if ((uint64_t)count > capacity - out->nprobabilities)
            return TB_PARSE;
        for (int64_t k = 0; k < count; k++)
            if (avro_wire_read_double(&pos, end, &probabilities[out->nprobabilities++]) != 0)
                return TB_PARSE;
    }
    return pos == end ? TB_OK : TB_PARSE;
}
