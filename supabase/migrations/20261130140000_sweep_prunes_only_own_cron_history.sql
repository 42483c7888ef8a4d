-- The sweep pruned cron.job_run_details for every job in the database; on a shared project that wipes
-- other applications' pg_cron history. It now prunes only the runs of this project's own jobs (named
-- agent-status-*: the sweep, the alert dispatcher).
--
-- The change is made to whatever definition of public.agent_status_sweep() is current, by replacing
-- that one statement, so that redefinitions of the sweep in other migrations keep their own changes.
-- A later redefinition must keep the jobname condition: tests/db/cron.test.ts checks it.
do $migration$
declare
  definition text := pg_get_functiondef('public.agent_status_sweep()'::regprocedure);
  everything constant text := 'delete from cron.job_run_details where end_time < now() - $1';
  -- inside the sweep this text is itself a quoted string, hence the doubled quotes around the pattern
  ours constant text := 'delete from cron.job_run_details where end_time < now() - $1'
    || ' and jobid in (select jobid from cron.job where jobname like ''''agent-status-%'''')';
begin
  if position(ours in definition) > 0 then
    return;  -- already scoped
  end if;
  if position(everything in definition) = 0 then
    raise exception 'agent_status_sweep() no longer prunes cron.job_run_details the way this migration expects'
      using hint = 'Scope its cron history pruning to jobs named agent-status-% by hand.';
  end if;
  execute replace(definition, everything, ours);
end
$migration$;
