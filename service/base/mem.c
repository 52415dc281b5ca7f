/* Allocation wrappers with the project's out-of-memory policy. */
#include "service/base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The out-of-memory policy of mem.h: one line on stderr, then exit code 70. */
static _Noreturn void mem_out_of_memory(size_t size_bytes)
{
    fprintf(stderr, "tributary: out of memory allocating %zu bytes\n", size_bytes);
    exit(70);
}

void *mem_alloc(size_t size_bytes)
{
    void *p = malloc(size_bytes ? size_bytes : 1);
    if (!p)
        mem_out_of_memory(size_bytes);
    return p;
}

void *mem_calloc(size_t count, size_t size_bytes)
{
    void *p = calloc(count ? count : 1, size_bytes ? size_bytes : 1);
    if (!p)
        mem_out_of_memory(count * size_bytes);
    return p;
}

void *mem_realloc(void *ptr, size_t size_bytes)
{
    void *p = realloc(ptr, size_bytes ? size_bytes : 1);
    if (!p)
        mem_out_of_memory(size_bytes);
    return p;
}

char *mem_strdup(const char *s)
{
    return mem_strndup(s, strlen(s));
}

char *mem_strndup(const char *s, size_t len)
{
    char *p = mem_alloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void mem_grow(void **items, size_t *cap, size_t need, size_t item_size)
{
    if (need <= *cap)
        return;
    size_t next = *cap ? *cap : 8;
    while (next < need)
        next *= 2;
    *items = mem_realloc(*items, next * item_size);
    *cap = next;
}
