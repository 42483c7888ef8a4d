-- A runner token without --agents speaks for its host's agents and adds new agent names only when
-- made with --new-agents (api_tokens.may_add_agents); one registration adds at most 100 new names.
-- Written by hand: create_api_token gains a parameter and list_api_tokens a column, which pg-delta
-- plans as a DROP that db:diff refuses. Runner tokens made before this keep adding names, so no
-- deployed runner breaks on its next config change; `token list` shows which tokens may.

alter table public.api_tokens add column may_add_agents boolean not null default false
  check (not may_add_agents or (kind = 'runner' and agent_patterns is null));

update public.api_tokens set may_add_agents = true where kind = 'runner' and agent_patterns is null;

drop function public.create_api_token(text, text, text, text, text, text, interval, text[]);

create function public.create_api_token(
  p_kind text,
  p_label text default null,
  p_agent_name text default null,
  p_host text default null,
  p_operator_email text default null,
  p_operator_token text default null,
  p_expires_in interval default null,
  p_agents text[] default null,
  p_new_agents boolean default false
) returns table (id uuid, kind text, label text, token text, token_prefix text, agent_name text, host text,
                 operator_email text, expires_at timestamptz, agents text[], new_agents boolean)
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
  if coalesce(p_new_agents, false) and (p_kind <> 'runner' or p_agents is not null) then
    perform agent_private.invalid('new_agents (may add new agent names) is for runner tokens without a list of agents: a token naming agents may add those names already');
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
                                 agent_patterns, may_add_agents)
  values (p_kind, v_label, agent_private.hash_token(v_token), left(v_token, 10), v_agent_id,
          case when p_kind = 'runner' then p_host end, v_operator_id, who, now() + p_expires_in, p_agents,
          coalesce(p_new_agents, false))
  returning * into v_row;

  return query select v_row.id, v_row.kind, v_row.label, v_token, v_row.token_prefix,
    p_agent_name, v_row.host, case when p_kind = 'operator' then lower(v_email) end, v_row.expires_at, v_row.agent_patterns,
    v_row.may_add_agents;
end
$$;

drop function public.list_api_tokens(text);

create function public.list_api_tokens(p_operator_token text default null)
  returns table (id uuid, kind text, label text, token_prefix text, agent_name text, host text,
                 operator_email text, created_at timestamptz, created_by text, revoked_at timestamptz,
                 last_used_at timestamptz, expires_at timestamptz, agents text[], new_agents boolean)
  language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
begin
  perform agent_private.require_operator(p_operator_token);
  return query
    select t.id, t.kind, t.label, t.token_prefix, a.agent_name, t.host, o.email, t.created_at,
           t.created_by, t.revoked_at, t.last_used_at, t.expires_at, t.agent_patterns, t.may_add_agents
    from public.api_tokens t
    left join public.agent_status a on a.id = t.agent_id
    left join public.operators o on o.id = t.operator_id
    order by t.created_at;
end
$$;

create or replace function public.runner_register(
  p_token text,
  p_agents jsonb,
  p_version text default null,
  p_pid integer default null,
  p_instance text default null
) returns jsonb
  language plpgsql security definer set search_path = ''
as $$
declare
  t public.api_tokens := agent_private.runner_token(p_token);
  r public.runners;
  item jsonb;
  names text[] := '{}';
  new_names text[];
  v_name text;
  v_owner text;
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
  else
    -- A token that names no agents speaks for its own host's: agents this host's runner registered
    -- before, and new names only when it was made with --new-agents. An agent of another host, or one
    -- that reports with its own agent token, is taken only by a token that names it (one without
    -- --agents took such an agent and reported it crashed).
    select a.agent_name, case when a.host is not null then format('host %L', a.host) else 'its own agent token' end into v_name, v_owner
    from public.agent_status a
    where a.agent_name = any (names) and a.host is distinct from t.host
      and (a.host is not null or exists (select 1 from public.api_tokens k where k.kind = 'agent' and k.agent_id = a.id and k.revoked_at is null))
    limit 1;
    if v_name is not null then
      raise exception using errcode = '42501',
        message = format('runner token %s may not take agent %L: it belongs to %s', t.label, v_name, v_owner),
        hint = 'Give the runner a token that names it: agent-status token create runner --host <host> --agents <names or patterns>';
    end if;
    if not t.may_add_agents then
      select n into v_name from unnest(names) n
      where not exists (select 1 from public.agent_status a where a.agent_name = n)
      limit 1;
      if v_name is not null then
        raise exception using errcode = '42501',
          message = format('runner token %s may not add agent %L: it speaks for the agents host %L already has, and adds new names only when made with --new-agents',
                           t.label, v_name, t.host),
          hint = 'Give the runner a token that names its agents (agent-status token create runner --host <host> --agents <names or patterns>) or one that may add new names (--new-agents).';
      end if;
    end if;
  end if;
  select array_agg(n) into new_names from unnest(names) n
  where not exists (select 1 from public.agent_status a where a.agent_name = n);
  if cardinality(new_names) > 100 then
    perform agent_private.invalid(format('one registration may add at most 100 new agents, got %s new names', cardinality(new_names)),
      'Start the runner with at most 100 agents that are new to the database, then add the rest to its config and restart it.');
  end if;
  -- the lease, when a live runner holds it, is the caller's to hold
  select * into r from public.runners where host = t.host for update;
  if found then
    perform agent_private.check_lease(r, p_instance);
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

grant execute on function public.create_api_token(text, text, text, text, text, text, interval, text[], boolean) to anon, authenticated, service_role;
revoke all on function public.create_api_token(text, text, text, text, text, text, interval, text[], boolean) from public;
grant execute on function public.list_api_tokens(text) to anon, authenticated, service_role;
revoke all on function public.list_api_tokens(text) from public;
