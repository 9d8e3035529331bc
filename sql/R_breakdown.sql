-- Reading breakdowns (repeatable: re-applied whenever this file changes).
-- rollup_breakdown holds day rows only (sql/011_breakdown_days.sql); a
-- month's breakdown is the sum of its days, in the tenant's local dates.

-- The local date after the period that starts at p_start.
CREATE OR REPLACE FUNCTION meter_period_next(p_period text, p_start date) RETURNS date
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_period WHEN 'month' THEN (p_start + interval '1 month')::date
                         ELSE p_start + 1 END
$$;

-- A subject's breakdown in the day or month that starts at p_start: one row
-- per (dim, name), dim 'operation', 'model' (provider/model) or 'unit'.
CREATE OR REPLACE FUNCTION meter_breakdown(p_tenant text, p_type text, p_id text,
                                           p_period text, p_start date)
RETURNS TABLE (dim text, name text, events bigint, requests bigint, input_tokens bigint,
               cached_input_tokens bigint, output_tokens bigint, reasoning_tokens bigint,
               cost_pusd numeric, quantity numeric)
LANGUAGE sql STABLE AS $$
    SELECT b.dim, b.name, sum(b.events)::bigint, sum(b.requests)::bigint,
           sum(b.input_tokens)::bigint, sum(b.cached_input_tokens)::bigint,
           sum(b.output_tokens)::bigint, sum(b.reasoning_tokens)::bigint,
           sum(b.cost_pusd), sum(b.quantity)
      FROM rollup_breakdown b
     WHERE b.tenant_id = p_tenant AND b.subject_type = p_type AND b.subject_id = p_id
       AND b.period = 'day' AND b.period_start >= p_start
       AND b.period_start < meter_period_next(p_period, p_start)
     GROUP BY b.dim, b.name
$$;

-- Requests of one operation in the day or month that starts at p_start
-- (per-operation limits); NULL when there were none.
CREATE OR REPLACE FUNCTION meter_op_requests(p_tenant text, p_type text, p_id text,
                                             p_period text, p_start date, p_op text)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT sum(b.requests)::bigint
      FROM rollup_breakdown b
     WHERE b.tenant_id = p_tenant AND b.subject_type = p_type AND b.subject_id = p_id
       AND b.period = 'day' AND b.period_start >= p_start
       AND b.period_start < meter_period_next(p_period, p_start)
       AND b.dim = 'operation' AND b.name = p_op
$$;
