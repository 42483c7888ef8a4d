-- Operators can remove an agent and keep its history. There was no delete at all (three calls with a
-- runner token created 1,500 agent rows nobody could remove), and a delete would cascade to the
-- agent's events and commands. Archiving instead:
--   * hides the agent from every list (the live view through a restrictive RLS policy, the token
--     readers through their own filter) while agent_events keeps its history under its id;
--   * frees its name (the row is renamed "<name> [archived <id>]"), so a new agent may take it;
--   * revokes its agent tokens, detaches it from its runner, clears its deadlines (the sweep leaves
--     it alone) and fails its unfinished commands;
--   * refuses an agent that is alive: stop it first, or it would keep reporting into a hidden row.

alter table public.agent_status add column archived_at timestamptz;
create index agent_status_archived_idx on public.agent_status (archived_at) where archived_at is not null;

create policy hide_archived on public.agent_status as restrictive for select to authenticated
  using (archived_at is null);

create function public.archive_agent(p_agent_name text, p_operator_token text default null)
  returns jsonb
  language plpgsql security definer set search_path = ''
as $$
declare
  who text := agent_private.require_operator(p_operator_token);
  a public.agent_status;
  v_name text;
  n_tokens integer;
  n_commands integer;
begin
  select * into a from public.agent_status
  where agent_name = agent_private.check_agent_name(p_agent_name) and archived_at is null
  for update;
  if a.id is null then
    perform agent_private.refuse('P0002', format('no agent named %L', p_agent_name),
      'List agents with: agent-status list');
  end if;
  if a.status in ('running', 'warning') and a.stale_at > now() then
    perform agent_private.refuse('55000', format('agent %L is %s; stop it before archiving it', a.agent_name, a.status),
      format('agent-status stop %s, then archive it (and remove it from its runner''s config).', a.agent_name));
  end if;

  v_name := format('%s [archived %s]', left(a.agent_name, 100 - char_length(format(' [archived %s]', a.id))), a.id);
  update public.agent_status set
    archived_at = now(), agent_name = v_name, runner_id = null, stale_at = null, inactive_at = null, updated_at = now()
  where id = a.id;
  update public.api_tokens set revoked_at = now() where agent_id = a.id and revoked_at is null;
  get diagnostics n_tokens = row_count;
  update public.agent_commands set status = 'failed', finished_at = now(), result = format('the agent was archived by %s', who)
  where agent_id = a.id and status in ('pending', 'claimed');
  get diagnostics n_commands = row_count;
  insert into public.agent_events (agent_id, kind, source, actor, from_status, to_status, message, details)
  values (a.id, 'archived', 'operator', who, a.status, a.status, format('%s archived by %s', a.agent_name, who),
          jsonb_build_object('agent_name', a.agent_name, 'archived_as', v_name, 'tokens_revoked', n_tokens,
                             'commands_failed', n_commands));
  return jsonb_build_object('agent_id', a.id, 'agent_name', a.agent_name, 'archived_as', v_name,
                            'tokens_revoked', n_tokens, 'commands_failed', n_commands);
end
$$;

-- The operator's list leaves archived agents out too (it reads as the owner, past the policy).
create or replace function public.operator_list_agents(p_operator_token text default null)
  returns setof public.agent_status_live
  language plpgsql security definer set search_path = ''
as $$
begin
  perform agent_private.require_operator(p_operator_token);
  return query select l.* from public.agent_status_live l
    join public.agent_status a on a.id = l.id
    where a.archived_at is null
    order by l.agent_name;
end
$$;

revoke execute on function public.archive_agent(text, text) from public;
grant execute on function public.archive_agent(text, text) to anon, authenticated, service_role;
