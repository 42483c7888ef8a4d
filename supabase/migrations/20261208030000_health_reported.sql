-- Health reported or not: agent_status.health_reported_at, set by apply_event and the batch's steady
-- path whenever a call carries a health, cleared when the state machine puts its own default in its
-- place or a process starts or ends (supabase/schemas/40_state_machine.sql says why). The live view
-- gives it as its last column, the dashboard's health sort puts agents without one last both ways, and
-- the metrics scrape leaves out their health sample instead of answering the default 0. A 2,000-agent
-- trial showed every shell program under the runner at "health 0", which reads as unhealthy.
-- Written by hand (a view's new column and a data backfill); checked with
-- `npm run db:diff -- health_reported --version 20261208030000`.

alter table public.agent_status add column health_reported_at timestamptz;

-- Rows from before: the state machine itself only ever writes 0, 50 or 100, so any other value was
-- reported: when, as near as history tells, is its latest row carrying that value (else the row's
-- last update).
-- A reported 0, 50 or 100 cannot be told from a default and reads "not reported" until the agent
-- says it again (the SDKs repeat health with their status).
update public.agent_status a set health_reported_at = coalesce(
    (select max(e.at) from public.agent_events e where e.agent_id = a.id and e.health = a.health), a.updated_at)
where a.health not in (0, 50, 100);

create or replace view public.agent_status_live with (security_invoker = true) as
select
  a.id,
  a.agent_name,
  agent_private.live_status(a.status, a.status_source, a.stale_at) as status,
  a.health,
  a.last_heartbeat,
  a.last_error,
  a.last_activity,
  a.updated_at,
  a.status as recorded_status,
  case when a.stale_at <= now() and a.status in ('running', 'warning') then 'sweep' else a.status_source end
    ::public.agent_event_source as status_source,
  agent_private.live_reason(a, rl.host, rl.status, rl.silent_s) as status_reason,
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
  (select count(*) from unnest(a.crash_times) t where t > now() - interval '10 minutes')::integer as crashes_10m,
  -- null: `health` is the state machine's default, nobody reported it (agent_status.health_reported_at)
  a.health_reported_at
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

create or replace function agent_private.steady_heartbeats(p_heartbeats jsonb)
  returns table (n bigint, agent jsonb)
  language plpgsql volatile set search_path = ''
as $$
begin
  return query
  with item as materialized (
    select e.ordinality as n, agent_private.hash_token(e.value ->> 'token') as token_hash, e.value ->> 'agent_name' as agent_name,
           coalesce(e.value ->> 'status', case when e.value ->> 'last_activity' is not null then 'activity' else 'heartbeat' end) as event,
           case when e.value ->> 'health' ~ '^\d{1,3}$' then (e.value ->> 'health')::integer end as health,
           e.value ->> 'last_activity' as activity,
           case when e.value ->> 'pid' ~ '^[1-9]\d{0,8}$' then (e.value ->> 'pid')::integer end as pid,
           case when e.value ->> 'heartbeat_interval_s' ~ '^\d{1,5}$' then (e.value ->> 'heartbeat_interval_s')::integer end as interval_s,
           e.value ->> 'heartbeat_interval_s' is null as no_interval
    -- mentions: how often the batch names the agent, malformed items included
    from (select x.*, count(*) over (partition by x.value ->> 'agent_name') as mentions
          from jsonb_array_elements(p_heartbeats) with ordinality x) e
    -- an agent named twice goes one by one, in order
    where e.mentions = 1
      and jsonb_typeof(e.value) = 'object'
      and char_length(e.value ->> 'token') between 1 and 200
      and coalesce(e.value ->> 'status', 'running') = 'running'
      -- (a CASE, not AND: AND may cast before it tests)
      and (case when e.value ->> 'health' is null then true
                when e.value ->> 'health' ~ '^\d{1,3}$' then (e.value ->> 'health')::integer <= 100 else false end)
      and (e.value ->> 'pid' is null or e.value ->> 'pid' ~ '^[1-9]\d{0,8}$')
      and (e.value ->> 'heartbeat_interval_s' is null or e.value ->> 'heartbeat_interval_s' ~ '^\d{1,5}$')
      and coalesce(char_length(e.value ->> 'last_activity'), 0) <= 1000
      and e.value ->> 'at' is null
  ),
  -- read once (joined per row, the settings table was scanned again for every heartbeat)
  settings as materialized (select st as s from public.agent_status_settings st limit 1),
  steady as materialized (
    select i.n, i.activity, i.pid, i.health, a.id as agent_id, t.id as token_id, t.last_used_at,
           agent_private.heartbeat_timeout_s(a, settings.s) as heartbeat_timeout_s,
           agent_private.activity_timeout(a, settings.s) as activity_timeout_s
    from settings, item i
    join public.api_tokens t on t.token_hash = i.token_hash and t.revoked_at is null
                            and (t.expires_at is null or t.expires_at > now()) and t.kind in ('agent', 'runner')
    join public.agent_status a on a.agent_name = i.agent_name
    where ((t.kind = 'agent' and a.id = t.agent_id)
           or (t.kind = 'runner' and exists (select 1 from public.runners r where r.id = a.runner_id and r.host = t.host)))
      and a.status in ('running', 'warning') and a.unstable_since is null
      and agent_private.next_agent_status(a.status, a.status_source, i.event, null, false) = a.status
      and (i.event <> 'running' or a.status_source = case t.kind when 'agent' then 'agent' else 'runner' end)
      and coalesce(i.health, a.health) = a.health
      and (i.no_interval or i.interval_s = a.heartbeat_interval_s)
  ),
  -- agent_state_json's delivery, for the whole batch: each agent's oldest stop or restart not yet done
  wish as (
    select distinct on (c.agent_id) c.id from public.agent_commands c
    where c.agent_id in (select agent_id from steady) and c.via_heartbeat
      and (c.status = 'claimed' or (c.status = 'pending' and c.expires_at > now()))
    order by c.agent_id, c.id
  ),
  delivered as (
    update public.agent_commands c set status = 'claimed', claimed_at = coalesce(c.claimed_at, now())
    from wish where c.id = wish.id
    returning c.agent_id, c.id, c.action
  ),
  applied as (
    update public.agent_status a set
      last_heartbeat = now(),
      updated_at = now(),
      pid = coalesce(i.pid, a.pid),
      -- a health equal to the one stored is steady, and is still a report (apply_event's rule)
      health_reported_at = case when i.health is not null then now() else a.health_reported_at end,
      last_activity = coalesce(i.activity, a.last_activity),
      last_activity_at = case when i.activity is not null then now() else a.last_activity_at end,
      restart_times = case when cardinality(a.restart_times) = 0 then a.restart_times
                           else agent_private.recent_restarts(a.restart_times) end,
      stale_at = now() + make_interval(secs => i.heartbeat_timeout_s),
      inactive_at = agent_private.activity_deadline(i.activity_timeout_s, a.status = 'warning' and a.status_source = 'sweep',
        a.inactive_at, case when i.activity is not null then now() else a.last_activity_at end, i.activity is not null)
    from steady i
    where a.id = i.agent_id
    returning i.n, i.token_id, i.last_used_at, a.id, a as agent
  ),
  used as (
    update public.api_tokens t set last_used_at = now()
    where t.id in (select token_id from applied where last_used_at is null or last_used_at < now() - interval '1 minute')
  )
  select applied.n, agent_private.agent_state_answer(applied.agent,
           (select jsonb_build_object('action', d.action, 'command_id', d.id) from delivered d where d.agent_id = applied.id))
  from applied;
end
$$;

create or replace function public.dashboard_agent_page(
  p_status text default null,
  p_host text default null,
  p_without_host boolean default false,
  p_search text default null,
  p_sort text default 'status',
  p_descending boolean default false,
  p_offset integer default 0,
  p_limit integer default 100,
  p_since jsonb default null
) returns jsonb
  -- jit off: before the planner has statistics of the small tables the live view joins, it costs this
  -- statement past jit_above_cost, and compiling it took 3 of the 3.4 s a call took at 2,500 agents
  language plpgsql stable security invoker set search_path = '' set jit = off
as $$
declare
  v_pattern text;
  v_query jsonb := jsonb_build_array(p_status, p_host, p_without_host, p_search, p_sort, p_descending, p_offset, p_limit);
  v_resources boolean := p_sort in ('cpu', 'memory');
  v_ids integer[];
  v_page jsonb;
begin
  if p_sort is null or p_sort not in ('status', 'name', 'host', 'health', 'activity', 'heartbeat', 'uptime', 'cpu', 'memory') then
    perform agent_private.invalid(format('sort must be status, name, host, health, activity, heartbeat, uptime, cpu or memory, got %L', p_sort));
  end if;
  if p_status is not null and p_status not in ('running', 'warning', 'error', 'stopped', 'stale') then
    perform agent_private.invalid(format('status must be running, warning, error, stopped or stale, got %L', p_status));
  end if;
  if p_offset is null or p_offset < 0 then
    perform agent_private.invalid(format('offset must be 0 or more, got %s', p_offset));
  end if;
  if p_limit is null or p_limit < 1 or p_limit > 1000 then
    perform agent_private.invalid(format('limit must be between 1 and 1000, got %s', p_limit));
  end if;
  -- the search is a substring in any case; % and _ in it are letters, not patterns
  v_pattern := '%' || replace(replace(replace(nullif(btrim(p_search), ''), '\', '\\'), '%', '\%'), '_', '\_') || '%';

  -- a search matches the view's sentences, which move with the clock and the runners: searched, the
  -- pass runs every time
  if v_pattern is null and agent_private.fleet_unchanged(p_since, v_query, v_resources) then
    v_ids := array(select jsonb_array_elements_text(p_since -> 'ids')::integer);
    return jsonb_build_object(
      'observed_at', now(),
      'offset', p_offset,
      'unchanged', true,
      'mark', p_since || jsonb_build_object('xid', pg_snapshot_xmin(pg_current_snapshot())),
      -- = any of an array: a join with the ids made the planner read the whole view by hash
      'rows', coalesce((select jsonb_agg(to_jsonb(l) - 'metadata' order by array_position(v_ids, l.id))
                        from public.agent_status_live l where l.id = any(v_ids)), '[]'));
  end if;

  v_page := (
    with agents as materialized (
      select a.id, a.agent_name, a.host, a.runner_id, s.status,
             (p_status is null or s.status = p_status)
               and (p_host is null or a.host = p_host) and (not p_without_host or a.host is null)
               -- the reason as the row says it (the live view's sentence), not only as recorded,
               -- and the words on its badges
               and (v_pattern is null or a.agent_name ilike v_pattern or a.host ilike v_pattern
                    or agent_private.live_reason(a, rl.host, rl.status, rl.silent_s) ilike v_pattern
                    or agent_private.row_badges(a, rl.status) ilike v_pattern) as matches,
             -- ascending as the table means it: what needs attention first, the freshest heartbeat,
             -- agents not up then the latest start, the busiest; agents without figures last
             -- each branch double precision: CASE would otherwise take cpu_percent's real, whose 24
             -- bits cannot tell two epochs a minute apart
             case p_sort
               when 'status' then case s.status when 'error' then 0 when 'stale' then 1 when 'warning' then 2
                                                when 'running' then 3 else 4 end::double precision
               -- a health nobody reported has no place among the figures: last both ways (below)
               when 'health' then case when a.health_reported_at is not null then a.health::double precision end
               when 'heartbeat' then -coalesce(extract(epoch from a.last_heartbeat)::double precision, '-infinity')
               when 'uptime' then -case when s.runs then extract(epoch from a.started_at)::double precision else 'infinity' end
               when 'cpu' then -case when s.runs then coalesce(r.cpu_percent::double precision, -1) else -1 end
               when 'memory' then -case when s.runs then coalesce(r.memory_bytes::double precision, -1) else -1 end
             end as k_num,
             case p_sort
               when 'name' then a.agent_name
               when 'host' then coalesce(a.host, '')
               when 'activity' then coalesce(a.last_activity, '')
             end as k_text
      from public.agent_status a
      left join public.agent_resources r on r.agent_id = a.id
      left join public.runner_status_live rl on rl.id = a.runner_id
      -- the live view's status (the deadline applied at read time) and whether the process runs
      cross join lateral (
        select l.status, l.status <> 'stopped' and a.started_at is not null and a.stopped_at is null as runs
        from (select agent_private.live_status(a.status, a.status_source, a.stale_at)::text as status) l
      ) s
    ), page as (
      select m.id, m.k_num, m.k_text, m.agent_name
      from agents m
      where m.matches
      order by case when p_descending then null else m.k_num end,
               case when p_descending then m.k_num end desc nulls last,
               case when p_descending then null else m.k_text end,
               case when p_descending then m.k_text end desc,
               m.agent_name, m.id
      offset p_offset limit p_limit
    )
    select jsonb_build_object(
      'observed_at', now(),
      'offset', p_offset,
      'total', (select count(*) from agents),
      'matching', (select count(*) from agents where matches),
      'statuses', coalesce((select jsonb_object_agg(t.status, t.n)
                            from (select x.status, count(*) as n from agents x group by x.status) t), '{}'),
      'hosts', coalesce((select jsonb_agg(t.host order by t.host nulls first)
                         from (select distinct x.host from agents x) t), '[]'),
      'runners', coalesce((select jsonb_object_agg(t.runner_id, t.statuses)
                           from (select x.runner_id, jsonb_object_agg(x.status, x.n) as statuses
                                 from (select y.runner_id, y.status, count(*) as n from agents y
                                       where y.runner_id is not null group by y.runner_id, y.status) x
                                 group by x.runner_id) t), '{}'),
      -- metadata (up to 8 kB an agent) is not shown in the table
      -- in the page's order (a join keeps no order of its own)
      'rows', coalesce((select jsonb_agg(to_jsonb(l) - 'metadata'
                                         order by case when p_descending then null else p.k_num end,
                                                  case when p_descending then p.k_num end desc nulls last,
                                                  case when p_descending then null else p.k_text end,
                                                  case when p_descending then p.k_text end desc,
                                                  p.agent_name, p.id)
                        from page p join public.agent_status_live l on l.id = p.id), '[]'))
  );
  return v_page || jsonb_build_object('mark', jsonb_build_object(
    'xid', pg_snapshot_xmin(pg_current_snapshot()),
    'query', v_query,
    'agents', v_page -> 'total',
    'resources', case when v_resources then (select count(*) from public.agent_resources) end,
    -- the first deadline to come: a scan (no index on stale_at, so that heartbeats update in place),
    -- 11 ms at 100,000 agents beside the pass's 200-500
    'deadline', (select min(a.stale_at) from public.agent_status a where a.stale_at > now()),
    'ids', (select coalesce(jsonb_agg(r -> 'id'), '[]') from jsonb_array_elements(v_page -> 'rows') r)));
end
$$;

create or replace function public.agent_metrics(p_token text) returns jsonb
  language plpgsql security definer set search_path = ''
as $$
declare
  v_until timestamptz := now();
begin
  perform agent_private.read_key(p_token, 'metrics');
  return jsonb_build_object(
    'agents', coalesce((
      select jsonb_agg(jsonb_build_object(
               'name', l.agent_name, 'host', l.host, 'status', l.status,
               -- null (no sample: Prometheus' unknown) while nobody reported it, never the default 0
               'health', case when l.health_reported_at is not null then l.health end,
               'seconds_since_heartbeat', l.seconds_since_heartbeat, 'restarts_total', l.restarts_total,
               'up_percent_24h', agent_private.up_percent(l.id, v_until - interval '24 hours', v_until))
             order by l.agent_name)
      from public.agent_status_live l
      join public.agent_status a on a.id = l.id
      where a.archived_at is null), '[]'),
    'runners', coalesce((
      select jsonb_agg(jsonb_build_object('host', r.host, 'status', r.status) order by r.host)
      from public.runner_status_live r), '[]'),
    'deliveries', coalesce((
      select jsonb_agg(jsonb_build_object('channel', c.name, 'kind', c.kind, 'status', d.status, 'count', d.deliveries)
                       order by c.name, d.status)
      from (select channel_id, status, count(*) as deliveries from public.alert_deliveries group by channel_id, status) d
      join public.alert_channels c on c.id = d.channel_id), '[]'));
end
$$;
