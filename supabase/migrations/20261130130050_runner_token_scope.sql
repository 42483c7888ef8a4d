-- A runner token names the agents it may register: names or patterns (* any run, ? one character),
-- given when it is made (`agent-status token create runner --host h --agents 'scraper-*,Tweet Agent'`).
-- runner_register refuses any other name with an error naming the token, the agent and what the token
-- allows; three calls with a runner token once created 1,500 agent rows. A token made without a list
-- (every runner token made before this migration) may register any name, as before; `token list`
-- shows which.

alter table public.api_tokens add column agent_patterns text[]
  check (agent_patterns is null or (kind = 'runner' and cardinality(agent_patterns) between 1 and 100));

drop function public.create_api_token(text, text, text, text, text, text, interval);
-- p_agents: for a runner token, the names or patterns it may register (null: any).
create function public.create_api_token(
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
  if p_kind is null or p_kind not in ('agent', 'runner', 'operator') then
    perform agent_private.invalid(format('token kind must be agent, runner or operator, got %L', p_kind));
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

drop function public.list_api_tokens(text);
create function public.list_api_tokens(p_operator_token text default null)
  returns table (id uuid, kind text, label text, token_prefix text, agent_name text, host text,
                 operator_email text, created_at timestamptz, created_by text, revoked_at timestamptz,
                 last_used_at timestamptz, expires_at timestamptz, agents text[])
  language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
begin
  perform agent_private.require_operator(p_operator_token);
  return query
    select t.id, t.kind, t.label, t.token_prefix, a.agent_name, t.host, o.email, t.created_at,
           t.created_by, t.revoked_at, t.last_used_at, t.expires_at, t.agent_patterns
    from public.api_tokens t
    left join public.agent_status a on a.id = t.agent_id
    left join public.operators o on o.id = t.operator_id
    order by t.created_at;
end
$$;

-- As before (20261124000340_runners.sql), and only names the token allows; a clash answered through refuse.
create or replace function public.runner_register(
  p_token text,
  p_agents jsonb,
  p_version text default null,
  p_pid integer default null
) returns jsonb
  language plpgsql security definer set search_path = ''
as $$
declare
  t public.api_tokens := agent_private.runner_token(p_token);
  r public.runners;
  item jsonb;
  names text[] := '{}';
  v_name text;
  clash record;
begin
  if p_agents is null or jsonb_typeof(p_agents) <> 'array' then
    perform agent_private.invalid('agents must be a JSON array of {"name": ...} objects');
  end if;
  if jsonb_array_length(p_agents) > 500 then
    perform agent_private.invalid(format('a runner may manage at most 500 agents, got %s', jsonb_array_length(p_agents)));
  end if;
  perform agent_private.check_text('version', p_version, 100);

  for item in select value from jsonb_array_elements(p_agents) loop
    if jsonb_typeof(item) <> 'object' or coalesce(jsonb_typeof(item -> 'name'), 'missing') <> 'string' then
      perform agent_private.invalid(format('each agent must be an object with a "name" string, got %s', left(item::text, 100)));
    end if;
    v_name := agent_private.check_agent_name(item ->> 'name');
    if v_name = any (names) then
      perform agent_private.invalid(format('agent %L is listed twice', v_name));
    end if;
    names := names || v_name;
  end loop;
  -- only the agents the token names: a runner's token cannot plant agents under other names
  if t.agent_patterns is not null then
    select n into v_name from unnest(names) n
    where not exists (select 1 from unnest(t.agent_patterns) g where n like agent_private.glob_to_like(g))
    limit 1;
    if v_name is not null then
      raise exception using errcode = '42501',
        message = format('runner token %s may not register agent %L: it may register only %s',
                         t.label, v_name, array_to_string(t.agent_patterns, ', ')),
        hint = 'Remove the agent from this runner''s config, or give the runner a token that names it: agent-status token create runner --host <host> --agents <names or patterns>';
    end if;
  end if;

  insert into public.runners (host, status, version, pid, started_at, last_seen_at, stopped_at)
  values (t.host, 'online', p_version, p_pid, now(), now(), null)
  on conflict (host) do update set status = 'online', version = excluded.version, pid = excluded.pid,
    started_at = now(), last_seen_at = now(), stopped_at = null
  returning * into r;

  select a.agent_name, o.host into clash
  from public.agent_status a join public.runners o on o.id = a.runner_id
  where a.agent_name = any (names) and o.id <> r.id and o.status = 'online'
    and o.last_seen_at > now() - make_interval(secs => (select runner_offline_after_s from public.agent_status_settings))
  limit 1;
  if clash.agent_name is not null then
    perform agent_private.refuse('55000',
      format('agent %L is managed by the runner on host %L, which is online', clash.agent_name, clash.host),
      'Remove it from one of the two runners'' config files.');
  end if;

  insert into public.agent_status (agent_name) select unnest(names) on conflict (agent_name) do nothing;

  update public.agent_status a set
    runner_id = r.id, host = r.host, updated_at = now(),
    heartbeat_timeout_s = (spec -> 'heartbeat_timeout_s')::integer,
    activity_timeout_s = (spec -> 'activity_timeout_s')::integer,
    metadata = coalesce(spec -> 'metadata', '{}')
  from jsonb_array_elements(p_agents) as specs(spec)
  where a.agent_name = spec ->> 'name';

  update public.agent_status a set runner_id = null, updated_at = now()
  where a.runner_id = r.id and not (a.agent_name = any (names));

  insert into public.agent_events (runner_id, kind, source, actor, message, details)
  values (r.id, 'runner_online', 'runner', format('runner token %s', t.label),
          format('runner on %s registered with %s agents', r.host, cardinality(names)),
          jsonb_build_object('version', p_version, 'pid', p_pid, 'agents', to_jsonb(names)));

  return jsonb_build_object('runner_id', r.id, 'host', r.host, 'agents', to_jsonb(names));
exception
  when invalid_text_representation or numeric_value_out_of_range or check_violation then
    perform agent_private.invalid(format('bad agent settings: %s', sqlerrm),
      'heartbeat_timeout_s must be 5..86400 seconds, activity_timeout_s 10..604800, metadata a small object.');
end
$$;

revoke execute on function public.create_api_token(text, text, text, text, text, text, interval, text[]), public.list_api_tokens(text)
  from public;
grant execute on function public.create_api_token(text, text, text, text, text, text, interval, text[]), public.list_api_tokens(text)
  to anon, authenticated, service_role;
grant select (agent_patterns) on public.api_tokens to service_role;
