-- The quiet runner (issue 22): runner_heartbeat also carries the heartbeats the runner's agents sent
-- through its agent channel (applied by agent_heartbeat_batch with the runner's token) and answers
-- whether commands or log requests wait; request_agent_logs sends a Realtime hint for log requests.
-- Written by hand (a signature change), checked with npm run db:diff.

drop function public.runner_heartbeat(text, jsonb, integer);

create function public.runner_heartbeat(
  p_token text,
  p_agents jsonb default null,
  p_interval_s integer default null,
  p_heartbeats jsonb default null
) returns jsonb
  language plpgsql security definer set search_path = ''
as $$
declare
  r public.runners := agent_private.authorize_runner(p_token);
  item jsonb;
  v_agent_id integer;
  relayed integer := 0;
  answers jsonb;
begin
  if p_interval_s is not null and (p_interval_s < 1 or p_interval_s > 86400) then
    perform agent_private.invalid(format('interval_s must be between 1 and 86400 seconds, got %s', p_interval_s));
  end if;
  if p_heartbeats is not null and jsonb_typeof(p_heartbeats) <> 'array' then
    perform agent_private.invalid('heartbeats must be a JSON array of {"agent_name", ...} objects');
  end if;
  update public.runners set last_seen_at = now(), status = 'online', stopped_at = null,
    heartbeat_interval_s = coalesce(p_interval_s, heartbeat_interval_s)
  where id = r.id;
  if p_agents is not null then
    if jsonb_typeof(p_agents) <> 'array' or jsonb_array_length(p_agents) > 500 then
      perform agent_private.invalid('agents must be a JSON array of at most 500 {"name", "pid"} objects');
    end if;
    -- in name order, as agent_heartbeat_batch locks its rows: two calls never wait on each other in a circle
    for item in select value from jsonb_array_elements(p_agents) order by value ->> 'name' loop
      select a.id into v_agent_id from public.agent_status a
      where a.agent_name = item ->> 'name' and a.runner_id = r.id;
      if v_agent_id is null then
        perform agent_private.token_refused(format('agent %L', item ->> 'name'));
      end if;
      perform agent_private.apply_event(v_agent_id, 'heartbeat', 'runner', 'runner ' || r.host,
        p_pid => (item ->> 'pid')::integer);
      relayed := relayed + 1;
    end loop;
  end if;
  -- after the agents it relays: "host … is back" tells what each of them reads now, not the silence
  -- this very heartbeat ends (issue 19)
  if r.status <> 'online' then
    insert into public.agent_events (runner_id, kind, source, actor, message)
    values (r.id, 'runner_online', 'runner', 'runner ' || r.host,
            format('runner on %s is back', r.host) || case when r.status = 'stopped' then ' after it stopped' else '' end);
  end if;
  if jsonb_array_length(p_heartbeats) > 0 then
    -- each item as its agent's heartbeat sent with this runner's token (a token in the item is replaced)
    answers := public.agent_heartbeat_batch((
      select jsonb_agg(case when jsonb_typeof(h.value) = 'object' then h.value || jsonb_build_object('token', p_token) else h.value end
                       order by h.ordinality)
      from jsonb_array_elements(p_heartbeats) with ordinality h));
  end if;
  return jsonb_build_object(
    'runner_id', r.id,
    'relayed', relayed,
    'heartbeats', coalesce(answers, '[]'::jsonb),
    'commands_waiting', exists (
      select 1 from public.agent_commands c join public.agent_status a on a.id = c.agent_id
      where a.runner_id = r.id and c.status = 'pending' and c.expires_at > now()),
    'log_requests_waiting', exists (
      select 1 from public.agent_log_requests l join public.agent_status a on a.id = l.agent_id
      where a.runner_id = r.id and l.claimed_at is null and l.requested_at > now() - interval '1 minute'));
end
$$;

grant execute on function public.runner_heartbeat(text, jsonb, integer, jsonb) to anon, authenticated, service_role;
revoke all on function public.runner_heartbeat(text, jsonb, integer, jsonb) from public;

create or replace function public.request_agent_logs(
  p_agent_name text,
  p_lines integer default 200,
  p_operator_token text default null
) returns bigint
  language plpgsql security definer set search_path = ''
as $$
declare
  who text := agent_private.require_operator(p_operator_token);
  a record;
  v_id bigint;
begin
  if p_lines is null or p_lines < 1 or p_lines > 500 then
    perform agent_private.invalid(format('lines must be between 1 and 500, got %s', p_lines));
  end if;
  select s.id, s.agent_name, s.runner_id, r.host into a
  from public.agent_status s left join public.runners r on r.id = s.runner_id
  where s.agent_name = agent_private.check_agent_name(p_agent_name);
  if a.id is null then
    perform agent_private.refuse('P0002', format('no agent named %L', p_agent_name),
      'List agents with: agent-status list');
  end if;
  if a.runner_id is null then
    perform agent_private.refuse('55000', format('no runner manages agent %L, so no runner can read its logs', p_agent_name),
      'Logs on demand come from the runner that started the agent; add the agent to its host''s runner config.');
  end if;
  delete from public.agent_log_requests where requested_at < now() - interval '10 minutes';
  if (select count(*) from public.agent_log_requests where agent_id = a.id and answered_at is null) >= 10 then
    raise exception using errcode = '54000',
      message = format('10 log requests for %L are already waiting for the runner on %s', p_agent_name, a.host),
      hint = 'Wait for their answers (or for them to expire after 10 minutes); is the runner on that host running?';
  end if;
  insert into public.agent_log_requests (agent_id, lines, requested_by) values (a.id, p_lines, who) returning id into v_id;
  -- Hints: NOTIFY for runners with a database connection; on Supabase, a Realtime broadcast on the
  -- topic runners already hear for commands (agent_commands:<host>), so a runner that hears hints
  -- polls for log requests only as a safety net. They poll anyway.
  perform pg_notify('agent_log_requests', a.host);
  if to_regprocedure('realtime.send(jsonb, text, text, boolean)') is not null then
    begin
      perform realtime.send(jsonb_build_object('log_request_id', v_id), 'log_request', 'agent_commands:' || a.host, false);
    exception when others then
      null;  -- a hint that cannot be sent must never refuse the request
    end;
  end if;
  return v_id;
end
$$;
