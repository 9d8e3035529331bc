-- Reading usage (repeatable: re-applied whenever this file changes). One function answers "how much has this subject used
-- in this period, against which limits" as a JSON document; meterctl prints
-- it and the HTTP API serves it, so both say the same thing.
--
-- Counts are JSON integers. Money (cost_pusd, and limit/used/remaining of
-- the cost metric) is a string of pico-USD digits, because it can exceed
-- what JSON parsers hold exactly in a number; cost_usd is the same amount
-- as a decimal string.

CREATE OR REPLACE FUNCTION meter_pusd_to_usd(p numeric) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p < 0 THEN '-' ELSE '' END
        || trunc(abs(p) / 1000000000000)::text || '.'
        || lpad((abs(p) % 1000000000000)::text, 12, '0')
$$;

-- A time as RFC 3339 in UTC, to the second.
CREATE OR REPLACE FUNCTION meter_utc_text(p timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(p AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

CREATE OR REPLACE FUNCTION meter_totals_json(events bigint, requests bigint, input bigint, cached bigint,
                                  output bigint, reasoning bigint, cost numeric)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'events', coalesce(events, 0),
        'requests', coalesce(requests, 0),
        'input_tokens', coalesce(input, 0),
        'cached_input_tokens', coalesce(cached, 0),
        'output_tokens', coalesce(output, 0),
        'reasoning_tokens', coalesce(reasoning, 0),
        'total_tokens', coalesce(input, 0) + coalesce(output, 0),
        'cost_pusd', coalesce(cost, 0)::text,
        'cost_usd', meter_pusd_to_usd(coalesce(cost, 0)))
$$;

-- Usage of one subject (subject_type tenant with subject_id '', user or key)
-- in one period (day or month) starting at the local date p_date (NULL:
-- the current period in the tenant's zone). NULL if the tenant is unknown.
CREATE OR REPLACE FUNCTION meter_usage(p_tenant text, p_subject_type text, p_subject_id text,
                            p_period text, p_date date) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    t tenants%ROWTYPE;
    v_plan text;
    v_start date;
    v_end date;
    r rollups%ROWTYPE;
    v_ops jsonb;
    v_models jsonb;
    v_units jsonb;
    v_limits jsonb;
    v_subject text;
    v_resets text;
BEGIN
    SELECT * INTO t FROM tenants WHERE id = p_tenant;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    v_plan := meter_effective_plan(t.plan_id, t.plan_expires_at);
    v_start := coalesce(p_date, (meter_now() AT TIME ZONE t.tz)::date);
    IF p_period = 'month' THEN
        v_start := date_trunc('month', v_start)::date;
        v_end := (v_start + interval '1 month')::date;
    ELSE
        v_end := v_start + 1;
    END IF;
    v_resets := meter_utc_text(v_end::timestamp AT TIME ZONE t.tz);
    v_subject := CASE p_subject_type WHEN 'tenant' THEN 'tenant/' || p_tenant
                 ELSE p_subject_type || '/' || p_tenant || '/' || p_subject_id END;

    SELECT * INTO r FROM rollups
     WHERE tenant_id = p_tenant AND subject_type = p_subject_type
       AND subject_id = p_subject_id AND period = p_period AND period_start = v_start;

    SELECT coalesce(jsonb_object_agg(name, meter_totals_json(events, requests, input_tokens,
                        cached_input_tokens, output_tokens, reasoning_tokens, cost_pusd)
                        ORDER BY name) FILTER (WHERE dim = 'operation'), '{}'),
           coalesce(jsonb_object_agg(name, meter_totals_json(events, requests, input_tokens,
                        cached_input_tokens, output_tokens, reasoning_tokens, cost_pusd)
                        ORDER BY name) FILTER (WHERE dim = 'model'), '{}'),
           coalesce(jsonb_object_agg(name, quantity ORDER BY name)
                        FILTER (WHERE dim = 'unit'), '{}')
      INTO v_ops, v_models, v_units
      FROM meter_breakdown(p_tenant, p_subject_type, p_subject_id, p_period, v_start);

    -- Limits of this period (and, in a day view, the rolling 30-day window
    -- ending that day), with usage as it counts against them (after resets).
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'metric', l.metric,
               'period', l.period,
               'source', l.source,
               'limit', CASE WHEN l.limit_value IS NULL THEN 'null'::jsonb
                             WHEN l.metric = 'cost' THEN to_jsonb(l.limit_value::text)
                             ELSE to_jsonb(l.limit_value) END,
               'used', CASE WHEN l.metric = 'cost' THEN to_jsonb(u.used::text)
                            ELSE to_jsonb(u.used) END,
               'remaining', CASE WHEN l.limit_value IS NULL THEN 'null'::jsonb
                                 WHEN l.metric = 'cost'
                                 THEN to_jsonb(greatest(l.limit_value - u.used, 0)::text)
                                 ELSE to_jsonb(greatest(l.limit_value - u.used, 0)) END,
               'percent', CASE WHEN l.limit_value IS NULL THEN 'null'::jsonb
                               WHEN l.limit_value = 0 THEN to_jsonb(100.00)
                               ELSE to_jsonb(round(u.used * 100.0 / l.limit_value, 2)) END,
               -- When the usage counted against this limit starts over: the
               -- period's end; a rolling window slides instead, so only
               -- once it is at its limit, the first midnight at which it
               -- falls below (the flag's until), and null otherwise.
               'resets_at', CASE WHEN l.period <> 'rolling30' THEN to_jsonb(v_resets)
                                 WHEN l.limit_value IS NOT NULL AND u.used >= l.limit_value
                                 THEN to_jsonb(meter_utc_text(meter_rolling_until(
                                          p_tenant, p_subject_type, p_subject_id, l.metric,
                                          t.tz, l.limit_value, v_start)))
                                 ELSE 'null'::jsonb END)
               ORDER BY l.period, l.metric), '[]')
      INTO v_limits
      FROM meter_effective_limits(p_tenant, p_subject_type, p_subject_id) l
     CROSS JOIN LATERAL (
        SELECT meter_limit_used(p_tenant, p_subject_type, p_subject_id, l.metric, l.period,
                                CASE WHEN l.period = 'rolling30' THEN v_start - 29
                                     ELSE v_start END) AS used) u
     WHERE l.period = p_period OR (l.period = 'rolling30' AND p_period = 'day');

    RETURN jsonb_build_object(
        'tenant', p_tenant,
        'subject', v_subject,
        'subject_type', p_subject_type,
        'subject_id', CASE WHEN p_subject_type = 'tenant' THEN NULL ELSE p_subject_id END,
        'plan', v_plan,
        'timezone', t.tz,
        'period', p_period,
        'period_start', v_start,
        'period_end', v_end,
        'resets_at', v_resets,
        'usage', meter_totals_json(r.events, r.requests, r.input_tokens, r.cached_input_tokens,
                                   r.output_tokens, r.reasoning_tokens, r.cost_pusd),
        'operations', v_ops,
        'models', v_models,
        'units', v_units,
        'limits', v_limits,
        'flag', meter_current_flag(p_tenant, p_subject_type, p_subject_id));
END $$;
