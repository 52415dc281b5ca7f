/* A YAML file read and parsed into one libyaml document, with errors that name the file and
 * line: what the configuration and the tune search space are read with. */
#ifndef TRIBUTARY_YAML_FILE_H
#define TRIBUTARY_YAML_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

/* Reads path and parses it into *doc, which must hold exactly one YAML document (an empty file
 * gives a document without a root node). Returns TB_OK (the caller deletes *doc with
 * yaml_document_delete), or with nothing to delete: TB_CONFIG with err "path: <why>" when the
 * file cannot be read, "path:line: YAML syntax error: ..." or "path:line: expected one YAML
 * document, found another"; TB_NOMEM when libyaml runs out of memory. */
int yaml_file_load(const char *path, yaml_document_t *doc, char *err, size_t errsz);

/* The 1-based line a node starts on. */
size_t yaml_file_line(const yaml_node_t *node);

/* Whether node is a plain scalar that YAML reads as null: `key:`, `key: ~`, `key: null`. */
bool yaml_file_is_null(const yaml_node_t *node);

#endif
