-- Tokens (hashing, lookup, agent and runner authorisation), operators and the operator check, whoami, token create/list/revoke/verify.
--
-- supabase/schemas/ is the current definition of every SQL object, applied in file-name order
-- (supabase/README.md). Change it here, then generate the migration: npm run db:diff -- <name>.

-------------------------------------------------------------------------------------------------------
-- Identity: tokens and operators
-------------------------------------------------------------------------------------------------------
-- Stable (convert_to is) and without `set search_path`, so the planner inlines it: a heartbeat batch
-- hashes every token it carries (see agent_private.agent_state_answer for why that is safe).
create function agent_private.hash_token(p_token text) returns bytea
  language sql stable
as $$ select sha256(convert_to(p_token, 'UTF8')) $$;

create function agent_private.token_refused(p_what text) returns void
  language plpgsql immutable set search_path = ''
as $$
begin
  raise exception using errcode = '28000',
    message = format('token is missing, unknown, revoked, or not allowed to speak for %s', p_what),
    hint = 'Send the token made for this agent or for its host''s runner: Authorization: Bearer <token>.';
end
$$;

-- The agent a token may speak for: its own agent for an agent token, any agent its host's runner
-- manages for a runner token. Unknown names and foreign agents get the same answer, so a token
-- cannot probe which agents exist.
create function agent_private.authorize_agent(
  p_token text, p_agent_name text,
  out agent_id integer, out source public.agent_event_source, out actor text)
  language plpgsql set search_path = ''
as $$
declare
  t public.api_tokens;
begin
  perform agent_private.check_agent_name(p_agent_name);
  t := agent_private.find_token(p_token);
  if t.id is not null and t.kind = 'agent' then
    select a.id into agent_id from public.agent_status a where a.id = t.agent_id and a.agent_name = p_agent_name;
    source := 'agent';
  elsif t.id is not null and t.kind = 'runner' then
    select a.id into agent_id from public.agent_status a join public.runners r on r.id = a.runner_id
    where a.agent_name = p_agent_name and r.host = t.host;
    source := 'runner';
  end if;
  if agent_id is null then
    perform agent_private.token_refused(format('agent %L', p_agent_name));
  end if;
  actor := format('%s token %s', t.kind, t.label);
end
$$;

-- A valid runner token, or the refusal every runner function gives.
create function agent_private.runner_token(p_token text) returns public.api_tokens
  language plpgsql set search_path = ''
as $$
declare
  t public.api_tokens := agent_private.find_token(p_token);
begin
  if t.id is null or t.kind <> 'runner' then
    raise exception using errcode = '28000',
      message = 'runner token is missing, unknown or revoked',
      hint = 'Create one with: agent-status token create runner --host <host>';
  end if;
  return t;
end
$$;

-- True when the caller is trusted as an administrator: the service role through PostgREST, or a
-- direct database session (no API claims) of a superuser, of `postgres` (Supabase's SQL editor and
-- migrations, which is not a superuser there), or of a role that holds service_role.
create function agent_private.is_service() returns boolean
  language sql stable set search_path = ''
as $$
  select coalesce(auth.role(), '') = 'service_role'
      or (coalesce(auth.role(), '') = '' and session_user <> 'authenticator'
          and (session_user = 'postgres'
               or pg_has_role(session_user, 'service_role', 'member')
               or (select rolsuper from pg_catalog.pg_roles where rolname = session_user)))
$$;

-- Whether the signed-in user (Supabase Auth session) is on the operator allowlist.
create function agent_private.is_operator() returns boolean
  language sql stable security definer set search_path = ''
as $$
  select exists (
    select 1 from public.operators o
    where o.user_id = auth.uid()
       or (o.user_id is null and lower(o.email) = lower(auth.jwt() ->> 'email') and auth.uid() is not null)
  )
$$;

-- Who is asking, for an operator action: a signed-in operator, an operator token, or the service
-- role. Anyone else is refused. Returns a label for the history.
create function agent_private.require_operator(p_operator_token text) returns text
  language plpgsql set search_path = ''
as $$
declare
  t public.api_tokens;
  who text;
begin
  if p_operator_token is not null then
    t := agent_private.find_token(p_operator_token);
    if t.id is null or t.kind <> 'operator' then
      raise exception using errcode = '28000', message = 'operator token is unknown or revoked',
        hint = 'Create one with: agent-status token create operator --email <operator email>';
    end if;
    select 'operator ' || o.email into who from public.operators o where o.id = t.operator_id;
    return who;
  end if;
  if agent_private.is_operator() then
    select 'operator ' || o.email into who from public.operators o
    where o.user_id = auth.uid() or (o.user_id is null and lower(o.email) = lower(auth.jwt() ->> 'email'))
    limit 1;
    return who;
  end if;
  if agent_private.is_service() then
    return 'service';
  end if;
  raise exception using errcode = '42501',
    message = 'only operators may do this',
    hint = 'Sign in as a user on the operator list (agent-status operator add <email>) or send an operator token.';
end
$$;

create function public.add_operator(p_email text, p_operator_token text default null)
  returns public.operators
  language plpgsql security definer set search_path = ''
as $$
declare
  who text := agent_private.require_operator(p_operator_token);
  o public.operators;
begin
  if p_email is null or p_email !~ '^[^@[:space:]]+@[^@[:space:]]+$' then
    perform agent_private.invalid(format('%L is not an email address', p_email));
  end if;
  insert into public.operators (email, added_by) values (lower(p_email), who)
  on conflict (lower(email)) do update set email = excluded.email
  returning * into o;
  return o;
end
$$;

create function public.remove_operator(p_email text, p_operator_token text default null)
  returns boolean
  language plpgsql security definer set search_path = ''
as $$
begin
  perform agent_private.require_operator(p_operator_token);
  delete from public.operators where lower(email) = lower(p_email);
  return found;
end
$$;

-- The signed-in user's standing, for the dashboard's "signed in but not an operator" screen. Links
-- an operator added by email to their user id at their first sign-in.
create function public.whoami() returns jsonb
  language plpgsql security definer set search_path = ''
as $$
declare
  o public.operators;
begin
  if auth.uid() is null then
    return jsonb_build_object('signed_in', false, 'operator', false);
  end if;
  update public.operators set user_id = auth.uid()
  where user_id is null and lower(email) = lower(auth.jwt() ->> 'email')
  returning * into o;
  if o.id is null then
    select * into o from public.operators where user_id = auth.uid();
  end if;
  return jsonb_build_object('signed_in', true, 'operator', o.id is not null,
                            'user_id', auth.uid(), 'email', auth.jwt() ->> 'email');
end
$$;

-- Checks a token without using it for anything; for `agent-status doctor` and the edge functions'
-- early refusal. Never says more than valid or not.
create function public.verify_api_token(p_token text)
  returns table (valid boolean, kind text, label text, agent_name text, host text)
  language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
declare
  t public.api_tokens := agent_private.find_token(p_token);
begin
  return query select t.id is not null, t.kind, t.label,
    (select a.agent_name from public.agent_status a where a.id = t.agent_id), t.host;
end
$$;

-- A glob (* any run, ? one character) as a LIKE pattern, other LIKE characters taken literally.
create function agent_private.glob_to_like(p_glob text) returns text
  language sql immutable set search_path = ''
as $$
  select replace(replace(replace(replace(replace(p_glob, '\', '\\'), '%', '\%'), '_', '\_'), '*', '%'), '?', '_')
$$;

-------------------------------------------------------------------------------------------------------
-- The dispatcher's functions (service role only)
-------------------------------------------------------------------------------------------------------
create function agent_private.require_service() returns void
  language plpgsql stable set search_path = ''
as $$
begin
  if not agent_private.is_service() then
    raise exception using errcode = '42501', message = 'only the dispatcher (service role) may do this',
      hint = 'Call it from the dispatch edge function or with the service role key.';
  end if;
end
$$;

-- The lease holder, or the refusal a runner gets once another instance took the host over.
create function agent_private.authorize_lease(p_token text, p_instance text) returns public.runners
  language plpgsql set search_path = ''
as $$
declare
  r public.runners := agent_private.authorize_runner(p_token);
begin
  perform agent_private.check_lease(r, p_instance);
  return r;
end
$$;

-- Refuses a caller that does not hold the host's lease: one naming another instance than the
-- holder's, and one naming none while a live runner holds it. (Without this a call with the host's
-- token and no instance un-managed a live host's agents, or claimed and completed its commands.)
-- With no live holder, a call without an instance is a runner that has not leased yet.
create function agent_private.check_lease(r public.runners, p_instance text) returns void
  language plpgsql stable set search_path = ''
as $$
begin
  if p_instance is not null and r.instance is distinct from p_instance then
    perform agent_private.refuse('55000', format('this runner no longer holds the lease of host %L: pid %s took over', r.host, coalesce(r.pid::text, 'unknown')),
      'Stop this runner; one runner per host.');
  end if;
  if p_instance is null and r.instance is not null and r.status = 'online'
     and r.last_seen_at > now() - make_interval(secs => (select runner_offline_after_s from public.agent_status_settings)) then
    perform agent_private.refuse('55000', format('a live runner holds the lease of host %L (pid %s); name its instance', r.host, coalesce(r.pid::text, 'unknown')),
      'Only the runner holding the lease (runner_lease) may register, claim and complete; one runner per host.');
  end if;
end
$$;

-- As before, and an expired token is unknown.
create or replace function agent_private.find_token(p_token text) returns public.api_tokens
  language plpgsql set search_path = ''
as $$
declare
  t public.api_tokens;
begin
  if p_token is null or char_length(p_token) > 200 then
    return null;
  end if;
  select * into t from public.api_tokens
  where token_hash = agent_private.hash_token(p_token) and revoked_at is null
    and (expires_at is null or expires_at > now());
  if found and (t.last_used_at is null or t.last_used_at < now() - interval '1 minute') then
    update public.api_tokens set last_used_at = now() where id = t.id;
  end if;
  return t;
end
$$;

-- Refusals raise through agent_private.refuse: not found is 404 and a conflict 409 through PostgREST
-- (a bare raise is 500), the same SQLSTATE for direct callers.
create or replace function public.revoke_api_token(p_token_id_or_prefix text, p_operator_token text default null)
  returns table (id uuid, label text, revoked_at timestamptz)
  language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
declare
  matches integer;
begin
  perform agent_private.require_operator(p_operator_token);
  select count(*) into matches from public.api_tokens t
  where t.id::text = p_token_id_or_prefix or t.token_prefix = p_token_id_or_prefix;
  if matches = 0 then
    perform agent_private.refuse('P0002', format('no token with id or prefix %L', p_token_id_or_prefix),
      'List tokens with: agent-status token list');
  elsif matches > 1 then
    perform agent_private.refuse('55000', format('%s tokens share the prefix %L', matches, p_token_id_or_prefix),
      'Revoke by id instead.');
  end if;
  return query
    update public.api_tokens t set revoked_at = coalesce(t.revoked_at, now())
    where t.id::text = p_token_id_or_prefix or t.token_prefix = p_token_id_or_prefix
    returning t.id, t.label, t.revoked_at;
end
$$;

create or replace function agent_private.authorize_runner(p_token text) returns public.runners
  language plpgsql set search_path = ''
as $$
declare
  t public.api_tokens := agent_private.runner_token(p_token);
  r public.runners;
begin
  select * into r from public.runners where host = t.host;
  if not found then
    perform agent_private.refuse('55000', format('the runner for host %L has not registered yet', t.host),
      'Call runner_register first.');
  end if;
  return r;
end
$$;

-- p_agents: for a runner token, the names or patterns it may register (null: its host's agents);
-- p_new_agents: a runner token without p_agents may also add new agent names (api_tokens.may_add_agents).
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
