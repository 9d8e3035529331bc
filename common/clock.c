/* clock.c - see clock.h. */
#include "clock.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "num.h"

static int64_t offset_s;
static pthread_once_t offset_once = PTHREAD_ONCE_INIT;

static void load_offset(void)
{
	const char *v = getenv("METER_TEST_CLOCK_OFFSET");
	int64_t s;
	if (v && num_parse_i64(v, -3153600000LL, 3153600000LL, &s) == 0)
		offset_s = s;
}

/* Read once, by whichever thread asks first. */
int64_t clock_offset_s(void)
{
	pthread_once(&offset_once, load_offset);
	return offset_s;
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
