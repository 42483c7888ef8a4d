-- The sweep: stale and inactive agents, expired and abandoned commands, silent runners, pruning.
--
-- supabase/schemas/ is the current definition of every SQL object, applied in file-name order
-- (supabase/README.md). Change it here, then generate the migration: npm run db:diff -- <name>.

-- Persists what the deadlines already say, expires commands that waited too long, marks silent
-- runners offline (after two of their own heartbeat intervals) and prunes history, including the
-- pg_cron run history of this project's own jobs only (agent-status-*: other applications' history
-- on a shared project is theirs; tests/db/cron.test.ts checks it). Idempotent, touches only rows that
-- change, and never runs twice at once: a second caller returns {"skipped": true} at once instead of
-- waiting.
create or replace function public.agent_status_sweep()
  returns jsonb
  language plpgsql
  security definer
  set search_path to ''
  AS $function$
declare
  s public.agent_status_settings;
  due record;
  n_stale integer := 0;
  n_inactive integer := 0;
  n_expired integer := 0;
  n_abandoned integer := 0;
  n_offline integer := 0;
  n_events integer := 0;
  n_commands integer := 0;
  n_cron integer := 0;
  n_report_ids integer := 0;
begin
  if not pg_try_advisory_xact_lock(hashtext('agent_status_sweep')) then
    return jsonb_build_object('skipped', true);
  end if;
  select * into s from public.agent_status_settings;

  -- Rows a heartbeat holds right now are skipped: that heartbeat moves the deadline anyway.
  for due in
    select id, last_heartbeat from public.agent_status where stale_at <= now() order by stale_at for update skip locked
  loop
    perform agent_private.apply_event(due.id, 'deadline', 'sweep', 'sweep',
      p_message => case when due.last_heartbeat is null then 'no heartbeat since it started'
                        else format('no heartbeat since %s', to_char(due.last_heartbeat, 'YYYY-MM-DD HH24:MI:SS TZ')) end);
    n_stale := n_stale + 1;
  end loop;

  for due in
    select id, last_activity_at, inactive_at from public.agent_status where inactive_at <= now()
    order by inactive_at for update skip locked
  loop
    perform agent_private.apply_event(due.id, 'inactive', 'sweep', 'sweep',
      p_message => case when due.last_activity_at is null then 'no activity reported since it started: alive but possibly hung'
                        else format('no activity reported since %s: alive but possibly hung',
                                    to_char(due.last_activity_at, 'YYYY-MM-DD HH24:MI:SS TZ')) end);
    n_inactive := n_inactive + 1;
  end loop;

  with expired as (
    update public.agent_commands set status = 'expired', finished_at = now(),
      result = case when via_heartbeat then 'the agent sent no heartbeat or report to carry it before it expired'
                    else 'no runner claimed it before it expired' end
    where status = 'pending' and expires_at <= now()
    returning agent_id, id, action, via_heartbeat
  ), logged as (
    insert into public.agent_events (agent_id, kind, source, actor, message, details)
    select agent_id, 'command_expired', 'sweep', 'sweep',
           format('%s expired: %s', action, case when via_heartbeat then 'the agent sent no heartbeat to carry it in time'
                                                 else 'no runner claimed it in time' end),
           jsonb_build_object('command_id', id, 'action', action)
    from expired returning 1
  )
  select count(*) into n_expired from logged;

  with abandoned as (
    update public.agent_commands set status = 'failed', finished_at = now(),
      result = case when via_heartbeat
                    then format('the agent got it with a heartbeat answer but did not report %s within %s s',
                                case action when 'stop' then 'stopped' else 'started' end, s.claimed_command_timeout_s)
                    else format('the runner claimed it but did not report a result within %s s', s.claimed_command_timeout_s) end
    where status = 'claimed' and claimed_at <= now() - make_interval(secs => s.claimed_command_timeout_s)
    returning agent_id, id, action, claimed_by, result
  ), logged as (
    insert into public.agent_events (agent_id, runner_id, kind, source, actor, message, details)
    select agent_id, claimed_by, 'command_failed', 'sweep', 'sweep', format('%s failed: %s', action, result),
           jsonb_build_object('command_id', id, 'action', action)
    from abandoned returning 1
  )
  select count(*) into n_abandoned from logged;

  -- A runner silent past two of its heartbeat intervals is persisted offline: one runner_offline
  -- event (source sweep, details.silent_s) that alerts fold its agents under.
  with gone as (
    update public.runners r set status = 'offline'
    where r.status = 'online' and r.last_seen_at <= now() - agent_private.runner_silent_after(r, s)
    returning r.id, r.host, r.last_seen_at
  ), logged as (
    insert into public.agent_events (runner_id, kind, source, actor, message, details)
    select id, 'runner_offline', 'sweep', 'sweep',
           format('runner on %s silent since %s', host, to_char(last_seen_at, 'YYYY-MM-DD HH24:MI:SS TZ')),
           jsonb_build_object('silent_s', floor(extract(epoch from now() - last_seen_at)), 'last_seen_at', last_seen_at)
    from gone returning 1
  )
  select count(*) into n_offline from logged;

  delete from public.agent_events where id in (
    select id from public.agent_events where at < now() - s.event_retention order by at limit s.prune_batch);
  get diagnostics n_events = row_count;
  delete from public.agent_commands where id in (
    select id from public.agent_commands where finished_at < now() - s.command_retention
    order by finished_at limit s.prune_batch);
  get diagnostics n_commands = row_count;
  delete from agent_private.applied_reports where (agent_id, report_id) in (
    select agent_id, report_id from agent_private.applied_reports where applied_at < now() - interval '1 day'
    order by applied_at limit s.prune_batch);
  get diagnostics n_report_ids = row_count;
  if to_regclass('cron.job_run_details') is not null then
    begin
      execute 'delete from cron.job_run_details where end_time < now() - $1 and jobid in (select jobid from cron.job where jobname like ''agent-status-%'')' using s.cron_history_retention;
      get diagnostics n_cron = row_count;
    exception when insufficient_privilege then
      null;
    end;
  end if;

  return jsonb_build_object('skipped', false, 'stale', n_stale, 'inactive', n_inactive,
    'commands_expired', n_expired, 'commands_abandoned', n_abandoned, 'runners_offline', n_offline,
    'events_pruned', n_events, 'commands_pruned', n_commands, 'cron_runs_pruned', n_cron,
    'report_ids_pruned', n_report_ids);
end
$function$;
