-- Runners: lease, register, heartbeat, offline, silence, resources.
--
-- supabase/schemas/ is the current definition of every SQL object, applied in file-name order
-- (supabase/README.md). Change it here, then generate the migration: npm run db:diff -- <name>.

-- A runner is silent once two of its heartbeat intervals pass without a word from it (the
-- settings' runner_offline_after_s for a runner that never said its interval).
create function agent_private.runner_silent_after(r public.runners, s public.agent_status_settings) returns interval
  language sql immutable set search_path = ''
as $$
  select make_interval(secs => coalesce(2 * r.heartbeat_interval_s, s.runner_offline_after_s))
$$;

-- The runner's one regular call (runner/daemon/runner.ts): its own liveness, the pids of the agents
-- it supervises (proof that each process is alive), and the heartbeats its agents sent through the
-- agent channel since the last call, applied by agent_heartbeat_batch with the runner's token for
-- each, so the runner speaks only for the agents of its own host, as agent_heartbeat lets it. The
-- answer says whether commands or log requests are waiting, so a runner that relies on Realtime
-- hints needs no polling of its own to catch a lost hint. One call per interval instead of one per
-- agent heartbeat and a poll a second: an idle host went from ~190,000 requests a day to a few
-- thousand (npm run bench, BENCH=quiet).
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

-- The reports of a runner's agents (started, crashed, exited, ... and what agents under it say
-- through its channel) in one call: runner/daemon/reporter.ts sends everything queued for every agent
-- at the moment it sends, so twenty agents crashing at once cost one or two calls instead of twenty,
-- and a lone report still goes at once. Each item is agent_report's arguments by name
-- ({agent_name, event, message?, health?, last_activity?, pid?, exit_code?, exit_signal?, details?,
-- at?, heartbeat_interval_s?, report_id?}), applied with the runner's token by agent_report itself,
-- so every rule of one report holds (report_id applied once, the state machine, delivered commands).
--
-- Each item runs in its own subtransaction, so one report the database refuses (a poison report)
-- costs only itself. Answers, in the items' order: {agent} applied (or applied before: same
-- report_id); {error} refused for good (the caller's mistake, as agent_report's 4xx refusals,
-- agent_private.refused_for_good: dropping it is right, the agent's later reports still apply);
-- {retry} not applied for another reason (a lock wait given up among them), nor are that agent's
-- later items in this batch, so the sender sends them again in order.
-- Items apply in agent-name order (each agent's in the order given): the rows are locked first in
-- that order, as agent_heartbeat_batch locks them, so the two never wait on each other in a circle;
-- a lock wait gives up after 2 s: there, the whole batch is retried (nothing of it written); within
-- an item (a row no batch locks first: the report_id a retry racing its original waits on, a
-- command), only that item and its agent's later ones are answered retry.
-- At most 50 items: more subtransactions than 64 overflow the backend's cache (agent_private.batch_answers).
create function public.runner_report_batch(p_token text, p_reports jsonb) returns jsonb
  language plpgsql security definer set search_path = '' set lock_timeout = '2s'
as $$
declare
  r public.runners := agent_private.authorize_runner(p_token);
  item jsonb;
  n bigint;
  answers jsonb[] := agent_private.batch_answers(p_reports, 'reports', '{"agent_name", "event", ...}');
  -- agents with a report answered retry: their later items wait for the next batch
  held text[] := '{}';
  v_agent public.agent_status;
  v_state text;
  v_message text;
  v_hint text;
begin
  perform agent_private.lock_batch_agents(p_reports, r.id);

  for item, n in
    select value, ordinality from jsonb_array_elements(p_reports) with ordinality
    order by value ->> 'agent_name', ordinality
  loop
    if item ->> 'agent_name' = any (held) then
      answers[n] := agent_private.batch_item_failure(null, 'not applied: an earlier report of this agent in the batch failed', null);
      continue;
    end if;
    begin
      if jsonb_typeof(item) <> 'object' then
        perform agent_private.invalid('each report must be a JSON object');
      end if;
      v_agent := public.agent_report(p_token, item ->> 'agent_name', item ->> 'event', item ->> 'message',
        (item ->> 'health')::integer, item ->> 'last_activity', (item ->> 'pid')::integer,
        (item ->> 'exit_code')::integer, item ->> 'exit_signal', nullif(item -> 'details', 'null'::jsonb),
        (item ->> 'at')::timestamptz, (item ->> 'heartbeat_interval_s')::integer, (item ->> 'report_id')::uuid);
      answers[n] := jsonb_build_object('agent', agent_private.agent_state_json(v_agent));
    exception when others then
      get stacked diagnostics v_state = returned_sqlstate, v_message = message_text, v_hint = pg_exception_hint;
      answers[n] := agent_private.batch_item_failure(v_state, v_message, v_hint);
      if answers[n] ? 'retry' then
        held := held || (item ->> 'agent_name');
      end if;
    end;
  end loop;
  return to_jsonb(answers);
end
$$;

comment on function public.runner_report_batch(text, jsonb) is 'Applies [{agent_name, event, ...agent_report''s arguments, report_id?}, ...] with the runner''s token, each in its own subtransaction; answers [{agent} | {error} | {retry}] in the same order.';

-- Silent: gone without a word (offline, or online past its deadline). A runner that said goodbye is
-- stopped, not silent: planned, and no host incident (issue 19).
create or replace function agent_private.runner_silent(p_runner_id uuid) returns boolean
  language sql stable set search_path = ''
as $$
  select exists (
    select 1 from public.runners r, public.agent_status_settings st
    where r.id = p_runner_id
      and (r.status = 'offline' or (r.status = 'online' and r.last_seen_at <= now() - agent_private.runner_silent_after(r, st))))
$$;

create function public.runner_lease(p_token text, p_instance text, p_pid integer default null, p_takeover boolean default false)
  returns jsonb
  language plpgsql security definer set search_path = ''
as $$
declare
  t public.api_tokens := agent_private.runner_token(p_token);
  r public.runners;
  previous text;
  silent_after integer := (select runner_offline_after_s from public.agent_status_settings);
  live boolean;
begin
  if p_instance is null or char_length(p_instance) not between 1 and 100 then
    perform agent_private.invalid('instance must be the runner''s instance id, 1 to 100 characters');
  end if;
  select * into r from public.runners where host = t.host for update;
  live := found and r.instance is distinct from p_instance and r.instance is not null and r.status = 'online'
          and r.last_seen_at > now() - make_interval(secs => silent_after);
  if live and not coalesce(p_takeover, false) then
    perform agent_private.refuse('55000', format('another runner is live on host %L: pid %s, running since %s, last seen %s s ago',
        t.host, coalesce(r.pid::text, 'unknown'), to_char(r.started_at, 'YYYY-MM-DD HH24:MI:SS TZ'),
        floor(extract(epoch from now() - r.last_seen_at))),
      format('One runner per host: stop that one first, or wait until it has been silent for %s s, or start this one with --takeover.',
        silent_after));
  end if;
  previous := case when r.instance is distinct from p_instance then r.instance end;
  insert into public.runners (host, instance, pid, status, last_seen_at)
  values (t.host, p_instance, p_pid, 'online', now())
  on conflict (host) do update set instance = excluded.instance, pid = excluded.pid, last_seen_at = now()
  returning * into r;
  if live then
    insert into public.agent_events (runner_id, kind, source, actor, message, details)
    values (r.id, 'runner_takeover', 'runner', format('runner token %s', t.label),
            format('runner on %s taken over by pid %s', r.host, coalesce(p_pid::text, 'unknown')),
            jsonb_build_object('pid', p_pid));
  end if;
  -- the previous holder's mark: its agents are the new holder's to adopt
  return jsonb_build_object('runner_id', r.id, 'host', r.host, 'instance', r.instance, 'took_over', live,
                            'previous_instance', previous);
end
$$;

create function public.runner_offline(p_token text, p_instance text default null) returns void
  language plpgsql security definer set search_path = ''
as $$
declare
  r public.runners := agent_private.authorize_runner(p_token);
begin
  if p_instance is not null and r.instance is distinct from p_instance then
    return;
  end if;
  -- stopped, not offline: a goodbye is planned (SIGTERM), and reads so everywhere (issue 19)
  update public.runners set status = 'stopped', stopped_at = now() where id = r.id and status = 'online';
  if found then
    insert into public.agent_events (runner_id, kind, source, actor, message)
    values (r.id, 'runner_offline', 'runner', 'runner ' || r.host, format('runner on %s stopped', r.host));
  end if;
end
$$;

-- Registers the runner's agents (only names its token allows; a clash answered through refuse).
-- One call adds at most 100 new agent names (with any token): a token that could add names once
-- minted 1,500 agents in three calls; a host that needs more adds them over several starts.
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
  new_names text[];
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
    -- A token that names no agents speaks for its own host's: agents this host's runner registered
    -- before, and new names only when it was made with --new-agents. An agent of another host, or one
    -- that reports with its own agent token, is taken only by a token that names it (one without
    -- --agents took such an agent and reported it crashed).
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
    if not t.may_add_agents then
      select n into v_name from unnest(names) n
      where not exists (select 1 from public.agent_status a where a.agent_name = n)
      limit 1;
      if v_name is not null then
        raise exception using errcode = '42501',
          message = format('runner token %s may not add agent %L: it speaks for the agents host %L already has, and adds new names only when made with --new-agents',
                           t.label, v_name, t.host),
          hint = 'Give the runner a token that names its agents (agent-status token create runner --host <host> --agents <names or patterns>) or one that may add new names (--new-agents).';
      end if;
    end if;
  end if;
  select array_agg(n) into new_names from unnest(names) n
  where not exists (select 1 from public.agent_status a where a.agent_name = n);
  if cardinality(new_names) > 100 then
    perform agent_private.invalid(format('one registration may add at most 100 new agents, got %s new names', cardinality(new_names)),
      'Start the runner with at most 100 agents that are new to the database, then add the rest to its config and restart it.');
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

-- p_samples: [{"name": "...", "cpu_percent": 12.5, "memory_bytes": 73400320, "processes": 2}], for
-- agents this runner manages. A second sample in the same minute replaces the first, so however
-- often a runner sends, an agent keeps one sample a minute; samples older than a day are deleted here.
create function public.runner_report_resources(p_token text, p_samples jsonb)
  returns integer
  language plpgsql security definer set search_path = ''
as $$
declare
  r public.runners := agent_private.authorize_runner(p_token);
  item jsonb;
  v_agent_id integer;
  v_ids integer[] := '{}';
  v_cpu real;
  v_memory bigint;
  v_processes integer;
begin
  if p_samples is null or jsonb_typeof(p_samples) <> 'array' or jsonb_array_length(p_samples) > 500 then
    perform agent_private.invalid('samples must be a JSON array of at most 500 {"name", "cpu_percent", "memory_bytes", "processes"} objects');
  end if;
  for item in select value from jsonb_array_elements(p_samples) loop
    if jsonb_typeof(item -> 'cpu_percent') <> 'number' or jsonb_typeof(item -> 'memory_bytes') <> 'number'
       or (item -> 'processes' is not null and jsonb_typeof(item -> 'processes') <> 'number') then
      perform agent_private.invalid(format('sample for %s needs numbers cpu_percent and memory_bytes, got %s',
        coalesce(item ->> 'name', 'an unnamed agent'), item));
    end if;
    v_cpu := (item ->> 'cpu_percent')::real;
    v_memory := round((item ->> 'memory_bytes')::numeric)::bigint;
    v_processes := coalesce((item ->> 'processes')::integer, 1);
    if v_cpu < 0 or v_cpu > 100000 or v_memory < 0 or v_processes < 0 then
      perform agent_private.invalid(format('sample for %s is out of range: %s', item ->> 'name', item),
        'cpu_percent is 0..100 per core, memory_bytes and processes are not negative');
    end if;
    select a.id into v_agent_id from public.agent_status a where a.agent_name = item ->> 'name' and a.runner_id = r.id;
    if v_agent_id is null then
      perform agent_private.token_refused(format('agent %L', item ->> 'name'));
    end if;
    insert into public.agent_resources as x (agent_id, cpu_percent, memory_bytes, processes, sampled_at)
    values (v_agent_id, v_cpu, v_memory, v_processes, now())
    on conflict (agent_id) do update set cpu_percent = excluded.cpu_percent, memory_bytes = excluded.memory_bytes,
      processes = excluded.processes, sampled_at = excluded.sampled_at;
    insert into public.agent_resource_samples (agent_id, minute, cpu_percent, memory_bytes)
    values (v_agent_id, date_trunc('minute', now()), v_cpu, v_memory)
    on conflict (agent_id, minute) do update set cpu_percent = excluded.cpu_percent, memory_bytes = excluded.memory_bytes;
    v_ids := v_ids || v_agent_id;
  end loop;
  delete from public.agent_resource_samples where agent_id = any (v_ids) and minute < now() - interval '1 day';
  return cardinality(v_ids);
end
$$;
