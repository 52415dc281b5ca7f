/* Status codes to messages, and the error-buffer helper. */
#include "service/base/error.h"

#include <stdarg.h>
#include <stdio.h>

const char *tb_strerror(int status)
{
    switch (status) {
#define TB_ERROR_CASE(name, code, message)                                                         \
    case (code):                                                                                   \
        return message;
        TB_ERRORS(TB_ERROR_CASE)
#undef TB_ERROR_CASE
    }
    return "unknown error";
}

void tb_format(char *err, size_t errsz, const char *fmt, ...)
{
    if (err && errsz > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
}
