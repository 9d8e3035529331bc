/* failpoint.h - test-only crash points. METER_TEST_FAILPOINTS lists points
 * as name or name:N (crash the Nth time the point is reached), separated by
 * commas; reaching an armed point kills the process with SIGKILL, as a
 * kill -9 at that exact instant would. Unset (production), a failpoint is
 * one getenv at the first call and a branch after that. A release build
 * (make FAILPOINTS=0, as the Dockerfile does) compiles them out. Points:
 *   before_commit      batch staged and applied, COMMIT not yet sent
 *   after_commit       batch committed, nothing else done (flags unpublished)
 *   after_crossing_commit  the same, for a batch that recorded limit crossings
 *   after_flag_produce flags acknowledged by Kafka, outbox not yet marked */
#ifndef METER_FAILPOINT_H
#define METER_FAILPOINT_H

void failpoint(const char *name);

#endif
