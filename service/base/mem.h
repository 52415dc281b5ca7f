/* Allocation wrappers: the one place that decides what running out of memory does.
 *
 * Policy: out of memory is fatal, and it is decided here alone. A wrapper either returns memory or
 * calls mem.c's out-of-memory function, which writes one line to stderr and exits with code 70;
 * no caller checks for NULL. No caller can make progress without memory, and a half-handled batch
 * is worse than a restart that resumes from committed offsets. The attributes tell the compiler
 * as much: never NULL (returns_nonnull), the block's size (alloc_size, for bounds warnings and
 * _FORTIFY_SOURCE) and, where the block is fresh, that it aliases nothing (malloc; not on
 * mem_realloc, whose block still holds the pointers stored in it). */
#ifndef TRIBUTARY_MEM_H
#define TRIBUTARY_MEM_H

#include <stddef.h>
#include <stdlib.h> /* free(), for everything these return */

/* Each returns a valid pointer (never NULL); the caller frees it with free(). */
void *mem_alloc(size_t size_bytes) __attribute__((malloc, returns_nonnull, alloc_size(1)));
void *mem_calloc(size_t count, size_t size_bytes)
    __attribute__((malloc, returns_nonnull, alloc_size(1, 2)));
void *mem_realloc(void *ptr, size_t size_bytes) __attribute__((returns_nonnull, alloc_size(2)));
char *mem_strdup(const char *s) __attribute__((malloc, returns_nonnull));
char *mem_strndup(const char *s, size_t len) __attribute__((malloc, returns_nonnull));

/* Grows *items (of item_size bytes each) so that it holds at least need items;
 * *cap is updated. Amortised doubling. */
void mem_grow(void **items, size_t *cap, size_t need, size_t item_size);

#endif
