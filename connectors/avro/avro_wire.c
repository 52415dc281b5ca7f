/* The out-of-line half of the Avro wire primitives: growing and freeing output buffers. */
#include "connectors/avro/avro_wire.h"

#include "service/base/mem.h"

#include <stdlib.h>

void avro_wire_buf_reserve(struct avro_wire_buf *buf, size_t extra)
{
    if (buf->cap - buf->len >= extra)
        return;
    size_t cap = buf->cap ? buf->cap : 64;
    while (cap - buf->len < extra)
        cap *= 2;
    buf->data = mem_realloc(buf->data, cap);
    buf->cap = cap;
}

void avro_wire_buf_free(struct avro_wire_buf *buf)
{
    if (!buf)
        return;
    free(buf->data);
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
}
