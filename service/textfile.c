/* Reading whole text files. */
#include "service/textfile.h"

#include "service/error.h"
#include "service/mem.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

char *textfile_read(const char *path, size_t *len, char *err, size_t errsz)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        tb_fail(err, errsz, TB_IO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t size = 0, cap = 4096;
    char *text = mem_alloc(cap);
    size_t got;
    while ((got = fread(text + size, 1, cap - size - 1, f)) > 0) {
        size += got;
        if (cap - size - 1 == 0)
            mem_grow((void **)&text, &cap, cap * 2, 1);
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(text);
        tb_fail(err, errsz, TB_IO, "%s: read error", path);
        return NULL;
    }
    text[size] = '\0';
    if (len)
        *len = size;
    return text;
}
