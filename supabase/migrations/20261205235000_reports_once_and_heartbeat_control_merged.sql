-- Issues 20 and 23 merged: agent_report takes a report id (a report sent again is applied once) and
-- completes a stop or restart that travelled in a heartbeat's answer; the sweep does both branches'
-- work. Issue 23's migration redefined the report function with its old signature, leaving two
-- overloads, so the old one is dropped here. The text of both functions is supabase/schemas/'s.

drop function public.agent_report(text, text, text, text, integer, text, integer, integer, text, jsonb, timestamptz, integer);

create or replace function public.agent_report(
  p_token text,
  p_agent_name text,
  p_event text,
  p_message text default null,
  p_health integer default null,
  p_activity text default null,
  p_pid integer default null,
  p_exit_code integer default null,
  p_exit_signal text default null,
  p_details jsonb default null,
  p_at timestamptz default null,
  p_heartbeat_interval_s integer default null,
  p_report_id uuid default null
) returns public.agent_status
  language plpgsql security definer set search_path = ''
as $$
declare
  who record;
  agent_events constant text[] := array['started', 'stopped', 'running', 'warning', 'error', 'activity', 'heartbeat'];
  runner_events constant text[] := array['adopted', 'exited', 'crashed', 'terminated', 'stable'];
  v_agent public.agent_status;
begin
  if p_event is null or not (p_event = any (agent_events || runner_events)) then
    perform agent_private.invalid(format('event must be one of %s, got %s',
      array_to_string(agent_events || runner_events, ', '), coalesce(quote_literal(p_event), 'nothing')));
  end if;
  perform agent_private.check_health(p_health);
  perform agent_private.check_text('message', p_message, 4000);
  perform agent_private.check_text('activity', p_activity, 1000);
  if p_details is not null and (jsonb_typeof(p_details) <> 'object' or pg_column_size(p_details) > 8192) then
    perform agent_private.invalid('details must be a JSON object of at most 8 kB');
  end if;
  -- (parenthesised: PL/pgSQL ends an IF condition at the first THEN outside parentheses)
  if p_details -> 'restart_in_s' is not null and (case when jsonb_typeof(p_details -> 'restart_in_s') = 'number'
     then (p_details ->> 'restart_in_s')::numeric not between 0 and 86400 else true end) then
    perform agent_private.invalid('details.restart_in_s must be a number of seconds between 0 and 86400');
  end if;
  if p_exit_signal is not null and p_exit_signal !~ '^SIG[A-Z0-9]{1,12}$' then
    perform agent_private.invalid(format('exit_signal must be a signal name like SIGTERM, got %L', p_exit_signal));
  end if;
  if p_event in ('warning', 'error') and nullif(btrim(p_message), '') is null then
    perform agent_private.invalid(format('a %s report needs a message saying what is wrong', p_event));
  end if;
  if p_event = 'activity' and p_activity is null then
    perform agent_private.invalid('an activity report needs activity: what the agent is doing now');
  end if;
  if p_heartbeat_interval_s is not null and (p_heartbeat_interval_s < 1 or p_heartbeat_interval_s > 86400) then
    perform agent_private.invalid(format('heartbeat_interval_s must be between 1 and 86400 seconds, got %s', p_heartbeat_interval_s));
  end if;

  who := agent_private.authorize_agent(p_token, p_agent_name);
  if p_event = any (runner_events) and who.source <> 'runner' then
    perform agent_private.invalid(format('%s is reported by the runner that supervises the process', p_event));
  end if;
  -- A report sent again (its sender never got the first answer) changes nothing the second time. A
  -- retry racing its original waits on the key, then finds it.
  if p_report_id is not null then
    insert into agent_private.applied_reports (agent_id, report_id) values (who.agent_id, p_report_id) on conflict do nothing;
    if not found then
      return (select a from public.agent_status a where a.id = who.agent_id);
    end if;
  end if;

  v_agent := agent_private.apply_event(who.agent_id, p_event, who.source, who.actor,
    p_health => p_health, p_message => p_message, p_activity => p_activity, p_pid => p_pid,
    p_exit_code => p_exit_code, p_exit_signal => p_exit_signal, p_details => p_details, p_at => p_at,
    p_heartbeat_interval_s => p_heartbeat_interval_s);
  if p_event in ('stopped', 'started') then
    perform agent_private.complete_delivered_commands(who.agent_id, p_event);
  end if;
  return v_agent;
end
$$;

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
