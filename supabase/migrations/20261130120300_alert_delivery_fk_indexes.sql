-- The sweep prunes agent_events in batches of up to 10,000; each deleted event sets event_id to null
-- in alert_deliveries (on delete set null), and deleting an agent cascades to its deliveries. The only
-- index on event_id was the partial unique one (kind in ...), which those lookups cannot use, so each
-- of them scanned the whole outbox. Plain indexes for both foreign keys (tests/alerts/rules.test.ts,
-- "pruning history ...").
create index alert_deliveries_event_idx on public.alert_deliveries (event_id) where event_id is not null;
create index alert_deliveries_agent_idx on public.alert_deliveries (agent_id) where agent_id is not null;
