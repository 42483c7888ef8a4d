-- One source for two shapes that were written several times.
--
-- The agent-state answer (what heartbeat and report tell an agent after applying its call) was built
-- by the heartbeat batch here in SQL and again by the report function as a select list in TypeScript.
-- agent_private.agent_state_json builds it once; every SQL path that answers an agent's state uses it,
-- and its keys are shared/api/agent.ts AgentState (tests/functions check answers against that schema).
create function agent_private.agent_state_json(agent public.agent_status) returns jsonb
  language sql stable set search_path = ''
as $$
  select jsonb_build_object(
    'agent_name', agent.agent_name, 'status', agent.status, 'health', agent.health,
    'last_heartbeat', agent.last_heartbeat, 'last_error', agent.last_error,
    'last_activity', agent.last_activity, 'status_reason', agent.status_reason,
    'started_at', agent.started_at, 'stopped_at', agent.stopped_at, 'stale_at', agent.stale_at,
    'updated_at', agent.updated_at)
$$;

-- From 20261124000600_agent_heartbeat_batch.sql, with the answer built by agent_state_json.
create or replace function agent_private.heartbeat_batch_item(item jsonb) returns jsonb
  language plpgsql set search_path = ''
as $$
declare
  agent public.agent_status;
begin
  if jsonb_typeof(item) <> 'object' then
    perform agent_private.invalid('each heartbeat must be a JSON object');
  end if;
  agent := public.agent_heartbeat(
    item ->> 'token', item ->> 'agent_name', item ->> 'status',
    (item ->> 'health')::integer, item ->> 'last_activity', (item ->> 'pid')::integer);
  return jsonb_build_object('agent', agent_private.agent_state_json(agent));
end
$$;

-- The edge functions call it over their own database connection (as the owner); nobody else needs it.
revoke execute on function agent_private.agent_state_json(public.agent_status) from public, anon, authenticated, service_role;

-- One way to queue a command: every client (dashboard, Start all, CLI, /functions/v1/command) calls
-- public.enqueue_agent_commands with its own identity, which checks the operator and the action
-- before inserting. The dashboard's direct insert under RLS was a second path with its own checks
-- (the policy and the column grant); nothing uses it any more, so it goes.
drop policy operators_insert on public.agent_commands;
revoke insert on public.agent_commands from authenticated;
