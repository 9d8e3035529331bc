-- Limits: which limits apply to a subject, how much of each it has used in
-- the current period, crossings (blocks), and the flag a subject should show.
-- Repeatable: re-applied whenever this file changes.

-- The clock of limit evaluation. Tests shift it with the session setting
-- meter.clock_offset_s (set by meterd and meterctl from the test-only
-- environment variable METER_TEST_CLOCK_OFFSET); it is now() otherwise.
CREATE OR REPLACE FUNCTION meter_now() RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT now() + coalesce(nullif(current_setting('meter.clock_offset_s', true), '')::bigint, 0)
                   * interval '1 second'
$$;

-- The plan in force for a tenant: its plan until plan_expires_at, then free.
CREATE OR REPLACE FUNCTION meter_effective_plan(p_plan text, p_expires timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN p_expires IS NOT NULL AND p_expires <= meter_now() THEN 'free' ELSE p_plan END
$$;

CREATE OR REPLACE FUNCTION meter_subject(p_type text, p_tenant text, p_id text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_type WHEN 'tenant' THEN 'tenant/' || p_tenant
                       ELSE p_type || '/' || p_tenant || '/' || p_id END
$$;

-- The limits in force for a subject: the plan's defaults for its level,
-- overridden by the tenant's limits for all subjects of that level
-- (subject_id ''), overridden by limits for this very subject. NULL
-- limit_value = unlimited (kept, so an override can lift a plan limit).
CREATE OR REPLACE FUNCTION meter_effective_limits(p_tenant text, p_type text, p_id text)
RETURNS TABLE (metric text, period text, limit_value numeric, source text)
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT ON (x.metric, x.period) x.metric, x.period, x.limit_value, x.source
      FROM tenants t
     CROSS JOIN LATERAL (
            SELECT l.metric, l.period, l.limit_value, 'plan' AS source, 3 AS prio
              FROM plan_limits l
             WHERE l.plan_id = meter_effective_plan(t.plan_id, t.plan_expires_at)
               AND l.subject_type = p_type
            UNION ALL
            SELECT o.metric, o.period, o.limit_value, 'tenant', 2
              FROM tenant_limits o
             WHERE o.tenant_id = t.id AND o.subject_type = p_type AND o.subject_id = ''
            UNION ALL
            SELECT o.metric, o.period, o.limit_value, 'subject', 1
              FROM tenant_limits o
             WHERE o.tenant_id = t.id AND o.subject_type = p_type AND o.subject_id = p_id
               AND p_id <> ''
        ) x
     WHERE t.id = p_tenant
     ORDER BY x.metric, x.period, x.prio
$$;

-- First local date of the current period (rolling30: of its 30-day window).
CREATE OR REPLACE FUNCTION meter_period_start(p_tz text, p_period text, p_at timestamptz)
RETURNS date LANGUAGE sql STABLE AS $$
    SELECT CASE p_period
        WHEN 'day' THEN (p_at AT TIME ZONE p_tz)::date
        WHEN 'month' THEN date_trunc('month', p_at AT TIME ZONE p_tz)::date
        ELSE (p_at AT TIME ZONE p_tz)::date - 29 END
$$;

-- When a day or month period that starts at p_start ends (an instant).
CREATE OR REPLACE FUNCTION meter_period_end(p_tz text, p_period text, p_start date)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT (CASE p_period WHEN 'day' THEN p_start + 1
                          ELSE (p_start + interval '1 month')::date END)::timestamp
           AT TIME ZONE p_tz
$$;

-- A metric's amount from the columns of a rollup row (or of a reset's
-- baseline): requests, tokens (input + output), cost, or op:<name> (that
-- operation's requests, passed in p_op_requests).
CREATE OR REPLACE FUNCTION meter_metric_amount(p_metric text, p_requests bigint, p_tokens bigint,
                                               p_cost numeric, p_op_requests bigint)
RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_metric WHEN 'requests' THEN p_requests::numeric
                         WHEN 'tokens' THEN p_tokens::numeric
                         WHEN 'cost' THEN p_cost
                         ELSE p_op_requests::numeric END
$$;

-- The amount of a metric in one rollup row (day or month), NULL-safe.
CREATE OR REPLACE FUNCTION meter_rollup_amount(p_tenant text, p_type text, p_id text,
                                               p_metric text, p_period text, p_start date)
RETURNS numeric LANGUAGE sql STABLE AS $$
    SELECT coalesce(CASE
        WHEN p_metric = 'requests' THEN
            (SELECT r.requests::numeric FROM rollups r
              WHERE r.tenant_id = p_tenant AND r.subject_type = p_type AND r.subject_id = p_id
                AND r.period = p_period AND r.period_start = p_start)
        WHEN p_metric = 'tokens' THEN
            (SELECT (r.input_tokens + r.output_tokens)::numeric FROM rollups r
              WHERE r.tenant_id = p_tenant AND r.subject_type = p_type AND r.subject_id = p_id
                AND r.period = p_period AND r.period_start = p_start)
        WHEN p_metric = 'cost' THEN
            (SELECT r.cost_pusd FROM rollups r
              WHERE r.tenant_id = p_tenant AND r.subject_type = p_type AND r.subject_id = p_id
                AND r.period = p_period AND r.period_start = p_start)
        ELSE
            meter_op_requests(p_tenant, p_type, p_id, p_period, p_start, substr(p_metric, 4))
        END, 0)
$$;

-- Usage of a metric that counts against limits in the period starting at
-- p_start: the rollup less the baseline of the latest operator reset of
-- that period; rolling30 sums the 30 day rollups of the window.
CREATE OR REPLACE FUNCTION meter_limit_used(p_tenant text, p_type text, p_id text,
                                            p_metric text, p_period text, p_start date)
RETURNS numeric LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN p_period = 'rolling30' THEN
        (SELECT coalesce(sum(meter_rollup_amount(p_tenant, p_type, p_id, p_metric, 'day', d::date)), 0)
           FROM generate_series(p_start, p_start + 29, interval '1 day') d)
    ELSE
        greatest(meter_rollup_amount(p_tenant, p_type, p_id, p_metric, p_period, p_start)
                 - coalesce((SELECT CASE p_metric
                                 WHEN 'requests' THEN u.requests::numeric
                                 WHEN 'tokens' THEN u.tokens::numeric
                                 WHEN 'cost' THEN u.cost_pusd
                                 ELSE coalesce((u.operations ->> substr(p_metric, 4))::numeric, 0)
                                 END
                               FROM usage_resets u
                              WHERE u.tenant_id = p_tenant AND u.subject_type = p_type
                                AND u.subject_id = p_id AND u.period = p_period
                                AND u.period_start = p_start
                              ORDER BY u.id DESC LIMIT 1), 0), 0)
    END
$$;

-- For a rolling 30-day limit reached today: the first local midnight at
-- which the window's usage falls below the limit (days leave the window).
CREATE OR REPLACE FUNCTION meter_rolling_until(p_tenant text, p_type text, p_id text,
                                               p_metric text, p_tz text, p_limit numeric,
                                               p_today date)
RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_total numeric := meter_limit_used(p_tenant, p_type, p_id, p_metric, 'rolling30',
                                        p_today - 29);
BEGIN
    FOR k IN 1 .. 30 LOOP
        -- At midnight starting p_today + k, day p_today - 30 + k leaves.
        v_total := v_total - meter_rollup_amount(p_tenant, p_type, p_id, p_metric, 'day',
                                                 p_today - 30 + k);
        IF v_total < p_limit THEN
            RETURN (p_today + k)::timestamp AT TIME ZONE p_tz;
        END IF;
    END LOOP;
    RETURN (p_today + 30)::timestamp AT TIME ZONE p_tz;
END $$;

-- Queue a subject's flag for publication (and wake the publisher).
CREATE OR REPLACE FUNCTION meter_flag_dirty(p_tenant text, p_type text, p_id text)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO flag_outbox (tenant_id, subject_type, subject_id) VALUES (p_tenant, p_type, p_id);
    SELECT pg_notify('meter_flags', '');
$$;

-- Evaluate every limit of the given subjects against their current period:
-- record new crossings (blocks) and queue the flags of subjects that got
-- one, and queue a notification for every threshold (80/90/100 % unless the
-- plan or tenant says otherwise) reached for the first time in the period,
-- one per channel of the tenant. p_subjects is a set of (tenant, type, id)
-- given as three arrays. Returns the number of new crossings.
CREATE OR REPLACE FUNCTION meter_evaluate(p_tenants text[], p_types text[], p_ids text[])
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    v_new int;
    v_notes int;
BEGIN
    -- Scratch space of this session (created once; emptied at every commit):
    -- a row per limit of the batch's subjects, with what the notifications
    -- need of the tenant (its thresholds and targets) so that they need not
    -- look it up again. (Named anew when its columns change: a session that
    -- made the old one may call this version.)
    IF to_regclass('pg_temp.eval_limits') IS NULL THEN
        CREATE TEMP TABLE eval_limits (
            tenant_id text, subject_type text, subject_id text, tz text, metric text,
            period text, limit_value numeric, period_start date, used numeric,
            thresholds int[], webhook text, email text
        ) ON COMMIT DELETE ROWS;
    END IF;
    DELETE FROM eval_limits;
    -- Set-based: one statement for all subjects (a function call per limit
    -- row cost ~0.15 ms each, most of a batch's time). Same arithmetic as
    -- meter_limit_used(), which rolling windows still use. Every lookup is
    -- a LATERAL ... LIMIT 1, so always one index probe per subject or limit:
    -- as joins, the planner went by statistics that lag behind tables that
    -- grow fast (a new deployment's first hours, or the bench) and
    -- hash-joined or sorted whole tables for a handful of subjects (a
    -- 15-event batch's evaluation grew from 15 to 40 ms in 20 s).
    INSERT INTO eval_limits
    SELECT s.tenant_id, s.subject_type, s.subject_id, s.tz, l.metric, l.period, l.limit_value,
           l.period_start,
           CASE WHEN l.period = 'rolling30'
                THEN meter_limit_used(s.tenant_id, s.subject_type, s.subject_id, l.metric,
                                      l.period, l.period_start)
                ELSE greatest(
                    coalesce(meter_metric_amount(l.metric, r.requests,
                                                 r.input_tokens + r.output_tokens, r.cost_pusd,
                                                 -- Only op: limits read breakdowns. (As a
                                                 -- LATERAL ... WHERE, the call ran for every
                                                 -- limit: 60 % of this statement's time.)
                                                 CASE WHEN l.metric LIKE 'op:%' THEN
                                                     meter_op_requests(s.tenant_id,
                                                         s.subject_type, s.subject_id, l.period,
                                                         l.period_start, substr(l.metric, 4))
                                                 END), 0)
                    - coalesce(meter_metric_amount(l.metric, rs.requests, rs.tokens,
                                                   rs.cost_pusd,
                                                   (rs.operations ->> substr(l.metric, 4))::bigint),
                               0), 0) END,
           s.thresholds, s.webhook, s.email
      FROM (SELECT DISTINCT ON (x.tenant_id, x.subject_type, x.subject_id)
                   x.tenant_id, x.subject_type, x.subject_id, t.tz,
                   coalesce(t.thresholds, (SELECT p.thresholds FROM plans p
                                            WHERE p.id = meter_effective_plan(t.plan_id,
                                                                              t.plan_expires_at)))
                       AS thresholds,
                   CASE WHEN t.webhook_disabled_at IS NULL THEN t.webhook_url END AS webhook,
                   t.email
              FROM unnest(p_tenants, p_types, p_ids) AS x(tenant_id, subject_type, subject_id)
             CROSS JOIN LATERAL (SELECT t.tz, t.plan_id, t.plan_expires_at, t.thresholds,
                                        t.webhook_url, t.webhook_disabled_at, t.email
                                   FROM tenants t WHERE t.id = x.tenant_id LIMIT 1) t
             -- Most users and keys have no limit at all (plans limit tenants):
             -- skip them before looking limits up one subject at a time. The
             -- first test needs no tenant: subject types no plan limits and
             -- no override of the tenant names are out before the lookup
             -- (two thirds of a batch's subjects with the default plans).
             WHERE (x.subject_type IN (SELECT pl.subject_type FROM plan_limits pl)
                    OR (x.tenant_id, x.subject_type) IN
                           (SELECT tl.tenant_id, tl.subject_type FROM tenant_limits tl))
               AND (EXISTS (SELECT 1 FROM plan_limits pl
                             WHERE pl.plan_id = meter_effective_plan(t.plan_id,
                                                                     t.plan_expires_at)
                               AND pl.subject_type = x.subject_type)
                    OR EXISTS (SELECT 1 FROM tenant_limits tl
                                WHERE tl.tenant_id = x.tenant_id
                                  AND tl.subject_type = x.subject_type))) s
     CROSS JOIN LATERAL (
            SELECT e.metric, e.period, e.limit_value,
                   meter_period_start(s.tz, e.period, meter_now()) AS period_start
              FROM meter_effective_limits(s.tenant_id, s.subject_type, s.subject_id) e
             WHERE e.limit_value IS NOT NULL) l
      LEFT JOIN LATERAL (
            SELECT r.requests, r.input_tokens, r.output_tokens, r.cost_pusd FROM rollups r
             WHERE r.tenant_id = s.tenant_id AND r.subject_type = s.subject_type
               AND r.subject_id = s.subject_id AND r.period = l.period
               AND r.period_start = l.period_start
             LIMIT 1) r ON true
      LEFT JOIN LATERAL (
            SELECT u.requests, u.tokens, u.cost_pusd, u.operations FROM usage_resets u
             WHERE u.tenant_id = s.tenant_id AND u.subject_type = s.subject_type
               AND u.subject_id = s.subject_id AND u.period = l.period
               AND u.period_start = l.period_start
             ORDER BY u.id DESC LIMIT 1) rs ON l.period <> 'rolling30';

    WITH crossed AS (
        INSERT INTO blocks (tenant_id, subject_type, subject_id, metric, period, period_start,
                            limit_value, used, until)
        SELECT u.tenant_id, u.subject_type, u.subject_id, u.metric, u.period, u.period_start,
               u.limit_value, u.used,
               CASE WHEN u.period = 'rolling30'
                    THEN meter_rolling_until(u.tenant_id, u.subject_type, u.subject_id,
                                             u.metric, u.tz, u.limit_value, u.period_start + 29)
                    ELSE meter_period_end(u.tz, u.period, u.period_start) END
          FROM eval_limits u
         -- Already blocked (every batch until the period ends): skipped with
         -- one probe of the active crossings, as for the notifications below.
          LEFT JOIN LATERAL (SELECT 1 AS active FROM blocks b
                              WHERE b.tenant_id = u.tenant_id
                                AND b.subject_type = u.subject_type
                                AND b.subject_id = u.subject_id AND b.metric = u.metric
                                AND b.period = u.period AND b.period_start = u.period_start
                                AND b.cleared_at IS NULL
                              LIMIT 1) b ON true
         WHERE u.used >= u.limit_value AND b.active IS NULL
         ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (tenant_id, subject_type, subject_id, metric, period, period_start)
            WHERE cleared_at IS NULL DO NOTHING
        RETURNING tenant_id, subject_type, subject_id
    ), dirty AS (
        INSERT INTO flag_outbox (tenant_id, subject_type, subject_id)
        SELECT DISTINCT tenant_id, subject_type, subject_id FROM crossed
        RETURNING 1
    )
    SELECT count(*) INTO v_new FROM dirty;
    IF v_new > 0 THEN
        PERFORM pg_notify('meter_flags', '');
    END IF;

    WITH reached AS (
        SELECT u.*, th.t AS threshold, ch.channel, ch.target,
               'msg_' || md5(concat_ws('|', u.tenant_id, u.subject_type, u.subject_id, u.metric,
                                       u.period, u.period_start, th.t, ch.channel)) AS msg_id,
               CASE WHEN u.period = 'rolling30'
                    THEN meter_rolling_until(u.tenant_id, u.subject_type, u.subject_id,
                                             u.metric, u.tz, u.limit_value * th.t / 100,
                                             u.period_start + 29)
                    ELSE meter_period_end(u.tz, u.period, u.period_start) END AS resets_at
          FROM eval_limits u
         CROSS JOIN LATERAL unnest(u.thresholds) th(t)
         CROSS JOIN LATERAL (VALUES ('webhook', u.webhook), ('email', u.email))
                            ch(channel, target)
         -- Already queued (every batch until the period ends, for a subject
         -- past a threshold): skipped here with one index probe rather than
         -- after building its payload. (As NOT EXISTS, the planner may
         -- anti-join the whole table: eval_limits, a temporary table, has no
         -- statistics.) The insert's ON CONFLICT still covers a race.
          LEFT JOIN LATERAL (SELECT 1 AS queued FROM notifications n
                              WHERE n.tenant_id = u.tenant_id
                                AND n.subject_type = u.subject_type
                                AND n.subject_id = u.subject_id AND n.metric = u.metric
                                AND n.period = u.period AND n.period_start = u.period_start
                                AND n.threshold = th.t AND n.channel = ch.channel
                              LIMIT 1) n ON true
         WHERE ch.target IS NOT NULL AND u.used * 100 >= th.t * u.limit_value
           AND n.queued IS NULL
    ), ins AS (
        INSERT INTO notifications (msg_id, tenant_id, subject_type, subject_id, metric, period,
                                   period_start, threshold, channel, target, limit_value, used,
                                   resets_at, payload)
        SELECT r.msg_id, r.tenant_id, r.subject_type, r.subject_id, r.metric, r.period,
               r.period_start, r.threshold, r.channel, r.target, r.limit_value, r.used,
               r.resets_at,
               jsonb_build_object(
                   'type', 'usage.threshold_reached',
                   'id', r.msg_id,
                   'tenant', r.tenant_id,
                   'subject', meter_subject(r.subject_type, r.tenant_id, r.subject_id),
                   'subject_type', r.subject_type,
                   'subject_id', CASE WHEN r.subject_type = 'tenant' THEN NULL
                                      ELSE r.subject_id END,
                   'metric', r.metric,
                   'period', r.period,
                   'period_start', r.period_start,
                   'threshold', r.threshold,
                   'limit', CASE WHEN r.metric = 'cost' THEN to_jsonb(r.limit_value::text)
                                 ELSE to_jsonb(r.limit_value) END,
                   'used', CASE WHEN r.metric = 'cost' THEN to_jsonb(r.used::text)
                                ELSE to_jsonb(r.used) END,
                   'remaining', CASE WHEN r.metric = 'cost'
                                     THEN to_jsonb(greatest(r.limit_value - r.used, 0)::text)
                                     ELSE to_jsonb(greatest(r.limit_value - r.used, 0)) END,
                   'percent', CASE WHEN r.limit_value = 0 THEN 100.00
                                   ELSE round(r.used * 100.0 / r.limit_value, 2) END,
                   'resets_at', to_char(r.resets_at AT TIME ZONE 'UTC',
                                        'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                   'timezone', r.tz,
                   'created_at', to_char(meter_now() AT TIME ZONE 'UTC',
                                         'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
          FROM reached r
         ORDER BY r.tenant_id, r.subject_type, r.subject_id, r.metric, r.period, r.threshold
        ON CONFLICT (tenant_id, subject_type, subject_id, metric, period, period_start,
                     threshold, channel) DO NOTHING
        RETURNING 1
    )
    SELECT count(*) INTO v_notes FROM ins;
    IF v_notes > 0 THEN
        PERFORM pg_notify('meter_notifications', '');
    END IF;
    RETURN v_new;
END $$;

-- Clear a tenant's crossings that no longer hold (limit raised or lifted,
-- plan changed, usage reset), then evaluate all its subjects that have usage
-- in a current period (a lowered limit may block at once). Used by meterctl
-- after any change to limits, plans or tenants. Returns crossings cleared.
CREATE OR REPLACE FUNCTION meter_reevaluate_tenant(p_tenant text, p_reason text)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    v_cleared int;
    v_tz text;
BEGIN
    SELECT tz INTO v_tz FROM tenants WHERE id = p_tenant;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    WITH active AS (
        SELECT b.id, b.tenant_id, b.subject_type, b.subject_id, b.metric, b.period,
               b.period_start, l.limit_value
          FROM blocks b
          LEFT JOIN LATERAL (SELECT e.limit_value FROM meter_effective_limits(
                                 b.tenant_id, b.subject_type, b.subject_id) e
                              WHERE e.metric = b.metric AND e.period = b.period) l ON true
         WHERE b.tenant_id = p_tenant AND b.cleared_at IS NULL
    ), gone AS (
        UPDATE blocks b SET cleared_at = meter_now(), clear_reason = p_reason
          FROM active a
         WHERE b.id = a.id
           AND (a.limit_value IS NULL
                OR meter_limit_used(a.tenant_id, a.subject_type, a.subject_id, a.metric,
                                    a.period, a.period_start) < a.limit_value)
        RETURNING b.tenant_id, b.subject_type, b.subject_id
    ), dirty AS (
        INSERT INTO flag_outbox (tenant_id, subject_type, subject_id)
        SELECT DISTINCT tenant_id, subject_type, subject_id FROM gone
        RETURNING 1
    )
    SELECT count(*) INTO v_cleared FROM dirty;

    PERFORM meter_evaluate(array_agg(r.tenant_id), array_agg(r.subject_type),
                           array_agg(r.subject_id))
       FROM (SELECT DISTINCT tenant_id, subject_type, subject_id FROM rollups
              WHERE tenant_id = p_tenant AND period = 'month'
                AND period_start = meter_period_start(v_tz, 'month', meter_now())) r;
    -- The tenant's own flag also reflects plan expiry and suspension.
    PERFORM meter_flag_dirty(p_tenant, 'tenant', '');
    RETURN v_cleared;
END $$;

-- Period ends: clear crossings whose time is up (rolling30 ones only if the
-- window really fell below the limit; otherwise they are extended). Safe to
-- run from every process at once: each crossing is cleared by exactly one
-- UPDATE. Returns the number of subjects queued for a new flag.
CREATE OR REPLACE FUNCTION meter_clear_expired() RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    v_n int;
BEGIN
    -- Rolling windows still over their limit: move `until` forward.
    UPDATE blocks b
       SET until = meter_rolling_until(b.tenant_id, b.subject_type, b.subject_id, b.metric,
                                       t.tz, b.limit_value,
                                       meter_period_start(t.tz, 'day', meter_now()))
      FROM tenants t
     WHERE t.id = b.tenant_id AND b.cleared_at IS NULL AND b.period = 'rolling30'
       AND b.until <= meter_now()
       AND meter_limit_used(b.tenant_id, b.subject_type, b.subject_id, b.metric, 'rolling30',
                            meter_period_start(t.tz, 'rolling30', meter_now())) >= b.limit_value;

    WITH gone AS (
        UPDATE blocks SET cleared_at = meter_now(), clear_reason = 'period_end'
         WHERE cleared_at IS NULL AND until <= meter_now()
        RETURNING tenant_id, subject_type, subject_id
    ), dirty AS (
        INSERT INTO flag_outbox (tenant_id, subject_type, subject_id)
        SELECT DISTINCT tenant_id, subject_type, subject_id FROM gone
        RETURNING 1
    )
    SELECT count(*) INTO v_n FROM dirty;
    IF v_n > 0 THEN
        PERFORM pg_notify('meter_flags', '');
    END IF;
    RETURN v_n;
END $$;

-- The flag a subject should show now (the flag contract of DESIGN.md):
-- blocked by a manual suspension (tenant subject; no until), else by the
-- active crossing that lasts longest, else ok.
CREATE OR REPLACE FUNCTION meter_current_flag(p_tenant text, p_type text, p_id text)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    t tenants%ROWTYPE;
    b blocks%ROWTYPE;
    v_subject text := meter_subject(p_type, p_tenant, p_id);
    v_now text := to_char(meter_now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"');
BEGIN
    SELECT * INTO t FROM tenants WHERE id = p_tenant;
    IF p_type = 'tenant' AND FOUND AND t.suspended THEN
        RETURN jsonb_build_object(
            'subject', v_subject, 'tenant', p_tenant, 'subject_type', p_type,
            'subject_id', NULL, 'state', 'blocked', 'metric', NULL, 'period', NULL,
            'period_start', NULL, 'limit', NULL, 'used', NULL, 'until', NULL,
            'reason', coalesce('suspended: ' || t.suspension_reason, 'suspended by an operator'),
            'manual', true, 'updated_at', v_now);
    END IF;
    SELECT * INTO b FROM blocks
     WHERE tenant_id = p_tenant AND subject_type = p_type AND subject_id = p_id
       AND cleared_at IS NULL AND until > meter_now()
     ORDER BY until DESC, id DESC LIMIT 1;
    IF FOUND THEN
        RETURN jsonb_build_object(
            'subject', v_subject, 'tenant', p_tenant, 'subject_type', p_type,
            'subject_id', CASE WHEN p_type = 'tenant' THEN NULL ELSE p_id END,
            'state', 'blocked', 'metric', b.metric, 'period', b.period,
            'period_start', b.period_start,
            'limit', CASE WHEN b.metric = 'cost' THEN to_jsonb(b.limit_value::text)
                          ELSE to_jsonb(b.limit_value) END,
            'used', CASE WHEN b.metric = 'cost' THEN to_jsonb(b.used::text)
                         ELSE to_jsonb(b.used) END,
            'until', to_char(b.until AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
            'reason', format('%s %s limit of %s reached (used %s)',
                             CASE WHEN b.metric LIKE 'op:%' THEN substr(b.metric, 4) ELSE b.metric END,
                             CASE b.period WHEN 'day' THEN 'per day' WHEN 'month' THEN 'per month'
                                  ELSE 'per 30 days' END,
                             b.limit_value, b.used),
            'manual', false, 'updated_at', v_now);
    END IF;
    RETURN jsonb_build_object(
        'subject', v_subject, 'tenant', p_tenant, 'subject_type', p_type,
        'subject_id', CASE WHEN p_type = 'tenant' THEN NULL ELSE p_id END,
        'state', 'ok', 'metric', NULL, 'period', NULL, 'period_start', NULL,
        'limit', NULL, 'used', NULL, 'until', NULL, 'reason', NULL, 'manual', false,
        'updated_at', v_now);
END $$;

-- The publisher's receipt: mark outbox rows up to each subject's max_id sent
-- and remember what was published. p is a JSON array of
-- {tenant, subject_type, subject_id, max_id, flag}.
CREATE OR REPLACE FUNCTION meter_flags_published(p jsonb) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    n int;
BEGIN
    UPDATE flag_outbox f SET sent_at = now()
      FROM jsonb_to_recordset(p) AS x(tenant text, subject_type text, subject_id text,
                                      max_id bigint)
     WHERE f.sent_at IS NULL AND f.tenant_id = x.tenant AND f.subject_type = x.subject_type
       AND f.subject_id = x.subject_id AND f.id <= x.max_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO flags (subject, tenant_id, state, flag, published_at)
    SELECT x.flag ->> 'subject', x.tenant, x.flag ->> 'state', x.flag, now()
      FROM jsonb_to_recordset(p) AS x(tenant text, flag jsonb)
     WHERE x.flag IS NOT NULL
    ON CONFLICT (subject) DO UPDATE SET state = EXCLUDED.state, flag = EXCLUDED.flag,
                                        published_at = EXCLUDED.published_at;
    RETURN n;
END $$;
