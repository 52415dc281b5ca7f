/* Seeded pseudo-random numbers for simulation and search: xoshiro256** (Blackman and Vigna)
 * seeded through splitmix64 (Steele, Lea and Flood). Deterministic for a seed on every platform;
 * not for cryptography. */
#ifndef TRIBUTARY_RNG_H
#define TRIBUTARY_RNG_H

#include <stdint.h>

/* A generator's whole state: a plain value the caller owns (embed it, copy it, keep it on the
 * stack), so it needs no new or destroy. Not thread-safe: one generator per thread. */
struct rng {
    uint64_t s[4];
};

/* Advances the splitmix64 state *state by one step and returns the step's output. Callers use it
 * to derive a seed from several numbers, or as a small generator of its own. */
uint64_t rng_splitmix64(uint64_t *state);

/* Sets rng to the state that seed gives: four successive rng_splitmix64 outputs of a state
 * started at seed (the all-zero state, which xoshiro cannot leave, is never reached this way but
 * is replaced by s[0] = 1 all the same). Every seed is valid. */
void rng_seed(struct rng *rng, uint64_t seed);

/* Returns the next 64 uniformly distributed bits and advances the generator. */
uint64_t rng_next(struct rng *rng);

/* Returns a double uniform on [0, 1): the top 53 bits of rng_next, times 2^-53. */
double rng_uniform(struct rng *rng);

#endif
