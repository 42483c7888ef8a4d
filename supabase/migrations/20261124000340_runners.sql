-------------------------------------------------------------------------------------------------------
-- Runners
-------------------------------------------------------------------------------------------------------

-- A runner announces itself and the agents its host's config lists. Agents not seen before are
-- created (stopped); agents it no longer lists are released. An agent another online runner manages
-- is refused: one agent, one host.
create function public.runner_register(
  p_token text,
  p_agents jsonb,
  p_version text default null,
  p_pid integer default null
) returns jsonb
  language plpgsql security definer set search_path = ''
as $$
declare
  t public.api_tokens := agent_private.runner_token(p_token);
  r public.runners;
  item jsonb;
  names text[] := '{}';
  v_name text;
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
    raise exception using errcode = '55000',
      message = format('agent %L is managed by the runner on host %L, which is online', clash.agent_name, clash.host),
      hint = 'Remove it from one of the two runners'' config files.';
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

-- The runner's own liveness, and the heartbeats of the agents it supervises relayed in one call
-- (p_agents: [{"name": ..., "pid": ...}]) so a host costs one request per interval, not one per agent.
create function public.runner_heartbeat(p_token text, p_agents jsonb default null)
  returns jsonb
  language plpgsql security definer set search_path = ''
as $$
declare
  r public.runners := agent_private.authorize_runner(p_token);
  item jsonb;
  v_agent_id integer;
  relayed integer := 0;
begin
  update public.runners set last_seen_at = now(), status = 'online', stopped_at = null where id = r.id;
  if r.status = 'offline' then
    insert into public.agent_events (runner_id, kind, source, actor, message)
    values (r.id, 'runner_online', 'runner', 'runner ' || r.host, format('runner on %s is back', r.host));
  end if;
  if p_agents is not null then
    if jsonb_typeof(p_agents) <> 'array' or jsonb_array_length(p_agents) > 500 then
      perform agent_private.invalid('agents must be a JSON array of at most 500 {"name", "pid"} objects');
    end if;
    for item in select value from jsonb_array_elements(p_agents) loop
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
  return jsonb_build_object('runner_id', r.id, 'relayed', relayed);
end
$$;

-- A runner going away on purpose says so, so the dashboard need not wait for the sweep.
create function public.runner_offline(p_token text) returns void
  language plpgsql security definer set search_path = ''
as $$
declare
  r public.runners := agent_private.authorize_runner(p_token);
begin
  update public.runners set status = 'offline', stopped_at = now() where id = r.id and status = 'online';
  if found then
    insert into public.agent_events (runner_id, kind, source, actor, message)
    values (r.id, 'runner_offline', 'runner', 'runner ' || r.host, format('runner on %s stopped', r.host));
  end if;
end
$$;
