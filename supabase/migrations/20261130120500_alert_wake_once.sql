-- One pg_net wake per transaction, not one per delivery: each delivery is its own INSERT statement,
-- so the statement trigger woke the dispatcher once per delivery, and a sweep that found 50 agents
-- silent (or 1,000 flips committed together) queued 50 (1,000) HTTP calls to the dispatch function,
-- each a billed invocation, where one drains them all. A transaction-local flag remembers the wake.
create or replace function agent_private.alert_deliveries_wake() returns trigger
  language plpgsql security definer set search_path = ''
as $$
begin
  if current_setting('agent_status.alert_woken', true) = 'yes' then
    return null;
  end if;
  perform set_config('agent_status.alert_woken', 'yes', true);
  perform agent_private.alert_wake();
  return null;
exception when others then
  -- a wake is a latency hint; the schedule catches up, and a flip must never fail because of it
  raise warning 'agent-status: could not wake the dispatcher: %', sqlerrm;
  return null;
end
$$;
