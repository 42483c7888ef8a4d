-- Issue 22: the dashboard's search matches the reason as the row says it, the live view's sentence
-- ("no heartbeat for 95 s", "its runner on H is silent ..."), not only the reason recorded. That
-- sentence is defined once, agent_private.live_reason, for agent_status_live and
-- dashboard_agent_page; a searched page runs its pass every poll (the sentence moves with the clock).
-- Written by hand (pg-delta plans the view's replacement as a drop of its dependents); checked with
-- `npm run db:diff -- search_what_the_row_says --version 20261207020200`.

-- What the live view says of an agent's status (its status_reason): the reason recorded, unless the
-- deadline passed or its runner is away, which the agent cannot say itself. Defined once, for the
-- view and the dashboard's search (dashboard_agent_page); SQL without a search_path of its own, so
-- the planner inlines it, as agent_private.live_status.
create function agent_private.live_reason(
  a public.agent_status,
  p_runner_host text,
  p_runner_status text,
  p_runner_silent_s integer
) returns text
  language sql stable
as $$
  select case when a.stale_at <= now() and a.status in ('running', 'warning')
                then format('no heartbeat for %s s', floor(extract(epoch from now() - a.last_heartbeat)))
              when a.status in ('running', 'warning') and p_runner_status <> 'online'
                then agent_private.runner_away(p_runner_host, p_runner_status, p_runner_silent_s)
              -- a restart promised by a runner that has gone quiet will not happen: say so, not its plan
              when a.next_restart_at is not null and p_runner_status <> 'online'
                then format('%s; it was to be restarted, but %s', split_part(a.status_reason, '; restarting in ', 1),
                            agent_private.runner_away(p_runner_host, p_runner_status, p_runner_silent_s))
              else a.status_reason end
$$;

-- The agents' live view, its earlier columns unchanged in name and order; uptime_s now counts only
-- while a process runs, and the runner's liveness is the deadline above. New columns at the end.
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

-- The dashboard's list at any fleet size, in one call: the agents matching the filters (status as
-- the live view reads it, host, a search of name, host and the reason as the view says it), sorted,
-- and of those only the p_limit from p_offset (the rows in view); with the counts the page shows
-- beside them (every agent per status for the chips, how many match, the hosts for the host filter,
-- each runner's agents per status for the hosts view), so the browser never reads every agent. The sort keys are what the
-- table offers; ties go by name. Offsets, not keys: the table scrolls to any position, and every
-- order but the name's depends on now() (the deadline) or another table, so no index serves it and
-- the database reads the matching rows once either way (100,000 agents: one pass, a top-N sort).
-- security invoker: the reader's row-level security applies, as on the live view (a non-operator
-- gets nothing, an archived agent is hidden).
--
-- Polls of an unchanged fleet skip that pass (100,000 agents: 0.3-1 s of database time each, per open
-- dashboard every 2.5 s without Realtime). Every answer carries a `mark`; a poll that sends it back
-- as p_since for the same query gets `unchanged: true`, its rows read again by id (their ages, the
-- runner's liveness and the last hour's counts move with the clock), and the counts and order of
-- the answer that made the mark still hold, when in this snapshot:
-- - no agent row it counted was written since: every transaction whose writes that answer did not
--   see has an xid at or above the xmin of its snapshot (the oldest one then running, or the next),
--   which the mark keeps, so no row version this snapshot sees may have an xmin from there on. That
--   is commit order, not start or stamp order: a transaction that began before the answer and
--   committed after it, behind later-stamped ones, is in the range (an updated_at or a sequence
--   would miss it). A row deleted leaves no version: the count of rows changes instead;
-- - with the CPU or memory sort, the same of agent_resources;
-- - no deadline passed: the live status moves with now() at stale_at without a write, so the mark
--   keeps the earliest stale_at after the answer's now(), and from then on the pass runs again;
-- - the same filters, sort and window, and no search.
-- The check is one pass over agent_status's rows without the live view (~20 ms at 100,000 agents)
-- and costs writers nothing. A fleet that heartbeats writes every poll, so only a quiet one gains.
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
               -- the reason as the row says it (the live view's sentence), not only as recorded
               and (v_pattern is null or a.agent_name ilike v_pattern or a.host ilike v_pattern
                    or agent_private.live_reason(a, rl.host, rl.status, rl.silent_s) ilike v_pattern) as matches,
             -- ascending as the table means it: what needs attention first, the freshest heartbeat,
             -- agents not up then the latest start, the busiest; agents without figures last
             -- each branch double precision: CASE would otherwise take cpu_percent's real, whose 24
             -- bits cannot tell two epochs a minute apart
             case p_sort
               when 'status' then case s.status when 'error' then 0 when 'stale' then 1 when 'warning' then 2
                                                when 'running' then 3 else 4 end::double precision
               when 'health' then a.health::double precision
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
               case when p_descending then m.k_num end desc,
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
                                                  case when p_descending then p.k_num end desc,
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
    -- the index on stale_at: the first deadline to come
    'deadline', (select min(a.stale_at) from public.agent_status a where a.stale_at > now()),
    'ids', (select coalesce(jsonb_agg(r -> 'id'), '[]') from jsonb_array_elements(v_page -> 'rows') r)));
end
$$;

grant execute on function agent_private.live_reason(public.agent_status, text, text, integer) to authenticated, service_role;
revoke all on function agent_private.live_reason(public.agent_status, text, text, integer) from public;
