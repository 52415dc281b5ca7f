/* Prediction records to and from Avro binary. */
#include "connectors/prediction.h"

#include "service/error.h"

#include <math.h>

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
}

int prediction_decode(const void *buf, size_t len, struct prediction *out)
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
        avro_wire_read_long(&pos, end, &out->source_offset) != 0 || pos != end)
        return TB_PARSE;
    return TB_OK;
}
