-- 012: room on every page of the rollup tables for the next version of its
-- rows.
--
-- Every batch updates the rollup rows it touches. With full pages (the
-- default fillfactor, 100) most of those updates cannot stay on the row's
-- page: the new version goes elsewhere and every index of the table gets a
-- new entry (for rollups: the primary key and rollups_open). In a
-- 300,000-event catch-up only 37 % of the updates of either table were HOT
-- (heap-only: no index entry); with pages filled to 70 %, 90 % were, and the
-- catch-up wrote 10 % less WAL. Only pages written from now on get the room;
-- a VACUUM FULL or pg_repack of the two tables applies it to old ones.
ALTER TABLE rollups SET (fillfactor = 70);
ALTER TABLE rollup_breakdown SET (fillfactor = 70);
