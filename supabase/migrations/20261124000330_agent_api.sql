-------------------------------------------------------------------------------------------------------
-- Agents speak: heartbeat and report
-------------------------------------------------------------------------------------------------------

-- Proof of life, optionally carrying status, health and activity so a busy agent needs one request.
create function public.agent_heartbeat(
  p_token text,
  p_agent_name text,
  p_status text default null,
  p_health integer default null,
  p_activity text default null,
  p_pid integer default null
) returns public.agent_status
  language plpgsql security definer set search_path = ''
as $$
declare
  who record;
  event text;
begin
  if p_status is not null then
    perform agent_private.check_status(p_status, array['running', 'warning', 'error']);
  end if;
  perform agent_private.check_health(p_health);
  perform agent_private.check_text('activity', p_activity, 1000);
  who := agent_private.authorize_agent(p_token, p_agent_name);
  -- An explicit status decides the transition; activity it carries is recorded by the same event
  -- (one row update per heartbeat: apply_event records activity for any event).
  event := coalesce(p_status, case when p_activity is not null then 'activity' else 'heartbeat' end);
  return agent_private.apply_event(who.agent_id, event, who.source, who.actor,
    p_health => p_health, p_activity => p_activity, p_pid => p_pid);
end
$$;

-- Everything else an agent or its runner says about it. p_event is one of started, stopped, running,
-- warning, error, activity (from agents) and adopted, exited, crashed, terminated (from runners).
create function public.agent_report(
  p_token text,
  p_agent_name text,
  p_event text,
  p_message text default null,
  p_health integer default null,
  p_activity text default null,
  p_pid integer default null,
  p_exit_code integer default null,
  p_exit_signal text default null,
  p_details jsonb default null
) returns public.agent_status
  language plpgsql security definer set search_path = ''
as $$
declare
  who record;
  agent_events constant text[] := array['started', 'stopped', 'running', 'warning', 'error', 'activity', 'heartbeat'];
  runner_events constant text[] := array['adopted', 'exited', 'crashed', 'terminated'];
begin
  if p_event is null or not (p_event = any (agent_events || runner_events)) then
    perform agent_private.invalid(format('event must be one of %s, got %s',
      array_to_string(agent_events || runner_events, ', '), coalesce(quote_literal(p_event), 'nothing')));
  end if;
  perform agent_private.check_health(p_health);
  perform agent_private.check_text('message', p_message, 4000);
  perform agent_private.check_text('activity', p_activity, 1000);
  if p_details is not null and (jsonb_typeof(p_details) <> 'object' or pg_column_size(p_details) > 8192) then
    perform agent_private.invalid('details must be a JSON object of at most 8 kB');
  end if;
  if p_exit_signal is not null and p_exit_signal !~ '^SIG[A-Z0-9]{1,12}$' then
    perform agent_private.invalid(format('exit_signal must be a signal name like SIGTERM, got %L', p_exit_signal));
  end if;
  if p_event in ('warning', 'error') and nullif(btrim(p_message), '') is null then
    perform agent_private.invalid(format('a %s report needs a message saying what is wrong', p_event));
  end if;
  if p_event = 'activity' and p_activity is null then
    perform agent_private.invalid('an activity report needs activity: what the agent is doing now');
  end if;

  who := agent_private.authorize_agent(p_token, p_agent_name);
  if p_event = any (runner_events) and who.source <> 'runner' then
    perform agent_private.invalid(format('%s is reported by the runner that supervises the process', p_event));
  end if;

  return agent_private.apply_event(who.agent_id, p_event, who.source, who.actor,
    p_health => p_health, p_message => p_message, p_activity => p_activity, p_pid => p_pid,
    p_exit_code => p_exit_code, p_exit_signal => p_exit_signal, p_details => p_details);
end
$$;

-- The seed's "Force stop", fix_agent_status.py and agent_status_lock.py: sets the status in the
-- database without touching any process. Operators only; the history records who did it.
create function public.force_agent_status(
  p_agent_name text,
  p_status text,
  p_health integer default null,
  p_reason text default null,
  p_operator_token text default null
) returns public.agent_status
  language plpgsql security definer set search_path = ''
as $$
declare
  who text := agent_private.require_operator(p_operator_token);
  v_status public.agent_status_value;
  v_agent_id integer;
begin
  v_status := agent_private.check_status(p_status, array['running', 'warning', 'error', 'stopped']);
  perform agent_private.check_health(p_health);
  perform agent_private.check_text('reason', p_reason, 4000);
  select id into v_agent_id from public.agent_status where agent_name = agent_private.check_agent_name(p_agent_name);
  if v_agent_id is null then
    raise exception using errcode = 'P0002', message = format('no agent named %L', p_agent_name),
      hint = 'List agents with: agent-status list';
  end if;
  return agent_private.apply_event(v_agent_id, 'force', 'operator', who, p_forced => v_status,
    p_health => p_health, p_message => coalesce(p_reason, format('forced to %s by %s', v_status, who)));
end
$$;
