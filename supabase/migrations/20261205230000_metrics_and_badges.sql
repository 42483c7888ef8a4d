-- Read-only keys for tools that only look (issue 23): metrics tokens for a Prometheus scrape and badge
-- keys for README badges, new token kinds with one reader each (supabase/schemas/68_read_keys.sql).
-- Written by hand: pg-delta refuses the dropped check constraint that widening the kinds takes.

alter table public.api_tokens drop constraint api_tokens_kind_check;
alter table public.api_tokens add constraint api_tokens_kind_check
  check (kind in ('agent', 'runner', 'operator', 'metrics', 'badge'));

-- p_agents: for a runner token, the names or patterns it may register (null: any).
create or replace function public.create_api_token(
  p_kind text,
  p_label text default null,
  p_agent_name text default null,
  p_host text default null,
  p_operator_email text default null,
  p_operator_token text default null,
  p_expires_in interval default null,
  p_agents text[] default null
) returns table (id uuid, kind text, label text, token text, token_prefix text, agent_name text, host text,
                 operator_email text, expires_at timestamptz, agents text[])
  language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
declare
  who text := agent_private.require_operator(p_operator_token);
  v_agent_id integer;
  v_operator_id uuid;
  v_email text := p_operator_email;
  v_token text;
  v_label text;
  v_row public.api_tokens;
begin
  if p_kind is null or p_kind not in ('agent', 'runner', 'operator', 'metrics', 'badge') then
    perform agent_private.invalid(format('token kind must be agent, runner, operator, metrics or badge, got %L', p_kind));
  end if;
  if p_expires_in is not null and (p_expires_in <= interval '0' or p_expires_in > interval '10 years') then
    perform agent_private.invalid(format('expires_in must be between 1 second and 10 years, got %s', p_expires_in));
  end if;
  if p_agents is not null and p_kind <> 'runner' then
    perform agent_private.invalid('agents (the names a runner may register) is for runner tokens only');
  end if;
  if p_kind = 'agent' then
    perform agent_private.check_agent_name(p_agent_name);
    insert into public.agent_status (agent_name) values (p_agent_name) on conflict (agent_name) do nothing;
    select a.id into v_agent_id from public.agent_status a where a.agent_name = p_agent_name;
    v_label := coalesce(p_label, p_agent_name);
  elsif p_kind = 'runner' then
    if p_host is null or p_host = '' or char_length(p_host) > 255 or p_host <> btrim(p_host) or p_host ~ '[[:cntrl:]]' then
      perform agent_private.invalid('host is required for a runner token: 1 to 255 characters, no surrounding spaces');
    end if;
    if p_agents is not null and (cardinality(p_agents) not between 1 and 100 or exists (
         select 1 from unnest(p_agents) g where g is null or char_length(g) not between 1 and 100 or g ~ '[[:cntrl:]]')) then
      perform agent_private.invalid('agents must be 1 to 100 names or patterns (* any run, ? one character), each 1 to 100 characters');
    end if;
    v_label := coalesce(p_label, p_host);
  elsif p_kind in ('metrics', 'badge') then
    -- read-only keys (68_read_keys.sql): no scope, they read every agent's figures and nothing else
    v_label := coalesce(p_label, p_kind);
  else
    -- who is 'operator <email>' for an operator, 'service' for the administrator
    if who <> 'service' then
      v_email := coalesce(v_email, substr(who, length('operator ') + 1));
      if lower(v_email) <> lower(substr(who, length('operator ') + 1)) then
        raise exception using errcode = '42501',
          message = 'an operator token can only be made for yourself',
          hint = 'Leave out the email (or give your own); the other operator makes their own token.';
      end if;
    end if;
    select o.id into v_operator_id from public.operators o where lower(o.email) = lower(v_email);
    if v_operator_id is null then
      perform agent_private.refuse('P0002', format('no operator with email %L', v_email),
      'Add the operator first: agent-status operator add <email>');
    end if;
    v_label := coalesce(p_label, lower(v_email));
  end if;
  perform agent_private.check_text('label', v_label, 200);

  -- 32 random bytes, URL-safe; the prefix says what kind of token it is when one turns up in a log.
  v_token := 'as' || left(p_kind, 1) || '_' ||
    translate(rtrim(encode(extensions.gen_random_bytes(32), 'base64'), '='), '+/', '-_');
  insert into public.api_tokens (kind, label, token_hash, token_prefix, agent_id, host, operator_id, created_by, expires_at,
                                 agent_patterns)
  values (p_kind, v_label, agent_private.hash_token(v_token), left(v_token, 10), v_agent_id,
          case when p_kind = 'runner' then p_host end, v_operator_id, who, now() + p_expires_in, p_agents)
  returning * into v_row;

  return query select v_row.id, v_row.kind, v_row.label, v_token, v_row.token_prefix,
    p_agent_name, v_row.host, case when p_kind = 'operator' then lower(v_email) end, v_row.expires_at, v_row.agent_patterns;
end
$$;

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
               'name', l.agent_name, 'host', l.host, 'status', l.status, 'health', l.health,
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
-- status (its runner's when that is silent or offline, else its worst agent's: error, stale, warning,
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
    'status', case when v_runner_status in ('silent', 'offline') then v_runner_status when v_total = 0 then 'empty' else v_status end,
    'agents', jsonb_build_object('up', v_up, 'total', v_total),
    'up_percent_24h', v_percent);
end
$$;

-- the read-only keys' readers (68_read_keys.sql) check their key themselves, as the token functions do
grant execute on function public.agent_metrics(text) to anon, authenticated, service_role;
revoke all on function public.agent_metrics(text) from public;
grant execute on function public.agent_badge(text, text, text) to anon, authenticated, service_role;
revoke all on function public.agent_badge(text, text, text) from public;
revoke all on function agent_private.read_key(text, text) from public;
revoke all on function agent_private.up_percent(integer, timestamp with time zone, timestamp with time zone) from public;
