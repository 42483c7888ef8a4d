-------------------------------------------------------------------------------------------------------
-- The state machine (documented in docs/state-machine.md; tests check every cell against that table)
-------------------------------------------------------------------------------------------------------

-- The events, all of them:
--   started     the agent (or its runner) says it started          adopted   a runner found it running
--   heartbeat   proof of life, nothing more                        activity  proof of life doing work
--   running / warning / error   the agent says so explicitly
--   stopped     the agent says it is stopping (its exit handler)
--   exited      its process ended with code 0 on its own          crashed   ended non-zero or by a signal
--   terminated  its runner stopped it on a command
--   deadline    the sweep: no heartbeat before stale_at           inactive  the sweep: no activity before inactive_at
--   force       an operator sets the status without touching any process
create function agent_private.next_status(
  p_current public.agent_status_value,
  p_current_source public.agent_event_source,
  p_event text,
  p_forced public.agent_status_value default null
) returns public.agent_status_value
  language sql immutable set search_path = ''
as $$
  select case p_event
    when 'started' then 'running'
    when 'adopted' then 'running'
    when 'running' then 'running'
    when 'warning' then 'warning'
    when 'error' then 'error'
    when 'crashed' then 'error'
    when 'terminated' then 'stopped'
    -- A crash followed by the exit handler's "stopped" must not hide the crash.
    when 'stopped' then case when p_current = 'error' then 'error' else 'stopped' end
    when 'exited' then case when p_current = 'error' then 'error' else 'stopped' end
    -- Proof of life revives what was inferred (stale) or recorded as stopped; it never overrides what
    -- somebody said explicitly. Only activity clears the sweep's own "no activity" warning.
    when 'heartbeat' then case when p_current in ('stopped', 'stale') then 'running' else p_current end
    when 'activity' then case
      when p_current in ('stopped', 'stale') then 'running'
      when p_current = 'warning' and p_current_source = 'sweep' then 'running'
      else p_current end
    when 'deadline' then case when p_current in ('running', 'warning') then 'stale' else p_current end
    when 'inactive' then case when p_current = 'running' then 'warning' else p_current end
    when 'force' then p_forced
  end::public.agent_status_value
$$;

create function agent_private.is_event(p_event text) returns boolean
  language sql immutable set search_path = ''
as $$
  select p_event = any (array['started', 'adopted', 'heartbeat', 'activity', 'running', 'warning', 'error',
                              'stopped', 'exited', 'crashed', 'terminated', 'deadline', 'inactive', 'force'])
$$;

-- Applies one event to one agent: the only code that writes agent_status after creation. It locks
-- the row, so concurrent heartbeats, reports and the sweep serialise on it and each sees the last
-- committed state (compare-and-set). It writes an event row for every flip, reported warning or
-- error, process change and forced status, and for health changes (the dashboard's health chart).
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
  p_details jsonb default '{}'
) returns public.agent_status
  language plpgsql set search_path = ''
as $$
declare
  old public.agent_status;
  new public.agent_status;
  settings public.agent_status_settings;
  live constant text[] := array['running', 'warning'];
  alive_evidence boolean := p_event in ('started', 'adopted', 'heartbeat', 'activity', 'running', 'warning', 'error');
  heartbeat_timeout integer;
  activity_timeout integer;
begin
  if not agent_private.is_event(p_event) then
    perform agent_private.invalid(format('unknown event %L', p_event));
  end if;

  select * into old from public.agent_status where id = p_agent_id for update;
  if not found then
    raise exception using errcode = 'P0002', message = format('no agent with id %s', p_agent_id);
  end if;

  -- The sweep's events are compare-and-set on the stored deadline: a heartbeat that committed first
  -- moved the deadline, and then the sweep has nothing to do.
  if (p_event = 'deadline' and (old.stale_at is null or old.stale_at > now()))
     or (p_event = 'inactive' and (old.inactive_at is null or old.inactive_at > now())) then
    return old;
  end if;

  select * into settings from public.agent_status_settings;
  heartbeat_timeout := coalesce(old.heartbeat_timeout_s, settings.default_heartbeat_timeout_s);
  activity_timeout := case when old.activity_timeout_s is not null then old.activity_timeout_s
                           else settings.default_activity_timeout_s end;

  new := old;
  new.status := agent_private.next_status(old.status, old.status_source, p_event, p_forced);
  new.updated_at := now();

  if new.status is distinct from old.status or p_event not in ('heartbeat', 'activity') then
    new.status_source := p_source;
  end if;
  if new.status is distinct from old.status then
    new.status_changed_at := now();
  end if;

  new.status_reason := case
    when p_event in ('warning', 'error', 'crashed', 'force', 'deadline', 'inactive') then p_message
    when new.status = old.status and p_event in ('heartbeat', 'activity', 'running') then old.status_reason
    else null end;
  if p_event in ('error', 'crashed') and p_message is not null then
    new.last_error := p_message;
  end if;
  if p_activity is not null then
    new.last_activity := p_activity;
    new.last_activity_at := now();
  end if;

  new.health := coalesce(p_health, case
    when p_event in ('started', 'adopted') and not (old.status = any (live)) then 100
    when new.status = 'stopped' and old.status <> 'stopped' then 0
    when p_event = 'crashed' then 0
    else old.health end);

  if p_event in ('started', 'adopted') then
    new.pid := coalesce(p_pid, old.pid);
    new.exit_code := null;
    new.exit_signal := null;
    new.stopped_at := null;
    if p_event = 'started' or old.started_at is null or old.status not in ('running', 'warning', 'error', 'stale') then
      new.started_at := now();
    end if;
  elsif p_event in ('stopped', 'exited', 'crashed', 'terminated') then
    new.pid := null;
    new.stopped_at := now();
    new.exit_code := p_exit_code;
    new.exit_signal := p_exit_signal;
  elsif alive_evidence and old.status = 'stopped' and new.status = any (live) then
    -- revived by proof of life: it is running, so it started at some point we did not see
    new.started_at := now();
    new.stopped_at := null;
  end if;
  if p_pid is not null and alive_evidence then
    new.pid := p_pid;
  end if;

  if alive_evidence then
    new.last_heartbeat := now();
  end if;

  -- Deadlines exist only while the agent is expected to speak.
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

  update public.agent_status set
    status = new.status, health = new.health, last_heartbeat = new.last_heartbeat,
    last_error = new.last_error, last_activity = new.last_activity, updated_at = new.updated_at,
    status_source = new.status_source, status_reason = new.status_reason,
    status_changed_at = new.status_changed_at, pid = new.pid, started_at = new.started_at,
    stopped_at = new.stopped_at, exit_code = new.exit_code, exit_signal = new.exit_signal,
    last_activity_at = new.last_activity_at, stale_at = new.stale_at, inactive_at = new.inactive_at
  where id = p_agent_id;

  -- A heartbeat that carries the status the agent already has (the SDKs send it every 30 s) adds
  -- nothing to the history; a warning or error with its message does, even when repeated.
  if new.status is distinct from old.status
     or new.health is distinct from old.health
     or p_event not in ('heartbeat', 'activity', 'running', 'warning', 'error')
     or (p_event in ('warning', 'error') and p_message is not null) then
    insert into public.agent_events
      (agent_id, runner_id, kind, source, actor, from_status, to_status, health, message, details)
    values
      (p_agent_id, old.runner_id, p_event, p_source, p_actor, old.status, new.status, new.health,
       coalesce(p_message, case when p_activity is not null and p_event <> 'activity' then null end),
       coalesce(p_details, '{}') || jsonb_strip_nulls(jsonb_build_object(
         'pid', p_pid, 'exit_code', p_exit_code, 'exit_signal', p_exit_signal, 'activity', p_activity)));
  end if;

  return new;
end
$$;
