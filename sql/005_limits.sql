-- 005: limits, crossings and flags.
--
-- A limit applies to a subject (the tenant, each user, each API key) for a
-- metric (requests, tokens = input + output, cost in pUSD, or op:<operation>
-- = requests of that operation) over a period (day, month, or rolling30 =
-- the 30 local days ending today). Plans give defaults (plan_limits); a
-- tenant overrides any of them (tenant_limits), for all its users or keys
-- (subject_id '') or for one. A NULL limit_value is explicitly unlimited.

ALTER TABLE plan_limits DROP CONSTRAINT plan_limits_period_check;
ALTER TABLE plan_limits ADD CONSTRAINT plan_limits_period_check
    CHECK (period IN ('day', 'month', 'rolling30'));

CREATE TABLE tenant_limits (
    tenant_id    text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    subject_type text NOT NULL CHECK (subject_type IN ('tenant', 'user', 'key')),
    subject_id   text NOT NULL DEFAULT '',
    metric       text NOT NULL CHECK (metric ~ '^(requests|tokens|cost|op:[a-z0-9_.-]{1,64})$'),
    period       text NOT NULL CHECK (period IN ('day', 'month', 'rolling30')),
    limit_value  numeric(38,0) CHECK (limit_value IS NULL OR limit_value >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, subject_type, subject_id, metric, period),
    CHECK (subject_type <> 'tenant' OR subject_id = '')
);

-- A crossing: the subject's usage reached 100 % of a limit in a period. It
-- blocks the subject until `until` (the end of the period, or for rolling30
-- the first midnight at which the window falls below the limit), unless it
-- is cleared first (limit raised, plan changed, reset). One active crossing
-- per subject, metric, period and period start.
CREATE TABLE blocks (
    id            bigserial PRIMARY KEY,
    tenant_id     text NOT NULL,
    subject_type  text NOT NULL,
    subject_id    text NOT NULL,
    metric        text NOT NULL,
    period        text NOT NULL,
    period_start  date NOT NULL,
    limit_value   numeric(38,0) NOT NULL,
    used          numeric(38,0) NOT NULL,
    until         timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    cleared_at    timestamptz,
    clear_reason  text CHECK (clear_reason IN ('period_end', 'limit_raised', 'reset'))
);
CREATE UNIQUE INDEX blocks_one_active
    ON blocks (tenant_id, subject_type, subject_id, metric, period, period_start)
    WHERE cleared_at IS NULL;
CREATE INDEX blocks_active_until ON blocks (until) WHERE cleared_at IS NULL;
CREATE INDEX blocks_active_subject
    ON blocks (tenant_id, subject_type, subject_id) WHERE cleared_at IS NULL;

-- Subjects whose flag must be published. Rows carry no state: the publisher
-- computes the subject's current flag when it drains, so the order in which
-- transactions commit cannot make an older state win on the topic.
CREATE TABLE flag_outbox (
    id           bigserial PRIMARY KEY,
    tenant_id    text NOT NULL,
    subject_type text NOT NULL,
    subject_id   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz
);
CREATE INDEX flag_outbox_pending ON flag_outbox (id) WHERE sent_at IS NULL;

-- The last flag published for each subject (what usage.limits says).
CREATE TABLE flags (
    subject      text PRIMARY KEY,
    tenant_id    text NOT NULL,
    state        text NOT NULL CHECK (state IN ('blocked', 'ok')),
    flag         jsonb NOT NULL,
    published_at timestamptz NOT NULL
);

-- Operator resets of a subject's current period (audit). For limits, usage
-- counts from the latest reset's baseline; rollups and billing keep every
-- event.
CREATE TABLE usage_resets (
    id            bigserial PRIMARY KEY,
    tenant_id     text NOT NULL,
    subject_type  text NOT NULL,
    subject_id    text NOT NULL,
    period        text NOT NULL CHECK (period IN ('day', 'month')),
    period_start  date NOT NULL,
    requests      bigint NOT NULL,
    tokens        bigint NOT NULL,
    cost_pusd     numeric(38,0) NOT NULL,
    operations    jsonb NOT NULL DEFAULT '{}',
    reason        text NOT NULL,
    actor         text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_resets_subject
    ON usage_resets (tenant_id, subject_type, subject_id, period, period_start, id);

-- Manual suspensions and their audit trail (tenants.suspended is the state).
CREATE TABLE suspension_log (
    id         bigserial PRIMARY KEY,
    tenant_id  text NOT NULL,
    action     text NOT NULL CHECK (action IN ('suspend', 'reactivate')),
    reason     text,
    actor      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
