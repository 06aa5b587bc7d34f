-- The hot path's statements read their tables by index, whatever the
-- tables held when they were planned.
--
-- Since 0009_generic_plans.sql each statement of these functions is
-- planned once per connection, on its first call there, and the plan is
-- kept for as long as the connection lives (an hour by default) or until
-- the table's statistics change. A plan made while a table was empty or
-- small reads it whole, and the planner chose that for the settlement:
-- releasing a batch's holds scanned every row of reservations (the holds
-- in flight, and their dead rows until the next vacuum), and giving their
-- rate events their real token counts scanned every row of rate_events
-- (the events of the last minute of every rate-limited account), once per
-- batch, however full the tables had grown since.
--
-- Every table these functions touch is read by key (a hold id, an
-- account, a budget period) and has an index for it, and their other
-- inputs are the batch's arrays, of at most a few hundred elements: an
-- index lookup per element is the right plan at any table size. So they
-- run with sequential scans off, and the settlement, whose two joins
-- match the batch's holds against the tables, with hash and merge joins
-- off too (a nested loop of index lookups; a hash join would read a
-- whole index instead). As with plan_cache_mode, the settings are the
-- functions' own; they touch no other statement.
ALTER FUNCTION gateway_admit SET enable_seqscan = off;
ALTER FUNCTION gateway_admit_batch SET enable_seqscan = off;
ALTER FUNCTION gateway_settle SET enable_seqscan = off;
ALTER FUNCTION gateway_settle SET enable_hashjoin = off;
ALTER FUNCTION gateway_settle SET enable_mergejoin = off;
