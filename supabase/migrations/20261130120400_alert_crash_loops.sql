-- Alerts after the truth issue (20261130110000_truth_at_the_edges.sql):
--  - A crash loop is a flip of its own: the `crashed` event that apply_event marks details.crash_loop
--    (the second crash before the agent was stable again). A channel that listens to `crash_loop`
--    gets one "crash-looping" notice per incident, on top of the first crash's "down" notice.
--  - A restart after a crash reads `warning` until the runner reports it `stable`, so leaving
--    `error` is no longer a recovery: an incident ends when the agent reads `running` again (or is
--    `stopped` on purpose), whatever it read in between. Before, every restart of a crash loop told a
--    recovery and the next crash a new "down".
--  - A runner is silent after two of its own heartbeat intervals (agent_private.runner_silent_after),
--    as the sweep now judges it; folding agents under their host uses the same rule.
--  - Channels listen to crash loops by default.

alter table agent_private.alert_states add column crash_loop_told boolean not null default false;
alter table public.alert_channels alter column flips set default array['stale', 'error', 'crash_loop', 'host'];

create or replace function agent_private.runner_silent(p_runner_id uuid) returns boolean
  language sql stable set search_path = ''
as $$
  select exists (
    select 1 from public.runners r, public.agent_status_settings st
    where r.id = p_runner_id
      and (r.status = 'offline' or r.last_seen_at <= now() - agent_private.runner_silent_after(r, st)))
$$;

create or replace function agent_private.alert_flip(e public.agent_events) returns text
  language sql immutable set search_path = ''
as $$
  select case
    when e.kind = 'runner_offline' then 'host'
    when e.kind = 'runner_online' then 'host_up'
    when e.agent_id is null then null
    when e.kind = 'crashed' and (e.details ->> 'crash_loop')::boolean then 'crash_loop'
    when e.to_status is not distinct from e.from_status then null
    when e.to_status in ('stale', 'error') and coalesce(e.from_status, 'stopped') not in ('stale', 'error') then e.to_status
    when e.to_status in ('running', 'stopped') then 'agent_up'
  end
$$;

-- A crash loop on one channel: inside an incident already told, one "crash-looping" notice; otherwise
-- it opens the incident like any down flip.
create function agent_private.alert_crash_loop(c public.alert_channels, a public.agent_status, e public.agent_events)
  returns void
  language plpgsql set search_path = ''
as $$
declare
  subj constant text := 'agent:' || a.id;
  s agent_private.alert_states := agent_private.alert_state(c.id, subj, a.id, null);
begin
  if s.crash_loop_told then
    return;
  end if;
  if s.down_since is not null and s.notified and not s.folded and s.flapping_until is null
     and not agent_private.alerts_paused(a.id, a.host) then
    perform agent_private.alert_enqueue(c.id, e.id, a.id, null, subj, 'down',
      agent_private.alert_notice('down', a, null, e.to_status, e.from_status, e.message, now(), s.incident,
        p_extra => jsonb_build_object('crash_loop', true,
          'title', format('%s is crash-looping: %s restarts in 10 min', a.agent_name,
                          coalesce(e.details ->> 'restarts_10m', cardinality(a.restart_times)::text)))));
  elsif s.down_since is null then
    perform agent_private.alert_agent_down(c, a, 'crash_loop', e.id, e.to_status, e.from_status, e.message);
  end if;
  update agent_private.alert_states set crash_loop_told = true where channel_id = c.id and subject = subj;
end
$$;

create or replace function agent_private.alerts_on_event() returns trigger
  language plpgsql security definer set search_path = ''
as $$
declare
  flip text := agent_private.alert_flip(new);
  c public.alert_channels;
  a public.agent_status;
  r public.runners;
begin
  if flip is null or not exists (select 1 from public.alert_channels where enabled) then
    return null;
  end if;
  if new.agent_id is not null then
    select * into a from public.agent_status where id = new.agent_id;
  end if;
  if new.runner_id is not null and new.agent_id is null then
    select * into r from public.runners where id = new.runner_id;
  end if;

  for c in select * from public.alert_channels where enabled order by id loop
    if flip in ('stale', 'error') then
      if agent_private.alert_channel_matches(c, flip, a.agent_name, a.host) then
        perform agent_private.alert_agent_down(c, a, flip, new.id, new.to_status, new.from_status, new.message);
      end if;
    elsif flip = 'crash_loop' then
      if agent_private.alert_channel_matches(c, flip, a.agent_name, a.host) then
        perform agent_private.alert_crash_loop(c, a, new);
      end if;
    elsif flip = 'agent_up' then
      if agent_private.alert_channel_matches(c, null, a.agent_name, a.host) then
        perform agent_private.alert_recovered(c, 'agent:' || a.id, a, null, new.id, new.to_status, new.from_status, new.message);
        update agent_private.alert_states set crash_loop_told = false where channel_id = c.id and subject = 'agent:' || a.id;
      end if;
    elsif flip = 'host' then
      if agent_private.alert_channel_matches(c, 'host', null, r.host) then
        perform agent_private.alert_host_down(c, r, new.id, new.message);
      end if;
    elsif flip = 'host_up' then
      perform agent_private.alert_recovered(c, 'host:' || r.id, null, r, new.id, 'online', 'offline', new.message);
      -- its agents' folded silence ended with it
      update agent_private.alert_states set down_since = null, folded = false
      where channel_id = c.id and folded and agent_id in (select id from public.agent_status where runner_id = r.id);
    end if;
  end loop;
  return null;
end
$$;

-- Starts and stops now matter too (they end incidents); a crash-loop row keeps its from/to statuses.
drop trigger alerts_on_event on public.agent_events;
create trigger alerts_on_event after insert on public.agent_events
  for each row
  when (new.kind in ('runner_offline', 'runner_online')
        or (new.kind = 'crashed' and new.details ? 'crash_loop')
        or (new.to_status is distinct from new.from_status and new.to_status in ('stale', 'error', 'running', 'stopped')))
  execute function agent_private.alerts_on_event();

revoke execute on function agent_private.alert_crash_loop(public.alert_channels, public.agent_status, public.agent_events)
  from public, anon, authenticated, service_role;
