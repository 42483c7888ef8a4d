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

-- {"until": ..., "windows": {"24h": {"seconds": {"running": 80000, "error": 6400, ...},
--  "known_s": 86400, "up_percent": 92.6}, "7d": ..., "30d": ...},
--  "strip": [{"from": ..., "to": ..., "status": "running"}, ...]}   (the last 24 hours)
-- up_percent counts running and warning as up; null when nothing of the window is known.
create function public.agent_availability(
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
    raise exception using errcode = 'P0002', message = format('no agent named %L', p_agent_name),
      hint = 'List agents with: agent-status list';
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

revoke execute on function agent_private.status_segments(integer, timestamptz, timestamptz) from public, anon, authenticated;
revoke execute on function public.agent_availability(text, timestamptz, text) from public;
grant execute on function public.agent_availability(text, timestamptz, text) to anon, authenticated, service_role;
