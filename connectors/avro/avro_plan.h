/* Avro decoder for the record path: turns schemaless Avro binary datums of one record schema
 * into rows of doubles, through a flat decode plan built once from the schema. A column is a
 * numeric field's value, or a categorical field's index among known categories. */
#ifndef TRIBUTARY_AVRO_PLAN_H
#define TRIBUTARY_AVRO_PLAN_H

#include <stdbool.h>
#include <stddef.h>

/* Datums nested deeper than this (records, arrays, maps and unions inside one another, which
 * only a recursive schema allows in practice) are refused rather than risking the stack. */
#define AVRO_PLAN_MAX_DEPTH 512

/* An immutable decode plan; after avro_plan_new it may be shared by any number of threads. */
struct avro_plan;

/* One top-level field to extract: a column of the decoded rows. */
struct avro_plan_field {
    const char *name;
    bool required;                 /* must be present and non-null (numeric: and finite) */
    bool categorical;              /* string or enum (or a union of null with one) */
    const char *const *categories; /* categorical: the known categories, distinct */
    size_t ncategories;
};

/* Builds a decode plan for records of schema_json (an Avro record schema, NUL-terminated) that
 * extracts the top-level fields[0..nfields) into columns 0..nfields-1.
 *
 * A numeric field (int, long, float, double, boolean, or a union of null with one of those)
 * gives its value: a boolean 0 or 1, a long beyond 2^53 rounded. A categorical field (string,
 * enum, or a union of null with one of those) gives the index of its value (a string's bytes,
 * an enum's symbol) in categories, compared byte for byte, or -1 when the value is not among
 * them. Null gives NAN when the field is not required, and is refused when it is; a required
 * numeric field must also be finite (an optional one is not checked).
 *
 * Returns the plan, which the caller frees with avro_plan_destroy; or NULL with a message in err
 * naming the field, e.g. "feature 'pressure' is not in the schema of record 'Reading'",
 * "feature 'state' has type \"double\"; a categorical field must be string, enum, or a union of
 * null with one of those", "categorical field 'state': category 'OK' is listed twice"; also when
 * the schema does not parse or is not a record, or a field is listed twice. The names and
 * categories are copied, not kept. */
struct avro_plan *avro_plan_new_fields(const char *schema_json,
                                       const struct avro_plan_field *fields, size_t nfields,
                                       char *err, size_t errsz);

/* Builds a decode plan for records of schema_json (an Avro record schema, NUL-terminated) that
 * extracts the named top-level numeric fields as doubles, column j being fields[j]: a thin
 * wrapper over avro_plan_new_fields, with no categorical field.
 * fields[0..nrequired) are features: they must be present, non-null and finite in every record;
 * fields[nrequired..nfields) are optional (e.g. a label): null gives NAN (their values are not
 * checked for finiteness). A boolean reads as 0 or 1; a long beyond 2^53 is rounded.
 * Returns the codec, which the caller frees with avro_plan_destroy; or NULL, with a message in
 * err (naming the field), when the schema does not parse, is not a record, a field is absent or
 * listed twice, nrequired > nfields, or a field's type is not numeric (int, long, float,
 * double, boolean, or a union of null with one of those). The strings are not kept. */
struct avro_plan *avro_plan_new(const char *schema_json, const char *const *fields, size_t nfields,
                                size_t nrequired, char *err, size_t errsz);

/* Decodes one datum buf[0..len) into row[0..nfields). Returns TB_OK; or TB_PARSE with a short
 * reason in `reason` (byte offsets count from 0 and locate the value that could not be read),
 * e.g. "truncated at byte 17 in field 'pressure'", "union index 5 out of range in field 'rul'",
 * "enum index 9 out of range in field 'state'", "3 trailing bytes after the record", "feature
 * 'pressure' is null", "feature 'pressure' is NaN". On failure row holds partial results. Reads
 * nothing outside buf[0..len), allocates nothing, and accepts any bytes. String contents are not
 * checked to be UTF-8. */
int avro_plan_decode(const struct avro_plan *codec, const void *buf, size_t len, double *row,
                     char *reason, size_t reasonsz);

/* The number of columns a decoded row has (nfields given to avro_plan_new). */
size_t avro_plan_nfields(const struct avro_plan *codec);

/* Writes the schema's CRC-64-AVRO (Rabin) fingerprint of its Parsing Canonical Form, as in the
 * Avro 1.11 specification, into out as 16 lowercase hex digits of the 64-bit value (most
 * significant first) and a NUL. */
void avro_plan_fingerprint(const struct avro_plan *codec, char out[17]);

/* The schema's Parsing Canonical Form (the bytes the fingerprint covers); owned by the codec. */
const char *avro_plan_canonical_form(const struct avro_plan *codec);

/* Frees the codec; codec may be NULL. */
void avro_plan_destroy(struct avro_plan *codec);

#endif
