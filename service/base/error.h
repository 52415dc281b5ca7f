/* The project's one error vocabulary: status codes, their messages, and the
 * caller-supplied message buffer every fallible function writes into. */
#ifndef TRIBUTARY_ERROR_H
#define TRIBUTARY_ERROR_H

#include <stddef.h>

/* X(name, code, message): 0 is success, every failure is negative. */
#define TB_ERRORS(X)                                                                               \
    X(OK, 0, "success")                                                                            \
    X(NOMEM, -1, "out of memory")                                                                  \
    X(IO, -2, "input/output error")                                                                \
    X(USAGE, -3, "invalid usage")                                                                  \
    X(CONFIG, -4, "invalid configuration")                                                         \
    X(PARSE, -5, "malformed input")                                                                \
    X(SCHEMA, -6, "schema mismatch")                                                               \
    X(NUMERIC, -7, "numerical failure")                                                            \
    X(ARTEFACT, -8, "invalid artefact")                                                            \
    X(KAFKA, -9, "Kafka error")                                                                    \
    X(TIMEOUT, -10, "timed out")                                                                   \
    X(NOTFOUND, -11, "not found")

enum tb_status {
#define TB_ERROR_ENUM(name, code, message) TB_##name = (code),
    TB_ERRORS(TB_ERROR_ENUM)
#undef TB_ERROR_ENUM
};

/* Returns the fixed message of a status code; never NULL. */
const char *tb_strerror(int status);

/* Formats a message into err (when err is not NULL and errsz > 0). */
void tb_format(char *err, size_t errsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Returns status; what tb_fail evaluates to. */
static inline int tb_status(int status)
{
    return status;
}

/* Formats a message into err, as tb_format does, and evaluates to status, so that a failure path
 * reads `return tb_fail(err, errsz, TB_IO, ...)`. A macro, so that the static analyzers (which do
 * not follow calls to variadic functions) see which status a failure path returns. */
#define tb_fail(err, errsz, status, ...) (tb_format((err), (errsz), __VA_ARGS__), tb_status(status))

#endif
