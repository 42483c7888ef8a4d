-- Incident keys were the subject plus the epoch second, so an agent that went down again within the
-- same second as its last incident (a fast crash loop) reused the old key, and PagerDuty folded the new
-- incident into the resolved one (tests/alerts/dispatch.test.ts, "one dedup key per incident"); and a
-- flapping notice reused the key of the incident before it. A key is now the subject plus a random
-- UUID, new for every incident (down, flapping or host silent), however fast they come.

create function agent_private.alert_incident_key(p_subject text) returns text
  language sql volatile set search_path = ''
as $$
  select p_subject || ':' || gen_random_uuid()
$$;
revoke execute on function agent_private.alert_incident_key(text) from public, anon, authenticated, service_role;

create or replace function agent_private.alert_host_down(c public.alert_channels, r public.runners, p_event_id bigint, p_reason text)
  returns void
  language plpgsql set search_path = ''
as $$
declare
  s agent_private.alert_states;
  n integer;
  v_incident text;
begin
  if agent_private.alerts_paused(null, r.host) then
    return;
  end if;
  s := agent_private.alert_state(c.id, 'host:' || r.id, null, r.id);
  if s.down_since is not null then
    return;
  end if;
  select count(*) into n from public.agent_status where runner_id = r.id;
  v_incident := agent_private.alert_incident_key('host:' || r.id);
  update agent_private.alert_states set down_since = now(), notified = true, incident = v_incident, last_notified_at = now(),
    down_delivery_id = agent_private.alert_enqueue(c.id, p_event_id, null, r.id, 'host:' || r.id, 'host_down',
      agent_private.alert_notice('host_down', null, r.host, 'offline', 'online', p_reason, now(), v_incident, n),
      now() + make_interval(secs => c.grace_s))
  where channel_id = c.id and subject = 'host:' || r.id;
end
$$;


create or replace function agent_private.alert_agent_down(
  c public.alert_channels, a public.agent_status, p_flip text, p_event_id bigint, p_status text, p_previous text, p_reason text
) returns void
  language plpgsql set search_path = ''
as $$
declare
  subj constant text := 'agent:' || a.id;
  s agent_private.alert_states;
  r public.runners;
  downs timestamptz[];
  v_incident text;
begin
  s := agent_private.alert_state(c.id, subj, a.id, null);
  if s.down_since is not null and not s.folded and s.flapping_until is null then
    return;  -- already down (stale after error, say): one incident, one notice
  end if;

  -- Grouping by host: an agent whose runner is silent went silent with it.
  if p_flip = 'stale' and a.runner_id is not null and 'host' = any (c.flips) and agent_private.runner_silent(a.runner_id) then
    select * into r from public.runners where id = a.runner_id;
    perform agent_private.alert_host_down(c, r, null, format('the runner on %s stopped answering', r.host));
    update agent_private.alert_states set down_since = now(), folded = true where channel_id = c.id and subject = subj;
    return;
  end if;

  -- Flap folding: the Nth down flip within the window turns into one "flapping" notice, and further
  -- flips stay quiet until the agent has been stable for a whole window (alert_tick then tells how it ended).
  downs := array(select t from unnest(s.recent_downs || now()) t where t > now() - make_interval(secs => c.flap_window_s));
  if s.flapping_until is not null or (c.flap_threshold > 0 and cardinality(downs) >= c.flap_threshold) then
    if s.flapping_until is null and not agent_private.alerts_paused(a.id, a.host) then
      v_incident := agent_private.alert_incident_key(subj);
      perform agent_private.alert_enqueue(c.id, p_event_id, a.id, null, subj, 'flapping',
        agent_private.alert_notice('flapping', a, null, p_status, p_previous,
          format('%s down flips in %s s; further flips are not told until it is stable for %s s',
                 cardinality(downs), c.flap_window_s, c.flap_window_s), now(), v_incident));
      update agent_private.alert_states set notified = true, incident = v_incident, last_notified_at = now()
      where channel_id = c.id and subject = subj;
    end if;
    update agent_private.alert_states set recent_downs = downs, down_since = now(), folded = false,
      flapping_until = now() + make_interval(secs => c.flap_window_s)
    where channel_id = c.id and subject = subj;
    return;
  end if;

  if agent_private.alerts_paused(a.id, a.host) then
    -- recorded, not sent; the pause's end tells it if it is still down then
    update agent_private.alert_states set recent_downs = downs, down_since = now(), notified = false, folded = false
    where channel_id = c.id and subject = subj;
    return;
  end if;

  v_incident := agent_private.alert_incident_key('agent:' || a.id);
  update agent_private.alert_states set recent_downs = downs, down_since = now(), folded = false, notified = true,
    incident = v_incident, last_notified_at = now() + make_interval(secs => c.grace_s),
    down_delivery_id = agent_private.alert_enqueue(c.id, p_event_id, a.id, null, subj, 'down',
      agent_private.alert_notice('down', a, null, p_status, p_previous, p_reason, now(), v_incident),
      now() + make_interval(secs => c.grace_s))
  where channel_id = c.id and subject = subj;
end
$$;


create or replace function agent_private.alert_pause_end(p public.alert_pauses, p_actor text) returns void
  language plpgsql set search_path = ''
as $$
declare
  c public.alert_channels;
  a record;
  r public.runners;
  s agent_private.alert_states;
  v_incident text;
begin
  update public.alert_pauses set ended_at = now() where id = p.id and ended_at is null;
  if not found then
    return;
  end if;
  if p.agent_id is not null then
    insert into public.agent_events (agent_id, kind, source, actor, message, details)
    values (p.agent_id, 'alerts_resumed', 'operator', p_actor, 'alerts resumed', jsonb_build_object('pause_id', p.id));
  else
    select * into r from public.runners where host = p.host;
    insert into public.agent_events (agent_id, runner_id, kind, source, actor, message, details)
    select a2.id, r.id, 'alerts_resumed', 'operator', p_actor, format('alerts resumed for host %s', p.host),
           jsonb_build_object('pause_id', p.id, 'host', p.host)
    from public.agent_status a2 where a2.host = p.host or (r.id is not null and a2.runner_id = r.id)
    union all
    select null, r.id, 'alerts_resumed', 'operator', p_actor, format('alerts resumed for host %s', p.host),
           jsonb_build_object('pause_id', p.id, 'host', p.host)
    where r.id is not null;
  end if;

  for a in
    select l.id, l.status, l.status_reason, l.host from public.agent_status_live l
    where l.status in ('stale', 'error')
      and (l.id = p.agent_id or (p.host is not null and l.host = p.host))
      and not agent_private.alerts_paused(l.id, l.host)
  loop
    for c in select * from public.alert_channels ch
             where agent_private.alert_channel_matches(ch, a.status, (select agent_name from public.agent_status where id = a.id), a.host)
    loop
      s := agent_private.alert_state(c.id, 'agent:' || a.id, a.id, null);
      continue when s.notified;
      v_incident := agent_private.alert_incident_key('agent:' || a.id);
      update agent_private.alert_states set down_since = coalesce(down_since, now()), notified = true, incident = v_incident,
        last_notified_at = now(),
        down_delivery_id = agent_private.alert_enqueue(c.id, null, a.id, null, 'agent:' || a.id, 'down',
          agent_private.alert_notice('down', (select x from public.agent_status x where x.id = a.id), null, a.status, null,
            coalesce(a.status_reason, 'still down when the pause ended'), now(), v_incident,
            p_extra => jsonb_build_object('after_pause', true)))
      where channel_id = c.id and subject = 'agent:' || a.id;
    end loop;
  end loop;

  if p.host is not null and r.id is not null and agent_private.runner_silent(r.id) then
    for c in select * from public.alert_channels ch where agent_private.alert_channel_matches(ch, 'host', null, r.host) loop
      perform agent_private.alert_host_down(c, r, null, 'still silent when the pause ended');
    end loop;
  end if;
end
$$;

