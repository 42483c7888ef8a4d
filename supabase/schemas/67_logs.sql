-- Logs on demand: requests from operators, claimed and answered by the agent's runner.
--
-- supabase/schemas/ is the current definition of every SQL object, applied in file-name order
-- (supabase/README.md). Change it here, then generate the migration: npm run db:diff -- <name>.

-- The runner's side: the requests for its agents nobody has claimed yet (asked within the last
-- minute: an older one has been given up on), marked claimed in the same statement.
create function public.runner_claim_log_requests(p_token text)
  returns table (id bigint, agent_name text, lines integer)
  language plpgsql security definer set search_path = ''
as $$
#variable_conflict use_column
declare
  r public.runners := agent_private.authorize_runner(p_token);
begin
  return query
    with picked as (
      select l.id from public.agent_log_requests l join public.agent_status a on a.id = l.agent_id
      where a.runner_id = r.id and l.claimed_at is null and l.requested_at > now() - interval '1 minute'
      order by l.id limit 50
      for update of l skip locked
    ), claimed as (
      update public.agent_log_requests l set claimed_at = now() from picked where l.id = picked.id
      returning l.id, l.agent_id, l.lines
    )
    select claimed.id, a.agent_name, claimed.lines
    from claimed join public.agent_status a on a.id = claimed.agent_id
    order by claimed.id;
end
$$;

create or replace function public.request_agent_logs(
  p_agent_name text,
  p_lines integer default 200,
  p_operator_token text default null
) returns bigint
  language plpgsql security definer set search_path = ''
as $$
declare
  who text := agent_private.require_operator(p_operator_token);
  a record;
  v_id bigint;
begin
  if p_lines is null or p_lines < 1 or p_lines > 500 then
    perform agent_private.invalid(format('lines must be between 1 and 500, got %s', p_lines));
  end if;
  select s.id, s.agent_name, s.runner_id, r.host into a
  from public.agent_status s left join public.runners r on r.id = s.runner_id
  where s.agent_name = agent_private.check_agent_name(p_agent_name);
  if a.id is null then
    perform agent_private.refuse('P0002', format('no agent named %L', p_agent_name),
      'List agents with: agent-status list');
  end if;
  if a.runner_id is null then
    perform agent_private.refuse('55000', format('no runner manages agent %L, so no runner can read its logs', p_agent_name),
      'Logs on demand come from the runner that started the agent; add the agent to its host''s runner config.');
  end if;
  delete from public.agent_log_requests where requested_at < now() - interval '10 minutes';
  if (select count(*) from public.agent_log_requests where agent_id = a.id and answered_at is null) >= 10 then
    raise exception using errcode = '54000',
      message = format('10 log requests for %L are already waiting for the runner on %s', p_agent_name, a.host),
      hint = 'Wait for their answers (or for them to expire after 10 minutes); is the runner on that host running?';
  end if;
  insert into public.agent_log_requests (agent_id, lines, requested_by) values (a.id, p_lines, who) returning id into v_id;
  -- Hints: NOTIFY for runners with a database connection; on Supabase, a Realtime broadcast on the
  -- topic runners already hear for commands (agent_commands:<host>), so a runner that hears hints
  -- polls for log requests only as a safety net. They poll anyway.
  perform pg_notify('agent_log_requests', a.host);
  if to_regprocedure('realtime.send(jsonb, text, text, boolean)') is not null then
    begin
      perform realtime.send(jsonb_build_object('log_request_id', v_id), 'log_request', 'agent_commands:' || a.host, false);
    exception when others then
      null;  -- a hint that cannot be sent must never refuse the request
    end;
  end if;
  return v_id;
end
$$;

create or replace function public.operator_agent_logs(p_request_id bigint, p_operator_token text default null)
  returns table (id bigint, agent_name text, lines integer, requested_by text, requested_at timestamptz,
                 claimed_at timestamptz, answered_at timestamptz, stdout jsonb, stderr jsonb, error text,
                 observed_at timestamptz)
  language plpgsql stable security definer set search_path = ''
as $$
#variable_conflict use_column
begin
  perform agent_private.require_operator(p_operator_token);
  return query
    select l.id, a.agent_name, l.lines, l.requested_by, l.requested_at, l.claimed_at, l.answered_at,
           l.stdout, l.stderr, l.error, now()
    from public.agent_log_requests l join public.agent_status a on a.id = l.agent_id
    where l.id = p_request_id;
  if not found then
    perform agent_private.refuse('P0002', format('no log request %s', p_request_id),
      'Requests are kept 10 minutes; ask again with request_agent_logs.');
  end if;
end
$$;

create or replace function public.runner_answer_log_request(
  p_token text,
  p_request_id bigint,
  p_stdout jsonb default null,
  p_stderr jsonb default null,
  p_error text default null
) returns void
  language plpgsql security definer set search_path = ''
as $$
declare
  r public.runners := agent_private.authorize_runner(p_token);
  v_lines integer;
  v_stream jsonb;
begin
  perform agent_private.check_text('error', p_error, 4000);
  select l.lines into v_lines from public.agent_log_requests l join public.agent_status a on a.id = l.agent_id
  where l.id = p_request_id and a.runner_id = r.id and l.claimed_at is not null and l.answered_at is null;
  if v_lines is null then
    perform agent_private.refuse('55000', format('log request %s is not waiting for an answer from the runner on %s', p_request_id, r.host),
      'It was answered already, or it expired; claim new requests instead.');
  end if;
  foreach v_stream in array array[coalesce(p_stdout, '[]'), coalesce(p_stderr, '[]')] loop
    if jsonb_typeof(v_stream) <> 'array' or jsonb_array_length(v_stream) > v_lines
       or exists (select 1 from jsonb_array_elements(v_stream) x
                  where jsonb_typeof(x) <> 'string' or char_length(x #>> '{}') > 1000) then
      perform agent_private.invalid(format('stdout and stderr must be arrays of at most %s strings of at most 1000 characters', v_lines));
    end if;
  end loop;
  update public.agent_log_requests set answered_at = now(), stdout = coalesce(p_stdout, '[]'),
    stderr = coalesce(p_stderr, '[]'), error = p_error
  where id = p_request_id;
end
$$;
