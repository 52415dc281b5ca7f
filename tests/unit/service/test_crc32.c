/* Unit tests for models/crc32: the catalogue check value and agreement with Python's zlib. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "service/registry/crc32.h"
#include "tests/support/support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_check_value(void **state)
{
    (void)state;
    /* CRC-32/ISO-HDLC (zlib's) check value from the CRC catalogue. */
    assert_int_equal(crc32_compute("123456789", 9), 0xCBF43926u);
}

static void test_empty(void **state)
{
    (void)state;
    assert_int_equal(crc32_compute(NULL, 0), 0);
    assert_int_equal(crc32_update(0xCBF43926u, NULL, 0), 0xCBF43926u);
}

static void test_incremental_equals_one_shot(void **state)
{
    (void)state;
    const char *text = "The quick brown fox jumps over the lazy dog";
    size_t len = strlen(text);
    /* A value every CRC-32 implementation lists for this sentence. */
    assert_int_equal(crc32_compute(text, len), 0x414FA339u);
    for (size_t cut = 0; cut <= len; cut++)
        assert_int_equal(crc32_update(crc32_update(0, text, cut), text + cut, len - cut),
                         0x414FA339u);
}

static void test_matches_python_zlib(void **state)
{
    (void)state;
    enum { NBUF = 5 };
    const size_t lengths[NBUF] = {1, 3, 64, 255, 700};
    unsigned char bufs[NBUF][700];
    uint64_t x = 12345;
    char cmd[8192] = "/usr/bin/python3 -c 'import sys, zlib\n"
                     "for a in sys.argv[1:]: print(zlib.crc32(bytes.fromhex(a)))'";
    for (size_t b = 0; b < NBUF; b++) {
        strcat(cmd, " ");
        for (size_t i = 0; i < lengths[b]; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            bufs[b][i] = (unsigned char)(x >> 56);
            char hex[3];
            snprintf(hex, sizeof(hex), "%02x", bufs[b][i]);
            strcat(cmd, hex);
        }
    }
    FILE *out = popen(cmd, "r");
    assert_non_null(out);
    char line[64];
    size_t b = 0;
    while (b < NBUF && fgets(line, sizeof(line), out)) {
        unsigned long want = strtoul(line, NULL, 10);
        assert_int_equal(crc32_compute(bufs[b], lengths[b]), want);
        b++;
    }
    assert_int_equal(pclose(out), 0);
    assert_int_equal(b, NBUF);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NAMED_CASE("check value of \"123456789\" is cbf43926", test_check_value, NULL),
        NAMED_CASE("empty input leaves the CRC unchanged", test_empty, NULL),
        NAMED_CASE("split input gives the one-shot CRC", test_incremental_equals_one_shot, NULL),
        NAMED_CASE("agrees with Python's zlib.crc32", test_matches_python_zlib, NULL),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
