-- A runner that says goodbye (SIGTERM) reads stopped, not offline or silent, everywhere a runner's
-- status is read; a goodbye pages no one, and a stale agent it left running is told under its host in
-- words that say so; "host ... is back" says what each agent reads; a reset ends a crash loop (issue 19).
-- Written by hand from supabase/schemas/ (pg-delta would drop and re-add the check; the views keep
-- their columns and are replaced in place).

alter table public.runners drop constraint runners_status_check;
alter table public.runners add constraint runners_status_check check (status in ('online', 'offline', 'stopped'));
update public.runners set status = 'stopped' where status = 'offline' and stopped_at is not null;

-- What an agent's note says of its runner when that is not online: "its runner on H is silent (no
-- word for 95 s)", or "is stopped (said goodbye 95 s ago)" after a planned stop.
create function agent_private.runner_away(p_host text, p_status text, p_silent_s integer) returns text
  language sql immutable set search_path = ''
as $$
  select format('its runner on %s is %s (%s %s s%s)', p_host, p_status,
                case when p_status = 'stopped' then 'said goodbye' else 'no word for' end, p_silent_s,
                case when p_status = 'stopped' then ' ago' else '' end)
$$;

-- Runners with their liveness deadline applied at read time: `status` is silent the moment two of
-- the runner's heartbeat intervals pass without a word, before the sweep persists it as offline;
-- stopped once it said goodbye (runner_offline). `silent_s`: how long without a word, whenever it is
-- not online. The values: shared/status.ts RUNNER_STATUSES.
create or replace view public.runner_status_live with (security_invoker = true) as
select
  r.id,
  r.host,
  case when r.status <> 'online' then r.status
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
  case when r.status <> 'online' or r.last_seen_at <= now() - agent_private.runner_silent_after(r, st)
       then floor(extract(epoch from now() - greatest(r.last_seen_at, r.stopped_at)))::integer end as silent_s,
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
       when a.status in ('running', 'warning') and rl.status <> 'online'
         then agent_private.runner_away(rl.host, rl.status, rl.silent_s)
       -- a restart promised by a runner that has gone quiet will not happen: say so, not its plan
       when a.next_restart_at is not null and rl.status <> 'online'
         then format('%s; it was to be restarted, but %s',
                     split_part(a.status_reason, '; restarting in ', 1), agent_private.runner_away(rl.host, rl.status, rl.silent_s))
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

create or replace function public.runner_heartbeat(p_token text, p_agents jsonb default null, p_interval_s integer default null)
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
  -- after the agents it relays: "host … is back" tells what each of them reads now, not the silence
  -- this very heartbeat ends (issue 19)
  if r.status <> 'online' then
    insert into public.agent_events (runner_id, kind, source, actor, message)
    values (r.id, 'runner_online', 'runner', 'runner ' || r.host,
            format('runner on %s is back', r.host) || case when r.status = 'stopped' then ' after it stopped' else '' end);
  end if;
  return jsonb_build_object('runner_id', r.id, 'relayed', relayed);
end
$$;

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

create or replace function public.runner_offline(p_token text, p_instance text default null) returns void
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

-- `agent-status reset <agent>` (pm2 reset): forgets the restarts and crashes counted, so an agent
-- whose crash loop was fixed stops reading "12 restarts (crash loop)". It ends the crash loop too: the
-- loop is counted from crash_times (agent_private.crash_looping), and a reset that left them kept the
-- badge, `list` and the folded history row of a loop the operator had just declared over (issue 19).
-- Only the counters: its status, history and the crashes' events stay; the reset is an event of its
-- own with the counts it cleared and whether it ended a loop.
create or replace function public.reset_agent_restarts(p_agent_name text, p_operator_token text default null)
  returns jsonb
  language plpgsql security definer set search_path = ''
as $$
declare
  who text := agent_private.require_operator(p_operator_token);
  a public.agent_status;
begin
  select * into a from public.agent_status
  where agent_name = agent_private.check_agent_name(p_agent_name) and archived_at is null
  for update;
  if a.id is null then
    perform agent_private.refuse('P0002', format('no agent named %L', p_agent_name),
      'List agents with: agent-status list');
  end if;
  update public.agent_status set restarts_total = 0, restart_times = '{}', crash_times = '{}', crash_loop_event_id = null,
    updated_at = now()
  where id = a.id;
  insert into public.agent_events (agent_id, runner_id, kind, source, actor, message, details)
  values (a.id, a.runner_id, 'restarts_reset', 'operator', who,
          format('restart count reset by %s (was %s)', who, a.restarts_total)
            || case when agent_private.crash_looping(a) then format('; crash loop ended (%s crashes in 10 min)',
                 (select count(*) from unnest(a.crash_times) t where t > now() - interval '10 minutes')) else '' end,
          jsonb_build_object('restarts_total', a.restarts_total, 'restart_times', to_jsonb(a.restart_times),
                             'crash_times', to_jsonb(a.crash_times), 'crash_loop_ended', agent_private.crash_looping(a)));
  return jsonb_build_object('agent_name', a.agent_name, 'restarts_total', a.restarts_total,
                            'crash_loop_ended', agent_private.crash_looping(a));
end
$$;

-- What one badge shows (shared/badge.ts): an agent's live status and 24 h availability; or a host's
-- status (its runner's when that is not online: silent, offline or stopped; else its worst agent's: error, stale, warning,
-- stopped, running), how many of its agents are up, and their mean availability.
create or replace function public.agent_badge(p_token text, p_agent_name text default null, p_host text default null) returns jsonb
  language plpgsql security definer set search_path = ''
as $$
declare
  v_until timestamptz := now();
  v_agent_id integer;
  v_status text;
  v_runner_status text;
  v_total integer;
  v_up integer;
  v_percent numeric;
begin
  perform agent_private.read_key(p_token, 'badge');
  if (p_agent_name is null) = (p_host is null) then
    perform agent_private.invalid('a badge is of one agent or one host: give p_agent_name or p_host');
  end if;
  if p_agent_name is not null then
    select l.id, l.status into v_agent_id, v_status
    from public.agent_status_live l join public.agent_status a on a.id = l.id
    where l.agent_name = agent_private.check_agent_name(p_agent_name) and a.archived_at is null;
    if v_agent_id is null then
      perform agent_private.refuse('P0002', format('no agent named %L', p_agent_name),
        'Check the name in the badge URL against agent-status list.');
    end if;
    return jsonb_build_object('label', p_agent_name, 'status', v_status,
      'up_percent_24h', agent_private.up_percent(v_agent_id, v_until - interval '24 hours', v_until));
  end if;
  select r.status into v_runner_status from public.runner_status_live r where r.host = p_host;
  select count(*), count(*) filter (where l.status in ('running', 'warning')),
         (array['error', 'stale', 'warning', 'stopped', 'running'])[min(array_position(array['error', 'stale', 'warning', 'stopped', 'running'], l.status::text))],
         round(avg(agent_private.up_percent(l.id, v_until - interval '24 hours', v_until)), 2)
    into v_total, v_up, v_status, v_percent
  from public.agent_status_live l join public.agent_status a on a.id = l.id
  where l.host = p_host and a.archived_at is null;
  if v_runner_status is null and v_total = 0 then
    perform agent_private.refuse('P0002', format('no host %L', p_host),
      'Check the host in the badge URL: the name its runner token was made for.');
  end if;
  return jsonb_build_object('label', p_host,
    'status', case when v_runner_status <> 'online' then v_runner_status when v_total = 0 then 'empty' else v_status end,
    'agents', jsonb_build_object('up', v_up, 'total', v_total),
    'up_percent_24h', v_percent);
end
$$;

-- What an agent reads, in the words a host's recovery uses for it, and how bad that is (0 worst).
create function agent_private.agent_health_word(l public.agent_status_live) returns text
  language sql stable set search_path = ''
as $$
  select case when l.crash_looping then 'crash-looping' when l.status = 'stale' then 'not checked yet' else l.status::text end
$$;

create function agent_private.agent_health_rank(l public.agent_status_live) returns integer
  language sql stable set search_path = ''
as $$
  select case when l.crash_looping or l.status = 'error' then 0 when l.status = 'warning' then 1
              when l.status = 'stale' then 2 when l.status = 'stopped' then 3 else 4 end
$$;

-- The neutral "what happened" object. Wording lives here, once; channels only lay it out.
create or replace function agent_private.alert_notice(
  p_kind text,
  p_agent public.agent_status,
  p_host text,
  p_status text,
  p_previous text,
  p_reason text,
  p_at timestamptz,
  p_incident text,
  p_agents integer default null,
  p_extra jsonb default '{}'
) returns jsonb
  language sql stable set search_path = ''
as $$
  select jsonb_strip_nulls(jsonb_build_object(
    'kind', p_kind,
    'severity', case p_kind when 'down' then 'critical' when 'host_down' then 'critical' when 'reminder' then 'critical'
                            when 'flapping' then 'warning' when 'test' then 'info' else 'resolved' end,
    'title', case p_kind
      when 'down' then format('%s is down: %s', p_agent.agent_name, p_status)
      when 'up' then format('%s recovered: %s', p_agent.agent_name, p_status)
      when 'flapping' then format('%s is flapping', p_agent.agent_name)
      when 'reminder' then format('%s is still down: %s', p_agent.agent_name, p_status)
      when 'host_down' then format('host %s is %s: %s agents', p_host,
                                   case p_status when 'stopped' then 'stopped, its agents unwatched' else 'silent' end, p_agents)
      when 'host_up' then format('host %s is back: %s agents', p_host, p_agents)
      when 'test' then 'agent-status test notification'
    end,
    'text', coalesce(p_reason, case p_kind
      when 'down' then format('status %s (was %s)', p_status, p_previous)
      when 'up' then format('status %s (was %s)', p_status, p_previous)
      when 'host_down' then format('the runner on %s stopped answering; its agents are not reported on one by one', p_host)
      when 'host_up' then format('the runner on %s answers again', p_host)
      when 'test' then 'If you can read this, the channel works.'
    end),
    'agent', p_agent.agent_name,
    'host', coalesce(p_host, p_agent.host),
    'status', p_status,
    'previous_status', p_previous,
    'agents', p_agents,
    'at', p_at,
    'incident', p_incident
  ) || p_extra)
$$;

-- An agent (or a host, p_agent null) is no longer down on one channel. A recovery is told whenever a
-- down notice went out; one still waiting out its grace delay is cancelled instead, silently.
create or replace function agent_private.alert_recovered(
  c public.alert_channels, p_subject text, a public.agent_status, r public.runners, p_event_id bigint,
  p_status text, p_previous text, p_reason text
) returns void
  language plpgsql set search_path = ''
as $$
declare
  s agent_private.alert_states;
  cancelled integer;
  n integer;
  summary text;
  each_agent text;
  not_well boolean;
begin
  select * into s from agent_private.alert_states where channel_id = c.id and subject = p_subject for update;
  if not found or s.down_since is null then
    return;
  end if;
  if s.flapping_until is not null then
    -- alert_tick tells how the flapping ended once the agent is stable
    update agent_private.alert_states set down_since = null where channel_id = c.id and subject = p_subject;
    return;
  end if;
  update agent_private.alert_states set down_since = null, notified = false, folded = false, down_delivery_id = null
  where channel_id = c.id and subject = p_subject;
  if s.folded or not s.notified then
    return;  -- folded into its host's notice, or never told (paused): nothing to take back
  end if;
  update public.alert_deliveries set status = 'cancelled', finished_at = now(),
    last_error = 'recovered within the grace delay; not sent'
  where id = s.down_delivery_id and status = 'pending' and attempts = 0 and due_at > now();
  get diagnostics cancelled = row_count;
  if cancelled > 0 then
    return;
  end if;
  if r.id is not null then
    -- The host is back; its agents need not be (issue 19: "is back: 2 agents ✅" while one of them
    -- was crash-looping). The notice says what is true of each, now: the title counts them by what
    -- they read, the text names each one. One not heard of since the silence reads "not checked yet":
    -- its new runner relays it, or reports its crash, in the next seconds, and that flip is told.
    select sum(n_agents)::integer,
           string_agg(format('%s %s', n_agents, word), ', ' order by worst, word),
           bool_or(worst < 2)
      into n, summary, not_well
    from (select agent_private.agent_health_word(l) as word, min(agent_private.agent_health_rank(l)) as worst, count(*) as n_agents
          from public.agent_status_live l where l.runner_id = r.id group by 1) g;
    select left(string_agg(format('%s %s', l.agent_name, agent_private.agent_health_word(l)), ', '
                           order by agent_private.agent_health_rank(l), l.agent_name), 1500)
      into each_agent
    from public.agent_status_live l where l.runner_id = r.id;
    perform agent_private.alert_enqueue(c.id, p_event_id, null, r.id, p_subject, 'host_up',
      agent_private.alert_notice('host_up', null, r.host, 'online', 'offline',
        left(concat_ws('; ', coalesce(p_reason, format('the runner on %s answers again', r.host)), each_agent), 2000),
        now(), s.incident, n,
        p_extra => jsonb_build_object('title', format('host %s is back: %s agents', r.host, coalesce(n, 0))
                                               || coalesce(' (' || summary || ')', ''))
                    || case when not_well then jsonb_build_object('severity', 'warning') else '{}' end));
  else
    perform agent_private.alert_enqueue(c.id, p_event_id, a.id, null, p_subject, 'up',
      agent_private.alert_notice('up', a, null, p_status, p_previous, p_reason, now(), s.incident));
  end if;
end
$$;

create or replace function agent_private.alert_host_down(c public.alert_channels, r public.runners, p_event_id bigint, p_reason text)
  returns void
  language plpgsql set search_path = ''
as $$
declare
  s agent_private.alert_states;
  n integer;
  v_incident text;
begin
  if agent_private.alerts_paused(null, r.host) then
    return;
  end if;
  s := agent_private.alert_state(c.id, 'host:' || r.id, null, r.id);
  if s.down_since is not null then
    return;
  end if;
  select count(*) into n from public.agent_status where runner_id = r.id;
  v_incident := agent_private.alert_incident_key('host:' || r.id);
  update agent_private.alert_states set down_since = now(), notified = true, incident = v_incident, last_notified_at = now(),
    down_delivery_id = agent_private.alert_enqueue(c.id, p_event_id, null, r.id, 'host:' || r.id, 'host_down',
      agent_private.alert_notice('host_down', null, r.host, case when r.status = 'stopped' then 'stopped' else 'offline' end,
        'online', p_reason, now(), v_incident, n),
      now() + make_interval(secs => c.grace_s))
  where channel_id = c.id and subject = 'host:' || r.id;
end
$$;

create or replace function agent_private.alert_agent_down(
  c public.alert_channels, a public.agent_status, p_flip text, p_event_id bigint, p_status text, p_previous text, p_reason text
) returns void
  language plpgsql set search_path = ''
as $$
declare
  subj constant text := 'agent:' || a.id;
  s agent_private.alert_states;
  r public.runners;
  downs timestamptz[];
  v_incident text;
begin
  s := agent_private.alert_state(c.id, subj, a.id, null);
  if s.down_since is not null and not s.folded and s.flapping_until is null then
    return;  -- already down (stale after error, say): one incident, one notice
  end if;

  -- Grouping by host: an agent whose runner is silent went silent with it. So does one left running
  -- by a runner that said goodbye (stopped: the goodbye itself pages no one, but the agents it left
  -- unwatched going stale is news, told once for the host, in words that say it was a stop).
  select * into r from public.runners where id = a.runner_id;
  if p_flip = 'stale' and r.id is not null and 'host' = any (c.flips)
     and (r.status = 'stopped' or agent_private.runner_silent(r.id)) then
    perform agent_private.alert_host_down(c, r, null,
      case when r.status = 'stopped'
           then format('the runner on %s was stopped %s s ago and left its agents running; nothing relays their heartbeats',
                       r.host, floor(extract(epoch from now() - coalesce(r.stopped_at, r.last_seen_at))))
           else format('the runner on %s stopped answering', r.host) end);
    update agent_private.alert_states set down_since = now(), folded = true where channel_id = c.id and subject = subj;
    return;
  end if;

  -- Flap folding: the Nth down flip within the window turns into one "flapping" notice, and further
  -- flips stay quiet until the agent has been stable for a whole window (alert_tick then tells how it ended).
  downs := array(select t from unnest(s.recent_downs || now()) t where t > now() - make_interval(secs => c.flap_window_s));
  if s.flapping_until is not null or (c.flap_threshold > 0 and cardinality(downs) >= c.flap_threshold) then
    if s.flapping_until is null and not agent_private.alerts_paused(a.id, a.host) then
      v_incident := agent_private.alert_incident_key(subj);
      perform agent_private.alert_enqueue(c.id, p_event_id, a.id, null, subj, 'flapping',
        agent_private.alert_notice('flapping', a, null, p_status, p_previous,
          format('%s down flips in %s s; further flips are not told until it is stable for %s s',
                 cardinality(downs), c.flap_window_s, c.flap_window_s), now(), v_incident));
      update agent_private.alert_states set notified = true, incident = v_incident, last_notified_at = now()
      where channel_id = c.id and subject = subj;
    end if;
    update agent_private.alert_states set recent_downs = downs, down_since = now(), folded = false,
      flapping_until = now() + make_interval(secs => c.flap_window_s)
    where channel_id = c.id and subject = subj;
    return;
  end if;

  if agent_private.alerts_paused(a.id, a.host) then
    -- recorded, not sent; the pause's end tells it if it is still down then
    update agent_private.alert_states set recent_downs = downs, down_since = now(), notified = false, folded = false
    where channel_id = c.id and subject = subj;
    return;
  end if;

  v_incident := agent_private.alert_incident_key('agent:' || a.id);
  update agent_private.alert_states set recent_downs = downs, down_since = now(), folded = false, notified = true,
    incident = v_incident, last_notified_at = now() + make_interval(secs => c.grace_s),
    down_delivery_id = agent_private.alert_enqueue(c.id, p_event_id, a.id, null, subj, 'down',
      agent_private.alert_notice('down', a, null, p_status, p_previous, p_reason, now(), v_incident),
      now() + make_interval(secs => c.grace_s))
  where channel_id = c.id and subject = subj;
end
$$;

grant execute on function agent_private.runner_away(text, text, integer) to authenticated, service_role;
revoke all on function agent_private.runner_away(text, text, integer) from public;
revoke all on function agent_private.agent_health_word(public.agent_status_live) from public;
revoke all on function agent_private.agent_health_rank(public.agent_status_live) from public;
