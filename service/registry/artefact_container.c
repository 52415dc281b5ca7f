/* The checks an artefact file's bytes pass before Avro C sees them: framing, schema, record. */
#include "service/registry/artefact_container.h"

#include "connectors/avro/avro_wire.h"
#include "service/base/error.h"
#include "service/registry/artefact_avro.h"

#include <assert.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define ARTEFACT_SYNC_BYTES 16

/* --- a cursor over the bytes, through the Avro wire readers ----------------------------------- */

/* Why a read failed, for the message. */
enum artefact_fault {
    FAULT_CUT,      /* the bytes end inside a value */
    FAULT_OVERFLOW, /* a varint whose 10th byte overflows 64 bits */
    FAULT_NEGATIVE, /* a negative length */
    FAULT_INT,      /* an int beyond 32 bits */
    FAULT_BOOLEAN,  /* a boolean byte other than 0 and 1 */
    FAULT_COUNT,    /* an array or map count beyond the bytes left */
    FAULT_ITEMS,    /* more than ARTEFACT_CONTAINER_MAX_ITEMS items in all */
};

static const char *const artefact_fault_text[] = {
    [FAULT_CUT] = "the bytes end inside a value",
    [FAULT_OVERFLOW] = "a varint that overflows 64 bits",
    [FAULT_NEGATIVE] = "a negative length",
    [FAULT_INT] = "an int beyond 32 bits",
    [FAULT_BOOLEAN] = "a boolean byte other than 0 and 1",
    [FAULT_COUNT] = "more items than bytes left",
    [FAULT_ITEMS] = "too many array and map items in all",
};

struct artefact_cursor {
    const uint8_t *p, *end;
    size_t items;              /* array and map items met so far */
    enum artefact_fault fault; /* set by the read that failed */
};

static bool cursor_fail(struct artefact_cursor *c, enum artefact_fault fault)
{
    c->fault = fault;
    return false;
}

static bool cursor_long(struct artefact_cursor *c, int64_t *value)
{
    if (avro_wire_read_long(&c->p, c->end, value) == 0)
        return true;
    /* It fails when the bytes end inside the varint or when its 10th byte overflows; only the
     * second has 10 bytes to read. */
    return cursor_fail(c, c->end - c->p < AVRO_WIRE_MAX_VARINT_BYTES ? FAULT_CUT : FAULT_OVERFLOW);
}

static bool cursor_int(struct artefact_cursor *c)
{
    int32_t value;
    int64_t wide;
    if (avro_wire_read_int(&c->p, c->end, &value) == 0)
        return true;
    return cursor_long(c, &wide) && cursor_fail(c, FAULT_INT);
}

/* Reads a length and the bytes it counts (Avro bytes or a string) without copying. */
static bool cursor_bytes(struct artefact_cursor *c, const uint8_t **data, size_t *len)
{
    int64_t n;
    if (avro_wire_read_bytes(&c->p, c->end, data, len) == 0)
        return true;
    return cursor_long(c, &n) && cursor_fail(c, n < 0 ? FAULT_NEGATIVE : FAULT_CUT);
}

static bool cursor_skip(struct artefact_cursor *c, size_t len)
{
    const uint8_t *data;
    return avro_wire_read_fixed(&c->p, c->end, len, &data) == 0 || cursor_fail(c, FAULT_CUT);
}

static bool cursor_boolean(struct artefact_cursor *c)
{
    bool value;
    if (avro_wire_read_boolean(&c->p, c->end, &value) == 0)
        return true;
    return cursor_fail(c, c->p == c->end ? FAULT_CUT : FAULT_BOOLEAN);
}

/* --- the container framing -------------------------------------------------------------------- */

/* Where the parts of a checked container lie inside the file's bytes. */
struct artefact_framing {
    const char *schema_json;
    size_t schema_len;
    const uint8_t *record;
    size_t record_len;
};

/* The message for a read that failed in part ("header" or "data block") of the container. */
static int artefact_framing_fail(const char *origin, enum artefact_fault fault, const char *part,
                                 char *err, size_t errsz)
{
    if (fault == FAULT_CUT)
        return tb_fail(err, errsz, TB_ARTEFACT, "%s: truncated Avro container (in the %s)", origin,
                       part);
    return tb_fail(err, errsz, TB_ARTEFACT, "%s: corrupt Avro container (in the %s: %s)", origin,
                   part, artefact_fault_text[fault]);
}

/* Checks the container framing that Avro C's reader trusts: magic, header map, null codec,
 * exactly one block holding exactly one record, its sync marker, and nothing after it. On
 * success fills *out with the writer schema and the record's bytes inside buf. */
static int artefact_check_framing(const char *origin, const uint8_t *buf, size_t size,
                                  struct artefact_framing *out, char *err, size_t errsz)
{
    struct artefact_cursor c = {.p = buf, .end = buf + size};
    if (size < 4 || memcmp(buf, "Obj\x01", 4) != 0)
        return tb_fail(err, errsz, TB_ARTEFACT, "%s: not an Avro container (no Obj\\x01 magic)",
                       origin);
    c.p += 4;

    out->schema_json = NULL;
    const uint8_t *codec = NULL;
    size_t codec_len = 0;
    for (;;) {
        int64_t count, block_bytes;
        if (!cursor_long(&c, &count))
            return artefact_framing_fail(origin, c.fault, "header", err, errsz);
        if (count == 0)
            break;
        if (count < 0) {
            count = count == INT64_MIN ? INT64_MAX : -count; /* runs out of bytes below */
            if (!cursor_long(&c, &block_bytes))
                return artefact_framing_fail(origin, c.fault, "header", err, errsz);
        }
        for (int64_t i = 0; i < count; i++) {
            const uint8_t *key, *value;
            size_t key_len, value_len;
            if (!cursor_bytes(&c, &key, &key_len) || !cursor_bytes(&c, &value, &value_len))
                return artefact_framing_fail(origin, c.fault, "header", err, errsz);
            if (key_len == 11 && memcmp(key, "avro.schema", 11) == 0) {
                out->schema_json = (const char *)value;
                out->schema_len = value_len;
            } else if (key_len == 10 && memcmp(key, "avro.codec", 10) == 0) {
                codec = value;
                codec_len = value_len;
            }
        }
    }
    if (!out->schema_json)
        return tb_fail(err, errsz, TB_ARTEFACT, "%s: Avro container without a schema", origin);
    if (codec && !(codec_len == 4 && memcmp(codec, "null", 4) == 0))
        return tb_fail(err, errsz, TB_ARTEFACT,
                       "%s: Avro codec '%.*s' is not supported for artefacts (only null)", origin,
                       (int)(codec_len > 32 ? 32 : codec_len), (const char *)codec);
    const uint8_t *sync = c.p;
    if (!cursor_skip(&c, ARTEFACT_SYNC_BYTES))
        return artefact_framing_fail(origin, c.fault, "header", err, errsz);

    if (c.p == c.end)
        return tb_fail(err, errsz, TB_ARTEFACT, "%s: Avro container holds no record", origin);
    int64_t records, block_bytes;
    if (!cursor_long(&c, &records) || !cursor_long(&c, &block_bytes))
        return artefact_framing_fail(origin, c.fault, "data block", err, errsz);
    if (block_bytes < 0)
        return artefact_framing_fail(origin, FAULT_NEGATIVE, "data block", err, errsz);
    if (block_bytes > c.end - c.p || c.end - c.p - block_bytes < ARTEFACT_SYNC_BYTES)
        return artefact_framing_fail(origin, FAULT_CUT, "data block", err, errsz);
    if (records != 1)
        return tb_fail(err, errsz, TB_ARTEFACT,
                       "%s: Avro container holds %" PRId64 " records in its first block; an "
                       "artefact holds exactly one",
                       origin, records);
    out->record = c.p;
    out->record_len = (size_t)block_bytes;
    c.p += block_bytes;
    if (memcmp(c.p, sync, ARTEFACT_SYNC_BYTES) != 0)
        return tb_fail(err, errsz, TB_ARTEFACT,
                       "%s: corrupt Avro container (wrong sync marker after the data block)",
                       origin);
    c.p += ARTEFACT_SYNC_BYTES;
    if (c.p != c.end)
        return tb_fail(err, errsz, TB_ARTEFACT,
                       "%s: Avro container holds more than one block; an artefact holds exactly "
                       "one record",
                       origin);
    return TB_OK;
}

/* --- the embedded schema ---------------------------------------------------------------------- */

/* Compared as JSON trees, so that Avro C never parses a schema from a file: its parser leaks
 * on some bad ones (a record name defined twice, for one). The rules are those of Avro C's
 * parser and avro_schema_equal: a type is a primitive's name, an object whose "type" names it,
 * or a union (a JSON array); records match by name, namespace, and their fields' names and types
 * in order; arrays by items and maps by values; other members (doc, logicalType, ...) do not
 * count. The artefact schema has no unions and names each record once, so a union, or a name
 * that refers to a record, never matches it. */

/* Writes why the schemas differ into why and returns false. */
static bool __attribute__((format(printf, 3, 4)))
artefact_schema_differ(char *why, size_t whysz, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(why, whysz, fmt, args);
    va_end(args);
    return false;
}

/* A record's name and namespace as Avro C resolves them: a dotted name splits at its last dot;
 * else the record's "namespace" string ("" meaning none); else the enclosing namespace. The
 * namespace is ns[0..ns_len), or none when ns is NULL; both point into the JSON. */
struct artefact_schema_name {
    const char *name;
    const char *ns;
    size_t ns_len;
};

/* Resolves the name of record node inside namespace parent; false when it has no name. */
static bool artefact_schema_name(json_t *node, const struct artefact_schema_name *parent,
                                 struct artefact_schema_name *out)
{
    const char *name = json_string_value(json_object_get(node, "name"));
    const char *ns = json_string_value(json_object_get(node, "namespace"));
    if (!name)
        return false;
    const char *dot = strrchr(name, '.');
    if (dot)
        *out = (struct artefact_schema_name){dot + 1, name, (size_t)(dot - name)};
    else if (ns)
        *out = (struct artefact_schema_name){name, ns[0] ? ns : NULL, strlen(ns)};
    else
        *out = (struct artefact_schema_name){name, parent->ns, parent->ns_len};
    return true;
}

static bool artefact_schema_name_equal(const struct artefact_schema_name *a,
                                       const struct artefact_schema_name *b)
{
    if (strcmp(a->name, b->name) != 0 || !a->ns != !b->ns)
        return false;
    return !a->ns || (a->ns_len == b->ns_len && memcmp(a->ns, b->ns, a->ns_len) == 0);
}

/* "namespace.name" for a message, cut to fit out. */
static const char *artefact_schema_full_name(const struct artefact_schema_name *n, char *out,
                                             size_t outsz)
{
    int ns_len = (int)(n->ns_len < outsz ? n->ns_len : outsz);
    snprintf(out, outsz, "%.*s%s%s", n->ns ? ns_len : 0, n->ns ? n->ns : "", n->ns ? "." : "",
             n->name);
    return out;
}

/* The type name of a schema node: a string itself, or an object's "type" string; NULL for
 * anything else. */
static const char *artefact_schema_type(json_t *node)
{
    return json_is_object(node) ? json_string_value(json_object_get(node, "type"))
                                : json_string_value(node);
}

static bool artefact_schema_same(json_t *want, const struct artefact_schema_name *want_scope,
                                 json_t *got, const struct artefact_schema_name *got_scope,
                                 const char *path, char *why, size_t whysz);

/* Compares the fields of two records whose names are equal. */
static bool artefact_schema_same_fields(json_t *want, const struct artefact_schema_name *want_name,
                                        json_t *got, const struct artefact_schema_name *got_name,
                                        const char *path, char *why, size_t whysz)
{
    json_t *want_fields = json_object_get(want, "fields"),
           *got_fields = json_object_get(got, "fields");
    if (!json_is_array(got_fields))
        return artefact_schema_differ(why, whysz, "%s: a record without fields", path);
    if (json_array_size(got_fields) != json_array_size(want_fields))
        return artefact_schema_differ(why, whysz, "%s: %zu fields instead of %zu", path,
                                      json_array_size(got_fields), json_array_size(want_fields));
    for (size_t i = 0; i < json_array_size(want_fields); i++) {
        json_t *want_field = json_array_get(want_fields, i),
               *got_field = json_array_get(got_fields, i);
        const char *name = json_string_value(json_object_get(want_field, "name"));
        if (!json_is_object(got_field))
            return artefact_schema_differ(why, whysz, "%s: field %zu is not an object", path, i);
        const char *got_field_name = json_string_value(json_object_get(got_field, "name"));
        if (!got_field_name || strcmp(got_field_name, name) != 0)
            return artefact_schema_differ(why, whysz, "%s: field %zu is %s instead of %s", path, i,
                                          got_field_name ? got_field_name : "unnamed", name);
        char field_path[256];
        snprintf(field_path, sizeof field_path, "%s.%s", path, name);
        if (!artefact_schema_same(json_object_get(want_field, "type"), want_name,
                                  json_object_get(got_field, "type"), got_name, field_path, why,
                                  whysz))
            return false;
    }
    return true;
}

/* Whether schema node got means what want means, each inside the namespace of the record named
 * by its scope; when not, writes where (path names the node) and how into why. */
static bool artefact_schema_same(json_t *want, const struct artefact_schema_name *want_scope,
                                 json_t *got, const struct artefact_schema_name *got_scope,
                                 const char *path, char *why, size_t whysz)
{
    const char *want_type = artefact_schema_type(want), *got_type = artefact_schema_type(got);
    if (!got_type)
        return artefact_schema_differ(why, whysz, "%s: %s instead of %s", path,
                                      json_is_array(got) ? "a union" : "no type", want_type);
    if (strcmp(got_type, want_type) != 0)
        return artefact_schema_differ(why, whysz, "%s: %s instead of %s", path, got_type,
                                      want_type);

    if (strcmp(want_type, "array") == 0 || strcmp(want_type, "map") == 0) {
        const char *key = want_type[0] == 'a' ? "items" : "values";
        json_t *got_child = json_object_get(got, key);
        if (!got_child)
            return artefact_schema_differ(why, whysz, "%s: %s without %s", path, want_type, key);
        char child_path[256];
        snprintf(child_path, sizeof child_path, "%s.%s", path, key);
        return artefact_schema_same(json_object_get(want, key), want_scope, got_child, got_scope,
                                    child_path, why, whysz);
    }
    if (strcmp(want_type, "record") == 0) {
        struct artefact_schema_name want_name, got_name;
        bool want_named = artefact_schema_name(want, want_scope, &want_name);
        assert(want_named && "every record of the artefact schema has a name");
        (void)want_named;
        if (!artefact_schema_name(got, got_scope, &got_name))
            return artefact_schema_differ(why, whysz, "%s: a record without a name", path);
        if (!artefact_schema_name_equal(&want_name, &got_name)) {
            char want_full[128], got_full[128];
            return artefact_schema_differ(
                why, whysz, "%s: record %s instead of %s", path,
                artefact_schema_full_name(&got_name, got_full, sizeof got_full),
                artefact_schema_full_name(&want_name, want_full, sizeof want_full));
        }
        return artefact_schema_same_fields(want, &want_name, got, &got_name, path, why, whysz);
    }
    return true; /* a primitive: its other members (a logical type, say) do not change it */
}

/* Checks that the container's schema text means the artefact schema. */
static int artefact_check_schema(const char *origin, const char *text, size_t len, char *err,
                                 size_t errsz)
{
    json_error_t jerr;
    json_t *want = NULL, *got = NULL;
    int rc = TB_OK;
    char why[512];

    want = json_loads(artefact_schema_json(), 0, &jerr);
    if (!want) {
        rc = tb_fail(err, errsz, TB_ARTEFACT, "the artefact schema is not valid JSON: %s",
                     jerr.text);
        goto done;
    }
    /* As Avro C loads schemas: any JSON value at the top, nothing after it. */
    got = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
    if (!got) {
        rc = tb_fail(err, errsz, TB_ARTEFACT,
                     "%s: the container's schema is not valid JSON (%s, at byte %d of it)", origin,
                     jerr.text, jerr.position);
        goto done;
    }
    const struct artefact_schema_name top = {0};
    if (!artefact_schema_same(want, &top, got, &top,
                              json_string_value(json_object_get(want, "name")), why, sizeof why))
        rc = tb_fail(err, errsz, TB_ARTEFACT,
                     "%s: not a tributary model artefact (its schema differs from "
                     "config/schemas/model.avsc: %s)",
                     origin, why);

done:
    json_decref(got);
    json_decref(want);
    return rc;
}

/* --- the record ------------------------------------------------------------------------------- */

/* The binary layout of one artefact record, field by field, in schema order: Avro C's decoder
 * trusts lengths and counts (a corrupt one becomes a huge allocation), so they are bounded here
 * first. Must follow artefact_schema_json; the round-trip test fails if it does not. */
enum artefact_wire {
    WIRE_STRING,
    WIRE_INT,
    WIRE_LONG,
    WIRE_DOUBLE,
    WIRE_MAP_OF_DOUBLE,
    WIRE_ARRAY_OF_STRING,
    WIRE_ARRAY_OF_DOUBLE,
    WIRE_ARRAY_OF_BOOLEAN,
    WIRE_ARRAY_OF_INT,
    WIRE_ARRAY_OF_CATEGORICAL, /* records of a string and an array of strings */
};

static const struct {
    const char *name;
    enum artefact_wire wire;
} artefact_layout[] = {
    {"manifest.name", WIRE_STRING},
    {"manifest.version", WIRE_INT},
    {"manifest.created_at", WIRE_LONG},
    {"manifest.trainer", WIRE_STRING},
    {"manifest.hyperparameters", WIRE_MAP_OF_DOUBLE},
    {"manifest.metrics", WIRE_MAP_OF_DOUBLE},
    {"manifest.features", WIRE_ARRAY_OF_STRING},
    {"manifest.label", WIRE_STRING},
    {"manifest.input_schema_fingerprint", WIRE_STRING},
    {"manifest.checksum", WIRE_STRING},
    {"pipeline.numeric", WIRE_ARRAY_OF_STRING},
    {"pipeline.categorical", WIRE_ARRAY_OF_CATEGORICAL},
    {"pipeline.impute", WIRE_STRING},
    {"pipeline.impute_value", WIRE_DOUBLE},
    {"pipeline.fill", WIRE_ARRAY_OF_DOUBLE},
    {"pipeline.indicator", WIRE_ARRAY_OF_BOOLEAN},
    {"pipeline.window", WIRE_INT},
    {"pipeline.window_stats", WIRE_ARRAY_OF_STRING},
    {"pipeline.window_columns", WIRE_ARRAY_OF_INT},
    {"pipeline.scale", WIRE_STRING},
    {"pipeline.offset", WIRE_ARRAY_OF_DOUBLE},
    {"pipeline.factor", WIRE_ARRAY_OF_DOUBLE},
    {"model.kind", WIRE_STRING},
    {"model.classes", WIRE_ARRAY_OF_DOUBLE},
    {"model.intercepts", WIRE_ARRAY_OF_DOUBLE},
    {"model.coefficients", WIRE_ARRAY_OF_DOUBLE},
};

static bool artefact_skip_blocks(struct artefact_cursor *c, enum artefact_wire wire);

/* Skips one item of an array or map of the given wire type. */
static bool artefact_skip_item(struct artefact_cursor *c, enum artefact_wire wire)
{
    const uint8_t *bytes;
    size_t len;
    switch (wire) {
    case WIRE_MAP_OF_DOUBLE:
        return cursor_bytes(c, &bytes, &len) && cursor_skip(c, 8);
    case WIRE_ARRAY_OF_STRING:
        return cursor_bytes(c, &bytes, &len);
    case WIRE_ARRAY_OF_DOUBLE:
        return cursor_skip(c, 8);
    case WIRE_ARRAY_OF_BOOLEAN:
        return cursor_boolean(c);
    case WIRE_ARRAY_OF_INT:
        return cursor_int(c);
    case WIRE_ARRAY_OF_CATEGORICAL:
        return cursor_bytes(c, &bytes, &len) && artefact_skip_blocks(c, WIRE_ARRAY_OF_STRING);
    default:
        return false;
    }
}

/* Skips one array or map of the given wire type: blocks of (count, [byte size,] items). */
static bool artefact_skip_blocks(struct artefact_cursor *c, enum artefact_wire wire)
{
    for (;;) {
        int64_t count, block_bytes;
        if (!cursor_long(c, &count))
            return false;
        if (count == 0)
            return true;
        if (count < 0) {
            if (count == INT64_MIN)
                return cursor_fail(c, FAULT_COUNT);
            if (!cursor_long(c, &block_bytes))
                return false;
            count = -count;
        }
        /* Every item takes at least one byte, so a count beyond the bytes left is corrupt. */
        if (count > c->end - c->p)
            return cursor_fail(c, FAULT_COUNT);
        c->items += (size_t)count;
        if (c->items > ARTEFACT_CONTAINER_MAX_ITEMS)
            return cursor_fail(c, FAULT_ITEMS);
        for (int64_t i = 0; i < count; i++)
            if (!artefact_skip_item(c, wire))
                return false;
    }
}

/* Walks the record's bytes along artefact_layout; TB_OK when every length and count fits and
 * the record ends exactly at the end of its block. */
static int artefact_check_record(const char *origin, const uint8_t *record, size_t len, char *err,
                                 size_t errsz)
{
    struct artefact_cursor c = {.p = record, .end = record + len};
    for (size_t i = 0; i < sizeof(artefact_layout) / sizeof(artefact_layout[0]); i++) {
        const uint8_t *bytes;
        size_t n;
        int64_t v;
        bool ok = false;
        const uint8_t *field_start = c.p;
        switch (artefact_layout[i].wire) {
        case WIRE_STRING:
            ok = cursor_bytes(&c, &bytes, &n);
            break;
        case WIRE_INT:
            ok = cursor_int(&c);
            break;
        case WIRE_LONG:
            ok = cursor_long(&c, &v);
            break;
        case WIRE_DOUBLE:
            ok = cursor_skip(&c, 8);
            break;
        default:
            ok = artefact_skip_blocks(&c, artefact_layout[i].wire);
            break;
        }
        if (!ok)
            return tb_fail(err, errsz, TB_ARTEFACT,
                           "%s: corrupt artefact record, or more than %ld items (field %s at byte "
                           "%td of the record: %s)",
                           origin, ARTEFACT_CONTAINER_MAX_ITEMS, artefact_layout[i].name,
                           field_start - record, artefact_fault_text[c.fault]);
    }
    if (c.p != c.end)
        return tb_fail(err, errsz, TB_ARTEFACT,
                       "%s: corrupt artefact record (%td bytes after its last field)", origin,
                       c.end - c.p);
    return TB_OK;
}

int artefact_container_check(const char *origin, const uint8_t *buf, size_t size,
                             const uint8_t **record, size_t *record_len, char *err, size_t errsz)
{
    struct artefact_framing framing = {0};
    int rc = artefact_check_framing(origin, buf, size, &framing, err, errsz);
    if (rc == TB_OK)
        rc = artefact_check_schema(origin, framing.schema_json, framing.schema_len, err, errsz);
    if (rc == TB_OK)
        rc = artefact_check_record(origin, framing.record, framing.record_len, err, errsz);
    if (rc == TB_OK) {
        *record = framing.record;
        *record_len = framing.record_len;
    }
    return rc;
}
