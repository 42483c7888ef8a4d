-- The refusals of the operator and runner functions that came before agent_private.refuse
-- (20261130130000_api_errors.sql), raised through it: not found is 404 and a conflict 409 through
-- PostgREST (they were 500), the same SQLSTATE for direct callers. Bodies otherwise unchanged.

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

create or replace function public.force_agent_status(
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
    perform agent_private.refuse('P0002', format('no agent named %L', p_agent_name),
      'List agents with: agent-status list');
  end if;
  return agent_private.apply_event(v_agent_id, 'force', 'operator', who, p_forced => v_status,
    p_health => p_health, p_message => coalesce(p_reason, format('forced to %s by %s', v_status, who)));
end
$$;

create or replace function public.runner_complete_command(
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

create or replace function public.operator_agent_events(
  p_agent_name text default null,
  p_after_id bigint default 0,
  p_limit integer default 100,
  p_since timestamptz default null,
  p_operator_token text default null
) returns table (id bigint, agent_name text, at timestamptz, kind text, source text, actor text,
                 from_status text, to_status text, health integer, message text, details jsonb)
  language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
begin
  perform agent_private.require_operator(p_operator_token);
  if p_limit is null or p_limit < 1 or p_limit > 1000 then
    perform agent_private.invalid(format('limit must be between 1 and 1000, got %s', p_limit));
  end if;
  if p_agent_name is not null and not exists (select 1 from public.agent_status where agent_name = p_agent_name) then
    perform agent_private.refuse('P0002', format('no agent named %L', p_agent_name),
      'List agents with: agent-status list');
  end if;
  return query
    select e.id, a.agent_name, e.at, e.kind, e.source::text, e.actor, e.from_status::text, e.to_status::text,
           e.health, e.message, e.details
    from public.agent_events e
    left join public.agent_status a on a.id = e.agent_id
    where e.id > coalesce(p_after_id, 0) and (p_since is null or e.at >= p_since)
      and (p_agent_name is null or a.agent_name = p_agent_name)
    order by e.id
    limit p_limit;
end
$$;
