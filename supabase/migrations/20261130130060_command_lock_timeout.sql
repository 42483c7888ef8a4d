-- A command request never waits long on a lock. /functions/v1/command once waited 15 s on its
-- database call (the agent's row was locked) and its client, retrying, queued a duplicate. The
-- function now gives up after 5 s, and the database gives up first: a lock wait inside
-- enqueue_agent_commands ends after 4 s (55P03), so a request answered 503 was not applied. Body
-- otherwise as in 20261130130020_operator_least_privilege.sql.

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
  -- before the caller's own 5 s timeout: the caller gets a refusal it can retry, and nothing is
  -- queued behind its back afterwards.
  perform set_config('lock_timeout', '4s', true);

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
