/* Tests for the in-memory table: numeric columns as before, and categorical
 * columns whose codes and dictionaries follow first appearance, compared byte
 * for byte. */
#include "connectors/files/table.h"
#include "service/base/error.h"
#include "service/base/mem.h"
#include "service/base/rng.h"

#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_numeric_table_works_as_before(void **state)
{
    (void)state;
    static const char *const names[] = {"a", "b"};
    struct table *t = table_new(names, 2, "id");
    const double r0[] = {1.5, -2}, r1[] = {NAN, 4};
    table_append_row(t, r0, "m-1");
    table_append_row(t, r1, NULL);
    assert_int_equal(table_nrows(t), 2);
    assert_int_equal(table_ncols(t), 2);
    assert_false(table_is_categorical(t, 0));
    assert_false(table_is_categorical(t, 1));
    size_t count = 99;
    assert_null(table_dictionary(t, 0, &count));
    assert_int_equal(count, 0);
    assert_true(table_row(t, 0)[0] == 1.5 && table_row(t, 0)[1] == -2);
    assert_true(isnan(table_row(t, 1)[0]) && table_row(t, 1)[1] == 4);
    assert_string_equal(table_key(t, 0), "m-1");
    assert_string_equal(table_key(t, 1), "");
    table_destroy(t);
    table_destroy(NULL);
}

static void test_codes_follow_first_appearance(void **state)
{
    (void)state;
    static const char *const names[] = {"speed", "type", "site"};
    static const bool categorical[] = {false, true, true};
    struct table *t = table_new_typed(names, categorical, 3, NULL);
    assert_false(table_is_categorical(t, 0));
    assert_true(table_is_categorical(t, 1));
    assert_true(table_is_categorical(t, 2));

    size_t count = 99;
    assert_null(table_dictionary(t, 1, &count));
    assert_int_equal(count, 0);

    static const char *const types[] = {"M", "L", "M", NULL, "H", "L", "H", "M"};
    static const char *const sites[] = {"north", "south", NULL, "north", "", "east", "", "south"};
    static const double want_type[] = {0, 1, 0, NAN, 2, 1, 2, 0};
    static const double want_site[] = {0, 1, NAN, 0, 2, 3, 2, 1};
    for (size_t r = 0; r < 8; r++) {
        double row[3] = {(double)r * 10, NAN, NAN};
        if (types[r])
            row[1] = table_intern(t, 1, types[r], strlen(types[r]));
        if (sites[r])
            row[2] = table_intern(t, 2, sites[r], strlen(sites[r]));
        table_append_row(t, row, NULL);
    }
    for (size_t r = 0; r < 8; r++) {
        const double *row = table_row(t, r);
        assert_true(row[0] == (double)r * 10);
        if (isnan(want_type[r]))
            assert_true(isnan(row[1]));
        else
            assert_true(row[1] == want_type[r]);
        if (isnan(want_site[r]))
            assert_true(isnan(row[2]));
        else
            assert_true(row[2] == want_site[r]);
    }
    const char *const *dict = table_dictionary(t, 1, &count);
    assert_int_equal(count, 3);
    assert_string_equal(dict[0], "M");
    assert_string_equal(dict[1], "L");
    assert_string_equal(dict[2], "H");
    dict = table_dictionary(t, 2, &count);
    assert_int_equal(count, 4);
    assert_string_equal(dict[0], "north");
    assert_string_equal(dict[1], "south");
    assert_string_equal(dict[2], "");
    assert_string_equal(dict[3], "east");
    assert_null(table_dictionary(t, 0, &count));
    assert_int_equal(count, 0);

    /* table_select gives the codes. */
    static const char *const pick[] = {"type"};
    double out[8];
    char err[128];
    assert_int_equal(table_select(t, pick, 1, out, err, sizeof(err)), TB_OK);
    assert_true(out[4] == 2 && isnan(out[3]));
    table_destroy(t);
}

/* s is taken as s[0..len), not up to a NUL: prefixes, strings that are not
 * NUL-terminated, and bytes after an embedded NUL all count. */
static void test_strings_compare_byte_for_byte(void **state)
{
    (void)state;
    static const char *const names[] = {"c"};
    static const bool categorical[] = {true};
    struct table *t = table_new_typed(names, categorical, 1, NULL);
    const char buf[] = {'a', 'b', 'c'};              /* no NUL */
    assert_true(table_intern(t, 0, buf, 2) == 0);    /* "ab" */
    assert_true(table_intern(t, 0, buf, 1) == 1);    /* "a" */
    assert_true(table_intern(t, 0, buf, 3) == 2);    /* "abc" */
    assert_true(table_intern(t, 0, "ab", 2) == 0);   /* "ab" again */
    assert_true(table_intern(t, 0, "AB", 2) == 3);   /* case matters */
    assert_true(table_intern(t, 0, "a\0x", 3) == 4); /* not "a" */
    assert_true(table_intern(t, 0, "a\0y", 3) == 5); /* not "a\0x" */
    assert_true(table_intern(t, 0, "a\0x", 3) == 4); /* found again */
    assert_true(table_intern(t, 0, "", 0) == 6);     /* the empty string is a category */
    size_t count = 0;
    const char *const *dict = table_dictionary(t, 0, &count);
    assert_int_equal(count, 7);
    assert_string_equal(dict[0], "ab");
    assert_string_equal(dict[1], "a");
    assert_string_equal(dict[2], "abc");
    assert_memory_equal(dict[4], "a\0x", 4); /* copied with a NUL after the bytes */
    assert_string_equal(dict[6], "");
    table_destroy(t);
}

/* 300000 draws from 60000 random strings (with many shared prefixes) give
 * codes in order of first appearance, worked out here with a first-seen array
 * rather than a hash, and every string is found again afterwards. */
static void test_many_strings_get_first_appearance_codes(void **state)
{
    (void)state;
    enum { DISTINCT = 60000, DRAWS = 300000 };
    static const char *const names[] = {"x", "id"};
    static const bool categorical[] = {false, true};
    struct table *t = table_new_typed(names, categorical, 2, NULL);
    char(*pool)[32] = mem_calloc(DISTINCT, sizeof(*pool));
    uint64_t rng = 7;
    for (size_t i = 0; i < DISTINCT; i++)
        snprintf(pool[i], sizeof(pool[i]), "machine-%" PRIu64 "-%zu", rng_splitmix64(&rng) % 1000,
                 i);
    size_t *want_code = mem_alloc(DISTINCT * sizeof(*want_code));   /* pool index -> code */
    size_t *first_seen = mem_alloc(DISTINCT * sizeof(*first_seen)); /* code -> pool index */
    size_t ncodes = 0;
    for (size_t i = 0; i < DISTINCT; i++)
        want_code[i] = SIZE_MAX;
    size_t *drawn = mem_alloc(DRAWS * sizeof(*drawn));
    for (size_t r = 0; r < DRAWS; r++) {
        size_t i = rng_splitmix64(&rng) % DISTINCT;
        drawn[r] = i;
        if (want_code[i] == SIZE_MAX) {
            want_code[i] = ncodes;
            first_seen[ncodes++] = i;
        }
        double row[2] = {(double)r, table_intern(t, 1, pool[i], strlen(pool[i]))};
        table_append_row(t, row, NULL);
    }
    for (size_t r = 0; r < DRAWS; r++) {
        if (table_row(t, r)[1] != (double)want_code[drawn[r]])
            fail_msg("row %zu ('%s'): code %g, want %zu", r, pool[drawn[r]], table_row(t, r)[1],
                     want_code[drawn[r]]);
    }
    size_t count = 0;
    const char *const *dict = table_dictionary(t, 1, &count);
    assert_int_equal(count, ncodes);
    assert_true(ncodes > DISTINCT * 9 / 10); /* most strings were drawn */
    for (size_t c = 0; c < count; c++) {
        const char *s = pool[first_seen[c]];
        assert_string_equal(dict[c], s);
        assert_true(table_intern(t, 1, s, strlen(s)) == (double)c);
    }
    size_t again = 0;
    assert_ptr_equal(table_dictionary(t, 1, &again), dict); /* nothing was added */
    assert_int_equal(again, count);
    free(drawn);
    free(first_seen);
    free(want_code);
    free(pool);
    table_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numeric_table_works_as_before),
        cmocka_unit_test(test_codes_follow_first_appearance),
        cmocka_unit_test(test_strings_compare_byte_for_byte),
        cmocka_unit_test(test_many_strings_get_first_appearance_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
