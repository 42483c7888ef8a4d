-- Issue 22: a steady heartbeat becomes a heap-only (HOT) update of agent_status: no index on a
-- column it writes (stale_at, inactive_at, updated_at; nothing read updated_at through its index
-- any more), and room on each page for the row's next version. supabase/schemas/10_tables.sql says
-- what reads the table instead. Written by hand: pg-delta does not drop indexes.
drop index public.agent_status_inactive_at_idx;
drop index public.agent_status_stale_at_idx;
drop index public.agent_status_updated_at_idx;
-- for pages filled from now on; a full page still takes a heap-only update once pruned
alter table public.agent_status set (fillfactor = 80);
