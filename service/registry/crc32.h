/* CRC-32 with the zlib/PNG polynomial (reflected 0xEDB88320), so Python's zlib.crc32 agrees. */
#ifndef TRIBUTARY_CRC32_H
#define TRIBUTARY_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC-32 over len more bytes and returns the new value. Start with crc = 0, exactly
 * like zlib's crc32(0, buf, len); crc32_update(crc32_update(0, a, n), b, m) equals the CRC of a
 * followed by b. Never fails; data may be NULL when len is 0. Thread-safe. */
uint32_t crc32_update(uint32_t crc, const void *data, size_t len);

/* The CRC-32 of one buffer: crc32_update(0, data, len). */
uint32_t crc32_compute(const void *data, size_t len);

#endif
