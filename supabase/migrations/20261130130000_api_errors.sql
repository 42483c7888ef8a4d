-- Not found and conflict answered with their HTTP meaning through PostgREST. PostgREST sends SQLSTATE
-- P0002 (no_data_found) and 55000 (object_not_in_prerequisite_state) as HTTP 500, so an operator
-- asking for an agent that does not exist saw a server error. Raised through this helper, they reach
-- PostgREST callers as 404 and 409 with the same body as before (code, message, hint: clients that
-- branch on the code see no difference), and direct database callers (the edge functions' own
-- connection, psql) as the plain SQLSTATE, as before. PostgREST marks its requests with the
-- request.method setting; nothing else sets it.
create function agent_private.refuse(p_sqlstate text, p_message text, p_hint text default null) returns void
  language plpgsql stable set search_path = ''
as $$
declare
  http integer := case p_sqlstate when 'P0002' then 404 when '55000' then 409 end;
begin
  if http is not null and coalesce(current_setting('request.method', true), '') <> '' then
    raise sqlstate 'PGRST' using
      message = json_build_object('code', p_sqlstate, 'message', p_message, 'details', null, 'hint', nullif(p_hint, ''))::text,
      detail = json_build_object('status', http, 'headers', json_build_object())::text;
  end if;
  raise exception using errcode = p_sqlstate, message = p_message, hint = coalesce(p_hint, '');
end
$$;
revoke execute on function agent_private.refuse(text, text, text) from public, anon, authenticated, service_role;
