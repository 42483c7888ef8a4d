-- Read-only keys for tools that only look: a Prometheus scrape (metrics tokens, asm_...) and README
-- badges (badge keys, asb_...). Each kind is taken by its one reader here and by nothing else: every
-- other function checks for its own kind, so a scrape token in a Prometheus config or a badge key in
-- a public README can neither act for an agent or a runner nor read history or logs. Revoked like
-- any token (revoke_api_token), which ends every badge URL holding the key.
--
-- supabase/schemas/ is the current definition of every SQL object, applied in file-name order
-- (supabase/README.md). Change it here, then generate the migration: npm run db:diff -- <name>.

-- The token if it is a live key of p_kind, else the refusal both readers give.
create function agent_private.read_key(p_token text, p_kind text) returns public.api_tokens
  language plpgsql set search_path = ''
as $$
declare
  t public.api_tokens := agent_private.find_token(p_token);
begin
  if t.id is null or t.kind <> p_kind then
    raise exception using errcode = '28000',
      message = format('%s key is missing, unknown, revoked or of another kind', p_kind),
      hint = format('Create one with: agent-status token create %s', p_kind);
  end if;
  return t;
end
$$;

-- Percent of [p_since, p_until) the agent was up (running or warning), of the time its status is
-- known; null when none is. The same figure as agent_availability's windows.
create function agent_private.up_percent(p_agent_id integer, p_since timestamptz, p_until timestamptz) returns numeric
  language sql stable set search_path = ''
as $$
  select case when sum(s.seconds) > 0
    then round((100 * coalesce(sum(s.seconds) filter (where s.status in ('running', 'warning')), 0) / sum(s.seconds))::numeric, 2) end
  from (select g.status, sum(extract(epoch from g.seg_to - g.seg_from))::double precision as seconds
        from agent_private.status_segments(p_agent_id, p_since, p_until) g
        group by g.status) s
$$;

-- What the metrics edge function writes in Prometheus' text format (shared/metrics.ts): per agent its
-- live status (the deadline applied, as the dashboard shows it), health, heartbeat age, restarts and
-- 24 h availability; per runner its liveness; the alert outbox by channel and outcome. Archived agents
-- are left out, as from every list.
create function public.agent_metrics(p_token text) returns jsonb
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

-- What one badge shows (shared/badge.ts): an agent's live status and 24 h availability; or a host's
-- status (its runner's when that is not online: silent, offline or stopped; else its worst agent's: error, stale, warning,
-- stopped, running), how many of its agents are up, and their mean availability.
create function public.agent_badge(p_token text, p_agent_name text default null, p_host text default null) returns jsonb
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
