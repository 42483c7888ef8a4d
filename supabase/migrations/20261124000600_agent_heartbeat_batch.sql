-- Heartbeats in batches: the heartbeat edge function gathers the heartbeats that arrive while its
-- previous statement is in flight and applies them with one statement, one round trip and one commit
-- instead of one each. Measured with `npm run bench` (docs/api.md): at 32 concurrent clients, one
-- statement per heartbeat reached ~0.4 of pgbench's rate on the same database; batches reach more.
--
-- Each item goes through public.agent_heartbeat, so validation, token checks and the state machine
-- stay in one place. The usual batch, where every heartbeat is fine, runs in one subtransaction
-- (pgbench, batches of 8, one client: 2040 heartbeats/s, against 1550/s with a subtransaction per
-- heartbeat and 1400/s for one agent_heartbeat per statement). Only when a heartbeat is refused is
-- the batch run again with a subtransaction per heartbeat, so that one fails alone, answered with
-- its own error, and writes nothing, while the others apply.

-- One item of a batch: its answer, {agent: {...}}, or the error agent_heartbeat raised.
create function agent_private.heartbeat_batch_item(item jsonb) returns jsonb
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
  return jsonb_build_object('agent', jsonb_build_object(
    'agent_name', agent.agent_name, 'status', agent.status, 'health', agent.health,
    'last_heartbeat', agent.last_heartbeat, 'last_error', agent.last_error,
    'last_activity', agent.last_activity, 'status_reason', agent.status_reason,
    'started_at', agent.started_at, 'stopped_at', agent.stopped_at, 'stale_at', agent.stale_at,
    'updated_at', agent.updated_at));
end
$$;

create function public.agent_heartbeat_batch(p_heartbeats jsonb) returns jsonb
  language plpgsql security definer set search_path = ''
as $$
declare
  item jsonb;
  n bigint;
  answers jsonb[];
  v_state text;
  v_message text;
  v_hint text;
begin
  if p_heartbeats is null or jsonb_typeof(p_heartbeats) <> 'array' then
    perform agent_private.invalid('heartbeats must be a JSON array of {"token", "agent_name", ...} objects');
  end if;
  -- More than 64 subtransactions overflow a backend's subtransaction cache and slow every snapshot
  -- on the server, so batches stay below that even when run one by one.
  if jsonb_array_length(p_heartbeats) > 50 then
    perform agent_private.invalid(format('at most 50 heartbeats per batch, got %s', jsonb_array_length(p_heartbeats)));
  end if;
  answers := array_fill(null::jsonb, array[jsonb_array_length(p_heartbeats)]);

  -- Rows are locked in agent_name order, the same order in every batch, so two batches touching the
  -- same agents wait for each other instead of deadlocking.
  begin
    for item, n in
      select value, ordinality from jsonb_array_elements(p_heartbeats) with ordinality
      order by value ->> 'agent_name', ordinality
    loop
      answers[n] := agent_private.heartbeat_batch_item(item);
    end loop;
    return to_jsonb(answers);
  exception
    when data_exception or integrity_constraint_violation or invalid_authorization_specification
         or no_data_found or object_not_in_prerequisite_state then
      null;  -- some heartbeat was refused and the whole batch rolled back: go one by one below
  end;

  for item, n in
    select value, ordinality from jsonb_array_elements(p_heartbeats) with ordinality
    order by value ->> 'agent_name', ordinality
  loop
    begin
      answers[n] := agent_private.heartbeat_batch_item(item);
    exception
      -- Only the caller's mistakes are answered per item; anything else (a deadlock, a lost
      -- connection) fails the whole batch so the caller retries it.
      when data_exception or integrity_constraint_violation or invalid_authorization_specification
           or no_data_found or object_not_in_prerequisite_state then
        get stacked diagnostics v_state = returned_sqlstate, v_message = message_text, v_hint = pg_exception_hint;
        answers[n] := jsonb_build_object('error', jsonb_build_object(
          'sqlstate', v_state, 'message', v_message, 'hint', nullif(v_hint, '')));
    end;
  end loop;
  return to_jsonb(answers);
end
$$;

comment on function public.agent_heartbeat_batch(jsonb) is
  'Applies [{token, agent_name, status?, health?, last_activity?, pid?}, ...] through agent_heartbeat; answers [{agent: {...}} | {error: {sqlstate, message, hint}}] in the same order.';

-- The heartbeat function calls this over its own database connection; nobody else needs it.
revoke execute on function agent_private.heartbeat_batch_item(jsonb) from public, anon, authenticated;
revoke execute on function public.agent_heartbeat_batch(jsonb) from public, anon, authenticated;
grant execute on function public.agent_heartbeat_batch(jsonb) to service_role;
