-- Issue 22: the CLI finds one agent with an index read. operator_list_agents takes p_name and p_id:
-- findAgent and agentById had called it for every agent and let PostgREST keep the one asked for,
-- which computed the live view of the whole fleet per lookup.
-- Written by hand (the signature changes); checked with
-- `npm run db:diff -- cli_finds_one_agent --version 20261207020100`.

drop function public.operator_list_agents(text, text, integer);

-- The operator's list leaves archived agents out too (it reads as the owner, past the policy).
-- In name order, p_limit agents after the name p_after (every agent when p_limit is null): the CLI
-- reads a large fleet in keyset pages within PostgREST's 1,000 rows, and each page is an index range
-- of agent_status (a filter PostgREST applied after the call made every page compute the whole list).
-- With p_name or p_id, only the agent of that name and id: the CLI's lookup of one agent, an index
-- read (it was the whole list, filtered by PostgREST afterwards).
create function public.operator_list_agents(
  p_operator_token text default null,
  p_after text default null,
  p_limit integer default null,
  p_name text default null,
  p_id integer default null
) returns setof public.agent_status_live
  language plpgsql security definer set search_path = ''
as $$
begin
  perform agent_private.require_operator(p_operator_token);
  if p_limit < 1 or p_limit > 10000 then
    perform agent_private.invalid(format('limit must be between 1 and 10000, got %s', p_limit));
  end if;
  if p_name is not null or p_id is not null then
    -- an index condition in a generic plan too (the name's or the id's index), unlike "p_name is
    -- null or agent_name = p_name"
    return query select l.* from public.agent_status_live l
      where l.id in (select a.id from public.agent_status a
                     where (a.agent_name = p_name or a.id = p_id) and a.archived_at is null
                       and (p_name is null or a.agent_name = p_name) and (p_id is null or a.id = p_id));
    return;
  end if;
  return query select l.* from public.agent_status_live l
    where l.id in (select a.id from public.agent_status a
                   where a.archived_at is null and (p_after is null or a.agent_name > p_after)
                   order by a.agent_name
                   limit p_limit)
    order by l.agent_name;
end
$$;

grant execute on function public.operator_list_agents(text, text, integer, text, integer) to anon, authenticated, service_role;
revoke all on function public.operator_list_agents(text, text, integer, text, integer) from public;
