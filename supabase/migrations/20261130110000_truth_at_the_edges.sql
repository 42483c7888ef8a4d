-- Truth at the edges (issue 11): crash loops, silent runners, kept warnings, declared heartbeat
-- intervals, operator timeouts and event times. docs/state-machine.md documents every rule here and
-- tests/db/state-machine.test.ts checks its table cell by cell.

-------------------------------------------------------------------------------------------------------
-- New columns
-------------------------------------------------------------------------------------------------------

alter table public.agent_status
  -- Restarts after a crash (a start while unstable_since is set): all of them, and the times of the
  -- recent ones (at most 100, none older than 10 minutes), so "restart 12 in 10 min" is one read.
  add column restarts_total integer not null default 0,
  add column restart_times timestamptz[] not null default '{}' check (cardinality(restart_times) <= 100),
  -- Set by a crash, cleared by the runner's `stable` (the process stayed up past its stable period),
  -- a stop on command, a clean exit or a force. While set, the agent never reads running.
  add column unstable_since timestamptz,
  -- When the runner will start it again (a crash report's details.restart_in_s), while it waits.
  add column next_restart_at timestamptz,
  -- The history row a crash loop's repeated identical crashes are counted on (details.repeats).
  add column crash_loop_event_id bigint,
  -- The latest warning and error stay after the agent recovers (last_error is the seed's column).
  add column last_warning text check (char_length(last_warning) <= 4000),
  add column last_warning_at timestamptz,
  add column last_error_at timestamptz,
  -- The heartbeat interval the agent's SDK declares; without an explicit timeout the heartbeat
  -- timeout is derived from it (2.5 intervals), not the 120 s default.
  add column heartbeat_interval_s integer check (heartbeat_interval_s between 1 and 86400),
  -- Timeouts an operator set (set_agent_timeouts); they win over the runner's config and the
  -- derived value, and survive the runner registering again.
  add column operator_heartbeat_timeout_s integer check (operator_heartbeat_timeout_s between 5 and 86400),
  add column operator_activity_timeout_s integer check (operator_activity_timeout_s between 10 and 604800);

-- The interval a runner heartbeats at (runner_heartbeat's p_interval_s): it is silent after two.
alter table public.runners
  add column heartbeat_interval_s integer check (heartbeat_interval_s between 1 and 86400);

-------------------------------------------------------------------------------------------------------
-- Derived settings, in one place for apply_event, the sweep and the views
-------------------------------------------------------------------------------------------------------

-- The heartbeat timeout that applies to an agent, and where it comes from: an operator's, the
-- runner config's, 2.5 declared intervals (at least 5 s), or the default.
create function agent_private.heartbeat_timeout(a public.agent_status, s public.agent_status_settings,
  out timeout_s integer, out source text)
  language sql immutable set search_path = ''
as $$
  select case
      when a.operator_heartbeat_timeout_s is not null then a.operator_heartbeat_timeout_s
      when a.heartbeat_timeout_s is not null then a.heartbeat_timeout_s
      when a.heartbeat_interval_s is not null then greatest(5, ceil(2.5 * a.heartbeat_interval_s)::integer)
      else s.default_heartbeat_timeout_s end,
    case
      when a.operator_heartbeat_timeout_s is not null then 'operator'
      when a.heartbeat_timeout_s is not null then 'config'
      when a.heartbeat_interval_s is not null then 'interval'
      else 'default' end
$$;

create function agent_private.activity_timeout(a public.agent_status, s public.agent_status_settings) returns integer
  language sql immutable set search_path = ''
as $$
  select coalesce(a.operator_activity_timeout_s, a.activity_timeout_s, s.default_activity_timeout_s)
$$;

-- A runner is silent once two of its heartbeat intervals pass without a word from it (the
-- settings' runner_offline_after_s for a runner that never said its interval).
create function agent_private.runner_silent_after(r public.runners, s public.agent_status_settings) returns interval
  language sql immutable set search_path = ''
as $$
  select make_interval(secs => coalesce(2 * r.heartbeat_interval_s, s.runner_offline_after_s))
$$;

-------------------------------------------------------------------------------------------------------
-- The state machine, now knowing about crash loops
-------------------------------------------------------------------------------------------------------

-- p_restarting: the agent crashed and has not been stable since (unstable_since is set). Whatever
-- would make it `running` then makes it `warning`: an agent that keeps dying never reads running.
create function agent_private.next_agent_status(
  p_current public.agent_status_value,
  p_current_source public.agent_event_source,
  p_event text,
  p_forced public.agent_status_value,
  p_restarting boolean
) returns public.agent_status_value
  language sql immutable set search_path = ''
as $$
  select case p_event
    when 'started' then up
    when 'adopted' then up
    when 'running' then up
    when 'warning' then 'warning'
    when 'error' then 'error'
    when 'crashed' then 'error'
    when 'terminated' then 'stopped'
    -- the runner: the restarted process stayed up past its stable period, so the crash loop is over
    when 'stable' then case when p_current = 'warning' and p_restarting then 'running' else p_current end
    -- A crash followed by the exit handler's "stopped" must not hide the crash.
    when 'stopped' then case when p_current = 'error' then 'error' else 'stopped' end
    when 'exited' then case when p_current = 'error' then 'error' else 'stopped' end
    -- Proof of life revives what was inferred (stale) or recorded as stopped; it never overrides what
    -- somebody said explicitly. Only activity clears the sweep's own "no activity" warning.
    when 'heartbeat' then case when p_current in ('stopped', 'stale') then up else p_current end
    when 'activity' then case
      when p_current in ('stopped', 'stale') then up
      when p_current = 'warning' and p_current_source = 'sweep' then up
      else p_current end
    when 'deadline' then case when p_current in ('running', 'warning') then 'stale' else p_current end
    when 'inactive' then case when p_current = 'running' then 'warning' else p_current end
    when 'force' then p_forced
  end::public.agent_status_value
  from (select case when p_restarting then 'warning' else 'running' end as up) alive
$$;

-- The four-argument form the live view and older callers use: an agent that is not restarting.
create or replace function agent_private.next_status(
  p_current public.agent_status_value,
  p_current_source public.agent_event_source,
  p_event text,
  p_forced public.agent_status_value default null
) returns public.agent_status_value
  language sql immutable set search_path = ''
as $$
  select agent_private.next_agent_status(p_current, p_current_source, p_event, p_forced, false)
$$;

create or replace function agent_private.is_event(p_event text) returns boolean
  language sql immutable set search_path = ''
as $$
  select p_event = any (array['started', 'adopted', 'heartbeat', 'activity', 'running', 'warning', 'error',
                              'stopped', 'exited', 'crashed', 'terminated', 'stable', 'deadline', 'inactive', 'force'])
$$;

-- Applies one event to one agent: the only code that writes agent_status after creation (besides
-- set_agent_timeouts' own columns). As before, plus: p_at (when the event happened as the caller saw
-- it, clamped), restart counting and crash-loop folding, kept warnings and errors, and the declared
-- heartbeat interval.
drop function agent_private.apply_event(integer, text, public.agent_event_source, text, public.agent_status_value,
  integer, text, text, integer, integer, text, jsonb);
create function agent_private.apply_event(
  p_agent_id integer,
  p_event text,
  p_source public.agent_event_source,
  p_actor text,
  p_forced public.agent_status_value default null,
  p_health integer default null,
  p_message text default null,
  p_activity text default null,
  p_pid integer default null,
  p_exit_code integer default null,
  p_exit_signal text default null,
  p_details jsonb default '{}',
  p_at timestamptz default null,
  p_heartbeat_interval_s integer default null
) returns public.agent_status
  language plpgsql set search_path = ''
as $$
declare
  old public.agent_status;
  new public.agent_status;
  settings public.agent_status_settings;
  live constant text[] := array['running', 'warning'];
  alive_evidence boolean := p_event in ('started', 'adopted', 'heartbeat', 'activity', 'running', 'warning', 'error', 'stable');
  -- events after which the process is known to have ended or been judged by someone: the loop is over
  loop_ends boolean := p_event in ('stable', 'terminated', 'exited', 'force');
  heartbeat_timeout integer;
  activity_timeout integer;
  v_at timestamptz := now();
  restart_in numeric;
  recent timestamptz[];
  folded boolean := false;
  loop_row public.agent_events;
  v_event_id bigint;
  v_details jsonb;
begin
  if not agent_private.is_event(p_event) then
    perform agent_private.invalid(format('unknown event %L', p_event));
  end if;

  select * into old from public.agent_status where id = p_agent_id for update;
  if not found then
    raise exception using errcode = 'P0002', message = format('no agent with id %s', p_agent_id);
  end if;

  if (p_event = 'deadline' and (old.stale_at is null or old.stale_at > now()))
     or (p_event = 'inactive' and (old.inactive_at is null or old.inactive_at > now())) then
    return old;
  end if;

  -- When it happened: as the caller saw it (a report buffered through an outage), but never in the
  -- future and never before this agent's previous event, so history keeps its order.
  if p_at is not null then
    v_at := greatest(least(p_at, now()),
                     coalesce((select e.at from public.agent_events e where e.agent_id = p_agent_id order by e.at desc limit 1),
                              '-infinity'));
  end if;

  select * into settings from public.agent_status_settings;
  new := old;
  if p_heartbeat_interval_s is not null then
    new.heartbeat_interval_s := p_heartbeat_interval_s;
  end if;
  heartbeat_timeout := (agent_private.heartbeat_timeout(new, settings)).timeout_s;
  activity_timeout := agent_private.activity_timeout(new, settings);

  new.status := agent_private.next_agent_status(old.status, old.status_source, p_event, p_forced,
                                                old.unstable_since is not null);
  new.updated_at := now();

  if new.status is distinct from old.status or p_event not in ('heartbeat', 'activity') then
    new.status_source := p_source;
  end if;
  if new.status is distinct from old.status then
    new.status_changed_at := v_at;
  end if;

  -- Restarts and crash loops. A crash sets unstable_since; a start while it is set is a restart.
  recent := array(select t from unnest(old.restart_times) t where t > now() - interval '10 minutes' order by t);
  if p_event = 'crashed' then
    new.unstable_since := coalesce(old.unstable_since, v_at);
    if p_details is not null and jsonb_typeof(p_details -> 'restart_in_s') = 'number' then
      restart_in := (p_details ->> 'restart_in_s')::numeric;
      new.next_restart_at := v_at + make_interval(secs => restart_in);
    else
      new.next_restart_at := null;
    end if;
  elsif p_event in ('started', 'adopted') and old.unstable_since is not null then
    recent := (recent || v_at)[greatest(1, cardinality(recent) - 98):];
    new.restarts_total := old.restarts_total + 1;
    new.next_restart_at := null;
  elsif loop_ends then
    new.unstable_since := null;
    new.next_restart_at := null;
    new.crash_loop_event_id := null;
  end if;
  new.restart_times := recent;

  new.status_reason := case
    when p_event = 'crashed' and restart_in is not null then
      format('%s; restarting in %s s (restart %s in 10 min)', split_part(p_message, E'\n', 1),
             trim_scale(round(restart_in, 1)), cardinality(recent) + 1)
    when p_event in ('started', 'adopted') and new.status = 'warning' and old.unstable_since is not null then
      format('restart %s in 10 min (%s in all) after a crash; running again, not yet stable',
             cardinality(recent), new.restarts_total)
    when p_event in ('warning', 'error', 'crashed', 'force', 'deadline', 'inactive') then p_message
    -- the same status goes on for the same reason: an error's text stays through the exit handler's stop
    when new.status = old.status and p_event in ('heartbeat', 'activity', 'running', 'stopped', 'exited') then old.status_reason
    else null end;

  if p_event in ('error', 'crashed') and p_message is not null then
    new.last_error := p_message;
    new.last_error_at := v_at;
  elsif p_event in ('warning', 'inactive') and p_message is not null then
    new.last_warning := p_message;
    new.last_warning_at := v_at;
  end if;
  if p_activity is not null then
    new.last_activity := p_activity;
    new.last_activity_at := v_at;
  end if;

  new.health := coalesce(p_health, case
    when p_event in ('started', 'adopted') and new.status = 'warning' then 50
    when p_event in ('started', 'adopted') and not (old.status = any (live)) then 100
    when p_event = 'stable' and new.status = 'running' then 100
    when new.status = 'stopped' and old.status <> 'stopped' then 0
    -- an error said without a health is no longer healthy: it must not keep reading 95
    when p_event in ('crashed', 'error') then 0
    else old.health end);

  if p_event in ('started', 'adopted') then
    new.pid := coalesce(p_pid, old.pid);
    new.exit_code := null;
    new.exit_signal := null;
    new.stopped_at := null;
    if p_event = 'started' or old.started_at is null or old.status not in ('running', 'warning', 'error', 'stale') then
      new.started_at := v_at;
    end if;
  elsif p_event in ('stopped', 'exited', 'crashed', 'terminated') then
    new.pid := null;
    new.stopped_at := v_at;
    new.exit_code := p_exit_code;
    new.exit_signal := p_exit_signal;
  elsif alive_evidence and old.status = 'stopped' and new.status = any (live) then
    new.started_at := v_at;
    new.stopped_at := null;
  end if;
  if p_pid is not null and alive_evidence then
    new.pid := p_pid;
  end if;

  if alive_evidence then
    new.last_heartbeat := now();
  end if;

  if new.status = any (live) then
    if alive_evidence or not (old.status = any (live)) or old.stale_at is null then
      new.stale_at := now() + make_interval(secs => heartbeat_timeout);
    end if;
    if activity_timeout is null or p_event = 'inactive' or new.status = 'warning' and new.status_source = 'sweep' then
      new.inactive_at := null;
    elsif p_activity is not null or p_event in ('started', 'adopted') or not (old.status = any (live))
          or old.inactive_at is null then
      new.inactive_at := coalesce(new.last_activity_at, now()) + make_interval(secs => activity_timeout);
      if new.inactive_at < now() then
        new.inactive_at := now() + make_interval(secs => activity_timeout);
      end if;
    end if;
  else
    new.stale_at := null;
    new.inactive_at := null;
  end if;

  v_details := coalesce(p_details, '{}') || jsonb_strip_nulls(jsonb_build_object(
    'pid', p_pid, 'exit_code', p_exit_code, 'exit_signal', p_exit_signal, 'activity', p_activity));

  -- Bounded history in a crash loop: the second crash before the agent was stable again is written
  -- with details.crash_loop = true (the row alerts recognise), and later identical crashes (same
  -- exit code and signal) that the runner will restart from, and the restarts between them, are
  -- counted on that row (details.repeats, last_at, last_message) instead of adding two rows every
  -- cycle. A crash the runner gives up on is written: it is the end of the loop.
  if p_event = 'crashed' and old.crash_loop_event_id is not null and restart_in is not null then
    select * into loop_row from public.agent_events where id = old.crash_loop_event_id;
    if loop_row.id is not null
       and (loop_row.details -> 'exit_code') is not distinct from (v_details -> 'exit_code')
       and (loop_row.details -> 'exit_signal') is not distinct from (v_details -> 'exit_signal') then
      update public.agent_events set details = loop_row.details || (v_details - 'pid') || jsonb_build_object(
          'repeats', coalesce((loop_row.details ->> 'repeats')::integer, 0) + 1,
          'last_at', v_at, 'last_message', left(p_message, 1000), 'restarts_10m', cardinality(recent),
          'restarts_total', new.restarts_total)
      where id = loop_row.id;
      folded := true;
    end if;
  elsif p_event in ('started', 'adopted') and old.crash_loop_event_id is not null then
    folded := true;  -- the restart between two counted crashes
  end if;
  if p_event = 'crashed' and old.unstable_since is not null and not folded then
    v_details := v_details || jsonb_build_object('crash_loop', true, 'repeats', 0,
      'restarts_10m', cardinality(recent), 'restarts_total', new.restarts_total);
  end if;
  if restart_in is not null then
    v_details := v_details || jsonb_build_object('restart_in_s', restart_in);
  end if;

  if not folded and (new.status is distinct from old.status
     or new.health is distinct from old.health
     or p_event not in ('heartbeat', 'activity', 'running', 'warning', 'error')
     or (p_event in ('warning', 'error') and p_message is not null)) then
    insert into public.agent_events
      (agent_id, runner_id, at, kind, source, actor, from_status, to_status, health, message, details)
    values
      (p_agent_id, old.runner_id, v_at, p_event, p_source, p_actor, old.status, new.status, new.health,
       p_message, v_details)
    returning id into v_event_id;
    if p_event = 'crashed' and old.unstable_since is not null then
      new.crash_loop_event_id := v_event_id;
    end if;
  end if;

  update public.agent_status set
    status = new.status, health = new.health, last_heartbeat = new.last_heartbeat,
    last_error = new.last_error, last_activity = new.last_activity, updated_at = new.updated_at,
    status_source = new.status_source, status_reason = new.status_reason,
    status_changed_at = new.status_changed_at, pid = new.pid, started_at = new.started_at,
    stopped_at = new.stopped_at, exit_code = new.exit_code, exit_signal = new.exit_signal,
    last_activity_at = new.last_activity_at, stale_at = new.stale_at, inactive_at = new.inactive_at,
    restarts_total = new.restarts_total, restart_times = new.restart_times,
    unstable_since = new.unstable_since, next_restart_at = new.next_restart_at,
    crash_loop_event_id = new.crash_loop_event_id, last_warning = new.last_warning,
    last_warning_at = new.last_warning_at, last_error_at = new.last_error_at,
    heartbeat_interval_s = new.heartbeat_interval_s
  where id = p_agent_id;

  return new;
end
$$;

-------------------------------------------------------------------------------------------------------
-- Agents speak: the heartbeat interval they declare, and when each report was made
-------------------------------------------------------------------------------------------------------

drop function public.agent_heartbeat(text, text, text, integer, text, integer);
create function public.agent_heartbeat(
  p_token text,
  p_agent_name text,
  p_status text default null,
  p_health integer default null,
  p_activity text default null,
  p_pid integer default null,
  p_heartbeat_interval_s integer default null,
  p_at timestamptz default null
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
  if p_heartbeat_interval_s is not null and (p_heartbeat_interval_s < 1 or p_heartbeat_interval_s > 86400) then
    perform agent_private.invalid(format('heartbeat_interval_s must be between 1 and 86400 seconds, got %s', p_heartbeat_interval_s));
  end if;
  who := agent_private.authorize_agent(p_token, p_agent_name);
  event := coalesce(p_status, case when p_activity is not null then 'activity' else 'heartbeat' end);
  return agent_private.apply_event(who.agent_id, event, who.source, who.actor,
    p_health => p_health, p_activity => p_activity, p_pid => p_pid, p_at => p_at,
    p_heartbeat_interval_s => p_heartbeat_interval_s);
end
$$;

-- From 20261130100000_one_agent_state_one_command_path.sql, passing the interval and the time on.
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
    (item ->> 'health')::integer, item ->> 'last_activity', (item ->> 'pid')::integer,
    (item ->> 'heartbeat_interval_s')::integer, (item ->> 'at')::timestamptz);
  return jsonb_build_object('agent', agent_private.agent_state_json(agent));
end
$$;

drop function public.agent_report(text, text, text, text, integer, text, integer, integer, text, jsonb);
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
  p_details jsonb default null,
  p_at timestamptz default null,
  p_heartbeat_interval_s integer default null
) returns public.agent_status
  language plpgsql security definer set search_path = ''
as $$
declare
  who record;
  agent_events constant text[] := array['started', 'stopped', 'running', 'warning', 'error', 'activity', 'heartbeat'];
  runner_events constant text[] := array['adopted', 'exited', 'crashed', 'terminated', 'stable'];
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
  -- (parenthesised: PL/pgSQL ends an IF condition at the first THEN outside parentheses)
  if p_details -> 'restart_in_s' is not null and (case when jsonb_typeof(p_details -> 'restart_in_s') = 'number'
     then (p_details ->> 'restart_in_s')::numeric not between 0 and 86400 else true end) then
    perform agent_private.invalid('details.restart_in_s must be a number of seconds between 0 and 86400');
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
  if p_heartbeat_interval_s is not null and (p_heartbeat_interval_s < 1 or p_heartbeat_interval_s > 86400) then
    perform agent_private.invalid(format('heartbeat_interval_s must be between 1 and 86400 seconds, got %s', p_heartbeat_interval_s));
  end if;

  who := agent_private.authorize_agent(p_token, p_agent_name);
  if p_event = any (runner_events) and who.source <> 'runner' then
    perform agent_private.invalid(format('%s is reported by the runner that supervises the process', p_event));
  end if;

  return agent_private.apply_event(who.agent_id, p_event, who.source, who.actor,
    p_health => p_health, p_message => p_message, p_activity => p_activity, p_pid => p_pid,
    p_exit_code => p_exit_code, p_exit_signal => p_exit_signal, p_details => p_details, p_at => p_at,
    p_heartbeat_interval_s => p_heartbeat_interval_s);
end
$$;

-------------------------------------------------------------------------------------------------------
-- Runners: the interval they heartbeat at
-------------------------------------------------------------------------------------------------------

drop function public.runner_heartbeat(text, jsonb);
create function public.runner_heartbeat(p_token text, p_agents jsonb default null, p_interval_s integer default null)
  returns jsonb
  language plpgsql security definer set search_path = ''
as $$
declare
  r public.runners := agent_private.authorize_runner(p_token);
  item jsonb;
  v_agent_id integer;
  relayed integer := 0;
begin
  if p_interval_s is not null and (p_interval_s < 1 or p_interval_s > 86400) then
    perform agent_private.invalid(format('interval_s must be between 1 and 86400 seconds, got %s', p_interval_s));
  end if;
  update public.runners set last_seen_at = now(), status = 'online', stopped_at = null,
    heartbeat_interval_s = coalesce(p_interval_s, heartbeat_interval_s)
  where id = r.id;
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

-------------------------------------------------------------------------------------------------------
-- Operators set timeouts
-------------------------------------------------------------------------------------------------------

-- Sets an agent's heartbeat and activity timeouts, in seconds: null leaves one as it is, 0 gives it
-- back to the runner's config, the declared interval or the default. Recorded as a `timeouts_set`
-- event; the deadlines move at once (an agent already silent for longer reads stale at once).
create function public.set_agent_timeouts(
  p_agent_name text,
  p_heartbeat_timeout_s integer default null,
  p_activity_timeout_s integer default null,
  p_operator_token text default null
) returns public.agent_status
  language plpgsql security definer set search_path = ''
as $$
declare
  who text := agent_private.require_operator(p_operator_token);
  a public.agent_status;
  s public.agent_status_settings;
  hb integer;
  act integer;
begin
  if p_heartbeat_timeout_s is not null and p_heartbeat_timeout_s <> 0 and p_heartbeat_timeout_s not between 5 and 86400 then
    perform agent_private.invalid(format('heartbeat timeout must be 5..86400 seconds (0: back to the default), got %s', p_heartbeat_timeout_s));
  end if;
  if p_activity_timeout_s is not null and p_activity_timeout_s <> 0 and p_activity_timeout_s not between 10 and 604800 then
    perform agent_private.invalid(format('activity timeout must be 10..604800 seconds (0: back to the default), got %s', p_activity_timeout_s));
  end if;
  if p_heartbeat_timeout_s is null and p_activity_timeout_s is null then
    perform agent_private.invalid('give a heartbeat timeout, an activity timeout, or both');
  end if;
  select * into a from public.agent_status where agent_name = agent_private.check_agent_name(p_agent_name) for update;
  if a.id is null then
    raise exception using errcode = 'P0002', message = format('no agent named %L', p_agent_name),
      hint = 'List agents with: agent-status list';
  end if;
  select * into s from public.agent_status_settings;
  if p_heartbeat_timeout_s is not null then
    a.operator_heartbeat_timeout_s := nullif(p_heartbeat_timeout_s, 0);
  end if;
  if p_activity_timeout_s is not null then
    a.operator_activity_timeout_s := nullif(p_activity_timeout_s, 0);
  end if;
  hb := (agent_private.heartbeat_timeout(a, s)).timeout_s;
  act := agent_private.activity_timeout(a, s);
  update public.agent_status set
    operator_heartbeat_timeout_s = a.operator_heartbeat_timeout_s,
    operator_activity_timeout_s = a.operator_activity_timeout_s,
    stale_at = case when stale_at is not null then coalesce(last_heartbeat, now()) + make_interval(secs => hb) end,
    inactive_at = case when inactive_at is not null and act is not null
                       then coalesce(last_activity_at, started_at, now()) + make_interval(secs => act) end,
    updated_at = now()
  where id = a.id
  returning * into a;
  insert into public.agent_events (agent_id, runner_id, kind, source, actor, message, details)
  values (a.id, a.runner_id, 'timeouts_set', 'operator', who,
          format('heartbeat timeout %s s, activity timeout %s', hb, coalesce(act || ' s', 'none')),
          jsonb_build_object('heartbeat_timeout_s', hb, 'activity_timeout_s', act,
                             'operator_heartbeat_timeout_s', a.operator_heartbeat_timeout_s,
                             'operator_activity_timeout_s', a.operator_activity_timeout_s));
  return a;
end
$$;

-------------------------------------------------------------------------------------------------------
-- The sweep: runners are silent after two of their own intervals
-------------------------------------------------------------------------------------------------------

create or replace function public.agent_status_sweep() returns jsonb
  language plpgsql security definer set search_path = ''
as $$
declare
  s public.agent_status_settings;
  due record;
  n_stale integer := 0;
  n_inactive integer := 0;
  n_expired integer := 0;
  n_abandoned integer := 0;
  n_offline integer := 0;
  n_events integer := 0;
  n_commands integer := 0;
  n_cron integer := 0;
begin
  if not pg_try_advisory_xact_lock(hashtext('agent_status_sweep')) then
    return jsonb_build_object('skipped', true);
  end if;
  select * into s from public.agent_status_settings;

  -- Rows a heartbeat holds right now are skipped: that heartbeat moves the deadline anyway.
  for due in
    select id, last_heartbeat from public.agent_status where stale_at <= now() order by stale_at for update skip locked
  loop
    perform agent_private.apply_event(due.id, 'deadline', 'sweep', 'sweep',
      p_message => case when due.last_heartbeat is null then 'no heartbeat since it started'
                        else format('no heartbeat since %s', to_char(due.last_heartbeat, 'YYYY-MM-DD HH24:MI:SS TZ')) end);
    n_stale := n_stale + 1;
  end loop;

  for due in
    select id, last_activity_at, inactive_at from public.agent_status where inactive_at <= now()
    order by inactive_at for update skip locked
  loop
    perform agent_private.apply_event(due.id, 'inactive', 'sweep', 'sweep',
      p_message => case when due.last_activity_at is null then 'no activity reported since it started: alive but possibly hung'
                        else format('no activity reported since %s: alive but possibly hung',
                                    to_char(due.last_activity_at, 'YYYY-MM-DD HH24:MI:SS TZ')) end);
    n_inactive := n_inactive + 1;
  end loop;

  with expired as (
    update public.agent_commands set status = 'expired', finished_at = now(),
      result = 'no runner claimed it before it expired'
    where status = 'pending' and expires_at <= now()
    returning agent_id, id, action
  ), logged as (
    insert into public.agent_events (agent_id, kind, source, actor, message, details)
    select agent_id, 'command_expired', 'sweep', 'sweep', format('%s expired: no runner claimed it in time', action),
           jsonb_build_object('command_id', id, 'action', action)
    from expired returning 1
  )
  select count(*) into n_expired from logged;

  with abandoned as (
    update public.agent_commands set status = 'failed', finished_at = now(),
      result = format('the runner claimed it but did not report a result within %s s', s.claimed_command_timeout_s)
    where status = 'claimed' and claimed_at <= now() - make_interval(secs => s.claimed_command_timeout_s)
    returning agent_id, id, action, claimed_by, result
  ), logged as (
    insert into public.agent_events (agent_id, runner_id, kind, source, actor, message, details)
    select agent_id, claimed_by, 'command_failed', 'sweep', 'sweep', format('%s failed: %s', action, result),
           jsonb_build_object('command_id', id, 'action', action)
    from abandoned returning 1
  )
  select count(*) into n_abandoned from logged;

  -- A runner silent past two of its heartbeat intervals is persisted offline: one runner_offline
  -- event (source sweep, details.silent_s) that alerts fold its agents under.
  with gone as (
    update public.runners r set status = 'offline'
    where r.status = 'online' and r.last_seen_at <= now() - agent_private.runner_silent_after(r, s)
    returning r.id, r.host, r.last_seen_at
  ), logged as (
    insert into public.agent_events (runner_id, kind, source, actor, message, details)
    select id, 'runner_offline', 'sweep', 'sweep',
           format('runner on %s silent since %s', host, to_char(last_seen_at, 'YYYY-MM-DD HH24:MI:SS TZ')),
           jsonb_build_object('silent_s', floor(extract(epoch from now() - last_seen_at)), 'last_seen_at', last_seen_at)
    from gone returning 1
  )
  select count(*) into n_offline from logged;

  delete from public.agent_events where id in (
    select id from public.agent_events where at < now() - s.event_retention order by at limit s.prune_batch);
  get diagnostics n_events = row_count;
  delete from public.agent_commands where id in (
    select id from public.agent_commands where finished_at < now() - s.command_retention
    order by finished_at limit s.prune_batch);
  get diagnostics n_commands = row_count;
  if to_regclass('cron.job_run_details') is not null then
    begin
      execute 'delete from cron.job_run_details where end_time < now() - $1' using s.cron_history_retention;
      get diagnostics n_cron = row_count;
    exception when insufficient_privilege then
      null;
    end;
  end if;

  return jsonb_build_object('skipped', false, 'stale', n_stale, 'inactive', n_inactive,
    'commands_expired', n_expired, 'commands_abandoned', n_abandoned, 'runners_offline', n_offline,
    'events_pruned', n_events, 'commands_pruned', n_commands, 'cron_runs_pruned', n_cron);
end
$$;

-------------------------------------------------------------------------------------------------------
-- Reading: runners and agents as of the database's now()
-------------------------------------------------------------------------------------------------------

-- Runners with their liveness deadline applied at read time: `status` is silent the moment two of
-- the runner's heartbeat intervals pass without a word, before the sweep persists it as offline.
create view public.runner_status_live with (security_invoker = true) as
select
  r.id,
  r.host,
  case when r.status = 'offline' then 'offline'
       when r.last_seen_at <= now() - agent_private.runner_silent_after(r, st) then 'silent'
       else 'online' end as status,
  r.status as recorded_status,
  r.version,
  r.pid,
  r.started_at,
  r.last_seen_at,
  r.stopped_at,
  r.heartbeat_interval_s,
  extract(epoch from agent_private.runner_silent_after(r, st))::integer as silent_after_s,
  case when r.status = 'offline' or r.last_seen_at <= now() - agent_private.runner_silent_after(r, st)
       then floor(extract(epoch from now() - r.last_seen_at))::integer end as silent_s,
  r.metadata,
  now() as observed_at
from public.runners r
cross join public.agent_status_settings st;

-- The agents' live view, its earlier columns unchanged in name and order; uptime_s now counts only
-- while a process runs, and the runner's liveness is the deadline above. New columns at the end.
create or replace view public.agent_status_live with (security_invoker = true) as
select
  a.id,
  a.agent_name,
  case when a.stale_at <= now() then agent_private.next_status(a.status, a.status_source, 'deadline')
       else a.status end::public.agent_status_value as status,
  a.health,
  a.last_heartbeat,
  a.last_error,
  a.last_activity,
  a.updated_at,
  a.status as recorded_status,
  case when a.stale_at <= now() and a.status in ('running', 'warning') then 'sweep' else a.status_source end
    ::public.agent_event_source as status_source,
  case when a.stale_at <= now() and a.status in ('running', 'warning')
         then format('no heartbeat for %s s', floor(extract(epoch from now() - a.last_heartbeat)))
       when a.status in ('running', 'warning') and rl.status in ('silent', 'offline')
         then format('its runner on %s is %s (no word for %s s)', rl.host, rl.status, rl.silent_s)
       else a.status_reason end as status_reason,
  a.status_changed_at,
  a.host,
  a.runner_id,
  rl.status = 'online' as runner_online,
  rl.last_seen_at as runner_last_seen_at,
  a.pid,
  a.started_at,
  a.stopped_at,
  a.exit_code,
  a.exit_signal,
  a.last_activity_at,
  hb.timeout_s as heartbeat_timeout_s,
  agent_private.activity_timeout(a, st) as activity_timeout_s,
  a.stale_at,
  a.inactive_at,
  a.metadata,
  now() as observed_at,
  extract(epoch from now() - a.last_heartbeat)::double precision as seconds_since_heartbeat,
  -- only while a process runs: an agent that reported an error and exited is down, not up
  case when a.status <> 'stopped' and a.stopped_at is null and a.started_at is not null
       then extract(epoch from now() - a.started_at)::double precision end as uptime_s,
  -- new in issue 11
  case when a.stopped_at is not null and a.status in ('stopped', 'error')
       then extract(epoch from now() - a.stopped_at)::double precision end as down_s,
  rl.status as runner_status,
  rl.silent_s as runner_silent_s,
  rl.heartbeat_interval_s as runner_heartbeat_interval_s,
  a.restarts_total,
  (select count(*) from unnest(a.restart_times) t where t > now() - interval '10 minutes')::integer as restarts_10m,
  a.restart_times[cardinality(a.restart_times)] as last_restart_at,
  a.unstable_since is not null as crash_looping,
  a.unstable_since,
  case when a.next_restart_at > now() then a.next_restart_at end as next_restart_at,
  a.last_warning,
  a.last_warning_at,
  a.last_error_at,
  coalesce(c.warnings_1h, 0)::integer as warnings_1h,
  coalesce(c.warnings_24h, 0)::integer as warnings_24h,
  coalesce(c.errors_1h, 0)::integer as errors_1h,
  coalesce(c.errors_24h, 0)::integer as errors_24h,
  a.heartbeat_interval_s,
  hb.source as heartbeat_timeout_source
from public.agent_status a
cross join public.agent_status_settings st
cross join lateral agent_private.heartbeat_timeout(a, st) hb
left join public.runner_status_live rl on rl.id = a.runner_id
-- Warnings (reported, or the sweep's "no activity") and errors (reported, or crashes, with the
-- repeats a crash loop folded into one row) in the last hour and day.
left join lateral (
  select sum(1) filter (where e.kind in ('warning', 'inactive') and e.at > now() - interval '1 hour') as warnings_1h,
         sum(1) filter (where e.kind in ('warning', 'inactive')) as warnings_24h,
         sum(1 + coalesce((e.details ->> 'repeats')::integer, 0))
           filter (where e.kind in ('error', 'crashed') and e.at > now() - interval '1 hour') as errors_1h,
         sum(1 + coalesce((e.details ->> 'repeats')::integer, 0)) filter (where e.kind in ('error', 'crashed')) as errors_24h
  from public.agent_events e
  where e.agent_id = a.id and e.at > now() - interval '1 day' and e.kind in ('warning', 'inactive', 'error', 'crashed')
) c on true;

-------------------------------------------------------------------------------------------------------
-- Privileges (as 20261124000400_agent_status_security.sql: nothing by default, then what each needs)
-------------------------------------------------------------------------------------------------------

revoke all on public.runner_status_live from public, anon, authenticated;
grant select on public.runner_status_live, public.agent_status_live to authenticated, service_role;

revoke execute on function
  agent_private.heartbeat_timeout(public.agent_status, public.agent_status_settings),
  agent_private.activity_timeout(public.agent_status, public.agent_status_settings),
  agent_private.runner_silent_after(public.runners, public.agent_status_settings),
  agent_private.next_agent_status(public.agent_status_value, public.agent_event_source, text, public.agent_status_value, boolean),
  agent_private.apply_event(integer, text, public.agent_event_source, text, public.agent_status_value,
    integer, text, text, integer, integer, text, jsonb, timestamptz, integer)
  from public, anon, authenticated;
-- the live views call these as the reading user
grant execute on function
  agent_private.heartbeat_timeout(public.agent_status, public.agent_status_settings),
  agent_private.activity_timeout(public.agent_status, public.agent_status_settings),
  agent_private.runner_silent_after(public.runners, public.agent_status_settings),
  agent_private.next_agent_status(public.agent_status_value, public.agent_event_source, text, public.agent_status_value, boolean)
  to authenticated, service_role;

revoke execute on function
  public.agent_heartbeat(text, text, text, integer, text, integer, integer, timestamptz),
  public.agent_report(text, text, text, text, integer, text, integer, integer, text, jsonb, timestamptz, integer),
  public.runner_heartbeat(text, jsonb, integer),
  public.set_agent_timeouts(text, integer, integer, text)
  from public, anon, authenticated;
grant execute on function
  public.agent_heartbeat(text, text, text, integer, text, integer, integer, timestamptz),
  public.agent_report(text, text, text, text, integer, text, integer, integer, text, jsonb, timestamptz, integer),
  public.runner_heartbeat(text, jsonb, integer),
  public.set_agent_timeouts(text, integer, integer, text)
  to anon, authenticated, service_role;
