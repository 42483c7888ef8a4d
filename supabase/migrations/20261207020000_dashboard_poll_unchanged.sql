-- Issue 22: a dashboard poll of an unchanged fleet skips the whole-fleet pass. dashboard_agent_page
-- takes p_since, the `mark` its earlier answer carries; when no agent row was written or deleted since
-- (in commit order: the xmin of that answer's snapshot), no deadline passed and the query is the same,
-- it answers `unchanged` with the rows in view read again by id. agent_private.fleet_unchanged decides.
-- Written by hand (the signature changes); checked with
-- `npm run db:diff -- dashboard_poll_unchanged --version 20261207020000`.

drop function public.dashboard_agent_page(text, text, boolean, text, text, boolean, integer, integer);

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

  if agent_private.fleet_unchanged(p_since, v_query, v_resources) then
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
               and (v_pattern is null or a.agent_name ilike v_pattern or a.host ilike v_pattern
                    or a.status_reason ilike v_pattern) as matches,
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

grant execute on function public.dashboard_agent_page(text, text, boolean, text, text, boolean, integer, integer, jsonb) to authenticated, service_role;
revoke all on function public.dashboard_agent_page(text, text, boolean, text, text, boolean, integer, integer, jsonb) from public;
grant execute on function agent_private.fleet_unchanged(jsonb, jsonb, boolean) to authenticated, service_role;
revoke all on function agent_private.fleet_unchanged(jsonb, jsonb, boolean) from public;
