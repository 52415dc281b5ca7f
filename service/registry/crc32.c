/* CRC-32 (zlib polynomial), table driven, table built once on first use. */
#include "service/registry/crc32.h"

#include <pthread.h>

#define CRC32_POLY_REFLECTED 0xEDB88320u

static uint32_t crc32_table[256];
static pthread_once_t crc32_table_once = PTHREAD_ONCE_INIT;

static void crc32_build_table(void)
{
    for (uint32_t byte = 0; byte < 256; byte++) {
        uint32_t r = byte;
        for (int bit = 0; bit < 8; bit++)
            r = (r & 1u) ? (r >> 1) ^ CRC32_POLY_REFLECTED : r >> 1;
        crc32_table[byte] = r;
    }
}

uint32_t crc32_update(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc32_table_once, crc32_build_table);
    const unsigned char *p = data;
    /* zlib's convention: the register is kept inverted between calls. */
    uint32_t r = ~crc;
    for (size_t i = 0; i < len; i++)
        r = crc32_table[(r ^ p[i]) & 0xFFu] ^ (r >> 8);
    return ~r;
}

uint32_t crc32_compute(const void *data, size_t len)
{
    return crc32_update(0, data, len);
}
