-- Least privilege. RLS is on for every table; anon reads and writes nothing. Operators (signed-in
-- users on the allowlist) read the agent tables and insert commands; agents and runners act only
-- through token-checked functions; nobody reads token hashes.

alter table public.agent_status enable row level security;
alter table public.agent_events enable row level security;
alter table public.agent_commands enable row level security;
alter table public.runners enable row level security;
alter table public.operators enable row level security;
alter table public.api_tokens enable row level security;
alter table public.agent_status_settings enable row level security;

-- Start from nothing (Supabase grants everything in public to anon and authenticated by default),
-- then grant exactly what each role needs. Only our own objects: a Supabase project may hold other
-- applications' tables and functions in public, and their grants are not ours to touch.
revoke all on public.agent_status, public.agent_events, public.agent_commands, public.runners,
  public.operators, public.api_tokens, public.agent_status_settings, public.agent_status_live
  from public, anon, authenticated;
revoke all on sequence public.agent_status_id_seq from public, anon, authenticated;
do $$
declare
  fn regprocedure;
begin
  for fn in
    select p.oid::regprocedure from pg_proc p
    where p.pronamespace = 'public'::regnamespace
      and p.proname in ('agent_heartbeat', 'agent_report', 'runner_register', 'runner_heartbeat',
        'runner_offline', 'runner_claim_commands', 'runner_complete_command', 'verify_api_token',
        'force_agent_status', 'enqueue_agent_commands', 'create_api_token', 'list_api_tokens',
        'revoke_api_token', 'add_operator', 'remove_operator', 'whoami', 'agent_status_sweep')
  loop
    execute format('revoke execute on function %s from public, anon, authenticated', fn);
  end loop;
end
$$;
revoke all on schema agent_private from public;
revoke execute on all functions in schema agent_private from public, anon, authenticated, service_role;

-- (select ...) makes Postgres evaluate the check once per query instead of once per row.
create policy operators_read on public.agent_status for select to authenticated
  using ((select agent_private.is_operator()));
create policy operators_read on public.agent_events for select to authenticated
  using ((select agent_private.is_operator()));
create policy operators_read on public.agent_commands for select to authenticated
  using ((select agent_private.is_operator()));
create policy operators_insert on public.agent_commands for insert to authenticated
  with check ((select agent_private.is_operator()));
create policy operators_read on public.runners for select to authenticated
  using ((select agent_private.is_operator()));
create policy operators_read on public.agent_status_settings for select to authenticated
  using ((select agent_private.is_operator()));
create policy operators_read on public.operators for select to authenticated
  using ((select agent_private.is_operator()));
-- api_tokens: no policy at all. Operators list tokens through list_api_tokens(), without hashes.

grant select on public.agent_status, public.agent_events, public.agent_commands, public.runners,
  public.agent_status_settings, public.operators, public.agent_status_live to authenticated;
-- The dashboard sends a command by inserting agent_id and action; the trigger fills in the rest.
grant insert (agent_id, action) on public.agent_commands to authenticated;

-- The policies and the live view call these as the reading user.
grant usage on schema agent_private to authenticated, service_role;
grant execute on function agent_private.is_operator() to authenticated, service_role;
grant execute on function agent_private.next_status(public.agent_status_value, public.agent_event_source, text, public.agent_status_value)
  to authenticated, service_role;

-- service_role is the administrator (BYPASSRLS): everything but the token hashes.
grant all on public.agent_status, public.agent_events, public.agent_commands, public.runners,
  public.agent_status_settings, public.operators to service_role;
grant select on public.agent_status_live to service_role;
grant usage on all sequences in schema public to service_role;
revoke all on public.api_tokens from service_role;
grant select (id, kind, label, token_prefix, agent_id, host, operator_id, created_at, created_by,
              revoked_at, last_used_at) on public.api_tokens to service_role;

-- Machine functions: callable with the publishable (anon) key, because they check their own token.
grant execute on function
  public.agent_heartbeat(text, text, text, integer, text, integer),
  public.agent_report(text, text, text, text, integer, text, integer, integer, text, jsonb),
  public.runner_register(text, jsonb, text, integer),
  public.runner_heartbeat(text, jsonb),
  public.runner_offline(text),
  public.runner_claim_commands(text, integer),
  public.runner_complete_command(text, bigint, boolean, text),
  public.verify_api_token(text)
  to anon, authenticated, service_role;

-- Operator functions: signed-in operators, operator tokens (passed as p_operator_token, so anon may
-- call them) and the service role. Each checks who is asking before doing anything.
grant execute on function
  public.force_agent_status(text, text, integer, text, text),
  public.enqueue_agent_commands(text, text, text, text),
  public.create_api_token(text, text, text, text, text, text),
  public.list_api_tokens(text),
  public.revoke_api_token(text, text),
  public.add_operator(text, text),
  public.remove_operator(text, text)
  to anon, authenticated, service_role;
grant execute on function public.whoami() to authenticated, service_role;

-- The sweep belongs to pg_cron (as the database owner) and to the service role.
grant execute on function public.agent_status_sweep() to service_role;

-- Realtime where the project has it (a hint for dashboards and runners; polling stays the truth).
do $$
declare
  t text;
begin
  if exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    foreach t in array array['agent_status', 'agent_commands', 'agent_events', 'runners'] loop
      if not exists (select 1 from pg_publication_tables
                     where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = t) then
        execute format('alter publication supabase_realtime add table public.%I', t);
      end if;
    end loop;
  end if;
end
$$;
