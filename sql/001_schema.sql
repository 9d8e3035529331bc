-- 001: core schema. Tenants, plans and limits, the versioned price table,
-- the event log (partitioned by month), the dedupe index, rejected events,
-- rollups and the consumer offsets stored with them.
--
-- Units: money is integer pico-USD (1 USD = 10^12 pUSD) everywhere, so one
-- event's cost is exact even for prices such as $0.01875 per million tokens
-- (18,750 pUSD per token). Columns that sum many events are numeric(38,0).

CREATE TABLE plans (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9_-]{1,64}$'),
    name        text NOT NULL,
    price_cents bigint NOT NULL DEFAULT 0 CHECK (price_cents >= 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per (plan, subject level, metric, period). limit_value NULL means
-- explicitly unlimited. metric is requests, tokens (input + output), cost
-- (pUSD), or op:<operation> (count of requests of that operation).
CREATE TABLE plan_limits (
    plan_id      text NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
    subject_type text NOT NULL CHECK (subject_type IN ('tenant', 'user', 'key')),
    metric       text NOT NULL CHECK (metric ~ '^(requests|tokens|cost|op:[a-z0-9_.-]{1,64})$'),
    period       text NOT NULL CHECK (period IN ('day', 'month')),
    limit_value  numeric(38,0) CHECK (limit_value IS NULL OR limit_value >= 0),
    PRIMARY KEY (plan_id, subject_type, metric, period)
);

CREATE TABLE tenants (
    id                text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._~:@+=-]{1,128}$'),
    plan_id           text NOT NULL REFERENCES plans(id),
    -- An IANA zone name PostgreSQL knows; checked here so that a typo cannot
    -- stall ingestion for the tenant's partition.
    tz                text NOT NULL DEFAULT 'UTC'
                      CHECK ((timestamptz '2000-01-01 00:00:00+00' AT TIME ZONE tz) IS NOT NULL),
    webhook_url       text,
    webhook_secret    text,
    email             text,
    plan_expires_at   timestamptz,
    suspended         boolean NOT NULL DEFAULT false,
    suspension_reason text,
    auto_created      boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Versioned prices: the row in force for an event is the one with the
-- longest matching model name (exact, or a prefix followed by '-', so that
-- "gpt-4o" prices "gpt-4o-2024-08-06") and the latest valid_from <= the
-- event's time. Token prices are pUSD per token (= micro-USD per million
-- tokens); unit prices are pUSD per unit. input_tokens include cached input
-- tokens and output_tokens include reasoning tokens (OpenTelemetry GenAI and
-- OpenAI usage conventions), so the cost of an event is
--   (input - cached) * input_pusd + cached * cached_input_pusd
--   + output * output_pusd + requests * request_pusd + sum(units * unit_pusd).
CREATE TABLE prices (
    id                  bigserial PRIMARY KEY,
    provider            text NOT NULL,
    model               text NOT NULL,
    valid_from          timestamptz NOT NULL,
    input_pusd          bigint NOT NULL DEFAULT 0 CHECK (input_pusd >= 0),
    cached_input_pusd   bigint NOT NULL DEFAULT 0 CHECK (cached_input_pusd >= 0),
    output_pusd         bigint NOT NULL DEFAULT 0 CHECK (output_pusd >= 0),
    request_pusd        bigint NOT NULL DEFAULT 0 CHECK (request_pusd >= 0),
    unit_pusd           jsonb NOT NULL DEFAULT '{}', -- {"images": 40000000000, ...}
    note                text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, model, valid_from)
);

-- The event log: one row per counted event. It is also the audit log of
-- requests (endpoint, method, status, latency). Partitioned by month of
-- occurrence so old months can be dropped (DROP TABLE events_YYYY_MM).
CREATE TABLE events (
    occurred_at         timestamptz NOT NULL,
    tenant_id           text NOT NULL,
    event_id            text NOT NULL,
    user_id             text,
    api_key_id          text,
    provider            text NOT NULL DEFAULT '',
    model               text NOT NULL DEFAULT '',
    operation           text NOT NULL,
    source              text NOT NULL,
    type                text NOT NULL,
    input_tokens        bigint NOT NULL,
    cached_input_tokens bigint NOT NULL,
    output_tokens       bigint NOT NULL,
    reasoning_tokens    bigint NOT NULL,
    requests            bigint NOT NULL,
    units               jsonb,
    cost_pusd           numeric(38,0) NOT NULL,
    cost_source         text NOT NULL CHECK (cost_source IN ('event', 'price', 'unpriced')),
    price_id            bigint,
    endpoint            text,
    method              text,
    status_code         int,
    latency_ms          bigint,
    workflow_id         text,
    execution_id        text,
    metadata            jsonb,
    kafka_topic         text NOT NULL,
    kafka_partition     int NOT NULL,
    kafka_offset        bigint NOT NULL,
    received_at         timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (occurred_at);
CREATE INDEX events_tenant_time ON events (tenant_id, occurred_at);

-- Dedupe: (tenant, event id) of every counted event. A separate, unpartitioned
-- table because a unique index on a partitioned table must include the
-- partition key, and a duplicate must be caught whatever time it carries.
CREATE TABLE event_ids (
    tenant_id   text NOT NULL,
    event_id    text NOT NULL,
    occurred_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);

-- Events that failed validation: never counted, kept for operators to see
-- and replay. payload is bytea because it may not be text at all.
CREATE TABLE rejected_events (
    id              bigserial PRIMARY KEY,
    kafka_topic     text NOT NULL,
    kafka_partition int NOT NULL,
    kafka_offset    bigint NOT NULL,
    kafka_key       bytea,
    reason          text NOT NULL,
    detail          text NOT NULL,
    tenant_id       text,
    event_id        text,
    payload         bytea NOT NULL,
    payload_size    int NOT NULL,
    rejected_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kafka_topic, kafka_partition, kafka_offset)
);
CREATE INDEX rejected_events_reason ON rejected_events (reason, rejected_at);

-- Rollups. subject_type tenant (subject_id = ''), user or key; period day or
-- month; period_start is the local date (tenant's time zone) where the day or
-- month begins. Totals over every counted event of the subject in the period.
CREATE TABLE rollups (
    tenant_id           text NOT NULL,
    subject_type        text NOT NULL CHECK (subject_type IN ('tenant', 'user', 'key')),
    subject_id          text NOT NULL,
    period              text NOT NULL CHECK (period IN ('day', 'month')),
    period_start        date NOT NULL,
    events              bigint NOT NULL DEFAULT 0,
    requests            bigint NOT NULL DEFAULT 0,
    input_tokens        bigint NOT NULL DEFAULT 0,
    cached_input_tokens bigint NOT NULL DEFAULT 0,
    output_tokens       bigint NOT NULL DEFAULT 0,
    reasoning_tokens    bigint NOT NULL DEFAULT 0,
    cost_pusd           numeric(38,0) NOT NULL DEFAULT 0,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, subject_type, subject_id, period, period_start)
);

-- Breakdowns of the same rollups: dim 'operation' (name = operation),
-- 'model' (name = provider/model) and 'unit' (name = unit, quantity set).
CREATE TABLE rollup_breakdown (
    tenant_id           text NOT NULL,
    subject_type        text NOT NULL,
    subject_id          text NOT NULL,
    period              text NOT NULL,
    period_start        date NOT NULL,
    dim                 text NOT NULL CHECK (dim IN ('operation', 'model', 'unit')),
    name                text NOT NULL,
    events              bigint NOT NULL DEFAULT 0,
    requests            bigint NOT NULL DEFAULT 0,
    input_tokens        bigint NOT NULL DEFAULT 0,
    cached_input_tokens bigint NOT NULL DEFAULT 0,
    output_tokens       bigint NOT NULL DEFAULT 0,
    reasoning_tokens    bigint NOT NULL DEFAULT 0,
    cost_pusd           numeric(38,0) NOT NULL DEFAULT 0,
    quantity            numeric(38,0) NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, subject_type, subject_id, period, period_start, dim, name)
);

-- Kafka offsets, written in the same transaction as the rollups they
-- produced. next_offset is the offset of the next message to consume.
CREATE TABLE consumer_offsets (
    group_id    text NOT NULL,
    topic       text NOT NULL,
    partition   int NOT NULL,
    next_offset bigint NOT NULL CHECK (next_offset >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);
