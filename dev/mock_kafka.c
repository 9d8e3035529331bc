/*
 * mock_kafka - a local Kafka-protocol cluster for tests and the demo.
 *
 * Wraps librdkafka's built-in mock cluster (rdkafka_mock.h): N brokers on
 * 127.0.0.1 with random ports, real protocol over TCP, consumer groups,
 * error injection. Not a real broker: no compaction, each partition keeps
 * only the newest ~5 MB (or 100000 batches) of log, and the API is marked
 * experimental by librdkafka.
 *
 *   mock_kafka [--brokers N] [--topic NAME:PARTITIONS]... [--ctl FIFO]
 *              [--ready-file PATH]
 *
 * Prints one line "bootstrap=HOST:PORT,..." on stdout (and writes the
 * bootstrap string to --ready-file via rename), then runs until SIGTERM or
 * SIGINT. With --ctl, reads one command per line from the FIFO (see
 * ctl_usage below), logs each outcome to stderr and appends
 * "ok <command>" or "err <command>: <why>" to FIFO.log.
 *
 * Exit codes: 0 clean shutdown, 1 runtime failure, 2 usage error.
 *
 * What the librdkafka 2.0.2 mock does that a real broker would not (seen in
 * testing; mind them when writing tests):
 *  - Consumer groups: the first join waits 3 s. After the last member leaves,
 *    and whenever a member joins a group that is already up (a second
 *    worker whose join missed those 3 s), the group waits
 *    session.timeout.ms - 1 s (44 s with the default 45 s) before it
 *    assigns again, even once every member has rejoined; so dev/env.sh
 *    exports session.timeout.ms 6000 for meterd. Members of one
 *    group must list the same assignment strategy first, or the whole
 *    process aborts on an assertion (rdkafka_mock_cgrp.c). A member that
 *    vanishes without LeaveGroup stays until its session times out.
 *  - push-errors is honoured by Produce, Fetch, ListOffsets, OffsetCommit,
 *    OffsetFetch, FindCoordinator, JoinGroup, Heartbeat, SyncGroup and
 *    InitProducerId, but not by Metadata: use topic-error for that. Errors
 *    are cluster-wide and consumed by the next matching requests, whichever
 *    client sends them.
 *  - broker-down closes the listener (connection refused) and broker-up
 *    listens again on the same port; neither moves partition leadership
 *    (use "leader").
 *  - Ports are random on every start.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MAX_TOPICS 64
#define MAX_ARGS 32    /* words in one control command */
#define LINE_MAX_LEN 1024

static const char *ctl_usage =
    "broker-down ID | broker-up ID | rtt ID MS | "
    "push-errors APIKEY ERR [ERR...] | clear-errors APIKEY | "
    "topic-error TOPIC ERR | coordinator group|transaction KEY BROKERID | "
    "leader TOPIC PARTITION BROKERID | create-topic NAME PARTITIONS";

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
        (void)sig;
        stop_requested = 1;
}

/* Logs one line to stderr, prefixed with the wall-clock time (to line up
 * with the logs of the programs under test). */
__attribute__((format(printf, 1, 2))) static void logx(const char *fmt, ...) {
        struct timespec ts;
        struct tm tm;
        va_list ap;

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        fprintf(stderr, "%02d:%02d:%02d.%03ldZ mock_kafka: ", tm.tm_hour,
                tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
}

/* Parses a whole decimal integer within [min, max]; 0 on success, -1 on
 * garbage, trailing characters or out-of-range values. */
static int parse_long(const char *s, long min, long max, long *out) {
        char *end;
        long v;

        if (!s || !*s)
                return -1;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || *end || v < min || v > max)
                return -1;
        *out = v;
        return 0;
}

/* Protocol request types by name, for push-errors/clear-errors. */
static const struct {
        const char *name;
        int16_t key;
} api_names[] = {
    {"Produce", 0},          {"Fetch", 1},
    {"ListOffsets", 2},      {"Metadata", 3},
    {"OffsetCommit", 8},     {"OffsetFetch", 9},
    {"FindCoordinator", 10}, {"JoinGroup", 11},
    {"Heartbeat", 12},       {"LeaveGroup", 13},
    {"SyncGroup", 14},       {"DescribeGroups", 15},
    {"ListGroups", 16},      {"ApiVersions", 18},
    {"InitProducerId", 22},  {"AddPartitionsToTxn", 24},
    {"AddOffsetsToTxn", 25}, {"EndTxn", 26},
    {"TxnOffsetCommit", 28},
};

/* APIKEY: a name above (case-insensitive) or a number 0..999. */
static int parse_apikey(const char *s, int16_t *out) {
        long v;
        size_t i;

        for (i = 0; i < sizeof(api_names) / sizeof(api_names[0]); i++) {
                if (!strcasecmp(s, api_names[i].name)) {
                        *out = api_names[i].key;
                        return 0;
                }
        }
        if (parse_long(s, 0, 999, &v) == -1)
                return -1;
        *out = (int16_t)v;
        return 0;
}

/* ERRCODE: a number, or a librdkafka error name with or without the
 * RD_KAFKA_RESP_ERR_ prefix (NOT_COORDINATOR, _TRANSPORT, NO_ERROR).
 * Only codes librdkafka knows by name are accepted. */
static int parse_errcode(const char *s, rd_kafka_resp_err_t *out) {
        const struct rd_kafka_err_desc *descs;
        size_t cnt, i;
        long v;
        int numeric;

        if (!strncasecmp(s, "RD_KAFKA_RESP_ERR_", 18))
                s += 18;
        numeric = parse_long(s, INT_MIN, INT_MAX, &v) == 0;

        rd_kafka_get_err_descs(&descs, &cnt);
        for (i = 0; i < cnt; i++) {
                if (!descs[i].name)
                        continue;
                if (numeric ? descs[i].code == v
                            : !strcasecmp(s, descs[i].name)) {
                        *out = descs[i].code;
                        return 0;
                }
        }
        return -1;
}

static int broker_cnt = 3;

/* Creates a topic with replication factor min(3, brokers): realistic
 * metadata; the mock keeps a single log per partition whatever the factor,
 * and taking a broker down does not move leadership. */
static rd_kafka_resp_err_t create_topic(rd_kafka_mock_cluster_t *mc,
                                       const char *name, int partitions) {
        return rd_kafka_mock_topic_create(mc, name, partitions,
                                          broker_cnt < 3 ? broker_cnt : 3);
}

/* Appends one acknowledgement line to the control log; best effort. */
static void ack(const char *log_path, const char *line) {
        FILE *fp;

        if (!log_path)
                return;
        if (!(fp = fopen(log_path, "a"))) {
                logx("cannot append to %s: %s", log_path, strerror(errno));
                return;
        }
        fprintf(fp, "%s\n", line);
        fclose(fp);
}

/* Runs one control command (argv borrowed). Returns 0, or -1 with the reason
 * in errstr. */
static int run_command(rd_kafka_mock_cluster_t *mc, int argc, char **argv,
                       char *errstr, size_t errstr_size) {
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        const char *cmd = argv[0];
        long id, n, part;
        int16_t apikey;

#define NEED(cnt, what)                                                         \
        do {                                                                    \
                if (argc != (cnt)) {                                            \
                        snprintf(errstr, errstr_size, "usage: %s %s", cmd,      \
                                 what);                                         \
                        return -1;                                              \
                }                                                               \
        } while (0)
#define BAD(...)                                                                \
        do {                                                                    \
                snprintf(errstr, errstr_size, __VA_ARGS__);                     \
                return -1;                                                      \
        } while (0)

        if (!strcmp(cmd, "broker-down") || !strcmp(cmd, "broker-up")) {
                NEED(2, "ID (or -1 for all)");
                if (parse_long(argv[1], -1, INT32_MAX, &id) == -1)
                        BAD("bad broker id '%s'", argv[1]);
                if (!strcmp(cmd, "broker-down"))
                        err = rd_kafka_mock_broker_set_down(mc, (int32_t)id);
                else
                        err = rd_kafka_mock_broker_set_up(mc, (int32_t)id);

        } else if (!strcmp(cmd, "rtt")) {
                NEED(3, "ID MS");
                if (parse_long(argv[1], -1, INT32_MAX, &id) == -1)
                        BAD("bad broker id '%s'", argv[1]);
                if (parse_long(argv[2], 0, 3600 * 1000, &n) == -1)
                        BAD("bad rtt '%s' (0..3600000 ms)", argv[2]);
                err = rd_kafka_mock_broker_set_rtt(mc, (int32_t)id, (int)n);

        } else if (!strcmp(cmd, "push-errors")) {
                rd_kafka_resp_err_t errs[MAX_ARGS];
                int i;

                if (argc < 3)
                        NEED(3, "APIKEY ERRCODE [ERRCODE...]");
                if (parse_apikey(argv[1], &apikey) == -1)
                        BAD("unknown api key '%s'", argv[1]);
                for (i = 2; i < argc; i++)
                        if (parse_errcode(argv[i], &errs[i - 2]) == -1)
                                BAD("unknown error code '%s'", argv[i]);
                rd_kafka_mock_push_request_errors_array(mc, apikey,
                                                        (size_t)(argc - 2), errs);

        } else if (!strcmp(cmd, "clear-errors")) {
                NEED(2, "APIKEY");
                if (parse_apikey(argv[1], &apikey) == -1)
                        BAD("unknown api key '%s'", argv[1]);
                rd_kafka_mock_clear_request_errors(mc, apikey);

        } else if (!strcmp(cmd, "topic-error")) {
                rd_kafka_resp_err_t terr;

                NEED(3, "TOPIC ERRCODE (NO_ERROR clears)");
                if (parse_errcode(argv[2], &terr) == -1)
                        BAD("unknown error code '%s'", argv[2]);
                rd_kafka_mock_topic_set_error(mc, argv[1], terr);

        } else if (!strcmp(cmd, "coordinator")) {
                NEED(4, "group|transaction KEY BROKERID");
                if (strcmp(argv[1], "group") && strcmp(argv[1], "transaction"))
                        BAD("key type must be 'group' or 'transaction'");
                if (parse_long(argv[3], 0, INT32_MAX, &id) == -1)
                        BAD("bad broker id '%s'", argv[3]);
                err = rd_kafka_mock_coordinator_set(mc, argv[1], argv[2],
                                                    (int32_t)id);

        } else if (!strcmp(cmd, "leader")) {
                NEED(4, "TOPIC PARTITION BROKERID (-1 for none)");
                if (parse_long(argv[2], 0, INT32_MAX, &part) == -1)
                        BAD("bad partition '%s'", argv[2]);
                if (parse_long(argv[3], -1, INT32_MAX, &id) == -1)
                        BAD("bad broker id '%s'", argv[3]);
                err = rd_kafka_mock_partition_set_leader(mc, argv[1], (int32_t)part,
                                                         (int32_t)id);

        } else if (!strcmp(cmd, "create-topic")) {
                NEED(3, "NAME PARTITIONS");
                if (parse_long(argv[2], 1, 10000, &n) == -1)
                        BAD("bad partition count '%s' (1..10000)", argv[2]);
                err = create_topic(mc, argv[1], (int)n);

        } else {
                BAD("unknown command (commands: %s)", ctl_usage);
        }
#undef NEED
#undef BAD

        if (err) {
                snprintf(errstr, errstr_size, "%s", rd_kafka_err2str(err));
                return -1;
        }
        return 0;
}

/* Splits one line into words, runs it, logs and acknowledges the outcome.
 * The acknowledgement echoes the words joined by single spaces. */
static void handle_line(rd_kafka_mock_cluster_t *mc, const char *log_path,
                        char *line) {
        char *argv[MAX_ARGS + 1];
        char echo[LINE_MAX_LEN + 1] = "";
        char errstr[512] = "";
        char out[LINE_MAX_LEN + sizeof(errstr) + 16];
        int argc = 0;
        char *tok, *save = NULL;

        for (tok = strtok_r(line, " \t\r", &save); tok;
             tok = strtok_r(NULL, " \t\r", &save)) {
                if (argc == MAX_ARGS) {
                        snprintf(errstr, sizeof(errstr), "more than %d words",
                                 MAX_ARGS);
                        break;
                }
                argv[argc++] = tok;
                if (argc > 1)
                        strncat(echo, " ", sizeof(echo) - strlen(echo) - 1);
                strncat(echo, tok, sizeof(echo) - strlen(echo) - 1);
        }
        if (argc == 0 || argv[0][0] == '#')
                return; /* blank line or comment */
        argv[argc] = NULL;

        if (!*errstr && run_command(mc, argc, argv, errstr, sizeof(errstr)) == 0) {
                snprintf(out, sizeof(out), "ok %s", echo);
        } else {
                snprintf(out, sizeof(out), "err %s: %s", echo, errstr);
        }
        logx("%s", out);
        ack(log_path, out);

        /* librdkafka 2.0.2 loses the mock thread's wake-up when a second
         * request is queued while it is still finishing the first: that
         * request then waits for the thread's 1 s poll timeout. A short
         * pause between commands avoids the race. */
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
}

/* Opens the FIFO for reading without blocking, plus a write end that we hold
 * ourselves (*keeper). Why the keeper: when the last writer closes, read()
 * returns EOF, and if we then closed and reopened, a command written in the
 * window between that EOF and our close() would be lost (a FIFO's buffer is
 * freed when no process has either end open). With our own write end held,
 * the FIFO never reaches EOF and any number of writers can come and go.
 * Returns the read fd, or -1 on failure (logged). */
static int fifo_open(const char *path, int *keeper) {
        int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

        if (fd == -1) {
                logx("cannot open %s: %s", path, strerror(errno));
                return -1;
        }
        /* Succeeds without blocking because a reader (fd) now exists. */
        *keeper = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (*keeper == -1) {
                logx("cannot open %s for writing: %s", path, strerror(errno));
                close(fd);
                return -1;
        }
        return fd;
}

/* Reads available bytes from the FIFO into buf (len bytes pending), handing
 * each complete line to handle_line. Returns 0, or 1 on EOF or a read error
 * (not expected while we hold a write end; the caller reopens). Over-long
 * lines are rejected and skipped. */
static int fifo_read(int fd, rd_kafka_mock_cluster_t *mc, const char *log_path,
                     char *buf, size_t *len, int *skipping) {
        char chunk[512];
        ssize_t r;
        size_t i;

        for (;;) {
                r = read(fd, chunk, sizeof(chunk));
                if (r == 0)
                        return 1;
                if (r < 0)
                        return errno == EAGAIN || errno == EINTR ? 0 : 1;
                for (i = 0; i < (size_t)r; i++) {
                        if (chunk[i] == '\n') {
                                buf[*len] = '\0';
                                if (!*skipping)
                                        handle_line(mc, log_path, buf);
                                *len      = 0;
                                *skipping = 0;
                        } else if (*skipping) {
                                continue;
                        } else if (*len == LINE_MAX_LEN || chunk[i] == '\0') {
                                char msg[64];
                                snprintf(msg, sizeof(msg),
                                         "err <line>: longer than %d bytes or "
                                         "contains NUL",
                                         LINE_MAX_LEN);
                                logx("%s", msg);
                                ack(log_path, msg);
                                *len      = 0;
                                *skipping = 1;
                        } else {
                                buf[(*len)++] = chunk[i];
                        }
                }
        }
}

/* Writes the bootstrap string to path atomically (temp file + rename). */
static int write_ready_file(const char *path, const char *bootstrap) {
        char tmp[PATH_MAX];
        FILE *fp;

        if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >=
            (int)sizeof(tmp)) {
                logx("ready file path too long: %s", path);
                return -1;
        }
        if (!(fp = fopen(tmp, "w"))) {
                logx("cannot write %s: %s", tmp, strerror(errno));
                return -1;
        }
        fprintf(fp, "%s\n", bootstrap);
        if (fclose(fp) != 0 || rename(tmp, path) != 0) {
                logx("cannot write %s: %s", path, strerror(errno));
                unlink(tmp);
                return -1;
        }
        return 0;
}

/* Reports a bad command line and exits 2. Only main() calls it, while
 * parsing arguments, before anything exists that would need cleaning up. */
static void usage_error(const char *fmt, const char *arg) {
        fputs("mock_kafka: ", stderr);
        fprintf(stderr, fmt, arg);
        fputs(" (usage: mock_kafka [--brokers N] [--topic NAME:PARTITIONS]... "
              "[--ctl FIFO] [--ready-file PATH])\n",
              stderr);
        exit(2);
}

int main(int argc, char **argv) {
        struct {
                char name[256];
                int partitions;
        } topics[MAX_TOPICS];
        int topic_cnt = 0, i, rc = 1, fd = -1, keeper = -1;
        int skipping = 0;
        const char *ctl_path = NULL, *ready_path = NULL;
        char log_path[PATH_MAX], errstr[512], line[LINE_MAX_LEN + 1];
        size_t line_len           = 0;
        rd_kafka_conf_t *conf     = NULL;
        rd_kafka_t *rk            = NULL;
        rd_kafka_mock_cluster_t *mc = NULL;
        struct sigaction sa;
        FILE *fp;
        long v;

        /* Command line: every error is one line on stderr and exit 2. */
        for (i = 1; i < argc; i++) {
                const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

                if (!strcmp(opt, "-h") || !strcmp(opt, "--help")) {
                        printf("usage: mock_kafka [--brokers N] "
                               "[--topic NAME:PARTITIONS]... [--ctl FIFO] "
                               "[--ready-file PATH]\ncontrol commands: %s\n",
                               ctl_usage);
                        return 0;
                }
                if (strcmp(opt, "--brokers") && strcmp(opt, "--topic") &&
                    strcmp(opt, "--ctl") && strcmp(opt, "--ready-file"))
                        usage_error("unknown argument '%s'", opt);
                if (!val)
                        usage_error("%s needs a value", opt);
                i++;
                if (!strcmp(opt, "--brokers")) {
                        if (parse_long(val, 1, 64, &v) == -1)
                                usage_error("--brokers '%s': want 1..64", val);
                        broker_cnt = (int)v;
                } else if (!strcmp(opt, "--topic")) {
                        char *colon = strrchr(val, ':');

                        if (topic_cnt == MAX_TOPICS)
                                usage_error("too many topics at '%s'", val);
                        if (!colon || colon == val ||
                            colon - val >= (long)sizeof(topics[0].name) ||
                            parse_long(colon + 1, 1, 10000, &v) == -1)
                                usage_error("--topic '%s': want NAME:PARTITIONS "
                                            "(1..10000)",
                                            val);
                        memcpy(topics[topic_cnt].name, val, (size_t)(colon - val));
                        topics[topic_cnt].name[colon - val] = '\0';
                        topics[topic_cnt].partitions        = (int)v;
                        topic_cnt++;
                } else if (!strcmp(opt, "--ctl")) {
                        ctl_path = val;
                } else {
                        ready_path = val;
                }
        }
        if (ctl_path && snprintf(log_path, sizeof(log_path), "%s.log", ctl_path) >=
                            (int)sizeof(log_path))
                usage_error("--ctl path too long: %s", ctl_path);

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        /* The host handle only does bookkeeping for the cluster; it never
         * produces. */
        conf = rd_kafka_conf_new();
        /* Hide the notice that the host handle has no bootstrap.servers. */
        rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr));
        rk   = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                logx("cannot create host handle: %s", errstr);
                rd_kafka_conf_destroy(conf);
                return 1;
        }
        conf = NULL; /* now owned by rk */

        if (!(mc = rd_kafka_mock_cluster_new(rk, broker_cnt))) {
                logx("cannot create mock cluster of %d brokers", broker_cnt);
                goto out;
        }

        for (i = 0; i < topic_cnt; i++) {
                rd_kafka_resp_err_t err =
                    create_topic(mc, topics[i].name, topics[i].partitions);
                if (err) {
                        logx("cannot create topic %s: %s", topics[i].name,
                             rd_kafka_err2str(err));
                        goto out;
                }
        }

        if (ctl_path) {
                struct stat st;

                /* Reuse an existing FIFO (left by a killed run); refuse
                 * anything else at that path. */
                if (mkfifo(ctl_path, 0600) == -1 &&
                    (errno != EEXIST || stat(ctl_path, &st) == -1 ||
                     !S_ISFIFO(st.st_mode))) {
                        logx("cannot create FIFO %s: %s", ctl_path,
                             errno == EEXIST ? "exists and is not a FIFO"
                                             : strerror(errno));
                        goto out;
                }
                /* Start with an empty log so old acknowledgements cannot
                 * be mistaken for new ones. */
                if (!(fp = fopen(log_path, "w"))) {
                        logx("cannot create %s: %s", log_path, strerror(errno));
                        goto out;
                }
                fclose(fp);
                if ((fd = fifo_open(ctl_path, &keeper)) == -1)
                        goto out;
        }

        printf("bootstrap=%s\n", rd_kafka_mock_cluster_bootstraps(mc));
        fflush(stdout);
        if (ready_path &&
            write_ready_file(ready_path, rd_kafka_mock_cluster_bootstraps(mc)) == -1)
                goto out;
        logx("%d brokers, %d topics, bootstrap %s", broker_cnt, topic_cnt,
             rd_kafka_mock_cluster_bootstraps(mc));

        /* Wait for a signal, serving control commands meanwhile. The
         * timeout bounds how long a signal waits to be noticed. */
        while (!stop_requested) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};

                if (poll(&pfd, fd == -1 ? 0 : 1, 200) <= 0)
                        continue;
                if (fifo_read(fd, mc, log_path, line, &line_len, &skipping)) {
                        /* Should not happen (we hold a write end), but if
                         * it does, reopen rather than spin on POLLHUP. */
                        close(fd);
                        close(keeper);
                        keeper = -1;
                        if ((fd = fifo_open(ctl_path, &keeper)) == -1)
                                goto out;
                }
        }
        logx("shutting down");
        rc = 0;

out:
        if (fd != -1)
                close(fd);
        if (keeper != -1)
                close(keeper);
        if (ctl_path)
                unlink(ctl_path);
        if (ready_path)
                unlink(ready_path); /* a stale ready file would lie */
        if (mc)
                rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
        return rc;
}
