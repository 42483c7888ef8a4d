-- The SQL API: every state transition of agent-status is one of these functions. TypeScript (edge
-- functions, runner, CLI, dashboard) validates input for friendly messages and then calls them; it
-- never read-modify-writes a row. Errors use SQLSTATEs the callers map to HTTP statuses:
--   22023 invalid input (400), 28000 bad token (401), 42501 not an operator (403),
--   P0002 not found (404), 55000 conflict with the current state (409).

-------------------------------------------------------------------------------------------------------
-- Errors and input checks
-------------------------------------------------------------------------------------------------------

create function agent_private.invalid(p_message text, p_hint text default null) returns void
  language plpgsql immutable set search_path = ''
as $$
begin
  raise exception using errcode = '22023', message = p_message, hint = coalesce(p_hint, '');
end
$$;

create function agent_private.check_agent_name(p_agent_name text) returns text
  language plpgsql immutable set search_path = ''
as $$
begin
  if p_agent_name is null or p_agent_name = '' then
    perform agent_private.invalid('agent_name is required', 'Send the agent''s name exactly as it appears in agent_status.agent_name.');
  elsif char_length(p_agent_name) > 100 then
    perform agent_private.invalid(format('agent_name is %s characters long; the limit is 100', char_length(p_agent_name)));
  elsif p_agent_name <> btrim(p_agent_name) then
    perform agent_private.invalid('agent_name has leading or trailing spaces', 'Remove them: names must match exactly.');
  elsif p_agent_name ~ '[[:cntrl:]]' then
    perform agent_private.invalid('agent_name contains control characters');
  end if;
  return p_agent_name;
end
$$;

create function agent_private.check_text(p_field text, p_value text, p_limit integer) returns text
  language plpgsql immutable set search_path = ''
as $$
begin
  if p_value is not null and char_length(p_value) > p_limit then
    perform agent_private.invalid(
      format('%s is %s characters long; the limit is %s', p_field, char_length(p_value), p_limit),
      'Send a shorter text; put long output in your own logs.');
  end if;
  return p_value;
end
$$;

create function agent_private.check_health(p_health integer) returns integer
  language plpgsql immutable set search_path = ''
as $$
begin
  if p_health is not null and (p_health < 0 or p_health > 100) then
    perform agent_private.invalid(format('health must be between 0 and 100, got %s', p_health));
  end if;
  return p_health;
end
$$;

create function agent_private.check_status(p_status text, p_allowed text[]) returns public.agent_status_value
  language plpgsql immutable set search_path = ''
as $$
begin
  if p_status is null or not (p_status = any (p_allowed)) then
    perform agent_private.invalid(
      format('status must be one of %s, got %s', array_to_string(p_allowed, ', '), coalesce(quote_literal(p_status), 'nothing')));
  end if;
  return p_status::public.agent_status_value;
end
$$;

-------------------------------------------------------------------------------------------------------
-- The state machine (documented in docs/state-machine.md; tests check every cell against that table)
-------------------------------------------------------------------------------------------------------

-- The events, all of them:
--   started     the agent (or its runner) says it started          adopted   a runner found it running
--   heartbeat   proof of life, nothing more                        activity  proof of life doing work
--   running / warning / error   the agent says so explicitly
--   stopped     the agent says it is stopping (its exit handler)
--   exited      its process ended with code 0 on its own          crashed   ended non-zero or by a signal
--   terminated  its runner stopped it on a command
--   deadline    the sweep: no heartbeat before stale_at           inactive  the sweep: no activity before inactive_at
--   force       an operator sets the status without touching any process
create function agent_private.next_status(
  p_current public.agent_status_value,
  p_current_source public.agent_event_source,
  p_event text,
  p_forced public.agent_status_value default null
) returns public.agent_status_value
  language sql immutable set search_path = ''
as $$
  select case p_event
    when 'started' then 'running'
    when 'adopted' then 'running'
    when 'running' then 'running'
    when 'warning' then 'warning'
    when 'error' then 'error'
    when 'crashed' then 'error'
    when 'terminated' then 'stopped'
    -- A crash followed by the exit handler's "stopped" must not hide the crash.
    when 'stopped' then case when p_current = 'error' then 'error' else 'stopped' end
    when 'exited' then case when p_current = 'error' then 'error' else 'stopped' end
    -- Proof of life revives what was inferred (stale) or recorded as stopped; it never overrides what
    -- somebody said explicitly. Only activity clears the sweep's own "no activity" warning.
    when 'heartbeat' then case when p_current in ('stopped', 'stale') then 'running' else p_current end
    when 'activity' then case
      when p_current in ('stopped', 'stale') then 'running'
      when p_current = 'warning' and p_current_source = 'sweep' then 'running'
      else p_current end
    when 'deadline' then case when p_current in ('running', 'warning') then 'stale' else p_current end
    when 'inactive' then case when p_current = 'running' then 'warning' else p_current end
    when 'force' then p_forced
  end::public.agent_status_value
$$;

create function agent_private.is_event(p_event text) returns boolean
  language sql immutable set search_path = ''
as $$
  select p_event = any (array['started', 'adopted', 'heartbeat', 'activity', 'running', 'warning', 'error',
                              'stopped', 'exited', 'crashed', 'terminated', 'deadline', 'inactive', 'force'])
$$;

-- Applies one event to one agent: the only code that writes agent_status after creation. It locks
-- the row, so concurrent heartbeats, reports and the sweep serialise on it and each sees the last
-- committed state (compare-and-set). It writes an event row for every flip, reported warning or
-- error, process change and forced status, and for health changes (the dashboard's health chart).
create function agent_private.apply_event(
  p_agent_id integer,
  p_event text,
  p_source public.agent_event_source,
  p_actor text,
  p_forced public.agent_status_value default null,
  p_health integer default null,
  p_message text default null,
  p_activity text default null,
  p_pid integer default null,
  p_exit_code integer default null,
  p_exit_signal text default null,
  p_details jsonb default '{}'
) returns public.agent_status
  language plpgsql set search_path = ''
as $$
declare
  old public.agent_status;
  new public.agent_status;
  settings public.agent_status_settings;
  live constant text[] := array['running', 'warning'];
  alive_evidence boolean := p_event in ('started', 'adopted', 'heartbeat', 'activity', 'running', 'warning', 'error');
  heartbeat_timeout integer;
  activity_timeout integer;
begin
  if not agent_private.is_event(p_event) then
    perform agent_private.invalid(format('unknown event %L', p_event));
  end if;

  select * into old from public.agent_status where id = p_agent_id for update;
  if not found then
    raise exception using errcode = 'P0002', message = format('no agent with id %s', p_agent_id);
  end if;

  -- The sweep's events are compare-and-set on the stored deadline: a heartbeat that committed first
  -- moved the deadline, and then the sweep has nothing to do.
  if (p_event = 'deadline' and (old.stale_at is null or old.stale_at > now()))
     or (p_event = 'inactive' and (old.inactive_at is null or old.inactive_at > now())) then
    return old;
  end if;

  select * into settings from public.agent_status_settings;
  heartbeat_timeout := coalesce(old.heartbeat_timeout_s, settings.default_heartbeat_timeout_s);
  activity_timeout := case when old.activity_timeout_s is not null then old.activity_timeout_s
                           else settings.default_activity_timeout_s end;

  new := old;
  new.status := agent_private.next_status(old.status, old.status_source, p_event, p_forced);
  new.updated_at := now();

  if new.status is distinct from old.status or p_event not in ('heartbeat', 'activity') then
    new.status_source := p_source;
  end if;
  if new.status is distinct from old.status then
    new.status_changed_at := now();
  end if;

  new.status_reason := case
    when p_event in ('warning', 'error', 'crashed', 'force', 'deadline', 'inactive') then p_message
    when new.status = old.status and p_event in ('heartbeat', 'activity', 'running') then old.status_reason
    else null end;
  if p_event in ('error', 'crashed') and p_message is not null then
    new.last_error := p_message;
  end if;
  if p_activity is not null then
    new.last_activity := p_activity;
    new.last_activity_at := now();
  end if;

  new.health := coalesce(p_health, case
    when p_event in ('started', 'adopted') and not (old.status = any (live)) then 100
    when new.status = 'stopped' and old.status <> 'stopped' then 0
    when p_event = 'crashed' then 0
    else old.health end);

  if p_event in ('started', 'adopted') then
    new.pid := coalesce(p_pid, old.pid);
    new.exit_code := null;
    new.exit_signal := null;
    new.stopped_at := null;
    if p_event = 'started' or old.started_at is null or old.status not in ('running', 'warning', 'error', 'stale') then
      new.started_at := now();
    end if;
  elsif p_event in ('stopped', 'exited', 'crashed', 'terminated') then
    new.pid := null;
    new.stopped_at := now();
    new.exit_code := p_exit_code;
    new.exit_signal := p_exit_signal;
  elsif alive_evidence and old.status = 'stopped' and new.status = any (live) then
    -- revived by proof of life: it is running, so it started at some point we did not see
    new.started_at := now();
    new.stopped_at := null;
  end if;
  if p_pid is not null and alive_evidence then
    new.pid := p_pid;
  end if;

  if alive_evidence then
    new.last_heartbeat := now();
  end if;

  -- Deadlines exist only while the agent is expected to speak.
  if new.status = any (live) then
    if alive_evidence or not (old.status = any (live)) or old.stale_at is null then
      new.stale_at := now() + make_interval(secs => heartbeat_timeout);
    end if;
    if activity_timeout is null or p_event = 'inactive' or new.status = 'warning' and new.status_source = 'sweep' then
      new.inactive_at := null;
    elsif p_activity is not null or p_event in ('started', 'adopted') or not (old.status = any (live))
          or old.inactive_at is null then
      new.inactive_at := coalesce(new.last_activity_at, now()) + make_interval(secs => activity_timeout);
      if new.inactive_at < now() then
        new.inactive_at := now() + make_interval(secs => activity_timeout);
      end if;
    end if;
  else
    new.stale_at := null;
    new.inactive_at := null;
  end if;

  update public.agent_status set
    status = new.status, health = new.health, last_heartbeat = new.last_heartbeat,
    last_error = new.last_error, last_activity = new.last_activity, updated_at = new.updated_at,
    status_source = new.status_source, status_reason = new.status_reason,
    status_changed_at = new.status_changed_at, pid = new.pid, started_at = new.started_at,
    stopped_at = new.stopped_at, exit_code = new.exit_code, exit_signal = new.exit_signal,
    last_activity_at = new.last_activity_at, stale_at = new.stale_at, inactive_at = new.inactive_at
  where id = p_agent_id;

  -- A heartbeat that carries the status the agent already has (the SDKs send it every 30 s) adds
  -- nothing to the history; a warning or error with its message does, even when repeated.
  if new.status is distinct from old.status
     or new.health is distinct from old.health
     or p_event not in ('heartbeat', 'activity', 'running', 'warning', 'error')
     or (p_event in ('warning', 'error') and p_message is not null) then
    insert into public.agent_events
      (agent_id, runner_id, kind, source, actor, from_status, to_status, health, message, details)
    values
      (p_agent_id, old.runner_id, p_event, p_source, p_actor, old.status, new.status, new.health,
       coalesce(p_message, case when p_activity is not null and p_event <> 'activity' then null end),
       coalesce(p_details, '{}') || jsonb_strip_nulls(jsonb_build_object(
         'pid', p_pid, 'exit_code', p_exit_code, 'exit_signal', p_exit_signal, 'activity', p_activity)));
  end if;

  return new;
end
$$;

-------------------------------------------------------------------------------------------------------
-- Identity: tokens and operators
-------------------------------------------------------------------------------------------------------

create function agent_private.hash_token(p_token text) returns bytea
  language sql immutable set search_path = ''
as $$ select sha256(convert_to(p_token, 'UTF8')) $$;

-- Looks a bearer token up; null when it is unknown or revoked. last_used_at is written at most once a
-- minute so the heartbeat path stays a read here.
create function agent_private.find_token(p_token text) returns public.api_tokens
  language plpgsql set search_path = ''
as $$
declare
  t public.api_tokens;
begin
  if p_token is null or char_length(p_token) > 200 then
    return null;
  end if;
  select * into t from public.api_tokens
  where token_hash = agent_private.hash_token(p_token) and revoked_at is null;
  if found and (t.last_used_at is null or t.last_used_at < now() - interval '1 minute') then
    update public.api_tokens set last_used_at = now() where id = t.id;
  end if;
  return t;
end
$$;

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

create function agent_private.authorize_runner(p_token text) returns public.runners
  language plpgsql set search_path = ''
as $$
declare
  t public.api_tokens := agent_private.runner_token(p_token);
  r public.runners;
begin
  select * into r from public.runners where host = t.host;
  if not found then
    raise exception using errcode = '55000',
      message = format('the runner for host %L has not registered yet', t.host),
      hint = 'Call runner_register first.';
  end if;
  return r;
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

-- Creates a token and returns it once; only its SHA-256 is stored. An agent token names its agent
-- (whose row is created, stopped, if it does not exist yet), a runner token its host, an operator
-- token its operator's email.
create function public.create_api_token(
  p_kind text,
  p_label text default null,
  p_agent_name text default null,
  p_host text default null,
  p_operator_email text default null,
  p_operator_token text default null
) returns table (id uuid, kind text, label text, token text, token_prefix text, agent_name text, host text, operator_email text)
  language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
declare
  who text := agent_private.require_operator(p_operator_token);
  v_agent_id integer;
  v_operator_id uuid;
  v_token text;
  v_label text;
  v_row public.api_tokens;
begin
  if p_kind is null or p_kind not in ('agent', 'runner', 'operator') then
    perform agent_private.invalid(format('token kind must be agent, runner or operator, got %L', p_kind));
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
    v_label := coalesce(p_label, p_host);
  else
    select o.id into v_operator_id from public.operators o where lower(o.email) = lower(p_operator_email);
    if v_operator_id is null then
      raise exception using errcode = 'P0002', message = format('no operator with email %L', p_operator_email),
        hint = 'Add the operator first: agent-status operator add <email>';
    end if;
    v_label := coalesce(p_label, lower(p_operator_email));
  end if;
  perform agent_private.check_text('label', v_label, 200);

  -- 32 random bytes, URL-safe; the prefix says what kind of token it is when one turns up in a log.
  v_token := 'as' || left(p_kind, 1) || '_' ||
    translate(rtrim(encode(extensions.gen_random_bytes(32), 'base64'), '='), '+/', '-_');
  insert into public.api_tokens (kind, label, token_hash, token_prefix, agent_id, host, operator_id, created_by)
  values (p_kind, v_label, agent_private.hash_token(v_token), left(v_token, 10), v_agent_id,
          case when p_kind = 'runner' then p_host end, v_operator_id, who)
  returning * into v_row;

  return query select v_row.id, v_row.kind, v_row.label, v_token, v_row.token_prefix,
    p_agent_name, v_row.host, case when p_kind = 'operator' then lower(p_operator_email) end;
end
$$;

create function public.list_api_tokens(p_operator_token text default null)
  returns table (id uuid, kind text, label text, token_prefix text, agent_name text, host text,
                 operator_email text, created_at timestamptz, created_by text, revoked_at timestamptz,
                 last_used_at timestamptz)
  language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
begin
  perform agent_private.require_operator(p_operator_token);
  return query
    select t.id, t.kind, t.label, t.token_prefix, a.agent_name, t.host, o.email, t.created_at,
           t.created_by, t.revoked_at, t.last_used_at
    from public.api_tokens t
    left join public.agent_status a on a.id = t.agent_id
    left join public.operators o on o.id = t.operator_id
    order by t.created_at;
end
$$;

-- Revokes by id or by the prefix shown in list_api_tokens. Revoking twice is not an error.
create function public.revoke_api_token(p_token_id_or_prefix text, p_operator_token text default null)
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
    raise exception using errcode = 'P0002', message = format('no token with id or prefix %L', p_token_id_or_prefix),
      hint = 'List tokens with: agent-status token list';
  elsif matches > 1 then
    raise exception using errcode = '55000', message = format('%s tokens share the prefix %L', matches, p_token_id_or_prefix),
      hint = 'Revoke by id instead.';
  end if;
  return query
    update public.api_tokens t set revoked_at = coalesce(t.revoked_at, now())
    where t.id::text = p_token_id_or_prefix or t.token_prefix = p_token_id_or_prefix
    returning t.id, t.label, t.revoked_at;
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

-------------------------------------------------------------------------------------------------------
-- Agents speak: heartbeat and report
-------------------------------------------------------------------------------------------------------

-- Proof of life, optionally carrying status, health and activity so a busy agent needs one request.
create function public.agent_heartbeat(
  p_token text,
  p_agent_name text,
  p_status text default null,
  p_health integer default null,
  p_activity text default null,
  p_pid integer default null
) returns public.agent_status
  language plpgsql security definer set search_path = ''
as $$
declare
  who record;
  event text;
begin
  if p_status is not null then
    perform agent_private.check_status(p_status, array['running', 'warning', 'error']);
  end if;
  perform agent_private.check_health(p_health);
  perform agent_private.check_text('activity', p_activity, 1000);
  who := agent_private.authorize_agent(p_token, p_agent_name);
  -- An explicit status decides the transition; activity it carries is recorded by the same event
  -- (one row update per heartbeat: apply_event records activity for any event).
  event := coalesce(p_status, case when p_activity is not null then 'activity' else 'heartbeat' end);
  return agent_private.apply_event(who.agent_id, event, who.source, who.actor,
    p_health => p_health, p_activity => p_activity, p_pid => p_pid);
end
$$;

-- Everything else an agent or its runner says about it. p_event is one of started, stopped, running,
-- warning, error, activity (from agents) and adopted, exited, crashed, terminated (from runners).
create function public.agent_report(
  p_token text,
  p_agent_name text,
  p_event text,
  p_message text default null,
  p_health integer default null,
  p_activity text default null,
  p_pid integer default null,
  p_exit_code integer default null,
  p_exit_signal text default null,
  p_details jsonb default null
) returns public.agent_status
  language plpgsql security definer set search_path = ''
as $$
declare
  who record;
  agent_events constant text[] := array['started', 'stopped', 'running', 'warning', 'error', 'activity', 'heartbeat'];
  runner_events constant text[] := array['adopted', 'exited', 'crashed', 'terminated'];
begin
  if p_event is null or not (p_event = any (agent_events || runner_events)) then
    perform agent_private.invalid(format('event must be one of %s, got %s',
      array_to_string(agent_events || runner_events, ', '), coalesce(quote_literal(p_event), 'nothing')));
  end if;
  perform agent_private.check_health(p_health);
  perform agent_private.check_text('message', p_message, 4000);
  perform agent_private.check_text('activity', p_activity, 1000);
  if p_details is not null and (jsonb_typeof(p_details) <> 'object' or pg_column_size(p_details) > 8192) then
    perform agent_private.invalid('details must be a JSON object of at most 8 kB');
  end if;
  if p_exit_signal is not null and p_exit_signal !~ '^SIG[A-Z0-9]{1,12}$' then
    perform agent_private.invalid(format('exit_signal must be a signal name like SIGTERM, got %L', p_exit_signal));
  end if;
  if p_event in ('warning', 'error') and nullif(btrim(p_message), '') is null then
    perform agent_private.invalid(format('a %s report needs a message saying what is wrong', p_event));
  end if;
  if p_event = 'activity' and p_activity is null then
    perform agent_private.invalid('an activity report needs activity: what the agent is doing now');
  end if;

  who := agent_private.authorize_agent(p_token, p_agent_name);
  if p_event = any (runner_events) and who.source <> 'runner' then
    perform agent_private.invalid(format('%s is reported by the runner that supervises the process', p_event));
  end if;

  return agent_private.apply_event(who.agent_id, p_event, who.source, who.actor,
    p_health => p_health, p_message => p_message, p_activity => p_activity, p_pid => p_pid,
    p_exit_code => p_exit_code, p_exit_signal => p_exit_signal, p_details => p_details);
end
$$;

-- The seed's "Force stop", fix_agent_status.py and agent_status_lock.py: sets the status in the
-- database without touching any process. Operators only; the history records who did it.
create function public.force_agent_status(
  p_agent_name text,
  p_status text,
  p_health integer default null,
  p_reason text default null,
  p_operator_token text default null
) returns public.agent_status
  language plpgsql security definer set search_path = ''
as $$
declare
  who text := agent_private.require_operator(p_operator_token);
  v_status public.agent_status_value;
  v_agent_id integer;
begin
  v_status := agent_private.check_status(p_status, array['running', 'warning', 'error', 'stopped']);
  perform agent_private.check_health(p_health);
  perform agent_private.check_text('reason', p_reason, 4000);
  select id into v_agent_id from public.agent_status where agent_name = agent_private.check_agent_name(p_agent_name);
  if v_agent_id is null then
    raise exception using errcode = 'P0002', message = format('no agent named %L', p_agent_name),
      hint = 'List agents with: agent-status list';
  end if;
  return agent_private.apply_event(v_agent_id, 'force', 'operator', who, p_forced => v_status,
    p_health => p_health, p_message => coalesce(p_reason, format('forced to %s by %s', v_status, who)));
end
$$;

-------------------------------------------------------------------------------------------------------
-- Runners
-------------------------------------------------------------------------------------------------------

-- A runner announces itself and the agents its host's config lists. Agents not seen before are
-- created (stopped); agents it no longer lists are released. An agent another online runner manages
-- is refused: one agent, one host.
create function public.runner_register(
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
    raise exception using errcode = '55000',
      message = format('agent %L is managed by the runner on host %L, which is online', clash.agent_name, clash.host),
      hint = 'Remove it from one of the two runners'' config files.';
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

-- The runner's own liveness, and the heartbeats of the agents it supervises relayed in one call
-- (p_agents: [{"name": ..., "pid": ...}]) so a host costs one request per interval, not one per agent.
create function public.runner_heartbeat(p_token text, p_agents jsonb default null)
  returns jsonb
  language plpgsql security definer set search_path = ''
as $$
declare
  r public.runners := agent_private.authorize_runner(p_token);
  item jsonb;
  v_agent_id integer;
  relayed integer := 0;
begin
  update public.runners set last_seen_at = now(), status = 'online', stopped_at = null where id = r.id;
  if r.status = 'offline' then
    insert into public.agent_events (runner_id, kind, source, actor, message)
    values (r.id, 'runner_online', 'runner', 'runner ' || r.host, format('runner on %s is back', r.host));
  end if;
  if p_agents is not null then
    if jsonb_typeof(p_agents) <> 'array' or jsonb_array_length(p_agents) > 500 then
      perform agent_private.invalid('agents must be a JSON array of at most 500 {"name", "pid"} objects');
    end if;
    for item in select value from jsonb_array_elements(p_agents) loop
      select a.id into v_agent_id from public.agent_status a
      where a.agent_name = item ->> 'name' and a.runner_id = r.id;
      if v_agent_id is null then
        perform agent_private.token_refused(format('agent %L', item ->> 'name'));
      end if;
      perform agent_private.apply_event(v_agent_id, 'heartbeat', 'runner', 'runner ' || r.host,
        p_pid => (item ->> 'pid')::integer);
      relayed := relayed + 1;
    end loop;
  end if;
  return jsonb_build_object('runner_id', r.id, 'relayed', relayed);
end
$$;

-- A runner going away on purpose says so, so the dashboard need not wait for the sweep.
create function public.runner_offline(p_token text) returns void
  language plpgsql security definer set search_path = ''
as $$
declare
  r public.runners := agent_private.authorize_runner(p_token);
begin
  update public.runners set status = 'offline', stopped_at = now() where id = r.id and status = 'online';
  if found then
    insert into public.agent_events (runner_id, kind, source, actor, message)
    values (r.id, 'runner_offline', 'runner', 'runner ' || r.host, format('runner on %s stopped', r.host));
  end if;
end
$$;

-------------------------------------------------------------------------------------------------------
-- Commands: enqueue, claim, complete
-------------------------------------------------------------------------------------------------------

-- Who is inserting a command, for requested_by: set by the enqueue function for token callers, or
-- read from the signed-in user's JWT when the dashboard inserts directly.
create function agent_private.command_actor() returns text
  language sql stable set search_path = ''
as $$
  select coalesce(
    nullif(current_setting('agent_status.actor', true), ''),
    case when auth.uid() is not null then 'operator ' || coalesce(auth.jwt() ->> 'email', auth.uid()::text) end,
    case when agent_private.is_service() then 'service' end,
    'unknown')
$$;

-- Every command, however it is inserted (enqueue_agent_commands or the dashboard's direct insert
-- under RLS, which Postgres checks after this trigger), passes here: it starts pending, with a server-side expiry, for an agent a runner manages.
create function agent_private.agent_commands_before_insert() returns trigger
  language plpgsql security definer set search_path = ''
as $$
declare
  a record;
begin
  select s.agent_name, s.runner_id into a from public.agent_status s where s.id = new.agent_id;
  if a.runner_id is null then
    raise exception using errcode = '55000',
      message = format('no runner manages agent %L, so nothing can %s it', a.agent_name, new.action),
      hint = 'Add the agent to the config file of the runner on its host, or start it by hand.';
  end if;
  new.status := 'pending';
  new.requested_by := agent_private.command_actor();
  new.created_at := now();
  new.expires_at := now() + make_interval(secs => (select command_ttl_s from public.agent_status_settings));
  new.claimed_at := null;
  new.claimed_by := null;
  new.finished_at := null;
  new.result := null;
  return new;
end
$$;

create function agent_private.agent_commands_after_insert() returns trigger
  language plpgsql security definer set search_path = ''
as $$
declare
  v_host text;
begin
  insert into public.agent_events (agent_id, kind, source, actor, message, details)
  values (new.agent_id, 'command_requested', 'operator', new.requested_by,
          format('%s requested', new.action), jsonb_build_object('command_id', new.id, 'action', new.action));
  -- Hints only: runners poll anyway (a hint is lost while a runner is disconnected). NOTIFY for
  -- runners with a database connection; on Supabase, a Realtime broadcast on agent_commands:<host>,
  -- which runners holding only the publishable key can receive. It carries no more than the id.
  select coalesce(r.host, '') into v_host from public.agent_status s
  left join public.runners r on r.id = s.runner_id where s.id = new.agent_id;
  perform pg_notify('agent_commands', v_host);
  if to_regprocedure('realtime.send(jsonb, text, text, boolean)') is not null then
    begin
      perform realtime.send(jsonb_build_object('command_id', new.id), 'command', 'agent_commands:' || v_host, false);
    exception when others then
      null;  -- a hint that cannot be sent must never refuse the command
    end;
  end if;
  return null;
end
$$;

create trigger agent_commands_before_insert before insert on public.agent_commands
  for each row execute function agent_private.agent_commands_before_insert();
create trigger agent_commands_after_insert after insert on public.agent_commands
  for each row execute function agent_private.agent_commands_after_insert();

-- Enqueue start, stop or restart for one agent (p_agent_name), the agents of one host (p_host), or
-- every agent some runner manages (neither). Returns the new commands.
create function public.enqueue_agent_commands(
  p_action text,
  p_agent_name text default null,
  p_host text default null,
  p_operator_token text default null
) returns setof public.agent_commands
  language plpgsql security definer set search_path = ''
as $$
declare
  who text := agent_private.require_operator(p_operator_token);
  v_agent_id integer;
begin
  if p_action is null or p_action not in ('start', 'stop', 'restart') then
    perform agent_private.invalid(format('action must be start, stop or restart, got %s', coalesce(quote_literal(p_action), 'nothing')));
  end if;
  if p_agent_name is not null and p_host is not null then
    perform agent_private.invalid('give an agent name or a host, not both');
  end if;
  perform set_config('agent_status.actor', who, true);

  if p_agent_name is not null then
    select id into v_agent_id from public.agent_status where agent_name = agent_private.check_agent_name(p_agent_name);
    if v_agent_id is null then
      raise exception using errcode = 'P0002', message = format('no agent named %L', p_agent_name),
        hint = 'List agents with: agent-status list';
    end if;
    return query insert into public.agent_commands (agent_id, action) values (v_agent_id, p_action) returning *;
  else
    if p_host is not null and not exists (select 1 from public.runners where host = p_host) then
      raise exception using errcode = 'P0002', message = format('no runner has registered for host %L', p_host),
        hint = 'List runners in the dashboard, or check the host name in the runner''s config.';
    end if;
    return query insert into public.agent_commands (agent_id, action)
      select a.id, p_action from public.agent_status a join public.runners r on r.id = a.runner_id
      where p_host is null or r.host = p_host
      order by a.agent_name
      returning *;
  end if;
end
$$;

-- Claims up to p_limit pending commands for the agents this runner manages, in one statement:
-- the rows are picked FOR UPDATE SKIP LOCKED and marked claimed by the same statement, so two
-- runners (or two loops of one) can never claim the same command.
create function public.runner_claim_commands(p_token text, p_limit integer default 10)
  returns table (id bigint, agent_id integer, agent_name text, action text, requested_by text,
                 created_at timestamptz, expires_at timestamptz)
  language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
declare
  r public.runners := agent_private.authorize_runner(p_token);
begin
  if p_limit is null or p_limit < 1 or p_limit > 100 then
    perform agent_private.invalid(format('limit must be between 1 and 100, got %s', p_limit));
  end if;
  update public.runners set last_seen_at = now() where runners.id = r.id;
  return query
    with picked as (
      select c.id
      from public.agent_commands c
      join public.agent_status a on a.id = c.agent_id
      where c.status = 'pending' and c.expires_at > now() and a.runner_id = r.id
      order by c.id
      limit p_limit
      for update of c skip locked
    ), claimed as (
      update public.agent_commands c
      set status = 'claimed', claimed_at = now(), claimed_by = r.id
      from picked where c.id = picked.id
      returning c.*
    ), logged as (
      insert into public.agent_events (agent_id, runner_id, kind, source, actor, message, details)
      select claimed.agent_id, r.id, 'command_claimed', 'runner', 'runner ' || r.host,
             format('%s claimed by the runner on %s', claimed.action, r.host),
             jsonb_build_object('command_id', claimed.id, 'action', claimed.action)
      from claimed
    )
    select claimed.id, claimed.agent_id, a.agent_name, claimed.action, claimed.requested_by,
           claimed.created_at, claimed.expires_at
    from claimed join public.agent_status a on a.id = claimed.agent_id
    order by claimed.id;
end
$$;

create function public.runner_complete_command(
  p_token text,
  p_command_id bigint,
  p_succeeded boolean,
  p_result text default null
) returns public.agent_commands
  language plpgsql security definer set search_path = ''
as $$
declare
  r public.runners := agent_private.authorize_runner(p_token);
  c public.agent_commands;
begin
  if p_succeeded is null then
    perform agent_private.invalid('succeeded must be true or false');
  end if;
  perform agent_private.check_text('result', p_result, 4000);
  update public.agent_commands set
    status = case when p_succeeded then 'succeeded' else 'failed' end,
    finished_at = now(), result = p_result
  where agent_commands.id = p_command_id and claimed_by = r.id and status = 'claimed'
  returning * into c;
  if c.id is null then
    raise exception using errcode = '55000',
      message = format('command %s is not claimed by the runner on %s', p_command_id, r.host),
      hint = 'It may have been failed by the sweep after waiting too long; claim new commands instead.';
  end if;
  insert into public.agent_events (agent_id, runner_id, kind, source, actor, message, details)
  values (c.agent_id, r.id, case when p_succeeded then 'command_succeeded' else 'command_failed' end,
          'runner', 'runner ' || r.host,
          format('%s %s%s', c.action, case when p_succeeded then 'succeeded' else 'failed' end,
                 coalesce(': ' || p_result, '')),
          jsonb_build_object('command_id', c.id, 'action', c.action));
  return c;
end
$$;

-------------------------------------------------------------------------------------------------------
-- The sweep (pg_cron every minute; the local stack on a timer where pg_cron is missing)
-------------------------------------------------------------------------------------------------------

-- Persists what the deadlines already say, expires commands that waited too long, marks silent
-- runners offline and prunes history. Idempotent, touches only rows that change, and never runs
-- twice at once: a second caller returns {"skipped": true} at once instead of waiting.
create function public.agent_status_sweep() returns jsonb
  language plpgsql security definer set search_path = ''
as $$
declare
  s public.agent_status_settings;
  due record;
  n_stale integer := 0;
  n_inactive integer := 0;
  n_expired integer := 0;
  n_abandoned integer := 0;
  n_offline integer := 0;
  n_events integer := 0;
  n_commands integer := 0;
  n_cron integer := 0;
begin
  if not pg_try_advisory_xact_lock(hashtext('agent_status_sweep')) then
    return jsonb_build_object('skipped', true);
  end if;
  select * into s from public.agent_status_settings;

  -- Rows a heartbeat holds right now are skipped: that heartbeat moves the deadline anyway.
  for due in
    select id, stale_at from public.agent_status where stale_at <= now() order by stale_at for update skip locked
  loop
    perform agent_private.apply_event(due.id, 'deadline', 'sweep', 'sweep',
      p_message => format('no heartbeat since %s', to_char(due.stale_at - make_interval(
        secs => coalesce((select heartbeat_timeout_s from public.agent_status where id = due.id), s.default_heartbeat_timeout_s)),
        'YYYY-MM-DD HH24:MI:SS TZ')));
    n_stale := n_stale + 1;
  end loop;

  for due in
    select id, last_activity_at, inactive_at from public.agent_status where inactive_at <= now()
    order by inactive_at for update skip locked
  loop
    perform agent_private.apply_event(due.id, 'inactive', 'sweep', 'sweep',
      p_message => case when due.last_activity_at is null then 'no activity reported since it started: alive but possibly hung'
                        else format('no activity reported since %s: alive but possibly hung',
                                    to_char(due.last_activity_at, 'YYYY-MM-DD HH24:MI:SS TZ')) end);
    n_inactive := n_inactive + 1;
  end loop;

  -- Commands: a pending one that waited past its expiry must not start an agent hours later; a
  -- claimed one whose runner never answered is failed so the dashboard stops showing it in flight.
  with expired as (
    update public.agent_commands set status = 'expired', finished_at = now(),
      result = 'no runner claimed it before it expired'
    where status = 'pending' and expires_at <= now()
    returning agent_id, id, action
  ), logged as (
    insert into public.agent_events (agent_id, kind, source, actor, message, details)
    select agent_id, 'command_expired', 'sweep', 'sweep', format('%s expired: no runner claimed it in time', action),
           jsonb_build_object('command_id', id, 'action', action)
    from expired returning 1
  )
  select count(*) into n_expired from logged;

  with abandoned as (
    update public.agent_commands set status = 'failed', finished_at = now(),
      result = format('the runner claimed it but did not report a result within %s s', s.claimed_command_timeout_s)
    where status = 'claimed' and claimed_at <= now() - make_interval(secs => s.claimed_command_timeout_s)
    returning agent_id, id, action, claimed_by, result
  ), logged as (
    insert into public.agent_events (agent_id, runner_id, kind, source, actor, message, details)
    select agent_id, claimed_by, 'command_failed', 'sweep', 'sweep', format('%s failed: %s', action, result),
           jsonb_build_object('command_id', id, 'action', action)
    from abandoned returning 1
  )
  select count(*) into n_abandoned from logged;

  with gone as (
    update public.runners set status = 'offline'
    where status = 'online' and last_seen_at <= now() - make_interval(secs => s.runner_offline_after_s)
    returning id, host, last_seen_at
  ), logged as (
    insert into public.agent_events (runner_id, kind, source, actor, message)
    select id, 'runner_offline', 'sweep', 'sweep',
           format('runner on %s silent since %s', host, to_char(last_seen_at, 'YYYY-MM-DD HH24:MI:SS TZ'))
    from gone returning 1
  )
  select count(*) into n_offline from logged;

  -- Bounded history, in bounded batches so one run stays short after a long outage.
  delete from public.agent_events where id in (
    select id from public.agent_events where at < now() - s.event_retention order by at limit s.prune_batch);
  get diagnostics n_events = row_count;
  delete from public.agent_commands where id in (
    select id from public.agent_commands where finished_at < now() - s.command_retention
    order by finished_at limit s.prune_batch);
  get diagnostics n_commands = row_count;
  -- pg_cron logs every run forever unless someone prunes it.
  if to_regclass('cron.job_run_details') is not null then
    begin
      execute 'delete from cron.job_run_details where end_time < now() - $1' using s.cron_history_retention;
      get diagnostics n_cron = row_count;
    exception when insufficient_privilege then
      null;  -- not ours to prune on this database; pg_cron's own retention applies
    end;
  end if;

  return jsonb_build_object('skipped', false, 'stale', n_stale, 'inactive', n_inactive,
    'commands_expired', n_expired, 'commands_abandoned', n_abandoned, 'runners_offline', n_offline,
    'events_pruned', n_events, 'commands_pruned', n_commands, 'cron_runs_pruned', n_cron);
end
$$;

-------------------------------------------------------------------------------------------------------
-- Reading: the deadline applied at read time
-------------------------------------------------------------------------------------------------------

-- What the dashboard and the CLI read. status is the truth as of the database's now(): an agent past
-- its deadline reads stale at once, before the sweep (every minute) persists it. recorded_status is
-- the stored value. security_invoker: the reader's RLS applies.
create view public.agent_status_live with (security_invoker = true) as
select
  a.id,
  a.agent_name,
  case when a.stale_at <= now() then agent_private.next_status(a.status, a.status_source, 'deadline')
       else a.status end::public.agent_status_value as status,
  a.health,
  a.last_heartbeat,
  a.last_error,
  a.last_activity,
  a.updated_at,
  a.status as recorded_status,
  case when a.stale_at <= now() and a.status in ('running', 'warning') then 'sweep' else a.status_source end
    ::public.agent_event_source as status_source,
  case when a.stale_at <= now() and a.status in ('running', 'warning')
       then format('no heartbeat for %s s', floor(extract(epoch from now() - a.last_heartbeat)))
       else a.status_reason end as status_reason,
  a.status_changed_at,
  a.host,
  a.runner_id,
  r.status = 'online' and r.last_seen_at > now() - make_interval(secs => st.runner_offline_after_s) as runner_online,
  r.last_seen_at as runner_last_seen_at,
  a.pid,
  a.started_at,
  a.stopped_at,
  a.exit_code,
  a.exit_signal,
  a.last_activity_at,
  coalesce(a.heartbeat_timeout_s, st.default_heartbeat_timeout_s) as heartbeat_timeout_s,
  case when a.activity_timeout_s is not null then a.activity_timeout_s else st.default_activity_timeout_s end
    as activity_timeout_s,
  a.stale_at,
  a.inactive_at,
  a.metadata,
  now() as observed_at,
  extract(epoch from now() - a.last_heartbeat)::double precision as seconds_since_heartbeat,
  case when a.status in ('running', 'warning', 'error', 'stale') and a.started_at is not null
       then extract(epoch from now() - a.started_at)::double precision end as uptime_s
from public.agent_status a
cross join public.agent_status_settings st
left join public.runners r on r.id = a.runner_id;
