-- runner lease required: register, claim and complete refuse a caller without the host's lease
-- while a live runner holds it, and a runner token that names no agents may not take an agent of
-- another host or one with its own agent token. Written by hand: pg-delta plans the signature
-- changes of runner_register and runner_complete_command as drops, which npm run db:diff refuses.

create function agent_private.check_lease(r public.runners, p_instance text) returns void
  language plpgsql stable set search_path = ''
as $$
begin
  if p_instance is not null and r.instance is distinct from p_instance then
    perform agent_private.refuse('55000', format('this runner no longer holds the lease of host %L: pid %s took over', r.host, coalesce(r.pid::text, 'unknown')),
      'Stop this runner; one runner per host.');
  end if;
  if p_instance is null and r.instance is not null and r.status = 'online'
     and r.last_seen_at > now() - make_interval(secs => (select runner_offline_after_s from public.agent_status_settings)) then
    perform agent_private.refuse('55000', format('a live runner holds the lease of host %L (pid %s); name its instance', r.host, coalesce(r.pid::text, 'unknown')),
      'Only the runner holding the lease (runner_lease) may register, claim and complete; one runner per host.');
  end if;
end
$$;

create or replace function agent_private.authorize_lease(p_token text, p_instance text) returns public.runners
  language plpgsql set search_path = ''
as $$
declare
  r public.runners := agent_private.authorize_runner(p_token);
begin
  perform agent_private.check_lease(r, p_instance);
  return r;
end
$$;

drop function public.runner_register(text, jsonb, text, integer);

create or replace function public.runner_register(
  p_token text,
  p_agents jsonb,
  p_version text default null,
  p_pid integer default null,
  p_instance text default null
) returns jsonb
  language plpgsql security definer set search_path = ''
as $$
declare
  t public.api_tokens := agent_private.runner_token(p_token);
  r public.runners;
  item jsonb;
  names text[] := '{}';
  v_name text;
  v_owner text;
  clash record;
begin
  if p_agents is null or jsonb_typeof(p_agents) <> 'array' then
    perform agent_private.invalid('agents must be a JSON array of {"name": ...} objects');
  end if;
  if jsonb_array_length(p_agents) > 500 then
    perform agent_private.invalid(format('a runner may manage at most 500 agents, got %s', jsonb_array_length(p_agents)));
  end if;
  perform agent_private.check_text('version', p_version, 100);

  for item in select value from jsonb_array_elements(p_agents) loop
    if jsonb_typeof(item) <> 'object' or coalesce(jsonb_typeof(item -> 'name'), 'missing') <> 'string' then
      perform agent_private.invalid(format('each agent must be an object with a "name" string, got %s', left(item::text, 100)));
    end if;
    v_name := agent_private.check_agent_name(item ->> 'name');
    if v_name = any (names) then
      perform agent_private.invalid(format('agent %L is listed twice', v_name));
    end if;
    names := names || v_name;
  end loop;
  -- only the agents the token names: a runner's token cannot plant agents under other names
  if t.agent_patterns is not null then
    select n into v_name from unnest(names) n
    where not exists (select 1 from unnest(t.agent_patterns) g where n like agent_private.glob_to_like(g))
    limit 1;
    if v_name is not null then
      raise exception using errcode = '42501',
        message = format('runner token %s may not register agent %L: it may register only %s',
                         t.label, v_name, array_to_string(t.agent_patterns, ', ')),
        hint = 'Remove the agent from this runner''s config, or give the runner a token that names it: agent-status token create runner --host <host> --agents <names or patterns>';
    end if;
  else
    -- A token that names no agents speaks for its own host's: new names, and agents this host's
    -- runner registered before. An agent of another host, or one that reports with its own agent
    -- token, is taken only by a token that names it (one without --agents took such an agent and
    -- reported it crashed).
    select a.agent_name, case when a.host is not null then format('host %L', a.host) else 'its own agent token' end into v_name, v_owner
    from public.agent_status a
    where a.agent_name = any (names) and a.host is distinct from t.host
      and (a.host is not null or exists (select 1 from public.api_tokens k where k.kind = 'agent' and k.agent_id = a.id and k.revoked_at is null))
    limit 1;
    if v_name is not null then
      raise exception using errcode = '42501',
        message = format('runner token %s may not take agent %L: it belongs to %s', t.label, v_name, v_owner),
        hint = 'Give the runner a token that names it: agent-status token create runner --host <host> --agents <names or patterns>';
    end if;
  end if;
  -- the lease, when a live runner holds it, is the caller's to hold
  select * into r from public.runners where host = t.host for update;
  if found then
    perform agent_private.check_lease(r, p_instance);
  end if;

  insert into public.runners (host, status, version, pid, started_at, last_seen_at, stopped_at)
  values (t.host, 'online', p_version, p_pid, now(), now(), null)
  on conflict (host) do update set status = 'online', version = excluded.version, pid = excluded.pid,
    started_at = now(), last_seen_at = now(), stopped_at = null
  returning * into r;

  select a.agent_name, o.host into clash
  from public.agent_status a join public.runners o on o.id = a.runner_id
  where a.agent_name = any (names) and o.id <> r.id and o.status = 'online'
    and o.last_seen_at > now() - make_interval(secs => (select runner_offline_after_s from public.agent_status_settings))
  limit 1;
  if clash.agent_name is not null then
    perform agent_private.refuse('55000',
      format('agent %L is managed by the runner on host %L, which is online', clash.agent_name, clash.host),
      'Remove it from one of the two runners'' config files.');
  end if;

  insert into public.agent_status (agent_name) select unnest(names) on conflict (agent_name) do nothing;

  update public.agent_status a set
    runner_id = r.id, host = r.host, updated_at = now(),
    heartbeat_timeout_s = (spec -> 'heartbeat_timeout_s')::integer,
    activity_timeout_s = (spec -> 'activity_timeout_s')::integer,
    metadata = coalesce(spec -> 'metadata', '{}')
  from jsonb_array_elements(p_agents) as specs(spec)
  where a.agent_name = spec ->> 'name';

  update public.agent_status a set runner_id = null, updated_at = now()
  where a.runner_id = r.id and not (a.agent_name = any (names));

  insert into public.agent_events (runner_id, kind, source, actor, message, details)
  values (r.id, 'runner_online', 'runner', format('runner token %s', t.label),
          format('runner on %s registered with %s agents', r.host, cardinality(names)),
          jsonb_build_object('version', p_version, 'pid', p_pid, 'agents', to_jsonb(names)));

  return jsonb_build_object('runner_id', r.id, 'host', r.host, 'agents', to_jsonb(names));
exception
  when invalid_text_representation or numeric_value_out_of_range or check_violation then
    perform agent_private.invalid(format('bad agent settings: %s', sqlerrm),
      'heartbeat_timeout_s must be 5..86400 seconds, activity_timeout_s 10..604800, metadata a small object.');
end
$$;

drop function public.runner_complete_command(text, bigint, boolean, text);

create or replace function public.runner_complete_command(
  p_token text,
  p_command_id bigint,
  p_succeeded boolean,
  p_result text default null,
  p_instance text default null
) returns public.agent_commands
  language plpgsql security definer set search_path = ''
as $$
declare
  r public.runners := agent_private.authorize_lease(p_token, p_instance);
  c public.agent_commands;
begin
  if p_succeeded is null then
    perform agent_private.invalid('succeeded must be true or false');
  end if;
  perform agent_private.check_text('result', p_result, 4000);
  update public.agent_commands set
    status = case when p_succeeded then 'succeeded' else 'failed' end,
    finished_at = now(), result = p_result
  where agent_commands.id = p_command_id and claimed_by = r.id and status = 'claimed'
  returning * into c;
  if c.id is null then
    perform agent_private.refuse('55000', format('command %s is not claimed by the runner on %s', p_command_id, r.host),
      'It may have been failed by the sweep after waiting too long; claim new commands instead.');
  end if;
  insert into public.agent_events (agent_id, runner_id, kind, source, actor, message, details)
  values (c.agent_id, r.id, case when p_succeeded then 'command_succeeded' else 'command_failed' end,
          'runner', 'runner ' || r.host,
          format('%s %s%s', c.action, case when p_succeeded then 'succeeded' else 'failed' end,
                 coalesce(': ' || p_result, '')),
          jsonb_build_object('command_id', c.id, 'action', c.action));
  return c;
end
$$;

revoke all on function agent_private.check_lease(public.runners, text) from public;
grant execute on function public.runner_register(text, jsonb, text, integer, text) to anon, authenticated, service_role;
revoke all on function public.runner_register(text, jsonb, text, integer, text) from public;
grant execute on function public.runner_complete_command(text, bigint, boolean, text, text) to anon, authenticated, service_role;
revoke all on function public.runner_complete_command(text, bigint, boolean, text, text) from public;
