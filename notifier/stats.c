/* stats.c - meter-notifier's metrics (see notifier.h): outcomes of delivery
 * attempts by channel, and database failures. No-ops until
 * ntf_metrics_init(), so the unit tests that drive the engine export
 * nothing. */
#include "metrics.h"
#include "notifier.h"

static struct {
	struct mx_metric *sent, *failed, *dead, *disabled, *db_errors;
} nm;

void ntf_metrics_init(struct mx_registry *r)
{
	if (!r)
		return;
	nm.sent = mx_counter(r, "meter_notifications_sent_total",
			     "Notifications delivered (webhook 2xx, or accepted by the SMTP "
			     "server), by channel.",
			     "channel");
	nm.failed = mx_counter(r, "meter_notifications_failed_total",
			       "Failed delivery attempts (retried later, or the last one), by "
			       "channel.",
			       "channel");
	nm.dead = mx_counter(r, "meter_notifications_dead_total",
			     "Notifications given up after their last attempt, by channel.",
			     "channel");
	nm.disabled = mx_counter(r, "meter_notifications_disabled_total",
				 "Notifications not sent because the tenant's webhook answered 410 "
				 "Gone, by channel.",
				 "channel");
	nm.db_errors = mx_counter(r, "meter_db_errors_total",
				  "Database failures (connect, claim, record), retried.", NULL);
	static const char *const channels[] = {"webhook", "email"};
	for (int i = 0; i < 2; i++) {
		mx_touch(nm.sent, MX_L(channels[i]));
		mx_touch(nm.failed, MX_L(channels[i]));
		mx_touch(nm.dead, MX_L(channels[i]));
	}
	mx_touch(nm.disabled, MX_L("webhook"));
}

void ntf_metrics_outcome(int is_webhook, enum ntf_outcome o)
{
	const char *const *ch = MX_L(is_webhook ? "webhook" : "email");
	switch (o) {
	case NTF_DELIVERED:
		mx_add(nm.sent, ch, 1);
		break;
	case NTF_RETRY:
		mx_add(nm.failed, ch, 1);
		break;
	case NTF_DEAD:
		mx_add(nm.failed, ch, 1);
		mx_add(nm.dead, ch, 1);
		break;
	case NTF_DISABLED:
		mx_add(nm.disabled, ch, 1);
		break;
	case NTF_INTERRUPTED:
		break; /* not an outcome: due again at once */
	}
}

void ntf_metrics_db_error(void)
{
	mx_add(nm.db_errors, NULL, 1);
}
