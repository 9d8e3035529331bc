/* naive - the naive design, for make bench: a Kafka consumer that makes
 * one database round trip per event (naive_increment_usage() in naive.sql:
 * read the plan, check the daily limits, increment the daily counter), each
 * committed on its own, as the seed documents sketch it. No dedupe, no
 * event log, offsets committed to Kafka: it is the baseline meterd is
 * measured against, not a design to copy.
 *
 *   naive --brokers B --topic T --group G --database URL --expect N
 * Exits after N messages (or 30 s without one). */
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "num.h"

int main(int argc, char **argv)
{
	const char *brokers = NULL, *topic = NULL, *group = "naive", *db = NULL;
	int64_t expect = 0;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--brokers"))
			brokers = argv[i + 1];
		else if (!strcmp(argv[i], "--topic"))
			topic = argv[i + 1];
		else if (!strcmp(argv[i], "--group"))
			group = argv[i + 1];
		else if (!strcmp(argv[i], "--database"))
			db = argv[i + 1];
		else if (!strcmp(argv[i], "--expect")) {
			if (num_parse_i64(argv[i + 1], 1, INT64_MAX, &expect) != 0)
				db = NULL;
		} else
			brokers = NULL;
	}
	if (!brokers || !topic || !db || !expect) {
		fprintf(stderr, "usage: naive --brokers B --topic T [--group G] --database URL"
				" --expect N\n");
		return 2;
	}
	PGconn *conn = PQconnectdb(db);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "naive: %s", PQerrorMessage(conn));
		return 1;
	}
	char err[512];
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	rd_kafka_conf_set(c, "bootstrap.servers", brokers, err, sizeof(err));
	rd_kafka_conf_set(c, "group.id", group, err, sizeof(err));
	rd_kafka_conf_set(c, "auto.offset.reset", "earliest", err, sizeof(err));
	rd_kafka_conf_set(c, "partition.assignment.strategy", "range", err, sizeof(err));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "naive: %s\n", err);
		return 1;
	}
	rd_kafka_poll_set_consumer(rk);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_subscribe(rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	int64_t seen = 0, idle = 0;
	while (seen < expect && idle < 300) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		if (!m) {
			if (seen)
				idle++;
			continue;
		}
		idle = 0;
		if (m->err) {
			rd_kafka_message_destroy(m);
			continue;
		}
		seen++;
		json_t *ev = json_loadb(m->payload, m->len, 0, NULL);
		json_t *d = json_object_get(ev, "data");
		const char *tenant = json_string_value(json_object_get(d, "tenant_id"));
		if (tenant) {
			char in[24], out[24], req[24];
			snprintf(in, sizeof(in), "%" PRId64,
				 (int64_t)json_integer_value(json_object_get(d, "input_tokens")));
			snprintf(out, sizeof(out), "%" PRId64,
				 (int64_t)json_integer_value(json_object_get(d, "output_tokens")));
			snprintf(req, sizeof(req), "1");
			const char *p[4] = {tenant, req, in, out};
			PGresult *r = PQexecParams(conn,
						   "SELECT allowed FROM naive_increment_usage($1, $2, $3, $4)",
						   4, NULL, p, NULL, NULL, 0);
			if (PQresultStatus(r) != PGRES_TUPLES_OK)
				fprintf(stderr, "naive: %s", PQerrorMessage(conn));
			PQclear(r);
		}
		json_decref(ev);
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	PQfinish(conn);
	printf("{\"consumed\":%" PRId64 "}\n", seen);
	return 0;
}
