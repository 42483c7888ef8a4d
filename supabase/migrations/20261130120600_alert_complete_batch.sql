-- The dispatcher records a claimed batch's attempts in one call instead of one transaction per
-- delivery: 1,000 notices were 1,000 commits (each an fsync) on top of 1,000 HTTP requests.
-- p_results: [{"id", "attempt", "ok", "http_status", "response", "error", "duration_ms"}, ...].
-- Answers how each one settled, in order (delivered, pending, dead, or stale for a lost lease).
create function public.alert_complete_batch(p_results jsonb, p_dispatcher text default null) returns text[]
  language plpgsql security definer set search_path = ''
as $$
declare
  r jsonb;
  settled text[] := '{}';
begin
  perform agent_private.require_service();
  if jsonb_typeof(p_results) is distinct from 'array' or jsonb_array_length(p_results) > 500 then
    perform agent_private.invalid('results must be a JSON array of at most 500 attempts');
  end if;
  for r in select value from jsonb_array_elements(p_results) loop
    settled := settled || public.alert_complete((r ->> 'id')::bigint, (r ->> 'attempt')::integer, (r ->> 'ok')::boolean,
      (r ->> 'http_status')::integer, r ->> 'response', r ->> 'error', (r ->> 'duration_ms')::integer, p_dispatcher);
  end loop;
  return settled;
end
$$;
revoke execute on function public.alert_complete_batch(jsonb, text) from public, anon, authenticated;
grant execute on function public.alert_complete_batch(jsonb, text) to service_role;
