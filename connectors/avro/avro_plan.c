/* Avro record decoder: compiles a record schema into a flat plan (read a column or skip a value,
 * per top-level field), runs it over datums, and fingerprints the schema's canonical form.
 * A categorical column maps its value to an index among known categories without allocating:
 * an enum through a symbol table built with the plan, a string through a hash of the categories. */
#include "connectors/avro/avro_plan.h"

#include "connectors/avro/avro_wire.h"
#include "service/base/error.h"
#include "service/base/mem.h"
#include "service/base/strmap.h"

#include <avro.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a node of the plan encodes; a string is bytes on the wire. */
enum avro_plan_kind {
    KIND_NULL,
    KIND_BOOLEAN,
    KIND_INT,
    KIND_LONG,
    KIND_FLOAT,
    KIND_DOUBLE,
    KIND_BYTES,
    KIND_ENUM,
    KIND_FIXED,
    KIND_RECORD,
    KIND_ARRAY,
    KIND_MAP,
    KIND_UNION,
};

/* One schema node. A named type is one node that every reference points at, so a recursive
 * schema is a cyclic graph. */
struct avro_plan_node {
    enum avro_plan_kind kind;
    int64_t width; /* bytes every value takes, when that is fixed; else -1 */
    int64_t size;  /* enum: symbol count; fixed: byte size */
    uint32_t
        first_child; /* into children[]: record fields, union branches, array items, map values */
    uint32_t nchildren;
};

/* The known categories of a categorical column, copied into the plan. */
struct plan_categories {
    char **names;         /* count, each NUL-terminated */
    size_t *lengths;      /* count: strlen of each name */
    size_t count;         /* fits in uint32_t */
    struct strmap *index; /* name -> category index */
    double *of_enum;      /* enum: symbol index -> category index, or -1 */
    int64_t nsymbols;     /* enum: the symbol count */
};

/* One top-level field, in writer order: read it into a column, or skip it. */
struct avro_plan_op {
    bool read;
    enum avro_plan_kind kind; /* read: INT, LONG, FLOAT, DOUBLE or BOOLEAN; categorical: BYTES
                                 (a string) or ENUM */
    bool nullable;            /* read: a union of null and kind */
    bool required;            /* read: a feature, which null (and for a number NaN and infinity)
                                 refuse */
    int64_t null_branch;      /* read, nullable: the union index of null (0 or 1) */
    size_t column;            /* read: row[column] */
    uint32_t node;            /* skip: what to skip */
    int64_t width;            /* skip: nodes[node].width, copied here for the fast path */
    struct plan_categories *categories; /* read: NULL for a number; else the column is an index
                                           among these */
    char *name;
};

struct avro_plan {
    struct avro_plan_op *ops; /* one per top-level field */
    size_t nops;
    size_t nfields; /* columns */
    struct avro_plan_node *nodes;
    size_t nnodes, cap_nodes;
    uint32_t *children;
    size_t nchildren, cap_children;
    uint64_t fingerprint;
    char *canonical;
};

/* ---- building the plan ---- */

/* Named schemas already compiled, so that references and recursion reuse their node. */
struct plan_names {
    avro_schema_t *schemas;
    uint32_t *nodes;
    size_t count, cap_schemas, cap_nodes;
};

static avro_schema_t plan_resolve(avro_schema_t schema)
{
    while (is_avro_link(schema))
        schema = avro_schema_link_target(schema);
    return schema;
}

static uint32_t plan_add_node(struct avro_plan *codec, enum avro_plan_kind kind, int64_t width)
{
    mem_grow((void **)&codec->nodes, &codec->cap_nodes, codec->nnodes + 1, sizeof *codec->nodes);
    struct avro_plan_node *node = &codec->nodes[codec->nnodes];
    *node = (struct avro_plan_node){.kind = kind, .width = width};
    return (uint32_t)codec->nnodes++;
}

/* Reserves n consecutive child slots for nodes[index]; they are filled as children compile. */
static void plan_add_children(struct avro_plan *codec, uint32_t index, size_t n)
{
    mem_grow((void **)&codec->children, &codec->cap_children, codec->nchildren + n,
             sizeof *codec->children);
    codec->nodes[index].first_child = (uint32_t)codec->nchildren;
    codec->nodes[index].nchildren = (uint32_t)n;
    codec->nchildren += n;
}

static void plan_remember(struct plan_names *names, avro_schema_t schema, uint32_t node)
{
    mem_grow((void **)&names->schemas, &names->cap_schemas, names->count + 1,
             sizeof *names->schemas);
    mem_grow((void **)&names->nodes, &names->cap_nodes, names->count + 1, sizeof *names->nodes);
    names->schemas[names->count] = schema;
    names->nodes[names->count] = node;
    names->count++;
}

/* Compiles schema into nodes; stores its node's index in *out. Returns TB_OK, or TB_SCHEMA with a
 * message for what the decoder cannot handle. */
static int plan_compile(struct avro_plan *codec, struct plan_names *names, avro_schema_t schema,
                        uint32_t *out, char *err, size_t errsz)
{
    schema = plan_resolve(schema);
    for (size_t i = 0; i < names->count; i++) {
        if (names->schemas[i] == schema) {
            *out = names->nodes[i];
            return TB_OK;
        }
    }
    if (codec->nnodes >= UINT32_MAX / 2 || codec->nchildren >= UINT32_MAX / 2)
        return tb_fail(err, errsz, TB_SCHEMA, "schema too large");

    uint32_t index;
    size_t n;
    avro_schema_t child;
    switch (avro_typeof(schema)) {
    case AVRO_NULL:
        *out = plan_add_node(codec, KIND_NULL, 0);
        return TB_OK;
    case AVRO_BOOLEAN:
        *out = plan_add_node(codec, KIND_BOOLEAN, -1);
        return TB_OK;
    case AVRO_INT32:
        *out = plan_add_node(codec, KIND_INT, -1);
        return TB_OK;
    case AVRO_INT64:
        *out = plan_add_node(codec, KIND_LONG, -1);
        return TB_OK;
    case AVRO_FLOAT:
        *out = plan_add_node(codec, KIND_FLOAT, 4);
        return TB_OK;
    case AVRO_DOUBLE:
        *out = plan_add_node(codec, KIND_DOUBLE, 8);
        return TB_OK;
    case AVRO_STRING:
    case AVRO_BYTES:
        *out = plan_add_node(codec, KIND_BYTES, -1);
        return TB_OK;
    case AVRO_ENUM:
        index = plan_add_node(codec, KIND_ENUM, -1);
        codec->nodes[index].size = avro_schema_enum_number_of_symbols(schema);
        plan_remember(names, schema, index);
        *out = index;
        return TB_OK;
    case AVRO_FIXED:
        if (avro_schema_fixed_size(schema) < 0)
            return tb_fail(err, errsz, TB_SCHEMA, "fixed '%s' has a negative size",
                           avro_schema_name(schema));
        index = plan_add_node(codec, KIND_FIXED, avro_schema_fixed_size(schema));
        codec->nodes[index].size = avro_schema_fixed_size(schema);
        plan_remember(names, schema, index);
        *out = index;
        return TB_OK;
    case AVRO_RECORD:
        /* Remembered before its fields compile, so that a field may refer back to it. The width
         * is worked out once the whole graph exists (plan_width). */
        index = plan_add_node(codec, KIND_RECORD, -1);
        plan_remember(names, schema, index);
        n = avro_schema_record_size(schema);
        plan_add_children(codec, index, n);
        for (size_t i = 0; i < n; i++) {
            uint32_t field;
            int status =
                plan_compile(codec, names, avro_schema_record_field_get_by_index(schema, (int)i),
                             &field, err, errsz);
            if (status != TB_OK)
                return status;
            codec->children[codec->nodes[index].first_child + i] = field;
        }
        *out = index;
        return TB_OK;
    case AVRO_ARRAY:
    case AVRO_MAP: {
        index = plan_add_node(codec, is_avro_array(schema) ? KIND_ARRAY : KIND_MAP, -1);
        plan_add_children(codec, index, 1);
        child = is_avro_array(schema) ? avro_schema_array_items(schema)
                                      : avro_schema_map_values(schema);
        uint32_t item;
        int status = plan_compile(codec, names, child, &item, err, errsz);
        if (status != TB_OK)
            return status;
        codec->children[codec->nodes[index].first_child] = item;
        *out = index;
        return TB_OK;
    }
    case AVRO_UNION:
        index = plan_add_node(codec, KIND_UNION, -1);
        n = avro_schema_union_size(schema);
        plan_add_children(codec, index, n);
        for (size_t i = 0; i < n; i++) {
            uint32_t branch;
            int status = plan_compile(codec, names, avro_schema_union_branch(schema, (int)i),
                                      &branch, err, errsz);
            if (status != TB_OK)
                return status;
            codec->children[codec->nodes[index].first_child + i] = branch;
        }
        *out = index;
        return TB_OK;
    default:
        return tb_fail(err, errsz, TB_SCHEMA, "unsupported Avro type %d", (int)avro_typeof(schema));
    }
}

/* Works out nodes[index].width for a record: the sum of its fields' widths when all are fixed.
 * visiting marks records on the current path: a record that contains itself without a union,
 * array or map in between has no finite encoding, and is left variable (-1). */
static int64_t plan_width(struct avro_plan *codec, uint32_t index, uint8_t *visiting, uint8_t *done)
{
    struct avro_plan_node *node = &codec->nodes[index];
    if (node->kind != KIND_RECORD || done[index])
        return node->width;
    if (visiting[index])
        return -1;
    visiting[index] = 1;
    int64_t width = 0;
    for (uint32_t i = 0; i < node->nchildren; i++) {
        int64_t field = plan_width(codec, codec->children[node->first_child + i], visiting, done);
        if (field < 0 || field > INT64_MAX - width) {
            width = -1;
            break;
        }
        width += field;
    }
    visiting[index] = 0;
    done[index] = 1;
    codec->nodes[index].width = width;
    return width;
}

/* Sets kind for a readable numeric primitive; false for anything else. */
static bool plan_numeric(avro_schema_t schema, enum avro_plan_kind *kind)
{
    switch (avro_typeof(schema)) {
    case AVRO_INT32:
        *kind = KIND_INT;
        return true;
    case AVRO_INT64:
        *kind = KIND_LONG;
        return true;
    case AVRO_FLOAT:
        *kind = KIND_FLOAT;
        return true;
    case AVRO_DOUBLE:
        *kind = KIND_DOUBLE;
        return true;
    case AVRO_BOOLEAN:
        *kind = KIND_BOOLEAN;
        return true;
    default:
        return false;
    }
}

/* Sets kind for a string (BYTES) or an enum; false for anything else. */
static bool plan_categorical(avro_schema_t schema, enum avro_plan_kind *kind)
{
    switch (avro_typeof(schema)) {
    case AVRO_STRING:
        *kind = KIND_BYTES;
        return true;
    case AVRO_ENUM:
        *kind = KIND_ENUM;
        return true;
    default:
        return false;
    }
}

/* Fills a read op for a field of type schema, of the kinds `readable` accepts, alone or in a
 * union with null. Returns the schema of the value read (the union's other branch), or NULL when
 * the type does not fit. */
static avro_schema_t plan_read_op(avro_schema_t schema,
                                  bool (*readable)(avro_schema_t, enum avro_plan_kind *),
                                  struct avro_plan_op *op)
{
    schema = plan_resolve(schema);
    if (readable(schema, &op->kind)) {
        op->nullable = false;
        return schema;
    }
    if (!is_avro_union(schema) || avro_schema_union_size(schema) != 2)
        return NULL;
    avro_schema_t first = plan_resolve(avro_schema_union_branch(schema, 0));
    avro_schema_t second = plan_resolve(avro_schema_union_branch(schema, 1));
    op->nullable = true;
    if (is_avro_null(first) && readable(second, &op->kind)) {
        op->null_branch = 0;
        return second;
    }
    if (is_avro_null(second) && readable(first, &op->kind)) {
        op->null_branch = 1;
        return first;
    }
    return NULL;
}

/* ---- categories ---- */

/* Returns the index of s[0..len) among the categories, or -1. Allocates nothing. */
static double category_find(const struct plan_categories *c, const char *s, size_t len)
{
    size_t k = strmap_get(c->index, s, len);
    return k != STRMAP_MISSING ? (double)k : -1;
}

static const void *category_key_of(const void *owner, size_t k, size_t *len)
{
    const struct plan_categories *c = owner;
    *len = c->lengths[k];
    return c->names[k];
}

/* Copies the categories of field `name` into op and builds their index; for an enum (value is
 * its schema) also the symbol table. Returns TB_OK, or TB_USAGE for a NULL or repeated
 * category. */
static int plan_categories_new(struct avro_plan_op *op, const char *name,
                               const struct avro_plan_field *field, avro_schema_t value, char *err,
                               size_t errsz)
{
    struct plan_categories *c = op->categories = mem_calloc(1, sizeof *c);
    size_t n = field->ncategories;
    if (n > 0 && !field->categories)
        return tb_fail(err, errsz, TB_USAGE, "categorical field '%s': categories is NULL", name);
    if (n >= UINT32_MAX / 4)
        return tb_fail(err, errsz, TB_USAGE, "categorical field '%s': %zu categories is too many",
                       name, n);
    c->names = mem_calloc(n ? n : 1, sizeof *c->names);
    c->lengths = mem_calloc(n ? n : 1, sizeof *c->lengths);
    c->index = strmap_new(category_key_of, c);
    for (size_t k = 0; k < n; k++) {
        const char *category = field->categories[k];
        if (!category)
            return tb_fail(err, errsz, TB_USAGE, "categorical field '%s': category %zu is NULL",
                           name, k);
        size_t len = strlen(category);
        if (category_find(c, category, len) >= 0)
            return tb_fail(err, errsz, TB_USAGE,
                           "categorical field '%s': category '%s' is listed twice", name, category);
        c->names[k] = mem_strdup(category);
        c->lengths[k] = len;
        c->count = k + 1;
        strmap_put(c->index, category, len, k);
    }
    if (op->kind == KIND_ENUM) {
        c->nsymbols = avro_schema_enum_number_of_symbols(value);
        c->of_enum = mem_calloc(c->nsymbols > 0 ? (size_t)c->nsymbols : 1, sizeof *c->of_enum);
        for (int64_t i = 0; i < c->nsymbols; i++) {
            const char *symbol = avro_schema_enum_get(value, (int)i);
            c->of_enum[i] = category_find(c, symbol, strlen(symbol));
        }
    }
    return TB_OK;
}

static void plan_categories_free(struct plan_categories *c)
{
    if (!c)
        return;
    free(c->of_enum);
    strmap_destroy(c->index);
    for (size_t k = 0; k < c->count; k++)
        free(c->names[k]);
    free(c->lengths);
    free(c->names);
    free(c);
}

/* ---- Parsing Canonical Form ---- */

/* Named schemas already written, so that later occurrences are written as their full name. */
struct pcf_writer {
    struct avro_wire_buf out;
    avro_schema_t *seen;
    size_t nseen, cap_seen;
};

static void pcf_text(struct pcf_writer *w, const char *text)
{
    avro_wire_put_raw(&w->out, text, strlen(text));
}

/* Writes s as the inside of a JSON string: UTF-8 is kept as it is, and only what JSON requires
 * is escaped (names cannot need it; enum symbols are not checked by Avro C). */
static void pcf_escaped(struct pcf_writer *w, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '"':
            pcf_text(w, "\\\"");
            break;
        case '\\':
            pcf_text(w, "\\\\");
            break;
        case '\b':
            pcf_text(w, "\\b");
            break;
        case '\f':
            pcf_text(w, "\\f");
            break;
        case '\n':
            pcf_text(w, "\\n");
            break;
        case '\r':
            pcf_text(w, "\\r");
            break;
        case '\t':
            pcf_text(w, "\\t");
            break;
        default:
            if (c < 0x20) {
                char escape[8];
                snprintf(escape, sizeof escape, "\\u%04x", c);
                pcf_text(w, escape);
            } else {
                avro_wire_put_raw(&w->out, &c, 1);
            }
        }
    }
}

static void pcf_string(struct pcf_writer *w, const char *s)
{
    pcf_text(w, "\"");
    pcf_escaped(w, s);
    pcf_text(w, "\"");
}

/* The full name: namespace.name, or the name alone in the null namespace. */
static void pcf_fullname(struct pcf_writer *w, avro_schema_t schema)
{
    const char *space = avro_schema_namespace(schema);
    pcf_text(w, "\"");
    if (space && *space) {
        pcf_escaped(w, space);
        pcf_text(w, ".");
    }
    pcf_escaped(w, avro_schema_name(schema));
    pcf_text(w, "\"");
}

/* Writes "name":"<fullname>", and remembers the schema as defined. Returns false when it was
 * already defined, having written its full name instead. */
static bool pcf_define(struct pcf_writer *w, avro_schema_t schema)
{
    for (size_t i = 0; i < w->nseen; i++) {
        if (w->seen[i] == schema) {
            pcf_fullname(w, schema);
            return false;
        }
    }
    mem_grow((void **)&w->seen, &w->cap_seen, w->nseen + 1, sizeof *w->seen);
    w->seen[w->nseen++] = schema;
    pcf_text(w, "{\"name\":");
    pcf_fullname(w, schema);
    return true;
}

/* Appends the canonical form of schema: primitives as bare names, named types by full name after
 * their first definition, only name/type/fields/symbols/items/values/size in that order. */
static void pcf_write(struct pcf_writer *w, avro_schema_t schema)
{
    char size[32];
    if (is_avro_link(schema)) {
        pcf_fullname(w, plan_resolve(schema));
        return;
    }
    switch (avro_typeof(schema)) {
    case AVRO_NULL:
        pcf_text(w, "\"null\"");
        break;
    case AVRO_BOOLEAN:
        pcf_text(w, "\"boolean\"");
        break;
    case AVRO_INT32:
        pcf_text(w, "\"int\"");
        break;
    case AVRO_INT64:
        pcf_text(w, "\"long\"");
        break;
    case AVRO_FLOAT:
        pcf_text(w, "\"float\"");
        break;
    case AVRO_DOUBLE:
        pcf_text(w, "\"double\"");
        break;
    case AVRO_STRING:
        pcf_text(w, "\"string\"");
        break;
    case AVRO_BYTES:
        pcf_text(w, "\"bytes\"");
        break;
    case AVRO_RECORD:
        if (!pcf_define(w, schema))
            break;
        pcf_text(w, ",\"type\":\"record\",\"fields\":[");
        for (size_t i = 0; i < avro_schema_record_size(schema); i++) {
            pcf_text(w, i ? ",{\"name\":" : "{\"name\":");
            pcf_string(w, avro_schema_record_field_name(schema, (int)i));
            pcf_text(w, ",\"type\":");
            pcf_write(w, avro_schema_record_field_get_by_index(schema, (int)i));
            pcf_text(w, "}");
        }
        pcf_text(w, "]}");
        break;
    case AVRO_ENUM:
        if (!pcf_define(w, schema))
            break;
        pcf_text(w, ",\"type\":\"enum\",\"symbols\":[");
        for (int i = 0; i < avro_schema_enum_number_of_symbols(schema); i++) {
            if (i)
                pcf_text(w, ",");
            pcf_string(w, avro_schema_enum_get(schema, i));
        }
        pcf_text(w, "]}");
        break;
    case AVRO_FIXED:
        if (!pcf_define(w, schema))
            break;
        snprintf(size, sizeof size, ",\"type\":\"fixed\",\"size\":%" PRId64 "}",
                 avro_schema_fixed_size(schema));
        pcf_text(w, size);
        break;
    case AVRO_ARRAY:
        pcf_text(w, "{\"type\":\"array\",\"items\":");
        pcf_write(w, avro_schema_array_items(schema));
        pcf_text(w, "}");
        break;
    case AVRO_MAP:
        pcf_text(w, "{\"type\":\"map\",\"values\":");
        pcf_write(w, avro_schema_map_values(schema));
        pcf_text(w, "}");
        break;
    case AVRO_UNION:
        pcf_text(w, "[");
        for (size_t i = 0; i < avro_schema_union_size(schema); i++) {
            if (i)
                pcf_text(w, ",");
            pcf_write(w, avro_schema_union_branch(schema, (int)i));
        }
        pcf_text(w, "]");
        break;
    default:
        /* Avro C has no other types (links are handled above) */
        break;
    }
}

/* Returns the canonical form of schema as a NUL-terminated string the caller frees. */
static char *pcf_new(avro_schema_t schema)
{
    struct pcf_writer w = {0};
    pcf_write(&w, schema);
    avro_wire_put_raw(&w.out, "", 1);
    free(w.seen);
    return (char *)w.out.data;
}

/* Describes a field's type for an error message: its canonical form, shortened when long. */
static void pcf_describe(avro_schema_t schema, char *out, size_t outsz)
{
    char *text = pcf_new(schema);
    if (strlen(text) > 60)
        snprintf(out, outsz, "%.57s...", text);
    else
        snprintf(out, outsz, "%s", text);
    free(text);
}

/* CRC-64-AVRO, the Rabin fingerprint of the Avro specification. */
static uint64_t pcf_fingerprint(const char *text)
{
    const uint64_t empty = UINT64_C(0xc15d213aa4d7a795);
    uint64_t table[256];
    for (unsigned i = 0; i < 256; i++) {
        uint64_t fp = i;
        for (int bit = 0; bit < 8; bit++)
            fp = (fp >> 1) ^ (empty & (0 - (fp & 1)));
        table[i] = fp;
    }
    uint64_t fp = empty;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        fp = (fp >> 8) ^ table[(fp ^ *p) & 0xff];
    return fp;
}

/* ---- public: construction ---- */

static const char *plan_type_name(avro_schema_t schema)
{
    switch (avro_typeof(plan_resolve(schema))) {
    case AVRO_RECORD:
        return "record";
    case AVRO_ENUM:
        return "enum";
    case AVRO_FIXED:
        return "fixed";
    case AVRO_ARRAY:
        return "array";
    case AVRO_MAP:
        return "map";
    case AVRO_UNION:
        return "union";
    default:
        return avro_schema_type_name(schema);
    }
}

struct avro_plan *avro_plan_new_fields(const char *schema_json,
                                       const struct avro_plan_field *fields, size_t nfields,
                                       char *err, size_t errsz)
{
    struct avro_plan *result = NULL;
    struct avro_plan *codec = NULL;
    avro_schema_t schema = NULL;
    uint8_t *visiting = NULL;
    uint8_t *done = NULL;
    struct plan_names names = {0};
    char type[80];

    if (!schema_json || (nfields && !fields)) {
        tb_fail(err, errsz, TB_USAGE, "avro_plan_new_fields: %s",
                !schema_json ? "no schema" : "fields is NULL");
        goto done;
    }
    if (avro_schema_from_json_length(schema_json, strlen(schema_json), &schema)) {
        schema = NULL;
        tb_fail(err, errsz, TB_SCHEMA, "schema does not parse: %s", avro_strerror());
        goto done;
    }
    if (!is_avro_record(schema)) {
        tb_fail(err, errsz, TB_SCHEMA, "schema is of type %s, not a record",
                plan_type_name(schema));
        goto done;
    }

    size_t nwriter = avro_schema_record_size(schema);
    for (size_t i = 0; i < nwriter; i++) {
        const char *name = avro_schema_record_field_name(schema, (int)i);
        for (size_t k = 0; k < i; k++) {
            if (strcmp(name, avro_schema_record_field_name(schema, (int)k)) == 0) {
                tb_fail(err, errsz, TB_SCHEMA, "field '%s' appears twice in the schema", name);
                goto done;
            }
        }
    }

    codec = mem_calloc(1, sizeof *codec);
    codec->nfields = nfields;
    codec->nops = nwriter;
    codec->ops = mem_calloc(nwriter ? nwriter : 1, sizeof *codec->ops);
    for (size_t j = 0; j < nfields; j++) {
        const struct avro_plan_field *field = &fields[j];
        const char *name = field->name;
        const char *role = field->required ? "feature" : "optional field";
        if (!name) {
            tb_fail(err, errsz, TB_USAGE, "field name %zu is NULL", j);
            goto done;
        }
        int index = avro_schema_record_field_get_index(schema, name);
        if (index < 0) {
            tb_fail(err, errsz, TB_SCHEMA, "%s '%s' is not in the schema of record '%s'", role,
                    name, avro_schema_name(schema));
            goto done;
        }
        if (codec->ops[index].read) {
            tb_fail(err, errsz, TB_USAGE, "field '%s' is requested twice", name);
            goto done;
        }
        avro_schema_t field_type = avro_schema_record_field_get_by_index(schema, index);
        struct avro_plan_op *op = &codec->ops[index];
        avro_schema_t value =
            plan_read_op(field_type, field->categorical ? plan_categorical : plan_numeric, op);
        if (!value) {
            pcf_describe(field_type, type, sizeof type);
            if (field->categorical)
                tb_fail(err, errsz, TB_SCHEMA,
                        "%s '%s' has type %s; a categorical field must be string, enum, or a "
                        "union of null with one of those",
                        role, name, type);
            else
                tb_fail(err, errsz, TB_SCHEMA,
                        "%s '%s' has type %s; it must be int, long, float, double, boolean, or a "
                        "union of null with one of those",
                        role, name, type);
            goto done;
        }
        op->read = true;
        op->required = field->required;
        op->column = j;
        if (field->categorical && plan_categories_new(op, name, field, value, err, errsz) != TB_OK)
            goto done;
    }

    uint32_t root;
    if (plan_compile(codec, &names, schema, &root, err, errsz) != TB_OK)
        goto done;
    visiting = mem_calloc(codec->nnodes, 1);
    done = mem_calloc(codec->nnodes, 1);
    for (uint32_t i = 0; i < codec->nnodes; i++)
        plan_width(codec, i, visiting, done);
    for (size_t i = 0; i < nwriter; i++) {
        struct avro_plan_op *op = &codec->ops[i];
        op->name = mem_strdup(avro_schema_record_field_name(schema, (int)i));
        op->node = codec->children[codec->nodes[root].first_child + i];
        op->width = codec->nodes[op->node].width;
    }

    codec->canonical = pcf_new(schema);
    codec->fingerprint = pcf_fingerprint(codec->canonical);
    result = codec;
    codec = NULL;

done:
    free(names.nodes);
    free(names.schemas);
    free(done);
    free(visiting);
    avro_plan_destroy(codec);
    if (schema)
        avro_schema_decref(schema);
    return result;
}

struct avro_plan *avro_plan_new(const char *schema_json, const char *const *fields, size_t nfields,
                                size_t nrequired, char *err, size_t errsz)
{
    if (!schema_json || (nfields && !fields) || nrequired > nfields) {
        tb_fail(err, errsz, TB_USAGE, "avro_plan_new: %s",
                !schema_json ? "no schema" : "nrequired exceeds nfields or fields is NULL");
        return NULL;
    }
    struct avro_plan_field *specs = mem_calloc(nfields ? nfields : 1, sizeof *specs);
    for (size_t j = 0; j < nfields; j++)
        specs[j] = (struct avro_plan_field){.name = fields[j], .required = j < nrequired};
    struct avro_plan *codec = avro_plan_new_fields(schema_json, specs, nfields, err, errsz);
    free(specs);
    return codec;
}

size_t avro_plan_nfields(const struct avro_plan *codec)
{
    return codec->nfields;
}

void avro_plan_fingerprint(const struct avro_plan *codec, char out[17])
{
    snprintf(out, 17, "%016" PRIx64, codec->fingerprint);
}

const char *avro_plan_canonical_form(const struct avro_plan *codec)
{
    return codec->canonical;
}

void avro_plan_destroy(struct avro_plan *codec)
{
    if (!codec)
        return;
    free(codec->canonical);
    free(codec->children);
    free(codec->nodes);
    for (size_t i = 0; i < codec->nops; i++) {
        plan_categories_free(codec->ops[i].categories);
        free(codec->ops[i].name);
    }
    free(codec->ops);
    free(codec);
}

/* ---- decoding ---- */

enum decode_failure {
    FAIL_TRUNCATED,
    FAIL_VARINT,
    FAIL_INT_RANGE,
    FAIL_LENGTH,
    FAIL_BOOLEAN,
    FAIL_UNION,
    FAIL_ENUM,
    FAIL_BLOCK_COUNT,
    FAIL_BLOCK_SIZE,
    FAIL_DEPTH,
};

/* Why and where decoding stopped; turned into words once, at the top. */
struct decode_fail {
    enum decode_failure kind;
    const uint8_t *at; /* the start of the value that could not be read */
    int64_t value;     /* the offending index, length or byte */
};

__attribute__((cold, noinline)) static int
decode_failed(struct decode_fail *fail, enum decode_failure kind, const uint8_t *at, int64_t value)
{
    fail->kind = kind;
    fail->at = at;
    fail->value = value;
    return -1;
}

/* A varint at `at` did not read: too long or overflowing needs 10 bytes, so with fewer left
 * the input ended inside it. */
__attribute__((cold, noinline)) static int decode_bad_varint(struct decode_fail *fail,
                                                             const uint8_t *at, const uint8_t *end)
{
    return decode_failed(
        fail, end - at >= AVRO_WIRE_MAX_VARINT_BYTES ? FAIL_VARINT : FAIL_TRUNCATED, at, 0);
}

__attribute__((cold, noinline)) static int decode_bad_int(struct decode_fail *fail,
                                                          const uint8_t *at, const uint8_t *end)
{
    const uint8_t *p = at;
    int64_t value;
    if (avro_wire_read_long(&p, end, &value))
        return decode_bad_varint(fail, at, end);
    return decode_failed(fail, FAIL_INT_RANGE, at, value);
}

__attribute__((cold, noinline)) static int decode_bad_bytes(struct decode_fail *fail,
                                                            const uint8_t *at, const uint8_t *end)
{
    const uint8_t *p = at;
    int64_t len;
    if (avro_wire_read_long(&p, end, &len))
        return decode_bad_varint(fail, at, end);
    return decode_failed(fail, len < 0 ? FAIL_LENGTH : FAIL_TRUNCATED, at, len);
}

__attribute__((cold, noinline)) static int decode_bad_boolean(struct decode_fail *fail,
                                                              const uint8_t *at, const uint8_t *end)
{
    return decode_failed(fail, at == end ? FAIL_TRUNCATED : FAIL_BOOLEAN, at, at == end ? 0 : *at);
}

static int decode_skip(const struct avro_plan *codec, uint32_t index, const uint8_t **pos,
                       const uint8_t *end, unsigned depth, struct decode_fail *fail);

/* Skips the blocks of an array or map. A negative count announces the block's byte size, which
 * lets the block be skipped whole. */
static int decode_skip_blocks(const struct avro_plan *codec, const struct avro_plan_node *node,
                              const uint8_t **pos, const uint8_t *end, unsigned depth,
                              struct decode_fail *fail)
{
    uint32_t item = codec->children[node->first_child];
    /* a map entry is a string key then the value, so never of fixed width */
    int64_t width = node->kind == KIND_ARRAY ? codec->nodes[item].width : -1;
    for (;;) {
        const uint8_t *at = *pos;
        int64_t count;
        if (avro_wire_read_long(pos, end, &count))
            return decode_bad_varint(fail, at, end);
        if (count == 0)
            return 0;
        if (count < 0) {
            if (count == INT64_MIN)
                return decode_failed(fail, FAIL_BLOCK_COUNT, at, count);
            const uint8_t *size_at = *pos;
            int64_t size;
            if (avro_wire_read_long(pos, end, &size))
                return decode_bad_varint(fail, size_at, end);
            if (size < 0)
                return decode_failed(fail, FAIL_BLOCK_SIZE, size_at, size);
            if ((uint64_t)size > (size_t)(end - *pos))
                return decode_failed(fail, FAIL_TRUNCATED, size_at, size);
            *pos += size;
            continue;
        }
        size_t left = (size_t)(end - *pos);
        if (width == 0)
            continue;
        if (width > 0) {
            if ((uint64_t)count > left / (uint64_t)width)
                return decode_failed(fail, FAIL_TRUNCATED, *pos, 0);
            *pos += count * width;
            continue;
        }
        /* every item takes at least one byte, so a count beyond what is left cannot be met */
        if ((uint64_t)count > left)
            return decode_failed(fail, FAIL_TRUNCATED, *pos, 0);
        for (int64_t i = 0; i < count; i++) {
            if (node->kind == KIND_MAP) {
                const uint8_t *key_at = *pos;
                const uint8_t *key;
                size_t key_len;
                if (avro_wire_read_bytes(pos, end, &key, &key_len))
                    return decode_bad_bytes(fail, key_at, end);
            }
            if (decode_skip(codec, item, pos, end, depth, fail))
                return -1;
        }
    }
}

/* Skips one value of nodes[index] at *pos. Returns 0, or -1 with fail filled in. depth counts
 * the records, arrays, maps and unions the value is inside. */
static int decode_skip(const struct avro_plan *codec, uint32_t index, const uint8_t **pos,
                       const uint8_t *end, unsigned depth, struct decode_fail *fail)
{
    const struct avro_plan_node *node = &codec->nodes[index];
    const uint8_t *at = *pos;
    if (node->width >= 0) {
        if ((uint64_t)node->width > (size_t)(end - at))
            return decode_failed(fail, FAIL_TRUNCATED, at, 0);
        *pos = at + node->width;
        return 0;
    }
    switch (node->kind) {
    case KIND_BOOLEAN: {
        bool value;
        return avro_wire_read_boolean(pos, end, &value) ? decode_bad_boolean(fail, at, end) : 0;
    }
    case KIND_INT: {
        int32_t value;
        return avro_wire_read_int(pos, end, &value) ? decode_bad_int(fail, at, end) : 0;
    }
    case KIND_LONG: {
        int64_t value;
        return avro_wire_read_long(pos, end, &value) ? decode_bad_varint(fail, at, end) : 0;
    }
    case KIND_BYTES: {
        const uint8_t *data;
        size_t len;
        return avro_wire_read_bytes(pos, end, &data, &len) ? decode_bad_bytes(fail, at, end) : 0;
    }
    case KIND_ENUM: {
        int64_t symbol;
        if (avro_wire_read_long(pos, end, &symbol))
            return decode_bad_varint(fail, at, end);
        if (symbol < 0 || symbol >= node->size)
            return decode_failed(fail, FAIL_ENUM, at, symbol);
        return 0;
    }
    default:
        break;
    }

    if (depth >= AVRO_PLAN_MAX_DEPTH)
        return decode_failed(fail, FAIL_DEPTH, at, 0);
    switch (node->kind) {
    case KIND_RECORD:
        for (uint32_t i = 0; i < node->nchildren; i++) {
            if (decode_skip(codec, codec->children[node->first_child + i], pos, end, depth + 1,
                            fail))
                return -1;
        }
        return 0;
    case KIND_ARRAY:
    case KIND_MAP:
        return decode_skip_blocks(codec, node, pos, end, depth + 1, fail);
    case KIND_UNION: {
        int64_t branch;
        if (avro_wire_read_long(pos, end, &branch))
            return decode_bad_varint(fail, at, end);
        if (branch < 0 || branch >= node->nchildren)
            return decode_failed(fail, FAIL_UNION, at, branch);
        return decode_skip(codec, codec->children[node->first_child + branch], pos, end, depth + 1,
                           fail);
    }
    default:
        /* null, float, double and fixed have a width and returned above */
        return 0;
    }
}

/* Writes the reason for fail in field `name` of a datum starting at start. */
__attribute__((cold, noinline)) static int decode_reason(const struct decode_fail *fail,
                                                         const char *name, const uint8_t *start,
                                                         char *reason, size_t reasonsz)
{
    size_t at = (size_t)(fail->at - start);
    long long value = (long long)fail->value;
    switch (fail->kind) {
    case FAIL_TRUNCATED:
        return tb_fail(reason, reasonsz, TB_PARSE, "truncated at byte %zu in field '%s'", at, name);
    case FAIL_VARINT:
        return tb_fail(reason, reasonsz, TB_PARSE,
                       "malformed varint (over 10 bytes or 64 bits) at byte %zu in field '%s'", at,
                       name);
    case FAIL_INT_RANGE:
        return tb_fail(reason, reasonsz, TB_PARSE,
                       "int %lld out of range at byte %zu in field '%s'", value, at, name);
    case FAIL_LENGTH:
        return tb_fail(reason, reasonsz, TB_PARSE, "negative length %lld at byte %zu in field '%s'",
                       value, at, name);
    case FAIL_BOOLEAN:
        return tb_fail(reason, reasonsz, TB_PARSE,
                       "invalid boolean byte 0x%02llx at byte %zu in field '%s'", value, at, name);
    case FAIL_UNION:
        return tb_fail(reason, reasonsz, TB_PARSE, "union index %lld out of range in field '%s'",
                       value, name);
    case FAIL_ENUM:
        return tb_fail(reason, reasonsz, TB_PARSE, "enum index %lld out of range in field '%s'",
                       value, name);
    case FAIL_BLOCK_COUNT:
        return tb_fail(reason, reasonsz, TB_PARSE,
                       "invalid block count %lld at byte %zu in field '%s'", value, at, name);
    case FAIL_BLOCK_SIZE:
        return tb_fail(reason, reasonsz, TB_PARSE,
                       "negative block size %lld at byte %zu in field '%s'", value, at, name);
    case FAIL_DEPTH:
        return tb_fail(reason, reasonsz, TB_PARSE,
                       "nested deeper than %d levels at byte %zu in field '%s'",
                       AVRO_PLAN_MAX_DEPTH, at, name);
    }
    return tb_fail(reason, reasonsz, TB_PARSE, "malformed at byte %zu in field '%s'", at, name);
}

int avro_plan_decode(const struct avro_plan *codec, const void *buf, size_t len, double *row,
                     char *reason, size_t reasonsz)
{
    static const uint8_t no_input[1];
    const uint8_t *start = len ? buf : no_input;
    const uint8_t *pos = start;
    const uint8_t *end = start + len;
    const struct avro_plan_op *op = codec->ops;
    const struct avro_plan_op *last = op + codec->nops;
    struct decode_fail fail;

    for (; op < last; op++) {
        const uint8_t *at = pos;
        if (!op->read) {
            if (op->width >= 0) {
                if ((uint64_t)op->width > (size_t)(end - pos)) {
                    decode_failed(&fail, FAIL_TRUNCATED, at, 0);
                    goto failed;
                }
                pos += op->width;
            } else if (decode_skip(codec, op->node, &pos, end, 0, &fail)) {
                goto failed;
            }
            continue;
        }
        if (op->nullable) {
            int64_t branch;
            if (avro_wire_read_long(&pos, end, &branch)) {
                decode_bad_varint(&fail, at, end);
                goto failed;
            }
            if (branch == op->null_branch) {
                if (op->required)
                    return tb_fail(reason, reasonsz, TB_PARSE, "feature '%s' is null", op->name);
                row[op->column] = NAN;
                continue;
            }
            if (branch != 1 - op->null_branch) {
                decode_failed(&fail, FAIL_UNION, at, branch);
                goto failed;
            }
            at = pos;
        }
        if (op->categories) {
            const struct plan_categories *categories = op->categories;
            if (op->kind == KIND_ENUM) {
                int64_t symbol;
                if (avro_wire_read_long(&pos, end, &symbol)) {
                    decode_bad_varint(&fail, at, end);
                    goto failed;
                }
                if (symbol < 0 || symbol >= categories->nsymbols) {
                    decode_failed(&fail, FAIL_ENUM, at, symbol);
                    goto failed;
                }
                row[op->column] = categories->of_enum[symbol];
            } else {
                const char *text;
                size_t text_len;
                if (avro_wire_read_string(&pos, end, &text, &text_len)) {
                    decode_bad_bytes(&fail, at, end);
                    goto failed;
                }
                row[op->column] = category_find(categories, text, text_len);
            }
            continue;
        }
        double value;
        switch (op->kind) {
        case KIND_DOUBLE:
            if (avro_wire_read_double(&pos, end, &value)) {
                decode_failed(&fail, FAIL_TRUNCATED, at, 0);
                goto failed;
            }
            break;
        case KIND_FLOAT: {
            float single;
            if (avro_wire_read_float(&pos, end, &single)) {
                decode_failed(&fail, FAIL_TRUNCATED, at, 0);
                goto failed;
            }
            value = single;
            break;
        }
        case KIND_LONG: {
            int64_t integer;
            if (avro_wire_read_long(&pos, end, &integer)) {
                decode_bad_varint(&fail, at, end);
                goto failed;
            }
            value = (double)integer;
            break;
        }
        case KIND_INT: {
            int32_t integer;
            if (avro_wire_read_int(&pos, end, &integer)) {
                decode_bad_int(&fail, at, end);
                goto failed;
            }
            value = integer;
            break;
        }
        default: {
            bool flag;
            if (avro_wire_read_boolean(&pos, end, &flag)) {
                decode_bad_boolean(&fail, at, end);
                goto failed;
            }
            value = flag;
            break;
        }
        }
        if (op->required && !isfinite(value))
            return tb_fail(reason, reasonsz, TB_PARSE, "feature '%s' is %s", op->name,
                           isnan(value) ? "NaN" : "infinite");
        row[op->column] = value;
    }
    if (pos != end) {
        size_t trailing = (size_t)(end - pos);
        return tb_fail(reason, reasonsz, TB_PARSE, "%zu trailing byte%s after the record", trailing,
                       trailing == 1 ? "" : "s");
    }
    return TB_OK;

failed:
    return decode_reason(&fail, op->name, start, reason, reasonsz);
}
