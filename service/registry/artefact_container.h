/* Checks the bytes of an artefact file before Avro C decodes any of them: the container framing,
 * the schema embedded in its header, and every length and count of its one record. Avro C's
 * decoder trusts lengths (a corrupt one becomes a huge allocation) and its schema parser leaks
 * on some bad schemas, so neither sees bytes that have not passed these checks. */
#ifndef TRIBUTARY_ARTEFACT_CONTAINER_H
#define TRIBUTARY_ARTEFACT_CONTAINER_H

#include <stddef.h>
#include <stdint.h>

/* Refuse records with more array and map items than this in all, before Avro C decodes them:
 * its generic values take about a hundred bytes per item, whatever the item's own size. A model
 * of 1000 classes over 4000 features is within it. */
#define ARTEFACT_CONTAINER_MAX_ITEMS (1L << 22)

/* Checks that buf[0..size) is an Avro object container file of exactly one block holding
 * exactly one record, with the null codec, nothing after the block, an embedded schema that
 * means what artefact_schema_json means (as Avro C's avro_schema_equal would judge after parsing
 * both: names, namespaces, fields and types count; docs, logical types and spelling do not), and
 * a record whose lengths, counts, ints and booleans are well formed for that schema and end
 * exactly at the end of the block.
 *
 * Returns TB_OK with *record and *record_len set to the record's bytes inside buf, or
 * TB_ARTEFACT with a message in err that starts with origin and says what is wrong: "truncated
 * Avro container (in the header)", "corrupt Avro container (a varint in the data block
 * overflows 64 bits)", "the container's schema is not valid JSON (...)", "not a tributary model
 * artefact (its schema differs from config/schemas/model.avsc: Artefact.manifest.created_at:
 * int instead of long)", "corrupt artefact record, or more than 4194304 items (field
 * manifest.name at byte 0 of the record: a negative length)", ... */
int artefact_container_check(const char *origin, const uint8_t *buf, size_t size,
                             const uint8_t **record, size_t *record_len, char *err, size_t errsz);

#endif
