-- The usage.rollups records (repeatable: re-applied whenever this file
-- changes). See sql/008_rollup_outbox.sql and consumer/rollups.c.

-- Key of a rollup record: tenant/acme/month/2026-11, user/acme/u-1/day/2026-11-23.
CREATE OR REPLACE FUNCTION meter_rollup_key(p_tenant text, p_type text, p_id text, p_period text,
                                            p_start date)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT meter_subject(p_type, p_tenant, p_id) || '/' || p_period || '/'
           || to_char(p_start, CASE p_period WHEN 'month' THEN 'YYYY-MM' ELSE 'YYYY-MM-DD' END)
$$;

-- The records for the outbox rows with id <= p_upto: one per distinct key,
-- with the row's current totals, the limits that apply to the subject in
-- that period (used counts from the last reset; billing totals never reset)
-- and whether a crossing blocks it. A key named by a closed outbox row gets
-- type "closed".
-- One row per record, its fields by name (the column names are the JSON
-- names; limits is JSON text). consumer/records.c writes the JSON and the
-- record's key (meter_rollup_key): building them here cost ~20 us per
-- record with json(b)_build_object and ~3 us for the key, half of this
-- function's time. It also fills the columns left NULL here: subject,
-- cost_usd, and starts_at / ends_at from meter_period_bounds() once per
-- zone, period and start (per record, the bounds were 14 % of this
-- function's time, subject and cost_usd ~8 %).
DROP FUNCTION IF EXISTS meter_rollup_records(bigint);
DROP FUNCTION IF EXISTS meter_rollup_rows(bigint);
CREATE FUNCTION meter_rollup_rows(p_upto bigint)
RETURNS TABLE (type text, subject text, tenant_id text, subject_type text,
               subject_id text, period text, period_start text, tz text, starts_at text,
               ends_at text, events bigint, requests bigint, input_tokens bigint,
               cached_input_tokens bigint, output_tokens bigint, reasoning_tokens bigint,
               tokens bigint, cost_pusd text, cost_usd text, limits text, blocked boolean,
               price_version bigint, updated_at text)
LANGUAGE sql STABLE AS $$
    -- The keys in key order: looking the rows up in index order cost ~20 %
    -- less than in hash order (24,000 keys: 253 against 320 ms, best of 24
    -- calls each), fewer cache misses in the primary key's pages. One sort
    -- does both the order and the distinct keys (a key named by a closed
    -- outbox row sorts first and is the one kept): ~25 % less than grouping
    -- by hash and then sorting (122,000 keys, 106,000 distinct: ~305
    -- against ~400 ms, five pairs alternating).
    WITH keys AS MATERIALIZED (
        SELECT DISTINCT ON (u.tenant_id, u.subject_type, u.subject_id, u.period, u.period_start)
               u.tenant_id, u.subject_type, u.subject_id, u.period, u.period_start, o.closed
          FROM rollup_outbox o
         CROSS JOIN LATERAL unnest(o.tenant_ids, o.subject_types, o.subject_ids, o.periods,
                                   o.period_starts)
                            AS u(tenant_id, subject_type, subject_id, period, period_start)
         WHERE o.id <= p_upto
         ORDER BY 1, 2, 3, 4, 5, o.closed DESC
    ), pv AS (SELECT coalesce(max(id), 0) AS v FROM prices)
    SELECT CASE WHEN k.closed THEN 'closed' ELSE 'rollup' END,
           NULL::text, -- subject
           r.tenant_id,
           r.subject_type,
           r.subject_id,
           r.period,
           to_char(r.period_start, 'YYYY-MM-DD'),
           t.tz,
           NULL::text, -- starts_at
           NULL::text, -- ends_at
           r.events,
           r.requests,
           r.input_tokens,
           r.cached_input_tokens,
           r.output_tokens,
           r.reasoning_tokens,
           r.input_tokens + r.output_tokens,
           r.cost_pusd::text,
           NULL::text, -- cost_usd
           -- Limits only for subjects that can have any: plans usually limit
           -- tenants, not each user and key. The gate is two hashed lookups,
           -- built once per call; as a LATERAL join gated inside, every
           -- record paid for the subquery's set-up (40 % of this function's
           -- time for 125,000 records, most of them without limits).
           CASE WHEN (meter_effective_plan(t.plan_id, t.plan_expires_at), r.subject_type,
                      r.period) IN (SELECT pl.plan_id, pl.subject_type, pl.period
                                      FROM plan_limits pl)
                  OR (r.tenant_id, r.subject_type, r.period) IN
                         (SELECT tl.tenant_id, tl.subject_type, tl.period FROM tenant_limits tl)
           THEN (
                SELECT jsonb_object_agg(e.metric, jsonb_build_object(
                           'limit', e.limit_value::text,
                           'used', x.used::text,
                           'remaining', CASE WHEN e.limit_value IS NULL THEN NULL
                                             ELSE greatest(e.limit_value - x.used, 0)::text END))
                       AS limits
                  FROM meter_effective_limits(r.tenant_id, r.subject_type, r.subject_id) e
                 -- used: the same arithmetic as meter_evaluate() (totals minus
                 -- the last reset's baseline), inline: a function call per limit
                 -- cost ~2 ms here.
                 CROSS JOIN LATERAL (
                        SELECT greatest(
                            coalesce(meter_metric_amount(e.metric, r.requests,
                                                         r.input_tokens + r.output_tokens,
                                                         r.cost_pusd,
                                                         CASE WHEN e.metric LIKE 'op:%' THEN
                                                             meter_op_requests(
                                                                 r.tenant_id, r.subject_type,
                                                                 r.subject_id, r.period,
                                                                 r.period_start,
                                                                 substr(e.metric, 4)) END), 0)
                            - coalesce((SELECT meter_metric_amount(
                                                   e.metric, rs.requests, rs.tokens, rs.cost_pusd,
                                                   (rs.operations ->> substr(e.metric, 4))::bigint)
                                          FROM usage_resets rs
                                         WHERE rs.tenant_id = r.tenant_id
                                           AND rs.subject_type = r.subject_type
                                           AND rs.subject_id = r.subject_id
                                           AND rs.period = r.period
                                           AND rs.period_start = r.period_start
                                         ORDER BY rs.id DESC LIMIT 1), 0), 0) AS used) x
                 WHERE e.period = r.period)::text END,
           EXISTS (SELECT 1 FROM blocks b
                    WHERE b.tenant_id = r.tenant_id
                      AND b.subject_type = r.subject_type
                      AND b.subject_id = r.subject_id AND b.period = r.period
                      AND b.period_start = r.period_start
                      AND b.cleared_at IS NULL),
           pv.v::bigint,
           to_char(r.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
      FROM keys k
      JOIN rollups r USING (tenant_id, subject_type, subject_id, period, period_start)
      JOIN tenants t ON t.id = r.tenant_id
     CROSS JOIN pv
$$;

-- A period's bounds in UTC, as the usage.rollups records give them: from
-- the start's local midnight in zone p_tz to the next period's.
CREATE OR REPLACE FUNCTION meter_period_bounds(p_tz text, p_period text, p_start date,
                                               OUT starts_at text, OUT ends_at text)
LANGUAGE sql STABLE AS $$
    SELECT to_char(p_start::timestamp AT TIME ZONE p_tz AT TIME ZONE 'UTC',
                   'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
           to_char(meter_period_end(p_tz, p_period, p_start) AT TIME ZONE 'UTC',
                   'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- Queue the final record of every rollup whose period ended more than
-- p_grace ago (the lateness bound plus a margin: no event can change it
-- any more). Returns how many were closed.
CREATE OR REPLACE FUNCTION meter_close_periods(p_grace interval) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    n int;
BEGIN
    WITH due AS (
        UPDATE rollups r SET closed_at = now()
          FROM tenants t
         WHERE r.closed_at IS NULL AND t.id = r.tenant_id
           -- Index-friendly bound first: every zone's date is within a day
           -- of UTC's.
           AND r.period_start < (meter_now() - p_grace)::date
           AND meter_period_end(t.tz, r.period, r.period_start) + p_grace <= meter_now()
        RETURNING r.tenant_id, r.subject_type, r.subject_id, r.period, r.period_start
    ), queued AS (
        INSERT INTO rollup_outbox (tenant_ids, subject_types, subject_ids, periods,
                                   period_starts, closed)
        SELECT array_agg(tenant_id), array_agg(subject_type), array_agg(subject_id),
               array_agg(period), array_agg(period_start), true
          FROM due
        HAVING count(*) > 0
        RETURNING cardinality(tenant_ids) AS n
    )
    SELECT coalesce(sum(queued.n), 0) INTO n FROM queued;
    RETURN n;
END $$;
