-------------------------------------------------------------------------------------------------------
-- The sweep (pg_cron every minute; the local stack on a timer where pg_cron is missing)
-------------------------------------------------------------------------------------------------------

-- Persists what the deadlines already say, expires commands that waited too long, marks silent
-- runners offline and prunes history. Idempotent, touches only rows that change, and never runs
-- twice at once: a second caller returns {"skipped": true} at once instead of waiting.
create function public.agent_status_sweep() returns jsonb
  language plpgsql security definer set search_path = ''
as $$
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
begin
  if not pg_try_advisory_xact_lock(hashtext('agent_status_sweep')) then
    return jsonb_build_object('skipped', true);
  end if;
  select * into s from public.agent_status_settings;

  -- Rows a heartbeat holds right now are skipped: that heartbeat moves the deadline anyway.
  for due in
    select id, stale_at from public.agent_status where stale_at <= now() order by stale_at for update skip locked
  loop
    perform agent_private.apply_event(due.id, 'deadline', 'sweep', 'sweep',
      p_message => format('no heartbeat since %s', to_char(due.stale_at - make_interval(
        secs => coalesce((select heartbeat_timeout_s from public.agent_status where id = due.id), s.default_heartbeat_timeout_s)),
        'YYYY-MM-DD HH24:MI:SS TZ')));
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

  -- Commands: a pending one that waited past its expiry must not start an agent hours later; a
  -- claimed one whose runner never answered is failed so the dashboard stops showing it in flight.
  with expired as (
    update public.agent_commands set status = 'expired', finished_at = now(),
      result = 'no runner claimed it before it expired'
    where status = 'pending' and expires_at <= now()
    returning agent_id, id, action
  ), logged as (
    insert into public.agent_events (agent_id, kind, source, actor, message, details)
    select agent_id, 'command_expired', 'sweep', 'sweep', format('%s expired: no runner claimed it in time', action),
           jsonb_build_object('command_id', id, 'action', action)
    from expired returning 1
  )
  select count(*) into n_expired from logged;

  with abandoned as (
    update public.agent_commands set status = 'failed', finished_at = now(),
      result = format('the runner claimed it but did not report a result within %s s', s.claimed_command_timeout_s)
    where status = 'claimed' and claimed_at <= now() - make_interval(secs => s.claimed_command_timeout_s)
    returning agent_id, id, action, claimed_by, result
  ), logged as (
    insert into public.agent_events (agent_id, runner_id, kind, source, actor, message, details)
    select agent_id, claimed_by, 'command_failed', 'sweep', 'sweep', format('%s failed: %s', action, result),
           jsonb_build_object('command_id', id, 'action', action)
    from abandoned returning 1
  )
  select count(*) into n_abandoned from logged;

  with gone as (
    update public.runners set status = 'offline'
    where status = 'online' and last_seen_at <= now() - make_interval(secs => s.runner_offline_after_s)
    returning id, host, last_seen_at
  ), logged as (
    insert into public.agent_events (runner_id, kind, source, actor, message)
    select id, 'runner_offline', 'sweep', 'sweep',
           format('runner on %s silent since %s', host, to_char(last_seen_at, 'YYYY-MM-DD HH24:MI:SS TZ'))
    from gone returning 1
  )
  select count(*) into n_offline from logged;

  -- Bounded history, in bounded batches so one run stays short after a long outage.
  delete from public.agent_events where id in (
    select id from public.agent_events where at < now() - s.event_retention order by at limit s.prune_batch);
  get diagnostics n_events = row_count;
  delete from public.agent_commands where id in (
    select id from public.agent_commands where finished_at < now() - s.command_retention
    order by finished_at limit s.prune_batch);
  get diagnostics n_commands = row_count;
  -- pg_cron logs every run forever unless someone prunes it.
  if to_regclass('cron.job_run_details') is not null then
    begin
      execute 'delete from cron.job_run_details where end_time < now() - $1' using s.cron_history_retention;
      get diagnostics n_cron = row_count;
    exception when insufficient_privilege then
      null;  -- not ours to prune on this database; pg_cron's own retention applies
    end;
  end if;

  return jsonb_build_object('skipped', false, 'stale', n_stale, 'inactive', n_inactive,
    'commands_expired', n_expired, 'commands_abandoned', n_abandoned, 'runners_offline', n_offline,
    'events_pruned', n_events, 'commands_pruned', n_commands, 'cron_runs_pruned', n_cron);
end
$$;
