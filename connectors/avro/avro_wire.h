/* Avro binary encoding primitives: bounds-checked readers over a byte range and writers into a
 * growable buffer, shared by the Avro decoder and the prediction encoder. */
#ifndef TRIBUTARY_AVRO_WIRE_H
#define TRIBUTARY_AVRO_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The longest varint: 64 bits in 7-bit groups. */
#define AVRO_WIRE_MAX_VARINT_BYTES 10

/* Readers. Each reads one value at *pos, never touching a byte at or after end (*pos <= end is
 * required). On success it returns 0, stores the value and advances *pos past it; on failure it
 * returns -1 and leaves *pos and the output unchanged. Failures: the input ends inside the value,
 * or the encoding is invalid (as said for each reader). */

/* Zig-zag varint long. Invalid: more than 10 bytes, or a 10th byte that overflows 64 bits. */
static inline int avro_wire_read_long(const uint8_t **pos, const uint8_t *end, int64_t *out)
{
    const uint8_t *p = *pos;
    uint64_t acc = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (p == end)
            return -1;
        uint8_t byte = *p++;
        /* The 10th byte holds bit 63 only; anything more is overflow or an 11th byte. */
        if (shift == 63 && byte > 1)
            return -1;
        acc |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = (int64_t)((acc >> 1) ^ (0 - (acc & 1)));
            *pos = p;
            return 0;
        }
    }
    return -1;
}

/* Zig-zag varint int. Invalid as for a long, or outside the 32-bit range. */
static inline int avro_wire_read_int(const uint8_t **pos, const uint8_t *end, int32_t *out)
{
    const uint8_t *p = *pos;
    int64_t value;
    if (avro_wire_read_long(&p, end, &value) || value < INT32_MIN || value > INT32_MAX)
        return -1;
    *out = (int32_t)value;
    *pos = p;
    return 0;
}

static inline uint32_t avro_wire_le32(uint32_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return __builtin_bswap32(v);
#else
    return v;
#endif
}

static inline uint64_t avro_wire_le64(uint64_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return __builtin_bswap64(v);
#else
    return v;
#endif
}

/* IEEE 754 single, 4 bytes little-endian. */
static inline int avro_wire_read_float(const uint8_t **pos, const uint8_t *end, float *out)
{
    if (end - *pos < 4)
        return -1;
    uint32_t bits;
    memcpy(&bits, *pos, 4);
    bits = avro_wire_le32(bits);
    memcpy(out, &bits, 4);
    *pos += 4;
    return 0;
}

/* IEEE 754 double, 8 bytes little-endian. */
static inline int avro_wire_read_double(const uint8_t **pos, const uint8_t *end, double *out)
{
    if (end - *pos < 8)
        return -1;
    uint64_t bits;
    memcpy(&bits, *pos, 8);
    bits = avro_wire_le64(bits);
    memcpy(out, &bits, 8);
    *pos += 8;
    return 0;
}

/* One byte, 0 or 1. Invalid: any other byte. */
static inline int avro_wire_read_boolean(const uint8_t **pos, const uint8_t *end, bool *out)
{
    if (*pos == end || **pos > 1)
        return -1;
    *out = **pos;
    *pos += 1;
    return 0;
}

/* Length-prefixed bytes: *data points into the input (no copy) and *len is the length. Invalid:
 * a bad length varint, a negative length, or a length beyond end. */
static inline int avro_wire_read_bytes(const uint8_t **pos, const uint8_t *end,
                                       const uint8_t **data, size_t *len)
{
    const uint8_t *p = *pos;
    int64_t n;
    if (avro_wire_read_long(&p, end, &n) || n < 0 || (uint64_t)n > (size_t)(end - p))
        return -1;
    *data = p;
    *len = (size_t)n;
    *pos = p + n;
    return 0;
}

/* A string is bytes on the wire; the UTF-8 is not validated and not NUL-terminated. */
static inline int avro_wire_read_string(const uint8_t **pos, const uint8_t *end, const char **s,
                                        size_t *len)
{
    const uint8_t *data;
    if (avro_wire_read_bytes(pos, end, &data, len))
        return -1;
    *s = (const char *)data;
    return 0;
}

/* A fixed of size bytes: *data points into the input. */
static inline int avro_wire_read_fixed(const uint8_t **pos, const uint8_t *end, size_t size,
                                       const uint8_t **data)
{
    if (size > (size_t)(end - *pos))
        return -1;
    *data = *pos;
    *pos += size;
    return 0;
}

/* A growable output buffer. Start from `struct avro_wire_buf buf = {0};`, write with the
 * avro_wire_put_* functions (which never fail: growth goes through service/mem.h), read
 * data[0..len), and release with avro_wire_buf_free. */
struct avro_wire_buf {
    uint8_t *data;
    size_t len, cap;
};

/* Makes room for at least extra more bytes after len. */
void avro_wire_buf_reserve(struct avro_wire_buf *buf, size_t extra);

/* Empties the buffer and keeps its memory for the next message. */
static inline void avro_wire_buf_reset(struct avro_wire_buf *buf)
{
    buf->len = 0;
}

/* Frees the memory and leaves an empty buffer; buf may be NULL. */
void avro_wire_buf_free(struct avro_wire_buf *buf);

/* Appends len raw bytes (a fixed, or already-encoded data). */
static inline void avro_wire_put_raw(struct avro_wire_buf *buf, const void *data, size_t len)
{
    if (len == 0)
        return;
    if (buf->cap - buf->len < len)
        avro_wire_buf_reserve(buf, len);
    memcpy(buf->data + buf->len, data, len);
    buf->len += len;
}

static inline void avro_wire_put_long(struct avro_wire_buf *buf, int64_t value)
{
    if (buf->cap - buf->len < AVRO_WIRE_MAX_VARINT_BYTES)
        avro_wire_buf_reserve(buf, AVRO_WIRE_MAX_VARINT_BYTES);
    uint64_t zigzag = ((uint64_t)value << 1) ^ (0 - ((uint64_t)value >> 63));
    uint8_t *p = buf->data + buf->len;
    while (zigzag >= 0x80) {
        *p++ = (uint8_t)(zigzag | 0x80);
        zigzag >>= 7;
    }
    *p++ = (uint8_t)zigzag;
    buf->len = (size_t)(p - buf->data);
}

static inline void avro_wire_put_int(struct avro_wire_buf *buf, int32_t value)
{
    avro_wire_put_long(buf, value);
}

/* A union's branch index precedes the branch's value. */
static inline void avro_wire_put_union_index(struct avro_wire_buf *buf, int64_t index)
{
    avro_wire_put_long(buf, index);
}

static inline void avro_wire_put_boolean(struct avro_wire_buf *buf, bool value)
{
    uint8_t byte = value ? 1 : 0;
    avro_wire_put_raw(buf, &byte, 1);
}

static inline void avro_wire_put_float(struct avro_wire_buf *buf, float value)
{
    uint32_t bits;
    memcpy(&bits, &value, 4);
    bits = avro_wire_le32(bits);
    avro_wire_put_raw(buf, &bits, 4);
}

static inline void avro_wire_put_double(struct avro_wire_buf *buf, double value)
{
    uint64_t bits;
    memcpy(&bits, &value, 8);
    bits = avro_wire_le64(bits);
    avro_wire_put_raw(buf, &bits, 8);
}

static inline void avro_wire_put_bytes(struct avro_wire_buf *buf, const void *data, size_t len)
{
    avro_wire_put_long(buf, (int64_t)len);
    avro_wire_put_raw(buf, data, len);
}

/* s[0..len) as an Avro string (its UTF-8 is the caller's business). */
static inline void avro_wire_put_string(struct avro_wire_buf *buf, const char *s, size_t len)
{
    avro_wire_put_bytes(buf, s, len);
}

#endif
