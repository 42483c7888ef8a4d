-- The dashboard's list done by the database (public.dashboard_agent_page: the rows in view, filtered,
-- sorted and searched, with the status counts), and operator_list_agents in keyset pages (p_after,
-- p_limit) for the CLI. Written by hand: pg-delta does not drop the old signature of
-- operator_list_agents(text); checked with npm run db:diff -- dashboard_agent_page_and_list_keyset.

drop function public.operator_list_agents(text);

create or replace function public.operator_list_agents(
  p_operator_token text default null,
  p_after text default null,
  p_limit integer default null
) returns setof public.agent_status_live
  language plpgsql security definer set search_path = ''
as $$
begin
  perform agent_private.require_operator(p_operator_token);
  if p_limit < 1 or p_limit > 10000 then
    perform agent_private.invalid(format('limit must be between 1 and 10000, got %s', p_limit));
  end if;
  return query select l.* from public.agent_status_live l
    where l.id in (select a.id from public.agent_status a
                   where a.archived_at is null and (p_after is null or a.agent_name > p_after)
                   order by a.agent_name
                   limit p_limit)
    order by l.agent_name;
end
$$;

create function public.dashboard_agent_page(
  p_status text default null,
  p_host text default null,
  p_without_host boolean default false,
  p_search text default null,
  p_sort text default 'status',
  p_descending boolean default false,
  p_offset integer default 0,
  p_limit integer default 100
) returns jsonb
  -- jit off: before the planner has statistics of the small tables the live view joins, it costs this
  -- statement past jit_above_cost, and compiling it took 3 of the 3.4 s a call took at 2,500 agents
  language plpgsql stable security invoker set search_path = '' set jit = off
as $$
declare
  v_pattern text;
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

  return (
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
        from (select case when a.stale_at <= now() then agent_private.next_status(a.status, a.status_source, 'deadline')
                          else a.status end::text as status) l
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
end
$$;

-- it only raises; public.dashboard_agent_page (security invoker) refuses bad arguments with it
grant execute on function agent_private.invalid(text, text) to authenticated, service_role;
grant execute on function public.operator_list_agents(text, text, integer) to anon, authenticated, service_role;
revoke all on function public.operator_list_agents(text, text, integer) from public;
grant execute on function public.dashboard_agent_page(text, text, boolean, text, text, boolean, integer, integer) to authenticated, service_role;
revoke all on function public.dashboard_agent_page(text, text, boolean, text, text, boolean, integer, integer) from public;
