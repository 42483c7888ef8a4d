-- A flapping incident told to a channel always gets its recovery, paused or not: a snooze while the
-- agent flapped left the PagerDuty incident the flapping notice opened unresolved for good. A flapping
-- agent that ends down while paused is not paged then; the pause's end tells it (issue 19, case 8).
-- And an agent found dead (stale to error) after its host came back without it is told on its own,
-- unless its own down notice is out already.

-- Everything the clock decides. Runs before each claim (so the dispatcher's schedule is its clock),
-- at most one at a time; a second caller skips it.
create or replace function agent_private.alert_tick() returns void
  language plpgsql set search_path = ''
as $$
declare
  st record;
  p public.alert_pauses;
  settings public.alert_settings;
  a public.agent_status;
  live_status text;
  v_incident text;
begin
  if not pg_try_advisory_xact_lock(hashtext('agent_status_alert_tick')) then
    return;
  end if;
  select * into settings from public.alert_settings;

  -- Pauses whose time is up.
  for p in select * from public.alert_pauses where ended_at is null and until <= now() order by id loop
    perform agent_private.alert_pause_end(p, 'clock');
  end loop;

  -- Flapping that calmed down: one notice saying how it ended.
  for st in
    select s.*, c.flap_window_s from agent_private.alert_states s join public.alert_channels c on c.id = s.channel_id
    where s.flapping_until <= now() for update of s skip locked
  loop
    select * into a from public.agent_status where id = st.agent_id;
    select l.status into live_status from public.agent_status_live l where l.id = st.agent_id;
    v_incident := st.incident;
    if live_status in ('stale', 'error') then
      -- paused: not told now (the pause's end tells it); a flapping notice already out stays open
      -- under its key, and the recovery resolves it
      if not agent_private.alerts_paused(a.id, a.host) then
        perform agent_private.alert_enqueue(st.channel_id, null, a.id, null, st.subject, 'down',
          agent_private.alert_notice('down', a, null, live_status, null, 'stopped flapping, and is down', now(), v_incident));
      end if;
      update agent_private.alert_states set flapping_until = null, recent_downs = '{}', down_since = coalesce(down_since, now()),
        notified = st.notified or not agent_private.alerts_paused(a.id, a.host), last_notified_at = now()
      where channel_id = st.channel_id and subject = st.subject;
    else
      -- a told flapping incident always gets its recovery, paused or not (a snooze during flapping
      -- left PagerDuty's incident open for good: issue 19, case 8)
      if st.notified then
        perform agent_private.alert_enqueue(st.channel_id, null, a.id, null, st.subject, 'up',
          agent_private.alert_notice('up', a, null, live_status, null,
            format('stable again: no down flip for %s s', st.flap_window_s), now(), v_incident));
      end if;
      update agent_private.alert_states set flapping_until = null, recent_downs = '{}', down_since = null, notified = false
      where channel_id = st.channel_id and subject = st.subject;
    end if;
  end loop;

  -- Reminders while still down (only after the down notice itself was delivered).
  for st in
    select s.*, c.reminder_s from agent_private.alert_states s join public.alert_channels c on c.id = s.channel_id
    where c.enabled and c.reminder_s is not null and s.notified and s.down_since is not null and not s.folded
      and s.flapping_until is null and s.agent_id is not null
      and s.last_notified_at <= now() - make_interval(secs => c.reminder_s)
      and exists (select 1 from public.alert_deliveries d where d.id = s.down_delivery_id and d.status = 'delivered')
    for update of s skip locked
  loop
    select * into a from public.agent_status where id = st.agent_id;
    continue when agent_private.alerts_paused(a.id, a.host);
    perform agent_private.alert_enqueue(st.channel_id, null, a.id, null, st.subject, 'reminder',
      agent_private.alert_notice('reminder', a, null, a.status, null,
        format('down since %s', to_char(st.down_since, 'YYYY-MM-DD HH24:MI:SS TZ')), now(), st.incident));
    update agent_private.alert_states set last_notified_at = now() where channel_id = st.channel_id and subject = st.subject;
  end loop;

  -- Bounded history.
  delete from public.alert_deliveries where id in (
    select id from public.alert_deliveries where finished_at < now() - settings.retention order by finished_at limit 10000);
end
$$;

create or replace function agent_private.alert_flip(e public.agent_events) returns text
  language sql immutable set search_path = ''
as $$
  select case
    -- only a runner that went silent (persisted by the sweep) is a host incident; one that said
    -- goodbye (runner_offline from the runner itself, on SIGTERM) stopped on purpose (issue 19)
    when e.kind = 'runner_offline' and e.source = 'sweep' then 'host'
    when e.kind = 'runner_online' then 'host_up'
    when e.agent_id is null then null
    when e.kind = 'crashed' and (e.details ->> 'crash_loop')::boolean then 'crash_loop'
    when e.to_status is not distinct from e.from_status then null
    when e.to_status in ('stale', 'error') and coalesce(e.from_status, 'stopped') not in ('stale', 'error') then e.to_status
    -- found dead after a silence: told unless its own down notice is out already (alert_agent_down
    -- checks); a stale one folded under its host was "not checked yet" when the host came back
    when e.to_status = 'error' and e.from_status = 'stale' then 'error'
    when e.to_status in ('running', 'stopped') then 'agent_up'
  end
$$;
