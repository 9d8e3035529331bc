-- 010: dead letters the broker has not acknowledged yet.
--
-- meterd sends a batch's rejects to the dead-letter topic before it commits
-- the batch, and waits a bounded time for the broker's acknowledgement.
-- When they are all acknowledged, the batch stores its rejected_events rows
-- with dlq_pending false; otherwise (broker down, errors, the wait ran out)
-- true, and the rollup publisher's thread sends those rows again until the
-- broker acknowledges them. Rows from before this migration were handled by
-- the old best-effort send and are not pending.
ALTER TABLE rejected_events ADD COLUMN dlq_pending boolean NOT NULL DEFAULT false;
ALTER TABLE rejected_events ALTER COLUMN dlq_pending SET DEFAULT true;
CREATE INDEX rejected_events_dlq_pending ON rejected_events (id) WHERE dlq_pending;
