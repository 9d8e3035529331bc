-- 008: the rollup outbox behind usage.rollups (billing).
--
-- Each batch transaction appends one row naming the rollup rows it changed
-- (arrays: one row per batch, however many rows it touched); the publisher
-- drains them, reads the rows' current totals and publishes one record per
-- key. A row marked closed names rollups whose period ended more than the
-- lateness bound ago (no event can change them any more): their record is
-- the final one, type "closed".
CREATE TABLE rollup_outbox (
    id            bigserial PRIMARY KEY,
    tenant_ids    text[] NOT NULL,
    subject_types text[] NOT NULL,
    subject_ids   text[] NOT NULL,
    periods       text[] NOT NULL,
    period_starts date[] NOT NULL,
    closed        boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- When the final record of a rollup was queued; NULL while its period can
-- still change. The partial index finds the open ones.
ALTER TABLE rollups ADD COLUMN closed_at timestamptz;
CREATE INDEX rollups_open ON rollups (period_start) WHERE closed_at IS NULL;
