-- The state machine: the events, next_agent_status, apply_event (the only code that writes an agent's status), deadlines, and the heartbeat/report answer.
--
-- supabase/schemas/ is the current definition of every SQL object, applied in file-name order
-- (supabase/README.md). Change it here, then generate the migration: npm run db:diff -- <name>.

-- One source for two shapes that were written several times.
--
-- The agent-state answer (what heartbeat and report tell an agent after applying its call) was built
-- by the heartbeat batch here in SQL and again by the report function as a select list in TypeScript.
-- agent_private.agent_state_json builds it once; every SQL path that answers an agent's state uses it,
-- and its keys are shared/api/agent.ts AgentState (tests/functions check answers against that schema).
--
-- `desired` carries an operator's stop or restart of an agent no runner manages (via_heartbeat
-- commands): the oldest one not yet done, with its id. Writing it into the answer is its delivery, so
-- the builder marks it claimed (when first delivered; it is delivered again until the agent acts, in
-- case an answer was lost), and the sweep fails it if the agent never reports the outcome.
-- The answer's shape, given the command to deliver (or null). Apart from agent_state_json so the
-- batch's set-based path (agent_private.steady_heartbeats) can deliver commands for a whole batch in
-- one statement and still build the same answer. Like the other small helpers here that run once per
-- row (activity_timeout, heartbeat_timeout_s, activity_deadline, next_agent_status) it has no
-- `set search_path` and no FROM, so the planner inlines it into the calling statement: a function
-- with its own search_path is a real call with a configuration switch every time (about a third of a
-- steady heartbeat's cost in `npm run bench`). Safe without one: inlined, it is parsed in its caller
-- (every caller sets search_path = ''), names only schema-qualified objects and pg_catalog, and is
-- no security definer.
create function agent_private.agent_state_answer(agent public.agent_status, desired jsonb) returns jsonb
  language sql stable
as $$
  select jsonb_build_object(
    'agent_name', agent.agent_name, 'status', agent.status, 'health', agent.health,
    'last_heartbeat', agent.last_heartbeat, 'last_error', agent.last_error,
    'last_activity', agent.last_activity, 'status_reason', agent.status_reason,
    'started_at', agent.started_at, 'stopped_at', agent.stopped_at, 'stale_at', agent.stale_at,
    'updated_at', agent.updated_at, 'health_reported_at', agent.health_reported_at, 'desired', desired)
$$;

create function agent_private.agent_state_json(agent public.agent_status) returns jsonb
  language sql set search_path = ''
as $$
  with wish as (
    select c.id from public.agent_commands c
    where c.agent_id = agent.id and c.via_heartbeat
      and (c.status = 'claimed' or (c.status = 'pending' and c.expires_at > now()))
    order by c.id limit 1
  ), delivered as (
    update public.agent_commands c set status = 'claimed', claimed_at = coalesce(c.claimed_at, now())
    from wish where c.id = wish.id
    returning c.id, c.action
  )
  select agent_private.agent_state_answer(agent,
    (select jsonb_build_object('action', d.action, 'command_id', d.id) from delivered d))
$$;

-- A stop or restart delivered through the heartbeat answer is done when the agent says so: its
-- stopped report ends a stop (one still waiting too: what was wished has happened), its started
-- report (the fresh process, or the SDK after the agent's restart handler) ends a delivered restart.
create function agent_private.complete_delivered_commands(p_agent_id integer, p_event text) returns void
  language sql set search_path = ''
as $$
  with done as (
    update public.agent_commands c set status = 'succeeded', finished_at = now(),
      result = case c.action when 'stop' then 'the agent stopped: it got the stop with a heartbeat answer'
                             else 'the agent started again: it got the restart with a heartbeat answer' end
    where c.agent_id = p_agent_id and c.via_heartbeat
      and ((p_event = 'stopped' and c.action = 'stop' and c.status in ('pending', 'claimed'))
           or (p_event = 'started' and c.action = 'restart' and c.status = 'claimed'))
    returning c.id, c.action, c.result
  )
  insert into public.agent_events (agent_id, kind, source, actor, message, details)
  select p_agent_id, 'command_succeeded', 'agent', 'agent', format('%s succeeded: %s', done.action, done.result),
         jsonb_build_object('command_id', done.id, 'action', done.action)
  from done
$$;

-- The heartbeat timeout that applies to an agent, and where it comes from: an operator's, the
-- runner config's, 2.5 declared intervals (at least 5 s), or the default.
-- heartbeat_timeout_s is the value alone, inlinable (see agent_state_answer).
create function agent_private.heartbeat_timeout_s(a public.agent_status, s public.agent_status_settings) returns integer
  language sql immutable
as $$
  select case
      when a.operator_heartbeat_timeout_s is not null then a.operator_heartbeat_timeout_s
      when a.heartbeat_timeout_s is not null then a.heartbeat_timeout_s
      when a.heartbeat_interval_s is not null then greatest(5, ceil(2.5 * a.heartbeat_interval_s)::integer)
      else s.default_heartbeat_timeout_s end
$$;

create function agent_private.heartbeat_timeout(a public.agent_status, s public.agent_status_settings,
  out timeout_s integer, out source text)
  language sql immutable set search_path = ''
as $$
  select agent_private.heartbeat_timeout_s(a, s),
    case
      when a.operator_heartbeat_timeout_s is not null then 'operator'
      when a.heartbeat_timeout_s is not null then 'config'
      when a.heartbeat_interval_s is not null then 'interval'
      else 'default' end
$$;

create function agent_private.activity_timeout(a public.agent_status, s public.agent_status_settings) returns integer
  language sql immutable
as $$
  select coalesce(a.operator_activity_timeout_s, a.activity_timeout_s, s.default_activity_timeout_s)
$$;

-- When a live agent reads "no activity" (inactive_at), after an event: none without an activity
-- timeout, or when cleared (the sweep's own warning, or the inactive event itself); the current
-- deadline kept, unless the clock restarts (new activity, a start, the agent coming back to life) or
-- there is none yet; else the last activity plus the timeout, never in the past. apply_event and the
-- batch's set-based path (agent_private.steady_heartbeats) both use it.
create function agent_private.activity_deadline(
  p_timeout_s integer,
  p_cleared boolean,
  p_current timestamptz,
  p_last_activity_at timestamptz,
  p_restart boolean
) returns timestamptz
  language sql stable
as $$
  select case
    when p_timeout_s is null or p_cleared then null
    when p_current is not null and not p_restart then p_current
    when coalesce(p_last_activity_at, now()) + make_interval(secs => p_timeout_s) < now()
      then now() + make_interval(secs => p_timeout_s)
    else coalesce(p_last_activity_at, now()) + make_interval(secs => p_timeout_s) end
$$;

-- The times of the last 10 minutes, oldest first: what restart_times and crash_times keep.
create function agent_private.recent_restarts(p_times timestamptz[]) returns timestamptz[]
  language sql stable
as $$
  select array(select t from unnest(p_times) t where t > now() - interval '10 minutes' order by t)
$$;

-- p_restarting: the agent crashed and has not been stable since (unstable_since is set). Whatever
-- would make it `running` then makes it `warning`: an agent that keeps dying never reads running.
-- (`up` below: running, or warning while restarting.) Inlined into its callers (see
-- agent_state_answer), so one expression without FROM.
create function agent_private.next_agent_status(
  p_current public.agent_status_value,
  p_current_source public.agent_event_source,
  p_event text,
  p_forced public.agent_status_value,
  p_restarting boolean
) returns public.agent_status_value
  language sql immutable
as $$
  select case
    when p_event in ('started', 'adopted', 'running')
      -- Proof of life revives what was inferred (stale) or recorded as stopped; it never overrides
      -- what somebody said explicitly. Only activity clears the sweep's own "no activity" warning.
      or (p_event in ('heartbeat', 'activity') and p_current in ('stopped', 'stale'))
      or (p_event = 'activity' and p_current = 'warning' and p_current_source = 'sweep')
      then case when p_restarting then 'warning' else 'running' end
    when p_event = 'warning' then 'warning'
    when p_event in ('error', 'crashed') then 'error'
    when p_event = 'terminated' then 'stopped'
    -- the runner: the restarted process stayed up past its stable period, so the crash loop is over
    when p_event = 'stable' then case when p_current = 'warning' and p_restarting then 'running' else p_current end
    -- A crash followed by the exit handler's "stopped" must not hide the crash.
    when p_event in ('stopped', 'exited') then case when p_current = 'error' then 'error' else 'stopped' end
    when p_event in ('heartbeat', 'activity') then p_current
    when p_event = 'deadline' then case when p_current in ('running', 'warning') then 'stale' else p_current end
    when p_event = 'inactive' then case when p_current = 'running' then 'warning' else p_current end
    when p_event = 'force' then p_forced
  end::public.agent_status_value
$$;

-- The status an agent reads now: its recorded status, or what the missed deadline makes of it. The one
-- definition the live view and the dashboard's page share; SQL without `set search_path` so the
-- planner inlines it into their scans (a call per row would cost 100,000 calls a page at 100,000 agents).
create function agent_private.live_status(
  p_status public.agent_status_value,
  p_source public.agent_event_source,
  p_stale_at timestamp with time zone
) returns public.agent_status_value
  language sql stable
as $$
  select case when p_stale_at <= now()
              then agent_private.next_agent_status(p_status, p_source, 'deadline', null, false)
              else p_status end
$$;

create or replace function agent_private.is_event(p_event text) returns boolean
  language sql immutable set search_path = ''
as $$
  select p_event = any (array['started', 'adopted', 'heartbeat', 'activity', 'running', 'warning', 'error',
                              'stopped', 'exited', 'crashed', 'terminated', 'stable', 'deadline', 'inactive', 'force'])
$$;

-- A crash loop is a pattern, not one crash: three or more unplanned exits in the last 10 minutes,
-- and not stable since (issue 19; a single crash read "crash loop" for 30 s). The one definition the
-- live view's crash_looping (the row, its badge, `list`) and the alerts' crash_loop flip use.
create or replace function agent_private.crash_looping(a public.agent_status) returns boolean
  language sql stable set search_path = ''
as $$
  select a.unstable_since is not null
     and (select count(*) from unnest(a.crash_times) t where t > now() - interval '10 minutes') >= 3
$$;

-- Applies one event to one agent: the only code that writes agent_status after creation (besides
-- set_agent_timeouts' own columns). It locks the row, so concurrent heartbeats, reports and the sweep
-- serialise on it and each sees the last committed state (compare-and-set). It writes an event row for
-- every flip, reported warning or error, process change and forced status, and for health changes
-- (the dashboard's health chart). p_at is when the event happened as the caller saw it (clamped).
-- It also counts restarts and folds crash loops, keeps the latest warning and error, and records the
-- declared heartbeat interval.
create or replace function agent_private.apply_event (
  p_agent_id             integer,
  p_event                text,
  p_source               public.agent_event_source,
  p_actor                text,
  p_forced               public.agent_status_value default null::text,
  p_health               integer                   default null::integer,
  p_message              text                      default null::text,
  p_activity             text                      default null::text,
  p_pid                  integer                   default null::integer,
  p_exit_code            integer                   default null::integer,
  p_exit_signal          text                      default null::text,
  p_details              jsonb                     default '{}'::jsonb,
  p_at                   timestamp with time zone  default null::timestamp with time zone,
  p_heartbeat_interval_s integer                   default null::integer
)
  returns public.agent_status
  language plpgsql
  set search_path to ''
  AS $function$
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
  crashes timestamptz[];
  -- this crash makes (or continues) a crash loop: agent_private.crash_looping of the new row
  loop_crash boolean := false;
  same_episode boolean;
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

  -- a warning or error that neither starts an episode nor says something new: its reason stays, and
  -- it is not counted as another warning (issue 19: 35 "warnings" in 3 minutes of one episode)
  -- (is not distinct from: a status without a reason yet must not make the comparison null, which
  -- wrote no history for the first message of an episode)
  same_episode := p_event in ('warning', 'error') and old.status = p_event
                  and (p_message is null or p_message is not distinct from old.status_reason);

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
  recent := agent_private.recent_restarts(old.restart_times);
  if p_event = 'crashed' then
    new.unstable_since := coalesce(old.unstable_since, v_at);
    crashes := agent_private.recent_restarts(old.crash_times);
    new.crash_times := (crashes || v_at)[greatest(1, cardinality(crashes) - 98):];
    loop_crash := agent_private.crash_looping(new);
    if p_details is not null and jsonb_typeof(p_details -> 'restart_in_s') = 'number' then
      restart_in := (p_details ->> 'restart_in_s')::numeric;
      new.next_restart_at := v_at + make_interval(secs => restart_in);
    else
      new.next_restart_at := null;
    end if;
  -- One restart per crash: the first start or adoption after the process ended (stopped_at, which a
  -- start clears). Under a runner an SDK agent reports its own "started" from inside the process the
  -- runner just restarted, through the runner's channel and token, so the source cannot tell the two
  -- apart, and either may arrive first; an adoption of a process restarted before is no restart.
  elsif p_event in ('started', 'adopted') and old.unstable_since is not null and old.stopped_at is not null then
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
    -- a warning or error repeated without a new message keeps its reason while the status lasts
    when same_episode then old.status_reason
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
  -- Whether that health was reported (agent_status.health_reported_at): by this call when it carries
  -- one (an operator's force with a health is an operator's report); not when the state machine put
  -- its own default in its place; and not after a start or the end of a process: a new process has
  -- said nothing of its health yet (the runner's start carries none; the SDK's first status does),
  -- and an ended one's health is no longer true. A reset of restarts, a deadline and an adoption
  -- (the same process, found by a restarted runner) leave it.
  new.health_reported_at := case
    when p_health is not null then v_at
    when p_event in ('started', 'stopped', 'exited', 'crashed', 'terminated') then null
    when new.health is distinct from old.health then null
    else old.health_reported_at end;

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
    new.inactive_at := agent_private.activity_deadline(activity_timeout,
      p_event = 'inactive' or (new.status = 'warning' and new.status_source = 'sweep'), old.inactive_at,
      new.last_activity_at, p_activity is not null or p_event in ('started', 'adopted') or not (old.status = any (live)));
  else
    new.stale_at := null;
    new.inactive_at := null;
  end if;

  v_details := coalesce(p_details, '{}') || jsonb_strip_nulls(jsonb_build_object(
    'pid', p_pid, 'exit_code', p_exit_code, 'exit_signal', p_exit_signal, 'activity', p_activity));

  -- Bounded history in a crash loop: the crash that makes it a loop (agent_private.crash_looping) is
  -- written with details.crash_loop = true (the row alerts recognise), and later identical crashes (same
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
  if loop_crash and not folded then
    v_details := v_details || jsonb_build_object('crash_loop', true, 'repeats', 0,
      'restarts_10m', cardinality(recent), 'restarts_total', new.restarts_total);
  end if;
  if restart_in is not null then
    v_details := v_details || jsonb_build_object('restart_in_s', restart_in);
  end if;
  -- written for its health change only; the live view's warning and error counts leave it out
  if same_episode then
    v_details := v_details || jsonb_build_object('same_episode', true);
  end if;

  if not folded and (new.status is distinct from old.status
     or new.health is distinct from old.health
     or p_event not in ('heartbeat', 'activity', 'running', 'warning', 'error')
     or (p_event in ('warning', 'error') and p_message is not null and not same_episode)) then
    insert into public.agent_events
      (agent_id, runner_id, at, kind, source, actor, from_status, to_status, health, message, details)
    values
      (p_agent_id, old.runner_id, v_at, p_event, p_source, p_actor, old.status, new.status, new.health,
       p_message, v_details)
    returning id into v_event_id;
    if loop_crash then
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
    heartbeat_interval_s = new.heartbeat_interval_s, crash_times = new.crash_times,
    health_reported_at = new.health_reported_at
  where id = p_agent_id;

  return new;
end
$function$;
