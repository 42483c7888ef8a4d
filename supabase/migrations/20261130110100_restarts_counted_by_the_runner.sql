-- Two corrections to 20261130110000_truth_at_the_edges.sql, which is applied and stays as it is.
--
-- 1. Only the runner's start is a restart. An SDK agent under a runner reports its own "started"
--    from inside the process the runner just restarted; that counted a second restart each cycle.
--    The change is made to the current apply_event by replacing that one condition (as
--    20261130140000 does for the sweep), so a later redefinition elsewhere keeps its own changes.
-- 2. The live view counts each agent's warnings and errors of the last day: an index holding only
--    those rows.
do $migration$
declare
  every_start constant text := 'elsif p_event in (''started'', ''adopted'') and old.unstable_since is not null then';
  runner_start constant text := 'elsif p_event in (''started'', ''adopted'') and old.unstable_since is not null and p_source = ''runner'' then';
  definition text := pg_get_functiondef(
    'agent_private.apply_event(integer, text, public.agent_event_source, text, public.agent_status_value, integer, text, text, integer, integer, text, jsonb, timestamptz, integer)'::regprocedure);
  patched text := replace(definition, every_start, runner_start);
begin
  -- nothing replaced and not patched already: apply_event changed shape, and this must not pass silently
  if patched = definition and strpos(definition, runner_start) = 0 then
    raise exception 'agent_private.apply_event no longer counts restarts the way this migration expects'
      using hint = 'Count a restart only for a start whose p_source is runner, by hand.';
  end if;
  execute patched;
end
$migration$;

create index agent_events_problems_idx on public.agent_events (agent_id, at)
  where kind in ('warning', 'inactive', 'error', 'crashed');
