-- Applying a batch (repeatable: re-applied whenever this file changes). meterd COPYs a validated batch into the session's
-- staging tables and calls meter_apply_batch() inside its transaction; the
-- whole batch (offsets, dedupe, event log, rollups, rejects) commits or rolls
-- back as one.

-- Create the session's staging tables (temporary, emptied at commit). The
-- column order is the COPY order used by aggregator/aggregator.c.
CREATE OR REPLACE FUNCTION meter_stage_prepare() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    SET LOCAL client_min_messages = warning;
    CREATE TEMP TABLE IF NOT EXISTS stage_events (
        occurred_at         timestamptz NOT NULL,
        tenant_id           text NOT NULL,
        event_id            text NOT NULL,
        user_id             text,
        api_key_id          text,
        provider            text NOT NULL,
        model               text NOT NULL,
        operation           text NOT NULL,
        source              text NOT NULL,
        type                text NOT NULL,
        input_tokens        bigint NOT NULL,
        cached_input_tokens bigint NOT NULL,
        output_tokens       bigint NOT NULL,
        reasoning_tokens    bigint NOT NULL,
        requests            bigint NOT NULL,
        units               jsonb,
        cost_pusd           bigint,
        endpoint            text,
        method              text,
        status_code         int,
        latency_ms          bigint,
        workflow_id         text,
        execution_id        text,
        metadata            jsonb,
        kafka_topic         text NOT NULL,
        kafka_partition     int NOT NULL,
        kafka_offset        bigint NOT NULL
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS stage_rejects (
        kafka_topic     text NOT NULL,
        kafka_partition int NOT NULL,
        kafka_offset    bigint NOT NULL,
        kafka_key       bytea,
        reason          text NOT NULL,
        detail          text NOT NULL,
        tenant_id       text,
        event_id        text,
        payload         bytea NOT NULL,
        payload_size    int NOT NULL
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS stage_counted (
        occurred_at   timestamptz NOT NULL,
        tenant_id     text NOT NULL,
        user_id       text,
        api_key_id    text,
        provider      text NOT NULL,
        model         text NOT NULL,
        operation     text NOT NULL,
        input_tokens        bigint NOT NULL,
        cached_input_tokens bigint NOT NULL,
        output_tokens       bigint NOT NULL,
        reasoning_tokens    bigint NOT NULL,
        requests      bigint NOT NULL,
        units         jsonb,
        cost_pusd     numeric(38,0) NOT NULL,
        day_start     date NOT NULL,
        month_start   date NOT NULL
    ) ON COMMIT DELETE ROWS;
END $$;

-- Make sure the monthly partition of events holding ts exists.
CREATE OR REPLACE FUNCTION meter_ensure_event_partition(ts timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    lo timestamptz := date_trunc('month', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    hi timestamptz := lo + interval '1 month';
    name text := 'events_' || to_char(lo AT TIME ZONE 'UTC', 'YYYY_MM');
BEGIN
    IF to_regclass(name) IS NULL THEN
        -- Serialise creators: two workers may meet a new month together.
        PERFORM pg_advisory_xact_lock(hashtext('meter_event_partitions'));
        IF to_regclass(name) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                           name, lo, hi);
        END IF;
    END IF;
    RETURN name;
END $$;

-- Apply the staged batch. p_partitions[i] is a partition of p_topic present
-- in the batch, p_expected[i] the next_offset this consumer believes is
-- stored for it (-1: none stored yet) and p_next[i] the offset after the
-- batch's last message. If the stored offset is not the expected one, another
-- consumer has committed that partition since: raise MT001 so the caller
-- rolls back and re-reads its offsets (zombie fencing).
DROP FUNCTION IF EXISTS meter_apply_batch(text, text, int[], bigint[], bigint[], text);
CREATE FUNCTION meter_apply_batch(p_group text, p_topic text, p_partitions int[],
                                  p_expected bigint[], p_next bigint[], p_default_plan text,
                                  OUT counted int, OUT duplicates int, OUT rejected int,
                                  OUT crossings int)
LANGUAGE plpgsql AS $$
DECLARE
    n int;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_partitions, 1), 0) LOOP
        IF p_expected[i] < 0 THEN
            INSERT INTO consumer_offsets (group_id, topic, partition, next_offset)
            VALUES (p_group, p_topic, p_partitions[i], p_next[i])
            ON CONFLICT DO NOTHING;
        ELSE
            UPDATE consumer_offsets
               SET next_offset = p_next[i], updated_at = now()
             WHERE group_id = p_group AND topic = p_topic
               AND partition = p_partitions[i] AND next_offset = p_expected[i];
        END IF;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n <> 1 THEN
            RAISE EXCEPTION 'partition %[%] was committed by another consumer of group %',
                p_topic, p_partitions[i], p_group USING ERRCODE = 'MT001';
        END IF;
    END LOOP;

    -- Tenants seen before being added are counted on the default plan.
    INSERT INTO tenants (id, plan_id, auto_created)
    SELECT DISTINCT s.tenant_id, p_default_plan, true
      FROM stage_events s
     WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = s.tenant_id)
    ON CONFLICT DO NOTHING;

    -- Dedupe against everything counted before (the batch itself was
    -- deduplicated by the caller). Only rows that insert are new.
    WITH fresh AS (
        INSERT INTO event_ids (tenant_id, event_id, occurred_at)
        SELECT tenant_id, event_id, occurred_at FROM stage_events
        ON CONFLICT DO NOTHING
        RETURNING tenant_id, event_id
    ), priced AS (
        SELECT s.*,
               (s.occurred_at AT TIME ZONE t.tz) AS local_ts,
               pr.id AS price_id,
               CASE WHEN s.cost_pusd IS NOT NULL THEN s.cost_pusd::numeric
                    WHEN pr.id IS NOT NULL THEN
                        (s.input_tokens - s.cached_input_tokens)::numeric * pr.input_pusd
                        + s.cached_input_tokens::numeric * pr.cached_input_pusd
                        + s.output_tokens::numeric * pr.output_pusd
                        + s.requests::numeric * pr.request_pusd
                        + coalesce((SELECT sum(u.value::numeric * (pr.unit_pusd ->> u.key)::numeric)
                                      FROM jsonb_each_text(s.units) u
                                     WHERE pr.unit_pusd ? u.key), 0)
                    ELSE 0 END AS cost,
               CASE WHEN s.cost_pusd IS NOT NULL THEN 'event'
                    WHEN pr.id IS NOT NULL THEN 'price'
                    ELSE 'unpriced' END AS cost_source
          FROM stage_events s
          JOIN fresh f ON f.tenant_id = s.tenant_id AND f.event_id = s.event_id
          JOIN tenants t ON t.id = s.tenant_id
          LEFT JOIN LATERAL (
                SELECT p.* FROM prices p
                 WHERE p.provider = s.provider
                   AND (p.model = s.model OR left(s.model, length(p.model) + 1) = p.model || '-')
                   AND p.valid_from <= s.occurred_at
                 ORDER BY length(p.model) DESC, p.valid_from DESC
                 LIMIT 1) pr ON true
    ), logged AS (
        INSERT INTO events (occurred_at, tenant_id, event_id, user_id, api_key_id, provider,
                            model, operation, source, type, input_tokens, cached_input_tokens,
                            output_tokens, reasoning_tokens, requests, units, cost_pusd,
                            cost_source, price_id, endpoint, method, status_code, latency_ms,
                            workflow_id, execution_id, metadata, kafka_topic, kafka_partition,
                            kafka_offset)
        SELECT occurred_at, tenant_id, event_id, user_id, api_key_id, provider, model,
               operation, source, type, input_tokens, cached_input_tokens, output_tokens,
               reasoning_tokens, requests, units, cost, cost_source, price_id, endpoint, method,
               status_code, latency_ms, workflow_id, execution_id, metadata, kafka_topic,
               kafka_partition, kafka_offset
          FROM priced
        RETURNING 1
    )
    INSERT INTO stage_counted
    SELECT occurred_at, tenant_id, user_id, api_key_id, provider, model, operation,
           input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, requests, units,
           cost, local_ts::date, date_trunc('month', local_ts)::date
      FROM priced;
    GET DIAGNOSTICS counted = ROW_COUNT;

    SELECT count(*) - counted INTO duplicates FROM stage_events;

    -- Rollups: every counted event adds to its tenant, user and key, for the
    -- day and the month in the tenant's time zone. Rows are written in key
    -- order so that concurrent workers cannot deadlock.
    INSERT INTO rollups AS r (tenant_id, subject_type, subject_id, period, period_start, events,
                              requests, input_tokens, cached_input_tokens, output_tokens,
                              reasoning_tokens, cost_pusd)
    SELECT c.tenant_id, sub.kind, sub.id, per.kind,
           CASE per.kind WHEN 'day' THEN c.day_start ELSE c.month_start END,
           count(*), sum(c.requests), sum(c.input_tokens), sum(c.cached_input_tokens),
           sum(c.output_tokens), sum(c.reasoning_tokens), sum(c.cost_pusd)
      FROM stage_counted c
     CROSS JOIN LATERAL (VALUES ('tenant', ''), ('user', c.user_id), ('key', c.api_key_id)) sub(kind, id)
     CROSS JOIN (VALUES ('day'), ('month')) per(kind)
     WHERE sub.id IS NOT NULL
     GROUP BY 1, 2, 3, 4, 5
     ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (tenant_id, subject_type, subject_id, period, period_start) DO UPDATE SET
        events = r.events + EXCLUDED.events,
        requests = r.requests + EXCLUDED.requests,
        input_tokens = r.input_tokens + EXCLUDED.input_tokens,
        cached_input_tokens = r.cached_input_tokens + EXCLUDED.cached_input_tokens,
        output_tokens = r.output_tokens + EXCLUDED.output_tokens,
        reasoning_tokens = r.reasoning_tokens + EXCLUDED.reasoning_tokens,
        cost_pusd = r.cost_pusd + EXCLUDED.cost_pusd,
        updated_at = now();

    INSERT INTO rollup_breakdown AS r (tenant_id, subject_type, subject_id, period, period_start,
                                       dim, name, events, requests, input_tokens,
                                       cached_input_tokens, output_tokens, reasoning_tokens,
                                       cost_pusd, quantity)
    SELECT c.tenant_id, sub.kind, sub.id, per.kind,
           CASE per.kind WHEN 'day' THEN c.day_start ELSE c.month_start END,
           d.dim, d.name, count(*), sum(c.requests), sum(c.input_tokens),
           sum(c.cached_input_tokens), sum(c.output_tokens), sum(c.reasoning_tokens),
           sum(c.cost_pusd), sum(d.quantity)
      FROM stage_counted c
     CROSS JOIN LATERAL (VALUES ('tenant', ''), ('user', c.user_id), ('key', c.api_key_id)) sub(kind, id)
     CROSS JOIN (VALUES ('day'), ('month')) per(kind)
     CROSS JOIN LATERAL (
            SELECT 'operation' AS dim, c.operation AS name, 0::numeric AS quantity
            UNION ALL
            -- By model and by unit for the tenant only (billing and the usage
            -- API); users and keys get operations, which per-operation limits
            -- need. This halves the rows a batch writes.
            SELECT 'model', coalesce(nullif(c.provider, ''), 'unknown') || '/'
                            || coalesce(nullif(c.model, ''), 'unknown'), 0
             WHERE sub.kind = 'tenant'
            UNION ALL
            SELECT 'unit', u.key, u.value::numeric FROM jsonb_each_text(c.units) u
             WHERE sub.kind = 'tenant'
        ) d
     WHERE sub.id IS NOT NULL
     GROUP BY 1, 2, 3, 4, 5, 6, 7
     ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (tenant_id, subject_type, subject_id, period, period_start, dim, name) DO UPDATE SET
        events = r.events + EXCLUDED.events,
        requests = r.requests + EXCLUDED.requests,
        input_tokens = r.input_tokens + EXCLUDED.input_tokens,
        cached_input_tokens = r.cached_input_tokens + EXCLUDED.cached_input_tokens,
        output_tokens = r.output_tokens + EXCLUDED.output_tokens,
        reasoning_tokens = r.reasoning_tokens + EXCLUDED.reasoning_tokens,
        cost_pusd = r.cost_pusd + EXCLUDED.cost_pusd,
        quantity = r.quantity + EXCLUDED.quantity;

    -- Limits: compare the new totals of every subject the batch touched
    -- with the limits that apply to it, in this same transaction.
    SELECT meter_evaluate(array_agg(x.tenant_id), array_agg(x.kind), array_agg(x.id))
      INTO crossings
      FROM (SELECT DISTINCT c.tenant_id, sub.kind, sub.id
              FROM stage_counted c
             CROSS JOIN LATERAL (VALUES ('tenant', ''), ('user', c.user_id),
                                        ('key', c.api_key_id)) sub(kind, id)
             WHERE sub.id IS NOT NULL) x;

    INSERT INTO rejected_events (kafka_topic, kafka_partition, kafka_offset, kafka_key, reason,
                                 detail, tenant_id, event_id, payload, payload_size)
    SELECT kafka_topic, kafka_partition, kafka_offset, kafka_key, reason, detail, tenant_id,
           event_id, payload, payload_size
      FROM stage_rejects
    ON CONFLICT (kafka_topic, kafka_partition, kafka_offset) DO NOTHING;
    GET DIAGNOSTICS rejected = ROW_COUNT;
END $$;
