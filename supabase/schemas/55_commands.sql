-- The command queue: insert triggers (permission check, NOTIFY / Realtime hint), enqueue, claim, complete.
--
-- supabase/schemas/ is the current definition of every SQL object, applied in file-name order
-- (supabase/README.md). Change it here, then generate the migration: npm run db:diff -- <name>.

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

create function public.runner_claim_commands(p_token text, p_limit integer default 10, p_instance text default null)
  returns table (id bigint, agent_id integer, agent_name text, action text, requested_by text,
                 created_at timestamptz, expires_at timestamptz)
  language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
declare
  r public.runners := agent_private.authorize_lease(p_token, p_instance);
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

-- Permission first: a caller who may not send commands gets the same refusal for every agent id,
-- existing or not, before anything about the agent is read. enqueue_agent_commands checks the
-- operator itself and says so through agent_status.actor (a transaction setting no API caller can set).
create or replace function agent_private.agent_commands_before_insert() returns trigger
  language plpgsql security definer set search_path = ''
as $$
declare
  a public.agent_status;
  st public.agent_status_settings;
begin
  if coalesce(current_setting('agent_status.actor', true), '') = '' then
    perform agent_private.require_operator(null);
  end if;
  select * into a from public.agent_status s where s.id = new.agent_id;
  if a.agent_name is null then
    perform agent_private.refuse('P0002', format('no agent with id %s', new.agent_id),
      'List agents with: agent-status list');
  end if;
  select * into st from public.agent_status_settings;
  new.status := 'pending';
  new.requested_by := agent_private.command_actor();
  new.created_at := now();
  new.expires_at := now() + make_interval(secs => st.command_ttl_s);
  new.claimed_at := null;
  new.claimed_by := null;
  new.finished_at := null;
  new.result := null;
  -- No runner: a stop or restart waits for the agent's next heartbeat (agent_state_json delivers it),
  -- so it lives at least as long as the agent's heartbeat timeout. Only a running process can be
  -- reached that way: nothing can start an agent no runner manages.
  new.via_heartbeat := a.runner_id is null;
  if new.via_heartbeat then
    if new.action = 'start' or (new.action = 'restart' and a.status = 'stopped') then
      perform agent_private.refuse('55000', format('no runner manages agent %L, so nothing can start it', a.agent_name),
        'Start it by hand (or add it to the config file of the runner on its host); stop and restart reach a running agent through its heartbeat.');
    end if;
    new.expires_at := greatest(new.expires_at, now() + make_interval(secs => (agent_private.heartbeat_timeout(a, st)).timeout_s));
    if new.action = 'stop' and a.status = 'stopped' then
      new.status := 'succeeded';
      new.finished_at := now();
      new.result := 'already stopped';
    end if;
  end if;
  return new;
end
$$;

create or replace function public.runner_complete_command(
  p_token text,
  p_command_id bigint,
  p_succeeded boolean,
  p_result text default null,
  p_instance text default null
) returns public.agent_commands
  language plpgsql security definer set search_path = ''
as $$
declare
  r public.runners := agent_private.authorize_lease(p_token, p_instance);
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
    perform agent_private.refuse('55000', format('command %s is not claimed by the runner on %s', p_command_id, r.host),
      'It may have been failed by the sweep after waiting too long; claim new commands instead.');
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

-- A command request never waits long on a lock. /functions/v1/command once waited 15 s on its
-- database call (the agent's row was locked) and its client, retrying, queued a duplicate. The
-- function now gives up after 5 s, and the database gives up first: a lock wait inside
-- enqueue_agent_commands ends after 4 s (55P03), so a request answered 503 was not applied.
create or replace function public.enqueue_agent_commands(
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
  v_request text := p_action || ' ' || case
    when p_agent_name is not null then format('agent %L', p_agent_name)
    when p_host is not null then format('host %L', p_host)
    else 'all agents' end;
  v_first_request text;
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
  -- Waiting on a lock (an agent row a long transaction holds, the same key's first request) ends
  -- inside anon's 3 s statement limit on Supabase and before the caller's own 5 s timeout: the
  -- caller gets a refusal it can retry (55P03), and nothing is queued behind its back afterwards.
  perform set_config('lock_timeout', '2s', true);

  if p_idempotency_key is not null then
    -- one requester's requests with one key run one at a time, so a retry racing its original waits
    -- for it and then finds its commands
    perform pg_advisory_xact_lock(hashtext(who || chr(10) || p_idempotency_key));
    if exists (select 1 from public.agent_commands c where c.requested_by = who and c.idempotency_key = p_idempotency_key) then
      -- (commands queued before idempotency_request existed say nothing: taken as the same request)
      select c.idempotency_request into v_first_request from public.agent_commands c
        where c.requested_by = who and c.idempotency_key = p_idempotency_key order by c.id limit 1;
      if v_first_request is not null and v_first_request <> left(v_request, 300) then
        perform agent_private.refuse('P0422',
          format('idempotency key %L was used for %s; this request is %s', p_idempotency_key, v_first_request, v_request),
          'Send a new key with a new request, and the same key only to retry the same request.');
      end if;
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
    return query insert into public.agent_commands (agent_id, action, idempotency_key, idempotency_request)
      values (v_agent_id, p_action, p_idempotency_key, case when p_idempotency_key is not null then left(v_request, 300) end)
      returning *;
  else
    if p_host is not null and not exists (select 1 from public.runners where host = p_host) then
      perform agent_private.refuse('P0002', format('no runner has registered for host %L', p_host),
      'List runners in the dashboard, or check the host name in the runner''s config.');
    end if;
    return query insert into public.agent_commands (agent_id, action, idempotency_key, idempotency_request)
      select a.id, p_action, p_idempotency_key, case when p_idempotency_key is not null then left(v_request, 300) end
      from public.agent_status a join public.runners r on r.id = a.runner_id
      where p_host is null or r.host = p_host
      order by a.agent_name
      returning *;
  end if;
end
$$;

create trigger agent_commands_after_insert
  after insert on public.agent_commands
  for each row
  execute function agent_private.agent_commands_after_insert();

create trigger agent_commands_before_insert
  before insert on public.agent_commands
  for each row
  execute function agent_private.agent_commands_before_insert();
