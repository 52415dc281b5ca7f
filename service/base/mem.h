/* Allocation wrappers: the one place that decides what running out of memory
 * does. tributary treats it as fatal (a message and exit code 70), because no
 * caller can make progress without memory and a half-handled batch is worse
 * than a restart that resumes from committed offsets. */
#ifndef TRIBUTARY_MEM_H
#define TRIBUTARY_MEM_H

#include <stddef.h>
#include <stdlib.h> /* free(), for everything these return */

/* Each returns a valid pointer (never NULL); the caller frees it with free(). */
void *mem_alloc(size_t size_bytes);
void *mem_calloc(size_t count, size_t size_bytes);
void *mem_realloc(void *ptr, size_t size_bytes);
char *mem_strdup(const char *s);
char *mem_strndup(const char *s, size_t len);

/* Grows *items (of item_size bytes each) so that it holds at least need items;
 * *cap is updated. Amortised doubling. */
void mem_grow(void **items, size_t *cap, size_t need, size_t item_size);

#endif
