-- Applying a batch (repeatable: re-applied whenever this file changes). meterd COPYs a validated batch into the session's
-- staging tables and calls meter_apply_batch() inside its transaction; the
-- whole batch (offsets, dedupe, event log, rollups, rejects) commits or rolls
-- back as one.

-- Create the session's staging tables (temporary, emptied at commit). The
-- column order is the COPY order used by aggregator/aggregator.c and
-- aggregator/rollup.c. Key columns sort in "C", like the tables' keys (see
-- 009_key_collation.sql) and like the order meterd writes the rows in.
DROP FUNCTION IF EXISTS meter_stage_prepare();
CREATE FUNCTION meter_stage_prepare() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    SET LOCAL client_min_messages = warning;
    -- The batch's (tenant, id) pairs; idx is the message's place in the batch.
    CREATE TEMP TABLE IF NOT EXISTS stage_ids (
        idx         int NOT NULL,
        tenant_id   text COLLATE "C" NOT NULL,
        event_id    text COLLATE "C" NOT NULL,
        occurred_at timestamptz NOT NULL
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
        payload_size    int NOT NULL,
        dlq_pending     boolean NOT NULL
    ) ON COMMIT DELETE ROWS;
    -- The batch's new events added up per rollup row (and breakdown entry).
    CREATE TEMP TABLE IF NOT EXISTS stage_rollups (
        tenant_id           text COLLATE "C" NOT NULL,
        subject_type        text COLLATE "C" NOT NULL,
        subject_id          text COLLATE "C" NOT NULL,
        period              text COLLATE "C" NOT NULL,
        period_start        date NOT NULL,
        events              bigint NOT NULL,
        requests            bigint NOT NULL,
        input_tokens        bigint NOT NULL,
        cached_input_tokens bigint NOT NULL,
        output_tokens       bigint NOT NULL,
        reasoning_tokens    bigint NOT NULL,
        cost_pusd           numeric(38,0) NOT NULL
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS stage_breakdown (
        tenant_id           text COLLATE "C" NOT NULL,
        subject_type        text COLLATE "C" NOT NULL,
        subject_id          text COLLATE "C" NOT NULL,
        period              text COLLATE "C" NOT NULL,
        period_start        date NOT NULL,
        dim                 text COLLATE "C" NOT NULL,
        name                text COLLATE "C" NOT NULL,
        events              bigint NOT NULL,
        requests            bigint NOT NULL,
        input_tokens        bigint NOT NULL,
        cached_input_tokens bigint NOT NULL,
        output_tokens       bigint NOT NULL,
        reasoning_tokens    bigint NOT NULL,
        cost_pusd           numeric(38,0) NOT NULL,
        quantity            numeric(38,0) NOT NULL
    ) ON COMMIT DELETE ROWS;
END $$;

-- The batch's tenants with their zones; tenants seen before being added are
-- created on the default plan (README: "Unknown tenants").
CREATE OR REPLACE FUNCTION meter_batch_tenants(p_ids text[], p_default_plan text)
RETURNS TABLE (id text, tz text)
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tenants (id, plan_id, auto_created)
    SELECT u.id, p_default_plan, true
      FROM unnest(p_ids) AS u(id)
     WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = u.id)
     ORDER BY 1
    ON CONFLICT DO NOTHING;
    RETURN QUERY SELECT t.id, t.tz FROM tenants t WHERE t.id = ANY (p_ids);
END $$;

-- Dedupe against everything counted before (the batch itself was
-- deduplicated by the caller): insert the staged pairs into event_ids and
-- return the idx of those already there. Inserted in key order so that two
-- workers meeting the same ids cannot deadlock.
DROP FUNCTION IF EXISTS meter_dedupe();
CREATE FUNCTION meter_dedupe() RETURNS TABLE (idx int)
LANGUAGE sql AS $$
    WITH fresh AS (
        INSERT INTO event_ids (tenant_id, event_id, occurred_at)
        SELECT tenant_id, event_id, occurred_at FROM stage_ids ORDER BY tenant_id, event_id
        ON CONFLICT DO NOTHING
        RETURNING tenant_id, event_id
    )
    SELECT s.idx FROM stage_ids s
     WHERE NOT EXISTS (SELECT 1 FROM fresh f
                        WHERE f.tenant_id = s.tenant_id AND f.event_id = s.event_id)
$$;

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
        -- The lock does not refresh this backend's view of the catalog:
        -- the partition another worker created while we waited may still
        -- look missing here, and creating it then fails as a duplicate.
        BEGIN
            EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                           name, lo, hi);
        EXCEPTION WHEN duplicate_table THEN
            NULL;
        END;
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
DROP FUNCTION IF EXISTS meter_apply_batch(text, text, int[], bigint[], bigint[]);
CREATE FUNCTION meter_apply_batch(p_group text, p_topic text, p_partitions int[],
                                  p_expected bigint[], p_next bigint[],
                                  OUT rejected int, OUT crossings int)
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

    -- Rollups: one upsert per row the batch touched, in key order so that
    -- concurrent workers cannot deadlock.
    INSERT INTO rollups AS r (tenant_id, subject_type, subject_id, period, period_start, events,
                              requests, input_tokens, cached_input_tokens, output_tokens,
                              reasoning_tokens, cost_pusd)
    SELECT tenant_id, subject_type, subject_id, period, period_start, events, requests,
           input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, cost_pusd
      FROM stage_rollups
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
    SELECT * FROM stage_breakdown
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

    -- Billing: name the changed rows for the usage.rollups publisher.
    INSERT INTO rollup_outbox (tenant_ids, subject_types, subject_ids, periods, period_starts)
    SELECT array_agg(tenant_id), array_agg(subject_type), array_agg(subject_id),
           array_agg(period), array_agg(period_start)
      FROM stage_rollups
    HAVING count(*) > 0;

    -- Limits: compare the new totals of every subject the batch touched
    -- with the limits that apply to it, in this same transaction.
    SELECT coalesce(meter_evaluate(array_agg(x.tenant_id), array_agg(x.subject_type),
                                   array_agg(x.subject_id)), 0)
      INTO crossings
      FROM (SELECT DISTINCT tenant_id, subject_type, subject_id FROM stage_rollups) x;

    INSERT INTO rejected_events (kafka_topic, kafka_partition, kafka_offset, kafka_key, reason,
                                 detail, tenant_id, event_id, payload, payload_size,
                                 dlq_pending)
    SELECT kafka_topic, kafka_partition, kafka_offset, kafka_key, reason, detail, tenant_id,
           event_id, payload, payload_size, dlq_pending
      FROM stage_rejects
    ON CONFLICT (kafka_topic, kafka_partition, kafka_offset) DO NOTHING;
    GET DIAGNOSTICS rejected = ROW_COUNT;
END $$;
