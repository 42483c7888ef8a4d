-------------------------------------------------------------------------------------------------------
-- Reading: the deadline applied at read time
-------------------------------------------------------------------------------------------------------

-- What the dashboard and the CLI read. status is the truth as of the database's now(): an agent past
-- its deadline reads stale at once, before the sweep (every minute) persists it. recorded_status is
-- the stored value. security_invoker: the reader's RLS applies.
create view public.agent_status_live with (security_invoker = true) as
select
  a.id,
  a.agent_name,
  case when a.stale_at <= now() then agent_private.next_status(a.status, a.status_source, 'deadline')
       else a.status end::public.agent_status_value as status,
  a.health,
  a.last_heartbeat,
  a.last_error,
  a.last_activity,
  a.updated_at,
  a.status as recorded_status,
  case when a.stale_at <= now() and a.status in ('running', 'warning') then 'sweep' else a.status_source end
    ::public.agent_event_source as status_source,
  case when a.stale_at <= now() and a.status in ('running', 'warning')
       then format('no heartbeat for %s s', floor(extract(epoch from now() - a.last_heartbeat)))
       else a.status_reason end as status_reason,
  a.status_changed_at,
  a.host,
  a.runner_id,
  r.status = 'online' and r.last_seen_at > now() - make_interval(secs => st.runner_offline_after_s) as runner_online,
  r.last_seen_at as runner_last_seen_at,
  a.pid,
  a.started_at,
  a.stopped_at,
  a.exit_code,
  a.exit_signal,
  a.last_activity_at,
  coalesce(a.heartbeat_timeout_s, st.default_heartbeat_timeout_s) as heartbeat_timeout_s,
  case when a.activity_timeout_s is not null then a.activity_timeout_s else st.default_activity_timeout_s end
    as activity_timeout_s,
  a.stale_at,
  a.inactive_at,
  a.metadata,
  now() as observed_at,
  extract(epoch from now() - a.last_heartbeat)::double precision as seconds_since_heartbeat,
  case when a.status in ('running', 'warning', 'error', 'stale') and a.started_at is not null
       then extract(epoch from now() - a.started_at)::double precision end as uptime_s
from public.agent_status a
cross join public.agent_status_settings st
left join public.runners r on r.id = a.runner_id;
