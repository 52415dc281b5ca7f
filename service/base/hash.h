/* Hashing of byte strings for the project's hash tables. */
#ifndef TRIBUTARY_HASH_H
#define TRIBUTARY_HASH_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a over data[0..len), then a final mix so that the low bits, which pick a table slot,
 * depend on every byte. Deterministic; not for adversarial input. */
uint64_t hash_bytes(const void *data, size_t len);

#endif
