-- One live runner per host. A second runner with the same host's token registered silently, adopted
-- the first one's agents and undid operators' stops (it saw a stopped agent as crashed and restarted
-- it within a second). Now a runner takes the host's lease before it registers: the lease is the
-- runner's instance id (the AGENT_STATUS_RUNNER mark of the processes it starts, kept across its own
-- restarts), held while the runner is seen (last_seen_at, which every command poll moves). A second
-- instance is refused with the live one's pid, start and last contact, until the live one has been
-- silent for runner_offline_after_s or the newcomer asks to take over. The runner that lost the lease
-- is refused on its next poll and stops.

alter table public.runners add column instance text check (char_length(instance) between 1 and 100);

create function public.runner_lease(p_token text, p_instance text, p_pid integer default null, p_takeover boolean default false)
  returns jsonb
  language plpgsql security definer set search_path = ''
as $$
declare
  t public.api_tokens := agent_private.runner_token(p_token);
  r public.runners;
  previous text;
  silent_after integer := (select runner_offline_after_s from public.agent_status_settings);
  live boolean;
begin
  if p_instance is null or char_length(p_instance) not between 1 and 100 then
    perform agent_private.invalid('instance must be the runner''s instance id, 1 to 100 characters');
  end if;
  select * into r from public.runners where host = t.host for update;
  live := found and r.instance is distinct from p_instance and r.instance is not null and r.status = 'online'
          and r.last_seen_at > now() - make_interval(secs => silent_after);
  if live and not coalesce(p_takeover, false) then
    perform agent_private.refuse('55000', format('another runner is live on host %L: pid %s, running since %s, last seen %s s ago',
        t.host, coalesce(r.pid::text, 'unknown'), to_char(r.started_at, 'YYYY-MM-DD HH24:MI:SS TZ'),
        floor(extract(epoch from now() - r.last_seen_at))),
      format('One runner per host: stop that one first, or wait until it has been silent for %s s, or start this one with --takeover.',
        silent_after));
  end if;
  previous := case when r.instance is distinct from p_instance then r.instance end;
  insert into public.runners (host, instance, pid, status, last_seen_at)
  values (t.host, p_instance, p_pid, 'online', now())
  on conflict (host) do update set instance = excluded.instance, pid = excluded.pid, last_seen_at = now()
  returning * into r;
  if live then
    insert into public.agent_events (runner_id, kind, source, actor, message, details)
    values (r.id, 'runner_takeover', 'runner', format('runner token %s', t.label),
            format('runner on %s taken over by pid %s', r.host, coalesce(p_pid::text, 'unknown')),
            jsonb_build_object('pid', p_pid));
  end if;
  -- the previous holder's mark: its agents are the new holder's to adopt
  return jsonb_build_object('runner_id', r.id, 'host', r.host, 'instance', r.instance, 'took_over', live,
                            'previous_instance', previous);
end
$$;

-- The lease holder, or the refusal a runner gets once another instance took the host over.
create function agent_private.authorize_lease(p_token text, p_instance text) returns public.runners
  language plpgsql set search_path = ''
as $$
declare
  r public.runners := agent_private.authorize_runner(p_token);
begin
  if p_instance is not null and r.instance is distinct from p_instance then
    perform agent_private.refuse('55000', format('this runner no longer holds the lease of host %L: pid %s took over', r.host, coalesce(r.pid::text, 'unknown')),
      'Stop this runner; one runner per host.');
  end if;
  return r;
end
$$;
revoke execute on function agent_private.authorize_lease(text, text) from public, anon, authenticated, service_role;

-- Claiming needs the lease (p_instance); runners from before this migration send none and claim as before.
drop function public.runner_claim_commands(text, integer);
create function public.runner_claim_commands(p_token text, p_limit integer default 10, p_instance text default null)
  returns table (id bigint, agent_id integer, agent_name text, action text, requested_by text,
                 created_at timestamptz, expires_at timestamptz)
  language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
declare
  r public.runners := agent_private.authorize_lease(p_token, p_instance);
begin
  if p_limit is null or p_limit < 1 or p_limit > 100 then
    perform agent_private.invalid(format('limit must be between 1 and 100, got %s', p_limit));
  end if;
  update public.runners set last_seen_at = now() where runners.id = r.id;
  return query
    with picked as (
      select c.id
      from public.agent_commands c
      join public.agent_status a on a.id = c.agent_id
      where c.status = 'pending' and c.expires_at > now() and a.runner_id = r.id
      order by c.id
      limit p_limit
      for update of c skip locked
    ), claimed as (
      update public.agent_commands c
      set status = 'claimed', claimed_at = now(), claimed_by = r.id
      from picked where c.id = picked.id
      returning c.*
    ), logged as (
      insert into public.agent_events (agent_id, runner_id, kind, source, actor, message, details)
      select claimed.agent_id, r.id, 'command_claimed', 'runner', 'runner ' || r.host,
             format('%s claimed by the runner on %s', claimed.action, r.host),
             jsonb_build_object('command_id', claimed.id, 'action', claimed.action)
      from claimed
    )
    select claimed.id, claimed.agent_id, a.agent_name, claimed.action, claimed.requested_by,
           claimed.created_at, claimed.expires_at
    from claimed join public.agent_status a on a.id = claimed.agent_id
    order by claimed.id;
end
$$;

-- A runner that lost the lease, stopping, must not report the host's new runner offline.
drop function public.runner_offline(text);
create function public.runner_offline(p_token text, p_instance text default null) returns void
  language plpgsql security definer set search_path = ''
as $$
declare
  r public.runners := agent_private.authorize_runner(p_token);
begin
  if p_instance is not null and r.instance is distinct from p_instance then
    return;
  end if;
  update public.runners set status = 'offline', stopped_at = now() where id = r.id and status = 'online';
  if found then
    insert into public.agent_events (runner_id, kind, source, actor, message)
    values (r.id, 'runner_offline', 'runner', 'runner ' || r.host, format('runner on %s stopped', r.host));
  end if;
end
$$;

revoke execute on function public.runner_lease(text, text, integer, boolean), public.runner_claim_commands(text, integer, text),
  public.runner_offline(text, text) from public;
grant execute on function public.runner_lease(text, text, integer, boolean), public.runner_claim_commands(text, integer, text),
  public.runner_offline(text, text) to anon, authenticated, service_role;
