-- Truth, second pass (issue 19): restarts counted once per crash, a crash loop defined once (three
-- crashes in 10 minutes, not stable since), warnings counted once per episode or new message with
-- their reason kept, uptime only while a process is known to run, and no restart promised by a
-- runner that has gone quiet. Written by hand from supabase/schemas/ (pg-delta planned to drop and
-- recreate operator_list_agents for the view's new column; replacing the view keeps it), checked
-- equal by npm run db:diff.

alter table public.agent_status add column crash_times timestamptz[] not null default '{}'
  check (cardinality(crash_times) <= 100);

-- A crash loop is a pattern, not one crash: three or more unplanned exits in the last 10 minutes,
-- and not stable since (issue 19; a single crash read "crash loop" for 30 s). The one definition the
-- live view's crash_looping (the row, its badge, `list`) and the alerts' crash_loop flip use.
create or replace function agent_private.crash_looping(a public.agent_status) returns boolean
  language sql stable set search_path = ''
as $$
  select a.unstable_since is not null
     and (select count(*) from unnest(a.crash_times) t where t > now() - interval '10 minutes') >= 3
$$;

grant execute on function agent_private.crash_looping(public.agent_status) to authenticated, service_role;
revoke all on function agent_private.crash_looping(public.agent_status) from public;

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
  same_episode := p_event in ('warning', 'error') and old.status = p_event
                  and (p_message is null or p_message = old.status_reason);

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
    crashes := array(select t from unnest(old.crash_times) t where t > now() - interval '10 minutes' order by t);
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
    heartbeat_interval_s = new.heartbeat_interval_s, crash_times = new.crash_times
  where id = p_agent_id;

  return new;
end
$function$;

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
       -- a restart promised by a runner that has gone quiet will not happen: say so, not its plan
       when a.next_restart_at is not null and rl.status in ('silent', 'offline')
         then format('%s; it was to be restarted, but its runner on %s is %s (no word for %s s)',
                     split_part(a.status_reason, '; restarting in ', 1), rl.host, rl.status, rl.silent_s)
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
  -- only while a process is known to run: an agent that reported an error and exited is down, and a
  -- silent one (stale, read or recorded) may be dead; neither is up
  case when a.status not in ('stopped', 'stale') and a.stopped_at is null and a.started_at is not null
            and not coalesce(a.stale_at <= now(), false)
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
  agent_private.crash_looping(a) as crash_looping,
  a.unstable_since,
  -- only while its runner is there to keep the promise
  case when a.next_restart_at > now() and rl.status = 'online' then a.next_restart_at end as next_restart_at,
  a.last_warning,
  a.last_warning_at,
  a.last_error_at,
  coalesce(c.warnings_1h, 0)::integer as warnings_1h,
  coalesce(c.warnings_24h, 0)::integer as warnings_24h,
  coalesce(c.errors_1h, 0)::integer as errors_1h,
  coalesce(c.errors_24h, 0)::integer as errors_24h,
  a.heartbeat_interval_s,
  hb.source as heartbeat_timeout_source,
  -- new in issue 19: the unplanned exits crash_looping counts
  (select count(*) from unnest(a.crash_times) t where t > now() - interval '10 minutes')::integer as crashes_10m
from public.agent_status a
cross join public.agent_status_settings st
cross join lateral agent_private.heartbeat_timeout(a, st) hb
left join public.runner_status_live rl on rl.id = a.runner_id
-- Warnings (reported, or the sweep's "no activity") and errors (reported, or crashes, with the
-- repeats a crash loop folded into one row) in the last hour and day: one per episode or new
-- message (a row written for a health change within the same warning is marked same_episode).
left join lateral (
  select sum(1) filter (where e.kind in ('warning', 'inactive') and e.at > now() - interval '1 hour') as warnings_1h,
         sum(1) filter (where e.kind in ('warning', 'inactive')) as warnings_24h,
         sum(1 + coalesce((e.details ->> 'repeats')::integer, 0))
           filter (where e.kind in ('error', 'crashed') and e.at > now() - interval '1 hour') as errors_1h,
         sum(1 + coalesce((e.details ->> 'repeats')::integer, 0)) filter (where e.kind in ('error', 'crashed')) as errors_24h
  from public.agent_events e
  where e.agent_id = a.id and e.at > now() - interval '1 day' and e.kind in ('warning', 'inactive', 'error', 'crashed')
    and not e.details ? 'same_episode'
) c on true;
