/* Reads an Avro object container file (any codec Avro C knows: null, deflate,
 * snappy, lzma) into a table of the wanted top-level numeric and categorical
 * fields, for offline training and batch scoring.
 *
 * Named avro_container_reader rather than avro_file_reader because Avro C
 * already owns that name (avro_file_reader(), avro_file_reader_t,
 * avro_file_reader_read, ...).
 *
 * Records are read with the writer's schema as they are (no reader schema,
 * no resolution). A wanted field may be an int, long, float, double or
 * boolean (false 0, true 1), or a union of those with null, where null reads
 * as NAN. A long beyond 2^53 is rounded to the nearest double. A wanted
 * categorical field may be a string or an enum (whose value is its symbol), or
 * a union of those with null, where null reads as NAN (missing). */
#ifndef TRIBUTARY_AVRO_CONTAINER_READER_H
#define TRIBUTARY_AVRO_CONTAINER_READER_H

#include "connectors/files/table.h"

#include <stddef.h>

struct avro_container_reader;

/* Opens the container at path and reads its header. Returns the reader (free
 * with avro_container_reader_destroy), or NULL with a message naming the file
 * in err ("telemetry.avro: No such file or directory", "telemetry.avro: not
 * an Avro container file", "telemetry.avro: bad Avro container header: ..."). */
struct avro_container_reader *avro_container_reader_new(const char *path, char *err, size_t errsz);

/* Returns the writer schema as JSON, NUL-terminated and owned by the reader.
 * It is Avro C's rendering of the schema (deterministic for a given schema,
 * so fit to fingerprint), not necessarily the text stored in the file. */
const char *avro_container_reader_schema_json(const struct avro_container_reader *r);

/* Reads every record into a table whose columns are the numeric
 * fields[0..nfields-1] and then the categorical categorical[0..ncategorical-1]
 * (NULL and 0 for none), in those orders, and whose per-row key, named
 * key_field, is that field's value (NULL key_field: no key). A categorical
 * column holds codes into its dictionary (see table_intern): strings in the
 * order they first appear in the file. The key field may be a string, an int
 * or a long (kept in decimal), or a union of one of those with null; a null
 * key is an error. Can be called once per reader.
 *
 * Returns TB_OK and sets *out (the caller frees it with table_destroy), or
 * sets *out to NULL, writes a message naming the file and field into err and
 * returns TB_SCHEMA ("telemetry.avro: field 'pressure' not in writer schema",
 * "telemetry.avro: field 'machine' is a string, not a number",
 * "telemetry.avro: field 'pressure' is a double, not a string or an enum"),
 * TB_PARSE (a record that cannot be decoded, a null key, a file cut short) or
 * TB_USAGE (a field wanted twice, or both as a number and as a category; a
 * second call).
 *
 * A file cut short inside a block is an error; one cut exactly between blocks
 * reads as complete (the format keeps no record count). */
int avro_container_reader_read_table(struct avro_container_reader *r, const char *const *fields,
                                     size_t nfields, const char *const *categorical,
                                     size_t ncategorical, const char *key_field, struct table **out,
                                     char *err, size_t errsz);

/* The one-call form: opens path, reads it as avro_container_reader_read_table
 * does, and closes it. When schema_json is not NULL, *schema_json receives a
 * copy of avro_container_reader_schema_json that the caller frees.
 *
 * Returns TB_OK, or the status and message of avro_container_reader_new or
 * avro_container_reader_read_table with *out (and *schema_json) set to NULL. */
int avro_container_reader_read(const char *path, const char *const *fields, size_t nfields,
                               const char *const *categorical, size_t ncategorical,
                               const char *key_field, struct table **out, char **schema_json,
                               char *err, size_t errsz);

/* Closes the file and frees the reader; accepts NULL. */
void avro_container_reader_destroy(struct avro_container_reader *r);

#endif
