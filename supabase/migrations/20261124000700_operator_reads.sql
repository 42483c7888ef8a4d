-- Reads for operators who hold an operator token instead of a signed-in session (the CLI in scripts,
-- cron jobs, CI). Tables are readable only under RLS by signed-in operators; a token caller uses the
-- anon key, which reads nothing, so these functions check the token (or the session, or the service
-- role) with agent_private.require_operator and then read as their owner. The CLI calls them for every
-- read, whichever way it signed in, so there is one read path to test.

-- Every agent as the live view shows it (the deadline applied at the database's now()).
create function public.operator_list_agents(p_operator_token text default null)
  returns setof public.agent_status_live
  language plpgsql security definer set search_path = ''
as $$
begin
  perform agent_private.require_operator(p_operator_token);
  return query select * from public.agent_status_live order by agent_name;
end
$$;

-- The history of one agent after a given event id (0: from the start) and from a given time (null:
-- all kept), oldest first, at most p_limit rows; callers page on with the last id they saw.
-- p_agent_name null: every agent.
create function public.operator_agent_events(
  p_agent_name text default null,
  p_after_id bigint default 0,
  p_limit integer default 100,
  p_since timestamptz default null,
  p_operator_token text default null
) returns table (id bigint, agent_name text, at timestamptz, kind text, source text, actor text,
                 from_status text, to_status text, health integer, message text, details jsonb)
  language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
begin
  perform agent_private.require_operator(p_operator_token);
  if p_limit is null or p_limit < 1 or p_limit > 1000 then
    perform agent_private.invalid(format('limit must be between 1 and 1000, got %s', p_limit));
  end if;
  if p_agent_name is not null and not exists (select 1 from public.agent_status where agent_name = p_agent_name) then
    raise exception using errcode = 'P0002', message = format('no agent named %L', p_agent_name),
      hint = 'List agents with: agent-status list';
  end if;
  return query
    select e.id, a.agent_name, e.at, e.kind, e.source::text, e.actor, e.from_status::text, e.to_status::text,
           e.health, e.message, e.details
    from public.agent_events e
    left join public.agent_status a on a.id = e.agent_id
    where e.id > coalesce(p_after_id, 0) and (p_since is null or e.at >= p_since)
      and (p_agent_name is null or a.agent_name = p_agent_name)
    order by e.id
    limit p_limit;
end
$$;

-- Commands by id, for waiting on the ones just enqueued.
create function public.operator_commands(p_ids bigint[], p_operator_token text default null)
  returns table (id bigint, agent_name text, action text, status text, requested_by text,
                 created_at timestamptz, expires_at timestamptz, claimed_at timestamptz, claimed_by_host text,
                 finished_at timestamptz, result text, observed_at timestamptz)
  language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
begin
  perform agent_private.require_operator(p_operator_token);
  if p_ids is null or cardinality(p_ids) > 1000 then
    perform agent_private.invalid('ids must be an array of at most 1000 command ids');
  end if;
  return query
    select c.id, a.agent_name, c.action, c.status, c.requested_by, c.created_at, c.expires_at, c.claimed_at,
           r.host, c.finished_at, c.result, now()
    from public.agent_commands c
    join public.agent_status a on a.id = c.agent_id
    left join public.runners r on r.id = c.claimed_by
    where c.id = any (p_ids)
    order by c.id;
end
$$;

-- Whether the sweep runs in this database: pg_cron's job and its latest runs when pg_cron is here;
-- otherwise says so (the local stack then runs the sweep on a timer, and a project without pg_cron
-- needs some scheduler calling public.agent_status_sweep() every minute).
create function public.operator_sweep_status(p_operator_token text default null)
  returns jsonb
  language plpgsql security definer set search_path = ''
as $$
declare
  job jsonb;
  last_run jsonb;
  last_success timestamptz;
begin
  perform agent_private.require_operator(p_operator_token);
  if to_regclass('cron.job') is null then
    return jsonb_build_object('pg_cron', false, 'now', now(),
      'message', 'pg_cron is not installed in this database: something else must call public.agent_status_sweep() every minute (the local stack does it on a timer)');
  end if;
  -- Dynamic SQL: the cron schema does not exist where pg_cron is missing, and this function must
  -- still be created there.
  execute $q$select to_jsonb(j) from (select jobid, jobname, schedule, command, active
                                        from cron.job where command ilike '%agent_status_sweep%'
                                        order by jobid limit 1) j$q$ into job;
  if job is not null and to_regclass('cron.job_run_details') is not null then
    execute $q$select to_jsonb(d) from (select runid, status, return_message, start_time, end_time
                                          from cron.job_run_details where jobid = $1
                                          order by start_time desc nulls last limit 1) d$q$
      into last_run using (job ->> 'jobid')::bigint;
    execute $q$select max(end_time) from cron.job_run_details where jobid = $1 and status = 'succeeded'$q$
      into last_success using (job ->> 'jobid')::bigint;
  end if;
  return jsonb_build_object('pg_cron', true, 'now', now(), 'job', job, 'last_run', last_run,
                            'last_success_at', last_success);
end
$$;

revoke execute on function public.operator_list_agents(text), public.operator_agent_events(text, bigint, integer, timestamptz, text),
  public.operator_commands(bigint[], text), public.operator_sweep_status(text) from public;
-- anon may call them because they check the operator token themselves (like the other operator functions).
grant execute on function public.operator_list_agents(text), public.operator_agent_events(text, bigint, integer, timestamptz, text),
  public.operator_commands(bigint[], text), public.operator_sweep_status(text)
  to anon, authenticated, service_role;
