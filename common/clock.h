/* clock.h - wall and monotonic clocks, with a test-only shift.
 *
 * METER_TEST_CLOCK_OFFSET (seconds, may be negative) moves meterd's and
 * meterctl's idea of "now" - in C and, through the session setting
 * meter.clock_offset_s, in the SQL that evaluates limits and clears them at
 * period ends - so tests can cross a midnight without waiting for one. It is
 * for tests only: never set it in production. */
#ifndef METER_CLOCK_H
#define METER_CLOCK_H

#include <stdint.h>

/* Epoch microseconds, shifted by the test offset. */
int64_t clock_wall_us(void);
/* Monotonic milliseconds (never shifted). */
int64_t clock_mono_ms(void);
/* The test offset in seconds (0 unless METER_TEST_CLOCK_OFFSET is set). */
int64_t clock_offset_s(void);

#endif
