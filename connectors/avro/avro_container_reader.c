/* Avro object container files to tables, through Avro C's file reader. */
#include "connectors/avro/avro_container_reader.h"

#include "service/base/error.h"
#include "service/base/mem.h"

#include <avro.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SCHEMA_JSON_MAX_BYTES = 64 * 1024 * 1024 };

struct avro_container_reader {
    char *path;
    avro_file_reader_t file;
    avro_schema_t schema; /* writer schema; our own reference */
    char *schema_json;
    bool consumed; /* read_table has run */
};

/* Renders schema as JSON into a NUL-terminated string the caller frees, or
 * returns NULL when Avro C cannot render it. */
static char *schema_to_json(avro_schema_t schema)
{
    for (size_t cap = 4096; cap <= SCHEMA_JSON_MAX_BYTES; cap *= 2) {
        char *buf = mem_alloc(cap);
        avro_writer_t w = avro_writer_memory(buf, (int64_t)cap - 1);
        if (!w) {
            free(buf);
            return NULL;
        }
        int rc = avro_schema_to_json(schema, w);
        int64_t used = avro_writer_tell(w);
        avro_writer_free(w);
        if (rc == 0) {
            buf[used] = '\0';
            return buf;
        }
        free(buf);
        if (rc != ENOSPC)
            return NULL;
    }
    return NULL;
}

/* Opens path into *out. Returns TB_OK, or TB_IO / TB_PARSE / TB_SCHEMA with
 * *out NULL and a message in err. */
static int reader_open(const char *path, struct avro_container_reader **out, char *err,
                       size_t errsz)
{
    struct avro_container_reader *r = mem_calloc(1, sizeof(*r));
    int rc = TB_OK;
    r->path = mem_strdup(path);
    /* Opened here rather than by avro_file_reader(), which leaves no message
     * when fopen fails. */
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        rc = tb_fail(err, errsz, TB_IO, "%s: %s", path, strerror(errno));
        goto done;
    }
    /* Checked here because Avro C's reader leaks when the magic is wrong, and
     * the commonest mistake (a CSV file) deserves a plain message. */
    char magic[4] = {0};
    if (fread(magic, 1, sizeof(magic), fp) != sizeof(magic) ||
        memcmp(magic, "Obj\x01", sizeof(magic)) != 0 || fseek(fp, 0, SEEK_SET) != 0) {
        fclose(fp);
        rc = tb_fail(err, errsz, TB_PARSE, "%s: not an Avro container file", path);
        goto done;
    }
    /* Takes fp over, success or not. */
    if (avro_file_reader_fp(fp, path, 1, &r->file) != 0) {
        r->file = NULL;
        rc = tb_fail(err, errsz, TB_PARSE, "%s: bad Avro container header: %s", path,
                     avro_strerror());
        goto done;
    }
    /* Avro C 1.11 returns a new reference here (older versions lent theirs). */
    r->schema = avro_file_reader_get_writer_schema(r->file);
    r->schema_json = schema_to_json(r->schema);
    if (!r->schema_json) {
        rc = tb_fail(err, errsz, TB_SCHEMA, "%s: cannot render the writer schema as JSON: %s", path,
                     avro_strerror());
        goto done;
    }
    *out = r;
    r = NULL;

done:
    avro_container_reader_destroy(r);
    return rc;
}

struct avro_container_reader *avro_container_reader_new(const char *path, char *err, size_t errsz)
{
    struct avro_container_reader *r = NULL;
    reader_open(path, &r, err, errsz);
    return r;
}

const char *avro_container_reader_schema_json(const struct avro_container_reader *r)
{
    return r->schema_json;
}

static avro_schema_t resolve_link(avro_schema_t s)
{
    while (is_avro_link(s))
        s = avro_schema_link_target(s);
    return s;
}

static bool is_number_type(avro_type_t type)
{
    return type == AVRO_INT32 || type == AVRO_INT64 || type == AVRO_FLOAT || type == AVRO_DOUBLE ||
           type == AVRO_BOOLEAN;
}

static bool is_category_type(avro_type_t type)
{
    return type == AVRO_STRING || type == AVRO_ENUM;
}

static bool is_key_type(avro_type_t type)
{
    return type == AVRO_STRING || type == AVRO_INT32 || type == AVRO_INT64;
}

/* True when s is a type accepted by ok, or a union of null and such types
 * with at least one of them. */
static bool schema_fits(avro_schema_t s, bool (*ok)(avro_type_t))
{
    s = resolve_link(s);
    if (!is_avro_union(s))
        return ok(avro_typeof(s));
    size_t n = avro_schema_union_size(s), fitting = 0;
    for (size_t i = 0; i < n; i++) {
        avro_schema_t b = resolve_link(avro_schema_union_branch(s, (int)i));
        if (ok(avro_typeof(b)))
            fitting++;
        else if (!is_avro_null(b))
            return false;
    }
    return fitting > 0;
}

static const char *type_name(avro_schema_t s)
{
    switch (avro_typeof(resolve_link(s))) {
    case AVRO_STRING:
        return "a string";
    case AVRO_BYTES:
        return "bytes";
    case AVRO_INT32:
        return "an int";
    case AVRO_INT64:
        return "a long";
    case AVRO_FLOAT:
        return "a float";
    case AVRO_DOUBLE:
        return "a double";
    case AVRO_BOOLEAN:
        return "a boolean";
    case AVRO_NULL:
        return "null";
    case AVRO_RECORD:
        return "a record";
    case AVRO_ENUM:
        return "an enum";
    case AVRO_FIXED:
        return "a fixed";
    case AVRO_MAP:
        return "a map";
    case AVRO_ARRAY:
        return "an array";
    case AVRO_UNION:
        return "a union";
    case AVRO_LINK:
        break;
    }
    return "an unknown type";
}

/* Describes s for a message: "a string", or "a union (null | string)". */
static void describe_type(avro_schema_t s, char *buf, size_t bufsz)
{
    s = resolve_link(s);
    if (!is_avro_union(s)) {
        snprintf(buf, bufsz, "%s", type_name(s));
        return;
    }
    size_t used = (size_t)snprintf(buf, bufsz, "a union (");
    size_t n = avro_schema_union_size(s);
    for (size_t i = 0; i < n && used < bufsz; i++) {
        avro_schema_t b = resolve_link(avro_schema_union_branch(s, (int)i));
        const char *name = type_name(b);
        const char *bare = strchr(name, ' '); /* drop the article */
        used += (size_t)snprintf(buf + used, bufsz - used, "%s%s", i ? " | " : "",
                                 bare ? bare + 1 : name);
    }
    if (used < bufsz)
        snprintf(buf + used, bufsz - used, ")");
}

/* Finds field name in the writer schema and checks that fits accepts it.
 * Returns TB_OK and *index, or TB_SCHEMA. */
static int find_field(const struct avro_container_reader *r, const char *name,
                      bool (*fits)(avro_type_t), const char *wanted_as, size_t *index, char *err,
                      size_t errsz)
{
    int i = avro_schema_record_field_get_index(r->schema, name);
    if (i < 0)
        return tb_fail(err, errsz, TB_SCHEMA, "%s: field '%s' not in writer schema", r->path, name);
    avro_schema_t field = avro_schema_record_field_get_by_index(r->schema, i);
    if (!schema_fits(field, fits)) {
        char type[256];
        describe_type(field, type, sizeof(type));
        return tb_fail(err, errsz, TB_SCHEMA, "%s: field '%s' is %s, not %s", r->path, name, type,
                       wanted_as);
    }
    *index = (size_t)i;
    return TB_OK;
}

/* Converts a value of a type schema_fits(.., is_number_type) accepted.
 * Returns 0 or an Avro C error code. */
static int value_to_double(avro_value_t *v, double *out)
{
    int rc = 0;
    switch (avro_value_get_type(v)) {
    case AVRO_INT32: {
        int32_t x = 0;
        rc = avro_value_get_int(v, &x);
        *out = x;
        return rc;
    }
    case AVRO_INT64: {
        int64_t x = 0;
        rc = avro_value_get_long(v, &x);
        *out = (double)x;
        return rc;
    }
    case AVRO_FLOAT: {
        float x = 0;
        rc = avro_value_get_float(v, &x);
        *out = x;
        return rc;
    }
    case AVRO_DOUBLE:
        return avro_value_get_double(v, out);
    case AVRO_BOOLEAN: {
        int x = 0;
        rc = avro_value_get_boolean(v, &x);
        *out = x ? 1.0 : 0.0;
        return rc;
    }
    case AVRO_NULL:
        *out = NAN;
        return 0;
    case AVRO_UNION: {
        avro_value_t branch;
        rc = avro_value_get_current_branch(v, &branch);
        return rc ? rc : value_to_double(&branch, out);
    }
    default:
        return EINVAL;
    }
}

/* Points *s and *len at the category of a value of a type schema_fits(..,
 * is_category_type) accepted: a string's bytes, or an enum's symbol. Returns
 * 0, ENOENT for null, or an Avro C error code. */
static int value_to_category(avro_value_t *v, const char **s, size_t *len)
{
    int rc = 0;
    switch (avro_value_get_type(v)) {
    case AVRO_STRING: {
        size_t size = 0; /* Avro C counts the NUL it adds */
        rc = avro_value_get_string(v, s, &size);
        *len = size > 0 ? size - 1 : 0;
        return rc;
    }
    case AVRO_ENUM: {
        int symbol = 0;
        rc = avro_value_get_enum(v, &symbol);
        if (rc)
            return rc;
        *s = avro_schema_enum_get(avro_value_get_schema(v), symbol);
        if (!*s)
            return EINVAL;
        *len = strlen(*s);
        return 0;
    }
    case AVRO_NULL:
        return ENOENT;
    case AVRO_UNION: {
        avro_value_t branch;
        rc = avro_value_get_current_branch(v, &branch);
        return rc ? rc : value_to_category(&branch, s, len);
    }
    default:
        return EINVAL;
    }
}

/* Sets *code to the code of the category of v in column c of t (interning it),
 * or NAN for null. Returns 0 or an Avro C error code. */
static int value_to_code(struct table *t, size_t c, avro_value_t *v, double *code)
{
    const char *s = NULL;
    size_t len = 0;
    int rc = value_to_category(v, &s, &len);
    if (rc == ENOENT) {
        *code = NAN;
        return 0;
    }
    if (rc == 0)
        *code = table_intern(t, c, s, len);
    return rc;
}

/* Writes the key value v into buf (string as is, int and long in decimal).
 * Returns 0, ENOENT for null, or an Avro C error code. *key points into buf
 * or into v's storage. */
static int value_to_key(avro_value_t *v, char *buf, size_t bufsz, const char **key)
{
    int rc = 0;
    switch (avro_value_get_type(v)) {
    case AVRO_STRING: {
        size_t size = 0;
        return avro_value_get_string(v, key, &size);
    }
    case AVRO_INT32: {
        int32_t x = 0;
        rc = avro_value_get_int(v, &x);
        snprintf(buf, bufsz, "%" PRId32, x);
        *key = buf;
        return rc;
    }
    case AVRO_INT64: {
        int64_t x = 0;
        rc = avro_value_get_long(v, &x);
        snprintf(buf, bufsz, "%" PRId64, x);
        *key = buf;
        return rc;
    }
    case AVRO_NULL:
        return ENOENT;
    case AVRO_UNION: {
        avro_value_t branch;
        rc = avro_value_get_current_branch(v, &branch);
        return rc ? rc : value_to_key(&branch, buf, bufsz, key);
    }
    default:
        return EINVAL;
    }
}

/* Checks that no field is wanted twice. Returns TB_OK or TB_USAGE. */
static int check_wanted(const struct avro_container_reader *r, const char *const *names,
                        size_t nnumeric, size_t ncols, char *err, size_t errsz)
{
    for (size_t j = 0; j < ncols; j++) {
        for (size_t k = 0; k < j; k++) {
            if (strcmp(names[j], names[k]) != 0)
                continue;
            if (k < nnumeric && j >= nnumeric)
                return tb_fail(err, errsz, TB_USAGE,
                               "%s: field '%s' is wanted both as a number and as a category",
                               r->path, names[j]);
            return tb_fail(err, errsz, TB_USAGE, "%s: field '%s' is wanted twice", r->path,
                           names[j]);
        }
    }
    return TB_OK;
}

int avro_container_reader_read_table(struct avro_container_reader *r, const char *const *fields,
                                     size_t nfields, const char *const *categorical,
                                     size_t ncategorical, const char *key_field, struct table **out,
                                     char *err, size_t errsz)
{
    size_t ncols = nfields + ncategorical;
    const char **names = NULL; /* the numeric fields, then the categorical ones */
    bool *is_categorical = NULL;
    size_t *index = NULL; /* writer-schema field index of each column */
    size_t key_index = 0;
    double *row = NULL;
    struct table *t = NULL;
    avro_value_iface_t *iface = NULL;
    avro_value_t record;
    bool have_record = false;
    int rc = TB_OK;

    *out = NULL;
    if (r->consumed) {
        rc = tb_fail(err, errsz, TB_USAGE, "%s: already read; open it again to reread", r->path);
        goto done;
    }
    r->consumed = true;
    if ((nfields > 0 && !fields) || (ncategorical > 0 && !categorical)) {
        rc = tb_fail(err, errsz, TB_USAGE, "%s: a field list is NULL but its count is not 0",
                     r->path);
        goto done;
    }
    if (!is_avro_record(r->schema)) {
        char type[256];
        describe_type(r->schema, type, sizeof(type));
        rc = tb_fail(err, errsz, TB_SCHEMA, "%s: writer schema is %s, not a record", r->path, type);
        goto done;
    }
    names = mem_calloc(ncols, sizeof(*names));
    is_categorical = mem_calloc(ncols, sizeof(*is_categorical));
    for (size_t j = 0; j < ncols; j++) {
        names[j] = j < nfields ? fields[j] : categorical[j - nfields];
        is_categorical[j] = j >= nfields;
    }
    rc = check_wanted(r, names, nfields, ncols, err, errsz);
    if (rc < 0)
        goto done;
    index = mem_calloc(ncols, sizeof(*index));
    for (size_t j = 0; j < ncols; j++) {
        if (is_categorical[j])
            rc = find_field(r, names[j], is_category_type, "a string or an enum", &index[j], err,
                            errsz);
        else
            rc = find_field(r, names[j], is_number_type, "a number", &index[j], err, errsz);
        if (rc < 0)
            goto done;
    }
    if (key_field) {
        rc = find_field(r, key_field, is_key_type, "a string", &key_index, err, errsz);
        if (rc < 0)
            goto done;
    }

    iface = avro_generic_class_from_schema(r->schema);
    if (!iface || avro_generic_value_new(iface, &record) != 0) {
        rc = tb_fail(err, errsz, TB_SCHEMA, "%s: cannot build a reader for the writer schema: %s",
                     r->path, avro_strerror());
        goto done;
    }
    have_record = true;
    t = table_new_typed(names, is_categorical, ncols, key_field);
    row = mem_calloc(ncols, sizeof(*row));
    size_t n = 1; /* number of the record being read, for messages */
    int arc;
    for (; (arc = avro_file_reader_read_value(r->file, &record)) == 0; n++) {
        for (size_t j = 0; j < ncols; j++) {
            avro_value_t v;
            int vrc = avro_value_get_by_index(&record, index[j], &v, NULL);
            if (vrc == 0)
                vrc = is_categorical[j] ? value_to_code(t, j, &v, &row[j])
                                        : value_to_double(&v, &row[j]);
            if (vrc != 0) {
                rc = tb_fail(err, errsz, TB_PARSE, "%s: record %zu: field '%s': %s", r->path, n,
                             names[j], avro_strerror());
                goto done;
            }
        }
        const char *key = NULL;
        char digits[32]; /* an int or long key in decimal; key may point here */
        if (key_field) {
            avro_value_t v;
            int krc = avro_value_get_by_index(&record, key_index, &v, NULL);
            if (krc == 0)
                krc = value_to_key(&v, digits, sizeof(digits), &key);
            if (krc == ENOENT) {
                rc = tb_fail(err, errsz, TB_PARSE, "%s: record %zu: field '%s' is null", r->path, n,
                             key_field);
                goto done;
            }
            if (krc != 0) {
                rc = tb_fail(err, errsz, TB_PARSE, "%s: record %zu: field '%s': %s", r->path, n,
                             key_field, avro_strerror());
                goto done;
            }
        }
        table_append_row(t, row, key);
    }
    /* Avro C returns EOF where the next block would start; anything else is a
     * file cut short or corrupt. */
    if (arc != EOF) {
        rc = tb_fail(err, errsz, TB_PARSE, "%s: record %zu: %s", r->path, n, avro_strerror());
        goto done;
    }
    *out = t;
    t = NULL;

done:
    table_destroy(t);
    free(row);
    if (have_record)
        avro_value_decref(&record);
    if (iface)
        avro_value_iface_decref(iface);
    free(index);
    free(is_categorical);
    free(names);
    return rc;
}

int avro_container_reader_read(const char *path, const char *const *fields, size_t nfields,
                               const char *const *categorical, size_t ncategorical,
                               const char *key_field, struct table **out, char **schema_json,
                               char *err, size_t errsz)
{
    struct avro_container_reader *r = NULL;
    *out = NULL;
    if (schema_json)
        *schema_json = NULL;
    int rc = reader_open(path, &r, err, errsz);
    if (rc == TB_OK)
        rc = avro_container_reader_read_table(r, fields, nfields, categorical, ncategorical,
                                              key_field, out, err, errsz);
    if (rc == TB_OK && schema_json)
        *schema_json = mem_strdup(r->schema_json);
    avro_container_reader_destroy(r);
    return rc;
}

void avro_container_reader_destroy(struct avro_container_reader *r)
{
    if (!r)
        return;
    free(r->schema_json);
    if (r->schema)
        avro_schema_decref(r->schema);
    if (r->file)
        avro_file_reader_close(r->file);
    free(r->path);
    free(r);
}
