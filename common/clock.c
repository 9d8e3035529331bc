/* clock.c - see clock.h. */
#include "clock.h"

#include <stdlib.h>
#include <time.h>

#include "num.h"

int64_t clock_offset_s(void)
{
	static int loaded;
	static int64_t offset;
	if (!loaded) {
		const char *v = getenv("METER_TEST_CLOCK_OFFSET");
		int64_t s;
		if (v && num_parse_i64(v, -3153600000LL, 3153600000LL, &s) == 0)
			offset = s;
		loaded = 1;
	}
	return offset;
}

int64_t clock_wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec + clock_offset_s()) * 1000000 + ts.tv_nsec / 1000;
}

int64_t clock_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
