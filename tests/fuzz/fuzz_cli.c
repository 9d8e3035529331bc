/* fuzz_cli.c - libFuzzer harness for meterctl's command line: the whole
 * of meterctl's main() (ctl/meterctl.c, compiled with main renamed) with
 * argv from the input, words separated by NUL bytes.
 *
 * The database is unreachable on purpose (a socket directory that does not
 * exist), so a command line either fails in its parsing (exit 2, usage) or
 * gets as far as connecting (exit 1): every argument parser runs, nothing
 * is written anywhere. Skipped: check and emit (they start Kafka clients,
 * and emit reads files), and --database-url / --kafka-* / -X options (they
 * could point the tool at a real server).
 * Checked: no crash, no leak, the exit code is 0 (help), 1 or 2.
 * libFuzzer options in fuzz_cli.options silence meterctl's output.
 * Built and run by tests/fuzz/run.sh (sources in fuzz_cli.srcs).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                             \
	do {                                                                                 \
		if (!(c)) {                                                                  \
			fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__,      \
				__LINE__);                                                   \
			abort();                                                             \
		}                                                                            \
	} while (0)

#define MAX_ARGS 24

int meterctl_main(int argc, char **argv); /* ctl/meterctl.c's main */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	static const char *const unset[] = {"PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE",
					    "PGUSER", "PGSERVICE", "PGSERVICEFILE", "PGPASSFILE"};
	for (size_t i = 0; i < sizeof(unset) / sizeof(unset[0]); i++)
		unsetenv(unset[i]);
	setenv("METER_DATABASE_URL",
	       "postgresql:///nodb?host=/nonexistent-meter-fuzz&connect_timeout=1", 1);
	setenv("METER_KAFKA_BROKERS", "127.0.0.1:1", 1);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 2048)
		return 0;
	char *copy = malloc(size + 1);
	char *argv[MAX_ARGS + 2];
	int argc = 1;
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	argv[0] = "meterctl";
	for (char *p = copy; p <= copy + size && argc <= MAX_ARGS; p += strlen(p) + 1)
		argv[argc++] = p;
	argv[argc] = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "check") || !strcmp(argv[i], "emit") ||
		    !strncmp(argv[i], "--database", 10) || !strncmp(argv[i], "--kafka", 7) ||
		    !strncmp(argv[i], "-X", 2)) {
			free(copy);
			return 0;
		}
	}
	int rc = meterctl_main(argc, argv);
	CHECK(rc == 0 || rc == 1 || rc == 2);
	free(copy);
	return 0;
}
