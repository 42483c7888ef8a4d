-- Planned is not an incident (issue 19): a runner that says goodbye (runner_offline from the runner
-- itself, on SIGTERM) is not a host incident, only one that went silent (persisted by the sweep); and
-- a host back names its agents that are not well. Written from supabase/schemas/70_alerts.sql,
-- checked equal by npm run db:diff.

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
    when e.to_status in ('running', 'stopped') then 'agent_up'
  end
$$;

create or replace function agent_private.alert_recovered(
  c public.alert_channels, p_subject text, a public.agent_status, r public.runners, p_event_id bigint,
  p_status text, p_previous text, p_reason text
) returns void
  language plpgsql set search_path = ''
as $$
declare
  s agent_private.alert_states;
  cancelled integer;
  n integer;
  not_well text;
begin
  select * into s from agent_private.alert_states where channel_id = c.id and subject = p_subject for update;
  if not found or s.down_since is null then
    return;
  end if;
  if s.flapping_until is not null then
    -- alert_tick tells how the flapping ended once the agent is stable
    update agent_private.alert_states set down_since = null where channel_id = c.id and subject = p_subject;
    return;
  end if;
  update agent_private.alert_states set down_since = null, notified = false, folded = false, down_delivery_id = null
  where channel_id = c.id and subject = p_subject;
  if s.folded or not s.notified then
    return;  -- folded into its host's notice, or never told (paused): nothing to take back
  end if;
  update public.alert_deliveries set status = 'cancelled', finished_at = now(),
    last_error = 'recovered within the grace delay; not sent'
  where id = s.down_delivery_id and status = 'pending' and attempts = 0 and due_at > now();
  get diagnostics cancelled = row_count;
  if cancelled > 0 then
    return;
  end if;
  if r.id is not null then
    -- The host is back; its agents need not be (issue 19: "is back: 2 agents" while one of them was
    -- crash-looping). The ones in error or a crash loop are named, with what is wrong. (Stale ones are
    -- not: the runner's first heartbeat, in this same transaction after this event, relays them.)
    select count(*)::integer,
           string_agg(format('%s %s', l.agent_name, case when l.crash_looping then 'is crash-looping' else 'reads ' || l.status end),
                      ', ' order by l.agent_name) filter (where l.crash_looping or l.status = 'error')
      into n, not_well
    from public.agent_status_live l where l.runner_id = r.id;
    perform agent_private.alert_enqueue(c.id, p_event_id, null, r.id, p_subject, 'host_up',
      agent_private.alert_notice('host_up', null, r.host, 'online', 'offline',
        left(concat_ws('; not well: ', coalesce(p_reason, format('the runner on %s answers again', r.host)), not_well), 2000),
        now(), s.incident, n,
        p_extra => case when not_well is not null
          then jsonb_build_object('severity', 'warning', 'title', format('host %s is back: %s agents, not all well', r.host, n))
          else '{}' end));
  else
    perform agent_private.alert_enqueue(c.id, p_event_id, a.id, null, p_subject, 'up',
      agent_private.alert_notice('up', a, null, p_status, p_previous, p_reason, now(), s.incident));
  end if;
end
$$;
