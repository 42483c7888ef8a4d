-- Recovery is told on every channel that told the down, even when the channel's agent rules changed
-- since (an operator narrowing a filter during an incident left it open forever, and PagerDuty's
-- incident unresolved). The rules choose which downs are told; a told down always gets its recovery.

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
      -- no rule check: only a channel that told the down has an open incident to close
      perform agent_private.alert_recovered(c, 'agent:' || a.id, a, null, new.id, new.to_status, new.from_status, new.message);
      update agent_private.alert_states set crash_loop_told = false where channel_id = c.id and subject = 'agent:' || a.id;
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

