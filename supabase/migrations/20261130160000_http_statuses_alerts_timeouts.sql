-- The alert functions' refusals, and set_agent_timeouts', raised through agent_private.refuse
-- (20261130130000_api_errors.sql) as 20261130130040_http_statuses.sql did for the functions before
-- them: an unknown channel or agent is 404 through PostgREST (it was 500), with the code, message and
-- hint kept; direct callers see SQLSTATE P0002 as before. Bodies otherwise unchanged from their latest
-- definitions (20261130120000_alerts.sql, 20261130110000_truth_at_the_edges.sql); create or replace
-- keeps their grants.

-- Sets a channel's rules; keys missing from p_rules keep their value, JSON null resets to "all"/"off".
create or replace function public.alert_channel_rules(p_name text, p_rules jsonb, p_operator_token text default null)
  returns void
  language plpgsql security definer set search_path = ''
as $$
declare
  unknown text;
begin
  perform agent_private.require_operator(p_operator_token);
  if jsonb_typeof(p_rules) is distinct from 'object' then
    perform agent_private.invalid('rules must be a JSON object');
  end if;
  select string_agg(k, ', ') into unknown from jsonb_object_keys(p_rules) k
  where k not in ('enabled', 'flips', 'hosts', 'agents', 'grace_s', 'reminder_s', 'flap_threshold', 'flap_window_s');
  if unknown is not null then
    perform agent_private.invalid(format('unknown rule %s', unknown),
      'Rules: enabled, flips, hosts, agents, grace_s, reminder_s, flap_threshold, flap_window_s.');
  end if;
  update public.alert_channels c set
    enabled = case when p_rules ? 'enabled' then (p_rules ->> 'enabled')::boolean else c.enabled end,
    flips = case when p_rules ? 'flips' then array(select jsonb_array_elements_text(p_rules -> 'flips')) else c.flips end,
    hosts = case when p_rules ? 'hosts' then case when jsonb_typeof(p_rules -> 'hosts') = 'array'
              then array(select jsonb_array_elements_text(p_rules -> 'hosts')) end else c.hosts end,
    agent_patterns = case when p_rules ? 'agents' then case when jsonb_typeof(p_rules -> 'agents') = 'array'
              then array(select jsonb_array_elements_text(p_rules -> 'agents')) end else c.agent_patterns end,
    grace_s = case when p_rules ? 'grace_s' then coalesce((p_rules ->> 'grace_s')::integer, 0) else c.grace_s end,
    reminder_s = case when p_rules ? 'reminder_s' then (p_rules ->> 'reminder_s')::integer else c.reminder_s end,
    flap_threshold = case when p_rules ? 'flap_threshold' then coalesce((p_rules ->> 'flap_threshold')::integer, 0) else c.flap_threshold end,
    flap_window_s = case when p_rules ? 'flap_window_s' then (p_rules ->> 'flap_window_s')::integer else c.flap_window_s end,
    updated_at = now()
  where c.name = p_name;
  if not found then
    perform agent_private.refuse('P0002', format('no alert channel named %L', p_name),
      'List channels with: agent-status alerts channel list');
  end if;
exception
  when check_violation or not_null_violation or invalid_text_representation or numeric_value_out_of_range then
    perform agent_private.invalid(format('bad rules: %s', sqlerrm),
      'flips: stale, error, crash_loop, host; grace_s 0..86400; reminder_s 60..604800 or null; flap_threshold 0 or 2..100; flap_window_s 10..86400.');
end
$$;

create or replace function public.alert_channel_remove(p_name text, p_operator_token text default null) returns void
  language plpgsql security definer set search_path = ''
as $$
begin
  perform agent_private.require_operator(p_operator_token);
  delete from public.alert_channels where name = p_name;
  if not found then
    perform agent_private.refuse('P0002', format('no alert channel named %L', p_name),
      'List channels with: agent-status alerts channel list');
  end if;
end
$$;

-- Queues a test notice on a channel now; returns the delivery id to watch.
create or replace function public.alert_channel_test(p_name text, p_operator_token text default null) returns bigint
  language plpgsql security definer set search_path = ''
as $$
declare
  who text := agent_private.require_operator(p_operator_token);
  c public.alert_channels;
begin
  select * into c from public.alert_channels where name = p_name;
  if not found then
    perform agent_private.refuse('P0002', format('no alert channel named %L', p_name),
      'List channels with: agent-status alerts channel list');
  end if;
  return agent_private.alert_enqueue(c.id, null, null, null, 'test:' || c.id, 'test',
    agent_private.alert_notice('test', null, null, null, null, format('Sent by %s. If you can read this, the channel works.', who),
      now(), format('test:%s', gen_random_uuid())));
end
$$;

-- Pauses alerts for an agent or a host until a time (null: until resumed), with a reason.
create or replace function public.alert_pause(
  p_agent_name text default null, p_host text default null, p_until timestamptz default null, p_reason text default null,
  p_operator_token text default null
) returns bigint
  language plpgsql security definer set search_path = ''
as $$
declare
  who text := agent_private.require_operator(p_operator_token);
  v_agent integer;
  v_runner uuid;
  v_id bigint;
  msg text;
begin
  if (p_agent_name is null) = (p_host is null) then
    perform agent_private.invalid('name either one agent or one host to pause');
  end if;
  if p_until is not null and p_until <= now() then
    perform agent_private.invalid('the pause must end in the future', 'Give a later time, or no time to pause until resumed.');
  end if;
  perform agent_private.check_text('reason', p_reason, 500);
  if p_agent_name is not null then
    select id into v_agent from public.agent_status where agent_name = p_agent_name;
    if v_agent is null then
      perform agent_private.refuse('P0002', format('no agent named %L', p_agent_name),
        'List agents with: agent-status list');
    end if;
  end if;
  insert into public.alert_pauses (agent_id, host, until, reason, created_by)
  values (v_agent, p_host, p_until, p_reason, who) returning id into v_id;
  msg := format('alerts paused %s%s', coalesce('until ' || to_char(p_until, 'YYYY-MM-DD HH24:MI:SS TZ'), 'until resumed'),
                coalesce(': ' || p_reason, ''));
  if v_agent is not null then
    insert into public.agent_events (agent_id, kind, source, actor, message, details)
    values (v_agent, 'alerts_paused', 'operator', who, msg, jsonb_build_object('pause_id', v_id, 'until', p_until, 'reason', p_reason));
  else
    select id into v_runner from public.runners where host = p_host;
    insert into public.agent_events (agent_id, runner_id, kind, source, actor, message, details)
    select a.id, v_runner, 'alerts_paused', 'operator', who, msg || format(' (host %s)', p_host),
           jsonb_build_object('pause_id', v_id, 'host', p_host, 'until', p_until, 'reason', p_reason)
    from public.agent_status a where a.host = p_host or (v_runner is not null and a.runner_id = v_runner)
    union all
    select null, v_runner, 'alerts_paused', 'operator', who, msg || format(' (host %s)', p_host),
           jsonb_build_object('pause_id', v_id, 'host', p_host, 'until', p_until, 'reason', p_reason)
    where v_runner is not null;
  end if;
  return v_id;
end
$$;

-- Sets an agent's heartbeat and activity timeouts, in seconds: null leaves one as it is, 0 gives it
-- back to the runner's config, the declared interval or the default. Recorded as a `timeouts_set`
-- event; the deadlines move at once (an agent already silent for longer reads stale at once).
create or replace function public.set_agent_timeouts(
  p_agent_name text,
  p_heartbeat_timeout_s integer default null,
  p_activity_timeout_s integer default null,
  p_operator_token text default null
) returns public.agent_status
  language plpgsql security definer set search_path = ''
as $$
declare
  who text := agent_private.require_operator(p_operator_token);
  a public.agent_status;
  s public.agent_status_settings;
  hb integer;
  act integer;
begin
  if p_heartbeat_timeout_s is not null and p_heartbeat_timeout_s <> 0 and p_heartbeat_timeout_s not between 5 and 86400 then
    perform agent_private.invalid(format('heartbeat timeout must be 5..86400 seconds (0: back to the default), got %s', p_heartbeat_timeout_s));
  end if;
  if p_activity_timeout_s is not null and p_activity_timeout_s <> 0 and p_activity_timeout_s not between 10 and 604800 then
    perform agent_private.invalid(format('activity timeout must be 10..604800 seconds (0: back to the default), got %s', p_activity_timeout_s));
  end if;
  if p_heartbeat_timeout_s is null and p_activity_timeout_s is null then
    perform agent_private.invalid('give a heartbeat timeout, an activity timeout, or both');
  end if;
  select * into a from public.agent_status where agent_name = agent_private.check_agent_name(p_agent_name) for update;
  if a.id is null then
    perform agent_private.refuse('P0002', format('no agent named %L', p_agent_name),
      'List agents with: agent-status list');
  end if;
  select * into s from public.agent_status_settings;
  if p_heartbeat_timeout_s is not null then
    a.operator_heartbeat_timeout_s := nullif(p_heartbeat_timeout_s, 0);
  end if;
  if p_activity_timeout_s is not null then
    a.operator_activity_timeout_s := nullif(p_activity_timeout_s, 0);
  end if;
  hb := (agent_private.heartbeat_timeout(a, s)).timeout_s;
  act := agent_private.activity_timeout(a, s);
  update public.agent_status set
    operator_heartbeat_timeout_s = a.operator_heartbeat_timeout_s,
    operator_activity_timeout_s = a.operator_activity_timeout_s,
    stale_at = case when stale_at is not null then coalesce(last_heartbeat, now()) + make_interval(secs => hb) end,
    inactive_at = case when inactive_at is not null and act is not null
                       then coalesce(last_activity_at, started_at, now()) + make_interval(secs => act) end,
    updated_at = now()
  where id = a.id
  returning * into a;
  insert into public.agent_events (agent_id, runner_id, kind, source, actor, message, details)
  values (a.id, a.runner_id, 'timeouts_set', 'operator', who,
          format('heartbeat timeout %s s, activity timeout %s', hb, coalesce(act || ' s', 'none')),
          jsonb_build_object('heartbeat_timeout_s', hb, 'activity_timeout_s', act,
                             'operator_heartbeat_timeout_s', a.operator_heartbeat_timeout_s,
                             'operator_activity_timeout_s', a.operator_activity_timeout_s));
  return a;
end
$$;
