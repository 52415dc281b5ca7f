/* The artefact file format: one Avro container file holding one record of the artefact schema,
 * written atomically, read and verified, with a checksum over the Avro encoding. */
#ifndef TRIBUTARY_ARTEFACT_AVRO_H
#define TRIBUTARY_ARTEFACT_AVRO_H

#include <stddef.h>

/* See service/registry/artefact.h, which includes this header. */
struct artefact;

/* The file format is the Avro schema of config/schemas/model.avsc; the artefact's checksum is
 * "crc32:" and 8 lowercase hex digits of the CRC-32 (zlib polynomial) of the Avro binary
 * encoding of the pipeline record followed by the model record. */

/* Returns the artefact schema (the meaning of config/schemas/model.avsc) as JSON text; static. */
const char *artefact_schema_json(void);

/* Writes the artefact to path atomically: to "path.tmp.<pid>", fsynced, renamed over path, and
 * the directory fsynced, so a reader sees the old file or the new one, never a partial one.
 * Returns TB_OK, or TB_IO / TB_ARTEFACT with a message in err; on failure no temporary file is
 * left and path is untouched. */
int artefact_write(const struct artefact *artefact, const char *path, char *err, size_t errsz);

/* Encodes the artefact as the bytes of an Avro container file (what artefact_write writes).
 * Returns TB_OK with *buf (the caller frees it with free) and *len, or TB_ARTEFACT with err. */
int artefact_encode(const struct artefact *artefact, unsigned char **buf, size_t *len, char *err,
                    size_t errsz);

/* Decodes and verifies the bytes of an artefact file, as artefact_read does; origin (a path,
 * or e.g. "models topic partition 0 offset 7") starts every message in err. */
struct artefact *artefact_decode(const void *buf, size_t len, const char *origin, char *err,
                                 size_t errsz);

/* Reads and verifies an artefact: an Avro container of the artefact schema with exactly one
 * record, a pipeline that pipeline_new accepts, a model kind this build knows, one coefficient
 * per output and feature, finite numbers, and a checksum that matches the pipeline and model
 * records. Returns a new artefact (free with artefact_destroy),
 * or NULL with a message in err that starts with path, e.g. "m.avro: checksum mismatch
 * (manifest crc32:..., content crc32:...)". */
struct artefact *artefact_read(const char *path, char *err, size_t errsz);

#endif
