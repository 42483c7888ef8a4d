-- Honest attribution and lifetimes for operators' tokens and commands:
--   * an operator token is made only for oneself (an operator minted one for another operator's email
--     and acted as them: requested_by and the event's actor named the other person); the service role
--     (an administrator) may still make one for anybody;
--   * tokens may expire (create_api_token(p_expires_in)); an expired token is refused like a revoked
--     one, and list_api_tokens shows the expiry beside the last use;
--   * the command insert trigger checks permission before it reads the agent, so a signed-in
--     non-operator inserting into agent_commands learns nothing (it learnt agent names from the
--     trigger's error: 31 names for ids 1-39);
--   * enqueue_agent_commands takes an idempotency key: a client retrying a request whose answer it
--     lost (a timeout) gets the commands of the first request back instead of queuing them again.

alter table public.api_tokens add column expires_at timestamptz;
alter table public.api_tokens add constraint api_tokens_expires_after_creation check (expires_at > created_at);

alter table public.agent_commands add column idempotency_key text check (char_length(idempotency_key) between 1 and 200);
-- per requester: two operators' keys never collide; per agent: one key covers a host's or all agents' commands
create unique index agent_commands_idempotency_idx on public.agent_commands (requested_by, idempotency_key, agent_id)
  where idempotency_key is not null;

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

drop function public.create_api_token(text, text, text, text, text, text);
-- p_operator_email may be left out for an operator token: it is then the caller's own.
create function public.create_api_token(
  p_kind text,
  p_label text default null,
  p_agent_name text default null,
  p_host text default null,
  p_operator_email text default null,
  p_operator_token text default null,
  p_expires_in interval default null
) returns table (id uuid, kind text, label text, token text, token_prefix text, agent_name text, host text,
                 operator_email text, expires_at timestamptz)
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
  insert into public.api_tokens (kind, label, token_hash, token_prefix, agent_id, host, operator_id, created_by, expires_at)
  values (p_kind, v_label, agent_private.hash_token(v_token), left(v_token, 10), v_agent_id,
          case when p_kind = 'runner' then p_host end, v_operator_id, who, now() + p_expires_in)
  returning * into v_row;

  return query select v_row.id, v_row.kind, v_row.label, v_token, v_row.token_prefix,
    p_agent_name, v_row.host, case when p_kind = 'operator' then lower(v_email) end, v_row.expires_at;
end
$$;

drop function public.list_api_tokens(text);
create function public.list_api_tokens(p_operator_token text default null)
  returns table (id uuid, kind text, label text, token_prefix text, agent_name text, host text,
                 operator_email text, created_at timestamptz, created_by text, revoked_at timestamptz,
                 last_used_at timestamptz, expires_at timestamptz)
  language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
begin
  perform agent_private.require_operator(p_operator_token);
  return query
    select t.id, t.kind, t.label, t.token_prefix, a.agent_name, t.host, o.email, t.created_at,
           t.created_by, t.revoked_at, t.last_used_at, t.expires_at
    from public.api_tokens t
    left join public.agent_status a on a.id = t.agent_id
    left join public.operators o on o.id = t.operator_id
    order by t.created_at;
end
$$;

-- Permission first: a caller who may not send commands gets the same refusal for every agent id,
-- existing or not, before anything about the agent is read. enqueue_agent_commands checks the
-- operator itself and says so through agent_status.actor (a transaction setting no API caller can set).
create or replace function agent_private.agent_commands_before_insert() returns trigger
  language plpgsql security definer set search_path = ''
as $$
declare
  a record;
begin
  if coalesce(current_setting('agent_status.actor', true), '') = '' then
    perform agent_private.require_operator(null);
  end if;
  select s.agent_name, s.runner_id into a from public.agent_status s where s.id = new.agent_id;
  if a.agent_name is null then
    perform agent_private.refuse('P0002', format('no agent with id %s', new.agent_id),
      'List agents with: agent-status list');
  end if;
  if a.runner_id is null then
    perform agent_private.refuse('55000', format('no runner manages agent %L, so nothing can %s it', a.agent_name, new.action),
      'Add the agent to the config file of the runner on its host, or start it by hand.');
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

drop function public.enqueue_agent_commands(text, text, text, text);
-- p_idempotency_key: the same key from the same requester returns the commands it made the first
-- time instead of queuing new ones.
create function public.enqueue_agent_commands(
  p_action text,
  p_agent_name text default null,
  p_host text default null,
  p_operator_token text default null,
  p_idempotency_key text default null
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
  if p_idempotency_key is not null and (char_length(p_idempotency_key) not between 1 and 200 or p_idempotency_key ~ '[[:cntrl:]]') then
    perform agent_private.invalid('idempotency key must be 1 to 200 characters without control characters');
  end if;
  perform set_config('agent_status.actor', who, true);

  if p_idempotency_key is not null then
    -- one requester's requests with one key run one at a time, so a retry racing its original waits
    -- for it and then finds its commands
    perform pg_advisory_xact_lock(hashtext(who || chr(10) || p_idempotency_key));
    if exists (select 1 from public.agent_commands c where c.requested_by = who and c.idempotency_key = p_idempotency_key) then
      return query select * from public.agent_commands c
        where c.requested_by = who and c.idempotency_key = p_idempotency_key order by c.id;
      return;
    end if;
  end if;

  if p_agent_name is not null then
    select id into v_agent_id from public.agent_status where agent_name = agent_private.check_agent_name(p_agent_name);
    if v_agent_id is null then
      perform agent_private.refuse('P0002', format('no agent named %L', p_agent_name),
      'List agents with: agent-status list');
    end if;
    return query insert into public.agent_commands (agent_id, action, idempotency_key)
      values (v_agent_id, p_action, p_idempotency_key) returning *;
  else
    if p_host is not null and not exists (select 1 from public.runners where host = p_host) then
      perform agent_private.refuse('P0002', format('no runner has registered for host %L', p_host),
      'List runners in the dashboard, or check the host name in the runner''s config.');
    end if;
    return query insert into public.agent_commands (agent_id, action, idempotency_key)
      select a.id, p_action, p_idempotency_key from public.agent_status a join public.runners r on r.id = a.runner_id
      where p_host is null or r.host = p_host
      order by a.agent_name
      returning *;
  end if;
end
$$;

revoke execute on function public.create_api_token(text, text, text, text, text, text, interval), public.list_api_tokens(text),
  public.enqueue_agent_commands(text, text, text, text, text) from public;
grant execute on function public.create_api_token(text, text, text, text, text, text, interval), public.list_api_tokens(text),
  public.enqueue_agent_commands(text, text, text, text, text) to anon, authenticated, service_role;
-- service_role reads token metadata (never hashes): the new column too
grant select (expires_at) on public.api_tokens to service_role;
