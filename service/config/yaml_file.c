/* A YAML file read and parsed into one libyaml document. */
#include "service/config/yaml_file.h"

#include "service/base/error.h"
#include "service/base/mem.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Formats libyaml's error as "file:line: YAML syntax error: ...". */
static int yaml_file_error(const yaml_parser_t *parser, const char *file, char *err, size_t errsz)
{
    const char *problem = parser->problem ? parser->problem : "unknown problem";
    if (parser->error == YAML_MEMORY_ERROR)
        return tb_fail(err, errsz, TB_NOMEM, "%s: out of memory parsing YAML", file);
    if (parser->error == YAML_READER_ERROR)
        return tb_fail(err, errsz, TB_CONFIG, "%s: YAML syntax error: %s at byte %zu", file,
                       problem, parser->problem_offset);
    return tb_fail(err, errsz, TB_CONFIG, "%s:%zu: YAML syntax error: %s%s%s", file,
                   parser->problem_mark.line + 1, problem, parser->context ? " " : "",
                   parser->context ? parser->context : "");
}

/* Reads the whole file at path into *text (NUL-terminated, the caller frees it). */
static int yaml_file_read(const char *path, char **text, size_t *len, char *err, size_t errsz)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = TB_OK;
    if (!f)
        return tb_fail(err, errsz, TB_CONFIG, "%s: %s", path, strerror(errno));
    for (;;) {
        mem_grow((void **)&buf, &cap, n + 4096 + 1, 1);
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        rc = tb_fail(err, errsz, TB_CONFIG, "%s: %s", path, strerror(errno));
        goto done;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    buf = NULL;
done:
    free(buf);
    fclose(f);
    return rc;
}

int yaml_file_load(const char *path, yaml_document_t *doc, char *err, size_t errsz)
{
    char *text = NULL;
    size_t len = 0;
    yaml_parser_t parser;
    bool parser_ready = false, doc_ready = false;
    yaml_document_t next;
    int rc = yaml_file_read(path, &text, &len, err, errsz);
    if (rc != TB_OK)
        goto done;
    if (!yaml_parser_initialize(&parser)) {
        rc = tb_fail(err, errsz, TB_NOMEM, "%s: out of memory parsing YAML", path);
        goto done;
    }
    parser_ready = true;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    /* On failure yaml_parser_load frees the document itself. */
    if (!yaml_parser_load(&parser, doc)) {
        rc = yaml_file_error(&parser, path, err, errsz);
        goto done;
    }
    doc_ready = true;
    if (!yaml_document_get_root_node(doc))
        goto done;
    if (!yaml_parser_load(&parser, &next)) {
        rc = yaml_file_error(&parser, path, err, errsz);
        goto done;
    }
    if (yaml_document_get_root_node(&next))
        rc = tb_fail(err, errsz, TB_CONFIG, "%s:%zu: expected one YAML document, found another",
                     path, next.start_mark.line + 1);
    yaml_document_delete(&next);
done:
    if (rc != TB_OK && doc_ready)
        yaml_document_delete(doc);
    if (parser_ready)
        yaml_parser_delete(&parser);
    free(text);
    return rc;
}

size_t yaml_file_line(const yaml_node_t *node)
{
    return node->start_mark.line + 1;
}

bool yaml_file_is_null(const yaml_node_t *node)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
        if (strcmp((const char *)node->data.scalar.value, nulls[i]) == 0)
            return true;
    return false;
}
