-- 006: threshold notifications (80 %, 90 %, 100 % by default).
--
-- When a subject's usage reaches a threshold of a limit, the batch that
-- counted it inserts one notification per channel of the tenant (webhook,
-- email), unique per subject, metric, period, period start, threshold and
-- channel: announced once per period however many events cross it, and
-- re-armed by the next period (a new period_start). meter-notifier delivers
-- them; the body is fixed at creation so every retry sends the same bytes.

ALTER TABLE plans ADD COLUMN thresholds int[] NOT NULL DEFAULT '{80,90,100}'
    CHECK (array_length(thresholds, 1) BETWEEN 1 AND 10 AND 0 < ALL (thresholds)
           AND 100 >= ALL (thresholds));
ALTER TABLE tenants ADD COLUMN thresholds int[]
    CHECK (thresholds IS NULL OR (array_length(thresholds, 1) BETWEEN 1 AND 10
           AND 0 < ALL (thresholds) AND 100 >= ALL (thresholds)));
-- Set when the webhook endpoint answered 410 Gone: no more webhooks until
-- the operator sets the URL again.
ALTER TABLE tenants ADD COLUMN webhook_disabled_at timestamptz;

CREATE TABLE notifications (
    id              bigserial PRIMARY KEY,
    msg_id          text NOT NULL UNIQUE,   -- webhook-id / Message-ID, stable across retries
    tenant_id       text NOT NULL,
    subject_type    text NOT NULL,
    subject_id      text NOT NULL,
    metric          text NOT NULL,
    period          text NOT NULL,
    period_start    date NOT NULL,
    threshold       int NOT NULL,
    channel         text NOT NULL CHECK (channel IN ('webhook', 'email')),
    target          text NOT NULL,          -- URL or address when it was created
    limit_value     numeric(38,0) NOT NULL,
    used            numeric(38,0) NOT NULL,
    resets_at       timestamptz,
    payload         jsonb NOT NULL,         -- the webhook body (and the email's facts)
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'dead', 'disabled')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    UNIQUE (tenant_id, subject_type, subject_id, metric, period, period_start, threshold, channel)
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_tenant ON notifications (tenant_id, created_at);

-- Every delivery attempt, for operators (meterctl notifications list).
CREATE TABLE notification_attempts (
    id              bigserial PRIMARY KEY,
    notification_id bigint NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    attempted_at    timestamptz NOT NULL DEFAULT now(),
    duration_ms     int,
    http_status     int,                    -- webhooks; SMTP reply code for email
    error           text,
    response_snippet text                   -- first bytes of the answer, capped
);
CREATE INDEX notification_attempts_of ON notification_attempts (notification_id, id);
