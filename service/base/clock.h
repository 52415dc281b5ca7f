/* Clocks: the monotonic one for timeouts and rates, the wall clock for
 * record timestamps. */
#ifndef TRIBUTARY_CLOCK_H
#define TRIBUTARY_CLOCK_H

#include <stdint.h>

/* Milliseconds on a clock that never jumps (for deadlines). */
int64_t clock_monotonic_ms(void);

/* Seconds, with fractions, on the same clock (for rates). */
double clock_monotonic_s(void);

/* Milliseconds since the Unix epoch (for timestamps). */
int64_t clock_wall_ms(void);

#endif
