/* failpoint.c - see failpoint.h. */
#include "failpoint.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "num.h"

#define FP_MAX 8

static struct {
	char name[32];
	atomic_llong countdown; /* crash when it reaches 0 */
} points[FP_MAX];
static int npoints;
/* Workers reach failpoints from their own threads. */
static pthread_once_t points_once = PTHREAD_ONCE_INIT;

static void load(void)
{
	const char *spec = getenv("METER_TEST_FAILPOINTS");
	if (!spec || !*spec)
		return;
	char copy[512];
	snprintf(copy, sizeof(copy), "%s", spec);
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok && npoints < FP_MAX;
	     tok = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(tok, ':');
		int64_t n = 1;
		if (colon) {
			*colon = '\0';
			if (num_parse_i64(colon + 1, 1, INT64_MAX, &n) != 0)
				n = 1;
		}
		snprintf(points[npoints].name, sizeof(points[npoints].name), "%s", tok);
		points[npoints].countdown = n;
		npoints++;
	}
}

void failpoint(const char *name)
{
#ifdef METER_NO_FAILPOINTS
	/* A release build (make FAILPOINTS=0, the Docker image): no failpoint
	 * can fire, whatever the environment says. */
	(void)name;
	return;
#endif
	pthread_once(&points_once, load);
	for (int i = 0; i < npoints; i++) {
		if (strcmp(points[i].name, name) != 0)
			continue;
		if (atomic_fetch_sub(&points[i].countdown, 1) == 1) {
			log_warnx("failpoint %s reached: killing this process", name);
			kill(getpid(), SIGKILL);
			_exit(137);
		}
	}
}
