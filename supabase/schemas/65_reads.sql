-- What operators read: the live views (deadlines applied at read time), agent lists, events, commands, availability, history, sweep status.
--
-- supabase/schemas/ is the current definition of every SQL object, applied in file-name order
-- (supabase/README.md). Change it here, then generate the migration: npm run db:diff -- <name>.

-- Commands by id, for waiting on the ones just enqueued.
create function public.operator_commands(p_ids bigint[], p_operator_token text default null)
  returns table (id bigint, agent_name text, action text, status text, requested_by text,
                 created_at timestamptz, expires_at timestamptz, claimed_at timestamptz, claimed_by_host text,
                 finished_at timestamptz, result text, observed_at timestamptz)
  language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
begin
  perform agent_private.require_operator(p_operator_token);
  if p_ids is null or cardinality(p_ids) > 1000 then
    perform agent_private.invalid('ids must be an array of at most 1000 command ids');
  end if;
  return query
    select c.id, a.agent_name, c.action, c.status, c.requested_by, c.created_at, c.expires_at, c.claimed_at,
           r.host, c.finished_at, c.result, now()
    from public.agent_commands c
    join public.agent_status a on a.id = c.agent_id
    left join public.runners r on r.id = c.claimed_by
    where c.id = any (p_ids)
    order by c.id;
end
$$;

-- Whether the sweep runs in this database: pg_cron's job and its latest runs when pg_cron is here;
-- otherwise says so (the local stack then runs the sweep on a timer, and a project without pg_cron
-- needs some scheduler calling public.agent_status_sweep() every minute).
create function public.operator_sweep_status(p_operator_token text default null)
  returns jsonb
  language plpgsql security definer set search_path = ''
as $$
declare
  job jsonb;
  last_run jsonb;
  last_success timestamptz;
begin
  perform agent_private.require_operator(p_operator_token);
  if to_regclass('cron.job') is null then
    return jsonb_build_object('pg_cron', false, 'now', now(),
      'message', 'pg_cron is not installed in this database: something else must call public.agent_status_sweep() every minute (the local stack does it on a timer)');
  end if;
  -- Dynamic SQL: the cron schema does not exist where pg_cron is missing, and this function must
  -- still be created there.
  execute $q$select to_jsonb(j) from (select jobid, jobname, schedule, command, active
                                        from cron.job where command ilike '%agent_status_sweep%'
                                        order by jobid limit 1) j$q$ into job;
  if job is not null and to_regclass('cron.job_run_details') is not null then
    execute $q$select to_jsonb(d) from (select runid, status, return_message, start_time, end_time
                                          from cron.job_run_details where jobid = $1
                                          order by start_time desc nulls last limit 1) d$q$
      into last_run using (job ->> 'jobid')::bigint;
    execute $q$select max(end_time) from cron.job_run_details where jobid = $1 and status = 'succeeded'$q$
      into last_success using (job ->> 'jobid')::bigint;
  end if;
  return jsonb_build_object('pg_cron', true, 'now', now(), 'job', job, 'last_run', last_run,
                            'last_success_at', last_success);
end
$$;

-- Runners with their liveness deadline applied at read time: `status` is silent the moment two of
-- the runner's heartbeat intervals pass without a word, before the sweep persists it as offline;
-- stopped once it said goodbye (runner_offline). `silent_s`: how long without a word, whenever it is
-- not online. The values: shared/status.ts RUNNER_STATUSES.
create view public.runner_status_live with (security_invoker = true) as
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

-- What an agent's note says of its runner when that is not online: "its runner on H is silent (no
-- word for 95 s)", or "is stopped (said goodbye 95 s ago)" after a planned stop.
create function agent_private.runner_away(p_host text, p_status text, p_silent_s integer) returns text
  language sql immutable set search_path = ''
as $$
  select format('its runner on %s is %s (%s %s s%s)', p_host, p_status,
                case when p_status = 'stopped' then 'said goodbye' else 'no word for' end, p_silent_s,
                case when p_status = 'stopped' then ' ago' else '' end)
$$;

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

-- The words on a dashboard row's badges beside its status and reason (web/src/row.ts, which takes
-- them from ROW_BADGES in shared/status.ts): "crash loop", "no runner", and "runner silent"
-- (offline, stopped) while the agent's runner is not online. The dashboard's search matches them as
-- it matches the reason: the agent whose badge reads "crash loop" gives "exited with code 3 after
-- 8.0 s; restarting in 60 s" for its reason. One badge a line, so a search never matches across two.
-- unstable_since first, crash_looping's own first condition: the rows of agents not restarting stop
-- there, without its call (EXPLAIN ANALYZE over 2,500 agents none restarting: 8 to 15 ms with the
-- call on every row, 0.5 ms so).
-- Inlined (SQL, no search_path of its own), as live_reason.
create function agent_private.row_badges(a public.agent_status, p_runner_status text) returns text
  language sql stable
as $$
  select concat_ws(e'\n', case when a.unstable_since is not null and agent_private.crash_looping(a) then 'crash loop' end,
                   case when a.runner_id is null then 'no runner'
                        when p_runner_status <> 'online' then 'runner ' || p_runner_status end)
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

-- The live views are read-only. Without a trigger a write was refused before any privilege check, by
-- the rewriter ("cannot insert into view", 55000), which PostgREST answers 500; with this one the
-- privilege check runs first (401 or 403 for every API role: none may write them), and a role that
-- may write anything is told the same.
create function agent_private.refuse_view_write() returns trigger
  language plpgsql set search_path = ''
as $$
begin
  raise exception using errcode = '42501', message = format('%s is read-only', tg_table_name),
    hint = 'Change agents with the API: heartbeats and reports, commands, force_agent_status.';
end
$$;

create trigger agent_status_live_read_only
  instead of insert or update or delete on public.agent_status_live
  for each row execute function agent_private.refuse_view_write();

create trigger runner_status_live_read_only
  instead of insert or update or delete on public.runner_status_live
  for each row execute function agent_private.refuse_view_write();

-- The operator's list leaves archived agents out too (it reads as the owner, past the policy).
-- In name order, p_limit agents after the name p_after (every agent when p_limit is null): the CLI
-- reads a large fleet in keyset pages within PostgREST's 1,000 rows, and each page is an index range
-- of agent_status (a filter PostgREST applied after the call made every page compute the whole list).
-- With p_name or p_id, only the agent of that name and id: the CLI's lookup of one agent, an index
-- read (it was the whole list, filtered by PostgREST afterwards).
create or replace function public.operator_list_agents(
  p_operator_token text default null,
  p_after text default null,
  p_limit integer default null,
  p_name text default null,
  p_id integer default null
) returns setof public.agent_status_live
  language plpgsql security definer set search_path = ''
as $$
begin
  perform agent_private.require_operator(p_operator_token);
  if p_limit < 1 or p_limit > 10000 then
    perform agent_private.invalid(format('limit must be between 1 and 10000, got %s', p_limit));
  end if;
  if p_name is not null or p_id is not null then
    -- an index condition in a generic plan too (the name's or the id's index), unlike "p_name is
    -- null or agent_name = p_name"
    return query select l.* from public.agent_status_live l
      where l.id in (select a.id from public.agent_status a
                     where (a.agent_name = p_name or a.id = p_id) and a.archived_at is null
                       and (p_name is null or a.agent_name = p_name) and (p_id is null or a.id = p_id));
    return;
  end if;
  return query select l.* from public.agent_status_live l
    where l.id in (select a.id from public.agent_status a
                   where a.archived_at is null and (p_after is null or a.agent_name > p_after)
                   order by a.agent_name
                   limit p_limit)
    order by l.agent_name;
end
$$;

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
create function public.dashboard_agent_page(
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

-- Whether the answer that made p_mark still holds (public.dashboard_agent_page says why each part is
-- needed): same query, no deadline passed, and no row of agent_status (and of agent_resources when
-- p_resources) written or deleted as this snapshot sees them. False without a mark, or with one of
-- another query or too old to compare (over 10^9 xids ago); a mark that is not one is refused.
-- Security invoker: the rows counted are the reader's, as in the answer.
create function agent_private.fleet_unchanged(p_mark jsonb, p_query jsonb, p_resources boolean) returns boolean
  language plpgsql stable set search_path = ''
as $$
declare
  v_since xid8;
  v_span bigint;
  v_newest integer;
  v_rows bigint;
  v_written bigint;
begin
  if p_mark is null or p_mark -> 'query' is distinct from p_query then
    return false;
  end if;
  if jsonb_typeof(p_mark -> 'xid') is distinct from 'string' or jsonb_typeof(p_mark -> 'agents') is distinct from 'number'
     or jsonb_typeof(p_mark -> 'ids') is distinct from 'array' then
    perform agent_private.invalid('since must be the mark of an earlier answer of dashboard_agent_page, as it was sent');
  end if;
  if (p_mark ->> 'deadline')::timestamptz <= now() then
    return false;
  end if;
  v_since := (p_mark ->> 'xid')::xid8;
  -- the xids that may have committed since: [v_since, this snapshot's xmax)
  v_span := pg_snapshot_xmax(pg_current_snapshot())::text::bigint - v_since::text::bigint;
  if v_span < 0 or v_span > 1000000000 then
    return false;
  end if;
  -- A row's xmin is 32 bits, and age() is this transaction's xid horizon minus it: the range above
  -- is the ages (v_newest - v_span, v_newest]. A row frozen over 2^31 xids ago can wrap into it: at
  -- worst one needless pass. Not exact (a transaction in the range may have committed before the
  -- answer, while an older one ran): pg_visible_in_snapshot would tell, but not of the xid of a
  -- subtransaction (a plpgsql exception block), which a row's xmin can be; a needless pass is safe.
  v_newest := age(xid(v_since));
  select count(*), count(*) filter (where age(a.xmin) > v_newest - v_span and age(a.xmin) <= v_newest)
    into v_rows, v_written
    from public.agent_status a;
  if v_written > 0 or v_rows <> (p_mark ->> 'agents')::bigint then
    return false;
  end if;
  if p_resources then
    select count(*), count(*) filter (where age(r.xmin) > v_newest - v_span and age(r.xmin) <= v_newest)
      into v_rows, v_written
      from public.agent_resources r;
    if v_written > 0 or v_rows is distinct from (p_mark ->> 'resources')::bigint then
      return false;
    end if;
  end if;
  return true;
end
$$;

create or replace function public.operator_agent_events(
  p_agent_name text default null,
  p_after_id bigint default 0,
  p_limit integer default 100,
  p_since timestamptz default null,
  p_operator_token text default null
) returns table (id bigint, agent_name text, at timestamptz, kind text, source text, actor text,
                 from_status text, to_status text, health integer, message text, details jsonb)
  language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
begin
  perform agent_private.require_operator(p_operator_token);
  if p_limit is null or p_limit < 1 or p_limit > 1000 then
    perform agent_private.invalid(format('limit must be between 1 and 1000, got %s', p_limit));
  end if;
  if p_agent_name is not null and not exists (select 1 from public.agent_status where agent_name = p_agent_name) then
    perform agent_private.refuse('P0002', format('no agent named %L', p_agent_name),
      'List agents with: agent-status list');
  end if;
  return query
    select e.id, a.agent_name, e.at, e.kind, e.source::text, e.actor, e.from_status::text, e.to_status::text,
           e.health, e.message, e.details
    from public.agent_events e
    left join public.agent_status a on a.id = e.agent_id
    where e.id > coalesce(p_after_id, 0) and (p_since is null or e.at >= p_since)
      and (p_agent_name is null or a.agent_name = p_agent_name)
    order by e.id
    limit p_limit;
end
$$;

-- Availability: how long an agent spent in each status over the last 24 hours, 7 days and 30 days,
-- read from its history (every status change is an agent_events row with from_status and to_status),
-- and its last 24 hours as a strip of segments for the dashboard. Time before the agent existed, or
-- before the oldest history kept (event_retention, 30 days by default), is not counted: percentages
-- are of the time that is known.
create function agent_private.status_segments(p_agent_id integer, p_since timestamptz, p_until timestamptz)
  returns table (seg_from timestamptz, seg_to timestamptz, status text)
  language sql stable set search_path = ''
as $$
  with agent as (
    select a.id, a.created_at, a.status, a.stale_at from public.agent_status a where a.id = p_agent_id
  ), changes as (
    -- the status in force when the window opens: the last change before it ...
    (select p_since as at, 0::bigint as id, e.to_status::text as status
     from public.agent_events e
     where e.agent_id = p_agent_id and e.to_status is not null and e.at < p_since
     order by e.at desc, e.id desc limit 1)
    union all
    -- ... or, for an agent younger than the window, what it was before its first change
    (select greatest(ag.created_at, p_since), 0::bigint, coalesce(
       (select e.from_status::text from public.agent_events e
        where e.agent_id = p_agent_id and e.to_status is not null order by e.at, e.id limit 1),
       ag.status::text)
     from agent ag
     where not exists (select 1 from public.agent_events e
                       where e.agent_id = p_agent_id and e.to_status is not null and e.at < p_since)
       and ag.created_at < p_until)
    union all
    select e.at, e.id, e.to_status::text
    from public.agent_events e
    where e.agent_id = p_agent_id and e.to_status is not null and e.at >= p_since and e.at < p_until
    union all
    -- a live agent past its heartbeat deadline is stale from then on, as the live view says, even
    -- before the sweep writes the change
    select ag.stale_at, 9223372036854775807, 'stale' from agent ag
    where ag.status in ('running', 'warning') and ag.stale_at < p_until and ag.stale_at >= p_since
  ), ordered as (
    select c.at, c.status,
           lead(c.at, 1, p_until) over (order by c.at, c.id) as next_at,
           c.status is distinct from lag(c.status) over (order by c.at, c.id) as changed
    from changes c
  ), runs as (
    select o.at, o.next_at, o.status, count(*) filter (where o.changed) over (order by o.at rows unbounded preceding) as run
    from ordered o
  )
  select min(r.at), max(r.next_at), min(r.status)
  from runs r
  group by r.run
  having max(r.next_at) > min(r.at)
  order by min(r.at)
$$;

-- Not found and conflict from the dashboard's functions (agent_availability, agent_history and the
-- logs on demand) reach PostgREST callers as 404 and 409, like every other function, raising through
-- agent_private.refuse instead of a bare raise (which PostgREST answers with 500). Direct SQL callers
-- still get P0002 and 55000.
create or replace function public.agent_availability(
  p_agent_name text,
  p_until timestamptz default null,
  p_operator_token text default null
) returns jsonb
  language plpgsql stable security definer set search_path = ''
as $$
declare
  v_agent_id integer;
  v_until timestamptz := coalesce(p_until, now());
  v_windows jsonb := '{}';
  w record;
begin
  perform agent_private.require_operator(p_operator_token);
  select id into v_agent_id from public.agent_status where agent_name = agent_private.check_agent_name(p_agent_name);
  if v_agent_id is null then
    perform agent_private.refuse('P0002', format('no agent named %L', p_agent_name),
      'List agents with: agent-status list');
  end if;
  for w in select * from (values ('24h', interval '24 hours'), ('7d', interval '7 days'), ('30d', interval '30 days')) v(label, span) loop
    v_windows := v_windows || jsonb_build_object(w.label, (
      select jsonb_build_object(
        'seconds', coalesce(jsonb_object_agg(s.status, s.seconds), '{}'),
        'known_s', coalesce(sum(s.seconds), 0),
        'up_percent', case when sum(s.seconds) > 0
          then round((100 * coalesce(sum(s.seconds) filter (where s.status in ('running', 'warning')), 0) / sum(s.seconds))::numeric, 2)
          end)
      from (select g.status, sum(extract(epoch from g.seg_to - g.seg_from))::double precision as seconds
            from agent_private.status_segments(v_agent_id, v_until - w.span, v_until) g
            group by g.status) s));
  end loop;
  return jsonb_build_object(
    'until', v_until,
    'windows', v_windows,
    'strip', coalesce((select jsonb_agg(jsonb_build_object('from', g.seg_from, 'to', g.seg_to, 'status', g.status) order by g.seg_from)
                       from agent_private.status_segments(v_agent_id, v_until - interval '24 hours', v_until) g), '[]'));
end
$$;

create or replace function public.agent_history(
  p_agent_name text,
  p_before_id bigint default null,
  p_kinds text default null,
  p_limit integer default 50,
  p_operator_token text default null
) returns table (id bigint, oldest_id bigint, count integer, cycle text[], first_at timestamptz, at timestamptz,
                 kind text, source text, actor text, from_status text, to_status text, health integer,
                 message text, details jsonb)
  language plpgsql stable security definer set search_path = ''
as $$
#variable_conflict use_column
declare
  v_agent_id integer;
  r record;
  ev public.agent_events;
  sig text;
  -- the run being read (newest event first): its newest and oldest events, size, cycle length
  -- (0 while it holds one event), the signatures of its first two events and its first events
  g_newest public.agent_events;
  g_oldest public.agent_events;
  g_count integer := 0;
  g_period integer := 0;
  g_sig1 text;
  g_sig2 text;
  g_kind2 text;
  g_early public.agent_events[] := '{}';
  -- runs read to the end, waiting to be returned
  q_newest public.agent_events[] := '{}';
  q_oldest public.agent_events[] := '{}';
  q_count integer[] := '{}';
  q_cycle text[] := '{}';
  emitted integer := 0;
  -- events still to read: the current one, and those of a run that turned out to be none
  todo public.agent_events[];
  have boolean;
  i integer;
begin
  perform agent_private.require_operator(p_operator_token);
  if p_limit is null or p_limit < 1 or p_limit > 500 then
    perform agent_private.invalid(format('limit must be between 1 and 500, got %s', p_limit));
  end if;
  if p_kinds is not null and p_kinds not in ('status', 'problems', 'commands', 'operator') then
    perform agent_private.invalid(format('kinds must be status, problems, commands or operator, got %L', p_kinds));
  end if;
  select a.id into v_agent_id from public.agent_status a where a.agent_name = agent_private.check_agent_name(p_agent_name);
  if v_agent_id is null then
    perform agent_private.refuse('P0002', format('no agent named %L', p_agent_name),
      'List agents with: agent-status list');
  end if;

  -- At most 5,000 events per page are read; a longer run is continued by the next page. The last
  -- row (is_end) closes the run in progress.
  for r in
    select t.ev, t.is_end from (
      (select x as ev, false as is_end, x.id
       from public.agent_events x
       where x.agent_id = v_agent_id and (p_before_id is null or x.id < p_before_id)
         and case p_kinds
           when 'status' then x.to_status is distinct from x.from_status and x.to_status is not null
           when 'problems' then x.kind in ('warning', 'error', 'crashed', 'deadline', 'inactive')
           when 'commands' then x.kind like 'command\_%'
           when 'operator' then x.source = 'operator'
           else true end
       order by x.id desc
       limit 5000)
      union all
      select null, true, null
    ) t
    order by t.is_end, t.id desc
  loop
    todo := case when r.is_end then '{}' else array[r.ev] end;
    loop
      have := cardinality(todo) > 0;
      exit when not have and not r.is_end;
      if have then
        ev := todo[1];
        todo := todo[2:];
        sig := concat_ws('|', ev.kind, ev.source, ev.from_status, ev.to_status, regexp_replace(coalesce(ev.message, ''), '[0-9]+', '#', 'g'));
      end if;
      if have and g_count > 0 and (
           g_period = 0
           or (g_period = 1 and sig = g_sig1)
           or (g_period = 2 and sig = case when g_count % 2 = 0 then g_sig1 else g_sig2 end)) then
        -- the event continues the run
        if g_period = 0 then
          g_period := case when sig = g_sig1 then 1 else 2 end;
          g_sig2 := sig;
          g_kind2 := ev.kind;
        end if;
        g_oldest := ev;
        g_count := g_count + 1;
        if g_count <= 3 then g_early := g_early || ev; end if;
        continue;
      end if;
      -- the run ends here. A two-event cycle shorter than two rounds is no run: its first event goes
      -- alone and the others are read again (they may start a run of their own).
      if g_count > 0 and g_period = 2 and g_count < 4 then
        q_newest := q_newest || g_early[1];
        q_oldest := q_oldest || g_early[1];
        q_count := q_count || 1;
        q_cycle := q_cycle || (g_early[1]).kind;
        todo := g_early[2:] || case when have then array[ev] else '{}' end || todo;
        have := false;
      elsif g_count > 0 then
        q_newest := q_newest || g_newest;
        q_oldest := q_oldest || g_oldest;
        q_count := q_count || g_count;
        q_cycle := q_cycle || case when g_period = 2
          then g_oldest.kind || ',' || case when g_oldest.kind = g_newest.kind then g_kind2 else g_newest.kind end
          else g_newest.kind end;
      end if;
      g_count := 0;
      for i in 1 .. cardinality(q_count) loop
        if emitted >= p_limit then return; end if;
        id := (q_newest[i]).id;
        oldest_id := (q_oldest[i]).id;
        count := q_count[i];
        cycle := string_to_array(q_cycle[i], ',');
        first_at := (q_oldest[i]).at;
        at := (q_newest[i]).at;
        kind := (q_newest[i]).kind;
        source := (q_newest[i]).source;
        actor := (q_newest[i]).actor;
        from_status := (q_newest[i]).from_status;
        to_status := (q_newest[i]).to_status;
        health := (q_newest[i]).health;
        message := (q_newest[i]).message;
        details := (q_newest[i]).details;
        return next;
        emitted := emitted + 1;
      end loop;
      q_newest := '{}';
      q_oldest := '{}';
      q_count := '{}';
      q_cycle := '{}';
      if have then
        g_newest := ev;
        g_oldest := ev;
        g_count := 1;
        g_period := 0;
        g_sig1 := sig;
        g_early := array[ev];
      elsif cardinality(todo) = 0 then
        return;
      end if;
    end loop;
  end loop;
end
$$;
