-- 011: breakdowns are kept by day only.
--
-- A month's breakdown (by operation, model, unit) is the sum of the day rows
-- of that month: meter_breakdown() and meter_op_requests() in
-- sql/R_breakdown.sql add them up for every reader. Every batch wrote a
-- month row next to each day row, in the same transaction and with the same
-- sums, so the month rows hold nothing the day rows do not; dropping them
-- halves the breakdown rows a batch upserts. Rollups (the totals) keep
-- their month rows: limits, billing and the usage API read those by key.
DELETE FROM rollup_breakdown WHERE period = 'month';
ALTER TABLE rollup_breakdown ADD CONSTRAINT rollup_breakdown_by_day CHECK (period = 'day');
